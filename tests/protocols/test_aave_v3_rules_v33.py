"""Aave v3.3 / v3.4 / v3.5 liquidation rules against vectors worked out by hand from the sources.

No npm package carries v3.3+ bytecode, so these expected values are derived here, step by step,
from aave-dao/aave-v3-origin ``LiquidationLogic.sol`` / ``GenericLogic.sol`` / ``TokenMath.sol``
at tags v3.3.0 (5431379), v3.4.0 (d7a6412) and v3.5.0 (6138e1f): each expected number is
arithmetic on literals with the contract's rounding written out (``//`` = floor; half-up
``percentMul(x, p) = (x*p + 5000) // 10000``, ``percentDiv(x, p) = (x*10000 + p//2) // p``,
``wadDiv(a, b) = (a*1e18 + b//2) // b``). Everything shared with v3.0 (validation, indices,
token bookkeeping) is proven against the v3.0.2 bytecode in ``test_aave_v3_differential.py``.

Market used throughout (indices = RAY and no time passing, so balances equal scaled balances):
WETH (id 0, 18 dec, $2,000, LTV 80 %, LT 82.5 %, bonus 105 %, protocol fee 10 %),
USDC (id 1, 6 dec, $1, LT 87.5 %, bonus 104.5 %), DAI (id 2, 18 dec, $1, LT 87.5 %, bonus 104.5 %),
e-mode category 1 "stable" (LTV 93 %, LT 95 %, bonus 101 %) with USDC and DAI in its bitmaps.
"""

from __future__ import annotations

from dataclasses import replace

from protocols.aave_v3 import V3_2, V3_3, V3_4, V3_5, AaveV3Adapter, AaveV3State, RuleSet
from protocols.aave_v3.configuration import ReserveConfiguration
from protocols.aave_v3.state import EModeCategory, ReserveData, UserReserve, UserState
from protocols.domain import LiquidationOutcome
from protocols.fixed_point import RAY

ADAPTER = AaveV3Adapter()
TS = 1_750_000_000
POOL = "0x" + "50" * 20
WETH, USDC, DAI = ("0x" + "e1" * 20), ("0x" + "c1" * 20), ("0x" + "d1" * 20)
USER, LIQUIDATOR, TREASURY = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "77" * 20
PRICES = {WETH: 2_000 * 10**8, USDC: 10**8, DAI: 10**8}
E18, E6, E8 = 10**18, 10**6, 10**8


def _market(rules: RuleSet, *, weth_fee: int = 1000) -> AaveV3State:
    state = ADAPTER.new_state(rules=rules, pool=POOL)
    for i, (asset, dec, ltv, lt, bonus, fee) in enumerate((
            (WETH, 18, 8000, 8250, 10500, weth_fee), (USDC, 6, 8500, 8750, 10450, 0),
            (DAI, 18, 8500, 8750, 10450, 0))):
        tag = f"{i:02x}"
        state.add_reserve(ReserveData(
            asset=asset, id=i, configuration=ReserveConfiguration(
                ltv=ltv, liquidation_threshold=lt, liquidation_bonus=bonus, decimals=dec, active=True,
                borrowing_enabled=True, liquidation_protocol_fee=fee),
            last_update_timestamp=TS, a_token="0x" + "a0" * 19 + tag,
            variable_debt_token="0x" + "d0" * 19 + tag, treasury=TREASURY))
    state.emode_categories[1] = EModeCategory(9300, 9500, 10100, label="stable",
                                              collateral_bitmap=0b110, borrowable_bitmap=0b110)
    return state


def _user(state: AaveV3State, *, collateral: dict[str, int], debt: dict[str, int], emode: int = 0,
          index: int = RAY) -> None:
    """Give USER these balances (scaled = amount at index RAY), flags set, totals consistent."""
    config = 0
    reserves: dict[str, UserReserve] = {}
    for asset, amount in collateral.items():
        config |= 1 << (2 * state.reserves[asset].id + 1)
        reserves[asset] = UserReserve(scaled_a_token_balance=amount, a_token_previous_index=index)
    for asset, amount in debt.items():
        config |= 1 << (2 * state.reserves[asset].id)
        ur = reserves.get(asset, UserReserve())
        reserves[asset] = UserReserve(ur.scaled_a_token_balance, ur.a_token_previous_index, amount, index)
        state.reserves[asset] = replace(state.reserves[asset], variable_debt_scaled_total_supply=amount)
    state.users[USER] = UserState(config, emode, reserves)


