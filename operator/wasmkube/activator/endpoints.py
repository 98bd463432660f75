"""The serving pods of each scale-to-zero app, from the EndpointSlices of its `<app>-pods` Service.

The activator forwards to these pod addresses directly, never to the app's Service: while the
app wakes, that Service still points at the activator itself. A pod serves when the slice calls
it Ready, or when it is still starting but answered the activator's own readiness probe
(`probing.py`); such a mark lasts while the slice lists the pod as starting. Waiters are woken on
every change, so a held request goes out the moment a pod serves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from wasmkube.builders.scaletozero import SERVICE_NAME_LABEL, Endpoint, ready_endpoints, starting_endpoints
from wasmkube.clients.kube import Key


class EndpointTracker:
    def __init__(self) -> None:
        self._slices: dict[Key, dict[str, dict[str, Any]]] = {}  # (namespace, service) -> slice name -> slice
        self._ready: dict[Key, list[Endpoint]] = {}  # Ready in the slices
        self._starting: dict[Key, list[Endpoint]] = {}  # listed, neither Ready nor terminating
        self._probed: dict[Key, set[Endpoint]] = {}  # starting, and answered our readiness probe
        self._changed: dict[Key, asyncio.Event] = {}
        # Told (service key, serving endpoints) when a service's serving endpoints change.
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
        before = self.ready(key)
        listed = list(slices.values())
        _store(self._ready, key, ready_endpoints(listed))
        _store(self._starting, key, starting_endpoints(listed))
        probed = self._probed.pop(key, set()) & set(self._starting.get(key, []))
        if probed:
            self._probed[key] = probed
        if not slices:
            self._slices.pop(key, None)
        self._notify(key, before)

    def mark_serving(self, key: Key, endpoints: list[Endpoint]) -> None:
        """Starting pods of `key` that answered the activator's probe: forward to them too."""
        before = self.ready(key)
        marked = self._probed.setdefault(key, set())
        marked.update(e for e in endpoints if e in self._starting.get(key, []))
        if not marked:
            self._probed.pop(key, None)
        self._notify(key, before)

    def _notify(self, key: Key, before: list[Endpoint]) -> None:
        after = self.ready(key)
        if after == before:
            return
        event = self._changed.pop(key, None)
        if event is not None:
            event.set()
        self.on_change(key, after)

    def ready(self, key: Key) -> list[Endpoint]:
        """The pods to forward to: Ready ones, then starting ones that answered our probe."""
        probed = sorted(self._probed.get(key, set()), key=lambda e: (e.address, e.port))
        return [*self._ready.get(key, []), *probed]

    def starting(self, key: Key) -> list[Endpoint]:
        """Listed, not Ready, not terminating, and not yet found serving by our probe."""
        probed = self._probed.get(key, set())
        return [e for e in self._starting.get(key, []) if e not in probed]

    async def wait_changed(self, key: Key, seconds: float) -> bool:
        """Wait until `key`'s serving endpoints change, at most `seconds`; True if they did."""
        event = self._changed.setdefault(key, asyncio.Event())
        try:
            async with asyncio.timeout(max(0.0, seconds)):
                await event.wait()
            return True
        except TimeoutError:
            return False


def _store(table: dict[Key, list[Endpoint]], key: Key, endpoints: list[Endpoint]) -> None:
    if endpoints:
        table[key] = endpoints
    else:
        table.pop(key, None)
