#!/usr/bin/env python3
"""Run one real Kubernetes node, `real-node-1`, next to the local cluster: containerd with runc and
wasmkube's Wasm shim, plus a real kubelet (v1.34) registered with the cluster's apiserver.

The local cluster's four nodes are KWOK fakes: pods "run" there without any process. This node
really starts containers, so tests can see a Wasm module print to `kubectl logs` next to an
ordinary Linux container. It needs root, writable cgroups, overlayfs and network namespaces;
`check` says whether this machine has them.

    realnode.py up | down [--purge] | status | check

State lives in `.wasmkube/node/` (next to the cluster's `.wasmkube/cluster/`, or next to
$WASMKUBE_STATE). Binaries come from build-node.sh (containerd, ctr, the shim, the pause image)
and e2e/cluster/build-binaries.sh (kubelet). What `up` changes outside that directory, and how
`down` undoes it:

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
and this script plays the (tiny) cloud controller: it sets the node's only address to
InternalIP 127.0.0.1 and removes the `uninitialized` taint. kubelet keeps addresses that a cloud
provider set, and the apiserver's default address preference then dials 127.0.0.1:10250.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import dataclasses
import datetime
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
BUILD_SCRIPT = HERE / "build-node.sh"

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
REGISTRY = "127.0.0.1:5001"
RUNTIME_HANDLER = "wasmtime"
SHIM_RUNTIME_TYPE = "io.containerd.wasmtime.v1"
SHIM_BINARY = "containerd-shim-wasmtime-v1"

REAL_NODE_LABEL = "wasmkube.dev/real-node"
WASMTIME_LABEL = "wasmkube.dev/shim-wasmtime"  # same label as the KWOK Wasm nodes (localcluster.py)
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
# No sbin: kubelet then finds no iptables and leaves the host firewall alone (see module doc).
CHILD_PATH = "/usr/local/bin:/usr/bin:/bin"
POLL = 0.5


class NodeError(RuntimeError):
    """`up`/`down` failed; the message says what and where the logs are."""


class NodeUnsupported(NodeError):
    """This machine cannot run a real node (not root, no cgroups, no overlayfs, ...)."""


def log(message: str) -> None:
    """Progress to stderr, like localcluster.py, so stdout stays parseable."""
    print(f"realnode: {message}", file=sys.stderr, flush=True)


def _load_localcluster() -> Any:
    """localcluster.py (a script, not a package) for its cluster paths, PKI and API client.

    Loaded by file path so this module works both as `python e2e/node/realnode.py` and as
    `e2e.node.realnode` under pytest, without touching sys.path.
    """
    name = "wasmkube_localcluster"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "e2e" / "cluster" / "localcluster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the body executes
    spec.loader.exec_module(module)
    return module


lc = _load_localcluster()


def read_versions() -> dict[str, str]:
    """The pins in versions.env (KEY=VALUE lines), shared with build-node.sh."""
    pins = {}
    for line in (HERE / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            pins[key] = value
    return pins


# --------------------------------------------------------------------------------------------
# Paths and binaries
# --------------------------------------------------------------------------------------------


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
        """`.wasmkube/node/`, beside the cluster state dir that localcluster.py uses."""
        cluster = lc.Paths.from_env().state
        return cls(root=cluster.parent / "node", cluster=cluster)

    def known_bindir(self) -> Path | None:
        """The bin dir the last `up` used, if it still exists."""
        with contextlib.suppress(OSError):
            bindir = Path(self.bindir_file.read_text().strip())
            if bindir.is_dir():
                return bindir
        return None


@dataclasses.dataclass(frozen=True)
class NodeBinaries:
    """The node's executables: build-node.sh's bin dir, the cached kubelet, Debian's runc."""

    bindir: Path
    kubelet: Path
    runc: str

    @property
    def containerd(self) -> Path:
        return self.bindir / "containerd"

    @property
    def ctr(self) -> Path:
        return self.bindir / "ctr"

    @property
    def pause_tar(self) -> Path:
        return self.bindir / "pause.tar"


def _last_stdout_line(script: Path) -> Path:
    """Run a build script (its progress goes to our stderr) and return the dir it prints last."""
    result = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise NodeError(f"{script} failed (exit {result.returncode}); see its output above")
    return Path(lines[-1])


def binaries_cached() -> bool:
    """True when containerd, the pause image and the shim are all built (no build is started)."""
    return subprocess.run(["bash", str(BUILD_SCRIPT), "--cached"], check=False).returncode == 0


