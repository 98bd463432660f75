"""The processes and memory of a pod on the real node, read from cgroups and /proc.

A pod's cost on a node is more than its container: kubelet puts the sandbox (pause) and the
container processes into the pod's cgroup (`<cgroupRoot>/kubepods[/<qos>]/pod<uid>`), and the
containerd shim that created them lives outside it, as their parent (a shim is the subreaper of
what it starts). So a pod's processes are everything in its cgroup plus the nearest
`containerd-shim*` ancestor of each. Memory is summed per process from
/proc/<pid>/smaps_rollup: RSS (resident pages, shared ones counted in full) and PSS (each shared
page divided among the processes that map it, so PSS sums to what the node really spends, e.g.
the shim binary's text shared by 100 shims counts once in total). The cgroup's own charge
(memory.usage_in_bytes, page cache included) is reported beside it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path

from .procstat import MIB

CGROUP_FS = Path("/sys/fs/cgroup")
CGROUP_ROOT = "wasmkube"  # e2e/node/realnode.py's cgroupRoot
QOS_DIRS = ("", "besteffort", "burstable")


HIERARCHIES = {"memory": ("memory",), "cpuacct": ("cpu,cpuacct", "cpuacct,cpu", "cpuacct")}


def _controller_dir(controller: str) -> Path:
    """The cgroup v1 hierarchy of `controller` that holds our cgroupRoot, else the v2 tree."""
    for name in HIERARCHIES[controller]:
        if (CGROUP_FS / name / CGROUP_ROOT).is_dir():
            return CGROUP_FS / name
    return CGROUP_FS


def pod_cgroup(uid: str, controller: str = "memory") -> Path | None:
    """The pod's cgroup directory in `controller`'s hierarchy, or None when it has none (yet)."""
    base = _controller_dir(controller) / CGROUP_ROOT / "kubepods"
    for qos in QOS_DIRS:
        candidate = base / qos / f"pod{uid}" if qos else base / f"pod{uid}"
        if candidate.is_dir():
            return candidate
    return None


def cgroup_pids(directory: Path) -> set[int]:
    pids: set[int] = set()
    for dirpath, _, files in os.walk(directory):
        if "cgroup.procs" in files:
            try:
                pids.update(int(p) for p in (Path(dirpath) / "cgroup.procs").read_text().split())
            except OSError:
                continue
    return pids


def _stat(pid: int) -> tuple[str, int] | None:
    """(comm, ppid) from /proc/<pid>/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1: raw.rindex(")")]
    return comm, int(raw[raw.rindex(")") + 2:].split()[1])


def shim_of(pid: int) -> int | None:
    """The nearest ancestor whose command name starts with `containerd-shim` (truncated to 15)."""
    seen = 0
    current = pid
    while current > 1 and seen < 64:
        stat = _stat(current)
        if stat is None:
            return None
        comm, parent = stat
        if current != pid and comm.startswith("containerd-shim"):
            return current
        current, seen = parent, seen + 1
    return None


@dataclasses.dataclass
class PodMemory:
    pids: list[int]
    shims: list[int]
    rss_bytes: int
    pss_bytes: int
    cgroup_bytes: int | None  # the pod cgroup's charge (page cache included)

    def as_dict(self) -> dict[str, object]:
        return {"processes": len(self.pids), "shim_processes": len(self.shims),
                "rss_mib": round(self.rss_bytes / MIB, 2), "pss_mib": round(self.pss_bytes / MIB, 2),
                "cgroup_mib": None if self.cgroup_bytes is None else round(self.cgroup_bytes / MIB, 2)}


def smaps_rollup(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes; (0, 0) for a process that is gone or has no address space."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == "Rss":
                rss = int(value.split()[0]) * 1024
            elif key == "Pss":
                pss = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return rss, pss


def pod_processes(uid: str) -> tuple[set[int], set[int]]:
    """(the pod cgroup's pids, the shims that parent them)."""
    directory = pod_cgroup(uid)
    pids = cgroup_pids(directory) if directory else set()
    shims = {s for s in (shim_of(p) for p in pids) if s is not None} - pids
    return pids, shims


def cgroup_charge(uid: str) -> int | None:
    directory = pod_cgroup(uid)
    if directory is None:
        return None
    for name in ("memory.usage_in_bytes", "memory.current"):
        path = directory / name
        if path.exists():
            try:
                return int(path.read_text().strip())
            except (OSError, ValueError):
                return None
    return None


def pod_memory(uid: str) -> PodMemory:
    pids, shims = pod_processes(uid)
    rss = pss = 0
    for pid in pids | shims:
        r, p = smaps_rollup(pid)
        rss, pss = rss + r, pss + p
    return PodMemory(sorted(pids), sorted(shims), rss, pss, cgroup_charge(uid))


def total_memory(uids: Iterable[str]) -> dict[str, float]:
    """All pods together, every process counted once (a shim shared by pods would count once)."""
    everything: set[int] = set()
    for uid in uids:
        pids, shims = pod_processes(uid)
        everything |= pids | shims
    rss = pss = 0
    for pid in everything:
        r, p = smaps_rollup(pid)
        rss, pss = rss + r, pss + p
    return {"processes": len(everything), "rss_mib": round(rss / MIB, 1), "pss_mib": round(pss / MIB, 1)}


def pod_cpu_seconds(uid: str) -> float:
    """CPU time of the pod's cgroup plus its shims (user + system), for CPU per request."""
    seconds = 0.0
    directory = pod_cgroup(uid, "cpuacct")
    if directory is not None:
        usage = directory / "cpuacct.usage"
        stat = directory / "cpu.stat"
        try:
            if usage.exists():
                seconds += int(usage.read_text()) / 1e9
            elif stat.exists():
                fields = dict(line.split() for line in stat.read_text().splitlines() if line.strip())
                seconds += int(fields.get("usage_usec", 0)) / 1e6
        except (OSError, ValueError):
            pass
    _, shims = pod_processes(uid)
    ticks = os.sysconf("SC_CLK_TCK")
    for shim in shims:
        try:
            raw = Path(f"/proc/{shim}/stat").read_text()
        except OSError:
            continue
        after_name = raw[raw.rindex(")") + 2:].split()
        seconds += (int(after_name[11]) + int(after_name[12])) / ticks
    return seconds


def mem_available_bytes() -> int:
    """The node's MemAvailable (the machine is the node): what pods took shows as its drop."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0
