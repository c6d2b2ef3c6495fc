"""The per-log reference decoder (``EventSpec.decode_log``, eth_abi strict) refuses what the write
path refuses: a non-canonical encoding of a dynamic event (trailing bytes, a tail out of place)
and names the parameter whose word is bad, as the write path does.

The payloads start from a real mainnet OCR1 ``NewTransmission`` (ethereum-etl fixture, block
17173049/50) and from eth_abi's own (canonical) encoding; the non-canonical variants are built
here by hand from the ABI layout, so eth_abi's decoder still reads them (it is lenient there).
"""

from __future__ import annotations

import orjson
import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from ingest import catalog
from ingest.abi import EventSpec
from ingest.datasets.base import LogsBatch, stage_json, write_stage
from ingest.errors import DecodeError

from ..realdata import REAL_DATA
from .test_abi import _add_blocks, _as_rpc, _con_with, _real_chainlink_logs

NT = EventSpec.parse(catalog.CHAINLINK_AGGREGATOR[2])  # OCR1 NewTransmission
LIQ = EventSpec.parse(catalog.AAVE_V3_POOL[4])  # LiquidationCall
SUBSET = REAL_DATA / "ethereum-etl-fixtures" / "blocks_17173049_17173050" / "chainlink_logs_subset.json"


def _real_new_transmission() -> dict:
    return _as_rpc(next(i for i in _real_chainlink_logs() if i["topics"][0] == NT.topic0))


def _word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def _non_canonical(raw: bytes) -> dict[str, tuple[bytes, str]]:
    """Variants of NewTransmission data (int192, address, int192[], bytes, bytes32) that eth_abi's
    decoder reads as the same values, and the field the write path names for each."""
    obs_off = int.from_bytes(raw[64:96], "big")
    obs_n = int.from_bytes(raw[obs_off:obs_off + 32], "big")
    bytes_off = int.from_bytes(raw[96:128], "big")
    assert (obs_off, bytes_off) == (160, 160 + 32 + 32 * obs_n)  # the canonical layout
    head, obs_tail, bytes_tail = raw[:160], raw[obs_off:bytes_off], raw[bytes_off:]
    gap = head[:64] + _word(obs_off + 32) + _word(bytes_off + 32) + head[128:] + bytes(32) \
        + obs_tail + bytes_tail
    swapped = head[:64] + _word(160 + len(bytes_tail)) + _word(160) + head[128:] + bytes_tail \
        + obs_tail
    return {"a trailing zero word": (raw + bytes(32), "data"),
            "a trailing byte": (raw + b"\x00", "data"),
            "a zero word before the first tail": (gap, "observations"),
            "the tails in reverse order": (swapped, "observations")}


@pytest.mark.skipif(not SUBSET.exists(), reason="shared real data not present")
@pytest.mark.parametrize("what", ["a trailing zero word", "a trailing byte",
                                  "a zero word before the first tail", "the tails in reverse order"])
def test_non_canonical_dynamic_event_is_refused_by_every_decoder(what):
    log = _real_new_transmission()
    raw = bytes.fromhex(log["data"][2:])
    types = [p.type for p in NT.data_params]
    assert abi_encode(types, abi_decode(types, raw)) == raw  # the real log is canonical
    data, field = _non_canonical(raw)[what]
    assert data != raw and abi_decode(types, data) == abi_decode(types, raw)  # eth_abi reads it
    bad = {**log, "data": "0x" + data.hex()}
    bn, li = int(log["blockNumber"], 16), int(log["logIndex"], 16)
    # the write path (column-at-a-time decoder, then the per-log one) refuses it ...
    con, et = _con_with(NT)
    _add_blocks(con, [bad])
    stage_json(con, [LogsBatch("s", "r", bn, bn, body=orjson.dumps([bad]))])
    with pytest.raises(DecodeError) as ei:
        write_stage(con, chain_id=1, dataset="t", run_id="r", event_tables=[et])
    assert (ei.value.field, ei.value.block_number, ei.value.log_index) == (field, bn, li)
    # ... and so do both per-log decoders (decode_log accepted all four: fails before)
    for decode in (NT.decode_fast, NT.decode_log):
        with pytest.raises(DecodeError) as ei:
            decode(bad["topics"], bad["data"], block_number=bn, log_index=li)
        assert (ei.value.field, ei.value.block_number, ei.value.log_index) == (field, bn, li), \
            decode.__name__


