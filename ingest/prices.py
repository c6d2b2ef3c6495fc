"""Import off-chain reference prices (CEX candles, bid/ask mids, generic CSVs) into the warehouse.

A reference price is what the market said an asset was worth at an instant; a backtest compares
oracle prices and liquidation prices against it. Such prices are floats by nature (averages,
mids, last trades), so :data:`REFERENCE_PRICES` stores a ``DOUBLE`` for analysis *and* the exact
decimal text the file contained (``price_text``) so nothing is lost.

Accepted formats (:data:`FORMATS`; auto-detected from the header/shape when ``fmt`` is None):

``binance_kline``
    Binance public-data kline CSV (data.binance.vision spot and futures dumps), with or without the
    header ``open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,
    taker_buy_quote_volume,ignore``. One row per candle: the close price at ``close_time``
    (kind ``close``). Times are unix milliseconds (13 digits) or, for spot dumps from 2025 on,
    unix microseconds (16 digits); the unit is read from each value's magnitude. ``close_time`` is
    stored exactly as Binance gives it (the last millisecond/microsecond of the candle, e.g.
    ``…59.999``), not rounded up to the next candle's open.
``timestamp_price``
    Generic CSV with header ``timestamp,price``. ``timestamp`` is unix seconds (an integer or a
    decimal with at most 6 fractional digits that matter; 10 integer digits, 2001-09-09 ..
    2286-11-20, so that a millisecond, microsecond or minute value is refused, not read as
    seconds) or ISO-8601 with an explicit offset or ``Z``; naive ISO times are rejected as
    ambiguous. Kind ``price``.
``riskdao_binance``
    The Risk-DAO simulation-env CSV (``timestamp_x`` unix microseconds written as a float,
    ``ask_price``, ``bid_price``, ...); a ``timestamp_x`` outside 16 digits (a millisecond or
    second value) is refused. Price = (ask + bid) / 2, computed exactly in decimal from
    the file's text (the mid of two finite decimals is a finite decimal) and stored as exact text;
    kind ``mid``. ``timestamp_x`` text such as ``1610236829852628.8`` is itself a float64 rendering
    (float64 resolution there is 0.25 µs), so it is rounded to the nearest integer microsecond
    (half-even) with :class:`decimal.Decimal`, never through a binary float.
``coinapi_ohlcv``
    CoinAPI OHLCV JSON (an array of bars with ``time_period_start``/``time_period_end``,
    ``price_open/high/low/close``, ...). Price = ``price_close`` at ``time_period_end``, kind
    ``close``. JSON numbers are read as their literal text (no float round trip). Error line
    numbers point at the line where the offending bar's object starts.

Validation happens before anything is written: timestamps strictly increasing (duplicates
rejected), prices positive and finite, known quote unit, ``pair`` shaped ``BASE/QUOTE`` with
``QUOTE == unit``, non-empty file. Every problem is a :class:`~ingest.errors.PriceImportError`
naming file, line and field; a bad file imports nothing.

Re-importing the same (``source``, ``pair``) replaces those rows in one transaction (delete, then
insert, together with the ``meta.runs`` row), so a failed import leaves the previous rows intact
and importing the same file twice changes nothing but ``run_id``. The whole (source, pair) is
replaced, not the file's range (a corrected file leaves no stale row of the old one behind): rows
outside the new file's range are counted in :attr:`ImportSummary.dropped` and the CLI warns about
them (a file that continues a series needs its own source; the backtest reads a pair's sources
that follow one another as one path).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, Inexact, localcontext
from pathlib import Path
from typing import TypeVar

import duckdb
import pyarrow as pa

from .errors import PriceImportError
from .schema import Column, Table, register_table
from .warehouse import RUNS, Warehouse, fetch_one, unregister, utcnow

__all__ = ["REFERENCE_PRICES", "FORMATS", "KNOWN_UNITS", "KINDS", "ImportSummary",
           "import_prices", "detect_format", "new_run_id"]

FORMATS: tuple[str, ...] = ("binance_kline", "timestamp_price", "riskdao_binance", "coinapi_ohlcv")

#: Quote units a reference price may be expressed in. Anything else is rejected so that a typo
#: ("USTD") cannot silently create a new unit.
KNOWN_UNITS: tuple[str, ...] = ("USD", "USDT", "USDC", "DAI", "BUSD", "EUR", "ETH", "WETH", "BTC")

#: What a stored price *is*, per format.
KINDS: dict[str, str] = {
    "close": "last trade price of a candle, at the candle's end (binance_kline, coinapi_ohlcv)",
    "mid": "(ask + bid) / 2 (riskdao_binance)",
    "price": "a point price of unspecified construction (timestamp_price)",
}

REFERENCE_PRICES = register_table(Table(
    "raw", "reference_prices",
    "Off-chain reference prices (CEX candles, bid/ask mids, generic price CSVs) imported from "
    "files by `deficit import-prices`. One row per (source, pair, instant). Re-importing a "
    "source+pair replaces its rows atomically.",
    (
        Column("source", "VARCHAR", "label of the price source; defaults to the imported file's "
               "name (a re-import with the same source and pair replaces its rows)", False),
        Column("pair", "VARCHAR", "BASE/QUOTE, e.g. 'ETH/USD'; QUOTE always equals unit", False),
        Column("unit", "VARCHAR", "quote unit the price is expressed in, one of "
               + ", ".join(KNOWN_UNITS), False),
        Column("ts", "TIMESTAMPTZ", "instant the price refers to (UTC); same instant as ts_us",
               False),
        Column("ts_us", "UBIGINT", "instant as exact unix microseconds", False),
        Column("price_f64", "DOUBLE", "price in unit per 1 BASE as a float (a market reference "
               "price is a float by nature: averages, mids, last trades); the nearest double to "
               "price_text", False),
        Column("price_text", "VARCHAR", "the price as exact decimal text: verbatim from the file, "
               "or the exact decimal (ask+bid)/2 for kind 'mid'", False),
        Column("kind", "VARCHAR", "what the price is: " + "; ".join(
            f"'{k}' = {v}" for k, v in KINDS.items()), False),
        Column("format", "VARCHAR", "file format it was read from: " + ", ".join(FORMATS), False),
        Column("file_sha256", "VARCHAR", "SHA-256 (hex) of the imported file's bytes", False),
        Column("line", "UINTEGER", "1-based line in the file the row came from (for JSON: where "
               "the bar's object starts)", False),
        Column("run_id", "VARCHAR", "import run that wrote the row (meta.runs)", False),
    ),
    "ingest.prices", ("source", "pair", "ts_us")))

_COLS = REFERENCE_PRICES.column_names()

KLINE_HEADER: tuple[str, ...] = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
    "taker_buy_volume", "taker_buy_quote_volume", "ignore")

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MAX_TS_US = 253402300800 * 10**6  # 10000-01-01: beyond DuckDB/Arrow-friendly timestamps
_PAIR_RE = re.compile(r"^([A-Za-z0-9.]+)/([A-Za-z0-9.]+)$")
_NUM_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_UNIX_RE = re.compile(r"^\d+(\.\d+)?$")
_INT_RE = re.compile(r"^\d+$")
_ISO_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$")


@dataclass(frozen=True)
class ImportSummary:
    """What one :func:`import_prices` call stored."""

    rows: int
    first_ts: dt.datetime
    last_ts: dt.datetime
    source: str
    pair: str
    format: str
    unit: str = ""
    kind: str = ""
    file_sha256: str = ""
    run_id: str = ""
    replaced: int = 0  # rows of the same source+pair deleted by this import
    #: of those, the rows outside this file's range (first_ts .. last_ts): not replaced by a row
    #: of this file but gone (a file that continues a series needs its own source)
    dropped: int = 0
    dropped_first_ts: dt.datetime | None = None
    dropped_last_ts: dt.datetime | None = None


@dataclass(frozen=True)
class _Row:
    ts_us: int
    price_text: str
    price_f64: float
    line: int


def new_run_id() -> str:
    """A time-ordered run id, the same shape as ingest runs' (``20261125T171500Z-3f9a1c2e``)."""
    from .engine import new_run_id as _engine_run_id  # lazy: keep this module import light

    return _engine_run_id()


