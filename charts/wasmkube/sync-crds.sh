#!/usr/bin/env bash
# Copies the generated CRDs from the repository's crds/ directory into the chart's files/crds/.
# crds/ at the repository root is the source (generated from the pydantic models by `make crds`);
# the chart only carries byte-for-byte copies, which templates/crds.yaml renders, and
# operator/tests/test_chart.py fails when they differ.
#
#   charts/wasmkube/sync-crds.sh          copy (run after `make crds`)
#   charts/wasmkube/sync-crds.sh --check  exit 1 if the copies are out of date, changing nothing
set -euo pipefail

chart="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source_dir="$(cd "$chart/../.." && pwd)/crds"
target_dir="$chart/files/crds"
check=0
[[ "${1:-}" == "--check" ]] && check=1

shopt -s nullglob
sources=("$source_dir"/*.yaml)
if ((${#sources[@]} == 0)); then
  echo "sync-crds: no CRDs in $source_dir (run 'make crds' first)" >&2
  exit 1
fi

stale=0
for src in "${sources[@]}"; do
  dst="$target_dir/$(basename "$src")"
  if ! cmp -s "$src" "$dst"; then
    stale=1
    if ((check)); then
      echo "sync-crds: $dst is out of date" >&2
    else
      cp "$src" "$dst"
      echo "sync-crds: updated $dst" >&2
    fi
  fi
done
# A CRD removed from the source must leave the chart too.
for dst in "$target_dir"/*.yaml; do
  if [[ ! -e "$source_dir/$(basename "$dst")" ]]; then
    stale=1
    if ((check)); then
      echo "sync-crds: $dst has no source in $source_dir" >&2
    else
      rm "$dst"
      echo "sync-crds: removed $dst" >&2
    fi
  fi
done
if ((check && stale)); then
  echo "sync-crds: run charts/wasmkube/sync-crds.sh" >&2
  exit 1
fi
exit 0
