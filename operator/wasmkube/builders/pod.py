"""The pod template of a WasmApp: one Wasm container, locked down to the `restricted` standard."""

from __future__ import annotations

from typing import Any

from wasmkube.api.artifact import ArtifactKind
from wasmkube.api.telemetry import merged_otel
from wasmkube.api.wasmapp import ContainerPort, HttpProbe, WasmApp
from wasmkube.api.wasmruntime import WasmRuntime
from wasmkube.builders.identity import curated_labels
from wasmkube.errors import SpecError

CONTAINER_NAME = "app"
# runwasi takes the module (and `#function`) from arg0 and ignores it for OCI Wasm layers; CRI
# refuses a container without a command, and Wasm artifacts carry none. "/" is the neutral arg0.
DEFAULT_COMMAND = ["/"]
# A fixed unprivileged identity: `runAsNonRoot` alone cannot be verified for images without USER.
POD_USER_ID = 65532

# Default probe timings. A Wasm module starts in milliseconds, so the startup probe asks every
# second; but a large component (an interpreter compiled to Wasm, 10-30 MB) can take tens of seconds
# to compile cold on a busy node, so it gets two minutes before the pod counts as failed to start.
# Timeouts allow for the first requests instantiating the module; liveness is the most patient,
# since restarting a busy but healthy pod only makes things worse.
_DEFAULT_PROBES: dict[str, dict[str, int]] = {
    "startupProbe": {"periodSeconds": 1, "timeoutSeconds": 2, "failureThreshold": 120},
    "readinessProbe": {"periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 3},
    "livenessProbe": {"periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
}
# Which declared probe's path and port the defaulted ones reuse: the user's readiness endpoint is
# the one that says "I serve"; `/` may not even be routed by the app.
_PATH_SOURCES = ("readinessProbe", "startupProbe", "livenessProbe")

# Shutdown of an HTTP app: the endpoints controller and every kube-proxy (or load balancer) learn
# of a terminating pod a moment after the kubelet does; requests keep arriving meanwhile. The
# kubelet's own preStop `sleep` holds SIGTERM back for that long (no shell needed in the image).
DEFAULT_DRAIN_SECONDS = 5
KUBERNETES_GRACE_SECONDS = 30  # terminationGracePeriodSeconds when a pod does not set it
GRACE_AFTER_DRAIN_SECONDS = 10  # what the module gets after the drain to finish in-flight requests


def _dump(model: Any) -> Any:
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


def is_http_port(port: ContainerPort) -> bool:
    name = port.name or ""
    return port.protocol.value == "TCP" and (name == "http" or name.startswith("http-"))


def effective_ports(app: WasmApp, runtime: WasmRuntime) -> list[ContainerPort]:
    """Declared ports; an app that only asks for a Service gets the runtime's default port."""
    if app.spec.ports:
        return list(app.spec.ports)
    if app.spec.service and app.spec.service.enabled:
        return [ContainerPort(name="http", container_port=runtime.spec.default_port)]
    return []


def http_port(ports: list[ContainerPort]) -> ContainerPort | None:
    """The app's HTTP port: the first TCP port named `http` or `http-*`."""
    return next((p for p in ports if is_http_port(p)), None)


def _explicit_probe(probe: HttpProbe, default_port: int | str | None) -> dict[str, Any]:
    port = probe.port if probe.port is not None else default_port
    if port is None:
        raise SpecError("InvalidProbe", "a probe needs a port: declare an http port or set the probe's port")
    timings = probe.model_dump(by_alias=True, exclude_none=True, exclude={"path", "port"}, mode="json")
    return {"httpGet": {"path": probe.path, "port": port}, **timings}


def build_probes(app: WasmApp, ports: list[ContainerPort]) -> dict[str, Any]:
    """Explicit probes as given; missing ones defaulted when the app serves HTTP.

    A defaulted probe GETs the path (and port) of the user's own readiness probe, else of their
    startup or liveness probe, else `/` on the HTTP port: declaring `readiness: {path: /healthz}`
    alone must not leave a startup probe failing on a `/` the app does not route."""
    probes = app.spec.probes
    use_defaults = probes.use_defaults if probes else True
    http = http_port(ports)
    default_port: int | str | None = (http.name or http.container_port) if http else None
    declared = {
        "startupProbe": probes.startup if probes else None,
        "readinessProbe": probes.readiness if probes else None,
        "livenessProbe": probes.liveness if probes else None,
    }
    out: dict[str, Any] = {
        field_name: _explicit_probe(probe, default_port) for field_name, probe in declared.items() if probe is not None
    }
    if not use_defaults or default_port is None:
        return out
    target = next((out[f]["httpGet"] for f in _PATH_SOURCES if f in out), {"path": "/", "port": default_port})
    for field_name in declared:
        if field_name not in out:
            out[field_name] = {"httpGet": dict(target), **_DEFAULT_PROBES[field_name]}
    return {f: out[f] for f in declared if f in out}


def _spin_variables(app: WasmApp, kind: ArtifactKind | None) -> list[dict[str, Any]]:
    variables = app.spec.variables or []
    if not variables:
        return []
    if kind is not ArtifactKind.SPIN_APP:
        what = f"a {kind.value}" if kind is not None else "not known to be a Spin app"
        raise SpecError(
            "VariablesNeedSpinApp",
            f"spec.variables are Spin application variables, but {app.spec.image} is {what}; "
            "use env for other apps",
        )
    env: list[dict[str, Any]] = []
    for variable in variables:
        entry: dict[str, Any] = {"name": variable.env_name}
        if variable.value_from is not None:
            entry["valueFrom"] = _dump(variable.value_from)
        else:
            entry["value"] = variable.value or ""
        env.append(entry)
    return env


def build_env(
    app: WasmApp, runtime: WasmRuntime, ports: list[ContainerPort], kind: ArtifactKind | None = None
) -> list[dict[str, Any]]:
    """What the operator sets (listen address, OpenTelemetry, Spin variables), then the app's env.

    An explicit `env` entry wins: a generated variable of the same name is left out rather than
    listed twice, since env is a map keyed by name for server-side apply (a duplicate key would
    make the whole apply fail) and the API server warns about duplicates anyway."""
    generated: list[dict[str, Any]] = []
    http = http_port(ports)
    if runtime.spec.listen_address_env and http:
        generated.append({"name": runtime.spec.listen_address_env, "value": f"0.0.0.0:{http.container_port}"})
    generated.extend({"name": n, "value": v} for n, v in merged_otel(runtime.spec.otel, app.spec.otel).items())
    generated.extend(_spin_variables(app, kind))
    explicit = [_dump(e) for e in app.spec.env or []]
    taken = {e["name"] for e in explicit}
    return [e for e in generated if e["name"] not in taken] + explicit


def drain_seconds(app: WasmApp, ports: list[ContainerPort]) -> int:
    """How long a stopping pod keeps serving before SIGTERM (0: no preStop hook)."""
    spec = app.spec
    if spec.drain_seconds is not None:
        return spec.drain_seconds
    if http_port(ports) is None:
        return 0
    if spec.termination_grace_period_seconds is not None:  # never eat the whole grace period
        return max(0, min(DEFAULT_DRAIN_SECONDS, spec.termination_grace_period_seconds - 1))
    return DEFAULT_DRAIN_SECONDS


def grace_seconds(app: WasmApp, drain: int) -> int | None:
    """terminationGracePeriodSeconds to set, or None for Kubernetes' own 30 seconds."""
    if app.spec.termination_grace_period_seconds is not None:
        return app.spec.termination_grace_period_seconds
    wanted = drain + GRACE_AFTER_DRAIN_SECONDS
    return wanted if wanted > KUBERNETES_GRACE_SECONDS else None


def restricted_container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": POD_USER_ID,
        "runAsGroup": POD_USER_ID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def build_container(app: WasmApp, runtime: WasmRuntime, image: str, kind: ArtifactKind | None = None) -> dict[str, Any]:
    spec = app.spec
    ports = effective_ports(app, runtime)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(spec.command) if spec.command else list(DEFAULT_COMMAND),
        "securityContext": restricted_container_security(),
        # A module that dies prints why (a missing import, a trap) on stderr; this puts the last log
        # lines into the pod status, where the operator (and `kubectl describe`) can read them.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if spec.args:
        container["args"] = list(spec.args)
    env = build_env(app, runtime, ports, kind)
    if env:
        container["env"] = env
    if spec.env_from:
        container["envFrom"] = [_dump(e) for e in spec.env_from]
    if ports:
        container["ports"] = [_dump(p) for p in ports]
    if spec.resources and (spec.resources.requests or spec.resources.limits):
        container["resources"] = _dump(spec.resources)
    if spec.volume_mounts:
        container["volumeMounts"] = [_dump(m) for m in spec.volume_mounts]
    container.update(build_probes(app, ports))
    drain = drain_seconds(app, ports)
    if drain > 0:
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": drain}}}
    return container


def build_pod_template(
    app: WasmApp, runtime: WasmRuntime, image: str, kind: ArtifactKind | None = None
) -> dict[str, Any]:
    """The Deployment's pod template. Scheduling from the runtime is *not* copied here: the
    RuntimeClass admission plugin merges it, so a runtime change needs no rollout."""
    spec = app.spec
    labels = {**(spec.pod_labels or {}), **curated_labels(app.name, app.labels, runtime.name)}
    pod_spec: dict[str, Any] = {
        "runtimeClassName": runtime.runtime_class_name,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": restricted_pod_security(),
        "containers": [build_container(app, runtime, image, kind)],
    }
    grace = grace_seconds(app, drain_seconds(app, effective_ports(app, runtime)))
    if grace is not None:
        pod_spec["terminationGracePeriodSeconds"] = grace
    if spec.service_account_name:
        pod_spec["serviceAccountName"] = spec.service_account_name
    if spec.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [_dump(s) for s in spec.image_pull_secrets]
    if spec.node_selector:
        pod_spec["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod_spec["tolerations"] = [_dump(t) for t in spec.tolerations]
    if spec.affinity:
        pod_spec["affinity"] = dict(spec.affinity)
    if spec.topology_spread_constraints:
        pod_spec["topologySpreadConstraints"] = [dict(c) for c in spec.topology_spread_constraints]
    if spec.priority_class_name:
        pod_spec["priorityClassName"] = spec.priority_class_name
    if spec.volumes:
        pod_spec["volumes"] = [{"name": v.name, **v.source()} for v in spec.volumes]
    metadata: dict[str, Any] = {"labels": labels}
    if spec.pod_annotations:
        metadata["annotations"] = dict(spec.pod_annotations)
    return {"metadata": metadata, "spec": pod_spec}