def us_to_datetime(ts_us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=ts_us)


# ------------------------------------------------------------------------------ field parsing
class _FieldError(ValueError):
    """A bad value; the caller adds path, line and field."""


def _parse_price(text: str) -> tuple[str, float]:
    t = text.strip()
    if not t:
        raise _FieldError("empty price")
    low = t.lower().lstrip("+-")
    if low in ("nan", "snan"):
        raise _FieldError(f"price is NaN ({t!r})")
    if low in ("inf", "infinity"):
        raise _FieldError(f"price is not finite ({t!r})")
    if not _NUM_RE.match(t):
        raise _FieldError(f"price is not a number: {t!r}")
    d = Decimal(t)
    if d <= 0:
        raise _FieldError(f"price must be positive, got {t}")
    f = float(d)
    if not math.isfinite(f) or f == 0.0:
        raise _FieldError(f"price {t} is outside the range of a double")
    return t, f


def _check_ts_range(ts_us: int, text: str) -> int:
    if not 0 <= ts_us < _MAX_TS_US:
        raise _FieldError(f"timestamp {text!r} is outside 1970-01-01 .. 9999-12-31")
    return ts_us


def _decimal_to_us(d: Decimal, scale: int, text: str) -> int:
    """``d * scale`` as an exact integer, or an error if it has a fraction of a microsecond."""
    v = d * scale
    if v != v.to_integral_value():
        raise _FieldError(f"timestamp {text!r} has sub-microsecond precision")
    return _check_ts_range(int(v), text)


