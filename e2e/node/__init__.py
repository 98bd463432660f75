"""The real node (issue #6): containerd + wasmkube's Wasm shim + a real kubelet as `real-node-1`.

`ensure_real_node()` starts it (building what is missing) unless it is already Ready;
`stop_real_node()` stops it and undoes every host change. See realnode.py for what it needs and
what it touches, and workloads.py for pods, images and the RuntimeClass that tests run on it.
"""

from .binaries import binaries_cached
from .errors import NodeError, NodeUnsupported
from .layout import NODE_NAME, REAL_NODE_SELECTOR, REAL_NODE_TAINT, REAL_NODE_TOLERATION, RUNTIME_HANDLER
from .lifecycle import ensure_real_node, stop_real_node

__all__ = [
    "NODE_NAME",
    "REAL_NODE_SELECTOR",
    "REAL_NODE_TAINT",
    "REAL_NODE_TOLERATION",
    "RUNTIME_HANDLER",
    "NodeError",
    "NodeUnsupported",
    "binaries_cached",
    "ensure_real_node",
    "stop_real_node",
]
