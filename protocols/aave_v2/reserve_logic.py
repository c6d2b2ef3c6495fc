"""Aave v2 reserve accounting: normalized income/debt, index updates, treasury mint, rates.

Source: aave/protocol-v2 @ 9169e0d (npm 1.0.1) ``contracts/protocol/libraries/logic/ReserveLogic.sol``
(``getNormalizedIncome``, ``getNormalizedDebt``, ``updateState``, ``_updateIndexes``,
``_mintToTreasury``, ``updateInterestRates``), ``lendingpool/DefaultReserveInterestRateStrategy.sol``
(``calculateInterestRates``, ``_getOverallBorrowRate``), the views of
``tokenization/StableDebtToken.sol`` (``balanceOf``, ``_calcTotalSupply``) and
``libraries/math/MathUtils.sol`` (v2's compounded interest: per-second rate first, see
:func:`protocols.fixed_point.compounded_interest_v2`).

Differences from v3 worth knowing: ``_updateIndexes`` moves *neither* index when the liquidity
rate is 0 (the views still compound the variable index); the treasury's share is minted as
aTokens inside ``updateState`` (``AToken.mintToTreasury``: ``Transfer`` + ``Mint`` events), not
accrued; the stable base rate is the LendingRateOracle's market rate. Every function takes the
block timestamp explicitly. A contract revert is raised as :class:`ArithmeticOverflow`.
"""

from __future__ import annotations

from dataclasses import replace

from ..base import ZERO_ADDRESS
from ..errors import MissingParameter
from ..fixed_point import (
    PERCENTAGE_FACTOR,
    ArithmeticOverflow,
    compounded_interest_v2,
    linear_interest_v3,
    percent_mul_half_up,
    ray_div_half_up,
    ray_mul_half_up,
    wad_to_ray,
)
from .state import AaveV2State, InterestRateStrategy, ReserveData, TxContext, UserReserve

__all__ = [
    "UINT128_MAX",
    "get_normalized_income",
    "get_normalized_debt",
    "cached_normalized_income",
    "cached_normalized_debt",
    "stable_debt_balance_of",
    "stable_debt_total_supply",
    "update_state",
    "update_interest_rates",
    "calculate_interest_rates",
    "mint_to_treasury",
]

UINT128_MAX = 2**128 - 1


def _interval(last: int, now: int) -> None:
    if now < last:  # SafeMath sub in MathUtils
        raise ArithmeticOverflow(f"timestamp {now} precedes {last}")


def get_normalized_income(reserve: ReserveData, timestamp: int) -> int:
    """``ReserveLogic.getNormalizedIncome``: the liquidity index accrued linearly to
    ``timestamp`` (RAY). aToken balance = ``rayMul(scaled, this)``."""
    if reserve.last_update_timestamp == timestamp:
        return reserve.liquidity_index
    _interval(reserve.last_update_timestamp, timestamp)
    return ray_mul_half_up(
        linear_interest_v3(reserve.current_liquidity_rate, reserve.last_update_timestamp, timestamp),
        reserve.liquidity_index,
    )


def get_normalized_debt(reserve: ReserveData, timestamp: int) -> int:
    """``ReserveLogic.getNormalizedDebt``: the variable borrow index compounded (v2 MathUtils)
    to ``timestamp`` (RAY). Variable debt = ``rayMul(scaled, this)``."""
    if reserve.last_update_timestamp == timestamp:
        return reserve.variable_borrow_index
    _interval(reserve.last_update_timestamp, timestamp)
    return ray_mul_half_up(
        compounded_interest_v2(
            reserve.current_variable_borrow_rate, reserve.last_update_timestamp, timestamp
        ),
        reserve.variable_borrow_index,
    )


