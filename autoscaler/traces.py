"""Metric history for replay and tune: a CSV file (or a Prometheus range query, see
``autoscaler.sources.prometheus_history``), turned into an arrival rate in messages/s on a
regular grid. Below replay and the sources alike: the Prometheus fetch needs nothing of replay.

Bad input gets one clear line (``TraceError``), never a traceback. Gaps are not an error:
they are filled by linear interpolation between the rows around them, with a warning,
because a missing row means "no data", not "no traffic".
"""

from __future__ import annotations

import csv
import dataclasses
import math
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from predictors.history import to_grid

FloatArray = NDArray[np.float64]
ValueKind = Literal["rate", "count"]

MAX_GRID_POINTS = 20_000_000
"""The most grid points a history may fill (160 MB of rates): a year at 2-second steps. A
history that would need more has a row far from the others (a typo, a stray year) or a
step too fine for its span; it is refused before anything that size is allocated."""
MILLISECONDS_FROM = 1e11
"""Numeric timestamps at or above this are Unix milliseconds (what Grafana exports): in
seconds it would be the year 5138; in milliseconds it is March 1973."""


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
            raise ValueError(f"{text!r} is not a time")
        return number
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither ISO-8601 nor Unix seconds") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def load_csv(path: str | Path, value_kind: ValueKind = "count", name: str | None = None) -> Trace:
    """Read ``timestamp,value`` rows. ``count``: events per row interval (the interval is
    the spacing of the rows); ``rate``: events per second.

    The rows are streamed into two float arrays (16 bytes a row, not a list of strings per
    row), so a large file costs a small multiple of its numbers. A UTF-8 byte-order mark is
    skipped; numeric timestamps in Unix milliseconds are recognized (with a warning)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            times, values = _read_rows(path, csv.reader(handle))
    except FileNotFoundError:
        raise TraceError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise TraceError(f"{path}: is a directory, not a CSV file") from None
    except UnicodeDecodeError:
        raise TraceError(f"{path}: not a UTF-8 text file") from None
    except csv.Error as error:
        raise TraceError(f"{path}: not a CSV file ({error})") from None
    except OSError as error:
        raise TraceError(f"{path}: cannot read: {error.strerror}") from None
    stamps = np.frombuffer(times, dtype=np.float64) if len(times) else np.empty(0)
    warnings: tuple[str, ...] = ()
    if len(stamps) and bool(np.all(stamps >= MILLISECONDS_FROM)):
        stamps = stamps / 1000.0
        warnings = (f"{path}: timestamps read as Unix milliseconds",)
    amounts = np.frombuffer(values, dtype=np.float64) if len(values) else np.empty(0)
    trace = from_points(stamps, amounts, value_kind, name or path.stem, str(path))
    if warnings:
        trace = dataclasses.replace(trace, warnings=warnings + trace.warnings)
    return trace


def _read_rows(path: Path, reader: Iterator[list[str]]) -> tuple[array[float], array[float]]:
    """The timestamp and value columns, checked row by row."""
    first = next(reader, None)
    if first is None:
        raise TraceError(f"{path}: the file is empty")
    header = [column.strip().lower() for column in first]
    if "timestamp" not in header or "value" not in header:
        found = ",".join(first)
        shown = found if len(found) <= 60 else found[:57] + "..."
        raise TraceError(f"{path}: expected a header with columns timestamp,value; found {shown!r}")
    t_col, v_col = header.index("timestamp"), header.index("value")
    times: array[float] = array("d")
    values: array[float] = array("d")
    for line, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) <= max(t_col, v_col):
            raise TraceError(f"{path}:{line}: expected {len(header)} columns, found {len(row)}")
        try:
            times.append(parse_timestamp(row[t_col]))
        except ValueError as error:
            raise TraceError(f"{path}:{line}: timestamp {_short(str(error))}") from None
        try:
            value = float(row[v_col])
        except ValueError:
            raise TraceError(
                f"{path}:{line}: value {_short(repr(row[v_col]))} is not a number"
            ) from None
        if not math.isfinite(value) or value < 0:
            raise TraceError(
                f"{path}:{line}: value {_short(row[v_col].strip())} must be a finite number >= 0"
            )
        values.append(value)
    return times, values


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    points = (times[-1] - times[0]) / step + 1
    if points > MAX_GRID_POINTS:
        at = int(np.argmax(spacing)) + 1
        raise TraceError(
            f"{where}: the rows span {(times[-1] - times[0]) / 86400:,.0f} days at a "
            f"{step:g} s step: {points:,.0f} points, at most {MAX_GRID_POINTS:,}; the widest "
            f"gap is before row {at + 2} ({_iso(times[at])}), {spacing[at - 1] / 86400:,.0f} "
            "days after the row above it"
        )
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
    try:
        return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):  # past year 9999 (a typo, or milliseconds)
        return f"Unix time {timestamp:.0f}"
