"""One log pipeline for the operator, Kopf and every library: structlog over stdlib logging.

JSON lines when stdout is not a terminal (what log collectors want), a readable console format on
a terminal. Kopf's per-object records carry the object in `extra["k8s_ref"]`; that is flattened
into `namespace`/`name` fields. Kopf's `settings` extra is never copied (it is huge).
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any, Literal

import structlog
from pydantic import AfterValidator
from structlog.types import EventDict, WrappedLogger


def _kopf_object_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    ref = getattr(record, "k8s_ref", None) if record is not None else None
    if isinstance(ref, dict):
        event_dict.setdefault("kind", ref.get("kind"))
        if ref.get("namespace"):
            event_dict.setdefault("namespace", ref.get("namespace"))
        event_dict.setdefault("name", ref.get("name"))
    return event_dict


def _known_level(name: str) -> str:
    """A level name logging knows, in upper case (`root.setLevel` raises on any other)."""
    level = name.upper()
    if level not in logging.getLevelNamesMapping():
        raise ValueError("not a log level: DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


# What `--log-format` and `--log-level` accept (the operator and the activator alike).
LogFormat = Literal["auto", "json", "console"]
LogLevel = Annotated[str, AfterValidator(_known_level)]


def configure_logging(log_format: str = "auto", level: str = "INFO") -> None:
    """Install the pipeline on the root logger; safe to call more than once."""
    use_json = log_format == "json" or (log_format == "auto" and not sys.stdout.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    structlog.configure(
        # Level first: a debug line below the level then costs nothing (no timestamp, no context).
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _kopf_object_context],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if use_json else structlog.processors.StackInfoRenderer(),
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "urllib3", "kubernetes", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Kopf says "Handler ... succeeded" at INFO for every watch event: thousands of lines a minute
    # under load, and about 5% of the CPU. Its warnings and errors still show; DEBUG shows all.
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING)
