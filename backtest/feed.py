"""Reading ingested chain facts (``raw.*``) back as the adapters' decoded events.

This module is the backtest's only reader of the per-event ``raw.<dataset>_<event>`` tables. A
protocol adapter declares the ``(role, signature)`` pairs it applies
(:attr:`protocols.base.ProtocolAdapter.events`); the ingest dataset of the same market declares
one typed table per event (:attr:`ingest.datasets.base.LogDataset.EVENT_TABLES`). Joining the two
gives, for one deployment (``source``), every event the adapter understands, in the chain's one
total order ``(block_number, log_index)`` (a log index is unique within its block), each with its
block timestamp from ``raw.blocks`` — the instant interest accrues to when it is applied.

Arguments are the decoded columns as DuckDB returns them: ``UHUGEINT``/``HUGEINT`` as exact Python
``int``, addresses as lower-case ``0x`` text, ``bool`` as ``bool``. Nothing is coerced: a stored
log whose block is missing from ``raw.blocks`` raises :class:`MissingData` naming the table, block
and log index, because its timestamp (and so its interest) would be unknown.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from ingest.datasets import get_dataset
from ingest.datasets.base import EventTable
from protocols.base import ProtocolAdapter
from protocols.domain import EventRef, ProtocolEvent

from .errors import MissingData

__all__ = ["MissingData", "EventSource", "event_sources", "protocol_events"]


@dataclass(frozen=True, slots=True)
class EventSource:
    """Where the adapter's event ``(role, signature)`` is stored: a generated raw table."""

    role: str
    signature: str
    name: str
    table: str
    columns: tuple[str, ...]


def event_sources(adapter: ProtocolAdapter[Any], dataset: str) -> tuple[EventSource, ...]:
    """The raw table holding each event the adapter applies, from the dataset's declarations.

    Raises :class:`MissingData` when the dataset does not ingest an event the adapter applies
    (the replay would silently miss state changes otherwise)."""
    tables: Sequence[EventTable] = get_dataset(dataset).EVENT_TABLES
    out = []
    for spec in adapter.events:
        match = [t for t in tables if t.spec.signature == spec.signature and spec.role in t.roles]
        if not match:
            raise MissingData(f"dataset {dataset!r} ingests no table for {spec.role} event "
                              f"{spec.signature}, which adapter {adapter.name!r} applies; declare it in "
                              f"ingest/catalog.py for that role")
        t = match[0]
        out.append(EventSource(spec.role, spec.signature, spec.name, t.table.fqn,
                               tuple(t.spec.column_name(p) for p in t.spec.params)))
    return tuple(out)


def _table_exists(con: duckdb.DuckDBPyConnection, fqn: str) -> bool:
    schema, name = fqn.split(".", 1)
    cur = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND "
                      "table_name = ?", [schema, name])
    row = cur.fetchone()
    return bool(row and row[0])


def _uhugeint_columns(con: duckdb.DuckDBPyConnection, fqn: str) -> set[str]:
    schema, name = fqn.split(".", 1)
    return {str(r[0]) for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? AND "
        "data_type = 'UHUGEINT'", [schema, name]).fetchall()}


def _rows(con: duckdb.DuckDBPyConnection, src: EventSource, chain_id: int, source: str,
          from_block: int, to_block: int) -> list[tuple[Any, ...]]:
    # DuckDB 2.0's Python client converts UHUGEINT to int ~30x slower than HUGEINT (bench/replay.py):
    # read UHUGEINT columns through an exact HUGEINT cast; a value >= 2**127 makes the cast fail and
    # the table is then read as stored (slow but exact)
    huge = _uhugeint_columns(con, src.table)
    params = [chain_id, source, src.role, from_block, to_block]
    rows: list[tuple[Any, ...]] | None = None
    for cast in ((True, False) if huge else (False,)):
        cols = ", ".join(f'e."{c}"::HUGEINT' if cast and c in huge else f'e."{c}"' for c in src.columns)
        sql = (f"SELECT e.block_number, e.log_index, e.tx_hash, e.address, b.timestamp_ts, {cols} "
               f"FROM {src.table} e LEFT JOIN raw.blocks b ON b.chain_id = e.chain_id AND "
               f"b.number = e.block_number WHERE e.chain_id = ? AND e.source = ? AND e.role = ? AND "
               f"e.block_number BETWEEN ? AND ? ORDER BY e.block_number, e.log_index")
        try:
            rows = con.execute(sql, params).fetchall()
            break
        except duckdb.ConversionException:
            if not cast:
                raise
    assert rows is not None
    for r in rows:
        if r[4] is None:
            raise MissingData(f"{src.table}: block {r[0]} (log index {r[1]}, tx {r[2]}) is not in "
                              f"raw.blocks; re-run `deficit ingest` over that range")
    return rows


def _iter(src: EventSource, rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[int, int, ProtocolEvent]]:
    names = src.columns
    for r in rows:
        ref = EventRef(int(r[0]), int(r[1]), str(r[2]), int(r[4]))
        args = dict(zip(names, r[5:], strict=True))
        yield ref.block_number, ref.log_index, ProtocolEvent(src.name, src.signature, str(r[3]), src.role,
                                                             args, ref)


def protocol_events(con: duckdb.DuckDBPyConnection, adapter: ProtocolAdapter[Any], *, dataset: str,
                    chain_id: int, source: str, from_block: int = 0,
                    to_block: int = 2**63 - 1) -> Iterator[ProtocolEvent]:
    """Every stored event of deployment ``source`` that ``adapter`` applies, blocks
    ``[from_block, to_block]``, in ``(block_number, log_index)`` order."""
    streams = []
    for src in event_sources(adapter, dataset):
        if not _table_exists(con, src.table):
            continue  # never ingested: no such logs (coverage is checked by the caller)
        streams.append(_iter(src, _rows(con, src, chain_id, source, from_block, to_block)))
    for _, _, ev in heapq.merge(*streams, key=lambda t: (t[0], t[1])):
        yield ev
