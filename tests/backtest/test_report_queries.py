"""The report's figures against hand-made ``bt`` rows (no chain needed): what a table says an
account's bad debt is must be the account's, summed over its debt reserves."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

import backtest.metrics.bad_debt as bad_debt
import backtest.outputs as outputs
from backtest.report.build import _bad_debt, _Data
from backtest.report.model import Table

USDC = "0x" + "a0" * 20
DAI = "0x" + "6b" * 20
ALICE = "0x" + "11" * 20
BOB = "0x" + "22" * 20


def _run_row(con: duckdb.DuckDBPyConnection, run_id: str, metrics: tuple[str, ...] = ("bad_debt",),
             source: str | None = None, reference: dict[str, object] | None = None) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS bt")
    con.execute(outputs.RUNS.ddl())
    con.execute(outputs.SUMMARIES.ddl())
    market = {"dataset": "aave_v3"} | ({"source": source} if source else {})
    con.execute(
        "INSERT INTO bt.runs VALUES (?, 's', 'ab', NULL, 'historical', 1, 'USD', 8, 1, 100, NULL, NULL, "
        "[], ?, 'test', ?, 0, 0, 0, 0, 'ok')",
        [run_id, list(metrics), json.dumps({"market": market, "reference": reference})],
    )


def test_top_accounts_sum_an_accounts_reserves(tmp_path: Path) -> None:
    """Alice's bad debt is split over two debt reserves (60 + 40 USD at block 10, then 30 + 50 at
    block 20): her peak is 100 USD and her bad debt at the end 80 USD, both reserves named. The
    table showed one reserve's share for each (60 peak; 30 or 50 at the end, whichever row
    DuckDB took, with a reserve that need not be the one whose share was shown)."""
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    _run_row(con, "r1")
    con.execute(bad_debt.ACCOUNTS.ddl())
    con.execute(bad_debt.BLOCKS.ddl())
    u = 10**8
    rows = [
        (10, ALICE, USDC, 60), (10, ALICE, DAI, 40),
        (20, ALICE, USDC, 30), (20, ALICE, DAI, 50),
        (15, BOB, USDC, 70), (25, BOB, USDC, 0),
    ]
    for block, user, reserve, share in rows:
        con.execute(
            "INSERT INTO bt.bad_debt_accounts VALUES "
            "('r1', 1, ?, ?, ?, ?, 1, 1, ?, NULL, 0, 1, NULL, true, ?)",
            [block, 1000 + block, user, reserve, share * u, float(share)],
        )
    d = _Data(con, "r1")
    sec = _bad_debt(d)
    tables = [b for b in sec.blocks if isinstance(b, Table) and b.headers[0] == "account"]
    assert len(tables) == 1
    got = [tuple(r) for r in tables[0].rows]
    assert got == [
        (ALICE, f"{DAI}, {USDC}", "80.00", "100.00"),
        (BOB, "–", "0.00", "70.00"),
    ], got
    con.close()


def test_control_and_bidi_characters_of_a_symbol_are_shown_as_escapes() -> None:
    """A token symbol is on-chain text: a control character in it made the SVG ill-formed XML
    (plots/*.svg would not open), and a right-to-left override reordered the address printed
    after it. Both are written as visible escapes, in SVG, HTML and Markdown."""
    import xml.etree.ElementTree as ET

    from backtest.report.model import Document, Para, Section, md_escape, render_html
    from backtest.report.svg import bar_chart

    sym = "US\x00DC\x1b\u202e (0x12ab…)"
    svg = bar_chart("loss", [sym], [("suppliers", [1.0])], y_label="USD")
    ET.fromstring(svg)  # well-formed
    assert "US\\u0000DC\\u001b\\u202e (0x12ab…)" in svg
    page = render_html(Document("t", "s", [Section("x", "x", [Para(sym)])]))
    assert "\x00" not in page and "\u202e" not in page and "US\\u0000DC" in page
    md = md_escape(sym)
    assert "\x1b" not in md and "\u202e" not in md and md.startswith("US\\\\u0000DC")


def test_daily_bad_debt_takes_an_accounts_last_block_among_equal_timestamps() -> None:
    """bt.daily_bad_debt_by_reserve matched each account's last evaluation of the day on the
    block timestamp alone: with two blocks at one timestamp (an L2), it took either block's rows.
    Here 200 accounts each have $50 of bad debt in block 10 and none in block 11, at the same
    second: the day's bad debt is 0 (before: most of the 200 counted at $50, ~$8,000)."""
    from backtest.views import ensure_views

    con = duckdb.connect()
    _run_row(con, "r1")
    con.execute(bad_debt.ACCOUNTS.ddl())
    for k in range(200):
        who = "0x" + f"{k + 1:040x}"
        for block, share in ((10, 50), (11, 0)):
            con.execute(
                "INSERT INTO bt.bad_debt_accounts VALUES "
                "('r1', 1, ?, 1000, ?, ?, 1, 1, ?, NULL, 0, 1, NULL, ?, ?)",
                [block, who, USDC, share * 10**8, share > 0, float(share)],
            )
    ensure_views(con)
    assert con.execute("SELECT * FROM bt.daily_bad_debt_by_reserve").fetchall() == []
    con.close()


def test_asset_labels_come_from_the_runs_market() -> None:
    """The report labels an asset with its aToken's symbol; another market of the protocol on the
    chain (Aave v3 Core and Prime) lists the same asset under its own aToken, and the label was
    whichever was initialised last, in either market (fails before: 'aEthLidoWETH')."""
    from ingest.datasets import get_dataset

    con = duckdb.connect()
    _run_row(con, "r1", (), source="core")
    con.execute("CREATE SCHEMA raw")
    t = next(x for x in get_dataset("aave_v3").EVENT_TABLES if x.table.name == "aave_v3_a_token_initialized")
    con.execute(t.table.ddl())
    for block, source, sym in ((5, "core", "aEthWETH"), (9, "prime", "aEthLidoWETH")):
        con.execute(
            "INSERT INTO raw.aave_v3_a_token_initialized VALUES "
            "(1, ?, '0x', '0x', 0, 0, '0x', 'a_token', ?, ?, '0x', '0x', '0x', 18, 'n', ?, '0x', 'r0')",
            [block, source, USDC, sym],
        )
    d = _Data(con, "r1")
    assert d.label(USDC) == f"aEthWETH ({USDC[:10]}…)"
    con.close()


def test_a_default_deviation_band_is_called_a_default() -> None:
    """Without oracle_lag the price plots draw the band at 50 bps, a default; the caption called
    it 'the deviation band ± 50 bps' as if it were the feed's threshold (fails before)."""
    import backtest.metrics.paths as paths
    from backtest.report.build import _prices
    from backtest.report.model import Plot

    con = duckdb.connect()
    _run_row(con, "r1", ("paths",), source="core")
    con.execute(paths.PRICE_PATH.ddl())
    feed = "0x" + "fe" * 20
    for block, kind, fd in ((1, "oracle", feed), (1, "reference", "ETH/USD"), (2, "reference", "ETH/USD")):
        con.execute("INSERT INTO bt.price_path VALUES ('r1', 1, ?, 0, ?, ?, ?, ?, 2000, true, 1, 2000.0)",
                    [block, 1000 + block, kind, fd, USDC])
    plots = [b for b in _prices(_Data(con, "r1")).blocks if isinstance(b, Plot)]
    assert len(plots) == 1 and "± 50 bps (a 50 bps default, not the feed's threshold" in plots[0].caption
    con.close()


def _capture_series(monkeypatch: object) -> list[object]:
    """The series every line chart of the report build draws from now on (the chart itself is
    replaced by an empty SVG)."""
    import pytest

    import backtest.report.build as build

    seen: list[object] = []

    def capture(title: str, series: list[object], **kw: object) -> str:
        seen.extend(series)
        return "<svg/>"

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setattr(build, "line_chart", capture)
    return seen


def test_the_bad_debt_plot_runs_to_the_windows_end(tmp_path: Path, monkeypatch: object) -> None:
    """bt.bad_debt_blocks has a row where the total changed; 50 USD standing from block 10 to the
    window's end (t = 5,000) was drawn up to the last change (t = 1,010) only, as if the run
    ended there. The plot now holds each series' last value to bad_debt's end_block_ts."""


    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    _run_row(con, "r1", reference={"pairs": {USDC: "ETH/USD"}, "source": None})  # draws the reference line
    con.execute(bad_debt.BLOCKS.ddl())
    u = 10**8
    con.execute("INSERT INTO bt.bad_debt_blocks VALUES ('r1', 1, 10, 1010, ?, ?, 0, ?, 1, 0, 50.0)",
                [50 * u, 50 * u, 50 * u])
    con.execute("INSERT INTO bt.summaries VALUES ('r1', 1, 100, 'bad_debt', 'end_block_ts', '5000', 5000.0)")
    seen = _capture_series(monkeypatch)
    _bad_debt(_Data(con, "r1"))
    ends = {s.name: s.points[-1] for s in seen}  # type: ignore[attr-defined]
    assert ends == {"unrealized (oracle prices)": (5000.0, 50.0),
                    "unrealized (reference prices)": (5000.0, 50.0), "realized": (5000.0, 0.0)}


def test_on_chain_text_is_no_link_on_github() -> None:
    """Rendered by cmark-gfm (GitHub's Markdown, the ``cmarkgfm`` binding): a token symbol such as
    ``https://claim-airdrop.example`` or ``www.claim.example`` became a clickable link in
    report.md. After md_escape it is the same visible text and no link; Markdown metacharacters
    stay inert as before."""
    import cmarkgfm

    from backtest.report.model import md_escape

    for sym in ("https://claim-airdrop.example/x?a=1", "visit www.claim.example now", "ftp://x.example",
                "[click](https://evil.example)", "<https://evil.example>", "**bold** `code` |pipe|"):
        html_out = cmarkgfm.github_flavored_markdown_to_html(f"| a |\n|---|\n| {md_escape(sym)} |\n")
        assert "<a " not in html_out and "<strong>" not in html_out and "<code>" not in html_out, html_out
        cell = html_out.split("<td>", 1)[1].split("</td>", 1)[0]
        import html as h

        assert h.unescape(cell) == sym, (cell, sym)
    # before: the bare URL was linked
    assert "<a " in cmarkgfm.github_flavored_markdown_to_html("https://claim-airdrop.example/x")


def test_health_buckets_are_exact_at_one(tmp_path: Path) -> None:
    """An account one wei below HF 1 (liquidatable: Aave tests HF < 1e18) has health_factor_f64
    1.0: bucketed by the float, the report put it in the 1–1.05 bucket with the healthy ones.
    The buckets now read the exact WAD text."""
    import backtest.metrics.paths as paths
    from backtest.report.build import HF_BUCKETS, _health

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    _run_row(con, "r1", ("paths",))
    con.execute(paths.HEALTH_SNAPSHOTS.ddl())
    wad = 10**18
    for user, hf in ((ALICE, wad - 1), (BOB, wad)):
        con.execute("INSERT INTO bt.health_snapshots VALUES "
                    "('r1', 1, 1, 'start', ?, 2, 1, ?, NULL, ?, NULL, 1.0)", [user, str(hf), hf / wad])
    sec = _health(_Data(con, "r1"))
    table = next(b for b in sec.blocks if isinstance(b, Table))
    below, at = HF_BUCKETS.index(0.95), HF_BUCKETS.index(1.0)
    assert (table.rows[below][1], table.rows[at][1]) == ("1", "1")


def test_a_feed_label_is_its_latest_phase_name_whatever_the_row_order() -> None:
    """A feed's label came from any_value(feed_name) over its phases in raw.oracle_phases: with two
    names (the deployments renamed it between two ingests) the label was whichever row DuckDB read
    first, so the same rows in another physical order gave another report. Now the latest phase's
    name (then the latest discovery), whatever the order."""
    from ingest.datasets.chainlink import ORACLE_PHASES

    feed = "0x" + "fe" * 20
    labels = []
    for order in ((1, 2), (2, 1)):
        con = duckdb.connect()
        _run_row(con, "r1", ())
        con.execute("CREATE SCHEMA raw")
        con.execute(ORACLE_PHASES.ddl())
        for phase in order:
            con.execute("INSERT INTO raw.oracle_phases VALUES (1, ?, ?, ?, '0x', 1, 10, 'i')",
                        [feed, "ETH / USD" if phase == 1 else "ETH / USD (v2)", phase])
        labels.append(_Data(con, "r1").label(feed))
        con.close()
    assert labels == [f"ETH / USD (v2) ({feed[:10]}…)"] * 2, labels


def test_the_cumulative_liquidations_run_to_the_windows_end(monkeypatch: object) -> None:
    """The cumulative debt repaid by observed and by simulated liquidations stopped at each
    origin's last liquidation: observed ones ending at t = 100 and simulated ones at t = 500 drew
    the observed line a fifth of the way across, as if its data stopped there (the bad-debt plot's
    fix, 516791d). Both now hold their total to the window's end (bad_debt's end_block_ts, else
    the later of the two)."""

    from backtest.report.build import _liquidations

    con = duckdb.connect()
    _run_row(con, "r1", ("liquidations",))
    con.execute(outputs.LIQUIDATIONS.ddl())
    u = 10**8
    cols = [c.name for c in outputs.LIQUIDATIONS.columns]
    for blk, ts, obs, val in ((10, 100, True, 10), (10, 100, False, 10), (50, 500, False, 5)):
        row = {c: 0 for c in cols} | {"run_id": "r1", "block_number": blk, "block_ts": ts, "observed": obs,
                                       "committed": obs, "user": ALICE, "liquidator": BOB,
                                       "collateral_asset": USDC, "debt_asset": DAI, "debt_to_cover_raw": "1",
                                       "debt_repaid_value": val * u, "log_index": 1 if obs else None,
                                       "tx_hash": None, "predicted_revert": None}
        marks = ", ".join("?" * len(cols))
        con.execute(f"INSERT INTO bt.liquidations VALUES ({marks})", [row[c] for c in cols])
    seen = _capture_series(monkeypatch)
    _liquidations(_Data(con, "r1"))
    ends = {s.name: s.points[-1] for s in seen}  # type: ignore[attr-defined]
    assert ends == {"observed: cumulative debt repaid": (500.0, 10.0),
                    "simulated: cumulative debt repaid": (500.0, 15.0)}, ends
    seen.clear()
    con.execute("INSERT INTO bt.summaries VALUES ('r1', 1, 100, 'bad_debt', 'end_block_ts', '900', 900.0)")
    _liquidations(_Data(con, "r1"))
    assert {s.points[-1] for s in seen} == {(900.0, 10.0), (900.0, 15.0)}  # type: ignore[attr-defined]
    con.close()


def test_on_chain_text_is_no_math_on_github() -> None:
    """GitHub renders $...$ (and $`...`$) in Markdown files as LaTeX math: a token symbol such as
    '$x^2$' showed in report.md as a typeset formula, not its text. Every '$' is now escaped (a
    CommonMark escape: the same visible text in any renderer)."""
    import html as h
    import re

    import cmarkgfm

    from backtest.report.model import md_escape

    for sym in ("$x^2$", "$\\href{https://e.example}{claim}$", "pay $5 to $ETH"):
        raw = md_escape(sym)
        assert not re.search(r"(?<!\\)\$", raw), raw
        html_out = cmarkgfm.github_flavored_markdown_to_html(f"| a |\n|---|\n| {raw} |\n")
        assert h.unescape(html_out.split("<td>", 1)[1].split("</td>", 1)[0]) == sym, html_out


def test_the_top_accounts_table_says_how_many_had_bad_debt(tmp_path: Path) -> None:
    """'Accounts with the largest peak bad debt' shows 10 accounts; with 12 that had bad debt,
    nothing said that 2 were left out (the report's rule for a cut table, af4bf97), and a reader
    summing the rows took them for every account with bad debt."""
    con = duckdb.connect()
    _run_row(con, "r1")
    con.execute(bad_debt.ACCOUNTS.ddl())
    con.execute(bad_debt.BLOCKS.ddl())
    for i in range(12):
        con.execute("INSERT INTO bt.bad_debt_accounts VALUES ('r1', 1, 10, 1010, ?, ?, 1, 1, ?, NULL, 0, 1, "
                    "NULL, true, 1.0)", [f"0x{i + 1:040x}", USDC, (i + 1) * 10**8])
    from backtest.report.model import Para

    sec = _bad_debt(_Data(con, "r1"))
    [t] = [b for b in sec.blocks if isinstance(b, Table) and b.headers[0] == "account"]
    assert len(t.rows) == 10
    texts = " ".join(b.text for b in sec.blocks if isinstance(b, Para))
    assert "10 of the 12 accounts" in texts, texts
    con.close()


def test_a_price_plot_says_where_the_oracle_line_begins() -> None:
    """bt.price_path holds the answers consumed in the window, not the one in force at its start:
    the oracle line began at the first answer in the window (on the bundled sample 156 s after
    the window's first block; in a calm hour of a 1 h heartbeat, up to an hour) or, with no answer
    in the window, was not drawn at all, beside a reference line drawn from the start, and the
    caption called it 'oracle answers in force'. The caption now says where the line begins."""
    import backtest.metrics.paths as paths
    from backtest.report.build import _prices
    from backtest.report.model import Plot

    feed = "0x" + "fe" * 20
    captions = []
    for oracle_blocks in ((5,), ()):
        con = duckdb.connect()
        _run_row(con, "r1", ("paths",), source="core")
        con.execute(paths.PRICE_PATH.ddl())
        rows = [(b, "oracle", feed) for b in oracle_blocks] + [(1, "reference", "ETH/USD"),
                                                               (9, "reference", "ETH/USD")]
        for block, kind, fd in rows:
            con.execute("INSERT INTO bt.price_path VALUES ('r1', 1, ?, 0, ?, ?, ?, ?, 2000, true, 1, 2000.0)",
                        [block, 1000 + 60 * block, kind, fd, USDC])
        [plot] = [b for b in _prices(_Data(con, "r1")).blocks if isinstance(b, Plot)]
        captions.append(plot.caption)
        con.close()
    assert "the oracle line begins at its first answer in the window, 4 min 0 s after the reference's " \
           "first point" in captions[0], captions[0]
    assert "no oracle answer in the window" in captions[1], captions[1]
