"""Reads and writes a workload's replica count through its ``scale`` subresource.

With the leader elector beside it, the only code that imports the Kubernetes client (as
kopf keeps its client behind one layer; ``tests/test_layers.py`` keeps it in
``autoscaler/live``). Like the HPA, we touch ``deployments/scale`` or
``statefulsets/scale`` only: a merge patch of ``{"spec": {"replicas": N}}`` (with the
``resourceVersion`` it read as a precondition) and nothing else, so no other field of the
workload is ever written and RBAC can grant exactly ``get``/``patch`` on ``*/scale``.

Errors follow one vocabulary (kopf's permanent vs temporary):

* ``TargetMissing`` (404, temporary: the workload may be created later),
* ``ApiUnavailable`` (5xx, timeouts, connection errors: temporary),
* ``ScaleConflict`` (409 still after the bounded retries: temporary),
* ``PermissionDenied`` (403, permanent until RBAC changes; names the verb and resource),
* ``ApiRejected`` (other 4xx: permanent), ``ConnectError`` (no usable credentials).
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import aiohttp
import structlog
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config.config_exception import ConfigException

from autoscaler.config.model import KubernetesConfig, TargetConfig

__all__ = [
    "PAUSED_ANNOTATION",
    "PAUSED_REPLICAS_ANNOTATION",
    "ActuatorError",
    "ApiRejected",
    "ApiUnavailable",
    "ConnectError",
    "PermissionDenied",
    "ScaleActuator",
    "ScaleConflict",
    "ScaleResult",
    "ScaleState",
    "TargetMissing",
    "call_api",
]

_log = structlog.get_logger(__name__)

PAUSED_ANNOTATION = "autoscaler.io/paused"
PAUSED_REPLICAS_ANNOTATION = "autoscaler.io/paused-replicas"
_MERGE_PATCH = "application/merge-patch+json"
_PLURALS = {"Deployment": "deployments", "StatefulSet": "statefulsets"}
_DEFAULT_COMPONENT = "predictive-autoscaler"


# --------------------------------------------------------------------------- errors


class ActuatorError(Exception):
    """A failed call to the API server. ``temporary``: worth retrying on a later poll;
    ``kind``: a short, bounded label for metrics (never free text)."""

    temporary: bool = False
    kind: str = "error"


class TargetMissing(ActuatorError):  # noqa: N818 - names from the design
    """The workload (or its namespace) does not exist (404)."""

    temporary = True
    kind = "not_found"


class ApiUnavailable(ActuatorError):  # noqa: N818 - names from the design
    """The API server failed (5xx), timed out or could not be reached."""

    temporary = True
    kind = "unavailable"


class ScaleConflict(ActuatorError):  # noqa: N818 - names from the design
    """The scale kept changing under us (409) after every retry."""

    temporary = True
    kind = "conflict"


class PermissionDenied(ActuatorError):  # noqa: N818 - names from the design
    """RBAC forbids the request (403): the message names the verb and resource needed."""

    kind = "forbidden"

    def __init__(self, verb: str, resource: str, namespace: str, detail: str = "") -> None:
        self.verb = verb
        self.resource = resource
        self.namespace = namespace
        message = f"forbidden: need '{verb}' on '{resource}' in namespace '{namespace}' (RBAC)"
        super().__init__(f"{message}: {detail}" if detail else message)


class ApiRejected(ActuatorError):  # noqa: N818 - names from the design
    """The API server refused the request as invalid (4xx other than 403/404/409)."""

    kind = "rejected"


class ConnectError(ActuatorError):
    """No usable credentials: no service account in the pod, or a bad kubeconfig."""

    kind = "connect"


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class ScaleState:
    """What the scale subresource and the workload's annotations say right now."""

    spec_replicas: int
    status_replicas: int
    resource_version: str
    paused: bool = False
    paused_replicas: int | None = None
    """``autoscaler.io/paused-replicas``: hold the workload at this count (implies paused)."""
    ready_replicas: int | None = None
    """The workload's ``status.readyReplicas``: pods that pass readiness, so consume. (The
    scale's ``status.replicas`` counts starting pods too.) None: the workload has no status
    yet."""


ScaleOutcome = Literal["scaled", "unchanged", "changed_elsewhere"]


