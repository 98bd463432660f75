"""A small asyncio Kubernetes client for the operator's own writes.

Kopf does the watching; this client does the few calls reconciliation makes (server-side apply,
status patches, deletes, Events, reading a pull secret). It rides on the `kubernetes` package's
asyncio flavour (`kubernetes.aio`) for configuration, TLS and authentication, but speaks plain
JSON dicts: the typed models would cost a pydantic round trip per object for nothing, and the
operator's builders already produce dicts. Every call has a timeout.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from kubernetes.aio import client as aio_client
from kubernetes.aio import config as aio_config

from wasmkube import __version__

FIELD_MANAGER = "wasmkube"
# Names us in the API server's audit log and metrics; also its default field manager.
USER_AGENT = f"wasmkube/{__version__}"
# Writes that record a field manager (DELETE records none).
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
DEFAULT_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class ResourceType:
    """Where a kind lives in the API: enough to build its URL."""

    group: str
    version: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
        if subresource:
            base += f"/{subresource}"
        return base


WASMAPPS = ResourceType("wasmkube.dev", "v1alpha1", "wasmapps", namespaced=True)
WASMRUNTIMES = ResourceType("wasmkube.dev", "v1alpha1", "wasmruntimes", namespaced=False)
DEPLOYMENTS = ResourceType("apps", "v1", "deployments", namespaced=True)
SERVICES = ResourceType("", "v1", "services", namespaced=True)
SECRETS = ResourceType("", "v1", "secrets", namespaced=True)
EVENTS = ResourceType("", "v1", "events", namespaced=True)
HPAS = ResourceType("autoscaling", "v2", "horizontalpodautoscalers", namespaced=True)
RUNTIMECLASSES = ResourceType("node.k8s.io", "v1", "runtimeclasses", namespaced=False)
PODS = ResourceType("", "v1", "pods", namespaced=True)
ENDPOINTSLICES = ResourceType("discovery.k8s.io", "v1", "endpointslices", namespaced=True)

_BY_KIND: dict[tuple[str, str], ResourceType] = {
    ("apps/v1", "Deployment"): DEPLOYMENTS,
    ("v1", "Service"): SERVICES,
    ("discovery.k8s.io/v1", "EndpointSlice"): ENDPOINTSLICES,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): HPAS,
    ("node.k8s.io/v1", "RuntimeClass"): RUNTIMECLASSES,
    ("wasmkube.dev/v1alpha1", "WasmApp"): WASMAPPS,
    ("wasmkube.dev/v1alpha1", "WasmRuntime"): WASMRUNTIMES,
}


def resource_name(path: str) -> str:
    """The resource (and subresource) an API path addresses: `deployments`, `wasmapps/status`."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]  # drop /api/v1 or /apis/<group>/<version>
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]
    if not rest:
        return ""
    return rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")  # <plural>[/<name>[/<subresource>]]


def resource_of(obj: dict[str, Any]) -> ResourceType:
    """The resource type of a manifest the operator builds."""
    return _BY_KIND[(obj["apiVersion"], obj["kind"])]


Key = tuple[str, str]  # (namespace or "", name): an object's name within its resource type


def key_of(obj: dict[str, Any]) -> Key:
    """The key of any object, namespaced or not (then the namespace is "")."""
    meta = obj.get("metadata", {})
    return (str(meta.get("namespace") or ""), str(meta.get("name", "")))


