"""Pydantic's validation errors, rewritten as findings a user can act on.

Pydantic reports where *its* validators failed, which is not always where the user's key is:
locations carry discriminated-union tags (``kafka_lag``) and union member names
(``list[int]``), a failed list item also fails the list's length check, and messages are
written for programmers (``Input should be greater than 0``). This module walks each location
alongside the raw input data to recover the user's own path, and rewrites each message into
short plain English (``must be > 0``). Input values are never copied into a message: they may
be secrets.
"""

from __future__ import annotations

import difflib
import functools
import re
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from autoscaler.config.errors import Finding, KeyPath
from autoscaler.config.model import AutoscalerConfig, _check_identifier

# Keys users copy from KEDA ScaledObjects and HPA manifests whose snake_case form is not
# our key name (the ones that only differ by case, like ``lagThreshold``, need no entry).
_FOREIGN_KEYS = {
    "min_replica_count": "min_replicas",
    "max_replica_count": "max_replicas",
    "idle_replica_count": "idle_replicas",
    "cooldown_period": "cooldown_seconds",
    "polling_interval": "poll_interval_seconds",
    "threshold": "target_value",
    "server_address": "server",
    "ignore_null_values": "on_empty",
    "topic": "topics",
    "unsafe_ssl": "insecure_skip_verify",
    "custom_headers": "headers",
    "sasl_mechanism": "mechanism",
    "behaviour": "behavior",
}

# Targets get these from the top level (AutoscalerConfig._inherit_target_defaults); a bad
# top-level value then fails again in every target that did not set its own. It is reported
# once, at the top level, where the user wrote it.
_INHERITED = frozenset({"poll_interval_seconds", "dry_run"})

_TYPE_MESSAGES = {
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "finite_number": "must be a finite number (not .inf or .nan)",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
    "dict_type": "must be a mapping of keys to values",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "path_type": "must be a file path (a string)",
}

_BOUNDS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}

# What each union member tag stands for, when a value matches none of a union's members.
_MEMBER_NAMES = {
    "bool": "a boolean",
    "int": "a number",
    "float": "a number",
    "str": "a string",
    "list[int]": "a list of numbers",
    "list[float]": "a list of numbers",
    "list[str]": "a list of strings",
}

_SAFE_TAG = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


@dataclass
class _Resolved:
    """Where a pydantic location points in the user's data."""

    path: KeyPath
    union_path: KeyPath | None = None
    """Set when the location went through a plain union's member: the union's own path."""
    union_member: str | None = None
    inherited: bool = False


def translate(error: ValidationError, data: object) -> list[Finding]:
    """Every error of ``error`` as a finding on the user's path, in pydantic's order."""
    details = error.errors(include_url=False)
    with_item_errors = _lists_with_item_errors(details)
    findings: list[Finding] = []
    unions: dict[KeyPath, tuple[int, list[str]]] = {}
    for detail in details:
        if detail["type"] == "too_short" and detail["loc"] in with_item_errors:
            continue  # pydantic's "at least 1 item, not 0" for a list whose items all failed
        resolved = _resolve(detail, data)
        if resolved.inherited:
            continue
        if resolved.union_path is not None and resolved.union_member is not None:
            if resolved.union_path not in unions:
                unions[resolved.union_path] = (len(findings), [])
                findings.append(Finding(resolved.union_path, ""))
            unions[resolved.union_path][1].append(resolved.union_member)
            continue
        findings.extend(_findings(detail, resolved.path, data))
    for path, (index, members) in unions.items():
        findings[index] = Finding(path, _union_message(members))
    return findings


def _lists_with_item_errors(details: Sequence[ErrorDetails]) -> set[tuple[int | str, ...]]:
    """The location of every list with an error in one of its items: one pass over the
    errors, each location's prefixes once, however many errors the file has."""
    lists: set[tuple[int | str, ...]] = set()
    for detail in details:
        loc = detail["loc"]
        for depth in range(len(loc)):
            if isinstance(loc[depth], int):
                lists.add(loc[:depth])
    return lists


