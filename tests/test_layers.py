"""The architecture's layers, enforced: the decision core (and the predictors) do no I/O.

The same pure code runs in the live loop and in replay only as long as nothing in it reaches
for a network client, an event loop or a clock. Two checks:

* static: the import statements of the pure packages, and of every project module they
  import in turn, name no I/O module (asyncio included);
* dynamic: importing them in a fresh interpreter loads no Kafka, Kubernetes, Prometheus or
  HTTP client. (asyncio itself cannot be checked this way: pydantic imports it.)
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
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
PURE_PACKAGES = ["autoscaler/decision", "predictors"]
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
