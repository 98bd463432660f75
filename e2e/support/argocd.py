"""Argo CD's health checks run the way Argo CD runs them, for unit tests and live objects alike.

Argo CD runs a health check in gopher-lua (Lua 5.1) with only the base, table, package and a
reduced os library open, after setting the global `obj` to the resource decoded from JSON. This
harness does the same with lupa's Lua 5.1 and closes the libraries Argo CD leaves closed, so a
script that passes here does not depend on anything Argo CD lacks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lupa import lua51

from .binaries import REPO_ROOT

ARGOCD = REPO_ROOT / "examples" / "argocd"
WASMKUBE_HEALTH = ARGOCD / "health" / "wasmkube.lua"
APPLICATION_HEALTH = ARGOCD / "health" / "application.lua"

# Libraries Argo CD does not open for health checks (its `os` is a reduced one; ours use none).
CLOSED_LIBRARIES = ("string", "io", "math", "os", "debug", "coroutine")


def run_health_check(script: str, obj: dict[str, Any]) -> dict[str, str]:
    """The `{status, message}` a health check script returns for `obj`."""
    lua = lua51.LuaRuntime()
    # Without the string library gopher-lua has no string methods either (("x"):len() fails).
    lua.execute('getmetatable("").__index = nil')
    lua_globals = lua.globals()
    for name in CLOSED_LIBRARIES:
        lua_globals[name] = None
    # Argo CD hands Lua the object decoded from JSON: YAML-only types (timestamps) become strings.
    as_json = json.loads(json.dumps(obj, default=str))
    lua_globals.obj = lua.table_from(as_json, recursive=True)
    result = lua.execute(script)
    assert result is not None, "a health check must return a table"
    return {"status": result["status"], "message": result["message"] or ""}


def wasmkube_health(obj: dict[str, Any], script: Path = WASMKUBE_HEALTH) -> dict[str, str]:
    """Argo CD's verdict on a WasmApp or WasmRuntime."""
    return run_health_check(script.read_text(), obj)