def _parse_iso(text: str) -> int:
    m = _ISO_RE.match(text)
    if not m:
        raise _FieldError(f"timestamp {text!r} is neither unix seconds nor ISO-8601")
    date, clock, frac, off = m.groups()
    if frac and clock.count(":") == 1:
        raise _FieldError(f"timestamp {text!r} has a fraction of a minute (hh:mm.f); write the "
                          "seconds (hh:mm:ss.f)")
    if off is None:
        raise _FieldError(f"timestamp {text!r} has no UTC offset: a naive time is ambiguous "
                          "(append 'Z' or '+00:00')")
    if off in ("Z", "z"):
        off = "+00:00"
    elif len(off) == 3:
        off += ":00"
    elif ":" not in off:
        off = off[:3] + ":" + off[3:]
    try:
        base = dt.datetime.fromisoformat(f"{date}T{clock}{off}")
    except ValueError as e:
        raise _FieldError(f"timestamp {text!r} is not a valid ISO-8601 time: {e}") from None
    us = 0
    if frac:
        if frac[6:].strip("0"):
            raise _FieldError(f"timestamp {text!r} has sub-microsecond precision")
        us = int(frac[:6].ljust(6, "0"))
    delta = base - _EPOCH
    total = (delta.days * 86400 + delta.seconds) * 10**6 + delta.microseconds + us
    return _check_ts_range(total, text)


def _parse_unix_or_iso(text: str) -> int:
    t = text.strip()
    if not t:
        raise _FieldError("empty timestamp")
    if _UNIX_RE.match(t):
        digits = len(t.split(".")[0].lstrip("0"))
        if digits != 10:  # as the other formats' digit rules: a ms/µs value is not seconds
            unit = {13: "unix milliseconds", 16: "unix microseconds", 19: "unix nanoseconds"}.get(digits)
            raise _FieldError(
                f"timestamp {t!r} is not unix seconds (10 integer digits, 2001-09-09 .. 2286-11-20)"
                + (f": it looks like {unit}" if unit else "")
                + "; convert it to unix seconds or to ISO-8601 with an offset")
        return _decimal_to_us(Decimal(t), 10**6, t)
    return _parse_iso(t)


