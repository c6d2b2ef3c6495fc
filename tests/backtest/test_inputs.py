"""Determinism of the bt tables, malformed scenarios, and missing data caught before the replay."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from backtest.api import run, run_inputs
from backtest.errors import MissingData, ScenarioError
from backtest.outputs import write_run
from backtest.scenario import load_scenario
from ingest.warehouse import Warehouse
from tests.backtest.markets import FROM, inputs, market, scenario

CRASH = [2_000 * 10**8 * (100 - 3 * i) // 100 for i in range(25)]


def _dump(db: Path, run_id: str) -> dict[str, list[tuple]]:
    with Warehouse(db, read_only=True) as wh:
        names = [r[0] for r in wh.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name='bt' ORDER BY 1").fetchall()]
        return {n: wh.con.execute(f"SELECT * FROM bt.{n} ORDER BY ALL").fetchall() for n in names}


def test_two_runs_write_identical_bt_tables(tmp_path: Path) -> None:
    positions = [(10**18 * (k + 1), (k + 1) * 1_500 * 10**6) for k in range(6)]
    extra = "\n[liquidator]\nreaction_delay_blocks = 2\ncapacity_per_block = 1\n"
    dumps = []
    for i in range(2):
        res = run_inputs(scenario(extra=extra, to_block=FROM + 40),
                         inputs(market(8000, 10500, positions), CRASH, to_block=FROM + 40))
        db = tmp_path / f"w{i}.duckdb"
        with Warehouse(db) as wh:
            write_run(wh, res.run_id, res.output.tables)
            write_run(wh, res.run_id, res.output.tables)  # a re-run replaces, never duplicates
        dumps.append(_dump(db, res.run_id))
    assert dumps[0] == dumps[1]
    assert dumps[0]["liquidations"], "the crash must produce liquidations for the comparison to mean much"
    assert dumps[0]["bad_debt_blocks"]
    assert len(dumps[0]["runs"]) == 1


def test_malformed_scenario_names_file_line_and_field(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('name = "x"\nchain_id = 1\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
                 'protocol = "aave_v3"\nsource = "m"\n[oracle]\nmodel = "protocol"\ndelay_s = "soon"\n')
    with pytest.raises(ScenarioError) as e:
        load_scenario(f)
    assert (e.value.origin, e.value.line, e.value.field) == (str(f), 11, "oracle.delay_s")
    assert str(e.value).startswith(f"{f}:11: oracle.delay_s: expected an integer")
    f.write_text('name = "x"\nchain_id = 1\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
                 'protocol = "aave_v3"\nsource = "m"\n\n[liquidator]\ngas_unit = 5\n')
    with pytest.raises(ScenarioError, match=r"s.toml:11: liquidator.gas_unit: unknown key 'gas_unit'"):
        load_scenario(f)
    f.write_text('name = "x"\nchain_id = 1\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
                 'protocol = "aave_v9"\nsource = "m"\n')
    with pytest.raises(ScenarioError, match=r"s.toml:7: market.protocol: unknown protocol 'aave_v9'"):
        load_scenario(f)


@pytest.mark.parametrize(("protocol", "body", "line", "field", "write"), [
    ("aave_v2", "[liquidator]\nmin_profit_usd = 5\n", 11, "liquidator.min_profit_usd", "min_profit_eth"),
    ("aave_v2", '[liquidator.slippage."0x' + "22" * 20 + '"]\ndepth_usd = 9\n', 11,
     "liquidator.slippage.0x" + "22" * 20 + ".depth_usd", "depth_eth"),
    ("aave_v2", "[metrics.bad_debt]\ndust_usd = 1\n", 11, "metrics.bad_debt.dust_usd", "dust_eth"),
    ("aave_v2", "[checks]\nmax_bad_debt_usd = 5\n", 11, "checks.max_bad_debt_usd", "max_bad_debt_eth"),
    ("aave_v2", "[checks]\nmax_unrealized_bad_debt_usd = 5\n", 11, "checks.max_unrealized_bad_debt_usd",
     "max_unrealized_bad_debt_eth"),
    ("aave_v3", "[liquidator]\nmin_profit_eth = 5\n", 11, "liquidator.min_profit_eth", "min_profit_usd"),
    ("aave_v3", "[checks]\nmax_bad_debt_rise_eth = 0\n", 11, "checks.max_bad_debt_rise_eth",
     "max_bad_debt_rise_usd"),
])
def test_money_keys_must_name_the_markets_base_currency(tmp_path: Path, protocol: str, body: str, line: int,
                                                         field: str, write: str) -> None:
    """Aave v2 values everything in ETH: a ``_usd`` amount there would silently mean ETH (a
    ``dust_usd = 1`` of 1 ETH), so it is refused at load time, naming the key to write instead."""
    f = tmp_path / "s.toml"
    f.write_text('name = "x"\nchain_id = 1\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
                 f'protocol = "{protocol}"\nsource = "m"\n\n' + body)
    with pytest.raises(ScenarioError) as e:
        load_scenario(f)
    assert (e.value.line, e.value.field) == (line, field)
    assert f"write {write} (in {'ETH' if protocol == 'aave_v2' else 'USD'})" in e.value.message
    f.write_text(f.read_text().replace(field.rsplit(".", 1)[1], write))
    sc = load_scenario(f)  # the right currency loads
    if "min_profit" in write:
        assert sc.liquidator.min_profit == 5
    if "depth" in write:
        assert sc.liquidator.slippage["0x" + "22" * 20].depth == 9
    if write.startswith("max_"):
        (t,) = sc.checks.thresholds
        want = "ETH" if protocol == "aave_v2" else "USD"
        assert t.key == write and want in t.figure.unit and t.figure.name.count(f"_{want.lower()}") == 1


def test_a_metric_needing_a_reference_without_one_fails_at_validation(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('name = "x"\nchain_id = 1\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
                 'protocol = "aave_v3"\nsource = "m"\n[metrics]\nnames = ["bad_debt", "oracle_lag"]\n')
    with pytest.raises(ScenarioError) as e:
        load_scenario(f)  # at load time, not when the run starts
    assert (e.value.line, e.value.field) == (10, "metrics.names")
    assert "'oracle_lag'" in e.value.message and "[reference] table with pairs is needed" in e.value.message
    f.write_text(f.read_text() + '[reference.pairs]\n"0x' + "11" * 20 + '" = "ETH/USD"\n')
    assert load_scenario(f).metrics.names == ("bad_debt", "oracle_lag")


def test_missing_data_fails_before_running_and_says_how_to_ingest(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    f = tmp_path / "s.toml"
    f.write_text('name = "x"\nchain_id = 31337\n[window]\nfrom_block = 10\nto_block = 20\n[market]\n'
                 'protocol = "aave_v3"\nsource = "aave_v3_local"\n')
    with pytest.raises(MissingData, match="does not exist"):
        run(f, db=db)
    from ingest.datasets.blocks import BLOCKS
    from ingest.warehouse import CHECKPOINTS

    with Warehouse(db) as wh:
        wh.ensure(BLOCKS, CHECKPOINTS)
        with wh.transaction():
            wh.add_covered(31337, "blocks", "chain", 0, 15, "r1")
    with pytest.raises(MissingData, match=r"blocks \(blocks:chain\) is not ingested over blocks 10\.\.20 .*"
                       r"deficit ingest --chain 31337 --from 10 --to 20 --datasets blocks"):
        run(f, db=db)
    with Warehouse(db) as wh, wh.transaction():
        wh.add_covered(31337, "blocks", "chain", 0, 30, "r2")
    with pytest.raises(MissingData, match=r"market aave_v3:aave_v3_local is not ingested on chain 31337; run "
                       r"`deficit ingest"):
        run(f, db=db)
    with Warehouse(db, read_only=True) as wh:  # nothing was written
        n = wh.con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name='bt'").fetchall()[0][0]
        assert n == 0


def test_at_risk_index_gives_the_same_tables_as_the_naive_replay() -> None:
    """The index is a filter only: every bt row equals the every-account-every-update replay's
    (bt.runs differs only in the number of evaluations, which it exists to cut)."""
    positions = [(10**18 * (k + 1), (k + 1) * (1_000 + 60 * k) * 10**6) for k in range(12)]
    path = [2_000 * 10**8 * (100 + (7 if i % 5 == 0 else -4)) ** (i // 3) // 100 ** (i // 3)
            for i in range(30)]
    extra = "\n[liquidator]\nreaction_delay_blocks = 1\n"
    out = []
    for naive in (False, True):
        res = run_inputs(scenario(extra=extra, to_block=FROM + 40),
                         inputs(market(8000, 10500, positions, borrow_rate=10**26), path, to_block=FROM + 40),
                         naive=naive)
        out.append(res)
    for t, rows in out[0].output.tables.items():
        if t.name != "runs":
            assert rows == out[1].output.tables[t], t.fqn
    assert out[0].output.liquidations, "the path must liquidate someone"
    assert out[0].output.record.evaluations < out[1].output.record.evaluations


def test_a_shock_scenario_moves_the_oracle_path() -> None:
    """A 60 % shift of the collateral feed in a counterfactual run creates the bad debt the
    unshocked run does not have (no liquidator acts: min profit out of reach)."""
    from tests.backtest.markets import FEED_C, T0

    positions = [(10**18, 1_200 * 10**6)]
    path = [2_000 * 10**8] * 10
    idle = "\n[liquidator]\nmin_profit_usd = 1000000000\n"
    shock = f'\n[[shock]]\nkind = "shift"\npct = -0.6\nat_ts = {T0 + 60}\nassets = ["{FEED_C}"]\n'
    base = run_inputs(scenario(extra=idle, to_block=FROM + 12), inputs(market(8000, 10500, positions), path))
    hit = run_inputs(scenario(extra=idle + shock, to_block=FROM + 12),
                     inputs(market(8000, 10500, positions), path))
    assert base.summary["bad_debt"]["end_unrealized_oracle_value"] == 0
    # 1 ETH at $800 against $1,200 of debt: $400 (1e8 units) of bad debt
    assert hit.summary["bad_debt"]["end_unrealized_oracle_value"] == 400 * 10**8


def _idle_shocked(shock: str, rounds: list | None = None, **kw: object) -> int:
    """End unrealized bad debt (USD 1e8) of 1 COLL against 1,200 USDC, collateral at $2,000 before
    the window and no liquidator acting, under ``shock``; ``rounds``: the window's rounds."""
    import dataclasses

    from tests.backtest.markets import T0

    idle = "\n[liquidator]\nmin_profit_usd = 1000000000\n"
    inp = dataclasses.replace(inputs(market(8000, 10500, [(10**18, 1_200 * 10**6)]), [2_000 * 10**8]),
                              rounds=rounds or [], **kw)
    t0 = T0 + 12  # the window's first block (markets.inputs: blocks every 12 s from FROM - 1 at T0)
    text = shock.replace("T0", str(T0)).replace("t0", str(t0))
    return int(run_inputs(scenario(extra=idle + text, to_block=FROM + 12), inp)
               .summary["bad_debt"]["end_unrealized_oracle_value"])


