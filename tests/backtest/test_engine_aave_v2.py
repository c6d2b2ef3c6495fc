"""Aave v2 end to end: a real v2 market on anvil (npm ``@aave/protocol-v2`` bytecode,
:class:`tests.protocols.aave_v2_market.AaveV2Market`), ingested by the real ingestor (dataset
``aave_v2``: lending pool, configurator, the v2 AaveOracle and its ``AssetSourceUpdated`` /
``WethSet`` logs, the tokens; Chainlink-style X/ETH feeds with 18 decimals), replayed by
``backtest.run`` in historical and counterfactual mode.

The chain: WETH collateral (the v2 AaveOracle prices WETH at exactly 1 ETH, no feed), USDC debt
priced by a USDC/ETH feed. A borrows at HF 1.05 and B at HF 1.15; USDC/ETH rises (= ETH/USD
falls) so that A is liquidatable, and a liquidator liquidates A in the next block (50 % close
factor); USDC/ETH rises again until B's debt exceeds its collateral: nobody liquidates B, whose
debt beyond its collateral is bad debt.

Units: Aave v2 values are ETH wei (``base_unit = 10**18``, ``base_currency = "ETH"``): bad debt
figures are compared in wei with what the contract itself reports (``getUserAccountData``).

Token decimals and the aTokens' treasury: v2 emits neither (``ReserveInitialized`` lacks them, the
treasury is an aToken immutable); the scenario declares them in ``[market.asset_decimals]`` and
``[market.asset_treasuries]`` — here the tokens' ``decimals()`` and ``RESERVE_TREASURY_ADDRESS()``
read from the chain with ``eth_call``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from backtest.api import run
from ingest.deployments import load_deployments
from ingest.devchain import DevChain
from ingest.engine import IngestRequest, run_ingest
from ingest.rpc import JsonRpcClient
from ingest.transports import HttpTransport
from ingest.warehouse import Warehouse
from tests.protocols.aave_v2_market import DEFAULT_RESERVES, MAX_UINT256, AaveV2Market

pytestmark = pytest.mark.anvil

GENESIS = 1_700_000_000
WAD = 10**18
USDC_ETH_0 = 500_000_000_000_000  # 0.0005 ETH per USDC (ETH/USD 2,000)


@dataclass
class Chain:
    db: Path
    m: AaveV2Market
    weth: str
    usdc: str
    feed: str
    from_block: int
    to_block: int
    users: dict[str, str]
    liquidation: dict[str, Any]
    last_price_block: int
    decimals: dict[str, int]
    treasuries: dict[str, str]


def _deployments(m: AaveV2Market, feeds: list[str]) -> str:
    lines = ["[meta]", 'chain = "anvil"', "chain_id = 31337", "", "[[deployment]]", 'name = "aave_v2_local"',
             'protocol = "aave_v2"', "chain_id = 31337", "start_block = 0", "[deployment.contracts]",
             f'lending_pool = "{m.pool.address}"', f'lending_pool_configurator = "{m.configurator.address}"',
             f'oracle = "{m.oracle.address}"', f'addresses_provider = "{m.provider.address}"']
    for i, f in enumerate(feeds):
        lines += ["", "[[feed]]", f'name = "feed {i} / ETH"', "chain_id = 31337", f'proxy = "{f}"',
                  "decimals = 18", "start_block = 0", "deviation_bps = 100", "heartbeat_s = 86400"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from ingest.devnet import Anvil

    tmp = tmp_path_factory.mktemp("wh2")
    node = Anvil(timestamp=GENESIS)
    c = DevChain(node.url)
    try:
        reserves = [r for r in DEFAULT_RESERVES if r.symbol in ("WETH", "USDC")]
        m = AaveV2Market.deploy(c, reserves, block_interval=12)
        lp, a, b, liq = (m.new_user() for _ in range(4))
        m.fund(lp, "USDC", 10**6 * 10**6)
        m.deposit(lp, "USDC", 10**6 * 10**6)
        # WETH LT 82.5 %: 10 WETH carry 8.25 ETH of debt; A at HF 1.05, B at HF 1.15
        for u, hf_bps in ((a, 10_500), (b, 11_500)):
            m.fund(u, "WETH", 10 * WAD)
            m.deposit(u, "WETH", 10 * WAD)
            debt_eth = 825 * WAD // 100 * 10_000 // hf_bps
            m.borrow(u, "USDC", debt_eth * 10**6 // USDC_ETH_0)
        m.fund(liq, "USDC", 10**6 * 10**6)
        fb = c.block_number() + 1
        m.set_price("USDC", USDC_ETH_0 * 108 // 100)   # A: HF 1.05 / 1.08 < 1; B: 1.15 / 1.08 > 1
        r = m.liquidate(liq, "WETH", "USDC", a, MAX_UINT256, check=True)
        ev = r.event("LiquidationCall")
        logs = [x for x in r.receipt["logs"] if x["address"].lower() == m.pool.address]
        li = max(int(x["logIndex"], 16) for x in logs)  # LiquidationCall: the pool's last log of the tx
        liquidation = {"user": a, "block": r.block_number, "log_index": li, "tx": r.tx_hash,
                       "debt": int(ev["debtToCover"]), "seized": int(ev["liquidatedCollateralAmount"])}
        c.mine(2)
        # B's debt: 1.15^-1 x 8.25 ETH at 0.0005; x 1.3 -> 9.33 ETH... x 1.4 -> 10.04 ETH > 10 ETH
        m.set_price("USDC", USDC_ETH_0 * 140 // 100)
        last = c.block_number()
        c.mine(3)
        tb = c.block_number()
        feed = m.reserve("USDC").feed
        assert feed is not None
        dep = tmp / "deployments.toml"
        dep.write_text(_deployments(m, [feed.address]))
        decimals = {m.asset(s): int(c.call(m.reserve(s).token, "decimals")[0]) for s in ("WETH", "USDC")}
        treasuries = {m.asset(s): str(c.call(m.reserve(s).a_token, "RESERVE_TREASURY_ADDRESS")[0]).lower()
                      for s in ("WETH", "USDC")}
        db = tmp / "w.duckdb"
        rpc = JsonRpcClient(HttpTransport(node.url), backoff_base=0.01)
        try:
            with Warehouse(db) as wh:
                run_ingest(wh, rpc, IngestRequest(chain_id=31337, deployments=load_deployments(dep),
                                                  finality="head", endpoint_label="test", chunk_blocks=500))
        finally:
            rpc.close()
        yield Chain(db, m, m.asset("WETH"), m.asset("USDC"), feed.address, fb, tb,
                    {"a": a, "b": b, "liq": liq}, liquidation, last, decimals, treasuries)
    finally:
        c.close()
        node.stop()


def _scenario(ch: Chain, tmp: Path, mode: str, extra: str = "") -> Path:
    f = tmp / f"{mode}.toml"
    decs = "\n".join(f'"{a}" = {d}' for a, d in sorted(ch.decimals.items()))
    treas = "\n".join(f'"{a}" = "{t}"' for a, t in sorted(ch.treasuries.items()))
    f.write_text(f"""name = "aave v2 local {mode}"
