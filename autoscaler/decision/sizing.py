"""How one trigger's observation (and forecast) becomes a replica recommendation.

Three sizing rules, each spelled out in one function:

* KEDA's Kafka rule: ``ceil(lag / lag_threshold)`` through the HPA tolerance band, used when
  the per-replica throughput is unknown (it is what KEDA users run today);
* capacity sizing: enough replicas to absorb the arrival rate expected a lead time ahead
  *and* drain the backlog (as it will be when new replicas are ready) within the SLO;
* a Prometheus value per replica (AverageValue) or in total (Value), as an HPA External
  metric, sized on the forecast's upper quantile when there is one.

Then the exact partition cap: the tolerance is applied to the *uncapped* recommendation and
the cap after it, so the last replica below the cap is always added (keda#2908). With
``ensure_even_distribution_of_partitions`` the count is then raised to the next divisor of
the partitions, also after the tolerance (KEDA rounds the lag, and the HPA's tolerance can
then keep 11 consumers on 12 partitions).
"""

from __future__ import annotations

import math

from autoscaler.config.model import KafkaLagTrigger, PrometheusTrigger, TargetConfig
from autoscaler.decision.hpa import (
    INT32_MAX,
    Tolerances,
    external_average_value_replicas,
    replicas_for_usage_ratio,
)
from autoscaler.decision.types import (
    Forecast,
    KafkaLagObservation,
    MetricObservation,
    Rule,
    TriggerRecommendation,
)

# Float noise such as 3.0000000000000004 must not cost a whole replica.
_CEIL_SLACK = 1e-9


def _ceil_replicas(value: float) -> int:
    if value >= INT32_MAX:
        return INT32_MAX
    return max(0, math.ceil(value - _CEIL_SLACK))


def size_kafka_lag(
    name: str,
    trigger: KafkaLagTrigger,
    observation: KafkaLagObservation,
    forecast: Forecast | None,
    current_replicas: int,
    ready_replicas: int,
    target: TargetConfig,
    tolerances: Tolerances,
    learned_throughput: float | None = None,
) -> TriggerRecommendation:
    """Size a consumer group from its lag, arrival rate and (optional) forecast; capacity
    sizing takes the configured per-replica throughput, else the learned one."""
    lag = observation.total_lag
    if trigger.exclude_persistent_lag:
        lag = max(0, lag - observation.persistent_lag)
    active = kafka_lag_active(trigger, observation, forecast, target.poll_interval_seconds)
    throughput = trigger.per_replica_throughput or learned_throughput
    rate_now = observation.arrival_rate
    if rate_now is None and forecast is not None:
        rate_now = forecast.point
    if throughput is not None and rate_now is not None:
        rate_ahead = rate_now if forecast is None else max(rate_now, forecast.for_sizing)
        # The backlog keeps growing (or draining) at the current capacity until replicas
        # requested now are ready; size for draining *that* backlog within the SLO.
        capacity_now = ready_replicas * throughput
        backlog_at_ready = max(0.0, lag + (rate_now - capacity_now) * target.startup_seconds)
        drain_rate = backlog_at_ready / target.slo.max_lag_seconds
        utilization = target.slo.target_utilization
        needed = (rate_ahead / utilization + drain_rate) / throughput
        usage_ratio = needed / current_replicas if current_replicas else math.inf
        at = "" if utilization == 1 else f" / {utilization:g} utilization"
        detail = (
            f"({rate_ahead:.4g} msg/s ahead{at} + {backlog_at_ready:.0f} backlog at ready "
            f"/ {target.slo.max_lag_seconds:g}s SLO) / {throughput:.4g} msg/s per replica "
            f"({'configured' if trigger.per_replica_throughput else 'learned'}) = {needed:.3f}"
        )
        if current_replicas and tolerances.is_within(usage_ratio):
            replicas, rule = current_replicas, Rule.WITHIN_TOLERANCE
            detail += f"; ratio {usage_ratio:.3f} within tolerance"
        else:
            replicas, rule = _ceil_replicas(needed), Rule.CAPACITY
    else:
        replicas, usage_ratio = external_average_value_replicas(
            lag, trigger.lag_threshold, current_replicas, tolerances
        )
        replicas = max(0, replicas)
        detail = f"lag {lag} / lag_threshold {trigger.lag_threshold}"
        rule = Rule.KAFKA_LAG
        if current_replicas and tolerances.is_within(usage_ratio):
            rule = Rule.WITHIN_TOLERANCE
            detail += f"; ratio {usage_ratio:.3f} within tolerance"
        if throughput is None:
            detail += "; per-replica throughput unknown"
        elif rate_now is None:
            detail += "; arrival rate unknown yet"
    even = trigger.ensure_even_distribution_of_partitions
    cap = partition_cap(trigger, observation)
    if even and cap is None:
        # KEDA caps an even share at the partitions even with allowIdleConsumers (the
        # target stays uncapped for the other triggers).
        cap = max(observation.partition_count, 1)
    if cap is not None and replicas > cap:
        detail += f"; capped at {cap} partitions (was {replicas})"
        replicas, rule = cap, Rule.PARTITION_CAP
    if even:
        shared = even_share(replicas, observation.partition_count)
        if shared != replicas:
            detail += (
                f"; raised to {shared} for an even share of {observation.partition_count} "
                f"partitions (was {replicas})"
            )
            replicas, rule = shared, Rule.EVEN_DISTRIBUTION
    return TriggerRecommendation(
        trigger=name,
        replicas=replicas,
        rule=rule,
        active=active,
        detail=detail,
        usage_ratio=None if math.isinf(usage_ratio) else usage_ratio,
        forecast=forecast,
    )


