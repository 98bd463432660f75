"""HTTP traffic to pods on the real node, sent the way kube-proxy would route it.

The local cluster has no kube-proxy, so a Service's ClusterIP leads nowhere. Tests do what
kube-proxy does instead: read the Service's EndpointSlices and send to the *ready* endpoints,
which are pod IPs on the real node's bridge (`wasmkube0`, 10.222.0.0/24, created by the test
run). Every request goes through `request()`, which refuses any address outside that bridge and
loopback, so a bug in a test cannot send traffic anywhere else. Loops are bounded in count and
time.
"""

from __future__ import annotations

import http.client
import ipaddress
import itertools
import json
import re
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .cluster import Cluster
from .waiting import wait_for

# The only networks tests may send to: loopback and the real node's pod bridge.
ALLOWED_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.222.0.0/24"))


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange: status 0 means the request failed before any answer."""

    status: int
    body: str
    error: str = ""


def check_allowed(host: str) -> None:
    address = ipaddress.ip_address(host)
    if not any(address in network for network in ALLOWED_NETWORKS):
        raise AssertionError(f"refusing to send test traffic to {host}: only loopback and the real node's "
                             "pod bridge 10.222.0.0/24 are allowed")


def request(host: str, port: int, path: str = "/", timeout: float = 5.0, method: str = "GET") -> Answer:
    """One request on a fresh connection; never raises for network errors (status 0)."""
    check_allowed(host)
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return Answer(response.status, response.read().decode(errors="replace"))
    except (OSError, http.client.HTTPException) as err:
        return Answer(0, "", f"{type(err).__name__}: {err}")
    finally:
        connection.close()


def forwarded_port(process: subprocess.Popen[str], timeout: float = 30.0) -> int:
    """The local port of a starting `kubectl port-forward ... 0:PORT` (its first output line)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        match = re.search(r"Forwarding from 127\.0\.0\.1:(\d+)", line)
        if match:
            return int(match.group(1))
        if not line and process.poll() is not None:
            break
    command: list[Any] = list(process.args) if isinstance(process.args, list | tuple) else [process.args]
    raise AssertionError(f"kubectl port-forward did not start: {' '.join(map(str, command))}")


def ready_endpoints(cluster: Cluster, namespace: str, service: str) -> list[tuple[str, int]]:
    """(pod IP, port) of every ready endpoint in the Service's EndpointSlices."""
    slices = cluster.get_json("endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={service}")
    return endpoints_of(slices["items"])


def settled_endpoints(cluster: Cluster, namespace: str, service: str, timeout: float = 30.0) -> list[tuple[str, int]]:
    """The Service's ready endpoints once they are exactly the app's Ready pods (at least one).

    A pod turns Ready before the EndpointSlice controller publishes it, so reading the slices
    the moment a WasmApp reports Ready can miss a replica (seen in CI: two Ready pods, one
    endpoint). This waits, bounded, for the slices to catch up.
    """

    def settled() -> list[tuple[str, int]] | None:
        found = ready_endpoints(cluster, namespace, service)
        pods = pod_ips(cluster, namespace, f"wasmkube.dev/app={service}")
        return found if pods and sorted({ip for ip, _ in found}) == pods else None

    return wait_for(settled, timeout=timeout, interval=0.25,
                    message=f"the endpoints of {namespace}/{service} to match its Ready pods")


def endpoints_of(slices: list[dict[str, Any]]) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for item in slices:
        ports = [p["port"] for p in item.get("ports") or [] if p.get("port")]
        for endpoint in item.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is not True:
                continue
            found.extend((address, port) for address in endpoint.get("addresses", []) for port in ports)
    return sorted(found)


def pod_ips(cluster: Cluster, namespace: str, selector: str, ready_only: bool = True) -> list[str]:
    pods = cluster.get_json("pods", "-n", namespace, "-l", selector)["items"]
    ips = []
    for pod in pods:
        status = pod.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        if status.get("podIP") and (ready or not ready_only) and not pod["metadata"].get("deletionTimestamp"):
            ips.append(status["podIP"])
    return sorted(ips)


@dataclass
class Tally:
    """What a traffic loop saw: bodies by count, and every failure in full."""

    bodies: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    sent: int = 0
    first_seen: dict[str, float] = field(default_factory=dict)

    def record(self, target: tuple[str, int], answer: Answer) -> None:
        self.sent += 1
        if answer.status == 200:
            self.bodies[answer.body] += 1
            self.first_seen.setdefault(answer.body, time.monotonic())
        else:
            self.failures.append(f"{target[0]}:{target[1]} -> {answer.status} {answer.error or answer.body[:200]}")


class EndpointFollower:
    """Sends requests without pause to a Service's ready endpoints, re-reading its
    EndpointSlices through a watch, until stopped or a bound is reached.

    The watch (`kubectl get --watch -o json`) sees an endpoint leave the ready set as soon as
    the endpointslice controller writes it, which is when kube-proxy would stop routing to it.
    """

    def __init__(self, cluster: Cluster, namespace: str, service: str, path: str = "/",
                 max_requests: int = 20_000, max_seconds: float = 300.0) -> None:
        self.cluster, self.namespace, self.service, self.path = cluster, namespace, service, path
        self.max_requests, self.max_seconds = max_requests, max_seconds
        self.tally = Tally()
        self._targets: list[tuple[str, int]] = ready_endpoints(cluster, namespace, service)
        self._slices: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watch: Any = None
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> EndpointFollower:
        cmd = [str(self.cluster.kubectl_path), f"--kubeconfig={self.cluster.kubeconfig}", "get", "endpointslices",
               "-n", self.namespace, "-l", f"kubernetes.io/service-name={self.service}", "--watch",
               "--output-watch-events", "-o", "json"]
        self._watch = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._threads = [threading.Thread(target=self._follow, daemon=True),
                         threading.Thread(target=self._send, daemon=True)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> Tally:
        self._stop.set()
        if self._watch is not None:
            self._watch.terminate()
            self._watch.wait(timeout=10)
        for thread in self._threads:
            thread.join(timeout=15)
        return self.tally

    def targets(self) -> list[tuple[str, int]]:
        with self._lock:
            return list(self._targets)

    def _follow(self) -> None:
        """Parse the watch stream (one JSON document per event) and keep the ready set."""
        decoder = json.JSONDecoder()
        buffer = ""
        assert self._watch is not None and self._watch.stdout is not None
        for line in self._watch.stdout:
            buffer += line
            try:
                event, end = decoder.raw_decode(buffer.lstrip())
            except json.JSONDecodeError:
                continue
            buffer = buffer.lstrip()[end:]
            obj = event.get("object") or {}
            name = obj.get("metadata", {}).get("name", "")
            if event.get("type") == "DELETED":
                self._slices.pop(name, None)
            else:
                self._slices[name] = obj
            with self._lock:
                self._targets = endpoints_of(list(self._slices.values()))

    def _send(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        for n in itertools.count():
            if self._stop.is_set() or n >= self.max_requests or time.monotonic() > deadline:
                return
            targets = self.targets()
            if not targets:
                time.sleep(0.01)
                continue
            target = targets[n % len(targets)]
            self.tally.record(target, request(*target, path=self.path, timeout=5))
