"""Column-at-a-time strict decode of events with dynamic parameters (OCR ``NewTransmission``).

:meth:`ingest.abi.EventSpec.decode_fast` decodes one log at a time in Python (~25 µs for an
OCR1 ``NewTransmission`` with 31 observations). This module decodes a whole table's rows at
once: rows of equal data length are hex-decoded together (``binascii.unhexlify`` of one
contiguous Arrow buffer), cut into 64-bit big-endian quarters of each 32-byte word
(``array('Q')`` + ``byteswap``), and checked and converted with Arrow compute kernels.

It is a *fast path only*. It accepts nothing that ``decode_fast`` rejects, and it gives up
(returns ``None``) on anything it does not handle in bulk: a check that fails, a value wider
than 64 bits, a group of rows of the same length whose layouts differ, ``string`` parameters.
The caller then runs ``decode_fast`` row by row, which yields the same values or raises the
precise typed error for the first bad row. So the results and the errors are those of
``decode_fast``; only the speed differs.
"""

from __future__ import annotations

import binascii
import sys
from array import array

import pyarrow as pa
import pyarrow.compute as pc

from .abi import EventSpec, Param

__all__ = ["by_length", "column_sql", "decode_columns", "in_log_order", "input_sql"]

_MAX = pa.scalar(2**64 - 1, pa.uint64())
_SIGN = pa.scalar(2**63, pa.uint64())
_ZERO = pa.scalar(0, pa.uint64())
_ONE = pa.scalar(1, pa.uint64())


def _shr(a: pa.Array, bits: int) -> pa.Array:
    return pc.shift_right(a, pa.scalar(bits, pa.uint64()))
_LE = sys.byteorder == "little"


class _GiveUp(Exception):
    """Not decodable in bulk: the caller falls back to the per-log decoder."""


def input_sql(spec: EventSpec) -> str:
    """The select list :func:`decode_columns` needs (after the lineage columns)."""
    tcols = "".join(f"topics[{k + 2}] AS _t{k}, " for k in range(len(spec.indexed)))
    return (f"len(topics) AS _nt, {tcols}starts_with(data, '0x') AS _ok, "
            "strlen(data) AS _len, substr(data, 3) AS _hex")


def decode_columns(spec: EventSpec, tbl: pa.Table) -> list[tuple[pa.Array, ...]] | None:
    """Decoded columns (declaration order) for ``tbl``'s rows, or ``None`` to fall back.

    ``tbl`` has the columns of :func:`input_sql` and is sorted by ``_len`` (rows of one data
    length are contiguous); the output arrays follow ``tbl``'s row order. Each column is one
    array, or two for integers wider than 64 bits (high and low halves, :func:`column_sql`).
    Integers come out as ``int64``/``uint64`` (lists of them for arrays), strings as lower-case
    ``0x`` hex, to be cast to the declared column types in SQL.
    """
    try:
        return _decode(spec, tbl)
    except (_GiveUp, binascii.Error, ValueError):
        return None


def _all(mask: pa.Array | pa.ChunkedArray) -> bool:
    """Every value true (and none NULL)."""
    return not mask.null_count and (bool(pc.all(mask).as_py()) if len(mask) else True)


def _u64(a: array[int]) -> pa.Array:
    return pa.Array.from_buffers(pa.uint64(), len(a), [None, pa.py_buffer(a)])


def _quads(raw: bytes | memoryview) -> array[int]:
    """``raw`` (a multiple of 32 bytes) as big-endian 64-bit quarters, 4 per 32-byte word."""
    q = array("Q")
    q.frombytes(raw)
    if _LE:
        q.byteswap()
    return q


def _strings_from(buf: pa.Array) -> tuple[memoryview, memoryview]:
    """The contiguous character data of a string array, and its offsets."""
    if pa.types.is_large_string(buf.type):
        buf = buf.cast(pa.string())
    if not pa.types.is_string(buf.type):
        raise _GiveUp
    _, o, data = buf.buffers()
    offsets = memoryview(o).cast("B").cast("i")[buf.offset: buf.offset + len(buf) + 1]
    return memoryview(data if data is not None else b""), offsets