def kafka_lag_active(
    trigger: KafkaLagTrigger,
    observation: KafkaLagObservation,
    forecast: Forecast | None,
    poll_interval_seconds: float,
) -> bool:
    """Above the activation threshold (KEDA's ``activationLagThreshold``): the lag, the
    messages arriving within a poll, or those the forecast expects within its lead time;
    whether the trigger is sized or planned."""
    threshold = trigger.activation_lag_threshold
    return (
        observation.total_lag > threshold
        or _expected_arrivals_exceed(observation.arrival_rate, poll_interval_seconds, threshold)
        or (
            forecast is not None
            and _expected_arrivals_exceed(forecast.point, forecast.horizon_seconds, threshold)
        )
    )


def partition_cap(trigger: KafkaLagTrigger, observation: KafkaLagObservation) -> int | None:
    """The most replicas this trigger lets the target run, or None when uncapped."""
    if trigger.allow_idle_consumers:
        return None
    cap = observation.partition_count
    if trigger.limit_to_partitions_with_lag and observation.partitions_with_lag is not None:
        cap = observation.partitions_with_lag
    return max(cap, 1)


def even_share(replicas: int, partitions: int) -> int:
    """The next divisor of ``partitions`` from ``replicas`` up, so that every consumer gets
    as many partitions; ``partitions`` itself for more (KEDA's
    ``getNextFactorThatBalancesConsumersToTopicPartitions``). 0 stays 0 (KEDA says 1, which
    the active minimum of 1 gives here too)."""
    if replicas <= 0 or partitions <= 0:
        return max(replicas, 0)
    if replicas >= partitions:
        return partitions
    divisors = (
        d
        for i in range(1, math.isqrt(partitions) + 1)
        if partitions % i == 0
        for d in (i, partitions // i)
    )
    return min(d for d in divisors if d >= replicas)


def size_prometheus(
    name: str,
    trigger: PrometheusTrigger,
    observation: MetricObservation,
    forecast: Forecast | None,
    current_replicas: int,
    ready_replicas: int,
    tolerances: Tolerances,
) -> TriggerRecommendation:
    """Size from a query value, as an HPA External metric (AverageValue or Value)."""
    value = observation.value
    sizing_value = value if forecast is None else max(value, forecast.for_sizing)
    active = value > trigger.activation_threshold or (
        forecast is not None and forecast.point > trigger.activation_threshold
    )
    if trigger.metric_type == "AverageValue":
        replicas, usage_ratio = external_average_value_replicas(
            sizing_value, trigger.target_value, current_replicas, tolerances
        )
        detail = f"{sizing_value:.4g} / target {trigger.target_value:g} per replica"
    else:
        usage_ratio = sizing_value / trigger.target_value
        replicas = replicas_for_usage_ratio(
            current_replicas, usage_ratio, ready_replicas, tolerances
        )
        detail = f"{sizing_value:.4g} / target {trigger.target_value:g} x {ready_replicas} ready"
    replicas = max(0, replicas)
    rule = Rule.METRIC_VALUE
    if current_replicas and tolerances.is_within(usage_ratio):
        rule = Rule.WITHIN_TOLERANCE
        detail += f"; ratio {usage_ratio:.3f} within tolerance"
    finite_ratio = usage_ratio if math.isfinite(usage_ratio) else None
    return TriggerRecommendation(
        trigger=name,
        replicas=replicas,
        rule=rule,
        active=active,
        detail=detail,
        usage_ratio=finite_ratio,
        forecast=forecast,
    )


def _expected_arrivals_exceed(rate: float | None, seconds: float, threshold: int) -> bool:
    """More than ``threshold`` messages (and at least one) expected within ``seconds``."""
    if rate is None:
        return False
    arrivals = rate * seconds
    return arrivals >= 1 and arrivals > threshold
