"""bt lineage: rewriting a run (same run id) leaves no row of the previous one in any bt table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import backtest.metrics.fidelity as fidelity
from backtest.metrics.finality import REORGS
from backtest.outputs import LIQUIDATIONS, RUNS, SUMMARIES, write_run
from ingest.warehouse import Warehouse


def _row(table: Any, **given: Any) -> tuple[Any, ...]:
    out: list[Any] = []
    for c in table.columns:
        if c.name in given:
            out.append(given[c.name])
        elif c.type == "BOOLEAN":
            out.append(False)
        elif c.type == "VARCHAR":
            out.append("x")
        elif c.type == "VARCHAR[]":
            out.append([])
        elif c.type == "DOUBLE":
            out.append(0.0)
        else:
            out.append(0)
    return tuple(out)


def _count(wh: Warehouse, table: str, run_id: str) -> int:
    return int(wh.con.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", [run_id]).fetchall()[0][0])


def test_a_rewritten_run_keeps_no_rows_of_the_metrics_it_no_longer_computes(tmp_path: Path) -> None:
    """`deficit run a.toml --run-id X` (metrics bad_debt, fidelity), then `deficit run b.toml
    --run-id X` (bad_debt only): bt.runs said X computed bad_debt under b's scenario hash, while
    bt.fidelity still held a's 115 rows for X (found on the bundled sample), read by anyone
    joining on run_id; bt.reorg_exposure, computed after the first run for its window, stayed too.
    Writing a run (its bt.runs row) now deletes the run id's rows in every bt table."""
    other = "r-other"
    with Warehouse(str(tmp_path / "w.duckdb")) as wh:
        write_run(wh, "X", {
            RUNS: [_row(RUNS, run_id="X", scenario_sha256="a", metrics=["fidelity"])],
            SUMMARIES: [_row(SUMMARIES, run_id="X", metric="fidelity", name="recall", value_text="1")],
            fidelity.FIDELITY: [_row(fidelity.FIDELITY, run_id="X", block_number=b) for b in range(3)],
        })
        write_run(wh, other, {RUNS: [_row(RUNS, run_id=other)],
                              fidelity.FIDELITY: [_row(fidelity.FIDELITY, run_id=other)]})
        write_run(wh, "X", {REORGS: [_row(REORGS, run_id="X")]})  # post-run rows: other tables kept
        assert _count(wh, "bt.fidelity", "X") == 3 and _count(wh, "bt.reorg_exposure", "X") == 1
        write_run(wh, "X", {
            RUNS: [_row(RUNS, run_id="X", scenario_sha256="b", metrics=[])],
            SUMMARIES: [], LIQUIDATIONS: [],
        })
        assert wh.con.execute("SELECT scenario_sha256 FROM bt.runs WHERE run_id = 'X'").fetchall() == [("b",)]
        assert _count(wh, "bt.fidelity", "X") == 0
        assert _count(wh, "bt.reorg_exposure", "X") == 0
        assert _count(wh, "bt.summaries", "X") == 0
        # another run's rows are untouched
        assert _count(wh, "bt.fidelity", other) == 1 and _count(wh, "bt.runs", other) == 1
