"""Writing an output file whole or not at all.

Baselines, JUnit XML and reports are read by CI jobs and auditors: a reader (or a failure half-way,
e.g. a full disk) must never see half a file. The bytes go to ``<name>.<random>.part`` beside the
target, created for this write alone (two writers of one file, two CI jobs, never share it), which
is then renamed into place (atomic within one file system); the ``.part`` file is removed whatever
happens.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path``, creating its directory, through a renamed
    ``.part`` file of its own."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f"{p.name}.{secrets.token_hex(6)}.part")
    try:
        # O_EXCL: this write's own file; mode 0o666 less the umask, as a plain open() makes it
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        tmp.replace(p)
    finally:
        tmp.unlink(missing_ok=True)
