"""The addresses provider switches the market's price oracle (``setPriceOracle``): from then on
the Pool prices every asset through the new AaveOracle, whose sources were set in its
constructor. Real Aave v3.0.2 bytecode on anvil; truth is ``provider.getPriceOracle()`` and that
oracle's ``getAssetPrice`` by eth_call.

The replay read every ``AssetSourceUpdated`` of the market whatever contract emitted it, and
never the provider's ``PriceOracleUpdated``: with the old oracle declared it kept pricing WETH
from the old oracle's feed after the switch, silently.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backtest.api import run
from backtest.errors import MissingData, ReplayError
from ingest.aave_devmarket import AaveV3Market, ReserveSpec
from ingest.deployments import load_deployments
from ingest.devchain import DevChain
from ingest.devnet import Anvil
from ingest.engine import IngestRequest, run_ingest
from ingest.rpc import JsonRpcClient
from ingest.transports import HttpTransport
from ingest.warehouse import Warehouse

pytestmark = pytest.mark.anvil

CHAIN = 31337


def _deployments(m: AaveV3Market, oracle: str, feeds: dict[str, str]) -> str:
    lines = ["[[deployment]]", 'name = "m"', 'protocol = "aave_v3"', f"chain_id = {CHAIN}", "start_block = 0",
             "[deployment.contracts]", f'pool = "{m.pool.address}"',
             f'pool_configurator = "{m.configurator.address}"', f'oracle = "{oracle}"',
             f'addresses_provider = "{m.provider.address}"', ""]
    for name, proxy in feeds.items():
        lines += ["[[feed]]", f'name = "{name}"', f"chain_id = {CHAIN}", f'proxy = "{proxy}"', "decimals = 8",
                  "start_block = 0", ""]
    return "\n".join(lines)


def _ingest(url: str, db: Path, dep_text: str) -> None:
    dep = db.with_suffix(".toml")
    dep.write_text(dep_text)
    rpc = JsonRpcClient(HttpTransport(url))
    try:
        with Warehouse(db) as wh:
            run_ingest(wh, rpc, IngestRequest(chain_id=CHAIN, deployments=load_deployments(dep),
                                              finality="head", endpoint_label="test"))
    finally:
        rpc.close()


def _scenario(tmp: Path, db: Path, fb: int, tb: int) -> Path:
    f = tmp / f"s-{db.stem}-{fb}.toml"
    f.write_text(f'name = "x"\nchain_id = {CHAIN}\nmode = "historical"\nwarehouse = "{db.as_posix()}"\n'
                 f'[window]\nfrom_block = {fb}\nto_block = {tb}\n[market]\nprotocol = "aave_v3"\n'
                 'source = "m"\nrules = "3.0"\n[metrics]\nnames = ["paths"]\n')
    return f


def test_a_provider_switch_of_the_price_oracle_is_followed_or_refused(tmp_path: Path) -> None:
    reserves = (ReserveSpec("WETH", 18, 2_000 * 10**8), ReserveSpec("USDC", 6, 10**8))
    with Anvil(keep_states=512) as node, DevChain(node.url) as chain:
        m = AaveV3Market.deploy(chain, reserves, emodes=(), block_interval=12)
        weth, usdc = m.reserve("WETH"), m.reserve("USDC")
        old = m.oracle
        _agg2, feed2 = m._deploy_feed("WETH", 2_100 * 10**8, 8, "USD")
        new = m._deploy("AaveOracle", m.provider.address, [weth.address, usdc.address],
                        [feed2.address, usdc.feed.address], "0x" + "00" * 20, "0x" + "00" * 20, 10**8)
        m.advance_time(12, blocks=2)
        m._admin_send(m.provider, "setPriceOracle", new.address)
        switch = chain.block_number()
        m.advance_time(12, blocks=4)
        last = chain.block_number()
        # the truth: the provider's oracle and its WETH price on either side of the switch
        assert chain.call(m.provider, "getPriceOracle", block=switch - 1)[0].lower() == old.address.lower()
        assert chain.call(m.provider, "getPriceOracle", block=switch)[0].lower() == new.address.lower()
        price_after = int(chain.call(new, "getAssetPrice", weth.address, block=switch + 1)[0])
        price_old = int(chain.call(old, "getAssetPrice", weth.address, block=switch)[0])
        assert price_after == 2_100 * 10**8 != price_old
        feeds = {"WETH 1": weth.feed.address, "WETH 2": feed2.address, "USDC": usdc.feed.address}
        declared_old, declared_new = tmp_path / "old.duckdb", tmp_path / "new.duckdb"
        _ingest(node.url, declared_old, _deployments(m, old.address, feeds))
        _ingest(node.url, declared_new, _deployments(m, new.address, feeds))

    # the old oracle declared: its sources are not what the pool reads after the switch
    with pytest.raises(MissingData, match=rf"price oracle at block {switch + 1} is {new.address.lower()}"):
        run(_scenario(tmp_path, declared_old, switch + 1, last))
    # the new one declared: WETH is priced from its source, as getAssetPrice says
    r = run(_scenario(tmp_path, declared_new, switch + 1, last))
    start = {row["price_key"]: row["price"] for row in r.frames()["bt.price_path"].to_dicts()
             if row["log_index"] == -2}
    assert start[weth.address.lower()] == price_after
    # a window across the switch: refused, naming the block
    across = rf"switched the price oracle to {new.address.lower()} at block {switch}"
    with pytest.raises(ReplayError, match=across):
        run(_scenario(tmp_path, declared_new, switch - 1, last))
