"""Reading what ``kubectl get ... -o yaml`` prints, from a file or stdin: one object, a
``List`` (``kind: List`` or ``ScaledObjectList``... with ``items``), or several YAML
documents (``---``), in any mix.

Every failure to read is a :class:`ManifestError`: one line naming the input and, for bad
YAML, the line and column, never a traceback and never a copy of the offending line (it
may hold a secret pasted in the wrong place). YAML aliases (``*name``) are refused:
Kubernetes never prints them, and nested ones can expand a few lines into gigabytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import yaml
from yaml.nodes import Node

MAX_INPUT_CHARACTERS = 64 * 2**20
"""``kubectl get scaledobject -A -o yaml`` of thousands of objects fits in a fraction."""
STDIN = "-"


class ManifestError(Exception):
    """The input cannot be read as Kubernetes objects; ``str()`` is the one line to print."""


@dataclass(frozen=True)
class KubeObject:
    """One object of the input, as it was written."""

    kind: str
    api_version: str
    name: str
    namespace: str
    """``metadata.namespace``, or ``default`` when not given (as kubectl applies it)."""
    body: dict[str, Any]

    @property
    def ref(self) -> str:
        """``ScaledObject shop/orders``: how notes name the object."""
        return f"{self.kind} {self.namespace}/{self.name}"


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None,
                None,
                "an alias (*name): Kubernetes objects never use them",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def read_input(source: str, stdin: TextIO) -> tuple[str, str]:
    """(the text, the name to show for it) of ``source``, a path or ``-`` for stdin."""
    if source == STDIN:
        return stdin.read(MAX_INPUT_CHARACTERS + 1), "<stdin>"
    try:
        with open(source, "rb") as file:
            raw = file.read(MAX_INPUT_CHARACTERS * 4 + 1)
    except FileNotFoundError:
        raise ManifestError(f"{source}: file not found") from None
    except IsADirectoryError:
        raise ManifestError(f"{source}: is a directory, not a file") from None
    except PermissionError:
        raise ManifestError(f"{source}: permission denied") from None
    except OSError as error:
        raise ManifestError(f"{source}: cannot read it: {error.strerror}") from None
    try:
        return raw.decode("utf-8-sig"), source
    except UnicodeDecodeError:
        raise ManifestError(f"{source}: not UTF-8 text") from None


def parse_objects(text: str, shown: str) -> list[KubeObject]:
    """Every object of every document, ``List`` items in their order."""
    if len(text) > MAX_INPUT_CHARACTERS:
        raise ManifestError(f"{shown}: more than {MAX_INPUT_CHARACTERS // 2**20} MiB of text")
    objects: list[KubeObject] = []
    for number, document in enumerate(_documents(text, shown), start=1):
        if document is None:  # an empty document: "---" twice, or a trailing one
            continue
        objects.extend(_objects(document, f"{shown}: document {number}"))
    if not objects:
        raise ManifestError(f"{shown}: no Kubernetes object in it (is it empty?)")
    return objects


def _documents(text: str, shown: str) -> Iterator[object]:
    loader = _NoAliasLoader(text)
    try:
        while loader.check_data():  # type: ignore[no-untyped-call]
            yield loader.get_data()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        what = error.problem or error.context or "cannot parse"
        raise ManifestError(f"{shown}: invalid YAML: {what}{where}") from None
    except yaml.YAMLError as error:
        reason = getattr(error, "reason", None) or "cannot parse"
        raise ManifestError(f"{shown}: invalid YAML: {reason}") from None
    except RecursionError:
        raise ManifestError(f"{shown}: invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def _objects(document: object, where: str) -> list[KubeObject]:
    if not isinstance(document, dict) or not isinstance(document.get("kind"), str):
        raise ManifestError(
            f"{where}: not a Kubernetes object (a mapping with apiVersion and kind)"
        )
    kind: str = document["kind"]
    if kind.endswith("List") and "items" in document:
        items = document["items"]
        if items is None:  # an empty List prints "items: []", but be kind to "items:"
            return []
        if not isinstance(items, list):
            raise ManifestError(f"{where}: {kind} items must be a list")
        found: list[KubeObject] = []
        for index, item in enumerate(items):
            found.extend(_objects(item, f"{where}, items[{index}]"))
        return found
    metadata = document.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    name, namespace = metadata.get("name"), metadata.get("namespace")
    api_version = document.get("apiVersion")
    return [
        KubeObject(
            kind=kind,
            api_version=api_version if isinstance(api_version, str) else "",
            name=name if isinstance(name, str) and name else "<unnamed>",
            namespace=namespace if isinstance(namespace, str) and namespace else "default",
            body=document,
        )
    ]
