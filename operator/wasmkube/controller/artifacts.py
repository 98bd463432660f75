"""Deciding which bytes a WasmApp runs: when to ask the registry, and what to record.

The registry is asked only when it must be: when `spec.image` changed since the recorded pin,
or, with `updatePolicy: Track`, when the tracking interval has passed. Otherwise the digest in
`status.artifact` is reused, so a registry outage cannot disturb an app that is already pinned,
and thousands of idle apps cost no registry traffic.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from wasmkube.api.artifact import ArtifactKind, ArtifactLayout
from wasmkube.api.wasmapp import ArtifactStatus, UpdatePolicy, WasmApp
from wasmkube.errors import SpecError
from wasmkube.registry.auth import Credentials, credentials_for
from wasmkube.registry.client import ArtifactResolver
from wasmkube.timestamps import parse_rfc3339, rfc3339

DEFAULT_TRACK_INTERVAL_SECONDS = 300
PULL_SECRET_TYPES = frozenset({"kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg"})

SecretReader = Callable[[str, str], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class Pin:
    """The artifact an app runs, and whether it changed in this reconcile."""

    artifact: ArtifactStatus
    changed_digest: bool
    previous_digest: str | None


def track_interval(app: WasmApp) -> int:
    return app.spec.track_interval_seconds or DEFAULT_TRACK_INTERVAL_SECONDS


def needs_resolution(app: WasmApp, recorded: ArtifactStatus | None, now: float) -> bool:
    """Whether the registry must be asked in this reconcile."""
    if recorded is None or recorded.reference != app.spec.image:
        return True
    if app.spec.effective_update_policy is UpdatePolicy.TRACK:
        resolved_at = parse_rfc3339(recorded.resolved_at)
        return resolved_at is None or now - resolved_at >= track_interval(app)
    return False


def seconds_until_next_check(app: WasmApp, artifact: ArtifactStatus, now: float) -> float | None:
    """For a Track app, when the registry is due to be asked again; None for Pinned.

    Counted from the recorded `resolvedAt`, not from this reconcile: after an operator restart
    (or any reconcile between two checks) the check stays on schedule instead of slipping by up
    to a whole interval."""
    if app.spec.effective_update_policy is not UpdatePolicy.TRACK:
        return None
    interval = float(track_interval(app))
    resolved_at = parse_rfc3339(artifact.resolved_at)
    if resolved_at is None:
        return interval
    return min(interval, max(1.0, resolved_at + interval - now))


async def pull_credentials(app: WasmApp, read_secret: SecretReader) -> Credentials | None:
    """Credentials for the image's registry from the app's pull secrets, read only by name.

    A pull secret that does not exist is an error even when the registry needs no login: the
    kubelet would fail the same way, only later and less clearly."""
    secrets: list[dict[str, Any]] = []
    for ref in app.spec.image_pull_secrets or []:
        secret = await read_secret(app.namespace, ref.name)
        if secret is None:
            raise SpecError(
                "PullSecretNotFound",
                f"imagePullSecrets names Secret {ref.name!r}, which does not exist in namespace {app.namespace!r}",
            )
        if secret.get("type") not in PULL_SECRET_TYPES:
            raise SpecError(
                "InvalidPullSecret",
                f"Secret {ref.name!r} has type {secret.get('type')!r}; pull secrets must be "
                "kubernetes.io/dockerconfigjson",
            )
        secrets.append(secret)
    if not secrets:
        return None
    return credentials_for([s.get("data") or {} for s in secrets], app.spec.image)


async def pin_artifact(
    app: WasmApp,
    recorded: ArtifactStatus | None,
    resolver: ArtifactResolver,
    read_secret: SecretReader,
    *,
    spec_changed: bool,
    now: float | None = None,
) -> Pin:
    """The artifact to run: the recorded pin, or a fresh resolution when one is due.

    Pull secrets are read when the registry is asked, and checked for existence whenever the
    spec changed, so a typo in a secret name is reported at once either way."""
    now = time.time() if now is None else now
    if not needs_resolution(app, recorded, now):
        assert recorded is not None
        if spec_changed and app.spec.image_pull_secrets:
            await pull_credentials(app, read_secret)
        return Pin(recorded, changed_digest=False, previous_digest=recorded.digest)
    credentials = await pull_credentials(app, read_secret) if app.spec.image_pull_secrets else None
    resolved = await resolver.resolve(app.spec.image, credentials)
    artifact = ArtifactStatus(
        reference=app.spec.image,
        digest=resolved.digest,
        pinned_image=resolved.pinned,
        kind=ArtifactKind(resolved.kind),
        layout=ArtifactLayout(resolved.layout),
        media_type=resolved.media_type,
        size=resolved.size,
        exports=list(resolved.exports) or None,
        resolved_at=rfc3339(now),
    )
    previous = recorded.digest if recorded is not None and recorded.reference == app.spec.image else None
    return Pin(artifact, changed_digest=previous is not None and previous != artifact.digest, previous_digest=previous)
