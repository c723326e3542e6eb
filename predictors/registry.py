"""Models by the names the YAML config uses (``predictor.model``), built lazily.

Each entry names a module and a class, imported on first use: choosing ``naive`` does not pay
for importing statsmodels.
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from predictors.base import Predictor

MODELS: dict[str, str] = {
    "naive": "predictors.naive:NaiveForecaster",
    "seasonal_naive": "predictors.naive:SeasonalNaiveForecaster",
    "moving_average": "predictors.smoothing:MovingAverageForecaster",
    "linear": "predictors.linear:LinearForecaster",
    "holt_winters": "predictors.holt_winters:HoltWintersForecaster",
    "seasonal_ridge": "predictors.ridge:SeasonalRidgeForecaster",
    "quantile_gbm": "predictors.gbm:QuantileGBMForecaster",
    "auto": "predictors.auto:AutoForecaster",
}


def model_class(name: str) -> type[Predictor]:
    """The class registered as ``name``; KeyError naming the known ones otherwise."""
    try:
        target = MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model '{name}' (known: {', '.join(MODELS)})") from None
    module_name, _, class_name = target.partition(":")
    cls: type[Predictor] = getattr(importlib.import_module(module_name), class_name)
    return cls


def model_parameters(name: str) -> dict[str, Any]:
    """The model's parameters and their defaults (its ``__init__`` signature)."""
    signature = inspect.signature(model_class(name).__init__)
    return {
        p.name: p.default
        for p in signature.parameters.values()
        if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD
    }


def make_predictor(name: str, **params: Any) -> Predictor:
    """A new, unfitted model; TypeError naming the bad parameter and the valid ones."""
    known = model_parameters(name)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise TypeError(
            f"model '{name}' has no parameter {', '.join(map(repr, unknown))} "
            f"(parameters: {', '.join(known)})"
        )
    return model_class(name)(**params)


def has_calibrated_quantiles(name: str) -> bool:
    """Whether ``name``'s quantiles are calibrated from its errors (its forecasts carry the
    ``QUANTILE_LEVELS`` ladder, the same whatever ``quantile`` it was built with), as
    opposed to a model with quantiles of its own (``quantile_gbm``) or one whose choices
    depend on the quantile (``auto``)."""
    from predictors.base import Predictor

    cls = model_class(name)
    return cls._upper is Predictor._upper and cls._own_ladder is Predictor._own_ladder
