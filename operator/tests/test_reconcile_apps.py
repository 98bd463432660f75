"""One WasmApp reconcile, in-process: state in (objects on a fake server and in the caches),
`reconcile_app`, state out (status written, children applied, Events posted, when to look again).

The fake server is `fakekube.FakeClient`; nothing here talks to a cluster, and nothing here
claims to show Kubernetes behaviour (that is what e2e/ is for): these tests pin down what the
reconcile decides from what it reads.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fakekube import World, resolved

from wasmkube.api.artifact import ArtifactKind
from wasmkube.builders.identity import selector_labels
from wasmkube.clients.kube import KubeApiError
from wasmkube.controller.activator_endpoints import StaticActivatorEndpoints
from wasmkube.controller.apps import reconcile_app
from wasmkube.controller.pods import LOOK_INTERVAL_SECONDS, STUCK_AFTER_SECONDS
from wasmkube.controller.result import Result
from wasmkube.registry.errors import ArtifactUnavailable, NotFound, Unauthorized

IMAGE = "registry.example.com/team/hello:1.0"
REPOSITORY = "registry.example.com/team/hello"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
KEY = ("apps", "hello")
LONG_AGO = "2020-01-01T00:00:00Z"


def app_body(generation: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "wasmkube.dev/v1alpha1",
        "kind": "WasmApp",
        "metadata": {"name": "hello", "namespace": "apps", "uid": "hello-uid", "generation": generation},
        "spec": {"image": IMAGE, **spec},
    }


def runtime_body(name: str = "wasmtime", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "wasmkube.dev/v1alpha1",
        "kind": "WasmRuntime",
        "metadata": {"name": name, "uid": f"{name}-uid", "generation": 1},
        "spec": {"handler": name, "default": True, **spec},
    }


def node_body(name: str = "node-1", ready: bool = True, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels or {}},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


class Apps(World):
    """A world with one Ready node and a default runtime, in which `hello` can run."""

    def __init__(self) -> None:
        super().__init__()
        self.add(runtime_body(), self.ctx.store.runtimes)
        self.add(node_body(), self.ctx.store.nodes)
        self.resolver.answers[IMAGE] = resolved(IMAGE, DIGEST_A)

    def add_app(self, **spec: Any) -> None:
        self.add(app_body(**spec), self.ctx.store.apps)

    def app(self) -> dict[str, Any]:
        found = self.client.stored("WasmApp", *KEY)
        assert found is not None
        return found

    def status(self) -> dict[str, Any]:
        return dict(self.app().get("status") or {})

    def condition(self, kind: str) -> dict[str, Any]:
        return next(c for c in self.status()["conditions"] if c["type"] == kind)

    def deployment(self) -> dict[str, Any] | None:
        return self.client.stored("Deployment", *KEY)

    def image(self) -> str:
        deployment = self.deployment()
        assert deployment is not None
        return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])

    def roll_out(self) -> None:
        """The Deployment controller did its work: every replica runs the current template."""

        def done(deployment: dict[str, Any]) -> None:
            replicas = int(deployment["spec"].get("replicas", 1))
            deployment["status"] = {
                "observedGeneration": deployment["metadata"]["generation"],
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
                ],
            }

        self.edit("Deployment", *KEY, self.ctx.store.deployments, done)

    def registry_checked_long_ago(self) -> None:
        """Time passed: a Track app's registry check is due."""

        def age(app: dict[str, Any]) -> None:
            app["status"]["artifact"]["resolvedAt"] = LONG_AGO

        self.edit("WasmApp", *KEY, self.ctx.store.apps, age)


@pytest.fixture
def world() -> Apps:
    return Apps()


async def reconcile(world: Apps) -> Result:
    result = await reconcile_app(world.ctx, KEY)
    assert result is not None
    return result


async def ready_app(world: Apps, **spec: Any) -> None:
    """`hello`, pinned to DIGEST_A and Ready; the Events of getting there are forgotten."""
    world.add_app(**spec)
    await reconcile(world)
    world.roll_out()
    await reconcile(world)
    assert world.condition("Ready")["reason"] == "Available"
    await world.events()
    world.client.events.clear()


