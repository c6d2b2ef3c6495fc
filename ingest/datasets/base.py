"""What a log dataset declares, and the bulk path from eth_getLogs JSON to typed DuckDB rows.

A log dataset module declares, once: its contract ``ROLES`` (deployment keys), its event
``GROUPS`` (which roles emit which declarations), and from those one typed table per event is
generated and registered. The engine calls the hooks; this module turns raw JSON-RPC log objects
into ``raw.logs`` rows and decoded rows, validating strictly before anything is inserted.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import secrets
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from .. import bulk_decode
from ..abi import EventSpec, snake_case
from ..errors import ConfigError, DecodeError, InconsistentLogError, ValueOutOfRange
from ..schema import (
    LINEAGE_LOG_COLUMNS,
    Column,
    Table,
    addresses_sha256,
    asked_doc,
    canonical_asked,
    register_table,
    sha256_hex,
    sql_str,
)
from ..warehouse import fetch_one, unregister

if TYPE_CHECKING:
    from ..deployments import DeploymentSet
    from ..engine import RunContext

__all__ = ["EventGroup", "EventTable", "LogDataset", "LogsBatch", "MalformedLogsJson", "Source",
           "LOGS", "logs_to_arrow", "stage_arrow", "stage_json", "write_logs", "write_stage"]

LOGS = register_table(Table(
    "raw", "logs", "Every ingested log exactly as the node returned it (address, topics, data), "
    "with its lineage; the decoded per-event tables are derived from these rows.",
    LINEAGE_LOG_COLUMNS + (
        Column("topics", "VARCHAR[]", "topics as received (topics[1] is topic0), 0x-hex", False),
        # zstd: long, mostly unique hex text; measured 28 % cheaper to checkpoint than the
        # default dictionary/FSST analysis, and 40 % smaller (bench/README.md)
        Column("data", "VARCHAR", "data as received, 0x-hex", False, compression="zstd"),
        Column("dataset", "VARCHAR", "dataset that ingested the log", False),
        Column("source", "VARCHAR", "deployment or feed within the dataset", False),
        Column("role", "VARCHAR", "role of the emitting contract (pool, a_token, aggregator, ...)", False),
        Column("run_id", "VARCHAR", "ingest run that wrote the row", False),
    ),
    "ingest.datasets.base", ("chain_id", "block_number", "log_index")))


@dataclass(frozen=True)
class EventGroup:
    """Declarations emitted by contracts of the given roles; tables are ``<prefix>_<event>``."""

    roles: tuple[str, ...]
    declarations: tuple[str, ...]
    table_prefix: str
    renames: tuple[tuple[str, str], ...] = ()  # (signature, table name) for same-name events


@dataclass(frozen=True)
class EventTable:
    spec: EventSpec
    table: Table
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Source:
    """One thing a dataset ingests: a deployment or a feed (``key`` is unique per chain)."""

    dataset: str
    key: str
    start_block: int
    payload: Any


def build_event_tables(dataset: str, groups: Sequence[EventGroup]) -> tuple[EventTable, ...]:
    """Generate (and register) one typed table per declared event."""
    out: list[EventTable] = []
    seen: dict[str, str] = {}
    parsed = {d: EventSpec.parse(d) for g in groups for d in g.declarations}
    # one table per signature: its declarations must agree on which parameters are indexed and
    # on their names, or the logs of one would be decoded (and named) by the other's layout
    layout: dict[str, str] = {}
    for decl, spec in parsed.items():
        first = layout.setdefault(spec.signature, decl)
        if parsed[first].columns() != spec.columns() or \
                [p.indexed for p in parsed[first].params] != [p.indexed for p in spec.params]:
            raise ValueError(f"{dataset}: {first!r} and {decl!r} have the same signature (topic0) "
                             "but different indexed parameters or names")
    # and one signature goes to one table: each table takes the logs of every role declaring
    # the signature, so two tables of one signature would each hold every such log
    table_of: dict[str, str] = {}
    for g in groups:
        for decl in g.declarations:
            sig = parsed[decl].signature
            name = dict(g.renames).get(sig, f"{g.table_prefix}_{snake_case(parsed[decl].name)}")
            if table_of.setdefault(sig, name) != name:
                raise ValueError(f"{dataset}: {sig} would fill two tables, {table_of[sig]} and "
                                 f"{name}; declare it in one group")
    for g in groups:
        renames = dict(g.renames)
        for decl in g.declarations:
            spec = parsed[decl]
            name = renames.get(spec.signature, f"{g.table_prefix}_{snake_case(spec.name)}")
            if name in seen and seen[name] != spec.signature:
                raise ValueError(f"{dataset}: table {name} would hold {seen[name]} and "
                                 f"{spec.signature}; add a rename")
            if name in seen:
                continue
            seen[name] = spec.signature
            roles = tuple(r for gg in groups for r in gg.roles
                          if any(parsed[d].signature == spec.signature for d in gg.declarations))
            cols = LINEAGE_LOG_COLUMNS + (
                Column("role", "VARCHAR", "role of the emitting contract", False),
                Column("source", "VARCHAR", "deployment or feed the log belongs to", False),
            ) + spec.columns() + (Column("run_id", "VARCHAR", "ingest run that wrote the row", False),)
            table = register_table(Table(
                "raw", name, f"Decoded `{spec.signature}` logs (topic0 `{spec.topic0}`), "
                f"declared as `{spec.declaration}`; emitted by: {', '.join(sorted(set(roles)))}.",
                cols, f"ingest.datasets.{dataset}", ("block_number", "log_index")))
            out.append(EventTable(spec, table, tuple(sorted(set(roles)))))
    return tuple(out)


class LogDataset(ABC):
    """Base class of datasets made of contract logs. Subclasses declare the class attributes."""

    NAME: str = ""
    ROLES: dict[str, bool] = {}  # deployment role -> required
    GROUPS: tuple[EventGroup, ...] = ()
    EVENT_TABLES: tuple[EventTable, ...] = ()
    DERIVED_TABLES: tuple[Table, ...] = ()

    @abstractmethod
    def sources(self, dset: DeploymentSet, chain_id: int) -> list[Source]:
        """The deployments or feeds of this dataset on ``chain_id``."""

    def prepare(self, ctx: RunContext, source: Source, to_block: int) -> None:  # noqa: B027
        """Run once per run before the chunk loop (e.g. phase discovery); default: nothing."""

    @abstractmethod
    def root_roles(self, ctx: RunContext, source: Source) -> dict[str, list[str]]:
        """Addresses by role known before reading the chunk."""

    def discovered_roles(self, ctx: RunContext, source: Source, a: int, b: int
                         ) -> dict[str, list[str]]:
        """Addresses by role found from logs stored so far (called after root logs of [a, b])."""
        return {}

    def after_chunk(self, ctx: RunContext, source: Source, a: int, b: int) -> None:  # noqa: B027
        """Fill derived tables for [a, b] (inside the chunk's transaction); default: nothing."""

    def after_chunk_all(self, ctx: RunContext, sources: Sequence[Source], a: int, b: int) -> None:
        """:meth:`after_chunk` for several sources of one chunk (a dataset may do it in fewer
        statements; the rows written must be the same, in the same order)."""
        for s in sources:
            self.after_chunk(ctx, s, a, b)

    def topics_for(self, role: str) -> list[str]:
        return sorted({t.spec.topic0 for t in self.EVENT_TABLES if role in t.roles})

    def all_tables(self) -> tuple[Table, ...]:
        return tuple(t.table for t in self.EVENT_TABLES) + self.DERIVED_TABLES

    def asked_doc(self) -> str:
        """What this dataset asks for (each role's topic0s) and writes (``raw.logs`` and its
        tables), as the canonical JSON text its fingerprint hashes (:func:`ingest.schema.asked_doc`)."""
        roles = sorted(set(self.ROLES) | {r for t in self.EVENT_TABLES for r in t.roles})
        return asked_doc(self.NAME, {r: self.topics_for(r) for r in roles},
                         (LOGS, *self.all_tables()))

    def asked_sha256(self) -> str:
        """The fingerprint of :meth:`asked_doc`, recorded with each covered interval
        (:func:`ingest.schema.asked_sha256`)."""
        return sha256_hex(self.asked_doc())

    def derived_inputs(self) -> frozenset[str] | None:
        """The topic0s whose logs this dataset's derived tables or contract discovery read
        (declaring one of them anew changes rows or addresses beyond its own logs, so an interval
        stored without it is re-ingested whole, never backfilled); None: not known, every added
        event needs a re-ingest. Default: none when the dataset derives and discovers nothing."""
        cls = type(self)
        if self.DERIVED_TABLES or any(getattr(cls, h) is not getattr(LogDataset, h) for h in (
                "after_chunk", "after_chunk_all", "discovered_roles", "prepare")):
            return None
        return frozenset()

    def added_topics(self, old_doc: str) -> dict[str, tuple[str, ...]] | None:
        """The topic0s this version asks for, by role, beyond those of ``old_doc`` (an interval's
        recorded :meth:`asked_doc`), when that is the only difference: same dataset and ingest
        format, every role's old topic0s still asked for, every old table declared with the same
        columns, the new tables those of added events only, and no added event read by derived
        rows or discovery (:meth:`derived_inputs`). Else None: the interval is re-ingested whole.
        """
        try:
            old = json.loads(old_doc)
        except ValueError:
            return None
        new = json.loads(self.asked_doc())
        if not isinstance(old, dict) or set(old) != set(new) or any(
                old[k] != new[k] for k in ("ingest_format", "dataset")):
            return None
        ot, nt = old["topics"], new["topics"]
        if not isinstance(ot, dict) or not set(ot) <= set(nt):
            return None
        added: dict[str, tuple[str, ...]] = {}
        for role, ts in sorted(nt.items()):
            before = set(ot.get(role, ()))
            if not before <= set(ts):
                return None  # an event no longer asked for: its rows would have to go
            if set(ts) - before:
                added[role] = tuple(sorted(set(ts) - before))
        every = {t for ts in added.values() for t in ts}
        inputs = self.derived_inputs()
        if not every or inputs is None or inputs & every:
            return None
        otab, ntab = old["tables"], new["tables"]
        if not isinstance(otab, dict) or any(ntab.get(k) != v for k, v in otab.items()):
            return None  # a table no longer written, or written with other columns
        if not set(ntab) - set(otab) <= {t.table.fqn for t in self.EVENT_TABLES
                                         if t.spec.topic0 in every}:
            return None  # a new table that is not an added event's (a derived one)
        return added

    def earlier_docs(self) -> dict[str, str]:
        """:meth:`asked_doc` of this version's declarations less one event (undeclared, or
        undeclared for one of its roles), by fingerprint: how an interval stored by a version
        that did not record its doc (``meta.asked_sets``) is recognised as lacking exactly that
        event (a SHA-256 match proves the doc)."""
        new = json.loads(self.asked_doc())
        table_of = {t.spec.topic0: t.table.fqn for t in self.EVENT_TABLES}
        out: dict[str, str] = {}

        def add(doc: dict[str, Any]) -> None:
            text = canonical_asked(doc)
            out[sha256_hex(text)] = text

        for t0 in sorted({t for ts in new["topics"].values() for t in ts}):
            roles = [r for r, ts in new["topics"].items() if t0 in ts]
            doc = json.loads(json.dumps(new))
            for r in roles:
                doc["topics"][r].remove(t0)
            doc["tables"].pop(table_of.get(t0, ""), None)
            add(doc)
            for r in roles if len(roles) > 1 else ():
                doc = json.loads(json.dumps(new))
                doc["topics"][r].remove(t0)
                add(doc)
        return out

    def event_of(self, topic0: str) -> str:
        """The declared signature of ``topic0`` (for messages)."""
        return next((t.spec.signature for t in self.EVENT_TABLES if t.spec.topic0 == topic0),
                    topic0)

    def declared_addresses(self, source: Source) -> dict[str, list[str]]:
        """The contract addresses ``source`` was given, by role (default: none; the dataset
        discovers its contracts, e.g. a feed's phase aggregators)."""
        return {}

    def addresses_sha256(self, source: Source) -> str:
        """Fingerprint of :meth:`declared_addresses`, recorded with each covered interval of
        ``source`` (:func:`ingest.schema.addresses_sha256`)."""
        return addresses_sha256(self.declared_addresses(source))


# ------------------------------------------------------------------------- bulk path
#
# One chunk of one dataset is written in two steps. First its eth_getLogs answers (every source
# and role at once) become the temp table ``_stage``: either straight from the JSON bytes with
# DuckDB's JSON reader (:func:`stage_json`, the fast path: no Python object per log), or from
# parsed dicts through Arrow (:func:`stage_arrow`). Both apply the same strict checks in the
# same statement (a bad row aborts it through ``error()``, naming block, log index, tx and
# field). Then :func:`write_stage` checks the stage against ``raw.blocks``, and inserts
# ``raw.logs`` and one INSERT ... SELECT per typed event table over all sources.

_LOG_SCHEMA = pa.schema([
    ("blockNumber", pa.string()), ("blockHash", pa.string()), ("transactionHash", pa.string()),
    ("transactionIndex", pa.string()), ("logIndex", pa.string()), ("address", pa.string()),
    ("topics", pa.list_(pa.string())), ("data", pa.string()), ("removed", pa.bool_()),
    ("role", pa.string()),
])

# what DuckDB's JSON reader reads of each log object (other keys are ignored, as before)
_JSON_COLUMNS = ("{blockNumber: 'VARCHAR', blockHash: 'VARCHAR', transactionHash: 'VARCHAR', "
                 "transactionIndex: 'VARCHAR', logIndex: 'VARCHAR', address: 'VARCHAR', "
                 "topics: 'VARCHAR[]', data: 'VARCHAR', removed: 'BOOLEAN'}")
_MAX_LOG_BYTES = 64 << 20  # DuckDB's limit for one JSON object (one log); default is 16 MiB


def logs_to_arrow(logs: Sequence[dict[str, Any]], role: str) -> pa.Table:
    """Columns straight from the JSON objects; all parsing happens in DuckDB afterwards."""
    n = len(logs)

    def col(k: str) -> list[Any]:
        return [lg.get(k) for lg in logs]

    return pa.Table.from_arrays([
        pa.array(col("blockNumber"), pa.string()), pa.array(col("blockHash"), pa.string()),
        pa.array(col("transactionHash"), pa.string()),
        pa.array(col("transactionIndex"), pa.string()), pa.array(col("logIndex"), pa.string()),
        pa.array(col("address"), pa.string()), pa.array(col("topics"), pa.list_(pa.string())),
        pa.array(col("data"), pa.string()),
        pa.array([bool(lg.get("removed", False)) for lg in logs], pa.bool_()),
        pa.array([role] * n, pa.string()),
    ], schema=_LOG_SCHEMA)


@dataclass(frozen=True)
class LogsBatch:
    """One source's and role's eth_getLogs answer for blocks ``[start, end]``: either JSON bytes
    (``body``, a JSON array as :meth:`JsonRpcClient.get_logs_raw` returns) or parsed ``logs``."""

    source: str
    role: str
    start: int
    end: int
    body: bytes | memoryview | None = None
    logs: Sequence[dict[str, Any]] | None = None
    # what was asked for: every log must be of one of these contracts and topic0s (empty: not
    # checked), as every log must lie in [start, end]
    addresses: tuple[str, ...] = ()
    topic0s: tuple[str, ...] = ()


class MalformedLogsJson(DecodeError):
    """DuckDB could not read an eth_getLogs answer as an array of log objects (not valid JSON,
    or a field of the wrong JSON type). The engine refetches such a chunk through the parsed
    path, which retries corrupt bodies; there it is a plain :class:`DecodeError`."""


# static events go through the column-at-a-time decoder first (faster than the SQL decode);
# the SQL decode below stays the reference and runs whenever that decoder gives up
BULK_STATIC = True

_DECODE_ERR = "deficit-decode-error"
_LOG_ERR = "deficit-log-error"
_HEXQ = "regexp_full_match({0}, '0x[0-9a-fA-F]{{1,{1}}}')"
_LOG_CHECKS = (
    (_HEXQ.format("blockNumber", 16), "blockNumber"),
    ("regexp_full_match(blockHash, '0x[0-9a-fA-F]{64}')", "blockHash"),
    ("regexp_full_match(transactionHash, '0x[0-9a-fA-F]{64}')", "transactionHash"),
    (_HEXQ.format("transactionIndex", 8), "transactionIndex"),
    (_HEXQ.format("logIndex", 8), "logIndex"),
    ("regexp_full_match(address, '0x[0-9a-fA-F]{40}')", "address"),
    ("topics IS NOT NULL AND len(topics) BETWEEN 1 AND 4 "
     "AND regexp_full_match(topics[1], '0x[0-9a-fA-F]{64}')", "topics"),
    ("data IS NOT NULL", "data"),
    ("NOT coalesce(removed, false)", "removed"),
    ("blockNumber::UBIGINT BETWEEN lo AND hi", "range"),  # only reached when blockNumber is hex
    # only reached when address and topics are well-formed
    ("len(addrs) = 0 OR list_contains(addrs, lower(address))", "unasked_address"),
    ("len(t0s) = 0 OR list_contains(t0s, lower(topics[1]))", "unasked_topic0"),
)


def _sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(sql_str(v.lower()) for v in values) + "]::VARCHAR[]"


def _asked(bt: LogsBatch, n: int) -> tuple[pa.Array, pa.Array]:
    """The batch's asked-for addresses and topic0s (lower case), one list per row."""
    return (pa.array([[a.lower() for a in bt.addresses]] * n, pa.list_(pa.string())),
            pa.array([[t.lower() for t in bt.topic0s]] * n, pa.list_(pa.string())))


def _stage_sql(rel: str) -> str:
    """CREATE the temp ``_stage`` from ``rel`` (raw JSON-RPC columns plus role, source, lo, hi).

    The first failing check of a row names its field; every cast is guarded by the checks, so
    the statement either stages every row or stops at ``error()`` with the row's location,
    whatever order DuckDB evaluates things in.
    """
    bad = " ".join(f"WHEN NOT coalesce({c}, false) THEN '{f}'" for c, f in _LOG_CHECKS)

    def raw(col: str) -> str:
        return f"coalesce(left(replace({col}, '|', '?'), 80), '')"

    def ok(expr: str) -> str:
        return f"CASE WHEN _bad IS NULL THEN {expr} END"

    return (
        "CREATE OR REPLACE TEMP TABLE _stage AS SELECT "
        f"{ok('blockNumber::UBIGINT')} AS block_number, lower(blockHash) AS block_hash, "
        f"lower(transactionHash) AS tx_hash, {ok('transactionIndex::UINTEGER')} AS tx_index, "
        f"{ok('logIndex::UINTEGER')} AS log_index, lower(address) AS address, topics, data, "
        "lower(topics[1]) AS topic0, role, source, lo, hi "
        f"FROM (SELECT *, CASE {bad} END AS _bad FROM {rel}) "
        f"WHERE CASE WHEN _bad IS NULL THEN true ELSE error('{_LOG_ERR}|' || _bad || '|' || "
        f"source || '|' || lo || '|' || hi || '|' || {raw('blockNumber')} || '|' || "
        f"{raw('logIndex')} || '|' || {raw('transactionHash')}) END")


def _raise_log_error(e: duckdb.Error) -> None:
    """Turn the staging statement's ``error()`` into the typed error it stands for."""
    m = re.search(rf"{_LOG_ERR}\|(\w+)\|([^|]*)\|(\d+)\|(\d+)\|([^|]*)\|([^|]*)\|([^|\s\"]*)",
                  str(e))
    if not m:
        return
    fld, source, lo, hi, bn, li, tx = m.groups()
    if fld == "range":
        raise DecodeError(f"eth_getLogs for blocks {lo}..{hi} returned a log outside the range "
                          f"(source {source})", block_number=_try_hex(bn),
                          log_index=_try_hex(li), tx_hash=tx or None,
                          field="blockNumber") from None
    if fld in ("unasked_address", "unasked_topic0"):
        what = "contract" if fld == "unasked_address" else "event (topic0)"
        raise DecodeError(f"eth_getLogs returned a log of a {what} it was not asked for "
                          f"(source {source})", block_number=_try_hex(bn),
                          log_index=_try_hex(li), tx_hash=tx or None,
                          field="address" if fld == "unasked_address" else "topics") from None
    raise DecodeError(f"malformed eth_getLogs entry (source {source})", tx_hash=tx or None,
                      field=fld, block_number=_try_hex(bn), log_index=_try_hex(li)) from None


_tmp_dir: str | None = None


def _json_dir() -> str:
    """A private directory for the JSON arrays DuckDB reads (in RAM, /dev/shm, when there is
    one); each file lives only for one staging statement."""
    global _tmp_dir
    if _tmp_dir is None or not os.path.isdir(_tmp_dir):
        shm = "/dev/shm"
        base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
        _tmp_dir = tempfile.mkdtemp(prefix="deficit-logs-", dir=base)
        atexit.register(shutil.rmtree, _tmp_dir, True)
    return _tmp_dir


def stage_json(con: duckdb.DuckDBPyConnection, batches: Sequence[LogsBatch]) -> int:
    """Stage JSON-bytes batches as ``_stage`` with DuckDB's JSON reader; returns the row count.

    Raises :class:`DecodeError` for a bad log and :class:`MalformedLogsJson` when a body is not
    an array of log objects DuckDB can read.
    """
    batches = [bt for bt in batches if bt.body is not None]
    if not batches:
        return 0
    d = _json_dir()
    files, values = [], []
    for bt in batches:
        path = os.path.join(d, f"{secrets.token_hex(8)}.json")
        with open(path, "wb") as f:
            f.write(bt.body)  # type: ignore[arg-type]
        files.append(path)
        values.append(f"('{path}', {sql_str(bt.source)}, {sql_str(bt.role)}, "
                      f"{int(bt.start)}::UBIGINT, {int(bt.end)}::UBIGINT, "
                      f"{_sql_list(bt.addresses)}, {_sql_list(bt.topic0s)})")
    rel = (f"(SELECT j.*, m.role, m.source, m.lo, m.hi, m.addrs, m.t0s FROM "
           f"read_json([{', '.join(map(sql_str, files))}], "
           f"format='array', columns={_JSON_COLUMNS}, filename='_file', "
           f"maximum_object_size={_MAX_LOG_BYTES}) j "
           f"JOIN (VALUES {', '.join(values)}) m(_file, source, role, lo, hi, addrs, t0s) "
           f"USING (_file))")
    try:
        con.execute(_stage_sql(rel))
    except duckdb.Error as e:
        _raise_log_error(e)
        raise MalformedLogsJson(f"eth_getLogs answer is not an array of log objects: "
                                f"{str(e).splitlines()[0][:300]}") from None
    finally:
        for path in files:
            try:
                os.unlink(path)
            except OSError:
                pass
    n = fetch_one(con.execute("SELECT count(*) FROM _stage"))
    return int(n[0]) if n else 0


def stage_arrow(con: duckdb.DuckDBPyConnection, batches: Sequence[LogsBatch]) -> int:
    """Stage parsed-dict batches as ``_stage`` (through Arrow); returns the row count."""
    tables = []
    for bt in batches:
        if not bt.logs:
            continue
        t = logs_to_arrow(bt.logs, bt.role)
        n = t.num_rows
        addrs, t0s = _asked(bt, n)
        tables.append(t.append_column("source", pa.array([bt.source] * n, pa.string()))
                      .append_column("lo", pa.array([bt.start] * n, pa.uint64()))
                      .append_column("hi", pa.array([bt.end] * n, pa.uint64()))
                      .append_column("addrs", addrs).append_column("t0s", t0s))
    if not tables:
        return 0
    con.register("_stage_json", pa.concat_tables(tables))
    try:
        con.execute(_stage_sql("_stage_json"))
    except duckdb.Error as e:
        _raise_log_error(e)
        raise
    finally:
        unregister(con, "_stage_json")
    n = fetch_one(con.execute("SELECT count(*) FROM _stage"))
    return int(n[0]) if n else 0




def write_logs(con: duckdb.DuckDBPyConnection, staged: pa.Table, *, chain_id: int, dataset: str,
               source: str, run_id: str, a: int, b: int,
               event_tables: Sequence[EventTable]) -> int:
    """Validate and insert one source's logs (``staged``: :func:`logs_to_arrow`, with its role
    column) into ``raw.logs`` and the decoded tables; every log must lie in blocks ``[a, b]``.

    Must run inside the chunk's transaction after the chunk's blocks are in ``raw.blocks``.
    Returns the number of logs written. Raises before writing anything on a bad row.
    """
    if staged.num_rows == 0:
        return 0
    n = staged.num_rows
    addrs, t0s = _asked(LogsBatch(source, "", a, b), n)  # nothing asked: not checked
    t = (staged.append_column("source", pa.array([source] * n, pa.string()))
         .append_column("lo", pa.array([a] * n, pa.uint64()))
         .append_column("hi", pa.array([b] * n, pa.uint64()))
         .append_column("addrs", addrs).append_column("t0s", t0s))
    con.register("_stage_json", t)
    try:
        con.execute(_stage_sql("_stage_json"))
    except duckdb.Error as e:
        _raise_log_error(e)
        raise
    finally:
        unregister(con, "_stage_json")
    return write_stage(con, chain_id=chain_id, dataset=dataset, run_id=run_id,
                       event_tables=event_tables)


def write_stage(con: duckdb.DuckDBPyConnection, *, chain_id: int, dataset: str, run_id: str,
                event_tables: Sequence[EventTable]) -> int:
    """Insert the staged logs (``_stage``, from :func:`stage_json` / :func:`stage_arrow`) into
    ``raw.logs`` and every typed event table, one statement per table for all sources.

    Must run inside the chunk's transaction after the chunk's blocks are in ``raw.blocks``.
    Checks first that each log's block hash is the stored block's and that no log comes twice;
    every typed row is validated and decoded in the same statement. Drops ``_stage``; returns
    the number of logs written.
    """
    mism = fetch_one(con.execute(
        "SELECT s.block_number, s.log_index, s.tx_hash, s.block_hash, b.hash FROM _stage s "
        "LEFT JOIN raw.blocks b ON b.chain_id = ? AND b.number = s.block_number "
        "WHERE b.hash IS DISTINCT FROM s.block_hash ORDER BY 1, 2 LIMIT 1", [chain_id]))
    if mism:
        raise InconsistentLogError(
            f"block {mism[0]} log index {mism[1]} (tx {mism[2]}): log says block hash {mism[3]} "
            f"but the block at that height is {mism[4]} — the chain changed between requests")
    dup = fetch_one(con.execute("SELECT block_number, log_index FROM _stage GROUP BY ALL "
                                "HAVING count(*) > 1 LIMIT 1"))
    if dup:
        raise DecodeError("duplicate log in eth_getLogs answer", block_number=dup[0],
                          log_index=dup[1], field="logIndex")
    con.execute(
        "INSERT INTO raw.logs SELECT ?, block_number, block_hash, tx_hash, tx_index, log_index, "
        "address, topics, data, ?, source, role, ? FROM _stage", [chain_id, dataset, run_id])
    present = {r[0] for r in con.execute("SELECT DISTINCT topic0 FROM _stage").fetchall()}
    for et in event_tables:
        spec = et.spec
        if spec.topic0 not in present:
            continue
        roles = ", ".join(f"'{r}'" for r in et.roles)
        where = f"topic0 = '{spec.topic0}' AND role IN ({roles})"
        if spec.is_static and BULK_STATIC and _insert_bulk(
                con, et, f"(SELECT * FROM _stage WHERE {where})", chain_id, run_id):
            continue
        if spec.is_static:
            # validate and decode in one statement: a row failing any strict check aborts the
            # statement (and so the chunk's transaction) through error(), carrying its location
            # and field; the self-contained guard is safe whatever order the optimizer picks, and
            # the plain filter in front lets the scan drop the other events' rows first
            checks = spec.sql_checks()
            ok = " AND ".join(f"coalesce({c}, false)" for c, _ in checks)
            which = " ".join(f"WHEN NOT coalesce({c}, false) THEN '{f}'" for c, f in checks)
            guard = (f"CASE WHEN NOT ({where}) THEN false WHEN {ok} THEN true ELSE error("
                     f"'{_DECODE_ERR}|' || block_number || '|' || log_index || '|' || tx_hash "
                     f"|| '|' || CASE {which} END) END")
            cols = "".join(f"{c}, " for c in spec.select_sql())
            try:
                con.execute(
                    f"INSERT INTO {et.table.fqn} SELECT ?, block_number, block_hash, tx_hash, "
                    f"tx_index, log_index, address, role, source, {cols}? FROM _stage "
                    f"WHERE {where} AND {guard} ORDER BY block_number, log_index",
                    [chain_id, run_id])
            except duckdb.Error as e:
                m = re.search(rf"{_DECODE_ERR}\|(\d+)\|(\d+)\|([^|]*)\|([\w$:]+)", str(e))
                if not m:
                    raise
                _raise_field(spec, (int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)))
        else:
            _insert_dynamic(con, et, f"(SELECT * FROM _stage WHERE {where})", chain_id, run_id)
    n = fetch_one(con.execute("SELECT count(*) FROM _stage"))
    con.execute("DROP TABLE _stage")
    return int(n[0]) if n else 0


