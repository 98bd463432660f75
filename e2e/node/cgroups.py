"""kubelet's cgroup tree, `/wasmkube` in every hierarchy: created before it starts, removed by `down`."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from e2e.support.waiting import TimedOut, wait_for

from .layout import CGROUP_ROOT
from .mounts import cgroup_hierarchies


def create_cgroup_root() -> None:
    """`/wasmkube` in every hierarchy: kubelet's cgroupRoot must exist before it starts."""
    for hierarchy in cgroup_hierarchies():
        group = hierarchy / CGROUP_ROOT
        group.mkdir(exist_ok=True)
        if (hierarchy / "cgroup.controllers").exists():
            _enable_v2_controllers(group)
            continue
        # A new cgroup v1 cpuset starts with no CPUs and no memory nodes: copy the parent's.
        for name in ("cpuset.cpus", "cpuset.mems"):
            mine = group / name
            if mine.exists() and not mine.read_text().strip():
                mine.write_text((hierarchy / name).read_text())


def _enable_v2_controllers(group: Path) -> None:
    """On cgroup v2, let kubelet's children under /wasmkube use every controller we were given."""
    available = (group / "cgroup.controllers").read_text().split()
    wanted = [c for c in ("cpu", "cpuset", "memory", "pids", "io", "hugetlb") if c in available]
    with contextlib.suppress(OSError):
        (group / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))


def remove_cgroup_root() -> list[str]:
    """Kill whatever still runs under /wasmkube, then remove the groups bottom-up."""
    groups = [h / CGROUP_ROOT for h in cgroup_hierarchies() if (h / CGROUP_ROOT).is_dir()]
    pids = {int(p) for g in groups for procs in g.rglob("cgroup.procs")
            for p in procs.read_text().split() if p.strip()}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    left = []
    for group in groups:
        for directory in sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            _rmdir_retrying(directory)
        if not _rmdir_retrying(group):
            left.append(str(group))
    return left


def _rmdir_retrying(directory: Path) -> bool:
    """rmdir of a cgroup fails (EBUSY) until its killed tasks are fully gone; retry for 5 s."""
    def removed() -> bool:
        try:
            directory.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True

    try:
        wait_for(removed, 5, 0.1, f"cgroup {directory} to be removable")
    except TimedOut:
        return False
    return True
