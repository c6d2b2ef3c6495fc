"""Replay benchmark: a full historical replay of a synthetic Aave-v3-scale market.

Targets (issue 4): at 1x (>= 50,000 borrowers, 20 reserves, one year, >= 200,000 oracle rounds,
>= 2,000,000 position events) the full historical replay takes <= 60 s and <= 2 GB peak RSS on
the 2-core machine, and cost grows with events, not positions x price updates (curve at 1x, 2x,
4x positions; the naive every-position-every-update replay as the baseline ratio).

What it does:

1. generates the market with :func:`backtest.synthetic.generate` (seed 20260401) or reuses the
   cached file ``bench/.cache/synthetic-<scale>x-<tag>.duckdb`` (gitignored; ``--regen`` rebuilds),
   printing generation time and file size;
2. writes a historical scenario over the whole range (from the block after the market's set-up)
   and runs it through the engine's public API — the three steps of ``backtest.run(scenario,
   db=...)`` timed separately (``--api``: the one call) — in a fresh child process per
   measurement, so peak RSS
   (``ru_maxrss``) is that run's alone; the child's address space is capped (``--limit-gb``, default
   8) so a runaway replay fails with MemoryError instead of starving the shared machine;
3. reports wall time, events/s (protocol events the adapter applies + oracle rounds of the
   market's feeds in the window) and peak RSS per scale for the full year, then, on a shorter
   window (``--naive-days``, default 7), the indexed replay and the naive baseline
   (``naive=True``: every position at every price update) at every scale.

``--profile`` writes a cProfile of each run (``bench/.cache/*.prof``) and prints its top costs.
``--quick`` uses a 10 % market (5,000 borrowers, 200,000 actions, 36 days) for iteration.

Usage::

    .venv/bin/python bench/replay.py [--quick] [--scales 1,2,4] [--naive-days 7] [--regen]
                                     [--profile] [--limit-gb 8] [--skip-full] [--api]
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backtest.synthetic import SyntheticConfig, generate, market  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
#: bump when the generator's output changes, so stale cached files are not reused
GEN_TAG = "g6"
QUICK = dict(borrowers=5_000, suppliers=250, actions=200_000, days=36)


def config(scale: int, quick: bool) -> SyntheticConfig:
    return SyntheticConfig(scale=scale, **QUICK) if quick else SyntheticConfig(scale=scale)


def cached_market(scale: int, quick: bool, regen: bool) -> tuple[Path, dict]:
    """The generated warehouse for ``scale`` (generated if missing) and its generation figures."""
    CACHE.mkdir(parents=True, exist_ok=True)
    name = f"synthetic-{'quick-' if quick else ''}{scale}x-{GEN_TAG}"
    db, meta = CACHE / f"{name}.duckdb", CACHE / f"{name}.json"
    if db.exists() and meta.exists() and not regen:
        # earlier benchmark runs' bt results are leftovers, possibly from an older declaration of
        # the bt tables (which the writer refuses to mix with this version's): start afresh
        import duckdb

        with duckdb.connect(str(db)) as con:
            con.execute("DROP SCHEMA IF EXISTS bt CASCADE")
        return db, json.loads(meta.read_text())
    cfg = config(scale, quick)
    print(f"generating {db.name} ...", flush=True)
    rep = generate(db, cfg, progress=lambda m: print("  " + m, flush=True))
    info = {"seconds": rep.seconds, "file_bytes": rep.file_bytes, "position_events": rep.position_events,
            "oracle_rounds": rep.oracle_rounds, "borrowers": rep.borrowers, "users": rep.users,
            "rows": rep.rows, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    meta.write_text(json.dumps(info, indent=1))
    return db, info


def scenario(db: Path, cfg: SyntheticConfig, from_block: int, to_block: int, tag: str) -> Path:
    path = db.with_name(f"{db.stem}-{tag}.toml")
    path.write_text(
        f'name = "bench-replay-{tag}"\nchain_id = {cfg.chain_id}\nmode = "historical"\n\n'
        f"[window]\nfrom_block = {from_block}\nto_block = {to_block}\n\n"
        f'[market]\nprotocol = "aave_v3"\nsource = "{cfg.deployment}"\ndataset = "aave_v3"\nrules = "3.0"\n')
    return path


def count_events(db: Path, cfg: SyntheticConfig, from_block: int, to_block: int) -> tuple[int, int]:
    """(protocol events the adapter applies, oracle rounds of the market's feeds) in the window."""
    import duckdb

    from backtest.feed import event_sources
    from protocols.registry import get_adapter

    con = duckdb.connect(str(db), read_only=True)
    have = {f"{s}.{t}" for s, t in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables()").fetchall()}
    n = 0
    for src in event_sources(get_adapter("aave_v3"), "aave_v3"):
        if src.table in have:
            n += con.execute(f"SELECT count(*) FROM {src.table} WHERE chain_id=? AND source=? AND "
                             "role=? AND block_number BETWEEN ? AND ?",
                             [cfg.chain_id, cfg.deployment, src.role, from_block, to_block]).fetchall()[0][0]
    feeds = list(market(cfg).feeds)
    r = con.execute("SELECT count(*) FROM raw.oracle_rounds WHERE chain_id=? AND feed IN (SELECT unnest(?)) "
                    "AND block_number BETWEEN ? AND ?",
                    [cfg.chain_id, feeds, from_block, to_block]).fetchall()[0][0]
    con.close()
    return int(n), int(r)


def child(args: argparse.Namespace) -> None:
    """One measured run (in its own process): prints a JSON line with wall time per phase and peak
    RSS. The phases are exactly what ``backtest.run`` does (``--api`` calls it instead):
    ``load_inputs`` (checks + reading the warehouse + rebuilding the market at the window start),
    ``Replay.run`` and ``write_run`` (the bt rows, one transaction)."""
    limit = int(args.limit_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import backtest
    from backtest.api import derive_run_id, load_inputs, quiet_gc, replay_memory_limit
    from backtest.engine import Replay
    from backtest.outputs import write_run
    from backtest.scenario import load_scenario
    from ingest.version import code_version
    from ingest.warehouse import Warehouse

    prof = None
    if args.profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    t0 = time.perf_counter()
    phases: dict[str, float] = {}
    status, run_id, n_events = "ok", "", 0
    try:
        if args.api:
            run_id = backtest.run(args.scenario, db=args.db, naive=args.naive).run_id
        else:
            with Warehouse(args.db, memory_limit=replay_memory_limit(args.db)) as wh, quiet_gc():  # as run()
                # stream=True, as backtest.run: the window's events are read while replaying, so
                # "load" is the checks, the rebuild before the window, blocks and oracle rounds
                sc, inputs = load_inputs(wh, load_scenario(args.scenario), stream=True)
                phases["load_s"] = time.perf_counter() - t0
                version = code_version()
                run_id = derive_run_id(sc, inputs.data_sources, version, inputs.feed_rules)
                out = Replay(sc, inputs, run_id, naive=args.naive, code_version=version).run()
                n_events = out.record.events_applied
                phases["replay_s"] = time.perf_counter() - t0 - phases["load_s"]
                t1 = time.perf_counter()
                try:
                    write_run(wh, run_id, out.tables)
                except Exception as e:  # reported, not hidden: the replay figures stand on their own
                    first = str(e).splitlines()[0][:120]
                    status = f"replay ok, write_run failed: {type(e).__name__}: {first}"
                phases["write_s"] = time.perf_counter() - t1
    except MemoryError:
        status = f"MemoryError (address space capped at {args.limit_gb} GB)"
    wall = time.perf_counter() - t0
    if prof is not None:
        prof.disable()
        prof.dump_stats(args.profile)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall_s": wall, "peak_rss_mb": rss, "run_id": run_id, "status": status,
                      "events_applied": n_events, **phases}), flush=True)


