"""The engine's own ``bt`` tables and the one writer of a run's rows.

* ``bt.runs``: one row per backtest run (what ran, on which data, with which code, how it ended);
* ``bt.liquidations``: every liquidation of a run, observed or simulated (see
  :class:`backtest.metrics.base.Liquidation`);
* ``bt.summaries``: the metrics' headline figures, one row per (metric, name).

Metric modules declare their own tables (:mod:`backtest.metrics`). :func:`write_run` writes a
run's rows for *every* table in one transaction: rows of the same ``run_id`` are deleted first
(in every bt table, those of metrics the new run does not compute included), so a re-run
replaces its previous results, and an error leaves the warehouse as it was. Rows
are inserted through Arrow: a table's rows are a list of tuples (one batch) or a
:class:`backtest.sink.RowSink` (compact batches, spilled to a temporary file past a memory
budget, streamed into the INSERT one at a time, sorted by DuckDB when the sink declares an
order). Integers that do not fit the declared column type raise (DuckDB's cast is checked), never
wrap.

``bt.runs`` stores no wall-clock times: two runs of the same scenario on the same data and
code produce byte-identical bt tables (the determinism guarantee); when a run happened is in
the caller's logs, not in its results.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ingest.schema import Column, Table, register_table
from ingest.warehouse import Warehouse, unregister

from .metrics.base import Liquidation, SummaryValue
from .sink import RowSink, arrow_schema, record_batch
from .views import ensure_views

__all__ = ["RUNS", "LIQUIDATIONS", "SUMMARIES", "RunRecord", "liquidation_row", "summary_rows",
           "write_run", "engine_tables"]

_LINEAGE = (
    Column("run_id", "VARCHAR", "backtest run (bt.runs)", False),
    Column("chain_id", "UBIGINT", "EIP-155 chain id replayed", False),
    Column("block_number", "UBIGINT", "block the row refers to", False),
)

RUNS = register_table(Table(
    "bt", "runs", "One row per backtest run: scenario, mode, window with its end block hashes, "
    "the ingest runs whose data it read, the code version, and how it ended.",
    (
        Column("run_id", "VARCHAR", "run id: derived from scenario sha256 + code version unless given",
               False),
        Column("scenario", "VARCHAR", "scenario name", False),
        Column("scenario_sha256", "VARCHAR", "SHA-256 (hex) of the scenario's canonical JSON", False),
        Column("scenario_path", "VARCHAR", "file the scenario was read from (NULL if built in code; an "
               "attribution's run, a variant of a file: '<file> (variant +lag:with, backtest.attribution)')"),
        Column("mode", "VARCHAR", "historical or counterfactual", False),
        Column("chain_id", "UBIGINT", "chain replayed", False),
        Column("base_currency", "VARCHAR", "what the run's values are in: the protocol oracle's base "
               "currency (USD for Aave v3, ETH for Aave v2); every *_value column holds its smallest "
               "units, every *_base_f64 column whole units", False),
        Column("base_currency_decimals", "UTINYINT", "decimals of *_value columns: value / "
               "10^base_currency_decimals is whole base currency (Aave v3: 8, Aave v2: 18)", False),
        Column("from_block", "UBIGINT", "first block of the window", False),
        Column("to_block", "UBIGINT", "last block of the window (inclusive)", False),
        Column("from_block_hash", "VARCHAR", "hash of from_block in raw.blocks (NULL: in-memory run)"),
        Column("to_block_hash", "VARCHAR", "hash of to_block in raw.blocks (NULL: in-memory run)"),
        Column("data_sources", "VARCHAR[]", "ingest runs (meta.runs.run_id) whose rows were read, "
               "sorted", False),
        Column("metrics", "VARCHAR[]", "metrics computed", False),
        Column("code_version", "VARCHAR", "deficit version and git commit of the code that ran", False),
        Column("scenario_json", "VARCHAR", "the scenario as canonical JSON (what the sha256 covers)",
               False),
        Column("events_applied", "UBIGINT", "protocol events applied", False),
        Column("prices_consumed", "UBIGINT", "oracle and reference price updates consumed", False),
        Column("blocks_visited", "UBIGINT", "blocks with inputs or scheduled liquidations", False),
        Column("evaluations", "UBIGINT", "exact account evaluations performed", False),
        Column("status", "VARCHAR", "ok (a failed run writes nothing)", False),
    ),
    "backtest.outputs", ("run_id",)))

LIQUIDATIONS = register_table(Table(
    "bt", "liquidations", "Every liquidation of a run: observed (on-chain LiquidationCall, with the "
    "engine's own prediction of its amounts from the observed arguments) or simulated by the "
    "liquidator model (committed in counterfactual mode; a prediction in historical mode).",
    (
        *_LINEAGE,
        Column("log_index", "UINTEGER", "log index of the observed LiquidationCall (NULL: simulated)"),
        Column("tx_hash", "VARCHAR", "its transaction (NULL: simulated)"),
        Column("block_ts", "UBIGINT", "block timestamp, unix seconds", False),
        Column("observed", "BOOLEAN", "true: on-chain LiquidationCall; false: liquidator model", False),
        Column("committed", "BOOLEAN", "changed the replayed state (false: historical prediction)", False),
        Column("user", "VARCHAR", "liquidated account", False),
        Column("liquidator", "VARCHAR", "liquidator address (model: zero address)", False),
        Column("collateral_asset", "VARCHAR", "collateral seized", False),
        Column("debt_asset", "VARCHAR", "debt repaid", False),
        Column("debt_to_cover_raw", "VARCHAR", "exact decimal; simulated: the debtToCover the model "
               "passed (may be 2**256-1); observed: the LiquidationCall event's debtToCover, which is "
               "the debt actually repaid (= debt_repaid_raw; the call's argument is in no event)", False),
        Column("debt_repaid_raw", "HUGEINT", "debt repaid, debt-asset base units", False),
        Column("collateral_seized_raw", "HUGEINT", "collateral to the liquidator (excl. fee), base units",
               False),
        Column("protocol_fee_raw", "HUGEINT", "collateral to the treasury, base units (observed: the "
               "engine's prediction, which the event does not contradict; NULL: unknown, the prediction "
               "reverted under a protocol with a fee, Aave v3; v2 has none: 0)"),
        Column("predicted_debt_repaid_raw", "HUGEINT", "observed: adapter.liquidate's debt repaid with "
               "the observed arguments on the pre-event state (NULL: simulated or reverted)"),
        Column("predicted_collateral_seized_raw", "HUGEINT", "observed: predicted collateral seized"),
        Column("predicted_protocol_fee_raw", "HUGEINT", "observed: predicted protocol fee"),
        Column("predicted_revert", "VARCHAR", "observed: the adapter's revert reason when it predicted "
               "a revert (NULL otherwise)"),
        Column("debt_repaid_value", "HUGEINT", "debt repaid at the oracle price, base currency units "
               "(Aave v3: USD 1e8)", False),
        Column("collateral_seized_value", "HUGEINT", "collateral seized at the oracle price", False),
        Column("protocol_fee_value", "HUGEINT", "protocol fee at the oracle price (NULL: fee unknown)"),
        Column("bonus_value", "HUGEINT", "seized + fee - repaid: what the borrower paid above par "
               "(NULL: fee unknown)"),
        Column("bad_debt_value", "HUGEINT", "debt the liquidation left without collateral, base currency: "
               "v3.3+ the deficit it booked; Aave v2, v3.0-3.2 the debt that stays on the account", False),
        Column("liquidatable_since_block", "UBIGINT", "first block of the account's current run of "
               "evaluations finding it liquidatable, any evaluation (NULL: never seen liquidatable)"),
        Column("delay_blocks", "UBIGINT", "block_number - liquidatable_since_block"),
        Column("decided_block", "UBIGINT", "simulated: block whose state the liquidator acted on"),
        Column("gas_cost_value", "HUGEINT", "simulated: gas cost in base currency, at the liquidator's "
               "trade prices (scenario [liquidator] prices: the oracle's by default; \"reference\": the "
               "reference price of ETH's key where the path covers it)", False),
        Column("slippage_value", "HUGEINT", "simulated: slippage selling the collateral, on its value at "
               "the trade prices", False),
        Column("flash_fee_value", "HUGEINT", "simulated: flash-loan fee on the repaid debt's value at the "
               "trade prices", False),
        Column("profit_value", "HUGEINT", "simulated: the liquidator's profit at its trade prices, what "
               "min_profit is compared with: prices = \"oracle\" (default): liquidator bonus minus costs "
               "(collateral_seized_value - debt_repaid_value - gas - slippage - flash fee); \"reference\": "
               "the seized collateral sold minus the repaid debt bought, both at the reference prices, "
               "minus the costs (not the oracle-valued columns' difference)", False),
        Column("bonus_base_f64", "DOUBLE", "derived: bonus_value in whole base currency "
               "(bt.runs.base_currency; analysis only; NULL: fee unknown)"),
        Column("seq", "UBIGINT", "the liquidation's position in the run, in replay order (0-based): "
               "orders, and tells apart, liquidations of one account in one block (the liquidator "
               "model's bundle, whose rows have no log index)", False),
    ),
    "backtest.outputs", ("run_id", "seq")))

SUMMARIES = register_table(Table(
    "bt", "summaries", "Headline figures of each metric of a run (one row per metric and name). "
    "Names carry units as suffixes; integers are exact in value_text.",
    (
        Column("run_id", "VARCHAR", "backtest run", False),
        Column("chain_id", "UBIGINT", "chain replayed", False),
        Column("block_number", "UBIGINT", "last block of the window (the figures' instant)", False),
        Column("metric", "VARCHAR", "metric name (backtest.metrics registry)", False),
        Column("name", "VARCHAR", "figure name, e.g. peak_unrealized_oracle_usd (the "
               "suffix is the run's base currency: peak_unrealized_oracle_eth in an Aave v2 run)", False),
        Column("value_text", "VARCHAR", "exact value as text (JSON literal: 123, 1.5, \"x\", true, null)",
               False),
        Column("value_f64", "DOUBLE", "numeric value as a float (NULL for text/null)"),
    ),
    "backtest.outputs", ("run_id", "metric", "name")))


def engine_tables() -> tuple[Table, ...]:
    return (RUNS, LIQUIDATIONS, SUMMARIES)


@dataclass(frozen=True)
class RunRecord:
    """The ``bt.runs`` row of a run (see the table's column docs)."""

    run_id: str
    scenario: str
    scenario_sha256: str
    scenario_path: str | None
    mode: str
    chain_id: int
    base_currency: str
    base_currency_decimals: int
    from_block: int
    to_block: int
    from_block_hash: str | None
    to_block_hash: str | None
    data_sources: tuple[str, ...]
    metrics: tuple[str, ...]
    code_version: str
    scenario_json: str
    events_applied: int
    prices_consumed: int
    blocks_visited: int
    evaluations: int
    status: str = "ok"

    def row(self) -> tuple[Any, ...]:
        return (self.run_id, self.scenario, self.scenario_sha256, self.scenario_path, self.mode,
                self.chain_id, self.base_currency, self.base_currency_decimals, self.from_block,
                self.to_block, self.from_block_hash, self.to_block_hash,
                list(self.data_sources), list(self.metrics), self.code_version, self.scenario_json,
                self.events_applied, self.prices_consumed, self.blocks_visited, self.evaluations,
                self.status)


def liquidation_row(run_id: str, chain_id: int, liq: Liquidation, unit: int, seq: int) -> tuple[Any, ...]:
    """A ``bt.liquidations`` row (column order of :data:`LIQUIDATIONS`); ``seq``: its position in
    the run's liquidations, in replay order."""
    p = liq.predicted
    ok = p is not None and p.ok
    bonus = liq.bonus_value  # None: the protocol fee is unknown
    return (run_id, chain_id, liq.block_number, liq.log_index, liq.tx_hash, liq.timestamp, liq.observed,
            liq.committed, liq.user, liq.liquidator, liq.collateral_asset, liq.debt_asset,
            str(liq.debt_to_cover), liq.debt_repaid, liq.collateral_seized, liq.protocol_fee,
            p.debt_repaid if ok and p else None, p.collateral_seized if ok and p else None,
            p.protocol_fee if ok and p else None, p.revert_reason if p is not None and not p.ok else None,
            liq.debt_repaid_value, liq.collateral_seized_value, liq.protocol_fee_value, bonus,
            liq.bad_debt_value, liq.liquidatable_since_block,
            liq.delay_blocks, liq.decided_block, liq.gas_cost_value, liq.slippage_value, liq.flash_fee_value,
            liq.profit_value, bonus / unit if bonus is not None else None, seq)


def summary_rows(run_id: str, chain_id: int, block: int, metric: str,
                 summary: Mapping[str, SummaryValue]) -> list[tuple[Any, ...]]:
    """``bt.summaries`` rows for one metric's summary, sorted by name."""
    out = []
    for name in sorted(summary):
        v = summary[name]
        if not isinstance(v, (int, float, str, bool)) and v is not None:
            raise TypeError(f"metric {metric!r}: summary {name!r} is a {type(v).__name__}; expected "
                            "int, float, str, bool or None")
        f = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
        out.append((run_id, chain_id, block, metric, name, json.dumps(v), f))
    return out


def _source(table: Table, rows: Sequence[tuple[Any, ...]]) -> tuple[pa.RecordBatchReader, RowSink | None]:
    """What the INSERT scans: a sink's batches as they are (streamed, in its order), or a plain
    list of rows converted into one batch (small tables: the engine's own, the short metrics)."""
    if isinstance(rows, RowSink):
        if rows.table.fqn != table.fqn:
            raise ValueError(f"rows for {table.fqn} are a row sink of {rows.table.fqn}")
        return rows.reader(), rows
    return pa.RecordBatchReader.from_batches(arrow_schema(table), [record_batch(table, rows)]), None


def write_run(wh: Warehouse, run_id: str, tables: Mapping[Table, Sequence[tuple[Any, ...]]],
              derived: Mapping[Table, Callable[[Any], Sequence[tuple[Any, ...]]]] | None = None) -> None:
    """Replace every row of ``run_id`` in ``tables`` with the given rows, in one transaction (all
    or nothing). When ``tables`` holds the run's ``bt.runs`` row (a run written as a whole), the
    run id's rows in every other bt table are deleted too: a run re-written under the same id
    (``--run-id``) with other metrics leaves nothing of the previous one, and, when its content
    differs (scenario, data, metrics or code), no ``bt.attributions`` row compares it any more.
    Without it (rows derived after a run: ``bt.reorg_exposure``) only the listed tables change.

    The rows of a table are a list of tuples or a :class:`backtest.sink.RowSink`; a sink's
    batches are streamed into the INSERT one at a time (and sorted by DuckDB when the sink has an
    ``order_by``), so the write never holds a large table's rows as Python objects. The sinks are
    not consumed: the same tables can be written again.

    ``derived``: tables whose rows are computed from the rows just written (``bt.reorg_exposure``
    from the run's rows): each callable gets the connection inside the same transaction, after
    ``tables`` are in, so the run and what derives from it are written all or nothing."""
    derived = derived or {}
    wh.ensure(*tables, *derived)
    with wh.transaction() as con:
        if RUNS in tables:
            # the run as a whole is (re)written: no row of a previous run of this id stays in a bt
            # table this write does not list (a metric it no longer computes, rows derived after
            # it, as bt.reorg_exposure), or they would read as this run's
            listed = {t.fqn for t in (*tables, *derived)}
            bt_tables = {f"bt.{n}" for (n,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'bt'").fetchall()}
            for (fqn,) in con.execute(
                    "SELECT DISTINCT t.schema_name || '.' || t.table_name FROM duckdb_tables() t "
                    "JOIN duckdb_columns() c USING (database_name, schema_name, table_name) "
                    "WHERE t.schema_name = 'bt' AND c.column_name = 'run_id' ORDER BY 1").fetchall():
                if fqn not in listed:
                    con.execute(f"DELETE FROM {fqn} WHERE run_id = ?", [run_id])
            # an attribution is the difference of two runs: one of them rewritten with other
            # content (a reused --run-id), it no longer is. The same scenario, data, metrics and
            # code give byte-identical rows (a rerun): the attribution stands.
            ident = ("scenario_sha256", "from_block_hash", "to_block_hash", "data_sources", "metrics",
                     "code_version")
            row = dict(zip(RUNS.column_names(), list(tables[RUNS])[0], strict=True))
            now = tuple(list(row[c]) if isinstance(row[c], (list, tuple)) else row[c] for c in ident)
            before = con.execute(f"SELECT {', '.join(ident)} FROM bt.runs WHERE run_id = ?",
                                 [run_id]).fetchall()
            if before and tuple(before[0]) != now and "bt.attributions" in bt_tables:
                con.execute("DELETE FROM bt.attributions WHERE with_cause_run_id = ? OR "
                            "without_cause_run_id = ?", [run_id, run_id])
        for t in sorted(tables, key=lambda t: t.fqn):
            con.execute(f"DELETE FROM {t.fqn} WHERE run_id = ?", [run_id])
            rows = tables[t]
            if not len(rows):
                continue
            reader, sink = _source(t, rows)
            name = "_bt_stage_" + t.name
            con.register(name, reader)
            try:
                cols = [f'CAST("{c.name}" AS {c.type})' for c in t.columns]
                select = (sink.select_sql(name, cols) if sink is not None
                          else f"SELECT {', '.join(cols)} FROM {name}")
                con.execute(f"INSERT INTO {t.fqn} {select}")
            finally:
                unregister(con, name)
        for t, compute in sorted(derived.items(), key=lambda kv: kv[0].fqn):
            con.execute(f"DELETE FROM {t.fqn} WHERE run_id = ?", [run_id])
            got = list(compute(con))
            if got:
                con.executemany(f"INSERT INTO {t.fqn} VALUES ({', '.join('?' * len(t.columns))})", got)
        ensure_views(con)  # the analysts' views over the tables that now exist (backtest.views)
