"""What a scale-to-zero app's status says, on top of the Deployment's rollout.

- At 0 replicas the app is `Ready=True, reason ScaledToZero`: it serves as declared, since the
  next request wakes it. So kstatus says Current and Argo CD Healthy, and a GitOps tool does not
  flap every time an app idles.
- While a request wakes it (the Deployment went from 0 to N and no pod is available yet) it stays
  Ready, reason `Waking`, for at most `wakeTimeoutSeconds`; the held requests are answered
  meanwhile. A wake that takes longer is `Ready=False, reason WakeTimedOut` (the activator has
  answered 504 by then): something keeps the pods from becoming Ready, and that is news.
- At zero with no activator endpoint, requests would be refused: `Ready=False,
  ActivatorUnavailable`.
"""

from __future__ import annotations

from typing import Any

from wasmkube.api.scaletozero import ScaleToZero
from wasmkube.status.conditions import Verdict
from wasmkube.timestamps import parse_rfc3339

SCALED_TO_ZERO = "ScaledToZero"
WAKING = "Waking"
WAKE_TIMED_OUT = "WakeTimedOut"
ACTIVATOR_UNAVAILABLE = "ActivatorUnavailable"
# Reasons that mean "this app was at zero, and has not served since": a rollout verdict on top of
# one of them is a wake, not a rollout.
_ASLEEP_OR_WAKING = frozenset({SCALED_TO_ZERO, WAKING, WAKE_TIMED_OUT, ACTIVATOR_UNAVAILABLE})


def _wake_started(deployment: dict[str, Any]) -> float | None:
    """When the Deployment last became unavailable: the moment it was scaled up from zero."""
    for condition in deployment.get("status", {}).get("conditions") or []:
        if condition.get("type") == "Available" and condition.get("status") == "False":
            return parse_rfc3339(condition.get("lastTransitionTime"))
    return None


def scale_to_zero_verdict(
    settings: ScaleToZero,
    deployment: dict[str, Any] | None,
    rollout: Verdict,
    previous_reason: str | None,
    activator_ready: bool,
    now: float,
) -> tuple[Verdict, float | None]:
    """The verdict for a scale-to-zero app, and when to look again (the wake deadline), if ever."""
    if deployment is None or rollout.state == "stalled":
        return rollout, None
    desired = int(deployment.get("spec", {}).get("replicas", 1))
    if desired == 0:
        # At zero a template change rolls out nothing, so the Deployment's observedGeneration lag
        # after each scale-down is not worth a Reconciling flicker.
        if not activator_ready:
            return Verdict(
                "progressing",
                ACTIVATOR_UNAVAILABLE,
                "scaled to zero, but no activator endpoint is Ready: requests to the Service are refused until the "
                "activator runs (chart value activator.enabled)",
            ), None
        return Verdict(
            "ready",
            SCALED_TO_ZERO,
            f"no request for {settings.idle_seconds}s: scaled to zero; the next request wakes it (held up to "
            f"{settings.wake_timeout_seconds}s)",
        ), None
    if rollout.state != "progressing" or previous_reason not in _ASLEEP_OR_WAKING:
        return rollout, None
    started = _wake_started(deployment)
    if started is None:
        return Verdict("ready", WAKING, f"a request woke the app: {rollout.message}"), None
    elapsed = max(0.0, now - started)
    if elapsed <= settings.wake_timeout_seconds:
        return (
            Verdict("ready", WAKING, f"a request woke the app {elapsed:.0f}s ago: {rollout.message}"),
            settings.wake_timeout_seconds - elapsed + 1,
        )
    return Verdict(
        "progressing",
        WAKE_TIMED_OUT,
        f"woken {elapsed:.0f}s ago and still not Ready ({rollout.message}); requests held longer than "
        f"{settings.wake_timeout_seconds}s were answered 504: see the pods' events",
    ), None
