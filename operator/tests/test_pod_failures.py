"""Pod failures in the runtime's own words: message extraction from real pod-status shapes, the
verdicts they map to, and the diagnoser's limits (only stuck apps, rate-limited, best effort)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from wasmkube.clients.kube import EVENTS, PODS, KubeApiError, ResourceType
from wasmkube.controller.pods import LOOK_INTERVAL_SECONDS, STUCK_AFTER_SECONDS, PodDiagnoser, stuck_seconds
from wasmkube.status.conditions import READY, RECONCILING, STALLED, Verdict, build_conditions
from wasmkube.status.pods import (
    MAX_DETAIL,
    failure_verdict,
    pod_findings,
    probe_finding,
    unready_running_pod,
)

IMAGE = "127.0.0.1:5001/e2e/app@sha256:" + "a" * 64


def pod(name: str, phase: str = "Pending", container: dict[str, Any] | None = None,
        conditions: list[dict[str, Any]] | None = None, **meta: Any) -> dict[str, Any]:
    """A pod as `kubectl get pod -o json` shows it (only the fields that matter here)."""
    status: dict[str, Any] = {"phase": phase, "conditions": conditions or []}
    if container is not None:
        status["containerStatuses"] = [{"name": "app", "image": IMAGE, "imageID": "", "restartCount": 0,
                                        "ready": False, "started": False, **container}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "apps", **meta},
            "status": status}  # fmt: skip


IMAGE_PULL_BACKOFF = pod("hello-6d4c-x1", container={"state": {"waiting": {
    "reason": "ImagePullBackOff",
    "message": f'Back-off pulling image "{IMAGE}": ErrImagePull: failed to pull and unpack image "{IMAGE}": '
               "failed to resolve reference: 127.0.0.1:5001/e2e/app@sha256:aaaa: not found"}}})  # fmt: skip
ERR_IMAGE_PULL = pod("hello-6d4c-x2", container={"state": {"waiting": {
    "reason": "ErrImagePull", "message": "rpc error: code = NotFound desc = failed to pull and unpack image"}}})
CRASH_LOOP = pod("hello-6d4c-x3", phase="Running", container={
    "restartCount": 4,
    "state": {"waiting": {"reason": "CrashLoopBackOff",
                          "message": "back-off 1m20s restarting failed container=app pod=hello-6d4c-x3_apps(uid)"}},
    "lastState": {"terminated": {
        "exitCode": 1, "reason": "Error", "startedAt": "2026-12-02T05:00:00Z", "finishedAt": "2026-12-02T05:00:00Z",
        "message": "Error: failed to instantiate: component imports instance `wasi:sockets/tcp@0.2.0`, "
                   "but a matching implementation was not found in the linker\n"}},
})  # fmt: skip
CREATE_ERROR = pod("hello-6d4c-x4", container={"state": {"waiting": {
    "reason": "CreateContainerError",
    "message": "failed to create containerd task: failed to create shim task: wasm module not found"}}})
RUN_ERROR = pod("hello-6d4c-x5", container={"state": {"waiting": {
    "reason": "RunContainerError", "message": "failed to start containerd task \"app\": cannot start"}}})
CONFIG_ERROR = pod("hello-6d4c-x6", container={"state": {"waiting": {
    "reason": "CreateContainerConfigError", "message": 'secret "greeter-secrets" not found'}}})
CRASHED_NOW = pod("hello-6d4c-x7", phase="Running", container={"restartCount": 1, "state": {"terminated": {
    "exitCode": 3, "reason": "Error", "message": "missing config FOO\n"}}})
UNSCHEDULABLE = pod("hello-6d4c-x8", conditions=[{
    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
    "message": "0/5 nodes are available: 5 Insufficient cpu. preemption: 0/5 nodes are available: "
               "5 No preemption victims found for incoming pod."}])  # fmt: skip
RUNNING_UNREADY = pod("hello-6d4c-x9", phase="Running", container={
    "state": {"running": {"startedAt": "2026-12-02T05:00:00Z"}}, "started": True, "ready": False},
    conditions=[{"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                 "message": "containers with unready status: [app]"}])  # fmt: skip
RUNNING_READY = pod("hello-6d4c-xa", phase="Running", container={
    "state": {"running": {"startedAt": "2026-12-02T05:00:00Z"}}, "started": True, "ready": True})


def unhealthy(message: str, when: str, pod_name: str = "hello-6d4c-x9") -> dict[str, Any]:
    """A kubelet Event as `kubectl get events -o json` shows it."""
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": f"{pod_name}.1", "namespace": "apps"},
            "involvedObject": {"kind": "Pod", "name": pod_name, "namespace": "apps",
                               "fieldPath": "spec.containers{app}"},
            "reason": "Unhealthy", "message": message, "type": "Warning", "count": 7,
            "firstTimestamp": "2026-12-02T05:00:00Z", "lastTimestamp": when,
            "source": {"component": "kubelet", "host": "real-node-1"}}  # fmt: skip


def verdict_of(*pods: dict[str, Any], events: list[dict[str, Any]] | None = None) -> Verdict | None:
    findings = pod_findings(pods)
    unready = unready_running_pod(pods)
    if unready and events is not None and not any(f.stalled for f in findings):
        probe = probe_finding(unready, events)
        if probe:
            findings.append(probe)
    return failure_verdict(findings, len(pods))


# --- extraction and mapping -----------------------------------------------------------------------


@pytest.mark.parametrize("failing", [IMAGE_PULL_BACKOFF, ERR_IMAGE_PULL], ids=["backoff", "err"])
def test_image_pull_failure_stalls_with_the_kubelet_message(failing: dict[str, Any]) -> None:
    verdict = verdict_of(failing)
    assert verdict is not None
    assert (verdict.state, verdict.reason) == ("stalled", "ImagePullFailed")
    waiting = failing["status"]["containerStatuses"][0]["state"]["waiting"]
    assert verdict.message == f"pod {failing['metadata']['name']}: {waiting['reason']}: {waiting['message']}"


def test_crash_loop_stalls_with_the_modules_last_words_and_exit_code() -> None:
    verdict = verdict_of(CRASH_LOOP)
    assert verdict is not None
    assert (verdict.state, verdict.reason) == ("stalled", "CrashLoopBackOff")
    assert verdict.message.startswith("pod hello-6d4c-x3: CrashLoopBackOff, last run ended with exit code 1 (Error): ")
    assert "wasi:sockets/tcp@0.2.0" in verdict.message and "not found in the linker" in verdict.message
    assert not verdict.message.endswith("\n")


def test_crash_loop_without_a_termination_message_reports_the_exit_code() -> None:
    crash = copy.deepcopy(CRASH_LOOP)
    del crash["status"]["containerStatuses"][0]["lastState"]["terminated"]["message"]
    verdict = verdict_of(crash)
    assert verdict is not None and verdict.message.endswith("last run ended with exit code 1 (Error)")


@pytest.mark.parametrize(
    ("failing", "reason"),
    [(CREATE_ERROR, "ContainerCreateFailed"), (RUN_ERROR, "ContainerStartFailed"),
     (CONFIG_ERROR, "ContainerConfigError")],
)  # fmt: skip
def test_container_creation_and_start_failures_stall(failing: dict[str, Any], reason: str) -> None:
    verdict = verdict_of(failing)
    assert verdict is not None and (verdict.state, verdict.reason) == ("stalled", reason)
    assert failing["status"]["containerStatuses"][0]["state"]["waiting"]["message"] in verdict.message


def test_a_container_that_just_exited_with_an_error_counts_as_crashed() -> None:
    verdict = verdict_of(CRASHED_NOW)
    assert verdict is not None
    assert (verdict.state, verdict.reason) == ("stalled", "ContainerCrashed")
    assert verdict.message == "pod hello-6d4c-x7: container ended with exit code 3 (Error): missing config FOO"


def test_unschedulable_pod_keeps_the_app_progressing_with_the_schedulers_words() -> None:
    verdict = verdict_of(UNSCHEDULABLE)
    assert verdict is not None
    assert (verdict.state, verdict.reason) == ("progressing", "Unschedulable")
    assert "5 Insufficient cpu" in verdict.message


def test_probe_failure_keeps_the_app_progressing_with_the_latest_event() -> None:
    events = [
        unhealthy('Startup probe failed: Get "http://10.222.0.5:8080/": dial tcp: connect: connection refused',
                  "2026-12-02T05:00:05Z"),
        unhealthy("Readiness probe failed: HTTP probe failed with statuscode: 500", "2026-12-02T05:01:00Z"),
    ]  # fmt: skip
    verdict = verdict_of(RUNNING_UNREADY, events=events)
    assert verdict is not None
    assert (verdict.state, verdict.reason) == ("progressing", "ReadinessProbeFailed")
    assert verdict.message == "pod hello-6d4c-x9: Readiness probe failed: HTTP probe failed with statuscode: 500"


@pytest.mark.parametrize(
    ("message", "reason"),
    [("Startup probe failed: HTTP probe failed with statuscode: 404", "StartupProbeFailed"),
     ("Liveness probe failed: Get \"http://x/\": context deadline exceeded", "LivenessProbeFailed"),
     ("Something else failed", "ProbeFailed")],
)  # fmt: skip
def test_probe_kind_comes_from_the_event_message(message: str, reason: str) -> None:
    finding = probe_finding("p", [unhealthy(message, "2026-12-02T05:00:00Z", "p")])
    assert finding is not None and finding.reason == reason and not finding.stalled


def test_event_series_time_counts_for_the_latest() -> None:
    old = unhealthy("Readiness probe failed: old", "2026-12-02T05:00:00Z")
    recent = {**unhealthy("Readiness probe failed: recent", ""), "lastTimestamp": None,
              "series": {"count": 3, "lastObservedTime": "2026-12-02T06:00:00.000000Z"}}  # fmt: skip
    finding = probe_finding("hello-6d4c-x9", [recent, old])
    assert finding is not None and finding.detail.endswith("recent")


def test_no_unhealthy_events_no_probe_finding() -> None:
    assert probe_finding("p", []) is None
    assert probe_finding("p", [{**unhealthy("x", "t"), "reason": "Pulled"}]) is None


def test_healthy_and_merely_pending_pods_say_nothing() -> None:
    assert verdict_of(RUNNING_READY, pod("hello-pending"), RUNNING_UNREADY, events=[]) is None


def test_a_terminating_old_pod_is_ignored() -> None:
    leaving = copy.deepcopy(CRASH_LOOP)
    leaving["metadata"]["deletionTimestamp"] = "2026-12-02T05:00:00Z"
    assert verdict_of(leaving, RUNNING_READY) is None


def test_the_worst_finding_wins_and_says_how_many_pods_share_it() -> None:
    second_crash = copy.deepcopy(CRASH_LOOP)
    second_crash["metadata"]["name"] = "hello-6d4c-y3"
    verdict = verdict_of(UNSCHEDULABLE, CRASH_LOOP, RUNNING_READY, second_crash)
    assert verdict is not None and verdict.reason == "CrashLoopBackOff"
    assert verdict.message.startswith("pod hello-6d4c-x3 (2 of 4 pods): CrashLoopBackOff")


def test_a_stall_is_not_hidden_behind_a_probe_message() -> None:
    events = [unhealthy("Readiness probe failed: HTTP probe failed with statuscode: 500", "2026-12-02T05:01:00Z")]
    verdict = verdict_of(RUNNING_UNREADY, IMAGE_PULL_BACKOFF, events=events)
    assert verdict is not None and verdict.reason == "ImagePullFailed"


def test_init_container_failures_count_too() -> None:
    init = pod("hello-init")
    init["status"]["initContainerStatuses"] = [{"name": "init", "state": {"waiting": {
        "reason": "ErrImagePull", "message": "nope"}}}]  # fmt: skip
    verdict = verdict_of(init)
    assert verdict is not None and verdict.reason == "ImagePullFailed"


def test_a_huge_termination_message_keeps_its_tail() -> None:
    crash = copy.deepcopy(CRASH_LOOP)
    crash["status"]["containerStatuses"][0]["lastState"]["terminated"]["message"] = "x" * 10000 + "THE END"
    verdict = verdict_of(crash)
    assert verdict is not None and verdict.message.endswith("THE END")
    assert len(verdict.message) < MAX_DETAIL + 200


def test_conditions_carry_the_runtime_message_and_kstatus_reads_them_as_failed() -> None:
    verdict = verdict_of(CRASH_LOOP)
    assert verdict is not None
    conditions = {c["type"]: c for c in build_conditions(verdict, 3, None, "2026-12-02T05:00:00Z")}
    assert conditions[STALLED]["status"] == "True" and conditions[STALLED]["reason"] == "CrashLoopBackOff"
    assert "not found in the linker" in conditions[STALLED]["message"]
    assert conditions[READY]["status"] == "False" and conditions[READY]["reason"] == "CrashLoopBackOff"
    assert conditions[RECONCILING]["status"] == "False"


def test_probe_failure_conditions_are_reconciling_not_stalled() -> None:
    events = [unhealthy("Readiness probe failed: HTTP probe failed with statuscode: 500", "2026-12-02T05:01:00Z")]
    verdict = verdict_of(RUNNING_UNREADY, events=events)
    assert verdict is not None
    conditions = {c["type"]: c for c in build_conditions(verdict, 3, None, "2026-12-02T05:00:00Z")}
    assert (conditions[RECONCILING]["status"], conditions[STALLED]["status"]) == ("True", "False")
    assert conditions[READY]["message"].endswith("statuscode: 500")


# --- the diagnoser: when it looks, how often, and what it does with failures ----------------------

NOW = 1_800_000_000.0
ROLLING = Verdict("progressing", "RollingOut", "0 of 2 replicas available")


def stuck_deployment(seconds: float) -> dict[str, Any]:
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(NOW - seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"metadata": {"name": "hello", "namespace": "apps", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"replicas": 2},
            "status": {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 0, "unavailableReplicas": 2,
                       "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                                       "lastUpdateTime": stamp, "lastTransitionTime": stamp}]}}  # fmt: skip


class Lister:
    """Stands in for KubeClient.list_objects and records what was asked."""

    def __init__(self, pods: list[dict[str, Any]], events: list[dict[str, Any]] | None = None,
                 error: Exception | None = None, delay: float = 0.0) -> None:  # fmt: skip
        self.pods, self.events, self.error, self.delay = pods, events or [], error, delay
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def list_objects(self, resource: ResourceType, namespace: str | None, **query: Any) -> list[dict[str, Any]]:
        self.calls.append((resource.plural, query))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.pods if resource is PODS else self.events if resource is EVENTS else []


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def diagnoser() -> tuple[PodDiagnoser, Clock]:
    clock = Clock()
    return PodDiagnoser(clock=clock, wall_clock=lambda: NOW), clock


def explain(d: PodDiagnoser, lister: Lister, deployment: dict[str, Any] | None, verdict: Verdict = ROLLING,
            key: tuple[str, str] = ("apps", "hello")) -> tuple[Verdict, float | None]:  # fmt: skip
    return asyncio.run(d.explain(lister, key, key[1], deployment, verdict))  # type: ignore[arg-type]


def test_stuck_seconds_counts_from_the_last_progress() -> None:
    assert stuck_seconds(stuck_deployment(42), NOW) == pytest.approx(42)
    assert stuck_seconds({"metadata": {}}, NOW) == 0.0


def test_a_fresh_rollout_is_not_looked_at_but_looked_at_again_later() -> None:
    d, _ = diagnoser()
    lister = Lister([CRASH_LOOP])
    verdict, again = explain(d, lister, stuck_deployment(3))
    assert verdict is ROLLING and lister.calls == []
    assert again is not None and 0 < again <= STUCK_AFTER_SECONDS


def test_a_stuck_rollout_lists_the_apps_pods_by_selector_and_reports_why() -> None:
    d, _ = diagnoser()
    lister = Lister([CRASH_LOOP, RUNNING_READY])
    verdict, again = explain(d, lister, stuck_deployment(60))
    assert verdict.reason == "CrashLoopBackOff" and verdict.state == "stalled"
    assert again == LOOK_INTERVAL_SECONDS
    assert lister.calls == [("pods", {"label_selector": "wasmkube.dev/app=hello", "limit": 50})]


def test_probe_failures_read_the_unready_pods_unhealthy_events() -> None:
    d, _ = diagnoser()
    events = [unhealthy("Readiness probe failed: HTTP probe failed with statuscode: 500", "2026-12-02T05:01:00Z")]
    lister = Lister([RUNNING_UNREADY], events)
    verdict, _ = explain(d, lister, stuck_deployment(60))
    assert (verdict.state, verdict.reason) == ("progressing", "ReadinessProbeFailed")
    assert lister.calls[1] == ("events", {
        "field_selector": "involvedObject.kind=Pod,involvedObject.name=hello-6d4c-x9,reason=Unhealthy", "limit": 20})


def test_looks_are_rate_limited_per_app_and_the_last_finding_stands() -> None:
    d, clock = diagnoser()
    lister = Lister([CRASH_LOOP])
    first, _ = explain(d, lister, stuck_deployment(60))
    clock.now += 1
    second, _ = explain(d, lister, stuck_deployment(61))
    assert second == first and len(lister.calls) == 1
    clock.now += LOOK_INTERVAL_SECONDS
    explain(d, lister, stuck_deployment(90))
    assert len(lister.calls) == 2


def test_looks_are_rate_limited_overall() -> None:
    d, _ = diagnoser()
    lister = Lister([CRASH_LOOP])
    explain(d, lister, stuck_deployment(60), key=("apps", "a"))
    verdict, _ = explain(d, lister, stuck_deployment(60), key=("apps", "b"))  # same instant: no slot
    assert verdict is ROLLING and len(lister.calls) == 1


def test_a_refused_or_slow_look_keeps_the_deployment_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    d, clock = diagnoser()
    forbidden = Lister([], error=KubeApiError(403, "Forbidden", 'pods is forbidden: cannot list resource "pods"'))
    assert explain(d, forbidden, stuck_deployment(60))[0] is ROLLING
    monkeypatch.setattr("wasmkube.controller.pods.LOOK_TIMEOUT_SECONDS", 0.05)
    clock.now += 1
    assert explain(d, Lister([CRASH_LOOP], delay=1.0), stuck_deployment(60), key=("apps", "slow"))[0] is ROLLING


def test_healthy_or_other_verdicts_are_left_alone_and_forgotten() -> None:
    d, clock = diagnoser()
    lister = Lister([CRASH_LOOP])
    explain(d, lister, stuck_deployment(60))
    assert len(d) == 1
    ready = Verdict("ready", "Available", "2 of 2 replicas available")
    assert explain(d, lister, stuck_deployment(60), ready) == (ready, None)
    assert len(d) == 0
    stalled = Verdict("stalled", "PodCreationFailed", "pods forbidden: exceeded quota")
    clock.now += 1
    assert explain(d, lister, stuck_deployment(60), stalled) == (stalled, None)
    assert explain(d, lister, None) == (ROLLING, None)
    assert len(lister.calls) == 1


def test_progress_deadline_exceeded_gets_the_pods_reason() -> None:
    d, _ = diagnoser()
    timed_out = Verdict("stalled", "ProgressDeadlineExceeded", 'ReplicaSet "hello-6d4c" has timed out progressing.')
    verdict, _ = explain(d, Lister([IMAGE_PULL_BACKOFF]), stuck_deployment(700), timed_out)
    assert verdict.reason == "ImagePullFailed"


def test_nothing_found_keeps_the_deployment_verdict() -> None:
    d, _ = diagnoser()
    assert explain(d, Lister([pod("hello-pending")]), stuck_deployment(60))[0] is ROLLING