chain_id = 31337
mode = "{mode}"
[window]
from_block = {ch.from_block}
to_block = {ch.to_block}
[market]
protocol = "aave_v2"
dataset = "aave_v2"
source = "aave_v2_local"
[market.asset_decimals]
{decs}
[market.asset_treasuries]
{treas}
[liquidator]
reaction_delay_blocks = 1
min_profit_eth = 0
[metrics]
names = ["fidelity", "liquidations", "bad_debt"]
{extra}""")
    return f


def _bad_debt_on_chain(ch: Chain, user: str, block: int) -> int:
    d = ch.m.get_user_account_data(user, block)
    return max(0, d.total_debt_eth - d.total_collateral_eth)


def test_historical_replay_of_an_aave_v2_market_reproduces_its_liquidation(chain: Chain,
                                                                          tmp_path: Path) -> None:
    res = run(_scenario(chain, tmp_path, "historical"), db=chain.db)
    x = chain.liquidation
    observed = [q for q in res.output.liquidations if q.observed]
    assert [(o.user, o.block_number, o.log_index, o.tx_hash) for o in observed] == [
        (x["user"], x["block"], x["log_index"], x["tx"])]
    (o,) = observed
    assert o.predicted is not None and o.predicted.ok
    assert (o.debt_repaid, o.collateral_seized) == (x["debt"], x["seized"])
    assert (o.predicted.debt_repaid, o.predicted.collateral_seized) == (x["debt"], x["seized"])
    assert o.protocol_fee == 0  # v2: the whole bonus goes to the liquidator
    # the liquidator model (delay 1) predicts the same liquidation, same block, same amounts
    preds = [q for q in res.output.liquidations if not q.observed and q.user == x["user"]]
    assert [(p.block_number, p.debt_repaid, p.collateral_seized) for p in preds][:1] == [
        (x["block"], x["debt"], x["seized"])]
    f = res.summary["fidelity"]
    assert (f["observed"], f["matched"], f["recall"], f["amounts_exact"]) == (1, 1, 1.0, 1)
    # bad debt in ETH wei, as the contract reports it: B, never liquidated, at the window's last
    # block (interest accrued after the last price move included)
    b = chain.users["b"]
    want = _bad_debt_on_chain(chain, b, chain.to_block)
    assert want > _bad_debt_on_chain(chain, b, chain.last_price_block) > 0
    ev = res.output.final_state  # the replayed market
    assert ev is not None
    bd = res.summary["bad_debt"]
    assert bd["base_currency"] == "ETH"
    assert bd["end_unrealized_oracle_value"] == want
    # the figures named after USD are not there: ETH-denominated values are named honestly
    assert not any(k.endswith("_usd") for k in bd)
    assert bd["end_unrealized_oracle_eth"] == pytest.approx(want / 10**18)


def test_counterfactual_replay_of_an_aave_v2_market(chain: Chain, tmp_path: Path) -> None:
    """Positions frozen at the window start; the liquidator model liquidates A in the block after
    the rise, as the on-chain liquidator did (same state, same block timestamp: same amounts), and
    again at the second rise; B ends underwater as on chain."""
    res = run(_scenario(chain, tmp_path, "counterfactual"), db=chain.db)
    x = chain.liquidation
    sims = [q for q in res.output.liquidations if q.committed and not q.observed]
    first = [q for q in sims if q.user == x["user"]][0]
    assert (first.block_number, first.debt_repaid, first.collateral_seized) == (x["block"], x["debt"],
                                                                                 x["seized"])
    bd = res.summary["bad_debt"]
    assert bd["base_currency"] == "ETH" and bd["end_unrealized_oracle_value"] > 0


def test_aave_v2_money_is_in_eth_everywhere(chain: Chain, tmp_path: Path) -> None:
    """An Aave v2 run's values are ETH (its oracle's base currency): bt.runs says so, the floats
    are whole ETH, the run overview finds the ETH figures, ``[checks]`` judges them with ``_eth``
    keys and the dust threshold is given in ETH. (Before, the floats were named ``_usd``, the
    overview showed NULL and ``dust_usd = 1`` meant 1 ETH.)"""
    from backtest.checks import evaluate

    b = chain.users["b"]
    want = _bad_debt_on_chain(chain, b, chain.to_block)
    # a dust threshold 1 wei above B's bad debt, in ETH (a string: exact to the wei): B's bad debt
    # is then dust, not material
    dust = format(Decimal(want + 1).scaleb(-18), "f")
    res = run(_scenario(chain, tmp_path, "historical", extra=(
        f'[metrics.bad_debt]\ndust_eth = "{dust}"\n[checks]\nmax_bad_debt_eth = 1000\n')), db=chain.db)
    with Warehouse(chain.db, read_only=True) as wh:
        assert wh.con.execute("SELECT base_currency, base_currency_decimals FROM bt.runs "
                              "WHERE run_id = ?", [res.run_id]).fetchall() == [("ETH", 18)]
        (v, f), = wh.con.execute(
            "SELECT unrealized_oracle_value, unrealized_oracle_base_f64 FROM bt.bad_debt_blocks "
            "WHERE run_id = ? ORDER BY block_number DESC LIMIT 1", [res.run_id]).fetchall()
        assert int(v) == want and f == int(v) / 10**18
        (end, ov_cur), = wh.con.execute("SELECT bad_debt_end_base, base_currency FROM bt.run_overview "
                                        "WHERE run_id = ?", [res.run_id]).fetchall()
        assert ov_cur == "ETH" and end == pytest.approx(res.summary["bad_debt"]["end_total_oracle_eth"])
    bd = res.summary["bad_debt"]
    assert bd["end_unrealized_oracle_value"] == want
    assert bd["dust_threshold_value"] == want + 1
    assert bd["end_material_oracle_value"] == 0 and bd["end_dust_oracle_value"] == want
    (o,) = evaluate(res.scenario.checks, res.summary, res.run_id)
    assert o.ok and (o.threshold.figure.name, o.threshold.figure.unit) == ("end_total_oracle_eth", "ETH")
    assert o.value == pytest.approx(want / 10**18)


def test_socialization_needs_the_treasuries(chain: Chain, tmp_path: Path) -> None:
    """Without [market.asset_treasuries] a v2 reserve's treasury is unknown: the socialization
    metric read its claim as 0 and put the treasury's share of B's loss on the suppliers
    (end_treasury_reserve_value 0 instead of 5.6e9 wei), silently. It is refused, at the metric."""
    import re

    from backtest.errors import ScenarioError

    f = _scenario(chain, tmp_path, "historical")
    text = f.read_text().replace('names = ["fidelity", "liquidations", "bad_debt"]',
                                 'names = ["socialization", "bad_debt"]')
    f.write_text(text)
    s = run(f, db=chain.db).summary["socialization"]
    assert s["end_treasury_reserve_value"] > 0
    assert s["end_treasury_reserve_value"] + s["end_suppliers_value"] == s["end_unrealized_value"] > 0
    f.write_text(re.sub(r'\[market.asset_treasuries\]\n("0x[0-9a-f]{40}" = "0x[0-9a-f]{40}"\n)*', "", text))
    with pytest.raises(ScenarioError) as e:
        run(f, db=chain.db)
    assert e.value.field == "metrics.socialization"
    assert "the treasury of reserve(s)" in e.value.message and "[market.asset_treasuries]" in e.value.message


def test_a_liquidation_needs_the_treasury_it_mints_to(chain: Chain, tmp_path: Path) -> None:
    """USDC's reserve factor (10 %) makes every ``updateState`` after interest accrued mint the
    treasury's share to the aToken's ``RESERVE_TREASURY_ADDRESS``, which no v2 event carries.
    Without [market.asset_treasuries] the engine's liquidation of A quoted a revert '23'
    (LP_LIQUIDATION_CALL_FAILED: the port's mint to address 0 'reverted') where the chain
    liquidated A, so the counterfactual run let A go unliquidated and counted a protocol revert,
    silently. It is now an error naming the reserve and the declaration."""
    import re

    from backtest.errors import ReplayError

    f = _scenario(chain, tmp_path, "counterfactual")
    f.write_text(
        re.sub(r'\[market.asset_treasuries\]\n("0x[0-9a-f]{40}" = "0x[0-9a-f]{40}"\n)*', "", f.read_text())
    )
    assert "asset_treasuries" not in f.read_text()
    with pytest.raises(ReplayError) as e:
        run(f, db=chain.db)
    msg = str(e.value)
    assert chain.usdc in msg and "[market.asset_treasuries]" in msg


def test_a_usd_quoted_v2_oracle_is_refused(tmp_path: Path) -> None:
    """A USD-quoted Aave v2 market (as those outside Ethereum's main one are documented to be):
    its AaveOracle (the later one, with ``BaseCurrencySet``) announces base currency
    ``address(0)`` and unit ``1e8``. The adapter values in ETH wei (``base_unit = 1e18``,
    ``base_currency = "ETH"``), so such a market was replayed with every value a USD amount in 8
    decimals read as ETH wei (and labelled ETH), silently. The oracle here is the real
    ``AaveOracle`` bytecode of npm ``@aave/core-v3`` (the same ``BaseCurrencySet`` /
    ``AssetSourceUpdated`` events and ``getAssetPrice`` as v2's later AaveOracle), constructed
    USD-quoted and set as the v2 pool's price oracle; the replay now stops at its
    ``BaseCurrencySet``, naming it."""
    from eth_abi.abi import encode as abi_encode

    from backtest.errors import ReplayError
    from ingest.aave_devmarket import aave_artifact
    from ingest.devchain import Contract, abi_type
    from ingest.devnet import Anvil

    node = Anvil(timestamp=GENESIS)
    c = DevChain(node.url)
    try:
        m = AaveV2Market.deploy(
            c, [r for r in DEFAULT_RESERVES if r.symbol in ("WETH", "USDC")], block_interval=12
        )
        feed = m.reserve("USDC").feed
        assert feed is not None
        art = aave_artifact("AaveOracle")
        ctor = next(e for e in art["abi"] if e.get("type") == "constructor")
        # every reserve needs a source: WETH reads the same test feed (its answers do not matter here)
        args = [
            m.provider.address,
            [m.asset("USDC"), m.asset("WETH")],
            [feed.address, feed.address],
            "0x" + "00" * 20,
            "0x" + "00" * 20,
            10**8,
        ]
        data = bytes.fromhex(art["bytecode"][2:]) + abi_encode([abi_type(p) for p in ctor["inputs"]], args)
        tx = c.tx_request(None, data, sender=m.admin)
        receipt = c._wait_receipt(str(c.rpc("eth_sendTransaction", [tx])))
        assert receipt is not None and int(receipt["status"], 16) == 1
        usd_oracle = Contract(str(receipt["contractAddress"]).lower(), art["abi"], "AaveOracle")
        m._admin_send(m.provider, "setPriceOracle", usd_oracle.address)
        assert int(c.call(usd_oracle, "BASE_CURRENCY_UNIT")[0]) == 10**8
        lp = m.new_user()
        m.fund(lp, "USDC", 10**6 * 10**6)
        m.deposit(lp, "USDC", 10**6 * 10**6)
        fb = c.block_number() + 1
        c.mine(3)
        tb = c.block_number()
        dep = tmp_path / "deployments.toml"
        dep.write_text(_deployments(m, [feed.address]).replace(m.oracle.address, usd_oracle.address))
        db = tmp_path / "w.duckdb"
        rpc = JsonRpcClient(HttpTransport(node.url), backoff_base=0.01)
        try:
            with Warehouse(db) as wh:
                run_ingest(
                    wh,
                    rpc,
                    IngestRequest(
                        chain_id=31337,
                        deployments=load_deployments(dep),
                        finality="head",
                        endpoint_label="test",
                        chunk_blocks=500,
                    ),
                )
        finally:
            rpc.close()
        decimals = {m.asset(s): m.reserve(s).spec.decimals for s in ("WETH", "USDC")}
        treasuries = {m.asset(s): m.treasury for s in ("WETH", "USDC")}
        ch = Chain(
            db, m, m.asset("WETH"), m.asset("USDC"), feed.address, fb, tb, {}, {}, tb, decimals, treasuries
        )
        with pytest.raises(ReplayError) as e:
            run(_scenario(ch, tmp_path, "historical"), db=db)
        assert "BaseCurrencySet" in str(e.value) and "100000000" in str(e.value)
    finally:
        c.close()
        node.stop()
