"""``deficit check`` verdicts and CI outputs without a chain: JUnit XML that CI parsers accept
(well-formed whatever the strings, counts equal to the testcases), non-finite figures judged
rather than crashing, signs of an infinite rise, and exit 2 (never 1, the "threshold failed"
code) when the warehouse cannot be read."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

from backtest.checks import Baseline, Checks, Figure, Outcome, Threshold, evaluate, junit_xml
from backtest.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
BAD_DEBT = Figure("bad_debt", "end_total_oracle_usd", "bad debt at the end", "USD")


def _max(limit: int, fig: Figure = BAD_DEBT, vs: str | None = None,
         key: str = "max_bad_debt_usd") -> Threshold:
    return Threshold(key, f"checks.{key}", 3, "max", Decimal(limit), fig, vs)  # type: ignore[arg-type]


def _suite(xml: bytes) -> ET.Element:
    root = ET.fromstring(xml)  # raises on ill-formed XML
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    # the counts CI tools read (Jenkins, GitLab, GitHub test reporters) must match the cases
    assert suite.get("tests") == str(len(cases)) == root.get("tests")
    n_fail = sum(c.find("failure") is not None for c in cases)
    assert suite.get("failures") == str(n_fail) == root.get("failures")
    assert suite.get("errors") == str(sum(c.find("error") is not None for c in cases)) == root.get("errors")
    assert suite.get("skipped") == str(sum(c.find("skipped") is not None for c in cases))
    return suite


def test_junit_is_well_formed_with_control_characters_in_names_and_messages() -> None:
    """A scenario name is any TOML string (``"crash\\u0007"`` is valid TOML) and a
    [[checks.figure]] name is echoed in its message: a C0 control character written as it is made
    the JUnit file ill-formed XML, so the CI's test reporter rejected the whole report."""
    fig = Figure("liquidations", "simulated\x01count", "x")
    outs = evaluate(Checks((_max(5), _max(1, fig, key="figure[0].max"))),
                    {"bad_debt": {"end_total_oracle_usd": 7.0}}, "r\x1b1")
    suite = _suite(junit_xml("crash\x07 <&> \"q\"", "s\x0c.toml", "r\x1b1", outs,
                             properties={"k": "v\x00"}))
    assert suite.get("name") == 'deficit check crash\\u0007 <&> "q"'
    fails = [c.find("failure") for c in suite.findall("testcase")]
    assert all(f is not None for f in fails)
    assert "simulated\\u0001count" in (fails[1].get("message") or "")  # type: ignore[union-attr]


def test_junit_counts_an_error_next_to_judged_thresholds() -> None:
    """After the thresholds were judged, a --write-baseline file that cannot be written is an
    error (exit 2) reported with them: the suite said tests=1 for two testcases."""
    outs = evaluate(Checks((_max(5),)), {"bad_debt": {"end_total_oracle_usd": 7.0}}, "r1")
    suite = _suite(junit_xml("n", "s.toml", "r1", outs, error="--write-baseline b.json: cannot write"))
    assert suite.get("tests") == "2" and suite.get("failures") == "1" and suite.get("errors") == "1"


def test_a_nan_figure_fails_its_threshold_instead_of_crashing() -> None:
    """A NaN figure (bt.summaries stores it as the JSON literal NaN; a baseline file may hold one)
    raised decimal.InvalidOperation out of evaluate: a traceback and exit 1, the code of a failed
    threshold, with no JUnit file. It cannot be judged: it fails with a message saying so."""
    nan = float("nan")
    [o] = evaluate(Checks((_max(5),)), {"bad_debt": {"end_total_oracle_usd": nan}}, "r1")
    assert not o.ok and "not a number" in o.message
    base = Baseline("b0", "s", "h", "v", {"bad_debt": {"end_total_oracle_usd": nan}}, "b.json")
    [o] = evaluate(Checks((_max(0, vs="abs", key="max_bad_debt_rise_usd"),)),
                   {"bad_debt": {"end_total_oracle_usd": 1.0}}, "r1", base)
    assert not o.ok and "no number" in o.message


