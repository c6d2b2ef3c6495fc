"""The code version recorded with every run (``meta.runs``, ``bt.runs``): package version and git
commit. Its own module so that the backtest can use it without importing the network code."""

from __future__ import annotations

import hashlib
import subprocess
from functools import cache
from pathlib import Path

__all__ = ["code_version", "INGEST_FORMAT"]

#: The version of what ingest writes, recorded (inside ``meta.checkpoints.asked_sha256``) with
#: every ingested block interval. **Bump it when a fix changes the rows ingest writes for the
#: same chain data** (a decoding or derivation bug, a column filled differently): intervals stored
#: under another value are then stale, and the next ``deficit ingest`` over them re-ingests them
#: (the backtest refuses them until it has). Declaring a new event, role or table needs no bump:
#: the fingerprint covers the declarations themselves (:meth:`ingest.datasets.base.LogDataset.asked_sha256`).
INGEST_FORMAT = 1


@cache
def code_version() -> str:
    """``deficit <version>+g<commit>``, with ``.dirty-<hash>`` when the package sources
    (``ingest``, ``protocols``, ``backtest``) differ from that commit: a run made with uncommitted
    code says so, and ``<hash>`` (12 hex digits of SHA-256 over the diff against the commit and
    the untracked files' names and bytes) tells two different uncommitted states apart, so they
    do not share a run id (a baseline run would be overwritten by another code state's)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("deficit")
    except PackageNotFoundError:
        v = "0+unknown"
    root = __file__.rsplit("/", 2)[0]
    paths = ["ingest", "protocols", "backtest"]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=root).stdout.strip()
        dirty = ""
        if sha:
            diff = subprocess.run(["git", "diff", "--binary", "HEAD", "--", *paths], capture_output=True,
                                  timeout=30, cwd=root).stdout
            untracked = subprocess.run(
                ["git", "ls-files", "-z", "--others", "--exclude-standard", "--", *paths],
                capture_output=True, timeout=30, cwd=root).stdout.split(b"\0")
            h = hashlib.sha256(diff)
            for name in sorted(n for n in untracked if n):
                h.update(b"\0" + name + b"\0")
                try:
                    h.update((Path(root) / name.decode()).read_bytes())
                except OSError:
                    pass
            if diff or any(untracked):
                dirty = f".dirty-{h.hexdigest()[:12]}"
    except (OSError, subprocess.SubprocessError):
        sha, dirty = "", ""
    return f"deficit {v}" + (f"+g{sha}" if sha else "") + dirty
