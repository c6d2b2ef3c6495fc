"""Metric cost benchmark: what each metric module adds to a historical replay.

Replays a 7-day window (blocks 19,000,001..19,050,399) of the cached 1x synthetic market
(``bench/.cache/synthetic-1x-<tag>.duckdb``, made by ``bench/replay.py``; seed 20260401: 50,000
borrowers, 20 reserves) read-only, once per metric set, and prints the replay's wall time (loading
excluded: the inputs are re-read for every run because a replay mutates its state) and the
difference against the baseline set ``bad_debt, liquidations``. ``oracle_lag`` needs a reference
path, which the synthetic market has not, so it is not measured here. Timings on a shared 2-core
machine are noisy: each set is run ``--repeat`` times (default 2) and the minimum is printed.

The default ``--db`` is the market ``bench/replay.py`` currently caches (its ``GEN_TAG``), not
any older one left in the cache, and the default scenario the 7-day one ``bench/replay.py`` writes
beside it (``--naive-days 7``, its default).

Usage::

    .venv/bin/python bench/metrics_cost.py [--db bench/.cache/synthetic-1x-g4.duckdb] [--repeat 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from backtest.api import load_inputs
from backtest.engine import Replay
from backtest.scenario import load_scenario
from ingest.warehouse import Warehouse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from replay import GEN_TAG  # noqa: E402

BASE = ("bad_debt", "liquidations")
SETS: tuple[tuple[str, ...], ...] = (
    BASE,
    (*BASE, "socialization"),
    (*BASE, "finality"),
    (*BASE, "fidelity"),
    (*BASE, "spiral"),
    (*BASE, "socialization", "finality", "fidelity", "spiral"),
)


def default_db(cache: Path = Path("bench/.cache")) -> str | None:
    """The 1x market of the current generator (``bench/replay.py``'s ``GEN_TAG``), if cached. The
    first of a sorted glob was the *oldest* tag left in the cache (g3 before g4): a stale market,
    measured without a word."""
    path = cache / f"synthetic-1x-{GEN_TAG}.duckdb"
    return str(path) if path.exists() else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default=default_db())
    ap.add_argument("--scenario", default=None, help="default: the 7-day toml beside the db")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    if args.db is None:
        raise SystemExit(f"no cached synthetic market (synthetic-1x-{GEN_TAG}): run bench/replay.py first")
    toml = args.scenario or args.db.replace(".duckdb", "-7d.toml")  # bench/replay.py --naive-days 7
    print(f"market {args.db}, scenario {toml}", flush=True)
    sc0 = load_scenario(toml)
    base_s = None
    for names in SETS:
        sc = dataclasses.replace(sc0, metrics=dataclasses.replace(sc0.metrics, names=names))
        best = float("inf")
        for _ in range(args.repeat):
            with Warehouse(args.db, read_only=True) as wh:
                sc_r, inputs = load_inputs(wh, sc)
            t = time.perf_counter()
            out = Replay(sc_r, inputs, "bench-metrics").run()
            best = min(best, time.perf_counter() - t)
        if base_s is None:
            base_s = best
        rows = sum(len(v) for t_, v in out.tables.items() if t_.name not in ("runs", "summaries"))
        print(f"{', '.join(names):70s} {best:7.2f} s  (+{best - base_s:5.2f} s, "
              f"{(best / base_s - 1) * 100:+5.1f} %)  bt rows {rows:,}", flush=True)


if __name__ == "__main__":
    main()