@pytest.mark.parametrize("at", ["T0", "t0"])
def test_a_shock_from_the_window_start_or_before_moves_the_price_in_force(at: str) -> None:
    """A shift from the window's first block (or earlier) moves the price in force at the start,
    not only the feed's next round: with no round in the window it used to change nothing."""
    from tests.backtest.markets import FEED_C

    shock = f'\n[[shock]]\nkind = "shift"\npct = -0.6\nat_ts = {at}\nassets = ["{FEED_C}"]\n'
    assert _idle_shocked(shock) == 400 * 10**8  # $800 of collateral against $1,200


def test_a_round_in_the_first_block_is_kept_under_an_unrelated_shock() -> None:
    """The first block's round (COLL to $800) used to be folded into the path's starting point and
    then dropped whenever the scenario had any shock."""
    from backtest.oracle import Round
    from tests.backtest.markets import FEED_C, FEED_D, T0

    first = [Round(FEED_C, 800 * 10**8, 8, T0 + 12, FROM, 0, T0 + 12)]
    assert _idle_shocked("", first) == 400 * 10**8
    # the debt feed 10 % lower from block FROM + 1: $800 of collateral against $1,080
    other = f'\n[[shock]]\nkind = "shift"\npct = -0.1\nat_ts = {T0 + 24}\nassets = ["{FEED_D}"]\n'
    assert _idle_shocked(other, first) == 280 * 10**8


