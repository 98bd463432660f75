"""Real WebAssembly components for tests and the demo, built from source on demand and cached.

Tests that claim "a component serves HTTP" need a component that really does, built from source
in this repository rather than a binary blob checked in. Each function below builds one, the
first time, with pinned tools (installed on first use by :mod:`.toolchain`), and caches the result
under ``$WASMKUBE_CACHE/testdata`` keyed by every source file, the flags and the tool versions:
a warm run costs a file read, an edited source or a new pin rebuilds. Writes are atomic, so
parallel test processes never read half a file.

* :func:`greeter_component` — ``examples/greeter/greeter.c``, wasi:http in plain C (no SDK, no
  adapter): clang ``-mexec-model=reactor`` then ``wasm-tools component embed`` + ``new``.
* :func:`spin_import_component` — the greeter reading a Spin variable: it imports
  ``fermyon:spin/variables@2.0.0``, so a host without Spin must refuse it.
* :func:`python_http_component` — a Python handler via componentize-py (about 18 MB).
* :func:`command_component` — a ``wasi:cli/run`` component from a wasi-libc C program plus the
  preview 1 command adapter.
* :func:`native_greeter_binary` / :func:`native_greeter_image_tar` — the greeter's routes as a
  static native HTTP server (gcc ``-static``), the benchmark's runc twin.

``python -m e2e.registry.components greeter -o greeter.wasm`` builds one from the command line.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from . import toolchain
from .toolchain import COMPONENTIZE_PY, JCO, SPIN_SDK, WASM_TOOLS, ToolUnavailable, write_atomic

REPO = Path(__file__).resolve().parents[2]
GREETER_DIR = REPO / "examples" / "greeter"
# Not "components/": a directory beside components.py with that name makes type checkers resolve
# `e2e.registry.components` to the directory (a namespace package) instead of the module.
COMPONENTS_DIR = Path(__file__).resolve().parent / "component_sources"

BUILD_TIMEOUT = 300.0  # seconds per tool call; componentize-py takes 15-30 s on a busy machine
WASM_CLANG_FLAGS = ("--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-Wall", "-Wextra", "-Werror")
NATIVE_GCC_FLAGS = ("-static", "-O2", "-pthread", "-Wall", "-Wextra", "-Werror")
NATIVE_IMAGE = "wasmkube.local/greeter-native:v1"  # name inside the docker-archive tar
NATIVE_PATH_IN_IMAGE = "/greeter"
NATIVE_USER = "65535:65535"  # no root needed: it only listens on an unprivileged port

# What each component imports and exports, as `wasm-tools component wit` prints it. The CNCF
# artifact config repeats them (rust-oci-wasm's `component` block); e2e/test_components.py checks
# these lists against the built binaries, so they cannot drift.
HTTP_HANDLER = "wasi:http/incoming-handler@0.2.0"
GREETER_IMPORTS = (
    "wasi:cli/environment@0.2.0",
    "wasi:io/poll@0.2.0",
    "wasi:clocks/monotonic-clock@0.2.0",
    "wasi:io/error@0.2.0",
    "wasi:io/streams@0.2.0",
    "wasi:http/types@0.2.0",
)
SPIN_VARIABLES = "fermyon:spin/variables@2.0.0"
SPIN_IMPORT_IMPORTS = (SPIN_VARIABLES, *(i for i in GREETER_IMPORTS if i != "wasi:cli/environment@0.2.0"))
CLI_RUN = "wasi:cli/run@0.2.12"  # the version jco's adapter implements

_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


# -- the components ---------------------------------------------------------------------------


def with_custom_section(wasm: bytes, salt: str) -> bytes:
    """The same module or component with a custom section appended: it behaves the same but has
    a digest no node has pulled or compiled, for truly cold starts on a warm machine."""
    payload = _leb128(len(SALT_SECTION)) + SALT_SECTION + salt.encode()
    return wasm + b"\x00" + _leb128(len(payload)) + payload


def _leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


SALT_SECTION = b"wasmkube-salt"


def greeter_component(version: str = "v1", healthz_status: int = 200) -> bytes:
    """The example greeter (examples/greeter), a wasi:http/incoming-handler@0.2.0 component.

    ``GET /`` answers ``<GREETING or "hello"> (<version>)\\n``, ``/healthz`` answers
    ``healthz_status``, ``/trap`` traps (the host must answer 500), ``/slow?ms=N`` waits N ms.
    ``version`` and ``healthz_status`` are compile-time defines, so v1, v2 and an unhealthy v1 are
    distinct binaries with distinct digests, as distinct images must be.
    """
    _check_variant(version, healthz_status)
    defines = (f'-DGREETER_VERSION="{version}"', f"-DHEALTHZ_STATUS={healthz_status}")
    sources = [GREETER_DIR / "greeter.c", GREETER_DIR / "routes.h", GREETER_DIR / "greeter.wit"]
    return _cached(f"greeter-{version}-{healthz_status}", sources, [*defines, *_wasm_tool_pins()],
                   lambda tmp: _c_http_component(tmp, GREETER_DIR / "greeter.c", defines, "greeter", {}))


def spin_import_component() -> bytes:
    """The greeter reading its greeting from a Spin variable: it exports incoming-handler but
    imports ``fermyon:spin/variables@2.0.0``, so a host without Spin must refuse to instantiate
    it, naming that import (a Spin app sent to the wasmtime runtime by mistake)."""
    spin = COMPONENTS_DIR / "spin"
    sources = [spin / "spin_greeting.c", spin / "variables.wit", spin / "world.wit", *_greeter_sources()]
    extra = {"greeter": [GREETER_DIR / "greeter.wit"], "spin": [spin / "variables.wit"]}
    return _cached("spin-import", sources, _wasm_tool_pins(),
                   lambda tmp: _c_http_component(tmp, spin / "spin_greeting.c", (), "spin-import", extra,
                                                 world_file=spin / "world.wit"))


def python_http_component() -> bytes:
    """A wasi:http handler in Python (e2e/registry/component_sources/python/app.py) built by
    componentize-py: ``/`` answers ``<GREETING or hello> (python)``, ``/healthz`` 200.

    It carries CPython (about 18 MB) and imports wasi:cli/* for its runtime, so it is the test
    for large pulls, slow first compiles and hosts that must offer the CLI interfaces. Unlike the
    C builds it is not bit-reproducible (componentize-py's snapshot differs per build), so its
    digest is stable only as long as the cache holds it.
    """
    python = COMPONENTS_DIR / "python"
    sources = [python / "app.py", python / "world.wit"]
    return _cached("python-http", sources, [COMPONENTIZE_PY.requirement, SPIN_SDK],
                   lambda tmp: _python_component(tmp, python))


def command_component() -> bytes:
    """A ``wasi:cli/run`` component (e2e/registry/component_sources/command/command.c): prints its argv
    and ``WASMKUBE_GREETING``, then exits with ``EXIT_CODE`` (default 0).

    WASI 0.2's ``exit`` carries only ok/error, so a host reports any non-zero code as 1.
    """
    source = COMPONENTS_DIR / "command" / "command.c"
    return _cached("command", [source], [*_wasm_tool_pins(), JCO],
                   lambda tmp: _command_component(tmp, source))


def native_greeter_binary(version: str = "v1", healthz_status: int = 200) -> bytes:
    """The greeter's routes as a static x86-64 Linux HTTP/1.1 server (examples/greeter/native),
    answering ``/`` and ``/healthz`` byte-for-byte like :func:`greeter_component` with the same
    arguments. Listens on ``$PORT`` (8080) at ``$BIND_ADDR`` (0.0.0.0)."""
    _check_variant(version, healthz_status)
    defines = (f'-DGREETER_VERSION="{version}"', f"-DHEALTHZ_STATUS={healthz_status}")
    sources = [GREETER_DIR / "native" / "server.c", GREETER_DIR / "routes.h"]
    return _cached(f"greeter-native-{version}-{healthz_status}", sources, [*defines, _gcc_version()],
                   lambda tmp: _native_greeter(tmp, defines), suffix="")


def native_greeter_image_tar(name: str = NATIVE_IMAGE, version: str = "v1") -> bytes:
    """The native greeter as a one-file docker-archive image (what ``ctr images import`` takes),
    packed like the real node's pause image by e2e/node/pack_image.py."""
    from e2e.node import pack_image

    layer = native_greeter_layer(version)
    config = pack_image.image_config(layer, NATIVE_PATH_IN_IMAGE, NATIVE_USER)
    return pack_image.docker_archive(name, layer, config)


def native_greeter_layer(version: str = "v1") -> bytes:
    """The uncompressed layer tar: the static server at /greeter, mode 0755, mtime 0."""
    from e2e.node import pack_image

    return pack_image.layer_tar(native_greeter_binary(version), NATIVE_PATH_IN_IMAGE)


# -- builds -----------------------------------------------------------------------------------


def _check_variant(version: str, healthz_status: int) -> None:
    """Both end up in a C define: refuse anything that is not a plain version or a status."""
    if not _VERSION.match(version):
        raise ValueError(f"version must match {_VERSION.pattern}, got {version!r}")
    if not 100 <= healthz_status <= 599:
        raise ValueError(f"healthz_status must be an HTTP status (100-599), got {healthz_status}")


def _greeter_sources() -> list[Path]:
    return [GREETER_DIR / "greeter.c", GREETER_DIR / "routes.h", GREETER_DIR / "greeter.wit"]


def _wasm_tool_pins() -> list[str]:
    return [_clang_version(), WASM_TOOLS.requirement, SPIN_SDK]


def _cached(name: str, sources: Iterable[Path], parameters: Iterable[str], build: Callable[[Path], Path],
            suffix: str = ".wasm") -> bytes:
    """The cached build of ``name``, or a fresh one stored atomically under the key of its inputs."""
    digest = hashlib.sha256()
    for source in sorted(set(sources)):
        digest.update(source.relative_to(REPO).as_posix().encode() + b"\0" + source.read_bytes() + b"\0")
    for parameter in parameters:
        digest.update(parameter.encode() + b"\0")
    cached = toolchain.cache_root() / "testdata" / f"{name}-{digest.hexdigest()[:16]}{suffix}"
    if cached.exists():
        return cached.read_bytes()
    with tempfile.TemporaryDirectory(prefix=f"wasmkube-{name}-") as tmp:
        data = build(Path(tmp)).read_bytes()
    write_atomic(cached, data)
    _drop_stale(cached, name, suffix)
    return data


def _drop_stale(current: Path, name: str, suffix: str) -> None:
    """Remove builds of ``name`` under older keys (an edited source, a new pin): the Python
    component alone is 18 MB a build, and nothing asks for an old key again."""
    stale = re.compile(rf"{re.escape(name)}-[0-9a-f]{{16}}{re.escape(suffix)}")
    for path in current.parent.iterdir():
        if path != current and stale.fullmatch(path.name):
            path.unlink(missing_ok=True)


def _run(tool: str, args: list[str | Path], cwd: Path | None = None) -> None:
    """One build step; a failure names the tool and shows its output (compiler errors included)."""
    command = [str(a) for a in args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT, cwd=cwd, check=False)
    except FileNotFoundError as err:
        raise ToolUnavailable(f"{tool} not found: {err}") from err
    except subprocess.TimeoutExpired as err:
        raise ToolUnavailable(f"{tool} timed out after {BUILD_TIMEOUT:.0f}s: {' '.join(command)}") from err
    if done.returncode != 0:
        raise ToolUnavailable(f"{tool} failed (exit {done.returncode}): {' '.join(command)}\n"
                              f"{(done.stderr + done.stdout)[-4000:]}")


def _require(binary: str, hint: str) -> str:
    found = shutil.which(binary)
    if found is None:
        raise ToolUnavailable(f"{binary} not found: {hint}")
    return found


@functools.cache
def _clang_version() -> str:
    clang = _require("clang", "apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32")
    return subprocess.run([clang, "--version"], capture_output=True, text=True, check=True, timeout=60).stdout


@functools.cache
def _gcc_version() -> str:
    gcc = _require("gcc", "apt-get install gcc libc6-dev (its libc.a links the static server)")
    return subprocess.run([gcc, "--version"], capture_output=True, text=True, check=True, timeout=60).stdout


def _wit_dir(tmp: Path, world_file: Path, extra_packages: dict[str, list[Path]]) -> Path:
    """A WIT directory for one world: the world file, and ``deps/`` with the WASI 0.2.0 packages
    (from the spin-sdk wheel, in the tool cache) plus any package of ours it includes."""
    wit = tmp / "wit"
    deps = wit / "deps"
    deps.mkdir(parents=True)
    shutil.copy(world_file, wit / world_file.name)
    for package in toolchain.wasi_wit_deps().iterdir():
        (deps / package.name).symlink_to(package, target_is_directory=True)
    for name, files in extra_packages.items():
        (deps / name).mkdir()
        for file in files:
            shutil.copy(file, deps / name / file.name)
    return wit


def _c_http_component(tmp: Path, source: Path, defines: Iterable[str], world: str,
                      extra_packages: dict[str, list[Path]], world_file: Path | None = None) -> Path:
    """clang → core module (reactor: no main, `_initialize` runs constructors) → embed the world's
    type information → `component new`. No adapter: the C code imports only WASI 0.2 functions,
    and `component new` fails loudly if it ever imports a preview 1 one."""
    clang = _require("clang", "apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32")
    wasm_tools = toolchain.wasm_tools()
    wit = _wit_dir(tmp, world_file or GREETER_DIR / "greeter.wit", extra_packages)
    core, embedded, component = tmp / "core.wasm", tmp / "embedded.wasm", tmp / "component.wasm"
    _run("clang", [clang, *WASM_CLANG_FLAGS, "-mexec-model=reactor", *defines, f"-I{GREETER_DIR}",
                   "-o", core, source])
    _run("wasm-tools component embed", [wasm_tools, "component", "embed", wit, "--world", world, core,
                                        "-o", embedded])
    _run("wasm-tools component new", [wasm_tools, "component", "new", embedded, "-o", component])
    _run("wasm-tools validate", [wasm_tools, "validate", component])
    return component


def _python_component(tmp: Path, python: Path) -> Path:
    """componentize-py, run from a copy of the app (it writes __pycache__ beside its input) in
    its own venv (it scans the active environment for WIT and must not see the project's)."""
    componentize = toolchain.componentize_py()
    wit = _wit_dir(tmp, python / "world.wit", {})
    app_dir = tmp / "app"
    app_dir.mkdir()
    shutil.copy(python / "app.py", app_dir / "app.py")
    output = tmp / "python-http.wasm"
    _run("componentize-py", [componentize, "-d", wit, "-w", "python-greeter", "componentize", "app",
                             "-p", app_dir, "-o", output], cwd=app_dir)
    return output


def _command_component(tmp: Path, source: Path) -> Path:
    """A wasi-libc command module, adapted from preview 1 to a ``wasi:cli/run`` component."""
    clang = _require("clang", "apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32")
    wasm_tools = toolchain.wasm_tools()
    adapter = toolchain.preview1_command_adapter()
    core, component = tmp / "core.wasm", tmp / "command.wasm"
    _run("clang", [clang, *WASM_CLANG_FLAGS, "-o", core, source])
    _run("wasm-tools component new", [wasm_tools, "component", "new", core,
                                      "--adapt", f"wasi_snapshot_preview1={adapter}", "-o", component])
    _run("wasm-tools validate", [wasm_tools, "validate", component])
    return component


def _native_greeter(tmp: Path, defines: Iterable[str]) -> Path:
    gcc = _require("gcc", "apt-get install gcc libc6-dev")
    output = tmp / "greeter-native"
    _run("gcc", [gcc, *NATIVE_GCC_FLAGS, *defines, "-o", output, GREETER_DIR / "native" / "server.c"])
    return output


# -- command line -----------------------------------------------------------------------------

_BUILDERS: dict[str, Callable[[argparse.Namespace], bytes]] = {
    "greeter": lambda a: greeter_component(a.version, a.healthz_status),
    "spin-import": lambda a: spin_import_component(),
    "python": lambda a: python_http_component(),
    "command": lambda a: command_component(),
    "native": lambda a: native_greeter_binary(a.version, a.healthz_status),
    "native-image": lambda a: native_greeter_image_tar(version=a.version),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build one test component (cached) and write it to a file.")
    parser.add_argument("what", choices=sorted(_BUILDERS))
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--version", default="v1", help="greeter version (compiled in)")
    parser.add_argument("--healthz-status", type=int, default=200, help="greeter /healthz status (compiled in)")
    args = parser.parse_args(argv)
    data = _BUILDERS[args.what](args)
    write_atomic(args.output, data)
    if args.what == "native":
        args.output.chmod(0o755)
    print(f"{args.output}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
