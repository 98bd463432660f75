"""The fake nodes: their Node objects, their KWOK leases, and whether they can take pods."""

from __future__ import annotations

import datetime
from typing import Any

from .api import ApiClient
from .errors import ClusterError
from .layout import KWOK_ANNOTATION, NODE_ALLOCATABLE, NODE_LEASE_SECONDS, NODES


def node_manifest(name: str) -> dict[str, Any]:
    """The Node object for one fake node (labels, KWOK annotation, taints)."""
    labels = {
        "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name,
        "type": "kwok", **NODES[name]["labels"],
    }
    annotations = {KWOK_ANNOTATION[0]: KWOK_ANNOTATION[1], "node.alpha.kubernetes.io/ttl": "0"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {"taints": NODES[name]["taints"]},
    }


def apply_nodes(api: ApiClient) -> None:
    """Create or update the four nodes, then set their capacity (a status field, hence separate)."""
    resources = {"capacity": NODE_ALLOCATABLE, "allocatable": NODE_ALLOCATABLE}
    for name in NODES:
        api.apply(f"/api/v1/nodes/{name}", node_manifest(name))
        api.apply(f"/api/v1/nodes/{name}/status",
                  {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "status": resources})


LEASES_PATH = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


def release_node_leases(api: ApiClient) -> None:
    """Delete the node leases a previous KWOK process held.

    Each KWOK process has a random identity and will not take over a lease another holder renewed
    less than 40 s ago, so after a restart pods would sit unstarted for up to 40 s. Only called
    when no KWOK runs, so nothing live is disturbed.
    """
    for name in NODES:
        status, body = api.request("DELETE", f"{LEASES_PATH}/{name}")
        if status not in (200, 404):
            raise ClusterError(f"deleting lease {name} failed: HTTP {status}: {body}")


def node_leases_fresh(api: ApiClient) -> bool:
    """Every node's lease exists and was renewed recently, i.e. a live KWOK manages the node."""
    status, body = api.request("GET", LEASES_PATH)
    if status != 200:
        return False
    renewed = {item["metadata"]["name"]: item.get("spec", {}).get("renewTime") for item in body["items"]}
    now = datetime.datetime.now(datetime.UTC)
    for name in NODES:
        stamp = renewed.get(name)
        if not stamp or (now - datetime.datetime.fromisoformat(stamp)).total_seconds() > NODE_LEASE_SECONDS:
            return False
    return True


def _node_is_schedulable(node: dict[str, Any]) -> bool:
    """Ready, and the node-lifecycle controller has lifted its not-ready/unreachable taints."""
    conditions = node.get("status", {}).get("conditions", [])
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    taints = {t.get("key") for t in node.get("spec", {}).get("taints", [])}
    return ready and not taints & {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}


def nodes_ready(api: ApiClient) -> bool:
    """All four nodes exist, carry their labels and can take pods."""
    status, body = api.request("GET", "/api/v1/nodes")
    if status != 200:
        return False
    found = {n["metadata"]["name"]: n for n in body.get("items", [])}
    for name, spec in NODES.items():
        node = found.get(name)
        if node is None or not _node_is_schedulable(node):
            return False
        labels = node["metadata"].get("labels", {})
        if any(labels.get(k) != v for k, v in spec["labels"].items()):
            return False
    return True


def default_namespace_exists(api: ApiClient) -> bool:
    return api.request("GET", "/api/v1/namespaces/default")[0] == 200


def kwok_heartbeats_missed(api: ApiClient) -> bool:
    """Whether a KWOK node's last status heartbeat is older than its lease: the host slept or KWOK
    stood still. The node-lifecycle controller then marks those nodes' pods not Ready within
    its monitor period of seeing it, which may be just after KWOK's first renewal."""
    status, body = api.request("GET", "/api/v1/nodes")
    if status != 200:
        return False
    now = datetime.datetime.now(datetime.UTC)
    for node in body.get("items", []):
        if node["metadata"]["name"] not in NODES:
            continue
        for condition in node.get("status", {}).get("conditions", []):
            beat = condition.get("lastHeartbeatTime")
            if (condition.get("type") == "Ready" and beat
                    and (now - datetime.datetime.fromisoformat(beat)).total_seconds() > NODE_LEASE_SECONDS):
                return True
    return False

