"""A real OCI registry for tests: Debian's ``docker-registry`` (distribution 2.8) on 127.0.0.1.

Tests talk to the same registry implementation many clusters use, not a mock, so media-type
handling, Range requests, error codes and Basic auth behave as in production. Each server gets a
free port and its own storage directory; the context manager stops the process it started.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from e2e.support.waiting import TimedOut, wait_for

REGISTRY_BINARY = "docker-registry"
START_TIMEOUT = 30.0  # generous: the CI machine may be busy compiling


def free_port() -> int:
    """A port that was free a moment ago (the kernel picks it; reuse races are unlikely)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def htpasswd_line(username: str, password: str) -> str:
    """An htpasswd entry with a bcrypt hash, the only scheme distribution accepts.

    Cost 5 (as ``htpasswd -B`` uses) keeps each authenticated request cheap.
    """
    import bcrypt  # test-only dependency, imported here so plain registries do not need it

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    return f"{username}:{hashed}\n"


@dataclass
class RegistryServer:
    """One ``docker-registry serve`` process; can be stopped and started again on the same port."""

    root: Path
    port: int = field(default_factory=free_port)
    username: str | None = None
    password: str | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: what goes into image references."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def auth(self) -> tuple[str, str] | None:
        return (self.username, self.password) if self.username and self.password else None

    @property
    def log_path(self) -> Path:
        return self.root / "registry.log"

    def write_config(self) -> Path:
        """The registry config. JSON is valid YAML, so no YAML library is needed."""
        config: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root / "data")},
                "delete": {"enabled": True},
            },
            "http": {"addr": self.host, "secret": secrets.token_hex(16)},
        }
        if self.auth:
            htpasswd = self.root / "htpasswd"
            htpasswd.write_text(htpasswd_line(*self.auth))
            config["auth"] = {"htpasswd": {"realm": "wasmkube-test", "path": str(htpasswd)}}
        path = self.root / "config.yml"
        path.write_text(json.dumps(config, indent=2))
        return path

    def start(self) -> None:
        if self.running:
            return
        binary = shutil.which(REGISTRY_BINARY)
        if binary is None:
            raise RuntimeError(f"{REGISTRY_BINARY} not found: apt-get install docker-registry")
        config = self.write_config()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self._wait_ready()

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _wait_ready(self) -> None:
        """Until ``/v2/`` answers (200 plain, 401 with auth), or fail with the registry's log."""
        def answers_or_exited() -> bool:
            if not self.running:
                return True  # no use waiting; failed below
            try:
                return requests.get(f"{self.url}/v2/", timeout=1).status_code in (200, 401)
            except requests.RequestException:
                return False

        with contextlib.suppress(TimedOut):
            wait_for(answers_or_exited, START_TIMEOUT, 0.05, f"registry on {self.host}")
            if self.running:
                return
        log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
        self.stop()
        raise RuntimeError(f"registry on {self.host} did not become ready:\n{log}")


@contextmanager
def registry_server(workdir: Path | None = None, *, auth: tuple[str, str] | None = None) -> Iterator[RegistryServer]:
    """Start a registry (with Basic auth if ``auth`` is given) and stop it on exit.

    Without ``workdir`` the storage lives in a temporary directory that is removed afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="wasmkube-registry-") as tmp:
        root = Path(workdir) if workdir is not None else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        username, password = auth if auth else (None, None)
        server = RegistryServer(root=root, username=username, password=password)
        server.start()
        try:
            yield server
        finally:
            server.stop()
