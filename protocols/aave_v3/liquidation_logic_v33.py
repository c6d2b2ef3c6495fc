"""Aave v3.3+ ``liquidationCall``: whole-debt close factor, dust rule, deficit accounting.

Source: aave-dao/aave-v3-origin ``src/contracts/protocol/libraries/logic/LiquidationLogic.sol``
(``executeLiquidationCall``, ``_burnDebtTokens``, ``_burnBadDebt``, ``_liquidateATokens``,
``_burnCollateralATokens``, ``_calculateAvailableCollateralToLiquidate``) and
``IsolationModeLogic.updateIsolatedDebt`` at tags v3.3.0 (5431379f8beb4d7128c84a81ced3917d856efa84),
v3.4.0 (d7a64127dbecb944a73670fbe6fba136329d9e15) and v3.5.0 (6138e1fda45884b6547d094a1ddeef43dcab4977);
``ValidationLogic.validateLiquidationCall`` (v3.4+ ``SelfLiquidation``); ``helpers/TokenMath.sol``
(v3.5). What is shared with v3.0–3.2 (validation, the collateral formula, token bookkeeping,
indices) is imported from the modules proven against the v3.0.2 bytecode.

The steps, in the contract's order (differences by release in brackets):

1. update the debt reserve [v3.5: then the collateral reserve, cached *before* the debt
   update]; the account data (HF, total collateral and debt in base currency);
2. the user's collateral balance and reserve debt [v3.5: floor / ceil], validation [v3.4+:
   ``SelfLiquidation()`` first];
3. close factor: the whole reserve debt, unless the collateral reserve's and the debt reserve's
   values are both >= ``MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD`` ($2,000, base units) and HF >
   0.95: then, if the reserve debt's value exceeds ``percentMul(totalDebtBase, 50%)``, at most
   ``floor(percentMul(totalDebtBase, 50%) * debtUnit / debtPrice)`` [v3.5: reserve debt value
   rounded up];
4. collateral and fee as in v3.0 [v3.5: ``percentDivCeil`` when the collateral caps], plus the
   collateral's base value ``floor((collateral + fee) * price / unit)``;
5. dust rule: unless the whole reserve debt or the whole collateral goes, the debt and the
   collateral left must each be worth >= ``MIN_LEFTOVER_BASE`` ($1,000), else
   ``MUST_NOT_LEAVE_DUST`` [v3.5: debt leftover rounded up];
6. ``hasNoCollateralLeft = totalCollateralBase == collateralToLiquidateInBase``: then the
   whole reserve debt is burned and the part not repaid becomes the reserve's ``deficit``
   (``DeficitCreated``); after the collateral moves, every other active reserve the user
   still borrows is burned into deficit the same way (``_burnBadDebt``);
7. the isolation-mode total debt of a *collateral with a debt ceiling* drops by the repaid
   amount only (not the deficit).

GHO (v3.3's non-virtual-accounting reserve, whose ``GhoVariableDebtToken`` the deployment data
names): its debt is the token's discounted ``balanceOf`` (health factor, reserve debt, bad debt),
its burn burns the discount (:func:`~.tokens.burn_gho_debt`), and ``_burnDebtTokens`` takes off
its deficit the interest the token accumulated for the user beyond the amount liquidated
(``getBalanceFromInterest``, rebuilt as ``UserReserve.gho_accrued_interest``), handing it to
``GhoAToken.handleRepayment``. Not modelled: the v3.1+ rate strategy (rates stay as they are;
``ReserveDataUpdated`` carries them on replay).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ..base import ZERO_ADDRESS
from ..fixed_point import (
    ArithmeticOverflow,
    mul_div_ceil,
    percent_div_ceil,
    percent_div_half_up,
    percent_mul_half_up,
    ray_div_ceil,
    ray_div_floor,
    ray_div_half_up,
    ray_mul_floor,
)
from . import error_codes as E
from .configuration import (
    DEBT_CEILING_DECIMALS,
    is_borrowing,
    reserve_ids,
    set_borrowing,
    set_using_as_collateral,
)
from .generic_logic import (
    NO_EMODE_CATEGORY,
    calculate_user_account_data,
    is_gho_debt,
    is_in_emode_category,
    variable_debt_balance_of,
)
from .reserve_logic import (
    ReserveCache,
    a_token_balance,
    cache,
    get_normalized_income,
    update_interest_rates,
    update_state,
    variable_debt_balance,
)
from .state import ReserveData, TxContext, UserState
from .tokens import burn_gho_debt, burn_scaled, burn_scaled_exact, gho_handle_repayment, transfer_a_token
from .validation_logic import validate_automatic_use_as_collateral, validate_liquidation_call

__all__ = [
    "MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD",
    "MIN_LEFTOVER_BASE",
    "calculate_available_collateral_to_liquidate_v33",
    "execute_v33",
]

#: base-currency value (USD, 8 decimals) both positions must reach for the 50 % close factor
MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD = 2_000 * 10**8
#: base-currency value a partial liquidation must leave of the debt and of the collateral
MIN_LEFTOVER_BASE = MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD // 2
#: close factor (bps) the cap uses, and the HF (WAD) above which it applies
DEFAULT_LIQUIDATION_CLOSE_FACTOR = 5_000
CLOSE_FACTOR_HF_THRESHOLD = 95 * 10**16


class Revert(Exception):
    """The contract reverts with ``reason`` (a string code; translated by the caller)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _check(reason: str | None) -> None:
    if reason is not None:
        raise Revert(reason)


