"""Reorg detection and rollback: re-verify the stored hash chain against the node.

Stored blocks are contiguous within each checkpoint interval of the ``blocks`` dataset and every
block is checked to link to its parent when written, so if the node agrees on the hash of an
interval's highest block it agrees on the whole interval. Each run therefore compares one hash per
stored interval (in one batch: intervals are not linked across their gaps; below the highest,
only those not yet final), at its highest block the node has (blocks stored above the node's
head are not evidence of a reorg: they are checked once the node has them); in the lowest
interval that mismatches it walks down in doubling windows to the highest block whose hash still
matches (the fork point),
then — in ONE transaction — deletes every row of every ``raw`` table above the fork, trims the
checkpoints, and records the reorg in ``meta.reorgs`` (depth, old and new hashes, when
detected). The engine then re-ingests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ChainDataError
from .warehouse import fetch_one, utcnow

if TYPE_CHECKING:
    from .engine import RunContext

__all__ = ["verify_and_rollback", "block_tables"]

def block_tables(ctx: RunContext) -> list[tuple[str, str]]:
    """(table, block column) of every raw table holding per-block rows for the chain."""
    rows = ctx.wh.con.execute(
        "SELECT table_name, list(column_name) FROM duckdb_columns() WHERE schema_name='raw' "
        "GROUP BY table_name ORDER BY table_name").fetchall()
    out = []
    for name, cols in rows:
        if "chain_id" not in cols:
            continue
        if name == "blocks":
            out.append((f"raw.{name}", "number"))
        elif name == "oracle_phases":
            out.append((f"raw.{name}", "discovered_at_block"))
        elif "block_number" in cols:
            out.append((f"raw.{name}", "block_number"))
    return out


def _node_hashes(ctx: RunContext, numbers: list[int]) -> dict[int, str | None]:
    res = ctx.rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
    return {n: (r["hash"].lower() if r else None) for n, r in zip(numbers, res, strict=True)}


def _known_hashes(ctx: RunContext, numbers: list[int], head: int) -> dict[int, str | None]:
    """The node's hashes of ``numbers`` (all at or below its reported ``head``). A block the node
    does not return although its head is above it (a load balancer's lagging backend, a node
    still syncing) says nothing about the stored one: it raises :class:`ChainDataError` instead of
    counting as a mismatch, which would delete good blocks and record a reorg that never
    happened."""
    got = _node_hashes(ctx, numbers)
    missing = [n for n in numbers if got[n] is None]
    if missing:
        raise ChainDataError(f"the node reports head {head} but returned no block {missing[0]}: an "
                             "inconsistent endpoint (e.g. a load-balanced provider whose backends "
                             "lag); the stored blocks cannot be checked against it, nothing was "
                             "changed; rerun, or use another endpoint")
    return got


def _below_replaced_interval(ctx: RunContext, lo: int, head: int,
                             intervals: list[tuple[int, int]]) -> int:
    """The fork point when every stored block of the interval starting at ``lo`` was replaced.

    Block ``lo - 1`` is not stored; it is the common ancestor when the stored block ``lo`` names
    it as parent with the node's hash. Otherwise the fork lies lower, in the gap down to the
    next stored interval, whose highest block matched (the check walks intervals from the top):
    that block is the highest one known to match. A replaced genesis block is no reorg: the node
    serves another chain under the same chain id (a restarted dev node), and rolling back would
    delete the whole chain's history; it raises :class:`ChainDataError` and changes nothing."""
    con = ctx.wh.con
    if lo == 0:
        stored = fetch_one(con.execute("SELECT hash FROM raw.blocks WHERE chain_id=? AND number=0",
                                       [ctx.chain_id]))
        node = _known_hashes(ctx, [0], head)[0]
        raise ChainDataError(
            f"chain {ctx.chain_id}: the node's genesis block is {node}, the stored one "
            f"{stored[0] if stored else None}: the node serves another chain under this chain id "
            "(e.g. a restarted dev node), not a reorg; nothing was changed. Use another warehouse "
            "(--db) for this chain")
    parent = fetch_one(con.execute("SELECT parent_hash FROM raw.blocks WHERE chain_id=? AND number=?",
                                   [ctx.chain_id, lo]))
    if parent is not None and _known_hashes(ctx, [lo - 1], head)[lo - 1] == parent[0]:
        return lo - 1
    below = [hi for _, hi in intervals if hi < lo]
    # nothing stored below: the fork is at lo - 1 or lower; lo - 1 is the highest it can be
    return max(below) if below else lo - 1