def _resolve(detail: ErrorDetails, data: object) -> _Resolved:
    """Follow ``detail``'s location through ``data``, dropping parts that are not user keys.

    A string part that is not a key of the current mapping is a union tag: either the value
    of the mapping's ``type`` (a discriminated union: one member was chosen, the errors are
    precise, the tag is just dropped) or a member name of a plain union (each member failed:
    the errors are grouped into one "must be a or b" finding at the union's path). The last
    part of a ``missing`` error is the absent key itself and is kept.
    """
    loc = detail["loc"]
    resolved = _Resolved(())
    path: list[str | int] = []
    current: object = data
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(current, dict):
            if part in current:
                # The key as written: pydantic reports a YAML key ``on`` (True) as 1.
                key = part if isinstance(part, str) else _actual_key(current, part)
                path.append(key)
                current = current[part]
                continue
            if current.get("type") == part:
                continue
            if last and detail["type"] == "missing":
                path.append(part)
                current = None
                continue
            if last and part in _INHERITED and len(path) == 2 and path[0] == "targets":
                resolved.inherited = True
                break
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
            continue
        if isinstance(part, str):
            if resolved.union_path is None:
                resolved.union_path = tuple(path)
                resolved.union_member = part
            continue
        path.append(part)
        current = None
    resolved.path = tuple(path)
    return resolved


def _findings(detail: ErrorDetails, path: KeyPath, data: object) -> list[Finding]:
    kind = detail["type"]
    ctx: dict[str, Any] = detail.get("ctx") or {}
    if kind == "missing":
        return [Finding(path, "is required")]
    if kind == "extra_forbidden" and path:
        return [Finding(path, _unknown_key(path[-1], detail["loc"][:-1]), about="key")]
    if kind == "invalid_key" and path:
        return [Finding(path, _non_string_key(path[-1]), about="key")]
    if kind in _TYPE_MESSAGES:
        return [Finding(path, _TYPE_MESSAGES[kind])]
    if kind in _BOUNDS:
        name, symbol = _BOUNDS[kind]
        return [Finding(path, f"must be {symbol} {_number(ctx.get(name))}")]
    if kind == "literal_error":
        return [Finding(path, _one_of(str(ctx.get("expected", "")), detail.get("input")))]
    if kind in ("too_short", "too_long", "string_too_short", "string_too_long"):
        return [Finding(path, _length_message(kind, ctx))]
    if kind == "union_tag_invalid":
        return [_unknown_tag(path, ctx)]
    if kind == "union_tag_not_found":
        key = str(ctx.get("discriminator", "'type'")).strip("'")
        tags = ", ".join(f"'{tag}'" for tag in _union_tags(detail["loc"]))
        return [Finding((*path, key), f"is required (one of: {tags})")]
    message = _plain(detail["msg"])
    if kind == "value_error" and path in (("kafka_clusters",), ("prometheus_servers",)):
        named = _bad_names(path, data, message)
        if named:
            return named
    return [Finding(path, message)]


def _actual_key(mapping: dict[Any, Any], part: int | str) -> Any:
    return next((key for key in mapping if key == part), part)


def _non_string_key(key: object) -> str:
    if isinstance(key, bool):
        return f"key {key} is not a string: quote it (YAML reads on, off, yes and no as booleans)"
    return f"key {key} is not a string: quote it"


def _number(value: object) -> str:
    """A bound as the user would write it: ``0``, not the float field's ``0.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _plain(message: str) -> str:
    """A validator's own message, without pydantic's ``Value error, `` prefix."""
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message[:1].lower() + message[1:] if message[1:2].islower() else message


def _bad_names(path: KeyPath, data: object, message: str) -> list[Finding]:
    """Point a name check of ``kafka_clusters`` / ``prometheus_servers`` at each bad name.

    The model checks the names in a field validator of the whole mapping, so pydantic
    locates the error on the mapping; the user needs to know which name.
    """
    section = data.get(path[0]) if isinstance(data, dict) else None
    if not isinstance(section, dict):
        return []
    findings = []
    for name in section:
        try:
            _check_identifier(str(name), "a name")
        except ValueError:
            findings.append(Finding((*path, name), message, about="name"))
    return findings


def _snake_case(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).replace("-", "_").lower()


def suggest_key(key: str | int, allowed: Sequence[str]) -> str | None:
    """The key the user probably meant: the snake_case of a KEDA/HPA camelCase key, our name
    for a KEDA/HPA key we call differently, or a close spelling."""
    if not isinstance(key, str):
        return None
    snake = _snake_case(key)
    for candidate in (snake, _FOREIGN_KEYS.get(snake)):
        if candidate is not None and candidate != key and candidate in allowed:
            return candidate
    matches = difflib.get_close_matches(snake, allowed, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _unknown_key(key: str | int, section: tuple[int | str, ...]) -> str:
    return _unknown_key_in(key, tuple(_fields_at(section)))


@functools.lru_cache(maxsize=4096)
def _unknown_key_in(key: str | int, allowed: tuple[str, ...]) -> str:
    """Cached: a key copied wrongly into every target is one difflib search, not one each."""
    message = f"unknown key '{key}'"
    if key == "password" and "password_file" in allowed:
        return f"{message}: never write a password here, set password_file or password_env"
    hint = suggest_key(key, allowed)
    return f"{message} (did you mean '{hint}'?)" if hint else message


def _one_of(expected: str, given: object) -> str:
    """``must be one of: 'Pods', 'Percent'``, with a hint when the value is a near miss."""
    options = re.findall(r"'([^']*)'", expected)
    message = "must be one of: " + ", ".join(f"'{option}'" for option in options)
    if isinstance(given, str) and options:
        close = _close_option(given, tuple(options))
        if close is not None:
            message += f" (did you mean '{close}'?)"
    return message


@functools.lru_cache(maxsize=4096)
def _close_option(given: str, options: tuple[str, ...]) -> str | None:
    """Cached, as :func:`_unknown_key_in`: one search per distinct mistake."""
    by_case = [option for option in options if option.lower() == given.lower()]
    close = by_case or difflib.get_close_matches(given, options, n=1, cutoff=0.6)
    return close[0] if close else None


def _length_message(kind: str, ctx: dict[str, Any]) -> str:
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    unit = "character" if kind.startswith("string") else "item"
    if kind.endswith("too_short"):
        count = ctx.get("min_length")
        return f"must have at least {count} {unit}{'' if count == 1 else 's'}"
    count = ctx.get("max_length")
    return f"must have at most {count} {unit}{'' if count == 1 else 's'}"


def _unknown_tag(path: KeyPath, ctx: dict[str, Any]) -> Finding:
    key = str(ctx.get("discriminator", "'type'")).strip("'")
    tags = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
    given = str(ctx.get("tag", ""))
    what = "trigger type" if len(path) >= 2 and path[-2] == "triggers" else key
    message = f"unknown {what} '{given}'" if _SAFE_TAG.match(given) else f"unknown {what}"
    close = difflib.get_close_matches(given, tags, n=1, cutoff=0.5)
    if close:
        message += f" (did you mean '{close[0]}'?)"
    else:
        message += "; must be one of: " + ", ".join(f"'{tag}'" for tag in tags)
    return Finding((*path, key), message)


def _union_message(members: list[str]) -> str:
    names: list[str] = []
    for member in members:
        name = _MEMBER_NAMES.get(member)
        if name is not None and name not in names:
            names.append(name)
    if not names:
        return "has an invalid value"
    if len(names) == 1:
        return f"must be {names[0]}"
    return f"must be {', '.join(names[:-1])} or {names[-1]}"


# --------------------------------------------------------------------------- the schema


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``| None`` down to the type that holds the value."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _union_members(annotation: Any) -> list[type[BaseModel]]:
    if get_origin(annotation) not in (Union, types.UnionType):
        return []
    return [
        member
        for member in map(_unwrap, get_args(annotation))
        if isinstance(member, type) and issubclass(member, BaseModel)
    ]


def _tag_of(model: type[BaseModel]) -> tuple[object, ...]:
    field = model.model_fields.get("type")
    if field is None or get_origin(field.annotation) is not Literal:
        return ()
    return get_args(field.annotation)


def _annotation_at(loc: Sequence[int | str]) -> Any:
    """The schema type at a pydantic location (tags included), or None when it has none."""
    annotation: Any = AutoscalerConfig
    for part in loc:
        annotation = _unwrap(annotation)
        origin = get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None
            annotation = field.annotation
        elif origin in (tuple, list) and isinstance(part, int):
            annotation = get_args(annotation)[0]
        elif origin is dict:
            annotation = get_args(annotation)[1]
        else:
            chosen = [member for member in _union_members(annotation) if part in _tag_of(member)]
            if not chosen:
                return None
            annotation = chosen[0]
    return _unwrap(annotation)


def _fields_at(loc: Sequence[int | str]) -> list[str]:
    """The key names the section at ``loc`` accepts (empty when it is not a section)."""
    annotation = _annotation_at(loc)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _union_tags(loc: Sequence[int | str]) -> list[str]:
    """The ``type`` values a discriminated union at ``loc`` accepts."""
    members = _union_members(_annotation_at(loc))
    return [str(tag) for member in members for tag in _tag_of(member)]