def _try_hex(v: str | None) -> int | None:
    try:
        return int(v, 16) if v else None
    except ValueError:
        return None


def _raise_field(spec: EventSpec, bad: tuple[Any, ...]) -> None:
    block, logi, tx, fld = bad
    if fld.startswith("fit:"):  # a valid uintN/intN (N > 128) that does not fit its column
        fld = fld[4:]
        p = next(p for p in spec.params if spec.column_name(p) == fld)
        raise ValueOutOfRange(f"{p.type} value does not fit the 128-bit column "
                              f"({'UHUGEINT' if p.elem.startswith('uint') else 'HUGEINT'})",
                              block_number=block, log_index=logi, tx_hash=tx,
                              event=spec.signature, field=fld)
    what = {"topics": f"expected {1 + len(spec.indexed)} 32-byte topics",
            "data": f"expected exactly {32 * len(spec.data_params)} bytes of 0x-hex data"}
    raise DecodeError(what.get(fld, "invalid ABI encoding (padding, sign extension or bool)"),
                      block_number=block, log_index=logi, tx_hash=tx, event=spec.signature,
                      field=fld)


_LINEAGE = "block_number, block_hash, tx_hash, tx_index, log_index, address, role, source"


def _insert_bulk(con: duckdb.DuckDBPyConnection, et: EventTable, rel: str, chain_id: int,
                 run_id: str) -> bool:
    """Decode ``rel``'s rows column at a time (:mod:`ingest.bulk_decode`) and insert them;
    False (nothing written) when that decoder does not take them: the caller's decoder then
    gives the same values, or the typed error of the first bad row."""
    spec = et.spec
    tbl = bulk_decode.by_length(con.sql(
        f"SELECT {_LINEAGE}, {bulk_decode.input_sql(spec)} FROM {rel}").to_arrow_table())
    if tbl.num_rows == 0:
        return True
    decoded = bulk_decode.decode_columns(spec, tbl)
    if decoded is None:
        return False
    arrays = {n: tbl.column(n) for n in _LINEAGE.split(", ")}
    sel = []
    for i, (c, parts) in enumerate(zip(spec.columns(), decoded, strict=True)):
        # Arrow columns named by position: a name built from the column's (d_<name>__hi) could be
        # another parameter's column (a parameter named `amount__hi`)
        arrs, expr = bulk_decode.column_sql(str(i), c.type, parts)
        arrays.update(arrs)
        sel.append(expr)
    del tbl
    # rows in (block, log) order, sorted here (the stage holds several answers, and the
    # decoder groups rows by data length), so that DuckDB's INSERT needs no sort
    out = bulk_decode.in_log_order(pa.table(arrays))
    con.register("_stage_bulk", out)
    try:
        con.execute(f"INSERT INTO {et.table.fqn} SELECT ?, {_LINEAGE}, {', '.join(sel)}, ? "
                    "FROM _stage_bulk", [chain_id, run_id])
    finally:
        unregister(con, "_stage_bulk")
    return True


