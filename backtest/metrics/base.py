"""The metric hook API: what a metric module sees of a replay and what it hands back.

A metric is a class deriving :class:`Metric`, in its own module ``backtest/metrics/<name>.py``,
registered by one line in :mod:`backtest.metrics` (``_ENTRIES``). The engine creates one
instance per run (``Metric(params)``, ``params`` = the scenario's ``[metrics.<name>]`` table),
calls its hooks in the replay's single total order, then collects :meth:`Metric.rows` (rows of
the ``bt`` tables it declares in :attr:`Metric.tables`) and :meth:`Metric.summary` (headline
figures, written to ``bt.summaries``). Nothing a metric does can change the replay: the
:class:`View` is read-only (do not mutate ``view.state`` or the mappings it returns).

Hook order within one block ``B`` (see :mod:`backtest.engine`)::

    on_run_start(view)                      once, state = positions at the window start
    for each input of B in (block, log_index) order:
        on_price(view, update)              after the price is in view.prices / view.reference
        on_event(view, event)               after adapter.apply (historical mode only)
        on_liquidation(view, liq)           an observed LiquidationCall: after apply
    for each liquidation the liquidator model executes at B:
        on_liquidation(view, liq)           simulated: after commit (counterfactual) or as a
                                            prediction, not committed (historical)
    on_block_end(view, block)               accounts re-evaluated at B with their health
    on_run_end(view)                        once

Blocks without any input, and without a liquidation scheduled, are not visited (the replay is
event driven): ``on_block_end`` is called for *visited* blocks only, in increasing order.

Units are the protocol's (see :mod:`protocols.domain`): amounts in token base units, values in
the adapter's base currency at its oracle precision (Aave v3: USD with 8 decimals, so
``value / view.unit`` is USD), health factors WAD. Rows for ``bt`` tables carry exact integers
(HUGEINT/UHUGEINT columns) plus optional ``*_base_f64`` analysis floats
(whole base currency).

Row conventions (the writer, :mod:`backtest.outputs`, relies on them):

* :meth:`Metric.rows` returns ``{table_fqn: rows}``; each row is a tuple in the declared
  column order of that :class:`ingest.schema.Table`; the first column of every bt table is
  ``run_id`` (use ``view.run_id``), then ``chain_id``, then ``block_number`` (and ``log_index``
  where the row comes from a log) — the lineage every bt row carries.
* Rows must come out in a deterministic order (the engine is deterministic; do not iterate
  sets or ``id()``-keyed dicts). The writer deletes the run's previous rows and inserts the new
  ones in one transaction with everything else of the run.
* **A table whose rows grow with the run** (a row per account, block or reserve change: millions
  over a year) keeps them in a :class:`RowSink` (:mod:`backtest.sink`), not a list: create one
  per table in ``__init__`` (``self._rows = RowSink(MY_TABLE)``), ``append`` tuples to it in the
  hooks, and return it as is from :meth:`Metric.rows`. It turns every few thousand rows into a
  compact Arrow batch and spills batches to an anonymous temporary file past a memory budget;
  the writer streams them into DuckDB. If the rows must be written in another order than they are
  produced, give the sink ``order_by=("reserve", "block_number")`` (declared columns; ties keep
  append order, as ``sorted`` would) instead of sorting at the end. A sink reads back like a list
  (``len``, iteration, ``rows[-1]``, ``== [...]``), decoded from what will be written. A plain
  list stays fine for tables with a handful of rows per liquidation or per run (and for rows
  sorted by a Python key the sink cannot express).
* Declare a table with ``ingest.schema.Table``/``Column`` + ``register_table`` in the metric's
  module, schema ``"bt"``, ``filled_by`` = the module name; list it in :attr:`Metric.tables`.
  Two metrics may not fill the same table.

Summary conventions: :meth:`Metric.summary` returns ``{name: value}`` with ``value`` an ``int``
(exact), ``float``, ``str``, ``bool`` or ``None``; names carry units as suffixes like columns do
(``peak_bad_debt_usd``, ``count``, ``delay_blocks_mean``). Integers are stored exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from ingest.schema import Table
from protocols.base import ProtocolAdapter
from protocols.domain import EMPTY_MAPPING, AccountHealth, LiquidationOutcome, ProtocolEvent

from ..sink import RowSink

__all__ = [
    "Mode",
    "PriceUpdate",
    "BlockInfo",
    "AccountEval",
    "BlockEnd",
    "Liquidation",
    "View",
    "Metric",
    "SummaryValue",
    "MetricError",
    "RowSink",
    "currency_name",
]

Mode = Literal["historical", "counterfactual"]
SummaryValue = int | float | str | bool | None


def currency_name(name: str, currency: str) -> str:
    """The summary figure ``name`` in a run whose base currency is ``currency`` (any case): metrics
    name base-currency figures ``*_usd`` (Aave v3's), and for another base currency the run stores
    them as ``_<currency lower>`` (``end_total_oracle_usd`` is ``end_total_oracle_eth`` in an Aave
    v2 run) rather than convert at some ETH/USD rate the replay does not have; a name without
    ``_usd`` is unchanged. The one renaming the engine, ``[checks]`` and the report share."""
    cur = currency.lower()
    return name if cur == "usd" else name.replace("_usd", f"_{cur}")


class MetricError(Exception):
    """A metric's parameters are invalid (raised from ``Metric.__init__``, before the run)."""


@dataclass(frozen=True, slots=True)
class PriceUpdate:
    """One price the replay consumed, in the total order.

    * ``kind``: ``"oracle"`` (a price the protocol reads: an ingested round, or the oracle
      model's re-published / delayed answer) or ``"reference"`` (the off-chain reference price
      path, e.g. a CEX mid; never read by the protocol).
    * ``feed``: the oracle feed (lower-case proxy address, what ``raw.oracle_rounds.feed`` holds),
      or for a reference price the pair (``"ETH/USD"``).
    * ``keys``: the price keys this update sets in ``view.prices`` (oracle) or
      ``view.reference_prices`` (reference): for Aave, the asset addresses (and e-mode price
      sources) whose oracle source is this feed; a feed can back several keys.
    * ``price``: the new value in the adapter's base currency per whole token (Aave v3: USD with
      8 decimals), i.e. what ``view.prices[key]`` now holds; ``previous`` what it held before
      (None the first time).
    * ``answer``/``decimals``: the feed's raw answer (for a reference price: the exact decimal
      scaled to ``decimals``).
    * ``accepted``: False when the oracle model rejected the answer (outside min/max answer
      bounds, as an OCR aggregator rejects out-of-bound reports): prices did not change.
    * ``happened_block``/``happened_ts``: when the round was produced on chain (the log's
      block), or the reference instant (its ``happened_block`` is the first block at or after it).
    * ``block_number``/``log_index``/``timestamp``: where in the replay it took effect, i.e.
      when it became *knowable* to the protocol (later than ``happened`` under an added delay).
    * ``updated_at_ts``: the round's ``updatedAt`` (staleness against the heartbeat).
    * ``source_change``: True when the update is the protocol switching ``keys`` to ``feed``
      (``AaveOracle.AssetSourceUpdated``), not an answer: ``price`` is the feed's latest accepted
      answer, which the keys read from then on (``updated_at_ts`` is then the switch's time).
    * ``reference_of``: for a reference price, the oracle feed it is the reference of (one update
      per feed of the pair; ``keys`` are that feed's, empty once it prices no key); "" otherwise."""

    kind: Literal["oracle", "reference"]
    feed: str
    keys: tuple[str, ...]
    price: int
    previous: int | None
    answer: int
    decimals: int
    accepted: bool
    happened_block: int
    happened_ts: int
    block_number: int
    log_index: int
    timestamp: int
    updated_at_ts: int
    source_change: bool = False
    reference_of: str = ""


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """One block header as the replay knows it (from ``raw.blocks``): number, timestamp (unix
    s), base fee (wei; 0 before London or when unknown), hash (None for synthetic blocks) and
    whether the block was final when it was ingested (``raw.blocks.finality_at_ingest``)."""

    number: int
    timestamp: int
    base_fee_wei: int = 0
    hash: str | None = None
    finalized_at_ingest: bool = True


@dataclass(frozen=True, slots=True)
class AccountEval:
    """One account re-evaluated exactly at the end of a block: its health at the oracle prices
    the protocol reads (``oracle``) and at the reference prices (``reference``; None when no
    reference path covers every price the account needs)."""

    user: str
    oracle: AccountHealth
    reference: AccountHealth | None


@dataclass(frozen=True, slots=True)
class BlockEnd:
    """Passed to :meth:`Metric.on_block_end`: the block, and every account whose health was
    re-evaluated exactly in it (sorted by user), i.e. accounts touched by an event or a
    liquidation in the block, accounts whose liquidation point a price move of the block could
    have crossed and liquidatable accounts exposed to a price that moved (the at-risk index; with
    ``naive=True`` every account with debt at every price move). When a metric of the run
    ``requires_reference`` (or ``tracks_reference``, with a reference path), also the accounts
    whose liquidation point *at the reference prices* a reference move of the block could have
    crossed, and those liquidatable at the reference exposed to a reference price that moved
    (each with ``.oracle`` and ``.reference``). At the window's last block, every account
    liquidatable at its last evaluation. An account absent from ``evaluated`` keeps its last
    evaluation (``view.health(user)``): between evaluations only interest moves it."""

    block: BlockInfo
    evaluated: tuple[AccountEval, ...]


@dataclass(frozen=True, slots=True)
class Liquidation:
    """One liquidation, observed (an ingested ``LiquidationCall``) or simulated (the liquidator
    model's decision).

    * ``observed``: True for an on-chain LiquidationCall (historical mode). Its amounts are the
      event's (the final word); ``predicted`` is what ``adapter.liquidate`` computed with the
      event's own arguments (collateral, debt, user, debt_to_cover, receive_a_token, liquidator)
      on the pre-event state at the observed block — fidelity compares the two. (The event's
      debt_to_cover is the amount repaid; when it does not reproduce the event and
      ``type(uint256).max`` does exactly, the prediction is that call's:
      ``Replay._predict_observed``.)
    * ``committed``: True if it changed the replay's state (observed ones always; simulated ones
      in counterfactual mode). A simulated liquidation in historical mode is a *prediction*
      (``committed=False``): the state follows what happened on chain.
    * ``block_number``/``log_index``/``tx_hash``/``timestamp``: where it happened (simulated:
      the block the liquidator acted in, ``log_index`` None, ``tx_hash`` None).
    * ``debt_to_cover``: the amount asked for (simulated: what the model passed, often
      ``2**256 - 1`` like bots do); ``debt_repaid`` / ``collateral_seized`` (to the liquidator,
      excluding ``protocol_fee``) / ``protocol_fee`` in base units of their assets.
    * ``*_value``: the same in base currency at the oracle prices of the block
      (``bonus_value`` = seized + fee value − repaid value: what the borrower paid above par;
      ``liquidator_bonus_value`` = seized value − repaid value).
    * ``protocol_fee`` / ``protocol_fee_value`` (and so ``bonus_value``) are None when unknown:
      an observed liquidation whose prediction reverted, under an adapter whose liquidations may
      pay a fee (Aave v3). The event does not carry the fee and the ingested events do not give
      it exactly (the treasury's ``BalanceTransfer`` has the *scaled* amount), so the fee comes
      from the prediction; when the adapter's protocol has no fee (Aave v2,
      ``ProtocolAdapter.has_liquidation_protocol_fee``) it is exactly 0. Never None for a
      simulated liquidation. Consumers skip an unknown fee and say how many they skipped.
    * ``bad_debt``: debt the liquidation left without collateral (asset → base units): under
      deficit accounting (v3.3+) the deficit it booked (simulated: the outcome's; observed: its
      transaction's ``DeficitCreated``), else (Aave v2, v3.0–3.2) the debt that stays on the
      account (simulated: the outcome's; observed: read on the state after it);
      ``bad_debt_value`` its value at the oracle prices.
    * ``liquidatable_since_block``/``_ts``: first visited block of the account's current run of
      exact evaluations that found it liquidatable — every evaluation counts, also those the
      liquidator model does not observe (an expired interest bound, a reference move), so it can
      precede the model's episode (:mod:`backtest.liquidator`); the run ends at an evaluation
      finding it not liquidatable. An observed liquidation of an account liquidatable on the
      state just before its transaction (``health_before_wad``) has one by its own block at the
      latest (a backrun of an answer in that block: delay 0). None if the replay never found it
      liquidatable; delay = block_number − since.
    * ``decided_block``: simulated: the block whose state the liquidator saw (acting block −
      reaction delay − finality wait); observed: None.
    * ``gas_cost_value`` / ``slippage_value`` / ``flash_fee_value`` / ``profit_value``:
      simulated only (base currency; 0 for observed), at the liquidator model's trade prices
      (``[liquidator] prices``: the oracle's, or the reference market's; see
      :mod:`backtest.liquidator`): ``profit_value`` = the trade's value − costs, the liquidator
      bonus − costs at oracle prices.
    * ``outcome``: the adapter's outcome committed or predicted (simulated); for observed ones,
      None (see ``predicted``).
    * ``health_before_wad``: observed: the account's health factor on the state ``predicted`` was
      computed on (just before the transaction) at the oracle prices in force then — an answer
      earlier in the block included, which the last end-of-block evaluation
      (:meth:`View.health`) is not; None for simulated ones (they land at the top of a block, on
      the prices of their last evaluation)."""

    observed: bool
    committed: bool
    block_number: int
    log_index: int | None
    tx_hash: str | None
    timestamp: int
    user: str
    liquidator: str
    collateral_asset: str
    debt_asset: str
    debt_to_cover: int
    debt_repaid: int
    collateral_seized: int
    protocol_fee: int | None
    receive_a_token: bool
    debt_repaid_value: int
    collateral_seized_value: int
    protocol_fee_value: int | None
    bad_debt: Mapping[str, int] = field(default_factory=lambda: EMPTY_MAPPING)
    bad_debt_value: int = 0
    liquidatable_since_block: int | None = None
    liquidatable_since_ts: int | None = None
    decided_block: int | None = None
    gas_cost_value: int = 0
    slippage_value: int = 0
    flash_fee_value: int = 0
    profit_value: int = 0
    outcome: LiquidationOutcome | None = None
    predicted: LiquidationOutcome | None = None
    health_before_wad: int | None = None

    @property
    def bonus_value(self) -> int | None:
        """Value the borrower lost above par: seized + protocol fee − repaid (base currency); None
        when the protocol fee is unknown."""
        if self.protocol_fee_value is None:
            return None
        return self.collateral_seized_value + self.protocol_fee_value - self.debt_repaid_value

    @property
    def liquidator_bonus_value(self) -> int:
        """Value the liquidator received above what it repaid (base currency)."""
        return self.collateral_seized_value - self.debt_repaid_value

    @property
    def delay_blocks(self) -> int | None:
        """Blocks from first seen liquidatable to liquidated (None if never seen so)."""
        if self.liquidatable_since_block is None:
            return None
        return self.block_number - self.liquidatable_since_block


class View(Protocol):
    """A read-only window on the replay, passed to every hook. Attributes reflect the instant
    of the hook (see the module docstring for the order)."""

    #: run identity and setting
    run_id: str
    chain_id: int
    mode: Mode
    #: the scenario object (:class:`backtest.scenario.Scenario`); typed ``Any`` to keep this
    #: module free of import cycles
    scenario: Any
    #: the protocol adapter and its live state (do not mutate)
    adapter: ProtocolAdapter[Any]
    state: Any
    #: one unit of base currency (Aave v3: 10**8 = 1 USD)
    unit: int
    #: the block being replayed (number, timestamp, base fee)
    block: BlockInfo
    #: blocks after which a block is final (finality model) and blocks a liquidation waits
    finality_depth_blocks: int
    wait_blocks: int
    #: window bounds (inclusive)
    from_block: int
    to_block: int

    @property
    def prices(self) -> Mapping[str, int]:
        """Oracle prices in force (what the protocol reads), keyed like the adapter's prices."""
        ...

    @property
    def reference_prices(self) -> Mapping[str, int]:
        """Reference prices in force, same keys and units as :attr:`prices` (empty when the
        scenario has no reference path; a key is absent until its first reference price)."""
        ...

    @property
    def start_updates(self) -> Sequence[PriceUpdate]:
        """The oracle answers (one per feed) and reference prices (one per feed of a pair) in force
        at the window start, carried from before it, as price updates at the window's first block
        and log index -2 (``happened_*``: the round or reference instant they come from). Not
        passed to :meth:`Metric.on_price`: nothing was consumed."""
        ...

    def health(self, user: str) -> AccountEval | None:
        """The account's last exact evaluation (None if never evaluated / no position)."""
        ...

    def accounts(self) -> Iterator[AccountEval]:
        """Every account's last evaluation, sorted by user."""
        ...

    def price_keys(self, asset: str) -> tuple[str, ...]:
        """The price keys an asset's value depends on (Aave: the asset itself)."""
        ...

    def value(self, asset: str, amount: int, prices: Mapping[str, int] | None = None) -> int:
        """``amount`` base units of ``asset`` in base currency at ``prices`` (default: the oracle
        prices in force), floored: ``amount * price // 10**decimals``. Raises ``KeyError`` when
        the price is unknown."""
        ...

    def decimals(self, asset: str) -> int:
        """The asset's token decimals."""
        ...


class Metric:
    """Base class of a metric: every hook is a no-op; override the ones you need.

    Class attributes: ``name`` (the registry key, also ``bt.summaries.metric``), ``tables``
    (the bt tables whose rows :meth:`rows` returns), ``requires_reference`` (True if the
    metric needs a reference price path; the engine then fails before running when the scenario
    has none), ``tracks_reference`` (True if the metric reads the reference evaluations when the
    scenario has a reference path, without needing one: the engine then re-evaluates accounts on
    reference moves as for ``requires_reference``, else their ``.reference`` figures are only as
    fresh as the last oracle move or event that re-evaluated them). Instances are created once
    per run with the scenario's parameters for the metric
    (``[metrics.<name>]`` table as a dict); validate them in ``__init__`` and raise
    :class:`MetricError` naming the parameter."""

    name: ClassVar[str] = ""
    tables: ClassVar[tuple[Table, ...]] = ()
    requires_reference: ClassVar[bool] = False
    tracks_reference: ClassVar[bool] = False
    #: parameter names accepted in ``[metrics.<name>]`` (others are scenario errors)
    params_allowed: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.params: Mapping[str, Any] = dict(params or {})
        unknown = sorted(set(self.params) - set(self.params_allowed))
        if unknown:
            raise MetricError(f"metric {self.name!r}: unknown parameter(s) {unknown}; allowed: "
                              f"{list(self.params_allowed)}")

    def on_run_start(self, view: View) -> None:
        """Once, after the window's starting state is built and evaluated."""

    def on_price(self, view: View, update: PriceUpdate) -> None:
        """After an oracle or reference price took effect (or was rejected, ``accepted``)."""

    def on_event(self, view: View, event: ProtocolEvent) -> None:
        """After a protocol event was applied (historical mode; counterfactual mode freezes
        user actions, so no event is applied after the window start)."""

    def on_liquidation(self, view: View, liquidation: Liquidation) -> None:
        """After an observed liquidation was applied or a simulated one committed/predicted."""

    def on_block_end(self, view: View, block: BlockEnd) -> None:
        """After every input and liquidation of a visited block."""

    def on_run_end(self, view: View) -> None:
        """Once, after the last block of the window (``view.block`` = that block)."""

    def rows(self) -> Mapping[str, Sequence[tuple[Any, ...]]]:
        """``{table_fqn: rows}`` for the tables in :attr:`tables` (see the module docstring): a
        list of tuples, or the table's :class:`RowSink` (returned as is, not copied)."""
        return {}

    def summary(self) -> Mapping[str, SummaryValue]:
        """Headline figures, written to ``bt.summaries`` (one row per name)."""
        return {}
