"""Kopf runs a plain `def` handler in a thread pool; ours feed asyncio caches and queues, so every
watch-event handler must be a coroutine (found by e2e/test_reliability.py: a sync handler calling
`WorkQueue.add_after` failed with "no running event loop" on every Deployment event)."""

from __future__ import annotations

import asyncio

from wasmkube.config import OperatorConfig
from wasmkube.handlers import build_registry


def test_every_watch_event_handler_runs_on_the_event_loop() -> None:
    handlers = build_registry(OperatorConfig())._watching.get_all_handlers()
    assert len(handlers) == 8
    sync = [h.id for h in handlers if not asyncio.iscoroutinefunction(h.fn)]
    assert sync == []
