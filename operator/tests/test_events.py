"""EventRecorder: Events are posted in the background, a few at a time, and never fail a reconcile."""

from __future__ import annotations

import asyncio
from typing import Any

from wasmkube.clients.kube import KubeApiError
from wasmkube.controller.events import EventRecorder

APP = {"apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmApp",
       "metadata": {"name": "hello", "namespace": "apps", "uid": "u1", "resourceVersion": "7"}}  # fmt: skip


class SlowEventSink:
    """Stands in for the API client's post_event: holds each POST until released."""

    def __init__(self, fail: bool = False) -> None:
        self.release = asyncio.Event()
        self.posted: list[dict[str, Any]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.fail = fail

    async def post_event(self, event: dict[str, Any]) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await self.release.wait()
        self.in_flight -= 1
        if self.fail:
            raise KubeApiError(403, "Forbidden", "namespace is being terminated")
        self.posted.append(event)


async def test_record_returns_before_the_post_and_flush_waits_for_it() -> None:
    sink = SlowEventSink()
    recorder = EventRecorder(sink)  # type: ignore[arg-type]

    await asyncio.wait_for(recorder.record(APP, "Normal", "Available", "1 of 1 replicas available"), 1)
    assert sink.posted == []
    sink.release.set()
    await recorder.flush()

    assert [(e["reason"], e["involvedObject"]["uid"]) for e in sink.posted] == [("Available", "u1")]


async def test_at_most_a_few_posts_at_once() -> None:
    sink = SlowEventSink()
    recorder = EventRecorder(sink)  # type: ignore[arg-type]
    for index in range(30):
        await recorder.record(APP, "Normal", "RollingOut", f"step {index}")
    await asyncio.sleep(0.05)
    assert sink.most_in_flight == EventRecorder.MAX_IN_FLIGHT
    sink.release.set()
    await recorder.flush()
    assert len(sink.posted) == 30


async def test_a_refused_post_is_logged_not_raised() -> None:
    sink = SlowEventSink(fail=True)
    recorder = EventRecorder(sink)  # type: ignore[arg-type]
    await recorder.record(APP, "Warning", "RuntimeNotFound", "no runtime")
    sink.release.set()
    await recorder.flush()
    assert sink.posted == [] and recorder.dropped == 0


async def test_events_are_dropped_rather_than_piling_up() -> None:
    sink = SlowEventSink()
    recorder = EventRecorder(sink)  # type: ignore[arg-type]
    recorder.MAX_PENDING = 5
    for index in range(8):
        await recorder.record(APP, "Normal", "RollingOut", f"step {index}")
    assert recorder.dropped == 3
    sink.release.set()
    await recorder.flush()
    assert len(sink.posted) == 5
