"""The test components are what they claim: valid, with the declared world, and behaving as
specified under the reference host (``wasmtime serve`` on 127.0.0.1), before any test runs them
through wasmkube. No cluster needed; the first run builds and installs the tools (about a minute,
most of it componentize-py), later runs read the cache.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import re
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from e2e.registry import artifacts, components, reference_host, toolchain
from e2e.registry import fixtures as _fixtures
from e2e.registry.fixtures import ResolverFactory
from e2e.registry.pusher import Pusher
from e2e.registry.server import RegistryServer
from e2e.registry.toolchain import ToolUnavailable
from e2e.support.waiting import wait_for
from wasmkube.api.artifact import ArtifactKind, ArtifactLayout

# Fixtures live in e2e/registry/fixtures.py; binding them here is how pytest finds them.
plain_registry = _fixtures.plain_registry
auth_registry = _fixtures.auth_registry
plain_pusher = _fixtures.plain_pusher
make_resolver = _fixtures.make_resolver

GREETING = "hello from a test"
SLOW_MS = 400


def get(base: str, path: str, timeout: float = 30.0) -> tuple[int, bytes]:
    """One GET on a fresh connection: (status, body)."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def world(component: bytes) -> tuple[set[str], set[str]]:
    """(imports, exports) of a component's world, from `wasm-tools component wit`."""
    with tempfile.NamedTemporaryFile(suffix=".wasm") as file:
        file.write(component)
        file.flush()
        wit = subprocess.run([str(toolchain.wasm_tools()), "component", "wit", file.name], capture_output=True,
                             text=True, check=True, timeout=60).stdout
    body = wit.split("world root {\n", 1)[1].split("\n}\n", 1)[0]  # inline interfaces nest braces
    imports = set(re.findall(r"^  import ([\w:/.@-]+);$", body, re.M))
    exports = set(re.findall(r"^  export ([\w:/.@-]+);$", body, re.M))
    return imports, exports


def validate(component: bytes) -> None:
    with tempfile.NamedTemporaryFile(suffix=".wasm") as file:
        file.write(component)
        file.flush()
        subprocess.run([str(toolchain.wasm_tools()), "validate", file.name], check=True, timeout=60)


# -- the C greeter ----------------------------------------------------------------------------


def test_greeter_is_a_valid_component_with_the_declared_world() -> None:
    greeter = components.greeter_component()
    assert greeter[:8] == b"\x00asm\x0d\x00\x01\x00"  # component preamble, not a core module
    validate(greeter)
    assert world(greeter) == (set(components.GREETER_IMPORTS), {components.HTTP_HANDLER})
    assert not any("preview1" in i or "snapshot" in i for i in world(greeter)[0])  # no adapter inside


def test_versions_and_health_are_distinct_builds_and_the_cache_returns_the_same_bytes() -> None:
    v1 = components.greeter_component("v1")
    started = time.monotonic()
    again = components.greeter_component("v1")
    cached_seconds = time.monotonic() - started
    assert again == v1 and cached_seconds < 1.0, f"cached greeter took {cached_seconds:.2f}s"
    variants = {v1, components.greeter_component("v2"), components.greeter_component("v1", healthz_status=503)}
    assert len(variants) == 3
    with pytest.raises(ValueError, match="version"):
        components.greeter_component('v1"); __builtin_trap(); ("')
    with pytest.raises(ValueError, match="healthz_status"):
        components.greeter_component("v1", healthz_status=42)


@pytest.fixture(scope="module")
def greeter_url() -> Iterator[str]:
    with reference_host.serve(components.greeter_component("v1"), env={"GREETING": GREETING}) as url:
        yield url


def test_greeter_answers_with_its_greeting_and_version(greeter_url: str) -> None:
    assert get(greeter_url, "/") == (200, f"{GREETING} (v1)\n".encode())
    assert get(greeter_url, "/healthz") == (200, b"ok\n")
    assert get(greeter_url, "/no/such/page") == (404, b"not found\n")
    assert get(greeter_url, "/?query=ignored") == (200, f"{GREETING} (v1)\n".encode())


def test_greeter_trap_becomes_a_500_and_the_next_request_is_served(greeter_url: str) -> None:
    status, _ = get(greeter_url, "/trap")
    assert status == 500
    assert get(greeter_url, "/") == (200, f"{GREETING} (v1)\n".encode())  # a fresh instance per request


