"""Incremental backfill: a version that only *adds* events to a role fetches just those over the
intervals stored before, instead of re-ingesting them whole.

Before: ceeadce declared one event (GhoVariableDebtToken ``DiscountPercentUpdated``) for the Aave v3
variable debt token role, and every interval stored before it was stale and re-ingested whole
(every log of the market re-fetched and rewritten) to gain that one rare event.

Truth is a fresh full ingest of the same chain into an empty warehouse under this version's
declarations. An "older version" is this one with the event left out of the catalog: a
monkeypatch of ``AaveV3.EVENT_TABLES`` (the declarations are module-level data built at import, so
there is no other way to run the previous declarations on the same code; the same device as
tests/ingest/test_asked_fingerprint.py). The transport is the real HTTP one, wrapped to record the
``eth_getLogs`` requests it carries.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from eth_hash.auto import keccak

from ingest.datasets import asked_fingerprint
from ingest.datasets.aave_v3 import AaveV3
from ingest.datasets.chainlink import Chainlink
from ingest.deployments import load_deployments
from ingest.devchain import DevChain
from ingest.engine import IngestRequest, run_ingest
from ingest.rpc import JsonRpcClient
from ingest.transports import HttpTransport
from ingest.warehouse import Warehouse

from .chainbuilder import build_market_chain
from .test_ingest_anvil import snapshot

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "aave_v3:aave_v3_test"
GHO_SIG = "DiscountPercentUpdated(address,uint256,uint256)"
GHO_T0 = "0x" + keccak(GHO_SIG.encode()).hex()
GHO_TABLE = "raw.aave_v3_variable_debt_token_discount_percent_updated"
INIT_TABLE = "raw.aave_v3_a_token_initialized"  # the aToken's Initialized (proxy init) event


def _without(mp: pytest.MonkeyPatch, *tables: str) -> None:
    """An older version of deficit: the events of ``tables`` are not declared."""
    reduced = tuple(t for t in AaveV3.EVENT_TABLES if t.table.fqn not in tables)
    assert len(reduced) == len(AaveV3.EVENT_TABLES) - len(tables)
    mp.setattr(AaveV3, "EVENT_TABLES", reduced)


class Recording(HttpTransport):
    """The real HTTP transport, keeping each eth_getLogs request's params."""

    def __init__(self, url: str, seen: list[dict]):
        super().__init__(url)
        self.seen = seen

    def send(self, body: bytes, *, timeout: float):
        msg = json.loads(body)
        for m in msg if isinstance(msg, list) else [msg]:
            if m.get("method") == "eth_getLogs":
                self.seen.append(m["params"][0])
        return super().send(body, timeout=timeout)


def ingest(url: str, db: Path, dep: Path, seen: list[dict] | None = None, **kw):
    rpc = JsonRpcClient(Recording(url, [] if seen is None else seen), backoff_base=0.01)
    try:
        with Warehouse(db) as wh:
            req = IngestRequest(chain_id=31337, deployments=load_deployments(dep), finality="head",
                                endpoint_label="test", chunk_blocks=kw.pop("chunk_blocks", 50),
                                **kw)
            return run_ingest(wh, rpc, req)
    finally:
        rpc.close()


def rows_in_key_order(db: Path, table: str, exclude=("run_id",)) -> tuple[list, list]:
    """(column names in table order, rows by (chain_id, block_number, log_index)) of a log table."""
    with Warehouse(db, read_only=True) as wh:
        cols = [r[0] for r in wh.con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name='raw' AND table_name=? "
            "ORDER BY column_index", [table.split(".")[1]]).fetchall()]
        sel = ", ".join(f'"{c}"' for c in cols if c not in exclude)
        return cols, wh.con.execute(f"SELECT {sel} FROM {table} ORDER BY chain_id, block_number, "
                                    "log_index").fetchall()


@pytest.fixture
def chain(anvil):
    c = DevChain(anvil.url)
    yield c
    c.close()


def _market(chain, tmp_path, seed):
    m = build_market_chain(chain, seed=seed, times=1, datasets=("aave_v3",), rounds=3)
    dep = tmp_path / "dep.toml"
    dep.write_text(m.deployments_toml)
    return m, dep


