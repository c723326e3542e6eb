"""Predictive autoscaler for event-driven workloads on Kubernetes.

Watches Kafka consumer-group lag and Prometheus metrics, forecasts the load, and patches
Deployment/StatefulSet replica counts through the ``scale`` subresource so that consumers are
scaled before the load arrives.
"""

__version__ = "0.1.0"
