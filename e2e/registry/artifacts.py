"""Build one real artifact of every layout wasmkube must recognise, push it, and say what to expect.

Media types are spelled out literally here rather than imported from
``wasmkube.registry.mediatypes``: the builders are an independent statement of the layouts, so
a typo in the operator's constants fails a test instead of hiding in both.

Every component here is real: built from source by :mod:`.components` (cached), so a test that
runs one exercises what a user's component would.

Everything is deterministic (fixed timestamps, canonical JSON, reproducible tar+gzip, reproducible
C builds, cached builds), so the same run pushes the same digests and a warm registry dedupes
every blob.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wasmkube.api.artifact import ArtifactKind, ArtifactLayout

from . import components, wasm
from .components import HTTP_HANDLER
from .pusher import Blob, Pusher, canonical_json, sha256_digest

CREATED = "2026-01-01T00:00:00Z"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
WASM_CONFIG = "application/vnd.wasm.config.v0+json"
WASM_LAYER = "application/wasm"
BCA_COMPONENT_LAYER = "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm"
SPIN_WASM_LAYER = "application/vnd.wasm.content.layer.v1+wasm"
SPIN_LOCKED_APP_LAYER = "application/vnd.fermyon.spin.application.v1+config"
SPIN_LABEL = "com.fermyon.spin.lockedAppDigest"


@dataclass(frozen=True)
class PushedArtifact:
    """Where an artifact was pushed and what a correct resolver reports for it."""

    name: str
    reference: str
    digest: str  # of the tagged document (the index, for an index)
    size: int  # config + layers of the platform manifest
    kind: ArtifactKind
    layout: ArtifactLayout
    platform: str | None
    config_media_type: str
    manifest_size: int = 0  # bytes of the tagged manifest document itself
    media_type: str = OCI_MANIFEST
    exports: tuple[str, ...] = ()
    platform_digest: str | None = None


@dataclass(frozen=True)
class _Pushed:
    digest: str
    manifest_size: int
    content_size: int


def push_image(pusher: Pusher, repository: str, tag: str, config: Blob, layers: list[Blob]) -> _Pushed:
    """Upload config and layers, then the manifest under ``tag`` (a digest string works too)."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": pusher.blob(repository, config),
        "layers": [pusher.blob(repository, layer) for layer in layers],
    }
    digest, manifest_size = pusher.manifest(repository, tag, doc)
    return _Pushed(digest, manifest_size, len(config.data) + sum(len(layer.data) for layer in layers))


def cncf_module(pusher: Pusher, repository: str = "cncf/module", tag: str = "v1") -> PushedArtifact:
    """CNCF Wasm artifact, ``os: wasip1``: a core module (what ``wkg``/``oras`` push per spec)."""
    module = Blob(WASM_LAYER, wasm.wasip1_module(), {"org.opencontainers.image.title": "hello.wasm"})
    config = _wasm_config(module, os="wasip1")
    return _push_artifact(pusher, repository, tag, config, [module],
                          name="cncf-module", kind=ArtifactKind.MODULE,
                          layout=ArtifactLayout.CNCF_WASM, platform="wasip1/wasm", config_media_type=WASM_CONFIG)


def cncf_component(pusher: Pusher, repository: str = "cncf/component", tag: str = "v1") -> PushedArtifact:
    """CNCF Wasm artifact, ``os: wasip2`` with a ``component`` block naming its exports: the
    example greeter, a real wasi:http component."""
    return greeter_http(pusher, repository, tag, name="cncf-component")


def greeter_http(pusher: Pusher, repository: str = "examples/greeter-http", tag: str = "v1", *,
                 version: str = "v1", healthz_status: int = 200, name: str = "greeter-http") -> PushedArtifact:
    """The greeter of examples/greeter (``components.greeter_component``) as a CNCF Wasm artifact,
    what ``make demo`` pushes as examples/greeter-http:v1. Other versions or an unhealthy
    ``healthz_status`` give other digests, as other images should."""
    data = components.greeter_component(version, healthz_status)
    return _component_artifact(pusher, repository, tag, data, title="greeter.wasm", name=name,
                               exports=(HTTP_HANDLER,), imports=components.GREETER_IMPORTS)


