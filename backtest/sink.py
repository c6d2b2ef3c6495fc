"""Row sinks: a run's ``bt`` rows kept compact while the replay runs.

A full-year replay of an Aave-scale market produces millions of ``bt`` rows (2.5 million in
``bt.bad_debt_accounts`` alone, bench/README.md). Held as Python tuples of exact ints until the
run's single write they cost ~400 bytes a row and, converted all at once at the write, as much
again: most of the replay's peak memory. A :class:`RowSink` holds the rows of one table instead:

* rows are appended as tuples (the declared column order of the table, as before) into a buffer
  of at most ``batch_rows`` rows;
* a full buffer becomes one Arrow record batch (columnar: ~60-100 bytes a row; HUGEINT/UHUGEINT
  as exact decimal text, since Arrow has no 128-bit integer: the same encoding the writer always
  used, cast back by DuckDB with overflow checks);
* batches stay in memory up to ``memory_bytes`` per sink (default 8 MiB, two or three
  batches); past that they are spilled, as Arrow IPC messages, to an anonymous temporary file
  (``tempfile.TemporaryFile``: it has no name in the file system, so the operating system
  reclaims it when the sink is closed or garbage collected, or the process ends, however it
  ends — nothing to clean up, nothing left behind);
* :func:`backtest.outputs.write_run` streams the batches into DuckDB inside the run's single
  transaction (all or nothing, as before).

**Order.** Rows are written in append order, unless the sink was given ``order_by`` (declared
column names): then in that order, ties kept in append order (a stable sort, as Python's
``sorted(rows, key=...)`` over the same columns), done by DuckDB (``ORDER BY <columns>, <append
ordinal>``: it spills to disk if it must). Key columns must sort the same in Python and in DuckDB:
``VARCHAR`` (byte order = code point order), integer types up to ``UBIGINT``, ``BOOLEAN``; keys
must not be NULL.

**Reading back.** A sink is a read-only sequence of tuples (``len``, iteration, indexing,
``==`` against a list or another sink), decoded from the stored batches — so what a test reads is
what the writer writes (HUGEINT columns as exact ``int``, ``DOUBLE`` as ``float``). Iteration
streams batch by batch; indexing materialises the rows (tests and small tables only). Appending
after a read is allowed. A sink can be written any number of times (``write_run`` does not consume
it).
"""

from __future__ import annotations

import os
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any, overload

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ingest.schema import Table

__all__ = ["RowSink", "record_batch", "arrow_schema", "SEQ_COLUMN", "DEFAULT_BATCH_ROWS",
           "DEFAULT_MEMORY_BYTES"]

#: the append ordinal of an ordered sink's rows (a hidden column of its batches, the sort's tiebreak)
SEQ_COLUMN = "_deficit_seq"
#: rows buffered as tuples before they become one Arrow batch
DEFAULT_BATCH_ROWS = 16_384
#: Arrow batches a sink keeps in memory before it spills to its temporary file
DEFAULT_MEMORY_BYTES = 8 * 2**20

_BIG = ("HUGEINT", "UHUGEINT")
#: column types whose order is the same in Python and in DuckDB (allowed in ``order_by``)
#: integer column types below 128 bits (Arrow uint64/int64, narrowed by DuckDB's checked cast)
_INTEGERS = ("UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT", "BIGINT", "INTEGER", "SMALLINT", "TINYINT")
_SORTABLE = ("VARCHAR", "UBIGINT", "BIGINT", "UINTEGER", "INTEGER", "USMALLINT", "SMALLINT", "UTINYINT",
             "TINYINT", "BOOLEAN")


def _arrow_type(type_: str) -> pa.DataType:
    if type_ in _BIG:
        return pa.string()  # exact decimal text, cast by DuckDB (checked)
    if type_ == "VARCHAR[]":
        return pa.list_(pa.string())
    if type_ in ("UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT"):
        return pa.uint64()  # narrowed by DuckDB's checked cast on insert
    if type_ in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT"):
        return pa.int64()
    if type_ == "BOOLEAN":
        return pa.bool_()
    if type_ == "DOUBLE":
        return pa.float64()
    if type_ == "TIMESTAMPTZ":
        return pa.timestamp("us", tz="UTC")
    return pa.string()


def arrow_schema(table: Table, *, seq: bool = False) -> pa.Schema:
    """The Arrow schema rows of ``table`` travel in (plus the append ordinal when ``seq``)."""
    fields = [pa.field(c.name, _arrow_type(c.type)) for c in table.columns]
    if seq:
        fields.append(pa.field(SEQ_COLUMN, pa.uint64()))
    return pa.schema(fields)


