"""Schema declarations and docs, deployments files, CLI input validation, dependency rules."""

from __future__ import annotations

import ast
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

import backtest.cli  # noqa: F401  (registers the bt tables, as the deficit command does)
from ingest.cli import main, parse_block_or_time
from ingest.datasets import LOG_DATASETS
from ingest.deployments import load_deployments, load_preset, preset_names
from ingest.errors import ConfigError, DeploymentsFileError, WarehouseError
from ingest.schema import Column, Table, registered_tables, schema_markdown
from ingest.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[2]


def test_docs_schema_md_is_generated_from_the_declarations():
    on_disk = (ROOT / "docs" / "schema.md").read_text()
    assert on_disk == schema_markdown(), (
        "docs/schema.md is stale: run `deficit schema --markdown > docs/schema.md`")


def test_every_table_and_column_is_documented_and_created(tmp_path):
    tables = registered_tables()
    assert {"raw.blocks", "raw.logs", "raw.oracle_rounds", "raw.oracle_phases",
            "raw.reference_prices", "meta.runs", "meta.checkpoints", "meta.reorgs",
            "raw.aave_v3_liquidation_call", "raw.aave_v2_liquidation_call",
            "raw.chainlink_new_transmission"} <= {t.fqn for t in tables}
    for t in tables:
        assert t.doc.strip(), t.fqn
        for c in t.columns:
            assert c.doc.strip(), f"{t.fqn}.{c.name}"
    with Warehouse(tmp_path / "w.duckdb") as wh:
        wh.ensure(*tables)
        wh.ensure(*tables)  # idempotent
        n = wh.con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name IN "
                           "('raw', 'meta', 'bt')").fetchall()[0][0]
        views = wh.con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name IN "
                               "('raw', 'meta', 'bt')").fetchall()[0][0]
        assert n == sum(t.kind == "table" for t in tables)
        assert views == sum(t.kind == "view" for t in tables) > 0
        comment = wh.con.execute("SELECT comment FROM duckdb_columns() WHERE schema_name='raw' "
                                 "AND table_name='blocks' AND column_name='timestamp_ts'"
                                 ).fetchall()[0][0]
        assert "unix seconds" in comment


def test_one_typed_table_per_declared_event():
    for name, cls in LOG_DATASETS.items():
        sigs = {t.spec.signature for t in cls.EVENT_TABLES}
        declared = {__import__("ingest.abi", fromlist=["EventSpec"]).EventSpec.parse(d).signature
                    for g in cls.GROUPS for d in g.declarations}
        assert sigs == declared, name
        names = [t.table.fqn for t in cls.EVENT_TABLES]
        assert len(names) == len(set(names)), name


def test_a_table_whose_columns_changed_is_refused(tmp_path):
    t1 = Table("raw", "x", "doc", (Column("a", "INTEGER", "a"),), "test")
    t2 = Table("raw", "x", "doc", (Column("a", "INTEGER", "a"), Column("b", "INTEGER", "b")), "t")
    with Warehouse(tmp_path / "w.duckdb") as wh:
        wh.ensure(t1)
        with pytest.raises(WarehouseError, match="migrate"):
            wh.ensure(t2)


def test_presets_load_and_name_real_mainnet_addresses():
    assert "ethereum" in preset_names()
    d = load_preset("ethereum")
    assert d.chain_id == 1
    v3 = next(x for x in d.deployments if x.protocol == "aave_v3")
    assert v3.contracts["pool"] == "0x87870bca3f3fd6335c3f4ce8392d69350b4fa4e2"
    v2 = next(x for x in d.deployments if x.protocol == "aave_v2")
    assert v2.contracts["lending_pool"] == "0x7d2768de32b0b80b7a3454c06bdac94a69ddc7a9"
    names = {f.name for f in d.feeds}
    assert {"ETH / USD", "BTC / USD", "USDC / USD", "DAI / USD"} <= names
    eth = next(f for f in d.feeds if f.name == "ETH / USD")
    assert eth.proxy == "0x5f4ec3df9cbd43714fe2740f5e3616155c5b8419"
    assert eth.deviation_bps == 50 and eth.heartbeat_s == 3600
    # what raw.oracle_feeds.declared_in stores: the preset's name, not this machine's install path
    assert {f.origin for f in d.feeds} | {x.origin for x in d.deployments} == {"preset ethereum"}
    with pytest.raises(ConfigError, match="unknown preset"):
        load_preset("nope")


