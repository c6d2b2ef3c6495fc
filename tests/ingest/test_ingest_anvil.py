"""End to end on a real anvil: ingest what real contracts emitted, exactly; idempotence; finality.

The chain is built by :mod:`tests.ingest.chainbuilder` (generated emitters with the mainnet event
declarations, ported Chainlink aggregators behind a phased proxy). Truth: the arguments we sent,
and for oracle rounds the proxy's own ``getRoundData`` read back by eth_call.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ingest.deployments import load_deployments
from ingest.devchain import DevChain
from ingest.engine import IngestRequest, resolve_block_at, run_ingest
from ingest.errors import ConfigError
from ingest.rpc import JsonRpcClient
from ingest.transports import HttpTransport
from ingest.warehouse import Warehouse

from .chainbuilder import build_market_chain

pytestmark = pytest.mark.anvil


def ingest(url: str, db: Path, dep: Path, **kw) -> object:
    rpc = JsonRpcClient(HttpTransport(url), backoff_base=0.01)
    try:
        with Warehouse(db) as wh:
            req = IngestRequest(chain_id=31337, deployments=load_deployments(dep),
                                finality=kw.pop("finality", "head"), endpoint_label="test",
                                chunk_blocks=kw.pop("chunk_blocks", 50), **kw)
            return run_ingest(wh, rpc, req)
    finally:
        rpc.close()


def snapshot(db: Path, exclude=("run_id", "updated_at", "discovered_at_block")) -> dict:
    """Every raw table (and the checkpoints' coverage), sorted, without run lineage columns."""
    out = {}
    with Warehouse(db, read_only=True) as wh:
        con = wh.con
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name='raw' ORDER BY 1").fetchall()]
        for t in tables:
            cols = [r[0] for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name='raw' AND table_name=? "
                "ORDER BY column_index", [t]).fetchall() if r[0] not in exclude]
            sel = ", ".join(f'"{c}"' for c in cols)
            out[t] = con.execute(f"SELECT {sel} FROM raw.{t} ORDER BY ALL").fetchall()
        out["checkpoints"] = con.execute(
            "SELECT chain_id, dataset, source, from_block, to_block, asked_sha256, addresses_sha256 "
            "FROM meta.checkpoints "
            "ORDER BY ALL").fetchall()
    return out


@pytest.fixture
def market(anvil, tmp_path):
    chain = DevChain(anvil.url)
    m = build_market_chain(chain, seed=3, times=2)
    dep = tmp_path / "deployments.toml"
    dep.write_text(m.deployments_toml)
    yield anvil, chain, m, dep
    chain.close()


def test_decoded_rows_equal_what_the_contracts_emitted(market, tmp_path):
    node, chain, m, dep = market
    db = tmp_path / "w.duckdb"
    s = ingest(node.url, db, dep)
    assert s.logs_written > len(m.emitted)
    with Warehouse(db, read_only=True) as wh:
        checked = 0
        for e in m.emitted:
            cols = list(e.values)
            sel = "".join(f'"{c}", ' for c in cols)
            rows = wh.con.execute(f"SELECT {sel}address FROM {e.table} WHERE tx_hash = ?",
                                  [e.tx_hash]).fetchall()
            assert len(rows) == 1, (e.table, e.tx_hash)
            got = dict(zip(cols, rows[0][:-1], strict=True))
            assert got == e.values, e.table
            assert rows[0][-1] == e.address
            checked += 1
        assert checked == len(m.emitted)
        # every raw log is either decoded into exactly one typed table or is a Chainlink log
        n_raw = wh.con.execute("SELECT count(*) FROM raw.logs").fetchone()[0]
        assert n_raw == s.logs_written
        # lineage: every decoded row's block hash is the stored block's hash
        bad = wh.con.execute(
            "SELECT count(*) FROM raw.logs l LEFT JOIN raw.blocks b ON b.number = l.block_number "
            "WHERE b.hash IS DISTINCT FROM l.block_hash").fetchone()[0]
        assert bad == 0


