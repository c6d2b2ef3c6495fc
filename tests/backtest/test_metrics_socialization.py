"""Loss socialization: the arithmetic through the hooks on a hand-built market, then through the
engine on a liquidation spiral that leaves bad debt."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from backtest.api import run_inputs
from backtest.metrics import get_metric
from backtest.metrics.base import AccountEval, BlockEnd
from backtest.metrics.socialization import AAVE_BEARERS, BEARERS, LOSS_BEARERS, SOCIALIZATION, Socialization
from backtest.scenario import Overrides, ReserveOverride

from .metric_market import (
    BORROWER,
    FIRST,
    SUPPLIER,
    T0,
    USDC,
    WETH,
    StubView,
    health,
    inputs,
    market,
    scenario,
)

PRICES = {WETH: 2_000 * 10**8, USDC: 10**8}


def test_registered_and_vocabulary() -> None:
    assert get_metric("socialization") is Socialization
    assert set(AAVE_BEARERS) <= set(BEARERS)
    assert {"insurance_fund", "adl", "socialized"} <= set(BEARERS)
    import backtest.metrics.socialization as mod

    for b in BEARERS:  # every category is defined in the module docstring
        assert f"``{b}``" in (mod.__doc__ or "")


def test_haircut_treasury_and_suppliers_by_hand() -> None:
    # supply of USDC: supplier 100,000 + treasury 100 (index 1 RAY) = 100,100 USDC
    state = market(treasury_usdc=100)
    view = StubView(state, scenario(["socialization"]), dict(PRICES))
    m = Socialization()
    m.on_run_start(view)  # nobody underwater: no row
    assert m.rows()[SOCIALIZATION.fqn] == []
    # the borrower (17,000 USDC debt) is re-evaluated with 16,000 USD collateral: 1,000 USD bad debt
    view.at(FIRST + 5, T0 + 60)
    ev = AccountEval(BORROWER, health(16_000, 17_000), None)
    view.evals[BORROWER] = ev
    m.on_block_end(view, BlockEnd(view.block, (ev,)))
    (row,) = m.rows()[SOCIALIZATION.fqn]
    cols = dict(zip(SOCIALIZATION.column_names(), row, strict=True))
    assert cols["reserve"] == USDC and cols["block_number"] == FIRST + 5
    assert cols["unrealized_value"] == 1_000 * 10**8
    assert cols["deficit_raw"] == 0 and cols["loss_value"] == 1_000 * 10**8
    assert cols["supply_raw"] == 100_100 * 10**6 and cols["supply_value"] == 100_100 * 10**8
    assert cols["treasury_raw"] == 100 * 10**6 and cols["treasury_value"] == 100 * 10**8
    assert cols["treasury_reserve_value"] == 100 * 10**8
    assert cols["suppliers_value"] == 900 * 10**8
    assert cols["haircut_gross_bps_f64"] == pytest.approx(1_000 / 100_100 * 10_000)
    # the treasury's 100 USDC of aTokens absorbed 100 USD: 900 USD on the other 100,000 USDC (by hand)
    assert cols["haircut_net_bps_f64"] == pytest.approx(900 / 100_000 * 10_000)
    bearers = {r[4]: r[5] for r in m.rows()[LOSS_BEARERS.fqn]}
    assert bearers == {"deficit_outstanding": 0, "suppliers": 900 * 10**8, "treasury_reserve": 100 * 10**8,
                       "unbacked": 0}
    assert sum(bearers.values()) == cols["loss_value"]
    # v3.3-style booked deficit of 50 USDC appears on the next block; the account recovers
    state.reserves[USDC] = dataclasses.replace(state.reserves[USDC], deficit=50 * 10**6)
    view.at(FIRST + 6, T0 + 72)
    ev2 = AccountEval(BORROWER, health(20_000, 17_000), None)
    m.on_block_end(view, BlockEnd(view.block, (ev2,)))
    rows = m.rows()[SOCIALIZATION.fqn]
    assert len(rows) == 2
    last = dict(zip(SOCIALIZATION.column_names(), rows[-1], strict=True))
    assert last["unrealized_value"] == 0 and last["deficit_value"] == 50 * 10**8
    assert last["loss_value"] == 50 * 10**8 and last["suppliers_value"] == 0
    # the treasury covers unrealized loss; the deficit stays booked (deficit_outstanding)
    assert last["treasury_reserve_value"] == 0
    s = m.summary()
    assert s["end_loss_value"] == 50 * 10**8
    assert s["end_deficit_outstanding_value"] == 50 * 10**8
    assert s["max_haircut_gross_bps"] == pytest.approx(1_000 / 100_100 * 10_000)
    assert s["max_haircut_gross_block"] == FIRST + 5


def test_loss_split_over_two_debt_reserves() -> None:
    # a borrower owing 1,000 USDC and 1 WETH (2,000 USD): 300 USD of bad debt splits 1:2
    state = market()
    u = state.users[BORROWER]
    wr = dataclasses.replace(u.reserves[WETH], scaled_variable_debt=10**18, scaled_a_token_balance=0,
                             variable_debt_previous_index=10**27)
    ur = dataclasses.replace(u.reserves[USDC], scaled_variable_debt=1_000 * 10**6)
    state.users[BORROWER] = dataclasses.replace(u, reserves={WETH: wr, USDC: ur})
    view = StubView(state, scenario(["socialization"]), dict(PRICES))
    m = Socialization()
    m.on_run_start(view)
    ev = AccountEval(BORROWER, health(2_700, 3_000), None)
    m.on_block_end(view.at(FIRST + 1, T0 + 12), BlockEnd(view.block, (ev,)))
    got = {r[4]: r[5] for r in m.rows()[SOCIALIZATION.fqn]}
    assert got == {USDC: 100 * 10**8, WETH: 200 * 10**8}


def test_spiral_bad_debt_falls_on_usdc_suppliers_through_the_engine() -> None:
    ov = Overrides(reserves=(ReserveOverride(WETH, liquidation_threshold_bps=9000,
                                             liquidation_bonus_bps=11500),))
    sc = scenario(["bad_debt", "socialization"], delay=1, overrides=ov)
    r = run_inputs(sc, inputs(market(), [(FIRST + 10, 1_880), (FIRST + 30, 2_000)]))
    bd = r.summary["bad_debt"]["end_unrealized_oracle_value"]
    s = r.summary["socialization"]
    assert bd > 0
    # v3.0 books no deficit: the whole loss is unrealized, no treasury balance: all on suppliers
    assert s["end_loss_value"] == bd == s["end_suppliers_value"]
    assert s["end_deficit_outstanding_value"] == 0 and s["deficit_created_value"] == 0
    # supply is 100,000 USDC (1e5 USD): the haircut in bps is loss_usd / 1e5 * 1e4
    assert s["max_haircut_gross_bps"] == pytest.approx(bd / 10**8 / 100_000 * 10_000)


def test_incremental_supply_matches_a_full_recount_on_the_real_market(tmp_path: Path) -> None:
    """Historical replay of the real anvil market (supplies, borrows, a liquidation, treasury
    mints): the per-reserve scaled aToken sums the metric keeps from aToken events alone equal a
    recount over every account of the final state."""
    from backtest.api import load_inputs
    from backtest.engine import Replay
    from backtest.scenario import parse_scenario
    from ingest.warehouse import Warehouse

    from .report_market import build, scenario_text

    b = build(tmp_path / "warehouse.duckdb")
    m = Socialization()
    with Warehouse(str(b.db), read_only=True) as wh:
        text = scenario_text(b, mode="historical", metrics=("socialization",))
        sc, inp = load_inputs(wh, parse_scenario(text))
    out = Replay(sc, inp, "bt-socialization-test", metrics=[m]).run()
    state = out.final_state
    recount: dict[str, int] = {}
    for u in state.users.values():
        for asset, ur in u.reserves.items():
            if ur.scaled_a_token_balance:
                recount[asset] = recount.get(asset, 0) + ur.scaled_a_token_balance
    assert recount and {a: v for a, v in m._scaled_sum.items() if v} == recount
    assert out.summary["socialization"]["end_loss_value"] >= 0


def test_haircut_follows_the_supply_when_suppliers_leave_a_reserve_with_a_loss() -> None:
    """1,000 USD of bad debt on a 100,000 USDC supply is 100 bps; then 90,000 USDC is withdrawn (an
    aToken Burn) and nothing else changes: the 10,000 USDC left bear the same loss, 1,000 bps. The
    metric wrote rows only when the loss changed, so the haircut stayed at 100 bps (also its max)."""
    from protocols.domain import EventRef, ProtocolEvent

    state = market()
    view = StubView(state, scenario(["socialization"]), dict(PRICES))
    m = Socialization()
    m.on_run_start(view)
    view.at(FIRST + 5, T0 + 60)
    ev = AccountEval(BORROWER, health(16_000, 17_000), None)
    view.evals[BORROWER] = ev
    m.on_block_end(view, BlockEnd(view.block, (ev,)))
    view.at(FIRST + 6, T0 + 72)
    sup = state.users[SUPPLIER]
    state.users[SUPPLIER] = dataclasses.replace(sup, reserves={USDC: dataclasses.replace(
        sup.reserves[USDC], scaled_a_token_balance=10_000 * 10**6)})
    args = {"from": SUPPLIER, "target": SUPPLIER, "value": 90_000 * 10**6, "balance_increase": 0,
            "index": 10**27}
    burn = ProtocolEvent("Burn", "Burn(address,address,uint256,uint256,uint256)", "0x" + "a1" * 20, "a_token",
                         args, EventRef(FIRST + 6, 0, "0x" + "00" * 32, T0 + 72))
    m.on_event(view, burn)
    m.on_block_end(view, BlockEnd(view.block, ()))
    rows = [dict(zip(SOCIALIZATION.column_names(), r, strict=True)) for r in m.rows()[SOCIALIZATION.fqn]]
    assert [(r["block_number"], r["supply_raw"], r["loss_value"]) for r in rows] == [
        (FIRST + 5, 100_000 * 10**6, 1_000 * 10**8), (FIRST + 6, 10_000 * 10**6, 1_000 * 10**8)]
    assert rows[-1]["haircut_gross_bps_f64"] == pytest.approx(1_000.0)
    assert len(m.rows()[LOSS_BEARERS.fqn]) == 2 * len(AAVE_BEARERS)
    s = m.summary()
    assert (s["max_haircut_gross_bps"], s["max_haircut_gross_block"]) == (pytest.approx(1_000.0), FIRST + 6)
    assert s["max_haircut_net_bps"] == pytest.approx(1_000.0)


def test_a_simulated_liquidation_minting_to_the_debt_reserves_treasury_moves_its_supply() -> None:
    """Aave v2's liquidationCall runs the debt reserve's updateState, which mints aTokens to *its*
    treasury (``Mint`` in the outcome's events); a counterfactual run has no events, and the metric
    re-read only the liquidated user, the liquidator and the collateral reserve's treasury, so a
    debt reserve with another treasury kept a stale supply (here 100,000 USDC for 100,050)."""
    from backtest.metrics.base import Liquidation
    from protocols.aave_v3.state import UserReserve, UserState
    from protocols.domain import EmittedEvent, LiquidationOutcome

    other = "0x" + "7f" * 20
    state = market()
    state.reserves[USDC] = dataclasses.replace(state.reserves[USDC], treasury=other)
    view = StubView(state, scenario(["socialization"]), dict(PRICES))
    m = Socialization()
    m.on_run_start(view)
    assert m._scaled_sum[USDC] == 100_000 * 10**6
    view.at(FIRST + 1, T0 + 12)
    state.users[other] = UserState(configuration=0, reserves={
        USDC: UserReserve(scaled_a_token_balance=50 * 10**6, a_token_previous_index=10**27)})
    a_usdc = state.reserves[USDC].a_token
    mint = EmittedEvent("Mint", {"from": other, "value": 50 * 10**6, "index": 10**27}, "a_token", a_usdc)
    out = LiquidationOutcome(True, None, BORROWER, WETH, USDC, debt_repaid=1, collateral_seized=1,
                             events=(mint,))
    m.on_liquidation(view, Liquidation(
        observed=False, committed=True, block_number=FIRST + 1, log_index=None, tx_hash=None,
        timestamp=T0 + 12, user=BORROWER, liquidator="0x" + "00" * 20, collateral_asset=WETH,
        debt_asset=USDC, debt_to_cover=1, debt_repaid=1, collateral_seized=1, protocol_fee=0,
        receive_a_token=False, debt_repaid_value=0, collateral_seized_value=0, protocol_fee_value=0,
        outcome=out))
    m.on_block_end(view, BlockEnd(view.block, ()))
    assert m._scaled_sum[USDC] == 100_050 * 10**6


def test_one_row_per_reserve_and_block_when_the_first_block_changes_the_loss() -> None:
    """A loss at the run start and another figure at the end of the same (first) block: the run
    start wrote a row labelled with that block too, so the reserve had two rows at one
    block_number and "the last row at or before a block" depended on the physical row order. The
    first row is now the first block's end."""
    state = market()
    view = StubView(state, scenario(["socialization"]), dict(PRICES), block=FIRST)
    view.evals[BORROWER] = AccountEval(BORROWER, health(16_000, 17_000), None)  # 1,000 USD under
    m = Socialization()
    m.on_run_start(view)
    ev = AccountEval(BORROWER, health(15_000, 17_000), None)  # an answer in FIRST: 2,000 USD
    view.evals[BORROWER] = ev
    m.on_block_end(view, BlockEnd(view.block, (ev,)))
    rows = [dict(zip(SOCIALIZATION.column_names(), r, strict=True)) for r in m.rows()[SOCIALIZATION.fqn]]
    assert [(r["block_number"], r["loss_value"]) for r in rows] == [(FIRST, 2_000 * 10**8)]
    assert [r[5] for r in m.rows()[LOSS_BEARERS.fqn]] == [0, 2_000 * 10**8, 0, 0]
    assert m.summary()["max_haircut_gross_bps"] == pytest.approx(2_000 / 100_000 * 10_000)


def test_a_booked_deficit_is_valued_at_the_price_in_force_when_the_price_moves() -> None:
    """Aave v3.3: 1 collateral token of deficit booked before the window (``ReserveData.deficit``),
    nobody under water; the token's oracle price falls from $1,000 to $900, $800, $500. A row was
    written only when (U, D) or the supply changed, so the deficit kept its first value, $1,000, to
    the end (``end_loss_value`` and ``end_deficit_outstanding_value`` twice what it was worth).
    Each move now writes a row valued at the new price (1 token x price, by hand)."""
    from protocols.aave_v3 import V3_3
    from tests.backtest.markets import COLL, FROM
    from tests.backtest.markets import inputs as m_inputs
    from tests.backtest.markets import market as m_market
    from tests.backtest.markets import scenario as m_scenario

    book = m_market(8000, 10500, [(100 * 10**18, 100 * 10**6)])  # 100 tokens against $100: healthy
    book.state.rules = V3_3
    book.state.reserves[COLL] = dataclasses.replace(book.state.reserves[COLL], deficit=10**18)
    path = [1_000 * 10**8, 900 * 10**8, 800 * 10**8, 500 * 10**8]  # at FROM + 1 .. FROM + 4
    sc = m_scenario(to_block=FROM + len(path) + 1,
                    extra='[metrics]\nnames = ["bad_debt", "socialization"]\n')
    r = run_inputs(sc, m_inputs(book, path))
    rows = r.frames()["bt.socialization"].sort("block_number").to_dicts()
    assert [(x["block_number"], x["deficit_raw"], x["deficit_value"], x["loss_value"]) for x in rows] == [
        (FROM, 10**18, 1_000 * 10**8, 1_000 * 10**8),  # the first block's end (the start's price)
        (FROM + 2, 10**18, 900 * 10**8, 900 * 10**8),  # FROM + 1 repeats $1,000: no row
        (FROM + 3, 10**18, 800 * 10**8, 800 * 10**8),
        (FROM + 4, 10**18, 500 * 10**8, 500 * 10**8)]
    # supply 100 tokens: the haircut is 1 % at every price
    assert all(x["haircut_gross_bps_f64"] == pytest.approx(100.0) for x in rows)
    s = r.summary["socialization"]
    assert s["end_deficit_outstanding_value"] == s["end_loss_value"] == 500 * 10**8
    bearers = r.frames()["bt.loss_bearers"].filter(block_number=FROM + 4).to_dicts()
    assert {b["bearer"]: b["value"] for b in bearers} == {
        "deficit_outstanding": 500 * 10**8, "suppliers": 0, "treasury_reserve": 0, "unbacked": 0}


def test_supply_under_v3_5_is_the_atoken_total_supply_rounded_down() -> None:
    """Aave v3.5's ``AToken.totalSupply`` is ``scaledTotalSupply.getATokenBalance(income)``, i.e.
    ``rayMulFloor`` (TokenMath), where v3.0-v3.4 round half up. At a liquidity index of 1.5 RAY and
    100,000 USDC + 3 units scaled, the supply is 150,000 USDC + 4.5 units: 4 units (by hand, floor),
    not 5 (half up), as the metric wrote under every rule set; the treasury's claim likewise."""
    from protocols.aave_v3 import V3_5
    from protocols.fixed_point import RAY

    state = market(treasury_usdc=0)
    state.rules = V3_5
    index = RAY * 3 // 2
    state.reserves[USDC] = dataclasses.replace(state.reserves[USDC], liquidity_index=index,
                                               current_liquidity_rate=0)
    sup = state.users[SUPPLIER]
    state.users[SUPPLIER] = dataclasses.replace(sup, reserves={USDC: dataclasses.replace(
        sup.reserves[USDC], scaled_a_token_balance=100_000 * 10**6 + 2)})
    # the treasury holds 1 scaled unit: 1.5 units of USDC, floor 1
    from protocols.aave_v3.state import UserReserve, UserState

    treasury = state.reserves[USDC].treasury
    state.users[treasury] = UserState(configuration=0, reserves={
        USDC: UserReserve(scaled_a_token_balance=1, a_token_previous_index=index)})
    # WETH falls to $1,500 at FIRST + 1: 15,000 USD of collateral against 17,000 USD of debt; the
    # liquidator waits longer than the window, so the loss stays
    sc = scenario(["socialization"], delay=10_000)
    r = run_inputs(sc, inputs(state, [(FIRST + 1, 1_500)]))
    rows = r.frames()["bt.socialization"].sort("block_number").to_dicts()
    assert rows and rows[0]["reserve"] == USDC
    scaled = 100_000 * 10**6 + 2 + 1
    assert rows[0]["supply_raw"] == scaled * index // RAY == 150_000 * 10**6 + 4
    assert rows[0]["treasury_raw"] == 1 * index // RAY == 1


def test_a_booked_deficit_of_a_reserve_without_a_price_yet_is_an_error_not_a_loss_of_zero() -> None:
    """A reserve whose feed has no answer before the window (its first round comes inside it) and
    that carries a deficit booked before (Aave v3.3+): at the first block the metric valued the
    deficit, the supply and the treasury's claim at 0 (deficit_raw 1 token, loss_value 0, no
    haircut), a plausible "no loss". The loss cannot be valued there: the run fails, naming the
    reserve and the block."""
    from backtest.errors import ReplayError
    from protocols.aave_v3 import V3_3
    from tests.backtest.markets import COLL, FEED_C, FROM
    from tests.backtest.markets import inputs as m_inputs
    from tests.backtest.markets import market as m_market
    from tests.backtest.markets import scenario as m_scenario

    book = m_market(8000, 10500, [])  # nobody holds the collateral token: nothing else needs its price
    book.state.rules = V3_3
    book.state.reserves[COLL] = dataclasses.replace(book.state.reserves[COLL], deficit=10**18)
    path = [1_000 * 10**8, 900 * 10**8, 800 * 10**8]
    inp = m_inputs(book, path)
    no_start = {f: x for f, x in inp.initial_rounds.items() if f != FEED_C}  # its first round: FROM + 1
    inp = dataclasses.replace(inp, initial_rounds=no_start)
    sc = m_scenario(to_block=FROM + len(path) + 1, extra='[metrics]\nnames = ["socialization"]\n')
    with pytest.raises(ReplayError, match=f"{COLL}.*no oracle price") as e:
        run_inputs(sc, inp)
    assert f"block {FROM}" in str(e.value)


def test_the_treasurys_claim_is_its_atoken_balance_not_an_accrual_the_replay_half_knows() -> None:
    """``accruedToTreasury`` is not rebuilt from events (0 in the historical state, whatever the
    chain held), but a counterfactual replay accrues it from the window start: a liquidation's
    ``updateState`` of the debt reserve (100 %/yr borrow rate, 10 % reserve factor) made 133 units
    of it, and the metric counted them as the treasury's claim, which holds no aToken here (its
    share of the loss moved from the suppliers to a treasury that holds nothing it could give).
    The claim is the treasury's aToken balance: 0, none of the loss on the treasury (nobody supplies
    this test market's debt asset, so it is unbacked rather than the suppliers')."""
    from tests.backtest.markets import DEBT, FROM
    from tests.backtest.markets import inputs as m_inputs
    from tests.backtest.markets import market as m_market
    from tests.backtest.markets import scenario as m_scenario

    book = m_market(8000, 10500, [(10**18, 700 * 10**6)], borrow_rate=10**27)
    r = book.state.reserves[DEBT]
    book.state.reserves[DEBT] = dataclasses.replace(
        r, configuration=dataclasses.replace(r.configuration, reserve_factor=1000))
    path = [1000 * 10**8, 1000 * 10**8, 500 * 10**8, 500 * 10**8, 500 * 10**8]  # at FROM + 1 .. FROM + 5
    sc = m_scenario(to_block=FROM + len(path) + 1,
                    extra='[metrics]\nnames = ["liquidations", "socialization"]\n')
    res = run_inputs(sc, m_inputs(book, path))
    assert [x.committed for x in res.output.liquidations] == [True]
    assert res.output.final_state.reserves[DEBT].accrued_to_treasury > 0  # what the replay accrued
    assert book.state.users.get(book.state.reserves[DEBT].treasury) is None  # no aToken anywhere
    rows = res.frames()["bt.socialization"].to_dicts()
    assert rows and all(x["treasury_raw"] == 0 and x["treasury_reserve_value"] == 0 for x in rows)
    assert all(x["suppliers_value"] + x["unbacked_value"] == x["unrealized_value"] > 0 for x in rows)
    s = res.summary["socialization"]
    assert s["end_treasury_reserve_value"] == 0
    assert s["end_suppliers_value"] + s["end_unbacked_value"] == s["end_loss_value"] > 0


def test_a_loss_with_no_supplier_behind_it_is_unbacked_not_the_suppliers() -> None:
    """A debt reserve nobody supplies (GHO: minted by its facilitator, no aToken supply) with 1,000
    USD of bad debt: the suppliers bore all of it (suppliers_value 1,000 USD, haircut NULL), a
    bearer that does not exist. Suppliers bear at most what they hold (the supply less the
    treasury's part); the rest is ``unbacked``: debt with no supplier behind it, whose loss falls
    on the asset's issuer (GHO: the DAO, as its facilitator). With 400 USDC of supply, 400 USD
    fall on the suppliers (10,000 bps) and 600 USD are unbacked; with the usual supply, nothing is."""
    for supplied, suppliers, unbacked in ((0, 0, 1_000), (400, 400, 600), (100_000, 1_000, 0)):
        state = market(supplier_usdc=supplied)
        view = StubView(state, scenario(["socialization"]), dict(PRICES))
        m = Socialization()
        m.on_run_start(view)
        view.at(FIRST + 5, T0 + 60)
        ev = AccountEval(BORROWER, health(16_000, 17_000), None)
        view.evals[BORROWER] = ev
        m.on_block_end(view, BlockEnd(view.block, (ev,)))
        (row,) = m.rows()[SOCIALIZATION.fqn]
        cols = dict(zip(SOCIALIZATION.column_names(), row, strict=True))
        assert cols["supply_value"] == supplied * 10**8
        assert (cols["suppliers_value"], cols["unbacked_value"]) == (suppliers * 10**8, unbacked * 10**8)
        bearers = {r[4]: r[5] for r in m.rows()[LOSS_BEARERS.fqn]}
        assert bearers["suppliers"] == suppliers * 10**8 and bearers["unbacked"] == unbacked * 10**8
        assert sum(bearers.values()) == cols["loss_value"] == 1_000 * 10**8
        assert m.summary()["end_unbacked_value"] == unbacked * 10**8
        if supplied == 400:
            assert cols["haircut_net_bps_f64"] == 10_000.0
