"""Media types and labels that decide what an artifact is.

Collected in one place because the classifier, the resolver and the test-artifact builders must
agree on every string; a typo in one of them silently turns a Wasm artifact into a "container".
"""

from __future__ import annotations

from typing import Final

# Manifests and indexes (OCI and their Docker predecessors).
OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"

MANIFEST_TYPES: Final = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES: Final = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})

MANIFEST_ACCEPT: Final = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST))
"""Accept header for manifest requests: the list containerd sends, so the digest we pin is the
digest of the very document the node will resolve for the same tag."""

# Image configs.
OCI_IMAGE_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
DOCKER_IMAGE_CONFIG: Final = "application/vnd.docker.container.image.v1+json"
OCI_EMPTY: Final = "application/vnd.oci.empty.v1+json"

# CNCF TAG-Runtime Wasm OCI artifact.
WASM_CONFIG: Final = "application/vnd.wasm.config.v0+json"
WASM_LAYER: Final = "application/wasm"

# runwasi "Wasm layers in an image" (oci-tar-builder).
WASM_COMPONENT_LAYER: Final = "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm"
RUNWASI_LAYER_TYPES: Final = frozenset({WASM_LAYER, WASM_COMPONENT_LAYER})

# Spin (`spin registry push`): the locked app is a *layer*, not the manifest config.
SPIN_APP_CONFIG_LAYER: Final = "application/vnd.fermyon.spin.application.v1+config"
SPIN_CONTENT_LAYER: Final = "application/vnd.wasm.content.layer.v1+wasm"
SPIN_DATA_LAYER: Final = "application/vnd.wasm.content.layer.v1+data"
SPIN_LOCKED_APP_LABEL: Final = "com.fermyon.spin.lockedAppDigest"

# Platform values.
WASM_ARCHITECTURE: Final = "wasm"
WASM_OSES: Final = ("wasip2", "wasip1", "wasi")
MODULE_OS: Final = "wasip1"
COMPONENT_OS: Final = "wasip2"

# Binary preambles (magic + version/layer), what wasmparser checks.
WASM_MAGIC: Final = b"\x00asm"
CORE_MODULE_PREAMBLE: Final = b"\x00asm\x01\x00\x00\x00"
COMPONENT_PREAMBLE: Final = b"\x00asm\x0d\x00\x01\x00"
PREAMBLE_SIZE: Final = 8
