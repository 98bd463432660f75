"""ArtifactResolver against real registries (Debian's distribution 2.8) and misbehaving stubs.

No Kubernetes cluster is needed: the registries are started by the fixtures of
``e2e/registry/fixtures.py``, on 127.0.0.1, and stopped at the end of the session.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest

from e2e.registry import fixtures as _fixtures
from e2e.registry.artifacts import BUILDERS, PushedArtifact, cncf_component, cncf_module
from e2e.registry.components import HTTP_HANDLER
from e2e.registry.fixtures import ResolverFactory
from e2e.registry.pusher import Pusher, canonical_json, sha256_digest
from e2e.registry.server import RegistryServer, registry_server
from e2e.registry.stub import Route, StubRequest, StubResponse, black_hole, stub_registry
from wasmkube.api.artifact import ArtifactKind, ArtifactLayout
from wasmkube.registry import (
    ArtifactResolver,
    ArtifactUnavailable,
    NotFound,
    RegistryNotAllowed,
    Unauthorized,
    credentials_for,
)
from wasmkube.registry.errors import UnsupportedArtifact
from wasmkube.registry.inspect import as_json, format_inspection, inspect_reference

# Fixtures live in e2e/registry/fixtures.py; binding them here is how pytest finds them.
plain_registry = _fixtures.plain_registry
auth_registry = _fixtures.auth_registry
pushed = _fixtures.pushed
plain_pusher = _fixtures.plain_pusher
make_resolver = _fixtures.make_resolver
resolver = _fixtures.resolver


@pytest.mark.parametrize("name", list(BUILDERS))
async def test_each_layout_resolves_to_its_kind(
    name: str, pushed: dict[str, PushedArtifact], resolver: ArtifactResolver
) -> None:
    expected = pushed[name]
    art = await resolver.resolve(expected.reference)
    assert (art.kind, art.layout) == (expected.kind, expected.layout)
    assert art.digest == expected.digest
    assert art.pinned == f"{art.registry}/{art.repository}@{expected.digest}"
    assert art.size == expected.size
    assert art.exports == expected.exports
    assert art.platform == expected.platform
    assert art.media_type == expected.media_type
    assert art.config_media_type == expected.config_media_type
    assert art.platform_digest == expected.platform_digest


async def test_index_pins_the_index_digest_but_classifies_the_wasm_entry(
    pushed: dict[str, PushedArtifact], resolver: ArtifactResolver
) -> None:
    expected = pushed["index"]
    art = await resolver.resolve(expected.reference)
    assert art.is_index and art.digest == expected.digest != art.platform_digest
    assert (art.kind, art.platform) == (ArtifactKind.MODULE, "wasip1/wasm")
    # the pinned reference resolves to the same index again
    again = await resolver.resolve(art.pinned)
    assert (again.digest, again.tag, again.kind) == (art.digest, None, art.kind)


async def test_digest_references_are_verified(pushed: dict[str, PushedArtifact], resolver: ArtifactResolver) -> None:
    module = pushed["cncf-module"]
    name = module.reference.rsplit(":", 1)[0]
    art = await resolver.resolve(f"{name}@{module.digest}")
    assert art.digest == module.digest
    with pytest.raises(NotFound):
        await resolver.resolve(f"{name}@sha256:{'0' * 64}")


async def test_tag_repush_is_seen_after_ttl_or_on_force_refresh(
    plain_pusher: Pusher, make_resolver: ResolverFactory
) -> None:
    repository = f"moving/app-{time.monotonic_ns()}"
    first = cncf_module(plain_pusher, repository, "latest")
    clock = FakeClock()  # the TTL is the resolver's clock: deterministic however busy the machine is
    resolver = make_resolver(ttl=300, clock=clock)
    assert (await resolver.resolve(first.reference)).digest == first.digest

    second = cncf_component(plain_pusher, repository, "latest")
    assert second.digest != first.digest
    clock.now += 299
    assert (await resolver.resolve(first.reference)).digest == first.digest  # still cached
    refreshed = await resolver.resolve(first.reference, force_refresh=True)
    assert (refreshed.digest, refreshed.kind) == (second.digest, ArtifactKind.COMPONENT)

    cncf_module(plain_pusher, repository, "latest")  # back to the first content
    clock.now += 301
    expired = await resolver.resolve(first.reference)
    assert (expired.digest, expired.kind) == (first.digest, ArtifactKind.MODULE)

    # unchanged tag after expiry: one HEAD revalidates, nothing else is fetched
    clock.now += 301
    before = resolver.request_count
    revalidated = await resolver.resolve(first.reference)
    assert resolver.request_count - before == 1
    assert revalidated.digest == first.digest and revalidated.resolved_at >= expired.resolved_at


async def test_basic_auth_registry_with_a_dockerconfigjson_secret(
    auth_registry: RegistryServer, make_resolver: ResolverFactory
) -> None:
    assert auth_registry.auth is not None
    user, password = auth_registry.auth
    pusher = Pusher(auth_registry.host, auth=auth_registry.auth)
    try:
        expected = cncf_component(pusher, "private/handler", "v1")
    finally:
        pusher.close()

    anonymous = make_resolver()
    with pytest.raises(Unauthorized) as info:
        await anonymous.resolve(expected.reference)
    assert info.value.reason == "Unauthorized"

    config = {"auths": {f"http://{auth_registry.host}/v2/": {"auth": _b64(f"{user}:{password}")}}}
    secret_data = {".dockerconfigjson": _b64(json.dumps(config))}
    credentials = credentials_for([secret_data], expected.reference)
    assert credentials is not None and credentials.username == user

    authed = make_resolver()
    art = await authed.resolve(expected.reference, credentials)
    assert (art.digest, art.kind, art.exports) == (expected.digest, ArtifactKind.COMPONENT, (HTTP_HANDLER,))
    # cold: 401 + retried manifest + config; the accepted Basic header is then sent up front
    assert authed.request_count == 3
    await authed.resolve(expected.reference.replace(":v1", f"@{expected.digest}"), credentials)
    assert authed.request_count == 5

    wrong = credentials_for([_secret(auth_registry.host, user, "wrong")], expected.reference)
    with pytest.raises(Unauthorized):
        await authed.resolve(expected.reference, wrong)


async def test_missing_tags_and_repositories_are_not_found(
    plain_registry: RegistryServer, pushed: dict[str, PushedArtifact], resolver: ArtifactResolver
) -> None:
    for reference in (f"{plain_registry.host}/cncf/module:nope", f"{plain_registry.host}/no/such/repo:v1"):
        with pytest.raises(NotFound) as info:
            await resolver.resolve(reference)
        assert info.value.reason == "NotFound" and info.value.reference == reference
        assert not info.value.transient


async def test_failures_are_cached_with_backoff(plain_registry: RegistryServer, make_resolver: ResolverFactory) -> None:
    resolver = make_resolver(failure_backoff=30)
    reference = f"{plain_registry.host}/cncf/module:missing"
    with pytest.raises(NotFound):
        await resolver.resolve(reference)
    sent = resolver.request_count
    for _ in range(10):
        with pytest.raises(NotFound):
            await resolver.resolve(reference)
    assert resolver.request_count == sent  # remembered, the registry is not asked again
    with pytest.raises(NotFound):
        await resolver.resolve(reference, force_refresh=True)
    assert resolver.request_count == sent + 1


async def test_stopped_registry_is_unavailable_fast(tmp_path_factory: pytest.TempPathFactory) -> None:
    with registry_server(tmp_path_factory.mktemp("doomed-registry")) as server:
        pusher = Pusher(server.host)
        expected = cncf_module(pusher, "short/lived", "v1")
        pusher.close()
        resolver = ArtifactResolver(timeout=3, insecure_registries={server.host})
        assert (await resolver.resolve(expected.reference)).digest == expected.digest
        server.stop()
        started = time.monotonic()
        with pytest.raises(ArtifactUnavailable) as info:
            await resolver.resolve(expected.reference, force_refresh=True)
        elapsed = time.monotonic() - started
        resolver.close()
    assert elapsed < 3, "must fail within the timeout, without oras' retry sleeps"
    assert info.value.transient and "refused" in str(info.value).lower()


async def test_hung_registry_times_out_within_the_timeout() -> None:
    with black_hole() as host:
        resolver = ArtifactResolver(timeout=1.0, insecure_registries={host})
        started = time.monotonic()
        with pytest.raises(ArtifactUnavailable) as info:
            await resolver.resolve(f"{host}/any/thing:v1")
        elapsed = time.monotonic() - started
        resolver.close()
    assert 0.9 < elapsed < 2.0  # 1 s timeout; slack for a busy CI machine
    assert "within 1" in str(info.value)


async def test_server_errors_fail_at_once_without_retries() -> None:
    with stub_registry() as stub:
        stub.answer("GET", "/v2/broken/app/manifests/v1", StubResponse(503, b"upstream down"))
        resolver = ArtifactResolver(timeout=5, insecure_registries={stub.host})
        started = time.monotonic()
        with pytest.raises(ArtifactUnavailable, match="HTTP 503"):
            await resolver.resolve(f"{stub.host}/broken/app:v1")
        resolver.close()
    assert time.monotonic() - started < 1 and len(stub.requests) == 1


async def test_concurrent_resolves_of_one_tag_share_one_lookup(
    pushed: dict[str, PushedArtifact], make_resolver: ResolverFactory
) -> None:
    resolver = make_resolver()
    reference = pushed["cncf-module"].reference
    results = await asyncio.gather(*(resolver.resolve(reference) for _ in range(100)))
    assert len({r.digest for r in results}) == 1 and results[0].digest == pushed["cncf-module"].digest
    assert resolver.request_count <= 3  # manifest + config, once
    cold = resolver.request_count
    await asyncio.gather(*(resolver.resolve(reference) for _ in range(100)))
    assert resolver.request_count == cold  # warm: served from the cache


async def test_allow_list_refuses_other_registries_before_any_request(
    auth_registry: RegistryServer, plain_registry: RegistryServer, pushed: dict[str, PushedArtifact]
) -> None:
    resolver = ArtifactResolver(
        allowed_registries={plain_registry.host}, insecure_registries={plain_registry.host, auth_registry.host}
    )
    for reference in (f"{auth_registry.host}/private/handler:v1", "nginx:latest", "ghcr.io/a/b:c"):
        with pytest.raises(RegistryNotAllowed) as info:
            await resolver.resolve(reference)
        assert info.value.reason == "RegistryNotAllowed"
    assert resolver.request_count == 0
    assert (await resolver.resolve(pushed["spin"].reference)).kind is ArtifactKind.SPIN_APP
    resolver.close()


async def test_bearer_token_challenge_is_answered_and_the_token_reused() -> None:
    """Hosted registries (GHCR, Docker Hub, Harbor) use the token flow; distribution here cannot."""
    config = canonical_json({"architecture": "wasm", "os": "wasip1"})
    manifest = _wasm_manifest(config, b"\x00asm\x01\x00\x00\x00")
    with stub_registry() as stub:
        challenge = f'Bearer realm="http://{stub.host}/token",service="stub",scope="repository:team/app:pull"'

        def guarded(body: bytes, content_type: str) -> Route:
            def respond(request: StubRequest) -> StubResponse:
                if request.headers.get("Authorization") != "Bearer t0k3n":
                    return StubResponse(401, b"{}", {"Www-Authenticate": challenge})
                return StubResponse(200, body, {"Content-Type": content_type})

            return respond

        def token(request: StubRequest) -> StubResponse:
            assert "scope=repository%3Ateam%2Fapp%3Apull" in request.path
            assert request.headers.get("Authorization") == f"Basic {_b64('ci:pw')}"
            return StubResponse(200, b'{"token": "t0k3n", "expires_in": 300}', {"Content-Type": "application/json"})

        stub.route("GET", "/token", token)
        for tag in ("v1", "v2"):
            stub.route(
                "GET", f"/v2/team/app/manifests/{tag}", guarded(manifest, "application/vnd.oci.image.manifest.v1+json")
            )
        stub.route("GET", f"/v2/team/app/blobs/{sha256_digest(config)}", guarded(config, "application/octet-stream"))

        resolver = ArtifactResolver(insecure_registries={stub.host})
        credentials = credentials_for([_secret(stub.host, "ci", "pw")], f"{stub.host}/team/app:v1")
        art = await resolver.resolve(f"{stub.host}/team/app:v1", credentials)
        assert (art.kind, art.digest) == (ArtifactKind.MODULE, sha256_digest(manifest))
        assert [r.path.split("?")[0] for r in stub.requests].count("/token") == 1
        await resolver.resolve(f"{stub.host}/team/app:v2", credentials)
        assert [r.path.split("?")[0] for r in stub.requests].count("/token") == 1  # token reused
        resolver.close()


async def test_manifest_redirects_stay_on_the_registry_host() -> None:
    config = canonical_json({"architecture": "wasm", "os": "wasip1"})
    manifest = _wasm_manifest(config, b"\x00asm\x01\x00\x00\x00")
    with stub_registry() as stub, stub_registry() as elsewhere:
        moved = StubResponse(307, headers={"Location": "/v2/app/x/manifests/moved"})
        stub.answer("GET", "/v2/app/x/manifests/v1", moved)  # same host: followed
        stub.answer("GET", "/v2/app/x/manifests/moved", StubResponse(200, manifest))
        stub.answer("GET", f"/v2/app/x/blobs/{sha256_digest(config)}", StubResponse(200, config))
        away = StubResponse(307, headers={"Location": f"http://{elsewhere.host}/v2/evil/manifests/v1"})
        stub.answer("GET", "/v2/app/x/manifests/v2", away)  # another host: refused
        resolver = ArtifactResolver(insecure_registries={stub.host})
        art = await resolver.resolve(f"{stub.host}/app/x:v1")
        assert art.digest == sha256_digest(manifest)
        with pytest.raises(RegistryNotAllowed, match="redirected"):
            await resolver.resolve(f"{stub.host}/app/x:v2")
        resolver.close()
        assert elsewhere.requests == []


async def test_content_not_matching_its_digest_is_refused() -> None:
    body = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}'
    with stub_registry() as stub:
        headers = {"Docker-Content-Digest": sha256_digest(b"something else")}
        stub.answer("GET", "/v2/app/y/manifests/v1", StubResponse(200, body, headers))
        resolver = ArtifactResolver(insecure_registries={stub.host})
        with pytest.raises(UnsupportedArtifact, match="does not match"):
            await resolver.resolve(f"{stub.host}/app/y:v1")
        resolver.close()


async def test_layer_bytes_are_read_with_a_range_request_even_if_the_registry_ignores_it() -> None:
    """Only 8 bytes are needed; a registry answering 200 with the whole blob must still work."""
    layer = b"\x00asm\x0d\x00\x01\x00" + b"\x00" * 200_000
    config = canonical_json({"architecture": "wasm"})
    manifest = _wasm_manifest(config, layer)
    with stub_registry() as stub:
        stub.answer("GET", "/v2/big/component/manifests/v1", StubResponse(200, manifest))
        stub.answer("GET", f"/v2/big/component/blobs/{sha256_digest(config)}", StubResponse(200, config))
        stub.answer("GET", f"/v2/big/component/blobs/{sha256_digest(layer)}", StubResponse(200, layer))
        resolver = ArtifactResolver(insecure_registries={stub.host})
        art = await resolver.resolve(f"{stub.host}/big/component:v1")
        resolver.close()
    assert (art.kind, art.layout, art.size) == (
        ArtifactKind.COMPONENT,
        ArtifactLayout.CNCF_WASM,
        len(config) + len(layer),
    )
    assert stub.requests[-1].headers.get("Range") == "bytes=0-7"


async def test_inspect_reference_renders_text_and_json(pushed: dict[str, PushedArtifact]) -> None:
    expected = pushed["cncf-component"]
    art = await inspect_reference(expected.reference, insecure=True, timeout=5)
    text = format_inspection(art)
    assert "Kind:" in text and "Component" in text and HTTP_HANDLER in text and expected.digest in text
    data = json.loads(as_json(art))
    assert data["kind"] == "Component" and data["layout"] == ArtifactLayout.CNCF_WASM.value
    assert data["exports"] == [HTTP_HANDLER] and data["size"] == expected.size


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _wasm_manifest(config: bytes, layer: bytes) -> bytes:
    """A CNCF Wasm artifact manifest over the given config and layer bytes, for stub registries."""
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.wasm.config.v0+json",
                "digest": sha256_digest(config),
                "size": len(config),
            },
            "layers": [{"mediaType": "application/wasm", "digest": sha256_digest(layer), "size": len(layer)}],
        }
    )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _secret(host: str, user: str, password: str) -> dict[str, str]:
    config = {"auths": {host: {"username": user, "password": password}}}
    return {".dockerconfigjson": _b64(json.dumps(config))}
