"""The Python API: ``backtest.run(scenario, db=...)`` → :class:`RunResult` (polars frames).

The production path reads the warehouse (:func:`load_inputs`): it checks, *before* replaying,
that everything the scenario needs is there — the window inside the ingested blocks, the market's
events from its first block, a price for every listed reserve, each oracle feed ingested over the
whole window (from the answer in force at its start), a reference path for every pair named that
holds the price at the window's start and reaches its end — and raises
:class:`~backtest.errors.MissingData` saying what is missing and the command that fetches it.
Then it rebuilds the market at the window start from the ingested events, replays
(:class:`backtest.engine.Replay`) and writes every ``bt`` row of the run in one transaction.
:func:`run_inputs` replays in-memory inputs (tests, benchmarks) the same way.

Run ids: ``bt-`` + the first 16 hex digits of ``sha256(scenario sha256, code version, data
sources, the feeds' declared rules)`` unless given, so the same scenario on the same data and code
has the same id and a re-run replaces its rows.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import gc
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from ingest.errors import is_interrupt
from ingest.version import code_version
from ingest.warehouse import DEFAULT_DB, Warehouse
from protocols.base import ProtocolAdapter
from protocols.domain import ProtocolEvent
from protocols.registry import get_adapter

from .clock import Blocks
from .engine import Replay, ReplayInputs, ReplayOutput
from .errors import InputError, MissingData, ReplayError
from .feed import EventStream, event_sources, fetch_columns, protocol_events
from .oracle import FeedRules, RefPoint, Round, SourceChange, republish_rules
from .outputs import write_run
from .scenario import Scenario, load_scenario

__all__ = ["RunResult", "run", "run_inputs", "load_inputs", "derive_run_id", "quiet_gc",
           "REPLAY_MEMORY_LIMIT", "replay_memory_limit"]


@dataclass
class RunResult:
    """A finished run: id, scenario, the metrics' summaries, and its bt rows."""

    run_id: str
    scenario: Scenario
    summary: dict[str, dict[str, Any]]
    output: ReplayOutput
    db: str | None = None
    _mem: Warehouse | None = field(default=None, repr=False)

    def frames(self) -> dict[str, pl.DataFrame]:
        """Every bt table of the run as a polars DataFrame (sorted), keyed by table name."""
        wh = self._warehouse()
        out = {}
        for t in sorted(self.output.tables, key=lambda t: t.fqn):
            rel = wh.con.sql(f"SELECT * FROM {t.fqn} WHERE run_id = ? ORDER BY ALL", params=[self.run_id])
            out[t.fqn] = rel.pl()  # (a DuckDB 2.0 DB-API result has no .pl(); a relation does)
        if self.db is not None:
            wh.close()
        return out

    def _warehouse(self) -> Warehouse:
        if self.db is not None:
            return Warehouse(self.db, read_only=True)
        if self._mem is None:
            self._mem = Warehouse(":memory:")
            write_run(self._mem, self.run_id, self.output.tables)
        return self._mem


#: DuckDB's buffer cache for a replay over a warehouse file. The feed reads each slice of the
#: window once, so the file's blocks it cached are never read again, yet DuckDB keeps them until
#: its limit (the warehouse default, 1 GB): a full-year replay of the 1x synthetic market held
#: 550 MB of them at the end (bench/README.md). Sorting and inserting the run's rows at the write
#: spill to the warehouse's temporary directory past the limit.
REPLAY_MEMORY_LIMIT = "256MB"


def replay_memory_limit(path: str) -> str:
    """The DuckDB ``memory_limit`` to open the warehouse at ``path`` with for a replay: an
    in-memory warehouse keeps the default (its data *is* its buffers)."""
    return "1GB" if path == ":memory:" else REPLAY_MEMORY_LIMIT


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Collect cyclic garbage rarely while replaying: a replay allocates millions of short-lived,
    acyclic objects (events, records), and the default thresholds (a young collection every 700
    allocations, full ones as the live state grows) rescan the market's state over and over —
    about a third of the replay's time (bench/replay.py). The first generation waits for 200,000
    allocations instead; the previous thresholds are restored on exit."""
    old = gc.get_threshold()
    gc.set_threshold(200_000, 50, 20)
    try:
        yield
    finally:
        gc.set_threshold(*old)


def derive_run_id(scenario: Scenario, data_sources: tuple[str, ...], version: str,
                  feed_rules: Mapping[str, FeedRules] | None = None) -> str:
    """``feed_rules``: the feeds' rules as declared at ingest (:attr:`ReplayInputs.feed_rules`), which
    the oracle_lag metric and model republish judge by: an ingest that declares them anew rewrites
    them (``raw.oracle_feeds``) and not the rounds, so the data sources alone stay the same. Their
    values count, not the file that declared them; none declared adds nothing (earlier ids stand)."""
    declared = sorted((f, r.deviation_bps, r.heartbeat_s, r.min_answer, r.max_answer)
                      for f, r in (feed_rules or {}).items())
    rules = ("feed_rules:" + repr(declared),) if declared else ()
    h = hashlib.sha256("\n".join((scenario.sha256(), version, *sorted(data_sources), *rules)).encode())
    return "bt-" + h.hexdigest()[:16]


def run_inputs(scenario: Scenario, inputs: ReplayInputs, *, run_id: str | None = None,
               naive: bool = False) -> RunResult:
    """Replay in-memory inputs (no warehouse); ``frames()`` materialises the rows in memory.

    The replay works on a copy of ``inputs.state`` (the market at the window start): the replay
    changes the state it is given (events, committed liquidations), so the same ``inputs`` run
    twice gave two different runs, the second starting from the first one's end."""
    version = code_version()
    rid = run_id or derive_run_id(scenario, inputs.data_sources, version, inputs.feed_rules)
    inputs = dataclasses.replace(inputs, state=_fresh_state(inputs.state))
    with quiet_gc():
        out = _replay(scenario, inputs, rid, naive, version)
    return RunResult(rid, scenario, out.summary, out)


def _fresh_state(state: Any) -> Any:
    """A market state for one replay, leaving ``state`` as it was. A protocol state (a dataclass)
    holds immutable records (frozen reserves, users) in containers that a replay writes into,
    replacing records and never changing one (``Effects`` compares the records it read by
    identity): its dicts, lists and sets are copied, the records shared. Anything else is
    deep-copied."""
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        out = copy.copy(state)
        for f in dataclasses.fields(state):
            v = getattr(state, f.name)
            if isinstance(v, (dict, list, set)):
                object.__setattr__(out, f.name, copy.copy(v))
        return out
    return copy.deepcopy(state)


