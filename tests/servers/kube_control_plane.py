"""A real Kubernetes control plane for the tests: etcd and kube-apiserver, RBAC on.

    with KubeControlPlane() as kube:            # about 5 s; one per test session
        kube.admin.create_namespace("t-1")
        path = kube.service_account_kubeconfig("t-1", "predictive-autoscaler")

The binaries are found as controller-runtime's envtest finds them: ``KUBEBUILDER_ASSETS``
first (a folder with kube-apiserver, etcd and kubectl), then ``../shared/k8s/bin`` beside the
repository (etcd from the PATH: Debian's ``etcd-server``). ``missing()`` says why they
cannot be found, so the tests that need them skip with that reason on a user's machine.

What a real server gives that the fake in ``kube_api.py`` does not: the real ``scale``
subresource (merge patch, resourceVersion preconditions and 409), RBAC (a ServiceAccount
token gets exactly the rules applied; a removed rule is a real 403), Events, Leases,
admission (Pod Security) and server-side dry-run. Without a controller manager Deployments
get no ReplicaSets and no pods: ``status`` changes only when a test writes it.
``KubeControlPlane(controller_manager=True)`` also runs kube-controller-manager (found beside
kube-apiserver; ``missing(controller_manager=True)`` says when it is not there): Deployments
get real ReplicaSets and Pods, and ``status.readyReplicas`` follows the Pods' Ready
condition. There is still no scheduler and no kubelet: ``servers.pod_runner`` plays both.

``pause()``/``resume()`` stop and continue the API server process (SIGSTOP/SIGCONT): a
real outage in which requests hang until the client's timeout, as when a control plane is
overloaded or partitioned.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servers.process import ManagedServer, free_port, log_tail

__all__ = ["Admin", "Binaries", "Kube", "KubeControlPlane", "find_binaries", "missing"]

ROOT = Path(__file__).resolve().parents[2]
SHARED_BIN = ROOT.parent / "shared" / "k8s" / "bin"


@dataclass(frozen=True)
class Binaries:
    apiserver: Path
    etcd: Path
    kubectl: Path | None
    controller_manager: Path | None = None


def find_binaries() -> Binaries | str:
    """The binaries, or why they are not here (the reason a test skips with)."""
    tried: list[str] = []
    folders: list[Path] = []
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        folders.append(Path(assets))
    folders.append(SHARED_BIN)
    for folder in folders:
        apiserver = folder / "kube-apiserver"
        if not os.access(apiserver, os.X_OK):
            tried.append(str(apiserver))
            continue
        etcd_here = folder / "etcd"
        etcd = etcd_here if os.access(etcd_here, os.X_OK) else shutil.which("etcd")
        if etcd is None:
            return (
                f"found {apiserver} but no etcd (neither in {folder} nor on the PATH: "
                "apt-get install etcd-server)"
            )
        kubectl_here = folder / "kubectl"
        kubectl = kubectl_here if os.access(kubectl_here, os.X_OK) else shutil.which("kubectl")
        kcm = folder / "kube-controller-manager"
        return Binaries(
            apiserver,
            Path(etcd),
            Path(kubectl) if kubectl else None,
            kcm if os.access(kcm, os.X_OK) else None,
        )
    return (
        "no kube-apiserver: set KUBEBUILDER_ASSETS to a folder with kube-apiserver and etcd, "
        f"or provide {SHARED_BIN} (tried {', '.join(tried)})"
    )


def missing(*, controller_manager: bool = False) -> str | None:
    found = find_binaries()
    if isinstance(found, str):
        return found
    if controller_manager and found.controller_manager is None:
        return f"no kube-controller-manager beside {found.apiserver}"
    if shutil.which("openssl") is None:
        return "openssl is not installed (the control plane's certificates are made with it)"
    return None


class Admin:
    """Synchronous JSON calls as ``system:masters``: test set-up and assertions only."""

    def __init__(self, url: str, token: str, ca_file: Path) -> None:
        self.url = url
        self._token = token
        self._ssl = ssl.create_default_context(cafile=str(ca_file))

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        token: str | None = None,
    ) -> Any:
        """The decoded answer; an HTTP error raises ``urllib.error.HTTPError``."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token or self._token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        with urllib.request.urlopen(request, context=self._ssl, timeout=30) as answer:
            raw = answer.read()
        return json.loads(raw) if raw else None

    def status_of(self, method: str, path: str, body: Any = None, **kwargs: Any) -> int:
        """The HTTP status of a request (the error's, when it fails)."""
        try:
            self.request(method, path, body, **kwargs)
        except urllib.error.HTTPError as error:
            return error.code
        return 200

    # -------------------------------------------------------------- objects

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        metadata: dict[str, Any] = {"name": name, "labels": labels or {}}
        self.request("POST", "/api/v1/namespaces", {"metadata": metadata})

    def create_service_account(self, namespace: str, name: str) -> None:
        self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            {"metadata": {"name": name}},
        )

    def create_workload(
        self,
        namespace: str,
        name: str,
        replicas: int,
        *,
        kind: str = "Deployment",
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A Deployment or StatefulSet that never runs (no kubelet): only its scale counts."""
        labels = {"app": name}
        spec: dict[str, Any] = {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "consumer", "image": "example/consumer:1"}]},
            },
        }
        if kind == "StatefulSet":
            spec["serviceName"] = name
        body = {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": spec,
        }
        created: dict[str, Any] = self.request("POST", self.workloads_path(namespace, kind), body)
        return created

    @staticmethod
    def workloads_path(namespace: str, kind: str = "Deployment") -> str:
        plural = {"Deployment": "deployments", "StatefulSet": "statefulsets"}[kind]
        return f"/apis/apps/v1/namespaces/{namespace}/{plural}"

    def workload_path(self, namespace: str, name: str, kind: str = "Deployment") -> str:
        return f"{self.workloads_path(namespace, kind)}/{name}"

    def replicas(self, namespace: str, name: str, kind: str = "Deployment") -> int:
        scale = self.request("GET", self.workload_path(namespace, name, kind) + "/scale")
        return int(scale["spec"].get("replicas", 0))

    def set_replicas(self, namespace: str, name: str, replicas: int) -> None:
        """Another writer (a person with kubectl scale) changes the replica count."""
        self.request(
            "PATCH",
            self.workload_path(namespace, name) + "/scale",
            {"spec": {"replicas": replicas}},
            content_type="application/merge-patch+json",
        )

    def set_ready(self, namespace: str, name: str, replicas: int, ready: int) -> None:
        """Write the status a kubelet and the controller manager would (there are none)."""
        self.request(
            "PATCH",
            self.workload_path(namespace, name) + "/status",
            {"status": {"replicas": replicas, "readyReplicas": ready}},
            content_type="application/merge-patch+json",
        )

    def annotate(self, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
        self.request(
            "PATCH",
            self.workload_path(namespace, name),
            {"metadata": {"annotations": annotations}},
            content_type="application/merge-patch+json",
        )

    def delete_workload(self, namespace: str, name: str) -> None:
        self.request("DELETE", self.workload_path(namespace, name))

    def events(self, namespace: str) -> list[dict[str, Any]]:
        answer = self.request("GET", f"/api/v1/namespaces/{namespace}/events")
        items: list[dict[str, Any]] = answer["items"]
        return items

    def lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            lease: dict[str, Any] = self.request(
                "GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
            )
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise
        return lease

    def token(self, namespace: str, service_account: str, seconds: int = 3600) -> str:
        """A bound ServiceAccount token (TokenRequest), as the kubelet mounts in a pod."""
        answer = self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": seconds},
            },
        )
        return str(answer["status"]["token"])


class KubeControlPlane(ManagedServer):
    """etcd + kube-apiserver on free loopback ports, in a temporary folder."""

    def __init__(
        self, binaries: Binaries | None = None, *, controller_manager: bool = False
    ) -> None:
        found = binaries or find_binaries()
        if isinstance(found, str):
            raise RuntimeError(found)
        if controller_manager and found.controller_manager is None:
            raise RuntimeError(f"no kube-controller-manager beside {found.apiserver}")
        self.binaries = found
        self.controller_manager = controller_manager
        self._kcm: subprocess.Popen[bytes] | None = None
        self._kcm_token = secrets.token_hex(24)
        self._dir = Path(tempfile.mkdtemp(prefix="kube-"))
        self._etcd: subprocess.Popen[bytes] | None = None
        self._apiserver: subprocess.Popen[bytes] | None = None
        self._apiserver_args: list[str] = []
        self.url = ""
        self._token = secrets.token_hex(24)
        self._paused = False

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def ca_file(self) -> Path:
        return self._dir / "pki" / "ca.crt"

    @property
    def admin(self) -> Admin:
        return Admin(self.url, self._token, self.ca_file)

    @property
    def admin_kubeconfig(self) -> Path:
        return self._dir / "admin.kubeconfig"

    # -------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._pki()
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._etcd = self._spawn(
            "etcd",
            [
                str(self.binaries.etcd),
                "--name",
                "test",
                "--data-dir",
                str(self._dir / "etcd"),
                "--listen-client-urls",
                etcd_url,
                "--advertise-client-urls",
                etcd_url,
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer_port}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer_port}",
                "--initial-cluster",
                f"test=http://127.0.0.1:{peer_port}",
                "--logger",
                "zap",
                "--log-level",
                "warn",
            ],
        )
        self._wait("etcd", self._etcd, lambda: _get(f"{etcd_url}/health", None).find('"true"') >= 0)
        pki = self._dir / "pki"
        self._apiserver_args = [
            str(self.binaries.apiserver),
            "--etcd-servers",
            etcd_url,
            "--bind-address",
            "127.0.0.1",
            "--advertise-address",
            "127.0.0.1",
            "--secure-port",
            str(api_port),
            "--endpoint-reconciler-type",
            "none",
            "--cert-dir",
            str(self._dir / "apiserver-certs"),
            "--tls-cert-file",
            str(pki / "apiserver.crt"),
            "--tls-private-key-file",
            str(pki / "apiserver.key"),
            "--client-ca-file",
            str(pki / "ca.crt"),
            "--token-auth-file",
            str(pki / "tokens.csv"),
            "--authorization-mode",
            "Node,RBAC",
            "--service-account-issuer",
            "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file",
            str(pki / "sa.pub"),
            "--service-account-signing-key-file",
            str(pki / "sa.key"),
            "--service-cluster-ip-range",
            "10.0.0.0/24",
            "--allow-privileged=false",
            "--profiling=false",
        ]
        self.url = f"https://127.0.0.1:{api_port}"
        self._apiserver = self._spawn("apiserver", self._apiserver_args)
        context = ssl.create_default_context(cafile=str(self.ca_file))
        self._wait(
            "apiserver",
            self._apiserver,
            lambda: _get(f"{self.url}/readyz", context, self._token) == "ok",
            seconds=120,
        )
        self._write_kubeconfig(self.admin_kubeconfig, "admin", self._token)
        if self.controller_manager:
            self._start_controller_manager()

    def _start_controller_manager(self) -> None:
        """kube-controller-manager as ``../shared/k8s/control-plane start`` runs it: every
        controller but the node, volume, service and route ones (there are no nodes to
        manage, no cloud and no volumes)."""
        assert self.binaries.controller_manager is not None
        kubeconfig = self._dir / "kcm.kubeconfig"
        self._write_kubeconfig(kubeconfig, "system:kube-controller-manager", self._kcm_token)
        pki = self._dir / "pki"
        port = free_port()
        self._kcm = self._spawn(
            "kcm",
            [
                str(self.binaries.controller_manager),
                "--kubeconfig",
                str(kubeconfig),
                "--authentication-kubeconfig",
                str(kubeconfig),
                "--authorization-kubeconfig",
                str(kubeconfig),
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                str(port),
                "--cert-dir",
                str(self._dir / "kcm-certs"),
                "--authentication-skip-lookup",
                "--service-account-private-key-file",
                str(pki / "sa.key"),
                "--root-ca-file",
                str(self.ca_file),
                "--use-service-account-credentials=true",
                "--leader-elect=false",
                "--controllers",
                "*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service,-route,"
                "-persistentvolume-binder,-attachdetach,-persistentvolume-expander,"
                "-ephemeral-volume,-pv-protection,-pvc-protection",
            ],
        )
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self._wait(
            "kcm",
            self._kcm,
            lambda: _get(f"https://127.0.0.1:{port}/healthz", context) == "ok",
        )

    def close(self) -> None:
        if self._paused:
            self.resume()
        for process in (self._kcm, self._apiserver, self._etcd):
            if process is not None and process.poll() is None:
                # A SIGTERMed apiserver drains for up to 60 s; nothing here needs a drain.
                process.kill()
                process.wait(timeout=30)
        shutil.rmtree(self._dir, ignore_errors=True)

    def pause(self) -> None:
        """An outage: the API server stops answering (connections hang) until ``resume``."""
        assert self._apiserver is not None
        self._apiserver.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        assert self._apiserver is not None
        self._apiserver.send_signal(signal.SIGCONT)
        self._paused = False

    # -------------------------------------------------------------- credentials

    def service_account_kubeconfig(self, namespace: str, service_account: str) -> Path:
        """A kubeconfig that authenticates as the ServiceAccount: exactly its RBAC."""
        token = self.admin.token(namespace, service_account)
        path = self._dir / f"sa-{namespace}-{service_account}-{secrets.token_hex(3)}.kubeconfig"
        self._write_kubeconfig(path, f"system:serviceaccount:{namespace}:{service_account}", token)
        return path

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        stdin: str | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        if self.binaries.kubectl is None:
            raise RuntimeError("no kubectl beside kube-apiserver nor on the PATH")
        result = subprocess.run(
            [
                str(self.binaries.kubectl),
                "--kubeconfig",
                str(kubeconfig or self.admin_kubeconfig),
                *args,
            ],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    # -------------------------------------------------------------- plumbing

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self._dir / f"{name}.log").open("ab")
        return subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _wait(
        self, name: str, process: subprocess.Popen[bytes], ready: Any, seconds: float = 60
    ) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{log_tail(self._dir / f'{name}.log')}")
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(
            f"{name} not ready in {seconds} s:\n{log_tail(self._dir / f'{name}.log')}"
        )

    def _pki(self) -> None:
        pki = self._dir / "pki"
        pki.mkdir(mode=0o700)

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], cwd=pki, check=True, capture_output=True, timeout=60)

        openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "3650",
            "-subj",
            "/CN=test-ca",
        )
        (pki / "apiserver.ext").write_text(
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n"
        )
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "apiserver.key",
            "-out",
            "apiserver.csr",
            "-subj",
            "/CN=kube-apiserver",
        )
        openssl(
            "x509",
            "-req",
            "-in",
            "apiserver.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "apiserver.crt",
            "-days",
            "3650",
            "-extfile",
            "apiserver.ext",
        )
        openssl("genrsa", "-out", "sa.key", "2048")
        openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
        (pki / "tokens.csv").write_text(
            f'{self._token},admin,admin-uid,"system:masters"\n'
            f"{self._kcm_token},system:kube-controller-manager,kcm-uid\n"
        )

    def _write_kubeconfig(self, path: Path, user: str, token: str) -> None:
        ca = base64.b64encode(self.ca_file.read_bytes()).decode()
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "test", "cluster": {"server": self.url, "certificate-authority-data": ca}}
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": user}}],
            "current-context": "test",
        }
        path.write_text(json.dumps(document))
        path.chmod(0o600)


def _get(url: str, context: ssl.SSLContext | None, token: str | None = None) -> str:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, context=context, timeout=3) as answer:
            return str(answer.read().decode())
    except urllib.error.HTTPError:
        return ""


@dataclass
class Kube:
    """The session's control plane, seen from one test's namespace."""

    plane: KubeControlPlane
    namespace: str

    @property
    def admin(self) -> Admin:
        return self.plane.admin

    @property
    def admin_kubeconfig(self) -> Path:
        return self.plane.admin_kubeconfig

    def service_account(self, name: str = "predictive-autoscaler") -> Path:
        """A ServiceAccount in this namespace (created) and a kubeconfig with its token."""
        self.admin.create_service_account(self.namespace, name)
        return self.plane.service_account_kubeconfig(self.namespace, name)