def cached_normalized_income(state: AaveV2State, reserve: ReserveData, timestamp: int) -> int:
    """:func:`get_normalized_income`, memoized in ``state.index_cache`` for this reserve record
    and timestamp (records are replaced on every change, so identity keys the cache)."""
    key = (reserve.asset, 0)
    hit = state.index_cache.get(key)
    if hit is not None and hit[0] is reserve and hit[1] == timestamp:
        return hit[2]
    value = get_normalized_income(reserve, timestamp)
    state.index_cache[key] = (reserve, timestamp, value)
    return value


def cached_normalized_debt(state: AaveV2State, reserve: ReserveData, timestamp: int) -> int:
    """:func:`get_normalized_debt`, memoized like :func:`cached_normalized_income`."""
    key = (reserve.asset, 1)
    hit = state.index_cache.get(key)
    if hit is not None and hit[0] is reserve and hit[1] == timestamp:
        return hit[2]
    value = get_normalized_debt(reserve, timestamp)
    state.index_cache[key] = (reserve, timestamp, value)
    return value


def stable_debt_balance_of(ur: UserReserve, timestamp: int) -> int:
    """``StableDebtToken.balanceOf``: principal compounded at the user's stable rate since the
    user's last stable-debt action."""
    if ur.stable_debt_principal == 0:
        return 0
    _interval(ur.stable_debt_timestamp, timestamp)
    return ray_mul_half_up(
        ur.stable_debt_principal, compounded_interest_v2(ur.stable_rate, ur.stable_debt_timestamp, timestamp)
    )


def stable_debt_total_supply(reserve: ReserveData, timestamp: int) -> int:
    """``StableDebtToken._calcTotalSupply(avgRate)``: total principal compounded at the average
    stable rate since the supply's last update."""
    if reserve.stable_debt_total_principal == 0:
        return 0
    _interval(reserve.stable_debt_total_supply_timestamp, timestamp)
    return ray_mul_half_up(
        reserve.stable_debt_total_principal,
        compounded_interest_v2(
            reserve.average_stable_rate, reserve.stable_debt_total_supply_timestamp, timestamp
        ),
    )


def update_state(tx: TxContext, reserve: ReserveData) -> ReserveData:
    """``ReserveLogic.updateState`` at ``tx.timestamp``: ``_updateIndexes`` (both indices only
    when the liquidity rate is non-zero, the variable one only with variable debt), then
    ``_mintToTreasury``. Writes the reserve (and the treasury's aTokens) to ``tx`` and returns
    the updated reserve."""
    ts = tx.timestamp
    scaled_variable_debt = reserve.variable_debt_scaled_total_supply
    previous_variable_borrow_index = reserve.variable_borrow_index
    previous_liquidity_index = reserve.liquidity_index
    last = reserve.last_update_timestamp
    new_liquidity_index, new_variable_borrow_index = previous_liquidity_index, previous_variable_borrow_index
    if reserve.current_liquidity_rate > 0:
        _interval(last, ts)
        new_liquidity_index = ray_mul_half_up(
            linear_interest_v3(reserve.current_liquidity_rate, last, ts), previous_liquidity_index
        )
        if new_liquidity_index > UINT128_MAX:
            raise ArithmeticOverflow("RL_LIQUIDITY_INDEX_OVERFLOW")
        if scaled_variable_debt != 0:
            new_variable_borrow_index = ray_mul_half_up(
                compounded_interest_v2(reserve.current_variable_borrow_rate, last, ts),
                previous_variable_borrow_index,
            )
            if new_variable_borrow_index > UINT128_MAX:
                raise ArithmeticOverflow("RL_VARIABLE_BORROW_INDEX_OVERFLOW")
    reserve = replace(
        reserve,
        liquidity_index=new_liquidity_index,
        variable_borrow_index=new_variable_borrow_index,
        last_update_timestamp=ts,
    )
    tx.put_reserve(reserve)

    # _mintToTreasury
    reserve_factor = reserve.configuration.reserve_factor
    if reserve_factor == 0:
        return reserve
    current_stable_debt = stable_debt_total_supply(reserve, ts)
    previous_variable_debt = ray_mul_half_up(scaled_variable_debt, previous_variable_borrow_index)
    current_variable_debt = ray_mul_half_up(scaled_variable_debt, new_variable_borrow_index)
    _interval(reserve.stable_debt_total_supply_timestamp, last)
    cumulated_stable_interest = compounded_interest_v2(
        reserve.average_stable_rate, reserve.stable_debt_total_supply_timestamp, last
    )
    previous_stable_debt = ray_mul_half_up(reserve.stable_debt_total_principal, cumulated_stable_interest)
    total_debt_accrued = (
        current_variable_debt + current_stable_debt - previous_variable_debt - previous_stable_debt
    )
    if total_debt_accrued < 0:
        raise ArithmeticOverflow("_mintToTreasury: SafeMath sub underflow")
    amount_to_mint = percent_mul_half_up(total_debt_accrued, reserve_factor)
    if amount_to_mint != 0:
        mint_to_treasury(tx, reserve, amount_to_mint, new_liquidity_index)
    return reserve


