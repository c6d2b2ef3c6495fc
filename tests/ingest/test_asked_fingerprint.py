"""What was asked for is recorded with each covered interval (``meta.checkpoints.asked_sha256``).

A later version that declares a new event for a role (a new typed table, e.g. the Aave v3 token
``Initialized`` tables) found the range "covered" in an existing warehouse and never fetched those
logs: the new table stayed empty over an ingested range, and the replay read "no such events".
Now an interval stored under another fingerprint (or NULL: before fingerprints were recorded) is
re-ingested, and the result equals a fresh ingest exactly (rows and checkpoints).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import engine
from ingest.datasets import asked_fingerprint
from ingest.datasets.aave_v3 import AaveV3
from ingest.devchain import DevChain
from ingest.warehouse import Warehouse

from .chainbuilder import build_market_chain
from .test_ingest_anvil import ingest, snapshot

NEW_TABLE = "raw.aave_v3_a_token_initialized"
SOURCE = "aave_v3:aave_v3_test"


GHO_TABLE = "raw.aave_v3_variable_debt_token_discount_percent_updated"


def _without_new_event(monkeypatch: pytest.MonkeyPatch, *also: str) -> None:
    """An older version of deficit: the aToken ``Initialized`` event (and ``also``'s) is not
    declared."""
    drop = {NEW_TABLE, *also}
    reduced = tuple(t for t in AaveV3.EVENT_TABLES if t.table.fqn not in drop)
    assert len(reduced) == len(AaveV3.EVENT_TABLES) - len(drop)
    monkeypatch.setattr(AaveV3, "EVENT_TABLES", reduced)


def _ivs(wh: Warehouse, dataset: str, source: str) -> list[tuple[int, int, str | None]]:
    """The source's intervals with their declarations' fingerprint."""
    return [(a, b, f) for a, b, f, _ in wh.checkpoints(31337, dataset, source)]


def _fingerprints(db: Path) -> set[tuple[str, str | None]]:
    with Warehouse(db, read_only=True) as wh:
        return {(d, f) for d, f in wh.con.execute(
            "SELECT DISTINCT dataset, asked_sha256 FROM meta.checkpoints").fetchall()}


def _current(db: Path) -> set[tuple[str, str | None]]:
    return {(d, asked_fingerprint(d)) for d, _ in _fingerprints(db)}


@pytest.fixture
def chain(anvil):
    c = DevChain(anvil.url)
    yield c
    c.close()


@pytest.mark.anvil
def test_a_newly_declared_event_is_fetched_over_ranges_ingested_before(anvil, chain, tmp_path,
                                                                       monkeypatch):
    m = build_market_chain(chain, seed=5, times=1, datasets=("aave_v3",), rounds=4)
    dep = tmp_path / "dep.toml"
    dep.write_text(m.deployments_toml)
    head = chain.block_number()
    fresh = tmp_path / "fresh.duckdb"
    ingest(anvil.url, fresh, dep)
    with Warehouse(fresh, read_only=True) as wh:
        n_new = wh.con.execute(f"SELECT count(*) FROM {NEW_TABLE}").fetchone()[0]
    assert n_new == 2  # one per reserve's aToken: the truth the upgraded warehouse must reach

    db = tmp_path / "w.duckdb"
    with monkeypatch.context() as mp:
        _without_new_event(mp)
        old_fp = AaveV3().asked_sha256()
        ingest(anvil.url, db, dep)
    assert old_fp != asked_fingerprint("aave_v3")
    with Warehouse(db, read_only=True) as wh:
        assert not wh.con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'raw' "
                                  "AND table_name = 'aave_v3_a_token_initialized'").fetchone()[0]
        assert _ivs(wh, "aave_v3", "aave_v3_test") == [(0, head, old_fp)]

    # this version: the new table is created (empty), and the range is backfilled with it (only
    # an event was added: tests/ingest/test_backfill.py)
    s = ingest(anvil.url, db, dep)
    assert s.reingested == {}
    assert s.backfilled == {SOURCE: {"intervals": 1, "blocks": head + 1, "events": [
        "Initialized(address,address,address,address,uint8,string,string,bytes)"]}}
    assert s.blocks_written == 0  # the headers' fingerprint did not change: not fetched again
    assert snapshot(db) == snapshot(fresh)
    assert _fingerprints(db) == _current(db)
    # and once current, a rerun does nothing
    s = ingest(anvil.url, db, dep)
    assert s.reingested == {} and s.logs_written == 0 and s.chunks == 0


@pytest.mark.anvil
def test_an_interrupted_reingest_resumes_to_what_a_fresh_ingest_writes(anvil, chain, tmp_path,
                                                                       monkeypatch):
    m = build_market_chain(chain, seed=6, times=1, datasets=("aave_v3",), rounds=4)
    dep = tmp_path / "dep.toml"
    dep.write_text(m.deployments_toml)
    head = chain.block_number()
    fresh = tmp_path / "fresh.duckdb"
    ingest(anvil.url, fresh, dep, chunk_blocks=10, chunk_rows=0)

    db = tmp_path / "w.duckdb"
    with monkeypatch.context() as mp:
        # a version before meta.asked_sets lacking two events: what it asked is unknown (not
        # recorded, nor this version's declarations less one event), so it is re-ingested whole
        _without_new_event(mp, GHO_TABLE)
        old_fp = AaveV3().asked_sha256()
        ingest(anvil.url, db, dep, chunk_blocks=10, chunk_rows=0)
    with Warehouse(db) as wh:
        wh.con.execute("DROP TABLE meta.asked_sets")

    # the re-ingest is killed after its third chunk: three chunks committed, the rest stale
    real, calls = engine._chunk, [0]

    def dies(*a, **kw):
        calls[0] += 1
        if calls[0] > 3:
            raise KeyboardInterrupt
        return real(*a, **kw)

    with monkeypatch.context() as mp:
        mp.setattr(engine, "_chunk", dies)
        with pytest.raises(KeyboardInterrupt):
            ingest(anvil.url, db, dep, chunk_blocks=10, chunk_rows=0)
    now = asked_fingerprint("aave_v3")
    with Warehouse(db, read_only=True) as wh:
        # the re-ingested part replaced the stale one's blocks; the two are not merged
        assert _ivs(wh, "aave_v3", "aave_v3_test") == [(0, 29, now), (30, head, old_fp)]
        assert wh.con.execute(f"SELECT count(*) FROM {NEW_TABLE} WHERE block_number > 29"
                              ).fetchone()[0] == 0
    s = ingest(anvil.url, db, dep, chunk_blocks=10, chunk_rows=0)
    assert s.reingested == {SOURCE: head - 29}
    assert snapshot(db) == snapshot(fresh)
    assert _fingerprints(db) == _current(db)


@pytest.mark.anvil
def test_intervals_without_a_fingerprint_are_reingested(anvil, chain, tmp_path):
    """A warehouse of an older version, migrated (``asked_sha256`` NULL): what it asked for is
    unknown, so the next ingest re-ingests it (rows, headers and all) and says so."""
    m = build_market_chain(chain, seed=7, times=1, datasets=("aave_v3",), rounds=4)
    dep = tmp_path / "dep.toml"
    dep.write_text(m.deployments_toml)
    head = chain.block_number()
    db = tmp_path / "w.duckdb"
    ingest(anvil.url, db, dep)
    want = snapshot(db)
    with Warehouse(db) as wh:
        wh.con.execute("UPDATE meta.checkpoints SET asked_sha256 = NULL")
        wh.con.execute("DELETE FROM raw.aave_v3_a_token_initialized")  # as the old version left it
    s = ingest(anvil.url, db, dep)
    feeds = [k for k in s.reingested if k.startswith("chainlink:")]
    assert len(feeds) == 2 and set(s.reingested) == {"blocks:chain", SOURCE, *feeds}
    assert s.reingested["blocks:chain"] == s.reingested[SOURCE] == head + 1
    assert any("NULL fingerprint" in w for w in s.warnings)
    assert s.blocks_written == head + 1
    assert snapshot(db) == want
    assert _fingerprints(db) == _current(db)


def test_checkpoints_merge_only_equal_fingerprints_and_trim_replaced_ones(tmp_path):
    from ingest.warehouse import CHECKPOINTS

    with Warehouse(tmp_path / "w.duckdb") as wh:
        wh.ensure(CHECKPOINTS)
        with wh.transaction():
            wh.add_covered(1, "blocks", "chain", 0, 99, "r0", "old")
            wh.add_covered(1, "blocks", "chain", 200, 299, "r0", "new")
            wh.con.execute("INSERT INTO meta.checkpoints VALUES (1, 'blocks', 'chain', 300, 399, "
                           "'r-1', now(), NULL, NULL)")
        with wh.transaction():  # inside an old interval: it is cut in two around it
            wh.add_covered(1, "blocks", "chain", 40, 59, "r1", "new")
        assert [iv[:3] for iv in wh.checkpoints(1, "blocks", "chain")] == [
            (0, 39, "old"), (40, 59, "new"), (60, 99, "old"), (200, 299, "new"), (300, 399, None)]
        with wh.transaction():  # touching an equal one merges; touching another does not
            wh.add_covered(1, "blocks", "chain", 100, 199, "r2", "new")
        assert [iv[:3] for iv in wh.checkpoints(1, "blocks", "chain")] == [
            (0, 39, "old"), (40, 59, "new"), (60, 99, "old"), (100, 299, "new"), (300, 399, None)]
        with wh.transaction():  # over several: the replaced parts go, the rest keeps its lineage
            wh.add_covered(1, "blocks", "chain", 20, 350, "r3", "new")
        assert [iv[:3] for iv in wh.checkpoints(1, "blocks", "chain")] == [(0, 19, "old"), (20, 350, "new"),
                                                        (351, 399, None)]
        assert wh.con.execute("SELECT run_id FROM meta.checkpoints ORDER BY from_block"
                              ).fetchall() == [("r0",), ("r3",), ("r-1",)]
        assert wh.covered(1, "blocks", "chain", asked="new") == [(20, 350)]
        assert wh.covered(1, "blocks", "chain") == [(0, 19), (20, 350), (351, 399)]
        with wh.transaction():  # the same declarations, other addresses: not merged either
            wh.add_covered(1, "blocks", "chain", 351, 360, "r4", "new", "addr")
        assert wh.checkpoints(1, "blocks", "chain")[1:3] == [(20, 350, "new", None),
                                                            (351, 360, "new", "addr")]
        assert wh.covered(1, "blocks", "chain", asked="new", addresses="addr") == [(351, 360)]


def test_an_older_warehouse_migrates_and_its_intervals_read_as_unknown(tmp_path):
    """``meta.checkpoints`` of a version before ``asked_sha256``: ``deficit migrate`` appends the
    column (NULL), and nothing of the file counts as ingested under this version's fingerprint
    (the backtest reads NULL too from a file that was not migrated)."""
    from ingest.migrate import apply_migration, plan_migration
    from ingest.warehouse import CHECKPOINTS

    db = tmp_path / "old.duckdb"
    with Warehouse(db) as wh:
        wh.con.execute("CREATE TABLE meta.checkpoints (chain_id UBIGINT NOT NULL, dataset VARCHAR NOT NULL, "
                       "source VARCHAR NOT NULL, from_block UBIGINT NOT NULL, to_block UBIGINT NOT NULL, "
                       "run_id VARCHAR NOT NULL, updated_at TIMESTAMPTZ NOT NULL)")
        wh.con.execute("INSERT INTO meta.checkpoints VALUES (1, 'aave_v3', 'm', 0, 99, 'r0', now())")
        assert wh.checkpoints(1, "aave_v3", "m") == [(0, 99, None, None)]  # unknown, unmigrated
        steps = plan_migration(wh, [CHECKPOINTS])
        assert [(s.table, s.action) for s in steps] == [("meta.checkpoints", "add_columns")]
        apply_migration(wh, steps, [CHECKPOINTS])
        wh.ensure(CHECKPOINTS)
        assert wh.checkpoints(1, "aave_v3", "m") == [(0, 99, None, None)]
        assert wh.covered(1, "aave_v3", "m", asked=asked_fingerprint("aave_v3")) == []


@pytest.mark.anvil
def test_a_contract_added_to_a_deployment_is_fetched_over_ranges_ingested_before(anvil, chain, tmp_path):
    """The deployment's ``oracle`` declared after its range was ingested: its AssetSourceUpdated
    logs were never fetched there (the table stayed empty over an ingested range, and the replay
    found no price source) (fails before)."""
    import re

    m = build_market_chain(chain, seed=8, times=1, datasets=("aave_v3",), rounds=4)
    full = tmp_path / "full.toml"
    full.write_text(m.deployments_toml)
    part = tmp_path / "part.toml"
    part.write_text(re.sub(r"(?m)^oracle = .*\n", "", m.deployments_toml))
    assert part.read_text() != full.read_text()
    head = chain.block_number()
    fresh = tmp_path / "fresh.duckdb"
    ingest(anvil.url, fresh, full)
    db = tmp_path / "w.duckdb"
    ingest(anvil.url, db, part)
    with Warehouse(db, read_only=True) as wh:
        assert not wh.con.execute("SELECT count(*) FROM raw.aave_v3_asset_source_updated").fetchone()[0]
    s = ingest(anvil.url, db, full)
    assert s.reingested == {SOURCE: head + 1}
    assert any("other contract addresses" in w for w in s.warnings)
    assert snapshot(db) == snapshot(fresh)  # rows and checkpoints (both fingerprints)
    with Warehouse(db, read_only=True) as wh:
        assert wh.con.execute("SELECT count(*) FROM raw.aave_v3_asset_source_updated").fetchone()[0] > 0
