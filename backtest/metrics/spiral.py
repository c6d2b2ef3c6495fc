"""Liquidation spirals: partial liquidations that each lower the health factor, into bad debt.

Why it happens: liquidating ``x`` of debt seizes ``x·(1 + bonus)`` of collateral value, of which
only the LT-weighted part backed the debt. With collateral value ``C``, debt ``D``, liquidation
threshold ``LT`` and bonus factor ``B = 1 + bonus``::

    HF  = LT·C / D
    HF' = LT·(C − x·B) / (D − x)    and   HF' < HF  ⇔  LT·B > HF

so near ``HF = 1`` every partial liquidation *lowers* the health factor as soon as
``LT × (1 + bonus) > 1`` — in basis points ``LT_bps × bonus_bps > 10⁸`` (Aave's
``liquidation_bonus`` is already ``1 + bonus``, e.g. 10500). The position then goes from one
liquidation to the next, each leaving it worse, until the collateral is gone and debt remains:
bad debt that a later (price recovered) or absent liquidation would not have created. Aave v3's
configurator refuses such parameters (``PoolConfigurator.configureReserveAsCollateral``:
``liquidationThreshold.percentMul(liquidationBonus) <= PERCENTAGE_FACTOR``), which is why the case
is reached here through scenario overrides; other protocols, e-mode bonuses and a collateral
price moving against the position during the sequence can still produce it.

**Detection** (per account): the account's committed liquidations (observed, or simulated in
counterfactual mode) are grouped into *sequences*: a sequence ends when an exact evaluation finds
the account no longer liquidatable, or when its liquidation raises the health factor. For each
liquidation, ``HF before`` is its health on the state and oracle prices just before it: for an
observed one, the engine's (:attr:`~backtest.metrics.base.Liquidation.health_before_wad`: an
answer earlier in its block counts, so a price move is not taken for the liquidation's effect);
for a simulated one (top of a block), the account's last exact evaluation (or the HF after the
previous liquidation of the sequence in the same block) and ``HF after`` is the adapter's
evaluation of the post-liquidation state at the oracle prices of the block — 0 for one that
burned the debt it left into a reserve deficit (v3.3+: no debt is left, HF ``2**256 − 1``, but
nothing was behind it; before v3.3 the same liquidation leaves HF 0). A sequence is a
**spiral** when it has at least ``min_liquidations`` (parameter, default 2) liquidations, every
one lowered the HF (``after < before``), and it ends in bad debt (after its last liquidation the
account's debt exceeds its collateral, or a deficit was booked by it).

Rows: ``bt.liquidation_sequences`` — every sequence of at least 2 liquidations (spiral or not,
with the flag), sorted by user and first block; the HF path is the list ``[before₁, after₁,
after₂, …]`` as decimal WAD strings (``2**256 − 1`` = no debt). A sequence's ``bonus_value`` is
NULL when the protocol fee of one of its liquidations is unknown (an observed Aave v3
liquidation whose prediction reverted: :class:`~backtest.metrics.base.Liquidation`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ingest.schema import Column, Table, register_table

from .base import BlockEnd, Liquidation, Metric, MetricError, SummaryValue, View
from .socialization import _books_deficit

__all__ = ["Spiral", "SEQUENCES", "lowers_health", "BPS_SQUARED"]

#: LT_bps × bonus_bps above which a partial liquidation near HF = 1 lowers the health factor
BPS_SQUARED = 10**8

SEQUENCES = register_table(Table(
    "bt", "liquidation_sequences", "Sequences of two or more liquidations of one account, with the health "
    "factor path; spiral = every liquidation lowered the HF and the sequence ended in bad debt.",
    (
        Column("run_id", "VARCHAR", "backtest run (bt.runs)", False),
        Column("chain_id", "UBIGINT", "chain replayed", False),
        Column("block_number", "UBIGINT", "block of the first liquidation of the sequence", False),
        Column("user", "VARCHAR", "account", False),
        Column("last_block", "UBIGINT", "block of the last liquidation", False),
        Column("liquidations", "UBIGINT", "liquidations in the sequence", False),
        Column("hf_path_wad", "VARCHAR[]", "HF before the first, then after each liquidation (WAD, decimal)",
               False),
        Column("all_lowered", "BOOLEAN", "every liquidation lowered the HF", False),
        Column("bad_debt_value", "HUGEINT", "max(0, debt - collateral) after the last liquidation plus "
               "deficit booked by the sequence, base currency units", False),
        Column("spiral", "BOOLEAN", "liquidation spiral: >= min_liquidations, all lowered, ended in bad debt",
               False),
        Column("buffer_negative", "BOOLEAN", "some collateral seized had LT_bps x bonus_bps > 1e8", False),
        Column("collateral_assets", "VARCHAR[]", "collateral seized (sorted)", False),
        Column("debt_repaid_value", "HUGEINT", "debt repaid over the sequence, base currency units", False),
        Column("bonus_value", "HUGEINT", "seized + fee - repaid over the sequence, base currency units "
               "(NULL: the protocol fee of one of its liquidations is unknown)"),
    ),
    "backtest.metrics.spiral", ("run_id", "user", "block_number")))


def lowers_health(lt_bps: int, bonus_bps: int) -> bool:
    """True when ``LT × (1 + bonus) > 1`` (``bonus_bps`` as Aave stores it, 10500 = 5 %)."""
    return lt_bps * bonus_bps > BPS_SQUARED


@dataclass
class _Seq:
    first_block: int
    hf: list[int]
    last_block: int = 0
    n: int = 0
    lowered: bool = True
    deficit: int = 0
    end_bad_debt: int = 0
    buffer_negative: bool = False
    collateral: set[str] = field(default_factory=set)
    repaid: int = 0
    bonus: int | None = 0  # None once a liquidation's protocol fee is unknown
    last_after: tuple[int, int] | None = None  # (block, hf) after the last liquidation


class Spiral(Metric):
    """Names liquidation spirals (see the module docstring)."""

    name: ClassVar[str] = "spiral"
    tables: ClassVar[tuple[Table, ...]] = (SEQUENCES,)
    params_allowed: ClassVar[tuple[str, ...]] = ("min_liquidations",)

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        m = self.params.get("min_liquidations", 2)
        if not isinstance(m, int) or isinstance(m, bool) or m < 2:
            raise MetricError(f"metric 'spiral': min_liquidations must be an integer >= 2, got {m!r}")
        self.min_liquidations = m
        self._open: dict[str, _Seq] = {}
        self._done: list[tuple[str, _Seq]] = []
        self._run_id, self._chain_id, self._unit = "", 0, 1

    def on_run_start(self, view: View) -> None:
        self._run_id, self._chain_id, self._unit = view.run_id, view.chain_id, view.unit

    def on_liquidation(self, view: View, liquidation: Liquidation) -> None:
        liq = liquidation
        if not liq.committed:
            return
        seq = self._open.get(liq.user)
        if liq.health_before_wad is not None:  # observed: on the state and prices it changed
            before = liq.health_before_wad
        elif seq is not None and seq.last_after is not None and seq.last_after[0] == liq.block_number:
            before = seq.last_after[1]
        else:
            ev = view.health(liq.user)
            before = ev.oracle.health_factor_wad if ev is not None else 2**256 - 1
        after_h = view.adapter.account(view.state, liq.user, view.prices, view.block.timestamp)
        books = _books_deficit(view.state)
        # a liquidation that burned the debt left into a deficit (v3.3+) leaves no debt (HF
        # type(uint256).max), but nothing was behind that debt: HF 0, as before v3.3
        after = 0 if books and liq.bad_debt_value > 0 else after_h.health_factor_wad
        if seq is not None and after >= before:  # this one raised the HF: the sequence ends before it
            self._finish(liq.user)
            seq = None
        if seq is None:
            seq = self._open[liq.user] = _Seq(liq.block_number, [before])
        seq.n += 1
        seq.last_block = liq.block_number
        seq.hf.append(after)
        seq.lowered = seq.lowered and after < before
        if books:  # v3.3+: the debt left was burned into the reserve deficit
            seq.deficit += liq.bad_debt_value
        seq.end_bad_debt = after_h.bad_debt_value
        seq.repaid += liq.debt_repaid_value
        bonus = liq.bonus_value
        seq.bonus = seq.bonus + bonus if seq.bonus is not None and bonus is not None else None
        seq.collateral.add(liq.collateral_asset)
        params = view.adapter.liquidation_parameters(view.state, liq.user, liq.collateral_asset)
        if params is not None:  # an e-mode account's are its category's, not the reserve's
            seq.buffer_negative |= lowers_health(*params)
        seq.last_after = (liq.block_number, after)

    def on_block_end(self, view: View, block: BlockEnd) -> None:
        for ev in block.evaluated:
            if ev.user in self._open and not ev.oracle.liquidatable:
                self._finish(ev.user)

    def on_run_end(self, view: View) -> None:
        for user in sorted(self._open):
            self._finish(user)

    def _finish(self, user: str) -> None:
        seq = self._open.pop(user)
        if seq.n >= 2:
            self._done.append((user, seq))

    def _is_spiral(self, s: _Seq) -> bool:
        return s.n >= self.min_liquidations and s.lowered and (s.end_bad_debt + s.deficit) > 0

    def rows(self) -> Mapping[str, Sequence[tuple[Any, ...]]]:
        out = [(self._run_id, self._chain_id, s.first_block, user, s.last_block, s.n, [str(h) for h in s.hf],
                s.lowered, s.end_bad_debt + s.deficit, self._is_spiral(s), s.buffer_negative,
                sorted(s.collateral), s.repaid, s.bonus) for user, s in self._done]
        out.sort(key=lambda r: (r[3], r[2]))
        return {SEQUENCES.fqn: out}

    def summary(self) -> Mapping[str, SummaryValue]:
        spirals = [(u, s) for u, s in self._done if self._is_spiral(s)]
        bad = sum(s.end_bad_debt + s.deficit for _, s in spirals)
        return {
            "sequences": len(self._done),
            "spirals": len(spirals),
            "spiral_accounts": len({u for u, _ in spirals}),
            "spiral_bad_debt_value": bad,
            "spiral_bad_debt_usd": bad / self._unit,
            "spiral_liquidations": sum(s.n for _, s in spirals),
        }
