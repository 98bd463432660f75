"""The one polling loop of the harness: wait until something becomes true.

Controllers act asynchronously and daemons take a while to start, so tests, the cluster and the
node all wait for the state things converge to. They all use `wait_for`, so every wait has a
bound, names what it waited for when it gives up, and lets a broken check fail at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, TypeVar

T = TypeVar("T")


class TimedOut(AssertionError):
    """`wait_for` gave up. An AssertionError, so a test whose wait times out fails (not errors)."""


def wait_for(predicate: Callable[[], T | Literal[False] | None], timeout: float = 60.0, interval: float = 0.5,
             message: str = "condition", *, error: Callable[[str], Exception] = TimedOut) -> T:
    """Call predicate until it returns something truthy and return that value (never None or
    False, which the type says, so `wait_for(lambda: x if ok else None)` gives x's type).

    The predicate is called once more after the deadline passes, so a wait never gives up
    without having looked after the full timeout. On timeout this raises `error(text)`, where
    the text names `message` and, when it says something (not just False or None), the last
    value seen, which usually tells why it never converged. The default error is TimedOut; the
    cluster and node scripts pass their own so that their CLIs report it as one line.
    Exceptions from the predicate propagate immediately: a broken predicate, or one that sees
    that waiting is pointless (the process died), should not look like a slow cluster.
    """
    deadline = time.monotonic() + timeout
    while True:
        expired = time.monotonic() >= deadline
        value = predicate()
        if value:
            return value
        if expired:
            detail = "" if value is None or value is False else f"; last value: {value!r}"
            raise error(f"timed out after {timeout:.0f}s waiting for {message}{detail}")
        time.sleep(interval)
