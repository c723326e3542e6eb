"""Structured output, as kubectl prints it: ``-o json`` or ``-o yaml`` instead of text.

Every command that prints a result takes the same option (``add_format_argument``) and
writes through :func:`write_structured`, so that JSON and YAML carry the same data and a
script can read either. Structured output goes to stdout alone; warnings stay on stderr.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Literal, TextIO

import yaml

Format = Literal["json", "yaml"]
FORMATS: tuple[Format, ...] = ("json", "yaml")


def add_format_argument(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    what: str,
    default: Format | None = None,
) -> None:
    """``-o json|yaml`` (long form ``--format``); ``what`` says what is printed."""
    shown = f"default: {default}" if default else "default: text for people"
    parser.add_argument(
        "-o",
        "--format",
        choices=FORMATS,
        default=default,
        metavar="json|yaml",
        help=f"print {what} as JSON or YAML on stdout ({shown})",
    )


def dumps(data: Any, form: Format) -> str:
    """``data`` as JSON (indented, no NaN: invalid JSON) or block-style YAML, keys in order,
    ending with a newline."""
    if form == "json":
        return json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    text: str = yaml.safe_dump(
        data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100
    )
    return text


def write_structured(data: Any, form: Format, out: TextIO) -> None:
    """Write ``data`` to ``out`` in ``form``."""
    out.write(dumps(data, form))


def refuse_format_as_path(option: str, value: str | None) -> str | None:
    """The one-line usage error for ``--output json``: with kubectl, ``--output`` is the
    format; here ``--output`` names a file or folder and the format is ``-o``. A file
    called ``json`` is never what was meant. None when ``value`` is fine."""
    if value is not None and value.strip().lower() in FORMATS:
        return (
            f"{option} {value}: {option} names where to write; for the format, "
            f"use -o {value.strip().lower()}"
        )
    return None
