"""Fixtures for the reliability, hostile-input and security tests, and the summary line.

Imported into `e2e/conftest.py` (like the operator fixtures), which also makes pytest call
`pytest_terminal_summary` from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import REGISTRY, Cluster
from .operator import OperatorProcess
from .operator_fixtures import pause_session_operator
from .reliability import NOTES, TALLY


class DedicatedOperators:
    """Operator processes a test starts, crashes and restarts itself, each watching only the
    test's namespace (cluster-scoped kinds, such as WasmRuntimes, are watched by every operator)."""

    def __init__(self, cluster: Cluster, log_dir: Path) -> None:
        self.cluster = cluster
        self.log_dir = log_dir
        self.processes: list[OperatorProcess] = []

    def create(self, namespace: str, *extra_args: str, name: str = "operator",
               kubeconfig: Path | None = None) -> OperatorProcess:
        """A configured process, not started yet (optionally reaching the API server another way)."""
        process = OperatorProcess(
            kubeconfig or self.cluster.kubeconfig,
            self.log_dir / f"{name}-{len(self.processes)}.log",
            extra_args=[
                "--namespace", namespace,
                "--insecure-registry", REGISTRY,
                "--registry-timeout-seconds", "3",
                "--registry-ttl-seconds", "2",
                *extra_args,
            ],
        )  # fmt: skip
        self.processes.append(process)
        return process

    def start(self, namespace: str, *extra_args: str, name: str = "operator") -> OperatorProcess:
        process = self.create(namespace, *extra_args, name=name)
        process.start()
        return process

    def close(self) -> None:
        for process in self.processes:
            code = process.stop(timeout=20)
            print(f"\n--- {process.log_path.name} (exit {code}) ---\n{process.log_tail(25)}")


@pytest.fixture(scope="module")
def session_operator_paused(operator: OperatorProcess) -> Iterator[None]:
    """The session operator stopped for the rest of the module (one restart per module, not per
    test). Depends on `operator` on purpose: that fixture installs the CRDs and the example
    runtimes, and the operator is resumed afterwards, whether or not the tests passed."""
    with pause_session_operator(operator):
        yield


@pytest.fixture
def exclusive_operators(cluster: Cluster, session_operator_paused: None,
                        tmp_path: Path) -> Iterator[DedicatedOperators]:
    """Dedicated operators for one test, with no session operator doing the work behind its back."""
    dedicated = DedicatedOperators(cluster, tmp_path)
    try:
        yield dedicated
    finally:
        dedicated.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in NOTES:
        terminalreporter.write_line(line)
    if TALLY.tried:
        terminalreporter.write_line(TALLY.line())
        for name in TALLY.lost_names[:20]:
            terminalreporter.write_line(f"  lost: {name}")
