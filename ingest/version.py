"""The code version recorded with every run (``meta.runs``, ``bt.runs``): package version and git
commit. Its own module so that the backtest can use it without importing the network code."""

from __future__ import annotations

import subprocess
from functools import cache

__all__ = ["code_version"]


@cache
def code_version() -> str:
    """``deficit <version>+g<commit>``, with ``.dirty`` when the package sources (``ingest``,
    ``protocols``, ``backtest``) differ from that commit — a run made with uncommitted code says so."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("deficit")
    except PackageNotFoundError:
        v = "0+unknown"
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=__file__.rsplit("/", 2)[0]).stdout.strip()
        dirty = sha != "" and subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", "ingest", "protocols", "backtest"], capture_output=True,
            timeout=5, cwd=__file__.rsplit("/", 2)[0]).returncode == 1
    except (OSError, subprocess.SubprocessError):
        sha, dirty = "", False
    return f"deficit {v}" + (f"+g{sha}" if sha else "") + (".dirty" if dirty else "")
