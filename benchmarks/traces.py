"""The real traffic traces (``shared/traces/*.csv``) as event rates, for benchmarks and replay.

Each CSV holds ``timestamp,value`` rows: the number of events in ``[timestamp, timestamp +
step)`` (see ``SOURCES.md`` next to them). A trace here is the same rows as a rate in events
per second (``value / step``), with the timestamp in unix seconds. Missing rows stay missing:
no zero or other value is invented for a gap (an outage is not zero demand); the predictors'
own history handling fills gaps, as it does live.

The folder is ``<repo>/../shared/traces`` unless ``AUTOSCALER_TRACES_DIR`` names another.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

ENV_VAR = "AUTOSCALER_TRACES_DIR"
DEFAULT_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "traces"


class Trace(NamedTuple):
    """One trace: rows as they are in the file (gaps are absent rows), as a rate."""

    name: str
    timestamps: FloatArray
    """Unix seconds, start of each interval, strictly increasing."""
    values: FloatArray
    """Events per second over the interval."""
    step_seconds: float

    def on_grid(self) -> tuple[FloatArray, FloatArray]:
        """Every slot from the first to the last row, NaN where a row is missing."""
        slots = np.rint((self.timestamps - self.timestamps[0]) / self.step_seconds)
        index = slots.astype(np.int64)
        grid = self.timestamps[0] + self.step_seconds * np.arange(index[-1] + 1, dtype=np.float64)
        values = np.full(len(grid), np.nan)
        values[index] = self.values
        return grid, values


def traces_dir() -> Path:
    """The folder of the trace CSVs: ``$AUTOSCALER_TRACES_DIR`` or ``<repo>/../shared/traces``."""
    override = os.environ.get(ENV_VAR)
    return Path(override) if override else DEFAULT_DIR


def load_trace(path: Path) -> Trace:
    """One CSV as a rate; ValueError naming the file when it is not a usable trace."""
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or [cell.strip() for cell in rows[0]] != ["timestamp", "value"]:
        raise ValueError(f"{path}: expected the header 'timestamp,value'")
    body = [row for row in rows[1:] if row]
    if len(body) < 2:
        raise ValueError(f"{path}: needs at least two rows")
    # ISO-8601 UTC ("...Z"): numpy parses it once the zone designator is dropped.
    stamps = np.array([row[0].strip().removesuffix("Z") for row in body], dtype="datetime64[s]")
    timestamps = stamps.astype(np.int64).astype(np.float64)
    counts = np.array([float(row[1]) for row in body], dtype=np.float64)
    spacing = np.diff(timestamps)
    if np.any(spacing <= 0):
        raise ValueError(f"{path}: timestamps are not strictly increasing")
    step = float(np.min(spacing))  # gaps only ever widen the spacing
    return Trace(path.stem, timestamps, counts / step, step)


def load_traces(names: list[str] | None = None, directory: Path | None = None) -> list[Trace]:
    """Every ``*.csv`` of the folder, sorted by name (or only ``names``, in that order)."""
    folder = directory or traces_dir()
    available = {path.stem: path for path in sorted(folder.glob("*.csv"))}
    if not available:
        raise FileNotFoundError(f"no trace CSV in {folder} (set {ENV_VAR} to the right folder)")
    if names is None:
        return [load_trace(path) for path in available.values()]
    unknown = [name for name in names if name not in available]
    if unknown:
        raise KeyError(
            f"unknown trace {', '.join(unknown)} in {folder} (known: {', '.join(available)})"
        )
    return [load_trace(available[name]) for name in names]
