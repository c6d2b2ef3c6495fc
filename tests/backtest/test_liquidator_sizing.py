"""How much debt the liquidator model repays when selling the seized collateral has slippage: the
amount that pays most, not always the protocol's maximum. Real ported Aave v3.0 rules
(:mod:`tests.backtest.markets`); expectations from the constant-product formula, worked by hand.

The account: 1,000 ETH collateral (LT 80 %, bonus 5 %, no protocol fee) at $2,000, 1,650,000 USDC
debt: HF = 2,000,000 x 0.8 / 1,650,000 = 0.9697 > 0.95, close factor 50 %, so the protocol's maximum
repays 825,000 USDC for 866,250 USD of ETH (bonus 41,250). Selling that into a constant-product
pool of depth D = 10,000,000 USD loses s^2 / (D + s) = 69,057.6: the maximum loses 27,807.

A sale of s (for s / 1.05 repaid) earns 0.05 s / 1.05 - s^2 / (D + s); its derivative is zero at
(D + s)^2 = 1.05 D^2, s* = D (sqrt(1.05) - 1) = 246,950.77 USD of ETH for 235,191.21 USDC repaid,
profit 11,759.56 - 5,951.50 = 5,808.06 USD."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from math import sqrt
from types import MappingProxyType

from backtest.liquidator import LiquidatorModel
from backtest.scenario import LiquidatorSpec, Slippage
from tests.backtest.markets import ADAPTER, COLL, DEBT, T0, market

UNIT = 10**8
PRICES = {COLL: 2_000 * UNIT, DEBT: UNIT}
D = 10_000_000


def _value(asset: str, amount: int) -> int:
    return amount * PRICES[asset] // 10 ** (18 if asset == COLL else 6)


def _by_hand(repaid_usd: float, depth: float = D) -> float:
    s = repaid_usd * 1.05
    return 0.05 * repaid_usd - s * s / (depth + s)


def test_repays_the_amount_that_pays_most_under_constant_product_slippage() -> None:
    """The model passed type(uint256).max only: the protocol's maximum lost 27,807, so it left the
    account alone, though repaying 235,191 USDC earns 5,808 (a bot sizes its liquidation)."""
    book = market(8000, 10500, [(1_000 * 10**18, 1_650_000 * 10**6)])
    m = LiquidatorModel(LiquidatorSpec(slippage=MappingProxyType({COLL: Slippage(depth=Decimal(D))})), UNIT)
    assert _by_hand(825_000) < -27_000  # the protocol's maximum does not pay
    d = m.decide(ADAPTER, book.state, book.users[0], PRICES, T0, 0, _value)
    assert d is not None
    r_star = D * (sqrt(1.05) - 1) / 1.05
    repaid = d.outcome.debt_repaid / 10**6
    assert abs(repaid - r_star) < 1.0, (repaid, r_star)
    assert d.debt_to_cover == d.outcome.debt_repaid
    assert abs(d.profit_value / UNIT - _by_hand(r_star)) < 0.02, d.profit_value
    # no amount on a grid around it pays more (by hand, same formula)
    assert all(_by_hand(r) <= d.profit_value / UNIT + 0.02 for r in range(1_000, 825_000, 1_000))


def test_repays_the_amount_that_pays_most_under_a_slippage_table() -> None:
    """Table (size USD, bps): (100,000, 100), (1,000,000, 900). Between the points slippage is
    100 + 800 (s - 100,000) / 900,000 bps of s, so profit(s) = 0.05 s / 1.05 - s bps(s) / 10^4
    = s (0.047619 - 11.11 / 10^4) - 0.00088889 s^2 / 10^4, zero derivative at
    s = (476.19 - 11.11) / (2 x 0.00088889) = 261,607 USD (profit 6,083; below with exact fractions)."""
    from fractions import Fraction as F

    table = ((Decimal(100_000), 100), (Decimal(1_000_000), 900))
    book = market(8000, 10500, [(1_000 * 10**18, 1_650_000 * 10**6)])
    m = LiquidatorModel(LiquidatorSpec(slippage=MappingProxyType({COLL: Slippage(table=table)})), UNIT)
    d = m.decide(ADAPTER, book.state, book.users[0], PRICES, T0, 0, _value)
    assert d is not None
    a = F(5, 105)
    slope = F(800, 900_000)  # bps per USD
    s_star = (a * 10_000 - (100 - slope * 100_000)) / (2 * slope)
    assert 100_000 < s_star < 1_000_000

    def profit(s: F) -> F:
        return a * s - s * (100 + slope * (s - 100_000)) / 10_000

    seized = F(d.collateral_seized_value, UNIT)
    assert abs(seized - s_star) < 2, (float(seized), float(s_star))
    assert abs(F(d.profit_value, UNIT) - profit(s_star)) < F(1, 10)
    # the protocol's maximum: 866,250 USD sold at 100 + 800 x 766,250 / 900,000 = 781.1 bps: a loss
    assert profit(F(866_250)) < 0


def _pool_loss(sold_before: Fraction, s: Fraction, depth: Fraction) -> Fraction:
    """Constant product, depth ``depth`` on the asset's side: selling ``s`` after ``sold_before`` in
    the same block receives D^2 / (D + P) - D^2 / (D + P + s) (the other side's reserve D^2 / x),
    worth ``s`` at the oracle price; the loss is the difference."""
    d2 = depth * depth
    return s - (d2 / (depth + sold_before) - d2 / (depth + sold_before + s))


def test_sales_in_one_block_share_the_pool() -> None:
    """Two accounts with the same collateral liquidated in the same block sell into one pool: the
    second sale's slippage is priced after the first. (Each was priced against the full depth, as
    if every sale in a crash block were the first: the slippage of a cascade was understated.)

    ETH falls to $1,800 at FROM+4: A (10 ETH / 15,000 USDC) and B (20 ETH / 30,000 USDC) both reach
    HF 0.96 (close factor 50 %); both land at FROM+5. B repays 15,000 for 8.75 ETH ($15,750), A
    7,500 for 4.375 ETH ($7,875); depth $1,000,000. B pays more, so it goes first."""
    from backtest.api import run_inputs
    from tests.backtest.markets import FROM, inputs, scenario, user

    path = [2_000 * UNIT] * 3 + [1_800 * UNIT] * 12
    book = market(8000, 10500, [(10 * 10**18, 15_000 * 10**6), (20 * 10**18, 30_000 * 10**6)])
    extra = (f'\n[liquidator]\nreaction_delay_blocks = 1\nrepeat_in_block = false\n'
             f'[liquidator.slippage."{COLL}"]\ndepth_usd = 1000000\n')
    liqs = run_inputs(scenario(extra=extra, to_block=FROM + 20), inputs(book, path, to_block=FROM + 20)
                      ).output.liquidations
    assert [(x.block_number, x.user) for x in liqs] == [(FROM + 5, user(1)), (FROM + 5, user(0))]
    depth = Fraction(1_000_000)
    # seized: 15,750 and 7,875 USD of ETH, less a wei each (the protocol's floor, then half-up bonus)
    sb, sa = (Fraction(x.collateral_seized_value, UNIT) for x in liqs)
    assert abs(sb - 15_750) < Fraction(1, 10**6) and abs(sa - 7_875) < Fraction(1, 10**6)
    first = _pool_loss(Fraction(0), sb, depth)    # 244.22
    second = _pool_loss(sb, sa, depth)  # 301.04, not 61.53 in a fresh pool
    assert abs(Fraction(liqs[0].slippage_value, UNIT) - first) <= Fraction(1, UNIT)
    assert abs(Fraction(liqs[1].slippage_value, UNIT) - second) <= Fraction(2, UNIT)
    assert liqs[1].profit_value == (liqs[1].collateral_seized_value - liqs[1].debt_repaid_value
                                    - liqs[1].slippage_value)


def test_a_bundle_stops_where_the_pools_depth_is_spent() -> None:
    """repeat_in_block liquidates an account again in the same block while it pays: each sale was
    priced in a fresh pool, so a $100,000-deep pool took one best-sized sale (~$2,469.5) after
    another in one block as if each were the first. After the first, the same pool pays for no
    further sale (its best cumulative size is spent), so there is one liquidation per block, each
    of D (sqrt(1.05) - 1) = 2,469.51 USD, until the account is healthy (the pool is restored
    between blocks).

    10 ETH / 15,000 USDC, ETH at $1,800 from FROM+4: HF 0.96."""
    from backtest.api import run_inputs
    from tests.backtest.markets import FROM, inputs, scenario

    path = [2_000 * UNIT] * 3 + [1_800 * UNIT] * 30
    book = market(8000, 10500, [(10 * 10**18, 15_000 * 10**6)])
    extra = f'\n[liquidator]\nreaction_delay_blocks = 1\n[liquidator.slippage."{COLL}"]\ndepth_usd = 100000\n'
    liqs = run_inputs(scenario(extra=extra, to_block=FROM + 30), inputs(book, path, to_block=FROM + 30)
                      ).output.liquidations
    assert len(liqs) >= 2
    blocks = [x.block_number for x in liqs]
    assert blocks == list(range(FROM + 5, FROM + 5 + len(liqs)))  # one per block, from FROM+5 on
    s_star = 100_000 * (sqrt(1.05) - 1)
    for x in liqs[:-1]:  # the last one may be smaller (the account ends healthy)
        assert abs(x.collateral_seized_value / UNIT - s_star) < 1.0, x.collateral_seized_value


def test_a_reserve_short_of_liquidity_is_liquidated_as_far_as_it_pays_out() -> None:
    """The collateral reserve holds 1 ETH of underlying (the rest lent out): the protocol's
    maximum (8,250 USDC for 4.33125 ETH) reverts paying the ETH out, and the model left the
    account alone (quotes_reverted), though a liquidation seizing at most 1 ETH goes through, and a
    bot sizes it so. Largest: 1 ETH = 1.05 x cover / 2,000, cover = 1,904.761904 USDC.

    10 ETH / 16,500 USDC at $2,000: HF 0.9697, close factor 50 %."""
    import dataclasses

    book = market(8000, 10500, [(10 * 10**18, 16_500 * 10**6)])
    r = book.state.reserves[COLL]
    book.state.reserves[COLL] = dataclasses.replace(r, a_token_underlying_balance=10**18)
    m = LiquidatorModel(LiquidatorSpec(), UNIT)
    d = m.decide(ADAPTER, book.state, book.users[0], PRICES, T0, 0, _value)
    assert d is not None, m.quotes
    cover_max = 2_000 * 10**6 * 100 // 105  # 1,904.761904 USDC (6 decimals, floored)
    assert cover_max - 2 <= d.outcome.debt_repaid <= cover_max, d.outcome.debt_repaid
    assert 10**18 - 2 * 10**12 <= d.outcome.collateral_seized <= 10**18
    assert d.profit_value > 90 * UNIT  # 5 % of ~1,905 USD


def test_a_liquidation_the_blocks_earlier_sales_made_unprofitable_waits_for_the_next_block() -> None:
    """Depth $300,000: the best single sale is x* = D (sqrt(1.05) - 1) = 7,408.52 USD (profit
    0.05 x* / 1.05 - x*^2 / (D + x*) = 352.79 - 178.54 = 174.24), below both accounts' maximal
    sales ($7,875 and $15,750), so both are quoted at x* with the same profit; A (user 0) goes
    first. In the same block the pool has no room for B: selling x* more loses
    loss(2 x*) - loss(x*) = 697.36 - 178.54 = 518.82 > 352.79, and no smaller sale pays (the
    cumulative best is spent). So B is left at FROM+5 and, observed at its end (one oracle answer
    only, at FROM+4: nothing else would look at it), liquidated at FROM+6 in a restored pool."""
    from backtest.api import run_inputs
    from tests.backtest.markets import FROM, inputs, scenario, user

    path = [2_000 * UNIT] * 3 + [1_800 * UNIT]  # no answer after FROM+4
    book = market(8000, 10500, [(10 * 10**18, 15_000 * 10**6), (20 * 10**18, 30_000 * 10**6)])
    extra = (f'\n[liquidator]\nreaction_delay_blocks = 1\nrepeat_in_block = false\n'
             f'[liquidator.slippage."{COLL}"]\ndepth_usd = 300000\n')
    liqs = run_inputs(scenario(extra=extra, to_block=FROM + 20), inputs(book, path, to_block=FROM + 20)
                      ).output.liquidations
    x_star = 300_000 * (sqrt(1.05) - 1)
    assert [(x.block_number, x.user) for x in liqs[:2]] == [(FROM + 5, user(0)), (FROM + 6, user(1))]
    for x in liqs[:2]:
        assert abs(x.collateral_seized_value / UNIT - x_star) < 1.0
        assert x.profit_value > 0
    assert all(x.profit_value >= 0 for x in liqs)
