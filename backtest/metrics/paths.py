"""Paths and snapshots for reports: every price the replay consumed and every indebted account's
health at the window's start and end.

* ``bt.price_path``: one row per oracle or reference price update in the replay's total order
  (what the protocol read under the scenario's oracle model, shocks included, and the reference
  path), with the price in the adapter's base currency per whole token, led by the prices in
  force at the window start (log index -2 of its first block: without them a price was unknown
  in the table until a feed's first update inside the window, up to a heartbeat later);
* ``bt.health_snapshots``: every account with debt at the window start (after the starting state
  is built, before the first block's inputs) and at the window end, with its health factor at
  oracle and at reference prices. The end snapshot evaluates every account afresh at the last
  block (its timestamp, the prices in force): the engine's last evaluation of an account can be
  older (the at-risk index skips price moves that cannot make it liquidatable, and reference
  moves altogether unless a metric tracks the reference), so copying it reported the health
  before the window's moves.

The report (:mod:`backtest.report`) draws the oracle-against-reference plot from the first and
the health-factor distributions from the second. Health factors are exact decimal text (an
indebted account's HF has no fixed bound) plus a float for plotting.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from ingest.schema import Column, Table, register_table

from .base import AccountEval, Metric, PriceUpdate, SummaryValue, View

__all__ = ["Paths", "PRICE_PATH", "HEALTH_SNAPSHOTS"]

WAD = 10**18

PRICE_PATH = register_table(Table(
    "bt", "price_path", "Every price update a run consumed, oracle (what the protocol read under the "
    "oracle model) and reference, in replay order.",
    (
        Column("run_id", "VARCHAR", "backtest run (bt.runs)", False),
        Column("chain_id", "UBIGINT", "chain replayed", False),
        Column("block_number", "UBIGINT", "block the price took effect in (knowable)", False),
        Column("log_index", "BIGINT", "log index of the round (-1: start of block, e.g. a delayed or "
               "reference-derived answer; -2: the price in force at the window start, carried from "
               "before it, in the window's first block)", False),
        Column("block_ts", "UBIGINT", "its block timestamp, unix seconds", False),
        Column("kind", "VARCHAR", "oracle | reference", False),
        Column("feed", "VARCHAR", "oracle feed (proxy address) or reference pair", False),
        Column("price_key", "VARCHAR", "first price key the update sets (Aave: an asset address)", False),
        Column("price", "HUGEINT", "price in base currency per whole token (Aave v3: USD 1e8)", False),
        Column("accepted", "BOOLEAN", "false: rejected by the oracle model's answer bounds", False),
        Column("happened_block", "UBIGINT", "block the round was produced in (or the reference instant's)",
               False),
        Column("price_f64", "DOUBLE", "derived: price in whole base currency per whole token "
               "(bt.runs.base_currency: USD for Aave v3, ETH for v2)", False),
    ),
    "backtest.metrics.paths", ("run_id", "block_number", "log_index", "kind", "feed", "price_key")))

HEALTH_SNAPSHOTS = register_table(Table(
    "bt", "health_snapshots", "Every account with debt at the start and at the end of a run's window, "
    "with its health factor at oracle and reference prices.",
    (
        Column("run_id", "VARCHAR", "backtest run (bt.runs)", False),
        Column("chain_id", "UBIGINT", "chain replayed", False),
        Column("block_number", "UBIGINT", "the window's first block (start) or last block (end)", False),
        Column("phase", "VARCHAR", "start | end", False),
        Column("user", "VARCHAR", "account", False),
        Column("collateral_value", "HUGEINT", "collateral at oracle prices, base currency units", False),
        Column("debt_value", "HUGEINT", "debt at oracle prices, base currency units", False),
        Column("health_factor_wad", "VARCHAR", "HF at oracle prices, WAD, exact decimal", False),
        Column("health_factor_reference_wad", "VARCHAR", "HF at reference prices, oracle prices for keys no "
               "reference pair covers (NULL: no reference, or a held key's reference path not begun yet)"),
        Column("health_factor_f64", "DOUBLE", "derived: HF at oracle prices", False),
        Column("health_factor_reference_f64", "DOUBLE", "derived: HF at reference prices"),
        Column("debt_base_f64", "DOUBLE", "derived: debt_value in "
               "whole base currency (bt.runs.base_currency)", False),
    ),
    "backtest.metrics.paths", ("run_id", "phase", "user")))


class Paths(Metric):
    """Price path and start/end health snapshots (see the module docstring)."""

    name: ClassVar[str] = "paths"
    tables: ClassVar[tuple[Table, ...]] = (PRICE_PATH, HEALTH_SNAPSHOTS)

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self._prices: list[tuple[Any, ...]] = []
        self._health: list[tuple[Any, ...]] = []
        self._unit = 1
        self._counts = {"oracle": 0, "reference": 0, "rejected": 0, "source_changes": 0}

    def on_run_start(self, view: View) -> None:
        self._unit = view.unit
        for u in getattr(view, "start_updates", ()):
            self._price_row(view, u)
        self._snapshot(view, "start")

    def on_price(self, view: View, update: PriceUpdate) -> None:
        # a change of oracle source is a row (the keys now read that feed's answer), not an answer
        self._counts["source_changes" if update.source_change else update.kind] += 1
        self._counts["rejected"] += not update.accepted
        self._price_row(view, update)

    def _price_row(self, view: View, u: PriceUpdate) -> None:
        self._prices.append((view.run_id, view.chain_id, u.block_number, u.log_index, u.timestamp, u.kind,
                             u.feed, u.keys[0] if u.keys else "", u.price, u.accepted, u.happened_block,
                             u.price / self._unit))

    def on_run_end(self, view: View) -> None:
        self._snapshot(view, "end", self._fresh(view))

    @staticmethod
    def _fresh(view: View) -> list[AccountEval]:
        """Every account evaluated at the current block, as the engine evaluates one (reference:
        the reference prices over the oracle ones, for an account with debt)."""
        ts = view.block.timestamp
        prices = view.prices
        ref_prices = ChainMap(dict(view.reference_prices), dict(prices)) \
            if view.scenario.reference is not None else None
        out = []
        for user in sorted(view.adapter.users(view.state)):
            h = view.adapter.account(view.state, user, prices, ts)
            r = view.adapter.account(view.state, user, ref_prices, ts) \
                if ref_prices is not None and h.debt_value else None
            out.append(AccountEval(user, h, r))
        return out

    @staticmethod
    def _unreferenced(view: View) -> frozenset[str]:
        """Price keys a reference pair covers but the reference path has not priced yet (its
        first point comes after the window start): an account's reference evaluation would read
        the oracle price for them (the engine's fallback), passing the oracle HF off as the
        reference one."""
        ref = view.scenario.reference if view.scenario is not None else None
        if ref is None:
            return frozenset()
        feed_keys: Mapping[str, Sequence[str]] = getattr(view, "feed_keys", None) or {}
        have = view.reference_prices
        return frozenset(k for f in ref.pairs for k in feed_keys.get(f, ()) if k not in have)

    def _snapshot(self, view: View, phase: str, evals: Iterable[AccountEval] | None = None) -> None:
        missing = self._unreferenced(view)
        ts = view.block.timestamp
        for ev in (view.accounts() if evals is None else evals):
            h = ev.oracle
            if not h.debt_value:
                continue
            r = ev.reference
            if r is not None and missing and any(
                    k in missing for p in view.adapter.positions(view.state, ev.user, ts)
                    if p.collateral or p.debt for k in view.price_keys(p.asset)):
                r = None
            self._health.append((view.run_id, view.chain_id, view.block.number, phase, ev.user,
                                 h.collateral_value, h.debt_value, str(h.health_factor_wad),
                                 None if r is None or not r.debt_value else str(r.health_factor_wad),
                                 h.health_factor_wad / WAD,
                                 None if r is None or not r.debt_value else r.health_factor_wad / WAD,
                                 h.debt_value / self._unit))

    def rows(self) -> Mapping[str, Sequence[tuple[Any, ...]]]:
        return {PRICE_PATH.fqn: self._prices, HEALTH_SNAPSHOTS.fqn: self._health}

    def summary(self) -> Mapping[str, SummaryValue]:
        start = [r for r in self._health if r[3] == "start"]
        end = [r for r in self._health if r[3] == "end"]
        return {"oracle_updates": self._counts["oracle"], "reference_updates": self._counts["reference"],
                "rejected_updates": self._counts["rejected"],
                "source_changes": self._counts["source_changes"], "accounts_with_debt_start": len(start),
                "accounts_with_debt_end": len(end),
                # exact: an HF a few wei below 1 WAD is 1.0 as a float
                "accounts_below_1_start": sum(1 for r in start if int(r[7]) < WAD),
                "accounts_below_1_end": sum(1 for r in end if int(r[7]) < WAD)}