def test_oracle_rounds_match_the_proxy_on_chain(market, tmp_path):
    node, chain, m, dep = market
    db = tmp_path / "w.duckdb"
    ingest(node.url, db, dep)
    with Warehouse(db, read_only=True) as wh:
        phases = wh.con.execute(
            "SELECT phase_id, aggregator, first_block FROM raw.oracle_phases WHERE feed=? "
            "ORDER BY 1", [m.feeds["ETH / USD"].address]).fetchall()
        assert [(p, a) for p, a, _ in phases] == [
            (1, m.aggregators["ETH / USD"][0].address), (2, m.aggregators["ETH / USD"][1].address)]
        rows = wh.con.execute(
            "SELECT feed, phase_id, aggregator_round_id, proxy_round_id, answer, updated_at_ts, "
            "block_number, block_timestamp_ts FROM raw.oracle_rounds ORDER BY feed, proxy_round_id"
        ).fetchall()
    assert len(rows) == 12 * 3
    proxies = {c.address: c for c in m.feeds.values()}
    for feed, phase, agg_round, proxy_round, answer, updated, block, block_ts in rows:
        assert proxy_round == (phase << 64) | agg_round
        rid, ans, _started, upd, _ = chain.call(proxies[feed], "getRoundData", proxy_round)
        assert (rid, ans, upd) == (proxy_round, answer, updated)
        assert updated == block_ts  # the aggregators stamp block.timestamp
        # the phase recorded for the round is the one the proxy was in at that block
        first_of_phase = {p: fb for p, _, fb in phases}
        if feed == m.feeds["ETH / USD"].address:
            assert block >= first_of_phase[phase]
    # phase 2 started exactly where confirmAggregator was mined: phaseId() says so
    p2 = dict((p, fb) for p, _, fb in phases)[2]
    proxy = m.feeds["ETH / USD"]
    assert chain.call(proxy, "phaseId", block=p2)[0] == 2
    assert chain.call(proxy, "phaseId", block=p2 - 1)[0] == 1