_RUN_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def run(scenario: Scenario | str | Path, db: str | Path | None = None, *, run_id: str | None = None,
        naive: bool = False, progress: Callable[[int, int, int], None] | None = None) -> RunResult:
    """Run a scenario (object or TOML path) over a warehouse and write its bt rows. A given
    ``run_id`` is 1-128 of ``A-Z a-z 0-9 . _ -`` (it names report folders and JUnit cases, and is
    printed in CI logs); anything else is an :class:`InputError` before anything runs."""
    if run_id is not None and not _RUN_ID.fullmatch(run_id):
        raise InputError(f"run id {run_id!r}: use 1-128 letters, digits, '.', '_' or '-'")
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    path = str(db or sc.warehouse or DEFAULT_DB)
    if path != ":memory:" and not Path(path).exists():
        raise MissingData(f"warehouse {path} does not exist; ingest first (deficit ingest ...) or pass --db")
    with Warehouse(path, memory_limit=replay_memory_limit(path)) as wh, quiet_gc():
        sc, inputs = load_inputs(wh, sc, stream=True)  # checks the data first: nothing written if missing
        _check_output_tables(wh, sc)
        version = code_version()
        rid = run_id or derive_run_id(sc, inputs.data_sources, version, inputs.feed_rules)
        out = _replay(sc, inputs, rid, naive, version, progress)
        derived = {}
        if "finality" in sc.metrics.names:
            from .metrics.finality import REORGS, reorg_exposure_rows

            # the reorgs of meta.reorgs that touched the window, with the run's rows there: derived
            # from the rows written, in the same transaction
            derived[REORGS] = lambda con: reorg_exposure_rows(con, rid, path)
        write_run(wh, rid, out.tables, derived)
    return RunResult(rid, sc, out.summary, out, db=path)


def _check_output_tables(wh: Warehouse, sc: Scenario) -> None:
    """Create the run's bt tables, or check that existing ones match this version's declarations,
    before replaying (a stale table would otherwise fail only when the results are written)."""
    from .metrics import get_metric
    from .outputs import LIQUIDATIONS, RUNS, SUMMARIES

    wh.ensure(RUNS, LIQUIDATIONS, SUMMARIES, *(t for n in sc.metrics.names for t in get_metric(n).tables))


def _replay(sc: Scenario, inputs: ReplayInputs, rid: str, naive: bool, version: str,
            progress: Callable[[int, int, int], None] | None = None) -> ReplayOutput:
    """Run the replay; a shock that does not fit the window's price paths (its ``assets`` naming a
    feed without rounds there, ...) is the scenario's error, located at its ``[[shock]]`` entry."""
    from .scenario import shock_error
    from .shocks import ShockError

    try:
        return Replay(sc, inputs, rid, naive=naive, code_version=version, progress=progress).run()
    except ShockError as e:
        raise shock_error(sc, e) from None


# ---------------------------------------------------------------------------- loading

def _ingest_hint(sc: Scenario, what: str, a: int, b: int, dataset: str | None = None) -> str:
    """The ``deficit ingest`` command that fetches what is missing (``what``: ``blocks``, a feed, or a
    market deployment named in a preset or deployments file; ``dataset``: the one to ingest)."""
    base = f"deficit ingest --chain {sc.chain_id} --from {a} --to {b}"
    if what == "blocks":
        return f"{base} --datasets blocks --deployments <your deployments file> (or --preset NAME)"
    only = f" --datasets {dataset}" if dataset else ""
    return f"{base}{only} --deployments <file naming {what}> (or --preset NAME)"


def _ingested_span(wh: Warehouse, chain: int) -> str:
    r = wh.con.execute("SELECT min(number), max(number), min(timestamp_ts), max(timestamp_ts) "
                       "FROM raw.blocks WHERE chain_id = ?", [chain]).fetchall()[0]
    if r[0] is None:
        return f"no block of chain {chain} is ingested"

    def iso(ts: int) -> str:
        return dt.datetime.fromtimestamp(int(ts), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return f"ingested on chain {chain}: blocks {r[0]}..{r[1]} ({iso(r[2])} .. {iso(r[3])})"


def _covered(wh: Warehouse, chain: int, dataset: str, source: str) -> list[tuple[int, int]]:
    if not _exists(wh, "meta.checkpoints"):
        return []
    return wh.covered(chain, dataset, source)


def _exists(wh: Warehouse, fqn: str) -> bool:
    s, n = fqn.split(".")
    r = wh.con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name=? AND table_name=?",
                       [s, n]).fetchall()
    return bool(r[0][0])


def _require(wh: Warehouse, sc: Scenario, dataset: str, source: str, a: int, b: int, what: str) -> None:
    """Blocks ``a..b`` of ``dataset``'s ``source`` are ingested, under this version's fingerprint
    of what to fetch (``meta.checkpoints.asked_sha256``); else :class:`MissingData` with the
    ``deficit ingest`` command that (re-)ingests them."""
    from ingest.datasets import asked_fingerprint

    stored = wh.checkpoints(sc.chain_id, dataset, source) if _exists(wh, "meta.checkpoints") else []

    def hint(x: int, y: int) -> str:
        return _ingest_hint(sc, "blocks" if dataset == "blocks" else source, x, y,
                            "chainlink" if dataset == "chainlink" else None)

    cur = a
    for x, y, _, _ in stored:  # by first block; disjoint
        if x <= cur <= y:
            cur = y + 1
        if cur > b:
            break
    if cur <= b:
        have = [(x, y) for x, y, _, _ in stored]
        raise MissingData(f"{what} ({dataset}:{source}) is not ingested over blocks {a}..{b} on chain "
                          f"{sc.chain_id} (ingested: {have or 'nothing'}); run `{hint(a, b)}`")
    asked = asked_fingerprint(dataset)
    # what was asked (declarations, ingest format); not a market's contract addresses, which only
    # the deployments file knows (an ingest compares those). A feed and the blocks are given no
    # address: an interval of a feed whose phases changed since carries the aggregators it was
    # read from (ingest.datasets.chainlink), i.e. a new aggregator's rounds may be missing there
    if dataset in ("chainlink", "blocks"):
        from ingest.schema import addresses_sha256

        none = addresses_sha256({})
        moved = [(max(a, x), min(b, y)) for x, y, f, g in stored
                 if g is not None and g != none and f == asked and x <= b and y >= a]
        if moved:
            spans = ", ".join(f"{x}..{y}" for x, y in moved[:5]) + (
                f" and {len(moved) - 5} more" if len(moved) > 5 else "")
            raise MissingData(f"{what} ({dataset}:{source}) over blocks {spans} on chain {sc.chain_id} was "
                              "read before the feed's aggregators changed (a new phase found since: its "
                              "rounds there may be missing, meta.checkpoints.addresses_sha256); re-ingest "
                              f"it: `{hint(moved[0][0], moved[-1][1])}`")
    stale = [(max(a, x), min(b, y), f) for x, y, f, _ in stored if f != asked and x <= b and y >= a]
    if not stale:
        return
    lo, hi = stale[0][0], stale[-1][1]
    spans = ", ".join(f"{x}..{y}" for x, y, _ in stale[:5]) + (
        f" and {len(stale) - 5} more" if len(stale) > 5 else "")
    fps = sorted({f for _, _, f in stale if f is not None})
    if not fps:
        why = ("before deficit recorded what each ingest asks for (meta.checkpoints.asked_sha256 is "
               "NULL: a warehouse written by an older version), so whether it holds every event and "
               "row this version reads is unknown")
    else:
        why = (f"under other declarations of what to fetch or another ingest format than this "
               f"version's (meta.checkpoints.asked_sha256 {', '.join(f[:12] for f in fps)}…, this "
               f"version's {asked[:12]}…): events declared since are missing there, or its rows were "
               "written by since-changed code")
        if any(f is None for _, _, f in stale):
            why += "; parts have no fingerprint (NULL: written by an older version)"
    raise MissingData(f"{what} ({dataset}:{source}) over blocks {spans} on chain {sc.chain_id} was "
                      f"ingested {why}. Re-run `deficit ingest` over that range to re-ingest it "
                      f"(`deficit migrate --db {wh.path} --apply` first if ingest asks for it): "
                      f"`{hint(lo, hi)}`")


