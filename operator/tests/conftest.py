"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from wasmkube.api.wasmapp import WasmApp
from wasmkube.api.wasmruntime import WasmRuntime


@pytest.fixture
def make_app() -> Callable[..., WasmApp]:
    """A WasmApp from a camelCase spec, as it would arrive from the API server."""

    def make(
        name: str = "hello",
        namespace: str = "apps",
        labels: dict[str, str] | None = None,
        uid: str = "app-uid-1",
        generation: int = 1,
        **spec: Any,
    ) -> WasmApp:
        body: dict[str, Any] = {"image": "registry.example.com/team/hello:1.0", **spec}
        metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": uid, "generation": generation}
        if labels is not None:
            metadata["labels"] = labels
        return WasmApp.model_validate({"metadata": metadata, "spec": body})

    return make


@pytest.fixture
def make_runtime() -> Callable[..., WasmRuntime]:
    """A WasmRuntime from a camelCase spec (handler `spin` unless given)."""

    def make(name: str = "spin", uid: str = "runtime-uid-1", **spec: Any) -> WasmRuntime:
        body: dict[str, Any] = {"handler": "spin", **spec}
        return WasmRuntime.model_validate({"metadata": {"name": name, "uid": uid, "generation": 1}, "spec": body})

    return make