def _word_values(e: str, q: list[pa.Array], wide: bool = True) -> tuple[pa.Array, ...]:
    """Checked values of elementary type ``e`` from the quarters ``q`` of n words: one array,
    or for integers wider than 64 bits (``wide``) two, the high and low 64 bits."""
    p0, p1, p2, p3 = q
    z01 = pc.and_(pc.equal(p0, _ZERO), pc.equal(p1, _ZERO))
    hz = pc.and_(z01, pc.equal(p2, _ZERO))
    if e == "bool":
        if not _all(pc.and_(hz, pc.less_equal(p3, _ONE))):
            raise _GiveUp
        return (pc.equal(p3, _ONE),)
    bits = int(e.lstrip("uint") or 256)
    if e.startswith("uint"):
        if bits <= 64 or _all(hz):
            ok = hz if bits >= 64 else pc.and_(hz, pc.equal(_shr(p3, bits), _ZERO))
            if not _all(ok):
                raise _GiveUp
            return (p3,)
        if not wide:
            raise _GiveUp
        ok = z01 if bits >= 128 else pc.and_(z01, pc.equal(_shr(p2, bits - 64), _ZERO))
        if not _all(ok):
            raise _GiveUp
        return (p2, p3)
    neg = pc.greater_equal(p3, _SIGN)
    f01 = pc.and_(pc.equal(p0, _MAX), pc.equal(p1, _MAX))
    hf = pc.and_(f01, pc.equal(p2, _MAX))
    ok = pc.or_(pc.and_(hz, pc.invert(neg)), pc.and_(hf, neg))
    v = p3.cast(pa.int64(), safe=False)  # two's complement
    if bits < 64:
        lim = 1 << (bits - 1)
        ok = pc.and_(ok, pc.and_(pc.greater_equal(v, -lim), pc.less(v, lim)))
    if _all(ok):
        return (v,)
    if bits < 128 or not wide:  # 65..127 bits: not taken in bulk
        raise _GiveUp
    # sign-extended from 128 bits (the HUGEINT column's range; also valid for intN, N >= 128)
    neg2 = pc.greater_equal(p2, _SIGN)
    if not _all(pc.or_(pc.and_(z01, pc.invert(neg2)), pc.and_(f01, neg2))):
        raise _GiveUp
    return (p2.cast(pa.int64(), safe=False), p3)


def column_sql(name: str, sql_type: str, parts: tuple[pa.Array, ...]
               ) -> tuple[dict[str, pa.Array], str]:
    """The Arrow columns (``d_<name>``, ``d_<name>__hi``/``__lo``) and the SQL expression that
    give a column of ``sql_type`` from a decoded value (one array) or the (high, low) 64-bit
    halves of a 128-bit integer. ``name`` must keep those Arrow names apart from every other
    column's (the caller passes the column's position, not its name)."""
    if len(parts) == 1:
        return {f"d_{name}": parts[0]}, f'CAST("d_{name}" AS {sql_type})'
    hi, lo = f'"d_{name}__hi"', f'"d_{name}__lo"'
    if pa.types.is_signed_integer(parts[0].type):
        expr = f"({hi}::HUGEINT * 18446744073709551616::HUGEINT + {lo}::HUGEINT)"
    else:
        expr = f"(({hi}::UHUGEINT << 64) | {lo}::UHUGEINT)"
    return {f"d_{name}__hi": parts[0], f"d_{name}__lo": parts[1]}, f"CAST({expr} AS {sql_type})"


def _zero_tail(q: list[pa.Array], nbytes: int) -> pa.Array:
    """True where bytes ``nbytes..31`` of each word are zero."""
    ok = None
    for k, part in enumerate(q):
        lo = 8 * k
        if lo + 8 <= nbytes:
            continue
        keep = max(nbytes - lo, 0)  # leading bytes of this quarter that may be non-zero
        m = part if keep == 0 else pc.bit_wise_and(part, pa.scalar((1 << (8 * (8 - keep))) - 1, pa.uint64()))
        z = pc.equal(m, _ZERO)
        ok = z if ok is None else pc.and_(ok, z)
    return ok if ok is not None else pa.array([True] * len(q[0]))


