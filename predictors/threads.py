"""One native thread per fit and prediction.

A service forecasts many targets side by side, and replay runs several models: BLAS and
OpenMP thread pools sized to every core then compete for the same cores, and their threads
spin instead of working (measured on a loaded 2-core machine: a gradient-boosting fit took
26 s instead of 0.4 s, a ridge fit 138 ms instead of 5 ms). Parallelism belongs to the
caller, across targets.
"""

from __future__ import annotations

from typing import Any

from threadpoolctl import ThreadpoolController

_CONTROLLER = ThreadpoolController()


def single_threaded() -> Any:
    """A context manager limiting BLAS and OpenMP pools to one thread."""
    return _CONTROLLER.limit(limits=1)
