"""Which WasmRuntime runs an app: the one it names, or the default for its artifact kind."""

from __future__ import annotations

from collections.abc import Iterable

from wasmkube.api.artifact import WASM_KINDS, ArtifactKind
from wasmkube.api.wasmapp import WasmApp
from wasmkube.api.wasmruntime import WasmRuntime
from wasmkube.errors import SpecError


def select_runtime(app: WasmApp, runtimes: Iterable[WasmRuntime], kind: ArtifactKind) -> WasmRuntime:
    """Pick the runtime, or explain precisely why there is none."""
    if kind not in WASM_KINDS:
        raise SpecError(
            "IncompatibleArtifact",
            f"{app.spec.image} is an ordinary container image, not a Wasm artifact; "
            "a WasmApp runs Wasm modules, components or Spin apps",
        )
    runtimes = list(runtimes)
    if app.spec.runtime:
        named = next((r for r in runtimes if r.name == app.spec.runtime), None)
        if named is None:
            raise SpecError("RuntimeNotFound", f"WasmRuntime {app.spec.runtime!r} does not exist")
        if not named.spec.runs(kind):
            runs = ", ".join(k.value for k in named.spec.artifact_kinds)
            raise SpecError(
                "IncompatibleArtifact",
                f"WasmRuntime {named.name!r} runs {runs}, but {app.spec.image} is a {kind.value}",
            )
        return named
    defaults = sorted((r for r in runtimes if r.spec.default and r.spec.runs(kind)), key=lambda r: r.name)
    if not defaults:
        raise SpecError(
            "NoDefaultRuntime",
            f"no WasmRuntime is the default for {kind.value}; set spec.runtime or mark one runtime default",
        )
    if len(defaults) > 1:
        names = ", ".join(r.name for r in defaults)
        raise SpecError(
            "AmbiguousDefaultRuntime",
            f"several WasmRuntimes are the default for {kind.value} ({names}); set spec.runtime",
        )
    return defaults[0]
