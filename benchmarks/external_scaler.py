"""KEDA's external scaler, end to end in real time: does the HPA KEDA builds land on this
service's own decision at every poll of a 10-minute rising-then-falling load?

Run from the repository root (needs the tansu broker of the dev extra)::

    python benchmarks/external_scaler.py [--minutes 10] [--poll 15]

Protocol
--------
* The live service (``autoscaler run`` in-process) with ``server.external_scaler`` on, one
  target (8 partitions, lag threshold 50, ``predictor: none``), fed by a tansu broker; the
  workload lives on the project's small Kubernetes API fake (KEDA actuates, so the service
  only reads it).
* A client follows KEDA's call sequence (``pkg/scalers/external_scaler.go``):
  ``GetMetricSpec`` once, then every ``--poll`` seconds ``GetMetrics`` and ``IsActive``; an
  emulated HPA turns the metric into replicas with the HPA's arithmetic (``ceil(metric /
  target)`` outside the 0.1 tolerance, ``external_average_value_replicas``) and writes them
  to the workload, as KEDA's HPA does.
* The load: the lag per partition rises from 0 to 60 over the first half and falls back to
  0 over the second (produced and committed on the broker).
* Figure: polls at which the HPA's count equals the service's decision, of all polls; and
  whether ``IsActive`` equalled "the decision wants a replica" at each.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import grpc  # noqa: E402
import kubernetes_asyncio.client as k8s  # noqa: E402
import structlog  # noqa: E402
from servers.kafka_broker import TansuBroker  # noqa: E402
from servers.kafka_data import KafkaData  # noqa: E402
from servers.kube_api import KubeApiServer  # noqa: E402
from servers.process import free_port  # noqa: E402

from autoscaler.config import parse_config  # noqa: E402
from autoscaler.decision.hpa import Tolerances, external_average_value_replicas  # noqa: E402
from autoscaler.live import service  # noqa: E402
from autoscaler.live.actuator import ScaleActuator  # noqa: E402
from autoscaler.live.external_scaler import METRIC_NAME, SERVICE, messages  # noqa: E402

PARTITIONS = 8
RESULTS = ROOT / "benchmarks" / "results"


def _unary(channel: grpc.aio.Channel, method: str, response: Any) -> Any:
    return channel.unary_unary(
        f"/{SERVICE}/{method}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response.FromString,
    )


async def scenario(minutes: float, poll: float) -> str:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with TansuBroker() as broker:
        kafka = KafkaData(broker.bootstrap_server)
        async with KubeApiServer() as api:
            workload = api.add_workload("Deployment", "shop", "orders-consumer", replicas=1)
            api.add_scaled_object("shop", "orders-keda", "orders-consumer")
            api.scaled_objects[-1]["spec"]["triggers"] = [{"type": "external"}]
            await kafka.create_topic("orders", PARTITIONS)
            await kafka.commit("orders", "orders", dict.fromkeys(range(PARTITIONS), 0))
            port = free_port()
            config = parse_config(
                {
                    "poll_interval_seconds": poll,
                    "dry_run": False,
                    "leader_election": {"enabled": False},
                    "server": {
                        "health_port": free_port(),
                        "metrics_port": free_port(),
                        "external_scaler": {"enabled": True, "port": port},
                    },
                    "kafka_clusters": {"main": {"bootstrap_servers": [broker.bootstrap_server]}},
                    "targets": [
                        {
                            "name": "orders",
                            "namespace": "shop",
                            "scale_target_ref": {"name": "orders-consumer"},
                            "max_replicas": 8,
                            "predictor": {"model": "none"},
                            "triggers": [
                                {
                                    "type": "kafka_lag",
                                    "cluster": "main",
                                    "consumer_group": "orders",
                                    "topics": ["orders"],
                                    "lag_threshold": 50,
                                }
                            ],
                        }
                    ],
                }
            )
            client = k8s.ApiClient(k8s.Configuration(host=api.url))
            actuator = ScaleActuator(client, request_timeout_seconds=5, owns_client=True)
            stop = asyncio.Event()
            built: list[service.Service] = []
            task = asyncio.create_task(
                service.run(config, stop, actuator=actuator, on_built=built.append)
            )
            rows = []
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                    while not built:
                        await asyncio.sleep(0.1)
                    svc = built[0]
                    ref = messages.ScaledObjectRef(
                        name="orders-keda", namespace="shop", scalerMetadata={"target": "orders"}
                    )
                    spec = await _unary(channel, "GetMetricSpec", messages.GetMetricSpecResponse)(
                        ref
                    )
                    target_size = spec.metricSpecs[0].targetSizeFloat
                    get_metrics = _unary(channel, "GetMetrics", messages.GetMetricsResponse)
                    is_active = _unary(channel, "IsActive", messages.IsActiveResponse)
                    produced = [0] * PARTITIONS
                    committed = [0] * PARTITIONS
                    started = time.monotonic()
                    polls = round(minutes * 60 / poll)
                    for k in range(polls):
                        half = polls / 2
                        lag = round(60 * (k / half if k < half else (polls - k) / half))
                        for p in range(PARTITIONS):
                            want = committed[p] + lag
                            if want > produced[p]:
                                counts = [0] * PARTITIONS
                                counts[p] = want - produced[p]
                                await kafka.produce("orders", counts)
                                produced[p] = want
                            elif want < produced[p]:
                                committed[p] = produced[p] - lag
                        await kafka.commit("orders", "orders", dict(enumerate(committed)))
                        await svc.wait_polled()
                        decision = svc.answers()["orders"].decision
                        request = messages.GetMetricsRequest(
                            scaledObjectRef=ref, metricName=METRIC_NAME
                        )
                        value = (await get_metrics(request)).metricValues[0].metricValueFloat
                        active = (await is_active(ref)).result
                        assert decision is not None
                        hpa, _ = external_average_value_replicas(
                            value, target_size, workload.replicas, Tolerances()
                        )
                        rows.append(
                            (k, lag, workload.replicas, decision.desired_replicas, hpa, active)
                        )
                        workload.replicas = hpa
                    wall = time.monotonic() - started
            finally:
                stop.set()
                await asyncio.wait_for(task, 15)
                await kafka.close()
    matches = sum(1 for _, _, _, desired, hpa, _ in rows if desired == hpa)
    activity = sum(1 for _, _, _, desired, _, active in rows if active == (desired > 0))
    peak = max(desired for _, _, _, desired, _, _ in rows)
    lines = [
        f"KEDA external scaler, {minutes:g} min in real time, a poll every {poll:g} s "
        f"({len(rows)} polls, {wall:.0f} s), lag per partition 0 -> 60 -> 0 on "
        f"{PARTITIONS} partitions",
        f"HPA count == the service's decision: {matches} of {len(rows)} polls",
        f"IsActive == (decision wants a replica): {activity} of {len(rows)} polls",
        f"replicas reached {peak}; patches by the service itself: {len(api.patches())}",
        "poll  lag/partition  current  decision  hpa  active",
    ]
    lines += [
        f"{k:4d}  {lag:13d}  {current:7d}  {desired:8d}  {hpa:3d}  {active}"
        for k, lag, current, desired, hpa, active in rows
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--poll", type=float, default=15.0)
    args = parser.parse_args()
    text = asyncio.run(scenario(args.minutes, args.poll))
    print(text, end="")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "external_scaler.txt").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
