"""What ``autoscaler run``'s flags change in a loaded config, as kubectl's flags do.

The same overrides are applied to the file at start-up and to every reload of it, so a
flag holds for the life of the process: a file that later says ``dry_run: false`` cannot
undo ``--dry-run``, and a reload does not see a changed ``kubernetes`` section where only
the flag differs. ``dry_run`` is overridden in one direction only: the command line can
make a run forecast-only, never make it act.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from autoscaler.config.errors import ConfigError, Problem
from autoscaler.config.model import AutoscalerConfig

LogLevel = Literal["debug", "info", "warning", "error"]
LOG_LEVELS: tuple[LogLevel, ...] = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class RunOverrides:
    """The flags given; None (or False) leaves the file's setting."""

    kubeconfig_path: str | None = None
    """``--kubeconfig``: this file, not the one the config names (nor $KUBECONFIG)."""
    context: str | None = None
    """``--context``: this kubeconfig context, not the file's (nor the current one)."""
    log_level: LogLevel | None = None
    """``--log-level``: ``logging.level``."""
    dry_run: bool = False
    """``--dry-run``: every target forecast-only, whatever the file says."""

    def apply(self, config: AutoscalerConfig, source: str = "<config>") -> AutoscalerConfig:
        """``config`` with the flags applied.

        ``--kubeconfig`` and ``--context`` name a kubeconfig, so they use it: mode ``auto``
        becomes ``kubeconfig`` (in a pod, auto would take the service account and ignore
        them, silently). With ``mode: in_cluster`` in the file they contradict it.

        Raises:
            ConfigError: the file's ``kubernetes.mode`` is ``in_cluster`` and a kubeconfig
                flag was given (naming ``source``).
        """
        updates: dict[str, object] = {}
        if self.kubeconfig_path is not None or self.context is not None:
            kubernetes = config.kubernetes
            if kubernetes.mode == "in_cluster":
                flags = " and ".join(
                    flag
                    for flag, value in (
                        ("--kubeconfig", self.kubeconfig_path),
                        ("--context", self.context),
                    )
                    if value is not None
                )
                raise ConfigError(
                    [
                        Problem(
                            "kubernetes.mode",
                            f"is in_cluster, which uses no kubeconfig: {flags} "
                            "needs mode kubeconfig or auto",
                        )
                    ],
                    source,
                )
            changed: dict[str, object] = {"mode": "kubeconfig"}
            if self.kubeconfig_path is not None:
                changed["kubeconfig_path"] = Path(self.kubeconfig_path)
            if self.context is not None:
                changed["context"] = self.context
            updates["kubernetes"] = kubernetes.model_copy(update=changed)
        if self.log_level is not None:
            updates["logging"] = config.logging.model_copy(update={"level": self.log_level})
        if self.dry_run:
            updates["dry_run"] = True
            updates["targets"] = tuple(
                target.model_copy(update={"dry_run": True}) for target in config.targets
            )
        return config.model_copy(update=updates) if updates else config
