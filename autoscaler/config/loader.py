"""Load the configuration file: every problem found, or a validated, frozen config.

The steps are independent on purpose, so that one failing does not hide the others: the
schema validation (pydantic, :mod:`.messages`), the cross-section checks (:mod:`.references`)
and the YAML-level duplicate-key check (:mod:`.source`) all run, and their problems are
reported together, in file order, each with its path and line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from pydantic import ValidationError

from autoscaler.config.errors import ConfigError, Finding, Problem, render_path
from autoscaler.config.messages import translate
from autoscaler.config.model import AutoscalerConfig
from autoscaler.config.references import check_references
from autoscaler.config.source import Positions, parse_yaml, read_text

# Sections whose every value is secret, and key names whose value is: their strings are
# scrubbed from every message, whatever check produced it.
_SECRET_SECTIONS = frozenset({"sasl", "headers"})
_SECRET_KEY = re.compile(r"pass|secret|token|credential|auth|api_?key", re.IGNORECASE)
_REDACTED = "<redacted>"


def load_config(path: str | os.PathLike[str]) -> AutoscalerConfig:
    """Read, parse and validate the YAML file at ``path``.

    Raises:
        ConfigError: with every problem found, each located by path, line and column.
    """
    source = os.fspath(path)
    document = parse_yaml(read_text(path), source)
    return _validate(document.data, source, document.positions, document.problems)


def parse_config(data: object, source: str = "<config>") -> AutoscalerConfig:
    """Validate already-parsed data (from YAML, JSON, a test...); problems carry no line.

    Raises:
        ConfigError: with every problem found, each located by path.
    """
    return _validate(data, source, None, [])


def _validate(
    data: object, source: str, positions: Positions | None, problems: list[Problem]
) -> AutoscalerConfig:
    findings: list[Finding] = []
    config: AutoscalerConfig | None = None
    try:
        config = AutoscalerConfig.model_validate(data)
    except ValidationError as error:
        findings.extend(translate(error, data))
    except RecursionError:
        findings.append(Finding((), "the configuration refers to itself (a recursive alias)"))
    findings.extend(check_references(data))
    located = [*problems, *(_locate(finding, positions) for finding in findings)]
    if located or config is None:
        located = _redact(_dedupe(located), _secrets(data))
        located.sort(key=lambda p: (p.line is None, p.line or 0, p.column or 0))
        raise ConfigError(located or [Problem("<config>", "is not valid")], source)
    return config


def _locate(finding: Finding, positions: Positions | None) -> Problem:
    position = positions.locate(finding) if positions is not None else None
    line, column = position if position is not None else (None, None)
    return Problem(render_path(finding.shown_path), finding.message, line, column)


def _dedupe(problems: Iterable[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for problem in problems:
        if (problem.path, problem.message) not in seen:
            seen.add((problem.path, problem.message))
            unique.append(problem)
    return unique


def _secrets(data: object) -> set[str]:
    """Every string value that is or may be a secret, anywhere in ``data``.

    Messages never copy input values by design; this is the safety net should a validator
    ever do so (``'...' is not host:port`` echoes its input, for one).
    """
    found: set[str] = set()
    seen: set[int] = set()  # YAML aliases can make the data recursive
    stack: list[tuple[object, bool]] = [(data, False)]
    while stack:
        value, secret = stack.pop()
        if isinstance(value, dict | list):
            if id(value) in seen:
                continue
            seen.add(id(value))
        if isinstance(value, dict):
            for key, item in value.items():
                inner = secret or (
                    isinstance(key, str)
                    and (key in _SECRET_SECTIONS or bool(_SECRET_KEY.search(key)))
                )
                stack.append((item, inner))
        elif isinstance(value, list):
            stack.extend((item, secret) for item in value)
        elif secret and isinstance(value, str) and len(value) >= 4:
            found.add(value)
    return found


def _redact(problems: list[Problem], secrets: set[str]) -> list[Problem]:
    if not secrets:
        return problems
    # One pattern for every secret, the longest first (so that a secret containing another is
    # replaced whole), applied once per message: not one substitution per secret per message.
    # Whole words only: a username "kafka" must not mangle "kafka_clusters".
    alternatives = "|".join(re.escape(secret) for secret in sorted(secrets, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")
    return [
        Problem(problem.path, pattern.sub(_REDACTED, problem.message), problem.line, problem.column)
        for problem in problems
    ]
