"""Small helpers for tests that drive WasmApps through kubectl and wait on their status."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from .cluster import Cluster
from .waiting import wait_for


def wasmapp(name: str, image: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmApp", "metadata": {"name": name},
            "spec": {"image": image, **spec}}


def get(cluster: Cluster, kind: str, name: str, namespace: str | None = None) -> Any:
    """The object as decoded JSON, or None when it does not exist.

    Typed Any, like Cluster.get_json: tests index into what they expect to exist, and if it does
    not, the test fails right at that line, which is the check they mean.
    """
    args = ["get", kind, name, "-o", "json", "--ignore-not-found", "--show-managed-fields"]
    if namespace:
        args += ["-n", namespace]
    out = cluster.kubectl(*args).stdout.strip()
    if not out:
        return None
    return dict(json.loads(out))


def condition(obj: dict[str, Any] | None, kind: str) -> Any:
    """The condition `kind` of obj's status (a dict), or None; Any for the reason `get` is."""
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def wait_condition(cluster: Cluster, kind: str, name: str, namespace: str | None, cond_type: str,
                   status: str = "True", reason: str | Collection[str] | None = None,
                   timeout: float = 60.0) -> dict[str, Any]:
    """Wait until a condition has this status (and reason, or one of several); returns the whole object."""
    seen: dict[str, Any] = {}
    reasons = None if reason is None else {reason} if isinstance(reason, str) else set(reason)

    def check() -> bool:
        obj = get(cluster, kind, name, namespace)
        cond = condition(obj, cond_type)
        seen["obj"] = obj
        return bool(cond and cond.get("status") == status and (reasons is None or cond.get("reason") in reasons))

    try:
        wait_for(check, timeout=timeout, interval=0.3, message=f"{kind} {namespace}/{name} {cond_type}={status}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last status: {(seen.get('obj') or {}).get('status')}") from None
    return dict(seen["obj"])


def wait_ready(cluster: Cluster, name: str, namespace: str, timeout: float = 90.0) -> dict[str, Any]:
    return wait_condition(cluster, "wasmapp", name, namespace, "Ready", "True", timeout=timeout)


def events_for(cluster: Cluster, name: str, namespace: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}",
                          "-o", "json").stdout
    return list(json.loads(out).get("items") or [])
