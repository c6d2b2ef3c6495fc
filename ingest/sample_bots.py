"""The bundled sample's liquidator bots: EOAs on anvil whose decision logic runs here, in Python.

The backtest's liquidator model (``backtest/liquidator.py``) must reproduce the bots' ``(user,
block)`` decisions exactly (issue 4's fidelity test), so the policy is written down completely
here and its parameters are stored in the sample (``meta.sample``, keys ``bots.*``).

Policy (one policy; :attr:`BotParams.executors` EOAs carry it out)
------------------------------------------------------------------
**Observation.** After block ``n`` is mined the bots read ``Pool.getUserAccountData`` (eth_call
at ``n``) of

* every borrower, when block ``n`` carries an oracle round (an ``AnswerUpdated`` of any
  reserve's price source; in the sample: the ETH/USD feed, and the stablecoins' daily
  heartbeat);
* the accounts *touched* in block ``n``: the ``onBehalfOf`` of ``Supply``/``Borrow``, the
  ``user`` of ``Withdraw``/``Repay``/``LiquidationCall``/``UserEModeSet``;
* the accounts whose wake-up (below) falls on ``n``.

Between observations the bots do not poll (interest alone can only move a health factor by the
borrow rate, < 0.01 % per hour here, and it is noticed at the next oracle round).

**Episodes and delay.** An observed account with ``healthFactor < 1e18`` is *underwater*. Its
episode starts at the first observation block ``L`` where it is underwater and ends at the
first observation where it is not. With ``d = reaction_delay_blocks`` (>= 1) a liquidation can
land in block ``n + 1`` only if ``n + 1 >= L + d``: the account is *due* at observation ``n``.
When an underwater account is observed at ``n`` but is not yet due, a wake-up is scheduled at
block ``L + d - 1`` (so a due account is always quoted exactly at ``L + d - 1``).

**Quote** (state at the end of block ``n``, i.e. eth_call at ``n``, timestamp of ``n``). For
every pair (collateral reserve the user has enabled as collateral with a non-zero liquidation
threshold and a non-zero aToken balance, debt reserve with a non-zero debt) the bots compute the
outcome of ``liquidationCall(collateral, debt, user, type(uint256).max, receiveAToken=false)``
with the Aave v3.0 formulas (:func:`quote_liquidation`): close factor 50 % when the HF is above
0.95, else 100 %; collateral and debt balances are the tokens' ``balanceOf`` at ``n``; prices
are ``AaveOracle.getAssetPrice`` at ``n``; the bonus is the e-mode category's when the user is
in e-mode and the collateral belongs to that category, else the reserve's. Values in the
oracle's base currency (USD, 8 decimals), each rounded down::

    gain     = collateral_to_liquidator * P_collateral // 10**dec_collateral
    cost     = debt_repaid * P_debt // 10**dec_debt
    gas_cost = gas_units * (base_fee(n + 1) + priority_fee_wei) * P_WETH // 10**18
    profit   = gain - cost - gas_cost

``base_fee(n + 1)`` is the base fee of the block the transaction lands in (known in advance
under EIP-1559; stored in ``raw.blocks.base_fee_per_gas_wei``). No slippage (the seized
collateral is valued at the oracle price) and no capital limit (the bots hold an inventory of
each debt asset larger than any debt, like a flash loan without fee). The best pair is the one
with the highest profit; ties go to the lower ``(collateral address, debt address)``.

**Action.** If ``profit >= min_profit_base`` the bots send that ``liquidationCall`` with
``debt_to_cover = type(uint256).max``, ``receiveAToken = false``, priority fee
``priority_fee_wei`` and ``maxFeePerGas = base_fee(n + 1) + priority_fee_wei``; it lands at the
top of block ``n + 1`` (its tip is the highest of the block, so it executes before that block's
oracle round and user transactions). No capacity limit per block. Due liquidations of one block
are ordered by ``(profit desc, user asc)`` and handed to executors round-robin. Otherwise the
account stays underwater and is quoted again at its next observation: bad debt is what nobody
finds profitable to liquidate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from protocols.fixed_point import percent_div_half_up, percent_mul_half_up

__all__ = ["BotParams", "Quote", "ReserveInfo", "best_quote", "quote_liquidation",
           "CLOSE_FACTOR_HF_THRESHOLD", "WAD", "MAX_UINT256"]

WAD = 10**18
MAX_UINT256 = 2**256 - 1
CLOSE_FACTOR_HF_THRESHOLD = 95 * WAD // 100  # LiquidationLogic.CLOSE_FACTOR_HF_THRESHOLD (0.95)
DEFAULT_CLOSE_FACTOR_BPS = 5_000
MAX_CLOSE_FACTOR_BPS = 10_000


@dataclass(frozen=True)
class BotParams:
    """The liquidator bots' parameters (stored in ``meta.sample`` as ``bots.<field>``)."""

    reaction_delay_blocks: int = 2
    gas_units: int = 400_000           # gas the bots budget per liquidationCall
    priority_fee_wei: int = 3 * 10**9  # 3 gwei tip
    min_profit_base: int = 10 * 10**8  # $10 (oracle base currency, 8 decimals)
    executors: int = 3                 # EOAs sharing the policy
    receive_a_token: bool = False

    def as_meta(self) -> dict[str, str]:
        return {f"bots.{k}": str(v).lower() if isinstance(v, bool) else str(v)
                for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ReserveInfo:
    """What a quote needs of one reserve (static in the sample: no configuration changes)."""

    address: str
    symbol: str
    decimals: int
    reserve_id: int
    liquidation_threshold: int  # bps
    liquidation_bonus: int      # bps, 10500 = 5 %
    protocol_fee: int           # bps of the bonus
    emode_category: int


@dataclass(frozen=True)
class Quote:
    collateral: str
    debt: str
    debt_repaid: int               # raw units of the debt asset
    collateral_to_liquidator: int  # raw units of the collateral asset
    protocol_fee: int              # raw units of the collateral asset (to the treasury)
    gain_base: int
    cost_base: int
    gas_cost_base: int

    @property
    def profit_base(self) -> int:
        return self.gain_base - self.cost_base - self.gas_cost_base


def quote_liquidation(*, health_factor: int, debt_balance: int, collateral_balance: int,
                      debt_price: int, collateral_price: int, debt_decimals: int,
                      collateral_decimals: int, bonus: int, protocol_fee: int
                      ) -> tuple[int, int, int]:
    """``(debt_repaid, collateral_to_liquidator, protocol_fee)`` of a v3.0 ``liquidationCall``
    with ``debtToCover = type(uint256).max``.

    Ported from aave/aave-v3-core commit 724a9ef (tag v1.19.3),
    ``contracts/protocol/libraries/logic/LiquidationLogic.sol``: ``executeLiquidationCall``'s close
    factor and ``_calculateAvailableCollateralToLiquidate`` (``debt_balance`` is the user's stable
    plus variable debt of the asset; ``collateral_balance`` the aToken ``balanceOf``)."""
    close_factor = DEFAULT_CLOSE_FACTOR_BPS if health_factor > CLOSE_FACTOR_HF_THRESHOLD \
        else MAX_CLOSE_FACTOR_BPS
    debt_to_cover = percent_mul_half_up(debt_balance, close_factor)
    debt_unit, coll_unit = 10**debt_decimals, 10**collateral_decimals
    base_collateral = (debt_price * debt_to_cover * coll_unit) // (collateral_price * debt_unit)
    max_collateral = percent_mul_half_up(base_collateral, bonus)
    if max_collateral > collateral_balance:
        collateral_amount = collateral_balance
        debt_needed = percent_div_half_up(
            (collateral_price * collateral_amount * debt_unit) // (debt_price * coll_unit), bonus)
    else:
        collateral_amount, debt_needed = max_collateral, debt_to_cover
    fee = 0
    if protocol_fee:
        bonus_collateral = collateral_amount - percent_div_half_up(collateral_amount, bonus)
        fee = percent_mul_half_up(bonus_collateral, protocol_fee)
    return debt_needed, collateral_amount - fee, fee


def best_quote(*, reserves: dict[str, ReserveInfo], account: dict[str, Any], prices: dict[str, int],
               base_fee_next: int, params: BotParams, emode: tuple[int, int] | None,
               weth: str) -> Quote | None:
    """The most profitable pair for one underwater account (see the module docstring).

    ``account``: ``health_factor``, ``configuration`` (the user configuration bitmap) and per
    asset ``a_balance``, ``debt`` (stable + variable). ``emode``: (category id, its liquidation
    bonus) when the user is in e-mode. None when no pair exists."""
    gas_cost = params.gas_units * (base_fee_next + params.priority_fee_wei) * prices[weth] // WAD
    config = int(account["configuration"])
    best: Quote | None = None
    for c in sorted(reserves):
        rc = reserves[c]
        enabled = (config >> (rc.reserve_id * 2 + 1)) & 1
        coll_balance = int(account["a_balance"][c])
        if not enabled or rc.liquidation_threshold == 0 or coll_balance == 0:
            continue
        bonus = emode[1] if emode and rc.emode_category == emode[0] else rc.liquidation_bonus
        for d in sorted(reserves):
            rd = reserves[d]
            debt_balance = int(account["debt"][d])
            if debt_balance == 0:
                continue
            repaid, to_liq, fee = quote_liquidation(
                health_factor=int(account["health_factor"]), debt_balance=debt_balance,
                collateral_balance=coll_balance, debt_price=prices[d], collateral_price=prices[c],
                debt_decimals=rd.decimals, collateral_decimals=rc.decimals, bonus=bonus,
                protocol_fee=rc.protocol_fee)
            q = Quote(c, d, repaid, to_liq, fee, to_liq * prices[c] // 10**rc.decimals,
                      repaid * prices[d] // 10**rd.decimals, gas_cost)
            if best is None or q.profit_base > best.profit_base:
                best = q
    return best
