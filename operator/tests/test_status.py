"""Status computation: conditions from verdicts, rollout verdicts from Deployments, Events on transitions."""

from __future__ import annotations

import re
from typing import Any

import pytest

from wasmkube.api.common import Condition
from wasmkube.controller.events import build_event, transition_event
from wasmkube.status.conditions import (
    READY,
    RECONCILING,
    STALLED,
    Verdict,
    build_conditions,
    find,
    without_times,
)
from wasmkube.status.rollout import replica_counts, rollout_verdict
from wasmkube.timestamps import now_rfc3339

T0 = "2024-01-01T00:00:00Z"
T1 = "2024-01-01T00:05:00Z"

READY_VERDICT = Verdict("ready", "Available", "2 of 2 replicas available")
PROGRESSING = Verdict("progressing", "RollingOut", "1 of 2 replicas updated")
STALLED_VERDICT = Verdict("stalled", "RuntimeNotFound", "WasmRuntime 'x' does not exist")
RETRYING = Verdict("retrying", "RegistryUnavailable", "registry did not answer")


def by_type(conditions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in conditions}


def statuses(conditions: list[dict[str, Any]]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in conditions}


# --- build_conditions -----------------------------------------------------------------------------


@pytest.mark.parametrize("verdict", [READY_VERDICT, PROGRESSING, STALLED_VERDICT, RETRYING], ids=lambda v: v.state)
def test_all_three_condition_types_are_always_present(verdict: Verdict) -> None:
    conditions = build_conditions(verdict, 4, None, T0)
    assert [c["type"] for c in conditions] == [READY, RECONCILING, STALLED]


@pytest.mark.parametrize("verdict", [READY_VERDICT, PROGRESSING, STALLED_VERDICT, RETRYING], ids=lambda v: v.state)
def test_conditions_carry_the_observed_generation(verdict: Verdict) -> None:
    assert all(c["observedGeneration"] == 7 for c in build_conditions(verdict, 7, None, T0))


@pytest.mark.parametrize("verdict", [READY_VERDICT, PROGRESSING, STALLED_VERDICT, RETRYING], ids=lambda v: v.state)
def test_conditions_are_valid_against_the_condition_model(verdict: Verdict) -> None:
    for condition in build_conditions(verdict, 1, None, T0):
        Condition.model_validate(condition)


def test_ready_verdict() -> None:
    conditions = by_type(build_conditions(READY_VERDICT, 1, None, T0))
    assert statuses(list(conditions.values())) == {READY: "True", RECONCILING: "False", STALLED: "False"}
    assert conditions[READY]["reason"] == "Available"
    assert conditions[READY]["message"] == "2 of 2 replicas available"
    assert conditions[RECONCILING]["reason"] == "Reconciled"
    assert conditions[STALLED]["reason"] == "Reconciled"
    assert conditions[STALLED]["message"] == ""


def test_progressing_verdict() -> None:
    conditions = by_type(build_conditions(PROGRESSING, 1, None, T0))
    assert statuses(list(conditions.values())) == {READY: "False", RECONCILING: "True", STALLED: "False"}
    assert conditions[READY]["reason"] == "RollingOut"
    assert conditions[RECONCILING]["reason"] == "RollingOut"
    assert conditions[RECONCILING]["message"] == "1 of 2 replicas updated"
    assert conditions[STALLED]["message"] == ""


def test_retrying_verdict_counts_as_reconciling() -> None:
    conditions = by_type(build_conditions(RETRYING, 1, None, T0))
    assert statuses(list(conditions.values())) == {READY: "False", RECONCILING: "True", STALLED: "False"}
    assert conditions[RECONCILING]["reason"] == "RegistryUnavailable"


