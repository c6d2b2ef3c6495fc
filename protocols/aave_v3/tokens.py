"""Aave v3 token bookkeeping: scaled aToken / variable debt burns and transfers, stable debt burns.

Source: aave/aave-v3-core @ 724a9ef (v3.0.2) ``contracts/protocol/tokenization/base/
ScaledBalanceTokenBase.sol`` (``_burnScaled``, ``_transfer``), ``AToken.sol`` (``burn``,
``transferOnLiquidation``, ``_transfer``), ``VariableDebtToken.sol`` (``burn``),
``StableDebtToken.sol`` (``burn``, ``_calculateBalanceIncrease``) and
``base/IncentivizedERC20.sol`` / ``MintableIncentivizedERC20.sol`` (checked uint128 balance
arithmetic). The underlying ERC-20 transfers are not modelled (they are the token's events).

Each function changes the balances in a :class:`TxContext` and emits the token's events with the
same arguments as the contract (``Transfer``, ``Mint``/``Burn`` with ``balance_increase``,
``BalanceTransfer`` with the scaled amount). A contract revert is returned as its reason.

v3.5 (aave-dao/aave-v3-origin v3.5.0, 6138e1f ``tokenization/base/ScaledBalanceTokenBase.sol``
``_burnScaled``, ``AToken.sol`` ``burn``/``transferOnLiquidation``/``_transfer``,
``VariableDebtToken.sol`` ``burn``): the pool passes the *scaled* amount (rounded by
``TokenMath`` in its favour); balances are ``rayMulFloor`` (aToken) / ``rayMulCeil`` (debt);
the burn's event value is the exact change of the rounded balance
(:func:`burn_scaled_exact`); a transfer's interest is computed with floored balances.
"""

from __future__ import annotations

from dataclasses import replace

from ..base import ZERO_ADDRESS
from ..fixed_point import (
    percent_mul_half_up,
    ray_div_half_up,
    ray_mul_ceil,
    ray_mul_floor,
    ray_mul_half_up,
    wad_to_ray,
)
from . import error_codes as E
from .reserve_logic import stable_debt_balance_of, stable_debt_total_supply
from .state import GhoDiscountUnknown, ReserveData, TxContext

__all__ = ["burn_scaled", "burn_gho_debt", "gho_handle_repayment", "burn_scaled_exact", "transfer_a_token",
           "burn_stable_debt", "stable_burn_totals", "stable_burn_user"]


def burn_scaled(tx: TxContext, asset: str, role: str, user: str, target: str, amount: int,
                index: int) -> str | None:
    """``ScaledBalanceTokenBase._burnScaled`` of the aToken (``role='a_token'``, ``target``
    receives the underlying) or the variable debt token (``target`` is the zero address):
    burns ``rayDiv(amount, index)`` scaled units; '25' if that is 0, a panic if it exceeds the
    balance. Emits ``Transfer`` + ``Burn``, or ``Transfer`` + ``Mint`` when the interest accrued
    since the user's last interaction exceeds ``amount``."""
    reserve = _reserve(tx, asset)
    amount_scaled = ray_div_half_up(amount, index)
    if amount_scaled == 0:
        return E.INVALID_BURN_AMOUNT
    u = tx.user(user)
    ur = u.reserve(asset)
    a_token = role == "a_token"
    scaled = ur.scaled_a_token_balance if a_token else ur.scaled_variable_debt
    previous = ur.a_token_previous_index if a_token else ur.variable_debt_previous_index
    if amount_scaled > scaled:
        return E.PANIC_ARITHMETIC
    balance_increase = ray_mul_half_up(scaled, index) - ray_mul_half_up(scaled, previous)
    if a_token:
        ur = replace(ur, scaled_a_token_balance=scaled - amount_scaled, a_token_previous_index=index)
        token = reserve.a_token
    else:
        ur = replace(ur, scaled_variable_debt=scaled - amount_scaled, variable_debt_previous_index=index)
        token = reserve.variable_debt_token
        tx.put_reserve(replace(reserve, variable_debt_scaled_total_supply=(
            reserve.variable_debt_scaled_total_supply - amount_scaled)))
    tx.put_user(user, u.with_reserve(asset, ur))
    _emit_burn(tx, role, token, user, target, balance_increase - amount, balance_increase, index)
    return None


