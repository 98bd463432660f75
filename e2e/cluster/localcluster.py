#!/usr/bin/env python3
"""Run wasmkube's local Kubernetes cluster as plain processes on 127.0.0.1.

There is no Docker on our machines, so the cluster is assembled from binaries that
build-binaries.sh compiles from source: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and KWOK (which simulates the kubelets of four fake nodes), plus Debian's
docker-registry as the local OCI registry. Every process is detached (its own session and
process group), logs to the state directory and has a pid file there, so a later `down`
from any shell can find and stop it.

    localcluster.py up | down [--purge] | status | env

State lives in `.wasmkube/cluster/` at the repository root (override with WASMKUBE_STATE);
the admin kubeconfig is written next to it as `.wasmkube/kubeconfig`.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import contextlib
import dataclasses
import datetime
import fcntl
import hashlib
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# --------------------------------------------------------------------------------------------
# Fixed layout: ports, names and node definitions shared with the tests and the benchmark.
# --------------------------------------------------------------------------------------------

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
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
POLL_INTERVAL = 0.2

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

# Admission plugins: the production defaults of kube-apiserver 1.34 spelled out, plus
# NodeRestriction. Listing them keeps PodSecurity visibly on even if upstream defaults move.
ADMISSION_PLUGINS = [
    "NamespaceLifecycle", "LimitRanger", "ServiceAccount", "TaintNodesByCondition", "PodSecurity",
    "Priority", "DefaultTolerationSeconds", "DefaultStorageClass", "StorageObjectInUseProtection",
    "PersistentVolumeClaimResize", "RuntimeClass", "CertificateApproval", "CertificateSigning",
    "ClusterTrustBundleAttest", "CertificateSubjectRestriction", "DefaultIngressClass",
    "MutatingAdmissionWebhook", "ValidatingAdmissionPolicy", "ValidatingAdmissionWebhook",
    "ResourceQuota", "NodeRestriction",
]

# Audit policy for WASMKUBE_AUDIT=1. The benchmark counts requests per verb, so every request
# yields one Metadata event at ResponseComplete (watches also log ResponseStarted when they
# open); heartbeat noise (events, leases, health probes) is left out.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "resources": [
            {"group": "", "resources": ["events"]},
            {"group": "events.k8s.io", "resources": ["events"]},
            {"group": "coordination.k8s.io", "resources": ["leases"]},
        ]},
        {"level": "None", "nonResourceURLs": ["/healthz*", "/readyz*", "/livez*"]},
        {"level": "Metadata"},
    ],
}


class ClusterError(RuntimeError):
    """A failure `up`/`down` reports as one clear line instead of a traceback."""


class ComponentExited(ClusterError):
    """A component died while `up` waited for it; the message carries its last log lines."""


def log(message: str) -> None:
    """Progress goes to stderr so stdout stays clean for `env` and scripts."""
    print(f"localcluster: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Paths and binaries
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Paths:
    """Where this cluster keeps its state; everything is derived from one directory."""

    state: Path

    @classmethod
    def from_env(cls) -> Paths:
        """Honour WASMKUBE_STATE so a second cluster (or a CI sandbox) can live elsewhere."""
        override = os.environ.get("WASMKUBE_STATE")
        state = Path(override).resolve() if override else REPO_ROOT / ".wasmkube" / "cluster"
        return cls(state=state)

    @property
    def kubeconfig(self) -> Path:
        """`.wasmkube/kubeconfig`: the admin kubeconfig the tests and `make` targets use."""
        return self.state.parent / "kubeconfig"

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def config(self) -> Path:
        return self.state / "config"

    @property
    def external_marker(self) -> Path:
        """Present while `up` is pointed at an existing cluster (WASMKUBE_EXISTING_CLUSTER=1)."""
        return self.state / "external-cluster"


@dataclasses.dataclass(frozen=True)
class Binaries:
    """Absolute paths of every executable the cluster runs."""

    etcd: str
    kube_apiserver: str
    kube_controller_manager: str
    kube_scheduler: str
    kubectl: str
    kwok: str
    registry: str


def build_binaries() -> Path:
    """Run build-binaries.sh: it builds whatever is missing (minutes, once) and prints the bin dir.

    A warm run only stats files, so calling it on every `up` keeps one source of truth for the
    cache layout instead of re-deriving the pinned directory name here.
    """
    script = HERE / "build-binaries.sh"
    result = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise ClusterError(f"{script} failed (exit {result.returncode}); see its output above")
    return Path(lines[-1])


def locate_binaries() -> Binaries:
    """Our cached builds, with envtest's etcd/kube-apiserver/kubectl preferred when KUBEBUILDER_ASSETS
    points at them (lets CI reuse a pre-provisioned envtest directory for those three)."""
    bindir = build_binaries()
    assets = os.environ.get("KUBEBUILDER_ASSETS")

    def pick(name: str) -> str:
        if assets and os.access(Path(assets) / name, os.X_OK):
            return str(Path(assets) / name)
        return str(bindir / name)

    registry = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    if not os.access(registry, os.X_OK):
        raise ClusterError("docker-registry is not installed; run `make system-deps`")
    return Binaries(
        etcd=pick("etcd"),
        kube_apiserver=pick("kube-apiserver"),
        kube_controller_manager=str(bindir / "kube-controller-manager"),
        kube_scheduler=str(bindir / "kube-scheduler"),
        kubectl=pick("kubectl"),
        kwok=str(bindir / "kwok"),
        registry=registry,
    )


# --------------------------------------------------------------------------------------------
# PKI: the cluster CA signs the serving and client certificates; all keys are ECDSA P-256.
# --------------------------------------------------------------------------------------------

CERT_DAYS = 3650
RENEW_BEFORE = datetime.timedelta(days=7)
# Two CAs: the cluster CA, and the front-proxy CA that the apiserver's request-header
# authentication trusts (aggregated API servers; also silences the delegated-authn errors that
# controller-manager and scheduler log when it is missing).
CAS = {"ca": "wasmkube-local-ca", "front-proxy-ca": "wasmkube-front-proxy-ca"}
# name -> (signing CA, common name, organisations, kind)
LEAVES: dict[str, tuple[str, str, list[str], str]] = {
    "apiserver": ("ca", "kube-apiserver", [], "server"),
    "admin": ("ca", ADMIN_USER, ["system:masters"], "client"),
    "controller-manager": ("ca", "system:kube-controller-manager", [], "client"),
    "scheduler": ("ca", "system:kube-scheduler", [], "client"),
    # A distinct user name keeps KWOK's status writes apart from the operator's in audit logs.
    "kwok": ("ca", "wasmkube-kwok", ["system:masters"], "client"),
    "front-proxy-client": ("front-proxy-ca", "front-proxy-client", [], "client"),
}
APISERVER_SANS_DNS = [
    "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
]


def _write_private(path: Path, data: bytes) -> None:
    """Write key material readable by the owner only, atomically (a crash never leaves half a key)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tmp.replace(path)


