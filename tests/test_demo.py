"""``deficit demo-ingest``: ingestion end to end — a real anvil chain with an aggregator switch,
ingested, twice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.demo import feed_rounds, load_mid_prices
from ingest.warehouse import Warehouse

pytestmark = pytest.mark.anvil
ROOT = Path(__file__).resolve().parents[1]


def test_demo_ingests_the_real_price_path_through_the_feed_rules(tmp_path):
    db = tmp_path / "w.duckdb"
    for _ in range(2):  # a rerun rebuilds the demo chain; it is not mistaken for a reorg
        r = subprocess.run([sys.executable, "-m", "ingest.cli", "demo-ingest", "--json", "--db", str(db)],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    expected = feed_rounds(load_mid_prices())
    phases = out["eth_usd_rounds_by_phase"]
    assert [p["phase"] for p in phases] == [1, 2]
    assert sum(p["rounds"] for p in phases) == len(expected)
    assert out["liquidations"] == 40
    with Warehouse(db, read_only=True) as wh:
        got = wh.con.execute("SELECT answer, block_timestamp_ts FROM raw.oracle_rounds WHERE "
                             "feed_name = 'ETH / USD' ORDER BY proxy_round_id").fetchall()
        assert [a for a, _ in got] == [a for _, a in expected]
        # the chain carried each round at (or just after, when two events share a second) its time
        assert all(ts >= t for (_, ts), (t, _) in zip(got, expected, strict=True))
        assert wh.con.execute("SELECT count(*) FROM meta.reorgs").fetchall() == [(0,)]
        assert wh.con.execute("SELECT count(*) FROM meta.runs WHERE status = 'ok'").fetchall() == [(2,)]
        # real crash: ETH/USD fell by more than 20 % within the day
        lo, hi = wh.con.execute("SELECT min(answer_f64), max(answer_f64) FROM raw.oracle_rounds "
                                "WHERE feed_name = 'ETH / USD'").fetchall()[0]
        assert lo < 0.8 * hi
        # the README's example queries run on what the demo stored
        readme = (ROOT / "README.md").read_text()
        for block in readme.split("```sql")[1:]:
            for q in [x.strip() for x in block.split("```")[0].split(";") if x.strip()]:
                rows = wh.con.execute(q).fetchall()
                assert rows, q


def test_demo_ingest_leaves_other_local_chain_data_alone(tmp_path: Path) -> None:
    """demo-ingest rebuilds its chain (id 31337) and deletes that chain's rows first: a warehouse
    holding chain-31337 data it did not write (the bundled sample's copy that `deficit demo` makes,
    a user's own anvil ingest) is refused and left unchanged, instead of silently losing it."""
    from backtest.demo import SAMPLE_DB, prepare_warehouse

    db = tmp_path / "warehouse.duckdb"
    prepare_warehouse(db, SAMPLE_DB)
    before = db.read_bytes()
    r = subprocess.run([sys.executable, "-m", "ingest.cli", "demo-ingest", "--json", "--db", str(db)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "31337" in r.stderr and "--db" in r.stderr
    assert db.read_bytes() == before


def test_demo_ingest_prints_the_tables_exact_row_counts(tmp_path: Path) -> None:
    """The stored-rows table it prints came from duckdb_tables().estimated_size, which still counts
    rows deleted from a row group that was not rewritten: the rerun's delete of the previous demo
    chain, in a file that also holds another chain's rows, printed raw.blocks 560 rows too high."""
    db = tmp_path / "w.duckdb"

    def demo_ingest() -> dict:
        r = subprocess.run([sys.executable, "-m", "ingest.cli", "demo-ingest", "--json", "--db", str(db)],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["rows_by_table"]

    demo_ingest()
    with Warehouse(db) as wh:  # another chain's blocks after the demo chain's, in the same row groups
        wh.con.execute("INSERT INTO raw.blocks SELECT 1, n, 'h', 'p', n, NULL, 0, 0, 'm', 0, 'finalized', 0, "
                       "'r1' FROM range(200000) t(n)")
    printed = demo_ingest()
    with Warehouse(db, read_only=True) as wh:
        exact = {t: wh.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in printed}
    assert printed == exact


def test_demo_ingest_counts_only_its_own_chains_liquidations(tmp_path: Path) -> None:
    """Its file may hold other chains (only chain-31337 data it did not write is refused): the
    "N LiquidationCall events decoded" figure counted every chain's."""
    from ingest.schema import registered_tables

    db = tmp_path / "w.duckdb"
    with Warehouse(db) as wh:
        wh.ensure(*registered_tables())
        wh.con.execute("INSERT INTO raw.aave_v3_liquidation_call SELECT 1, n, 'h', 't', 0, 0, '0xp', 'pool', "
                       "'mainnet', '0xc', '0xd', '0xu', 1, 1, '0xl', false, 'r1' FROM range(3) t(n)")
    r = subprocess.run([sys.executable, "-m", "ingest.cli", "demo-ingest", "--json", "--db", str(db)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["liquidations"] == 40
