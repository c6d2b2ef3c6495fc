"""The column-at-a-time decoder of dynamic events (``ingest.bulk_decode``) against the per-log
reference (``EventSpec.decode_fast``): on any table of logs it either gives up (``None``; the
caller then decodes per log) or returns exactly the per-log values, in the same row order."""

from __future__ import annotations

import duckdb
import pyarrow as pa
from eth_abi import encode as abi_encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import bulk_decode, catalog
from ingest.abi import EventSpec
from ingest.datasets import base
from ingest.errors import DecodeError

from .test_abi import STATIC_SPECS, _decode_bulk, _encode_log, _malformations

OCR1 = EventSpec.parse(next(d for d in catalog.CHAINLINK_AGGREGATOR
                            if d.startswith("NewTransmission") and "juels" not in d))
OCR2 = EventSpec.parse(next(d for d in catalog.CHAINLINK_AGGREGATOR
                            if d.startswith("NewTransmission") and "juels" in d))

i192 = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**191), 2**191 - 1))


@st.composite
def ocr_values(draw, spec: EventSpec) -> dict[str, object]:
    n = draw(st.sampled_from([0, 1, 3, 31]))
    obs = draw(st.lists(i192, min_size=n, max_size=n))
    v: dict[str, object] = {
        "aggregatorRoundId": draw(st.integers(0, 2**32 - 1)), "answer": draw(i192),
        "transmitter": "0x" + draw(st.binary(min_size=20, max_size=20)).hex(),
        "observations": obs, "observers": draw(st.binary(min_size=0, max_size=40)),
        "rawReportContext": draw(st.binary(min_size=32, max_size=32)),
        "observationsTimestamp": draw(st.integers(0, 2**32 - 1)),
        "juelsPerFeeCoin": draw(i192), "configDigest": draw(st.binary(min_size=32, max_size=32)),
        "epochAndRound": draw(st.integers(0, 2**40 - 1)),
    }
    return {p.name: v[p.name] for p in spec.params}


def _log(spec: EventSpec, values: dict[str, object]) -> tuple[list[str], str]:
    topics = [spec.topic0] + ["0x" + abi_encode([p.type], [values[p.name]]).hex()
                              for p in spec.indexed]
    data = abi_encode([p.type for p in spec.data_params], [values[p.name] for p in spec.data_params])
    return topics, "0x" + data.hex()


def _values(parts: tuple[pa.Array, ...]) -> list[object]:
    """Python values of a decoded column (one array, or the halves of 128-bit integers)."""
    if len(parts) == 1:
        return parts[0].to_pylist()
    return [h * 2**64 + lo for h, lo in zip(parts[0].to_pylist(), parts[1].to_pylist(), strict=True)]


def _check(spec: EventSpec, logs: list[tuple[list[str], str]]) -> bool:
    """Bulk result equals the per-log one (or the bulk decoder gave up). True if bulk decoded."""
    con = duckdb.connect()
    con.register("src", pa.table({
        "block_number": pa.array([10 + i // 3 for i in range(len(logs))], pa.uint64()),
        "log_index": pa.array([i % 3 for i in range(len(logs))], pa.uint32()),
        "topics": pa.array([t for t, _ in logs], pa.list_(pa.string())),
        "data": pa.array([d for _, d in logs], pa.string())}))
    tbl = bulk_decode.by_length(con.sql(
        f"SELECT block_number, log_index, {bulk_decode.input_sql(spec)} FROM src").to_arrow_table())
    got = bulk_decode.decode_columns(spec, tbl)
    try:
        ref = [spec.decode_fast(t, d) for t, d in logs]
    except DecodeError:
        assert got is None, "bulk accepted a row the per-log decoder rejects"
        return False
    if got is None:
        return False
    key = list(zip(tbl.column("block_number").to_pylist(), tbl.column("log_index").to_pylist(),
                   strict=True))
    cols = [_values(parts) for parts in got]
    rows = sorted((key[k], [c[k] for c in cols]) for k in range(len(key)))
    assert [r for _, r in rows] == ref
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([OCR1, OCR2]).flatmap(
    lambda s: st.tuples(st.just(s), st.lists(ocr_values(s), min_size=1, max_size=12))))
def test_bulk_equals_per_log_decode(case):
    spec, values = case
    _check(spec, [_log(spec, v) for v in values])


def test_small_values_take_the_bulk_path_in_any_row_order():
    # as on mainnet: one observer byte per observation, so rows of one length share a layout
    vals = [{"aggregatorRoundId": 5 + i, "answer": -i, "transmitter": "0x" + f"{i:02x}" * 20,
             "observations": list(range(-(i % 7), i % 5)), "observers": bytes(range(i % 7 + i % 5)),
             "rawReportContext": bytes([i]) * 32} for i in range(30)]
    logs = [_log(OCR1, v) for v in vals]
    assert _check(OCR1, logs[::-1])  # mixed data lengths, rows not in (block, log) order
    upper = [(t, "0x" + d[2:].upper()) for t, d in logs]  # upper-case hex decodes the same
    assert _check(OCR1, upper)
    # rows of one length but different layouts: bulk gives up (the per-log path decodes them)
    odd = [_log(OCR1, {**vals[3], "observations": [1, 2], "observers": b"\x01" * 33}),
           _log(OCR1, {**vals[3], "observations": [1, 2, 3], "observers": b"\x01"})]
    assert not _check(OCR1, odd)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 255), st.integers(0, 4))
