"""Kubeconfigs for a ServiceAccount's token, so a process acts with exactly that account's RBAC."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml


def kubeconfig_for_token(admin_kubeconfig: Path, token: str, path: Path, user: str) -> Path:
    """A kubeconfig at `path` (mode 0600) with the admin's cluster entry and a bearer token."""
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    current = admin.get("current-context")
    context = next(c["context"] for c in admin["contexts"] if c["name"] == current)
    cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
        "current-context": user,
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    os.chmod(path, 0o600)
    path.write_text(json.dumps(config))
    return path