def test_an_infinite_fall_against_a_zero_baseline_says_fall() -> None:
    """A figure going from 0 to -3 against max_rise_pct is a fall of -inf %, which holds; the
    message said 'rose by +inf %' (the sign was dropped) and the JSON verdict held the float
    Infinity, which is not JSON (jq and strict parsers reject the whole --json output)."""
    fig = Figure("m", "x", "a figure")
    t = _max(5, fig, vs="pct", key="figure[0].max_rise_pct")
    base = Baseline("b0", "s", "h", "v", {"m": {"x": 0}}, "b.json")
    [down] = evaluate(Checks((t,)), {"m": {"x": -3}}, "r1", base)
    assert down.ok and "-inf %" in down.message and "+inf" not in down.message
    [up] = evaluate(Checks((t,)), {"m": {"x": 3}}, "r1", base)
    assert not up.ok and "+inf %" in up.message
    for o in (down, up):
        text = json.dumps(o.as_json(), allow_nan=False)  # raises on a float infinity
        assert json.loads(text)["compared"] == ("-inf" if o is down else "+inf")


def test_a_minus_infinite_figure_is_shown_negative() -> None:
    fig = Figure("m", "x", "a figure")
    t = Threshold("figure[0].min", "checks.figure[0].min", 3, "min", Decimal(0), fig)
    [o] = evaluate(Checks((t,)), {"m": {"x": float("-inf")}}, "r1")
    assert isinstance(o, Outcome) and not o.ok and "= -inf" in o.message, o.message


MIN_SCENARIO = """\
name = "min"
chain_id = 31337
mode = "historical"

[market]
protocol = "aave_v3"
dataset = "aave_v3"
source = "aave_v3_sample"
rules = "3.0"

[window]
from_block = 600
to_block = 7799

[metrics]
names = ["bad_debt"]

[checks]
max_bad_debt_usd = 100
"""


