"""Print the hostile-input test's cases as JSON lines for `celcost check`.

The explicit cases of e2e/test_hostile_input.py, with their expected outcome, then a Hypothesis
campaign over the same `cases()` strategy (derandomized, more examples than the test's run, so a
CRD change is checked on many generated bodies). Images are the session registry's names; no
cluster or registry is contacted.

    PYTHONPATH=. .venv/bin/python e2e/tools/celcost/hostile_cases.py > cases.jsonl
    celcost check -crd crds/wasmkube.dev_wasmapps.yaml < cases.jsonl
"""

from __future__ import annotations

import itertools
import json
import sys
from typing import Any, cast

from hypothesis import HealthCheck, Phase, assume, given, settings

from e2e import test_hostile_input as hostile
from e2e.support import REGISTRY
from e2e.support.operator_fixtures import ExampleImages

EXAMPLES = 400


class _Image:
    def __init__(self, name: str) -> None:
        self.reference = f"{REGISTRY}/examples/{name}:v1"


class _Images:
    module, component, spin, container = (_Image(n) for n in ("hello-wasi", "hello-component", "hello-spin", "c"))


def main() -> None:
    images = cast(ExampleImages, _Images())
    counter = itertools.count()
    lines: list[dict[str, Any]] = [{"label": label, "expect": expect, "object": body}
                                   for label, body, expect in hostile.explicit_cases(images, counter)]
    seen: set[str] = set()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(hostile.cases())
    def campaign(case: tuple[str, str, dict[str, Any]]) -> None:
        shape, image, spec = case
        key = json.dumps(case, sort_keys=True, default=str)
        assume(key not in seen)
        seen.add(key)
        body = {"apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmApp",
                "metadata": {"name": hostile.name_of(shape, next(counter))},
                "spec": {"image": hostile.image_for(image, images), **spec}}
        lines.append({"label": f"generated {shape}/{image}/{','.join(sorted(spec)) or '-'}", "expect": None,
                      "object": body})

    campaign()
    for line in lines:
        print(json.dumps(line))
    print(f"{len(lines)} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