def pull_secret(name: str, secret_type: str = "kubernetes.io/dockerconfigjson") -> dict[str, Any]:
    """A pull secret for registry.example.com, user `robot`."""
    auths = {"auths": {"registry.example.com": {"auth": base64.b64encode(b"robot:s3cret").decode()}}}
    data = {".dockerconfigjson": base64.b64encode(json.dumps(auths).encode()).decode()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "apps"},
            "type": secret_type, "data": data}  # fmt: skip


def waiting_pod(reason: str, message: str) -> dict[str, Any]:
    """A pod of `hello` whose container waits, as the kubelet reports it."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hello-6d4c-x1", "namespace": "apps", "labels": selector_labels("hello")},
        "status": {"phase": "Pending", "conditions": [], "containerStatuses": [{
            "name": "app", "image": IMAGE, "imageID": "", "restartCount": 0, "ready": False, "started": False,
            "state": {"waiting": {"reason": reason, "message": message}}}]},
    }  # fmt: skip


async def ready_tracking_app(world: Apps) -> None:
    """`hello` with updatePolicy Track, pinned to DIGEST_A and Ready."""
    world.add_app(updatePolicy="Track", trackIntervalSeconds=60)
    await reconcile_app(world.ctx, KEY)
    world.roll_out()
    await reconcile_app(world.ctx, KEY)
    assert world.condition("Ready")["reason"] == "Available"
    assert world.status()["artifact"]["digest"] == DIGEST_A


# --- Track: a new digest ---------------------------------------------------------------------------


async def test_a_new_digest_is_rolled_out_and_announced(world: Apps) -> None:
    await ready_tracking_app(world)
    world.registry_checked_long_ago()
    world.resolver.answers[IMAGE] = resolved(IMAGE, DIGEST_B)

    await reconcile_app(world.ctx, KEY)

    assert world.status()["artifact"]["digest"] == DIGEST_B
    assert world.image() == f"{REPOSITORY}@{DIGEST_B}"
    new_digest = [e for e in await world.events() if e[1] == "NewDigest"]
    assert new_digest == [("Normal", "NewDigest", f"{IMAGE} moved from {DIGEST_A} to {DIGEST_B}; rolling out")]


@pytest.mark.parametrize("failure", ["runtime deleted", "Deployment refused"])
async def test_a_new_digest_that_does_not_roll_out_is_not_announced(world: Apps, failure: str) -> None:
    """The bug: the registry reported a new digest, a later step failed, and a "NewDigest ...
    rolling out" Event was posted while status kept the old digest and nothing rolled out."""
    await ready_tracking_app(world)
    world.registry_checked_long_ago()
    world.resolver.answers[IMAGE] = resolved(IMAGE, DIGEST_B)
    if failure == "runtime deleted":
        world.ctx.store.runtimes.remove(("", "wasmtime"))
    else:
        world.client.fail_with = KubeApiError(422, "Invalid", "Deployment.apps is invalid: spec.template: bad")

    await reconcile_app(world.ctx, KEY)

    assert world.condition("Stalled")["status"] == "True"
    assert world.status()["artifact"]["digest"] == DIGEST_A
    assert world.image() == f"{REPOSITORY}@{DIGEST_A}"
    assert [e for e in await world.events() if e[1] == "NewDigest"] == []


async def test_a_tracked_digest_that_did_not_move_costs_no_write(world: Apps) -> None:
    await ready_tracking_app(world)
    world.registry_checked_long_ago()
    writes, applies = len(world.client.status_writes), len(world.client.applies)

    result = await reconcile(world)

    assert len(world.resolver.calls) == 2  # the check was due, and made
    # Only resolvedAt would change, and it is not worth a write: no status write, no apply.
    assert (len(world.client.status_writes), len(world.client.applies)) == (writes, applies)
    assert result.requeue_after is not None and 59 <= result.requeue_after <= 60
    assert [e for e in await world.events() if e[1] == "NewDigest"] == []


async def test_a_tracked_app_asks_the_registry_only_when_the_check_is_due(world: Apps) -> None:
    await ready_tracking_app(world)
    result = await reconcile(world)
    assert len(world.resolver.calls) == 1
    assert result.requeue_after is not None and 1 <= result.requeue_after <= 60