class KubeApiError(Exception):
    """A non-2xx answer from the API server, with what is needed to decide on a retry."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def transient(self) -> bool:
        """Worth retrying unchanged: throttling, conflicts, server trouble, timeouts."""
        return self.status in {0, 408, 409, 429} or self.status >= 500

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def object_going_away(self) -> bool:
        """The object or its namespace is being deleted: nothing to reconcile any more."""
        return self.status == 404 or (self.status == 403 and "being terminated" in self.message)


class KubeClient:
    """The operator's writing hand. One instance per process, shared by all workers."""

    def __init__(
        self,
        api_client: aio_client.ApiClient,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        on_request: Callable[[str, str], None] | None = None,
        field_manager: str = FIELD_MANAGER,
    ) -> None:
        self._api = api_client
        self._timeout = timeout
        # The activator writes under its own name, so managedFields tell it apart from the operator.
        self.field_manager = field_manager
        # Told (method, path) of every request: how the operator's API traffic is measured.
        self.on_request = on_request

    @classmethod
    async def from_environment(
        cls, request_timeout: float = DEFAULT_TIMEOUT_SECONDS, field_manager: str = FIELD_MANAGER
    ) -> KubeClient:
        """In a pod, the service account; elsewhere `$KUBECONFIG` (or ~/.kube/config)."""
        configuration = aio_client.Configuration()
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
            aio_config.load_incluster_config(client_configuration=configuration)
        else:
            await aio_config.load_kube_config(client_configuration=configuration)
        configuration.connection_pool_maxsize = 64
        # Like Kopf's own watch client (its default), no proxy or netrc from the environment; a
        # kubeconfig's `proxy-url` still applies. aiohttp would otherwise re-read ~/.netrc and the
        # proxy variables on every request, a tenth of the operator's CPU under load (bench profile).
        configuration.client_session_kwargs = {"trust_env": False}
        return cls(aio_client.ApiClient(configuration), timeout=request_timeout, field_manager=field_manager)

    async def close(self) -> None:
        await self._api.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One API call; returns the decoded JSON answer or raises `KubeApiError`.

        Every write carries our field manager, so `managedFields` (what `kubectl diff`, Argo CD and
        other appliers read to tell owners apart) names wasmkube rather than the HTTP library."""
        if self.on_request is not None:
            self.on_request(method, path)
        if method in WRITE_METHODS:
            query = {"fieldManager": self.field_manager, **(query or {})}
        headers = {"Accept": "application/json", "Content-Type": content_type, "User-Agent": USER_AGENT}
        await self._api.update_params_for_auth(headers, [], ["BearerToken"], path, method, body)
        url = self._api.configuration.host + path
        if query:
            url += "?" + urlencode(query)
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._api.call_api(
                    method, url, header_params=headers, body=body, _request_timeout=self._timeout
                )
                raw = await response.read()
        except TimeoutError as exc:
            raise KubeApiError(0, "Timeout", f"{method} {path} took longer than {self._timeout:.0f}s") from exc
        except OSError as exc:
            raise KubeApiError(0, "ConnectionError", f"{method} {path}: {exc}") from exc
        payload: dict[str, Any] = json.loads(raw) if raw else {}
        if response.status >= 400:
            raise KubeApiError(
                response.status, str(payload.get("reason") or response.reason), str(payload.get("message") or raw[:500])
            )
        return payload

    async def apply(self, obj: dict[str, Any], *, force: bool = True) -> dict[str, Any]:
        """Server-side apply under our field manager; returns the object as stored."""
        meta = obj["metadata"]
        path = resource_of(obj).path(meta.get("namespace"), meta["name"])
        query = {"force": "true" if force else "false"}
        return await self.request("PATCH", path, body=obj, content_type="application/apply-patch+yaml", query=query)

    async def patch_status(
        self, resource: ResourceType, namespace: str | None, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """Replace `status` through the status subresource (a merge patch: lists are replaced)."""
        return await self.request(
            "PATCH",
            resource.path(namespace, name, "status"),
            body={"status": status},
            content_type="application/merge-patch+json",
        )

    async def get(self, resource: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return await self.request("GET", resource.path(namespace, name))
        except KubeApiError as exc:
            if exc.not_found:
                return None
            raise

    async def list_objects(
        self,
        resource: ResourceType,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """One page of a list (no watch, no continuation): what a bounded look at pods needs."""
        query: dict[str, str] = {}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        if limit:
            query["limit"] = str(limit)
        answer = await self.request("GET", resource.path(namespace), query=query or None)
        return list(answer.get("items") or [])

    async def delete(self, resource: ResourceType, namespace: str | None, name: str, *, uid: str | None = None) -> None:
        """Delete if present; with `uid`, only that exact object (never a same-named successor)."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self.request("DELETE", resource.path(namespace, name), body=body)
        except KubeApiError as exc:
            if not (exc.not_found or exc.status == 409):
                raise

    async def patch_scale(
        self, resource: ResourceType, namespace: str, name: str, replicas: int, *, resource_version: str | None = None
    ) -> dict[str, Any]:
        """Set `spec.replicas` through the /scale subresource. With `resource_version`, only if the
        object has not changed since it was read (409 otherwise): a racing writer wins."""
        body: dict[str, Any] = {"spec": {"replicas": replicas}}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        return await self.request(
            "PATCH", resource.path(namespace, name, "scale"), body=body, content_type="application/merge-patch+json"
        )

    async def stream_lines(
        self, path: str, query: dict[str, str], *, limit_seconds: float
    ) -> AsyncIterator[bytes]:
        """The lines of a streaming GET (a watch), each a JSON event; ends when the server closes
        the stream or `limit_seconds` pass. Raises `KubeApiError` for a refused request."""
        if self.on_request is not None:
            self.on_request("WATCH", path)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        await self._api.update_params_for_auth(headers, [], ["BearerToken"], path, "GET", None)
        url = self._api.configuration.host + path + "?" + urlencode(query)
        # No asyncio.timeout around a generator that yields: aiohttp's own total timeout (and the
        # server's timeoutSeconds) bound the stream instead.
        try:
            response = await self._api.call_api("GET", url, header_params=headers, _request_timeout=limit_seconds)
            try:
                if response.status >= 400:
                    raw = await response.read()
                    payload = json.loads(raw) if raw.startswith(b"{") else {}
                    raise KubeApiError(
                        response.status,
                        str(payload.get("reason") or response.reason),
                        str(payload.get("message") or raw[:500]),
                    )
                async for line in response.response.content:
                    if line.strip():
                        yield line
            finally:
                response.response.release()
        except TimeoutError:
            return
        except OSError as exc:
            raise KubeApiError(0, "ConnectionError", f"GET {path}: {exc}") from exc

    async def post_event(self, event: dict[str, Any]) -> None:
        namespace = event["metadata"]["namespace"]
        await self.request("POST", EVENTS.path(namespace), body=event)
