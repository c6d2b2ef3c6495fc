"""One fresh build of the sample (seed 1) per session, for the rebuild tests (about 3 minutes).

While anvil still serves the freshly built chain, the build's ``inspect`` hook reads the
contracts' state at the checkpoint blocks (eth_call at old blocks: anvil keeps every state of
the sample's ~7,800 blocks), so the rebuild test can compare it with what the adapter rebuilds
from the ingested events.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ingest.devchain import DevChain
from ingest.sample import SampleChain, batch_call, build_sample

CHECKPOINTS = 24


@dataclass
class ChainReadings:
    """eth_call results at each checkpoint block, straight from the contracts."""

    blocks: list[int] = field(default_factory=list)
    timestamps: dict[int, int] = field(default_factory=dict)
    prices: dict[int, dict[str, int]] = field(default_factory=dict)
    # (block, user) -> getUserAccountData tuple
    account: dict[tuple[int, str], tuple[int, ...]] = field(default_factory=dict)
    # (block, user, asset) -> (aToken balanceOf, scaledBalanceOf, variable debt, scaled, stable debt)
    balances: dict[tuple[int, str, str], tuple[int, ...]] = field(default_factory=dict)
    users: list[str] = field(default_factory=list)


@dataclass
class FreshSample:
    path: Path
    chain: SampleChain
    readings: ChainReadings
    replaced_stale_wal: bool = False


def _checkpoints(sc: SampleChain) -> list[int]:
    """Half spread evenly from the first position to the end, half on blocks that carried a
    liquidation (state right after it)."""
    first = min(a.open_block for a in sc.accounts)
    half = CHECKPOINTS // 2
    even = [first + (sc.last_block - first) * i // (half - 1) for i in range(half)]
    liq = sorted({d["exec_block"] for d in sc.decisions if d.get("status") == "ok"})
    picked = [liq[i * len(liq) // half] for i in range(half)] if len(liq) >= half else liq
    return sorted(set(even) | set(picked))


def _read(chain: DevChain, sc: SampleChain) -> ChainReadings:
    m = sc.market
    r = ChainReadings(blocks=_checkpoints(sc))
    users = sorted({a.user for a in sc.accounts} | set(sc.bots) | {m.treasury})
    r.users = users
    assets = sorted(m.reserve(s).address for s in m.reserves)
    for b in r.blocks:
        r.timestamps[b] = int(chain.block(b)["timestamp"], 16)
        r.prices[b] = {a: int(v[0]) for a, v in zip(assets, batch_call(
            chain, [(m.oracle, "getAssetPrice", (a,)) for a in assets], b), strict=True)}
        calls: list[tuple[Any, str, tuple[Any, ...]]] = []
        for u in users:
            calls.append((m.pool, "getUserAccountData", (u,)))
            for a in assets:
                res = m.reserve(a)
                calls += [(res.a_token, "balanceOf", (u,)), (res.a_token, "scaledBalanceOf", (u,)),
                          (res.variable_debt, "balanceOf", (u,)),
                          (res.variable_debt, "scaledBalanceOf", (u,)), (res.stable_debt, "balanceOf", (u,))]
        out = iter(batch_call(chain, calls, b))
        for u in users:
            r.account[(b, u)] = tuple(int(x) for x in next(out))
            for a in assets:
                r.balances[(b, u, a)] = tuple(int(next(out)[0]) for _ in range(5))
    return r


def plant_stale_wal(path: Path) -> None:
    """A DuckDB file at ``path`` whose writer was killed before a checkpoint: ``<path>.wal``
    holds its last writes (table ``old``)."""
    code = ("import duckdb, os, sys\n"
            "con = duckdb.connect(sys.argv[1])\n"
            "con.execute(\"PRAGMA disable_checkpoint_on_shutdown\")\n"
            "con.execute(\"SET checkpoint_threshold = '10GB'\")\n"
            "con.execute('CREATE TABLE old AS SELECT 1 AS x')\n"
            "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    assert path.with_name(path.name + ".wal").exists()


@pytest.fixture(scope="session")
def fresh_sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreshSample]:
    from tests.conftest import _require_anvil

    _require_anvil()
    readings: list[ChainReadings] = []
    out = tmp_path_factory.mktemp("sample") / "sample.duckdb"
    # built over an old file whose writer was killed before a checkpoint, leaving its WAL (the
    # build must not leave that WAL beside the new file: test_sample_out.py)
    plant_stale_wal(out)
    sc = build_sample(out, seed=1, inspect=lambda chain, s: readings.append(_read(chain, s)))
    yield FreshSample(out, sc, readings[0], replaced_stale_wal=True)
