"""Pods, images and the RuntimeClass for tests that run real workloads on the real node.

Reusable by any test that needs `real-node-1`: the plain-pod test in e2e/test_real_node.py and
WasmApp variants that go through the operator (use `REAL_NODE_TOLERATION` and
`REAL_NODE_SELECTOR` on the app, and `push_sleeper_module` for a module that keeps running).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.registry import artifacts, wasm
from e2e.registry.artifacts import CREATED, OCI_CONFIG, WASM_CONFIG, WASM_LAYER, push_image
from e2e.registry.pusher import Blob, Pusher, canonical_json
from e2e.support.waiting import wait_for

from .layout import NODE_NAME, REAL_NODE_SELECTOR, REAL_NODE_TOLERATION, RUNTIME_HANDLER

RUNTIME_CLASS = "wasmtime"  # the name the operator's example WasmRuntime gives its RuntimeClass
SLEEPER_GREETING = "hello from a wasmkube test module"
CREATED_BY = "wasmkube-e2e-realnode"  # label on a RuntimeClass these helpers created

# A WASI preview 1 command that shows what the shim passed in (argv, env, the container's files
# through the `/` preopen) and then stays up, so its pod is Running rather than Completed.
SLEEPER_C = """\
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    puts("hello from a wasmkube test module");
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\\n", i, argv[i]);
    const char *greeting = getenv("WASMKUBE_GREETING");
    printf("env WASMKUBE_GREETING=%s\\n", greeting ? greeting : "(unset)");
    char host[256] = "(unreadable)\\n";
    FILE *f = fopen("/etc/hostname", "r");
    if (f) { if (!fgets(host, sizeof host, f)) host[0] = 0; fclose(f); }
    printf("hostname=%s", host);
    fflush(stdout);
    for (;;) sleep(3600);
}
"""


@dataclass(frozen=True)
class PushedModule:
    """A module pushed as a CNCF Wasm artifact; `image` pins it by digest."""

    image: str
    digest: str


def sleeper_module() -> bytes:
    """SLEEPER_C compiled by clang for wasm32-wasi, cached like e2e/registry/wasm.py's module."""
    clang = shutil.which("clang")
    if clang is None:
        raise RuntimeError("clang not found: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32")
    version = subprocess.run([clang, "--version"], capture_output=True, text=True, check=True).stdout
    key = hashlib.sha256("\0".join((SLEEPER_C, version, *wasm.CLANG_FLAGS)).encode()).hexdigest()[:16]
    cached = wasm.cache_dir() / f"sleeper-wasip1-{key}.wasm"
    if not cached.exists():
        with tempfile.TemporaryDirectory(prefix="wasmkube-cc-") as tmp:
            source, output = Path(tmp) / "sleeper.c", Path(tmp) / "sleeper.wasm"
            source.write_text(SLEEPER_C)
            subprocess.run([clang, *wasm.CLANG_FLAGS, "-o", str(output), str(source)], check=True,
                           capture_output=True)
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(".tmp")  # same directory: the rename below is atomic
            partial.write_bytes(output.read_bytes())
            partial.replace(cached)
    return cached.read_bytes()


def push_sleeper_module(pusher: Pusher, repository: str = "realnode/sleeper", tag: str = "v1") -> PushedModule:
    """Push the sleeper as a CNCF Wasm artifact (wasip1 config, one application/wasm layer)."""
    layer = Blob(WASM_LAYER, sleeper_module(), {"org.opencontainers.image.title": "sleeper.wasm"})
    config = {"created": CREATED, "architecture": "wasm", "os": "wasip1", "layerDigests": [layer.digest]}
    pushed = push_image(pusher, repository, tag, Blob(WASM_CONFIG, canonical_json(config)), [layer])
    return PushedModule(image=f"{pusher.host}/{repository}@{pushed.digest}", digest=pushed.digest)