def test_a_constant_price_is_not_shocked() -> None:
    """Aave v2 prices WETH at exactly 1 ETH (a ``constant:`` pseudo-feed, not a feed): a shock
    without ``assets`` moves the feeds only. COLL constant at $2,000, the debt doubled: $400 short."""
    from backtest.oracle import Round
    from tests.backtest.markets import COLL, DEBT, FEED_D, T0

    const = "constant:" + COLL
    init = {const: Round(const, 2_000 * 10**8, 8, T0, FROM - 1, 0, T0),
            FEED_D: Round(FEED_D, 10**8, 8, T0, FROM - 1, 1, T0)}
    shock = '\n[[shock]]\nkind = "shift"\npct = 1\nat_ts = t0\n'
    keys = {const: (COLL,), FEED_D: (DEBT,)}
    assert _idle_shocked(shock, initial_rounds=init, feed_keys=keys) == 400 * 10**8


@pytest.mark.parametrize("assets", [True, False])
def test_a_shock_on_a_feed_the_oracle_model_replaces_is_refused(assets: bool) -> None:
    """Under model "reference" the collateral feed's answers come from the reference path and its
    rounds, which the shocks move, are dropped: a 60 % fall named on that feed (or on every feed,
    no ``assets``) ran and changed nothing. It is refused at the shock; the protocol model, and a
    shock naming only a feed the model keeps, still run."""
    from fractions import Fraction

    from tests.backtest.markets import FEED_C, FEED_D, T0

    idle = "\n[liquidator]\nmin_profit_usd = 1000000000\n"
    named = f'assets = ["{FEED_C}"]\n' if assets else ""
    shock = f'\n[[shock]]\nkind = "shift"\npct = -0.6\nat_ts = {T0 + 60}\n{named}'

    def go(model: str, text: str) -> int:
        inp = inputs(market(8000, 10500, [(10**18, 1_200 * 10**6)]), [2_000 * 10**8] * 10,
                     refs=[Fraction(2_000)] * 10, ref_start=Fraction(2_000))
        sc = scenario(extra=idle + text, to_block=FROM + 12, reference=True, oracle=model)
        return int(run_inputs(sc, inp).summary["bad_debt"]["end_unrealized_oracle_value"])

    # $800 of collateral against $1,200 of debt; without assets the debt feed (no round in the
    # window) falls 60 % too, from T0 + 60 on: $800 against $480, no bad debt
    assert go("protocol", shock) == (400 * 10**8 if assets else 0)
    with pytest.raises(ScenarioError, match=r"shock\[0\].*0xfcfc.*model 'reference'"):
        go("reference", shock)
    other = f'\n[[shock]]\nkind = "shift"\npct = 1\nat_ts = {T0}\nassets = ["{FEED_D}"]\n'
    assert go("reference", other) == 400 * 10**8  # the debt feed, kept and shocked: $2,400 of debt


@pytest.mark.parametrize(("protocol", "pair", "ok"), [
    ("aave_v3", "ETH/USD", True), ("aave_v3", "STETH/ETH", False),
    ("aave_v3", "ETH/EUR", False), ("aave_v2", "CRV/ETH", True), ("aave_v2", "CRV/USD", False),
    ("aave_v2", "ETH/USDT", False),
])
def test_a_reference_pair_must_be_quoted_in_the_markets_base_currency(tmp_path: Path, protocol: str,
                                                                       pair: str, ok: bool) -> None:
    """A reference price becomes a feed answer as it is: a USD path on an Aave v2 feed (answers in
    ETH) was read as ETH, ~2,000x off, with no error; it is refused before anything is read."""
    from backtest.api import load_inputs

    feed = "0x" + "11" * 20
    f = tmp_path / "s.toml"
    f.write_text('name = "x"\nchain_id = 1\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
                 f'protocol = "{protocol}"\nsource = "m"\n[reference]\n[reference.pairs]\n'
                 f'"{feed}" = "{pair}"\n')
    with Warehouse(":memory:") as wh:
        if ok:
            with pytest.raises(MissingData, match="no raw.blocks"):
                load_inputs(wh, load_scenario(f))
            return
        with pytest.raises(ScenarioError) as e:
            load_inputs(wh, load_scenario(f))
    assert (e.value.line, e.value.field) == (11, f"reference.pairs.{feed}")
    cur = "ETH" if protocol == "aave_v2" else "USD"
    quote = pair.split("/")[1]
    assert f"quoted in {quote}, but this {protocol} market's prices are in {cur}" in e.value.message


