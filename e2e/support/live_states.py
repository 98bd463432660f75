"""WasmApps and WasmRuntimes in every state the operator reports, made once per session.

kstatus (test_kstatus.py) and Argo CD (test_argocd.py) judge the same live objects, so the states
are produced once, in one namespace, by the session operator, with the same recipes the operator
tests use (support.apps helpers, the example images): Ready, rolling out, Stalled for each family
of stall reasons, registry unreachable, and being deleted. Each object is captured (`kubectl get
-o json`) the moment it reaches its state, since the tools judge what a GitOps controller would
have read then.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .apps import get, wait_condition, wait_ready, wasmapp
from .cluster import Cluster
from .operator import OperatorProcess, free_port
from .operator_fixtures import ExampleImages
from .waiting import wait_for

# Held by the test, not the operator: it keeps a deleted WasmApp visible while it is deleted.
HOLD_FINALIZER = "e2e.wasmkube.dev/hold"
NOWHERE_RUNTIME = "e2e-judged-nowhere"


@dataclass(frozen=True)
class LiveState:
    """One live object in a known state, and what the operator said about it."""

    name: str
    obj: dict[str, Any]
    condition: str  # the condition the state is known by, e.g. "Stalled"
    reason: str


def _stalled(cluster: Cluster, kind: str, name: str, namespace: str | None, reason: str) -> dict[str, Any]:
    return wait_condition(cluster, kind, name, namespace, "Stalled", reason=reason)


@pytest.fixture(scope="session")
def live_states(cluster: Cluster, operator: OperatorProcess,
                example_images: ExampleImages) -> Iterator[dict[str, LiveState]]:
    namespace = f"e2e-judged-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    module = example_images.module.reference
    unreachable = f"127.0.0.1:{free_port()}/nowhere/app:v1"  # nothing listens: a registry outage
    taken = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "taken"},
             "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "taken"}},
                      "template": {"metadata": {"labels": {"app": "taken"}},
                                   "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    nowhere = {"apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmRuntime", "metadata": {"name": NOWHERE_RUNTIME},
               "spec": {"handler": "nowhere", "artifactKinds": ["Module"],
                        "nodeSelector": {"wasmkube.dev/shim-nowhere": "ready"}}}  # fmt: skip
    try:
        cluster.apply([taken], namespace)
        cluster.apply(nowhere)
        cluster.apply([
            wasmapp("serving", module, replicas=2),
            # More CPU than any node has: the pods stay Pending and the rollout stays under way.
            wasmapp("rolling", module, resources={"requests": {"cpu": "64"}}),
            wasmapp("no-runtime", module, runtime="no-such-runtime"),
            wasmapp("not-wasm", example_images.container.reference),
            wasmapp("no-secret", module, imagePullSecrets=[{"name": "nope"}]),
            wasmapp("taken", module),
            wasmapp("no-nodes", module, runtime=NOWHERE_RUNTIME),
            wasmapp("waiting", unreachable),
            wasmapp("leaving", module),
        ], namespace)  # fmt: skip
        states = [
            LiveState("serving", wait_ready(cluster, "serving", namespace), "Ready", "Available"),
            LiveState("rolling", wait_condition(cluster, "wasmapp", "rolling", namespace, "Reconciling",
                                                reason="RollingOut"), "Reconciling", "RollingOut"),
            LiveState("no-runtime", _stalled(cluster, "wasmapp", "no-runtime", namespace, "RuntimeNotFound"),
                      "Stalled", "RuntimeNotFound"),
            LiveState("not-wasm", _stalled(cluster, "wasmapp", "not-wasm", namespace, "IncompatibleArtifact"),
                      "Stalled", "IncompatibleArtifact"),
            LiveState("no-secret", _stalled(cluster, "wasmapp", "no-secret", namespace, "PullSecretNotFound"),
                      "Stalled", "PullSecretNotFound"),
            LiveState("taken", _stalled(cluster, "wasmapp", "taken", namespace, "NameConflict"),
                      "Stalled", "NameConflict"),
            LiveState("no-nodes", _stalled(cluster, "wasmapp", "no-nodes", namespace, "NoEligibleNodes"),
                      "Stalled", "NoEligibleNodes"),
            LiveState("waiting", wait_condition(cluster, "wasmapp", "waiting", namespace, "Ready", "False",
                                                reason="ArtifactUnavailable"), "Reconciling", "ArtifactUnavailable"),
            LiveState("runtime-ready", wait_condition(cluster, "wasmruntime", "wasmtime", None, "Ready"),
                      "Ready", "NodesReady"),
            LiveState("runtime-no-nodes", _stalled(cluster, "wasmruntime", NOWHERE_RUNTIME, None, "NoEligibleNodes"),
                      "Stalled", "NoEligibleNodes"),
        ]  # fmt: skip
        wait_ready(cluster, "leaving", namespace)
        cluster.kubectl("patch", "wasmapp", "leaving", "-n", namespace, "--type=merge",
                        "-p", f'{{"metadata": {{"finalizers": ["{HOLD_FINALIZER}"]}}}}')
        cluster.kubectl("delete", "wasmapp", "leaving", "-n", namespace, "--wait=false")
        leaving = wait_for(lambda: (obj := get(cluster, "wasmapp", "leaving", namespace))
                           and obj["metadata"].get("deletionTimestamp") and obj,
                           timeout=30, message="WasmApp leaving marked for deletion")  # fmt: skip
        states.append(LiveState("leaving", dict(leaving), "Ready", "Deleting"))
        yield {state.name: state for state in states}
    finally:
        cluster.kubectl("patch", "wasmapp", "leaving", "-n", namespace, "--type=json",
                        "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]', check=False)
        cluster.kubectl("delete", "wasmruntime", NOWHERE_RUNTIME, "--ignore-not-found", "--wait=false", check=False)
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)
