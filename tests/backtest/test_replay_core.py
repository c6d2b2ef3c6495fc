"""The replay's core, pinned: one total order inside a block (an oracle round and a protocol event
by log index), the feed's slices (no event dropped or repeated at a slice boundary, a window
starting or ending inside a slice), 128-bit integers read exactly through their two 64-bit halves,
and bt tables byte-identical (physical row order included) across Python hash seeds."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest

from backtest.api import run_inputs
from backtest.feed import event_sources, fetch_columns, protocol_events
from backtest.oracle import Round
from backtest.synthetic import SyntheticConfig, generate
from protocols.domain import EventRef, ProtocolEvent
from protocols.registry import get_adapter
from tests.backtest.markets import COLL, DEBT, FEED_C, FROM, POOL, T0, inputs, market, scenario, user

ROOT = Path(__file__).resolve().parents[2]
_SIG = "LiquidationCall(address,address,address,uint256,uint256,address,bool)"


def _call(who: str, block: int, log_index: int, repaid: int, seized: int) -> ProtocolEvent:
    return ProtocolEvent("LiquidationCall", _SIG, POOL, "pool", {
        "collateral_asset": COLL, "debt_asset": DEBT, "user": who, "debt_to_cover": repaid,
        "liquidated_collateral_amount": seized, "liquidator": "0x" + "1e" * 20, "receive_a_token": False},
        EventRef(block, log_index, "0x" + f"{log_index + 1:064x}", T0 + 12 * (block - FROM + 1)))


def test_a_liquidation_sees_the_round_before_it_in_its_block_and_not_the_one_after() -> None:
    # 1 collateral token, 900 debt units, LT 80 %, bonus 5 %. Block FROM + 2: a round at log 3
    # ($1,100: HF 0.98), the chain's LiquidationCall at log 5 (450 repaid), a round at log 7 ($500).
    # The prediction is made on the state and prices just before the call's transaction: $1,100.
    book = market(8000, 10500, [(10**18, 900 * 10**6)])
    ins = inputs(book, [1000 * 10**8] * 3)
    b = FROM + 2
    ts = T0 + 12 * (b - FROM + 1)
    rounds = [r for r in ins.rounds if r.block_number != b]
    rounds += [Round(FEED_C, 1100 * 10**8, 8, ts, b, 3, ts), Round(FEED_C, 500 * 10**8, 8, ts, b, 7, ts)]
    rounds.sort(key=lambda r: (r.block_number, r.log_index))
    seized = 450 * 10**6 * 10**12 * 105 // 100 // 1100
    ins = dataclasses.replace(ins, rounds=rounds, events=[_call(user(0), b, 5, 450 * 10**6, seized)])
    res = run_inputs(scenario("historical", to_block=FROM + 4), ins)
    (obs,) = [x for x in res.output.liquidations if x.observed]
    assert obs.predicted is not None and obs.predicted.ok
    assert (obs.predicted.debt_repaid, obs.predicted.collateral_seized) == (450 * 10**6, seized)
    assert obs.collateral_seized_value == seized * 1100 * 10**8 // 10**18  # at its position's price
    assert obs.health_before_wad is not None and obs.health_before_wad < 10**18


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SyntheticConfig]:
    cfg = SyntheticConfig(borrowers=60, suppliers=10, actions=1_500, days=1)
    path = tmp_path_factory.mktemp("core") / "syn.duckdb"
    generate(path, cfg)
    return path, cfg


def test_slices_neither_drop_nor_repeat_an_event(synthetic: tuple[Path, SyntheticConfig]) -> None:
    path, cfg = synthetic
    adapter = get_adapter("aave_v3")
    kw: dict[str, Any] = dict(dataset="aave_v3", chain_id=cfg.chain_id, source=cfg.deployment)
    con = duckdb.connect(str(path), read_only=True)
    try:
        def keys(a: int, b: int, n: int) -> list[tuple[int, int, str]]:
            return [(e.ref.block_number, e.ref.log_index, e.name)
                    for e in protocol_events(con, adapter, from_block=a, to_block=b, slice_blocks=n, **kw)]

        everything = keys(0, 2**63 - 1, 10**9)
        assert everything == sorted(everything) and len({k[:2] for k in everything}) == len(everything)
        stored = 0
        for s in event_sources(adapter, "aave_v3"):
            try:
                stored += con.execute(f"SELECT count(*) FROM {s.table} WHERE chain_id = ? AND source = ? AND "
                                      "role = ?", [cfg.chain_id, cfg.deployment, s.role]).fetchall()[0][0]
            except duckdb.CatalogException:
                pass
        assert len(everything) == stored
        # a stretch of blocks with several tables' events in one block
        per_block = Counter(k[0] for k in everything)
        busy = max(b for b, n in per_block.items() if n >= 3)
        a, b = busy - 25, busy + 25
        want = [k for k in everything if a <= k[0] <= b]
        assert len({k[2] for k in want}) >= 3
        for lo, hi in ((a, b), (a + 1, b - 1), (busy, busy), (busy - 1, busy), (busy, busy + 1)):
            exp = [k for k in everything if lo <= k[0] <= hi]
            for n in (1, 2, 3, 7, 50, 10**6):
                assert keys(lo, hi, n) == exp, (lo, hi, n)
    finally:
        con.close()


def test_128_bit_integers_are_read_exactly_through_two_halves() -> None:
    signed = [0, 1, -1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, -(2**64), -(2**64) - 1,
              2**127 - 1, -(2**127), -(2**127) + 1, -5 * 2**70 + 3, None]
    unsigned = [0, 1, 2**63, 2**64 - 1, 2**64, 2**64 + 1, 2**127, 2**128 - 1, 3 * 2**100 + 7, None,
                2**127 - 1, 2**126, 5, 2**65, 2**64 * (2**64 - 1), 12]
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE t (i INTEGER, h HUGEINT, u UHUGEINT)")
        con.executemany("INSERT INTO t VALUES (?, ?::HUGEINT, ?::UHUGEINT)",
                        [(i, None if h is None else str(h), None if u is None else str(u))
                         for i, (h, u) in enumerate(zip(signed, unsigned, strict=True))])
        h, u = fetch_columns(con, [("h", "HUGEINT"), ("u", "UHUGEINT")], "FROM t ORDER BY i", [])
    finally:
        con.close()
    assert h == signed and u == unsigned


_CHILD = """
import hashlib, sys
from backtest.api import run_inputs
from backtest.outputs import write_run
from ingest.warehouse import Warehouse
from tests.backtest.markets import FROM, inputs, market, scenario
crash = [2_000 * 10**8 * (100 - 3 * i) // 100 for i in range(25)]
positions = [(10**18 * (k + 1), (k + 1) * 1_500 * 10**6) for k in range(6)]
extra = "\\n[liquidator]\\nreaction_delay_blocks = 2\\ncapacity_per_block = 1\\n"
extra += '[metrics]\\nnames = ["bad_debt", "liquidations", "socialization", "spiral", "finality"]\\n'
res = run_inputs(scenario(extra=extra, to_block=FROM + 40),
                 inputs(market(8000, 10500, positions), crash, to_block=FROM + 40))
with Warehouse(sys.argv[1]) as wh:
    write_run(wh, res.run_id, res.output.tables)
    h = hashlib.sha256()
    for (t,) in wh.con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'bt' "
                               "ORDER BY 1").fetchall():
        rows = wh.con.execute(f"SELECT * FROM bt.{t}").fetchall()  # physical order, not sorted
        assert t != "liquidations" or rows, "the crash must liquidate for the comparison to mean much"
        h.update(repr((t, rows)).encode())
print(h.hexdigest())
"""


def test_bt_tables_are_identical_under_another_hash_seed(tmp_path: Path) -> None:
    out = []
    for seed in ("0", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        p = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / f"w{seed}.duckdb")], cwd=ROOT,
                           env=env, capture_output=True, text=True, check=False)
        assert p.returncode == 0, p.stderr
        out.append(p.stdout.strip())
    assert out[0] == out[1] and len(out[0]) == 64
    assert hashlib.sha256(b"").hexdigest() not in out


def test_counterfactual_mode_applies_no_protocol_event_of_the_window() -> None:
    # the same inputs as the ordering test, in counterfactual mode: the chain's LiquidationCall is
    # frozen with every other user action (the model's own liquidations commit instead)
    book = market(8000, 10500, [(10**18, 900 * 10**6)])
    ins = inputs(book, [1000 * 10**8] * 3)
    ins = dataclasses.replace(ins, events=[_call(user(0), FROM + 2, 5, 450 * 10**6, 10**17)])
    res = run_inputs(scenario("counterfactual", to_block=FROM + 4), ins)
    assert res.output.record.events_applied == 0
    assert [x.observed for x in res.output.liquidations] == [False]
    assert all(x.committed for x in res.output.liquidations)
