"""Writing the generated files of the cluster and the node: atomically, and only on change."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    """Write key material readable by the owner only, atomically (a crash never leaves half a key)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tmp.replace(path)


def write_if_changed(path: Path, text: str, *, private: bool = False) -> None:
    """Rewrite a generated file only when its content changes, so warm runs touch nothing."""
    if path.exists() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if private:
        write_private(path, text.encode())
    else:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
