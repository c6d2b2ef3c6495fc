"""``deficit demo``: the main job — replay the bundled real-crash sample, measure, report.

The sample (``data/sample.duckdb``, built by ``deficit sample build``; see
``data/sample/README.md``) is a real Aave v3.0.2 market run on anvil through the 2021-01-11 ETH
crash, with a Chainlink-style ETH/USD feed following the real Binance path under the real feed
rules, a seeded borrower population and on-chain liquidator bots, ingested by the real ingestor,
with the Binance path imported as the reference price. The demo never changes that file: it
copies it to the warehouse (``data/warehouse.duckdb`` unless ``--db``) and then, with the
project's public API only:

1. writes the scenarios it runs to ``out/demo/`` (so they can be edited and re-run with
   ``deficit run`` / ``deficit check``), generated from the sample's own ``meta.sample`` record
   (addresses, window, the bots' parameters for the liquidator model);
2. **historical**: replays the crash as it happened with every metric, the liquidator model
   predicting the bots' liquidations (fidelity), the oracle against the reference price (lag,
   hidden insolvency) and finality exposure;
3. **attributions** (counterfactual pairs, positions frozen at 2021-01-11 00:00 UTC): bad debt
   attributable to oracle lag (the feed's real rounds vs the reference price as the oracle) and
   the cost of liquidators waiting 64 blocks (two epochs) for finality;
4. **stress**: the same positions if ETH had fallen a further 25 % (ramped over an hour from
   02:00 UTC) — bad debt, who bears it, liquidation spirals;
5. writes the HTML and Markdown reports of the historical and stress runs under ``out/`` and
   prints a summary (``--json``: the same as JSON).

The warehouse is replaced only when it is absent or itself a demo copy (it has ``meta.sample``
and no ``meta.runs`` but the sample's: nothing ingested or imported into it since; and no table or
view but the sample's and the declared ``bt`` results, which the demo re-derives); a warehouse
holding anything else is left alone and the demo exits 2.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from ingest.devnet import repo_root
from ingest.warehouse import DEFAULT_DB

from .errors import InputError

__all__ = ["SAMPLE_DB", "DemoResult", "demo_scenarios", "prepare_warehouse", "run_demo"]

SAMPLE_DB = repo_root() / "data" / "sample.duckdb"
#: the stress scenario: a further fall of ETH/USD, ramped in from 02:00 UTC on 2021-01-11
STRESS_PCT = Decimal("-0.25")
STRESS_AT_TS = 1610330400
STRESS_RAMP_S = 3600
FINALITY_WAIT_BLOCKS = 64
ALL_METRICS = ("bad_debt", "liquidations", "socialization", "finality", "fidelity", "spiral", "oracle_lag",
               "paths")


@dataclass(frozen=True)
class DemoResult:
    warehouse: Path
    scenarios: dict[str, Path]
    summary: dict[str, Any]
    reports: dict[str, Path]


def _meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {str(k): str(v) for k, v in con.execute("SELECT key, value FROM meta.sample").fetchall()}


def _contents(path: Path) -> tuple[set[str], set[str]] | None:
    """The ``meta.runs`` ids and the tables and views (``schema.name``) of a warehouse that has
    ``meta.sample`` (a demo copy's are the sample's own); None without ``meta.sample``."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        objects = {f"{s}.{n}" for s, n in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "UNION ALL SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal AND "
            "database_name = current_database()").fetchall()}
        if "meta.sample" not in objects:
            return None
        return {str(r[0]) for r in con.execute("SELECT run_id FROM meta.runs").fetchall()}, objects
    finally:
        con.close()


def _result_tables() -> set[str]:
    """The declared ``bt`` tables and views: the demo's own results, which it re-derives."""
    from ingest.schema import registered_tables

    from . import attribution, outputs, views  # noqa: F401  (they declare bt tables)
    from .metrics import metric_tables

    metric_tables()
    return {t.fqn for t in registered_tables() if t.fqn.startswith("bt.")}


