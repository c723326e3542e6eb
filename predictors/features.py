"""Lag and calendar features for the direct (one model per lead time) regression models.

A row describes one forecast origin ``i`` (the newest known value) for a target ``h`` grid
steps later; everything in it is known at ``i`` (never the future):

* recent lags: the last values, and the mean of the last hour;
* seasonal lags at the *target* time: the value one day and one week before ``i + h``, and
  how the load changed a day ago over the same ``h`` steps (yesterday's ramp);
* calendar terms of the target time: Fourier terms of the time of day and day of week.

skforecast calls this the *direct* strategy; it suits a fixed lead time (pod start-up), and
it does not compound errors as a recursive forecast does.
"""

from __future__ import annotations

import math

import numpy as np

from predictors.history import FloatArray

DAY = 86400.0
WEEK = 7 * DAY
RECENT_LAGS = (0, 1, 2, 3, 5)
RECENT_SECONDS = 3600.0
DAY_HARMONICS = 3
WEEK_HARMONICS = 2


def recent_points(step: float) -> int:
    """Grid points in the recent-mean window (an hour, at least two points)."""
    return max(2, round(RECENT_SECONDS / step))


def min_origin(step: float, horizon: int) -> int:
    """The first origin whose day-ago-at-target lag exists."""
    day = round(DAY / step)
    return max(max(RECENT_LAGS), recent_points(step) - 1, day - horizon + 1, day)


def design(
    values: FloatArray, end_time: float, step: float, horizon: int, origins: np.ndarray
) -> FloatArray:
    """Feature rows for ``origins`` (indexes into ``values``; ``values[-1]`` is at
    ``end_time``) and a target ``horizon`` steps after each."""
    n = len(values)
    day = round(DAY / step)
    week = round(WEEK / step)
    columns: list[FloatArray] = [values[origins - lag] for lag in RECENT_LAGS]
    window = recent_points(step)
    start = np.maximum(origins + 1 - window, 0)
    if len(origins) == 1:
        columns.append(np.array([float(np.mean(values[int(start[0]) : int(origins[0]) + 1]))]))
    else:
        cumulative = np.concatenate(([0.0], np.cumsum(values)))
        columns.append((cumulative[origins + 1] - cumulative[start]) / (origins + 1 - start))
    target = origins + horizon
    day_ago = target - day
    day_value = values[np.clip(day_ago, 0, n - 1)]
    columns.append(day_value)
    # Yesterday's change over the same h steps, and the value around that time.
    columns.append(day_value - values[np.clip(origins - day, 0, n - 1)])
    columns.append(
        (
            values[np.clip(day_ago - 1, 0, n - 1)]
            + day_value
            + values[np.clip(day_ago + 1, 0, n - 1)]
        )
        / 3.0
    )
    week_ago = target - week
    columns.append(np.where(week_ago >= 0, values[np.clip(week_ago, 0, n - 1)], day_value))
    target_time = end_time + (target - (n - 1)) * step
    for k in range(1, DAY_HARMONICS + 1):
        angle = 2 * math.pi * k * (target_time % DAY) / DAY
        columns += [np.sin(angle), np.cos(angle)]
    for k in range(1, WEEK_HARMONICS + 1):
        # Unix time 0 was a Thursday; the phase does not matter to a linear model.
        angle = 2 * math.pi * k * (target_time % WEEK) / WEEK
        columns += [np.sin(angle), np.cos(angle)]
    return np.column_stack(columns).astype(np.float64)


def design_newest(values: FloatArray, end_time: float, step: float, horizon: int) -> FloatArray:
    """``design(values, end_time, step, horizon, [len(values) - 1])``, the same to the bit:
    the row of the newest origin, which the live loop and replay ask for at every poll. The
    batch form pays for a dozen array operations whatever the row count; one row is
    cheaper in scalars (the same float operations in the same order, and numpy's own sine
    and cosine over the calendar angles, so that no last bit differs from the batch)."""
    n = len(values)
    origin = n - 1
    day = round(DAY / step)
    week = round(WEEK / step)
    row = [float(values[origin - lag]) for lag in RECENT_LAGS]
    start = max(origin + 1 - recent_points(step), 0)
    row.append(float(np.mean(values[start : origin + 1])))

    def at(index: int) -> float:
        return float(values[min(max(index, 0), n - 1)])

    target = origin + horizon
    day_ago = target - day
    day_value = at(day_ago)
    row.append(day_value)
    row.append(day_value - at(origin - day))
    row.append((at(day_ago - 1) + day_value + at(day_ago + 1)) / 3.0)
    week_ago = target - week
    row.append(at(week_ago) if week_ago >= 0 else day_value)
    target_time = end_time + (target - (n - 1)) * step
    angles = [2 * math.pi * k * (target_time % DAY) / DAY for k in range(1, DAY_HARMONICS + 1)]
    angles += [2 * math.pi * k * (target_time % WEEK) / WEEK for k in range(1, WEEK_HARMONICS + 1)]
    turned = np.asarray(angles, dtype=np.float64)
    sines, cosines = np.sin(turned).tolist(), np.cos(turned).tolist()
    for sine, cosine in zip(sines, cosines, strict=True):
        row += [sine, cosine]
    return np.asarray([row], dtype=np.float64)


def tail_length(step: float) -> int:
    """How many of the newest values the features of the newest origin read (a week and a
    little): a prediction need not touch the whole window."""
    return round(WEEK / step) + recent_points(step) + max(RECENT_LAGS) + 2


def training_origins(observed: np.ndarray, step: float, horizon: int) -> np.ndarray:
    """Origins usable for training: full features, and an observed (not filled) target."""
    n = len(observed)
    first = min_origin(step, horizon)
    origins = np.arange(first, n - horizon)
    if len(origins) == 0:
        return origins
    usable: np.ndarray = origins[observed[origins + horizon]]
    return usable
