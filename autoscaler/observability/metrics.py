"""The service's own Prometheus metrics, and live forecast accuracy.

KEDA exports what its scalers saw (``keda_scaler_metrics_value``) and how often they failed
(``keda_scaler_errors_total``); we export the same per target and trigger, plus what only a
predictive autoscaler has: the forecast it sized for and how good its past forecasts were.

Every ``ServiceMetrics`` owns its ``CollectorRegistry``: tests and several instances in one
process never collide, and nothing registers on the global default registry by import.

``ForecastAccuracy`` is pure (no clock, no I/O): the caller passes every timestamp in.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from autoscaler.decision.types import (
    Decision,
    Forecast,
    KafkaLagObservation,
    MetricObservation,
    Observation,
    Unavailable,
)
from predictors.metrics import pinball_losses

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_ACCURACY_WINDOW",
    "ForecastAccuracy",
    "ServiceMetrics",
    "pinball_loss",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format, as ``render`` produces it."""

DEFAULT_ACCURACY_WINDOW = 288
"""Matched forecasts kept per trigger: a day of 5-minute polls, or 2.4 h of 30 s polls."""

_NAMESPACE = "autoscaler"
# Loop durations span a fast poll (tens of ms) to a slow broker or API server (tens of s).
_LOOP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def pinball_loss(actual: float, predicted: float, quantile: float) -> float:
    """The quantile (pinball) loss of ``predicted`` as the ``quantile``-th quantile.

    Under-forecasts cost ``quantile`` per unit, over-forecasts ``1 - quantile``: at 0.9 a
    forecast that was too low costs nine times one that was as much too high. One point of
    ``predictors.metrics.pinball_losses``, the project's one scorer.
    """
    return float(pinball_losses(actual, predicted, quantile))


@dataclass(slots=True)
class _Pending:
    due: float
    point: float
    upper: float | None
    best: tuple[float, float] | None = None
    """(distance from ``due``, actual) of the closest actual seen so far."""