def _is_demo_copy(path: Path, sample: Path) -> bool:
    """``path`` holds the sample and nothing added since: ``meta.sample``, no ``meta.runs``
    (ingest, import-prices) but the sample's, and no table or view but the sample's and the
    declared ``bt`` results (the demo's own results are re-derived; a table of the user's is not)."""
    got = _contents(path)
    if got is None:
        return False
    own = _contents(sample)
    if own is None:
        return False
    return got[0] <= own[0] and got[1] <= own[1] | _result_tables()


def _lock_holder(e: duckdb.Error) -> str | None:
    """For DuckDB's error on a file another process holds open for writing ("Could not set lock
    on file ...: Conflicting lock is held in <program> (PID n)"): " (PID n)", or "" when it
    names no PID; None for any other error."""
    msg = str(e)
    if not re.search(r"(?i)conflicting lock|could not set lock", msg):
        return None
    pid = re.search(r"PID (\d+)", msg)
    return f" (PID {pid.group(1)})" if pid else ""


def prepare_warehouse(db: Path, sample: Path = SAMPLE_DB) -> None:
    """Copy the sample to ``db`` (atomically), unless ``db`` holds something other than a demo copy."""
    if not sample.exists():
        raise InputError(f"the bundled sample {sample} is missing; rebuild it with `deficit sample build`")
    if db.exists() and db.resolve() == sample.resolve():
        raise InputError(f"{db} is the bundled sample itself; the demo works on a copy of it: pass --db "
                         f"to choose another file")
    if db.exists():
        try:
            ours = _is_demo_copy(db, sample)
        except duckdb.Error as e:
            if (holder := _lock_holder(e)) is not None:
                raise InputError(f"{db} is in use by another process{holder}: wait for it to finish, "
                                 f"or pass --db to choose another file") from None
            raise InputError(f"{db} is not a readable DuckDB warehouse ({e}); pass --db to choose another "
                             f"file") from None
        if not ours:
            raise InputError(f"{db} holds data that is not a demo copy of the sample (other tables, or "
                             f"data ingested or imported into it); the demo will not overwrite it: pass "
                             f"--db to choose another file")
    db.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".demo-", suffix=".duckdb", dir=db.parent)
    os.close(fd)
    try:
        shutil.copyfile(sample, tmp)
        db.with_name(db.name + ".wal").unlink(missing_ok=True)  # a stale WAL would replay onto the copy
        os.replace(tmp, db)
    finally:
        Path(tmp).unlink(missing_ok=True)


