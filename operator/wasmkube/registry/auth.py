"""Registry credentials from Kubernetes image pull Secrets (pure: no API calls, no files).

The operator must see the registry with the same credentials the kubelet will use, so a
``kubernetes.io/dockerconfigjson`` (or legacy ``kubernetes.io/dockercfg``) Secret is read the
kubelet's way: keys may carry a scheme (``https://host/v1/``), a port, a ``*`` glob per host label,
and a repository path prefix; the most specific matching key wins; Docker Hub's several names are
one registry. oras' own Docker-config loading is not used: it reads ``~/.docker/config.json`` and
credential helpers of the operator's host, which are the wrong source in a cluster.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from wasmkube.registry.errors import InvalidPullSecret
from wasmkube.registry.reference import Reference, canonical_registry

DOCKER_CONFIG_JSON_KEY: Final = ".dockerconfigjson"
DOCKER_CFG_KEY: Final = ".dockercfg"
_API_PATHS: Final = frozenset({"v1", "v2"})


@dataclass(frozen=True)
class Credentials:
    """A username and password for one registry. The password never appears in ``repr``."""

    username: str
    password: str = field(repr=False)

    @property
    def identity(self) -> str:
        """A short stable fingerprint, used in cache keys so that different credentials never
        share a cached result (one tenant's access must not leak to another's lookup)."""
        return hashlib.sha256(f"{self.username}\0{self.password}".encode()).hexdigest()[:16]

    def basic_token(self) -> str:
        """The base64 ``user:password`` of HTTP Basic authentication."""
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")


@dataclass(frozen=True)
class AuthEntry:
    """One key of a Docker config, split for matching."""

    host: str  # canonical, may contain '*' globs per label; includes the port if any
    path: str  # repository prefix, '' for the whole registry
    credentials: Credentials

    def matches(self, registry: str, repository: str) -> bool:
        if not _host_matches(self.host, canonical_registry(registry)):
            return False
        return not self.path or repository == self.path or repository.startswith(self.path + "/")

    @property
    def specificity(self) -> tuple[int, int]:
        """Longer path first, then exact hosts over globs (the kubelet's preference)."""
        return (len(self.path), 0 if "*" in self.host else 1)


def parse_docker_config(config: Mapping[str, Any]) -> list[AuthEntry]:
    """Entries of a Docker config: ``{"auths": {...}}`` or the legacy flat ``{host: {...}}``."""
    auths = config.get("auths", config)
    if not isinstance(auths, Mapping):
        raise InvalidPullSecret("docker config 'auths' is not an object")
    entries = []
    for key, value in auths.items():
        if not isinstance(value, Mapping):
            raise InvalidPullSecret(f"docker config entry {key!r} is not an object")
        credentials = _entry_credentials(str(key), value)
        if credentials is None:
            continue  # e.g. identitytoken-only entries: nothing a pull can use
        host, path = split_config_key(str(key))
        entries.append(AuthEntry(host, path, credentials))
    return entries


def entries_from_secret(data: Mapping[str, str], secret_type: str | None = None) -> list[AuthEntry]:
    """Entries from a Secret's ``data`` (values base64, as the API returns them).

    ``secret_type`` is not required: the key name (``.dockerconfigjson``/``.dockercfg``) says it.
    """
    for key in (DOCKER_CONFIG_JSON_KEY, DOCKER_CFG_KEY):
        if key in data:
            raw = _b64decode(data[key], f"Secret key {key}")
            try:
                payload = json.loads(raw)
            except ValueError as exc:
                raise InvalidPullSecret(f"Secret key {key} is not JSON: {exc}") from None
            if not isinstance(payload, Mapping):
                raise InvalidPullSecret(f"Secret key {key} is not a JSON object")
            if key == DOCKER_CONFIG_JSON_KEY and "auths" not in payload:
                raise InvalidPullSecret(f"Secret key {key} has no 'auths'")
            return parse_docker_config(payload)
    kind = f" of type {secret_type}" if secret_type else ""
    raise InvalidPullSecret(f"Secret{kind} has neither {DOCKER_CONFIG_JSON_KEY} nor {DOCKER_CFG_KEY}")


def find_credentials(entries: Iterable[AuthEntry], registry: str, repository: str) -> Credentials | None:
    """The most specific entry matching ``registry/repository``, or None."""
    matching = [entry for entry in entries if entry.matches(registry, repository)]
    if not matching:
        return None
    return max(matching, key=lambda entry: entry.specificity).credentials


def credentials_for(secrets: Iterable[Mapping[str, str]], reference: Reference | str) -> Credentials | None:
    """Credentials for an image from several Secrets' ``data``, like a Pod's imagePullSecrets."""
    ref = reference if isinstance(reference, Reference) else Reference.parse(reference)
    entries = [entry for data in secrets for entry in entries_from_secret(data)]
    return find_credentials(entries, ref.registry, ref.repository)


def split_config_key(key: str) -> tuple[str, str]:
    """``https://Host:5000/v1/team`` → (``host:5000``, ``team``); API version paths are dropped."""
    text = key.strip()
    for scheme in ("https://", "http://"):
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
    host, _, path = text.partition("/")
    parts = [p for p in path.split("/") if p and p not in _API_PATHS]
    return canonical_registry(host), "/".join(parts)


def _entry_credentials(key: str, value: Mapping[str, Any]) -> Credentials | None:
    auth = value.get("auth")
    if isinstance(auth, str) and auth:
        user, sep, password = _b64decode(auth, f"auth of {key!r}").partition(":")
        if not sep:
            raise InvalidPullSecret(f"auth of {key!r} is not base64 'user:password'")
        return Credentials(user, password)
    username, secret = value.get("username"), value.get("password")
    if isinstance(username, str) and isinstance(secret, str) and username:
        return Credentials(username, secret)
    return None


def _host_matches(pattern: str, host: str) -> bool:
    """Label-wise glob match; ports must be equal, as in the kubelet's keyring."""
    if pattern == host:
        return True
    pattern_name, _, pattern_port = pattern.partition(":")
    host_name, _, host_port = host.partition(":")
    if pattern_port != host_port:
        return False
    pattern_labels, host_labels = pattern_name.split("."), host_name.split(".")
    if len(pattern_labels) != len(host_labels):
        return False
    return all(fnmatch.fnmatchcase(h, p) for p, h in zip(pattern_labels, host_labels, strict=True))


def _b64decode(text: str, what: str) -> str:
    try:
        return base64.b64decode(text.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidPullSecret(f"{what} is not valid base64 text") from None
