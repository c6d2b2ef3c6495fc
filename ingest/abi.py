"""Strict event ABI handling: parse a declaration once, derive topic0, columns and decoders.

One :class:`EventSpec` per event drives the log filter (``topic0``), the typed table's columns
and the decoder, so they cannot disagree. Decoding is done in bulk:

* events whose non-indexed parameters are all static (the vast majority: Aave, ``AnswerUpdated``)
  are decoded *inside DuckDB* by SQL generated here: each 32-byte word is sliced out of the hex
  string and cast, with a strict validation query run first (exact data length, zero padding of
  addresses/uintN/bytesN, sign extension of intN, 0/1 booleans, and the 128-bit column fit). A
  failing row is reported with its block, log index, tx and field; nothing is written.
* events with dynamic parameters (``int192[]``, ``bytes``, ``string``) are decoded column at a
  time (:mod:`ingest.bulk_decode`) or per log (:meth:`EventSpec.decode_fast`), accepting only the
  canonical layout a contract emits (tails in order, nothing after them), then fit-checked the
  same way. :meth:`EventSpec.decode_log` (``eth_abi`` strict, plus a check that the data is the
  canonical re-encoding of what it decoded) is the reference they are tested against.

Column types (see :mod:`ingest.schema` for the uint256 policy): ``address`` -> lower-case hex
``VARCHAR``; ``bool`` -> ``BOOLEAN``; ``uint8..64``/``int8..64`` -> the matching DuckDB integer;
wider integers -> ``UHUGEINT``/``HUGEINT``, raising :class:`ValueOutOfRange` when the value does not
fit 128 bits; ``bytesN``/``bytes`` -> 0x-hex ``VARCHAR``; ``string`` -> ``VARCHAR`` (strict UTF-8);
``T[]`` -> ``LIST`` of the element type. Indexed dynamic parameters are stored as their 32-byte
topic hash in a column named ``<name>_topic``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from eth_hash.auto import keccak

from .errors import DecodeError, ValueOutOfRange
from .schema import Column

__all__ = ["EventSpec", "Param", "snake_case", "U128_MAX", "I128_MIN", "I128_MAX"]

U128_MAX = 2**128 - 1
I128_MAX = 2**127 - 1
I128_MIN = -(2**127)

_DECL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$", re.S)
_ELEM = re.compile(r"^(address|bool|string|bytes([1-9]|[12][0-9]|3[0-2])?|u?int([0-9]+)?)$")


def snake_case(name: str) -> str:
    """``liquidatedCollateralAmount`` -> ``liquidated_collateral_amount``; ``aToken`` -> ``a_token``."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    return s.lower()


@dataclass(frozen=True)
class Param:
    """One event parameter: its Solidity name, canonical type and whether it is indexed."""

    name: str
    type: str
    indexed: bool

    @property
    def is_array(self) -> bool:
        return self.type.endswith("[]")

    @property
    def elem(self) -> str:
        return self.type[:-2] if self.is_array else self.type

    @property
    def is_dynamic(self) -> bool:
        return self.is_array or self.type in ("bytes", "string")

    def bits(self) -> int:
        m = re.match(r"^u?int(\d+)$", self.elem)
        return int(m.group(1)) if m else 0


def _canonical_type(t: str) -> str:
    t = t.strip()
    base, arr = (t[:-2], "[]") if t.endswith("[]") else (t, "")
    if base == "uint":
        base = "uint256"
    elif base == "int":
        base = "int256"
    if not _ELEM.match(base):
        raise ValueError(f"unsupported ABI type {t!r} (tuples and fixed arrays are not supported)")
    m = re.match(r"^u?int(\d+)$", base)
    if m and (int(m.group(1)) % 8 or not 8 <= int(m.group(1)) <= 256):
        raise ValueError(f"invalid integer width in {t!r}")
    if arr and base in ("bytes", "string"):
        raise ValueError(f"arrays of dynamic types are not supported: {t!r}")
    return base + arr