def spin_import_http(pusher: Pusher, repository: str = "components/spin-import", tag: str = "v1") -> PushedArtifact:
    """A wasi:http component that also imports ``fermyon:spin/variables@2.0.0``: a plain CNCF
    component by its layout, but only a Spin host can instantiate it."""
    return _component_artifact(pusher, repository, tag, components.spin_import_component(), title="spin-import.wasm",
                               name="spin-import", exports=(HTTP_HANDLER,), imports=components.SPIN_IMPORT_IMPORTS)


def python_http(pusher: Pusher, repository: str = "components/python-http", tag: str = "v1") -> PushedArtifact:
    """The componentize-py HTTP handler (about 18 MB), for pulls and compiles that take time."""
    return _component_artifact(pusher, repository, tag, components.python_http_component(), title="app.wasm",
                               name="python-http", exports=(HTTP_HANDLER,), imports=())


def cli_command(pusher: Pusher, repository: str = "components/command", tag: str = "v1") -> PushedArtifact:
    """The ``wasi:cli/run`` component that prints argv and ``WASMKUBE_GREETING`` and exits with
    ``EXIT_CODE``."""
    return _component_artifact(pusher, repository, tag, components.command_component(), title="command.wasm",
                               name="command", exports=(components.CLI_RUN,), imports=())


def native_greeter(pusher: Pusher, repository: str = "bench/greeter-native", tag: str = "v1",
                   version: str = "v1") -> PushedArtifact:
    """The greeter's native twin (examples/greeter/native, static) as an ordinary linux/amd64
    image for runc: one gzip layer with /greeter, run as 65535 like the pause image."""
    layer_tar = components.native_greeter_layer(version)
    layer = Blob(OCI_TAR_GZIP, _gzip(layer_tar))
    config = _image_config("linux", "amd64", entrypoint=[components.NATIVE_PATH_IN_IMAGE],
                           user=components.NATIVE_USER, diff_ids=[sha256_digest(layer_tar)])
    return _push_artifact(pusher, repository, tag, config, [layer],
                          name="greeter-native", kind=ArtifactKind.CONTAINER,
                          layout=ArtifactLayout.CONTAINER_IMAGE, platform="linux/amd64")


def component(pusher: Pusher, repository: str, tag: str, data: bytes, *,
              exports: tuple[str, ...] = (HTTP_HANDLER,), name: str = "component") -> PushedArtifact:
    """Any component bytes (e.g. salted with ``components.with_custom_section`` for a digest no
    node has compiled) as a CNCF Wasm artifact naming its exports."""
    return _component_artifact(pusher, repository, tag, data, title="app.wasm", name=name, exports=exports,
                               imports=())


def cncf_unlabelled(pusher: Pusher, repository: str = "cncf/sniffed", tag: str = "v1") -> PushedArtifact:
    """CNCF Wasm config that names no ``os``: only the layer's first bytes tell it is a component."""
    layer = Blob(WASM_LAYER, components.greeter_component())
    config = Blob(
        WASM_CONFIG, canonical_json({"created": CREATED, "architecture": "wasm", "layerDigests": [layer.digest]})
    )
    return _push_artifact(pusher, repository, tag, config, [layer],
                          name="cncf-sniffed", kind=ArtifactKind.COMPONENT,
                          layout=ArtifactLayout.CNCF_WASM, platform=None, config_media_type=WASM_CONFIG)


def spin_app(pusher: Pusher, repository: str = "spin/hello", tag: str = "v1") -> PushedArtifact:
    """``spin registry push`` layout: Wasm content layer(s) and the locked app as the last layer."""
    module = Blob(SPIN_WASM_LAYER, wasm.wasip1_module())
    locked = {
        "spin_lock_version": 1,
        "metadata": {"name": "hello", "version": "0.1.0"},
        "triggers": [
            {"id": "trigger-hello", "trigger_type": "http", "trigger_config": {"component": "hello", "route": "/..."}}
        ],
        "components": [
            {"id": "hello", "source": {"content_type": "application/wasm", "content": {"digest": module.digest}}}
        ],
    }
    locked_layer = Blob(SPIN_LOCKED_APP_LAYER, canonical_json(locked))
    config = _image_config("wasip1", "wasm", labels={SPIN_LABEL: sha256_digest(locked_layer.data)})
    return _push_artifact(pusher, repository, tag, config, [module, locked_layer],
                          name="spin", kind=ArtifactKind.SPIN_APP,
                          layout=ArtifactLayout.SPIN, platform="wasip1/wasm")


