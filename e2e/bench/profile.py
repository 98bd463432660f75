"""Sample the operator with py-spy while it works, and name the functions that cost the most.

py-spy attaches to the running process from outside (no code change, no restart), in
`--nonblocking` mode so the operator is never paused. It records collapsed stacks ("raw"), which
are summarised here two ways: self time (the innermost frame, where the CPU really went) and
total time (any frame of the stack, i.e. including callees). Idle time is not sampled.
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
# Innermost frames that mean "waiting", not working. In --nonblocking mode py-spy cannot always
# tell an idle thread from a busy one, so the summary reports these apart.
WAITING = frozenset({
    "EpollSelector.select (selectors.py)",  # the event loop waiting for I/O
    "_worker (concurrent/futures/thread.py)",  # an executor thread waiting for work
    "Condition.wait (threading.py)", "Event.wait (threading.py)", "Thread._wait_for_tstate_lock (threading.py)",
})
# Frames present in nearly every stack (interpreter and event-loop scaffolding) say nothing.
SCAFFOLDING_PCT = 60.0
_FRAME_LINE = re.compile(r":\d+\)$")


def py_spy() -> Path | None:
    local = Path(sys.executable).parent / "py-spy"
    found = local if local.exists() else shutil.which("py-spy")
    return Path(found) if found else None


def _function(frame: str) -> str:
    """`handle (kopf/_core/reactor/processing.py:123)` -> `handle (kopf/_core/reactor/processing.py)`."""
    frame = _FRAME_LINE.sub(")", frame.strip())
    return frame.replace(str(Path(sys.prefix)) + "/lib/", "").replace("site-packages/", "")


def summarise(raw: str, top: int = 20) -> dict[str, Any]:
    """Top functions by self and by total share of the samples in collapsed-stack text."""
    waiting = 0
    self_counts: collections.Counter[str] = collections.Counter()
    total_counts: collections.Counter[str] = collections.Counter()
    module_counts: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        count = int(match["count"])
        frames = [_function(f) for f in match["stack"].split(";")[1:]]  # [0] is the process/thread
        if not frames:
            continue
        samples += count
        if frames[-1] in WAITING:
            waiting += count
            continue
        self_counts[frames[-1]] += count
        for name in set(frames):
            total_counts[name] += count
        module = re.search(r"\(([^)]*)\)$", frames[-1])
        module_counts[_package(module[1]) if module else "?"] += count

    busy = samples - waiting

    def pct(n: int) -> float:
        return round(100.0 * n / busy, 1) if busy else 0.0

    return {
        "samples": samples,
        "waiting_samples": waiting,
        "note": "percentages are of busy samples (waiting frames such as the event loop's epoll excluded)",
        "top_self": [{"function": f, "self_pct": pct(n), "total_pct": pct(total_counts[f])}
                     for f, n in self_counts.most_common(top)],
        "top_total": [{"function": f, "total_pct": pct(n)} for f, n in total_counts.most_common()
                      if pct(n) < SCAFFOLDING_PCT][:top],
        "by_package_self": {p: pct(n) for p, n in module_counts.most_common(15)},
    }


def _package(path: str) -> str:
    """The top-level package of a file path (kopf, aiohttp, wasmkube, asyncio, ...)."""
    parts = [p for p in path.split("/") if p and p not in ("python3.11", "lib", "usr", "local")]
    return parts[0].removesuffix(".py") if parts else path


class Profiler:
    """`py-spy record` attached to a pid until `stop()`."""

    def __init__(self, pid: int, output: Path, rate: int = 97) -> None:
        self.pid = pid
        self.output = output
        self.rate = rate
        self._process: subprocess.Popen[bytes] | None = None
        self.error: str | None = None

    def start(self) -> bool:
        tool = py_spy()
        if tool is None:
            self.error = "py-spy is not installed (.venv/bin/pip install py-spy)"
            return False
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.output.with_suffix(".log").open("wb")
        self._process = subprocess.Popen(
            [str(tool), "record", "--pid", str(self.pid), "--format", "raw", "--output", str(self.output),
             "--rate", str(self.rate), "--nonblocking"],
            stdout=self._log, stderr=subprocess.STDOUT)
        return True

    def stop(self) -> dict[str, Any] | None:
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(60)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._log.close()
        try:
            raw = self.output.read_text()
        except OSError as exc:
            log = self.output.with_suffix(".log")
            self.error = f"py-spy wrote no profile ({exc}); its output: {log.read_text(errors='replace')[-500:]}"
            return None
        return {**summarise(raw), "raw_file": str(self.output)}