def _load_pair(pki: Path, name: str) -> tuple[Any, Any] | None:
    """(certificate, key) if both files exist and the certificate is not about to expire."""
    crt, key = pki / f"{name}.crt", pki / f"{name}.key"
    if not (crt.exists() and key.exists()):
        return None
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    if cert.not_valid_after_utc < datetime.datetime.now(datetime.UTC) + RENEW_BEFORE:
        return None
    return cert, serialization.load_pem_private_key(key.read_bytes(), password=None)


def pki_is_current(pki: Path) -> bool:
    """True when every key pair exists and no certificate is about to expire."""
    pairs_ok = all(_load_pair(pki, name) is not None for name in [*CAS, *LEAVES])
    return pairs_ok and (pki / "sa.key").exists() and (pki / "sa.pub").exists()


def ensure_pki(pki: Path) -> None:
    """Create whatever part of the PKI is missing or expiring, and nothing else.

    The PKI survives `down`, so restarts keep the kubeconfigs that tools already hold. A renewed
    CA re-issues every certificate it signed.
    """
    pki.mkdir(parents=True, exist_ok=True)
    signers: dict[str, tuple[Any, Any]] = {}
    renewed: set[str] = set()
    for name, cn in CAS.items():
        pair = _load_pair(pki, name)
        if pair is None:
            log(f"generating {name}")
            key = ec.generate_private_key(ec.SECP256R1())
            pair = (_make_cert(cn, [], key, key, None, kind="ca"), key)
            _save_pair(pki, name, *pair)
            renewed.add(name)
        signers[name] = pair
    for name, (signer, cn, orgs, kind) in LEAVES.items():
        if signer in renewed or _load_pair(pki, name) is None:
            log(f"issuing certificate {name}")
            ca_cert, ca_key = signers[signer]
            key = ec.generate_private_key(ec.SECP256R1())
            _save_pair(pki, name, _make_cert(cn, orgs, key, ca_key, ca_cert, kind=kind), key)
    if not ((pki / "sa.key").exists() and (pki / "sa.pub").exists()):
        _make_service_account_key(pki)


def _make_service_account_key(pki: Path) -> None:
    """The key pair that signs (apiserver, controller-manager) and verifies ServiceAccount tokens."""
    sa_key = ec.generate_private_key(ec.SECP256R1())
    _write_private(pki / "sa.key", sa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (pki / "sa.pub").write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def _save_pair(pki: Path, name: str, cert: Any, key: Any) -> None:
    """<name>.crt (public) and <name>.key (owner-only) in PEM, the layout every component reads."""
    _write_private(pki / f"{name}.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (pki / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _make_cert(cn: str, orgs: list[str], key: Any, signer_key: Any, signer: Any, *, kind: str) -> Any:
    """Issue one certificate; kind is "ca", "server" (apiserver SANs) or "client"."""
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in orgs]
    subject = x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer.subject if signer is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    is_ca = kind == "ca"
    builder = builder.add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    builder = builder.add_extension(x509.KeyUsage(
        digital_signature=True, key_encipherment=False, content_commitment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=is_ca, crl_sign=is_ca, encipher_only=False, decipher_only=False,
    ), critical=True)
    if signer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    if kind == "server":
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in APISERVER_SANS_DNS]
        first_service_ip = ipaddress.IPv4Network(SERVICE_CIDR)[1]  # the `kubernetes` Service's IP
        sans += [x509.IPAddress(ipaddress.IPv4Address(HOST)), x509.IPAddress(first_service_ip)]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
        builder = builder.add_extension(usage, critical=False)
    elif kind == "client":
        usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
        builder = builder.add_extension(usage, critical=False)
    return builder.sign(signer_key, hashes.SHA256())


