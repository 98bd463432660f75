"""Helpers shared by the integration tests in e2e/ (fixtures live in e2e/conftest.py)."""

from . import state
from .binaries import BinariesUnavailable, bin_dir, binary
from .cluster import REGISTRY, Cluster, KubectlError, default_kubeconfig, registry_unreachable_reason
from .waiting import wait_for

__all__ = [
    "REGISTRY",
    "BinariesUnavailable",
    "Cluster",
    "KubectlError",
    "bin_dir",
    "binary",
    "default_kubeconfig",
    "registry_unreachable_reason",
    "state",
    "wait_for",
]
