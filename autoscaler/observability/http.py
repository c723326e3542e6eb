"""The service's HTTP endpoints: probes and status on one port, metrics on another.

* ``/healthz``: 200 ``ok`` while the process (and its event loop) runs: the liveness probe.
* ``/readyz``: 200 when ``ready()`` returns ``(True, detail)``, else 503; the body is
  ``{"ready": ..., "detail": ...}`` as JSON either way: the readiness probe.
* ``/status``: the JSON ``status()`` returns: per target, its last observation, forecast,
  decision and reason. Values are made JSON-safe first (NaN and infinities become null,
  dataclasses become objects, a ``Decision`` becomes its ``log_fields()``).
* ``/metrics``: ``ServiceMetrics.render()`` in the Prometheus text format.

The health port serves the first three (kubelet probes and people), the metrics port the
last (Prometheus); ``create_app`` puts all four on one app, for a single listener.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

import structlog
from aiohttp import web

from autoscaler.config.model import ServerConfig
from autoscaler.decision.types import Decision
from autoscaler.observability.metrics import CONTENT_TYPE, ServiceMetrics

__all__ = [
    "ReadyCheck",
    "ServerHandle",
    "StatusProvider",
    "create_app",
    "health_app",
    "jsonable",
    "metrics_app",
    "start",
]

_log = structlog.get_logger(__name__)

ReadyCheck = Callable[[], tuple[bool, str]]
"""Returns (ready, detail); detail says why not (e.g. ``waiting for the first poll``)."""

StatusProvider = Callable[[], Mapping[str, Any]]
"""Returns the service's state for ``/status``, e.g. ``{"targets": {name: {...}}}``."""


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: non-finite floats become None (JSON has no NaN)."""
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, Decision):
        return jsonable({"at": value.at, **value.log_fields()})
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)


def _json_response(body: Any, status: int = 200) -> web.Response:
    text = json.dumps(jsonable(body), allow_nan=False, separators=(",", ":"))
    return web.Response(text=text, status=status, content_type="application/json")


def _add_health_routes(app: web.Application, ready: ReadyCheck, status: StatusProvider) -> None:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        try:
            is_ready, detail = ready()
        except Exception as error:  # a failing check means not ready, never a 500
            _log.warning("readiness_check_failed", error=repr(error))
            is_ready, detail = False, f"readiness check failed: {error!r}"
        return _json_response({"ready": is_ready, "detail": detail}, 200 if is_ready else 503)

    async def status_handler(_: web.Request) -> web.Response:
        try:
            body = status()
        except Exception as error:
            _log.warning("status_failed", error=repr(error))
            return _json_response({"error": f"status unavailable: {error!r}"}, 500)
        return _json_response(body)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/status", status_handler)


def _add_metrics_route(app: web.Application, metrics: ServiceMetrics) -> None:
    async def metrics_handler(_: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        # Set as a header: aiohttp's content_type argument rejects parameters like version.
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    app.router.add_get("/metrics", metrics_handler)


def health_app(ready: ReadyCheck, status: StatusProvider) -> web.Application:
    """``/healthz``, ``/readyz`` and ``/status``."""
    app = web.Application()
    _add_health_routes(app, ready, status)
    return app


def metrics_app(metrics: ServiceMetrics) -> web.Application:
    """``/metrics`` alone: what Prometheus scrapes."""
    app = web.Application()
    _add_metrics_route(app, metrics)
    return app


def create_app(
    metrics: ServiceMetrics, ready: ReadyCheck, status: StatusProvider
) -> web.Application:
    """All four endpoints on one app."""
    app = health_app(ready, status)
    _add_metrics_route(app, metrics)
    return app


class ServerHandle:
    """The running listeners; ``stop()`` closes them (idempotent)."""

    def __init__(self, runners: list[web.AppRunner]) -> None:
        self._runners = runners

    @property
    def addresses(self) -> list[Any]:
        """Bound socket addresses, health listener first (``(host, port)`` for IPv4)."""
        return [address for runner in self._runners for address in runner.addresses]

    async def stop(self) -> None:
        runners, self._runners = self._runners, []
        for runner in reversed(runners):
            await runner.cleanup()


async def _listen(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


async def start(
    config: ServerConfig,
    *,
    metrics: ServiceMetrics,
    ready: ReadyCheck,
    status: StatusProvider,
) -> ServerHandle:
    """Listen on ``config.health_port`` (probes, status) and ``config.metrics_port``.

    If the second port cannot be bound, the first listener is closed before the error
    propagates: no half-started server is left behind.
    """
    health = await _listen(health_app(ready, status), config.bind_address, config.health_port)
    try:
        scrape = await _listen(metrics_app(metrics), config.bind_address, config.metrics_port)
    except BaseException:
        await health.cleanup()
        raise
    _log.info(
        "http_listening",
        bind_address=config.bind_address,
        health_port=config.health_port,
        metrics_port=config.metrics_port,
    )
    return ServerHandle([health, scrape])
