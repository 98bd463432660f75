"""Blocking HTTP to one registry, built on an ``oras.provider.Registry`` but made safe for a service.

What oras gives us: its ``requests`` session (cookies disabled, which Harbor needs), the scheme
choice (``insecure`` → plain HTTP), TLS settings, and the bearer-token dance of its ``TokenAuth``
backend. What we deliberately do not use, and why:

* ``Registry.do_request`` is wrapped in a retry decorator that ``time.sleep``\\ s ``2 + 3**n`` seconds
  on *any* exception (minutes in total) and turns a 401 without a challenge into a retried
  ``ValueError``. A resolver must fail fast and let the caller's backoff decide, so requests go
  through ``registry.session`` directly, and a 401 is answered at most once.
* oras sets no timeouts. Every request here carries one: an ``HTTPAdapter`` mounted on the
  session supplies a default (so the token requests oras makes also have one) and each call
  passes the time left before the caller's deadline.
* oras' ``BasicAuth``/``TokenAuth`` choice is fixed per client; registries announce it per
  challenge (Debian's distribution answers ``Basic``, hosted ones ``Bearer``), so the challenge
  scheme decides here.

Redirects: manifests are only ever read from the image's own registry (scheme + host + port); a
redirect elsewhere is refused, so a registry cannot make us report another host's content as its
own. Blob GETs follow redirects anywhere (registries hand out storage URLs); ``requests`` drops
the ``Authorization`` header when the host changes, so credentials stay with the registry.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urljoin, urlsplit

import oras.auth.utils
import oras.provider
import requests
from requests.adapters import HTTPAdapter

from wasmkube.registry import mediatypes as mt
from wasmkube.registry.auth import Credentials
from wasmkube.registry.errors import (
    ArtifactUnavailable,
    NotFound,
    RegistryError,
    RegistryNotAllowed,
    Unauthorized,
    UnsupportedArtifact,
)
from wasmkube.registry.reference import DOCKER_HUB

DOCKER_HUB_ENDPOINT: Final = "registry-1.docker.io"
MAX_REDIRECTS: Final = 3
TOKEN_LIFETIME: Final = 50.0
"""Seconds a bearer token is reused. oras returns the token without its ``expires_in``; the
distribution token spec guarantees at least 60 s, so 50 s is always safe."""
_NOT_FOUND_CODES: Final = frozenset({"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"})
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_CHUNK: Final = 64 * 1024


class RequestCounter:
    """Thread-safe count of HTTP requests sent, for benchmarks and cache tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def increment(self) -> None:
        with self._lock:
            self._value += 1

    @property
    def value(self) -> int:
        return self._value


class TimeoutCountingAdapter(HTTPAdapter):
    """Gives every request without a timeout a default one, and counts what is sent.

    Mounted on the oras session, it also covers requests oras makes on its own (token fetches),
    which pass no timeout at all.
    """

    def __init__(self, timeout: float, counter: RequestCounter) -> None:
        super().__init__()
        self._default_timeout = timeout
        self._counter = counter

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        self._counter.increment()
        return super().send(
            request,
            stream=stream,
            timeout=self._default_timeout if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )


@dataclass(frozen=True)
class ManifestResponse:
    """The raw bytes of a manifest (digests are computed over exactly these) and its headers."""

    body: bytes
    content_type: str | None
    digest: str | None


def endpoint_for(registry: str) -> str:
    """The host that serves the registry API (Docker Hub's API is not at ``docker.io``)."""
    return DOCKER_HUB_ENDPOINT if registry == DOCKER_HUB else registry


