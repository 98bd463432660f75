"""The offline `wasmkube` commands: crds, render, version."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml

from wasmkube import __version__
from wasmkube.api.artifact import ArtifactKind
from wasmkube.api.crdgen import ALL_CRDS, crd_manifest, render_all
from wasmkube.cli import main, render_documents
from wasmkube.errors import SpecError

DATA = Path(__file__).resolve().parent / "data"
RENDER_APP = DATA / "render-app.yaml"

RUNTIME = """\
apiVersion: wasmkube.dev/v1alpha1
kind: WasmRuntime
metadata:
  name: spin
spec:
  handler: spin
  default: true
"""

APP = """\
apiVersion: wasmkube.dev/v1alpha1
kind: WasmApp
metadata:
  name: hello
spec:
  image: registry.example.com/demo/hello:1.0
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def rendered(out: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(out) if d is not None]


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in docs}


# --- crds -----------------------------------------------------------------------------------------


def test_crds_prints_two_crds(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "crds")
    docs = rendered(out)
    assert code == 0
    assert [d["kind"] for d in docs] == ["CustomResourceDefinition", "CustomResourceDefinition"]
    assert [d["metadata"]["name"] for d in docs] == ["wasmapps.wasmkube.dev", "wasmruntimes.wasmkube.dev"]


def test_crds_output_matches_the_generator(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "crds")
    assert rendered(out) == [crd_manifest(spec) for spec in ALL_CRDS]


