"""The DuckDB warehouse: opening it, its ``meta`` tables, transactions and checkpoints.

Schemas: ``raw`` (chain facts, filled by ingest), ``meta`` (runs, checkpoints, reorgs), ``bt``
(backtest results, filled by later stages). Every write that ingest makes goes through
:meth:`Warehouse.transaction`: a block range is deleted and re-inserted together with its
checkpoint in one transaction, so a run killed at any instant leaves either the old or the new
state of that range, never half of it, and a resumed run equals an uninterrupted one.

DuckDB lets one process open a file for writing; a second ingest into the same file fails fast
with :class:`WarehouseLocked` naming the file (and the holder's PID when DuckDB reports it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb

from .errors import WarehouseError, WarehouseLocked
from .schema import Column, Table, register_table

__all__ = ["Warehouse", "DEFAULT_DB", "fetch_one", "unregister", "RUNS", "CHECKPOINTS", "REORGS",
           "ASKED_SETS", "utcnow"]

DEFAULT_DB = Path(__file__).resolve().parent.parent / "data" / "warehouse.duckdb"

RUNS = register_table(Table(
    "meta", "runs", "One row per ingest or import run: what was asked, against which endpoint "
    "label (never the URL), which code version, and how it ended.",
    (
        Column("run_id", "VARCHAR", "unique id of the run (time-ordered)", False),
        Column("command", "VARCHAR", "what ran: ingest, import-prices, ...", False),
        Column("chain_id", "UBIGINT", "chain ingested (NULL for imports)"),
        Column("endpoint_label", "VARCHAR", "redacted RPC endpoint (scheme://host/***); never a key"),
        Column("datasets", "VARCHAR[]", "datasets (and sources) the run covered"),
        Column("from_block", "UBIGINT", "first block requested"),
        Column("to_block", "UBIGINT", "last block requested (after finality clipping)"),
        Column("finality", "VARCHAR", "watermark rule: 'finalized', 'confirmations:N' or 'head'"),
        Column("code_version", "VARCHAR", "deficit version and git commit of the code that ran"),
        Column("started_at", "TIMESTAMPTZ", "wall-clock start (UTC)", False),
        Column("finished_at", "TIMESTAMPTZ", "wall-clock end (UTC); NULL while running or if killed"),
        Column("status", "VARCHAR", "running, ok or failed", False),
        Column("message", "VARCHAR", "summary or the error message (secrets redacted)"),
    ),
    "ingest.warehouse", ("started_at",)))

CHECKPOINTS = register_table(Table(
    "meta", "checkpoints", "Block intervals already ingested, per dataset source, with fingerprints "
    "of what was asked for there. Written in the same transaction as the data; adjacent intervals "
    "of equal fingerprints are merged. A resumed run ingests only what is missing or was stored "
    "under another fingerprint.",
    (
        Column("chain_id", "UBIGINT", "chain", False),
        Column("dataset", "VARCHAR", "dataset name (blocks, chainlink, aave_v3, ...)", False),
        Column("source", "VARCHAR", "source key within the dataset (deployment or feed)", False),
        Column("from_block", "UBIGINT", "first block of the covered interval", False),
        Column("to_block", "UBIGINT", "last block of the covered interval (inclusive)", False),
        Column("run_id", "VARCHAR", "run that last extended this interval", False),
        Column("updated_at", "TIMESTAMPTZ", "wall-clock time of that write (UTC)", False),
        Column("asked_sha256", "VARCHAR", "fingerprint of what the ingest asked for and wrote over "
               "the interval: SHA-256 of the ingest format (ingest.version.INGEST_FORMAT), each "
               "role's eth_getLogs topic0s and the dataset's table columns "
               "(ingest.schema.asked_sha256; the text hashed is in meta.asked_sets). An interval whose "
               "fingerprint is not this version's is re-ingested by the next ingest over it (or "
               "backfilled: only the events added since are fetched, when that is all that "
               "differs) and refused by the backtest until then; "
               "adjacent intervals merge only when equal. NULL: written before the column existed "
               "(unknown, treated as stale)"),
        Column("addresses_sha256", "VARCHAR", "fingerprint of the contract addresses the ingest of "
               "this source was given (the deployment's contracts by role; not those discovered from "
               "logs): SHA-256 of role -> sorted addresses (ingest.schema.addresses_sha256). An "
               "interval stored under other addresses (a role added or readdressed in the "
               "deployments since) is re-ingested by the next ingest over it; adjacent intervals "
               "merge only when equal. A Chainlink feed, whose aggregators are discovered, has "
               "that of no addresses, and once its phases change (a new aggregator found) its "
               "stored intervals get that of the aggregators they were read from, so they are "
               "re-ingested. NULL: not recorded (treated as stale by ingest)"),
    ),
    "ingest.warehouse", ("chain_id", "dataset", "source", "from_block")))

ASKED_SETS = register_table(Table(
    "meta", "asked_sets", "What each fingerprint in meta.checkpoints.asked_sha256 stands for: the "
    "canonical JSON text that was hashed (ingest format, dataset, each role's eth_getLogs topic0s, "
    "the tables written and their columns). With it, a later version whose declarations differ "
    "from an interval's only by events added to roles (same addresses, same ingest format, every "
    "table and topic of the interval still declared alike) fetches just the added events there "
    "(an incremental backfill) instead of re-ingesting the interval whole. A fingerprint without "
    "a row here (written by a version before this table) is recognised only when it is this "
    "version's declarations less one event (or less one event for one of its roles); otherwise "
    "its interval is re-ingested whole.",
    (
        Column("asked_sha256", "VARCHAR", "SHA-256 (hex) of doc: a value of "
               "meta.checkpoints.asked_sha256", False),
        Column("dataset", "VARCHAR", "dataset the declarations are of", False),
        Column("doc", "VARCHAR", "the canonical JSON text hashed (ingest.schema.asked_doc)", False),
        Column("run_id", "VARCHAR", "ingest run that first recorded it", False),
        Column("recorded_at", "TIMESTAMPTZ", "wall-clock time of that record (UTC)", False),
    ),
    "ingest.warehouse", ("asked_sha256",)))

REORGS = register_table(Table(
    "meta", "reorgs", "Chain reorganizations found when re-verifying stored block hashes against "
    "the node. Everything above fork_block was deleted in one transaction and re-ingested. "
    "An input of the finality-risk metric.",
    (
        Column("chain_id", "UBIGINT", "chain", False),
        Column("detected_at", "TIMESTAMPTZ", "wall-clock time the mismatch was found (UTC)", False),
        Column("run_id", "VARCHAR", "run that detected it", False),
        Column("fork_block", "UBIGINT",
               "highest block known to match the node (common ancestor): a stored block whose hash "
               "matched, or the unstored parent of a wholly replaced stored interval when its stored "
               "parent hash matched; else the highest stored block matching below the gap, or, with "
               "nothing stored below, the block under the lowest stored one (an upper bound)", False),
        Column("depth", "UBIGINT", "old_tip_block - fork_block: heights replaced (the stored blocks "
               "among them: old_hashes)", False),
        Column("old_tip_block", "UBIGINT", "highest stored block before the rollback", False),
        Column("old_hashes", "VARCHAR[]", "stored hashes of fork_block+1 .. old_tip_block", False),
        Column("new_hashes", "VARCHAR[]", "node hashes at the same heights when detected "
               "(NULL where the node had no block; all NULL when more than 4096 blocks were "
               "replaced: not fetched)", False),
        Column("logs_removed", "UBIGINT", "raw.logs rows deleted by the rollback", False),
    ),
    "ingest.reorg", ("chain_id", "detected_at")))

_LOCK_RE = re.compile(r"(?i)(conflicting lock|could not set lock)")


def unregister(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """``con.unregister(name)`` for each name, in a ``finally`` after a registered relation was
    used: after a failed statement the transaction is aborted and DuckDB refuses even this, and
    its TransactionException would replace the error being raised (a typed DecodeError, the
    INSERT's own); the ROLLBACK that follows drops the registrations anyway."""
    for name in names:
        with contextlib.suppress(duckdb.Error):
            con.unregister(name)


def fetch_one(cur: duckdb.DuckDBPyConnection) -> tuple | None:
    """First row of a result, draining the rest (DuckDB 2.0 keeps a half-read result open and
    then refuses ``register``: "connection has an unfinished result")."""
    rows = cur.fetchall()
    return rows[0] if rows else None


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_CANONICAL: dict[str, str] = {}


def canonical_types(con: duckdb.DuckDBPyConnection, declared: list[str]) -> list[str]:
    """DuckDB's own names for declared column types (``TIMESTAMPTZ`` -> ``TIMESTAMP WITH TIME
    ZONE``), as ``duckdb_columns().data_type`` reports stored ones; asked once per type and
    process."""
    todo = sorted({t for t in declared if t not in _CANONICAL})
    if todo:
        row = con.execute("SELECT " + ", ".join(f"typeof(NULL::{t})" for t in todo)).fetchone()
        assert row is not None
        _CANONICAL.update(zip(todo, (str(x) for x in row), strict=True))
    return [_CANONICAL[t] for t in declared]


Col = tuple[str, bool, str]  # a column as stored or declared: (name, nullable, DuckDB type name)


def declared_columns(con: duckdb.DuckDBPyConnection, t: Table) -> list[Col]:
    """``t``'s declared columns as :meth:`Warehouse.stored_columns` reports stored ones."""
    return list(zip([c.name for c in t.columns], [c.nullable for c in t.columns],
                    canonical_types(con, [c.type for c in t.columns]), strict=True))


def column_difference(have: list[Col], want: list[Col]) -> str:
    """What differs between stored columns ``have`` and declared ``want``, for a message."""
    hn, wn = [c for c, _, _ in have], [c for c, _, _ in want]
    if hn != wn:
        gone = [c for c in hn if c not in wn]
        new = [c for c in wn if c not in hn]
        parts = []
        if gone:
            parts.append(f"stored column(s) {gone} no longer declared")
        if new:
            parts.append(f"declared column(s) {new} missing")
        if not parts:
            parts.append(f"columns in another order ({hn} vs {wn})")
        return ", ".join(parts)
    parts = []
    flips = [c for (c, a, _), (_, b, _) in zip(have, want, strict=True) if a != b]
    if flips:
        parts.append(f"column(s) {flips} differ in NULL-ability")
    retyped = [f"{c} is {a}, declared {b}" for (c, _, a), (_, _, b) in zip(have, want, strict=True) if a != b]
    if retyped:
        parts.append("column type(s) differ: " + "; ".join(retyped))
    return ", ".join(parts)


class Warehouse:
    """An open DuckDB warehouse file (or ``:memory:``)."""

    def __init__(self, path: str | Path = DEFAULT_DB, *, read_only: bool = False,
                 memory_limit: str | None = "1GB"):
        """``memory_limit`` caps DuckDB's buffer cache (default: 80 % of RAM), so a long ingest's
        resident memory stays flat instead of growing with the range (bench/ingest_memory.py)."""
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.IOException as e:
            msg = str(e)
            if _LOCK_RE.search(msg):
                pid = re.search(r"PID (\d+)", msg)
                holder = f" (held by PID {pid.group(1)})" if pid else ""
                raise WarehouseLocked(
                    f"{self.path} is locked by another process{holder}: another ingest is "
                    "writing to it. Wait for it to finish, or use --db to choose another file."
                ) from None
            raise WarehouseError(f"cannot open {self.path}: {msg}") from None
        self._in_tx = False
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        if not read_only:
            for s in ("raw", "meta", "bt"):
                self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")

    def stored_columns(self) -> dict[str, list[Col]]:
        """Every stored table's and view's columns in order: ``fqn -> [(name, nullable, type)]``
        (DuckDB's type names, as :func:`declared_columns` gives a declaration's)."""
        out: dict[str, list[Col]] = {}
        for schema, name, cols, nulls, tys in self.con.execute(
                "SELECT schema_name, table_name, list(column_name ORDER BY column_index), "
                "list(is_nullable ORDER BY column_index), list(data_type ORDER BY column_index) "
                "FROM duckdb_columns() WHERE NOT internal GROUP BY ALL").fetchall():
            out[f"{schema}.{name}"] = [(str(c), bool(n), str(y))
                                       for c, n, y in zip(cols, nulls, tys, strict=True)]
        return out

    def ensure(self, *tables: Table) -> None:
        """Create tables/views that do not exist yet (with their docs as comments), and check
        that existing tables have the declared columns: names, order, types and NULL-ability."""
        stored = self.stored_columns()
        script: list[str] = []
        # tables before views: a view may read any declared table, whatever the names' order
        for t in sorted(tables, key=lambda t: t.kind == "view"):
            if t.kind == "view" or t.fqn not in stored:
                script += [t.ddl(), *t.comment_sql()]
                continue
            have, want = stored[t.fqn], declared_columns(self.con, t)
            if have != want:
                raise WarehouseError(
                    f"{t.fqn} in {self.path} differs from this version's declaration "
                    f"({column_difference(have, want)}): run `deficit migrate --db {self.path}` (see "
                    "what it would do first; nothing is dropped) or use a new --db file")
        if not script:
            return
        if self._in_tx:
            self.con.execute(";\n".join(script))
            return
        # one round trip and one transaction for all DDL and comments (thousands of statements):
        # all or nothing, and 3-4x faster than a commit per statement (~0.3 s instead of ~1 s)
        try:
            self.con.execute("BEGIN TRANSACTION;\n" + ";\n".join(script) + ";\nCOMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                self.con.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One atomic unit of work; rolled back on any exception."""
        if self._in_tx:
            raise WarehouseError("nested transaction")
        self.con.execute("BEGIN TRANSACTION")
        self._in_tx = True
        try:
            yield self.con
        except BaseException:
            self._in_tx = False
            self.con.execute("ROLLBACK")
            raise
        else:
            self._in_tx = False
            try:
                self.con.execute("COMMIT")
            except BaseException:  # an interrupted (Ctrl-C) or failed COMMIT: end the transaction,
                # so that the caller's bookkeeping (meta.runs 'failed') can start its own
                with contextlib.suppress(duckdb.Error, RuntimeError):
                    self.con.execute("ROLLBACK")
                raise

    # ----------------------------------------------------------------- checkpoints
    def checkpoints(self, chain_id: int, dataset: str, source: str
                    ) -> list[tuple[int, int, str | None, str | None]]:
        """The stored intervals of one dataset source with their fingerprints, ``(from_block,
        to_block, asked_sha256, addresses_sha256)`` by first block (None for NULL, or for a file
        whose ``meta.checkpoints`` predates the column: the backtest reads files that were not
        migrated)."""
        have = {str(r[0]) for r in self.con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name='meta' AND "
            "table_name='checkpoints'").fetchall()}
        cols = ", ".join(c if c in have else "NULL" for c in ("asked_sha256", "addresses_sha256"))
        rows = self.con.execute(
            f"SELECT from_block, to_block, {cols} FROM meta.checkpoints "
            "WHERE chain_id=? AND dataset=? AND source=? ORDER BY from_block",
            [chain_id, dataset, source]).fetchall()
        return [(int(a), int(b), None if f is None else str(f), None if g is None else str(g))
                for a, b, f, g in rows]

    def covered(self, chain_id: int, dataset: str, source: str, *, asked: str | None = None,
                addresses: str | None = None) -> list[tuple[int, int]]:
        """Stored intervals of one dataset source; with ``asked`` (``addresses``), only those
        stored under that fingerprint of the declarations (of the addresses given)."""
        return [(a, b) for a, b, f, g in self.checkpoints(chain_id, dataset, source)
                if (asked is None or f == asked) and (addresses is None or g == addresses)]

    def add_covered(self, chain_id: int, dataset: str, source: str, a: int, b: int,
                    run_id: str, asked: str | None = None, addresses: str | None = None) -> None:
        """Record [a, b] as ingested under fingerprints ``asked`` (default: this version's for
        ``dataset``) and ``addresses`` (default NULL: not recorded); call inside the data's
        transaction. Intervals of the same fingerprints that overlap or touch it are merged into
        it; the others lose their part inside [a, b] (its rows were just replaced), and keep the
        rest as they were."""
        if asked is None:
            from .datasets import asked_fingerprint

            asked = asked_fingerprint(dataset)
        lo, hi = a, b
        keep: list[tuple[int, int, str, object, str | None, str | None]] = []
        hit = False
        for x, y, run, at, f, g in self.con.execute(
                "SELECT from_block, to_block, run_id, updated_at, asked_sha256, addresses_sha256 "
                "FROM meta.checkpoints WHERE chain_id=? AND dataset=? AND source=? AND "
                "to_block + 1 >= ? AND from_block <= ? + 1", [chain_id, dataset, source, a, b]
                ).fetchall():
            x, y = int(x), int(y)
            hit = True
            if f == asked and g == addresses:
                lo, hi = min(lo, x), max(hi, y)
                continue
            if x < a:
                keep.append((x, min(y, a - 1), run, at, f, g))
            if y > b:
                keep.append((max(x, b + 1), y, run, at, f, g))
        if hit:
            self.con.execute(
                "DELETE FROM meta.checkpoints WHERE chain_id=? AND dataset=? AND source=? "
                "AND to_block + 1 >= ? AND from_block <= ? + 1", [chain_id, dataset, source, a, b])
        for x, y, run, at, f, g in keep:
            self.con.execute("INSERT INTO meta.checkpoints VALUES (?,?,?,?,?,?,?,?,?)",
                             [chain_id, dataset, source, x, y, run, at, f, g])
        self.con.execute("INSERT INTO meta.checkpoints VALUES (?,?,?,?,?,?,?,?,?)",
                         [chain_id, dataset, source, lo, hi, run_id, utcnow(), asked, addresses])

    def record_asked(self, asked: str, dataset: str, doc: str, run_id: str) -> None:
        """Keep what fingerprint ``asked`` stands for (``doc``, the text it hashes) in
        ``meta.asked_sets``, unless it is there already."""
        from .schema import sha256_hex

        if sha256_hex(doc) != asked:
            raise ValueError(f"{dataset}: the asked doc does not hash to {asked}")
        self.con.execute(
            "INSERT INTO meta.asked_sets SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM "
            "meta.asked_sets WHERE asked_sha256 = ?)", [asked, dataset, doc, run_id, utcnow(), asked])

    def asked_doc(self, asked: str) -> str | None:
        """The text fingerprint ``asked`` was computed from, if recorded (None when not, or
        when the file has no ``meta.asked_sets``: written by an older version); checked against
        the fingerprint."""
        from .schema import sha256_hex

        if not self.con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name='meta' "
                                "AND table_name='asked_sets'").fetchall()[0][0]:
            return None
        rows = self.con.execute("SELECT doc FROM meta.asked_sets WHERE asked_sha256 = ?",
                                [asked]).fetchall()
        return next((str(d) for (d,) in rows if sha256_hex(str(d)) == asked), None)

    def truncate_covered(self, chain_id: int, above: int) -> None:
        """Forget coverage above block ``above`` for every dataset (after a reorg rollback)."""
        self.con.execute("DELETE FROM meta.checkpoints WHERE chain_id=? AND from_block > ?",
                         [chain_id, above])
        self.con.execute("UPDATE meta.checkpoints SET to_block=? WHERE chain_id=? AND to_block > ?",
                         [above, chain_id, above])

    def drop_chain(self, chain_id: int) -> int:
        """Delete every row of one chain (raw tables, checkpoints, reorgs) in one transaction.

        Used by the demo, whose local chain is rebuilt from scratch on every run (a new anvil
        chain must not be mistaken for a reorg of the previous one). Returns rows deleted.
        """
        tables = [f"{s}.{t}" for s, t in self.con.execute(
            "SELECT schema_name, table_name FROM duckdb_columns() WHERE column_name='chain_id' "
            "AND schema_name IN ('raw', 'meta') AND table_name <> 'runs' GROUP BY ALL").fetchall()]
        n = 0
        with self.transaction() as con:
            for t in sorted(tables):
                n += int(con.execute(f"DELETE FROM {t} WHERE chain_id = ?", [chain_id]
                                     ).fetchall()[0][0])
        return n

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
