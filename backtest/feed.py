"""Reading ingested chain facts (``raw.*``) back as the adapters' decoded events, streamed.

This module is the backtest's only reader of the per-event ``raw.<dataset>_<event>`` tables. A
protocol adapter declares the ``(role, signature)`` pairs it applies
(:attr:`protocols.base.ProtocolAdapter.events`); the ingest dataset of the same market declares
one typed table per event (:attr:`ingest.datasets.base.LogDataset.EVENT_TABLES`). Joining the two
gives, for one deployment (``source``), every event the adapter understands, in the chain's one
total order ``(block_number, log_index)`` (a log index is unique within its block), each with its
block timestamp from ``raw.blocks`` — the instant interest accrues to when it is applied.

Streaming (memory bounded independently of the window): the range is read in slices of
``slice_blocks`` blocks (:data:`SLICE_BLOCKS`); a slice is one query per table, fetched through
Arrow, merged in order, and handed out event by event before the next slice is read. A year of an
Aave-scale market (6 M logs) therefore never sits in memory at once (bench/replay.py).

Arguments are the decoded columns as DuckDB stores them: ``UHUGEINT``/``HUGEINT`` as exact Python
``int``, addresses as lower-case ``0x`` text, ``bool`` as ``bool``. Nothing is coerced: 128-bit
integers are read as two exact 64-bit halves (``x >> 64``, ``x & (2**64 - 1)``) and recombined
(``hi << 64 | lo``), because Arrow has no 128-bit integer (DuckDB would hand out ``Decimal``) and
the Python client's own ``UHUGEINT`` conversion is ~30x slower than ``HUGEINT``'s. A stored log
whose block is missing from ``raw.blocks`` raises :class:`MissingData` naming the table, block and
log index, because its timestamp (and so its interest) would be unknown.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import Any

import duckdb

from ingest.datasets import get_dataset
from ingest.datasets.base import EventTable
from protocols.base import ProtocolAdapter
from protocols.domain import EventRef, ProtocolEvent

from .errors import MissingData

__all__ = ["MissingData", "EventSource", "EventStream", "event_sources", "protocol_events", "fetch_columns",
           "SLICE_BLOCKS"]

#: blocks per read slice: ~0.25 M synthetic-Aave logs at 1x (bench/replay.py), a few tens of MB
SLICE_BLOCKS = 50_000

_LOW64 = "18446744073709551615"  # 2**64 - 1
_WIDE = {"HUGEINT", "UHUGEINT"}


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


def _column_types(con: duckdb.DuckDBPyConnection, tables: Sequence[str]) -> dict[str, dict[str, str]]:
    """``table fqn -> column -> DuckDB type`` for the existing ones among ``tables`` (one query)."""
    out: dict[str, dict[str, str]] = {}
    rows = con.execute("SELECT schema_name || '.' || table_name, column_name, data_type FROM "
                       "duckdb_columns() WHERE schema_name || '.' || table_name IN (SELECT unnest(?))",
                       [list(tables)]).fetchall()
    for t, c, ty in rows:
        out.setdefault(str(t), {})[str(c)] = str(ty)
    return out


def _select(expr: str, ty: str) -> list[str]:
    """The SELECT expressions reading one column: two exact 64-bit halves for a 128-bit one."""
    if ty not in _WIDE:
        return [expr]
    hi = "UBIGINT" if ty == "UHUGEINT" else "BIGINT"
    return [f"({expr} >> 64)::{hi}", f"({expr} & {_LOW64}::{ty})::UBIGINT"]


def _join(hi: list[Any], lo: list[Any]) -> list[Any]:
    return [(h << 64) | x if h else x for h, x in zip(hi, lo, strict=True)]


def fetch_columns(con: duckdb.DuckDBPyConnection, exprs: Sequence[tuple[str, str]], rest: str,
                  params: Sequence[Any]) -> list[list[Any]]:
    """``SELECT <exprs> <rest>`` as one Python list per expression (``exprs``: ``(expression,
    DuckDB type)``; 128-bit integers are read exactly through their 64-bit halves, see the module
    docstring), through Arrow: a few times faster than ``fetchall`` on wide integer columns."""
    sel: list[str] = []
    wide: list[bool] = []
    for e, ty in exprs:
        sel += _select(e, ty)
        wide.append(ty in _WIDE)
    table = con.sql(f"SELECT {', '.join(sel)} {rest}", params=list(params)).to_arrow_table()
    cols = [c.to_pylist() for c in table.columns]
    del table
    out: list[list[Any]] = []
    i = 0
    for w in wide:
        if w:
            out.append(_join(cols[i], cols[i + 1]))
            i += 2
        else:
            out.append(cols[i])
            i += 1
    return out


def _bounds(con: duckdb.DuckDBPyConnection, srcs: Sequence[EventSource], chain_id: int, source: str,
            from_block: int, to_block: int) -> list[tuple[int, int] | None]:
    """Per source: the first and last block with one of its events in range (None: none), one query."""
    parts = " UNION ALL ".join(
        f"SELECT {i} AS i, min(block_number) AS a, max(block_number) AS b FROM {s.table} WHERE chain_id = ? "
        f"AND source = ? AND role = ? AND block_number BETWEEN ? AND ?" for i, s in enumerate(srcs))
    params: list[Any] = []
    for s in srcs:
        params += [chain_id, source, s.role, from_block, to_block]
    out: list[tuple[int, int] | None] = [None] * len(srcs)
    for i, a, b in con.execute(parts, params).fetchall():
        if a is not None:
            out[int(i)] = (int(a), int(b))
    return out


def _slice(con: duckdb.DuckDBPyConnection, src: EventSource, types: dict[str, str], chain_id: int,
           source: str, a: int, b: int, out: list[tuple[tuple[int, int], ProtocolEvent]]) -> None:
    """Append ``((block, log index), event)`` for the table's events in blocks ``[a, b]`` (in order)."""
    exprs = [("e.block_number", "UBIGINT"), ("e.log_index", "UINTEGER"), ("e.tx_hash", "VARCHAR"),
             ("e.address", "VARCHAR"), ("b.timestamp_ts", "BIGINT")]
    exprs += [(f'e."{c}"', types.get(c, "")) for c in src.columns]
    cols = fetch_columns(
        con, exprs,
        f"FROM {src.table} e LEFT JOIN (SELECT chain_id, number, timestamp_ts FROM raw.blocks WHERE "
        f"chain_id = ? AND number BETWEEN ? AND ?) b "
        f"ON b.chain_id = e.chain_id AND b.number = e.block_number "
        f"WHERE e.chain_id = ? AND e.source = ? AND e.role = ? AND e.block_number BETWEEN ? AND ? "
        f"ORDER BY e.block_number, e.log_index", [chain_id, a, b, chain_id, source, src.role, a, b])
    blocks, logs, txs, addrs, stamps = cols[:5]
    if None in stamps:
        i = stamps.index(None)
        raise MissingData(f"{src.table}: block {blocks[i]} (log index {logs[i]}, tx {txs[i]}) is not in "
                          f"raw.blocks; re-run `deficit ingest` over that range")
    names, n = src.columns, len(blocks)
    # column at a time, through map (no per-event Python frame): the same objects as a loop
    if names:
        args = [dict(zip(names, vals, strict=True)) for vals in zip(*cols[5:], strict=True)]
    else:
        args = [{} for _ in range(n)]
    refs = map(EventRef, blocks, logs, txs, stamps)
    events = map(ProtocolEvent, repeat(src.name, n), repeat(src.signature, n), addrs, repeat(src.role, n),
                 args, refs)
    out.extend(zip(zip(blocks, logs, strict=True), events, strict=True))