async def test_a_tracked_app_keeps_running_while_the_registry_is_down(world: Apps) -> None:
    await ready_tracking_app(world)
    world.registry_checked_long_ago()
    world.resolver.answers[IMAGE] = ArtifactUnavailable("registry did not answer", reference=IMAGE)

    result = await reconcile(world)

    assert result.retry and result.verdict.state == "retrying"
    assert world.condition("Reconciling")["reason"] == "ArtifactUnavailable"
    assert world.condition("Reconciling")["message"].endswith("; the running Deployment is left as it was")
    assert world.image() == f"{REPOSITORY}@{DIGEST_A}"
    assert world.status()["artifact"]["digest"] == DIGEST_A


# --- Pinned -----------------------------------------------------------------------------------------


async def test_a_pinned_app_asks_the_registry_once(world: Apps) -> None:
    await ready_app(world)
    world.registry_checked_long_ago()
    world.resolver.answers[IMAGE] = resolved(IMAGE, DIGEST_B)  # the tag moved: Pinned does not care

    result = await reconcile(world)

    assert len(world.resolver.calls) == 1
    assert result.requeue_after is None
    assert world.image() == f"{REPOSITORY}@{DIGEST_A}"


async def test_a_new_image_is_resolved_and_not_announced_as_a_new_digest(world: Apps) -> None:
    await ready_app(world)
    other = "registry.example.com/team/hello:2.0"
    world.resolver.answers[other] = resolved(other, DIGEST_B)
    world.edit("WasmApp", *KEY, world.ctx.store.apps, lambda app: app["spec"].update(image=other))

    await reconcile(world)

    assert world.status()["artifact"] == {**world.status()["artifact"], "reference": other, "digest": DIGEST_B}
    assert world.image() == f"{REPOSITORY}@{DIGEST_B}"
    assert [e for e in await world.events() if e[1] == "NewDigest"] == []


async def test_pull_secrets_are_checked_on_a_spec_change_without_asking_the_registry(world: Apps) -> None:
    await ready_app(world)

    def add_secret(app: dict[str, Any]) -> None:
        app["spec"]["imagePullSecrets"] = [{"name": "gone"}]
        app["metadata"]["generation"] = 2

    world.edit("WasmApp", *KEY, world.ctx.store.apps, add_secret)
    await reconcile(world)

    assert len(world.resolver.calls) == 1
    assert world.condition("Stalled")["reason"] == "PullSecretNotFound"
    assert world.status()["observedGeneration"] == 2


async def test_pull_secrets_are_read_when_the_registry_is_asked(world: Apps) -> None:
    world.client.put(pull_secret("creds"))
    world.add_app(imagePullSecrets=[{"name": "creds"}])
    await reconcile(world)
    assert ("secrets", "apps", "creds") in world.client.gets
    [(_, credentials)] = world.resolver.calls
    assert credentials is not None and credentials.username == "robot"
    assert world.status()["artifact"]["digest"] == DIGEST_A


# --- verdicts -----------------------------------------------------------------------------------------


async def test_a_new_app_gets_its_children_and_is_rolling_out(world: Apps) -> None:
    world.add_app(service={"port": 80})

    result = await reconcile(world)

    assert (result.verdict.state, result.verdict.reason, result.retry) == ("progressing", "RollingOut", False)
    # The rollout is not stuck yet: look again when it would be.
    assert result.requeue_after == STUCK_AFTER_SECONDS + 1
    assert world.client.stored("Service", *KEY) is not None
    assert world.image() == f"{REPOSITORY}@{DIGEST_A}"
    status = world.status()
    assert status["observedGeneration"] == 1
    assert (status["runtime"], status["runtimeClassName"]) == ("wasmtime", "wasmtime")
    assert (status["deploymentName"], status["serviceName"]) == ("hello", "hello")
    assert status["selector"] == "wasmkube.dev/app=hello"
    assert status["artifact"]["pinnedImage"] == f"{REPOSITORY}@{DIGEST_A}"
    assert world.condition("Reconciling")["status"] == "True"
    assert await world.events() == [("Normal", "RollingOut", "waiting for the Deployment controller to see the change")]


