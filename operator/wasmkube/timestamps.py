"""Timestamps as the Kubernetes API writes them: RFC 3339, in UTC, ending in "Z".

Status (conditions, `artifact.resolvedAt`) and Events carry whole seconds, the API's `Time`; a
Lease's renew and acquire times carry microseconds, its `MicroTime`. Reading accepts both, and
any UTC offset, because the timestamps read back were often written by someone else (the
Deployment controller, kubectl, a person editing status).
"""

from __future__ import annotations

from datetime import UTC, datetime

_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
_MICROSECONDS = "%Y-%m-%dT%H:%M:%S.%fZ"


def rfc3339(timestamp: float) -> str:
    """A Unix time as the API's `Time` (whole seconds)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime(_SECONDS)


def now_rfc3339() -> str:
    """Now, as the API's `Time` (whole seconds)."""
    return datetime.now(UTC).strftime(_SECONDS)


def now_rfc3339_micro() -> str:
    """Now, as the API's `MicroTime` (what a Lease's renewTime and acquireTime must be)."""
    return datetime.now(UTC).strftime(_MICROSECONDS)


def parse_rfc3339(value: object) -> float | None:
    """The Unix time of an RFC 3339 timestamp; None for anything else (missing, not a string,
    not a time), so a caller treats an unreadable stamp like an absent one.

    A stamp without an offset is taken as UTC, as everything the API server writes is."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