class ForecastAccuracy:
    """Scores past forecasts of one trigger against what then arrived, over a sliding window.

    A forecast made at ``t`` is for ``t + horizon_seconds``; it is matched with the actual
    observed closest to that time, if one lies within ``tolerance_seconds`` (by default half
    a poll interval). Forecasts with no actual close enough are dropped, never scored.
    Actuals are expected in time order, as a poll loop produces them.

    Exposes over the last ``window`` matched forecasts:

    * ``mae``: mean absolute error of the point forecast;
    * ``pinball``: mean pinball loss of the upper quantile (the point when there is none)
      at ``quantile``: the loss the quantile forecast is trained to minimise;
    * ``coverage``: the share of actuals at or below the upper quantile; a calibrated
      forecast covers about ``quantile``;
    * ``count``: how many forecasts are in the window.

    Each forecast is scored as ``predictors.metrics`` scores (``pinball_losses``; the MAE's
    absolute error and coverage's ``actual <= upper`` are its ``mae`` and ``coverage`` per
    point); what is here is the sliding window, kept as running totals.

    Args:
        horizon_seconds: how far ahead every forecast is.
        quantile: the quantile the ``upper`` forecast stands for, in (0, 1).
        window: how many matched forecasts to keep.
        poll_interval_seconds: the poll interval; the match tolerance is half of it.
        tolerance_seconds: overrides the tolerance derived from the poll interval.
    """

    def __init__(
        self,
        horizon_seconds: float,
        quantile: float,
        window: int = DEFAULT_ACCURACY_WINDOW,
        *,
        poll_interval_seconds: float = 30.0,
        tolerance_seconds: float | None = None,
    ) -> None:
        if not horizon_seconds >= 0:
            raise ValueError("horizon_seconds must be >= 0")
        if not 0.0 < quantile < 1.0:
            raise ValueError("quantile must be between 0 and 1 (exclusive)")
        if window < 1:
            raise ValueError("window must be >= 1")
        tolerance = poll_interval_seconds / 2 if tolerance_seconds is None else tolerance_seconds
        if not tolerance >= 0:
            raise ValueError("tolerance must be >= 0")
        self.horizon_seconds = float(horizon_seconds)
        self.quantile = float(quantile)
        self.window = window
        self.tolerance_seconds = float(tolerance)
        # Waiting forecasts, each with the closest actual seen so far.
        self._pending: deque[_Pending] = deque()
        # The window of scores, in arrays allocated once (a service keeps one per trigger:
        # a ring of floats costs a fraction of a deque of objects, and does not grow).
        self._abs_errors = np.zeros(window)
        self._pinballs = np.zeros(window)
        self._hits = np.zeros(window, dtype=np.bool_)
        self._count = 0
        self._next = 0
        # Running totals over the window (exported every poll for every trigger: summing
        # the window each time cost more than the forecast itself with hundreds of
        # targets); recomputed exactly every ``window`` scores so rounding cannot drift.
        self._sum_abs = 0.0
        self._sum_pinball = 0.0
        self._covered = 0
        self._since_exact = 0
        # Bounds memory when actuals stop arriving (a source outage): forecasts pile up.
        self._max_pending = max(window, 16) * 4

    # ------------------------------------------------------------------ input

    def record_forecast(self, at: float, point: float, upper: float | None = None) -> None:
        """A forecast made at ``at`` for ``at + horizon_seconds``. Non-finite ones are ignored."""
        if not (math.isfinite(at) and math.isfinite(point)):
            return
        if upper is not None and not math.isfinite(upper):
            upper = None
        self._pending.append(_Pending(at + self.horizon_seconds, float(point), upper))
        while len(self._pending) > self._max_pending:
            self._pending.popleft()

    def record_actual(self, at: float, value: float) -> int:
        """What was observed at ``at``; returns how many forecasts it settled (scored)."""
        if not (math.isfinite(at) and math.isfinite(value)):
            return 0
        for pending in self._pending:
            if pending.due - self.tolerance_seconds > at:
                continue
            distance = abs(at - pending.due)
            if distance <= self.tolerance_seconds and (
                pending.best is None or distance < pending.best[0]
            ):
                pending.best = (distance, float(value))
        return self._settle(at)

    def _settle(self, now: float) -> int:
        """Score every forecast whose closest actual can no longer change.

        Actuals come in time order, so once one at or past ``due`` has been seen, any later
        one is farther from ``due``: the best so far is final.
        """
        scored = 0
        kept: deque[_Pending] = deque()
        for pending in self._pending:
            if now < pending.due:
                kept.append(pending)
                continue
            if pending.best is None:
                continue  # nothing observed close enough to its due time: unmatched
            self._score(pending, pending.best[1])
            scored += 1
        self._pending = kept
        return scored

    def _score(self, pending: _Pending, actual: float) -> None:
        quantile_forecast = pending.point if pending.upper is None else pending.upper
        abs_error = abs(actual - pending.point)
        pinball = pinball_loss(actual, quantile_forecast, self.quantile)
        covered = actual <= quantile_forecast
        slot = self._next
        if self._count == self.window:  # the oldest score leaves the window
            self._sum_abs -= float(self._abs_errors[slot])
            self._sum_pinball -= float(self._pinballs[slot])
            self._covered -= bool(self._hits[slot])
        else:
            self._count += 1
        self._abs_errors[slot], self._pinballs[slot], self._hits[slot] = abs_error, pinball, covered
        self._next = (slot + 1) % self.window
        self._sum_abs += abs_error
        self._sum_pinball += pinball
        self._covered += covered
        self._since_exact += 1
        if self._since_exact >= self.window:
            self._sum_abs = math.fsum(self._abs_errors[: self._count].tolist())
            self._sum_pinball = math.fsum(self._pinballs[: self._count].tolist())
            self._since_exact = 0

    # ------------------------------------------------------------------ output

    @property
    def count(self) -> int:
        return self._count

    @property
    def pending(self) -> int:
        """Forecasts waiting for their due time."""
        return len(self._pending)

    @property
    def mae(self) -> float | None:
        if not self._count:
            return None
        return max(0.0, self._sum_abs) / self._count

    @property
    def pinball(self) -> float | None:
        if not self._count:
            return None
        return max(0.0, self._sum_pinball) / self._count

    @property
    def coverage(self) -> float | None:
        if not self._count:
            return None
        return self._covered / self._count

    def summary(self) -> dict[str, float | int | None]:
        """For ``/status``: the scores, None while nothing has been matched."""
        return {
            "count": self.count,
            "mae": self.mae,
            "pinball": self.pinball,
            "coverage": self.coverage,
            "quantile": self.quantile,
            "horizon_seconds": self.horizon_seconds,
        }


