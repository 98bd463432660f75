"""Give each operator under test its own ServiceAccount, so its requests can be told apart.

The audit log names the user of every request. The admin (the benchmark client), the
controller-manager, the scheduler and KWOK all have their own names; running wasmkube as a
ServiceAccount with exactly the chart's RBAC (rendered with `helm template`, as e2e/demo.py's
install would create it) makes its requests, and only its requests, countable. spin-operator
gets a ServiceAccount bound to cluster-admin: its own RBAC lives in kustomize files the
benchmark does not render, and only its identity matters here.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

from e2e.support.binaries import binary
from e2e.support.cluster import Cluster
from e2e.support.kubeconfig import kubeconfig_for_token
from e2e.support.state import REPO_ROOT

from .shared import apply_manifest, delete_manifest, kubectl

SYSTEM_NAMESPACE = "wasmkube-bench-system"
RELEASE = "wasmkube-bench"  # helm's fullname is the release name when it contains "wasmkube"


@dataclasses.dataclass(frozen=True)
class Identity:
    username: str  # as the audit log writes it
    kubeconfig: Path
    manifest: str  # what was applied for it, deleted again by `remove`


def _ensure_system_namespace(cluster: Cluster) -> None:
    apply_manifest(cluster, [{"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": SYSTEM_NAMESPACE, "labels": {"wasmkube.dev/bench": "true"}}}])


def _token_kubeconfig(cluster: Cluster, account: str, path: Path) -> Path:
    token = kubectl(cluster, "create", "token", account, "-n", SYSTEM_NAMESPACE, "--duration=6h").strip()
    return kubeconfig_for_token(cluster.kubeconfig, token, path, account)


def wasmkube_identity(cluster: Cluster, workdir: Path) -> Identity:
    """The chart's ServiceAccount and cluster-wide RBAC, for release `wasmkube-bench`."""
    _ensure_system_namespace(cluster)
    manifest = subprocess.run(
        [str(binary("helm")), "template", RELEASE, str(REPO_ROOT / "charts" / "wasmkube"),
         "--namespace", SYSTEM_NAMESPACE, "--show-only", "templates/serviceaccount.yaml",
         "--show-only", "templates/rbac.yaml"],
        capture_output=True, text=True, check=True, timeout=120).stdout
    apply_manifest(cluster, manifest)
    return Identity(f"system:serviceaccount:{SYSTEM_NAMESPACE}:{RELEASE}",
                    _token_kubeconfig(cluster, RELEASE, workdir / "wasmkube-operator.kubeconfig"), manifest)


def cluster_admin_identity(cluster: Cluster, account: str, workdir: Path) -> Identity:
    """A ServiceAccount bound to cluster-admin (for the peer operator)."""
    _ensure_system_namespace(cluster)
    items = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, "namespace": SYSTEM_NAMESPACE}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": f"{SYSTEM_NAMESPACE}-{account}"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": SYSTEM_NAMESPACE}]},
    ]
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    apply_manifest(cluster, manifest)
    return Identity(f"system:serviceaccount:{SYSTEM_NAMESPACE}:{account}",
                    _token_kubeconfig(cluster, account, workdir / f"{account}.kubeconfig"), manifest)


def remove(cluster: Cluster, identity: Identity) -> None:
    delete_manifest(cluster, identity.manifest)


def remove_system_namespace(cluster: Cluster) -> None:
    kubectl(cluster, "delete", "namespace", SYSTEM_NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=120s",
            check=False)
