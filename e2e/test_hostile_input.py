"""Hostile and malformed WasmApps against the real API server and the session operator.

Every manifest must end one of two ways: refused at admission with a message that names the
problem, or accepted and then Ready or Stalled (with a reason) for its current generation. None
may be left without a status ("lost"). Meanwhile a canary app elsewhere keeps being served, the
operator never crashes or logs a bug, and nothing it creates lands outside the app's namespace.

Generated with Hypothesis, bounded and derandomized so that CI runs the same cases every time;
shrinking is off (a failing case is reported as it was submitted, which is what matters here).
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from e2e.support import REGISTRY, Cluster, wait_for
from e2e.support.apps import get, wait_ready, wasmapp
from e2e.support.operator import OperatorProcess
from e2e.support.operator_fixtures import ExampleImages
from e2e.support.reliability import (
    CHILD_KINDS,
    MANAGED,
    TALLY,
    alive,
    bug_records,
    controller_ref,
    items,
    names,
    note,
    ownership_problems,
    settle,
)

GENERATED_EXAMPLES = 60
SETTLE_SECONDS = 150
MIB = 1024 * 1024

# Values people paste into fields where they do not belong.
INJECTIONS = ["$(rm -rf /)", "'; DROP TABLE wasmapps; --", "{{template}}", "{{ .Values.secret }}", "${HOME}",
              "`id`", "<script>alert(1)</script>", "../../etc/passwd", "\u202egnp.exe", "ünïcödé ☃ 🚀",
              "line\nbreak", "nul\u0000byte", ""]
# Where the "clear message" must point: a field path under spec or metadata, or the size limit.
NAMES_THE_PROBLEM = re.compile(r"\b(spec|metadata)(\.[\w.\[\]-]+)?(: |\")|too large|too long", re.I)


@dataclass
class Submitted:
    label: str
    manifest: dict[str, Any]
    accepted: bool
    stderr: str
    expect: str | None = None  # "refused:<text>", "ready", "stalled", "stalled:<Reason>"

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])


def submit(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> tuple[bool, str]:
    """`kubectl create` (not apply: client-side apply would copy a 1 MiB spec into an annotation
    and fail in kubectl's own bookkeeping rather than at admission)."""
    result = cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=False,
                             timeout=60)
    return result.returncode == 0, result.stderr.strip()


# -- names ------------------------------------------------------------------------------------

def name_of(shape: str, n: int) -> str:
    """A unique name of the given shape (the counter keeps generated cases from colliding)."""
    head = f"h{n:03d}"
    if shape == "label63":
        return head + "-" + "a" * (63 - len(head) - 1)
    if shape == "label64":
        return head + "-" + "b" * (64 - len(head) - 1)
    if shape in ("subdomain253", "too-long254"):
        total = 253 if shape == "subdomain253" else 254
        name = head
        while len(name) < total:
            name += "." + "c" * min(62, total - len(name) - 1)
        return name
    return {
        "plain": head,
        "dots": f"{head}.with.dots",
        "digit-first": f"{n:03d}h",
        "upper": f"H{n:03d}",
        "unicode": f"{head}-ünï",
        "injection": f"{head}$(rm -rf /)",
        "trailing-dash": f"{head}-",
    }[shape]


NAME_SHAPES = ["plain"] * 6 + ["label63", "label64", "subdomain253", "too-long254", "dots", "digit-first", "upper",
                               "unicode", "injection", "trailing-dash"]


# -- spec fields ------------------------------------------------------------------------------

text = st.one_of(st.sampled_from(INJECTIONS), st.text(max_size=30))
short_text = st.one_of(st.sampled_from([s for s in INJECTIONS if len(s) <= 63]), st.text(max_size=20))