def _liquidation() -> tuple[list[str], bytes]:
    values = ["0x" + "01" * 20, "0x" + "02" * 20, "0x" + "03" * 20, 5, 6, "0x" + "04" * 20, True]
    ix = [p.indexed for p in LIQ.params]
    topics = [LIQ.topic0] + ["0x" + abi_encode([p.type], [v]).hex()
                             for p, v, i in zip(LIQ.params, values, ix, strict=True) if i]
    data = abi_encode([p.type for p in LIQ.data_params],
                      [v for v, i in zip(values, ix, strict=True) if not i])
    return topics, data


@pytest.mark.parametrize("what,word,dirty,field", [
    # data words of LiquidationCall: debtToCover, liquidatedCollateralAmount, liquidator,
    # receiveAToken; an address has 12 zero bytes above it, a bool is 0 or 1
    ("address padding", 2, lambda w: b"\x01" + w[1:], "liquidator"),
    ("bool of 2", 3, lambda w: w[:31] + b"\x02", "receive_a_token"),
    ("bool high bit", 3, lambda w: b"\x80" + w[1:], "receive_a_token"),
])
def test_decode_log_names_the_bad_parameter_of_a_static_event(what, word, dirty, field):
    """decode_log named every bad data word 'data' (eth_abi decodes the tuple at once); it now
    names the parameter, as the write path's error does (fails before)."""
    topics, data = _liquidation()
    w = data[32 * word: 32 * word + 32]
    bad = data[:32 * word] + dirty(w) + data[32 * word + 32:]
    with pytest.raises(DecodeError) as ei:
        LIQ.decode_log(topics, "0x" + bad.hex(), block_number=3, log_index=9)
    assert (ei.value.field, ei.value.block_number, ei.value.log_index) == (field, 3, 9), what
    with pytest.raises(DecodeError) as ei:
        LIQ.decode_log(topics, "0x" + data[:-1].hex(), block_number=3, log_index=9)
    assert ei.value.field == "data"  # a short payload is the data's fault, not a parameter's


# ------------------------------------------------------------------ column names
def test_a_parameter_named_like_another_ones_high_half_does_not_overwrite_it():
    """The column-at-a-time decoder passed a 128-bit value to DuckDB as Arrow columns
    d_<column>__hi / d_<column>__lo, so a parameter whose column is <column>__hi (a legal
    Solidity name) overwrote the high half: 2**100 + 5 was stored as 7 * 2**64 + 5, while the SQL
    decoder stored 2**100 + 5 (fails before). Expected values: what was encoded."""
    import ingest.datasets.base as base

    spec = EventSpec.parse("Paid(address indexed payer, uint256 amount, uint8 amount__hi)")
    logs = [{"blockNumber": hex(5), "blockHash": "0x" + "05" * 32, "transactionHash": "0x" + "ab" * 32,
             "transactionIndex": "0x0", "logIndex": hex(i), "address": "0x" + "11" * 20,
             "topics": [spec.topic0, "0x" + abi_encode(["address"], ["0x" + "22" * 20]).hex()],
             "data": "0x" + abi_encode(["uint256", "uint8"], [amount, 7]).hex(), "removed": False}
            for i, amount in enumerate([2**100 + 5, 2**128 - 1, 3])]
    for bulk in (True, False):
        con, et = _con_with(spec)
        _add_blocks(con, logs)
        stage_json(con, [LogsBatch("s", "r", 5, 5, body=orjson.dumps(logs))])
        old, base.BULK_STATIC = base.BULK_STATIC, bulk
        try:
            write_stage(con, chain_id=1, dataset="t", run_id="r", event_tables=[et])
        finally:
            base.BULK_STATIC = old
        rows = con.execute('SELECT amount, "amount__hi" FROM raw.ev ORDER BY log_index').fetchall()
        assert rows == [(2**100 + 5, 7), (2**128 - 1, 7), (3, 7)], f"bulk={bulk}"


@pytest.mark.parametrize("decl", [
    "Moved(address source, address argSource)",  # 'source' is a lineage column: arg_source
    "Named(string indexed label, bytes32 labelTopic)",  # an indexed string is label_topic
])
def test_a_declaration_whose_columns_collide_is_refused_when_parsed(decl):
    """Two parameters mapped to one column name were accepted by EventSpec.parse and only failed
    later, when DuckDB created the table (fails before)."""
    with pytest.raises(ValueError, match="same column"):
        EventSpec.parse(decl)
