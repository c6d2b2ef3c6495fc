"""paths: bt.health_snapshots against hand-worked figures (the end snapshot is the health at the
window's last block, not an evaluation the at-risk index left stale), and the summary's count of
accounts below HF 1 (exact, not through a float)."""

from __future__ import annotations

from dataclasses import replace

from backtest.api import run_inputs
from backtest.metrics.base import AccountEval
from backtest.metrics.paths import HEALTH_SNAPSHOTS, Paths

from .metric_market import BORROWER, StubView, health, inputs, market, scenario

WAD = 10**18


def _rows(r, phase: str) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    cols = HEALTH_SNAPSHOTS.column_names()
    return [dict(zip(cols, x, strict=True)) for x in r.output.tables[HEALTH_SNAPSHOTS] if x[3] == phase]


def test_end_snapshot_is_the_health_at_the_window_end() -> None:
    """The borrower (10 WETH at LT 82.5 %, 5,000 USDC of debt) has HF 3.3 at WETH 2,000. WETH
    then falls to 1,700: HF 2.805. The move stays inside the at-risk index's trigger (half the
    slack split over the account's two price keys: ~1,652 USD), so the engine does not
    re-evaluate the account, and the end snapshot used to copy its last evaluation: HF 3.3 at the
    window end, after the fall. Same for the reference HF (the reference falls to 1,200: 1.98),
    which the engine does not even track for this metric."""
    sc = scenario(["paths"], delay=1000, reference=True)
    r = run_inputs(sc, inputs(market(debt_usdc=5_000), [(1_010, 1_700)],
                              refs=[(1_020, 1_200)]))
    start, end = _rows(r, "start"), _rows(r, "end")
    assert [(x["user"], x["health_factor_wad"], x["health_factor_reference_wad"]) for x in start] == [
        (BORROWER, str(33 * WAD // 10), str(33 * WAD // 10))]
    assert [(x["user"], x["health_factor_wad"], x["health_factor_reference_wad"]) for x in end] == [
        (BORROWER, str(2805 * WAD // 1000), str(198 * WAD // 100))]
    assert end[0]["collateral_value"] == 17_000 * 10**8
    assert end[0]["health_factor_f64"] == 2.805


def test_accounts_below_1_is_exact() -> None:
    """An HF one wei below 1 (liquidatable: Aave's test is HF < 1e18) is 1.0 as a float: the
    summary compared the float and did not count it."""
    sc = scenario(["paths"])
    view = StubView(market(), sc, {})
    h = replace(health(10_000, 8_000), health_factor_wad=WAD - 1)
    view.evals = {BORROWER: AccountEval(BORROWER, h, None)}
    m = Paths()
    m._snapshot(view, "start")  # type: ignore[arg-type]
    assert m.summary()["accounts_below_1_start"] == 1


def test_start_reference_hf_is_null_before_the_reference_path_begins() -> None:
    """The reference path's first point is inside the window (none at or before its start): at the
    start the borrower's WETH has no reference price, and its "reference" HF was computed at the
    oracle price (the engine falls back to it key by key), 3.3 as the oracle's, indistinguishable
    from a reference that agrees. It is NULL until the path has a price for every referenced key
    the account holds; the end figure is at the reference (1.98)."""
    import dataclasses

    sc = scenario(["paths"], delay=1000, reference=True)
    inp = dataclasses.replace(inputs(market(debt_usdc=5_000), [], refs=[(1_020, 1_200)]), initial_refs={})
    r = run_inputs(sc, inp)
    start, end = _rows(r, "start"), _rows(r, "end")
    assert [(x["health_factor_wad"], x["health_factor_reference_wad"], x["health_factor_reference_f64"])
            for x in start] == [(str(33 * WAD // 10), None, None)]
    assert [x["health_factor_reference_wad"] for x in end] == [str(198 * WAD // 100)]


def test_price_path_starts_with_the_prices_in_force_at_the_window_start() -> None:
    """The feeds' last rounds before the window (WETH 2,000 and USDC 1 at block 999) and the
    reference price in force (2,000) are what every block reads until the first update inside the
    window (block 1,010). bt.price_path began at that update, so an as-of join of a block before
    it found no price. Now they lead the table at the first block, log index -2, each naming the
    round (or reference instant) it comes from; they are not counted as updates consumed. Under
    the reference oracle model the WETH feed's starting answer is the reference price, from the
    reference instant."""
    from fractions import Fraction

    from backtest.metrics.paths import PRICE_PATH
    from backtest.oracle import RefPoint

    from .metric_market import FEED_USDC, FEED_WETH, FIRST, USDC, WETH

    cols = PRICE_PATH.column_names()
    sc = scenario(["paths"], reference=True)
    r = run_inputs(sc, inputs(market(debt_usdc=5_000), [(1_010, 1_700)], refs=[(1_020, 1_200)]))
    rows = [dict(zip(cols, x, strict=True)) for x in r.output.tables[PRICE_PATH]]
    start = [(x["block_number"], x["log_index"], x["kind"], x["feed"], x["price_key"], x["price"],
              x["happened_block"]) for x in rows if x["log_index"] == -2]
    assert start == [(FIRST, -2, "oracle", FEED_WETH, WETH, 2_000 * 10**8, FIRST - 1),
                     (FIRST, -2, "oracle", FEED_USDC, USDC, 10**8, FIRST - 1),
                     (FIRST, -2, "reference", "ETH/USD", WETH, 2_000 * 10**8, FIRST)]
    assert rows[:3] == [x for x in rows if x["log_index"] == -2]  # they lead the table
    assert [(x["block_number"], x["kind"], x["price"]) for x in rows[3:]] == [
        (1_010, "oracle", 1_700 * 10**8), (1_020, "reference", 1_200 * 10**8)]
    s = r.output.summary["paths"]
    assert (s["oracle_updates"], s["reference_updates"]) == (1, 1)

    ins = inputs(market(debt_usdc=5_000), [(1_010, 1_700)], refs=[(1_020, 1_200)])
    t = ins.blocks.timestamp(FIRST) - 5
    ins = replace(ins, initial_refs={"ETH/USD": RefPoint("ETH/USD", t, Fraction(2_100), FIRST)})
    r = run_inputs(scenario(["paths"], reference=True, oracle_model="reference"), ins)
    rows = [dict(zip(cols, x, strict=True)) for x in r.output.tables[PRICE_PATH]]
    start = [(x["kind"], x["feed"], x["price"], x["happened_block"]) for x in rows if x["log_index"] == -2]
    assert start == [
        ("oracle", FEED_WETH, 2_100 * 10**8, FIRST), ("oracle", FEED_USDC, 10**8, FIRST - 1),
        ("reference", "ETH/USD", 2_100 * 10**8, FIRST)]


def test_a_change_of_oracle_source_is_a_row_not_an_oracle_update() -> None:
    """WETH's source switches at block 1,010 (AssetSourceUpdated) to a feed whose last answer
    equals the old one's; the WETH feed then publishes once (block 1,030). The switch is a row of
    bt.price_path (from it the key reads the new feed) but no answer: the summary counted it in
    oracle_updates (2 for 1), now in source_changes. Rows keyed by price key too (a pair or feed
    backing two keys gave two rows with one key)."""
    from backtest.metrics.paths import PRICE_PATH
    from backtest.oracle import Round, SourceChange

    from .metric_market import FIRST, T0, WETH

    new = "0x" + "f3" * 20
    inp = inputs(market(debt_usdc=5_000), [(FIRST + 30, 2_000)])
    inp.initial_rounds = {**inp.initial_rounds,
                          new: Round(new, 2_000 * 10**8, 8, T0 - 100, FIRST - 9, 0, T0 - 100)}
    inp.source_changes = [SourceChange(FIRST + 10, 3, WETH, new)]
    r = run_inputs(scenario(["paths"]), inp)
    s = r.output.summary["paths"]
    assert (s["oracle_updates"], s["source_changes"]) == (1, 1)
    rows = [x for x in r.output.tables[PRICE_PATH] if x[3] != -2]
    assert [(x[2], x[6]) for x in rows] == [(FIRST + 10, new), (FIRST + 30, inp.rounds[0].feed)]
    assert "price_key" in PRICE_PATH.sort_key
