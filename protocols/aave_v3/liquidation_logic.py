"""Aave v3 ``liquidationCall``: close factor, collateral to seize, protocol fee, burns and events.

Source: aave/aave-v3-core @ 724a9ef (v3.0.2) ``contracts/protocol/libraries/logic/LiquidationLogic.sol``
(``executeLiquidationCall``, ``_calculateDebt``, ``_getConfigurationData``,
``_calculateAvailableCollateralToLiquidate``, ``_burnDebtTokens``, ``_burnCollateralATokens``,
``_liquidateATokens``) and ``IsolationModeLogic.sol`` (``updateIsolatedDebtIfIsolated``);
v3.1 (grace period; otherwise unchanged) from aave-dao/aave-v3-origin v3.1.0 (e627c74) and
v3.2 (variable debt only, e-mode bonus from the collateral bitmap, no e-mode oracle) from
v3.2.0 (7c6023e) ``src/contracts/protocol/libraries/logic/LiquidationLogic.sol``. Under v3.3+
rules :func:`execute_liquidation_call` runs :mod:`.liquidation_logic_v33` instead.

The port runs the contract's steps in order on a :class:`TxContext`, so what the contract reads
after a write (an updated index, a cleared flag) is what the port reads. Not modelled: the
ERC-20 transfers of the underlying (the liquidator is assumed to hold and approve the debt;
``a_token_underlying_balance`` is adjusted when known) and incentives controllers.

GHO (rules v3.0.1-v3.3): ``_calculateDebt`` reads the debt with the token's ``balanceOf``,
which for the ``GhoVariableDebtToken`` takes ``percentMul(interest since the user's last action,
discountPercent)`` off (:func:`~.generic_logic.variable_debt_balance_of`, the percent rebuilt
from ``DiscountPercentUpdated``), and its ``burn`` burns that discount too
(:func:`~.tokens.burn_gho_debt`); a percent unknown (set by an earlier simulated burn from the
stkAAVE balance, not rebuilt) raises :class:`~.state.GhoDiscountUnknown` when interest accrued.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from ..base import ZERO_ADDRESS
from ..domain import EMPTY_MAPPING, LiquidationOutcome
from ..fixed_point import (
    WAD,
    ArithmeticOverflow,
    percent_div_half_up,
    percent_mul_half_up,
    ray_div_half_up,
    ray_mul_half_up,
)
from . import error_codes as E
from .configuration import DEBT_CEILING_DECIMALS, is_borrowing, set_borrowing, set_using_as_collateral
from .generic_logic import (
    NO_EMODE_CATEGORY,
    calculate_user_account_data,
    is_gho_debt,
    is_in_emode_category,
    variable_debt_balance_of,
)
from .liquidation_logic_v33 import Revert, deficits_mapping, execute_v33
from .reserve_logic import (
    ReserveCache,
    cache,
    get_normalized_debt,
    get_normalized_income,
    stable_debt_balance_of,
    update_interest_rates,
    update_state,
)
from .state import AaveV3State, ReserveData, TxContext, UserState
from .tokens import burn_gho_debt, burn_scaled, burn_stable_debt, gho_handle_repayment, transfer_a_token
from .validation_logic import (
    get_isolation_mode_state,
    validate_automatic_use_as_collateral,
    validate_liquidation_call,
)

__all__ = [
    "DEFAULT_LIQUIDATION_CLOSE_FACTOR",
    "MAX_LIQUIDATION_CLOSE_FACTOR",
    "CLOSE_FACTOR_HF_THRESHOLD",
    "ExecuteLiquidationCallParams",
    "execute_liquidation_call",
    "calculate_available_collateral_to_liquidate",
]

#: close factor (bps) when HF > CLOSE_FACTOR_HF_THRESHOLD: 50 %
DEFAULT_LIQUIDATION_CLOSE_FACTOR = 5_000
#: close factor (bps) at or below it: 100 %
MAX_LIQUIDATION_CLOSE_FACTOR = 10_000
#: HF (WAD) at or below which the whole debt may be liquidated: 0.95
CLOSE_FACTOR_HF_THRESHOLD = 95 * WAD // 100


@dataclass(frozen=True, slots=True)
class ExecuteLiquidationCallParams:
    """``DataTypes.ExecuteLiquidationCallParams`` (the pool supplies the user's e-mode, the
    oracle and the sentinel from its storage; here they come from the state)."""

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


def _check(reason: str | None) -> None:
    if reason is not None:
        raise _Revert(reason)


def _sub(a: int, b: int) -> int:
    if b > a:
        raise ArithmeticOverflow("uint256 underflow")
    return a - b


def calculate_available_collateral_to_liquidate(
        *, collateral_price: int, debt_asset_price: int, collateral_decimals: int, debt_asset_decimals: int,
        debt_to_cover: int, user_collateral_balance: int, liquidation_bonus: int,
        liquidation_protocol_fee_percentage: int) -> tuple[int, int, int]:
    """``LiquidationLogic._calculateAvailableCollateralToLiquidate``: (collateral to the
    liquidator, debt repaid, protocol fee), collateral and fee in collateral base units.

    ``base = floor(debtPrice * debtToCover * collUnit / (collPrice * debtUnit))``,
    ``max = percentMul(base, bonus)``; capped by the user's balance, in which case the debt is
    ``percentDiv(floor(collPrice * balance * debtUnit / (debtPrice * collUnit)), bonus)``.
    The fee is ``percentMul(coll - percentDiv(coll, bonus), feeBps)``, taken out of ``coll``."""
    collateral_unit = 10 ** collateral_decimals
    debt_unit = 10 ** debt_asset_decimals
    denominator = collateral_price * debt_unit
    if denominator == 0:
        raise ArithmeticOverflow("division by zero")
    base_collateral = debt_asset_price * debt_to_cover * collateral_unit // denominator
    max_collateral = percent_mul_half_up(base_collateral, liquidation_bonus)
    if max_collateral > user_collateral_balance:
        collateral_amount = user_collateral_balance
        denominator = debt_asset_price * collateral_unit
        if denominator == 0:
            raise ArithmeticOverflow("division by zero")
        debt_amount_needed = percent_div_half_up(
            collateral_price * collateral_amount * debt_unit // denominator, liquidation_bonus)
    else:
        collateral_amount = max_collateral
        debt_amount_needed = debt_to_cover
    if liquidation_protocol_fee_percentage != 0:
        bonus_collateral = _sub(collateral_amount, percent_div_half_up(collateral_amount, liquidation_bonus))
        fee = percent_mul_half_up(bonus_collateral, liquidation_protocol_fee_percentage)
        return _sub(collateral_amount, fee), debt_amount_needed, fee
    return collateral_amount, debt_amount_needed, 0


def execute_liquidation_call(state: AaveV3State, params: ExecuteLiquidationCallParams,
                             prices: Mapping[str, int], timestamp: int) -> LiquidationOutcome:
    """``LiquidationLogic.executeLiquidationCall`` in a block at ``timestamp``: the outcome,
    with the events and the state writes (``effects``) of the transaction, or the revert
    reason. ``state`` is not changed."""
    tx = TxContext(state, timestamp, prices)
    p = params
    custom = state.rules.custom_errors
    try:
        if state.rules.deficit_accounting:
            debt_repaid, seized, fee, deficits = execute_v33(tx, p.collateral_asset, p.debt_asset, p.user,
                                                             p.debt_to_cover, p.receive_a_token, p.liquidator)
            bad_debt: Mapping[str, int] = MappingProxyType(deficits_mapping(deficits)) if deficits \
                else EMPTY_MAPPING
        else:
            debt_repaid, seized, fee = _execute(tx, p)
            bad_debt = _bad_debt(tx, p.user)
    except (_Revert, Revert) as r:
        reason = E.reason_for(r.reason, custom)
        return LiquidationOutcome(False, reason, p.user, p.collateral_asset, p.debt_asset)
    except ArithmeticOverflow as e:
        reason = E.PANIC_DIVISION_BY_ZERO if "zero" in str(e) else E.PANIC_ARITHMETIC
        return LiquidationOutcome(False, reason, p.user, p.collateral_asset, p.debt_asset)
    return LiquidationOutcome(True, None, p.user, p.collateral_asset, p.debt_asset, debt_repaid=debt_repaid,
                              collateral_seized=seized, protocol_fee=fee, bad_debt=bad_debt,
                              events=tuple(tx.events), effects=tx.effects())


def _execute(tx: TxContext, p: ExecuteLiquidationCallParams) -> tuple[int, int, int]:
    ts, rules = tx.timestamp, tx.rules
    debt_reserve = tx.reserve(p.debt_asset)
    if debt_reserve is None:  # cache() calls scaledTotalSupply() on address(0)
        raise _Revert(E.EMPTY_REVERT)
    rc = cache(debt_reserve, ts)
    debt_reserve = update_state(debt_reserve, rc, ts, rules)
    tx.put_reserve(debt_reserve)

    user = tx.user(p.user)
    health_factor = calculate_user_account_data(tx, user).health_factor

    # _calculateDebt
    debt_position = user.reserve(p.debt_asset)
    user_variable_debt = 0
    if debt_position.scaled_variable_debt != 0:  # balanceOf (GHO's discounted)
        user_variable_debt = variable_debt_balance_of(tx, debt_reserve, debt_position,
                                                      get_normalized_debt(debt_reserve, ts, rules), p.user)
    user_stable_debt = stable_debt_balance_of(debt_position, ts) if rules.stable_debt else 0
    user_total_debt = user_stable_debt + user_variable_debt
    close_factor = DEFAULT_LIQUIDATION_CLOSE_FACTOR if health_factor > CLOSE_FACTOR_HF_THRESHOLD \
        else MAX_LIQUIDATION_CLOSE_FACTOR
    max_liquidatable_debt = percent_mul_half_up(user_total_debt, close_factor)
    actual_debt_to_liquidate = min(p.debt_to_cover, max_liquidatable_debt)

    collateral_reserve = tx.reserve(p.collateral_asset)
    _check(validate_liquidation_call(tx.state, user.configuration, collateral_reserve, debt_reserve,
                                     user_total_debt, health_factor, ts))
    assert collateral_reserve is not None  # an unlisted collateral fails validation ('27')

    # _getConfigurationData
    coll_cfg = collateral_reserve.configuration
    liquidation_bonus = coll_cfg.liquidation_bonus
    collateral_price_source, debt_price_source = p.collateral_asset, p.debt_asset
    emode = user.emode_category
    if emode != 0:
        category = tx.state.emode_categories.get(emode, NO_EMODE_CATEGORY)
        price_source = category.price_source if rules.emode_price_source else ZERO_ADDRESS
        if is_in_emode_category(tx, emode, collateral_reserve.id, coll_cfg.emode_category):
            liquidation_bonus = category.liquidation_bonus
            if price_source != ZERO_ADDRESS:
                collateral_price_source = price_source
        if price_source != ZERO_ADDRESS:
            debt_price_source = price_source

    user_collateral_balance = ray_mul_half_up(user.reserve(p.collateral_asset).scaled_a_token_balance,
                                              get_normalized_income(collateral_reserve, ts))
    actual_collateral, actual_debt_to_liquidate, fee = calculate_available_collateral_to_liquidate(
        collateral_price=tx.price(collateral_price_source), debt_asset_price=tx.price(debt_price_source),
        collateral_decimals=coll_cfg.decimals, debt_asset_decimals=rc.reserve_configuration.decimals,
        debt_to_cover=actual_debt_to_liquidate, user_collateral_balance=user_collateral_balance,
        liquidation_bonus=liquidation_bonus,
        liquidation_protocol_fee_percentage=coll_cfg.liquidation_protocol_fee)

    config = user.configuration
    if user_total_debt == actual_debt_to_liquidate:
        config = set_borrowing(config, debt_reserve.id, False)
    if actual_collateral + fee == user_collateral_balance:
        config = set_using_as_collateral(config, collateral_reserve.id, False)
        tx.emit("ReserveUsedAsCollateralDisabled", "pool", tx.state.pool, reserve=p.collateral_asset,
                user=p.user)
    tx.put_user(p.user, _with_config(user, config))

    _burn_debt_tokens(tx, p, rc, user_variable_debt, actual_debt_to_liquidate)
    debt_reserve = _reserve(tx, p.debt_asset)
    tx.put_reserve(update_interest_rates(tx, debt_reserve, rc, actual_debt_to_liquidate, 0))
    _update_isolated_debt_if_isolated(tx, config, rc.reserve_configuration.decimals, actual_debt_to_liquidate)

    if p.receive_a_token:
        _liquidate_a_tokens(tx, p, actual_collateral)
    else:
        _burn_collateral_a_tokens(tx, p, actual_collateral)

    if fee != 0:
        collateral_reserve = _reserve(tx, p.collateral_asset)
        liquidity_index = get_normalized_income(collateral_reserve, ts)
        scaled_fee = ray_div_half_up(fee, liquidity_index)
        scaled_user_balance = tx.user(p.user).reserve(p.collateral_asset).scaled_a_token_balance
        if scaled_fee > scaled_user_balance:  # the contract's 1-wei guard
            fee = ray_mul_half_up(scaled_user_balance, liquidity_index)
        _check(transfer_a_token(tx, p.collateral_asset, p.user, collateral_reserve.treasury, fee,
                                liquidity_index))

    debt_reserve = _reserve(tx, p.debt_asset)
    if debt_reserve.a_token_underlying_balance is not None:  # safeTransferFrom(liquidator -> aToken)
        tx.put_reserve(replace(debt_reserve, a_token_underlying_balance=(
            debt_reserve.a_token_underlying_balance + actual_debt_to_liquidate)))
    gho_handle_repayment(tx, p.debt_asset, p.user, actual_debt_to_liquidate)  # aToken.handleRepayment
    tx.emit("LiquidationCall", "pool", tx.state.pool, collateral_asset=p.collateral_asset,
            debt_asset=p.debt_asset, user=p.user, debt_to_cover=actual_debt_to_liquidate,
            liquidated_collateral_amount=actual_collateral, liquidator=p.liquidator,
            receive_a_token=p.receive_a_token)
    return actual_debt_to_liquidate, actual_collateral, fee


def _burn_debt_tokens(tx: TxContext, p: ExecuteLiquidationCallParams, rc: ReserveCache,
                      user_variable_debt: int, actual_debt_to_liquidate: int) -> None:
    """``LiquidationLogic._burnDebtTokens``: variable debt first, then stable (v3.0–3.1)."""
    index = rc.next_variable_borrow_index
    if is_gho_debt(tx, _reserve(tx, p.debt_asset)):  # no stable debt; balanceOf is user_variable_debt
        _check(burn_gho_debt(tx, p.debt_asset, p.user, actual_debt_to_liquidate, index, user_variable_debt))
        rc.next_scaled_variable_debt = _reserve(tx, p.debt_asset).variable_debt_scaled_total_supply
        return
    if not tx.rules.stable_debt or user_variable_debt >= actual_debt_to_liquidate:
        _check(burn_scaled(tx, p.debt_asset, "variable_debt_token", p.user, ZERO_ADDRESS,
                           actual_debt_to_liquidate, index))
        rc.next_scaled_variable_debt = _reserve(tx, p.debt_asset).variable_debt_scaled_total_supply
        return
    if user_variable_debt != 0:
        _check(burn_scaled(tx, p.debt_asset, "variable_debt_token", p.user, ZERO_ADDRESS,
                           user_variable_debt, index))
        rc.next_scaled_variable_debt = _reserve(tx, p.debt_asset).variable_debt_scaled_total_supply
    rc.next_total_stable_debt, rc.next_avg_stable_borrow_rate = burn_stable_debt(
        tx, p.debt_asset, p.user, actual_debt_to_liquidate - user_variable_debt)


def _update_isolated_debt_if_isolated(tx: TxContext, user_configuration: int, debt_decimals: int,
                                      repay_amount: int) -> None:
    """``IsolationModeLogic.updateIsolatedDebtIfIsolated`` (reads the user's configuration as
    already changed by this liquidation)."""
    active, asset, _ = get_isolation_mode_state(tx, user_configuration)
    if not active or asset is None:
        return
    reserve = _reserve(tx, asset)
    repaid = repay_amount // 10 ** _sub(debt_decimals, DEBT_CEILING_DECIMALS)
    total = reserve.isolation_mode_total_debt
    new_total = 0 if total <= repaid else total - repaid
    tx.put_reserve(replace(reserve, isolation_mode_total_debt=new_total))
    tx.emit("IsolationModeTotalDebtUpdated", "pool", tx.state.pool, asset=asset, total_debt=new_total)


def _burn_collateral_a_tokens(tx: TxContext, p: ExecuteLiquidationCallParams, actual_collateral: int) -> None:
    """``LiquidationLogic._burnCollateralATokens``: update the collateral reserve, its rates
    (liquidity taken), and burn the user's aTokens sending the underlying to the liquidator."""
    ts = tx.timestamp
    reserve = _reserve(tx, p.collateral_asset)
    crc = cache(reserve, ts)
    reserve = update_state(reserve, crc, ts, tx.rules)
    tx.put_reserve(reserve)
    reserve = update_interest_rates(tx, reserve, crc, 0, actual_collateral)
    tx.put_reserve(reserve)
    _check(burn_scaled(tx, p.collateral_asset, "a_token", p.user, p.liquidator, actual_collateral,
                       crc.next_liquidity_index))
    reserve = _reserve(tx, p.collateral_asset)
    if reserve.a_token_underlying_balance is not None:
        tx.put_reserve(replace(reserve, a_token_underlying_balance=_sub(reserve.a_token_underlying_balance,
                                                                        actual_collateral)))