def _hex_slice(hexcol: pa.Array, a: int, b: int) -> pa.Array:
    """``'0x' + lower(bytes a..b)`` of each row, from the rows' (already validated) hex text."""
    part = pc.binary_slice(hexcol.cast(pa.binary()), 2 * a, 2 * b).cast(pa.string())
    return pc.binary_join_element_wise("0x", pc.ascii_lower(part), "")


def _static(p: Param, e: str, q: list[pa.Array], hexcol: pa.Array, at: int
            ) -> tuple[pa.Array, ...]:
    """One static word per row: quarters ``q``; the word is at byte ``at`` of each row of
    ``hexcol`` (the rows' hex text)."""
    if e == "address":
        p0, p1 = q[0], q[1]
        if not _all(pc.and_(pc.equal(p0, _ZERO), pc.equal(_shr(p1, 32), _ZERO))):
            raise _GiveUp
        return (_hex_slice(hexcol, at + 12, at + 32),)
    if e.startswith("bytes"):
        n = int(e[5:])
        if not _all(_zero_tail(q, n)):
            raise _GiveUp
        return (_hex_slice(hexcol, at, at + n),)
    if e == "string":
        raise _GiveUp
    return _word_values(e, q)


def _decode(spec: EventSpec, tbl: pa.Table) -> list[tuple[pa.Array, ...]]:
    n = tbl.num_rows
    if not _all(pc.equal(tbl.column("_nt"), 1 + len(spec.indexed))):
        raise _GiveUp
    if not _all(tbl.column("_ok")):
        raise _GiveUp
    out: dict[str, tuple[pa.Array, ...]] = {}
    # indexed parameters: one 32-byte topic each
    for k, p in enumerate(spec.indexed):
        col = spec.column_name(p)
        t = tbl.column(f"_t{k}").combine_chunks()
        if t.null_count or not _all(pc.equal(pc.binary_length(t), 66)) \
                or not _all(pc.starts_with(t, "0x")):
            raise _GiveUp
        hexcol = pc.binary_slice(t.cast(pa.binary()), 2, 66).cast(pa.string())
        data, _ = _strings_from(hexcol)
        raw = binascii.unhexlify(data)
        if len(raw) != 32 * n:
            raise _GiveUp
        if p.is_dynamic:  # the keccak topic of the value
            out[col] = (_hex_slice(hexcol, 0, 32),)
            continue
        qs = _quads(raw)
        out[col] = _static(p, p.elem, [_u64(qs[i::4]) for i in range(4)], hexcol, 0)
    # data parameters: per group of rows with equal data length
    lens = tbl.column("_len").combine_chunks()
    if n > 1 and not _all(pc.greater_equal(lens.slice(1), lens.slice(0, n - 1))):
        raise _GiveUp  # not grouped by length (by_length was not applied)
    counts = pc.value_counts(lens).field("counts").to_pylist()
    hexall = tbl.column("_hex").combine_chunks()
    hexdata, offsets = _strings_from(hexall)
    parts: dict[str, list[tuple[pa.Array, ...]]] = {spec.column_name(p): [] for p in spec.data_params}
    i = 0
    for cnt in counts:
        j = i + cnt
        raw = binascii.unhexlify(hexdata[offsets[i]: offsets[j]])
        for col, arr in _decode_group(spec, raw, j - i, hexall.slice(i, j - i)).items():
            parts[col].append(arr)
        i = j
    for col, groups in parts.items():
        if any(len(g) == 2 for g in groups):
            groups = [g if len(g) == 2 else _widen(g[0]) for g in groups]
        out[col] = tuple(pa.chunked_array([g[m] for g in groups]).combine_chunks()
                         for m in range(len(groups[0])))
    return [out[c.name] for c in spec.columns()]


def _widen(v: pa.Array) -> tuple[pa.Array, pa.Array]:
    """A 64-bit integer column as (high, low) 64-bit halves of the 128-bit value."""
    if pa.types.is_signed_integer(v.type):
        hi = pc.if_else(pc.less(v, 0), pa.scalar(-1, pa.int64()), pa.scalar(0, pa.int64()))
        return hi, v.cast(pa.uint64(), safe=False)
    return pa.array([0] * len(v), pa.uint64()), v


