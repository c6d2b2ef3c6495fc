"""Row sinks (backtest.sink) and the writer streaming them (backtest.outputs.write_run): exact
values back, the declared order (a stable sort), spilling to an anonymous file that leaves nothing
behind, and the single all-or-nothing transaction."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import duckdb
import pytest

from backtest.outputs import write_run
from backtest.sink import RowSink
from ingest.schema import Column, Table
from ingest.warehouse import Warehouse

T = Table("bt", "sink_test", "rows of the sink tests", (
    Column("run_id", "VARCHAR", "run", False),
    Column("chain_id", "UBIGINT", "chain", False),
    Column("block_number", "UBIGINT", "block", False),
    Column("reserve", "VARCHAR", "reserve", False),
    Column("amount_raw", "HUGEINT", "signed 128-bit"),
    Column("health_wad", "UHUGEINT", "unsigned 128-bit"),
    Column("flag", "BOOLEAN", "a flag", False),
    Column("tags", "VARCHAR[]", "a list"),
    Column("usd_f64", "DOUBLE", "a float"),
), "tests", ("run_id", "reserve", "block_number"))

RUN = "bt-sink"


def _rows(n: int, seed: int = 7) -> list[tuple[Any, ...]]:
    rnd = random.Random(seed)
    edges = [0, -1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**127 - 1, -(2**127), None]
    out = []
    for i in range(n):
        amount = edges[i] if i < len(edges) else rnd.randrange(-(2**100), 2**100)
        bits = rnd.choice((8, 64, 127))
        health = None if i % 11 == 3 else (2**128 - 1 if i % 13 == 5 else rnd.getrandbits(bits))
        out.append((RUN, 1, 100 + i // 5, f"0x{rnd.randrange(4):040x}", amount, health, i % 3 == 0,
                    None if i % 7 == 1 else [f"t{i % 4}", "x"], None if i % 9 == 2 else rnd.random() * 1e6))
    return out


def _dump(wh: Warehouse, run_id: str = RUN) -> list[tuple[Any, ...]]:
    """The table in physical order (rowid): what "byte-identical" means beyond ORDER BY ALL."""
    return wh.con.execute(f"SELECT * FROM {T.fqn} WHERE run_id = ? ORDER BY rowid", [run_id]).fetchall()


@pytest.mark.parametrize("batch_rows,memory_bytes", [(16_384, 32 * 2**20), (7, 0), (50, 2_000)])
def test_rows_read_back_exactly_in_memory_and_spilled(tmp_path: Path, batch_rows: int,
                                                      memory_bytes: int) -> None:
    rows = _rows(300)
    sink = RowSink(T, batch_rows=batch_rows, memory_bytes=memory_bytes, spill_dir=tmp_path)
    for r in rows[:100]:
        sink.append(r)
    assert list(sink) == rows[:100]  # reading mid-run flushes; appending after a read is fine
    sink.extend(rows[100:])
    assert len(sink) == 300 and sink == rows and sink[-1] == rows[-1] and sink[:2] == rows[:2]
    assert (sink.spilled_bytes > 0) == (memory_bytes < 32 * 2**20)
    assert list(tmp_path.iterdir()) == []  # the spill file has no name: nothing to leave behind
    sink.close()
    with pytest.raises(ValueError, match="closed"):
        list(sink)


def test_order_by_is_a_stable_sort_like_python_sorted(tmp_path: Path) -> None:
    rows = _rows(500)
    rnd = random.Random(3)
    rnd.shuffle(rows)  # blocks out of order, many ties on (reserve, block_number)
    for memory in (32 * 2**20, 0):
        sink = RowSink(T, order_by=("reserve", "block_number"), batch_rows=64, memory_bytes=memory,
                       spill_dir=tmp_path)
        sink.extend(rows)
        assert list(sink) == sorted(rows, key=lambda r: (r[3], r[2]))
    with pytest.raises(ValueError, match="not declared"):
        RowSink(T, order_by=("nope",))
    with pytest.raises(ValueError, match="HUGEINT"):
        RowSink(T, order_by=("amount_raw",))


def test_write_run_streams_sinks_into_the_same_table_as_lists(tmp_path: Path) -> None:
    rows = _rows(2_000)
    rnd = random.Random(5)
    rnd.shuffle(rows)
    key = sorted(rows, key=lambda r: (r[3], r[2]))
    dumps = []
    for kind in ("list", "sink", "spilled"):
        if kind == "list":
            data: Any = key
        else:
            data = RowSink(T, order_by=("reserve", "block_number"), batch_rows=100,
                           memory_bytes=0 if kind == "spilled" else 32 * 2**20)
            data.extend(rows)
        with Warehouse(tmp_path / f"{kind}.duckdb") as wh:
            write_run(wh, RUN, {T: data})
            write_run(wh, RUN, {T: data})  # not consumed; a re-run replaces
            dumps.append(_dump(wh))
    assert dumps[0] == dumps[1] == dumps[2]
    assert len(dumps[0]) == 2_000 and dumps[0][0][4] is not None


def test_a_failing_sink_leaves_the_previous_rows(tmp_path: Path) -> None:
    rows = _rows(50)
    with Warehouse(tmp_path / "w.duckdb") as wh:
        write_run(wh, RUN, {T: rows})
        before = _dump(wh)
        bad = RowSink(T, batch_rows=8, memory_bytes=0)
        bad.extend(rows)
        bad.append((RUN, 1, 999, "0x" + "0" * 40, 1, -1, True, None, None))  # UHUGEINT < 0
        with pytest.raises(duckdb.Error):
            write_run(wh, RUN, {T: bad})
        assert _dump(wh) == before  # all or nothing
    with pytest.raises(ValueError, match=r"bt.sink_test: row has 2 values, the table declares 9"):
        s = RowSink(T)
        s.append((RUN, 1))
        s.flush()
    with pytest.raises(ValueError, match=r"bt.sink_test.chain_id \(UBIGINT\)"):
        s = RowSink(T)
        s.append((RUN, -1, 1, "0x", 1, 1, True, None, None))
        s.flush()


@pytest.mark.parametrize(("col", "value"), [
    ("chain_id", 1.5), ("block_number", 7.0), ("amount_raw", 2.5), ("amount_raw", float(2**70)),
    ("health_wad", 0.5), ("amount_raw", True), ("block_number", False)])
def test_a_non_integer_in_an_integer_column_is_refused_not_truncated(tmp_path: Path, col: str,
                                                                     value: Any) -> None:
    """Arrow's conversion of a Python float to an integer type truncates without a word (1.5 -> 1),
    and the 128-bit columns' text fallback did ``str(int(v))``: a metric handing a float, a bool or
    a float beyond 2**53 (its low digits already lost) to an integer column was written as a
    plausible integer. Such a value is a ValueError naming the column, in memory and spilled."""
    names = T.column_names()
    row = list(_rows(1)[0])
    row[names.index(col)] = value
    for batch_rows in (1, 16):
        s = RowSink(T, batch_rows=batch_rows, memory_bytes=0)
        with pytest.raises(ValueError, match=rf"bt.sink_test.{col} "):
            s.extend([tuple(row)] * 3)
            s.flush()
    with Warehouse(tmp_path / "w.duckdb") as wh, pytest.raises(ValueError, match=rf"bt.sink_test.{col} "):
        write_run(wh, RUN, {T: [tuple(row)]})
