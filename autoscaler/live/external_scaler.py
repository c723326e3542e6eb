"""KEDA's external scaler protocol: the service's decisions, served over gRPC to KEDA.

A ScaledObject with a trigger ``type: external`` (pull) or ``external-push`` and
``scalerAddress: <this service>:6000`` makes KEDA call, for each poll of its own:
``GetMetricSpec`` (once, to build its HPA), ``GetMetrics`` then ``IsActive`` (every
``pollingInterval``), and, for ``external-push``, the ``StreamIsActive`` stream. KEDA then
does the actuation, fallback and pause; this service decides and never patches the
workload itself (``conflicts.py`` sees the ScaledObject).

Which target a ScaledObject gets: ``scalerMetadata.target`` when set (a target's name in
this config), else the target with the ScaledObject's name in its namespace, else the one
whose workload has that name there. Unknown: ``NOT_FOUND``, saying how to name it. Only a
target of the ScaledObject's own namespace, unless ``server.external_scaler.cross_namespace``
(a named target elsewhere is ``NOT_FOUND``, naming both namespaces): one tenant's
ScaledObject must not read another's decisions. A ``GetMetrics`` for a metric other than
the one ``GetMetricSpec`` gave is ``NOT_FOUND`` too.

What it answers, so that the HPA KEDA builds lands on this service's own decision:

* ``GetMetricSpec``: one metric, ``desired_replicas``, with a per-replica target of 1
  (KEDA's default ``AverageValue``: the HPA computes ``ceil(metric / 1)``);
* ``GetMetrics``: ``external_metric_for(desired, current)`` (``decision/hpa.py``): the
  value in ``(desired - 1, desired]`` farthest from the HPA's tolerance band;
* ``IsActive``: whether the decision wants any replica: with a forecast, it turns true
  before the lag appears, so KEDA activates a workload at zero ahead of the load;
* ``StreamIsActive``: the same, sent when the stream opens and at every change;
* ``StreamMetricSpec``: the (fixed) spec when the stream opens, then kept open.

A target without a decision yet (starting) answers ``UNAVAILABLE``: KEDA counts it as a
failure and its ``fallback`` applies.

The protocol's messages are built at import from a descriptor written here (the same field
names and numbers as KEDA's ``externalscaler.proto``), so no generated code is shipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from autoscaler.config.model import ExternalScalerConfig, ServerConfig, TargetConfig
from autoscaler.decision import Decision
from autoscaler.decision.hpa import external_metric_for

__all__ = [
    "METRIC_NAME",
    "SERVICE",
    "ExternalScalerServer",
    "Lookup",
    "Messages",
    "TargetAnswer",
    "messages",
]

_log = structlog.get_logger(__name__)

SERVICE = "externalscaler.ExternalScaler"
Context = grpc.aio.ServicerContext[Any, Any]
METRIC_NAME = "desired_replicas"


# --------------------------------------------------------------------------- messages

_STRING = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
_BOOL = descriptor_pb2.FieldDescriptorProto.TYPE_BOOL
_INT64 = descriptor_pb2.FieldDescriptorProto.TYPE_INT64
_DOUBLE = descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE
_MESSAGE = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
_OPTIONAL = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
_REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED

_FIELDS: dict[str, list[tuple[str, int, int, int, str]]] = {
    # message: (field, number, type, label, message type)
    "ScaledObjectRef": [
        ("name", 1, _STRING, _OPTIONAL, ""),
        ("namespace", 2, _STRING, _OPTIONAL, ""),
        (
            "scalerMetadata",
            3,
            _MESSAGE,
            _REPEATED,
            ".externalscaler.ScaledObjectRef.ScalerMetadataEntry",
        ),
    ],
    "IsActiveResponse": [("result", 1, _BOOL, _OPTIONAL, "")],
    "GetMetricSpecResponse": [
        ("metricSpecs", 1, _MESSAGE, _REPEATED, ".externalscaler.MetricSpec"),
    ],
    "MetricSpec": [
        ("metricName", 1, _STRING, _OPTIONAL, ""),
        ("targetSize", 2, _INT64, _OPTIONAL, ""),
        ("targetSizeFloat", 3, _DOUBLE, _OPTIONAL, ""),
    ],
    "GetMetricsRequest": [
        ("scaledObjectRef", 1, _MESSAGE, _OPTIONAL, ".externalscaler.ScaledObjectRef"),
        ("metricName", 2, _STRING, _OPTIONAL, ""),
    ],
    "GetMetricsResponse": [
        ("metricValues", 1, _MESSAGE, _REPEATED, ".externalscaler.MetricValue"),
    ],
    "MetricValue": [
        ("metricName", 1, _STRING, _OPTIONAL, ""),
        ("metricValue", 2, _INT64, _OPTIONAL, ""),
        ("metricValueFloat", 3, _DOUBLE, _OPTIONAL, ""),
    ],
}


def _file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="externalscaler.proto", package="externalscaler", syntax="proto3"
    )
    for name, fields in _FIELDS.items():
        message = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name
            field.json_name = field_name
        if name == "ScaledObjectRef":
            entry = message.nested_type.add(name="ScalerMetadataEntry")
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=_STRING, label=_OPTIONAL)
            entry.field.add(name="value", number=2, type=_STRING, label=_OPTIONAL)
    return file


@dataclass(frozen=True)
class Messages:
    """The protocol's message classes (protobuf), by name."""

    ScaledObjectRef: Any
    IsActiveResponse: Any
    GetMetricSpecResponse: Any
    MetricSpec: Any
    GetMetricsRequest: Any
    GetMetricsResponse: Any
    MetricValue: Any


