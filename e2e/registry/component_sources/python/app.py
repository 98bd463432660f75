"""The greeter in Python, as a wasi:http/incoming-handler component built by componentize-py.

It is the large test component (about 18 MB: CPython and its standard library are inside), for
tests of pull and cold-start time. `GET /` answers ``<GREETING or hello> (python)``, `GET /healthz`
answers 200, anything else 404. componentize-py generates the ``wit_world`` bindings at build time.
"""

import os

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)


def route(target: str) -> tuple[int, str]:
    path = target.split("?", 1)[0] or "/"
    if path == "/":
        return 200, f"{os.environ.get('GREETING', 'hello')} (python)\n"
    if path == "/healthz":
        return 200, "ok\n"
    return 404, "not found\n"


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        status, text = route(request.path_with_query() or "/")
        body = text.encode()
        headers = Fields.from_list([
            ("content-type", b"text/plain; charset=utf-8"),
            ("content-length", str(len(body)).encode()),
        ])
        response = OutgoingResponse(headers)
        response.set_status_code(status)
        outgoing = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        stream = outgoing.write()
        stream.blocking_write_and_flush(body)
        stream.__exit__(None, None, None)  # drop the stream before finishing its body
        OutgoingBody.finish(outgoing, None)
