"""Both demos on a warehouse another process holds open for writing: DuckDB's lock error is
reported as the file being in use (wait, or choose another --db), not as "not a readable DuckDB
warehouse", which sent users looking for a corrupt file. Nothing is written."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from backtest.demo import SAMPLE_DB, prepare_warehouse
from backtest.errors import InputError
from ingest.demo import _refuse_other_local_data
from ingest.errors import ConfigError

HOLD = ("import duckdb, sys\n"
        "con = duckdb.connect(sys.argv[1])\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n")


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A warehouse file and the PID of the process holding it open for writing."""
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    con.close()
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        yield db, p.pid
    finally:
        assert p.stdin is not None and p.stdout is not None
        p.stdin.close()
        p.wait(timeout=60)
        p.stdout.close()


def test_backtest_demo_says_the_warehouse_is_in_use(held: tuple[Path, int]) -> None:
    db, pid = held
    before = db.read_bytes()
    with pytest.raises(InputError) as info:
        prepare_warehouse(db, SAMPLE_DB)
    msg = str(info.value)
    assert "in use by another process" in msg and f"PID {pid}" in msg and "--db" in msg
    assert "not a readable" not in msg
    assert db.read_bytes() == before


def test_ingest_demo_says_the_warehouse_is_in_use(held: tuple[Path, int]) -> None:
    db, pid = held
    with pytest.raises(ConfigError) as info:
        _refuse_other_local_data(db)
    msg = str(info.value)
    assert "in use by another process" in msg and f"PID {pid}" in msg and "--db" in msg
    assert "not a readable" not in msg


def test_a_file_that_is_not_duckdb_is_still_not_readable(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    db.write_bytes(b"not a database at all" * 300)
    with pytest.raises(InputError, match="not a readable DuckDB warehouse"):
        prepare_warehouse(db, SAMPLE_DB)
    with pytest.raises(ConfigError, match="not a readable DuckDB warehouse"):
        _refuse_other_local_data(db)