async def test_a_rolled_out_app_is_ready(world: Apps) -> None:
    world.add_app(replicas=2)
    await reconcile(world)
    world.roll_out()

    result = await reconcile(world)

    assert (result.verdict.state, result.verdict.reason, result.requeue_after) == ("ready", "Available", None)
    assert world.condition("Ready") | {"lastTransitionTime": ""} == {
        "type": "Ready", "status": "True", "reason": "Available", "message": "2 of 2 replicas available",
        "observedGeneration": 1, "lastTransitionTime": ""}  # fmt: skip
    assert (world.status()["availableReplicas"], world.status()["readyReplicas"]) == (2, 2)
    assert (await world.events())[-1] == ("Normal", "Available", "2 of 2 replicas available")


async def test_an_unchanged_app_costs_no_write_and_no_event(world: Apps) -> None:
    await ready_app(world, service={"port": 80})
    sent = (len(world.client.status_writes), len(world.client.applies), len(world.client.deletes))

    for _ in range(3):
        result = await reconcile(world)

    assert result.verdict.reason == "Available"
    assert (len(world.client.status_writes), len(world.client.applies), len(world.client.deletes)) == sent
    assert await world.events() == []


async def test_an_outage_before_the_first_pin_is_retried_and_applies_nothing(world: Apps) -> None:
    world.resolver.answers[IMAGE] = ArtifactUnavailable("registry did not answer", reference=IMAGE)
    world.add_app()

    result = await reconcile(world)

    assert (result.verdict.state, result.retry, result.requeue_after) == ("retrying", True, None)
    assert world.condition("Reconciling")["message"] == f"{IMAGE}: registry did not answer"
    assert world.deployment() is None and "artifact" not in world.status()


def _no_default_runtime(world: Apps) -> None:
    world.ctx.store.runtimes.remove(("", "wasmtime"))


def _two_default_runtimes(world: Apps) -> None:
    world.add(runtime_body("wasmedge"), world.ctx.store.runtimes)


def _foreign_deployment(world: Apps) -> None:
    theirs = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hello", "namespace": "apps"},
              "spec": {}}  # fmt: skip
    world.add(theirs, world.ctx.store.deployments)


def _no_ready_node(world: Apps) -> None:
    world.add(node_body(ready=False), world.ctx.store.nodes)


def _stalled_runtime(world: Apps) -> None:
    runtime = runtime_body()
    message = "RuntimeClass wasmtime already exists and is not managed by this object; rename or delete it"
    runtime["status"] = {"observedGeneration": 1, "conditions": [
        {"type": "Stalled", "status": "True", "reason": "NameConflict", "message": message, "observedGeneration": 1,
         "lastTransitionTime": "2026-12-02T21:48:17Z"}]}  # fmt: skip
    world.add(runtime, world.ctx.store.runtimes)


def _refused(world: Apps) -> None:
    world.client.fail_with = KubeApiError(422, "Invalid", 'Deployment.apps "hello" is invalid: spec: bad')


def _container_image(world: Apps) -> None:
    world.resolver.answers[IMAGE] = resolved(IMAGE, DIGEST_A, ArtifactKind.CONTAINER)


def _not_found(world: Apps) -> None:
    world.resolver.answers[IMAGE] = NotFound("manifest unknown", reference=IMAGE)


def _unauthorized(world: Apps) -> None:
    world.resolver.answers[IMAGE] = Unauthorized("401 from the registry", reference=IMAGE)


def _wrong_secret_type(world: Apps) -> None:
    world.client.put(pull_secret("creds", "Opaque"))


STALLS: list[tuple[str, Any, dict[str, Any], str]] = [
    # (reason, how the world is made, the app's spec, a part of the message)
    ("NotFound", _not_found, {}, "manifest unknown"),
    ("Unauthorized", _unauthorized, {}, "401 from the registry"),
    ("PullSecretNotFound", None, {"imagePullSecrets": [{"name": "gone"}]}, "Secret 'gone', which does not exist"),
    ("InvalidPullSecret", _wrong_secret_type, {"imagePullSecrets": [{"name": "creds"}]}, "has type 'Opaque'"),
    ("IncompatibleArtifact", _container_image, {}, "an ordinary container image"),
    ("RuntimeNotFound", None, {"runtime": "missing"}, "WasmRuntime 'missing' does not exist"),
    ("NoDefaultRuntime", _no_default_runtime, {}, "no WasmRuntime is the default for Module"),
    ("AmbiguousDefaultRuntime", _two_default_runtimes, {}, "(wasmedge, wasmtime)"),
    ("VariablesNeedSpinApp", None, {"variables": [{"name": "greeting", "value": "hi"}]}, "Spin"),
    ("NameConflict", _foreign_deployment, {}, "Deployment apps/hello already exists"),
    ("NoEligibleNodes", _no_ready_node, {}, "none Ready and schedulable for any node"),
    ("InvalidSpec", _refused, {}, "the API server refused a generated object"),
    ("RuntimeStalled", _stalled_runtime, {}, "WasmRuntime 'wasmtime' is Stalled (NameConflict): RuntimeClass wasmtime"),
]


