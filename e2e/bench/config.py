"""The benchmark's knobs, all from the environment so `make bench` needs no arguments.

BENCH_SIZES (100,1000,5000)   numbers of WasmApps, in this order. Sizes up to 1000 always run; a
                              larger one runs only if the largest size so far, scaled linearly,
                              predicts it fits BENCH_SIZE_BUDGET_SECONDS (1200); else its rows say so
BENCH_IDLE_SECONDS (120)      how long N apps sit idle while the operator's writes are counted (more
                              than BENCH_RESYNC_SECONDS, so the window holds a whole resync pass), at
                              the largest size up to 1000 and above; smaller sizes idle 20 s
BENCH_PEER (1)                also run spin-operator (built from its Go module) on the same load
BENCH_FLOOR (1)               also create the same Deployments directly (the floor)
BENCH_REAL_NODE (auto)        auto/1: measure pods on the real node when e2e/node provides it; 0: skip
BENCH_REAL_NODE_APPS (3)      WasmApps put on the real node
BENCH_REAL_NODE_TIMEOUT (1200) seconds `realnode.py up` may take (it may build containerd and the shim)
BENCH_PROFILE (0)             attach py-spy to the operator during the largest size (adds a little
                              overhead; the row says so)
BENCH_CONCURRENCY (32)        parallel create requests of the benchmark client
BENCH_REPLICAS (1)            replicas per app (pods really get scheduled onto the KWOK nodes)
BENCH_RESYNC_SECONDS (60)     the operator's --resync-seconds, so an idle window of 90 s or more
                              contains a whole resync pass (the operator's default is 600)
BENCH_OPERATOR_SCOPE (namespace)  `namespace`: the operator watches only the benchmark namespace
                              (on a shared cluster it would otherwise also work on others' apps);
                              `cluster`: cluster-wide, like a default Helm install
BENCH_OPERATOR_ARGS ("")      extra `wasmkube run` flags, e.g. "--workers 64" to try a tuning
BENCH_SETTLE_SECONDS (15)     pause between "all Ready" and the start of the idle window
BENCH_OUTPUT_DIR (.wasmkube/bench)  where the JSON report and the run's logs go
WASMKUBE_CLUSTER_LOCK (unset) a lock file (flock) held around every phase that starts, stops or
                              loads the shared cluster
BENCH_ROWS (all)              which row groups run, comma-separated (see ROW_GROUPS below), e.g.
                              `BENCH_ROWS=serving,start,memory` to run only data-plane rows
BENCH_BUDGET_SECONDS (1800)   the whole run's budget: a row group predicted not to fit what is
                              left is skipped, and its row says so
BENCH_FAIR_WORKERS (64)       parallel follow-up calls of the fair floor (the operator's --workers)
BENCH_CEL_N (1000)            WasmApps created per CRD variant by the CEL admission row
BENCH_CEL_ATTRIBUTE (0)       1: also measure which CEL rules cost most (done anyway above 1.5x)
BENCH_WRK_SECONDS (10)        wrk duration per serving target (after a 2 s warm-up)
BENCH_WRK_CONNECTIONS (16)    wrk connections (2 threads)
BENCH_START_SAMPLES (3)       pods of each kind and state (first start, cached) the start row starts
BENCH_DENSITY_STEPS (10,50,100) pods of each kind at which the density row samples node memory
BENCH_WAKE_CYCLES (5)         wakes from zero per Wasm kind with the compiled module cached (row m)
BENCH_WAKE_FIRST_CYCLES (3)   wakes per kind onto a digest the node has never compiled (row m)
BENCH_DENSITY_BUDGET_MIB (6144) stop adding pods when the node's pods (plus the shim and runc
                              processes) use more than this much memory (PSS)
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from pathlib import Path

from e2e.support.state import state_root


def _int_list(raw: str) -> tuple[int, ...]:
    sizes = tuple(int(part) for part in raw.replace(" ", "").split(",") if part)
    if not sizes or any(size <= 0 for size in sizes):
        raise ValueError(f"expected a list of positive integers (BENCH_SIZES, BENCH_DENSITY_STEPS), got {raw!r}")
    return sizes


def _scope(raw: str) -> str:
    scope = raw.strip().lower() or "namespace"
    if scope not in ("namespace", "cluster"):
        raise ValueError(f"BENCH_OPERATOR_SCOPE must be namespace or cluster, got {raw!r}")
    return scope


# Row groups BENCH_ROWS can name, in the order they run. The letters are the rows' keys.
ROW_GROUPS = {
    "operator": "a, c, d: wasmkube creating N WasmApps' Deployments, its API and registry requests",
    "floor": "b: a plain client creating the same Deployments (BENCH_FLOOR=0 also removes it)",
    "fairfloor": "g: a plain client doing the operator's API work per app (WasmApp, Deployment, status)",
    "peer": "f: spin-operator on the same load (BENCH_PEER=0 also removes it)",
    "cel": "h: admission cost of the WasmApp CRD's CEL rules",
    "realnode": "e: WasmApps and bare pods on the real node",
    "serving": "i: HTTP serving, Wasm pods against the native twin in a container pod",
    "start": "j: create-to-Ready and create-to-first-response, Wasm against container pods",
    "memory": "k, l: per-pod memory, then as many pods of each kind as the node takes",
    "wake": "m, n: scale to zero: wake latency from zero and its breakdown, then the steady-state cost",
}
SIZE_GROUPS = ("operator", "floor", "fairfloor", "peer")  # run once per BENCH_SIZES size
NODE_GROUPS = ("realnode", "serving", "start", "memory", "wake")  # need the real node


def _rows(raw: str) -> tuple[str, ...]:
    words = tuple(w for w in raw.replace(" ", "").lower().split(",") if w)
    if not words or words == ("all",):
        return tuple(ROW_GROUPS)
    unknown = [w for w in words if w not in ROW_GROUPS]
    if unknown:
        raise ValueError(f"BENCH_ROWS: unknown row group(s) {unknown}; known: all, {', '.join(ROW_GROUPS)}")
    return tuple(g for g in ROW_GROUPS if g in words)


def _flag(raw: str) -> bool:
    return raw.strip().lower() not in {"0", "false", "no", "off", ""}


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    sizes: tuple[int, ...] = (100, 1000, 5000)
    idle_seconds: float = 120.0
    peer: bool = True
    floor: bool = True
    real_node: str = "auto"
    real_node_apps: int = 3
    real_node_timeout: float = 1200.0
    profile: bool = False
    concurrency: int = 32
    replicas: int = 1
    resync_seconds: float = 60.0
    operator_scope: str = "namespace"
    operator_args: tuple[str, ...] = ()
    settle_seconds: float = 15.0
    size_budget_seconds: float = 1200.0
    rows: tuple[str, ...] = tuple(ROW_GROUPS)
    budget_seconds: float = 1800.0
    fair_workers: int = 64
    cel_n: int = 1000
    cel_attribute: bool = False
    wrk_seconds: float = 10.0
    wrk_connections: int = 16
    start_samples: int = 3
    density_steps: tuple[int, ...] = (10, 50, 100)
    density_budget_mib: float = 6144.0
    wake_cycles: int = 5
    wake_first_cycles: int = 3
    output_dir: Path = state_root() / "bench"
    lock_file: Path | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> BenchConfig:
        env = dict(os.environ if env is None else env)
        lock = env.get("WASMKUBE_CLUSTER_LOCK", "").strip()
        real_node = env.get("BENCH_REAL_NODE", "auto").strip().lower() or "auto"
        if real_node not in {"auto", "0", "1", "off", "on", "false", "true"}:
            raise ValueError(f"BENCH_REAL_NODE must be auto, 0 or 1, got {real_node!r}")
        return cls(
            sizes=_int_list(env.get("BENCH_SIZES", "100,1000,5000")),
            idle_seconds=float(env.get("BENCH_IDLE_SECONDS", "120")),
            peer=_flag(env.get("BENCH_PEER", "1")),
            floor=_flag(env.get("BENCH_FLOOR", "1")),
            real_node="auto" if real_node == "auto" else ("1" if _flag(real_node) else "0"),
            real_node_apps=max(1, int(env.get("BENCH_REAL_NODE_APPS", "3"))),
            real_node_timeout=float(env.get("BENCH_REAL_NODE_TIMEOUT", "1200")),
            profile=_flag(env.get("BENCH_PROFILE", "0")),
            concurrency=max(1, int(env.get("BENCH_CONCURRENCY", "32"))),
            replicas=max(0, int(env.get("BENCH_REPLICAS", "1"))),
            resync_seconds=float(env.get("BENCH_RESYNC_SECONDS", "60")),
            settle_seconds=float(env.get("BENCH_SETTLE_SECONDS", "15")),
            operator_scope=_scope(env.get("BENCH_OPERATOR_SCOPE", "namespace")),
            operator_args=tuple(shlex.split(env.get("BENCH_OPERATOR_ARGS", ""))),
            size_budget_seconds=float(env.get("BENCH_SIZE_BUDGET_SECONDS", "1200")),
            rows=_rows(env.get("BENCH_ROWS", "all")),
            budget_seconds=float(env.get("BENCH_BUDGET_SECONDS", "1800")),
            fair_workers=max(1, int(env.get("BENCH_FAIR_WORKERS", "64"))),
            cel_n=max(10, int(env.get("BENCH_CEL_N", "1000"))),
            cel_attribute=_flag(env.get("BENCH_CEL_ATTRIBUTE", "0")),
            wrk_seconds=max(1.0, float(env.get("BENCH_WRK_SECONDS", "10"))),
            wrk_connections=max(1, int(env.get("BENCH_WRK_CONNECTIONS", "16"))),
            start_samples=max(1, int(env.get("BENCH_START_SAMPLES", "3"))),
            density_steps=_int_list(env.get("BENCH_DENSITY_STEPS", "10,50,100")),
            density_budget_mib=float(env.get("BENCH_DENSITY_BUDGET_MIB", "6144")),
            wake_cycles=max(1, int(env.get("BENCH_WAKE_CYCLES", "5"))),
            wake_first_cycles=max(0, int(env.get("BENCH_WAKE_FIRST_CYCLES", "3"))),
            output_dir=Path(env.get("BENCH_OUTPUT_DIR") or state_root() / "bench"),
            lock_file=Path(lock) if lock else None,
        )

    def wants(self, group: str) -> bool:
        """Whether row group `group` runs (BENCH_ROWS, and the older BENCH_FLOOR/BENCH_PEER/BENCH_REAL_NODE)."""
        if group not in self.rows:
            return False
        if group == "floor":
            return self.floor
        if group == "peer":
            return self.peer
        if group in NODE_GROUPS:
            return self.real_node != "0"
        return True

    def as_dict(self) -> dict[str, object]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}
