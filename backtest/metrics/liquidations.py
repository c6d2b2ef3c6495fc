"""Liquidations: count, volume, bonus paid, and delay from liquidatable to liquidated.

Every liquidation (observed or simulated) is a row of ``bt.liquidations`` written by the engine
(:mod:`backtest.outputs`); this metric summarises them. Figures are split by origin:
``observed_*`` (on-chain LiquidationCalls, historical mode), ``simulated_*`` (the liquidator
model: committed in counterfactual mode, predictions in historical mode). Volume = debt repaid
at the oracle price; bonus = seized + protocol fee − repaid (what borrowers paid above par);
delay = blocks from the first visited block of the account's current run of evaluations
finding it liquidatable (any evaluation, observed by the liquidator model or not; for an observed
liquidation, also the state just before its transaction: a backrun of an answer in its own block
has delay 0) to the liquidation (liquidations of accounts never seen liquidatable are counted in
``*_delay_unknown``). Values in base currency units (Aave v3: USD 1e8) and ``*_usd`` floats.

An observed liquidation whose protocol fee is unknown (its prediction reverted, Aave v3: see
:class:`~backtest.metrics.base.Liquidation`) has no bonus either: ``*_bonus_value``,
``*_bonus_usd`` and ``*_protocol_fee_value`` sum the liquidations whose fee is known, and
``*_protocol_fee_unknown`` counts the others (0: the sums are complete).

Why liquidatable accounts were *not* liquidated: ``quotes_*`` count the liquidator model's
quotes (one per account and block it considered) by how they ended: ``paying`` (it acted, or
predicted an action), ``unprofitable`` (a liquidation went through but paid less than
``min_profit`` after gas, slippage and the flash fee), ``reverted`` (every collateral/debt pair
reverted; ``quotes_reverted_top_reason`` names the commonest revert reason, e.g. Aave's error
code for a collateral reserve without the liquidity to pay out), ``uncovered`` (no inventory of
any of the debts, flash loans off); ``quotes_reverted_at_landing`` counts paying quotes that
reverted in the block they landed in (the state moved in between), which are not liquidations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from .base import Liquidation, Metric, SummaryValue, View

__all__ = ["Liquidations"]


class Liquidations(Metric):
    """Counts, volume, bonus and delay of liquidations (see the module docstring)."""

    name: ClassVar[str] = "liquidations"

    def __init__(self, params: Mapping[str, object] | None = None) -> None:
        super().__init__(params)
        self._unit = 1
        self._acc: dict[str, list[int]] = {}  # origin -> [count, volume, bonus, fee, delayed_n,
        #                                        delay_sum, delay_max, delay_unknown, fee_unknown]
        self._users: dict[str, set[str]] = {"observed": set(), "simulated": set()}
        self._quotes: dict[str, int] = {}

    def on_run_start(self, view: View) -> None:
        self._unit = view.unit

    def on_run_end(self, view: View) -> None:
        # the liquidator model's quotes (optional on a View: read as feed_keys is)
        self._quotes = dict(getattr(view, "liquidator_quotes", {}) or {})

    def on_liquidation(self, view: View, liquidation: Liquidation) -> None:
        origin = "observed" if liquidation.observed else "simulated"
        a = self._acc.setdefault(origin, [0] * 9)
        a[0] += 1
        a[1] += liquidation.debt_repaid_value
        bonus, fee = liquidation.bonus_value, liquidation.protocol_fee_value
        if bonus is None or fee is None:  # the fee is unknown: counted, not summed as 0
            a[8] += 1
        else:
            a[2] += bonus
            a[3] += fee
        d = liquidation.delay_blocks
        if d is None:
            a[7] += 1
        else:
            a[4] += 1
            a[5] += d
            a[6] = max(a[6], d)
        self._users[origin].add(liquidation.user)

    def summary(self) -> Mapping[str, SummaryValue]:
        out: dict[str, SummaryValue] = {}
        for origin in ("observed", "simulated"):
            a = self._acc.get(origin, [0] * 9)
            out |= {
                f"{origin}_count": a[0],
                f"{origin}_accounts": len(self._users[origin]),
                f"{origin}_volume_value": a[1],
                f"{origin}_volume_usd": a[1] / self._unit,
                f"{origin}_bonus_value": a[2],
                f"{origin}_bonus_usd": a[2] / self._unit,
                f"{origin}_protocol_fee_value": a[3],
                f"{origin}_protocol_fee_unknown": a[8],
                f"{origin}_delay_blocks_mean": a[5] / a[4] if a[4] else None,
                f"{origin}_delay_blocks_max": a[6] if a[4] else None,
                f"{origin}_delay_unknown": a[7],
            }
        q = self._quotes
        reasons = sorted(((n, k.split(":", 1)[1]) for k, n in q.items() if k.startswith("reverted:")),
                         key=lambda t: (-t[0], t[1]))
        out |= {f"quotes_{k}": q.get(k, 0)
                for k in ("paying", "unprofitable", "reverted", "uncovered", "reverted_at_landing")}
        out["quotes_reverted_top_reason"] = reasons[0][1] if reasons else None
        return out