def test_stalled_verdict() -> None:
    conditions = by_type(build_conditions(STALLED_VERDICT, 1, None, T0))
    assert statuses(list(conditions.values())) == {READY: "False", RECONCILING: "False", STALLED: "True"}
    assert conditions[STALLED]["reason"] == "RuntimeNotFound"
    assert conditions[STALLED]["message"] == "WasmRuntime 'x' does not exist"
    assert conditions[READY]["reason"] == "RuntimeNotFound"
    assert conditions[RECONCILING]["message"] == ""


def test_new_conditions_take_the_current_time() -> None:
    assert all(c["lastTransitionTime"] == T0 for c in build_conditions(PROGRESSING, 1, None, T0))


def test_transition_time_is_kept_when_status_is_unchanged() -> None:
    first = build_conditions(PROGRESSING, 1, None, T0)
    second = build_conditions(Verdict("progressing", "RollingOut", "2 of 3 updated"), 2, first, T1)
    assert all(c["lastTransitionTime"] == T0 for c in second)


def test_transition_time_moves_only_for_flipped_conditions() -> None:
    first = build_conditions(PROGRESSING, 1, None, T0)
    second = by_type(build_conditions(READY_VERDICT, 1, first, T1))
    assert second[READY]["lastTransitionTime"] == T1  # False → True
    assert second[RECONCILING]["lastTransitionTime"] == T1  # True → False
    assert second[STALLED]["lastTransitionTime"] == T0  # False → False


def test_unchanged_state_gives_an_identical_status() -> None:
    first = build_conditions(READY_VERDICT, 3, None, T0)
    assert build_conditions(READY_VERDICT, 3, first, T1) == first


def test_previous_condition_without_a_time_gets_now() -> None:
    previous = [{"type": READY, "status": "False"}]
    assert by_type(build_conditions(PROGRESSING, 1, previous, T1))[READY]["lastTransitionTime"] == T1


def test_unrelated_previous_conditions_are_ignored() -> None:
    previous = [{"type": "Custom", "status": "True", "lastTransitionTime": T0}]
    conditions = build_conditions(READY_VERDICT, 1, previous, T1)
    assert [c["type"] for c in conditions] == [READY, RECONCILING, STALLED]


def test_verdict_ready_property() -> None:
    assert READY_VERDICT.ready
    assert not PROGRESSING.ready
    assert not STALLED_VERDICT.ready


def test_find_condition() -> None:
    conditions = build_conditions(READY_VERDICT, 1, None, T0)
    found = find(conditions, STALLED)
    assert found is not None and found["type"] == STALLED
    assert find(conditions, "Other") is None
    assert find(None, READY) is None


def test_now_is_rfc3339_utc() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", now_rfc3339())


# --- without_times --------------------------------------------------------------------------------


def test_without_times_drops_transition_times_and_resolution_time() -> None:
    status = {
        "observedGeneration": 2,
        "conditions": build_conditions(READY_VERDICT, 2, None, T0),
        "artifact": {"digest": "sha256:x", "resolvedAt": T0},
    }
    stripped = without_times(status)
    assert all("lastTransitionTime" not in c for c in stripped["conditions"])
    assert stripped["artifact"] == {"digest": "sha256:x"}
    assert stripped["observedGeneration"] == 2


def test_without_times_makes_statuses_differing_only_in_time_equal() -> None:
    first = {"conditions": build_conditions(READY_VERDICT, 1, None, T0), "artifact": {"resolvedAt": T0}}
    second = {"conditions": build_conditions(READY_VERDICT, 1, None, T1), "artifact": {"resolvedAt": T1}}
    assert first != second
    assert without_times(first) == without_times(second)


def test_without_times_still_sees_real_changes() -> None:
    first = {"conditions": build_conditions(READY_VERDICT, 1, None, T0)}
    second = {"conditions": build_conditions(PROGRESSING, 1, None, T0)}
    assert without_times(first) != without_times(second)


def test_without_times_does_not_modify_its_input() -> None:
    status: dict[str, Any] = {
        "conditions": build_conditions(READY_VERDICT, 1, None, T0),
        "artifact": {"resolvedAt": T0},
    }
    without_times(status)
    assert status["conditions"][0]["lastTransitionTime"] == T0
    assert status["artifact"] == {"resolvedAt": T0}