def locate_binaries() -> NodeBinaries:
    """Build whatever is missing (minutes, once) and return absolute paths."""
    bindir = _last_stdout_line(BUILD_SCRIPT)
    kubelet = lc.build_binaries() / "kubelet"
    runc = shutil.which("runc", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if runc is None:
        raise NodeError("runc not found (build-node.sh installs Debian's runc)")
    if not kubelet.exists():
        raise NodeError(f"{kubelet} missing; e2e/cluster/build-binaries.sh should have built it")
    return NodeBinaries(bindir=bindir, kubelet=kubelet, runc=runc)


# --------------------------------------------------------------------------------------------
# Can this machine run a node?
# --------------------------------------------------------------------------------------------


def mounts() -> list[tuple[str, str]]:
    """(mount point, filesystem type) of every mount in our namespace, from mountinfo."""
    result = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        point = fields[4].encode().decode("unicode_escape")  # \040 for spaces and such
        result.append((point, fields[sep + 1]))
    return result


def cgroup_hierarchies() -> list[Path]:
    """Mount points of every cgroup hierarchy (v1 controllers, and v2 unified if mounted)."""
    return [Path(point) for point, fstype in mounts() if fstype in ("cgroup", "cgroup2")]


def _cgroup_problems() -> list[str]:
    """kubelet (cgroupfs driver) needs the cpu, cpuset, memory and pids controllers, writable."""
    hierarchies = cgroup_hierarchies()
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():  # pure cgroup v2
        probe_parent = Path("/sys/fs/cgroup")
    else:
        names = {h.name for h in hierarchies}
        missing = [c for c in REQUIRED_V1_CONTROLLERS if not any(c in n.split(",") for n in names)]
        if missing:
            return [f"cgroup v1 controllers not mounted: {', '.join(missing)}"]
        probe_parent = next(h for h in hierarchies if "memory" in h.name.split(","))
    probe = probe_parent / f"wasmkube-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as err:
        return [f"cannot create cgroups under {probe_parent}: {err.strerror}"]
    return []


def _overlay_problem(scratch: Path) -> str | None:
    """Mount a tiny overlayfs where containerd keeps its snapshots (overlay-on-overlay fails)."""
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="overlay-probe-") as tmp:
        for sub in ("lower", "upper", "work", "merged"):
            (Path(tmp) / sub).mkdir()
        options = f"lowerdir={tmp}/lower,upperdir={tmp}/upper,workdir={tmp}/work"
        result = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, f"{tmp}/merged"],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            return f"cannot mount overlayfs under {scratch}: {result.stderr.strip()}"
        subprocess.run(["umount", f"{tmp}/merged"], check=False)
    return None


def _network_problem() -> str | None:
    """Pods need a network namespace, a bridge and veth pairs; try all three in a throwaway netns."""
    script = "ip link add wkprobe0 type bridge && ip link add wkprobe1 type veth peer name wkprobe2"
    result = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return f"cannot create a network namespace with a bridge and veths: {result.stderr.strip()}"
    return None


def preflight(paths: NodePaths) -> list[str]:
    """Every reason this machine cannot run a real node; empty when it can."""
    if os.geteuid() != 0:
        return ["not root: containerd and kubelet need root (mounts, cgroups, network namespaces)"]
    problems = _cgroup_problems()
    for tool in ("ip", "unshare", "mount", "umount"):
        if shutil.which(tool) is None:
            problems.append(f"`{tool}` not found (iproute2 / util-linux)")
    if problems:
        return problems
    for problem in (_overlay_problem(paths.root / "probe"), _network_problem()):
        if problem:
            problems.append(problem)
    if not Path("/dev/kmsg").exists() and not Path("/dev/console").exists():
        problems.append("neither /dev/kmsg nor /dev/console exists (kubelet's OOM watcher reads /dev/kmsg)")
    return problems


def _runtime_problems(bins: NodeBinaries) -> list[str]:
    """After the build: the Debian-provided pieces are where the configs say they are."""
    missing = [str(CNI_BIN_DIR / p) for p in CNI_PLUGINS if not (CNI_BIN_DIR / p).exists()]
    problems = [f"CNI plugins missing: {', '.join(missing)}"] if missing else []
    for exe in (bins.containerd, bins.ctr, bins.bindir / SHIM_BINARY, bins.kubelet):
        if not os.access(exe, os.X_OK):
            problems.append(f"{exe} is missing or not executable")
    return problems


# --------------------------------------------------------------------------------------------
# Certificates and configuration files
# --------------------------------------------------------------------------------------------


def ensure_kubelet_cert(paths: NodePaths) -> None:
    """kubelet's client certificate: CN=system:node:real-node-1, O=system:nodes, from the cluster CA.

    A real node identity (not the admin's) so the Node authorizer and NodeRestriction admission
    apply to this kubelet as on any cluster. Reissued when the cluster CA changes or expiry nears.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_pem = (paths.cluster_pki / "ca.crt").read_bytes()
    crt, key_path, issued_by = paths.pki / "kubelet-client.crt", paths.pki / "kubelet-client.key", paths.pki / "ca.crt"
    if crt.exists() and issued_by.exists() and issued_by.read_bytes() == ca_pem:
        cert = x509.load_pem_x509_certificate(crt.read_bytes())
        if cert.not_valid_after_utc > datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=7):
            return
    log("issuing the kubelet client certificate (system:node:real-node-1)")
    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key((paths.cluster_pki / "ca.key").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{NODE_NAME}")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths.pki.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    lc.write_if_changed(key_path, key_pem.decode(), private=True)
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    issued_by.write_bytes(ca_pem)


def kubelet_kubeconfig(paths: NodePaths) -> str:
    """Self-contained kubeconfig for the kubelet's node identity."""
    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "local", "cluster": {
            "server": f"https://{lc.HOST}:{lc.APISERVER_PORT}",
            "certificate-authority-data": b64(paths.cluster_pki / "ca.crt")}}],
        "users": [{"name": NODE_NAME, "user": {
            "client-certificate-data": b64(paths.pki / "kubelet-client.crt"),
            "client-key-data": b64(paths.pki / "kubelet-client.key")}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": NODE_NAME}}],
        "current-context": "local",
    }, indent=2)


