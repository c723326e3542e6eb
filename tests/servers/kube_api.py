"""A small, faithful fake of the Kubernetes API endpoints the actuator uses.

    async with KubeApiServer() as api:
        api.add_workload("Deployment", "shop", "orders", replicas=3)
        client = ApiClient(api.configuration())

Why not kmock: kmock (0.8) serves a subresource URL as a patch of the parent object and
returns the parent, not an ``autoscaling/v1`` Scale, and never answers 409. The endpoints
below behave as the real API server does where the actuator depends on it:

* ``GET|PATCH /apis/apps/v1/namespaces/{ns}/{deployments|statefulsets}/{name}/scale``:
  a Scale object; PATCH accepts only ``application/merge-patch+json`` (RFC 7386) or
  strategic merge patch, may change only ``spec.replicas`` (anything else in ``spec`` is
  rejected with 422 as the real server does), bumps ``resourceVersion``, and answers 409
  when the patch carries a stale ``metadata.resourceVersion``;
* ``GET /apis/apps/v1/namespaces/{ns}/{plural}/{name}``: the workload with its annotations;
* ``POST /api/v1/namespaces/{ns}/events``: stores the event, fills ``metadata.name``.

Failures are switchable per request: ``fail(method, path_suffix, status, times=...)`` (403
names the verb and resource as the real server's message does), ``conflict_next(...)``
simulates a concurrent writer (bumps the version and answers 409), ``remove(...)`` gives
404. Every request is kept in ``requests`` (method, path, content type, raw body).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

__all__ = ["KubeApiServer", "RecordedRequest", "Workload"]

_PLURALS = {"Deployment": "deployments", "StatefulSet": "statefulsets"}
_KINDS = {plural: kind for kind, plural in _PLURALS.items()}
_PATCH_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")


@dataclass
class Workload:
    """One Deployment or StatefulSet, as the server stores it."""

    kind: str
    namespace: str
    name: str
    replicas: int
    status_replicas: int
    annotations: dict[str, str]
    resource_version: int
    uid: str

    def scale(self) -> dict[str, Any]:
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "uid": self.uid,
                "resourceVersion": str(self.resource_version),
            },
            "spec": {"replicas": self.replicas},
            "status": {"replicas": self.status_replicas, "selector": f"app={self.name}"},
        }

    def object(self) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1",
            "kind": self.kind,
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "uid": self.uid,
                "resourceVersion": str(self.resource_version),
                "annotations": dict(self.annotations),
            },
            "spec": {
                "replicas": self.replicas,
                "selector": {"matchLabels": {"app": self.name}},
                "template": {
                    "metadata": {"labels": {"app": self.name}},
                    "spec": {"containers": [{"name": "consumer", "image": "consumer:1"}]},
                },
                **({"serviceName": self.name} if self.kind == "StatefulSet" else {}),
            },
            "status": {"replicas": self.status_replicas},
        }


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    content_type: str
    body: bytes
    query: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Failure:
    method: str
    path_suffix: str
    status: int
    times: int | None  # None: until cleared


@dataclass
class KubeApiServer:
    """The fake API server on 127.0.0.1, a free port; an async context manager."""

    workloads: dict[tuple[str, str, str], Workload] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _conflicts: int = 0
    _writer_replicas: int | None = None
    _next_version: int = 1000
    _runner: web.AppRunner | None = None
    port: int = 0

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> KubeApiServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kubeconfig(self, context: str = "fake") -> dict[str, Any]:
        """A kubeconfig (as a dict, dump it to YAML/JSON) pointing at this server."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "test-token"}}],
            "contexts": [{"name": context, "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": context,
        }

    # ------------------------------------------------------------------ state

    def add_workload(
        self,
        kind: str,
        namespace: str,
        name: str,
        replicas: int,
        *,
        status_replicas: int | None = None,
        annotations: dict[str, str] | None = None,
    ) -> Workload:
        workload = Workload(
            kind=kind,
            namespace=namespace,
            name=name,
            replicas=replicas,
            status_replicas=replicas if status_replicas is None else status_replicas,
            annotations=dict(annotations or {}),
            resource_version=self._bump(),
            uid=f"uid-{kind.lower()}-{namespace}-{name}",
        )
        self.workloads[(_PLURALS[kind], namespace, name)] = workload
        return workload

    def workload(self, kind: str, namespace: str, name: str) -> Workload:
        return self.workloads[(_PLURALS[kind], namespace, name)]

    def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> None:
        """Another writer (a user, kubectl scale) changes the replicas."""
        workload = self.workload(kind, namespace, name)
        workload.replicas = replicas
        workload.resource_version = self._bump()

    def remove(self, kind: str, namespace: str, name: str) -> None:
        del self.workloads[(_PLURALS[kind], namespace, name)]

    def fail(self, method: str, path_suffix: str, status: int, *, times: int | None = None) -> None:
        """Answer ``status`` to requests whose path ends with ``path_suffix``."""
        self._failures.append(_Failure(method.upper(), path_suffix, status, times))

    def clear_failures(self) -> None:
        self._failures.clear()

    def conflict_next(self, times: int = 1, *, writer_replicas: int | None = None) -> None:
        """The next ``times`` scale PATCHes race a concurrent writer: 409, version bumped
        (and, with ``writer_replicas``, the replicas that writer set)."""
        self._conflicts += times
        self._writer_replicas = writer_replicas

    def patches(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "PATCH"]

    def _bump(self) -> int:
        self._next_version += 1
        return self._next_version

    # ------------------------------------------------------------------ HTTP

    async def _dispatch(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                content_type=request.headers.get("Content-Type", ""),
                body=body,
                query=dict(request.query),
            )
        )
        for failure in self._failures:
            if failure.method == request.method and request.path.endswith(failure.path_suffix):
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                return self._injected(failure.status, request)

        parts = request.path.strip("/").split("/")
        # /apis/apps/v1/namespaces/{ns}/{plural}/{name}[/scale]
        if parts[:4] == ["apis", "apps", "v1", "namespaces"] and len(parts) in (7, 8):
            namespace, plural, name = parts[4], parts[5], parts[6]
            sub = parts[7] if len(parts) == 8 else None
            if plural in _KINDS and sub in (None, "scale"):
                return self._workload(request, body, plural, namespace, name, sub)
        # /api/v1/namespaces/{ns}/events
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) == 5 and parts[4] == "events":
            if request.method == "POST":
                return self._create_event(parts[3], body)
            return _status(405, "MethodNotAllowed", "method not allowed")
        return _status(404, "NotFound", "the server could not find the requested resource")

    def _workload(
        self,
        request: web.Request,
        body: bytes,
        plural: str,
        namespace: str,
        name: str,
        sub: str | None,
    ) -> web.Response:
        resource = f"{plural}/scale" if sub else plural
        workload = self.workloads.get((plural, namespace, name))
        if workload is None:
            return _status(
                404, "NotFound", f'{plural}.apps "{name}" not found', name=name, kind=plural
            )
        if request.method == "GET":
            return web.json_response(workload.scale() if sub else workload.object())
        if request.method != "PATCH" or sub is None:
            return _status(405, "MethodNotAllowed", f"{request.method} on {resource} not served")

        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type not in _PATCH_TYPES:
            return _status(415, "UnsupportedMediaType", f"unsupported patch type {content_type}")
        try:
            patch = json.loads(body)
        except ValueError:
            return _status(400, "BadRequest", "invalid JSON in the patch body")
        if not isinstance(patch, dict):
            return _status(400, "BadRequest", "a merge patch must be a JSON object")

        if self._conflicts > 0:
            self._conflicts -= 1
            if self._writer_replicas is not None:
                workload.replicas = self._writer_replicas
            workload.resource_version = self._bump()
            return _conflict(name, plural)
        wanted_version = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted_version is not None and wanted_version != str(workload.resource_version):
            return _conflict(name, plural)

        merged = _merge_patch(workload.scale(), patch)
        spec = merged.get("spec")
        if not isinstance(spec, dict) or set(spec) - {"replicas"}:
            return _status(422, "Invalid", "Scale.spec may only set replicas")
        replicas = spec.get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            return _status(422, "Invalid", "spec.replicas: must be a non-negative integer")
        if replicas != workload.replicas:
            workload.replicas = replicas
            workload.resource_version = self._bump()
        return web.json_response(workload.scale())

    def _create_event(self, namespace: str, body: bytes) -> web.Response:
        try:
            event = json.loads(body)
        except ValueError:
            return _status(400, "BadRequest", "invalid JSON")
        metadata = event.setdefault("metadata", {})
        if metadata.get("namespace", namespace) != namespace:
            return _status(400, "BadRequest", "the namespace of the object does not match")
        metadata["namespace"] = namespace
        if not metadata.get("name"):
            if not metadata.get("generateName"):
                return _status(422, "Invalid", "metadata.name or generateName is required")
            metadata["name"] = f"{metadata['generateName']}{len(self.events):05x}"
        metadata["resourceVersion"] = str(self._bump())
        if "involvedObject" not in event:
            return _status(422, "Invalid", "involvedObject is required")
        self.events.append(event)
        return web.json_response(event, status=201)

    def _injected(self, status: int, request: web.Request) -> web.Response:
        if status == 403:
            verb = {"GET": "get", "PATCH": "patch", "POST": "create", "PUT": "update"}.get(
                request.method, request.method.lower()
            )
            parts = request.path.strip("/").split("/")
            if parts[-1] == "scale":
                resource, group = f"{parts[-3]}/scale", "apps"
            elif parts[-1] == "events":
                resource, group = "events", ""
            else:
                resource, group = parts[-2], "apps"
            return _status(
                403,
                "Forbidden",
                f'{resource} is forbidden: User "system:serviceaccount:x:autoscaler" '
                f'cannot {verb} resource "{resource}" in API group "{group}"',
            )
        if status == 404:
            return _status(404, "NotFound", "not found")
        if status == 409:
            return _status(409, "Conflict", "conflict")
        return _status(status, "InternalError", "injected server error")


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _conflict(name: str, plural: str) -> web.Response:
    return _status(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {plural}.apps "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
    )


def _status(
    code: int, reason: str, message: str, *, name: str | None = None, kind: str | None = None
) -> web.Response:
    details: dict[str, Any] = {}
    if name:
        details = {"name": name, "group": "apps", "kind": kind}
    return web.json_response(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": details,
            "code": code,
        },
        status=code,
    )
