"""Decoding: real mainnet bytes, and hypothesis round-trips through the bulk DuckDB path.

Real bytes: the Chainlink OCR logs of mainnet blocks 17173049-50 recorded by ethereum-etl
(``../shared/data/real/ethereum-etl-fixtures``), whose expected values are written there.
"""

from __future__ import annotations

import json

import duckdb
import orjson
import pytest
from eth_abi import encode as abi_encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import catalog
from ingest.abi import EventSpec, snake_case
from ingest.datasets.base import (
    EventTable,
    LogsBatch,
    MalformedLogsJson,
    logs_to_arrow,
    stage_arrow,
    stage_json,
    write_logs,
    write_stage,
)
from ingest.errors import DecodeError, ValueOutOfRange
from ingest.schema import LINEAGE_LOG_COLUMNS, Column, Table

from ..realdata import REAL_DATA

REAL = REAL_DATA / "ethereum-etl-fixtures"
ANSWER_UPDATED = EventSpec.parse(catalog.CHAINLINK_AGGREGATOR[0])
NEW_TRANSMISSION = EventSpec.parse(catalog.CHAINLINK_AGGREGATOR[2])
NEW_ROUND = EventSpec.parse(catalog.CHAINLINK_AGGREGATOR[1])


def _con_with(spec: EventSpec, name: str = "ev") -> tuple[duckdb.DuckDBPyConnection, EventTable]:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    cols = LINEAGE_LOG_COLUMNS + (Column("role", "VARCHAR", ""), Column("source", "VARCHAR", "")
                                  ) + spec.columns() + (Column("run_id", "VARCHAR", ""),)
    t = Table("raw", name, "", cols, "test")
    con.execute(t.ddl())
    from ingest.datasets.base import LOGS
    from ingest.datasets.blocks import BLOCKS
    con.execute(LOGS.ddl())
    con.execute(BLOCKS.ddl())
    return con, EventTable(spec, t, ("r",))


def _add_blocks(con: duckdb.DuckDBPyConnection, logs: list[dict]) -> None:
    for bn, bh in sorted({(int(lg["blockNumber"], 16), lg["blockHash"].lower()) for lg in logs}):
        con.execute("INSERT INTO raw.blocks VALUES (1, ?, ?, ?, 0, NULL, 0, 0, ?, 0, 'finalized', 0, 'r')",
                    [bn, bh, "0x" + "00" * 32, "0x" + "00" * 20])


def _decode_bulk_via(spec: EventSpec, logs: list[dict], path: str) -> list[dict]:
    con, et = _con_with(spec)
    _add_blocks(con, logs)
    lo = min(int(lg["blockNumber"], 16) for lg in logs)
    hi = max(int(lg["blockNumber"], 16) for lg in logs)
    if path == "arrow":
        write_logs(con, logs_to_arrow(logs, "r"), chain_id=1, dataset="t", source="s", run_id="r",
                   a=lo, b=hi, event_tables=[et])
    else:  # the engine's fast path: the eth_getLogs result array as JSON bytes, read by DuckDB
        stage_json(con, [LogsBatch("s", "r", lo, hi, body=orjson.dumps(logs))])
        write_stage(con, chain_id=1, dataset="t", run_id="r", event_tables=[et])
    cols = [c.name for c in spec.columns()]
    rows = con.execute(f"SELECT {', '.join(cols)} FROM raw.ev ORDER BY block_number, log_index"
                       ).fetchall()
    return [dict(zip(cols, r, strict=True)) for r in rows]


def _decode_bulk(spec: EventSpec, logs: list[dict]) -> list[dict]:
    """Decode through both bulk paths (Arrow from dicts, DuckDB's JSON reader from bytes); they
    must agree exactly, on values and on the typed error (class, field, location)."""
    out: dict[str, object] = {}
    for path in ("arrow", "json"):
        try:
            out[path] = _decode_bulk_via(spec, logs, path)
        except DecodeError as e:
            out[path] = e
    a, j = out["arrow"], out["json"]
    if isinstance(a, DecodeError):
        assert type(j) is type(a), (a, j)
        assert isinstance(j, DecodeError)
        assert (j.field, j.block_number, j.log_index) == (a.field, a.block_number, a.log_index)
        raise a
    assert j == a
    return a  # type: ignore[return-value]