def test_second_run_changes_nothing_and_resume_extends(market, tmp_path):
    node, chain, m, dep = market
    db = tmp_path / "w.duckdb"
    head = chain.block_number()
    ingest(node.url, db, dep, to_block=head // 2)
    ingest(node.url, db, dep)
    first = snapshot(db, exclude=())
    s = ingest(node.url, db, dep)
    assert s.logs_written == 0 and s.blocks_written == 0
    assert snapshot(db, exclude=()) == first
    fresh = tmp_path / "fresh.duckdb"
    ingest(node.url, fresh, dep)
    assert snapshot(fresh) == snapshot(db)


def test_merged_chunks_write_the_same_tables_in_fewer_transactions(market, tmp_path):
    """``chunk_rows`` merges consecutive ``chunk_blocks`` ranges into one transaction as the
    density seen so far allows: the tables equal one range per transaction, in fewer chunks, and
    every chunk is a whole number of grid ranges."""
    node, chain, m, dep = market
    seen: list[tuple[int, int]] = []

    def run(db: Path, rows: int) -> object:
        rpc = JsonRpcClient(HttpTransport(node.url), backoff_base=0.01)
        try:
            with Warehouse(db) as wh:
                req = IngestRequest(chain_id=31337, deployments=load_deployments(dep), finality="head",
                                    endpoint_label="test", chunk_blocks=5, chunk_rows=rows)
                return run_ingest(wh, rpc, req, lambda p: seen.append(p.chunk) if rows else None)
        finally:
            rpc.close()

    single = run(tmp_path / "single.duckdb", 0)
    merged = run(tmp_path / "merged.duckdb", 200)
    assert snapshot(tmp_path / "merged.duckdb") == snapshot(tmp_path / "single.duckdb")
    assert merged.logs_written == single.logs_written and merged.blocks_written == single.blocks_written
    assert merged.chunks < single.chunks
    assert seen[0][1] - seen[0][0] < 5 and any(b - a + 1 > 5 for a, b in seen)  # it grew
    assert all((b + 1) % 5 == 0 for a, b in seen[:-1])  # chunks end on the grid
    assert all(nxt[0] == prev[1] + 1 for prev, nxt in zip(seen, seen[1:], strict=False))


def test_merged_chunks_follow_a_density_that_rises_mid_range(anvil, tmp_path):
    """Chunks are sized from the density of the last chunk written, not the average since the
    start: after a long sparse stretch (headers only), a dense one (a source becoming active)
    gets chunks near ``chunk_rows`` again soon after the transition, instead of chunks several
    times larger until the average catches up."""
    from .test_reorg_resume import _tail_activity

    chain = DevChain(anvil.url)
    m = build_market_chain(chain, seed=3, times=1, datasets=("aave_v3",), rounds=2)
    chain.mine(1500)  # sparse: one row (the header) per block
    dense_from = chain.block_number() + 1
    _tail_activity(chain, m, 700, seed=3)  # dense: ~5 rows per block
    dep = tmp_path / "dep.toml"
    dep.write_text(m.deployments_toml)
    seen: list[tuple[int, int]] = []
    target = 100
    rpc = JsonRpcClient(HttpTransport(anvil.url), backoff_base=0.01)
    try:
        with Warehouse(tmp_path / "w.duckdb") as wh:
            req = IngestRequest(chain_id=31337, deployments=load_deployments(dep), finality="head",
                                endpoint_label="test", chunk_blocks=5, chunk_rows=target)
            run_ingest(wh, rpc, req, lambda p: seen.append(p.chunk))
            rows = [wh.con.execute(
                "SELECT (SELECT count(*) FROM raw.logs WHERE block_number BETWEEN $1 AND $2) + "
                "(SELECT count(*) FROM raw.blocks WHERE number BETWEEN $1 AND $2)", [a, b]
            ).fetchone()[0] for a, b in seen]
    finally:
        rpc.close()
        chain.close()
    dense = [(c, n) for c, n in zip(seen, rows, strict=True) if c[1] >= dense_from]
    assert sum(n for _, n in dense) > 4 * 700  # the dense stretch is there
    # the transition costs at most three large chunks (the one spanning it, the next, sized
    # before that one was written, and the one sized from the chunk spanning it); every later
    # chunk is near the target
    assert len(dense) > 6 and all(n <= 2 * target for _, n in dense[3:-1]), dense


def test_finalized_watermark_and_flags(market, tmp_path):
    node, chain, m, dep = market
    chain.mine(100)
    head = chain.block_number()
    db = tmp_path / "w.duckdb"
    s = ingest(node.url, db, dep, finality="finalized")
    final = int(chain.rpc("eth_getBlockByNumber", ["finalized", False])["number"], 16)
    assert s.to_block == final < head
    s2 = ingest(node.url, db, dep, finality="head")
    assert s2.to_block == head
    with Warehouse(db, read_only=True) as wh:
        flags = wh.con.execute(
            "SELECT finality_at_ingest, min(number), max(number) FROM raw.blocks GROUP BY 1 "
            "ORDER BY 1").fetchall()
    assert flags == [("finalized", 0, final), ("unfinalized", final + 1, head)]
    s3 = ingest(node.url, tmp_path / "c.duckdb", dep, finality=10)
    assert s3.to_block == head - 10


def test_to_above_watermark_is_clipped_and_from_above_is_an_error(market, tmp_path):
    node, chain, m, dep = market
    head = chain.block_number()
    s = ingest(node.url, tmp_path / "w.duckdb", dep, finality=5, to_block=head)
    assert s.clipped_to == head - 5 and s.to_block == head - 5
    with pytest.raises(ConfigError, match="nothing to ingest"):
        ingest(node.url, tmp_path / "x.duckdb", dep, finality=5, from_block=head)


def test_iso_times_resolve_by_binary_search_on_timestamps(anvil_factory):
    node = anvil_factory(timestamp=1_700_000_000)
    chain = DevChain(node.url)
    for i in range(1, 40):
        chain.set_next_timestamp(1_700_000_000 + 60 * i)
        chain.mine(1)
    rpc = JsonRpcClient(HttpTransport(node.url))
    t = dt.datetime.fromtimestamp(1_700_000_000 + 60 * 10 + 30, dt.UTC)
    assert resolve_block_at(rpc, t, first_at_or_after=True) == 11
    assert resolve_block_at(rpc, t, first_at_or_after=False) == 10
    exact = dt.datetime.fromtimestamp(1_700_000_000 + 60 * 7, dt.UTC)
    assert resolve_block_at(rpc, exact, first_at_or_after=True) == 7
    assert resolve_block_at(rpc, exact, first_at_or_after=False) == 7
    with pytest.raises(ConfigError):
        resolve_block_at(rpc, dt.datetime(2030, 1, 1, tzinfo=dt.UTC), first_at_or_after=True)
    with pytest.raises(ConfigError, match="UTC offset"):
        resolve_block_at(rpc, dt.datetime(2030, 1, 1), first_at_or_after=True)
    rpc.close()
    chain.close()


def test_feed_phases_without_node_state_use_declared_aggregators_or_fail_clearly(market, tmp_path):
    node, chain, m, dep = market
    early = chain.block_number()
    chain.mine(700)  # past anvil's in-memory state window (~500 blocks): like a non-archive node
    proxy = m.feeds["ETH / USD"].address
    flux, ocr = (a.address for a in m.aggregators["ETH / USD"])
    only_eth = m.deployments_toml
    with pytest.raises(ConfigError, match="no state at block"):
        ingest(node.url, tmp_path / "a.duckdb", dep, to_block=early)
    declared = only_eth.replace(
        f'proxy = "{proxy}"',
        f'proxy = "{proxy}"\naggregators = [{{phase = 1, address = "{flux}"}}, '
        f'{{phase = 2, address = "{ocr}"}}]')
    usdc = m.feeds["USDC / USD"].address
    declared = declared.replace(
        f'proxy = "{usdc}"',
        f'proxy = "{usdc}"\naggregators = [{{phase = 1, address = '
        f'"{m.aggregators["USDC / USD"][0].address}"}}]')
    dep2 = tmp_path / "declared.toml"
    dep2.write_text(declared)
    s = ingest(node.url, tmp_path / "b.duckdb", dep2, to_block=early)
    assert any("declared phase aggregator" in w for w in s.warnings)
    with Warehouse(tmp_path / "b.duckdb", read_only=True) as wh:
        assert wh.con.execute("SELECT count(*) FROM raw.oracle_rounds").fetchall() == [(36,)]
        assert wh.con.execute("SELECT count(*) FROM raw.oracle_phases WHERE first_block IS NULL"
                              ).fetchall() == [(3,)]


def test_feed_rules_declared_in_the_deployments_are_stored(market, tmp_path):
    """raw.oracle_feeds keeps each feed's declared deviation threshold, heartbeat and bounds (the
    oracle_lag metric's defaults); a rerun with the same declaration writes nothing, a changed
    declaration replaces the row."""
    node, chain, m, dep = market
    eth = m.feeds["ETH / USD"].address
    text = m.deployments_toml.replace(f'proxy = "{eth}"', f'proxy = "{eth}"\ndeviation_bps = 50\n'
                                      'heartbeat_s = 3600\nmin_answer = 1\nmax_answer = 10000000000000')
    assert text != m.deployments_toml
    dep.write_text(text)
    db = tmp_path / "w.duckdb"
    ingest(node.url, db, dep)

    def rows() -> list[tuple]:
        with Warehouse(db, read_only=True) as wh:
            return wh.con.execute("SELECT feed, feed_name, decimals, deviation_bps, heartbeat_s, "
                                  "min_answer, max_answer, declared_in, run_id FROM raw.oracle_feeds "
                                  "ORDER BY feed").fetchall()

    first = rows()
    by_feed = {r[0]: r for r in first}
    assert set(by_feed) == {c.address for c in m.feeds.values()}
    assert by_feed[eth][1:8] == ("ETH / USD", 8, 50, 3600, 1, 10**13, str(dep))
    other = next(r for f, r in by_feed.items() if f != eth)
    assert other[3:7] == (None, None, None, None)  # not declared: NULL, not a default
    ingest(node.url, db, dep)
    assert rows() == first  # same declaration: untouched (run ids included)
    dep.write_text(text.replace("heartbeat_s = 3600", "heartbeat_s = 86400"))
    ingest(node.url, db, dep)
    after = {r[0]: r for r in rows()}
    assert after[eth][4] == 86400 and after[eth][8] != by_feed[eth][8]
    assert after[other[0]] == other


def test_a_to_time_after_the_head_says_the_range_stops_short_of_it(anvil_factory, tmp_path, capsys):
    """--to 2099-01-01T00:00:00Z --head on a chain whose head is at 1_700_000_600: the last block
    at or before that time is not known yet (blocks still to come are before it), so the run
    stops at the head. Without --head the watermark's clip warned; with it the range silently
    ended at the head, short of the time asked for (fails before). A --to time before the
    head's says nothing."""
    import json

    from ingest.cli import main

    node = anvil_factory(timestamp=1_700_000_000)
    chain = DevChain(node.url)
    for i in range(1, 11):
        chain.set_next_timestamp(1_700_000_000 + 60 * i)
        chain.mine(1)
    chain.close()

    def run(to: str, db: str) -> dict:
        assert main(["ingest", "--rpc", node.url, "--chain", "31337", "--datasets", "blocks",
                     "--from", "0", "--to", to, "--head", "--db", str(tmp_path / db),
                     "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    out = run("2099-01-01T00:00:00Z", "a.duckdb")
    assert out["to_block"] == 10
    assert any("after the head block 10" in w for w in out["warnings"]), out["warnings"]
    out = run(dt.datetime.fromtimestamp(1_700_000_000 + 60 * 5 + 30, dt.UTC).isoformat(), "b.duckdb")
    assert (out["to_block"], out["warnings"]) == (5, [])


def test_tokens_of_a_reserve_initialized_in_a_gap_below_the_run_are_ingested(anvil, tmp_path):
    """An Aave market ingested up to block H1; a reserve is initialized at a block above H1; a
    later run starts further up (--from S, leaving H1+1..S-1 unstored). The tokens were looked
    for in the stored ReserveInitialized rows and, below the lowest stored block, in the
    configurator's logs: not in the gap between the stored range and S, so the new reserve's
    aToken and debt token events from S on were never fetched, while the checkpoints said the
    range was ingested (filling the gap later does not refetch it) (fails before)."""
    import random

    from ingest.datasets.aave import TOKEN_ROLES
    from ingest.demo import emitter_name

    from .chainbuilder import MarketChain, emit_all

    chain = DevChain(anvil.url)
    m = build_market_chain(chain, seed=9, times=1, datasets=("aave_v3",), rounds=2)
    dep = tmp_path / "dep.toml"
    dep.write_text(m.deployments_toml)
    db = tmp_path / "w.duckdb"
    ingest(anvil.url, db, dep, to_block=chain.block_number())
    chain.mine(5)
    toks = {r: chain.deploy(emitter_name("aave_v3", r)) for r in TOKEN_ROLES}
    configurator = m.contracts[("aave_v3", "pool_configurator")][0]
    chain.send(configurator, "emitReserveInitialized", "0x" + "ab" * 20, toks["a_token"].address,
               toks["stable_debt_token"].address, toks["variable_debt_token"].address,
               "0x" + "cd" * 20)
    chain.mine(5)
    start = chain.block_number() + 1
    later = MarketChain("")
    for r, c in toks.items():
        emit_all(chain, "aave_v3", r, c, random.Random(1), 1, later)
    assert later.emitted and all(chain.receipt(e.tx_hash)["blockNumber"] for e in later.emitted)
    ingest(anvil.url, db, dep, from_block=start)
    with Warehouse(db, read_only=True) as wh:
        missing = [(e.table, e.address) for e in later.emitted if not wh.con.execute(
            f"SELECT count(*) FROM {e.table} WHERE tx_hash = ?", [e.tx_hash]).fetchall()[0][0]]
    assert missing == [], missing
    chain.close()


@pytest.mark.anvil
def test_tokens_of_a_reserve_initialized_where_the_configurator_was_not_yet_declared(anvil, tmp_path):
    """An Aave market ingested up to H1 without its pool_configurator in the deployments (so no
    ReserveInitialized was fetched there); the configurator is then declared and a later run
    starts above H1 (--from S). The tokens were looked for in the stored ReserveInitialized rows
    and, in the blocks not stored under this version's declarations, in the configurator's logs:
    [0, H1] counted as stored (same declarations, though other addresses), so the reserves
    initialized there were never found, and their aToken and debt token events from S on were
    missing from a range marked ingested (fails before)."""
    import random
    import re

    from .chainbuilder import MarketChain, emit_all

    chain = DevChain(anvil.url)
    m = build_market_chain(chain, seed=12, times=1, datasets=("aave_v3",), rounds=2)
    full = tmp_path / "full.toml"
    full.write_text(m.deployments_toml)
    part = tmp_path / "part.toml"
    part.write_text(re.sub(r"(?m)^pool_configurator = .*\n", "", m.deployments_toml))
    assert part.read_text() != full.read_text()
    db = tmp_path / "w.duckdb"
    h1 = chain.block_number()
    ingest(anvil.url, db, part, to_block=h1)
    chain.mine(5)
    start = chain.block_number() + 1
    later = MarketChain("")
    rng = random.Random(2)
    for r in ("a_token", "variable_debt_token"):
        for c in m.contracts[("aave_v3", r)]:
            emit_all(chain, "aave_v3", r, c, rng, 1, later)
    assert later.emitted
    ingest(anvil.url, db, full, from_block=start)
    with Warehouse(db, read_only=True) as wh:
        missing = [(e.table, e.address) for e in later.emitted if not wh.con.execute(
            f"SELECT count(*) FROM {e.table} WHERE tx_hash = ?", [e.tx_hash]).fetchall()[0][0]]
    assert missing == [], missing
    chain.close()


def test_an_aggregator_that_transmitted_before_a_stored_range_ended_is_read_there(anvil, tmp_path):
    """A feed's next aggregator transmits before the proxy confirms it (Chainlink runs the new
    one beside the old). A warehouse ingested up to H1 inside that stretch knew only phase 1;
    the next run found phase 2 and read its aggregator from H1 + 1 on only, so its rounds up to
    H1 were missing (raw.logs, raw.chainlink_answer_updated), and the answer the proxy reports
    from the switch (the new aggregator's latest, repeated by the replay from
    raw.chainlink_answer_updated) was not the one the chain had: the warehouse differed from a
    fresh ingest. Now the feed's stored range is re-ingested when its phases change (fails
    before)."""
    chain = DevChain(anvil.url)
    owner = chain.default_sender
    flux = chain.deploy("TestFluxAggregator", 3600, 1, 10**14, 8, "ETH / USD")
    chain.send(flux, "changeOracles", [], [owner], [owner], 1, 1, 0)
    proxy = chain.deploy("TestAggregatorProxy", flux.address)
    ocr = chain.deploy("TestOCRAggregator", 1, 10**14, 8, "ETH / USD")
    chain.send_many([(flux, "submit", (i + 1, 1200 * 10**8 + i)) for i in range(3)])
    # the new aggregator's only round before the switch, then the old one goes on
    chain.send(ocr, "transmit", [1300 * 10**8 - 1, 1300 * 10**8, 1300 * 10**8 + 1])
    chain.send_many([(flux, "submit", (i + 4, 1200 * 10**8 + i)) for i in range(2)])
    h1 = chain.block_number()
    dep = tmp_path / "dep.toml"
    dep.write_text(f'[meta]\nchain_id = 31337\n\n[[feed]]\nname = "ETH / USD"\nchain_id = 31337\n'
                   f'proxy = "{proxy.address}"\ndecimals = 8\nstart_block = 0\n')
    db = tmp_path / "w.duckdb"
    ingest(anvil.url, db, dep, to_block=h1)
    chain.mine(2)
    chain.send(proxy, "proposeAggregator", ocr.address)
    chain.send(proxy, "confirmAggregator", ocr.address)
    chain.send_many([(ocr, "transmit", ([1310 * 10**8 + i] * 3,)) for i in range(2)])
    s = ingest(anvil.url, db, dep)
    fresh = tmp_path / "fresh.duckdb"
    ingest(anvil.url, fresh, dep)
    # (the headers up to H1 were ingested with fewer confirmations than the fresh ingest's)
    lineage = ("run_id", "updated_at", "discovered_at_block", "confirmations_at_ingest")
    assert snapshot(db, exclude=lineage) == snapshot(fresh, exclude=lineage)
    assert s.reingested == {f"chainlink:{proxy.address}": h1 + 1}
    assert any("phase" in w and "re-ingested" in w for w in s.warnings), s.warnings
    with Warehouse(db, read_only=True) as wh:
        # the round the proxy reads from the switch is there (by its answer, as sent)
        assert wh.con.execute("SELECT count(*) FROM raw.chainlink_answer_updated WHERE address = ? "
                              "AND block_number <= ?", [ocr.address, h1]).fetchone()[0] == 1
    chain.close()
