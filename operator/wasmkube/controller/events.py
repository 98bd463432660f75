"""Kubernetes Events on significant changes, posted under the component name `wasmkube`.

Events are a log for humans (`kubectl describe`, `kubectl events`); the truth is in status
conditions. So an Event is posted when a condition changes meaning, never on each reconcile.
"""

from __future__ import annotations

import socket
from typing import Any

import structlog

from wasmkube.clients.kube import KubeApiError, KubeClient
from wasmkube.status.conditions import find, now_rfc3339

COMPONENT = "wasmkube"
_log = structlog.get_logger(__name__)


def build_event(obj: dict[str, Any], event_type: str, reason: str, message: str, now: str) -> dict[str, Any]:
    """A core/v1 Event about `obj` (cluster-scoped objects get their Events in `default`)."""
    meta = obj["metadata"]
    namespace = meta.get("namespace") or "default"
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name'][:200]}.", "namespace": namespace},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta["name"],
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": event_type,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": socket.gethostname()[:128],
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def transition_event(
    previous: list[dict[str, Any]] | None, current: list[dict[str, Any]]
) -> tuple[str, str, str] | None:
    """(type, reason, message) when the Ready condition changed status or reason, else None."""
    before, after = find(previous, "Ready"), find(current, "Ready")
    if after is None:
        return None
    if before is not None and (before.get("status"), before.get("reason")) == (
        after.get("status"),
        after.get("reason"),
    ):
        return None
    if after.get("status") == "True":
        return ("Normal", str(after["reason"]), str(after.get("message", "")))
    stalled = find(current, "Stalled")
    if stalled is not None and stalled.get("status") == "True":
        return ("Warning", str(after["reason"]), str(after.get("message", "")))
    return ("Normal", str(after["reason"]), str(after.get("message", "")))


class EventRecorder:
    def __init__(self, client: KubeClient) -> None:
        self._client = client

    async def record(self, obj: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        """Post an Event; failing to post one never fails a reconcile."""
        try:
            await self._client.post_event(build_event(obj, event_type, reason, message, now_rfc3339()))
        except KubeApiError as exc:
            _log.warning("event not posted", reason=reason, error=str(exc))
