"""The committed sample (``data/sample.duckdb``): what it claims to hold, checked on its rows.

* provenance and bot parameters are recorded (``meta.sample``);
* the ETH/USD rounds obey the real feed rules (0.5 % deviation, 3,600 s heartbeat) on the
  bundled Binance path, and lag it (each answer is a mid price of the minute before its block);
* blocks are 12 s apart; the reference prices are the same path;
* every ``LiquidationCall`` on the chain is a bot decision and every successful bot decision is
  a ``LiquidationCall`` in its block (the ``(user, block)`` set the fidelity test compares);
* each bot quote equals the protocol adapter's ``liquidate`` outcome on the state rebuilt from
  the ingested events at the quoted block (so the backtest can reproduce the bots exactly).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import duckdb
import pytest

from backtest.feed import protocol_events
from ingest.demo import load_mid_prices
from ingest.sample import BLOCK_S, GENESIS_TS, SAMPLE_DB, WINDOW_END_TS
from ingest.sample_bots import MAX_UINT256, BotParams
from protocols.registry import get_adapter

pytestmark = pytest.mark.skipif(not SAMPLE_DB.exists(), reason="data/sample.duckdb not built")


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect(str(SAMPLE_DB), read_only=True)
    try:
        yield c
    finally:
        c.close()


def _meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("SELECT key, value FROM meta.sample").fetchall())


def test_provenance_and_bot_parameters_recorded(con: duckdb.DuckDBPyConnection) -> None:
    meta = _meta(con)
    for key in ("seed", "code_version", "anvil_version", "aave_core_v3_npm", "aave_core_v3_commit",
                "deployments_toml", "price_file", "pool", "oracle"):
        assert meta.get(key), key
    assert "anvil" in meta["anvil_version"] and meta["aave_core_v3_npm"] == "1.19.3"
    assert {k: v for k, v in meta.items() if k in BotParams().as_meta()} == BotParams().as_meta()
    runs = {r[0] for r in con.execute("SELECT DISTINCT run_id FROM raw.blocks UNION "
                                      "SELECT DISTINCT run_id FROM raw.reference_prices").fetchall()}
    assert runs == {f"sample-s{meta['seed']}-ingest", f"sample-s{meta['seed']}-prices"}


def test_blocks_every_12_seconds_through_the_day(con: duckdb.DuckDBPyConnection) -> None:
    n, lo, hi, bad = con.execute(
        "SELECT count(*), min(number), max(number), count(*) FILTER (WHERE timestamp_ts <> ? + ? * number) "
        "FROM raw.blocks", [GENESIS_TS, BLOCK_S]).fetchone()
    assert (lo, bad) == (0, 0) and n == hi + 1
    assert GENESIS_TS + BLOCK_S * hi < WINDOW_END_TS <= GENESIS_TS + BLOCK_S * (hi + 1)
    nulls = con.execute("SELECT count(*) FROM raw.blocks WHERE base_fee_per_gas_wei IS NULL").fetchone()
    assert nulls == (0,)


def test_eth_usd_rounds_follow_the_real_path_under_the_feed_rules(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute("SELECT block_timestamp_ts, answer FROM raw.oracle_rounds WHERE feed_name = "
                       "'ETH / USD' ORDER BY block_number, log_index").fetchall()
    assert len(rows) > 300
    mids = load_mid_prices(start=GENESIS_TS - 3600, end=WINDOW_END_TS)
    exact = {int((p * Decimal(10**8)).to_integral_value()): ts for ts, p in mids}
    deploy_end = rows[1][0]  # the first round after deployment may have waited for it
    for (t0, a0), (t1, a1) in zip(rows, rows[1:], strict=False):
        assert a1 in exact, f"answer {a1} at {t1} is not a mid price of the path"
        if t1 > deploy_end:  # published in the first block at or after the minute it was decided
            assert 0 <= t1 - exact[a1] < BLOCK_S, (t1, exact[a1])
            moved = abs(a1 - a0) * 10_000 > a0 * 50
            assert moved or t1 - t0 >= 3600 - BLOCK_S, f"round at {t1}: no 0.5 % move, no heartbeat"
    low = min(a for _, a in rows)
    assert low < 0.75 * rows[0][1], "the crash: ETH/USD falls by more than 25 %"
    ref = con.execute("SELECT count(*), min(ts_us), max(ts_us) FROM raw.reference_prices WHERE pair = "
                      "'ETH/USDT' AND unit = 'USDT'").fetchone()
    assert ref[0] == 4320


def _decisions(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "SELECT state_block, exec_block, \"user\", collateral, debt, debt_repaid_raw, "
        "collateral_to_liquidator_raw, protocol_fee_raw, status FROM meta.sample_bot_decisions "
        "WHERE action = 'liquidate' ORDER BY state_block, \"user\"").fetchall()


def test_observed_liquidations_are_exactly_the_bots_decisions(con: duckdb.DuckDBPyConnection) -> None:
    observed = set(con.execute('SELECT "user", block_number FROM raw.aave_v3_liquidation_call').fetchall())
    ok = {(u, e) for _, e, u, *_, status in _decisions(con) if status == "ok"}
    assert observed and observed == ok
    skipped = con.execute("SELECT count(DISTINCT \"user\") FROM meta.sample_bot_decisions WHERE action = "
                          "'skip_unprofitable'").fetchone()[0]
    assert skipped > 0, "some positions are too small to liquidate profitably"


def test_bot_quotes_equal_the_adapter_on_the_rebuilt_state(con: duckdb.DuckDBPyConnection) -> None:
    meta = _meta(con)
    adapter = get_adapter("aave_v3")
    state = adapter.new_state(pool=meta["pool"])
    feeds = {meta[f"reserve.{s}"]: meta[f"feed.{s}"] for s in ("WETH", "USDC", "DAI")}
    rounds = con.execute("SELECT block_number, feed, answer FROM raw.oracle_rounds ORDER BY block_number, "
                         "log_index").fetchall()
    stamps = dict(con.execute("SELECT number, timestamp_ts FROM raw.blocks").fetchall())
    decisions = _decisions(con)
    assert len(decisions) > 20
    events = protocol_events(con, adapter, dataset="aave_v3", chain_id=int(meta["chain_id"]),
                             source=meta["deployment"])
    pending = next(events, None)
    ri = 0
    answer: dict[str, int] = {}
    for state_block, _, user, coll, debt, repaid, to_liq, fee, _ in decisions:
        while pending is not None and pending.ref.block_number <= state_block:
            adapter.apply(state, pending)
            pending = next(events, None)
        while ri < len(rounds) and rounds[ri][0] <= state_block:
            answer[rounds[ri][1]] = int(rounds[ri][2])
            ri += 1
        prices = {asset: answer[feed] for asset, feed in feeds.items()}
        out = adapter.liquidate(state, user, coll, debt, MAX_UINT256, prices, stamps[state_block])
        assert out.ok, (user, state_block, out.revert_reason)
        assert (out.debt_repaid, out.collateral_seized, out.protocol_fee) == (repaid, to_liq, fee), \
            f"user {user}, block {state_block}, pair {coll}/{debt}"


def test_base_fee_follows_the_price_path_after_the_deployment(con: duckdb.DuckDBPyConnection) -> None:
    """data/sample/README.md: every block with transactions after the market's deployment has the
    base fee of :func:`ingest.sample.base_fee_wei` on the Binance path; the deployment's blocks
    (before the first account opens) keep anvil's own."""
    from ingest.sample import base_fee_wei

    rows = load_mid_prices(start=GENESIS_TS - 3600, end=WINDOW_END_TS)
    first = con.execute("SELECT min(open_block) FROM meta.sample_accounts").fetchone()[0]
    blocks = con.execute("SELECT number, timestamp_ts, base_fee_per_gas_wei FROM raw.blocks "
                         "WHERE tx_count > 0 "
                         "ORDER BY number").fetchall()
    after = [(n, int(fee)) for n, _, fee in blocks if n >= first]
    assert len(after) > 500
    assert [(n, base_fee_wei(rows, GENESIS_TS + BLOCK_S * n)) for n, _ in after] == after
    assert all(int(fee) <= 10**9 for n, _, fee in blocks if n < first)


