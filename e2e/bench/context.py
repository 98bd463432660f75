"""What every row needs: the config, the cluster, an admin client, a work dir, the pushed images."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

from e2e.support.cluster import Cluster
from e2e.support.operator_fixtures import ExampleImages, install_crds, push_examples
from e2e.support.state import REPO_ROOT

from .config import BenchConfig
from .kubeapi import KubeApi
from .shared import kubectl

RUNTIMES_FILE = REPO_ROOT / "examples" / "wasmruntimes.yaml"
RUNTIME_NAMES = ("wasmtime", "spin")


@dataclasses.dataclass
class BenchContext:
    config: BenchConfig
    cluster: Cluster
    admin: KubeApi
    workdir: Path  # logs, kubeconfigs and profiles of this run
    images: ExampleImages | None = None
    runtimes_created: bool = False  # we created the example WasmRuntimes, so we delete them
    run_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex[:5])
    profile: dict[str, Any] | None = None

    def namespace(self, what: str, n: int) -> str:
        return f"bench-{what}-{n}-{self.run_id}"


def prepare(ctx: BenchContext) -> None:
    """CRDs, the example artifacts in the registry, and the example WasmRuntimes (idempotent)."""
    install_crds(ctx.cluster)
    ctx.images = push_examples()
    existing = kubectl(ctx.cluster, "get", "wasmruntimes", "-o", "name", "--ignore-not-found")
    ctx.runtimes_created = not all(f"wasmruntime.wasmkube.dev/{name}" in existing for name in RUNTIME_NAMES)
    kubectl(ctx.cluster, "apply", "-f", str(RUNTIMES_FILE))


def cleanup(ctx: BenchContext) -> None:
    if ctx.runtimes_created:
        kubectl(ctx.cluster, "delete", "-f", str(RUNTIMES_FILE), "--ignore-not-found", "--wait=false", check=False)
