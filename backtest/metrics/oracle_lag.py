"""Oracle-lag exposure per feed: the protocol's oracle against the reference price path.

For every feed that has a reference pair (scenario ``[reference.pairs]``):

* **deviation** ``|oracle − reference| × 10⁴ / reference`` (bps) between the price the protocol
  reads and the reference, piecewise constant between price updates (both change only at
  updates). ``max`` is over every instant, i.e. every position in the replay's order (block, log
  index) once all its updates are in: a reference point and an answer taking effect at the start of
  the same block (model ``reference``, ``republish``) are one instant, while a round later in the
  block is another (the block's earlier logs read the old answer); ``mean`` is time-weighted
  (seconds of block time) over the part of the window where both prices are known
  (``covered_s``).
* **time beyond the deviation threshold** (seconds): time during which the feed "should" have
  published and had not yet by its own rule, i.e. the reference was strictly more than the
  threshold away from the answer on chain *relative to that answer* — Chainlink OCR's trigger
  (``deviates``: ``|new − old| / |old| > threshold``, ``old`` the latest answer on chain), exact in
  integers. Not the deviation above (relative to the reference): answer 2,000, reference
  1,990.02 is 49.9 bps of the answer (no trigger at 50 bps) but 50.15 bps of the reference.
  The threshold: parameter ``deviation_bps`` (an integer for every feed, or a table feed → bps),
  else the scenario's ``oracle.deviation_bps`` when the oracle model is ``republish``, else the
  feed's own published threshold as the deployments declared it at ingest (``raw.oracle_feeds``:
  e.g. 0.5 % for ETH/USD, 0.25 % for USDC/USD on Ethereum mainnet), else 50 bps. Which one was
  used is in ``bt.oracle_lag_feeds.deviation_threshold_from`` (parameter, republish, deployment,
  default), so a figure judged against a guess says so.
* **staleness** against the heartbeat: seconds since the round the protocol uses was updated
  (``now − updatedAt``; a delayed answer is as old as its round). ``max_staleness_s`` over the
  window and ``beyond_heartbeat_s``: time during which staleness exceeded ``heartbeat_s``
  (parameter, integer or table, else the scenario's republish heartbeat, else the feed's declared
  heartbeat, e.g. 24 h for USDC/USD, else 3600 s; ``heartbeat_from`` says which). A
  rejected answer (outside min/max bounds) is not an update. The round in force at the window
  start is as old as its ``updatedAt`` (the view's ``start_updated_at``: the feed's last round
  before the window); only where the view does not give it is its age counted from the window
  start (a lower bound).
* **hidden insolvency**: debt that was liquidatable at the reference price but not at the oracle
  price the protocol read (``AccountEval.reference.liquidatable and not .oracle.liquidatable``),
  as value × duration: the account's debt value at reference prices × the seconds until its next
  exact evaluation (an account not re-evaluated keeps its last evaluation — the at-risk semantics
  of the replay) or the window end, in base currency units × seconds (``*_value_s``; Aave v3:
  USD 1e8 · s) and ``*_usd_s`` floats. Per account (``bt.hidden_insolvency``, one row per
  interval) and per feed (every feed with a reference that prices a key the account's
  liquidation point moves with: its debt and the collateral its health factor counts — enabled,
  with a threshold — under the key the protocol reads, an e-mode category's price source where
  it has one; the adapter's ``exposures``, else its positions that count. A supply not used as
  collateral is no exposure: its price cannot hide an insolvency. An account exposed to two such
  feeds counts for both, so per-feed figures may sum to more than the total).

Time is block time: an instant is the timestamp of the block an update took effect in; the
window ends at the timestamp of its last block.

**Bad debt attributable to lag** is not measured inside one run: it is the difference of two
counterfactual runs, see :func:`backtest.attribution.lag_attribution`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ingest.schema import Column, Table, register_table

from ..oracle import FeedRules
from .base import BlockEnd, Metric, MetricError, PriceUpdate, SummaryValue, View

__all__ = ["OracleLag", "FEEDS", "HIDDEN", "DEFAULT_DEVIATION_BPS", "DEFAULT_HEARTBEAT_S"]

#: Chainlink ETH/USD (Ethereum mainnet): deviation threshold 0.5 %, heartbeat 1 h
DEFAULT_DEVIATION_BPS = 50
DEFAULT_HEARTBEAT_S = 3600

FEEDS = register_table(Table(
    "bt", "oracle_lag_feeds", "Oracle-lag exposure per feed over the window: deviation from the reference "
    "price, time beyond the deviation threshold, staleness against the heartbeat, hidden insolvency.",
    (
        Column("run_id", "VARCHAR", "backtest run (bt.runs)", False),
        Column("chain_id", "UBIGINT", "chain replayed", False),
        Column("block_number", "UBIGINT", "last block of the window (the figures cover the window)", False),
        Column("feed", "VARCHAR", "oracle feed (proxy address)", False),
        Column("pair", "VARCHAR", "reference pair, e.g. ETH/USD", False),
        Column("price_key", "VARCHAR", "price key compared (the feed's first key, e.g. the asset)", False),
        Column("deviation_threshold_bps", "UINTEGER", "deviation threshold used, bps", False),
        Column("heartbeat_s", "UBIGINT", "heartbeat used, seconds", False),
        Column("deviation_threshold_from", "VARCHAR", "where the threshold came from: parameter (the "
               "metric's), republish (the oracle model's), deployment (the feed's declared rule, "
               "raw.oracle_feeds) or default (50 bps: nothing declared)", False),
        Column("heartbeat_from", "VARCHAR", "where the heartbeat came from (the same sources; default "
               "3600 s)", False),
        Column("updates", "UBIGINT", "oracle answers accepted in the window", False),
        Column("rejected", "UBIGINT", "oracle answers rejected (outside min/max answer)", False),
        Column("covered_s", "UBIGINT", "seconds with both an oracle and a reference price", False),
        Column("max_deviation_bps_f64", "DOUBLE", "max |oracle - reference| / reference, bps (NULL: never "
               "covered)"),
        Column("max_deviation_block", "UBIGINT", "block where the max took effect"),
        Column("mean_deviation_bps_f64", "DOUBLE", "time-weighted mean deviation over covered_s, bps"),
        Column("beyond_threshold_s", "UBIGINT", "seconds with |reference - oracle| / oracle > threshold: "
               "the feed's trigger (Chainlink OCR: from the answer on chain) met and no new answer yet",
               False),
        Column("max_staleness_s", "UBIGINT", "max seconds since the round in force was updated", False),
        Column("beyond_heartbeat_s", "UBIGINT", "seconds with staleness > heartbeat", False),
        Column("hidden_insolvency_value_s", "HUGEINT", "debt liquidatable at the reference but not at the "
               "oracle price x seconds, base currency units x s, accounts exposed to this feed", False),
        Column("hidden_insolvency_base_s_f64", "DOUBLE", "the same in "
               "whole base currency (bt.runs.base_currency) x s",
               False),
        Column("hidden_accounts", "UBIGINT", "accounts that were hidden-insolvent at some point", False),
    ),
    "backtest.metrics.oracle_lag", ("run_id", "feed")))

HIDDEN = register_table(Table(
    "bt", "hidden_insolvency", "Intervals during which an account was liquidatable at the reference "
    "price but not at the oracle price (from one exact evaluation to the next, or the window end).",
    (
        Column("run_id", "VARCHAR", "backtest run (bt.runs)", False),
        Column("chain_id", "UBIGINT", "chain replayed", False),
        Column("block_number", "UBIGINT", "block of the evaluation that opened the interval", False),
        Column("block_ts", "UBIGINT", "its timestamp, unix seconds", False),
        Column("user", "VARCHAR", "account", False),
        Column("end_block", "UBIGINT", "block of the next evaluation (or the window's last block)", False),
        Column("duration_s", "UBIGINT", "seconds until then", False),
        Column("debt_reference_value", "HUGEINT", "account debt at reference prices, base currency units",
               False),
        Column("health_factor_oracle_wad", "UHUGEINT", "HF at oracle prices (>= 1e18), WAD", False),
        Column("health_factor_reference_wad", "UHUGEINT", "HF at reference prices (< 1e18), WAD", False),
        Column("value_s", "HUGEINT", "debt_reference_value x duration_s", False),
        Column("feeds", "VARCHAR[]", "feeds with a reference that price a key its liquidation point moves "
               "with (its debt, the collateral its health factor counts; not a supply off collateral)",
               False),
        Column("base_s_f64", "DOUBLE", "derived: value_s in "
               "whole base currency (bt.runs.base_currency) x s", False),
    ),
    "backtest.metrics.oracle_lag", ("run_id", "user", "block_number")))


def _per_feed(params: Mapping[str, Any], name: str) -> tuple[int | None, dict[str, int]]:
    """A parameter given as one integer (all feeds) or a table feed -> integer."""
    v = params.get(name)
    if v is None:
        return None, {}
    if isinstance(v, int) and not isinstance(v, bool):
        if v < 0:
            raise MetricError(f"metric 'oracle_lag': {name} must be >= 0, got {v}")
        return v, {}
    if isinstance(v, Mapping):
        out: dict[str, int] = {}
        for k, x in v.items():
            if not isinstance(x, int) or isinstance(x, bool) or x < 0:
                raise MetricError(f"metric 'oracle_lag': {name}.{k} must be an integer >= 0, got {x!r}")
            if str(k).lower() in out:  # checksummed and lower case: two TOML keys, one feed
                raise MetricError(f"metric 'oracle_lag': {name}.{k}: feed {str(k).lower()} is given twice "
                                  "(addresses are not case-sensitive); give it once")
            out[str(k).lower()] = x
        return None, out
    raise MetricError(f"metric 'oracle_lag': {name} must be an integer or a table feed -> integer, got {v!r}")


def _declared(view: View, feed: str) -> FeedRules:
    """The feed's rules as declared at ingest (``view.feed_rules``; none when the view has none)."""
    rules: Mapping[str, FeedRules] = getattr(view, "feed_rules", None) or {}
    return rules.get(feed, NO_RULES)


