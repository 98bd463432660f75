"""How the cluster scripts fail and report progress."""

from __future__ import annotations

import sys


class ClusterError(RuntimeError):
    """A failure `up`/`down` reports as one clear line instead of a traceback."""


def log(message: str) -> None:
    """Progress goes to stderr so stdout stays clean for `env` and scripts."""
    print(f"localcluster: {message}", file=sys.stderr, flush=True)
