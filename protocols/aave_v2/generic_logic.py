"""Aave v2 account data: collateral and debt in ETH, average LTV / liquidation threshold, HF.

Source: aave/protocol-v2 @ 9169e0d (npm 1.0.1) ``contracts/protocol/libraries/logic/GenericLogic.sol``
(``calculateUserAccountData``, ``calculateHealthFactorFromBalances``,
``calculateAvailableBorrowsETH``, ``balanceDecreaseAllowed``) and
``lendingpool/LendingPool.sol`` (``getUserAccountData``).

Values are ETH wei (the AaveOracle's prices are ETH wei per whole token):
``floor(price * balance / 10**decimals)`` per reserve, balances from scaled balances and the
indices accrued to the block timestamp (stable debt compounded at the user's rate);
``avgLT = floor(sum(value_i * LT_i) / total)``; ``HF = wadDiv(percentMul(total, avgLT), debt)``
(both half-up), ``2**256 - 1`` without debt. Unlike v3 the loop reads the price of every
reserve the user touches before checking what it is used for, and has no e-mode.
"""

from __future__ import annotations

from typing import NamedTuple

from ..fixed_point import (
    UINT256_MAX,
    WAD,
    ArithmeticOverflow,
    percent_mul_half_up,
    ray_mul_half_up,
    wad_div_half_up,
)
from .configuration import is_borrowing, is_borrowing_any, is_using_as_collateral, reserve_ids
from .reserve_logic import cached_normalized_debt, cached_normalized_income, stable_debt_balance_of
from .state import AaveV2State, ReserveData, TxContext, UserState

__all__ = [
    "HEALTH_FACTOR_LIQUIDATION_THRESHOLD",
    "UserAccountData",
    "AccountData",
    "calculate_user_account_data",
    "calculate_health_factor_from_balances",
    "calculate_available_borrows_eth",
    "get_user_account_data",
    "balance_decrease_allowed",
    "a_token_balance_of",
    "variable_debt_balance_of",
]

#: a position is liquidatable below this HF (WAD, 1.0), strictly
HEALTH_FACTOR_LIQUIDATION_THRESHOLD = WAD


class UserAccountData(NamedTuple):
    """``GenericLogic.calculateUserAccountData``'s five results (ETH wei, bps, WAD)."""

    total_collateral_eth: int
    total_debt_eth: int
    avg_ltv: int
    avg_liquidation_threshold: int
    health_factor: int


class AccountData(NamedTuple):
    """``LendingPool.getUserAccountData``'s six results, in its order."""

    total_collateral_eth: int
    total_debt_eth: int
    available_borrows_eth: int
    current_liquidation_threshold: int
    ltv: int
    health_factor: int


def a_token_balance_of(state: AaveV2State, reserve: ReserveData, scaled: int, timestamp: int) -> int:
    """``AToken.balanceOf``: ``rayMul(scaled, normalizedIncome)``."""
    return ray_mul_half_up(scaled, cached_normalized_income(state, reserve, timestamp)) if scaled else 0


def variable_debt_balance_of(state: AaveV2State, reserve: ReserveData, scaled: int, timestamp: int) -> int:
    """``VariableDebtToken.balanceOf``: 0 without a scaled balance, else
    ``rayMul(scaled, normalizedVariableDebt)``."""
    return ray_mul_half_up(scaled, cached_normalized_debt(state, reserve, timestamp)) if scaled else 0


def calculate_health_factor_from_balances(
    total_collateral_eth: int, total_debt_eth: int, liquidation_threshold: int
) -> int:
    """``GenericLogic.calculateHealthFactorFromBalances``: ``2**256 - 1`` without debt."""
    if total_debt_eth == 0:
        return UINT256_MAX
    return wad_div_half_up(percent_mul_half_up(total_collateral_eth, liquidation_threshold), total_debt_eth)