@pytest.mark.anvil
def test_an_added_event_is_backfilled_alone_and_equals_a_fresh_ingest(anvil, chain, tmp_path,
                                                                      monkeypatch):
    m, dep = _market(chain, tmp_path, seed=21)
    head = chain.block_number()
    vdts = {c.address.lower() for c in m.contracts[("aave_v3", "variable_debt_token")]}
    gho = [e for e in m.emitted if e.table == GHO_TABLE]
    assert len(gho) == len(vdts) == 2  # what the chain emitted: one per variable debt token

    fresh = tmp_path / "fresh.duckdb"
    fresh_seen: list[dict] = []
    ingest(anvil.url, fresh, dep, fresh_seen, chunk_blocks=10, chunk_rows=0)
    db = tmp_path / "w.duckdb"
    with monkeypatch.context() as mp:
        _without(mp, GHO_TABLE)
        old_fp = AaveV3().asked_sha256()
        ingest(anvil.url, db, dep, chunk_blocks=10, chunk_rows=0)
    assert old_fp != asked_fingerprint("aave_v3")
    before = snapshot(db, exclude=())

    seen: list[dict] = []
    s = ingest(anvil.url, db, dep, seen, chunk_blocks=10, chunk_rows=0)
    # nothing re-ingested whole; one stored interval backfilled with one event
    assert s.reingested == {}
    assert s.backfilled == {SOURCE: {"intervals": 1, "blocks": head + 1, "events": [GHO_SIG]}}
    assert s.backfill_line().startswith("backfilled 1 interval (")
    assert "for 1 added event: " + GHO_SIG in s.backfill_line()
    assert s.blocks_written == 0 and s.logs_written == len(gho)
    # only the added topic was asked for, only of the role's contracts, chunk by chunk
    assert seen and all(p["topics"] == [[GHO_T0]] for p in seen), seen
    # the requests a full ingest makes for that event (the variable debt tokens known by each
    # chunk's end), with that topic alone
    asked = sorted((p["fromBlock"], p["toBlock"], tuple(sorted(p["address"]))) for p in seen)
    assert asked == sorted((p["fromBlock"], p["toBlock"], tuple(sorted(p["address"])))
                           for p in fresh_seen if GHO_T0 in p["topics"][0])
    assert vdts <= {a.lower() for p in seen for a in p["address"]}

    # the result is a fresh full ingest's: every raw table, the checkpoints (with this
    # version's fingerprint), and raw.logs / the new table column for column in key order
    assert snapshot(db) == snapshot(fresh)
    for t in ("raw.logs", GHO_TABLE):
        assert rows_in_key_order(db, t) == rows_in_key_order(fresh, t)
    with Warehouse(db, read_only=True) as wh:
        got = {r[0]: r[1:] for r in wh.con.execute(
            f"SELECT tx_hash, address, \"user\", old_discount_percent, new_discount_percent FROM "
            f"{GHO_TABLE}").fetchall()}
    assert got == {e.tx_hash: (e.address.lower(), e.values["user"], e.values["old_discount_percent"],
                               e.values["new_discount_percent"]) for e in gho}
    # the rows stored before are untouched: the same rows, with the old run's lineage
    after = snapshot(db, exclude=())
    for t, rows in before.items():
        if t != "checkpoints":
            assert set(map(repr, rows)) <= set(map(repr, after[t])), t
    assert all(len(after[t]) == len(rows) for t, rows in before.items()
               if t not in ("checkpoints", "logs"))
    assert len(after["logs"]) == len(before["logs"]) + len(gho)
    # and a rerun does nothing
    s = ingest(anvil.url, db, dep, chunk_blocks=10, chunk_rows=0)
    assert (s.backfilled, s.reingested, s.chunks, s.logs_written) == ({}, {}, 0, 0)


