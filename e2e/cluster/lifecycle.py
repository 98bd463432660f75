"""`up`, `down` and `status` of the local cluster of one state directory.

`up` is idempotent and heals: it starts what is not running, restarts what runs with outdated
arguments, what was stopped by a signal (state T: after SIGSTOP, or a laptop's suspended job)
and what runs but keeps failing its health check for GRACE_SECONDS (e.g. an apiserver whose
/readyz stays red after the host slept), and finally replaces the KWOK pods that a node outage
left not Ready. Components are judged in dependency order (etcd before the apiserver, the
apiserver before its clients), so a component whose dependency was just restarted is judged
against a working dependency, never restarted for the dependency's fault.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable

from e2e.support.files import write_if_changed
from e2e.support.supervisor import Daemon, terminate_groups
from e2e.support.waiting import TimedOut, wait_for

from .api import ApiClient
from .binaries import locate_binaries
from .components import plan_components, registry_component
from .errors import ClusterError, log
from .heal import replace_pods_left_not_ready
from .health import probes
from .layout import COMPONENTS, HOST, PORTS, REGISTRY_PORT, SPIN_LABEL, WASMTIME_LABEL
from .nodes import (
    apply_nodes,
    default_namespace_exists,
    kwok_heartbeats_missed,
    node_leases_fresh,
    nodes_ready,
    release_node_leases,
)
from .paths import Paths
from .pki import ensure_pki, kubeconfig_for, pki_fingerprint

POLL_INTERVAL = 0.2
# Two of the controller-manager's node-monitor periods (--node-monitor-period=2s): long enough
# for it to act on nodes that came back, so `up` sees the pods it marked.
SETTLE_SECONDS = 4.0
# How long a component that was running before this `up` may fail its health check before it is
# restarted: long enough for one that is merely slow after the host woke up (KWOK renews its
# leases every 10 s), short enough that `make cluster` does not seem to hang.
GRACE_SECONDS = 15.0
CONTROLLERS = ["kube-controller-manager", "kube-scheduler", "kwok"]


def run_parallel(tasks: dict[str, Callable[[], None]], began: float) -> None:
    """Run independent waits concurrently, logging when each finished relative to `began` (where
    start-up time goes); re-raise the first failure after all have finished."""
    def timed(name: str, task: Callable[[], None]) -> None:
        task()
        log(f"{name} ready after {time.monotonic() - began:.1f}s")

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(tasks))) as pool:
        futures = [pool.submit(timed, name, task) for name, task in tasks.items()]
    for future in futures:  # all have finished here; result() re-raises a task's failure
        future.result()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """wait_for with the cluster's poll interval, failing as a ClusterError (one line in the CLI)."""
    wait_for(check, timeout, POLL_INTERVAL, what, error=ClusterError)


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((HOST, port)) == 0


