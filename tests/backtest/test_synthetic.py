"""The synthetic Aave-scale market generator (backtest.synthetic), on small configurations.

The generated file is read back through the production path (DuckDB file, ``backtest.feed``,
the registered ``aave_v3`` adapter) and checked for the properties the benchmark relies on: the
adapter accepts every event and rebuilds exactly the generator's balances, the tables are in
the ingestor's format with consistent lineage, oracle rounds obey deviation/heartbeat, output
is a function of the seed, and ``scale`` multiplies positions but not price updates.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from backtest.feed import protocol_events
from backtest.synthetic import RESERVES, SyntheticConfig, _tables, generate, market
from ingest.datasets import asked_fingerprint
from ingest.warehouse import Warehouse
from protocols.registry import get_adapter

SMALL = SyntheticConfig(borrowers=200, suppliers=20, actions=8_000, days=5)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("syn") / "small.duckdb"
    return path, generate(path, SMALL)


def test_adapter_replays_every_event_and_rebuilds_the_generator_balances(small) -> None:
    path, rep = small
    mk = market(SMALL)
    con = duckdb.connect(str(path), read_only=True)
    adapter = get_adapter("aave_v3")
    state = adapter.new_state(pool=mk.pool)
    names: dict[str, int] = {}
    for ev in protocol_events(
        con, adapter, dataset="aave_v3", chain_id=SMALL.chain_id, source=SMALL.deployment
    ):
        adapter.apply(state, ev)  # raises InconsistentEvent on any contradiction
        names[ev.name] = names.get(ev.name, 0) + 1
    assert (
        sum(names[n] for n in ("Supply", "Borrow", "Repay", "Withdraw"))
        == SMALL.actions
        == rep.position_events
    )
    assert rep.balances, "the generator reported no balances"
    for (user, asset), (scaled_a, scaled_d) in rep.balances.items():
        ur = state.user(user).reserve(asset)
        assert (ur.scaled_a_token_balance, ur.scaled_variable_debt) == (scaled_a, scaled_d), (user, asset)
    # reserves listed with the declared parameters and decimals
    assert sorted(state.reserves) == sorted(mk.assets)
    for i, spec in enumerate(RESERVES):
        cfg = state.reserves[mk.assets[i]].configuration
        assert (
            cfg.decimals,
            cfg.ltv,
            cfg.liquidation_threshold,
            cfg.liquidation_bonus,
            cfg.emode_category,
        ) == (spec.decimals, spec.ltv, spec.lt, spec.bonus, spec.emode)
    assert {d for d in (s.decimals for s in RESERVES)} == {6, 8, 18}
    assert set(state.emode_categories) == {1, 2}
    assert rep.borrowers >= SMALL.borrowers  # every borrower borrowed at least once


def test_tables_are_in_the_ingest_format_with_consistent_lineage(small) -> None:
    path, rep = small
    mk = market(SMALL)
    with Warehouse(path) as wh:
        wh.ensure(*_tables())  # raises if any table's columns differ from the declarations
        con = wh.con
        n_blocks, gaps, bad_links = con.execute(
            "SELECT count(*), max(number) - min(number) + 1 - count(*), count(*) FILTER "
            "(WHERE parent_hash <> prev) FROM (SELECT number, parent_hash, lag(hash) OVER (ORDER BY number) "
            "AS prev FROM raw.blocks)"
        ).fetchall()[0]
        assert n_blocks == SMALL.n_blocks and gaps == 0 and bad_links == 0
        tables = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT table_name FROM duckdb_columns() WHERE schema_name='raw' AND "
                "column_name='log_index' AND table_name <> 'logs'"
            ).fetchall()
        ]
        union = " UNION ALL ".join(
            f"SELECT block_number, log_index, block_hash FROM raw.{t}"
            for t in tables
            if t != "chainlink_answer_updated"
        )
        dup, wrong_hash = con.execute(
            f"SELECT (SELECT count(*) FROM (SELECT block_number, log_index FROM ({union}) GROUP BY ALL "
            f"HAVING count(*) > 1)), (SELECT count(*) FROM ({union}) u LEFT JOIN raw.blocks b ON "
            f"b.number = u.block_number WHERE b.hash IS DISTINCT FROM u.block_hash)"
        ).fetchall()[0]
        assert dup == 0 and wrong_hash == 0
        sources = dict(
            con.execute("SELECT asset, arg_source FROM raw.aave_v3_asset_source_updated").fetchall()
        )
        assert sources == dict(zip(mk.assets, mk.feeds, strict=True))
        fed = {r[0] for r in con.execute("SELECT DISTINCT feed FROM raw.oracle_rounds").fetchall()}
        assert fed == set(mk.feeds)
        cov = con.execute("SELECT dataset, source, from_block, to_block FROM meta.checkpoints").fetchall()
        assert ("aave_v3", SMALL.deployment, SMALL.first_block, SMALL.last_block) in cov
        assert ("blocks", "chain", SMALL.first_block, SMALL.last_block) in cov
        assert {s for d, s, _, _ in cov if d == "chainlink"} == set(mk.feeds)
        # the fingerprint of what a real ingest of this version asks for: the backtest refuses others
        fps = con.execute("SELECT DISTINCT dataset, asked_sha256 FROM meta.checkpoints").fetchall()
        assert sorted(fps) == sorted((d, asked_fingerprint(d)) for d in ("blocks", "aave_v3", "chainlink"))
        assert con.execute("SELECT status, command FROM meta.runs").fetchall() == [("ok", "synthetic")]
        # as an ingest lists them: every dataset source, sorted (ingest.engine)
        (datasets,) = con.execute("SELECT datasets FROM meta.runs").fetchall()[0]
        want = ["blocks", f"aave_v3:{SMALL.deployment}"] + [f"chainlink:{f}" for f in mk.feeds]
        assert datasets == sorted(want)
    assert rep.rows["raw.oracle_rounds"] == rep.oracle_rounds


def test_oracle_rounds_follow_deviation_and_heartbeat(small) -> None:
    path, _ = small
    rules = {f"{r.symbol} / USD": (r.deviation_bps, r.heartbeat_s) for r in RESERVES}
    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute(
        "SELECT feed_name, aggregator_round_id, answer, updated_at_ts, block_timestamp_ts, block_number FROM "
        "raw.oracle_rounds ORDER BY feed_name, aggregator_round_id"
    ).fetchall()
    prev = None
    checked = 0
    for name, rid, answer, upd, bts, _block in rows:
        # an OCR aggregator's AnswerUpdated carries block.timestamp (OffchainAggregator.transmit,
        # OCR2Aggregator._report): updatedAt is the carrying block's timestamp, never earlier
        assert upd == bts, (name, rid)
        if prev is not None and prev[0] == name:
            assert rid == prev[1] + 1
            dev, hb = rules[name]
            moved = abs(answer - prev[2]) * 10_000 >= dev * prev[2]
            assert moved or upd - prev[3] >= hb, (name, rid)
            # the heartbeat is never missed by more than a step plus the transmission latency
            assert upd - prev[3] <= hb + SMALL.grid_s + 2 * SMALL.block_time_s
            checked += 1
        prev = (name, rid, answer, upd)
    assert checked > 1_000


def _fingerprint(path: Path) -> list[tuple[str, str]]:
    con = duckdb.connect(str(path), read_only=True)
    tables = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT schema_name || '.' || table_name FROM duckdb_columns() "
            "WHERE schema_name = 'raw' ORDER BY 1"
        ).fetchall()
    ]
    out = []
    for t in tables:
        (h,) = con.execute(
            f"SELECT md5(coalesce(string_agg(x::VARCHAR, '|' ORDER BY x::VARCHAR), '')) "
            f"FROM (SELECT * FROM {t}) x"
        ).fetchall()[0]
        out.append((t, h))
    con.close()
    return out


def test_output_is_a_function_of_the_seed(tmp_path: Path) -> None:
    cfg = SyntheticConfig(borrowers=40, suppliers=5, actions=1_000, days=2)
    generate(tmp_path / "a.duckdb", cfg)
    generate(tmp_path / "b.duckdb", cfg)
    generate(
        tmp_path / "c.duckdb",
        SyntheticConfig(seed=cfg.seed + 1, borrowers=40, suppliers=5, actions=1_000, days=2),
    )
    a, b, c = (_fingerprint(tmp_path / f"{x}.duckdb") for x in "abc")
    assert a == b
    differ = {t for (t, h1), (_, h2) in zip(a, c, strict=True) if h1 != h2}
    assert {"raw.oracle_rounds", "raw.aave_v3_supply", "raw.blocks"} <= differ


def test_scale_multiplies_positions_not_price_updates(tmp_path: Path) -> None:
    base = dict(borrowers=40, suppliers=5, actions=1_000, days=2)
    one = generate(tmp_path / "x1.duckdb", SyntheticConfig(**base))
    two = generate(tmp_path / "x2.duckdb", SyntheticConfig(scale=2, **base))
    assert two.position_events == 2 * one.position_events == 2_000
    assert two.users == 2 * one.users == 90
    assert two.oracle_rounds == one.oracle_rounds
    q = ("SELECT feed, aggregator_round_id, answer, updated_at_ts, block_number FROM raw.oracle_rounds "
         "ORDER BY 1, 2")
    rounds = [
        duckdb.connect(str(tmp_path / f"x{k}.duckdb"), read_only=True).execute(q).fetchall() for k in (1, 2)
    ]
    assert rounds[0] == rounds[1] and len(rounds[0]) == one.oracle_rounds


@pytest.mark.parametrize(
    ("kw", "field"), [({"actions": 10}, "actions"), ({"borrowers": 0}, "borrowers"), ({"scale": 0}, "scale")]
)
def test_bad_configuration_names_the_field(tmp_path: Path, kw: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"SyntheticConfig.{field}"):
        generate(tmp_path / "bad.duckdb", SyntheticConfig(**kw))
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_feeds_declare_the_rules_they_are_published_by(small) -> None:
    """As an ingest does (``raw.oracle_feeds``, read by the oracle_lag metric and the republish
    model): without the rows, a replay judged the 24 h-heartbeat / 25 bps feeds against the
    50 bps / 3600 s defaults."""
    path, _ = small
    mk = market(SMALL)
    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute(
        "SELECT feed, feed_name, decimals, deviation_bps, heartbeat_s, min_answer, max_answer "
        "FROM raw.oracle_feeds WHERE chain_id = ? ORDER BY feed",
        [SMALL.chain_id],
    ).fetchall()
    want = sorted(
        (mk.feeds[i], f"{r.symbol} / USD", 8, r.deviation_bps, r.heartbeat_s, None, None)
        for i, r in enumerate(RESERVES)
    )
    assert rows == want


def test_run_id_differs_when_the_generated_data_differs(tmp_path: Path) -> None:
    """The generation's run id is what a replay records as its data source (``bt.runs.
    data_sources``, part of the bt run id): two markets with different rounds, blocks or chain
    must not share it."""
    base = dict(borrowers=40, suppliers=5, actions=1_000, days=2)
    ids = {}
    for tag, extra in (("a", {}), ("grid", {"grid_s": 240}), ("chain", {"chain_id": 7_357_002}),
                       ("genesis", {"genesis_ts": 1_704_067_200 + 86_400})):
        generate(tmp_path / f"{tag}.duckdb", SyntheticConfig(**base, **extra))  # type: ignore[arg-type]
        con = duckdb.connect(str(tmp_path / f"{tag}.duckdb"), read_only=True)
        ids[tag] = con.execute("SELECT run_id FROM meta.runs").fetchall()[0][0]
        con.close()
    assert len(set(ids.values())) == len(ids), ids


def test_each_transaction_logs_in_the_v3_0_2_pool_order(small) -> None:
    """The logs of each user transaction in the order the v3.0.2 Pool (aave-v3-core 782f519, the
    adapter's rules v3.0) emits them. Since v1.17.0 (7fbdc6e, "CEI"), ``executeWithdraw`` emits
    ``ReserveUsedAsCollateralDisabled`` *before* burning the aTokens; the generator wrote it after
    the ``Burn`` (the v3.0.0 order), a sequence the modelled Pool never emits."""
    path, _ = small
    con = duckdb.connect(str(path), read_only=True)

    def tx_logs(table: str, role: str | None = None) -> dict[str, int]:
        where = f" WHERE role = '{role}'" if role else ""
        return dict(con.execute(f"SELECT tx_hash, log_index FROM raw.aave_v3_{table}{where}").fetchall())

    rdu = tx_logs("reserve_data_updated")
    a_tok = tx_logs("scaled_token_burn", "a_token") | tx_logs("scaled_token_mint", "a_token")
    d_tok = tx_logs("scaled_token_burn", "variable_debt_token") | tx_logs(
        "scaled_token_mint", "variable_debt_token"
    )
    enabled = tx_logs("reserve_used_as_collateral_enabled")
    disabled = tx_logs("reserve_used_as_collateral_disabled")
    orders = {
        # the logs before the action's own (its last), in order: (table, always emitted)
        "supply": ((rdu, True), (a_tok, True), (enabled, False)),
        "withdraw": ((rdu, True), (disabled, False), (a_tok, True)),
        "borrow": ((d_tok, True), (rdu, True)),
        "repay": ((d_tok, True), (rdu, True)),
    }
    seen_disabled = 0
    for action, before in orders.items():
        for tx, li in tx_logs(action).items():
            got = [(src[tx] if tx in src else None) for src, _ in before]
            missing = [g for g, (_, required) in zip(got, before, strict=True) if required and g is None]
            assert not missing, (action, tx)
            present = [g for g in got if g is not None]
            assert present == sorted(present) and present[-1] < li, (action, tx, got, li)
            seen_disabled += action == "withdraw" and got[1] is not None
    assert seen_disabled > 0


def test_bench_replay_regenerates_each_scale_once_with_skip_full(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    """``bench/replay.py --regen`` rebuilt a market only on its full-window run, so with
    ``--skip-full`` (the curve alone) the flag was accepted and ignored: the curve ran on the stale
    cached file. Each scale is now regenerated once, at its first run."""
    import importlib.util
    import sys

    bench = Path(__file__).parents[2] / "bench" / "replay.py"
    spec = importlib.util.spec_from_file_location("bench_replay", bench)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    calls: list[tuple[int, bool]] = []

    def fake_market(scale: int, quick: bool, regen: bool) -> tuple[Path, dict]:
        calls.append((scale, regen))
        return tmp_path / "m.duckdb", {"users": 1, "borrowers": 1, "seconds": {"total": 0.0}, "file_bytes": 0}

    monkeypatch.setattr(mod, "cached_market", fake_market)
    monkeypatch.setattr(mod, "count_events", lambda *a: (0, 0))
    monkeypatch.setattr(mod, "scenario", lambda *a: tmp_path / "s.toml")
    monkeypatch.setattr(mod, "measure", lambda *a, **k: {"status": "ok", "wall_s": 1.0, "peak_rss_mb": 0.0})
    for argv, want in (
        (["--skip-full", "--scales", "1,2", "--naive-days", "1", "--regen"], [(1, True), (2, True)]),
        (["--scales", "1", "--naive-days", "1", "--regen"], [(1, True)]),
        (["--skip-full", "--scales", "1", "--naive-days", "1"], []),
    ):
        calls.clear()
        monkeypatch.setattr(sys, "argv", ["replay.py", "--quick", *argv])
        mod.main()
        assert [c for c in calls if c[1]] == want, argv
        assert calls, argv


def test_oracle_constructor_logs_as_aave_oracle_emits_them(small) -> None:
    """``AaveOracle``'s constructor (aave-v3-core 782f519) calls ``_setFallbackOracle`` (emits
    ``FallbackOracleUpdated``), then ``_setAssetsSources`` (one ``AssetSourceUpdated`` per asset),
    then emits ``BaseCurrencySet``: the generator wrote ``BaseCurrencySet`` first and no
    ``FallbackOracleUpdated`` (a table the ingest fills)."""
    path, _ = small
    mk = market(SMALL)
    con = duckdb.connect(str(path), read_only=True)
    q = "SELECT tx_hash, log_index, address FROM raw.aave_v3_{} ORDER BY log_index"
    fallback = con.execute(q.format("fallback_oracle_updated")).fetchall()
    sources = con.execute(q.format("asset_source_updated")).fetchall()
    base = con.execute(q.format("base_currency_set")).fetchall()
    assert len(fallback) == 1 and len(base) == 1 and len(sources) == len(RESERVES)
    assert {r[2] for r in fallback + sources + base} == {mk.oracle}
    assert len({r[0] for r in fallback + sources + base}) == 1  # one transaction, the constructor
    assert fallback[0][1] < sources[0][1] and sources[-1][1] < base[0][1]
    arg = con.execute("SELECT fallback_oracle FROM raw.aave_v3_fallback_oracle_updated").fetchall()
    assert arg == [("0x" + "0" * 40,)]


def test_every_borrow_and_withdraw_passes_the_pools_validation(small) -> None:
    """The documented claim "borrows never exceed the reserve's liquidity nor the LTV at the
    current oracle answers", held to v3.0.2's ``ValidationLogic`` on the replayed state: a
    ``Borrow`` needs a health factor above 1 before it and debt + amount within the LTV
    (``validateBorrow``), in the user's e-mode category; a ``Withdraw`` by a borrower must leave
    a health factor of at least 1 (``validateHFAndLtv``); no reserve's underlying goes negative."""
    path, _ = small
    mk = market(SMALL)
    con = duckdb.connect(str(path), read_only=True)
    adapter = get_adapter("aave_v3")
    state = adapter.new_state(pool=mk.pool)
    feed_asset = dict(zip(mk.feeds, mk.assets, strict=True))
    rounds = con.execute(
        "SELECT block_number, log_index, feed, answer::VARCHAR FROM raw.oracle_rounds ORDER BY 1, 2"
    ).fetchall()
    prices: dict[str, int] = {}
    ri, before, checked = 0, None, 0
    events = protocol_events(
        con, adapter, dataset="aave_v3", chain_id=SMALL.chain_id, source=SMALL.deployment
    )
    for ev in events:
        pos, ts = (ev.ref.block_number, ev.ref.log_index), ev.ref.block_timestamp
        while ri < len(rounds) and rounds[ri][:2] < pos:
            prices[feed_asset[rounds[ri][2]]] = int(rounds[ri][3])
            ri += 1
        if ev.name == "Mint" and ev.role == "variable_debt_token":  # a borrow's first log
            before = adapter.calculate_user_account_data(state, str(ev.args["on_behalf_of"]), prices, ts)
        adapter.apply(state, ev)
        if ev.name == "Borrow":
            assert before is not None
            cfg = state.reserves[str(ev.args["reserve"])].configuration
            amount = prices[str(ev.args["reserve"])] * int(ev.args["amount"]) // 10**cfg.decimals
            assert before.health_factor > 10**18, ev.ref
            assert (before.total_debt_base + amount) * 10_000 <= before.total_collateral_base * before.avg_ltv
            emode = state.user(str(ev.args["on_behalf_of"])).emode_category
            assert emode in (0, cfg.emode_category), ev.ref
            before, checked = None, checked + 1
        elif ev.name == "Withdraw":
            user = str(ev.args["user"])
            if any(r.scaled_variable_debt for r in state.user(user).reserves.values()):
                hf = adapter.calculate_user_account_data(state, user, prices, ts).health_factor
                assert hf >= 10**18, ev.ref
                checked += 1
        if ev.name in ("Supply", "Withdraw", "Borrow", "Repay"):
            under = state.reserves[str(ev.args["reserve"])].a_token_underlying_balance
            assert under is None or under >= 0, ev.ref
    assert checked > 1_000


def test_bench_metrics_cost_measures_the_current_market(tmp_path: Path) -> None:
    """``bench/metrics_cost.py`` took the first of a sorted glob of cached 1x markets, i.e. the
    oldest generator tag left in the cache (g3 before g4), silently."""
    import importlib.util
    import sys

    bench = Path(__file__).parents[2] / "bench"
    sys.path.insert(0, str(bench))
    try:
        spec = importlib.util.spec_from_file_location("bench_metrics_cost", bench / "metrics_cost.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(bench))
    assert mod.default_db(tmp_path) is None
    for tag in ("g1", "g3", mod.GEN_TAG, "g99"):
        (tmp_path / f"synthetic-1x-{tag}.duckdb").touch()
    assert mod.default_db(tmp_path) == str(tmp_path / f"synthetic-1x-{mod.GEN_TAG}.duckdb")
