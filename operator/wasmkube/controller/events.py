"""Kubernetes Events on significant changes, posted under the component name `wasmkube`.

Events are a log for humans (`kubectl describe`, `kubectl events`); the truth is in status
conditions. So an Event is posted when a condition changes meaning, never on each reconcile.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import structlog

from wasmkube.clients.kube import KubeApiError, KubeClient
from wasmkube.status.conditions import find
from wasmkube.timestamps import now_rfc3339

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
    """Posts Events in the background.

    An Event is a note for humans. Waiting for its POST would hold a reconcile worker for one
    more API round trip, a third of the requests a new app needs, so it is sent by a task of its
    own, a few at a time. If the API server falls far behind, Events are dropped (and logged)
    rather than piling up in memory."""

    MAX_IN_FLIGHT = 8
    MAX_PENDING = 5000
    FLUSH_SECONDS = 5.0

    def __init__(self, client: KubeClient) -> None:
        self._client = client
        self._slots = asyncio.Semaphore(self.MAX_IN_FLIGHT)
        self._pending: set[asyncio.Task[None]] = set()
        self.dropped = 0

    async def record(self, obj: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        """Queue an Event for posting; never fails and never waits for the API server."""
        if len(self._pending) >= self.MAX_PENDING:
            self.dropped += 1
            _log.warning("event dropped: too many waiting to be posted", reason=reason)
            return
        body = build_event(obj, event_type, reason, message, now_rfc3339())
        task = asyncio.create_task(self._post(body, reason))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _post(self, body: dict[str, Any], reason: str) -> None:
        async with self._slots:
            try:
                await self._client.post_event(body)
            except KubeApiError as exc:
                _log.warning("event not posted", reason=reason, error=str(exc))

    async def flush(self) -> None:
        """Wait (at most FLUSH_SECONDS) for the Events still being posted, before shutting down."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=self.FLUSH_SECONDS)
