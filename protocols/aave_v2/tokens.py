"""Aave v2 token operations a liquidation performs: burns, the liquidation transfer, events.

Source: aave/protocol-v2 @ 9169e0d (npm 1.0.1) ``contracts/protocol/tokenization/AToken.sol``
(``burn``, ``transferOnLiquidation``, ``_transfer``), ``VariableDebtToken.sol`` (``burn``),
``StableDebtToken.sol`` (``burn``, ``_calculateBalanceIncrease``, ``_burn``/``_mint``) and
``IncentivizedERC20.sol`` (``_transfer``/``_burn``: SafeMath-checked balances). The underlying
ERC-20 transfers are not modelled except as the aToken's underlying balance.

v2 tokens emit the *nominal* amount with the index (``Mint(from, value, index)``,
``Burn(from, target, value, index)``, ``BalanceTransfer(from, to, value, index)``), unlike v3's
scaled ``BalanceTransfer`` and ``balanceIncrease`` fields. A revert is raised as
:class:`ArithmeticOverflow` (the collateral manager's delegatecall then fails: reason '23').
"""

from __future__ import annotations

from dataclasses import replace

from ..aave_v3.tokens import stable_burn_totals, stable_burn_user
from ..base import ZERO_ADDRESS
from ..fixed_point import ArithmeticOverflow, ray_div_half_up
from . import error_codes as E
from .reserve_logic import get_normalized_income, stable_debt_balance_of, stable_debt_total_supply
from .state import ReserveData, TxContext

__all__ = ["burn_a_token", "burn_variable_debt", "burn_stable_debt", "transfer_on_liquidation"]


def _reserve(tx: TxContext, asset: str) -> ReserveData:
    r = tx.reserve(asset)
    if r is None:
        raise ArithmeticOverflow(f"call to the tokens of unlisted {asset}")
    return r


def burn_a_token(tx: TxContext, asset: str, user: str, receiver: str, amount: int, index: int) -> None:
    """``AToken.burn(user, receiver, amount, index)``: burns ``rayDiv(amount, index)`` scaled
    units ('58' if 0; more than the balance reverts), sends the underlying to ``receiver``;
    emits ``Transfer`` then ``Burn``."""
    reserve = _reserve(tx, asset)
    scaled = ray_div_half_up(amount, index)
    if scaled == 0:
        raise ArithmeticOverflow(E.CT_INVALID_BURN_AMOUNT)
    u = tx.user(user)
    ur = u.reserve(asset)
    if scaled > ur.scaled_a_token_balance:
        raise ArithmeticOverflow("ERC20: burn amount exceeds balance")
    tx.put_user(
        user, u.with_reserve(asset, replace(ur, scaled_a_token_balance=ur.scaled_a_token_balance - scaled))
    )
    if reserve.a_token_underlying_balance is not None:
        if amount > reserve.a_token_underlying_balance:
            raise ArithmeticOverflow("underlying transfer exceeds the aToken's balance")
        tx.put_reserve(
            replace(reserve, a_token_underlying_balance=reserve.a_token_underlying_balance - amount)
        )
    token = reserve.a_token
    tx.emit("Transfer", "a_token", token, **{"from": user, "to": ZERO_ADDRESS, "value": amount})
    tx.emit("Burn", "a_token", token, **{"from": user, "target": receiver, "value": amount, "index": index})


def burn_variable_debt(tx: TxContext, asset: str, user: str, amount: int, index: int) -> None:
    """``VariableDebtToken.burn(user, amount, index)``: burns ``rayDiv(amount, index)`` scaled
    units ('58' if 0; more than the balance reverts); emits ``Transfer`` then ``Burn``."""
    reserve = _reserve(tx, asset)
    scaled = ray_div_half_up(amount, index)
    if scaled == 0:
        raise ArithmeticOverflow(E.CT_INVALID_BURN_AMOUNT)
    u = tx.user(user)
    ur = u.reserve(asset)
    if scaled > ur.scaled_variable_debt:
        raise ArithmeticOverflow("ERC20: burn amount exceeds balance")
    tx.put_user(
        user, u.with_reserve(asset, replace(ur, scaled_variable_debt=ur.scaled_variable_debt - scaled))
    )
    tx.put_reserve(
        replace(reserve, variable_debt_scaled_total_supply=reserve.variable_debt_scaled_total_supply - scaled)
    )
    token = reserve.variable_debt_token
    tx.emit("Transfer", "variable_debt_token", token, **{"from": user, "to": ZERO_ADDRESS, "value": amount})
    tx.emit("Burn", "variable_debt_token", token, user=user, amount=amount, index=index)


