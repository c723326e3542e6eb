"""The compact tree ensemble predicts exactly what the scikit-learn model it came from does."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

from predictors.trees import CompactTrees


def _data(seed: int, rows: int, missing: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 12))
    y = 2 * x[:, 0] + np.sin(3 * x[:, 1]) + np.where(x[:, 2] > 0, 1.0, -1.0)
    y = y + rng.normal(scale=0.3, size=rows)
    x[rng.random(x.shape) < missing] = np.nan
    return x, y


def _fitted(quantile: float, x: np.ndarray, y: np.ndarray, **params: object) -> object:
    settings: dict[str, object] = {
        "loss": "quantile",
        "quantile": quantile,
        "max_iter": 40,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 20,
        "early_stopping": False,
        "random_state": 0,
    }
    settings.update(params)
    return HistGradientBoostingRegressor(**settings).fit(x, y)


@pytest.mark.parametrize("quantile", [0.5, 0.9])
@pytest.mark.parametrize("missing", [0.0, 0.05])
def test_predictions_are_bit_identical(quantile: float, missing: float) -> None:
    x, y = _data(1, 2000, missing)
    model = _fitted(quantile, x, y)
    compact = CompactTrees.from_sklearn(model)
    rows, _ = _data(2, 300, missing * 2)
    rows[:5, :] = np.nan  # all missing: every split sends it to its learned side
    expected = model.predict(rows)  # type: ignore[attr-defined]
    assert np.array_equal(compact.predict(rows), expected)
    for i in range(0, 300, 37):  # one row at a time, as the live loop asks
        assert compact.predict(rows[i : i + 1])[0] == expected[i]
    # The single-row walk (what the forecasters use) gives the same bits for every row.
    assert [compact.predict_one(row) for row in rows] == expected.tolist()


def test_one_leaf_trees_predict_the_baseline_and_their_value() -> None:
    x, _ = _data(3, 500, 0.0)
    y = np.full(500, 7.0) + x[:, 0]
    model = _fitted(0.5, x, y, min_samples_leaf=300)  # no split leaves two leaves of 300
    compact = CompactTrees.from_sklearn(model)
    assert (compact.roots < 0).all()
    assert len(compact.feature) == 0
    expected = model.predict(x[:10])  # type: ignore[attr-defined]
    assert np.array_equal(compact.predict(x[:10]), expected)
    assert compact.predict(x[:1])[0] == pytest.approx(float(np.median(y)), abs=0.5)
    assert [compact.predict_one(row) for row in x[:10]] == expected.tolist()


def test_is_a_fraction_of_the_fitted_model_and_survives_copies() -> None:
    x, y = _data(4, 3000, 0.0)
    model = _fitted(0.9, x, y, max_iter=60, max_leaf_nodes=31)
    compact = CompactTrees.from_sklearn(model)
    assert compact.nbytes < len(pickle.dumps(model)) / 4
    rows, _ = _data(5, 50, 0.0)
    for clone in (copy.deepcopy(compact), pickle.loads(pickle.dumps(compact))):
        assert np.array_equal(clone.predict(rows), compact.predict(rows))


def test_rejects_rows_of_the_wrong_width() -> None:
    x, y = _data(6, 500, 0.0)
    compact = CompactTrees.from_sklearn(_fitted(0.5, x, y))
    with pytest.raises(ValueError, match="12 features"):
        compact.predict(np.zeros((1, 11)))
    with pytest.raises(ValueError, match="expected 12 features"):
        compact.predict_one(np.zeros(11))


def test_refuses_categorical_splits() -> None:
    rng = np.random.default_rng(7)
    x = np.column_stack([rng.integers(0, 4, 800).astype(float), rng.normal(size=800)])
    y = np.where(x[:, 0] == 2, 5.0, 0.0) + rng.normal(scale=0.1, size=800)
    model = _fitted(0.5, x, y, categorical_features=[0])
    with pytest.raises(ValueError, match="categorical"):
        CompactTrees.from_sklearn(model)


def test_refuses_losses_with_a_link_and_answers_no_rows() -> None:
    x, y = _data(8, 600, 0.0)
    poisson = _fitted(0.5, x, np.abs(y), loss="poisson")
    with pytest.raises(ValueError, match="raw sum"):
        CompactTrees.from_sklearn(poisson)
    compact = CompactTrees.from_sklearn(_fitted(0.5, x, y))
    assert compact.predict(np.zeros((0, 12))).shape == (0,)
