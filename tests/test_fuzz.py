"""Property-based fuzzing of the two readers of user input: the config loader and the replay
CSV reader. Whatever the input, they return a value or raise the project's own error (one
that the commands print as one line), never anything else, and within a time bound."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoscaler.config import ConfigError, load_config
from autoscaler.traces import TraceError, load_csv

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = yaml.safe_load((ROOT / "config.example.yaml").read_text())
FUZZ = settings(
    max_examples=150,
    deadline=3000,  # ms per example: the readers are linear, a hang shows up here
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(string.ascii_lowercase + "_", max_size=12), children, max_size=5),
    ),
    max_leaves=40,
)


def _mutations() -> st.SearchStrategy[dict[str, Any]]:
    """The example config with one key of a target replaced by an arbitrary value: close
    enough to valid that the deep validators run."""
    target_keys = sorted(EXAMPLE["targets"][0])

    def mutate(key: str, value: object) -> dict[str, Any]:
        document = yaml.safe_load(yaml.safe_dump(EXAMPLE))
        document["targets"][0][key] = value
        return document  # type: ignore[no-any-return]

    return st.builds(mutate, st.sampled_from(target_keys), documents)


def _load(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    refused: ConfigError | None = None
    try:
        load_config(path)
    except ConfigError as error:
        refused = error
    if refused is not None:
        assert refused.problems
        assert all("\n" not in str(problem) for problem in refused.problems)


@FUZZ
@given(documents)
def test_any_yaml_document_is_a_config_or_a_config_error(tmp_path: Path, data: object) -> None:
    _load(tmp_path, yaml.safe_dump(data))


@FUZZ
@given(_mutations())
def test_a_mutated_example_is_a_config_or_a_config_error(
    tmp_path: Path, document: dict[str, Any]
) -> None:
    _load(tmp_path, yaml.safe_dump(document))


@FUZZ
@given(st.text(max_size=400))
def test_any_text_is_a_config_or_a_config_error(tmp_path: Path, text: str) -> None:
    _load(tmp_path, text)


rows = st.lists(
    st.tuples(
        st.one_of(
            st.integers(min_value=-(10**13), max_value=10**15).map(str),
            st.floats(allow_nan=True).map(repr),
            st.text(max_size=12),
        ),
        st.one_of(st.floats(allow_nan=True).map(repr), st.integers().map(str), st.text(max_size=8)),
    ),
    max_size=60,
)


@FUZZ
@given(rows)
def test_any_rows_are_a_trace_or_a_trace_error(
    tmp_path: Path, table: list[tuple[str, str]]
) -> None:
    path = tmp_path / "history.csv"
    path.write_text("timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in table), encoding="utf-8")
    message = None
    try:
        trace = load_csv(path)
    except TraceError as error:
        message = str(error)
    if message is None:
        assert len(trace.rates) >= 2
    else:
        assert "\n" not in message


@FUZZ
@given(st.binary(max_size=600))
def test_any_bytes_are_a_trace_or_a_trace_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "history.csv"
    path.write_bytes(content)
    message = ""
    try:
        load_csv(path)
    except TraceError as error:
        message = str(error)
    assert "\n" not in message
