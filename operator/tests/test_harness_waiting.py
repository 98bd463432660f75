"""The e2e harness's one polling loop, `wait_for`."""

from __future__ import annotations

import time

import pytest

from e2e.support.waiting import TimedOut, wait_for


class Failed(RuntimeError):
    pass


def test_returns_the_first_truthy_value() -> None:
    values = iter([None, [], 0, {"ready": True}])
    assert wait_for(lambda: next(values), timeout=5, interval=0) == {"ready": True}


def test_times_out_naming_what_and_the_last_informative_value() -> None:
    with pytest.raises(TimedOut, match=r"timed out after 0s waiting for the pods; last value: \[\]"):
        wait_for(lambda: [], timeout=0.05, interval=0.01, message="the pods")


def test_false_and_none_are_not_worth_reporting() -> None:
    for value in (False, None):
        with pytest.raises(TimedOut) as raised:
            wait_for(lambda v=value: v, timeout=0, interval=0, message="x")
        assert str(raised.value) == "timed out after 0s waiting for x"


def test_the_caller_chooses_the_error() -> None:
    with pytest.raises(Failed, match="waiting for etcd"):
        wait_for(lambda: False, timeout=0, interval=0, message="etcd", error=Failed)


def test_a_broken_predicate_fails_at_once() -> None:
    def broken() -> bool:
        raise Failed("the process died")

    began = time.monotonic()
    with pytest.raises(Failed, match="died"):
        wait_for(broken, timeout=30)
    assert time.monotonic() - began < 1


def test_looks_once_more_after_the_deadline() -> None:
    """A check that turns true during the last sleep is seen, not reported as a timeout."""
    began = time.monotonic()
    assert wait_for(lambda: time.monotonic() - began > 0.2, timeout=0.1, interval=0.3)


def test_a_zero_timeout_checks_once() -> None:
    calls: list[int] = []
    with pytest.raises(TimedOut):
        wait_for(lambda: calls.append(1), timeout=0, interval=10)
    assert calls == [1]
