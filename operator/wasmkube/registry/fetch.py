"""The blocking steps of one resolution: manifest → (platform manifest) → config → layer head.

Kept apart from the async resolver so the order of registry requests, and so their number, is
visible in one short function. The cold path costs one manifest GET, one more for an index, one
config GET (skipped for the empty config), and a Range GET of 8 bytes only when the config cannot
say Module vs Component. Revalidating a cached result costs one HEAD.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Final

from wasmkube.registry import mediatypes as mt
from wasmkube.registry.artifact import ResolvedArtifact
from wasmkube.registry.classify import classify, layer_to_sniff, select_platform
from wasmkube.registry.errors import UnsupportedArtifact
from wasmkube.registry.manifest import Descriptor, ImageIndex, ImageManifest, parse_manifest
from wasmkube.registry.reference import Reference
from wasmkube.registry.transport import ManifestResponse, RegistryTransport

MAX_MANIFEST_BYTES: Final = 4 * 1024 * 1024  # distribution's own limit for manifests
MAX_CONFIG_BYTES: Final = 4 * 1024 * 1024
_HASHES: Final = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


def fetch_artifact(
    transport: RegistryTransport,
    ref: Reference,
    deadline: float,
    stale: ResolvedArtifact | None = None,
    wall_clock: Callable[[], float] = time.time,
) -> ResolvedArtifact:
    """Resolve ``ref`` to a digest and classify it; raise a RegistryError subclass on failure."""
    repo = ref.repository
    if stale is not None and transport.head_manifest(repo, ref.version, deadline) == stale.digest:
        return replace(stale, resolved_at=wall_clock())

    top_response = transport.get_manifest(repo, ref.version, deadline, MAX_MANIFEST_BYTES)
    digest = verified_digest(top_response.body, top_response.digest, ref.digest)
    top = parse_manifest(_json_object(top_response.body, "manifest"), top_response.content_type)

    manifest, platform, platform_digest = _platform_manifest(transport, repo, top, deadline)
    config = _fetch_config(transport, repo, manifest.config, deadline)
    layer = layer_to_sniff(manifest, config)
    head = transport.get_blob_head(repo, layer.digest, deadline, mt.PREAMBLE_SIZE) if layer else None
    result = classify(manifest, config, head, platform=platform)

    return ResolvedArtifact(
        reference=str(ref),
        registry=ref.registry,
        repository=repo,
        tag=ref.tag,
        digest=digest,
        pinned=ref.pinned(digest),
        kind=result.kind,
        layout=result.layout,
        media_type=top.media_type,
        config_media_type=manifest.config.media_type,
        size=manifest.content_size,
        exports=result.exports,
        platform=result.platform,
        resolved_at=wall_clock(),
        platform_digest=platform_digest,
    )


def verified_digest(body: bytes, announced: str | None, expected: str | None) -> str:
    """The digest of the raw bytes, checked against the registry's header and the reference.

    Computed over the bytes as received (never re-serialised JSON), in the algorithm the
    registry or the reference uses; any disagreement means corrupted or forged content.
    """
    algorithm = (expected or announced or "sha256:").split(":", 1)[0]
    hasher = _HASHES.get(algorithm)
    if hasher is None:
        raise UnsupportedArtifact(f"unsupported digest algorithm {algorithm!r}")
    digest = f"{algorithm}:{hasher(body).hexdigest()}"
    for claimed, source in ((announced, "Docker-Content-Digest header"), (expected, "reference")):
        if claimed and claimed.startswith(f"{algorithm}:") and claimed != digest:
            raise UnsupportedArtifact(f"content digest {digest} does not match the {source} {claimed}")
    return digest


def _platform_manifest(
    transport: RegistryTransport, repo: str, top: ImageManifest | ImageIndex, deadline: float
) -> tuple[ImageManifest, str | None, str | None]:
    """The manifest to classify: ``top`` itself, or the index entry a Wasm node would run."""
    if isinstance(top, ImageManifest):
        return top, None, None
    entry = select_platform(top)
    if entry is None:
        platforms = ", ".join(str(d.platform) for d in top.manifests if d.platform) or "none"
        raise UnsupportedArtifact(f"index has no wasm or linux/amd64 entry (platforms: {platforms})")
    response: ManifestResponse = transport.get_manifest(repo, entry.digest, deadline, MAX_MANIFEST_BYTES)
    verified_digest(response.body, response.digest, entry.digest)
    manifest = parse_manifest(_json_object(response.body, "platform manifest"), response.content_type)
    if isinstance(manifest, ImageIndex):
        raise UnsupportedArtifact(f"index entry {entry.digest} is itself an index; nested indexes are unsupported")
    return manifest, str(entry.platform) if entry.platform else None, entry.digest


def _fetch_config(transport: RegistryTransport, repo: str, config: Descriptor, deadline: float) -> dict[str, Any]:
    """The config blob as a JSON object; ``{}`` for the empty descriptor or non-JSON configs."""
    if config.media_type == mt.OCI_EMPTY:
        return {}
    if config.size > MAX_CONFIG_BYTES:
        raise UnsupportedArtifact(f"config blob {config.digest} is {config.size} bytes, over {MAX_CONFIG_BYTES}")
    body = transport.get_blob(repo, config.digest, deadline, MAX_CONFIG_BYTES)
    verified_digest(body, None, config.digest)
    try:
        return _json_object(body, "config")
    except UnsupportedArtifact:
        return {}  # artifact configs may be any format; classification then relies on layers


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise UnsupportedArtifact(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(doc, Mapping):
        raise UnsupportedArtifact(f"{what} is not a JSON object")
    return dict(doc)
