"""The runs of the report page's tests (``eleven_runs`` in conftest builds their replay).

A module of its own, uniquely named: test modules import it by name, as they cannot rely
on which ``conftest`` module Python has cached under that name."""

ELEVEN_RUNS = [
    "reactive", "none", "naive", "seasonal_naive", "moving_average", "linear",
    "holt_winters", "seasonal_ridge", "quantile_gbm", "oracle-behavior", "oracle",
]  # fmt: skip
"""The report page's worst case in the bug report: eleven runs, each needing its colour."""
