"""The analysts' views on hand-made bt rows (no chain needed): every row can be traced back to the
table row it comes from."""

from __future__ import annotations

import json
from typing import Any

import duckdb

import backtest.outputs as outputs
from backtest.views import ensure_views

USER = "0x" + "11" * 20
WETH = "0x" + "c0" * 20
USDC = "0x" + "a0" * 20
TX = "0x" + "ab" * 32


def _liq(log_index: int | None, tx: str | None, repaid: int) -> tuple[Any, ...]:
    observed = log_index is not None
    values = {"run_id": "r1", "chain_id": 1, "block_number": 100, "log_index": log_index, "tx_hash": tx,
              "block_ts": 1_600_000_000, "observed": observed, "committed": True, "user": USER,
              "liquidator": "0x" + "22" * 20, "collateral_asset": WETH, "debt_asset": USDC,
              "debt_to_cover_raw": str(repaid), "debt_repaid_raw": repaid, "collateral_seized_raw": 1,
              "protocol_fee_raw": 0, "debt_repaid_value": repaid * 100, "collateral_seized_value": 1,
              "protocol_fee_value": 0, "bonus_value": 1, "bad_debt_value": 0, "gas_cost_value": 0,
              "slippage_value": 0, "flash_fee_value": 0, "profit_value": 0, "bonus_base_f64": 1e-8,
              "seq": repaid}  # unique in these tests
    return tuple(values.get(c) for c in outputs.LIQUIDATIONS.column_names())


def test_liquidations_with_delay_keeps_the_log_index() -> None:
    """Two on-chain liquidations of one account in one transaction (a bot liquidating two debts of
    the same user in one call bundle) share run, block, user and tx hash: the view left out the
    log index, so its rows could not be told apart nor joined back to bt.liquidations (a join on
    the view's columns matched each row twice: 4 rows for 2 liquidations)."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA bt")
    con.execute(outputs.RUNS.ddl())
    con.execute(outputs.LIQUIDATIONS.ddl())
    con.execute(
        "INSERT INTO bt.runs VALUES ('r1', 's', 'ab', NULL, 'historical', 1, 'USD', 8, 1, 100, NULL, NULL, "
        "[], [], 'test', ?, 0, 0, 0, 0, 'ok')", [json.dumps({})])
    rows = [_liq(7, TX, 5), _liq(12, TX, 9), _liq(None, None, 3)]
    ph = ", ".join("?" for _ in outputs.LIQUIDATIONS.columns)
    con.executemany(f"INSERT INTO bt.liquidations VALUES ({ph})", [list(r) for r in rows])
    ensure_views(con)
    cols = [d[0] for d in con.execute("SELECT * FROM bt.liquidations_with_delay").description]
    assert "log_index" in cols, cols
    got = con.execute(
        "SELECT v.log_index, l.debt_repaid_raw FROM bt.liquidations_with_delay v JOIN bt.liquidations l "
        "ON l.run_id = v.run_id AND l.block_number = v.block_number AND l.\"user\" = v.\"user\" "
        "AND l.log_index IS NOT DISTINCT FROM v.log_index ORDER BY v.log_index NULLS LAST").fetchall()
    assert got == [(7, 5), (12, 9), (None, 3)], got
    con.close()


def test_run_overview_says_simulated_liquidations_of_a_historical_run_are_predictions() -> None:
    """A historical run has its on-chain liquidations (observed) and the model's predictions of
    them (simulated, committed = false): 115 and 115 in the demo, the same liquidations twice. The
    overview called the second 'liquidator-model liquidations', which a reader adds to the first
    (230 liquidations)."""
    from backtest.views import RUN_OVERVIEW

    doc = next(c.doc for c in RUN_OVERVIEW.columns if c.name == "liquidations_simulated")
    assert "prediction" in doc and "historical" in doc, doc
