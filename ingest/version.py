"""The code version recorded with every run (``meta.runs``, ``bt.runs``): package version and git
commit. Its own module so that the backtest can use it without importing the network code."""

from __future__ import annotations

import subprocess

__all__ = ["code_version"]


def code_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("deficit")
    except PackageNotFoundError:
        v = "0+unknown"
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=__file__.rsplit("/", 2)[0]).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"deficit {v}" + (f"+g{sha}" if sha else "")
