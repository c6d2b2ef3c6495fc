"""Loss socialization: who bears the bad debt, per reserve.

A reserve's **loss** ``L = U + D`` (base currency at the oracle prices in force, Aave v3: USD 1e8):

* ``U`` — *unrealized* bad debt still sitting in accounts ("zombie debt": Aave v2, v3 ≤ 3.2):
  each account's ``max(0, debt − collateral)`` (:attr:`protocols.domain.AccountHealth.bad_debt_value`
  at its last exact evaluation), split over its debt reserves pro rata to their debt value
  (the same split as :mod:`backtest.metrics.bad_debt`);
* ``D`` — the *booked deficit* of Aave v3.3+ (``ReserveData.deficit``: raised by
  ``DeficitCreated`` when a liquidation leaves debt without collateral, lowered by
  ``DeficitCovered`` / ``eliminateReserveDeficit``), valued at the reserve's oracle price. Under
  v3.0–v3.2 and v2 it is always 0.

**Who bears it** — the ``bearer`` vocabulary (``bt.loss_bearers.bearer``). The categories
partition ``L`` (they sum to it exactly) under a stated allocation: the protocol's own buffer
first, then pro rata to suppliers.

* ``deficit_outstanding`` = ``D``: loss the protocol has booked and not yet covered; who ends up
  paying is a later decision (Aave: Umbrella stakers or the treasury via
  ``eliminateReserveDeficit``). Until then the aToken supply still claims it.
* ``treasury_reserve`` = ``min(U, T)``: the part the protocol's reserve could absorb, ``T`` = the
  treasury's aToken balance in the reserve (at the current liquidity index), valued at the oracle
  price. Aave v3's ``accruedToTreasury`` (its share of interest not yet minted) is *not* counted:
  no event carries it, so the state rebuilt from events holds 0 for it (``MintedToTreasury``
  resets it; :mod:`protocols.aave_v3.events`), and a counterfactual replay accrues it from the
  window start only. Counting it made ``T`` the aToken balance in a historical run and that plus
  a window's worth of accrual in a counterfactual one, neither what the chain held; what is minted
  (``Mint`` to the treasury) is in the balance.
* ``suppliers`` = ``min(U − treasury_reserve, supply − treasury_reserve)``: what remains falls on
  suppliers pro rata if it were socialised (each aToken holder loses the same fraction), up to
  what they hold;
* ``unbacked`` = ``U − treasury_reserve − suppliers``: debt with no supplier behind it, whose loss
  falls on the asset's issuer. GHO (minted by its facilitator, no aToken supply) is the case: its
  bad debt is GHO in circulation without collateral, borne by the Aave DAO, not by suppliers who
  do not exist. A supplied reserve has none (debt never exceeds supply).

Reserved for other protocols (not produced for Aave; named now so reports share one vocabulary,
after the bad-debt taxonomy of ``docs/protocol-rules.md`` §11): ``insurance_fund`` (perps/dYdX,
Comet reserves: a dedicated fund absorbs first), ``adl`` (auto-deleveraging: profitable
counterparties' positions are closed against the bankrupt ones), ``socialized`` (loss spread
over all holders/traders by a protocol rule, e.g. a funding or PnL haircut, Maker MKR dilution,
Liquity redistribution).

**Haircut** (``bt.socialization``): ``haircut_gross_bps = L × 10⁴ / supply_value`` — what
suppliers would lose, in basis points of supply, if the whole loss were socialised pro rata;
``haircut_net_bps = suppliers × 10⁴ / (supply_value − treasury_reserve)``: what each other
supplier loses after the treasury's aTokens absorbed their part (they are out of the supply that
bears the rest: 900 USD left on 100,000 USDC of other suppliers is 90 bps, not 900 / 100,100).
``supply`` is the aToken total supply (``rayMul(scaledTotalSupply, normalizedIncome)`` at the
block's timestamp, as ``AToken.totalSupply``; v3.5+ ``rayMulFloor``), the treasury's own aTokens
included.

Summary: ``end_*`` sums each reserve's last row (the window's end); ``max_haircut_*`` is the largest
haircut of any one reserve at any row (reserve and block given), not of a total over reserves;
``deficit_created_value`` / ``deficit_covered_value`` add each booking at the oracle price of its
block (``end_deficit_outstanding_value`` is the outstanding deficit at the last prices).

Rows: ``bt.socialization`` and ``bt.loss_bearers`` get a row for a reserve at the end of the
window's first block if its loss is non-zero (the run start's figures with that block's changes:
one row per reserve and block), then at every visited block in which its ``(U, D)`` changed, or in which its
supply moved (a scaled aToken balance changed: a withdrawal, a liquidation) while its loss is
non-zero — the haircut of the suppliers who stay grows as others leave —, or its oracle price
moved while its loss is non-zero (``D``, the supply and the treasury's claim are valued at it: a
deficit booked at $1,000 reads $500 after the asset halves) (the value at a block is the last
row at or before it; supply, treasury and values in a row are as of that block; interest alone
does not write a row).

Cost: supply is kept as per-reserve sums of scaled aToken balances, updated only for accounts an
aToken event (``Mint``/``Burn``/``BalanceTransfer``: every change of a scaled balance, the
treasury's mints included) or a committed liquidation touches (a simulated one: the aToken
events of its outcome), so one full pass over the accounts
happens at the run start only. Supports the Aave v2/v3 state layouts (``state.users[u].reserves[a]
.scaled_a_token_balance``, ``state.reserves[a].treasury``, ``.deficit``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ingest.schema import Column, Table, register_table
from protocols.base import ZERO_ADDRESS
from protocols.domain import ProtocolEvent
from protocols.fixed_point import ray_mul_floor, ray_mul_half_up

from ..errors import ReplayError
from .bad_debt import _split
from .base import (
    AccountEval,
    BlockEnd,
    Liquidation,
    Metric,
    MetricError,
    PriceUpdate,
    RowSink,
    SummaryValue,
    View,
)

__all__ = ["Socialization", "SOCIALIZATION", "LOSS_BEARERS", "BEARERS", "AAVE_BEARERS"]

#: every bearer category (see the module docstring)
BEARERS: tuple[str, ...] = ("suppliers", "treasury_reserve", "deficit_outstanding", "unbacked",
                            "insurance_fund", "adl", "socialized")
#: the ones an Aave market produces (rows are written in this order)
AAVE_BEARERS: tuple[str, ...] = ("deficit_outstanding", "suppliers", "treasury_reserve", "unbacked")

_ADDRESS_LEN = 42

SOCIALIZATION = register_table(Table(
    "bt", "socialization", "Loss per reserve and who bears it: unrealized bad debt in accounts, booked "
    "deficit (Aave v3.3+), the treasury's capacity, and the suppliers' haircut in bps of supply. One row "
    "per reserve each time its loss changes, or its supply or oracle price moves while it has a loss (the "
    "value at a block is the last row at or before it).",
    (
        Column("run_id", "VARCHAR", "backtest run (bt.runs)", False),
        Column("chain_id", "UBIGINT", "chain replayed", False),
        Column("block_number", "UBIGINT", "block at whose end the figures hold", False),
        Column("block_ts", "UBIGINT", "its timestamp, unix seconds", False),
        Column("reserve", "VARCHAR", "reserve (debt asset) address", False),
        Column("unrealized_value", "HUGEINT", "U: accounts' max(0, debt - collateral) attributed to this "
               "debt reserve, base currency units (Aave v3: USD 1e8) at oracle prices", False),
        Column("deficit_raw", "HUGEINT", "D: ReserveData.deficit (v3.3+), reserve base units", False),
        Column("deficit_value", "HUGEINT", "D at the oracle price, base currency units", False),
        Column("loss_value", "HUGEINT", "L = U + D, base currency units", False),
        Column("supply_raw", "HUGEINT", "aToken total supply, reserve base units", False),
        Column("supply_value", "HUGEINT", "the same at the oracle price, base currency units", False),
        Column("treasury_raw", "HUGEINT", "treasury's claim: its aToken balance, base units "
               "(accruedToTreasury not yet minted is not counted: not rebuilt from events)", False),
        Column("treasury_value", "HUGEINT", "the same at the oracle price, base currency units", False),
        Column("treasury_reserve_value", "HUGEINT", "bearer treasury_reserve: min(U, treasury_value)",
               False),
        Column("suppliers_value", "HUGEINT", "bearer suppliers: U - treasury_reserve_value, at most the "
               "supply less treasury_reserve_value (what the other suppliers hold)", False),
        Column("haircut_gross_bps_f64", "DOUBLE", "L / supply_value in bps: suppliers' loss if all of it "
               "were socialised pro rata (NULL: no supply)"),
        Column("haircut_net_bps_f64", "DOUBLE", "suppliers_value / (supply_value - treasury_reserve_value) "
               "in bps: the other suppliers' loss once the treasury's aTokens absorbed their part (NULL: no "
               "supply, or a loss left on no other supplier)"),
        Column("loss_base_f64", "DOUBLE", "derived: loss_value in "
               "whole base currency (bt.runs.base_currency)", False),
        Column("unbacked_value", "HUGEINT", "bearer unbacked: U with no supplier behind it (U - "
               "treasury_reserve_value - suppliers_value; GHO: its issuer bears it)", False),
    ),
    "backtest.metrics.socialization", ("run_id", "reserve", "block_number")))

LOSS_BEARERS = register_table(Table(
    "bt", "loss_bearers", "The loss of each reserve partitioned by bearer (vocabulary: suppliers, "
    "treasury_reserve, deficit_outstanding, unbacked; reserved for perps: insurance_fund, adl, "
    "socialized), one row per bearer each time the reserve has a bt.socialization row.",
    (
        Column("run_id", "VARCHAR", "backtest run (bt.runs)", False),
        Column("chain_id", "UBIGINT", "chain replayed", False),
        Column("block_number", "UBIGINT", "block at whose end the figures hold", False),
        Column("reserve", "VARCHAR", "reserve (debt asset) address", False),
        Column("bearer", "VARCHAR", "who bears this part (see backtest.metrics.socialization)", False),
        Column("value", "HUGEINT", "the part, base currency units at oracle prices", False),
        Column("share_bps_f64", "DOUBLE", "the part / the reserve's loss, bps (NULL: no loss)"),
    ),
    "backtest.metrics.socialization", ("run_id", "reserve", "block_number", "bearer")))


def _income_fn(adapter_name: str) -> Callable[[Any, int], int]:
    """The protocol's ``getNormalizedIncome`` (reserve, timestamp) → ray."""
    if adapter_name == "aave_v3":
        from protocols.aave_v3.reserve_logic import get_normalized_income as f3

        return f3
    if adapter_name == "aave_v2":
        from protocols.aave_v2.reserve_logic import get_normalized_income as f2

        return f2
    raise MetricError(f"metric 'socialization': adapter {adapter_name!r} is not supported (aave_v2, aave_v3)")


