"""Typed, validated views of OCI/Docker manifests, indexes and descriptors.

Registry JSON is untrusted input. Turning it into small frozen dataclasses once, with clear
errors, keeps the classifier free of ``dict.get`` chains and of ``KeyError``s that would surface
as operator crashes instead of an ``UnsupportedArtifact`` condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wasmkube.registry import mediatypes as mt
from wasmkube.registry.errors import UnsupportedArtifact


@dataclass(frozen=True)
class Platform:
    """``os/architecture[/variant]`` of an index entry or an image config."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text

    @property
    def is_wasm(self) -> bool:
        return self.architecture == mt.WASM_ARCHITECTURE and self.os in mt.WASM_OSES


@dataclass(frozen=True)
class Descriptor:
    """A pointer to content: media type, digest, size (and, in an index, a platform)."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageManifest:
    """A single image/artifact manifest: one config and its layers."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]

    @property
    def content_size(self) -> int:
        """Bytes a node downloads for this manifest: the config plus every layer."""
        return self.config.size + sum(layer.size for layer in self.layers)


@dataclass(frozen=True)
class ImageIndex:
    """A multi-platform index (OCI index or Docker manifest list)."""

    media_type: str
    manifests: tuple[Descriptor, ...]


def parse_manifest(doc: Mapping[str, Any], content_type: str | None = None) -> ImageManifest | ImageIndex:
    """Validate a manifest or index document.

    ``content_type`` (the HTTP ``Content-Type``) is used when the document carries no
    ``mediaType`` field, which OCI allows.
    """
    if not isinstance(doc, Mapping):
        raise UnsupportedArtifact("manifest is not a JSON object")
    media_type = _optional_str(doc, "mediaType") or (content_type or "").split(";")[0].strip()
    if doc.get("schemaVersion") != 2:
        raise UnsupportedArtifact(f"unsupported manifest schemaVersion {doc.get('schemaVersion')!r}")
    if media_type in mt.INDEX_TYPES or (not media_type and "manifests" in doc):
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise UnsupportedArtifact("index has no 'manifests' list")
        return ImageIndex(media_type or mt.OCI_INDEX, tuple(parse_descriptor(e) for e in entries))
    if media_type and media_type not in mt.MANIFEST_TYPES:
        raise UnsupportedArtifact(f"unsupported manifest media type {media_type!r}")
    layers = doc.get("layers", [])
    if not isinstance(layers, list):
        raise UnsupportedArtifact("manifest 'layers' is not a list")
    return ImageManifest(
        media_type=media_type or mt.OCI_MANIFEST,
        config=parse_descriptor(doc.get("config")),
        layers=tuple(parse_descriptor(layer) for layer in layers),
    )


def parse_descriptor(doc: object) -> Descriptor:
    """Validate one descriptor; sizes must be non-negative integers."""
    if not isinstance(doc, Mapping):
        raise UnsupportedArtifact("descriptor is not a JSON object")
    media_type, digest, size = doc.get("mediaType"), doc.get("digest"), doc.get("size")
    if not isinstance(media_type, str) or not isinstance(digest, str):
        raise UnsupportedArtifact("descriptor lacks mediaType or digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise UnsupportedArtifact(f"descriptor {digest} has an invalid size {size!r}")
    annotations = doc.get("annotations") or {}
    if not isinstance(annotations, Mapping):
        raise UnsupportedArtifact(f"descriptor {digest} has invalid annotations")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        platform=parse_platform(doc.get("platform")),
        annotations={str(k): str(v) for k, v in annotations.items()},
    )


def parse_platform(doc: object) -> Platform | None:
    """Read ``os``/``architecture``/``variant`` from an index platform or an image config."""
    if not isinstance(doc, Mapping):
        return None
    os_name, arch = doc.get("os"), doc.get("architecture")
    if not isinstance(os_name, str) or not isinstance(arch, str):
        return None
    variant = doc.get("variant")
    return Platform(os_name, arch, variant if isinstance(variant, str) and variant else None)


def _optional_str(doc: Mapping[str, Any], key: str) -> str | None:
    value = doc.get(key)
    return value if isinstance(value, str) else None