def _liquidate_a_tokens(tx: TxContext, p: ExecuteLiquidationCallParams, actual_collateral: int) -> None:
    """``LiquidationLogic._liquidateATokens``: transfer the aTokens to the liquidator, and enable
    them as its collateral if it held none and the asset may be enabled automatically."""
    reserve = _reserve(tx, p.collateral_asset)
    index = get_normalized_income(reserve, tx.timestamp)
    liquidator = tx.user(p.liquidator)
    previous_balance = ray_mul_half_up(liquidator.reserve(p.collateral_asset).scaled_a_token_balance, index)
    _check(transfer_a_token(tx, p.collateral_asset, p.user, p.liquidator, actual_collateral, index))
    if previous_balance == 0:
        liquidator = tx.user(p.liquidator)
        if validate_automatic_use_as_collateral(tx, p.liquidator, liquidator.configuration,
                                                reserve.configuration):
            tx.put_user(p.liquidator, _with_config(
                liquidator, set_using_as_collateral(liquidator.configuration, reserve.id, True)))
            tx.emit("ReserveUsedAsCollateralEnabled", "pool", tx.state.pool, reserve=p.collateral_asset,
                    user=p.liquidator)


def _bad_debt(tx: TxContext, user_address: str) -> Mapping[str, int]:
    """Debt left on a user whose collateral (enabled, LT > 0) is now worth nothing: v3.0–3.2
    keep it on the books (no deficit accounting); it is reported per asset, at the debt token's
    ``balanceOf`` (GHO's discounted)."""
    state = tx.state
    user = tx.user(user_address)
    if calculate_user_account_data(tx, user).total_collateral_base != 0:
        return EMPTY_MAPPING
    out: dict[str, int] = {}
    for asset in sorted(user.reserves):
        reserve = tx.reserve(asset)
        if reserve is None or not is_borrowing(user.configuration, reserve.id):
            continue
        ur = user.reserves[asset]
        index = get_normalized_debt(reserve, tx.timestamp, state.rules)
        debt = variable_debt_balance_of(tx, reserve, ur, index, user_address)  # GHO's discounted
        if state.rules.stable_debt:
            debt += stable_debt_balance_of(ur, tx.timestamp)
        if debt:
            out[asset] = debt
    return MappingProxyType(out) if out else EMPTY_MAPPING


def _with_config(user: UserState, configuration: int) -> UserState:
    return UserState(configuration, user.emode_category, user.reserves)


def _reserve(tx: TxContext, asset: str) -> ReserveData:
    r = tx.reserve(asset)
    if r is None:
        raise _Revert(E.EMPTY_REVERT)
    return r
