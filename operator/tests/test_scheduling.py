"""Node selection as the scheduler and the RuntimeClass admission plugin apply it."""

from __future__ import annotations

from typing import Any

import pytest

from wasmkube.api.common import Toleration
from wasmkube.builders.scheduling import (
    NodeInfo,
    Taint,
    count_nodes,
    matches,
    merge_tolerations,
    tolerates,
)


def toleration(**fields: Any) -> Toleration:
    return Toleration.model_validate(fields)


def node_object(
    name: str = "n1",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    ready: str | None = "True",
    unschedulable: bool | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if taints is not None:
        spec["taints"] = taints
    if unschedulable is not None:
        spec["unschedulable"] = unschedulable
    conditions = [{"type": "MemoryPressure", "status": "False"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready})
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec, "status": {"conditions": conditions}}


NO_SCHEDULE = Taint("wasm", "spin", "NoSchedule")


# --- NodeInfo.from_node ---------------------------------------------------------------------------


def test_from_node_reads_name_labels_and_taints() -> None:
    node = NodeInfo.from_node(
        node_object(
            name="worker-1",
            labels={"wasm": "yes"},
            taints=[{"key": "wasm", "value": "spin", "effect": "NoSchedule"}, {"key": "gpu", "effect": "NoExecute"}],
        )
    )
    assert node.name == "worker-1"
    assert dict(node.labels) == {"wasm": "yes"}
    assert node.taints == (Taint("wasm", "spin", "NoSchedule"), Taint("gpu", "", "NoExecute"))


def test_from_node_ready_condition_true_means_ready() -> None:
    node = NodeInfo.from_node(node_object(ready="True"))
    assert node.ready
    assert node.schedulable


@pytest.mark.parametrize("status", ["False", "Unknown", None])
def test_from_node_without_a_true_ready_condition_is_not_ready(status: str | None) -> None:
    node = NodeInfo.from_node(node_object(ready=status))
    assert not node.ready
    assert not node.schedulable


def test_from_node_cordoned_node_is_ready_but_not_schedulable() -> None:
    node = NodeInfo.from_node(node_object(unschedulable=True))
    assert node.ready
    assert node.unschedulable
    assert not node.schedulable


def test_from_node_tolerates_a_bare_object() -> None:
    node = NodeInfo.from_node({"metadata": {"name": "bare"}})
    assert (node.name, dict(node.labels), node.taints, node.ready, node.unschedulable) == ("bare", {}, (), False, False)


def test_from_node_tolerates_null_lists() -> None:
    node = NodeInfo.from_node(
        {"metadata": {"name": "n", "labels": None}, "spec": {"taints": None}, "status": {"conditions": None}}
    )
    assert node.taints == ()
    assert dict(node.labels) == {}


def test_node_info_ignores_heartbeat_fields() -> None:
    first = node_object()
    second = node_object()
    second["status"]["conditions"][1]["lastHeartbeatTime"] = "2024-01-01T00:00:00Z"
    assert NodeInfo.from_node(first) == NodeInfo.from_node(second)


# --- toleration matching --------------------------------------------------------------------------


def test_equal_toleration_matches_key_value_and_effect() -> None:
    assert tolerates(toleration(key="wasm", operator="Equal", value="spin", effect="NoSchedule"), NO_SCHEDULE)


def test_equal_is_the_default_operator() -> None:
    assert tolerates(toleration(key="wasm", value="spin"), NO_SCHEDULE)
    assert not tolerates(toleration(key="wasm", value="other"), NO_SCHEDULE)


def test_equal_toleration_with_a_different_value_does_not_match() -> None:
    assert not tolerates(toleration(key="wasm", operator="Equal", value="wasmtime"), NO_SCHEDULE)


def test_equal_toleration_without_value_matches_only_an_empty_value() -> None:
    assert not tolerates(toleration(key="wasm", operator="Equal"), NO_SCHEDULE)
    assert tolerates(toleration(key="wasm", operator="Equal"), Taint("wasm", "", "NoSchedule"))


def test_exists_toleration_matches_any_value_of_its_key() -> None:
    assert tolerates(toleration(key="wasm", operator="Exists"), NO_SCHEDULE)
    assert tolerates(toleration(key="wasm", operator="Exists"), Taint("wasm", "anything", "NoExecute"))


def test_toleration_for_another_key_does_not_match() -> None:
    assert not tolerates(toleration(key="gpu", operator="Exists"), NO_SCHEDULE)


def test_empty_key_with_exists_tolerates_everything() -> None:
    assert tolerates(toleration(operator="Exists"), NO_SCHEDULE)
    assert tolerates(toleration(operator="Exists"), Taint("other", "x", "NoExecute"))


def test_empty_key_with_exists_still_respects_the_effect() -> None:
    assert tolerates(toleration(operator="Exists", effect="NoSchedule"), NO_SCHEDULE)
    assert not tolerates(toleration(operator="Exists", effect="NoExecute"), NO_SCHEDULE)


