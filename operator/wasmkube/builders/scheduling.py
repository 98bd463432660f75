"""Where Wasm pods may run: the runtime's node selection merged with the app's own.

The RuntimeClass admission plugin merges `RuntimeClass.scheduling` into every pod that names the
class, and refuses a pod whose nodeSelector contradicts it. We check the same rules up front, so a
contradiction becomes a clear `Stalled` condition instead of a ReplicaSet that silently fails to
create pods; and we count the nodes that could take the pods, so an app whose runtime has no Ready
node says `NoEligibleNodes` instead of sitting Pending.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wasmkube.api.common import Toleration
from wasmkube.errors import SpecError

_BLOCKING_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True)
class NodeInfo:
    """The part of a Node that scheduling decisions read (and nothing that changes each heartbeat)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    ready: bool = False
    unschedulable: bool = False

    @classmethod
    def from_node(cls, node: Mapping[str, Any]) -> NodeInfo:
        meta = node.get("metadata", {})
        spec = node.get("spec", {})
        conditions = node.get("status", {}).get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        taints = tuple(
            Taint(t.get("key", ""), t.get("value", ""), t.get("effect", "")) for t in spec.get("taints") or []
        )
        return cls(
            name=meta.get("name", ""),
            labels=dict(meta.get("labels") or {}),
            taints=taints,
            ready=ready,
            unschedulable=bool(spec.get("unschedulable")),
        )

    @property
    def schedulable(self) -> bool:
        return self.ready and not self.unschedulable


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    """core/v1 toleration matching, as the scheduler does it."""
    if toleration.effect and toleration.effect.value != taint.effect:
        return False
    operator = toleration.operator.value if toleration.operator else "Equal"
    if not toleration.key:
        return operator == "Exists"
    if toleration.key != taint.key:
        return False
    return operator == "Exists" or (toleration.value or "") == taint.value


def matches(node: NodeInfo, selector: Mapping[str, str], tolerations: Iterable[Toleration]) -> bool:
    """Whether pods with this nodeSelector and these tolerations may land on the node."""
    if any(node.labels.get(k) != v for k, v in selector.items()):
        return False
    tolerations = list(tolerations)
    return all(
        any(tolerates(t, taint) for t in tolerations) for taint in node.taints if taint.effect in _BLOCKING_EFFECTS
    )


def merge_node_selectors(runtime: Mapping[str, str], app: Mapping[str, str]) -> dict[str, str]:
    """The nodeSelector pods end up with; a contradiction is refused like admission would."""
    conflicts = sorted(k for k in runtime.keys() & app.keys() if runtime[k] != app[k])
    if conflicts:
        detail = ", ".join(f"{k}={app[k]!r} (runtime needs {runtime[k]!r})" for k in conflicts)
        raise SpecError("SchedulingConflict", f"nodeSelector contradicts the runtime's node selection: {detail}")
    return {**runtime, **app}


def merge_tolerations(runtime: Iterable[Toleration], app: Iterable[Toleration]) -> list[Toleration]:
    merged: list[Toleration] = []
    for toleration in [*runtime, *app]:
        if toleration not in merged:
            merged.append(toleration)
    return merged


def count_nodes(
    nodes: Iterable[NodeInfo], selector: Mapping[str, str], tolerations: Iterable[Toleration]
) -> tuple[int, int]:
    """(eligible, ready): nodes matching the selection, and those of them able to run pods now."""
    tolerations = list(tolerations)
    eligible = [n for n in nodes if matches(n, selector, tolerations)]
    return len(eligible), sum(1 for n in eligible if n.schedulable)
