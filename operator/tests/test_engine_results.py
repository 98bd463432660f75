"""What the engine does with a reconcile's Result: back off on `retry`, come back after
`requeue_after`, forget a key that is gone. Read from the Result, never from a condition's words."""

from __future__ import annotations

import asyncio

from fakekube import resolved
from test_reconcile_apps import IMAGE, KEY, Apps

from wasmkube.controller.engine import APP, RUNTIME, Controller
from wasmkube.registry.errors import ArtifactUnavailable

ITEM = (APP, *KEY)


async def test_a_retry_result_backs_off() -> None:
    world = Apps()
    world.resolver.answers[IMAGE] = ArtifactUnavailable("registry did not answer", reference=IMAGE)
    world.add_app()
    controller = Controller(world.ctx)

    await controller._reconcile(APP, KEY, ITEM)
    await controller._reconcile(APP, KEY, ITEM)

    assert controller.queue._failures[ITEM] == 2  # the delay doubles with each failure
    assert ITEM in controller.queue._timers


async def test_a_requeue_result_comes_back_later_and_resets_the_backoff() -> None:
    world = Apps()
    world.resolver.answers[IMAGE] = ArtifactUnavailable("registry did not answer", reference=IMAGE)
    world.add_app(updatePolicy="Track", trackIntervalSeconds=60)
    controller = Controller(world.ctx)
    await controller._reconcile(APP, KEY, ITEM)
    controller.queue.drop(ITEM)  # cancel the retry timer: the next one must be the requeue's
    world.resolver.answers[IMAGE] = resolved(IMAGE, "sha256:" + "a" * 64)

    await controller._reconcile(APP, KEY, ITEM)

    assert ITEM not in controller.queue._failures
    due = controller.queue._timers[ITEM].when() - asyncio.get_running_loop().time()
    assert 0 < due <= 60


async def test_a_key_that_is_gone_is_dropped() -> None:
    world = Apps()
    controller = Controller(world.ctx)
    controller.queue.add_after(ITEM, 30)

    await controller._reconcile(APP, KEY, ITEM)
    await controller._reconcile(RUNTIME, ("", "missing"), (RUNTIME, "", "missing"))

    assert controller.queue._timers == {}


async def test_a_reconciled_runtime_is_not_looked_at_again_until_something_changes() -> None:
    world = Apps()
    controller = Controller(world.ctx)
    item = (RUNTIME, "", "wasmtime")

    await controller._reconcile(RUNTIME, ("", "wasmtime"), item)

    assert item not in controller.queue._timers and item not in controller.queue._failures
