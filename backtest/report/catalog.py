"""Listing and comparing stored runs: ``deficit runs`` and ``deficit compare RUN_A RUN_B``.

Both read the warehouse only (``bt.runs``, ``bt.summaries``) and open it read-only. ``compare``
diffs every headline figure of two runs (``b - a``, and the change in percent of ``a`` where
``a`` is a non-zero number), plus the identity fields that differ (scenario hash, code version,
window, the window's end block hashes and the ingest runs read, mode, base currency), so a reader
sees at once whether the two runs are comparable: two runs of one scenario over the same blocks
whose data was re-ingested in between (a reorg, a fix) differ in their data, not their parameters.

Money is in each run's base currency (``bt.runs.base_currency``: USD for Aave v3, ETH for Aave
v2). Summary figures are named after it (``end_total_oracle_usd`` in a USD run,
``end_total_oracle_eth`` in an ETH run; :func:`currency_name` maps one to the other), ``deficit
runs`` shows each run's currency beside its figures, and ``compare`` computes no difference
between runs of different base currencies (their values are shown side by side, each labelled
with its currency): an ETH figure is never subtracted from a USD one.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import BacktestError, InputError
from ..metrics.base import currency_name

__all__ = ["list_runs", "compare_runs", "open_read_only", "currency_name", "run_currency", "COMMANDS",
           "HEADLINE"]

#: figures shown by ``deficit runs`` (metric, name, column title); a ``_usd`` name stands for the
#: run's base currency (:func:`currency_name`), shown in the table's ``currency`` column (``cur``)
HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("bad_debt", "end_total_oracle_usd", "bad debt end (cur)"),
    ("bad_debt", "peak_unrealized_oracle_usd", "peak unrealized (cur)"),
    ("liquidations", "observed_count", "liq obs"),
    ("liquidations", "simulated_count", "liq sim"),
    ("oracle_lag", "hidden_insolvency_usd_h", "hidden cur*h"),
    ("fidelity", "recall", "recall"),
)


def run_currency(row: dict[str, Any]) -> tuple[str, int]:
    """``(base_currency, base_currency_decimals)`` of a ``bt.runs`` row; InputError when the row
    has none (a warehouse written before ``bt.runs`` recorded them: ``deficit migrate`` it)."""
    cur, dec = row.get("base_currency"), row.get("base_currency_decimals")
    if not isinstance(cur, str) or not cur or not isinstance(dec, int) or isinstance(dec, bool):
        raise InputError(
            f"run {row.get('run_id')!r} does not record its base currency (bt.runs.base_currency / "
            "base_currency_decimals missing: a warehouse from before they existed); run `deficit "
            "migrate` and the backtest again"
        )
    return cur, dec

_RUN_COLS = (
    "run_id",
    "scenario",
    "scenario_sha256",
    "mode",
    "chain_id",
    "base_currency",
    "base_currency_decimals",
    "from_block",
    "to_block",
    "from_block_hash",
    "to_block_hash",
    "data_sources",
    "metrics",
    "code_version",
    "status",
    "scenario_path",
)


def open_read_only(db: str, *, none_without_runs: bool = False) -> Any:
    """A read-only :class:`ingest.warehouse.Warehouse` holding ``bt.runs`` (InputError otherwise;
    ``none_without_runs``: None for a warehouse that opens but has no bt tables yet)."""
    from ingest.errors import WarehouseError
    from ingest.warehouse import Warehouse

    if db != ":memory:" and not Path(db).exists():
        raise InputError(f"warehouse {db} does not exist; pass --db")
    try:
        wh = Warehouse(db, read_only=True)
    except WarehouseError as e:
        raise InputError(str(e)) from None
    n = wh.con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name='bt' AND table_name IN ('runs', 'summaries')"
    ).fetchall()[0][0]
    if n != 2:
        wh.close()
        if none_without_runs:
            return None
        raise InputError(f"{db} has no backtest runs (bt.runs); run one with `deficit run SCENARIO.toml`")
    return wh


def _summaries(con: Any, run_ids: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {r: {} for r in run_ids}
    for rid, metric, name, text in con.execute(
        "SELECT run_id, metric, name, value_text FROM bt.summaries WHERE run_id IN (SELECT unnest(?)) "
        "ORDER BY run_id, metric, name",
        [list(run_ids)],
    ).fetchall():
        out[str(rid)].setdefault(str(metric), {})[str(name)] = json.loads(text)
    return out


def _run_rows(con: Any, run_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    have = {d[0] for d in con.execute("SELECT * FROM bt.runs LIMIT 0").description}
    if not {"base_currency", "base_currency_decimals"} <= have:
        run_currency({})  # raises: the warehouse predates bt.runs.base_currency
    q = f"SELECT {', '.join(_RUN_COLS)} FROM bt.runs"
    args: list[Any] = []
    if run_ids is not None:
        q += " WHERE run_id IN (SELECT unnest(?))"
        args.append(list(run_ids))
    q += " ORDER BY scenario, run_id"
    rows = [dict(zip(_RUN_COLS, r, strict=True)) for r in con.execute(q, args).fetchall()]
    for r in rows:
        run_currency(r)
    return rows


def list_runs(db: str) -> list[dict[str, Any]]:
    """Every run with its identity, base currency and headline figures (:data:`HEADLINE`, keyed
    ``metric.name`` by the names the run stored: ``bad_debt.end_total_oracle_eth`` for an ETH
    run), sorted. Runs of different base currencies are listed, never added up."""
    wh = open_read_only(db, none_without_runs=True)
    if wh is None:  # nothing run yet: no runs, as with an empty bt.runs
        return []
    try:
        runs = _run_rows(wh.con)
        summ = _summaries(wh.con, [r["run_id"] for r in runs])
    finally:
        wh.close()
    for r in runs:
        r["data_sources"] = list(r["data_sources"] or [])
        r["metrics"] = list(r["metrics"] or [])
        s = summ[r["run_id"]]
        cur = r["base_currency"]
        r["headline"] = {
            f"{m}.{currency_name(n, cur)}": s.get(m, {}).get(currency_name(n, cur))
            for m, n, _ in HEADLINE
            if m in s
        }
    return runs


def _delta(a: Any, b: Any) -> tuple[Any, Any]:
    num = (int, float)
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, num) or not isinstance(b, num):
        return None, None
    if not (math.isfinite(a) and math.isfinite(b)):  # no difference of an infinite or NaN figure
        return None, None
    d = Decimal(str(b)) - Decimal(str(a))
    diff: int | float = int(d) if isinstance(a, int) and isinstance(b, int) else float(d)
    pct = float(d * 100 / abs(Decimal(str(a)))) if a else None
    return diff, pct


def compare_runs(db: str, run_a: str, run_b: str) -> dict[str, Any]:
    """Identity differences and every figure of the two runs with ``b - a`` and percent.

    ``currency``: each run's base currency. Two runs of different base currencies (an Aave v3 run
    in USD, an Aave v2 run in ETH) are not comparable in money: their figures are listed side by
    side but no ``diff``/``pct`` is computed for any of them (``comparable`` false, ``note`` says
    why), so no ETH value is subtracted from a USD one."""
    wh = open_read_only(db)
    try:
        rows = {r["run_id"]: r for r in _run_rows(wh.con, [run_a, run_b])}
        for rid in (run_a, run_b):
            if rid not in rows:
                known = [
                    x[0]
                    for x in wh.con.execute("SELECT run_id FROM bt.runs ORDER BY run_id LIMIT 20").fetchall()
                ]
                raise InputError(f"run {rid!r} is not in {db} (runs: {known or 'none'})")
        summ = _summaries(wh.con, [run_a, run_b])
    finally:
        wh.close()
    ident = {}
    for k in ("scenario", "scenario_sha256", "mode", "chain_id", "base_currency", "base_currency_decimals",
              "from_block", "to_block", "from_block_hash", "to_block_hash", "data_sources", "code_version"):
        a, b = rows[run_a][k], rows[run_b][k]
        if k == "data_sources":
            a, b = list(a or []), list(b or [])
        ident[k] = {"a": a, "b": b, "same": a == b}
    cur = {"a": rows[run_a]["base_currency"], "b": rows[run_b]["base_currency"]}
    comparable = cur["a"] == cur["b"] and ident["base_currency_decimals"]["same"]
    figures = []
    sa, sb = summ[run_a], summ[run_b]
    for m in sorted(set(sa) | set(sb)):
        for n in sorted(set(sa.get(m, {})) | set(sb.get(m, {}))):
            a, b = sa.get(m, {}).get(n), sb.get(m, {}).get(n)
            diff, pct = _delta(a, b) if comparable else (None, None)
            # a figure null in one run and absent from the other differs; NaN is NaN
            present = (n in sa.get(m, {}), n in sb.get(m, {}))
            same = a == b or (isinstance(a, float) and isinstance(b, float)
                              and math.isnan(a) and math.isnan(b))
            figures.append(
                {"metric": m, "name": n, "a": a, "b": b, "diff": diff, "pct": pct,
                 "changed": not same or present[0] != present[1]}
            )
    note = None if comparable else (
        f"the runs are in different base currencies ({run_a}: {cur['a']}, {run_b}: {cur['b']}): "
        "figures are shown side by side, no difference is computed"
    )
    return {"a": run_a, "b": run_b, "identity": ident, "currency": cur, "comparable": comparable,
            "note": note, "figures": figures}


# ----------------------------------------------------------------------------- commands


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        s = f"{v:,.{digits}f}"
        # a non-zero amount that rounds to zero keeps significant digits (the report's rule):
        # a bad debt going from $0.001 to $0.004 read '0.00 -> 0.00, b - a 0.00'
        if v and math.isfinite(v) and not any(ch in "123456789" for ch in s):
            s = f"{v:.{max(digits, 4)}g}"
        # a ratio below 1 never reads 1 (deficit runs' recall of 0.99999 read '1.00', perfect)
        while 0 < abs(v) < 1 and abs(float(s.replace(",", ""))) >= 1 and digits < 17:
            digits += 1
            s = f"{v:,.{digits}f}"
        return s
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _add_runs(sub: Any) -> None:
    p = sub.add_parser("runs", help="list the backtest runs in the warehouse with their headline figures")
    p.add_argument("--db", default=None, help="warehouse file (default data/warehouse.duckdb)")
    p.add_argument("--json", action="store_true", help="print JSON")


def _cmd_runs(args: argparse.Namespace) -> int:
    from ingest.warehouse import DEFAULT_DB

    try:
        runs = list_runs(str(args.db or DEFAULT_DB))
    except BacktestError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    if args.json:
        sys.stdout.write(json.dumps(runs, indent=2, sort_keys=True, default=str) + "\n")
        return 0
    head = ["run_id", "scenario", "mode", "window", "status", "cur"] + [t for _, _, t in HEADLINE]
    table = [head]
    for r in runs:
        window = f"{r['from_block']}..{r['to_block']}"
        cur = r["base_currency"]
        table.append(
            [r["run_id"], r["scenario"], r["mode"], window, r["status"], cur]
            + [
                _fmt(r["headline"].get(f"{m}.{currency_name(n, cur)}"), _digits(cur))
                for m, n, _ in HEADLINE
            ]
        )
    _print_table(table)
    sys.stdout.write(f"{len(runs)} run(s)\n")
    return 0


def _both(a: Any, b: Any, digits_a: int, digits_b: int) -> tuple[str, str]:
    """``a`` and ``b`` as :func:`_fmt` shows them, with more decimals while two different numbers
    would read the same (a recall of 0.99999 against 1.0 read '1.00  1.00')."""
    sa, sb = _fmt(a, digits_a), _fmt(b, digits_b)
    num = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    d = digits_a
    while num and digits_a == digits_b and sa == sb and a != b and d < 17:
        d += 1
        sa, sb = _fmt(a, d), _fmt(b, d)
    return sa, sb


def _pct(p: float | None) -> str:
    """A change in percent: 2 decimals, significant digits when a non-zero change would read
    '+0.00' (a bad debt going from 1,000,000.00 to 1,000,000.01)."""
    if p is None:
        return "-"
    s = f"{p:+.2f}"
    if p and math.isfinite(p) and not any(ch in "123456789" for ch in s):
        s = f"{p:+.2g}"
    return s


def _digits(currency: str) -> int:
    """Decimals shown for a float in ``currency``: cents for USD, 4 for ETH (and any other)."""
    return 2 if currency == "USD" else 4


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        sys.stdout.write("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")


def _add_compare(sub: Any) -> None:
    p = sub.add_parser("compare", help="diff the headline figures of two runs (b - a)")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--db", default=None, help="warehouse file (default data/warehouse.duckdb)")
    p.add_argument("--all", action="store_true", help="also list figures that did not change")
    p.add_argument("--json", action="store_true", help="print JSON")


def _cmd_compare(args: argparse.Namespace) -> int:
    from ingest.warehouse import DEFAULT_DB

    try:
        res = compare_runs(str(args.db or DEFAULT_DB), args.run_a, args.run_b)
    except BacktestError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    if args.json:
        sys.stdout.write(json.dumps(res, indent=2, sort_keys=True, default=str) + "\n")
        return 0
    out = sys.stdout
    ca, cb = res["currency"]["a"], res["currency"]["b"]
    out.write(f"a = {res['a']} (values in {ca})\nb = {res['b']} (values in {cb})\n")
    dec = res["identity"]["base_currency_decimals"]
    units = sorted({(ca, dec["a"]), (cb, dec["b"])})
    # *_value figures are integers in the currency's smallest unit: '409,074,251,400' of bad debt
    # under 'values in USD' is $4,090.74, not $409 billion
    out.write("units: " + "; ".join(f"*_{c.lower()} figures in whole {c}, *_value figures in units of "
                                    f"10^-{d} {c}" for c, d in units) + "\n")
    for k, v in res["identity"].items():
        if not v["same"]:
            out.write(f"  {k}: {v['a']} -> {v['b']}\n")
    if res["note"]:
        out.write(f"note: {res['note']}\n")
    rows = [["figure", "a", "b", "b - a", "%"]]
    for f in res["figures"]:
        if f["changed"] or args.all:
            rows.append(
                [
                    f"{f['metric']}.{f['name']}",
                    *_both(f["a"], f["b"], _digits(ca), _digits(cb)),
                    _fmt(f["diff"], _digits(ca)),
                    _pct(f["pct"]),
                ]
            )
    if len(rows) > 1:
        _print_table(rows)
    n = sum(f["changed"] for f in res["figures"])
    out.write(f"{n} of {len(res['figures'])} figures differ\n")
    return 0


COMMANDS: tuple[tuple[str, Any, Any], ...] = (
    ("runs", _add_runs, _cmd_runs),
    ("compare", _add_compare, _cmd_compare),
)
