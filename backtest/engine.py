"""The replay: one total order of inputs, two clocks, the adapter's state, the liquidator model
and the metrics' hooks.

Inputs, keyed ``(block_number, log_index)``: oracle answers as the oracle model publishes them
(:mod:`backtest.oracle`; a delayed or reference-derived answer takes effect at the start of its
block, ``log_index = -1``), reference prices (start of the first block at or after their
instant), and — in historical mode — the market's protocol events. A block runs: the
liquidations the liquidator model decided at the end of the previous block (top of the block,
before any input), the block's inputs in order, then block-end work: exact re-evaluation of the
accounts that may have changed (events, the at-risk index of :mod:`backtest.ledger` — on oracle
moves, and on reference moves when a metric ``requires_reference`` or ``tracks_reference``:
accounts whose liquidation point the move may have crossed, and already liquidatable accounts
exposed to the moved price —, expiries, the liquidatable accounts the liquidator could act on
when an oracle answer was published (with ``[liquidator] prices = "reference"``, also when a
reference price moved), wake-ups; at the window's last block, every account
liquidatable at its last evaluation), the liquidator model's quotes for the accounts due (landing
in the next block), then the metrics' ``on_block_end``.

Two clocks: *happened* (the log's block) and *knowable* (when an actor can act on it): the
protocol uses an answer from the block it takes effect in; the liquidator model acts on what it
observed at a block end, no earlier than ``reaction_delay_blocks + finality.wait_blocks`` blocks
after the account's episode started (:mod:`backtest.liquidator` has the exact timing).

Modes:

* ``historical``: every protocol event is applied (observed ``LiquidationCall`` included: first
  ``adapter.liquidate`` is computed with the event's own arguments on the pre-event state — the
  prediction fidelity compares — then the event is applied; its amounts are the final word).
  The liquidator model runs alongside and records *predictions* (not committed): what it would
  have executed at the top of each block, on the replayed pre-block state. A prediction stays
  open until the account's position changes (an event touches it, e.g. the chain's own
  liquidation) or it stops being liquidatable: the model does not predict the same account again
  meanwhile, so a liquidation the chain never made is one false positive, not one per block (and
  an under-water account nobody liquidates costs nothing per block).
* ``counterfactual``: the state at the window start is rebuilt from events, then user actions are
  frozen — no protocol event after the window start is applied (governance changes included);
  prices follow the oracle model; interest accrues by timestamp; scenario overrides are applied
  to the starting state; the liquidator model's liquidations are committed.

Blocks are visited when they carry an input, a wake-up or a decided liquidation; everything is evaluated
in sorted order, so the same inputs give the same outputs (no clocks, no set order).
"""

from __future__ import annotations

import dataclasses
import heapq
from collections import ChainMap
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ingest.schema import Table
from protocols.base import ZERO_ADDRESS, LiquidationCall, ProtocolAdapter
from protocols.domain import AccountHealth, LiquidationOutcome, ProtocolEvent
from protocols.errors import ProtocolError

from .clock import Blocks
from .errors import ReplayError
from .ledger import Ledger
from .liquidator import MAX_UINT256, Decision, LiquidatorModel, TradePrices
from .metrics import MetricError, get_metric
from .metrics.base import (
    AccountEval,
    BlockEnd,
    BlockInfo,
    Liquidation,
    Metric,
    Mode,
    PriceUpdate,
    currency_name,
)
from .oracle import (
    FeedRules,
    Publication,
    RefPoint,
    Round,
    SourceChange,
    accepted,
    publications,
    reference_answer,
)
from .outputs import LIQUIDATIONS, RUNS, SUMMARIES, RunRecord, liquidation_row, summary_rows
from .scenario import Overrides, Scenario
from .sink import RowSink

__all__ = ["ReplayInputs", "ReplayOutput", "Replay", "apply_overrides"]

_ADDRESS_LEN = 42

#: at most this many liquidations of one account in one block (counterfactual mode,
#: ``liquidator.repeat_in_block``: a bundle); an account still liquidatable after them is observed
#: at the block's end like any other and its next liquidation lands in the next block
#: (see :mod:`backtest.liquidator`)
MAX_BUNDLE_LIQUIDATIONS = 64


@dataclass
class ReplayInputs:
    """Everything a replay reads, already in memory (the DuckDB loader, :mod:`backtest.api`,
    builds it from the warehouse; tests and benchmarks build it directly).

    * ``state``: the market at the end of block ``from_block - 1`` (positions, reserves);
    * ``rounds``: oracle rounds with ``from_block <= block_number <= to_block``, in order, and
      before them, with an oracle delay (``delay_blocks``/``delay_s``), the rounds before the window
      that the delay makes usable only inside it; ``initial_rounds``: each feed's last round before
      the window usable at its start (the prices in force);
    * ``feed_keys``: feed → the price keys it sets at the window start (Aave: the assets whose
      AaveOracle source it is); ``source_changes``: the switches of a key to another feed inside
      the window, in order (every feed they name has its rounds in ``rounds``/``initial_rounds``);
    * ``refs``: reference points in the window (block resolved), in order; ``initial_refs``: each
      pair's last point before the window;
    * ``events``: historical mode: the market's protocol events in the window, in order;
    * ``blocks``: at least every block of the window;
    * ``feed_rules``: feed → its declared deviation threshold, heartbeat and bounds
      (``raw.oracle_feeds``; the oracle_lag metric's defaults)."""

    adapter: ProtocolAdapter[Any]
    state: Any
    chain_id: int
    from_block: int
    to_block: int
    blocks: Blocks
    feed_keys: Mapping[str, tuple[str, ...]]
    rounds: Sequence[Round] = ()
    initial_rounds: Mapping[str, Round] = field(default_factory=dict)
    refs: Sequence[RefPoint] = ()
    initial_refs: Mapping[str, RefPoint] = field(default_factory=dict)
    events: Iterable[ProtocolEvent] = ()
    data_sources: tuple[str, ...] = ()
    feed_decimals: Mapping[str, int] = field(default_factory=dict)
    source_changes: Sequence[SourceChange] = ()
    feed_rules: Mapping[str, FeedRules] = field(default_factory=dict)


@dataclass
class ReplayOutput:
    """A finished replay: its ``bt`` rows per table, the metrics' summaries, the runs record."""

    run_id: str
    record: RunRecord
    tables: dict[Table, Sequence[tuple[Any, ...]]]  # lists, or RowSinks (backtest.sink) for big tables
    summary: dict[str, dict[str, Any]]
    liquidations: list[Liquidation]
    final_state: Any


def apply_overrides(adapter: ProtocolAdapter[Any], state: Any, overrides: Overrides) -> None:
    """Replace the listed reserves' configuration fields (Aave v2/v3 state layout) and the listed
    e-mode categories' threshold and bonus (Aave v3 ``state.emode_categories``), at the start of
    a counterfactual run (the only mode with overrides; it applies no protocol event of the
    window, so nothing undoes them); a field the protocol's reserves lack (Aave v2: caps,
    protocol fee) or a category the market does not have is a :class:`ReplayError`."""
    for i, c in enumerate(overrides.emode):
        cat = state.emode_categories.get(c.category)
        if cat is None:
            raise ReplayError(f"overrides.emode[{i}].category: the {adapter.name} market has no e-mode "
                              f"category {c.category}")
        state.emode_categories[c.category] = dataclasses.replace(cat, **{
            k: v for k, v in (("liquidation_threshold", c.liquidation_threshold_bps),
                              ("liquidation_bonus", c.liquidation_bonus_bps)) if v is not None})
    for i, o in enumerate(overrides.reserves):
        r = state.reserves.get(o.asset)
        if r is None:
            raise ReplayError(f"override for {o.asset}: no such reserve in the {adapter.name} market")
        pairs = (("ltv", "ltv_bps"), ("liquidation_threshold", "liquidation_threshold_bps"),
                 ("liquidation_bonus", "liquidation_bonus_bps"),
                 ("liquidation_protocol_fee", "liquidation_protocol_fee_bps"),
                 ("supply_cap", "supply_cap"), ("borrow_cap", "borrow_cap"))
        have = {f.name for f in dataclasses.fields(r.configuration)}
        changes = {}
        for name, key in pairs:
            v = getattr(o, key)
            if v is None:
                continue
            if name not in have:
                raise ReplayError(f"overrides.reserve[{i}].{key}: the {adapter.name} market's reserves have "
                                  f"no {name}")
            changes[name] = v
        state.reserves[o.asset] = dataclasses.replace(
            r, configuration=dataclasses.replace(r.configuration, **changes))


