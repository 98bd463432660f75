"""``ArtifactResolver``: the asyncio entry point the operator's handlers call.

oras is synchronous, so each resolution runs in a worker thread (``asyncio.to_thread``) bounded
by ``asyncio.wait_for``; the thread itself stops at the same deadline because every request gets
the remaining time as its timeout (see :mod:`~wasmkube.registry.transport`). Results are cached
per (registry, repository, tag-or-digest, credentials) for ``ttl`` seconds and concurrent
identical lookups share one load (see :mod:`~wasmkube.registry.cache`), so a thousand WasmApps on
one image cost about one registry round per TTL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Final

from wasmkube.registry.artifact import ResolvedArtifact
from wasmkube.registry.auth import Credentials
from wasmkube.registry.cache import SingleFlightCache
from wasmkube.registry.errors import ArtifactUnavailable, RegistryError, RegistryNotAllowed
from wasmkube.registry.fetch import fetch_artifact
from wasmkube.registry.reference import Reference, canonical_registry
from wasmkube.registry.transport import RegistryTransport, RequestCounter

DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_TTL: Final = 300.0

CacheKey = tuple[str, str, str, str]


class ArtifactResolver:
    """Resolves image references to pinned digests and artifact kinds, with caching.

    One instance per process (and event loop); it keeps one HTTP session per registry host and
    credentials, so connections and auth tokens are reused across calls.

    :param timeout: seconds one ``resolve`` may take, all requests included.
    :param ttl: seconds a result is reused; 0 disables the result cache (loads are still shared).
    :param insecure_registries: hosts (``host:port``) spoken to over plain HTTP. Meant for local
        test registries only.
    :param allowed_registries: if given, the only registry hosts that may be contacted at all.
    :param tls_verify: False, or a CA bundle path for registries with a private CA.
    :param failure_backoff: seconds the first failure of a key is remembered; doubles with each
        further failure up to ``max_failure_backoff``.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        ttl: float = DEFAULT_TTL,
        insecure_registries: Iterable[str] = (),
        allowed_registries: Iterable[str] | None = None,
        tls_verify: bool | str = True,
        failure_backoff: float = 1.0,
        max_failure_backoff: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        self.insecure_registries = frozenset(canonical_registry(h) for h in insecure_registries)
        self.allowed_registries = (
            None if allowed_registries is None else frozenset(canonical_registry(h) for h in allowed_registries)
        )
        self._tls_verify = tls_verify
        self._counter = RequestCounter()
        self._transports: dict[tuple[str, str], RegistryTransport] = {}
        self._cache: SingleFlightCache[CacheKey, ResolvedArtifact] = SingleFlightCache(
            ttl=ttl, failure_backoff=failure_backoff, max_failure_backoff=max_failure_backoff, clock=clock
        )

    @property
    def request_count(self) -> int:
        """HTTP requests sent so far (token requests and redirects included)."""
        return self._counter.value

    async def resolve(
        self, reference: str, credentials: Credentials | None = None, *, force_refresh: bool = False
    ) -> ResolvedArtifact:
        """Resolve ``reference``; raise a :class:`~wasmkube.registry.errors.RegistryError` subclass.

        ``force_refresh`` ignores cached results and cached failures (e.g. for a user-requested
        re-resolve); it still joins a lookup of the same key already in flight.
        """
        ref = Reference.parse(reference)
        self._check_allowed(ref)
        key: CacheKey = (
            ref.registry,
            ref.repository,
            ref.version,
            credentials.identity if credentials else "",
        )

        async def load(stale: ResolvedArtifact | None) -> ResolvedArtifact:
            return await self._fetch(ref, credentials, stale)

        return await self._cache.get(key, load, force=force_refresh)

    def close(self) -> None:
        """Close the HTTP sessions (idle connections); the resolver stays usable."""
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()

    async def _fetch(
        self, ref: Reference, credentials: Credentials | None, stale: ResolvedArtifact | None
    ) -> ResolvedArtifact:
        transport = self._transport(ref.registry, credentials)
        deadline = time.monotonic() + self.timeout
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(fetch_artifact, transport, ref, deadline, stale), timeout=self.timeout
            )
        except TimeoutError:
            raise ArtifactUnavailable(
                f"registry {ref.registry} did not answer within {self.timeout:g}s", reference=str(ref)
            ) from None
        except RegistryError as exc:
            exc.reference = exc.reference or str(ref)
            raise

    def _check_allowed(self, ref: Reference) -> None:
        if self.allowed_registries is not None and ref.registry not in self.allowed_registries:
            raise RegistryNotAllowed(
                f"registry {ref.registry} is not in the allowed registries "
                f"({', '.join(sorted(self.allowed_registries)) or 'none'})",
                reference=str(ref),
            )

    def _transport(self, registry: str, credentials: Credentials | None) -> RegistryTransport:
        key = (registry, credentials.identity if credentials else "")
        transport = self._transports.get(key)
        if transport is None:
            transport = RegistryTransport(
                registry,
                credentials=credentials,
                insecure=registry in self.insecure_registries,
                timeout=self.timeout,
                counter=self._counter,
                tls_verify=self._tls_verify,
            )
            self._transports[key] = transport
        return transport
