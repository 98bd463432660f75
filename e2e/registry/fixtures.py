"""pytest fixtures for registry tests: two real registries and every artifact layout pushed once.

Kept out of ``e2e/conftest.py`` (the cluster fixtures live there); a test module imports these
names into its own namespace, which is where pytest looks for fixtures besides conftest files.
Session-scoped: starting a registry and compiling/pushing artifacts is done once per run.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wasmkube.registry import ArtifactResolver

from .artifacts import PushedArtifact, push_all
from .pusher import Pusher
from .server import RegistryServer, registry_server

ResolverFactory = Callable[..., ArtifactResolver]


@pytest.fixture(scope="session")
def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """An anonymous-pull registry."""
    with registry_server(tmp_path_factory.mktemp("plain-registry")) as server:
        yield server


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry requiring HTTP Basic auth (htpasswd, bcrypt), with a random password."""
    credentials = ("wasmkube", secrets.token_urlsafe(12))
    with registry_server(tmp_path_factory.mktemp("auth-registry"), auth=credentials) as server:
        yield server


@pytest.fixture(scope="session")
def pushed(plain_registry: RegistryServer) -> dict[str, PushedArtifact]:
    """Every layout of :mod:`e2e.registry.artifacts`, pushed to the plain registry."""
    pusher = Pusher(plain_registry.host)
    try:
        return push_all(pusher)
    finally:
        pusher.close()


@pytest.fixture
def plain_pusher(plain_registry: RegistryServer) -> Iterator[Pusher]:
    pusher = Pusher(plain_registry.host)
    yield pusher
    pusher.close()


@pytest.fixture
def make_resolver(plain_registry: RegistryServer, auth_registry: RegistryServer) -> Iterator[ResolverFactory]:
    """Build resolvers that speak plain HTTP to both test registries; all closed afterwards."""
    made: list[ArtifactResolver] = []

    def make(**options: Any) -> ArtifactResolver:
        options.setdefault("insecure_registries", {plain_registry.host, auth_registry.host})
        options.setdefault("timeout", 10.0)
        resolver = ArtifactResolver(**options)
        made.append(resolver)
        return resolver

    yield make
    for resolver in made:
        resolver.close()


@pytest.fixture
def resolver(make_resolver: ResolverFactory) -> ArtifactResolver:
    """A resolver with default TTL."""
    return make_resolver()
