"""Who else scales this workload: an HPA or a KEDA ScaledObject on the same target.

Two autoscalers on one workload fight: each patches its own count, the replicas flap and
neither one's policies hold (the HPA controller and KEDA's admission webhook each refuse a
second owner for the same reason). Before patching, the controller asks this checker;
when an ``autoscaling/v2`` HorizontalPodAutoscaler or a ``keda.sh/v1alpha1`` ScaledObject
names the same workload in its ``scaleTargetRef``, the target is never patched, whatever
its decision, until the other owner is gone.

The answer is cached per namespace for ``refresh_seconds`` (two list calls per namespace
every 30 s, however many targets live there, and those that ask at the same moment share
the calls under way). A namespace without KEDA's CRD answers the
ScaledObject list with 404: no ScaledObjects. Any other failure (403, 5xx, a timeout) is an
``ActuatorError``: the caller cannot know, so it does not patch either.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client as k8s

from autoscaler.config.model import TargetConfig
from autoscaler.live.actuator import TargetMissing, call_api

__all__ = ["KEDA_GROUP", "KEDA_VERSION", "Conflict", "ConflictChecker"]

KEDA_GROUP = "keda.sh"
KEDA_VERSION = "v1alpha1"
_APPS_VERSIONS = ("apps/v1", "")


@dataclass(frozen=True)
class Conflict:
    """Another object that scales the same workload."""

    kind: str
    """``HorizontalPodAutoscaler`` or ``ScaledObject``."""
    namespace: str
    name: str
    external_scaler: bool = False
    """A ScaledObject whose triggers are ``external``/``external-push`` (this service as
    KEDA's external scaler, presumably): KEDA actuates our decisions, so no fight, but still
    never a patch of ours."""

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class _Owner:
    conflict: Conflict
    target_kind: str
    target_name: str


@dataclass(frozen=True)
class _Namespace:
    at: float
    owners: tuple[_Owner, ...]


class ConflictChecker:
    """Lists the HPAs and ScaledObjects of a target's namespace (cached) and says whether
    one of them scales the target's workload."""

    def __init__(
        self,
        api_client: Any,
        *,
        request_timeout_seconds: float = 10.0,
        refresh_seconds: float = 30.0,
    ) -> None:
        self._autoscaling = k8s.AutoscalingV2Api(api_client)
        self._custom = k8s.CustomObjectsApi(api_client)
        self._timeout = request_timeout_seconds
        self._refresh = refresh_seconds
        self._namespaces: dict[str, _Namespace] = {}
        self._listing: dict[str, asyncio.Task[tuple[_Owner, ...]]] = {}
        """Per namespace, the lists under way: the targets of a namespace that poll at the
        same moment (hundreds, at the start and after each refresh) share one pair of list
        calls instead of each making its own."""

    async def find(self, target: TargetConfig, now: float) -> Conflict | None:
        """The first other owner of the target's workload (a ScaledObject before the HPA
        KEDA made for it), or None. Raises ``ActuatorError`` when the lists fail."""
        namespace = target.namespace
        cached = self._namespaces.get(namespace)
        if cached is None or now - cached.at >= self._refresh:
            listing = self._listing.get(namespace)
            if listing is None:
                listing = asyncio.ensure_future(self._owners(namespace))
                self._listing[namespace] = listing
                listing.add_done_callback(lambda _: self._listing.pop(namespace, None))
            owners = await asyncio.shield(listing)
            cached = self._namespaces.get(namespace)
            if cached is None or now - cached.at >= self._refresh:
                cached = _Namespace(now, owners)
                self._namespaces[namespace] = cached
        ref = target.scale_target_ref
        for owner in cached.owners:
            if (owner.target_kind, owner.target_name) == (ref.kind, ref.name):
                return owner.conflict
        return None

    async def _owners(self, namespace: str) -> tuple[_Owner, ...]:
        owners = [*await self._scaled_objects(namespace), *await self._hpas(namespace)]
        return tuple(owners)

    async def _hpas(self, namespace: str) -> list[_Owner]:
        answer = await call_api(
            "list",
            "horizontalpodautoscalers.autoscaling",
            namespace,
            self._autoscaling.list_namespaced_horizontal_pod_autoscaler,
            namespace,
            timeout=self._timeout,
        )
        owners = []
        for hpa in answer.items or []:
            ref = hpa.spec.scale_target_ref if hpa.spec else None
            if ref is None or (ref.api_version or "") not in _APPS_VERSIONS:
                continue
            conflict = Conflict("HorizontalPodAutoscaler", namespace, str(hpa.metadata.name))
            owners.append(_Owner(conflict, str(ref.kind), str(ref.name)))
        return owners

    async def _scaled_objects(self, namespace: str) -> list[_Owner]:
        try:
            answer = await call_api(
                "list",
                f"scaledobjects.{KEDA_GROUP}",
                namespace,
                self._custom.list_namespaced_custom_object,
                KEDA_GROUP,
                KEDA_VERSION,
                namespace,
                "scaledobjects",
                timeout=self._timeout,
            )
        except TargetMissing:
            return []  # KEDA is not installed: its resource does not exist
        owners = []
        for item in answer.get("items", []) if isinstance(answer, dict) else []:
            spec = item.get("spec") or {}
            ref = spec.get("scaleTargetRef") or {}
            if (ref.get("apiVersion") or "") not in _APPS_VERSIONS or not ref.get("name"):
                continue
            name = str((item.get("metadata") or {}).get("name", ""))
            triggers = [t for t in spec.get("triggers") or [] if isinstance(t, dict)]
            external = bool(triggers) and all(
                t.get("type") in ("external", "external-push") for t in triggers
            )
            conflict = Conflict("ScaledObject", namespace, name, external)
            owners.append(_Owner(conflict, str(ref.get("kind") or "Deployment"), ref["name"]))
        return owners