def _real_chainlink_logs() -> list[dict]:
    subset = REAL / "blocks_17173049_17173050" / "chainlink_logs_subset.json"
    text = subset.read_text()
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        items = [json.loads(x) for x in text.splitlines() if x.strip()]
    return items


def _as_rpc(item: dict) -> dict:
    return {"blockNumber": hex(item["block_number"]), "blockHash": item["block_hash"],
            "transactionHash": item["transaction_hash"],
            "transactionIndex": hex(item["transaction_index"]), "logIndex": hex(item["log_index"]),
            "address": item["address"], "topics": item["topics"], "data": item["data"],
            "removed": False}


@pytest.mark.skipif(not REAL.exists(), reason="shared real data not present")
def test_real_mainnet_answer_updated_matches_recorded_decode():
    items = _real_chainlink_logs()
    au = [i for i in items if i["topics"][0] == ANSWER_UPDATED.topic0]
    assert len(au) == 2
    rows = _decode_bulk(ANSWER_UPDATED, [_as_rpc(i) for i in au])
    expected = sorted(((i["block_number"], i["log_index"]), i) for i in au)
    for row, (_, item) in zip(rows, expected, strict=True):
        # the expected values recorded beside the fixture by whoever cut it
        assert row["current"] == int(item["decoded"]["current"])
        assert row["round_id"] == int(item["decoded"]["roundId"])
        assert row["updated_at"] == int(item["decoded"]["updatedAt"])
    by_agg = {r["round_id"]: r for r in rows}
    assert by_agg[7064]["current"] == 3749920000000000
    assert by_agg[4337]["current"] == 19974433