def pki_fingerprint(pki: Path) -> str:
    """Identifies the PKI generation, so processes started with older certificates get restarted."""
    digest = hashlib.sha256()
    for path in sorted([*pki.glob("*.crt"), pki / "sa.pub"]):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def kubeconfig_for(pki: Path, user: str, server: str = f"https://{HOST}:{APISERVER_PORT}") -> str:
    """A self-contained kubeconfig (certificates embedded) for one of the client certificates."""
    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT_NAME, "cluster": {
            "server": server, "certificate-authority-data": b64(pki / "ca.crt")}}],
        "users": [{"name": LEAVES[user][1], "user": {
            "client-certificate-data": b64(pki / f"{user}.crt"),
            "client-key-data": b64(pki / f"{user}.key")}}],
        "contexts": [{"name": CONTEXT_NAME, "context": {
            "cluster": CONTEXT_NAME, "user": LEAVES[user][1], "namespace": "default"}}],
        "current-context": CONTEXT_NAME,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_if_changed(path: Path, text: str, *, private: bool = False) -> None:
    """Rewrite a generated file only when its content changes, so warm runs touch nothing."""
    if path.exists() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if private:
        _write_private(path, text.encode())
    else:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)


# --------------------------------------------------------------------------------------------
# HTTP probes and a tiny API client (the stdlib is enough; no kubectl start-up cost per call).
# --------------------------------------------------------------------------------------------


def http_status(url_path: str, port: int, *, context: ssl.SSLContext | None = None) -> int:
    """Status of a GET against 127.0.0.1:port, or 0 if nothing answers in time."""
    conn: http.client.HTTPConnection
    if context is None:
        conn = http.client.HTTPConnection(HOST, port, timeout=2)
    else:
        conn = http.client.HTTPSConnection(HOST, port, timeout=2, context=context)
    try:
        conn.request("GET", url_path)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def insecure_tls() -> ssl.SSLContext:
    """For the health ports of controller-manager and scheduler, which serve self-signed certificates;
    only /healthz on loopback is ever read through it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class ApiClient:
    """Just enough of the Kubernetes REST API for bootstrapping, authenticated as the admin."""

    def __init__(self, pki: Path) -> None:
        self.context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

    def request(self, method: str, path: str, body: Any = None,
                content_type: str = "application/json") -> tuple[int, Any]:
        """One request; returns (status, decoded JSON or None). Status 0 means unreachable."""
        conn = http.client.HTTPSConnection(HOST, APISERVER_PORT, timeout=5, context=self.context)
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            return 0, None
        finally:
            conn.close()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw.decode(errors="replace")

    def apply(self, path: str, obj: dict[str, Any]) -> None:
        """Server-side apply, forced: `up` is the single owner of the fields it declares."""
        query = f"?fieldManager={FIELD_MANAGER}&force=true"
        status, body = self.request("PATCH", path + query, obj, "application/apply-patch+yaml")
        if status not in (200, 201):
            raise ClusterError(f"apply {path} failed: HTTP {status}: {body}")


# --------------------------------------------------------------------------------------------
# Processes: detached, one pid file each, recognisable by the state dir in their arguments.
# --------------------------------------------------------------------------------------------

OUR_EXECUTABLES = {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok",
                   "docker-registry"}


@dataclasses.dataclass
class Component:
    """One cluster process: how to start it and how to tell that it is healthy."""

    name: str
    argv: list[str]
    healthy: Callable[[], bool]
    timeout: float = 60.0
    files: dict[Path, str] = dataclasses.field(default_factory=dict)  # config files it reads

    def spec(self, fingerprint: str) -> str:
        """What the running process was started with; a difference means restart it. Config files
        enter as digests: they include kubeconfigs, whose keys must not leak into the spec file."""
        files = {str(k): hashlib.sha256(v.encode()).hexdigest() for k, v in self.files.items()}
        return json.dumps({"argv": self.argv, "files": files, "pki": fingerprint}, sort_keys=True)


def cmdline(pid: int) -> list[str]:
    """A process's argv from /proc ([] if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name: [0] is the state, [19] the start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat.rsplit(")", 1)[1].split()


def _is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return not fields or fields[0] == "Z"


def process_start_time(pid: int) -> str | None:
    """Kernel start time of a live process; together with the pid it names one process for good."""
    fields = _stat_fields(pid)
    return fields[19] if fields and fields[0] != "Z" else None


def is_state_process(pid: int, state: Path) -> bool:
    """Whether pid is one of our executables running with this state dir in its arguments.

    Used to find processes that lost their pid file. Not used right after a start: a freshly
    exec'd kube-apiserver briefly shows only argv[0] in /proc/<pid>/cmdline.
    """
    argv = cmdline(pid)
    marker = f"{state}/"
    return (bool(argv) and Path(argv[0]).name in OUR_EXECUTABLES and not _is_zombie(pid)
            and any(marker in arg for arg in argv))