@dataclass(frozen=True)
class ScaleResult:
    """The outcome of ``scale()``.

    ``scaled``: patched to ``replicas``; ``unchanged``: already there, nothing written;
    ``changed_elsewhere``: the fresh read differed from ``expected_current`` (someone else
    scaled), nothing written and ``replicas`` is what the cluster has.
    """

    outcome: ScaleOutcome
    replicas: int
    previous: int | None
    resource_version: str
    attempts: int

    @property
    def patched(self) -> bool:
        return self.outcome == "scaled"


# --------------------------------------------------------------------------- actuator


class ScaleActuator:
    """Reads and patches the ``scale`` subresource of Deployments and StatefulSets."""

    def __init__(
        self,
        api_client: Any,
        *,
        request_timeout_seconds: float = 10.0,
        max_conflict_retries: int = 3,
        component: str = _DEFAULT_COMPONENT,
        owns_client: bool = False,
    ) -> None:
        self._client = api_client
        self._apps = k8s.AppsV1Api(api_client)
        self._core = k8s.CoreV1Api(api_client)
        self._timeout = request_timeout_seconds
        self._max_conflict_retries = max_conflict_retries
        self._component = component
        self._owns_client = owns_client
        self._uids: dict[tuple[str, str, str], str] = {}

    @classmethod
    async def connect(
        cls, config: KubernetesConfig, *, component: str = _DEFAULT_COMPONENT
    ) -> ScaleActuator:
        """An actuator with its own client: the pod's service account or a kubeconfig.

        ``auto`` picks the service account when KUBERNETES_SERVICE_HOST is set.
        """
        mode = config.mode
        if mode == "auto":
            mode = "in_cluster" if os.environ.get("KUBERNETES_SERVICE_HOST") else "kubeconfig"
        try:
            if mode == "in_cluster":
                configuration = k8s.Configuration()
                k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
                api_client = k8s.ApiClient(configuration)
            else:
                path = str(config.kubeconfig_path) if config.kubeconfig_path else None
                _check_kubeconfig_exists(path)
                api_client = await k8s_config.new_client_from_config(
                    config_file=path, context=config.context, persist_config=False
                )
        except (ConfigException, OSError, ValueError) as exc:
            where = "the pod's service account" if mode == "in_cluster" else "the kubeconfig"
            raise ConnectError(f"cannot load Kubernetes credentials from {where}: {exc}") from exc
        return cls(
            api_client,
            request_timeout_seconds=config.request_timeout_seconds,
            component=component,
            owns_client=True,
        )

    @property
    def api_client(self) -> Any:
        """The underlying client, shared with leader election (one connection pool)."""
        return self._client

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.close()

    async def __aenter__(self) -> ScaleActuator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ read

    async def read(self, target: TargetConfig) -> ScaleState:
        """The scale subresource's replicas and version, and the pause annotations."""
        kind, name, namespace = _ref(target)
        plural = _PLURALS[kind]
        scale = await self._read_scale(target)
        workload = await self._call(
            "get", plural, namespace, self._read_workload_method(kind), name, namespace
        )
        metadata = workload.metadata
        if metadata is not None and metadata.uid:
            self._uids[(kind, namespace, name)] = metadata.uid
        annotations: dict[str, str] = dict((metadata.annotations if metadata else None) or {})
        paused, paused_replicas = _pause(annotations)
        status = workload.status
        ready = None if status is None else int(status.ready_replicas or 0)  # omitted when 0
        return ScaleState(
            spec_replicas=int(scale.spec.replicas or 0) if scale.spec else 0,
            status_replicas=int(scale.status.replicas or 0) if scale.status else 0,
            resource_version=str(scale.metadata.resource_version or ""),
            paused=paused,
            paused_replicas=paused_replicas,
            ready_replicas=ready,
        )

    async def _read_scale(self, target: TargetConfig) -> Any:
        kind, name, namespace = _ref(target)
        return await self._call(
            "get",
            f"{_PLURALS[kind]}/scale",
            namespace,
            self._read_scale_method(kind),
            name,
            namespace,
        )

    # ------------------------------------------------------------------ scale

    async def scale(
        self, target: TargetConfig, replicas: int, *, expected_current: int | None = None
    ) -> ScaleResult:
        """Merge-patch ``spec.replicas`` of the scale subresource, and nothing else.

        With ``expected_current``, the scale is read first: when it differs, someone else
        changed it since the decision was made, and nothing is written. A patch after a read
        carries the ``resourceVersion`` read, so a writer slipping in between (a person's
        ``kubectl scale``, another controller) makes the API server answer 409 instead of
        being overwritten, as the HPA's read-then-update does. On 409 the scale is read
        again and the patch retried (at most ``max_conflict_retries`` times).
        """
        if replicas < 0:
            raise ValueError(f"replicas must be >= 0, not {replicas}")
        kind, name, namespace = _ref(target)
        resource = f"{_PLURALS[kind]}/scale"
        patch_method = (
            self._apps.patch_namespaced_deployment_scale
            if kind == "Deployment"
            else self._apps.patch_namespaced_stateful_set_scale
        )
        must_read = expected_current is not None
        previous: int | None = None
        version: str | None = None
        attempts = 0
        while True:
            if must_read:
                current = await self._read_scale(target)
                previous = int(current.spec.replicas or 0)
                version = str(current.metadata.resource_version or "")
                if expected_current is not None and previous != expected_current:
                    return ScaleResult("changed_elsewhere", previous, previous, version, attempts)
                if previous == replicas:
                    return ScaleResult("unchanged", replicas, previous, version, attempts)
            attempts += 1
            body: dict[str, Any] = {"spec": {"replicas": replicas}}
            if version:
                body["metadata"] = {"resourceVersion": version}
            try:
                patched = await self._call(
                    "patch",
                    resource,
                    namespace,
                    patch_method,
                    name,
                    namespace,
                    body,
                    _content_type=_MERGE_PATCH,
                )
            except ScaleConflict:
                if attempts > self._max_conflict_retries:
                    raise
                _log.info("scale_conflict_retry", target=target.name, attempt=attempts, kind=kind)
                must_read = True
                continue
            return ScaleResult(
                "scaled",
                int(patched.spec.replicas or 0),
                previous,
                str(patched.metadata.resource_version or ""),
                attempts,
            )

    # ------------------------------------------------------------------ events

    async def event(
        self, target: TargetConfig, reason: str, message: str, type: str = "Normal"
    ) -> None:
        """Record a core/v1 Event on the workload (``kubectl describe`` shows it).

        Never raises: an event is a courtesy to the reader, not part of scaling.
        """
        kind, name, namespace = _ref(target)
        try:
            uid = self._uids.get((kind, namespace, name))
            if uid is None:
                try:
                    workload = await self._call(
                        "get",
                        _PLURALS[kind],
                        namespace,
                        self._read_workload_method(kind),
                        name,
                        namespace,
                    )
                    uid = workload.metadata.uid if workload.metadata else None
                except ActuatorError:
                    uid = None  # still worth recording; describe matches by name then
            now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            involved: dict[str, str] = {
                "apiVersion": "apps/v1",
                "kind": kind,
                "name": name,
                "namespace": namespace,
            }
            if uid:
                involved["uid"] = uid
            body: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"generateName": f"{name}.", "namespace": namespace},
                "involvedObject": involved,
                "reason": reason,
                "message": message,
                "type": type,
                "source": {"component": self._component},
                "reportingComponent": self._component,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            }
            await self._call(
                "create", "events", namespace, self._core.create_namespaced_event, namespace, body
            )
        except ActuatorError as exc:
            _log.warning("event_not_recorded", target=target.name, reason=reason, error=str(exc))
        except Exception as exc:  # an event must never break a scaling loop
            _log.warning(
                "event_not_recorded",
                target=target.name,
                reason=reason,
                error=f"{type_name(exc)}: {exc}",
            )

    # ------------------------------------------------------------------ plumbing

    def _read_scale_method(self, kind: str) -> Any:
        if kind == "Deployment":
            return self._apps.read_namespaced_deployment_scale
        return self._apps.read_namespaced_stateful_set_scale

    def _read_workload_method(self, kind: str) -> Any:
        if kind == "Deployment":
            return self._apps.read_namespaced_deployment
        return self._apps.read_namespaced_stateful_set

    async def _call(
        self, verb: str, resource: str, namespace: str, method: Any, *args: Any, **kwargs: Any
    ) -> Any:
        return await call_api(
            verb, resource, namespace, method, *args, timeout=self._timeout, **kwargs
        )


