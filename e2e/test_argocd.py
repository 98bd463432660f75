"""Argo CD on objects the operator really wrote: its health check, and a sync that stays in sync.

Argo CD itself does not run here. What it does with a WasmApp is small and well defined, and both
halves are done for real: the Lua health check from examples/argocd/ runs (with Argo CD's Lua
libraries only) on status the running operator produced, and the WasmApp is applied the way Argo
CD applies it (server-side apply under Argo CD's field manager, or client-side apply) and then
diffed the way Argo CD diffs it, after the operator has reconciled it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import Cluster
from support.apps import get, wait_condition, wait_ready, wasmapp
from support.argocd import wasmkube_health
from support.operator import OperatorProcess, free_port
from support.operator_fixtures import ExampleImages

REPO = Path(__file__).resolve().parents[1]
ARGOCD_MANAGER = "argocd-controller"  # the field manager Argo CD's server-side sync uses
# Longer than the operator's settle delay for child events, so a late status write would show.
SETTLE_SECONDS = 3.0


def test_health_check_on_live_wasmapps_and_runtimes(
    cluster: Cluster, operator: OperatorProcess, namespace: str, example_images: ExampleImages
) -> None:
    module = example_images.module.reference
    unreachable = f"127.0.0.1:{free_port()}/nowhere/app:v1"  # nothing listens: a registry outage
    cluster.apply([
        wasmapp("serving", module, replicas=2),
        wasmapp("misconfigured", module, runtime="no-such-runtime"),
        wasmapp("waiting", unreachable),
    ], namespace)  # fmt: skip

    serving = wait_ready(cluster, "serving", namespace)
    misconfigured = wait_condition(cluster, "wasmapp", "misconfigured", namespace, "Stalled", reason="RuntimeNotFound")
    waiting = wait_condition(cluster, "wasmapp", "waiting", namespace, "Reconciling")
    runtime = get(cluster, "wasmruntime", "wasmtime")
    assert runtime is not None

    verdicts = {name: wasmkube_health(obj) for name, obj in
                [("serving", serving), ("misconfigured", misconfigured), ("waiting", waiting),
                 ("wasmtime", runtime)]}  # fmt: skip
    print(f"\nArgo CD health on live objects: {json.dumps(verdicts, indent=1)}")
    assert {name: v["status"] for name, v in verdicts.items()} == {
        "serving": "Healthy", "misconfigured": "Degraded", "waiting": "Progressing", "wasmtime": "Healthy",
    }  # fmt: skip
    assert "no-such-runtime" in verdicts["misconfigured"]["message"]


def gitops_manifest(name: str, namespace: str, image: str) -> dict[str, Any]:
    """examples/http-app.yaml as a user's git repository would hold it, in the test's namespace."""
    manifest = yaml.safe_load((REPO / "examples" / "http-app.yaml").read_text())
    manifest["metadata"] = {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "shop"}}
    manifest["spec"]["image"] = image
    return dict(manifest)


@pytest.mark.parametrize("sync", ["server-side", "client-side"])
def test_gitops_sees_no_change_after_the_operator_reconciles(
    cluster: Cluster, operator: OperatorProcess, namespace: str, example_images: ExampleImages, tmp_path: Path,
    sync: str,
) -> None:
    path = tmp_path / "wasmapp.yaml"
    path.write_text(yaml.safe_dump(gitops_manifest("synced", namespace, example_images.component.reference)))
    how = (["--server-side", f"--field-manager={ARGOCD_MANAGER}"] if sync == "server-side"
           else [f"--field-manager={ARGOCD_MANAGER}"])  # fmt: skip

    cluster.kubectl("apply", *how, "-f", str(path))
    wait_ready(cluster, "synced", namespace)
    time.sleep(SETTLE_SECONDS)

    # `kubectl diff` exits 0 when applying the manifest again would change nothing, 1 when it would.
    diff = cluster.kubectl("diff", *how, "-f", str(path), check=False)
    assert diff.returncode == 0, f"the WasmApp looks changed after reconciling:\n{diff.stdout}{diff.stderr}"

    live = get(cluster, "wasmapp", "synced", namespace)
    assert live is not None
    meta = live["metadata"]
    assert "finalizers" not in meta, "the operator must not add finalizers to objects it does not own"
    added = set(meta.get("annotations") or {}) - {"kubectl.kubernetes.io/last-applied-configuration"}
    assert not added, f"annotations the operator added: {added}"
    assert meta["labels"] == {"app.kubernetes.io/part-of": "shop"}
    writers = {(m["manager"], m.get("subresource", "")) for m in meta["managedFields"]}
    # The operator's only field manager entry is on the status subresource.
    assert {w for w in writers if w[0] == "wasmkube"} == {("wasmkube", "status")}, writers
    assert {w for w in writers if w[0] != "wasmkube"} == {(ARGOCD_MANAGER, "")}, writers
