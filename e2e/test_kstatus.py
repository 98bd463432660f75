"""kstatus on live WasmApps and WasmRuntimes, computed by kstatus itself.

kstatus (sigs.k8s.io/cli-utils `status.Compute`) is what Flux's health checks, Helm 4's `--wait`
and kpt read. e2e/tools/kstatus runs the library on the objects the session operator really
wrote (support.live_states), so the verdicts below are the library's, not a reading of its rules.
"""

from __future__ import annotations

import json

from e2e.support import Cluster
from e2e.support.apps import wasmapp
from e2e.support.judges import argocd_health, kstatus
from e2e.support.live_states import LiveState

EXPECTED = {
    "serving": "Current",
    "rolling": "InProgress",
    "no-runtime": "Failed",
    "not-wasm": "Failed",
    "no-secret": "Failed",
    "taken": "Failed",
    "no-nodes": "Failed",
    "waiting": "InProgress",
    "runtime-ready": "Current",
    "runtime-no-nodes": "Failed",
    "leaving": "Terminating",
}


def test_kstatus_on_every_live_state(live_states: dict[str, LiveState]) -> None:
    names = list(live_states)
    verdicts = dict(zip(names, kstatus([live_states[name].obj for name in names]), strict=True))
    print(f"\nkstatus on live objects: {json.dumps(verdicts, indent=1)}")

    assert {name: v["status"] for name, v in verdicts.items()} == EXPECTED
    for name, state in live_states.items():
        conditions = {c["type"]: c for c in state.obj["status"]["conditions"]}
        for kind in ("Stalled", "Reconciling"):
            # kstatus passes the condition's message on, so `flux` and `helm` show the operator's words.
            if conditions[kind]["status"] == "True" and not state.obj["metadata"].get("deletionTimestamp"):
                assert verdicts[name]["message"] == conditions[kind]["message"], name


def test_kstatus_on_a_wasmapp_no_operator_has_seen_yet(cluster: Cluster, namespace: str, crds: None) -> None:
    # The object as the API server returns it from `kubectl create`: before any operator can have
    # written status. The CRD defaults status.observedGeneration to 0, so kstatus waits for the
    # operator instead of calling a never-reconciled object Current.
    created = cluster.kubectl("create", "-n", namespace, "-o", "json", "-f", "-",
                              input=json.dumps(wasmapp("fresh", "127.0.0.1:5001/fresh/app:v1"))).stdout
    obj = json.loads(created)
    assert obj["status"] == {"observedGeneration": 0}
    assert kstatus([obj])[0]["status"] == "InProgress"
    assert argocd_health([obj])[0]["status"] == "Progressing"
