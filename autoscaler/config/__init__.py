"""The configuration file: its typed schema and the loader that reports every problem at once.

Typical use::

    from autoscaler.config import ConfigError, load_config

    try:
        config = load_config("config.yaml")
    except ConfigError as error:
        print(error.format())  # one "path: message (line L, column C)" per problem
"""

from autoscaler.config.errors import ConfigError, Problem
from autoscaler.config.loader import load_config, parse_config
from autoscaler.config.model import (
    AutoscalerConfig,
    KafkaLagTrigger,
    PrometheusTrigger,
    TargetConfig,
    Trigger,
)

__all__ = [
    "AutoscalerConfig",
    "ConfigError",
    "KafkaLagTrigger",
    "Problem",
    "PrometheusTrigger",
    "TargetConfig",
    "Trigger",
    "load_config",
    "parse_config",
]
