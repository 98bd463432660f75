"""Record when each object first reached a state, as seen by a watch in the benchmark process.

Watch events rather than `creationTimestamp`s: those have one-second resolution, and they say
when the API server stored an object, not when a client could see it. The watch starts (from a
fresh list's resourceVersion) before the first create, so no event can be missed; if the
connection drops it resumes from the last resourceVersion, and after `410 Gone` it relists and
counts what it finds as seen at that moment (and says so in `relists`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

from .kubeapi import ApiError, KubeApi

Predicate = Callable[[dict[str, Any]], bool]


def always(_: dict[str, Any]) -> bool:
    return True


def condition_true(kind: str) -> Predicate:
    """The object has condition `kind` = True for its current generation."""
    def check(obj: dict[str, Any]) -> bool:
        status = obj.get("status") or {}
        if status.get("observedGeneration") != obj.get("metadata", {}).get("generation"):
            return False
        return any(c.get("type") == kind and c.get("status") == "True" for c in status.get("conditions") or [])
    return check


def ready_replicas_at_least_spec(obj: dict[str, Any]) -> bool:
    """spin-operator's notion of ready: status.readyReplicas reached spec.replicas."""
    want = int((obj.get("spec") or {}).get("replicas") or 1)
    return int((obj.get("status") or {}).get("readyReplicas") or 0) >= want


class FirstSeen:
    """Watch one collection and remember, per name, the first time `predicate` held."""

    def __init__(self, api: KubeApi, path: str, predicate: Predicate = always,
                 label_selector: str | None = None) -> None:
        self.api = api
        self.path = path
        self.predicate = predicate
        self.params = {"labelSelector": label_selector} if label_selector else {}
        self.seen: dict[str, float] = {}
        self.relists = 0
        self.reconnects = 0
        self.error: str | None = None
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._resource_version = ""

    async def start(self) -> None:
        await self._list()
        self._task = asyncio.create_task(self._run(), name=f"watch {self.path}")

    async def _list(self) -> None:
        payload, _ = await self.api.call("GET", self.path, params=self.params)
        now = time.monotonic()
        for obj in payload.get("items") or []:
            self._observe(now, obj)
        self._resource_version = str(payload.get("metadata", {}).get("resourceVersion") or "")

    def _observe(self, when: float, obj: dict[str, Any]) -> None:
        name = obj.get("metadata", {}).get("name")
        if name and name not in self.seen and self.predicate(obj):
            self.seen[name] = when
            self._changed.set()

    async def _run(self) -> None:
        while True:
            try:
                async for when, event in self.api.watch(self.path, self._resource_version, self.params):
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            raise ApiError(410, "WATCH", self.path, "resourceVersion too old")
                        continue
                    rv = obj.get("metadata", {}).get("resourceVersion")
                    if rv:
                        self._resource_version = str(rv)
                    if kind in ("ADDED", "MODIFIED"):
                        self._observe(when, obj)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.status != 410:
                    self.error = str(exc)
                    await asyncio.sleep(0.5)
                else:
                    self.relists += 1
                    await self._list()
            except Exception as exc:  # a dropped connection: resume from the last resourceVersion
                self.error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.2)
            self.reconnects += 1

    async def wait_for(self, names: Iterable[str], within: float) -> bool:
        """True once every name was seen; False after `within` seconds."""
        wanted = set(names)
        deadline = time.monotonic() + within
        while True:
            self._changed.clear()
            if wanted <= self.seen.keys():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 1.0))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
