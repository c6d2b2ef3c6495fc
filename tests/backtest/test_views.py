"""The analysts' views over bt.*: created by the run writer, listed in the schema, each runs and
matches its declared columns; daily bad debt per reserve agrees with the accounts' rows; the
README's `## Querying results` queries return rows for a real run (report_market.py)."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

import backtest
from backtest.views import DEPENDS, VIEWS
from ingest.schema import registered_tables, schema_markdown
from tests.backtest import report_market as rm

pytestmark = pytest.mark.anvil
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[rm.Built, str]:
    built = rm.build(tmp_path_factory.getbasetemp() / "report-market.duckdb")
    sc = tmp_path_factory.mktemp("views") / "s.toml"
    sc.write_text(rm.scenario_text(built, name="views"))
    return built, backtest.run(str(sc)).run_id


def test_views_are_declared_and_documented() -> None:
    import backtest.cli  # noqa: F401  (the deficit command registers bt tables and views)

    names = {t.fqn: t for t in registered_tables()}
    md = schema_markdown()
    for v in VIEWS:
        assert names[v.fqn].kind == "view"
        assert f"### `{v.fqn}` (view)" in md
        assert set(DEPENDS[v.fqn]) <= set(names), DEPENDS[v.fqn]


def test_each_view_runs_with_its_declared_columns(run: tuple[rm.Built, str]) -> None:
    built, run_id = run
    con = duckdb.connect(str(built.db), read_only=True)
    try:
        for v in VIEWS:
            cur = con.execute(f"SELECT * FROM {v.fqn} WHERE run_id = ?", [run_id])
            assert [d[0] for d in cur.description] == v.column_names(), v.fqn
            assert cur.fetchall(), f"{v.fqn} has no row for run {run_id}"
        # the view's end-of-day total equals the accounts' last rows at or before midnight
        day, total = con.execute(
            "SELECT max(day), sum(bad_debt_oracle_value) FILTER (WHERE day = (SELECT max(day) FROM "
            "bt.daily_bad_debt_by_reserve WHERE run_id = $1)) FROM bt.daily_bad_debt_by_reserve "
            "WHERE run_id = $1",
            [run_id],
        ).fetchall()[0]
        rows = con.execute(
            "SELECT user, block_number, sum(bad_debt_oracle_value) FROM bt.bad_debt_accounts "
            "WHERE run_id = ? AND block_ts < (epoch(?::DATE) + 86400) "
            "GROUP BY ALL ORDER BY user, block_number",
            [run_id, day],
        ).fetchall()
        last: dict[str, int] = {}
        for user, _, v in rows:
            last[user] = int(v)
        assert int(total) == sum(last.values()) > 0
        # run_overview carries the summaries' figures
        ov = con.execute("SELECT bad_debt_end_base FROM bt.run_overview WHERE run_id = ?",
                         [run_id]).fetchall()
        s = con.execute(
            "SELECT value_f64 FROM bt.summaries WHERE run_id = ? AND metric = 'bad_debt' AND "
            "name = 'end_total_oracle_usd'",
            [run_id],
        ).fetchall()
        assert ov == s
        # an Aave v3 run: money in USD, 8 decimals; the liquidations view divides by them
        assert con.execute("SELECT DISTINCT base_currency FROM bt.liquidations_with_delay WHERE run_id = ?",
                           [run_id]).fetchall() == [("USD",)]
        pairs = con.execute(
            "SELECT v.debt_repaid_base, l.debt_repaid_value FROM bt.liquidations_with_delay v "
            "JOIN bt.liquidations l USING (run_id, block_number, \"user\", tx_hash) WHERE run_id = ?",
            [run_id]).fetchall()
        assert pairs and all(repaid == int(value) / 10**8 for repaid, value in pairs)
    finally:
        con.close()


def test_readme_querying_results_queries_return_rows(run: tuple[rm.Built, str]) -> None:
    built, _ = run
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Querying results", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"``` sql\n(.*?)```", section, re.S)
    queries = [q.strip() for b in blocks for q in b.split(";") if q.strip()]
    assert len(queries) >= 3
    con = duckdb.connect(str(built.db), read_only=True)
    try:
        for q in queries:
            assert con.execute(q).fetchall(), q
    finally:
        con.close()


def test_importing_the_views_registers_the_tables_they_read() -> None:
    """A process that imported backtest.views but no metric (the demo's modules do) listed the
    views in ingest.schema.registered_tables() without bt.bad_debt_accounts or bt.oracle_lag_feeds,
    so Warehouse.ensure(*registered_tables()) failed creating bt.daily_bad_debt ('Table with name
    bad_debt_accounts does not exist'): tests/test_demo.py failed when run after test_demo_main.py.
    Checked in a fresh interpreter, whose imports are only these."""
    import subprocess
    import sys

    code = ("import backtest.views as v\nfrom ingest.schema import registered_tables\n"
            "have = {t.fqn for t in registered_tables()}\n"
            "print(sorted(d for ds in v.DEPENDS.values() for d in ds if d not in have))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
