"""What the service tells the outside: Prometheus metrics, live forecast accuracy, and the
HTTP endpoints (probes, status, metrics) that serve them."""

from autoscaler.observability.http import (
    ReadyCheck,
    ServerHandle,
    StatusProvider,
    create_app,
    health_app,
    jsonable,
    metrics_app,
    start,
)
from autoscaler.observability.metrics import (
    CONTENT_TYPE,
    DEFAULT_ACCURACY_WINDOW,
    ForecastAccuracy,
    ServiceMetrics,
    pinball_loss,
)

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_ACCURACY_WINDOW",
    "ForecastAccuracy",
    "ReadyCheck",
    "ServerHandle",
    "ServiceMetrics",
    "StatusProvider",
    "create_app",
    "health_app",
    "jsonable",
    "metrics_app",
    "pinball_loss",
    "start",
]
