"""Nothing is lost or duplicated when the operator, the API server, etcd or the registry fail.

Crash in the middle of creating 300 apps; kube-apiserver SIGKILLed and etcd frozen under a
running operator; a registry outage with an operator restart in it; leader election with SIGKILL,
SIGTERM and a network partition of the leader.

Every test here runs its own operator process(es), watching only the test's namespace, with the
session operator paused (`exclusive_operators`): a crash or a failover is only a test when no
other operator quietly does the work.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from e2e.registry import artifacts
from e2e.registry.pusher import Pusher
from e2e.registry.server import RegistryServer
from e2e.support import Cluster, wait_for
from e2e.support.apps import condition, get, wait_condition, wait_ready, wasmapp
from e2e.support.controlplane import (
    APISERVER_PORT,
    cluster_up,
    etcd_frozen,
    kill_apiserver,
    require_local_control_plane,
)
from e2e.support.operator import OperatorProcess
from e2e.support.operator_fixtures import ExampleImages
from e2e.support.reliability import (
    TALLY,
    alive,
    bug_records,
    controller_ref,
    items,
    leader_identities,
    lease_spec,
    log_records,
    names,
    note,
    ownership_problems,
    reconciles,
    settle,
    terminate,
    wait_exit,
)
from e2e.support.reliability_fixtures import DedicatedOperators
from e2e.support.stallproxy import StallableProxy

CRASH_APPS = 300
KILL_AFTER_DEPLOYMENTS = 50


def deployment_count(cluster: Cluster, namespace: str) -> int:
    out = cluster.kubectl("get", "deployments", "-n", namespace, "-o", "name", "--chunk-size=0").stdout
    return len(out.split())


def create_in_parallel(cluster: Cluster, namespace: str, manifests: list[dict[str, Any]], chunks: int = 4) -> None:
    """`kubectl create` of several Lists at once: the apps arrive in a burst, not one by one."""
    def create(part: list[dict[str, Any]]) -> None:
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": part})
        cluster.kubectl("create", "-n", namespace, "-f", "-", input=body, timeout=300)

    with ThreadPoolExecutor(chunks) as pool:
        for future in [pool.submit(create, manifests[i::chunks]) for i in range(chunks)]:
            future.result()


def assert_alive(process: OperatorProcess, pid: int | None) -> None:
    assert process.pid == pid and alive(process), f"operator exited or was restarted; log:\n{process.log_tail()}"
    assert process.healthy(), "operator /healthz does not answer"
    assert not bug_records(process.log_text()), bug_records(process.log_text())[:3]


def test_crash_during_creation_loses_and_duplicates_nothing(cluster: Cluster, namespace: str,
                                                            exclusive_operators: DedicatedOperators,
                                                            example_images: ExampleImages) -> None:
    image = example_images.module.reference
    app_names = [f"app-{i:03d}" for i in range(CRASH_APPS)]
    # A third serve (a pod and a Service); the rest are scaled to zero, which takes the operator
    # through the same steps (Deployment, its controller's status, the app's status) without
    # making the cluster start 300 pods on a 2-core machine.
    with_service = set(app_names[::3])
    manifests = [wasmapp(n, image, **({"replicas": 1, "service": {"port": 80}} if n in with_service
                                      else {"replicas": 0})) for n in app_names]
    operator = exclusive_operators.start(namespace, name="crash")

    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        creating = pool.submit(create_in_parallel, cluster, namespace, manifests)
        killed_at = wait_for(lambda: (n := deployment_count(cluster, namespace)) >= KILL_AFTER_DEPLOYMENTS and n,
                             timeout=120, interval=0.05, message=f"{KILL_AFTER_DEPLOYMENTS} Deployments")
        operator.kill()  # SIGKILL: mid-way through creating children and writing statuses
        creating.result()
    at_crash = items(cluster, "wasmapps.wasmkube.dev", namespace)
    without_status = sum(1 for a in at_crash if not a.get("status"))
    left = deployment_count(cluster, namespace)
    note(f"crash: SIGKILL {time.monotonic() - started:.1f}s into creating {CRASH_APPS} WasmApps, at {killed_at} "
         f"Deployments ({left} once settled, {without_status} apps without status)")
    assert len(at_crash) == CRASH_APPS
    assert left < CRASH_APPS, "the operator finished before it was killed: nothing was interrupted"

    operator.start()
    restarted = time.monotonic()
    verdicts = settle(cluster, namespace, app_names, timeout=240, ready_only=True, interval=2)
    TALLY.count(verdicts)
    unsettled = {n: v for n, v in verdicts.items() if v != "ready"}
    note(f"crash: all {CRASH_APPS} Ready {time.monotonic() - restarted:.1f}s after the restart" if not unsettled
         else f"crash: {len(unsettled)} of {CRASH_APPS} not Ready after the restart")
    assert not unsettled, dict(list(unsettled.items())[:10])

    apps = {a["metadata"]["name"]: a for a in items(cluster, "wasmapps.wasmkube.dev", namespace)}
    for app in apps.values():
        assert app["status"]["observedGeneration"] == app["metadata"]["generation"] == 1
        assert app["status"]["deploymentName"] == app["metadata"]["name"]
        assert app["status"]["readyReplicas"] == (1 if app["metadata"]["name"] in with_service else 0)
    deployments = items(cluster, "deployments.apps", namespace)
    assert sorted(names(deployments)) == sorted(app_names), "exactly one Deployment per WasmApp, named after it"
    for deployment in deployments:
        ref = controller_ref(deployment)
        assert ref is not None and ref["uid"] == apps[deployment["metadata"]["name"]]["metadata"]["uid"]
        # Applied once: the restarted operator's re-apply changed nothing, so no second rollout.
        assert deployment["metadata"]["generation"] == 1, deployment["metadata"]["name"]
    replica_sets = items(cluster, "replicasets.apps", namespace)
    owners = [controller_ref(rs)["name"] for rs in replica_sets]
    assert sorted(owners) == sorted(app_names), "one ReplicaSet (one rollout) per Deployment"
    assert names(items(cluster, "services", namespace)) == with_service
    assert not items(cluster, "horizontalpodautoscalers.autoscaling", namespace)
    assert ownership_problems(cluster, namespace) == []
    assert not bug_records(operator.log_text())


def test_apiserver_restart_and_etcd_freeze_are_survived(cluster: Cluster, namespace: str,
                                                        exclusive_operators: DedicatedOperators,
                                                        example_images: ExampleImages) -> None:
    require_local_control_plane()
    image = example_images.module.reference
    operator = exclusive_operators.start(namespace, name="controlplane")
    pid = operator.pid
    cluster.apply(wasmapp("before", image, replicas=1), namespace)
    wait_ready(cluster, "before", namespace)

    down = time.monotonic()
    try:
        kill_apiserver()
        time.sleep(2)  # the operator's watches and requests fail for a while
    finally:
        took = cluster_up()
    note(f"control plane: kube-apiserver SIGKILLed and back after {time.monotonic() - down:.1f}s "
         f"(localcluster.py up: {took:.1f}s)")
    assert_alive(operator, pid)
    cluster.apply(wasmapp("after-restart", image), namespace)
    wait_ready(cluster, "after-restart", namespace, timeout=90)
    cluster.kubectl("scale", "wasmapp", "before", "-n", namespace, "--replicas=2")
    wait_for(lambda: get(cluster, "deployment", "before", namespace)["spec"]["replicas"] == 2, timeout=60,
             message="scale after the restart applied")

    # etcd stops answering for 5 s; a change submitted meanwhile waits in the API server.
    scaled: dict[str, object] = {}

    def scale_during_freeze() -> None:
        result = cluster.kubectl("scale", "wasmapp", "before", "-n", namespace, "--replicas=3", check=False,
                                 timeout=90)
        scaled.update(rc=result.returncode, err=result.stderr)

    with etcd_frozen():
        writer = threading.Thread(target=scale_during_freeze)
        writer.start()
        time.sleep(5)
    writer.join(90)
    assert scaled.get("rc") == 0, scaled
    wait_for(lambda: get(cluster, "deployment", "before", namespace)["spec"]["replicas"] == 3, timeout=60,
             message="change made during the etcd freeze applied")
    app = wait_for(lambda: (lambda a: a if a["status"].get("readyReplicas") == 3 and condition(a, "Ready")["status"]
                            == "True" else None)(get(cluster, "wasmapp", "before", namespace)),
                   timeout=60, message="3 ready replicas after the freeze")
    assert app["status"]["observedGeneration"] == app["metadata"]["generation"]
    cluster.apply(wasmapp("after-freeze", image), namespace)
    wait_ready(cluster, "after-freeze", namespace)
    assert_alive(operator, pid)
    assert ownership_problems(cluster, namespace) == []


def snapshot(cluster: Cluster, namespace: str, name: str) -> tuple[Any, ...]:
    deployment = get(cluster, "deployment", name, namespace)
    assert deployment is not None
    return deployment["metadata"]["uid"], deployment["metadata"]["generation"], json.dumps(deployment["spec"],
                                                                                            sort_keys=True)


def test_registry_outage_with_an_operator_restart_touches_no_running_app(
        cluster: Cluster, namespace: str, exclusive_operators: DedicatedOperators,
        flaky_registry: RegistryServer) -> None:
    operator = exclusive_operators.start(namespace, "--insecure-registry", flaky_registry.host, name="outage")
    push = Pusher(flaky_registry.host)
    try:
        v1 = artifacts.cncf_module(push, f"e2e/outage-{uuid.uuid4().hex[:8]}", "v1")
    finally:
        push.close()
    pinned = [f"pinned-{i}" for i in range(3)]
    tracked = [f"tracked-{i}" for i in range(2)]
    cluster.apply([wasmapp(n, v1.reference, replicas=2) for n in pinned]
                  + [wasmapp(n, v1.reference, updatePolicy="Track", trackIntervalSeconds=30) for n in tracked],
                  namespace)
    for name in pinned + tracked:
        wait_ready(cluster, name, namespace)
    before = {name: snapshot(cluster, namespace, name) for name in pinned + tracked}

    flaky_registry.stop()
    outage = time.monotonic()
    try:
        operator.kill()
        operator.start()  # a fresh operator with empty caches, while the registry is down
        for name in tracked:  # due for a registry check within one track interval
            during = wait_condition(cluster, "wasmapp", name, namespace, "Ready", "False",
                                    reason="ArtifactUnavailable", timeout=90)
            assert condition(during, "Reconciling")["status"] == "True"
            assert condition(during, "Stalled")["status"] == "False"
            assert "left as it was" in condition(during, "Ready")["message"]
        note(f"registry outage: Track apps ArtifactUnavailable {time.monotonic() - outage:.1f}s into the outage")
        for name in pinned:
            assert condition(get(cluster, "wasmapp", name, namespace), "Ready")["status"] == "True", name
        assert {name: snapshot(cluster, namespace, name) for name in pinned + tracked} == before
    finally:
        flaky_registry.start()
    back = time.monotonic()
    for name in tracked:
        wait_ready(cluster, name, namespace, timeout=90)
    note(f"registry outage: Track apps Ready again {time.monotonic() - back:.1f}s after the registry came back")
    assert {name: snapshot(cluster, namespace, name) for name in pinned + tracked} == before
    assert not bug_records(operator.log_text())


def test_leader_election_fails_over_and_never_runs_two_leaders(cluster: Cluster, namespace: str,
                                                               exclusive_operators: DedicatedOperators,
                                                               example_images: ExampleImages) -> None:
    lease_seconds = 6
    lease = "wasmkube-e2e"
    args = ["--leader-elect", "--leader-election-namespace", namespace, "--leader-election-id", lease,
            "--lease-seconds", str(lease_seconds)]
    image = example_images.module.reference
    replicas = [exclusive_operators.create(namespace, *args, name=f"ha-{i}") for i in range(2)]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda p: p.start(), replicas))

    def holder() -> str:
        return str(lease_spec(cluster, namespace, lease).get("holderIdentity") or "")

    def leader_of(candidates: list[OperatorProcess]) -> OperatorProcess:
        identity = wait_for(holder, timeout=30, interval=0.2, message="a Lease holder")
        return wait_for(lambda: next((p for p in candidates if identity in leader_identities(p.log_text())), None),
                        timeout=10, interval=0.2, message=f"the replica that logged leadership as {identity}")

    leader = leader_of(replicas)
    standby = next(p for p in replicas if p is not leader)
    first_identity = holder()
    cluster.apply(wasmapp("first", image), namespace)
    wait_ready(cluster, "first", namespace)
    assert reconciles(leader.metrics(), "app") > 0
    assert reconciles(standby.metrics()) == 0, "the standby reconciled while another replica led"
    assert leader_identities(standby.log_text()) == []

    killed = time.monotonic()
    leader.kill()
    second_identity = wait_for(lambda: (h := holder()) not in ("", first_identity) and h, timeout=lease_seconds + 15,
                               interval=0.1, message="the standby taking over the Lease")
    crash_failover = time.monotonic() - killed
    assert leader_identities(standby.log_text()) == [second_identity]
    cluster.apply(wasmapp("second", image), namespace)
    wait_ready(cluster, "second", namespace)
    assert reconciles(standby.metrics(), "app") > 0

    third = exclusive_operators.start(namespace, *args, name="ha-2")
    time.sleep(2)  # it has looked at the Lease and stays standby
    assert holder() == second_identity and reconciles(third.metrics()) == 0

    stopping = time.monotonic()
    terminate(standby)  # graceful, as in a rolling update: the Lease is released on the way out
    third_identity = wait_for(lambda: (h := holder()) not in ("", second_identity) and h, timeout=lease_seconds + 15,
                              interval=0.05, message="the last replica taking over the Lease")
    graceful_failover = time.monotonic() - stopping
    assert wait_exit(standby, 30) == 0
    assert leader_identities(third.log_text()) == [third_identity]
    cluster.apply(wasmapp("third", image), namespace)
    wait_ready(cluster, "third", namespace)
    assert reconciles(third.metrics(), "app") > 0
    for name in ("first", "second", "third"):
        wait_ready(cluster, name, namespace)
    assert int(lease_spec(cluster, namespace, lease).get("leaseTransitions") or 0) == 2

    note(f"HA: failover after SIGKILL of the leader {crash_failover:.1f}s (lease {lease_seconds}s), "
         f"after SIGTERM {graceful_failover:.2f}s")
    assert crash_failover <= lease_seconds + 4
    assert graceful_failover < 3
    for process in (leader, standby, third):
        assert not bug_records(process.log_text())


def test_a_partitioned_leader_steps_down_before_the_standby_takes_over(
        cluster: Cluster, namespace: str, exclusive_operators: DedicatedOperators, example_images: ExampleImages,
        tmp_path: Path) -> None:
    """The leader's connections to the API server hang (they stay open and carry nothing) while the
    standby's work: the leader must stop reconciling within its renew deadline, before the standby
    may take the Lease, not when its hung requests finally time out."""
    lease_seconds = 6
    args = ["--leader-elect", "--leader-election-namespace", namespace, "--lease-seconds", str(lease_seconds)]
    image = example_images.module.reference
    proxy = StallableProxy(APISERVER_PORT)
    proxy.start()
    try:
        leader = exclusive_operators.create(namespace, *args, name="partitioned",
                                            kubeconfig=proxy.kubeconfig(cluster.kubeconfig, tmp_path / "proxied"))
        leader.start()
        first = wait_for(lambda: leader_identities(leader.log_text()), timeout=30, message="the proxied replica leads")
        standby = exclusive_operators.start(namespace, *args, name="direct")
        cluster.apply(wasmapp("before", image), namespace)
        wait_ready(cluster, "before", namespace)

        proxy.stall()
        stalled = time.monotonic()
        seen: dict[str, float] = {}

        def both_seen() -> bool:
            if "lost leadership" in leader.log_text():
                seen.setdefault("stepped down", time.monotonic() - stalled)
            if leader_identities(standby.log_text()):
                seen.setdefault("took over", time.monotonic() - stalled)
            return len(seen) == 2

        wait_for(both_seen, timeout=lease_seconds + 40, interval=0.1,
                 message="the partitioned leader stepping down and the standby taking over")
        stepped_down, took_over = seen["stepped down"], seen["took over"]
        taken = leader_identities(standby.log_text())
        lost_at = next(r["timestamp"] for r in log_records(leader.log_text()) if r.get("event") == "lost leadership")
        became_at = next(r["timestamp"] for r in log_records(standby.log_text()) if r.get("event") == "became leader")
        note(f"partition: the cut-off leader stopped {stepped_down:.1f}s into the partition, "
             f"the standby led from {took_over:.1f}s (lease {lease_seconds}s)")
        assert lost_at < became_at, f"two leaders: the old one stopped at {lost_at}, the new one led from {became_at}"
        assert taken != first
        assert lease_spec(cluster, namespace, "wasmkube")["holderIdentity"] == taken[0]
        cluster.apply(wasmapp("after", image), namespace)
        wait_ready(cluster, "after", namespace)
        assert not bug_records(standby.log_text())
    finally:
        proxy.stop()
