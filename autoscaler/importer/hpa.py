"""autoscaling/v2 HorizontalPodAutoscalers as targets: replicas and behavior always; a
metric only where its meaning is known.

An HPA's metrics are read through metrics adapters this importer cannot see, so they are
not mapped generically. ``Resource`` and ``ContainerResource`` metrics (CPU, memory) are not
this project's job. One shape is recognised: an ``External`` metric whose name says
``lag`` and whose selector names a consumer group (``consumergroup``, ``group``...), as
kafka-exporter, Burrow or KMinion export it through prometheus-adapter; its
``averageValue`` is a lag per replica, which is what ``lag_threshold`` is. The HPA does not
say which Kafka cluster that is: with ``--kafka-bootstrap-servers`` the metric becomes a
``kafka_lag`` trigger on it, and without, a note says what to pass. An HPA that KEDA
created for a ScaledObject is skipped: the ScaledObject is the one to import.
"""

from __future__ import annotations

from typing import Any

from autoscaler.importer import kube, values
from autoscaler.importer.drafts import (
    KafkaConnection,
    Mapped,
    Note,
    TargetDraft,
    TriggerDraft,
    skipped,
)
from autoscaler.importer.manifests import KubeObject
from autoscaler.importer.triggers import NOT_OUR_JOB

API_VERSIONS = ("autoscaling/v2", "autoscaling/v2beta2")
"""The same schema (v2beta2 was removed in Kubernetes 1.26, but old files remain)."""
GROUP_LABELS = ("consumergroup", "consumer_group", "consumerGroup", "group", "group_id", "groupId")
TOPIC_LABELS = ("topic", "topic_name", "topicName")
KEDA_OWNER_LABEL = "scaledobject.keda.sh/name"


def map_hpa(obj: KubeObject, kafka_bootstrap_servers: tuple[str, ...] | None) -> Mapped:
    """One HPA as a draft target (None when no metric of it can be mapped), with notes."""
    about = obj.ref
    owner = _keda_owner(obj)
    if owner is not None:
        return skipped(about, f"KEDA made it for ScaledObject {owner}: import that instead")
    if obj.api_version == "autoscaling/v1":
        return skipped(about, f"autoscaling/v1 scales on CPU only: {NOT_OUR_JOB}")
    if obj.api_version not in API_VERSIONS:
        return skipped(about, f"{obj.api_version or 'no apiVersion'} is not autoscaling/v2")
    spec = obj.body.get("spec")
    if not isinstance(spec, dict):
        return skipped(about, "it has no spec")
    ref, problem = kube.workload(spec.get("scaleTargetRef"))
    if ref is None:
        return skipped(about, problem or "no workload")
    notes: list[Note] = []
    triggers: list[TriggerDraft] = []
    metrics = spec.get("metrics")
    for index, metric in enumerate(metrics if isinstance(metrics, list) else []):
        trigger, note = _metric(metric, f"{about}, metrics[{index}]", kafka_bootstrap_servers)
        if trigger is not None:
            triggers.append(trigger)
        if note is not None:
            notes.append(note)
    if not triggers:
        return skipped(about, "no metric this project can map", tuple(notes))
    replicas: dict[str, Any] = {"min_replicas": spec.get("minReplicas", 1)}  # the HPA's default
    if "maxReplicas" in spec:
        replicas["max_replicas"] = spec["maxReplicas"]
    rules: dict[str, Any] = {}
    behavior, behavior_notes = kube.behavior(spec.get("behavior"), about, "spec.behavior")
    notes.extend(behavior_notes)
    if behavior is not None:
        rules["behavior"] = behavior
    draft = TargetDraft(
        source=about,
        name=obj.name,
        namespace=obj.namespace,
        scale_target_ref=ref,
        replicas=replicas,
        triggers=tuple(triggers),
        rules=rules,
    )
    return Mapped(draft, tuple(notes))