def push_wasm_layers_module(pusher: Pusher, repository: str = "realnode/wasm-layers", tag: str = "v1") -> PushedModule:
    """The hello module as a runwasi "Wasm layers" image that containerd can actually run.

    Like runwasi's oci-tar-builder: an OCI image config with architecture `wasm`, the module as
    an `application/wasm` layer, and an *empty* `rootfs.diff_ids`. containerd unpacks only tar
    layers and derives the container's parent snapshot from diff_ids, so listing the Wasm layer
    there fails container creation with "parent snapshot sha256:... does not exist".
    """
    layer = Blob(WASM_LAYER, wasm.wasip1_module())
    config = {"created": CREATED, "architecture": "wasm", "os": "wasip1", "config": {"Entrypoint": ["hello.wasm"]},
              "rootfs": {"type": "layers", "diff_ids": []}}
    pushed = push_image(pusher, repository, tag, Blob(OCI_CONFIG, canonical_json(config)), [layer])
    return PushedModule(image=f"{pusher.host}/{repository}@{pushed.digest}", digest=pushed.digest)


def push_cncf_module(pusher: Pusher, repository: str = "realnode/cncf-module", tag: str = "v1") -> PushedModule:
    """The hello module as a CNCF Wasm artifact (e2e/registry/artifacts.py's builder)."""
    pushed = artifacts.cncf_module(pusher, repository, tag)
    return PushedModule(image=f"{pusher.host}/{repository}@{pushed.digest}", digest=pushed.digest)


def on_real_node(pod_spec: dict[str, Any]) -> dict[str, Any]:
    """Pin a pod spec to real-node-1: its hostname selector plus the toleration for its taint."""
    return {**pod_spec, "nodeSelector": dict(REAL_NODE_SELECTOR), "tolerations": [dict(REAL_NODE_TOLERATION)]}


def wasm_pod(name: str, image: str, *, command: list[str] | None = None, args: list[str] | None = None,
             env: dict[str, str] | None = None, restart_policy: str = "Always") -> dict[str, Any]:
    """A pod running `image` on the wasmtime RuntimeClass on real-node-1.

    `command` is arg0 for the shim: with a Wasm-layer image it only has to be present (CRI refuses
    a container without a command when the image config has none, as CNCF artifacts do), so
    `["/"]` is the convention; `name.wasm#func` would pick another export than `_start`.
    """
    container: dict[str, Any] = {"name": "app", "image": image, "imagePullPolicy": "IfNotPresent"}
    if command is not None:
        container["command"] = command
    if args:
        container["args"] = args
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    spec = on_real_node({"runtimeClassName": RUNTIME_CLASS, "restartPolicy": restart_policy,
                         "terminationGracePeriodSeconds": 1, "containers": [container]})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def container_pod(name: str, image: str, script: str) -> dict[str, Any]:
    """An ordinary Linux container (runc) on real-node-1, running `sh -c script`."""
    container = {"name": "app", "image": image, "imagePullPolicy": "IfNotPresent",
                 "command": ["sh", "-c", script]}
    spec = on_real_node({"terminationGracePeriodSeconds": 1, "containers": [container]})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def ensure_runtime_class(kubectl: Any) -> bool:
    """Create RuntimeClass `wasmtime` (handler `wasmtime`) unless one exists; True if created.

    The operator's example WasmRuntime owns a RuntimeClass of that name; when it exists we use it
    (its node selector `wasmkube.dev/shim-wasmtime=ready` matches real-node-1 too). One we create
    must be deleted again (`delete_runtime_class`), or that WasmRuntime would find the name taken.
    """
    found = kubectl("get", "runtimeclass", RUNTIME_CLASS, "-o", "json", "--ignore-not-found", check=False)
    if found.returncode == 0 and found.stdout.strip():
        handler = json.loads(found.stdout).get("handler")
        if handler != RUNTIME_HANDLER:
            raise AssertionError(
                f"RuntimeClass {RUNTIME_CLASS} exists with handler {handler!r}, not {RUNTIME_HANDLER!r}")
        return False
    body = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "handler": RUNTIME_HANDLER,
            "metadata": {"name": RUNTIME_CLASS, "labels": {"app.kubernetes.io/created-by": CREATED_BY}}}
    created = kubectl("create", "-f", "-", input=json.dumps(body), check=False)
    if created.returncode != 0 and "AlreadyExists" not in created.stderr:  # lost a race: fine
        raise AssertionError(f"creating RuntimeClass {RUNTIME_CLASS} failed: {created.stderr}")
    return bool(created.returncode == 0)


