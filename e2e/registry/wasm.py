"""Real WebAssembly binaries for test artifacts, made with tools Debian ships.

* A WASI preview 1 command module, compiled from C by clang with Debian's wasi-libc. Compiling
  takes a second or more on a busy machine, so the result is cached under
  ``$WASMKUBE_CACHE/testdata`` (default ``~/.cache/wasmkube/testdata``), keyed by the source and
  the compiler version.
* A component. No component toolchain is packaged for Debian bookworm (``wasm-tools`` and
  ``wasm-component-ld`` would have to be compiled from crates.io, minutes of CPU), so the component
  is assembled here byte by byte per the component-model binary format: it embeds a core module
  exporting ``run``, instantiates it, lifts the function and exports it as component function
  ``run``. wasmtime 50 validates, instantiates and calls it; it is small but genuine.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

HELLO_C = """\
#include <stdio.h>

int main(void) {
    puts("hello from a wasmkube test module");
    return 0;
}
"""

CLANG_FLAGS = ("--target=wasm32-wasi", "--sysroot=/usr", "-O2")


def cache_dir() -> Path:
    base = os.environ.get("WASMKUBE_CACHE") or str(Path.home() / ".cache" / "wasmkube")
    return Path(base) / "testdata"


def wasip1_module() -> bytes:
    """The compiled hello-world module (``00 61 73 6d 01 00 00 00``), cached across runs."""
    clang = shutil.which("clang")
    if clang is None:
        raise RuntimeError("clang not found: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32")
    version = subprocess.run([clang, "--version"], capture_output=True, text=True, check=True).stdout
    key = hashlib.sha256("\0".join((HELLO_C, version, *CLANG_FLAGS)).encode()).hexdigest()[:16]
    cached = cache_dir() / f"hello-wasip1-{key}.wasm"
    if cached.exists():
        return cached.read_bytes()
    with tempfile.TemporaryDirectory(prefix="wasmkube-cc-") as tmp:
        source, output = Path(tmp) / "hello.c", Path(tmp) / "hello.wasm"
        source.write_text(HELLO_C)
        subprocess.run([clang, *CLANG_FLAGS, "-o", str(output), str(source)], check=True, capture_output=True)
        module = output.read_bytes()
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".tmp")
    partial.write_bytes(module)
    partial.replace(cached)  # atomic: parallel test runs never read half a file
    return module


def component() -> bytes:
    """A minimal valid component exporting ``run: func()`` (preamble ``00 61 73 6d 0d 00 01 00``)."""
    sections = [
        _section(1, _core_module_exporting_run()),  # core module section
        _section(2, _vec([b"\x00" + _u32(0) + _vec([])])),  # core instance: instantiate module 0
        _section(6, _vec([b"\x00\x00" + b"\x01" + _u32(0) + _name("run")])),  # alias core func export
        _section(7, _vec([b"\x40" + _vec([]) + b"\x01\x00"])),  # component func type () -> ()
        _section(8, _vec([b"\x00\x00" + _u32(0) + _vec([]) + _u32(0)])),  # canon lift core func 0
        _section(11, _vec([b"\x00" + _name("run") + b"\x01" + _u32(0) + b"\x00"])),  # export func 0
    ]
    return b"\x00asm\x0d\x00\x01\x00" + b"".join(sections)


def _core_module_exporting_run() -> bytes:
    """``(module (func (export "run")))`` in binary form."""
    return b"\x00asm\x01\x00\x00\x00" + b"".join(
        [
            _section(1, _vec([b"\x60" + _vec([]) + _vec([])])),  # type 0: () -> ()
            _section(3, _vec([_u32(0)])),  # func 0 has type 0
            _section(7, _vec([_name("run") + b"\x00" + _u32(0)])),  # export func 0 as "run"
            _section(10, _vec([_u32(2) + b"\x00\x0b"])),  # body: no locals, end
        ]
    )


def _u32(value: int) -> bytes:
    """Unsigned LEB128, the integer encoding of both binary formats."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _vec(items: list[bytes]) -> bytes:
    return _u32(len(items)) + b"".join(items)


def _name(text: str) -> bytes:
    data = text.encode()
    return _u32(len(data)) + data


def _section(section_id: int, body: bytes) -> bytes:
    return bytes([section_id]) + _u32(len(body)) + body
