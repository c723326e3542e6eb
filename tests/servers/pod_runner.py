"""A kubelet (and scheduler) for one Deployment of Kafka consumers, on a real control plane.

The control plane (``KubeControlPlane(controller_manager=True)``) has real Deployment and
ReplicaSet controllers but no scheduler and no kubelet, so its Pods would stay Pending. The
``PodRunner`` stands in for both, for the Pods of one label selector:

* a new Pod is bound to a fake Node (``pods/binding``, as the scheduler does) and gets one
  real consumer process (``paced_consumer.py``: an aiokafka member of the group, processing
  at a fixed rate and committing);
* once that consumer has joined the group and received partitions, the Pod's status is
  patched to ``Running`` with the ``Ready`` condition (as a kubelet does when the readiness
  probe passes), so ``status.readyReplicas`` of the ReplicaSet and the Deployment is the
  controllers' own count of consumers that consume;
* a Pod marked for deletion (a scale-down) gets SIGTERM: its consumer commits, leaves the
  group and exits, and the runner then finishes the deletion with grace period 0, as a
  kubelet does once the containers are gone.

Everything is recorded with ``time.time()`` stamps: each consumer's ``assigned`` and
``revoked`` callbacks (``events``) and each change of the Deployment's ``spec.replicas``
(``replica_changes``), for rebalance and start-up times.

``cap``: the consumers' *total* throughput is capped (a downstream bottleneck): each gets
``min(rate, cap / consumers)`` msg/s, rewritten into its rate file whenever the count
changes, so that adding replicas adds no throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio import watch as k8s_watch
from kubernetes_asyncio.client.exceptions import ApiException

__all__ = ["ConsumerEvent", "ConsumerSettings", "PodRunner"]

CONSUMER = Path(__file__).resolve().parent / "paced_consumer.py"
NODE = "closed-loop-node"


@dataclass(frozen=True)
class ConsumerSettings:
    """What each pod's consumer process is started with."""

    bootstrap: str
    topic: str
    group: str
    rate: float
    """Messages/s one consumer processes (its true per-replica throughput)."""
    commit_interval: float = 5.0
    heartbeat_interval_ms: int = 3000
    session_timeout_ms: int = 10000


@dataclass(frozen=True)
class ConsumerEvent:
    t: float
    pod: str
    event: str
    """``started``, ``assigned``, ``revoked``, ``ready`` (status patched), ``stopped``,
    ``exited`` (the process ended), ``deleted`` (the Pod object is gone)."""
    partitions: tuple[int, ...] = ()


@dataclass
class _Pod:
    name: str
    process: asyncio.subprocess.Process
    rate_file: Path
    reader: asyncio.Task[None] | None = None
    ready: bool = False
    stopping: bool = False
    partitions: tuple[int, ...] = ()


