"""KEDA's ``partitionLimitation``: which partitions of a trigger's topics count.

The syntax is KEDA's (``parsePartitionLimitation`` in pkg/scalers/kafka_scaler.go):
partition numbers and inclusive ranges, separated by commas, whitespace around an item and
around a range's dash ignored: ``"1,2,10-20,31"``. A blank text limits nothing, as in KEDA.
Overlaps and repeats are fine (KEDA tests membership).

Stricter than KEDA, so that a typo is an error and not a quietly different set:

* a reversed range (``20-10``) is refused; KEDA's loop reads it as no partition at all;
* a number is plain decimal digits: KEDA's ``strconv.ParseInt`` also takes ``+3``.

Ranges stay ranges (KEDA expands them into a list: ``0-2147483647`` is two billion items).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PARTITION_MAX", "PartitionSet", "parse_partition_limitation"]

PARTITION_MAX = 2**31 - 1
"""Kafka partition numbers are int32 (KEDA parses them with ``ParseInt(..., 32)``)."""

_NUMBER = re.compile(r"[0-9]+")
_SYNTAX = "e.g. 1,2,10-20,31"


@dataclass(frozen=True, slots=True)
class PartitionSet:
    """Partition numbers as sorted, disjoint, inclusive ``(first, last)`` ranges."""

    ranges: tuple[tuple[int, int], ...]

    def __contains__(self, partition: object) -> bool:
        return isinstance(partition, int) and any(
            first <= partition <= last for first, last in self.ranges
        )

    def __str__(self) -> str:
        return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in self.ranges)


def parse_partition_limitation(text: str) -> PartitionSet | None:
    """The partitions ``text`` names; None when it is blank (no limitation).

    Raises:
        ValueError: naming the first item that is not a partition number or a range.
    """
    if not text.strip():
        return None
    ranges: list[tuple[int, int]] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise ValueError(f"has an empty item: a stray comma? ({_SYNTAX})")
        if item.startswith("-") and _NUMBER.fullmatch(item[1:].strip()):
            raise ValueError(f"'{item}' is negative: partitions are numbered from 0")
        if "-" in item:
            sides = item.split("-")
            if len(sides) != 2:
                raise ValueError(f"'{item}' is not a range like 10-20 ({_SYNTAX})")
            first, last = (_partition(side.strip(), item) for side in sides)
            if first > last:
                raise ValueError(f"'{item}' is a reversed range: write {last}-{first}")
        else:
            first = last = _partition(item, item)
        ranges.append((first, last))
    return PartitionSet(_merged(ranges))


def _partition(number: str, item: str) -> int:
    if not _NUMBER.fullmatch(number):
        raise ValueError(f"'{item}' is not a partition number or range ({_SYNTAX})")
    value = int(number)
    if value > PARTITION_MAX:
        raise ValueError(f"'{item}' is above the largest partition number, {PARTITION_MAX}")
    return value


def _merged(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return tuple(merged)
