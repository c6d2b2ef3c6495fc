"""``[liquidator] prices``: the prices the liquidator values its trade at (:mod:`backtest.liquidator`),
with expectations worked by hand on the real ported Aave v3.0 rules (:mod:`tests.backtest.markets`).

The model valued a liquidation's profit at the oracle's prices even with a ``[reference]`` market
path: when the oracle lags above the market in a crash, a real bot (buying the debt it repays and
selling the collateral it seizes at market) loses on a liquidation the model took, so the model
overstated liquidations and understated bad debt. ``prices = "reference"`` values the trade at the
reference path; the protocol's amounts stay the oracle's.

The account: 10 ETH collateral (LT 80 %, bonus 5 %, protocol fee 0), 15,000 USDC variable debt. At
an oracle ETH price of $1,800, HF = 10 x 1800 x 0.8 / 15000 = 0.96 (> 0.95: close factor 50 %):
``type(uint256).max`` covers 7,500 USDC, for (Aave v3.0 LiquidationLogic)
``base = 1e8 x 7500e6 x 1e18 // (1800e8 x 1e6) = 4,166,666,666,666,666,666`` wei, ``percentMul(base,
10500) = (base x 10500 + 5000) // 10000 = 4,374,999,999,999,999,999`` wei seized.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

import pytest

from backtest.api import run_inputs
from backtest.liquidator import MAX_UINT256, LiquidatorModel, TradePrices
from backtest.scenario import LiquidatorSpec, ScenarioError, Slippage, parse_scenario
from tests.backtest.markets import ADAPTER, COLL, DEBT, FROM, T0, inputs, market, scenario

UNIT = 10**8
GWEI = 10**9
REPAID = 7_500 * 10**6
SEIZED = 4_374_999_999_999_999_999  # wei, see the module docstring


def _valuer(prices: dict[str, int]):  # type: ignore[no-untyped-def]
    def value(asset: str, amount: int) -> int:
        return amount * prices[asset] // 10 ** (18 if asset == COLL else 6)
    return value


ORACLE = {COLL: 1_800 * UNIT, DEBT: UNIT}


def _trade(eth_usd: int) -> TradePrices:
    p = {COLL: eth_usd * UNIT, DEBT: UNIT}  # the debt asset has no reference pair: the oracle's $1
    return TradePrices(p, _valuer(p))


def _model(**kw: object) -> LiquidatorModel:
    return LiquidatorModel(LiquidatorSpec(**kw), UNIT)  # type: ignore[arg-type]


def _decide(m: LiquidatorModel, trade: TradePrices | None):  # type: ignore[no-untyped-def]
    book = market(8000, 10500, [(10 * 10**18, 15_000 * 10**6)])
    return m.decide(ADAPTER, book.state, book.users[0], ORACLE, T0, 50 * GWEI, _valuer(ORACLE), trade=trade)


def test_a_liquidation_paying_at_the_oracle_but_losing_at_market_is_left() -> None:
    """No costs. At the oracle's $1,800 the bot earns 7,874.99999999 - 7,500 = $374.99999999; at a
    market of $1,700 it sells the seized ETH for 4.374999999999999999 x 1700 = $7,437.49999999 (floored),
    $62.50000001 less than the 7,500 USDC it bought to repay: with min_profit 0 it leaves it."""
    at_oracle = _decide(_model(), None)
    assert at_oracle is not None and at_oracle.debt_to_cover == MAX_UINT256
    assert (at_oracle.outcome.debt_repaid, at_oracle.outcome.collateral_seized) == (REPAID, SEIZED)
    assert at_oracle.profit_value == 787_499_999_999 - 750_000_000_000 == 37_499_999_999
    m = _model()
    assert _decide(m, _trade(1_700)) is None
    assert m.quotes["unprofitable"] == 1 and m.quotes["paying"] == 0
    # a min_profit low enough shows the loss the bot would book: 743,749,999,999 - 750,000,000,000
    lossy = _decide(_model(min_profit=Decimal(-100)), _trade(1_700))
    assert lossy is not None and lossy.profit_value == -6_250_000_001
    # the protocol's amounts are still the oracle's (what the Pool computed and the rows report)
    assert (lossy.debt_repaid_value, lossy.collateral_seized_value) == (750_000_000_000, 787_499_999_999)
    assert (lossy.trade_repaid_value, lossy.trade_seized_value) == (750_000_000_000, 743_749_999_999)


def test_every_cost_and_the_min_profit_gate_at_the_reference_prices() -> None:
    """Market $1,750, gas 400,000 x (50 + 3) gwei, flash fee 9 bps, constant product depth $1,000,000.
    At the market: seized 4.374999999999999999 x 1750 = $7,656.24999999 (s = 765,624,999,999 units),
    repaid $7,500; gas 0.0212 ETH x 1750 = $37.10; flash fee 9 bps of $7,500 = $6.75; slippage
    s^2 // (D + s) with D = 1e6 x 1e8; profit = s - 7,500 - 37.10 - 6.75 - slippage. The optimal
    constant-product sale D / sqrt(1 - a) - D (a = 1 - 1.0009 x 7500 / 7656.25, ~ $9,900) is above
    s, so the largest liquidation is the one taken."""
    spec = dict(gas_units=400_000, priority_fee_wei=3 * GWEI, gas_price_key=COLL, flash_fee_bps=9,
                slippage=MappingProxyType({COLL: Slippage(depth=Decimal(1_000_000))}))
    depth = 1_000_000 * UNIT
    s = 765_624_999_999
    slip = s * s // (depth + s)
    profit = s - 750_000_000_000 - 3_710_000_000 - 675_000_000 - slip
    d = _decide(_model(**spec), _trade(1_750))
    assert d is not None and d.debt_to_cover == MAX_UINT256
    assert (d.gas_cost_value, d.flash_fee_value, d.slippage_value) == (3_710_000_000, 675_000_000, slip)
    assert slip == 5_817_277_872  # $58.17277872: 7,656.24999999^2 / 1,007,656.24999999 = 58.1727787...
    assert d.profit_value == profit == 5_422_722_127  # 156.24999999 - 37.10 - 6.75 - 58.17277872
    # the oracle-valued amounts next to them
    assert (d.debt_repaid_value, d.collateral_seized_value, d.protocol_fee_value) == (
        750_000_000_000, 787_499_999_999, 0)
    # min_profit is compared with the profit at the market: $54.22 pays 54.22, not 54.23
    assert _decide(_model(**spec, min_profit=Decimal("54.22")), _trade(1_750)) is not None
    assert _decide(_model(**spec, min_profit=Decimal("54.23")), _trade(1_750)) is None
    # at the oracle prices the same liquidation shows $268.56: 374.99999999 - gas at $1,800 ($38.16)
    # - 6.75 - slippage on $7,874.99999999 (7,874.99999999^2 / 1,007,874.99999999 = $61.53106784)
    so = 787_499_999_999
    at_oracle = _decide(_model(**spec), None)
    assert at_oracle is not None
    assert so * so // (depth + so) == at_oracle.slippage_value == 6_153_106_784
    assert at_oracle.profit_value == so - 750_000_000_000 - 3_816_000_000 - 675_000_000 - 6_153_106_784


def test_a_block_s_sales_and_the_sale_size_are_at_the_reference_prices() -> None:
    """The pool a seized collateral is sold into sees the sale at market: after one landed
    liquidation at $1,750 the block's sales of ETH are its 765,624,999,999 units (not the oracle's
    787,499,999,999). Sizing (slippage table [[20000, 200]]: linear from 0, bps = x / 100 for a
    sale of $x, a loss of x^2 / 1e6 dollars) uses the margin at market. At a market of $1,720 the
    largest liquidation sells $7,524.99999999 for $7,500 of debt: margin a = 24.99999999 /
    7,524.99999999, loss 7,525^2 / 1e6 = $56.63, a loss of $31.63; the best sale is x = a x 1e6 / 2
    = $1,661.13 (a x x - x^2 / 1e6 = $2.76). With the oracle's margin (375 / 7,875, best sale
    $23,809 > the whole seizure) no smaller size is tried and the account is left."""
    table = MappingProxyType({COLL: Slippage(table=((Decimal(20_000), 200),))})
    m = _model(slippage=table)
    d = _decide(m, _trade(1_750))
    assert d is not None and d.debt_to_cover == MAX_UINT256
    m.landed(d)
    assert m.sold == {COLL: 765_624_999_999}
    s_t, r_t = SEIZED * 1_720 * UNIT // 10**18, 750_000_000_000
    assert s_t == 752_499_999_999
    a = Fraction(s_t - r_t, s_t)
    sale = int(a * 1_000_000 / 2 * UNIT)  # the segment's stationary point, base currency units
    assert sale == 166_112_956_744  # 1,249,999,999,500,000 / 752,499,999,999 = $1,661.12956744
    d = _decide(_model(slippage=table), _trade(1_720))
    assert d is not None and d.debt_to_cover == REPAID * sale // s_t == 1_655_610_864  # 1,655.61 USDC
    assert abs(Fraction(d.profit_value, UNIT) - a * a * 1_000_000 / 4) < Fraction(1, 100)  # $2.76


def _crash(prices: str):  # type: ignore[no-untyped-def]
    """Oracle ETH $2,000 (blocks +1..+3), $1,800 (+4..+8), $1,500 (+9..+16); the market (reference
    COLL/USD) $2,000, $1,700 (the oracle lags $100 above it), then $1,500 with the oracle."""
    path = [2_000 * UNIT] * 3 + [1_800 * UNIT] * 5 + [1_500 * UNIT] * 8
    refs = [Fraction(2_000)] * 3 + [Fraction(1_700)] * 5 + [Fraction(1_500)] * 8
    inp = inputs(market(8000, 10500, [(10 * 10**18, 15_000 * 10**6)]), path, to_block=FROM + 20,
                 refs=refs, ref_start=Fraction(2_000))
    extra = (f'\n[liquidator]\nreaction_delay_blocks = 1\nprices = "{prices}"\n'
             '[metrics]\nnames = ["liquidations", "bad_debt"]\n')
    return run_inputs(scenario(extra=extra, to_block=FROM + 20, reference=True), inp).output


def test_in_a_crash_with_the_oracle_above_the_market_the_account_is_left_to_bad_debt() -> None:
    """prices = "oracle": liquidated at FROM+5 (7,500 USDC for 4.374999999999999999 ETH, paying
    $375 at the oracle), then at $1,500 (HF = 5.625000000000000001 x 1500 x 0.8 / 7500 = 0.9: close
    factor 100 %) the remaining 7,500 USDC for 5.25 ETH at FROM+10: no bad debt.
    prices = "reference": the first liquidation loses $62.50 at the market's $1,700, so nobody takes
    it (quoted at the end of +4..+8, each an oracle answer: 5 unprofitable quotes); at $1,500 the
    account (HF 0.8) is liquidated whole: 10 ETH seized caps it, debt repaid percentDiv(15,000e6,
    10500) = (15,000e6 x 10000 + 5250) // 10500 = 14,285,714,286 units, and 714,285,714 units
    ($714.285714) stay on an account with no collateral (Aave v3.0 keeps them there)."""
    o = _crash("oracle")
    rows = [(x.block_number, x.debt_repaid, x.collateral_seized, x.bad_debt_value) for x in o.liquidations]
    assert rows == [(FROM + 5, REPAID, SEIZED, 0), (FROM + 10, REPAID, 5_250_000_000_000_000_000, 0)]
    assert o.summary["bad_debt"]["end_unrealized_oracle_value"] == 0
    r = _crash("reference")
    assert [(x.block_number, x.debt_repaid, x.collateral_seized) for x in r.liquidations] == [
        (FROM + 10, 14_285_714_286, 10 * 10**18)]
    (liq,) = r.liquidations
    assert liq.bad_debt_value == 714_285_714 * UNIT // 10**6 == 71_428_571_400
    assert liq.profit_value == 1_500_000_000_000 - 1_428_571_428_600  # $714.285714 at $1,500 both
    assert r.summary["bad_debt"]["end_unrealized_oracle_value"] == 71_428_571_400
    q = r.summary["liquidations"]
    assert (q["quotes_unprofitable"], q["quotes_paying"]) == (5, 1)


def test_a_bot_trading_at_market_quotes_again_when_the_market_moves() -> None:
    """The oracle says $1,800 from FROM+4 and nothing after; the market is $1,700 (+4..+6), then
    $1,850 at FROM+7. Trading at market, the liquidation first loses, then pays when the market
    rises: the bot reads the liquidatable accounts at that move (as at an oracle answer) and lands
    at FROM+8. The row: debt and collateral at the oracle ($7,500, 4.374999999999999999 x 1800 =
    $7,874.99999999), gas 100,000 x 1 gwei = 0.0001 ETH at the market's $1,850 = $0.185, profit at
    the market 4.374999999999999999 x 1850 = $8,093.74999999 - 7,500 - 0.185."""
    path = [2_000 * UNIT] * 3 + [1_800 * UNIT]
    refs = [Fraction(2_000)] * 3 + [Fraction(1_700)] * 3 + [Fraction(1_850)]
    extra = (f'\n[liquidator]\nreaction_delay_blocks = 1\ngas_units = 100000\npriority_fee_wei = {GWEI}\n'
             f'gas_price_key = "{COLL}"\nprices = "{{}}"\n[metrics]\nnames = ["liquidations"]\n')

    def run(prices: str):  # type: ignore[no-untyped-def]
        inp = inputs(market(8000, 10500, [(10 * 10**18, 15_000 * 10**6)]), path, to_block=FROM + 20,
                     refs=refs, ref_start=Fraction(2_000))
        return run_inputs(scenario(extra=extra.format(prices), to_block=FROM + 20, reference=True),
                          inp).output.liquidations

    (liq,) = run("reference")
    assert liq.block_number == FROM + 8 and liq.decided_block == FROM + 7
    assert (liq.debt_repaid_value, liq.collateral_seized_value, liq.protocol_fee_value) == (
        750_000_000_000, 787_499_999_999, 0)
    assert liq.gas_cost_value == 10**14 * 1_850 * UNIT // 10**18 == 18_500_000
    assert liq.profit_value == 809_374_999_999 - 750_000_000_000 - 18_500_000
    (at_oracle,) = run("oracle")  # it pays at the oracle's $1,800 at once
    assert at_oracle.block_number == FROM + 5
    assert at_oracle.gas_cost_value == 18_000_000
    assert at_oracle.profit_value == 787_499_999_999 - 750_000_000_000 - 18_000_000


def test_prices_reference_without_a_reference_path_is_a_scenario_error_at_its_line() -> None:
    text = ('name = "t"\nchain_id = 31337\nmode = "counterfactual"\n[window]\nfrom_block = 1\nto_block = 9\n'
            '[market]\nprotocol = "aave_v3"\nsource = "m"\n[liquidator]\nreaction_delay_blocks = 1\n'
            'prices = "reference"\n')
    with pytest.raises(ScenarioError) as e:
        parse_scenario(text, "<test>")
    assert (e.value.field, e.value.line) == ("liquidator.prices", 12)
    assert "[reference]" in str(e.value)
    with pytest.raises(ScenarioError) as e2:
        scenario(extra='\n[liquidator]\nprices = "market"\n', reference=True)
    assert e2.value.field == "liquidator.prices"
    ok = scenario(extra='\n[liquidator]\nprices = "reference"\n', reference=True)
    assert ok.liquidator.prices == "reference"


def test_an_absent_prices_keeps_the_scenario_hash() -> None:
    """The hash of a scenario without the option, computed by the code before it existed (commit
    c60fa98), is unchanged; "oracle" spelt out is the same scenario; "reference" is another."""
    lq = f'\n[liquidator]\nreaction_delay_blocks = 1\ngas_units = 100000\ngas_price_key = "{COLL}"\n'
    base = scenario(extra=lq, reference=True)
    assert base.sha256() == "356cc32a2d0bf79d299795412273ace31ec813695e8fb27919d15a300d24c49b"
    assert base.liquidator.prices == "oracle" and '"prices"' not in base.canonical_json()
    explicit = scenario(extra=lq + 'prices = "oracle"\n', reference=True)
    assert explicit.liquidator == base.liquidator and explicit.sha256() == base.sha256()
    ref = scenario(extra=lq + 'prices = "reference"\n', reference=True)
    assert ref.sha256() != base.sha256()


def test_the_report_waterfall_of_a_reference_priced_liquidation_adds_up_to_its_profit() -> None:
    """The report's waterfall goes from the collateral taken (oracle values) down to the profit
    through the repayment and the costs; under prices = "reference" the profit is the trade at the
    market, so those steps ended $437.50 above the profit bar (7,875 - 7,500 = 375 at the oracle
    against -62.50 at a $1,700 market). A 'market vs oracle prices' step of -437.50 closes the gap;
    a row priced at the oracle has no such step."""
    import backtest.outputs as outputs
    from backtest.report.build import _Data, _liquidations
    from backtest.report.model import Plot
    from tests.backtest.test_report_tables import _con, _insert, _row

    def plot(profit: int) -> str:
        con = _con(("liquidations",))
        _insert(con, outputs.LIQUIDATIONS, [_row(
            outputs.LIQUIDATIONS, block_number=101, log_index=None, observed=False, committed=True,
            debt_repaid_value=7_500 * UNIT, collateral_seized_value=7_875 * UNIT, protocol_fee_value=0,
            profit_value=profit)])
        [p] = [b for b in _liquidations(_Data(con, "r1")).blocks
               if isinstance(b, Plot) and b.name.startswith("waterfall_")]
        con.close()
        return p.svg

    svg = plot(-6_250_000_000)
    assert "<title>market vs oracle prices: -438</title>" in svg  # -437.50, shown to the unit
    assert "market vs oracle" not in plot(375 * UNIT)


def test_a_market_move_quotes_again_only_the_accounts_already_liquidatable() -> None:
    """prices = "reference" changes what the trade is worth, not what the bot observes: interest
    (100 % APR) pushes the account under between daily blocks (HF 0.99 at FROM+5, where a
    reference point moves the market $2,000 -> $2,001); as at the oracle prices, the bot first
    observes it at the next oracle answer (FROM+11) and liquidates at FROM+12 (a market move quotes
    again only the accounts in an episode: those it left for not paying at market)."""
    from backtest.clock import Blocks
    from backtest.oracle import RefPoint, Round
    from protocols.fixed_point import RAY
    from tests.backtest.markets import FEED_C

    day = 86_400

    def ts(b: int) -> int:
        return T0 + day * (b - FROM + 1)

    def run(prices: str):  # type: ignore[no-untyped-def]
        inp = inputs(market(8000, 10500, [(10 * 10**18, 15_900 * 10**6)], borrow_rate=RAY), [2_000 * UNIT],
                     to_block=FROM + 20, ref_start=Fraction(2_000))
        inp.blocks = Blocks((n, ts(n), 0, True) for n in range(FROM - 1, FROM + 21))
        inp.rounds = [Round(FEED_C, p * UNIT, 8, ts(b), b, 0, ts(b))
                      for b, p in ((FROM + 1, 2_000), (FROM + 11, 1_999))]
        inp.refs = [RefPoint("COLL/USD", ts(FROM + 5), Fraction(2_001), FROM + 5)]
        extra = f'\n[liquidator]\nprices = "{prices}"\n[metrics]\nnames = ["liquidations"]\n'
        return run_inputs(scenario(extra=extra, to_block=FROM + 20, reference=True), inp).output.liquidations

    for prices in ("oracle", "reference"):
        (liq,) = run(prices)
        assert (liq.block_number, liq.liquidatable_since_block, liq.decided_block) == (
            FROM + 12, FROM + 5, FROM + 11), prices
