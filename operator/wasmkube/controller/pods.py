"""Look at an app's pods, only when its rollout is stuck, to say why in the runtime's words.

Watching every pod would cost memory and API traffic in proportion to all pods of all apps, for
information needed only for the few that fail. So nothing is watched: when a reconcile finds the
Deployment not available and without progress for a while, one page of the app's pods is listed
by its selector (and, if a pod runs but is not ready, that pod's `Unhealthy` Events). Looks are
rate-limited per app and overall, bounded in time, and best-effort: a refused or slow list leaves
the Deployment's own verdict in place. An app that is fine costs nothing here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from wasmkube.builders.identity import selector_string
from wasmkube.clients.kube import EVENTS, PODS, Key, KubeApiError, KubeClient
from wasmkube.status.conditions import Verdict
from wasmkube.status.pods import failure_verdict, pod_findings, probe_finding, unready_running_pod
from wasmkube.timestamps import parse_rfc3339

_log = structlog.get_logger(__name__)

# A rollout this long without progress is worth a look (pods on a healthy node are Ready sooner).
STUCK_AFTER_SECONDS = 15.0
# Per app: at most one look this often; meanwhile the last finding stands (no flapping status).
LOOK_INTERVAL_SECONDS = 20.0
# Overall: at most this many looks at once, and this many per second (excess looks are skipped).
MAX_CONCURRENT_LOOKS = 4
MAX_LOOKS_PER_SECOND = 10.0
LOOK_TIMEOUT_SECONDS = 5.0
POD_PAGE = 50
EVENT_PAGE = 20

# Verdicts of the Deployment that a pod finding may replace: "still rolling out" and "timed out".
_REPLACEABLE = {("progressing", "RollingOut"), ("stalled", "ProgressDeadlineExceeded")}


def stuck_seconds(deployment: dict[str, Any], now: float) -> float:
    """How long the Deployment has made no progress: since its `Progressing` condition was last
    updated (the Deployment controller bumps it on every step forward), or since it was created."""
    status = deployment.get("status") or {}
    progressing = next((c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), None)
    since = parse_rfc3339((progressing or {}).get("lastUpdateTime")) or parse_rfc3339(
        deployment.get("metadata", {}).get("creationTimestamp")
    )
    return now - since if since is not None else 0.0


@dataclass(frozen=True)
class _Look:
    at: float
    verdict: Verdict | None


class PodDiagnoser:
    """Remembers the last look per stuck app (forgotten as soon as the app is not stuck)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._looks: dict[Key, _Look] = {}
        self._gate = asyncio.Semaphore(MAX_CONCURRENT_LOOKS)
        self._next_slot = 0.0

    def forget(self, key: Key) -> None:
        self._looks.pop(key, None)

    def __len__(self) -> int:
        return len(self._looks)

    async def explain(
        self, client: KubeClient, key: Key, app_name: str, deployment: dict[str, Any] | None, verdict: Verdict
    ) -> tuple[Verdict, float | None]:
        """The verdict to report, and when to look again (None: no need)."""
        if deployment is None or (verdict.state, verdict.reason) not in _REPLACEABLE:
            self.forget(key)
            return verdict, None
        stuck = stuck_seconds(deployment, self._wall_clock())
        if stuck < STUCK_AFTER_SECONDS:
            return verdict, STUCK_AFTER_SECONDS - stuck + 1.0
        now = self._clock()
        last = self._looks.get(key)
        if last is None or now - last.at >= LOOK_INTERVAL_SECONDS:
            looked, found = await self._look(client, key[0], app_name)
            if looked:
                last = _Look(now, found)
                self._looks[key] = last
        reported = last.verdict if last is not None else None
        return (reported or verdict), LOOK_INTERVAL_SECONDS

    def _admit(self) -> bool:
        """The overall rate limit: a slot every 1/MAX_LOOKS_PER_SECOND seconds, none saved up."""
        now = self._clock()
        if now < self._next_slot:
            return False
        self._next_slot = now + 1.0 / MAX_LOOKS_PER_SECOND
        return True

    async def _look(self, client: KubeClient, namespace: str, app_name: str) -> tuple[bool, Verdict | None]:
        """(whether a look was made, what it found); no look when over the limits or on failure."""
        if self._gate.locked() or not self._admit():
            return False, None
        async with self._gate:
            try:
                async with asyncio.timeout(LOOK_TIMEOUT_SECONDS):
                    return True, await self._diagnose(client, namespace, app_name)
            except (KubeApiError, TimeoutError) as exc:
                # Best effort: e.g. an older chart without pods/events read access, or a slow server.
                _log.debug("could not look at the pods", namespace=namespace, name=app_name, error=str(exc))
                return False, None

    async def _diagnose(self, client: KubeClient, namespace: str, app_name: str) -> Verdict | None:
        pods = await client.list_objects(PODS, namespace, label_selector=selector_string(app_name), limit=POD_PAGE)
        findings = pod_findings(pods)
        if not any(f.stalled for f in findings):
            unready = unready_running_pod(pods)
            if unready is not None:
                events = await client.list_objects(
                    EVENTS,
                    namespace,
                    field_selector=f"involvedObject.kind=Pod,involvedObject.name={unready},reason=Unhealthy",
                    limit=EVENT_PAGE,
                )
                probe = probe_finding(unready, events)
                if probe is not None:
                    findings.append(probe)
        return failure_verdict(findings, len(pods))
