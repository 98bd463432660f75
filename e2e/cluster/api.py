"""HTTP probes and a tiny API client (the stdlib is enough; no kubectl start-up cost per call)."""

from __future__ import annotations

import http.client
import json
import ssl
from pathlib import Path
from typing import Any

from .errors import ClusterError
from .layout import APISERVER_PORT, FIELD_MANAGER, HOST


def http_status(url_path: str, port: int, *, context: ssl.SSLContext | None = None) -> int:
    """Status of a GET against 127.0.0.1:port, or 0 if nothing answers in time."""
    conn: http.client.HTTPConnection
    if context is None:
        conn = http.client.HTTPConnection(HOST, port, timeout=2)
    else:
        conn = http.client.HTTPSConnection(HOST, port, timeout=2, context=context)
    try:
        conn.request("GET", url_path)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def insecure_tls() -> ssl.SSLContext:
    """For the health ports of controller-manager and scheduler, which serve self-signed certificates;
    only /healthz on loopback is ever read through it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class ApiClient:
    """Just enough of the Kubernetes REST API for bootstrapping, authenticated as the admin."""

    def __init__(self, pki: Path) -> None:
        self.context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

    def request(self, method: str, path: str, body: Any = None,
                content_type: str = "application/json") -> tuple[int, Any]:
        """One request; returns (status, decoded JSON or None). Status 0 means unreachable."""
        conn = http.client.HTTPSConnection(HOST, APISERVER_PORT, timeout=5, context=self.context)
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            return 0, None
        finally:
            conn.close()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw.decode(errors="replace")

    def apply(self, path: str, obj: dict[str, Any]) -> None:
        """Server-side apply, forced: `up` is the single owner of the fields it declares."""
        query = f"?fieldManager={FIELD_MANAGER}&force=true"
        status, body = self.request("PATCH", path + query, obj, "application/apply-patch+yaml")
        if status not in (200, 201):
            raise ClusterError(f"apply {path} failed: HTTP {status}: {body}")

