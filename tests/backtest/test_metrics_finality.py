"""Finality: which decisions acted on blocks that were not final, under the block-depth, the
seconds-depth and the L2-soft models, driven through the hooks with hand-built inputs."""

from __future__ import annotations

import pytest

from backtest.metrics.base import Liquidation, MetricError, PriceUpdate
from backtest.metrics.finality import LIQUIDATIONS, Finality

from .metric_market import USDC, WETH, StubView, market, scenario

U1, U2 = "0x" + "1" * 40, "0x" + "2" * 40


def _sim(user: str, block: int, decided: int, value: int, committed: bool = True) -> Liquidation:
    return Liquidation(observed=False, committed=committed, block_number=block, log_index=None, tx_hash=None,
                       timestamp=block * 12, user=user, liquidator="0x" + "00" * 20, collateral_asset=WETH,
                       debt_asset=USDC, debt_to_cover=1, debt_repaid=1, collateral_seized=1, protocol_fee=0,
                       receive_a_token=False, debt_repaid_value=value, collateral_seized_value=0,
                       protocol_fee_value=0, decided_block=decided)


def _oracle(happened: int, consumed: int) -> PriceUpdate:
    return PriceUpdate("oracle", "0x" + "f1" * 20, (WETH,), 1, 1, 1, 8, True, happened, happened * 12,
                       consumed, 0, consumed * 12, happened * 12)


def _drive(m: Finality) -> StubView:
    """Blocks 1000 (start), 1010, 1100 (not final at ingest), 1200 visited, 12 s apart."""
    view = StubView(market(), scenario(["finality"]), {}, block=1000, ts=12_000)
    m.on_run_start(view)
    view.at(1010, 12_120)
    m.on_price(view, _oracle(1010, 1010))       # consumed in its own block
    view.at(1100, 13_200, final_at_ingest=False)
    m.on_price(view, _oracle(1000, 1100))       # delayed by 100 blocks
    m.on_liquidation(view, _sim(U1, 1100, 1099, 500))   # decided on the block before
    view.at(1200, 14_400)
    m.on_liquidation(view, _sim(U2, 1200, 1010, 700))   # decided on block 1010, 190 blocks earlier
    m.on_liquidation(view, _sim(U2, 1200, 1150, 11, committed=False))  # a prediction
    m.on_run_end(view)
    return view


def test_block_depth_64() -> None:
    m = Finality()
    _drive(m)
    s = m.summary()
    assert s["depth_blocks"] == 64 and s["mode"] == "l1"
    # 1099 > 1100-64 and 1150 > 1200-64 not final; 1010 <= 1200-64 final
    # liquidations that changed the state (U1 at 1100, U2 at 1200) apart from the prediction (U2, 11)
    assert (s["liquidations"], s["liquidations_not_final"]) == (2, 1)
    assert s["liquidated_not_final_value"] == 500 and s["liquidated_not_final_usd"] == 500 / 10**8
    assert s["liquidated_value"] == 1_200
    assert (s["predictions"], s["predictions_not_final"], s["predicted_not_final_value"]) == (1, 1, 11)
    assert s["accounts_changed_not_final"] == 1
    # oracle: 1010 consumed at 1010 (not final), 1000 consumed at 1100 (final)
    assert (s["oracle_updates"], s["oracle_updates_not_final"]) == (2, 1)
    assert s["blocks_visited"] == 4 and s["blocks_not_final_at_ingest"] == 1
    assert s["liquidations_in_blocks_not_final_at_ingest"] == 1
    rows = [dict(zip(LIQUIDATIONS.column_names(), r, strict=True)) for r in m.rows()[LIQUIDATIONS.fqn]]
    assert [(r["block_number"], r["user"], r["decided_block"], r["final_when_acted"]) for r in rows] == [
        (1100, U1, 1099, False), (1200, U2, 1010, True), (1200, U2, 1150, False)]
    assert rows[0]["block_final_at_ingest"] is False and rows[1]["depth_blocks"] == 64


def test_depth_in_seconds_and_l2_soft() -> None:
    # 15 minutes: 1010 (ts 12,120) is final at 1200 (ts 14,400: 2,280 s later); 1099 is not
    # final at 1100 (decided block not visited: the first visited at or after it, 1100, is used)
    m = Finality({"depth_s": 900})
    _drive(m)
    s = m.summary()
    assert s["depth_s"] == 900 and s["depth_blocks"] is None
    assert s["liquidations_not_final"] == 1  # 1099@1100 (the prediction 1150@1200 is counted apart)
    assert s["predictions_not_final"] == 1  # 1150@1200: 1200 is the first visited block >= 1150
    assert s["oracle_updates_not_final"] == 1  # 1000 consumed at 1100: 1,200 s >= 900: final
    soft = Finality({"mode": "l2_soft"})
    _drive(soft)
    assert soft.summary()["liquidations_not_final"] == 0 and soft.summary()["oracle_updates_not_final"] == 0