def _parse_binance_time(text: str) -> tuple[int, str]:
    """Binance open/close time: 13 digits = ms, 16 digits = µs (spot dumps since 2025)."""
    t = text.strip()
    if not _INT_RE.match(t):
        raise _FieldError(f"time is not an integer: {t!r}")
    v = int(t)
    if 10**12 <= v < 10**13:
        return _check_ts_range(v * 1000, t), "ms"
    if 10**15 <= v < 10**16:
        return _check_ts_range(v, t), "us"
    raise _FieldError(f"time {t} is neither unix milliseconds (13 digits) nor microseconds "
                      "(16 digits)")


def _parse_float_us(text: str) -> int:
    """riskdao ``timestamp_x``: float microseconds, rounded half-even to an integer exactly."""
    t = text.strip()
    if not t:
        raise _FieldError("empty timestamp")
    if not _NUM_RE.match(t) or t.startswith("-"):
        raise _FieldError(f"timestamp is not a non-negative number: {t!r}")
    v = int(Decimal(t).to_integral_value(rounding=ROUND_HALF_EVEN))
    if not 10**15 <= v < 10**16:  # as Binance's 16-digit rule: a ms or s value is not µs
        raise _FieldError(f"timestamp {t} is not unix microseconds (16 digits, 2001..2286)")
    return _check_ts_range(v, t)


def _exact_mid(ask: str, bid: str) -> str:
    with localcontext() as ctx:
        ctx.prec = 200
        ctx.traps[Inexact] = True
        mid = (Decimal(ask) + Decimal(bid)) / 2
    return format(mid, "f")


# ------------------------------------------------------------------------------ readers
@dataclass
class _Ctx:
    path: str

    def err(self, message: str, line: int | None = None, field: str | None = None
            ) -> PriceImportError:
        return PriceImportError(self.path, message, line=line, field=field)


def _csv_rows(ctx: _Ctx, text: str) -> Iterator[tuple[int, list[str]]]:
    """(line, fields) for every non-blank CSV record."""
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        try:
            rec = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise ctx.err(f"malformed CSV: {e}", reader.line_num or 1, None) from None
        if not rec or all(not f.strip() for f in rec):
            continue
        yield reader.line_num, [f.strip() for f in rec]


class _Monotonic:
    def __init__(self, ctx: _Ctx, field: str):
        self.ctx, self.field = ctx, field
        self.prev: tuple[int, int] | None = None  # (ts_us, line)

    def check(self, ts_us: int, line: int) -> None:
        if self.prev is not None and ts_us <= self.prev[0]:
            pts, pline = self.prev
            what = "duplicate timestamp" if ts_us == pts else "timestamps not strictly increasing"
            raise self.ctx.err(
                f"{what}: {us_to_datetime(ts_us).isoformat()} (ts_us={ts_us}) is not after "
                f"{us_to_datetime(pts).isoformat()} (ts_us={pts}) on line {pline}",
                line, self.field)
        self.prev = (ts_us, line)


_T = TypeVar("_T")


def _field(ctx: _Ctx, line: int, field: str, fn: Callable[[str], _T], text: str) -> _T:
    try:
        return fn(text)
    except _FieldError as e:
        raise ctx.err(str(e), line, field) from None
    except (ArithmeticError, ValueError) as e:
        raise ctx.err(f"bad value {text!r}: {e!r}", line, field) from None


def _price(ctx: _Ctx, line: int, field: str, text: str) -> tuple[str, float]:
    return _field(ctx, line, field, _parse_price, text)