def burn_gho_debt(tx: TxContext, asset: str, user: str, amount: int, index: int,
                  balance_before: int) -> str | None:
    """GHO's ``GhoVariableDebtToken.burn`` → ``_burnScaled(user, address(0), amount, index)``
    (gho-core 51be447; the full-repayment case from b2db754, 397336c before): '25' if
    ``rayDiv(amount, index)`` is 0;
    ``_accrueDebtOnAction`` takes ``discount = percentMul(raw, discountPercent)`` off the interest
    ``raw = rayMul(s, index) - rayMul(s, previousIndex)`` (when both are non-zero) and burns
    ``rayDiv(discount, index)`` besides ``rayDiv(amount, index)``, or the whole scaled balance
    when ``amount`` is ``balance_before`` (its ``balanceOf`` before the burn, which the caller
    computed) and the token has b2db754's full repayment (Ethereum's launch implementation has
    not, ``AaveV3State.gho_burns_whole_debt``); a panic if that exceeds the balance. The
    discounted interest is added to the user's ``gho_accrued_interest``
    (``accumulatedDebtInterest``). Emits ``Transfer`` + ``Burn`` (or ``Mint`` when the discounted
    interest exceeds ``amount``) with the discounted ``balanceIncrease``.
    The token then refreshes the discount percent from the user's stkAAVE balance, which is not
    rebuilt: the percent becomes unknown (None), unless no debt is left. No
    ``DiscountPercentUpdated`` is emitted (its new value is unknown)."""
    reserve = _reserve(tx, asset)
    amount_scaled = ray_div_half_up(amount, index)
    if amount_scaled == 0:
        return E.INVALID_BURN_AMOUNT
    u = tx.user(user)
    ur = u.reserve(asset)
    scaled = ur.scaled_variable_debt
    increase = ray_mul_half_up(scaled, index) - ray_mul_half_up(scaled, ur.variable_debt_previous_index)
    if increase < 0:
        return E.PANIC_ARITHMETIC
    discount_scaled = 0
    percent = ur.discount_percent
    if increase != 0 and percent != 0:
        if percent is None:  # the caller's balanceOf raised already; kept for direct callers
            raise GhoDiscountUnknown(f"{user}'s GHO discount percent in {reserve.variable_debt_token} is "
                                     f"unknown and {increase} of interest accrued since its last action")
        discount = percent_mul_half_up(increase, percent)
        discount_scaled = ray_div_half_up(discount, index)
        increase -= discount
    whole = amount == balance_before and tx.state.gho_burns_whole_debt(reserve.variable_debt_token)
    burned_scaled = scaled if whole else amount_scaled + discount_scaled
    if burned_scaled > scaled:
        return E.PANIC_ARITHMETIC
    left = scaled - burned_scaled
    tx.put_reserve(replace(reserve, variable_debt_scaled_total_supply=(
        reserve.variable_debt_scaled_total_supply - burned_scaled)))
    tx.put_user(user, u.with_reserve(asset, replace(
        ur, scaled_variable_debt=left, variable_debt_previous_index=index,
        discount_percent=None if left else 0, gho_accrued_interest=ur.gho_accrued_interest + increase)))
    _emit_burn(tx, "variable_debt_token", reserve.variable_debt_token, user, ZERO_ADDRESS, increase - amount,
               increase, index)
    return None


def gho_handle_repayment(tx: TxContext, asset: str, user: str, amount: int) -> None:
    """``GhoAToken.handleRepayment(_, user, amount)`` (gho-core 51be447) when ``asset``'s variable
    debt token is a GhoVariableDebtToken (rules v3.0.1-v3.3): the user's accumulated interest
    (``getBalanceFromInterest``) drops by ``min(amount, it)`` (the GHO burned is not modelled);
    nothing for any other reserve."""
    reserve = _reserve(tx, asset)
    if not tx.rules.gho_discount or reserve.variable_debt_token.lower() not in tx.state.discount_debt_tokens:
        return
    u = tx.user(user)
    ur = u.reserve(asset)
    acc = ur.gho_accrued_interest
    tx.put_user(user, u.with_reserve(asset, replace(ur, gho_accrued_interest=acc - min(amount, acc))))


