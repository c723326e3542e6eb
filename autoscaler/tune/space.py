"""The settings ``tune`` searches, and how one of them changes a target.

A ``Setting`` is what a user would change in the target's YAML: the predictor and either its
upper quantile or an SLO budget that adapts the quantile online (``slo.budget_percent``, a
share of the user's budget: spending less of it on the tuning part leaves a margin for the
part it is scored on), the spare capacity (``slo.target_utilization``), the dwell time between
changes, the smallest change (``actuation.min_step``), the forecast's lead margin and the
scale-up and scale-down stabilization windows. The grid is fixed and generic (the same
for every history, never fitted to one); ``sample`` draws a deterministic subset of it.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from dataclasses import dataclass
from typing import Any

from autoscaler.config.model import TargetConfig
from autoscaler.replay.runs import with_model
from predictors.registry import has_calibrated_quantiles

MODELS = ("none", "linear", "seasonal_ridge", "holt_winters")
QUANTILES = (0.5, 0.8, 0.95)
BUDGET_SHARES = (1.0, 0.5, 0.25)
"""Budgets tried, as shares of the user's budget (``slo.budget_percent``)."""
UTILIZATIONS = (1.0, 0.85, 0.7, 0.55)
DWELL_SECONDS = (0.0, 120.0, 300.0, 600.0, 900.0)
SCALE_DOWN_WINDOWS = (60, 300, 600)
SCALE_UP_WINDOWS = (0, 60, 180)
MIN_STEPS = (1, 2, 3, 5)
LEAD_MARGINS = (0.0, 30.0, 120.0)
EVENT_COSTS: tuple[float | None, ...] = (None, 10.0, 30.0)
"""``planner.scale_event_cost_seconds`` tried; None: ``planner: none`` (sized per poll).
``sample`` tries each drawn setting with every one of them (paired: the same setting sized
and planned), so the comparison is never left to the luck of the draw."""


@dataclass(frozen=True)
class Setting:
    """One point of the search."""

    model: str
    quantile: float
    target_utilization: float
    min_dwell_seconds: float
    scale_down_window_seconds: int
    budget_percent: float = 0.0
    """``slo.budget_percent`` (the quantile adapts from ``quantile``); 0: no budget."""
    min_step: int = 1
    lead_margin_seconds: float = 30.0
    scale_up_window_seconds: int = 0
    event_cost_seconds: float | None = 10.0
    """``planner.scale_event_cost_seconds``; None: ``planner: none``. A setting without a
    forecast (model ``none``) has no path to plan on: always None."""

    @property
    def forecast_key(self) -> tuple[str, float, float]:
        """What the recorded forecasts depend on (the rest only changes the decisions): the
        model and the lead time, and the quantile only for a model whose quantiles are not
        calibrated (the others' forecasts carry every quantile: one recording serves all)."""
        if self.model == "none":
            return ("none", 0.0, 0.0)
        quantile = 0.0 if has_calibrated_quantiles(self.model) else self.quantile
        return (self.model, quantile, self.lead_margin_seconds)

    @property
    def label(self) -> str:
        q = "" if self.model == "none" else f" q{self.quantile:g}"
        if self.budget_percent:
            q = f" budget{self.budget_percent:g}%"
        lead = "" if self.model == "none" else f" lead+{self.lead_margin_seconds:g}"
        plan = "" if self.model == "none" else " sized"
        if self.event_cost_seconds is not None and self.model != "none":
            plan = f" plan{self.event_cost_seconds:g}"
        return (
            f"{self.model}{q}{lead}{plan} u{self.target_utilization:g}"
            f" dwell{self.min_dwell_seconds:g} step{self.min_step}"
            f" up{self.scale_up_window_seconds} down{self.scale_down_window_seconds}"
        )

    def fragment(self, current_model: str | None = None) -> dict[str, Any]:
        """The target keys this setting sets, as they go in the YAML file. When the model
        differs from ``current_model``, its ``params`` are emptied: the old model's would
        not fit the new one, and the search ran the new one with its defaults.
        ``slo.budget_percent`` is written only when the setting has a budget, never as null
        over one the user set (``TuneResult.keeps_budget``: such a setting is not
        recommended to a target with a budget)."""
        predictor: dict[str, Any] = {"model": self.model}
        if self.model != "none":
            predictor["quantile"] = self.quantile
            predictor["lead_margin_seconds"] = self.lead_margin_seconds
        if self.model != current_model:
            predictor["params"] = {}
        return {
            "predictor": predictor,
            "slo": {
                "target_utilization": self.target_utilization,
                **({"budget_percent": self.budget_percent} if self.budget_percent else {}),
            },
            "actuation": {"min_dwell_seconds": self.min_dwell_seconds, "min_step": self.min_step},
            "planner": "none"
            if self.event_cost_seconds is None
            else {"enabled": True, "scale_event_cost_seconds": self.event_cost_seconds},
            "behavior": {
                "scale_up": {"stabilization_window_seconds": self.scale_up_window_seconds},
                "scale_down": {"stabilization_window_seconds": self.scale_down_window_seconds},
            },
        }


