"""Print row h's WasmApp bodies as JSON lines for `celcost bench`.

The offline benchmark must measure the very objects the cluster benchmark (e2e/bench/cel_row.py)
creates, so it takes them from there rather than keeping a copy. The metadata is what a create
carries once the API server has filled it in (uid, generation, creation time).

    PYTHONPATH=. .venv/bin/python e2e/tools/celcost/bench_bodies.py | celcost bench -crd crds/wasmkube.dev_wasmapps.yaml
"""

from __future__ import annotations

import json

from e2e.bench.cel_row import bench_specs
from e2e.support import REGISTRY

IMAGE = f"{REGISTRY}/examples/hello-wasi:v1"  # what row h uses without a session registry


def main() -> None:
    for label, spec in bench_specs(IMAGE).items():
        body = {"apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmApp",
                "metadata": {"name": f"bench-{label}", "namespace": "bench",
                             "uid": "6f1c1d2e-0b7a-4c59-9d8e-2a51f7b0c3aa", "generation": 1,
                             "creationTimestamp": "2025-01-01T00:00:00Z"},
                "spec": spec}
        print(json.dumps({"label": label, "object": body}))


if __name__ == "__main__":
    main()
