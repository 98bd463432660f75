"""What an OCI artifact turned out to be, as recorded in `WasmApp.status.artifact`.

Kept apart from the registry client so that the API models (and so the CRD schema) own these
names, while the registry package only produces them.
"""

from __future__ import annotations

from enum import StrEnum


class ArtifactKind(StrEnum):
    """What a runtime has to be able to execute."""

    MODULE = "Module"  # a WASI preview 1 core module
    COMPONENT = "Component"  # a WebAssembly component (WASI preview 2)
    SPIN_APP = "SpinApp"  # a Spin application: needs the Spin shim
    CONTAINER = "Container"  # an ordinary container image, not Wasm


class ArtifactLayout(StrEnum):
    """How the artifact is laid out in the registry (which producer made it)."""

    CNCF_WASM = "CNCFWasmArtifact"  # config application/vnd.wasm.config.v0+json, one application/wasm layer
    SPIN = "SpinOCI"  # `spin registry push` layout, Spin locked-app config layer
    WASM_LAYERS = "WasmLayers"  # image config with architecture wasm and Wasm layers (runwasi)
    CONTAINER_IMAGE = "ContainerImage"  # an ordinary OCI/Docker image


WASM_KINDS: frozenset[ArtifactKind] = frozenset({ArtifactKind.MODULE, ArtifactKind.COMPONENT, ArtifactKind.SPIN_APP})
