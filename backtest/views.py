"""Analysts' views over the ``bt`` tables (declared like tables, so ``deficit schema`` and
``docs/schema.md`` document them; created by the run writer, :func:`ensure_views`).

* ``bt.run_overview``: one row per run with its scenario, window and headline figures;
* ``bt.daily_bad_debt_by_reserve``: unrealized bad debt per UTC day and debt reserve, as it stood
  at the end of each day (each account's last evaluation at or before midnight), every day from
  the first row's to the window end's (``bad_debt``'s ``end_block_ts`` summary);
* ``bt.hidden_insolvency_by_feed``: hidden-insolvency exposure per oracle feed (base currency x
  seconds, hours) with the feed's deviation and staleness figures;
* ``bt.liquidations_with_delay``: every liquidation with its origin, delay from first seen
  liquidatable, reaction lag of the liquidator model and its values in whole base currency.

Money is in the run's base currency (``bt.runs.base_currency``: USD for Aave v3, ETH for Aave v2),
named ``*_base`` here, and every view has a ``base_currency`` column, so runs of different markets
are never summed unawares.

A view is created only when every table it reads exists (a run that did not compute a metric
does not have its tables); :func:`ensure_views` is called by :func:`backtest.outputs.write_run`
inside the run's transaction, so the views appear with the first run that has their inputs.
Days are UTC days of the block timestamp (``block_ts // 86400``), independent of the session's
time zone.
"""

from __future__ import annotations

from typing import Any

from ingest.schema import Column, Table, register_table

__all__ = ["VIEWS", "DEPENDS", "ensure_views"]

_RUN = Column("run_id", "VARCHAR", "backtest run (bt.runs)")
_CHAIN = Column("chain_id", "UBIGINT", "chain replayed")


def _f(metric: str, name: str) -> str:
    """The summary figure ``metric.name``; a ``_usd`` in ``name`` stands for the run's base currency
    (summaries name it: ``end_total_oracle_eth`` in an Aave v2 run, see ``backtest.engine``)."""
    if "_usd" in name:
        cond = f"s.name = replace('{name}', '_usd', '_' || lower(r.base_currency))"
    else:
        cond = f"s.name = '{name}'"
    return f"max(s.value_f64) FILTER (WHERE s.metric = '{metric}' AND {cond})"


_CUR = Column("base_currency", "VARCHAR", "what the *_base columns are in (bt.runs.base_currency)")


