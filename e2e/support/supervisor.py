"""The one process supervisor of the harness: the local cluster's and the real node's daemons.

Every daemon is started detached (a session and so a process group of its own, stdin closed,
output appended to `logs/<name>.log`), so that `down` from any later shell can find and stop it
with whatever it spawned. What `up` started is written to `run/<name>.json`:

    {"format": 2, "name": ..., "pid": ..., "start_time": ..., "argv": [...],
     "fingerprint": ..., "spec": ..., "started_at": ...}

pid plus the kernel's start time name one process for good (a reused pid has another start
time); the fingerprint is a digest of everything the daemon was started with (arguments, config
file digests, certificates: the spec text beside it), so `up` can tell a current daemon from an
outdated one. "spec" is also what the cluster script of older checkouts compares, so switching
a checkout back and forth does not restart the cluster. `run/<name>.pid`
holds the bare pid, for people and tools (`kill $(cat run/etcd.pid)`).

Older checkouts wrote two other layouts, and a cluster or node they started must still be
recognised and stopped by this code:

* the cluster's `run/<name>.json` without "format": {"pid", "start_time", "spec"}, where spec is
  the JSON text whose digest is today's fingerprint (so an unchanged daemon stays current);
* the node's `run/<name>.pid` with the spec text in `run/<name>.spec` and no start time: such a
  pid counts as ours only while its command line is one of our executables naming our directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

from .files import write_if_changed
from .waiting import TimedOut, wait_for

RECORD_FORMAT = 2


@dataclasses.dataclass
class Daemon:
    """One long-running process: how to start it and how to tell that it is healthy."""

    name: str
    argv: list[str]
    healthy: Callable[[], bool]
    timeout: float = 60.0
    files: dict[Path, str] = dataclasses.field(default_factory=dict)  # config files it reads
    env: dict[str, str] | None = None  # None: it inherits ours
    # Further inputs whose change means a restart (the cluster's PKI generation, the node's env).
    identity: dict[str, Any] = dataclasses.field(default_factory=dict)

    def spec(self) -> str:
        """What the process is started with, as canonical JSON. Config files enter as digests:
        they include kubeconfigs, whose keys must not leak into the run directory. The text is
        the one older checkouts recorded, so their daemons are not restarted needlessly."""
        files = {str(k): hashlib.sha256(v.encode()).hexdigest() for k, v in self.files.items()}
        return json.dumps({"argv": self.argv, "files": files, **self.identity}, sort_keys=True)

    def fingerprint(self) -> str:
        return fingerprint(self.spec())


def fingerprint(spec: str) -> str:
    """The digest a record stores in place of the spec text."""
    return hashlib.sha256(spec.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Record:
    """What a run directory says about one daemon, whichever layout wrote it."""

    pid: int
    start_time: str | None  # None: an old node record, identified by its command line instead
    argv: list[str]
    fingerprint: str


# --------------------------------------------------------------------------------------------
# /proc
# --------------------------------------------------------------------------------------------


def cmdline(pid: int) -> list[str]:
    """A process's argv from /proc ([] if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name: [0] is the state, [19] the start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat.rsplit(")", 1)[1].split()


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state (R, S, D, T, t, Z, ...), None if there is no such process."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def start_time(pid: int) -> str | None:
    """Kernel start time of a live process; together with the pid it names one process for good."""
    fields = _stat_fields(pid)
    return fields[19] if fields and fields[0] != "Z" else None


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a stopped process is alive)."""
    state = process_state(pid)
    return state is not None and state != "Z"


def is_stopped(pid: int) -> bool:
    """Stopped by a signal (SIGSTOP, a laptop's suspend of the job) or by a tracer: it serves nothing."""
    return process_state(pid) in ("T", "t")


def other_pids() -> Iterator[int]:
    """Every process on the machine but this one."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            yield int(entry.name)


# --------------------------------------------------------------------------------------------
# Starting and stopping
# --------------------------------------------------------------------------------------------


def launch_detached(argv: list[str], log_path: Path, cwd: Path, env: dict[str, str] | None = None,
                    ) -> subprocess.Popen[bytes]:
    """Start a daemon in a session of its own (its own process group, so it can be stopped with
    everything it spawned), stdin closed, output appended to `log_path` after a header line."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        out.write(f"\n==== {time.strftime('%F %T')} starting: {' '.join(argv)}\n".encode())
        out.flush()
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                env=env, start_new_session=True)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal pid's process group (the leader's pid is its group id), or pid alone if it has none."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            os.kill(pid, sig)