class _View:
    """The :class:`backtest.metrics.base.View` the metrics see."""

    def __init__(self, replay: Replay):
        self._r = replay
        s = replay.scenario
        self.run_id = replay.run_id
        self.chain_id = replay.inputs.chain_id
        self.mode: Mode = s.mode
        self.scenario = s
        self.adapter = replay.adapter
        self.state = replay.state
        self.unit = replay.unit
        self.block = replay.block
        self.finality_depth_blocks = s.finality.depth_blocks
        self.wait_blocks = s.finality.wait_blocks
        self.from_block = replay.inputs.from_block
        self.to_block = replay.inputs.to_block
        self._prices = MappingProxyType(replay.prices)
        self._ref = MappingProxyType(replay.ref_prices)
        #: feed → the price keys it currently sets (changes with AssetSourceUpdated)
        self.feed_keys: Mapping[str, tuple[str, ...]] = MappingProxyType(replay.feed_keys)
        #: feed → its rules as the deployments declared them at ingest (``raw.oracle_feeds``)
        self.feed_rules: Mapping[str, FeedRules] = MappingProxyType(dict(replay.inputs.feed_rules))
        #: feed → updatedAt (unix s) of its answer in force at the window start: its last round
        #: before the window, or under a replacing oracle model the reference point's instant
        self.start_updated_at: Mapping[str, int] = MappingProxyType(replay.start_updated_at)

    @property
    def prices(self) -> Mapping[str, int]:
        return self._prices

    @property
    def liquidator_quotes(self) -> Mapping[str, int]:
        """How the liquidator model's quotes so far ended (``LiquidatorModel.quotes``), plus
        ``reverted:<reason>`` per revert reason."""
        lm = self._r.liquidator
        reasons = {f"reverted:{k}": v for k, v in sorted(lm.revert_reasons.items())}
        return MappingProxyType({**lm.quotes, **reasons})

    @property
    def reference_prices(self) -> Mapping[str, int]:
        return self._ref

    @property
    def start_updates(self) -> Sequence[PriceUpdate]:
        """The oracle answers and reference prices in force at the window start (see
        :class:`backtest.metrics.base.View`)."""
        return tuple(self._r.start_updates)

    def health(self, user: str) -> AccountEval | None:
        return self._r.ledger.evals.get(user)

    def accounts(self) -> Iterator[AccountEval]:
        evals = self._r.ledger.evals
        for u in sorted(evals):
            yield evals[u]

    def price_keys(self, asset: str) -> tuple[str, ...]:
        return (asset,)

    def value(self, asset: str, amount: int, prices: Mapping[str, int] | None = None) -> int:
        p = (self._prices if prices is None else prices)[asset]
        return int(amount * p // 10 ** self.adapter.decimals(self.state, asset))

    def decimals(self, asset: str) -> int:
        return self.adapter.decimals(self.state, asset)

    def block_timestamp(self, n: int) -> int | None:
        """Timestamp of block ``n`` from the replay's block clock, visited or not (None when the
        clock lacks it)."""
        blocks = self._r.inputs.blocks
        return blocks.timestamp(n) if n in blocks else None


class Replay:
    """One run of a scenario over :class:`ReplayInputs` (see the module docstring)."""

    def __init__(self, scenario: Scenario, inputs: ReplayInputs, run_id: str, *, naive: bool = False,
                 code_version: str = "", metrics: Sequence[Metric] | None = None,
                 progress: Callable[[int, int, int], None] | None = None):
        self.scenario = scenario
        #: ``progress(block, from_block, to_block)``, called as the replay moves through the
        #: window (at most every 2,000 visited blocks); display only, it cannot change the run
        self.progress = progress
        self.inputs = inputs
        self.run_id = run_id
        self.code_version = code_version
        self.adapter = inputs.adapter
        self.state = inputs.state
        self.mode: Mode = scenario.mode
        self.unit = _base_unit(self.adapter)
        self.metrics: list[Metric] = list(metrics) if metrics is not None else [
            get_metric(n)(scenario.metrics.params.get(n)) for n in scenario.metrics.names]
        self.prices: dict[str, int] = {}
        self.ref_prices: dict[str, int] = {}
        self.has_reference = scenario.reference is not None
        #: a metric needs reference re-evaluation (hidden insolvency): the at-risk index also
        #: tracks reference liquidation points (:class:`backtest.ledger.Ledger`)
        self.track_reference = self.has_reference and any(m.requires_reference or m.tracks_reference
                                                          for m in self.metrics)
        # each hook only for the metrics that override it (a replay calls them millions of times)
        self._hooks_price = _overriding(self.metrics, "on_price")
        self._hooks_event = _overriding(self.metrics, "on_event")
        self._hooks_liquidation = _overriding(self.metrics, "on_liquidation")
        self._hooks_block_end = _overriding(self.metrics, "on_block_end")
        self._address_args: dict[str, tuple[str, ...]] = {}  # event signature -> its address arguments
        self.ledger = Ledger(self.adapter, naive=naive, track_reference=self.track_reference)
        self.ref_moved = False
        #: accounts a reference move may have carried across their liquidation point: evaluated
        #: for the metrics at block end, never quoted (see :meth:`_end`)
        self.ref_dirty: set[str] = set()
        self.feed_keys: dict[str, tuple[str, ...]] = {
            f: tuple(k) for f, k in sorted(inputs.feed_keys.items())}
        self.feed_answer: dict[str, int] = {}  # feed -> its latest accepted answer
        #: feed -> updatedAt (unix s) of the answer in force at the window start (_initial_prices)
        self.start_updated_at: dict[str, int] = {}
        #: replaced feed -> (answer, unix second) in force at the window start (_initial_prices)
        self._start_answer: dict[str, tuple[int, int]] = {}
        #: the shocked rounds (_shocked_rounds, computed once) and the shocked answer in force at
        #: the window start of each feed whose initial round the shocks move (_initial_prices)
        self._shocked: list[Round] | None = None
        self._shocked_start: dict[str, int] = {}
        #: the oracle answers and reference prices in force at the window start, as price updates
        #: at log index -2 of the first block (_initial_prices; View.start_updates)
        self.start_updates: list[PriceUpdate] = []
        self.pair_last: dict[str, Fraction] = {}  # reference pair -> its latest price
        self.liquidator = LiquidatorModel(scenario.liquidator, self.unit, scenario.overrides.close_factor_bps)
        #: ``[liquidator] prices = "reference"``: the liquidator trades at the reference price in
        #: force for each key it covers, the oracle's for the others (live: both dicts change in place)
        self.trade: TradePrices | None = None
        if scenario.liquidator.prices == "reference":
            market = ChainMap(self.ref_prices, self.prices)
            self.trade = TradePrices(market, lambda a, v: self.view.value(a, v, market))
        self.delay = scenario.liquidator.reaction_delay_blocks + scenario.finality.wait_blocks
        self.block = BlockInfo(inputs.from_block, inputs.blocks.timestamp(inputs.from_block)
                               if inputs.from_block in inputs.blocks else 0)
        self.view = _View(self)
        self.dirty: set[str] = set()
        #: accounts whose positions an event or a committed liquidation changed since their last
        #: evaluation (the ledger re-reads their price keys)
        self.moved: set[str] = set()
        self.price_moved = False
        self.priced = False
        self.wakes: dict[int, set[str]] = {}
        self.pending: dict[int, list[tuple[str, Decision, int]]] = {}  # block -> (user, decision, seen)
        self.episode: dict[str, tuple[int, int]] = {}
        #: account -> (block, timestamp) of the first of its current run of exact evaluations that
        #: found it liquidatable, whether the liquidator observed them or not (an evaluation for an
        #: expired interest bound or a reference move counts): its liquidations' liquidatable_since
        self.liquidatable_since: dict[str, tuple[int, int]] = {}
        #: historical mode: accounts with an open prediction (see the module docstring)
        self.predicted_open: set[str] = set()
        self.liquidations: list[Liquidation] = []
        self.capacity_used = 0
        self._pre_tx: dict[tuple[int, int], ProtocolEvent] = {}
        self._predictions: dict[tuple[int, int], LiquidationOutcome] = {}
        #: the account's health on the same state and prices as the prediction
        #: (Liquidation.health_before_wad; liquidatable then: its liquidatable_since at the latest)
        self._health_before: dict[tuple[int, int], AccountHealth] = {}
        #: (tx hash, user) -> debt asset -> DeficitCreated amounts of the transaction so far: the
        #: deficit an observed LiquidationCall created (v3.3+ emits them before LiquidationCall)
        self._tx_deficits: dict[tuple[str, str], dict[str, int]] = {}
        #: (block, log index) -> the adapter's reading of each observed LiquidationCall still ahead
        self._calls: dict[tuple[int, int], LiquidationCall] = {}
        self.events_applied = self.prices_consumed = self.blocks_visited = self.evaluations = 0
        self.pair_feeds: dict[str, list[str]] = {}
        if scenario.reference is not None:
            for feed, pair in scenario.reference.pairs.items():
                self.pair_feeds.setdefault(pair, []).append(feed)

    # ------------------------------------------------------------------ setup
    def _feed_decimals(self, feed: str) -> int:
        r = self.inputs.initial_rounds.get(feed)
        if r is not None:
            return r.decimals
        return self.inputs.feed_decimals.get(feed, 8)

    def _initial_prices(self) -> None:
        s = self.scenario
        replaced: set[str] = set()
        if s.reference is not None and s.oracle.model != "protocol":
            replaced = set(s.reference.pairs)
        self._shocked_rounds()  # the shocked answers in force at the start (_shocked_start)
        for pair, point in sorted(self.inputs.initial_refs.items()):
            self.pair_last[pair] = point.price
        feeds = sorted(set(self.feed_keys) | {c.feed for c in self.inputs.source_changes})
        for feed in feeds:
            r = self.inputs.initial_rounds.get(feed)
            answer = r.answer if r is not None else None
            # where the answer in force comes from: block, unix second, updatedAt
            happened = None if r is None else (r.block_number, r.block_ts, r.updated_at_ts)
            if feed in replaced and s.reference is not None:
                p = self.inputs.initial_refs.get(s.reference.pairs[feed])
                if p is not None:
                    a = reference_answer(p.price, self._feed_decimals(feed))
                    # an answer the chain never saw: outside the feed's bounds, the last round stays
                    if accepted(s.oracle, a, self.inputs.feed_rules.get(feed)):
                        answer = a
                        self._start_answer[feed] = (a, p.ts)
                        happened = (p.block_number, p.ts, p.ts)
                    elif r is not None:
                        self._start_answer[feed] = (r.answer, r.updated_at_ts)
            shocked = self._shocked_start.get(feed)
            # the round in force, moved by the shocks: an answer the chain never saw, held to the
            # feed's bounds (outside them, the round as it was stays)
            if shocked is not None and accepted(s.oracle, shocked, self.inputs.feed_rules.get(feed)):
                answer = shocked
            if answer is not None:
                self.feed_answer[feed] = answer
                if feed in self._start_answer:
                    self.start_updated_at[feed] = self._start_answer[feed][1]
                elif r is not None:
                    self.start_updated_at[feed] = r.updated_at_ts
                for k in self.feed_keys.get(feed, ()):
                    self.prices[k] = answer
                if happened is not None:
                    self.start_updates.append(PriceUpdate(
                        "oracle", feed, self.feed_keys.get(feed, ()), answer, None, answer,
                        self._feed_decimals(feed), True, happened[0], happened[1], self.block.number, -2,
                        self.block.timestamp, happened[2]))
        if s.reference is not None:
            for feed, pair in sorted(s.reference.pairs.items()):
                p = self.inputs.initial_refs.get(pair)
                if p is not None:
                    ans = reference_answer(p.price, self._feed_decimals(feed))
                    keys = self.feed_keys.get(feed, ())
                    for k in keys:
                        self.ref_prices[k] = ans
                    self.start_updates.append(PriceUpdate(
                        "reference", pair, keys, ans, None, ans, self._feed_decimals(feed), True,
                        p.block_number, p.ts, self.block.number, -2, self.block.timestamp, p.ts,
                        reference_of=feed))

    def _stream(self) -> Iterator[tuple[int, int, int, int, object]]:
        """Every input as ``(block, log_index, kind, seq, item)``; kind 0 reference, 1 oracle,
        2 event (so at one position a reference price precedes the oracle answer)."""
        s = self.scenario
        pairs = dict(s.reference.pairs) if s.reference is not None else {}
        decs = {f: self._feed_decimals(f)
                for f in sorted(set(self.feed_keys) | {c.feed for c in self.inputs.source_changes})}
        pubs = publications(s.oracle, self._shocked_rounds(), self.inputs.refs, pairs, decs,
                            self.inputs.blocks, self.inputs.to_block, self.inputs.feed_rules,
                            initial=self._start_answer)
        a: Iterator[tuple[int, int, int, int, object]] = (
            (p.block_number, p.log_index, 1, p.seq, p) for p in pubs)
        b: Iterator[tuple[int, int, int, int, object]] = (
            (r.block_number, -1, 0, i, r) for i, r in enumerate(self.inputs.refs))
        c: Iterator[tuple[int, int, int, int, object]] = (
            (x.block_number, x.log_index, 3, i, x) for i, x in enumerate(self.inputs.source_changes))
        streams = [a, b, c]
        if self.mode == "historical":
            # lazily (a streamed year of events never sits in memory): each transaction's events
            # are read ahead as a group, so its triggers are known before its first event
            streams.append(_with_triggers(self.adapter, self.inputs.events, self._pre_tx, self._calls))
        # plain tuple order: (block, log_index, kind, seq) never ties (a kind's seq is unique
        # where it is not 0, and two events never share block and log index), so the items
        # themselves are never compared
        return heapq.merge(*streams)

    def _shocked_rounds(self) -> Sequence[Round]:
        """The window's rounds after the scenario's shocks (:func:`backtest.shocks.apply_shocks`;
        computed once). Each feed's path is the answer in force at the window start (the initial
        round, at its own second ``ti``) followed by its later rounds at their blocks' seconds
        (those before the window that an oracle delay holds back, then the window's; rounds of one
        second fold into its last). After the shocks:

        * a point at a round's second is that round: as it was, the round itself (block, log
          index); moved, its answer at the round's block and log index (so a delay holds it back
          from its own block, as the real round);
        * the initial round's point, moved, is the answer in force at the start of the window
          (:meth:`_initial_prices`; the delay does not apply: that round was usable before the
          window), held to the feed's bounds like any shocked answer;
        * any other point (a shift's or scale's instant, a Monte Carlo or stretched point, the
          point added at ``t0`` for what the shocks make of the price in force then, if they move
          it) at
          ``ts`` after the first block's second ``t0`` takes effect at the start of the first block
          at or after ``ts`` (dropped beyond the window); the last one at or before ``t0`` at the
          start of the first block (as published then, so a delay applies), unless a round point
          follows it there (a round the delay holds back, a round of the first block: the later
          answer); then, if it comes before every held-back round and ``delay_s`` before ``t0``, it
          is the answer in force at the start (usable by then; under ``delay_blocks`` an
          approximation, the block of an instant before the window being unknown), else dropped.

        A feed no shock moves keeps its rounds as they are. A constant price (Aave v2's WETH,
        ``constant:<asset>``) is not a feed and is never shocked. A point a ``resample`` inserted
        that no later shock moved is not published (it repeats the answer in force). Without
        shocks: the rounds unchanged."""
        if not self.scenario.shocks:
            return self.inputs.rounds
        if self._shocked is not None:
            return self._shocked
        from .shocks import apply_shocks, parse_shock

        t0 = self.inputs.blocks.timestamp(self.inputs.from_block)
        paths: dict[str, list[tuple[int, int]]] = {}
        #: (feed, second) -> its (last) round then: a point at that second is that round
        round_at: dict[tuple[str, int], Round] = {}
        #: feed -> the second of its initial round's point (the answer in force at the start)
        initial_at: dict[str, int] = {}
        for f, r in self.inputs.initial_rounds.items():
            if not f.startswith("constant:"):
                initial_at[f] = min(r.block_ts, t0)
                paths[f] = [(initial_at[f], r.answer)]
        for r in self.inputs.rounds:
            if r.feed.startswith("constant:"):
                continue
            pts = paths.setdefault(r.feed, [])
            ts = r.block_ts
            round_at[(r.feed, ts)] = r
            if pts and pts[-1][0] >= ts:
                pts[-1] = (pts[-1][0], r.answer) if pts[-1][0] == ts else pts[-1]
                continue
            pts.append((ts, r.answer))
        for f, ti in list(initial_at.items()):  # a round of the initial's second supersedes it
            if (f, ti) in round_at:
                del initial_at[f]
        # a point carrying the price in force at the window's first second, for what the shocks
        # make of it then (a ramp under way); dropped unless they move it (apply_shocks: carried)
        marked = {f: list(pts) for f, pts in paths.items()}
        marks: dict[str, set[int]] = {}
        for f, pts in marked.items():
            before = [p for p in pts if p[0] <= t0]
            if before and before[-1][0] < t0:
                pts.insert(len(before), (t0, before[-1][1]))
                marks[f] = {t0}
        shocks = [parse_shock(sh, f"shock[{i}]") for i, sh in enumerate(self.scenario.shocks)]
        self._refuse_replaced_shocks(shocks, sorted(f for f, v in paths.items() if v))
        # a point a resample inserted and nothing moved is no answer of the feed: not published
        out = apply_shocks({f: tuple(v) for f, v in marked.items() if v}, shocks, self.scenario.seed,
                           keep_resampled=False, carried=marks)
        self._refuse_idle_shocks(shocks, t0, self.inputs.blocks.timestamp(self.inputs.to_block))
        rounds: list[Round] = []
        for f in sorted(out):
            if out[f] == tuple(paths[f]):  # no shock moved it: its rounds where they were
                rounds += [r for r in self.inputs.rounds if r.feed == f]
                continue
            dec = self._feed_decimals(f)
            initial = self.inputs.initial_rounds.get(f)
            pending: Round | None = None  # the last other point at or before t0
            held = False  # a round the delay holds back met: later points are not usable at t0
            for i, (ts, price) in enumerate(out[f]):
                rd = round_at.get((f, ts))
                if rd is not None:
                    if ts <= t0 and pending is not None:
                        # superseded there; before any held-back round and older than delay_s, it
                        # was usable at the start (an approximation when delay_blocks decides)
                        if (not held and rd.block_number < self.inputs.from_block
                                and pending.block_ts + self.scenario.oracle.delay_s <= t0):
                            self._shocked_start[f] = pending.answer
                        pending = None
                    held = held or rd.block_number < self.inputs.from_block
                    rounds.append(rd if rd.answer == price else Round(
                        f, price, dec, rd.updated_at_ts, rd.block_number, rd.log_index, ts, True))
                elif i == 0 and ts == initial_at.get(f):  # the answer in force at the start
                    if initial is not None and price != initial.answer:
                        self._shocked_start[f] = price
                elif ts <= t0:
                    pending = Round(f, price, dec, ts, self.inputs.from_block, -1, ts, True)
                else:
                    b = self.inputs.blocks.first_at_or_after(ts)
                    if b is not None and b <= self.inputs.to_block:
                        rounds.append(Round(f, price, dec, ts, b, -1, ts, True))
            if pending is not None:
                rounds.append(pending)
        rounds.sort(key=lambda r: (r.block_number, r.log_index, r.updated_at_ts, r.feed))
        self._shocked = rounds
        return rounds

    def _refuse_idle_shocks(self, shocks: Sequence[Any], t0: int, t_end: int) -> None:
        """A shock whose instants all fall after the window's last block (``t_end``; an ``at_ts``
        in milliseconds, the wrong day), or, without an oracle delay (which brings rounds from
        before the window into it), a scale ending before its first block (``t0``), changes
        nothing in the run (unless a later stretch moves it): the stressed run would come out as
        the baseline. A ShockError at the instant's field."""
        from .shocks import Bootstrap, Correlated, Scale, Shift, ShockError, Stretch, StudentT

        delayed = bool(self.scenario.oracle.delay_blocks or self.scenario.oracle.delay_s)
        for i, sh in enumerate(shocks):
            if any(isinstance(later, Stretch) for later in shocks[i + 1:]):
                continue  # a later stretch may move its effect into the window
            first: tuple[str, int] | None = None  # the field and the shock's first effect
            if isinstance(sh, Shift | Correlated):
                first = ("at_ts", sh.at_ts)
            elif isinstance(sh, Scale) and sh.from_ts is not None:
                first = ("from_ts", sh.from_ts)
            elif isinstance(sh, StudentT | Bootstrap):
                first = ("from_ts", sh.from_ts + sh.step_s)  # its first simulated point
            if first is not None and first[1] > t_end:
                raise ShockError(f"shock[{i}].{first[0]}", (
                    f"{getattr(sh, first[0])} puts its first effect after the window's last block "
                    f"(unix second {t_end}): the {sh.kind} shock would change nothing in the run "
                    "(unix seconds, not milliseconds)"))
            if isinstance(sh, Scale) and sh.to_ts is not None and sh.to_ts < t0 and not delayed:
                raise ShockError(f"shock[{i}].to_ts", (
                    f"{sh.to_ts} is before the window's first block (unix second {t0}): the scale "
                    "ends before the window and would change nothing in the run"))

    def _refuse_replaced_shocks(self, shocks: Sequence[Any], feeds: Sequence[str]) -> None:
        """Shocks move the feeds' rounds; oracle models ``reference`` and ``republish`` drop the
        rounds of the feeds they replace (:func:`backtest.oracle.publications`), so a shock on such
        a feed (named, or every feed without ``assets``) would change nothing: a ShockError."""
        s = self.scenario
        if s.reference is None or s.oracle.model == "protocol":
            return
        from .shocks import Correlated, ShockError

        for i, sh in enumerate(shocks):
            named = tuple(sh.betas) if isinstance(sh, Correlated) else sh.assets
            hit = sorted(set(named or feeds) & set(s.reference.pairs))
            if hit:
                where = "betas" if isinstance(sh, Correlated) else "assets"
                raise ShockError(f"shock[{i}].{where}", (
                    f"the {sh.kind} shock moves the rounds of feed {hit[0]}, which oracle model "
                    f"{s.oracle.model!r} replaces by the reference path {s.reference.pairs[hit[0]]}: it "
                    f"would change nothing; name in {where} only feeds the model keeps, or use model "
                    "'protocol'"))

    # ------------------------------------------------------------------ run
    def run(self) -> ReplayOutput:
        if self.mode == "counterfactual" and not self.scenario.overrides.empty:
            apply_overrides(self.adapter, self.state, self.scenario.overrides)
        self._initial_prices()
        lq = self.scenario.liquidator
        if lq.gas_units and lq.gas_price_key not in self.prices:
            raise self.scenario.error(
                "liquidator.gas_price_key", f"{lq.gas_price_key} has no price in the {self.adapter.name} "
                f"market (gas is valued at its oracle price): name the price key of ETH, e.g. WETH's "
                f"address; priced: {sorted(self.prices)}")
        reserves = sorted(getattr(self.state, "reserves", None) or ())
        for table, assets in (("slippage", lq.slippage), ("inventory", lq.inventory)):
            stray = sorted(set(assets) - set(reserves)) if reserves else []
            if stray:  # a mistyped asset: its slippage (or inventory) would silently never apply
                raise self.scenario.error(f"liquidator.{table}.{stray[0]}", f"{stray[0]} is not a reserve "
                                          f"of the {self.adapter.name} market; reserves: {reserves}")
        start = self.inputs.from_block
        self._begin(start)
        for user in sorted(self._all_users()):
            if self._evaluate(user).oracle.liquidatable:
                self.dirty.add(user)  # observed at the end of the first block: its episode starts
        for m in self.metrics:
            try:
                m.on_run_start(self.view)
            except MetricError as e:  # a parameter that does not fit the market (its currency, feeds)
                raise self.scenario.error(f"metrics.{m.name}", str(e)) from None
        cur: int | None = start
        for b, _li, kind, _seq, item in self._stream():
            if b != cur:
                if cur is not None:
                    self._end(cur)
                    if self.progress is not None and self.blocks_visited % 2000 == 0:
                        self.progress(cur, self.inputs.from_block, self.inputs.to_block)
                self._visit_scheduled_before(b)
                self._begin(b)
                self._execute(b)
                cur = b
            if kind == 2:  # the bulk of a historical run: tested first
                assert isinstance(item, ProtocolEvent)
                self._on_event(item)
            elif kind == 1:
                assert isinstance(item, Publication)
                self._on_publication(item)
            elif kind == 0:
                assert isinstance(item, RefPoint)
                self._on_reference(item)
            else:
                assert isinstance(item, SourceChange)
                self._on_source_change(item)
        if cur is not None:
            self._end(cur)
        self._visit_scheduled_before(self.inputs.to_block + 1)
        if self.block.number != self.inputs.to_block and self.inputs.to_block in self.inputs.blocks:
            self._begin(self.inputs.to_block)
            if self.ledger.stale_with_debt(self.block.timestamp):
                self._end(self.inputs.to_block)
        for m in self.metrics:
            m.on_run_end(self.view)
        if self.progress is not None:
            self.progress(self.inputs.to_block, self.inputs.from_block, self.inputs.to_block)
        return self._output()

    def _all_users(self) -> Iterable[str]:
        return self.adapter.users(self.state)

    def _begin(self, b: int) -> None:
        try:
            self.block = self.inputs.blocks.info(b)
        except KeyError:
            raise ReplayError(f"block {b} is not in the replay's blocks (raw.blocks); re-ingest the window") \
                from None
        self.view.block = self.block
        self.capacity_used = 0
        self.price_moved = False
        self.ref_moved = False
        self.priced = False

    def _visit_scheduled_before(self, b: int) -> None:
        """Visit the blocks before ``b`` that have a wake-up or a decided liquidation and no input."""
        while True:
            due = [min(x) for x in (self.wakes, self.pending) if x]
            if not due:
                return
            s = min(due)
            if s >= b or s > self.inputs.to_block:
                return
            nb = self.inputs.blocks.next_at_or_after(s)
            if nb is None or nb > self.inputs.to_block:
                self.wakes.pop(s, None)
                self.pending.pop(s, None)
                continue
            if nb != s:  # no such block (gap): it happens in the next one
                self.wakes.setdefault(nb, set()).update(self.wakes.pop(s, set()))
                self.pending.setdefault(nb, []).extend(self.pending.pop(s, []))
                continue
            self._begin(s)
            self._execute(s)
            self._end(s)

    # ------------------------------------------------------------------ inputs
    def _on_reference(self, p: RefPoint) -> None:
        self.prices_consumed += 1
        self.pair_last[p.pair] = p.price
        for feed in self.pair_feeds.get(p.pair, ()):
            dec = self._feed_decimals(feed)
            ans = reference_answer(p.price, dec)
            keys = self.feed_keys.get(feed, ())
            prev = self.ref_prices.get(keys[0]) if keys else None
            for k in keys:
                old = self.ref_prices.get(k, self.prices.get(k))
                self.ref_prices[k] = ans
                if old != ans:
                    self.ref_moved = True
                    if self.track_reference:
                        self.ref_dirty.update(self.ledger.crossed_ref(k, ans))
                        self.ref_dirty.update(self.ledger.ref_hot.on(k))
            upd = PriceUpdate("reference", p.pair, keys, ans, prev, ans, dec, True, p.block_number, p.ts,
                              self.block.number, -1, self.block.timestamp, p.ts, reference_of=feed)
            for hook in self._hooks_price:
                hook(self.view, upd)

    def _on_publication(self, p: Publication) -> None:
        """An oracle answer takes effect: the prices of the feed's keys become ``p.answer``.

        An answer ``<= 0`` (like one the oracle model did not accept) leaves the previous price
        in force: the keys keep their last price and nothing is re-evaluated for it; the metrics
        still see the publication (``PriceUpdate.accepted`` False, ``price`` the price kept, 0 if
        the key never had one). This is not what Aave's ``AaveOracle.getAssetPrice`` does: for a
        non-positive answer it calls its fallback oracle, which on mainnet is usually unset or
        reverts, so on chain the actions that read that price (liquidations, borrows, withdrawals
        of an account using the asset) would revert until a positive answer lands; the replay
        models neither the fallback nor those reverts."""
        self.prices_consumed += 1
        keys = self.feed_keys.get(p.feed, ())
        prev = self.prices.get(keys[0]) if keys else None
        if p.accepted and p.answer > 0:
            self.priced = True
            self.feed_answer[p.feed] = p.answer
            for k in keys:
                old = self.prices.get(k)
                self.prices[k] = p.answer
                if old != p.answer:
                    self.price_moved = True
                    self.dirty.update(self.ledger.crossed(k, p.answer))
                    self.dirty.update(self.ledger.hot.on(k))
                    if self.track_reference and k not in self.ref_prices:  # its reference is the oracle
                        self.ref_dirty.update(self.ledger.crossed_ref(k, p.answer))
                        self.ref_dirty.update(self.ledger.ref_hot.on(k))
        price = p.answer if p.accepted and p.answer > 0 else (prev if prev is not None else 0)
        upd = PriceUpdate("oracle", p.feed, keys, price, prev, p.answer, p.decimals,
                          p.accepted and p.answer > 0, p.happened_block, p.happened_ts, self.block.number,
                          p.log_index, self.block.timestamp, p.updated_at_ts)
        for hook in self._hooks_price:
            hook(self.view, upd)

    def _on_source_change(self, c: SourceChange) -> None:
        """``c.key`` now reads ``c.feed``: its price becomes that feed's latest answer at once.
        Except a key the oracle prices at a constant (Aave v2's WETH, ``constant:<asset>``): its
        ``getAssetPrice`` returns 1 ether before looking at the source, so the switch changes
        nothing."""
        if any(f.startswith("constant:") and c.key in keys for f, keys in self.feed_keys.items()):
            return
        answer = self.feed_answer.get(c.feed)
        if answer is None:
            raise ReplayError(f"block {c.block_number} log {c.log_index}: the oracle source of {c.key} "
                              f"becomes {c.feed}, which has no answer before that log")
        for f in sorted(self.feed_keys):
            if c.key in self.feed_keys[f]:
                self.feed_keys[f] = tuple(k for k in self.feed_keys[f] if k != c.key)
        self.feed_keys[c.feed] = tuple(sorted((*self.feed_keys.get(c.feed, ()), c.key)))
        prev = self.prices.get(c.key)
        self.prices[c.key] = answer
        self.priced = True
        if prev != answer:
            self.price_moved = True
            self.dirty.update(self.ledger.crossed(c.key, answer))
            self.dirty.update(self.ledger.hot.on(c.key))
        dec = self._feed_decimals(c.feed)
        pair = self.scenario.reference.pairs.get(c.feed) if self.scenario.reference is not None else None
        old_ref = self.ref_prices.get(c.key, prev)
        if pair is not None and pair in self.pair_last:
            self.ref_prices[c.key] = reference_answer(self.pair_last[pair], dec)
        else:
            self.ref_prices.pop(c.key, None)
        new_ref = self.ref_prices.get(c.key, answer)
        if new_ref != old_ref:
            self.ref_moved = True
            if self.track_reference:
                self.ref_dirty.update(self.ledger.crossed_ref(c.key, new_ref))
                self.ref_dirty.update(self.ledger.ref_hot.on(c.key))
        upd = PriceUpdate("oracle", c.feed, (c.key,), answer, prev, answer, dec, True, c.block_number,
                          self.block.timestamp, self.block.number, c.log_index, self.block.timestamp,
                          self.block.timestamp, source_change=True)
        for hook in self._hooks_price:
            hook(self.view, upd)

    def _predict_observed(self, liq: ProtocolEvent) -> None:
        """``adapter.liquidate`` with an observed LiquidationCall's own arguments, on the state just
        before its transaction's first log (or its previous LiquidationCall in the same transaction):
        the logs the call emits before ``LiquidationCall`` (index updates, burns, transfers) must
        not be in the state it is predicted on. The account's health there too (what the
        liquidation changed: an answer earlier in the block is in it, unlike in its last
        end-of-block evaluation).

        The event reports the debt actually repaid, not the call's ``debtToCover``: when that
        amount does not reproduce the event's (reverts, or seizes another amount: a call that got
        the whole collateral, whose debt -> collateral conversion rounds down) and
        ``type(uint256).max``, the usual argument, reproduces it exactly, the prediction is the
        latter's."""
        key = (liq.ref.block_number, liq.ref.log_index)
        c = self._calls.get(key)
        assert c is not None  # _with_triggers only keeps liquidation events
        try:
            ts = liq.ref.block_timestamp
            out = self.adapter.liquidate(self.state, c.user, c.collateral, c.debt, c.debt_to_cover,
                                         self.prices, ts, c.receive_a_token, liquidator=c.liquidator)
            event = (c.debt_repaid, c.collateral_seized)
            missed = not out.ok or (out.debt_repaid, out.collateral_seized) != event
            if missed and c.debt_to_cover != MAX_UINT256:
                alt = self.adapter.liquidate(self.state, c.user, c.collateral, c.debt, MAX_UINT256,
                                             self.prices, ts, c.receive_a_token, liquidator=c.liquidator)
                if alt.ok and (alt.debt_repaid, alt.collateral_seized) == event:
                    out = alt
            self._predictions[key] = out
            self._health_before[key] = self.adapter.account(self.state, c.user, self.prices, ts)
        except ProtocolError as ex:
            raise ReplayError(f"{liq.ref}: predicting the observed LiquidationCall: {ex}") from ex

    def _on_event(self, e: ProtocolEvent) -> None:
        key = (e.ref.block_number, e.ref.log_index)
        if self._pre_tx:
            trigger = self._pre_tx.pop(key, None)
            if trigger is not None:
                self._predict_observed(trigger)
        observed = self._calls.pop(key, None) if self._calls else None
        predicted = self._predictions.pop(key, None) if observed is not None else None
        health_before = self._health_before.pop(key, None) if observed is not None else None
        try:
            self.adapter.apply(self.state, e)
        except ProtocolError as ex:
            raise ReplayError(f"{e.ref}: {e.name} from {e.address}: {ex}") from ex
        self.events_applied += 1
        if e.name == "DeficitCreated":
            d = self._tx_deficits.setdefault((e.ref.tx_hash, str(e.args["user"])), {})
            asset = str(e.args["debt_asset"])
            d[asset] = d.get(asset, 0) + int(e.args["amount_created"])  # type: ignore[call-overload]
        names = self._address_args.get(e.signature)
        if names is None:
            names = self._address_args[e.signature] = _address_arguments(e)
        args = e.args
        touched = {v for n in names if (v := str(args[n])) != ZERO_ADDRESS} if names != ("*",) else \
            {v for v in args.values() if isinstance(v, str) and len(v) == _ADDRESS_LEN and v.startswith("0x")
             and v != ZERO_ADDRESS}
        if e.role.endswith("configurator"):
            # an e-mode change reaches accounts through their category, not the addresses in the
            # event: borrowers priced by a category's price source (v3.0-3.1) are exposed to that
            # key only, so an asset leaving the category would miss them. Rare events: all accounts.
            exposed = None if "EMode" in e.name else self.ledger.exposed_to(touched)
            targets = exposed or self.ledger.evals  # nobody exposed: a market-wide change
            self.dirty.update(targets)
            self.moved.update(targets)
        else:
            # only addresses that are (or were) accounts: one with no state in the market and no
            # previous evaluation (a reserve, a token, a contract) has zero health before and after
            accounts = getattr(self.state, "users", None)
            evals = self.ledger.evals
            self.dirty.update(touched if accounts is None else
                              [t for t in touched if t in accounts or t in evals])
            self.moved.update(touched)
            if self.predicted_open:
                self.predicted_open.difference_update(touched)
        for hook in self._hooks_event:
            hook(self.view, e)
        if observed is not None and predicted is not None:
            user, coll, debt = observed.user, observed.collateral, observed.debt
            repaid, seized = observed.debt_repaid, observed.collateral_seized
            # the fee is not in the event: the prediction's, exactly 0 for a protocol without
            # one (Aave v2), else unknown when the prediction reverted (see Liquidation)
            fee = predicted.protocol_fee if predicted.ok else (
                None if self.adapter.has_liquidation_protocol_fee else 0)
            if health_before is not None and health_before.liquidatable:
                # liquidatable just before it (a backrun of an answer in this block is seen here
                # first, not at an end-of-block evaluation): since this block at the latest
                self.liquidatable_since.setdefault(user, (e.ref.block_number, e.ref.block_timestamp))
            since = self.liquidatable_since.get(user)
            # the deficit it created, as the chain booked it (DeficitCreated of this transaction);
            # a protocol that books none (Aave v2, v3.0-3.2) leaves that debt on the account: as in
            # a simulated liquidation's outcome, read on the state after it (not the prediction's:
            # replayed with the event's debtToCover, a whole-collateral seizure can leave dust)
            bad = dict(sorted(self._tx_deficits.pop((e.ref.tx_hash, user), {}).items()))
            if not getattr(getattr(self.state, "rules", None), "deficit_accounting", False):
                bad = self._left_without_collateral(user, e.ref.block_timestamp)
            liq = Liquidation(
                observed=True, committed=True, block_number=e.ref.block_number, log_index=e.ref.log_index,
                tx_hash=e.ref.tx_hash, timestamp=e.ref.block_timestamp, user=user,
                liquidator=observed.liquidator,
                collateral_asset=coll, debt_asset=debt, debt_to_cover=repaid, debt_repaid=repaid,
                collateral_seized=seized, protocol_fee=fee, receive_a_token=observed.receive_a_token,
                debt_repaid_value=self.view.value(debt, repaid),
                collateral_seized_value=self.view.value(coll, seized),
                protocol_fee_value=self.view.value(coll, fee) if fee is not None else None,
                bad_debt=MappingProxyType(bad),
                bad_debt_value=sum(self.view.value(a, v) for a, v in bad.items()),
                liquidatable_since_block=since[0] if since else None,
                liquidatable_since_ts=since[1] if since else None, predicted=predicted,
                health_before_wad=health_before.health_factor_wad if health_before is not None else None)
            self._record_liquidation(liq)

    def _left_without_collateral(self, user: str, ts: int) -> dict[str, int]:
        """The account's debt per asset when no collateral that counts is left (else nothing)."""
        try:
            if self.adapter.account(self.state, user, self.prices, ts).collateral_value:
                return {}
            return {p.asset: p.debt for p in sorted(self.adapter.positions(self.state, user, ts),
                                                     key=lambda p: p.asset) if p.debt}
        except ProtocolError as ex:
            raise ReplayError(f"block {self.block.number}: evaluating account {user}: {ex}") from ex

    def _record_liquidation(self, liq: Liquidation) -> None:
        self.liquidations.append(liq)
        for hook in self._hooks_liquidation:
            hook(self.view, liq)

    # ------------------------------------------------------------------ block end
    def _evaluate(self, user: str) -> AccountEval:
        self.evaluations += 1
        ts = self.block.timestamp
        prices = self.prices
        try:
            h = self.adapter.account(self.state, user, prices, ts)
            ref: AccountHealth | None = None
            if self.has_reference and h.debt_value:
                ref = self.adapter.account(self.state, user, ChainMap(self.ref_prices, self.prices), ts)
        except ProtocolError as ex:
            raise ReplayError(f"block {self.block.number}: evaluating account {user}: {ex}") from ex
        ev = AccountEval(user, h, ref)
        if h.liquidatable:
            if user not in self.liquidatable_since:
                self.liquidatable_since[user] = (self.block.number, ts)
        else:
            self.liquidatable_since.pop(user, None)
        moved = self.moved
        changed = user in moved
        if changed:
            moved.discard(user)
        self.ledger.record(ev, self.state, prices, ts,
                           ChainMap(self.ref_prices, prices) if self.track_reference else None,
                           positions_changed=changed)
        return ev

    def _end(self, b: int) -> None:
        self.blocks_visited += 1
        ts = self.block.timestamp
        ledger = self.ledger
        dirty = self.dirty
        expired = ledger.expired(ts)
        if self.price_moved:  # hot accounts without exposures (the moved keys' ones: on the move)
            dirty.update(ledger.hot.any)
        if self.priced or (self.ref_moved and self.trade is not None):
            # the liquidator reads every liquidatable account when an answer lands — except those
            # it cannot act on: an open prediction (historical mode) or nothing to seize. Trading
            # at the reference prices, it quotes those again when a reference price moves (one it
            # left for not paying at market may pay now), and only those: what else it observes
            # (interest pushing an account under) waits for an answer or an event, as at the oracle
            evals = ledger.evals
            dirty.update(u for u in self.episode if u not in self.predicted_open
                         and (u not in evals or evals[u].oracle.collateral_value))
            if self.priced:
                dirty.update(expired)
        woken = self.wakes.pop(b, None)
        if woken:
            dirty.update(woken)
        # what the liquidator observes at the end of b: accounts an event touched, accounts an
        # oracle answer may have moved (it re-reads every account when an answer lands) and its
        # wake-ups. Accounts re-evaluated only because their interest bound expired or the
        # reference price moved are evaluated for the metrics (exact bad debt, hidden insolvency)
        # but not quoted: a liquidator deciding at the oracle prices does not watch an off-chain
        # reference (one trading at it, [liquidator] prices = "reference", quotes the accounts
        # already in an episode again when it moves, above), and one that only reacts to answers
        # and events does not see interest alone push an account under (the bundled sample's bots
        # do exactly this; ingest/sample_bots.py)
        observed = frozenset(dirty)
        if expired:
            dirty.update(expired)
        if self.ref_dirty:
            dirty.update(self.ref_dirty)
            self.ref_dirty.clear()
        if self.price_moved or self.ref_moved:
            dirty.update(ledger.ref_hot.any)
        if b == self.inputs.to_block:  # the window's end: accounts with debt evaluated at its last block
            dirty.update(ledger.stale_with_debt(ts))
        evaluated: tuple[AccountEval, ...] = ()
        if dirty:
            users = sorted(dirty)
            dirty.clear()
            evaluate = self._evaluate
            evaluated = tuple([evaluate(u) for u in users])
            track = self._track
            episode, predicted_open = self.episode, self.predicted_open
            due = []
            for u, ev in zip(users, evaluated, strict=True):
                if u in observed:
                    if ev.oracle.liquidatable:
                        if track(u, True, b):
                            due.append(u)
                    else:  # _track's not-liquidatable case, inline (most observations)
                        episode.pop(u, None)
                        predicted_open.discard(u)
            if due:
                self._quote(b, due)
        if self._hooks_block_end:
            end = BlockEnd(self.block, evaluated)
            for hook in self._hooks_block_end:
                hook(self.view, end)

    def _track(self, user: str, liquidatable: bool, b: int) -> bool:
        """Update the account's episode after an observation at the end of ``b``; True when it is
        due (a liquidation may land in ``b + 1``), else schedule its wake-up if it needs one."""
        if not liquidatable:
            self.episode.pop(user, None)
            self.predicted_open.discard(user)
            return False
        start = self.episode.setdefault(user, (b, self.block.timestamp))[0]
        if b + 1 >= start + self.delay:
            return True
        self.wakes.setdefault(start + self.delay - 1, set()).add(user)
        return False

    def _quote(self, b: int, users: Sequence[str]) -> None:
        """Quote the due accounts on the state at the end of ``b``; the paying ones land at the top
        of the next block, in (profit desc, user asc) order."""
        nxt = self.inputs.blocks.next_at_or_after(b + 1)
        if not users or nxt is None or nxt > self.inputs.to_block:
            return
        base_fee = self.inputs.blocks.info(nxt).base_fee_wei
        out: list[tuple[str, Decision, int]] = []
        for user in users:
            if user in self.predicted_open:
                continue
            try:
                d = self.liquidator.decide(self.adapter, self.state, user, self.prices, self.block.timestamp,
                                           base_fee, self.view.value, trade=self.trade)
            except ProtocolError as ex:
                raise ReplayError(f"block {b}: liquidator model on {user}: {ex}") from ex
            if d is not None:
                out.append((user, d, b))
        out.sort(key=lambda t: (-t[1].profit_value, t[0]))
        if out:  # nothing decided: nothing to visit the next block for
            self.pending.setdefault(nxt, []).extend(out)

    def _execute(self, b: int) -> None:
        """Run the liquidations decided for block ``b`` (top of the block, before its inputs):
        committed in counterfactual mode, recorded as predictions in historical mode."""
        self.liquidator.sold.clear()  # each block's sales meet a pool arbitrage has restored
        todo = self.pending.pop(b, None)
        if not todo:
            return
        cap = self.scenario.liquidator.capacity_per_block
        commit = self.mode == "counterfactual"
        ts = self.block.timestamp
        for user, decision, seen in todo:
            d: Decision | None = decision
            for _ in range(MAX_BUNDLE_LIQUIDATIONS):
                if d is None:
                    break
                if cap and self.capacity_used >= cap:
                    # left out by the block's capacity: observed at its end (still liquidatable,
                    # it is quoted again for the next block), not forgotten until its next input
                    self.dirty.add(user)
                    break
                try:
                    d = self.liquidator.execute(self.adapter, self.state, d, self.prices, ts, self.view.value,
                                                self.trade)
                    if d is not None and d.profit_value < self.liquidator.min_profit:
                        # no longer pays where it lands (the block's earlier sales of its collateral
                        # took the pool's depth): sized again on the landing state, or left
                        d = self.liquidator.decide(self.adapter, self.state, user, self.prices, ts,
                                                   self.block.base_fee_wei, self.view.value,
                                                   self.liquidator.sold, self.trade)
                        if d is not None:
                            d = self.liquidator.execute(self.adapter, self.state, d, self.prices, ts,
                                                        self.view.value, self.trade)
                except ProtocolError as ex:
                    raise ReplayError(f"block {b}: liquidator model on {user}: {ex}") from ex
                if d is None:
                    # not executed here: observed at the block's end (still liquidatable, it is
                    # quoted again for the next block), not forgotten until its next input
                    self.dirty.add(user)
                    break
                self.capacity_used += 1
                self.liquidator.landed(d)
                liq = self._simulated(user, d, commit, seen)
                if not commit:
                    self._record_liquidation(liq)
                    self.predicted_open.add(user)
                    break
                self.adapter.commit(self.state, d.outcome)
                self.liquidator.spend(d)
                self._record_liquidation(liq)
                self.dirty.add(user)
                self.moved.add(user)
                if not self.scenario.liquidator.repeat_in_block:
                    break
                if not self._evaluate(user).oracle.liquidatable:
                    break
                try:
                    d = self.liquidator.decide(self.adapter, self.state, user, self.prices, ts,
                                               self.block.base_fee_wei, self.view.value, self.liquidator.sold,
                                               self.trade)
                except ProtocolError as ex:
                    raise ReplayError(f"block {b}: liquidator model on {user}: {ex}") from ex
                seen = b

    def _simulated(self, user: str, d: Decision, committed: bool, seen: int) -> Liquidation:
        o = d.outcome
        since = self.liquidatable_since.get(user)
        decided = min(seen, self.block.number - self.delay)
        return Liquidation(
            observed=False, committed=committed, block_number=self.block.number, log_index=None, tx_hash=None,
            timestamp=self.block.timestamp, user=user, liquidator=ZERO_ADDRESS,
            collateral_asset=o.collateral_asset,
            debt_asset=o.debt_asset, debt_to_cover=d.debt_to_cover, debt_repaid=o.debt_repaid,
            collateral_seized=o.collateral_seized, protocol_fee=o.protocol_fee, receive_a_token=False,
            debt_repaid_value=d.debt_repaid_value, collateral_seized_value=d.collateral_seized_value,
            protocol_fee_value=d.protocol_fee_value, bad_debt=o.bad_debt, bad_debt_value=d.bad_debt_value,
            liquidatable_since_block=since[0] if since else None,
            liquidatable_since_ts=since[1] if since else None,
            decided_block=decided, gas_cost_value=d.gas_cost_value, slippage_value=d.slippage_value,
            flash_fee_value=d.flash_fee_value, profit_value=d.profit_value, outcome=o)

    # ------------------------------------------------------------------ output
    def _output(self) -> ReplayOutput:
        s = self.scenario
        rid, chain = self.run_id, self.inputs.chain_id
        tables: dict[Table, Sequence[tuple[Any, ...]]] = {}
        tables[LIQUIDATIONS] = [liquidation_row(rid, chain, liq, self.unit, i)
                                for i, liq in enumerate(self.liquidations)]
        summ: dict[str, dict[str, Any]] = {}
        srows: list[tuple[Any, ...]] = []
        for m in self.metrics:
            mrows = m.rows()
            for t in m.tables:
                rows = mrows.get(t.fqn, ())
                tables[t] = rows if isinstance(rows, RowSink) else list(rows)  # a sink is not copied
            summ[m.name] = _in_base_currency(dict(m.summary()), self.adapter.base_currency)
            srows += summary_rows(rid, chain, self.inputs.to_block, m.name, summ[m.name])
        tables[SUMMARIES] = srows
        hashes = self.inputs.blocks.hashes
        record = RunRecord(rid, s.name, s.sha256(), _scenario_path(s), s.mode, chain,
                           self.adapter.base_currency, _decimals(self.adapter.base_unit),
                           self.inputs.from_block, self.inputs.to_block, hashes.get(self.inputs.from_block),
                           hashes.get(self.inputs.to_block), tuple(sorted(self.inputs.data_sources)),
                           tuple(m.name for m in self.metrics), self.code_version, s.canonical_json(),
                           self.events_applied, self.prices_consumed, self.blocks_visited, self.evaluations)
        tables[RUNS] = [record.row()]
        return ReplayOutput(rid, record, tables, summ, self.liquidations, self.state)


def _decimals(unit: int) -> int:
    """``d`` with ``unit == 10**d`` (an adapter's ``base_unit``); raises if there is none."""
    d = len(str(unit)) - 1
    if unit != 10**d:
        raise ValueError(f"base_unit {unit} is not a power of ten")
    return d


def _scenario_path(s: Scenario) -> str | None:
    """Where the scenario was read from, as an absolute path (an auditor reading ``bt.runs`` later
    does not know the directory the command ran in); None for a scenario built in code."""
    if not s.text:
        return None
    p = Path(s.origin)
    return str(p.resolve()) if p.is_file() else s.origin


def _in_base_currency(summary: dict[str, Any], currency: str) -> dict[str, Any]:
    """A metric's summary with its unit named honestly (:func:`backtest.metrics.base.currency_name`:
    ``end_unrealized_oracle_eth`` in an Aave v2 run), plus ``base_currency``. (Table columns have
    one declared name for every run, so their floats are ``*_base_f64``, in ``bt.runs.base_currency``.)"""
    out = {currency_name(k, currency): v for k, v in summary.items()}
    out["base_currency"] = currency
    return out


_NO_TX = object()


def _with_triggers(adapter: ProtocolAdapter[Any], events: Iterable[ProtocolEvent],
                   out: dict[tuple[int, int], ProtocolEvent],
                   calls: dict[tuple[int, int], LiquidationCall]
                   ) -> Iterator[tuple[int, int, int, int, ProtocolEvent]]:
    """``events`` again as stream items ``(block, log_index, 2, 0, event)``, one transaction (a run
    of consecutive events with the same block and transaction hash) at a time, after adding its
    triggers to ``out``: for each LiquidationCall, the (block, log index) of the event before which
    it is predicted — its transaction's first event, or the first one after the transaction's
    previous LiquidationCall. ``calls``: (block, log index) -> ``adapter.liquidation_call(event)``
    of each LiquidationCall (asked once per event)."""
    liquidation_call = adapter.liquidation_call
    group: list[tuple[int, int, int, int, ProtocolEvent]] = []
    kb: int = -1
    ktx: object = _NO_TX
    first: tuple[int, int, int, int, ProtocolEvent] | None = None
    for e in events:
        r = e.ref
        bn, tx = r.block_number, r.tx_hash
        if tx != ktx or bn != kb:
            if group:
                yield from group
                group = []
            kb, ktx = bn, tx
            first = None
        item = (bn, r.log_index, 2, 0, e)
        if first is None:
            first = item
        group.append(item)
        c = liquidation_call(e)
        if c is not None:
            out[(first[0], first[1])] = e
            calls[(bn, item[1])] = c
            first = None
    if group:
        yield from group


def _overriding(metrics: Sequence[Metric], hook: str) -> list[Callable[..., None]]:
    """The bound ``hook`` of each metric whose class overrides the base class's no-op."""
    base = getattr(Metric, hook)
    return [getattr(m, hook) for m in metrics if getattr(type(m), hook) is not base]


def _address_arguments(e: ProtocolEvent) -> tuple[str, ...]:
    """The names of ``e``'s ``address`` parameters, from its signature (``args`` follows the
    parameters' order): the accounts an event of that signature can touch. ``("*",)`` when the
    signature has tuple parameters or does not match ``args``: every address-shaped value then."""
    inner = e.signature[e.signature.find("(") + 1:-1]
    types = [t.strip() for t in inner.split(",")] if inner else []
    names = list(e.args)
    if "(" in inner or len(types) != len(names):
        return ("*",)
    return tuple(n for n, t in zip(names, types, strict=True) if t == "address")


def _base_unit(adapter: ProtocolAdapter[Any]) -> int:
    """One unit of the adapter's base currency (Aave v3: 10**8 USD; v2: 10**18 ETH wei)."""
    unit = getattr(adapter, "base_unit", None)
    if not isinstance(unit, int) or unit <= 0:
        raise ReplayError(f"adapter {adapter.name!r} does not declare base_unit (protocols.base)")
    return unit
