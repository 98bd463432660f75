"""Conditions as Kubernetes API conventions and kstatus read them.

Three conditions, always all present: `Ready` (the summary: the app serves as declared),
`Reconciling` (the operator is still making progress: kstatus InProgress) and `Stalled` (it cannot
make progress without a change from someone: kstatus Failed). `lastTransitionTime` moves only when
a condition's status flips, so an unchanged state produces an identical status and no write.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from wasmkube.api.common import MAX_CONDITION_MESSAGE

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"


@dataclass(frozen=True)
class Verdict:
    """What the operator concluded about an object in one reconcile.

    `state` is one of "ready", "progressing", "stalled", "retrying"; `reason` and `message` explain it.
    """

    state: str
    reason: str
    message: str

    @property
    def ready(self) -> bool:
        return self.state == "ready"


_TRUNCATED = " ... (truncated)"


def bounded_message(message: str) -> str:
    """A message that fits a condition. Messages quote the API server's or the registry's words,
    and a refusal of a generated object repeats every bad value in full; one over the limit would
    make the whole status write fail, leaving the object with no status at all."""
    raw = message.encode()
    if len(raw) <= MAX_CONDITION_MESSAGE:
        return message
    return raw[: MAX_CONDITION_MESSAGE - len(_TRUNCATED)].decode(errors="ignore") + _TRUNCATED


def _condition(
    kind: str, status: bool, reason: str, message: str, generation: int, previous: dict[str, Any] | None, now: str
) -> dict[str, Any]:
    status_text = "True" if status else "False"
    unchanged = previous is not None and previous.get("status") == status_text
    return {
        "type": kind,
        "status": status_text,
        "reason": reason,
        "message": bounded_message(message),
        "observedGeneration": generation,
        "lastTransitionTime": previous.get("lastTransitionTime", now) if unchanged and previous else now,
    }


def build_conditions(
    verdict: Verdict, generation: int, previous: Iterable[dict[str, Any]] | None, now: str
) -> list[dict[str, Any]]:
    """The three conditions for a verdict, carrying over transition times that did not change."""
    by_type = {c.get("type"): c for c in previous or []}
    stalled = verdict.state == "stalled"
    reconciling = verdict.state in {"progressing", "retrying"}
    quiet_reason = verdict.reason if verdict.state != "ready" else "Reconciled"
    return [
        _condition(READY, verdict.ready, verdict.reason, verdict.message, generation, by_type.get(READY), now),
        _condition(
            RECONCILING,
            reconciling,
            verdict.reason if reconciling else quiet_reason,
            verdict.message if reconciling else "",
            generation,
            by_type.get(RECONCILING),
            now,
        ),
        _condition(
            STALLED,
            stalled,
            verdict.reason if stalled else quiet_reason,
            verdict.message if stalled else "",
            generation,
            by_type.get(STALLED),
            now,
        ),
    ]


def find(conditions: Iterable[dict[str, Any]] | None, kind: str) -> dict[str, Any] | None:
    return next((c for c in conditions or [] if c.get("type") == kind), None)


def without_times(status: dict[str, Any]) -> dict[str, Any]:
    """A status with volatile timestamps removed, for "did anything change?" comparisons."""
    copy = dict(status)
    copy["conditions"] = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status.get("conditions") or []
    ]
    artifact = copy.get("artifact")
    if isinstance(artifact, dict):
        copy["artifact"] = {k: v for k, v in artifact.items() if k != "resolvedAt"}
    return copy
