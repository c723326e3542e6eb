"""Validation stays linear in the number of targets, checked without a clock.

Timings are the benchmark's (``benchmarks/validate_speed.py``); here two counts that do not
depend on the machine stand for them:

- the calls made in the ``autoscaler`` package while loading a config of 4N targets are
  about 4 times those for N: work per target that grows with the number of targets (one
  problem looked for among all problems, as ``translate`` once did) multiplies them;
- the string comparisons the cross-target checks make on a few thousand targets grow with
  the targets, not with their pairs: names, workloads and references are looked up in
  dicts and sets, not in lists.

What neither sees: a loop inside one C call over validated model values (``list.count`` in
a model validator, ``x in a_list``), which neither calls Python functions nor compares the
strings counted here (pydantic copies them into plain ``str``). The benchmark is the net
for that.
"""

from __future__ import annotations

import contextlib
import cProfile
import sys
from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # ``benchmarks`` is a folder of scripts, not an installed package
    sys.path.insert(0, str(ROOT))

from autoscaler.config import ConfigError, load_config, parse_config  # noqa: E402
from benchmarks.validate_speed import config_text  # noqa: E402

PACKAGE = str(ROOT / "autoscaler")


def _calls_in(prefix: str, work: Callable[[], object]) -> int:
    """Calls (generator resumptions included) of functions defined under ``prefix``."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        work()
    except ConfigError:
        pass
    finally:
        profiler.disable()
    return sum(
        entry.callcount
        for entry in profiler.getstats()  # per code object: two on one line stay two
        if isinstance(entry.code, CodeType) and entry.code.co_filename.startswith(prefix)
    )


def _load_calls(tmp_path: Path, targets: int, *, invalid: bool) -> int:
    path = tmp_path / f"{targets}-{invalid}.yaml"
    path.write_text(config_text(targets, invalid=invalid), encoding="utf-8")
    return _calls_in(PACKAGE, lambda: load_config(path))


@pytest.mark.parametrize(
    "invalid",
    [pytest.param(False, id="valid"), pytest.param(True, id="a-problem-in-every-target")],
)
def test_four_times_the_targets_is_four_times_the_calls(tmp_path: Path, invalid: bool) -> None:
    _load_calls(tmp_path, 10, invalid=invalid)  # imports and first-use caches out of the way
    small = _load_calls(tmp_path, 500, invalid=invalid)
    large = _load_calls(tmp_path, 2000, invalid=invalid)
    assert large / small < 4.4, (small, large)


def test_the_call_count_sees_a_quadratic_loop() -> None:
    """The check above can fail: a problem looked up among all problems, per problem."""

    def quadratic(items: list[int]) -> int:
        return sum(any(other == item for other in items) for item in items)

    small = _calls_in(__file__, lambda: quadratic(list(range(500))))
    large = _calls_in(__file__, lambda: quadratic(list(range(2000))))
    assert large / small > 8


class _Counted(str):
    """A string that counts how often it is compared for equality."""

    comparisons = 0

    def __eq__(self, other: object) -> bool:
        _Counted.comparisons += 1
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = str.__hash__


def _data(targets: int) -> dict[str, Any]:
    return {
        "kafka_clusters": {"main": {"bootstrap_servers": ["kafka:9092"]}},
        "targets": [
            {
                "name": _Counted(f"orders-{i}"),
                "namespace": _Counted(f"shop-{i % 5}"),
                "scale_target_ref": {"kind": _Counted("Deployment"), "name": _Counted(f"o-{i}")},
                "triggers": [
                    {
                        "type": "kafka_lag",
                        "cluster": _Counted("main"),
                        "consumer_group": _Counted(f"g-{i}"),
                    }
                ],
            }
            for i in range(targets)
        ],
    }


def _comparisons(work: Callable[[], object]) -> int:
    _Counted.comparisons = 0
    with contextlib.suppress(ConfigError):
        work()
    return _Counted.comparisons


def test_cross_target_checks_compare_each_target_a_few_times_not_with_every_other() -> None:
    targets = 3000
    data = _data(targets)
    assert _comparisons(lambda: parse_config(data)) <= 3 * targets


def test_the_comparison_count_sees_a_list_lookup() -> None:
    """The check above can fail: duplicate names looked for in a list, not a set."""

    def duplicates_in_a_list(data: dict[str, Any]) -> list[str]:
        seen: list[str] = []
        twice = []
        for target in data["targets"]:
            if target["name"] in seen:
                twice.append(target["name"])
            seen.append(target["name"])
        return twice

    targets = 3000
    data = _data(targets)
    assert _comparisons(lambda: duplicates_in_a_list(data)) > 100 * targets
