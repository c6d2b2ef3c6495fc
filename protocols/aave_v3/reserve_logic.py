"""Aave v3 reserve accounting: normalized income/debt, index updates, treasury accrual, rates.

Source: aave/aave-v3-core @ 724a9ef (v3.0.2) ``contracts/protocol/libraries/logic/ReserveLogic.sol``
(``getNormalizedIncome``, ``getNormalizedDebt``, ``cache``, ``updateState``, ``_updateIndexes``,
``_accrueToTreasury``, ``updateInterestRates``), ``contracts/protocol/pool/
DefaultReserveInterestRateStrategy.sol`` (``calculateInterestRates``) and the balance views of
``tokenization/StableDebtToken.sol`` (``balanceOf``, ``_calcTotalSupply``). Math:
``protocols.fixed_point`` (WadRayMath, PercentageMath, MathUtils ports; half-up unless named).

Every function takes the block timestamp explicitly (``block.timestamp`` in the contract).
v3.1+ replaced the rate strategy (``DefaultReserveInterestRateStrategyV2``) and uses the
virtual balance; that strategy is not ported: without a v3.0 strategy a simulated action keeps
the current rates (the replay gets real rates from ``ReserveDataUpdated``).

v3.4 (aave-dao/aave-v3-origin v3.4.0, d7a6412) ``math/MathUtils.sol``: a new
``calculateCompoundedInterest`` (:func:`compounded_interest`, by ``RuleSet.compounding_v34``),
used for the variable borrow index here and for every debt balance between updates.

v3.5 (aave-dao/aave-v3-origin v3.5.0, 6138e1f): ``helpers/TokenMath.sol`` (aToken balance =
``rayMulFloor``, debt balance = ``rayMulCeil``; see :func:`a_token_balance`,
:func:`variable_debt_balance`) and ``ReserveLogic._accrueToTreasury`` (interest floored,
scaled down with ``rayDivFloor``). ``updateState`` skips when the *cache's* timestamp is the
block's, as the contract does (v3.5 caches the collateral reserve before updating the debt
reserve, so a same-asset liquidation accrues the treasury's share twice, as on chain).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..fixed_point import (
    PERCENTAGE_FACTOR,
    RAY,
    ArithmeticOverflow,
    compounded_interest_v3,
    compounded_interest_v34,
    linear_interest_v3,
    percent_mul_half_up,
    ray_div_floor,
    ray_div_half_up,
    ray_mul_ceil,
    ray_mul_floor,
    ray_mul_half_up,
    wad_to_ray,
)
from .configuration import ReserveConfiguration
from .state import AaveV3State, InterestRateStrategy, ReserveData, RuleSet, TxContext, UserReserve

__all__ = [
    "a_token_balance",
    "variable_debt_balance",
    "get_normalized_income",
    "get_normalized_debt",
    "compounded_interest",
    "cached_normalized_income",
    "cached_normalized_debt",
    "stable_debt_balance_of",
    "stable_debt_total_supply",
    "ReserveCache",
    "cache",
    "update_state",
    "update_interest_rates",
    "calculate_interest_rates",
]


def a_token_balance(scaled: int, index: int, rules: RuleSet) -> int:
    """``AToken.balanceOf`` from a scaled balance: ``rayMul`` half-up, v3.5+ ``rayMulFloor``."""
    return ray_mul_floor(scaled, index) if rules.directional_rounding else ray_mul_half_up(scaled, index)


def variable_debt_balance(scaled: int, index: int, rules: RuleSet) -> int:
    """``VariableDebtToken.balanceOf`` from a scaled balance: ``rayMul`` half-up, v3.5+
    ``rayMulCeil`` (a non-zero scaled debt is never worth 0)."""
    return ray_mul_ceil(scaled, index) if rules.directional_rounding else ray_mul_half_up(scaled, index)


def get_normalized_income(reserve: ReserveData, timestamp: int) -> int:
    """``ReserveLogic.getNormalizedIncome``: the liquidity index accrued linearly to
    ``timestamp`` (RAY). aToken balance = ``rayMul(scaled, this)``."""
    if reserve.last_update_timestamp == timestamp:
        return reserve.liquidity_index
    return ray_mul_half_up(linear_interest_v3(reserve.current_liquidity_rate, reserve.last_update_timestamp,
                                              timestamp), reserve.liquidity_index)


def compounded_interest(rules: RuleSet, rate: int, last_update_ts: int, current_ts: int) -> int:
    """``MathUtils.calculateCompoundedInterest`` of the release ``rules`` describe (v3.4+
    changed the formula, see :func:`~protocols.fixed_point.compounded_interest_v34`)."""
    if rules.compounding_v34:
        return compounded_interest_v34(rate, last_update_ts, current_ts)
    return compounded_interest_v3(rate, last_update_ts, current_ts)


def get_normalized_debt(reserve: ReserveData, timestamp: int, rules: RuleSet) -> int:
    """``ReserveLogic.getNormalizedDebt``: the variable borrow index compounded to ``timestamp``
    (RAY) by the ``rules``' formula. Variable debt = ``rayMul(scaled, this)``."""
    if reserve.last_update_timestamp == timestamp:
        return reserve.variable_borrow_index
    return ray_mul_half_up(compounded_interest(rules, reserve.current_variable_borrow_rate,
                                               reserve.last_update_timestamp, timestamp),
                           reserve.variable_borrow_index)