class ServiceMetrics:
    """Every metric the service exports, in its own registry.

    Series are labelled by ``target`` (and ``trigger``, ``reason`` or ``kind``); ``forget``
    removes a target's series when a config reload drops it, so dashboards do not show a
    removed target frozen at its last value.
    """

    def __init__(self, *, accuracy_window: int = DEFAULT_ACCURACY_WINDOW) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.accuracy_window = accuracy_window
        self._accuracy: dict[tuple[str, str], ForecastAccuracy] = {}
        r = self.registry
        ns = _NAMESPACE
        target = ["target"]
        trigger = ["target", "trigger"]

        self.current_replicas = Gauge(
            "current_replicas",
            "spec.replicas of the scale target when polled.",
            target,
            namespace=ns,
            registry=r,
        )
        self.desired_replicas = Gauge(
            "desired_replicas",
            "Replicas the decision core chose.",
            target,
            namespace=ns,
            registry=r,
        )
        self.forecast_point = Gauge(
            "forecast_point",
            "Forecast load (messages/s or metric value) one horizon ahead.",
            trigger,
            namespace=ns,
            registry=r,
        )
        self.forecast_upper = Gauge(
            "forecast_upper",
            "Upper-quantile forecast load one horizon ahead.",
            trigger,
            namespace=ns,
            registry=r,
        )
        self.observed_lag = Gauge(
            "observed_lag_messages",
            "Total consumer-group lag at the last poll.",
            trigger,
            namespace=ns,
            registry=r,
        )
        self.arrival_rate = Gauge(
            "arrival_rate_messages_per_second",
            "Messages/s produced to the trigger's topics since the previous poll.",
            trigger,
            namespace=ns,
            registry=r,
        )
        self.processing_rate = Gauge(
            "processing_rate_messages_per_second",
            "Messages/s consumed by the group since the previous poll.",
            trigger,
            namespace=ns,
            registry=r,
        )
        self.observed_value = Gauge(
            "observed_metric_value",
            "Value of a Prometheus trigger's query at the last poll.",
            trigger,
            namespace=ns,
            registry=r,
        )
        self.decisions = Counter(
            "decisions",
            "Decisions, by the rule that best explains them.",
            ["target", "reason"],
            namespace=ns,
            registry=r,
        )
        self.source_errors = Counter(
            "source_errors",
            "Polls of a trigger's source that produced no usable value.",
            trigger,
            namespace=ns,
            registry=r,
        )
        self.patch_errors = Counter(
            "patch_errors",
            "Failed reads or writes of the scale subresource, by kind of failure.",
            ["target", "kind"],
            namespace=ns,
            registry=r,
        )
        self.loop_duration = Histogram(
            "loop_duration_seconds",
            "Time one poll-decide-actuate iteration took.",
            target,
            namespace=ns,
            registry=r,
            buckets=_LOOP_BUCKETS,
        )
        self.target_conflict = Gauge(
            "target_conflict",
            "1 while an HPA or a KEDA ScaledObject also scales the target's workload (it is "
            "then never patched).",
            target,
            namespace=ns,
            registry=r,
        )
        self.leader = Gauge(
            "leader",
            "1 while this instance holds the leader lease (and may patch replicas).",
            namespace=ns,
            registry=r,
        )
        self.shards = Gauge(
            "shards",
            "The shard count this replica runs with (server.sharding.shards; 0 unsharded).",
            namespace=ns,
            registry=r,
        )
        self.shards_held = Gauge(
            "shards_held",
            "Shard Leases this replica holds and drives (server.sharding.shards > 1).",
            namespace=ns,
            registry=r,
        )
        self.shard_targets = Gauge(
            "shard_targets",
            "Targets running in this replica, per shard it holds.",
            ["shard"],
            namespace=ns,
            registry=r,
        )
        self.config_reloads = Counter(
            "config_reloads",
            "Config file changes seen, by result (applied, or rejected: the old config runs).",
            ["result"],
            namespace=ns,
            registry=r,
        )
        self.config_last_reload_successful = Gauge(
            "config_last_reload_successful",
            "1 when the last config change was applied (or none was seen), 0 when rejected.",
            namespace=ns,
            registry=r,
        )
        self.config_last_reload_successful.set(1)
        self.forecast_mae = Gauge(
            "forecast_mae",
            "Mean absolute error of recent point forecasts against actuals.",
            trigger,
            namespace=ns,
            registry=r,
        )
        self.forecast_pinball = Gauge(
            "forecast_pinball_loss",
            "Mean pinball loss of recent upper-quantile forecasts, at the target's quantile.",
            trigger,
            namespace=ns,
            registry=r,
        )
        self.forecast_coverage = Gauge(
            "forecast_coverage_ratio",
            "Share of recent actuals at or below the upper-quantile forecast.",
            trigger,
            namespace=ns,
            registry=r,
        )
        self.forecast_matched = Gauge(
            "forecast_accuracy_samples",
            "Matched forecasts in the accuracy window.",
            trigger,
            namespace=ns,
            registry=r,
        )
        self.slo_budget_quantile = Gauge(
            "slo_budget_quantile",
            "The forecast quantile in force under the target's SLO budget (adapted online).",
            target,
            namespace=ns,
            registry=r,
        )
        self.slo_budget_ratio = Gauge(
            "slo_budget_ratio",
            "The SLO budget: the share of time the lag may exceed the SLO.",
            target,
            namespace=ns,
            registry=r,
        )
        self.slo_violation_ratio = Gauge(
            "slo_violation_ratio",
            "The share of recent polls (about a day) whose lag exceeded the SLO.",
            target,
            namespace=ns,
            registry=r,
        )
        self.slo_budget_at_limit = Gauge(
            "slo_budget_at_limit",
            "1 when the quantile is at its top and the violations still exceed the budget.",
            target,
            namespace=ns,
            registry=r,
        )
        self.planned = Gauge(
            "planned",
            "1 while the trigger's decisions are planned over its forecast path, 0 while it "
            "is sized per poll for want of a plan (the planner on).",
            trigger,
            namespace=ns,
            registry=r,
        )
        self.planner_fallbacks = Counter(
            "planner_fallbacks",
            "Polls sized per poll although the planner is on, by why no plan was made.",
            [*trigger, "reason"],
            namespace=ns,
            registry=r,
        )
        self.startup_seconds = Gauge(
            "startup_seconds",
            "A target's start-up (scale-up patch to its replicas consuming): configured, "
            "measured (the p90 of its last scale-ups), and in_force (what decisions use).",
            [*target, "source"],
            namespace=ns,
            registry=r,
        )
        self.scaling_ineffective = Gauge(
            "scaling_ineffective",
            "1 while scale-ups are stopped because the last ones did not raise the "
            "group's processing rate (scaling_effectiveness), else 0.",
            target,
            namespace=ns,
            registry=r,
        )
        self._budget_gauges = [
            self.slo_budget_quantile,
            self.slo_budget_ratio,
            self.slo_violation_ratio,
            self.slo_budget_at_limit,
        ]
        self._by_target = [
            self.slo_budget_quantile,
            self.slo_budget_ratio,
            self.slo_violation_ratio,
            self.slo_budget_at_limit,
            self.current_replicas,
            self.desired_replicas,
            self.forecast_point,
            self.forecast_upper,
            self.observed_lag,
            self.arrival_rate,
            self.processing_rate,
            self.observed_value,
            self.decisions,
            self.source_errors,
            self.patch_errors,
            self.loop_duration,
            self.forecast_mae,
            self.forecast_pinball,
            self.forecast_coverage,
            self.forecast_matched,
            self.target_conflict,
            self.planned,
            self.planner_fallbacks,
            self.startup_seconds,
            self.scaling_ineffective,
        ]

    # ------------------------------------------------------------------ updates

    def observe_decision(self, target: str, decision: Decision) -> None:
        """Replica gauges and the reason counter, once per decision."""
        self.current_replicas.labels(target).set(decision.current_replicas)
        self.desired_replicas.labels(target).set(decision.desired_replicas)
        self.decisions.labels(target, str(decision.reason)).inc()
        for rec in decision.triggers:
            if rec.plan is not None:
                self.planned.labels(target, rec.trigger).set(1)
            elif rec.plan_fallback is not None:
                self.planned.labels(target, rec.trigger).set(0)
                kind = rec.plan_fallback.split(":", 1)[0]
                self.planner_fallbacks.labels(target, rec.trigger, kind).inc()

    def observe_startup(self, target: str, seconds: Mapping[str, float | None]) -> None:
        """The start-up by source (``configured``, ``measured``, ``in_force``); a source
        without a value has no series."""
        for source, value in seconds.items():
            if value is None:
                with contextlib.suppress(KeyError):
                    self.startup_seconds.remove(target, source)
            else:
                self.startup_seconds.labels(target, source).set(value)

    def set_scaling_ineffective(self, target: str, stopped: bool) -> None:
        self.scaling_ineffective.labels(target).set(1 if stopped else 0)

    def observe_budget(self, target: str, report: Mapping[str, float | int | bool]) -> None:
        """The SLO budget's quantile in force and realized violations (``budget_report``);
        a target without a budget (any more, after a reload) has none of these series."""
        if not report:
            for gauge in self._budget_gauges:
                with contextlib.suppress(KeyError):
                    gauge.remove(target)
            return
        self.slo_budget_quantile.labels(target).set(float(report["quantile"]))
        self.slo_budget_ratio.labels(target).set(float(report["budget_percent"]) / 100)
        recent = float(report["recent_violation_percent"]) / 100
        self.slo_violation_ratio.labels(target).set(recent)
        self.slo_budget_at_limit.labels(target).set(1 if report["at_limit"] else 0)

    def observe_observation(self, target: str, trigger: str, observation: Observation) -> None:
        """What a trigger's source returned; also the actual that scores past forecasts.

        The actual is what a forecast predicts: the arrival rate of a Kafka trigger, the
        value of a Prometheus one. An ``Unavailable`` counts as a source error.
        """
        if isinstance(observation, Unavailable):
            self.source_error(target, trigger)
            return
        actual: float | None
        if isinstance(observation, KafkaLagObservation):
            self.observed_lag.labels(target, trigger).set(observation.total_lag)
            if observation.arrival_rate is not None:
                self.arrival_rate.labels(target, trigger).set(observation.arrival_rate)
            if observation.processing_rate is not None:
                self.processing_rate.labels(target, trigger).set(observation.processing_rate)
            actual = observation.arrival_rate
        elif isinstance(observation, MetricObservation):
            self.observed_value.labels(target, trigger).set(observation.value)
            actual = observation.value
        if actual is not None:
            self.record_actual(target, trigger, observation.observed_at, actual)

    def observe_forecast(
        self,
        target: str,
        trigger: str,
        at: float,
        forecast: Forecast,
        *,
        quantile: float,
        poll_interval_seconds: float,
    ) -> None:
        """A forecast made at ``at``: exported now, scored once its horizon has passed.

        The accuracy tracker is (re)created when the horizon, quantile or poll interval
        changes, as after a config reload: scores of another horizon do not compare.
        """
        self.forecast_point.labels(target, trigger).set(forecast.point)
        if forecast.upper is not None:
            self.forecast_upper.labels(target, trigger).set(forecast.upper)
        key = (target, trigger)
        tracker = self._accuracy.get(key)
        tolerance = poll_interval_seconds / 2
        if (
            tracker is None
            or tracker.horizon_seconds != forecast.horizon_seconds
            or tracker.quantile != quantile
            or tracker.tolerance_seconds != tolerance
        ):
            tracker = ForecastAccuracy(
                forecast.horizon_seconds,
                quantile,
                self.accuracy_window,
                tolerance_seconds=tolerance,
            )
            self._accuracy[key] = tracker
        tracker.record_forecast(at, forecast.point, forecast.upper)

    def record_actual(self, target: str, trigger: str, at: float, value: float) -> None:
        """Score past forecasts of the trigger against ``value`` observed at ``at``."""
        tracker = self._accuracy.get((target, trigger))
        if tracker is None or tracker.record_actual(at, value) == 0:
            return
        labels = (target, trigger)
        self.forecast_matched.labels(*labels).set(tracker.count)
        for gauge, score in (
            (self.forecast_mae, tracker.mae),
            (self.forecast_pinball, tracker.pinball),
            (self.forecast_coverage, tracker.coverage),
        ):
            if score is not None:
                gauge.labels(*labels).set(score)

    def source_error(self, target: str, trigger: str) -> None:
        self.source_errors.labels(target, trigger).inc()

    def patch_error(self, target: str, kind: str) -> None:
        """``kind``: a short, bounded word (``conflict``, ``forbidden``, ``timeout``...)."""
        self.patch_errors.labels(target, kind).inc()

    def set_conflict(self, target: str, conflict: bool) -> None:
        self.target_conflict.labels(target).set(1 if conflict else 0)

    def config_reload(self, *, success: bool) -> None:
        self.config_reloads.labels("applied" if success else "rejected").inc()
        self.config_last_reload_successful.set(1 if success else 0)

    def observe_loop_duration(self, target: str, seconds: float) -> None:
        self.loop_duration.labels(target).observe(seconds)

    def set_leader(self, leader: bool) -> None:
        self.leader.set(1 if leader else 0)

    def set_shards(self, shards: int, driven: int, targets_per_shard: dict[int, int]) -> None:
        """The shard count, the shards held now, and the targets of each (a shard given
        up is removed)."""
        self.shards.set(shards)
        self.shards_held.set(driven)
        self.shard_targets.clear()
        for shard, count in targets_per_shard.items():
            self.shard_targets.labels(shard=str(shard)).set(count)

    def accuracy(self, target: str, trigger: str) -> ForecastAccuracy | None:
        return self._accuracy.get((target, trigger))

    def forget(self, target: str) -> None:
        """Remove every series of ``target`` (and its accuracy history)."""
        for metric in self._by_target:
            metric.remove_by_labels({"target": target})
        for key in [k for k in self._accuracy if k[0] == target]:
            del self._accuracy[key]

    # ------------------------------------------------------------------ output

    def render(self) -> bytes:
        """Every series in the Prometheus text format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)
