#!/usr/bin/env bash
# Integration phase of `make test`: make sure the local cluster runs, run pytest on e2e/, and
# leave the cluster as we found it (started here => stopped here; already up => left up).
# Exits with pytest's exit code. Under CI=true a cluster that cannot be built or started is a
# hard failure; locally it is reported and pytest then skips the cluster tests.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
CLUSTER=(-m e2e.cluster.localcluster)
ci=false
[[ "${CI:-}" == "true" ]] && ci=true

say() { echo "run-integration: $*" >&2; }

if ! bash e2e/cluster/ensure-system-deps.sh; then
  say "ERROR: installing system dependencies failed"
  exit 1
fi

started_here=false
if "$PY" "${CLUSTER[@]}" status >/dev/null 2>&1; then
  say "cluster already up; leaving it up afterwards"
else
  # Set the trap before `up`, so a half-started cluster is cleaned up too.
  started_here=true
  trap 'say "stopping the cluster started for this run"; "$PY" "${CLUSTER[@]}" down || true' EXIT
  if ! "$PY" "${CLUSTER[@]}" up; then
    if $ci; then
      say "ERROR: the local cluster failed to build or start (CI=true: failing the run)"
      exit 1
    fi
    say "WARNING: the local cluster failed to start; cluster tests will be skipped"
  fi
fi

# The kubeconfig `up` wrote: e2e/support/state.py says where (it follows WASMKUBE_STATE).
KUBECONFIG="$("$PY" -c 'from e2e.support import state; print(state.kubeconfig())')"
export KUBECONFIG

"$PY" -m pytest -v e2e "$@"
rc=$?
$started_here && say "pytest exit code $rc"
exit "$rc"