def _resolve_window(wh: Warehouse, sc: Scenario) -> Scenario:
    import dataclasses

    w = sc.window
    fb, tb = w.from_block, w.to_block
    if w.from_time is not None:
        r = wh.con.execute("SELECT min(number) FROM raw.blocks WHERE chain_id=? AND timestamp_ts >= ?",
                           [sc.chain_id, _unix_seconds(w.from_time, ceil=True)]).fetchall()
        if r[0][0] is None:
            raise MissingData(f"window.from: no ingested block at or after "
                              f"{w.from_time.isoformat()} ({_ingested_span(wh, sc.chain_id)}); ingest the "
                              f"window first: `deficit ingest --chain {sc.chain_id} --from "
                              f"{w.from_time.strftime('%Y-%m-%dT%H:%M:%SZ')} ...`")
        fb = int(r[0][0])
        _check_edge(wh, sc, "from", fb, w.from_time)
    if w.to_time is not None:
        r = wh.con.execute("SELECT max(number) FROM raw.blocks WHERE chain_id=? AND timestamp_ts <= ?",
                           [sc.chain_id, _unix_seconds(w.to_time, ceil=False)]).fetchall()
        if r[0][0] is None:
            raise MissingData(f"window.to: no ingested block at or before "
                              f"{w.to_time.isoformat()} ({_ingested_span(wh, sc.chain_id)}); ingest the "
                              f"window first: `deficit ingest --chain {sc.chain_id} --to "
                              f"{w.to_time.strftime('%Y-%m-%dT%H:%M:%SZ')} ...`")
        tb = int(r[0][0])
        _check_edge(wh, sc, "to", tb, w.to_time)
    assert fb is not None and tb is not None
    if tb < fb:
        raise sc.error("window", f"the window resolves to blocks {fb}..{tb}, which is empty")
    return dataclasses.replace(sc, window=dataclasses.replace(w, from_block=fb, to_block=tb))


def _unix_seconds(t: dt.datetime, *, ceil: bool) -> int:
    """``t`` (aware) as whole unix seconds, exactly: rounded up (``ceil``: the first block at or after
    a time with a fraction of a second is stamped the next second) or down."""
    d = t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return d.days * 86_400 + d.seconds + (1 if ceil and d.microseconds else 0)


