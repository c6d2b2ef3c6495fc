"""Writing an output file whole or not at all.

Baselines, JUnit XML and reports are read by CI jobs and auditors: a reader (or a failure half-way,
e.g. a full disk) must never see half a file. The bytes go to ``<name>.part`` beside the target,
which is then renamed into place (atomic within one file system); the ``.part`` file is removed
whatever happens.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path``, creating its directory, through a renamed
    ``.part`` file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".part")
    try:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
        tmp.replace(p)
    finally:
        tmp.unlink(missing_ok=True)