def calculate_user_account_data(tx: TxContext, user: UserState) -> UserAccountData:
    """``GenericLogic.calculateUserAccountData`` for ``user`` at ``tx.timestamp`` with
    ``tx.prices``, reading reserves through ``tx``."""
    config = user.configuration
    if config == 0:
        return UserAccountData(0, 0, 0, 0, UINT256_MAX)
    state, ts = tx.state, tx.timestamp
    total_collateral = total_debt = avg_ltv = avg_lt = 0
    for i in reserve_ids(config):
        if i >= state.reserves_count:
            break
        asset = state.reserves_list.get(i)
        reserve = tx.reserve(asset) if asset is not None else None
        if reserve is None:  # every id below the count is listed in the contract
            continue
        cfg = reserve.configuration
        unit = 10**cfg.decimals
        price = tx.price(reserve.asset)
        ur = user.reserve(reserve.asset)
        if cfg.liquidation_threshold != 0 and is_using_as_collateral(config, i):
            balance = a_token_balance_of(state, reserve, ur.scaled_a_token_balance, ts)
            value = price * balance // unit
            total_collateral += value
            avg_ltv += value * cfg.ltv
            avg_lt += value * cfg.liquidation_threshold
        if is_borrowing(config, i):
            debt = stable_debt_balance_of(ur, ts) + variable_debt_balance_of(
                state, reserve, ur.scaled_variable_debt, ts
            )
            total_debt += price * debt // unit
    if total_collateral > 0:
        avg_ltv //= total_collateral
        avg_lt //= total_collateral
    hf = calculate_health_factor_from_balances(total_collateral, total_debt, avg_lt)
    return UserAccountData(total_collateral, total_debt, avg_ltv, avg_lt, hf)


def calculate_available_borrows_eth(total_collateral_eth: int, total_debt_eth: int, ltv: int) -> int:
    """``GenericLogic.calculateAvailableBorrowsETH``: ``max(0, percentMul(collateral, ltv) - debt)``."""
    available = percent_mul_half_up(total_collateral_eth, ltv)
    return 0 if available < total_debt_eth else available - total_debt_eth


def get_user_account_data(tx: TxContext, user: UserState) -> AccountData:
    """``LendingPool.getUserAccountData``."""
    d = calculate_user_account_data(tx, user)
    return AccountData(
        d.total_collateral_eth,
        d.total_debt_eth,
        calculate_available_borrows_eth(d.total_collateral_eth, d.total_debt_eth, d.avg_ltv),
        d.avg_liquidation_threshold,
        d.avg_ltv,
        d.health_factor,
    )


def balance_decrease_allowed(tx: TxContext, asset: str, user: UserState, amount: int) -> bool:
    """``GenericLogic.balanceDecreaseAllowed``: whether taking ``amount`` of ``asset`` out of
    the user's collateral (withdraw, aToken transfer, disabling it) keeps HF >= 1. Always true
    without debt or when the asset is not enabled collateral; false if nothing would be left."""
    reserve = tx.reserve(asset)
    reserve_id = reserve.id if reserve is not None else 0
    if not is_borrowing_any(user.configuration) or not is_using_as_collateral(user.configuration, reserve_id):
        return True
    if reserve is None or reserve.configuration.liquidation_threshold == 0:
        return True
    d = calculate_user_account_data(tx, user)
    if d.total_debt_eth == 0:
        return True
    amount_to_decrease_eth = tx.price(asset) * amount // reserve.unit
    after = d.total_collateral_eth - amount_to_decrease_eth
    if after < 0:
        raise ArithmeticOverflow("balanceDecreaseAllowed: SafeMath sub underflow")
    if after == 0:
        return False
    lt_numerator = (
        d.total_collateral_eth * d.avg_liquidation_threshold
        - amount_to_decrease_eth * reserve.configuration.liquidation_threshold
    )
    if lt_numerator < 0:
        raise ArithmeticOverflow("balanceDecreaseAllowed: SafeMath sub underflow")
    hf_after = calculate_health_factor_from_balances(after, d.total_debt_eth, lt_numerator // after)
    return hf_after >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD
