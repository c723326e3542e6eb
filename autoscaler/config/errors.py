"""What a bad configuration file looks like to the user: a list of located problems.

KEDA's lesson (``scalersconfig/typed_config.go``): report *every* config error at once, each
naming the key, so that fixing a file is one round trip and not one per typo. A problem is
therefore plain data (a path, a message, a position) and :class:`ConfigError` carries all of
them; nothing here ever holds the offending input value, so nothing can leak a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

KeyPath = tuple[str | int, ...]
"""A position in the parsed data: mapping keys and list indexes, outermost first."""

ROOT = "<top level>"
"""How the path of the document itself is shown (e.g. a duplicate key at the top level)."""

FILE = "<file>"
"""The path of problems with the file as a whole (missing, unreadable, not YAML...)."""

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def render_path(path: KeyPath) -> str:
    """``targets[1].triggers[0].lag_threshold``: keys joined by dots, indexes in brackets.

    Keys that would be ambiguous in that notation (dots, spaces, quotes) are bracketed and
    quoted instead: ``kafka_clusters['eu.prod'].sasl``.
    """
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{str(part)!r}]"
    return text or ROOT


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration, where it is, and nothing of its value."""

    path: str
    """Where, as ``targets[0].behavior.scale_down`` (or ``<file>`` / ``<top level>``)."""
    message: str
    """What is wrong, in plain short English: ``must be > 0``, ``is required``..."""
    line: int | None = None
    """1-based line in the YAML file, when the problem came from one."""
    column: int | None = None
    """1-based column in the YAML file, when known."""

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}"
        if self.line is not None and self.column is not None:
            text += f" (line {self.line}, column {self.column})"
        elif self.line is not None:
            text += f" (line {self.line})"
        return text


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` lists every reason found, in file order.

    ``str()`` is one line per problem, ready to print: no traceback is needed to find the key.
    """

    def __init__(self, problems: Iterable[Problem], source: str = "<config>") -> None:
        self.problems: list[Problem] = list(problems)
        self.source = source
        """The file (or other origin) the configuration came from, for headings."""
        super().__init__(self.problems, source)  # args that rebuild it, so it pickles

    def format(self) -> str:
        """Every problem on its own line, as ``path: message (line L, column C)``."""
        return "\n".join(str(problem) for problem in self.problems)

    def summary(self) -> str:
        """A heading such as ``config.yaml: 3 problems``."""
        count = len(self.problems)
        return f"{self.source}: {count} problem{'' if count == 1 else 's'}"

    def __str__(self) -> str:
        return self.format()


@dataclass(frozen=True)
class Finding:
    """A problem located by a :data:`KeyPath` into the data, before it is given a line.

    Checks work on parsed data and know nothing of YAML; the loader turns findings into
    :class:`Problem` objects, rendering the path and looking up the position.
    """

    path: KeyPath
    message: str
    about: Literal["value", "key", "name"] = "value"
    """What is wrong, which decides the path shown and the position given:

    - ``value``: the value at ``path`` (or, when absent, the mapping it belongs in);
    - ``key``: the last key of ``path`` should not be in its mapping (unknown, duplicate,
      not a string): the mapping's path is shown, the key's position given;
    - ``name``: the last key of ``path`` is a user-chosen name that is not valid: the full
      path is shown, the key's position given.
    """

    @property
    def shown_path(self) -> KeyPath:
        """The path the user reads."""
        return self.path[:-1] if self.about == "key" else self.path