def _messages() -> Messages:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file())
    classes = {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"externalscaler.{name}"))
        for name in _FIELDS
    }
    return Messages(**classes)


messages = _messages()
"""The message classes; a client (tests, a probe) builds its requests with them."""


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class TargetAnswer:
    """What the service knows of one target right now."""

    target: TargetConfig
    decision: Decision | None
    """The last decision; None before the first one (or while the scale is unreadable)."""


Lookup = Callable[[str], TargetAnswer | None]
"""A target's answer by target name; None when there is no such target."""


class ExternalScalerServer:
    """The gRPC server (``grpc.aio``) on ``server.external_scaler.port``."""

    def __init__(
        self,
        targets: Callable[[], dict[str, TargetAnswer]],
        polled: Callable[[], Awaitable[None]],
        *,
        cross_namespace: bool = False,
    ) -> None:
        """``targets``: every target's answer, by name; ``polled``: waits for the next poll
        of any target (the streams re-check then); ``cross_namespace``: a ScaledObject may
        name a target of another namespace."""
        self._targets = targets
        self._polled = polled
        self._cross_namespace = cross_namespace
        self._server: grpc.aio.Server | None = None
        self.port = 0

    # ------------------------------------------------------------------ resolving

    def resolve(self, ref: Any) -> TargetAnswer:
        """The target a ScaledObjectRef means; raises ``LookupError`` saying why not."""
        answers = self._targets()
        wanted = dict(ref.scalerMetadata).get("target")
        if wanted:
            answer = answers.get(wanted)
            if answer is None:
                raise LookupError(f"scalerMetadata.target {wanted!r} is not a target here")
            namespace = answer.target.namespace
            if namespace != ref.namespace and not self._cross_namespace:
                raise LookupError(
                    f"target {wanted!r} is in namespace {namespace!r}, ScaledObject "
                    f"{ref.namespace}/{ref.name} in {ref.namespace!r}: a ScaledObject gets "
                    "only targets of its own namespace (server.external_scaler."
                    "cross_namespace: true shares them across namespaces)"
                )
            return answer
        by_name = answers.get(ref.name)
        if by_name is not None and by_name.target.namespace == ref.namespace:
            return by_name
        for answer in answers.values():
            target = answer.target
            if target.namespace == ref.namespace and target.scale_target_ref.name == ref.name:
                return answer
        raise LookupError(
            f"no target for ScaledObject {ref.namespace}/{ref.name}: name the target in the "
            "trigger's metadata (target: <name>), or give the target the ScaledObject's name"
        )

    @staticmethod
    def _decision(answer: TargetAnswer) -> Decision:
        if answer.decision is None:
            raise RuntimeError(f"target {answer.target.name!r} has no decision yet")
        return answer.decision

    # ------------------------------------------------------------------ handlers

    async def _context_answer(self, ref: Any, context: Context) -> Decision:
        try:
            return self._decision(self.resolve(ref))
        except LookupError as error:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(error))
        except RuntimeError as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        raise AssertionError("abort returns only by raising")  # pragma: no cover

    async def is_active(self, ref: Any, context: Context) -> Any:
        decision = await self._context_answer(ref, context)
        return messages.IsActiveResponse(result=decision.desired_replicas > 0)

    async def stream_is_active(self, ref: Any, context: Context) -> AsyncIterator[Any]:
        last: bool | None = None
        while True:
            decision = await self._context_answer(ref, context)
            active = decision.desired_replicas > 0
            if active != last:
                last = active
                yield messages.IsActiveResponse(result=active)
            await self._polled()

    async def _known(self, ref: Any, context: Context) -> None:
        """Abort with NOT_FOUND unless the ref names a target (no decision needed)."""
        try:
            self.resolve(ref)
        except LookupError as error:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(error))

    async def get_metric_spec(self, ref: Any, context: Context) -> Any:
        await self._known(ref, context)
        return self._spec()

    async def stream_metric_spec(self, ref: Any, context: Context) -> AsyncIterator[Any]:
        await self._known(ref, context)
        yield self._spec()  # the spec never changes: sent once, the stream stays open
        await asyncio.Event().wait()

    async def get_metrics(self, request: Any, context: Context) -> Any:
        name = request.metricName or METRIC_NAME
        if not _ours(name):
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"metric {name!r} is not served here: GetMetricSpec gives {METRIC_NAME!r}",
            )
        decision = await self._context_answer(request.scaledObjectRef, context)
        value = external_metric_for(decision.desired_replicas, decision.current_replicas)
        return messages.GetMetricsResponse(
            metricValues=[
                messages.MetricValue(
                    metricName=name, metricValue=round(value), metricValueFloat=value
                )
            ]
        )

    @staticmethod
    def _spec() -> Any:
        spec = messages.MetricSpec(metricName=METRIC_NAME, targetSize=1, targetSizeFloat=1.0)
        return messages.GetMetricSpecResponse(metricSpecs=[spec])

    # ------------------------------------------------------------------ serving

    def _handler(self) -> grpc.GenericRpcHandler:
        ref = messages.ScaledObjectRef.FromString
        serialize = _serialize
        methods = {
            "IsActive": grpc.unary_unary_rpc_method_handler(
                self.is_active, request_deserializer=ref, response_serializer=serialize
            ),
            "StreamIsActive": grpc.unary_stream_rpc_method_handler(
                self.stream_is_active, request_deserializer=ref, response_serializer=serialize
            ),
            "GetMetricSpec": grpc.unary_unary_rpc_method_handler(
                self.get_metric_spec, request_deserializer=ref, response_serializer=serialize
            ),
            "StreamMetricSpec": grpc.unary_stream_rpc_method_handler(
                self.stream_metric_spec, request_deserializer=ref, response_serializer=serialize
            ),
            "GetMetrics": grpc.unary_unary_rpc_method_handler(
                self.get_metrics,
                request_deserializer=messages.GetMetricsRequest.FromString,
                response_serializer=serialize,
            ),
        }
        return grpc.method_handlers_generic_handler(SERVICE, methods)

    async def start(self, server: ServerConfig) -> None:
        config = server.external_scaler
        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers((self._handler(),))
        address = f"{server.bind_address}:{config.port}"
        credentials = _credentials(config)
        if credentials is None:
            self.port = self._server.add_insecure_port(address)
        else:
            self.port = self._server.add_secure_port(address, credentials)
        await self._server.start()
        _log.info("external_scaler_listening", port=self.port, tls=credentials is not None)

    async def stop(self, grace_seconds: float = 2.0) -> None:
        if self._server is not None:
            await self._server.stop(grace_seconds)


def _ours(metric_name: str) -> bool:
    """The metric ``GetMetricSpec`` gives, as KEDA asks for it: bare (KEDA strips the
    trigger's ``s<N>-`` index before calling), or with the index still on."""
    if metric_name == METRIC_NAME:
        return True
    index, _, rest = metric_name.partition("-")
    return rest == METRIC_NAME and index[:1] == "s" and index[1:].isdigit()


def _serialize(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data


def _credentials(config: ExternalScalerConfig) -> grpc.ServerCredentials | None:
    if config.tls_cert_file is None or config.tls_key_file is None:
        return None
    pair = (config.tls_key_file.read_bytes(), config.tls_cert_file.read_bytes())
    if config.client_ca_file is None:
        return grpc.ssl_server_credentials([pair])
    return grpc.ssl_server_credentials(
        [pair],
        root_certificates=config.client_ca_file.read_bytes(),
        require_client_auth=True,
    )
