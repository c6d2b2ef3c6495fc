"""The production path end to end: a real Aave v3.0.2 market on anvil (npm bytecode, driven by
:mod:`ingest.aave_devmarket`), ingested by the real ingestor into a DuckDB file with reference
prices, replayed by ``backtest.run(scenario.toml, db=...)`` in historical mode.

The chain: three borrowers on WETH collateral / USDC debt; ETH falls so that A becomes
liquidatable and a liquidator liquidates it in the next block; then the market's AaveOracle
switches WETH to a new Chainlink-style feed (``AssetSourceUpdated`` inside the window), the old
feed keeps publishing a *wrong* price, the new one falls, B becomes liquidatable and is
liquidated in the next block. Truth is what the chain itself says: the ``LiquidationCall``
receipts, block headers (hashes, base fees) read back over JSON-RPC.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backtest.api import run
from backtest.errors import MissingData, ScenarioError
from ingest.aave_devmarket import DEFAULT_EMODES, DEFAULT_RESERVES, MAX_UINT256, AaveV3Market
from ingest.datasets import asked_fingerprint
from ingest.deployments import load_deployments
from ingest.devchain import DevChain
from ingest.engine import IngestRequest, run_ingest
from ingest.prices import import_prices
from ingest.rpc import JsonRpcClient
from ingest.transports import HttpTransport
from ingest.warehouse import Warehouse

pytestmark = pytest.mark.anvil

GENESIS = 1_700_000_000
GWEI = 10**9


@dataclass
class Chain:
    db: Path
    m: AaveV3Market
    weth: str
    usdc: str
    old_feed: str
    new_feed: str
    from_block: int
    to_block: int
    users: dict[str, str]
    liquidations: list[dict[str, Any]]  # decoded LiquidationCall + block/log index/tx from receipts
    switch_block: int
    headers: dict[int, dict[str, Any]]


def _deployments(m: AaveV3Market, feeds: list[str]) -> str:
    lines = ["[meta]", 'chain = "anvil"', "chain_id = 31337", "", "[[deployment]]", 'name = "aave_v3_local"',
             'protocol = "aave_v3"', "chain_id = 31337", "start_block = 0", "[deployment.contracts]",
             f'pool = "{m.pool.address}"', f'pool_configurator = "{m.configurator.address}"',
             f'oracle = "{m.oracle.address}"', f'addresses_provider = "{m.provider.address}"']
    for i, f in enumerate(feeds):
        lines += ["", "[[feed]]", f'name = "feed {i}"', "chain_id = 31337", f'proxy = "{f}"', "decimals = 8",
                  "start_block = 0", f"deviation_bps = {50 + 25 * i}", f"heartbeat_s = {3600 * (i + 1)}"]
    return "\n".join(lines) + "\n"


def _liquidate(m: AaveV3Market, liq: str, user: str) -> dict[str, Any]:
    m.chain.rpc("anvil_setNextBlockBaseFeePerGas", [hex(70 * GWEI)])
    r = m.liquidate(liq, "WETH", "USDC", user, MAX_UINT256, fund=False, check=True)
    ev = r.event("LiquidationCall")
    logs = [x for x in r.receipt["logs"] if x["address"].lower() == m.pool.address]
    li = max(int(x["logIndex"], 16) for x in logs)  # LiquidationCall is the pool's last log of the tx
    return {"user": user, "block": r.block_number, "log_index": li, "tx": r.tx_hash,
            "debt": int(ev["debtToCover"]), "seized": int(ev["liquidatedCollateralAmount"])}


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from ingest.devnet import Anvil

    tmp = tmp_path_factory.mktemp("wh")
    node = Anvil(timestamp=GENESIS)
    c = DevChain(node.url)
    try:
        reserves = [r for r in DEFAULT_RESERVES if r.symbol in ("WETH", "USDC", "DAI")]
        m = AaveV3Market.deploy(c, reserves, DEFAULT_EMODES, block_interval=12)
        lp, a, b, cc, liq = (m.new_user() for _ in range(5))
        m.fund(lp, "USDC", 10**6 * 10**6)
        m.supply(lp, "USDC", 10**6 * 10**6)
        for u, hf_bps in ((a, 10_500), (b, 12_000), (cc, 15_000)):
            m.fund(u, "WETH", 10 * 10**18)
            m.supply(u, "WETH", 10 * 10**18)
            m.borrow(u, "USDC", 16_500 * 10**6 * 10_000 // hf_bps)
        m.fund(liq, "USDC", 10**6 * 10**6)
        fb = c.block_number() + 1
        m.set_price("WETH", 1_850 * 10**8)                  # A: HF 1.05 * 0.925 < 1
        out = [_liquidate(m, liq, a)]                       # lands right after the drop
        m.fund(a, "WETH", 5 * 10**18)                       # A tops up: safe at $1,600 below
        m.supply(a, "WETH", 5 * 10**18)
        # a new feed for WETH, switched inside the window; the old one goes on with a wrong price
        agg = m._deploy_test("TestOCRAggregator", 1, 2**191 - 1, 8, "WETH / USD v2")
        proxy = m._deploy_test("TestAggregatorProxy", agg.address)
        c.send(agg, "transmit", [1_800 * 10**8], sender=m.admin)
        c.send(m.oracle, "setAssetSources", [m.asset("WETH")], [proxy.address], sender=m.admin)
        switch = c.block_number()
        m.set_price("WETH", 2_500 * 10**8)                  # the old feed: no longer read
        c.mine(2)
        c.send(agg, "transmit", [1_600 * 10**8], sender=m.admin)   # B: HF 1.2 * 0.8 < 1
        out.append(_liquidate(m, liq, b))
        c.mine(3)
        tb = c.block_number()
        old = m.reserve("WETH").feed.address
        feeds = [m.reserve(s).feed.address for s in ("WETH", "USDC", "DAI")] + [proxy.address]
        dep = tmp / "deployments.toml"
        dep.write_text(_deployments(m, feeds))
        headers = {n: c.block(n) for n in range(fb, tb + 1)}
        db = tmp / "w.duckdb"
        rpc = JsonRpcClient(HttpTransport(node.url), backoff_base=0.01)
        try:
            with Warehouse(db) as wh:
                run_ingest(wh, rpc, IngestRequest(chain_id=31337, deployments=load_deployments(dep),
                                                  finality="head", endpoint_label="test", chunk_blocks=500))
                csv = tmp / "eth.csv"
                t0 = int(headers[fb]["timestamp"], 16)
                csv.write_text("timestamp,price\n" + "".join(
                    f"{t0 - 60 + 12 * i},{1_900 - 20 * i}.25\n" for i in range(tb - fb + 8)))
                import_prices(wh, csv, fmt="timestamp_price", pair="ETH/USD", unit="USD", source="test",
                              run_id="prices-1")
        finally:
            rpc.close()
        yield Chain(db, m, m.asset("WETH"), m.asset("USDC"), old, proxy.address, fb, tb,
                    {"a": a, "b": b, "c": cc, "liq": liq}, out, switch, headers)
    finally:
        c.close()
        node.stop()


def _scenario(ch: Chain, tmp: Path, extra: str = "", *, from_block: int | None = None) -> Path:
    f = tmp / "s.toml"
    old = f'"{ch.old_feed}" = "ETH/USD"' if from_block is None else ""  # no longer a source after the switch
    f.write_text(f"""name = "local historical"
