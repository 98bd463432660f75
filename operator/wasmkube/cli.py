"""The `wasmkube` command: run the operator, or work offline (crds, render, inspect, version)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from wasmkube import __version__
from wasmkube.activator import command as activator_command
from wasmkube.api.artifact import ArtifactKind
from wasmkube.api.crdgen import render_all
from wasmkube.api.wasmapp import WasmApp
from wasmkube.api.wasmruntime import WasmRuntime
from wasmkube.builders.runtime_choice import select_runtime
from wasmkube.builders.runtimeclass import build_runtime_class
from wasmkube.builders.workload import build_children
from wasmkube.config import OPERATOR_SETTINGS, OperatorConfig
from wasmkube.errors import SpecError


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="run the operator against the current cluster")
    OPERATOR_SETTINGS.add_arguments(run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wasmkube", description="Run WebAssembly workloads on Kubernetes.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    activator_command.add_parser(sub)
    crds = sub.add_parser("crds", help="print the CustomResourceDefinitions (generated from the API models)")
    crds.add_argument("--output-dir", type=Path, help="write one file per CRD here instead of printing")
    render = sub.add_parser("render", help="print the objects the operator would apply, with no cluster")
    render.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        type=Path,
        help="YAML with WasmApps and WasmRuntimes (repeatable; - for stdin)",
    )
    render.add_argument(
        "--kind",
        choices=[k.value for k in ArtifactKind],
        default=ArtifactKind.MODULE.value,
        help="artifact kind to assume (offline, the registry is not asked)",
    )
    inspect = sub.add_parser("inspect", help="ask the registry what an image is (no cluster needed)")
    inspect.add_argument("reference")
    inspect.add_argument("--insecure", action="store_true", help="plain HTTP (local registries)")
    inspect.add_argument("--username", default=os.environ.get("WASMKUBE_REGISTRY_USERNAME"))
    inspect.add_argument("--password", default=os.environ.get("WASMKUBE_REGISTRY_PASSWORD"))
    inspect.add_argument("--timeout", type=float, default=10.0)
    inspect.add_argument("-o", "--output", choices=["text", "json"], default="text")
    sub.add_parser("api-reference", help="print the API reference (Markdown) generated from the models")
    sub.add_parser("version", help="print the version")
    return parser


def config_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> OperatorConfig:
    """The `run` flags, each falling back to its WASMKUBE_* variable; a bad value exits 2."""
    return OPERATOR_SETTINGS.from_args_or_exit(args, "wasmkube run", environ)


def cmd_run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    from wasmkube.handlers import run_operator
    from wasmkube.logging_setup import configure_logging
    from wasmkube.metrics import Metrics

    configure_logging(config.log_format, config.log_level)
    metrics = Metrics()
    if config.metrics_port:
        metrics.serve(config.metrics_port, config.bind_address)
    asyncio.run(run_operator(config, metrics=metrics))
    return 0


def cmd_crds(args: argparse.Namespace) -> int:
    files = render_all()
    if args.output_dir:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (args.output_dir / name).write_text(text)
    else:
        sys.stdout.write("---\n".join(files.values()))
    return 0


def load_documents(paths: Sequence[Path]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in paths:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
        docs.extend(d for d in yaml.safe_load_all(text) if isinstance(d, dict))
    return docs


def render_documents(docs: Sequence[dict[str, Any]], kind: ArtifactKind) -> list[dict[str, Any]]:
    """The objects the operator would apply for these WasmApps and WasmRuntimes (offline)."""
    runtimes = [WasmRuntime.model_validate(_with_defaults(d)) for d in docs if d.get("kind") == "WasmRuntime"]
    apps = [WasmApp.model_validate(_with_defaults(d)) for d in docs if d.get("kind") == "WasmApp"]
    out: list[dict[str, Any]] = [_offline(build_runtime_class(r)) for r in runtimes]
    for app in apps:
        runtime = select_runtime(app, runtimes, kind)
        children = build_children(app, runtime, app.spec.image, kind)
        parts = (children.deployment, children.service, children.pods_service, children.autoscaler)
        out.extend(_offline(c) for c in parts if c)
    return out


def _with_defaults(doc: dict[str, Any]) -> dict[str, Any]:
    meta = dict(doc.get("metadata") or {})
    if doc.get("kind") == "WasmApp":
        meta.setdefault("namespace", "default")
    return {**doc, "metadata": meta}


def _offline(obj: dict[str, Any]) -> dict[str, Any]:
    """Owner references need the parent's uid, which only the API server assigns."""
    refs = obj["metadata"].get("ownerReferences") or []
    if refs and not refs[0].get("uid"):
        obj["metadata"].pop("ownerReferences")
    return obj


def cmd_render(args: argparse.Namespace) -> int:
    try:
        objects = render_documents(load_documents(args.filename), ArtifactKind(args.kind))
    except (ValidationError, SpecError, OSError, yaml.YAMLError) as exc:
        print(f"wasmkube render: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from wasmkube.registry.errors import RegistryError
    from wasmkube.registry.inspect import as_json, format_inspection, inspect_reference

    try:
        artifact = asyncio.run(
            inspect_reference(
                args.reference,
                insecure=args.insecure,
                username=args.username,
                password=args.password,
                timeout=args.timeout,
            )
        )
    except RegistryError as exc:
        print(f"wasmkube inspect: {exc.reason}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(as_json(artifact), indent=2) if args.output == "json" else format_inspection(artifact))
    return 0


def cmd_api_reference(_: argparse.Namespace) -> int:
    from wasmkube.api.reference import render_reference

    sys.stdout.write(render_reference())
    return 0


def cmd_version(_: argparse.Namespace) -> int:
    print(f"wasmkube {__version__}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {
        "run": cmd_run,
        "activator": activator_command.cmd_activator,
        "crds": cmd_crds,
        "render": cmd_render,
        "inspect": cmd_inspect,
        "api-reference": cmd_api_reference,
        "version": cmd_version,
    }
    return int(commands[args.command](args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