def test_a_stablecoin_quoted_reference_is_taken_at_par_only_when_the_scenario_says_so(tmp_path: Path) -> None:
    """An ETH/USDT path on a USD market was read as USD 1:1 without a word: USDT's own moves off
    par (and USDC's 0.88 of March 2023) landed in oracle_lag and reference bad debt as oracle error.
    It is refused unless [reference] at_par names the quote; at_par naming a quote that is no
    dollar stablecoin, or on an ETH market, is refused at its line."""
    from backtest.api import load_inputs

    feed = "0x" + "11" * 20

    def load(protocol: str, pair: str, at_par: str = "") -> None:
        f = tmp_path / "s.toml"
        f.write_text('name = "x"\nchain_id = 1\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
                     f'protocol = "{protocol}"\nsource = "m"\n[reference]\n{at_par}[reference.pairs]\n'
                     f'"{feed}" = "{pair}"\n')
        with Warehouse(":memory:") as wh:
            load_inputs(wh, load_scenario(f))

    for pair in ("ETH/USDT", "ETH/usdc"):
        want = r"quoted in (USDT|usdc), not USD.*at_par = \[\"(USDT|USDC)\"\]"
        with pytest.raises(ScenarioError, match=want) as e:
            load("aave_v3", pair)
        assert (e.value.line, e.value.field) == (11, f"reference.pairs.{feed}")
    with pytest.raises(MissingData, match="no raw.blocks"):  # accepted: on to the data
        load("aave_v3", "ETH/USDT", 'at_par = ["usdt"]\n')
    with pytest.raises(ScenarioError, match=r"quoted in USDC, not USD"):  # at_par names only USDT
        load("aave_v3", "ETH/USDC", 'at_par = ["USDT"]\n')
    for protocol, at_par in (("aave_v3", '["EUR"]'), ("aave_v2", '["USDT"]')):
        with pytest.raises(ScenarioError, match="cannot be taken at par") as e:
            load(protocol, "ETH/USDT", f"at_par = {at_par}\n")
        assert (e.value.line, e.value.field) == (10, "reference.at_par")
    with pytest.raises(ScenarioError, match="expected a list of quote currencies"):
        load("aave_v3", "ETH/USDT", 'at_par = "USDT"\n')


@pytest.mark.parametrize(("table", "message"), [
    ('[["big", 10]]', "expected a number, got 'big'"),
    ("[[true, 10]]", "expected a number, got True"),
    ("[[-5, 10]]", "expected a finite number >= 0, got -5"),
    ("[[5, -10]]", "integer bps >= 0"),
    ("[[5, true]]", "integer bps >= 0"),
    ("[[5, 10], [5, 20]]", "sizes must increase"),
])
def test_a_malformed_slippage_table_is_refused_at_its_line(table: str, message: str) -> None:
    """A size that is not a number used to escape as a bare decimal.InvalidOperation; a negative
    bps (slippage that pays the liquidator) and repeated sizes were accepted."""
    from backtest.scenario import parse_scenario

    slip = "liquidator.slippage.0x" + "22" * 20
    text = ('name = "x"\nchain_id = 1\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
            f'protocol = "aave_v3"\nsource = "m"\n[liquidator.slippage."0x{"22" * 20}"]\ntable = {table}\n')
    with pytest.raises(ScenarioError) as e:
        parse_scenario(text, "s.toml")
    assert (e.value.line, e.value.field) == (10, f"{slip}.table")
    assert message in e.value.message
    ok = parse_scenario(text.replace(f"table = {table}", 'table = [[0, 5], [1000.5, 50], ["2000", 80]]'))
    assert ok.liquidator.slippage["0x" + "22" * 20].table[1] == (Decimal("1000.5"), 50)


def test_a_pair_from_two_overlapping_sources_is_refused(tmp_path: Path) -> None:
    """Without reference.source every source of a pair was read as one path: two overlapping
    sources interleaved (2,000 and 1,000 at the same instants, their order at a tie up to DuckDB's
    sort). Sources that follow one another (monthly files) are still read as one path."""
    import dataclasses

    from backtest.api import _load_refs
    from backtest.clock import Blocks
    from ingest.prices import import_prices
    from tests.backtest.markets import T0

    sc = scenario(reference=True, to_block=FROM + 10)
    blocks = Blocks.regular(FROM, FROM + 10, T0)

    def put(wh: Warehouse, name: str, price: int, times: range) -> None:
        f = tmp_path / f"{name}.csv"
        f.write_text("timestamp,price\n" + "".join(f"{t},{price}\n" for t in times))
        import_prices(wh, f, fmt="timestamp_price", pair="COLL/USD", unit="USD", source=name, run_id=name)

    with Warehouse(":memory:") as wh:
        put(wh, "jan", 2_000, range(T0 - 60, T0 + 60, 12))
        put(wh, "feb", 1_000, range(T0 + 60, T0 + 150, 12))  # follows jan: one path
        put(wh, "old", 5, range(T0 - 600, T0 - 20, 12))  # overlaps jan before the window only
        refs, init = _load_refs(wh, sc, blocks)
        assert [int(r.price) for r in refs] == [2_000] * 4 + [1_000] * 6
        assert int(init["COLL/USD"].price) == 2_000
        put(wh, "other", 1_500, range(T0 - 60, T0 + 132, 12))  # overlaps jan (and spans the window alone)
        with pytest.raises(ScenarioError) as e:
            _load_refs(wh, sc, blocks)
        assert e.value.field == "reference.source"
        assert "sources 'jan' and 'other' that overlap in time" in e.value.message
        assert "set reference.source to one of ['feb', 'jan', 'old', 'other']" in e.value.message
        assert sc.reference is not None
        one = dataclasses.replace(sc, reference=dataclasses.replace(sc.reference, source="other"))
        refs, init = _load_refs(wh, one, blocks)
        assert [int(r.price) for r in refs] == [1_500] * 10 and int(init["COLL/USD"].price) == 1_500


def test_a_bad_metric_parameter_is_a_scenario_error_at_load_time(tmp_path: Path) -> None:
    """The metrics checked their parameters only when the replay was built (after the market was
    rebuilt from the warehouse), raising a bare MetricError without file or line, which `deficit
    run` did not catch (a traceback)."""
    f = tmp_path / "s.toml"
    f.write_text('name = "x"\nchain_id = 1\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
                 'protocol = "aave_v3"\nsource = "m"\n[metrics]\nnames = ["spiral"]\n[metrics.spiral]\n'
                 'min_liquidations = "x"\n')
    with pytest.raises(ScenarioError) as e:
        load_scenario(f)
    assert (e.value.line, e.value.field) == (11, "metrics.spiral")
    assert "min_liquidations must be an integer >= 2, got 'x'" in e.value.message