def cached_normalized_income(state: AaveV3State, reserve: ReserveData, timestamp: int) -> int:
    """:func:`get_normalized_income`, memoized in ``state.index_cache`` for this reserve record
    and timestamp (records are replaced on every change, so identity keys the cache)."""
    key = (reserve.asset, 0)
    hit = state.index_cache.get(key)
    if hit is not None and hit[0] is reserve and hit[1] == timestamp:
        return hit[2]
    value = get_normalized_income(reserve, timestamp)
    state.index_cache[key] = (reserve, timestamp, value)
    return value


def cached_normalized_debt(state: AaveV3State, reserve: ReserveData, timestamp: int) -> int:
    """:func:`get_normalized_debt`, memoized like :func:`cached_normalized_income`."""
    key = (reserve.asset, 1)
    hit = state.index_cache.get(key)
    if hit is not None and hit[0] is reserve and hit[1] == timestamp:
        return hit[2]
    value = get_normalized_debt(reserve, timestamp, state.rules)
    state.index_cache[key] = (reserve, timestamp, value)
    return value


def stable_debt_balance_of(ur: UserReserve, timestamp: int) -> int:
    """``StableDebtToken.balanceOf``: principal compounded at the user's stable rate since the
    user's last stable-debt action."""
    if ur.stable_debt_principal == 0:
        return 0
    return ray_mul_half_up(ur.stable_debt_principal,
                           compounded_interest_v3(ur.stable_rate, ur.stable_debt_timestamp, timestamp))


def stable_debt_total_supply(reserve: ReserveData, timestamp: int) -> int:
    """``StableDebtToken._calcTotalSupply(avgRate)``: total principal compounded at the average
    stable rate since the supply's last update."""
    if reserve.stable_debt_total_principal == 0:
        return 0
    return ray_mul_half_up(reserve.stable_debt_total_principal,
                           compounded_interest_v3(reserve.average_stable_rate,
                                                  reserve.stable_debt_total_supply_timestamp, timestamp))


