"""Load forecasting models (Kafka arrival rate, or any metric series) for the decision core.

Every model follows one small, scikit-learn-like interface (``predictors.base.Predictor``):
``fit(timestamps, values)``, ``update(timestamp, value)``, ``predict(timestamps)`` giving a
point forecast and an upper quantile. Models are chosen by name (``predictors.registry``).
This package does no I/O.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from predictors.base import Prediction, Predictor
    from predictors.registry import MODELS, make_predictor, model_class, model_parameters

__all__ = ["MODELS", "Prediction", "Predictor", "make_predictor", "model_class", "model_parameters"]

_HOMES = {
    "Prediction": "predictors.base",
    "Predictor": "predictors.base",
    "MODELS": "predictors.registry",
    "make_predictor": "predictors.registry",
    "model_class": "predictors.registry",
    "model_parameters": "predictors.registry",
}


def __getattr__(name: str) -> Any:
    """Import lazily: validating a config or loading a trace must not pay for importing
    scikit-learn (``predictors.history`` and the registry's names need nothing heavy)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'predictors' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
