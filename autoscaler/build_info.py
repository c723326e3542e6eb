"""Which build this is: the package version and the git commit it was built from.

The commit comes from, in order: the ``AUTOSCALER_REVISION`` environment variable (the
image bakes it from ``docker build --build-arg REVISION=...``), else ``git`` when the
package runs from a checkout (an editable install, ``python -m autoscaler`` in the repo),
else ``unknown``. A checkout is only trusted when git tracks this very package: a virtual
environment inside some other repository must not report that repository's commit.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from autoscaler import __version__

REVISION_ENV = "AUTOSCALER_REVISION"
PACKAGE_DIR = Path(__file__).resolve().parent
_GIT_TIMEOUT_SECONDS = 5.0

CommitSource = Literal["env", "git", "unknown"]


@dataclass(frozen=True)
class BuildInfo:
    version: str
    commit: str
    """A commit hash, or ``unknown``."""
    commit_from: CommitSource
    modified: bool | None = None
    """From a checkout: whether the package's files differ from that commit (None when
    not from git)."""

    def text(self) -> str:
        """Two lines for people."""
        where = {
            "env": f"from ${REVISION_ENV}",
            "git": "git checkout" + (", with uncommitted changes" if self.modified else ""),
            "unknown": f"neither ${REVISION_ENV} nor a git checkout",
        }[self.commit_from]
        return f"autoscaler {self.version}\ncommit {self.commit} ({where})"

    def data(self) -> dict[str, object]:
        return {
            "version": self.version,
            "commit": self.commit,
            "commit_from": self.commit_from,
            "modified": self.modified,
        }


def build_info(
    environ: Mapping[str, str] | None = None, package_dir: Path = PACKAGE_DIR
) -> BuildInfo:
    """The version, and the commit from the environment, git, or neither."""
    env = os.environ if environ is None else environ
    baked = env.get(REVISION_ENV, "").strip()
    if baked and baked != "unknown":  # the Dockerfile's ARG default is "unknown"
        return BuildInfo(__version__, baked, "env")
    from_git = _git_commit(package_dir)
    if from_git is not None:
        commit, modified = from_git
        return BuildInfo(__version__, commit, "git", modified)
    return BuildInfo(__version__, "unknown", "unknown")


def _git(cwd: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):  # no git, no such folder, a hung git
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _git_commit(package_dir: Path) -> tuple[str, bool] | None:
    """(HEAD, whether the package differs from it), when git tracks this package."""
    if not package_dir.is_dir():
        return None
    tracked = _git(package_dir, "ls-files", "--error-unmatch", "__init__.py")
    if tracked is None:
        return None
    commit = _git(package_dir, "rev-parse", "HEAD")
    if not commit:
        return None
    changes = _git(package_dir, "status", "--porcelain", "--untracked-files=no", "--", ".")
    return commit, bool(changes)