def test_corrupted_row_never_decodes_differently(pos, byte, row):
    """One corrupted row among good ones: bulk gives up, or agrees with the per-log decoder
    (which must then accept every row)."""
    vals = [{"aggregatorRoundId": 7, "answer": 3, "transmitter": "0x" + "33" * 20,
             "observations": [1, -2, 3], "observers": b"\x00\x01\x02",
             "rawReportContext": b"\x01" * 32} for _ in range(5)]
    logs = [_log(OCR1, v) for v in vals]
    topics, data = logs[row]
    raw = bytearray.fromhex(data[2:])
    raw[pos % len(raw)] ^= byte
    logs[row] = (topics, "0x" + raw.hex())
    try:
        _check(OCR1, logs)
    except DecodeError as e:  # the per-log decoder rejects what bulk accepted: a bug
        raise AssertionError(f"bulk accepted a row the per-log decoder rejects: {e}") from e


def test_malformed_text_gives_up():
    good = _log(OCR1, {"aggregatorRoundId": 1, "answer": 1, "transmitter": "0x" + "11" * 20,
                       "observations": [1], "observers": b"\x01", "rawReportContext": b"\x02" * 32})
    t, d = good
    for bad in [(t, d[:-2] + "zz"), (t, d[2:] + "00"), (t[:1], d), (t, d[:-64]),
                ([t[0], t[1][:-2]], d), ([t[0], t[1][:-1] + "G"], d)]:
        assert not _check(OCR1, [good, bad])


def _wide(ty: str):
    if ty == "address":
        return st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
    if ty == "bool":
        return st.booleans()
    if ty.startswith("bytes"):
        return st.binary(min_size=int(ty[5:]), max_size=int(ty[5:]))
    bits = int(ty.lstrip("uint") or 256)
    edges = [bits - 1, 64, 63, 127, 128, 129] if bits > 64 else [bits - 1, 8]
    if ty.startswith("uint"):
        return st.one_of(st.integers(0, 2**bits - 1), st.integers(0, min(2**64, 2**bits - 1)),
                         st.sampled_from([2**min(e, bits) - 1 for e in edges]))
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return st.one_of(st.integers(lo, hi), st.integers(-(2**64), 2**64).filter(lambda v: lo <= v <= hi),
                     st.sampled_from([x for e in edges for x in (-(2 ** min(e, bits - 1)),
                                                                  2 ** min(e, bits - 1) - 1)]))


@st.composite
def wide_static_payloads(draw):
    spec = draw(st.sampled_from(STATIC_SPECS))
    rows = [{p.name: draw(_wide(p.type)) for p in spec.params}
            for _ in range(draw(st.integers(1, 6)))]
    return spec, rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wide_static_payloads())
def test_static_bulk_equals_per_log_decode_over_the_full_ranges(case):
    """Static events, any value of the declared types (values past 128 bits must make bulk
    give up: the per-log decoder raises ValueOutOfRange for them)."""
    spec, rows = case
    logs = [_encode_log(spec, v, 100 + i, i) for i, v in enumerate(rows)]
    _check(spec, [(lg["topics"], lg["data"]) for lg in logs])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wide_static_payloads())
def test_static_events_write_the_same_rows_with_and_without_the_bulk_decoder(case):
    """The warehouse path: bulk decode and the reference SQL decode give equal rows or the same
    typed error."""
    spec, rows = case
    logs = [_encode_log(spec, v, 100 + i, i) for i, v in enumerate(rows)]
    out = []
    for flag in (True, False):
        old, base.BULK_STATIC = base.BULK_STATIC, flag
        try:
            out.append(_decode_bulk(spec, logs))
        except DecodeError as e:
            out.append((type(e), e.field, e.block_number, e.log_index))
        finally:
            base.BULK_STATIC = old
    assert out[0] == out[1]


def test_malformed_static_logs_raise_the_same_typed_error_with_the_bulk_decoder():
    spec = EventSpec.parse(catalog.AAVE_V3_POOL[4])
    for what, log, field in _malformations():
        try:
            _decode_bulk(spec, [log])
        except DecodeError as e:
            assert e.field == field, what
            assert e.block_number == 9 and e.log_index == 1
        else:
            raise AssertionError(f"{what}: accepted")
