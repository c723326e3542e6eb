"""Reading the YAML file: its data, where every key and value sits, and what YAML hides.

A plain ``yaml.safe_load`` forgets positions and silently keeps the last of two equal keys,
so a file with ``min_replicas`` written twice would run with whichever came last. Here the
document is composed into nodes first, duplicate keys become problems, and every node's
position is indexed by its path so that later checks can point at a line and column.

Every failure to read (no file, a directory, not UTF-8, not YAML, empty, not a mapping) is a
:class:`~autoscaler.config.errors.ConfigError` with one problem at path ``<file>``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import Reader
from yaml.resolver import Resolver

from autoscaler.config.errors import FILE, ConfigError, Finding, KeyPath, Problem, render_path

Position = tuple[int, int]
"""1-based (line, column)."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


if yaml.__with_libyaml__:  # as in PyYAML's wheels; built without it, SafeLoader reads all
    from yaml._yaml import CParser

    class _LibyamlLoader(Composer, CParser, SafeConstructor, Resolver):
        """libyaml's scanner and parser (C, several times faster than PyYAML's own) under
        PyYAML's composer, constructor and resolver: the nodes, marks and values of
        ``yaml.SafeLoader``, sooner.

        Not ``yaml.CSafeLoader``: its composer is C recursion that nothing limits, and a file of
        a million ``[`` crashes the process; PyYAML's composer, first among these bases, raises
        RecursionError instead (reported as nested too deeply). Its errors are never shown:
        :func:`_compose` reads a file libyaml rejects again with ``yaml.SafeLoader``, so that a
        problem is worded, placed and accepted as it always was.
        """

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)


if TYPE_CHECKING:
    _Loader: TypeAlias = yaml.SafeLoader | _LibyamlLoader


class Positions:
    """Where each path of the parsed data was written in the file.

    Found on demand, by following the path down the document's nodes: a lookup costs the
    path's depth times the widths of the mappings on it, and a valid file needs none. (An
    index of every path, built up front, took a fifth of the time of validating a valid
    file once the parsing was fast.) The nodes are those after
    construction, when PyYAML has flattened merge keys (``<<``) into each mapping, merged
    pairs first, the mapping's own after: the last pair with a key is the one the data
    holds, and the one found.
    """

    def __init__(self, root: Node) -> None:
        self._root = root
        self._keys = SafeConstructor()

    def locate(self, finding: Finding) -> Position | None:
        """The key's position for a key finding, the value's otherwise.

        A path that is not in the file (a missing key) falls back to its nearest ancestor
        that is: the mapping the key should have been written in.
        """
        found = self._follow(finding.path)
        node, key_node = found[-1]
        if finding.about != "value" and len(found) > len(finding.path) and key_node is not None:
            return _position(key_node.start_mark)
        return _position(node.start_mark)

    def _follow(self, path: KeyPath) -> list[tuple[Node, Node | None]]:
        """The (value, key) nodes along ``path`` from the root, as far as the file has it."""
        found: list[tuple[Node, Node | None]] = [(self._root, None)]
        node = self._root
        for part in path:
            step: tuple[Node, Node | None] | None = None
            if isinstance(node, MappingNode):
                for key_node, value_node in node.value:
                    key = _scalar_key(self._keys, key_node)
                    if isinstance(key, str | int) and key == part:
                        step = (value_node, key_node)  # the last one wins, as in the data
            elif isinstance(node, SequenceNode) and isinstance(part, int) and part >= 0:
                step = (node.value[part], None) if part < len(node.value) else None
            if step is None:
                break
            found.append(step)
            node = step[0]
        return found


@dataclass(frozen=True)
class YamlDocument:
    """A parsed file: the data, the position index, and the duplicate keys found."""

    data: Any
    positions: Positions
    problems: list[Problem]


def _position(mark: yaml.Mark) -> Position:
    return (mark.line + 1, mark.column + 1)


def _file_error(source: str, message: str, position: Position | None = None) -> ConfigError:
    line, column = position if position is not None else (None, None)
    return ConfigError([Problem(FILE, message, line, column)], source)