@pytest.mark.skipif(not REAL.exists(), reason="shared real data not present")
def test_real_mainnet_new_transmission_decodes_and_agrees_with_answer_updated():
    items = _real_chainlink_logs()
    nt = [_as_rpc(i) for i in items if i["topics"][0] == NEW_TRANSMISSION.topic0]
    au = [_as_rpc(i) for i in items if i["topics"][0] == ANSWER_UPDATED.topic0]
    nr = [_as_rpc(i) for i in items if i["topics"][0] == NEW_ROUND.topic0]
    assert len(nt) == 2 and len(nr) == 2
    tx = _decode_bulk(NEW_TRANSMISSION, nt)
    answers = {r["round_id"]: r["current"] for r in _decode_bulk(ANSWER_UPDATED, au)}
    for r in tx:
        # OCR emits NewTransmission(roundId, median) then AnswerUpdated(median, roundId)
        assert answers[r["aggregator_round_id"]] == r["answer"]
        obs = r["observations"]
        assert obs == sorted(obs) and obs[len(obs) // 2] == r["answer"]
        assert len(bytes.fromhex(r["observers"][2:])) == len(obs)
    rounds = _decode_bulk(NEW_ROUND, nr)
    assert {r["round_id"] for r in rounds} == set(answers)
    assert all(r["started_by"] == "0x" + "00" * 20 for r in rounds)


def test_snake_case():
    assert snake_case("liquidatedCollateralAmount") == "liquidated_collateral_amount"
    assert snake_case("aToken") == "a_token"
    assert snake_case("roundId") == "round_id"


def test_topic0_of_known_events():
    spec = EventSpec.parse(catalog.AAVE_V3_POOL[4])
    assert spec.name == "LiquidationCall"
    assert spec.topic0 == "0xe413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286"
    assert ANSWER_UPDATED.topic0.startswith("0x0559884f")


# ------------------------------------------------------------------ property tests
_LIQ = EventSpec.parse(catalog.AAVE_V3_POOL[4])
_RDU = EventSpec.parse(catalog.AAVE_V3_POOL[5])
_BORROW = EventSpec.parse(catalog.AAVE_V3_POOL[2])
_INT_EVENT = EventSpec.parse(
    "Mixed(int256 indexed a, int64 b, uint8 c, bytes32 d, bytes4 e, int192 f, uint40 g)")
STATIC_SPECS = [_LIQ, _RDU, _BORROW, ANSWER_UPDATED, _INT_EVENT]

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


def _value(ty: str):
    if ty == "address":
        return addresses
    if ty == "bool":
        return st.booleans()
    if ty.startswith("bytes"):
        n = int(ty[5:])
        return st.binary(min_size=n, max_size=n)
    bits = int(ty.lstrip("uint") or 256)
    bits = min(bits, 128)  # the declared column holds 128 bits; wider values are tested below
    if ty.startswith("uint"):
        return st.integers(0, 2**bits - 1)
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _encode_log(spec: EventSpec, values: dict[str, object], block: int, index: int) -> dict:
    topics = [spec.topic0]
    for p in spec.indexed:
        topics.append("0x" + abi_encode([p.type], [values[p.name]]).hex())
    data = abi_encode([p.type for p in spec.data_params], [values[p.name] for p in spec.data_params])
    return {"blockNumber": hex(block), "blockHash": "0x" + f"{block:064x}",
            "transactionHash": "0x" + "ab" * 32, "transactionIndex": "0x0",
            "logIndex": hex(index), "address": "0x" + "11" * 20, "topics": topics,
            "data": "0x" + data.hex(), "removed": False}


def _expected(spec: EventSpec, values: dict[str, object]) -> dict[str, object]:
    out = {}
    for p in spec.params:
        v = values[p.name]
        if isinstance(v, bytes):
            v = "0x" + v.hex()
        elif isinstance(v, str):
            v = v.lower()
        out[spec.column_name(p)] = v
    return out


@st.composite
def static_payloads(draw):
    spec = draw(st.sampled_from(STATIC_SPECS))
    n = draw(st.integers(1, 4))
    rows = [{p.name: draw(_value(p.type)) for p in spec.params} for _ in range(n)]
    return spec, rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(static_payloads())
def test_any_abi_valid_static_payload_roundtrips_exactly(case):
    spec, rows = case
    logs = [_encode_log(spec, v, 100 + i, i) for i, v in enumerate(rows)]
    decoded = _decode_bulk(spec, logs)
    assert decoded == [_expected(spec, v) for v in rows]
    # and the per-log (eth_abi) path agrees with the bulk SQL path
    for lg, v in zip(logs, rows, strict=True):
        assert spec.decode_log(lg["topics"], lg["data"]) == _expected(spec, v)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-(2**127), 2**127 - 1), min_size=0, max_size=31).map(sorted),
       st.integers(0, 2**32 - 1), addresses, st.binary(min_size=32, max_size=32))
