"""Where ``deficit sample build`` writes: an existing ``--out`` is refused unless ``--force``, the
file is replaced atomically, and no stale ``<out>.wal`` of the replaced file survives (DuckDB
refuses to open a file beside a WAL that is not its own: "WAL does not match database file").

The refusal tests replace the minute-long build with a recorder (the check comes before it);
the WAL test reads the session's real build (:func:`tests.sample.conftest.fresh_sample`), made
over an old file that a killed writer left with its WAL.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pytest

import ingest.sample
from ingest.cli import main
from ingest.sample import SAMPLE_DB, SampleChain
from tests.sample.conftest import FreshSample


class FakeBuild:
    """Records the calls in place of :func:`ingest.sample.build_sample` (a minute of anvil)."""

    def __init__(self) -> None:
        self.calls: list[Path] = []

    def __call__(self, out: Path, seed: int, **kw: Any) -> SampleChain:
        self.calls.append(out)
        out.write_bytes(b"new")
        sc = SampleChain.__new__(SampleChain)
        sc.stats = {"seed": seed}
        return sc


@pytest.fixture
def fake_build(monkeypatch: pytest.MonkeyPatch) -> FakeBuild:
    fake = FakeBuild()
    monkeypatch.setattr(ingest.sample, "build_sample", fake)
    return fake


def test_an_existing_out_is_refused_without_force(tmp_path: Path, fake_build: FakeBuild,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine.duckdb"
    out.write_bytes(b"someone's warehouse")
    assert main(["sample", "build", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err
    assert fake_build.calls == [] and out.read_bytes() == b"someone's warehouse"


def test_force_replaces_an_existing_out_and_says_so(tmp_path: Path, fake_build: FakeBuild,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine.duckdb"
    out.write_bytes(b"old")
    assert main(["sample", "build", "--out", str(out), "--force"]) == 0
    assert fake_build.calls == [out] and out.read_bytes() == b"new"
    assert f"replaced the previous {out}" in capsys.readouterr().out.replace("\n", "")
    fresh = tmp_path / "fresh.duckdb"  # a new file needs no --force
    assert main(["sample", "build", "--out", str(fresh)]) == 0 and fake_build.calls[-1] == fresh


def test_a_directory_as_out_is_refused(tmp_path: Path, fake_build: FakeBuild,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", "build", "--out", str(tmp_path), "--force"]) == 2
    assert "is a directory" in capsys.readouterr().err and fake_build.calls == []


def test_the_default_output_is_rebuilt_in_place(fake_build: FakeBuild,
                                                monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    bundled = tmp_path / "data" / "sample.duckdb"
    bundled.parent.mkdir()
    bundled.write_bytes(b"old sample")
    monkeypatch.setattr(ingest.sample, "SAMPLE_DB", bundled)
    assert main(["sample", "build"]) == 0 and fake_build.calls == [bundled]
    assert main(["sample", "build", "--out", str(bundled)]) == 0  # the same file, named


def test_help_says_what_happens_to_an_existing_file(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sample", "build", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "refused unless --force" in text and ".wal" in text and "renamed over it" in text


def test_a_failed_install_leaves_the_old_file_and_no_part(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    built, out = tmp_path / "built.duckdb", tmp_path / "out.duckdb"
    built.write_bytes(b"new")
    out.write_bytes(b"old")

    def broken(self: Path, target: Any) -> Path:
        raise OSError("disk full")

    monkeypatch.setattr(Path, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        ingest.sample._install(built, out)
    assert out.read_bytes() == b"old" and not (tmp_path / "out.duckdb.part").exists()


def test_part_files_are_ignored_by_git() -> None:
    r = subprocess.run(["git", "check-ignore", "-q", "data/sample.duckdb.part"],
                       cwd=SAMPLE_DB.parents[1])
    assert r.returncode == 0


@pytest.mark.anvil
def test_a_build_over_a_file_with_a_stale_wal_opens(fresh_sample: FreshSample) -> None:
    out = fresh_sample.path
    assert fresh_sample.replaced_stale_wal  # the fixture built over such a file
    assert not out.with_name(out.name + ".wal").exists()
    assert not out.with_name(out.name + ".part").exists()
    con = duckdb.connect(str(out), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'old'"
                           ).fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM meta.sample").fetchone()[0] > 0
    finally:
        con.close()
    assert os.path.getsize(out) == fresh_sample.chain.stats["file_bytes"]