def test_sample_accounts_record_every_opening_supply_and_borrow(con: duckdb.DuckDBPyConnection) -> None:
    """meta.sample_accounts says what each account opened: its rows equal the Supply and Borrow
    events of the account's opening block, for every reserve. (The liquidity provider's 50 M DAI
    had no column and read as nothing supplied.)"""
    meta = _meta(con)
    sym = {meta[f"reserve.{s}"]: s.lower() for s in ("WETH", "USDC", "DAI")}
    cols = {c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE schema_name = 'meta' "
                                      "AND table_name = 'sample_accounts'").fetchall()}
    for kind, table in (("supplied", "raw.aave_v3_supply"), ("borrowed", "raw.aave_v3_borrow")):
        events = {(u, sym[r], int(a)) for u, r, a in con.execute(
            f'SELECT e.on_behalf_of, e.reserve, e.amount::HUGEINT FROM {table} e JOIN meta.sample_accounts s '
            f'ON s."user" = e.on_behalf_of AND s.open_block = e.block_number').fetchall()}
        assert len(events) > 100
        missing = {f"{s}_{kind}_raw" for _, s, _ in events} - cols
        assert not missing, f"meta.sample_accounts has no column for {sorted(missing)}"
        recorded: set[tuple[str, str, int]] = set()
        for s in sorted({s for _, s, _ in events}):
            recorded |= {(u, s, int(a)) for u, a in con.execute(
                f'SELECT "user", {s}_{kind}_raw::HUGEINT FROM meta.sample_accounts WHERE {s}_{kind}_raw > 0'
            ).fetchall()}
        assert recorded == events
