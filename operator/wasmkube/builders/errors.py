"""The one error type builders raise: a spec the operator cannot turn into objects."""

from __future__ import annotations


class SpecError(Exception):
    """A problem the user must fix. `reason` becomes the `Stalled` condition's reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