def burn_scaled_exact(tx: TxContext, asset: str, role: str, user: str, target: str, amount_scaled: int,
                      index: int) -> tuple[str | None, bool]:
    """v3.5 ``_burnScaled(user, target, amountScaled, index, getTokenBalance)``: burns exactly
    ``amount_scaled``; '25' if it is 0, a panic if it exceeds the balance. With ``bal`` the
    token's rounded balance (aToken floor, debt ceil), ``prev = bal(scaled, lastIndex)``,
    ``next = bal(scaled - amountScaled, index)``: ``Mint`` of ``next - prev`` if positive, else
    ``Burn`` of ``prev - next``; both carry ``balanceIncrease = bal(scaled, index) - prev``.
    Returns (revert reason, whether the scaled balance is now 0)."""
    reserve = _reserve(tx, asset)
    if amount_scaled == 0:
        return E.INVALID_BURN_AMOUNT, False
    u = tx.user(user)
    ur = u.reserve(asset)
    a_token = role == "a_token"
    bal = ray_mul_floor if a_token else ray_mul_ceil
    scaled = ur.scaled_a_token_balance if a_token else ur.scaled_variable_debt
    previous_index = ur.a_token_previous_index if a_token else ur.variable_debt_previous_index
    if amount_scaled > scaled:
        return E.PANIC_ARITHMETIC, False
    next_balance = bal(scaled - amount_scaled, index)
    previous_balance = bal(scaled, previous_index)
    balance_increase = bal(scaled, index) - previous_balance
    if a_token:
        ur = replace(ur, scaled_a_token_balance=scaled - amount_scaled, a_token_previous_index=index)
        token = reserve.a_token
    else:
        ur = replace(ur, scaled_variable_debt=scaled - amount_scaled, variable_debt_previous_index=index)
        token = reserve.variable_debt_token
        tx.put_reserve(replace(reserve, variable_debt_scaled_total_supply=(
            reserve.variable_debt_scaled_total_supply - amount_scaled)))
    tx.put_user(user, u.with_reserve(asset, ur))
    _emit_burn(tx, role, token, user, target, next_balance - previous_balance, balance_increase, index)
    return None, scaled == amount_scaled


def transfer_a_token(tx: TxContext, asset: str, sender: str, recipient: str, amount: int,
                     index: int, scaled_amount: int | None = None) -> str | None:
    """``AToken.transferOnLiquidation`` → ``_transfer(from, to, amount, validate=false)`` at
    ``index`` (the reserve's normalized income): moves ``rayDiv(amount, index)`` scaled units
    (a panic if the sender has fewer); both parties' accrued interest is announced with
    ``Transfer`` + ``Mint`` (caller: the pool); then ``Transfer`` and ``BalanceTransfer``.

    v3.5: the pool gives ``scaled_amount`` (``rayDivCeil``) and interest uses floored balances."""
    reserve = _reserve(tx, asset)
    token, pool = reserve.a_token, tx.state.pool
    bal = ray_mul_half_up if scaled_amount is None else ray_mul_floor
    s_user = tx.user(sender)
    s_ur = s_user.reserve(asset)
    amount_scaled = ray_div_half_up(amount, index) if scaled_amount is None else scaled_amount
    s_scaled = s_ur.scaled_a_token_balance
    s_increase = bal(s_scaled, index) - bal(s_scaled, s_ur.a_token_previous_index)
    if amount_scaled > s_scaled:
        return E.PANIC_ARITHMETIC
    tx.put_user(sender, s_user.with_reserve(
        asset, replace(s_ur, scaled_a_token_balance=s_scaled - amount_scaled, a_token_previous_index=index)))
    r_user = tx.user(recipient)
    r_ur = r_user.reserve(asset)
    r_scaled = r_ur.scaled_a_token_balance
    # for sender == recipient this reads the balance after the debit, as the contract reads
    # both balances before either write but writes them in turn; the difference cancels out
    r_increase = bal(r_scaled, index) - bal(r_scaled, r_ur.a_token_previous_index)
    tx.put_user(recipient, r_user.with_reserve(
        asset, replace(r_ur, scaled_a_token_balance=r_scaled + amount_scaled, a_token_previous_index=index)))
    if s_increase > 0:
        tx.emit("Transfer", "a_token", token, **{"from": ZERO_ADDRESS, "to": sender, "value": s_increase})
        tx.emit("Mint", "a_token", token, caller=pool, on_behalf_of=sender, value=s_increase,
                balance_increase=s_increase, index=index)
    if sender != recipient and r_increase > 0:
        tx.emit("Transfer", "a_token", token, **{"from": ZERO_ADDRESS, "to": recipient, "value": r_increase})
        tx.emit("Mint", "a_token", token, caller=pool, on_behalf_of=recipient, value=r_increase,
                balance_increase=r_increase, index=index)
    tx.emit("Transfer", "a_token", token, **{"from": sender, "to": recipient, "value": amount})
    tx.emit("BalanceTransfer", "a_token", token, **{"from": sender, "to": recipient, "value": amount_scaled,
                                                    "index": index})
    return None


