"""Parse and normalise OCI image references the way Docker and the kubelet do.

The operator pins ``image@sha256:...`` into the Pods it renders, so the parse must agree with the
node's: ``nginx`` has to become ``docker.io/library/nginx:latest`` and ``localhost:5000/app``
must keep its registry. The rules follow the distribution reference grammar: the first path
component is a registry host only if it contains ``.`` or ``:``, is ``localhost``, or has an
uppercase letter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from wasmkube.registry.errors import InvalidReference

DOCKER_HUB: Final = "docker.io"
DOCKER_HUB_ALIASES: Final = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)
DEFAULT_TAG: Final = "latest"
MAX_NAME_LENGTH: Final = 255

_HOST_LABEL = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)"
_DOMAIN_RE: Final = re.compile(rf"(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[[a-fA-F0-9:]+\])(?::[0-9]{{1,5}})?")
_PATH_COMPONENT_RE: Final = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG_RE: Final = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST_RE: Final = re.compile(r"(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})")


def canonical_registry(host: str) -> str:
    """Lower-case a registry host and fold Docker Hub's many names into ``docker.io``."""
    host = host.lower()
    return DOCKER_HUB if host in DOCKER_HUB_ALIASES else host


def validate_digest(digest: str) -> str:
    """Return ``digest`` if it is a sha256/sha512 content digest, else raise InvalidReference."""
    if not _DIGEST_RE.fullmatch(digest):
        raise InvalidReference(f"invalid digest {digest!r}: expected sha256:<64 hex> or sha512:<128 hex>")
    return digest


@dataclass(frozen=True)
class Reference:
    """A normalised image reference: a tag, a digest, or both (the digest then wins)."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse ``[host[:port]/]path[:tag][@digest]``; raise InvalidReference if malformed."""
        if not text or text != text.strip() or any(c.isspace() for c in text):
            raise InvalidReference(f"invalid image reference {text!r}: empty or contains whitespace")
        name, at, digest = text.partition("@")
        if at and (not digest or "@" in digest):
            raise InvalidReference(f"invalid image reference {text!r}: bad '@digest' part")
        name, tag = _split_tag(name)
        registry, repository = _split_registry(name)

        if not _DOMAIN_RE.fullmatch(registry):
            raise InvalidReference(f"invalid image reference {text!r}: bad registry host {registry!r}")
        for component in repository.split("/"):
            if not _PATH_COMPONENT_RE.fullmatch(component):
                raise InvalidReference(
                    f"invalid image reference {text!r}: bad repository component {component!r} "
                    "(lower-case letters, digits and separators . _ __ - only)"
                )
        if tag is not None and not _TAG_RE.fullmatch(tag):
            raise InvalidReference(f"invalid image reference {text!r}: bad tag {tag!r}")
        if digest:
            validate_digest(digest)
        if len(f"{registry}/{repository}") > MAX_NAME_LENGTH:
            raise InvalidReference(f"invalid image reference {text!r}: name longer than {MAX_NAME_LENGTH}")
        if tag is None and not digest:
            tag = DEFAULT_TAG
        return cls(registry=registry, repository=repository, tag=tag, digest=digest or None)

    @property
    def name(self) -> str:
        """``registry/repository``, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def version(self) -> str:
        """What to ask the registry for: the digest if there is one (it is immutable), else the tag."""
        version = self.digest or self.tag
        assert version is not None  # parse() guarantees one of them
        return version

    def pinned(self, digest: str) -> str:
        """``registry/repository@digest``: the immutable form the operator puts into Pods."""
        return f"{self.name}@{validate_digest(digest)}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _split_tag(name: str) -> tuple[str, str | None]:
    """Split ``name:tag``; a ``:`` before the last ``/`` belongs to a host's port, not a tag."""
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        return name[:colon], name[colon + 1 :]
    return name, None


def _split_registry(name: str) -> tuple[str, str]:
    """Split off the registry host, applying Docker Hub's defaults."""
    first, slash, rest = name.partition("/")
    is_host = bool(slash) and ("." in first or ":" in first or first == "localhost" or first != first.lower())
    if is_host:
        registry, repository = canonical_registry(first), rest
    else:
        registry, repository = DOCKER_HUB, name
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not repository:
        raise InvalidReference(f"invalid image reference {name!r}: no repository")
    return registry, repository