def test_an_unreadable_warehouse_exits_2_with_a_junit_error(tmp_path: Path) -> None:
    """A warehouse that is not a DuckDB file (or one locked by another process) raised the
    ingest's WarehouseError out of `deficit check`: exit 1, the code of a failed threshold, and no
    JUnit file; nothing was judged, so it is an error: exit 2, JUnit error, annotation."""
    sc = tmp_path / "s.toml"
    sc.write_text(MIN_SCENARIO)
    db = tmp_path / "w.duckdb"
    db.write_bytes(b"not a duckdb file" * 300)
    junit = tmp_path / "j.xml"
    r = subprocess.run([sys.executable, "-m", "backtest.cli", "check", str(sc), "--db", str(db), "--junit",
                        str(junit)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "not a valid DuckDB database file" in r.stderr
    assert f"::error file={sc}," in r.stdout
    suite = _suite(junit.read_bytes())
    assert suite.get("errors") == "1"


def test_the_sample_passes_and_a_tight_limit_fails(tmp_path: Path) -> None:
    """End to end on the bundled sample (a copy): exit 0, then 1 with a limit below the figure;
    the JUnit file is well-formed with matching counts both times."""
    db = tmp_path / "w.duckdb"
    shutil.copy(ROOT / "data" / "sample.duckdb", db)
    for limit, code in (("1e12", 0), ("0", 1)):
        sc = tmp_path / f"s{code}.toml"
        sc.write_text(MIN_SCENARIO.replace("max_bad_debt_usd = 100",
                                           f"max_unrealized_bad_debt_usd = {limit}"))
        junit = tmp_path / f"j{code}.xml"
        r = subprocess.run([sys.executable, "-m", "backtest.cli", "check", str(sc), "--db", str(db),
                            "--junit", str(junit), "--json"],
                           cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert r.returncode == code, r.stdout + r.stderr
        out = json.loads(r.stdout)  # the JSON document alone, a failure included
        assert out["checks"][0]["value"] > 0  # the crash leaves unrealized bad debt
        assert ("::error file=" in r.stderr) == (code == 1) and "::error" not in r.stdout
        suite = _suite(junit.read_bytes())
        assert suite.get("failures") == str(code)


def test_deficit_run_on_an_unreadable_warehouse_is_an_input_error(tmp_path: Path) -> None:
    """`deficit run` documents 2 for a run that cannot start (bad scenario, missing data) and 1
    for a replay error (an event contradicting the state); a warehouse that is not a DuckDB file
    exited 1, as if the replay had failed on the data."""
    sc = tmp_path / "s.toml"
    sc.write_text(MIN_SCENARIO)
    db = tmp_path / "w.duckdb"
    db.write_bytes(b"not a duckdb file" * 300)
    r = subprocess.run([sys.executable, "-m", "backtest.cli", "run", str(sc), "--db", str(db)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "not a valid DuckDB database file" in r.stderr and "Traceback" not in r.stderr


def test_a_failure_message_never_reads_as_holding() -> None:
    """Messages rounded both sides to 2 decimals (6 significant digits below 1): a peak of
    40.9074 USD against max 40.905 failed as '40.91 USD: > ... = 40.91 USD', the limit not as
    written; a recall of 0.79999999 against min 0.8 failed as '0.8: < ... = 0.8'. The limit is
    shown as written and the figure with the digits that tell it from the limit."""
    fig = Figure("bad_debt", "peak_unrealized_oracle_usd", "peak", "USD")
    [o] = evaluate(Checks((Threshold("max_unrealized_bad_debt_usd", "checks.max_unrealized_bad_debt_usd", 3,
                                     "max", Decimal("40.905"), fig),)),
                   {"bad_debt": {"peak_unrealized_oracle_usd": 40.9074}}, "r1")
    assert not o.ok and o.message.endswith("40.91 USD in run r1: > max_unrealized_bad_debt_usd = 40.905 USD")
    rec = Figure("fidelity", "recall", "recall")
    [o] = evaluate(Checks((Threshold("min_fidelity_recall", "checks.min_fidelity_recall", 4, "min",
                                     Decimal("0.8"), rec),)), {"fidelity": {"recall": 0.79999999}}, "r1")
    assert not o.ok and o.message == "fidelity.recall = 0.79999999 in run r1: < min_fidelity_recall = 0.8"
    suite = _suite(junit_xml("n", "s.toml", "r1", [o]))
    failure = suite.find("testcase/failure")
    assert failure is not None and "threshold: checks.min_fidelity_recall = 0.8 (min)" in (failure.text or "")


def test_a_checks_baseline_file_is_read_next_to_the_scenario(tmp_path: Path, monkeypatch: object) -> None:
    """[checks] baseline = "baseline.json" is relative to the scenario file (documented), but the
    current directory was tried first: a CI job running from the repository root, which holds
    another scenario's baseline.json, judged the rise against that one, silently."""
    import pytest

    from backtest.checks import BASELINE_FORMAT, _resolve_baseline

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    here, there = tmp_path / "root", tmp_path / "root" / "scenarios"
    there.mkdir(parents=True)
    for d, rid in ((here, "bt-other-scenario"), (there, "bt-this-scenario")):
        (d / "baseline.json").write_text(json.dumps({
            "format": BASELINE_FORMAT, "run_id": rid, "scenario": "s", "scenario_sha256": "h",
            "code_version": "v", "summaries": {"bad_debt": {"end_total_oracle_usd": 1.0}}}))
    monkeypatch.chdir(here)
    assert _resolve_baseline("baseline.json", there, ":memory:").run_id == "bt-this-scenario"
    # --baseline on the command line (no scenario directory) is relative to the current directory
    assert _resolve_baseline("baseline.json", None, ":memory:").run_id == "bt-other-scenario"


def test_a_baseline_that_cannot_be_read_back_is_an_error(tmp_path: Path, monkeypatch: object) -> None:
    """--write-baseline reads the run's figures back from the warehouse; an InputError there (the
    warehouse locked by another process since the run, say) escaped the command: a traceback and
    exit 1, the code of a failed threshold, after every threshold had held."""
    import argparse

    import pytest

    import backtest.checks as checks

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    sc = tmp_path / "s.toml"
    sc.write_text(MIN_SCENARIO)
    outs = evaluate(Checks((_max(5),)), {"bad_debt": {"end_total_oracle_usd": 1.0}}, "r1")
    monkeypatch.setattr(checks, "run_check", lambda *a, **k: checks.CheckReport("min", str(sc), "r1", outs))

    def locked(db: str, run_id: str) -> Baseline:
        raise InputError(f"baseline run {run_id}: {db} is locked by another process")

    monkeypatch.setattr(checks, "baseline_from_run", locked)
    junit = tmp_path / "j.xml"
    args = argparse.Namespace(scenario=str(sc), db=str(tmp_path / "w.duckdb"), baseline=None, run_id=None,
                              write_baseline=str(tmp_path / "b.json"), junit=str(junit), json=False)
    assert checks._cmd_check(args) == 2
    suite = _suite(junit.read_bytes())
    assert suite.get("tests") == "2" and suite.get("errors") == "1" and suite.get("failures") == "0"


def test_a_rise_between_infinite_figures_fails_instead_of_crashing() -> None:
    """An infinite figure against an infinite baseline figure (inf - inf), or any figure against
    an infinite baseline in percent (x / inf), raised decimal.InvalidOperation out of evaluate:
    'internal error ... nothing was judged', every other threshold's verdict and the JUnit cases
    lost. The rise is undefined: the threshold fails saying so, the others are judged."""
    fig = Figure("m", "x", "a figure")
    inf = float("inf")
    other = _max(5)
    for key, vs, v, bv in (("figure[0].max_rise", "abs", inf, inf),
                           ("figure[0].max_rise", "abs", -inf, -inf),
                           ("figure[0].max_rise_pct", "pct", inf, inf),
                           ("figure[0].max_rise_pct", "pct", 1.0, inf)):
        t = Threshold(key, f"checks.{key}", 4, "max", Decimal(0), fig, vs)  # type: ignore[arg-type]
        base = Baseline("b0", "s", "h", "v", {"m": {"x": bv}}, "b.json")
        o, judged = evaluate(Checks((t, other)), {"m": {"x": v}, "bad_debt": {"end_total_oracle_usd": 1.0}},
                             "r1", base)
        assert not o.ok and "undefined" in o.message and o.compared is None, o.message
        assert judged.ok
        json.dumps(o.as_json(), allow_nan=False)
    suite = _suite(junit_xml("n", "s.toml", "r1", [o, judged]))
    assert suite.get("failures") == "1" and suite.get("tests") == "2"


def test_check_help_states_the_exit_codes() -> None:
    """`deficit check --help` (what a CI author reads) did not say what its exit codes mean: only
    the one-line summary in `deficit --help` did, without telling a failed replay from a failed
    threshold."""
    r = subprocess.run([sys.executable, "-m", "backtest.cli", "check", "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    text = " ".join(r.stdout.split())
    assert r.returncode == 0
    assert "0 every threshold holds" in text and "1 at least one threshold failed" in text
    assert "2 an error" in text and "replay error" in text


def test_a_fidelity_threshold_in_a_counterfactual_scenario_is_refused() -> None:
    """A counterfactual run observes nothing: fidelity's recall and precision are null there, so
    `min_fidelity_recall` (or a [[checks.figure]] on them) could never be judged and failed on
    every run with exit 1, the code of a regression. It is a scenario error now (exit 2), at its
    line; the same threshold in a historical scenario, and fidelity's counts, stay allowed."""
    import pytest

    from backtest.errors import ScenarioError
    from backtest.scenario import parse_scenario

    head = ('name = "x"\nchain_id = 1\nmode = "{mode}"\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
            'protocol = "aave_v3"\nsource = "m"\n[metrics]\nnames = ["fidelity"]\n')
    for checks, line in (("[checks]\nmin_fidelity_recall = 0.5\n", 13),
                         ("[checks]\nmin_fidelity_precision = 0.5\n", 13),
                         ('[[checks.figure]]\nmetric = "fidelity"\nname = "precision_episodes"\n'
                          'min = 0.1\n', 14)):
        with pytest.raises(ScenarioError, match="counterfactual") as e:
            parse_scenario(head.format(mode="counterfactual") + checks)
        assert e.value.line == line, (checks, e.value.line)
        assert parse_scenario(head.format(mode="historical") + checks).checks is not None
    counts = '[[checks.figure]]\nmetric = "fidelity"\nname = "predicted"\nmax = 0\n'
    assert parse_scenario(head.format(mode="counterfactual") + counts).checks is not None