def demo_scenarios(meta: dict[str, str]) -> dict[str, str]:
    """The TOML of the demo's scenarios, from the sample's ``meta.sample`` record."""
    weth, eth_feed = meta["reserve.WETH"], meta["feed.WETH"]
    min_profit = Decimal(int(meta["bots.min_profit_base"])) / 10**8  # AaveOracle base: USD, 8 decimals
    common = f"""chain_id = {meta["chain_id"]}

[market]
protocol = "aave_v3"
dataset = "{meta["dataset"]}"
source = "{meta["deployment"]}"
rules = "3.0"                        # the sample's Pool: @aave/core-v3 1.19.3 bytecode (v3.0.2)

[reference]                          # the Binance path the feed followed, as the market price
source = "{meta["price_source"]}"
at_par = ["USDT"]                    # the sample's feed published this USDT path as USD
[reference.pairs]
"{eth_feed}" = "{meta["price_pair"]}"

[liquidator]                         # the sample's on-chain bots (meta.sample bots.*)
reaction_delay_blocks = {meta["bots.reaction_delay_blocks"]}
gas_units = {meta["bots.gas_units"]}
priority_fee_wei = {meta["bots.priority_fee_wei"]}
gas_price_key = "{weth}"             # WETH: gas is valued at the ETH oracle price
min_profit_usd = {min_profit}
flash_loans = true
flash_fee_bps = 0
capacity_per_block = 0
repeat_in_block = false

[finality]
depth_blocks = 64                    # Ethereum: two epochs
"""
    names = ", ".join(f'"{m}"' for m in ALL_METRICS)
    cf_names = ", ".join(f'"{m}"' for m in ALL_METRICS if m != "fidelity")
    historical = f"""# The 2021-01-11 ETH crash on the bundled sample, as it happened (by deficit demo).
name = "sample crash: historical"
mode = "historical"
{common}
[window]
from_block = {meta["first_day_block"]}  # 2021-01-11 00:00 UTC; positions rebuilt from events before it
to_block = {meta["last_block"]}

[metrics]
names = [{names}]

[checks]                             # judged by `deficit check` (exit 1 when one fails)
min_fidelity_recall = 1.0
min_fidelity_precision = 1.0
max_bad_debt_usd = 100
"""
    counterfactual = f"""# Positions as they stood at 2021-01-11 00:00 UTC, frozen; the liquidator model acts.
name = "sample crash: counterfactual"
mode = "counterfactual"
{common}
[window]
from_block = {meta["first_day_block"]}
to_block = {meta["last_block"]}

[metrics]
names = [{cf_names}]
"""
    # a shock moves the oracle's answers only; the reference stays the real path, so in the stress
    # run every figure against it (oracle lag, hidden insolvency, bad debt at reference prices)
    # would measure the shock itself: the stress scenario has no reference and no oracle_lag
    reference = common[common.index("[reference]"):common.index("[liquidator]")]
    stress_names = ", ".join(f'"{m}"' for m in ALL_METRICS if m not in ("fidelity", "oracle_lag"))
    stress = counterfactual.replace(
        'name = "sample crash: counterfactual"', 'name = "sample crash: ETH a further 25 % lower"').replace(
        reference, "").replace(f"names = [{cf_names}]", f"names = [{stress_names}]") + f"""
# No [reference] here: a shock moves the oracle's answers only, and the real market path would
# then measure the shock itself as oracle error.
[[shock]]                            # ETH/USD a further 25 % lower, ramped in over an hour
kind = "shift"
at_ts = {STRESS_AT_TS}
pct = {STRESS_PCT}
ramp_s = {STRESS_RAMP_S}
assets = ["{eth_feed}"]
"""
    return {"historical": historical, "counterfactual": counterfactual, "stress": stress}


def _usd(value: int | float | None, unit: int = 10**8) -> float | None:
    return None if value is None else float(value) / unit


