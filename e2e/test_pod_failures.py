"""Issue #12.4: when a WasmApp's pods fail on a real node, its conditions say why, in the runtime's words.

Needs the real node (`real_node` and friends from e2e/support/realnode_fixtures.py, shared with
e2e/test_real_node.py) and the operator. Each test makes one real failure happen and waits for the
WasmApp's conditions to carry the kubelet's reason and message (and, for a crash, the module's own
last log line through `terminationMessagePolicy: FallbackToLogsOnError`), rather than "0 of 1
replicas available". The operator looks at pods only once a rollout has been stuck for 15 s, so
these tests wait a little longer than a healthy app would.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import requests

from e2e.node import realnode
from e2e.node import workloads as wl
from e2e.registry import components, wasm
from e2e.registry.artifacts import CREATED, WASM_CONFIG, WASM_LAYER, push_image
from e2e.registry.pusher import Blob, Pusher, canonical_json
from e2e.support import REGISTRY, Cluster
from e2e.support.apps import condition, wait_condition, wasmapp

# A module that dies at start the way a misconfigured app does: one line on stderr, exit code 3.
CRASHER_C = """\
#include <stdio.h>
int main(void) {
    fprintf(stderr, "wasmkube-e2e: missing setting GREETING_TARGET\\n");
    return 3;
}
"""
CRASH_LINE = "wasmkube-e2e: missing setting GREETING_TARGET"


def _compile(source: str, name: str) -> bytes:
    clang = shutil.which("clang")
    if clang is None:
        pytest.fail("clang not found: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32", pytrace=False)
    version = subprocess.run([clang, "--version"], capture_output=True, text=True, check=True).stdout
    key = hashlib.sha256("\0".join((source, version, *wasm.CLANG_FLAGS)).encode()).hexdigest()[:16]
    cached = wasm.cache_dir() / f"{name}-wasip1-{key}.wasm"
    if not cached.exists():
        with tempfile.TemporaryDirectory(prefix="wasmkube-cc-") as tmp:
            src, out = Path(tmp) / f"{name}.c", Path(tmp) / f"{name}.wasm"
            src.write_text(source)
            subprocess.run([clang, *wasm.CLANG_FLAGS, "-o", str(out), str(src)], check=True, capture_output=True)
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(".tmp")
            partial.write_bytes(out.read_bytes())
            partial.replace(cached)
    return cached.read_bytes()


CRASH_REASONS = {"CrashLoopBackOff", "ContainerCrashed"}


def _push_module(pusher: Pusher, repository: str, module: bytes) -> tuple[str, Blob]:
    layer = Blob(WASM_LAYER, module, {"org.opencontainers.image.title": "app.wasm"})
    config = {"created": CREATED, "architecture": "wasm", "os": "wasip1", "layerDigests": [layer.digest]}
    push_image(pusher, repository, "v1", Blob(WASM_CONFIG, canonical_json(config)), [layer])
    return f"{REGISTRY}/{repository}:v1", layer


def _on_real_node(**spec: object) -> dict[str, object]:
    return {"runtime": "wasmtime", "nodeSelector": dict(realnode.REAL_NODE_SELECTOR),
            "tolerations": [dict(realnode.REAL_NODE_TOLERATION)], **spec}  # fmt: skip


def test_crash_at_start_stalls_the_app_with_the_modules_last_words(
    cluster: Cluster, namespace: str, real_node: str, wasmtime_runtime_class: str, operator: object, pusher: Pusher
) -> None:
    image, _ = _push_module(pusher, "realnode/crasher", _compile(CRASHER_C, "crasher"))
    cluster.apply(wasmapp("crasher", image, **_on_real_node()), namespace)
    # Waiting for the crash's own reason: a real node that has just registered may still be
    # settling (its first Ready flips) when the app arrives, and the operator rightly says
    # NoEligibleNodes for that moment before the pods run and crash.
    app = wait_condition(cluster, "wasmapp", "crasher", namespace, "Stalled", reason=CRASH_REASONS, timeout=180)
    stalled = condition(app, "Stalled")
    assert stalled is not None
    print(f"\nStalled: {stalled['reason']}: {stalled['message']}")
    assert CRASH_LINE in stalled["message"], stalled["message"]
    assert "exit code 3" in stalled["message"], stalled["message"]
    assert "replicas available" not in stalled["message"]
    ready = condition(app, "Ready")
    assert ready is not None and ready["status"] == "False" and ready["reason"] == stalled["reason"]


def test_image_pull_failure_stalls_the_app_with_the_kubelets_message(
    cluster: Cluster, namespace: str, real_node: str, wasmtime_runtime_class: str, operator: object, pusher: Pusher
) -> None:
    """The operator pins the digest while the registry still has everything; then the layer blob
    is deleted, so the kubelet's pull of that digest fails (ErrImagePull, then ImagePullBackOff)."""
    module = components.with_custom_section(wl.sleeper_module(), uuid.uuid4().hex)
    repository = f"realnode/pull-fails-{uuid.uuid4().hex[:6]}"
    image, layer = _push_module(pusher, repository, module)
    cluster.apply(wasmapp("pull-fails", image, replicas=0, **_on_real_node()), namespace)
    app = wait_condition(cluster, "wasmapp", "pull-fails", namespace, "Ready", timeout=90)
    assert app["status"]["artifact"]["digest"].startswith("sha256:")

    deleted = requests.delete(f"http://{REGISTRY}/v2/{repository}/blobs/{layer.digest}", timeout=30)
    assert deleted.status_code == 202, f"registry refused the blob delete: {deleted.status_code} {deleted.text}"
    cluster.kubectl("patch", "wasmapp", "pull-fails", "-n", namespace, "--type=merge", "-p", '{"spec":{"replicas":1}}')

    app = wait_condition(cluster, "wasmapp", "pull-fails", namespace, "Stalled", reason="ImagePullFailed", timeout=180)
    stalled = condition(app, "Stalled")
    assert stalled is not None
    print(f"\nStalled: {stalled['reason']}: {stalled['message']}")
    assert "ErrImagePull" in stalled["message"] or "ImagePullBackOff" in stalled["message"], stalled["message"]
    assert layer.digest.removeprefix("sha256:")[:12] in stalled["message"] or "not found" in stalled["message"]
