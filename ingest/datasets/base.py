"""What a log dataset declares, and the bulk path from eth_getLogs JSON to typed DuckDB rows.

A log dataset module declares, once: its contract ``ROLES`` (deployment keys), its event
``GROUPS`` (which roles emit which declarations), and from those one typed table per event is
generated and registered. The engine calls the hooks; this module turns raw JSON-RPC log objects
into ``raw.logs`` rows and decoded rows, validating strictly before anything is inserted.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from ..abi import EventSpec, snake_case
from ..errors import ConfigError, DecodeError, InconsistentLogError, ValueOutOfRange
from ..schema import LINEAGE_LOG_COLUMNS, Column, Table, register_table
from ..warehouse import fetch_one

if TYPE_CHECKING:
    from ..deployments import DeploymentSet
    from ..engine import RunContext

__all__ = ["EventGroup", "EventTable", "LogDataset", "Source", "LOGS", "logs_to_arrow",
           "write_logs"]

LOGS = register_table(Table(
    "raw", "logs", "Every ingested log exactly as the node returned it (address, topics, data), "
    "with its lineage; the decoded per-event tables are derived from these rows.",
    LINEAGE_LOG_COLUMNS + (
        Column("topics", "VARCHAR[]", "topics as received (topics[1] is topic0), 0x-hex", False),
        Column("data", "VARCHAR", "data as received, 0x-hex", False),
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

    def topics_for(self, role: str) -> list[str]:
        return sorted({t.spec.topic0 for t in self.EVENT_TABLES if role in t.roles})

    def all_tables(self) -> tuple[Table, ...]:
        return tuple(t.table for t in self.EVENT_TABLES) + self.DERIVED_TABLES


# ------------------------------------------------------------------------- bulk path
_LOG_SCHEMA = pa.schema([
    ("blockNumber", pa.string()), ("blockHash", pa.string()), ("transactionHash", pa.string()),
    ("transactionIndex", pa.string()), ("logIndex", pa.string()), ("address", pa.string()),
    ("topics", pa.list_(pa.string())), ("data", pa.string()), ("removed", pa.bool_()),
    ("role", pa.string()),
])


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


_DECODE_ERR = "deficit-decode-error"
_HEXQ = "regexp_full_match({0}, '0x[0-9a-fA-F]{{1,16}}')"
_LOG_CHECKS = (
    (_HEXQ.format("blockNumber"), "blockNumber"),
    ("regexp_full_match(blockHash, '0x[0-9a-fA-F]{64}')", "blockHash"),
    ("regexp_full_match(transactionHash, '0x[0-9a-fA-F]{64}')", "transactionHash"),
    (_HEXQ.format("transactionIndex"), "transactionIndex"),
    (_HEXQ.format("logIndex"), "logIndex"),
    ("regexp_full_match(address, '0x[0-9a-fA-F]{40}')", "address"),
    ("topics IS NOT NULL AND len(topics) BETWEEN 1 AND 4", "topics"),
    ("data IS NOT NULL", "data"),
    ("NOT removed", "removed"),
)


def write_logs(con: duckdb.DuckDBPyConnection, staged: pa.Table, *, chain_id: int, dataset: str,
               source: str, run_id: str, a: int, b: int,
               event_tables: Sequence[EventTable]) -> int:
    """Validate and insert one chunk's logs into ``raw.logs`` and the decoded tables.

    Must run inside the chunk's transaction after the chunk's blocks are in ``raw.blocks``.
    Returns the number of logs written. Raises before writing anything on a bad row.
    """
    if staged.num_rows == 0:
        return 0
    con.register("_stage_json", staged)
    try:
        cases = " ".join(f"WHEN NOT coalesce({c}, false) THEN '{f}'" for c, f in _LOG_CHECKS)
        bad = fetch_one(con.execute(
            f"SELECT blockNumber, logIndex, transactionHash, CASE {cases} END AS f "
            f"FROM _stage_json WHERE f IS NOT NULL LIMIT 1"))
        if bad:
            raise DecodeError(f"malformed eth_getLogs entry (source {source})",
                              tx_hash=bad[2], field=bad[3],
                              block_number=_try_hex(bad[0]), log_index=_try_hex(bad[1]))
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _stage AS SELECT "
            "blockNumber::UBIGINT AS block_number, lower(blockHash) AS block_hash, "
            "lower(transactionHash) AS tx_hash, transactionIndex::UINTEGER AS tx_index, "
            "logIndex::UINTEGER AS log_index, lower(address) AS address, "
            "topics, data, role "
            "FROM _stage_json")
    finally:
        con.unregister("_stage_json")
    out_of_range = fetch_one(con.execute(
        "SELECT block_number, log_index, tx_hash FROM _stage WHERE block_number NOT BETWEEN ? AND ? "
        "LIMIT 1", [a, b]))
    if out_of_range:
        raise DecodeError(f"eth_getLogs for blocks {a}..{b} returned a log outside the range",
                          block_number=out_of_range[0], log_index=out_of_range[1],
                          tx_hash=out_of_range[2], field="blockNumber")
    mism = fetch_one(con.execute(
        "SELECT s.block_number, s.log_index, s.tx_hash, s.block_hash, b.hash FROM _stage s "
        "LEFT JOIN raw.blocks b ON b.chain_id = ? AND b.number = s.block_number "
        "WHERE b.hash IS DISTINCT FROM s.block_hash ORDER BY 1, 2 LIMIT 1", [chain_id]))
    if mism:
        raise InconsistentLogError(
            f"block {mism[0]} log index {mism[1]} (tx {mism[2]}): log says block hash {mism[3]} "
            f"but the block at that height is {mism[4]} — the chain changed between requests")
    dup = fetch_one(con.execute("SELECT block_number, log_index FROM _stage GROUP BY ALL HAVING count(*) > 1 "
                      "LIMIT 1"))
    if dup:
        raise DecodeError("duplicate log in eth_getLogs answer", block_number=dup[0],
                          log_index=dup[1], field="logIndex")
    con.execute(
        "INSERT INTO raw.logs SELECT ?, block_number, block_hash, tx_hash, tx_index, log_index, "
        "address, topics, data, ?, ?, role, ? FROM _stage", [chain_id, dataset, source, run_id])
    present = {r[0] for r in con.execute("SELECT DISTINCT lower(topics[1]) FROM _stage").fetchall()}
    for et in event_tables:
        spec = et.spec
        if spec.topic0 not in present:
            continue
        roles = ", ".join(f"'{r}'" for r in et.roles)
        where = f"lower(topics[1]) = '{spec.topic0}' AND role IN ({roles})"
        rel = f"(SELECT * FROM _stage WHERE {where})"
        if spec.is_static:
            # validate and decode in one statement: a row failing any strict check aborts the
            # statement (and so the chunk's transaction) through error(), carrying its location
            # and field; the self-contained guard is safe whatever order the optimizer picks
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
                    f"tx_index, log_index, address, role, ?, {cols}? FROM _stage WHERE {guard} "
                    f"ORDER BY block_number, log_index", [chain_id, source, run_id])
            except duckdb.Error as e:
                m = re.search(rf"{_DECODE_ERR}\|(\d+)\|(\d+)\|([^|]*)\|(\w+)", str(e))
                if not m:
                    raise
                _raise_field(spec, (int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)))
        else:
            _insert_dynamic(con, et, rel, chain_id, source, run_id)
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
    p = next((p for p in spec.params if spec.column_name(p) == fld), None)
    if p is not None and p.bits() > 128 and not p.is_array:
        raise ValueOutOfRange(f"{p.type} value does not fit the 128-bit column "
                              f"(or is not a valid {p.type})", block_number=block,
                              log_index=logi, tx_hash=tx, event=spec.signature, field=fld)
    what = {"topics": f"expected {1 + len(spec.indexed)} 32-byte topics",
            "data": f"expected exactly {32 * len(spec.data_params)} bytes of 0x-hex data"}
    raise DecodeError(what.get(fld, "invalid ABI encoding (padding, sign extension or bool)"),
                      block_number=block, log_index=logi, tx_hash=tx, event=spec.signature,
                      field=fld)


def _insert_dynamic(con: duckdb.DuckDBPyConnection, et: EventTable, rel: str, chain_id: int,
                    source: str, run_id: str) -> None:
    """Per-log strict decode (:meth:`EventSpec.decode_fast`) for events with dynamic params.

    Integers travel to DuckDB as int64 where every value of the column fits, else as exact
    decimal text, and are cast to the declared type in SQL — never through a float.
    """
    spec = et.spec
    rows = con.execute(
        f"SELECT block_number, block_hash, tx_hash, tx_index, log_index, address, role, topics, "
        f"data FROM {rel} ORDER BY block_number, log_index").fetchall()
    if not rows:
        return
    cols = spec.columns()
    decoded = [spec.decode_fast(r[7], r[8], block_number=r[0], log_index=r[4], tx_hash=r[2])
               for r in rows]
    names = ["block_number", "block_hash", "tx_hash", "tx_index", "log_index", "address", "role"]
    arrays = {n: pa.array([r[i] for r in rows]) for i, n in enumerate(names)}
    for j, c in enumerate(cols):
        arrays["d_" + c.name] = _exact_array([d[j] for d in decoded])
    con.register("_stage_dyn", pa.table(arrays))
    try:
        sel = "".join(f'CAST("d_{c.name}" AS {c.type}), ' for c in cols)
        con.execute(
            f"INSERT INTO {et.table.fqn} SELECT ?, block_number, block_hash, tx_hash, tx_index, "
            f"log_index, address, role, ?, {sel}? FROM _stage_dyn", [chain_id, source, run_id])
    finally:
        con.unregister("_stage_dyn")


_I64 = (-(2**63), 2**63 - 1)


def _exact_array(values: list[Any]) -> pa.Array:
    """An Arrow column for decoded values; big integers as decimal strings (exact)."""
    sample = next((v for v in values if v is not None and v != []), None)
    ints = isinstance(sample, int) and not isinstance(sample, bool)
    lists = isinstance(sample, list)
    if lists and isinstance(sample[0], int) and not isinstance(sample[0], bool):
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
