"""``deficit check`` on a real run (anvil-built Aave v3 market through the 2021-01-11 crash, see
report_market.py): exit 0 when thresholds are loosened around the run's own figures, 1 with JUnit
and GitHub annotations when one is tightened below them, 2 on a malformed scenario naming the
line and field; a baseline (file or run id) makes a change that raises bad debt fail."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.backtest import report_market as rm

pytestmark = pytest.mark.anvil
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> rm.Built:
    return rm.build(tmp_path_factory.getbasetemp() / "report-market.duckdb")


def deficit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backtest.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith(needle))


def test_loosened_passes_tightened_fails_with_junit_and_annotation(built: rm.Built, tmp_path: Path) -> None:
    loose = tmp_path / "loose.toml"
    loose.write_text(
        rm.scenario_text(built, checks="max_bad_debt_usd = 1e12\nmax_unrealized_bad_debt_usd = 1e12\n")
    )
    r = deficit("check", str(loose), "--json", "--junit", str(tmp_path / "loose.xml"))
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "passed" and [c["ok"] for c in out["checks"]] == [True, True]
    peak = out["checks"][1]["value"]
    end = out["checks"][0]["value"]
    assert peak > 0, "the crash leaves unrealized bad debt in the run"
    assert "::error" not in r.stdout

    # tighten the peak threshold below the run's own figure: exit 1
    text = rm.scenario_text(
        built, checks=f"max_bad_debt_usd = {end + 1}\nmax_unrealized_bad_debt_usd = {peak / 2}\n"
    )
    tight = tmp_path / "tight.toml"
    tight.write_text(text)
    junit = tmp_path / "junit.xml"
    before = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    t0 = time.monotonic()
    r = deficit("check", str(tight), "--junit", str(junit))
    took = time.monotonic() - t0
    assert r.returncode == 1, r.stdout + r.stderr
    n = line_of(text, "max_unrealized_bad_debt_usd")
    ann = [ln for ln in r.stdout.splitlines() if ln.startswith("::error")]
    assert len(ann) == 1, r.stdout
    assert ann[0].startswith(
        f"::error file={tight},line={n},title=deficit check%3A max_unrealized_bad_debt_usd::"
    )
    assert "FAIL  max_unrealized_bad_debt_usd" in r.stdout and "PASS  max_bad_debt_usd" in r.stdout
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    # CI dashboards (GitLab, Jenkins) read the suite's duration and start time: the replay's
    # seconds, inside the command's own wall time, and a UTC start within it
    assert 0 < float(suite.get("time") or "nan") < took
    start = dt.datetime.fromisoformat(suite.get("timestamp") or "")
    assert before <= start <= before + dt.timedelta(seconds=took + 1)
    assert ET.parse(junit).getroot().get("time") == suite.get("time")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["max_bad_debt_usd"].find("failure") is None
    fail = cases["max_unrealized_bad_debt_usd"].find("failure")
    assert fail is not None and cases["max_unrealized_bad_debt_usd"].get("line") == str(n)
    run_id = next(p.get("value") for p in suite.iter("property") if p.get("name") == "run_id")
    assert run_id and run_id.startswith("bt-")
    msg = fail.get("message") or ""
    assert run_id in msg and "bad_debt.peak_unrealized_oracle_usd" in msg and f"{peak:,.2f}" in msg


@pytest.mark.parametrize(
    "body, field, expect",
    [
        ('max_bad_debt_usd = "lots"\n', "checks.max_bad_debt_usd", "expected a number"),
        ("max_bad_debt_usdd = 5\n", "checks.max_bad_debt_usdd", "unknown threshold"),
        ("min_fidelity_recall = 1.5\n", "checks.min_fidelity_recall", "between 0 and 1"),
        (
            '[[checks.figure]]\nmetric = "liquidations"\nname = "simulated_count"\n',
            "checks.figure[0]",
            "at least one of min, max",
        ),
    ],
)
def test_malformed_checks_exit_2_naming_line_and_field(
    built: rm.Built, tmp_path: Path, body: str, field: str, expect: str
) -> None:
    text = rm.scenario_text(built, checks=body)
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    junit = tmp_path / "j.xml"
    r = deficit("check", str(bad), "--junit", str(junit))
    assert r.returncode == 2, r.stdout + r.stderr
    key = field.split(".")[-1].split("[")[0]
    n = line_of(text, key) if not key.startswith("figure") else line_of(text, "[[checks.figure]]")
    assert f"{bad}:{n}: {field}: " in r.stderr and expect in r.stderr, r.stderr
    assert f"::error file={bad},line={n}," in r.stdout
    errors = ET.parse(junit).getroot().find("testsuite")
    assert errors is not None and errors.get("errors") == "1"


def test_threshold_on_a_metric_the_scenario_does_not_compute_is_rejected(
    built: rm.Built, tmp_path: Path
) -> None:
    text = rm.scenario_text(built, metrics=("bad_debt", "liquidations"), checks="min_fidelity_recall = 0.5\n")
    p = tmp_path / "s.toml"
    p.write_text(text)
    r = deficit("check", str(p))
    assert r.returncode == 2
    assert f":{line_of(text, 'min_fidelity_recall')}: checks.min_fidelity_recall:" in r.stderr
    assert "add it to [metrics] names" in r.stderr


def test_baseline_rise_fails_a_change_that_raises_bad_debt(built: rm.Built, tmp_path: Path) -> None:
    # baseline: counterfactual with a liquidator that acts; change: one that never finds a profit
    base = tmp_path / "base.toml"
    base.write_text(
        rm.scenario_text(built, name="cf", mode="counterfactual", checks="max_bad_debt_usd = 1e12\n")
    )
    bfile = tmp_path / "baseline.json"
    r = deficit("check", str(base), "--write-baseline", str(bfile), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    base_run = json.loads(r.stdout)["run_id"]
    doc = json.loads(bfile.read_text())
    assert doc["format"] == "deficit-baseline/1" and doc["run_id"] == base_run
    base_bad = doc["summaries"]["bad_debt"]["end_total_oracle_usd"]

    lazy = tmp_path / "lazy.toml"
    text = rm.scenario_text(
        built,
        name="cf",
        mode="counterfactual",
        min_profit_usd=10**12,
        checks="max_bad_debt_rise_usd = 0\nmax_bad_debt_rise_pct = 1\n",
    )
    lazy.write_text(text)
    for ref in (str(bfile), base_run):  # a stored file, then the run in the warehouse
        r = deficit("check", str(lazy), "--baseline", ref, "--json")
        assert r.returncode == 1, r.stdout + r.stderr
        out = json.loads(r.stdout)  # the JSON alone: the annotations go to stderr with --json
        assert out["baseline"]["run_id"] == base_run
        rise = out["checks"][0]
        assert rise["baseline_value"] == base_bad and rise["value"] > base_bad and not rise["ok"]
        assert rise["compared"] == pytest.approx(rise["value"] - base_bad)
        ann = [ln for ln in r.stderr.splitlines() if ln.startswith("::error")]
        assert [a.split(",line=")[1].split(",")[0] for a in ann] == [
            str(line_of(text, "max_bad_debt_rise_usd")),
            str(line_of(text, "max_bad_debt_rise_pct")),
        ]
    # the baseline scenario itself does not rise
    same = tmp_path / "same.toml"
    same.write_text(
        rm.scenario_text(built, name="cf", mode="counterfactual", checks="max_bad_debt_rise_usd = 0\n")
    )
    r = deficit("check", str(same), "--baseline", str(bfile))
    assert r.returncode == 0, r.stdout + r.stderr
    # a rise threshold without any baseline is an error, not a pass
    r = deficit("check", str(same))
    assert r.returncode == 2 and "baseline" in r.stderr


def test_runs_and_compare(built: rm.Built, tmp_path: Path) -> None:
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(rm.scenario_text(built, name="cmp", mode="counterfactual"))
    b.write_text(rm.scenario_text(built, name="cmp", mode="counterfactual", min_profit_usd=10**12))
    ids = []
    for p in (a, b):
        r = deficit("run", str(p), "--json")
        assert r.returncode == 0, r.stderr
        ids.append(json.loads(r.stdout)["run_id"])
    r = deficit("runs", "--db", str(built.db), "--json")
    assert r.returncode == 0, r.stderr
    runs = {x["run_id"]: x for x in json.loads(r.stdout)}
    assert set(ids) <= set(runs) and runs[ids[0]]["mode"] == "counterfactual"
    r = deficit("compare", ids[0], ids[1], "--db", str(built.db), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert not res["identity"]["scenario_sha256"]["same"]
    figs = {(f["metric"], f["name"]): f for f in res["figures"]}
    sim = figs[("liquidations", "simulated_count")]
    assert sim["a"] > 0 and sim["b"] == 0 and sim["diff"] == -sim["a"]
    r = deficit("compare", ids[0], "bt-nope", "--db", str(built.db))
    assert r.returncode == 2 and "bt-nope" in r.stderr


def test_a_baseline_in_another_currency_is_refused() -> None:
    """A [[checks.figure]] rise on a *_value figure against a baseline run of another market's
    currency compared ETH wei with USD 1e-8 units: $100 against 1 ETH passed as a fall."""
    from backtest.checks import Baseline, evaluate
    from backtest.errors import InputError
    from backtest.scenario import parse_scenario

    sc = parse_scenario('name = "x"\nchain_id = 1\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
                        'protocol = "aave_v3"\nsource = "m"\n[[checks.figure]]\nmetric = "bad_debt"\n'
                        'name = "end_unrealized_oracle_value"\nmax_rise = 0\n')
    run = {"bad_debt": {"end_unrealized_oracle_value": 100 * 10**8, "base_currency": "USD"}}
    v2 = Baseline("bt-v2", "v2", "h", "c", {"bad_debt": {"end_unrealized_oracle_value": 10**18,
                                                          "base_currency": "ETH"}}, "b.json")
    with pytest.raises(InputError, match=r"the baseline bt-v2 \(b.json\) is in ETH, run bt-v3 in USD"):
        evaluate(sc.checks, run, "bt-v3", v2)
    same = Baseline("bt-a", "a", "h", "c", {"bad_debt": {"end_unrealized_oracle_value": 99 * 10**8,
                                                          "base_currency": "USD"}}, "a.json")
    (o,) = evaluate(sc.checks, run, "bt-v3", same)
    assert not o.ok and o.compared == 10**8


def test_what_cannot_be_judged_is_an_error_not_a_failure() -> None:
    """A figure name the metric does not report (a typo) failed its threshold like a
    regression (exit 1); a rise against a baseline of another window measured the windows. Both
    are input errors now (exit 2), naming the line, the names the metric has, the two windows."""
    from backtest.checks import Baseline, evaluate
    from backtest.errors import InputError
    from backtest.scenario import parse_scenario

    head = ('name = "x"\nchain_id = 1\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
            'protocol = "aave_v3"\nsource = "m"\n[[checks.figure]]\nmetric = "bad_debt"\n')
    run = {"bad_debt": {"end_unrealized_oracle_value": 100 * 10**8, "base_currency": "USD"}}
    typo = parse_scenario(head + 'name = "end_unrealised_oracle_value"\nmax = 0\n')
    want = (r"line 12: checks.figure\[0\]\.max: metric 'bad_debt' "
            r"has no figure 'end_unrealised_oracle_value' "
            r"\(it reports: base_currency, end_unrealized_oracle_value\)")
    with pytest.raises(InputError, match=want):
        evaluate(typo.checks, run, "bt-a")
    rise = parse_scenario(head + 'name = "end_unrealized_oracle_value"\nmax_rise = 0\n')
    base = Baseline("bt-b", "b", "h", "c", {"bad_debt": {"end_unrealized_oracle_value": 99 * 10**8,
                                                          "base_currency": "USD"}}, "b.json", (1, 5))
    with pytest.raises(InputError, match=r"covers blocks 1\.\.5, run bt-a blocks 1\.\.2"):
        evaluate(rise.checks, run, "bt-a", base, (1, 2))
    (o,) = evaluate(rise.checks, run, "bt-a", base, (1, 5))  # the same window: judged
    assert not o.ok and o.compared == 10**8


def test_a_value_figure_says_its_base_units() -> None:
    """*_value figures are integers in base units (Aave v3: 1e-8 USD); the verdict showed
    '10,000,000,000 > max = 50' with no unit, so a limit meant in USD read as holding units."""
    from backtest.checks import evaluate
    from backtest.scenario import parse_scenario

    for protocol, unit in (("aave_v3", "x 1e-8 USD"), ("aave_v2", "x 1e-18 ETH")):
        sc = parse_scenario('name = "x"\nchain_id = 1\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
                            f'protocol = "{protocol}"\nsource = "m"\n[[checks.figure]]\nmetric = "bad_debt"\n'
                            'name = "end_unrealized_oracle_value"\nmax = 50\n')
        (o,) = evaluate(sc.checks, {"bad_debt": {"end_unrealized_oracle_value": 100 * 10**8}}, "bt-a")
        assert not o.ok and o.message.endswith(f"> figure[0].max = 50 {unit}"), o.message
        assert f"10,000,000,000 {unit}" in o.message
