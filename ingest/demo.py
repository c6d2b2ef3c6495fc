"""``deficit demo-ingest``: ingestion end to end on a real local chain (the Quickstart's main job
is ``deficit demo``, :mod:`backtest.demo`, which replays the bundled sample instead).

``deficit demo-ingest`` starts anvil, and on it:

* a Chainlink-style ETH/USD feed (``TestAggregatorProxy``) whose rounds follow the real ETH price
  path of 2021-01-11 (Binance futures mid price, ``data/sample/``) under the real ETH/USD feed
  rules — a new round when the price moves more than 0.5 % from the last answer, or after a
  3,600 s heartbeat — with phase 1 on a Flux-style aggregator and phase 2 on an OCR aggregator
  (the proxy switches aggregators mid-day, as mainnet proxies do), so phase discovery matters;
* an Aave v3-shaped market made of event emitters with the mainnet ABIs (pool, configurator,
  oracle, aToken/debt tokens): reserve initialisation and configuration, borrowers supplying and
  borrowing, and liquidations when the price falls.

It then ingests the chain into ``data/demo-ingest.duckdb`` (``--db`` chooses another file) with
the real ingestor and prints what was stored. The positions are event-level only (the bundled
sample, :mod:`ingest.sample`, runs the real Aave bytecode); every row is still a real log of a
real node.
"""

from __future__ import annotations

import csv
import json
import random
import re
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from .devchain import Contract, DevChain
from .devnet import Anvil, repo_root
from .warehouse import fetch_one

__all__ = ["SAMPLE_PRICES", "emitter_name", "feed_rounds", "deploy_market", "build_demo_chain",
           "DemoChain", "run_demo", "random_args"]

SAMPLE_PRICES = repo_root() / "data" / "sample" / "ethusdt_binance_futures_2021-01-10_to_2021-01-12.csv"
DAY_START = 1610323200  # 2021-01-11T00:00:00Z
DAY_END = DAY_START + 86400


def _camel(s: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in s.split("_"))


def emitter_name(dataset: str, role: str) -> str:
    """Artifact name of the generated emitter for a dataset role, e.g. AaveV3ATokenEmitter."""
    return f"{_camel(dataset)}{_camel(role)}Emitter"


def load_mid_prices(path: Path = SAMPLE_PRICES, start: int = DAY_START, end: int = DAY_END
                    ) -> list[tuple[int, Decimal]]:
    """(unix seconds, mid price in USD) rows of the bundled Binance path within [start, end)."""
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            ts = int(Decimal(row["timestamp_x"]) / 1_000_000)
            if start <= ts < end:
                out.append((ts, (Decimal(row["ask_price"]) + Decimal(row["bid_price"])) / 2))
    return out


def feed_rounds(prices: list[tuple[int, Decimal]], *, decimals: int = 8,
                deviation_bps: int = 50, heartbeat_s: int = 3600) -> list[tuple[int, int]]:
    """The rounds a Chainlink feed with these rules would publish on this path.

    A round is published at the first observation whose price deviates from the last published
    answer by more than ``deviation_bps``, or when ``heartbeat_s`` has passed since it.
    """
    out: list[tuple[int, int]] = []
    scale = Decimal(10) ** decimals
    for ts, p in prices:
        ans = int((p * scale).to_integral_value())
        if not out:
            out.append((ts, ans))
            continue
        last_ts, last = out[-1]
        if abs(ans - last) * 10_000 > last * deviation_bps or ts - last_ts >= heartbeat_s:
            out.append((ts, ans))
    return out


def random_args(entry: dict[str, Any], rng: random.Random) -> tuple[Any, ...]:
    """Random ABI-valid arguments for a generated ``emit<Event>`` function (edge values included)."""
    def one(t: str) -> Any:
        if t.endswith("[]"):
            return [one(t[:-2]) for _ in range(rng.randint(0, 5))]
        if t == "address":
            return "0x" + rng.randbytes(20).hex()
        if t == "bool":
            return rng.random() < 0.5
        if t == "string":
            return rng.choice(["", "ETH correlated", "<script>alert(1)</script>", "Stable €",
                               "x" * 40])
        if t.startswith("bytes"):
            return rng.randbytes(int(t[5:]) if t != "bytes" else rng.randint(0, 40))
        bits = min(int(t.lstrip("uint") or 256), 128)
        signed = t.startswith("int")
        edge = rng.random()
        if signed:
            lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        else:
            lo, hi = 0, 2**bits - 1
        if edge < 0.1:
            return lo
        if edge < 0.2:
            return hi
        return rng.randint(lo, hi) if rng.random() < 0.5 else rng.randint(max(lo, -10**20),
                                                                          min(hi, 10**20))
    return tuple(one(i["type"]) for i in entry["inputs"])


