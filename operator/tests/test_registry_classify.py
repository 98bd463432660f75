"""Classification decides the shim, so every layout and the order between them is pinned here."""

from __future__ import annotations

from typing import Any

import pytest

from wasmkube.api.artifact import ArtifactKind, ArtifactLayout
from wasmkube.registry.classify import classify, detect_layout, layer_to_sniff, select_platform, sniff_wasm
from wasmkube.registry.errors import UnsupportedArtifact
from wasmkube.registry.manifest import ImageIndex, ImageManifest, parse_manifest

MODULE_HEAD = b"\x00asm\x01\x00\x00\x00"
COMPONENT_HEAD = b"\x00asm\x0d\x00\x01\x00"
HTTP = "wasi:http/incoming-handler@0.2.0"


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def descriptor(media_type: str, n: int, size: int = 100, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest(n), "size": size, **extra}


def manifest(config_type: str, *layer_types: str) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor(config_type, 1, size=50),
        "layers": [descriptor(t, 10 + i) for i, t in enumerate(layer_types)],
    }


WASM_CONFIG = "application/vnd.wasm.config.v0+json"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
CNCF = manifest(WASM_CONFIG, "application/wasm")


def test_cncf_wasip1_is_a_module_without_reading_the_layer() -> None:
    config = {"architecture": "wasm", "os": "wasip1", "layerDigests": [digest(10)]}
    assert layer_to_sniff(CNCF, config) is None
    result = classify(CNCF, config)
    assert (result.kind, result.layout, result.exports, result.platform) == (
        ArtifactKind.MODULE,
        ArtifactLayout.CNCF_WASM,
        (),
        "wasip1/wasm",
    )


def test_cncf_wasip2_is_a_component_with_exports() -> None:
    config = {"architecture": "wasm", "os": "wasip2", "component": {"exports": [HTTP, 7], "imports": []}}
    result = classify(CNCF, config)
    assert (result.kind, result.exports) == (ArtifactKind.COMPONENT, (HTTP,))  # non-strings dropped


def test_cncf_component_block_alone_means_component() -> None:
    result = classify(CNCF, {"architecture": "wasm", "component": {"exports": ["wasi:cli/run@0.2.0"]}})
    assert (result.kind, result.exports, result.platform) == (ArtifactKind.COMPONENT, ("wasi:cli/run@0.2.0",), None)


@pytest.mark.parametrize(
    ("head", "kind"), [(MODULE_HEAD, ArtifactKind.MODULE), (COMPONENT_HEAD, ArtifactKind.COMPONENT)]
)
def test_cncf_without_os_asks_for_the_layer_bytes(head: bytes, kind: ArtifactKind) -> None:
    config = {"architecture": "wasm"}
    layer = layer_to_sniff(CNCF, config)
    assert layer is not None and layer.digest == digest(10)
    assert classify(CNCF, config, head + b"rest").kind is kind


def test_a_wasm_layer_that_is_not_wasm_is_refused() -> None:
    with pytest.raises(UnsupportedArtifact, match="preamble"):
        classify(CNCF, {"architecture": "wasm"}, b"\x7fELF\x02\x01\x01\x00")


def test_spin_is_recognised_by_its_locked_app_layer() -> None:
    doc = manifest(
        IMAGE_CONFIG, "application/vnd.wasm.content.layer.v1+wasm", "application/vnd.fermyon.spin.application.v1+config"
    )
    result = classify(doc, {"architecture": "wasm", "os": "wasip1"})
    assert (result.kind, result.layout) == (ArtifactKind.SPIN_APP, ArtifactLayout.SPIN)
    assert layer_to_sniff(doc, {}) is None


def test_spin_is_recognised_by_its_config_label() -> None:
    doc = manifest(IMAGE_CONFIG, "application/vnd.wasm.content.layer.v1+wasm")
    config = {"config": {"Labels": {"com.fermyon.spin.lockedAppDigest": digest(5)}}}
    assert detect_layout(doc, config) is ArtifactLayout.SPIN


def test_spin_wins_over_wasm_layers() -> None:
    # a Spin app whose component layer happens to be application/wasm is still a Spin app
    doc = manifest(IMAGE_CONFIG, "application/wasm", "application/vnd.fermyon.spin.application.v1+config")
    assert detect_layout(doc, {"architecture": "wasm"}) is ArtifactLayout.SPIN


@pytest.mark.parametrize(
    "layer_type", ["application/wasm", "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm"]
)
@pytest.mark.parametrize(
    ("head", "kind"), [(MODULE_HEAD, ArtifactKind.MODULE), (COMPONENT_HEAD, ArtifactKind.COMPONENT)]
)
def test_wasm_layers_kind_comes_from_the_bytes(layer_type: str, head: bytes, kind: ArtifactKind) -> None:
    doc = manifest(IMAGE_CONFIG, layer_type)
    config = {"architecture": "wasm", "os": "wasip1"}
    assert layer_to_sniff(doc, config) is not None
    result = classify(doc, config, head)
    assert (result.kind, result.layout) == (kind, ArtifactLayout.WASM_LAYERS)


