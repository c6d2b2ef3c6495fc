"""Aave v3 account data: collateral, debt, average LTV / liquidation threshold, health factor.

Source: aave/aave-v3-core @ 724a9ef (v3.0.2) ``contracts/protocol/libraries/logic/GenericLogic.sol``
(``calculateUserAccountData``, ``calculateAvailableBorrows``, ``_getUserDebtInBaseCurrency``,
``_getUserBalanceInBaseCurrency``), ``EModeLogic.sol`` (``getEModeConfiguration``,
``isInEModeCategory``) and ``PoolLogic.executeGetUserAccountData``; the v3.2 variant
(collateral bitmap instead of the asset's category, no category oracle, variable debt only)
from aave-dao/aave-v3-origin v3.2.0 (7c6023e) ``src/contracts/protocol/libraries/logic/
GenericLogic.sol``. Unchanged in v3.1.0; v3.3.0 (5431379) adds the GHO debt special case (its
discounted ``balanceOf``: :func:`variable_debt_balance_of`), v3.4.0 (d7a6412) drops it again
and compounds debt with its new ``MathUtils`` formula (see
``reserve_logic.compounded_interest``). v3.5.0 (6138e1f)
``GenericLogic.sol``: collateral balance ``rayMulFloor``, debt balance ``rayMulCeil`` and its
value ``mulDivCeil``, ``HF = wadDiv(sum(value_i * LT_i), debt) / 1e4`` (no floored average LT in between) and
``availableBorrows`` with ``percentMulFloor``.

Values are in the oracle's base currency (USD, 8 decimals): ``floor(balance * price / unit)``
per reserve, balances from scaled balances and the indices accrued to the block timestamp;
``avgLT = floor(sum(value_i * LT_i) / total)``; ``HF = wadDiv(percentMul(total, avgLT), debt)``
(both half-up), ``2**256 - 1`` without debt. Collateral with LT = 0 is ignored.
"""

from __future__ import annotations

from typing import NamedTuple

from ..base import ZERO_ADDRESS
from ..fixed_point import (
    PERCENTAGE_FACTOR,
    UINT256_MAX,
    ArithmeticOverflow,
    mul_div_ceil,
    percent_mul_floor,
    percent_mul_half_up,
    ray_mul_ceil,
    ray_mul_floor,
    ray_mul_half_up,
    wad_div_half_up,
)
from .reserve_logic import cached_normalized_debt, cached_normalized_income, stable_debt_balance_of
from .state import (
    EMPTY_USER_RESERVE,
    EModeCategory,
    GhoDiscountUnknown,
    ReserveData,
    TxContext,
    UserReserve,
    UserState,
)

__all__ = [
    "UserAccountData",
    "AccountData",
    "calculate_user_account_data",
    "calculate_available_borrows",
    "get_user_account_data",
    "is_in_emode_category",
    "NO_EMODE_CATEGORY",
    "is_gho_debt",
    "variable_debt_balance_of",
]

NO_EMODE_CATEGORY = EModeCategory(0, 0, 0)


class UserAccountData(NamedTuple):
    """``GenericLogic.calculateUserAccountData``'s six results (base currency, bps, WAD)."""

    total_collateral_base: int
    total_debt_base: int
    avg_ltv: int
    avg_liquidation_threshold: int
    health_factor: int
    has_zero_ltv_collateral: bool


class AccountData(NamedTuple):
    """``Pool.getUserAccountData``'s six results, in its order."""

    total_collateral_base: int
    total_debt_base: int
    available_borrows_base: int
    current_liquidation_threshold: int
    ltv: int
    health_factor: int


def is_in_emode_category(tx: TxContext, user_emode_category: int, reserve_id: int,
                         asset_emode_category: int) -> bool:
    """Whether a reserve's collateral takes the user's e-mode parameters:
    ``EModeLogic.isInEModeCategory`` (v3.0–3.1) or the category's collateral bitmap (v3.2)."""
    if user_emode_category == 0:
        return False
    if tx.rules.emode_bitmaps:
        cat = tx.state.emode_categories.get(user_emode_category, NO_EMODE_CATEGORY)
        return (cat.collateral_bitmap >> reserve_id) & 1 == 1
    return asset_emode_category == user_emode_category