async def call_api(
    verb: str,
    resource: str,
    namespace: str,
    method: Any,
    *args: Any,
    timeout: float,
    **kwargs: Any,
) -> Any:
    """Call a kubernetes-asyncio ``method`` with a request timeout; translate failures to
    ``ActuatorError`` (``verb`` and ``resource`` name the RBAC rule in a 403's message)."""
    try:
        return await method(*args, _request_timeout=timeout, **kwargs)
    except ApiException as exc:
        raise _translate(exc, verb, resource, namespace) from exc
    except TimeoutError as exc:
        raise ApiUnavailable(
            f"{verb} {resource} in namespace '{namespace}' timed out after {timeout}s"
        ) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise ApiUnavailable(
            f"{verb} {resource} in namespace '{namespace}': API server unreachable: {exc}"
        ) from exc


def type_name(exc: BaseException) -> str:
    return type(exc).__name__


def _ref(target: TargetConfig) -> tuple[str, str, str]:
    return target.scale_target_ref.kind, target.scale_target_ref.name, target.namespace


def _pause(annotations: dict[str, str]) -> tuple[bool, int | None]:
    """``paused: "true"`` pauses; ``paused-replicas: "N"`` pauses and holds at N (KEDA).

    An unparsable count is ignored (logged) rather than guessed.
    """
    paused = annotations.get(PAUSED_ANNOTATION, "").strip().lower() == "true"
    raw = annotations.get(PAUSED_REPLICAS_ANNOTATION)
    paused_replicas: int | None = None
    if raw is not None:
        try:
            paused_replicas = int(raw.strip())
        except ValueError:
            paused_replicas = None
        if paused_replicas is not None and paused_replicas < 0:
            paused_replicas = None
        if paused_replicas is None:
            _log.warning("invalid_annotation", annotation=PAUSED_REPLICAS_ANNOTATION, value=raw)
    return paused or paused_replicas is not None, paused_replicas


