"""``protocols.aave_v3`` branches the v3.0.2 chain cannot reach, and its building blocks.

The differential tests prove the v3.0 rules against the bytecode; these pin what they cannot
exercise there: inactive reserves and the price-oracle sentinel, collateral with LT = 0 left
enabled, the v3.1 grace period, the v3.2 e-mode bitmaps and stable-debt removal, contract
panics, caller errors, and the configuration bitmaps.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.aave_v3 import (
    V3_0,
    V3_0_1,
    V3_1,
    V3_2,
    V3_3,
    V3_4,
    V3_5,
    AaveV3Adapter,
    AaveV3State,
    EModeCategory,
    GhoDiscountUnknown,
    RuleSet,
    UserReserve,
    UserState,
)
from protocols.aave_v3 import configuration as C
from protocols.aave_v3.configuration import ReserveConfiguration
from protocols.errors import MissingPrice, ProtocolError
from protocols.fixed_point import RAY, UINT256_MAX, WAD
from tests.protocols.aave_v3_market import decode_reserve_configuration

ADAPTER = AaveV3Adapter()
USER = "0x" + "99" * 20
LIQUIDATOR = "0x" + "ee" * 20


@settings(max_examples=200, deadline=None)
@given(word=st.integers(0, 2**252 - 1))
def test_reserve_configuration_word_round_trip(word: int) -> None:
    cfg = ReserveConfiguration.from_word(word)
    theirs = decode_reserve_configuration(word)
    ours = {"ltv": cfg.ltv, "liquidation_threshold": cfg.liquidation_threshold,
            "liquidation_bonus": cfg.liquidation_bonus, "decimals": cfg.decimals, "active": cfg.active,
            "frozen": cfg.frozen, "borrowing": cfg.borrowing_enabled,
            "stable_borrowing": cfg.stable_borrowing_enabled,
            "paused": cfg.paused, "borrowable_in_isolation": cfg.borrowable_in_isolation,
            "siloed_borrowing": cfg.siloed_borrowing, "flash_loans": cfg.flash_loan_enabled,
            "reserve_factor": cfg.reserve_factor, "borrow_cap": cfg.borrow_cap, "supply_cap": cfg.supply_cap,
            "liquidation_protocol_fee": cfg.liquidation_protocol_fee, "emode_category": cfg.emode_category,
            "unbacked_mint_cap": cfg.unbacked_mint_cap, "debt_ceiling": cfg.debt_ceiling}
    assert ours == theirs
    assert ReserveConfiguration.from_word(cfg.to_word()) == cfg


def test_user_configuration_bitmap() -> None:
    data = C.set_using_as_collateral(C.set_borrowing(0, 3, True), 5, True)
    data = C.set_borrowing(data, 5, True)
    assert C.reserve_ids(data) == [3, 5]
    assert C.is_borrowing(data, 3) and not C.is_using_as_collateral(data, 3)
    assert C.is_using_as_collateral_one(data) and C.get_first_asset_id_by_mask(data, C.COLLATERAL_MASK) == 5
    assert C.get_first_asset_id_by_mask(data, C.BORROWING_MASK) == 3
    assert not C.is_using_as_collateral_one(C.set_using_as_collateral(data, 0, True))
    assert C.set_borrowing(data, 3, False) & C.BORROWING_MASK == 1 << 10
    with pytest.raises(ValueError, match="74"):
        C.set_borrowing(0, 128, True)


# ----- a hand-made market: WETH-like collateral (id 0), USDC-like debt (id 1) -----

WETH, USDC, WBTC = "0x" + "01" * 20, "0x" + "02" * 20, "0x" + "03" * 20
PRICES = {WETH: 2_000 * 10**8, USDC: 10**8, WBTC: 30_000 * 10**8}
TS = 1_700_000_000


def _market(hf_target: float = 0.97) -> AaveV3State:
    """A user with 10 WETH (LT 82.5 %) and USDC debt sized for ``hf_target``; a WBTC reserve
    the user supplies but with LT 0."""
    s = random.Random(0)
    state = ADAPTER.sample(s).state  # borrow the sample's reserves (ids 0..3) and re-key them
    sample_assets = sorted(state.reserves, key=lambda a: state.reserves[a].id)
    fresh = AaveV3State(pool="0x" + "0f" * 20)
    for asset, new, dec, lt in ((sample_assets[0], WETH, 18, 8250), (sample_assets[2], USDC, 6, 7900),
                                (sample_assets[1], WBTC, 8, 0)):
        r = state.reserves[asset]
        cfg = replace(r.configuration, decimals=dec, liquidation_threshold=lt, ltv=min(lt, 8000),
                      liquidation_bonus=10500 if lt else 0, emode_category=0, debt_ceiling=0,
                      liquidation_protocol_fee=1000)
        fresh.add_reserve(replace(r, asset=new, configuration=cfg, last_update_timestamp=TS,
                                  a_token="0xa" + new[3:], variable_debt_token="0xd" + new[3:],
                                  stable_debt_token="0x5" + new[3:], variable_debt_scaled_total_supply=0,
                                  stable_debt_total_principal=0))
    weth, usdc = fresh.reserves[WETH], fresh.reserves[USDC]
    coll_value = 10 * 2_000 * 10**8
    debt_usd = int(coll_value * 0.825 / hf_target)
    debt = debt_usd * 10**6 // 10**8
    config = C.set_using_as_collateral(C.set_borrowing(0, usdc.id, True), weth.id, True)
    config = C.set_using_as_collateral(config, fresh.reserves[WBTC].id, True)
    fresh.users[USER] = UserState(config, 0, {
        WETH: UserReserve(scaled_a_token_balance=10 * 10**18 * RAY // weth.liquidity_index,
                          a_token_previous_index=weth.liquidity_index),
        USDC: UserReserve(scaled_variable_debt=debt * RAY // usdc.variable_borrow_index + 1,
                          variable_debt_previous_index=usdc.variable_borrow_index),
        WBTC: UserReserve(scaled_a_token_balance=10**8, a_token_previous_index=RAY)})
    fresh.reserves[USDC] = replace(usdc, variable_debt_scaled_total_supply=fresh.users[USER].reserve(USDC)
                                   .scaled_variable_debt)
    return fresh


def _liquidate(state: AaveV3State, collateral: str = WETH, debt: str = USDC, amount: int = UINT256_MAX,
               ts: int = TS + 12, prices: dict[str, int] | None = None) -> tuple[bool, str | None]:
    o = ADAPTER.liquidate(state, USER, collateral, debt, amount, prices or PRICES, ts, liquidator=LIQUIDATOR)
    return o.ok, o.revert_reason


def test_lt_zero_collateral_is_ignored_even_if_enabled() -> None:
    state = _market()
    d = ADAPTER.calculate_user_account_data(state, USER, PRICES, TS)
    weth_balance = ADAPTER.positions(state, USER, TS)[0].collateral
    assert d.total_collateral_base == weth_balance * PRICES[WETH] // 10**18
    assert d.avg_liquidation_threshold == 8250  # WBTC (LT 0) adds neither value nor weight
    assert _liquidate(state, collateral=WBTC) == (False, "46")
    health = ADAPTER.account(state, USER, PRICES, TS)
    assert health.liquidatable
    assert health.shortfall == health.debt_value - health.liquidation_threshold_value > 0


def test_gates_in_contract_order() -> None:
    state = _market()
    assert _liquidate(state) == (True, None)
    inactive = _market()
    inactive.reserves[USDC] = replace(inactive.reserves[USDC], configuration=replace(
        inactive.reserves[USDC].configuration, active=False, paused=True))
    assert _liquidate(inactive) == (False, "27")  # before paused
    paused = _market()
    paused.reserves[WETH] = replace(paused.reserves[WETH], configuration=replace(
        paused.reserves[WETH].configuration, paused=True))
    assert _liquidate(paused) == (False, "29")
    assert _liquidate(_market(), collateral="0x" + "77" * 20) == (False, "27")  # not listed
    assert _liquidate(_market(), debt="0x" + "77" * 20) == (False, "execution reverted")
    assert _liquidate(_market(1.2)) == (False, "45")
    assert _liquidate(_market(), amount=0) == (False, "25")  # burns 0 scaled debt


def test_price_oracle_sentinel_only_above_095() -> None:
    state = _market(0.97)
    state.price_oracle_sentinel_allows_liquidation = False
    assert _liquidate(state) == (False, "59")
    state.price_oracle_sentinel_allows_liquidation = True
    assert _liquidate(state) == (True, None)
    deep = _market(0.9)
    deep.price_oracle_sentinel_allows_liquidation = False
    assert _liquidate(deep) == (True, None)


def test_v3_1_liquidation_grace_period() -> None:
    state = _market()
    state.rules = V3_1
    state.reserves[USDC] = replace(state.reserves[USDC], liquidation_grace_period_until=TS + 12)
    assert _liquidate(state, ts=TS + 12) == (False, "97")  # strictly before block.timestamp
    assert _liquidate(state, ts=TS + 13) == (True, None)
    state.rules = replace(V3_1, liquidation_grace_period=False)
    assert _liquidate(state, ts=TS + 12) == (True, None)


@pytest.mark.parametrize("collateral_change", [{"ltv": 0}, {"debt_ceiling": 1_000_000_00}],
                         ids=["ltv_0", "isolated"])
def test_v3_0_1_enables_a_liquidators_received_atokens_without_the_v3_0_2_checks(
        collateral_change: dict[str, int]) -> None:
    # aave-v3-core v1.17.2 (3.0.1) LiquidationLogic._liquidateATokens: a liquidator with no
    # balance gets the collateral enabled if ValidationLogic.validateUseAsCollateral(...), which
    # is true for a user with no collateral at all (no LTV check, no role check). v1.18.0
    # (3.0.2, #820) calls validateAutomaticUseAsCollateral: an isolated asset needs
    # ISOLATED_COLLATERAL_SUPPLIER_ROLE, and validateUseAsCollateral returns false for LTV 0.
    flags = {}
    for rules in (V3_0_1, V3_0):
        state = _market(0.9)
        state.rules = rules
        weth = state.reserves[WETH]
        state.reserves[WETH] = replace(weth, configuration=replace(weth.configuration, **collateral_change))
        o = ADAPTER.liquidate(state, USER, WETH, USDC, UINT256_MAX, PRICES, TS + 12, liquidator=LIQUIDATOR,
                              receive_a_token=True)
        assert o.ok, o.revert_reason
        enabled = [e for e in o.events if e.name == "ReserveUsedAsCollateralEnabled"]
        ADAPTER.commit(state, o)
        flags[rules.version] = (C.is_using_as_collateral(state.user(LIQUIDATOR).configuration, weth.id),
                                [e.args["user"] for e in enabled])
    assert flags == {"3.0.1": (True, [LIQUIDATOR]), "3.0": (False, [])}


def test_v3_0_1_recomputes_rates_with_the_v3_0_strategy() -> None:
    # DefaultReserveInterestRateStrategy and ReserveLogic.updateInterestRates are the same in
    # aave-v3-core v1.17.2 (3.0.1) and v1.18.0 (3.0.2) (git diff -w: formatting only), so a
    # 3.0.1 liquidation emits the rates 3.0.2's does, not the reserves' old ones
    rates = {}
    for rules in (V3_0_1, V3_0):
        state = _market(0.9)
        state.rules = rules
        before = {a: (r.current_liquidity_rate, r.current_variable_borrow_rate)
                  for a, r in state.reserves.items()}
        o = ADAPTER.liquidate(state, USER, WETH, USDC, UINT256_MAX, PRICES, TS + 12, liquidator=LIQUIDATOR)
        assert o.ok, o.revert_reason
        rates[rules.version] = [(e.args["reserve"], e.args["liquidity_rate"], e.args["variable_borrow_rate"])
                                for e in o.events if e.name == "ReserveDataUpdated"]
        assert any((lr, vr) != before[a] for a, lr, vr in rates[rules.version])
    assert rates["3.0.1"] == rates["3.0"]


def test_ethereum_pool_starts_on_v3_0_1() -> None:
    # The Ethereum pool (block 16291127) ran aave-v3-core 1.17.x (3.0.1); its first
    # implementation is set by the proxy's initialize, which emits no Upgraded, so the state
    # must start on 3.0.1 rules, not 3.0.2's.
    state = ADAPTER.new_state(pool="0x87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2")
    assert state.rules is V3_0_1
    assert ADAPTER.new_state(pool="0x" + "12" * 20).rules is V3_0  # an unknown pool: 3.0.2 as before


def _with_gho_percent(state: AaveV3State, user: str, asset: str, percent: int | None) -> None:
    """Name ``asset``'s variable debt token a GhoVariableDebtToken and give ``user`` ``percent``."""
    state.discount_debt_tokens.add(state.reserves[asset].variable_debt_token)
    u = state.users[user]
    state.users[user] = u.with_reserve(asset, replace(u.reserve(asset), discount_percent=percent))


