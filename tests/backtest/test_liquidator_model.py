"""The liquidator model (:mod:`backtest.liquidator`) with expectations worked by hand, on the real
ported Aave v3.0 rules (:mod:`tests.backtest.markets` builds the starting state).

The account of most cases: 10 ETH collateral (LT 80 %, bonus 5 %, protocol fee 0), 16,500 USDC
variable debt, ETH at $2,000: HF = 10 x 2000 x 0.8 / 16500 = 0.9697 > 0.95, so the close factor is
50 %: ``type(uint256).max`` covers 8,250 USDC, for 8,250 / 2,000 x 1.05 = 4.33125 ETH. In base
currency (USD, 8 decimals): repaid 8,250.00, seized 8,662.50, bonus 412.50.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

import pytest

from backtest.api import run_inputs
from backtest.clock import Blocks
from backtest.liquidator import MAX_UINT256, LiquidatorModel
from backtest.oracle import RefPoint, Round
from backtest.scenario import LiquidatorSpec, ScenarioError, Slippage
from protocols.domain import LiquidationOutcome, Position
from protocols.fixed_point import RAY
from tests.backtest.markets import ADAPTER, COLL, DEBT, FEED_C, FROM, T0, inputs, market, scenario, user

UNIT = 10**8
GWEI = 10**9
PRICES = {COLL: 2_000 * UNIT, DEBT: UNIT}


def _value(asset: str, amount: int) -> int:
    return amount * PRICES[asset] // 10 ** (18 if asset == COLL else 6)


def _model(**kw: object) -> LiquidatorModel:
    return LiquidatorModel(LiquidatorSpec(**kw), UNIT)  # type: ignore[arg-type]


def test_gas_is_units_times_base_fee_plus_tip_at_the_eth_price() -> None:
    m = _model(gas_units=400_000, priority_fee_wei=3 * GWEI, gas_price_key=COLL)
    # 400,000 x 53 gwei = 0.0212 ETH x $2,000 = $42.40
    assert m.gas_cost(50 * GWEI, PRICES) == 42_40000000
    assert _model().gas_cost(50 * GWEI, PRICES) == 0


def test_decision_economics_and_min_profit_gate() -> None:
    book = market(8000, 10500, [(10 * 10**18, 16_500 * 10**6)])
    u = book.users[0]
    base = dict(gas_units=400_000, priority_fee_wei=3 * GWEI, gas_price_key=COLL)
    d = _model(**base).decide(ADAPTER, book.state, u, PRICES, T0, 50 * GWEI, _value)
    assert d is not None
    assert d.debt_to_cover == MAX_UINT256
    assert (d.outcome.debt_repaid, d.outcome.collateral_seized, d.outcome.protocol_fee) == (
        8_250 * 10**6, 4_331_250_000_000_000_000, 0)
    assert (d.debt_repaid_value, d.collateral_seized_value, d.gas_cost_value) == (
        8_250 * UNIT, 8_662_50000000, 42_40000000)
    assert d.profit_value == 412_50000000 - 42_40000000 == 370_10000000
    # acts at exactly the minimum, not a cent above it
    assert _model(**base, min_profit=Decimal("370.10")).decide(
        ADAPTER, book.state, u, PRICES, T0, 50 * GWEI, _value) is not None
    assert _model(**base, min_profit=Decimal("370.11")).decide(
        ADAPTER, book.state, u, PRICES, T0, 50 * GWEI, _value) is None
    # flash loan fee 9 bps of the repaid value: 8,250 x 0.0009 = 7.425
    f = _model(**base, flash_fee_bps=9).decide(ADAPTER, book.state, u, PRICES, T0, 50 * GWEI, _value)
    assert f is not None and f.flash_fee_value == 7_42500000 and f.profit_value == 370_10000000 - 7_42500000


def test_constant_product_slippage_by_hand() -> None:
    m = _model(slippage=MappingProxyType({COLL: Slippage(depth=Decimal(1_000_000))}))
    # sale of $100,000 into $1,000,000 depth: s^2 / (D + s) = 1e10 / 1.1e6 = $9,090.90909090 (floored)
    assert m.slippage(COLL, 100_000 * UNIT) == 9_090_90909090
    assert m.slippage(DEBT, 100_000 * UNIT) == 0  # no curve for that asset


def test_slippage_table_by_hand() -> None:
    table = ((Decimal(10_000), 10), (Decimal(100_000), 50), (Decimal(1_000_000), 200))
    m = _model(slippage=MappingProxyType({COLL: Slippage(table=table)}))
    assert m.slippage(COLL, 5_000 * UNIT) == 2_50000000        # 5 bps (linear from 0 to 10) x $5,000
    assert m.slippage(COLL, 55_000 * UNIT) == 165_00000000     # 10 + 40 x 45/90 = 30 bps x $55,000
    assert m.slippage(COLL, 2_000_000 * UNIT) == 40_000_00000000  # flat 200 bps beyond the table


def test_without_flash_loans_the_inventory_caps_and_is_drawn_down() -> None:
    book = market(8000, 10500, [(10 * 10**18, 16_500 * 10**6)])
    u = book.users[0]
    m = _model(flash_loans=False, inventory=MappingProxyType({DEBT: 1_000 * 10**6}))
    d = m.decide(ADAPTER, book.state, u, PRICES, T0, 0, _value)
    # 1,000 USDC / 2,000 x 1.05 = 0.525 ETH
    assert d is not None and d.debt_to_cover == 1_000 * 10**6
    assert (d.outcome.debt_repaid, d.outcome.collateral_seized) == (1_000 * 10**6, 525 * 10**15)
    ADAPTER.commit(book.state, d.outcome)
    m.spend(d)
    assert m.inventory[DEBT] == 0
    assert m.decide(ADAPTER, book.state, u, PRICES, T0, 0, _value) is None


def _crash_run(extra: str, positions: list[tuple[int, int]],  # type: ignore[no-untyped-def]
               blocks: Blocks | None = None):
    # ETH $2,000 until block FROM+3, then $1,800 from FROM+4 on
    path = [2_000 * UNIT] * 3 + [1_800 * UNIT] * 12
    inp = inputs(market(8000, 10500, positions), path, to_block=FROM + 20)
    if blocks is not None:
        inp.blocks = blocks
    return run_inputs(scenario(extra=extra, to_block=FROM + 20), inp)


def test_reaction_delay_and_gas_from_the_landing_blocks_base_fee() -> None:
    """Liquidatable from the end of block FROM+4 (ETH at $1,800: HF = 10 x 1800 x 0.8 / 15000 = 0.96);
    with a delay of 3 blocks the liquidation lands at FROM+7, on the state the bot read at FROM+6;
    gas at the base fee of FROM+7 (block n's base fee = n gwei here) valued at $1,800."""
    blocks = Blocks((n, T0 + 12 * (n - FROM + 1), n * GWEI, True) for n in range(FROM - 1, FROM + 21))
    extra = (f'\n[liquidator]\nreaction_delay_blocks = 3\ngas_units = 100000\npriority_fee_wei = {GWEI}\n'
             f'gas_price_key = "{COLL}"\nrepeat_in_block = false\n')
    res = _crash_run(extra, [(10 * 10**18, 15_000 * 10**6)], blocks)
    liqs = res.output.liquidations
    assert liqs and liqs[0].block_number == FROM + 7 and liqs[0].liquidatable_since_block == FROM + 4
    assert liqs[0].decided_block == FROM + 4  # landing block - reaction delay
    assert liqs[0].gas_cost_value == 100_000 * ((FROM + 7) * GWEI + GWEI) * 1_800 * UNIT // 10**18
    # after it: 7,500 repaid for 4.375 ETH, HF = 5.625 x 1800 x 0.8 / 7500 = 1.08: the episode ends
    assert len(liqs) == 1


def test_capacity_per_block_orders_by_profit_then_user() -> None:
    """Three accounts liquidatable at once, one liquidation per block: largest profit first."""
    positions = [(10 * 10**18, 15_000 * 10**6), (30 * 10**18, 45_000 * 10**6), (20 * 10**18, 30_000 * 10**6)]
    res = _crash_run("\n[liquidator]\nreaction_delay_blocks = 1\ncapacity_per_block = 1\n", positions)
    liqs = res.output.liquidations
    per_block: dict[int, int] = {}
    for x in liqs:
        per_block[x.block_number] = per_block.get(x.block_number, 0) + 1
    assert max(per_block.values()) == 1
    assert [x.user for x in liqs[:3]] == [user(1), user(2), user(0)]
    assert [x.block_number for x in liqs[:3]] == [FROM + 5, FROM + 6, FROM + 7]


def test_capacity_leftovers_land_in_the_next_blocks_without_a_new_oracle_answer() -> None:
    """The accounts a full block leaves out are quoted again at its end: with one oracle answer
    (ETH to $1,800 at FROM+4) and no later input, three liquidatable accounts and one liquidation
    per block land at FROM+5, +6, +7. (They were dropped: only the first was ever liquidated, the
    others waited, liquidatable, for an input that never came.)"""
    positions = [(10 * 10**18, 15_000 * 10**6), (30 * 10**18, 45_000 * 10**6), (20 * 10**18, 30_000 * 10**6)]
    inp = inputs(market(8000, 10500, positions), [2_000 * UNIT] * 3 + [1_800 * UNIT], to_block=FROM + 20)
    extra = "\n[liquidator]\nreaction_delay_blocks = 1\ncapacity_per_block = 1\nrepeat_in_block = false\n"
    liqs = run_inputs(scenario(extra=extra, to_block=FROM + 20), inp).output.liquidations
    assert [(x.block_number, x.user) for x in liqs[:3]] == [
        (FROM + 5, user(1)), (FROM + 6, user(2)), (FROM + 7, user(0))]
    assert [x.liquidatable_since_block for x in liqs[:3]] == [FROM + 4] * 3


class _SameAssetAdapter:
    """Just what :meth:`LiquidatorModel.decide` reads: one account with DEBT as collateral and debt
    (a looped position), liquidated for 1,000 DEBT repaid against 1,050 DEBT seized."""

    def positions(self, state: object, user: str, ts: int) -> list[Position]:
        return [Position(user, DEBT, 20_000 * 10**6, 19_000 * 10**6, True)]

    def liquidate(self, state: object, user: str, coll: str, debt: str, cover: int,
                  prices: object, ts: int) -> LiquidationOutcome:
        return LiquidationOutcome(True, None, user, coll, debt, debt_repaid=1_000 * 10**6,
                                  collateral_seized=1_050 * 10**6)


def test_no_slippage_when_the_seized_collateral_is_the_debt_asset() -> None:
    """Seized DEBT repays the DEBT flash loan as it is: nothing is sold, so no slippage, even with a
    curve for DEBT (it was charged on the whole seized value: $1,050 into $10,000 depth, $100.00)."""
    m = _model(slippage=MappingProxyType({DEBT: Slippage(depth=Decimal(10_000))}), flash_fee_bps=9)
    d = m.decide(_SameAssetAdapter(), None, user(0), PRICES, T0, 0, _value)  # type: ignore[arg-type]
    assert d is not None
    assert (d.debt_repaid_value, d.collateral_seized_value) == (1_000 * UNIT, 1_050 * UNIT)
    assert d.slippage_value == 0
    assert d.flash_fee_value == 90_000_000  # 9 bps of $1,000: the flash loan is still taken
    assert d.profit_value == 50 * UNIT - 90_000_000


def test_delay_counts_from_the_first_evaluation_finding_the_account_liquidatable() -> None:
    """Interest (100 % APR) pushes the account under between daily blocks; a reference point visits
    FROM+5, where the replay evaluates it for its expired interest bound: liquidatable (HF 0.99).
    The liquidator model reacts to oracle answers only, so it first observes it at FROM+11 (an
    answer) and liquidates at FROM+12; the delay from liquidatable to liquidated is 7 blocks, not
    1 (liquidatable_since was the model's first observation, FROM+11)."""
    day = 86_400

    def ts(b: int) -> int:
        return T0 + day * (b - FROM + 1)

    inp = inputs(market(8000, 10500, [(10 * 10**18, 15_900 * 10**6)], borrow_rate=RAY), [2_000 * UNIT],
                 to_block=FROM + 20, refs=[Fraction(2_000)], ref_start=Fraction(2_000))
    inp.blocks = Blocks((n, ts(n), 0, True) for n in range(FROM - 1, FROM + 21))
    inp.rounds = [Round(FEED_C, p * UNIT, 8, ts(b), b, 0, ts(b))
                  for b, p in ((FROM + 1, 2_000), (FROM + 11, 1_999))]
    inp.refs = [RefPoint("COLL/USD", ts(FROM + 5), Fraction(2_000), FROM + 5)]
    res = run_inputs(scenario(extra="\n[metrics]\nnames = ['liquidations']\n", to_block=FROM + 20,
                              reference=True), inp)
    (liq,) = res.output.liquidations
    assert (liq.block_number, liq.liquidatable_since_block, liq.liquidatable_since_ts) == (
        FROM + 12, FROM + 5, ts(FROM + 5))
    assert liq.decided_block == FROM + 11  # the model's own timing still starts at its observation
    s = res.output.summary["liquidations"]
    assert (s["simulated_delay_blocks_mean"], s["simulated_delay_blocks_max"]) == (7.0, 7)


def test_flash_loan_settings_read_under_the_other_setting_are_scenario_errors() -> None:
    """flash_loans = false with no inventory never liquidated anything (every quote capped the cover
    at 0), silently; flash_fee_bps without flash loans and an inventory with them were ignored."""
    cases = (("flash_loans = false\n", "liquidator.flash_loans"),
             (f'flash_loans = false\n[liquidator.inventory]\n"{DEBT}" = 0\n', "liquidator.flash_loans"),
             (f'flash_loans = false\nflash_fee_bps = 9\n[liquidator.inventory]\n"{DEBT}" = 5\n',
              "liquidator.flash_fee_bps"),
             (f'flash_fee_bps = 9\n[liquidator.inventory]\n"{DEBT}" = 5\n', "liquidator.inventory"))
    for body, field in cases:
        with pytest.raises(ScenarioError) as e:
            scenario(extra="\n[liquidator]\n" + body)
        assert e.value.field == field, body
    ok = scenario(extra=f'\n[liquidator]\nflash_loans = false\n[liquidator.inventory]\n"{DEBT}" = 5\n')
    assert ok.liquidator.inventory == {DEBT: 5} and not ok.liquidator.flash_loans


def test_the_delay_view_has_no_profit_for_an_observed_liquidation() -> None:
    """bt.liquidations stores gas/slippage/flash fee/profit as 0 for an observed liquidation (NOT
    NULL columns, "simulated: ..."); bt.liquidations_with_delay turned that 0 into profit_base
    0.0, a profit the chain's liquidator never had computed, which an average over the view's rows
    took in. It is NULL for observed rows, like reaction_blocks."""
    import duckdb

    from backtest.metrics.base import Liquidation
    from backtest.outputs import LIQUIDATIONS, RUNS, RunRecord, liquidation_row
    from backtest.views import LIQ_DELAY, ensure_views

    con = duckdb.connect()
    con.execute("CREATE SCHEMA bt")
    for t in (RUNS, LIQUIDATIONS):
        con.execute(t.ddl())
    rec = RunRecord("bt-x", "s", "0" * 64, None, "historical", 1, "USD", 8, 1, 9, None, None, (), (), "v",
                    "{}", 0, 0, 0, 0)
    con.execute(f"INSERT INTO {RUNS.fqn} VALUES ({', '.join('?' * len(RUNS.columns))})", rec.row())
    for seq, observed in enumerate((True, False)):
        liq = Liquidation(observed=observed, committed=observed, block_number=5,
                          log_index=1 if observed else None, tx_hash="0x01" if observed else None,
                          timestamp=T0, user=user(0), liquidator=user(9),
                          collateral_asset=COLL, debt_asset=DEBT, debt_to_cover=1, debt_repaid=1,
                          collateral_seized=1, protocol_fee=0, receive_a_token=False, debt_repaid_value=UNIT,
                          collateral_seized_value=2 * UNIT, protocol_fee_value=0,
                          decided_block=None if observed else 4, profit_value=0 if observed else UNIT // 2)
        con.execute(f"INSERT INTO {LIQUIDATIONS.fqn} VALUES ({', '.join('?' * len(LIQUIDATIONS.columns))})",
                    liquidation_row("bt-x", 1, liq, UNIT, seq))
    ensure_views(con)
    got = con.execute(f"SELECT origin, reaction_blocks, profit_base, bonus_base FROM {LIQ_DELAY.fqn} "
                      "ORDER BY origin").fetchall()
    assert got == [("observed", None, None, 1.0), ("simulated", 1, 0.5, 1.0)]


def test_a_slippage_table_above_10000_bps_is_a_scenario_error() -> None:
    """A slippage of more than 100 % of the sale (20000 bps: 2 % typed as a percent x 10^4...) was
    accepted: every sale of that collateral lost more than it sold, so none paid, silently."""
    bad = f'\n[liquidator]\n[liquidator.slippage."{COLL}"]\ntable = [[1000, 50], [100000, 20000]]\n'
    with pytest.raises(ScenarioError) as e:
        scenario(extra=bad)
    assert e.value.field == f"liquidator.slippage.{COLL}.table"
    ok = scenario(extra=bad.replace("20000]", "10000]"))
    assert ok.liquidator.slippage[COLL].table[-1][1] == 10_000


def test_why_an_underwater_account_was_not_liquidated_is_counted() -> None:
    """The model dropped every quote that reverted or did not pay, silently: an account left
    underwater because its collateral reserve had no liquidity to pay the underlying out looked
    the same as one nobody found worth liquidating. The liquidations metric now counts the quotes
    by how they ended, with the commonest revert reason."""
    import dataclasses

    from backtest.api import run_inputs
    from tests.backtest.markets import COLL, FROM, inputs, market, scenario

    def quotes(drain: bool, min_profit: int) -> dict[str, object]:
        book = market(8000, 10500, [(10**18, 1_500 * 10**6)])
        if drain:  # the aToken holds none of the underlying: every payout reverts
            r = book.state.reserves[COLL]
            book.state.reserves[COLL] = dataclasses.replace(r, a_token_underlying_balance=0)
        extra = (f"\n[liquidator]\nreaction_delay_blocks = 0\ngas_units = 0\nmin_profit_usd = {min_profit}\n"
                 '[metrics]\nnames = ["liquidations", "bad_debt"]\n')
        out = run_inputs(scenario(extra=extra, to_block=FROM + 12), inputs(book, [1850 * 10**8] * 10)).output
        q = {k: v for k, v in out.summary["liquidations"].items() if k.startswith("quotes_")}
        q["liquidations"] = len(out.liquidations)
        return q

    paid = quotes(False, 0)
    assert paid["liquidations"] == paid["quotes_paying"] == 1 and paid["quotes_reverted"] == 0
    dry = quotes(True, 0)
    assert dry["liquidations"] == dry["quotes_paying"] == 0
    assert dry["quotes_reverted"] == 11 and dry["quotes_reverted_top_reason"] is not None  # blocks +1..+11
    dear = quotes(False, 10**6)  # a bonus of ~$70 never pays $1M
    assert dear["liquidations"] == 0 and dear["quotes_unprofitable"] == 11 and dear["quotes_reverted"] == 0


def test_a_bundle_of_liquidations_in_one_block_has_distinct_ordered_rows() -> None:
    """LT 95 %, bonus 10 %: LT x (1 + bonus) = 1.045 > 1, so a liquidation lowers the health
    factor. 10 ETH against 16,500 USDC at $1,667: HF = 10 x 1667 x 0.95 / 16500 = 0.9598, close
    factor 50 %; after it HF ≈ 2 x 0.9598 - 1.045 = 0.875 < 0.95, so the model liquidates again in
    the same block (repeat_in_block) with the whole debt coverable. The two rows of bt.liquidations
    shared run, block, user and a NULL log index, their key: nothing said which came first. Now
    ``seq`` orders them (replay order), unique within the run."""
    from backtest.outputs import LIQUIDATIONS

    path = [2_000 * UNIT] * 3 + [1_667 * UNIT] * 12
    inp = inputs(market(9500, 11000, [(10 * 10**18, 16_500 * 10**6)]), path, to_block=FROM + 20)
    r = run_inputs(scenario(to_block=FROM + 20), inp)
    cols = LIQUIDATIONS.column_names()
    rows = [dict(zip(cols, x, strict=True)) for x in r.output.tables[LIQUIDATIONS]]
    assert len(rows) >= 2 and len({(x["block_number"], x["user"]) for x in rows[:2]}) == 1
    assert [x["seq"] for x in rows] == list(range(len(rows)))
    # the first is the close-factor-limited half (8,250 USDC), the second covers what is left
    assert rows[0]["debt_repaid_raw"] == 8_250 * 10**6
    assert rows[1]["debt_repaid_raw"] != rows[0]["debt_repaid_raw"]
