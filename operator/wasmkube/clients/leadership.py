"""Leader election with a coordination.k8s.io Lease, for active/standby operator replicas.

Every replica watches (so a standby's caches are warm), but only the Lease holder runs
reconcile workers: two replicas never act on the same object. The holder renews the Lease every
`retry_seconds`; a standby takes over once it has seen the same Lease record unchanged for
`lease_seconds` (measured on its own monotonic clock, so clock skew between nodes does not
matter). A holder that cannot renew within `renew_deadline_seconds` gives up leadership before
anyone else may take it, so there is never a moment with two active replicas. A graceful
shutdown releases the Lease, so a rolling update fails over at once.

Kopf's own peering was the alternative; it pauses Kopf's handlers but not our worker tasks, and
its CRDs are one more thing to install. A Lease is what every Kubernetes controller uses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from wasmkube.clients.kube import KubeApiError, KubeClient, ResourceType
from wasmkube.timestamps import now_rfc3339_micro

LEASES = ResourceType("coordination.k8s.io", "v1", "leases", namespaced=True)
_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class LeaseTiming:
    lease_seconds: float = 15.0
    renew_deadline_seconds: float = 10.0
    retry_seconds: float = 2.0


class LeaseElector:
    def __init__(
        self, client: KubeClient, namespace: str, name: str, identity: str, timing: LeaseTiming | None = None
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._name = name
        self.identity = identity
        self.timing = timing or LeaseTiming()
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self.is_leader = False

    def _lease_body(self, current: dict[str, Any] | None, taking_over: bool) -> dict[str, Any]:
        spec = dict((current or {}).get("spec") or {})
        now = now_rfc3339_micro()
        if taking_over:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if current else 0)
        spec.update(
            {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.timing.lease_seconds), "renewTime": now}
        )
        metadata: dict[str, Any] = {"name": self._name, "namespace": self._namespace}
        if current:
            metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}

    def _expired(self, current: dict[str, Any]) -> bool:
        """True once the Lease record has not changed for a whole lease duration (our clock)."""
        spec = current.get("spec") or {}
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))
        now = time.monotonic()
        if record != self._observed:
            self._observed, self._observed_at = record, now
        return now - self._observed_at >= float(spec.get("leaseDurationSeconds") or self.timing.lease_seconds)

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True if we hold the Lease afterwards."""
        path = LEASES.path(self._namespace, self._name)
        try:
            current = await self._client.get(LEASES, self._namespace, self._name)
            if current is None:
                await self._client.request(
                    "POST", LEASES.path(self._namespace), body=self._lease_body(None, taking_over=True)
                )
                return True
            holder = (current.get("spec") or {}).get("holderIdentity")
            if holder == self.identity:
                await self._client.request("PUT", path, body=self._lease_body(current, taking_over=False))
                return True
            if holder and not self._expired(current):
                return False
            await self._client.request("PUT", path, body=self._lease_body(current, taking_over=True))
            return True
        except KubeApiError as exc:
            if exc.status != 409:  # 409: someone else wrote first, which is a plain "no"
                _log.warning("lease update failed", error=str(exc))
            return False

    async def acquire(self) -> None:
        """Wait until we are the leader."""
        while not await self.try_acquire_or_renew():  # noqa: ASYNC110 - polling the API server is the point
            await asyncio.sleep(self.timing.retry_seconds)
        self.is_leader = True
        _log.info("became leader", lease=f"{self._namespace}/{self._name}", identity=self.identity)

    async def hold(self, on_lost: Callable[[], None]) -> None:
        """Renew until renewing fails for longer than the renew deadline; then call `on_lost`.

        Each attempt gets only what is left of the renew deadline. A request that hangs (a
        half-open connection, an API server waiting on etcd) would otherwise keep us leading
        for the whole API timeout, long after a standby may have taken the Lease over."""
        last_renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.timing.retry_seconds)
            remaining = self.timing.renew_deadline_seconds - (time.monotonic() - last_renewed)
            renewed = False
            if remaining > 0:
                try:
                    async with asyncio.timeout(remaining):
                        renewed = await self.try_acquire_or_renew()
                except TimeoutError:
                    _log.warning("lease renewal timed out", identity=self.identity)
            if renewed:
                last_renewed = time.monotonic()
            elif time.monotonic() - last_renewed >= self.timing.renew_deadline_seconds:
                self.is_leader = False
                _log.error("lost leadership", identity=self.identity)
                on_lost()
                return

    async def release(self) -> None:
        """Give the Lease up (graceful shutdown), so a standby takes over without waiting."""
        if not self.is_leader:
            return
        self.is_leader = False
        try:
            current = await self._client.get(LEASES, self._namespace, self._name)
            if current and (current.get("spec") or {}).get("holderIdentity") == self.identity:
                body = self._lease_body(current, taking_over=False)
                body["spec"]["holderIdentity"] = ""
                body["spec"]["leaseDurationSeconds"] = 1
                await self._client.request("PUT", LEASES.path(self._namespace, self._name), body=body)
        except KubeApiError as exc:
            _log.warning("lease release failed", error=str(exc))