def test_without_times_handles_a_status_without_conditions() -> None:
    assert without_times({"replicas": 1}) == {"replicas": 1, "conditions": []}


# --- rollout_verdict ------------------------------------------------------------------------------


def deployment(
    generation: int = 2,
    observed: int | None = 2,
    replicas: int | None = 2,
    updated: int = 2,
    total: int = 2,
    available: int = 2,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec = {} if replicas is None else {"replicas": replicas}
    status: dict[str, Any] = {"updatedReplicas": updated, "replicas": total, "availableReplicas": available}
    if observed is not None:
        status["observedGeneration"] = observed
    if conditions is not None:
        status["conditions"] = conditions
    return {"metadata": {"name": "hello", "generation": generation}, "spec": spec, "status": status}


def test_missing_deployment_is_pending() -> None:
    verdict = rollout_verdict(None)
    assert (verdict.state, verdict.reason) == ("progressing", "DeploymentPending")


def test_stale_observed_generation_is_rolling_out() -> None:
    verdict = rollout_verdict(deployment(generation=3, observed=2))
    assert (verdict.state, verdict.reason) == ("progressing", "RollingOut")
    assert "see the change" in verdict.message


def test_deployment_without_status_is_rolling_out() -> None:
    verdict = rollout_verdict({"metadata": {"generation": 1}, "spec": {"replicas": 1}})
    assert verdict.state == "progressing"


def test_stale_generation_wins_over_old_failure_conditions() -> None:
    failure = [{"type": "ReplicaFailure", "status": "True", "message": "old"}]
    assert rollout_verdict(deployment(generation=3, observed=2, conditions=failure)).state == "progressing"


def test_updating_replicas_is_rolling_out() -> None:
    verdict = rollout_verdict(deployment(replicas=3, updated=1, total=3, available=3))
    assert (verdict.state, verdict.reason, verdict.message) == ("progressing", "RollingOut", "1 of 3 replicas updated")


def test_old_replicas_still_running_is_rolling_out() -> None:
    verdict = rollout_verdict(deployment(replicas=2, updated=2, total=3, available=2))
    assert (verdict.state, verdict.message) == ("progressing", "1 old replicas are being replaced")


def test_unavailable_replicas_is_rolling_out() -> None:
    verdict = rollout_verdict(deployment(replicas=2, updated=2, total=2, available=1))
    assert (verdict.state, verdict.message) == ("progressing", "1 of 2 replicas available")


def test_available_deployment_is_ready() -> None:
    verdict = rollout_verdict(deployment())
    assert (verdict.state, verdict.reason, verdict.message) == ("ready", "Available", "2 of 2 replicas available")


def test_scaled_to_zero_is_ready() -> None:
    verdict = rollout_verdict(deployment(replicas=0, updated=0, total=0, available=0))
    assert verdict.ready


def test_replicas_default_to_one_when_unset() -> None:
    assert rollout_verdict(deployment(replicas=None, updated=0, total=0, available=0)).message == (
        "0 of 1 replicas updated"
    )
    assert rollout_verdict(deployment(replicas=None, updated=1, total=1, available=1)).ready


def test_replica_failure_is_stalled_pod_creation_failed() -> None:
    conditions = [
        {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "pods forbidden: quota"}
    ]
    verdict = rollout_verdict(deployment(updated=0, available=0, total=0, conditions=conditions))
    assert (verdict.state, verdict.reason, verdict.message) == ("stalled", "PodCreationFailed", "pods forbidden: quota")


def test_replica_failure_without_message_reports_its_reason() -> None:
    conditions = [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate"}]
    assert rollout_verdict(deployment(conditions=conditions)).message == "FailedCreate"


def test_resolved_replica_failure_is_ignored() -> None:
    conditions = [{"type": "ReplicaFailure", "status": "False", "reason": "FailedCreate"}]
    assert rollout_verdict(deployment(conditions=conditions)).ready


def test_progress_deadline_exceeded_is_stalled() -> None:
    conditions = [
        {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": 'ReplicaSet "hello-abc" has timed out progressing.',
        }
    ]
    verdict = rollout_verdict(deployment(updated=1, available=0, conditions=conditions))
    assert (verdict.state, verdict.reason) == ("stalled", "ProgressDeadlineExceeded")
    assert "timed out" in verdict.message


def test_progressing_condition_that_is_fine_does_not_stall() -> None:
    conditions = [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]
    assert rollout_verdict(deployment(conditions=conditions)).ready


def test_replica_counts_are_copied() -> None:
    obj = deployment(updated=1, total=3, available=2)
    obj["status"]["readyReplicas"] = 2
    assert replica_counts(obj) == {"replicas": 3, "readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 1}


def test_replica_counts_of_nothing_are_zero() -> None:
    assert replica_counts(None) == {"replicas": 0, "readyReplicas": 0, "availableReplicas": 0, "updatedReplicas": 0}


# --- Events on transitions ------------------------------------------------------------------------


def test_first_ready_status_is_a_normal_event() -> None:
    current = build_conditions(READY_VERDICT, 1, None, T0)
    assert transition_event(None, current) == ("Normal", "Available", "2 of 2 replicas available")


def test_first_progressing_status_is_a_normal_event() -> None:
    current = build_conditions(PROGRESSING, 1, None, T0)
    assert transition_event(None, current) == ("Normal", "RollingOut", "1 of 2 replicas updated")


def test_stalled_status_is_a_warning_event() -> None:
    previous = build_conditions(READY_VERDICT, 1, None, T0)
    current = build_conditions(STALLED_VERDICT, 2, previous, T1)
    assert transition_event(previous, current) == ("Warning", "RuntimeNotFound", "WasmRuntime 'x' does not exist")


def test_no_event_when_ready_status_and_reason_are_unchanged() -> None:
    previous = build_conditions(PROGRESSING, 1, None, T0)
    current = build_conditions(Verdict("progressing", "RollingOut", "2 of 2 replicas updated"), 1, previous, T1)
    assert transition_event(previous, current) is None


def test_event_when_only_the_reason_changes() -> None:
    previous = build_conditions(PROGRESSING, 1, None, T0)
    current = build_conditions(RETRYING, 1, previous, T1)
    assert transition_event(previous, current) == ("Normal", "RegistryUnavailable", "registry did not answer")


def test_recovery_is_a_normal_event() -> None:
    previous = build_conditions(STALLED_VERDICT, 1, None, T0)
    current = build_conditions(READY_VERDICT, 2, previous, T1)
    event = transition_event(previous, current)
    assert event is not None and event[0] == "Normal"


def test_no_event_without_a_ready_condition() -> None:
    assert transition_event(None, []) is None


def test_event_object_points_at_the_app() -> None:
    app = {
        "apiVersion": "wasmkube.dev/v1alpha1",
        "kind": "WasmApp",
        "metadata": {"name": "hello", "namespace": "apps", "uid": "u1", "resourceVersion": "42"},
    }
    event = build_event(app, "Warning", "RuntimeNotFound", "x" * 2000, T0)
    assert event["metadata"] == {"generateName": "hello.", "namespace": "apps"}
    assert event["involvedObject"]["uid"] == "u1"
    assert event["involvedObject"]["kind"] == "WasmApp"
    assert (event["type"], event["reason"]) == ("Warning", "RuntimeNotFound")
    assert len(event["message"]) == 1024
    assert event["source"] == {"component": "wasmkube"}


def test_events_of_cluster_scoped_objects_go_to_default() -> None:
    runtime = {"apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmRuntime", "metadata": {"name": "spin"}}
    event = build_event(runtime, "Normal", "Ready", "ok", T0)
    assert event["metadata"]["namespace"] == "default"
    assert event["involvedObject"]["namespace"] is None
