"""Reading a Deployment's rollout the way `kubectl rollout status` does."""

from __future__ import annotations

from typing import Any

from wasmkube.status.conditions import Verdict


def _condition(deployment: dict[str, Any], kind: str) -> dict[str, Any] | None:
    conditions = deployment.get("status", {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), None)


def rollout_verdict(deployment: dict[str, Any] | None) -> Verdict:
    """Ready when every desired replica runs the current template and is available."""
    if deployment is None:
        return Verdict("progressing", "DeploymentPending", "waiting for the Deployment to be created")
    meta = deployment.get("metadata", {})
    status = deployment.get("status", {})
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return Verdict("progressing", "RollingOut", "waiting for the Deployment controller to see the change")

    failure = _condition(deployment, "ReplicaFailure")
    if failure and failure.get("status") == "True":
        return Verdict("stalled", "PodCreationFailed", str(failure.get("message") or failure.get("reason")))
    progressing = _condition(deployment, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Verdict("stalled", "ProgressDeadlineExceeded", str(progressing.get("message") or "rollout timed out"))

    desired = int(deployment.get("spec", {}).get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < desired:
        return Verdict("progressing", "RollingOut", f"{updated} of {desired} replicas updated")
    if total > updated:
        return Verdict("progressing", "RollingOut", f"{total - updated} old replicas are being replaced")
    if available < updated:
        return Verdict("progressing", "RollingOut", f"{available} of {updated} replicas available")
    return Verdict("ready", "Available", f"{available} of {desired} replicas available")


def replica_counts(deployment: dict[str, Any] | None) -> dict[str, int]:
    """Replica numbers copied into the WasmApp status (and so into `/scale`)."""
    status = (deployment or {}).get("status", {})
    return {
        "replicas": int(status.get("replicas") or 0),
        "readyReplicas": int(status.get("readyReplicas") or 0),
        "availableReplicas": int(status.get("availableReplicas") or 0),
        "updatedReplicas": int(status.get("updatedReplicas") or 0),
    }