@dataclass(slots=True)
class ReserveCache:
    """``DataTypes.ReserveCache``: a reserve's values at the start of an action (``curr_*``)
    and as the action changes them (``next_*``)."""

    reserve_configuration: ReserveConfiguration
    reserve_factor: int
    curr_liquidity_index: int
    next_liquidity_index: int
    curr_variable_borrow_index: int
    next_variable_borrow_index: int
    curr_liquidity_rate: int
    curr_variable_borrow_rate: int
    reserve_last_update_timestamp: int
    curr_scaled_variable_debt: int
    next_scaled_variable_debt: int
    curr_principal_stable_debt: int
    curr_total_stable_debt: int
    curr_avg_stable_borrow_rate: int
    stable_debt_last_update_timestamp: int
    next_total_stable_debt: int
    next_avg_stable_borrow_rate: int


def cache(reserve: ReserveData, timestamp: int) -> ReserveCache:
    """``ReserveLogic.cache`` (the stable supply data is read at ``timestamp``)."""
    total_stable = stable_debt_total_supply(reserve, timestamp)
    return ReserveCache(
        reserve_configuration=reserve.configuration,
        reserve_factor=reserve.configuration.reserve_factor,
        curr_liquidity_index=reserve.liquidity_index,
        next_liquidity_index=reserve.liquidity_index,
        curr_variable_borrow_index=reserve.variable_borrow_index,
        next_variable_borrow_index=reserve.variable_borrow_index,
        curr_liquidity_rate=reserve.current_liquidity_rate,
        curr_variable_borrow_rate=reserve.current_variable_borrow_rate,
        reserve_last_update_timestamp=reserve.last_update_timestamp,
        curr_scaled_variable_debt=reserve.variable_debt_scaled_total_supply,
        next_scaled_variable_debt=reserve.variable_debt_scaled_total_supply,
        curr_principal_stable_debt=reserve.stable_debt_total_principal,
        curr_total_stable_debt=total_stable,
        curr_avg_stable_borrow_rate=reserve.average_stable_rate,
        stable_debt_last_update_timestamp=reserve.stable_debt_total_supply_timestamp,
        next_total_stable_debt=total_stable,
        next_avg_stable_borrow_rate=reserve.average_stable_rate,
    )


def update_state(reserve: ReserveData, rc: ReserveCache, timestamp: int, rules: RuleSet, *,
                 directional_rounding: bool = False) -> ReserveData:
    """``ReserveLogic.updateState``: accrue the indices to ``timestamp`` (``_updateIndexes``:
    the liquidity index only if the liquidity rate is non-zero, the variable borrow index only
    if there is variable debt) and the treasury's share of the interest
    (``_accrueToTreasury``, v3.5 rounding when ``directional_rounding``). Returns the updated
    reserve; ``rc`` is updated in place. Skips when the cache was taken in this block."""
    if rc.reserve_last_update_timestamp == timestamp:
        return reserve
    liquidity_index, variable_borrow_index = reserve.liquidity_index, reserve.variable_borrow_index
    if rc.curr_liquidity_rate != 0:
        rc.next_liquidity_index = liquidity_index = ray_mul_half_up(
            linear_interest_v3(rc.curr_liquidity_rate, rc.reserve_last_update_timestamp, timestamp),
            rc.curr_liquidity_index)
    if rc.curr_scaled_variable_debt != 0:
        rc.next_variable_borrow_index = variable_borrow_index = ray_mul_half_up(
            compounded_interest(rules, rc.curr_variable_borrow_rate, rc.reserve_last_update_timestamp,
                                timestamp), rc.curr_variable_borrow_index)
    accrued = reserve.accrued_to_treasury + (_accrue_to_treasury_v35(rc) if directional_rounding
                                             else _accrue_to_treasury(rc))
    rc.reserve_last_update_timestamp = timestamp
    return replace(reserve, liquidity_index=liquidity_index, variable_borrow_index=variable_borrow_index,
                   accrued_to_treasury=accrued, last_update_timestamp=timestamp)