def _a_token_balance(state: Any) -> Callable[[int, int], int]:
    """``AToken.balanceOf``/``totalSupply`` from a scaled amount and the normalized income: v3.5+
    ``getATokenBalance`` rounds down (``rayMulFloor``, TokenMath), earlier releases and v2 half up."""
    rules = getattr(state, "rules", None)
    return ray_mul_floor if getattr(rules, "directional_rounding", False) else ray_mul_half_up


def _books_deficit(state: Any) -> bool:
    """Does the protocol write bad debt off into a reserve deficit (Aave v3.3+)?"""
    rules = getattr(state, "rules", None)
    return bool(getattr(rules, "deficit_accounting", False))


class Socialization(Metric):
    """Per-reserve loss and its bearers (see the module docstring)."""

    name: ClassVar[str] = "socialization"
    tables: ClassVar[tuple[Table, ...]] = (SOCIALIZATION, LOSS_BEARERS)

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self._unit = 1
        self._income: Callable[[Any, int], int] | None = None
        #: user -> {reserve: unrealized share} at the last evaluation
        self._shares: dict[str, dict[str, int]] = {}
        self._u: dict[str, int] = {}  # reserve -> U
        #: user -> {reserve: scaled aToken balance} as last seen; reserve -> sum over users
        self._scaled: dict[str, dict[str, int]] = {}
        self._scaled_sum: dict[str, int] = {}
        self._last: dict[str, tuple[int, int]] = {}  # reserve -> (U, D) last written
        self._touched: set[str] = set()
        #: reserves whose scaled aToken sum changed since the last emission
        self._supply_moved: set[str] = set()
        #: reserves whose oracle price moved since the last emission (D, supply and the treasury's
        #: claim are valued at it)
        self._repriced: set[str] = set()
        #: reserves whose (U, D) may have changed since the last emission; all of them when
        #: ``_scan_all`` (the run's start, a committed simulated liquidation)
        self._dirty: set[str] = set()
        self._scan_all = True
        # written sorted by reserve, then block (ties: emission order), in bounded memory
        self._rows = RowSink(SOCIALIZATION, order_by=("reserve", "block_number"))
        self._bearer_rows = RowSink(LOSS_BEARERS, order_by=("reserve", "block_number", "bearer"))
        self._end: dict[str, tuple[Any, ...]] = {}  # reserve -> last socialization row
        self._max_gross: tuple[float, str, int] | None = None
        self._max_net: tuple[float, str, int] | None = None
        self._deficit_created = 0
        self._deficit_covered = 0

    # ------------------------------------------------------------------ hooks
    def on_run_start(self, view: View) -> None:
        self._unit = view.unit
        unknown = sorted(a for a, r in view.state.reserves.items()
                         if getattr(r, "treasury", ZERO_ADDRESS) == ZERO_ADDRESS)
        if unknown:  # its claim would read as 0: the treasury's share of a loss put on the suppliers
            raise MetricError(
                f"metric 'socialization': the treasury of reserve(s) {unknown} is unknown, so the "
                "part of a loss it could absorb (treasury_reserve) cannot be told from the suppliers'; "
                "declare it in [market.asset_treasuries] (Aave v2: each aToken's "
                "RESERVE_TREASURY_ADDRESS()), or leave socialization out of [metrics] names")
        self._income = _income_fn(view.adapter.name)
        for user in sorted(view.state.users):
            self._refresh_scaled(view, user)
        self._evaluations(view, tuple(view.accounts()))
        # no row here: the first block's end writes every reserve with a loss (_scan_all), so a
        # reserve never has two rows at one block (the start's and that block's end)

    def on_price(self, view: View, update: PriceUpdate) -> None:
        if update.kind == "oracle" and update.accepted and update.price != update.previous:
            self._repriced.update(k for k in update.keys if k in view.state.reserves)

    def on_event(self, view: View, event: ProtocolEvent) -> None:
        if event.role == "a_token":  # only the aToken's Mint/Burn/BalanceTransfer move scaled balances
            self._touch(event.args)
        elif event.name == "DeficitCreated":
            a = event.args
            self._deficit_created += view.value(str(a["debt_asset"]), int(str(a["amount_created"])))
            self._dirty.add(str(a["debt_asset"]))
        elif event.name == "DeficitCovered":
            a = event.args
            self._deficit_covered += view.value(str(a["reserve"]), int(str(a["amount_covered"])))
            self._dirty.add(str(a["reserve"]))

    def on_liquidation(self, view: View, liquidation: Liquidation) -> None:
        if not liquidation.committed:
            return
        self._scan_all = True  # a committed simulated liquidation may book a deficit (v3.3+)
        self._touched.update((liquidation.user, liquidation.liquidator))
        r = view.state.reserves.get(liquidation.collateral_asset)
        if r is not None:
            self._touched.add(r.treasury)
        if liquidation.outcome is not None:  # simulated: no events, the outcome's (Aave v2: the
            for e in liquidation.outcome.events:  # debt reserve's updateState mints to its treasury)
                if e.role == "a_token":
                    self._touch(e.args)
        if not liquidation.observed and _books_deficit(view.state):
            # observed ones book theirs through DeficitCreated events; before v3.3 the outcome's
            # bad_debt stays in the account (unrealized), nothing is booked
            self._deficit_created += liquidation.bad_debt_value

    def on_block_end(self, view: View, block: BlockEnd) -> None:
        for user in sorted(self._touched):
            self._refresh_scaled(view, user)
        self._touched.clear()
        self._evaluations(view, block.evaluated)
        self._emit(view, block.block.number, block.block.timestamp)

    # ------------------------------------------------------------------ bookkeeping
    def _touch(self, args: Mapping[str, object]) -> None:
        for v in args.values():
            if isinstance(v, str) and len(v) == _ADDRESS_LEN and v.startswith("0x") and v != ZERO_ADDRESS:
                self._touched.add(v.lower())

    def _refresh_scaled(self, view: View, user: str) -> None:
        u = view.state.users.get(user)
        new = {a: ur.scaled_a_token_balance for a, ur in u.reserves.items() if ur.scaled_a_token_balance} \
            if u is not None else {}
        old = self._scaled.get(user, {})
        if new == old:
            return
        for a, s in old.items():
            self._scaled_sum[a] = self._scaled_sum.get(a, 0) - s
        for a, s in new.items():
            self._scaled_sum[a] = self._scaled_sum.get(a, 0) + s
        self._supply_moved.update(a for a in old.keys() | new.keys() if old.get(a) != new.get(a))
        if new:
            self._scaled[user] = new
        else:
            self._scaled.pop(user, None)

    def _evaluations(self, view: View, evaluated: Sequence[AccountEval]) -> None:
        for ev in evaluated:
            o = ev.oracle.bad_debt_value
            old = self._shares.get(ev.user)
            if not o and old is None:
                continue
            new: dict[str, int] = {}
            if o:
                debts = [(p.asset, view.value(p.asset, p.debt))
                         for p in view.adapter.positions(view.state, ev.user, view.block.timestamp) if p.debt]
                values = [v for _, v in debts]
                for (asset, _), share in zip(debts, _split(o, values, sum(values)), strict=True):
                    if share:
                        new[asset] = new.get(asset, 0) + share
            for a, s in (old or {}).items():
                self._u[a] = self._u.get(a, 0) - s
                self._dirty.add(a)
            for a, s in new.items():
                self._u[a] = self._u.get(a, 0) + s
                self._dirty.add(a)
            if new:
                self._shares[ev.user] = new
            else:
                self._shares.pop(ev.user, None)

    def _emit(self, view: View, number: int, ts: int) -> None:
        state = view.state
        assert self._income is not None
        # (U, D) changes only through evaluations and deficit bookings, which mark their reserves;
        # the supply through scaled aToken balances (_refresh_scaled)
        moved = self._supply_moved
        repriced = self._repriced
        reserves = sorted(state.reserves) if self._scan_all else sorted(self._dirty | moved | repriced)
        self._dirty.clear()
        self._scan_all = False
        balance = _a_token_balance(state)
        for reserve in reserves:
            r = state.reserves.get(reserve)
            if r is None:
                continue
            u = self._u.get(reserve, 0)
            d = int(getattr(r, "deficit", 0))
            if (u, d) == self._last.get(reserve, (0, 0)) and (
                    (u, d) == (0, 0) or (reserve not in moved and reserve not in repriced)):
                continue
            self._last[reserve] = (u, d)
            index = self._income(r, ts)
            supply = balance(self._scaled_sum.get(reserve, 0), index)
            t_scaled = self._scaled.get(r.treasury, {}).get(reserve, 0) if r.treasury != ZERO_ADDRESS else 0
            treasury = balance(t_scaled, index)  # accruedToTreasury: unknown (module docstring)
            has_price = reserve in view.prices
            if d and not has_price:  # valued at 0 it read as no loss; U implies a price (the evaluation)
                raise ReplayError(
                    f"metric 'socialization': block {number}: reserve {reserve} has a booked deficit of {d} "
                    "base units but no oracle price yet (its feed has no answer before this block), so "
                    "its loss cannot be valued; start the window after the feed's first answer, or leave "
                    "socialization out of [metrics] names")
            d_value = view.value(reserve, d) if has_price else 0
            supply_value = view.value(reserve, supply) if has_price else 0
            t_value = view.value(reserve, treasury) if has_price else 0
            loss = u + d_value
            t_part = min(u, t_value)
            s_part = min(u - t_part, max(0, supply_value - t_part))  # suppliers lose at most what they hold
            unbacked = u - t_part - s_part
            gross = loss * 10_000 / supply_value if supply_value else None
            # the suppliers left once the treasury's aTokens took their part bear the rest
            rest = supply_value - t_part
            net = s_part * 10_000 / rest if supply_value and rest > 0 else (
                0.0 if supply_value and not s_part else None)
            row = (view.run_id, view.chain_id, number, ts, reserve, u, d, d_value, loss, supply, supply_value,
                   treasury, t_value, t_part, s_part, gross, net, loss / self._unit, unbacked)
            self._rows.append(row)
            self._end[reserve] = row
            for bearer, part in zip(AAVE_BEARERS, (d_value, s_part, t_part, unbacked), strict=True):
                self._bearer_rows.append((view.run_id, view.chain_id, number, reserve, bearer, part,
                                          part * 10_000 / loss if loss else None))
            if gross is not None and (self._max_gross is None or gross > self._max_gross[0]):
                self._max_gross = (gross, reserve, number)
            if net is not None and (self._max_net is None or net > self._max_net[0]):
                self._max_net = (net, reserve, number)
        moved.clear()
        repriced.clear()

    # ------------------------------------------------------------------ outputs
    def rows(self) -> Mapping[str, Sequence[tuple[Any, ...]]]:
        return {SOCIALIZATION.fqn: self._rows, LOSS_BEARERS.fqn: self._bearer_rows}

    def summary(self) -> Mapping[str, SummaryValue]:
        end = [self._end[r] for r in sorted(self._end)]
        u = self._unit
        loss = sum(int(r[8]) for r in end)
        out: dict[str, SummaryValue] = {
            "end_loss_value": loss,
            "end_loss_usd": loss / u,
            "end_unrealized_value": sum(int(r[5]) for r in end),
            "end_deficit_outstanding_value": sum(int(r[7]) for r in end),
            "end_treasury_reserve_value": sum(int(r[13]) for r in end),
            "end_suppliers_value": sum(int(r[14]) for r in end),
            "end_suppliers_usd": sum(int(r[14]) for r in end) / u,
            "end_unbacked_value": sum(int(r[18]) for r in end),
            "end_reserves_with_loss": sum(1 for r in end if r[8]),
            "deficit_created_value": self._deficit_created,
            "deficit_covered_value": self._deficit_covered,
            "max_haircut_gross_bps": self._max_gross[0] if self._max_gross else 0.0,
            "max_haircut_gross_reserve": self._max_gross[1] if self._max_gross else None,
            "max_haircut_gross_block": self._max_gross[2] if self._max_gross else None,
            "max_haircut_net_bps": self._max_net[0] if self._max_net else 0.0,
            "max_haircut_net_reserve": self._max_net[1] if self._max_net else None,
        }
        return out
