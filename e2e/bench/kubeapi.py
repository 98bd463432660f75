"""A small asyncio Kubernetes client (aiohttp) for the benchmark's own requests and watches.

Not the operator's client and not `kubernetes.aio`: latencies are taken as "create call returned"
versus "watch event arrived", so nothing but the socket and JSON decoding may sit between the
API server and the clock, and the client must not throttle itself (client-go and the generated
Python client both can). It speaks as whichever identity the kubeconfig holds: a client
certificate (the admin) or a bearer token (a ServiceAccount).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import yaml

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ApiError(RuntimeError):
    def __init__(self, status: int, method: str, path: str, message: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {message[:300]}")
        self.status = status


def _ssl_context(cluster: dict[str, Any], user: dict[str, Any]) -> ssl.SSLContext:
    ca = cluster.get("certificate-authority-data")
    context = ssl.create_default_context(cadata=base64.b64decode(ca).decode() if ca else None)
    if "certificate-authority" in cluster:
        context.load_verify_locations(cluster["certificate-authority"])
    cert, key = user.get("client-certificate-data"), user.get("client-key-data")
    if cert and key:
        # ssl only loads key pairs from files: write them to a private temp file for the call.
        with tempfile.TemporaryDirectory() as tmp:
            pem = Path(tmp) / "client.pem"
            pem.touch(mode=0o600)
            pem.write_bytes(base64.b64decode(cert) + b"\n" + base64.b64decode(key))
            context.load_cert_chain(str(pem))
    return context


class KubeApi:
    """One identity, one connection pool; `concurrency` bounds open connections."""

    def __init__(self, server: str, context: ssl.SSLContext, token: str | None, concurrency: int = 64) -> None:
        self.server = server.rstrip("/")
        self._context = context
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, path: Path, concurrency: int = 64) -> KubeApi:
        config = yaml.safe_load(path.read_text())
        current = config.get("current-context")
        context = next(c["context"] for c in config["contexts"] if c["name"] == current)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        return cls(cluster["server"], _ssl_context(cluster, user), user.get("token"), concurrency)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._context, limit=self._concurrency + 8)
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self._headers, read_bufsize=1 << 20,
                timeout=aiohttp.ClientTimeout(total=60))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None,
                      content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
        """One call; returns (status, decoded body). Never raises for an HTTP status."""
        data = None if body is None else (body if isinstance(body, str | bytes) else json.dumps(body))
        headers = {"Content-Type": content_type} if data is not None else None
        async with self._client().request(method, self.server + path, data=data, params=params,
                                          headers=headers) as response:
            raw = await response.read()
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = {"message": raw[:300].decode(errors="replace")}
        return response.status, payload if isinstance(payload, dict) else {"items": payload}

    async def call(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None,
                   ok: tuple[int, ...] = (200, 201, 202), retries: int = 6,
                   content_type: str = "application/json") -> tuple[dict[str, Any], int]:
        """A call that must succeed: retries throttling, server errors and dropped connections.

        Returns (body, retries used); raises ApiError for any other answer."""
        delay = 0.2
        for attempt in range(retries + 1):
            try:
                status, payload = await self.request(method, path, body, params, content_type)
            except (aiohttp.ClientError, TimeoutError) as exc:
                if attempt == retries:
                    raise ApiError(0, method, path, str(exc)) from exc
            else:
                if status in ok:
                    return payload, attempt
                if status not in RETRY_STATUSES or attempt == retries:
                    raise ApiError(status, method, path, str(payload.get("message") or payload))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    async def text(self, path: str) -> str | None:
        """A plain-text endpoint (the apiserver's /metrics, a kubelet's through the node proxy);
        None unless it answers 200."""
        async with self._client().get(self.server + path, headers={"Accept": "text/plain"}) as response:
            if response.status != 200:
                return None
            return await response.text()

    async def get(self, path: str) -> dict[str, Any] | None:
        status, payload = await self.request("GET", path)
        if status == 404:
            return None
        if status != 200:
            raise ApiError(status, "GET", path, str(payload.get("message")))
        return payload

    async def delete(self, path: str) -> None:
        status, payload = await self.request("DELETE", path, body={"propagationPolicy": "Background"})
        if status not in (200, 202, 404):
            raise ApiError(status, "DELETE", path, str(payload.get("message")))

    async def watch(self, path: str, resource_version: str,
                    params: dict[str, str] | None = None) -> AsyncIterator[tuple[float, dict[str, Any]]]:
        """Yield (monotonic arrival time, event) from one watch connection until it ends.

        The time is taken as soon as the event's line is read, before anything else happens."""
        query = {"watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
                 "timeoutSeconds": "3600", **(params or {})}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None, sock_connect=10)
        async with self._client().get(self.server + path, params=query, timeout=timeout) as response:
            if response.status != 200:
                raise ApiError(response.status, "WATCH", path, (await response.text())[:300])
            async for line in response.content:
                arrived = time.monotonic()
                if line.strip():
                    yield arrived, json.loads(line)
