"""`wasmkube activator`: its flags, each with a `WASMKUBE_ACTIVATOR_*` environment fallback.

The flags, the variables, their help and their validation all come from `ActivatorConfig`
(wasmkube.activator.config) through wasmkube.settings.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping

from wasmkube.activator.config import ACTIVATOR_SETTINGS, ActivatorConfig


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("activator", help="run the activator: hold, wake and forward requests of apps at zero")
    ACTIVATOR_SETTINGS.add_arguments(p)


def config_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> ActivatorConfig:
    """The `activator` flags, each falling back to its variable; a bad value exits 2."""
    return ACTIVATOR_SETTINGS.from_args_or_exit(args, "wasmkube activator", environ)


def cmd_activator(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    from wasmkube.activator.server import run_activator
    from wasmkube.logging_setup import configure_logging

    configure_logging(config.log_format, config.log_level)
    asyncio.run(run_activator(config))
    return 0
