"""The activator (`wasmkube activator`) as a host process, and HTTP as a scale-to-zero client sends it.

The local cluster has no kube-proxy, so tests do what kube-proxy would: read the app Service's
EndpointSlice (which the operator points at the pods or at the activator) and send to one of its
endpoints, with the Host header a client of `<service>.<namespace>` sends. On the real node the
activator listens on the bridge gateway (10.222.0.1), the address the operator is told with
`--activator-address`, so the pods' side of the network can reach it too. Only loopback and the
bridge are ever sent to (`traffic.check_allowed`).
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cluster import Cluster
from .operator import LocalDaemon, free_port
from .state import REPO_ROOT
from .traffic import check_allowed

BRIDGE_GATEWAY = "10.222.0.1"
# Fully qualified: another CRD of the same short name (a benchmark's) must not capture kubectl.
WASMAPP = "wasmapps.wasmkube.dev"


def bridge_exists() -> bool:
    """Whether the real node's bridge (and so its gateway address) is up on this machine."""
    return Path("/sys/class/net/wasmkube0").exists()


class ActivatorProcess(LocalDaemon):
    name = "activator"

    def __init__(self, kubeconfig: Path, log_path: Path, address: str, namespace: str, *,
                 port: int | None = None, extra_args: list[str] | None = None) -> None:  # fmt: skip
        super().__init__(log_path)
        self.kubeconfig = kubeconfig
        self.address = address
        self.namespace = namespace
        self.port = port or free_port()
        self.admin_port = free_port()
        self.extra_args = list(extra_args or [])

    def command(self) -> tuple[list[str], dict[str, str]]:
        cmd = [
            sys.executable, "-m", "wasmkube.cli", "activator",
            "--namespace", self.namespace,
            "--bind-address", self.address,
            "--port", str(self.port),
            "--admin-port", str(self.admin_port),
            "--idle-interval-seconds", "1",
            "--shutdown-delay-seconds", "1",
            "--log-format", "json",
            *self.extra_args,
        ]  # fmt: skip
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONPATH": str(REPO_ROOT / "operator")}
        return cmd, env

    @property
    def health_url(self) -> str:
        return f"http://{self.address}:{self.admin_port}/readyz"

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    def metrics(self) -> str:
        answer = http_request(self.address, self.admin_port, "/metrics", host="admin")
        return answer.body

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample of the activator's /metrics (0 if absent)."""
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in self.metrics().splitlines():
            if line.startswith("#"):
                continue
            sample, _, value = line.rpartition(" ")
            metric, _, rest = sample.partition("{")
            if metric == name and ",".join(sorted(rest.rstrip("}").split(","))) == wanted:
                return float(value)
        return 0.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    headers: dict[str, str]
    seconds: float
    error: str = ""


def http_request(address: str, port: int, path: str = "/", *, host: str, method: str = "GET",
                 body: bytes | None = None, timeout: float = 90.0) -> Answer:  # fmt: skip
    """One request on a fresh connection with this Host header; network errors are status 0."""
    check_allowed(address)
    started = time.monotonic()
    connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers={"Host": host})
        response = connection.getresponse()
        text = response.read().decode(errors="replace")
        return Answer(response.status, text, dict(response.getheaders()), time.monotonic() - started)
    except (OSError, http.client.HTTPException) as err:
        return Answer(0, "", {}, time.monotonic() - started, f"{type(err).__name__}: {err}")
    finally:
        connection.close()


def service_slice(cluster: Cluster, namespace: str, service: str) -> dict[str, Any] | None:
    """The EndpointSlice the operator keeps for a scale-to-zero app's Service."""
    out = cluster.kubectl("get", "endpointslices", "-n", namespace, "-l",
                          f"kubernetes.io/service-name={service},endpointslice.kubernetes.io/managed-by=wasmkube.dev",
                          "-o", "json").stdout  # fmt: skip
    items = json.loads(out)["items"]
    return items[0] if items else None


def slice_target(slice_: dict[str, Any] | None) -> tuple[str | None, list[tuple[str, int]]]:
    """("pods" or "activator", [(address, port)]) of the operator's slice."""
    if slice_ is None:
        return None, []
    port = int((slice_.get("ports") or [{}])[0].get("port") or 0)
    addresses = [(a, port) for e in slice_.get("endpoints") or [] for a in e.get("addresses") or []]
    return slice_["metadata"]["labels"].get("wasmkube.dev/target"), addresses


def send_via_service(cluster: Cluster, namespace: str, service: str, path: str = "/", **kw: Any) -> Answer:
    """What a client of the Service gets: the request goes where its EndpointSlice points now."""
    _, endpoints = slice_target(service_slice(cluster, namespace, service))
    assert endpoints, f"Service {namespace}/{service} has no endpoint"
    address, port = endpoints[0]
    return http_request(address, port, path, host=f"{service}.{namespace}", **kw)
