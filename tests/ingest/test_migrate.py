"""``deficit migrate``: a warehouse written by an older version, brought to this version's tables.

The "older version" is made by altering a current warehouse the way an older declaration would
have left it (a column that did not exist yet, a bt table laid out differently), since no older
release of deficit exists to write one.
"""

from __future__ import annotations

import pytest

from backtest.cli import main
from ingest.errors import WarehouseError
from ingest.migrate import MigrationError, apply_migration, plan_migration
from ingest.schema import registered_tables
from ingest.warehouse import Warehouse


def _fresh(path):
    with Warehouse(path) as wh:
        wh.ensure(*registered_tables())


def _liquidations_columns(wh):
    return [r[0] for r in wh.con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name='bt' AND table_name='liquidations' "
        "ORDER BY column_index").fetchall()]


def test_appended_nullable_column_is_added_and_rows_are_kept(tmp_path, capsys):
    db = tmp_path / "w.duckdb"
    _fresh(db)
    t = next(t for t in registered_tables() if t.fqn == "meta.runs")
    last = t.columns[-1]
    assert last.nullable, "the test needs a table whose last column is nullable"
    with Warehouse(db) as wh:  # a run row written before meta.runs had its last column
        wh.con.execute("INSERT INTO meta.runs VALUES ('r-old', 'ingest', 1, 'x', ['blocks'], 1, 2, 'head', "
                       "'v0', now(), NULL, 'ok', 'kept')")
        wh.con.execute(f'ALTER TABLE meta.runs DROP COLUMN "{last.name}"')
    with Warehouse(db) as wh:
        with pytest.raises(WarehouseError, match="deficit migrate"):
            wh.ensure(*registered_tables())

    assert main(["migrate", "--db", str(db)]) == 0  # the plan only
    out = capsys.readouterr().out
    assert "meta.runs" in out and last.name in out and "--apply" in out
    with Warehouse(db) as wh, pytest.raises(WarehouseError):
        wh.ensure(*registered_tables())  # nothing changed yet

    assert main(["migrate", "--db", str(db), "--apply"]) == 0
    with Warehouse(db) as wh:
        wh.ensure(*registered_tables())  # matches now
        doc = wh.con.execute(
            "SELECT comment FROM duckdb_columns() WHERE schema_name='meta' AND table_name='runs' "
            "AND column_name=?", [last.name]).fetchone()[0]
        assert doc == last.doc
        assert wh.con.execute(f'SELECT run_id, status, "{last.name}" FROM meta.runs').fetchall() == [
            ("r-old", "ok", None)]
    assert main(["migrate", "--db", str(db)]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_changed_bt_table_is_archived_not_dropped(tmp_path):
    db = tmp_path / "w.duckdb"
    _fresh(db)
    with Warehouse(db) as wh:
        declared = _liquidations_columns(wh)
        # an older layout: the first two columns only, with one stored row
        a, b = declared[:2]
        wh.con.execute("DROP TABLE bt.liquidations")
        wh.con.execute(f'CREATE TABLE bt.liquidations ("{a}" VARCHAR, "{b}" VARCHAR)')
        wh.con.execute("INSERT INTO bt.liquidations VALUES ('bt-old-run', 'x')")
        steps = plan_migration(wh, archive_schema="archive_test")
        assert [(s.table, s.action) for s in steps] == [("bt.liquidations", "archive")]
        apply_migration(wh, steps)
        wh.ensure(*registered_tables())
        assert _liquidations_columns(wh) == declared
        assert wh.con.execute("SELECT count(*) FROM bt.liquidations").fetchone()[0] == 0
        assert wh.con.execute(f'SELECT "{a}", "{b}" FROM archive_test.liquidations').fetchall() == [
            ("bt-old-run", "x")]


def test_raw_table_that_cannot_be_migrated_in_place_is_refused_and_left_alone(tmp_path, capsys):
    db = tmp_path / "w.duckdb"
    _fresh(db)
    with Warehouse(db) as wh:
        wh.con.execute('ALTER TABLE raw.reference_prices RENAME COLUMN "source" TO "origin"')
        before = [r[0] for r in wh.con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name='raw' "
            "AND table_name='reference_prices' ORDER BY column_index").fetchall()]
        with pytest.raises(MigrationError, match="raw.reference_prices") as e:
            plan_migration(wh)
        assert "origin" in str(e.value) and "new --db" in str(e.value)
    assert main(["migrate", "--db", str(db), "--apply"]) == 1
    assert "raw.reference_prices" in capsys.readouterr().err
    with Warehouse(db) as wh:
        after = [r[0] for r in wh.con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name='raw' "
            "AND table_name='reference_prices' ORDER BY column_index").fetchall()]
    assert after == before


def test_missing_file_is_an_error(tmp_path, capsys):
    assert main(["migrate", "--db", str(tmp_path / "none.duckdb")]) == 2
    assert "nothing to migrate" in capsys.readouterr().err
