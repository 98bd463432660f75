"""Scale to zero: a WasmApp that opts in goes to 0 replicas when idle and wakes on its next request.

The activator (`wasmkube activator`) holds the requests that arrive while the app is at zero,
scales it up and forwards them once a pod is Ready; it is in the request path only while the app
has no Ready pod. The rules that tie this block to the rest of the spec (it needs a Service, it
works with autoscaling) are in `wasmapp._SPEC_RULES`, since they read sibling fields.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from wasmkube.api.common import KubeModel, cel, cel_rules

DEFAULT_IDLE_SECONDS = 300
DEFAULT_WAKE_TIMEOUT_SECONDS = 60
DEFAULT_MAX_PENDING_REQUESTS = 100
# The activator's idle loop looks at the pods every few seconds; a shorter idle time could not be
# measured honestly.
MIN_IDLE_SECONDS = 10
MAX_PENDING_LIMIT = 10000


class ScaleToZero(KubeModel):
    """Go to 0 replicas after `idleSeconds` without a request; the next request wakes the app.

    Requests that arrive at zero are held by the activator (not refused) until a pod is Ready,
    for at most `wakeTimeoutSeconds`, and at most `maxPendingRequests` at a time per activator
    replica. While the app has a Ready pod its Service points at the pods directly."""

    idle_seconds: Annotated[int, Field(ge=MIN_IDLE_SECONDS, le=86400)] = DEFAULT_IDLE_SECONDS
    """Seconds without a request (none served, none in flight, none held) before the app goes to 0 replicas (default
    300)."""
    wake_timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = DEFAULT_WAKE_TIMEOUT_SECONDS
    """How long a request that woke the app (or arrived while it wakes) is held before it is answered 504 (default
    60). At most idleSeconds."""
    max_pending_requests: Annotated[int, Field(ge=1, le=MAX_PENDING_LIMIT)] = DEFAULT_MAX_PENDING_REQUESTS
    """Requests held at once while the app wakes, per activator replica; more are answered 503 with Retry-After
    (default 100)."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                f"(has(self.wakeTimeoutSeconds) ? self.wakeTimeoutSeconds : {DEFAULT_WAKE_TIMEOUT_SECONDS}) <= "
                f"(has(self.idleSeconds) ? self.idleSeconds : {DEFAULT_IDLE_SECONDS})",
                "scaleToZero.wakeTimeoutSeconds must not exceed idleSeconds: an app still waking after idleSeconds "
                "counts as idle and would be scaled down under the requests it holds",
                ".wakeTimeoutSeconds",
            )
        )
    )


# Rules on WasmAppSpec (they read the fields next to scaleToZero).
SPEC_RULES = [
    cel(
        "!has(self.scaleToZero) || (has(self.service) && (!has(self.service.enabled) || self.service.enabled))",
        "scaleToZero needs a Service (set service): requests reach the app, and wake it, through its Service",
        ".scaleToZero",
    ),
    cel(
        "!has(self.scaleToZero) || !has(self.replicas) || self.replicas >= 1",
        "with scaleToZero, replicas is the count while awake and must be at least 1: the app goes to 0 by itself "
        "when idle (remove scaleToZero to keep it at 0)",
        ".replicas",
    ),
]
