"""`up`, `down` and `status` of the real node of one cluster state directory.

`up` is idempotent: a daemon runs on while it is current (started with today's configuration)
and healthy, and is restarted otherwise, which includes one stopped by a signal. `down` lets
kubelet tear its pods down, stops the daemons (continuing stopped ones so SIGTERM reaches them,
SIGKILL after the timeout) and undoes every host change (see realnode.py's doc).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from e2e.cluster.api import ApiClient
from e2e.cluster.paths import Paths as ClusterPaths
from e2e.cluster.pki import pki_is_current
from e2e.support.files import write_if_changed
from e2e.support.state import REPO_ROOT
from e2e.support.supervisor import Daemon, cmdline, terminate_groups

from .binaries import locate_binaries, read_versions
from .certs import ensure_kubelet_cert
from .cgroups import create_cgroup_root, remove_cgroup_root
from .containerd import containerd_answers, containerd_daemon, import_pause_image
from .daemons import foreign, stray
from .errors import NodeError, NodeUnsupported, log
from .host import (
    ensure_dev_kmsg,
    remove_container_log_links,
    remove_fixed_path_leftovers,
    restore_kernel_tunables,
    save_kernel_tunables,
)
from .kubelet import kubelet_daemon, kubelet_healthy
from .layout import CRI_NAMESPACE, NODE_NAME
from .mounts import unmount_under
from .network import remove_pod_network
from .paths import NodePaths
from .preflight import preflight, runtime_problems
from .registration import delete_node_object, drain, initialize_node, node_ready

POLL = 0.5


class RealNode:
    """The real node of one cluster state directory."""

    def __init__(self, paths: NodePaths) -> None:
        self.paths = paths
        self.sup = paths.supervisor()
        self.pins = read_versions()

    # ------------------------------------------------------------------ up

    def up(self) -> None:
        """Bring containerd, the pause image, kubelet and the Node object to ready; idempotent."""
        started = time.monotonic()
        problems = preflight(self.paths)
        if problems:
            raise NodeUnsupported("this machine cannot run a real node:\n  - " + "\n  - ".join(problems))
        api = self._cluster_api()
        self._ensure_apiserver_can_reach_kubelets()
        bins = locate_binaries()
        problems = runtime_problems(bins)
        if problems:
            raise NodeUnsupported("the node's binaries are incomplete:\n  - " + "\n  - ".join(problems))
        if list(Path("/etc/containerd/conf.d").glob("*.toml")):
            log("WARNING: containerd will also read /etc/containerd/conf.d/*.toml (host drop-ins)")
        others = foreign(self.sup)
        if others:
            raise NodeError("another real node is running on this machine; stop it first:\n  " + "\n  ".join(others))
        ensure_kubelet_cert(self.paths)
        write_if_changed(self.paths.bindir_file, f"{bins.bindir}\n")
        containerd = containerd_daemon(self.paths, bins, self.pins["PAUSE_IMAGE"])
        kubelet = kubelet_daemon(self.paths, bins)
        if self._current(containerd) and self._current(kubelet) and node_ready(api):
            log(f"already up ({time.monotonic() - started:.1f}s)")
            return
        for path in (self.paths.containerd_root, self.paths.containerd_state, self.paths.kubelet_root,
                     self.paths.pod_logs, self.paths.cni_ipam):
            path.mkdir(parents=True, exist_ok=True)
        ensure_dev_kmsg(self.paths)
        create_cgroup_root()
        self._run(containerd)
        import_pause_image(self.paths, bins, self.pins["PAUSE_IMAGE"])
        save_kernel_tunables(self.paths)
        self._run(kubelet)
        initialize_node(api, self.sup)
        log(f"node {NODE_NAME} Ready in {time.monotonic() - started:.1f}s "
            f"(logs: {self.paths.logs}; ctr --address {self.paths.socket} -n {CRI_NAMESPACE} ...)")

    def _cluster_api(self) -> ApiClient:
        """The admin API client; the cluster must already be up (`make cluster`)."""
        if not pki_is_current(self.paths.cluster_pki):
            raise NodeError(f"no cluster PKI in {self.paths.cluster_pki}: start the cluster first (make cluster)")
        api = ApiClient(self.paths.cluster_pki)
        if api.request("GET", "/readyz")[0] != 200:
            raise NodeError("the local cluster's apiserver is not ready: start it first (make cluster)")
        return api

    def _ensure_apiserver_can_reach_kubelets(self) -> None:
        """`kubectl logs` needs the apiserver to present a client certificate to the kubelet; an
        apiserver started before localcluster passed `--kubelet-client-certificate` lacks it,
        and `localcluster up` restarts just that component."""
        pid = ClusterPaths(self.paths.cluster).supervisor().pid("kube-apiserver")
        if pid is None:
            return  # not ours (existing-cluster mode): nothing we can change
        if any(arg.startswith("--kubelet-client-certificate=") for arg in cmdline(pid)):
            return
        log("the apiserver predates --kubelet-client-certificate; restarting it (localcluster up)")
        result = subprocess.run([sys.executable, "-m", "e2e.cluster.localcluster", "up"], cwd=REPO_ROOT, check=False)
        if result.returncode != 0:
            raise NodeError("localcluster up failed; see its output above")

    def _current(self, daemon: Daemon) -> bool:
        return self.sup.current(daemon) and daemon.healthy()

    def _run(self, daemon: Daemon) -> None:
        """(Re)start a daemon whose process or configuration is not current, then wait for it."""
        if self._current(daemon):
            return
        if self.sup.pid(daemon.name) is not None:
            log(f"restarting {daemon.name} (configuration changed or unhealthy)")
            self._stop(daemon.name)
        log(f"starting {daemon.name}")
        began = time.monotonic()
        self.sup.start(daemon)
        self.sup.wait_healthy(daemon, error=NodeError, interval=POLL)
        log(f"{daemon.name} healthy ({time.monotonic() - began:.1f}s)")

    def _stop(self, name: str) -> None:
        pid = self.sup.pid(name)
        if pid is not None:
            log(f"stopping {name} (pid {pid})")
        self.sup.stop([name], timeout=20.0)

    # ------------------------------------------------------------------ down / status

    def down(self, purge: bool = False) -> None:
        """Let kubelet tear its pods down, stop kubelet and containerd, then undo the host changes
        (leftover processes, mounts, cgroups, bridge, sysctls, /dev/kmsg) and delete the Node."""
        api = self._api_if_up()
        if api is not None and self.sup.pid("kubelet") is not None and self.sup.pid("containerd") is not None:
            drain(api)
        self._stop("kubelet")
        self._stop("containerd")
        leftovers = stray(self.paths, self.sup)
        if leftovers:
            log(f"stopping leftover processes {leftovers}")
            terminate_groups(leftovers, 10)
        unmount_under(self.paths.root)
        cgroups_left: list[str] = []
        others = foreign(self.sup)
        if others:
            log("another real node runs on this machine; leaving cgroups, bridge and sysctls to it:\n  "
                + "\n  ".join(others))
        else:
            cgroups_left = self._undo_host_changes()
        if api is not None:
            delete_node_object(api)
        left = stray(self.paths, self.sup)
        if left or cgroups_left:
            raise NodeError(f"left behind: processes {left}, cgroups {cgroups_left}")
        if purge:
            shutil.rmtree(self.paths.root, ignore_errors=True)
            log(f"stopped; deleted {self.paths.root}")
        else:
            log("stopped (images and certificates kept; `down --purge` deletes them)")

    def _undo_host_changes(self) -> list[str]:
        """Everything outside .wasmkube/node that `up` or kubelet changed; returns cgroups that
        could not be removed."""
        cgroups_left = remove_cgroup_root()
        unmount_under(self.paths.root)  # again: a killed pod may have held a mount busy
        remove_pod_network(self.paths)
        remove_container_log_links(self.paths)
        remove_fixed_path_leftovers()
        restore_kernel_tunables(self.paths)
        if self.paths.kmsg_marker.exists():
            Path("/dev/kmsg").unlink(missing_ok=True)
            self.paths.kmsg_marker.unlink()
        return cgroups_left

    def _api_if_up(self) -> ApiClient | None:
        """The admin client when the cluster still answers; `down` must also work without it."""
        if not pki_is_current(self.paths.cluster_pki):
            return None
        api = ApiClient(self.paths.cluster_pki)
        return api if api.request("GET", "/readyz")[0] == 200 else None

    def is_up(self) -> bool:
        """Quietly: both daemons running and the node Ready (no build, no output)."""
        if self.sup.pid("containerd") is None or self.sup.pid("kubelet") is None:
            return False
        return pki_is_current(self.paths.cluster_pki) and node_ready(ApiClient(self.paths.cluster_pki))

    def status(self) -> bool:
        """One line per piece; True when the node is up and Ready."""
        all_up = True
        probes: list[tuple[str, Callable[[], bool]]] = [
            ("containerd", lambda: containerd_answers(self.paths)), ("kubelet", kubelet_healthy)]
        for name, probe in probes:
            pid = self.sup.pid(name)
            ok = pid is not None and probe()
            all_up &= ok
            print(f"{name:<12} {'up' if ok else 'down':<5} {f'pid {pid}' if pid else ''}")
        ready = pki_is_current(self.paths.cluster_pki) and node_ready(ApiClient(self.paths.cluster_pki))
        print(f"{'node':<12} {NODE_NAME} {'Ready' if ready else 'not ready'}")
        return all_up and ready


def ensure_real_node() -> RealNode:
    """Start the node unless it is already up and Ready; raises NodeUnsupported/NodeError."""
    node = RealNode(NodePaths.from_env())
    with node.sup.lock():
        node.up()
    return node


def stop_real_node(purge: bool = False) -> None:
    paths = NodePaths.from_env()
    if not paths.root.exists():
        return
    node = RealNode(paths)
    with node.sup.lock():
        node.down(purge)
