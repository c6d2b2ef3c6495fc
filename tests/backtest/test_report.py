"""``deficit report`` on a real run whose tokens' symbols are hostile markup (report_market.py):
the HTML is self-contained and deterministic, shows the key figures, renders in headless Chromium
(not blank), and shows the symbols as text without running anything."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

import backtest
from backtest.report.build import build_report
from tests.backtest import report_market as rm

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
