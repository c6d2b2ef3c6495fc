"""The code version recorded with every run tells uncommitted code states apart (a real git
repository in a temporary directory, holding a copy of ``ingest/version.py``)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "ingest" / "version.py"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


def _version(repo: Path) -> str:
    spec = importlib.util.spec_from_file_location("version_copy", repo / "ingest" / "version.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return str(mod.code_version())


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_two_uncommitted_states_have_two_versions(tmp_path: Path) -> None:
    """A bare ``.dirty`` made every uncommitted state one version, so two of them shared run ids
    and overwrote each other's results (a baseline run included)."""
    for d in ("ingest", "protocols", "backtest"):
        (tmp_path / d).mkdir()
    shutil.copy(SRC, tmp_path / "ingest" / "version.py")
    (tmp_path / "backtest" / "rules.py").write_text("X = 1\n")
    (tmp_path / "notes.txt").write_text("outside the package\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "c")
    clean = _version(tmp_path)
    assert clean.startswith("deficit ") and "+g" in clean and "dirty" not in clean
    (tmp_path / "notes.txt").write_text("changed, but not package code\n")
    assert _version(tmp_path) == clean
    (tmp_path / "backtest" / "rules.py").write_text("X = 2\n")
    a = _version(tmp_path)
    (tmp_path / "backtest" / "rules.py").write_text("X = 3\n")
    b = _version(tmp_path)
    assert a.startswith(clean + ".dirty-") and b.startswith(clean + ".dirty-") and a != b
    assert _version(tmp_path) == b  # the same state, the same version
    (tmp_path / "backtest" / "rules.py").write_text("X = 1\n")
    (tmp_path / "protocols" / "new.py").write_text("Y = 1\n")  # untracked package code counts
    c = _version(tmp_path)
    assert c.startswith(clean + ".dirty-") and c not in (a, b)