@pytest.mark.anvil
def test_the_cli_says_what_it_backfilled(anvil, chain, tmp_path, monkeypatch, capsys):
    """``deficit ingest`` prints "backfilled N interval(s) ... for K added event(s)" (and --json
    gives it, with the blocks and events by source)."""
    import shutil

    from ingest.cli import main

    m, dep = _market(chain, tmp_path, seed=22)
    db = tmp_path / "w.duckdb"
    with monkeypatch.context() as mp:
        _without(mp, GHO_TABLE)
        ingest(anvil.url, db, dep)
    shutil.copy(db, tmp_path / "w2.duckdb")
    args = ["ingest", "--rpc", anvil.url, "--deployments", str(dep), "--head"]
    capsys.readouterr()
    assert main([*args, "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert "backfilled 1 interval (" in text and f"for 1 added event: {GHO_SIG}" in text
    assert main([*args, "--db", str(tmp_path / "w2.duckdb"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["backfill"].startswith("backfilled 1 interval (")
    assert out["backfill"].endswith(f"for 1 added event: {GHO_SIG}")
    assert out["backfilled"] == {SOURCE: {"intervals": 1, "blocks": chain.block_number() + 1,
                                          "events": [GHO_SIG]}}
    assert out["reingested_blocks"] == {}


def test_only_additions_are_backfilled_anything_else_is_reingested_whole():
    """:meth:`LogDataset.added_topics` against this version's declarations."""
    d = AaveV3()
    new = json.loads(d.asked_doc())
    less = json.loads(json.dumps(new))
    less["topics"]["variable_debt_token"].remove(GHO_T0)
    less["tables"].pop(GHO_TABLE)
    assert d.added_topics(json.dumps(less)) == {"variable_debt_token": (GHO_T0,)}
    # an event removed since (the old doc asked for one this version does not)
    more = json.loads(json.dumps(new))
    more["topics"]["pool"].append("0x" + "ab" * 32)
    assert d.added_topics(json.dumps(more)) is None
    # another ingest format
    fmt = json.loads(json.dumps(less))
    fmt["ingest_format"] += 1
    assert d.added_topics(json.dumps(fmt)) is None
    # a stored table's columns changed
    cols = json.loads(json.dumps(less))
    cols["tables"]["raw.logs"] = cols["tables"]["raw.logs"][:-1]
    assert d.added_topics(json.dumps(cols)) is None
    # an added event that token discovery reads (ReserveInitialized): the tokens' other events
    # were never fetched there
    ri = next(t for t in d.EVENT_TABLES if t.spec.name == "ReserveInitialized")
    disc = json.loads(json.dumps(new))
    disc["topics"]["pool_configurator"].remove(ri.spec.topic0)
    disc["tables"].pop(ri.table.fqn)
    assert d.added_topics(json.dumps(disc)) is None
    # Chainlink's AnswerUpdated feeds raw.oracle_rounds (derived): not backfilled; OCR's
    # NewTransmission is not read by anything derived: backfilled
    c = Chainlink()
    cnew = json.loads(c.asked_doc())
    for name, ok in (("AnswerUpdated", False), ("NewTransmission", True)):
        et = next(t for t in c.EVENT_TABLES if t.spec.name == name)
        old = json.loads(json.dumps(cnew))
        old["topics"]["aggregator"].remove(et.spec.topic0)
        old["tables"].pop(et.table.fqn)
        got = c.added_topics(json.dumps(old))
        assert got == ({"aggregator": (et.spec.topic0,)} if ok else None), name
    # nothing added (the same doc) and garbage
    assert d.added_topics(d.asked_doc()) is None
    assert d.added_topics("not json") is None


def test_a_warehouse_of_the_version_before_the_gho_event_is_recognised():
    """A warehouse ingested before ceeadce has no ``meta.asked_sets``: its aave_v3 fingerprint
    is recognised as this version's declarations less DiscountPercentUpdated. The fingerprint
    is the one ceeadce^'s code computes (``git archive ceeadce^ ingest`` run in a scratch
    directory: ``asked_fingerprint('aave_v3')``), not one this code produced."""
    before_gho = "734e228b49f43bd585a06ca4ede5d6024ed43e06ff234800e3e6d2cd009980e6"
    d = AaveV3()
    docs = d.earlier_docs()
    assert before_gho in docs
    assert d.added_topics(docs[before_gho]) == {"variable_debt_token": (GHO_T0,)}


# A real SIGKILL of the ingest process at a chosen instant of the backfill: the CLI runs in a
# subprocess whose Warehouse.add_covered / engine._chunk are wrapped to kill the process itself
# (the wrap only picks the instant; nothing is faked).
_KILLER = r"""
import os, signal, sys
from ingest import engine, warehouse
where, n = sys.argv[1], int(sys.argv[2])
calls = [0]
if where == "in_tx":  # inside the chunk's transaction: rows written, checkpoint not yet
    real = warehouse.Warehouse.add_covered
    def hook(self, chain_id, dataset, *a, **kw):
        if dataset == "aave_v3":
            calls[0] += 1
            if calls[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(self, chain_id, dataset, *a, **kw)
    warehouse.Warehouse.add_covered = hook
else:  # after the chunk's commit
    real = engine._chunk
    def hook(*a, **kw):
        out = real(*a, **kw)
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    engine._chunk = hook
from ingest.cli import main
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.anvil
@pytest.mark.parametrize("kills", [
    # inside the transaction of the chunk holding the first added log (its rows written, not
    # committed); after the second chunk's commit
    (("in_tx", 0), ("after_commit", 2)),
    # the first chunk's transaction; after the last chunk's commit (before the run is closed)
    pytest.param((("in_tx", 1), ("after_commit", -1)), marks=pytest.mark.slow),
])
def test_a_backfill_killed_9_anywhere_resumes_to_the_uninterrupted_result(anvil, chain, tmp_path,
                                                                           monkeypatch, kills):
    import shutil

    m, dep = _market(chain, tmp_path, seed=23)
    head = chain.block_number()
    fresh = tmp_path / "fresh.duckdb"
    ingest(anvil.url, fresh, dep, chunk_blocks=7, chunk_rows=0)
    old = tmp_path / "old.duckdb"
    with monkeypatch.context() as mp:
        _without(mp, GHO_TABLE)
        ingest(anvil.url, old, dep, chunk_blocks=7, chunk_rows=0)
    done = tmp_path / "done.duckdb"  # the uninterrupted backfill
    shutil.copy(old, done)
    s = ingest(anvil.url, done, dep, chunk_blocks=7, chunk_rows=0)
    assert s.backfilled and not s.reingested
    want = snapshot(done)
    assert want == snapshot(fresh)
    args = ["ingest", "--rpc", anvil.url, "--deployments", str(dep), "--head",
            "--chunk-blocks", "7", "--chunk-rows", "0", "--json"]
    chunks = -(-(head + 1) // 7)
    with Warehouse(fresh, read_only=True) as wh:
        first = wh.con.execute(f"SELECT min(block_number) FROM {GHO_TABLE}").fetchone()[0]
    for where, n in kills:
        n = {-1: chunks, 0: first // 7 + 1}.get(n, n)
        db = tmp_path / f"{where}{n}.duckdb"
        shutil.copy(old, db)
        p = subprocess.run([sys.executable, "-c", _KILLER, where, str(n), *args, "--db", str(db)],
                           cwd=ROOT, capture_output=True, timeout=300)
        assert p.returncode == -9, p.stderr.decode()
        with Warehouse(db, read_only=True) as wh:
            ivs = [(a, b, f) for a, b, f, _ in wh.checkpoints(31337, "aave_v3", "aave_v3_test")]
            n_gho = wh.con.execute(f"SELECT count(*) FROM {GHO_TABLE}").fetchone()[0]
            in_new = wh.con.execute(
                f"SELECT count(*) FROM {GHO_TABLE} g JOIN meta.checkpoints c ON c.dataset = "
                "'aave_v3' AND g.block_number BETWEEN c.from_block AND c.to_block AND "
                "c.asked_sha256 = ?", [asked_fingerprint("aave_v3")]).fetchone()[0]
        # what was committed is whole chunks: every backfilled row lies in an interval now
        # under this version's fingerprint, and the rest still carries the old one
        assert n_gho == in_new, (where, n)
        if (where, n) == ("in_tx", first // 7 + 1):
            assert n_gho == 0  # the killed transaction held the first added log: gone with it
        committed = {"in_tx": n - 1, "after_commit": n}[where]
        if 0 < committed < chunks:
            assert len(ivs) == 2 and ivs[0][:2] == (0, 7 * committed - 1), ivs
        p = subprocess.run([sys.executable, "-m", "ingest.cli", *args, "--db", str(db)],
                           cwd=ROOT, capture_output=True, timeout=300)
        assert p.returncode == 0, p.stderr.decode()
        out = json.loads(p.stdout)
        assert out["reingested_blocks"] == {}
        if committed < chunks:
            assert out["backfilled"][SOURCE]["blocks"] == head + 1 - 7 * committed
        assert snapshot(db) == want, (where, n)


@pytest.mark.anvil
def test_a_backfill_refuses_a_log_already_stored(anvil, chain, tmp_path, monkeypatch):
    """An interval whose fingerprint says the event was not asked for, yet holding its logs (a
    warehouse edited by hand): the backfill would store each of them twice; it stops with the
    block and log instead, and writes nothing."""
    from ingest.errors import ChainDataError

    m, dep = _market(chain, tmp_path, seed=24)
    db = tmp_path / "w.duckdb"
    ingest(anvil.url, db, dep)
    with monkeypatch.context() as mp:
        _without(mp, GHO_TABLE)
        old_fp = AaveV3().asked_sha256()
    with Warehouse(db) as wh:
        wh.con.execute("UPDATE meta.checkpoints SET asked_sha256 = ? WHERE dataset = 'aave_v3'",
                       [old_fp])
        first = wh.con.execute(f"SELECT min(block_number) FROM {GHO_TABLE}").fetchone()[0]
    before = snapshot(db, exclude=())
    with pytest.raises(ChainDataError, match=f"block {first} log index .* is stored already"):
        ingest(anvil.url, db, dep)
    after = snapshot(db, exclude=())
    assert after == before


def test_deficit_migrate_creates_meta_asked_sets_in_an_older_warehouse(tmp_path, capsys):
    """A warehouse of a version before ``meta.asked_sets``: ``deficit migrate`` says the table
    is missing and ``--apply`` creates it (empty); its intervals' fingerprints stay unknown
    there, so they are recognised only as this version's declarations less one event."""
    from ingest.cli import main
    from ingest.schema import registered_tables

    db = tmp_path / "old.duckdb"
    with Warehouse(db) as wh:
        wh.ensure(*[t for t in registered_tables() if t.fqn != "meta.asked_sets"])
        assert wh.asked_doc("00" * 32) is None  # no table: unknown, not an error
    capsys.readouterr()
    assert main(["migrate", "--db", str(db)]) == 0
    assert "meta.asked_sets: missing" in capsys.readouterr().out
    assert main(["migrate", "--db", str(db), "--apply"]) == 0
    with Warehouse(db, read_only=True) as wh:
        assert wh.con.execute("SELECT count(*) FROM meta.asked_sets").fetchone()[0] == 0
        assert wh.asked_doc("00" * 32) is None


@pytest.mark.anvil
def test_an_unrecorded_older_range_is_backfilled_and_the_rest_ingested_in_the_same_chunks(
        anvil, chain, tmp_path, monkeypatch):
    """A warehouse of the version before the GHO event and before ``meta.asked_sets`` (dropped
    here), ingested up to a block inside a chunk: its fingerprint is recognised (this version's
    declarations less that event), so that part is backfilled while the blocks above it are
    ingested in full, in the same chunk's transaction; the result is a fresh ingest's."""
    m, dep = _market(chain, tmp_path, seed=25)
    head = chain.block_number()
    mid = head // 2 + 3
    assert mid % 10 not in (0, 9)  # inside a chunk
    fresh = tmp_path / "fresh.duckdb"
    ingest(anvil.url, fresh, dep, chunk_blocks=10, chunk_rows=0)
    db = tmp_path / "w.duckdb"
    with monkeypatch.context() as mp:
        _without(mp, GHO_TABLE)
        ingest(anvil.url, db, dep, chunk_blocks=10, chunk_rows=0, to_block=mid)
    with Warehouse(db) as wh:
        wh.con.execute("DROP TABLE meta.asked_sets")
    seen: list[dict] = []
    s = ingest(anvil.url, db, dep, seen, chunk_blocks=10, chunk_rows=0)
    assert s.backfilled == {SOURCE: {"intervals": 1, "blocks": mid + 1, "events": [GHO_SIG]}}
    # (the feeds, deployed after mid, had other phases then: they are re-ingested)
    assert SOURCE not in s.reingested
    assert snapshot(db) == snapshot(fresh)
    assert rows_in_key_order(db, "raw.logs") == rows_in_key_order(fresh, "raw.logs")
    # below mid only the added event was asked for of the market; above it, every event
    feeds = {c.address.lower() for cs in m.aggregators.values() for c in cs} | {
        c.address.lower() for c in m.feeds.values()}
    for p in seen:
        if {a.lower() for a in p["address"]} <= feeds:
            continue
        lo, hi = int(p["fromBlock"], 16), int(p["toBlock"], 16)
        assert hi <= mid or lo > mid, (lo, hi)
        assert lo > mid or p["topics"] == [[GHO_T0]], p
    assert any(int(p["fromBlock"], 16) > mid and len(p["topics"][0]) > 1 for p in seen)