def mint_to_treasury(tx: TxContext, reserve: ReserveData, amount: int, index: int) -> None:
    """``AToken.mintToTreasury(amount, index)``: credits ``rayDiv(amount, index)`` scaled
    aTokens to the reserve's treasury and emits ``Transfer`` + ``Mint`` (no zero check of the
    scaled amount, unlike ``mint``). An unknown treasury (``ReserveData.treasury`` address 0: no
    event carries the aToken's immutable) raises :class:`MissingParameter`: the deployed aToken
    always has one, so this is missing input, not a revert of the call."""
    treasury = reserve.treasury
    if treasury == ZERO_ADDRESS:
        raise MissingParameter(
            f"the treasury of reserve {reserve.asset} (its aToken's RESERVE_TREASURY_ADDRESS) is unknown, "
            f"but updateState mints the reserve factor's share ({amount}) to it: no Aave v2 event carries "
            "it; declare it (new_state(asset_treasuries=...); a scenario's [market.asset_treasuries])"
        )
    u = tx.user(treasury)
    ur = u.reserve(reserve.asset)
    tx.put_user(
        treasury,
        u.with_reserve(
            reserve.asset,
            replace(ur, scaled_a_token_balance=ur.scaled_a_token_balance + ray_div_half_up(amount, index)),
        ),
    )
    tx.emit("Transfer", "a_token", reserve.a_token, **{"from": ZERO_ADDRESS, "to": treasury, "value": amount})
    tx.emit("Mint", "a_token", reserve.a_token, **{"from": treasury, "value": amount, "index": index})


def update_interest_rates(
    tx: TxContext, reserve: ReserveData, liquidity_added: int, liquidity_taken: int
) -> ReserveData:
    """``ReserveLogic.updateInterestRates``: new rates from the strategy for the reserve's debt
    now (stable supply at the block, variable scaled supply times the stored index) and the
    aToken's underlying balance ± this action's flows; emits ``ReserveDataUpdated``. Keeps the
    current rates when the strategy, the market borrow rate or the underlying balance is
    unknown. Writes and returns the reserve."""
    total_stable_debt = stable_debt_total_supply(reserve, tx.timestamp)
    total_variable_debt = ray_mul_half_up(
        reserve.variable_debt_scaled_total_supply, reserve.variable_borrow_index
    )
    strategy = reserve.interest_rate_strategy
    if (
        strategy is not None
        and reserve.market_borrow_rate is not None
        and reserve.a_token_underlying_balance is not None
    ):
        available = reserve.a_token_underlying_balance + liquidity_added - liquidity_taken
        if available < 0:
            raise ArithmeticOverflow("updateInterestRates: liquidity underflow")
        liquidity_rate, stable_rate, variable_rate = calculate_interest_rates(
            strategy,
            market_borrow_rate=reserve.market_borrow_rate,
            available_liquidity=available,
            total_stable_debt=total_stable_debt,
            total_variable_debt=total_variable_debt,
            average_stable_borrow_rate=reserve.average_stable_rate,
            reserve_factor=reserve.configuration.reserve_factor,
        )
        if max(liquidity_rate, stable_rate, variable_rate) > UINT128_MAX:
            raise ArithmeticOverflow("RL_*_RATE_OVERFLOW")
        reserve = replace(
            reserve,
            current_liquidity_rate=liquidity_rate,
            current_stable_borrow_rate=stable_rate,
            current_variable_borrow_rate=variable_rate,
        )
        tx.put_reserve(reserve)
    tx.emit(
        "ReserveDataUpdated",
        "lending_pool",
        tx.state.pool,
        reserve=reserve.asset,
        liquidity_rate=reserve.current_liquidity_rate,
        stable_borrow_rate=reserve.current_stable_borrow_rate,
        variable_borrow_rate=reserve.current_variable_borrow_rate,
        liquidity_index=reserve.liquidity_index,
        variable_borrow_index=reserve.variable_borrow_index,
    )
    return reserve


