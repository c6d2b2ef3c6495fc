# ruff: noqa: E501
"""Every ABI type an event can declare here, at every width, through every decoder.

Declarations are drawn at random: parameters of any elementary type (``uint8..uint256``,
``int8..int256``, ``address``, ``bool``, ``bytes1..bytes32``; indexed or not) and, in the data,
the dynamic types the catalog uses (``int192[]``, ``bytes``, ``string``). Values are drawn with
the bounds of each width over-weighted (two's complement minimum, 2**64, 2**127, 2**128 - 1...),
encoded with eth_abi's encoder (the oracle), then written through the warehouse path with the
column-at-a-time decoder and with the SQL / per-log reference (``BULK_STATIC``), and decoded by
``decode_fast`` and ``decode_log``. Expected rows are the drawn values themselves (addresses in
lower case, bytes as 0x-hex); a value that does not fit its 128-bit column must raise
``ValueOutOfRange`` naming that column. A payload with one byte changed must be refused by all
(a typed error naming block and log index) or read by all as eth_abi reads it.
"""

from __future__ import annotations

import orjson
import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ingest.datasets.base as base
from ingest.abi import EventSpec
from ingest.datasets.base import LogsBatch, stage_json, write_stage
from ingest.errors import DecodeError, ValueOutOfRange

from ..realdata import REAL_DATA
from .test_abi import _add_blocks, _con_with

WIDTHS = range(8, 257, 8)
STATIC = ([f"uint{n}" for n in WIDTHS] + [f"int{n}" for n in WIDTHS] + ["address", "bool"]
          + [f"bytes{n}" for n in range(1, 33)])
DYNAMIC = ["int192[]", "bytes", "string"]
U128, I128 = 2**128 - 1, (-(2**127), 2**127 - 1)


def _ints(ty: str) -> st.SearchStrategy[int]:
    bits = int(ty.lstrip("uint"))
    if ty.startswith("uint"):
        hi = 2**bits - 1
        edges = [0, 1, hi, 2**63, 2**64 - 1, 2**64, 2**127, U128, 2**128, 2**255]
        return st.one_of(st.sampled_from([e for e in edges if e <= hi]), st.integers(0, hi))
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    edges = [lo, lo + 1, -1, 0, 1, hi, -(2**63) - 1, -(2**63), 2**63, *I128, I128[0] - 1,
             I128[1] + 1]
    return st.one_of(st.sampled_from([e for e in edges if lo <= e <= hi]), st.integers(lo, hi))


def _values(ty: str) -> st.SearchStrategy[object]:
    if ty == "address":
        return st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex().upper())
    if ty == "bool":
        return st.booleans()
    if ty == "bytes":
        return st.binary(max_size=70)
    if ty == "string":
        return st.text(max_size=20)
    if ty == "int192[]":
        return st.lists(_ints("int192"), max_size=4)
    if ty.startswith("bytes"):
        return st.binary(min_size=int(ty[5:]), max_size=int(ty[5:]))
    return _ints(ty)


@st.composite
def events(draw):
    n = draw(st.integers(1, 5))
    params = []
    for _ in range(n):
        indexed = draw(st.booleans()) and sum(i for _, i in params) < 3
        ty = draw(st.sampled_from(STATIC + ([] if indexed else DYNAMIC)))
        params.append((ty, indexed))
    spec = EventSpec.parse("E(" + ", ".join(f"{t}{' indexed' if i else ''} p{k}"
                                             for k, (t, i) in enumerate(params)) + ")")
    rows = [[draw(_values(p.type)) for p in spec.params] for _ in range(draw(st.integers(1, 4)))]
    return spec, rows


def _log(spec: EventSpec, row: list[object], i: int) -> dict:
    vals = dict(zip([p.name for p in spec.params], row, strict=True))
    topics = [spec.topic0] + ["0x" + abi_encode([p.type], [vals[p.name]]).hex() for p in spec.indexed]
    data = abi_encode([p.type for p in spec.data_params], [vals[p.name] for p in spec.data_params])
    return {"blockNumber": hex(20 + i), "blockHash": "0x" + f"{20 + i:064x}",
            "transactionHash": "0x" + "cd" * 32, "transactionIndex": "0x0", "logIndex": hex(i),
            "address": "0x" + "11" * 20, "topics": topics, "data": "0x" + data.hex(),
            "removed": False}


def _expected(v: object) -> object:
    if isinstance(v, bytes):
        return "0x" + v.hex()
    if isinstance(v, str) and v.startswith("0x"):
        return v.lower()
    return v