@dataclass
class PodRunner:
    """Runs the Pods of ``selector`` in ``namespace`` as consumer processes (see module)."""

    kubeconfig: Path
    namespace: str
    deployment: str
    consumer: ConsumerSettings
    workdir: Path
    selector: str = ""
    cap: float | None = None
    events: list[ConsumerEvent] = field(default_factory=list)
    replica_changes: list[tuple[float, int]] = field(default_factory=list)
    """(time, spec.replicas) each time the Deployment's replica count changed (the first
    entry: its count when the runner started)."""
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.selector:
            self.selector = f"app={self.deployment}"
        self._pods: dict[str, _Pod] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._client: Any = None
        self._core: Any = None
        self._apps: Any = None
        self._lock = asyncio.Lock()
        self._terminating: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._client = await k8s_config.new_client_from_config(config_file=str(self.kubeconfig))
        self._core = k8s.CoreV1Api(self._client)
        self._apps = k8s.AppsV1Api(self._client)
        await self._ensure_node()
        self._tasks = [
            asyncio.create_task(self._watch_pods()),
            asyncio.create_task(self._watch_deployment()),
        ]

    async def stop(self) -> None:
        """Stop every consumer (no Pod is touched) and the watches."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.gather(*(self._stop_consumer(pod) for pod in list(self._pods.values())))
        if self._client is not None:
            await self._client.close()

    async def __aenter__(self) -> PodRunner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ views

    @property
    def consumers(self) -> int:
        """Consumer processes running and not stopping."""
        return sum(1 for pod in self._pods.values() if not pod.stopping)

    @property
    def ready_consumers(self) -> int:
        return sum(1 for pod in self._pods.values() if pod.ready and not pod.stopping)

    def set_cap(self, cap: float | None) -> None:
        """Cap the consumers' total throughput (None: each at its own rate)."""
        self.cap = cap
        self._write_rates()

    # ------------------------------------------------------------------ watches

    async def _ensure_node(self) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}},
        }
        try:
            await self._core.create_node(body)
        except ApiException as error:
            if error.status != 409:
                raise
        now = _rfc3339(time.time())
        status = {
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "the closed loop's pod runner",
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": now,
                    }
                ]
            }
        }
        await self._core.patch_node_status(
            NODE, status, _content_type="application/merge-patch+json"
        )

    async def _watch_pods(self) -> None:
        while True:
            try:
                listed = await self._core.list_namespaced_pod(
                    self.namespace, label_selector=self.selector
                )
                for pod in listed.items:
                    await self._reconcile(pod)
                seen = {pod.metadata.name for pod in listed.items}
                for name in [n for n in self._pods if n not in seen]:
                    await self._gone(name)
                watch = k8s_watch.Watch()
                async with watch.stream(
                    self._core.list_namespaced_pod,
                    self.namespace,
                    label_selector=self.selector,
                    resource_version=listed.metadata.resource_version,
                    timeout_seconds=120,
                ) as stream:
                    async for item in stream:
                        if item["type"] == "DELETED":
                            await self._gone(item["object"].metadata.name)
                        elif item["type"] in ("ADDED", "MODIFIED"):
                            await self._reconcile(item["object"])
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a dropped watch: list again
                self.problems.append(f"pod watch: {type(error).__name__}: {error}")
                await asyncio.sleep(0.5)

    async def _watch_deployment(self) -> None:
        last: int | None = None
        while True:
            try:
                selector = f"metadata.name={self.deployment}"
                listed = await self._apps.list_namespaced_deployment(
                    self.namespace, field_selector=selector
                )
                for deployment in listed.items:
                    last = self._replicas_seen(deployment, last)
                watch = k8s_watch.Watch()
                async with watch.stream(
                    self._apps.list_namespaced_deployment,
                    self.namespace,
                    field_selector=selector,
                    resource_version=listed.metadata.resource_version,
                    timeout_seconds=120,
                ) as stream:
                    async for item in stream:
                        if item["type"] in ("ADDED", "MODIFIED"):
                            last = self._replicas_seen(item["object"], last)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.problems.append(f"deployment watch: {type(error).__name__}: {error}")
                await asyncio.sleep(0.5)

    def _replicas_seen(self, deployment: Any, last: int | None) -> int:
        replicas = int(deployment.spec.replicas or 0)
        if replicas != last:
            self.replica_changes.append((time.time(), replicas))
        return replicas

    # ------------------------------------------------------------------ pods

    async def _reconcile(self, pod: Any) -> None:
        name = pod.metadata.name
        async with self._lock:
            known = self._pods.get(name)
            if pod.metadata.deletion_timestamp is not None:
                if known is not None and not known.stopping:
                    known.stopping = True
                    task = asyncio.create_task(self._terminate(known))
                    self._terminating.add(task)
                    task.add_done_callback(self._terminating.discard)
                elif known is None:
                    await self._finish_deletion(name)
                return
            if known is not None:
                return
            if pod.spec.node_name is None:
                await self._bind(name)
            self._pods[name] = await self._start_consumer(name)
            self._write_rates()

    async def _bind(self, name: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": NODE},
        }
        try:
            await self._core.create_namespaced_pod_binding(
                name, self.namespace, body, _preload_content=False
            )
        except ApiException as error:
            if error.status != 409:  # already bound
                raise

    async def _start_consumer(self, name: str) -> _Pod:
        rate_file = self.workdir / f"{name}.rate"
        rate_file.write_text(f"{self.consumer.rate}\n")
        settings = self.consumer
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(CONSUMER),
            "--bootstrap",
            settings.bootstrap,
            "--topic",
            settings.topic,
            "--group",
            settings.group,
            "--rate",
            str(settings.rate),
            "--rate-file",
            str(rate_file),
            "--commit-interval",
            str(settings.commit_interval),
            "--heartbeat-interval-ms",
            str(settings.heartbeat_interval_ms),
            "--session-timeout-ms",
            str(settings.session_timeout_ms),
            "--name",
            name,
            stdout=asyncio.subprocess.PIPE,
            stderr=(self.workdir / f"{name}.log").open("ab"),
            stdin=asyncio.subprocess.DEVNULL,
        )
        pod = _Pod(name, process, rate_file)
        pod.reader = asyncio.create_task(self._read(pod))
        return pod

    async def _read(self, pod: _Pod) -> None:
        assert pod.process.stdout is not None
        async for raw in pod.process.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            partitions = tuple(line.get("partitions", ()))
            event = ConsumerEvent(float(line["t"]), pod.name, str(line["event"]), partitions)
            self.events.append(event)
            if event.event == "assigned":
                pod.partitions = partitions
                if partitions and not pod.ready and not pod.stopping:
                    await self._mark_ready(pod)
        await pod.process.wait()
        self.events.append(ConsumerEvent(time.time(), pod.name, "exited"))

    async def _mark_ready(self, pod: _Pod) -> None:
        now = _rfc3339(time.time())
        conditions = [
            {"type": kind, "status": "True", "lastTransitionTime": now}
            for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ]
        status = {
            "status": {
                "phase": "Running",
                "conditions": conditions,
                "hostIP": "127.0.0.1",
                "podIP": "127.0.0.1",
                "startTime": now,
                "containerStatuses": [
                    {
                        "name": "consumer",
                        "ready": True,
                        "started": True,
                        "restartCount": 0,
                        "image": "example/consumer:1",
                        "imageID": "",
                        "state": {"running": {"startedAt": now}},
                    }
                ],
            }
        }
        try:
            await self._core.patch_namespaced_pod_status(
                pod.name, self.namespace, status, _content_type="application/merge-patch+json"
            )
        except ApiException as error:
            if error.status == 404:
                return
            self.problems.append(f"ready {pod.name}: {error.status} {error.reason}")
            return
        pod.ready = True
        self.events.append(ConsumerEvent(time.time(), pod.name, "ready", pod.partitions))

    async def _terminate(self, pod: _Pod) -> None:
        await self._stop_consumer(pod)
        self._write_rates()
        await self._finish_deletion(pod.name)

    async def _stop_consumer(self, pod: _Pod) -> None:
        pod.stopping = True
        process = pod.process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if pod.reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(pod.reader, 5)

    async def _finish_deletion(self, name: str) -> None:
        try:
            await self._core.delete_namespaced_pod(
                name, self.namespace, grace_period_seconds=0, _preload_content=False
            )
        except ApiException as error:
            if error.status != 404:
                self.problems.append(f"delete {name}: {error.status} {error.reason}")

    async def _gone(self, name: str) -> None:
        pod = self._pods.pop(name, None)
        self.events.append(ConsumerEvent(time.time(), name, "deleted"))
        if pod is not None and pod.process.returncode is None:
            await self._stop_consumer(pod)
        self._write_rates()

    def _write_rates(self) -> None:
        running = [pod for pod in self._pods.values() if not pod.stopping]
        rate = self.consumer.rate
        if self.cap is not None and running:
            rate = min(rate, self.cap / len(running))
        for pod in running:
            with contextlib.suppress(OSError):
                pod.rate_file.write_text(f"{rate}\n")


def _rfc3339(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