def calculate_interest_rates(
    s: InterestRateStrategy,
    *,
    market_borrow_rate: int,
    available_liquidity: int,
    total_stable_debt: int,
    total_variable_debt: int,
    average_stable_borrow_rate: int,
    reserve_factor: int,
) -> tuple[int, int, int]:
    """``DefaultReserveInterestRateStrategy.calculateInterestRates`` (v2): (liquidity rate,
    stable borrow rate, variable borrow rate), RAY per year. Utilization is
    ``rayDiv(debt, liquidity + debt)``; above the optimal utilization both borrow rates add
    slope 2 times the excess ratio; the liquidity rate is the overall borrow rate times the
    utilization, less the reserve factor."""
    total_debt = total_stable_debt + total_variable_debt
    utilization = 0 if total_debt == 0 else ray_div_half_up(total_debt, available_liquidity + total_debt)
    stable_rate = market_borrow_rate
    if utilization > s.optimal_utilization_rate:
        excess = ray_div_half_up(utilization - s.optimal_utilization_rate, s.excess_utilization_rate)
        stable_rate += s.stable_rate_slope1 + ray_mul_half_up(s.stable_rate_slope2, excess)
        variable_rate = (
            s.base_variable_borrow_rate
            + s.variable_rate_slope1
            + ray_mul_half_up(s.variable_rate_slope2, excess)
        )
    else:
        stable_rate += ray_mul_half_up(
            s.stable_rate_slope1, ray_div_half_up(utilization, s.optimal_utilization_rate)
        )
        variable_rate = s.base_variable_borrow_rate + ray_div_half_up(
            ray_mul_half_up(utilization, s.variable_rate_slope1), s.optimal_utilization_rate
        )
    if reserve_factor > PERCENTAGE_FACTOR:
        raise ArithmeticOverflow("reserve factor above 100%")
    overall = _get_overall_borrow_rate(
        total_stable_debt, total_variable_debt, variable_rate, average_stable_borrow_rate
    )
    liquidity_rate = percent_mul_half_up(
        ray_mul_half_up(overall, utilization), PERCENTAGE_FACTOR - reserve_factor
    )
    return liquidity_rate, stable_rate, variable_rate


def _get_overall_borrow_rate(
    total_stable_debt: int, total_variable_debt: int, variable_rate: int, average_stable_rate: int
) -> int:
    total_debt = total_stable_debt + total_variable_debt
    if total_debt == 0:
        return 0
    weighted_variable = ray_mul_half_up(wad_to_ray(total_variable_debt), variable_rate)
    weighted_stable = ray_mul_half_up(wad_to_ray(total_stable_debt), average_stable_rate)
    return ray_div_half_up(weighted_variable + weighted_stable, wad_to_ray(total_debt))
