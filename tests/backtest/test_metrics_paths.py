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