def _accrue_to_treasury(rc: ReserveCache) -> int:
    """``ReserveLogic._accrueToTreasury``: the scaled amount to add to ``accruedToTreasury``:
    reserve factor × debt interest accrued since the last update, divided by the new liquidity
    index."""
    if rc.reserve_factor == 0:
        return 0
    prev_total_variable_debt = ray_mul_half_up(rc.curr_scaled_variable_debt, rc.curr_variable_borrow_index)
    curr_total_variable_debt = ray_mul_half_up(rc.curr_scaled_variable_debt, rc.next_variable_borrow_index)
    cumulated_stable_interest = compounded_interest_v3(rc.curr_avg_stable_borrow_rate,
                                                       rc.stable_debt_last_update_timestamp,
                                                       rc.reserve_last_update_timestamp)
    prev_total_stable_debt = ray_mul_half_up(rc.curr_principal_stable_debt, cumulated_stable_interest)
    total_debt_accrued = (curr_total_variable_debt + rc.curr_total_stable_debt - prev_total_variable_debt
                          - prev_total_stable_debt)
    if total_debt_accrued < 0:  # uint256 underflow in the contract
        raise ArithmeticOverflow("_accrueToTreasury: debt decreased")
    amount_to_mint = percent_mul_half_up(total_debt_accrued, rc.reserve_factor)
    return ray_div_half_up(amount_to_mint, rc.next_liquidity_index) if amount_to_mint != 0 else 0


def _accrue_to_treasury_v35(rc: ReserveCache) -> int:
    """v3.5 ``_accrueToTreasury``: ``percentMul(rayMulFloor(currScaledDebt, nextIndex -
    currIndex), reserveFactor)`` scaled down with ``rayDivFloor`` (no stable debt)."""
    if rc.reserve_factor == 0:
        return 0
    total_debt_accrued = ray_mul_floor(rc.curr_scaled_variable_debt,
                                       rc.next_variable_borrow_index - rc.curr_variable_borrow_index)
    amount_to_mint = percent_mul_half_up(total_debt_accrued, rc.reserve_factor)
    return ray_div_floor(amount_to_mint, rc.next_liquidity_index) if amount_to_mint != 0 else 0


def update_interest_rates(tx: TxContext, reserve: ReserveData, rc: ReserveCache, liquidity_added: int,
                          liquidity_taken: int) -> ReserveData:
    """``ReserveLogic.updateInterestRates``: new rates from the strategy for the reserve's debt
    after the action (``rc.next_*``) and its liquidity ± this action's flows; emits
    ``ReserveDataUpdated``. Keeps the current rates when the strategy or the aToken's
    underlying balance is unknown (or under v3.1+ rules, whose strategy is not ported). Without
    stable debt (v3.2+: aave-dao/aave-v3-origin v3.2.0, 7c6023e) the event's stable rate is 0
    and so is the reserve's (``getReserveData`` returns 0 for the deprecated field)."""
    total_variable_debt = ray_mul_half_up(rc.next_scaled_variable_debt, rc.next_variable_borrow_index)
    strategy = reserve.interest_rate_strategy
    if strategy is not None and reserve.a_token_underlying_balance is not None \
            and tx.rules.version in ("3.0", "3.0.1"):
        liquidity_rate, stable_rate, variable_rate = calculate_interest_rates(
            strategy, unbacked=reserve.unbacked,
            available_liquidity=reserve.a_token_underlying_balance + liquidity_added - liquidity_taken,
            total_stable_debt=rc.next_total_stable_debt, total_variable_debt=total_variable_debt,
            average_stable_borrow_rate=rc.next_avg_stable_borrow_rate, reserve_factor=rc.reserve_factor)
        reserve = replace(reserve, current_liquidity_rate=liquidity_rate,
                          current_stable_borrow_rate=stable_rate, current_variable_borrow_rate=variable_rate)
    if not tx.rules.stable_debt and reserve.current_stable_borrow_rate != 0:
        # v3.2+ emits 0 for it and getReserveData returns 0 (stable borrowing removed)
        reserve = replace(reserve, current_stable_borrow_rate=0)
    tx.emit("ReserveDataUpdated", "pool", tx.state.pool, reserve=reserve.asset,
            liquidity_rate=reserve.current_liquidity_rate,
            stable_borrow_rate=reserve.current_stable_borrow_rate,
            variable_borrow_rate=reserve.current_variable_borrow_rate,
            liquidity_index=rc.next_liquidity_index, variable_borrow_index=rc.next_variable_borrow_index)
    return reserve


