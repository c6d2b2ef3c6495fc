"""User mistakes at the ``deficit`` command line: each is a typed error naming what and where
(file and line, or the output path), exit 2, no Python traceback, nothing half-written.

Runs the real command in a subprocess against a copy of the bundled sample (``data/sample.duckdb``,
a real Aave v3 market on anvil through the 2021-01-11 crash) with the demo's own scenario files,
whose table headers carry trailing comments (``[checks]   # judged by ...``), as users' files do.
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
OTHER_FEED = "0x1111111111111111111111111111111111111111"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A demo copy of the sample and the demo's scenario texts (historical, counterfactual, stress)."""
    db = tmp_path_factory.mktemp("wh") / "w.duckdb"
    prepare_warehouse(db, SAMPLE_DB)
    con = duckdb.connect(str(db), read_only=True)
    try:
        meta = {str(k): str(v) for k, v in con.execute("SELECT key, value FROM meta.sample").fetchall()}
    finally:
        con.close()
    return db, demo_scenarios(meta)


def deficit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "backtest.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith(needle))


def small(text: str) -> str:
    """A demo scenario over 100 blocks with one metric: a quick run."""
    text = text.replace("to_block = 7799", "to_block = 700")
    return re.sub(r"(?m)^names = \[.*\]$", 'names = ["bad_debt"]', text)


def runs(db: Path) -> list[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'bt' AND "
                           "table_name = 'runs'").fetchall()[0][0]:
            return []
        return [r[0] for r in con.execute("SELECT run_id FROM bt.runs ORDER BY 1").fetchall()]
    finally:
        con.close()


def assert_user_error(r: subprocess.CompletedProcess[str]) -> str:
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "Traceback" not in out, out
    return out


@pytest.mark.parametrize("scenario, old, new, needle, field", [
    ("historical", "reaction_delay_blocks = 2", 'reaction_delay_blocks = "2"', "reaction_delay_blocks",
     "liquidator.reaction_delay_blocks"),
    ("historical", "max_bad_debt_usd = 100", "max_bad_dept_usd = 100", "max_bad_dept_usd",
     "checks.max_bad_dept_usd"),
    ("stress", "pct = -0.25", "pct = -1.5", "pct = -1.5", "shock[0].pct"),
])
def test_errors_under_a_commented_table_header_name_the_line(
    sample: tuple[Path, dict[str, str]], tmp_path: Path, scenario: str, old: str, new: str, needle: str,
    field: str,
) -> None:
    db, texts = sample
    text = texts[scenario]
    assert old in text
    text = text.replace(old, new)
    if "[checks]" not in text:
        text += "\n[checks]                 # a trailing comment\nmax_bad_debt_usd = 1\n"
    f = tmp_path / f"{scenario}.toml"
    f.write_text(text)
    n = line_of(text, needle)
    r = deficit("check", str(f), "--db", str(db))
    out = assert_user_error(r)
    assert f"error: {f}:{n}: {field}: " in r.stderr, out
    assert f"::error file={f},line={n}," in r.stdout, out


