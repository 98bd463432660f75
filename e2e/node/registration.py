"""The node in the API: playing its (tiny) cloud controller, judging it Ready, draining it.

kubelet refuses a loopback --node-ip, yet the apiserver must reach it on 127.0.0.1, so kubelet
runs with `--cloud-provider=external` and this module sets the node's only address to
InternalIP 127.0.0.1 and lifts the `uninitialized` taint (see realnode.py's doc).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from e2e.cluster.api import ApiClient
from e2e.support.supervisor import Supervisor
from e2e.support.waiting import TimedOut, wait_for

from .errors import NodeError, log
from .layout import NODE_ADDRESS, NODE_LABELS, NODE_NAME, REAL_NODE_TAINT, UNINITIALIZED_TAINT

POLL = 0.5


def initialize_node(api: ApiClient, sup: Supervisor) -> None:
    """Act as the external cloud provider: wait for registration, set the address, lift the
    `uninitialized` taint, keep ours; then wait for Ready."""
    wait(lambda: api.request("GET", f"/api/v1/nodes/{NODE_NAME}")[0] == 200, 90,
         f"kubelet to register node {NODE_NAME}", sup)
    wait(lambda: _initialize_once(api), 30, f"node {NODE_NAME} addresses and taints", sup)
    wait(lambda: node_ready(api), 120, f"node {NODE_NAME} to be Ready", sup)


def _initialize_once(api: ApiClient) -> bool:
    """One attempt at the node's address and taints; False (retry) on a write conflict."""
    status, node = api.request("GET", f"/api/v1/nodes/{NODE_NAME}")
    if status != 200:
        return False
    wanted_addresses = [{"type": "InternalIP", "address": NODE_ADDRESS}]
    if node.get("status", {}).get("addresses") != wanted_addresses:
        patch = {"status": {"addresses": wanted_addresses}}
        code, body = api.request("PATCH", f"/api/v1/nodes/{NODE_NAME}/status", patch, "application/merge-patch+json")
        if code != 200:
            raise NodeError(f"setting the address of {NODE_NAME} failed: HTTP {code}: {body}")
    taints = node.get("spec", {}).get("taints") or []
    wanted = [t for t in taints if t["key"] != UNINITIALIZED_TAINT]
    if not any(t["key"] == REAL_NODE_TAINT["key"] for t in wanted):
        wanted.append(REAL_NODE_TAINT)
    cordoned = node.get("spec", {}).get("unschedulable", False)  # by an interrupted `down`
    if wanted != taints or cordoned:
        spec: dict[str, Any] = {"taints": wanted, "unschedulable": None}
        patch = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]}, "spec": spec}
        code, body = api.request("PATCH", f"/api/v1/nodes/{NODE_NAME}", patch, "application/merge-patch+json")
        if code == 409:
            return False
        if code != 200:
            raise NodeError(f"setting the taints of {NODE_NAME} failed: HTTP {code}: {body}")
    return True


def node_ready(api: ApiClient) -> bool:
    """Registered, Ready, initialised (address set, no `uninitialized` taint) and labelled."""
    status, node = api.request("GET", f"/api/v1/nodes/{NODE_NAME}")
    if status != 200:
        return False
    conditions = node.get("status", {}).get("conditions", [])
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    taints = {t["key"] for t in node.get("spec", {}).get("taints") or []}
    addresses = node.get("status", {}).get("addresses") or []
    labels = node["metadata"].get("labels", {})
    return (ready and UNINITIALIZED_TAINT not in taints and REAL_NODE_TAINT["key"] in taints
            and [a.get("address") for a in addresses] == [NODE_ADDRESS]
            and all(labels.get(k) == v for k, v in NODE_LABELS.items()))


def wait(check: Callable[[], bool], timeout: float, what: str, sup: Supervisor) -> None:
    """Poll `check`; fail at once if kubelet exits, and on timeout name what we waited for and
    show kubelet's last log lines."""
    def kubelet_alive_and(check: Callable[[], bool]) -> bool:
        if sup.pid("kubelet") is None:
            raise NodeError(f"kubelet exited while waiting for {what}; last log lines:\n{sup.tail_log('kubelet', 30)}")
        return check()

    wait_for(lambda: kubelet_alive_and(check), timeout, POLL, what,
             error=lambda text: NodeError(f"{text}; kubelet log:\n{sup.tail_log('kubelet', 30)}"))


def drain(api: ApiClient) -> None:
    """Delete the node's pods (1s grace) and wait until kubelet has finished them: kubelet
    stops each sandbox through CRI, so CNI releases the IP and veth and containerd unmounts
    the rootfs. Best effort; the sweeps in `down` catch whatever is left after 60s."""
    selector = f"fieldSelector=spec.nodeName%3D{NODE_NAME}"

    def pods() -> list[dict[str, Any]]:
        status, body = api.request("GET", f"/api/v1/pods?{selector}")
        return list(body.get("items", [])) if status == 200 else []

    # Cordon first, or a ReplicaSet's replacement pod lands right back here.
    api.request("PATCH", f"/api/v1/nodes/{NODE_NAME}", {"spec": {"unschedulable": True}},
                "application/merge-patch+json")
    found = pods()
    if not found:
        return
    log(f"deleting the {len(found)} pod(s) on {NODE_NAME}")
    for pod in found:
        meta = pod["metadata"]
        api.request("DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                    {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 1})
    try:
        wait_for(lambda: not pods(), 60, POLL, f"the pods on {NODE_NAME} to finish")
    except TimedOut:
        log("kubelet did not finish every pod within 60s; sweeping what is left")


def delete_node_object(api: ApiClient) -> None:
    """Delete Node real-node-1 so schedulers and the operator stop counting it."""
    status, _ = api.request("DELETE", f"/api/v1/nodes/{NODE_NAME}")
    if status not in (200, 404):
        log(f"could not delete node {NODE_NAME}: HTTP {status}")
