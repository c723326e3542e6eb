"""Rendering of deploy/ for the deployment tests, with or without kubectl.

``kubectl kustomize`` renders each flavor when a kubectl with kustomize v4 or later is on the
PATH or beside the test control plane's kube-apiserver (components and ``labels`` need it).
Without one, ``render_raw`` applies the few kustomize features deploy/ uses (resources,
components, namespace, labels, configMapGenerator, images) to the raw files, so that the
RBAC, security and config tests still run; ``test_deploy_manifests.py`` checks that both
renderings agree whenever kubectl is there.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from servers.kube_control_plane import find_binaries

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MONITORING = DEPLOY / "monitoring"
FLAVORS = {
    "default": DEPLOY,
    "cluster": DEPLOY / "overlays" / "cluster",
    "namespaced": DEPLOY / "overlays" / "namespaced",
}
SHARDED = DEPLOY / "overlays" / "sharded"
"""The sharded overlay: not one of ``FLAVORS`` (its config and replicas differ on purpose);
``test_deploy_sharded.py`` checks it."""
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
_KUSTOMIZE_VERSION = re.compile(r"v?(\d+)\.(\d+)")

Doc = dict[str, Any]


def kubectl() -> str | None:
    """kubectl from the PATH, else the one beside the test control plane's kube-apiserver."""
    found = shutil.which("kubectl")
    if found is not None:
        return found
    binaries = find_binaries()
    if isinstance(binaries, str) or binaries.kubectl is None:
        return None
    return str(binaries.kubectl)


def kubectl_missing() -> str | None:
    """Why ``kubectl kustomize`` cannot render deploy/ here, or None when it can."""
    kubectl_path = kubectl()
    if kubectl_path is None:
        return "kubectl is not installed"
    try:
        out = subprocess.run(
            [kubectl_path, "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        version = json.loads(out).get("kustomizeVersion", "")
    except (subprocess.SubprocessError, OSError, ValueError) as error:
        return f"kubectl version failed: {error}"
    match = _KUSTOMIZE_VERSION.match(version)
    if match is None or int(match.group(1)) < 4:
        return f"kubectl's kustomize ({version or 'unknown'}) is older than v4 (no components)"
    return None


def render(path: Path) -> list[Doc]:
    """``kubectl kustomize path``, parsed."""
    result = subprocess.run(
        [kubectl() or "kubectl", "kustomize", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def render_raw(root: Path) -> list[Doc]:
    """The kustomize features deploy/ uses, applied to the raw files (no name hashes)."""
    kustomization = yaml.safe_load((root / "kustomization.yaml").read_text())
    docs: list[Doc] = []
    for entry in [*kustomization.get("resources", []), *kustomization.get("components", [])]:
        path = root / entry
        if path.is_dir():
            docs += render_raw(path)
        else:
            docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for generator in kustomization.get("configMapGenerator", []):
        data = {Path(name).name: (root / name).read_text() for name in generator["files"]}
        metadata = {"name": generator["name"]}
        if generator.get("behavior") == "replace":  # the overlay's data, the base's metadata
            (replaced,) = [
                d
                for d in docs
                if d["kind"] == "ConfigMap" and d["metadata"]["name"] == generator["name"]
            ]
            docs.remove(replaced)
            metadata = dict(replaced["metadata"])
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data})
    for count in kustomization.get("replicas", []):
        for doc in docs:
            if doc["kind"] in ("Deployment", "StatefulSet") and (
                doc["metadata"]["name"] == count["name"]
            ):
                doc["spec"]["replicas"] = count["count"]
    namespace = kustomization.get("namespace")
    for doc in docs:
        metadata = doc.setdefault("metadata", {})
        if namespace:
            if doc["kind"] == "Namespace":
                metadata["name"] = namespace
            elif doc["kind"] not in CLUSTER_SCOPED:
                metadata["namespace"] = namespace
            for subject in doc.get("subjects", []):
                if subject.get("kind") == "ServiceAccount":
                    subject["namespace"] = namespace
        for label in kustomization.get("labels", []):
            metadata.setdefault("labels", {}).update(label["pairs"])
        for image in kustomization.get("images", []):
            for container in _containers(doc):
                if container["image"] == image["name"]:
                    name = image.get("newName", image["name"])
                    container["image"] = f"{name}:{image['newTag']}" if "newTag" in image else name
    return docs


def _containers(doc: Doc) -> Iterator[dict[str, Any]]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    yield from spec.get("containers", [])
    yield from spec.get("initContainers", [])


def find(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    """The one document of ``kind`` (and ``name``, a generated name's prefix)."""
    found = [
        doc
        for doc in docs
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"].startswith(name))
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


_HASH_SUFFIX = re.compile(r"-[a-z0-9]{10}$")


def normalized(docs: list[Doc]) -> dict[tuple[str, str, str], Doc]:
    """Documents by (kind, namespace, name), generated names' hash suffix removed."""
    text = yaml.safe_dump(docs)
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            name = doc["metadata"]["name"]
            text = text.replace(name, _HASH_SUFFIX.sub("", name))
    return {
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
        for d in yaml.safe_load(text)
    }
