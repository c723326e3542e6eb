"""``partition_limitation``: KEDA's syntax (its own test vectors first), and where we are
stricter. The messages a user reads are in tests/test_config_loader.py."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.config.model import KafkaLagTrigger
from autoscaler.config.partitions import PartitionSet, parse_partition_limitation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # KEDA's TestKafkaParsePartitionLimitation (pkg/scalers/kafka_scaler_test.go).
        pytest.param("1", [1], id="keda-single-value"),
        pytest.param("1,2,3,4", [1, 2, 3, 4], id="keda-comma-separated-list"),
        pytest.param(" 1 , 2 , 3 ", [1, 2, 3], id="keda-whitespace-around-values"),
        pytest.param("1-4", [1, 2, 3, 4], id="keda-simple-range"),
        pytest.param("3-3", [3], id="keda-single-element-range"),
        pytest.param(" 1 - 4 ", [1, 2, 3, 4], id="keda-range-with-whitespace"),
        pytest.param("1-4,8,10-12", [1, 2, 3, 4, 8, 10, 11, 12], id="keda-mixed"),
        # KEDA's documented example, and what its membership test allows.
        pytest.param("1,2,10-20,31", [1, 2, *range(10, 21), 31], id="keda-docs-example"),
        pytest.param("5,0-3,2,4", [0, 1, 2, 3, 4, 5], id="overlaps-and-repeats"),
        pytest.param("007", [7], id="leading-zeros"),
    ],
)
def test_keda_syntax(text: str, expected: list[int]) -> None:
    partitions = parse_partition_limitation(text)
    assert partitions is not None
    assert [p for p in range(40) if p in partitions] == expected


@pytest.mark.parametrize("text", ["", "   ", "\t"])
def test_blank_limits_nothing_as_in_keda(text: str) -> None:
    assert parse_partition_limitation(text) is None


@pytest.mark.parametrize(
    "text",
    [
        # KEDA's error cases.
        pytest.param("a,b,c", id="keda-non-numeric"),
        pytest.param("1-2-3", id="keda-too-many-parts"),
        pytest.param("a-3", id="keda-non-numeric-start"),
        pytest.param("1-b", id="keda-non-numeric-end"),
        pytest.param("1,,2", id="keda-empty-item"),
        pytest.param("1,", id="keda-trailing-comma"),
        pytest.param("-1", id="keda-negative"),
        pytest.param("2147483648", id="keda-past-int32"),
        pytest.param("1 2", id="keda-inner-space"),
        # Stricter than KEDA: its loop reads a reversed range as no partition, and
        # strconv.ParseInt takes a sign.
        pytest.param("20-10", id="reversed-range"),
        pytest.param("+3", id="sign"),
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_partition_limitation(text)


def test_ranges_stay_ranges() -> None:
    """KEDA expands a range into a list; the widest one is two ranges here, not 2**31 ints."""
    partitions = parse_partition_limitation("0-2147483647, 5")
    assert partitions == PartitionSet(((0, 2**31 - 1),))
    assert 2**31 - 1 in partitions
    assert -1 not in partitions
    assert str(parse_partition_limitation("10-20,1,2,31")) == "1-2,10-20,31"


def _trigger(**settings: Any) -> KafkaLagTrigger:
    return KafkaLagTrigger.model_validate(
        {"type": "kafka_lag", "cluster": "main", "consumer_group": "g", **settings},
        strict=False,
    )


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        pytest.param({}, None, id="unset"),
        pytest.param({"topics": ["t"], "partition_limitation": "1-3"}, "1-3", id="range"),
        # YAML reads a lone partition as a number.
        pytest.param({"topics": ["t"], "partition_limitation": 4}, "4", id="yaml-number"),
        # Blank is KEDA's "every partition", so it needs no topics.
        pytest.param({"partition_limitation": " "}, None, id="blank-without-topics"),
    ],
)
def test_trigger_limited_partitions(settings: dict[str, Any], expected: str | None) -> None:
    limited = _trigger(**settings).limited_partitions
    assert (None if limited is None else str(limited)) == expected
