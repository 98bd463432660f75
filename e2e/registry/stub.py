"""Misbehaving registries on 127.0.0.1, for failures a real registry will not produce on demand.

* :func:`stub_registry`: an HTTP server answering from a route table — a 500, a redirect to
  another host, a bearer-token challenge with its token endpoint.
* :func:`black_hole`: a socket that accepts connections into its backlog and never answers,
  which is what a hung registry or a dropped firewall path looks like to a client.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class StubRequest:
    method: str
    path: str
    headers: dict[str, str]


@dataclass(frozen=True)
class StubResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[[StubRequest], StubResponse]


@dataclass
class StubRegistry:
    """Routes by (method, path without query); everything else is a 404. Records every request."""

    port: int = 0
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    requests: list[StubRequest] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def route(self, method: str, path: str, route: Route) -> None:
        self.routes[(method, path)] = route

    def answer(self, method: str, path: str, response: StubResponse) -> None:
        self.route(method, path, lambda _request: response)

    def handle(self, request: StubRequest) -> StubResponse:
        self.requests.append(request)
        route = self.routes.get((request.method, request.path.split("?", 1)[0]))
        return route(request) if route else StubResponse(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')


@contextmanager
def stub_registry() -> Iterator[StubRegistry]:
    stub = StubRegistry()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            request = StubRequest(self.command, self.path, {k: v for k, v in self.headers.items()})
            response = stub.handle(request)
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_HEAD = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="stub-registry", daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def black_hole() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a listener that never accepts: connects succeed, answers never come."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"127.0.0.1:{sock.getsockname()[1]}"