def burn_stable_debt(tx: TxContext, asset: str, user: str, amount: int) -> tuple[int, int]:
    """``StableDebtToken.burn(user, amount)``: the user's principal becomes its compounded
    balance minus ``amount`` (timestamp now, or cleared with the rate when repaid in full);
    the supply drops by ``amount`` and the average rate is re-weighted (both reset to 0 when the
    last debt goes, as the contract does). Returns (next supply, next average rate)."""
    reserve = _reserve(tx, asset)
    ts = tx.timestamp
    u = tx.user(user)
    ur = u.reserve(asset)
    previous_principal = ur.stable_debt_principal
    current_balance = stable_debt_balance_of(ur, ts) if previous_principal else 0
    balance_increase = current_balance - previous_principal
    previous_supply = stable_debt_total_supply(reserve, ts)
    user_stable_rate = ur.stable_rate
    next_supply, total_principal, next_avg = stable_burn_totals(
        previous_supply, reserve.average_stable_rate, user_stable_rate, amount)
    avg = next_avg
    rate, stamp, principal = stable_burn_user(previous_principal, current_balance, balance_increase,
                                              user_stable_rate, amount, ts)
    tx.put_reserve(replace(reserve, stable_debt_total_principal=total_principal, average_stable_rate=avg,
                           stable_debt_total_supply_timestamp=ts))
    tx.put_user(user, u.with_reserve(asset, replace(ur, stable_debt_principal=principal, stable_rate=rate,
                                                    stable_debt_timestamp=stamp)))
    token = reserve.stable_debt_token
    if balance_increase > amount:
        minted = balance_increase - amount
        tx.emit("Transfer", "stable_debt_token", token, **{"from": ZERO_ADDRESS, "to": user, "value": minted})
        tx.emit("Mint", "stable_debt_token", token, user=user, on_behalf_of=user, amount=minted,
                current_balance=current_balance, balance_increase=balance_increase, new_rate=user_stable_rate,
                avg_stable_rate=next_avg, new_total_supply=next_supply)
    else:
        burned = amount - balance_increase
        tx.emit("Transfer", "stable_debt_token", token, **{"from": user, "to": ZERO_ADDRESS, "value": burned})
        tx.emit("Burn", "stable_debt_token", token, **{"from": user, "amount": burned,
                                                       "current_balance": current_balance,
                                                       "balance_increase": balance_increase,
                                                       "avg_stable_rate": next_avg,
                                                       "new_total_supply": next_supply})
    return next_supply, next_avg


def stable_burn_totals(previous_supply: int, average_rate: int, user_rate: int,
                       amount: int) -> tuple[int, int, int]:
    """The supply side of ``StableDebtToken.burn``, the same Solidity in v2 (protocol-v2
    9169e0d) and v3.0.2, so :mod:`protocols.aave_v2.tokens` uses this too: (next supply as the
    events report it, stored total principal, new average rate in RAY). Burning all of the
    supply or more zeroes both; when the user's share of the weighted rate reaches the total's
    (rounding at the last repayment) the stored principal and the average go to 0 while the
    reported next supply stays ``previous - amount``, as in the contract."""
    if previous_supply <= amount:
        return 0, 0, 0
    next_supply = previous_supply - amount
    first_term = ray_mul_half_up(average_rate, wad_to_ray(previous_supply))
    second_term = ray_mul_half_up(user_rate, wad_to_ray(amount))
    if second_term >= first_term:
        return next_supply, 0, 0
    return next_supply, next_supply, ray_div_half_up(first_term - second_term, wad_to_ray(next_supply))


def stable_burn_user(previous_principal: int, current_balance: int, balance_increase: int, user_rate: int,
                     amount: int, timestamp: int) -> tuple[int, int, int]:
    """The user side of ``StableDebtToken.burn`` (same Solidity in v2 and v3.0.2): (stable rate,
    timestamp, principal). Rate and timestamp are cleared when ``amount`` is the whole compounded
    balance, else the timestamp is now; the principal is the balance minus ``amount`` (negative
    when ``amount`` exceeds it: v3's pool never burns that much, v2 reverts, see its caller)."""
    if amount == current_balance:
        rate, stamp = 0, 0
    else:
        rate, stamp = user_rate, timestamp
    if balance_increase > amount:
        return rate, stamp, previous_principal + (balance_increase - amount)
    return rate, stamp, previous_principal - (amount - balance_increase)


def _emit_burn(tx: TxContext, role: str, token: str, user: str, target: str, net: int, balance_increase: int,
               index: int) -> None:
    """A scaled token's burn events (``ScaledBalanceTokenBase._burnScaled``): ``Transfer`` + ``Mint``
    of ``net`` when the interest accrued exceeds the amount burned (``net`` > 0), else ``Transfer``
    + ``Burn`` of ``-net``, each with the ``balance_increase`` and ``index``."""
    if net > 0:
        tx.emit("Transfer", role, token, **{"from": ZERO_ADDRESS, "to": user, "value": net})
        tx.emit("Mint", role, token, caller=user, on_behalf_of=user, value=net,
                balance_increase=balance_increase, index=index)
    else:
        tx.emit("Transfer", role, token, **{"from": user, "to": ZERO_ADDRESS, "value": -net})
        tx.emit("Burn", role, token, **{"from": user, "target": target, "value": -net,
                                        "balance_increase": balance_increase, "index": index})


def _reserve(tx: TxContext, asset: str) -> ReserveData:
    r = tx.reserve(asset)
    if r is None:
        raise KeyError(asset)
    return r
