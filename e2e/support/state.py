"""Where the harness keeps its state and its caches, worked out in this one place.

Everything a run leaves behind lives in `.wasmkube/` at the repository root: the cluster in
`cluster/`, the real node in `node/`, the admin kubeconfig, the demo's processes and the
benchmark's reports. WASMKUBE_STATE moves the cluster directory (a second checkout or a CI
sandbox); everything else is then placed beside it, so one variable moves a whole run.
Builds are cached outside the checkout, in WASMKUBE_CACHE (default ~/.cache/wasmkube), because
they take many minutes and every checkout can share them.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def cluster_dir() -> Path:
    """`.wasmkube/cluster`, or $WASMKUBE_STATE (resolved, so a relative value means the same
    directory from any working directory)."""
    override = os.environ.get("WASMKUBE_STATE")
    return Path(override).resolve() if override else REPO_ROOT / ".wasmkube" / "cluster"


def state_root() -> Path:
    """`.wasmkube`: the directory that holds the cluster's, the node's and the demo's state."""
    return cluster_dir().parent


def node_dir() -> Path:
    """`.wasmkube/node`: the real node's state, beside the cluster it joins."""
    return state_root() / "node"


def kubeconfig() -> Path:
    """`.wasmkube/kubeconfig`: the admin kubeconfig `localcluster up` writes.

    Deliberately not $KUBECONFIG: a developer's shell may point that at a real cluster, and the
    tests create and delete namespaces.
    """
    return state_root() / "kubeconfig"


def cache_dir() -> Path:
    """$WASMKUBE_CACHE or ~/.cache/wasmkube (the Makefile and the build scripts use the same default)."""
    return Path(os.environ.get("WASMKUBE_CACHE") or Path.home() / ".cache" / "wasmkube")


def existing_cluster() -> bool:
    """Whether the tests run against someone else's cluster (WASMKUBE_EXISTING_CLUSTER=1, or an
    `up` in that mode left its marker): then no control-plane process here is ours."""
    return (os.environ.get("WASMKUBE_EXISTING_CLUSTER") == "1"
            or (cluster_dir() / "external-cluster").exists())