def _rule(parameter: int | None, republish: int | None, declared: int | None,
          default: int) -> tuple[int, str]:
    """The first of the metric's parameter, the republish model's setting and the feed's declared
    rule that is set, with its source's name; else ``default``."""
    for v, source in ((parameter, "parameter"), (republish, "republish"), (declared, "deployment")):
        if v is not None:
            return int(v), source
    return default, "default"


NO_RULES = FeedRules()


class _Feed:
    """Accumulators of one feed."""

    __slots__ = ("feed", "pair", "key", "oracle", "ref", "since", "updated_at", "updates", "rejected",
                 "covered", "dev_time", "beyond", "max_dev", "max_block", "max_stale", "stale_beyond", "pos",
                 "hidden", "hidden_users", "threshold", "heartbeat", "threshold_from", "heartbeat_from")

    def __init__(self, feed: str, pair: str, key: str, t0: int, threshold: int, heartbeat: int) -> None:
        self.feed, self.pair, self.key = feed, pair, key
        self.threshold, self.heartbeat = threshold, heartbeat
        self.threshold_from = self.heartbeat_from = "default"
        self.oracle: int | None = None
        self.ref: int | None = None
        self.since = t0  # start of the current constant piece
        self.updated_at = t0  # updatedAt of the round in force (lower bound before the first)
        self.updates = self.rejected = self.covered = self.beyond = self.max_stale = self.stale_beyond = 0
        self.dev_time = 0.0
        self.max_dev: float | None = None
        #: (block, log index) of the latest update: its prices are observed for the max once no
        #: other update follows at that position (a reference point and the answer that follows it
        #: at the start of the same block are one instant: nothing reads the state between them)
        self.pos: tuple[int, int] | None = None
        self.max_block: int | None = None
        self.hidden = 0
        self.hidden_users: set[str] = set()

    def deviation(self) -> float | None:
        if self.oracle is None or not self.ref:
            return None
        return abs(self.oracle - self.ref) * 10_000 / self.ref

    def advance(self, t: int) -> None:
        """Integrate the constant piece [since, t)."""
        threshold, heartbeat = self.threshold, self.heartbeat
        if t <= self.since:
            return
        dt = t - self.since
        dev = self.deviation()
        if dev is not None:
            self.covered += dt
            self.dev_time += dev * dt
            o, r = self.oracle, self.ref
            assert o is not None and r is not None
            # the feed's trigger: measured from the answer on chain (OCR deviates), strictly above
            if abs(o - r) * 10_000 > threshold * abs(o):
                self.beyond += dt
        # staleness grows linearly from (since - updated_at) to (t - updated_at)
        self.max_stale = max(self.max_stale, t - self.updated_at)
        self.stale_beyond += max(0, t - max(self.since, self.updated_at + heartbeat))
        self.since = t