def test_bad_parameters() -> None:
    with pytest.raises(MetricError, match="mode"):
        Finality({"mode": "l3"})
    with pytest.raises(MetricError, match="not both"):
        Finality({"depth_blocks": 1, "depth_s": 1})
    with pytest.raises(MetricError, match="depth_s"):
        Finality({"depth_s": -5})


def test_depth_in_seconds_oracle_round_age_from_its_own_timestamp() -> None:
    # the round was produced in block 1100 (ts 13,200), which the replay never visited (a delayed
    # answer takes effect later): consumed at 1200 (ts 14,400) it is 1,200 s old, final under a
    # 900 s depth. Its exact timestamp is in the update; the first visited block at or after
    # 1100 is 1200 itself, which would make it 0 s old and not final.
    m = Finality({"depth_s": 900})
    view = StubView(market(), scenario(["finality"]), {}, block=1000, ts=12_000)
    m.on_run_start(view)
    view.at(1200, 14_400)
    m.on_price(view, _oracle(1100, 1200))
    m.on_price(view, _oracle(1150, 1200))  # 600 s old: not final
    s = m.summary()
    assert (s["oracle_updates"], s["oracle_updates_not_final"]) == (2, 1)


def test_l2_soft_rejects_a_depth_it_would_ignore() -> None:
    # l2_soft means depth 0: a depth given with it was silently dropped
    for k in ("depth_blocks", "depth_s"):
        with pytest.raises(MetricError, match="l2_soft"):
            Finality({"mode": "l2_soft", k: 10})


def _row(table, **given):  # type: ignore[no-untyped-def]
    """A row of ``table`` with placeholder values for every non-null column not ``given``."""
    import datetime

    fill = {"VARCHAR": "x", "BOOLEAN": False, "DOUBLE": 0.0, "VARCHAR[]": [],
            "TIMESTAMPTZ": datetime.datetime(2021, 1, 1, tzinfo=datetime.UTC)}
    return tuple(given[c.name] if c.name in given else None if c.nullable else fill.get(c.type, 0)
                 for c in table.columns)


def test_reorg_exposure_counts_what_changed_the_state_not_predictions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # a historical run: the chain's liquidation (observed) at 105 and the model's prediction of it
    # (committed false, it moved nothing) at 104; a reorg replaced 101..110. Only the observed one
    # was liquidated; the prediction counted too (twice the value in 'liquidated')
    from backtest.metrics.finality import REORGS, reorg_exposure
    from backtest.outputs import LIQUIDATIONS as BT_LIQ
    from backtest.outputs import RUNS, write_run
    from ingest.warehouse import REORGS as META_REORGS
    from ingest.warehouse import Warehouse

    with Warehouse(str(tmp_path / "w.duckdb")) as wh:
        write_run(wh, "r1", {
            RUNS: [_row(RUNS, run_id="r1", chain_id=1, from_block=100, to_block=200)],
            BT_LIQ: [_row(BT_LIQ, run_id="r1", chain_id=1, block_number=105, log_index=3, observed=True,
                          committed=True, user=U1, debt_repaid_value=700),
                     _row(BT_LIQ, run_id="r1", chain_id=1, block_number=104, observed=False,
                          committed=False, user=U1, debt_repaid_value=690)]})
        wh.ensure(META_REORGS)
        wh.con.execute("INSERT INTO meta.reorgs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       list(_row(META_REORGS, chain_id=1, run_id="ingest-x", fork_block=100, depth=10,
                                 old_tip_block=110, logs_removed=5)))
        (row,) = reorg_exposure(wh, "r1")
    r = dict(zip(REORGS.column_names(), row, strict=True))
    assert (r["liquidations"], r["liquidated_value"]) == (1, 700)


def test_depth_in_seconds_reads_an_unvisited_decided_block_from_the_block_clock() -> None:
    # through the engine (Aave v3 test market, 12 s blocks): the account is liquidatable from
    # block 1002 on; liquidations wait 10 blocks, one per block (repeat_in_block false): 1012
    # decided on 1002, then 1013 decided on 1003 (10 blocks = 120 s earlier: final under a 100 s
    # depth). 1003 is not a visited block (the next one is the wake-up at 1011): its timestamp
    # was taken from 1011, 24 s before 1013, and the liquidation counted as not final.
    from backtest.api import run_inputs

    from .markets import FROM, inputs
    from .markets import market as v3_market
    from .markets import scenario as v3_scenario

    extra = ("\n[liquidator]\nreaction_delay_blocks = 0\ngas_units = 0\nmin_profit_usd = 0\n"
             "repeat_in_block = false\n[finality]\nwait_blocks = 10\n[metrics]\nnames = [\"finality\"]\n"
             "[metrics.finality]\ndepth_s = 100\n")
    book = v3_market(9500, 10500, [(10**18, 1500 * 10**6)])
    hf_097 = 1500 * 97 * 10**8 // 95  # collateral price putting the account at HF 0.97
    res = run_inputs(v3_scenario(extra=extra, to_block=FROM + 40),
                     inputs(book, [2000 * 10**8, hf_097], to_block=FROM + 40))
    assert [(q.block_number, q.decided_block) for q in res.output.liquidations] == [
        (FROM + 12, FROM + 2), (FROM + 13, FROM + 3)]
    s = res.summary["finality"]
    assert (s["liquidations"], s["liquidations_not_final"]) == (2, 0)