def measure(db: Path, scen: Path, *, naive: bool, limit_gb: float, profile: Path | None,
            api: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--child", "--db", str(db), "--scenario", str(scen),
           "--limit-gb", str(limit_gb)]
    if naive:
        cmd.append("--naive")
    if api:
        cmd.append("--api")
    if profile is not None:
        cmd += ["--profile-out", str(profile)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = "\n".join(p.stderr.splitlines()[-15:])
        return {"status": f"failed (exit {p.returncode}): {tail}", "wall_s": float("nan"), "peak_rss_mb": 0.0}
    return json.loads(lines[-1])


def _phases(m: dict) -> str:
    ks = [k for k in ("load_s", "replay_s", "write_s") if k in m]
    return "(" + ", ".join(f"{k[:-2]} {m[k]:.1f}" for k in ks) + ")" if ks else ""


def top_costs(prof: Path, n: int = 15) -> None:
    st = pstats.Stats(str(prof))
    st.sort_stats("tottime").print_stats(n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--scales", default="1,2,4")
    ap.add_argument("--naive-days", type=float, default=7.0,
                    help="window (days) of the indexed-vs-naive curve at every scale; 0 skips it")
    ap.add_argument("--regen", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--limit-gb", type=float, default=8.0)
    ap.add_argument("--skip-full", action="store_true", help="skip the full-year replays")
    ap.add_argument("--api", action="store_true", help="time backtest.run() as one call (no phase split)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--scenario", help=argparse.SUPPRESS)
    ap.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--profile-out", dest="profile_out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.profile = args.profile_out
        return child(args)
    scales = [int(s) for s in args.scales.split(",") if s]
    args.regenerated = set()  # the scales --regen has rebuilt in this invocation
    print(f"replay benchmark ({'quick' if args.quick else 'full'}), pid {os.getpid()}, "
          f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    rows = []
    for scale in ([] if args.skip_full else scales):
        rows.append(_one(scale, args, None, naive=False))
    curve = []
    if args.naive_days > 0:
        for scale in scales:
            indexed = _one(scale, args, args.naive_days, naive=False)
            curve.append((indexed, _one(scale, args, args.naive_days, naive=True)))
    if rows:
        print("\nfull window")
        print("scale  users    events      wall_s  load_s  replay_s  events/s  peak_MiB  status")
        for r in rows:
            _row(r)
    if curve:
        print(f"\nfirst {args.naive_days:g} days, indexed then naive")
        print("scale  users    events      wall_s  load_s  replay_s  events/s  peak_MiB  status")
        for a, b in curve:
            _row(a)
            _row(b)
            ra, rb = a["m"].get("replay_s", a["m"]["wall_s"]), b["m"].get("replay_s", b["m"]["wall_s"])
            wall = b["m"]["wall_s"] / a["m"]["wall_s"]
            print(f"       naive / indexed: replay phase {rb / ra:.1f}x, wall {wall:.1f}x")


def _one(scale: int, args: argparse.Namespace, days: float | None, *, naive: bool) -> dict:
    # --regen rebuilds each scale's market once, at its first run (the full window's, or with
    # --skip-full the curve's): not again for the runs that follow on the same file
    db, gen = cached_market(scale, args.quick, args.regen and scale not in args.regenerated)
    args.regenerated.add(scale)
    cfg = config(scale, args.quick)
    to_block = cfg.last_block if days is None else cfg.first_block + int(days * 86_400 / cfg.block_time_s)
    ev, rr = count_events(db, cfg, cfg.first_block + 1, to_block)
    tag = ("full" if days is None else f"{days:g}d") + ("-naive" if naive else "")
    prof = CACHE / f"{db.stem}-{tag}.prof" if args.profile else None
    m = measure(db, scenario(db, cfg, cfg.first_block + 1, to_block, tag), naive=naive,
                limit_gb=args.limit_gb, profile=prof, api=args.api)
    print(f"{scale}x {tag}: {gen['users']:,} users ({gen['borrowers']:,} borrowers; generated in "
          f"{gen['seconds']['total']:.0f} s, {gen['file_bytes'] / 2**20:,.0f} MiB); {ev:,} protocol events + "
          f"{rr:,} rounds: {m['status']}, {m['wall_s']:.1f} s {_phases(m)}, "
          f"peak RSS {m['peak_rss_mb']:,.0f} MiB", flush=True)
    if prof is not None and prof.exists():
        top_costs(prof)
    return {"scale": scale, "users": gen["users"], "events": ev + rr, "m": m, "naive": naive}


def _row(r: dict) -> None:
    m = r["m"]
    print(f"{r['scale']}x{'n' if r['naive'] else ' '}   {r['users']:>7,}  {r['events']:>10,}  "
          f"{m['wall_s']:>6.1f}  "
          f"{m.get('load_s', float('nan')):>6.1f}  {m.get('replay_s', float('nan')):>8.1f}  "
          f"{r['events'] / m['wall_s']:>8,.0f}  {m['peak_rss_mb']:>8,.0f}  {m['status'][:50]}")

if __name__ == "__main__":
    main()
