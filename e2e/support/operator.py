"""Run the real operator (`wasmkube run`) as a process against the local cluster.

A separate process, not an in-process runner: the tests then exercise exactly what users run,
including signal handling, and can SIGKILL it to test crash recovery.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from .state import REPO_ROOT
from .waiting import wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalDaemon:
    """A long-running process on this machine: output appended to a log file, ready once an HTTP
    endpoint answers 200, stopped as Kubernetes stops a pod (SIGTERM, then SIGKILL of its group).
    Subclasses say what to run (`command`) and where readiness is asked (`health_url`)."""

    name = "process"

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    @property
    def health_url(self) -> str:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout: float = 60.0) -> None:
        cmd, env = self.command()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                             start_new_session=True)
        self.wait_healthy(timeout)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_healthy(self, timeout: float) -> None:
        def exited_or_healthy() -> bool:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self._process.returncode}; log: {self.log_tail()}")
            return self.healthy()

        wait_for(exited_or_healthy, timeout, 0.2, f"{self.name} to be healthy",
                 error=lambda _: RuntimeError(f"{self.name} not healthy after {timeout}s; log: {self.log_tail()}"))

    def stop(self, timeout: float = 30.0) -> int | None:
        """Graceful stop (SIGTERM), as Kubernetes does; SIGKILL only if it hangs."""
        if self._process is None or self._process.poll() is not None:
            return self._process.returncode if self._process else None
        self._process.send_signal(signal.SIGTERM)
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, with no chance to clean up."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


class OperatorProcess(LocalDaemon):
    """One `wasmkube run` process with its own liveness and metrics ports and a log file."""

    name = "operator"

    def __init__(self, kubeconfig: Path, log_path: Path, extra_args: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        super().__init__(log_path)
        self.kubeconfig = kubeconfig
        self.extra_args = list(extra_args or [])
        self.env = dict(env or {})
        self.liveness_port = free_port()
        self.metrics_port = free_port()

    def command(self) -> tuple[list[str], dict[str, str]]:
        cmd = [
            sys.executable, "-m", "wasmkube.cli", "run",
            "--liveness-port", str(self.liveness_port),
            "--metrics-port", str(self.metrics_port),
            "--bind-address", "127.0.0.1",
            "--log-format", "json",
            *self.extra_args,
        ]
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), **self.env}
        env["PYTHONPATH"] = str(REPO_ROOT / "operator")
        return cmd, env

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.liveness_port}/healthz"

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return str(resp.read().decode())
