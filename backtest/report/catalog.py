"""Listing and comparing stored runs: ``deficit runs`` and ``deficit compare RUN_A RUN_B``.

Both read the warehouse only (``bt.runs``, ``bt.summaries``) and open it read-only. ``compare``
diffs every headline figure of two runs (``b - a``, and the change in percent of ``a`` where
``a`` is a non-zero number), plus the identity fields that differ (scenario hash, code version,
window, mode), so a reader sees at once whether the two runs are comparable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import BacktestError, InputError

__all__ = ["list_runs", "compare_runs", "open_read_only", "COMMANDS", "HEADLINE"]

#: figures shown by ``deficit runs`` (metric, name, column title)
HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("bad_debt", "end_total_oracle_usd", "bad debt end USD"),
    ("bad_debt", "peak_unrealized_oracle_usd", "peak unrealized USD"),
    ("liquidations", "observed_count", "liq obs"),
    ("liquidations", "simulated_count", "liq sim"),
    ("oracle_lag", "hidden_insolvency_usd_h", "hidden USD*h"),
    ("fidelity", "recall", "recall"),
)

_RUN_COLS = (
    "run_id",
    "scenario",
    "scenario_sha256",
    "mode",
    "chain_id",
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


def open_read_only(db: str) -> Any:
    """A read-only :class:`ingest.warehouse.Warehouse` holding ``bt.runs`` (InputError otherwise)."""
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
    q = f"SELECT {', '.join(_RUN_COLS)} FROM bt.runs"
    args: list[Any] = []
    if run_ids is not None:
        q += " WHERE run_id IN (SELECT unnest(?))"
        args.append(list(run_ids))
    q += " ORDER BY scenario, run_id"
    return [dict(zip(_RUN_COLS, r, strict=True)) for r in con.execute(q, args).fetchall()]


def list_runs(db: str) -> list[dict[str, Any]]:
    """Every run with its identity and headline figures (:data:`HEADLINE`), sorted."""
    wh = open_read_only(db)
    try:
        runs = _run_rows(wh.con)
        summ = _summaries(wh.con, [r["run_id"] for r in runs])
    finally:
        wh.close()
    for r in runs:
        r["data_sources"] = list(r["data_sources"] or [])
        r["metrics"] = list(r["metrics"] or [])
        s = summ[r["run_id"]]
        r["headline"] = {f"{m}.{n}": s.get(m, {}).get(n) for m, n, _ in HEADLINE if m in s}
    return runs


def _delta(a: Any, b: Any) -> tuple[Any, Any]:
    num = (int, float)
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, num) or not isinstance(b, num):
        return None, None
    d = Decimal(str(b)) - Decimal(str(a))
    diff: int | float = int(d) if isinstance(a, int) and isinstance(b, int) else float(d)
    pct = float(d * 100 / abs(Decimal(str(a)))) if a else None
    return diff, pct


def compare_runs(db: str, run_a: str, run_b: str) -> dict[str, Any]:
    """Identity differences and every figure of the two runs with ``b - a`` and percent."""
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
    for k in ("scenario", "scenario_sha256", "mode", "chain_id", "from_block", "to_block", "code_version"):
        a, b = rows[run_a][k], rows[run_b][k]
        ident[k] = {"a": a, "b": b, "same": a == b}
    figures = []
    sa, sb = summ[run_a], summ[run_b]
    for m in sorted(set(sa) | set(sb)):
        for n in sorted(set(sa.get(m, {})) | set(sb.get(m, {}))):
            a, b = sa.get(m, {}).get(n), sb.get(m, {}).get(n)
            diff, pct = _delta(a, b)
            figures.append(
                {"metric": m, "name": n, "a": a, "b": b, "diff": diff, "pct": pct, "changed": a != b}
            )
    return {"a": run_a, "b": run_b, "identity": ident, "figures": figures}


# ----------------------------------------------------------------------------- commands


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}"
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
    head = ["run_id", "scenario", "mode", "window", "status"] + [t for _, _, t in HEADLINE]
    table = [head]
    for r in runs:
        window = f"{r['from_block']}..{r['to_block']}"
        table.append(
            [r["run_id"], r["scenario"], r["mode"], window, r["status"]]
            + [_fmt(r["headline"].get(f"{m}.{n}")) for m, n, _ in HEADLINE]
        )
    _print_table(table)
    sys.stdout.write(f"{len(runs)} run(s)\n")
    return 0


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
    out.write(f"a = {res['a']}\nb = {res['b']}\n")
    for k, v in res["identity"].items():
        if not v["same"]:
            out.write(f"  {k}: {v['a']} -> {v['b']}\n")
    rows = [["figure", "a", "b", "b - a", "%"]]
    for f in res["figures"]:
        if f["changed"] or args.all:
            rows.append(
                [
                    f"{f['metric']}.{f['name']}",
                    _fmt(f["a"]),
                    _fmt(f["b"]),
                    _fmt(f["diff"]),
                    "-" if f["pct"] is None else f"{f['pct']:+.2f}",
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
