"""Where the real node keeps its state: `.wasmkube/node/`, beside the cluster it joins."""

from __future__ import annotations

import contextlib
from pathlib import Path

from e2e.support import state
from e2e.support.supervisor import Supervisor

# The node's own daemons; a process of one of these naming our directory is ours.
EXECUTABLES = ("containerd", "kubelet")


class NodePaths:
    """Everything the node writes lives under `root`; `cluster` is the local cluster's state dir."""

    def __init__(self, root: Path, cluster: Path) -> None:
        self.root = root
        self.cluster = cluster
        self.cluster_pki = cluster / "pki"
        self.run = root / "run"
        self.logs = root / "logs"
        self.config = root / "config"
        self.pki = root / "pki"
        self.socket = self.run / "containerd.sock"
        self.containerd_root = root / "containerd" / "root"
        self.containerd_state = root / "containerd" / "state"
        self.kubelet_root = root / "kubelet"
        self.pod_logs = root / "pod-logs"
        self.cni_conf = self.config / "cni"
        self.cni_ipam = root / "cni-ipam"
        self.certs_d = self.config / "certs.d"
        self.tunables = root / "kernel-tunables.json"  # sysctl values from before kubelet ran
        self.kmsg_marker = root / "created-dev-kmsg"  # present if `up` created /dev/kmsg
        self.bindir_file = root / "bindir"  # build-node.sh's bin dir, for down/status (no build)

    @classmethod
    def from_env(cls) -> NodePaths:
        """`.wasmkube/node/`, beside the cluster state dir (both follow WASMKUBE_STATE)."""
        return cls(root=state.node_dir(), cluster=state.cluster_dir())

    def known_bindir(self) -> Path | None:
        """The bin dir the last `up` used, if it still exists."""
        with contextlib.suppress(OSError):
            bindir = Path(self.bindir_file.read_text().strip())
            if bindir.is_dir():
                return bindir
        return None

    def supervisor(self) -> Supervisor:
        return Supervisor(self.root, EXECUTABLES)