def _settle(done: Callable[[], bool], timeout: float, interval: float) -> bool:
    """Wait up to `timeout` for `done`; False (no error) if it never was: stopping is best effort."""
    try:
        wait_for(done, timeout, interval, "processes to end")
    except TimedOut:
        return False
    return True


def terminate_groups(pids: list[int], timeout: float) -> None:
    """Stop processes and their groups: polite first, then forceful once the timeout passes.

    SIGTERM is followed by SIGCONT: a stopped process (SIGSTOP, a suspended laptop's job) keeps
    a SIGTERM pending until it runs again, so without SIGCONT it would sit out the whole timeout.
    SIGTERM first, so that the signal is waiting when it wakes and it does no further work.
    SIGKILL needs no SIGCONT: it ends stopped processes too.
    """
    for pid in pids:
        _signal_group(pid, signal.SIGTERM)
        _signal_group(pid, signal.SIGCONT)
    if not _settle(lambda: not any(alive(p) for p in pids), timeout, 0.1):
        leftovers = [p for p in pids if alive(p)]
        for pid in leftovers:
            _signal_group(pid, signal.SIGKILL)
        _settle(lambda: not any(alive(p) for p in leftovers), 5, 0.05)
    # They were reparented to init; give it a moment to reap them, so `ps` right after `down`
    # shows no <defunct> entries. Best effort: a zombie holds no port, file or memory. Our own
    # children are ours to reap (Popen does), so their zombies count as gone.
    _settle(lambda: all(_reaped(p) for p in pids), 3, 0.05)


def _reaped(pid: int) -> bool:
    fields = _stat_fields(pid)
    return not fields or (fields[0] == "Z" and int(fields[1]) == os.getpid())


# --------------------------------------------------------------------------------------------
# The supervisor of one state directory
# --------------------------------------------------------------------------------------------