def _insert_dynamic(con: duckdb.DuckDBPyConnection, et: EventTable, rel: str, chain_id: int,
                    run_id: str) -> None:
    """Per-log strict decode (:meth:`EventSpec.decode_fast`) for events with dynamic params,
    unless the column-at-a-time decoder (:mod:`ingest.bulk_decode`) takes the rows.

    Integers travel to DuckDB as int64 where every value of the column fits, else as exact
    decimal text, and are cast to the declared type in SQL — never through a float.
    """
    if _insert_bulk(con, et, rel, chain_id, run_id):
        return
    spec = et.spec
    cols = spec.columns()
    rows = con.execute(
        f"SELECT block_number, block_hash, tx_hash, tx_index, log_index, address, role, source, "
        f"topics, data FROM {rel} ORDER BY block_number, log_index").fetchall()
    decoded_rows = [spec.decode_fast(r[8], r[9], block_number=r[0], log_index=r[4],
                                     tx_hash=r[2]) for r in rows]
    names = ["block_number", "block_hash", "tx_hash", "tx_index", "log_index", "address", "role",
             "source"]
    arrays = {n: pa.array([r[i] for r in rows]) for i, n in enumerate(names)}
    for j in range(len(cols)):
        arrays[f"d_{j}"] = _exact_array([d[j] for d in decoded_rows])
    con.register("_stage_dyn", pa.table(arrays))
    try:
        sel = "".join(f'CAST("d_{j}" AS {c.type}), ' for j, c in enumerate(cols))
        con.execute(
            f"INSERT INTO {et.table.fqn} SELECT ?, block_number, block_hash, tx_hash, tx_index, "
            f"log_index, address, role, source, {sel}? FROM _stage_dyn", [chain_id, run_id])
    finally:
        unregister(con, "_stage_dyn")