def _decimal_text(values: Sequence[Any]) -> pa.Array:
    """Exact integers → decimal text. Values that fit 64 bits go through Arrow's own cast (C speed);
    otherwise ``str(int(v))`` per value (the writer's historical encoding). Anything but an integer
    (or decimal text, or None) is a ``TypeError``: ``int()`` of a float or a bool would write a
    plausible integer (1.5 -> 1, True -> 1, a float beyond 2**53 with its low digits lost)."""
    try:
        arr = pa.array(values)
    except (OverflowError, pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        arr = None  # beyond 64 bits (or mixed): value by value
    if arr is not None and (pa.types.is_integer(arr.type) or pa.types.is_null(arr.type)):
        return pc.cast(arr, pa.string())
    out: list[str | None] = []
    for v in values:
        if v is None:
            out.append(None)
        elif isinstance(v, (int, str)) and not isinstance(v, bool):
            out.append(str(int(v)))
        else:
            raise TypeError(f"expected an integer, got {type(v).__name__} {v!r}")
    return pa.array(out, pa.string())


def _integers(values: Sequence[Any], type_: pa.DataType) -> pa.Array:
    """Python integers → an Arrow integer array of ``type_`` (checked cast: out of range raises).
    Arrow converts a float to an integer type by truncating it without a word (1.5 -> 1), so the
    values are read with their own inferred type first and anything but integers is a TypeError."""
    try:
        arr = pa.array(values)
    except (OverflowError, pa.ArrowInvalid):  # an unsigned value of 2**63 or more: Arrow infers int64
        for v in values:
            if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                raise TypeError(f"expected an integer, got {type(v).__name__} {v!r}") from None
        return pa.array(values, type_)
    if not (pa.types.is_integer(arr.type) or pa.types.is_null(arr.type)):
        raise TypeError(f"expected integers, got {arr.type} values")
    return arr.cast(type_)


def record_batch(table: Table, rows: Sequence[tuple[Any, ...]], *, seq_start: int | None = None
                 ) -> pa.RecordBatch:
    """Rows of ``table`` (tuples in declared column order) → one Arrow record batch; with
    ``seq_start``, the hidden append-ordinal column numbered from it. Raises ``ValueError`` naming
    the table when a row's length or a value does not fit its column's Arrow type."""
    names = table.column_names()
    n = len(names)
    lengths = set(map(len, rows))
    if lengths - {n}:
        bad = next(len(r) for r in rows if len(r) != n)
        raise ValueError(f"{table.fqn}: row has {bad} values, the table declares {n}")
    cols: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [()] * n
    arrays: list[pa.Array] = []
    for c, vals in zip(table.columns, cols, strict=True):
        try:
            if c.type in _BIG:
                arrays.append(_decimal_text(vals))
            elif c.type in _INTEGERS:
                arrays.append(_integers(vals, _arrow_type(c.type)))
            else:
                arrays.append(pa.array(vals, _arrow_type(c.type)))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError) as e:
            raise ValueError(f"{table.fqn}.{c.name} ({c.type}): {e}") from e
    if seq_start is not None:
        arrays.append(pa.array(range(seq_start, seq_start + len(rows)), pa.uint64()))
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(table, seq=seq_start is not None))


def decode(table: Table, batch: pa.RecordBatch) -> Iterator[tuple[Any, ...]]:
    """The rows of a batch as tuples of Python values (HUGEINT/UHUGEINT text → exact ``int``)."""
    cols: list[list[Any]] = []
    for c in table.columns:
        vals = batch.column(c.name).to_pylist()
        if c.type in _BIG:
            vals = [None if v is None else int(v) for v in vals]
        cols.append(vals)
    return zip(*cols, strict=True) if cols else iter(())


