"""Attributions on a real warehouse: the real Aave v3 bytecode on anvil driven through the real
2021-01-11 ETH crash and ingested by the real ingestor (tests/backtest/report_market.py), with
the Binance path as the reference price.

* with the reference price as the oracle, lag-attributable bad debt is exactly 0 (issue 4);
* a lagging oracle (answers usable 200 blocks late) on a thin-buffer market (LT 95 %, bonus 4 %)
  costs bad debt; the attribution equals the difference of the two runs' own bt.summaries;
* liquidations that wait 60 blocks for finality cost bad debt; reorgs recorded in meta.reorgs
  are matched against the run's rows.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from backtest.attribution import ATTRIBUTIONS, finality_attribution, lag_attribution
from backtest.errors import ScenarioError
from backtest.scenario import Scenario, parse_scenario

from .report_market import Built, build, scenario_text


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("attribution") / "warehouse.duckdb")


def _thin_buffer(b: Built) -> str:
    return (f'[[overrides.reserve]]\nasset = "{b.collateral}"\nliquidation_threshold_bps = 9500\n'
            "liquidation_bonus_bps = 10400\n")


def _summary_bad_debt(db: Path, run_id: str) -> int:
    """end_unrealized_reference_value + realized_value of a run, read back from bt.summaries."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        got = dict(con.execute("SELECT name, value_text FROM bt.summaries WHERE run_id = ? "
                               "AND metric = 'bad_debt' "
                               "AND name IN ('end_unrealized_reference_value', 'realized_value')",
                               [run_id]).fetchall())
    finally:
        con.close()
    return int(got["end_unrealized_reference_value"]) + int(got.get("realized_value", "0"))