def test_any_new_transmission_roundtrips_exactly(obs, rnd, transmitter, ctx):
    median = obs[len(obs) // 2] if obs else 0
    values = {"aggregatorRoundId": rnd, "answer": median, "transmitter": transmitter,
              "observations": obs, "observers": bytes(range(len(obs))), "rawReportContext": ctx}
    decoded = _decode_bulk(NEW_TRANSMISSION, [_encode_log(NEW_TRANSMISSION, values, 5, 0)])
    exp = _expected(NEW_TRANSMISSION, values)
    assert decoded == [exp]


@settings(max_examples=40, deadline=None)
@given(st.integers(2**128, 2**256 - 1))
def test_uint256_beyond_128_bits_raises_value_out_of_range(v):
    values = {"reserve": "0x" + "22" * 20, "liquidityRate": v, "stableBorrowRate": 0,
              "variableBorrowRate": 0, "liquidityIndex": 0, "variableBorrowIndex": 0}
    log = _encode_log(_RDU, values, 7, 3)
    with pytest.raises(ValueOutOfRange) as ei:
        _decode_bulk(_RDU, [log])
    assert "block 7" in str(ei.value) and "log index 3" in str(ei.value)
    assert ei.value.field == "liquidity_rate"
    with pytest.raises(ValueOutOfRange):
        _RDU.decode_log(log["topics"], log["data"])


def _malformations():
    good = _encode_log(_LIQ, {"collateralAsset": "0x" + "01" * 20, "debtAsset": "0x" + "02" * 20,
                              "user": "0x" + "03" * 20, "debtToCover": 5,
                              "liquidatedCollateralAmount": 6, "liquidator": "0x" + "04" * 20,
                              "receiveAToken": True}, 9, 1)
    d = good["data"][2:]
    yield "short data", {**good, "data": "0x" + d[:-2]}, "data"
    yield "extra data", {**good, "data": "0x" + d + "00" * 32}, "data"
    yield "missing topic", {**good, "topics": good["topics"][:3]}, "topics"
    yield "dirty address padding", {**good, "data": "0x" + d[:128] + "ff" + d[130:]}, "liquidator"
    yield "bool not 0/1", {**good, "data": "0x" + d[:-2] + "02"}, "receive_a_token"
    yield "non-hex data", {**good, "data": "0x" + "zz" + d[2:]}, "data"
    yield "dirty topic address", {**good, "topics": [good["topics"][0], "0x" + "ff" * 32]
                                  + good["topics"][2:]}, "collateral_asset"


@pytest.mark.parametrize("what,log,field", list(_malformations()),
                         ids=[m[0] for m in _malformations()])
def test_malformed_payload_raises_typed_error_naming_field_and_location(what, log, field):
    with pytest.raises(DecodeError) as ei:
        _decode_bulk(_LIQ, [log])
    assert ei.value.field == field, what
    assert ei.value.block_number == 9 and ei.value.log_index == 1
    with pytest.raises(DecodeError):
        _LIQ.decode_log(log["topics"], log["data"])


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=300))
def test_random_bytes_either_decode_exactly_or_raise_typed_error(blob):
    log = {"blockNumber": "0x1", "blockHash": "0x" + "00" * 31 + "01", "transactionHash": "0x" + "ab" * 32,
           "transactionIndex": "0x0", "logIndex": "0x0", "address": "0x" + "11" * 20,
           "topics": [_RDU.topic0, "0x" + "00" * 12 + "22" * 20], "data": "0x" + blob.hex()}
    try:
        rows = _decode_bulk(_RDU, [log])
    except DecodeError:
        with pytest.raises(DecodeError):
            _RDU.decode_log(log["topics"], log["data"])
        return
    assert rows == [_RDU.decode_log(log["topics"], log["data"])]


def test_signed_and_small_types_decode_exactly_at_bounds():
    values = {"a": -(2**127), "b": -(2**63), "c": 255, "d": b"\xff" * 32, "e": b"\x01\x02\x03\x04",
              "f": -(2**127), "g": 2**40 - 1}
    assert _decode_bulk(_INT_EVENT, [_encode_log(_INT_EVENT, values, 1, 0)]) == [
        _expected(_INT_EVENT, values)]
    values["a"] = -(2**127) - 1  # does not fit HUGEINT
    with pytest.raises(ValueOutOfRange):
        _decode_bulk(_INT_EVENT, [_encode_log(_INT_EVENT, values, 1, 0)])


def test_log_with_wrong_block_hash_is_rejected():
    from ingest.errors import InconsistentLogError
    values = {"current": 5, "roundId": 1, "updatedAt": 2}
    log = _encode_log(ANSWER_UPDATED, values, 3, 0)
    con, et = _con_with(ANSWER_UPDATED)
    _add_blocks(con, [{**log, "blockHash": "0x" + "99" * 32}])
    with pytest.raises(InconsistentLogError):
        write_logs(con, logs_to_arrow([log], "r"), chain_id=1, dataset="t", source="s",
                   run_id="r", a=3, b=3, event_tables=[et])


def test_event_columns_type_policy():
    cols = {c.name: c.type for c in _LIQ.columns()}
    assert cols["debt_to_cover"] == "UHUGEINT" and cols["liquidator"] == "VARCHAR"
    assert cols["receive_a_token"] == "BOOLEAN"
    cols = {c.name: c.type for c in NEW_TRANSMISSION.columns()}
    assert cols["observations"] == "HUGEINT[]" and cols["aggregator_round_id"] == "UINTEGER"


