"""The committed test contracts, deployed on a real anvil through ingest.devchain.

Checks that the Chainlink stand-ins behave like upstream where the ingestor depends on it
(event order and topics, proxy round ids = phase << 64 | aggregator round, silent phase
switches, the min/max circuit breaker), that a generated Aave emitter logs exactly what it is
given, and that the committed artifacts and generated emitters are not stale.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from eth_abi import decode
from eth_hash.auto import keccak

from ingest.devchain import Contract, DevChain, TxReverted, artifacts_dir, event_topic
from ingest.devnet import Anvil, anvil_binary, repo_root
from ingest.errors import ConfigError

# topic0 values from protocol-rules.md section 10
ANSWER_UPDATED = "0x0559884fd3a460db3073b7fc896cc77986f16e378210ded43186175bf646fc5f"
NEW_ROUND = "0x0109fc6f55cf40689f02fbaad7af7fe7bbac8a3d2186600afc7d3e10cac60271"
NEW_TRANSMISSION_OCR1 = "0xf6a97944f31ea060dfde0566e4167c1a1082551e64b60ecb14d599a9d023d451"
NEW_TRANSMISSION_OCR2 = "0xc797025feeeaf2cd924c99e9205acb8ec04d5cad21c41ce637a38fb6dee6016a"
OWNERSHIP_TRANSFERRED = "0x8be0079c531659141344cd1fd0a4f28419497f9722a3daafe3b4186f6b6457e0"
# Aave LiquidationCall (protocol-rules.md sections 1-2; stack notes: 0xe413a321...e005286)
LIQUIDATION_CALL_SIG = "LiquidationCall(address,address,address,uint256,uint256,address,bool)"

PHASE = 1 << 64
MEDIAN_RANGE = "median is out of min-max range"
ROOT = repo_root()


def _anvil_available() -> bool:
    try:
        anvil_binary()
    except ConfigError:
        return False
    return True


needs_anvil = pytest.mark.skipif(not _anvil_available(), reason="anvil not installed (npm ci)")


@pytest.fixture(scope="module")
def chain() -> Iterator[DevChain]:
    if not _anvil_available():
        pytest.skip("anvil not installed (npm ci)")
    with Anvil() as node, DevChain(node.url) as c:
        yield c


def _word(x: int) -> str:
    return "0x" + (x % (1 << 256)).to_bytes(32, "big").hex()


def _addr_topic(a: str) -> str:
    return "0x" + "00" * 12 + a.lower().removeprefix("0x")


def _tx_logs(chain: DevChain, tx_hash: str) -> list[dict]:
    receipt = chain.receipt(tx_hash)
    assert receipt is not None and receipt["status"] == "0x1"
    return list(receipt["logs"])


def _block_ts(chain: DevChain, tx_hash: str) -> int:
    receipt = chain.receipt(tx_hash)
    assert receipt is not None
    return int(chain.block(int(receipt["blockNumber"], 16))["timestamp"], 16)


def _next_ts(chain: DevChain, gap: int = 60) -> int:
    ts = int(chain.block()["timestamp"], 16) + gap
    chain.set_next_timestamp(ts)
    return ts


def _deploy_feed(chain: DevChain, kind: str = "TestOCRAggregator", lo: int = 1,
                 hi: int = 10**15) -> tuple[Contract, Contract]:
    agg = chain.deploy(kind, lo, hi, 8, "ETH / USD")
    return agg, chain.deploy("TestAggregatorProxy", agg.address)


def test_artifact_event_topics_match_protocol_rules() -> None:
    def topics(name: str) -> dict[str, str]:
        doc = json.loads((artifacts_dir() / f"{name}.json").read_text())
        return {e["name"]: event_topic(e) for e in doc["abi"] if e["type"] == "event"}

    ocr1, ocr2 = topics("TestOCRAggregator"), topics("TestOCR2Aggregator")
    assert ocr1["NewTransmission"] == NEW_TRANSMISSION_OCR1
    assert ocr2["NewTransmission"] == NEW_TRANSMISSION_OCR2
    for name in ("TestOCRAggregator", "TestOCR2Aggregator", "TestFluxAggregator",
                 "TestAggregatorProxy"):
        t = topics(name)
        assert t["AnswerUpdated"] == ANSWER_UPDATED
        assert t["NewRound"] == NEW_ROUND
        assert t["OwnershipTransferred"] == OWNERSHIP_TRANSFERRED


@needs_anvil
def test_ocr_rounds_logs_and_proxy_round_ids(chain: DevChain) -> None:
    agg, proxy = _deploy_feed(chain)
    rounds = [([300_00, 100_00, 200_00], 200_00, b"\x01\x02\x00"),
              ([5, 7, 6, 9], 7, b"\x00\x02\x01\x03"),  # even count: observations[n/2] as OCR
              ([123_456_789], 123_456_789, b"\x00")]
    hashes, stamps = [], []
    for observations, _, _ in rounds:
        stamps.append(_next_ts(chain))
        hashes.append(chain.send(agg, "transmit", observations))

    for i, ((observations, median, observers), h, ts) in enumerate(
            zip(rounds, hashes, stamps, strict=True), start=1):
        assert _block_ts(chain, h) == ts
        logs = _tx_logs(chain, h)
        assert [lg["topics"][0] for lg in logs] == [
            NEW_TRANSMISSION_OCR1, NEW_ROUND, ANSWER_UPDATED]
        assert all(lg["address"] == agg.address for lg in logs)
        nt, nr, au = logs
        assert nt["topics"][1] == _word(i)
        answer, transmitter, obs, obs_ids, ctx = decode(
            ["int192", "address", "int192[]", "bytes", "bytes32"], bytes.fromhex(nt["data"][2:]))
        assert (answer, transmitter) == (median, chain.default_sender)
        assert list(obs) == sorted(observations) and obs_ids == observers
        assert int.from_bytes(ctx[-5:], "big") == (i << 8) | 1 and ctx[:11] == b"\0" * 11
        assert nr["topics"][1:] == [_word(i), _word(0)] and int(nr["data"], 16) == ts
        assert au["topics"][1:] == [_word(median), _word(i)] and int(au["data"], 16) == ts
        assert agg.decode_log(au) == ("AnswerUpdated",
                                      {"current": median, "roundId": i, "updatedAt": ts})
        assert chain.call(proxy, "getRoundData", PHASE | i) == (
            PHASE | i, median, ts, ts, PHASE | i)
        assert chain.call(agg, "getRoundData", i) == (i, median, ts, ts, i)
        assert chain.call(proxy, "getAnswer", PHASE | i) == (median,)
        assert chain.call(proxy, "getTimestamp", PHASE | i) == (ts,)

    n, last = len(rounds), rounds[-1][1]
    assert chain.call(proxy, "latestRoundData") == (
        PHASE | n, last, stamps[-1], stamps[-1], PHASE | n)
    assert chain.call(proxy, "latestAnswer") == (last,)
    assert chain.call(proxy, "latestRound") == (PHASE | n,)
    assert chain.call(proxy, "latestTimestamp") == (stamps[-1],)
    assert chain.call(proxy, "phaseId") == (1,)
    assert chain.call(proxy, "aggregator") == (agg.address,)
    assert chain.call(proxy, "decimals") == (8,)
    assert chain.call(proxy, "description") == ("ETH / USD",)
    assert chain.call(proxy, "version") == (4,)
    # the proxy itself never logs an answer
    assert chain.get_logs(proxy.address) == []
    # history is visible through eth_call at an older block
    first_block = int(chain.receipt(hashes[0])["blockNumber"], 16)
    assert chain.call(proxy, "latestRound", block=first_block) == (PHASE | 1,)


@needs_anvil
def test_phase_switch_is_silent_and_bumps_round_ids(chain: DevChain) -> None:
    agg1, proxy = _deploy_feed(chain)
    chain.send(agg1, "transmit", [1000])
    chain.send(agg1, "transmit", [1100])
    agg2 = chain.deploy("TestOCR2Aggregator", -(10**15), 10**15, 8, "ETH / USD")
    before = chain.block_number()

    with pytest.raises(TxReverted) as e:
        chain.send(proxy, "proposeAggregator", agg2.address, sender=chain.accounts[1])
    assert e.value.reason == "Only callable by owner"
    propose = chain.send(proxy, "proposeAggregator", agg2.address)
    with pytest.raises(TxReverted) as e:
        chain.send(proxy, "confirmAggregator", agg1.address)
    assert e.value.reason == "Invalid proposed aggregator"
    confirm = chain.send(proxy, "confirmAggregator", agg2.address)
    assert _tx_logs(chain, propose) == [] and _tx_logs(chain, confirm) == []

    assert chain.call(proxy, "phaseId") == (2,)
    assert chain.call(proxy, "phaseAggregators", 1) == (agg1.address,)
    assert chain.call(proxy, "phaseAggregators", 2) == (agg2.address,)
    assert chain.call(proxy, "aggregator") == (agg2.address,)
    assert chain.call(proxy, "aggregator", block=before) == (agg1.address,)
    assert chain.call(proxy, "phaseId", block=before) == (1,)
    assert chain.call(proxy, "version") == (6,)

    obs_ts = int(chain.block()["timestamp"], 16) - 30
    ts = _next_ts(chain)
    h = chain.send(agg2, "transmit", obs_ts, [-5, -7, -6], 4_000)  # OCR2 overload, negative answer
    nt, nr, au = _tx_logs(chain, h)
    assert [nt["topics"][0], nr["topics"][0], au["topics"][0]] == [
        NEW_TRANSMISSION_OCR2, NEW_ROUND, ANSWER_UPDATED]
    name, v = agg2.decode_log(nt)
    assert name == "NewTransmission"
    assert (v["aggregatorRoundId"], v["answer"], v["observationsTimestamp"]) == (1, -6, obs_ts)
    assert list(v["observations"]) == [-7, -6, -5] and v["observers"] == b"\x01\x02\x00"
    assert (v["juelsPerFeeCoin"], v["epochAndRound"]) == (4_000, (1 << 8) | 1)
    assert v["configDigest"][:2] == b"\x00\x01"
    assert int(nr["data"], 16) == obs_ts  # OCR2: NewRound.startedAt = observationsTimestamp
    assert au["topics"][1] == _word(-6) and int(au["data"], 16) == ts

    p2 = 2 << 64
    assert chain.call(proxy, "latestRoundData") == (p2 | 1, -6, obs_ts, ts, p2 | 1)
    assert chain.call(proxy, "latestRound") == (p2 | 1,)
    assert chain.call(proxy, "getRoundData", PHASE | 2)[:2] == (PHASE | 2, 1100)
    assert chain.call(proxy, "getAnswer", PHASE | 1) == (1000,)
    assert chain.call(proxy, "getAnswer", (3 << 64) | 1) == (0,)  # unknown phase: 0, no revert
    assert chain.call(agg2, "getRoundData", 1 << 40) == (0, 0, 0, 0, 0)


@needs_anvil
def test_median_out_of_range_reverts_and_feed_keeps_last_answer(chain: DevChain) -> None:
    agg, proxy = _deploy_feed(chain, lo=100, hi=1_000)
    chain.send(agg, "transmit", [500])
    for bad in ([99], [1_001], [1, 2, 5_000, 6_000]):
        with pytest.raises(TxReverted) as e:
            chain.send(agg, "transmit", bad)
        assert e.value.reason == MEDIAN_RANGE
    with pytest.raises(TxReverted) as e:
        chain.send_many([(agg, "transmit", ([600],)), (agg, "transmit", ([1],))])
    assert e.value.reason == MEDIAN_RANGE
    ocr2 = chain.deploy("TestOCR2Aggregator", 100, 1_000, 8, "X")
    with pytest.raises(TxReverted, match=MEDIAN_RANGE):
        chain.send(ocr2, "transmit", [2_000])
    assert chain.call(agg, "latestRound") == (2,)
    assert chain.call(proxy, "latestAnswer") == (600,)
    assert chain.call(ocr2, "latestRound") == (0,)


@needs_anvil
def test_flux_aggregator_rounds(chain: DevChain) -> None:
    owner, oracle, other = chain.accounts[:3]
    flux = chain.deploy("TestFluxAggregator", 3600, 0, 10**20, 8, "ETH / USD")
    chain.send(flux, "changeOracles", [], [oracle], [owner], 1, 1, 0)
    proxy = chain.deploy("TestAggregatorProxy", flux.address)
    with pytest.raises(TxReverted, match="No data present"):
        chain.call(proxy, "latestRoundData")

    ts1 = _next_ts(chain)
    h1 = chain.send(flux, "submit", 1, 100, sender=oracle)
    names = [flux.decode_log(lg)[0] for lg in _tx_logs(chain, h1)]
    assert names == ["NewRound", "SubmissionReceived", "AnswerUpdated"]
    nr, _, au = _tx_logs(chain, h1)
    assert nr["topics"] == [NEW_ROUND, _word(1), _addr_topic(oracle)] and int(nr["data"], 16) == ts1
    assert au["topics"] == [ANSWER_UPDATED, _word(100), _word(1)] and int(au["data"], 16) == ts1

    with pytest.raises(TxReverted, match="not enabled oracle"):
        chain.send(flux, "submit", 2, 100, sender=other)
    with pytest.raises(TxReverted, match="invalid round to report"):
        chain.send(flux, "submit", 3, 100, sender=oracle)
    with pytest.raises(TxReverted, match="value above maxSubmissionValue"):
        chain.send(flux, "submit", 2, 10**21, sender=oracle)
    ts2 = _next_ts(chain)
    chain.send(flux, "submit", 2, 105, sender=oracle)
    assert chain.call(proxy, "latestRoundData") == (PHASE | 2, 105, ts2, ts2, PHASE | 2)
    assert chain.call(proxy, "getRoundData", PHASE | 1) == (PHASE | 1, 100, ts1, ts1, PHASE | 1)
    assert chain.call(flux, "version") == (3,)


@needs_anvil
def test_generated_emitter_logs_liquidation_call(chain: DevChain) -> None:
    if not (artifacts_dir() / "AaveV3PoolEmitter.json").exists():
        pytest.skip("emitters not generated yet (ingest/catalog.py)")
    pool = chain.deploy("AaveV3PoolEmitter")
    collateral, debt, user, liquidator = (
        "0x" + bytes([b]).hex() * 20 for b in (0xC0, 0xDE, 0x05, 0x11))
    debt_to_cover, seized = 1_234 * 10**6, 2**200 + 7
    h = chain.send(pool, "emitLiquidationCall", collateral, debt, user, debt_to_cover, seized,
                   liquidator, True)
    (log,) = _tx_logs(chain, h)
    topic0 = "0x" + keccak(LIQUIDATION_CALL_SIG.encode()).hex()
    assert topic0.startswith("0xe413a321") and topic0.endswith("e005286")
    assert log["address"] == pool.address
    assert log["topics"] == [topic0, _addr_topic(collateral), _addr_topic(debt), _addr_topic(user)]
    assert decode(["uint256", "uint256", "address", "bool"], bytes.fromhex(log["data"][2:])) == (
        debt_to_cover, seized, liquidator, True)
    assert chain.get_logs(pool.address, topics=[topic0]) == chain.get_logs(pool.address)


def test_emitter_artifacts_match_the_catalog() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gen_emitters
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    for group, events in gen_emitters.load_groups().items():
        if group in gen_emitters.SKIP_GROUPS:
            continue
        name = gen_emitters.render(group, events)[0]
        abi = json.loads((artifacts_dir() / f"{name}.json").read_text())["abi"]
        got = sorted(event_topic(e) for e in abi if e["type"] == "event")
        want = []
        for decl in events:
            ev = gen_emitters.parse_event(decl)
            sig = f"{ev.name}({','.join(p.type for p in ev.params)})"
            want.append("0x" + keccak(sig.encode()).hex())
        assert got == sorted(want), name
        fns = {e["name"] for e in abi if e["type"] == "function"}
        assert len(fns) == len(events), name


@needs_anvil
def test_send_many_rate_layout_snapshot_and_reorg(chain: DevChain) -> None:
    agg, _ = _deploy_feed(chain)
    n = 600
    t0 = time.perf_counter()
    hashes = chain.send_many([(agg, "transmit", ([1_000 + i],)) for i in range(n)])
    rate = n / (time.perf_counter() - t0)
    assert len(hashes) == n and chain.call(agg, "latestRound") == (n,)
    assert rate >= 250, f"send_many: {rate:.0f} tx/s"

    b0 = chain.block_number()
    chain.send_many([(agg, "transmit", ([7],)) for _ in range(25)], per_block=10)
    assert chain.block_number() == b0 + 3
    assert [len(chain.block(b0 + k)["transactions"]) for k in (1, 2, 3)] == [10, 10, 5]

    snap = chain.snapshot()
    chain.send(agg, "transmit", [42])
    assert chain.call(agg, "latestAnswer") == (42,)
    chain.revert(snap)
    assert chain.call(agg, "latestAnswer") == (7,)

    chain.send(agg, "transmit", [8])
    chain.mine(2)
    head = chain.block_number()
    old = chain.block(head - 2)
    assert len(chain.get_logs(agg.address, block_hash=old["hash"])) == 3
    chain.reorg(3, [(chain.tx_request(agg, "transmit", [9]), 1)])
    assert chain.block_number() == head
    assert chain.block(head - 2)["hash"] != old["hash"]
    assert chain.call(agg, "latestAnswer") == (9,)
    assert [lg["blockNumber"] for lg in chain.get_logs(agg.address, from_block=head - 2)] == [
        hex(head - 1)] * 3


def test_compiled_artifacts_are_fresh() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not installed")
    r = subprocess.run([node, "scripts/compile_contracts.mjs", "--check"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_generated_emitters_are_fresh() -> None:
    r = subprocess.run([sys.executable, "scripts/gen_emitters.py", "--check"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