class RowSink(Sequence[tuple[Any, ...]]):
    """The rows of one ``bt`` table, buffered in bounded memory (see the module docstring).

    ``order_by``: declared column names the rows are written (and read back) in, ties in append
    order; empty: append order. ``batch_rows``/``memory_bytes``: the tuple buffer and the Arrow
    bytes kept in memory before spilling; ``spill_dir``: where the anonymous spill file lives
    (default: the system temporary directory, ``TMPDIR``)."""

    def __init__(self, table: Table, *, order_by: Iterable[str] = (), batch_rows: int = DEFAULT_BATCH_ROWS,
                 memory_bytes: int = DEFAULT_MEMORY_BYTES,
                 spill_dir: str | os.PathLike[str] | None = None) -> None:
        self.table = table
        self.order_by = tuple(order_by)
        types = {c.name: c.type for c in table.columns}
        for k in self.order_by:
            if k not in types:
                raise ValueError(f"{table.fqn}: order_by column {k!r} is not declared")
            if types[k] not in _SORTABLE:
                raise ValueError(f"{table.fqn}: order_by column {k!r} is {types[k]}; sortable: "
                                 f"{', '.join(_SORTABLE)}")
        if batch_rows < 1:
            raise ValueError("batch_rows must be >= 1")
        self.batch_rows = batch_rows
        self.memory_bytes = memory_bytes
        self.spill_dir = None if spill_dir is None else os.fspath(spill_dir)
        self.schema = arrow_schema(table, seq=bool(self.order_by))
        self._rows: list[tuple[Any, ...]] = []
        self._n = 0  # rows appended
        self._flushed = 0  # rows in batches
        self._batches: list[pa.RecordBatch] = []  # the first batches, in memory
        self._mem = 0
        self._file: IO[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._spilled: list[tuple[int, int]] = []  # (offset, length) of each later batch in _file
        self._end = 0
        self._closed = False

    # ------------------------------------------------------------------ writing
    def append(self, row: tuple[Any, ...]) -> None:
        """Add one row (a tuple in the table's declared column order)."""
        self._rows.append(row)
        self._n += 1
        if len(self._rows) >= self.batch_rows:
            self.flush()

    def extend(self, rows: Iterable[tuple[Any, ...]]) -> None:
        for r in rows:
            self.append(r)

    def flush(self) -> None:
        """Turn the buffered tuples into one Arrow batch (kept in memory or spilled)."""
        if self._closed:
            raise ValueError(f"row sink of {self.table.fqn} is closed")
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        b = record_batch(self.table, rows, seq_start=self._flushed if self.order_by else None)
        self._flushed += len(rows)
        if self._file is None and self._mem + b.nbytes <= self.memory_bytes:
            self._batches.append(b)
            self._mem += b.nbytes
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="deficit-rows-", suffix=".arrows", dir=self.spill_dir,
                                                buffering=0)
            # closed (and so reclaimed) when the sink is garbage collected, without a ResourceWarning
            self._finalizer = weakref.finalize(self, self._file.close)
        data = memoryview(b.serialize())
        done = 0
        while done < len(data):  # unbuffered (visible to pread at once); a raw write may be partial
            done += self._file.write(data[done:]) or 0
        self._spilled.append((self._end, len(data)))
        self._end += len(data)

    def close(self) -> None:
        """Drop the batches and the spill file (also done when the sink is garbage collected)."""
        self._closed = True
        self._rows, self._batches, self._spilled = [], [], []
        if self._file is not None:
            assert self._finalizer is not None
            self._finalizer()  # closes the file once
            self._file = None

    @property
    def spilled_bytes(self) -> int:
        """Bytes of Arrow batches in the spill file (0: everything is in memory)."""
        return self._end

    # ------------------------------------------------------------------ reading
    def batches(self) -> Iterator[pa.RecordBatch]:
        """Every row so far as Arrow batches of :attr:`schema`, in append order (buffered rows are
        flushed first). HUGEINT/UHUGEINT columns are decimal text; ordered sinks carry the
        hidden append-ordinal column."""
        self.flush()
        batches, spilled, f = list(self._batches), list(self._spilled), self._file
        yield from batches
        for off, size in spilled:
            assert f is not None
            data = os.pread(f.fileno(), size, off)
            if len(data) != size:
                raise OSError(f"row sink of {self.table.fqn}: short read from its spill file")
            yield pa.ipc.read_record_batch(pa.py_buffer(data), self.schema)

    def reader(self) -> pa.RecordBatchReader:
        """:meth:`batches` as a record batch reader (what DuckDB scans)."""
        return pa.RecordBatchReader.from_batches(self.schema, self.batches())

    def select_sql(self, source: str, columns: Sequence[str]) -> str:
        """``SELECT <columns> FROM <source>`` in the sink's order (``ORDER BY`` over the key
        columns, then the append ordinal) — the one place the order is defined, used both to read
        the rows back and by the writer."""
        sql = f"SELECT {', '.join(columns)} FROM {source}"
        if self.order_by:
            sql += " ORDER BY " + ", ".join(f'"{k}"' for k in (*self.order_by, SEQ_COLUMN))
        return sql

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        if not self.order_by:
            for b in self.batches():
                yield from decode(self.table, b)
            return
        con = duckdb.connect()
        try:
            con.execute("SET threads = 1")  # reading back for tests: small, and no thread pool to spin up
            con.register("_rows", self.reader())
            rel = con.sql(self.select_sql("_rows", [f'"{c}"' for c in self.table.column_names()]))
            for b in rel.to_arrow_reader(self.batch_rows):
                yield from decode(self.table, b)
        finally:
            con.close()

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> tuple[Any, ...]: ...

    @overload
    def __getitem__(self, i: slice) -> list[tuple[Any, ...]]: ...

    def __getitem__(self, i: int | slice) -> tuple[Any, ...] | list[tuple[Any, ...]]:
        return list(self)[i]  # materialises: tests and small tables only

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (RowSink, list, tuple)):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        return self._n > 0

    def __repr__(self) -> str:
        where = f", {self._end:,} bytes spilled" if self._end else ""
        order = f", order_by={self.order_by}" if self.order_by else ""
        return f"RowSink({self.table.fqn}, {self._n:,} rows{order}{where})"
