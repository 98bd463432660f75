"""A handle on the local cluster for tests: its kubeconfig, kubectl, and reachability checks."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from . import state
from .binaries import binary

REGISTRY = "127.0.0.1:5001"
KUBECTL_TIMEOUT = 120.0


def default_kubeconfig() -> Path:
    """The kubeconfig `localcluster up` writes (next to WASMKUBE_STATE when that is set).

    Deliberately not $KUBECONFIG: a developer's shell may point that at a real cluster, and the
    tests create and delete namespaces.
    """
    return state.kubeconfig()


class KubectlError(subprocess.CalledProcessError):
    """A failed kubectl call whose message includes kubectl's own stderr."""

    def __str__(self) -> str:
        return f"kubectl {' '.join(self.cmd[2:])} failed (exit {self.returncode}): {self.stderr.strip()}"


@dataclasses.dataclass(frozen=True)
class Cluster:
    """What tests get from the `cluster` fixture."""

    kubeconfig: Path
    kubectl_path: Path

    @classmethod
    def local(cls) -> Cluster:
        return cls(kubeconfig=default_kubeconfig(), kubectl_path=binary("kubectl"))

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = KUBECTL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run our pinned kubectl against this cluster; raise KubectlError if check and it fails."""
        cmd = [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                                check=False)
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, cmd, result.stdout, result.stderr)
        return result

    def get_json(self, *args: str) -> Any:
        """`kubectl get ... -o json`, decoded."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def apply(self, manifest: dict[str, Any] | list[dict[str, Any]], namespace: str | None = None) -> None:
        """Apply one object or a list of objects given as Python dicts (sent as JSON)."""
        items = manifest if isinstance(manifest, list) else [manifest]
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        ns_args = ["-n", namespace] if namespace else []
        self.kubectl("apply", *ns_args, "-f", "-", input=body)

    def unreachable_reason(self) -> str | None:
        """None when the apiserver answers /readyz, otherwise why not (for skip/fail messages)."""
        if not self.kubeconfig.exists():
            return f"{self.kubeconfig} does not exist"
        result = self.kubectl("get", "--raw", "/readyz", "--request-timeout=5s", check=False, timeout=15)
        if result.returncode != 0:
            return f"apiserver not ready: {result.stderr.strip() or result.stdout.strip()}"
        return None


def registry_unreachable_reason(registry: str = REGISTRY) -> str | None:
    """None when the local OCI registry answers GET /v2/ with 200."""
    try:
        with urllib.request.urlopen(f"http://{registry}/v2/", timeout=5) as response:
            return None if response.status == 200 else f"/v2/ answered {response.status}"
    except (urllib.error.URLError, OSError) as err:
        return f"registry {registry} unreachable: {err}"
