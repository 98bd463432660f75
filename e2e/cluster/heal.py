"""What `up` repairs beyond dead processes: KWOK pods a node outage left not Ready.

When KWOK stops renewing its node leases (it was stopped, or the whole host slept through the
node-monitor grace period), the node-lifecycle controller marks the nodes Unknown and every pod
on them Ready=False. Once KWOK is back the nodes turn Ready again, but nothing turns those pods
Ready: KWOK's stages only move pods forward from Pending. Their Deployments then stay
unavailable for good, so `up` deletes them and their ReplicaSets create fresh ones.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .api import ApiClient
from .errors import log
from .layout import KWOK_ANNOTATION


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return None


def pods_left_not_ready(nodes: list[dict[str, Any]], pods: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(namespace, name) of the pods an outage of KWOK left not Ready.

    Exactly those on a KWOK node that is Ready now, Running, owned by a controller that will
    replace them, not being deleted, and Ready=False while ContainersReady is still True. That
    last pair is the node-lifecycle controller's mark: when a node goes Unknown it flips only the
    pods' Ready condition. A pod a test made fail has its containers not ready too, and KWOK
    itself never makes a Running pod not Ready. (The node's own Ready transition time cannot
    tell "marked during the outage" from "marked since": KWOK writes the time the node first
    turned Ready back on every renewal.)
    """
    ready_kwok_nodes = set()
    for node in nodes:
        meta = node.get("metadata") or {}
        if (meta.get("annotations") or {}).get(KWOK_ANNOTATION[0]) != KWOK_ANNOTATION[1]:
            continue
        ready = _condition(node, "Ready")
        if ready and ready.get("status") == "True":
            ready_kwok_nodes.add(str(meta.get("name")))
    found = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        ready = _condition(pod, "Ready") or {}
        containers = _condition(pod, "ContainersReady") or {}
        if (str((pod.get("spec") or {}).get("nodeName")) in ready_kwok_nodes
                and not meta.get("deletionTimestamp")
                and (pod.get("status") or {}).get("phase") == "Running"
                and any(ref.get("controller") for ref in meta.get("ownerReferences") or [])
                and ready.get("status") == "False" and containers.get("status") == "True"):
            found.append((str(meta.get("namespace")), str(meta.get("name"))))
    return found


def replace_pods_left_not_ready(api: ApiClient) -> int:
    """Delete (at once: KWOK runs nothing that needs a grace period) the pods
    `pods_left_not_ready` names; returns how many. Best effort: a failed list changes nothing."""
    status, nodes = api.request("GET", "/api/v1/nodes")
    if status != 200:
        return 0
    status, pods = api.request("GET", "/api/v1/pods?fieldSelector=" + quote("status.phase=Running"))
    if status != 200:
        return 0
    stale = pods_left_not_ready(nodes.get("items", []), pods.get("items", []))
    for namespace, name in stale:
        api.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}",
                    {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0})
    if stale:
        log(f"replaced {len(stale)} pod(s) that a KWOK outage left not Ready "
            f"(their controllers create new ones): {', '.join(f'{ns}/{n}' for ns, n in stale[:5])}"
            + (" ..." if len(stale) > 5 else ""))
    return len(stale)