def _gho_balance_of(s: int, prev: int, index: int, percent: int) -> tuple[int, int]:
    """gho-core 51be447 ``GhoVariableDebtToken.balanceOf`` (unchanged since 5dc045b), written out
    from the Solidity: (balance, discount) with ``discount = percentMul(rayMul(s, index) -
    rayMul(s, previousIndex), percent)`` (half up) when the index moved and the percent is not 0."""
    balance = _ray_mul(s, index)
    if index == prev or percent == 0:
        return balance, 0
    discount = ((balance - _ray_mul(s, prev)) * percent + 5_000) // 10_000
    return balance - discount, discount


def _ray_div(a: int, b: int) -> int:
    return (a * RAY + b // 2) // b


@pytest.mark.parametrize("rules", [V3_0_1, V3_0, V3_1, V3_2, V3_3], ids=lambda r: r.version)
@pytest.mark.parametrize("hf", [0.9, 0.97])
def test_gho_liquidation_reads_and_burns_the_discounted_balance(rules: RuleSet, hf: float) -> None:
    """``LiquidationLogic._calculateDebt`` (v3.0.1-v3.2; v3.3's ``userReserveDebt``) reads the
    debt with ``balanceOf``, which GhoVariableDebtToken discounts by the user's stkAAVE percent
    (rebuilt from ``DiscountPercentUpdated``); its ``burn`` burns ``rayDiv(amount) +
    rayDiv(discount)``, or the whole scaled balance when the amount is that balance. Before, the
    replay refused (GhoDiscountUnknown); now the cap, the repaid debt and the burn are the
    token's. Expectations from the Solidity by hand (``_gho_balance_of``): at HF 0.9 the close
    factor is 100 % (the whole discounted debt; the whole scaled debt burned), at 0.97 50 %."""
    state = _market(hf)
    state.rules = rules
    _with_gho_percent(state, USER, USDC, 3_000)
    ur = state.users[USER].reserve(USDC)
    s, prev = ur.scaled_variable_debt, ur.variable_debt_previous_index
    index = _normalized_debt(state, TS + 12)
    debt, discount = _gho_balance_of(s, prev, index, 3_000)
    assert discount > 0 and _ray_mul(s, index) - debt == discount
    o = ADAPTER.liquidate(state, USER, WETH, USDC, UINT256_MAX, PRICES, TS + 12, liquidator=LIQUIDATOR)
    assert o.ok, o.revert_reason
    repaid = debt if hf < 0.95 else (debt * 5_000 + 5_000) // 10_000
    assert o.debt_repaid == repaid
    increase = _ray_mul(s, index) - _ray_mul(s, prev) - discount  # the discounted balanceIncrease
    vtoken = state.reserves[USDC].variable_debt_token
    burns = [e for e in o.events if e.name == "Burn" and e.address == vtoken]
    assert [(e.args["value"], e.args["balance_increase"], e.args["index"]) for e in burns] == [
        (repaid - increase, increase, index)]
    ADAPTER.commit(state, o)
    after = state.users[USER].reserve(USDC)
    if hf < 0.95:
        assert after.scaled_variable_debt == 0 and after.discount_percent in (0, None)
    else:
        left = s - _ray_div(repaid, index) - _ray_div(discount, index)
        assert (after.scaled_variable_debt, after.variable_debt_previous_index) == (left, index)
        assert after.discount_percent is None  # refreshed from the stkAAVE balance, not rebuilt
        assert state.reserves[USDC].variable_debt_scaled_total_supply == left
        with pytest.raises(GhoDiscountUnknown, match=f"{USER}'s debt of {USDC}.*simulated"):
            ADAPTER.liquidate(state, USER, WETH, USDC, UINT256_MAX, PRICES, TS + 24, liquidator=LIQUIDATOR)


def test_gho_debt_in_the_v3_3_health_factor_is_its_discounted_balance() -> None:
    """v3.3 (aave-v3-origin 5431379 ``GenericLogic.calculateUserAccountData``) values a reserve
    without virtual accounting (GHO) at ``balanceOf * price / unit``; v3.0-v3.2 and v3.4 value
    every debt at ``rayMul(scaledBalanceOf, normalizedDebt)``."""
    index = _normalized_debt(_market(0.9), TS + 12)
    for rules, discounted in ((V3_2, False), (V3_3, True), (V3_4, False)):
        plain, gho = _market(0.9), _market(0.9)
        plain.rules = gho.rules = rules
        _with_gho_percent(gho, USER, USDC, 2_500)
        ur = gho.users[USER].reserve(USDC)
        debt, _ = _gho_balance_of(ur.scaled_variable_debt, ur.variable_debt_previous_index, index, 2_500)
        full = _ray_mul(ur.scaled_variable_debt, index)
        assert debt < full
        price = PRICES[USDC]
        gap = price * full // 10**6 - price * debt // 10**6
        a, b = ADAPTER.account(plain, USER, PRICES, TS + 12), ADAPTER.account(gho, USER, PRICES, TS + 12)
        assert a.debt_value - b.debt_value == (gap if discounted else 0), rules.version
    unknown = _market(0.9)
    unknown.rules = V3_3
    _with_gho_percent(unknown, USER, USDC, None)
    with pytest.raises(GhoDiscountUnknown, match="v3.3 rules"):
        ADAPTER.account(unknown, USER, PRICES, TS + 12)
    assert ADAPTER.account(unknown, USER, PRICES, TS).debt_value > 0  # no interest yet: exact


def _ray_mul(a: int, b: int) -> int:
    return (a * b + RAY // 2) // RAY


def _normalized_debt(state: AaveV3State, ts: int) -> int:
    from protocols.aave_v3.reserve_logic import get_normalized_debt

    return get_normalized_debt(state.reserves[USDC], ts, state.rules)


def _normalized_debt_of(state: AaveV3State, asset: str, ts: int) -> int:
    from protocols.aave_v3.reserve_logic import get_normalized_debt

    return get_normalized_debt(state.reserves[asset], ts, state.rules)


def test_known_ethereum_gho_variable_debt_token() -> None:
    state = ADAPTER.new_state(pool="0x87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2")
    assert state.discount_debt_tokens == {"0x786dbff3f1292ae8f92ea68cf93c30b34b1ed04b"}
    assert ADAPTER.new_state(pool="0x" + "12" * 20).discount_debt_tokens == set()


def test_reserve_data_updated_reports_no_stable_rate_from_v3_2() -> None:
    # aave-dao/aave-v3-origin v3.2.0 (7c6023e) ReserveLogic.updateInterestRatesAndVirtualBalance
    # emits ReserveDataUpdated(reserve, liquidityRate, 0, variableRate, ...) and Pool.getReserveData
    # returns currentStableBorrowRate 0 (stable borrowing removed; the storage slot is deprecated).
    # The reserves here still carry a v3.1 stable rate (10 %), as a state replayed across the
    # upgrade does until each reserve's first v3.2 ReserveDataUpdated.
    for rules, stable in ((V3_1, RAY // 10), (V3_2, 0), (V3_3, 0), (V3_5, 0)):
        state = _market(0.9)
        state.rules = rules
        assert state.reserves[USDC].current_stable_borrow_rate == RAY // 10
        o = ADAPTER.liquidate(state, USER, WETH, USDC, UINT256_MAX, PRICES, TS + 12, liquidator=LIQUIDATOR)
        assert o.ok, (rules.version, o.revert_reason)
        updated = [e.args for e in o.events if e.name == "ReserveDataUpdated"]
        assert updated and {a["stable_borrow_rate"] for a in updated} == {stable}, rules.version
        ADAPTER.commit(state, o)
        assert {state.reserves[a].current_stable_borrow_rate for a in (WETH, USDC)} == {stable}, rules.version


def test_close_factor_switches_strictly_above_095() -> None:
    for target, factor in ((0.97, 5000), (0.9, 10000)):
        state = _market(target)
        debt = ADAPTER.positions(state, USER, TS + 12)[1].debt
        o = ADAPTER.liquidate(state, USER, WETH, USDC, UINT256_MAX, PRICES, TS + 12)
        assert o.ok and o.debt_repaid == (debt * factor + 5000) // 10000


def test_v3_2_ignores_stable_debt_and_uses_the_collateral_bitmap() -> None:
    state = _market(0.97)
    u = state.users[USER]
    stable = UserReserve(stable_debt_principal=50_000 * 10**6, stable_rate=RAY // 10,
                         stable_debt_timestamp=TS)
    state.users[USER] = UserState(u.configuration, u.emode_category,
                                  {**u.reserves, USDC: replace(u.reserve(USDC), **{
                                      f: getattr(stable, f) for f in ("stable_debt_principal", "stable_rate",
                                                                      "stable_debt_timestamp")})})
    v30 = ADAPTER.calculate_user_account_data(state, USER, PRICES, TS)
    state.rules = V3_2
    v32 = ADAPTER.calculate_user_account_data(state, USER, PRICES, TS)
    assert v30.total_debt_base == v32.total_debt_base + 50_000 * 10**8
    # e-mode: v3.2 takes the category LT for collateral whose bit is set, ignores the price source
    oracle = "0x" + "0e" * 20
    state.emode_categories[1] = EModeCategory(9000, 9300, 10100, price_source=oracle,
                                              collateral_bitmap=1 << state.reserves[WETH].id)
    state.users[USER] = replace(state.users[USER], emode_category=1)
    in_bitmap = ADAPTER.calculate_user_account_data(state, USER, PRICES, TS)  # no price for `oracle` needed
    assert in_bitmap.avg_liquidation_threshold == 9300
    state.emode_categories[1] = replace(state.emode_categories[1], collateral_bitmap=0)
    assert ADAPTER.calculate_user_account_data(state, USER, PRICES, TS).avg_liquidation_threshold == 8250
    # v3.0 semantics for the same category: by the asset's category id, priced by the category oracle
    state.rules = replace(V3_2, version="3.0", emode_price_source=True, emode_bitmaps=False, stable_debt=True)
    state.reserves[WETH] = replace(state.reserves[WETH], configuration=replace(
        state.reserves[WETH].configuration, emode_category=1))
    with pytest.raises(MissingPrice):
        ADAPTER.calculate_user_account_data(state, USER, PRICES, TS)
    d = ADAPTER.calculate_user_account_data(state, USER, {**PRICES, oracle: 1_000 * 10**8}, TS)
    weth_balance = ADAPTER.positions(state, USER, TS)[0].collateral
    assert d.avg_liquidation_threshold == 9300
    assert d.total_collateral_base == weth_balance * 1_000 * 10**8 // 10**18  # the category's price


def test_emode_bonus_below_100_percent_panics_like_the_contract() -> None:
    state = _market(0.9)
    state.emode_categories[1] = EModeCategory(8000, 8250, 9000)
    state.reserves[WETH] = replace(state.reserves[WETH], configuration=replace(
        state.reserves[WETH].configuration, emode_category=1))
    state.users[USER] = replace(state.users[USER], emode_category=1)
    assert _liquidate(state) == (False, "Panic(0x11)")  # coll - percentDiv(coll, 9000) underflows


def test_caller_errors() -> None:
    state = _market()
    with pytest.raises(MissingPrice):
        ADAPTER.account(state, USER, {WETH: PRICES[WETH]}, TS)
    with pytest.raises(MissingPrice):
        ADAPTER.account(state, USER, {**PRICES, USDC: 0}, TS)
    with pytest.raises(ProtocolError, match="precedes"):
        ADAPTER.liquidate(state, USER, WETH, USDC, 1, PRICES, TS - 1)
    empty = ADAPTER.account(state, "0x" + "12" * 20, {}, TS)
    assert (empty.collateral_value, empty.debt_value, empty.health_factor_wad, empty.liquidatable) == \
        (0, 0, UINT256_MAX, False)


def test_bad_debt_is_the_debt_left_without_collateral() -> None:
    state = _market(0.5)
    state.users[USER] = replace(state.users[USER], configuration=C.set_using_as_collateral(
        state.users[USER].configuration, state.reserves[WBTC].id, False))
    o = ADAPTER.liquidate(state, USER, WETH, USDC, UINT256_MAX, PRICES, TS + 12, liquidator=LIQUIDATOR)
    held = ADAPTER.positions(state, USER, TS + 12)
    assert o.ok and o.collateral_seized + o.protocol_fee == held[0].collateral
    left = ADAPTER.positions(state, USER, TS + 12)[1].debt - o.debt_repaid
    assert abs(o.bad_debt[USDC] - left) <= 2 and set(o.bad_debt) == {USDC}
    ADAPTER.commit(state, o)
    after = ADAPTER.account(state, USER, PRICES, TS + 12)
    assert after.collateral_value == 0 and after.debt_value > 0 and after.health_factor_wad == 0
    assert after.bad_debt_value == after.debt_value


def test_gho_bad_debt_left_by_another_debts_liquidation_is_its_discounted_balance() -> None:
    # v3.0-v3.2 keep a user's debts on the books once its collateral is gone; the outcome's
    # bad_debt reports each at the debt token's balance, which for a GhoVariableDebtToken is
    # discounted by the user's stkAAVE percent (GhoVariableDebtToken.balanceOf). Before, such a
    # GHO debt was refused (GhoDiscountUnknown; before that, reported undiscounted).
    state = _market(0.5)
    state.users[USER] = replace(state.users[USER], configuration=C.set_using_as_collateral(
        state.users[USER].configuration, state.reserves[WBTC].id, False))
    wbtc = state.reserves[WBTC]
    u = state.users[USER]
    # the user also owes 0.01 "WBTC" borrowed at index 1.0 (accruing: the reserve's index is higher)
    assert wbtc.variable_borrow_index > RAY
    owed = replace(u.reserve(WBTC), scaled_variable_debt=10**6, variable_debt_previous_index=RAY)
    config = C.set_borrowing(u.configuration, wbtc.id, True)
    state.users[USER] = UserState(config, 0, {**u.reserves, WBTC: owed})
    o = ADAPTER.liquidate(state, USER, WETH, USDC, UINT256_MAX, PRICES, TS + 12, liquidator=LIQUIDATOR)
    assert o.ok and set(o.bad_debt) == {USDC, WBTC}
    index = _normalized_debt_of(state, WBTC, TS + 12)
    assert o.bad_debt[WBTC] == _ray_mul(10**6, index)
    _with_gho_percent(state, USER, WBTC, 2_000)
    o = ADAPTER.liquidate(state, USER, WETH, USDC, UINT256_MAX, PRICES, TS + 12, liquidator=LIQUIDATOR)
    assert o.bad_debt[WBTC] == _gho_balance_of(10**6, RAY, index, 2_000)[0] < _ray_mul(10**6, index)


def test_account_health_matches_get_user_account_data() -> None:
    s = ADAPTER.sample(random.Random(11))
    for user in s.users:
        h = ADAPTER.account(s.state, user, s.prices, s.timestamp)
        d = ADAPTER.user_account_data(s.state, user, s.prices, s.timestamp)
        assert (h.collateral_value, h.debt_value, h.health_factor_wad) == \
            (d.total_collateral_base, d.total_debt_base, d.health_factor)
        assert h.liquidatable == (d.health_factor < WAD) and h.unit == 10**8


def test_v3_3_gho_deficit_is_reduced_by_the_interest_accumulated_beyond_the_amount_liquidated() -> None:
    """aave-v3-origin v3.3.0 (5431379) ``LiquidationLogic._burnDebtTokens``: when the user has no
    collateral left, the GHO debt not repaid becomes deficit less ``accruedInterest -
    actualDebtToLiquidate`` when the token's ``getBalanceFromInterest`` (the discounted interest
    ``_accrueDebtOnAction`` accumulated, this burn's included) exceeds the amount liquidated; that
    excess goes to ``handleRepayment`` and the liquidation's own ``handleRepayment`` clears the
    rest. Before, the replay refused any v3.3 GHO deficit (GhoDiscountUnknown). By hand from the
    Solidity: deficit = balanceOf - actual - (accumulated + this burn's interest - actual)."""
    for accumulated in (0, 25_000 * 10**6):
        state = _market(0.5)
        state.rules = V3_3
        _with_gho_percent(state, USER, USDC, 1_000)
        u = state.users[USER]
        state.users[USER] = u.with_reserve(USDC, replace(u.reserve(USDC), gho_accrued_interest=accumulated))
        ur = state.users[USER].reserve(USDC)
        s, prev = ur.scaled_variable_debt, ur.variable_debt_previous_index
        index = _normalized_debt(state, TS + 12)
        debt, discount = _gho_balance_of(s, prev, index, 1_000)
        increase = _ray_mul(s, index) - _ray_mul(s, prev) - discount
        o = ADAPTER.liquidate(state, USER, WETH, USDC, UINT256_MAX, PRICES, TS + 12, liquidator=LIQUIDATOR)
        assert o.ok, o.revert_reason
        actual = o.debt_repaid
        assert 0 < actual < debt
        excess = accumulated + increase - actual if accumulated + increase > actual else 0
        assert (excess > 0) == (accumulated > 0)
        assert o.bad_debt == {USDC: debt - actual - excess}
        ADAPTER.commit(state, o)
        assert USDC not in state.users[USER].reserves  # no debt, no percent, no interest left


def test_positions_report_gho_debt_at_the_tokens_discounted_balance() -> None:
    """``positions()`` gives the debt owed per asset (the engine's bad debt of an account left
    without collateral, the liquidator model's cover); for GHO that is GhoVariableDebtToken's
    ``balanceOf`` (what ``repay(max)`` pays and the pool burns), discounted by the user's stkAAVE
    percent. Before, it was rayMul(scaled, index): the discount counted as debt."""
    state = _market(0.9)
    _with_gho_percent(state, USER, USDC, 3_000)
    ur = state.users[USER].reserve(USDC)
    index = _normalized_debt(state, TS + 12)
    debt, discount = _gho_balance_of(ur.scaled_variable_debt, ur.variable_debt_previous_index, index, 3_000)
    assert discount > 0
    got = {p.asset: p.debt for p in ADAPTER.positions(state, USER, TS + 12)}
    assert got[USDC] == debt
    state.rules = V3_4  # a plain token from v3.4
    plain = _ray_mul(ur.scaled_variable_debt, _normalized_debt(state, TS + 12))
    assert {p.asset: p.debt for p in ADAPTER.positions(state, USER, TS + 12)}[USDC] == plain
