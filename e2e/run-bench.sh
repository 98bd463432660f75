#!/usr/bin/env bash
# `make bench`: make sure the local cluster runs, run the benchmark (e2e/bench), and leave the
# cluster as we found it (started here => stopped here; already up => left up), like
# e2e/run-integration.sh. The benchmark prints a table and writes .wasmkube/bench/<timestamp>.json.
#
# Knobs are environment variables, see e2e/bench/config.py (BENCH_SIZES, BENCH_IDLE_SECONDS,
# BENCH_PEER, BENCH_PROFILE, BENCH_ROWS=serving,start,memory to run only some rows,
# BENCH_BUDGET_SECONDS, ...). On a machine where several people share the cluster, set
# WASMKUBE_CLUSTER_LOCK=/path/to/lockfile: starting the cluster and every benchmark phase then
# hold that flock, so nobody else's run overlaps a measurement.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
CLUSTER=(-m e2e.cluster.localcluster)

say() { echo "run-bench: $*" >&2; }

locked() {
  if [[ -n "${WASMKUBE_CLUSTER_LOCK:-}" ]]; then
    flock "$WASMKUBE_CLUSTER_LOCK" "$@"
  else
    "$@"
  fi
}

if ! bash e2e/cluster/ensure-system-deps.sh; then
  say "ERROR: installing system dependencies failed"
  exit 1
fi

# The serving row's load generator: Debian's wrk (closed loop, latency distribution). Without it
# that row says it was skipped and why; nothing else needs it.
if ! command -v wrk >/dev/null 2>&1; then
  say "installing Debian's wrk for the serving row"
  if [[ "$(id -u)" == 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk >&2 \
      || say "WARNING: apt-get install wrk failed; the serving row will be skipped"
  else
    say "WARNING: not root; install wrk by hand (apt-get install wrk) or the serving row is skipped"
  fi
fi

if [[ "${BENCH_PROFILE:-0}" == "1" ]] && [[ ! -x .venv/bin/py-spy ]]; then
  say "BENCH_PROFILE=1: installing py-spy into .venv"
  .venv/bin/pip install --quiet py-spy || say "WARNING: py-spy could not be installed; the profile will be skipped"
fi

started_here=false
if "$PY" "${CLUSTER[@]}" status >/dev/null 2>&1; then
  say "cluster already up; leaving it up afterwards"
else
  started_here=true
  trap 'say "stopping the cluster started for this run"; locked "$PY" "${CLUSTER[@]}" down || true' EXIT
  if ! locked "$PY" "${CLUSTER[@]}" up; then
    say "ERROR: the local cluster failed to build or start; nothing can be measured"
    exit 1
  fi
fi

"$PY" -m e2e.bench
rc=$?
$started_here && say "benchmark exit code $rc"
exit "$rc"