def is_gho_debt(tx: TxContext, reserve: ReserveData) -> bool:
    """Whether ``reserve``'s variable debt token is a gho-core ``GhoVariableDebtToken`` whose
    ``balanceOf`` is discounted (named by the deployment data; rules v3.0.1-v3.3)."""
    return tx.rules.gho_discount and reserve.variable_debt_token.lower() in tx.state.discount_debt_tokens


def variable_debt_balance_of(tx: TxContext, reserve: ReserveData, ur: UserReserve, index: int,
                             who: str | UserState) -> int:
    """The variable debt token's ``balanceOf`` for a user holding ``ur``, at ``index`` (the
    reserve's normalized debt, ``POOL.getReserveNormalizedVariableDebt``), rules v3.0.1-v3.4:
    ``rayMul(s, index)`` (half up), and for GHO's ``GhoVariableDebtToken`` (gho-core 51be447
    ``balanceOf``, unchanged since 5dc045b) that less ``percentMul(rayMul(s, index) - rayMul(s,
    previousIndex), discountPercent)`` (half up; checked subtraction) when the index moved since
    the user's last action (``previousIndex``, ``_userState[user].additionalData``) and its
    discount percent is not 0. Raises :class:`~.state.GhoDiscountUnknown` when that percent is
    unknown and matters (``who``: the user, for the message)."""
    s = ur.scaled_variable_debt
    balance = ray_mul_half_up(s, index)
    if s == 0 or not is_gho_debt(tx, reserve):
        return balance
    previous = ur.variable_debt_previous_index
    if index == previous:
        return balance
    percent = ur.discount_percent
    if percent is None:
        if not isinstance(who, str):
            who = next((a for a, u in tx.state.users.items() if u is who), "a user")
        raise GhoDiscountUnknown(
            f"{who}'s debt of {reserve.asset} (GhoVariableDebtToken {reserve.variable_debt_token}) "
            f"accrued interest since its last action (index {previous} -> {index} at timestamp "
            f"{tx.timestamp}); under v{tx.rules.version} rules the pool reads it with balanceOf, which "
            f"takes the user's stkAAVE discount percent off that interest, and that percent is unknown: "
            f"an earlier simulated action of this replay burned the user's GHO debt, and the token "
            f"then set the percent from the user's stkAAVE balance, which is not rebuilt")
    if percent != 0:
        increase = balance - ray_mul_half_up(s, previous)
        if increase < 0:  # Solidity's checked subtraction
            raise ArithmeticOverflow(f"arithmetic underflow: GHO debt index {index} below the user's "
                                     f"previous index {previous}")
        balance -= percent_mul_half_up(increase, percent)
    return balance