def lacks_cap_sys_resource() -> bool:
    """Whether we run without CAP_SYS_RESOURCE (bit 24), as root in some VMs and sandboxes does.

    Without it no process may lower its oom_score_adj, yet kubelet asks for -998 on every pod
    sandbox (and -997 for Guaranteed pods): runc then dies with "failed to update
    /proc/self/oom_score_adj: Permission denied".
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return not int(line.split()[1], 16) & (1 << 24)
    return False


def containerd_config(paths: NodePaths, bins: NodeBinaries, pause_image: str) -> str:
    """containerd 2.x config (version 3): private root/state/socket, runc default, and the
    `wasmtime` handler -> io.containerd.wasmtime.v1 -> containerd-shim-wasmtime-v1 on PATH."""
    # Clamp OOM score adjustments to containerd's own (0) when they cannot be lowered anyway.
    restrict_oom = "true" if lacks_cap_sys_resource() else "false"
    cri_runtime = 'plugins."io.containerd.cri.v1.runtime"'
    runtimes = f"{cri_runtime}.containerd.runtimes"
    return f"""\
# Written by e2e/node/realnode.py; rewritten on every `up`. Version 3 is the containerd 2.0-2.2
# format; 2.3 migrates it to its version 4 in memory at start-up (and logs that it did).
version = 3
root = "{paths.containerd_root}"
state = "{paths.containerd_state}"
# containerd 2.3 always adds the host's /etc/containerd/conf.d/*.toml to `imports` (no setting
# removes it); `up` warns when that directory holds drop-ins that would change this config.
# NRI would listen on /var/run/nri/nri.sock, a host-wide path; nothing here uses it.
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = "{paths.socket}"
[ttrpc]
  address = "{paths.socket}.ttrpc"
[debug]
  level = "info"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{paths.containerd_root}/opt"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{pause_image}"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "{paths.certs_d}"

[{cri_runtime}]
  # Pod network namespaces under our state dir instead of /var/run/netns.
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = {restrict_oom}
  [{cri_runtime}.containerd]
    default_runtime_name = "runc"
    [{runtimes}.runc]
      runtime_type = "io.containerd.runc.v2"
      [{runtimes}.runc.options]
        BinaryName = "{bins.runc}"
        Root = "{paths.containerd_state}/runc"
        SystemdCgroup = false
    [{runtimes}.{RUNTIME_HANDLER}]
      runtime_type = "{SHIM_RUNTIME_TYPE}"
      [{runtimes}.{RUNTIME_HANDLER}.options]
        SystemdCgroup = false
  [{cri_runtime}.cni]
    bin_dirs = ["{CNI_BIN_DIR}"]
    conf_dir = "{paths.cni_conf}"
    max_conf_num = 1

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""


def registry_hosts_toml() -> str:
    """certs.d/127.0.0.1:5001/hosts.toml: the local registry speaks plain HTTP."""
    return f"""\
server = "http://{REGISTRY}"

[host."http://{REGISTRY}"]
  capabilities = ["pull", "resolve"]
"""


def cni_conflist(paths: NodePaths) -> str:
    """One bridge network: private subnet, gateway on the bridge, no masquerade (pods talk only
    to each other and the node; nothing is forwarded off the machine). containerd adds `lo`."""
    return json.dumps({
        "cniVersion": "1.0.0",
        "name": "wasmkube",
        "plugins": [{
            "type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
            "ipam": {"type": "host-local", "dataDir": str(paths.cni_ipam),
                     "ranges": [[{"subnet": POD_SUBNET, "gateway": POD_GATEWAY}]]},
        }],
    }, indent=2)