def wasm_layers_module(pusher: Pusher, repository: str = "runwasi/module", tag: str = "v1") -> PushedArtifact:
    """runwasi image: image config with architecture ``wasm`` and one ``application/wasm`` layer."""
    layer = Blob(WASM_LAYER, wasm.wasip1_module())
    config = _image_config("wasip1", "wasm", entrypoint=["hello.wasm"])
    return _push_artifact(pusher, repository, tag, config, [layer],
                          name="wasm-layers-module", kind=ArtifactKind.MODULE,
                          layout=ArtifactLayout.WASM_LAYERS, platform="wasip1/wasm")


def wasm_layers_component(pusher: Pusher, repository: str = "runwasi/component", tag: str = "v1") -> PushedArtifact:
    """runwasi ``oci-tar-builder`` image with the bytecodealliance component layer type."""
    layer = Blob(BCA_COMPONENT_LAYER, components.greeter_component())
    config = _image_config("wasip2", "wasm", entrypoint=["component.wasm"])
    return _push_artifact(pusher, repository, tag, config, [layer],
                          name="wasm-layers-component", kind=ArtifactKind.COMPONENT,
                          layout=ArtifactLayout.WASM_LAYERS, platform="wasip2/wasm")


def container_image(
    pusher: Pusher, repository: str = "library/busybox", tag: str = "v1", architecture: str = "amd64"
) -> PushedArtifact:
    """An ordinary linux image: one tar+gzip layer with a static busybox and ``/bin/sh``."""
    layer_tar = _rootfs_tar()
    layer = Blob(OCI_TAR_GZIP, _gzip(layer_tar))
    config = _image_config("linux", architecture, entrypoint=["/bin/sh"], diff_ids=[sha256_digest(layer_tar)])
    return _push_artifact(pusher, repository, tag, config, [layer],
                          name="container", kind=ArtifactKind.CONTAINER,
                          layout=ArtifactLayout.CONTAINER_IMAGE, platform=f"linux/{architecture}")


def wasm_index(pusher: Pusher, repository: str = "multi/app", tag: str = "v1") -> PushedArtifact:
    """A multi-platform index: linux/amd64 container first, then a ``wasip1/wasm`` entry.

    The Wasm entry must win although it is listed second; the pinned digest is the index's.
    """
    container = container_image(pusher, repository, "linux-amd64")
    wasm_image = wasm_layers_module(pusher, repository, "wasm")
    entries = [(container, "linux", "amd64"), (wasm_image, "wasip1", "wasm")]
    return _index_artifact(pusher, repository, tag, entries, chosen=wasm_image, name="index")


def container_index(pusher: Pusher, repository: str = "multi/busybox", tag: str = "v1") -> PushedArtifact:
    """An index with no Wasm entry: arm64 listed first, linux/amd64 must be chosen."""
    arm = container_image(pusher, repository, "linux-arm64", architecture="arm64")
    amd = container_image(pusher, repository, "linux-amd64")
    entries = [(arm, "linux", "arm64"), (amd, "linux", "amd64")]
    return _index_artifact(pusher, repository, tag, entries, chosen=amd, name="container-index")


BUILDERS: dict[str, Callable[[Pusher], PushedArtifact]] = {
    "cncf-module": cncf_module,
    "cncf-component": cncf_component,
    "cncf-sniffed": cncf_unlabelled,
    "spin": spin_app,
    "wasm-layers-module": wasm_layers_module,
    "wasm-layers-component": wasm_layers_component,
    "container": container_image,
    "index": wasm_index,
    "container-index": container_index,
}


def push_all(pusher: Pusher) -> dict[str, PushedArtifact]:
    """Every layout above, keyed by name."""
    return {name: build(pusher) for name, build in BUILDERS.items()}


# -- helpers --------------------------------------------------------------------------------------


def _push_artifact(
    pusher: Pusher,
    repository: str,
    tag: str,
    config: Blob,
    layers: list[Blob],
    *,
    name: str,
    kind: ArtifactKind,
    layout: ArtifactLayout,
    platform: str | None,
    config_media_type: str = OCI_CONFIG,
    exports: tuple[str, ...] = (),
) -> PushedArtifact:
    """Push an image; returns what was pushed (reference, digest, sizes) plus what the builder
    expects the operator to report for it."""
    pushed = push_image(pusher, repository, tag, config, layers)
    return PushedArtifact(
        name=name,
        reference=f"{pusher.host}/{repository}:{tag}",
        digest=pushed.digest,
        size=pushed.content_size,
        manifest_size=pushed.manifest_size,
        kind=kind,
        layout=layout,
        platform=platform,
        config_media_type=config_media_type,
        exports=exports,
    )