def _new_transmission_log(obs: list[int]) -> dict:
    values = {"aggregatorRoundId": 7, "answer": obs[len(obs) // 2] if obs else 0,
              "transmitter": "0x" + "33" * 20, "observations": obs,
              "observers": bytes(range(len(obs))), "rawReportContext": b"\x01" * 32}
    return _encode_log(NEW_TRANSMISSION, values, 4, 2)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(-(10**20), 10**20), min_size=1, max_size=8).map(sorted),
       st.integers(0, 10_000), st.integers(1, 255))
def test_mutated_dynamic_payload_is_rejected_or_decodes_like_eth_abi(obs, pos, byte):
    """Fast strict decoder vs eth_abi on corrupted NewTransmission data: never a different
    value (it may reject a non-canonical layout eth_abi would accept, never the reverse)."""
    log = _new_transmission_log(obs)
    raw = bytearray.fromhex(log["data"][2:])
    i = pos % len(raw)
    raw[i] ^= byte
    bad = {**log, "data": "0x" + raw.hex()}
    try:
        got = _decode_bulk(NEW_TRANSMISSION, [bad])
    except DecodeError:
        return  # rejected loudly (only the canonical layout is accepted)
    assert got == [NEW_TRANSMISSION.decode_log(bad["topics"], bad["data"])]


@pytest.mark.parametrize("what,mutate,field", [
    ("offset points elsewhere", lambda d: d[:128 + 62] + "e0" + d[128 + 64:], "observations"),
    ("length word too large", lambda d: d[:320 + 62] + "ff" + d[320 + 64:], "observations"),
    ("truncated tail", lambda d: d[:-64], "observers"),
    ("dirty bytes padding", lambda d: d[:-2] + "01", "observers"),
    ("element not sign-extended", lambda d: d[:384] + "7f" + d[386:], "observations"),
])
def test_malformed_dynamic_payload_raises_typed_error(what, mutate, field):
    log = _new_transmission_log([1, 2, 3])
    bad = {**log, "data": "0x" + mutate(log["data"][2:])}
    with pytest.raises(DecodeError) as ei:
        _decode_bulk(NEW_TRANSMISSION, [bad])
    assert ei.value.field == field, what
    assert ei.value.block_number == 4 and ei.value.log_index == 2


@pytest.mark.parametrize("what,edit,field", [
    ("space in data", lambda g: {**g, "data": g["data"][:10] + " " + g["data"][10:]}, "data"),
    ("newline in data", lambda g: {**g, "data": g["data"] + "\n"}, "data"),
    ("space in an indexed topic", lambda g: {**g, "topics": [
        g["topics"][0], g["topics"][1][:4] + " " + g["topics"][1][4:]]}, "aggregator_round_id"),
])
def test_hex_with_whitespace_is_rejected_on_every_path(what, edit, field):
    """``bytes.fromhex`` skips whitespace: a dynamic event's data or topic with a space in it
    decoded as if it were clean (the static events' SQL path rejects it) (fails before)."""
    bad = edit(_new_transmission_log([1, 2, 3]))
    with pytest.raises(DecodeError) as ei:
        _decode_bulk(NEW_TRANSMISSION, [bad])
    assert ei.value.block_number == 4 and ei.value.log_index == 2, what
    for decode in (NEW_TRANSMISSION.decode_fast, NEW_TRANSMISSION.decode_log):
        with pytest.raises(DecodeError) as ei:
            decode(bad["topics"], bad["data"], block_number=4, log_index=2)
        assert ei.value.field in (field, "data"), (what, decode.__name__)


def test_null_indexed_topic_of_a_dynamic_event_is_a_typed_error():
    """A null topic reached decode_fast, which failed with AttributeError (fails before)."""
    log = _new_transmission_log([1, 2, 3])
    bad = {**log, "topics": [log["topics"][0], None]}
    with pytest.raises(DecodeError) as ei:
        _decode_bulk(NEW_TRANSMISSION, [bad])
    assert (ei.value.block_number, ei.value.log_index) == (4, 2)
    for decode in (NEW_TRANSMISSION.decode_fast, NEW_TRANSMISSION.decode_log):
        with pytest.raises(DecodeError):
            decode(bad["topics"], bad["data"], block_number=4, log_index=2)


