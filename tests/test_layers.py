"""The architecture's layers, enforced: the decision core (and the predictors) do no I/O,
and every package imports only the layers below it.

The same pure code runs in the live loop and in replay only as long as nothing in it reaches
for a network client, an event loop or a clock. Two checks:

* static: the import statements of the pure packages, and of every project module they
  import in turn, name no I/O module (asyncio included);
* dynamic: importing them in a fresh interpreter loads no Kafka, Kubernetes, Prometheus or
  HTTP client. (asyncio itself cannot be checked this way: pydantic imports it.)

And two on the whole import graph (every import statement, at the top of a module or inside
a function, under ``TYPE_CHECKING`` too: an import moved into a function to dodge a circle is
still an arrow):

* ``LAYERS``: a package imports its own modules and the layers below, never a sibling of
  its own layer nor anything above (sources never import replay, fleet never imports tune);
* no circle between two project modules (replay's page and its tables, the fleet command and
  the replay command once imported each other).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IO_MODULES = {
    "asyncio",
    "socket",
    "ssl",
    "selectors",
    "subprocess",
    "threading",
    "http",
    "urllib",
    "aiokafka",
    "kafka",
    "kubernetes_asyncio",
    "kubernetes",
    "prometheus_api_client",
    "prometheus_client",
    "aiohttp",
    "requests",
    "urllib3",
    "structlog",
    "logging",
    "time",
    "dask",
    "distributed",
}
CLIENT_LIBRARIES = IO_MODULES - {
    "asyncio",
    "socket",
    "ssl",
    "selectors",
    "subprocess",
    "threading",
    "http",
    "urllib",
    "logging",
    "time",
}
PURE_PACKAGES = ["autoscaler/decision", "autoscaler/sharding", "predictors"]
PURE_MODULES = [
    "autoscaler/replay/simulator.py",
    "autoscaler/replay/oracle.py",
    "autoscaler/replay/recorded.py",
]
"""Replay's physics, its oracle and its recorded forecasts: pure like the decision layer
they drive."""
CLIENT_HOMES = {
    "kubernetes_asyncio": "autoscaler/live",
    "kubernetes": "autoscaler/live",
    "aiokafka": "autoscaler/sources",
    "kafka": "autoscaler/sources",
    "prometheus_api_client": "autoscaler/sources",
    "requests": "autoscaler/sources",
    "urllib3": "autoscaler/sources",
    "dask": "autoscaler/fleet",
    "distributed": "autoscaler/fleet",
}
"""Each client library is imported by one package only: the edge that owns that server."""


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at its top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _import_closure(package: str) -> dict[Path, set[str]]:
    """Every project file reachable from ``package`` (a folder or one file) by imports,
    with its imports."""
    start = ROOT / package
    todo = [start] if start.is_file() else sorted(start.rglob("*.py"))
    seen: dict[Path, set[str]] = {}
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen[path] = _imports(path)
        for name in seen[path]:
            if name.split(".")[0] in ("autoscaler", "predictors"):
                # Importing a.b.c runs a/__init__.py and a/b/__init__.py too.
                parts = name.split(".")
                for depth in range(1, len(parts) + 1):
                    found = _module_file(".".join(parts[:depth]))
                    if found is not None:
                        todo.append(found)
    return seen


@pytest.mark.parametrize("package", [*PURE_PACKAGES, *PURE_MODULES])
def test_pure_packages_import_no_io_module(package: str) -> None:
    offending = {
        str(path.relative_to(ROOT)): sorted(n for n in names if n.split(".")[0] in IO_MODULES)
        for path, names in _import_closure(package).items()
    }
    assert {k: v for k, v in offending.items() if v} == {}


def _modules_loaded_by(module: str) -> set[str]:
    code = f"import sys, json; import {module}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    )
    return set(json.loads(result.stdout))


@pytest.mark.parametrize("module", ["autoscaler.decision", "predictors"])
def test_pure_packages_load_no_client_library(module: str) -> None:
    loaded = {name.split(".")[0] for name in _modules_loaded_by(module)}
    assert sorted(loaded & CLIENT_LIBRARIES) == []


def test_predictors_never_import_autoscaler() -> None:
    """Models know nothing of targets, triggers or decisions: they forecast a series."""
    offending = {
        str(path.relative_to(ROOT)): sorted(n for n in _imports(path) if n.startswith("autoscaler"))
        for path in (ROOT / "predictors").rglob("*.py")
    }
    assert {k: v for k, v in offending.items() if v} == {}


def _client_imports() -> dict[str, set[str]]:
    """For each client library, the project files that import it."""
    found: dict[str, set[str]] = {}
    for path in [*(ROOT / "autoscaler").rglob("*.py"), *(ROOT / "predictors").rglob("*.py")]:
        for name in _imports(path):
            library = name.split(".")[0]
            if library in CLIENT_HOMES:
                found.setdefault(library, set()).add(str(path.relative_to(ROOT)))
    return found


def test_each_client_library_is_imported_in_one_package_only() -> None:
    strays = {
        library: sorted(f for f in files if not f.startswith(CLIENT_HOMES[library] + "/"))
        for library, files in _client_imports().items()
    }
    assert {k: v for k, v in strays.items() if v} == {}
    # Not vacuous: each home really is where its library is used.
    found = _client_imports()
    homed = {"kubernetes_asyncio", "aiokafka", "requests", "prometheus_api_client", "distributed"}
    assert homed <= set(found)


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """Guard against vacuous checks: code that does I/O is caught by both."""
    assert "aiokafka" in {n.split(".")[0] for n in _modules_loaded_by("aiokafka")}
    impure = tmp_path / "impure.py"
    impure.write_text("import asyncio\nfrom kubernetes_asyncio import client\n")
    assert {n.split(".")[0] for n in _imports(impure)} & IO_MODULES == {
        "asyncio",
        "kubernetes_asyncio",
    }
    closure = _import_closure("autoscaler/decision")
    assert ROOT / "autoscaler" / "config" / "model.py" in closure  # the closure follows imports


LAYERS: list[set[str]] = [
    {"__main__"},
    {"cli"},
    {"commands"},
    {"live", "importer", "tune"},
    {"fleet", "report"},
    {"replay", "sources"},
    {"traces", "logs", "output", "build_info"},
    {"observability"},
    {"decision", "sharding"},
    {"config"},
    {"predictors"},
]
"""Top first: ``autoscaler.<name>`` (a package or a top-level module) and ``predictors``.
Each imports itself and the layers below; the names in one layer do not import each
other. The root package (``autoscaler/__init__.py``, the version) is below everything."""


def _project_modules() -> dict[str, Path]:
    """Every project module by dotted name (a package by its ``__init__``)."""
    modules: dict[str, Path] = {}
    for path in [*(ROOT / "autoscaler").rglob("*.py"), *(ROOT / "predictors").rglob("*.py")]:
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imported_modules(path: Path, modules: Mapping[str, object]) -> set[str]:
    """The project modules ``path`` imports: ``from a.b import c`` is ``a.b.c`` when that is
    a module, else ``a.b``; ``import a.b.c`` the longest prefix that is one."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            for depth in range(len(parts), 0, -1):
                if ".".join(parts[:depth]) in modules:
                    found.add(".".join(parts[:depth]))
                    break
    return found


