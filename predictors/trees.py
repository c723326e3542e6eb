"""A fitted gradient-boosted tree ensemble in a few flat arrays, for prediction only.

scikit-learn's ``HistGradientBoostingRegressor`` keeps, after ``fit``, everything it needs
to fit again: a bin mapper, training scores, one Python object per tree with 56-byte nodes
(gain, counts, depth, bin thresholds...). A live service holding two such models for each
of hundreds of targets pays about 0.5 MB per target for it, and a single-row ``predict``
goes through input validation and an OpenMP dispatch (about 0.7 ms). Prediction needs only
each split's feature, threshold, missing-value side and children, and the leaves' values:

* internal nodes of every tree side by side (feature, threshold, NaN side, two children);
  a child that is a leaf is stored as ``-1 - leaf``, an index into the leaves' values;
* one walk for all rows and trees at once, a level per numpy step (trees are shallow).

The walk makes the same comparisons as scikit-learn's (``x <= threshold``, NaN to the side
the tree learned) and adds the trees' values in the same order, so predictions are
identical, bit for bit (tests check it). Categorical splits are not supported (the
forecasting features are all numeric); ``from_sklearn`` refuses a model that has them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from predictors.history import FloatArray

IntArray = NDArray[np.int32]
IDENTITY_LINK_LOSSES = ("squared_error", "absolute_error", "quantile")
"""Losses whose prediction is the raw sum of the trees (no inverse link to apply)."""


class CompactTrees:
    """The prediction-only form of a fitted ``HistGradientBoostingRegressor``."""

    __slots__ = (
        "_walk",
        "baseline",
        "feature",
        "leaf_value",
        "left",
        "missing_left",
        "n_features",
        "right",
        "roots",
        "threshold",
    )

    def __init__(
        self,
        *,
        baseline: float,
        feature: NDArray[np.int16],
        threshold: FloatArray,
        missing_left: NDArray[np.bool_],
        left: IntArray,
        right: IntArray,
        leaf_value: FloatArray,
        roots: IntArray,
        n_features: int,
    ) -> None:
        self.baseline = baseline
        self.feature = feature
        self.threshold = threshold
        self.missing_left = missing_left
        self.left = left
        self.right = right
        self.leaf_value = leaf_value
        self.roots = roots
        """Per tree: its root (an internal node, or ``-1 - leaf`` for a one-leaf tree)."""
        self.n_features = n_features
        self._walk: tuple[Any, ...] | None = None
        """The same arrays as Python ``array``s, for ``predict_one``: built on first use, as
        large again as the arrays (not counted in ``nbytes``), a few tens of kilobytes."""

    @classmethod
    def from_sklearn(cls, model: Any) -> CompactTrees:
        """Copy what prediction needs out of a fitted regressor (one output, numeric)."""
        if getattr(model, "n_trees_per_iteration_", 1) != 1:
            raise ValueError("only single-output regressors can be compacted")
        if getattr(model, "loss", None) not in IDENTITY_LINK_LOSSES:
            # poisson or gamma predict exp(raw): the raw sum alone would be wrong
            raise ValueError(f"only losses predicted as the raw sum: {IDENTITY_LINK_LOSSES}")
        feature: list[int] = []
        threshold: list[float] = []
        missing_left: list[bool] = []
        left: list[int] = []
        right: list[int] = []
        leaf_value: list[float] = []
        roots: list[int] = []
        for (tree,) in model._predictors:
            nodes = tree.nodes
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits cannot be compacted")
            # New index of each node: internal nodes count up from the ensemble's current
            # size, leaves are -1 - (their index among all leaves).
            is_leaf = nodes["is_leaf"].astype(bool)
            new_index = np.empty(len(nodes), dtype=np.int64)
            internal_ids = np.flatnonzero(~is_leaf)
            leaf_ids = np.flatnonzero(is_leaf)
            new_index[internal_ids] = len(feature) + np.arange(len(internal_ids))
            new_index[leaf_ids] = -1 - (len(leaf_value) + np.arange(len(leaf_ids)))
            roots.append(int(new_index[0]))
            internal = nodes[internal_ids]
            feature += internal["feature_idx"].tolist()
            threshold += internal["num_threshold"].tolist()
            missing_left += internal["missing_go_to_left"].astype(bool).tolist()
            left += new_index[internal["left"]].tolist()
            right += new_index[internal["right"]].tolist()
            leaf_value += nodes[leaf_ids]["value"].tolist()
        n_features = int(model.n_features_in_)
        if n_features > np.iinfo(np.int16).max:
            raise ValueError(f"too many features to compact: {n_features}")
        return cls(
            baseline=float(np.asarray(model._baseline_prediction).ravel()[0]),
            feature=np.asarray(feature, dtype=np.int16),
            threshold=np.asarray(threshold, dtype=np.float64),
            missing_left=np.asarray(missing_left, dtype=np.bool_),
            left=np.asarray(left, dtype=np.int32),
            right=np.asarray(right, dtype=np.int32),
            leaf_value=np.asarray(leaf_value, dtype=np.float64),
            roots=np.asarray(roots, dtype=np.int32),
            n_features=n_features,
        )

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (what a status page or a benchmark reports)."""
        arrays = (self.feature, self.threshold, self.missing_left, self.left, self.right)
        return sum(a.nbytes for a in arrays) + self.leaf_value.nbytes + self.roots.nbytes

    def predict_one(self, row: FloatArray) -> float:
        """The prediction for one row of ``n_features`` values, as ``predict`` gives it.

        The live loop and replay forecast one row per poll. A numpy walk pays a dozen array
        operations per tree level whatever the row count; one row walks faster in plain
        Python over ``array``s (compact like the numpy arrays: 8 bytes a threshold). The
        comparisons and the order of the sum are ``predict``'s, so the result is the same
        to the bit (tests check it)."""
        if len(row) != self.n_features:
            raise ValueError(f"expected {self.n_features} features, got {len(row)}")
        walk = self._walk
        if walk is None:
            from array import array

            walk = self._walk = (
                array("h", self.feature.tolist()),
                array("d", self.threshold.tolist()),
                array("b", self.missing_left.tolist()),
                array("i", self.left.tolist()),
                array("i", self.right.tolist()),
                array("d", self.leaf_value.tolist()),
                self.roots.tolist(),
            )
        feature, threshold, missing_left, left, right, leaf_value, roots = walk
        values = [float(v) for v in row]
        total = self.baseline
        for node in roots:
            while node >= 0:
                value = values[feature[node]]
                if value != value:  # NaN: the side the tree learned
                    node = left[node] if missing_left[node] else right[node]
                elif value <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            total += leaf_value[-1 - node]
        return total

    def predict(self, x: FloatArray) -> FloatArray:
        """Predictions for the rows of ``x`` (shape rows x ``n_features``)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got {x.shape}")
        rows = x.shape[0]
        if rows == 0:
            return np.empty(0, dtype=np.float64)
        node = np.tile(self.roots.astype(np.int64), (rows, 1))  # rows x trees
        row_of = np.repeat(np.arange(rows), len(self.roots)).reshape(rows, -1)
        walking = np.flatnonzero(node.ravel() >= 0)
        flat_node, flat_row = node.ravel(), row_of.ravel()
        while len(walking):
            at = flat_node[walking]
            value = x[flat_row[walking], self.feature[at]]
            go_left = np.where(np.isnan(value), self.missing_left[at], value <= self.threshold[at])
            flat_node[walking] = np.where(go_left, self.left[at], self.right[at])
            walking = walking[flat_node[walking] >= 0]
        leaves = self.leaf_value[-1 - flat_node].reshape(rows, -1)
        # The trees' values added in order after the baseline, as scikit-learn adds them
        # (cumsum is sequential; a pairwise sum could differ in the last bit).
        terms = np.concatenate((np.full((rows, 1), self.baseline), leaves), axis=1)
        out: FloatArray = np.cumsum(terms, axis=1)[:, -1]
        return out