def _translate(exc: ApiException, verb: str, resource: str, namespace: str) -> ActuatorError:
    status = int(exc.status or 0)
    detail = _message(exc)
    where = f"{verb} {resource} in namespace '{namespace}'"
    if status == 404:
        return TargetMissing(f"{where}: not found ({detail})")
    if status == 403:
        return PermissionDenied(verb, resource, namespace, detail)
    if status == 409:
        return ScaleConflict(f"{where}: conflict ({detail})")
    if status == 401:
        return ApiRejected(f"{where}: unauthorized, credentials rejected ({detail})")
    if status == 429 or status >= 500 or status == 0:
        return ApiUnavailable(f"{where}: API server error {status} ({detail})")
    return ApiRejected(f"{where}: rejected with {status} ({detail})")


def _message(exc: ApiException) -> str:
    """The ``message`` of the API server's Status body, or the HTTP reason."""
    raw: object = exc.body
    body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if isinstance(body, str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            return body[:200]
        if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
            return str(parsed["message"])
    return str(exc.reason or "")


def _check_kubeconfig_exists(path: str | None) -> None:
    """A missing kubeconfig said plainly: the client library reports it as "Invalid
    kube-config file. Expected key current-context", which sends people looking inside a
    file that is not there."""
    if path is not None:
        candidates = [path]
    else:
        from_env = os.environ.get("KUBECONFIG", "")
        candidates = [p for p in from_env.split(os.pathsep) if p] or [
            os.path.expanduser("~/.kube/config")
        ]
    if not any(os.path.isfile(candidate) for candidate in candidates):
        source = (
            "kubernetes.kubeconfig_path"
            if path is not None
            else "KUBECONFIG"
            if os.environ.get("KUBECONFIG")
            else "the default ~/.kube/config"
        )
        raise ConnectError(
            f"cannot load Kubernetes credentials: no kubeconfig file at "
            f"{', '.join(candidates)} ({source}); set kubernetes.kubeconfig_path, or run in "
            "a pod (mode: in_cluster)"
        )