def test_greeter_slow_requests_stay_in_flight_while_others_are_answered(greeter_url: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        started = time.monotonic()
        slow = [pool.submit(get, greeter_url, path) for path in (f"/slow?ms={SLOW_MS}", f"/slow/{SLOW_MS}")]
        time.sleep(0.05)
        fast = get(greeter_url, "/healthz")
        fast_seconds = time.monotonic() - started
        answers = [future.result(timeout=30) for future in slow]
        slow_seconds = time.monotonic() - started
    assert fast == (200, b"ok\n") and fast_seconds < SLOW_MS / 1000, f"/healthz waited {fast_seconds:.2f}s"
    assert answers == [(200, f"slept {SLOW_MS} ms\n".encode())] * 2
    assert SLOW_MS / 1000 <= slow_seconds < 2 * SLOW_MS / 1000 + 1, f"two slow requests took {slow_seconds:.2f}s"
    assert get(greeter_url, "/slow")[0] == 400


def test_greeter_without_greeting_says_hello_and_an_unhealthy_build_fails_healthz() -> None:
    with reference_host.serve(components.greeter_component("v2", healthz_status=503)) as url:
        assert get(url, "/") == (200, b"hello (v2)\n")
        assert get(url, "/healthz") == (503, b"unhealthy\n")


# -- the other components ---------------------------------------------------------------------


def test_spin_import_component_is_refused_by_a_host_without_spin_naming_the_import() -> None:
    spin = components.spin_import_component()
    validate(spin)
    imports, exports = world(spin)
    assert imports == set(components.SPIN_IMPORT_IMPORTS) and exports == {components.HTTP_HANDLER}
    message = reference_host.refusal(spin)
    assert components.SPIN_VARIABLES in message, message


def test_command_component_prints_argv_and_env_and_exits_with_the_code() -> None:
    command = components.command_component()
    validate(command)
    assert world(command)[1] == {components.CLI_RUN}
    done = reference_host.run(command, ["first", "second"], env={"WASMKUBE_GREETING": GREETING})
    assert done.returncode == 0, done.stderr
    assert "argv[1]=first\nargv[2]=second\n" in done.stdout
    assert f"env WASMKUBE_GREETING={GREETING}\n" in done.stdout
    failed = reference_host.run(command, [], env={"EXIT_CODE": "3"})
    assert "exit 3" in failed.stdout and failed.returncode != 0  # WASI 0.2 exit: ok or error only


def test_python_component_answers_with_its_greeting() -> None:
    started = time.monotonic()
    python = components.python_http_component()
    build_seconds = time.monotonic() - started
    validate(python)
    assert components.HTTP_HANDLER in world(python)[1]
    started = time.monotonic()
    with reference_host.serve(python, env={"GREETING": GREETING}, timeout=300) as url:
        ready_seconds = time.monotonic() - started
        assert get(url, "/") == (200, f"{GREETING} (python)\n".encode())
        assert get(url, "/healthz") == (200, b"ok\n")
        assert get(url, "/missing")[0] == 404
    print(f"\npython component: {len(python) / 1e6:.1f} MB, build/cache {build_seconds:.1f}s, "
          f"wasmtime serve ready {ready_seconds:.1f}s")
    assert len(python) > 10_000_000  # CPython inside: the large component the pull tests rely on


# -- the native twin --------------------------------------------------------------------------


@contextmanager
def native_greeter(env: dict[str, str]) -> Iterator[str]:
    port = reference_host.free_port()
    with tempfile.TemporaryDirectory(prefix="wasmkube-native-") as tmp:
        binary = Path(tmp) / "greeter"
        binary.write_bytes(components.native_greeter_binary("v1"))
        binary.chmod(0o755)
        process = subprocess.Popen([str(binary)], env={**env, "PORT": str(port), "BIND_ADDR": "127.0.0.1"},
                                   stdout=subprocess.DEVNULL)
        try:
            def listening() -> bool:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except OSError:
                    assert process.poll() is None, "native greeter did not start"
                    return False
                return True

            wait_for(listening, 10, 0.05, "the native greeter to listen",
                     error=lambda _: AssertionError("native greeter did not start"))
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_native_twin_answers_like_the_component(greeter_url: str) -> None:
    with native_greeter({"GREETING": GREETING}) as url:
        for path in ("/", "/healthz", "/nope", "/slow?ms=10"):
            assert get(url, path) == get(greeter_url, path), path
        assert get(url, "/trap")[0] == 500


def test_native_twin_keeps_connections_alive_pipelines_and_serves_concurrently() -> None:
    with native_greeter({}) as url:
        host, port = url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            for _ in range(3):  # one connection, three requests
                connection.request("GET", "/")
                response = connection.getresponse()
                assert (response.status, response.read()) == (200, b"hello (v1)\n")
                assert response.getheader("connection") is None  # not closed: keep-alive
        finally:
            connection.close()
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            received = b""
            while chunk := raw.recv(4096):
                received += chunk
        assert received.count(b"HTTP/1.1 200 OK") == 2 and received.endswith(b"ok\n")
        with ThreadPoolExecutor(max_workers=8) as pool:
            started = time.monotonic()
            answers = list(pool.map(lambda _: get(url, f"/slow?ms={SLOW_MS}"), range(8)))
            elapsed = time.monotonic() - started
        assert answers == [(200, f"slept {SLOW_MS} ms\n".encode())] * 8
        assert elapsed < 4 * SLOW_MS / 1000, f"8 concurrent slow requests took {elapsed:.2f}s (serialised?)"


def test_native_image_tar_is_one_static_file_run_as_nobody() -> None:
    with tarfile.open(fileobj=io.BytesIO(components.native_greeter_image_tar())) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert manifest[0]["RepoTags"] == [components.NATIVE_IMAGE]
        config = json.load(archive.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        layer_bytes = archive.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
    assert config["config"] == {"Entrypoint": ["/greeter"], "User": "65535:65535"}
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    with tarfile.open(fileobj=io.BytesIO(layer_bytes)) as layer:
        (member,) = layer.getmembers()
        assert (member.name, member.mode) == ("greeter", 0o755)
        binary = layer.extractfile(member).read()  # type: ignore[union-attr]
    assert binary[:4] == b"\x7fELF" and b"/lib64/ld-linux" not in binary  # static: no interpreter


# -- pushed as artifacts, classified by the operator's resolver -------------------------------


@pytest.mark.parametrize(("push", "kind", "layout", "exports", "built"), [
    (artifacts.greeter_http, ArtifactKind.COMPONENT, ArtifactLayout.CNCF_WASM, (components.HTTP_HANDLER,),
     components.greeter_component),
    (artifacts.spin_import_http, ArtifactKind.COMPONENT, ArtifactLayout.CNCF_WASM, (components.HTTP_HANDLER,),
     components.spin_import_component),
    (artifacts.cli_command, ArtifactKind.COMPONENT, ArtifactLayout.CNCF_WASM, (components.CLI_RUN,),
     components.command_component),
    (artifacts.python_http, ArtifactKind.COMPONENT, ArtifactLayout.CNCF_WASM, (components.HTTP_HANDLER,),
     components.python_http_component),
    (artifacts.native_greeter, ArtifactKind.CONTAINER, ArtifactLayout.CONTAINER_IMAGE, (), None),
], ids=["greeter", "spin-import", "command", "python", "native"])
async def test_push_helpers_give_artifacts_the_resolver_classifies(
    push: Callable[[Pusher], artifacts.PushedArtifact], kind: ArtifactKind, layout: ArtifactLayout,
    exports: tuple[str, ...], built: Callable[[], bytes] | None, plain_pusher: Pusher,
    plain_registry: RegistryServer, make_resolver: ResolverFactory,
) -> None:
    expected = push(plain_pusher)
    art = await make_resolver().resolve(expected.reference)
    assert (art.kind, art.layout, art.exports, art.digest) == (kind, layout, exports, expected.digest)
    assert art.platform == ("linux/amd64" if built is None else "wasip2/wasm")
    if built is not None:  # the one layer is the built component, byte for byte
        repository = expected.reference.split("/", 1)[1].rsplit(":", 1)[0]
        media_type, data = await asyncio.to_thread(only_layer, plain_registry.host, repository, expected.digest)
        assert (media_type, data) == (artifacts.WASM_LAYER, built())


def only_layer(host: str, repository: str, digest: str) -> tuple[str, bytes]:
    """(media type, bytes) of the single layer of manifest ``digest``."""
    base = f"http://{host}/v2/{repository}"
    manifest = requests.get(f"{base}/manifests/{digest}", headers={"Accept": artifacts.OCI_MANIFEST}, timeout=30)
    (layer,) = manifest.json()["layers"]
    return layer["mediaType"], requests.get(f"{base}/blobs/{layer['digest']}", timeout=60).content


def test_a_failing_build_step_names_its_tool() -> None:
    with pytest.raises(ToolUnavailable, match=r"^clang failed"):
        components._run("clang", ["clang", "--target=wasm32-wasi", "-c", "/nonexistent.c"])
    with pytest.raises(ToolUnavailable, match="no-such-compiler not found"):
        components._require("no-such-compiler", "install it")