@pytest.mark.parametrize(("reason", "setup", "spec", "message"), STALLS, ids=[s[0] for s in STALLS])
async def test_a_spec_that_cannot_work_is_stalled_and_not_retried(
    world: Apps, reason: str, setup: Any, spec: dict[str, Any], message: str
) -> None:
    if setup is not None:
        setup(world)
    world.add_app(**spec)

    result = await reconcile(world)

    assert (result.verdict.state, result.verdict.reason, result.retry) == ("stalled", reason, False)
    stalled = world.condition("Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", reason)
    assert message in stalled["message"]
    assert world.condition("Ready")["status"] == "False"
    assert ("Warning", reason, stalled["message"]) in await world.events()


async def test_a_stall_of_a_running_app_leaves_its_deployment_alone(world: Apps) -> None:
    await ready_app(world)
    world.edit("WasmApp", *KEY, world.ctx.store.apps, lambda app: app["spec"].update(runtime="missing"))
    applies = len(world.client.applies)

    await reconcile(world)

    assert world.condition("Stalled")["reason"] == "RuntimeNotFound"
    assert len(world.client.applies) == applies and world.image() == f"{REPOSITORY}@{DIGEST_A}"
    assert world.status()["deploymentName"] == "hello" and world.status()["artifact"]["digest"] == DIGEST_A


async def test_a_serving_app_stays_ready_when_its_runtime_stalls(world: Apps) -> None:
    """Its pods serve; the runtime's own status carries the problem."""
    await ready_app(world)
    _stalled_runtime(world)

    assert (await reconcile(world)).verdict.reason == "Available"


async def test_nothing_is_applied_while_the_runtime_is_stalled(world: Apps) -> None:
    """Pods created now would take a foreign RuntimeClass's scheduling for good."""
    _stalled_runtime(world)
    world.add_app()

    await reconcile(world)

    assert world.deployment() is None and world.client.applies == []
    assert world.status()["runtime"] == "wasmtime"


async def test_a_changed_app_on_a_stalled_runtime_is_held_not_ready(world: Apps) -> None:
    await ready_app(world)
    _stalled_runtime(world)
    world.edit("WasmApp", *KEY, world.ctx.store.apps,
               lambda app: app["spec"].update(replicas=3) or app["metadata"].update(generation=2))
    applies = len(world.client.applies)

    result = await reconcile(world)

    assert (result.verdict.reason, len(world.client.applies)) == ("RuntimeStalled", applies)
    assert world.deployment()["spec"]["replicas"] == 1


async def test_a_runtime_without_ready_nodes_is_judged_by_the_app_itself(world: Apps) -> None:
    """The app's own tolerations may reach nodes the runtime's do not: NoEligibleNodes on the
    runtime does not hold the app back."""
    runtime = runtime_body()
    runtime["status"] = {"observedGeneration": 1, "conditions": [
        {"type": "Stalled", "status": "True", "reason": "NoEligibleNodes", "message": "no node matches",
         "observedGeneration": 1, "lastTransitionTime": "2026-12-02T21:48:17Z"}]}  # fmt: skip
    world.add(runtime, world.ctx.store.runtimes)
    world.add_app()

    assert (await reconcile(world)).verdict.reason == "RollingOut"


async def test_a_runtime_stall_for_an_older_spec_is_not_reported(world: Apps) -> None:
    """The runtime has not been reconciled since its spec changed: its Stalled may be stale."""
    _stalled_runtime(world)
    world.edit("WasmRuntime", "", "wasmtime", world.ctx.store.runtimes,
               lambda runtime: runtime["metadata"].update(generation=2))
    world.add_app()

    assert (await reconcile(world)).verdict.reason == "RollingOut"
    assert world.deployment() is not None