def _check_edge(wh: Warehouse, sc: Scenario, side: str, block: int, t: dt.datetime) -> None:
    """``window.from`` (``side`` "from") resolved to ``block``, the first *ingested* block at or
    after ``t``, is the window's first block only if the block before it is ingested too (its
    timestamp is then before ``t``); ``window.to`` resolved to the last ingested block at or
    before ``t`` is the window's last only if the block after it is. Otherwise the window would
    silently start late or end early (by days, when the ingest began later or stopped earlier)."""
    start = side == "from"
    neighbour = block - 1 if start else block + 1
    if neighbour < 0 or wh.con.execute("SELECT count(*) FROM raw.blocks WHERE chain_id=? AND number=?",
                                       [sc.chain_id, neighbour]).fetchall()[0][0]:
        return
    iso = t.strftime("%Y-%m-%dT%H:%M:%SZ")
    hint = (t - dt.timedelta(hours=1) if start else t + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    what, may, past = (("first", "start before", "from before") if start else ("last", "end after", "past"))
    raise MissingData(f"window.{side}: the {what} ingested block at or {'after' if start else 'before'} "
                      f"{iso} is {block}, but block {neighbour} is not ingested, so the window may "
                      f"{may} block {block} ({_ingested_span(wh, sc.chain_id)}); ingest blocks {past} "
                      f"{iso}: `deficit ingest --chain {sc.chain_id} --{side} {hint} ...`, or give "
                      f"window.{side}_block")


def load_inputs(wh: Warehouse, scenario: Scenario, *, stream: bool = False) -> tuple[Scenario, ReplayInputs]:
    """Check the warehouse has what ``scenario`` needs and read it (see the module docstring).

    ``stream``: the window's protocol events are read lazily from ``wh`` while the replay runs
    (:class:`backtest.feed.EventStream`; memory bounded independently of the window, but ``wh``
    must stay open until the replay ends — :func:`run` does this); by default they are read into
    a list here, so the inputs outlive the warehouse connection."""
    _check_reference_quotes(scenario)
    if not _exists(wh, "raw.blocks"):
        raise MissingData(f"{wh.path} has no raw.blocks: nothing is ingested; run `deficit ingest`")
    sc = _resolve_window(wh, scenario)
    chain, fb, tb, m = sc.chain_id, sc.from_block, sc.to_block, sc.market
    _require(wh, sc, "blocks", "chain", fb, tb, "blocks")
    mk_cov = _covered(wh, chain, m.dataset, m.source)
    if not mk_cov:
        raise MissingData(f"market {m.dataset}:{m.source} is not ingested on chain {chain}; run "
                          f"`{_ingest_hint(sc, m.source, 0, tb)}` (from the deployment's start block)")
    first = mk_cov[0][0]
    _require(wh, sc, m.dataset, m.source, first, tb,
             f"market {m.source} from its first ingested block {first}")
    adapter = get_adapter(m.protocol)
    con = wh.con
    rdu = f"raw.{m.dataset}_reserve_data_updated"
    pool = con.execute(f"SELECT any_value(address) FROM {rdu} WHERE chain_id=? AND source=?",
                       [chain, m.source]).fetchall() if _exists(wh, rdu) else [(None,)]
    kwargs: dict[str, Any] = {}
    if pool[0][0]:
        kwargs["pool"] = str(pool[0][0])
    if m.rules is not None:
        from protocols.aave_v3.state import RULE_SETS

        if m.rules not in RULE_SETS:
            raise sc.error("market.rules", f"unknown rule set {m.rules!r}; known: {sorted(RULE_SETS)}")
        kwargs["rules"] = RULE_SETS[m.rules]
    elif m.protocol == "aave_v3" and pool[0][0]:
        from protocols.aave_v3.rule_schedule import KNOWN_DEPLOYMENTS
        from protocols.aave_v3.state import RULE_SETS

        if str(pool[0][0]).lower() not in KNOWN_DEPLOYMENTS:
            # a pool deployed at a later version emits no Upgraded log: the 3.0 default would
            # apply 3.0's rounding, interest and close factor to a 3.3 market without a word
            raise sc.error("market.rules", f"pool {pool[0][0]} of market {m.source} is not a known "
                           "deployment, so the Aave v3 version it ran cannot be inferred: set market.rules "
                           f"to its Pool implementation's version at block {first}, one of "
                           f"{sorted(RULE_SETS)}")
    import inspect

    for name, given in (("asset_decimals", m.asset_decimals), ("asset_treasuries", m.asset_treasuries)):
        if given is None:
            continue
        if name not in inspect.signature(adapter.new_state).parameters:
            raise sc.error(f"market.{name}", f"protocol {m.protocol} reads these from its events; {name} "
                           "applies to protocols whose events lack them (aave_v2)")
        kwargs[name] = dict(given)
    state = adapter.new_state(**kwargs)
    try:
        for ev in protocol_events(con, adapter, dataset=m.dataset, chain_id=chain, source=m.source,
                                  to_block=fb - 1):
            adapter.apply(state, ev)
    except MissingData:
        raise
    except Exception as e:  # the adapter's typed errors carry the event location
        if is_interrupt(e):  # Ctrl-C while DuckDB streams the events: not a replay error
            raise
        raise ReplayError(f"rebuilding {m.source} before block {fb}: {e}") from e
    reserves = sorted(state.reserves)
    if not reserves:
        raise MissingData(f"market {m.source} has no listed reserve before block {fb} (no ReserveInitialized "
                          f"ingested); ingest it from its deployment block")
    for i, o in enumerate(sc.overrides.reserves):
        if o.asset not in state.reserves:
            raise sc.error(f"overrides.reserve[{i}].asset", f"unknown reserve {o.asset}: market {m.source} "
                           f"lists {reserves}")
    for i, eo in enumerate(sc.overrides.emode):
        cats = sorted(getattr(state, "emode_categories", {}))
        if eo.category not in cats:
            raise sc.error(f"overrides.emode[{i}].category", f"unknown e-mode category {eo.category}: market "
                           f"{m.source} has {cats or 'none'} before block {fb}")
    # asset -> source (AaveOracle) as of the window start
    tbl = f"raw.{m.dataset}_asset_source_updated"
    if not _exists(wh, tbl):
        raise MissingData(f"{tbl} does not exist: the market's oracle (role 'oracle') was not ingested; add "
                          f"its address to the deployment and run `{_ingest_hint(sc, m.source, first, tb)}`")
    oracle = _market_oracle(wh, sc, fb, tb)
    only = [oracle] if oracle else []  # the provider's oracle: its logs alone set the sources
    src_rows = con.execute(f"SELECT asset, arg_source, block_number, log_index FROM {tbl} WHERE chain_id=? "
                           "AND source=? AND block_number <= ?" + (" AND address = ?" if oracle else "")
                           + " ORDER BY block_number, log_index", [chain, m.source, tb, *only]).fetchall()
    if oracle and not src_rows:
        hint = _ingest_hint(sc, m.source, first, tb)
        raise MissingData(f"market {m.source}: its price oracle at block {fb} is {oracle} (the addresses "
                          "provider's PriceOracleUpdated), whose AssetSourceUpdated logs were not ingested; "
                          f"declare it as the deployment's `oracle` and run `{hint}`")
    asset_src: dict[str, str] = {}
    changes: list[SourceChange] = []
    for asset, src, b, li in src_rows:
        if int(b) >= fb:  # a switch inside the window: the engine applies it at its log
            changes.append(SourceChange(int(b), int(li), str(asset), str(src)))
        else:
            asset_src[str(asset)] = str(src)
    keys = list(reserves)
    for cat in getattr(state, "emode_categories", {}).values():
        ps = getattr(cat, "price_source", None)
        if ps and ps != "0x" + "00" * 20:
            keys.append(ps)
    # Aave v2's AaveOracle prices its WETH at exactly 1 ETH (``getAssetPrice``: ``if (asset == WETH)
    # return 1 ether``), whatever its source: a constant "feed" (WethSet log) with one answer
    fixed = _fixed_prices(wh, sc, adapter.base_unit, oracle)
    feed_keys: dict[str, list[str]] = {}
    for k in sorted(set(keys)):
        if k in fixed:
            feed_keys.setdefault(fixed[k].feed, []).append(k)
            continue
        if k not in asset_src:
            raise MissingData(f"no AaveOracle source for {k} before block {fb} (no AssetSourceUpdated "
                              f"ingested for it); ingest the market's oracle from its deployment block")
        feed_keys.setdefault(asset_src[k], []).append(k)
    feeds = sorted((set(feed_keys) | {c.feed for c in changes}) - {r.feed for r in fixed.values()})
    if not _exists(wh, "raw.oracle_rounds"):
        raise MissingData("raw.oracle_rounds does not exist: no price feed was ingested; add the feeds "
                          f"{feeds} as [[feed]] entries and run `{_ingest_hint(sc, 'the feeds', fb, tb)}`")
    initial, rounds = _feed_rounds(wh, sc, feeds, fb, tb)
    first_round: dict[str, int] = {}
    for r in rounds:
        first_round.setdefault(r.feed, r.block_number)
    for f in feeds:  # rounds past an ingested range are simply absent: the last answer would be held
        what = f"oracle source of {feed_keys[f]}" if f in feed_keys else "a source from the window"
        if f in initial:  # from the answer in force at the window start
            a = min(fb, initial[f].block_number)
        elif f in feed_keys:
            a = fb
        elif f in first_round:  # a source only from a switch inside the window: maybe deployed there
            a = first_round[f]
        else:
            continue  # no round at all: said below
        _require(wh, sc, "chainlink", f, a, tb, f"feed {f} ({what})")
    initial |= {r.feed: r for r in fixed.values()}
    in_window = {r.feed for r in rounds}
    for f in feeds:
        if f not in initial and f not in in_window:
            what = f"oracle source of {feed_keys[f]}" if f in feed_keys else "a source from the window"
            raise MissingData(f"feed {f} ({what}) has no round at or before block {tb}; ingest it: add it "
                              f"as a [[feed]] and run `{_ingest_hint(sc, f, 0, tb)}`")
    for c in changes:
        if c.feed not in initial and not any(r.feed == c.feed and (r.block_number, r.log_index) <
                                             (c.block_number, c.log_index) for r in rounds):
            raise MissingData(f"feed {c.feed} becomes the oracle source of {c.key} at block {c.block_number} "
                              f"log {c.log_index} but has no round before that log; ingest the feed from its "
                              f"deployment: `{_ingest_hint(sc, c.feed, 0, tb)}`")
    if sc.reference is not None:
        for f in sc.reference.pairs:
            if f not in feeds:
                raise sc.error(f"reference.pairs.{f}", f"{f} is not the oracle source of any reserve of "
                               f"{m.source}; sources: {feeds}")
    rules = _load_feed_rules(wh, chain, feeds)
    if sc.oracle.model == "republish" and sc.reference is not None:
        for f in sorted(sc.reference.pairs):
            try:
                republish_rules(sc.oracle, f, rules.get(f, FeedRules()))
            except ValueError as e:
                raise sc.error("oracle.model", str(e)) from None
    _check_base_fees(wh, sc, chain, fb, tb)
    blocks = _load_blocks(wh, chain, fb, tb)
    refs, init_refs = _load_refs(wh, sc, blocks)
    events: Iterable[ProtocolEvent] = ()
    if sc.mode == "historical":
        events = EventStream(con, adapter, dataset=m.dataset, chain_id=chain, source=m.source,
                             from_block=fb, to_block=tb)
        if not stream:
            events = list(events)
    sources = sorted(set(_ingest_runs(wh, adapter, chain, m.dataset, m.source, feeds, fb, tb))
                     | set(_reference_runs(wh, sc, blocks)))
    inputs = ReplayInputs(adapter, state, chain, fb, tb, blocks, {f: tuple(k) for f, k in feed_keys.items()},
                          rounds, initial, refs, init_refs, events, tuple(sources),
                          {f: r.decimals for f, r in initial.items()} | {r.feed: r.decimals for r in rounds
                                                                         if r.feed not in initial},
                          changes, rules)
    return sc, inputs


def _load_feed_rules(wh: Warehouse, chain: int, feeds: list[str]) -> dict[str, FeedRules]:
    """The feeds' rules as declared at ingest (``raw.oracle_feeds``); none for a feed ingested
    before that table existed (the metrics then say they used their defaults)."""
    if not _exists(wh, "raw.oracle_feeds"):
        return {}
    rows = wh.con.execute(
        "SELECT feed, deviation_bps, heartbeat_s, min_answer::VARCHAR, max_answer::VARCHAR, declared_in "
        "FROM raw.oracle_feeds WHERE chain_id = ? AND feed IN (SELECT unnest(?)) ORDER BY feed",
        [chain, feeds]).fetchall()
    return {str(f): FeedRules(None if d is None else int(d), None if h is None else int(h),
                              None if lo is None else int(lo), None if hi is None else int(hi), str(src))
            for f, d, h, lo, hi, src in rows}


#: the reference quote units (``raw.reference_prices.unit``) a market's base currency accepts as
#: itself: its own (WETH is ETH, by the contract); a dollar stablecoin only when the scenario takes
#: it at par (``[reference] at_par``), since in stress they trade off it
REFERENCE_QUOTES: Mapping[str, tuple[str, ...]] = {"USD": ("USD",), "ETH": ("ETH", "WETH")}
#: quotes ``at_par`` may name for a base currency: the dollar stablecoins CEX paths are quoted in
AT_PAR_QUOTES: Mapping[str, tuple[str, ...]] = {"USD": ("USDT", "USDC", "DAI", "BUSD", "FDUSD", "TUSD")}


def _check_reference_quotes(sc: Scenario) -> None:
    """A reference pair replaces or shadows a feed's answer as it is (``price * 10**decimals``), so
    its quote must be the market's base currency: an ``ETH/USD`` path on an Aave v2 feed (answers
    in ETH) or a ``CRV/ETH`` one on an Aave v3 feed (USD) would be read ~2,000x off, silently."""
    if sc.reference is None:
        return
    from protocols.registry import adapter_class

    cur = adapter_class(sc.market.protocol).base_currency
    own = REFERENCE_QUOTES.get(cur, (cur,))
    stable = AT_PAR_QUOTES.get(cur, ())
    for q in sc.reference.at_par:
        if q not in stable:
            raise sc.error("reference.at_par", f"{q} cannot be taken at par with this {sc.market.protocol} "
                           f"market's {cur}" + (f"; at_par names one of {list(stable)}" if stable else
                                                f": no quote is ({cur} is no dollar)"))
    for feed, pair in sc.reference.pairs.items():
        base, slash, quote = pair.rpartition("/")
        q = quote.upper()
        if not slash or not base or q in own or q in sc.reference.at_par:
            continue
        if q in stable:
            raise sc.error(f"reference.pairs.{feed}",
                           f"pair {pair!r} is quoted in {quote}, not {cur}: read as {cur} at 1:1, the "
                           f"stablecoin's own moves off par (USDT traded near 0.95 in May 2022, USDC at "
                           f"0.88 in March 2023) would be counted as oracle error and reference bad debt; "
                           f'take it at par knowingly with [reference] at_par = ["{q}"], or import a '
                           f"path quoted in {cur}")
        raise sc.error(f"reference.pairs.{feed}",
                       f"pair {pair!r} is quoted in {quote}, but this {sc.market.protocol} market's "
                       f"prices are in {cur} (its oracle's base currency): the reference path would "
                       f"be read as {cur}; import a path quoted in {' or '.join(own)}")


def _check_base_fees(wh: Warehouse, sc: Scenario, chain: int, fb: int, tb: int) -> None:
    """The liquidator model values gas at ``gas_units * (base fee + priority fee)``: blocks without a
    base fee (before London, Ethereum block 12,965,000) would value it at the priority fee alone,
    a small fraction of what gas cost then. With ``gas_units > 0`` such a window is refused."""
    if not sc.liquidator.gas_units:
        return
    n, lo, hi = wh.con.execute(
        "SELECT count(*), min(number), max(number) FROM raw.blocks WHERE chain_id = ? AND number "
        "BETWEEN ? AND ? AND base_fee_per_gas_wei IS NULL", [chain, fb, tb]).fetchall()[0]
    if n:
        raise sc.error("liquidator.gas_units", f"{n} block(s) of the window ({lo}..{hi}) have no base fee "
                       "(before London): the model values gas as gas_units x (base fee + priority fee) "
                       "and has no legacy gas price; set gas_units = 0 and put the gas a liquidation "
                       "costs then into min_profit")


def _load_blocks(wh: Warehouse, chain: int, fb: int, tb: int) -> Blocks:
    """The window's blocks as compact arrays (:meth:`Blocks.from_arrow`), and the hashes of its ends."""
    try:
        table = wh.con.sql(
            "SELECT number::UBIGINT AS number, timestamp_ts::UBIGINT AS timestamp, "
            "coalesce(base_fee_per_gas_wei, 0)::UBIGINT AS base_fee, "
            "(finality_at_ingest = 'finalized')::UTINYINT AS final FROM raw.blocks "
            "WHERE chain_id = ? AND number BETWEEN ? AND ? ORDER BY number",
            params=[chain, fb, tb]).to_arrow_table()
    except duckdb.ConversionException as e:
        raise ReplayError(f"raw.blocks (chain {chain}, blocks {fb}..{tb}): a base fee or timestamp does "
                          f"not fit 64 bits: {e}") from e
    ends = {int(n): str(h) for n, h in wh.con.execute(
        "SELECT number, hash FROM raw.blocks WHERE chain_id = ? AND number IN (?, ?)",
        [chain, fb, tb]).fetchall()}
    return Blocks.from_arrow(table, ends)


def _rounds_relation(wh: Warehouse) -> str:
    """A SQL relation of every answer the feeds' proxies reported: ``raw.oracle_rounds`` plus, at
    each phase's first block, the answer of that phase's aggregator from before it (``log_index``
    -1, start of the block). ``AggregatorProxy.confirmAggregator`` emits nothing, and from it on
    ``latestRoundData`` reads the new aggregator, whose latest round may predate the switch (it
    transmits before it is confirmed); ``raw.oracle_rounds`` rightly leaves that round out at its
    own block, so without the repeat the old aggregator's last answer priced the blocks up to the
    new one's next round. The repeat keeps the answer and ``updatedAt`` the proxy reports; its
    block clock is the switch block (the first block it was readable through the proxy). Not
    repeated: a phase whose first block is unknown (NULL: no historical state on the node) and an
    aggregator with no round before its phase (the proxy reports answer 0 until its first).
    Columns: chain_id, feed, answer, decimals, updated_at_ts, block_number, log_index (BIGINT),
    block_timestamp_ts, run_id, phase_id (the order of two switches in one block)."""
    rounds = ("SELECT chain_id, feed, answer, decimals, updated_at_ts, block_number, log_index::BIGINT AS "
              "log_index, block_timestamp_ts, run_id, phase_id FROM raw.oracle_rounds")
    if not (_exists(wh, "raw.oracle_phases") and _exists(wh, "raw.chainlink_answer_updated")):
        return rounds
    return (f"{rounds} UNION ALL SELECT ph.chain_id, ph.feed, au.current, d.decimals, "
            "CAST(au.updated_at AS UBIGINT), ph.first_block, -1::BIGINT, b.timestamp_ts, au.run_id, "
            "ph.phase_id "
            "FROM raw.oracle_phases ph JOIN raw.chainlink_answer_updated au ON au.chain_id = ph.chain_id "
            "AND au.source = ph.feed AND au.address = ph.aggregator AND au.block_number < ph.first_block "
            "JOIN raw.blocks b ON b.chain_id = ph.chain_id AND b.number = ph.first_block "
            "JOIN (SELECT chain_id, feed, any_value(decimals) AS decimals FROM raw.oracle_rounds "
            "GROUP BY ALL) d ON d.chain_id = ph.chain_id AND d.feed = ph.feed "
            "WHERE ph.first_block IS NOT NULL QUALIFY row_number() OVER (PARTITION BY ph.chain_id, ph.feed, "
            "ph.phase_id ORDER BY au.block_number DESC, au.log_index DESC) = 1")


def _feed_rounds(wh: Warehouse, sc: Scenario, feeds: list[str], fb: int, tb: int
                 ) -> tuple[dict[str, Round], list[Round]]:
    """Each feed's answer in force at the window start (``initial_rounds``) and the rounds the
    window reads (:func:`_rounds_relation`: a phase switch repeats the new aggregator's latest
    answer). With an oracle delay a round is usable ``delay_blocks`` blocks, or ``delay_s``
    seconds, after its block (:mod:`backtest.oracle`): the answer in force at block ``fb`` is the
    last round usable by then (block ``<= fb - delay_blocks`` and timestamp ``<= t0 - delay_s``,
    ``t0`` the timestamp of ``fb``; a feed with none starts from its oldest round before the
    window, the oldest answer known), and the later rounds before the window come first among the
    rounds, to take effect inside it."""
    chain, o = sc.chain_id, sc.oracle
    rel = _rounds_relation(wh)
    rcols = "feed, answer, decimals, updated_at_ts, block_number, log_index, block_timestamp_ts"
    sel = f"SELECT {rcols} FROM ({rel}) r WHERE chain_id=? AND feed IN (SELECT unnest(?))"
    ready, held, args = "", None, []
    if o.delay_blocks or o.delay_s:
        t0 = int(wh.con.execute("SELECT timestamp_ts FROM raw.blocks WHERE chain_id=? AND number=?",
                                [chain, fb]).fetchall()[0][0])
        held = (fb - o.delay_blocks, t0 - o.delay_s)
        ready, args = " AND block_number::BIGINT <= ? AND block_timestamp_ts::BIGINT <= ?", list(held)
    initial = {str(r[0]): _round(r) for r in wh.con.execute(
        f"{sel} AND block_number < ?{ready} QUALIFY row_number() OVER (PARTITION BY feed "
        "ORDER BY block_number DESC, log_index DESC, phase_id DESC) = 1",
        [chain, feeds, fb, *args]).fetchall()}
    pending = _load_rounds(wh, rel, chain, feeds, 0, fb - 1, held) if held is not None and fb > 0 else []
    for r in list(pending):  # no round usable yet (a feed younger than the delay): its oldest answer
        if r.feed not in initial:
            initial[r.feed] = r
            pending.remove(r)
    return initial, pending + _load_rounds(wh, rel, chain, feeds, fb, tb)


def _load_rounds(wh: Warehouse, rel: str, chain: int, feeds: list[str], fb: int, tb: int,
                 held: tuple[int, int] | None = None) -> list[Round]:
    """The feeds' rounds in blocks ``[fb, tb]`` of ``rel`` (:func:`_rounds_relation`), in order
    (columns through Arrow, exact answers); with ``held = (block, ts)`` only those not usable at
    the window start (after that block or that timestamp: see :func:`_feed_rounds`)."""
    types = {str(c): str(t) for c, t in wh.con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'raw' AND "
        "table_name = 'oracle_rounds'").fetchall()}
    types["log_index"] = "BIGINT"
    names = ("feed", "answer", "decimals", "updated_at_ts", "block_number", "log_index", "block_timestamp_ts")
    cols = fetch_columns(wh.con, [(n, types[n]) for n in names],
                         f"FROM ({rel}) r WHERE chain_id = ? AND feed IN (SELECT unnest(?)) AND "
                         "block_number BETWEEN ? AND ?" + (" AND NOT (block_number::BIGINT <= ? AND "
                                                           "block_timestamp_ts::BIGINT <= ?)" if held else "")
                         + " ORDER BY block_number, log_index, phase_id",
                         [chain, feeds, fb, tb, *(held or ())])
    for name, col in zip(names, cols, strict=True):
        if None in col:
            i = col.index(None)
            raise MissingData(f"raw.oracle_rounds: the round of feed {cols[0][i]} at block {cols[4][i]} log "
                              f"index {cols[5][i]} has no {name}; re-ingest the feed over that range")
    return [Round(*r) for r in zip(*cols, strict=True)]


