"""Recorded forecasts replay exactly what the live forecaster would have answered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers import KAFKA, make_target

from autoscaler.decision import forecasters_for
from autoscaler.replay.engine import ReplaySettings, prepare
from autoscaler.replay.recorded import observed_arrival_rates, record
from autoscaler.replay.simulator import simulate
from autoscaler.traces import load_csv

EMBEDDED = Path(__file__).resolve().parents[2] / "autoscaler" / "data" / "nab_twitter_amzn.csv"
DAY = 86400.0


def test_a_recorded_forecaster_gives_the_same_run_as_the_live_one() -> None:
    target = make_target(
        triggers=[{**KAFKA, "per_replica_throughput": 100.0}],
        max_replicas=40,
        startup_seconds=60,
        poll_interval_seconds=60,
        predictor={"model": "linear", "retrain_interval_seconds": 6 * 3600},
    )
    settings = ReplaySettings(100.0, 60.0, 60.0, 40, 12, 2 * DAY, 1.5 * DAY, frontier=False)
    job = prepare(target, load_csv(EMBEDDED, "count"), settings)

    def warmed() -> dict[str, object]:
        forecasters = forecasters_for(job.run_config)
        forecasters["kafka_lag"].warm_start(job.warmup_times, job.warmup_rates)
        return forecasters  # type: ignore[return-value]

    step = settings.poll_interval_seconds
    live = simulate(job.run_config, "kafka_lag", job.times, job.rates, step, job.consumer, warmed())  # type: ignore[arg-type]
    observed = observed_arrival_rates(job.times, job.rates, step, job.consumer)
    recorded = record(warmed()["kafka_lag"], job.times + step, observed)  # type: ignore[arg-type]
    replayed = simulate(
        job.run_config,
        "kafka_lag",
        job.times,
        job.rates,
        step,
        job.consumer,
        {"kafka_lag": recorded},
    )
    np.testing.assert_array_equal(live.forecast, replayed.forecast)
    np.testing.assert_array_equal(live.forecast_upper, replayed.forecast_upper)
    np.testing.assert_array_equal(live.desired_replicas, replayed.desired_replicas)
    assert np.isfinite(live.forecast).all()
    assert len(set(live.desired_replicas.tolist())) > 3


def test_one_recording_serves_every_quantile_of_a_calibrated_model() -> None:
    """The upper read off the ladder of a recording made at 0.9 is, at every poll, the
    upper a recording made at 0.8 (or 0.95) gives."""
    from autoscaler.replay.recorded import RecordedForecasts, at_quantile

    def recording(quantile: float) -> RecordedForecasts:
        target = make_target(
            triggers=[{**KAFKA, "per_replica_throughput": 100.0}],
            poll_interval_seconds=60,
            predictor={"model": "linear", "quantile": quantile},
        )
        settings = ReplaySettings(100.0, 60.0, 60.0, 40, 12, 2 * DAY, 1.5 * DAY, frontier=False)
        job = prepare(target, load_csv(EMBEDDED, "count"), settings)
        forecaster = forecasters_for(job.run_config)["kafka_lag"]
        forecaster.warm_start(job.warmup_times, job.warmup_rates)
        observed = observed_arrival_rates(job.times, job.rates, 60.0, job.consumer)
        return record(forecaster, job.times + 60.0, observed)

    def uppers(recorded: RecordedForecasts) -> list[float | None]:
        return [None if f is None else f.upper for f in recorded.forecasts]

    at_09 = recording(0.9)
    assert uppers(at_quantile(at_09, 0.8)) == uppers(recording(0.8))
    assert uppers(at_quantile(at_09, 0.95)) == uppers(recording(0.95))
    assert uppers(at_quantile(at_09, 0.8)) != uppers(at_09)
