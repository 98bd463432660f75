"""OCI registry access: resolve an image reference to a pinned digest and say what it is.

Pure parts (reference parsing, pull-secret parsing, manifest classification) are importable
without touching the network; :class:`ArtifactResolver` does the I/O.
"""

from wasmkube.registry.artifact import ResolvedArtifact
from wasmkube.registry.auth import Credentials, credentials_for, entries_from_secret, find_credentials
from wasmkube.registry.classify import Classification, classify, select_platform, sniff_wasm
from wasmkube.registry.client import ArtifactResolver
from wasmkube.registry.errors import (
    ArtifactUnavailable,
    InvalidPullSecret,
    InvalidReference,
    NotFound,
    RegistryError,
    RegistryNotAllowed,
    Unauthorized,
    UnsupportedArtifact,
)
from wasmkube.registry.reference import Reference

__all__ = [
    "ArtifactResolver",
    "ArtifactUnavailable",
    "Classification",
    "Credentials",
    "InvalidPullSecret",
    "InvalidReference",
    "NotFound",
    "Reference",
    "RegistryError",
    "RegistryNotAllowed",
    "ResolvedArtifact",
    "Unauthorized",
    "UnsupportedArtifact",
    "classify",
    "credentials_for",
    "entries_from_secret",
    "find_credentials",
    "select_platform",
    "sniff_wasm",
]
