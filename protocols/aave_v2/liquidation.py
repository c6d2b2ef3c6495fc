"""Aave v2 ``liquidationCall``: validation, 50 % close factor, collateral to seize, burns, events.

Source: aave/protocol-v2 @ 9169e0d (npm 1.0.1)
``contracts/protocol/lendingpool/LendingPoolCollateralManager.sol`` (``liquidationCall``,
``_calculateAvailableCollateralToLiquidate``), ``libraries/logic/ValidationLogic.sol``
(``validateLiquidationCall``), ``libraries/helpers/Helpers.sol`` (``getUserCurrentDebt``) and
``lendingpool/LendingPool.sol`` (``liquidationCall``: ``whenNotPaused``, delegatecall, error code
to revert). The manager's code is, bar whitespace, that of ce53c4a cited in
docs/protocol-rules.md §1.

The rules that distinguish v2: the close factor is always 50 % of the *chosen* debt reserve's
debt (``percentMul(stable + variable, 5000)``); ``percentMul(bonus)`` is applied to the big
numerator ``debtPrice * debtToCover * 10**collDec`` *before* the division; the whole bonus goes
to the liquidator (no protocol fee); variable debt is burned first, then stable; the borrowing
flag is never cleared and no debt is written off, so debt left without collateral stays on the
user (reported as ``bad_debt``, kept in the state).

The port runs the contract's steps in order on a :class:`TxContext`, so what the contract
reads after a write is what the port reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from ..domain import EMPTY_MAPPING, LiquidationOutcome
from ..fixed_point import ArithmeticOverflow, percent_div_half_up, percent_mul_half_up
from . import error_codes as E
from .configuration import is_using_as_collateral, set_using_as_collateral
from .generic_logic import (
    HEALTH_FACTOR_LIQUIDATION_THRESHOLD,
    a_token_balance_of,
    calculate_user_account_data,
    variable_debt_balance_of,
)
from .reserve_logic import stable_debt_balance_of, update_interest_rates, update_state
from .state import AaveV2State, ReserveData, TxContext
from .tokens import burn_a_token, burn_stable_debt, burn_variable_debt, transfer_on_liquidation

__all__ = [
    "LIQUIDATION_CLOSE_FACTOR_PERCENT",
    "LiquidationCallParams",
    "liquidation_call",
    "validate_liquidation_call",
    "calculate_available_collateral_to_liquidate",
]

#: share (bps) of the chosen debt reserve's debt one call may repay: always 50 %
LIQUIDATION_CLOSE_FACTOR_PERCENT = 5_000


@dataclass(frozen=True, slots=True)
class LiquidationCallParams:
    """``LendingPool.liquidationCall``'s arguments and its ``msg.sender``."""

    collateral_asset: str
    debt_asset: str
    user: str
    debt_to_cover: int
    receive_a_token: bool
    liquidator: str