def test_a_block_exactly_depth_deep_is_final() -> None:
    m = Finality({"depth_blocks": 64})
    assert m.is_final(1136, 1200, 0) and not m.is_final(1137, 1200, 0)
    s = Finality({"depth_s": 768})
    assert s.is_final(1136, 1200, 14_400, 14_400 - 768) and not s.is_final(1137, 1200, 14_400, 14_400 - 767)


def test_oracle_updates_consumed_are_answers_a_key_reads_not_source_changes() -> None:
    """Through the engine (the oracle-lag tests' market, 12 s blocks, depth 5 blocks): WETH's
    source switches from FEED_WETH to FEED_NEW at +10 (AssetSourceUpdated); FEED_NEW's last round
    was produced at FIRST - 9; FEED_WETH, which then prices no key, still publishes at +30; USDC's
    feed publishes at +20. The protocol consumed one oracle answer in the window: USDC's at +20,
    in its own block (not final at any depth > 0). The switch is not an answer (FEED_NEW's round
    is 19 blocks old there: final), and FEED_WETH's +30 answer is read by nothing. Both counted as
    oracle updates consumed on non-final blocks: (3, 3)."""
    from dataclasses import replace

    from backtest.api import run_inputs
    from backtest.oracle import Round, SourceChange

    from .metric_market import FIRST, T0, inputs

    new = "0x" + "f3" * 20
    sc = replace(scenario(["finality"], delay=1000), metrics=replace(
        scenario(["finality"]).metrics, params={"finality": {"depth_blocks": 5}}))
    inp = inputs(market(debt_usdc=15_000), [(FIRST + 30, 2_000)], usdc_path=[(FIRST + 20, 99_990_000)])
    inp.initial_rounds = {**inp.initial_rounds,
                          new: Round(new, 2_000 * 10**8, 8, T0 - 100, FIRST - 9, 0, T0 - 100)}
    inp.source_changes = [SourceChange(FIRST + 10, 3, WETH, new)]
    s = run_inputs(sc, inp).summary["finality"]
    assert s["depth_blocks"] == 5
    assert (s["oracle_updates"], s["oracle_updates_not_final"]) == (1, 1)


def test_reorg_exposure_bt_rows_are_rows_of_the_replaced_blocks_not_window_figures(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A reorg replaced 151..200, the window's last 50 blocks (where reorgs happen: the chain's
    head). In it the run has one liquidation (block 160). Its bt.summaries and bt.oracle_lag_feeds
    rows carry block_number 200 as the window's last block (figures over the whole window), which
    a reorg anywhere in the window affects alike: bt_rows counted them as rows of the replaced
    blocks (4 instead of 1) whenever the reorg reached the window's end."""
    from backtest.metrics.finality import REORGS, reorg_exposure
    from backtest.metrics.oracle_lag import FEEDS
    from backtest.outputs import LIQUIDATIONS as BT_LIQ
    from backtest.outputs import RUNS, SUMMARIES, write_run
    from ingest.warehouse import REORGS as META_REORGS
    from ingest.warehouse import Warehouse

    with Warehouse(str(tmp_path / "w.duckdb")) as wh:
        write_run(wh, "r1", {
            RUNS: [_row(RUNS, run_id="r1", chain_id=1, from_block=100, to_block=200)],
            BT_LIQ: [_row(BT_LIQ, run_id="r1", chain_id=1, block_number=160, log_index=3, observed=True,
                          committed=True, user=U1, debt_repaid_value=700)],
            SUMMARIES: [_row(SUMMARIES, run_id="r1", chain_id=1, block_number=200, metric="m", name=n)
                        for n in ("a", "b")],
            FEEDS: [_row(FEEDS, run_id="r1", chain_id=1, block_number=200, feed="0x" + "f1" * 20)]})
        wh.ensure(META_REORGS)
        wh.con.execute("INSERT INTO meta.reorgs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       list(_row(META_REORGS, chain_id=1, run_id="ingest-x", fork_block=150, depth=50,
                                 old_tip_block=200, logs_removed=5)))
        (row,) = reorg_exposure(wh, "r1")
    r = dict(zip(REORGS.column_names(), row, strict=True))
    assert (r["liquidations"], r["liquidated_value"], r["bt_rows"]) == (1, 700, 1)
