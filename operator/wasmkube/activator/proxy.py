"""Forwarding one request to one pod: bodies streamed both ways, hop-by-hop headers dropped,
X-Forwarded-* set, every phase bounded by a timeout.

A connection that cannot be opened raises `UpstreamUnreachable` before any byte of the request
body was read, so the caller may safely try another pod (or wait for one).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from wasmkube.builders.scaletozero import Endpoint

# Headers about one connection, not the message: a proxy must drop them (the standard ones, and the
# non-standard ones proxies commonly see), together with any a Connection header names.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
CHUNK = 64 * 1024


class UpstreamUnreachable(Exception):
    """No connection to the pod could be made; nothing was sent."""


@dataclass(frozen=True)
class Timeouts:
    connect_seconds: float = 5.0
    # Between two reads from the pod (so also: until its response headers).
    read_seconds: float = 300.0


def _hop_by_hop(headers: CIMultiDict[str] | object) -> set[str]:
    names = set(HOP_BY_HOP)
    for value in getattr(headers, "getall")("Connection", []):  # noqa: B009 - CIMultiDictProxy and CIMultiDict
        names.update(token.strip().lower() for token in value.split(",") if token.strip())
    return names


def upstream_headers(request: web.BaseRequest) -> CIMultiDict[str]:
    """The request's end-to-end headers, plus X-Forwarded-For/-Host/-Proto."""
    dropped = _hop_by_hop(request.headers)
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        if name.lower() not in dropped:
            headers.add(name, value)
    client = request.remote or ""
    prior = request.headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{prior}, {client}" if prior else client
    if request.host and "X-Forwarded-Host" not in headers:
        headers["X-Forwarded-Host"] = request.host
    if "X-Forwarded-Proto" not in headers:
        headers["X-Forwarded-Proto"] = request.scheme
    return headers


async def _body(request: web.BaseRequest) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(CHUNK):
        yield chunk


class Forwarder:
    def __init__(self, timeouts: Timeouts | None = None) -> None:
        self.timeouts = timeouts or Timeouts()
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=self.timeouts.connect_seconds,
                    sock_connect=self.timeouts.connect_seconds,
                    sock_read=self.timeouts.read_seconds,
                ),
                connector=aiohttp.TCPConnector(limit=0, force_close=False),
                auto_decompress=False,  # bytes pass through as the pod sent them
                trust_env=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            )
        return self._session

    async def forward(self, request: web.BaseRequest, endpoint: Endpoint) -> web.StreamResponse:
        """Send `request` to `endpoint` and stream the answer back to the client."""
        url = f"http://{endpoint.address}:{endpoint.port}{request.rel_url}"
        data = _body(request) if request.body_exists else None
        try:
            upstream = await self._client().request(
                request.method,
                url,
                headers=upstream_headers(request),
                data=data,
                allow_redirects=False,
                compress=None,
            )
        except (aiohttp.ClientConnectorError, aiohttp.ServerTimeoutError) as exc:
            if isinstance(exc, aiohttp.ServerTimeoutError) and not _is_connect_timeout(exc):
                raise
            raise UpstreamUnreachable(f"{endpoint.address}:{endpoint.port}: {exc}") from exc
        async with upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            dropped = _hop_by_hop(upstream.headers)
            for name, value in upstream.headers.items():
                if name.lower() not in dropped and name.lower() != "content-length":
                    response.headers.add(name, value)
            if upstream.content_length is not None and "chunked" not in upstream.headers.get(
                "Transfer-Encoding", ""
            ):
                response.content_length = upstream.content_length
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(CHUNK):
                await response.write(chunk)
            await response.write_eof()
            return response

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _is_connect_timeout(exc: Exception) -> bool:
    return isinstance(exc, aiohttp.ConnectionTimeoutError)