class Cluster:
    """The local cluster of one state directory."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.sup = paths.supervisor()

    # ---------------------------------------------------------------- up

    def up(self) -> None:
        """Bring every component to running-and-healthy, (re)starting only what is not."""
        started = time.monotonic()
        bins = locate_binaries()
        ensure_pki(self.paths.pki)
        self.paths.config.mkdir(parents=True, exist_ok=True)
        components = plan_components(self.paths, bins, pki_fingerprint(self.paths.pki))
        api = ApiClient(self.paths.pki)
        self.paths.external_marker.unlink(missing_ok=True)

        missed = kwok_heartbeats_missed(api)
        if self._all_current(components) and nodes_ready(api) and node_leases_fresh(api):
            self._settle_kwok_pods(api, missed)
            self._write_admin_kubeconfig()
            log(f"already up ({time.monotonic() - started:.1f}s)")
            return

        self._stop_outdated(components)
        self._stop_frozen(components)
        self._check_ports_free(components)
        # The apiserver retries its etcd connection while it initialises, so both start at once;
        # but etcd is judged first: the apiserver cannot be ready while etcd is not.
        self._bring_up(["etcd", "registry", "kube-apiserver"], components)
        run_parallel({"etcd": self._waiter(components["etcd"], api)}, started)
        run_parallel({"kube-apiserver": self._waiter(components["kube-apiserver"], api)}, started)
        apply_nodes(api)
        if self.sup.pid("kwok") is None:
            release_node_leases(api)
        self._bring_up(CONTROLLERS, components)
        run_parallel({
            **{name: self._waiter(components[name], api) for name in ("registry", *CONTROLLERS)},
            "nodes": lambda: wait_until(lambda: nodes_ready(api) and node_leases_fresh(api), 90,
                                        "the 4 nodes to be Ready and their leases held by KWOK"),
            "default namespace": lambda: wait_until(
                lambda: default_namespace_exists(api), 30, "the default namespace"),
        }, started)
        self._settle_kwok_pods(api, missed)
        self._write_admin_kubeconfig()
        log(f"cluster up in {time.monotonic() - started:.1f}s; KUBECONFIG={self.paths.kubeconfig}")

    def _settle_kwok_pods(self, api: ApiClient, missed_heartbeats: bool) -> None:
        """Replace the KWOK pods an outage left not Ready. After missed heartbeats (a paused host)
        the node-lifecycle controller may mark pods only after this `up` found everything
        healthy, so then wait for fresh heartbeats and the controller's next monitor passes first."""
        if missed_heartbeats:
            log("the KWOK nodes missed their heartbeats (host paused or KWOK stopped): letting the "
                "node-lifecycle controller catch up before replacing pods it marked")
            wait_until(lambda: not kwok_heartbeats_missed(api) and nodes_ready(api), 90,
                       "the KWOK nodes' heartbeats to resume")
            time.sleep(SETTLE_SECONDS)
        replace_pods_left_not_ready(api)

    def _all_current(self, components: dict[str, Daemon]) -> bool:
        """Fast path: every process alive, started with today's arguments, and healthy."""
        if not all(self.sup.current(comp) for comp in components.values()):
            return False
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(components)) as pool:
            return all(pool.map(lambda c: c.healthy(), components.values()))

    def _stop_outdated(self, components: dict[str, Daemon]) -> None:
        """Stop, all at once, the running components whose arguments, config files or certificates
        changed (e.g. WASMKUBE_AUDIT toggled); the normal start sequence then brings them back.
        One batch, because stopping them one by one makes each wait for the others' shutdown."""
        outdated = [name for name, comp in components.items()
                    if self.sup.pid(name) is not None and not self.sup.current(comp)]
        if outdated:
            log(f"restarting {', '.join(outdated)} (configuration changed)")
            self.sup.stop(outdated)

    def _stop_frozen(self, components: dict[str, Daemon]) -> None:
        """Stop the components whose process is stopped (state T). SIGCONT alone is not enough
        after a long pause: leases, watches and health checks have expired meanwhile."""
        frozen = [name for name in components if self.sup.stopped(name)]
        if frozen:
            log(f"restarting {', '.join(frozen)} (process stopped by a signal, state T)")
            self.sup.stop(frozen)

    def _check_ports_free(self, components: dict[str, Daemon]) -> None:
        """Fail clearly when a foreign process holds one of our ports (otherwise: a 2-minute timeout)."""
        for name in components:
            if self.sup.pid(name) is not None:
                continue  # ours, and it stays
            busy = [p for p in PORTS[name] if _port_in_use(p)]
            if busy:
                raise ClusterError(
                    f"{name}: port(s) {busy} on {HOST} are used by another process "
                    f"(see `ss -ltnp`); stop it or run `localcluster down` for that state dir")

    def _bring_up(self, names: list[str], components: dict[str, Daemon]) -> None:
        """Start each named component that is not running (waiting is the waiters' job)."""
        for name in names:
            if self.sup.pid(name) is None:
                log(f"starting {name}")
                self.sup.start(components[name])

    def _waiter(self, comp: Daemon, api: ApiClient) -> Callable[[], None]:
        """A task that waits for comp to be healthy, failing fast (with its log) if it dies.

        A component that was already running gets GRACE_SECONDS to answer; if it does not, it
        is restarted (KWOK also when it no longer holds its node leases: alive but not doing
        its job), and then waited for like a fresh start.
        """
        def judged() -> bool:
            return comp.healthy() and (comp.name != "kwok" or node_leases_fresh(api))

        def wait() -> None:
            if comp.name not in self.sup.children and not self._serves_within_grace(comp, judged):
                reason = ("its process exited" if self.sup.exited(comp.name)
                          else f"failing its health check for {GRACE_SECONDS:.0f}s")
                log(f"restarting {comp.name} ({reason})")
                self.sup.stop([comp.name])
                if comp.name == "kwok":
                    release_node_leases(api)
                self.sup.start(comp)
            self.sup.wait_healthy(comp, error=ClusterError, interval=POLL_INTERVAL)
        return wait

    def _serves_within_grace(self, comp: Daemon, check: Callable[[], bool]) -> bool:
        """Whether a component that `up` did not start is alive and passes `check` within the grace."""
        try:
            wait_for(lambda: self.sup.exited(comp.name) or check(), GRACE_SECONDS, 0.5, f"{comp.name} to answer")
        except TimedOut:
            return False
        return not self.sup.exited(comp.name)

    def _write_admin_kubeconfig(self) -> None:
        write_if_changed(self.paths.kubeconfig, kubeconfig_for(self.paths.pki, "admin"), private=True)

    # ---------------------------------------------------------------- existing-cluster mode

    def up_existing(self) -> None:
        """WASMKUBE_EXISTING_CLUSTER=1: start only the registry and point our kubeconfig at $KUBECONFIG."""
        started = time.monotonic()
        if not os.environ.get("KUBECONFIG"):
            raise ClusterError("WASMKUBE_EXISTING_CLUSTER=1 needs KUBECONFIG to point at the cluster")
        bins = locate_binaries()
        flattened = subprocess.run(
            [bins.kubectl, "config", "view", "--flatten", "--minify", "--raw"],
            capture_output=True, text=True, check=False)
        if flattened.returncode != 0:
            raise ClusterError(f"cannot read $KUBECONFIG: {flattened.stderr.strip()}")
        self.paths.config.mkdir(parents=True, exist_ok=True)
        self._bring_up_registry(registry_component(self.paths, bins, "external"))
        write_if_changed(self.paths.kubeconfig, flattened.stdout, private=True)
        probe = subprocess.run(
            [bins.kubectl, f"--kubeconfig={self.paths.kubeconfig}", "get", "--raw", "/readyz"],
            capture_output=True, text=True, check=False)
        if probe.returncode != 0:
            raise ClusterError(f"existing cluster is not ready: {probe.stderr.strip()}")
        self.paths.external_marker.write_text(os.environ["KUBECONFIG"] + "\n")
        log(f"using existing cluster; registry up; took {time.monotonic() - started:.1f}s. "
            f"Nodes need the labels {WASMTIME_LABEL}=ready / {SPIN_LABEL}=ready to run Wasm workloads")

    def _bring_up_registry(self, comp: Daemon) -> None:
        """Start the registry outside the normal sequence (existing-cluster mode)."""
        if self.sup.pid(comp.name) is None:
            if _port_in_use(REGISTRY_PORT):
                raise ClusterError(f"port {REGISTRY_PORT} is used by another process")
            log(f"starting {comp.name}")
            self.sup.start(comp)
        self.sup.wait_healthy(comp, error=ClusterError, interval=POLL_INTERVAL)

    # ---------------------------------------------------------------- down / status

    def down(self, purge: bool) -> None:
        """Stop everything this state dir started, verify nothing is left, optionally delete state.

        Stopped (SIGSTOP'd) processes are continued so that they can act on SIGTERM, and killed
        if they do not; processes whose record was lost are found by their command line."""
        if self.paths.run.exists():
            self.sup.stop(list(reversed(COMPONENTS)))
        orphans = self.sup.orphans()
        if orphans:
            log(f"stopping processes without pid file: {orphans}")
            terminate_groups(orphans, 10)
        left = self.sup.orphans()
        if left:
            raise ClusterError(f"processes still running after SIGKILL: {left}")
        self.paths.external_marker.unlink(missing_ok=True)
        if purge:
            shutil.rmtree(self.paths.state, ignore_errors=True)
            self.paths.kubeconfig.unlink(missing_ok=True)
            log(f"stopped; deleted {self.paths.state}")
        else:
            log("stopped (PKI and etcd data kept; `down --purge` deletes them)")

    def status(self) -> bool:
        """Print one line per component; True when all are up."""
        external = self.paths.external_marker.exists()
        names = ["registry"] if external else list(COMPONENTS)
        all_up = True
        healthy = probes(self.paths.pki)
        for name in names:
            pid = self.sup.pid(name)
            ok = pid is not None and healthy[name]()
            all_up &= ok
            note = f"pid {pid}" if pid else ""
            if pid is not None and self.sup.stopped(name):
                note += " (stopped: `up` restarts it)"
            print(f"{name:<24} {'up' if ok else 'down':<5} {note}")
        if external:
            print(f"{'existing cluster':<24} {self.paths.external_marker.read_text().strip()}")
        elif all_up:
            ready = nodes_ready(ApiClient(self.paths.pki))
            all_up &= ready
            print(f"{'nodes':<24} {'ready' if ready else 'not ready'}")
        return all_up
