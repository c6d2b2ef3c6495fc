"""Chainlink price-feed rounds: every aggregator a proxy ever pointed to, per phase.

An EACAggregatorProxy emits nothing when its aggregator changes (``confirmAggregator`` only bumps
``phaseId``), so phases are discovered by ``eth_call``: ``phaseId()`` at the range end, then
``phaseAggregators(i)`` for each phase, and the first block of each phase by binary search on
``phaseId()`` at historical blocks. Logs are then read from *every* phase's aggregator, so a
feed's full history across aggregator upgrades is ingested. A proxy round id is
``(phase_id << 64) | aggregator_round_id`` (uint80), as ``AggregatorProxy.getRoundData`` builds it.

``raw.oracle_rounds`` is derived from ``AnswerUpdated`` (emitted by OCR1/OCR2 and the older
Flux/AccessControlled aggregators alike), keeping only the logs of each aggregator within its
phase's blocks ``[first_block, next phase's first_block)``: a new aggregator transmits before it is
confirmed, an old one may go on after, and neither is what the proxy reported then. Limits: the
switch block's logs are attributed to the new phase whatever their order relative to the
``confirmAggregator`` transaction, and the new aggregator's latest answer from before the switch
(which the proxy reads from the switch on) is not repeated at the switch block here: the replay
repeats it (``backtest.api._rounds_relation``, from ``raw.chainlink_answer_updated``).
``NewTransmission`` keeps the OCR report details (observations, transmitter) in its own decoded
table.

Sources: smartcontractkit/chainlink contracts/src/v0.6/AggregatorProxy.sol; smartcontractkit/libocr
contract/OffchainAggregator.sol, contract2/OCR2Aggregator.sol (see ``ingest/catalog.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from eth_hash.auto import keccak

from .. import catalog
from ..errors import ConfigError, DecodeError, RpcResponseError
from ..schema import Column, Table, addresses_sha256, register_table, sql_str
from ..warehouse import fetch_one
from .base import EventGroup, LogDataset, Source, build_event_tables

if TYPE_CHECKING:
    from ..deployments import DeploymentSet, Feed
    from ..engine import RunContext

__all__ = ["Chainlink", "ORACLE_ROUNDS", "ORACLE_PHASES", "ORACLE_FEEDS", "STATE_UNAVAILABLE"]

NAME = "chainlink"


def _sel(sig: str) -> str:
    return "0x" + keccak(sig.encode())[:4].hex()


SEL_PHASE_ID = _sel("phaseId()")
SEL_PHASE_AGGREGATORS = _sel("phaseAggregators(uint16)")
SEL_DECIMALS = _sel("decimals()")
# how nodes say "no state for that block": geth/erigon/reth wordings and anvil's window
STATE_UNAVAILABLE = re.compile(
    r"(?i)missing trie node|header not found|BlockOutOfRange|state .*not available|"
    r"historical state|state histories|pruned|unknown block|required historical state")

ORACLE_PHASES = register_table(Table(
    "raw", "oracle_phases", "Aggregators of each feed proxy by phase, discovered with eth_call "
    "(phaseId, phaseAggregators) at the end of the ingested range; first_block found by binary "
    "search on phaseId() at historical blocks.",
    (
        Column("chain_id", "UBIGINT", "chain", False),
        Column("feed", "VARCHAR", "proxy address (what protocols read), lower-case hex", False),
        Column("feed_name", "VARCHAR", "feed name from the deployments, e.g. 'ETH / USD'", False),
        Column("phase_id", "USMALLINT", "proxy phase (uint16); 0 if the feed is a bare aggregator", False),
        Column("aggregator", "VARCHAR", "aggregator contract of this phase, lower-case hex", False),
        Column("first_block", "UBIGINT", "first block at which the proxy's phaseId() >= phase_id"),
        Column("discovered_at_block", "UBIGINT", "block at which the phases were read", False),
        Column("run_id", "VARCHAR", "ingest run that wrote the row", False),
    ),
    "ingest.datasets.chainlink", ("chain_id", "feed", "phase_id")))

ORACLE_FEEDS = register_table(Table(
    "raw", "oracle_feeds", "Each ingested feed's published update rules as declared in the deployments "
    "(preset or file) of the last ingest that read it: deviation threshold and heartbeat (off-chain "
    "settings, not on chain) and answer bounds. The backtest's oracle_lag metric judges a feed "
    "against them by default.",
    (
        Column("chain_id", "UBIGINT", "chain", False),
        Column("feed", "VARCHAR", "proxy address, lower-case hex", False),
        Column("feed_name", "VARCHAR", "feed name from the deployments", False),
        Column("decimals", "UTINYINT", "feed decimals (read on chain when the proxy answers)", False),
        Column("deviation_bps", "UINTEGER", "published deviation threshold, basis points (NULL: not "
               "declared)"),
        Column("heartbeat_s", "UBIGINT", "published heartbeat, seconds (NULL: not declared)"),
        Column("min_answer", "HUGEINT", "declared minimum answer, raw units (NULL: not declared)"),
        Column("max_answer", "HUGEINT", "declared maximum answer, raw units (NULL: not declared)"),
        Column("declared_in", "VARCHAR", "the deployments file that declared the feed", False),
        Column("run_id", "VARCHAR", "ingest run that wrote the row", False),
    ),
    "ingest.datasets.chainlink", ("chain_id", "feed")))

ORACLE_ROUNDS = register_table(Table(
    "raw", "oracle_rounds", "One row per feed answer (AnswerUpdated of the feed's aggregator in "
    "any phase): the exact answer, both round ids and both clocks — updated_at_ts (reported) and "
    "block_timestamp_ts (when the chain made it readable). Only the answers the proxy reported: "
    "an aggregator's logs before its phase's first_block, or from the next phase's first_block "
    "on, are left out (they stay in raw.chainlink_answer_updated); where a switch block is "
    "unknown (NULL first_block) that bound is not applied.",
    (
        Column("chain_id", "UBIGINT", "chain", False),
        Column("feed", "VARCHAR", "proxy address, lower-case hex", False),
        Column("feed_name", "VARCHAR", "feed name from the deployments", False),
        Column("aggregator", "VARCHAR", "emitting aggregator, lower-case hex", False),
        Column("phase_id", "USMALLINT", "proxy phase of that aggregator", False),
        Column("aggregator_round_id", "UHUGEINT", "the aggregator's own round id", False),
        Column("proxy_round_id", "UHUGEINT",
               "(phase_id << 64) | aggregator_round_id, as the proxy reports it", False),
        Column("answer", "HUGEINT",
               "exact answer in the feed's integer units (int256, checked to fit)", False),
        Column("decimals", "UTINYINT", "feed decimals (answer / 10**decimals = price)", False),
        Column("answer_f64", "DOUBLE", "derived: answer / 10**decimals (analysis only)", False),
        Column("updated_at_ts", "UBIGINT", "updatedAt reported by the aggregator, unix seconds", False),
        Column("block_timestamp_ts", "UBIGINT", "timestamp of the block that carried the update", False),
        Column("block_number", "UBIGINT", "block of the AnswerUpdated log", False),
        Column("block_hash", "VARCHAR", "its block hash", False),
        Column("tx_hash", "VARCHAR", "transaction hash", False),
        Column("tx_index", "UINTEGER", "transaction index", False),
        Column("log_index", "UINTEGER", "log index in the block", False),
        Column("source", "VARCHAR", "feed source key (the proxy address)", False),
        Column("run_id", "VARCHAR", "ingest run that wrote the row", False),
    ),
    "ingest.datasets.chainlink", ("chain_id", "feed", "block_number", "log_index")))


class Chainlink(LogDataset):
    NAME = NAME
    ROLES = {"aggregator": True}
    GROUPS = (EventGroup(("aggregator",), catalog.CHAINLINK_AGGREGATOR, "chainlink", renames=(
        ("NewTransmission(uint32,int192,address,uint32,int192[],bytes,int192,bytes32,uint40)",
         "chainlink_ocr2_new_transmission"),)),)
    EVENT_TABLES = build_event_tables(NAME, GROUPS)
    DERIVED_TABLES = (ORACLE_PHASES, ORACLE_ROUNDS, ORACLE_FEEDS)

    def sources(self, dset: DeploymentSet, chain_id: int) -> list[Source]:
        return [Source(NAME, f.proxy, f.start_block, f) for f in dset.feeds
                if f.chain_id == chain_id]

    def prepare(self, ctx: RunContext, source: Source, to_block: int) -> None:
        feed: Feed = source.payload
        rpc = ctx.rpc
        try:
            n_phases = self._phase_id(ctx, feed.proxy, to_block)
        except RpcResponseError as e:
            if not STATE_UNAVAILABLE.search(str(e)):
                raise
            self._declared_phases(ctx, source, to_block, e)
            return
        phases: list[tuple[int, str, int | None]] = []
        if n_phases is None:  # not a phased proxy: the address is itself an aggregator
            phases.append((0, feed.proxy, feed.start_block))
        else:
            calls = [("eth_call", [{"to": feed.proxy, "data": SEL_PHASE_AGGREGATORS
                                    + i.to_bytes(32, "big").hex()}, hex(to_block)])
                     for i in range(1, n_phases + 1)]
            for i, res in enumerate(rpc.batch(calls), start=1):
                agg = _address(_bytes(res, f"phaseAggregators({i})"), f"phaseAggregators({i})")
                first = self._first_block_of_phase(ctx, feed, i, to_block)
                if agg != "0x" + "00" * 20:
                    phases.append((i, agg.lower(), first))
        for phase, agg in feed.aggregators:
            known = {p for p, _, _ in phases}
            if phase in known and (phase, agg) not in {(p, a) for p, a, _ in phases}:
                ctx.warn(f"feed {feed.name}: declared phase {phase} aggregator {agg} differs "
                         "from the chain; using the chain's")
        decimals = feed.decimals
        if n_phases is not None or decimals is None:
            dec_res: object = rpc.call("eth_call", [{"to": feed.proxy, "data": SEL_DECIMALS},
                                                    hex(to_block)])
        else:  # a bare aggregator with declared decimals: checked where it answers decimals()
            dec_res = ctx.try_eth_call(feed.proxy, SEL_DECIMALS, to_block)
            dec_res = None if dec_res in ("0x", "") else dec_res
        if dec_res is not None or decimals is None:
            onchain = _uint(_bytes(dec_res, "decimals()"), 8, "decimals()")
            if decimals is not None and decimals != onchain:
                ctx.warn(f"feed {feed.name}: declared decimals {decimals}, chain says {onchain}")
            decimals = onchain
        ctx.state[("chainlink", source.key)] = (phases, decimals)
        self._store_rules(ctx, feed, decimals)
        stored = ctx.wh.con.execute(
            "SELECT phase_id, aggregator, first_block FROM raw.oracle_phases WHERE chain_id=? AND "
            "feed=? ORDER BY phase_id", [ctx.chain_id, feed.proxy]).fetchall()
        if [tuple(r) for r in stored] == sorted(phases):
            return  # unchanged: a rerun writes nothing
        self._store_phases(ctx, feed, phases, to_block)

    def _declared_phases(self, ctx: RunContext, source: Source, to_block: int,
                         e: RpcResponseError) -> None:
        """No state at ``to_block`` (not an archive node): use the deployment's declared phase
        aggregators and decimals, loudly; without them there is no safe way to go on."""
        feed: Feed = source.payload
        if not feed.aggregators or feed.decimals is None:
            raise ConfigError(
                f"feed {feed.name}: the node has no state at block {to_block} to discover the "
                f"proxy's aggregators ({e.rpc_message}); use an archive node, or declare "
                "`aggregators = [{phase = N, address = \"0x…\"}]` and `decimals` for the feed "
                "in the deployments file") from None
        ctx.warn(f"feed {feed.name}: no node state at block {to_block} ({e.rpc_message}); "
                 f"using the {len(feed.aggregators)} declared phase aggregator(s), unverified")
        phases: list[tuple[int, str, int | None]] = [(p, a, None) for p, a in sorted(feed.aggregators)]
        ctx.state[("chainlink", source.key)] = (phases, feed.decimals)
        self._store_rules(ctx, feed, feed.decimals)
        self._store_phases(ctx, feed, phases, to_block)

    @staticmethod
    def _store_rules(ctx: RunContext, feed: Feed, decimals: int) -> None:
        """The feed's declared rules into ``raw.oracle_feeds``; a rerun with the same declaration
        writes nothing."""
        row = [ctx.chain_id, feed.proxy, feed.name, decimals, feed.deviation_bps, feed.heartbeat_s,
               feed.min_answer, feed.max_answer, feed.origin]
        stored = ctx.wh.con.execute(
            "SELECT chain_id, feed, feed_name, decimals, deviation_bps, heartbeat_s, min_answer, "
            "max_answer, declared_in FROM raw.oracle_feeds WHERE chain_id=? AND feed=?",
            [ctx.chain_id, feed.proxy]).fetchall()
        if [list(r) for r in stored] == [row]:
            return
        with ctx.wh.transaction() as con:
            con.execute("DELETE FROM raw.oracle_feeds WHERE chain_id=? AND feed=?",
                        [ctx.chain_id, feed.proxy])
            con.execute("INSERT INTO raw.oracle_feeds VALUES (?,?,?,?,?,?,?,?,?,?)", [*row, ctx.run_id])

    @staticmethod
    def _store_phases(ctx: RunContext, feed: Feed, phases: list[tuple[int, str, int | None]],
                      to_block: int) -> None:
        """Replace the feed's stored phases. When they change (a phase found since, or a phase's
        first block), the feed's stored intervals were read from other aggregators, or their
        rounds derived under other phase bounds: a new aggregator transmits before the proxy
        confirms it, so its rounds may lie in blocks stored before it was known, and the proxy
        reports its latest one from the switch on. Those intervals get the fingerprint of the
        aggregators they were read from (``meta.checkpoints.addresses_sha256``), so that the
        next ingest over them re-ingests them, as for a readdressed contract."""
        with ctx.wh.transaction() as con:
            old = [tuple(r) for r in con.execute(
                "SELECT phase_id, aggregator, first_block FROM raw.oracle_phases WHERE chain_id=? "
                "AND feed=? ORDER BY phase_id", [ctx.chain_id, feed.proxy]).fetchall()]
            if old == sorted(phases):
                return  # unchanged: a rerun writes nothing
            if old:
                read_from = addresses_sha256({"aggregator": sorted({str(a) for _, a, _ in old})})
                n = con.execute(
                    "SELECT coalesce(sum(to_block - from_block + 1), 0) FROM meta.checkpoints "
                    "WHERE chain_id=? AND dataset=? AND source=?",
                    [ctx.chain_id, NAME, feed.proxy]).fetchall()[0][0]
                if n:
                    con.execute("UPDATE meta.checkpoints SET addresses_sha256 = ? WHERE chain_id=? "
                                "AND dataset=? AND source=?",
                                [read_from, ctx.chain_id, NAME, feed.proxy])
                    ctx.warn(f"feed {feed.name}: its phases changed since its {int(n):,} stored "
                             f"block(s) were read (phases {[p[:2] for p in old]} then, now "
                             f"{[p[:2] for p in sorted(phases)]}): they are re-ingested by this or "
                             "the next ingest over them")
            con.execute("DELETE FROM raw.oracle_phases WHERE chain_id=? AND feed=?",
                        [ctx.chain_id, feed.proxy])
            for phase, agg, first in phases:
                con.execute("INSERT INTO raw.oracle_phases VALUES (?,?,?,?,?,?,?,?)",
                            [ctx.chain_id, feed.proxy, feed.name, phase, agg, first, to_block,
                             ctx.run_id])

    def _phase_id(self, ctx: RunContext, proxy: str, block: int) -> int | None:
        res = ctx.try_eth_call(proxy, SEL_PHASE_ID, block)
        if res is None or res in ("0x", ""):
            return None
        return _uint(_bytes(res, "phaseId()"), 16, "phaseId()")

    def _first_block_of_phase(self, ctx: RunContext, feed: Feed, phase: int,
                              hi: int) -> int | None:
        """First block with ``phaseId() >= phase``, by binary search over historical eth_calls.

        Returns None (and warns) when the node has no state that far back (not an archive node,
        or anvil's in-memory window): the rounds are still ingested, only the switch block is
        unknown. ``start_block - 1`` is taken as before the feed existed and never queried.
        """
        lo = feed.start_block - 1  # invariant: phaseId(lo) < phase <= phaseId(hi)
        try:
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if (self._phase_id(ctx, feed.proxy, mid) or 0) >= phase:
                    hi = mid
                else:
                    lo = mid
        except RpcResponseError as e:
            if not STATE_UNAVAILABLE.search(str(e)):
                raise
            ctx.warn(f"feed {feed.name}: the node has no state for historical eth_call "
                     f"({e.rpc_message}); phase {phase} start block left unknown (NULL). "
                     "Use an archive node to resolve phase switch blocks.")
            return None
        return hi

    def derived_inputs(self) -> frozenset[str] | None:
        """``raw.oracle_rounds`` is derived from ``AnswerUpdated`` (phases are found by
        eth_call, not from logs)."""
        return frozenset(t.spec.topic0 for t in self.EVENT_TABLES if t.spec.name == "AnswerUpdated")

    def root_roles(self, ctx: RunContext, source: Source) -> dict[str, list[str]]:
        phases, _ = ctx.state[("chainlink", source.key)]
        return {"aggregator": sorted({agg for _, agg, _ in phases})}

    def after_chunk(self, ctx: RunContext, source: Source, a: int, b: int) -> None:
        self.after_chunk_all(ctx, [source], a, b)

    def after_chunk_all(self, ctx: RunContext, sources: Sequence[Source], a: int, b: int) -> None:
        """``raw.oracle_rounds`` for every feed of the chunk in one statement (feeds in the
        given order, each by block and log index), then one 64-bit round id check."""
        con = ctx.wh.con
        rows = []
        for k, source in enumerate(sources):
            feed: Feed = source.payload
            phases, decimals = ctx.state[("chainlink", source.key)]
            rows += [f"({k}, {sql_str(source.key)}, {sql_str(feed.proxy)}, {sql_str(feed.name)}, "
                     f"{int(decimals)}, {int(p)}, {sql_str(agg)}, {_sql_block(lo)}, "
                     f"{_sql_block(hi)})" for p, agg, lo, hi in _phase_ranges(phases)]
        keys = [s.key for s in sources]
        marks = ", ".join("?" for _ in keys)
        # before deriving rows: a round id above 64 bits cannot form a proxy round id, an updatedAt
        # above 64 bits is no unix time (the cast would fail as an untyped DuckDB error)
        order = " ".join(f"WHEN {sql_str(key)} THEN {k}" for k, key in enumerate(keys))
        over = fetch_one(con.execute(
            f"SELECT block_number, log_index, round_id > 18446744073709551615 "
            f"FROM raw.chainlink_answer_updated WHERE chain_id=? "
            f"AND source IN ({marks}) AND block_number BETWEEN ? AND ? "
            f"AND (round_id > 18446744073709551615 OR updated_at > 18446744073709551615) "
            f"ORDER BY CASE source {order} END, block_number, log_index LIMIT 1",
            [ctx.chain_id, *keys, a, b]))
        if over:
            field, what = (("round_id", "aggregator round id exceeds 64 bits: cannot form a proxy round id")
                           if over[2] else ("updated_at", "updatedAt exceeds 64 bits: not a unix time"))
            raise DecodeError(what, block_number=over[0], log_index=over[1], field=field,
                              event="AnswerUpdated")
        if rows:
            con.execute(
                f"INSERT INTO raw.oracle_rounds SELECT au.chain_id, f.proxy, f.name, au.address, "
                f"f.p, au.round_id, (f.p::UHUGEINT << 64) | au.round_id, au.current, f.decimals, "
                f"au.current::DOUBLE / 10::DOUBLE ** f.decimals, "
                f"CAST(au.updated_at AS UBIGINT), b.timestamp_ts, au.block_number, au.block_hash, "
                f"au.tx_hash, au.tx_index, au.log_index, au.source, ? "
                f"FROM raw.chainlink_answer_updated au "
                f"JOIN (VALUES {', '.join(rows)}) f(k, source, proxy, name, decimals, p, agg, lo, hi) "
                f"ON f.source = au.source AND f.agg = au.address "
                f"AND (f.lo IS NULL OR au.block_number >= f.lo) "
                f"AND (f.hi IS NULL OR au.block_number < f.hi) "
                f"JOIN raw.blocks b ON b.chain_id = au.chain_id AND b.number = au.block_number "
                f"WHERE au.chain_id = ? AND au.source IN ({marks}) AND au.block_number BETWEEN ? "
                f"AND ? ORDER BY f.k, au.block_number, au.log_index",
                [ctx.run_id, ctx.chain_id, *keys, a, b])


def _phase_ranges(phases: Sequence[tuple[int, str, int | None]]
                  ) -> list[tuple[int, str, int | None, int | None]]:
    """(phase, aggregator, first block, first block of the next phase) of each phase: the blocks
    in which the proxy read that aggregator. A bound is None where a switch block is unknown."""
    ordered = sorted(phases)
    out = []
    for i, (p, agg, first) in enumerate(ordered):
        nxt = next((f for _, _, f in ordered[i + 1:] if f is not None), None)
        out.append((p, agg, first, nxt))
    return out


def _sql_block(b: int | None) -> str:
    return "NULL::UBIGINT" if b is None else f"{int(b)}::UBIGINT"


# The call results are one ABI word each, decoded here strictly (as eth_abi's strict decoder
# does: a short answer, or non-zero padding above the type's bits, is an error). Not importing
# eth_abi saves every `deficit ingest` process ~0.3-0.7 s of start-up.
def _word(data: bytes, what: str) -> int:
    if len(data) < 32:
        raise DecodeError(f"eth_call {what} returned {len(data)} bytes, expected a 32-byte word")
    return int.from_bytes(data[:32], "big")


def _uint(data: bytes, bits: int, what: str) -> int:
    v = _word(data, what)
    if v >> bits:
        raise DecodeError(f"eth_call {what} returned {v:#x}, which does not fit uint{bits}")
    return v


def _address(data: bytes, what: str) -> str:
    """The address (lower-case 0x-hex) in ``data``'s first word."""
    v = _word(data, what)
    if v >> 160:
        raise DecodeError(f"eth_call {what} returned {v:#x}, not an address (non-zero padding)")
    return "0x" + data[12:32].hex()


def _bytes(res: object, what: str) -> bytes:
    if not isinstance(res, str) or not res.startswith("0x"):
        raise DecodeError(f"eth_call {what} returned {res!r}, expected 0x-hex")
    return bytes.fromhex(res[2:])
