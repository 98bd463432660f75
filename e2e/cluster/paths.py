"""Where one local cluster keeps its state; everything is derived from one directory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from e2e.support import state
from e2e.support.supervisor import Supervisor

from .layout import EXECUTABLES


@dataclasses.dataclass(frozen=True)
class Paths:
    """The directories and files of the cluster in `state` (`.wasmkube/cluster` by default)."""

    state: Path

    @classmethod
    def from_env(cls) -> Paths:
        """Honour WASMKUBE_STATE so a second cluster (or a CI sandbox) can live elsewhere."""
        return cls(state=state.cluster_dir())

    @property
    def kubeconfig(self) -> Path:
        """`.wasmkube/kubeconfig`: the admin kubeconfig the tests and `make` targets use."""
        return self.state.parent / "kubeconfig"

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def config(self) -> Path:
        return self.state / "config"

    @property
    def external_marker(self) -> Path:
        """Present while `up` is pointed at an existing cluster (WASMKUBE_EXISTING_CLUSTER=1)."""
        return self.state / "external-cluster"

    def supervisor(self) -> Supervisor:
        """The supervisor of this cluster's processes (also for tests that break them on purpose)."""
        return Supervisor(self.state, EXECUTABLES)