def protocol_events(con: duckdb.DuckDBPyConnection, adapter: ProtocolAdapter[Any], *, dataset: str,
                    chain_id: int, source: str, from_block: int = 0, to_block: int = 2**63 - 1,
                    slice_blocks: int = SLICE_BLOCKS) -> Iterator[ProtocolEvent]:
    """Every stored event of deployment ``source`` that ``adapter`` applies, blocks
    ``[from_block, to_block]``, in ``(block_number, log_index)`` order, read lazily one slice of
    ``slice_blocks`` blocks at a time (see the module docstring)."""
    if slice_blocks < 1:
        raise ValueError(f"slice_blocks must be >= 1, not {slice_blocks}")
    all_srcs = event_sources(adapter, dataset)
    types = _column_types(con, sorted({s.table for s in all_srcs}))
    # a table never ingested has no such logs (coverage is checked by the caller)
    srcs = [s for s in all_srcs if s.table in types]
    if not srcs:
        return
    spans = _bounds(con, srcs, chain_id, source, from_block, to_block)
    live = [(s, span) for s, span in zip(srcs, spans, strict=True) if span is not None]
    if not live:
        return
    a, last = min(sp[0] for _, sp in live), max(sp[1] for _, sp in live)
    while a <= last:
        b = min(last, a + slice_blocks - 1)
        batch: list[tuple[tuple[int, int], ProtocolEvent]] = []
        read = 0
        for s, (first, end) in live:
            if first <= b and a <= end:
                _slice(con, s, types[s.table], chain_id, source, a, b, batch)
                read += 1
        if read > 1:  # one table's slice is already in order
            batch.sort(key=_first)  # concatenated sorted runs: a linear merge for timsort
        yield from map(_second, batch)
        del batch
        a = b + 1


class EventStream:
    """:func:`protocol_events` as a re-iterable: each iteration reads the warehouse afresh, one
    slice at a time (the connection must stay open while it is iterated)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, adapter: ProtocolAdapter[Any], *, dataset: str,
                 chain_id: int, source: str, from_block: int = 0, to_block: int = 2**63 - 1,
                 slice_blocks: int = SLICE_BLOCKS):
        self._con, self._adapter = con, adapter
        self._kw: dict[str, Any] = dict(dataset=dataset, chain_id=chain_id, source=source,
                                        from_block=from_block, to_block=to_block, slice_blocks=slice_blocks)

    def __iter__(self) -> Iterator[ProtocolEvent]:
        return protocol_events(self._con, self._adapter, **self._kw)


_first = itemgetter(0)



_second = itemgetter(1)