def _sub(a: int, b: int) -> int:
    if b > a:
        raise ArithmeticOverflow("uint256 underflow")
    return a - b


def _reserve(tx: TxContext, asset: str) -> ReserveData:
    r = tx.reserve(asset)
    if r is None:
        raise Revert(E.EMPTY_REVERT)
    return r


def calculate_available_collateral_to_liquidate_v33(
    *,
    collateral_price: int,
    debt_asset_price: int,
    collateral_decimals: int,
    debt_asset_decimals: int,
    debt_to_cover: int,
    user_collateral_balance: int,
    liquidation_bonus: int,
    liquidation_protocol_fee_percentage: int,
    debt_needed_ceil: bool,
) -> tuple[int, int, int, int]:
    """v3.3+ ``_calculateAvailableCollateralToLiquidate``: (collateral to the liquidator, debt
    repaid, protocol fee, ``collateralToLiquidateInBaseCurrency``). As v3.0's, plus the
    collateral's base value ``floor((collateral incl. fee) * price / unit)``; with
    ``debt_needed_ceil`` (v3.5) the debt a capped collateral covers is ``percentDivCeil``."""
    collateral_unit = 10**collateral_decimals
    debt_unit = 10**debt_asset_decimals
    if collateral_price * debt_unit == 0:
        raise ArithmeticOverflow("division by zero")
    base_collateral = debt_asset_price * debt_to_cover * collateral_unit // (collateral_price * debt_unit)
    max_collateral = percent_mul_half_up(base_collateral, liquidation_bonus)
    if max_collateral > user_collateral_balance:
        collateral_amount = user_collateral_balance
        if debt_asset_price * collateral_unit == 0:
            raise ArithmeticOverflow("division by zero")
        value = collateral_price * collateral_amount * debt_unit // (debt_asset_price * collateral_unit)
        debt_amount_needed = (
            percent_div_ceil(value, liquidation_bonus)
            if debt_needed_ceil
            else percent_div_half_up(value, liquidation_bonus)
        )
    else:
        collateral_amount = max_collateral
        debt_amount_needed = debt_to_cover
    collateral_in_base = collateral_amount * collateral_price // collateral_unit
    fee = 0
    if liquidation_protocol_fee_percentage != 0:
        bonus_collateral = _sub(collateral_amount, percent_div_half_up(collateral_amount, liquidation_bonus))
        fee = percent_mul_half_up(bonus_collateral, liquidation_protocol_fee_percentage)
        collateral_amount = _sub(collateral_amount, fee)
    return collateral_amount, debt_amount_needed, fee, collateral_in_base


