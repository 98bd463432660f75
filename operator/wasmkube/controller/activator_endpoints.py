"""Where the operator points a scale-to-zero app's Service while the app has no Ready pod.

By default that is the Ready endpoints of the activator's own Service (`--activator-service
NAMESPACE/NAME`, the chart sets it), followed with a watch on that Service's EndpointSlices in its
namespace only. Tests that run the activator as a process on the host give fixed addresses
instead (`--activator-address IP:PORT`), e.g. the real node's bridge gateway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from wasmkube.builders.scaletozero import SERVICE_NAME_LABEL, Endpoint, ready_endpoints
from wasmkube.clients.kube import ENDPOINTSLICES, KubeClient
from wasmkube.clients.watch import ListWatch
from wasmkube.controller.store import ObjectCache

ACTIVATOR_PORT_NAME = "http"


def parse_address(text: str) -> Endpoint:
    """`IP:PORT` (IPv4) as given to --activator-address."""
    host, sep, port = text.rpartition(":")
    parts = host.split(".")
    if not sep or len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts) or not port.isdigit():
        raise ValueError(f"activator address {text!r} is not IPv4-ADDRESS:PORT")
    if not 0 < int(port) < 65536:
        raise ValueError(f"activator address {text!r}: port out of range")
    return Endpoint(host, int(port))


class ActivatorEndpoints:
    """No activator: scale-to-zero apps at zero have no endpoint (status says so)."""

    def endpoints(self) -> list[Endpoint]:
        return []

    def start(self, on_change: Callable[[], None]) -> None:
        return None

    async def stop(self) -> None:
        return None


class StaticActivatorEndpoints(ActivatorEndpoints):
    def __init__(self, addresses: Sequence[str]) -> None:
        self._endpoints = sorted({parse_address(a) for a in addresses}, key=lambda e: (e.address, e.port))

    def endpoints(self) -> list[Endpoint]:
        return list(self._endpoints)


class ServiceActivatorEndpoints(ActivatorEndpoints):
    """The Ready endpoints of the activator Service, kept current by a narrow watch."""

    def __init__(self, client: KubeClient, namespace: str, service: str) -> None:
        self._client = client
        self.namespace = namespace
        self.service = service
        self._slices = ObjectCache()
        self._current: list[Endpoint] = []
        self._task: asyncio.Task[None] | None = None
        self._on_change: Callable[[], None] = lambda: None

    def endpoints(self) -> list[Endpoint]:
        return list(self._current)

    def observe(self, event_type: str, obj: dict[str, Any]) -> None:
        if event_type == "DELETED":
            self._slices.remove((self.namespace, obj["metadata"]["name"]))
        else:
            self._slices.upsert(obj)
        current = ready_endpoints(list(self._slices.values()), ACTIVATOR_PORT_NAME)
        if current != self._current:
            self._current = current
            self._on_change()

    def start(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        watch = ListWatch(
            self._client,
            ENDPOINTSLICES,
            self.observe,
            namespace=self.namespace,
            label_selector=f"{SERVICE_NAME_LABEL}={self.service}",
        )
        self._task = asyncio.create_task(watch.run(), name="wasmkube-activator-endpoints")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