def burn_stable_debt(tx: TxContext, asset: str, user: str, amount: int) -> None:
    """``StableDebtToken.burn(user, amount)``: the user's principal becomes its compounded
    balance minus ``amount`` (rate and timestamp cleared when that is all of it, else the
    timestamp is now); the supply drops by ``amount`` with the average rate re-weighted, both
    reset to 0 when the supply would not stay positive. Emits ``Mint`` (interest above
    ``amount``) or ``Burn``, then ``Transfer``."""
    reserve = _reserve(tx, asset)
    ts = tx.timestamp
    u = tx.user(user)
    ur = u.reserve(asset)
    previous_principal = ur.stable_debt_principal
    current_balance = stable_debt_balance_of(ur, ts) if previous_principal else 0
    balance_increase = current_balance - previous_principal if previous_principal else 0
    previous_supply = stable_debt_total_supply(reserve, ts)
    user_stable_rate = ur.stable_rate
    # the supply and user arithmetic is v3.0.2's too (same Solidity): shared with aave_v3.tokens
    next_supply, total_principal, new_avg = stable_burn_totals(
        previous_supply, reserve.average_stable_rate, user_stable_rate, amount)
    avg = new_avg
    rate, stamp, principal = stable_burn_user(previous_principal, current_balance, balance_increase,
                                              user_stable_rate, amount, ts)
    if principal < 0:  # v2's SafeMath sub reverts here
        raise ArithmeticOverflow(E.SDT_BURN_EXCEEDS_BALANCE)
    tx.put_reserve(
        replace(
            reserve,
            stable_debt_total_principal=total_principal,
            average_stable_rate=avg,
            stable_debt_total_supply_timestamp=ts,
        )
    )
    tx.put_user(
        user,
        u.with_reserve(
            asset, replace(ur, stable_debt_principal=principal, stable_rate=rate, stable_debt_timestamp=stamp)
        ),
    )
    token = reserve.stable_debt_token
    if balance_increase > amount:
        tx.emit(
            "Mint",
            "stable_debt_token",
            token,
            user=user,
            on_behalf_of=user,
            amount=balance_increase - amount,
            current_balance=current_balance,
            balance_increase=balance_increase,
            new_rate=user_stable_rate,
            avg_stable_rate=new_avg,
            new_total_supply=next_supply,
        )
    else:
        tx.emit(
            "Burn",
            "stable_debt_token",
            token,
            user=user,
            amount=amount - balance_increase,
            current_balance=current_balance,
            balance_increase=balance_increase,
            avg_stable_rate=new_avg,
            new_total_supply=next_supply,
        )
    tx.emit("Transfer", "stable_debt_token", token, **{"from": user, "to": ZERO_ADDRESS, "value": amount})


def transfer_on_liquidation(tx: TxContext, asset: str, sender: str, recipient: str, amount: int) -> None:
    """``AToken.transferOnLiquidation`` → ``_transfer(from, to, amount, validate=false)`` at the
    reserve's normalized income ``index``: moves ``rayDiv(amount, index)`` scaled units (more
    than the sender holds reverts); emits ``BalanceTransfer(from, to, amount, index)`` then
    ``Transfer(from, to, amount)``."""
    reserve = _reserve(tx, asset)
    index = get_normalized_income(reserve, tx.timestamp)
    scaled = ray_div_half_up(amount, index)
    s_user = tx.user(sender)
    s_ur = s_user.reserve(asset)
    if scaled > s_ur.scaled_a_token_balance:
        raise ArithmeticOverflow("ERC20: transfer amount exceeds balance")
    tx.put_user(
        sender,
        s_user.with_reserve(
            asset, replace(s_ur, scaled_a_token_balance=s_ur.scaled_a_token_balance - scaled)
        ),
    )
    r_user = tx.user(recipient)
    r_ur = r_user.reserve(asset)
    tx.put_user(
        recipient,
        r_user.with_reserve(
            asset, replace(r_ur, scaled_a_token_balance=r_ur.scaled_a_token_balance + scaled)
        ),
    )
    token = reserve.a_token
    tx.emit(
        "BalanceTransfer",
        "a_token",
        token,
        **{"from": sender, "to": recipient, "value": amount, "index": index},
    )
    tx.emit("Transfer", "a_token", token, **{"from": sender, "to": recipient, "value": amount})