def execute_v33(
    tx: TxContext,
    collateral_asset: str,
    debt_asset: str,
    user_address: str,
    debt_to_cover: int,
    receive_a_token: bool,
    liquidator: str,
) -> tuple[int, int, int, dict[str, int]]:
    """Run ``executeLiquidationCall`` (v3.3+ rules) on ``tx``: (debt repaid, collateral to the
    liquidator, protocol fee, deficit created per debt asset). Raises :class:`Revert`, or
    ``ArithmeticOverflow`` for a Solidity panic."""
    rules, ts = tx.rules, tx.timestamp
    v35 = rules.directional_rounding
    deficits: dict[str, int] = {}

    debt_reserve = _reserve(tx, debt_asset)  # cache() reads scaledTotalSupply of the debt token
    rc = cache(debt_reserve, ts)
    coll_rc: ReserveCache | None = None
    if v35:  # the collateral reserve is cached before the debt reserve is updated
        coll_rc = cache(_reserve(tx, collateral_asset), ts)
    tx.put_reserve(update_state(debt_reserve, rc, ts, rules, directional_rounding=v35))
    if coll_rc is not None:
        tx.put_reserve(
            update_state(_reserve(tx, collateral_asset), coll_rc, ts, rules, directional_rounding=True)
        )

    user = tx.user(user_address)
    account = calculate_user_account_data(tx, user)
    health_factor = account.health_factor

    collateral_reserve = tx.reserve(collateral_asset)
    if collateral_reserve is None:  # aToken.balanceOf on address(0): reverts without data
        raise Revert(E.EMPTY_REVERT)
    coll_index = (
        coll_rc.next_liquidity_index if coll_rc is not None else get_normalized_income(collateral_reserve, ts)
    )
    user_collateral_balance = a_token_balance(
        user.reserve(collateral_asset).scaled_a_token_balance, coll_index, rules
    )
    debt_reserve = _reserve(tx, debt_asset)
    if is_gho_debt(tx, debt_reserve):  # GhoVariableDebtToken.balanceOf (v3.3), discounted
        user_reserve_debt = variable_debt_balance_of(
            tx, debt_reserve, user.reserve(debt_asset), rc.next_variable_borrow_index, user_address
        )
    else:
        user_reserve_debt = variable_debt_balance(
            user.reserve(debt_asset).scaled_variable_debt, rc.next_variable_borrow_index, rules
        )

    if rules.forbid_self_liquidation and user_address == liquidator:
        raise Revert(E.SELF_LIQUIDATION)
    debt_reserve = _reserve(tx, debt_asset)
    _check(
        validate_liquidation_call(
            tx.state,
            user.configuration,
            collateral_reserve,
            debt_reserve,
            user_reserve_debt,
            health_factor,
            ts,
        )
    )

    coll_cfg = collateral_reserve.configuration
    liquidation_bonus = coll_cfg.liquidation_bonus
    if user.emode_category != 0 and is_in_emode_category(
        tx, user.emode_category, collateral_reserve.id, coll_cfg.emode_category
    ):
        liquidation_bonus = tx.state.emode_categories.get(
            user.emode_category, NO_EMODE_CATEGORY
        ).liquidation_bonus
    collateral_price = tx.price(collateral_asset)
    debt_price = tx.price(debt_asset)
    collateral_unit = 10**coll_cfg.decimals
    debt_unit = 10**rc.reserve_configuration.decimals

    debt_in_base = (
        mul_div_ceil(user_reserve_debt, debt_price, debt_unit)
        if v35
        else user_reserve_debt * debt_price // debt_unit
    )
    collateral_in_base = user_collateral_balance * collateral_price // collateral_unit

    max_liquidatable_debt = user_reserve_debt
    if (
        collateral_in_base >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD
        and debt_in_base >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD
        and health_factor > CLOSE_FACTOR_HF_THRESHOLD
    ):
        total_default_liquidatable = percent_mul_half_up(
            account.total_debt_base, DEFAULT_LIQUIDATION_CLOSE_FACTOR
        )
        if debt_in_base > total_default_liquidatable:
            max_liquidatable_debt = total_default_liquidatable * debt_unit // debt_price
    actual_debt = min(debt_to_cover, max_liquidatable_debt)

    actual_collateral, actual_debt, fee, coll_to_liquidate_in_base = (
        calculate_available_collateral_to_liquidate_v33(
            collateral_price=collateral_price,
            debt_asset_price=debt_price,
            collateral_decimals=coll_cfg.decimals,
            debt_asset_decimals=rc.reserve_configuration.decimals,
            debt_to_cover=actual_debt,
            user_collateral_balance=user_collateral_balance,
            liquidation_bonus=liquidation_bonus,
            liquidation_protocol_fee_percentage=coll_cfg.liquidation_protocol_fee,
            debt_needed_ceil=v35,
        )
    )

    if actual_debt < user_reserve_debt and actual_collateral + fee < user_collateral_balance:
        debt_left = user_reserve_debt - actual_debt
        debt_left_base = (
            mul_div_ceil(debt_left, debt_price, debt_unit) if v35 else debt_left * debt_price // debt_unit
        )
        coll_left_base = (
            (user_collateral_balance - actual_collateral - fee) * collateral_price // collateral_unit
        )
        if not (debt_left_base >= MIN_LEFTOVER_BASE and coll_left_base >= MIN_LEFTOVER_BASE):
            raise Revert(E.MUST_NOT_LEAVE_DUST)

    if actual_collateral + fee == user_collateral_balance:
        user = tx.user(user_address)
        tx.put_user(
            user_address,
            _with_config(user, set_using_as_collateral(user.configuration, collateral_reserve.id, False)),
        )
        tx.emit(
            "ReserveUsedAsCollateralDisabled",
            "pool",
            tx.state.pool,
            reserve=collateral_asset,
            user=user_address,
        )

    has_no_collateral_left = account.total_collateral_base == coll_to_liquidate_in_base
    _burn_debt_tokens(
        tx, rc, debt_asset, user_address, user_reserve_debt, actual_debt, has_no_collateral_left, deficits
    )

    if coll_cfg.debt_ceiling != 0:  # updateIsolatedDebt of the (isolated) collateral
        _update_isolated_debt(tx, collateral_asset, rc.reserve_configuration.decimals, actual_debt)

    if receive_a_token:
        _liquidate_a_tokens(
            tx,
            collateral_asset,
            user_address,
            liquidator,
            actual_collateral,
            fee,
            user_collateral_balance,
            coll_rc,
        )
    else:
        _burn_collateral_a_tokens(tx, collateral_asset, user_address, liquidator, actual_collateral, coll_rc)

    if fee != 0:
        fee = _transfer_fee(tx, collateral_asset, user_address, fee, coll_rc)

    if has_no_collateral_left and tx.user(user_address).configuration & _BORROWING_MASK:
        _burn_bad_debt(tx, user_address, deficits)

    debt_reserve = _reserve(tx, debt_asset)
    if debt_reserve.a_token_underlying_balance is not None:  # safeTransferFrom(liquidator -> aToken)
        tx.put_reserve(
            replace(
                debt_reserve,
                a_token_underlying_balance=(debt_reserve.a_token_underlying_balance + actual_debt),
            )
        )
    gho_handle_repayment(tx, debt_asset, user_address, actual_debt)  # aToken.handleRepayment
    tx.emit(
        "LiquidationCall",
        "pool",
        tx.state.pool,
        collateral_asset=collateral_asset,
        debt_asset=debt_asset,
        user=user_address,
        debt_to_cover=actual_debt,
        liquidated_collateral_amount=actual_collateral,
        liquidator=liquidator,
        receive_a_token=receive_a_token,
    )
    return actual_debt, actual_collateral, fee, deficits