RUN_OVERVIEW = register_table(Table(
    "bt", "run_overview", "One row per backtest run: scenario, mode, window and its headline figures "
    "(from bt.summaries; NULL when the run did not compute the metric).",
    (
        _RUN,
        Column("scenario", "VARCHAR", "scenario name"),
        Column("scenario_sha256", "VARCHAR", "scenario hash"),
        Column("mode", "VARCHAR", "historical or counterfactual"),
        _CHAIN,
        Column("from_block", "UBIGINT", "first block of the window"),
        Column("to_block", "UBIGINT", "last block of the window"),
        Column("status", "VARCHAR", "run status"),
        Column("code_version", "VARCHAR", "code that ran"),
        _CUR,
        Column("bad_debt_end_base", "DOUBLE", "bad debt at the window end, unrealized + realized "
               "(base currency)"),
        Column("bad_debt_peak_unrealized_base", "DOUBLE", "peak unrealized bad debt at oracle prices "
               "(base currency)"),
        Column("accounts_underwater_end", "DOUBLE", "accounts with debt above collateral at the end"),
        Column("liquidations_observed", "DOUBLE", "on-chain liquidations"),
        Column("liquidations_simulated", "DOUBLE", "liquidator-model liquidations (historical mode: "
               "predictions that changed nothing, mostly of the observed ones: not to be added to "
               "liquidations_observed; counterfactual: committed)"),
        Column("hidden_insolvency_base_h", "DOUBLE", "hidden insolvency, base currency x hours "
               "(oracle_lag)"),
        Column("max_deviation_bps", "DOUBLE", "max oracle/reference deviation, bps (oracle_lag)"),
        Column("liquidated_not_final_base", "DOUBLE", "debt liquidated on non-final state, base currency "
               "(finality; "
               "liquidations that changed the state: on-chain ones, or the model's in a counterfactual)"),
        Column("loss_end_base", "DOUBLE", "loss at the window end, base currency (socialization)"),
        Column("fidelity_recall", "DOUBLE", "share of the observed (user, block) pairs the model predicted "
               "(fidelity; several liquidations of one account in one block are one pair)"),
        Column("fidelity_precision", "DOUBLE", "predictions that were observed (fidelity)"),
    ),
    "backtest.views", ("run_id",), kind="view", view_sql=f"""
SELECT r.run_id, r.scenario, r.scenario_sha256, r.mode, r.chain_id, r.from_block, r.to_block, r.status,
       r.code_version, r.base_currency,
       {_f('bad_debt', 'end_total_oracle_usd')} AS bad_debt_end_base,
       {_f('bad_debt', 'peak_unrealized_oracle_usd')} AS bad_debt_peak_unrealized_base,
       {_f('bad_debt', 'end_accounts_underwater')} AS accounts_underwater_end,
       {_f('liquidations', 'observed_count')} AS liquidations_observed,
       {_f('liquidations', 'simulated_count')} AS liquidations_simulated,
       {_f('oracle_lag', 'hidden_insolvency_usd_h')} AS hidden_insolvency_base_h,
       {_f('oracle_lag', 'max_deviation_bps')} AS max_deviation_bps,
       {_f('finality', 'liquidated_not_final_usd')} AS liquidated_not_final_base,
       {_f('socialization', 'end_loss_usd')} AS loss_end_base,
       {_f('fidelity', 'recall')} AS fidelity_recall,
       {_f('fidelity', 'precision')} AS fidelity_precision
FROM bt.runs r LEFT JOIN bt.summaries s USING (run_id)
GROUP BY ALL ORDER BY r.run_id"""))

DAILY_BAD_DEBT = register_table(Table(
    "bt", "daily_bad_debt_by_reserve", "Unrealized bad debt per run, UTC day and debt reserve at the end "
    "of the day: each account counts with its last evaluation at or before midnight (bt.bad_debt_accounts); "
    "every day up to the window end's (bad_debt's end_block_ts summary), not only days with a change; a day "
    "on which a reserve has no bad debt (oracle and reference) has no row for it: read a missing day as 0.",
    (
        _RUN, _CHAIN,
        Column("day", "DATE", "UTC day (of block timestamps)"),
        Column("reserve", "VARCHAR", "debt reserve (asset address)"),
        Column("bad_debt_oracle_value", "HUGEINT", "bad debt at oracle prices, base currency units"),
        Column("bad_debt_reference_value", "HUGEINT", "the same at reference prices (NULL: no reference)"),
        Column("accounts", "BIGINT", "accounts with bad debt in this reserve"),
        _CUR,
        Column("bad_debt_oracle_base_f64", "DOUBLE", "derived: bad debt at oracle prices, whole base "
               "currency"),
    ),
    "backtest.views", ("run_id", "day", "reserve"), kind="view", view_sql="""
WITH ends AS (
    -- the window's end: an account's last row stands until then (rows are written on change only)
    SELECT run_id, max(CAST(value_text AS UBIGINT)) AS end_ts FROM bt.summaries
    WHERE metric = 'bad_debt' AND name = 'end_block_ts' GROUP BY run_id
), rows_span AS (
    SELECT run_id, chain_id, min(block_ts) AS t0, max(block_ts) AS t1 FROM bt.bad_debt_accounts GROUP BY ALL
), span AS (
    SELECT s.run_id, s.chain_id, CAST(s.t0 // 86400 AS BIGINT) AS d0,
           CAST(greatest(s.t1, coalesce(e.end_ts, s.t1)) // 86400 AS BIGINT) AS d1
    FROM rows_span s LEFT JOIN ends e USING (run_id)
), days AS (
    SELECT run_id, chain_id, d, (d + 1) * 86400 AS day_end_ts
    FROM span, LATERAL range(d0, d1 + 1) t(d)
), evals AS (
    -- an account's last evaluation of each timestamp (blocks can share one, e.g. on an L2): the
    -- ASOF match below is on the timestamp, and among equal ones it took any block's rows
    SELECT run_id, "user", block_ts, max(block_number) AS block_number FROM bt.bad_debt_accounts
    GROUP BY ALL
), users AS (
    SELECT DISTINCT run_id, "user" FROM bt.bad_debt_accounts
), last_eval AS (
    SELECT dy.run_id, dy.chain_id, dy.d, u."user", e.block_number
    FROM days dy JOIN users u USING (run_id)
    ASOF JOIN evals e ON e.run_id = u.run_id AND e."user" = u."user" AND e.block_ts < dy.day_end_ts
)
SELECT le.run_id, le.chain_id, DATE '1970-01-01' + CAST(le.d AS INTEGER) AS day, a.reserve,
       sum(a.bad_debt_oracle_value)::HUGEINT AS bad_debt_oracle_value,
       sum(a.bad_debt_reference_value)::HUGEINT AS bad_debt_reference_value,
       count(*) FILTER (WHERE a.bad_debt_oracle_value > 0) AS accounts, r.base_currency,
       sum(a.bad_debt_oracle_base_f64) AS bad_debt_oracle_base_f64
FROM last_eval le JOIN bt.bad_debt_accounts a
  ON a.run_id = le.run_id AND a."user" = le."user" AND a.block_number = le.block_number
JOIN bt.runs r ON r.run_id = le.run_id
WHERE a.reserve <> ''
GROUP BY ALL
HAVING sum(a.bad_debt_oracle_value) > 0 OR sum(a.bad_debt_reference_value) > 0
ORDER BY le.run_id, day, a.reserve"""))