def calculate_user_account_data(tx: TxContext, user: UserState) -> UserAccountData:
    """``GenericLogic.calculateUserAccountData`` for ``user`` at ``tx.timestamp`` with
    ``tx.prices``, reading reserves through ``tx`` (so a reserve the transaction already
    updated is read as updated).

    This is the replay's hottest function (every re-evaluated account, every liquidation
    check), so the bitmap walk (``reserve_ids``), the flag tests (``is_borrowing``,
    ``is_using_as_collateral``), ``is_in_emode_category`` and the reads through ``tx`` are
    inlined; the arithmetic and its order are the contract's."""
    config = user.configuration
    if config == 0:
        return UserAccountData(0, 0, 0, 0, UINT256_MAX, False)
    state, rules, ts = tx.state, tx.rules, tx.timestamp
    emode = user.emode_category
    emode_ltv = emode_lt = emode_asset_price = 0
    emode_bitmap = 0
    if emode != 0:
        cat = state.emode_categories.get(emode, NO_EMODE_CATEGORY)
        emode_ltv, emode_lt, emode_bitmap = cat.ltv, cat.liquidation_threshold, cat.collateral_bitmap
        if rules.emode_price_source and cat.price_source != ZERO_ADDRESS:
            emode_asset_price = tx.price(cat.price_source)
    bitmaps = rules.emode_bitmaps
    # reads through the transaction's writes only when it has any (a plain evaluation has none)
    get_reserve = tx.reserve if tx.has_writes() else state.reserves.get
    prices = tx.prices
    balances = user.reserves
    reserves_list, count = state.reserves_list, state.reserves_count

    total_collateral = total_debt = avg_ltv = avg_lt = 0
    has_zero_ltv_collateral = False
    v35 = rules.directional_rounding
    stable = rules.stable_debt
    # v3.3 values GHO debt (no virtual accounting) with its discounted balanceOf
    gho_in_hf = rules.gho_discount and rules.deficit_accounting and bool(state.discount_debt_tokens)
    data = config
    while data:  # reserve ids with a flag set, ascending (configuration.reserve_ids)
        i = ((data & -data).bit_length() - 1) >> 1
        data &= ~(3 << (i << 1))
        if i >= count:
            break
        asset = reserves_list.get(i)
        if asset is None:
            continue
        reserve = get_reserve(asset)
        if reserve is None:
            continue
        cfg = reserve.configuration
        unit = 10 ** cfg.decimals
        if emode_asset_price != 0 and emode == cfg.emode_category:
            price = emode_asset_price
        else:
            quoted = prices.get(asset)
            price = quoted if quoted is not None and quoted > 0 else tx.price(asset)  # raises MissingPrice
        ur = balances.get(asset, EMPTY_USER_RESERVE)
        flags = (config >> (i << 1)) & 3  # bit 0 borrowing, bit 1 collateral
        if cfg.liquidation_threshold != 0 and flags & 2:
            income = cached_normalized_income(state, reserve, ts)
            balance = ray_mul_floor(ur.scaled_a_token_balance, income) if v35 else \
                ray_mul_half_up(ur.scaled_a_token_balance, income)
            value = balance * price // unit
            total_collateral += value
            if emode == 0:
                in_emode = False
            elif bitmaps:
                in_emode = (emode_bitmap >> i) & 1 == 1
            else:
                in_emode = cfg.emode_category == emode
            if cfg.ltv != 0:
                avg_ltv += value * (emode_ltv if in_emode else cfg.ltv)
            else:
                has_zero_ltv_collateral = True
            avg_lt += value * (emode_lt if in_emode else cfg.liquidation_threshold)
        if flags & 1 and v35:
            debt = ray_mul_ceil(ur.scaled_variable_debt, cached_normalized_debt(state, reserve, ts))
            total_debt += mul_div_ceil(debt, price, unit)
        elif flags & 1:
            debt = 0
            if ur.scaled_variable_debt != 0:
                index = cached_normalized_debt(state, reserve, ts)
                if gho_in_hf and reserve.variable_debt_token.lower() in state.discount_debt_tokens:
                    debt = variable_debt_balance_of(tx, reserve, ur, index, user)
                else:
                    debt = ray_mul_half_up(ur.scaled_variable_debt, index)
            if stable:
                debt += stable_debt_balance_of(ur, ts)
            total_debt += price * debt // unit
    if v35:  # HF from the unrounded sum, before the averages are floored
        hf = UINT256_MAX if total_debt == 0 else wad_div_half_up(avg_lt, total_debt) // PERCENTAGE_FACTOR
    if total_collateral != 0:
        avg_ltv //= total_collateral
        avg_lt //= total_collateral
    if not v35:
        hf = UINT256_MAX if total_debt == 0 else \
            wad_div_half_up(percent_mul_half_up(total_collateral, avg_lt), total_debt)
    return UserAccountData(total_collateral, total_debt, avg_ltv, avg_lt, hf, has_zero_ltv_collateral)


def calculate_available_borrows(total_collateral_base: int, total_debt_base: int, ltv: int,
                                directional_rounding: bool = False) -> int:
    """``GenericLogic.calculateAvailableBorrows``: ``max(0, percentMul(collateral, ltv) - debt)``
    (v3.5+: ``percentMulFloor``)."""
    available = percent_mul_floor(total_collateral_base, ltv) if directional_rounding else \
        percent_mul_half_up(total_collateral_base, ltv)
    return 0 if available < total_debt_base else available - total_debt_base


def get_user_account_data(tx: TxContext, user: UserState) -> AccountData:
    """``Pool.getUserAccountData`` (``PoolLogic.executeGetUserAccountData``)."""
    d = calculate_user_account_data(tx, user)
    return AccountData(d.total_collateral_base, d.total_debt_base,
                       calculate_available_borrows(d.total_collateral_base, d.total_debt_base, d.avg_ltv,
                                                   tx.rules.directional_rounding),
                       d.avg_liquidation_threshold, d.avg_ltv, d.health_factor)