GOOD = """[meta]
chain_id = 1

[[deployment]]
name = "m"
protocol = "aave_v3"
chain_id = 1
start_block = 5
[deployment.contracts]
pool = "0x87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2"
"""


@pytest.mark.parametrize("text,line,field,msg", [
    (GOOD.replace('pool = "0x87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2"', 'pool = "0x1234"'), 10,
     "deployment[0].contracts.pool", "20-byte hex address"),
    (GOOD.replace("start_block = 5", 'start_block = "5"'), 8, "deployment[0].start_block",
     "non-negative integer"),
    (GOOD.replace('protocol = "aave_v3"', 'protocol = "aave_v9"'), 6, "deployment[0].protocol",
     "unknown protocol"),
    (GOOD.replace("pool =", "poool ="), 10, "deployment[0].contracts.poool", "unknown role"),
    (GOOD.replace('name = "m"\n', ""), 4, "deployment[0].name", "missing required field"),
    (GOOD + "\n[[feed]]\nname = \"x\"\nchain_id = 1\nproxy = \"0xzz\"\nstart_block = 1\n", 15,
     "feed[0].proxy", "20-byte hex"),
    (GOOD.replace("chain_id = 1\nstart_block", "chain_id = 2\nstart_block"), 7,
     "deployment[0].chain_id", "but [meta] says 1"),
    (GOOD.replace("[meta]", "[meta"), 1, None, "invalid TOML"),
    # one contract in two roles: its logs staged twice, an event both declare applied twice
    (GOOD + 'pool_configurator = "0x87870bca3f3fd6335c3f4ce8392d69350b4fa4e2"\n', 11,
     "deployment[0].contracts.pool_configurator", "is also contracts.pool"),
])
def test_deployments_file_errors_name_file_line_and_field(tmp_path, text, line, field, msg):
    p = tmp_path / "d.toml"
    p.write_text(text)
    with pytest.raises(DeploymentsFileError) as ei:
        load_deployments(p)
    e = ei.value
    assert msg in str(e) and str(p) in str(e)
    assert e.line == line
    assert e.field == field


def test_deployments_good_file_loads(tmp_path):
    p = tmp_path / "d.toml"
    p.write_text(GOOD)
    d = load_deployments(p)
    assert d.deployments[0].start_block == 5


