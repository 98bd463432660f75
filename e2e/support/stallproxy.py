"""A TCP forwarder that a test can freeze: an asymmetric network partition on loopback.

One operator replica talks to the API server through it (its own kubeconfig), the others
directly. `stall()` SIGSTOPs the forwarder: every connection through it stays open but carries
nothing, the way a half-open connection behaves, while the other replicas are unaffected.

Run as a module it is the forwarder itself: `python -m e2e.support.stallproxy LISTEN_PORT TARGET_PORT`
from the repository root (as a module, not a script: this directory holds a module named
`operator`, which must not shadow the standard library's).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from .state import REPO_ROOT
from .waiting import wait_for


class StallableProxy:
    def __init__(self, target_port: int) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.target_port = target_port
        self._process: subprocess.Popen[bytes] | None = None
        self.stalled = False

    def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "e2e.support.stallproxy", str(self.port), str(self.target_port)],
            cwd=REPO_ROOT, start_new_session=True)
        wait_for(self._listening, 10, 0.05, "the proxy to start listening")

    def _listening(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def kubeconfig(self, original: Path, path: Path) -> Path:
        """A copy of `original` whose server is this proxy (TLS passes through unchanged)."""
        config = yaml.safe_load(original.read_text())
        for cluster in config["clusters"]:
            cluster["cluster"]["server"] = f"https://127.0.0.1:{self.port}"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def stall(self) -> None:
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGSTOP)
        self.stalled = True

    def resume(self) -> None:
        if self._process is not None and self.stalled:
            os.kill(self._process.pid, signal.SIGCONT)
            self.stalled = False

    def stop(self) -> None:
        if self._process is not None:
            self.resume()
            self._process.kill()
            self._process.wait(10)
            self._process = None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def _forward(listen_port: int, target_port: int) -> None:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_forward(int(sys.argv[1]), int(sys.argv[2])))