FIELD_VALUES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "replicas": st.sampled_from([0, 1, 2, 1, -1, 1001, 10**20, "three", 1.5, 2.0, True, None]).map(
        lambda v: {"replicas": v}),
    "env": st.lists(st.fixed_dictionaries({"name": text, "value": text}), max_size=3).map(lambda v: {"env": v}),
    "env-conflict": st.just({"env": [{"name": "BOTH", "value": "x",
                                      "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}),
    "command": st.lists(text, max_size=3).map(lambda v: {"command": v}),
    "args": st.lists(text, max_size=4).map(lambda v: {"args": v}),
    "ports": st.lists(
        st.fixed_dictionaries(
            {"containerPort": st.sampled_from([8080, 80, 8080, 0, 65536, -1, "http"])},
            optional={"name": st.sampled_from(["http", "metrics", "HTTP", "a" * 16, "$(rm)"]),
                      "protocol": st.sampled_from(["TCP", "UDP", "SCTP", "HTTP"])}),
        max_size=3).map(lambda v: {"ports": v}),
    "service": st.sampled_from([
        {}, {"port": 80}, {"port": 0}, {"port": 70000}, {"type": "NodePort"}, {"type": "ExternalName"},
        {"type": "LoadBalancer", "annotations": {"x": "$(rm -rf /)", "{{template}}": "v"}}, {"enabled": False},
        {"targetPort": "no-such-port"}, {"targetPort": 99999}, {"targetPort": "$(rm)"},
    ]).map(lambda v: {"service": v}),
    "podLabels": st.dictionaries(
        st.sampled_from(["team", "wasmkube.dev/app", "app.kubernetes.io/managed-by", "$(rm -rf /)", "x" * 64]),
        short_text, max_size=2).map(lambda v: {"podLabels": v}),
    "podAnnotations": st.dictionaries(
        st.sampled_from(["note", "{{template}}", "example.com/x", "kubectl.kubernetes.io/default-container"]),
        text, max_size=2).map(lambda v: {"podAnnotations": v}),
    "nodeSelector": st.sampled_from([
        {"kubernetes.io/os": "linux"}, {"no-such": "label"}, {"$(rm -rf /)": "x"},
        {"wasmkube.dev/shim-wasmtime": "ready"}, {"kubernetes.io/hostname": "container-node-1"},
    ]).map(lambda v: {"nodeSelector": v}),
    "tolerations": st.sampled_from([
        [{"operator": "Exists"}], [{"key": "x", "operator": "Exists", "value": "v"}],
        [{"key": "", "operator": "Equal"}],
        [{"key": "wasmkube.dev/wasm-only", "operator": "Exists", "effect": "NoSchedule"}],
        [{"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": -5}],
    ]).map(lambda v: {"tolerations": v}),
    "runtime": st.sampled_from(["wasmtime", "spin", "no-such-runtime", "Bad_Runtime", "r" * 254]).map(
        lambda v: {"runtime": v}),
    "updatePolicy": st.sampled_from([
        {"updatePolicy": "Track"}, {"updatePolicy": "Track", "trackIntervalSeconds": 30}, {"updatePolicy": "Pinned"},
        {"updatePolicy": "Sometimes"}, {"trackIntervalSeconds": 60},
        {"updatePolicy": "Track", "trackIntervalSeconds": 5},
        {"updatePolicy": "Track", "trackIntervalSeconds": 10**9},
    ]),
    "autoscaling": st.sampled_from([
        {"autoscaling": {"maxReplicas": 2}, "resources": {"requests": {"cpu": "10m"}}},
        {"autoscaling": {"minReplicas": 5, "maxReplicas": 1}, "resources": {"requests": {"cpu": "10m"}}},
        {"autoscaling": {"maxReplicas": 2}},
        {"autoscaling": {"maxReplicas": 2, "targetMemoryUtilizationPercentage": 50},
         "resources": {"requests": {"cpu": "10m"}}},
        {"autoscaling": {"maxReplicas": 3}, "replicas": 2, "resources": {"requests": {"cpu": "10m"}}},
    ]),
    "resources": st.sampled_from([
        {"requests": {"cpu": "10m", "memory": "16Mi"}}, {"requests": {"cpu": "-1"}}, {"requests": {"cpu": "1e100"}},
        {"requests": {"cpu": "1"}, "limits": {"cpu": "1m"}}, {"requests": {"cpu": "lots"}},
        {"requests": {"example.com/widget": "1"}}, {"limits": {"memory": 5}},
    ]).map(lambda v: {"resources": v}),
    "serviceAccountName": st.sampled_from(["default", "no-such-sa", "Bad SA"]).map(
        lambda v: {"serviceAccountName": v}),
    "priorityClassName": st.sampled_from(["no-such-priority", "system-node-critical"]).map(
        lambda v: {"priorityClassName": v}),
    "imagePullSecrets": st.sampled_from([[{"name": "no-such-secret"}], [{"name": "$(rm)"}], [{}]]).map(
        lambda v: {"imagePullSecrets": v}),
    "volumes": st.sampled_from([
        {"volumes": [{"name": "data", "emptyDir": {}}], "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
        {"volumes": [{"name": "host", "hostPath": {"path": "/"}}],
         "volumeMounts": [{"name": "host", "mountPath": "/host"}]},
        {"volumes": [{"name": "bad", "bogusSource": {}}]},
        {"volumes": [{"name": "two", "emptyDir": {}, "hostPath": {"path": "/"}}]},
        {"volumes": [{"name": "d", "emptyDir": {}}, {"name": "d", "emptyDir": {}}]},
        {"volumes": [{"name": "d", "emptyDir": {}}], "volumeMounts": [{"name": "d", "mountPath": "relative"}]},
    ]),
    "affinity": st.sampled_from([{}, {"nodeAffinity": "not-an-object"}]).map(lambda v: {"affinity": v}),
    "strategy": st.sampled_from([
        {"type": "Recreate"}, {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}},
        {"rollingUpdate": {"maxSurge": "200%"}}, {"rollingUpdate": {"maxUnavailable": "abc"}},
    ]).map(lambda v: {"strategy": v}),
    "probes": st.sampled_from([
        {"readiness": {"path": "/healthz"}}, {"readiness": {"path": "no-slash"}}, {"liveness": {"port": "nope"}},
        {"useDefaults": False}, {"startup": {"periodSeconds": 0}},
    ]).map(lambda v: {"probes": v}),
    "envFrom": st.sampled_from([
        [{"configMapRef": {"name": "missing"}}], [{"configMapRef": {"name": "a"}, "secretRef": {"name": "b"}}],
    ]).map(lambda v: {"envFrom": v}),
    "topologySpreadConstraints": st.just({"topologySpreadConstraints": [{"maxSkew": 0}]}),
    "unknown-field": st.just({"bogusField": 1}),
}


def image_for(kind: str, images: ExampleImages) -> str:
    return {
        "module": images.module.reference,
        "component": images.component.reference,
        "spin": images.spin.reference,
        "container": images.container.reference,
        "missing": f"{REGISTRY}/e2e/hostile-missing:v1",
        "bogus-digest": f"{REGISTRY}/examples/hello-wasi@sha256:{'0' * 64}",
        "long": f"{REGISTRY}/" + "/".join(["abcdefgh" * 7] * 7) + ":v1",
        "too-long": f"{REGISTRY}/" + "a" * 600 + ":v1",
        "injection": "$(rm -rf /)",
        "sql": "'; DROP TABLE images; --",
        "template": "{{template}}",
        "unicode": "régistry.example/äpp:v1",
        "not-a-string": 42,
    }[kind]  # type: ignore[return-value]


IMAGE_KINDS = ["module"] * 6 + ["component", "spin", "container", "missing", "bogus-digest", "long", "too-long",
                                "injection", "sql", "template", "unicode", "not-a-string"]


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    """(name shape, image kind, extra spec fields): at most four fields, so many cases are valid."""
    shape = draw(st.sampled_from(NAME_SHAPES))
    image = draw(st.sampled_from(IMAGE_KINDS))
    fields = draw(st.lists(st.sampled_from(sorted(FIELD_VALUES)), max_size=4, unique=True))
    spec: dict[str, Any] = {}
    for field in fields:
        spec.update(draw(FIELD_VALUES[field]))
    return shape, image, spec


def manifest(name: str, image: Any, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    body = wasmapp(name, image, **spec)
    if labels:
        body["metadata"]["labels"] = labels
    return body


def explicit_cases(images: ExampleImages, counter: Iterator[int]) -> list[tuple[str, dict[str, Any], str | None]]:
    """Hand-picked cases with the outcome each must have."""
    module = images.module.reference
    def n(shape: str = "plain") -> str:
        return name_of(shape, next(counter))

    forged_status = manifest(n(), f"{REGISTRY}/e2e/hostile-missing:v1")
    forged_status["status"] = {"observedGeneration": 1, "conditions": [
        {"type": "Ready", "status": "True", "reason": "Forged", "message": "", "observedGeneration": 1,
         "lastTransitionTime": "2020-01-01T00:00:00Z"}]}
    return [
        ("name of 253 characters", manifest(n("subdomain253"), module), "ready"),
        ("name of 63 characters", manifest(n("label63"), module, service={}), "ready"),
        ("name of 64 characters", manifest(n("label64"), module, service={}), "ready"),
        ("name of 254 characters", manifest(n("too-long254"), module), "refused:metadata.name"),
        ("1 MiB env value", manifest(n(), module, env=[{"name": "BIG", "value": "x" * (MIB - 1024)}]), "ready"),
        ("3 MiB spec", manifest(n(), module, env=[{"name": f"BIG{i}", "value": "y" * MIB} for i in range(3)]),
         "refused:too large"),
        ("forged Ready status", forged_status, "stalled:NotFound"),
        ("shell in image", manifest(n(), "$(rm -rf /)"), "refused:spec.image"),
        ("template in image", manifest(n(), "{{template}}"), "refused:spec.image"),
        ("replicas out of range", manifest(n(), module, replicas=10**12), "refused:spec.replicas"),
        ("replicas and autoscaling", manifest(n(), module, replicas=2, autoscaling={"maxReplicas": 3},
                                              resources={"requests": {"cpu": "10m"}}), "refused:mutually exclusive"),
        ("missing priority class", manifest(n(), module, priorityClassName="no-such-priority"),
         "stalled:PodCreationFailed"),
        ("missing service account", manifest(n(), module, serviceAccountName="no-such-sa"),
         "stalled:PodCreationFailed"),
        ("pod label takeover", manifest(n(), module, podLabels={"wasmkube.dev/app": "someone-else",
                                                                "app.kubernetes.io/managed-by": "me"}), "ready"),
        ("shell as label value", manifest(n(), module, podLabels={"team": "$(rm -rf /)"}),
         "refused:every label value"),
        ("40 long bad annotation keys", manifest(n(), module, podAnnotations={
            f"{i:02d}{'k' * 1000}$": "v" for i in range(40)}), "refused:every annotation key"),
        ("32 long bad node selector keys", manifest(n(), module, nodeSelector={
            f"{i:02d}{'n' * 1000}$": "v" for i in range(32)}), "refused:every nodeSelector key"),
        ("40k-character annotation key", manifest(n(), module, podAnnotations={"k" * 40000 + "$": "v"}),
         "refused:every annotation key"),
        # Affinity is passed through to the Deployment unchecked. The API server's refusal of the
        # Deployment quotes every bad key in full: a reason longer than a condition message may be
        # (32 KiB), which must not cost the app its status.
        ("40 long bad affinity keys", manifest(n(), module, affinity={"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": f"{i:02d}{'a' * 1000}$", "operator": "Exists"} for i in range(40)]}]}}}),
         "stalled:InvalidSpec"),
        ("unknown runtime", manifest(n(), module, runtime="no-such-runtime"), "stalled:RuntimeNotFound"),
        ("container image", manifest(n(), images.container.reference), "stalled:IncompatibleArtifact"),
        ("hostile labels on the app", manifest(n(), module, labels={"app.kubernetes.io/managed-by": "wasmkube",
                                                                     "wasmkube.dev/app": "other"}), "ready"),
        ("injection everywhere", manifest(n(), module, command=["$(rm -rf /)"], args=["'; DROP TABLE x; --"],
                                          env=[{"name": "T", "value": "{{template}}"}],
                                          podAnnotations={"note": "${HOME} `id`"}), "ready"),
    ]


