"""Reference-price import: formats, exactness, validation, atomic replacement, idempotence."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import prices
from ingest.errors import PriceImportError
from ingest.prices import REFERENCE_PRICES, import_prices, new_run_id
from ingest.schema import registered_tables
from ingest.warehouse import Warehouse

from ..realdata import REAL_DATA

REAL = REAL_DATA
RISKDAO = REAL / "riskdao-binance-futures-ethusdt-2021-01" / (
    "ethusdt_binance_futures_2021-01-10_to_2021-01-12.csv")
COINAPI = REAL / "stablesims-crash-feeds" / "eth_01-11-2021.json"
GAS = REAL / "stablesims-crash-feeds" / "gas_03-12-2020.json"

needs_real = pytest.mark.skipif(not RISKDAO.exists() or not COINAPI.exists(),
                                reason="real reference files not present")

KLINE_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
                "taker_buy_volume,taker_buy_quote_volume,ignore")
UTC = dt.UTC


@pytest.fixture
def wh(tmp_path: Path):
    w = Warehouse(tmp_path / "w.duckdb")
    yield w
    w.close()


def rows(wh: Warehouse, source: str | None = None, with_run: bool = True) -> list[tuple]:
    cols = [c for c in REFERENCE_PRICES.column_names() if with_run or c != "run_id"]
    sel = ", ".join(f'"{c}"' for c in cols)
    where, args = ("WHERE source = ?", [source]) if source else ("", [])
    return wh.con.execute(f"SELECT {sel} FROM raw.reference_prices {where} "
                          "ORDER BY source, pair, ts_us", args).fetchall()


def runs(wh: Warehouse) -> list[tuple]:
    return wh.con.execute("SELECT run_id, command, status, message FROM meta.runs "
                          "ORDER BY started_at").fetchall()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def us(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, micro: int = 0) -> int:
    delta = dt.datetime(y, mo, d, h, mi, s, micro, tzinfo=UTC) - dt.datetime(1970, 1, 1,
                                                                             tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 10**6 + delta.microseconds


# ------------------------------------------------------------------------------ declaration
def test_table_is_registered_and_documented() -> None:
    assert REFERENCE_PRICES in registered_tables()
    assert REFERENCE_PRICES.fqn == "raw.reference_prices"
    assert REFERENCE_PRICES.sort_key == ("source", "pair", "ts_us")
    types = {c.name: c.type for c in REFERENCE_PRICES.columns}
    assert types["ts"] == "TIMESTAMPTZ" and types["ts_us"] == "UBIGINT"
    assert types["price_f64"] == "DOUBLE" and types["price_text"] == "VARCHAR"
    assert types["line"] == "UINTEGER"
    assert all(c.doc for c in REFERENCE_PRICES.columns)


def test_new_run_id_is_time_ordered_and_unique() -> None:
    ids = [new_run_id() for _ in range(50)]
    assert len(set(ids)) == 50
    stamps = [i.split("-")[0] for i in ids]
    assert stamps == sorted(stamps)


# ------------------------------------------------------------------------------ real files
@needs_real
def test_riskdao_csv(wh: Warehouse) -> None:
    rid = new_run_id()
    s = import_prices(wh, RISKDAO, pair="ETH/USDT", unit="USDT", run_id=rid)
    assert s.rows == 4320 and s.format == "riskdao_binance" and s.kind == "mid"
    assert s.source == RISKDAO.name and s.pair == "ETH/USDT"
    assert s.first_ts == dt.datetime(2021, 1, 10, 0, 0, 29, 852629, tzinfo=UTC)
    assert s.last_ts == dt.datetime(2021, 1, 12, 23, 59, 29, 30122, tzinfo=UTC)
    got = rows(wh)
    assert len(got) == 4320
    first = dict(zip(REFERENCE_PRICES.column_names(), got[0], strict=True))
    mid = (Decimal("1280.4272222222223") + Decimal("1280.1202329749103")) / 2
    assert first["price_text"] == "1280.2737275985663" == format(mid, "f")
    assert Decimal(first["price_text"]) * 2 == (Decimal("1280.4272222222223")
                                                + Decimal("1280.1202329749103"))
    assert first["price_f64"] == float(mid)
    # 1610236829852628.8 µs rounds to ...629 µs (matches the file's datetime_utc column)
    assert first["ts_us"] == 1610236829852629
    assert first["ts"] == dt.datetime(2021, 1, 10, 0, 0, 29, 852629, tzinfo=UTC)
    assert first["line"] == 2 and first["kind"] == "mid" and first["unit"] == "USDT"
    assert first["format"] == "riskdao_binance" and first["run_id"] == rid
    assert len(first["file_sha256"]) == 64
    # ts and ts_us agree on every row; line numbers are file lines
    bad = wh.con.execute("SELECT count(*) FROM raw.reference_prices "
                         "WHERE epoch_us(ts) <> ts_us").fetchone()
    assert bad == (0,)
    assert got[-1][REFERENCE_PRICES.column_names().index("line")] == 4321
    assert runs(wh)[0][1:3] == ("import-prices", "ok")


@needs_real
def test_coinapi_json(wh: Warehouse) -> None:
    s = import_prices(wh, COINAPI, pair="ETH/USD", unit="USD", run_id=new_run_id())
    assert s.rows == 144 and s.format == "coinapi_ohlcv" and s.kind == "close"
    assert s.first_ts == dt.datetime(2021, 1, 11, 0, 10, tzinfo=UTC)  # end of the first bar
    assert s.last_ts == dt.datetime(2021, 1, 12, 0, 0, tzinfo=UTC)
    by_ts = {r[0]: r[1:] for r in wh.con.execute(
        "SELECT ts_us, price_text, price_f64, line, kind FROM raw.reference_prices").fetchall()}
    # first bar: close 1232.55 at 00:10, object starts on line 2
    assert by_ts[us(2021, 1, 11, 0, 10)] == ("1232.550000000", 1232.55, 2, "close")
    # the crash bar 16:30-16:40 (low 902.00 per PROVENANCE) closes at 915.77, the day's lowest close
    assert by_ts[us(2021, 1, 11, 16, 40)] == ("915.770000000", 915.77, 1190, "close")
    low = wh.con.execute("SELECT min(price_f64), arg_min(ts_us, price_f64) "
                         "FROM raw.reference_prices").fetchone()
    assert low == (915.77, us(2021, 1, 11, 16, 40))
    assert by_ts[us(2021, 1, 12)][:2] == ("1089.010000000", 1089.01)
    # every stored close equals the file's price_close text (read independently)
    bars = json.loads(COINAPI.read_text(), parse_float=str)
    assert sorted(r[0] for r in by_ts.values()) == sorted(b["price_close"] for b in bars)
    assert min(Decimal(b["price_low"]) for b in bars) == Decimal("902")


@needs_real
def test_unknown_shape_lists_accepted_formats(wh: Warehouse) -> None:
    with pytest.raises(PriceImportError) as ei:
        import_prices(wh, GAS, pair="ETH/USD", unit="USD", run_id=new_run_id())
    msg = str(ei.value)
    for f in prices.FORMATS:
        assert f in msg
    assert rows(wh) == []
    assert runs(wh)[0][2] == "failed"


# ------------------------------------------------------------------------------ binance klines
def _kline(open_time: int, close: str, close_time: int) -> str:
    return (f"{open_time},{close},{close},{close},{close},1.00000000,{close_time},"
            f"{close}0,3,0.5,{close},0")


@pytest.mark.parametrize("header", [True, False])
@pytest.mark.parametrize("scale", [1000, 1])  # ms (futures, old spot) / µs (spot since 2025)
def test_binance_kline(wh: Warehouse, tmp_path: Path, header: bool, scale: int) -> None:
    base_us = us(2025, 1, 1) if scale == 1 else us(2023, 7, 1)
    lines = [KLINE_HEADER] if header else []
    closes = ["30472.00000000", "30480.10000000", "30479.99000000"]
    for i, c in enumerate(closes):
        ot = (base_us + i * 60_000_000) // 1000 if scale == 1000 else base_us + i * 60_000_000
        ct = ot + (59_999 if scale == 1000 else 59_999_999)
        lines.append(_kline(ot, c, ct))
    f = write(tmp_path / "ETHUSDT-1m.csv", "\n".join(lines) + "\n")
    s = import_prices(wh, f, pair="ETH/USDT", unit="USDT", run_id=new_run_id())
    assert s.format == "binance_kline" and s.rows == 3 and s.kind == "close"
    got = wh.con.execute("SELECT ts_us, price_text, price_f64, line, kind, format "
                         "FROM raw.reference_prices ORDER BY ts_us").fetchall()
    off = 1 if header else 0
    for i, (ts_us, text, f64, line, kind, fmt) in enumerate(got):
        assert ts_us == base_us + i * 60_000_000 + 59_999_000 + (999 if scale == 1 else 0)
        assert text == closes[i] and f64 == float(closes[i])
        assert line == i + 1 + off and kind == "close" and fmt == "binance_kline"
    assert s.first_ts == dt.datetime.fromtimestamp(got[0][0] / 1e6, UTC)
    # explicit format works too
    s2 = import_prices(wh, f, fmt="binance_kline", pair="ETH/USDT", unit="USDT",
                       run_id=new_run_id())
    assert s2.rows == 3 and s2.replaced == 3


def test_binance_kline_bad_rows(wh: Warehouse, tmp_path: Path) -> None:
    good = [_kline(1688169600000, "1.5", 1688169659999),
            _kline(1688169660000, "1.6", 1688169719999)]
    f = write(tmp_path / "k.csv", "\n".join(good) + "\n")
    import_prices(wh, f, pair="ETH/USDT", unit="USDT", source="k", run_id=new_run_id())
    before = rows(wh)
    cases = [
        (good + [_kline(1688169720000, "-1.6", 1688169779999)], 3, "close"),
        (good + [_kline(1688169720000, "x", 1688169779999)], 3, "close"),
        (good + [_kline(1688169600000, "1.7", 1688169659999)], 3, "close_time"),
        (good + [_kline(1735689600000000, "1.7", 1735689659999999)], 3, "close_time"),  # ms→µs
        (good + [_kline(1688169720000, "1.7", 168816977999)], 3, "close_time"),  # 12 digits
        ([good[0], "1,2,3"], 2, "columns"),
    ]
    for lines, line, field in cases:
        write(f, "\n".join(lines) + "\n")
        with pytest.raises(PriceImportError) as ei:
            import_prices(wh, f, pair="ETH/USDT", unit="USDT", source="k", run_id=new_run_id())
        assert (ei.value.line, ei.value.field) == (line, field), str(ei.value)
        assert f":{line} [{field}]" in str(ei.value)
        assert rows(wh) == before


def test_binance_kline_header_variants(wh: Warehouse, tmp_path: Path) -> None:
    # binance.us-style names for the volume columns are accepted; a wrong layout is not
    hdr = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
           "taker_buy_base_volume,taker_buy_quote_volume,ignore")
    f = write(tmp_path / "k.csv", hdr + "\n" + _kline(1688169600000, "2.5", 1688169659999) + "\n")
    assert import_prices(wh, f, pair="ETH/USDT", unit="USDT", run_id=new_run_id()).rows == 1
    write(f, "open_time,close,close_time\n1688169600000,2.5,1688169659999\n")
    with pytest.raises(PriceImportError) as ei:
        import_prices(wh, f, fmt="binance_kline", pair="ETH/USDT", unit="USDT",
                      run_id=new_run_id())
    assert (ei.value.line, ei.value.field) == (1, "header")


def test_malformed_csv_and_encoding(wh: Warehouse, tmp_path: Path) -> None:
    f = write(tmp_path / "n.csv", "timestamp,price\n1600000000,1\n1600000060,\x002\n")
    with pytest.raises(PriceImportError) as ei:
        import_prices(wh, f, pair="ETH/USD", unit="USD", run_id=new_run_id())
    assert ei.value.line == 3
    f.write_bytes(b"timestamp,price\n1600000000,1\n1600000060,\xff2\n")
    with pytest.raises(PriceImportError, match="UTF-8") as ei:
        import_prices(wh, f, pair="ETH/USD", unit="USD", run_id=new_run_id())
    assert ei.value.line == 3
    assert rows(wh) == []


# ------------------------------------------------------------------------------ timestamp,price
def test_timestamp_price_unix_and_iso(wh: Warehouse, tmp_path: Path) -> None:
    f = write(tmp_path / "p.csv", "timestamp,price\n"
              "1610236800,1280.5\n"
              "1610236860.25,1281\n"
              "2021-01-10T00:02:00Z,1282.000001\n"
              "2021-01-10T01:03:00.5+01:00,0.00000001\n"
              "\n"
              "2021-01-10 00:04:00.123456+00:00,1e3\n")
    s = import_prices(wh, f, pair="ETH/USD", unit="USD", run_id=new_run_id())
    assert s.format == "timestamp_price" and s.rows == 5 and s.source == "p.csv"
    got = wh.con.execute("SELECT ts_us, price_text, line, kind FROM raw.reference_prices "
                         "ORDER BY ts_us").fetchall()
    assert got == [
        (1610236800_000000, "1280.5", 2, "price"),
        (1610236860_250000, "1281", 3, "price"),
        (1610236920_000000, "1282.000001", 4, "price"),
        (1610236980_500000, "0.00000001", 5, "price"),
        (1610237040_123456, "1e3", 7, "price"),
    ]


def _good_ts_file(tmp_path: Path) -> Path:
    return write(tmp_path / "feed.csv", "timestamp,price\n1600000000,100\n1600000060,101\n"
                 "1600000120,102\n")


BAD_TS_PRICE = [
    # (body lines after the header, expected line, expected field, message fragment)
    (["1600000000,100", "1600000060,101", "1600000030,102"], 4, "timestamp",
     "not strictly increasing"),
    (["1600000000,100", "1600000000,101"], 3, "timestamp", "duplicate"),
    (["1600000000,100", "1600000060,NaN"], 3, "price", "NaN"),
    (["1600000000,100", "1600000060,nan"], 3, "price", "NaN"),
    (["1600000000,100", "1600000060,inf"], 3, "price", "finite"),
    (["1600000000,-5"], 2, "price", "positive"),
    (["1600000000,100", "1600000060,0"], 3, "price", "positive"),
    (["1600000000,100", "1600000060,0.000"], 3, "price", "positive"),
    (["1600000000,100", "1600000060,"], 3, "price", "empty"),
    (["1600000000,100", "1600000060,12abc"], 3, "price", "not a number"),
    (["1600000000,100", "yesterday,101"], 3, "timestamp", "neither"),
    (["1600000000,100", "2020-09-13T12:27:40,101"], 3, "timestamp", "naive"),
    # a fraction of a *minute* (ISO 8601: 12:27.5 is 12:27:30) was read as 12:27:00.5
    (["1600000000,100", "2020-09-13T12:27.5Z,101"], 3, "timestamp", "fraction of a minute"),
    (["1600000000,100", "1600000060.0000001,101"], 3, "timestamp", "sub-microsecond"),
    (["1600000000,100", "1600000060,101,7"], 3, "columns", "columns"),
    (["1600000000,1e999999"], 2, "price", "double"),
    # unix seconds have 10 digits from 2001 to 2286: other lengths were read as seconds anyway,
    # 11 digits (deciseconds) in the 2470s and 8 (minutes) in 1970, or refused only as "outside
    # 1970 .. 9999" without saying they are milliseconds / microseconds
    (["1600000000,100", "16000000600,101"], 3, "timestamp", "not unix seconds (10 integer digits"),
    (["26666666,100"], 2, "timestamp", "not unix seconds (10 integer digits"),
    (["1600000000000,100"], 2, "timestamp", "milliseconds"),
    (["1600000000000000.5,100"], 2, "timestamp", "microseconds"),
]


@pytest.mark.parametrize(("body", "line", "field", "fragment"), BAD_TS_PRICE)
def test_bad_timestamp_price_imports_nothing(wh: Warehouse, tmp_path: Path, body: list[str],
                                             line: int, field: str, fragment: str) -> None:
    f = _good_ts_file(tmp_path)
    import_prices(wh, f, pair="ETH/USD", unit="USD", run_id=new_run_id())
    other = write(tmp_path / "other.csv", "timestamp,price\n1500000000,7\n")
    import_prices(wh, other, pair="BTC/USD", unit="USD", run_id=new_run_id())
    before, runs_before = rows(wh), runs(wh)
    write(f, "timestamp,price\n" + "\n".join(body) + "\n")
    with pytest.raises(PriceImportError) as ei:
        import_prices(wh, f, pair="ETH/USD", unit="USD", run_id=new_run_id())
    e = ei.value
    assert (e.line, e.field) == (line, field), str(e)
    assert str(f) in str(e) and f":{line} [{field}]" in str(e)
    assert fragment in str(e)
    assert rows(wh) == before
    after = runs(wh)
    assert after[:-1] == runs_before and after[-1][2] == "failed" and str(e) in after[-1][3]


def test_non_monotonic_message_names_both_timestamps(wh: Warehouse, tmp_path: Path) -> None:
    f = write(tmp_path / "m.csv", "timestamp,price\n1600000060,1\n1600000000,2\n")
    with pytest.raises(PriceImportError) as ei:
        import_prices(wh, f, pair="ETH/USD", unit="USD", run_id=new_run_id())
    msg = str(ei.value)
    assert "2020-09-13T12:26:40+00:00" in msg and "2020-09-13T12:27:40+00:00" in msg
    assert "line 2" in msg and ei.value.line == 3


@pytest.mark.parametrize(("kw", "field"), [
    ({"pair": "ETH/USX", "unit": "USX"}, "unit"),
    ({"pair": "ETH/usd", "unit": "usd"}, "unit"),
    ({"pair": "ETH/USD", "unit": "USDT"}, "pair"),
    ({"pair": "ETHUSD", "unit": "USD"}, "pair"),
    ({"pair": "ETH/USD", "unit": "USD", "fmt": "csv"}, "format"),
])
def test_bad_arguments(wh: Warehouse, tmp_path: Path, kw: dict, field: str) -> None:
    f = _good_ts_file(tmp_path)
    import_prices(wh, f, pair="ETH/USD", unit="USD", run_id=new_run_id())
    before = rows(wh)
    with pytest.raises(PriceImportError) as ei:
        import_prices(wh, f, run_id=new_run_id(), **kw)
    assert ei.value.field == field and f"[{field}]" in str(ei.value)
    assert rows(wh) == before


@pytest.mark.parametrize(("text", "line"), [("", 1), ("\n\n", 1), ("timestamp,price\n", 2)])
def test_empty_files_rejected(wh: Warehouse, tmp_path: Path, text: str, line: int) -> None:
    f = write(tmp_path / "e.csv", text)
    with pytest.raises(PriceImportError) as ei:
        import_prices(wh, f, pair="ETH/USD", unit="USD", run_id=new_run_id())
    assert ei.value.line == line
    assert rows(wh) == []


def test_missing_file(wh: Warehouse, tmp_path: Path) -> None:
    with pytest.raises(PriceImportError, match="cannot read"):
        import_prices(wh, tmp_path / "nope.csv", pair="ETH/USD", unit="USD", run_id="r")


# ------------------------------------------------------------------------ riskdao / coinapi bad
def test_bad_riskdao_rows(wh: Warehouse, tmp_path: Path) -> None:
    head = "timestamp_x,ask_price,bid_price,liq_long,liq_short\n"
    good = ["1610236829852628.8,1280.4272222222223,1280.1202329749103,0.0,0.0",
            "1610236889827236.8,1284.8993992932863,1284.6203886925796,0.0,4.5"]
    f = write(tmp_path / "r.csv", head + "\n".join(good) + "\n")
    s = import_prices(wh, f, fmt="riskdao_binance", pair="ETH/USDT", unit="USDT", source="r",
                      run_id=new_run_id())
    assert s.rows == 2
    before = rows(wh)
    cases = [
        (good + ["1610236889827236.6,1,1,0,0"], 4, "timestamp_x"),  # rounds to the same µs
        (good + ["1610236949676925.0,,1285.05,0,0"], 4, "ask_price"),
        (good + ["1610236949676925.0,1285.17,-1,0,0"], 4, "bid_price"),
        (good + ["1610236949676925.0,1285.17,NaN,0,0"], 4, "bid_price"),
        (good + ["abc,1285.17,1285.0,0,0"], 4, "timestamp_x"),
    ]
    for body, line, field in cases:
        write(f, head + "\n".join(body) + "\n")
        with pytest.raises(PriceImportError) as ei:
            import_prices(wh, f, pair="ETH/USDT", unit="USDT", source="r", run_id=new_run_id())
        assert (ei.value.line, ei.value.field) == (line, field), str(ei.value)
        assert rows(wh) == before


@pytest.mark.parametrize("ts", ["1610236829852.6", "1610236829.8", "1.6102368298526e12"])
def test_riskdao_timestamp_not_in_microseconds_is_refused(wh: Warehouse, tmp_path: Path,
                                                          ts: str) -> None:
    """timestamp_x is unix microseconds; a millisecond or second value was taken as µs and
    imported silently as January 1970 (1000x / 10**6x off); now refused like Binance's
    digit-count rule (fails before)."""
    f = write(tmp_path / "r.csv", "timestamp_x,ask_price,bid_price\n"
              f"{ts},1280.5,1280.1\n")
    with pytest.raises(PriceImportError) as ei:
        import_prices(wh, f, fmt="riskdao_binance", pair="ETH/USDT", unit="USDT",
                      run_id=new_run_id())
    assert (ei.value.line, ei.value.field) == (2, "timestamp_x"), str(ei.value)
    assert "microseconds" in str(ei.value)


def _bar(end: str, close: str) -> str:
    return ('  {\n    "time_period_start": "x",\n    "time_period_end": "' + end + '",\n'
            '    "price_close": ' + close + '\n  }')


def test_bad_coinapi_bars_report_object_start_line(wh: Warehouse, tmp_path: Path) -> None:
    b1 = _bar("2021-01-11T00:10:00.0000000Z", "1232.550000000")
    b2 = _bar("2021-01-11T00:20:00.0000000Z", "1237.5")
    f = write(tmp_path / "c.json", "[\n" + ",\n".join([b1, b2]) + "\n]\n")
    s = import_prices(wh, f, pair="ETH/USD", unit="USD", source="c", run_id=new_run_id())
    assert s.rows == 2
    assert [r[0] for r in wh.con.execute("SELECT line FROM raw.reference_prices "
                                         "ORDER BY ts_us").fetchall()] == [2, 7]
    before = rows(wh)
    cases = [  # third bar's object starts on line 12
        (_bar("2021-01-11T00:30:00.0000000Z", "-3"), "price_close"),
        (_bar("2021-01-11T00:30:00.0000000Z", "0"), "price_close"),
        (_bar("2021-01-11T00:30:00.0000000Z", "NaN"), "price_close"),
        (_bar("2021-01-11T00:30:00.0000000Z", '"12.5"'), "price_close"),
        (_bar("2021-01-11T00:15:00.0000000Z", "1"), "time_period_end"),
        (_bar("2021-01-11T00:30:00.0000000", "1"), "time_period_end"),
        (_bar("2021-01-11T00:30:00.0000001Z", "1"), "time_period_end"),
        ('  {\n    "time_period_end": "2021-01-11T00:30:00Z"\n  }', "price_close"),
    ]
    for bar, field in cases:
        write(f, "[\n" + ",\n".join([b1, b2, bar]) + "\n]\n")
        with pytest.raises(PriceImportError) as ei:
            import_prices(wh, f, pair="ETH/USD", unit="USD", source="c", run_id=new_run_id())
        assert (ei.value.line, ei.value.field) == (12, field), str(ei.value)
        assert rows(wh) == before
    write(f, "[\n" + b1 + "\n" + b2 + "\n]\n")  # missing comma
    with pytest.raises(PriceImportError) as ei:
        import_prices(wh, f, pair="ETH/USD", unit="USD", source="c", run_id=new_run_id())
    assert ei.value.line == 7 and rows(wh) == before


# ------------------------------------------------------------------------------ idempotence
def test_reimport_is_idempotent(wh: Warehouse, tmp_path: Path) -> None:
    f = _good_ts_file(tmp_path)
    s1 = import_prices(wh, f, pair="ETH/USD", unit="USD", run_id="run-1")
    first = rows(wh, with_run=False)
    s2 = import_prices(wh, f, pair="ETH/USD", unit="USD", run_id="run-2")
    assert rows(wh, with_run=False) == first
    assert {r[-1] for r in rows(wh)} == {"run-2"}
    assert (s1.replaced, s2.replaced, s2.rows) == (0, 3, 3)
    assert [(r[0], r[2]) for r in runs(wh)] == [("run-1", "ok"), ("run-2", "ok")]
    # a shorter file for the same source+pair replaces (not appends)
    write(f, "timestamp,price\n1700000000,5\n")
    import_prices(wh, f, pair="ETH/USD", unit="USD", run_id="run-3")
    assert [(r[4], r[6]) for r in rows(wh)] == [(1700000000_000000, "5")]
    # same file under another source label is kept separately
    import_prices(wh, f, pair="ETH/USD", unit="USD", source="other", run_id="run-4")
    assert len(rows(wh)) == 2


def test_failure_inside_transaction_keeps_old_rows(wh: Warehouse, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    f = _good_ts_file(tmp_path)
    import_prices(wh, f, pair="ETH/USD", unit="USD", run_id="run-1")
    before = rows(wh)
    write(f, "timestamp,price\n1700000000,5\n")
    real = prices._record_run

    def boom(con, run_id, started, status, message, datasets):
        if status == "ok":
            raise RuntimeError("disk full")
        real(con, run_id, started, status, message, datasets)

    monkeypatch.setattr(prices, "_record_run", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        import_prices(wh, f, pair="ETH/USD", unit="USD", run_id="run-2")
    assert rows(wh) == before
    assert runs(wh)[-1][:3] == ("run-2", "import-prices", "failed")


# ------------------------------------------------------------------------------ property
def _seconds_text(ts_us: int) -> str:
    s, frac = divmod(ts_us, 10**6)
    return str(s) if frac == 0 else f"{s}.{frac:06d}".rstrip("0")


prices_st = st.decimals(min_value=Decimal("1e-12"), max_value=Decimal("1e15"), allow_nan=False,
                        allow_infinity=False).map(lambda d: format(d, "f"))
times_st = st.lists(st.integers(min_value=10**9 * 10**6, max_value=4_102_444_800 * 10**6), min_size=1,
                    max_size=30, unique=True).map(sorted)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), times=times_st)
def test_timestamp_price_roundtrip(tmp_path: Path, data: st.DataObject, times: list[int]) -> None:
    ps = data.draw(st.lists(prices_st, min_size=len(times), max_size=len(times)))
    f = write(tmp_path / "prop.csv", "timestamp,price\n" + "".join(
        f"{_seconds_text(t)},{p}\n" for t, p in zip(times, ps, strict=True)))
    with Warehouse(tmp_path / "w.duckdb") as wh:
        s = import_prices(wh, f, pair="ETH/USD", unit="USD", run_id=new_run_id())
        got = wh.con.execute("SELECT ts_us, epoch_us(ts), price_text, price_f64, line "
                             "FROM raw.reference_prices ORDER BY ts_us").fetchall()
    assert s.rows == len(times)
    assert got == [(t, t, p, float(Decimal(p)), i + 2)
                   for i, (t, p) in enumerate(zip(times, ps, strict=True))]
    # in particular: integral seconds give ts_us == seconds * 10**6
    for t, row in zip(times, got, strict=True):
        assert row[0] == Decimal(_seconds_text(t)) * 10**6


def test_a_failing_insert_keeps_its_own_error(tmp_path: Path) -> None:
    """A real DuckDB error in the import's INSERT (here a CHECK constraint on a table the user
    created) was replaced by 'Current transaction is aborted' from the unregister in the
    ``finally``: the import failed with the wrong reason. Now the INSERT's own error is raised
    and recorded; nothing is imported."""
    import duckdb

    from ingest.prices import REFERENCE_PRICES

    db = tmp_path / "w.duckdb"
    with Warehouse(db) as wh:
        wh.con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        wh.con.execute(REFERENCE_PRICES.ddl().replace('"price_f64" DOUBLE NOT NULL',
                                                        '"price_f64" DOUBLE NOT NULL CHECK (price_f64 < 1)'))
    csv = tmp_path / "p.csv"
    csv.write_text("timestamp,price\n1600000000,1500.5\n1600000060,1501\n")
    with Warehouse(db) as wh:
        with pytest.raises(duckdb.ConstraintException, match="CHECK constraint"):
            import_prices(wh, csv, fmt="timestamp_price", pair="ETH/USD", unit="USD", source="t", run_id="p1")
        assert wh.con.execute("SELECT count(*) FROM raw.reference_prices").fetchall() == [(0,)]
        assert wh.con.execute("SELECT status FROM meta.runs").fetchall() == [("failed",)]


@needs_real
def test_reimport_under_one_source_says_which_earlier_rows_it_drops(tmp_path: Path, capsys) -> None:
    """A re-import replaces the whole (source, pair), as documented; importing the next day's file
    under the same --source therefore deleted the previous day's rows, and the CLI said only
    'imported N prices'. It now says how many rows it replaced and warns about those outside the
    new file's range, which are gone. Real Risk-DAO rows, split by their own datetime_utc column."""
    from ingest.cli import main

    header, *lines = RISKDAO.read_text().splitlines()
    day10 = [ln for ln in lines if ln.split(",")[-1].startswith("2021-01-10")]
    day11 = [ln for ln in lines if ln.split(",")[-1].startswith("2021-01-11")]
    assert len(day10) == len(day11) == 1440
    db = tmp_path / "w.duckdb"
    f10 = write(tmp_path / "d10.csv", header + "\n" + "\n".join(day10) + "\n")
    f11 = write(tmp_path / "d11.csv", header + "\n" + "\n".join(day11) + "\n")

    def imp(f: Path) -> str:
        capsys.readouterr()
        assert main(["import-prices", str(f), "--pair", "ETH/USDT", "--source", "binance",
                     "--db", str(db)]) == 0
        out = capsys.readouterr()
        return " ".join((out.out + out.err).split())

    assert "replaced" not in imp(f10)
    out = imp(f11)
    assert "replaced 1,440 earlier rows" in out, out
    assert "1,440 of them" in out and "2021-01-10T00:00:29" in out and "2021-01-10T23:59:" in out, out
    out = imp(f11)  # the same file again: its own rows, nothing outside its range
    assert "replaced 1,440 earlier rows" in out and "of them" not in out, out
    with Warehouse(db) as wh:
        assert wh.con.execute("SELECT count(*) FROM raw.reference_prices").fetchall() == [(1440,)]
