"""A real Prometheus for tests: backfilled history, a free port on 127.0.0.1, stopped after.

    with PrometheusServer(tmp_path, [Series("up", {"job": "x"}, [(t, 1.0), ...])]) as server:
        requests.get(f"{server.url}/api/v1/query", params={"query": "up"})

The series are written as OpenMetrics text and turned into TSDB blocks by
``promtool tsdb create-blocks-from openmetrics`` before Prometheus starts on that directory
(with a 100-year retention: blocks older than the retention are deleted at start-up).
``stop()`` and ``start()`` simulate an outage and a recovery on the same port and data;
``backfill()`` adds history while stopped; ``scrape_configs`` lets a test scrape its own
exporter. Binaries come from Debian's ``prometheus`` package (``bash .ci/install``).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from servers.process import ManagedServer, free_port, log_tail, terminate

__all__ = ["PrometheusServer", "PrometheusServerError", "Series"]

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# promtool writes 2-hour blocks by default: 360 of them for 30 days, which takes promtool
# ~30 s. The (hidden, in 2.42) flag below makes it write a few large ones in well under 1 s.
_MAX_BLOCK_DURATION = "8760h"


class PrometheusServerError(RuntimeError):
    """The test server could not be prepared, started or stopped; the message says why."""


@dataclass(frozen=True)
class Series:
    """One time series to backfill: ``name{labels}`` with ``(unix_seconds, value)`` samples
    in increasing time order. NaN and infinite values are allowed."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    samples: Sequence[tuple[float, float]] = ()

    def __post_init__(self) -> None:
        if not _METRIC_NAME.match(self.name):
            raise ValueError(f"invalid metric name {self.name!r}")
        for label in self.labels:
            if not _LABEL_NAME.match(label) or label.startswith("__"):
                raise ValueError(f"invalid label name {label!r}")

    @property
    def selector(self) -> str:
        """PromQL selecting exactly this series, e.g. ``rate{topic="orders"}``."""
        inner = ",".join(f"{key}={_quote(value)}" for key, value in sorted(self.labels.items()))
        return f"{self.name}{{{inner}}}"