def refusal_is_clear(stderr: str) -> bool:
    return bool(NAMES_THE_PROBLEM.search(stderr))


@pytest.fixture
def canary(cluster: Cluster, operator: OperatorProcess, example_images: ExampleImages) -> Iterator[str]:
    namespace = f"e2e-hostile-canary-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("label", "namespace", namespace, "wasmkube.dev/e2e=true")
    try:
        cluster.apply(wasmapp("canary", example_images.module.reference, replicas=1), namespace)
        wait_ready(cluster, "canary", namespace)
        yield namespace
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)


def scale_canary(cluster: Cluster, namespace: str, replicas: int) -> None:
    cluster.kubectl("scale", "wasmapp", "canary", "-n", namespace, f"--replicas={replicas}")
    wait_for(lambda: (get(cluster, "deployment", "canary", namespace) or {})["spec"]["replicas"] == replicas,
             timeout=60, interval=0.5, message=f"the canary scaled to {replicas} during the campaign")


def test_hostile_manifests_are_refused_or_settle(cluster: Cluster, namespace: str, operator: OperatorProcess,
                                                 example_images: ExampleImages, canary: str) -> None:
    pid = operator.pid
    log_offset = len(operator.log_text())
    runtime_classes = names(items(cluster, "runtimeclasses.node.k8s.io"))
    counter = itertools.count()
    submitted: list[Submitted] = []
    seen: set[str] = set()

    planned: list[tuple[str, dict[str, Any], str | None]] = list(explicit_cases(example_images, counter))

    @settings(max_examples=GENERATED_EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck), print_blob=False)
    @given(cases())
    def campaign(case: tuple[str, str, dict[str, Any]]) -> None:
        shape, image, spec = case
        key = json.dumps(case, sort_keys=True, default=str)
        assume(key not in seen)  # Hypothesis repeats small cases; every submission should be new
        seen.add(key)
        body = {"apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmApp",
                "metadata": {"name": name_of(shape, next(counter))},
                "spec": {"image": image_for(image, example_images), **spec}}
        planned.append((f"generated {shape}/{image}/{','.join(sorted(spec)) or '-'}", body, None))

    campaign()

    def send(case: tuple[str, dict[str, Any], str | None]) -> Submitted:
        label, body, expect = case
        accepted, stderr = submit(cluster, namespace, body)
        return Submitted(label, body, accepted, stderr, expect)

    # Four kubectl processes at a time; the canary is scaled between the two halves.
    half = len(planned) // 2
    with ThreadPoolExecutor(4) as pool:
        submitted.extend(pool.map(send, planned[:half]))
        scale_canary(cluster, canary, 2)
        submitted.extend(pool.map(send, planned[half:]))
    scale_canary(cluster, canary, 3)

    refused = [s for s in submitted if not s.accepted]
    accepted = [s for s in submitted if s.accepted]
    unclear = [f"{s.label}: {s.stderr[:300]}" for s in refused if not refusal_is_clear(s.stderr)]
    assert not unclear, "refused without naming the problem:\n" + "\n".join(unclear)
    for _ in refused:
        TALLY.refuse()

    verdicts = settle(cluster, namespace, [s.name for s in accepted], timeout=SETTLE_SECONDS)
    TALLY.count(verdicts)
    counts = {"ready": sum(v == "ready" for v in verdicts.values()),
              "stalled": sum(v.startswith("stalled:") for v in verdicts.values())}
    reasons = sorted({v.split(":", 1)[1] for v in verdicts.values() if v.startswith("stalled:")})
    note(f"hostile input: {len(submitted)} manifests, {len(refused)} refused at admission, {counts['ready']} Ready, "
         f"{counts['stalled']} Stalled ({', '.join(reasons)})")
    for s in submitted:  # the whole campaign, shown when the test fails
        print(f"{s.label[:70]:<70} {verdicts[s.name] if s.accepted else 'refused: ' + s.stderr[-150:]!r}")
    lost = [f"{s.label} ({s.name[:40]}): {verdicts[s.name]}" for s in accepted
            if verdicts[s.name] != "ready" and not verdicts[s.name].startswith("stalled:")]
    assert not lost, "accepted but neither Ready nor Stalled:\n" + "\n".join(lost)

    wrong = []
    for s in submitted:
        if s.expect is None:
            continue
        outcome = verdicts.get(s.name, "refused") if s.accepted else "refused"
        if s.expect.startswith("refused:"):
            if s.accepted or s.expect.split(":", 1)[1].lower() not in s.stderr.lower():
                wrong.append(f"{s.label}: expected {s.expect}, got {outcome} {s.stderr[:200]}")
        elif not outcome.startswith(s.expect):
            wrong.append(f"{s.label}: expected {s.expect}, got {outcome}")
    assert not wrong, "\n".join(wrong)

    # What exists for the accepted apps is theirs, in their namespace, and named within limits.
    apps = {a["metadata"]["name"]: a for a in items(cluster, "wasmapps.wasmkube.dev", namespace)}
    uids = {a["metadata"]["uid"] for a in apps.values()}
    for kind in CHILD_KINDS:
        for obj in items(cluster, kind, None, MANAGED):
            ref = controller_ref(obj) or {}
            if ref.get("uid") in uids:
                assert obj["metadata"]["namespace"] == namespace, f"{kind} {obj['metadata']['name']} escaped"
                assert len(obj["metadata"]["name"]) <= 63
    for name, result in verdicts.items():
        if result == "ready":
            deployment = get(cluster, "deployment", apps[name]["status"]["deploymentName"], namespace)
            assert deployment is not None and controller_ref(deployment)["uid"] == apps[name]["metadata"]["uid"]
            selector = deployment["spec"]["selector"]["matchLabels"]
            assert deployment["spec"]["template"]["metadata"]["labels"]["wasmkube.dev/app"] == \
                selector["wasmkube.dev/app"], "a podLabel took over the selector"
    assert names(items(cluster, "runtimeclasses.node.k8s.io")) == runtime_classes
    wait_for(lambda: not ownership_problems(cluster), timeout=60, interval=2,
             message="every wasmkube child in the cluster owned by a live WasmApp of its namespace")

    assert operator.pid == pid and alive(operator) and operator.healthy(), "the operator crashed or restarted"
    bugs = bug_records(operator.log_text()[log_offset:])
    assert not bugs, f"the operator logged {len(bugs)} reconcile bug(s); first: {json.dumps(bugs[0])[:3000]}"
    wait_ready(cluster, "canary", canary)
