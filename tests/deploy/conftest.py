"""Session fixtures of the deployment tests: deploy/ rendered once per flavor."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from deploy_helpers import FLAVORS, Doc, find, kubectl_missing, render, render_raw


@pytest.fixture(scope="session")
def kubectl_reason() -> str | None:
    return kubectl_missing()


@pytest.fixture(scope="session")
def rendered(kubectl_reason: str | None) -> dict[str, list[Doc]]:
    """Each flavor of deploy/, rendered by kubectl when possible, else by ``render_raw``."""
    if kubectl_reason is None:
        return {flavor: render(path) for flavor, path in FLAVORS.items()}
    return {flavor: render_raw(path) for flavor, path in FLAVORS.items()}


@pytest.fixture(scope="session")
def shipped_config(rendered: dict[str, list[Doc]]) -> dict[str, Any]:
    """The config the ConfigMap carries (the same in every flavor), parsed."""
    configmap = find(rendered["default"], "ConfigMap", "predictive-autoscaler-config")
    config: dict[str, Any] = yaml.safe_load(configmap["data"]["config.yaml"])
    return config
