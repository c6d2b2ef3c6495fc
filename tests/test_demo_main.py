"""``deficit demo``, the Quickstart's main job: the bundled sample replayed, measured, reported.

Runs the real command in a subprocess on a fresh warehouse path, then checks what it claims
against the warehouse it wrote: the summary's figures are the runs' own ``bt.summaries``, every
on-chain liquidation of the sample is reproduced (fidelity 100 %), the reports exist and render in
headless Chromium, the README's example queries (raw and bt) run on it, and the demo refuses to
overwrite a warehouse that is not a demo copy.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.backtest.test_report import CHROMIUM, chromium, png_colours

ROOT = Path(__file__).resolve().parents[1]


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "backtest.cli", "demo", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, Path]:
    tmp = tmp_path_factory.mktemp("demo")
    db, out = tmp / "warehouse.duckdb", tmp / "out"
    r = _demo("--json", "--db", str(db), "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout), db, out


def _figure(con: duckdb.DuckDBPyConnection, run_id: str, metric: str, name: str) -> object:
    rows = con.execute("SELECT value_text FROM bt.summaries WHERE run_id = ? AND metric = ? AND name = ?",
                       [run_id, metric, name]).fetchall()
    assert len(rows) == 1, (metric, name, rows)
    return json.loads(rows[0][0])  # the exact value, as a JSON literal


def test_demo_reproduces_the_sample_and_reports_its_figures(demo: tuple[dict, Path, Path]) -> None:
    s, db, out = demo
    sample = duckdb.connect(str(ROOT / "data" / "sample.duckdb"), read_only=True)
    try:
        onchain = sample.execute("SELECT count(*), count(DISTINCT user) FROM raw.aave_v3_liquidation_call"
                                 ).fetchall()[0]
    finally:
        sample.close()
    assert (s["liquidations_observed"], s["liquidated_accounts"]) == onchain
    f = s["fidelity"]
    assert f["observed"] == f["predicted"] == f["matched"] == onchain[0]
    assert (f["precision"], f["recall"]) == (1.0, 1.0)
    assert f["amounts_exact"] == f["amounts_compared"] == onchain[0]
    con = duckdb.connect(str(db), read_only=True)
    try:
        hid = s["historical_run"]
        assert _figure(con, hid, "bad_debt", "peak_unrealized_oracle_usd") == \
            s["bad_debt"]["peak_unrealized_usd"]
        assert _figure(con, hid, "oracle_lag", "hidden_insolvency_usd_h") == \
            s["oracle_lag"]["hidden_insolvency_usd_h"]
        assert _figure(con, s["stress_run"], "bad_debt", "end_total_oracle_usd") == \
            s["stress"]["end_bad_debt_usd"]
        # the stress scenario (ETH a further 25 % lower) leaves more bad debt than the crash did
        assert s["stress"]["end_bad_debt_usd"] > s["bad_debt"]["end_usd"]
        # the oracle really lagged the market on this path (0.5 % deviation rule, 1 h heartbeat)
        assert s["oracle_lag"]["max_deviation_bps"] > 50
        kinds = {k for (k,) in con.execute("SELECT DISTINCT kind FROM bt.attributions").fetchall()}
        assert kinds == {"oracle_lag", "finality_wait"}
        # the README's example queries run on the demo's warehouse (raw tables and bt views)
        readme = (ROOT / "README.md").read_text()
        for fence in ("```sql", "``` sql"):
            for block in readme.split(fence)[1:]:
                for q in [x.strip() for x in block.split("```")[0].split(";") if x.strip()]:
                    assert con.execute(q).fetchall(), q
    finally:
        con.close()
    for kind in ("historical", "stress"):
        html = Path(s["reports"][kind])
        assert html.is_file() and html.with_name("report.md").is_file()
        assert html.is_relative_to(out)
    for p in s["scenarios"].values():
        assert Path(p).is_file()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed here (CI installs it in .ci/run)")
def test_demo_report_renders_in_chromium(demo: tuple[dict, Path, Path], tmp_path: Path) -> None:
    s, _, _ = demo
    html = Path(s["reports"]["historical"])
    r = chromium("--dump-dom", html.as_uri(), tmp=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    assert re.search(r"<title>deficit report: sample crash: historical</title>", dom)
    assert s["historical_run"] in dom and dom.count("<svg") >= 6
    assert f"{s['liquidations_observed']} / {s['fidelity']['predicted']}" in dom
    shot = tmp_path / "shot.png"
    r = chromium("--hide-scrollbars", "--window-size=1000,800", f"--screenshot={shot}", html.as_uri(),
                 tmp=tmp_path)
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    assert len(png_colours(shot.read_bytes())) > 20


def test_demo_leaves_a_foreign_warehouse_alone(tmp_path: Path) -> None:
    db = tmp_path / "mine.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE precious AS SELECT 42 AS answer")
    con.close()
    before = db.read_bytes()
    r = _demo("--db", str(db), "--out", str(tmp_path / "out"))
    assert r.returncode == 2
    assert "not a demo copy" in r.stdout + r.stderr and str(db) in r.stdout + r.stderr
    assert db.read_bytes() == before


def test_demo_text_summary_names_the_price_basis_and_its_own_paths(demo: tuple[dict, Path, Path]) -> None:
    """The human summary: figures valued at different prices say which (the lag and finality
    attributions are at the reference, i.e. market, price; the run's bad debt at oracle prices),
    and the suggested next command writes under the demo's own --out."""
    from rich.console import Console

    from backtest.demo import DemoResult, print_summary

    s, db, out = demo
    res = DemoResult(db, {k: Path(v) for k, v in s["scenarios"].items()}, s,
                     {k: Path(v) for k, v in s["reports"].items()})
    console = Console(record=True, width=250, highlight=False)
    print_summary(res, console)
    text = console.export_text()
    flat = re.sub(r" +", " ", text)
    lag, peak = s["lag_attributable_bad_debt_usd"]["peak"], s["bad_debt"]["peak_unrealized_usd"]
    assert f"bad debt attributable to oracle lag, at market prices (peak / end) │ ${lag:,.2f}" in flat, text
    assert f"bad debt: peak unrealized at oracle prices (block) │ ${peak:,.2f}" in flat, text
    assert f"--junit {out / 'junit.xml'}" in text and "--junit out/junit.xml" not in text


def test_demo_leaves_a_demo_copy_with_ingested_data_alone(tmp_path: Path) -> None:
    """A demo copy is the default warehouse (data/warehouse.duckdb), which `deficit ingest` and
    `deficit import-prices` write to by default: once they have added data to it, it is no longer
    a copy the demo may replace (the data would be lost, and an ingest can cost hours)."""
    from backtest.demo import SAMPLE_DB, prepare_warehouse
    from backtest.errors import InputError

    db = tmp_path / "warehouse.duckdb"
    prepare_warehouse(db, SAMPLE_DB)
    prices = tmp_path / "eth.csv"
    prices.write_text("timestamp,price\n1610236829,1280.5\n1610236889,1281\n")
    r = subprocess.run([sys.executable, "-m", "ingest.cli", "import-prices", str(prices), "--pair", "ETH/USD",
                        "--db", str(db)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    before = db.read_bytes()
    with pytest.raises(InputError, match="not a demo copy"):
        prepare_warehouse(db, SAMPLE_DB)
    assert db.read_bytes() == before


@pytest.mark.parametrize("ddl", [
    "CREATE TABLE main.my_notes AS SELECT 'worth keeping' AS note",
    "CREATE SCHEMA analysis; CREATE VIEW analysis.crash AS SELECT 1 AS x",
    "CREATE TABLE bt.my_results AS SELECT 1 AS x",
])
def test_demo_leaves_a_demo_copy_with_a_table_of_the_users_alone(tmp_path: Path, ddl: str) -> None:
    """The refusal message says a demo copy with "other tables" is left alone: a table or view the
    user added to the demo's warehouse (main, a schema of their own, or bt beside the declared
    results) is not the demo's to re-derive; replacing the file lost it silently."""
    from backtest.demo import SAMPLE_DB, prepare_warehouse
    from backtest.errors import InputError

    db = tmp_path / "warehouse.duckdb"
    prepare_warehouse(db, SAMPLE_DB)
    con = duckdb.connect(str(db))
    con.execute(ddl)
    con.close()
    before = db.read_bytes()
    with pytest.raises(InputError, match="not a demo copy"):
        prepare_warehouse(db, SAMPLE_DB)
    assert db.read_bytes() == before


def test_demo_never_writes_the_bundled_sample(tmp_path: Path) -> None:
    """``--db`` naming the sample itself: the sample passed for its own demo copy, so the demo
    replaced it and wrote its bt results into it (the docstring: the demo never changes that file)."""
    import shutil

    from backtest.demo import SAMPLE_DB, prepare_warehouse
    from backtest.errors import InputError

    sample = tmp_path / "sample.duckdb"
    shutil.copyfile(SAMPLE_DB, sample)
    before = sample.read_bytes()
    with pytest.raises(InputError, match="sample"):
        prepare_warehouse(sample, sample)
    link = tmp_path / "link.duckdb"
    link.symlink_to(sample)
    with pytest.raises(InputError, match="sample"):
        prepare_warehouse(link, sample)
    assert sample.read_bytes() == before


def test_demo_text_summary_never_rounds_fidelity_up_to_100_percent(demo: tuple[dict, Path, Path]) -> None:
    """"precision 100%" is the demo's claim that every prediction was right: a precision of 0.996
    (one false positive in 250 predictions) printed as 100 % with ``:.0%``; the counts behind
    each rate are printed too (precision is matched / predicted, not matched / observed)."""
    from rich.console import Console

    from backtest.demo import DemoResult, print_summary

    s, db, _ = demo
    s = json.loads(json.dumps(s))
    s["fidelity"] |= {"observed": 249, "observed_user_blocks": 249, "predicted": 250, "matched": 249,
                      "precision": 249 / 250, "recall": 1.0}
    res = DemoResult(db, {k: Path(v) for k, v in s["scenarios"].items()}, s,
                     {k: Path(v) for k, v in s["reports"].items()})
    console = Console(record=True, width=250, highlight=False)
    print_summary(res, console)
    flat = re.sub(r" +", " ", console.export_text())
    assert "precision 99% (249/250), recall 100% (249/249)" in flat, flat


def test_demo_stress_run_does_not_measure_its_own_shock_as_oracle_error(
        demo: tuple[dict, Path, Path]) -> None:
    """A shock moves the oracle's answers only (backtest.scenario: "applied to the oracle answers
    of each feed"); the reference path stays the real Binance one. In the stress run ("ETH a further
    25 % lower": the market fell, the oracle followed) every figure against that reference measured
    the shock itself: the stress report said the oracle deviated ~2,700 bps from the market, with
    hidden insolvency and bad debt "at reference prices" valued at the unshocked market."""
    s, db, _ = demo
    con = duckdb.connect(str(db), read_only=True)
    try:
        against_market = con.execute(
            "SELECT metric, name, value_text FROM bt.summaries WHERE run_id = ? AND (metric = 'oracle_lag' "
            "OR name = 'reference_updates') AND value_text NOT IN ('null', '0') ORDER BY ALL",
            [s["stress_run"]]).fetchall()
    finally:
        con.close()
    assert against_market == []


def test_demo_text_summary_does_not_present_the_liquidation_volume_as_a_finality_risk(tmp_path: Path) -> None:
    """An on-chain liquidation acts on the state of its own block (``decided_block = block``), never
    final at a depth > 0: in the historical run every one counts as acting on non-final state, so
    the demo's "liquidated on blocks not yet final: $X" was the liquidation volume printed again
    under a name that read as a risk figure of its own. It now says how many of all the
    liquidations that is (and why), and how many sat in blocks not final when ingested (the rows a
    reorg could still change)."""
    from rich.console import Console

    from backtest.demo import DemoResult, print_summary

    s = {
        "warehouse": "w.duckdb", "liquidations_observed": 3, "liquidated_accounts": 2,
        "liquidation_volume_usd": 1234.5,
        "fidelity": {"observed": 3, "observed_user_blocks": 3, "predicted": 3, "matched": 3, "precision": 1.0,
                     "recall": 1.0, "amounts_compared": 3, "amounts_exact": 3},
        "bad_debt": {"peak_unrealized_usd": 0.0, "peak_unrealized_block": None, "end_usd": 0.0,
                     "realized_usd": 0.0},
        "oracle_lag": {"max_deviation_bps": 10.0, "beyond_threshold_s_max": 0, "max_staleness_s": 0,
                       "hidden_insolvency_usd_h": 0.0, "hidden_accounts": 0},
        "lag_attributable_bad_debt_usd": {"peak": 0.0, "end": 0.0},
        "finality": {"depth_blocks": 64, "liquidations": 3, "liquidations_on_non_final_state": 3,
                     "liquidated_on_non_final_state_usd": 1234.5,
                     "liquidations_in_blocks_not_final_at_ingest": 1,
                     "oracle_updates_consumed_non_final": 5, "accounts_changed_non_final": 2,
                     "wait_blocks": 64, "extra_bad_debt_if_waiting_usd": {"peak": 1.0, "end": 2.0}},
        "stress": {"peak_unrealized_bad_debt_usd": 0.0, "end_bad_debt_usd": 0.0, "accounts_underwater_end": 0,
                   "suppliers_loss_usd": 0.0, "max_supplier_haircut_bps": 0.0, "liquidations": 0,
                   "spirals": 0},
        "reports": {"historical": str(tmp_path / "h.html"), "stress": str(tmp_path / "s.html")},
        "scenarios": {"historical": str(tmp_path / "demo" / "historical.toml")},
        "elapsed_s": 1.0,
    }
    res = DemoResult(tmp_path / "w.duckdb", {k: Path(v) for k, v in s["scenarios"].items()}, s,  # type: ignore[arg-type]
                     {k: Path(v) for k, v in s["reports"].items()})  # type: ignore[arg-type]
    console = Console(record=True, width=250, highlight=False)
    print_summary(res, console)
    flat = re.sub(r" +", " ", console.export_text())
    assert "liquidated on blocks not yet final" not in flat, flat
    assert ("liquidations on state not yet final (64 blocks deep) │ 3 of 3, $1,234.50 (each acts on its own "
            "block); 1 in blocks not final at ingest") in flat, flat
