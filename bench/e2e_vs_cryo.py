#!/usr/bin/env python
"""End to end on anvil: `deficit ingest` vs cryo on the same chain, range and contracts.

Builds a ~3,000-block anvil chain with ~100k mainnet-ABI events (see ``bench/_chain.py``:
``BenchBatchEmitter`` as the Aave v3 pool emitting ~33 pool events per block, and as the
aggregator behind a real ``TestAggregatorProxy`` emitting one Chainlink round per block), then
times, each run in a fresh subprocess with a fresh output:

* ``deficit ingest --rpc URL --deployments FILE --head --db X --chunk-blocks N --json``
  (blocks headers + aave_v3 + chainlink: decoded, validated, typed tables in DuckDB);
* ``cryo.freeze("logs", contract=[pool, aggregator], blocks=[a:b+1])`` to parquet (raw logs only);
* ``cryo.freeze(["blocks", "logs"], ...)``: cryo also fetching the block headers, which is
  closer to what `deficit ingest` does (it stores every header for the hash chain).

Each measurement is repeated ``--reps`` times (default 3) and the median is reported, with the
wall-clock ratio ours / cryo. anvil is always stopped (context manager), and started with
``--max-persisted-states 0``.

    .venv/bin/python bench/e2e_vs_cryo.py            # 3,000 blocks, ~105k logs, 3 reps
    .venv/bin/python bench/e2e_vs_cryo.py --quick    # 300 blocks, 1 rep
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _chain import SEED, BenchChain, build_chain  # noqa: E402

from ingest.devnet import Anvil  # noqa: E402

PY = sys.executable
# `deficit ingest` is ingest.cli.main (the console script forwards to it); run the module itself
# so that the figures measure the ingestor, not the start-up of other subcommands' packages
DEFICIT = [PY, "-m", "ingest.cli"]

CRYO_SNIPPET = """
import json, sys, time
t0 = time.perf_counter()
import cryo
t1 = time.perf_counter()
a = json.loads(sys.argv[1])
cryo.freeze(a["datatypes"], rpc=a["rpc"], blocks=[a["blocks"]], contract=a["contracts"],
            output_dir=a["out"], verbose=False, chunk_size=a["chunk"])
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "freeze_s": t2 - t1}))
"""


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(x) for x in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def _anvil_cpu(pid: int) -> float:
    """CPU seconds (user+sys) used so far by process ``pid`` and its descendants (node_modules'
    ``anvil`` is a node launcher that runs the real binary as a child)."""
    total = 0.0
    for p in _descendants(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def _run(cmd: list[str], anvil_pid: int) -> tuple[float, float, float, str]:
    """(wall s, child CPU s, anvil CPU s, stdout) of one subprocess run."""
    c0 = os.times()
    a0 = _anvil_cpu(anvil_pid)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    c1 = os.times()
    a1 = _anvil_cpu(anvil_pid)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    cpu = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
    return wall, cpu, a1 - a0, p.stdout


def run_ours(bc: BenchChain, dep: Path, db: Path, chunk: int, datasets: str,
             anvil_pid: int, chunk_rows: int | None = None) -> dict:
    for f in (db, db.with_name(db.name + ".wal")):
        if f.exists():
            f.unlink()
    cmd = [*DEFICIT, "ingest", "--rpc", bc.url, "--deployments", str(dep), "--head", "--db",
           str(db), "--chunk-blocks", str(chunk), "--from", str(bc.first_block), "--to",
           str(bc.head), "--json"]
    if datasets:
        cmd += ["--datasets", datasets]
    if chunk_rows is not None:
        cmd += ["--chunk-rows", str(chunk_rows)]
    wall, cpu, acpu, out = _run(cmd, anvil_pid)
    doc = json.loads(out)
    return {"wall": wall, "cpu": cpu, "anvil_cpu": acpu, "elapsed": doc["elapsed_s"],
            "logs": doc["logs"], "blocks": doc["blocks"], "warnings": doc.get("warnings", []),
            "rows": doc.get("rows_by_table", {}), "db_bytes": db.stat().st_size}


def run_cryo(bc: BenchChain, out: Path, datatypes: list[str], contracts: list[str], chunk: int,
             anvil_pid: int) -> dict:
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    arg = json.dumps({"datatypes": datatypes, "rpc": bc.url, "blocks": f"{bc.first_block}:{bc.head + 1}",
                      "contracts": contracts, "out": str(out), "chunk": chunk})
    wall, cpu, acpu, stdout = _run([PY, "-c", CRYO_SNIPPET, arg], anvil_pid)
    doc = json.loads(stdout.strip().splitlines()[-1])
    import duckdb

    files = sorted(str(p) for p in out.glob("*logs*.parquet"))
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet({files!r})").fetchall()[0][0] if files else 0
    size = sum(p.stat().st_size for p in out.glob("*.parquet"))
    return {"wall": wall, "cpu": cpu, "anvil_cpu": acpu, "elapsed": doc["freeze_s"], "logs": n,
            "bytes": size}


def profile_ours(bc: BenchChain, dep: Path, tmp: Path, chunk: int) -> None:
    import io
    import pstats

    db, prof = tmp / "prof.duckdb", tmp / "ingest.prof"
    cmd = [PY, "-m", "cProfile", "-o", str(prof), "-m", "ingest.cli", "ingest", "--rpc", bc.url,
           "--deployments", str(dep), "--head", "--db", str(db), "--chunk-blocks", str(chunk),
           "--from", str(bc.first_block), "--to", str(bc.head), "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-3000:])
    root = str(ROOT) + "/"
    for key, n in (("cumulative", 35), ("tottime", 20)):
        s = io.StringIO()
        pstats.Stats(str(prof), stream=s).sort_stats(key).print_stats(n)
        lines = s.getvalue().splitlines()
        i = next((k for k, ln in enumerate(lines) if ln.strip().startswith("ncalls")), 0)
        print(f"\ncProfile of `deficit ingest` ({key}, top {n}):")
        print("\n".join(ln.replace(root, "") for ln in lines[i:] if ln.strip()))


def _med(rs: list[dict], k: str) -> float:
    return statistics.median(r[k] for r in rs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="300 blocks, 1 repetition")
    ap.add_argument("--blocks", type=int, default=3000)
    ap.add_argument("--events-per-block", type=int, default=33, help="pool events per block")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--chunk-blocks", type=int, default=1000,
                    help="--chunk-blocks for deficit and chunk_size for cryo (default 1000)")
    ap.add_argument("--chunk-rows", type=int, default=None,
                    help="--chunk-rows for deficit (default: the CLI's; 0: one range per transaction)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--keep", default=None, help="keep outputs in this directory")
    ap.add_argument("--profile", action="store_true",
                    help="also run `deficit ingest` once under cProfile and print the top functions")
    args = ap.parse_args(argv)
    blocks = 300 if args.quick else args.blocks
    reps = 1 if args.quick else args.reps

    import cryo
    print(f"e2e vs cryo: {blocks:,} blocks x ({args.events_per_block} pool events + 1 round), "
          f"chunk {args.chunk_blocks} blocks (rows {args.chunk_rows}), {reps} rep(s), seed {args.seed}, "
          f"cryo {cryo.__version__}")
    with tempfile.TemporaryDirectory() as tmpd, Anvil() as node:
        tmp = Path(args.keep or tmpd)
        tmp.mkdir(parents=True, exist_ok=True)
        anvil_pid = node._proc.pid if node._proc else -1
        bc = build_chain(node.url, blocks=blocks, pool_events_per_block=args.events_per_block,
                         seed=args.seed)
        print(f"chain: blocks {bc.first_block}..{bc.head}, {bc.logs:,} bench logs "
              f"({bc.pool_logs:,} pool, {bc.feed_logs:,} feed), built in {bc.build_s:.1f} s")
        dep_all = bc.write_deployments(tmp / "deployments.toml")
        dep_pool = bc.write_deployments(tmp / "deployments_pool.toml", chainlink=False)
        cases = [
            ("aave_v3 + chainlink", "ours", dict(dep=dep_all, datasets="")),
            ("aave_v3 + chainlink", "cryo logs", dict(datatypes=["logs"],
                                                      contracts=[bc.pool, bc.aggregator])),
            ("aave_v3 + chainlink", "cryo blocks+logs", dict(datatypes=["blocks", "logs"],
                                                             contracts=[bc.pool, bc.aggregator])),
            ("aave_v3 only", "ours", dict(dep=dep_pool, datasets="aave_v3")),
            ("aave_v3 only", "cryo logs", dict(datatypes=["logs"], contracts=[bc.pool])),
        ]
        results: dict[tuple[str, str], list[dict]] = {(c, w): [] for c, w, _ in cases}
        for rep in range(reps):
            for case, who, kw in cases:
                if who == "ours":
                    r = run_ours(bc, kw["dep"], tmp / "ours.duckdb", args.chunk_blocks,
                                 kw["datasets"], anvil_pid, args.chunk_rows)
                else:
                    r = run_cryo(bc, tmp / "cryo", kw["datatypes"], kw["contracts"],
                                 args.chunk_blocks, anvil_pid)
                results[(case, who)].append(r)
                print(f"  rep {rep + 1} {case:<20} {who:<17} wall {r['wall']:6.2f} s  "
                      f"in-process {r['elapsed']:6.2f} s  logs {r['logs']:,}  "
                      f"cpu {r['cpu']:.1f} s  anvil cpu {r['anvil_cpu']:.1f} s", flush=True)
        # sanity: everybody saw the same logs
        want_all, want_pool = bc.logs, bc.pool_logs
        for (case, who), rs in results.items():
            want = want_all if case.startswith("aave_v3 +") else want_pool
            if who == "ours":
                # chainlink: + the aggregator's first round emitted before first_block? no: all in range
                assert all(r["logs"] == want for r in rs), (case, who, [r["logs"] for r in rs], want)
            else:
                assert all(r["logs"] == want for r in rs), (case, who, [r["logs"] for r in rs], want)
        warnings = sorted({w for rs in results.values() for r in rs for w in r.get("warnings", [])})
        if args.profile:
            profile_ours(bc, dep_all, tmp, args.chunk_blocks)

    print(f"\nmedian of {reps} run(s); wall = subprocess wall clock incl. interpreter start-up; "
          "in-process = the tool's own timer")
    hdr = (f"{'case':<20} {'tool':<17} {'logs':>8} {'wall s':>7} {'logs/s':>8} {'in-proc s':>9} "
           f"{'logs/s':>8} {'cpu s':>6} {'anvil cpu s':>11} {'ours/this':>9}")
    print(hdr)
    print("-" * len(hdr))
    for (case, who), rs in results.items():
        ours = results[(case, "ours")]
        w, e = _med(rs, "wall"), _med(rs, "elapsed")
        ratio = _med(ours, "wall") / w
        print(f"{case:<20} {who:<17} {rs[0]['logs']:>8,} {w:>7.2f} {rs[0]['logs'] / w:>8,.0f} "
              f"{e:>9.2f} {rs[0]['logs'] / e:>8,.0f} {_med(rs, 'cpu'):>6.1f} "
              f"{_med(rs, 'anvil_cpu'):>11.1f} {ratio:>9.2f}")
    for w in warnings:
        print(f"  warning from ingest: {w}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