def calculate_interest_rates(s: InterestRateStrategy, *, unbacked: int, available_liquidity: int,
                             total_stable_debt: int, total_variable_debt: int,
                             average_stable_borrow_rate: int, reserve_factor: int) -> tuple[int, int, int]:
    """``DefaultReserveInterestRateStrategy.calculateInterestRates`` (v3.0): (liquidity rate,
    stable borrow rate, variable borrow rate), RAY per year. ``available_liquidity`` is the
    aToken's underlying balance plus liquidity added minus taken by the action."""
    total_debt = total_stable_debt + total_variable_debt
    variable_rate = s.base_variable_borrow_rate
    stable_rate = s.variable_rate_slope1 + s.base_stable_rate_offset  # getBaseStableBorrowRate
    borrow_usage_ratio = supply_usage_ratio = stable_to_total_debt_ratio = 0
    if total_debt != 0:
        stable_to_total_debt_ratio = ray_div_half_up(total_stable_debt, total_debt)
        if available_liquidity < 0:
            raise ArithmeticOverflow("calculateInterestRates: liquidity underflow")
        available_liquidity_plus_debt = available_liquidity + total_debt
        borrow_usage_ratio = ray_div_half_up(total_debt, available_liquidity_plus_debt)
        supply_usage_ratio = ray_div_half_up(total_debt, available_liquidity_plus_debt + unbacked)
    if borrow_usage_ratio > s.optimal_usage_ratio:
        excess = ray_div_half_up(borrow_usage_ratio - s.optimal_usage_ratio, RAY - s.optimal_usage_ratio)
        stable_rate += s.stable_rate_slope1 + ray_mul_half_up(s.stable_rate_slope2, excess)
        variable_rate += s.variable_rate_slope1 + ray_mul_half_up(s.variable_rate_slope2, excess)
    else:
        stable_rate += ray_div_half_up(ray_mul_half_up(s.stable_rate_slope1, borrow_usage_ratio),
                                       s.optimal_usage_ratio)
        variable_rate += ray_div_half_up(ray_mul_half_up(s.variable_rate_slope1, borrow_usage_ratio),
                                         s.optimal_usage_ratio)
    if stable_to_total_debt_ratio > s.optimal_stable_to_total_debt_ratio:
        excess_stable = ray_div_half_up(stable_to_total_debt_ratio - s.optimal_stable_to_total_debt_ratio,
                                        RAY - s.optimal_stable_to_total_debt_ratio)
        stable_rate += ray_mul_half_up(s.stable_rate_excess_offset, excess_stable)
    overall = _get_overall_borrow_rate(total_stable_debt, total_variable_debt, variable_rate,
                                       average_stable_borrow_rate)
    liquidity_rate = percent_mul_half_up(ray_mul_half_up(overall, supply_usage_ratio),
                                         PERCENTAGE_FACTOR - reserve_factor)
    return liquidity_rate, stable_rate, variable_rate


def _get_overall_borrow_rate(total_stable_debt: int, total_variable_debt: int, variable_rate: int,
                             average_stable_rate: int) -> int:
    total_debt = total_stable_debt + total_variable_debt
    if total_debt == 0:
        return 0
    weighted_variable = ray_mul_half_up(wad_to_ray(total_variable_debt), variable_rate)
    weighted_stable = ray_mul_half_up(wad_to_ray(total_stable_debt), average_stable_rate)
    return ray_div_half_up(weighted_variable + weighted_stable, wad_to_ray(total_debt))
