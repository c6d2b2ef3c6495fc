"""Bad debt: realized (deficits a liquidation or the protocol books) and unrealized (debt above
collateral value), per account, reserve and block, at the oracle and at the reference price.

Definitions (base currency of the adapter, Aave v3: USD with 8 decimals):

* **unrealized** bad debt of an account = ``max(0, debt_value - collateral_value)`` from
  :attr:`protocols.domain.AccountHealth.bad_debt_value` — debt no collateral stands behind at
  face value, evaluated exactly by the adapter at the oracle prices the protocol reads
  (``*_oracle``) and at the reference prices (``*_reference``, when the run has a reference path).
  Split over the account's debt reserves pro rata to their debt value (at the oracle prices for
  the oracle figure, at the reference prices for the reference one; floored, the remainder goes
  to the largest debt, ties by address) for the per-reserve view.
* **dust** vs **material**: an account whose unrealized bad debt (oracle) is below
  ``dust_usd`` (parameter, whole base currency; ``dust_eth`` for an Aave v2 market; default
  :data:`DEFAULT_DUST`: 1 USD, 0.001 ETH) is dust — too small for anyone to clean up.
* **realized** bad debt: deficits the protocol books (Aave v3.3+ ``DeficitCreated``, carried
  by a liquidation outcome's ``bad_debt``) and write-offs. Aave v3.0–v3.2 have no write-off:
  their bad debt stays unrealized in the accounts, so realized is 0 for them by construction.

Time series: ``bt.bad_debt_accounts`` gets a row for an account and reserve each time the
account's unrealized figures or their split over its debt reserves change (including the row
that returns it to 0), so the value at
any block is the last row at or before it. ``bt.bad_debt_blocks`` gets one row per visited
block in which the totals changed. Summary: peak (value and block) and end of window, at
oracle and reference prices, material vs dust, realized. The **peak** is the largest *total*
unrealized bad debt over all accounts and reserves at the end of a visited block (one figure per
block, not a sum of per-account or per-reserve peaks; the reference peak is taken on its own and
may fall at another block); realized bad debt is not in it (it is cumulative: see
``end_total_oracle_usd``, unrealized at the window's end + realized). **End** is the totals at
the window's last block. The dust threshold applies per *account* (its whole oracle figure, not
each reserve's share), in whole base currency.

Accounts are re-evaluated where the replay re-evaluates them (events, liquidations, the at-risk
index; with a reference path also on reference moves, ``tracks_reference``). Bad debt implies
``debt > collateral >= LT-weighted collateral``, i.e. HF < 1: a healthy
account gains bad debt only after a move that crosses its liquidation point, and liquidatable
accounts are re-evaluated on every move of their prices, so the at-risk index misses none.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar

from ingest.schema import Column, Table, register_table

from ..scenario import money_keys
from .base import AccountEval, BlockEnd, Liquidation, Metric, MetricError, RowSink, SummaryValue, View

__all__ = ["BadDebt", "ACCOUNTS", "BLOCKS"]

#: the health factor Aave reports for an account without debt (type(uint256).max)
_NO_DEBT_HF = 2**256 - 1

ACCOUNTS = register_table(Table(
    "bt", "bad_debt_accounts", "Unrealized bad debt per account and debt reserve, one row each time "
    "the account's figures change (the value at a block is the last row at or before it).",
    (
        Column("run_id", "VARCHAR", "backtest run (bt.runs)", False),
        Column("chain_id", "UBIGINT", "chain replayed", False),
        Column("block_number", "UBIGINT", "block at whose end the account was evaluated", False),
        Column("block_ts", "UBIGINT", "its timestamp, unix seconds", False),
        Column("user", "VARCHAR", "account", False),
        Column("reserve", "VARCHAR", "debt asset", False),
        Column("debt_raw", "HUGEINT", "debt in that reserve, base units, interest accrued", False),
        Column("debt_value", "HUGEINT", "its value at the oracle price, base currency units", False),
        Column("bad_debt_oracle_value", "HUGEINT", "this reserve's share of the account's "
               "max(0, debt - collateral) at oracle prices, base currency units", False),
        Column("bad_debt_reference_value", "HUGEINT", "the same at reference prices (NULL: no reference)"),
        Column("account_collateral_value", "HUGEINT", "account collateral at oracle prices", False),
        Column("account_debt_value", "HUGEINT", "account debt at oracle prices", False),
        Column("health_factor_wad", "UHUGEINT", "account health factor at oracle prices, WAD (NULL: no debt, "
               "the protocol's type(uint256).max sentinel)"),
        Column("material", "BOOLEAN", "account bad debt (oracle) >= the dust threshold", False),
        Column("bad_debt_oracle_base_f64", "DOUBLE", "derived: bad_debt_oracle_value in "
               "whole base currency (bt.runs.base_currency)",
               False),
    ),
    "backtest.metrics.bad_debt", ("run_id", "user", "reserve", "block_number")))

BLOCKS = register_table(Table(
    "bt", "bad_debt_blocks", "Bad debt totals over all accounts, one row per visited block in which "
    "they changed (the total at a block is the last row at or before it).",
    (
        Column("run_id", "VARCHAR", "backtest run (bt.runs)", False),
        Column("chain_id", "UBIGINT", "chain replayed", False),
        Column("block_number", "UBIGINT", "block", False),
        Column("block_ts", "UBIGINT", "its timestamp, unix seconds", False),
        Column("unrealized_oracle_value", "HUGEINT", "sum of accounts' max(0, debt - collateral) at "
               "oracle prices, base currency units", False),
        Column("material_oracle_value", "HUGEINT", "the part in accounts at or above the dust threshold",
               False),
        Column("dust_oracle_value", "HUGEINT", "the part in accounts below it", False),
        Column("unrealized_reference_value", "HUGEINT", "the same total at reference prices "
               "(accounts without a full reference price count at oracle prices)", False),
        Column("accounts_underwater", "UBIGINT", "accounts with debt above collateral (oracle)", False),
        Column("realized_value", "HUGEINT", "cumulative realized bad debt (deficits booked)", False),
        Column("unrealized_oracle_base_f64", "DOUBLE", "derived: unrealized_oracle_value in "
               "whole base currency (bt.runs.base_currency)",
               False),
    ),
    "backtest.metrics.bad_debt", ("run_id", "block_number")))


#: the dust threshold without a ``dust_<currency>`` parameter, whole base currency: 1 USD; for
#: ETH (Aave v2) 0.001 ETH, a few USD at any ETH price since 2020 (1 ETH would be thousands)
DEFAULT_DUST: dict[str, Decimal] = {"usd": Decimal(1), "eth": Decimal("0.001")}


class BadDebt(Metric):
    """Realized and unrealized bad debt (see the module docstring)."""

    name: ClassVar[str] = "bad_debt"
    tables: ClassVar[tuple[Table, ...]] = (ACCOUNTS, BLOCKS)
    params_allowed: ClassVar[tuple[str, ...]] = money_keys("dust")
    #: the ``*_reference`` figures need accounts re-evaluated on reference moves (the at-risk
    #: index on oracle moves alone left an account healthy at the oracle but under water at the
    #: reference at 0, and lag attribution compares runs by these figures)
    tracks_reference: ClassVar[bool] = True

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        given = [k for k in self.params_allowed if k in self.params]
        if len(given) > 1:
            raise MetricError(f"metric 'bad_debt': give one of {given}, in the market's base currency")
        #: the dust key given (``dust_usd``, ``dust_eth``): checked against the market's currency
        #: at the run's start; without one, :data:`DEFAULT_DUST` of that currency
        self.dust_key = given[0] if given else None
        self.dust_amount: Decimal | None = None
        if self.dust_key is not None:
            dust = self.params[self.dust_key]
            if isinstance(dust, bool) or not isinstance(dust, (int, float, str)):
                raise MetricError(f"metric 'bad_debt': {self.dust_key} must be a number, got {dust!r}")
            try:
                self.dust_amount = Decimal(str(dust))
            except ArithmeticError:
                raise MetricError(f"metric 'bad_debt': {self.dust_key} must be a number, "
                                  f"got {dust!r}") from None
            if not self.dust_amount.is_finite() or self.dust_amount < 0:
                raise MetricError(f"metric 'bad_debt': {self.dust_key} must be a finite number >= 0, "
                                  f"got {dust!r}")
        self.dust = 0  # base currency units, set at the run's start
        self._has_reference = False
        self._reset()

    def _reset(self) -> None:
        #: user -> (oracle, reference) unrealized bad debt at the last evaluation
        self._by_user: dict[str, tuple[int, int]] = {}
        #: user -> the debt reserves its last rows gave a non-zero share (oracle or reference)
        self._shared: dict[str, tuple[str, ...]] = {}
        #: user -> (reserve, oracle share, reference share) of its last rows' non-zero shares
        self._split: dict[str, tuple[tuple[str, int, int | None], ...]] = {}
        self._oracle = self._reference = self._material = 0
        self._underwater = 0
        self._realized = 0
        self._last_totals: tuple[int, ...] | None = None
        # rows in append order (evaluation order), in bounded memory (backtest.sink)
        self._accounts = RowSink(ACCOUNTS)
        self._blocks = RowSink(BLOCKS)
        self._peak = (0, 0)  # value, block
        self._peak_ref = (0, 0)
        self._unit = 1
        self._end_block = self._end_ts = 0
        #: the window's first block: its number, the account rows by user and the totals row, held
        #: until its end. The run's start evaluates the accounts on the state before that block's
        #: inputs and its end evaluates the ones they changed: both at the same block number, so the
        #: end's rows replace the start's (one row per account, reserve and block, as the tables'
        #: keys say; a reader summing an account's rows at a block counted both)
        self._held: tuple[int, dict[str, list[tuple[Any, ...]]]] | None = None
        self._held_totals: tuple[Any, ...] | None = None

    def on_run_start(self, view: View) -> None:
        self._unit = view.unit
        cur = view.adapter.base_currency.lower()
        if self.dust_key is not None and self.dust_key != f"dust_{cur}":
            raise MetricError(f"metric 'bad_debt': {self.dust_key} is not in this market's base currency "
                              f"({cur.upper()}); give dust_{cur}")
        amount = self.dust_amount if self.dust_amount is not None else DEFAULT_DUST.get(cur)
        if amount is None:
            raise MetricError(f"metric 'bad_debt': no default dust threshold for base currency "
                              f"{cur.upper()}; give dust_{cur}")
        self.dust = int(amount * view.unit)
        self._has_reference = getattr(view.scenario, "reference", None) is not None
        self._held = (view.block.number, {})
        self._update(view, tuple(view.accounts()), view.block.number, view.block.timestamp)

    def on_liquidation(self, view: View, liquidation: Liquidation) -> None:
        # a liquidation outcome's ``bad_debt`` is a booked deficit only under deficit accounting
        # (Aave v3.3+ rule sets set ``deficit_accounting``); before that it is debt left without
        # collateral, which stays in the account and is counted as unrealized
        if liquidation.committed and getattr(getattr(view.state, "rules", None), "deficit_accounting", False):
            self._realized += liquidation.bad_debt_value

    def on_block_end(self, view: View, block: BlockEnd) -> None:
        if self._held is not None and self._held[0] != block.block.number:
            self._release()
        self._update(view, block.evaluated, block.block.number, block.block.timestamp)
        self._release()

    def on_run_end(self, view: View) -> None:
        self._release()
        self._end_block = view.block.number
        self._end_ts = view.block.timestamp

    def _release(self) -> None:
        """Write the held rows of the window's first block (see ``_held``)."""
        if self._held is None:
            return
        number, rows = self._held
        self._held = None
        for user in sorted(rows):
            for row in rows[user]:
                self._accounts.append(row)
        if self._held_totals is not None:
            totals, self._held_totals = self._held_totals, None
            self._blocks.append(totals)
            self._observe_peak(totals[4], totals[7], number)

    def _observe_peak(self, oracle: int, reference: int, number: int) -> None:
        if oracle > self._peak[0]:
            self._peak = (oracle, number)
        if reference > self._peak_ref[0]:
            self._peak_ref = (reference, number)

    def _update(self, view: View, evaluated: Sequence[AccountEval], number: int, ts: int) -> None:
        held = self._held[1] if self._held is not None and self._held[0] == number else None
        for ev in evaluated:
            o = ev.oracle.bad_debt_value
            r = ev.reference.bad_debt_value if ev.reference is not None else o
            prev = self._by_user.get(ev.user, (0, 0))
            if (o, r) == prev == (0, 0):
                continue
            # NULL at the reference only in a run without one: an account without debt has no
            # reference evaluation (the engine skips it) but its bad debt there is 0, not unknown
            rows = self._account_rows(view, ev, number, ts, o,
                                      r if ev.reference is not None or self._has_reference else None)
            # the same total can come with another split over the debts (a repayment with aTokens
            # lowers debt and collateral alike): rows then too, else each reserve's last row kept
            # its old share. The split of the same debts at the same figures is the same: no rows
            split = tuple((row[5], row[8], row[9]) for row in rows if row[8] or row[9])
            if (o, r) == prev and split == self._split.get(ev.user):
                continue
            if split:
                self._split[ev.user] = split
            else:
                self._split.pop(ev.user, None)
            self._oracle += o - prev[0]
            self._reference += r - prev[1]
            self._material += (o if o >= self.dust and o else 0) - (prev[0] if prev[0] >= self.dust and
                                                                     prev[0] else 0)
            self._underwater += (o > 0) - (prev[0] > 0)
            if o or r:
                self._by_user[ev.user] = (o, r)
            else:
                self._by_user.pop(ev.user, None)
            if held is not None:
                held[ev.user] = rows  # the block's last evaluation of the account
            else:
                for row in rows:
                    self._accounts.append(row)
        totals = (self._oracle, self._material, self._reference, self._underwater, self._realized)
        if totals != self._last_totals:
            self._last_totals = totals
            row = (view.run_id, view.chain_id, number, ts, self._oracle, self._material,
                   self._oracle - self._material, self._reference, self._underwater,
                   self._realized, self._oracle / self._unit)
            if held is not None:
                self._held_totals = row
            else:
                self._blocks.append(row)
        if held is None:
            self._observe_peak(self._oracle, self._reference, number)

    def _account_rows(self, view: View, ev: AccountEval, number: int, ts: int, o: int,
                      r: int | None) -> list[tuple[Any, ...]]:
        debts = [(p.asset, p.debt) for p in view.adapter.positions(view.state, ev.user, ts) if p.debt]
        if not debts:
            debts = [("", 0)]
        values = [view.value(a, d) if a else 0 for a, d in debts]
        total = sum(values)
        shares_o = _split(o, values, total)
        shares_r: list[int | None] = [None] * len(values) if r is None else [0] * len(values)
        if r:  # the reference bad debt pro rata to the debts' values at the reference prices
            ref = ChainMap(dict(view.reference_prices), dict(view.prices))
            values_r = [view.value(a, d, ref) if a else 0 for a, d in debts]
            shares_r = list(_split(r, values_r, sum(values_r)))
        # a reserve whose last row gave it a share and that is no longer a debt of the account (repaid,
        # liquidated, written off) gets a row of 0: else its last row, read per account and reserve
        # ("the value at a block is the last row at or before it"), kept its share for ever
        gone = [a for a in self._shared.get(ev.user, ()) if a not in {x for x, _ in debts}]
        if gone:
            debts += [(a, 0) for a in gone]
            values += [0] * len(gone)
            shares_o += [0] * len(gone)
            shares_r += [None if r is None else 0] * len(gone)
        shared = tuple(sorted(a for (a, _), so, sr in zip(debts, shares_o, shares_r, strict=True)
                              if a and (so or sr)))
        if shared:
            self._shared[ev.user] = shared
        else:
            self._shared.pop(ev.user, None)
        h = ev.oracle
        return [(view.run_id, view.chain_id, number, ts, ev.user, asset, debt, value,
                 so, sr, h.collateral_value, h.debt_value,
                 None if h.health_factor_wad == _NO_DEBT_HF else h.health_factor_wad,
                 o >= self.dust and o > 0, so / self._unit)
                for (asset, debt), value, so, sr in zip(debts, values, shares_o, shares_r, strict=True)]

    def rows(self) -> Mapping[str, Sequence[tuple[Any, ...]]]:
        return {ACCOUNTS.fqn: self._accounts, BLOCKS.fqn: self._blocks}

    def summary(self) -> Mapping[str, SummaryValue]:
        u = self._unit
        return {
            "peak_unrealized_oracle_value": self._peak[0],
            "peak_unrealized_oracle_block": self._peak[1] if self._peak[0] else None,
            "peak_unrealized_oracle_usd": self._peak[0] / u,
            "peak_unrealized_reference_value": self._peak_ref[0],
            "peak_unrealized_reference_block": self._peak_ref[1] if self._peak_ref[0] else None,
            "end_unrealized_oracle_value": self._oracle,
            "end_unrealized_oracle_usd": self._oracle / u,
            "end_unrealized_reference_value": self._reference,
            "end_material_oracle_value": self._material,
            "end_dust_oracle_value": self._oracle - self._material,
            "end_accounts_underwater": self._underwater,
            "realized_value": self._realized,
            "realized_usd": self._realized / u,
            "end_total_oracle_usd": (self._oracle + self._realized) / u,
            "dust_threshold_value": self.dust,
            "end_block": self._end_block,
            # the window's end (unix s): the rows stop at the last change, the figures hold until then
            # (bt.daily_bad_debt_by_reserve has a row for every day up to it)
            "end_block_ts": self._end_ts,
        }


def _split(amount: int, weights: Sequence[int], total: int) -> list[int]:
    """``amount`` split pro rata to ``weights`` (floored); the remainder goes to the largest
    weight (first of equals), so the parts sum exactly to ``amount``."""
    if not weights:
        return []
    if total <= 0:
        parts = [0] * len(weights)
        parts[0] = amount
        return parts
    parts = [amount * w // total for w in weights]
    big = max(range(len(weights)), key=lambda i: (weights[i], -i))
    parts[big] += amount - sum(parts)
    return parts