def _too_wide(spec: EventSpec, row: list[object]) -> str | None:
    """The first column whose value does not fit 128 bits, if any: the decoders read the indexed
    parameters (topics) first, then the data."""
    vals = dict(zip(spec.params, row, strict=True))
    for p, v in [(p, vals[p]) for p in (*spec.indexed, *spec.data_params)]:
        ints = v if isinstance(v, list) else [v]
        for x in ints:
            if isinstance(x, int) and not isinstance(x, bool) and p.elem.startswith(("int", "uint")) \
                    and not (I128[0] <= x <= I128[1] if p.elem.startswith("int") else x <= U128):
                return spec.column_name(p)
    return None


def _written(spec: EventSpec, logs: list[dict], bulk: bool) -> object:
    """Rows the warehouse holds after writing ``logs`` (or the typed error)."""
    con, et = _con_with(spec)
    _add_blocks(con, logs)
    blocks = [int(lg["blockNumber"], 16) for lg in logs]
    stage_json(con, [LogsBatch("s", "r", min(blocks), max(blocks), body=orjson.dumps(logs))])
    old, base.BULK_STATIC = base.BULK_STATIC, bulk
    try:
        write_stage(con, chain_id=1, dataset="t", run_id="r", event_tables=[et])
    except DecodeError as e:
        return (ValueOutOfRange if isinstance(e, ValueOutOfRange) else DecodeError, e.field,
                e.block_number, e.log_index)
    finally:
        base.BULK_STATIC = old
    cols = ", ".join(f'"{c.name}"' for c in spec.columns())
    return [list(r) for r in con.execute(f"SELECT {cols} FROM raw.ev ORDER BY block_number, log_index").fetchall()]


def _per_log(spec: EventSpec, lg: dict, i: int) -> object:
    out = []
    for decode in (spec.decode_fast, spec.decode_log):
        try:
            got = decode(lg["topics"], lg["data"], block_number=20 + i, log_index=i)
            out.append(list(got.values()) if isinstance(got, dict) else list(got))
        except DecodeError as e:
            assert (e.block_number, e.log_index) == (20 + i, i), decode.__name__
            out.append((ValueOutOfRange if isinstance(e, ValueOutOfRange) else DecodeError,
                        e.field))
    assert out[0] == out[1], (lg, out)
    return out[0]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_any_abi_valid_payload_of_any_type_round_trips_exactly_on_every_path(case):
    spec, rows = case
    logs = [_log(spec, r, i) for i, r in enumerate(rows)]
    wide = [_too_wide(spec, r) for r in rows]
    for i, (lg, r, w) in enumerate(zip(logs, rows, wide, strict=True)):
        want = [_expected(v) for v in r] if w is None else (ValueOutOfRange, w)
        assert _per_log(spec, lg, i) == want
    # refused: the error names one of the rows that do not fit (the statement stops at the
    # first it meets), its column and place
    errors = [(ValueOutOfRange, w, 20 + i, i) for i, w in enumerate(wide) if w is not None]
    for bulk in (True, False):
        got = _written(spec, logs, bulk)
        if errors:
            assert got in errors, f"bulk={bulk}"
        else:
            assert got == [[_expected(v) for v in r] for r in rows], f"bulk={bulk}"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events(), st.integers(0, 10**6), st.integers(1, 255), st.integers(0, 3), st.booleans())
def test_a_payload_with_one_byte_changed_is_refused_or_read_as_eth_abi_reads_it(
        case, pos, xor, which, in_topic):
    spec, rows = case
    logs = [_log(spec, r, i) for i, r in enumerate(rows)]
    i = which % len(logs)
    lg = dict(logs[i])
    if in_topic and spec.indexed:
        k = 1 + pos % len(spec.indexed)
        t = bytearray.fromhex(lg["topics"][k][2:])
        t[pos % 32] ^= xor
        lg["topics"] = [*lg["topics"][:k], "0x" + t.hex(), *lg["topics"][k + 1:]]
    else:
        d = bytearray.fromhex(lg["data"][2:])
        if not d:
            return
        d[pos % len(d)] ^= xor
        lg["data"] = "0x" + d.hex()
    logs[i] = lg
    per_log = [_per_log(spec, x, j) for j, x in enumerate(logs)]
    bad = [(r[0], r[1], 20 + j, j) for j, r in enumerate(per_log) if isinstance(r, tuple)]
    for bulk in (True, False):
        got = _written(spec, logs, bulk)
        if not bad:
            assert got == per_log, f"bulk={bulk}"
        else:  # refused, naming a bad row and, as the per-log decoders do, its error and field
            assert got in bad, f"bulk={bulk}"
    if not isinstance(per_log[i], tuple):  # accepted: exactly what eth_abi reads
        vals = [abi_decode([p.type], bytes.fromhex(lg["topics"][1 + spec.indexed.index(p)][2:]))[0]
                if p.indexed else None for p in spec.params]
        data = abi_decode([p.type for p in spec.data_params], bytes.fromhex(lg["data"][2:]))
        it = iter(data)
        vals = [v if p.indexed else next(it) for p, v in zip(spec.params, vals, strict=True)]
        assert per_log[i] == [_expected(list(v) if isinstance(v, tuple) else v) for v in vals]