class OracleLag(Metric):
    """Oracle against reference per feed, and hidden insolvency (see the module docstring)."""

    name: ClassVar[str] = "oracle_lag"
    tables: ClassVar[tuple[Table, ...]] = (FEEDS, HIDDEN)
    requires_reference: ClassVar[bool] = True
    params_allowed: ClassVar[tuple[str, ...]] = ("deviation_bps", "heartbeat_s")

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self._dev_all, self._dev = _per_feed(self.params, "deviation_bps")
        self._hb_all, self._hb = _per_feed(self.params, "heartbeat_s")
        self._unit = 1
        self._feeds: dict[str, _Feed] = {}
        self._key_feed: dict[str, str] = {}  # price key -> feed (feeds with a reference)
        self._pair_feeds: dict[str, list[str]] = {}
        self._open: dict[str, tuple[int, int, int, int, int, tuple[str, ...]]] = {}
        #   user -> (block, ts, debt_ref_value, hf_oracle, hf_ref, feeds) of the open interval
        self._rows: list[tuple[Any, ...]] = []
        self._hidden_total = 0
        self._end_block = 0
        self._run_id, self._chain_id = "", 0

    # ------------------------------------------------------------------ parameters
    def threshold(self, view: View, feed: str) -> tuple[int, str]:
        """The feed's deviation threshold (bps) and where it came from."""
        o = view.scenario.oracle
        return _rule(self._dev.get(feed, self._dev_all),
                     o.deviation_bps if o.model == "republish" else None,
                     _declared(view, feed).deviation_bps, DEFAULT_DEVIATION_BPS)

    def heartbeat(self, view: View, feed: str) -> tuple[int, str]:
        """The feed's heartbeat (s) and where it came from."""
        o = view.scenario.oracle
        return _rule(self._hb.get(feed, self._hb_all),
                     o.heartbeat_s if o.model == "republish" else None,
                     _declared(view, feed).heartbeat_s, DEFAULT_HEARTBEAT_S)

    # ------------------------------------------------------------------ hooks
    def on_run_start(self, view: View) -> None:
        self._unit = view.unit
        self._run_id, self._chain_id = view.run_id, view.chain_id
        ref = view.scenario.reference
        if ref is None:
            raise MetricError("metric 'oracle_lag' needs a [reference] path in the scenario")
        for name, per_feed in (("deviation_bps", self._dev), ("heartbeat_s", self._hb)):
            unknown = sorted(set(per_feed) - set(ref.pairs))
            if unknown:  # a mistyped feed would silently keep the default threshold
                raise MetricError(f"metric 'oracle_lag': {name}.{unknown[0]} is not a feed of "
                                  f"[reference.pairs]; feeds: {sorted(ref.pairs)}")
        feed_keys: Mapping[str, Sequence[str]] = getattr(view, "feed_keys", None) or {}
        start_updated_at: Mapping[str, int] = getattr(view, "start_updated_at", None) or {}
        t0 = view.block.timestamp
        for feed, pair in sorted(ref.pairs.items()):
            keys = sorted(feed_keys.get(feed, ()))
            (dev, dev_from), (hb, hb_from) = self.threshold(view, feed), self.heartbeat(view, feed)
            f = _Feed(feed, pair, keys[0] if keys else "", t0, dev, hb)
            updated_at = start_updated_at.get(feed)
            if updated_at is not None and updated_at <= t0:
                f.updated_at = updated_at
            f.threshold_from, f.heartbeat_from = dev_from, hb_from
            self._feeds[feed] = f
            self._pair_feeds.setdefault(pair, []).append(feed)
            for k in keys:
                self._key_feed[k] = feed
            if f.key:
                f.oracle = view.prices.get(f.key)
                f.ref = view.reference_prices.get(f.key)
                self._observe_max(f, view.block.number)
        self._evaluations(view, tuple(view.accounts()), view.block.number, t0)

    def _feed_of(self, view: View, update: PriceUpdate) -> _Feed | None:
        if update.kind == "oracle":
            f = self._feeds.get(update.feed)
            if update.source_change:
                # the keys read this feed from now on (their hidden insolvency, their reference);
                # a feed without a reference pair: the keys are no longer any referenced feed's
                for k in update.keys:
                    if f is not None:
                        self._key_feed[k] = f.feed
                    else:
                        self._key_feed.pop(k, None)
        elif update.reference_of:
            f = self._feeds.get(update.reference_of)
        else:  # a view that does not say which feed: the pair's feed that sets one of the keys
            f = None
            cands = self._pair_feeds.get(update.feed, [])
            for k in update.keys:
                feed = self._key_feed.get(k)
                if feed is not None and feed in cands:  # the pair's feed that sets the key
                    f = self._feeds[feed]
                    break
            if f is None and len(cands) == 1:
                f = self._feeds[cands[0]]
        if f is not None and not f.key and update.keys:
            # the view did not say which keys the feed sets (no ``feed_keys``): learn them from the
            # first update, and take the prices in force from the view from then on
            f.key = sorted(update.keys)[0]
            for k in update.keys:
                self._key_feed[k] = f.feed
            if f.oracle is None:
                f.oracle = view.prices.get(f.key)
            if f.ref is None:
                f.ref = view.reference_prices.get(f.key)
        return f

    def on_price(self, view: View, update: PriceUpdate) -> None:
        f = self._feed_of(view, update)
        if f is None:
            return
        f.advance(update.timestamp)
        pos = (update.block_number, update.log_index)
        if f.pos is not None and f.pos != pos:
            self._observe_max(f, f.pos[0])
        f.pos = pos
        if update.kind == "oracle":
            if update.source_change:
                # not an answer: a key now reads the feed's round in force (its updatedAt unchanged)
                f.oracle = update.price
                return
            if not update.accepted:
                f.rejected += 1
                return
            f.updates += 1
            f.oracle = update.price
            f.updated_at = update.updated_at_ts
            f.max_stale = max(f.max_stale, update.timestamp - update.updated_at_ts)
        else:
            f.ref = update.price

    @staticmethod
    def _observe_max(f: _Feed, block: int) -> None:
        dev = f.deviation()
        if dev is not None and (f.max_dev is None or dev > f.max_dev):
            f.max_dev, f.max_block = dev, block

    def on_block_end(self, view: View, block: BlockEnd) -> None:
        self._evaluations(view, block.evaluated, block.block.number, block.block.timestamp)

    def on_run_end(self, view: View) -> None:
        t = view.block.timestamp
        self._end_block = view.block.number
        for feed in sorted(self._feeds):
            f = self._feeds[feed]
            f.advance(t)
            if f.pos is not None:
                self._observe_max(f, f.pos[0])
                f.pos = None
        for user in sorted(self._open):
            self._close(view, user, view.block.number, t)

    # ------------------------------------------------------------------ hidden insolvency
    def _evaluations(self, view: View, evaluated: Sequence[Any], number: int, ts: int) -> None:
        for ev in evaluated:
            opened = self._open.get(ev.user)
            if opened is not None and opened[0] == number:
                # opened by the run's start on the state before the first block's inputs and
                # re-evaluated at that block's end: the end's evaluation replaces it (an interval
                # of 0 s, a second row with the key (run, user, block) of the one that follows)
                del self._open[ev.user]
            elif opened is not None:
                self._close(view, ev.user, number, ts)
            r = ev.reference
            if r is None or not r.liquidatable or ev.oracle.liquidatable:
                continue
            keys = self._exposed_keys(view, ev.user, ts)
            feeds = tuple(sorted({self._key_feed[k] for k in keys if k in self._key_feed}))
            self._open[ev.user] = (number, ts, r.debt_value, ev.oracle.health_factor_wad, r.health_factor_wad,
                                   feeds)

    @staticmethod
    def _exposed_keys(view: View, user: str, ts: int) -> set[str]:
        """The price keys the account's liquidation point moves with (see the module docstring)."""
        exposures = view.adapter.exposures(view.state, user, ts)
        if exposures is not None:
            return {k for k, e in exposures.items() if e}
        return {k for p in view.adapter.positions(view.state, user, ts)
                if p.debt or (p.collateral and p.collateral_enabled) for k in view.price_keys(p.asset)}

    def _close(self, view: View, user: str, end_block: int, end_ts: int) -> None:
        b, ts, value, hf_o, hf_r, feeds = self._open.pop(user)
        dur = end_ts - ts
        vs = value * dur
        self._hidden_total += vs
        for feed in feeds:
            f = self._feeds[feed]
            f.hidden += vs
            f.hidden_users.add(user)
        self._rows.append((view.run_id, view.chain_id, b, ts, user, end_block, dur, value, hf_o, hf_r, vs,
                           list(feeds), vs / self._unit))

    # ------------------------------------------------------------------ outputs
    def rows(self) -> Mapping[str, Sequence[tuple[Any, ...]]]:
        feeds = []
        for feed in sorted(self._feeds):
            f = self._feeds[feed]
            feeds.append(self._feed_row(f))
        return {FEEDS.fqn: feeds, HIDDEN.fqn: sorted(self._rows, key=lambda r: (r[4], r[2]))}

    def _feed_row(self, f: _Feed) -> tuple[Any, ...]:
        return (self._run_id, self._chain_id, self._end_block, f.feed, f.pair, f.key, f.threshold,
                f.heartbeat, f.threshold_from, f.heartbeat_from, f.updates, f.rejected, f.covered,
                f.max_dev, f.max_block,
                f.dev_time / f.covered if f.covered else None, f.beyond, f.max_stale, f.stale_beyond,
                f.hidden, f.hidden / self._unit, len(f.hidden_users))

    def summary(self) -> Mapping[str, SummaryValue]:
        devs = [f.max_dev for f in self._feeds.values() if f.max_dev is not None]
        return {
            "feeds": len(self._feeds),
            "max_deviation_bps": max(devs) if devs else None,
            "beyond_threshold_s_max": max((f.beyond for f in self._feeds.values()), default=0),
            "max_staleness_s": max((f.max_stale for f in self._feeds.values()), default=0),
            "beyond_heartbeat_s_max": max((f.stale_beyond for f in self._feeds.values()), default=0),
            "hidden_insolvency_value_s": self._hidden_total,
            "hidden_insolvency_usd_s": self._hidden_total / self._unit,
            "hidden_insolvency_usd_h": self._hidden_total / self._unit / 3600,
            "hidden_accounts": len({r[4] for r in self._rows}),
        }
