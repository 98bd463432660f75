"""The local cluster's fixed layout: addresses, ports, names and the fake nodes.

Shared with the real node, the tests and the benchmark; nothing here reads the environment.
"""

from __future__ import annotations

from typing import Any

HOST = "127.0.0.1"
ETCD_CLIENT_PORT = 12379
ETCD_PEER_PORT = 12380
APISERVER_PORT = 16443
CONTROLLER_MANAGER_PORT = 10257
SCHEDULER_PORT = 10259
KWOK_PORT = 10248
REGISTRY_PORT = 5001
SERVICE_CIDR = "10.96.0.0/16"
CONTEXT_NAME = "wasmkube-local"
ADMIN_USER = "wasmkube-admin"
FIELD_MANAGER = "wasmkube-localcluster"

# The cluster's processes, in start order; `down` stops them in reverse.
COMPONENTS = ("etcd", "registry", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
# What each one needs running before its health means anything.
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "etcd": (), "registry": (), "kube-apiserver": ("etcd",),
    "kube-controller-manager": ("kube-apiserver",), "kube-scheduler": ("kube-apiserver",),
    "kwok": ("kube-apiserver",),
}
PORTS: dict[str, tuple[int, ...]] = {
    "etcd": (ETCD_CLIENT_PORT, ETCD_PEER_PORT), "registry": (REGISTRY_PORT,),
    "kube-apiserver": (APISERVER_PORT,), "kube-controller-manager": (CONTROLLER_MANAGER_PORT,),
    "kube-scheduler": (SCHEDULER_PORT,), "kwok": (KWOK_PORT,),
}
# Executables whose processes, with the state dir in their arguments, are the cluster's.
EXECUTABLES = frozenset({"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok",
                         "docker-registry"})

# Every node runs under KWOK, which finds them by this annotation.
KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
WASMTIME_LABEL = "wasmkube.dev/shim-wasmtime"
SPIN_LABEL = "wasmkube.dev/shim-spin"
WASM_ONLY_TAINT = {"key": "wasmkube.dev/wasm-only", "value": "true", "effect": "NoSchedule"}
NODE_ALLOCATABLE = {"cpu": "32", "memory": "256Gi", "pods": "1000"}
NODES: dict[str, dict[str, Any]] = {
    "wasm-node-1": {"labels": {WASMTIME_LABEL: "ready"}, "taints": []},
    "wasm-node-2": {"labels": {WASMTIME_LABEL: "ready"}, "taints": []},
    "spin-node-1": {"labels": {WASMTIME_LABEL: "ready", SPIN_LABEL: "ready"}, "taints": [WASM_ONLY_TAINT]},
    "container-node-1": {"labels": {}, "taints": []},
}
NODE_LEASE_SECONDS = 40  # KWOK's default lease duration, stated in its config (components.py)