def _duck_type(elem: str) -> str:
    if elem == "address" or elem.startswith("bytes") or elem == "string":
        return "VARCHAR"
    if elem == "bool":
        return "BOOLEAN"
    m = re.match(r"^(u?)int(\d+)$", elem)
    assert m, elem
    unsigned, bits = m.group(1) == "u", int(m.group(2))
    for limit, s, u in ((8, "TINYINT", "UTINYINT"), (16, "SMALLINT", "USMALLINT"),
                        (32, "INTEGER", "UINTEGER"), (64, "BIGINT", "UBIGINT")):
        if bits <= limit:
            return u if unsigned else s
    return "UHUGEINT" if unsigned else "HUGEINT"


@dataclass(frozen=True)
class EventSpec:
    """A parsed event declaration, e.g.
    ``LiquidationCall(address indexed collateralAsset, ..., bool receiveAToken)``."""

    name: str
    params: tuple[Param, ...]
    declaration: str

    @classmethod
    def parse(cls, decl: str) -> EventSpec:
        m = _DECL.match(decl)
        if not m:
            raise ValueError(f"not an event declaration: {decl!r}")
        name, body = m.group(1), m.group(2).strip()
        params: list[Param] = []
        if body:
            for i, part in enumerate(body.split(",")):
                words = part.split()
                if not words:
                    raise ValueError(f"empty parameter in {decl!r}")
                indexed = "indexed" in words[1:]
                rest = [w for w in words[1:] if w != "indexed"]
                if len(rest) > 1:
                    raise ValueError(f"cannot parse parameter {part.strip()!r} in {decl!r}")
                pname = rest[0] if rest else f"arg{i}"
                params.append(Param(pname, _canonical_type(words[0]), indexed))
        if sum(p.indexed for p in params) > 3:
            raise ValueError(f"more than 3 indexed parameters in {decl!r}")
        names = [snake_case(p.name) for p in params]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in {decl!r}")
        spec = cls(name, tuple(params), decl)
        cols = [spec.column_name(p) for p in params]
        same = sorted({c for c in cols if cols.count(c) > 1})
        if same:  # e.g. `source` (a lineage column, so arg_source) beside `argSource`
            raise ValueError(f"parameters of {decl!r} map to the same column ({', '.join(same)})")
        return spec

    @cached_property
    def signature(self) -> str:
        return f"{self.name}({','.join(p.type for p in self.params)})"

    @cached_property
    def topic0(self) -> str:
        return "0x" + keccak(self.signature.encode()).hex()

    @cached_property
    def indexed(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.indexed)

    @cached_property
    def data_params(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if not p.indexed)

    @cached_property
    def is_static(self) -> bool:
        """True when all non-indexed params are static (decodable by the bulk SQL path)."""
        return not any(p.is_dynamic for p in self.data_params)

    def column_name(self, p: Param) -> str:
        base = snake_case(p.name)
        if p.indexed and p.is_dynamic:
            base += "_topic"
        if base in _RESERVED:
            base = "arg_" + base
        return base

    @cached_property
    def _columns(self) -> tuple[Column, ...]:
        return self._build_columns()

    def columns(self) -> tuple[Column, ...]:
        return self._columns

    @cached_property
    def _column_names(self) -> tuple[str, ...]:
        return tuple(self.column_name(p) for p in self.params)

    def _build_columns(self) -> tuple[Column, ...]:
        out = []
        for p in self.params:
            if p.indexed and p.is_dynamic:
                out.append(Column(self.column_name(p), "VARCHAR",
                                  f"`{p.type} indexed {p.name}`: keccak256 topic of the value"))
                continue
            t = _duck_type(p.elem) + ("[]" if p.is_array else "")
            note = ""
            if p.bits() > 128:
                note = " (exact; decoding raises if the value does not fit 128 bits)"
            out.append(Column(self.column_name(p), t,
                              f"`{p.type}{' indexed' if p.indexed else ''} {p.name}`{note}"))
        return tuple(out)

    # ----------------------------------------------------------------- bulk SQL decode
    def _word_sql(self, p: Param) -> str:
        """SQL for the 64-hex-char word holding ``p`` (from ``topics`` or ``data``)."""
        if p.indexed:
            k = self.indexed.index(p) + 2  # DuckDB lists are 1-based; topics[1] is topic0
            return f"substr(topics[{k}], 3, 64)"
        k = self.data_params.index(p)
        return f"substr(data, {3 + 64 * k}, 64)"

    def sql_checks(self) -> list[tuple[str, str]]:
        """(condition that must hold, field name) pairs: the strict checks of the bulk path.

        An integer wider than 128 bits has two checks: that the word is a valid ``uintN``/``intN``
        (field: the column) and then that the value fits the 128-bit column (field:
        ``fit:<column>``, a :class:`ValueOutOfRange`), as :meth:`decode_fast` tells them apart.
        The order is the per-log decoders': the indexed parameters, the data's length, the data
        parameters, so a log with several faults is reported by the same one on every path."""
        checks: list[tuple[str, str]] = [
            (f"len(topics) = {1 + len(self.indexed)}", "topics"),
            ("regexp_full_match(data, '0x[0-9a-fA-F]*')", "data"),
        ]
        for i in range(len(self.indexed)):
            checks.append((f"regexp_full_match(topics[{i + 2}], '0x[0-9a-fA-F]{{64}}')", "topics"))
        length = (f"coalesce(length(data), -1) = {2 + 64 * len(self.data_params)}", "data")
        for p in (*self.indexed, None, *self.data_params):
            if p is None:
                checks.append(length)
                continue
            if p.indexed and p.is_dynamic:
                continue
            w = self._word_sql(p)
            col = self.column_name(p)
            e = p.elem
            if e == "address":
                checks.append((f"substr({w}, 1, 24) = '{'0' * 24}'", col))
            elif e == "bool":
                checks.append((f"{w} IN ('{'0' * 64}', '{'0' * 63}1')", col))
            elif e.startswith("bytes"):
                n = int(e[5:])
                if n < 32:
                    checks.append((f"substr({w}, {2 * n + 1}) = '{'0' * (64 - 2 * n)}'", col))
            else:
                # valid uintN/intN first (N < 256), then the 128-bit column fit (N > 128)
                for bits, fld in ((p.bits(), col), (128, f"fit:{col}")):
                    if bits >= 256 or (fld != col and p.bits() <= 128):
                        continue
                    k = (256 - bits) // 4
                    if e.startswith("uint"):
                        checks.append((f"substr({w}, 1, {k}) = '{'0' * k}'", fld))
                    else:  # sign-extended from `bits` bits
                        checks.append((
                            f"((substr({w}, 1, {k}) = '{'0' * k}' AND substr({w}, {k + 1}, 1) < '8')"
                            f" OR (lower(substr({w}, 1, {k})) = '{'f' * k}'"
                            f" AND substr({w}, {k + 1}, 1) >= '8'))", fld))
        return checks

    def select_sql(self) -> list[str]:
        """SQL expressions (aliased) decoding each parameter, in declaration order."""
        out = []
        for p in self.params:
            col = self.column_name(p)
            if p.indexed and p.is_dynamic:
                out.append(f"lower(topics[{self.indexed.index(p) + 2}]) AS \"{col}\"")
                continue
            w = self._word_sql(p)
            e = p.elem
            if e == "address":
                expr = f"'0x' || lower(substr({w}, 25, 40))"
            elif e == "bool":
                expr = f"({w} = '{'0' * 63}1')"
            elif e.startswith("bytes"):
                expr = f"'0x' || lower(substr({w}, 1, {2 * int(e[5:])}))"
            elif e.startswith("uint"):
                expr = f"CAST(('0x' || substr({w}, 33, 32))::UHUGEINT AS {_duck_type(e)})"
            else:
                u = f"('0x' || substr({w}, 33, 32))::UHUGEINT"
                expr = (f"CAST(CASE WHEN substr({w}, 33, 1) >= '8' "
                        f"THEN -((340282366920938463463374607431768211455::UHUGEINT - {u})::HUGEINT) - 1"
                        f" ELSE {u}::HUGEINT END AS {_duck_type(e)})")
            out.append(f"{expr} AS \"{col}\"")
        return out

    # ----------------------------------------------------------------- per-log decode
    def decode_log(self, topics: list[str], data: str, *, block_number: int | None = None,
                   log_index: int | None = None, tx_hash: str | None = None) -> dict[str, object]:
        """Decode one log strictly into ``{column: python value}`` (the slow, general path).

        Integers come back as Python ints (exact); every value is checked against its column.
        A non-canonical encoding (trailing bytes, a tail out of place), which ``eth_abi`` itself
        would read, raises :class:`DecodeError`; an error names the parameter whose word is bad.
        """
        from eth_abi.abi import decode as abi_decode
        from eth_abi.abi import encode as abi_encode
        from eth_abi.exceptions import DecodingError

        where: dict[str, Any] = dict(block_number=block_number, log_index=log_index,
                                     tx_hash=tx_hash, event=self.name)
        if len(topics) != 1 + len(self.indexed):
            raise DecodeError(f"expected {1 + len(self.indexed)} topics, got {len(topics)}",
                              field="topics", **where)
        if not all(isinstance(t, str) for t in topics):
            raise DecodeError("a topic is not a string", field="topics", **where)
        if topics[0].lower() != self.topic0:
            raise DecodeError(f"topic0 {topics[0]} is not {self.signature}", field="topics", **where)
        out: dict[str, object] = {}
        try:
            raw = bytes.fromhex(data[2:] if data.startswith("0x") else "!")
        except ValueError:
            raise DecodeError("data is not 0x-prefixed hex", field="data", **where) from None
        if 2 * len(raw) + 2 != len(data):  # fromhex skips whitespace
            raise DecodeError("data is not 0x-prefixed hex", field="data", **where)
        for i, p in enumerate(self.indexed):
            t = topics[i + 1]
            col = self.column_name(p)
            if not re.fullmatch(r"0x[0-9a-fA-F]{64}", t):
                raise DecodeError(f"topic {i + 1} is not a 32-byte hex word", field=col, **where)
            if p.is_dynamic:
                out[col] = t.lower()
                continue
            try:
                (v,) = abi_decode([p.type], bytes.fromhex(t[2:]), strict=True)
            except (DecodingError, ValueError, OverflowError) as e:
                raise DecodeError(f"invalid {p.type}: {e}", field=col, **where) from None
            out[col] = self._check(p, v, col, where)
        dp = self.data_params
        types = [p.type for p in dp]
        if self.is_static and len(raw) != 32 * len(dp):
            raise DecodeError(f"data is {len(raw)} bytes, expected {32 * len(dp)}",
                              field="data", **where)
        errors = (DecodingError, ValueError, OverflowError, UnicodeDecodeError)
        try:
            values = abi_decode(types, raw, strict=True) if dp else ()
        except errors as e:
            # eth_abi decodes the tuple at once: the first parameter whose prefix of the tuple
            # does not decode is the bad one (offsets are from the start of the data), unless
            # one before it does not fit its column (the order in which decode_fast reads them)
            col = "data"
            for k in range(len(dp)):
                try:
                    head = abi_decode(types[:k + 1], raw, strict=True)
                except errors:
                    col = self.column_name(dp[k])
                    break
                self._check(dp[k], head[k], self.column_name(dp[k]), where)
            raise DecodeError(f"data does not decode as ({','.join(types)}): {e}",
                              field=col, **where) from None
        if not self.is_static:
            # eth_abi reads tails wherever the offsets point and ignores trailing bytes; the
            # contract's encoder writes one layout only (tails in order, nothing after them)
            canonical = abi_encode(types, values)
            if canonical != raw:
                moved = next((j for j in range(len(dp)) if raw[32 * j: 32 * j + 32]
                              != canonical[32 * j: 32 * j + 32]), None)
                col = "data" if moved is None else self.column_name(dp[moved])
                raise DecodeError(f"data is not the canonical encoding of ({','.join(types)}) "
                                  f"({len(raw)} bytes, the canonical one has {len(canonical)}; "
                                  "a tail out of place or trailing bytes)", field=col, **where)
        for p, v in zip(dp, values, strict=True):
            col = self.column_name(p)
            out[col] = self._check(p, v, col, where)
        return {c.name: out[c.name] for c in self.columns()}

    def decode_fast(self, topics: list[str], data: str, *, block_number: int | None = None,
                    log_index: int | None = None, tx_hash: str | None = None) -> list[object]:
        """Strict decode of one log into column values (declaration order), without eth_abi.

        The hot path for events with dynamic parameters (OCR ``NewTransmission``): about ten
        times faster than ``eth_abi``. Accepts only the canonical layout Solidity emits (tails in
        order, each where the previous ended, no trailing bytes), checks padding and sign
        extension, and raises :class:`DecodeError`/:class:`ValueOutOfRange` naming the field.
        ``decode_log`` (eth_abi) is the reference it is tested against.
        """
        where: dict[str, Any] = dict(block_number=block_number, log_index=log_index,
                                     tx_hash=tx_hash, event=self.name)
        if len(topics) != 1 + len(self.indexed):
            raise DecodeError(f"expected {1 + len(self.indexed)} topics, got {len(topics)}",
                              field="topics", **where)
        try:
            if not data.startswith("0x"):
                raise ValueError
            raw = bytes.fromhex(data[2:])
            if 2 * len(raw) + 2 != len(data):  # fromhex skips whitespace
                raise ValueError
            tw = [bytes.fromhex(t[2:]) if isinstance(t, str) and t.startswith("0x")
                  and len(t) == 66 else b"" for t in topics[1:]]
        except ValueError:
            raise DecodeError("data or topics are not 0x-prefixed hex", field="data",
                              **where) from None
        out: dict[str, object] = {}
        for (col, dynamic, elem), t in zip(self._plan_indexed, tw, strict=True):
            if len(t) != 32:
                raise DecodeError("topic is not 32 bytes", field=col, **where)
            out[col] = "0x" + t.hex() if dynamic else self._word(elem, t, col, where)
        plan = self._plan_data
        head = 32 * len(plan)
        if len(raw) < head:
            raise DecodeError(f"data is {len(raw)} bytes, the head alone needs {head}",
                              field="data", **where)
        end = head
        for k, (col, dynamic, elem, p) in enumerate(plan):
            w = raw[32 * k: 32 * k + 32]
            if not dynamic:
                out[col] = self._word(elem, w, col, where)
                continue
            off = int.from_bytes(w, "big")
            if off != end or off + 32 > len(raw):
                raise DecodeError(f"tail offset {off} is not the canonical {end}", field=col,
                                  **where)
            n = int.from_bytes(raw[off: off + 32], "big")
            body = off + 32
            if p.is_array:
                size = 32 * n
                if body + size > len(raw):
                    raise DecodeError(f"array of {n} elements runs past the data", field=col,
                                      **where)
                out[col] = self._words(p.elem, raw, body, n, col, where)
            else:
                size = -(-n // 32) * 32
                if body + size > len(raw) or any(raw[body + n: body + size]):
                    raise DecodeError("bytes/string tail overruns the data or has dirty padding",
                                      field=col, **where)
                content = raw[body: body + n]
                if p.type == "string":
                    try:
                        out[col] = content.decode("utf-8")
                    except UnicodeDecodeError:
                        raise DecodeError("string is not valid UTF-8", field=col,
                                          **where) from None
                else:
                    out[col] = "0x" + content.hex()
            end = body + size
        if end != len(raw):
            raise DecodeError(f"data is {len(raw)} bytes, the encoding ends at {end}",
                              field="data", **where)
        return [out[c] for c in self._column_names]

    @cached_property
    def _plan_indexed(self) -> tuple[tuple[str, bool, str], ...]:
        """(column, dynamic, element type) of each indexed param, for :meth:`decode_fast`."""
        return tuple((self.column_name(p), p.is_dynamic, p.elem) for p in self.indexed)

    @cached_property
    def _plan_data(self) -> tuple[tuple[str, bool, str, Param], ...]:
        """(column, dynamic, element type, param) of each data param, for :meth:`decode_fast`."""
        return tuple((self.column_name(p), p.is_dynamic, p.elem, p) for p in self.data_params)

    def _words(self, e: str, raw: bytes, start: int, n: int, col: str,
               where: dict[str, Any]) -> list[object]:
        """``n`` consecutive words from ``raw[start:]``; integers in one fast pass."""
        if e.startswith(("int", "uint")):
            signed, lo, hi = _int_bounds(e)
            vals: list[Any] = [int.from_bytes(raw[i: i + 32], "big", signed=signed)
                               for i in range(start, start + 32 * n, 32)]
            if vals and (min(vals) < lo or max(vals) > hi):
                bad = next(v for v in vals if not lo <= v <= hi)
                # re-run the strict scalar check to raise the precise error
                self._word(e, bad.to_bytes(32, "big", signed=signed), col, where)
            return vals
        return [self._word(e, raw[i: i + 32], col, where) for i in range(start, start + 32 * n, 32)]

    def _word(self, e: str, w: bytes, col: str, where: dict[str, Any]) -> object:
        """One 32-byte word as elementary type ``e``, strictly."""
        if e == "address":
            if any(w[:12]):
                raise DecodeError("address has non-zero padding", field=col, **where)
            return "0x" + w[12:].hex()
        if e == "bool":
            v = int.from_bytes(w, "big")
            if v > 1:
                raise DecodeError(f"bool is {v}", field=col, **where)
            return v == 1
        if e.startswith("bytes"):
            n = int(e[5:])
            if any(w[n:]):
                raise DecodeError(f"{e} has non-zero padding", field=col, **where)
            return "0x" + w[:n].hex()
        bits = int(e.lstrip("uint") or 256)
        if e.startswith("uint"):
            v = int.from_bytes(w, "big")
            if v >> bits:
                raise DecodeError(f"{e} has non-zero high bits", field=col, **where)
            if v > U128_MAX:
                raise ValueOutOfRange(f"{e} value {v} exceeds 2**128-1 (UHUGEINT)", field=col,
                                      **where)
            return v
        v = int.from_bytes(w, "big", signed=True)
        if not -(1 << (bits - 1)) <= v < (1 << (bits - 1)):
            raise DecodeError(f"{e} is not sign-extended", field=col, **where)
        if not I128_MIN <= v <= I128_MAX:
            raise ValueOutOfRange(f"{e} value {v} does not fit HUGEINT", field=col, **where)
        return v

    def _check(self, p: Param, v: object, col: str, where: dict[str, Any]) -> object:
        if p.is_array:
            assert isinstance(v, (list, tuple))
            return [self._check(Param(p.name, p.elem, False), x, col, where) for x in v]
        e = p.elem
        if e == "address":
            return str(v).lower()
        if e.startswith("bytes"):
            assert isinstance(v, bytes)
            return "0x" + v.hex()
        if e.startswith("uint"):
            assert isinstance(v, int)
            if v > U128_MAX:
                raise ValueOutOfRange(f"{p.type} value {v} exceeds 2**128-1 (UHUGEINT)",
                                      field=col, **where)
            return v
        if e.startswith("int"):
            assert isinstance(v, int)
            if not I128_MIN <= v <= I128_MAX:
                raise ValueOutOfRange(f"{p.type} value {v} does not fit HUGEINT",
                                      field=col, **where)
            return v
        return v


@functools.cache
def _int_bounds(e: str) -> tuple[bool, int, int]:
    """(signed, lowest, highest) value of integer type ``e`` that fits its column (<= 128 bits)."""
    signed = e.startswith("int")
    bits = min(int(e.lstrip("uint") or 256), 128)
    return (signed, *((-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)))


_RESERVED = {"chain_id", "block_number", "block_hash", "tx_hash", "tx_index", "log_index",
             "address", "role", "source", "run_id", "block_timestamp"}
