"""Run set-up over a warehouse file (``backtest.run``): the data a scenario needs is checked before
the replay starts, on a small synthetic market (:mod:`backtest.synthetic`: the ingestor's tables
and ``meta.checkpoints``, one Chainlink-style feed per reserve, written in well under a second)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from backtest.api import run
from backtest.errors import MissingData
from backtest.synthetic import SyntheticConfig, generate, market
from ingest.warehouse import Warehouse

CFG = SyntheticConfig(borrowers=30, suppliers=5, actions=600, days=1)
FB, TB = CFG.first_block + 3_000, CFG.first_block + 5_000


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("setup") / "synthetic.duckdb"
    generate(path, CFG)
    return path


def _copy(src: Path, tmp: Path) -> Path:
    db = tmp / "w.duckdb"
    shutil.copy(src, db)
    return db


def _scenario(tmp: Path, extra: str = "") -> Path:
    f = tmp / "s.toml"
    f.write_text(f'name = "setup"\nchain_id = {CFG.chain_id}\n[window]\nfrom_block = {FB}\nto_block = {TB}\n'
                 f'[market]\nprotocol = "aave_v3"\nsource = "{CFG.deployment}"\nrules = "3.0"\n{extra}')
    return f


def _bt_tables(db: Path) -> int:
    with Warehouse(db, read_only=True) as wh:
        q = "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'bt'"
        return int(wh.con.execute(q).fetchall()[0][0])


def test_the_synthetic_window_runs(synthetic: Path, tmp_path: Path) -> None:
    db = _copy(synthetic, tmp_path)
    assert run(_scenario(tmp_path), db=db).scenario.to_block == TB


@pytest.mark.parametrize("cut", ["end", "start"])
def test_a_feed_ingested_over_part_of_the_window_fails_before_running(synthetic: Path, tmp_path: Path,
                                                                     cut: str) -> None:
    """A feed the market's oracle reads, ingested over only part of the window (its checkpoint ends
    inside it, or starts inside it): its rounds past the ingested range are not in the warehouse,
    so the replay held the last ingested answer for the rest of the window, silently (``end``), or
    failed half-way with a ReplayError (``start``). It is MissingData before anything runs, naming
    the feed, the blocks and the ingest command."""
    db = _copy(synthetic, tmp_path)
    feed = market(CFG).feeds[0]
    end, drop = ("to_block", ">") if cut == "end" else ("from_block", "<")
    with Warehouse(db) as wh, wh.transaction() as con:
        con.execute(f"UPDATE meta.checkpoints SET {end} = ? WHERE dataset = 'chainlink' AND source = ?",
                    [FB + 500, feed])
        con.execute(f"DELETE FROM raw.oracle_rounds WHERE feed = ? AND block_number {drop} ?",
                    [feed, FB + 500])
        n = con.execute("SELECT count(*) FROM raw.oracle_rounds WHERE feed = ? AND block_number "
                        "BETWEEN ? AND ?", [feed, FB, TB]).fetchall()[0][0]
        assert n > 0  # rounds in the window remain: only part of it is missing
    with pytest.raises(MissingData) as e:
        run(_scenario(tmp_path), db=db)
    msg = str(e.value)
    assert f"feed {feed}" in msg and "is not ingested over blocks" in msg and f"..{TB} " in msg
    assert f"deficit ingest --chain {CFG.chain_id} --from" in msg and "--datasets chainlink" in msg
    assert _bt_tables(db) == 0  # nothing written


@pytest.mark.parametrize("cut", ["end", "start"])
def test_a_reference_path_over_part_of_the_window_fails_before_running(synthetic: Path, tmp_path: Path,
                                                                      cut: str) -> None:
    """A reference path (``deficit import-prices``) that stops a quarter into the window (``end``)
    or starts three quarters into it (``start``) ran: model ``reference`` held its last price for
    the rest of the window (``oracle_lag`` read it as a stale oracle), or kept the on-chain answer
    until its first price. The path must hold the price in force at the window's first block and
    reach its last; otherwise MissingData names the pair, the gap and the import command."""
    from ingest.prices import import_prices

    db = _copy(synthetic, tmp_path)
    t0, t1 = CFG.block_ts(FB), CFG.block_ts(TB)
    times = {"end": range(t0 - 600, t0 + (t1 - t0) // 4, 60),
             "start": range(t0 + 3 * (t1 - t0) // 4, t1 + 600, 60), "whole": range(t0 - 600, t1 + 600, 60)}
    feed = market(CFG).feeds[0]
    sc = _scenario(tmp_path, f'[oracle]\nmodel = "reference"\n[reference.pairs]\n"{feed}" = "ETH/USD"\n'
                   '[metrics]\nnames = ["bad_debt", "oracle_lag"]\n')
    for name in (cut, "whole"):
        csv = tmp_path / f"{name}.csv"
        csv.write_text("timestamp,price\n" + "".join(f"{t},2300.5\n" for t in times[name]))
        with Warehouse(db) as wh:
            import_prices(wh, csv, fmt="timestamp_price", pair="ETH/USD", unit="USD", source="s",
                          run_id=f"prices-{name}")
        if name == "whole":  # the whole window imported (the same source, replaced): it runs
            assert run(sc, db=db).summary["oracle_lag"]["max_staleness_s"] == 60
            return
        with pytest.raises(MissingData) as e:
            run(sc, db=db)
        msg = str(e.value)
        assert "reference pair ETH/USD" in msg and "deficit import-prices FILE --pair ETH/USD" in msg
        assert ("before the window's start" if cut == "start" else "before the window's end") in msg
        assert _bt_tables(db) == 0  # nothing written


def test_market_rules_on_a_protocol_without_rule_sets_is_refused_at_its_line() -> None:
    """``market.rules`` (the Aave v3 Pool version) on an Aave v2 market loaded, then the run passed
    it to the v2 adapter's new_state: a bare TypeError traceback (``deficit run`` exited without
    its typed error). It is a ScenarioError at market.rules."""
    from backtest.errors import ScenarioError
    from backtest.scenario import parse_scenario

    text = ('name = "x"\nchain_id = 1\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
            'protocol = "aave_v2"\nsource = "m"\nrules = "3.0"\n')
    with pytest.raises(ScenarioError) as e:
        parse_scenario(text, "s.toml")
    assert (e.value.line, e.value.field) == (9, "market.rules")
    assert "aave_v2" in e.value.message
    assert parse_scenario(text.replace("aave_v2", "aave_v3")).market.rules == "3.0"


def test_the_warehouse_path_does_not_change_the_scenario_hash() -> None:
    """``warehouse`` says where to read, not what: ``--db`` overrides it and the data read are the
    run's data_sources. It was hashed, so the same scenario spelled ``data/w.duckdb`` and
    ``./data/w.duckdb`` (or given without it and run with ``--db``) had different run ids, and
    bt.runs.scenario_json named a warehouse the run may not have read."""
    from backtest.scenario import parse_scenario

    base = ('name = "x"\nchain_id = 1\n{}[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
            'protocol = "aave_v3"\nsource = "m"\n')
    hashes = {parse_scenario(base.format(w)).sha256()
              for w in ("", 'warehouse = "data/w.duckdb"\n', 'warehouse = "./data/w.duckdb"\n')}
    assert len(hashes) == 1
    sc = parse_scenario(base.format('warehouse = "data/w.duckdb"\n'))
    assert sc.warehouse == "data/w.duckdb" and '"warehouse":null' in sc.canonical_json()  # still read


def test_a_feeds_newly_declared_rules_make_another_run(synthetic: Path, tmp_path: Path) -> None:
    """The oracle_lag metric (and model republish) judge a feed by its rules as declared at ingest
    (raw.oracle_feeds, rewritten when an ingest declares them anew; its rounds are not). The run
    id did not cover them: a re-ingest that declared another heartbeat changed the run's figures
    under the same run id (a re-run replaced the rows; an attribution over the old ones stood).
    The same rules declared again, from another file, keep the id."""
    from ingest.prices import import_prices

    db = _copy(synthetic, tmp_path)
    t0, t1 = CFG.block_ts(FB), CFG.block_ts(TB)
    feed = market(CFG).feeds[0]
    csv = tmp_path / "p.csv"
    csv.write_text("timestamp,price\n" + "".join(f"{t},2300.5\n" for t in range(t0 - 600, t1 + 600, 60)))
    sc = _scenario(tmp_path, f'[reference.pairs]\n"{feed}" = "ETH/USD"\n[metrics]\nnames = ["oracle_lag"]\n')

    def declare(heartbeat: int, run_id: str, where: str = "deployments.toml") -> tuple[str, object]:
        with Warehouse(db) as wh, wh.transaction() as con:
            con.execute("DELETE FROM raw.oracle_feeds WHERE feed = ?", [feed])
            con.execute("INSERT INTO raw.oracle_feeds VALUES (?, ?, 'ETH / USD', 8, 50, ?, NULL, NULL, ?, ?)",
                        [CFG.chain_id, feed, heartbeat, where, run_id])
        r = run(sc, db=db)
        return r.run_id, r.summary["oracle_lag"]["beyond_heartbeat_s_max"]

    with Warehouse(db) as wh:
        import_prices(wh, csv, fmt="timestamp_price", pair="ETH/USD", unit="USD", source="s",
                      run_id="prices-1")
    a, b = declare(86_400, "ingest-a"), declare(600, "ingest-b")
    assert a[1] != b[1]  # the declared heartbeat changes the figures ...
    assert a[0] != b[0]  # ... so it is another run
    assert declare(600, "ingest-c", "elsewhere/deployments.toml") == b


@pytest.mark.parametrize(("table", "value_a", "value_b"), [
    ("market.asset_decimals", "6", "18"),
    ("market.asset_treasuries", '"0x' + "77" * 20 + '"', '"0x' + "88" * 20 + '"'),
    ("reference.pairs", '"ETH/USD"', '"BTC/USD"'),
    ("liquidator.inventory", "5", "7"),
    ("liquidator.slippage", "{ depth_eth = 5 }", "{ depth_eth = 7 }"),
])
def test_an_address_given_twice_in_different_case_is_refused(table: str, value_a: str, value_b: str) -> None:
    """Address-keyed tables lower-case their keys: the same address written checksummed and in
    lower case is two TOML keys, and the later one silently replaced the earlier (asset decimals
    6 read as 18, a feed's reference pair ETH/USD as BTC/USD). Refused at the second key."""
    from backtest.errors import ScenarioError
    from backtest.scenario import parse_scenario

    low = "0x5f4ec3df9cbd43714fe2740f5e3616155c5b8419"
    checksummed = "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419"
    extra = "[liquidator]\nflash_loans = false\n" if table == "liquidator.inventory" else ""
    text = ('name = "x"\nchain_id = 1\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
            f'protocol = "aave_v2"\nsource = "m"\n{extra}[{table}]\n"{low}" = {value_a}\n'
            f'"{checksummed}" = {value_b}\n')
    with pytest.raises(ScenarioError) as e:
        parse_scenario(text, "s.toml")
    assert e.value.field == f"{table}.{checksummed}"
    assert f"{low} is given twice" in e.value.message
    assert e.value.line == len(text.splitlines())


def test_a_feed_given_twice_in_different_case_in_oracle_lag_parameters_is_refused() -> None:
    """The same for the oracle_lag metric's per-feed tables: deviation_bps 50 for a feed and 100
    for its checksummed spelling read as 100."""
    from backtest.errors import ScenarioError
    from backtest.scenario import parse_scenario

    low = "0x5f4ec3df9cbd43714fe2740f5e3616155c5b8419"
    checksummed = "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419"
    text = ('name = "x"\nchain_id = 1\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
            'protocol = "aave_v3"\n'
            f'source = "m"\n[reference.pairs]\n"{low}" = "ETH/USD"\n[metrics]\nnames = ["oracle_lag"]\n'
            f'[metrics.oracle_lag.deviation_bps]\n"{low}" = 50\n"{checksummed}" = 100\n')
    with pytest.raises(ScenarioError) as e:
        parse_scenario(text, "s.toml")
    assert e.value.field == "metrics.oracle_lag"
    assert f"feed {low} is given twice" in e.value.message


def test_an_error_in_an_inline_table_names_its_line() -> None:
    """A key of an inline table (``"0x.." = { depth_usd = 0 }``) has no ``key =`` line of its own:
    its errors named the field but no line. They name the inline table's line."""
    from backtest.errors import ScenarioError
    from backtest.scenario import parse_scenario

    text = ('name = "x"\nchain_id = 1\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
            'protocol = "aave_v3"\nsource = "m"\n[liquidator.slippage]\n'
            '"0x' + "11" * 20 + '" = { depth_usd = 0 }\n')
    with pytest.raises(ScenarioError) as e:
        parse_scenario(text, "s.toml")
    assert (e.value.line, e.value.field) == (10, "liquidator.slippage.0x" + "11" * 20 + ".depth_usd")


def test_a_metric_named_twice_is_refused() -> None:
    """``names = ["bad_debt", "bad_debt"]`` ran the metric twice: bt.summaries got each of its
    figures twice (a sum over them doubled) and bt.runs.metrics listed it twice."""
    from backtest.errors import ScenarioError
    from backtest.scenario import parse_scenario

    text = ('name = "x"\nchain_id = 1\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
            'protocol = "aave_v3"\nsource = "m"\n[metrics]\n'
            'names = ["bad_debt", "liquidations", "bad_debt"]\n')
    with pytest.raises(ScenarioError) as e:
        parse_scenario(text, "s.toml")
    assert (e.value.line, e.value.field) == (10, "metrics.names")
    assert "'bad_debt' is listed twice" in e.value.message


def test_two_writers_of_one_output_file_do_not_share_a_part_file(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """write_atomic wrote every file through ``<name>.part``: two writers of one output (two
    ``deficit check --junit junit.xml`` or ``deficit report`` of one run at once) shared it. B
    writing it while A was about to rename it took A's part file: A's rename failed (its bytes
    lost), or, before B's own rename, moved B's bytes into place as A's (B's rename then failed),
    and a reader of the part file saw it half written. Each write now has a part file of its own."""
    from backtest import files

    target = tmp_path / "junit.xml"
    real = Path.replace
    interleaved: list[object] = []

    def replace(self: Path, other: Path) -> Path:  # B writes the same file while A is about to rename
        if not interleaved:
            interleaved.append(1)
            files.write_atomic(target, "B" * 10)
        return real(self, other)

    monkeypatch.setattr(Path, "replace", replace)
    files.write_atomic(target, "A" * 1000)  # A renames last: A's bytes, whole
    assert interleaved == [1]  # B's write succeeded too
    assert target.read_text() == "A" * 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml"]  # no part file left


def test_a_feed_deployed_inside_the_window_and_switched_to_there_runs(synthetic: Path,
                                                                      tmp_path: Path) -> None:
    """A feed the oracle switches to inside the window (AssetSourceUpdated) may itself be deployed
    inside it, and ingested from its deployment (its start_block): its coverage starts after the
    window's, yet every round it had is there. Only a feed that prices a reserve at the window's
    start needs coverage from its start (or from its answer then)."""
    mk = market(CFG)
    db = _copy(synthetic, tmp_path)
    new = "0x" + "f1" * 20
    deployed, switch = FB + 500, FB + 1_000
    with Warehouse(db) as wh, wh.transaction() as con:
        con.execute("INSERT INTO raw.oracle_rounds SELECT * REPLACE (? AS feed, ? AS source) FROM "
                    "raw.oracle_rounds WHERE feed = ? AND block_number >= ?",
                    [new, new, mk.feeds[0], deployed])
        con.execute("INSERT INTO meta.checkpoints SELECT * REPLACE (? AS source, ? AS from_block) FROM "
                    "meta.checkpoints WHERE dataset = 'chainlink' AND source = ?",
                    [new, deployed, mk.feeds[0]])
        con.execute("INSERT INTO raw.aave_v3_asset_source_updated SELECT * REPLACE (? AS block_number, 0 AS "
                    "log_index, ? AS arg_source) FROM raw.aave_v3_asset_source_updated WHERE asset = ? "
                    "ORDER BY block_number LIMIT 1", [switch, new, mk.assets[0]])
    r = run(_scenario(tmp_path), db=db)
    assert r.output.record.prices_consumed > 0
    # the same feed ingested from after its switch: the answer it had then is missing
    with Warehouse(db) as wh, wh.transaction() as con:
        con.execute("UPDATE meta.checkpoints SET from_block = ? WHERE source = ?", [switch + 1, new])
        con.execute("DELETE FROM raw.oracle_rounds WHERE feed = ? AND block_number <= ?", [new, switch])
    with pytest.raises(MissingData, match=f"feed {new}"):
        run(_scenario(tmp_path), db=db)


def test_a_flash_fee_above_10000_bps_is_refused() -> None:
    """flash_fee_bps had no upper bound: 50000 (a fee of 5x the repaid debt, which Aave's
    configurator refuses: FLASHLOAN_PREMIUM_INVALID above 100 %) made no liquidation pay, so the
    run reported the bad debt of a market nobody liquidates, without a word."""
    from backtest.errors import ScenarioError
    from backtest.scenario import parse_scenario

    text = ('name = "x"\nchain_id = 1\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
            'protocol = "aave_v3"\nsource = "m"\n[liquidator]\nflash_fee_bps = 50000\n')
    with pytest.raises(ScenarioError) as e:
        parse_scenario(text, "s.toml")
    assert (e.value.line, e.value.field) == (10, "liquidator.flash_fee_bps")
    assert parse_scenario(text.replace("50000", "10000")).liquidator.flash_fee_bps == 10_000


def test_equal_scenarios_written_differently_have_one_hash() -> None:
    """The run id hashes the scenario's canonical JSON, which kept money amounts as written
    (``min_profit_usd = 10`` and ``10.0`` and ``"10.00"`` are one amount; the JSON said "10",
    "10.0", "10.00") and reserve overrides in file order (two overrides of one reserve are
    refused, so their order means nothing): the same scenario got different run ids and
    scenario_sha256. Scenarios that differ still differ."""
    from backtest.scenario import parse_scenario

    a, b = "0x" + "11" * 20, "0x" + "22" * 20
    base = ('name = "x"\nchain_id = 1\nmode = "counterfactual"\n[window]\nfrom_block = 1\nto_block = 2\n'
            '[market]\nprotocol = "aave_v3"\nsource = "m"\n[liquidator]\nmin_profit_usd = {}\n{}')

    def ov(*entries: tuple[str, int]) -> str:
        return "".join(f'[[overrides.reserve]]\nasset = "{x}"\nliquidation_bonus_bps = {bps}\n'
                       for x, bps in entries)

    one, other = ov((a, 10_500), (b, 10_700)), ov((b, 10_700), (a, 10_500))
    hashes = {parse_scenario(base.format(m, o)).sha256()
              for m in ("10", "10.0", '"10.00"', "1e1") for o in (one, other)}
    assert len(hashes) == 1
    assert parse_scenario(base.format("10.5", one)).sha256() not in hashes
    assert parse_scenario(base.format("10", one.replace("10700", "10600"))).sha256() not in hashes


def test_a_whole_number_written_as_a_float_does_not_change_the_hash() -> None:
    """A metric parameter or a shock parameter written ``1`` or ``1.0`` is one number to the code
    that reads it, but the canonical JSON kept the float (``1`` vs ``1.0``), so the two spellings
    had different run ids. A different value still differs."""
    from backtest.scenario import parse_scenario

    base = ('name = "x"\nchain_id = 1\nmode = "counterfactual"\n[window]\nfrom_block = 1\nto_block = 2\n'
            '[market]\nprotocol = "aave_v3"\nsource = "m"\n'
            '[[shock]]\nkind = "scale"\nfactor = {}\nfrom_ts = 0\nto_ts = 10\n'
            '[metrics]\nnames = ["bad_debt"]\n[metrics.bad_debt]\ndust_usd = {}\n')
    hashes = {parse_scenario(base.format(f, d)).sha256() for f in ("2", "2.0") for d in ("1", "1.0")}
    assert len(hashes) == 1
    assert parse_scenario(base.format("2", "1.5")).sha256() not in hashes
    assert parse_scenario(base.format("2.5", "1")).sha256() not in hashes


def test_a_relative_warehouse_is_read_from_the_scenario_files_folder(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``warehouse = "w.duckdb"`` in ci/s.toml named w.duckdb in whatever folder the command ran
    from, while the same file's ``[checks] baseline`` is read beside the scenario: run from the
    repository root, `deficit run ci/s.toml` read (or was told to ingest into) another file than
    `cd ci && deficit run s.toml`. Both are now relative to the scenario's folder; an absolute
    path, and a scenario parsed from text (no file), are unchanged."""
    from backtest.scenario import load_scenario, parse_scenario

    text = ('name = "x"\nchain_id = 1\nwarehouse = "{}"\n[window]\nfrom_block = 1\nto_block = 2\n'
            '[market]\nprotocol = "aave_v3"\nsource = "m"\n')
    ci = tmp_path / "ci"
    ci.mkdir()
    (ci / "s.toml").write_text(text.format("w.duckdb"))
    monkeypatch.chdir(tmp_path)
    assert Path(load_scenario("ci/s.toml").warehouse or "").resolve() == (ci / "w.duckdb").resolve()
    monkeypatch.chdir(ci)
    assert Path(load_scenario("s.toml").warehouse or "").resolve() == (ci / "w.duckdb").resolve()
    absolute = tmp_path / "elsewhere.duckdb"
    (ci / "a.toml").write_text(text.format(absolute.as_posix()))
    assert load_scenario(ci / "a.toml").warehouse == absolute.as_posix()
    assert parse_scenario(text.format("w.duckdb")).warehouse == "w.duckdb"
    # the hash leaves the warehouse out, so both spellings are one run
    assert load_scenario(ci / "s.toml").sha256() == parse_scenario(text.format("other.duckdb")).sha256()


def test_a_run_with_the_finality_metric_records_the_reorgs_that_touched_its_window(synthetic: Path,
                                                                                     tmp_path: Path) -> None:
    """meta.reorgs holds a reorg that replaced blocks inside the window (as ingest records one) and
    one outside it. `deficit run` with the finality metric wrote no bt.reorg_exposure row (only a
    finality attribution did), so the issue's "reorgs in meta.reorgs and what they touched" was
    missing from every plain run and its report said "not computed". Now the run records the one
    that touched its window, with its depth and the detecting ingest run."""
    import datetime as dt

    from ingest.warehouse import REORGS

    db = _copy(synthetic, tmp_path)
    with Warehouse(db) as wh:
        wh.ensure(REORGS)
        for fork, tip in ((FB + 100, FB + 103), (TB + 10, TB + 12)):
            wh.con.execute(f"INSERT INTO meta.reorgs ({', '.join(c.name for c in REORGS.columns)}) VALUES "
                           f"({', '.join('?' * len(REORGS.columns))})",
                           [CFG.chain_id, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "ingest-x", fork,
                            tip - fork, tip, ["0x" + "aa" * 32] * (tip - fork),
                            ["0x" + "bb" * 32] * (tip - fork), 0])
    r = run(_scenario(tmp_path, '[metrics]\nnames = ["finality", "liquidations"]\n'), db=db)
    with Warehouse(db, read_only=True) as wh:
        rows = wh.con.execute("SELECT block_number, depth, detected_by_run FROM bt.reorg_exposure "
                              "WHERE run_id = ?", [r.run_id]).fetchall()
    assert rows == [(FB + 100, 3, "ingest-x")]


def test_the_reorg_exposure_is_written_with_the_run_or_not_at_all(synthetic: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """bt.reorg_exposure derives from the run's rows and was written in a transaction after them:
    a failure (or an interrupt) between the two left the run stored without it. It is now computed
    inside the run's own transaction. The failure is injected (a fake that raises: no real input
    makes the derivation fail), and nothing of the run is stored."""
    import backtest.metrics.finality as finality

    db = _copy(synthetic, tmp_path)

    def boom(con: object, run_id: str, where: str = "") -> list[tuple[object, ...]]:
        raise RuntimeError("injected failure while deriving bt.reorg_exposure")

    monkeypatch.setattr(finality, "reorg_exposure_rows", boom)
    with pytest.raises(RuntimeError, match="injected failure"):
        run(_scenario(tmp_path, '[metrics]\nnames = ["finality", "liquidations"]\n'), db=db)
    with Warehouse(db, read_only=True) as wh:
        have = {n for (n,) in wh.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'bt'").fetchall()}
        assert "runs" not in have or wh.con.execute("SELECT count(*) FROM bt.runs").fetchall() == [(0,)]