#: every even bit of the user configuration: the borrowing flags (``isBorrowingAny``)
_BORROWING_MASK = int("01" * 128, 2)


def _with_config(user: UserState, configuration: int) -> UserState:
    return UserState(configuration, user.emode_category, user.reserves)


def _burn_debt_tokens(
    tx: TxContext,
    rc: ReserveCache,
    debt_asset: str,
    user_address: str,
    user_reserve_debt: int,
    actual_debt: int,
    has_no_collateral_left: bool,
    deficits: dict[str, int],
) -> None:
    """``_burnDebtTokens``: burn the repaid debt (or, without collateral left, all of it),
    record the unpaid rest as deficit, clear the borrowing flag, update the rates."""
    rules = tx.rules
    no_more_debt = True
    if user_reserve_debt != 0:
        amount = user_reserve_debt if has_no_collateral_left else actual_debt
        index = rc.next_variable_borrow_index
        if is_gho_debt(tx, _reserve(tx, debt_asset)):  # user_reserve_debt is its balanceOf
            _check(burn_gho_debt(tx, debt_asset, user_address, amount, index, user_reserve_debt))
            no_more_debt = tx.user(user_address).reserve(debt_asset).scaled_variable_debt == 0
        elif rules.directional_rounding:
            reason, no_more_debt = burn_scaled_exact(
                tx,
                debt_asset,
                "variable_debt_token",
                user_address,
                ZERO_ADDRESS,
                ray_div_floor(amount, index),
                index,
            )
            _check(reason)
        else:
            _check(
                burn_scaled(tx, debt_asset, "variable_debt_token", user_address, ZERO_ADDRESS, amount, index)
            )
            no_more_debt = tx.user(user_address).reserve(debt_asset).scaled_variable_debt == 0
        rc.next_scaled_variable_debt = _reserve(tx, debt_asset).variable_debt_scaled_total_supply
    outstanding = _sub(user_reserve_debt, actual_debt)
    reserve = _reserve(tx, debt_asset)
    if has_no_collateral_left and outstanding != 0 and is_gho_debt(tx, reserve):
        # GHO (no virtual accounting): the interest accumulated beyond the amount liquidated is
        # handed to handleRepayment and taken off the deficit (the DAO forgoes it)
        accrued = tx.user(user_address).reserve(debt_asset).gho_accrued_interest
        if accrued != 0 and accrued > actual_debt:
            outstanding = _sub(outstanding, accrued - actual_debt)
            gho_handle_repayment(tx, debt_asset, user_address, accrued - actual_debt)
    if has_no_collateral_left and outstanding != 0:
        tx.put_reserve(replace(reserve, deficit=reserve.deficit + outstanding))
        tx.emit(
            "DeficitCreated",
            "pool",
            tx.state.pool,
            user=user_address,
            debt_asset=debt_asset,
            amount_created=outstanding,
        )
        deficits[debt_asset] = deficits.get(debt_asset, 0) + outstanding
        outstanding = 0
    clear = no_more_debt if rules.borrow_flag_from_balance else outstanding == 0
    if clear:
        user = tx.user(user_address)
        tx.put_user(user_address, _with_config(user, set_borrowing(user.configuration, reserve.id, False)))
    tx.put_reserve(update_interest_rates(tx, _reserve(tx, debt_asset), rc, actual_debt, 0))


