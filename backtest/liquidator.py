"""The liquidator model: who liquidates what, when, and only when it pays.

Timing (the same as a bot reading the chain and sending a transaction). The replay *observes*
an account at the end of block ``n`` when it re-evaluates it (an event touched it, a price move
could have crossed its liquidation point, an oracle answer was published in ``n`` while the
account is liquidatable, or a wake-up below). An account's *episode* starts at the first
observation ``L`` where it is liquidatable and ends at the first observation where it is not.
With ``d = reaction_delay_blocks + finality.wait_blocks``, a liquidation can land in block
``n + 1`` only if ``n + 1 >= L + d``: the account is *due* at observation ``n`` (``d`` of 0 and
1 are the same: a transaction cannot land in the block whose end state it read). An account
observed liquidatable but not yet due gets a wake-up observation at ``L + d - 1``.

**Quote** (:meth:`LiquidatorModel.decide`) at observation ``n`` of a due account, on the state
at the end of ``n`` (interest to ``n``'s timestamp, the oracle prices in force): every
(collateral, debt) pair of the account (collateral enabled and held, debt owed), passing
``debt_to_cover = 2**256 - 1`` as bots do (the protocol caps it at its close factor), or less when
the scenario's ``close_factor_bps`` override or a finite inventory (``flash_loans = false``) caps
it; the adapter gives the exact outcome (:meth:`protocols.base.ProtocolAdapter.liquidate`), its
amounts (debt repaid, collateral seized, protocol fee, bad debt) computed by the protocol at the
oracle prices, as the Pool does. The liquidator values its trade at the *trade prices*:
``prices = "oracle"`` (default) the oracle's, as the sample's on-chain bots decide;
``prices = "reference"`` the ``[reference]`` path's price in force for each price key it covers
(the oracle's for the others), since a real bot buys the debt it repays and sells the collateral it
seizes at market — in a crash with the oracle lagging above the market, a liquidation paying at
the oracle prices may lose at the market's, and a bot valuing at market leaves it (it then also
quotes again the accounts in an episode when a reference price moves, as at an oracle answer;
nothing else it observes changes):

* revenue = trade value of the collateral seized (excluding the protocol fee) − trade value of
  the debt repaid;
* gas = ``gas_units * (base fee of n + 1 + priority_fee_wei)`` wei (under EIP-1559 the next
  block's base fee is known in advance), valued at the trade price under ``gas_price_key`` (ETH's
  price key, e.g. WETH's address; required when ``gas_units > 0``);
* slippage selling the seized collateral: constant product with depth ``D`` (base currency on
  the asset's side): ``s**2 // (D + s)`` for a sale worth ``s`` at the trade price (the shortfall of
  ``D*s/(D+s)`` received against ``s``); or a table of (size in base currency, bps), linear between points,
  linear from (0, 0) up to the first point, flat beyond the last; ``floor(s * bps / 10000)``;
  none when the collateral is the debt asset (nothing is sold). The sales of one block share the
  asset's pool: after sales worth ``P`` of it in the block (earlier liquidations landed there),
  a sale of ``s`` loses ``loss(P + s) - loss(P)``; arbitrage restores the pool between blocks (a
  quote for the next block sees it whole);
* flash-loan fee: ``flash_fee_bps`` of the repaid trade value when ``flash_loans``; without flash loans
  the bot repays from ``inventory`` (debt-asset base units), which each committed liquidation
  draws down;
* profit = revenue − gas − slippage − flash fee, all at the trade prices (``min_profit`` is compared
  with it). :class:`Decision` (and ``bt.liquidations``) keeps the protocol's amounts at the oracle
  prices (``debt_repaid_value``, ``collateral_seized_value``, ``protocol_fee_value``,
  ``bad_debt_value``) and the bot's at the trade prices (``gas_cost_value``, ``slippage_value``,
  ``flash_fee_value``, ``profit_value``): under ``"reference"`` the trade's margin is
  ``profit + gas + slippage + flash fee``, not seized − repaid.

**Size.** With a slippage curve for the collateral, the protocol's largest liquidation need not
pay most (slippage grows faster than the sale): the model also tries the ``debt_to_cover`` of each
sale size where the profit may peak (:meth:`LiquidatorModel._sized_covers`: constant product,
``D / sqrt(1 - a) - D`` for the margin ``a`` before slippage; a table, its points and each
segment's stationary point) and keeps the pair's most profitable outcome, as a bot sizing its
liquidation does (a size the protocol refuses, e.g. Aave v3.3's dust rule, is not taken). When
the largest liquidation of a pair reverts, the largest ``debt_to_cover`` that goes through is
looked for (:meth:`LiquidatorModel._largest_going_through`: a probe at 1/1024 of it, then
bisection), as a bot sizes one to what the protocol can pay out (a collateral reserve with less
underlying than the seizure); a revert at the probe's size too leaves the pair reverted.

It picks the pair with the highest profit (ties: lowest (collateral, debt) addresses) and acts
only if profit >= ``min_profit`` (``min_profit_usd`` / ``min_profit_eth`` in the scenario: whole
base currency). **Action**: the liquidation lands at the top of block
``n + 1`` (before that block's oracle answers and user transactions, as a bot's high tip puts
it), where the same pair and ``debt_to_cover`` are executed on the state then
(:meth:`LiquidatorModel.execute`: interest to ``n + 1``'s timestamp). The block's liquidations
run in the order (profit desc, user asc), at most ``capacity_per_block`` of them (0 =
unlimited); a liquidation that no longer pays ``min_profit`` where it lands (the block's earlier
sales took the pool's depth) is sized again on the landing state (:meth:`LiquidatorModel.decide`
with the block's sales) or left; an account the capacity leaves out, or whose liquidation is
left or reverts where it lands, is observed at the block's end, so a liquidation still due is
quoted again for the next block. In counterfactual mode, with ``repeat_in_block``
(default), the model quotes the account again right after its liquidation and repeats while it
stays liquidatable and a liquidation pays (a bundle) — at most
``backtest.engine.MAX_BUNDLE_LIQUIDATIONS`` (64) liquidations of one account in one block: an
account still liquidatable after them is observed at the block's end and its next liquidation
lands in the next block; without it, one liquidation per account per block (the next one follows
its next observation). Values are base-currency integers, floored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from math import isqrt
from typing import Any

from protocols.base import ProtocolAdapter
from protocols.domain import LiquidationOutcome

from .scenario import LiquidatorSpec, Slippage

__all__ = ["LiquidatorModel", "Decision", "TradePrices", "MAX_UINT256"]

MAX_UINT256 = 2**256 - 1


@dataclass(frozen=True, slots=True)
class Decision:
    """The model's chosen liquidation and its economics (base-currency units): the protocol's
    amounts at the oracle prices (``debt_repaid_value`` to ``bad_debt_value``), the liquidator's at
    the trade prices (``gas_cost_value`` to ``profit_value``, and ``trade_repaid_value`` /
    ``trade_seized_value``: the debt bought and the collateral sold, before slippage; the oracle
    values under ``prices = "oracle"``)."""

    outcome: LiquidationOutcome
    debt_to_cover: int
    debt_repaid_value: int
    collateral_seized_value: int
    protocol_fee_value: int
    bad_debt_value: int
    gas_cost_value: int
    slippage_value: int
    flash_fee_value: int
    profit_value: int
    trade_repaid_value: int
    trade_seized_value: int


Valuer = Callable[[str, int], int]  # (asset, amount) -> base-currency value at the oracle prices


@dataclass(frozen=True, slots=True)
class TradePrices:
    """The prices the liquidator trades at when they are not the oracle's (``[liquidator] prices =
    "reference"``): ``prices`` (price key -> price: the reference in force over the oracle's) and
    ``value`` valuing an amount at them."""

    prices: Mapping[str, int]
    value: Valuer


class LiquidatorModel:
    """See the module docstring. ``unit``: one unit of base currency (USD value = value / unit)."""

    def __init__(self, spec: LiquidatorSpec, unit: int, close_factor_bps: int | None = None):
        self.spec = spec
        self.unit = unit
        self.close_factor_bps = close_factor_bps
        self.min_profit = int(spec.min_profit * unit)
        self.inventory: dict[str, int] = dict(spec.inventory)
        #: how the quotes of :meth:`decide` ended: ``paying``, ``unprofitable`` (a pair went
        #: through, none paid ``min_profit``), ``reverted`` (every pair reverted: why an
        #: underwater account nobody liquidates is left, e.g. a collateral reserve without the
        #: liquidity to pay the underlying out), ``uncovered`` (no inventory of any debt asset);
        #: ``reverted_at_landing``: a paying quote that reverted in the block it landed in
        self.quotes: dict[str, int] = {"paying": 0, "unprofitable": 0, "reverted": 0, "uncovered": 0,
                                       "reverted_at_landing": 0}
        #: revert reason -> quotes whose every pair reverted with it first (sorted output)
        self.revert_reasons: dict[str, int] = {}
        #: collateral asset -> value (base currency) of its seized collateral sold in the block
        #: being executed (:meth:`landed`); the engine clears it at each block's top
        self.sold: dict[str, int] = {}

    def gas_cost(self, base_fee_wei: int, prices: Mapping[str, int]) -> int:
        """``gas_units * (base_fee_wei + priority_fee_wei)`` wei at the ETH price, base currency,
        floored (``wei * price // 10**18``)."""
        if not self.spec.gas_units:
            return 0
        key = self.spec.gas_price_key
        if key is None or key not in prices:
            raise KeyError(f"liquidator.gas_price_key {key!r} has no price (needed to value gas)")
        wei = self.spec.gas_units * (base_fee_wei + self.spec.priority_fee_wei)
        return wei * prices[key] // 10**18

    def slippage(self, asset: str, value: int, sold: int = 0) -> int:
        """The loss selling ``value`` of ``asset`` after sales of ``sold`` in the same block (the
        same pool): ``loss(sold + value) - loss(sold)``, floored (never below 0)."""
        s: Slippage | None = self.spec.slippage.get(asset)
        if s is None or value <= 0:
            return 0
        if not sold:
            return int(self._loss(s, value))
        return max(0, int(self._loss(s, sold + value) - self._loss(s, sold)))

    def _loss(self, s: Slippage, value: int) -> Fraction:
        """The loss of one sale of ``value`` (base currency units) in a fresh pool, exact."""
        if s.depth is not None:
            depth = int(s.depth * self.unit)
            return Fraction(value * value, depth + value)
        size = Fraction(value, self.unit)  # whole base currency, like the table's sizes
        pts = [(Fraction(a), b) for a, b in s.table]
        bps: Fraction
        if size <= pts[0][0]:
            bps = Fraction(pts[0][1]) * (size / pts[0][0] if pts[0][0] else 1)
        elif size >= pts[-1][0]:
            bps = Fraction(pts[-1][1])
        else:
            bps = Fraction(pts[-1][1])
            for (a0, b0), (a1, b1) in zip(pts, pts[1:], strict=False):
                if a0 <= size <= a1:
                    bps = b0 + (b1 - b0) * (size - a0) / (a1 - a0)
                    break
        return value * bps / 10_000

    def _sized_covers(self, dec: Decision, sold: int) -> list[int]:
        """The ``debt_to_cover`` amounts, below ``dec``'s repaid amount, at which the profit of the
        pair of ``dec`` (a liquidation of the largest size allowed, selling its collateral) may
        peak. The seized value is proportional to the repaid one (``S / R``, read on ``dec`` at the
        trade prices, which value the sale and its slippage), so a
        sale ``s`` earns ``a * s - slippage(s)`` with the margin ``a = 1 - (1 + flash fee) R / S``;
        with a convex slippage curve the best ``s`` may be below ``S``: constant product, where
        the derivative is zero, ``(D + s)**2 = D**2 / (1 - a)``; a table, each point's size and
        each segment's stationary point; after sales of ``sold`` in the block, those points less
        ``sold``. Each size ``s`` is repaid by ``debt_repaid * s // S``."""
        o = dec.outcome
        curve = self.spec.slippage.get(o.collateral_asset)
        big_s, big_r, repaid = dec.trade_seized_value, dec.trade_repaid_value, o.debt_repaid
        if curve is None or big_s <= 0 or big_r <= 0 or repaid <= 1:
            return []
        fee = self.spec.flash_fee_bps if self.spec.flash_loans else 0
        one_minus_a = Fraction((10_000 + fee) * big_r, 10_000 * big_s)
        if one_minus_a >= 1:  # no size earns more than it costs before slippage
            return []
        a = 1 - one_minus_a
        sizes: list[int] = []  # sale values (base currency units)
        if curve.depth is not None:
            depth = int(curve.depth * self.unit)
            # D / sqrt(1 - a) - D, in integers: isqrt(D**2 * S * 10**4 / ((10**4 + fee) * R))
            sizes.append(isqrt(depth * depth * big_s * 10_000 // ((10_000 + fee) * big_r)) - depth)
        else:
            pts = [(Fraction(x), Fraction(b)) for x, b in curve.table]
            if pts[0][0] > 0:
                pts.insert(0, (Fraction(0), Fraction(0)))
            for (x0, b0), (x1, b1) in zip(pts, pts[1:], strict=False):
                sizes.append(int(x1 * self.unit))
                m = (b1 - b0) / (x1 - x0)  # bps per whole base currency
                if m > 0:  # a x - x (b0 + m (x - x0)) / 10**4 peaks where its derivative is 0
                    x = (a * 10_000 - b0 + m * x0) / (2 * m)
                    if x0 < x < x1:
                        sizes.append(int(x * self.unit))
        sizes = [x - sold for x in sizes]
        covers = {repaid * s // big_s for s in sizes if 0 < s < big_s}
        return sorted(c for c in covers if 0 < c < repaid)

    def _largest_going_through(self, adapter: ProtocolAdapter[Any], state: Any, user: str, c: str, d: str,
                               hi: int, prices: Mapping[str, int], ts: int, reverted: LiquidationOutcome
                               ) -> tuple[int, LiquidationOutcome]:
        """When the largest liquidation of a pair reverts, the largest ``debt_to_cover`` up to ``hi``
        (the debt owed, or the model's cap) that goes through, as a bot sizes one to what the
        protocol lets it take (e.g. a collateral reserve with less underlying to pay out than the
        seizure): a probe at ``hi / 1024``, then bisection (``reverted`` when the probe reverts
        too: the revert does not depend on the size)."""
        lo = hi >> 10
        if lo <= 0:
            return hi, reverted
        best = adapter.liquidate(state, user, c, d, lo, prices, ts)
        if not best.ok:
            return hi, reverted
        while hi - lo > max(1, hi >> 40):  # to 1e-12 of the size
            mid = (lo + hi) // 2
            out = adapter.liquidate(state, user, c, d, mid, prices, ts)
            if out.ok:
                lo, best = mid, out
            else:
                hi = mid
        return lo, best

    def decide(self, adapter: ProtocolAdapter[Any], state: Any, user: str, prices: Mapping[str, int],
               ts: int, base_fee_wei: int, value: Valuer,
               sold: Mapping[str, int] | None = None, trade: TradePrices | None = None) -> Decision | None:
        """The most profitable paying liquidation of ``user`` on ``state`` at ``ts``, landing in a
        block with base fee ``base_fee_wei``, after the block's earlier sales ``sold`` (collateral
        asset -> value at the trade prices; None: the first of its block, as a quote for the next
        block is); None when no pair pays ``min_profit``. The protocol liquidates at ``prices``
        (valued by ``value``); the liquidator trades at ``trade`` (None: at those same prices)."""
        sold = sold or {}
        positions = adapter.positions(state, user, ts)
        colls = sorted(p.asset for p in positions if p.collateral > 0 and p.collateral_enabled)
        debts = sorted((p.asset, p.debt) for p in positions if p.debt > 0)
        gas = self.gas_cost(base_fee_wei, prices if trade is None else trade.prices) if colls and debts else 0
        best: Decision | None = None
        first_revert: str | None = None
        tried = False
        for c in colls:
            for d, owed in debts:
                cover = MAX_UINT256
                if self.close_factor_bps is not None:
                    cover = owed * self.close_factor_bps // 10_000
                if not self.spec.flash_loans:
                    cover = min(cover, self.inventory.get(d, 0))
                if cover <= 0:
                    continue
                tried = True
                out = adapter.liquidate(state, user, c, d, cover, prices, ts)
                if not out.ok:
                    if first_revert is None:
                        first_revert = str(out.revert_reason)
                    cover, out = self._largest_going_through(adapter, state, user, c, d, min(cover, owed),
                                                             prices, ts, out)
                dec = self._economics(out, cover, gas, value, sold, trade)
                if dec is not None and c != d:
                    # with slippage a smaller sale may pay more: the covers of the candidate sizes
                    for smaller in self._sized_covers(dec, sold.get(c, 0)):
                        alt = self._economics(adapter.liquidate(state, user, c, d, smaller, prices, ts),
                                              smaller, gas, value, sold, trade)
                        if alt is not None and alt.profit_value > dec.profit_value:
                            dec = alt
                if dec is not None and (best is None or dec.profit_value > best.profit_value):
                    best = dec
        if best is None or best.profit_value < self.min_profit:
            if best is not None:
                self.quotes["unprofitable"] += 1
            elif first_revert is not None:
                self.quotes["reverted"] += 1
                self.revert_reasons[first_revert] = self.revert_reasons.get(first_revert, 0) + 1
            elif not tried and colls and debts:
                self.quotes["uncovered"] += 1
            return None
        self.quotes["paying"] += 1
        return best

    def execute(self, adapter: ProtocolAdapter[Any], state: Any, decision: Decision,
                prices: Mapping[str, int], ts: int, value: Valuer, trade: TradePrices | None = None
                ) -> Decision | None:
        """The decided liquidation (same pair and ``debt_to_cover``, capped by what is left of the
        inventory without flash loans) on ``state`` at ``ts``, where it lands, after the block's
        sales so far (:attr:`sold`); its gas is the quoted one. None when it would revert now (it
        is not committed then)."""
        o = decision.outcome
        cover = decision.debt_to_cover
        if not self.spec.flash_loans:
            cover = min(cover, self.inventory.get(o.debt_asset, 0))
            if cover <= 0:
                return None
        out = adapter.liquidate(state, o.user, o.collateral_asset, o.debt_asset, cover, prices, ts)
        if not out.ok:
            self.quotes["reverted_at_landing"] += 1
        return self._economics(out, cover, decision.gas_cost_value, value, self.sold, trade)

    def landed(self, decision: Decision) -> None:
        """Book a liquidation executed in the current block (committed or predicted): its seized
        collateral is sold into the asset's pool (its value at the trade prices), whose depth the
        block's later sales see."""
        c = decision.outcome.collateral_asset
        if c != decision.outcome.debt_asset and c in self.spec.slippage:
            self.sold[c] = self.sold.get(c, 0) + decision.trade_seized_value

    def _economics(self, out: LiquidationOutcome, cover: int, gas: int, value: Valuer,
                   sold: Mapping[str, int], trade: TradePrices | None = None) -> Decision | None:
        """``out``'s amounts at the oracle prices (``value``) and its economics at the trade prices
        (``trade``; None: the oracle's); ``gas`` is already at the trade prices."""
        if not out.ok:
            return None
        c, d = out.collateral_asset, out.debt_asset
        repaid_v = value(d, out.debt_repaid)
        seized_v = value(c, out.collateral_seized)
        fee_v = value(c, out.protocol_fee)
        bad_v = sum(value(a, v) for a, v in sorted(out.bad_debt.items()))
        if trade is None:
            repaid_t, seized_t = repaid_v, seized_v
        else:
            repaid_t, seized_t = trade.value(d, out.debt_repaid), trade.value(c, out.collateral_seized)
        slip = self.slippage(c, seized_t, sold.get(c, 0)) if c != d else 0  # the same asset: unsold
        flash = repaid_t * self.spec.flash_fee_bps // 10_000 if self.spec.flash_loans else 0
        profit = seized_t - repaid_t - gas - slip - flash
        return Decision(out, cover, repaid_v, seized_v, fee_v, bad_v, gas, slip, flash, profit, repaid_t,
                        seized_t)

    def spend(self, decision: Decision) -> None:
        """Draw the inventory down after a committed liquidation (no flash loans)."""
        if not self.spec.flash_loans:
            d = decision.outcome.debt_asset
            self.inventory[d] = self.inventory.get(d, 0) - decision.outcome.debt_repaid