def other_pids() -> Iterator[int]:
    """Every process on the machine but this one."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            yield int(entry.name)


def find_state_processes(state: Path) -> list[int]:
    """Every cluster process started from this state dir, pid file or not (catches orphans)."""
    return [pid for pid in other_pids() if is_state_process(pid, state)]


def launch_detached(argv: list[str], log_path: Path, cwd: Path, env: dict[str, str] | None = None,
                    ) -> subprocess.Popen[bytes]:
    """Start a daemon in a session of its own (its own process group, so it can be stopped with
    everything it spawned), stdin closed, output appended to `log_path` after a header line."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        out.write(f"\n==== {time.strftime('%F %T')} starting: {' '.join(argv)}\n".encode())
        out.flush()
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                env=env, start_new_session=True)


class Supervisor:
    """Starts, inspects and stops the components of one state directory."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.children: dict[str, subprocess.Popen[bytes]] = {}  # started by this invocation

    def pid_file(self, name: str) -> Path:
        """Plain pid, for people and tools (`kill $(cat run/etcd.pid)`)."""
        return self.paths.run / f"{name}.pid"

    def record_file(self, name: str) -> Path:
        """pid, kernel start time and start spec: identifies the process even after pid reuse."""
        return self.paths.run / f"{name}.json"

    def _record(self, name: str) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = json.loads(self.record_file(name).read_text())
        except (OSError, ValueError):
            return None
        return record

    def log_file(self, name: str) -> Path:
        return self.paths.logs / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """The component's pid if the very process we started is still alive."""
        record = self._record(name)
        if record is None:
            return None
        pid = int(record["pid"])
        started = process_start_time(pid)
        return pid if started is not None and started == record["start_time"] else None

    def exited(self, name: str) -> bool:
        """Whether the component's process is gone. For a child of ours, ask the kernel via
        poll() (exact even in the first milliseconds of its life); otherwise go by the pid file."""
        child = self.children.get(name)
        if child is not None:
            return child.poll() is not None
        return self.pid(name) is None

    def running_spec(self, name: str) -> str | None:
        """The spec the running process was started with (compare with Component.spec)."""
        record = self._record(name)
        return None if record is None else str(record["spec"])

    def start(self, component: Component, fingerprint: str) -> None:
        """Launch detached (new session = own process group), output appended to its log."""
        for path, text in component.files.items():
            write_if_changed(path, text, private=path.suffix == ".kubeconfig")
        self.paths.run.mkdir(parents=True, exist_ok=True)
        proc = launch_detached(component.argv, self.log_file(component.name), self.paths.state)
        self.children[component.name] = proc
        record = {"pid": proc.pid, "start_time": process_start_time(proc.pid),
                  "spec": component.spec(fingerprint)}
        self.record_file(component.name).write_text(json.dumps(record))
        self.pid_file(component.name).write_text(f"{proc.pid}\n")

    def stop(self, names: list[str], timeout: float = 10.0) -> None:
        """SIGTERM each process group, wait, then SIGKILL whatever remains; clear pid files."""
        pids = {name: pid for name in names if (pid := self.pid(name)) is not None}
        terminate_groups(list(pids.values()), timeout)
        for name in names:
            self.pid_file(name).unlink(missing_ok=True)
            self.record_file(name).unlink(missing_ok=True)

    def tail_log(self, name: str, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_file(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def terminate_groups(pids: list[int], timeout: float) -> None:
    """Stop processes and their groups: polite first, then forceful once the timeout passes."""
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    leftovers = [p for p in pids if alive(p)]
    if leftovers:
        _signal_all(leftovers, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(alive(p) for p in leftovers):
            time.sleep(0.05)
    # They were reparented to init; give it a moment to reap them, so `ps` right after `down`
    # shows no <defunct> entries. Best effort: a zombie holds no port, file or memory.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.05)


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            try:
                os.killpg(pid, sig)  # the leader's pid is its group id (start_new_session)
            except ProcessLookupError:
                os.kill(pid, sig)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    return Path(f"/proc/{pid}").exists() and not _is_zombie(pid)


# --------------------------------------------------------------------------------------------
# The components of the cluster
# --------------------------------------------------------------------------------------------


def audit_enabled() -> bool:
    return os.environ.get("WASMKUBE_AUDIT", "") == "1"


def plan_components(paths: Paths, bins: Binaries) -> list[Component]:
    """All processes in start order; each argv is fully determined by the paths and env."""
    pki, cfg = paths.pki, paths.config
    tls = insecure_tls()
    api_ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    api_ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    kc_kcm, kc_sched, kc_kwok = (cfg / f"{n}.kubeconfig" for n in ("controller-manager", "scheduler", "kwok"))
    return [
        Component(
            "etcd", _etcd_argv(paths, bins), timeout=30,
            healthy=lambda: http_status("/health", ETCD_CLIENT_PORT) == 200),
        registry_component(paths, bins),
        Component(
            "kube-apiserver", _apiserver_argv(paths, bins), timeout=120,
            healthy=lambda: http_status("/readyz", APISERVER_PORT, context=api_ctx) == 200,
            files=({cfg / "audit-policy.yaml": yaml.safe_dump(AUDIT_POLICY, sort_keys=False)}
                   if audit_enabled() else {})),
        Component(
            "kube-controller-manager", _controller_manager_argv(paths, bins, kc_kcm),
            healthy=lambda: http_status("/healthz", CONTROLLER_MANAGER_PORT, context=tls) == 200,
            files={kc_kcm: kubeconfig_for(pki, "controller-manager")}),
        Component(
            "kube-scheduler", [bins.kube_scheduler, f"--config={cfg / 'scheduler.yaml'}",
                               f"--authentication-kubeconfig={kc_sched}",
                               f"--authorization-kubeconfig={kc_sched}",
                               f"--bind-address={HOST}", f"--secure-port={SCHEDULER_PORT}",
                               f"--cert-dir={paths.state / 'scheduler-certs'}"],
            healthy=lambda: http_status("/healthz", SCHEDULER_PORT, context=tls) == 200,
            files={kc_sched: kubeconfig_for(pki, "scheduler"),
                   cfg / "scheduler.yaml": _scheduler_config(kc_sched)}),
        Component(
            "kwok", [bins.kwok, f"--kubeconfig={kc_kwok}", f"--config={cfg / 'kwok.yaml'}"],
            healthy=lambda: http_status("/healthz", KWOK_PORT) == 200,
            files={kc_kwok: kubeconfig_for(pki, "kwok"), cfg / "kwok.yaml": _kwok_config()}),
    ]


def _etcd_argv(paths: Paths, bins: Binaries) -> list[str]:
    """Single-member etcd; fsync off because the data is disposable and speed matters."""
    client, peer = f"http://{HOST}:{ETCD_CLIENT_PORT}", f"http://{HOST}:{ETCD_PEER_PORT}"
    return [
        bins.etcd, "--name=wasmkube", f"--data-dir={paths.state / 'etcd'}",
        f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=wasmkube={peer}", "--unsafe-no-fsync", "--log-level=warn",
        "--quota-backend-bytes=4294967296",
    ]


def _apiserver_argv(paths: Paths, bins: Binaries) -> list[str]:
    """Production-like authn/authz/admission (RBAC, SA tokens, PodSecurity), loopback only."""
    pki = paths.pki
    argv = [
        bins.kube_apiserver,
        f"--etcd-servers=http://{HOST}:{ETCD_CLIENT_PORT}",
        f"--bind-address={HOST}", f"--advertise-address={HOST}", f"--secure-port={APISERVER_PORT}",
        f"--cert-dir={paths.state / 'apiserver-certs'}",
        f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
        f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
        "--authorization-mode=Node,RBAC",
        # How the apiserver authenticates to kubelets (logs, exec, port-forward): as the admin.
        # Only the real node (e2e/node/realnode.py) runs a kubelet; KWOK's fake nodes have none.
        f"--kubelet-client-certificate={pki / 'admin.crt'}", f"--kubelet-client-key={pki / 'admin.key'}",
        f"--enable-admission-plugins={','.join(ADMISSION_PLUGINS)}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # The lease reconciler would publish 127.0.0.1 as the `kubernetes` Endpoints, which
        # validation rejects (loopback); nothing in-cluster needs that Service here.
        "--endpoint-reconciler-type=none",
        "--allow-privileged=true",
        "--profiling=false",
        # On SIGTERM, end open watches within 2s instead of letting the HTTP server wait up to a
        # minute for clients (kwok, controllers, operators) to drop them: restarts stay quick.
        "--shutdown-watch-termination-grace-period=2s",
    ]
    if audit_enabled():
        argv += [
            f"--audit-policy-file={paths.config / 'audit-policy.yaml'}",
            f"--audit-log-path={paths.state / 'audit.log'}",
            "--audit-log-format=json", "--audit-log-maxsize=0", "--audit-log-maxbackup=0",
        ]
    return argv


def _controller_manager_argv(paths: Paths, bins: Binaries, kubeconfig: Path) -> list[str]:
    """All default controllers, each with its own service-account identity like kubeadm sets up.

    The API rate limit is raised well above the default (20 qps) because the benchmark creates
    thousands of pods and must measure the operator, not a throttled ReplicaSet controller.
    """
    pki = paths.pki
    return [
        bins.kube_controller_manager,
        f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--bind-address={HOST}", f"--secure-port={CONTROLLER_MANAGER_PORT}",
        f"--cert-dir={paths.state / 'controller-manager-certs'}",
        "--leader-elect=false", "--controllers=*",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}",
        f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--node-monitor-period=2s",
        "--kube-api-qps=200", "--kube-api-burst=400",
    ]


def _scheduler_config(kubeconfig: Path) -> str:
    """KubeSchedulerConfiguration: no leader election, and a client rate limit sized for bursts."""
    return yaml.safe_dump({
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig), "qps": 200, "burst": 400},
        "leaderElection": {"leaderElect": False},
    }, sort_keys=False)


