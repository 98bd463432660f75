"""The real node's fixed layout: its name, addresses, labels, taints, network and cgroup names.

Shared with the tests, the demo and the benchmark; WASMKUBE_REAL_NODE is the only setting read.
"""

from __future__ import annotations

import os
from pathlib import Path

from e2e.cluster.layout import REGISTRY_PORT, WASMTIME_LABEL

# WASMKUBE_REAL_NODE names a node of an existing cluster (WASMKUBE_EXISTING_CLUSTER=1, e.g. kind
# with runwasi's shim) for the real-node tests to use instead of starting one here.
NODE_NAME = os.environ.get("WASMKUBE_REAL_NODE") or "real-node-1"
NODE_ADDRESS = "127.0.0.1"
KUBELET_PORT = 10250
# kubelet's default healthz port (10248) is KWOK's server port in this cluster.
KUBELET_HEALTHZ_PORT = 10268
CRI_NAMESPACE = "k8s.io"
BRIDGE = "wasmkube0"
POD_SUBNET = "10.222.0.0/24"
POD_GATEWAY = "10.222.0.1"
CGROUP_ROOT = "wasmkube"
CNI_BIN_DIR = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "loopback")
REGISTRY = f"127.0.0.1:{REGISTRY_PORT}"
RUNTIME_HANDLER = "wasmtime"
SHIM_RUNTIME_TYPE = "io.containerd.wasmtime.v1"
SHIM_BINARY = "containerd-shim-wasmtime-v1"

REAL_NODE_LABEL = "wasmkube.dev/real-node"
NODE_LABELS = {WASMTIME_LABEL: "ready", REAL_NODE_LABEL: "true"}
REAL_NODE_TAINT = {"key": REAL_NODE_LABEL, "value": "true", "effect": "NoSchedule"}
UNINITIALIZED_TAINT = "node.cloudprovider.kubernetes.io/uninitialized"
# A pod that should run here needs these (plus `runtimeClassName` for Wasm).
REAL_NODE_TOLERATION = {"key": REAL_NODE_LABEL, "operator": "Equal", "value": "true", "effect": "NoSchedule"}
REAL_NODE_SELECTOR = {"kubernetes.io/hostname": NODE_NAME}

# What kubelet's container manager writes into /proc/sys (pkg/kubelet/cm setupKernelTunables).
KERNEL_TUNABLES = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
                   "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes")
# cgroup v1 controllers kubelet insists on (cpu, cpuacct, cpuset, memory) plus pids.
REQUIRED_V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids")
# No sbin: kubelet then finds no iptables and leaves the host firewall alone (see realnode.py).
CHILD_PATH = "/usr/local/bin:/usr/bin:/bin"