def test_a_shock_on_a_feed_without_prices_is_a_scenario_error(
    sample: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    db, texts = sample
    text = small(texts["stress"])
    feed = re.search(r'assets = \["(0x[0-9a-f]{40})"\]', text)
    assert feed is not None
    text = text.replace(feed.group(0), f'assets = ["{OTHER_FEED}"]')
    f = tmp_path / "shock.toml"
    f.write_text(text)
    n = line_of(text, "assets = ")
    before = runs(db)
    out = assert_user_error(deficit("run", str(f), "--db", str(db)))
    assert f"{f}:{n}: shock[0].assets: no price path for '{OTHER_FEED}'" in out
    assert feed.group(1) in out  # the feeds that do have prices are listed
    f.write_text(text + "\n[checks]\nmax_bad_debt_usd = 1\n")
    out = assert_user_error(deficit("check", str(f), "--db", str(db)))
    assert f"::error file={f},line={n}," in out
    assert runs(db) == before  # nothing written


def test_missing_data_names_the_scenario(sample: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    db, texts = sample
    f = tmp_path / "late.toml"
    f.write_text(small(texts["counterfactual"]).replace("to_block = 700", "to_block = 99999"))
    out = assert_user_error(deficit("run", str(f), "--db", str(db)))
    assert f"error: {f}: " in out and "99999" in out


def test_a_baseline_threshold_without_a_baseline_names_no_none_line(
    sample: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    db, texts = sample
    f = tmp_path / "inline.toml"  # an inline [checks] table: no line of its own for the key
    f.write_text(re.sub(r"(?m)^(chain_id = .*)$", r"\1\nchecks = { max_bad_debt_rise_pct = 5 }",
                        small(texts["counterfactual"]), count=1))
    out = assert_user_error(deficit("check", str(f), "--db", str(db)))
    line = line_of(f.read_text(), "checks = ")  # the inline table's line
    assert f"error: {f}:{line}: checks.max_bad_debt_rise_pct: compares against a baseline" in out
    assert "None" not in out


def test_unwritable_outputs_are_errors_not_tracebacks(
    sample: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    db, texts = sample
    blocker = tmp_path / "a-file"  # a file where a folder is expected
    blocker.write_text("in the way\n")
    f = tmp_path / "ok.toml"
    f.write_text(small(texts["counterfactual"]) + "\n[checks]\nmax_bad_debt_usd = 1e12\n")

    r = deficit("check", str(f), "--db", str(db), "--junit", str(blocker / "junit.xml"))
    out = assert_user_error(r)
    assert f"--junit {blocker / 'junit.xml'}: cannot write" in r.stderr, out
    assert "PASS  max_bad_debt_usd" in r.stdout  # the verdicts are still shown
    r = deficit("check", str(f), "--db", str(db), "--write-baseline", str(blocker / "b.json"))
    assert f"--write-baseline {blocker / 'b.json'}: cannot write" in assert_user_error(r)

    run_id = runs(db)[0]
    r = deficit("report", run_id, "--db", str(db), "--out", str(blocker))
    assert f"cannot write the report under --out {blocker}" in assert_user_error(r)

    fresh = tmp_path / "fresh.duckdb"
    r = deficit("demo", "--db", str(fresh), "--out", str(blocker))
    assert "cannot write the demo's files" in assert_user_error(r)
    assert not fresh.exists()  # the warehouse is not touched when --out is unusable


def test_a_time_window_outside_the_data_says_what_is_ingested(sample: tuple[Path, dict[str, str]],
                                                              tmp_path: Path) -> None:
    db, texts = sample
    text = re.sub(r"(?m)^from_block = .*$", 'from = "2030-01-01T00:00:00Z"', small(texts["counterfactual"]))
    f = tmp_path / "late.toml"
    f.write_text(text)
    before = runs(db)
    r = deficit("run", str(f), "--db", str(db))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    # the window field, what is there (blocks and UTC times of the sample) and the command that fetches it
    assert "window.from" in r.stderr and "2030-01-01" in r.stderr
    assert "blocks 0..7799 (2021-01-10T22:00:00Z .. 2021-01-11T23:59:48Z)" in r.stderr
    assert "deficit ingest --chain 31337 --from 2030-01-01T00:00:00Z" in r.stderr
    assert runs(db) == before


def test_bt_runs_records_the_scenario_file_as_an_absolute_path(sample: tuple[Path, dict[str, str]],
                                                                tmp_path: Path) -> None:
    db, texts = sample
    (tmp_path / "s.toml").write_text(small(texts["counterfactual"]))
    r = subprocess.run([sys.executable, "-m", "backtest.cli", "run", "s.toml", "--db", str(db), "--json"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    rid = json.loads(r.stdout)["run_id"]
    con = duckdb.connect(str(db), read_only=True)
    try:
        path = con.execute("SELECT scenario_path FROM bt.runs WHERE run_id = ?", [rid]).fetchall()[0][0]
    finally:
        con.close()
    assert path == str((tmp_path / "s.toml").resolve())


def test_a_reader_closing_the_pipe_early_is_not_a_traceback() -> None:
    """``deficit schema | head``: the reader is gone before the command writes (its end of the
    pipe is closed at once, so the write fails with EPIPE every time); the command ends quietly
    with 141 (128 + SIGPIPE, as a shell reports it) instead of a BrokenPipeError traceback."""
    with subprocess.Popen([sys.executable, "-m", "backtest.cli", "schema"], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
        assert p.stdout is not None and p.stderr is not None
        p.stdout.close()
        err = p.stderr.read().decode()
        assert p.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err


@pytest.mark.parametrize("rid", ["", "../../x", "run\nid", "a" * 129, "bt 1"])
def test_a_run_id_that_is_not_a_plain_name_is_refused(sample: tuple[Path, dict[str, str]], tmp_path: Path,
                                                      rid: str) -> None:
    """--run-id was stored as given: a path, a newline (a forged line in a CI log) or an empty
    id went into bt.runs and the report folder. Refused before anything runs; nothing written."""
    db, texts = sample
    f = tmp_path / "s.toml"
    f.write_text(small(texts["counterfactual"]))
    out = assert_user_error(deficit("run", str(f), "--db", str(db), "--run-id", rid))
    assert "use 1-128 letters, digits" in out
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        has_runs = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'bt' "
                               "AND table_name = 'runs'").fetchall()[0][0]
        n = 0
        if has_runs:
            n = con.execute("SELECT count(*) FROM bt.runs WHERE run_id = ?", [rid]).fetchall()[0][0]
    finally:
        con.close()
    assert n == 0


@pytest.mark.parametrize("command", ["run", "check"])
def test_a_scenario_that_is_not_utf8_names_its_line(tmp_path: Path, command: str) -> None:
    """TOML is UTF-8; a scenario saved in another encoding (a Latin-1 'é' in its name, line 3)
    was a UnicodeDecodeError traceback (exit 1), and read in the locale's encoding where that is
    not UTF-8. A ScenarioError at the line of the first undecodable byte, exit 2."""
    f = tmp_path / "latin1.toml"
    f.write_bytes(b'# a scenario\nchain_id = 1\nname = "crash \xe9t\xe9"\n')
    out = assert_user_error(deficit(command, str(f)))
    assert f"{f}:3: not UTF-8 text" in out and "byte 0xe9" in out
