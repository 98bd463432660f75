"""The Argo CD example: health check fixtures, the argocd-cm snippet and the sync waves.

The health checks themselves run on Argo CD's own Lua VM, in `e2e/test_argocd.py` (built from
Argo CD's source, too slow a build for unit tests): on the fixture cases here, in the layout of
Argo CD's resource_customizations health_test.yaml files, and on objects the operator wrote.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from e2e.support.judges import APPLICATION_HEALTH, ARGOCD, WASMKUBE_HEALTH

REPO = ARGOCD.parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "argocd"

SCRIPTS = {"wasmapp": WASMKUBE_HEALTH, "wasmruntime": WASMKUBE_HEALTH, "application": APPLICATION_HEALTH}


@pytest.mark.parametrize("kind", ["wasmapp", "wasmruntime"])
def test_every_health_state_is_covered(kind: str) -> None:
    suite = yaml.safe_load((FIXTURES / kind / "health_test.yaml").read_text())
    assert {test["healthStatus"]["status"] for test in suite["tests"]} == {
        "Healthy",
        "Progressing",
        "Degraded",
    }


def code_without_header(path: Path) -> str:
    lines = path.read_text().splitlines()
    while lines and lines[0].startswith("--"):
        lines.pop(0)
    return "\n".join(lines)


def test_wasmapp_and_wasmruntime_checks_apply_the_same_rules() -> None:
    # Argo CD cannot share code between two kinds' scripts, so they are two copies: keep them equal.
    assert code_without_header(SCRIPTS["wasmapp"]) == code_without_header(SCRIPTS["wasmruntime"])


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_argocd_cm", ARGOCD / "generate_argocd_cm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_argocd_cm_snippet_is_generated_from_the_scripts() -> None:
    generator = load_generator()
    assert (ARGOCD / "argocd-cm.yaml").read_text() == generator.render(), (
        "examples/argocd/argocd-cm.yaml is out of date: run python3 examples/argocd/generate_argocd_cm.py"
    )


def test_argocd_cm_snippet_embeds_each_script_exactly() -> None:
    config_map = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    data = config_map["data"]

    assert data == {
        "resource.customizations.health.wasmkube.dev_WasmApp": SCRIPTS["wasmapp"].read_text(),
        "resource.customizations.health.wasmkube.dev_WasmRuntime": SCRIPTS["wasmruntime"].read_text(),
        "resource.customizations.health.argoproj.io_Application": SCRIPTS["application"].read_text(),
    }


def test_applications_sync_in_waves_crds_operator_examples() -> None:
    apps = {
        doc["metadata"]["name"]: doc
        for path in sorted((ARGOCD / "apps").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
    }
    wave = {name: int(app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) for name, app in apps.items()}
    assert wave == {"wasmkube-crds": -1, "wasmkube-operator": 0, "wasmkube-examples": 1}

    crds = apps["wasmkube-crds"]
    assert crds["spec"]["source"]["path"] == "crds"
    assert "ServerSideApply=true" in crds["spec"]["syncPolicy"]["syncOptions"]
    assert crds["spec"]["syncPolicy"]["automated"]["prune"] is False
    assert "finalizers" not in crds["metadata"], "deleting the Application must not delete the CRDs"

    operator = apps["wasmkube-operator"]["spec"]["source"]
    assert operator["path"] == "charts/wasmkube"
    assert operator["helm"]["valuesObject"]["crds"]["install"] is False
    for name, app in apps.items():
        assert (REPO / app["spec"]["source"]["path"]).is_dir(), f"{name} points at a missing directory"