def test_wasm_layers_without_bytes_fall_back_to_the_os_hint() -> None:
    doc = manifest(IMAGE_CONFIG, "application/wasm")
    assert classify(doc, {"architecture": "wasm", "os": "wasip2"}).kind is ArtifactKind.COMPONENT
    assert classify(doc, {"architecture": "wasm", "os": "wasip1"}).kind is ArtifactKind.MODULE


@pytest.mark.parametrize(
    ("config", "layers"),
    [
        ({"architecture": "amd64", "os": "linux"}, ["application/vnd.oci.image.layer.v1.tar+gzip"]),
        # "wasm in a container image": a tar rootfs holding a .wasm, not runwasi's Wasm layers
        ({"architecture": "wasm", "os": "wasi"}, ["application/vnd.oci.image.layer.v1.tar+gzip"]),
        # Wasm layers but a non-wasm architecture: runwasi would not look at the layers
        ({"architecture": "amd64", "os": "linux"}, ["application/wasm"]),
    ],
)
def test_everything_else_is_a_container(config: dict[str, Any], layers: list[str]) -> None:
    doc = manifest(IMAGE_CONFIG, *layers)
    result = classify(doc, config)
    assert (result.kind, result.layout) == (ArtifactKind.CONTAINER, ArtifactLayout.CONTAINER_IMAGE)
    assert layer_to_sniff(doc, config) is None


def test_platform_argument_overrides_config() -> None:
    result = classify(manifest(IMAGE_CONFIG), {"architecture": "amd64", "os": "linux"}, platform="linux/amd64/v3")
    assert result.platform == "linux/amd64/v3"


def index(*platforms: tuple[str, str] | None) -> dict[str, Any]:
    entries = []
    for n, platform in enumerate(platforms):
        entry = descriptor("application/vnd.oci.image.manifest.v1+json", 100 + n)
        if platform is not None:
            entry["platform"] = {"os": platform[0], "architecture": platform[1]}
        entries.append(entry)
    return {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}


@pytest.mark.parametrize(
    ("platforms", "chosen"),
    [
        ([("linux", "amd64"), ("wasip1", "wasm")], 1),  # Wasm wins regardless of order
        ([("wasip2", "wasm"), ("wasip1", "wasm")], 0),  # among Wasm entries, index order
        ([("wasi", "wasm"), ("linux", "amd64")], 0),  # Docker's older wasi/wasm convention
        ([("linux", "arm64"), ("linux", "amd64")], 1),
        ([("unknown", "unknown"), ("linux", "amd64")], 1),  # attestation entries are skipped
        ([None, ("linux", "amd64")], 1),
        ([("linux", "arm64"), ("windows", "amd64")], None),
        ([("unknown", "wasm")], None),
    ],
)
def test_index_selection(platforms: list[tuple[str, str] | None], chosen: int | None) -> None:
    entry = select_platform(index(*platforms))
    assert (entry.digest if entry else None) == (digest(100 + chosen) if chosen is not None else None)


def test_docker_manifest_list_is_an_index() -> None:
    doc = index(("linux", "amd64"))
    doc["mediaType"] = "application/vnd.docker.distribution.manifest.list.v2+json"
    assert isinstance(parse_manifest(doc), ImageIndex)
    assert select_platform(doc) is not None


def test_media_type_may_come_from_content_type() -> None:
    doc = manifest(IMAGE_CONFIG, "application/wasm")
    del doc["mediaType"]
    parsed = parse_manifest(doc, "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8")
    assert isinstance(parsed, ImageManifest)
    assert parsed.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert parsed.content_size == 150


def test_classify_refuses_an_index_and_select_refuses_a_manifest() -> None:
    with pytest.raises(UnsupportedArtifact, match="index"):
        classify(index(("linux", "amd64")), {})
    with pytest.raises(UnsupportedArtifact, match="expected an index"):
        select_platform(CNCF)


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"schemaVersion": 1, "name": "old/schema1"},
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"},
        {"schemaVersion": 2, "mediaType": "text/html", "config": descriptor(IMAGE_CONFIG, 1), "layers": []},
        {**manifest(IMAGE_CONFIG), "layers": "nope"},
        {**manifest(IMAGE_CONFIG), "config": {"mediaType": IMAGE_CONFIG, "digest": digest(1), "size": -1}},
        {**manifest(IMAGE_CONFIG), "config": {"mediaType": IMAGE_CONFIG, "digest": digest(1), "size": True}},
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": {}},
    ],
)
def test_malformed_documents_are_unsupported_not_crashes(doc: Any) -> None:
    with pytest.raises(UnsupportedArtifact):
        parse_manifest(doc)


def test_sniff() -> None:
    assert sniff_wasm(MODULE_HEAD) is ArtifactKind.MODULE
    assert sniff_wasm(COMPONENT_HEAD + b"...") is ArtifactKind.COMPONENT
    assert sniff_wasm(b"\x00asm") is None  # too short to tell
    assert sniff_wasm(b"\x00asm\x02\x00\x00\x00") is None
