"""What is mounted: the mount table, the cgroup hierarchies in it, and detaching our mounts."""

from __future__ import annotations

import ctypes
from pathlib import Path


def mounts() -> list[tuple[str, str]]:
    """(mount point, filesystem type) of every mount in our namespace, from mountinfo."""
    result = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        point = fields[4].encode().decode("unicode_escape")  # \040 for spaces and such
        result.append((point, fields[sep + 1]))
    return result


def cgroup_hierarchies() -> list[Path]:
    """Mount points of every cgroup hierarchy (v1 controllers, and v2 unified if mounted)."""
    return [Path(point) for point, fstype in mounts() if fstype in ("cgroup", "cgroup2")]


def unmount_under(root: Path) -> None:
    """Detach every mount below `root` (pod volumes, overlay snapshots, netns files), deepest first."""
    libc = ctypes.CDLL(None, use_errno=True)
    mnt_detach = 2
    prefix = f"{root}/"
    for point, _ in sorted(mounts(), key=lambda m: -len(m[0])):
        if point.startswith(prefix):
            libc.umount2(point.encode(), mnt_detach)
