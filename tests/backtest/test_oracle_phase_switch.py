"""A Chainlink proxy's aggregator switch, replayed: the answer the replay reads at every block
equals what the proxy itself returns there (``latestAnswer`` by eth_call on a real anvil).

``AggregatorProxy.confirmAggregator`` emits nothing; from its transaction on, ``latestRoundData``
reads the *new* aggregator, whose latest answer may predate the switch (an OCR aggregator runs and
transmits before the proxy is pointed at it). That answer is what the protocol reads from the
switch until the new aggregator's next round: the replay kept the old aggregator's last answer
instead (``raw.oracle_rounds`` leaves out an aggregator's rows before its phase, rightly, but
nothing repeated its latest one at the switch).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backtest.api import _feed_rounds
from backtest.clock import Blocks
from backtest.oracle import publications
from backtest.scenario import parse_scenario
from ingest.deployments import load_deployments
from ingest.devchain import Contract, DevChain
from ingest.engine import IngestRequest, run_ingest
from ingest.rpc import JsonRpcClient
from ingest.transports import HttpTransport
from ingest.warehouse import Warehouse

pytestmark = pytest.mark.anvil


def _chain(chain: DevChain) -> tuple[Contract, int, int, int]:
    """Flux aggregator (phase 1) behind a proxy; an OCR aggregator transmits 2,100 and then 2,150
    before it is confirmed (phase 2), the old one goes on after the switch, and the new one's
    first round after it comes 4 blocks later. Returns (proxy, block of the first round, switch
    block, last block)."""
    owner = chain.default_sender
    flux = chain.deploy("TestFluxAggregator", 3600, 1, 10**14, 8, "ETH / USD")
    chain.send(flux, "changeOracles", [], [owner], [owner], 1, 1, 0)
    proxy = chain.deploy("TestAggregatorProxy", flux.address)
    ocr = chain.deploy("TestOCRAggregator", 1, 10**14, 8, "ETH / USD")
    chain.send(flux, "submit", 1, 2_000 * 10**8)
    first = chain.block_number()
    chain.send(ocr, "transmit", [2_100 * 10**8])
    chain.mine(2)
    chain.send(flux, "submit", 2, 2_010 * 10**8)
    chain.send(ocr, "transmit", [2_150 * 10**8])
    chain.mine(2)
    chain.send(proxy, "proposeAggregator", ocr.address)
    chain.send(proxy, "confirmAggregator", ocr.address)
    switch = chain.block_number()
    chain.send(flux, "submit", 3, 1_990 * 10**8)  # the old aggregator, no longer read
    chain.mine(3)
    chain.send(ocr, "transmit", [2_200 * 10**8])
    chain.mine(3)
    return proxy, first, switch, chain.block_number()


def test_the_new_aggregators_latest_answer_is_read_from_the_switch(anvil, tmp_path: Path) -> None:
    chain = DevChain(anvil.url)
    try:
        contract, first, switch, last = _chain(chain)
        truth = {b: chain.call(contract, "latestAnswer", block=b)[0] for b in range(first, last + 1)}
        proxy = contract.address.lower()
    finally:
        chain.close()
    dep = tmp_path / "d.toml"
    dep.write_text(f'[[feed]]\nname = "ETH / USD"\nchain_id = 31337\nproxy = "{proxy}"\ndecimals = 8\n'
                   "start_block = 0\n")
    rpc = JsonRpcClient(HttpTransport(anvil.url), backoff_base=0.01)
    try:
        with Warehouse(tmp_path / "w.duckdb") as wh:
            run_ingest(wh, rpc, IngestRequest(chain_id=31337, deployments=load_deployments(dep),
                                              finality="head", endpoint_label="test"))
            rows = wh.con.execute("SELECT number, timestamp_ts, 0, true FROM raw.blocks ORDER BY number"
                                  ).fetchall()
            blocks = Blocks([(int(n), int(t), 0, True) for n, t, _, _ in rows])
            # windows starting before the switch, at it, and between it and the new round
            for fb in (first + 1, switch, switch + 2):
                sc = parse_scenario(f'name = "x"\nchain_id = 31337\n[window]\nfrom_block = {fb}\n'
                                    f'to_block = {last}\n[market]\nprotocol = "aave_v3"\nsource = "m"\n')
                init, rounds = _feed_rounds(wh, sc, [proxy], fb, last)
                pubs = publications(sc.oracle, rounds, [], {}, {}, blocks, last)
                got = {}
                answer = init[proxy].answer
                for b in range(fb, last + 1):
                    for p in pubs:
                        if p.block_number == b and p.accepted:
                            answer = p.answer
                    got[b] = answer
                assert got == {b: truth[b] for b in range(fb, last + 1)}, f"window from {fb}"
    finally:
        rpc.close()
    # the switch really moved the price: the test would pass on a carried-over answer otherwise
    assert truth[switch - 1] == 2_010 * 10**8 and truth[switch] == 2_150 * 10**8
