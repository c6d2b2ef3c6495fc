"""``deficit report`` on a real run whose tokens' symbols are hostile markup (report_market.py):
the HTML is self-contained and deterministic, shows the key figures, renders in headless Chromium
(not blank), and shows the symbols as text without running anything.

And on a real Aave v2 run (the market of test_engine_aave_v2.py, whose base currency is ETH): the
report, ``deficit runs`` and ``deficit compare`` say ETH, never USD, and find the summaries' ETH
figures; runs of different base currencies are not subtracted from one another."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

import backtest
from backtest.engine import _in_base_currency
from backtest.errors import InputError
from backtest.report.build import build_report
from backtest.report.catalog import _cmd_compare, compare_runs, currency_name, list_runs
from tests.backtest import report_market as rm
from tests.backtest import test_engine_aave_v2 as v2

# the module-scoped fixture of test_engine_aave_v2.py: a real Aave v2 market on anvil, ingested
from tests.backtest.test_engine_aave_v2 import chain  # noqa: F401

pytestmark = pytest.mark.anvil
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed here (CI installs Debian's chromium package in .ci/run)",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[rm.Built, str, Path]:
    built = rm.build(tmp_path_factory.getbasetemp() / "report-market.duckdb")
    sc = tmp_path_factory.mktemp("sc") / "report.toml"
    sc.write_text(rm.scenario_text(built, name="xss <b>scenario</b>"))
    res = backtest.run(str(sc))
    out = tmp_path_factory.mktemp("out")
    files = build_report(str(built.db), res.run_id, out)
    return built, res.run_id, files.html


def test_report_is_self_contained_escaped_and_deterministic(
    report: tuple[rm.Built, str, Path], tmp_path: Path
) -> None:
    built, run_id, html_path = report
    html = html_path.read_text()
    low = html.lower()
    assert "<script" not in low and "<img" not in low and "onerror=" not in low.replace("onerror=&quot;", "")
    assert "a&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the aToken symbol, as text
    assert "&lt;img src=x onerror=&quot;document.title=&#x27;pwned&#x27;&quot;&gt;" in html
    assert "xss &lt;b&gt;scenario&lt;/b&gt;" in html
    # nothing is fetched: no external URL anywhere but the SVG namespace
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    assert not re.search(r"\b(src|href)\s*=\s*[\"']?(https?:|//)", low)
    # provenance: run id, scenario hash, both block hashes, ingest run ids, code version
    with backtest_db(built.db) as con:
        row = con.execute(
            "SELECT scenario_sha256, from_block_hash, to_block_hash, data_sources, code_version "
            "FROM bt.runs WHERE run_id = ?",
            [run_id],
        ).fetchall()[0]
    for v in (run_id, row[0], row[1], row[2], row[4], *row[3]):
        assert v and v in html, v
    for section in (
        "Oracle against reference price",
        "Bad debt over time",
        "Health-factor distribution",
        "Liquidation waterfall",
        "Loss socialization",
        "Finality and reorg exposure",
        "Fidelity",
    ):
        assert section in html, section
    assert "Not computed in this run" not in html  # every metric of the scenario has its section
    # an Aave v3 run is in USD and says so
    assert "bad debt at window end (USD)" in html and "amounts in USD" in html and "(ETH)" not in html
    assert "debt repaid USD" in html and not re.search(r"\d ETH\b", html)
    # Markdown: escaped too, plots beside it
    md = (html_path.parent / "report.md").read_text()
    assert "<script" not in md and "<img" not in md.lower()
    assert "a&lt;script&gt;alert(1)&lt;/script&gt;" in md  # HTML inert; no Markdown link can form
    # identifiers stay copyable from the raw Markdown (no backslash inside a run id or a hash)
    assert f"| run id | {run_id} |" in md and row[0] in md and row[1] in md
    # a figure that is an address shows the asset's symbol with it, not the bare address
    cells = re.findall(r"max_haircut_gross_reserve</td><td[^>]*>(.*?)</td>", html)
    assert cells and not any(re.fullmatch(r"0x[0-9a-f]{40}", c) for c in cells), cells
    # wide tables scroll inside the page instead of widening it
    assert html.count("<table") == html.count('<div class="tw"><table')
    for ref in re.findall(r"\]\((plots/[a-z0-9_]+\.svg)\)", md):
        assert (html_path.parent / ref).is_file()
    # the same run gives the same bytes
    again = build_report(str(built.db), run_id, tmp_path)
    assert again.html.read_bytes() == html_path.read_bytes()
    assert again.markdown.read_bytes() == (html_path.parent / "report.md").read_bytes()


def test_a_metric_not_computed_says_so(report: tuple[rm.Built, str, Path], tmp_path: Path) -> None:
    built = report[0]
    sc = tmp_path / "few.toml"
    sc.write_text(rm.scenario_text(built, name="few", metrics=("bad_debt", "liquidations")))
    res = backtest.run(str(sc))
    html = build_report(str(built.db), res.run_id, tmp_path).html.read_text()
    for metric in ("paths", "oracle_lag", "socialization", "finality", "fidelity"):
        assert f"Not computed in this run: metric &#x27;{metric}&#x27;" in html, metric
    assert "Bad debt over time" in html and "<svg" in html


V2_METRICS = ("fidelity", "liquidations", "bad_debt", "paths", "socialization", "finality")
#: "USD" as a word or a figure suffix (not inside a token symbol such as USDC)
_USD = re.compile(r"\busd\b|_usd\b")


def _v2_run(ch: v2.Chain, tmp: Path, mode: str) -> str:
    """A run of the v2 end-to-end test's scenario with the report's metrics; its run id."""
    p = v2._scenario(ch, tmp, mode)
    text = p.read_text()
    names = 'names = ["fidelity", "liquidations", "bad_debt"]'
    assert names in text
    p.write_text(text.replace(names, f"names = {json.dumps(list(V2_METRICS))}"))
    return str(backtest.run(str(p), db=ch.db).run_id)


@pytest.fixture(scope="module")
def v2_report(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[v2.Chain, str, Path]:
    ch: v2.Chain = request.getfixturevalue("chain")  # imported above
    run_id = _v2_run(ch, tmp_path_factory.mktemp("v2sc"), "historical")
    return ch, run_id, build_report(str(ch.db), run_id, tmp_path_factory.mktemp("v2out")).html


def _figures(db: Path, run_id: str, metric: str) -> dict[str, object]:
    with backtest_db(db) as con:
        return {
            str(n): json.loads(t)
            for n, t in con.execute(
                "SELECT name, value_text FROM bt.summaries WHERE run_id = ? AND metric = ?", [run_id, metric]
            ).fetchall()
        }


def test_report_of_an_aave_v2_run_is_in_eth(v2_report: tuple[v2.Chain, str, Path]) -> None:
    ch, run_id, html_path = v2_report
    html = html_path.read_text()
    md = (html_path.parent / "report.md").read_text()
    plots = {p.stem: p.read_text() for p in sorted((html_path.parent / "plots").glob("*.svg"))}
    assert len(plots) >= 5 and "health_accounts" in plots
    for text in (html, md, *plots.values()):
        assert not _USD.search(text.lower()), _USD.search(text.lower())
    # every money chart's y axis says ETH (the other one counts accounts)
    for name, svg in plots.items():
        assert (">accounts</text>" if name == "health_accounts" else ">ETH</text>") in svg, name
    # every metric it ran has its section (oracle_lag needs reference prices, which it has not)
    assert re.findall(r"Not computed in this run: metric &#x27;(\w+)", html) == ["oracle_lag"]
    for label in ("amounts in ETH", "bad debt at window end (ETH)", "debt repaid ETH", "loss ETH"):
        assert label in html, label
    # the headline bad debt is the run's bt.summaries figure, found under its ETH name
    bd = _figures(ch.db, run_id, "bad_debt")
    assert bd["base_currency"] == "ETH" and not any(k.endswith("_usd") for k in bd)
    end = bd["end_total_oracle_eth"]
    assert isinstance(end, float) and end > 0
    shown = re.findall(r'<div class="v">([^<]*)</div><div class="k">bad debt at window end \(ETH\)<', html)
    # rounded as the bad-debt table below rounds it (ETH: 4 decimals), in HTML and Markdown alike
    assert shown == [f"{end:,.4f}"]
    assert float(shown[0].replace(",", "")) == pytest.approx(end, rel=1e-3)
    assert f"| bad debt at window end (ETH) | {end:,.4f} |" in md
    # and it is the chain's: B's debt beyond its collateral, in ETH wei, as getUserAccountData says
    want = v2._bad_debt_on_chain(ch, ch.users["b"], ch.to_block)
    assert bd["end_unrealized_oracle_value"] == want and bd["realized_value"] == 0
    assert end == pytest.approx(want / 10**18)
    cell = re.findall(r"bad debt at window end \(unrealized \+ realized\)</td><td[^>]*>([^<]*)</td>", html)
    assert cell == [f"{end:,.4f} ETH"]


def test_runs_and_compare_keep_each_run_in_its_currency(
    v2_report: tuple[v2.Chain, str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ch, run_id, _ = v2_report
    (row,) = [r for r in list_runs(str(ch.db)) if r["run_id"] == run_id]
    end = _figures(ch.db, run_id, "bad_debt")["end_total_oracle_eth"]
    assert row["base_currency"] == "ETH" and row["base_currency_decimals"] == 18
    assert row["headline"]["bad_debt.end_total_oracle_eth"] == end
    assert not any("_usd" in k for k in row["headline"])
    # two ETH runs compare as before
    cf = _v2_run(ch, tmp_path, "counterfactual")
    res = compare_runs(str(ch.db), run_id, cf)
    assert res["comparable"] and res["currency"] == {"a": "ETH", "b": "ETH"} and res["note"] is None
    figs = {(f["metric"], f["name"]): f for f in res["figures"]}
    sim = figs[("liquidations", "simulated_count")]
    assert sim["diff"] == sim["b"] - sim["a"]
    # a USD run beside it (the same rows relabelled: an Aave v3 run's currency): nothing is
    # subtracted across currencies, every value is shown with its run's currency
    db = tmp_path / "mixed.duckdb"
    shutil.copy(ch.db, db)
    import duckdb

    with duckdb.connect(str(db)) as con:
        con.execute(
            "INSERT INTO bt.runs SELECT * REPLACE ('bt-usd-twin' AS run_id, 'USD' AS base_currency, "
            "8 AS base_currency_decimals) FROM bt.runs WHERE run_id = ?",
            [run_id],
        )
        con.execute(
            "INSERT INTO bt.summaries SELECT * REPLACE ('bt-usd-twin' AS run_id, "
            "replace(name, '_eth', '_usd') AS name, CASE WHEN name = 'base_currency' THEN '\"USD\"' "
            "ELSE value_text END AS value_text) FROM bt.summaries WHERE run_id = ?",
            [run_id],
        )
    runs = {r["run_id"]: r for r in list_runs(str(db))}
    assert runs["bt-usd-twin"]["headline"]["bad_debt.end_total_oracle_usd"] == end
    assert (runs["bt-usd-twin"]["base_currency"], runs[run_id]["base_currency"]) == ("USD", "ETH")
    res = compare_runs(str(db), run_id, "bt-usd-twin")
    assert not res["comparable"] and res["currency"] == {"a": "ETH", "b": "USD"}
    assert "different base currencies" in res["note"]
    assert not res["identity"]["base_currency"]["same"]
    assert res["figures"] and all(f["diff"] is None and f["pct"] is None for f in res["figures"])
    # the same-named integer figures (ETH wei against USD 1e-8) are not diffed either
    assert figs[("bad_debt", "end_unrealized_oracle_value")]["a"] is not None
    assert [f["diff"] for f in res["figures"] if f["name"] == "end_unrealized_oracle_value"] == [None]
    args = argparse.Namespace(run_a=run_id, run_b="bt-usd-twin", db=str(db), all=True, json=False)
    assert _cmd_compare(args) == 0
    out = capsys.readouterr().out
    assert f"a = {run_id} (values in ETH)" in out and "b = bt-usd-twin (values in USD)" in out
    assert "note: the runs are in different base currencies" in out


def test_a_run_without_its_base_currency_is_refused(
    v2_report: tuple[v2.Chain, str, Path], tmp_path: Path
) -> None:
    ch, run_id, _ = v2_report
    db = tmp_path / "old.duckdb"
    shutil.copy(ch.db, db)
    import duckdb

    with duckdb.connect(str(db)) as con:
        for (v,) in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE schema_name = 'bt' ORDER BY 1"
        ).fetchall():
            con.execute(f"DROP VIEW bt.{v}")
        con.execute("ALTER TABLE bt.runs DROP COLUMN base_currency")
    for call in (lambda: build_report(str(db), run_id, tmp_path), lambda: list_runs(str(db))):
        with pytest.raises(InputError, match="base currency"):
            call()


def test_the_currency_is_escaped_like_any_text(
    v2_report: tuple[v2.Chain, str, Path], tmp_path: Path
) -> None:
    """bt.runs.base_currency comes from our adapters, but the report treats it as untrusted text."""
    ch, run_id, _ = v2_report
    db = tmp_path / "odd.duckdb"
    shutil.copy(ch.db, db)
    import duckdb

    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE bt.runs SET base_currency = '<b>E|T_H</b>' WHERE run_id = ?", [run_id])
    files = build_report(str(db), run_id, tmp_path / "out")
    html, md = files.html.read_text(), files.markdown.read_text()
    svgs = [p.read_text() for p in files.plots]
    assert "<b>" not in html and "<b>" not in md and not any("<b>" in s for s in svgs)
    assert "amounts in &lt;b&gt;E|T_H&lt;/b&gt;" in html
    assert "amounts in &lt;b&gt;E\\|T_H&lt;/b&gt;" in md  # a | would split a table cell
    assert any(">&lt;b&gt;E|T_H&lt;/b&gt;</text>" in s for s in svgs)


def test_currency_name_is_the_engines_renaming() -> None:
    assert currency_name("end_total_oracle_usd", "USD") == "end_total_oracle_usd"
    assert currency_name("end_total_oracle_usd", "ETH") == "end_total_oracle_eth"
    assert currency_name("hidden_insolvency_usd_h", "ETH") == "hidden_insolvency_eth_h"
    assert currency_name("recall", "ETH") == "recall"
    names = {"end_total_oracle_usd": 1, "hidden_insolvency_usd_h": 2, "observed_count": 3, "x_value": 4}
    for cur in ("USD", "ETH"):
        stored = _in_base_currency(names, cur)
        assert {currency_name(n, cur) for n in names} | {"base_currency"} == set(stored)
        assert all(stored[currency_name(n, cur)] == v for n, v in names.items())


def backtest_db(path: Path):  # type: ignore[no-untyped-def]
    import duckdb

    return duckdb.connect(str(path), read_only=True)


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp / 'profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@needs_chromium
def test_chromium_renders_the_figures_and_runs_nothing(
    report: tuple[rm.Built, str, Path], tmp_path: Path
) -> None:
    built, run_id, html_path = report
    r = chromium("--dump-dom", html_path.as_uri(), tmp=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    # the title is the report's: the <img onerror> symbol did not retitle the page
    title = re.search(r"<title>(.*?)</title>", dom)
    assert title is not None and title.group(1) == "deficit report: xss &lt;b&gt;scenario&lt;/b&gt;"
    assert "pwned" not in re.sub(r"&lt;img.*?&gt;", "", dom)  # only inside the escaped symbol text
    # no element was injected: no script, img or b element in the live DOM
    assert not re.search(r"<(script|img|b)[\s>]", dom, re.I)
    assert "a&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # shown as text
    with backtest_db(built.db) as con:
        figs = dict(
            con.execute(
                "SELECT name, value_f64 FROM bt.summaries WHERE run_id = ? AND metric = 'bad_debt'", [run_id]
            ).fetchall()
        )
    for name in ("end_total_oracle_usd", "peak_unrealized_oracle_usd"):
        assert f"{figs[name]:,.2f}" in dom, name
    assert dom.count("<svg") >= 6 and run_id in dom

    shot = tmp_path / "shot.png"
    r = chromium(
        "--hide-scrollbars", "--window-size=900,700", f"--screenshot={shot}", html_path.as_uri(), tmp=tmp_path
    )
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    colours = png_colours(shot.read_bytes())
    assert len(colours) > 20, f"screenshot is blank-ish: {len(colours)} colours"


def png_colours(data: bytes) -> set[bytes]:
    """Distinct pixel values of an 8-bit RGB/RGBA PNG (Chromium's screenshots), unfiltered."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    bpp = 4
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    out: set[bytes] = set()
    for y in range(len(raw) // (stride + 1)):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 7 == 0:
            out.update(bytes(line[i : i + bpp]) for i in range(0, stride, bpp * 3))
        prev = line
    return out