def delete_runtime_class(kubectl: Any) -> None:
    """Delete the RuntimeClass only if it is still the one we created (our label is on it)."""
    found = kubectl("get", "runtimeclass", RUNTIME_CLASS, "-o", "json", "--ignore-not-found", check=False)
    if found.returncode != 0 or not found.stdout.strip():
        return
    labels = json.loads(found.stdout)["metadata"].get("labels", {})
    if labels.get("app.kubernetes.io/created-by") == CREATED_BY:
        kubectl("delete", "runtimeclass", RUNTIME_CLASS, "--ignore-not-found")


def wait_running(kubectl: Any, namespace: str, name: str, started: float, timeout: float = 180) -> float:
    """Seconds from `started` (time.monotonic() before the create) until the pod is Running.

    Fails early with the pod's events when a container is stuck waiting (ErrImagePull,
    CreateContainerError, CrashLoopBackOff): those never recover in a test run.
    """
    def failure(reason: str) -> AssertionError:
        events = kubectl("get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}",
                         check=False).stdout
        return AssertionError(f"pod {name} not Running ({reason}) on {NODE_NAME}; events:\n{events}")

    def running() -> float | None:
        pod = json.loads(kubectl("get", "pod", name, "-n", namespace, "-o", "json").stdout)
        if pod.get("status", {}).get("phase") == "Running":
            return max(time.monotonic() - started, 1e-9)  # truthy even for an instant start
        stuck = _stuck_reason(pod)
        if stuck:
            raise failure(stuck)
        return None

    return wait_for(running, max(0.0, started + timeout - time.monotonic()), 0.2, f"pod {name} Running",
                    error=lambda _: failure("timeout"))


def wait_phase(kubectl: Any, namespace: str, name: str, phases: set[str], timeout: float = 180) -> dict[str, Any]:
    """The pod once its phase is one of `phases` (e.g. Succeeded/Failed for run-to-completion)."""
    last: dict[str, Any] = {}

    def failure(reason: str) -> AssertionError:
        return AssertionError(f"pod {name} never reached {sorted(phases)}: {reason}; "
                              f"status: {json.dumps(last.get('status'))[:2000]}")

    def in_phase() -> dict[str, Any] | None:
        pod: dict[str, Any] = json.loads(kubectl("get", "pod", name, "-n", namespace, "-o", "json").stdout)
        last.clear()
        last.update(pod)
        if pod.get("status", {}).get("phase") in phases:
            return pod
        stuck = _stuck_reason(pod)
        if stuck:
            raise failure(stuck)
        return None

    return wait_for(in_phase, timeout, 0.2, f"pod {name} in {sorted(phases)}", error=lambda _: failure("timeout"))


def _stuck_reason(pod: dict[str, Any]) -> str | None:
    terminal = {"ErrImagePull", "ImagePullBackOff", "CreateContainerError", "CreateContainerConfigError",
                "CrashLoopBackOff", "RunContainerError", "InvalidImageName"}
    for status in pod.get("status", {}).get("containerStatuses") or []:
        waiting = status.get("state", {}).get("waiting") or {}
        if waiting.get("reason") in terminal:
            return f"{waiting['reason']}: {waiting.get('message', '')}"
    return None
