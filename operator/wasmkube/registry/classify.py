"""Decide what an OCI artifact is, from documents already fetched (no I/O here).

The decision picks the RuntimeClass/shim, so it follows what the shims themselves look at, in
this order:

1. an index is narrowed to one entry: a Wasm platform (``wasm`` on ``wasip1``/``wasip2``/``wasi``)
   if present, else ``linux/amd64``;
2. config media type ``application/vnd.wasm.config.v0+json`` → CNCF Wasm artifact; ``os`` wasip2 or
   a ``component`` block → Component (with its exports), wasip1 → Module, else the layer's bytes;
3. a Spin locked-app layer, or the Spin label in the image config → Spin app;
4. image config architecture ``wasm`` with ``application/wasm`` or the bytecodealliance component
   layer → runwasi "Wasm layers" image; Module or Component from the layer's first 8 bytes
   (the layer media type is used for both, so only the bytes can tell);
5. anything else is an ordinary container image.

The I/O side asks :func:`layer_to_sniff` whether step 2 or 4 needs the layer's first bytes, and
fetches them only then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wasmkube.api.artifact import ArtifactKind, ArtifactLayout
from wasmkube.registry import mediatypes as mt
from wasmkube.registry.errors import UnsupportedArtifact
from wasmkube.registry.manifest import Descriptor, ImageIndex, ImageManifest, parse_manifest, parse_platform

ManifestLike = ImageManifest | Mapping[str, Any]
IndexLike = ImageIndex | Mapping[str, Any]

FALLBACK_PLATFORM = ("linux", "amd64")
"""The platform of ordinary images our nodes run (the e2e cluster and CI are amd64)."""


@dataclass(frozen=True)
class Classification:
    """The outcome: what runs it (kind), who made it (layout), and what a component exports."""

    kind: ArtifactKind
    layout: ArtifactLayout
    exports: tuple[str, ...] = ()
    platform: str | None = None


def select_platform(index: IndexLike) -> Descriptor | None:
    """Choose the index entry a Wasm-capable node should run, or None if there is none.

    Wasm entries win (in index order, the producer's preference); otherwise ``linux/amd64``.
    Entries with platform ``unknown/unknown`` are build attestations, never runnable.
    """
    parsed = _as_index(index)
    candidates = [d for d in parsed.manifests if d.platform is not None and d.platform.os != "unknown"]
    for entry in candidates:
        if entry.platform is not None and entry.platform.is_wasm:
            return entry
    for entry in candidates:
        if entry.platform is not None and (entry.platform.os, entry.platform.architecture) == FALLBACK_PLATFORM:
            return entry
    return None


def detect_layout(manifest: ManifestLike, config: Mapping[str, Any]) -> ArtifactLayout:
    """Steps 2-5 of the order above, without deciding Module vs Component."""
    parsed = _as_manifest(manifest)
    if parsed.config.media_type == mt.WASM_CONFIG:
        return ArtifactLayout.CNCF_WASM
    if any(layer.media_type == mt.SPIN_APP_CONFIG_LAYER for layer in parsed.layers) or _has_spin_label(config):
        return ArtifactLayout.SPIN
    if config.get("architecture") == mt.WASM_ARCHITECTURE and _wasm_layer(parsed) is not None:
        return ArtifactLayout.WASM_LAYERS
    return ArtifactLayout.CONTAINER_IMAGE


def layer_to_sniff(manifest: ManifestLike, config: Mapping[str, Any]) -> Descriptor | None:
    """The layer whose first bytes decide Module vs Component, or None when they are not needed."""
    parsed = _as_manifest(manifest)
    layout = detect_layout(parsed, config)
    if layout is ArtifactLayout.CNCF_WASM and _kind_from_wasm_config(config) is None:
        return _wasm_layer(parsed) or (parsed.layers[0] if parsed.layers else None)
    if layout is ArtifactLayout.WASM_LAYERS:
        return _wasm_layer(parsed)
    return None


def sniff_wasm(head: bytes) -> ArtifactKind | None:
    """Module or Component from a binary's first 8 bytes; None if it is not WebAssembly."""
    preamble = bytes(head[: mt.PREAMBLE_SIZE])
    if preamble == mt.CORE_MODULE_PREAMBLE:
        return ArtifactKind.MODULE
    if preamble == mt.COMPONENT_PREAMBLE:
        return ArtifactKind.COMPONENT
    return None


def classify(
    manifest: ManifestLike,
    config: Mapping[str, Any],
    layer_head: bytes | None = None,
    *,
    platform: str | None = None,
) -> Classification:
    """Classify a single-platform manifest and its config blob.

    ``layer_head`` is the start of the layer :func:`layer_to_sniff` named; without it a config
    hint (``os``) or, failing that, Module is assumed. ``platform`` overrides the one read from
    the config (the resolver passes the chosen index entry's platform).
    """
    parsed = _as_manifest(manifest)
    layout = detect_layout(parsed, config)
    if platform is None:
        config_platform = parse_platform(config)
        platform = str(config_platform) if config_platform else None

    if layout is ArtifactLayout.CNCF_WASM:
        kind = _kind_from_wasm_config(config) or _kind_from_bytes(layer_head, config)
        exports = _component_exports(config) if kind is ArtifactKind.COMPONENT else ()
        return Classification(kind, layout, exports, platform)
    if layout is ArtifactLayout.SPIN:
        return Classification(ArtifactKind.SPIN_APP, layout, (), platform)
    if layout is ArtifactLayout.WASM_LAYERS:
        return Classification(_kind_from_bytes(layer_head, config), layout, (), platform)
    return Classification(ArtifactKind.CONTAINER, layout, (), platform)


def _kind_from_wasm_config(config: Mapping[str, Any]) -> ArtifactKind | None:
    """What the CNCF config says outright; None if it leaves the question open."""
    if config.get("os") == mt.COMPONENT_OS or isinstance(config.get("component"), Mapping):
        return ArtifactKind.COMPONENT
    if config.get("os") == mt.MODULE_OS:
        return ArtifactKind.MODULE
    return None


def _kind_from_bytes(head: bytes | None, config: Mapping[str, Any]) -> ArtifactKind:
    """The binary decides when we have it; a binary that is not Wasm is refused outright."""
    if head is not None:
        kind = sniff_wasm(head)
        if kind is None:
            raise UnsupportedArtifact(f"the Wasm layer does not start with a WebAssembly preamble: {head[:8].hex()}")
        return kind
    return ArtifactKind.COMPONENT if config.get("os") == mt.COMPONENT_OS else ArtifactKind.MODULE


def _component_exports(config: Mapping[str, Any]) -> tuple[str, ...]:
    component = config.get("component")
    if not isinstance(component, Mapping):
        return ()
    exports = component.get("exports")
    if not isinstance(exports, list):
        return ()
    return tuple(e for e in exports if isinstance(e, str))


def _has_spin_label(config: Mapping[str, Any]) -> bool:
    inner = config.get("config")
    labels = inner.get("Labels") if isinstance(inner, Mapping) else None
    return isinstance(labels, Mapping) and mt.SPIN_LOCKED_APP_LABEL in labels


def _wasm_layer(manifest: ImageManifest) -> Descriptor | None:
    return next((layer for layer in manifest.layers if layer.media_type in mt.RUNWASI_LAYER_TYPES), None)


def _as_manifest(manifest: ManifestLike) -> ImageManifest:
    parsed = manifest if isinstance(manifest, ImageManifest) else parse_manifest(manifest)
    if isinstance(parsed, ImageIndex):
        raise UnsupportedArtifact("expected a platform manifest, got an index (select a platform first)")
    return parsed


def _as_index(index: IndexLike) -> ImageIndex:
    parsed = index if isinstance(index, ImageIndex) else parse_manifest(index)
    if not isinstance(parsed, ImageIndex):
        raise UnsupportedArtifact("expected an index, got a platform manifest")
    return parsed