HIDDEN_BY_FEED = register_table(Table(
    "bt", "hidden_insolvency_by_feed", "Hidden-insolvency exposure per run and oracle feed (debt "
    "liquidatable at the reference price but not at the oracle's, x time) with the feed's deviation "
    "and staleness figures (bt.oracle_lag_feeds).",
    (
        _RUN, _CHAIN,
        Column("feed", "VARCHAR", "oracle feed (proxy address)"),
        Column("pair", "VARCHAR", "reference pair"),
        _CUR,
        Column("hidden_insolvency_base_s", "DOUBLE", "base currency x seconds"),
        Column("hidden_insolvency_base_h", "DOUBLE", "base currency x hours"),
        Column("hidden_accounts", "UBIGINT", "accounts hidden-insolvent at some point"),
        Column("max_deviation_bps", "DOUBLE", "max |oracle - reference| / reference, bps"),
        Column("beyond_threshold_s", "UBIGINT", "seconds with the reference beyond the feed's threshold "
               "from its answer on chain (its trigger met, no new answer yet)"),
        Column("max_staleness_s", "UBIGINT", "max seconds since the round in force was updated"),
    ),
    "backtest.views", ("run_id", "feed"), kind="view", view_sql="""
SELECT f.run_id, f.chain_id, f.feed, f.pair, r.base_currency,
       f.hidden_insolvency_base_s_f64 AS hidden_insolvency_base_s,
       f.hidden_insolvency_base_s_f64 / 3600 AS hidden_insolvency_base_h, f.hidden_accounts,
       f.max_deviation_bps_f64 AS max_deviation_bps, f.beyond_threshold_s, f.max_staleness_s
FROM bt.oracle_lag_feeds f JOIN bt.runs r USING (run_id)
ORDER BY f.run_id, f.hidden_insolvency_base_s_f64 DESC, f.feed"""))

