"""The e2e harness's process supervisor, on real (harmless) processes in a temporary state dir.

No cluster is involved: the daemons are Python sleepers. What matters most here is that
records written by the scripts before the supervisor existed are still read, so `down` with
today's code stops a cluster or node that yesterday's code started, and `up` does not restart
an unchanged one.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.support.supervisor import (
    RECORD_FORMAT,
    Daemon,
    Supervisor,
    alive,
    fingerprint,
    is_stopped,
    start_time,
    terminate_groups,
)
from e2e.support.waiting import TimedOut, wait_for

PYTHON = Path(sys.executable).name
SLEEPER = "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); time.sleep(120)"
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"


class HarnessError(RuntimeError):
    """Stands in for ClusterError/NodeError: the error type the caller asks for."""


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "state"
    directory.mkdir()
    yield directory
    # Whatever a failing test left running: every sleeper names the state dir in its argv.
    leftovers = Supervisor(directory, {PYTHON}).orphans()
    terminate_groups(leftovers, 2)


def sleeper(state: Path, name: str = "sleeper", code: str = SLEEPER, healthy: bool = True) -> Daemon:
    """A daemon that sleeps; its last argument names the state dir, as our daemons' flags do."""
    return Daemon(name, [sys.executable, "-c", code, f"{state}/{name}"], lambda: healthy, timeout=5,
                  identity={"pki": "test"})


