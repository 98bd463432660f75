"""Can this machine run a real node? Root, writable cgroups, overlayfs, network namespaces."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .binaries import NodeBinaries
from .layout import CNI_BIN_DIR, CNI_PLUGINS, REQUIRED_V1_CONTROLLERS, SHIM_BINARY
from .mounts import cgroup_hierarchies
from .paths import NodePaths


def _cgroup_problems() -> list[str]:
    """kubelet (cgroupfs driver) needs the cpu, cpuset, memory and pids controllers, writable."""
    hierarchies = cgroup_hierarchies()
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():  # pure cgroup v2
        probe_parent = Path("/sys/fs/cgroup")
    else:
        names = {h.name for h in hierarchies}
        missing = [c for c in REQUIRED_V1_CONTROLLERS if not any(c in n.split(",") for n in names)]
        if missing:
            return [f"cgroup v1 controllers not mounted: {', '.join(missing)}"]
        probe_parent = next(h for h in hierarchies if "memory" in h.name.split(","))
    probe = probe_parent / f"wasmkube-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as err:
        return [f"cannot create cgroups under {probe_parent}: {err.strerror}"]
    return []


def _overlay_problem(scratch: Path) -> str | None:
    """Mount a tiny overlayfs where containerd keeps its snapshots (overlay-on-overlay fails)."""
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="overlay-probe-") as tmp:
        for sub in ("lower", "upper", "work", "merged"):
            (Path(tmp) / sub).mkdir()
        options = f"lowerdir={tmp}/lower,upperdir={tmp}/upper,workdir={tmp}/work"
        result = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, f"{tmp}/merged"],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            return f"cannot mount overlayfs under {scratch}: {result.stderr.strip()}"
        subprocess.run(["umount", f"{tmp}/merged"], check=False)
    return None


def _network_problem() -> str | None:
    """Pods need a network namespace, a bridge and veth pairs; try all three in a throwaway netns."""
    script = "ip link add wkprobe0 type bridge && ip link add wkprobe1 type veth peer name wkprobe2"
    result = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return f"cannot create a network namespace with a bridge and veths: {result.stderr.strip()}"
    return None


def preflight(paths: NodePaths) -> list[str]:
    """Every reason this machine cannot run a real node; empty when it can."""
    if os.geteuid() != 0:
        return ["not root: containerd and kubelet need root (mounts, cgroups, network namespaces)"]
    problems = _cgroup_problems()
    for tool in ("ip", "unshare", "mount", "umount"):
        if shutil.which(tool) is None:
            problems.append(f"`{tool}` not found (iproute2 / util-linux)")
    if problems:
        return problems
    for problem in (_overlay_problem(paths.root / "probe"), _network_problem()):
        if problem:
            problems.append(problem)
    if not Path("/dev/kmsg").exists() and not Path("/dev/console").exists():
        problems.append("neither /dev/kmsg nor /dev/console exists (kubelet's OOM watcher reads /dev/kmsg)")
    return problems


def runtime_problems(bins: NodeBinaries) -> list[str]:
    """After the build: the Debian-provided pieces are where the configs say they are."""
    missing = [str(CNI_BIN_DIR / p) for p in CNI_PLUGINS if not (CNI_BIN_DIR / p).exists()]
    problems = [f"CNI plugins missing: {', '.join(missing)}"] if missing else []
    for exe in (bins.containerd, bins.ctr, bins.bindir / SHIM_BINARY, bins.kubelet):
        if not os.access(exe, os.X_OK):
            problems.append(f"{exe} is missing or not executable")
    return problems


def lacks_cap_sys_resource() -> bool:
    """Whether we run without CAP_SYS_RESOURCE (bit 24), as root in some VMs and sandboxes does.

    Without it no process may lower its oom_score_adj, yet kubelet asks for -998 on every pod
    sandbox (and -997 for Guaranteed pods): runc then dies with "failed to update
    /proc/self/oom_score_adj: Permission denied".
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return not int(line.split()[1], 16) & (1 << 24)
    return False
