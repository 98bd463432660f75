"""Argo CD on objects the operator really wrote: its health check, and a sync that stays in sync.

Argo CD's server does not run here, but both things it does with a WasmApp are done by Argo CD's
own code or exactly as Argo CD does them. Health: e2e/tools/argocd-health is Argo CD v3.2.12's
health call (gitops-engine's GetResourceHealth with Argo CD's Lua VM, no open libraries), reading
the scripts from examples/argocd/argocd-cm.yaml applied to the live cluster, through Argo CD's
SettingsManager; it judges the objects in every state the operator reports (support.live_states)
and the fixture cases of operator/tests/fixtures/argocd/. Sync: the WasmApp is applied the way
Argo CD applies it (server-side apply under Argo CD's field manager, or client-side apply) and
then diffed the way Argo CD diffs it, after the operator has reconciled it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.support import Cluster
from e2e.support.apps import get, wait_ready
from e2e.support.judges import ARGOCD_CM, argocd_health, argocd_health_from_cluster, argocd_script_result
from e2e.support.live_states import LiveState
from e2e.support.operator import OperatorProcess
from e2e.support.operator_fixtures import ExampleImages

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "operator" / "tests" / "fixtures" / "argocd"
ARGOCD_MANAGER = "argocd-controller"  # the field manager Argo CD's server-side sync uses
# Longer than the operator's settle delay for child events, so a late status write would show.
SETTLE_SECONDS = 3.0

EXPECTED_HEALTH = {
    "serving": "Healthy",
    "rolling": "Progressing",
    "no-runtime": "Degraded",
    "not-wasm": "Degraded",
    "no-secret": "Degraded",
    "taken": "Degraded",
    "no-nodes": "Degraded",
    "waiting": "Progressing",
    "runtime-ready": "Healthy",
    "runtime-no-nodes": "Degraded",
    "leaving": "Progressing",
}


@pytest.fixture(scope="module")
def argocd_namespace(cluster: Cluster) -> Iterator[str]:
    """A namespace holding examples/argocd/argocd-cm.yaml as shipped (only its namespace moved)."""
    namespace = f"e2e-argocd-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    config_map = yaml.safe_load(ARGOCD_CM.read_text())
    config_map["metadata"]["namespace"] = namespace
    cluster.apply(config_map, namespace)
    yield namespace
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)


def test_argo_cds_health_on_every_live_state(
    cluster: Cluster, live_states: dict[str, LiveState], argocd_namespace: str
) -> None:
    names = list(live_states)
    objects = [live_states[name].obj for name in names]
    verdicts = dict(zip(names, argocd_health_from_cluster(objects, cluster.kubeconfig, argocd_namespace),
                        strict=True))  # fmt: skip
    print(f"\nArgo CD health on live objects: {json.dumps(verdicts, indent=1)}")

    assert {name: v["status"] for name, v in verdicts.items()} == EXPECTED_HEALTH
    for name, state in live_states.items():
        if state.condition == "Stalled":
            stalled = next(c for c in state.obj["status"]["conditions"] if c["type"] == "Stalled")
            assert verdicts[name]["message"] == f"{stalled['reason']}: {stalled['message']}", name
    assert "no-such-runtime" in verdicts["no-runtime"]["message"]
    # Argo CD itself, before any script: an object being deleted is "Pending deletion".
    assert verdicts["leaving"]["message"] == "Pending deletion"
    # The script files give the same verdicts as the argocd-cm snippet made from them.
    assert argocd_health(objects) == list(verdicts.values())


def fixture_cases() -> list[Any]:
    cases = []
    for kind in ("wasmapp", "wasmruntime", "application"):
        suite = yaml.safe_load((FIXTURES / kind / "health_test.yaml").read_text())
        for test in suite["tests"]:
            path = FIXTURES / kind / test["inputPath"]
            cases.append(pytest.param(path, test["healthStatus"], id=f"{kind}/{path.stem}"))
    return cases


@pytest.mark.parametrize(("input_path", "expected"), fixture_cases())
def test_argo_cds_health_on_the_fixture_cases(input_path: Path, expected: dict[str, str]) -> None:
    # The cases of operator/tests/fixtures/argocd (Argo CD's health_test.yaml layout), through
    # Argo CD's JSON path: YAML timestamps become strings, as the API server sends them.
    obj = json.loads(json.dumps(yaml.safe_load(input_path.read_text()), default=str))
    assert argocd_health([obj]) == [{"status": expected["status"], "message": expected.get("message", "")}]


@pytest.mark.parametrize(
    ("script", "complaint"),
    [
        ('return {status = string.upper("healthy")}', "non-table object(nil) with key 'upper'"),
        ('return {status = ("Healthy"):lower()}', "non-table object(string) with key 'lower'"),
        ("return {status = math.floor(1)}", "non-table object(nil) with key 'floor'"),
        ('return {status = os.date("%Y")}', "non-table object(nil) with key 'date'"),
    ],
    ids=["string-library", "string-methods", "math-library", "os-library"],
)
def test_argo_cds_vm_opens_no_string_math_or_os_library(script: str, complaint: str, tmp_path: Path) -> None:
    # Why examples/argocd/health/*.lua use only the base functions, `table` and `..`.
    result = argocd_script_result(script, tmp_path)
    assert result.returncode == 0, result.stderr
    error = json.loads(result.stdout)["error"]
    assert complaint in error, error


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
