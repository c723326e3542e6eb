"""The value syntaxes of the objects imported, parsed as their owners parse them.

KEDA trigger metadata is a map of strings (``lagThreshold: "50"``), read with Go's
``strconv`` (``ParseInt``, ``ParseBool``, ``ParseFloat``) and, for durations, Go's
``time.ParseDuration`` or a number of milliseconds. HPA targets and tolerances are
Kubernetes quantities (``500m``, ``2k``, ``1Ki``). A hand-written file may give YAML numbers
or booleans where the API server would hold strings: they are read the same way.

A value that does not parse raises :class:`BadValueError`, whose message says what was
expected; the caller names the key and the object.
"""

from __future__ import annotations

import math
import re

_GO_BOOLEANS = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}
_GO_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_GO_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_GO_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))([eE][+-]?[0-9]+|[a-zA-Z]*)$")
_QUANTITY_SUFFIXES = {
    "": 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}


class BadValueError(ValueError):
    """A value that its owner (KEDA, Kubernetes) would refuse; the message says why."""


def text(value: object) -> str:
    """A metadata value as the string the API server holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value).strip()
    raise BadValueError("must be a string")


def integer(value: object) -> int:
    """Go's ``strconv.ParseInt(s, 10, 64)``."""
    raw = text(value)
    if not _GO_INTEGER.match(raw):
        raise BadValueError(f"{raw!r} is not an integer")
    return int(raw)


def boolean(value: object) -> bool:
    """Go's ``strconv.ParseBool``."""
    raw = text(value)
    if raw not in _GO_BOOLEANS:
        raise BadValueError(f"{raw!r} is not true or false")
    return _GO_BOOLEANS[raw]


def number(value: object) -> float:
    """Go's ``strconv.ParseFloat(s, 64)``, finite."""
    raw = text(value)
    try:
        parsed = float(raw)
    except ValueError:
        raise BadValueError(f"{raw!r} is not a number") from None
    if not math.isfinite(parsed):
        raise BadValueError(f"{raw!r} is not a finite number")
    return parsed


def duration_seconds(value: object) -> float:
    """KEDA's durations: Go's ``time.ParseDuration`` (``30s``, ``1m30s``), else a number of
    milliseconds."""
    raw = text(value)
    if _GO_INTEGER.match(raw):
        return int(raw) / 1000.0
    body = raw.lstrip("+")
    parts = _GO_DURATION_PART.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        raise BadValueError(f"{raw!r} is neither a duration (30s, 1m) nor milliseconds")
    return sum(float(amount) * _GO_DURATION_UNITS[unit] for amount, unit in parts)


def quantity(value: object) -> float:
    """A Kubernetes ``resource.Quantity`` (``100``, ``1.5``, ``500m``, ``2k``, ``1Ki``,
    ``1e3``) as a number."""
    raw = text(value)
    match = _QUANTITY.match(raw)
    if match is None:
        raise BadValueError(f"{raw!r} is not a Kubernetes quantity")
    digits, suffix = match.groups()
    if suffix[:1] in ("e", "E"):
        return float(digits + suffix)
    if suffix not in _QUANTITY_SUFFIXES:
        raise BadValueError(f"{raw!r} has an unknown suffix {suffix!r}")
    return float(digits) * _QUANTITY_SUFFIXES[suffix]