_I64 = (-(2**63), 2**63 - 1)


def _exact_array(values: list[Any]) -> pa.Array:
    """An Arrow column for decoded values; big integers as decimal strings (exact)."""
    sample = next((v for v in values if v is not None and v != []), None)
    ints = isinstance(sample, int) and not isinstance(sample, bool)
    lists = isinstance(sample, list)
    if isinstance(sample, list) and isinstance(sample[0], int) and not isinstance(sample[0], bool):
        if all(_I64[0] <= x <= _I64[1] for v in values for x in v):
            return pa.array(values, pa.list_(pa.int64()))
        return pa.array([[str(x) for x in v] for v in values], pa.list_(pa.string()))
    if lists:
        return pa.array(values)
    if ints:
        if all(_I64[0] <= v <= _I64[1] for v in values):
            return pa.array(values, pa.int64())
        return pa.array([str(v) for v in values], pa.string())
    return pa.array(values)


def check_disjoint(sources: Sequence[tuple[str, dict[str, list[str]]]]) -> None:
    """Two sources may not claim the same contract address (rows would be ambiguous)."""
    owner: dict[str, str] = {}
    for key, roles in sources:
        for addrs in roles.values():
            for a in addrs:
                if a in owner and owner[a] != key:
                    raise ConfigError(f"address {a} belongs to both {owner[a]} and {key}")
                owner[a] = key
