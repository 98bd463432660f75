"""Memory and CPU of a process from /proc: what the operator costs, without instrumenting it."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ProcSample:
    rss_bytes: int  # VmRSS: resident now
    hwm_bytes: int  # VmHWM: the peak resident size so far
    cpu_seconds: float  # utime + stime, user and kernel time of all threads

    def as_dict(self) -> dict[str, float]:
        return {"rss_mib": round(self.rss_bytes / MIB, 1), "peak_rss_mib": round(self.hwm_bytes / MIB, 1),
                "cpu_seconds": round(self.cpu_seconds, 2)}


def sample(pid: int) -> ProcSample:
    """Read VmRSS/VmHWM from /proc/<pid>/status and utime+stime from /proc/<pid>/stat."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024  # the kernel reports kB
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    after_name = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(after_name[11]), int(after_name[12])  # fields 14 and 15 of proc(5)
    return ProcSample(fields.get("VmRSS", 0), fields.get("VmHWM", 0), (utime + stime) / _TICKS)


def loadavg() -> list[float]:
    """1/5/15-minute load averages: a busy machine makes every other number worse."""
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
