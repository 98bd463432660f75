"""Push blobs and manifests with plain distribution-API HTTP calls.

Plain HTTP rather than ``oras push`` because tests need byte-exact control: the manifest bytes
sent are the bytes whose sha256 the resolver must report, and layouts such as Spin's or an OCI
index are not what oras' push helper produces.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests


def sha256_digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def canonical_json(doc: Any) -> bytes:
    """Deterministic JSON bytes, so a re-run pushes the same digests."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes
    annotations: dict[str, str] | None = None

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    def descriptor(self) -> dict[str, Any]:
        desc: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}
        if self.annotations:
            desc["annotations"] = dict(self.annotations)
        return desc


class Pusher:
    """Uploads to one registry (``host:port``, plain HTTP), optionally with Basic auth."""

    def __init__(self, host: str, auth: tuple[str, str] | None = None, timeout: float = 30.0) -> None:
        self.host = host
        self._base = f"http://{host}/v2"
        self._session = requests.Session()
        self._session.auth = auth
        self._timeout = timeout

    def close(self) -> None:
        self._session.close()

    def blob(self, repository: str, blob: Blob) -> dict[str, Any]:
        """Upload ``blob`` (monolithic POST + PUT) unless present; return its descriptor."""
        exists = self._session.head(f"{self._base}/{repository}/blobs/{blob.digest}", timeout=self._timeout)
        if exists.status_code != 200:
            start = self._session.post(f"{self._base}/{repository}/blobs/uploads/", timeout=self._timeout)
            _expect(start, 202, "start blob upload")
            location = urljoin(f"http://{self.host}", start.headers["Location"])
            separator = "&" if "?" in location else "?"
            done = self._session.put(
                f"{location}{separator}digest={blob.digest}",
                data=blob.data,
                headers={"Content-Type": "application/octet-stream"},
                timeout=self._timeout,
            )
            _expect(done, 201, f"upload blob {blob.digest}")
        return blob.descriptor()

    def manifest(self, repository: str, reference: str, doc: dict[str, Any]) -> tuple[str, int]:
        """PUT a manifest or index under a tag or digest; return (digest, size) of the bytes sent."""
        body = canonical_json(doc)
        response = self._session.put(
            f"{self._base}/{repository}/manifests/{reference}",
            data=body,
            headers={"Content-Type": doc["mediaType"]},
            timeout=self._timeout,
        )
        _expect(response, 201, f"push manifest {repository}:{reference}")
        digest = sha256_digest(body)
        announced = response.headers.get("Docker-Content-Digest")
        if announced != digest:
            raise AssertionError(f"registry stored {announced}, we sent {digest}")
        return digest, len(body)

    def delete_manifest(self, repository: str, digest: str) -> None:
        response = self._session.delete(f"{self._base}/{repository}/manifests/{digest}", timeout=self._timeout)
        _expect(response, 202, f"delete {repository}@{digest}")


def _expect(response: requests.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise AssertionError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
