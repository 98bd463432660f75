"""Which KWOK pods `localcluster up` replaces after a node outage, and which it leaves alone.

Only pods an outage left behind may go: `up` also runs while tests are running, and a pod a
test is waiting for must never be deleted under it.
"""

from __future__ import annotations

from typing import Any

from e2e.cluster.heal import pods_left_not_ready

FIRST_READY = "2026-01-01T09:00:00Z"  # KWOK keeps writing the node's first Ready time, even after an outage
OUTAGE = "2026-01-01T10:00:00Z"  # node-lifecycle controller marked the pods not Ready
BACK = "2026-01-01T10:01:00Z"


def node(name: str = "wasm-node-1", ready: str = "True", since: str = FIRST_READY, kwok: bool = True) -> dict[str, Any]:
    annotations = {"kwok.x-k8s.io/node": "fake"} if kwok else {}
    return {"metadata": {"name": name, "annotations": annotations},
            "status": {"conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": since}]}}


def pod(name: str = "web-1", *, node_name: str = "wasm-node-1", phase: str = "Running", ready: str | None = "False",
        since: str = OUTAGE, owned: bool = True, deleting: bool = False,
        containers_ready: str = "True") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "apps"}
    if owned:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": "web-abc", "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = BACK
    conditions = [] if ready is None else [{"type": "Ready", "status": ready, "lastTransitionTime": since},
                                           {"type": "ContainersReady", "status": containers_ready}]
    return {"metadata": meta, "spec": {"nodeName": node_name}, "status": {"phase": phase, "conditions": conditions}}


def test_a_pod_marked_not_ready_during_the_outage_is_replaced() -> None:
    assert pods_left_not_ready([node()], [pod()]) == [("apps", "web-1")]


def test_the_nodes_transition_time_does_not_matter() -> None:
    """KWOK writes the node's first Ready time back after the outage: earlier than the marks."""
    assert pods_left_not_ready([node(since=BACK)], [pod()]) == [("apps", "web-1")]
    assert pods_left_not_ready([node(since=FIRST_READY)], [pod()]) == [("apps", "web-1")]


def test_pods_that_are_fine_or_in_flight_are_left_alone() -> None:
    pods = [
        pod("ready", ready="True"),
        pod("just-created", phase="Pending", ready=None),  # KWOK has not started it yet
        pod("no-ready-condition", ready=None),
        pod("bare", owned=False),  # nothing would recreate it
        pod("going", deleting=True),
        pod("failing", containers_ready="False"),  # its containers failed: not the outage's doing
        pod("elsewhere", node_name="real-node-1"),  # a real kubelet judges its own pods
    ]
    nodes = [node(), node("real-node-1", kwok=False)]
    assert pods_left_not_ready(nodes, pods) == []


def test_nothing_is_replaced_while_the_node_is_still_away() -> None:
    """Their replacements could not start either; the next `up` deals with them."""
    assert pods_left_not_ready([node(ready="Unknown", since=OUTAGE)], [pod()]) == []


def test_pods_on_several_nodes() -> None:
    nodes = [node("wasm-node-1"), node("wasm-node-2")]
    pods = [pod("a", node_name="wasm-node-1"), pod("b", node_name="wasm-node-2"), pod("c", node_name="gone")]
    assert pods_left_not_ready(nodes, pods) == [("apps", "a"), ("apps", "b")]
