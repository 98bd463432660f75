"""Run Debian's `wrk` against one pod IP and read its report.

wrk is a closed-loop generator: `-c` connections, each sending its next request when the last
answer came back, for `-d` seconds, so requests/s is what the server sustains at that
concurrency and `--latency` gives the whole distribution. Every target is checked against the
allowed networks first (loopback and the real node's pod bridge), like every test's traffic.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

from e2e.support.traffic import check_allowed

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def available() -> str | None:
    """None when wrk is installed, else why not (run-bench.sh installs Debian's package)."""
    return None if shutil.which("wrk") else "wrk not installed (apt-get install wrk; e2e/run-bench.sh does)"


def _ms(text: str) -> float | None:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    return round(float(match.group(1)) * _UNITS[match.group(2)], 3) if match else None


def parse(output: str) -> dict[str, Any]:
    """requests/s, latency percentiles (ms), totals and errors from `wrk --latency` output."""
    out: dict[str, Any] = {}
    if m := re.search(r"Requests/sec:\s+([0-9.]+)", output):
        out["requests_per_second"] = round(float(m.group(1)), 1)
    if m := re.search(r"(\d+) requests in ([0-9.]+)(us|ms|s|m)", output):
        out["requests"] = int(m.group(1))
        out["seconds"] = round((_ms(m.group(2) + m.group(3)) or 0) / 1000, 2)
    for pct in ("50", "75", "90", "99"):
        if m := re.search(rf"^\s+{pct}%\s+(\S+)", output, re.MULTILINE):
            out[f"p{pct}_ms"] = _ms(m.group(1))
    if m := re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", output):
        out["mean_ms"], out["max_ms"] = _ms(m.group(1)), _ms(m.group(3))
    errors = 0
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        errors += sum(int(g) for g in m.groups())
        out["socket_errors"] = {k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), m.groups(),
                                                            strict=True)}
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        out["non_2xx"] = int(m.group(1))
        errors += int(m.group(1))
    out["errors"] = errors
    return out


def run(ip: str, port: int, path: str = "/", threads: int = 2, connections: int = 16, seconds: float = 10.0,
        latency: bool = True, host: str | None = None) -> dict[str, Any]:
    """One bounded wrk run (with `host` as every request's Host header); raises RuntimeError if
    wrk fails or reports nothing."""
    check_allowed(ip)
    threads = min(threads, connections)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s"]
    if latency:
        cmd.append("--latency")
    if host:
        cmd += ["-H", f"Host: {host}"]
    cmd.append(f"http://{ip}:{port}{path}")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False)
    result = parse(done.stdout)
    if done.returncode != 0 or "requests_per_second" not in result:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {done.returncode}): {(done.stderr or done.stdout)[-400:]}")
    result["command"] = " ".join(cmd)
    return result
