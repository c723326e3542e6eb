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
* ``POST /api/v1/namespaces/{ns}/events``: stores the event, fills ``metadata.name``;
* ``GET /apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers`` and
  ``GET /apis/keda.sh/v1alpha1/namespaces/{ns}/scaledobjects``: the HPAs and ScaledObjects
  added with ``add_hpa`` / ``add_scaled_object``; ScaledObjects answer 404 until one is added
  anywhere (KEDA's CRD is not installed), as the real server does;
* ``GET|POST /apis/coordination.k8s.io/v1/namespaces/{ns}/leases`` and
  ``GET|PUT|PATCH|DELETE .../leases/{name}``: Lease objects. Writes validate the spec as the
  real server does (``leaseDurationSeconds`` an integer, times RFC3339 MicroTime strings),
  bump ``resourceVersion`` and answer 409 when the body (or merge patch) carries a stale
  one; POST of an existing name is 409 AlreadyExists; a missing lease is 404.

Failures are switchable per request: ``fail(method, path_suffix, status, times=...)`` (403
names the verb and resource as the real server's message does), ``conflict_next(...)``
simulates a concurrent writer (bumps the version and answers 409), ``remove(...)`` gives
404; ``fail(..., anywhere=True)`` matches the fragment anywhere in the path and method
``"*"`` any method (``fail("*", "/leases", 500, anywhere=True)``: the lease API is down);
``touch_lease(...)`` is another writer bumping a lease's version. ``delay(method,
path_suffix, seconds, times=...)`` holds matching requests that long before answering (a
slow or hung API server: the client's request timeout fires first). Every request is kept in
``requests`` (method, path, content type, raw body, and ``at``: the loop clock on arrival).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

__all__ = ["KubeApiServer", "RecordedRequest", "Workload"]

_PLURALS = {"Deployment": "deployments", "StatefulSet": "statefulsets"}
_KINDS = {plural: kind for kind, plural in _PLURALS.items()}
_PATCH_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")
_LEASES = ["apis", "coordination.k8s.io", "v1", "namespaces"]
_MICRO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
FAST_LEASE: dict[str, object] = {
    "lease_namespace": "shop",
    "lease_duration_seconds": 1.0,
    "renew_deadline_seconds": 0.6,
    "retry_period_seconds": 0.2,
}
"""Leader election settings short enough for a test to see a takeover within a second or
two (the service tests run their instances against this fake)."""


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
    ready_replicas: int | None = None
    """``status.readyReplicas`` (None: as many as ``status_replicas``; 0 is omitted, as the
    API server omits it)."""

    @property
    def ready(self) -> int:
        return self.status_replicas if self.ready_replicas is None else self.ready_replicas

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
            "status": {
                "replicas": self.status_replicas,
                **({"readyReplicas": self.ready} if self.ready else {}),
            },
        }


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    content_type: str
    body: bytes
    query: dict[str, str]
    user_agent: str = ""
    at: float = 0.0
    """``time.monotonic()`` on arrival (the asyncio loop's clock)."""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Failure:
    method: str
    path_suffix: str
    status: int
    times: int | None  # None: until cleared
    anywhere: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method):
            return False
        return self.path_suffix in path if self.anywhere else path.endswith(self.path_suffix)


