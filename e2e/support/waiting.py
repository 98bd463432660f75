"""Polling helper for eventually-consistent cluster state."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 60.0, interval: float = 0.5,
             message: str = "condition") -> T:
    """Call predicate until it returns something truthy and return that value.

    Controllers act asynchronously, so tests assert on the state they converge to. On timeout
    this raises AssertionError (a plain test failure, not an error) naming `message` and the
    last value seen, which usually says why it never converged. Exceptions from the predicate
    propagate immediately: a broken predicate should not look like a slow cluster.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {message}; last value: {value!r}")
        time.sleep(interval)
