"""What one reconcile decided, in one shape for every kind, as controller-runtime's `Result` is.

A reconciler works out a `Result`; `write_status` records it on the object (the status, then
the Events it calls for); the engine reads only `retry` and `requeue_after` to plan the next look.
Whether to back off is said outright, never inferred from the words of a condition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wasmkube.clients.kube import ResourceType
from wasmkube.controller.context import Context
from wasmkube.controller.events import transition_event
from wasmkube.controller.store import ObjectCache
from wasmkube.status.conditions import Verdict, without_times

Event = tuple[str, str, str]  # (type, reason, message)


@dataclass(frozen=True)
class Result:
    """The verdict, the status to write, and when to look again."""

    verdict: Verdict
    # The whole status the object should have now; sent only if it differs from the stored one.
    status: dict[str, Any]
    # Look again after this many seconds even if nothing changes (a Track check, a wake deadline).
    requeue_after: float | None = None
    # The outside world failed in a way that passes by itself: back off and try again.
    retry: bool = False
    # Events about what this reconcile did, posted only once its status is recorded: an Event
    # saying "rolling out" must not precede a status that says otherwise.
    events: tuple[Event, ...] = ()


async def write_status(
    ctx: Context, resource: ResourceType, cache: ObjectCache, body: dict[str, Any], result: Result
) -> None:
    """Patch status only when it changed, then post the result's Events, and one more when the
    Ready condition changed meaning. An unchanged object costs no write and no Event."""
    previous: dict[str, Any] = body.get("status") or {}
    about = body
    transition: Event | None = None
    if without_times(result.status) != without_times(previous):
        meta = body["metadata"]
        about = await ctx.client.patch_status(resource, meta.get("namespace"), meta["name"], result.status)
        cache.upsert(about)
        ctx.metrics.status_writes.inc()
        transition = transition_event(previous.get("conditions"), result.status["conditions"])
    for event in result.events:
        await ctx.events.record(about, *event)
    if transition is not None:
        await ctx.events.record(about, *transition)