def detached(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_gone(pid: int) -> None:
    wait_for(lambda: not alive(pid), 10, 0.05, f"pid {pid} to end")


# --------------------------------------------------------------------------------------------
# specs and fingerprints
# --------------------------------------------------------------------------------------------


def test_spec_is_the_text_the_cluster_script_recorded() -> None:
    """Byte for byte what localcluster.py's Component.spec(fingerprint) produced before."""
    files = {Path("/s/config/kwok.yaml"): "a: 1\n"}
    daemon = Daemon("kwok", ["/bin/kwok", "--x"], lambda: True, files=files, identity={"pki": "abc"})
    digests = {"/s/config/kwok.yaml": hashlib.sha256(b"a: 1\n").hexdigest()}
    old = json.dumps({"argv": ["/bin/kwok", "--x"], "files": digests, "pki": "abc"}, sort_keys=True)
    assert daemon.spec() == old
    assert daemon.fingerprint() == fingerprint(old) == hashlib.sha256(old.encode()).hexdigest()


def test_spec_is_the_text_the_node_script_recorded() -> None:
    """Byte for byte what realnode.py's Daemon.spec() produced (argv, env, files)."""
    env = {"PATH": "/usr/bin", "HOME": "/n"}
    daemon = Daemon("kubelet", ["/k"], lambda: True, files={}, env=env, identity={"env": env})
    assert daemon.spec() == json.dumps({"argv": ["/k"], "env": env, "files": {}}, sort_keys=True)


def test_a_changed_input_changes_the_fingerprint(state: Path) -> None:
    base = sleeper(state)
    assert base.fingerprint() == sleeper(state).fingerprint()
    assert Daemon(base.name, [*base.argv, "--more"], base.healthy).fingerprint() != base.fingerprint()
    assert Daemon(base.name, base.argv, base.healthy, identity={"pki": "other"}).fingerprint() != base.fingerprint()


# --------------------------------------------------------------------------------------------
# start, record, stop
# --------------------------------------------------------------------------------------------


def test_start_records_format_2_and_stop_forgets_it(state: Path) -> None:
    sup = Supervisor(state, {PYTHON})
    daemon = sleeper(state)
    proc = sup.start(daemon)
    record = json.loads(sup.record_file("sleeper").read_text())
    assert record["format"] == RECORD_FORMAT
    assert record["pid"] == proc.pid and record["argv"] == daemon.argv
    assert record["start_time"] == start_time(proc.pid)
    assert record["fingerprint"] == daemon.fingerprint()
    assert record["spec"] == daemon.spec()  # what older checkouts' localcluster.py compares
    assert sup.pid_file("sleeper").read_text() == f"{proc.pid}\n"
    assert sup.pid("sleeper") == proc.pid
    assert sup.current(daemon)
    assert not sup.current(Daemon("sleeper", [*daemon.argv, "x"], daemon.healthy))
    assert "starting:" in sup.log_file("sleeper").read_text()

    assert sup.stop(["sleeper"]) == {"sleeper": proc.pid}
    assert proc.wait(5) in (0, -signal.SIGTERM)  # SIGTERM ended it (before or through its handler)
    assert sup.pid("sleeper") is None and sup.record("sleeper") is None
    assert not sup.pid_file("sleeper").exists() and not sup.record_file("sleeper").exists()


def test_a_reused_pid_is_not_ours(state: Path) -> None:
    """Same pid, other start time: the record names a process that is gone, so pid() is None
    and stop() signals nothing (here: our own test process, which must survive)."""
    sup = Supervisor(state, {PYTHON})
    sup.run.mkdir(parents=True)
    own = os.getpid()
    record = {"format": RECORD_FORMAT, "name": "x", "pid": own, "start_time": "1", "argv": [], "fingerprint": ""}
    sup.record_file("x").write_text(json.dumps(record))
    assert sup.pid("x") is None
    sup.stop(["x"])
    assert alive(own)


def test_stop_ends_a_stopped_process_without_waiting_out_the_timeout(state: Path) -> None:
    """SIGSTOP'd (a laptop's sleep, a test): SIGTERM alone would stay pending for the whole
    timeout; the SIGCONT after it lets the process act on it at once."""
    sup = Supervisor(state, {PYTHON})
    proc = sup.start(sleeper(state))
    time.sleep(0.3)  # let it install its SIGTERM handler
    os.kill(proc.pid, signal.SIGSTOP)
    wait_for(lambda: is_stopped(proc.pid), 5, 0.02, "the sleeper to stop")
    assert sup.stopped("sleeper")
    began = time.monotonic()
    sup.stop(["sleeper"], timeout=20)
    assert proc.wait(5) == 0, "it should exit through its SIGTERM handler, not be killed"
    assert time.monotonic() - began < 10


def test_stop_kills_what_ignores_sigterm_after_the_timeout(state: Path) -> None:
    sup = Supervisor(state, {PYTHON})
    proc = sup.start(sleeper(state, code=STUBBORN))
    time.sleep(0.3)
    began = time.monotonic()
    sup.stop(["sleeper"], timeout=1)
    assert proc.wait(5) == -signal.SIGKILL
    assert 1 <= time.monotonic() - began < 8


def test_stop_takes_the_whole_process_group(state: Path) -> None:
    """A daemon's children (containerd's shims, say) go with it: the group is signalled."""
    sup = Supervisor(state, {PYTHON})
    code = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']);"
            " time.sleep(120)")
    proc = sup.start(sleeper(state, code=code))
    child = wait_for(lambda: _children(proc.pid), 10, 0.05, "the grandchild to start")[0]
    sup.stop(["sleeper"], timeout=5)
    proc.wait(5)
    wait_gone(child)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


# --------------------------------------------------------------------------------------------
# the layouts written before the supervisor
# --------------------------------------------------------------------------------------------


def test_old_cluster_record_is_read_current_and_stopped(state: Path) -> None:
    """run/<name>.json = {"pid", "start_time", "spec"} plus run/<name>.pid, as localcluster.py
    wrote them: the process is ours, unchanged (no restart), and `down` stops it."""
    daemon = sleeper(state)
    proc = detached(daemon.argv)
    sup = Supervisor(state, {PYTHON})
    sup.run.mkdir(parents=True)
    wait_for(lambda: start_time(proc.pid), 5, 0.01, "the process to appear")
    old = {"pid": proc.pid, "start_time": start_time(proc.pid), "spec": daemon.spec()}
    sup.record_file("sleeper").write_text(json.dumps(old))
    sup.pid_file("sleeper").write_text(f"{proc.pid}\n")

    record = sup.record("sleeper")
    assert record is not None and record.argv == daemon.argv
    assert sup.pid("sleeper") == proc.pid
    assert sup.current(daemon), "an unchanged daemon started by the old script must not be restarted"
    sup.stop(["sleeper"], timeout=5)
    proc.wait(5)
    assert not sup.record_file("sleeper").exists() and not sup.pid_file("sleeper").exists()


