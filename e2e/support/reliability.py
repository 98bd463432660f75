"""Helpers for the reliability, hostile-input and security tests: bulk reads of the cluster,
ownership checks, operator metrics and logs, Leases.

"Lost" has one meaning throughout: a WasmApp the API server accepted that, within the test's
deadline, ends up neither Ready nor Stalled with a reason for its current generation (or
disappears). "Exposed" means an object the operator made outside its WasmApp's namespace, or
one whose owner does not exist.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .apps import condition
from .cluster import Cluster
from .operator import OperatorProcess

MANAGED = "app.kubernetes.io/managed-by=wasmkube"
CHILD_KINDS = ("deployments.apps", "services", "horizontalpodautoscalers.autoscaling")


def items(cluster: Cluster, kind: str, namespace: str | None = None,
          selector: str | None = None) -> list[dict[str, Any]]:
    """All objects of a kind in one namespace, or in every namespace when namespace is None."""
    args = ["get", kind, "-o", "json", "--chunk-size=0"]
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    if selector:
        args += ["-l", selector]
    return list(json.loads(cluster.kubectl(*args).stdout)["items"])


def names(objects: Iterable[dict[str, Any]]) -> set[str]:
    return {o["metadata"]["name"] for o in objects}


def controller_ref(obj: dict[str, Any]) -> Any:
    """The controller's ownerReference (a dict), or None; Any like apps.get."""
    return next((r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


def current(app: dict[str, Any]) -> bool:
    """The status describes the spec as it is now (not an older generation)."""
    generation = app["metadata"].get("generation")
    return bool((app.get("status") or {}).get("observedGeneration") == generation)


def is_ready(app: dict[str, Any]) -> bool:
    cond = condition(app, "Ready")
    return current(app) and bool(cond) and bool(cond["status"] == "True") and cond.get("observedGeneration") == \
        app["metadata"].get("generation")


def stalled_reason(app: dict[str, Any]) -> str | None:
    """The reason, when the app is Stalled=True for its current generation with a reason."""
    cond = condition(app, "Stalled")
    if current(app) and cond and cond["status"] == "True" and cond.get("reason"):
        return str(cond["reason"])
    return None


def verdict(app: dict[str, Any] | None) -> str:
    """'ready', 'stalled:<Reason>', or what is missing (for messages)."""
    if app is None:
        return "gone"
    if is_ready(app):
        return "ready"
    reason = stalled_reason(app)
    if reason:
        return f"stalled:{reason}"
    status = app.get("status") or {}
    if not status:
        return "no status"
    ready = condition(app, "Ready") or {}
    return (f"unsettled (observedGeneration {status.get('observedGeneration')} of "
            f"{app['metadata'].get('generation')}, Ready={ready.get('status')} {ready.get('reason')})")


def settle(cluster: Cluster, namespace: str, expected: Iterable[str], timeout: float,
           ready_only: bool = False, interval: float = 1.0) -> dict[str, str]:
    """Wait until every named WasmApp is Ready (or, unless ready_only, Stalled with a reason).

    Returns name -> verdict; names still unsettled at the deadline keep their last verdict (the
    caller counts those as lost). One list request per round, whatever the number of apps."""
    pending = set(expected)
    verdicts: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while pending:
        by_name = {a["metadata"]["name"]: a for a in items(cluster, "wasmapps.wasmkube.dev", namespace)}
        for name in list(pending):
            verdicts[name] = verdict(by_name.get(name))
            if verdicts[name] == "ready" or (not ready_only and verdicts[name].startswith("stalled:")):
                pending.discard(name)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(interval)
    return verdicts


def ownership_problems(cluster: Cluster, namespace: str | None = None) -> list[str]:
    """Children of wasmkube (by label) that are not controlled by an existing WasmApp of their own
    namespace. Objects already being deleted, or in a namespace being deleted, are skipped: the
    garbage collector is still working on those."""
    apps = items(cluster, "wasmapps.wasmkube.dev", namespace)
    # An app being deleted but held by a finalizer still exists: its children rightly stay until
    # the garbage collector sees it gone (the kstatus/Argo CD "being deleted" state holds one).
    live = {(a["metadata"]["namespace"], a["metadata"]["uid"]) for a in apps}
    terminating = set()
    if namespace is None:
        terminating = {n["metadata"]["name"] for n in items(cluster, "namespaces", None)
                       if n["status"].get("phase") == "Terminating"}
    problems = []
    for kind in CHILD_KINDS:
        for obj in items(cluster, kind, namespace, MANAGED):
            meta = obj["metadata"]
            if meta.get("deletionTimestamp") or meta["namespace"] in terminating:
                continue
            ref = controller_ref(obj)
            where = f"{kind} {meta['namespace']}/{meta['name']}"
            if ref is None or ref.get("kind") != "WasmApp":
                problems.append(f"{where}: no WasmApp controller reference")
            elif (meta["namespace"], ref.get("uid")) not in live:
                problems.append(f"{where}: owner WasmApp {ref.get('name')} ({ref.get('uid')}) is not live "
                                f"in {meta['namespace']}")
    return problems


# -- the operator process from outside: metrics, logs, Leases -----------------------------

_SAMPLE = re.compile(r'^wasmkube_reconciles_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$', re.M)


def reconciles(metrics_text: str, kind: str | None = None) -> float:
    """Sum of wasmkube_reconciles_total (all results), optionally for one kind (app, runtime)."""
    total = 0.0
    for match in _SAMPLE.finditer(metrics_text):
        if kind is None or f'kind="{kind}"' in match["labels"]:
            total += float(match["value"])
    return total


def log_records(text: str) -> list[dict[str, Any]]:
    records = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def bug_records(text: str) -> list[dict[str, Any]]:
    """Log records that mean a bug: an error from wasmkube.controller.engine (the 'reconcile
    failed' path, with its traceback), or an exception Kopf caught in one of our handlers (Kopf
    logs it and drops the event, so the object is not looked at again until the next resync)."""
    return [r for r in log_records(text) if r.get("level") in {"error", "critical"} and (
        r.get("logger") == "wasmkube.controller.engine"
        or (r.get("logger") == "kopf.objects" and "failed with an exception" in str(r.get("event"))))]


def leader_identities(text: str) -> list[str]:
    return [str(r["identity"]) for r in log_records(text) if r.get("event") == "became leader"]


def alive(process: OperatorProcess) -> bool:
    return process._process is not None and process._process.poll() is None


def terminate(process: OperatorProcess) -> None:
    """SIGTERM without waiting (OperatorProcess.stop waits, which would hide how long failover takes)."""
    assert process.pid is not None
    os.kill(process.pid, signal.SIGTERM)


def wait_exit(process: OperatorProcess, timeout: float) -> int:
    assert process._process is not None
    return process._process.wait(timeout)


def lease_spec(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    result = cluster.kubectl("get", "lease", name, "-n", namespace, "-o", "json", "--ignore-not-found")
    return dict(json.loads(result.stdout)["spec"]) if result.stdout.strip() else {}


# -- what the summary line reports ---------------------------------------------------------

@dataclass
class Tally:
    """WasmApps the reliability and hostile-input tests submitted, and what became of them."""

    tried: int = 0
    converged: int = 0
    refused: int = 0
    stalled: int = 0
    lost: int = 0
    lost_names: list[str] = field(default_factory=list)

    def count(self, verdicts: dict[str, str]) -> None:
        """Add accepted apps by their final verdict."""
        for name, result in verdicts.items():
            self.tried += 1
            if result == "ready":
                self.converged += 1
            elif result.startswith("stalled:"):
                self.stalled += 1
            else:
                self.lost += 1
                self.lost_names.append(f"{name}: {result}")

    def refuse(self) -> None:
        """A manifest the API server refused at admission (it never existed, so it cannot be lost)."""
        self.tried += 1
        self.refused += 1

    def line(self) -> str:
        return (f"reliability summary: tried {self.tried}, converged {self.converged}, refused {self.refused}, "
                f"stalled {self.stalled}, lost {self.lost}")


TALLY = Tally()
# One line per measurement worth seeing in a CI log (failover times, recovery times).
NOTES: list[str] = []


def note(line: str) -> None:
    print(line)
    NOTES.append(line)
