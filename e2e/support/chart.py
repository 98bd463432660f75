"""The Helm chart on the local cluster, and its operator run as the chart configures it.

KWOK nodes run no containers, so the operator Deployment the chart creates cannot really run
there. What the chart decides is still what runs: `chart_operator` starts `wasmkube run` as a
local process with the arguments and environment of the chart's rendered Deployment,
authenticated with a token of the chart's ServiceAccount, so it has exactly the chart's
permissions. `make demo` and the Helm tests both run the operator this way.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from .binaries import binary, tool
from .cluster import Cluster
from .kubeconfig import kubeconfig_for_token
from .operator import OperatorProcess
from .state import REPO_ROOT

CHART = REPO_ROOT / "charts" / "wasmkube"
# Listening addresses are the process's own (free loopback ports), not the pod's.
PROCESS_OWNED_FLAGS = ("--liveness-port", "--metrics-port", "--bind-address")


HELM_VERSIONS = ("helm3", "helm4")


def helm_binary(version: str) -> Path:
    """Helm 3 (the cluster's own, build-binaries.sh) or Helm 4 (build-tool.sh helm4)."""
    return binary("helm") if version == "helm3" else tool("helm4")


class Release:
    """One Helm release of charts/wasmkube, driven by Helm 3 or Helm 4."""

    def __init__(self, cluster: Cluster, name: str, namespace: str, helm_version: str = "helm3") -> None:
        self.cluster, self.name, self.namespace = cluster, name, namespace
        self.helm_version = helm_version
        self.service_account = f"system:serviceaccount:{namespace}:{name}"

    def helm_command(self, *args: str) -> list[str]:
        return [str(helm_binary(self.helm_version)), f"--kubeconfig={self.cluster.kubeconfig}",
                "--namespace", self.namespace, *args]  # fmt: skip

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self.helm_command(*args), capture_output=True, text=True, timeout=300, check=False)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def install_args(self, *values: str, wait: bool = True, timeout: str = "120s") -> list[str]:
        waiting = ["--wait", "--timeout", timeout] if wait else []
        return ["upgrade", "--install", self.name, str(CHART), "--create-namespace", *waiting, *values]

    def install(self, *values: str, wait: bool = True) -> None:
        self.helm(*self.install_args(*values, wait=wait))

    def can(self, verb: str, resource: str, namespace: str | None = None, subresource: str = "") -> bool:
        extra = ["-n", namespace] if namespace else []
        if subresource:
            extra.append(f"--subresource={subresource}")
        result = self.cluster.kubectl("auth", "can-i", verb, resource, f"--as={self.service_account}", *extra,
                                      check=False)  # fmt: skip
        return result.stdout.strip() == "yes"

    def operator_container(self) -> dict[str, Any]:
        """The operator container of the Deployment this release installed."""
        manifest = self.helm("get", "manifest", self.name).stdout
        for doc in yaml.safe_load_all(manifest):
            # The operator's, not the activator's.
            if doc and doc.get("kind") == "Deployment" and doc["metadata"]["labels"].get(
                "app.kubernetes.io/component"
            ) == "operator":
                return dict(doc["spec"]["template"]["spec"]["containers"][0])
        raise AssertionError(f"release {self.name} has no Deployment")

    def operator_process(self, log_path: Path, service_account: str | None = None) -> OperatorProcess:
        """`wasmkube run` with the chart's arguments, as the chart's ServiceAccount (not started)."""
        container = self.operator_container()
        assert container["command"] == ["wasmkube", "run"], container["command"]
        env = {item["name"]: self.namespace for item in container.get("env") or []
               if item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace"}
        kubeconfig = service_account_kubeconfig(self.cluster, service_account or self.name, self.namespace,
                                                log_path.parent / f"{self.name}-kubeconfig")
        return OperatorProcess(kubeconfig, log_path, extra_args=chart_arguments(container["args"]), env=env)


def chart_arguments(args: list[str]) -> list[str]:
    """The chart's container arguments without the flags the local process sets itself."""
    kept: list[str] = []
    skip_value = False
    for arg in args:
        if skip_value:
            skip_value = False
        elif arg in PROCESS_OWNED_FLAGS:
            skip_value = True
        elif not arg.startswith(tuple(f"{flag}=" for flag in PROCESS_OWNED_FLAGS)):
            kept.append(arg)
    return kept


def service_account_kubeconfig(cluster: Cluster, service_account: str, namespace: str, path: Path) -> Path:
    """A kubeconfig at `path` holding a 24 h token of a ServiceAccount (the operator's identity)."""
    token = cluster.kubectl("create", "token", service_account, "-n", namespace, "--duration=24h").stdout.strip()
    return kubeconfig_for_token(cluster.kubeconfig, token, path, service_account)