def _read_binance_kline(ctx: _Ctx, text: str) -> list[_Row]:
    rows: list[_Row] = []
    mono = _Monotonic(ctx, "close_time")
    first = True
    ncol = len(KLINE_HEADER)
    unit_seen: str | None = None
    for line, rec in _csv_rows(ctx, text):
        if first:
            first = False
            if rec and not _INT_RE.match(rec[0]):
                # The documented header; variants (other volume names) are accepted as long as
                # open_time, close and close_time sit where Binance puts them.
                low = [h.lower() for h in rec]
                if len(low) < 7 or (low[0], low[4], low[6]) != ("open_time", "close",
                                                                 "close_time"):
                    raise ctx.err(f"unexpected binance_kline header {','.join(rec)!r}; expected "
                                  f"{','.join(KLINE_HEADER)!r} or no header", line, "header")
                ncol = len(rec)
                continue
        if len(rec) != ncol:
            raise ctx.err(f"expected {ncol} columns, got {len(rec)}", line, "columns")
        ot, ot_unit = _field(ctx, line, "open_time", _parse_binance_time, rec[0])
        ct, ct_unit = _field(ctx, line, "close_time", _parse_binance_time, rec[6])
        if ot_unit != ct_unit:
            raise ctx.err(f"open_time is in {ot_unit} but close_time in {ct_unit}", line,
                          "close_time")
        if unit_seen is not None and ct_unit != unit_seen:
            raise ctx.err(f"time unit changes from {unit_seen} to {ct_unit} within the file",
                          line, "close_time")
        unit_seen = ct_unit
        if ct < ot:
            raise ctx.err(f"close_time {rec[6]} is before open_time {rec[0]}", line, "close_time")
        ptxt, pf = _price(ctx, line, "close", rec[4])
        mono.check(ct, line)
        rows.append(_Row(ct, ptxt, pf, line))
    return rows


def _header_index(ctx: _Ctx, line: int, header: list[str], names: tuple[str, ...],
                  fmt: str) -> list[int]:
    low = [h.lower() for h in header]
    missing = [n for n in names if n not in low]
    if missing:
        raise ctx.err(f"{fmt} header {','.join(header)!r} lacks column(s) {', '.join(missing)}",
                      line, "header")
    return [low.index(n) for n in names]


def _read_timestamp_price(ctx: _Ctx, text: str) -> list[_Row]:
    rows: list[_Row] = []
    mono = _Monotonic(ctx, "timestamp")
    idx: list[int] | None = None
    for line, rec in _csv_rows(ctx, text):
        if idx is None:
            idx = _header_index(ctx, line, rec, ("timestamp", "price"), "timestamp_price")
            ncol = len(rec)
            continue
        if len(rec) != ncol:
            raise ctx.err(f"expected {ncol} columns, got {len(rec)}", line, "columns")
        ts = _field(ctx, line, "timestamp", _parse_unix_or_iso, rec[idx[0]])
        ptxt, pf = _price(ctx, line, "price", rec[idx[1]])
        mono.check(ts, line)
        rows.append(_Row(ts, ptxt, pf, line))
    if idx is None:
        raise ctx.err("no header: expected 'timestamp,price'", 1, "header")
    return rows


def _read_riskdao(ctx: _Ctx, text: str) -> list[_Row]:
    rows: list[_Row] = []
    mono = _Monotonic(ctx, "timestamp_x")
    idx: list[int] | None = None
    for line, rec in _csv_rows(ctx, text):
        if idx is None:
            idx = _header_index(ctx, line, rec, ("timestamp_x", "ask_price", "bid_price"),
                                "riskdao_binance")
            ncol = len(rec)
            continue
        if len(rec) != ncol:
            raise ctx.err(f"expected {ncol} columns, got {len(rec)}", line, "columns")
        ts = _field(ctx, line, "timestamp_x", _parse_float_us, rec[idx[0]])
        ask, _ = _price(ctx, line, "ask_price", rec[idx[1]])
        bid, _ = _price(ctx, line, "bid_price", rec[idx[2]])
        try:
            mid = _exact_mid(ask, bid)
        except ArithmeticError:
            raise ctx.err(f"(ask + bid) / 2 of {ask} and {bid} is not exact within 200 digits",
                          line, "ask_price") from None
        mono.check(ts, line)
        rows.append(_Row(ts, mid, float(Decimal(mid)), line))
    if idx is None:
        raise ctx.err("no header: expected 'timestamp_x,ask_price,bid_price,...'", 1, "header")
    return rows


class _JsonNumber(str):
    """The literal text of a JSON number (or NaN/Infinity), distinct from a JSON string."""


