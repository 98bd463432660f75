"""The command lines and config files of the cluster's components.

Each argv is fully determined by the paths and the environment, so `up` can compare it with
what a running process was started with and restart only what changed.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from .binaries import Binaries
from .layout import (
    APISERVER_PORT,
    CONTROLLER_MANAGER_PORT,
    ETCD_CLIENT_PORT,
    ETCD_PEER_PORT,
    HOST,
    KWOK_ANNOTATION,
    KWOK_PORT,
    NODE_LEASE_SECONDS,
    REGISTRY_PORT,
    SERVICE_CIDR,
)
from .paths import Paths

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


def audit_enabled() -> bool:
    return os.environ.get("WASMKUBE_AUDIT", "") == "1"


def etcd_argv(paths: Paths, bins: Binaries) -> list[str]:
    """Single-member etcd; fsync off because the data is disposable and speed matters."""
    client, peer = f"http://{HOST}:{ETCD_CLIENT_PORT}", f"http://{HOST}:{ETCD_PEER_PORT}"
    return [
        bins.etcd, "--name=wasmkube", f"--data-dir={paths.state / 'etcd'}",
        f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=wasmkube={peer}", "--unsafe-no-fsync", "--log-level=warn",
        "--quota-backend-bytes=4294967296",
    ]


def apiserver_argv(paths: Paths, bins: Binaries) -> list[str]:
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


def controller_manager_argv(paths: Paths, bins: Binaries, kubeconfig: Path) -> list[str]:
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


def scheduler_config(kubeconfig: Path) -> str:
    """KubeSchedulerConfiguration: no leader election, and a client rate limit sized for bursts."""
    return yaml.safe_dump({
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig), "qps": 200, "burst": 400},
        "leaderElection": {"leaderElect": False},
    }, sort_keys=False)


def kwok_config() -> str:
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


def registry_config(paths: Paths) -> str:
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

