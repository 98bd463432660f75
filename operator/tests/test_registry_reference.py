"""Reference parsing must agree with Docker/kubelet normalisation, or pinned images break."""

from __future__ import annotations

import pytest

from wasmkube.registry.errors import InvalidReference
from wasmkube.registry.reference import Reference, canonical_registry

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", "latest", None),
        ("nginx:1.27", "docker.io", "library/nginx", "1.27", None),
        ("bitnami/nginx", "docker.io", "bitnami/nginx", "latest", None),
        ("docker.io/nginx", "docker.io", "library/nginx", "latest", None),
        ("index.docker.io/library/nginx:1", "docker.io", "library/nginx", "1", None),
        ("ghcr.io/spinkube/hello:v1", "ghcr.io", "spinkube/hello", "v1", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/team/app:dev", "localhost:5000", "team/app", "dev", None),
        ("127.0.0.1:5000/app", "127.0.0.1:5000", "app", "latest", None),
        ("[::1]:5000/app:x", "[::1]:5000", "app", "x", None),
        (f"ghcr.io/a/b@{DIGEST}", "ghcr.io", "a/b", None, DIGEST),
        (f"ghcr.io/a/b:v2@{DIGEST}", "ghcr.io", "a/b", "v2", DIGEST),
        ("Registry.Example.COM/a", "registry.example.com", "a", "latest", None),
        ("UPPER/case", "upper", "case", "latest", None),  # Docker: an uppercase first part is a host
        ("team/my.app__x-y", "docker.io", "team/my.app__x-y", "latest", None),
    ],
)
def test_parse_normalises_like_docker(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " nginx",
        "nginx latest",
        "nginx:",
        "nginx@",
        "nginx@sha256:short",
        "nginx@md5:" + "a" * 32,
        "a/B",
        "ghcr.io/",
        "ghcr.io//x",
        "ghcr.io/a/-b",
        "nginx:-bad",
        "nginx:" + "t" * 129,
        "host:99999x/app",
        f"a@{DIGEST}@{DIGEST}",
    ],
)
def test_invalid_references_are_refused(text: str) -> None:
    with pytest.raises(InvalidReference) as info:
        Reference.parse(text)
    assert info.value.reason == "InvalidReference"
    assert isinstance(info.value, ValueError)


def test_pinned_form_and_version() -> None:
    ref = Reference.parse("127.0.0.1:5000/apps/hello:v1")
    assert ref.version == "v1"
    assert ref.pinned(DIGEST) == f"127.0.0.1:5000/apps/hello@{DIGEST}"
    assert Reference.parse(ref.pinned(DIGEST)).version == DIGEST
    with pytest.raises(InvalidReference):
        ref.pinned("sha256:nothex")


def test_str_round_trips_the_normalised_form() -> None:
    for text in ("nginx", "localhost:5000/a/b:c", f"ghcr.io/x/y:t@{DIGEST}"):
        ref = Reference.parse(text)
        assert Reference.parse(str(ref)) == ref
    assert str(Reference.parse("nginx")) == "docker.io/library/nginx:latest"


def test_name_length_limit() -> None:
    long_path = "/".join(["abcdefghij"] * 25)
    with pytest.raises(InvalidReference):
        Reference.parse(f"ghcr.io/{long_path}")


def test_docker_hub_aliases_fold_together() -> None:
    assert {canonical_registry(h) for h in ("index.docker.io", "registry-1.docker.io", "DOCKER.IO")} == {"docker.io"}
    assert canonical_registry("Quay.io") == "quay.io"
