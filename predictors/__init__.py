"""Load forecasting models (Kafka arrival rate, or any metric series) for the decision core.

Every model follows one small, scikit-learn-like interface (``predictors.base.Predictor``):
``fit(timestamps, values)``, ``update(timestamp, value)``, ``predict(timestamps)`` giving a
point forecast and an upper quantile. Models are chosen by name (``predictors.registry``).
This package does no I/O.
"""

from predictors.base import Prediction, Predictor
from predictors.registry import MODELS, make_predictor, model_class, model_parameters

__all__ = ["MODELS", "Prediction", "Predictor", "make_predictor", "model_class", "model_parameters"]
