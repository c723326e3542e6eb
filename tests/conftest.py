"""Fixtures shared by every test folder: the real Kubernetes control plane.

One control plane (etcd + kube-apiserver, RBAC on) serves the whole session, started the
first time a test asks for it; each test gets a namespace of its own. Where the binaries
are absent (``servers.kube_control_plane.missing()`` says why) the tests that need them skip
with that reason, unless ``AUTOSCALER_REQUIRE_KUBE=1`` (set by ``.ci/run``): then they fail,
so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from servers.kube_control_plane import Kube, KubeControlPlane, missing


@pytest.fixture(scope="session")
def kube_control_plane() -> Iterator[KubeControlPlane]:
    reason = missing()
    if reason is not None:
        if os.environ.get("AUTOSCALER_REQUIRE_KUBE") == "1":
            pytest.fail(f"AUTOSCALER_REQUIRE_KUBE=1 but {reason}")
        pytest.skip(f"no Kubernetes control plane: {reason}")
    with KubeControlPlane() as plane:
        yield plane


@pytest.fixture
def kube(kube_control_plane: KubeControlPlane) -> Kube:
    namespace = f"t-{secrets.token_hex(4)}"
    kube_control_plane.admin.create_namespace(namespace)
    # Not deleted afterwards: without a controller manager a namespace never finishes
    # terminating, and the session's control plane goes away with its data.
    return Kube(kube_control_plane, namespace)