def _syntax_error(source: str, text: str, error: yaml.YAMLError) -> ConfigError:
    """The YAML error's own words and position, without its snippet of the file.

    The snippet is left out on purpose: it is a copy of the offending line, which may hold a
    password someone pasted into the wrong place.
    """
    if isinstance(error, yaml.MarkedYAMLError):
        problem, context = error.problem, error.context
        if problem and context and problem.startswith("but "):
            message = f"invalid YAML: {context}, {problem}"  # "expected a single document..."
        else:
            message = f"invalid YAML: {problem or context or 'cannot parse'}"
            if problem and context and error.context_mark is not None:
                message += f" ({context} at line {error.context_mark.line + 1})"
        mark = error.problem_mark or error.context_mark
        return _file_error(source, message, _position(mark) if mark is not None else None)
    if isinstance(error, yaml.reader.ReaderError):
        before = text[: error.position]
        position = (before.count("\n") + 1, error.position - (before.rfind("\n") + 1) + 1)
        return _file_error(source, f"invalid YAML: {error.reason}", position)
    return _file_error(source, "invalid YAML")


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def read_text(path: str | os.PathLike[str]) -> str:
    """The file's text, or a ConfigError saying plainly why it cannot be read."""
    source = os.fspath(path)
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except FileNotFoundError:
        raise _file_error(source, "file not found") from None
    except IsADirectoryError:
        raise _file_error(source, "is a directory, not a file") from None
    except PermissionError:
        raise _file_error(source, "permission denied: the file cannot be read") from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise _file_error(source, f"cannot read the file: {reason}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = raw[: error.start]
        line = before.count(b"\n") + 1
        column = error.start - (before.rfind(b"\n") + 1) + 1
        raise _file_error(
            source, "the file is not UTF-8 text (save it as UTF-8)", (line, column)
        ) from None


MAX_DOCUMENT_CHARACTERS = 32 * 1024 * 1024
"""A config file larger than this is refused before it is parsed. 50,000 targets of about
twenty keys each (27 MiB) take ``autoscaler validate`` 27 s of CPU and 1.5 GB of memory
(``benchmarks/results/validate_speed.txt``): a larger file would mostly cost time and
memory."""
MAX_ALIASED_VALUES = 1_000_000
"""The most values a document's aliases may add to it once expanded, beyond those written.
Ten lines of nested aliases (a "billion laughs") stand for billions: validating them would
take hours and gigabytes, so such a document is refused from its node graph, before it is
built. What is written out is bounded by :data:`MAX_DOCUMENT_CHARACTERS` instead: a file
of many targets, alias-free, is as large as it looks."""
_SIZE_CAP = 2**62
"""Expanded sizes are counted up to this: far beyond any limit, and small integers."""


def parse_yaml(text: str, source: str = "<config>") -> YamlDocument:
    """Parse one YAML document into data, positions and duplicate-key problems."""
    if len(text) > MAX_DOCUMENT_CHARACTERS:
        raise _file_error(
            source,
            f"the file is {len(text) / 2**20:.1f} MiB of text; a config may be at most "
            f"{MAX_DOCUMENT_CHARACTERS / 2**20:.0f} MiB",
        )
    loader: _Loader | None = None
    try:
        loader, node = _compose(text)
        if node is None:
            raise _file_error(source, "the file is empty")
        if "&" in text:  # without an anchor there is no alias: the nodes are as written
            expanded, written, recursive = _expanded_size(node)
            if recursive:
                raise _file_error(
                    source,
                    "an alias refers to a section it is inside of (&a [*a]): it never ends",
                    _position(node.start_mark),
                )
            if expanded - written > MAX_ALIASED_VALUES:
                raise _file_error(
                    source,
                    f"its aliases (*name) expand to more than {MAX_ALIASED_VALUES:,} values "
                    "beyond those written (aliases nested in aliases multiply): write the "
                    "repeated sections out, or alias them one level deep",
                    _position(node.start_mark),
                )
        duplicates = _duplicate_keys(loader, node, ())
        data = loader.construct_document(node)
    except yaml.YAMLError as error:
        raise _syntax_error(source, text, error) from None
    except RecursionError:
        raise _file_error(source, "invalid YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        raise _file_error(
            source,
            f"the top level must be a mapping of keys to values, not {_describe(data)}",
            _position(node.start_mark),
        )
    return YamlDocument(data, Positions(node), duplicates)


_TAG = re.compile(r"(?:\A|[\s,\[{])!")
_QUESTION_MARK_OUTSIDE_COMMENT_LINES = re.compile(r"^[ \t]*(?:[^#\s].*)?\?", re.MULTILINE)
_COMMENT_AFTER_BLOCK_INDICATOR = re.compile(r"[|>][-+0-9]*#")
_EMPTY_FLOW_VALUE = re.compile(r":\s*[,\]}]")


def _libyaml_may_differ(text: str) -> bool:
    """Whether libyaml may read ``text`` otherwise than PyYAML: it has a character PyYAML's
    reader refuses; a tab (PyYAML refuses it between tokens); a ``?`` but in a line that is
    a comment (in a flow collection PyYAML ends a plain scalar at ``?``, libyaml does not:
    ``[x?]``); a tag (libyaml ends ``[!x, y]``'s at the comma, and reads a bare ``!`` as
    a string, PyYAML as null); a comment right after a block scalar's ``|`` or ``>``; an
    empty value in a flow collection (``{a: }``: libyaml places it at the next token, PyYAML
    after the colon). Found by reading mutated configs with both
    (``tests/test_config_source.py``): with these left to PyYAML, 120,000 mutations gave the
    same nodes at the same places, or were refused by both. A config needs none of them; a
    file with one is read by PyYAML alone, as before.

    Substring tests first, each pattern only when its character is there: one pattern of
    all six took 9% of the time of validating 50,000 targets.
    """
    if "\t" in text or ("?" in text and _QUESTION_MARK_OUTSIDE_COMMENT_LINES.search(text)):
        return True
    if "!" in text and _TAG.search(text):
        return True
    if "#" in text and _COMMENT_AFTER_BLOCK_INDICATOR.search(text):
        return True
    return bool(Reader.NON_PRINTABLE.search(text) or _EMPTY_FLOW_VALUE.search(text))


def _compose(text: str) -> tuple[_Loader, Node | None]:
    """The document's node graph, and the loader that will construct it.

    libyaml parses (:class:`_LibyamlLoader`) unless the text has something it reads
    otherwise (:func:`_libyaml_may_differ`); any YAML error it raises is left to
    ``yaml.SafeLoader``, which parses the text again and either raises its own error (the
    message users always got) or accepts the text, as it always did.
    """
    if yaml.__with_libyaml__ and not _libyaml_may_differ(text):
        fast = _LibyamlLoader(text)
        try:
            return fast, fast.get_single_node()
        except yaml.YAMLError:
            fast.dispose()
    loader = yaml.SafeLoader(text)  # its reader rejects control characters up front
    try:
        return loader, loader.get_single_node()
    except BaseException:
        loader.dispose()
        raise


def _expanded_size(root: Node) -> tuple[int, int, bool]:
    """How many nodes the document stands for with every alias expanded (a node shared by
    aliases counts once per use, up to :data:`_SIZE_CAP`), how many are written (each
    once), and whether an alias is recursive. Linear in the node graph (each node's size is
    computed once), whatever the expansion."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    recursive = False
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            total = 1 + sum(sizes.get(id(child), _SIZE_CAP) for child in _children(node))
            sizes[key] = min(total, _SIZE_CAP)
            continue
        if key in sizes:
            continue
        if key in on_path:  # &a [*a]: never ends
            recursive = True
            continue
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                recursive = True
            elif id(child) not in sizes:
                stack.append((child, False))
    return sizes.get(id(root), 1), len(sizes), recursive


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _scalar_key(constructor: SafeConstructor, node: Node) -> object:
    """The Python value of a scalar key node (``on`` and ``true`` are the same key)."""
    if not isinstance(node, ScalarNode):
        return None
    if node.tag == _STR_TAG:
        return node.value  # what the constructor would return, without its bookkeeping
    try:
        key: object = constructor.construct_object(node, deep=True)
    except yaml.YAMLError:
        return None
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _duplicate_keys(loader: _Loader, node: Node, path: KeyPath) -> list[Problem]:
    """Keys written twice in one mapping, found before merge keys (``<<``) are applied.

    A key given by a merge and overridden in the mapping itself is the point of ``<<``, not
    a duplicate, which is why this runs on the nodes as written.
    """
    problems: list[Problem] = []
    stack: list[tuple[Node, KeyPath]] = [(node, path)]
    seen_nodes: set[int] = set()
    while stack:
        current, where = stack.pop()
        if id(current) in seen_nodes:
            continue
        seen_nodes.add(id(current))
        if isinstance(current, MappingNode):
            first_line: dict[object, int] = {}
            for key_node, value_node in current.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = _scalar_key(loader, key_node)
                if key is None:
                    continue
                line, column = _position(key_node.start_mark)
                if key in first_line:
                    problems.append(
                        Problem(
                            render_path(where),
                            f"duplicate key '{key}', first set on line {first_line[key]}",
                            line,
                            column,
                        )
                    )
                else:
                    first_line[key] = line
                if isinstance(key, str | int):
                    stack.append((value_node, (*where, key)))
        elif isinstance(current, SequenceNode):
            stack.extend((item, (*where, index)) for index, item in enumerate(current.value))
    problems.sort(key=lambda problem: (problem.line or 0, problem.column or 0))
    return problems