def _liquidate(state: AaveV3State, collateral: str, debt: str, amount: int = 2**256 - 1, *,
               receive: bool = False, liquidator: str = LIQUIDATOR) -> LiquidationOutcome:
    return ADAPTER.liquidate(state, USER, collateral, debt, amount, PRICES, TS, receive,
                             liquidator=liquidator)


def _events(outcome: LiquidationOutcome, name: str) -> list[dict[str, object]]:
    return [dict(e.args) for e in outcome.events if e.name == name]


# ----- close factor: 50 % of the *total* debt (v3.3) vs 50 % of the reserve debt (v3.2) -----

def test_close_factor_is_half_of_total_debt_value_when_both_positions_exceed_2000() -> None:
    # collateral 2 WETH = 2 * $2,000 = $4,000 (4000e8 base), LT 82.5 %;
    # debts USDC 3,000 ($3,000) + DAI 400 ($400) = $3,400.
    # HF = wadDiv(percentMul(4000e8, 8250), 3400e8) = wadDiv(3300e8, 3400e8) ~ 0.9706 > 0.95.
    hf = (3300 * E8 * E18 + 3400 * E8 // 2) // (3400 * E8)
    assert 95 * 10**16 < hf < E18
    for rules in (V3_2, V3_3):
        state = _market(rules)
        _user(state, collateral={WETH: 2 * E18}, debt={USDC: 3000 * E6, DAI: 400 * E18})
        assert ADAPTER.account(state, USER, PRICES, TS).health_factor_wad == hf
        out = _liquidate(state, WETH, USDC)
        assert out.ok, out.revert_reason
        if rules is V3_2:
            # v3.2: percentMul(reserve debt 3000e6, 50 %) = 1500e6
            expected_debt = (3000 * E6 * 5000 + 5000) // 10000
        else:
            # v3.3: coll reserve $4,000 >= $2,000, USDC debt $3,000 >= $2,000, HF > 0.95:
            # totalDefault = percentMul(3400e8, 5000) = 1700e8 < USDC debt 3000e8, so
            # maxDebt = 1700e8 * 1e6 // 1e8 = 1700e6
            expected_debt = (3400 * E8 * 5000 + 5000) // 10000 * E6 // E8
        assert out.debt_repaid == expected_debt
        # collateral: base = 1e8 * debt * 1e18 // (2000e8 * 1e6); with bonus percentMul(base, 10500)
        base = E8 * expected_debt * E18 // (2000 * E8 * E6)
        with_bonus = (base * 10500 + 5000) // 10000
        # protocol fee 10 % of the bonus part: bonus = c - percentDiv(c, 10500)
        bonus_part = with_bonus - (with_bonus * 10000 + 10500 // 2) // 10500
        fee = (bonus_part * 1000 + 5000) // 10000
        assert out.protocol_fee == fee
        assert out.collateral_seized == with_bonus - fee
        assert not out.bad_debt


def test_close_factor_at_hf_095_exactly_is_100_percent_in_emode() -> None:
    # e-mode 1 (LT 95 %, bonus 101 %): collateral DAI 4,000 ($4,000), debt USDC 4,000 ($4,000).
    # HF = wadDiv(percentMul(4000e8, 9500), 4000e8) = wadDiv(3800e8, 4000e8) = 0.95e18 exactly:
    # not > 0.95, so the whole USDC debt may be liquidated.
    state = _market(V3_3)
    _user(state, collateral={DAI: 4000 * E18}, debt={USDC: 4000 * E6}, emode=1)
    assert ADAPTER.account(state, USER, PRICES, TS).health_factor_wad == \
        (3800 * E8 * E18 + 4000 * E8 // 2) // (4000 * E8) == 95 * 10**16
    out = _liquidate(state, DAI, USDC)
    assert out.ok, out.revert_reason
    # base = 1e8 * 4000e6 * 1e18 // (1e8 * 1e6) = 4000e18; percentMul(4000e18, 10100) = 4040e18
    # > the 4000e18 held: all DAI goes; debt = percentDiv(floor(1e8*4000e18*1e6/(1e8*1e18)), 10100)
    debt_needed = (4000 * E6 * 10000 + 10100 // 2) // 10100
    assert (out.collateral_seized, out.debt_repaid, out.protocol_fee) == (4000 * E18, debt_needed, 0)
    # no collateral left (4000e8 total == 4000e18 * 1e8 // 1e18): the rest of the debt is deficit
    assert dict(out.bad_debt) == {USDC: 4000 * E6 - debt_needed}
    assert _events(out, "DeficitCreated") == [{"user": USER, "debt_asset": USDC,
                                                "amount_created": 4000 * E6 - debt_needed}]


def test_close_factor_just_above_hf_095_is_half_of_total_debt() -> None:
    # same, debt USDC 3,999.999999 (3999999999 units, $3999.999999 = 399999999900 base):
    # HF = wadDiv(3800e8, 399999999900) > 0.95e18, both positions >= $2,000 -> capped:
    # totalDefault = percentMul(399999999900, 5000) = 199999999950; 399999999900 > it, so
    # maxDebt = 199999999950 * 1e6 // 1e8 = 1999999999 (the .5 is floored)
    state = _market(V3_3)
    _user(state, collateral={DAI: 4000 * E18}, debt={USDC: 3999999999}, emode=1)
    hf = (3800 * E8 * E18 + 399999999900 // 2) // 399999999900
    assert ADAPTER.account(state, USER, PRICES, TS).health_factor_wad == hf > 95 * 10**16
    out = _liquidate(state, DAI, USDC)
    assert out.ok, out.revert_reason
    max_debt = (399999999900 * 5000 + 5000) // 10000 * E6 // E8
    assert max_debt == 1999999999
    assert out.debt_repaid == max_debt
    # DAI: base = 1e8 * 1999999999 * 1e18 // (1e8 * 1e6) = 1999999999e12, e-mode bonus 101 %
    assert out.collateral_seized == (1999999999 * 10**12 * 10100 + 5000) // 10000
    assert not out.bad_debt and not _events(out, "DeficitCreated")


# ----- the $2,000 threshold on the collateral reserve, and the $1,000 dust rule -----

def test_collateral_reserve_worth_exactly_2000_is_capped_and_the_cap_leaves_dust() -> None:
    # WETH 1e18 = 1e18 * 2000e8 // 1e18 = 2000e8 base: >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD.
    # totals: collateral 2000e8 + 2000e8 = 4000e8, avgLT = (2000e8*8250 + 2000e8*8750) // 4000e8 = 8500,
    # HF = wadDiv(percentMul(4000e8, 8500), 3400e8) = wadDiv(3400e8, 3400e8) = 1e18 -> not liquidatable.
    # Raise the debt a little: USDC 3,500 -> HF = wadDiv(3400e8, 3500e8) ~ 0.9714 > 0.95.
    state = _market(V3_3)
    _user(state, collateral={WETH: E18, DAI: 2000 * E18}, debt={USDC: 3500 * E6})
    hf = (3400 * E8 * E18 + 3500 * E8 // 2) // (3500 * E8)
    assert ADAPTER.account(state, USER, PRICES, TS).health_factor_wad == hf
    # cap: percentMul(3500e8, 5000) = 1750e8 < 3500e8 -> 1750e6 USDC; WETH for it:
    # base = 1e8*1750e6*1e18 // (2000e8*1e6) = 0.875e18, percentMul(., 10500) = 0.91875e18;
    # left 1e18 - 0.91875e18 = 0.08125e18 -> 0.08125e18 * 2000e8 // 1e18 = 162.5e8 < 1000e8: dust
    out = _liquidate(state, WETH, USDC)
    assert (out.ok, out.revert_reason) == (False, "103")
    # the same under v3.4 is the custom error
    state4 = _market(V3_4)
    _user(state4, collateral={WETH: E18, DAI: 2000 * E18}, debt={USDC: 3500 * E6})
    assert _liquidate(state4, WETH, USDC).revert_reason == "MustNotLeaveDust()"


def test_collateral_reserve_one_wei_under_2000_may_be_taken_whole() -> None:
    # WETH 1e18 - 1 wei: (1e18 - 1) * 2000e8 // 1e18 = 199999999999 < 2000e8 -> no cap: the whole
    # USDC debt 3500e6 may be covered. base = 1e8*3500e6*1e18 // (2000e8*1e6) = 1.75e18,
    # percentMul = 1.8375e18 > balance -> all WETH (1e18 - 1), and the debt it covers is
    # percentDiv(floor(2000e8 * (1e18-1) * 1e6 / (1e8 * 1e18)), 10500) = percentDiv(1999999999, 10500)
    state = _market(V3_3, weth_fee=0)
    _user(state, collateral={WETH: E18 - 1, DAI: 2000 * E18}, debt={USDC: 3500 * E6})
    out = _liquidate(state, WETH, USDC)
    assert out.ok, out.revert_reason
    value = 2000 * E8 * (E18 - 1) * E6 // (E8 * E18)
    assert value == 1999999999
    assert out.collateral_seized == E18 - 1
    assert out.debt_repaid == (value * 10000 + 10500 // 2) // 10500
    # collateral left (DAI) -> no deficit; the collateral flag of WETH is cleared
    assert not out.bad_debt
    assert _events(out, "ReserveUsedAsCollateralDisabled") == [{"reserve": WETH, "user": USER}]


def _dust_market(rules: RuleSet, debt: int = 9000 * E6) -> AaveV3State:
    # collateral 5 WETH ($10,000, LT 82.5 %), debt USDC 9,000: HF = wadDiv(8250e8, 9000e8) ~ 0.917
    # <= 0.95 -> the whole debt may be covered (no cap).
    state = _market(rules, weth_fee=0)
    _user(state, collateral={WETH: 5 * E18}, debt={USDC: debt})
    return state


def test_dust_rule_debt_left_exactly_1000_passes() -> None:
    # cover 8,000 USDC: debt left 1000e6 -> 1000e6 * 1e8 // 1e6 = 1000e8 >= MIN_LEFTOVER_BASE;
    # WETH seized percentMul(1e8*8000e6*1e18 // (2000e8*1e6), 10500) = percentMul(4e18, 10500) = 4.2e18,
    # left 0.8e18 -> 1600e8 >= 1000e8
    out = _liquidate(_dust_market(V3_3), WETH, USDC, 8000 * E6)
    assert out.ok, out.revert_reason
    assert (out.debt_repaid, out.collateral_seized) == (8000 * E6, (4 * E18 * 10500 + 5000) // 10000)


def test_dust_rule_debt_left_one_unit_under_1000_reverts() -> None:
    # cover 8,000.000001: debt left 999999999 -> 99999999900 base < 1000e8 -> MUST_NOT_LEAVE_DUST
    # (collateral left: 5e18 - percentMul(4000000000500000000, 10500) is still worth > $1,000)
    assert 999999999 * E8 // E6 < 1000 * E8
    out = _liquidate(_dust_market(V3_3), WETH, USDC, 8000 * E6 + 1)
    assert (out.ok, out.revert_reason) == (False, "103")


def test_dust_rule_collateral_left_exactly_1000_passes_and_under_reverts() -> None:
    # collateral 5 WETH, debt 9,700 USDC (HF ~ 0.85; debt left stays > $1,000). Leave ~0.5 WETH:
    # seize 4.5e18 = percentMul(base, 10500) with base = 4.5e18 * 10000 / 10500 -> pick debt d
    # with base = 1e8*d*1e18 // (2000e8*1e6) = d * 5e8 (wei per USDC unit): d = 8571428571 gives
    # base 4285714285500000000, percentMul(., 10500) = (4285714285500000000*10500 + 5000)//10000
    d = 8571428571
    base = E8 * d * E18 // (2000 * E8 * E6)
    seized = (base * 10500 + 5000) // 10000
    left_value = (5 * E18 - seized) * 2000 * E8 // E18
    assert left_value >= 1000 * E8  # 4499999999775000000 seized -> $1,000.000000045 left
    assert (9700 * E6 - d) * E8 // E6 >= 1000 * E8
    out = _liquidate(_dust_market(V3_3, 9700 * E6), WETH, USDC, d)
    assert out.ok and out.collateral_seized == seized
    # one more USDC unit: base grows by 5e8 wei, seized by percentMul -> the left value drops below
    base2 = E8 * (d + 1) * E18 // (2000 * E8 * E6)
    seized2 = (base2 * 10500 + 5000) // 10000
    assert (5 * E18 - seized2) * 2000 * E8 // E18 < 1000 * E8
    assert _liquidate(_dust_market(V3_3, 9700 * E6), WETH, USDC, d + 1).revert_reason == "103"


def test_v35_rounds_the_leftover_debt_value_up() -> None:
    # debt DAI (18 dec): collateral 5 WETH, debt DAI 9,000; cover 8,000 DAI + 1 wei: left
    # 1000e18 - 1 wei. v3.4: (1000e18 - 1) * 1e8 // 1e18 = 99999999999 < 1000e8 -> dust revert;
    # v3.5: mulDivCeil(1000e18 - 1, 1e8, 1e18) = 100000000000 >= 1000e8 -> allowed.
    assert (1000 * E18 - 1) * E8 // E18 == 99999999999
    assert -(-(1000 * E18 - 1) * E8 // E18) == 1000 * E8
    outs = {}
    for rules in (V3_4, V3_5):
        state = _market(rules, weth_fee=0)
        _user(state, collateral={WETH: 5 * E18}, debt={DAI: 9000 * E18})
        outs[rules.version] = _liquidate(state, WETH, DAI, 8000 * E18 + 1)
    assert outs["3.4"].revert_reason == "MustNotLeaveDust()"
    assert outs["3.5"].ok and outs["3.5"].debt_repaid == 8000 * E18 + 1


# ----- deficit accounting -----

def test_deficit_for_every_debt_of_a_user_left_without_collateral() -> None:
    # collateral 0.25 WETH ($500), debts USDC 600 and DAI 500: HF = wadDiv(percentMul(500e8, 8250),
    # 1100e8) = 0.375 -> whole USDC debt. base = 1e8*600e6*1e18 // (2000e8*1e6) = 0.3e18,
    # percentMul(0.3e18, 10500) = 0.315e18 > 0.25e18 -> all WETH; debt covered =
    # percentDiv(floor(2000e8*0.25e18*1e6/(1e8*1e18)) = 500e6, 10500) (half-up, v3.3)
    state = _market(V3_3)
    _user(state, collateral={WETH: E18 // 4}, debt={USDC: 600 * E6, DAI: 500 * E18})
    out = _liquidate(state, WETH, USDC)
    assert out.ok, out.revert_reason
    debt_needed = (500 * E6 * 10000 + 10500 // 2) // 10500
    assert debt_needed == 476190476
    # fee: 10 % of (0.25e18 - percentDiv(0.25e18, 10500))
    bonus_part = E18 // 4 - (E18 // 4 * 10000 + 10500 // 2) // 10500
    fee = (bonus_part * 1000 + 5000) // 10000
    assert (out.debt_repaid, out.collateral_seized, out.protocol_fee) == (debt_needed, E18 // 4 - fee, fee)
    # collateralToLiquidateInBaseCurrency = 0.25e18 * 2000e8 // 1e18 = 500e8 == total collateral:
    # USDC burns all 600e6 (deficit 600e6 - 476190476), then _burnBadDebt burns DAI 500e18
    usdc_deficit = 600 * E6 - debt_needed
    assert dict(out.bad_debt) == {USDC: usdc_deficit, DAI: 500 * E18}
    assert _events(out, "DeficitCreated") == [
        {"user": USER, "debt_asset": USDC, "amount_created": usdc_deficit},
        {"user": USER, "debt_asset": DAI, "amount_created": 500 * E18}]
    names = [e.name for e in out.events]
    # contract order: collateral flag, USDC burn + deficit + rates, WETH rates + burn, fee transfer,
    # DAI burn + deficit + rates, LiquidationCall
    assert names == ["ReserveUsedAsCollateralDisabled", "Transfer", "Burn", "DeficitCreated",
                     "ReserveDataUpdated", "ReserveDataUpdated", "Transfer", "Burn", "Transfer",
                     "BalanceTransfer", "Transfer", "Burn", "DeficitCreated", "ReserveDataUpdated",
                     "LiquidationCall"]
    ADAPTER.commit(state, out)
    assert state.reserves[USDC].deficit == usdc_deficit and state.reserves[DAI].deficit == 500 * E18
    assert state.user(USER).configuration == 0  # no collateral, no borrowing flags
    assert not state.user(USER).reserves
    # v3.2 keeps the debt on the books instead
    state2 = _market(V3_2)
    _user(state2, collateral={WETH: E18 // 4}, debt={USDC: 600 * E6, DAI: 500 * E18})
    out2 = _liquidate(state2, WETH, USDC)
    assert out2.debt_repaid == debt_needed  # same percentDiv half-up
    assert dict(out2.bad_debt) == {DAI: 500 * E18, USDC: 600 * E6 - debt_needed}
    assert not _events(out2, "DeficitCreated")


def test_v34_and_v35_differ_by_one_wei_in_the_debt_a_capped_collateral_covers() -> None:
    # collateral 0.5 WETH ($1,000), debt USDC 1,100: all WETH goes (percentMul(0.55e18, 10500) > 0.5e18);
    # the debt it covers from value = 2000e8 * 0.5e18 * 1e6 // (1e8 * 1e18) = 1000e6:
    # v3.4 percentDiv half-up: (1000e6*10000 + 5250) // 10500 = 952380952 (.38 rounds down)
    # v3.5 percentDivCeil:     ceil(1000e6*10000 / 10500)      = 952380953
    v34 = (1000 * E6 * 10000 + 10500 // 2) // 10500
    v35 = -(-(1000 * E6 * 10000) // 10500)
    assert v35 == v34 + 1
    repaid = {}
    for rules in (V3_4, V3_5):
        state = _market(rules, weth_fee=0)
        _user(state, collateral={WETH: E18 // 2}, debt={USDC: 1100 * E6})
        out = _liquidate(state, WETH, USDC)
        assert out.ok, out.revert_reason
        repaid[rules.version] = out.debt_repaid
        assert dict(out.bad_debt) == {USDC: 1100 * E6 - out.debt_repaid}
    assert repaid == {"3.4": v34, "3.5": v35}


def test_v35_balances_floor_collateral_and_ceil_debt() -> None:
    # index 1.5 RAY on WETH (liquidity) and 1.1 RAY on USDC (borrow): scaled 1 aWETH wei is
    # 1.5 wei -> v3.4 half-up 2, v3.5 floor 1; scaled 3 vUSDC units are 3.3 -> half-up 3, ceil 4
    for rules, coll, debt in ((V3_4, 2, 3), (V3_5, 1, 4)):
        state = _market(rules)
        state.reserves[WETH] = replace(state.reserves[WETH], liquidity_index=3 * RAY // 2)
        state.reserves[USDC] = replace(state.reserves[USDC], variable_borrow_index=11 * RAY // 10)
        _user(state, collateral={WETH: 1}, debt={USDC: 3})
        pos = {p.asset: p for p in ADAPTER.positions(state, USER, TS)}
        assert (pos[WETH].collateral, pos[USDC].debt) == (coll, debt)
        acct = ADAPTER.account(state, USER, PRICES, TS)
        # collateral value coll * 2000e8 // 1e18 = 0 either way; debt value: v3.4 floor(3*1e8/1e6) = 300,
        # v3.5 mulDivCeil(4, 1e8, 1e6) = 400
        assert acct.debt_value == debt * E8 // E6


def test_v35_health_factor_skips_the_floored_average_threshold() -> None:
    # two collaterals: WETH 0.5e18 ($1,000, LT 8250) and
    # DAI 333.33333333e18 ($333.33333333 = 33333333333 base, LT 8750); debt USDC 1,300.
    # sum = 1000e8*8250 + 33333333333*8750; total = 133333333333
    # v3.4: avgLT = sum // total; HF = wadDiv(percentMul(total, avgLT), 1300e8)
    # v3.5: HF = wadDiv(sum, 1300e8) // 10000
    total = 1000 * E8 + 33333333333
    s = 1000 * E8 * 8250 + 33333333333 * 8750
    avg = s // total
    hf34 = ((total * avg + 5000) // 10000 * E18 + 1300 * E8 // 2) // (1300 * E8)
    hf35 = (s * E18 + 1300 * E8 // 2) // (1300 * E8) // 10000
    assert hf34 != hf35
    for rules, hf in ((V3_4, hf34), (V3_5, hf35)):
        state = _market(rules)
        _user(state, collateral={WETH: E18 // 2, DAI: 33333333333 * 10**10}, debt={USDC: 1300 * E6})
        assert ADAPTER.account(state, USER, PRICES, TS).health_factor_wad == hf


# ----- v3.4 errors -----

def test_v34_reports_custom_errors_and_forbids_self_liquidation() -> None:
    for rules, healthy, self_liq in ((V3_3, "45", True), (V3_4, "HealthFactorNotBelowThreshold()", False)):
        state = _market(rules)
        _user(state, collateral={WETH: 5 * E18}, debt={USDC: 1000 * E6})  # HF = 8250/1000 > 1
        assert _liquidate(state, WETH, USDC).revert_reason == healthy
        state = _market(rules)
        _user(state, collateral={WETH: 5 * E18}, debt={USDC: 9000 * E6})
        out = _liquidate(state, WETH, USDC, 1000 * E6, liquidator=USER)
        assert out.ok is self_liq
        if not self_liq:
            assert out.revert_reason == "SelfLiquidation()"


# ----- isolation mode and receiveAToken under v3.3 -----

def test_isolated_debt_drops_by_the_repaid_amount_only() -> None:
    # WETH is an isolated collateral (debt ceiling set), its isolation total debt 600.00 (2 decimals).
    # The liquidation of the deficit test repays 476190476 USDC units and writes the rest off:
    # repaid in ceiling units = 476190476 // 10**(6 - 2) = 47619 -> total 60000 - 47619 = 12381.
    state = _market(V3_3)
    weth = state.reserves[WETH]
    state.reserves[WETH] = replace(weth, configuration=replace(weth.configuration, debt_ceiling=1_000_000),
                                   isolation_mode_total_debt=60000)
    _user(state, collateral={WETH: E18 // 4}, debt={USDC: 600 * E6})
    out = _liquidate(state, WETH, USDC)
    assert out.ok, out.revert_reason
    assert out.debt_repaid == (500 * E6 * 10000 + 10500 // 2) // 10500 == 476190476
    assert _events(out, "IsolationModeTotalDebtUpdated") == [
        {"asset": WETH, "total_debt": 60000 - 476190476 // 10**4}]
    assert dict(out.bad_debt) == {USDC: 600 * E6 - 476190476}


def test_receive_a_token_moves_scaled_balance_and_enables_collateral() -> None:
    # the close-factor case under v3.3 (1700e6 USDC repaid, 0.8925e18 WETH incl. the fee), aTokens
    # to the liquidator: at index RAY it receives exactly the seized amount as scaled balance
    state = _market(V3_3)
    _user(state, collateral={WETH: 2 * E18}, debt={USDC: 3000 * E6, DAI: 400 * E18})
    out = _liquidate(state, WETH, USDC, receive=True)
    assert out.ok, out.revert_reason
    with_bonus = (E8 * 1700 * E6 * E18 // (2000 * E8 * E6) * 10500 + 5000) // 10000
    fee = ((with_bonus - (with_bonus * 10000 + 10500 // 2) // 10500) * 1000 + 5000) // 10000
    assert out.collateral_seized == with_bonus - fee
    assert _events(out, "ReserveUsedAsCollateralEnabled") == [{"reserve": WETH, "user": LIQUIDATOR}]
    ADAPTER.commit(state, out)
    liq = state.user(LIQUIDATOR)
    assert liq.reserve(WETH).scaled_a_token_balance == with_bonus - fee
    assert liq.configuration == 1 << 1  # WETH (id 0) collateral bit
    assert state.user(TREASURY).reserve(WETH).scaled_a_token_balance == fee
    assert state.user(USER).reserve(WETH).scaled_a_token_balance == 2 * E18 - with_bonus


# ----- the events rebuild of a v3.3+ liquidation agrees with the contract's storage -----

def _rebuild_from_events(state: AaveV3State, outcome: LiquidationOutcome) -> None:
    """Apply the liquidation's events (as ingest would decode them; ERC-20 ``Transfer`` is not
    ingested) to ``state`` through the events rebuild."""
    from protocols.aave_v3 import events as ev
    from protocols.domain import EventRef, ProtocolEvent

    token_sigs = {"Mint": ev._SCALED_MINT, "Burn": ev._SCALED_BURN, "BalanceTransfer": ev._BALANCE_TRANSFER}
    for i, e in enumerate(outcome.events):
        if e.name == "Transfer":
            continue
        sig = ev._POOL[e.name] if e.role == "pool" else token_sigs[e.name]
        ADAPTER.apply(state, ProtocolEvent(e.name, sig, e.address, e.role, dict(e.args),
                                           EventRef(1, i, "0x" + "00" * 32, TS)))


def test_events_rebuild_clears_the_borrowing_flag_of_every_debt_burned_into_deficit() -> None:
    # the deficit case above: _burnBadDebt burns the user's DAI debt into deficit and clears its
    # borrowing flag (v3.3 _burnDebtTokens: outstandingDebt = 0 -> setBorrowing(false); v3.4+:
    # noMoreDebt). The events of that (DAI Burn, DeficitCreated) carry no flag change, and the
    # LiquidationCall names only USDC: the rebuild must clear DAI's flag on DeficitCreated, else
    # the user keeps a borrowing flag with no debt (a later v3.3 liquidation then touches DAI:
    # updateState, ReserveDataUpdated, as the chain does not).
    for rules in (V3_3, V3_4, V3_5):
        state = _market(rules)
        _user(state, collateral={WETH: E18 // 4}, debt={USDC: 600 * E6, DAI: 500 * E18})
        rebuilt = _market(rules)
        _user(rebuilt, collateral={WETH: E18 // 4}, debt={USDC: 600 * E6, DAI: 500 * E18})
        out = _liquidate(state, WETH, USDC)
        assert out.ok, out.revert_reason
        assert _events(out, "DeficitCreated")[1]["debt_asset"] == DAI
        ADAPTER.commit(state, out)
        assert state.user(USER).configuration == 0
        _rebuild_from_events(rebuilt, out)
        assert rebuilt.user(USER).configuration == 0, rules.version
        assert rebuilt.users == state.users
        assert {a: r.deficit for a, r in rebuilt.reserves.items()} == \
            {a: r.deficit for a, r in state.reserves.items()}


def test_events_rebuild_updates_the_collateral_reserve_of_a_v35_receive_a_token_liquidation() -> None:
    # v3.5 executeLiquidationCall runs collateralReserve.updateState first; with receiveAToken
    # nothing then calls updateInterestRates on it, so no ReserveDataUpdated announces its new
    # index and timestamp (the aTokens' BalanceTransfer is at that index). Rates: WETH liquidity
    # 5 % and variable 8 % a year, last updated a day before the liquidation, some WETH borrowed
    # so the borrow index accrues too. Before v3.5 the collateral reserve is not updated at all.
    for rules, updated in ((V3_4, False), (V3_5, True)):
        def market(rules: RuleSet = rules) -> AaveV3State:
            s = _market(rules)
            s.reserves[WETH] = replace(s.reserves[WETH], current_liquidity_rate=5 * RAY // 100,
                                       current_variable_borrow_rate=8 * RAY // 100,
                                       last_update_timestamp=TS - 86_400,
                                       variable_debt_scaled_total_supply=10 * E18)
            _user(s, collateral={WETH: 2 * E18}, debt={USDC: 3000 * E6, DAI: 400 * E18})
            return s
        state, rebuilt = market(), market()
        out = _liquidate(state, WETH, USDC, receive=True)
        assert out.ok, out.revert_reason
        ADAPTER.commit(state, out)
        assert (state.reserves[WETH].last_update_timestamp == TS) is updated
        _rebuild_from_events(rebuilt, out)
        for field in ("liquidity_index", "variable_borrow_index", "last_update_timestamp"):
            assert getattr(rebuilt.reserves[WETH], field) == getattr(state.reserves[WETH], field), \
                (rules.version, field)


# ----- v3.4+ compounding -----

def test_v34_variable_debt_compounds_with_the_v34_math_utils_formula() -> None:
    # MathUtils.calculateCompoundedInterest, v3.0-v3.3: exp = dt, basePowerTwo = rayMul(r, r) //
    # YEAR**2, basePowerThree = rayMul(basePowerTwo, r) // YEAR, RAY + r*exp//YEAR +
    # exp*(exp-1)*b2//2 + exp*(exp-1)*(exp-2)*b3//6; v3.4.0 (d7a6412) onwards: x = r*exp//YEAR,
    # RAY + x + rayMul(x, x//2 + rayMul(x, x//6)) (rayMul half-up).
    # DAI borrowed at 8 % a year, index 1.05 RAY, last updated one day (86,400 s) before TS.
    year, dt, rate, index = 365 * 86_400, 86_400, 8 * RAY // 100, 105 * RAY // 100

    def ray_mul(a: int, b: int) -> int:
        return (a * b + RAY // 2) // RAY

    b2 = ray_mul(rate, rate) // (year * year)
    b3 = ray_mul(b2, rate) // year
    old = RAY + rate * dt // year + dt * (dt - 1) * b2 // 2 + dt * (dt - 1) * (dt - 2) * b3 // 6
    x = rate * dt // year
    new = RAY + x + ray_mul(x, x // 2 + ray_mul(x, x // 6))
    assert new - old == 312990734143532
    scaled = 3000 * E18 * RAY // index
    for rules, growth in ((V3_3, old), (V3_4, new), (V3_5, new)):
        state = _market(rules)
        _user(state, collateral={WETH: 2 * E18}, debt={DAI: scaled}, index=index)
        state.reserves[DAI] = replace(state.reserves[DAI], variable_borrow_index=index,
                                       current_variable_borrow_rate=rate, last_update_timestamp=TS - dt)
        next_index = ray_mul(growth, index)
        debt = {p.asset: p.debt for p in ADAPTER.positions(state, USER, TS)}[DAI]
        balance = -(-scaled * next_index // RAY) if rules is V3_5 else ray_mul(scaled, next_index)
        assert debt == balance, rules.version
        # a liquidation's updateState writes that index (its ReserveDataUpdated)
        weth = UserReserve(scaled_a_token_balance=E18, a_token_previous_index=RAY)
        state.users[USER] = replace(state.users[USER], reserves={**state.users[USER].reserves, WETH: weth})
        out = _liquidate(state, WETH, DAI)
        assert out.ok, out.revert_reason
        dai_updates = [a for a in _events(out, "ReserveDataUpdated") if a["reserve"] == DAI]
        assert dai_updates[0]["variable_borrow_index"] == next_index, rules.version
