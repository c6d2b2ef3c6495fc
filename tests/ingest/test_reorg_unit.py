"""verify_and_rollback against a scripted node (no chain needed): what is a reorg and what is not;
and what a run records of its finality rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ingest.datasets.base import LOGS
from ingest.datasets.blocks import BLOCKS
from ingest.deployments import DeploymentSet
from ingest.engine import IngestRequest, IngestSummary, RunContext, run_ingest
from ingest.errors import ChainDataError
from ingest.reorg import verify_and_rollback
from ingest.rpc import JsonRpcClient
from ingest.transports import HttpTransport
from ingest.warehouse import CHECKPOINTS, REORGS, Warehouse

CHAIN = 31337


def _h(n: int, fork: str = "") -> str:
    return "0x" + f"{fork}{n:x}".rjust(64, "0")


class Node:
    """A node whose chain is blocks 0..head with hashes ``_h(n)``, except ``_h(n, 'f')`` from
    ``forked_from`` on."""

    def __init__(self, head: int, forked_from: int | None = None):
        self.head, self.forked_from = head, forked_from

    def _block(self, n: int) -> dict[str, Any] | None:
        if n > self.head:
            return None
        fork = "f" if self.forked_from is not None and n >= self.forked_from else ""
        return {"number": hex(n), "hash": _h(n, fork)}

    def call(self, method: str, params: list[Any]) -> Any:
        if method == "eth_blockNumber":
            return hex(self.head)
        assert method == "eth_getBlockByNumber", method
        return self._block(int(params[0], 16))

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        return [self.call(m, p) for m, p in calls]


def _warehouse(tmp: Path, top: int, intervals: list[tuple[int, int]] | None = None) -> Warehouse:
    wh = Warehouse(tmp / "w.duckdb")
    wh.ensure(BLOCKS, LOGS, CHECKPOINTS, REORGS)
    with wh.transaction() as con:
        for lo, hi in intervals or [(0, top)]:
            for n in range(lo, hi + 1):
                con.execute("INSERT INTO raw.blocks VALUES "
                            "(?, ?, ?, ?, 0, NULL, 0, 0, '0x', 0, 'unfinalized', 0, 'r0')",
                            [CHAIN, n, _h(n), _h(n - 1) if n else _h(0, "e")])
            wh.add_covered(CHAIN, "blocks", "chain", lo, hi, "r0")
    return wh


def _verify(wh: Warehouse, node: Node) -> tuple[int, int] | None:
    ctx = RunContext(wh, node, CHAIN, "r1", 0, IngestSummary("r1", CHAIN, 0, 0, "head"))  # type: ignore[arg-type]
    return verify_and_rollback(ctx)


def test_a_node_behind_the_warehouse_is_not_a_reorg(tmp_path: Path) -> None:
    """Blocks 0..20 stored (ingested at the head of another node); this node's head is 15 and it
    agrees on every block it has. Nothing shows the stored 16..20 to be wrong: they stay, and no
    reorg is recorded. Before, the node's missing blocks counted as mismatches: 16..20 were
    deleted and meta.reorgs recorded a reorg of depth 5 that never happened (an input of the
    finality metric's reorg exposure) (fails before)."""
    wh = _warehouse(tmp_path, 20)
    assert _verify(wh, Node(15)) is None
    assert wh.con.execute("SELECT count(*) FROM meta.reorgs").fetchall()[0][0] == 0
    assert wh.con.execute("SELECT count(*), max(number) FROM raw.blocks").fetchall()[0] == (21, 20)
    assert wh.covered(CHAIN, "blocks", "chain") == [(0, 20)]
    wh.close()


def test_a_reorg_below_a_lagging_nodes_head_is_still_found(tmp_path: Path) -> None:
    """The same node, whose chain differs from block 12 on: the fork is block 11, everything
    above it goes (16..20 with it: they descend from the replaced blocks)."""
    wh = _warehouse(tmp_path, 20)
    assert _verify(wh, Node(15, forked_from=12)) == (11, 9)
    fork, depth, old, new = wh.con.execute(
        "SELECT fork_block, depth, old_hashes, new_hashes FROM meta.reorgs").fetchall()[0]
    assert (fork, depth) == (11, 9)
    assert old == [_h(n) for n in range(12, 21)]
    assert new == [_h(n, "f") for n in range(12, 16)] + [None] * 5
    assert wh.con.execute("SELECT max(number) FROM raw.blocks").fetchall()[0][0] == 11
    assert wh.covered(CHAIN, "blocks", "chain") == [(0, 11)]
    wh.close()


def test_a_wholly_replaced_interval_forks_where_its_parent_links_or_below_the_gap(tmp_path: Path) -> None:
    """Blocks 0..10 and 20..25 stored (two ingests, a gap between). When the node replaced every
    stored block of 20..25, the fork is 19 only if the stored block 20's parent is the node's 19;
    when the node's chain differs from block 15 on, the highest block known to match is the stored
    10, and the reorg is 15 heights deep, not 6 (before: fork 19, depth 6 in both cases)."""
    wh = _warehouse(tmp_path, 25, [(0, 10), (20, 25)])
    assert _verify(wh, Node(25, forked_from=20)) == (19, 6)
    wh.close()
    (tmp_path / "b").mkdir()
    wh = _warehouse(tmp_path / "b", 25, [(0, 10), (20, 25)])
    assert _verify(wh, Node(25, forked_from=15)) == (10, 15)
    fork, depth, old = wh.con.execute("SELECT fork_block, depth, old_hashes FROM meta.reorgs").fetchall()[0]
    assert (fork, depth, old) == (10, 15, [_h(n) for n in range(20, 26)])
    assert wh.covered(CHAIN, "blocks", "chain") == [(0, 10)]
    wh.close()


def test_another_genesis_is_another_chain_not_a_reorg(tmp_path: Path) -> None:
    """A node whose block 0 differs (a restarted dev node under the same chain id) used to be
    taken for a reorg at 'fork_block 0' (which did not match) that deleted the whole chain. It
    is refused with a typed error and nothing changes."""
    wh = _warehouse(tmp_path, 20)
    with pytest.raises(ChainDataError, match="another chain under this chain id"):
        _verify(wh, Node(30, forked_from=0))
    assert wh.con.execute("SELECT count(*) FROM meta.reorgs").fetchall()[0][0] == 0
    assert wh.con.execute("SELECT count(*), max(number) FROM raw.blocks").fetchall()[0] == (21, 20)
    assert wh.covered(CHAIN, "blocks", "chain") == [(0, 20)]
    wh.close()


@pytest.mark.anvil
def test_a_confirmation_depth_is_recorded_as_what_it_is(anvil: Any, tmp_path: Path) -> None:
    """meta.runs.finality (and the run's summary) say 'confirmations:N' as documented; they said
    a bare 'N' (fails before)."""
    rpc = JsonRpcClient(HttpTransport(anvil.url), backoff_base=0.01)
    try:
        with Warehouse(tmp_path / "c.duckdb") as wh:
            req = IngestRequest(chain_id=CHAIN, deployments=DeploymentSet(), datasets=("blocks",),
                                from_block=0, finality=0, endpoint_label="test")
            s = run_ingest(wh, rpc, req)
            assert s.watermark == "confirmations:0"
            assert wh.con.execute("SELECT finality FROM meta.runs").fetchall() == [("confirmations:0",)]
    finally:
        rpc.close()


class HeaderNode(Node):
    """``Node`` with full headers and no ``finalized`` block (a node that does not report one)."""

    def check_chain_id(self, expected: int) -> None:
        assert expected == CHAIN

    def _block(self, n: int) -> dict[str, Any] | None:
        b = super()._block(n)
        if b is not None:
            b.update(parentHash=_h(n - 1) if n else _h(0, "e"), timestamp=hex(1000 + 12 * n),
                     gasUsed="0x0", gasLimit="0x1", miner="0x" + "00" * 20, transactions=[])
        return b

    def call(self, method: str, params: list[Any]) -> Any:
        if method == "eth_getBlockByNumber" and params[0] == "finalized":
            return None
        return super().call(method, params)


def test_a_node_without_a_finalized_block_is_said_so(tmp_path: Path) -> None:
    """Without the node's 'finalized' block the run takes head - 64 as final, for the watermark
    and for raw.blocks.finality_at_ingest: it now says so in its warnings (before: silently)."""
    with Warehouse(tmp_path / "f.duckdb") as wh:
        req = IngestRequest(chain_id=CHAIN, deployments=DeploymentSet(), datasets=("blocks",),
                            from_block=0, endpoint_label="test")
        s = run_ingest(wh, HeaderNode(100), req)  # type: ignore[arg-type]
        assert s.to_block == 36
        assert any("no 'finalized' block" in w and "(36)" in w for w in s.warnings), s.warnings
        assert wh.con.execute("SELECT count(*) FROM raw.blocks WHERE finality_at_ingest = 'finalized'"
                              ).fetchall()[0][0] == 37


class GappyNode(Node):
    """``Node`` that does not return some blocks below its head (a load balancer's backend that
    lags behind the one that answered eth_blockNumber)."""

    def __init__(self, head: int, missing: set[int]):
        super().__init__(head)
        self.missing = missing

    def _block(self, n: int) -> dict[str, Any] | None:
        return None if n in self.missing else super()._block(n)


def test_a_block_missing_below_the_nodes_head_is_not_a_reorg(tmp_path: Path) -> None:
    """Blocks 0..20 stored; the node's head is 30 but it returns nothing for 20 and 19. That is
    no evidence against the stored blocks: the run stops with ChainDataError and nothing changes.
    Before, the missing blocks counted as mismatches: 19..20 were deleted and a reorg of depth 2
    was recorded (fails before)."""
    from ingest.errors import ChainDataError

    wh = _warehouse(tmp_path, 20)
    with pytest.raises(ChainDataError, match="reports head 30 but returned no block 20"):
        _verify(wh, GappyNode(30, {19, 20}))
    assert wh.con.execute("SELECT count(*) FROM meta.reorgs").fetchall()[0][0] == 0
    assert wh.con.execute("SELECT count(*), max(number) FROM raw.blocks").fetchall()[0] == (21, 20)
    assert _verify(wh, Node(30)) is None  # a consistent node agrees: no reorg
    wh.close()


class ForkingNode(HeaderNode):
    """``HeaderNode`` with a settable ``finalized`` block, linked parent hashes on both sides of a
    fork, and an ``eth_blockNumber`` that may lag (a load balancer's backend behind the one that
    answers the 'finalized' tag)."""

    def __init__(self, head: int, finalized: int, forked_from: int | None = None,
                 reported_head: int | None = None):
        super().__init__(head, forked_from)
        self.finalized, self.reported_head = finalized, reported_head

    def _block(self, n: int) -> dict[str, Any] | None:
        b = super()._block(n)
        if b is not None and n:
            b["parentHash"] = self._block(n - 1)["hash"]  # type: ignore[index]
        return b

    def call(self, method: str, params: list[Any]) -> Any:
        if method == "eth_blockNumber" and self.reported_head is not None:
            return hex(self.reported_head)
        if method == "eth_getBlockByNumber" and params[0] == "finalized":
            return self._block(self.finalized)
        return super().call(method, params)


def test_blocks_above_the_head_the_reorg_check_saw_are_not_marked_final_unverified(
        tmp_path: Path) -> None:
    """A --head run stores 0..29 with 20..29 'unfinalized'. The chain then reorganizes from
    block 24 on and finalizes up to 29. The next run's endpoint answers eth_blockNumber from a
    lagging backend (22) and the 'finalized' tag from an up-to-date one (29): the reorg check
    verifies the stored chain up to 22 only, but every stored block up to 29 was marked
    'finalized', the orphaned 24..29 with them (said to be 'found final after re-verifying the
    stored hash chain': they were never compared). Blocks above the verified head keep their
    flag until a run verifies them (fails before)."""
    with Warehouse(tmp_path / "w.duckdb") as wh:
        req = IngestRequest(chain_id=CHAIN, deployments=DeploymentSet(), datasets=("blocks",),
                            from_block=0, finality="head", endpoint_label="test")
        run_ingest(wh, ForkingNode(29, finalized=19), req)  # type: ignore[arg-type]
        node = ForkingNode(39, finalized=29, forked_from=24, reported_head=22)
        run_ingest(wh, node, IngestRequest(chain_id=CHAIN, deployments=DeploymentSet(),  # type: ignore[arg-type]
                                           datasets=("blocks",), from_block=0, to_block=29,
                                           endpoint_label="test"))
        rows = wh.con.execute("SELECT number, hash FROM raw.blocks WHERE finality_at_ingest = "
                              "'finalized' ORDER BY number").fetchall()
        wrong = [n for n, h in rows if h != node._block(n)["hash"]]  # type: ignore[index]
        assert wrong == [], f"orphaned blocks flagged final: {wrong}"
        assert max(n for n, _ in rows) == 22
        # a consistent answer later: the fork is found, the tail re-ingested and final
        node.reported_head = None
        s = run_ingest(wh, node, IngestRequest(chain_id=CHAIN, deployments=DeploymentSet(),  # type: ignore[arg-type]
                                               datasets=("blocks",), from_block=0, to_block=29,
                                               endpoint_label="test"))
        assert s.reorgs == [(23, 6)]
        assert wh.con.execute("SELECT count(*) FROM raw.blocks WHERE finality_at_ingest = "
                              "'finalized'").fetchall() == [(30,)]


def test_a_reorg_replacing_blocks_stored_as_final_says_so(tmp_path: Path) -> None:
    """Blocks 0..20 stored, 0..15 flagged 'finalized'; the node's chain differs from block 12
    on. The rollback is the same as for any reorg, but blocks that raw.blocks said were final
    were replaced: either the endpoint is not the chain they came from (another network under
    the chain id, a misbehaving provider) or the finality they were flagged with (head minus 64
    without a 'finalized' block) was wrong, and backtests run before counted them as final. It
    was reported like a routine reorg at the tip (an INFO line); it is a warning now naming the
    replaced final blocks (fails before)."""
    wh = _warehouse(tmp_path, 20)
    wh.con.execute("UPDATE raw.blocks SET finality_at_ingest = 'finalized' WHERE number <= 15")
    summary = IngestSummary("r1", CHAIN, 0, 0, "head")
    ctx = RunContext(wh, Node(20, forked_from=12), CHAIN, "r1", 0, summary)  # type: ignore[arg-type]
    assert verify_and_rollback(ctx) == (11, 9)
    assert any("4 block(s) flagged 'finalized'" in w and "12..15" in w for w in summary.warnings), \
        summary.warnings
    wh.close()
    (tmp_path / "b").mkdir()
    wh = _warehouse(tmp_path / "b", 20)  # a reorg of non-final blocks only: no warning
    summary = IngestSummary("r1", CHAIN, 0, 0, "head")
    ctx = RunContext(wh, Node(20, forked_from=12), CHAIN, "r1", 0, summary)  # type: ignore[arg-type]
    assert verify_and_rollback(ctx) == (11, 9) and summary.warnings == []
    wh.close()


def test_final_intervals_below_the_top_one_are_not_asked_for(tmp_path: Path) -> None:
    """Every stored interval used to be compared at its top block: a final one below the highest
    interval (blocks 0..10 flagged 'finalized', ingested from an archive provider) cannot change,
    and a node that no longer serves old blocks (history expiry: geth prunes pre-merge bodies)
    would stop every run with ChainDataError for it. Final intervals below the highest are not
    asked for; a non-final one is (see the anvil test of a reorg below a gap)."""
    wh = _warehouse(tmp_path, 120, [(0, 10), (30, 40), (100, 120)])
    wh.con.execute("UPDATE raw.blocks SET finality_at_ingest = 'finalized' WHERE number <= 10")
    assert _verify(wh, GappyNode(200, set(range(0, 11)))) is None
    # the non-final 30..40 is still compared: a node without block 40 is an inconsistent endpoint
    with pytest.raises(ChainDataError, match="returned no block 40"):
        _verify(wh, GappyNode(200, {40}))
    wh.close()


def test_final_blocks_deleted_above_the_fork_but_unchanged_are_not_said_replaced(tmp_path: Path) -> None:
    """0..20 stored non-final, 30..40 stored above a gap from the chain as it is now and final.
    The node's chain differs from block 12 to 29 (the stored 12..20 were orphaned): the rollback
    deletes everything above 11, 30..40 with it, but those match the node: no block flagged
    'finalized' was replaced, and the warning of 0a78a82 must not say so."""

    class Patched(Node):
        def _block(self, n: int) -> dict[str, Any] | None:
            b = super()._block(n)
            if b is not None and 12 <= n < 30:
                b["hash"] = _h(n, "f")
            return b

    wh = _warehouse(tmp_path, 40, [(0, 20), (30, 40)])
    wh.con.execute("UPDATE raw.blocks SET finality_at_ingest = 'finalized' WHERE number >= 30")
    summary = IngestSummary("r1", CHAIN, 0, 0, "head")
    ctx = RunContext(wh, Patched(40), CHAIN, "r1", 0, summary)  # type: ignore[arg-type]
    assert verify_and_rollback(ctx) == (11, 29)
    assert summary.warnings == []
    wh.close()
