"""The Dockerfile, read statically (no Docker daemon needed): two stages, a non-root
numeric user, no build tools in the final stage, and the command deploy/ expects."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from deploy_helpers import ROOT, Doc, find

DOCKERFILE = ROOT / "Dockerfile"
_BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|build-essential|make|clang|python3?-dev)\b")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _exec_form(stage: list[tuple[str, str]], name: str) -> list[str]:
    values = [args for instruction, args in stage if instruction == name]
    assert values, f"no {name} in the final stage"
    parsed = json.loads(values[-1])
    assert isinstance(parsed, list), f"{name} must be in exec form (a JSON list)"
    return [str(part) for part in parsed]


def test_multi_stage_from_a_slim_python_311() -> None:
    stages = _stages()
    assert len(stages) >= 2
    args = dict(arg.split("=", 1) for instruction, arg in _instructions() if instruction == "ARG")
    for stage in stages:
        image = stage[0][1].split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert re.match(r"^python:3\.11(\.\d+)?-slim", image), image
        # pinned: a tag alone moves under the same build
        assert re.search(r"@sha256:[0-9a-f]{64}$", image), f"{image} is not pinned by digest"
    assert "--from=builder" in " ".join(args for _, args in stages[-1])


def test_final_stage_runs_as_a_numeric_non_root_user_without_build_tools() -> None:
    final = _stages()[-1]
    users = [args for instruction, args in final if instruction == "USER"]
    assert users, "no USER in the final stage"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit(), "numeric, so that Kubernetes can check runAsNonRoot"
    assert int(uid) != 0
    assert not gid or (gid.isdigit() and int(gid) != 0)
    for instruction, args in final:
        if instruction == "RUN":
            assert not _BUILD_TOOLS.search(args), f"build tools in the final stage: {args}"
            assert "pip install" not in args, "install in the builder, copy the venv"


def _command() -> list[str]:
    final = _stages()[-1]
    return _exec_form(final, "ENTRYPOINT") + _exec_form(final, "CMD")


def test_entrypoint_runs_the_service_on_the_mounted_config(
    rendered: dict[str, list[Doc]],
) -> None:
    command = _command()
    assert command == ["autoscaler", "run", "--config", "/etc/autoscaler/config.yaml"]
    config_path = command[-1]
    directory, _, key = config_path.rpartition("/")
    for docs in rendered.values():
        deployment = find(docs, "Deployment")
        pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == directory)
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        configmap = find(docs, "ConfigMap")
        assert volume["configMap"]["name"] == configmap["metadata"]["name"]
        assert key in configmap["data"]
        assert pod["securityContext"]["runAsUser"] == int(
            next(args for i, args in _stages()[-1] if i == "USER").partition(":")[0]
        )


@pytest.mark.parametrize("needed", ["pyproject.toml", "README.md", "autoscaler/", "predictors/"])
def test_dockerignore_lets_the_package_sources_in(needed: str) -> None:
    rules = (ROOT / ".dockerignore").read_text().splitlines()
    assert f"!{needed}" in rules
    copied = " ".join(args for instruction, args in _instructions() if instruction == "COPY")
    assert needed.rstrip("/") in copied


def _normalized(name: str) -> str:  # PEP 503
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_image_installs_a_hashed_lock_of_every_runtime_dependency() -> None:
    """What ships is what was locked: every dependency of pyproject.toml pinned with its
    hashes in deploy/requirements.lock, installed with --require-hashes, the package after
    it without resolving anything again."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = (ROOT / "deploy" / "requirements.lock").read_text()
    pinned = {
        _normalized(match.group(1)): match.group(2)
        for match in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", lock, re.MULTILINE)
    }
    for requirement in project["dependencies"]:
        name = _normalized(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0])
        assert name in pinned, f"{name} is not in deploy/requirements.lock"
    blocks = re.split(r"^(?=[A-Za-z0-9_.-]+==)", lock, flags=re.MULTILINE)[1:]
    assert blocks
    assert all("--hash=sha256:" in block for block in blocks)
    options = [line for line in lock.splitlines() if line.startswith("--")]
    assert options == [], "no machine's index or wheel folder in the lock"
    runs = " ".join(args for instruction, args in _instructions() if instruction == "RUN")
    assert "--require-hashes --no-deps -r requirements.lock" in runs
    assert "pip install --no-deps ." in runs
    labels = " ".join(args for instruction, args in _stages()[-1] if instruction == "LABEL")
    for label in ("source", "revision", "licenses"):
        assert f"org.opencontainers.image.{label}=" in labels


def test_the_image_carries_its_revision_where_autoscaler_version_reads_it() -> None:
    """``docker build --build-arg REVISION=$(git rev-parse HEAD)``: the label says it to
    registries, ``AUTOSCALER_REVISION`` to ``autoscaler version`` (no git in the image)."""
    from autoscaler.build_info import REVISION_ENV

    final = _stages()[-1]
    assert any(args.split("=", 1)[0] == "REVISION" for i, args in final if i == "ARG")
    env = " ".join(args for instruction, args in final if instruction == "ENV")
    assert re.search(rf'(^|\s){REVISION_ENV}="?\$\{{REVISION\}}"?(\s|$)', env), env
