"""Reorgs (anvil_reorg at depths 1, 5, 64), kill -9 at random instants, concurrent ingests.

Truth is always "a fresh ingest of the final chain into an empty warehouse": after a reorg, or
after a run killed any number of times and resumed, the warehouse must equal it exactly
(``run_id``/``updated_at`` lineage aside, which by design records which run wrote a row).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.devchain import DevChain
from ingest.warehouse import Warehouse

from .chainbuilder import build_market_chain
from .test_ingest_anvil import ingest, snapshot

pytestmark = pytest.mark.anvil
ROOT = Path(__file__).resolve().parents[2]


def _tail_activity(chain: DevChain, m, n_blocks: int, seed: int) -> None:
    """One block per step at the tip, each with a pool event and an oracle round."""
    rng = random.Random(seed)
    pool = m.contracts[("aave_v3", "pool")][0]
    ocr = m.aggregators["ETH / USD"][1]
    txs = []
    for i in range(n_blocks):
        user = "0x" + rng.randbytes(20).hex()
        p = 1000 * 10**8 + rng.randint(-10**9, 10**9)
        txs.append((pool, "emitLiquidationCall", ("0x" + "01" * 20, "0x" + "02" * 20, user,
                                                  10**6 + i, 10**15 + i, user, bool(i % 2))))
        txs.append((ocr, "transmit", ([p - 1, p, p + 1],)))
    chain.send_many(txs, per_block=2)


@pytest.mark.parametrize("depth", [1, 5, 64])
@pytest.mark.parametrize("mode", ["remove", "change"])
def test_reorg_rolls_back_and_equals_a_fresh_ingest(anvil, tmp_path, depth, mode):
    chain = DevChain(anvil.url)
    m = build_market_chain(chain, seed=depth, times=1, datasets=("aave_v3",), rounds=4)
    _tail_activity(chain, m, 70, seed=depth)
    dep = tmp_path / "dep.toml"
    dep.write_text(m.deployments_toml)
    db = tmp_path / "w.duckdb"
    ingest(anvil.url, db, dep)
    head = chain.block_number()
    with Warehouse(db, read_only=True) as wh:
        before = wh.con.execute("SELECT count(*) FROM raw.aave_v3_liquidation_call WHERE "
                                "block_number > ?", [head - depth]).fetchone()[0]
        old_hashes = [h for (h,) in wh.con.execute(
            "SELECT hash FROM raw.blocks WHERE number > ? ORDER BY number",
            [head - depth]).fetchall()]
    assert before == depth  # one LiquidationCall per tail block
    replacement = []
    if mode == "change":
        pool = m.contracts[("aave_v3", "pool")][0]
        ocr = m.aggregators["ETH / USD"][1]
        for off in range(depth):
            replacement.append((chain.tx_request(pool, "emitLiquidationCall", "0x" + "0a" * 20,
                                                 "0x" + "0b" * 20, "0x" + "0c" * 20, 777 + off,
                                                 888, "0x" + "0d" * 20, True, gas=500_000), off))
            replacement.append((chain.tx_request(ocr, "transmit", [5 * 10**10, 5 * 10**10 + off],
                                                 gas=500_000), off))
    chain.reorg(depth, replacement)
    assert chain.block_number() == head
    s = ingest(anvil.url, db, dep)
    assert len(s.reorgs) == 1 and s.reorgs[0] == (head - depth, depth)
    fresh = tmp_path / "fresh.duckdb"
    ingest(anvil.url, fresh, dep)
    assert snapshot(db) == snapshot(fresh)
    with Warehouse(db, read_only=True) as wh:
        reorgs = wh.con.execute("SELECT fork_block, depth, old_hashes, new_hashes, logs_removed "
                                "FROM meta.reorgs").fetchall()
        after = wh.con.execute("SELECT count(*), coalesce(sum(debt_to_cover), 0) FROM "
                               "raw.aave_v3_liquidation_call WHERE block_number > ?",
                               [head - depth]).fetchone()
    assert len(reorgs) == 1
    fork, d, old, new, removed = reorgs[0]
    assert (fork, d) == (head - depth, depth)
    assert old == old_hashes and len(new) == depth and not set(new) & set(old)
    assert removed >= 2 * depth  # at least the tail's pool event and oracle logs were rolled back
    if mode == "remove":
        assert after[0] == 0
    else:
        assert after == (depth, sum(777 + off for off in range(depth)))
    chain.close()


def _cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "ingest.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_kill_9_at_random_points_then_resume_equals_clean_run(anvil, tmp_path):
    chain = DevChain(anvil.url)
    m = build_market_chain(chain, seed=11, times=1, rounds=6)
    _tail_activity(chain, m, 300, seed=11)
    dep = tmp_path / "dep.toml"
    dep.write_text(m.deployments_toml)
    args = ["ingest", "--rpc", anvil.url, "--deployments", str(dep), "--head",
            "--chunk-blocks", "7", "--chunk-rows", "100", "--json"]
    clean = tmp_path / "clean.duckdb"
    t0 = time.monotonic()
    p = _cli(*args, "--db", str(clean))
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err.decode()
    t_clean = time.monotonic() - t0
    # the same command on a copy of the finished file: start-up and the hash check, no chunk
    noop = tmp_path / "noop.duckdb"
    shutil.copy(clean, noop)
    t0 = time.monotonic()
    p = _cli(*args, "--db", str(noop))
    p.communicate(timeout=300)
    t_noop = time.monotonic() - t0
    db = tmp_path / "killed.duckdb"
    rng = random.Random(20261125)
    kills = in_loop = 0
    attempts = 0
    total = chain.block_number() + 1

    def progress() -> tuple[int, int]:
        if not db.exists():
            return 0, 0
        with Warehouse(db, read_only=True) as wh:
            stored = wh.stored_columns()
            if "meta.runs" not in stored or "meta.checkpoints" not in stored:
                return 0, 0  # killed before its tables were made
            running = wh.con.execute("SELECT count(*) FROM meta.runs WHERE status='running'"
                                     ).fetchall()[0][0]
            return sum(b - a + 1 for a, b in wh.covered(31337, "blocks", "chain")), running

    while (kills < 10 or in_loop < 3) and attempts < 90:
        attempts += 1
        done, running = progress()
        # a random instant within what is left of the run: anywhere (start-up included) on odd
        # attempts, after the start-up on even ones (start-up is most of this short run)
        lo = 0.0 if attempts % 2 else t_noop
        p = _cli(*args, "--db", str(db))
        time.sleep(rng.uniform(lo, t_noop + max(0.0, t_clean - t_noop) * (1 - done / total)))
        killed = p.poll() is None
        if killed:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.communicate(timeout=60)
        if killed and progress()[1] > running:
            in_loop += 1  # killed after its run was recorded: inside the chunk loop
        if not killed and in_loop < 3:
            # the attempt finished the ingest before enough kills inside its chunk loop (on a loaded
            # machine start-up outlasts t_noop): nothing is left to kill there, so the series starts
            # over on a new file; the kills counted are those of the file resumed below
            for f in tmp_path.glob("killed.duckdb*"):
                f.unlink()
            kills = in_loop = 0
    assert kills >= 10 and in_loop >= 3, (kills, in_loop, attempts)
    p = _cli(*args, "--db", str(db))
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err.decode()
    assert snapshot(db) == snapshot(clean)
    with Warehouse(db, read_only=True) as wh:
        statuses = dict(wh.con.execute("SELECT status, count(*) FROM meta.runs GROUP BY 1").fetchall())
    assert statuses.get("ok", 0) >= 1 and statuses.get("running", 0) >= 1  # killed runs stay visible
    chain.close()


def test_second_concurrent_ingest_fails_fast_and_corrupts_nothing(market_small, tmp_path):
    node, dep = market_small
    db = tmp_path / "w.duckdb"
    ingest(node.url, db, dep)
    before = snapshot(db, exclude=())
    holder = Warehouse(db)  # another writer holds the file
    try:
        t0 = time.monotonic()
        p = _cli("ingest", "--rpc", node.url, "--deployments", str(dep), "--head", "--db", str(db))
        out, err = p.communicate(timeout=60)
        assert time.monotonic() - t0 < 30
    finally:
        holder.close()
    assert p.returncode == 1
    assert "locked by another process" in err.decode()
    assert snapshot(db, exclude=()) == before


@pytest.fixture
def market_small(anvil, tmp_path):
    chain = DevChain(anvil.url)
    m = build_market_chain(chain, seed=5, times=1, datasets=("aave_v3",), rounds=3)
    dep = tmp_path / "dep.toml"
    dep.write_text(m.deployments_toml)
    yield anvil, dep
    chain.close()


def test_a_reorg_below_a_gap_is_found_after_a_range_above_it_was_stored(anvil, tmp_path):
    """Blocks 0..40 stored at the head; a run for 50..60 starts, its reorg check passes, then
    the chain reorganizes from block 36 on, and the run stores 50..60 of the new chain (nothing
    links them to the stored 40 across the gap). Stored intervals are not hash-linked to one
    another, but the check compared only the highest one and stopped at its first match: every
    later run found 60 matching and never looked at 36..40, orphaned blocks kept for good (and
    marked 'finalized' once the node finalized their heights). Each interval is compared now: the
    next run finds the fork at 35 (fails before)."""
    from ingest.deployments import DeploymentSet
    from ingest.engine import IngestRequest, run_ingest
    from ingest.rpc import JsonRpcClient
    from ingest.transports import HttpTransport

    chain = DevChain(anvil.url)
    chain.mine(60)
    transfer = {"from": chain.default_sender, "to": "0x" + "0e" * 20, "value": "0x1"}

    class ReorgAfterTheCheck(JsonRpcClient):
        """The chain reorganizes once, right after the run's reorg check (at its watermark)."""

        armed = False

        def call(self, method, params):
            if self.armed and method == "eth_getBlockByNumber" and params[0] == "finalized":
                self.armed = False
                chain.reorg(25, [(transfer, 0)])
            return super().call(method, params)

    def run(frm: int, to: int, armed: bool = False):
        rpc = ReorgAfterTheCheck(HttpTransport(anvil.url), backoff_base=0.01)
        rpc.armed = armed
        try:
            with Warehouse(tmp_path / "w.duckdb") as wh:
                return run_ingest(wh, rpc, IngestRequest(
                    chain_id=31337, deployments=DeploymentSet(), datasets=("blocks",),
                    from_block=frm, to_block=to, finality="head", endpoint_label="test"))
        finally:
            rpc.close()

    run(0, 40)
    old36 = chain.block(36)["hash"]
    run(50, 60, armed=True)
    assert chain.block(36)["hash"] != old36 and chain.block_number() == 60  # it reorganized
    node = {n: h for n, h in ((n, chain.block(n)["hash"]) for n in range(61))}

    def stored() -> list[tuple[int, str]]:
        with Warehouse(tmp_path / "w.duckdb", read_only=True) as wh:
            return wh.con.execute("SELECT number, hash FROM raw.blocks ORDER BY 1").fetchall()

    s = run(0, 40)  # nothing left to fetch in its range: only the reorg check can see it
    assert s.reorgs == [(35, 25)]
    assert [n for n, h in stored() if h != node[n]] == []
    with Warehouse(tmp_path / "w.duckdb", read_only=True) as wh:
        fork, depth, old = wh.con.execute(
            "SELECT fork_block, depth, old_hashes FROM meta.reorgs").fetchall()[0]
    assert (fork, depth, old[0]) == (35, 25, old36)
    # filling the gap links 41 to the stored 40: it failed there on every run (BrokenChainError
    # after three retries whose reorg check found nothing)
    run(0, 60)
    assert stored() == sorted(node.items())
    chain.close()
