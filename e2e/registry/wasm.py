"""A real WebAssembly module for test artifacts, made with tools Debian ships.

A WASI preview 1 command module, compiled from C by clang with Debian's wasi-libc. Compiling
takes a second or more on a busy machine, so the result is cached under
``$WASMKUBE_CACHE/testdata`` (default ``~/.cache/wasmkube/testdata``), keyed by the source and
the compiler version. Components (WASI 0.2) come from :mod:`.components`.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from e2e.support import state

HELLO_C = """\
#include <stdio.h>

int main(void) {
    puts("hello from a wasmkube test module");
    return 0;
}
"""

CLANG_FLAGS = ("--target=wasm32-wasi", "--sysroot=/usr", "-O2")


def cache_dir() -> Path:
    return state.cache_dir() / "testdata"


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

