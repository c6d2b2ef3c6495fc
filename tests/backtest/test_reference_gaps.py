"""A reference path with a hole: the backtest must not forward-fill it silently.

The replay holds a reference price until the next one (``view.reference_prices``): over a hole of
hours inside the window, oracle_lag and reference bad debt were measured against an hours-old price
without a word. The path is the real Risk-DAO Binance-futures ETHUSDT file (one bid/ask mid a
minute, 2021-01-10 .. 2021-01-12) with rows cut out, imported by the real importer into a real
DuckDB warehouse; expectations come from the file's own text, not from the code under test.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest

from backtest.api import _load_refs
from backtest.clock import Blocks
from backtest.errors import MissingData, ScenarioError
from backtest.scenario import Scenario, parse_scenario
from ingest.prices import import_prices
from ingest.warehouse import Warehouse
from tests.backtest.markets import FROM, scenario

RISKDAO = Path(
    "/work/shared/data/real/riskdao-binance-futures-ethusdt-2021-01/"
    "ethusdt_binance_futures_2021-01-10_to_2021-01-12.csv"
)

pytestmark = pytest.mark.skipif(not RISKDAO.exists(), reason="real Risk-DAO file not present")


def _unix(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso).replace(tzinfo=dt.UTC).timestamp())


def _iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rows() -> tuple[str, list[tuple[int, str]]]:
    """(header, [(second the row's price is usable from, line text)]) of the real file. The
    second is the row's ``timestamp_x`` (float µs) rounded half-even to a whole µs, then rounded
    up to a whole second: the first block at or after it sees it."""
    header, *lines = RISKDAO.read_text().splitlines()
    out = []
    for ln in lines:
        us = int(Decimal(ln.split(",")[0]).to_integral_value(rounding=ROUND_HALF_EVEN))
        out.append((-(-us // 10**6), ln))
    return header, out


def _import(wh: Warehouse, tmp_path: Path, cut: tuple[str, str] | None) -> tuple[int, int]:
    """Import the file as COLL/USD without its rows in ``[cut[0], cut[1])`` (UTC); returns the
    usable seconds of the last row kept before the cut and the first kept after it."""
    header, rows = _rows()
    lo, hi = (_unix(cut[0]), _unix(cut[1])) if cut else (0, 0)
    kept = [(t, ln) for t, ln in rows if not lo <= t < hi]
    f = tmp_path / "ethusdt.csv"
    f.write_text(header + "\n" + "".join(ln + "\n" for _, ln in kept))
    import_prices(
        wh, f, fmt="riskdao_binance", pair="COLL/USD", unit="USD", source="riskdao", run_id="prices-1"
    )
    before = max(t for t, _ in kept if t < lo) if cut else 0
    after = min(t for t, _ in kept if t >= hi) if cut else 0
    return before, after


def _with(sc: Scenario, line: str) -> Scenario:
    """``sc`` with ``line`` added to its ``[reference]`` table."""
    return parse_scenario(sc.text.replace("[reference]\n", "[reference]\n" + line), "<test>")


def _window(start: str, end: str, extra: str = "") -> tuple[Scenario, Blocks]:
    t0, t1 = _unix(start), _unix(end)
    n = (t1 - t0) // 12
    sc = scenario(reference=True, to_block=FROM + n)
    if extra:
        sc = _with(sc, extra)
    return sc, Blocks.regular(FROM, FROM + n, t0)


def test_a_multi_hour_hole_inside_the_window_is_refused_naming_it(tmp_path: Path) -> None:
    with Warehouse(":memory:") as wh:
        a, b = _import(wh, tmp_path, ("2021-01-11T12:00:00", "2021-01-11T15:00:00"))
        sc, blocks = _window("2021-01-11T06:00:00", "2021-01-11T20:00:00")
        with pytest.raises(MissingData) as e:
            _load_refs(wh, sc, blocks)
        msg = str(e.value)
        assert "COLL/USD" in msg and _iso(a) in msg and _iso(b) in msg, msg
        assert "max_gap_s" in msg  # says how to accept it


def test_a_hole_at_the_window_start_is_refused(tmp_path: Path) -> None:
    """The price in force at the window start is hours old: the last one before a hole that
    covers the start."""
    with Warehouse(":memory:") as wh:
        a, b = _import(wh, tmp_path, ("2021-01-11T06:00:00", "2021-01-11T09:00:00"))
        sc, blocks = _window("2021-01-11T08:00:00", "2021-01-11T10:00:00")
        with pytest.raises(MissingData) as e:
            _load_refs(wh, sc, blocks)
        assert _iso(a) in str(e.value) and _iso(b) in str(e.value), str(e.value)


def test_a_hole_at_the_window_end_is_refused(tmp_path: Path) -> None:
    """The window ends inside a hole: the path's last price is after the window's end (so the
    'ends before the window's end' check passes), but nothing between the hole's start and it."""
    with Warehouse(":memory:") as wh:
        a, b = _import(wh, tmp_path, ("2021-01-11T12:00:00", "2021-01-11T15:00:00"))
        sc, blocks = _window("2021-01-11T10:00:00", "2021-01-11T13:00:00")
        with pytest.raises(MissingData) as e:
            _load_refs(wh, sc, blocks)
        assert _iso(a) in str(e.value) and _iso(b) in str(e.value), str(e.value)


def test_small_holes_pass_by_default_and_a_declared_max_gap_decides(tmp_path: Path) -> None:
    """The default largest hole is derived from the series' own interval (one a minute here), so
    a few missing minutes pass; ``[reference] max_gap_s`` overrides it either way."""
    with Warehouse(":memory:") as wh:
        a, b = _import(wh, tmp_path, ("2021-01-11T12:00:00", "2021-01-11T12:04:00"))
        assert 240 <= b - a <= 320  # four or five rows gone: about five minutes without a price
        sc, blocks = _window("2021-01-11T06:00:00", "2021-01-11T20:00:00")
        refs, init = _load_refs(wh, sc, blocks)
        assert refs and "COLL/USD" in init
        strict, _ = _window("2021-01-11T06:00:00", "2021-01-11T20:00:00", "max_gap_s = 120\n")
        with pytest.raises(MissingData) as e:
            _load_refs(wh, strict, blocks)
        assert "max_gap_s = 120" in str(e.value) and _iso(a) in str(e.value)
    with Warehouse(":memory:") as wh:
        _import(wh, tmp_path, ("2021-01-11T12:00:00", "2021-01-11T15:00:00"))
        lax, blocks = _window("2021-01-11T06:00:00", "2021-01-11T20:00:00", "max_gap_s = 14400\n")
        refs, _ = _load_refs(wh, lax, blocks)
        assert not any(_unix("2021-01-11T12:00:00") <= r.ts < _unix("2021-01-11T15:00:00") for r in refs)


def test_the_whole_file_has_no_hole_over_the_default(tmp_path: Path) -> None:
    """The real file itself (one mid a minute, at most 67 s apart) passes over its whole span."""
    with Warehouse(":memory:") as wh:
        _import(wh, tmp_path, None)
        sc, blocks = _window("2021-01-10T00:05:00", "2021-01-12T23:55:00")
        refs, _ = _load_refs(wh, sc, blocks)
        assert len(refs) > 4000


def test_max_gap_s_is_validated_and_absent_keeps_the_scenario_hash() -> None:
    sc = scenario(reference=True)
    assert sc.reference is not None and sc.reference.max_gap_s is None
    assert '"max_gap_s"' not in sc.canonical_json()  # scenarios written before it keep their run ids
    with_gap = _with(sc, "max_gap_s = 600\n")
    assert with_gap.reference is not None and with_gap.reference.max_gap_s == 600
    assert with_gap.sha256() != sc.sha256()
    for bad in ("0", "-5", "1.5", '"600"'):
        with pytest.raises(ScenarioError) as e:
            _with(sc, f"max_gap_s = {bad}\n")
        assert e.value.field == "reference.max_gap_s"
    assert dataclasses.replace(with_gap.reference, max_gap_s=None) == sc.reference
