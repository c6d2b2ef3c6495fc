"""bt.daily_bad_debt_by_reserve on hand-made rows (no chain needed): the days it covers, the
account state it takes for each day."""

from __future__ import annotations

import json

import duckdb

import backtest.metrics.bad_debt as bad_debt
import backtest.outputs as outputs
from backtest.views import ensure_views

USDC = "0x" + "a0" * 20
ALICE = "0x" + "11" * 20
DAY = 86_400
T = 20_000 * DAY  # midnight UTC


def _run(con: duckdb.DuckDBPyConnection, end_ts: int | None) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS bt")
    con.execute(outputs.RUNS.ddl())
    con.execute(outputs.SUMMARIES.ddl())
    con.execute(
        "INSERT INTO bt.runs VALUES ('r1', 's', 'ab', NULL, 'historical', 1, 'USD', 8, 1, 100, NULL, NULL, "
        "[], ['bad_debt'], 'test', ?, 0, 0, 0, 0, 'ok')", [json.dumps({"market": {"dataset": "aave_v3"}})])
    if end_ts is not None:
        con.execute("INSERT INTO bt.summaries VALUES ('r1', 1, 100, 'bad_debt', 'end_block_ts', ?, ?)",
                    [str(end_ts), float(end_ts)])
    con.execute(bad_debt.ACCOUNTS.ddl())
    con.execute("INSERT INTO bt.bad_debt_accounts VALUES "
                "('r1', 1, 10, ?, ?, ?, 1, 1, ?, NULL, 0, 1, NULL, true, 50.0)",
                [T + 3_600, ALICE, USDC, 50 * 10**8])


def test_every_day_up_to_the_window_end() -> None:
    """Alice's bad debt (50 USD) appears at 01:00 on day 0 and never changes; the window ends at
    noon on day 3. Rows are written on change only, so the view spanned the rows' days alone: day
    0, and no bad debt on days 1..3 (a daily series that dropped to nothing). Now days 0..3."""
    con = duckdb.connect()
    _run(con, T + 3 * DAY + 12 * 3_600)
    ensure_views(con)
    got = con.execute("SELECT CAST(epoch(day) AS BIGINT), reserve, bad_debt_oracle_value, accounts "
                      "FROM bt.daily_bad_debt_by_reserve").fetchall()
    assert got == [(T + d * DAY, USDC, 50 * 10**8, 1) for d in range(4)], got
    con.close()


def test_without_the_window_end_the_rows_days() -> None:
    """A run written before the summary existed: the days of its rows, as before."""
    con = duckdb.connect()
    _run(con, None)
    ensure_views(con)
    assert con.execute("SELECT count(*) FROM bt.daily_bad_debt_by_reserve").fetchall() == [(1,)]
    con.close()