def test_cli_errors_exit_2_with_a_clear_message(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DEFICIT_RPC_URL", raising=False)
    assert main(["ingest", "--chain", "1", "--db", str(tmp_path / "w.duckdb")]) == 2
    assert "no RPC endpoint" in capsys.readouterr().err
    bad = tmp_path / "d.toml"
    bad.write_text(GOOD.replace("start_block = 5", "start_block = -5"))
    assert main(["ingest", "--rpc", "http://127.0.0.1:1", "--deployments", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:8" in err and "deployment[0].start_block" in err
    r = subprocess.run([sys.executable, "-m", "ingest.cli", "ingest", "--from", "yesterday"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "ISO-8601" in r.stderr


@pytest.mark.parametrize("concurrency", [1, 4, 8, 16, 32])
def test_ingest_sizes_the_connection_pool_from_concurrency(concurrency, monkeypatch, tmp_path):
    """`HttpTransport(url)` had httpx's pool of 8 connections whatever `--concurrency` was: above
    8 the parallel requests queued behind the pool (and could fail with its pool timeout)."""
    import ingest.transports

    sizes = []

    class Recording(ingest.transports.HttpTransport):
        def __init__(self, url, **kw):
            sizes.append(kw.get("pool_size", 8))
            raise ConfigError("recorded")

    monkeypatch.setattr(ingest.transports, "HttpTransport", Recording)
    assert main(["ingest", "--rpc", "http://127.0.0.1:1", "--chain", "1", "--concurrency",
                 str(concurrency), "--db", str(tmp_path / "w.duckdb")]) == 2
    # the batch workers, plus the run's thread and its prefetch thread sending lone calls
    assert sizes == [concurrency + 2]


@pytest.mark.parametrize("option, value, want", [
    ("--concurrency", "0", "at least 1"), ("--concurrency", "-3", "at least 1"),
    ("--rps", "0", "above 0"), ("--rps", "-1", "above 0"), ("--rps", "nan", "above 0"),
    ("--rps", "inf", "above 0"), ("--batch-size", "0", "at least 1"),
    ("--logs-max-span", "0", "at least 1"),
])
def test_ingest_rpc_options_out_of_range_name_the_option(option, value, want, capsys, tmp_path):
    db = tmp_path / "w.duckdb"
    assert main(["ingest", "--rpc", "http://127.0.0.1:1", "--chain", "1", option, value,
                 "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert f"{option} must be" in err and want in err and not db.exists()


def test_block_or_time_arguments():
    assert parse_block_or_time("17_000_000") == 17_000_000
    assert parse_block_or_time("0x10") == 16
    assert parse_block_or_time("2021-01-11T00:00:00Z") == dt.datetime(2021, 1, 11, tzinfo=dt.UTC)
    assert parse_block_or_time("2021-01-11T02:00+02:00") == dt.datetime(2021, 1, 11,
                                                                          tzinfo=dt.UTC)
    import argparse
    with pytest.raises(argparse.ArgumentTypeError, match="UTC offset"):
        parse_block_or_time("2021-01-11T00:00:00")


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_dependency_rules():
    """protocols does no I/O; backtest never reaches the network; ingest never imports backtest."""
    io = {"duckdb", "httpx", "requests", "web3", "polars", "pyarrow", "ingest", "backtest"}
    for f in (ROOT / "protocols").rglob("*.py"):
        assert not _imports(f) & io, f
    for f in (ROOT / "backtest").rglob("*.py"):
        assert not _imports(f) & {"httpx", "requests", "web3"}, f
    for f in (ROOT / "ingest").rglob("*.py"):
        assert "backtest" not in _imports(f), f


def test_merge_cells_sizes_chunks_from_the_density_seen():
    from ingest.engine import MAX_MERGED_CELLS, merge_cells

    assert merge_cells(50_000, 1000, 0, 0) == 1  # nothing seen yet: one range
    assert merge_cells(0, 1000, 8_000, 1000) == 1  # merging off
    assert merge_cells(50_000, 1000, 8_000, 1000) == 6  # 8k rows per range: 6 ranges <= 50k
    assert merge_cells(50_000, 1000, 80_000, 1000) == 1  # denser than the target: never below 1
    assert merge_cells(50_000, 1000, 10, 1_000_000) == 50  # sparse: capped (headers <= 50k)
    assert merge_cells(50_000, 1000, 0, 5000) == 50  # nothing new at all: capped
    assert merge_cells(500_000, 1000, 0, 5000) == MAX_MERGED_CELLS


def test_merge_cells_never_spans_more_blocks_than_chunk_rows():
    """Every block can bring a header row: where the last chunk wrote ~nothing (its headers were
    stored), the next may still need all of its own, so a merged chunk spans at most
    ``chunk_rows`` blocks (a single range may be larger: ``--chunk-blocks`` as before)."""
    from ingest.engine import merge_cells

    for size in (7, 100, 1000, 10_000, 100_000):
        for rows, blocks in ((0, 5000), (1, 10**6), (10, 64 * size)):
            cells = merge_cells(50_000, size, rows, blocks)
            assert cells == 1 or cells * size <= 50_000, (size, rows, blocks, cells)


def test_deployments_for_another_chain_only_are_refused(tmp_path, capsys):
    """`--preset ethereum --chain 10` skipped every deployment and feed of the preset silently
    (they are chain 1's) and ingested chain 10's headers from block 0; it is refused before any
    request."""
    db = tmp_path / "w.duckdb"
    assert main(["ingest", "--rpc", "http://127.0.0.1:1", "--preset", "ethereum", "--chain", "10",
                 "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "the deployments given are for chain(s) [1], none for chain 10" in err and "--chain" in err


@pytest.mark.parametrize("text", ["2021-01-11", "2021-01-11Z", "2021-01-11T00:00"])
def test_a_time_without_its_offset_says_how_to_write_one(text):
    """'2021-01-11Z' (a date with Z) was told to 'append Z for UTC', which it had done: a date
    alone parses without an offset. The message now shows the form to write."""
    import argparse

    from backtest.errors import ScenarioError
    from backtest.scenario import parse_scenario
    from ingest.cli import parse_block_or_time

    with pytest.raises(argparse.ArgumentTypeError, match=r"write it like 2021-01-11T00:00:00Z"):
        parse_block_or_time(text)
    with pytest.raises(ScenarioError, match=r"write it like 2021-01-11T00:00:00Z") as e:
        parse_scenario(f'name = "x"\nchain_id = 1\n[window]\nfrom = "{text}"\nto_block = 2\n[market]\n'
                       'protocol = "aave_v3"\nsource = "m"\n', "s.toml")
    assert e.value.field == "window.from"
