"""How the node scripts fail and report progress."""

from __future__ import annotations

import sys


class NodeError(RuntimeError):
    """`up`/`down` failed; the message says what and where the logs are."""


class NodeUnsupported(NodeError):
    """This machine cannot run a real node (not root, no cgroups, no overlayfs, ...)."""


def log(message: str) -> None:
    """Progress to stderr, like localcluster.py, so stdout stays parseable."""
    print(f"realnode: {message}", file=sys.stderr, flush=True)