class PrometheusServer(ManagedServer):
    """A Prometheus process on 127.0.0.1, holding the given series from its first start.

    Args:
        workdir: where the config, OpenMetrics file, TSDB and log go; default a temporary
            directory removed on ``close()``.
        series: history to backfill before the first start.
        scrape_configs: Prometheus ``scrape_configs`` entries (as dicts), if it must scrape.
        scrape_interval: the global scrape (and evaluation) interval.
        extra_args: more ``prometheus`` command-line flags.
        startup_timeout: seconds to wait for ``/-/ready``.
        stop_timeout: seconds to wait after SIGTERM before SIGKILL.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        series: Iterable[Series] = (),
        *,
        scrape_configs: Sequence[Mapping[str, Any]] = (),
        scrape_interval: str = "1s",
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="prometheus-")
            workdir = Path(self._tempdir.name)
        self.workdir = Path(workdir)
        self.tsdb_dir = self.workdir / "tsdb"
        self.config_file = self.workdir / "prometheus.yml"
        self.log_file = self.workdir / "prometheus.log"
        self.series: list[Series] = []
        self.timings: dict[str, float] = {}
        """Seconds taken by the last ``backfill`` and ``start`` (for reports)."""
        self._pending = list(series)
        self._scrape_configs = [dict(c) for c in scrape_configs]
        self._scrape_interval = scrape_interval
        self._extra_args = list(extra_args)
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._port: int | None = None
        self._backfills = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (fixed at the first start, kept across restarts)."""
        if self._port is None:
            raise PrometheusServerError("the server has not been started yet")
        return f"http://127.0.0.1:{self._port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Backfill pending series, start Prometheus and wait until it is ready. The first
        start picks a free port (another one if it was taken meanwhile); later ones reuse it."""
        if self.running:
            return
        _require_binaries()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tsdb_dir.mkdir(exist_ok=True)
        if self._pending:
            self.backfill(self._pending)
            self._pending = []
        self._write_config()
        first_start = self._port is None
        for attempt in range(3):
            if first_start:
                self._port = free_port()
            began = time.monotonic()
            try:
                self._spawn_and_wait()
            except _PortTakenError:
                if first_start and attempt < 2:
                    continue
                raise PrometheusServerError(
                    f"port {self._port} is taken; log tail:\n{self.log_tail()}"
                ) from None
            self.timings["startup"] = time.monotonic() - began
            return

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``stop_timeout``; the data and port are kept."""
        process, self._process = self._process, None
        terminate(process, self._stop_timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        """Stop, and remove the working directory if it is our temporary one."""
        self.stop()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    # ------------------------------------------------------------------ data

    def backfill(self, series: Iterable[Series]) -> float:
        """Write ``series`` into the TSDB (only while stopped); returns the seconds taken."""
        if self.running:
            raise PrometheusServerError("backfill needs a stopped server: call stop() first")
        _require_binaries()
        series = list(series)
        self.tsdb_dir.mkdir(parents=True, exist_ok=True)
        self._backfills += 1
        source = self.workdir / f"backfill-{self._backfills}.om.txt"
        began = time.monotonic()
        write_openmetrics(series, source)
        command = ["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q"]
        paths = [str(source), str(self.tsdb_dir)]
        done = _run([*command, f"--max-block-duration={_MAX_BLOCK_DURATION}", *paths])
        if done.returncode != 0 and "max-block-duration" in done.stdout:  # flag unknown
            done = _run([*command, *paths])
        if done.returncode != 0:
            raise PrometheusServerError(
                f"promtool could not backfill {source} (exit {done.returncode}):\n"
                f"{_tail(done.stdout)}"
            )
        source.unlink()
        self.series.extend(series)
        self.timings["backfill"] = time.monotonic() - began
        return self.timings["backfill"]

    def log_tail(self, lines: int = 20) -> str:
        """The end of Prometheus's own log (for error messages)."""
        return log_tail(self.log_file, lines)

    # ------------------------------------------------------------------ internals

    def _write_config(self) -> None:
        config = {
            "global": {
                "scrape_interval": self._scrape_interval,
                "evaluation_interval": self._scrape_interval,
            },
            "scrape_configs": self._scrape_configs,
        }
        # JSON is YAML: no YAML writer needed.
        self.config_file.write_text(json.dumps(config, indent=2), encoding="utf-8")

    def _spawn_and_wait(self) -> None:
        self._log = self.log_file.open("ab")
        self._process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={self.config_file}",
                f"--storage.tsdb.path={self.tsdb_dir}",
                f"--web.listen-address=127.0.0.1:{self._port}",
                "--storage.tsdb.retention.time=100y",
                "--log.level=info",  # into the log file only: shown when start-up fails
                *self._extra_args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        deadline = time.monotonic() + self._startup_timeout
        ready_url = f"http://127.0.0.1:{self._port}/-/ready"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self.stop()
                if "address already in use" in self.log_tail(5):
                    raise _PortTakenError
                raise PrometheusServerError(
                    f"prometheus exited with code {code} during start-up; log tail:\n"
                    f"{self.log_tail()}"
                )
            # Refused while starting, 503 while loading the TSDB.
            with contextlib.suppress(OSError), urllib.request.urlopen(ready_url, timeout=1) as ok:
                if ok.status == 200:
                    return
            time.sleep(0.02)
        self.stop()
        raise PrometheusServerError(
            f"prometheus not ready at {ready_url} after {self._startup_timeout:g} s; "
            f"log tail:\n{self.log_tail()}"
        )


class _PortTakenError(Exception):
    """Another process took the port between our probe and Prometheus's bind."""


def write_openmetrics(series: Iterable[Series], path: Path) -> None:
    """The series as OpenMetrics text: one ``# TYPE`` per metric name (its series must be
    contiguous), one line per sample, ``# EOF`` at the end."""
    by_name: dict[str, list[Series]] = {}
    for one in series:
        by_name.setdefault(one.name, []).append(one)
    with path.open("w", encoding="utf-8") as out:
        for name, family in by_name.items():
            out.write(f"# TYPE {name} gauge\n")
            for one in family:
                labels = ",".join(f"{key}={_quote(value)}" for key, value in one.labels.items())
                prefix = f"{name}{{{labels}}} " if labels else f"{name} "
                out.writelines(
                    f"{prefix}{_number(value)} {_number(timestamp)}\n"
                    for timestamp, value in one.samples
                )
        out.write("# EOF\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))  # shortest text that reads back as the same float


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _require_binaries() -> None:
    missing = [tool for tool in ("prometheus", "promtool") if shutil.which(tool) is None]
    if missing:
        raise PrometheusServerError(
            f"{' and '.join(missing)} not found on PATH: run `bash .ci/install` "
            "(installs Debian's prometheus package), or `bash .ci/test` to install and test"
        )


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty)"