chain_id = 31337
mode = "historical"
[window]
from_block = {ch.from_block if from_block is None else from_block}
to_block = {ch.to_block}
[market]
protocol = "aave_v3"
source = "aave_v3_local"
rules = "3.0"
[reference]
source = "test"
[reference.pairs]
{old}
"{ch.new_feed}" = "ETH/USD"
[liquidator]
reaction_delay_blocks = 1
gas_units = 300000
priority_fee_wei = 2000000000
gas_price_key = "{ch.weth}"
min_profit_usd = 0
[metrics]
names = ["fidelity", "liquidations", "bad_debt"]
{extra}""")
    return f


def test_historical_replay_of_an_ingested_market_reproduces_its_liquidations(chain: Chain,
                                                                             tmp_path: Path) -> None:
    res = run(_scenario(chain, tmp_path), db=chain.db)
    liqs = res.output.liquidations
    observed = [x for x in liqs if x.observed]
    assert [(o.user, o.block_number, o.log_index, o.tx_hash) for o in observed] == [
        (x["user"], x["block"], x["log_index"], x["tx"]) for x in chain.liquidations]
    # the adapter, on the replayed pre-event state, computes what the contract did, to the unit
    for o, x in zip(observed, chain.liquidations, strict=True):
        assert o.predicted is not None and o.predicted.ok, o
        assert (o.debt_repaid, o.collateral_seized) == (x["debt"], x["seized"])
        assert (o.predicted.debt_repaid, o.predicted.collateral_seized) == (x["debt"], x["seized"]), (
            f"user {o.user} block {o.block_number}: observed {x['debt']}/{x['seized']}, predicted "
            f"{o.predicted.debt_repaid}/{o.predicted.collateral_seized}")
    # the model (delay 1, zero min profit) predicts both (the second only if the switched feed is read)
    preds = [x for x in liqs if not x.observed]
    assert sorted((p.user, p.block_number) for p in preds) == sorted(
        (x["user"], x["block"]) for x in chain.liquidations)
    for p, x in zip(sorted(preds, key=lambda p: p.block_number), chain.liquidations, strict=True):
        assert (p.debt_repaid, p.collateral_seized) == (x["debt"], x["seized"])
        # gas: 300,000 x (base fee of the landing block, read from the node + 2 gwei) at the WETH price
        fee = int(chain.headers[x["block"]]["baseFeePerGas"], 16)
        assert fee == 70 * GWEI
        price = {chain.liquidations[0]["block"]: 1_850 * 10**8, chain.liquidations[1]["block"]: 1_600 * 10**8}
        assert p.gas_cost_value == 300_000 * (fee + 2 * GWEI) * price[x["block"]] // 10**18
        assert p.decided_block == x["block"] - 1
    f = res.summary["fidelity"]
    assert (f["observed"], f["predicted"], f["matched"], f["precision"], f["recall"]) == (2, 2, 2, 1.0, 1.0)
    assert (f["amounts_exact"], f["predicted_reverts"]) == (2, 0)
    # lineage: the run records the window ends' block hashes as the node reports them
    frames = res.frames()
    runs = frames["bt.runs"].to_dicts()
    assert len(runs) == 1
    r = runs[0]
    assert r["from_block_hash"] == chain.headers[chain.from_block]["hash"]
    assert r["to_block_hash"] == chain.headers[chain.to_block]["hash"]
    assert "prices-1" in r["data_sources"]  # the reference import it read
    assert r["events_applied"] > 0


def test_oracle_source_switch_inside_the_window_changes_the_price_at_its_log(chain: Chain,
                                                                             tmp_path: Path) -> None:
    """Starting after the switch gives the same second liquidation as starting before it: the
    switch is applied at its log either way (and the old feed's later $2,500 is ignored)."""
    res = run(_scenario(chain, tmp_path, from_block=chain.switch_block + 1), db=chain.db)
    obs = [x for x in res.output.liquidations if x.observed]
    assert [(o.user, o.block_number) for o in obs] == [(chain.users["b"], chain.liquidations[1]["block"])]
    assert obs[0].predicted is not None
    assert obs[0].predicted.collateral_seized == chain.liquidations[1]["seized"]
    f = res.summary["fidelity"]
    assert (f["precision"], f["recall"], f["amounts_exact"]) == (1.0, 1.0, 1)


def test_a_window_past_the_ingested_range_fails_before_running(chain: Chain, tmp_path: Path) -> None:
    f = _scenario(chain, tmp_path)
    f.write_text(f.read_text().replace(f"to_block = {chain.to_block}", f"to_block = {chain.to_block + 50}"))
    want = rf"blocks {chain.from_block}\.\.{chain.to_block + 50}.*deficit ingest"
    with pytest.raises(MissingData, match=want):
        run(f, db=chain.db)


def test_oracle_lag_judges_each_feed_by_its_declared_rules(chain: Chain, tmp_path: Path) -> None:
    """The deployments' [[feed]] deviation_bps / heartbeat_s travel through the ingest
    (raw.oracle_feeds) to the oracle_lag metric, which used 50 bps / 3600 s for every feed."""
    f = _scenario(chain, tmp_path)
    f.write_text(f.read_text().replace('names = ["fidelity", "liquidations", "bad_debt"]',
                                       'names = ["oracle_lag"]'))
    res = run(f, db=chain.db)
    rows = {r["feed"]: r for r in res.frames()["bt.oracle_lag_feeds"].to_dicts()}
    feeds = [chain.old_feed, chain.new_feed]
    assert set(rows) == set(feeds)
    with Warehouse(chain.db, read_only=True) as wh:
        declared = dict(wh.con.execute("SELECT feed, [deviation_bps, heartbeat_s] FROM raw.oracle_feeds "
                                       "WHERE chain_id = 31337").fetchall())
    for f in feeds:
        r = rows[f]
        assert [r["deviation_threshold_bps"], r["heartbeat_s"]] == declared[f]
        assert (r["deviation_threshold_from"], r["heartbeat_from"]) == ("deployment", "deployment")
    assert declared[chain.old_feed] != declared[chain.new_feed]


def test_republish_without_settings_uses_each_feeds_declared_rules(chain: Chain, tmp_path: Path) -> None:
    """oracle.model = "republish" without deviation_bps / heartbeat_s re-publishes each feed by its
    declared rules; a feed whose rules were never declared is refused before the replay, naming it."""
    f = _scenario(chain, tmp_path, '[oracle]\nmodel = "republish"\n')
    res = run(f, db=chain.db)
    assert res.summary["liquidations"]["observed_count"] == 2
    db = tmp_path / "copy.duckdb"
    db.write_bytes(Path(chain.db).read_bytes())
    with Warehouse(db) as wh, wh.transaction() as con:
        con.execute("DELETE FROM raw.oracle_feeds WHERE feed = ?", [chain.new_feed])
    with Warehouse(db, read_only=True) as wh:
        runs_before = wh.con.execute("SELECT count(*) FROM bt.runs").fetchall()
    with pytest.raises(ScenarioError) as e:
        run(f, db=db)
    assert e.value.field == "oracle.model"
    assert (f"feed {chain.new_feed}: the republish model needs its deviation_bps and heartbeat_s"
            in e.value.message)
    with Warehouse(db, read_only=True) as wh:  # refused before anything was written
        assert wh.con.execute("SELECT count(*) FROM bt.runs").fetchall() == runs_before


def test_an_emode_override_names_a_category_of_the_ingested_market(chain: Chain, tmp_path: Path) -> None:
    """[[overrides.emode]] is checked against the categories the rebuilt market has at the window
    start (EModeCategoryAdded events of the real PoolConfigurator): an unknown id is refused at its
    line, naming the ones there are; a known one runs."""
    f = _scenario(chain, tmp_path, "[[overrides.emode]]\ncategory = 9\nliquidation_threshold_bps = 9000\n")
    f.write_text(f.read_text().replace('mode = "historical"', 'mode = "counterfactual"'))
    want = r"unknown e-mode category 9: market aave_v3_local has \[1\]"
    with pytest.raises(ScenarioError, match=want) as e:
        run(f, db=chain.db)
    assert e.value.field == "overrides.emode[0].category"
    assert e.value.line == f.read_text().splitlines().index("category = 9") + 1
    f.write_text(f.read_text().replace("category = 9", "category = 1"))
    assert DEFAULT_EMODES[0].category_id == 1
    out = run(f, db=chain.db)
    assert out.output.final_state.emode_categories[1].liquidation_threshold == 9000


def test_an_unknown_pool_needs_its_rule_set(chain: Chain, tmp_path: Path) -> None:
    """The local pool is not a known deployment and (deployed at its version, like any pool not
    upgraded since) emits no Upgraded log: its Aave v3 version cannot be inferred. Without
    market.rules the replay silently applied 3.0's rounding, interest and close factor, right
    only for a 3.0 pool; it is refused at market.rules."""
    f = _scenario(chain, tmp_path)
    f.write_text(f.read_text().replace('rules = "3.0"\n', ""))
    with pytest.raises(ScenarioError, match=r"not a known deployment.*set market.rules") as e:
        run(f, db=chain.db)
    assert e.value.field == "market.rules"


def test_ingesting_past_the_window_does_not_change_the_runs_data_sources(chain: Chain,
                                                                         tmp_path: Path) -> None:
    """bt.runs.data_sources (and so the derived run id) named every ingest run with a checkpoint of
    the blocks, the market or its feeds on the chain, wherever its blocks were: extending the
    warehouse past the window (a later ingest that adds blocks, market logs and rounds the window
    never reads) gave the same replay of the same rows a new run id and lineage. It names the runs
    whose rows the replay reads (blocks of the window, the market's logs and the feeds' rounds up to
    its end), here the one ingest and the reference import."""
    import shutil

    db = tmp_path / "w.duckdb"
    shutil.copy(chain.db, db)
    sc = _scenario(chain, tmp_path)
    before = run(sc, db=db)
    with Warehouse(db) as wh:
        ingest_runs = {str(r[0]) for r in wh.con.execute("SELECT DISTINCT run_id FROM raw.blocks").fetchall()}
    assert len(ingest_runs) == 1
    assert list(before.frames()["bt.runs"]["data_sources"][0]) == sorted(ingest_runs | {"prices-1"})
    # the chain goes on: a new round and more blocks, ingested by a second run
    m = chain.m
    m.set_price("WETH", 1_700 * 10**8)
    m.chain.mine(3)
    dep = tmp_path / "deployments.toml"
    shutil.copy(chain.db.parent / "deployments.toml", dep)
    rpc = JsonRpcClient(HttpTransport(m.chain.url), backoff_base=0.01)
    try:
        with Warehouse(db) as wh:
            run_ingest(wh, rpc, IngestRequest(chain_id=31337, deployments=load_deployments(dep),
                                              finality="head", endpoint_label="test", chunk_blocks=500))
            later = {str(r[0]) for r in wh.con.execute(
                "SELECT DISTINCT run_id FROM raw.blocks WHERE number > ?", [chain.to_block]).fetchall()}
            assert later and not later & ingest_runs
            assert wh.con.execute("SELECT count(*) FROM raw.oracle_rounds WHERE block_number > ?",
                                  [chain.to_block]).fetchone()[0] > 0
    finally:
        rpc.close()
    after = run(sc, db=db)
    assert after.run_id == before.run_id
    with Warehouse(db) as wh:
        (sources,) = wh.con.execute("SELECT data_sources FROM bt.runs WHERE run_id = ?",
                                    [after.run_id]).fetchone()
    assert sources == sorted(ingest_runs | {"prices-1"})


def test_intervals_ingested_under_other_declarations_are_refused_until_reingested(chain: Chain,
                                                                                   tmp_path: Path) -> None:
    """``meta.checkpoints.asked_sha256`` records what an ingest asked for: a market or feed whose
    needed blocks were ingested under other declarations (an event declared since is missing there,
    e.g. the token ``Initialized`` logs that carry the decimals) or before fingerprints were recorded
    (NULL) is refused before running, with the ``deficit ingest`` that re-ingests it; after that
    ingest, the run is the same as on a warehouse that was never stale."""
    import shutil

    db = tmp_path / "w.duckdb"
    shutil.copy(chain.db, db)
    sc = _scenario(chain, tmp_path)
    want = run(sc, db=db)
    with Warehouse(db) as wh:
        runs = wh.con.execute("SELECT count(*) FROM bt.runs").fetchone()[0]
        wh.con.execute("UPDATE meta.checkpoints SET asked_sha256 = repeat('ab', 32) "
                       "WHERE dataset = 'aave_v3'")
        wh.con.execute("UPDATE meta.checkpoints SET asked_sha256 = NULL WHERE source = ?", [chain.new_feed])
    with pytest.raises(MissingData, match=r"market .*\(aave_v3:aave_v3_local\) over blocks 0\.\.\d+ .*"
                       r"other declarations .*asked_sha256 abababababab.*Re-run `deficit ingest` over that "
                       r"range.*`deficit ingest --chain 31337 --from 0 --to "):
        run(sc, db=db)
    with Warehouse(db) as wh:
        assert wh.con.execute("SELECT count(*) FROM bt.runs").fetchone()[0] == runs  # refused before running
        wh.con.execute("UPDATE meta.checkpoints SET asked_sha256 = ? WHERE dataset = 'aave_v3'",
                       [asked_fingerprint("aave_v3")])
    with pytest.raises(MissingData, match=rf"feed {chain.new_feed} .*\(chainlink:{chain.new_feed}\) over "
                       r"blocks .* before deficit recorded what each ingest asks for .*NULL.*Re-run "
                       r"`deficit ingest`.*--datasets chainlink"):
        run(sc, db=db)
    m = chain.m
    dep = tmp_path / "deployments.toml"
    shutil.copy(chain.db.parent / "deployments.toml", dep)
    rpc = JsonRpcClient(HttpTransport(m.chain.url), backoff_base=0.01)
    try:
        with Warehouse(db) as wh:
            s = run_ingest(wh, rpc, IngestRequest(chain_id=31337, deployments=load_deployments(dep),
                                                  finality="head", endpoint_label="test", chunk_blocks=500))
    finally:
        rpc.close()
    assert f"chainlink:{chain.new_feed}" in s.reingested
    after = run(sc, db=db)
    assert after.summary == want.summary
