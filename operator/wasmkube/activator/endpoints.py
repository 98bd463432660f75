"""The Ready pods of each scale-to-zero app, from the EndpointSlices of its `<app>-pods` Service.

The activator forwards to these pod addresses directly, never to the app's Service: while the
app wakes, that Service still points at the activator itself. Waiters are woken on every change,
so a held request goes out the moment the EndpointSlice controller lists a Ready pod.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from wasmkube.builders.scaletozero import SERVICE_NAME_LABEL, Endpoint, ready_endpoints
from wasmkube.controller.store import Key


class EndpointTracker:
    def __init__(self) -> None:
        self._slices: dict[Key, dict[str, dict[str, Any]]] = {}  # (namespace, service) -> slice name -> slice
        self._ready: dict[Key, list[Endpoint]] = {}
        self._changed: dict[Key, asyncio.Event] = {}
        # Told (service key, endpoints) when a service's Ready endpoints change.
        self.on_change: Callable[[Key, list[Endpoint]], None] = lambda key, endpoints: None

    def observe(self, event_type: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service:
            return
        key = (str(meta.get("namespace")), str(service))
        slices = self._slices.setdefault(key, {})
        if event_type == "DELETED":
            slices.pop(str(meta.get("name")), None)
        else:
            slices[str(meta.get("name"))] = obj
        ready = ready_endpoints(list(slices.values()))
        if not slices:
            self._slices.pop(key, None)
        if ready == self._ready.get(key, []):
            return
        if ready:
            self._ready[key] = ready
        else:
            self._ready.pop(key, None)
        event = self._changed.pop(key, None)
        if event is not None:
            event.set()
        self.on_change(key, ready)

    def ready(self, key: Key) -> list[Endpoint]:
        return list(self._ready.get(key, []))

    async def wait_changed(self, key: Key, seconds: float) -> bool:
        """Wait until `key`'s Ready endpoints change, at most `seconds`; True if they did."""
        event = self._changed.setdefault(key, asyncio.Event())
        try:
            async with asyncio.timeout(max(0.0, seconds)):
                await event.wait()
            return True
        except TimeoutError:
            return False