# ------------------------------------------------------------------ real mainnet logs
ETL_LOGS = REAL_DATA / "ethereum-etl-fixtures" / "blocks_17173049_17173050" / "expected_logs.json"
# common mainnet events in those two blocks: negative int256 and int24 (Uniswap v3), uint112,
# uint160 and uint128, addresses in topics and data; declarations from the contracts' sources
REAL_EVENTS = (
    "Swap(address indexed sender, address indexed recipient, int256 amount0, int256 amount1, uint160 sqrtPriceX96, uint128 liquidity, int24 tick)",
    "Sync(uint112 reserve0, uint112 reserve1)",
    "Swap(address indexed sender, uint256 amount0In, uint256 amount1In, uint256 amount0Out, uint256 amount1Out, address indexed to)",
    "Transfer(address indexed from, address indexed to, uint256 value)",
    "Approval(address indexed owner, address indexed spender, uint256 value)",
    "Deposit(address indexed dst, uint256 wad)",
    "Withdrawal(address indexed src, uint256 wad)",
)


def _etl_logs() -> list[dict]:
    items = [orjson.loads(x) for x in ETL_LOGS.read_text().splitlines() if x.strip()]
    return [{"blockNumber": hex(i["block_number"]), "blockHash": i["block_hash"],
             "transactionHash": i["transaction_hash"], "transactionIndex": hex(i["transaction_index"]),
             "logIndex": hex(i["log_index"]), "address": i["address"], "topics": i["topics"],
             "data": i["data"], "removed": False} for i in items if i["topics"]]


@pytest.mark.skipif(not ETL_LOGS.exists(), reason="shared real data not present")
@pytest.mark.parametrize("decl", REAL_EVENTS, ids=[d.split("(")[0] + str(i) for i, d in enumerate(REAL_EVENTS)])
def test_real_mainnet_logs_decode_as_eth_abi_decodes_them(decl):
    """Every log of mainnet blocks 17173049-50 with the declaration's topic0 and layout, through
    both write paths: each row is what eth_abi decodes from the same bytes, or (a uint256 past
    128 bits, e.g. an unlimited Approval) ValueOutOfRange naming that log and column. A log with
    the same topic0 but another layout (an ERC-721 Transfer: 4 topics) is a DecodeError on
    'topics', never a row."""
    spec = EventSpec.parse(decl)
    logs = [lg for lg in _etl_logs() if lg["topics"][0] == spec.topic0]
    mine = [lg for lg in logs if len(lg["topics"]) == 1 + len(spec.indexed)]
    other = [lg for lg in logs if len(lg["topics"]) != 1 + len(spec.indexed)]
    assert mine
    want, wide = [], []
    for lg in sorted(mine, key=lambda x: (int(x["blockNumber"], 16), int(x["logIndex"], 16))):
        row, it = [], iter(abi_decode([p.type for p in spec.data_params], bytes.fromhex(lg["data"][2:])))
        for p in spec.params:
            v = abi_decode([p.type], bytes.fromhex(lg["topics"][1 + spec.indexed.index(p)][2:]))[0] \
                if p.indexed else next(it)
            row.append(_expected(v))
            if isinstance(v, int) and not isinstance(v, bool) and not I128[0] <= v <= U128:
                wide.append((ValueOutOfRange, spec.column_name(p), int(lg["blockNumber"], 16),
                             int(lg["logIndex"], 16)))
        want.append(row)
    for bulk in (True, False):
        got = _written(spec, mine, bulk)
        assert (got in wide) if wide else (got == want), f"bulk={bulk}"
        if other:
            got = _written(spec, other[:1], bulk)
            assert isinstance(got, tuple) and got[:2] == (DecodeError, "topics"), f"bulk={bulk}"
