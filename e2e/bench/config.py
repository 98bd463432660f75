"""The benchmark's knobs, all from the environment so `make bench` needs no arguments.

BENCH_SIZES (100,1000,5000)   numbers of WasmApps, in this order. Sizes up to 1000 always run; a
                              larger one runs only if the largest size so far, scaled linearly,
                              predicts it fits BENCH_SIZE_BUDGET_SECONDS (1200); else its rows say so
BENCH_IDLE_SECONDS (300)      how long N apps sit idle while the operator's writes are counted
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
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from pathlib import Path

from e2e.support.binaries import REPO_ROOT


def _int_list(raw: str) -> tuple[int, ...]:
    sizes = tuple(int(part) for part in raw.replace(" ", "").split(",") if part)
    if not sizes or any(size <= 0 for size in sizes):
        raise ValueError(f"BENCH_SIZES must list positive integers, got {raw!r}")
    return sizes


def _scope(raw: str) -> str:
    scope = raw.strip().lower() or "namespace"
    if scope not in ("namespace", "cluster"):
        raise ValueError(f"BENCH_OPERATOR_SCOPE must be namespace or cluster, got {raw!r}")
    return scope


def _flag(raw: str) -> bool:
    return raw.strip().lower() not in {"0", "false", "no", "off", ""}


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    sizes: tuple[int, ...] = (100, 1000, 5000)
    idle_seconds: float = 300.0
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
    output_dir: Path = REPO_ROOT / ".wasmkube" / "bench"
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
            idle_seconds=float(env.get("BENCH_IDLE_SECONDS", "300")),
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
            output_dir=Path(env.get("BENCH_OUTPUT_DIR") or REPO_ROOT / ".wasmkube" / "bench"),
            lock_file=Path(lock) if lock else None,
        )

    def as_dict(self) -> dict[str, object]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}
