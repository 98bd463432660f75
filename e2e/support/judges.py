"""The verdicts of the tools users already run, computed by those tools' own code.

- kstatus (`e2e/tools/kstatus`): sigs.k8s.io/cli-utils `status.Compute`, which Flux's health
  checks, Helm 4's `--wait` and kpt use.
- Argo CD (`e2e/tools/argocd-health`): Argo CD v3.2.12's application-controller health call with
  its Lua VM and no open libraries, reading the scripts either from an argocd-cm ConfigMap on the
  live cluster (through Argo CD's SettingsManager) or straight from `examples/argocd/health/`.

Each tool reads objects as JSON on stdin and prints one JSON line per object. They are built
once (build-tool.sh caches them) and run per call: a call is a process start, milliseconds.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .binaries import tool
from .state import REPO_ROOT

ARGOCD = REPO_ROOT / "examples" / "argocd"
WASMKUBE_HEALTH = ARGOCD / "health" / "wasmkube.lua"
APPLICATION_HEALTH = ARGOCD / "health" / "application.lua"
ARGOCD_CM = ARGOCD / "argocd-cm.yaml"
# Which shipped script Argo CD runs for which kind (the keys of argocd-cm.yaml).
SHIPPED_SCRIPTS = {
    "wasmkube.dev/WasmApp": WASMKUBE_HEALTH,
    "wasmkube.dev/WasmRuntime": WASMKUBE_HEALTH,
    "argoproj.io/Application": APPLICATION_HEALTH,
}

Verdict = dict[str, str]


def _judge(binary: Path, args: Sequence[str], objects: Sequence[Mapping[str, Any]]) -> list[Verdict]:
    """Run one checker on `objects` (sent as a List) and return its verdicts in the same order."""
    payload = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}, default=str)
    result = subprocess.run([str(binary), *args], input=payload, capture_output=True, text=True, timeout=60,
                            check=False)  # fmt: skip
    assert result.returncode == 0, f"{binary.name} failed ({result.returncode}): {result.stderr}"
    verdicts = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(verdicts) == len(objects), f"{binary.name}: {len(objects)} objects in, {len(verdicts)} verdicts out"
    for verdict in verdicts:
        assert not verdict.get("error"), f"{binary.name} could not judge {verdict}"
    return verdicts


def kstatus(objects: Sequence[Mapping[str, Any]]) -> list[Verdict]:
    """kstatus' `{status, message}` per object: Current, InProgress, Failed, Terminating, ..."""
    return [{"status": v["status"], "message": v["message"]} for v in _judge(tool("kstatus"), [], objects)]


def argocd_health_from_cluster(objects: Sequence[Mapping[str, Any]], kubeconfig: Path,
                               namespace: str) -> list[Verdict]:
    """Argo CD's health per object, with the scripts of the argocd-cm in `namespace`."""
    args = [f"--kubeconfig={kubeconfig}", f"--namespace={namespace}"]
    return [{"status": v["status"], "message": v["message"]}
            for v in _judge(tool("argocd-health"), args, objects)]  # fmt: skip


def argocd_health(objects: Sequence[Mapping[str, Any]],
                  scripts: Mapping[str, Path] = SHIPPED_SCRIPTS) -> list[Verdict]:
    """Argo CD's health per object with script files (GROUP/KIND -> .lua), no cluster needed."""
    args = [f"--health={group_kind}={path}" for group_kind, path in scripts.items()]
    return [{"status": v["status"], "message": v["message"]}
            for v in _judge(tool("argocd-health"), args, objects)]  # fmt: skip


def argocd_script_result(script: str, tmp_dir: Path,
                         obj: Mapping[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    """Run an arbitrary health script on Argo CD's VM (for what the VM refuses); not asserted."""
    path = tmp_dir / "script.lua"
    path.write_text(script)
    target = obj or {"apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmApp", "metadata": {"name": "x"}}
    return subprocess.run([str(tool("argocd-health")), f"--health=wasmkube.dev/WasmApp={path}"],
                          input=json.dumps(target), capture_output=True, text=True, timeout=60, check=False)
