"""Create many objects at once, as fast as one client can, remembering when each call returned.

A fixed number of requests are in flight (BENCH_CONCURRENCY); throttling answers (429) and
server errors are retried, and the retries are counted so a row can say the client was pushed
back. The per-object return times are what create-to-Deployment latencies are measured from.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from .kubeapi import ApiError, KubeApi


@dataclasses.dataclass
class CreateResult:
    started: float  # monotonic time of the first request
    finished: float  # monotonic time the last call returned
    returned: dict[str, float]  # name -> monotonic time its create call returned
    retries: int
    errors: list[str]

    @property
    def seconds(self) -> float:
        return self.finished - self.started

    @property
    def created(self) -> int:
        return len(self.returned)


async def create_all(api: KubeApi, path: str, bodies: Sequence[dict[str, Any]], concurrency: int) -> CreateResult:
    """POST every body to `path`; never raises for one failed object (it goes to `errors`)."""
    gate = asyncio.Semaphore(concurrency)
    returned: dict[str, float] = {}
    errors: list[str] = []
    retries = 0

    async def one(body: dict[str, Any]) -> None:
        nonlocal retries
        async with gate:
            try:
                _, used = await api.call("POST", path, body=body, ok=(201,))
            except ApiError as exc:
                errors.append(str(exc))
                return
            returned[body["metadata"]["name"]] = time.monotonic()
            retries += used

    started = time.monotonic()
    await asyncio.gather(*(one(body) for body in bodies))
    return CreateResult(started, time.monotonic(), returned, retries, errors)