def _kwok_config() -> str:
    """KWOK with its built-in stages (v0.7 falls back to them when the config has none)."""
    return yaml.safe_dump({
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokConfiguration",
        "options": {
            "manageAllNodes": False,
            "manageNodesWithAnnotationSelector": f"{KWOK_ANNOTATION[0]}={KWOK_ANNOTATION[1]}",
            "manageNodesWithLabelSelector": "",
            "serverAddress": f"{HOST}:{KWOK_PORT}",
            "nodeIP": HOST,
            "cidr": "10.244.0.1/16",
            "nodeLeaseDurationSeconds": NODE_LEASE_SECONDS,
        },
    }, sort_keys=False)


def registry_component(paths: Paths, bins: Binaries) -> Component:
    """The local OCI registry; needs no PKI, so existing-cluster mode can run it alone."""
    config = paths.config / "registry.yml"
    return Component("registry", [bins.registry, "serve", str(config)],
                     healthy=lambda: http_status("/v2/", REGISTRY_PORT) == 200,
                     files={config: _registry_config(paths)})


def _registry_config(paths: Paths) -> str:
    """distribution 2.8: plain HTTP on loopback, no auth, deletes allowed, data in the state dir."""
    return yaml.safe_dump({
        "version": 0.1,
        "log": {"level": "warn", "fields": {"service": "registry"}},
        "storage": {
            "filesystem": {"rootdirectory": str(paths.state / "registry")},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
        },
        "http": {"addr": f"{HOST}:{REGISTRY_PORT}", "headers": {"X-Content-Type-Options": ["nosniff"]}},
    }, sort_keys=False)