def import_graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports."""
    modules = _project_modules()
    return {name: _imported_modules(path, modules) for name, path in modules.items()}


def _component(module: str) -> str | None:
    """``autoscaler.replay.engine`` -> ``replay``; ``predictors.gbm`` -> ``predictors``;
    None for the root package."""
    parts = module.split(".")
    if parts[0] == "predictors":
        return "predictors"
    return parts[1] if len(parts) > 1 else None


def layer_violations(graph: Mapping[str, set[str]], layers: list[set[str]]) -> dict[str, list[str]]:
    """For each module, the imports that go up or sideways (or to a component no layer
    names)."""
    rank = {name: index for index, layer in enumerate(layers) for name in layer}
    violations: dict[str, list[str]] = {}
    for module, imported in graph.items():
        source = _component(module)
        if source is None:
            continue
        for target in sorted(imported):
            other = _component(target)
            if other is None or other == source:
                continue
            if source not in rank or other not in rank or rank[other] <= rank[source]:
                violations.setdefault(module, []).append(target)
    return violations


def import_circles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(circles)


def test_every_package_has_a_layer() -> None:
    components = {_component(m) for m in _project_modules()} - {None}
    assert sorted(components - set().union(*LAYERS)) == []


def test_packages_import_only_the_layers_below() -> None:
    assert layer_violations(import_graph(), LAYERS) == {}


def test_no_import_circle() -> None:
    assert import_circles(import_graph()) == []


def test_the_layer_checks_can_fail() -> None:
    """The old layout's arrows, as a graph: each check catches its own."""
    old = {
        "autoscaler.sources.prometheus_history": {"autoscaler.replay.trace"},
        "autoscaler.fleet.workloads": {"autoscaler.tune.search", "autoscaler.replay.engine"},
        "autoscaler.replay.page": {"autoscaler.replay.report"},
        "autoscaler.replay.report": {"autoscaler.replay.page"},
        "autoscaler.fleet.command": {"autoscaler.replay.command"},
        "autoscaler.replay.command": {"autoscaler.fleet.command"},
        "autoscaler.replay.engine": {"autoscaler.config.model"},
    }
    assert layer_violations(old, LAYERS) == {
        "autoscaler.sources.prometheus_history": ["autoscaler.replay.trace"],
        "autoscaler.fleet.workloads": ["autoscaler.tune.search"],
        "autoscaler.replay.command": ["autoscaler.fleet.command"],  # replay is below fleet
    }
    assert import_circles(old) == [
        ["autoscaler.fleet.command", "autoscaler.replay.command"],
        ["autoscaler.replay.page", "autoscaler.replay.report"],
    ]
    # The graph is read from the files, imports inside functions included.
    graph = import_graph()
    assert "autoscaler.tune.search" in graph["autoscaler.tune.workload"]
    assert "autoscaler.commands.fleet" in graph["autoscaler.commands.replay"]  # in a function
    assert "predictors.features" in graph["predictors.gbm"]  # from predictors import features
