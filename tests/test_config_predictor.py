"""predictor.params is checked against the chosen model's own parameters."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.config import ConfigError, parse_config
from predictors import MODELS


def _config(predictor: dict[str, Any]) -> dict[str, Any]:
    return {
        "prometheus_servers": {"main": {"url": "http://prometheus:9090"}},
        "targets": [
            {
                "name": "renderer",
                "scale_target_ref": {"name": "renderer"},
                "triggers": [
                    {"type": "prometheus", "server": "main", "query": "x", "target_value": 5}
                ],
                "predictor": predictor,
            }
        ],
    }


@pytest.mark.parametrize(
    ("predictor", "message"),
    [
        pytest.param(
            {"model": "seasonal_ridge", "params": {"alpah": 1.0}},
            "model seasonal_ridge has no parameter 'alpah' (did you mean 'alpha'?",
            id="unknown-with-hint",
        ),
        pytest.param(
            {"model": "seasonal_ridge", "params": {"quantile": 0.5}},
            "'quantile' is set by predictor.quantile, not params",
            id="reserved-quantile",
        ),
        pytest.param(
            {"model": "quantile_gbm", "params": {"horizon_seconds": 60}},
            "'horizon_seconds' is set by startup_seconds + predictor.lead_margin_seconds",
            id="reserved-horizon",
        ),
        pytest.param(
            {"model": "none", "params": {"alpha": 1}}, "model none takes no params", id="none"
        ),
        pytest.param(
            {"model": "prophet"}, "targets[0].predictor.model: must be one of", id="unknown-model"
        ),
    ],
)
def test_bad_predictor_params(predictor: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(_config(predictor))
    assert message in str(error.value)
    assert "targets[0].predictor" in str(error.value)


@pytest.mark.parametrize(
    "predictor",
    [
        pytest.param({"model": "seasonal_ridge", "params": {"alpha": 3.0}}, id="ridge-alpha"),
        pytest.param({"model": "quantile_gbm", "params": {"max_iter": 50}}, id="gbm-iterations"),
        pytest.param({"model": "auto", "params": {"candidates": ["naive", "linear"]}}, id="auto"),
        pytest.param({"model": "none"}, id="reactive"),
    ],
)
def test_good_predictor_params(predictor: dict[str, Any]) -> None:
    config = parse_config(_config(predictor))
    assert config.targets[0].predictor.model == predictor["model"]


def test_every_config_model_name_is_registered() -> None:
    from autoscaler.config.model import PREDICTOR_MODELS

    assert set(PREDICTOR_MODELS) - {"none"} == set(MODELS)