def test_a_metric_parameter_that_does_not_fit_the_market_is_a_scenario_error() -> None:
    """Checks that need the market (oracle_lag's per-feed thresholds against the reference pairs)
    run when the replay starts: a ScenarioError at the metric's table, not a bare MetricError."""
    typo = "0x" + "5f" * 20
    extra = f'[metrics]\nnames = ["oracle_lag"]\n[metrics.oracle_lag]\ndeviation_bps = {{"{typo}" = 1}}\n'
    sc = scenario(reference=True, to_block=FROM + 5, extra=extra)
    with pytest.raises(ScenarioError) as e:
        run_inputs(sc, inputs(market(8000, 10500, [(10**18, 1_000 * 10**6)]), [2_000 * 10**8]))
    assert e.value.field == "metrics.oracle_lag"
    assert f"deviation_bps.{typo} is not a feed of [reference.pairs]" in e.value.message


def test_a_window_start_time_before_the_ingested_blocks_is_not_moved_to_them() -> None:
    """window.from resolved to the first *ingested* block at or after the time: with blocks ingested
    only from a later time, the window silently started there (here 50 blocks late)."""
    import datetime as dt

    from backtest.api import _resolve_window
    from backtest.scenario import parse_scenario
    from ingest.datasets.blocks import BLOCKS
    from ingest.warehouse import CHECKPOINTS

    t0 = 1_600_000_000

    def window(a: int, b: int) -> object:
        def iso(n: int) -> str:
            return dt.datetime.fromtimestamp(t0 + 12 * n, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        sc = parse_scenario(f'name = "x"\nchain_id = 1\n[window]\nfrom = "{iso(a)}"\nto = "{iso(b)}"\n'
                            '[market]\nprotocol = "aave_v3"\nsource = "m"\n')
        r = _resolve_window(wh, sc).window
        return r.from_block, r.to_block

    with Warehouse(":memory:") as wh:
        wh.ensure(BLOCKS, CHECKPOINTS)
        with wh.transaction() as con:
            for n in range(100, 201):
                con.execute("INSERT INTO raw.blocks VALUES (1, ?, ?, ?, ?, NULL, 0, 0, '0x', 0, 'finalized', "
                            "0, 'r')", [n, f"0x{n:064x}", f"0x{n - 1:064x}", t0 + 12 * n])
        assert window(150, 160) == (150, 160)
        assert window(101, 199) == (101, 199)
        with pytest.raises(MissingData) as e:
            window(50, 160)
        assert "window.from: the first ingested block at or after 2020-09-13T12:36:40Z is 100, but block " \
               "99 is not ingested" in str(e.value)
        assert "--from 2020-09-13T11:36:40Z" in str(e.value)
        # the same at the end: with blocks ingested only up to 200, a window to a later time (or to
        # block 200's own time: block 201 may share it) would silently end at 200
        for b in (200, 260):
            with pytest.raises(MissingData) as e:
                window(150, b)
            assert "window.to: the last ingested block at or before " in str(e.value)
            assert "is 200, but block 201 is not ingested" in str(e.value)
        assert "--to 2020-09-13T14:18:40Z" in str(e.value)  # an hour past 260's time


def test_the_reference_imports_read_are_among_the_runs_data_sources(tmp_path: Path) -> None:
    """bt.runs.data_sources (and so the derived run id) named the ingest runs only: a run over a
    re-imported, different reference path had the same id and lineage as the one before it."""
    from backtest.api import _reference_runs
    from backtest.clock import Blocks
    from ingest.prices import import_prices
    from tests.backtest.markets import T0

    sc = scenario(reference=True, to_block=FROM + 10)
    blocks = Blocks.regular(FROM, FROM + 10, T0)
    f = tmp_path / "p.csv"
    with Warehouse(":memory:") as wh:
        for run_id, price in (("prices-1", 2_000), ("prices-2", 1_900)):
            f.write_text("timestamp,price\n" + "".join(f"{T0 + 12 * i},{price}\n" for i in range(12)))
            import_prices(wh, f, fmt="timestamp_price", pair="COLL/USD", unit="USD", source="s",
                          run_id=run_id)
            assert _reference_runs(wh, sc, blocks) == [run_id]
        assert _reference_runs(wh, scenario(to_block=FROM + 10), blocks) == []  # no [reference]


def test_gas_without_a_priced_gas_price_key_is_a_scenario_error() -> None:
    """gas_units > 0 needs the price of ETH: without gas_price_key, or with one the market does not
    price, the replay used to stop at the first quote with a bare KeyError (a traceback)."""
    crash = [2_000 * 10**8 * (100 - 5 * i) // 100 for i in range(20)]
    book = market(8000, 10500, [(10**18, 1_500 * 10**6)])
    with pytest.raises(ScenarioError) as e:
        scenario(extra="\n[liquidator]\ngas_units = 300000\n", to_block=FROM + 30)
    assert e.value.field == "liquidator.gas_units" and "needs gas_price_key" in e.value.message
    stray = "0x" + "ee" * 20
    gas = f'\n[liquidator]\ngas_units = 300000\ngas_price_key = "{stray}"\n'
    sc = scenario(extra=gas, to_block=FROM + 30)
    with pytest.raises(ScenarioError) as e:
        run_inputs(sc, inputs(book, crash, to_block=FROM + 30))
    assert e.value.field == "liquidator.gas_price_key" and f"{stray} has no price" in e.value.message


@pytest.mark.parametrize("table", ["slippage", "inventory"])
def test_a_liquidator_table_naming_no_reserve_is_a_scenario_error(table: str) -> None:
    """A slippage curve (or inventory) for an address that is not a reserve, a typo, never applied:
    the liquidator then sold the collateral with no slippage at all, silently."""
    from tests.backtest.markets import COLL

    typo = COLL[:-1] + "1"
    body = (f'[liquidator.slippage."{typo}"]\ndepth_usd = 1000\n' if table == "slippage" else
            f'flash_loans = false\n[liquidator.inventory]\n"{typo}" = 1000\n')
    sc = scenario(extra="\n[liquidator]\n" + body, to_block=FROM + 5)
    with pytest.raises(ScenarioError) as e:
        run_inputs(sc, inputs(market(8000, 10500, [(10**18, 1_000 * 10**6)]), [2_000 * 10**8]))
    assert e.value.field == f"liquidator.{table}.{typo}" and "is not a reserve" in e.value.message
    ok = scenario(extra="\n[liquidator]\n" + body.replace(typo, COLL), to_block=FROM + 5)
    run_inputs(ok, inputs(market(8000, 10500, [(10**18, 1_000 * 10**6)]), [2_000 * 10**8]))


def test_gas_is_not_valued_on_blocks_without_a_base_fee() -> None:
    """Before London a block has no base fee; the model's gas_units x (base fee + priority fee)
    valued gas there at the priority fee alone (2 gwei against the ~100-1,000 gwei paid in May
    2021), silently. A window with such blocks and gas_units > 0 is now refused."""
    from backtest.api import _check_base_fees
    from backtest.scenario import parse_scenario
    from ingest.datasets.blocks import BLOCKS

    def sc(gas_units: int) -> object:
        return parse_scenario('name = "x"\nchain_id = 1\n[window]\nfrom_block = 100\nto_block = 200\n'
                              '[market]\nprotocol = "aave_v3"\nsource = "m"\n[liquidator]\n'
                              f'gas_units = {gas_units}\ngas_price_key = "0x' + "11" * 20 + '"\n')

    with Warehouse(":memory:") as wh:
        wh.ensure(BLOCKS)
        with wh.transaction() as con:
            for n in range(100, 201):
                con.execute("INSERT INTO raw.blocks VALUES (1, ?, ?, ?, ?, ?, 0, 0, '0x', 0, 'finalized', "
                            "0, 'r')", [n, f"0x{n:064x}", f"0x{n - 1:064x}", 1_600_000_000 + 12 * n,
                                        None if n < 150 else 10**9])
        _check_base_fees(wh, sc(0), 1, 100, 200)  # gas not modelled: nothing to value
        _check_base_fees(wh, sc(400_000), 1, 150, 200)  # London blocks only
        with pytest.raises(ScenarioError) as e:
            _check_base_fees(wh, sc(400_000), 1, 120, 200)
        assert e.value.field == "liquidator.gas_units"
        assert "30 block(s) of the window (120..149) have no base fee" in e.value.message


def test_parameters_of_a_metric_not_computed_are_refused(tmp_path: Path) -> None:
    """[metrics.X] for a metric missing from names was accepted and never read (a typo in names,
    or a metric dropped from it, silently ignored its settings)."""
    f = tmp_path / "s.toml"
    f.write_text('name = "x"\nchain_id = 1\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
                 'protocol = "aave_v3"\nsource = "m"\n[metrics]\nnames = ["liquidations"]\n'
                 '[metrics.bad_debt]\ndust_usd = 5\n')
    with pytest.raises(ScenarioError) as e:
        load_scenario(f)
    assert (e.value.line, e.value.field) == (11, "metrics.bad_debt")  # the table's header
    assert "does not compute" in e.value.message and "['liquidations']" in e.value.message
    f.write_text(f.read_text().replace('names = ["liquidations"]', 'names = ["liquidations", "bad_debt"]'))
    assert load_scenario(f).metrics.params["bad_debt"]["dust_usd"] == 5


@pytest.mark.parametrize("bonus", [0, 500, 9999])
def test_a_liquidation_bonus_override_below_10000_bps_is_refused(bonus: int) -> None:
    """Aave stores the liquidation bonus as 10000 + the premium (10500: 5 %). An override written
    as the premium (500) was accepted: the liquidator got collateral worth 5 % of the debt it
    repaid, no liquidation ever paid and the run reported no liquidations, silently."""
    from backtest.scenario import parse_scenario

    text = ('name = "x"\nchain_id = 1\nmode = "counterfactual"\n[window]\nfrom_block = 1\nto_block = 2\n'
            '[market]\nprotocol = "aave_v3"\nsource = "m"\n[[overrides.reserve]]\n'
            f'asset = "0x{"22" * 20}"\nliquidation_bonus_bps = {bonus}\n')
    with pytest.raises(ScenarioError, match=r"10000 \+ the premium") as e:
        parse_scenario(text, "s.toml")
    assert (e.value.line, e.value.field) == (12, "overrides.reserve[0].liquidation_bonus_bps")
    ok = parse_scenario(text.replace(f"= {bonus}\n", "= 10500\n"))
    assert ok.overrides.reserves[0].liquidation_bonus_bps == 10500


def test_an_override_of_a_field_the_protocol_lacks_is_a_replay_error() -> None:
    """Aave v2 reserves have no supply or borrow cap and no liquidation protocol fee: such an
    override escaped as a bare TypeError from dataclasses.replace."""
    import random

    from backtest.engine import apply_overrides
    from backtest.errors import ReplayError
    from backtest.scenario import Overrides, ReserveOverride
    from protocols.registry import get_adapter

    adapter = get_adapter("aave_v2")
    state = adapter.sample(random.Random(1)).state
    asset = sorted(state.reserves)[0]
    for key, field in (("supply_cap", "supply_cap"), ("borrow_cap", "borrow_cap"),
                       ("liquidation_protocol_fee_bps", "liquidation_protocol_fee")):
        ov = Overrides(None, (ReserveOverride(asset, **{key: 5}),))
        with pytest.raises(ReplayError, match=rf"overrides.reserve\[0\].{key}: .*aave_v2.* no {field}"):
            apply_overrides(adapter, state, ov)
    lt = Overrides(None, (ReserveOverride(asset, liquidation_threshold_bps=7000),))
    apply_overrides(adapter, state, lt)
    assert state.reserves[asset].configuration.liquidation_threshold == 7000


@pytest.mark.parametrize("key", ["ltv_bps", "supply_cap", "borrow_cap"])
def test_an_override_that_cannot_change_a_counterfactual_run_is_refused(key: str) -> None:
    """Counterfactual mode freezes user actions: LTV and the caps only bound new borrows and
    supplies, which never happen, and a liquidation reads neither. ltv_bps = 0 with both caps at 1
    gave bt rows identical to the run without them (liquidations included), with no word."""
    from backtest.scenario import parse_scenario

    text = ('name = "x"\nchain_id = 1\nmode = "counterfactual"\n[window]\nfrom_block = 1\nto_block = 2\n'
            '[market]\nprotocol = "aave_v3"\nsource = "m"\n[[overrides.reserve]]\n'
            f'asset = "0x{"22" * 20}"\n{key} = 1\n')
    with pytest.raises(ScenarioError, match=r"no effect in counterfactual mode") as e:
        parse_scenario(text, "s.toml")
    assert (e.value.line, e.value.field) == (12, f"overrides.reserve[0].{key}")


def test_two_overrides_of_one_reserve_are_refused() -> None:
    """Two [[overrides.reserve]] entries for one asset (here the second in checksum case) were
    applied one after the other: the later one's threshold silently replaced the earlier one's."""
    from backtest.scenario import parse_scenario

    a, upper = "0x" + "ab" * 20, "0x" + "AB" * 20
    text = ('name = "x"\nchain_id = 1\nmode = "counterfactual"\n[window]\nfrom_block = 1\nto_block = 2\n'
            '[market]\nprotocol = "aave_v3"\nsource = "m"\n'
            f'[[overrides.reserve]]\nasset = "{a}"\nliquidation_threshold_bps = 8000\n'
            f'[[overrides.reserve]]\nasset = "{upper}"\nliquidation_threshold_bps = 7000\n')
    with pytest.raises(ScenarioError, match=r"already overridden by overrides.reserve\[0\]") as e:
        parse_scenario(text, "s.toml")
    assert (e.value.line, e.value.field) == (14, "overrides.reserve[1].asset")


@pytest.mark.parametrize(("delay", "initial", "held"), [
    ("", 99, []), ("delay_blocks = 1", 99, []), ("delay_blocks = 2", 98, [99]),
    ("delay_s = 24", 98, [99]), ("delay_s = 30", 95, [98, 99]),
    ("delay_s = 30\ndelay_blocks = 1", 95, [98, 99]), ("delay_blocks = 6", 95, [98, 99]),
])
def test_the_answer_in_force_at_the_window_start_waits_for_the_oracle_delay(
        tmp_path: Path, delay: str, initial: int, held: list[int]) -> None:
    """Blocks 90.. every 12 s (block 100, the window's first, at t0 = 1120), rounds in blocks 95,
    98, 99 and 100. With a delay a round is usable delay_blocks / delay_s after its block, but the
    replay took the last round before the window as the answer in force at its start, whatever
    the delay: with delay_s = 30 the round of block 99 (ts 1108, usable from ts 1138) priced block
    100. Now the answer in force is the last round usable by t0 (ts <= t0 - delay_s, block <=
    100 - delay_blocks; exactly on the boundary is usable) and the held-back ones lead the rounds.
    A feed with no usable round yet (delay_blocks = 6: none by block 94) starts from its oldest."""
    from backtest.api import _feed_rounds
    from backtest.scenario import parse_scenario
    from ingest.datasets.blocks import BLOCKS
    from ingest.datasets.chainlink import ORACLE_ROUNDS

    feed = "0x" + "fe" * 20
    with Warehouse(tmp_path / "w.duckdb") as wh:
        wh.ensure(BLOCKS, ORACLE_ROUNDS)
        for n in range(90, 111):
            wh.con.execute("INSERT INTO raw.blocks VALUES (1, ?, 'h', 'p', ?, 0, 0, 0, 'm', 0, 'finalized', "
                           "0, 'r')", [n, 1000 + 12 * (n - 90)])
        for n in (95, 98, 99, 100):
            ts = 1000 + 12 * (n - 90)
            wh.con.execute("INSERT INTO raw.oracle_rounds VALUES (1, ?, 'f', 'a', 1, ?, ?, ?, 8, 0, ?, ?, ?, "
                           "'h', 't', 0, 0, ?, 'r')", [feed, n, n, n * 10**8, ts, ts, n, feed])
        sc = parse_scenario('name = "x"\nchain_id = 1\n[window]\nfrom_block = 100\nto_block = 110\n'
                            f'[market]\nprotocol = "aave_v3"\nsource = "m"\n[oracle]\n{delay}\n')
        init, rounds = _feed_rounds(wh, sc, [feed], 100, 110)
    assert init[feed].block_number == initial
    assert [r.block_number for r in rounds] == [*held, 100]


def test_a_protocol_fee_override_on_aave_v2_is_refused_at_its_line() -> None:
    """Aave v2 liquidations pay no protocol fee: the override used to fail only once the replay
    started (a ReplayError, before that a bare TypeError), without its line."""
    from backtest.scenario import parse_scenario

    text = ('name = "x"\nchain_id = 1\nmode = "counterfactual"\n[window]\nfrom_block = 1\nto_block = 2\n'
            '[market]\nprotocol = "aave_v2"\nsource = "m"\n[[overrides.reserve]]\n'
            f'asset = "0x{"22" * 20}"\nliquidation_protocol_fee_bps = 1000\n')
    with pytest.raises(ScenarioError, match=r"aave_v2 .*no liquidation protocol fee") as e:
        parse_scenario(text, "s.toml")
    assert (e.value.line, e.value.field) == (12, "overrides.reserve[0].liquidation_protocol_fee_bps")
    v3 = parse_scenario(text.replace("aave_v2", "aave_v3"))
    assert v3.overrides.reserves[0].liquidation_protocol_fee_bps == 1000


def test_a_window_start_time_with_a_fraction_of_a_second_starts_at_the_first_block_after_it() -> None:
    """window.from is the first block at or after the time; a time with a fraction of a second
    was truncated to its whole second, so the block stamped exactly that second (before the time)
    started the window: ``from = ...:40.5Z`` began at block 150 (stamped ...:40) instead of 151."""
    import datetime as dt

    from backtest.api import _resolve_window
    from backtest.scenario import parse_scenario
    from ingest.datasets.blocks import BLOCKS
    from ingest.warehouse import CHECKPOINTS

    t0 = 1_600_000_000

    def iso(n: int, frac: str = "") -> str:
        return dt.datetime.fromtimestamp(t0 + 12 * n, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"

    with Warehouse(":memory:") as wh:
        wh.ensure(BLOCKS, CHECKPOINTS)
        with wh.transaction() as con:
            for n in range(100, 201):
                con.execute("INSERT INTO raw.blocks VALUES (1, ?, ?, ?, ?, NULL, 0, 0, '0x', 0, 'finalized', "
                            "0, 'r')", [n, f"0x{n:064x}", f"0x{n - 1:064x}",
                                        t0 + 12 * n])
        for frm, to, want in ((iso(150, ".5"), iso(160, ".5"), (151, 160)), (iso(150), iso(160), (150, 160)),
                              (iso(150, ".000001"), iso(160, ".999999"), (151, 160))):
            sc = parse_scenario(f'name = "x"\nchain_id = 1\n[window]\nfrom = "{frm}"\nto = "{to}"\n'
                                '[market]\nprotocol = "aave_v3"\nsource = "m"\n')
            r = _resolve_window(wh, sc).window
            assert (r.from_block, r.to_block) == want, (frm, to)


def test_a_shock_between_a_feeds_rounds_moves_the_price_in_force() -> None:
    """A 60 % shift at the second block's time, on a feed with no round in the window (a quiet
    feed: an hourly heartbeat, a stablecoin's daily one): the shock used to act on the feed's
    next round only, so here it changed nothing. 1 COLL at $800 against $1,200 of debt: $400."""
    from tests.backtest.markets import FEED_C, T0

    # T0 + 24: block FROM + 1's second (markets.inputs: blocks every 12 s from FROM - 1 at T0)
    shock = f'\n[[shock]]\nkind = "shift"\npct = -0.6\nat_ts = {T0 + 24}\nassets = ["{FEED_C}"]\n'
    assert _idle_shocked(shock) == 400 * 10**8


def test_a_shock_that_does_not_fit_the_paths_is_named_among_shocks_of_its_kind() -> None:
    """Two shift shocks, the second naming a feed without prices in the window: the error was
    located at ``shock`` (which one? the relocation only knew the kind, and two shared it); it is
    at ``shock[1].assets``, the line of the second [[shock]]."""
    from tests.backtest.markets import FEED_C, T0

    other = "0x" + "11" * 20
    shift = '\n[[shock]]\nkind = "shift"\npct = -0.1\nat_ts = {at}\nassets = ["{feed}"]\n'
    first = shift.format(at=T0 + 60, feed=FEED_C)
    # a correlated shock names its feeds in betas: the error is there
    corr = f'\n[[shock]]\nkind = "correlated"\npct = -0.1\nat_ts = {T0 + 60}\n[shock.betas]\n"{other}" = 1\n'
    bad = shift.format(at=T0 + 60, feed=other)
    for second, field in ((bad, "shock[1].assets"), (corr, "shock[1].betas")):
        with pytest.raises(ScenarioError) as e:
            run_inputs(scenario(extra=first + second, to_block=FROM + 12),
                       inputs(market(8000, 10500, [(10**18, 1_200 * 10**6)]), [2_000 * 10**8] * 10))
        assert e.value.field == field, str(e.value)
        assert f"no price path for '{other}'" in str(e.value) and "by their proxy address" in str(e.value)


@pytest.mark.parametrize(("shock", "field"), [
    ('kind = "shift"\npct = -0.3\nat_ts = AFTER', "shock[0].at_ts"),  # e.g. milliseconds
    ('kind = "correlated"\npct = -0.3\nat_ts = AFTER\n[shock.betas]\n"FEED" = 1', "shock[0].at_ts"),
    ('kind = "scale"\nfactor = 0.5\nfrom_ts = AFTER', "shock[0].from_ts"),
    ('kind = "scale"\nfactor = 0.5\nto_ts = BEFORE', "shock[0].to_ts"),
    ('kind = "student_t"\nfrom_ts = AFTER\nto_ts = LATER\nstep_s = 60\nvol = 0.8\nassets = ["FEED"]',
     "shock[0].from_ts"),
])
def test_a_shock_that_cannot_reach_the_window_is_refused(shock: str, field: str) -> None:
    """A shock whose instants all fall after the window's last block (an at_ts in milliseconds,
    the wrong day) or a scale that ends before its first block changes nothing in the run: the
    stressed run came out as the baseline, without a word. Refused at the instant's field."""
    from tests.backtest.markets import FEED_C, T0

    ms = (T0 + 60) * 1000
    text = "\n[[shock]]\n" + shock.replace("AFTER", str(ms)).replace("LATER", str(ms + 3600)).replace(
        "BEFORE", str(T0 - 1)).replace("FEED", FEED_C) + "\n"
    with pytest.raises(ScenarioError) as e:
        _idle_shocked(text)
    assert e.value.field == field, str(e.value)
    assert "window" in str(e.value)
    # a later stretch may bring its effect into the window: not refused (here it does not)
    _idle_shocked(text + f'\n[[shock]]\nkind = "stretch"\nanchor_ts = {T0}\nfactor = 1\n')