def apply(target: TargetConfig, setting: Setting) -> TargetConfig:
    """``target`` with ``setting``'s keys; everything else as configured."""
    predictor = with_model(target, setting.model).predictor
    if setting.model != "none":
        predictor = predictor.model_copy(
            update={
                "quantile": setting.quantile,
                "lead_margin_seconds": setting.lead_margin_seconds,
            }
        )
    down = target.behavior.scale_down.model_copy(
        update={"stabilization_window_seconds": setting.scale_down_window_seconds}
    )
    up = target.behavior.scale_up.model_copy(
        update={"stabilization_window_seconds": setting.scale_up_window_seconds}
    )
    return target.model_copy(
        update={
            "predictor": predictor,
            "slo": target.slo.model_copy(
                update={
                    "target_utilization": setting.target_utilization,
                    "budget_percent": setting.budget_percent or None,
                }
            ),
            "actuation": target.actuation.model_copy(
                update={
                    "min_dwell_seconds": setting.min_dwell_seconds,
                    "min_step": setting.min_step,
                }
            ),
            "behavior": target.behavior.model_copy(update={"scale_up": up, "scale_down": down}),
            "planner": target.planner.model_copy(
                update={"enabled": False}
                if setting.event_cost_seconds is None
                else {"enabled": True, "scale_event_cost_seconds": setting.event_cost_seconds}
            ),
        }
    )


def grid(models: tuple[str, ...] = MODELS, budget_pct: float | None = None) -> list[Setting]:
    """Every setting of the grid for ``models`` (``none`` has no quantile, nor a budget);
    with the user's ``budget_pct``, each model also with budgets that share of it."""
    headroom: list[tuple[float, float]] = [(q, 0.0) for q in QUANTILES]
    if budget_pct is not None:
        headroom += [(0.9, round(budget_pct * share, 6)) for share in BUDGET_SHARES]
    settings = set()
    for model, (q, budget), u, dwell, down, step, lead, up, cost in itertools.product(
        models,
        headroom,
        UTILIZATIONS,
        DWELL_SECONDS,
        SCALE_DOWN_WINDOWS,
        MIN_STEPS,
        LEAD_MARGINS,
        SCALE_UP_WINDOWS,
        EVENT_COSTS,
    ):
        if model == "none":
            q, budget, lead, cost = 0.9, 0.0, 30.0, None
        settings.add(Setting(model, q, u, dwell, down, budget, step, lead, up, cost))
    return sorted(settings, key=_order)


def _order(setting: Setting) -> tuple[Any, ...]:
    """A total order (None, planner: none, first among the event costs)."""
    cost = setting.event_cost_seconds
    return (*dataclasses.astuple(setting)[:-1], -1.0 if cost is None else cost)


def sample(
    count: int,
    models: tuple[str, ...] = MODELS,
    seed: int = 12,
    budget_pct: float | None = None,
) -> list[Setting]:
    """``count`` settings of the grid (all of it if smaller), the same for the same call:
    settings drawn without their planner, each then tried with every ``EVENT_COSTS`` (a
    model ``none`` has no path to plan on: once), until there are ``count``."""
    everything = grid(models, budget_pct)
    if count >= len(everything):
        return everything
    bases = sorted(
        {dataclasses.replace(s, event_cost_seconds=None) for s in everything}, key=_order
    )
    random.Random(seed).shuffle(bases)
    chosen: list[Setting] = []
    for base in bases:
        costs = (None,) if base.model == "none" else EVENT_COSTS
        for cost in costs:
            if len(chosen) < count:
                chosen.append(dataclasses.replace(base, event_cost_seconds=cost))
        if len(chosen) >= count:
            break
    return sorted(chosen, key=_order)