# --------------------------------------------------------------------------------------------
# Nodes
# --------------------------------------------------------------------------------------------


def node_manifest(name: str) -> dict[str, Any]:
    """The Node object for one fake node (labels, KWOK annotation, taints)."""
    labels = {
        "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name,
        "type": "kwok", **NODES[name]["labels"],
    }
    annotations = {KWOK_ANNOTATION[0]: KWOK_ANNOTATION[1], "node.alpha.kubernetes.io/ttl": "0"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {"taints": NODES[name]["taints"]},
    }


def apply_nodes(api: ApiClient) -> None:
    """Create or update the four nodes, then set their capacity (a status field, hence separate)."""
    resources = {"capacity": NODE_ALLOCATABLE, "allocatable": NODE_ALLOCATABLE}
    for name in NODES:
        api.apply(f"/api/v1/nodes/{name}", node_manifest(name))
        api.apply(f"/api/v1/nodes/{name}/status",
                  {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "status": resources})


NODE_LEASE_SECONDS = 40  # KWOK's default lease duration, stated in its config below
LEASES_PATH = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


def release_node_leases(api: ApiClient) -> None:
    """Delete the node leases a previous KWOK process held.

    Each KWOK process has a random identity and will not take over a lease another holder renewed
    less than 40 s ago, so after a restart pods would sit unstarted for up to 40 s. Only called
    when no KWOK runs, so nothing live is disturbed.
    """
    for name in NODES:
        status, body = api.request("DELETE", f"{LEASES_PATH}/{name}")
        if status not in (200, 404):
            raise ClusterError(f"deleting lease {name} failed: HTTP {status}: {body}")


def node_leases_fresh(api: ApiClient) -> bool:
    """Every node's lease exists and was renewed recently, i.e. a live KWOK manages the node."""
    status, body = api.request("GET", LEASES_PATH)
    if status != 200:
        return False
    renewed = {item["metadata"]["name"]: item.get("spec", {}).get("renewTime") for item in body["items"]}
    now = datetime.datetime.now(datetime.UTC)
    for name in NODES:
        stamp = renewed.get(name)
        if not stamp or (now - datetime.datetime.fromisoformat(stamp)).total_seconds() > NODE_LEASE_SECONDS:
            return False
    return True


def _node_is_schedulable(node: dict[str, Any]) -> bool:
    """Ready, and the node-lifecycle controller has lifted its not-ready/unreachable taints."""
    conditions = node.get("status", {}).get("conditions", [])
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    taints = {t.get("key") for t in node.get("spec", {}).get("taints", [])}
    return ready and not taints & {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}


def nodes_ready(api: ApiClient) -> bool:
    """All four nodes exist, carry their labels and can take pods."""
    status, body = api.request("GET", "/api/v1/nodes")
    if status != 200:
        return False
    found = {n["metadata"]["name"]: n for n in body.get("items", [])}
    for name, spec in NODES.items():
        node = found.get(name)
        if node is None or not _node_is_schedulable(node):
            return False
        labels = node["metadata"].get("labels", {})
        if any(labels.get(k) != v for k, v in spec["labels"].items()):
            return False
    return True


def default_namespace_exists(api: ApiClient) -> bool:
    return api.request("GET", "/api/v1/namespaces/default")[0] == 200


# --------------------------------------------------------------------------------------------
# Waiting
# --------------------------------------------------------------------------------------------


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll every POLL_INTERVAL; raise with `what` in the message when time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL_INTERVAL)


def run_parallel(tasks: dict[str, Callable[[], None]]) -> None:
    """Run independent waits concurrently, logging how long each took (where start-up time goes);
    re-raise the first failure after all have finished."""
    began = time.monotonic()

    def timed(name: str, task: Callable[[], None]) -> None:
        task()
        log(f"{name} ready after {time.monotonic() - began:.1f}s")

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(tasks))) as pool:
        futures = [pool.submit(timed, name, task) for name, task in tasks.items()]
    for future in futures:  # all have finished here; result() re-raises a task's failure
        future.result()


