"""The ingest run: finality watermark, reorg check, resumable chunk loop, one transaction a chunk.

Order of a run:

1. ``eth_chainId`` must equal the declared chain.
2. :func:`ingest.reorg.verify_and_rollback` re-verifies the stored hash chain (and rolls back
   above a fork, recording it in ``meta.reorgs``).
3. The watermark: by default the node's ``finalized`` block (fallback: head minus N
   confirmations); ``confirmations=N``; or ``head`` (the non-final tail is flagged in
   ``raw.blocks.finality_at_ingest``). Stored blocks flagged 'unfinalized' that are now at or
   below the final block, and at or below the head step 2 verified their hashes against, are
   marked 'finalized'.
4. Per dataset source, what is not yet covered by ``meta.checkpoints`` in the requested range
   under this version's fingerprint of what to fetch (``asked_sha256``: each role's topic0s, the
   tables written, :data:`ingest.version.INGEST_FORMAT`) and of the contracts the deployments
   give (``addresses_sha256``) is cut into aligned chunks; intervals stored under other
   fingerprints are re-ingested, and the summary says how many blocks, except those that lack
   only events this version added (same addresses and format; what a fingerprint asked is kept
   in ``meta.asked_sets``): there only the added events are fetched and written, beside the
   stored rows, with the interval's new checkpoint (the backfill, :func:`added_since`). For
   each chunk, blocks and logs are fetched (the next chunk's are fetched on a background thread
   while this one is written), then written with their
   checkpoints in one transaction: per dataset, one staging statement reads every source's and
   role's ``eth_getLogs`` arrays straight from their JSON bytes, then one INSERT per table. A
   chain that changes under the run (a log whose block hash disagrees, a parent hash that does
   not link) rolls the chunk back, re-verifies the chain and retries; if it keeps happening, the
   run stops with the typed error.

Killing the process at any instant loses at most the open chunk; the next run redoes it, so a
resumed run yields the same rows as an uninterrupted one (only ``run_id`` lineage differs).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .datasets import LOG_DATASETS, get_dataset
from .datasets.base import (
    LOGS,
    LogDataset,
    LogsBatch,
    MalformedLogsJson,
    Source,
    check_disjoint,
    stage_arrow,
    stage_json,
    write_stage,
)
from .datasets.blocks import BLOCKS, blocks_asked_sha256, fetch_blocks, write_blocks
from .datasets.chainlink import STATE_UNAVAILABLE
from .deployments import DeploymentSet
from .errors import (
    BrokenChainError,
    ChainDataError,
    ConfigError,
    InconsistentLogError,
    RpcResponseError,
    WarehouseLocked,
)
from .redact import redact_url
from .reorg import verify_and_rollback
from .rpc import JsonRpcClient
from .schema import addresses_sha256
from .version import code_version
from .warehouse import ASKED_SETS, CHECKPOINTS, REORGS, RUNS, Warehouse, fetch_one, utcnow

__all__ = ["IngestRequest", "IngestSummary", "Progress", "RunContext", "run_ingest",
           "configure_for_ingest", "finality_label",
           "new_run_id", "code_version", "resolve_block_at", "DEFAULT_CONFIRMATIONS"]

log = logging.getLogger("deficit.ingest")

DEFAULT_CONFIRMATIONS = 64  # ~2 epochs on Ethereum: the fallback when 'finalized' is unknown
MAX_CHUNK_RETRIES = 3


def new_run_id() -> str:
    """Time-ordered unique run id, e.g. ``20261125T171500Z-3f9a1c2e``."""
    return utcnow().strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)


@dataclass(frozen=True)
class IngestRequest:
    """What to ingest. ``finality``: 'finalized', 'head', or an int number of confirmations."""

    chain_id: int
    deployments: DeploymentSet
    datasets: tuple[str, ...] = ()  # empty: every dataset that has sources, plus blocks
    from_block: int | None = None
    to_block: int | None = None
    finality: str | int = "finalized"
    chunk_blocks: int = 1000
    #: rows (logs + block headers) a transaction aims for: consecutive ``chunk_blocks`` ranges are
    #: merged into one chunk while the last chunk's density says it stays under this (0: never)
    chunk_rows: int = 50_000
    endpoint_label: str = ""


@dataclass
class Progress:
    """Reported after every chunk (presentation is the CLI's job)."""

    blocks_done: int
    blocks_total: int
    logs: int
    elapsed_s: float
    chunk: tuple[int, int]


@dataclass
class IngestSummary:
    run_id: str
    chain_id: int
    from_block: int
    to_block: int
    watermark: str
    blocks_written: int = 0
    logs_written: int = 0
    chunks: int = 0
    reorgs: list[tuple[int, int]] = field(default_factory=list)
    elapsed_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    clipped_to: int | None = None
    #: blocks re-ingested per ``dataset:source`` because they were stored under another
    #: fingerprint of what to fetch (``meta.checkpoints.asked_sha256``); also said in ``warnings``
    reingested: dict[str, int] = field(default_factory=dict)
    #: per ``dataset:source``, intervals stored under declarations that lack only some events this
    #: version declares, where only those events are fetched (incremental backfill):
    #: ``{"intervals": n, "blocks": n, "events": [signature, ...]}``
    backfilled: dict[str, dict[str, Any]] = field(default_factory=dict)

    def backfill_line(self) -> str | None:
        """``backfilled N intervals for K added events (...)``, or None when nothing was."""
        if not self.backfilled:
            return None
        n = sum(v["intervals"] for v in self.backfilled.values())
        blocks = sum(v["blocks"] for v in self.backfilled.values())
        events = sorted({e for v in self.backfilled.values() for e in v["events"]})
        return (f"backfilled {n} interval{'s' * (n != 1)} ({blocks:,} blocks of "
                f"{', '.join(sorted(self.backfilled))}) for {len(events)} added "
                f"event{'s' * (len(events) != 1)}: {', '.join(events)}")


class RunContext:
    """What dataset hooks may use during a run."""

    def __init__(self, wh: Warehouse, rpc: JsonRpcClient, chain_id: int, run_id: str,
                 range_start: int, summary: IngestSummary):
        self.wh, self.rpc, self.chain_id, self.run_id = wh, rpc, chain_id, run_id
        self.range_start = range_start
        self.state: dict[Any, Any] = {}
        #: the node's head the last reorg check compared the stored blocks with: stored blocks
        #: above it were not verified (set by :func:`ingest.reorg.verify_and_rollback`)
        self.verified_head = -1
        self._summary = summary

    def warn(self, msg: str) -> None:
        log.warning(msg)
        self._summary.warnings.append(msg)

    def info(self, msg: str) -> None:
        log.info(msg)

    def note_reingested(self, key: str, blocks: int) -> None:
        """``blocks`` of dataset source ``key`` are re-ingested (stored under a stale fingerprint)."""
        self._summary.reingested[key] = blocks

    def note_backfilled(self, key: str, intervals: int, blocks: int, events: list[str]) -> None:
        """``intervals`` (``blocks`` blocks) of ``key`` get only the added ``events`` fetched."""
        self._summary.backfilled[key] = {"intervals": intervals, "blocks": blocks,
                                         "events": sorted(events)}

    def try_eth_call(self, to: str, data: str, block: int) -> str | None:
        """eth_call that returns None when the call reverts (e.g. a function that doesn't exist).
        A node without the block's state (geth's -32000 "missing trie node", ...) raises: that
        is not an answer about the contract."""
        try:
            res = self.rpc.call("eth_call", [{"to": to, "data": data}, hex(block)])
        except RpcResponseError as e:
            if STATE_UNAVAILABLE.search(e.rpc_message):
                raise
            if e.code in (3, -32000, -32015) or "revert" in str(e).lower():
                return None
            raise
        return res if isinstance(res, str) else None


def _block_number(rpc: JsonRpcClient, tag: str) -> int | None:
    try:
        blk = rpc.call("eth_getBlockByNumber", [tag, False])
    except RpcResponseError:
        return None
    return int(blk["number"], 16) if blk else None


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def resolve_block_at(rpc: JsonRpcClient, when: dt.datetime, *, first_at_or_after: bool,
                     warn: Callable[[str], None] | None = None) -> int:
    """Block number for a UTC time, by binary search on block timestamps.

    ``first_at_or_after``: the first block with timestamp >= when (for ``--from``); otherwise the
    last block with timestamp <= when (for ``--to``). A time after the head block's is an error
    for the former; for the latter it gives the head, and says through ``warn`` that blocks
    still to come may lie at or before the time.
    """
    if when.tzinfo is None:
        raise ConfigError(f"time {when.isoformat()} has no UTC offset; write e.g. "
                          f"{when.isoformat()}Z")
    # whole seconds, exactly: the last block at or before a time inside a second is the last one
    # of that second; the first block at or after it is the first one of the next second
    secs, rest = divmod(when - _EPOCH, dt.timedelta(seconds=1))
    target = secs + (1 if first_at_or_after and rest else 0)
    head = int(rpc.call("eth_blockNumber", []), 16)

    def ts(n: int) -> int:
        blk = rpc.call("eth_getBlockByNumber", [hex(n), False])
        if not blk:
            raise ChainDataError(f"the node reports head {head} but returned no block {n} while "
                                 f"resolving {when.isoformat()} to a block: an inconsistent "
                                 "endpoint (e.g. a load-balanced provider whose backends lag); "
                                 "rerun, or give a block number")
        return int(blk["timestamp"], 16)

    lo, hi = 0, head
    if first_at_or_after:
        if ts(head) < target:
            raise ConfigError(f"{when.isoformat()} is after the node's head block {head}")
        while lo < hi:
            mid = (lo + hi) // 2
            if ts(mid) >= target:
                hi = mid
            else:
                lo = mid + 1
        return lo
    if ts(0) > target:
        raise ConfigError(f"{when.isoformat()} is before the chain's genesis")
    if warn is not None and (head_ts := ts(head)) < target:
        warn(f"{when.isoformat()} is after the head block {head} (timestamp {head_ts}): the range "
             f"stops at block {head}, and blocks still to come may lie at or before that time")
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ts(mid) <= target:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _subtract(lo: int, hi: int, covered: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    out, cur = [], lo
    for a, b in sorted(covered):
        if b < cur or a > hi:
            continue
        if a > cur:
            out.append((cur, a - 1))
        cur = max(cur, b + 1)
        if cur > hi:
            break
    if cur <= hi:
        out.append((cur, hi))
    return out


def _intersect(a: int, b: int, ivs: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(max(a, x), min(b, y)) for x, y in ivs if x <= b and y >= a]


def configure_for_ingest(wh: Warehouse) -> None:
    """DuckDB settings for ingest: many small transactions, so checkpoint the WAL less often
    (one CHECKPOINT at the end of the run instead of one per commit), and one thread, which is
    faster for many small statements (both measured in ``bench/ingest_cpu.py``)."""
    wh.con.execute("SET checkpoint_threshold = '64MB'")
    wh.con.execute("SET threads = 1")


#: warehouse files an ingest of this process is writing (DuckDB's file lock keeps other
#: processes out, but a second connection to the same file in this process shares the database)
_INGESTING: set[str] = set()
_INGESTING_LOCK = threading.Lock()


@contextlib.contextmanager
def _ingest_lock(wh: Warehouse) -> Iterator[None]:
    """Hold the file for one ingest of this process; a second one stops at once."""
    if wh.path == ":memory:":  # each connection is its own database
        yield
        return
    key = os.path.realpath(wh.path)
    with _INGESTING_LOCK:
        if key in _INGESTING:
            raise WarehouseLocked(
                f"{wh.path} is being written by another ingest in this process: wait for it to "
                "finish, or use --db to choose another file")
        _INGESTING.add(key)
    try:
        yield
    finally:
        with _INGESTING_LOCK:
            _INGESTING.discard(key)


def run_ingest(wh: Warehouse, rpc: JsonRpcClient, req: IngestRequest,
               progress: Callable[[Progress], None] | None = None) -> IngestSummary:
    """Ingest ``req`` into ``wh``; returns a summary. Raises a typed :class:`IngestError`.

    One ingest at a time per warehouse file: another in this process (a second
    :class:`Warehouse` on the same file shares the database) raises :class:`WarehouseLocked`,
    as DuckDB's file lock does for another process."""
    with _ingest_lock(wh):
        return _run_ingest(wh, rpc, req, progress)


def _run_ingest(wh: Warehouse, rpc: JsonRpcClient, req: IngestRequest,
                progress: Callable[[Progress], None] | None) -> IngestSummary:
    t0 = time.monotonic()
    run_id = new_run_id()
    datasets: list[LogDataset] = []
    names = req.datasets or tuple(k for k in LOG_DATASETS)
    for n in names:
        if n != "blocks":
            datasets.append(get_dataset(n))
    sources: list[tuple[LogDataset, Source]] = [
        (d, s) for d in datasets for s in d.sources(req.deployments, req.chain_id)]
    if req.datasets and any(n != "blocks" for n in req.datasets) and not sources:
        raise ConfigError(f"no deployments or feeds for chain {req.chain_id} in datasets "
                          f"{list(req.datasets)}: pass --preset or --deployments")
    dset = req.deployments
    given = sorted({d.chain_id for d in dset.deployments} | {f.chain_id for f in dset.feeds})
    if given and not sources and any(n != "blocks" for n in names):
        # the presets / deployments files name other chains only: ingesting would silently skip
        # every one of them (and fetch this chain's headers from block 0)
        raise ConfigError(f"the deployments given are for chain(s) {given}, none for chain "
                          f"{req.chain_id}: check --chain (or the presets / deployments files)")
    if req.chunk_blocks < 1:
        raise ConfigError("--chunk-blocks must be >= 1")
    if req.chunk_rows < 0:
        raise ConfigError("--chunk-rows must be >= 0")

    configure_for_ingest(wh)
    tables = [RUNS, CHECKPOINTS, ASKED_SETS, REORGS, BLOCKS, LOGS]
    for d in LOG_DATASETS.values():
        tables += list(d().all_tables())
    wh.ensure(*tables)

    with wh.transaction() as con:
        con.execute("INSERT INTO meta.runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", [
            run_id, "ingest", req.chain_id,
            # a label, never a key: a URL given as the label is redacted (idempotent on labels)
            redact_url(req.endpoint_label) if "://" in req.endpoint_label else req.endpoint_label,
            sorted({"blocks"} | {f"{d.NAME}:{s.key}" for d, s in sources}),
            req.from_block, req.to_block, finality_label(req.finality), code_version(), utcnow(), None,
            "running", None])
    summary = IngestSummary(run_id, req.chain_id, 0, 0, finality_label(req.finality))
    try:
        _run(wh, rpc, req, run_id, sources, summary, progress, t0)
    except BaseException as e:
        msg = f"{type(e).__name__}: {e}"
        try:
            with wh.transaction() as con:
                con.execute("UPDATE meta.runs SET status='failed', finished_at=?, message=? "
                            "WHERE run_id=?", [utcnow(), msg[:2000], run_id])
        except Exception:  # the original error matters more than the bookkeeping
            log.debug("could not mark run %s failed", run_id)
        raise
    wh.con.execute("CHECKPOINT")
    summary.elapsed_s = time.monotonic() - t0
    with wh.transaction() as con:
        con.execute("UPDATE meta.runs SET status='ok', finished_at=?, message=?, from_block=?, "
                    "to_block=? WHERE run_id=?",
                    [utcnow(), f"{summary.blocks_written} blocks, {summary.logs_written} logs, "
                     f"{len(summary.reorgs)} reorg(s)", summary.from_block, summary.to_block,
                     run_id])
    return summary


def finality_label(finality: str | int) -> str:
    """The watermark rule as ``meta.runs.finality`` names it: 'finalized', 'head' or
    'confirmations:N' (a bare 'N' said nothing of what it counted)."""
    return f"confirmations:{finality}" if isinstance(finality, int) else str(finality)


def _watermark(rpc: JsonRpcClient, finality: str | int,
               warn: Callable[[str], None] | None = None) -> tuple[int, int, int]:
    """(highest block to ingest, highest final block, head). A node without a ``finalized``
    block stands in ``head - DEFAULT_CONFIRMATIONS`` for it, and says so through ``warn``."""
    head = int(rpc.call("eth_blockNumber", []), 16)
    finalized = _block_number(rpc, "finalized")
    if finalized is not None:
        # a load balancer may answer eth_blockNumber from a lagging backend: the chain's head
        # is at least its finalized block (else confirmations would be negative)
        head = max(head, finalized)
    final = finalized if finalized is not None else max(head - DEFAULT_CONFIRMATIONS, -1)
    if finalized is None and warn is not None:
        warn(f"the node reports no 'finalized' block: blocks up to head - {DEFAULT_CONFIRMATIONS} "
             f"confirmations ({final}) are taken as final"
             + (" (the watermark), and" if finality == "finalized" else ", and")
             + " flagged 'finalized' in raw.blocks.finality_at_ingest")
    if finality == "finalized":
        return final, final, head
    if finality == "head":
        return head, final, head
    if isinstance(finality, int) and finality >= 0:
        return max(head - finality, -1), final, head
    raise ConfigError(f"finality must be 'finalized', 'head' or a number of confirmations, "
                      f"got {finality!r}")


def _run(wh: Warehouse, rpc: JsonRpcClient, req: IngestRequest, run_id: str,
         sources: list[tuple[LogDataset, Source]], summary: IngestSummary,
         progress: Callable[[Progress], None] | None, t0: float) -> None:
    chain = req.chain_id
    rpc.check_chain_id(chain)
    # default: the sources' first start block; with no log dataset in the run (blocks alone),
    # the given deployments' and feeds' on this chain (as --from's help says), else genesis
    starts = [s.start_block for _, s in sources] or (
        [d.start_block for d in req.deployments.deployments if d.chain_id == chain]
        + [f.start_block for f in req.deployments.feeds if f.chain_id == chain])
    lo = req.from_block if req.from_block is not None else min(starts, default=0)
    ctx = RunContext(wh, rpc, chain, run_id, lo, summary)
    elsewhere = ([f"deployment {d.name!r} (chain {d.chain_id})" for d in req.deployments.deployments
                  if d.chain_id != chain]
                 + [f"feed {f.name!r} (chain {f.chain_id})" for f in req.deployments.feeds
                    if f.chain_id != chain])
    if elsewhere:  # a file without [meta] may mix chains; a typo'd chain_id drops an entry
        ctx.warn(f"skipped, not on chain {chain}: {', '.join(elsewhere[:10])}"
                 + (f" and {len(elsewhere) - 10} more" if len(elsewhere) > 10 else ""))
    rep = verify_and_rollback(ctx)
    if rep:
        summary.reorgs.append(rep)
    upto, final, head = _watermark(rpc, req.finality, ctx.warn)
    # blocks stored as 'unfinalized' that are now final: the reorg check above verified the
    # stored hash chain against the node up to the head it saw, so those up to it are the final
    # blocks. Not above it: an endpoint whose eth_blockNumber lags behind its 'finalized' tag (a
    # load balancer's backends) would have every stored block up to 'finalized' marked final,
    # blocks orphaned since they were stored with them; a later run verifies and marks them
    upgrade_to = min(final, ctx.verified_head)
    if upgrade_to >= 0:
        with wh.transaction() as con:
            con.execute("UPDATE raw.blocks SET finality_at_ingest = 'finalized' WHERE chain_id = ? "
                        "AND number <= ? AND finality_at_ingest <> 'finalized'", [chain, upgrade_to])
    hi = req.to_block if req.to_block is not None else upto
    if hi > upto:
        summary.clipped_to = upto
        ctx.warn(f"--to {hi} is above the node's head {upto}; stopping at {upto}"
                 if req.finality == "head" else
                 f"--to {hi} is above the {finality_label(req.finality)} watermark {upto}; "
                 f"stopping at {upto} (--head, or --confirmations N with a smaller N, ingests "
                 "non-final blocks; they are flagged in raw.blocks.finality_at_ingest)")
        hi = upto
    if lo > hi:
        raise ConfigError(f"nothing to ingest: from block {lo} is above the last ingestible "
                          f"block {hi} (finality {req.finality})")
    summary.from_block, summary.to_block = lo, hi
    for d, s in sources:
        if max(lo, s.start_block) <= hi:
            d.prepare(ctx, s, hi)
    check_disjoint([(f"{d.NAME}:{s.key}", d.root_roles(ctx, s)) for d, s in sources
                    if max(lo, s.start_block) <= hi])

    # what this version asks for is recorded first (meta.asked_sets: the text each checkpoint's
    # fingerprint hashes), so that a later version can tell which events it lacks
    with wh.transaction():
        for d in {d.NAME: d for d, _ in sources}.values():
            wh.record_asked(asked_of(ctx, d), d.NAME, d.asked_doc(), run_id)
    # what this version asks for: an interval stored under other fingerprints (a declaration
    # added or changed since, another INGEST_FORMAT, a contract added or readdressed in the
    # deployments, or NULL: not recorded) is not covered, and is re-ingested (the chunk writes
    # replace its rows), unless it lacks only events this version added (same addresses and
    # format): then only those are fetched there (the backfill, ``todo_bf``)
    todo_blocks = _todo(ctx, "blocks", "chain", lo, hi, blocks_asked_sha256(), NO_ADDRESSES)
    todo_bf: dict[tuple[str, str], list[_Backfill]] = {}
    todo_src = {(d.NAME, s.key): _todo(ctx, d.NAME, s.key, max(lo, s.start_block), hi,
                                       asked_of(ctx, d), d.addresses_sha256(s),
                                       ds=d, backfill=todo_bf.setdefault((d.NAME, s.key), []))
                for d, s in sources}
    size = req.chunk_blocks
    # the plan's grid: aligned cells of ``size`` blocks with something to do (the same cells
    # whatever was done before, so a resumed run redoes exactly the unfinished ones)
    starts = sorted({x - x % size for a, b in todo_blocks + [iv for v in todo_src.values()
                                                               for iv in v]
                     + [(x, y) for v in todo_bf.values() for x, y, _ in v]
                     for x in range(a - a % size, b + 1, size)})
    total = sum(min(cs + size - 1, hi) - max(cs, lo) + 1 for cs in starts)

    def plan(i: int, cells: int) -> tuple[int, _Plan]:
        """The chunk of up to ``cells`` contiguous cells from ``starts[i]``; (next index, plan)."""
        j = i + 1
        while j < len(starts) and j - i < cells and starts[j] == starts[j - 1] + size:
            j += 1
        a, b = max(starts[i], lo), min(starts[j - 1] + size - 1, hi)
        src_ivs = [(d, s, _intersect(a, b, todo_src[(d.NAME, s.key)])) for d, s in sources]
        bf_ivs = [(d, s, [(max(a, x), min(b, y), added) for x, y, added in todo_bf[(d.NAME, s.key)]
                          if x <= b and y >= a]) for d, s in sources]
        return j, (a, b, _intersect(a, b, todo_blocks), [(d, s, ivs) for d, s, ivs in src_ivs if ivs],
                   [(d, s, ivs) for d, s, ivs in bf_ivs if ivs])

    done = 0
    last = (0, 0)  # rows and blocks of the last chunk written: the next one is sized from them
    # While chunk k is written, chunk k+1's headers and root logs are fetched in a background
    # thread (the node works and the socket waits while DuckDB writes; both release the GIL).
    # So chunk k+1 is sized before chunk k is written: from the rows per block of chunk k-1
    # (recent, not the average since the start, which lags far behind a density that rises
    # mid-range, e.g. when a source starts, and keeps chunks several times too large).
    i, cur_plan = plan(0, 1) if starts else (0, None)
    nxt = _Prefetch(ctx, *cur_plan[2:]) if cur_plan else None
    while cur_plan is not None:
        a, b, blocks_ivs, src_ivs, bf_ivs = cur_plan
        cur, next_plan = nxt, None
        if i < len(starts):
            i, next_plan = plan(i, merge_cells(req.chunk_rows, size, *last))
        nxt = _Prefetch(ctx, *next_plan[2:]) if next_plan else None
        for attempt in range(MAX_CHUNK_RETRIES + 1):
            try:
                nlogs = _chunk(ctx, blocks_ivs, src_ivs, final, head, bf_ivs,
                               prefetched=cur.result() if attempt == 0 and cur else None)
                break
            except (InconsistentLogError, BrokenChainError) as e:
                if attempt == MAX_CHUNK_RETRIES:
                    raise
                ctx.warn(f"blocks {a}..{b}: {e}; re-verifying the chain and retrying")
                rep = verify_and_rollback(ctx)
                if rep:
                    summary.reorgs.append(rep)
                    # everything above the fork must be redone, including earlier chunks
                    raise ChainDataError(
                        f"the chain reorganized below block {a} during the run (fork at "
                        f"{rep[0]}); rerun `deficit ingest` to re-ingest from there") from e
        summary.chunks += 1
        nblocks = sum(y - x + 1 for x, y in blocks_ivs)
        summary.blocks_written += nblocks
        done += b - a + 1
        last = (nlogs + nblocks, b - a + 1)
        summary.logs_written += nlogs
        if progress:
            progress(Progress(done, total, summary.logs_written, time.monotonic() - t0, (a, b)))
        cur_plan = next_plan


def asked_of(ctx: RunContext, d: LogDataset) -> str:
    """``d``'s fingerprint (:meth:`LogDataset.asked_sha256`), computed once per run."""
    key = ("asked_sha256", d.NAME)
    if key not in ctx.state:
        ctx.state[key] = d.asked_sha256()
    fp: str = ctx.state[key]
    return fp


#: the addresses fingerprint of a dataset given no addresses (blocks; feeds, whose aggregators
#: are discovered)
NO_ADDRESSES = addresses_sha256({})


#: a stored interval's part to backfill: (from, to, the topic0s to fetch by role)
_Backfill = tuple[int, int, tuple[tuple[str, tuple[str, ...]], ...]]


def added_since(ctx: RunContext, d: LogDataset, asked: str | None) -> dict[str, tuple[str, ...]] | None:
    """The topic0s by role that ``d`` asks for beyond what an interval stored under fingerprint
    ``asked`` did, when that is all that differs (:meth:`LogDataset.added_topics`); None when the
    interval must be re-ingested whole (another difference, or what it asked is unknown: NULL,
    or a fingerprint neither recorded in ``meta.asked_sets`` nor this version's less one event)."""
    if asked is None:
        return None
    key = ("added_since", d.NAME, asked)
    if key not in ctx.state:
        doc = ctx.wh.asked_doc(asked)
        if doc is None:
            ek = ("earlier_docs", d.NAME)
            if ek not in ctx.state:
                ctx.state[ek] = d.earlier_docs()
            doc = ctx.state[ek].get(asked)
        ctx.state[key] = None if doc is None else d.added_topics(doc)
    out: dict[str, tuple[str, ...]] | None = ctx.state[key]
    return out


def _todo(ctx: RunContext, dataset: str, source: str, lo: int, hi: int,
          asked: str, addresses: str, *, ds: LogDataset | None = None,
          backfill: list[_Backfill] | None = None) -> list[tuple[int, int]]:
    """The blocks of [lo, hi] that ``dataset``'s ``source`` lacks under fingerprints ``asked``
    (declarations) and ``addresses`` (contracts given); those stored under other ones are
    counted in the run's summary and said in a warning (they are re-ingested). With ``backfill``
    (and the dataset, ``ds``), the stored parts under the same addresses whose
    declarations lack only events this version added (:func:`added_since`) are appended there
    instead, said in the summary (``backfilled``), and not re-ingested."""
    if lo > hi:
        return []
    d = ds
    stored = ctx.wh.checkpoints(ctx.chain_id, dataset, source)
    parts = [(x, y, f, g) for a, b, f, g in stored if (f, g) != (asked, addresses)
             for x, y in _intersect(a, b, [(lo, hi)])]
    bf: list[tuple[int, int, dict[str, tuple[str, ...]]]] = []
    if backfill is not None and d is not None:
        for x, y, f, g in parts:
            added = added_since(ctx, d, f) if g == addresses else None
            if added is not None:
                bf.append((x, y, added))
                backfill.append((x, y, tuple(sorted(added.items()))))
    if bf:
        events = sorted({d.event_of(t) for _, _, ad in bf for ts in ad.values() for t in ts}
                        ) if d is not None else []
        n = sum(y - x + 1 for x, y, _ in bf)
        ctx.note_backfilled(f"{dataset}:{source}", len(bf), n, events)
        ctx.info(f"{n:,} block(s) of {dataset}:{source} in {len(bf)} interval(s) are backfilled "
                 f"with {len(events)} event(s) this version declares and they lack "
                 f"({', '.join(events)}); only those are fetched there")
    done = [(a, b) for a, b, f, g in stored if (f, g) == (asked, addresses)] + [
        (x, y) for x, y, _ in bf]
    todo = _subtract(lo, hi, done)
    stale = [p for p in parts if (p[0], p[1]) not in {(x, y) for x, y, _ in bf}]
    if stale:
        n = sum(y - x + 1 for x, y, _, _ in stale)
        ctx.note_reingested(f"{dataset}:{source}", n)
        spans = ", ".join(f"{x}..{y}" for x, y, _, _ in stale[:5]) + (
            f" and {len(stale) - 5} more" if len(stale) > 5 else "")
        why = []
        if any(f is None for _, _, f, _ in stale):
            why.append("stored before deficit recorded what each ingest asks for (NULL fingerprint)")
        if any(f is not None and f != asked for _, _, f, _ in stale):
            why.append("stored under other declarations of what to fetch (a newly declared event, "
                       "role or table, or another ingest format) than this version's")
        if any(f == asked and g != addresses for _, _, f, g in stale):
            recorded = all(g is not None for _, _, f, g in stale if f == asked)
            why.append("stored with other contract addresses than this run reads (a "
                       "deployment's role added or readdressed, or a feed's phases changed)"
                       if recorded else
                       "stored without a record of the contract addresses asked for")
        ctx.warn(f"{n:,} block(s) of {dataset}:{source} ({spans}) are re-ingested: they were "
                 + "; ".join(why))
    return todo


#: at most this many ``chunk_blocks`` cells in one chunk (a bound on a transaction's block span
#: when the last chunk's density is near zero, e.g. a re-run whose headers are all stored); and
#: never more blocks than ``chunk_rows``, since each block may still need its header row
MAX_MERGED_CELLS = 64


def merge_cells(chunk_rows: int, size: int, rows: int, blocks: int) -> int:
    """How many ``size``-block cells the next chunk takes: as many as keep it near
    ``chunk_rows`` rows at the ``rows / blocks`` density of the last chunk (1 before anything was
    seen or with ``chunk_rows=0``; at most :data:`MAX_MERGED_CELLS`, and at most ``chunk_rows``
    blocks: the last chunk may have written ~nothing because its headers were stored, while the
    next one needs every header, e.g. a re-run adding a dataset that goes past the stored range).

    Why: a transaction's fixed cost (the COMMIT's WAL write and sync, the per-statement costs
    of ~20 tables) dominates small chunks. Measured in ``bench/ingest_cpu.py`` (one thread):
    ~21-31k logs/s at 10k-log chunks, ~46k at 50k, ~56k at 100k. Chunks stay on the grid of
    ``size``-block cells, so resuming and re-running redo the same ranges."""
    if chunk_rows <= 0 or blocks <= 0:
        return 1
    cap = max(1, min(MAX_MERGED_CELLS, chunk_rows // size))
    per_cell = rows * size / blocks
    if per_cell <= 0:
        return cap
    return max(1, min(cap, int(chunk_rows // per_cell)))


_SrcIvs = list[tuple[LogDataset, Source, list[tuple[int, int]]]]
_BfIvs = list[tuple[LogDataset, Source, list[_Backfill]]]
_Plan = tuple[int, int, list[tuple[int, int]], _SrcIvs, _BfIvs]

#: a chunk's fetched headers; its root-role logs by (dataset, range); and its backfills' root-role
#: logs by (dataset, range): (dataset, [(source, topic0s to fetch by role)], batches)
_Fetched = tuple[list[tuple[int, int, list[dict[str, Any]]]],
                 dict[tuple[str, int, int], tuple[LogDataset, list[Source], list[LogsBatch]]],
                 dict[tuple[str, int, int], tuple[LogDataset, list[tuple[Source, dict[str, tuple[str, ...]]]],
                                                  list[LogsBatch]]]]


class _Prefetch:
    """One chunk's fetch (headers and root logs, :func:`_fetch_root`) on a daemon thread.

    A daemon, so that an interrupted or failed run never waits for a fetch nobody needs. Its
    result is used once, for the chunk's first attempt; a retry fetches again.
    """

    def __init__(self, ctx: RunContext, blocks_ivs: list[tuple[int, int]], src_ivs: _SrcIvs,
                 bf_ivs: _BfIvs):
        self._value: _Fetched | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(ctx, blocks_ivs, src_ivs, bf_ivs),
                                        name="deficit-prefetch", daemon=True)
        self._thread.start()

    def _run(self, ctx: RunContext, blocks_ivs: list[tuple[int, int]], src_ivs: _SrcIvs,
             bf_ivs: _BfIvs) -> None:
        try:
            self._value = _fetch_root(ctx, blocks_ivs, src_ivs, bf_ivs, raw=True)
        except BaseException as e:  # handed to the main thread, which raises it
            self._error = e

    def result(self) -> _Fetched:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


def _chunk(ctx: RunContext, blocks_ivs: list[tuple[int, int]], src_ivs: _SrcIvs,
           final: int, head: int, bf_ivs: _BfIvs | None = None,
           prefetched: _Fetched | None = None) -> int:
    """Fetch and write one chunk in one transaction; returns the number of logs written.

    Logs take the fast path (JSON bytes read by DuckDB, :meth:`JsonRpcClient.get_logs_raw`);
    if DuckDB cannot read an answer as JSON (a corrupt body that still looked complete), the
    chunk is rolled back and redone through parsed dicts, whose fetch retries corrupt bodies.
    ``prefetched``: the chunk's headers and root logs, already fetched (:class:`_Prefetch`).
    """
    # a chunk allocates many short-lived, acyclic objects: the cyclic garbage collector would
    # rescan them over and over, so it waits
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        try:
            return _chunk_inner(ctx, blocks_ivs, src_ivs, bf_ivs or [], final, head, raw=True,
                                prefetched=prefetched)
        except MalformedLogsJson as e:
            ctx.info(f"re-reading the chunk through the parsed path: {e}")
            return _chunk_inner(ctx, blocks_ivs, src_ivs, bf_ivs or [], final, head, raw=False)
    finally:
        if gc_was_enabled:
            gc.enable()


def _fetch_root(ctx: RunContext, blocks_ivs: list[tuple[int, int]], src_ivs: _SrcIvs,
                bf_ivs: _BfIvs, *, raw: bool) -> _Fetched:
    """A chunk's block headers, and its root-role logs grouped by (dataset, range): every
    declared event over the ranges to (re-)ingest, the added ones over the ranges to backfill."""
    rpc = ctx.rpc
    fetched_blocks = [(a, b, fetch_blocks(rpc, a, b)) for a, b in blocks_ivs]
    # one write per dataset and range for all its sources and roles (few, large statements)
    groups: dict[tuple[str, int, int], tuple[LogDataset, list[Source], list[LogsBatch]]] = {}
    for d, s, ivs in src_ivs:
        roles = d.root_roles(ctx, s)
        for a, b in ivs:
            g = groups.setdefault((d.NAME, a, b), (d, [], []))
            g[1].append(s)
            g[2].extend(_fetch_batches(rpc, d, s, roles, a, b, raw))
    bf_groups: dict[tuple[str, int, int], tuple[LogDataset, list[tuple[Source, dict[str, tuple[str, ...]]]],
                                                list[LogsBatch]]] = {}
    for d, s, bivs in bf_ivs:
        roles = d.root_roles(ctx, s)
        for a, b, added in bivs:
            topics = dict(added)
            bg = bf_groups.setdefault((d.NAME, a, b), (d, [], []))
            bg[1].append((s, topics))
            bg[2].extend(_fetch_batches(rpc, d, s, roles, a, b, raw, topics))
    return fetched_blocks, groups, bf_groups


def _chunk_inner(ctx: RunContext, blocks_ivs: list[tuple[int, int]], src_ivs: _SrcIvs,
                 bf_ivs: _BfIvs, final: int, head: int, *, raw: bool,
                 prefetched: _Fetched | None = None) -> int:
    rpc, wh, chain = ctx.rpc, ctx.wh, ctx.chain_id
    fetched_blocks, groups, bf_groups = prefetched or _fetch_root(ctx, blocks_ivs, src_ivs,
                                                                  bf_ivs, raw=raw)
    nlogs = 0
    with wh.transaction() as con:
        for a, b, blocks in fetched_blocks:
            con.execute("DELETE FROM raw.blocks WHERE chain_id=? AND number BETWEEN ? AND ?",
                        [chain, a, b])
            write_blocks(con, blocks, chain_id=chain, run_id=ctx.run_id, final_upto=final,
                         head=head)
            wh.add_covered(chain, "blocks", "chain", a, b, ctx.run_id, blocks_asked_sha256(),
                           NO_ADDRESSES)
        for (_, a, b), (d, srcs, batches) in groups.items():
            # Range replace. Decoded and derived rows are only ever written together with their
            # raw.logs rows, so when raw.logs holds nothing for the range neither do they.
            keys = [s.key for s in srcs]
            stale = {r[0] for r in con.execute(
                "SELECT DISTINCT source FROM raw.logs WHERE chain_id=? AND source IN "
                f"({', '.join('?' for _ in keys)}) AND block_number BETWEEN ? AND ?",
                [chain, *keys, a, b]).fetchall()}
            for s in srcs:
                if s.key in stale:
                    for t in [LOGS.fqn] + [t.table.fqn for t in d.EVENT_TABLES] + [
                            t.fqn for t in d.DERIVED_TABLES if "source" in t.column_names()]:
                        con.execute(f"DELETE FROM {t} WHERE chain_id=? AND source=? AND "
                                    f"block_number BETWEEN ? AND ?", [chain, s.key, a, b])
            nlogs += _write_batches(ctx, d, batches, raw)
            found: list[LogsBatch] = []
            for s in srcs:
                roles = d.discovered_roles(ctx, s, a, b)
                if roles:
                    found.extend(_fetch_batches(rpc, d, s, roles, a, b, raw))
            nlogs += _write_batches(ctx, d, found, raw)
            d.after_chunk_all(ctx, srcs, a, b)
            for s in srcs:
                wh.add_covered(chain, d.NAME, s.key, a, b, ctx.run_id, asked_of(ctx, d),
                               d.addresses_sha256(s))
        for (_, a, b), (d, items, batches) in bf_groups.items():
            # Backfill: the stored rows stay; the added events' logs join them (raw.logs and
            # their typed tables; no derived row or discovered address depends on them,
            # LogDataset.added_topics), then the interval's checkpoint takes this version's
            # fingerprint. Tokens are found as a full ingest finds them: from the stored
            # ReserveInitialized rows, which the backfill does not change.
            nlogs += _write_batches(ctx, d, batches, raw, added=True)
            found = []
            for s, topics in items:
                roles = d.discovered_roles(ctx, s, a, b)
                if roles:
                    found.extend(_fetch_batches(rpc, d, s, roles, a, b, raw, topics))
            nlogs += _write_batches(ctx, d, found, raw, added=True)
            for s, _ in items:
                wh.add_covered(chain, d.NAME, s.key, a, b, ctx.run_id, asked_of(ctx, d),
                               d.addresses_sha256(s))
    return nlogs


def _fetch_batches(rpc: JsonRpcClient, d: LogDataset, s: Source, roles: dict[str, list[str]],
                   a: int, b: int, raw: bool,
                   only: dict[str, tuple[str, ...]] | None = None) -> list[LogsBatch]:
    """The logs of ``s``'s contracts in blocks [a, b], one batch per role (and span); with
    ``only``, just those topic0s by role (a backfill)."""
    out: list[LogsBatch] = []
    for role, addrs in sorted(roles.items()):
        topics = d.topics_for(role) if only is None else list(only.get(role, ()))
        if not (addrs and topics):
            continue
        asked, t0s = tuple(addrs), tuple(topics)  # every log is checked against the request
        if raw:
            out.extend(LogsBatch(s.key, role, p.start, p.end, body=p.body, addresses=asked,
                                 topic0s=t0s)
                       for p in rpc.get_logs_raw(a, b, addrs, [topics]))
        else:
            logs = rpc.get_logs(a, b, addrs, [topics])
            if logs:
                out.append(LogsBatch(s.key, role, a, b, logs=logs, addresses=asked, topic0s=t0s))
    return out


def _write_batches(ctx: RunContext, d: LogDataset, batches: list[LogsBatch], raw: bool,
                   added: bool = False) -> int:
    """Stage and write ``batches``; ``added``: a backfill's, which must not be stored already
    (their events were not asked for when the interval was stored)."""
    if not batches:
        return 0
    con = ctx.wh.con
    n = stage_json(con, batches) if raw else stage_arrow(con, batches)
    if not n:
        return 0
    if added:
        span = fetch_one(con.execute("SELECT min(block_number), max(block_number) FROM _stage"))
        assert span is not None
        # constant bounds, so the scan of raw.logs reads only the blocks' row groups
        have = fetch_one(con.execute(
            "SELECT s.block_number, s.log_index, s.source FROM _stage s JOIN raw.logs l ON "
            "l.chain_id = ? AND l.block_number = s.block_number AND l.log_index = s.log_index "
            "WHERE l.block_number BETWEEN ? AND ? ORDER BY 1, 2 LIMIT 1",
            [ctx.chain_id, span[0], span[1]]))
        if have:
            raise ChainDataError(
                f"block {have[0]} log index {have[1]} ({d.NAME}:{have[2]}): a log of an event "
                "being backfilled is stored already, though its interval's fingerprint says it "
                "was not asked for; re-ingest the range into a new --db file")
    return write_stage(con, chain_id=ctx.chain_id, dataset=d.NAME, run_id=ctx.run_id,
                       event_tables=d.EVENT_TABLES)