def _attribution_rows(db: Path, aid: str) -> dict[str, tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(f"SELECT * FROM {ATTRIBUTIONS.fqn} WHERE attribution_id = ? ORDER BY figure",
                           [aid]).fetchall()
    finally:
        con.close()
    return {str(r[4]): r for r in rows}


def test_reference_as_oracle_attributes_exactly_zero(built: Built) -> None:
    extra = '[oracle]\nmodel = "reference"\n[overrides]\n' + _thin_buffer(built)
    text = scenario_text(built, mode="counterfactual", extra=extra)
    a = lag_attribution(parse_scenario(text), built.db)
    assert a.with_cause.run_id == a.without_cause.run_id  # the same run: nothing differs
    assert all(d == 0 for _, _, d in a.figures.values())
    assert a.attributable_value == 0
    rows = _attribution_rows(built.db, a.attribution_id)
    assert set(rows) == set(a.figures)
    assert all(int(str(r[10])) == 0 for r in rows.values())


def test_lagging_oracle_costs_bad_debt(built: Built) -> None:
    extra = "[oracle]\ndelay_blocks = 200\n[overrides]\n" + _thin_buffer(built)
    a = lag_attribution(parse_scenario(scenario_text(built, mode="counterfactual", extra=extra)), built.db)
    with_bd = _summary_bad_debt(built.db, a.with_cause.run_id)
    without_bd = _summary_bad_debt(built.db, a.without_cause.run_id)
    assert a.figures["end_bad_debt_reference_value"] == (with_bd, without_bd, with_bd - without_bd)
    assert a.attributable_value > 0  # the lag let bad debt build up
    row = _attribution_rows(built.db, a.attribution_id)["end_bad_debt_reference_value"]
    assert row[3] == "oracle_lag" and row[5] == a.with_cause.run_id and row[6] == a.without_cause.run_id
    assert int(str(row[10])) == with_bd - without_bd
    # both runs are ordinary runs: counterfactual, the WITHOUT one on the reference oracle
    assert a.with_cause.scenario.mode == a.without_cause.scenario.mode == "counterfactual"
    oracle = a.without_cause.scenario.oracle
    assert oracle.model == "reference" and oracle.delay_blocks == 0


def test_lag_attribution_needs_a_reference(built: Built) -> None:
    text = scenario_text(built, mode="counterfactual")
    start = text.index("[reference]")
    text = text[:start] + text[text.index("[liquidator]"):]
    with pytest.raises(ScenarioError, match="reference"):
        lag_attribution(parse_scenario(text), built.db)


def test_finality_wait_costs_bad_debt_and_reorg_exposure(built: Built, tmp_path: Path) -> None:
    extra = "[overrides]\n" + _thin_buffer(built)
    text = scenario_text(built, mode="counterfactual", extra=extra, metrics=("bad_debt", "finality"))
    sc = parse_scenario(text)
    a = finality_attribution(sc, built.db, wait_blocks=60)
    assert a.with_cause.scenario.finality.wait_blocks == 60
    assert a.without_cause.scenario.finality.wait_blocks == 0
    w, o, d = a.figures["end_bad_debt_reference_value"]
    assert (w, o) == (_summary_bad_debt(built.db, a.with_cause.run_id),
                      _summary_bad_debt(built.db, a.without_cause.run_id))
    assert d == w - o and d > 0
    # decisions of the waiting liquidator acted on blocks >= 60 deep; with the default depth of 64
    # the ones decided 60 blocks earlier are still not final (60 < 64)
    fin = a.with_cause.summary["finality"]
    assert fin["liquidations"] > 0 and fin["liquidations_not_final"] == fin["liquidations"]
    assert a.without_cause.summary["finality"]["liquidations_not_final"] > 0

    # meta.reorgs holds no reorg for a dev chain that never reorganised; inject one over the range
    # of the WAITING run's first liquidations (a fault a finished anvil chain cannot produce after
    # the fact) in a copy of the warehouse, and check what it touched
    from backtest.metrics.finality import reorg_exposure
    from ingest.warehouse import Warehouse

    liqs = sorted(q.block_number for q in a.with_cause.output.liquidations)
    assert liqs
    lo, hi = liqs[0], liqs[0] + 5
    copy = tmp_path / "reorged.duckdb"
    shutil.copy(built.db, copy)
    with Warehouse(str(copy)) as wh:
        wh.con.execute("INSERT INTO meta.reorgs VALUES (?, TIMESTAMPTZ '2021-01-11 12:00:00+00', 'ingest-x', "
                       "?, ?, ?, [], [], 42)", [31337, lo - 1, hi - lo + 1, hi])
        rows = reorg_exposure(wh, a.with_cause.run_id)
    (row,) = rows
    expected = [q for q in a.with_cause.output.liquidations if lo <= q.block_number <= hi]
    assert row[2] == lo - 1 and row[3] == hi and row[6] == 42
    assert row[7] == len(expected) and row[8] == sum(q.debt_repaid_value for q in expected)
    assert row[9] >= row[7]


def test_an_attribution_goes_when_one_of_its_runs_is_rewritten_with_other_content(built: Built) -> None:
    """bt.attributions has no run_id column, so a run id reused (--run-id) for another scenario
    left the attribution comparing the new run's rows as if they were the old run's. A rerun of
    the same content (byte-identical rows) keeps it; other content under the id removes it."""
    from backtest.api import run

    extra = "[oracle]\ndelay_blocks = 200\n[overrides]\n" + _thin_buffer(built)
    sc = parse_scenario(scenario_text(built, mode="counterfactual", extra=extra))
    a = lag_attribution(sc, built.db)
    assert _attribution_rows(built.db, a.attribution_id)
    run(a.with_cause.scenario, db=built.db, run_id=a.with_cause.run_id)  # the same run again
    assert _attribution_rows(built.db, a.attribution_id)
    assert run(a.with_cause.scenario, db=built.db).run_id == a.with_cause.run_id  # its derived id
    other = parse_scenario(scenario_text(built, mode="counterfactual", extra=extra.replace("200", "100")))
    run(other, db=built.db, run_id=a.with_cause.run_id)
    assert _attribution_rows(built.db, a.attribution_id) == {}


_PLAIN = """name = "p"
mode = "counterfactual"
chain_id = 31337
[market]
protocol = "aave_v3"
dataset = "aave_v3"
source = "aave_v3_sample"
[reference]
at_par = ["USDT"]
[reference.pairs]
"0x4ed7c70f96b99c776995fb64377f0d4ab3b0e1c1" = "ETH/USDT"
[window]
from_block = 600
to_block = 7799
"""


def test_the_lag_parameter_says_what_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    """bt.attributions.parameter is 'what differs' between the two runs; for lag it named the oracle
    model only, so an attribution of the feed as it was and one of the feed delayed 200 blocks
    (or republished at 100 bps) both said oracle=protocol|reference: two rows with one label and
    different figures, the delay they measured in no column of the table."""
    import backtest.attribution as attribution

    seen: list[str] = []
    monkeypatch.setattr(attribution, "_pair", lambda kind, parameter, *a: seen.append(parameter))
    for oracle in ("", '[oracle]\ndelay_blocks = 200\n', '[oracle]\ndelay_s = 30\n',
                   '[oracle]\nmodel = "republish"\ndeviation_bps = 100\nheartbeat_s = 600\n',
                   '[oracle]\nmodel = "reference"\ndelay_blocks = 3\n'):
        attribution.lag_attribution(parse_scenario(_PLAIN + oracle))
    assert seen == ["oracle=protocol|reference", "oracle=protocol,delay_blocks=200|reference",
                    "oracle=protocol,delay_s=30|reference",
                    "oracle=republish,deviation_bps=100,heartbeat_s=600|reference",
                    "oracle=reference,delay_blocks=3|reference"], seen


def test_variant_runs_do_not_pass_for_their_scenario_file(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    """Both runs of an attribution are variants built in code (counterfactual mode, renamed, the
    reference as the oracle or another finality wait), but bt.runs.scenario_path (and the report's
    'scenario file') gave the file they were derived from, as if `deficit run <that file>` had
    produced them: a run on the reference oracle credited to a file that says oracle = protocol.
    The path now names the variant too."""
    import backtest.attribution as attribution
    from backtest.engine import _scenario_path

    f = tmp_path / "s.toml"
    f.write_text(_PLAIN + '[oracle]\ndelay_blocks = 200\n')
    pairs: list[tuple[Scenario, Scenario]] = []
    monkeypatch.setattr(attribution, "_pair", lambda kind, parameter, w, wo, db: pairs.append((w, wo)))
    attribution.lag_attribution(f)
    attribution.finality_attribution(f, wait_blocks=5)
    got = [_scenario_path(s) for p in pairs for s in p]
    assert got == [f"{f} (variant {v}, backtest.attribution)"
                   for v in ("+lag:with", "+lag:without", "+wait:5", "+wait:0")], got
    assert _scenario_path(attribution._load(f)) == str(f)  # the file itself, as before


def test_finality_wait_defaults_to_waiting_for_finality(built: Built) -> None:
    """finality_attribution without wait_blocks took the scenario's finality.wait_blocks, 0 unless
    set: the run 'with the wait' was the run without it, and the cost of waiting for finality read
    exactly 0 in bt.attributions (wait_blocks=0|0), a plausible answer to a question not asked. The
    default is now to wait for finality: the scenario's wait_blocks when set, else its depth_blocks
    (64 here, the [finality] default)."""
    text = scenario_text(built, mode="counterfactual", metrics=("bad_debt",))
    sc = parse_scenario(text)
    assert (sc.finality.depth_blocks, sc.finality.wait_blocks) == (64, 0)
    a = finality_attribution(sc, built.db)
    assert a.parameter == "wait_blocks=64|0"
    assert a.with_cause.scenario.finality.wait_blocks == 64
    assert a.without_cause.scenario.finality.wait_blocks == 0
    assert a.with_cause.run_id != a.without_cause.run_id
    # a scenario that sets its own wait keeps it
    own = parse_scenario(text + "\n[finality]\nwait_blocks = 5\n")
    assert finality_attribution(own, built.db).parameter == "wait_blocks=5|0"
