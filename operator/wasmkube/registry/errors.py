"""Failures of artifact resolution, each with a stable ``reason``.

The operator copies ``reason`` into a status condition, so the names are part of the API: they
are CamelCase, short and never change. ``transient`` tells the caller whether retrying later can
help without anyone changing anything (a registry that is down) or not (a tag that does not exist).
"""

from __future__ import annotations

from typing import ClassVar, Self


class RegistryError(Exception):
    """Base class: resolving an OCI reference failed."""

    reason: ClassVar[str] = "RegistryError"
    transient: ClassVar[bool] = False

    def __init__(self, message: str, *, reference: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reference = reference

    def __str__(self) -> str:
        if self.reference:
            return f"{self.reference}: {self.message}"
        return self.message

    def copy(self) -> Self:
        """A fresh instance with the same content.

        Cached failures are handed to many callers; raising one shared instance from many tasks
        would chain their tracebacks together, so every caller gets its own copy.
        """
        return type(self)(self.message, reference=self.reference)


class InvalidReference(RegistryError, ValueError):
    """The text is not a valid OCI image reference (user error, nothing was fetched)."""

    reason = "InvalidReference"


class RegistryNotAllowed(RegistryError):
    """The registry host is not on the allow-list, or it redirected us to another host."""

    reason = "RegistryNotAllowed"


class NotFound(RegistryError):
    """The repository, tag or digest does not exist (404, MANIFEST_UNKNOWN, NAME_UNKNOWN)."""

    reason = "NotFound"


class Unauthorized(RegistryError):
    """The registry refused the credentials we have, or we have none (401/403)."""

    reason = "Unauthorized"


class ArtifactUnavailable(RegistryError):
    """The registry could not be reached or failed (timeout, refused connection, 5xx, 429)."""

    reason = "ArtifactUnavailable"
    transient = True


class UnsupportedArtifact(RegistryError):
    """The registry answered, but with content we cannot use.

    Examples: a malformed manifest, a digest that does not match the bytes, an index without a
    Wasm or linux/amd64 entry, a "Wasm" layer that is not WebAssembly.
    """

    reason = "UnsupportedArtifact"


class InvalidPullSecret(RegistryError, ValueError):
    """A dockerconfigjson/dockercfg Secret could not be decoded."""

    reason = "InvalidPullSecret"
