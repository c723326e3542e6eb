"""The YAML reader's two parsers read a config alike.

Valid files are parsed by libyaml (``source._LibyamlLoader``, several times faster) and
everything else by PyYAML, as before. These tests hold the claim that makes this safe:
for any text the fast path takes (``_libyaml_may_differ`` is false), libyaml accepts it
exactly when PyYAML does and gives the same nodes (tag, value, line and column), so that
the config, its problems and their positions do not depend on which parser ran.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from autoscaler.config import ConfigError
from autoscaler.config.source import _libyaml_may_differ, _LibyamlLoader, parse_yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = (ROOT / "config.example.yaml").read_text(encoding="utf-8")

SEEDS = [
    EXAMPLE[2000:7000],
    "a: 1\nb: [x, y, {c: d}]\ne:\n  - f: 'g'\n    h: \"i\\n\"\n  - |\n    lit\n  - >\n"
    "    fold\nk: &a {m: 1}\nn:\n  <<: *a\n  o: 2\n",
    "- a\n- {b: c}\n- [d, e]\n",
]
PIECES = [
    *" \n:-[]{},#&*|>'\"%@`\\\r",
    "|#", ">-", "|2", "<<: ", "*a", "&b ", "\n- ", "\n    ", "''", ": ", " :",
    "?", "x?", " ?", "# ok?\n", "\n# why?",
    "ab", "x: y", "  ", "\n  ", "- ", "---", "...", "é", "\x85", "\u2028",
]  # fmt: skip


def _nodes(root: Node | None) -> list[tuple[object, ...]]:
    """Every node of the graph, in document order: kind, tag, scalar value, start."""
    found: list[tuple[object, ...]] = []
    stack = [root] if root is not None else []
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        value = node.value if isinstance(node, ScalarNode) else None
        mark = node.start_mark
        found.append((type(node).__name__, node.tag, value, mark.line, mark.column))
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            stack.extend(part for pair in reversed(node.value) for part in reversed(pair))
        elif isinstance(node, SequenceNode):
            stack.extend(reversed(node.value))
    return found


def _read(loader: type[yaml.SafeLoader] | type[_LibyamlLoader], text: str) -> object:
    try:
        return _nodes(loader(text).get_single_node())
    except yaml.YAMLError:
        return "refused"


def _mutated(rng: random.Random) -> str:
    text = rng.choice(SEEDS)
    for _ in range(rng.randint(1, 4)):
        at, operation = rng.randrange(len(text) + 1), rng.random()
        if operation < 0.4:
            text = text[:at] + rng.choice(PIECES) + text[at:]
        elif operation < 0.7:
            text = text[:at] + text[at + rng.randint(1, 3) :]
        elif operation < 0.85:
            text = text[:at] + rng.choice(PIECES) + text[at + 1 :]
        else:
            lines = text.split("\n")
            line = rng.randrange(len(lines))
            lines.insert(rng.randrange(len(lines)), " " * rng.randint(0, 3) + lines[line].lstrip())
            text = "\n".join(lines)
    return text


def test_libyaml_reads_mutated_configs_as_pyyaml_does() -> None:
    rng = random.Random(20240607)
    compared = accepted = 0
    for _ in range(4000):
        text = _mutated(rng)
        if _libyaml_may_differ(text):
            continue  # read by PyYAML alone
        expected = _read(yaml.SafeLoader, text)
        assert _read(_LibyamlLoader, text) == expected, repr(text)
        compared += 1
        accepted += expected != "refused"
    assert compared > 2500  # most mutations are compared, not routed away
    assert accepted > 300  # and some of them are still valid YAML


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a:\tb\n", id="tab-separator"),
        pytest.param("a: b\tc\n", id="tab-in-plain-scalar"),
        pytest.param("a: {b?: c}\n", id="question-mark-in-flow"),
        pytest.param("a: [\n  x?,\n  y\n]\n", id="question-mark-in-a-flow-of-lines"),
        pytest.param("a: 1\n?", id="empty-complex-key"),
        pytest.param("- !\n- x\n", id="bare-tag"),
        pytest.param("a: [!x, y]\n", id="tag-before-comma"),
        pytest.param("a: |#\n  x\n", id="comment-after-block-indicator"),
        pytest.param("a: {b: }\n", id="empty-value-in-flow"),
        pytest.param("a: \x01\n", id="control-character"),
    ],
)
def test_what_libyaml_reads_otherwise_goes_to_pyyaml(text: str) -> None:
    """Each case read differently by the two (found by the mutation test before routing)."""
    assert _libyaml_may_differ(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(EXAMPLE, id="example"),
        pytest.param('q: sum(rate(x{job!="a", le=~".*"}[5m])) > 0\n', id="promql"),
        pytest.param("a: [b, c]\nd: {e: f}\ng: []\nh: {}\n", id="flow"),
        pytest.param("# why not 10?\na: 1\n  # or 20?\n", id="question-in-a-comment-line"),
    ],
)
def test_a_config_takes_the_fast_path(text: str) -> None:
    assert not _libyaml_may_differ(text)
    assert _read(_LibyamlLoader, text) == _read(yaml.SafeLoader, text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a: " + "[" * 200_000 + "]" * 200_000 + "\n", id="flow"),
        pytest.param("a:\n" + "".join(f"{'  ' * i}b{i}:\n" for i in range(1500)), id="block"),
    ],
)
def test_deep_nesting_is_a_problem_not_a_crash(text: str) -> None:
    """libyaml's own composer (yaml.CSafeLoader) is C recursion: this crashed the process."""
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text)
    assert [p.message for p in caught.value.problems] == ["invalid YAML: nested too deeply"]
