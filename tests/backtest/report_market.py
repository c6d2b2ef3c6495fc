"""A small real warehouse for the check/report/views tests: a real Aave v3 market on anvil whose
collateral token's symbol is hostile HTML, driven through the real ETH crash of 2021-01-11,
ingested by the real ingestor, with the same Binance path imported as reference prices.

* anvil (genesis 2021-01-11T00:00:00Z), the real Aave v3.0.2 bytecode
  (:class:`ingest.aave_devmarket.AaveV3Market`) with two reserves: ``<script>alert(1)</script>``
  (18 decimals, WETH's risk parameters: LTV 80 %, LT 82.5 %, bonus 5 %) and a USDC-like debt
  token (6 decimals, $1) whose symbol is an ``<img onerror=...>`` that would retitle the page;
* its price feed transmits the rounds a Chainlink ETH/USD feed (0.5 % deviation, 1 h heartbeat)
  would have published on the real Binance ETH-USDT futures mid path of ``data/sample/``
  (Risk-DAO, BSD-3) from 00:00 to 18:00 UTC, each in a block at (or just after) its minute; the
  market fell about 26 % in that time;
* six borrowers open at health factors 1.03 … 1.6 before the window starts (block ``WINDOW_FROM``);
  a liquidator liquidates the first borrower that becomes liquidatable (half its debt); the others
  are left alone, so the deepest ones end underwater (unrealized bad debt).

:func:`build` writes the DuckDB file once per path (the tests share it per session).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

HOSTILE = "<script>alert(1)</script>"
#: the debt token's symbol: markup that would change the page title if it ever ran
HOSTILE_DEBT = "<img src=x onerror=\"document.title='pwned'\">"
GENESIS_TS = 1610323200  # 2021-01-11T00:00:00Z
END_TS = GENESIS_TS + 18 * 3600
CHAIN_ID = 31337
DEPLOYMENT = "aave_v3_report_test"
PRICE_SOURCE = "binance-futures-ethusdt-riskdao"


@dataclass(frozen=True)
class Built:
    db: Path
    window_from: int
    window_to: int
    feed: str
    collateral: str
    usdc: str
    liquidations: int


_CACHE: dict[Path, Built] = {}


def build(db: Path) -> Built:
    """Build (once per path) and return the warehouse description."""
    if db in _CACHE:
        return _CACHE[db]
    from ingest.aave_devmarket import AaveV3Market, RateStrategy, ReserveSpec
    from ingest.demo import SAMPLE_PRICES, feed_rounds, load_mid_prices
    from ingest.deployments import load_deployments
    from ingest.devchain import DevChain
    from ingest.devnet import Anvil
    from ingest.engine import IngestRequest, run_ingest
    from ingest.prices import import_prices
    from ingest.rpc import JsonRpcClient
    from ingest.transports import HttpTransport
    from ingest.warehouse import Warehouse

    ray = 10**27
    mids = load_mid_prices(SAMPLE_PRICES, start=GENESIS_TS - 3600, end=END_TS)
    rounds = feed_rounds(mids)  # (ts, answer 8 decimals)
    first_ts, first_answer = rounds[0]
    reserves = (
        ReserveSpec(
            HOSTILE,
            18,
            first_answer,
            ltv=8000,
            liquidation_threshold=8250,
            liquidation_bonus=10500,
            reserve_factor=1500,
            rates=RateStrategy(variable_rate_slope1=38 * ray // 1000, variable_rate_slope2=80 * ray // 100),
        ),
        ReserveSpec(
            HOSTILE_DEBT,
            6,
            10**8,
            ltv=7700,
            liquidation_threshold=7900,
            liquidation_bonus=10450,
            rates=RateStrategy(
                optimal_usage_ratio=9 * ray // 10,
                variable_rate_slope1=4 * ray // 100,
                variable_rate_slope2=60 * ray // 100,
            ),
        ),
    )
    with Anvil(timestamp=GENESIS_TS - 3 * 3600, keep_states=4096) as node, DevChain(node.url) as chain:
        m = AaveV3Market.deploy(chain, reserves, emodes=(), block_interval=12)
        coll, usdc = m.reserve(HOSTILE), m.reserve(HOSTILE_DEBT)
        lp = m.new_user()
        m.supply(lp, usdc, 10_000_000 * 10**6, fund=True)
        borrowers = []
        for i, hf in enumerate((1.03, 1.05, 1.08, 1.15, 1.3, 1.6)):
            u = m.new_user()
            eth = (10 + 7 * i) * 10**18
            m.supply(u, coll, eth, fund=True)
            value_usd = Decimal(eth) / 10**18 * Decimal(first_answer) / 10**8
            debt = int(value_usd * Decimal("0.825") / Decimal(str(hf)) * 10**6)
            # stay inside the LTV (80 %): HF 1.03 at LT 82.5 % is 80.1 % of the value
            debt = min(debt, int(value_usd * Decimal("0.79") * 10**6))
            m.borrow(u, usdc, debt)
            borrowers.append(u)
        liquidator = m.new_user()
        # the window starts at the first round of the path
        ts_now = int(chain.block()["timestamp"], 16)
        m.advance_time(max(1, first_ts - ts_now))
        window_from = chain.block_number() + 1
        liquidations = 0
        liquidated: set[str] = set()
        for ts, answer in rounds[1:]:
            now = int(chain.block()["timestamp"], 16)
            if ts > now + 12:
                m.advance_time(ts - now - 12)
            m.set_price(coll, answer)
            for u in borrowers:
                if u in liquidated:
                    continue
                hf = m.get_user_account_data(u).health_factor
                if hf < 10**18 and not liquidated:  # one liquidation: the first account to cross
                    debt_now = m.variable_debt(u, usdc)
                    r = m.liquidate(liquidator, coll, usdc, u, debt_now // 2, fund=True)
                    assert r.ok, r
                    liquidations += 1
                    liquidated.add(u)
        now = int(chain.block()["timestamp"], 16)
        if END_TS > now:
            m.advance_time(END_TS - now)
        window_to = chain.block_number()
        dep = db.with_suffix(".deployments.toml")
        dep.write_text(
            textwrap.dedent(f"""\
            [meta]
            chain = "anvil"
            chain_id = {CHAIN_ID}

            [[deployment]]
            name = "{DEPLOYMENT}"
            protocol = "aave_v3"
            chain_id = {CHAIN_ID}
            start_block = 0
            [deployment.contracts]
            pool = "{m.pool.address}"
            pool_configurator = "{m.configurator.address}"
            oracle = "{m.oracle.address}"
            addresses_provider = "{m.provider.address}"

            [[feed]]
            name = "ETH / USD"
            chain_id = {CHAIN_ID}
            proxy = "{coll.feed.address}"
            decimals = 8
            start_block = 0
            deviation_bps = 50
            heartbeat_s = 3600

            [[feed]]
            name = "USDC / USD"
            chain_id = {CHAIN_ID}
            proxy = "{usdc.feed.address}"
            decimals = 8
            start_block = 0
            deviation_bps = 25
            heartbeat_s = 86400
            """)
        )
        rpc = JsonRpcClient(HttpTransport(node.url))
        try:
            with Warehouse(db) as wh:
                run_ingest(
                    wh,
                    rpc,
                    IngestRequest(
                        chain_id=CHAIN_ID,
                        deployments=load_deployments(dep),
                        finality="head",
                        chunk_blocks=2000,
                        to_block=window_to,
                        endpoint_label="anvil (report tests)",
                    ),
                )
                import_prices(
                    wh,
                    SAMPLE_PRICES,
                    fmt="riskdao_binance",
                    pair="ETH/USD",
                    unit="USD",
                    source=PRICE_SOURCE,
                    run_id="report-test-prices",
                )
        finally:
            rpc.close()
        built = Built(
            db,
            window_from,
            window_to,
            coll.feed.address.lower(),
            coll.address.lower(),
            usdc.address.lower(),
            liquidations,
        )
    _CACHE[db] = built
    return built


ALL_METRICS = ("bad_debt", "liquidations", "paths", "oracle_lag", "finality", "fidelity", "socialization")


def scenario_text(
    b: Built,
    *,
    name: str = "report-test",
    mode: str = "historical",
    checks: str = "",
    extra: str = "",
    metrics: tuple[str, ...] = ALL_METRICS,
    min_profit_usd: int = 0,
) -> str:
    """A scenario over the built warehouse (``checks``: the body of a [checks] table)."""
    text = textwrap.dedent(f"""\
        name = "{name}"
        chain_id = {CHAIN_ID}
        mode = "{mode}"
        warehouse = "{b.db}"

        [window]
        from_block = {b.window_from}
        to_block = {b.window_to}

        [market]
        protocol = "aave_v3"
        source = "{DEPLOYMENT}"
        rules = "3.0"

        [reference]
        source = "{PRICE_SOURCE}"
        [reference.pairs]
        "{b.feed}" = "ETH/USD"

        [liquidator]
        reaction_delay_blocks = 1
        gas_units = 400000
        gas_price_key = "{b.collateral}"
        min_profit_usd = {min_profit_usd}

        [metrics]
        names = {list(metrics)!r}
        """).replace("'", '"')
    if extra:
        text += "\n" + textwrap.dedent(extra)
    if checks:
        text += "\n[checks]\n" + textwrap.dedent(checks)
    return text