def _keda_owner(obj: KubeObject) -> str | None:
    metadata = obj.body.get("metadata")
    if not isinstance(metadata, dict):
        return None
    for owner in metadata.get("ownerReferences") or []:
        if isinstance(owner, dict) and owner.get("kind") == "ScaledObject":
            return f"{obj.namespace}/{owner.get('name')}"
    labels = metadata.get("labels")
    if isinstance(labels, dict) and isinstance(labels.get(KEDA_OWNER_LABEL), str):
        return f"{obj.namespace}/{labels[KEDA_OWNER_LABEL]}"
    return None


def _metric(
    metric: object, about: str, servers: tuple[str, ...] | None
) -> tuple[TriggerDraft | None, Note | None]:
    if not isinstance(metric, dict):
        return None, Note(about, "not a mapping: not mapped")
    kind = metric.get("type")
    if kind in ("Resource", "ContainerResource"):
        source = metric.get("resource" if kind == "Resource" else "containerResource")
        name = source.get("name") if isinstance(source, dict) else None
        return None, Note(about, f"{kind} metric {name}: {NOT_OUR_JOB}: not mapped")
    if kind in ("Pods", "Object"):
        return None, Note(
            about,
            f"{kind} metric: served by a metrics adapter this file cannot see: not mapped (a "
            "prometheus trigger with the adapter's query is its equivalent)",
        )
    if kind != "External":
        return None, Note(about, f"metric type {kind}: not mapped")
    return _external(metric.get("external"), about, servers)


def _external(
    external: object, about: str, servers: tuple[str, ...] | None
) -> tuple[TriggerDraft | None, Note | None]:
    metric = external.get("metric") if isinstance(external, dict) else None
    target = external.get("target") if isinstance(external, dict) else None
    if not isinstance(metric, dict) or not isinstance(target, dict):
        return None, Note(about, "an External metric without metric and target: not mapped")
    name = str(metric.get("name"))
    selector = metric.get("selector")
    selector = selector if isinstance(selector, dict) else {}
    labels = selector.get("matchLabels")
    labels = labels if isinstance(labels, dict) else {}
    group = next((str(labels[k]) for k in GROUP_LABELS if k in labels), None)
    shown = f"External metric {name}" + (
        "{" + ", ".join(f"{k}={v}" for k, v in labels.items()) + "}" if labels else ""
    )
    if "lag" not in name.lower() or group is None:
        return None, Note(
            about,
            f"{shown}: served by a metrics adapter this file cannot see: not mapped (only "
            "a consumer-lag metric naming its group is; a prometheus trigger with the "
            "adapter's query is the equivalent of others)",
        )
    if selector.get("matchExpressions"):
        return None, Note(about, f"{shown}: matchExpressions select series: not mapped")
    if target.get("type") != "AverageValue" or "averageValue" not in target:
        return None, Note(
            about,
            f"{shown}: a {target.get('type')} target is not a lag per replica (lag_threshold "
            "is, as an AverageValue target): not mapped",
        )
    try:
        per_replica = values.quantity(target["averageValue"])
    except values.BadValueError as problem:
        return None, Note(about, f"{shown}: averageValue {problem}: not mapped")
    if per_replica != int(per_replica) or per_replica < 1:
        return None, Note(
            about, f"{shown}: averageValue {per_replica:g} is not a whole lag >= 1: not mapped"
        )
    if servers is None:
        return None, Note(
            about,
            f"{shown} looks like Kafka consumer lag: the HPA does not say which cluster: "
            "pass --kafka-bootstrap-servers HOST:PORT,... to import it as a kafka_lag trigger",
        )
    body: dict[str, Any] = {"type": "kafka_lag", "consumer_group": group}
    topic = next((str(labels[k]) for k in TOPIC_LABELS if k in labels), None)
    if topic is not None:
        body["topics"] = [topic]
    body["lag_threshold"] = int(per_replica)
    connection = KafkaConnection(bootstrap_servers=servers, security_known=False)
    return TriggerDraft(body, connection), None