def test_upper_case_hex_from_a_node_is_kept_raw_and_decoded_the_same():
    values = {"current": -5, "roundId": 9, "updatedAt": 77}
    log = _encode_log(ANSWER_UPDATED, values, 3, 0)
    upper = {**log, "topics": ["0x" + t[2:].upper() for t in log["topics"]],
             "data": "0x" + log["data"][2:].upper()}
    assert _decode_bulk(ANSWER_UPDATED, [upper]) == [_expected(ANSWER_UPDATED, values)]
    con, et = _con_with(ANSWER_UPDATED)
    _add_blocks(con, [upper])
    write_logs(con, logs_to_arrow([upper], "r"), chain_id=1, dataset="t", source="s", run_id="r",
               a=3, b=3, event_tables=[et])
    assert con.execute("SELECT topics, data FROM raw.logs").fetchall() == [
        (upper["topics"], upper["data"])]  # raw.logs keeps the bytes exactly as received


@pytest.mark.parametrize("what,edit,field", [
    ("block number not hex", lambda g: {**g, "blockNumber": "12"}, "blockNumber"),
    ("block number a JSON number", lambda g: {**g, "blockNumber": 3}, "blockNumber"),
    ("block hash too short", lambda g: {**g, "blockHash": g["blockHash"][:-2]}, "blockHash"),
    ("tx hash missing", lambda g: {k: v for k, v in g.items() if k != "transactionHash"},
     "transactionHash"),
    ("log index too wide", lambda g: {**g, "logIndex": "0x1" + "0" * 8}, "logIndex"),
    ("address with junk", lambda g: {**g, "address": g["address"][:-1] + "z"}, "address"),
    ("no topics", lambda g: {**g, "topics": []}, "topics"),
    # a null or non-hex topic0 was staged and stored in raw.logs, then matched no event table:
    # the log was silently left undecoded (fails before)
    ("topic0 null", lambda g: {**g, "topics": [None] + g["topics"][1:]}, "topics"),
    ("topic0 not hex", lambda g: {**g, "topics": ["0x" + "zz" * 32] + g["topics"][1:]},
     "topics"),
    ("data missing", lambda g: {k: v for k, v in g.items() if k != "data"}, "data"),
    ("removed by a reorg", lambda g: {**g, "removed": True}, "removed"),
])
def test_malformed_log_entry_raises_typed_error_on_both_paths(what, edit, field):
    log = edit(_encode_log(ANSWER_UPDATED, {"current": 5, "roundId": 1, "updatedAt": 2}, 3, 0))
    for path in ("arrow", "json"):
        if path == "arrow" and what == "block number a JSON number":
            continue  # a dict path never sees it: the client's range check rejects it first
        con, et = _con_with(ANSWER_UPDATED)
        _add_blocks(con, [_encode_log(ANSWER_UPDATED, {"current": 5, "roundId": 1,
                                                       "updatedAt": 2}, 3, 0)])
        with pytest.raises(DecodeError) as ei:
            if path == "arrow":
                write_logs(con, logs_to_arrow([log], "r"), chain_id=1, dataset="t", source="s",
                           run_id="r", a=3, b=3, event_tables=[et])
            else:
                stage_json(con, [LogsBatch("s", "r", 3, 3, body=orjson.dumps([log]))])
                write_stage(con, chain_id=1, dataset="t", run_id="r", event_tables=[et])
        assert ei.value.field == field, (what, path)
        assert "malformed eth_getLogs entry (source s)" in str(ei.value), (what, path)
        assert con.execute("SELECT count(*) FROM raw.logs").fetchall() == [(0,)]


def test_log_outside_its_requested_span_is_rejected_on_both_paths():
    log = _encode_log(ANSWER_UPDATED, {"current": 5, "roundId": 1, "updatedAt": 2}, 7, 1)
    for path in ("arrow", "json"):
        con, et = _con_with(ANSWER_UPDATED)
        _add_blocks(con, [log])
        with pytest.raises(DecodeError, match="outside the range") as ei:
            if path == "arrow":
                write_logs(con, logs_to_arrow([log], "r"), chain_id=1, dataset="t", source="s",
                           run_id="r", a=3, b=6, event_tables=[et])
            else:
                stage_json(con, [LogsBatch("s", "r", 3, 6, body=orjson.dumps([log]))])
        assert (ei.value.block_number, ei.value.log_index, ei.value.field) == (7, 1, "blockNumber")