def test_empty_key_with_equal_tolerates_nothing() -> None:
    """Kubernetes refuses such a toleration at admission; here it simply matches no taint."""
    assert not tolerates(toleration(value="spin"), NO_SCHEDULE)
    assert not tolerates(toleration(operator="Equal"), Taint("", "", "NoSchedule"))


def test_toleration_with_another_effect_does_not_match() -> None:
    assert not tolerates(toleration(key="wasm", operator="Exists", effect="NoExecute"), NO_SCHEDULE)


def test_toleration_without_effect_matches_every_effect() -> None:
    for effect in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        assert tolerates(toleration(key="wasm", operator="Exists"), Taint("wasm", "spin", effect))


# --- matching nodes -------------------------------------------------------------------------------


def test_node_matches_when_selector_labels_are_present() -> None:
    node = NodeInfo("n", labels={"wasm": "yes", "zone": "a"}, ready=True)
    assert matches(node, {"wasm": "yes"}, [])
    assert matches(node, {}, [])


def test_node_does_not_match_a_different_label_value_or_missing_label() -> None:
    node = NodeInfo("n", labels={"wasm": "no"}, ready=True)
    assert not matches(node, {"wasm": "yes"}, [])
    assert not matches(node, {"zone": "a"}, [])


def test_untolerated_blocking_taint_excludes_the_node() -> None:
    node = NodeInfo("n", taints=(NO_SCHEDULE,), ready=True)
    assert not matches(node, {}, [])
    assert matches(node, {}, [toleration(key="wasm", operator="Exists")])


def test_no_execute_taint_also_blocks() -> None:
    node = NodeInfo("n", taints=(Taint("wasm", "", "NoExecute"),), ready=True)
    assert not matches(node, {}, [])


def test_prefer_no_schedule_taint_does_not_exclude_the_node() -> None:
    node = NodeInfo("n", taints=(Taint("wasm", "", "PreferNoSchedule"),), ready=True)
    assert matches(node, {}, [])


def test_every_blocking_taint_must_be_tolerated() -> None:
    node = NodeInfo("n", taints=(NO_SCHEDULE, Taint("gpu", "", "NoSchedule")), ready=True)
    assert not matches(node, {}, [toleration(key="wasm", operator="Exists")])
    assert matches(node, {}, [toleration(key="wasm", operator="Exists"), toleration(key="gpu", operator="Exists")])


def test_matches_accepts_a_one_shot_iterable_of_tolerations() -> None:
    node = NodeInfo("n", taints=(NO_SCHEDULE, Taint("gpu", "", "NoSchedule")), ready=True)
    tolerations = iter([toleration(key="wasm", operator="Exists"), toleration(key="gpu", operator="Exists")])
    assert matches(node, {}, tolerations)


# --- counting nodes -------------------------------------------------------------------------------


def test_count_nodes_eligible_versus_ready() -> None:
    nodes = [
        NodeInfo("ready", labels={"wasm": "yes"}, ready=True),
        NodeInfo("not-ready", labels={"wasm": "yes"}, ready=False),
        NodeInfo("cordoned", labels={"wasm": "yes"}, ready=True, unschedulable=True),
        NodeInfo("no-label", labels={}, ready=True),
        NodeInfo("tainted", labels={"wasm": "yes"}, taints=(Taint("dedicated", "db", "NoSchedule"),), ready=True),
    ]
    assert count_nodes(nodes, {"wasm": "yes"}, []) == (3, 1)


def test_count_nodes_with_tolerations_includes_tainted_nodes() -> None:
    nodes = [
        NodeInfo("plain", ready=True),
        NodeInfo("tainted", taints=(NO_SCHEDULE,), ready=True),
    ]
    assert count_nodes(nodes, {}, []) == (1, 1)
    assert count_nodes(nodes, {}, [toleration(key="wasm", operator="Exists")]) == (2, 2)


def test_count_nodes_with_no_nodes() -> None:
    assert count_nodes([], {"wasm": "yes"}, []) == (0, 0)


def test_count_nodes_from_node_objects() -> None:
    nodes = [
        NodeInfo.from_node(node_object("a", labels={"wasm": "yes"})),
        NodeInfo.from_node(node_object("b", labels={"wasm": "yes"}, ready="False")),
        NodeInfo.from_node(node_object("c", labels={"wasm": "yes"}, unschedulable=True)),
    ]
    assert count_nodes(iter(nodes), {"wasm": "yes"}, iter([])) == (3, 1)


# --- merging tolerations --------------------------------------------------------------------------


def test_merge_tolerations_keeps_runtime_first_and_drops_duplicates() -> None:
    runtime = [toleration(key="wasm", operator="Exists")]
    app = [toleration(key="wasm", operator="Exists"), toleration(key="gpu", operator="Exists")]
    merged = merge_tolerations(runtime, app)
    assert [t.key for t in merged] == ["wasm", "gpu"]


def test_merge_tolerations_keeps_distinct_variants() -> None:
    merged = merge_tolerations(
        [toleration(key="wasm", operator="Exists")], [toleration(key="wasm", operator="Exists", effect="NoSchedule")]
    )
    assert len(merged) == 2