def test_crds_output_dir_writes_one_file_per_crd(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "out"
    code, out, _ = run(capsys, "crds", "--output-dir", str(target))
    assert code == 0
    assert out == ""
    assert {p.name: p.read_text() for p in target.iterdir()} == render_all()


# --- render ---------------------------------------------------------------------------------------


def test_render_prints_runtime_class_and_app_children(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "render", "-f", str(RENDER_APP))
    assert (code, err) == (0, "")
    assert [d["kind"] for d in rendered(out)] == ["RuntimeClass", "Deployment", "Service", "HorizontalPodAutoscaler"]


def test_render_output_is_what_the_builders_make(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "render", "-f", str(RENDER_APP))
    docs = by_kind(rendered(out))
    runtime_class = docs["RuntimeClass"]
    assert runtime_class["handler"] == "spin"
    assert runtime_class["scheduling"] == {"nodeSelector": {"wasmkube.dev/spin": "true"}}
    deployment = docs["Deployment"]
    assert deployment["metadata"]["namespace"] == "demo"
    assert "replicas" not in deployment["spec"]  # autoscaled
    pod = deployment["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "spin"
    assert pod["containers"][0]["image"] == "registry.example.com/demo/hello:1.0"
    assert pod["containers"][0]["env"][0] == {"name": "SPIN_HTTP_LISTEN_ADDR", "value": "0.0.0.0:80"}
    assert docs["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    assert docs["HorizontalPodAutoscaler"]["spec"]["maxReplicas"] == 4


def test_render_does_not_copy_gitops_labels(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "render", "-f", str(RENDER_APP))
    for doc in rendered(out):
        assert "argocd.argoproj.io/instance" not in doc["metadata"].get("labels", {}), doc["kind"]


def test_render_drops_owner_references_without_uids(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "render", "-f", str(RENDER_APP))
    for doc in rendered(out):
        assert "ownerReferences" not in doc["metadata"], doc["kind"]


def test_render_keeps_owner_references_of_objects_with_uids() -> None:
    docs = yaml.safe_load_all(RUNTIME + "---\n" + APP.replace("name: hello", "name: hello\n  uid: abc-123"))
    out = render_documents([d for d in docs if d], ArtifactKind.MODULE)
    deployment = by_kind(out)["Deployment"]
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == "abc-123"


def test_render_puts_apps_without_namespace_in_default(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _, out, _ = run(capsys, "render", "-f", str(write(tmp_path, "all.yaml", RUNTIME + "---\n" + APP)))
    assert by_kind(rendered(out))["Deployment"]["metadata"]["namespace"] == "default"


def test_render_reads_several_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    runtime = write(tmp_path, "runtime.yaml", RUNTIME)
    app = write(tmp_path, "app.yaml", APP)
    code, out, _ = run(capsys, "render", "-f", str(runtime), "-f", str(app))
    assert code == 0
    assert [d["kind"] for d in rendered(out)] == ["RuntimeClass", "Deployment"]


def test_render_reads_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(RUNTIME + "---\n" + APP))
    code, out, _ = run(capsys, "render", "-f", "-")
    assert code == 0
    assert [d["kind"] for d in rendered(out)] == ["RuntimeClass", "Deployment"]


def test_render_assumes_the_given_artifact_kind(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, "all.yaml", RUNTIME + "---\n" + APP)
    code, _, err = run(capsys, "render", "-f", str(path), "--kind", "SpinApp")
    assert code == 1  # the runtime runs Module and Component only
    assert "no WasmRuntime is the default for SpinApp" in err


def test_render_with_only_a_runtime_prints_its_runtime_class(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "render", "-f", str(write(tmp_path, "rt.yaml", RUNTIME)))
    assert code == 0
    assert [d["kind"] for d in rendered(out)] == ["RuntimeClass"]


# --- render errors --------------------------------------------------------------------------------


def test_render_unknown_runtime_fails_with_a_clear_message(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    app = APP.replace("spec:\n", "spec:\n  runtime: nope\n")
    code, out, err = run(capsys, "render", "-f", str(write(tmp_path, "all.yaml", RUNTIME + "---\n" + app)))
    assert code == 1
    assert out == ""
    assert err.strip() == "wasmkube render: WasmRuntime 'nope' does not exist"


def test_render_refuses_container_images(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, "all.yaml", RUNTIME + "---\n" + APP)
    code, _, err = run(capsys, "render", "-f", str(path), "--kind", "Container")
    assert code == 1
    assert "not a Wasm artifact" in err


def test_render_without_any_runtime_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "render", "-f", str(write(tmp_path, "app.yaml", APP)))
    assert code == 1
    assert err.startswith("wasmkube render: no WasmRuntime is the default for Module")


def test_render_invalid_app_fails_with_the_validation_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    app = APP.replace("spec:\n", "spec:\n  replicas: 5000\n")
    code, out, err = run(capsys, "render", "-f", str(write(tmp_path, "all.yaml", RUNTIME + "---\n" + app)))
    assert code == 1
    assert out == ""
    assert err.startswith("wasmkube render:")
    assert "replicas" in err


def test_render_scheduling_conflict_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    runtime = RUNTIME + "  nodeSelector:\n    wasm: spin\n"
    app = APP + "  nodeSelector:\n    wasm: other\n"
    code, _, err = run(capsys, "render", "-f", str(write(tmp_path, "all.yaml", runtime + "---\n" + app)))
    assert code == 1
    assert "contradicts the runtime's node selection" in err


def test_render_missing_file_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "render", "-f", str(tmp_path / "absent.yaml"))
    assert code == 1
    assert "absent.yaml" in err


def test_render_broken_yaml_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "render", "-f", str(write(tmp_path, "bad.yaml", "kind: [unclosed\n")))
    assert code == 1
    assert err.startswith("wasmkube render:")


def test_render_documents_raises_spec_errors() -> None:
    docs = list(yaml.safe_load_all(APP))
    with pytest.raises(SpecError) as caught:
        render_documents(docs, ArtifactKind.MODULE)
    assert caught.value.reason == "NoDefaultRuntime"


def test_render_needs_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["render"])
    assert caught.value.code == 2


# --- version and usage ----------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "version")
    assert code == 0
    assert out == f"wasmkube {__version__}\n"


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2


def test_unknown_command_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["frobnicate"])
    assert caught.value.code == 2


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/apis/apps/v1/namespaces/ns/deployments/x", "deployments"),
        ("/apis/wasmkube.dev/v1alpha1/namespaces/n/wasmapps/a/status", "wasmapps/status"),
        ("/api/v1/namespaces/n/events", "events"),
        ("/apis/node.k8s.io/v1/runtimeclasses/x", "runtimeclasses"),
        ("/api/v1/nodes?watch=true", "nodes"),
    ],
)
def test_api_paths_are_labelled_by_resource(path: str, resource: str) -> None:
    from wasmkube.clients.kube import resource_name

    assert resource_name(path) == resource
