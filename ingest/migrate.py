"""``deficit migrate``: bring a warehouse written by an older version to this version's declarations.

A table's declaration (:mod:`ingest.schema`) is its contract with analysts; ``Warehouse.ensure``
refuses a file whose tables differ from it. Migration never drops data:

* **raw and meta tables, columns appended** (the stored columns are the declared ones' prefix,
  the new ones are nullable, the stored ones keep their NULL-ability): ``ALTER TABLE ... ADD
  COLUMN``, with the new column's documentation. Existing rows read NULL there (unknown when
  they were written).
* **bt result tables, any change** (columns appended included: a bt column's NULL often has a
  declared meaning, e.g. bt.fidelity's ``*_abs_error_value`` "NULL: no amount compared", which
  rows written before the column existed would then state falsely): they are derived (a replay
  re-creates them), so the stored tables move to an ``archive_<UTC time>`` schema, queryable as
  they were, and this version's are created empty. Re-run the scenarios to fill them. The ``bt``
  tables move as a set: a run's results span them (``bt.runs`` lists the run, the others hold
  its rows), so archiving one alone would leave runs listed whose rows are elsewhere.
* **raw and meta tables, any other change**: chain facts and their lineage cannot be re-derived
  in place: :class:`MigrationError` names the table and the difference, and nothing changes.
  Ingest into a new ``--db`` file.
* **a table stored as a view** (no rows): the view is dropped and the table created. **A view
  stored as a table**: archived like a changed bt table, refused in raw and meta.

* **a declared table or view the file lacks** (:func:`missing_tables`): created, empty, with
  its documentation.

The plan is computed first and shown; ``apply`` runs all of it in one transaction (all or
nothing).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from .errors import WarehouseError
from .schema import Table, registered_tables
from .warehouse import Col, Warehouse, column_difference, declared_columns

__all__ = ["Step", "MigrationError", "plan_migration", "apply_migration", "missing_tables"]


class MigrationError(WarehouseError):
    """A stored table cannot be migrated in place without losing data."""


@dataclass(frozen=True)
class Step:
    """One table's migration: ``action`` is ``add_columns``, ``archive`` or ``drop_view``."""

    table: str
    action: str
    detail: str
    sql: tuple[str, ...]


def _views(wh: Warehouse) -> set[str]:
    return {f"{s}.{n}" for s, n in wh.con.execute(
        "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal").fetchall()}


def plan_migration(wh: Warehouse, tables: list[Table] | None = None, *,
                   archive_schema: str | None = None) -> list[Step]:
    """What :func:`apply_migration` would do to ``wh`` (empty: nothing to do). Raises
    :class:`MigrationError` for a raw or meta table that cannot be migrated in place."""
    tables = registered_tables() if tables is None else tables
    archive = archive_schema or "archive_" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    stored = wh.stored_columns()
    views = _views(wh)
    steps: list[Step] = []
    refused: list[str] = []
    for t in tables:
        if t.fqn in views:
            if t.kind == "table":  # a view holds no rows: it makes way for the declared table
                steps.append(Step(t.fqn, "drop_view", "stored as a view, declared as a table: drop "
                                  "the view (it holds no rows) and create the table (empty)",
                                  (f"DROP VIEW {t.fqn}",)))
            continue
        if t.fqn not in stored:
            continue
        if t.kind == "view":  # stored as a table: its rows must go somewhere first
            if t.fqn.startswith("bt."):
                steps.append(_archive(t, archive, stored, "stored as a table, declared as a view"))
            else:
                refused.append(f"{t.fqn}: stored as a table, declared as a view")
            continue
        have = stored[t.fqn]
        want = declared_columns(wh.con, t)
        if have == want:
            continue
        added = t.columns[len(have):]
        if t.fqn.startswith("bt."):  # derived: never completed with NULLs the old version did not mean
            steps.append(_archive(t, archive, stored, column_difference(have, want)))
        elif want[:len(have)] == have and all(c.nullable for c in added):
            sql = [f'ALTER TABLE {t.fqn} ADD COLUMN "{c.name}" {c.type}' for c in added]
            heads = tuple(f'COMMENT ON COLUMN {t.fqn}."{c.name}" ' for c in added)
            sql += [s for s in t.comment_sql() if s.startswith(heads)]
            steps.append(Step(t.fqn, "add_columns",
                              f"add nullable column(s) {[c.name for c in added]} (existing rows: NULL)",
                              tuple(sql)))
        else:
            diff = column_difference(have, want)
            refused.append(f"{t.fqn}: {diff}")
    if refused:
        raise MigrationError(
            f"{wh.path}: cannot migrate in place without losing ingested data: "
            + "; ".join(refused) + ". Ingest into a new --db file (nothing was changed).")
    declared_tables = {t.fqn for t in tables if t.kind == "table"}
    if any(st.action == "archive" and st.table in declared_tables for st in steps):
        # a run's results span the bt tables (bt.runs lists the run, the others hold its rows):
        # archive the previous version's results as a whole, so neither side lists runs whose
        # rows are elsewhere
        moved = {st.table for st in steps if st.action == "archive"}
        for t in tables:
            if t.fqn.startswith("bt.") and t.kind == "table" and t.fqn in stored \
                    and t.fqn not in views and t.fqn not in moved:
                steps.append(_archive(t, archive, stored, "archived with the other bt results"))
    return steps


def missing_tables(wh: Warehouse, tables: list[Table] | None = None) -> list[str]:
    """The declared tables and views (fqn, in declaration order) that ``wh`` holds under no
    kind: :func:`apply_migration` creates them, empty (they are not :class:`Step` s, which
    change what is stored)."""
    tables = registered_tables() if tables is None else tables
    present = set(wh.stored_columns()) | _views(wh)
    return [t.fqn for t in tables if t.fqn not in present]


def _archive(t: Table, archive: str, stored: dict[str, list[Col]], why: str) -> Step:
    name = t.fqn.split(".", 1)[1]
    if f"{archive}.{name}" in stored:
        raise MigrationError(f"cannot archive {t.fqn}: {archive}.{name} already exists (nothing "
                             "was changed); rerun it a second later (a new archive schema)")
    return Step(t.fqn, "archive",
                f"{why}: move the stored table to {archive}.{name} and create this version's "
                "(empty; re-run the scenarios)",
                (f"CREATE SCHEMA IF NOT EXISTS {archive}",
                 f"CREATE TABLE {archive}.{name} AS SELECT * FROM {t.fqn}",
                 f"DROP TABLE {t.fqn}"))


def apply_migration(wh: Warehouse, steps: list[Step], tables: list[Table] | None = None) -> None:
    """Run ``steps`` and create what this version declares but the file lacks (tables, views,
    their documentation), in one transaction."""
    tables = registered_tables() if tables is None else tables
    try:
        with wh.transaction() as con:
            for s in steps:
                for q in s.sql:
                    con.execute(q)
            wh.ensure(*tables)
    except duckdb.Error as e:  # rolled back: typed, and saying so
        raise MigrationError(f"{wh.path}: migration failed and was rolled back (nothing was "
                             f"changed): {type(e).__name__}: {e}") from e