def deploy_market(chain: DevChain, dataset: str, roles: list[str]) -> dict[str, Contract]:
    return {role: chain.deploy(emitter_name(dataset, role)) for role in roles}


@dataclass
class DemoChain:
    deployments_toml: str
    feed_proxy: str
    rounds: int
    events: int
    blocks: int
    reserves: dict[str, str] = field(default_factory=dict)


def build_demo_chain(chain: DevChain, *, seed: int = 7, borrowers: int = 40,
                     prices: list[tuple[int, Decimal]] | None = None) -> DemoChain:
    """Deploy the feed and the market and play the day; returns the deployments TOML."""
    rng = random.Random(seed)
    prices = prices if prices is not None else load_mid_prices()
    rounds = feed_rounds(prices)
    owner = chain.default_sender
    chain.set_next_timestamp(DAY_START - 3600)
    flux = chain.deploy("TestFluxAggregator", 3600, 1, 10**14, 8, "ETH / USD")
    chain.send(flux, "changeOracles", [], [owner], [owner], 1, 1, 0)
    proxy = chain.deploy("TestAggregatorProxy", flux.address)
    ocr = chain.deploy("TestOCRAggregator", 1, 10**14, 8, "ETH / USD")
    usdc = chain.deploy("TestOCR2Aggregator", 1, 10**10, 8, "USDC / USD")
    usdc_proxy = chain.deploy("TestAggregatorProxy", usdc.address)
    roles = ["pool", "pool_configurator", "oracle", "addresses_provider"]
    m = deploy_market(chain, "aave_v3", roles)
    assets = {"WETH": "0x" + rng.randbytes(20).hex(), "USDC": "0x" + rng.randbytes(20).hex(),
              "WBTC": "0x" + rng.randbytes(20).hex()}
    tokens: dict[str, dict[str, Contract]] = {}
    setup: list[tuple[Any, ...]] = []
    for sym, asset in assets.items():
        tokens[sym] = {r: chain.deploy(emitter_name("aave_v3", r)) for r in
                       ("a_token", "variable_debt_token", "stable_debt_token")}
        t = tokens[sym]
        setup.append((m["pool_configurator"], "emitReserveInitialized",
                      (asset, t["a_token"].address, t["stable_debt_token"].address,
                       t["variable_debt_token"].address, "0x" + rng.randbytes(20).hex())))
        lt = {"WETH": (8000, 8250, 10500), "USDC": (7700, 8000, 10450),
              "WBTC": (7000, 7500, 10650)}[sym]
        setup.append((m["pool_configurator"], "emitCollateralConfigurationChanged", (asset, *lt)))
        setup.append((m["pool_configurator"], "emitLiquidationProtocolFeeChanged",
                      (asset, 0, 1000)))
        src = proxy.address if sym == "WETH" else usdc_proxy.address
        setup.append((m["oracle"], "emitAssetSourceUpdated", (asset, src)))
    setup.append((m["pool_configurator"], "emitEModeCategoryAdded",
                  (1, 9000, 9300, 10100, "0x" + "00" * 20, "ETH correlated")))
    chain.send_many(setup)
    chain.send(usdc, "transmit", [99_990_000, 100_000_000, 100_010_000])

    index = 10**27
    users = ["0x" + rng.randbytes(20).hex() for _ in range(borrowers)]
    debt: dict[str, int] = {}
    actions: list[tuple[int, list[tuple[Any, ...]]]] = []
    for i, u in enumerate(users):
        ts = DAY_START + 60 + i * 17
        supply = rng.randint(1, 50) * 10**18
        borrow = int(supply * 1100 * rng.uniform(0.5, 0.8)) // 10**12  # USDC, 6 decimals
        debt[u] = borrow
        index += rng.randint(10**18, 10**20)
        tw, tu = tokens["WETH"], tokens["USDC"]
        actions.append((ts, [
            (m["pool"], "emitReserveDataUpdated", (assets["WETH"], 2 * 10**25, 0, 3 * 10**25,
                                                   index, index + 10**24)),
            (tw["a_token"], "emitMint", (u, u, supply, 0, index)),
            (m["pool"], "emitReserveUsedAsCollateralEnabled", (assets["WETH"], u)),
            (m["pool"], "emitSupply", (assets["WETH"], u, u, supply, 0)),
            (tu["variable_debt_token"], "emitMint", (u, u, borrow, 0, index)),
            (m["pool"], "emitBorrow", (assets["USDC"], u, u, borrow, 2, 4 * 10**25, 0)),
        ]))
    liquidator = "0x" + rng.randbytes(20).hex()
    low = sorted(rounds, key=lambda r: r[1])[: max(1, len(rounds) // 10)]
    for (ts, _), u in zip(sorted(low), rng.sample(users, min(len(users), len(low))), strict=False):
        repay = debt[u] // 2
        seized = repay * 10**12 * 105 // 100 // 1000
        tw, tu = tokens["WETH"], tokens["USDC"]
        actions.append((ts + 30, [
            (tu["variable_debt_token"], "emitBurn", (u, "0x" + "00" * 20, repay, 0, index)),
            (tw["a_token"], "emitBalanceTransfer", (u, liquidator, seized, index)),
            (m["pool"], "emitLiquidationCall", (assets["WETH"], assets["USDC"], u, repay, seized,
                                                 liquidator, True)),
        ]))
    half = rounds[len(rounds) // 2][0]
    feed_txs: list[tuple[int, list[tuple[Any, ...]]]] = []
    switched = False
    flux_round = 0
    for ts, ans in rounds:
        if ts >= half and not switched:
            feed_txs.append((ts - 1, [(proxy, "proposeAggregator", (ocr.address,)),
                                      (proxy, "confirmAggregator", (ocr.address,))]))
            switched = True
        if not switched:
            flux_round += 1
            feed_txs.append((ts, [(flux, "submit", (flux_round, ans))]))
        else:
            spread = max(1, ans // 2000)
            obs = sorted([ans - 2 * spread, ans - spread, ans, ans + spread, ans + 2 * spread])
            feed_txs.append((ts, [(ocr, "transmit", (obs,))]))
    timeline = sorted(actions + feed_txs, key=lambda x: x[0])
    last_ts = 0
    events = len(setup)
    for ts, txs in timeline:
        ts = max(ts, last_ts + 1)
        chain.set_next_timestamp(ts)
        chain.send_many(txs, per_block=len(txs))
        last_ts = ts
        events += len(txs)
    toml = _deployments_toml(chain, m, proxy.address, usdc_proxy.address)
    return DemoChain(toml, proxy.address, len(rounds), events, chain.block_number() + 1,
                     {s: a for s, a in assets.items()})


def _deployments_toml(chain: DevChain, m: dict[str, Contract], eth_proxy: str,
                      usdc_proxy: str) -> str:
    chain_id = int(chain.rpc("eth_chainId"), 16)
    lines = ["# written by deficit demo: the contracts of the local demo chain", "[meta]",
             'chain = "anvil"', f"chain_id = {chain_id}", "", "[[deployment]]",
             'name = "aave_v3_demo"', 'protocol = "aave_v3"', f"chain_id = {chain_id}",
             "start_block = 0", "[deployment.contracts]"]
    lines += [f'{role} = "{c.address}"' for role, c in m.items()]
    for name, proxy, dev, hb in (("ETH / USD", eth_proxy, 50, 3600),
                                 ("USDC / USD", usdc_proxy, 25, 86400)):
        lines += ["", "[[feed]]", f'name = "{name}"', f"chain_id = {chain_id}",
                  f'proxy = "{proxy}"', "decimals = 8", "start_block = 0",
                  f"deviation_bps = {dev}", f"heartbeat_s = {hb}"]
    return "\n".join(lines) + "\n"


#: ``meta.runs.endpoint_label`` of demo-ingest's runs: the chain-31337 data it may replace
DEMO_ENDPOINT = "anvil (deficit demo-ingest)"


def _refuse_other_local_data(db: Path) -> None:
    """demo-ingest deletes every chain-31337 row before ingesting its new chain: refuse a file
    whose chain-31337 data another command wrote (the bundled sample's copy made by ``deficit
    demo``, a user's own anvil ingest), before anything is built or written."""
    import duckdb

    from .errors import ConfigError

    if not db.exists():
        return
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as e:
        msg = str(e)
        if re.search(r"(?i)conflicting lock|could not set lock", msg):  # DuckDB's lock error
            pid = re.search(r"PID (\d+)", msg)
            raise ConfigError(f"{db} is in use by another process{f' (PID {pid.group(1)})' if pid else ''}: "
                              "wait for it to finish, or pass --db to choose another file") from None
        raise ConfigError(f"{db} is not a readable DuckDB warehouse ({e}); pass --db to choose another "
                          "file") from None
    try:
        tables = {f"{s}.{n}" for s, n in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables()").fetchall()}
        other: list[Any] = []
        if "meta.runs" in tables:
            other = con.execute("SELECT run_id FROM meta.runs WHERE chain_id = 31337 AND endpoint_label "
                                "IS DISTINCT FROM ? ORDER BY run_id", [DEMO_ENDPOINT]).fetchall()
        if not other and "raw.blocks" in tables and "meta.runs" not in tables:
            other = con.execute("SELECT 'raw.blocks' FROM raw.blocks WHERE chain_id = 31337 "
                                "LIMIT 1").fetchall()
    finally:
        con.close()
    if other:
        raise ConfigError(f"{db} holds chain-31337 data that demo-ingest did not write ({other[0][0]}"
                          f"{' and more' if len(other) > 1 else ''}); demo-ingest replaces that chain's "
                          "rows, so it will not run on this file: pass --db to choose another file")


def run_demo(*, db: Path | None, seed: int, as_json: bool, console: Any) -> int:
    """Build the demo chain on a fresh anvil, ingest it, print what was stored. The chain is new on
    every run, so the warehouse's chain-31337 rows are deleted first: a file holding chain-31337
    data another command wrote is refused (:func:`_refuse_other_local_data`)."""
    import time

    from .deployments import load_deployments
    from .engine import IngestRequest, run_ingest
    from .rpc import JsonRpcClient
    from .transports import HttpTransport
    from .warehouse import DEFAULT_DB, Warehouse

    t0 = time.monotonic()
    db = db or DEFAULT_DB.with_name("demo-ingest.duckdb")
    _refuse_other_local_data(db)
    with Anvil(timestamp=DAY_START - 7200, keep_states=100_000) as node, DevChain(node.url) as chain:
        if not as_json:
            console.print(f"anvil on {node.url}: building the demo chain (seed {seed}) …")
        demo = build_demo_chain(chain, seed=seed)
        t_chain = time.monotonic() - t0
        dep_path = Path(tempfile.mkdtemp()) / "demo-deployments.toml"
        dep_path.write_text(demo.deployments_toml)
        dset = load_deployments(dep_path)
        rpc = JsonRpcClient(HttpTransport(node.url))
        try:
            with Warehouse(db) as wh:
                wh.drop_chain(31337)  # the demo chain is new on every run
                summary = run_ingest(wh, rpc, IngestRequest(
                    chain_id=31337, deployments=dset, finality="head", chunk_blocks=200,
                    endpoint_label=DEMO_ENDPOINT))
                # exact counts: duckdb_tables().estimated_size still counts rows deleted (the
                # previous demo chain's) from row groups that were not rewritten
                counts = {t: n for t in [f"raw.{r[0]}" for r in wh.con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'raw' ORDER BY 1"
                ).fetchall()] if (n := int(wh.con.execute(f'SELECT count(*) FROM {t}').fetchall()[0][0]))}
                rounds = wh.con.execute(
                    "SELECT phase_id, count(*), min(answer_f64), max(answer_f64) FROM "
                    "raw.oracle_rounds WHERE chain_id = 31337 AND feed = ? GROUP BY 1 ORDER BY 1",
                    [demo.feed_proxy]).fetchall()
                liq = fetch_one(wh.con.execute(  # the file may hold other chains' rows
                    "SELECT count(*) FROM raw.aave_v3_liquidation_call WHERE chain_id = 31337"))
        finally:
            rpc.close()
    result = {"warehouse": str(db), "run_id": summary.run_id, "blocks": summary.to_block + 1,
              "logs": summary.logs_written, "rows_by_table": counts,
              "eth_usd_rounds_by_phase": [
                  {"phase": p, "rounds": n, "min_usd": lo, "max_usd": hi}
                  for p, n, lo, hi in rounds],
              "liquidations": int(liq[0]) if liq else 0,
              "chain_build_s": round(t_chain, 2), "ingest_s": round(summary.elapsed_s, 2)}
    if as_json:
        console.file.write(json.dumps(result, indent=2) + "\n")  # plain: rich colours it under FORCE_COLOR
        return 0
    from rich.table import Table as RichTable

    t = RichTable(title=f"stored in {db} (run {summary.run_id})", title_justify="left")
    t.add_column("table")
    t.add_column("rows", justify="right")
    for k, v in counts.items():
        t.add_row(k, f"{v:,}")
    console.print(t)
    for p, n, lo, hi in rounds:
        console.print(f"ETH / USD phase {p}: {n} rounds, ${lo:,.2f} .. ${hi:,.2f}")
    console.print(f"{result['liquidations']} LiquidationCall events decoded; chain built in "
                  f"{t_chain:.1f} s, ingested {summary.logs_written:,} logs from "
                  f"{summary.to_block + 1:,} blocks in {summary.elapsed_s:.1f} s")
    console.print(f"query it: python3 -m uv run python -c \"import duckdb; print(duckdb.connect("
                  f"'{db}', read_only=True).sql('SELECT * FROM raw.oracle_rounds LIMIT 5'))\"",
                  soft_wrap=True)
    return 0
