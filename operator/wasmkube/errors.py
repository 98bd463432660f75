"""The error for a spec the operator cannot act on.

It lives outside `builders` because the builders, the controller (name conflicts, artifact checks),
the activator's routing and the CLI all raise or catch it; none of them should reach into another
layer just for an exception type.
"""

from __future__ import annotations


class SpecError(Exception):
    """A problem the user must fix. `reason` becomes the `Stalled` condition's reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