LIQ_DELAY = register_table(Table(
    "bt", "liquidations_with_delay", "Every liquidation of a run with its origin (observed on chain or "
    "simulated by the liquidator model), delay from first seen liquidatable, the model's reaction lag "
    "and its values in whole base currency (bt.liquidations, bt.runs).",
    (
        _RUN, _CHAIN,
        Column("block_number", "UBIGINT", "block of the liquidation"),
        Column("block_ts", "UBIGINT", "its timestamp, unix seconds"),
        Column("log_index", "UINTEGER", "observed: log index of its LiquidationCall, which tells apart "
               "liquidations of one account in one transaction (NULL: simulated)"),
        Column("origin", "VARCHAR", "observed | simulated"),
        Column("committed", "BOOLEAN", "changed the replayed state"),
        Column("user", "VARCHAR", "liquidated account"),
        Column("collateral_asset", "VARCHAR", "collateral seized"),
        Column("debt_asset", "VARCHAR", "debt repaid"),
        Column("liquidatable_since_block", "UBIGINT",
               "first block of the run of evaluations finding it liquidatable"),
        Column("delay_blocks", "UBIGINT", "block_number - liquidatable_since_block"),
        Column("reaction_blocks", "BIGINT", "simulated: block_number - decided_block"),
        _CUR,
        Column("debt_repaid_base", "DOUBLE", "debt repaid at the oracle price, base currency"),
        Column("bonus_base", "DOUBLE", "seized + protocol fee - repaid, base currency (NULL: the "
               "protocol fee is unknown, bt.liquidations.protocol_fee_raw)"),
        Column("profit_base", "DOUBLE", "simulated: liquidator profit after costs, base currency, at its "
               "trade prices (bt.liquidations.profit_value; NULL: observed)"),
        Column("tx_hash", "VARCHAR", "observed: its transaction"),
        Column("seq", "UBIGINT", "position in the run's liquidations, replay order (bt.liquidations.seq)"),
    ),
    "backtest.views", ("run_id", "seq"), kind="view", view_sql="""
SELECT l.run_id, l.chain_id, l.block_number, l.block_ts, l.log_index,
       CASE WHEN l.observed THEN 'observed' ELSE 'simulated' END AS origin, l.committed, l."user",
       l.collateral_asset, l.debt_asset, l.liquidatable_since_block, l.delay_blocks,
       CAST(l.block_number AS BIGINT) - CAST(l.decided_block AS BIGINT) AS reaction_blocks,
       r.base_currency,
       CAST(l.debt_repaid_value AS DOUBLE) / 10 ** r.base_currency_decimals AS debt_repaid_base,
       l.bonus_base_f64 AS bonus_base,
       CASE WHEN NOT l.observed THEN CAST(l.profit_value AS DOUBLE) / 10 ** r.base_currency_decimals END
           AS profit_base, l.tx_hash, l.seq
FROM bt.liquidations l JOIN bt.runs r USING (run_id)
ORDER BY l.run_id, l.seq"""))

VIEWS: tuple[Table, ...] = (RUN_OVERVIEW, DAILY_BAD_DEBT, HIDDEN_BY_FEED, LIQ_DELAY)
#: tables each view reads (the view is created only when all exist)
DEPENDS: dict[str, tuple[str, ...]] = {
    RUN_OVERVIEW.fqn: ("bt.runs", "bt.summaries"),
    DAILY_BAD_DEBT.fqn: ("bt.runs", "bt.summaries", "bt.bad_debt_accounts"),
    HIDDEN_BY_FEED.fqn: ("bt.runs", "bt.oracle_lag_feeds"),
    LIQ_DELAY.fqn: ("bt.runs", "bt.liquidations"),
}


def ensure_views(con: Any) -> list[str]:
    """Create (or replace) every view whose input tables exist on ``con``; returns their names."""
    have = {f"{s}.{n}" for s, n in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name = 'bt'").fetchall()}
    made = []
    for v in VIEWS:
        if all(d in have for d in DEPENDS[v.fqn]):
            con.execute(v.ddl())
            for stmt in v.comment_sql():
                con.execute(stmt)
            made.append(v.fqn)
    return made


# the tables the views read are registered with them: a process that imported this module alone
# listed the views in ingest.schema.registered_tables() without their inputs, and creating them
# (Warehouse.ensure) failed; at the end, as backtest.outputs imports this module at its top
from . import outputs as _outputs  # noqa: E402, F401
from .metrics import metric_tables as _metric_tables  # noqa: E402

_metric_tables()
