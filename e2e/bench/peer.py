"""spin-operator, the closest peer, built from its Go module and run as a local process.

The module comes through the Go module proxy like every other binary here (no git clone, no
container image). Its path is still `github.com/spinkube/spin-operator` (the repository moved to
spinframework/ but kept the module path), and v0.6.1 is the last release. Its CRDs are taken
from the module zip (`config/crd/bases`). It runs with webhooks off (its default: no
cert-manager here), leader election off (its default), plain-HTTP metrics and health on free
loopback ports, and its own ServiceAccount so the audit log can count its requests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from e2e.support import state
from e2e.support.operator import LocalDaemon, free_port

MODULE = "github.com/spinkube/spin-operator"
VERSION = os.environ.get("BENCH_PEER_VERSION", "v0.6.1")


class PeerUnavailable(RuntimeError):
    """The peer could not be built or started; the message says exactly why."""


def cache_dir() -> Path:
    return state.cache_dir() / "peer"


def _go_env() -> dict[str, str]:
    root = cache_dir()
    return {**os.environ, "GOMODCACHE": str(root / "gomod"), "GOCACHE": str(root / "gobuild"),
            "GOFLAGS": "-modcacherw"}


def module_dir() -> Path:
    """Download the module (cached) and return its directory in the module cache."""
    result = subprocess.run(["go", "mod", "download", "-json", f"{MODULE}@{VERSION}"], env=_go_env(),
                            capture_output=True, text=True, timeout=600, check=False, cwd=cache_dir())
    try:
        info = json.loads(result.stdout)
    except ValueError:
        info = {}
    if result.returncode != 0 or "Dir" not in info:
        raise PeerUnavailable(f"go mod download {MODULE}@{VERSION} failed: "
                              f"{info.get('Error') or result.stderr.strip()[-800:]}")
    return Path(info["Dir"])


def build() -> tuple[Path, Path]:
    """(binary, module dir); builds once per version, ~minutes on 2 cores, then cached."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    source = module_dir()
    binary = cache_dir() / "bin" / f"spin-operator-{VERSION}"
    if binary.exists():
        return binary, source
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(".partial")
    result = subprocess.run(["go", "build", "-o", str(partial), "./cmd"], env=_go_env(), cwd=source,
                            capture_output=True, text=True, timeout=3600, check=False)
    if result.returncode != 0:
        raise PeerUnavailable(f"go build of {MODULE}@{VERSION} failed: {result.stderr.strip()[-1500:]}")
    partial.rename(binary)
    return binary, source


def crd_files(source: Path) -> list[Path]:
    return sorted((source / "config" / "crd" / "bases").glob("*.yaml"))


class PeerProcess(LocalDaemon):
    """One spin-operator process; stdout/stderr to a log file."""

    name = "spin-operator"

    def __init__(self, binary: Path, kubeconfig: Path, log_path: Path) -> None:
        super().__init__(log_path)
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.metrics_port = free_port()
        self.health_port = free_port()

    def command(self) -> tuple[list[str], dict[str, str]]:
        cmd = [str(self.binary), "--enable-webhooks=false", "--leader-elect=false", "--metrics-secure=false",
               f"--metrics-bind-address=127.0.0.1:{self.metrics_port}",
               f"--health-probe-bind-address=127.0.0.1:{self.health_port}", "--zap-log-level=info"]
        return cmd, {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}/readyz"

    def start(self, timeout: float = 60.0) -> None:
        try:
            super().start(timeout)
        except RuntimeError as exc:
            raise PeerUnavailable(str(exc)) from exc

    def reconciles(self) -> float | None:
        """controller_runtime_reconcile_total for the SpinApp controller, from its metrics."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
                text = resp.read().decode()
        except (urllib.error.URLError, OSError):
            return None
        pattern = re.compile(r'^controller_runtime_reconcile_total\{[^}]*controller="spinapp"[^}]*\} (\S+)$', re.M)
        return sum(float(v) for v in pattern.findall(text))