def test_old_node_record_is_read_by_its_command_line_and_stopped(state: Path) -> None:
    """run/<name>.pid + run/<name>.spec, as realnode.py wrote them (no start time): ours while
    the command line is one of our executables naming the state dir."""
    daemon = sleeper(state)
    proc = detached(daemon.argv)
    sup = Supervisor(state, {PYTHON})
    sup.run.mkdir(parents=True)
    (sup.run / "sleeper.pid").write_text(f"{proc.pid}\n")
    (sup.run / "sleeper.spec").write_text(daemon.spec())
    wait_for(lambda: sup.owns(proc.pid), 5, 0.01, "its command line to show")

    assert sup.pid("sleeper") == proc.pid
    assert sup.current(daemon)
    assert not Supervisor(state, {"kubelet"}).pid("sleeper"), "another executable is not ours"
    sup.stop(["sleeper"], timeout=5)
    proc.wait(5)
    assert not (sup.run / "sleeper.spec").exists() and not sup.pid_file("sleeper").exists()


def test_an_old_node_pid_file_naming_a_foreign_process_is_not_ours(state: Path) -> None:
    sup = Supervisor(state, {PYTHON})
    sup.run.mkdir(parents=True)
    sup.pid_file("kubelet").write_text(f"{os.getpid()}\n")  # pytest's argv does not name the state dir
    assert sup.pid("kubelet") is None
    sup.stop(["kubelet"])
    assert alive(os.getpid())


def test_orphans_are_found_by_command_line(state: Path) -> None:
    proc = detached(sleeper(state).argv)
    sup = Supervisor(state, {PYTHON})
    wait_for(lambda: proc.pid in sup.orphans(), 5, 0.02, "the orphan to be found")
    terminate_groups([proc.pid], 5)
    proc.wait(5)
    assert proc.pid not in sup.orphans()


# --------------------------------------------------------------------------------------------
# waiting for health
# --------------------------------------------------------------------------------------------


def test_wait_healthy_fails_at_once_with_the_log_when_the_daemon_exits(state: Path) -> None:
    sup = Supervisor(state, {PYTHON})
    daemon = Daemon("crasher", [sys.executable, "-c", "print('boom'); raise SystemExit(3)"], lambda: False,
                    timeout=30)
    sup.start(daemon)
    began = time.monotonic()
    with pytest.raises(HarnessError, match=r"crasher exited \(3\); last log lines:\n(.|\n)*boom"):
        sup.wait_healthy(daemon, error=HarnessError, interval=0.05)
    assert time.monotonic() - began < 10


def test_wait_healthy_times_out_as_the_callers_error(state: Path) -> None:
    sup = Supervisor(state, {PYTHON})
    daemon = Daemon("slow", sleeper(state, "slow").argv, lambda: False, timeout=0.5)
    sup.start(daemon)
    try:
        with pytest.raises(HarnessError, match="timed out after 0s waiting for slow to become healthy; last log"):
            sup.wait_healthy(daemon, error=HarnessError, interval=0.05)
    finally:
        sup.stop(["slow"], timeout=5)


def test_wait_healthy_returns_once_healthy(state: Path) -> None:
    sup = Supervisor(state, {PYTHON})
    calls = iter([False, False, True])
    daemon = Daemon("ok", sleeper(state, "ok").argv, lambda: next(calls), timeout=10)
    sup.start(daemon)
    try:
        sup.wait_healthy(daemon, error=HarnessError, interval=0.01)
    finally:
        sup.stop(["ok"], timeout=5)


def test_lock_serialises(state: Path) -> None:
    """Two `up`s at once: the second waits for the first (flock on the state dir's .lock)."""
    sup = Supervisor(state, {PYTHON})
    with sup.lock():
        probe = subprocess.run(["flock", "--nonblock", str(state / ".lock"), "true"], check=False)
        assert probe.returncode != 0
    assert subprocess.run(["flock", "--nonblock", str(state / ".lock"), "true"], check=False).returncode == 0


def test_timed_out_is_an_assertion_error() -> None:
    """Tests that wait fail (not error) when the cluster never converges."""
    assert issubclass(TimedOut, AssertionError)