def run_demo(*, db: Path | None = None, out: Path = Path("out"), sample: Path = SAMPLE_DB,
             progress: Any = None) -> DemoResult:
    """Run the demo (see the module docstring); ``progress(step: str)`` is called before each step."""
    from .api import run
    from .attribution import finality_attribution, lag_attribution
    from .report.build import build_report

    def step(msg: str) -> None:
        if progress is not None:
            progress(msg)

    t0 = time.monotonic()
    wh_path = Path(db) if db is not None else DEFAULT_DB
    sdir = out / "demo"
    sdir.mkdir(parents=True, exist_ok=True)  # an unusable --out fails before the warehouse is touched
    step(f"copying the bundled sample to {wh_path}")
    prepare_warehouse(wh_path, sample)
    con = duckdb.connect(str(wh_path), read_only=True)
    try:
        meta = _meta(con)
    finally:
        con.close()
    paths: dict[str, Path] = {}
    for name, text in demo_scenarios(meta).items():
        paths[name] = sdir / f"{name}.toml"
        paths[name].write_text(text)

    step("historical replay of the crash (every metric)")
    hist = run(paths["historical"], db=wh_path)
    step("oracle-lag attribution (feed rounds vs the reference price as the oracle)")
    lag = lag_attribution(paths["counterfactual"], db=wh_path)
    step(f"finality attribution (liquidators wait {FINALITY_WAIT_BLOCKS} blocks)")
    fin = finality_attribution(paths["counterfactual"], db=wh_path, wait_blocks=FINALITY_WAIT_BLOCKS)
    step("stress: ETH a further 25 % lower")
    stress = run(paths["stress"], db=wh_path)
    step("writing the reports")
    reports = {"historical": build_report(str(wh_path), hist.run_id, out).html,
               "stress": build_report(str(wh_path), stress.run_id, out).html}

    h = hist.summary
    s = stress.summary
    summary: dict[str, Any] = {
        "warehouse": str(wh_path),
        "window": {"from_block": hist.scenario.from_block, "to_block": hist.scenario.to_block},
        "historical_run": hist.run_id,
        "liquidations_observed": h["liquidations"]["observed_count"],
        "liquidated_accounts": h["liquidations"]["observed_accounts"],
        "liquidation_volume_usd": h["liquidations"]["observed_volume_usd"],
        "fidelity": {k: h["fidelity"][k] for k in (
            "observed", "observed_user_blocks", "predicted", "matched", "precision", "recall",
            "amounts_compared", "amounts_exact")},
        "bad_debt": {"peak_unrealized_usd": h["bad_debt"]["peak_unrealized_oracle_usd"],
                     "peak_unrealized_block": h["bad_debt"]["peak_unrealized_oracle_block"],
                     "end_usd": h["bad_debt"]["end_total_oracle_usd"],
                     "realized_usd": h["bad_debt"]["realized_usd"]},
        "oracle_lag": {k: h["oracle_lag"][k] for k in ("max_deviation_bps", "beyond_threshold_s_max",
                                                       "max_staleness_s", "hidden_insolvency_usd_h",
                                                       "hidden_accounts")},
        "lag_attributable_bad_debt_usd": {
            "peak": _usd(lag.figures["peak_unrealized_reference_value"][2]),
            "end": _usd(lag.figures["end_bad_debt_reference_value"][2])},
        # every on-chain liquidation acts on the state of its own block, never final at a depth > 0:
        # in a historical run the value on non-final state is the whole liquidation volume, so it
        # goes with its count out of all (not a risk figure of its own); the liquidations in blocks
        # not yet final when ingested are the ones whose rows a reorg could still change
        "finality": {"depth_blocks": h["finality"]["depth_blocks"],
                     "liquidations": h["finality"]["liquidations"],
                     "liquidations_on_non_final_state": h["finality"]["liquidations_not_final"],
                     "liquidated_on_non_final_state_usd": _usd(h["finality"]["liquidated_not_final_value"]),
                     "liquidations_in_blocks_not_final_at_ingest":
                         h["finality"]["liquidations_in_blocks_not_final_at_ingest"],
                     "oracle_updates_consumed_non_final": h["finality"]["oracle_updates_not_final"],
                     "accounts_changed_non_final": h["finality"]["accounts_changed_not_final"],
                     "wait_blocks": FINALITY_WAIT_BLOCKS,
                     "extra_bad_debt_if_waiting_usd": {
                         "peak": _usd(fin.figures["peak_unrealized_reference_value"][2]),
                         "end": _usd(fin.figures["end_bad_debt_reference_value"][2])}},
        "stress_run": stress.run_id,
        "stress": {"peak_unrealized_bad_debt_usd": s["bad_debt"]["peak_unrealized_oracle_usd"],
                   "end_bad_debt_usd": s["bad_debt"]["end_total_oracle_usd"],
                   "accounts_underwater_end": s["bad_debt"]["end_accounts_underwater"],
                   "suppliers_loss_usd": s["socialization"]["end_suppliers_usd"],
                   "max_supplier_haircut_bps": s["socialization"]["max_haircut_net_bps"],
                   "liquidations": s["liquidations"]["simulated_count"],
                   "spirals": s["spiral"]["spirals"]},
        "reports": {k: str(v) for k, v in reports.items()},
        "scenarios": {k: str(v) for k, v in paths.items()},
        "elapsed_s": round(time.monotonic() - t0, 1),
    }
    return DemoResult(wh_path, paths, summary, reports)


