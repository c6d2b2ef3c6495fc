"""The ``deficit`` command line as a user (or a CI runner) meets it: flags with a wrong value,
signals, output that must not be reshaped. Each bad input is a typed error naming the flag, exit
2, no traceback and no warehouse file; a stopped run says so and leaves its record consistent.

Runs the real command in a subprocess; the ingest ones against a real anvil (conftest).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from backtest.demo import SAMPLE_DB, demo_scenarios, prepare_warehouse

ROOT = Path(__file__).resolve().parents[1]


def deficit(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "backtest.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def assert_user_error(r: subprocess.CompletedProcess[str]) -> str:
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "Traceback" not in out, out
    return out


@pytest.mark.parametrize("limit", ["banana", "1GB'; SELECT 1; --", "", "-1GB", "0MB"])
def test_a_bad_memory_limit_names_the_flag_and_creates_nothing(tmp_path: Path, limit: str) -> None:
    """--memory-limit went into ``SET memory_limit = '<value>'`` after the warehouse file was
    created: a DuckDB ParserException traceback (exit 1) and an empty warehouse left behind, and
    DuckDB reads -1GB as no limit at all (16 PiB), so a negative one was silently none. The
    endpoint is a closed port: the flag is judged before anything is contacted or opened."""
    db = tmp_path / "w.duckdb"
    r = deficit("ingest", "--rpc", "http://127.0.0.1:1", "--chain", "1", "--db", str(db),
                f"--memory-limit={limit}")
    out = assert_user_error(r)
    assert "--memory-limit" in out and repr(limit) in out, out
    assert not db.exists()


@pytest.mark.parametrize("chain", ["0", str(2**64), "99999999999999999999999"])
def test_a_chain_id_out_of_range_is_refused(tmp_path: Path, chain: str) -> None:
    """A chain id is a positive integer that meta.runs stores as UBIGINT: a larger one was a
    DuckDB ConversionException traceback (exit 1) from the meta.runs insert, with the warehouse
    file already created; 0 (no chain has it, EIP-155) was sent to the node as the declared id."""
    db = tmp_path / "w.duckdb"
    r = deficit("ingest", "--rpc", "http://127.0.0.1:1", "--chain", chain, "--db", str(db))
    out = assert_user_error(r)
    assert "--chain" in out and chain in out, out
    assert not db.exists()


def test_error_messages_are_printed_as_written(tmp_path: Path) -> None:
    """Messages went through rich with emoji codes on: a ':x:' in an error (here the first record
    of a passwd-like file the importer quotes) was printed as an emoji, so the message no longer
    showed the file's text."""
    f = tmp_path / "prices.csv"
    f.write_text("root:x:0:0:root:/root:/bin/bash\n")
    r = deficit("import-prices", str(f), "--pair", "ETH/USD", "--db", str(tmp_path / "w.duckdb"))
    out = assert_user_error(r)
    assert "root:x:0:0:root" in r.stderr, out


def test_a_run_summary_prints_the_scenario_name_as_written(tmp_path: Path) -> None:
    """The same for ``deficit run``'s summary: a scenario named 'crash :x: test' was printed as
    'crash ❌ test'; and its closing hint, the command that writes the report, was wrapped at
    80 columns when not on a terminal (a CI log), splitting '--db' from its path."""
    from tests.test_cli_errors import small

    db = tmp_path / "w.duckdb"
    prepare_warehouse(db, SAMPLE_DB)
    con = duckdb.connect(str(db), read_only=True)
    try:
        meta = {str(k): str(v) for k, v in con.execute("SELECT key, value FROM meta.sample").fetchall()}
    finally:
        con.close()
    text = re.sub(r'(?m)^name = ".*"$', 'name = "crash :x: test"',
                  small(demo_scenarios(meta)["counterfactual"]))
    f = tmp_path / "s.toml"
    f.write_text(text)
    r = deficit("run", str(f), "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert "crash :x: test" in r.stdout, r.stdout
    rid = re.search(r"^run (\S+):", r.stdout)
    assert rid is not None, r.stdout
    assert f"report: deficit report {rid.group(1)} --db {db}\n" in r.stdout, r.stdout
