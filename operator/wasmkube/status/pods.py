"""Why an app's pods do not become available, in the runtime's own words.

A Deployment only says "0 of 2 replicas available". The reason is in its pods' status (the
kubelet's waiting reason and message, the last termination message, which with
`FallbackToLogsOnError` is the module's last log lines, e.g. the shim naming a missing import) and,
for failing probes, in the kubelet's `Unhealthy` Events. This module turns those JSON shapes into
one verdict; it is pure, so it is tested with real pod-status documents.

Failures that will not heal without a change (the image cannot be pulled, the container cannot
be created or started, it crashes at start) make the app Stalled; a probe that fails, or a pod the
scheduler cannot place yet, leaves it progressing (Reconciling) with that message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from wasmkube.status.conditions import Verdict

# kubelet waiting reasons -> our reason (all of them stall the app)
_WAITING: dict[str, str] = {
    "ErrImagePull": "ImagePullFailed",
    "ImagePullBackOff": "ImagePullFailed",
    "InvalidImageName": "ImagePullFailed",
    "ErrImageNeverPull": "ImagePullFailed",
    "CreateContainerConfigError": "ContainerConfigError",
    "CreateContainerError": "ContainerCreateFailed",
    "RunContainerError": "ContainerStartFailed",
    "StartError": "ContainerStartFailed",
    "ContainerCannotRun": "ContainerStartFailed",
    "CrashLoopBackOff": "CrashLoopBackOff",
}
# Order of badness when pods disagree: the first match is reported.
_SEVERITY = [
    "ContainerCreateFailed",
    "ContainerStartFailed",
    "CrashLoopBackOff",
    "ContainerCrashed",
    "ContainerConfigError",
    "ImagePullFailed",
    "StartupProbeFailed",
    "ReadinessProbeFailed",
    "LivenessProbeFailed",
    "Unschedulable",
]
_PROBE_REASONS = {
    "Startup probe failed": "StartupProbeFailed",
    "Readiness probe failed": "ReadinessProbeFailed",
    "Liveness probe failed": "LivenessProbeFailed",
}
# The kubelet keeps at most 4 KiB of termination message; a condition message stays readable.
MAX_DETAIL = 2048


@dataclass(frozen=True)
class PodFinding:
    """The worst thing one pod shows, and where."""

    reason: str
    pod: str
    detail: str
    stalled: bool


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_DETAIL else "..." + text[-MAX_DETAIL:]


def _termination(terminated: dict[str, Any]) -> str:
    """`exit code 1 (Error): <message>` from a containerStatus' terminated state."""
    parts = [f"exit code {terminated.get('exitCode', '?')}"]
    if terminated.get("reason"):
        parts[0] += f" ({terminated['reason']})"
    message = str(terminated.get("message") or "").strip()
    return f"{parts[0]}: {_tail(message)}" if message else parts[0]


def _container_finding(pod: str, status: dict[str, Any]) -> PodFinding | None:
    state = status.get("state") or {}
    last = (status.get("lastState") or {}).get("terminated")
    waiting = state.get("waiting")
    if waiting and waiting.get("reason") in _WAITING:
        reason = _WAITING[waiting["reason"]]
        detail = f"{waiting['reason']}"
        if reason == "CrashLoopBackOff" and last:
            detail += f", last run ended with {_termination(last)}"
        elif waiting.get("message"):
            detail += f": {_tail(str(waiting['message']))}"
        return PodFinding(reason, pod, detail, stalled=True)
    terminated = state.get("terminated")
    if terminated and terminated.get("exitCode") not in (0, None):
        return PodFinding("ContainerCrashed", pod, f"container ended with {_termination(terminated)}", stalled=True)
    return None


def _condition(pod: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in pod.get("status", {}).get("conditions") or [] if c.get("type") == kind), None)


def unready_running_pod(pods: Iterable[dict[str, Any]]) -> str | None:
    """A pod whose containers run but are not ready: the one whose probe Events say why."""
    for pod in pods:
        status = pod.get("status", {})
        if status.get("phase") != "Running" or pod.get("metadata", {}).get("deletionTimestamp"):
            continue
        for container in status.get("containerStatuses") or []:
            if (container.get("state") or {}).get("running") and not container.get("ready"):
                return str(pod["metadata"]["name"])
    return None


def _event_time(event: dict[str, Any]) -> str:
    series = event.get("series") or {}
    return str(
        series.get("lastObservedTime")
        or event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("metadata", {}).get("creationTimestamp")
        or ""
    )


def probe_finding(pod: str, events: Iterable[dict[str, Any]]) -> PodFinding | None:
    """The latest `Unhealthy` Event of a pod, e.g. "Readiness probe failed: HTTP probe failed with statuscode: 500"."""
    unhealthy = [e for e in events if e.get("reason") == "Unhealthy" and e.get("message")]
    if not unhealthy:
        return None
    latest = max(unhealthy, key=_event_time)
    message = str(latest["message"]).strip()
    reason = next((r for prefix, r in _PROBE_REASONS.items() if message.startswith(prefix)), "ProbeFailed")
    return PodFinding(reason, pod, _tail(message), stalled=False)


def pod_findings(pods: Iterable[dict[str, Any]]) -> list[PodFinding]:
    """What each pod shows from its own status (no Events needed)."""
    found: list[PodFinding] = []
    for pod in pods:
        meta = pod.get("metadata", {})
        if meta.get("deletionTimestamp"):
            continue  # an old pod on its way out says nothing about the current template
        name = str(meta.get("name", "?"))
        status = pod.get("status", {})
        statuses = list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])
        container = next((f for f in (_container_finding(name, s) for s in statuses) if f), None)
        if container is not None:
            found.append(container)
            continue
        scheduled = _condition(pod, "PodScheduled")
        if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
            found.append(PodFinding("Unschedulable", name, _tail(str(scheduled.get("message") or "")), stalled=False))
    return found


def failure_verdict(findings: list[PodFinding], total_pods: int) -> Verdict | None:
    """One verdict for the worst finding, saying how many pods share it."""
    if not findings:
        return None
    worst = min(findings, key=lambda f: _SEVERITY.index(f.reason) if f.reason in _SEVERITY else len(_SEVERITY))
    alike = sum(1 for f in findings if f.reason == worst.reason)
    share = f" ({alike} of {total_pods} pods)" if total_pods > 1 else ""
    message = f"pod {worst.pod}{share}: {worst.detail}"
    return Verdict("stalled" if worst.stalled else "progressing", worst.reason, message)