def _market_oracle(wh: Warehouse, sc: Scenario, fb: int, tb: int) -> str | None:
    """The price oracle the market's pool reads from the window start: the address of the addresses
    provider's last ``PriceOracleUpdated`` before it (lower case), or None when the provider's logs
    were not ingested (then every ingested oracle log of the market is read, as before the
    provider was known). The pool asks the provider for its oracle on every price read, so a
    switch replaces every asset's source at once: the sources are the new oracle's, set before
    the switch (its constructor), not the last ``AssetSourceUpdated`` of either. A switch inside
    the window is not modelled and refused."""
    m, chain = sc.market, sc.chain_id
    tbl = f"raw.{m.dataset}_price_oracle_updated"
    if not _exists(wh, tbl):
        return None
    rows = wh.con.execute(f"SELECT block_number, new_address FROM {tbl} WHERE chain_id = ? AND source = ? "
                          "AND block_number <= ? ORDER BY block_number, log_index", [chain, m.source, tb]
                          ).fetchall()
    inside = [(int(b), str(a)) for b, a in rows if int(b) >= fb]
    if inside:
        b, a = inside[0]
        raise ReplayError(f"market {m.source}: its addresses provider switched the price oracle to "
                          f"{a.lower()} at block {b}, inside the window {fb}..{tb}: a switch of every source "
                          f"at once is not modelled; end the window before block {b} or start it after")
    return str(rows[-1][1]).lower() if rows else None