def _json_elements(ctx: _Ctx, text: str) -> Iterator[tuple[int, object]]:
    """(start line, value) of each element of a top-level JSON array; numbers kept as text."""
    dec = json.JSONDecoder(parse_float=_JsonNumber, parse_int=_JsonNumber,
                           parse_constant=_JsonNumber)  # NaN/Infinity kept as text

    def line_of(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    def skip_ws(pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

    pos = skip_ws(0)
    if pos >= len(text) or text[pos] != "[":
        raise ctx.err("expected a JSON array of bars", line_of(pos), None)
    pos = skip_ws(pos + 1)
    if pos < len(text) and text[pos] == "]":
        pos = skip_ws(pos + 1)
    else:
        while True:
            try:
                val, end = dec.raw_decode(text, pos)
            except json.JSONDecodeError as e:
                raise ctx.err(f"invalid JSON: {e.msg}", e.lineno, None) from None
            yield line_of(pos), val
            pos = skip_ws(end)
            if pos < len(text) and text[pos] == ",":
                pos = skip_ws(pos + 1)
                continue
            if pos < len(text) and text[pos] == "]":
                pos = skip_ws(pos + 1)
                break
            raise ctx.err("invalid JSON: expected ',' or ']' after an array element",
                          line_of(pos), None)
    if pos != len(text):
        raise ctx.err("invalid JSON: extra data after the array", line_of(pos), None)


def _read_coinapi(ctx: _Ctx, text: str) -> list[_Row]:
    rows: list[_Row] = []
    mono = _Monotonic(ctx, "time_period_end")
    for line, bar in _json_elements(ctx, text):
        if not isinstance(bar, dict):
            raise ctx.err("bar is not a JSON object", line, None)
        for key in ("time_period_end", "price_close"):
            if key not in bar or bar[key] is None:
                raise ctx.err(f"bar has no {key}", line, key)
        end = bar["time_period_end"]
        if not isinstance(end, str):
            raise ctx.err(f"time_period_end is not a string: {end!r}", line, "time_period_end")
        ts = _field(ctx, line, "time_period_end", lambda t: _parse_iso(t.strip()), end)
        close = bar["price_close"]
        if not isinstance(close, _JsonNumber):
            raise ctx.err(f"price_close is not a JSON number: {close!r}", line, "price_close")
        ptxt, pf = _price(ctx, line, "price_close", str(close))
        mono.check(ts, line)
        rows.append(_Row(ts, ptxt, pf, line))
    return rows


_READERS: dict[str, tuple[Callable[[_Ctx, str], list[_Row]], str]] = {
    "binance_kline": (_read_binance_kline, "close"),
    "timestamp_price": (_read_timestamp_price, "price"),
    "riskdao_binance": (_read_riskdao, "mid"),
    "coinapi_ohlcv": (_read_coinapi, "close"),
}


def detect_format(text: str, path: str = "<text>") -> str:
    """The format of a file's text, from its header or shape; PriceImportError if unknown."""
    ctx = _Ctx(path)
    accepted = ("accepted formats: binance_kline (Binance kline CSV, with or without header), "
                "timestamp_price (CSV with header 'timestamp,price'), riskdao_binance (CSV with "
                "timestamp_x,ask_price,bid_price), coinapi_ohlcv (JSON array of bars with "
                "time_period_end and price_close)")
    stripped = text.lstrip()
    if not stripped:
        raise ctx.err("file is empty", 1, None)
    first_line = text.count("\n", 0, len(text) - len(stripped)) + 1
    if stripped[0] == "{":
        raise ctx.err(f"unrecognised JSON shape (an object, not an array of bars); {accepted}",
                      first_line, None)
    if stripped[0] == "[":
        m = re.match(r"\[\s*\{", stripped)
        if m and '"time_period_end"' in stripped[:4000] and '"price_close"' in stripped[:4000]:
            return "coinapi_ohlcv"
        if re.match(r"\[\s*\]", stripped):
            return "coinapi_ohlcv"
        raise ctx.err(f"unrecognised JSON shape; {accepted}", first_line, None)
    for line, rec in _csv_rows(ctx, text):
        low = [f.lower() for f in rec]
        if low == ["timestamp", "price"] or (
                "timestamp" in low and "price" in low and len(low) == 2):
            return "timestamp_price"
        if {"timestamp_x", "ask_price", "bid_price"} <= set(low):
            return "riskdao_binance"
        if low and low[0] == "open_time":
            return "binance_kline"
        if len(rec) == len(KLINE_HEADER) and _INT_RE.match(rec[0]) and _INT_RE.match(rec[6]):
            return "binance_kline"
        raise ctx.err(f"unrecognised file shape (first record {','.join(rec)[:80]!r}); "
                      f"{accepted}", line, "header")
    raise ctx.err("file is empty", 1, None)


# ------------------------------------------------------------------------------ import
def _validate_args(path: str, pair: str, unit: str, fmt: str | None) -> None:
    if unit not in KNOWN_UNITS:
        raise PriceImportError(path, f"unknown unit {unit!r}; known units: "
                               f"{', '.join(KNOWN_UNITS)}", field="unit")
    m = _PAIR_RE.match(pair)
    if not m:
        raise PriceImportError(path, f"pair {pair!r} is not shaped like 'BASE/QUOTE' "
                               "(e.g. 'ETH/USD')", field="pair")
    if m.group(2) != unit:
        raise PriceImportError(path, f"pair {pair!r} is quoted in {m.group(2)!r} but unit is "
                               f"{unit!r}", field="pair")
    if fmt is not None and fmt not in FORMATS:
        raise PriceImportError(path, f"unknown format {fmt!r}; accepted formats: "
                               f"{', '.join(FORMATS)}", field="format")


def _read_text(path: str, data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise PriceImportError(path, f"not UTF-8 text ({e.reason} at byte {e.start})",
                               line=line) from None
    return text[1:] if text.startswith("\ufeff") else text


def parse_prices(path: str | Path, *, fmt: str | None = None
                 ) -> tuple[str, list[tuple[int, str, float, int]], str, str]:
    """Read and validate a price file without touching a warehouse.

    Returns (format, [(ts_us, price_text, price_f64, line)], kind, sha256).
    """
    p = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise PriceImportError(p, f"cannot read file: {e.strerror or e}") from None
    sha = hashlib.sha256(data).hexdigest()
    text = _read_text(p, data)
    if not text.strip():
        raise PriceImportError(p, "file is empty", line=1)
    if fmt is None:
        fmt = detect_format(text, p)
    elif fmt not in _READERS:
        raise PriceImportError(p, f"unknown format {fmt!r}; accepted formats: "
                               f"{', '.join(FORMATS)}", field="format")
    reader, kind = _READERS[fmt]
    rows = reader(_Ctx(p), text)
    if not rows:
        raise PriceImportError(p, f"no price rows in the file (format {fmt})",
                               line=text.count("\n") + 1)
    return fmt, [(r.ts_us, r.price_text, r.price_f64, r.line) for r in rows], kind, sha


def _code_version() -> str:
    from .engine import code_version  # lazy: keep this module import light

    return code_version()


def _arrow_rows(rows: list[tuple[int, str, float, int]], *, source: str, pair: str, unit: str,
                kind: str, fmt: str, sha: str, run_id: str) -> pa.Table:
    n = len(rows)
    ts_us = [r[0] for r in rows]
    return pa.table({
        "source": pa.array([source] * n, pa.string()),
        "pair": pa.array([pair] * n, pa.string()),
        "unit": pa.array([unit] * n, pa.string()),
        "ts": pa.array(ts_us, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "ts_us": pa.array(ts_us, pa.uint64()),
        "price_f64": pa.array([r[2] for r in rows], pa.float64()),
        "price_text": pa.array([r[1] for r in rows], pa.string()),
        "kind": pa.array([kind] * n, pa.string()),
        "format": pa.array([fmt] * n, pa.string()),
        "file_sha256": pa.array([sha] * n, pa.string()),
        "line": pa.array([r[3] for r in rows], pa.uint32()),
        "run_id": pa.array([run_id] * n, pa.string()),
    })


def _record_run(con: duckdb.DuckDBPyConnection, run_id: str, started: dt.datetime,
                status: str, message: str, datasets: list[str]) -> None:
    con.execute(
        f"INSERT INTO {RUNS.fqn} (run_id, command, chain_id, endpoint_label, datasets, "
        "from_block, to_block, finality, code_version, started_at, finished_at, status, message) "
        "VALUES (?, 'import-prices', NULL, NULL, ?, NULL, NULL, NULL, ?, ?, ?, ?, ?)",
        [run_id, datasets, _code_version(), started, utcnow(), status, message])


def import_prices(wh: Warehouse, path: str | Path, *, fmt: str | None = None, pair: str,
                  unit: str, source: str | None = None, run_id: str) -> ImportSummary:
    """Validate a price file completely, then replace (source, pair)'s rows with it atomically.

    On any error a ``meta.runs`` row with status ``failed`` is written, the error is raised as
    :class:`PriceImportError` and ``raw.reference_prices`` is unchanged.
    """
    started = utcnow()
    p = str(path)
    src = source if source is not None else Path(path).name
    datasets = [f"reference_prices:{src}:{pair}"]
    wh.ensure(REFERENCE_PRICES, RUNS)
    try:
        if not src.strip():
            raise PriceImportError(p, "source label is empty", field="source")
        _validate_args(p, pair, unit, fmt)
        fmt_used, rows, kind, sha = parse_prices(path, fmt=fmt)
    except PriceImportError as e:
        _record_failure(wh, e, run_id, started, datasets)
        raise
    tbl = _arrow_rows(rows, source=src, pair=pair, unit=unit, kind=kind, fmt=fmt_used, sha=sha,
                      run_id=run_id)
    first, last = us_to_datetime(rows[0][0]), us_to_datetime(rows[-1][0])
    msg = (f"imported {len(rows)} {kind} prices for {pair} from {p} ({fmt_used}, sha256 "
           f"{sha[:12]}…) as source {src!r}, {first.isoformat()} .. {last.isoformat()}")
    cols = ", ".join(f'"{c}"' for c in _COLS)
    stage = f"_prices_stage_{secrets.token_hex(4)}"
    try:
        with wh.transaction() as con:
            old = fetch_one(con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE ts_us < ? OR ts_us > ?), min(ts_us) FILTER "
                f"(WHERE ts_us < ? OR ts_us > ?), max(ts_us) FILTER (WHERE ts_us < ? OR ts_us > ?) FROM "
                f"{REFERENCE_PRICES.fqn} WHERE source=? AND pair=?",
                [rows[0][0], rows[-1][0]] * 3 + [src, pair]))
            replaced = int(old[0]) if old else 0
            dropped = int(old[1]) if old else 0
            span = (us_to_datetime(int(old[2])), us_to_datetime(int(old[3]))) if dropped else None
            con.execute(f"DELETE FROM {REFERENCE_PRICES.fqn} WHERE source=? AND pair=?",
                        [src, pair])
            con.register(stage, tbl)
            try:
                con.execute(f"INSERT INTO {REFERENCE_PRICES.fqn} ({cols}) SELECT {cols} "
                            f"FROM {stage} ORDER BY ts_us")
            finally:
                unregister(con, stage)
            if replaced:
                msg += f"; replaced {replaced} rows"
            if span:
                msg += (f", {dropped} of them outside this file's range ({span[0].isoformat()} .. "
                        f"{span[1].isoformat()}) and now gone")
            _record_run(con, run_id, started, "ok", msg, datasets)
    except Exception as e:
        _record_failure(wh, e, run_id, started, datasets)
        raise
    return ImportSummary(rows=len(rows), first_ts=first, last_ts=last, source=src, pair=pair,
                         format=fmt_used, unit=unit, kind=kind, file_sha256=sha, run_id=run_id,
                         replaced=replaced, dropped=dropped,
                         dropped_first_ts=span[0] if span else None,
                         dropped_last_ts=span[1] if span else None)


def _record_failure(wh: Warehouse, err: BaseException, run_id: str, started: dt.datetime,
                    datasets: list[str]) -> None:
    try:
        with wh.transaction() as con:
            _record_run(con, run_id, started, "failed", str(err), datasets)
    except Exception as e:  # noqa: BLE001 - never mask the import error itself
        err.add_note(f"(could not record the failed run in {RUNS.fqn}: {e})")