class RegistryTransport:
    """HTTP to one registry host with one set of credentials; no retries, every call bounded.

    Safe to use from several threads at once: the session's connection pool is thread-safe and
    the only state kept here (cached auth headers) is guarded by a lock.
    """

    def __init__(
        self,
        registry: str,
        *,
        credentials: Credentials | None,
        insecure: bool,
        timeout: float,
        counter: RequestCounter,
        tls_verify: bool | str = True,
    ) -> None:
        self.registry = registry
        self._timeout = timeout
        self._tls_verify = tls_verify
        self._credentials = credentials
        endpoint = endpoint_for(registry)
        self._oras = oras.provider.Registry(hostname=endpoint, insecure=insecure, tls_verify=tls_verify)
        adapter = TimeoutCountingAdapter(timeout, counter)
        self._session: requests.Session = self._oras.session
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        if credentials is not None:
            self._oras.auth.set_basic_auth(credentials.username, credentials.password)
        self._base_url = f"{self._oras.prefix}://{endpoint}/v2"
        self._lock = threading.Lock()
        self._basic_accepted = False
        self._tokens: dict[str, tuple[str, float]] = {}

    def close(self) -> None:
        self._session.close()

    # -- registry API -------------------------------------------------------------------------

    def head_manifest(self, repository: str, version: str, deadline: float) -> str | None:
        """The digest a tag points to now (``Docker-Content-Digest``), or None if not sent."""
        response = self._request("HEAD", self._manifest_url(repository, version), repository, deadline)
        with response:
            self._check(response, f"manifest {repository}:{version}")
            return response.headers.get("Docker-Content-Digest")

    def get_manifest(self, repository: str, version: str, deadline: float, limit: int) -> ManifestResponse:
        response = self._request("GET", self._manifest_url(repository, version), repository, deadline)
        with response:
            self._check(response, f"manifest {repository}:{version}")
            body = _read(response, limit, deadline, f"manifest {repository}:{version}")
            return ManifestResponse(
                body=body,
                content_type=response.headers.get("Content-Type"),
                digest=response.headers.get("Docker-Content-Digest"),
            )

    def get_blob(self, repository: str, digest: str, deadline: float, limit: int) -> bytes:
        response = self._request("GET", self._blob_url(repository, digest), repository, deadline, blob=True)
        with response:
            self._check(response, f"blob {digest}")
            return _read(response, limit, deadline, f"blob {digest}")

    def get_blob_head(self, repository: str, digest: str, deadline: float, length: int) -> bytes:
        """The first ``length`` bytes of a blob: a Range request, or the start of a full GET
        (the connection is then dropped, so a large layer is never downloaded)."""
        url = self._blob_url(repository, digest)
        headers = {"Range": f"bytes=0-{length - 1}"}
        response = self._request("GET", url, repository, deadline, blob=True, headers=headers)
        with response:
            self._check(response, f"blob {digest}")
            return _read(response, length, deadline, f"blob {digest}", truncate=True)

    # -- plumbing -----------------------------------------------------------------------------

    def _manifest_url(self, repository: str, version: str) -> str:
        return f"{self._base_url}/{repository}/manifests/{version}"

    def _blob_url(self, repository: str, digest: str) -> str:
        return f"{self._base_url}/{repository}/blobs/{digest}"

    def _request(
        self,
        method: str,
        url: str,
        repository: str,
        deadline: float,
        *,
        blob: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send with cached auth; answer one 401 challenge; follow same-origin manifest redirects."""
        base = {**({} if blob else {"Accept": mt.MANIFEST_ACCEPT}), **(headers or {})}
        for _hop in range(MAX_REDIRECTS + 1):
            response = self._send(method, url, {**base, **self._cached_auth(repository)}, deadline, blob)
            if response.status_code == 401:
                with response:
                    auth = self._answer_challenge(response, repository)
                response = self._send(method, url, {**base, **auth}, deadline, blob)
            if blob or response.status_code not in _REDIRECTS:
                return response
            with response:
                url = self._same_origin_redirect(url, response.headers.get("Location", ""))
        raise ArtifactUnavailable(f"more than {MAX_REDIRECTS} redirects for {url}")

    def _send(
        self, method: str, url: str, headers: Mapping[str, str], deadline: float, blob: bool
    ) -> requests.Response:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ArtifactUnavailable(f"registry {self.registry}: deadline exceeded before {method} {url}")
        timeout = min(self._timeout, remaining)
        try:
            return self._session.request(
                method,
                url,
                headers=dict(headers),
                stream=True,
                allow_redirects=blob,
                timeout=timeout,
                verify=self._tls_verify,
            )
        except requests.Timeout:
            raise ArtifactUnavailable(
                f"registry {self.registry} did not answer {method} {url} within {timeout:.1f}s"
            ) from None
        except requests.ConnectionError as exc:
            raise ArtifactUnavailable(f"cannot connect to registry {self.registry}: {_root_cause(exc)}") from None
        except requests.RequestException as exc:
            raise ArtifactUnavailable(f"request to registry {self.registry} failed: {exc}") from None

    def _same_origin_redirect(self, url: str, location: str) -> str:
        target = urljoin(url, location)
        here, there = urlsplit(url), urlsplit(target)
        if not location or (here.scheme, here.netloc) != (there.scheme, there.netloc):
            raise RegistryNotAllowed(
                f"registry {self.registry} redirected a manifest request to {there.netloc or location!r}; "
                "manifests are only read from the image's own registry"
            )
        return target

    def _cached_auth(self, repository: str) -> dict[str, str]:
        """An Authorization header that worked before, so warm requests skip the 401 round."""
        with self._lock:
            if self._basic_accepted and self._credentials is not None:
                return {"Authorization": f"Basic {self._credentials.basic_token()}"}
            token = self._tokens.get(repository)
            if token is not None and token[1] > time.monotonic():
                return {"Authorization": f"Bearer {token[0]}"}
        return {}

    def _answer_challenge(self, response: requests.Response, repository: str) -> dict[str, str]:
        challenge = response.headers.get("Www-Authenticate", "")
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic":
            if self._credentials is None:
                raise Unauthorized(f"registry {self.registry} requires credentials and none were given")
            with self._lock:
                self._basic_accepted = True
            return {"Authorization": f"Basic {self._credentials.basic_token()}"}
        if scheme == "bearer":
            token = self._bearer_token(challenge, repository)
            with self._lock:
                self._tokens[repository] = (token, time.monotonic() + TOKEN_LIFETIME)
            return {"Authorization": f"Bearer {token}"}
        raise Unauthorized(f"registry {self.registry} answered 401 with an unusable challenge {challenge!r}")

    def _bearer_token(self, challenge: str, repository: str) -> str:
        """Ask the challenge's token realm (often another host, e.g. a hosted auth service)."""
        header = oras.auth.utils.parse_auth_header(challenge)
        if not header.realm:
            raise Unauthorized(f"registry {self.registry} sent a bearer challenge without a realm")
        header.scope = header.scope or f"repository:{repository}:pull"
        try:
            if self._credentials is not None:
                token = self._oras.auth.request_token(header)
            else:
                token = self._oras.auth.request_anonymous_token(header)
        except requests.RequestException as exc:
            raise ArtifactUnavailable(f"token service of {self.registry} failed: {_root_cause(exc)}") from None
        if not isinstance(token, str) or not token:
            who = "these credentials" if self._credentials else "anonymous pulls"
            raise Unauthorized(f"token service of {self.registry} refused {who} for {repository}")
        return token

    def _check(self, response: requests.Response, what: str) -> None:
        """Map an HTTP status to the error the operator reports; return on 200/206."""
        status = response.status_code
        if status in (200, 206):
            return
        codes = _error_codes(response)
        detail = f"{what}: HTTP {status}" + (f" ({', '.join(sorted(codes))})" if codes else "")
        error: RegistryError
        if status == 404 or codes & _NOT_FOUND_CODES:
            error = NotFound(f"{detail} on {self.registry}")
        elif status in (401, 403):
            error = Unauthorized(f"{detail}: registry {self.registry} refused access")
        elif status == 429 or status >= 500:
            error = ArtifactUnavailable(f"{detail} from registry {self.registry}")
        elif 400 <= status < 500:
            error = UnsupportedArtifact(f"{detail} from registry {self.registry}")
        else:
            error = ArtifactUnavailable(f"{detail}: unexpected answer from registry {self.registry}")
        raise error


def _read(response: requests.Response, limit: int, deadline: float, what: str, *, truncate: bool = False) -> bytes:
    """Read at most ``limit`` bytes; too much is an error unless ``truncate`` (prefix reads)."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(_CHUNK):
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                if truncate:
                    break
                if size > limit:
                    raise UnsupportedArtifact(f"{what} is larger than {limit} bytes")
            if time.monotonic() > deadline:
                raise ArtifactUnavailable(f"{what}: deadline exceeded while reading")
    except requests.RequestException as exc:
        raise ArtifactUnavailable(f"{what}: reading failed: {_root_cause(exc)}") from None
    return b"".join(chunks)[:limit]


def _error_codes(response: requests.Response) -> set[str]:
    """The ``errors[].code`` values of a distribution error body (empty if none or not JSON)."""
    if response.request.method == "HEAD":
        return set()
    try:
        body = json.loads(_read(response, _CHUNK, time.monotonic() + 1.0, "error body", truncate=True))
    except (ValueError, RegistryError):
        return set()
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return set()
    return {e["code"] for e in errors if isinstance(e, dict) and isinstance(e.get("code"), str)}


def _root_cause(exc: BaseException) -> str:
    """The innermost cause's text: "[Errno 111] Connection refused" beats urllib3's nested repr.

    requests wraps urllib3's ``MaxRetryError`` (whose ``reason`` is the real error), which in
    turn was raised ``from`` the socket error; the walk follows ``reason``, then the chain.
    """
    seen: set[int] = set()
    current = exc
    while id(current) not in seen:
        seen.add(id(current))
        wrapped = [a for a in current.args if isinstance(a, BaseException)]
        candidates = (getattr(current, "reason", None), current.__cause__, current.__context__, *wrapped)
        following = next((c for c in candidates if isinstance(c, BaseException)), None)
        if following is None:
            break
        current = following
    return str(current) or type(current).__name__