def _fixed_prices(wh: Warehouse, sc: Scenario, unit: int, oracle: str | None = None) -> dict[str, Round]:
    """Price keys the market's oracle prices at a constant: the asset of the last ``WethSet`` before
    the window (Aave v2 ``AaveOracle``), at one base unit (1 ETH), as a pseudo-feed
    ``constant:<asset>`` whose single answer precedes the window (decimals = log10 of the unit).
    ``oracle``: the market's oracle then (:func:`_market_oracle`), whose ``WethSet`` alone counts."""
    m = sc.market
    tbl = f"raw.{m.dataset}_weth_set"
    if not _exists(wh, tbl):
        return {}
    row = wh.con.execute(
        f"SELECT w.weth, w.block_number, w.log_index, b.timestamp_ts FROM {tbl} w JOIN raw.blocks b "
        "ON b.chain_id = w.chain_id AND b.number = w.block_number WHERE w.chain_id=? AND w.source=? "
        "AND w.block_number < ?" + (" AND w.address = ?" if oracle else "")
        + " ORDER BY w.block_number DESC, w.log_index DESC LIMIT 1",
        [sc.chain_id, m.source, sc.from_block, *([oracle] if oracle else [])]).fetchall()
    if not row or str(row[0][0]) == "0x" + "00" * 20:
        return {}
    asset, b, li, ts = str(row[0][0]), int(row[0][1]), int(row[0][2]), int(row[0][3])
    dec = len(str(unit)) - 1
    return {asset: Round(f"constant:{asset}", unit, dec, ts, b, li, ts)}