def kubelet_config(paths: NodePaths) -> str:
    """KubeletConfiguration: loopback only, x509 + webhook auth, cgroupfs under /wasmkube, our
    runtime socket, and thresholds that keep a shared test VM from tripping evictions or GC."""
    endpoint = f"unix://{paths.socket}"
    return json.dumps({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_ADDRESS, "port": KUBELET_PORT, "readOnlyPort": 0,
        "healthzBindAddress": NODE_ADDRESS, "healthzPort": KUBELET_HEALTHZ_PORT,
        "authentication": {
            "anonymous": {"enabled": False}, "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(paths.cluster_pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": endpoint, "imageServiceEndpoint": endpoint,
        "cgroupDriver": "cgroupfs", "cgroupRoot": f"/{CGROUP_ROOT}",
        "failSwapOn": False, "failCgroupV1": False,
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "podLogsDir": str(paths.pod_logs),
        "volumePluginDir": str(paths.kubelet_root / "volume-plugins"),
        "resolvConf": "/etc/resolv.conf",
        "registerWithTaints": [REAL_NODE_TAINT],
        "serializeImagePulls": False,
        "maxPods": 150,  # make bench's density row (e2e/bench/density_row.py) runs 100 pods of a kind
        "rotateCertificates": False, "serverTLSBootstrap": False,
    }, indent=2)


# --------------------------------------------------------------------------------------------
# Processes: containerd and kubelet, detached, with pid files (the localcluster.py way)
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Daemon:
    """One long-running process of the node."""

    name: str
    argv: list[str]
    env: dict[str, str]
    files: dict[Path, str]
    healthy: Callable[[], bool]
    timeout: float = 90.0

    def spec(self) -> str:
        """What a running instance was started with; a difference means restart it."""
        files = {str(k): hashlib.sha256(v.encode()).hexdigest() for k, v in self.files.items()}
        return json.dumps({"argv": self.argv, "env": self.env, "files": files}, sort_keys=True)


class Daemons:
    """Start, find and stop the node's daemons; a pid counts as ours only if its command line
    names our state dir (guards against reused pids and other containerds)."""

    EXECUTABLES = ("containerd", "kubelet")

    def __init__(self, paths: NodePaths) -> None:
        self.paths = paths

    def owned(self, pid: int) -> bool:
        argv = lc.cmdline(pid)
        return (bool(argv) and Path(argv[0]).name in self.EXECUTABLES and lc.alive(pid)
                and any(f"{self.paths.root}/" in arg for arg in argv))

    def pid(self, name: str) -> int | None:
        try:
            pid = int((self.paths.run / f"{name}.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if self.owned(pid) else None

    def running_spec(self, name: str) -> str | None:
        with contextlib.suppress(OSError):
            return (self.paths.run / f"{name}.spec").read_text()
        return None

    def start(self, daemon: Daemon) -> subprocess.Popen[bytes]:
        for path, text in daemon.files.items():
            lc.write_if_changed(path, text, private=path.suffix == ".kubeconfig")
        self.paths.run.mkdir(parents=True, exist_ok=True)
        proc = lc.launch_detached(daemon.argv, self.paths.logs / f"{daemon.name}.log", self.paths.root, daemon.env)
        (self.paths.run / f"{daemon.name}.pid").write_text(f"{proc.pid}\n")
        (self.paths.run / f"{daemon.name}.spec").write_text(daemon.spec())
        return proc

    def stop(self, name: str, timeout: float = 20.0) -> None:
        pid = self.pid(name)
        if pid is not None:
            log(f"stopping {name} (pid {pid})")
            lc.terminate_groups([pid], timeout)
        for suffix in ("pid", "spec"):
            (self.paths.run / f"{name}.{suffix}").unlink(missing_ok=True)

    def stray(self) -> list[int]:
        """Our daemons without a pid file, and shims serving our containerd socket."""
        socket = str(self.paths.socket)
        found = []
        for pid in lc.other_pids():
            argv = lc.cmdline(pid)
            shim = bool(argv) and Path(argv[0]).name.startswith("containerd-shim") and socket in argv
            if (shim and lc.alive(pid)) or self.owned(pid):
                found.append(pid)
        return found

    def foreign(self) -> list[str]:
        """containerd/kubelet processes of *another* real node (another checkout's .wasmkube/node).

        Ports, the bridge, the /wasmkube cgroups and the fixed paths are per machine, so two
        nodes cannot coexist, and `down` must not sweep while another one runs.
        """
        found = []
        for pid in lc.other_pids():
            argv = lc.cmdline(pid)
            if (argv and Path(argv[0]).name in self.EXECUTABLES and lc.alive(pid) and not self.owned(pid)
                    and any("/.wasmkube/node/" in arg for arg in argv)):
                found.append(f"pid {pid}: {' '.join(argv)[:200]}")
        return found

    def tail(self, name: str, lines: int = 30) -> str:
        try:
            text = (self.paths.logs / f"{name}.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def wait_healthy(daemons: Daemons, daemon: Daemon, proc: subprocess.Popen[bytes] | None) -> None:
    """Poll until healthy; fail fast (with its log) if the process exits."""
    deadline = time.monotonic() + daemon.timeout
    while not daemon.healthy():
        if proc is not None and proc.poll() is not None:
            raise NodeError(f"{daemon.name} exited ({proc.returncode}); last log lines:\n{daemons.tail(daemon.name)}")
        if time.monotonic() > deadline:
            raise NodeError(f"{daemon.name} not healthy after {daemon.timeout:.0f}s; last log lines:\n"
                            f"{daemons.tail(daemon.name)}")
        time.sleep(POLL)


# --------------------------------------------------------------------------------------------
# Host changes that `down` must undo
# --------------------------------------------------------------------------------------------


def ensure_dev_kmsg(paths: NodePaths) -> None:
    """kubelet's OOM watcher opens /dev/kmsg; where it is missing, point it at /dev/console
    (what kind does) and remember to remove the link again."""
    if not Path("/dev/kmsg").exists():
        os.symlink("/dev/console", "/dev/kmsg")
        paths.kmsg_marker.write_text("symlink /dev/kmsg -> /dev/console\n")


def save_kernel_tunables(paths: NodePaths) -> None:
    """Record the sysctls kubelet is about to change, once (a restart must not record its own)."""
    if paths.tunables.exists():
        return
    values = {key: Path(f"/proc/sys/{key}").read_text().strip() for key in KERNEL_TUNABLES}
    paths.tunables.write_text(json.dumps(values, indent=2))


def restore_kernel_tunables(paths: NodePaths) -> None:
    if not paths.tunables.exists():
        return
    for key, value in json.loads(paths.tunables.read_text()).items():
        with contextlib.suppress(OSError):
            Path(f"/proc/sys/{key}").write_text(value)
    paths.tunables.unlink()


def create_cgroup_root() -> None:
    """`/wasmkube` in every hierarchy: kubelet's cgroupRoot must exist before it starts."""
    for hierarchy in cgroup_hierarchies():
        group = hierarchy / CGROUP_ROOT
        group.mkdir(exist_ok=True)
        if (hierarchy / "cgroup.controllers").exists():
            _enable_v2_controllers(group)
            continue
        # A new cgroup v1 cpuset starts with no CPUs and no memory nodes: copy the parent's.
        for name in ("cpuset.cpus", "cpuset.mems"):
            mine = group / name
            if mine.exists() and not mine.read_text().strip():
                mine.write_text((hierarchy / name).read_text())


def _enable_v2_controllers(group: Path) -> None:
    """On cgroup v2, let kubelet's children under /wasmkube use every controller we were given."""
    available = (group / "cgroup.controllers").read_text().split()
    wanted = [c for c in ("cpu", "cpuset", "memory", "pids", "io", "hugetlb") if c in available]
    with contextlib.suppress(OSError):
        (group / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))


def remove_cgroup_root() -> list[str]:
    """Kill whatever still runs under /wasmkube, then remove the groups bottom-up."""
    groups = [h / CGROUP_ROOT for h in cgroup_hierarchies() if (h / CGROUP_ROOT).is_dir()]
    pids = {int(p) for g in groups for procs in g.rglob("cgroup.procs")
            for p in procs.read_text().split() if p.strip()}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    left = []
    for group in groups:
        for directory in sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            _rmdir_retrying(directory)
        if not _rmdir_retrying(group):
            left.append(str(group))
    return left


def _rmdir_retrying(directory: Path) -> bool:
    """rmdir of a cgroup fails (EBUSY) until its killed tasks are fully gone; retry briefly."""
    for _ in range(50):
        try:
            directory.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            time.sleep(0.1)
    return False


def unmount_under(root: Path) -> None:
    """Detach every mount below `root` (pod volumes, overlay snapshots, netns files), deepest first."""
    libc = ctypes.CDLL(None, use_errno=True)
    mnt_detach = 2
    prefix = f"{root}/"
    for point, _ in sorted(mounts(), key=lambda m: -len(m[0])):
        if point.startswith(prefix):
            libc.umount2(point.encode(), mnt_detach)


def remove_pod_network(paths: NodePaths) -> None:
    """The bridge (its veths vanish with the pod namespaces) and host-local's IP leases."""
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        subprocess.run(["ip", "link", "delete", BRIDGE], check=False, capture_output=True)
    shutil.rmtree(paths.cni_ipam, ignore_errors=True)


def remove_container_log_links(paths: NodePaths) -> None:
    """kubelet's /var/log/containers/*.log symlinks that point into our pod log dir."""
    links = Path("/var/log/containers")
    if not links.is_dir():
        return
    for link in links.iterdir():
        with contextlib.suppress(OSError):
            if link.is_symlink() and os.readlink(link).startswith(f"{paths.pod_logs}/"):
                link.unlink()


# Paths that kubelet, containerd's CNI library and the shims use whatever their configuration says.
FIXED_FILES = ("/var/lib/kubelet/device-plugins/kubelet.sock",)
FIXED_GLOBS = (("/var/lib/cni/results", "wasmkube-*"),)  # libcni's cache: <network>-<container>-<if>
FIXED_DIRS = ("/var/lib/kubelet/device-plugins", "/var/lib/kubelet", "/var/lib/cni/results", "/var/lib/cni",
              "/var/log/containers", "/run/containerd/wasmtime/k8s.io", "/run/containerd/wasmtime",
              "/run/containerd/s", "/run/containerd/fifo", "/run/containerd/runc/k8s.io", "/run/containerd/runc",
              "/run/containerd")


def remove_fixed_path_leftovers() -> None:
    """Our files at those fixed paths, then the directories if that left them empty (an empty
    directory is all another user of the path could share with us, so rmdir is safe)."""
    for name in FIXED_FILES:
        Path(name).unlink(missing_ok=True)
    for directory, pattern in FIXED_GLOBS:
        for entry in Path(directory).glob(pattern):
            entry.unlink(missing_ok=True)
    for name in FIXED_DIRS:
        with contextlib.suppress(OSError):
            Path(name).rmdir()


# --------------------------------------------------------------------------------------------
# The node
# --------------------------------------------------------------------------------------------


class RealNode:
    """The real node of one cluster state directory."""

    def __init__(self, paths: NodePaths) -> None:
        self.paths = paths
        self.daemons = Daemons(paths)
        self.pins = read_versions()

    # ------------------------------------------------------------------ plan

    def _ctr(self, bins: NodeBinaries, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(bins.ctr), "--address", str(self.paths.socket), "--namespace", CRI_NAMESPACE,
                               *args], capture_output=True, text=True, timeout=timeout, check=False)

    def _containerd(self, bins: NodeBinaries) -> Daemon:
        config = self.paths.config / "containerd.toml"
        env = {"PATH": f"{bins.bindir}:{CHILD_PATH}", "HOME": str(self.paths.root)}

        def healthy() -> bool:
            try:
                return self._ctr(bins, "version", timeout=5).returncode == 0
            except subprocess.TimeoutExpired:
                return False

        return Daemon(
            "containerd", [str(bins.containerd), f"--config={config}"], env,
            files={config: containerd_config(self.paths, bins, self.pins["PAUSE_IMAGE"]),
                   self.paths.certs_d / REGISTRY / "hosts.toml": registry_hosts_toml(),
                   self.paths.cni_conf / "10-wasmkube.conflist": cni_conflist(self.paths)},
            healthy=healthy, timeout=60)

    def _kubelet(self, bins: NodeBinaries) -> Daemon:
        config, kubeconfig = self.paths.config / "kubelet.yaml", self.paths.config / "kubelet.kubeconfig"
        labels = ",".join(f"{k}={v}" for k, v in NODE_LABELS.items())
        argv = [
            str(bins.kubelet), f"--config={config}", f"--kubeconfig={kubeconfig}",
            f"--root-dir={self.paths.kubelet_root}", f"--cert-dir={self.paths.kubelet_root}/pki",
            f"--hostname-override={NODE_NAME}", f"--node-labels={labels}",
            "--cloud-provider=external", "--v=2",
        ]
        return Daemon(
            "kubelet", argv, {"PATH": CHILD_PATH, "HOME": str(self.paths.root)},
            files={config: kubelet_config(self.paths), kubeconfig: kubelet_kubeconfig(self.paths)},
            healthy=lambda: lc.http_status("/healthz", KUBELET_HEALTHZ_PORT) == 200, timeout=120)

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
        problems = _runtime_problems(bins)
        if problems:
            raise NodeUnsupported("the node's binaries are incomplete:\n  - " + "\n  - ".join(problems))
        if list(Path("/etc/containerd/conf.d").glob("*.toml")):
            log("WARNING: containerd will also read /etc/containerd/conf.d/*.toml (host drop-ins)")
        foreign = self.daemons.foreign()
        if foreign:
            raise NodeError("another real node is running on this machine; stop it first:\n  " + "\n  ".join(foreign))
        ensure_kubelet_cert(self.paths)
        lc.write_if_changed(self.paths.bindir_file, f"{bins.bindir}\n")
        containerd, kubelet = self._containerd(bins), self._kubelet(bins)
        if self._current(containerd) and self._current(kubelet) and node_ready(api):
            log(f"already up ({time.monotonic() - started:.1f}s)")
            return
        for path in (self.paths.containerd_root, self.paths.containerd_state, self.paths.kubelet_root,
                     self.paths.pod_logs, self.paths.cni_ipam):
            path.mkdir(parents=True, exist_ok=True)
        ensure_dev_kmsg(self.paths)
        create_cgroup_root()
        self._run(containerd)
        self._import_pause_image(bins)
        save_kernel_tunables(self.paths)
        self._run(kubelet)
        self._initialize_node(api)
        log(f"node {NODE_NAME} Ready in {time.monotonic() - started:.1f}s "
            f"(logs: {self.paths.logs}; ctr --address {self.paths.socket} -n {CRI_NAMESPACE} ...)")

    def _cluster_api(self) -> Any:
        """The admin API client; the cluster must already be up (`make cluster`)."""
        if not lc.pki_is_current(self.paths.cluster_pki):
            raise NodeError(f"no cluster PKI in {self.paths.cluster_pki}: start the cluster first (make cluster)")
        api = lc.ApiClient(self.paths.cluster_pki)
        if api.request("GET", "/readyz")[0] != 200:
            raise NodeError("the local cluster's apiserver is not ready: start it first (make cluster)")
        return api

    def _ensure_apiserver_can_reach_kubelets(self) -> None:
        """`kubectl logs` needs the apiserver to present a client certificate to the kubelet; an
        apiserver started before localcluster.py passed `--kubelet-client-certificate` lacks it,
        and `localcluster.py up` restarts just that component."""
        try:
            pid = int((self.paths.cluster / "run" / "kube-apiserver.pid").read_text())
        except (OSError, ValueError):
            return  # not ours (existing-cluster mode): nothing we can change
        if any(arg.startswith("--kubelet-client-certificate=") for arg in lc.cmdline(pid)):
            return
        log("the apiserver predates --kubelet-client-certificate; restarting it (localcluster.py up)")
        result = subprocess.run([sys.executable, str(REPO_ROOT / "e2e" / "cluster" / "localcluster.py"), "up"],
                                check=False)
        if result.returncode != 0:
            raise NodeError("localcluster.py up failed; see its output above")

    def _current(self, daemon: Daemon) -> bool:
        return (self.daemons.pid(daemon.name) is not None
                and self.daemons.running_spec(daemon.name) == daemon.spec() and daemon.healthy())

    def _run(self, daemon: Daemon) -> None:
        """(Re)start a daemon whose process or configuration is not current, then wait for it."""
        if self._current(daemon):
            return
        if self.daemons.pid(daemon.name) is not None:
            log(f"restarting {daemon.name} (configuration changed or unhealthy)")
            self.daemons.stop(daemon.name)
        log(f"starting {daemon.name}")
        began = time.monotonic()
        proc = self.daemons.start(daemon)
        wait_healthy(self.daemons, daemon, proc)
        log(f"{daemon.name} healthy ({time.monotonic() - began:.1f}s)")

    def _import_pause_image(self, bins: NodeBinaries) -> None:
        """The CRI sandbox image, imported from the local tar (no registry serves one here)."""
        image = self.pins["PAUSE_IMAGE"]
        listed = self._ctr(bins, "images", "ls", "--quiet")
        if image in listed.stdout.split():
            return
        log(f"importing {image}")
        result = self._ctr(bins, "images", "import", "--platform", "linux/amd64", str(bins.pause_tar))
        if result.returncode != 0:
            raise NodeError(f"ctr images import failed: {result.stderr.strip()}")

    def _initialize_node(self, api: Any) -> None:
        """Act as the external cloud provider: wait for registration, set the address, lift the
        `uninitialized` taint, keep ours; then wait for Ready."""
        wait(lambda: api.request("GET", f"/api/v1/nodes/{NODE_NAME}")[0] == 200, 90,
             f"kubelet to register node {NODE_NAME}", self.daemons)
        wait(lambda: _initialize_once(api), 30, f"node {NODE_NAME} addresses and taints", self.daemons)
        wait(lambda: node_ready(api), 120, f"node {NODE_NAME} to be Ready", self.daemons)

    # ------------------------------------------------------------------ down / status

    def down(self, purge: bool = False) -> None:
        """Let kubelet tear its pods down, stop kubelet and containerd, then undo the host changes
        (leftover processes, mounts, cgroups, bridge, sysctls, /dev/kmsg) and delete the Node."""
        api = self._api_if_up()
        if api is not None and self.daemons.pid("kubelet") is not None and self.daemons.pid("containerd") is not None:
            self._drain(api)
        self.daemons.stop("kubelet")
        self.daemons.stop("containerd")
        stray = self.daemons.stray()
        if stray:
            log(f"stopping leftover processes {stray}")
            lc.terminate_groups(stray, 10)
        unmount_under(self.paths.root)
        cgroups_left: list[str] = []
        foreign = self.daemons.foreign()
        if foreign:
            log("another real node runs on this machine; leaving cgroups, bridge and sysctls to it:\n  "
                + "\n  ".join(foreign))
        else:
            cgroups_left = self._undo_host_changes()
        if api is not None:
            self._delete_node_object(api)
        left = self.daemons.stray()
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

    def _api_if_up(self) -> Any | None:
        """The admin client when the cluster still answers; `down` must also work without it."""
        if not lc.pki_is_current(self.paths.cluster_pki):
            return None
        api = lc.ApiClient(self.paths.cluster_pki)
        return api if api.request("GET", "/readyz")[0] == 200 else None

    def _drain(self, api: Any) -> None:
        """Delete the node's pods (1s grace) and wait until kubelet has finished them: kubelet
        stops each sandbox through CRI, so CNI releases the IP and veth and containerd unmounts
        the rootfs. Best effort; the sweeps in `down` catch whatever is left after 60s."""
        selector = f"fieldSelector=spec.nodeName%3D{NODE_NAME}"

        def pods() -> list[dict[str, Any]]:
            status, body = api.request("GET", f"/api/v1/pods?{selector}")
            return body.get("items", []) if status == 200 else []

        # Cordon first, or a ReplicaSet's replacement pod lands right back here.
        api.request("PATCH", f"/api/v1/nodes/{NODE_NAME}", {"spec": {"unschedulable": True}},
                    "application/merge-patch+json")
        found = pods()
        if not found:
            return
        log(f"deleting the {len(found)} pod(s) on {NODE_NAME}")
        for pod in found:
            meta = pod["metadata"]
            api.request("DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                        {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 1})
        deadline = time.monotonic() + 60
        while pods() and time.monotonic() < deadline:
            time.sleep(POLL)
        if pods():
            log("kubelet did not finish every pod within 60s; sweeping what is left")

    def _delete_node_object(self, api: Any) -> None:
        """Delete Node real-node-1 so schedulers and the operator stop counting it."""
        status, _ = api.request("DELETE", f"/api/v1/nodes/{NODE_NAME}")
        if status not in (200, 404):
            log(f"could not delete node {NODE_NAME}: HTTP {status}")

    def is_up(self) -> bool:
        """Quietly: both daemons running and the node Ready (no build, no output)."""
        if self.daemons.pid("containerd") is None or self.daemons.pid("kubelet") is None:
            return False
        return lc.pki_is_current(self.paths.cluster_pki) and node_ready(lc.ApiClient(self.paths.cluster_pki))

    def status(self) -> bool:
        """One line per piece; True when the node is up and Ready."""
        all_up = True
        for name, probe in (("containerd", self._containerd_answers),
                            ("kubelet", lambda: lc.http_status("/healthz", KUBELET_HEALTHZ_PORT) == 200)):
            pid = self.daemons.pid(name)
            ok = pid is not None and probe()
            all_up &= ok
            print(f"{name:<12} {'up' if ok else 'down':<5} {f'pid {pid}' if pid else ''}")
        ready = lc.pki_is_current(self.paths.cluster_pki) and node_ready(lc.ApiClient(self.paths.cluster_pki))
        print(f"{'node':<12} {NODE_NAME} {'Ready' if ready else 'not ready'}")
        return all_up and ready

    def _containerd_answers(self) -> bool:
        bindir = self.paths.known_bindir()
        if bindir is None:
            return False
        result = subprocess.run([str(bindir / "ctr"), "--address", str(self.paths.socket), "version"],
                                capture_output=True, timeout=10, check=False)
        return result.returncode == 0


def _initialize_once(api: Any) -> bool:
    """One attempt at the node's address and taints; False (retry) on a write conflict."""
    status, node = api.request("GET", f"/api/v1/nodes/{NODE_NAME}")
    if status != 200:
        return False
    wanted_addresses = [{"type": "InternalIP", "address": NODE_ADDRESS}]
    if node.get("status", {}).get("addresses") != wanted_addresses:
        patch = {"status": {"addresses": wanted_addresses}}
        code, body = api.request("PATCH", f"/api/v1/nodes/{NODE_NAME}/status", patch, "application/merge-patch+json")
        if code != 200:
            raise NodeError(f"setting the address of {NODE_NAME} failed: HTTP {code}: {body}")
    taints = node.get("spec", {}).get("taints") or []
    wanted = [t for t in taints if t["key"] != UNINITIALIZED_TAINT]
    if not any(t["key"] == REAL_NODE_TAINT["key"] for t in wanted):
        wanted.append(REAL_NODE_TAINT)
    cordoned = node.get("spec", {}).get("unschedulable", False)  # by an interrupted `down`
    if wanted != taints or cordoned:
        spec = {"taints": wanted, "unschedulable": None}
        patch = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]}, "spec": spec}
        code, body = api.request("PATCH", f"/api/v1/nodes/{NODE_NAME}", patch, "application/merge-patch+json")
        if code == 409:
            return False
        if code != 200:
            raise NodeError(f"setting the taints of {NODE_NAME} failed: HTTP {code}: {body}")
    return True


