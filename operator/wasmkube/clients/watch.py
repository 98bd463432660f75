"""List-then-watch of one resource type, with a label selector, kept alive across failures.

The activator (and the operator, for the activator's own EndpointSlices) needs a few watches
without Kopf: a process that only routes requests should not carry an operator framework, and a
watch in one namespace with a label selector is narrower than what Kopf's cluster-wide streams
deliver. This is the informer pattern, minimal: list (remembering the resourceVersion), watch
from there with bookmarks, re-list on 410 Gone, back off on errors, and tell the caller about
objects that disappeared while the watch was down.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any

import structlog

from wasmkube.clients.kube import Key, KubeApiError, KubeClient, ResourceType, key_of

_log = structlog.get_logger(__name__)

WATCH_SECONDS = 240
MAX_BACKOFF_SECONDS = 30.0

# (event type, object): ADDED, MODIFIED or DELETED, as the API server names them.
Handler = Callable[[str, dict[str, Any]], None]


class ListWatch:
    """Feeds `on_event` every change of the matching objects; `synced` is set after the first list."""

    def __init__(
        self,
        client: KubeClient,
        resource: ResourceType,
        on_event: Handler,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> None:
        self._client = client
        self._resource = resource
        self._on_event = on_event
        self._namespace = namespace
        self._selector = label_selector
        self._known: dict[Key, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.relists = 0

    def _query(self, **extra: str) -> dict[str, str]:
        query = dict(extra)
        if self._selector:
            query["labelSelector"] = self._selector
        return query

    def _emit(self, kind: str, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        if kind == "DELETED":
            self._known.pop(key, None)
        else:
            self._known[key] = obj
        try:
            self._on_event(kind, obj)
        except Exception:  # a handler bug must not end the watch
            _log.exception("watch handler failed", resource=self._resource.plural)

    async def _list(self) -> str:
        path = self._resource.path(self._namespace)
        answer = await self._client.request("GET", path, query=self._query())
        seen: set[Key] = set()
        for item in answer.get("items") or []:
            item.setdefault("apiVersion", self._resource.api_version)
            key = key_of(item)
            seen.add(key)
            self._emit("MODIFIED" if key in self._known else "ADDED", item)
        for key in [k for k in self._known if k not in seen]:
            self._emit("DELETED", self._known[key])
        self.relists += 1
        self.synced.set()
        return str(answer.get("metadata", {}).get("resourceVersion") or "")

    async def _watch(self, version: str) -> str | None:
        """Watch from `version`; returns the last version seen, or None when a re-list is needed."""
        path = self._resource.path(self._namespace)
        query = self._query(
            watch="true",
            resourceVersion=version,
            allowWatchBookmarks="true",
            timeoutSeconds=str(WATCH_SECONDS),
        )
        async for line in self._client.stream_lines(path, query, limit_seconds=WATCH_SECONDS + 30):
            event = json.loads(line)
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:  # our version is too old: start over from a list
                    return None
                raise KubeApiError(int(obj.get("code") or 0), str(obj.get("reason")), str(obj.get("message")))
            version = str(obj.get("metadata", {}).get("resourceVersion") or version)
            if kind == "BOOKMARK":
                continue
            self._emit(str(kind), obj)
        return version

    async def run(self) -> None:
        """Forever: list, then watch; every failure is logged and retried with backoff."""
        failures = 0
        version: str | None = None
        while True:
            try:
                if version is None:
                    version = await self._list()
                version = await self._watch(version)
                failures = 0
            except asyncio.CancelledError:
                raise
            except (KubeApiError, ValueError) as exc:
                failures += 1
                if isinstance(exc, KubeApiError) and exc.status == 410:
                    version = None
                delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2**failures) * random.uniform(0.8, 1.2)
                _log.warning("watch failed; retrying", resource=self._resource.plural, error=str(exc),
                             retry_in=round(delay, 1))
                await asyncio.sleep(delay)
                if failures > 3:
                    version = None  # a long outage: re-list rather than trust an old version