@contextlib.contextmanager
def state_lock(paths: Paths) -> Iterator[None]:
    """Serialise up/down across processes (two test sessions may call `up` at once)."""
    paths.state.mkdir(parents=True, exist_ok=True)
    with (paths.state / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# --------------------------------------------------------------------------------------------
# up
# --------------------------------------------------------------------------------------------


class Cluster:
    """The local cluster of one state directory."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.sup = Supervisor(paths)

    def up(self) -> None:
        """Bring every component to running-and-healthy, starting only what is not."""
        started = time.monotonic()
        bins = locate_binaries()
        ensure_pki(self.paths.pki)
        self.paths.config.mkdir(parents=True, exist_ok=True)
        fingerprint = pki_fingerprint(self.paths.pki)
        components = {c.name: c for c in plan_components(self.paths, bins)}
        api = ApiClient(self.paths.pki)
        self.paths.external_marker.unlink(missing_ok=True)

        if self._all_current(components, fingerprint) and nodes_ready(api) and node_leases_fresh(api):
            self._write_admin_kubeconfig()
            log(f"already up ({time.monotonic() - started:.1f}s)")
            return

        self._stop_outdated(components, fingerprint)
        self._check_ports_free(components)
        # The apiserver retries its etcd connection while it initialises, so both start at once.
        self._bring_up(["etcd", "registry", "kube-apiserver"], components, fingerprint,
                       wait=["etcd", "kube-apiserver"])
        apply_nodes(api)
        if self.sup.pid("kwok") is None:
            release_node_leases(api)
        controllers = ["kube-controller-manager", "kube-scheduler", "kwok"]
        self._bring_up(controllers, components, fingerprint, wait=[])
        run_parallel({
            **{name: self._waiter(components[name])
               for name in ("registry", "kube-controller-manager", "kube-scheduler", "kwok")},
            "nodes": lambda: wait_until(lambda: nodes_ready(api) and node_leases_fresh(api), 90,
                                        "the 4 nodes to be Ready and their leases held by KWOK"),
            "default namespace": lambda: wait_until(
                lambda: default_namespace_exists(api), 30, "the default namespace"),
        })
        self._write_admin_kubeconfig()
        log(f"cluster up in {time.monotonic() - started:.1f}s; KUBECONFIG={self.paths.kubeconfig}")

    def _all_current(self, components: dict[str, Component], fingerprint: str) -> bool:
        """Fast path: every process alive, started with today's arguments, and healthy."""
        for name, comp in components.items():
            if self.sup.pid(name) is None or self.sup.running_spec(name) != comp.spec(fingerprint):
                return False
        results: list[bool] = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(components)) as pool:
            results = list(pool.map(lambda c: c.healthy(), components.values()))
        return all(results)

    def _stop_outdated(self, components: dict[str, Component], fingerprint: str) -> None:
        """Stop, all at once, the running components whose arguments, config files or certificates
        changed (e.g. WASMKUBE_AUDIT toggled); the normal start sequence then brings them back.
        One batch, because stopping them one by one makes each wait for the others' shutdown."""
        outdated = [name for name, comp in components.items()
                    if self.sup.pid(name) is not None and self.sup.running_spec(name) != comp.spec(fingerprint)]
        if outdated:
            log(f"restarting {', '.join(outdated)} (configuration changed)")
            self.sup.stop(outdated)

    def _check_ports_free(self, components: dict[str, Component]) -> None:
        """Fail clearly when a foreign process holds one of our ports (otherwise: a 2-minute timeout)."""
        ports = {"etcd": [ETCD_CLIENT_PORT, ETCD_PEER_PORT], "registry": [REGISTRY_PORT],
                 "kube-apiserver": [APISERVER_PORT], "kube-controller-manager": [CONTROLLER_MANAGER_PORT],
                 "kube-scheduler": [SCHEDULER_PORT], "kwok": [KWOK_PORT]}
        for name in components:
            if self.sup.pid(name) is not None:
                continue  # ours, and it stays
            busy = [p for p in ports[name] if _port_in_use(p)]
            if busy:
                raise ClusterError(
                    f"{name}: port(s) {busy} on {HOST} are used by another process "
                    f"(see `ss -ltnp`); stop it or run `localcluster.py down` for that state dir")

    def _bring_up(self, names: list[str], components: dict[str, Component], fingerprint: str,
                  wait: list[str]) -> None:
        """Start each named component that is not running, then wait for those in `wait`."""
        for name in names:
            comp = components[name]
            if self.sup.pid(name) is not None:
                continue
            log(f"starting {name}")
            self.sup.start(comp, fingerprint)
        run_parallel({name: self._waiter(components[name]) for name in wait})

    def _waiter(self, comp: Component) -> Callable[[], None]:
        """A task that waits for comp to be healthy, failing fast (with its log) if it dies."""
        def check() -> bool:
            if self.sup.exited(comp.name):
                raise ComponentExited(f"{comp.name} exited; last log lines:\n{self.sup.tail_log(comp.name)}")
            return comp.healthy()

        def wait() -> None:
            try:
                wait_until(check, comp.timeout, f"{comp.name} to become healthy")
            except ComponentExited:
                raise
            except ClusterError as err:
                raise ClusterError(f"{err}; last log lines:\n{self.sup.tail_log(comp.name)}") from None
        return wait

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
        self._bring_up_single(registry_component(self.paths, bins))
        write_if_changed(self.paths.kubeconfig, flattened.stdout, private=True)
        probe = subprocess.run(
            [bins.kubectl, f"--kubeconfig={self.paths.kubeconfig}", "get", "--raw", "/readyz"],
            capture_output=True, text=True, check=False)
        if probe.returncode != 0:
            raise ClusterError(f"existing cluster is not ready: {probe.stderr.strip()}")
        self.paths.external_marker.write_text(os.environ["KUBECONFIG"] + "\n")
        log(f"using existing cluster; registry up; took {time.monotonic() - started:.1f}s. "
            f"Nodes need the labels {WASMTIME_LABEL}=ready / {SPIN_LABEL}=ready to run Wasm workloads")

    def _bring_up_single(self, comp: Component) -> None:
        """Start one component outside the normal sequence (the registry in existing-cluster mode)."""
        if self.sup.pid(comp.name) is None:
            if _port_in_use(REGISTRY_PORT):
                raise ClusterError(f"port {REGISTRY_PORT} is used by another process")
            log(f"starting {comp.name}")
            self.sup.start(comp, "external")
        self._waiter(comp)()

    # ---------------------------------------------------------------- down / status

    def down(self, purge: bool) -> None:
        """Stop everything this state dir started, verify nothing is left, optionally delete state."""
        names = ["kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "registry", "etcd"]
        if self.paths.run.exists():
            self.sup.stop(names)
        orphans = find_state_processes(self.paths.state)
        if orphans:
            log(f"stopping processes without pid file: {orphans}")
            terminate_groups(orphans, 10)
        left = find_state_processes(self.paths.state)
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
        names = ["registry"] if external else [
            "etcd", "registry", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
        all_up = True
        healthy = self._health_probes()
        for name in names:
            pid = self.sup.pid(name)
            ok = pid is not None and healthy[name]()
            all_up &= ok
            print(f"{name:<24} {'up' if ok else 'down':<5} {f'pid {pid}' if pid else ''}")
        if external:
            print(f"{'existing cluster':<24} {self.paths.external_marker.read_text().strip()}")
        elif all_up:
            ready = nodes_ready(ApiClient(self.paths.pki))
            all_up &= ready
            print(f"{'nodes':<24} {'ready' if ready else 'not ready'}")
        return all_up

    def _health_probes(self) -> dict[str, Callable[[], bool]]:
        """Health checks that need no binaries (status must not trigger a build)."""
        tls = insecure_tls()
        probes: dict[str, Callable[[], bool]] = {
            "etcd": lambda: http_status("/health", ETCD_CLIENT_PORT) == 200,
            "registry": lambda: http_status("/v2/", REGISTRY_PORT) == 200,
            "kube-controller-manager": lambda: (
                http_status("/healthz", CONTROLLER_MANAGER_PORT, context=tls) == 200),
            "kube-scheduler": lambda: http_status("/healthz", SCHEDULER_PORT, context=tls) == 200,
            "kwok": lambda: http_status("/healthz", KWOK_PORT) == 200,
        }
        if pki_is_current(self.paths.pki):
            api = ApiClient(self.paths.pki)
            probes["kube-apiserver"] = lambda: api.request("GET", "/readyz")[0] == 200
        else:
            probes["kube-apiserver"] = lambda: False
        return probes


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((HOST, port)) == 0


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def cmd_env(paths: Paths) -> None:
    """Shell exports for `eval "$(localcluster.py env)"`: kubeconfig, registry and our tools on PATH."""
    bindir = build_binaries()
    print(f"export KUBECONFIG={paths.kubeconfig}")
    print(f"export WASMKUBE_REGISTRY={HOST}:{REGISTRY_PORT}")
    print(f'export PATH="{bindir}:$PATH"')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the cluster (idempotent)")
    down = sub.add_parser("down", help="stop every process of the cluster")
    down.add_argument("--purge", action="store_true", help="also delete the state dir (etcd data, PKI)")
    sub.add_parser("status", help="print each component up/down; exit 0 if all are up")
    sub.add_parser("env", help="print shell exports for using the cluster")
    args = parser.parse_args(argv)

    paths = Paths.from_env()
    cluster = Cluster(paths)
    try:
        if args.command == "up":
            with state_lock(paths):
                if os.environ.get("WASMKUBE_EXISTING_CLUSTER") == "1":
                    cluster.up_existing()
                else:
                    cluster.up()
        elif args.command == "down":
            if not paths.state.exists():
                log("nothing to stop")
                return 0
            with state_lock(paths):
                cluster.down(args.purge)
        elif args.command == "status":
            return 0 if cluster.status() else 1
        else:
            cmd_env(paths)
    except ClusterError as err:
        log(f"ERROR: {err}")
        if args.command == "up":
            log(f"logs: {paths.logs}; stop leftovers with `localcluster.py down`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