def print_summary(res: DemoResult, console: Any) -> None:
    """The human summary (rich console)."""
    from rich.table import Table

    s = res.summary
    f = s["fidelity"]
    bd = s["bad_debt"]
    ol = s["oracle_lag"]
    fi = s["finality"]
    st = s["stress"]
    lag = s["lag_attributable_bad_debt_usd"]
    wait = fi["extra_bad_debt_if_waiting_usd"]

    def usd(v: float | None) -> str:
        return "–" if v is None else f"${v:,.2f}"

    def pct(v: float | None) -> str:  # rounded down: 100 % only when every one was right
        return "–" if v is None else f"{math.floor(v * 100 + 1e-9)}%"

    t = Table(title="deficit demo: Aave v3 through the 2021-01-11 ETH crash (bundled sample)")
    t.add_column("figure")
    t.add_column("value", justify="right")
    rows = [
        ("liquidations on chain (accounts)", f"{s['liquidations_observed']} ({s['liquidated_accounts']})"),
        ("debt repaid by liquidators", usd(s["liquidation_volume_usd"])),
        ("fidelity: predicted vs observed (user, block)",
         f"precision {pct(f['precision'])} ({f['matched']}/{f['predicted']}), "
         f"recall {pct(f['recall'])} ({f['matched']}/{f['observed_user_blocks']})"),
        ("fidelity: amounts exact to the wei", f"{f['amounts_exact']}/{f['amounts_compared']}"),
        ("bad debt: peak unrealized at oracle prices (block)",
         f"{usd(bd['peak_unrealized_usd'])} ({bd['peak_unrealized_block']})"),
        ("bad debt: end of window (oracle prices)", usd(bd["end_usd"])),
        ("oracle vs market: max deviation", f"{ol['max_deviation_bps']:.0f} bps"),
        ("hidden insolvency (liquidatable at market, not at oracle)",
         f"{usd(ol['hidden_insolvency_usd_h'])}·h over {ol['hidden_accounts']} account(s)"),
        ("bad debt attributable to oracle lag, at market prices (peak / end)",
         f"{usd(lag['peak'])} / {usd(lag['end'])}"),
        (f"liquidations on state not yet final ({fi['depth_blocks']} blocks deep)",
         f"{fi['liquidations_on_non_final_state']} of {fi['liquidations']}, "
         f"{usd(fi['liquidated_on_non_final_state_usd'])} (each acts on its own block); "
         f"{fi['liquidations_in_blocks_not_final_at_ingest']} in blocks not final at ingest"),
        (f"extra bad debt if liquidators wait {fi['wait_blocks']} blocks, at market prices (peak / end)",
         f"{usd(wait['peak'])} / {usd(wait['end'])}"),
        ("stress (ETH −25 % more): bad debt peak / end (oracle prices)",
         f"{usd(st['peak_unrealized_bad_debt_usd'])} / {usd(st['end_bad_debt_usd'])}"),
        ("stress: suppliers' loss (max haircut)",
         f"{usd(st['suppliers_loss_usd'])} ({st['max_supplier_haircut_bps']:.3f} bps)"),
    ]
    for a, b in rows:
        t.add_row(a, b)
    console.print(t)
    console.print(f"reports: {s['reports']['historical']}  and  {s['reports']['stress']}")
    console.print(f"scenarios: {', '.join(s['scenarios'].values())}   warehouse: {s['warehouse']}")
    junit = Path(s["scenarios"]["historical"]).parent.parent / "junit.xml"
    console.print(f"next: deficit check {s['scenarios']['historical']} --db {s['warehouse']} "
                  f"--junit {junit}   |   deficit runs --db {s['warehouse']}   ({s['elapsed_s']} s)")


def cli_demo(db: Path | None, out: Path, as_json: bool, console: Any) -> int:
    """The ``deficit demo`` command body: exit 0, or 2 with a message on bad input."""
    from .errors import BacktestError

    try:
        if as_json:
            res = run_demo(db=db, out=out)
        else:
            with console.status("deficit demo") as status:
                res = run_demo(db=db, out=out, progress=lambda m: status.update(f"deficit demo: {m}"))
    except InputError as e:
        console.print(f"error: {e}", markup=False, style="red")
        return 2
    except BacktestError as e:
        console.print(f"error ({type(e).__name__}): {e}", markup=False, style="red")
        return 1
    except OSError as e:  # --out or --db not writable: a file in the way, no permission, disk full
        where = f" ({e.filename})" if e.filename else ""
        console.print(f"error: cannot write the demo's files{where}: {e.strerror or e}", markup=False,
                      style="red")
        return 2
    if as_json:
        print(json.dumps(res.summary, indent=2, sort_keys=True, default=str))
    else:
        print_summary(res, console)
    return 0