def _decode_group(spec: EventSpec, raw: bytes, k: int, hexcol: pa.Array
                  ) -> dict[str, tuple[pa.Array, ...]]:
    """Decode ``k`` rows whose data (``raw``; ``hexcol``: as hex text) have the same length."""
    if k == 0 or len(raw) % k:
        raise _GiveUp
    size = len(raw) // k
    if size % 32:
        raise _GiveUp
    wd = size // 32  # words per row
    q = _quads(raw)
    stride = 4 * wd

    def word(w: int) -> list[pa.Array]:  # quarters of word w of every row
        return [_u64(q[4 * w + i:: stride]) for i in range(4)]

    def uniform(w: int) -> int:  # word w as one small integer, equal in every row
        p0, p1, p2, p3 = word(w)
        hz = pc.and_(pc.and_(pc.equal(p0, _ZERO), pc.equal(p1, _ZERO)), pc.equal(p2, _ZERO))
        mm = pc.min_max(p3)
        if not _all(hz) or mm["min"].as_py() != mm["max"].as_py():
            raise _GiveUp
        return int(mm["min"].as_py())

    plan = spec.data_params
    head = 32 * len(plan)
    if size < head:
        raise _GiveUp
    rows = range(0, size * k, size)
    out: dict[str, tuple[pa.Array, ...]] = {}
    end = head
    for idx, p in enumerate(plan):
        col = spec.column_name(p)
        if not p.is_dynamic:
            out[col] = _static(p, p.elem, word(idx), hexcol, 32 * idx)
            continue
        off = uniform(idx)
        if off != end or off + 32 > size:
            raise _GiveUp
        cnt = uniform(off // 32)
        body = off + 32
        if p.is_array:
            nbytes = 32 * cnt
            if body + nbytes > size or p.elem == "address" or p.elem.startswith("bytes") \
                    or p.elem == "bool":
                raise _GiveUp
            b0 = body // 32
            pattern = b"\0" * b0 + b"\1" * cnt + b"\0" * (wd - b0 - cnt)
            mask = pc.equal(pa.Array.from_buffers(pa.uint8(), k * wd, [None, pa.py_buffer(pattern * k)]), 1)
            (vals,) = _word_values(p.elem, [pc.filter(_u64(q[i::4]), mask) for i in range(4)],
                                   wide=False)
            offsets = pa.Array.from_buffers(pa.int32(), k + 1, [None, pa.py_buffer(
                array("i", range(0, cnt * k + 1, cnt)) if cnt else array("i", bytes(4 * (k + 1))))])
            out[col] = (pa.ListArray.from_arrays(offsets, vals),)
        else:
            if p.type == "string":
                raise _GiveUp
            nbytes = -(-cnt // 32) * 32
            if body + nbytes > size:
                raise _GiveUp
            if nbytes > cnt and any(b"".join(raw[r + body + cnt: r + body + nbytes] for r in rows)):
                raise _GiveUp
            out[col] = (_hex_slice(hexcol, body, body + cnt),)
        end = body + nbytes
    if end != size:
        raise _GiveUp
    return out


def by_length(tbl: pa.Table) -> pa.Table:
    """``tbl`` with rows of equal data length (``_len``) made contiguous, as
    :func:`decode_columns` needs (unchanged when they already are)."""
    lens = tbl.column("_len")
    if len(lens) < 2 or pc.min_max(lens)["min"] == pc.min_max(lens)["max"]:
        return tbl
    return tbl.take(pc.sort_indices(tbl, [("_len", "ascending")]))


def in_log_order(tbl: pa.Table) -> pa.Table:
    """``tbl`` sorted by (``block_number``, ``log_index``); unchanged when it already is."""
    n = tbl.num_rows
    idx = pc.sort_indices(tbl, [("block_number", "ascending"), ("log_index", "ascending")])
    ident = pa.Array.from_buffers(pa.uint64(), n, [None, pa.py_buffer(array("Q", range(n)))])
    return tbl if _all(pc.equal(idx, ident)) else tbl.take(idx)