class _Revert(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def validate_liquidation_call(
    collateral_reserve: ReserveData | None,
    debt_reserve: ReserveData,
    user_configuration: int,
    health_factor: int,
    user_stable_debt: int,
    user_variable_debt: int,
) -> str | None:
    """``ValidationLogic.validateLiquidationCall``, in its order: both reserves active ('2');
    HF < 1 ('42'); the collateral has LT > 0 and is enabled by the user ('43'); the user owes
    the debt asset ('44'). None when the call may proceed. An unlisted collateral reads as an
    all-zero (inactive) reserve."""
    if (
        collateral_reserve is None
        or not collateral_reserve.configuration.active
        or not debt_reserve.configuration.active
    ):
        return E.VL_NO_ACTIVE_RESERVE
    if health_factor >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
        return E.LPCM_HEALTH_FACTOR_NOT_BELOW_THRESHOLD
    if not (
        collateral_reserve.configuration.liquidation_threshold > 0
        and is_using_as_collateral(user_configuration, collateral_reserve.id)
    ):
        return E.LPCM_COLLATERAL_CANNOT_BE_LIQUIDATED
    if user_stable_debt == 0 and user_variable_debt == 0:
        return E.LPCM_SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER
    return None


def calculate_available_collateral_to_liquidate(
    *,
    collateral_price: int,
    debt_asset_price: int,
    collateral_decimals: int,
    debt_asset_decimals: int,
    debt_to_cover: int,
    user_collateral_balance: int,
    liquidation_bonus: int,
) -> tuple[int, int]:
    """``_calculateAvailableCollateralToLiquidate``: (collateral to seize, debt repaid), in base
    units. ``max = percentMul(debtPrice * debtToCover * collUnit, bonus) / (collPrice * debtUnit)``;
    above the user's balance the balance is seized and the debt is
    ``percentDiv(collPrice * balance * debtUnit / (debtPrice * collUnit), bonus)``."""
    collateral_unit = 10**collateral_decimals
    debt_unit = 10**debt_asset_decimals
    denominator = collateral_price * debt_unit
    if denominator == 0:
        raise ArithmeticOverflow("SafeMath: division by zero")
    max_collateral = (
        percent_mul_half_up(debt_asset_price * debt_to_cover * collateral_unit, liquidation_bonus)
        // denominator
    )
    if max_collateral > user_collateral_balance:
        denominator = debt_asset_price * collateral_unit
        if denominator == 0:
            raise ArithmeticOverflow("SafeMath: division by zero")
        debt_needed = percent_div_half_up(
            collateral_price * user_collateral_balance * debt_unit // denominator, liquidation_bonus
        )
        return user_collateral_balance, debt_needed
    return max_collateral, debt_to_cover


def liquidation_call(
    state: AaveV2State, params: LiquidationCallParams, prices: Mapping[str, int], timestamp: int
) -> LiquidationOutcome:
    """``LendingPool.liquidationCall`` in a block at ``timestamp``: the outcome with the events
    and state writes (``effects``) of the transaction, or the revert reason. ``state`` is not
    changed."""
    tx = TxContext(state, timestamp, prices)
    p = params
    try:
        if state.paused:
            raise _Revert(E.LP_IS_PAUSED)
        try:
            debt_repaid, seized = _execute(tx, p)
        except ArithmeticOverflow:  # the delegatecall failed
            raise _Revert(E.LP_LIQUIDATION_CALL_FAILED) from None
    except _Revert as r:
        return LiquidationOutcome(False, r.reason, p.user, p.collateral_asset, p.debt_asset)
    return LiquidationOutcome(
        True,
        None,
        p.user,
        p.collateral_asset,
        p.debt_asset,
        debt_repaid=debt_repaid,
        collateral_seized=seized,
        protocol_fee=0,
        bad_debt=_bad_debt(tx, p.user),
        events=tuple(tx.events),
        effects=tx.effects(),
    )


def _execute(tx: TxContext, p: LiquidationCallParams) -> tuple[int, int]:
    ts = tx.timestamp
    user = tx.user(p.user)
    health_factor = calculate_user_account_data(tx, user).health_factor
    debt_reserve = tx.reserve(p.debt_asset)
    if debt_reserve is None:  # balanceOf on address(0): the call reverts
        raise ArithmeticOverflow("debt reserve not listed")
    position = user.reserve(p.debt_asset)
    user_stable_debt = stable_debt_balance_of(position, ts)
    user_variable_debt = variable_debt_balance_of(tx.state, debt_reserve, position.scaled_variable_debt, ts)
    collateral_reserve = tx.reserve(p.collateral_asset)
    reason = validate_liquidation_call(
        collateral_reserve,
        debt_reserve,
        user.configuration,
        health_factor,
        user_stable_debt,
        user_variable_debt,
    )
    if reason is not None:
        raise _Revert(reason)
    assert collateral_reserve is not None

    user_collateral_balance = a_token_balance_of(
        tx.state, collateral_reserve, user.reserve(p.collateral_asset).scaled_a_token_balance, ts
    )
    max_liquidatable_debt = percent_mul_half_up(
        user_stable_debt + user_variable_debt, LIQUIDATION_CLOSE_FACTOR_PERCENT
    )
    actual_debt = min(p.debt_to_cover, max_liquidatable_debt)
    coll_cfg = collateral_reserve.configuration
    max_collateral, debt_needed = calculate_available_collateral_to_liquidate(
        collateral_price=tx.price(p.collateral_asset),
        debt_asset_price=tx.price(p.debt_asset),
        collateral_decimals=coll_cfg.decimals,
        debt_asset_decimals=debt_reserve.configuration.decimals,
        debt_to_cover=actual_debt,
        user_collateral_balance=user_collateral_balance,
        liquidation_bonus=coll_cfg.liquidation_bonus,
    )
    actual_debt = min(actual_debt, debt_needed)
    if not p.receive_a_token:
        available = collateral_reserve.a_token_underlying_balance
        if available is not None and available < max_collateral:
            raise _Revert(E.LPCM_NOT_ENOUGH_LIQUIDITY_TO_LIQUIDATE)

    debt_reserve = update_state(tx, debt_reserve)
    index = debt_reserve.variable_borrow_index
    if user_variable_debt >= actual_debt:
        burn_variable_debt(tx, p.debt_asset, p.user, actual_debt, index)
    else:
        if user_variable_debt > 0:
            burn_variable_debt(tx, p.debt_asset, p.user, user_variable_debt, index)
        burn_stable_debt(tx, p.debt_asset, p.user, actual_debt - user_variable_debt)
    debt_reserve = _current(tx, p.debt_asset)
    update_interest_rates(tx, debt_reserve, actual_debt, 0)

    if p.receive_a_token:
        liquidator_previous = a_token_balance_of(
            tx.state,
            _current(tx, p.collateral_asset),
            tx.user(p.liquidator).reserve(p.collateral_asset).scaled_a_token_balance,
            ts,
        )
        transfer_on_liquidation(tx, p.collateral_asset, p.user, p.liquidator, max_collateral)
        if liquidator_previous == 0:
            liq = tx.user(p.liquidator)
            tx.put_user(
                p.liquidator,
                liq.with_configuration(
                    set_using_as_collateral(liq.configuration, collateral_reserve.id, True)
                ),
            )
            tx.emit(
                "ReserveUsedAsCollateralEnabled",
                "lending_pool",
                tx.state.pool,
                reserve=p.collateral_asset,
                user=p.liquidator,
            )
    else:
        collateral_reserve = update_state(tx, _current(tx, p.collateral_asset))
        collateral_reserve = update_interest_rates(tx, collateral_reserve, 0, max_collateral)
        burn_a_token(
            tx, p.collateral_asset, p.user, p.liquidator, max_collateral, collateral_reserve.liquidity_index
        )

    if max_collateral == user_collateral_balance:
        u = tx.user(p.user)
        tx.put_user(
            p.user,
            u.with_configuration(set_using_as_collateral(u.configuration, collateral_reserve.id, False)),
        )
        tx.emit(
            "ReserveUsedAsCollateralDisabled", "lending_pool", tx.state.pool, reserve=p.collateral_asset,
            user=p.user,
        )

    debt_reserve = _current(tx, p.debt_asset)  # the liquidator's repayment reaches the aToken
    if debt_reserve.a_token_underlying_balance is not None:
        tx.put_reserve(
            replace(
                debt_reserve, a_token_underlying_balance=debt_reserve.a_token_underlying_balance + actual_debt
            )
        )
    tx.emit(
        "LiquidationCall",
        "lending_pool",
        tx.state.pool,
        collateral_asset=p.collateral_asset,
        debt_asset=p.debt_asset,
        user=p.user,
        debt_to_cover=actual_debt,
        liquidated_collateral_amount=max_collateral,
        liquidator=p.liquidator,
        receive_a_token=p.receive_a_token,
    )
    return actual_debt, max_collateral


def _current(tx: TxContext, asset: str) -> ReserveData:
    r = tx.reserve(asset)
    assert r is not None
    return r


def _bad_debt(tx: TxContext, user_address: str) -> Mapping[str, int]:
    """Debt left on a user with no collateral after the call, per asset (base units, accrued to
    the block). No collateral is what ``calculateUserAccountData`` sees: a total collateral of 0
    ETH wei (an enabled balance too small to be worth 1 wei at the oracle's price counts for
    nothing, as in the contract). v2 keeps that debt on the books."""
    user = tx.user(user_address)
    if calculate_user_account_data(tx, user).total_collateral_eth != 0:
        return EMPTY_MAPPING
    ts = tx.timestamp
    out: dict[str, int] = {}
    for asset, ur in sorted(user.reserves.items()):
        r = tx.reserve(asset)
        if r is None:
            continue
        debt = stable_debt_balance_of(ur, ts) + variable_debt_balance_of(
            tx.state, r, ur.scaled_variable_debt, ts
        )
        if debt:
            out[asset] = debt
    return MappingProxyType(out) if out else EMPTY_MAPPING
