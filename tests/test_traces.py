"""Replay history from CSV: formats accepted, and one clear line for everything else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autoscaler.traces import TraceError, load_csv, parse_timestamp


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "kind", "start", "step", "rates"),
    [
        pytest.param(
            "timestamp,value\n2015-02-26T21:42:53Z,600\n2015-02-26T21:47:53Z,300\n",
            "count",
            1424986973.0,
            300.0,
            [2.0, 1.0],
            id="iso-counts-per-row",
        ),
        pytest.param(
            "timestamp,value\n1000,5\n1060,7\n1120,9\n",
            "rate",
            1000.0,
            60.0,
            [5.0, 7.0, 9.0],
            id="unix-seconds-rates",
        ),
        pytest.param(
            "Value,Timestamp\n5,1000\n7,1060\n",
            "rate",
            1000.0,
            60.0,
            [5.0, 7.0],
            id="columns-in-any-order-and-case",
        ),
        pytest.param(
            "timestamp,value\n2024-01-01T00:00:00+01:00,60\n2024-01-01T00:01:00+01:00,60\n",
            "count",
            1704063600.0,
            60.0,
            [1.0, 1.0],
            id="iso-with-offset",
        ),
        pytest.param(
            "timestamp,value\n1000,1\n1060,2\n\n1120,3\n",
            "rate",
            1000.0,
            60.0,
            [1.0, 2.0, 3.0],
            id="blank-line-skipped",
        ),
    ],
)
def test_good_csv(
    tmp_path: Path, text: str, kind: str, start: float, step: float, rates: list[float]
) -> None:
    trace = load_csv(_write(tmp_path, text), kind)  # type: ignore[arg-type]
    assert trace.start == start
    assert trace.step == step
    np.testing.assert_allclose(trace.rates, rates)
    assert trace.warnings == ()


def test_gaps_are_interpolated_with_a_warning(tmp_path: Path) -> None:
    text = "timestamp,value\n0,10\n60,20\n240,50\n300,60\n360,70\n"
    trace = load_csv(_write(tmp_path, text), "rate")
    np.testing.assert_allclose(trace.rates, [10, 20, 30, 40, 50, 60, 70])
    assert trace.observed.tolist() == [True, True, False, False, True, True, True]
    assert len(trace.warnings) == 1
    assert "2 missing rows of 7" in trace.warnings[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(None, "file not found", id="missing"),
        pytest.param("", "the file is empty", id="empty"),
        pytest.param(
            "time,count\n1,2\n", "expected a header with columns timestamp,value", id="columns"
        ),
        pytest.param(
            "timestamp,value\n1000,abc\n", "trace.csv:2: value 'abc' is not a number", id="nan"
        ),
        pytest.param(
            "timestamp,value\nyesterday,1\n",
            "trace.csv:2: timestamp 'yesterday' is neither",
            id="time",
        ),
        pytest.param(
            "timestamp,value\n1000,-3\n1060,1\n",
            "trace.csv:2: value -3 must be a finite number >= 0",
            id="negative",
        ),
        pytest.param("timestamp,value\n1000,1\n", "needs at least 2 rows, found 1", id="one-row"),
        pytest.param(
            "timestamp,value\n1000,1\n1000,2\n", "duplicate timestamp at row 3", id="duplicate"
        ),
        pytest.param(
            "timestamp,value\n1060,1\n1000,2\n", "timestamps are not sorted: row 3", id="unsorted"
        ),
        pytest.param(
            "timestamp,value\n1000\n", "trace.csv:2: expected 2 columns, found 1", id="short-row"
        ),
    ],
)
def test_bad_csv_is_one_clear_line(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "trace.csv" if text is None else _write(tmp_path, text)
    with pytest.raises(TraceError) as error:
        load_csv(path, "rate")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("1700000000", 1700000000.0, id="unix"),
        pytest.param("1700000000.5", 1700000000.5, id="unix-fraction"),
        pytest.param("2023-11-14T22:13:20Z", 1700000000.0, id="iso-z"),
        pytest.param("2023-11-14T22:13:20", 1700000000.0, id="iso-naive-is-utc"),
        pytest.param("2023-11-14 23:13:20+01:00", 1700000000.0, id="iso-offset"),
    ],
)
def test_parse_timestamp(text: str, expected: float) -> None:
    assert parse_timestamp(text) == expected


def _minutes(count: int, start: float = 1_700_000_000.0) -> list[float]:
    return [start + 60.0 * i for i in range(count)]


def test_unix_milliseconds_are_recognized_with_a_warning(tmp_path: Path) -> None:
    """What Grafana exports: the same trace as in seconds, and a warning saying how it was
    read (in seconds it would hang allocating millennia of grid)."""
    seconds, millis = tmp_path / "s.csv", tmp_path / "ms.csv"
    rows = [(t, i % 7) for i, t in enumerate(_minutes(500))]
    seconds.write_text("timestamp,value\n" + "".join(f"{t:.0f},{v}\n" for t, v in rows))
    millis.write_text("timestamp,value\n" + "".join(f"{t * 1000:.0f},{v}\n" for t, v in rows))
    plain, converted = load_csv(seconds), load_csv(millis)
    assert (converted.start, converted.step) == (plain.start, plain.step)
    np.testing.assert_array_equal(converted.rates, plain.rates)
    assert converted.warnings == (f"{millis}: timestamps read as Unix milliseconds",)


def test_a_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    body = "".join(f"{t:.0f},3\n" for t in _minutes(10))
    path.write_bytes(b"\xef\xbb\xbf" + ("timestamp,value\n" + body).encode())
    assert len(load_csv(path).rates) == 10


def test_a_row_centuries_away_is_refused_before_anything_is_allocated(tmp_path: Path) -> None:
    path = tmp_path / "typo.csv"
    body = "".join(f"{t:.0f},3\n" for t in _minutes(100))
    path.write_text("timestamp,value\n" + body + "99999999999,5\n")
    with pytest.raises(TraceError) as caught:
        load_csv(path)
    message = str(caught.value)
    assert "points, at most 20,000,000; the widest gap is before row 102" in message
    assert "(5138-11-16T09:46:39Z)" in message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(256)) * 4, "not a UTF-8 text file"),
        (b"x" * 400 + b"\n1,2\n", "found '" + "x" * 57 + "...'"),
        (b"timestamp,value\n1,\x002\n", ":2: value '\\x002' is not a number"),
        (b'timestamp,value\n"a\nb",1\n', ":2: timestamp 'a\\nb' is neither ISO-8601"),
    ],
)
def test_garbage_is_one_short_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "garbage.csv"
    path.write_bytes(content)
    with pytest.raises(TraceError) as caught:
        load_csv(path)
    assert message in str(caught.value)
    assert len(str(caught.value)) < 200
    assert "\n" not in str(caught.value)