@dataclass
class KubeApiServer:
    """The fake API server on 127.0.0.1, a free port; an async context manager."""

    workloads: dict[tuple[str, str, str], Workload] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    leases: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    hpas: list[dict[str, Any]] = field(default_factory=list)
    scaled_objects: list[dict[str, Any]] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _delays: list[tuple[_Failure, float]] = field(default_factory=list)
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
        ready_replicas: int | None = None,
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
            ready_replicas=ready_replicas,
        )
        self.workloads[(_PLURALS[kind], namespace, name)] = workload
        return workload

    def workload(self, kind: str, namespace: str, name: str) -> Workload:
        return self.workloads[(_PLURALS[kind], namespace, name)]

    def add_hpa(
        self, namespace: str, name: str, target_name: str, kind: str = "Deployment"
    ) -> None:
        """An autoscaling/v2 HorizontalPodAutoscaler on the workload."""
        self.hpas.append(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target_name},
                    "minReplicas": 1,
                    "maxReplicas": 10,
                },
            }
        )

    def add_scaled_object(self, namespace: str, name: str, target_name: str) -> None:
        """A KEDA ScaledObject on the workload (and KEDA's CRD, from now on)."""
        self.scaled_objects.append(
            {
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "ScaledObject",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"scaleTargetRef": {"name": target_name}},
            }
        )

    def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> None:
        """Another writer (a user, kubectl scale) changes the replicas."""
        workload = self.workload(kind, namespace, name)
        workload.replicas = replicas
        workload.resource_version = self._bump()

    def remove(self, kind: str, namespace: str, name: str) -> None:
        del self.workloads[(_PLURALS[kind], namespace, name)]

    def fail(
        self,
        method: str,
        path_suffix: str,
        status: int,
        *,
        times: int | None = None,
        anywhere: bool = False,
    ) -> None:
        """Answer ``status`` to requests whose path ends with ``path_suffix`` (or, with
        ``anywhere``, contains it); method ``"*"`` matches every method."""
        self._failures.append(_Failure(method.upper(), path_suffix, status, times, anywhere))

    def delay(
        self,
        method: str,
        path_suffix: str,
        seconds: float,
        *,
        times: int | None = None,
        anywhere: bool = False,
    ) -> None:
        """Hold requests matching as for ``fail`` for ``seconds`` before answering them
        (normally, or with an injected failure); ``clear_failures()`` ends it."""
        rule = _Failure(method.upper(), path_suffix, 0, times, anywhere)
        self._delays.append((rule, seconds))

    def lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored Lease object (the live dict), or None."""
        return self.leases.get((namespace, name))

    def touch_lease(self, namespace: str, name: str) -> None:
        """Another writer updates the lease (a label): only its resourceVersion changes."""
        lease = self.leases[(namespace, name)]
        lease["metadata"].setdefault("labels", {})["touched"] = str(self._next_version)
        lease["metadata"]["resourceVersion"] = str(self._bump())

    def clear_failures(self) -> None:
        self._failures.clear()
        self._delays.clear()

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
                user_agent=request.headers.get("User-Agent", ""),
                at=time.monotonic(),
            )
        )
        for rule, seconds in list(self._delays):
            if rule.matches(request.method, request.path):
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self._delays.remove((rule, seconds))
                await asyncio.sleep(seconds)
                break
        for failure in self._failures:
            if failure.matches(request.method, request.path):
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
        # /apis/coordination.k8s.io/v1/namespaces/{ns}/leases[/{name}]
        if parts[:4] == _LEASES and len(parts) in (6, 7) and parts[5] == "leases":
            lease_name = parts[6] if len(parts) == 7 else None
            return self._lease(request, body, parts[4], lease_name)
        # the other owners a workload may have
        if request.method == "GET" and len(parts) == 6 and parts[3] == "namespaces":
            if (
                parts[:3] == ["apis", "autoscaling", "v2"]
                and parts[5] == "horizontalpodautoscalers"
            ):
                items = [h for h in self.hpas if h["metadata"]["namespace"] == parts[4]]
                return web.json_response({"kind": "HorizontalPodAutoscalerList", "items": items})
            if parts[:3] == ["apis", "keda.sh", "v1alpha1"] and parts[5] == "scaledobjects":
                if not self.scaled_objects:
                    return _status(
                        404, "NotFound", "the server could not find the requested resource"
                    )
                items = [o for o in self.scaled_objects if o["metadata"]["namespace"] == parts[4]]
                return web.json_response({"kind": "ScaledObjectList", "items": items})
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

    def _lease(
        self, request: web.Request, body: bytes, namespace: str, name: str | None
    ) -> web.Response:
        method = request.method
        if name is None:
            if method == "GET":
                items = [v for (ns, _), v in sorted(self.leases.items()) if ns == namespace]
                return web.json_response(
                    {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "LeaseList",
                        "metadata": {"resourceVersion": str(self._next_version)},
                        "items": items,
                    }
                )
            if method != "POST":
                return _status(405, "MethodNotAllowed", f"{method} on leases not served")
            try:
                lease = json.loads(body)
            except ValueError:
                return _status(400, "BadRequest", "invalid JSON")
            if not isinstance(lease, dict):
                return _status(400, "BadRequest", "a Lease must be a JSON object")
            metadata = lease.setdefault("metadata", {})
            if metadata.get("namespace", namespace) != namespace:
                return _status(400, "BadRequest", "the namespace of the object does not match")
            new_name = metadata.get("name")
            if not isinstance(new_name, str) or not new_name:
                return _status(422, "Invalid", "metadata.name: Required value")
            if (namespace, new_name) in self.leases:
                return _status(
                    409,
                    "AlreadyExists",
                    f'leases.coordination.k8s.io "{new_name}" already exists',
                    name=new_name,
                    kind="leases",
                    group="coordination.k8s.io",
                )
            invalid = _invalid_lease(lease)
            if invalid:
                return _status(422, "Invalid", invalid)
            if metadata.get("resourceVersion"):
                return _status(
                    400, "BadRequest", "resourceVersion should not be set on objects to be created"
                )
            stored = self._store_lease(namespace, new_name, lease, created=True)
            return web.json_response(stored, status=201)

        current = self.leases.get((namespace, name))
        if current is None:
            return _status(
                404,
                "NotFound",
                f'leases.coordination.k8s.io "{name}" not found',
                name=name,
                kind="leases",
                group="coordination.k8s.io",
            )
        if method == "GET":
            return web.json_response(current)
        if method == "DELETE":
            del self.leases[(namespace, name)]
            return web.json_response(
                {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {}}
            )
        if method not in ("PUT", "PATCH"):
            return _status(405, "MethodNotAllowed", f"{method} on leases not served")
        if method == "PATCH":
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            if content_type not in _PATCH_TYPES:
                return _status(
                    415, "UnsupportedMediaType", f"unsupported patch type {content_type}"
                )
        try:
            update = json.loads(body)
        except ValueError:
            return _status(400, "BadRequest", "invalid JSON")
        if not isinstance(update, dict):
            return _status(400, "BadRequest", "the body must be a JSON object")
        wanted_version = (update.get("metadata") or {}).get("resourceVersion")
        if wanted_version and wanted_version != current["metadata"]["resourceVersion"]:
            return _conflict(name, "leases", group="coordination.k8s.io")
        lease = _merge_patch(current, update) if method == "PATCH" else update
        metadata = lease.setdefault("metadata", {})
        if metadata.get("name", name) != name or metadata.get("namespace", namespace) != namespace:
            return _status(400, "BadRequest", "the name of the object does not match the URL")
        invalid = _invalid_lease(lease)
        if invalid:
            return _status(422, "Invalid", invalid)
        return web.json_response(self._store_lease(namespace, name, lease, created=False))

    def _store_lease(
        self, namespace: str, name: str, lease: dict[str, Any], *, created: bool
    ) -> dict[str, Any]:
        old = self.leases.get((namespace, name))
        metadata = dict(lease.get("metadata") or {})
        metadata.update(
            name=name,
            namespace=namespace,
            uid=old["metadata"]["uid"] if old else f"uid-lease-{namespace}-{name}",
            resourceVersion=str(self._bump()),
        )
        stored: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": dict(lease.get("spec") or {}),
        }
        self.leases[(namespace, name)] = stored
        return stored

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
            group = parts[1] if parts[0] == "apis" else ""
            if parts[-1] == "scale":
                resource = f"{parts[-3]}/scale"
            elif parts[-1] in ("events", "leases"):
                resource = parts[-1]
            else:
                resource = parts[-2]
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


def _invalid_lease(lease: dict[str, Any]) -> str:
    """Why the real server would reject this Lease (422), or "" when it is valid."""
    if lease.get("kind", "Lease") != "Lease":
        return f"kind: expected Lease, not {lease.get('kind')}"
    spec = lease.get("spec") or {}
    if not isinstance(spec, dict):
        return "spec: must be an object"
    for key in ("holderIdentity", "strategy", "preferredHolder"):
        if key in spec and spec[key] is not None and not isinstance(spec[key], str):
            return f"spec.{key}: must be a string"
    for key in ("leaseDurationSeconds", "leaseTransitions"):
        value = spec.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            return f"spec.{key}: must be an integer (int32), not {value!r}"
        if value < 0 or (key == "leaseDurationSeconds" and value == 0):
            bound = "0" if key == "leaseDurationSeconds" else "or equal to 0"
            return f"spec.{key}: must be greater than {bound}"
    for key in ("acquireTime", "renewTime"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, str) or not _MICRO_TIME.match(value)):
            return f"spec.{key}: must be an RFC3339 MicroTime string, not {value!r}"
    return ""


def _conflict(name: str, plural: str, *, group: str = "apps") -> web.Response:
    return _status(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {plural}.{group} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
    )


def _status(
    code: int,
    reason: str,
    message: str,
    *,
    name: str | None = None,
    kind: str | None = None,
    group: str = "apps",
) -> web.Response:
    details: dict[str, Any] = {}
    if name:
        details = {"name": name, "group": group, "kind": kind}
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