def node_ready(api: Any) -> bool:
    """Registered, Ready, initialised (address set, no `uninitialized` taint) and labelled."""
    status, node = api.request("GET", f"/api/v1/nodes/{NODE_NAME}")
    if status != 200:
        return False
    conditions = node.get("status", {}).get("conditions", [])
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    taints = {t["key"] for t in node.get("spec", {}).get("taints") or []}
    addresses = node.get("status", {}).get("addresses") or []
    labels = node["metadata"].get("labels", {})
    return (ready and UNINITIALIZED_TAINT not in taints and REAL_NODE_TAINT["key"] in taints
            and [a.get("address") for a in addresses] == [NODE_ADDRESS]
            and all(labels.get(k) == v for k, v in NODE_LABELS.items()))


def wait(check: Callable[[], bool], timeout: float, what: str, daemons: Daemons) -> None:
    """Poll `check`; on timeout name what we waited for and show kubelet's last log lines."""
    deadline = time.monotonic() + timeout
    while not check():
        if daemons.pid("kubelet") is None:
            raise NodeError(f"kubelet exited while waiting for {what}; last log lines:\n{daemons.tail('kubelet')}")
        if time.monotonic() > deadline:
            raise NodeError(
                f"timed out after {timeout:.0f}s waiting for {what}; kubelet log:\n{daemons.tail('kubelet')}")
        time.sleep(POLL)


@contextlib.contextmanager
def node_lock(paths: NodePaths) -> Iterator[None]:
    """Serialise up/down across processes (a test session and a developer's shell)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with (paths.root / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# --------------------------------------------------------------------------------------------
# Entry points for tests and the CLI
# --------------------------------------------------------------------------------------------


def ensure_real_node() -> RealNode:
    """Start the node unless it is already up and Ready; raises NodeUnsupported/NodeError."""
    paths = NodePaths.from_env()
    node = RealNode(paths)
    with node_lock(paths):
        node.up()
    return node


def stop_real_node(purge: bool = False) -> None:
    paths = NodePaths.from_env()
    if not paths.root.exists():
        return
    with node_lock(paths):
        RealNode(paths).down(purge)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