@pytest.mark.parametrize("what,edit,field", [
    ("another contract", lambda g: {**g, "address": "0x" + "22" * 20}, "address"),
    ("another event", lambda g: {**g, "topics": [NEW_ROUND.topic0] + g["topics"][1:]}, "topics"),
])
def test_log_the_request_did_not_ask_for_is_rejected_on_both_paths(what, edit, field):
    """eth_getLogs was asked for one contract's AnswerUpdated; a log of another contract with
    the same topic0 was decoded into the role's table as if the role's contract emitted it, and
    a log of another event was stored in raw.logs and left undecoded (fails before)."""
    good = _encode_log(ANSWER_UPDATED, {"current": 5, "roundId": 1, "updatedAt": 2}, 3, 0)
    log = edit(good)
    ask = dict(addresses=(good["address"].upper().replace("0X", "0x"),),
               topic0s=(ANSWER_UPDATED.topic0,))
    for path in ("arrow", "json"):
        con, et = _con_with(ANSWER_UPDATED)
        _add_blocks(con, [log])
        batch = (LogsBatch("s", "r", 3, 3, logs=[log], **ask) if path == "arrow" else
                 LogsBatch("s", "r", 3, 3, body=orjson.dumps([log]), **ask))
        with pytest.raises(DecodeError, match="not asked for") as ei:
            (stage_arrow if path == "arrow" else stage_json)(con, [batch])
        assert (ei.value.block_number, ei.value.log_index, ei.value.field) == (3, 0, field), what
        # the asked-for log itself goes through
        con, et = _con_with(ANSWER_UPDATED)
        _add_blocks(con, [good])
        (stage_arrow if path == "arrow" else stage_json)(con, [
            LogsBatch("s", "r", 3, 3, logs=[good], **ask) if path == "arrow" else
            LogsBatch("s", "r", 3, 3, body=orjson.dumps([good]), **ask)])
        assert write_stage(con, chain_id=1, dataset="t", run_id="r", event_tables=[et]) == 1


@pytest.mark.parametrize("body", [
    b'[{"blockNumber": "0x3"}',  # not valid JSON (cut)
    b'["0x3"]',  # not an object
    b'[{"topics": "0xaa"}]',  # topics not a list
])
def test_json_the_reader_cannot_read_is_malformed_logs_json(body):
    con, _ = _con_with(ANSWER_UPDATED)
    with pytest.raises(MalformedLogsJson):
        stage_json(con, [LogsBatch("s", "r", 3, 3, body=body)])


def test_one_signature_declared_with_two_indexed_layouts_is_refused():
    """Two declarations of one event (same topic0) that index different parameters share one
    table: the second was dropped silently and its emitters' logs decoded with the first's
    layout (here x and y swapped, both valid uint256) (fails before)."""
    from ingest.datasets.base import EventGroup, build_event_tables
    from ingest.schema import registered_tables

    before = {t.fqn for t in registered_tables()}
    groups = [EventGroup(("a",), ("Swapped(uint256 indexed x, uint256 y)",), "audit_t"),
              EventGroup(("b",), ("Swapped(uint256 x, uint256 indexed y)",), "audit_t")]
    with pytest.raises(ValueError, match="same signature"):
        build_event_tables("audit_t", groups)
    assert {t.fqn for t in registered_tables()} == before  # nothing registered


def test_one_signature_in_two_groups_with_different_tables_is_refused():
    """A signature declared in two groups of different table prefixes made two tables, each
    taking the logs of both groups' roles: every log decoded twice (fails before)."""
    from ingest.datasets.base import EventGroup, build_event_tables
    from ingest.schema import registered_tables

    before = {t.fqn for t in registered_tables()}
    groups = [EventGroup(("a",), ("Twice(uint256 x)",), "audit_p"),
              EventGroup(("b",), ("Twice(uint256 x)",), "audit_q")]
    with pytest.raises(ValueError, match="two tables"):
        build_event_tables("audit_t", groups)
    assert {t.fqn for t in registered_tables()} == before
