"""History handling shared by every model: cleaning, putting on a grid, appending online.

Real metric history is messy: irregular scrape times, duplicated and out-of-order points,
gaps (outages), NaN, counter resets, negative or absurd values. Models should not each deal
with that, so they all see the same thing: a regular grid of finite, non-negative values with
a mask telling which slots were observed and which were filled in.

Nothing here raises on bad *data* (bad values become gaps); ``HistoryError`` is raised only
when nothing usable is left, and the predictors turn it into "cannot forecast".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

STORAGE = np.float32
"""How a ``SeriesBuffer`` stores its values (see there)."""
ABSURD_VALUE = 1e15
"""Larger than any real event rate or gauge: treated as a broken sample, not load."""


class HistoryError(ValueError):
    """No usable point in the given history."""


@dataclass(frozen=True)
class GridSeries:
    """Values on a regular grid: ``timestamps[i] = start + i * step``."""

    start: float
    step: float
    values: FloatArray
    observed: BoolArray

    @property
    def timestamps(self) -> FloatArray:
        return self.start + self.step * np.arange(len(self.values), dtype=np.float64)

    def __len__(self) -> int:
        return len(self.values)


def clean(
    timestamps: ArrayLike, values: ArrayLike, kind: Literal["rate", "counter"] = "rate"
) -> tuple[FloatArray, FloatArray]:
    """Sorted, de-duplicated points with finite times; bad values become NaN.

    ``counter`` turns a monotonic counter (Kafka end offsets, ``*_total``) into a per-second
    rate between consecutive points, reading a decrease as a reset (the new value is the
    increase since the reset), as PromQL's ``rate()`` does.
    """
    t = np.asarray(timestamps, dtype=np.float64).ravel()
    v = np.asarray(values, dtype=np.float64).ravel()
    if t.shape != v.shape:
        raise HistoryError(f"{len(t)} timestamps but {len(v)} values")
    keep = np.isfinite(t)
    t, v = t[keep], v[keep]
    if len(t) == 0:
        raise HistoryError("no timestamps")
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    # Duplicated timestamps: the last one written wins.
    last_of_each = np.append(t[1:] != t[:-1], True)
    t, v = t[last_of_each], v[last_of_each]
    if kind == "counter":
        if len(t) < 2:
            raise HistoryError("a counter needs at least two points")
        increase = np.diff(v)
        reset = increase < 0
        increase[reset] = v[1:][reset]
        v = increase / np.diff(t)
        t = t[1:]
    bad = ~np.isfinite(v) | (v < 0) | (v > ABSURD_VALUE)
    v = np.where(bad, np.nan, v)
    if np.all(np.isnan(v)):
        raise HistoryError("no finite, non-negative value")
    return t, v


def infer_step(timestamps: FloatArray) -> float:
    """The grid step of a series: the median spacing of its points."""
    if len(timestamps) < 2:
        raise HistoryError("cannot infer the step of fewer than two points")
    spacing = np.diff(timestamps)
    spacing = spacing[spacing > 0]
    if len(spacing) == 0:
        raise HistoryError("cannot infer the step: all timestamps are equal")
    return float(np.median(spacing))


def to_grid(timestamps: FloatArray, values: FloatArray, step: float) -> GridSeries:
    """Put cleaned points on a grid anchored at the last point (the forecast origin).

    Points are assigned to the nearest slot (scrape jitter), several in one slot are
    averaged, and gaps (slots with no point, or only NaN) are filled by linear interpolation
    between the observed neighbours and marked as not observed.
    """
    if not step > 0:
        raise HistoryError(f"step must be > 0, not {step}")
    finite = np.isfinite(values)
    if not finite.any():
        raise HistoryError("no finite value")
    t, v = timestamps[finite], values[finite]
    end = float(t[-1])
    slot = np.rint((t - end) / step).astype(np.int64)
    slot -= slot[0]
    size = int(slot[-1]) + 1
    sums = np.bincount(slot, weights=v, minlength=size)
    counts = np.bincount(slot, minlength=size)
    observed = counts > 0
    filled = np.empty(size, dtype=np.float64)
    filled[observed] = sums[observed] / counts[observed]
    if not observed.all():
        index = np.arange(size)
        filled[~observed] = np.interp(index[~observed], index[observed], filled[observed])
    start = end - step * (size - 1)
    return GridSeries(start=start, step=step, values=filled, observed=observed)


class SeriesBuffer:
    """A sliding window of grid values that grows one poll at a time in O(1) amortized.

    The live loop appends one point per poll, replay tens of thousands: the buffer keeps the
    last ``capacity`` slots in an array 1/32 larger and compacts only when it is full (a
    copy of ``capacity`` slots every ``capacity / 32`` appends: 32 slot copies, a few
    nanoseconds, per append, for 3 % more memory where a doubled array costs 100 %; the
    service holds hundreds of these).

    Values are stored in float32 (``STORAGE``): fourteen days of minute points cost 83 KB
    instead of 166 KB per series, and seven significant digits are far finer than the
    noise of any rate or gauge. Every value read out is float64 (``values``, ``tail``,
    ``last_value``), so sums over a window (the features' running means) never accumulate
    in single precision.
    """

    def __init__(self, step: float, capacity: int) -> None:
        if not step > 0 or capacity < 1:
            raise HistoryError("a buffer needs step > 0 and capacity >= 1")
        self.step = float(step)
        self.capacity = int(capacity)
        size = self.capacity + max(16, self.capacity // 32)
        self._values = np.empty(size, dtype=STORAGE)
        self._observed = np.zeros(size, dtype=np.bool_)
        self._begin = 0
        self._end = 0
        self._last_time = float("nan")

    @classmethod
    def from_grid(cls, grid: GridSeries, capacity: int) -> SeriesBuffer:
        buffer = cls(grid.step, capacity)
        tail = slice(max(0, len(grid) - capacity), len(grid))
        count = tail.stop - tail.start
        buffer._values[:count] = grid.values[tail]
        buffer._observed[:count] = grid.observed[tail]
        buffer._end = count
        buffer._last_time = grid.start + grid.step * (len(grid) - 1)
        return buffer

    def __len__(self) -> int:
        return self._end - self._begin

    @property
    def last_time(self) -> float:
        """Timestamp of the newest slot (NaN while empty)."""
        return self._last_time

    @property
    def values(self) -> FloatArray:
        """The window, oldest first, in float64 (a copy: a model that reads only the newest
        points should ask for ``tail``)."""
        return self._values[self._begin : self._end].astype(np.float64)

    def tail(self, count: int) -> FloatArray:
        """The newest ``count`` values (all of them if fewer), oldest first, in float64."""
        start = max(self._begin, self._end - max(0, int(count)))
        return self._values[start : self._end].astype(np.float64)

    @property
    def last_value(self) -> float:
        """The newest value (NaN while empty)."""
        return float(self._values[self._end - 1]) if self._end > self._begin else float("nan")

    @property
    def observed(self) -> BoolArray:
        return self._observed[self._begin : self._end]

    @property
    def timestamps(self) -> FloatArray:
        n = len(self)
        return self._last_time - self.step * np.arange(n - 1, -1, -1, dtype=np.float64)

    def append(self, timestamp: float, value: float) -> bool:
        """Add one point; returns False when it was ignored (older than the window's end,
        or not a usable number while there is nothing to fill from)."""
        usable = bool(np.isfinite(value)) and 0 <= value <= ABSURD_VALUE
        if not np.isfinite(timestamp):
            return False
        if len(self) == 0:
            if not usable:
                return False
            self._push(value, True)
            self._last_time = float(timestamp)
            return True
        slots = round((timestamp - self._last_time) / self.step)
        if slots < 0:
            return False
        last = float(self._values[self._end - 1])
        if slots == 0:
            if usable:  # a second point in the same slot: the newest wins
                self._values[self._end - 1] = value
                self._observed[self._end - 1] = True
            return usable
        target = value if usable else last
        if slots > self.capacity:  # the gap is longer than the window: start again
            self._begin = self._end = 0
            self._push(target, usable)
            self._last_time = float(timestamp)
            return True
        for k in range(1, slots):  # a gap: interpolate towards the new point
            self._push(last + (target - last) * k / slots, False)
        self._push(target, usable)
        self._last_time += slots * self.step
        return True

    def _push(self, value: float, observed: bool) -> None:
        if self._end == len(self._values):
            keep = self.capacity - 1
            self._values[:keep] = self._values[self._end - keep : self._end]
            self._observed[:keep] = self._observed[self._end - keep : self._end]
            self._begin, self._end = 0, keep
        self._values[self._end] = value
        self._observed[self._end] = observed
        self._end += 1
        if self._end - self._begin > self.capacity:
            self._begin += 1
