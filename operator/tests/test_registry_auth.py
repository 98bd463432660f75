"""Pull-secret parsing: the operator must find the credentials the kubelet would use."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from wasmkube.registry.auth import (
    Credentials,
    credentials_for,
    entries_from_secret,
    find_credentials,
    parse_docker_config,
    split_config_key,
)
from wasmkube.registry.errors import InvalidPullSecret


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def dockerconfigjson(auths: dict[str, Any]) -> dict[str, str]:
    """``Secret.data`` of a ``kubernetes.io/dockerconfigjson`` Secret, as the API returns it."""
    return {".dockerconfigjson": b64(json.dumps({"auths": auths}))}


def test_auth_field_and_username_password_fields() -> None:
    data = dockerconfigjson(
        {
            "ghcr.io": {"auth": b64("alice:pa:ss")},  # the password may contain ':'
            "quay.io": {"username": "bob", "password": "hunter2"},
        }
    )
    assert credentials_for([data], "ghcr.io/org/app:v1") == Credentials("alice", "pa:ss")
    assert credentials_for([data], "quay.io/x/y") == Credentials("bob", "hunter2")
    assert credentials_for([data], "registry.example.com/x") is None


@pytest.mark.parametrize(
    "key",
    [
        "https://index.docker.io/v1/",
        "index.docker.io",
        "docker.io",
        "https://registry-1.docker.io",
        "registry.hub.docker.com",
    ],
)
def test_docker_hub_aliases(key: str) -> None:
    data = dockerconfigjson({key: {"auth": b64("hub:secret")}})
    assert credentials_for([data], "nginx") == Credentials("hub", "secret")
    assert credentials_for([data], "docker.io/bitnami/redis:7") == Credentials("hub", "secret")


def test_scheme_port_and_trailing_paths() -> None:
    data = dockerconfigjson({"http://127.0.0.1:5000/v2/": {"auth": b64("u:p")}})
    assert credentials_for([data], "127.0.0.1:5000/app:v1") == Credentials("u", "p")
    assert credentials_for([data], "127.0.0.1:5001/app:v1") is None  # ports must match
    assert credentials_for([data], "127.0.0.1/app:v1") is None


def test_most_specific_entry_wins() -> None:
    data = dockerconfigjson(
        {
            "*.example.com": {"auth": b64("glob:1")},
            "registry.example.com": {"auth": b64("host:2")},
            "registry.example.com/team": {"auth": b64("team:3")},
            "registry.example.com/team/app": {"auth": b64("app:4")},
        }
    )

    def user(reference: str) -> str | None:
        found = credentials_for([data], reference)
        return found.username if found else None

    assert user("registry.example.com/team/app:v1") == "app"
    assert user("registry.example.com/team/other") == "team"
    assert user("registry.example.com/teamster/x") == "host"  # prefix is per path component
    assert user("mirror.example.com/x") == "glob"
    assert user("a.b.example.com/x") is None  # '*' matches one label only


def test_legacy_dockercfg_secret() -> None:
    data = {".dockercfg": b64(json.dumps({"https://ghcr.io": {"auth": b64("old:style"), "email": "x@y"}}))}
    assert credentials_for([data], "ghcr.io/a/b") == Credentials("old", "style")


def test_first_secret_listing_a_registry_is_not_required_all_are_searched() -> None:
    first = dockerconfigjson({"quay.io": {"auth": b64("q:1")}})
    second = dockerconfigjson({"ghcr.io": {"auth": b64("g:2")}})
    assert credentials_for([first, second], "ghcr.io/a") == Credentials("g", "2")


def test_entries_without_usable_credentials_are_skipped() -> None:
    entries = parse_docker_config({"auths": {"ghcr.io": {"identitytoken": "abc"}, "quay.io": {}}})
    assert entries == []


@pytest.mark.parametrize(
    "data",
    [
        {},
        {".dockerconfigjson": "!!not base64!!"},
        {".dockerconfigjson": b64("not json")},
        {".dockerconfigjson": b64("[]")},
        {".dockerconfigjson": b64(json.dumps({"registry": {}}))},  # no "auths"
        dockerconfigjson({"ghcr.io": {"auth": b64("no-colon")}}),
        dockerconfigjson({"ghcr.io": "string"}),
    ],
)
def test_malformed_secrets_raise_invalid_pull_secret(data: dict[str, str]) -> None:
    with pytest.raises(InvalidPullSecret) as info:
        entries_from_secret(data, "kubernetes.io/dockerconfigjson")
    assert info.value.reason == "InvalidPullSecret"


def test_split_config_key() -> None:
    assert split_config_key("https://Index.Docker.io/v1/") == ("docker.io", "")
    assert split_config_key("registry.example.com:8443/team/app/") == ("registry.example.com:8443", "team/app")


def test_credentials_hide_the_password_and_fingerprint_distinctly() -> None:
    creds = Credentials("alice", "s3cret")
    assert "s3cret" not in repr(creds)
    assert creds.identity != Credentials("alice", "other").identity
    assert creds.identity == Credentials("alice", "s3cret").identity
    assert base64.b64decode(creds.basic_token()) == b"alice:s3cret"
    assert find_credentials([], "ghcr.io", "a") is None