def _round(r: tuple[Any, ...]) -> Round:
    return Round(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6]))


def _check_one_source(sc: Scenario, rows: list[tuple[Any, ...]], t0: int) -> None:
    """Without ``reference.source``, a pair's rows of every source are read as one path: fine for
    sources that follow one another (monthly files), but two that overlap in time would interleave
    (two prices at one instant, the path jumping between them), so that is refused. What is read
    of a source is its last price at or before the window's start (unix second ``t0``, the price
    in force) and its prices after it. ``rows``: ``(pair, source, ts_us, ...)`` in time order."""
    spans: dict[str, dict[str, tuple[int, int]]] = {}
    for pair, source, ts_us, *_ in rows:
        by = spans.setdefault(str(pair), {})
        t = int(ts_us)
        a, _b = by.get(str(source), (t, t))
        by[str(source)] = (t if t <= t0 * 10**6 else a, t)  # earlier prices are superseded
    for pair, by in sorted(spans.items()):
        order = sorted(by.items(), key=lambda kv: (kv[1][0], kv[0]))
        (last_src, (_a, end)) = order[0]
        for name, (a, b) in order[1:]:
            if a <= end:
                raise sc.error("reference.source", f"reference pair {pair} has prices from sources "
                               f"{last_src!r} and {name!r} that overlap in time: read together they "
                               f"would interleave; set reference.source to one of {sorted(by)}")
            if b > end:
                last_src, end = name, b


def _ingest_runs(wh: Warehouse, adapter: ProtocolAdapter[Any], chain: int, dataset: str, source: str,
                 feeds: list[str], fb: int, tb: int) -> list[str]:
    """The ingest runs (``meta.runs.run_id``) whose rows the replay reads, from the rows themselves:
    the market's event tables up to the window's end (the state before it is rebuilt from them, the
    oracle sources and the fixed WETH price come from them), the feeds' rounds up to its end, and
    ``raw.blocks`` from the market's first event (or the window's start) to its end. Not from
    ``meta.checkpoints``, whose merged intervals keep only the run that last extended them and reach
    past the window: a later ingest of other blocks changed the run's id and lineage with nothing
    it reads."""
    tables = {s.table for s in event_sources(adapter, dataset)} | {
        f"raw.{dataset}_{t}" for t in ("asset_source_updated", "reserve_data_updated", "weth_set")}
    market = " UNION ALL ".join(
        f"SELECT run_id, block_number FROM {t} WHERE chain_id = $c AND source = $s AND block_number <= $tb"
        for t in sorted(tables) if _exists(wh, t))
    parts = [f"SELECT run_id FROM ({_rounds_relation(wh)}) r WHERE chain_id = $c AND feed IN "
             "(SELECT unnest($f)) AND block_number <= $tb",
             "SELECT run_id FROM raw.blocks WHERE chain_id = $c AND number <= $tb AND number >= "
             + ("least($fb, (SELECT min(block_number) FROM m))" if market else "$fb")]
    if market:
        parts.append("SELECT run_id FROM m")
    sql = (f"WITH m AS ({market}) " if market else "") + " UNION ".join(parts) + " ORDER BY 1"
    args: dict[str, Any] = {"c": chain, "f": feeds, "fb": fb, "tb": tb}
    if market:
        args["s"] = source
    return [str(r[0]) for r in wh.con.execute(sql, args).fetchall()]


def _reference_runs(wh: Warehouse, sc: Scenario, blocks: Blocks) -> list[str]:
    """The ``deficit import-prices`` runs whose reference rows the replay reads (the pairs, the
    source if given, up to the window's end): part of the run's data sources, so that a
    re-imported path is a different run (id and ``bt.runs.data_sources``)."""
    if sc.reference is None:
        return []
    src = sc.reference.source
    q = ("SELECT DISTINCT run_id FROM raw.reference_prices WHERE pair IN (SELECT unnest(?))"
         + (" AND source = ?" if src else "") + " AND ts_us <= ? ORDER BY run_id")
    args: list[Any] = [sorted(set(sc.reference.pairs.values()))] + ([src] if src else []) + [
        blocks.ts[-1] * 10**6]
    return [str(r[0]) for r in wh.con.execute(q, args).fetchall()]


