"""``deficit migrate``: a warehouse written by an older version, brought to this version's tables.

The "older version" is made by altering a current warehouse the way an older declaration would
have left it (a column that did not exist yet, a bt table laid out differently), since no older
release of deficit exists to write one.
"""

from __future__ import annotations

import pytest

from backtest.cli import main
from ingest.errors import WarehouseError
from ingest.migrate import MigrationError, Step, apply_migration, missing_tables, plan_migration
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


def test_changed_bt_table_is_archived_not_dropped_with_the_other_bt_results(tmp_path):
    db = tmp_path / "w.duckdb"
    _fresh(db)
    with Warehouse(db) as wh:
        declared = _liquidations_columns(wh)
        bt_tables = sorted(t.fqn for t in registered_tables()
                           if t.fqn.startswith("bt.") and t.kind == "table")
        assert "bt.runs" in bt_tables
        # an older layout: the first two columns only, with one stored row
        a, b = declared[:2]
        wh.con.execute("DROP TABLE bt.liquidations")
        wh.con.execute(f'CREATE TABLE bt.liquidations ("{a}" VARCHAR, "{b}" VARCHAR)')
        wh.con.execute("INSERT INTO bt.liquidations VALUES ('bt-old-run', 'x')")
        steps = plan_migration(wh, archive_schema="archive_test")
        # the bt results move as a set: bt.runs must not list runs whose rows were archived
        assert sorted((s.table, s.action) for s in steps) == [(t, "archive") for t in bt_tables]
        apply_migration(wh, steps)
        wh.ensure(*registered_tables())
        assert _liquidations_columns(wh) == declared
        assert wh.con.execute("SELECT count(*) FROM bt.liquidations").fetchone()[0] == 0
        assert wh.con.execute(f'SELECT "{a}", "{b}" FROM archive_test.liquidations').fetchall() == [
            ("bt-old-run", "x")]
        archived = {r[0] for r in wh.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'archive_test'").fetchall()}
        assert archived == {t.split(".", 1)[1] for t in bt_tables}


def test_a_retyped_column_is_refused_by_ensure_and_migrated_or_refused_by_migrate(tmp_path):
    db = tmp_path / "w.duckdb"
    _fresh(db)
    with Warehouse(db) as wh:  # an exact integer column stored as text: never read as plausible
        wh.con.execute("ALTER TABLE raw.blocks ALTER COLUMN number TYPE VARCHAR")
        with pytest.raises(WarehouseError, match=r"raw.blocks.*number is VARCHAR, declared UBIGINT"):
            wh.ensure(*registered_tables())
        with pytest.raises(MigrationError, match=r"raw.blocks.*number is VARCHAR, declared UBIGINT"):
            plan_migration(wh)
    db2 = tmp_path / "w2.duckdb"
    _fresh(db2)
    with Warehouse(db2) as wh:  # a bt column retyped: the bt results are archived
        col = _liquidations_columns(wh)[-1]
        wh.con.execute(f'ALTER TABLE bt.liquidations ALTER COLUMN "{col}" TYPE VARCHAR')
        with pytest.raises(WarehouseError, match="column type"):
            wh.ensure(*registered_tables())
        steps = plan_migration(wh, archive_schema="archive_t")
        assert ("bt.liquidations", "archive") in [(s.table, s.action) for s in steps]
        apply_migration(wh, steps)
        wh.ensure(*registered_tables())


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


def test_table_stored_as_view_and_view_stored_as_table_are_migrated(tmp_path, capsys):
    """A declared table that the file holds as a view (no rows) is replaced by the table; a
    declared bt view that the file holds as a table is archived with its rows, then created as a
    view. The plan says so (it used to say "nothing to do" while ``ensure`` still refused)."""
    db = tmp_path / "w.duckdb"
    _fresh(db)
    with Warehouse(db) as wh:
        wh.con.execute("DROP TABLE bt.liquidations")
        wh.con.execute("CREATE VIEW bt.liquidations AS SELECT 1 AS x")
        wh.con.execute("DROP VIEW bt.run_overview")
        wh.con.execute("CREATE TABLE bt.run_overview (run_id VARCHAR)")
        wh.con.execute("INSERT INTO bt.run_overview VALUES ('bt-old-run')")
        with pytest.raises(WarehouseError):
            wh.ensure(*registered_tables())
    assert main(["migrate", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "bt.liquidations" in out and "bt.run_overview" in out and "--apply" in out
    with Warehouse(db) as wh:
        steps = plan_migration(wh, archive_schema="archive_test")
        assert sorted((s.table, s.action) for s in steps) == [
            ("bt.liquidations", "drop_view"), ("bt.run_overview", "archive")]
        apply_migration(wh, steps)
        wh.ensure(*registered_tables())
        kinds = dict(wh.con.execute(
            "SELECT table_name, 'table' FROM duckdb_tables() WHERE schema_name='bt' UNION ALL "
            "SELECT view_name, 'view' FROM duckdb_views() WHERE schema_name='bt'").fetchall())
        assert kinds["liquidations"] == "table" and kinds["run_overview"] == "view"
        assert wh.con.execute("SELECT * FROM archive_test.run_overview").fetchall() == [("bt-old-run",)]


def test_raw_view_stored_as_table_is_refused(tmp_path):
    import dataclasses

    db = tmp_path / "w.duckdb"
    _fresh(db)
    t = next(t for t in registered_tables() if t.fqn == "raw.reference_prices")
    as_view = dataclasses.replace(t, kind="view", view_sql="SELECT 1 AS x")
    with Warehouse(db) as wh, pytest.raises(MigrationError, match="raw.reference_prices.*declared as a view"):
        plan_migration(wh, [as_view])


def test_archive_name_taken_is_refused_before_anything_changes(tmp_path):
    db = tmp_path / "w.duckdb"
    _fresh(db)
    with Warehouse(db) as wh:
        wh.con.execute("DROP TABLE bt.liquidations")
        wh.con.execute("CREATE TABLE bt.liquidations (run_id VARCHAR)")
        wh.con.execute("CREATE SCHEMA archive_test")
        wh.con.execute("CREATE TABLE archive_test.liquidations (y INTEGER)")
        with pytest.raises(MigrationError, match="archive_test.liquidations already exists"):
            plan_migration(wh, archive_schema="archive_test")


def test_a_failing_step_rolls_back_every_step_and_is_typed(tmp_path):
    """All or nothing: a column added by an earlier step is gone when a later one fails, and
    the DuckDB error arrives as a :class:`MigrationError` naming the file."""
    db = tmp_path / "w.duckdb"
    _fresh(db)
    last = next(t for t in registered_tables() if t.fqn == "meta.runs").columns[-1]
    with Warehouse(db) as wh:
        wh.con.execute(f'ALTER TABLE meta.runs DROP COLUMN "{last.name}"')
        steps = plan_migration(wh)
        assert [(s.table, s.action) for s in steps] == [("meta.runs", "add_columns")]
        broken = Step("bt.nothing", "archive", "fails", ("SELECT * FROM bt.no_such_table",))
        with pytest.raises(MigrationError, match=f"{db}.*rolled back"):
            apply_migration(wh, [*steps, broken])
        cols = [r[0] for r in wh.con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name='meta' AND table_name='runs'"
        ).fetchall()]
        assert last.name not in cols


def test_the_plan_alone_leaves_the_file_unchanged(tmp_path):
    """Without --apply the file is opened read-only: not even the raw/meta/bt schemas that
    opening a warehouse for writing creates appear in it."""
    import duckdb

    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.other (x INTEGER)")
    con.close()
    assert main(["migrate", "--db", str(db)]) == 0
    con = duckdb.connect(str(db), read_only=True)
    try:
        schemas = {r[0] for r in con.execute(
            "SELECT schema_name FROM duckdb_schemas() WHERE database_name = current_database()").fetchall()}
    finally:
        con.close()
    assert not {"meta", "bt"} & schemas, schemas


def test_the_ingest_only_entry_point_says_bt_tables_are_not_checked(tmp_path):
    """``python -m ingest.cli`` does not import the backtest (layering), so it cannot see the bt
    declarations: it says so instead of reporting them as up to date."""
    import subprocess
    import sys
    from pathlib import Path

    db = tmp_path / "w.duckdb"
    _fresh(db)
    p = subprocess.run([sys.executable, "-m", "ingest.cli", "migrate", "--db", str(db)],
                       capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert p.returncode == 0, p.stderr
    assert "bt result tables are not known" in p.stderr and "deficit migrate" in p.stderr


def test_bt_table_that_gained_columns_is_archived_not_read_with_null(tmp_path):
    """bt.fidelity gained ``debt_repaid_abs_error_value`` and ``collateral_seized_abs_error_value``
    (NULL: "no amount compared"). A warehouse written before holds observed rows whose amounts WERE
    compared (``debt_repaid_error_raw`` = 0): adding the columns as NULL would make those rows say
    the opposite, silently. bt rows are derived by the version that wrote them: they are archived
    (with the other bt results) and re-derived by a replay, never completed with NULL."""
    db = tmp_path / "w.duckdb"
    _fresh(db)
    with Warehouse(db) as wh:
        new = ["debt_repaid_abs_error_value", "collateral_seized_abs_error_value"]
        for c in new:
            wh.con.execute(f'ALTER TABLE bt.fidelity DROP COLUMN "{c}"')
        wh.con.execute("INSERT INTO bt.fidelity VALUES ('bt-old', 1, 10, 3, '0xt', '0xu', 'observed', true, "
                       "10, 0, '0xc', '0xd', 500, 500, 0, 700, 700, 0, NULL)")
        steps = plan_migration(wh, archive_schema="archive_test")
        assert ("bt.fidelity", "add_columns") not in [(s.table, s.action) for s in steps]
        apply_migration(wh, steps)
        wh.ensure(*registered_tables())
        # no row says "no amount compared" while its amount errors are there
        assert wh.con.execute("SELECT count(*) FROM bt.fidelity WHERE debt_repaid_error_raw IS NOT NULL "
                              "AND debt_repaid_abs_error_value IS NULL").fetchone()[0] == 0
        archived = wh.con.execute("SELECT run_id, debt_repaid_error_raw FROM archive_test.fidelity")
        assert archived.fetchall() == [("bt-old", 0)]


def test_a_demo_copy_of_an_older_sample_is_migrated_not_refused(tmp_path):
    """meta.sample_accounts gained dai_supplied_raw (the liquidity provider's DAI, dropped before):
    appended and nullable ("NULL: not recorded"), so a demo copy of the older sample migrates
    (the column added as NULL) instead of being refused as a raw/meta table that would lose data."""
    import shutil

    from backtest.demo import SAMPLE_DB

    db = tmp_path / "w.duckdb"
    shutil.copyfile(SAMPLE_DB, db)
    with Warehouse(db) as wh:
        wh.con.execute('ALTER TABLE meta.sample_accounts DROP COLUMN "dai_supplied_raw"')
        steps = plan_migration(wh)
        assert [(s.table, s.action) for s in steps] == [("meta.sample_accounts", "add_columns")]
        apply_migration(wh, steps)
        wh.ensure(*registered_tables())
        assert wh.con.execute("SELECT count(*) FROM meta.sample_accounts WHERE dai_supplied_raw IS NOT NULL"
                              ).fetchone()[0] == 0


def test_missing_declared_tables_are_named_not_nothing_to_do(tmp_path, capsys):
    """A file lacking declared tables (here bt.fidelity and bt.runs, dropped) was told "nothing
    to do" by the plan, although --apply creates them: the plan names what it would create."""
    db = tmp_path / "w.duckdb"
    _fresh(db)
    with Warehouse(db) as wh:
        wh.con.execute("DROP TABLE bt.fidelity")
        wh.con.execute("DROP TABLE bt.runs")
    assert main(["migrate", "--db", str(db)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "nothing to do" not in out
    assert "bt.fidelity: missing: create it" in out and "bt.runs: missing: create it" in out
    assert "2 to create: rerun with --apply" in out
    assert main(["migrate", "--db", str(db), "--apply"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "created 2;" in out and "matches this version" in out
    with Warehouse(db) as wh:
        wh.ensure(*registered_tables())
        assert missing_tables(wh) == [] and plan_migration(wh) == []
    assert main(["migrate", "--db", str(db)]) == 0
    assert "nothing to do" in capsys.readouterr().out
