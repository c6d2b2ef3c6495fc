"""Shared by the anvil benchmarks: a ~3,000-block chain with ~100k mainnet-ABI events.

``BenchBatchEmitter`` (tests/contracts/bench/) emits many events per transaction: one instance is
the Aave v3 ``pool`` (emitPoolMix: ReserveDataUpdated, Supply, Borrow, Repay, Withdraw and
LiquidationCall with the exact mainnet declarations), another is the aggregator behind a real
``TestAggregatorProxy`` (emitRounds: NewRound + AnswerUpdated), so both the ``aave_v3`` and the
``chainlink`` datasets ingest it with their normal discovery. Each block holds one pool
transaction and (by default) one round.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

from ingest.devchain import DevChain

SEED = 20261125


@dataclass
class BenchChain:
    url: str
    pool: str
    aggregator: str
    proxy: str
    first_block: int  # first block with bench events
    head: int
    pool_logs: int
    feed_logs: int
    build_s: float

    @property
    def logs(self) -> int:
        return self.pool_logs + self.feed_logs

    def deployments_toml(self, chain_id: int = 31337, *, chainlink: bool = True) -> str:
        lines = ["[meta]", f"chain_id = {chain_id}", "",
                 "[[deployment]]", 'name = "bench_aave_v3"', 'protocol = "aave_v3"',
                 f"chain_id = {chain_id}", f"start_block = {self.first_block}",
                 "[deployment.contracts]", f'pool = "{self.pool}"', ""]
        if chainlink:
            lines += ["[[feed]]", 'name = "BENCH / USD"', f"chain_id = {chain_id}",
                      f'proxy = "{self.proxy}"', "decimals = 8",
                      f"start_block = {self.first_block}", ""]
        return "\n".join(lines)

    def write_deployments(self, path: Path, *, chainlink: bool = True) -> Path:
        path.write_text(self.deployments_toml(chainlink=chainlink))
        return path


def build_chain(url: str, *, blocks: int = 3000, pool_events_per_block: int = 33,
                rounds_per_block: int = 1, seed: int = SEED, progress: bool = True) -> BenchChain:
    """Deploy the emitters and mine ``blocks`` blocks of events (one pool tx + one round tx per
    block). Returns what was built; the chain is deterministic for a given seed."""
    t0 = time.monotonic()
    rng = random.Random(seed)
    chain = DevChain(url, batch_size=500)
    try:
        pool = chain.deploy("BenchBatchEmitter")
        agg = chain.deploy("BenchBatchEmitter")
        chain.send(agg, "emitRounds", 1, 2000 * 10**8)  # the proxy reads a non-empty aggregator
        proxy = chain.deploy("TestAggregatorProxy", agg.address)
        first = chain.block_number() + 1
        txs = []
        price = 2000 * 10**8
        for _ in range(blocks):
            txs.append((pool, "emitPoolMix", (pool_events_per_block, rng.getrandbits(64))))
            if rounds_per_block:
                price += rng.randint(-10**8, 10**8)
                txs.append((agg, "emitRounds", (rounds_per_block, price)))
        per_block = 2 if rounds_per_block else 1
        step = 500 * per_block
        for i in range(0, len(txs), step):  # in slices, to show progress
            chain.send_many(txs[i:i + step], per_block=per_block, gas=3_000_000,
                            check=(i + step >= len(txs)))
            if progress:
                print(f"  built {min(i + step, len(txs)) // per_block:,}/{blocks:,} blocks "
                      f"({time.monotonic() - t0:.0f} s)", flush=True)
        head = chain.block_number()
        pool_logs = blocks * pool_events_per_block
        feed_logs = blocks * rounds_per_block * 2
        got = len(chain.get_logs(address=pool.address, from_block=first, to_block=head))
        assert got == pool_logs, (got, pool_logs)
        return BenchChain(url, pool.address, agg.address, proxy.address, first, head, pool_logs,
                          feed_logs, time.monotonic() - t0)
    finally:
        chain.close()
