"""Metric history for replay: a CSV file (or a Prometheus range query, see ``prometheus``),
turned into an arrival rate in messages/s on a regular grid.

Bad input gets one clear line (``TraceError``), never a traceback. Gaps are not an error:
they are filled by linear interpolation between the rows around them, with a warning,
because a missing row means "no data", not "no traffic".
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from predictors.history import to_grid

FloatArray = NDArray[np.float64]
ValueKind = Literal["rate", "count"]


class TraceError(Exception):
    """The history cannot be replayed; the message says why, in one line."""


@dataclass(frozen=True)
class Trace:
    """An arrival rate on a regular grid: ``rates[i]`` messages/s during
    ``[start + i*step, start + (i+1)*step)``."""

    name: str
    start: float
    step: float
    rates: FloatArray
    observed: NDArray[np.bool_]
    warnings: tuple[str, ...] = field(default=())

    @property
    def end(self) -> float:
        return self.start + self.step * len(self.rates)

    @property
    def timestamps(self) -> FloatArray:
        return self.start + self.step * np.arange(len(self.rates), dtype=np.float64)

    def rate_at(self, times: FloatArray) -> FloatArray:
        """The rate in force at each time (piecewise constant per row)."""
        index = np.floor((times - self.start) / self.step).astype(np.int64)
        if index.size and (index.min() < 0 or index.max() >= len(self.rates)):
            raise TraceError("replay time outside the trace")
        rates: FloatArray = self.rates[index]
        return rates


def parse_timestamp(text: str) -> float:
    """Unix seconds, or ISO-8601 (``Z``/offset; a time without zone is UTC)."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise ValueError(f"'{text}' is not a time")
        return number
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"'{text}' is neither ISO-8601 nor Unix seconds") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def load_csv(path: str | Path, value_kind: ValueKind = "count", name: str | None = None) -> Trace:
    """Read ``timestamp,value`` rows. ``count``: events per row interval (the interval is
    the spacing of the rows); ``rate``: events per second."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise TraceError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise TraceError(f"{path}: is a directory, not a CSV file") from None
    except UnicodeDecodeError:
        raise TraceError(f"{path}: not a UTF-8 text file") from None
    except OSError as error:
        raise TraceError(f"{path}: cannot read: {error.strerror}") from None
    if not rows:
        raise TraceError(f"{path}: the file is empty")
    header = [column.strip().lower() for column in rows[0]]
    if "timestamp" not in header or "value" not in header:
        raise TraceError(
            f"{path}: expected a header with columns timestamp,value; found {','.join(rows[0])}"
        )
    t_col, v_col = header.index("timestamp"), header.index("value")
    times: list[float] = []
    values: list[float] = []
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) <= max(t_col, v_col):
            raise TraceError(f"{path}:{line}: expected {len(header)} columns, found {len(row)}")
        try:
            times.append(parse_timestamp(row[t_col]))
        except ValueError as error:
            raise TraceError(f"{path}:{line}: timestamp {error}") from None
        try:
            value = float(row[v_col])
        except ValueError:
            raise TraceError(f"{path}:{line}: value '{row[v_col]}' is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise TraceError(f"{path}:{line}: value {row[v_col]} must be a finite number >= 0")
        values.append(value)
    return from_points(np.array(times), np.array(values), value_kind, name or path.stem, str(path))


def from_points(
    times: FloatArray, values: FloatArray, value_kind: ValueKind, name: str, where: str
) -> Trace:
    """Validate sorted points and put them on a grid (shared by CSV and Prometheus).

    The step is the median spacing of the rows, so gaps (missing rows) do not change it.
    Row numbers in messages count the header as row 1, as an editor shows them."""
    if len(times) < 2:
        raise TraceError(f"{where}: needs at least 2 rows, found {len(times)}")
    if not np.all(np.isfinite(times)):
        raise TraceError(f"{where}: a timestamp is not a finite number")
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        at = int(np.argmax(bad))
        raise TraceError(
            f"{where}: value {values[at]:g} at row {at + 2} must be a finite number >= 0"
        )
    spacing = np.diff(times)
    if np.any(spacing == 0):
        at = int(np.argmax(spacing == 0)) + 1
        raise TraceError(f"{where}: duplicate timestamp at row {at + 2} ({_iso(times[at])})")
    if np.any(spacing < 0):
        at = int(np.argmax(spacing < 0)) + 1
        raise TraceError(
            f"{where}: timestamps are not sorted: row {at + 2} ({_iso(times[at])}) "
            f"comes before the row above it"
        )
    step = float(np.median(spacing))
    rates = values / step if value_kind == "count" else values
    grid = to_grid(times, rates.astype(np.float64), step)
    warnings: list[str] = []
    missing = int((~grid.observed).sum())
    if missing:
        warnings.append(
            f"{where}: {missing} missing rows of {len(grid)} ({missing * step / 3600:.1f} h) "
            "filled by linear interpolation"
        )
    return Trace(
        name=name,
        start=grid.start,
        step=step,
        rates=grid.values,
        observed=grid.observed,
        warnings=tuple(warnings),
    )


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
