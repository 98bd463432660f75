"""The pod template of a WasmApp: one Wasm container, locked down to the `restricted` standard."""

from __future__ import annotations

from typing import Any

from wasmkube.api.wasmapp import ContainerPort, HttpProbe, WasmApp
from wasmkube.api.wasmruntime import WasmRuntime
from wasmkube.builders.errors import SpecError
from wasmkube.builders.identity import curated_labels

CONTAINER_NAME = "app"
# runwasi takes the module (and `#function`) from arg0 and ignores it for OCI Wasm layers; CRI
# refuses a container without a command, and Wasm artifacts carry none. "/" is the neutral arg0.
DEFAULT_COMMAND = ["/"]
# A fixed unprivileged identity: `runAsNonRoot` alone cannot be verified for images without USER.
POD_USER_ID = 65532

# Default probe timings: Wasm instances start in milliseconds, so the startup probe is tight.
_DEFAULT_PROBES: dict[str, dict[str, int]] = {
    "startupProbe": {"periodSeconds": 1, "failureThreshold": 60},
    "readinessProbe": {"periodSeconds": 5, "failureThreshold": 3},
    "livenessProbe": {"periodSeconds": 10, "failureThreshold": 3},
}


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


def _explicit_probe(probe: HttpProbe, default_port: int | str | None) -> dict[str, Any]:
    port = probe.port if probe.port is not None else default_port
    if port is None:
        raise SpecError("InvalidProbe", "a probe needs a port: declare an http port or set the probe's port")
    timings = probe.model_dump(by_alias=True, exclude_none=True, exclude={"path", "port"}, mode="json")
    return {"httpGet": {"path": probe.path, "port": port}, **timings}


def build_probes(app: WasmApp, ports: list[ContainerPort]) -> dict[str, Any]:
    """Explicit probes as given; missing ones defaulted when the app serves HTTP."""
    probes = app.spec.probes
    use_defaults = probes.use_defaults if probes else True
    http = next((p for p in ports if is_http_port(p)), None)
    default_port: int | str | None = (http.name or http.container_port) if http else None
    declared = {
        "startupProbe": probes.startup if probes else None,
        "readinessProbe": probes.readiness if probes else None,
        "livenessProbe": probes.liveness if probes else None,
    }
    out: dict[str, Any] = {}
    for field_name, probe in declared.items():
        if probe is not None:
            out[field_name] = _explicit_probe(probe, default_port)
        elif use_defaults and default_port is not None:
            out[field_name] = {"httpGet": {"path": "/", "port": default_port}, **_DEFAULT_PROBES[field_name]}
    return out


def build_env(app: WasmApp, runtime: WasmRuntime, ports: list[ContainerPort]) -> list[dict[str, Any]]:
    """The app's env, preceded by the runtime's listen-address variable when it serves HTTP.
    The app's own entries come later, so an explicit value wins (last entry of a name wins)."""
    env: list[dict[str, Any]] = []
    http = next((p for p in ports if is_http_port(p)), None)
    if runtime.spec.listen_address_env and http:
        env.append({"name": runtime.spec.listen_address_env, "value": f"0.0.0.0:{http.container_port}"})
    env.extend(_dump(e) for e in app.spec.env or [])
    return env


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


def build_container(app: WasmApp, runtime: WasmRuntime, image: str) -> dict[str, Any]:
    spec = app.spec
    ports = effective_ports(app, runtime)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(spec.command) if spec.command else list(DEFAULT_COMMAND),
        "securityContext": restricted_container_security(),
    }
    if spec.args:
        container["args"] = list(spec.args)
    env = build_env(app, runtime, ports)
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
    return container


def build_pod_template(app: WasmApp, runtime: WasmRuntime, image: str) -> dict[str, Any]:
    """The Deployment's pod template. Scheduling from the runtime is *not* copied here: the
    RuntimeClass admission plugin merges it, so a runtime change needs no rollout."""
    spec = app.spec
    labels = {**(spec.pod_labels or {}), **curated_labels(app.name, app.labels, runtime.name)}
    pod_spec: dict[str, Any] = {
        "runtimeClassName": runtime.runtime_class_name,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": restricted_pod_security(),
        "containers": [build_container(app, runtime, image)],
    }
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
