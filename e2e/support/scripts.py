"""Running the build scripts that print, as their last line of stdout, the directory or file they
built (build-binaries.sh, build-node.sh): a warm run only stats the cache, a cold one builds."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path


def printed_path(script: Path, failed: Callable[[int, str], Exception], *, capture_stderr: bool = False) -> Path:
    """Run `bash script` and return the path its stdout ends with.

    Its progress goes to our stderr unless `capture_stderr` (then a failure gets its tail). On a
    non-zero exit or no output, raises `failed(exit code, stderr tail)`, the caller's own error.
    """
    result = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True, check=False,
                            stderr=subprocess.PIPE if capture_stderr else None)  # fmt: skip
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise failed(result.returncode, (result.stderr or "")[-4000:])
    return Path(lines[-1])
