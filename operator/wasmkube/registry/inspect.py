"""One-shot resolution and its human/JSON rendering, for ``wasmkube inspect REF``.

The CLI wants the operator's exact view of an artifact without the operator's cache or
configuration, so this builds a throw-away resolver (no TTL) for a single reference.
"""

from __future__ import annotations

import json

from wasmkube.registry.artifact import ResolvedArtifact
from wasmkube.registry.auth import Credentials
from wasmkube.registry.client import DEFAULT_TIMEOUT, ArtifactResolver
from wasmkube.registry.reference import Reference
from wasmkube.timestamps import rfc3339


async def inspect_reference(
    ref: str,
    *,
    insecure: bool = False,
    username: str | None = None,
    password: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - handed to the resolver, which bounds its threads
) -> ResolvedArtifact:
    """Resolve one reference; ``insecure`` uses plain HTTP for its registry."""
    registry = Reference.parse(ref).registry
    credentials = Credentials(username, password or "") if username else None
    resolver = ArtifactResolver(timeout=timeout, ttl=0, insecure_registries={registry} if insecure else ())
    try:
        return await resolver.resolve(ref, credentials)
    finally:
        resolver.close()


def format_inspection(art: ResolvedArtifact) -> str:
    """Aligned ``Field: value`` lines, most important first."""
    rows: list[tuple[str, str]] = [
        ("Reference", art.reference),
        ("Pinned", art.pinned),
        ("Kind", str(art.kind)),
        ("Layout", str(art.layout)),
        ("Platform", art.platform or "-"),
        ("Digest", art.digest),
    ]
    if art.platform_digest:
        rows.append(("Platform digest", art.platform_digest))
    rows += [
        ("Media type", art.media_type),
        ("Config type", art.config_media_type),
        ("Size", _human_size(art.size)),
        ("Exports", ", ".join(art.exports) if art.exports else "-"),
        ("Resolved at", rfc3339(art.resolved_at)),
    ]
    width = max(len(label) for label, _ in rows) + 1
    return "\n".join(f"{label + ':':<{width}} {value}" for label, value in rows)


def as_json(art: ResolvedArtifact) -> str:
    """Stable, sorted JSON for scripts (``wasmkube inspect --json``)."""
    return json.dumps(art.to_dict(), indent=2, sort_keys=True)


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit} ({size} bytes)"
        value /= 1024
    return f"{value:.1f} GiB ({size} bytes)"