def _burn_bad_debt(tx: TxContext, user_address: str, deficits: dict[str, int]) -> None:
    """``_burnBadDebt``: every other reserve the user borrows (active ones only) is updated and
    its whole debt burned into deficit."""
    for i in reserve_ids(tx.user(user_address).configuration):
        if not is_borrowing(tx.user(user_address).configuration, i):
            continue
        asset = tx.state.reserves_list.get(i)
        if asset is None:
            continue
        reserve = _reserve(tx, asset)
        rc = cache(reserve, tx.timestamp)
        if not rc.reserve_configuration.active:
            continue
        tx.put_reserve(
            update_state(
                reserve, rc, tx.timestamp, tx.rules, directional_rounding=tx.rules.directional_rounding
            )
        )
        ur = tx.user(user_address).reserve(asset)
        if is_gho_debt(tx, reserve):  # balanceOf, discounted
            debt = variable_debt_balance_of(tx, reserve, ur, rc.next_variable_borrow_index, user_address)
        else:
            debt = variable_debt_balance(ur.scaled_variable_debt, rc.next_variable_borrow_index, tx.rules)
        _burn_debt_tokens(tx, rc, asset, user_address, debt, 0, True, deficits)


def _update_isolated_debt(tx: TxContext, isolated_asset: str, debt_decimals: int, repay_amount: int) -> None:
    """``IsolationModeLogic.updateIsolatedDebt`` (v3.3+: called for a collateral with a debt
    ceiling; reduced by the repaid amount only)."""
    reserve = _reserve(tx, isolated_asset)
    repaid = repay_amount // 10 ** _sub(debt_decimals, DEBT_CEILING_DECIMALS)
    total = reserve.isolation_mode_total_debt
    new_total = 0 if total <= repaid else total - repaid
    tx.put_reserve(replace(reserve, isolation_mode_total_debt=new_total))
    tx.emit(
        "IsolationModeTotalDebtUpdated", "pool", tx.state.pool, asset=isolated_asset, total_debt=new_total
    )


