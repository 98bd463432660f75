"""Run one real Kubernetes node, `real-node-1`, next to the local cluster: containerd with runc and
wasmkube's Wasm shim, plus a real kubelet (v1.34) registered with the cluster's apiserver.

The local cluster's four nodes are KWOK fakes: pods "run" there without any process. This node
really starts containers, so tests can see a Wasm module print to `kubectl logs` next to an
ordinary Linux container. It needs root, writable cgroups, overlayfs and network namespaces;
`check` says whether this machine has them.

    python -m e2e.node.realnode up | down [--purge] | status | check

The work is split by job: containerd.py, kubelet.py, network.py, cgroups.py, host.py and
registration.py, put together by lifecycle.py; the daemons run under the harness's one
supervisor (e2e/support/supervisor.py). State lives in `.wasmkube/node/` (next to the cluster's
`.wasmkube/cluster/`, or next to $WASMKUBE_STATE). Binaries come from build-node.sh
(containerd, ctr, the shim, the pause image) and e2e/cluster/build-binaries.sh (kubelet). What
`up` changes outside that directory, and how `down` undoes it:

* cgroups: kubelet's tree lives under `/wasmkube` in every hierarchy (cgroupRoot); `down` kills
  what is left in it and removes it.
* network: pods get their own network namespaces (mounted under containerd's state dir) on the
  bridge `wasmkube0`, 10.222.0.0/24, no NAT and no forwarding; `down` deletes the bridge.
* kernel tunables: kubelet sets vm.overcommit_memory, kernel.panic, kernel.panic_on_oops, ...
  (it cannot be told not to); `up` records the old values first and `down` writes them back.
* iptables: untouched. kubelet runs with a PATH without sbin, so it finds no iptables binary and
  skips its KUBE-FIREWALL/KUBE-IPTABLES-HINT chains.
* fixed paths that no setting moves: kubelet's `/var/log/containers` links and
  `/var/lib/kubelet/device-plugins/kubelet.sock`, libcni's `/var/lib/cni/results`, and under
  `/run/containerd` the shim sockets (`s/`) and the Wasm shim's container state (`wasmtime/`).
  `down` removes our entries and then whichever of those directories are left empty.

Node addresses. kubelet refuses a loopback --node-ip, yet the apiserver must reach the kubelet
on 127.0.0.1 (the only address tests may use). So kubelet runs with `--cloud-provider=external`
and registration.py plays the (tiny) cloud controller: it sets the node's only address to
InternalIP 127.0.0.1 and removes the `uninitialized` taint. kubelet keeps addresses that a cloud
provider set, and the apiserver's default address preference then dials 127.0.0.1:10250.
"""

from __future__ import annotations

import argparse
import sys

from .errors import NodeError, log
from .layout import NODE_NAME, REAL_NODE_SELECTOR, REAL_NODE_TOLERATION
from .lifecycle import RealNode, ensure_real_node, stop_real_node
from .paths import NodePaths
from .preflight import lacks_cap_sys_resource, preflight

# What callers written before the split reach through this module (`realnode.preflight(...)`).
__all__ = ["NODE_NAME", "REAL_NODE_SELECTOR", "REAL_NODE_TOLERATION", "NodePaths", "RealNode", "main", "preflight"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.node.realnode", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start containerd + kubelet and register real-node-1 (idempotent)")
    down = sub.add_parser("down", help="stop everything and undo the host changes")
    down.add_argument("--purge", action="store_true", help="also delete .wasmkube/node (images, certificates)")
    sub.add_parser("status", help="print each piece up/down; exit 0 if the node is Ready")
    sub.add_parser("check", help="say whether this machine can run a real node; exit 0 if it can")
    args = parser.parse_args(argv)
    paths = NodePaths.from_env()
    try:
        if args.command == "up":
            ensure_real_node()
        elif args.command == "down":
            stop_real_node(args.purge)
        elif args.command == "status":
            return 0 if RealNode(paths).status() else 1
        else:
            problems = preflight(paths)
            for problem in problems:
                print(f"cannot run a real node: {problem}")
            if not problems:
                print("this machine can run a real node (root, cgroups, overlayfs, network namespaces)")
                if lacks_cap_sys_resource():
                    print("note: no CAP_SYS_RESOURCE, so containerd clamps pod OOM score adjustments to 0")
            return 1 if problems else 0
    except NodeError as err:
        log(f"ERROR: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
