"""Run wasmkube's local Kubernetes cluster as plain processes on 127.0.0.1.

There is no Docker on our machines, so the cluster is assembled from binaries that
build-binaries.sh compiles from source: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and KWOK (which simulates the kubelets of four fake nodes), plus Debian's
docker-registry as the local OCI registry. Every process is detached (its own session and
process group), logs to the state directory and has a pid record there, so a later `down`
from any shell can find and stop it.

    python -m e2e.cluster.localcluster up | down [--purge] | status | env

`up` is idempotent and heals a cluster left broken (e.g. by a laptop's sleep): see lifecycle.py.
State lives in `.wasmkube/cluster/` at the repository root (override with WASMKUBE_STATE);
the admin kubeconfig is written next to it as `.wasmkube/kubeconfig`.
"""

from __future__ import annotations

import argparse
import os
import sys

from .binaries import build_binaries
from .errors import ClusterError, log
from .layout import HOST, REGISTRY_PORT
from .lifecycle import Cluster
from .paths import Paths


def cmd_env(paths: Paths) -> None:
    """Shell exports for `eval "$(python -m e2e.cluster.localcluster env)"`: kubeconfig, registry
    and our tools on PATH."""
    bindir = build_binaries()
    print(f"export KUBECONFIG={paths.kubeconfig}")
    print(f"export WASMKUBE_REGISTRY={HOST}:{REGISTRY_PORT}")
    print(f'export PATH="{bindir}:$PATH"')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m e2e.cluster.localcluster", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the cluster, or repair it (idempotent)")
    down = sub.add_parser("down", help="stop every process of the cluster")
    down.add_argument("--purge", action="store_true", help="also delete the state dir (etcd data, PKI)")
    sub.add_parser("status", help="print each component up/down; exit 0 if all are up")
    sub.add_parser("env", help="print shell exports for using the cluster")
    args = parser.parse_args(argv)

    paths = Paths.from_env()
    cluster = Cluster(paths)
    try:
        if args.command == "up":
            with cluster.sup.lock():
                if os.environ.get("WASMKUBE_EXISTING_CLUSTER") == "1":
                    cluster.up_existing()
                else:
                    cluster.up()
        elif args.command == "down":
            if not paths.state.exists():
                log("nothing to stop")
                return 0
            with cluster.sup.lock():
                cluster.down(args.purge)
        elif args.command == "status":
            return 0 if cluster.status() else 1
        else:
            cmd_env(paths)
    except ClusterError as err:
        log(f"ERROR: {err}")
        if args.command == "up":
            log(f"logs: {paths.logs}; stop leftovers with `python -m e2e.cluster.localcluster down`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
