#!/usr/bin/env python3
"""Writes argocd-cm.yaml from the Lua health checks in health/, so the two cannot drift apart.

Run it after editing a health/*.lua file: python3 examples/argocd/generate_argocd_cm.py
(operator/tests/test_argocd_health.py fails while the checked-in file is out of date).
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "argocd-cm.yaml"

# argocd-cm key suffix (<group>_<Kind>) -> health check script
HEALTH_CHECKS = {
    "wasmkube.dev_WasmApp": "health/wasmkube.lua",
    "wasmkube.dev_WasmRuntime": "health/wasmkube.lua",
    "argoproj.io_Application": "health/application.lua",
}

HEADER = """\
# Argo CD health checks for wasmkube's kinds, and for Applications so that the sync waves of the
# app of apps (root.yaml) wait for each wave to be Healthy. Merge into Argo CD's argocd-cm:
#   kubectl -n argocd patch configmap argocd-cm --patch-file examples/argocd/argocd-cm.yaml
# or copy the keys into the Argo CD Helm chart's `configs.cm` values.
#
# Generated from health/*.lua by generate_argocd_cm.py: edit those files, not this one.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/part-of: argocd
data:
"""


def literal_block(text: str, indent: str) -> str:
    """A YAML literal block scalar holding `text` exactly (it must end with one newline)."""
    if not text.endswith("\n") or text.endswith("\n\n"):
        raise ValueError("a health check must end with exactly one newline")
    lines = (f"{indent}{line}" if line else "" for line in text.splitlines())
    return "|\n" + "\n".join(lines) + "\n"


def render() -> str:
    entries = [
        f"  resource.customizations.health.{kind}: "
        + literal_block((HERE / script).read_text(encoding="utf-8"), "    ")
        for kind, script in HEALTH_CHECKS.items()
    ]
    return HEADER + "".join(entries)


if __name__ == "__main__":
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT}")