class Supervisor:
    """Starts, inspects and stops the daemons of one state directory (`run/`, `logs/` in it).

    A process counts as one of ours only through its record (pid and start time), or, for old
    node records and for orphans whose record is lost, when it runs one of `executables` with
    the state directory in its arguments.
    """

    def __init__(self, state: Path, executables: Collection[str]) -> None:
        self.state = state
        self.run = state / "run"
        self.logs = state / "logs"
        self.executables = frozenset(executables)
        self.children: dict[str, subprocess.Popen[bytes]] = {}  # started by this invocation

    # ---------------------------------------------------------------- files

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def record_file(self, name: str) -> Path:
        return self.run / f"{name}.json"

    def _old_spec_file(self, name: str) -> Path:
        return self.run / f"{name}.spec"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def tail_log(self, name: str, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_file(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise up/down across processes (two test sessions, or a test and a shell)."""
        self.state.mkdir(parents=True, exist_ok=True)
        with (self.state / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    # ---------------------------------------------------------------- records

    def record(self, name: str) -> Record | None:
        """The record of `name` in whichever layout wrote it (see the module doc), or None."""
        try:
            data = json.loads(self.record_file(name).read_text())
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict):
            with contextlib.suppress(KeyError, TypeError, ValueError):
                return _parse_record(data)
        return self._old_node_record(name)

    def _old_node_record(self, name: str) -> Record | None:
        """`run/<name>.pid` + `run/<name>.spec`, as the node wrote them before format 2."""
        try:
            pid = int(self.pid_file(name).read_text())
        except (OSError, ValueError):
            return None
        try:
            spec = self._old_spec_file(name).read_text()
        except OSError:
            return Record(pid=pid, start_time=None, argv=[], fingerprint="")
        return Record(pid=pid, start_time=None, argv=_argv_of_spec(spec), fingerprint=fingerprint(spec))

    def owns(self, pid: int) -> bool:
        """pid runs one of our executables with this state directory in its arguments.

        Not used right after a start: a freshly exec'd kube-apiserver briefly shows only argv[0]
        in /proc/<pid>/cmdline. The record's start time identifies our own children.
        """
        argv = cmdline(pid)
        marker = f"{self.state}/"
        return (bool(argv) and Path(argv[0]).name in self.executables and alive(pid)
                and any(marker in arg for arg in argv))

    def pid(self, name: str) -> int | None:
        """The daemon's pid if the very process that was started is still alive."""
        record = self.record(name)
        if record is None:
            return None
        if record.start_time is None:
            return record.pid if self.owns(record.pid) else None
        return record.pid if start_time(record.pid) == record.start_time else None

    def current(self, daemon: Daemon) -> bool:
        """Running, and started with exactly what `daemon` would be started with today."""
        record = self.record(daemon.name)
        return self.pid(daemon.name) is not None and record is not None and record.fingerprint == daemon.fingerprint()

    def stopped(self, name: str) -> bool:
        """Running but stopped (state T): it holds its ports and answers nothing."""
        pid = self.pid(name)
        return pid is not None and is_stopped(pid)

    def exited(self, name: str) -> bool:
        """Whether the daemon's process is gone. For a child of ours, ask the kernel via poll()
        (exact even in the first milliseconds of its life); otherwise go by the record."""
        child = self.children.get(name)
        if child is not None:
            return child.poll() is not None
        return self.pid(name) is None

    def orphans(self) -> list[int]:
        """Every process of ours, recorded or not (catches those whose record was lost)."""
        return [pid for pid in other_pids() if self.owns(pid)]

    # ---------------------------------------------------------------- start / stop

    def start(self, daemon: Daemon) -> subprocess.Popen[bytes]:
        """Write its config files, launch it detached and record it."""
        for path, text in daemon.files.items():
            write_if_changed(path, text, private=path.suffix == ".kubeconfig")
        self.run.mkdir(parents=True, exist_ok=True)
        proc = launch_detached(daemon.argv, self.log_file(daemon.name), self.state, daemon.env)
        self.children[daemon.name] = proc
        fields = _stat_fields(proc.pid)  # also when it already exited: a zombie still has its stat
        record = {
            "format": RECORD_FORMAT, "name": daemon.name, "pid": proc.pid,
            "start_time": fields[19] if fields else "", "argv": daemon.argv,
            "fingerprint": daemon.fingerprint(), "spec": daemon.spec(),
            "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        self.record_file(daemon.name).write_text(json.dumps(record))
        self.pid_file(daemon.name).write_text(f"{proc.pid}\n")
        self._old_spec_file(daemon.name).unlink(missing_ok=True)
        return proc

    def stop(self, names: list[str], timeout: float = 10.0) -> dict[str, int]:
        """Stop the named daemons all at once (SIGTERM + SIGCONT to each group, SIGKILL after
        `timeout`) and forget their records; returns the pids that were running."""
        pids = {name: pid for name in names if (pid := self.pid(name)) is not None}
        terminate_groups(list(pids.values()), timeout)
        for name in names:
            child = self.children.pop(name, None)
            if child is not None:
                child.poll()  # reap it
            for path in (self.pid_file(name), self.record_file(name), self._old_spec_file(name)):
                path.unlink(missing_ok=True)
        return pids

    def wait_healthy(self, daemon: Daemon, error: Callable[[str], Exception], interval: float = 0.2) -> None:
        """Wait until `daemon` is healthy; fail at once, with its last log lines, if it exits."""
        def check() -> bool:
            if self.exited(daemon.name):
                child = self.children.get(daemon.name)
                code = f" ({child.returncode})" if child is not None else ""
                raise error(f"{daemon.name} exited{code}; last log lines:\n{self.tail_log(daemon.name)}")
            return daemon.healthy()

        wait_for(check, daemon.timeout, interval, f"{daemon.name} to become healthy",
                 error=lambda text: error(f"{text}; last log lines:\n{self.tail_log(daemon.name)}"))


def _parse_record(data: dict[str, Any]) -> Record:
    """A format-2 record, or the cluster's older one ({"pid", "start_time", "spec"})."""
    if data.get("format") == RECORD_FORMAT:
        return Record(pid=int(data["pid"]), start_time=str(data["start_time"]),
                      argv=[str(a) for a in data["argv"]], fingerprint=str(data["fingerprint"]))
    spec = str(data["spec"])
    return Record(pid=int(data["pid"]), start_time=str(data["start_time"]), argv=_argv_of_spec(spec),
                  fingerprint=fingerprint(spec))


def _argv_of_spec(spec: str) -> list[str]:
    """The argv inside an old spec text ([] if it is not the JSON it should be)."""
    try:
        argv = json.loads(spec)["argv"]
    except (ValueError, KeyError, TypeError):
        return []
    return [str(a) for a in argv] if isinstance(argv, list) else []