def verify_and_rollback(ctx: RunContext) -> tuple[int, int] | None:
    """Check stored hashes against the node; roll back above the fork point if they differ.

    Returns ``(fork_block, depth)`` of the rollback, or None when the stored chain matches.
    """
    con = ctx.wh.con
    intervals = ctx.wh.covered(ctx.chain_id, "blocks", "chain")
    if not intervals:
        return None
    fork: int | None = None
    lowest_bad_interval: tuple[int, int] | None = None
    # A node behind the warehouse (another provider, a lagging backend, blocks stored at another
    # node's head) has no block above its head: that says nothing about the stored ones, so each
    # interval is checked at its highest block the node has, and one wholly above the head is
    # left for a later run (a missing block used to count as a mismatch: the stored blocks above
    # the head were deleted and a reorg that never happened was recorded)
    head = int(ctx.rpc.call("eth_blockNumber", []), 16)
    ctx.verified_head = head  # every non-final stored block up to it is compared (or rolled back)
    # Every interval is compared, not only down to the first match: intervals are not linked to
    # one another, so a match above a gap says nothing below it. A range stored above a gap after
    # the chain reorganized below the gap (between a run's check and its chunks, or by a node
    # lagging at the check) matches, while the interval below holds orphaned blocks: they were
    # never found, and every run filling the gap failed on the link to them. Below the highest
    # interval, one whose compared block is flagged 'finalized' (final when written, or found
    # final after this check) is not asked for: it cannot change, and a node that no longer
    # serves old blocks (history expiry) would stop every run.
    checked = [(lo, min(hi, head)) for lo, hi in sorted(intervals, reverse=True) if lo <= head]
    ours_top: dict[int, tuple[str, str]] = {n: (h, f) for n, h, f in con.execute(
        "SELECT number, hash, finality_at_ingest FROM raw.blocks WHERE chain_id=? AND "
        "list_contains(?, number)", [ctx.chain_id, [hi for _, hi in checked]]).fetchall()}
    checked = [(lo, hi) for i, (lo, hi) in enumerate(checked)
               if i == 0 or ours_top.get(hi, ("", ""))[1] != "finalized"]
    tops = [hi for _, hi in checked]
    node_top = _known_hashes(ctx, tops, head) if tops else {}
    for lo, hi in checked:
        if hi not in ours_top or node_top[hi] != ours_top[hi][0]:
            lowest_bad_interval = (lo, hi)
    if lowest_bad_interval is None:
        return None
    lo, hi = lowest_bad_interval
    # walk down from hi in doubling windows to the highest matching block of this interval
    top, window = hi, 16
    while fork is None:
        start = max(lo, top - window + 1)
        nums = list(range(start, top + 1))
        ours: dict[int, str] = dict(con.execute(
            "SELECT number, hash FROM raw.blocks WHERE chain_id=? AND number BETWEEN ? AND ?",
            [ctx.chain_id, start, top]).fetchall())
        node = _known_hashes(ctx, nums, head)
        for n in reversed(nums):
            if node.get(n) is not None and node[n] == ours.get(n):
                fork = n
                break
        if fork is None:
            if start == lo:
                fork = _below_replaced_interval(ctx, lo, head, intervals)
                break
            top, window = start - 1, window * 2
    tip = fetch_one(con.execute("SELECT max(number) FROM raw.blocks WHERE chain_id=?", [ctx.chain_id]))
    assert tip is not None
    old_tip = int(tip[0])
    old = con.execute("SELECT number, hash FROM raw.blocks WHERE chain_id=? AND number > ? "
                      "ORDER BY number", [ctx.chain_id, fork]).fetchall()
    new = _node_hashes(ctx, [n for n, _ in old]) if len(old) <= 4096 else {}
    # stored final blocks the node replaced (those it still has unchanged are only deleted
    # because they lie above the fork; with more than 4096 blocks not fetched: all counted)
    old_hash = dict(old)
    final = [n for (n,) in con.execute(
        "SELECT number FROM raw.blocks WHERE chain_id=? AND number > ? AND finality_at_ingest = "
        "'finalized' ORDER BY number", [ctx.chain_id, fork]).fetchall()
        if new.get(n) != old_hash[n]]
    if final:
        ctx.warn(f"the reorg above block {fork} replaces {len(final)} block(s) flagged 'finalized' "
                 f"({final[0]}..{final[-1]}): the endpoint does not serve the chain they were "
                 "ingested from (another network under this chain id, a misbehaving provider), "
                 "or their finality (head minus 64 without a 'finalized' block) was wrong; "
                 "results computed on them counted them as final")
    with ctx.wh.transaction():
        removed = fetch_one(con.execute("SELECT count(*) FROM raw.logs WHERE chain_id=? AND "
                                        "block_number > ?", [ctx.chain_id, fork]))
        logs_removed = removed[0] if removed else 0
        for table, col in block_tables(ctx):
            con.execute(f"DELETE FROM {table} WHERE chain_id=? AND {col} > ?", [ctx.chain_id, fork])
        ctx.wh.truncate_covered(ctx.chain_id, fork)
        con.execute("INSERT INTO meta.reorgs VALUES (?,?,?,?,?,?,?,?,?)", [
            ctx.chain_id, utcnow(), ctx.run_id, fork, old_tip - fork, old_tip,
            [h for _, h in old], [new.get(n) for n, _ in old], logs_removed])
    ctx.info(f"reorg detected: {old_tip - fork} stored block(s) above {fork} replaced on the node; "
             f"rolled back {logs_removed} log(s) and will re-ingest")
    return fork, old_tip - fork
