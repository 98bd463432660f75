"""The real node's pod waits (e2e/node/workloads.py) against a scripted kubectl: what they return,
and that a stuck pod fails at once with the reason instead of waiting out the timeout."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest

from e2e.node import workloads


class FakeKubectl:
    """Answers `get pod` with the next scripted pod (the last one repeats); records every call."""

    def __init__(self, *pods: dict[str, Any]) -> None:
        self.pods = list(pods)
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, *args: str, check: bool = True, **_: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(args)
        if args[:2] == ("get", "events"):
            return subprocess.CompletedProcess(args, 0, "Warning  Failed  pull failed", "")
        pod = self.pods.pop(0) if len(self.pods) > 1 else self.pods[0]
        return subprocess.CompletedProcess(args, 0, json.dumps(pod), "")


def pod(phase: str, waiting: str | None = None) -> dict[str, Any]:
    statuses = [{"state": {"waiting": {"reason": waiting, "message": "nope"}}}] if waiting else []
    return {"status": {"phase": phase, "containerStatuses": statuses}}


def test_wait_running_returns_seconds_since_the_create() -> None:
    kubectl = FakeKubectl(pod("Pending"), pod("Pending"), pod("Running"))
    started = time.monotonic()
    seconds = workloads.wait_running(kubectl, "ns", "p", started, timeout=10)
    assert 0 < seconds < 5
    assert len(kubectl.calls) == 3


def test_wait_running_fails_at_once_when_stuck_with_the_events() -> None:
    kubectl = FakeKubectl(pod("Pending", waiting="ErrImagePull"))
    began = time.monotonic()
    with pytest.raises(AssertionError, match=r"not Running \(ErrImagePull: nope\)(.|\n)*pull failed"):
        workloads.wait_running(kubectl, "ns", "p", time.monotonic(), timeout=60)
    assert time.monotonic() - began < 5


def test_wait_running_times_out_naming_the_timeout() -> None:
    kubectl = FakeKubectl(pod("Pending"))
    with pytest.raises(AssertionError, match=r"not Running \(timeout\)"):
        workloads.wait_running(kubectl, "ns", "p", time.monotonic(), timeout=0.3)


def test_wait_phase_returns_the_pod() -> None:
    done = pod("Succeeded")
    assert workloads.wait_phase(FakeKubectl(pod("Running"), done), "ns", "p", {"Succeeded", "Failed"}) == done


def test_wait_phase_reports_the_last_status_on_timeout() -> None:
    with pytest.raises(AssertionError, match=r"never reached \['Failed', 'Succeeded'\]: timeout; status: .*Running"):
        workloads.wait_phase(FakeKubectl(pod("Running")), "ns", "p", {"Succeeded", "Failed"}, timeout=0.3)


def test_wait_phase_fails_at_once_when_stuck() -> None:
    with pytest.raises(AssertionError, match="CrashLoopBackOff"):
        workloads.wait_phase(FakeKubectl(pod("Running", waiting="CrashLoopBackOff")), "ns", "p", {"Succeeded"},
                             timeout=60)
