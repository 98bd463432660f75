"""A leader whose renewal hangs steps down within the renew deadline (found by the e2e partition test)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from wasmkube.clients.leadership import LeaseElector, LeaseTiming


class HangingClient:
    """Answers GET with a Lease we hold until `hang` is set; then every request hangs."""

    def __init__(self, identity: str) -> None:
        self.identity = identity
        self.hang = False

    async def _maybe_hang(self) -> None:
        if self.hang:
            await asyncio.sleep(3600)

    async def get(self, *_: Any) -> dict[str, Any]:
        await self._maybe_hang()
        return {"metadata": {"resourceVersion": "1"},
                "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": 3, "renewTime": "x"}}

    async def request(self, *_: Any, **__: Any) -> dict[str, Any]:
        await self._maybe_hang()
        return {}


async def test_a_hanging_renewal_ends_leadership_within_the_renew_deadline() -> None:
    client = HangingClient("me")
    timing = LeaseTiming(lease_seconds=3, renew_deadline_seconds=1.0, retry_seconds=0.2)
    elector = LeaseElector(client, "ns", "lease", "me", timing)  # type: ignore[arg-type]
    elector.is_leader = True
    lost = asyncio.Event()
    holding = asyncio.create_task(elector.hold(lost.set))
    await asyncio.sleep(0.5)  # a few good renewals
    client.hang = True
    started = time.monotonic()
    await asyncio.wait_for(lost.wait(), timeout=5)
    assert time.monotonic() - started < timing.renew_deadline_seconds + timing.retry_seconds + 0.5
    assert not elector.is_leader
    await holding