def _component_artifact(
    pusher: Pusher,
    repository: str,
    tag: str,
    data: bytes,
    *,
    title: str,
    name: str,
    exports: tuple[str, ...],
    imports: tuple[str, ...],
) -> PushedArtifact:
    """A component as a CNCF Wasm artifact (``os: wasip2``, one ``application/wasm`` layer), with
    the ``component`` block rust-oci-wasm writes when it knows the world (left out if not)."""
    layer = Blob(WASM_LAYER, data, {"org.opencontainers.image.title": title})
    block = {"exports": list(exports), "imports": list(imports)} if imports else {"exports": list(exports)}
    config = _wasm_config(layer, os="wasip2", component=block)
    return _push_artifact(pusher, repository, tag, config, [layer],
                          name=name, kind=ArtifactKind.COMPONENT, layout=ArtifactLayout.CNCF_WASM,
                          platform="wasip2/wasm", config_media_type=WASM_CONFIG, exports=exports)


def _index_artifact(
    pusher: Pusher,
    repository: str,
    tag: str,
    entries: list[tuple[PushedArtifact, str, str]],
    *,
    chosen: PushedArtifact,
    name: str,
) -> PushedArtifact:
    """Push an OCI index over already pushed manifests; expect ``chosen``'s content, pinned by the
    index digest."""
    manifests = [
        {
            "mediaType": OCI_MANIFEST,
            "digest": artifact.digest,
            "size": artifact.manifest_size,
            "platform": {"os": os_name, "architecture": architecture},
        }
        for artifact, os_name, architecture in entries
    ]
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    digest, size = pusher.manifest(repository, tag, doc)
    return dataclasses.replace(
        chosen,
        name=name,
        reference=f"{pusher.host}/{repository}:{tag}",
        digest=digest,
        manifest_size=size,
        media_type=OCI_INDEX,
        platform_digest=chosen.digest,
    )


def _wasm_config(layer: Blob, *, os: str, component: dict[str, Any] | None = None) -> Blob:
    """The CNCF ``application/vnd.wasm.config.v0+json`` document (rust-oci-wasm field names)."""
    doc: dict[str, Any] = {"created": CREATED, "architecture": "wasm", "os": os, "layerDigests": [layer.digest]}
    if component is not None:
        doc["component"] = component
    return Blob(WASM_CONFIG, canonical_json(doc))


def _image_config(
    os: str,
    architecture: str,
    *,
    entrypoint: list[str] | None = None,
    labels: dict[str, str] | None = None,
    diff_ids: list[str] | None = None,
    user: str | None = None,
) -> Blob:
    """An OCI image config. Only tar layers have diff_ids (callers pass them): containerd builds
    the container's snapshot chain from diff_ids, so listing a Wasm layer there makes container
    creation fail ("parent snapshot ... does not exist"), as runwasi's own image builder knows."""
    inner: dict[str, Any] = {}
    if entrypoint:
        inner["Entrypoint"] = entrypoint
    if labels:
        inner["Labels"] = labels
    if user:
        inner["User"] = user
    doc = {
        "created": CREATED,
        "architecture": architecture,
        "os": os,
        "config": inner,
        "rootfs": {"type": "layers", "diff_ids": diff_ids or []},
    }
    return Blob(OCI_CONFIG, canonical_json(doc))


def _rootfs_tar() -> bytes:
    """``bin/busybox`` (Debian's busybox-static, or a tiny script if absent) and ``bin/sh`` → it."""
    busybox = Path("/bin/busybox")
    payload = busybox.read_bytes() if busybox.exists() else b"#!/bin/sh\necho busybox stand-in\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("bin",):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(payload), 0o755
        tar.addfile(info, io.BytesIO(payload))
        link = tarfile.TarInfo("bin/sh")
        link.type, link.linkname = tarfile.SYMTYPE, "busybox"
        tar.addfile(link)
    return buffer.getvalue()


def _gzip(data: bytes) -> bytes:
    """gzip with a zero timestamp and no file name, so the layer digest is reproducible."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as stream:
        stream.write(data)
    return buffer.getvalue()
