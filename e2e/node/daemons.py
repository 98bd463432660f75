"""Finding the node's processes beyond its records: leftovers of ours, and another node's.

The supervisor knows what `up` started. `down` must also catch what escaped it (a daemon whose
record was lost, the shims containerd started), and must not sweep the machine-wide leftovers
(cgroups, bridge, sysctls) while another checkout's node still runs.
"""

from __future__ import annotations

from pathlib import Path

from e2e.support.supervisor import Supervisor, alive, cmdline, other_pids

from .paths import EXECUTABLES, NodePaths


def stray(paths: NodePaths, sup: Supervisor) -> list[int]:
    """Our daemons without a record, and shims serving our containerd socket."""
    socket = str(paths.socket)
    found = []
    for pid in other_pids():
        argv = cmdline(pid)
        shim = bool(argv) and Path(argv[0]).name.startswith("containerd-shim") and socket in argv
        if (shim and alive(pid)) or sup.owns(pid):
            found.append(pid)
    return found


def foreign(sup: Supervisor) -> list[str]:
    """containerd/kubelet processes of *another* real node (another checkout's .wasmkube/node).

    Ports, the bridge, the /wasmkube cgroups and the fixed paths are per machine, so two
    nodes cannot coexist, and `down` must not sweep while another one runs.
    """
    found = []
    for pid in other_pids():
        argv = cmdline(pid)
        if (argv and Path(argv[0]).name in EXECUTABLES and alive(pid) and not sup.owns(pid)
                and any("/.wasmkube/node/" in arg for arg in argv)):
            found.append(f"pid {pid}: {' '.join(argv)[:200]}")
    return found