def _load_refs(wh: Warehouse, sc: Scenario, blocks: Blocks) -> tuple[list[RefPoint], Mapping[str, RefPoint]]:
    if sc.reference is None:
        return [], {}
    pairs = sorted(set(sc.reference.pairs.values()))
    if not _exists(wh, "raw.reference_prices"):
        raise MissingData(f"raw.reference_prices does not exist; import the reference path for {pairs} with "
                          "`deficit import-prices FILE --pair ETH/USD`")
    t0, t1 = blocks.ts[0], blocks.ts[-1]
    src = sc.reference.source
    q = ("SELECT pair, source, ts_us, price_text FROM raw.reference_prices WHERE pair IN (SELECT unnest(?))"
         + (" AND source = ?" if src else "") + " AND ts_us <= ? ORDER BY pair, ts_us, source")
    args: list[Any] = [pairs] + ([src] if src else []) + [t1 * 10**6]
    rows = wh.con.execute(q, args).fetchall()
    if not src:
        _check_one_source(sc, rows, t0)
    refs: list[RefPoint] = []
    initial: dict[str, RefPoint] = {}
    read: dict[str, list[tuple[int, int, str]]] = {}  # pair -> (second, ts_us, source) of the points read
    for pair, source, ts_us, text in rows:
        ts = -(-int(ts_us) // 10**6)  # usable from the first block whose timestamp is >= the instant
        price = Fraction(Decimal(str(text)))
        pts = read.setdefault(str(pair), [])
        if ts <= t0:
            initial[str(pair)] = RefPoint(str(pair), ts, price, sc.from_block)
            pts[:] = [(ts, int(ts_us), str(source))]  # only the price in force at the start is read
            continue
        pts.append((ts, int(ts_us), str(source)))
        b = blocks.first_at_or_after(ts)
        if b is None:
            continue
        refs.append(RefPoint(str(pair), ts, price, b))
    refs.sort(key=lambda r: (r.block_number, r.ts, r.pair))
    have = {r.pair for r in refs}
    last = {str(p): int(ts) for p, ts in wh.con.execute(
        "SELECT pair, max(ts_us) FROM raw.reference_prices WHERE pair IN (SELECT unnest(?))"
        + (" AND source = ?" if src else "") + " GROUP BY pair", [pairs] + ([src] if src else [])).fetchall()}
    window = (f"(blocks {sc.from_block}..{sc.to_block}, unix {t0}..{t1}: {_iso(t0)} .. {_iso(t1)})"
              f"{' for source ' + repr(src) if src else ''}")
    for p in pairs:
        if p not in have:
            raise MissingData(f"reference pair {p} has no price in the window {window}; "
                              f"import it with `deficit import-prices FILE --pair {p}`")
        # a path over part of the window only: before its first price the pair would have none (the
        # on-chain answer kept under model reference), after its last the last held, silently
        if p not in initial:
            first = min(r.ts for r in refs if r.pair == p)
            raise MissingData(f"reference pair {p} has no price at or before the window's start {window}: "
                              f"its path starts at unix {first} ({_iso(first)}); import it from before "
                              f"the window with `deficit import-prices FILE --pair {p}`")
        end = -(-last[p] // 10**6)
        if end < t1:
            raise MissingData(f"reference pair {p} ends at unix {end} ({_iso(end)}), before the window's end "
                              f"{window}; import it up to (or past) the window's last block with "
                              f"`deficit import-prices FILE --pair {p}`")
    _check_gaps(wh, sc, read, t0, t1, window)
    return refs, initial


#: without ``[reference] max_gap_s``, the longest a reference price may be held in the window is
#: this many times the series' median interval (the sources read, each over the window and a week
#: either side; the coarsest of them): a few missing candles pass, an hours-long hole does not
DEFAULT_GAP_FACTOR = 10
_GAP_MARGIN_US = 7 * 86_400 * 10**6


def _check_gaps(wh: Warehouse, sc: Scenario, read: Mapping[str, list[tuple[int, int, str]]], t0: int,
                t1: int, window: str) -> None:
    """Refuse a reference path with a hole in the window: the replay holds a price until the next
    one (``view.reference_prices``), so over a hole oracle_lag and reference bad debt would be
    measured against a stale price, silently. For each pair, from the price in force at the
    window's start (``read``: its points in order, usable seconds) through the first price after
    the window's end, the time a price is held inside the window, ``min(next, t1) - this``, must
    not exceed ``max_gap_s`` (declared, or :data:`DEFAULT_GAP_FACTOR` x the median interval)."""
    assert sc.reference is not None
    src = sc.reference.source
    declared = sc.reference.max_gap_s
    for pair, pts in sorted(read.items()):
        only = " AND source = ?" if src else ""
        nxt = wh.con.execute(
            f"SELECT ts_us, source FROM raw.reference_prices WHERE pair = ?{only} AND ts_us > ? "
            "ORDER BY ts_us, source LIMIT 1", [pair, *([src] if src else []), t1 * 10**6]).fetchall()
        seq = list(pts)
        if nxt:  # the first price after the window: the last one in it is held until then
            seq.append((-(-int(nxt[0][0]) // 10**6), int(nxt[0][0]), str(nxt[0][1])))
        holes = [(a, b, min(b, t1) - a) for (a, _, _), (b, _, _) in zip(seq, seq[1:], strict=False)]
        if seq[-1][0] < t1:  # cannot happen after the end check; kept so a change there cannot hide a hole
            holes.append((seq[-1][0], t1, t1 - seq[-1][0]))
        if declared is not None:
            limit, how = Fraction(declared), f"max_gap_s = {declared} declared in [reference]"
        else:
            sources = sorted({s for _, _, s in seq})
            meds = [m for (m,) in wh.con.execute(
                "SELECT median(d) FROM (SELECT source, ts_us::BIGINT - lag(ts_us::BIGINT) OVER (PARTITION BY "
                "source ORDER BY ts_us) AS d FROM raw.reference_prices WHERE pair = ? AND source IN "
                "(SELECT unnest(?)) AND ts_us BETWEEN ? AND ?) WHERE d IS NOT NULL GROUP BY source",
                [pair, sources, max(seq[0][1] - _GAP_MARGIN_US, 0), seq[-1][1] + _GAP_MARGIN_US]).fetchall()
                if m is not None]
            if not meds:
                raise MissingData(f"reference pair {pair} has a single price per source around the window "
                                  f"{window}: no interval to judge its holes by; declare the longest hole "
                                  "to accept with `max_gap_s = N` (seconds) in [reference]")
            med = Fraction(Decimal(str(max(meds)))) / 10**6
            limit = DEFAULT_GAP_FACTOR * med
            how = (f"default {DEFAULT_GAP_FACTOR} x the series' median interval of {float(med):g} s "
                   f"({float(limit):g} s)")
        over = [h for h in holes if h[2] > limit]
        if over:
            a, b, held = over[0]
            more = f" (and {len(over) - 1} more such holes)" if len(over) > 1 else ""
            raise MissingData(
                f"reference pair {pair} has no price from {_iso(a)} (unix {a}) to {_iso(b)} (unix {b}): the "
                f"window {window} would hold the price of {_iso(a)} for {held} s ({held / 3600:.2f} h), "
                f"longer than the {how}{more}; import the missing prices, or declare the longest hole to "
                "accept with `max_gap_s = N` (seconds) in [reference]")


def _iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