def _burn_collateral_a_tokens(
    tx: TxContext, asset: str, user: str, liquidator: str, amount: int, coll_rc: ReserveCache | None
) -> None:
    """``_burnCollateralATokens``: update the collateral reserve (v3.5: already done), its
    rates, and burn the user's aTokens (v3.5: ``rayDivCeil`` scaled)."""
    ts = tx.timestamp
    reserve = _reserve(tx, asset)
    if coll_rc is None:
        crc = cache(reserve, ts)
        reserve = update_state(reserve, crc, ts, tx.rules)
        tx.put_reserve(reserve)
    else:  # v3.5 copies the debt cache's scaled debt when both assets are the same; it only
        # feeds the (v3.1+, not ported) rate strategy, so the current supply is used
        crc = coll_rc
        crc.next_scaled_variable_debt = reserve.variable_debt_scaled_total_supply
    tx.put_reserve(update_interest_rates(tx, reserve, crc, 0, amount))
    index = crc.next_liquidity_index
    if coll_rc is None:
        _check(burn_scaled(tx, asset, "a_token", user, liquidator, amount, index))
    else:
        reason, _ = burn_scaled_exact(
            tx, asset, "a_token", user, liquidator, ray_div_ceil(amount, index), index
        )
        _check(reason)
    reserve = _reserve(tx, asset)
    if reserve.a_token_underlying_balance is not None:
        tx.put_reserve(
            replace(reserve, a_token_underlying_balance=_sub(reserve.a_token_underlying_balance, amount))
        )


def _liquidate_a_tokens(
    tx: TxContext,
    asset: str,
    user: str,
    liquidator: str,
    amount: int,
    fee: int,
    user_collateral_balance: int,
    coll_rc: ReserveCache | None,
) -> None:
    """``_liquidateATokens``: move the aTokens to the liquidator and enable them as its
    collateral if it held none (v3.3 also when a self-liquidation takes all the collateral)."""
    reserve = _reserve(tx, asset)
    index = (
        coll_rc.next_liquidity_index if coll_rc is not None else get_normalized_income(reserve, tx.timestamp)
    )
    held = tx.user(liquidator).reserve(asset).scaled_a_token_balance
    scaled = ray_div_ceil(amount, index) if coll_rc is not None else None
    _check(transfer_a_token(tx, asset, user, liquidator, amount, index, scaled))
    self_all = (
        not tx.rules.forbid_self_liquidation
        and liquidator == user
        and amount + fee == user_collateral_balance
    )
    if held == 0 or self_all:
        lq = tx.user(liquidator)
        if validate_automatic_use_as_collateral(tx, liquidator, lq.configuration, reserve.configuration):
            tx.put_user(
                liquidator, _with_config(lq, set_using_as_collateral(lq.configuration, reserve.id, True))
            )
            tx.emit("ReserveUsedAsCollateralEnabled", "pool", tx.state.pool, reserve=asset, user=liquidator)


def _transfer_fee(tx: TxContext, asset: str, user: str, fee: int, coll_rc: ReserveCache | None) -> int:
    """The protocol fee as aTokens to the treasury, clipped to the user's scaled balance (the
    contract's 1-wei guard). Returns the fee actually moved."""
    reserve = _reserve(tx, asset)
    scaled_balance = tx.user(user).reserve(asset).scaled_a_token_balance
    if coll_rc is None:
        index = get_normalized_income(reserve, tx.timestamp)
        if ray_div_half_up(fee, index) > scaled_balance:
            fee = a_token_balance(scaled_balance, index, tx.rules)
        _check(transfer_a_token(tx, asset, user, reserve.treasury, fee, index))
        return fee
    index = coll_rc.next_liquidity_index
    scaled_fee = ray_div_ceil(fee, index)
    if scaled_fee > scaled_balance:
        scaled_fee = scaled_balance
        fee = ray_mul_floor(scaled_balance, index)
    _check(transfer_a_token(tx, asset, user, reserve.treasury, fee, index, scaled_fee))
    return fee


def deficits_mapping(deficits: dict[str, int]) -> Mapping[str, int]:
    """The deficits in asset order, for :attr:`LiquidationOutcome.bad_debt`."""
    return {a: deficits[a] for a in sorted(deficits)}
