"""The executables the cluster runs: built from source by build-binaries.sh, cached."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from e2e.support.scripts import printed_path

from .errors import ClusterError

BUILD_SCRIPT = Path(__file__).resolve().parent / "build-binaries.sh"


@dataclasses.dataclass(frozen=True)
class Binaries:
    """Absolute paths of every executable the cluster runs."""

    etcd: str
    kube_apiserver: str
    kube_controller_manager: str
    kube_scheduler: str
    kubectl: str
    kwok: str
    registry: str


def build_binaries() -> Path:
    """Run build-binaries.sh: it builds whatever is missing (minutes, once) and prints the bin dir.

    A warm run only stats files, so calling it on every `up` keeps one source of truth for the
    cache layout instead of re-deriving the pinned directory name here.
    """
    return printed_path(BUILD_SCRIPT, lambda code, _: ClusterError(
        f"{BUILD_SCRIPT} failed (exit {code}); see its output above"))


def locate_binaries() -> Binaries:
    """Our cached builds, with envtest's etcd/kube-apiserver/kubectl preferred when KUBEBUILDER_ASSETS
    points at them (lets CI reuse a pre-provisioned envtest directory for those three)."""
    bindir = build_binaries()
    assets = os.environ.get("KUBEBUILDER_ASSETS")

    def pick(name: str) -> str:
        if assets and os.access(Path(assets) / name, os.X_OK):
            return str(Path(assets) / name)
        return str(bindir / name)

    registry = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    if not os.access(registry, os.X_OK):
        raise ClusterError("docker-registry is not installed; run `make system-deps`")
    return Binaries(
        etcd=pick("etcd"),
        kube_apiserver=pick("kube-apiserver"),
        kube_controller_manager=str(bindir / "kube-controller-manager"),
        kube_scheduler=str(bindir / "kube-scheduler"),
        kubectl=pick("kubectl"),
        kwok=str(bindir / "kwok"),
        registry=registry,
    )