async def test_a_spec_the_schema_refuses_is_stalled_once(world: Apps) -> None:
    world.add_app(replicas=-1)

    result = await reconcile(world)
    again = await reconcile(world)

    assert (result.verdict.reason, result.retry, again.verdict.reason) == ("InvalidSpec", False, "InvalidSpec")
    assert world.condition("Stalled")["message"].startswith("spec does not match the schema")
    assert len(world.client.status_writes) == 1 and world.client.applies == []


@pytest.mark.parametrize(
    ("reason", "deployment_status"),
    [
        ("PodCreationFailed", {"conditions": [{"type": "ReplicaFailure", "status": "True", "message": "quota"}]}),
        ("ProgressDeadlineExceeded",
         {"conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
    ],
)  # fmt: skip
async def test_a_failing_rollout_is_stalled(world: Apps, reason: str, deployment_status: dict[str, Any]) -> None:
    world.add_app()
    await reconcile(world)
    world.edit("Deployment", *KEY, world.ctx.store.deployments,
               lambda d: d.update(status={"observedGeneration": 1, **deployment_status}))  # fmt: skip

    result = await reconcile(world)

    assert (result.verdict.state, result.verdict.reason, result.retry) == ("stalled", reason, False)
    assert world.condition("Stalled")["status"] == "True"


async def test_a_stuck_rollout_reports_why_its_pods_fail(world: Apps) -> None:
    world.add_app()
    await reconcile(world)

    def stuck(deployment: dict[str, Any]) -> None:
        deployment["metadata"]["creationTimestamp"] = LONG_AGO
        deployment["status"] = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1}

    world.edit("Deployment", *KEY, world.ctx.store.deployments, stuck)
    world.client.put(waiting_pod("ImagePullBackOff", "Back-off pulling image"))

    result = await reconcile(world)

    assert (result.verdict.state, result.verdict.reason) == ("stalled", "ImagePullFailed")
    assert result.requeue_after == LOOK_INTERVAL_SECONDS
    assert "ImagePullBackOff" in world.condition("Stalled")["message"]


S2Z: dict[str, Any] = {"scaleToZero": {"idleSeconds": 30, "wakeTimeoutSeconds": 10}, "service": {"port": 80}}


async def scaled_to_zero(world: Apps) -> Result:
    world.add_app(**S2Z)
    await reconcile(world)

    def activator_scaled_it_down(deployment: dict[str, Any]) -> None:
        deployment["spec"]["replicas"] = 0
        deployment["metadata"]["generation"] += 1
        deployment["status"] = {"observedGeneration": deployment["metadata"]["generation"], "replicas": 0}

    world.edit("Deployment", *KEY, world.ctx.store.deployments, activator_scaled_it_down)
    return await reconcile(world)


async def test_an_idle_app_at_zero_is_ready(world: Apps) -> None:
    world.ctx.activator = StaticActivatorEndpoints(["10.222.0.1:8012"])

    result = await scaled_to_zero(world)

    assert (result.verdict.state, result.verdict.reason) == ("ready", "ScaledToZero")
    assert world.client.stored("Deployment", *KEY)["spec"]["replicas"] == 0  # type: ignore[index]
    slice_ = world.client.stored("EndpointSlice", *KEY)
    assert slice_ is not None and slice_["metadata"]["labels"]["wasmkube.dev/target"] == "activator"


async def test_an_app_at_zero_without_an_activator_says_so(world: Apps) -> None:
    result = await scaled_to_zero(world)
    assert (result.verdict.state, result.verdict.reason, result.retry) == ("progressing", "ActivatorUnavailable", False)
    assert world.condition("Reconciling")["reason"] == "ActivatorUnavailable"


# --- gone ---------------------------------------------------------------------------------------------


async def test_an_app_that_is_gone_or_going_is_not_reconciled(world: Apps) -> None:
    assert await reconcile_app(world.ctx, KEY) is None
    world.add(app_body() | {"metadata": {**app_body()["metadata"], "deletionTimestamp": LONG_AGO}},
              world.ctx.store.apps)  # fmt: skip
    assert await reconcile_app(world.ctx, KEY) is None
    assert world.client.applies == [] and world.client.status_writes == []
