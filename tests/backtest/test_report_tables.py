"""The report's tables against hand-made ``bt`` rows (no chain needed): a table cut to a size
says so and keeps what matters (the simulated delays, the fidelity mismatches)."""

from __future__ import annotations

import json
from typing import Any

import duckdb

import backtest.metrics.fidelity as fidelity
import backtest.outputs as outputs
from backtest.report.build import _Data, _fidelity, _liquidations
from backtest.report.model import Para, Table

USER = "0x" + "11" * 20
ASSET = "0x" + "a0" * 20


def _con(metrics: tuple[str, ...]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA bt")
    for t in (outputs.RUNS, outputs.SUMMARIES, outputs.LIQUIDATIONS, fidelity.FIDELITY):
        con.execute(t.ddl())
    con.execute(
        "INSERT INTO bt.runs VALUES ('r1', 's', 'ab', NULL, 'historical', 1, 'USD', 8, 1, 100, NULL, NULL, "
        "[], ?, 'test', ?, 0, 0, 0, 0, 'ok')",
        [list(metrics), json.dumps({"market": {"dataset": "aave_v3"}})],
    )
    return con


def _row(table: Any, **given: Any) -> list[Any]:
    """A row of ``table`` with a plain value in every column not given."""
    out = []
    for c in table.columns:
        if c.name in given:
            out.append(given[c.name])
        elif c.name == "run_id":
            out.append("r1")
        elif c.type == "BOOLEAN":
            out.append(False)
        elif c.type == "VARCHAR":
            out.append(ASSET)
        elif c.type == "VARCHAR[]":
            out.append([])
        elif c.type == "DOUBLE":
            out.append(0.0)
        else:
            out.append(0)
    return out


def _insert(con: duckdb.DuckDBPyConnection, table: Any, rows: list[list[Any]]) -> None:
    marks = ", ".join("?" * len(table.columns))
    con.executemany(f"INSERT INTO {table.fqn} VALUES ({marks})", rows)


def test_the_delay_table_keeps_every_origin_and_every_liquidation() -> None:
    """45 observed liquidations with 45 different delays, 3 simulated ones: the table was cut at
    40 rows in (origin, delay) order, so the simulated delays were not in the report at all and
    5 observed liquidations were missing, with nothing saying so. Now each origin keeps its rows
    (the longest delays of a long tail grouped in one row) and the counts add up."""
    con = _con(("liquidations",))
    rows = [_row(outputs.LIQUIDATIONS, block_number=100 + i, log_index=i, observed=True, delay_blocks=i + 1,
                 user=USER) for i in range(45)]
    rows += [_row(outputs.LIQUIDATIONS, block_number=300 + i, log_index=None, observed=False,
                  delay_blocks=7, user=f"0x{i + 1:040x}") for i in range(3)]
    _insert(con, outputs.LIQUIDATIONS, rows)
    sec = _liquidations(_Data(con, "r1"))
    [t] = [b for b in sec.blocks if isinstance(b, Table) and b.headers[0] == "origin" and len(b.headers) == 3]
    counts: dict[str, int] = {}
    for origin, _, n in t.rows:
        counts[origin] = counts.get(origin, 0) + int(n.replace(",", ""))
    assert counts == {"observed": 45, "simulated": 3}, t.rows
    assert ("simulated", "7", "3") in [tuple(r) for r in t.rows]
    assert any("…" in r[1] and r[0] == "observed" for r in t.rows), "the tail is grouped, with its range"
    assert ("observed", "31 … 45", "15") in [tuple(r) for r in t.rows]
    con.close()


def test_the_fidelity_table_shows_mismatches_first_and_says_it_is_cut() -> None:
    """60 observed liquidations, the model exact on all but the 58th (debt repaid off by 5): the
    table showed the window's first 50 rows and its first ten columns, which left out both the
    mismatch and the error columns, and said nothing about the rest."""
    con = _con(("fidelity",))
    rows = [_row(fidelity.FIDELITY, block_number=100 + i, log_index=1, user=USER, kind="observed",
                 matched=True, predicted_revert=None, debt_repaid_error_raw=5 if i == 57 else 0)
            for i in range(60)]
    _insert(con, fidelity.FIDELITY, rows)
    con.execute("INSERT INTO bt.summaries VALUES ('r1', 1, 100, 'fidelity', 'recall', '1.0', 1.0)")
    sec = _fidelity(_Data(con, "r1"))
    [t] = [b for b in sec.blocks if isinstance(b, Table) and b.headers[0] == "block_number"]
    assert "debt_repaid_error_raw" in t.headers and "collateral_seized_error_raw" in t.headers
    err = list(t.headers).index("debt_repaid_error_raw")
    assert t.rows[0][0] == "157" and t.rows[0][err] == "5", t.rows[0]
    assert len(t.rows) == 50
    notes = [b.text for b in sec.blocks if isinstance(b, Para) and b.text.startswith("Shown:")]
    assert notes and "50 of the run's 60 rows" in notes[0], notes
    con.close()


def test_compare_names_a_change_of_data_between_two_runs(tmp_path: Any) -> None:
    """Two runs of one scenario and code over the same window, the second after the warehouse was
    re-ingested (another block hash at the window's end, another ingest run): compare listed no
    identity difference, so their different figures read as if the model had changed."""
    from backtest.report.catalog import compare_runs

    db = str(tmp_path / "w.duckdb")
    con = duckdb.connect(db)
    con.execute("CREATE SCHEMA bt")
    for t in (outputs.RUNS, outputs.SUMMARIES):
        con.execute(t.ddl())
    for rid, h, src, v in (("ra", "0xaa", "ingest-1", 5.0), ("rb", "0xbb", "ingest-2", 7.5)):
        con.execute(
            "INSERT INTO bt.runs VALUES (?, 's', 'ab', NULL, 'historical', 1, 'USD', 8, 1, 100, '0x01', ?, "
            "?, ['bad_debt'], 'v1', '{}', 0, 0, 0, 0, 'ok')", [rid, h, [src]])
        con.execute("INSERT INTO bt.summaries VALUES (?, 1, 100, 'bad_debt', 'end_total_oracle_usd', ?, ?)",
                    [rid, json.dumps(v), v])
    con.close()
    res = compare_runs(db, "ra", "rb")
    differ = {k: (v["a"], v["b"]) for k, v in res["identity"].items() if not v["same"]}
    assert differ == {"to_block_hash": ("0xaa", "0xbb"), "data_sources": (["ingest-1"], ["ingest-2"])}
    [f] = res["figures"]
    assert (f["diff"], f["pct"]) == (2.5, 50.0)  # b - a, in percent of a
    json.dumps(res)  # the identity stays JSON


def _summary_run(currency: str, decimals: int, figures: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA bt")
    for t in (outputs.RUNS, outputs.SUMMARIES):
        con.execute(t.ddl())
    con.execute(
        "INSERT INTO bt.runs VALUES ('r1', 's', 'ab', NULL, 'historical', 1, ?, ?, 1, 100, NULL, NULL, "
        "[], ['bad_debt'], 'test', ?, 0, 0, 0, 0, 'ok')",
        [currency, decimals, json.dumps({"market": {"dataset": "aave_v3"}})],
    )
    for name, v in figures.items():
        con.execute("INSERT INTO bt.summaries VALUES ('r1', 1, 100, 'bad_debt', ?, ?, ?)",
                    [name, json.dumps(v), v])
    return con


def test_a_money_figure_reads_the_same_everywhere_in_the_report() -> None:
    """One figure, three roundings: an ETH run's bad debt of 1.23456789 ETH was '1.23' in the
    headline and the figures list but '1.2346 ETH' in the bad-debt table; a USD run's bad debt of
    $0.004 was '0.004' in the headline and '0.00 USD' (nothing) in the table. Now every place
    shows the currency's decimals (2 for USD, 4 otherwise), and a non-zero amount that would round
    to zero keeps significant digits."""
    from backtest.report.build import _all_figures, _bad_debt, _headline

    for cur, dec, v, want in (("ETH", 18, 1.23456789, "1.2346"), ("USD", 8, 0.004, "0.004"),
                              ("USD", 8, 1234.5, "1,234.50")):
        key = "end_total_oracle_usd" if cur == "USD" else "end_total_oracle_eth"
        con = _summary_run(cur, dec, {key: v, "realized_" + key.split("_")[-1]: 0.0})
        con.execute(bad_debt_ddl())
        d = _Data(con, "r1")
        head = dict(_headline(d))
        assert head[f"bad debt at window end ({cur})"] == want, (cur, head)
        [table] = [b for b in _bad_debt(d).blocks if isinstance(b, Table)]
        cells = {str(r[0]): str(r[1]) for r in table.rows}
        assert cells["bad debt at window end (unrealized + realized)"] == f"{want} {cur}"
        assert cells["realized"] == f"{'0.00' if cur == 'USD' else '0.0000'} {cur}"
        [figs] = [b for b in _all_figures(d).blocks if isinstance(b, Table)]
        assert {str(r[0]): str(r[1]) for r in figs.rows}[key] == want
        con.close()


def bad_debt_ddl() -> str:
    import backtest.metrics.bad_debt as bad_debt

    return bad_debt.BLOCKS.ddl()


def _two_runs(db: str, figures: dict[str, dict[tuple[str, str], Any]]) -> None:
    """A warehouse file with USD runs (id -> {(metric, name): value}) and their summary figures."""
    con = duckdb.connect(db)
    con.execute("CREATE SCHEMA bt")
    for t in (outputs.RUNS, outputs.SUMMARIES):
        con.execute(t.ddl())
    for rid, figs in figures.items():
        metrics = sorted({m for m, _ in figs})
        con.execute(
            "INSERT INTO bt.runs VALUES (?, 's', 'ab', NULL, 'historical', 1, 'USD', 8, 1, 100, NULL, NULL, "
            "[], ?, 'v1', '{}', 0, 0, 0, 0, 'ok')", [rid, metrics])
        for (m, name), v in figs.items():
            con.execute("INSERT INTO bt.summaries VALUES (?, 1, 100, ?, ?, ?, ?)",
                        [rid, m, name, json.dumps(v), v])
    con.close()


def test_compare_shows_a_small_change_as_a_change(tmp_path: Any, capsys: Any) -> None:
    """deficit compare printed a USD bad debt going from $0.001 to $0.004 as '0.00  0.00  0.00
    +300.00': a changed figure whose values and difference all read zero. Non-zero amounts keep
    significant digits (as in the report)."""
    import argparse

    from backtest.report.catalog import _cmd_compare

    db = str(tmp_path / "w.duckdb")
    _two_runs(db, {rid: {("bad_debt", "end_total_oracle_usd"): v}
                   for rid, v in (("ra", 0.001), ("rb", 0.004))})
    assert _cmd_compare(argparse.Namespace(run_a="ra", run_b="rb", db=db, all=False, json=False)) == 0
    [row] = [ln.split() for ln in capsys.readouterr().out.splitlines() if ln.startswith("bad_debt.")]
    assert row == ["bad_debt.end_total_oracle_usd", "0.001", "0.004", "0.003", "+300.00"], row


def test_the_report_stays_under_out_whatever_the_run_id(tmp_path: Any) -> None:
    """A run id is any string (`deficit run --run-id`); the report went to OUT/RUN_ID/ joined as a
    path, so run id '../../escape' wrote report.html two folders above --out (and '/abs/x' to
    /abs/x). The folder is now the run id with every character but [A-Za-z0-9._-] (and a leading
    dot) replaced by '_'."""
    from pathlib import Path

    from backtest.report.build import build_report

    db = str(tmp_path / "w.duckdb")
    con = duckdb.connect(db)
    con.execute("CREATE SCHEMA bt")
    for t in (outputs.RUNS, outputs.SUMMARIES):
        con.execute(t.ddl())
    for rid in ("../../escape", "bt-0123abcd", "/abs/x"):
        con.execute(
            "INSERT INTO bt.runs VALUES (?, 's', 'ab', NULL, 'historical', 1, 'USD', 8, 1, 100, NULL, NULL, "
            "[], [], 'v1', '{}', 0, 0, 0, 0, 'ok')", [rid])
    con.close()
    out = tmp_path / "a" / "b" / "out"
    import hashlib

    def h(rid: str) -> str:  # an id with a character replaced keeps 12 hex digits of its sha256
        return "-" + hashlib.sha256(rid.encode()).hexdigest()[:12]

    for rid, folder in (("../../escape", "_._.._escape" + h("../../escape")), ("bt-0123abcd", "bt-0123abcd"),
                        ("/abs/x", "_abs_x" + h("/abs/x"))):
        files = build_report(db, rid, out)
        assert files.html == out / folder / "report.html" and files.html.is_file(), files.html
        assert Path(files.html).resolve().is_relative_to(out.resolve())
        assert rid in files.html.read_text()  # the report still names the run as stored
    assert not (tmp_path / "a" / "escape").exists()


def test_compare_says_what_unit_a_value_figure_is_in(tmp_path: Any, capsys: Any) -> None:
    """deficit compare listed bad_debt.end_unrealized_oracle_value = 409,074,251,400 under 'values
    in USD' ($4,090.74 in 1e-8 USD units, read as $409 billion); deficit run says the *_value
    unit, compare did not."""
    import argparse

    from backtest.report.catalog import _cmd_compare

    db = str(tmp_path / "w.duckdb")
    _two_runs(db, {rid: {("bad_debt", "end_unrealized_oracle_value"): v}
                   for rid, v in (("ra", 409_074_251_400), ("rb", 0))})
    assert _cmd_compare(argparse.Namespace(run_a="ra", run_b="rb", db=db, all=False, json=False)) == 0
    out = capsys.readouterr().out
    assert "*_value figures in units of 10^-8 USD" in out and "*_usd figures in whole USD" in out, out


def test_a_plot_file_names_the_run_it_comes_from(tmp_path: Any) -> None:
    """The plots/*.svg files beside report.md are the figures people copy into slides and tickets;
    they carried a title only, so a copied chart could not be traced to its run, blocks, block
    hashes, scenario or code. Each now has that provenance as its <desc> (escaped, well-formed)."""
    import xml.etree.ElementTree as ET

    import backtest.metrics.bad_debt as bad_debt
    from backtest.report.build import build_report

    db = str(tmp_path / "w.duckdb")
    con = duckdb.connect(db)
    con.execute("CREATE SCHEMA bt")
    for t in (outputs.RUNS, outputs.SUMMARIES, bad_debt.BLOCKS, bad_debt.ACCOUNTS):
        con.execute(t.ddl())
    con.execute(
        "INSERT INTO bt.runs VALUES ('bt-1', 'crash <&> \"q\"', 'ab12', NULL, 'historical', 1, 'USD', 8, "
        "600, 7799, '0xfirst', '0xlast', ['ingest-1', 'prices-1'], ['bad_debt'], 'deficit 9.9+gabc', '{}', "
        "0, 0, 0, 0, 'ok')")
    con.close()
    files = build_report(db, "bt-1", tmp_path / "out")
    [svg] = [p for p in files.plots if p.name == "bad_debt.svg"]
    desc = ET.parse(svg).getroot().find("{http://www.w3.org/2000/svg}desc")
    assert desc is not None and desc.text is not None
    for want in ("bt-1", 'crash <&> "q"', "ab12", "600 (0xfirst)", "7799 (0xlast)", "ingest-1, prices-1",
                 "deficit 9.9+gabc", "USD"):
        assert want in desc.text, (want, desc.text)


def test_the_chains_liquidators_costs_are_unknown_not_zero() -> None:
    """bt.liquidations holds 0 gas, slippage and profit for observed rows (the model prices only
    its own liquidations); the report's table showed those zeros, as if the chain's liquidators
    had paid no gas and made no profit. They are shown as unknown; simulated rows keep theirs."""
    con = _con(("liquidations",))
    u = 10**8
    _insert(con, outputs.LIQUIDATIONS, [
        _row(outputs.LIQUIDATIONS, block_number=100, log_index=1, observed=True, committed=True, user=USER,
             debt_repaid_value=1000 * u, collateral_seized_value=1050 * u),
        _row(outputs.LIQUIDATIONS, block_number=101, log_index=None, observed=False, user=USER,
             debt_repaid_value=500 * u, collateral_seized_value=525 * u, gas_cost_value=3 * u,
             slippage_value=2 * u, profit_value=20 * u)])
    sec = _liquidations(_Data(con, "r1"))
    [t] = [b for b in sec.blocks if isinstance(b, Table) and b.headers[0] == "origin" and len(b.headers) > 3]
    by = {r[0]: dict(zip(t.headers, r, strict=True)) for r in t.rows}
    assert [by["observed"][f"{k} USD"] for k in ("gas", "slippage", "profit")] == ["–", "–", "–"]
    assert by["observed"]["debt repaid USD"] == "1,000.00"
    assert [by["simulated, prediction"][f"{k} USD"] for k in ("gas", "slippage", "profit")] == [
        "3.00", "2.00", "20.00"]
    con.close()


def test_a_reorg_of_the_window_is_not_called_absent_for_a_run_without_its_exposure() -> None:
    """bt.reorg_exposure is written for the runs of a finality attribution only (deficit demo's
    wait:0 / wait:64 runs), and the finality section of any other run of the warehouse said 'No
    reorg recorded in meta.reorgs touches the window' because the table existed (other runs' rows),
    while meta.reorgs recorded one inside the window. The report now reads meta.reorgs itself."""
    import backtest.metrics.finality as finality
    import ingest.warehouse as iw
    from backtest.report.build import _finality

    con = _con(("finality",))
    con.execute(finality.REORGS.ddl())
    con.execute("CREATE SCHEMA meta")
    con.execute(iw.REORGS.ddl())
    # another run's exposure row: the table exists; r1 (window 1..100) has none
    _insert(con, finality.REORGS, [_row(finality.REORGS, run_id="other", block_number=40, old_tip_block=42,
                                        depth=2, detected_by_run="ingest-9")])
    con.execute("INSERT INTO meta.reorgs VALUES (1, TIMESTAMPTZ '2026-01-01 00:00:00+00', 'ingest-9', 40, 2, "
                "42, ['0xa', '0xb'], ['0xc', '0xd'], 7)")
    # a reorg of another chain and one above the window do not touch it
    at = "TIMESTAMPTZ '2026-01-01 00:00:00+00'"
    con.execute(f"INSERT INTO meta.reorgs VALUES (2, {at}, 'ingest-8', 40, 2, 42, [], [], 1), "
                f"(1, {at}, 'ingest-7', 100, 3, 103, [], [], 1)")
    sec = _finality(_Data(con, "r1"))
    texts = [b.text for b in sec.blocks if isinstance(b, Para)]
    assert not any(t.startswith("No reorg") for t in texts), texts
    assert any("not computed for this run" in t for t in texts), texts
    [t] = [b for b in sec.blocks if isinstance(b, Table) and b.headers[0] == "fork block"]
    assert [list(r) for r in t.rows] == [["40", "42", "2", "ingest-9", "7"]], t.rows
    # with no reorg in meta.reorgs touching the window, the sentence is true and stays
    con.execute("DELETE FROM meta.reorgs WHERE run_id = 'ingest-9'")
    texts = [b.text for b in _finality(_Data(con, "r1")).blocks if isinstance(b, Para)]
    assert "No reorg recorded in meta.reorgs touches the window." in texts, texts
    con.close()


def test_a_plot_label_keeps_its_unit_prefix() -> None:
    """Waterfall bar labels and tooltips are data values: 999,600 USD read '1e+03k' (rounded to
    1000 thousands after choosing 'k'), 1.5 trillion '1.5e+03B'."""
    from backtest.report.svg import fmt_num

    assert fmt_num(999_600) == "1M"
    assert fmt_num(-999_600) == "-1M"
    assert fmt_num(999_600_000) == "1B"
    assert fmt_num(1.5e12) == "1,500B"
    assert [fmt_num(v) for v in (999_499, 12_345, 9_999.7, 0.5, 0)] == ["999k", "12.3k", "10,000", "0.5", "0"]


def test_a_ratio_below_one_is_never_shown_as_one() -> None:
    """Fidelity recall and precision (and any float below 1) were formatted to 4 significant
    digits: a recall of 99,999 in 100,000 (0.99999, one observed liquidation the model missed)
    read '1', a perfect score, in the headline and the fidelity table."""
    from backtest.report.build import _fmt

    assert _fmt(0.99999) == "0.99999"
    assert _fmt(-0.99999) == "-0.99999"
    assert _fmt(1 - 1e-12) not in ("1", "1.00", "1.000")
    assert [_fmt(v) for v in (1.0, 0.5, 0.123456, 0.004)] == ["1.00", "0.5", "0.1235", "0.004"]


def test_an_ingest_run_without_finality_says_unknown_not_none() -> None:
    """The provenance's ingest-runs table printed a NULL finality (import-prices runs) as Python's
    'None'; every other unknown of the report is '–'."""
    import ingest.warehouse as iw
    from backtest.report.build import _provenance

    con = _con(("bad_debt",))
    con.execute("UPDATE bt.runs SET data_sources = ['prices-1']")
    con.execute("CREATE SCHEMA meta")
    con.execute(iw.RUNS.ddl())
    cols = [c.name for c in iw.RUNS.columns]
    given = {"run_id": "prices-1", "command": "import-prices", "chain_id": 1, "status": "ok",
             "code_version": "v1", "started_at": "2026-01-01 00:00:00+00"}
    con.execute(f"INSERT INTO meta.runs ({', '.join(given)}) VALUES ({', '.join('?' * len(given))})",
                list(given.values()))
    assert "finality" in cols
    sec = _provenance(_Data(con, "r1"))
    [t] = [b for b in sec.blocks if isinstance(b, Table) and b.headers[0] == "ingest run"]
    row = dict(zip(t.headers, t.rows[0], strict=True))
    assert row["finality"] == "–", row
    assert "None" not in [str(c) for c in t.rows[0]], t.rows
    con.close()


def test_a_report_folder_holds_only_its_own_plots(tmp_path: Any) -> None:
    """The report of a run id written again into the same --out (the run re-run under its id with
    other data or metrics, a derived id over re-ingested data) left the previous report's plots
    in plots/: a waterfall of liquidations the run no longer has sat beside report.md, carrying
    the run's id. And two run ids that differ only in characters the folder name replaces ('a b',
    'a_b') shared one folder: the second report overwrote the first's."""
    from backtest.report.build import build_report

    db = str(tmp_path / "w.duckdb")
    con = duckdb.connect(db)
    con.execute("CREATE SCHEMA bt")
    for t in (outputs.RUNS, outputs.SUMMARIES, outputs.LIQUIDATIONS):
        con.execute(t.ddl())
    for rid in ("r1", "a b", "a_b"):
        con.execute(
            "INSERT INTO bt.runs VALUES (?, 's', 'ab', NULL, 'historical', 1, 'USD', 8, 1, 100, NULL, NULL, "
            "[], ['liquidations'], 'v1', '{}', 0, 0, 0, 0, 'ok')", [rid])
    _insert(con, outputs.LIQUIDATIONS, [_row(outputs.LIQUIDATIONS, block_number=10, log_index=None,
                                             observed=False, user=USER, debt_repaid_value=10**8)])
    con.close()
    out = tmp_path / "out"
    first = build_report(db, "r1", out)
    assert any(p.name.startswith("waterfall_") for p in first.plots)
    con = duckdb.connect(db)
    con.execute("DELETE FROM bt.liquidations")
    con.close()
    again = build_report(db, "r1", out)
    assert not any(p.name.startswith("waterfall_") for p in again.plots)
    assert sorted((again.html.parent / "plots").glob("*.svg")) == sorted(again.plots)
    a, b = build_report(db, "a b", out), build_report(db, "a_b", out)
    assert a.html != b.html and "run a b " in a.html.read_text() and "run a_b " in b.html.read_text()
    assert b.html.parent.name == "a_b"  # an id of the folder's characters keeps its name


def test_plot_axis_ticks_read_as_different_values() -> None:
    """Tick labels were 3 significant digits (and whole numbers from 100), whatever the step: a
    BTC price between 16,500 and 16,560 had ticks '16.5k', '16.5k', '16.5k', '16.6k', a stablecoin
    between 0.9995 and 1.0004 five ticks all '1', ETH moving half a dollar '1,200' twice; the time
    axis of a 3-day window read '01-11' twice and a 40-second one '00:00' twice. Ticks now read
    as the different values they are."""
    import re

    from backtest.report.svg import Series, bar_chart, line_chart

    def labels(svg: str) -> tuple[list[str], list[str]]:
        y = re.findall(r'text-anchor="end">([^<]*)</text>', svg)
        x = re.findall(r'y="\d+" text-anchor="middle">([^<]*)</text>', svg)
        return y, [v for v in x if v and v != "time (UTC)"]

    t0 = 1610323236
    for pts in (((t0, 16500.0), (t0 + 600, 16560.0)), ((t0, 0.9995), (t0 + 3 * 86400, 1.0004)),
                ((t0, 1200.1), (t0 + 40, 1200.6))):
        y, x = labels(line_chart("t", [Series("s", pts)]))
        assert len(set(y)) == len(y) > 1, y
        assert len(set(x)) == len(x) > 1, x
    y, _ = labels(line_chart("t", [Series("s", ((t0, 1000.0), (t0 + 600, 5000.0)))]))
    assert y == ["1,000", "2,000", "3,000", "4,000", "5,000"], y  # unchanged where they differed
    y, _ = labels(bar_chart("b", ["a", "b"], [("g", [16_540.0, 16_545.0])]))
    assert len(set(y)) == len(y), y


def test_compare_never_shows_a_changed_figure_as_unchanged(tmp_path: Any, capsys: Any) -> None:
    """deficit compare listed fidelity recall going from 0.99999 (one miss in 100,000) to 1.0 as
    '1.00  1.00  1e-05': a changed figure whose two values read the same; and a bad debt going
    from $1,000,000.00 to $1,000,000.01 as '+0.00' %. Two different values now read differently
    (as many digits as it takes) and a non-zero change in percent keeps significant digits."""
    import argparse

    from backtest.report.catalog import _cmd_compare

    db = str(tmp_path / "w.duckdb")
    _two_runs(db, {rid: {("fidelity", "recall"): recall, ("bad_debt", "end_total_oracle_usd"): bad}
                   for rid, recall, bad in (("ra", 0.99999, 1_000_000.0), ("rb", 1.0, 1_000_000.01))})
    assert _cmd_compare(argparse.Namespace(run_a="ra", run_b="rb", db=db, all=False, json=False)) == 0
    rows = {ln.split()[0]: ln.split()[1:] for ln in capsys.readouterr().out.splitlines()
            if ln.startswith(("bad_debt.", "fidelity."))}
    a, b, _, pct = rows["fidelity.recall"]
    assert a != b and a == "0.99999", rows
    a, b, diff, pct = rows["bad_debt.end_total_oracle_usd"]
    assert (a, b, diff) == ("1,000,000.00", "1,000,000.01", "0.01"), rows
    assert pct not in ("+0.00", "-0.00") and float(pct) > 0, rows
    from backtest.report.catalog import _fmt  # deficit runs' recall column too

    assert _fmt(0.99999, 2) == "0.99999" and _fmt(0.5, 2) == "0.50" and _fmt(1.0, 2) == "1.00"


def test_the_scenario_shown_as_what_the_sha256_covers_hashes_to_it() -> None:
    """The provenance showed the scenario 'as run (canonical JSON, what the sha256 covers)', but
    re-indented: its sha256 was not the run's scenario_sha256, so an auditor checking the hash
    against the text shown found a mismatch. The stored canonical JSON is now shown as it is (in
    the HTML and, byte for byte, in report.md); the indented one says it is for reading."""
    import hashlib

    from backtest.report.build import _provenance
    from backtest.report.model import Document, Pre, render_markdown

    con = _con(("bad_debt",))
    canonical = json.dumps({"market": {"dataset": "aave_v3"}, "name": "s <&> \"q\"", "x": 1.5},
                           sort_keys=True, separators=(",", ":"))
    sha = hashlib.sha256(canonical.encode()).hexdigest()
    con.execute("UPDATE bt.runs SET scenario_json = ?, scenario_sha256 = ?", [canonical, sha])
    sec = _provenance(_Data(con, "r1"))
    pres = [b for b in sec.blocks if isinstance(b, Pre)]
    covered = [p for p in pres if "what the sha256 covers" in p.summary]
    assert covered and all(hashlib.sha256(p.text.encode()).hexdigest() == sha for p in covered), \
        [(p.summary, p.text) for p in pres]
    md = render_markdown(Document("t", "s", [sec]), "plots")
    assert canonical in md.splitlines()
    con.close()


def test_a_run_without_a_reference_path_shows_no_reference_bad_debt() -> None:
    """Without a [reference] the bad_debt metric's reference figures are the oracle ones (its
    documented fallback, which the attribution relies on), but the report showed them as
    'peak unrealized (reference)' and drew an 'unrealized (reference prices)' line, as if the run
    had been measured against a market path it never had (the demo's stress run). With a
    reference path both are shown."""
    from backtest.report.build import _bad_debt
    from backtest.report.model import Plot

    for reference in (None, {"pairs": {ASSET: "ETH/USD"}, "source": None}):
        con = duckdb.connect()
        con.execute("CREATE SCHEMA bt")
        for t in (outputs.RUNS, outputs.SUMMARIES):
            con.execute(t.ddl())
        con.execute(bad_debt_ddl())
        con.execute(
            "INSERT INTO bt.runs VALUES ('r1', 's', 'ab', NULL, 'historical', 1, 'USD', 8, 1, 100, NULL, "
            "NULL, [], ['bad_debt'], 'test', ?, 0, 0, 0, 0, 'ok')",
            [json.dumps({"market": {"dataset": "aave_v3"}, "reference": reference})])
        import backtest.metrics.bad_debt as bad_debt

        _insert(con, bad_debt.BLOCKS, [_row(bad_debt.BLOCKS, block_number=5, block_ts=60,
                                            unrealized_oracle_value=10**8, unrealized_reference_value=10**8)])
        for name, v in (("end_total_oracle_usd", 1.0), ("peak_unrealized_reference_value", 10**8)):
            con.execute("INSERT INTO bt.summaries VALUES ('r1', 1, 100, 'bad_debt', ?, ?, ?)",
                        [name, json.dumps(v), v])
        blocks = _bad_debt(_Data(con, "r1")).blocks
        [table] = [b for b in blocks if isinstance(b, Table)]
        [plot] = [b for b in blocks if isinstance(b, Plot)]
        shown = "peak unrealized (reference)" in {str(r[0]) for r in table.rows}
        drawn = "reference prices" in plot.svg
        assert (shown, drawn) == ((True, True) if reference else (False, False)), reference
        con.close()


def test_compare_judges_non_finite_null_and_missing_figures() -> None:
    """deficit compare: two infinite figures crashed it (Decimal('inf') - Decimal('inf'): an
    InvalidOperation traceback, exit 1); a figure null in one run and absent from the other read as
    unchanged; two NaN figures read as changed. Now: no difference is computed for a non-finite
    value, NaN equals NaN, and null differs from absent."""
    import tempfile
    from pathlib import Path

    from backtest.report.catalog import compare_runs

    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "w.duckdb")
        _two_runs(db, {rid: {("m", n): v for n, v in figs.items()} for rid, figs in (
            ("ra", {"inf": float("inf"), "nan": float("nan"), "null": None, "one": 1.0}),
            ("rb", {"inf": float("inf"), "nan": float("nan"), "one": 1.0}))})
        out = {f["name"]: f for f in compare_runs(db, "ra", "rb")["figures"]}
    assert out["inf"]["changed"] is False and out["inf"]["diff"] is None
    assert out["nan"]["changed"] is False and out["nan"]["diff"] is None
    assert out["null"]["changed"] is True
    assert out["one"]["changed"] is False and out["one"]["diff"] == 0.0


def test_provenance_names_the_code_that_wrote_the_report() -> None:
    """A report built later, by other code, than the run it shows named only the run's code
    version: an auditor could not tell which version presented the figures (labels, derived
    ratios, the report's own checks). The writer's version is a row of its own, flagged when it
    is not the run's."""
    from backtest.report.build import _provenance
    from ingest.version import code_version

    con = _con(("bad_debt",))
    rows = {}
    for writer_is_runner in (False, True):
        ver = code_version() if writer_is_runner else "deficit 0.0.1+gdeadbeef"
        con.execute("UPDATE bt.runs SET code_version = ?", [ver])
        sec = _provenance(_Data(con, "r1"))
        [t] = [b for b in sec.blocks if isinstance(b, Table) and b.headers == ("field", "value")]
        rows[writer_is_runner] = dict(t.rows)
    assert rows[True]["report written by"] == code_version()
    assert rows[False]["code version"] == "deficit 0.0.1+gdeadbeef"
    assert rows[False]["report written by"].startswith(f"{code_version()} (not the run's code version")
    con.close()


def test_provenance_says_whether_the_oracle_answers_were_shocked() -> None:
    """A counterfactual run under [[shock]] entries read like any other counterfactual run: its
    figures come from moved oracle answers, and only the scenario JSON at the foot of the
    provenance said so. A row names the shocks (count, kinds, feeds, seed) or says none."""
    from backtest.report.build import _provenance
    from tests.backtest.markets import FEED_C, scenario

    con = _con(("bad_debt",))
    rows = {}
    shock = (f'\n[[shock]]\nkind = "shift"\npct = -0.2\nat_ts = 1700000060\nassets = ["{FEED_C}"]\n'
             '[[shock]]\nkind = "student_t"\nfrom_ts = 1700000000\nto_ts = 1700000600\nstep_s = 60\n'
             f'assets = ["{FEED_C}"]\nvol = 0.8\n')
    for shocked in (False, True):
        sc = scenario(extra=shock if shocked else "")
        con.execute("UPDATE bt.runs SET scenario_json = ?", [sc.canonical_json()])
        sec = _provenance(_Data(con, "r1"))
        [t] = [b for b in sec.blocks if isinstance(b, Table) and b.headers == ("field", "value")]
        rows[shocked] = dict(t.rows)
    assert rows[False]["price shocks"] == "none: the oracle's answers as the model gives them"
    text = rows[True]["price shocks"]
    assert text.startswith("2 ([[shock]]: shift, student_t; seed 0)"), text
    assert FEED_C in text
    con.close()


def test_the_finality_headline_says_how_many_liquidations_it_counts() -> None:
    """A historical run's 'liquidated on non-final state' is the whole observed volume (every
    on-chain liquidation acts on its own, not yet final, block): the headline printed the amount
    alone, which read as a finality risk of its own. It now says N of M liquidations, and in a
    historical run why (the demo's summary already did)."""
    from backtest.report.build import _headline

    figures = {"liquidated_not_final_usd": 1234.5, "liquidations_not_final": 7, "liquidations": 7}
    for mode in ("historical", "counterfactual"):
        con = _summary_run("USD", 8, {})
        con.execute("UPDATE bt.runs SET mode = ?, metrics = ['finality']", [mode])
        for name, v in figures.items():
            con.execute("INSERT INTO bt.summaries VALUES ('r1', 1, 100, 'finality', ?, ?, ?)",
                        [name, json.dumps(v), v])
        head = dict(_headline(_Data(con, "r1")))
        cell = head["liquidated on non-final state (USD)"]
        assert cell.startswith("1,234.50: 7 of 7 liquidations"), cell
        assert ("acts on its own block" in cell) == (mode == "historical"), cell
        con.close()
