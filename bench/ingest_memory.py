#!/usr/bin/env python
"""Memory: the peak RSS of an ingest must not grow with the length of the range.

Two measurements, each run in a fresh subprocess that reports its own peak RSS (``VmHWM`` of
``/proc/self/status``, the kernel's high-water mark of the process's memory since its exec) as
it exits. (``ru_maxrss`` of a child is no good here: Linux carries the parent's RSS at fork/vfork
time into the child's maxrss, so every child would report at least this script's own RSS.)

* ``anvil``: a ~3,000-block anvil chain of constant density (see ``bench/_chain.py``: 33 Aave
  pool events + 1 Chainlink round per block), then ``deficit ingest --from A --to B
  --chunk-blocks 100`` (run as ``ingest.cli.main``, which the console script calls) over the
  first 1x = 300 blocks and over 10x = 3,000 blocks (fresh DB each time);
* ``cpu``: the in-memory CPU path of ``bench/ingest_cpu.py`` (the real ``engine._chunk`` fed
  from generated eth_getLogs bodies) over 1x = 3 and 10x = 30 chunks of 10,000 logs; each chunk
  is generated just before it is ingested and dropped after, so only the ingest can hold memory.

A streaming ingest holds one chunk at a time, so the 10x peak should equal the 1x peak. Each
measurement is made twice: "default" (the anvil mode: the CLI's own ``--memory-limit``, 256MB;
the cpu mode: ``Warehouse()``'s 1GB cap), and with ``SET memory_limit='256MB'`` (``--limit``)
applied to the warehouse connection by a bench-only wrapper. DuckDB keeps the blocks of the
tables it wrote in its buffer cache up to ``memory_limit``, so with a large cap the peak grows
with the amount written until it reaches the cap; with 256MB it stays flat. The 1x range must be
long enough to pass the warm-up: the cpu mode's default ``--cpu-base 30`` (300k logs, then 3M;
about 4 minutes per setting). The anvil mode's chain is too short for that, and at the CLI's
defaults its 10x run merges ranges into larger chunks than the 1x run (``--chunk-rows``), so it
shows the chunk size rather than the range length (bench/README.md).

    .venv/bin/python bench/ingest_memory.py            # both modes
    .venv/bin/python bench/ingest_memory.py --quick    # smaller ranges (1x/10x still)
    .venv/bin/python bench/ingest_memory.py --mode cpu
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

PY = sys.executable


def vm_hwm_mib() -> float:
    """This process's peak RSS so far (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_measured(args: list[str], setting: str = "") -> tuple[float, float, str, dict[str, int]]:
    """(peak RSS MiB, wall s, stdout, DuckDB memory by tag at the end) of
    ``python bench/ingest_memory.py <args>`` run as a child that reports its own VmHWM."""
    with tempfile.TemporaryDirectory() as tmp:
        hwm = Path(tmp) / "hwm"
        env = dict(os.environ, BENCH_HWM_FILE=str(hwm), BENCH_DUCKDB_SET=setting)
        t0 = time.perf_counter()
        p = subprocess.run([PY, str(HERE / "ingest_memory.py"), *args], capture_output=True,
                           text=True, cwd=ROOT, env=env)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"{args[:2]} failed ({p.returncode}):\n{p.stdout[-2000:]}\n"
                               f"{p.stderr[-3000:]}")
        doc = json.loads(hwm.read_text())
        return float(doc["hwm"]), wall, p.stdout, doc["duckdb"]


def _report_hwm(duck: dict[str, int] | None = None) -> None:
    path = os.environ.get("BENCH_HWM_FILE")
    if path:
        Path(path).write_text(json.dumps({"hwm": vm_hwm_mib(), "duckdb": duck or {}}))


def _apply_settings(con: object, settings: list[str]) -> None:
    for kv in settings:
        k, v = kv.split("=", 1)
        con.execute(f"SET {k}='{v}'")  # type: ignore[attr-defined]


def deficit_child(argv: list[str]) -> int:
    """``deficit ARGS`` in this process (the console script calls ingest.cli.main). Bench-only
    wrapping of the Warehouse: DuckDB settings from $BENCH_DUCKDB_SET (``k=v;k=v``) are applied
    when it opens, and DuckDB's own memory accounting is read just before it closes."""
    from ingest_cpu import duckdb_memory

    from ingest import warehouse
    from ingest.cli import main as deficit_main

    settings = [x for x in os.environ.get("BENCH_DUCKDB_SET", "").split(";") if x]
    seen: dict[str, int] = {}
    init, close = warehouse.Warehouse.__init__, warehouse.Warehouse.close

    def init_and_set(self: warehouse.Warehouse, *a: object, **kw: object) -> None:
        init(self, *a, **kw)  # type: ignore[arg-type]
        if not kw.get("read_only"):
            _apply_settings(self.con, settings)

    def close_and_record(self: warehouse.Warehouse) -> None:
        try:
            seen.update(duckdb_memory(self.con))
        except Exception:  # read-only or already closed: nothing to record
            pass
        close(self)

    warehouse.Warehouse.__init__ = init_and_set  # type: ignore[method-assign]
    warehouse.Warehouse.close = close_and_record  # type: ignore[method-assign]
    rc = deficit_main(argv)
    _report_hwm(seen)
    return rc


# --------------------------------------------------------------------------- cpu mode child

def cpu_child(n_chunks: int, chunk_logs: int, seed: int) -> None:
    from ingest_cpu import LogGen, run_config

    settings = [x for x in os.environ.get("BENCH_DUCKDB_SET", "").split(";") if x]
    g = LogGen(seed)

    def chunks():
        for _ in range(n_chunks):
            yield g.chunk(chunk_logs)  # made lazily; the previous one is garbage by then

    with tempfile.TemporaryDirectory() as tmp:
        r = run_config(chunks(), g.m, threads=None, db_path=Path(tmp) / "mem.duckdb",
                       settings=settings)
    print(json.dumps({"logs": r.logs, "chunks": r.chunks, "s": r.total_s}))
    _report_hwm(r.duckdb_memory)


def _duck(mem: dict[str, int]) -> str:
    """DuckDB memory at the end: total and the largest tags, MiB."""
    if not mem:
        return ""
    top = sorted(mem.items(), key=lambda kv: -kv[1])[:2]
    return (f"{sum(mem.values()) / 2**20:,.0f} MiB ("
            + ", ".join(f"{k.lower()} {v / 2**20:,.0f}" for k, v in top) + ")")


Row = tuple[str, str, str, int, float, float, str, str]


def mode_cpu(quick: bool, seed: int, setting: str, base: int = 3, chunk_logs: int = 10_000) -> list[Row]:
    chunk_logs = 5_000 if quick else chunk_logs
    base = 2 if quick else base
    rows = []
    for mult in (1, 10):
        n = base * mult
        rss, wall, out, duck = run_measured(["--child-cpu", str(n), "--chunk-logs", str(chunk_logs),
                                             "--seed", str(seed)], setting)
        doc = json.loads(out.strip().splitlines()[-1])
        rows.append(("cpu", setting or "default", f"{mult}x", doc["logs"], rss, wall,
                     f"{n} chunks x {chunk_logs:,} logs", _duck(duck)))
        print(f"  cpu {setting or 'default'} {mult:>2}x: {doc['logs']:,} logs in {n} chunks: "
              f"peak RSS {rss:,.0f} MiB ({wall:.1f} s)", flush=True)
    return rows


def mode_anvil(quick: bool, seed: int, settings: list[str]) -> list[Row]:
    from _chain import build_chain

    from ingest.devnet import Anvil

    blocks = 1000 if quick else 3000
    base = blocks // 10
    chunk = 50 if quick else 100
    rows = []
    # keep_states: the chainlink dataset reads phaseId() by eth_call at the range's last block,
    # which must still have state on the node (anvil's default window is shorter than 3,000)
    with tempfile.TemporaryDirectory() as tmpd, Anvil(keep_states=blocks + 100) as node:
        tmp = Path(tmpd)
        bc = build_chain(node.url, blocks=blocks, seed=seed, progress=False)
        dep = bc.write_deployments(tmp / "deployments.toml")
        print(f"  anvil chain: blocks {bc.first_block}..{bc.head}, {bc.logs:,} logs "
              f"({bc.build_s:.0f} s to build)", flush=True)
        for setting in settings:
            for mult in (1, 10):
                db = tmp / f"mem{mult}.duckdb"
                for f in (db, db.with_name(db.name + ".wal")):
                    if f.exists():
                        f.unlink()
                to = bc.first_block + base * mult - 1
                rss, wall, out, duck = run_measured([
                    "--child-deficit", "ingest", "--rpc", bc.url, "--deployments", str(dep),
                    "--head", "--db", str(db), "--chunk-blocks", str(chunk), "--from",
                    str(bc.first_block), "--to", str(to), "--json"], setting)
                doc = json.loads(out)
                rows.append(("anvil", setting or "default", f"{mult}x", int(doc["logs"]), rss, wall,
                             f"{base * mult:,} blocks, chunk {chunk}", _duck(duck)))
                print(f"  anvil {setting or 'default'} {mult:>2}x: blocks {bc.first_block}..{to}: "
                      f"{doc['logs']:,} logs: peak RSS {rss:,.0f} MiB ({wall:.1f} s)", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child-deficit"]:
        return deficit_child(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--mode", choices=("both", "cpu", "anvil"), default="both")
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--limit", default="256MB",
                    help="also run with DuckDB memory_limit=LIMIT ('' to skip; default 256MB)")
    ap.add_argument("--cpu-base", type=int, default=30,
                    help="chunks in the cpu mode's 1x run (default 30: 300k logs, past the warm-up; "
                    "10x runs ten times as many)")
    ap.add_argument("--cpu-chunk-logs", type=int, default=10_000,
                    help="logs per chunk in the cpu mode (default 10,000; `deficit ingest` merges "
                    "block ranges into chunks of about 50,000 rows by default)")
    ap.add_argument("--child-cpu", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--chunk-logs", type=int, default=10_000, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_cpu is not None:
        cpu_child(args.child_cpu, args.chunk_logs, args.seed)
        return 0
    settings = [""] + ([f"memory_limit={args.limit}"] if args.limit else [])
    print(f"ingest memory: peak RSS at 1x and 10x range, seed {args.seed}, DuckDB settings "
          f"{[s or 'default' for s in settings]}")
    rows: list[Row] = []
    if args.mode in ("both", "anvil"):
        rows += mode_anvil(args.quick, args.seed, settings)
    if args.mode in ("both", "cpu"):
        for setting in settings:
            rows += mode_cpu(args.quick, args.seed, setting, args.cpu_base, args.cpu_chunk_logs)
    print(f"\n{'mode':<6} {'duckdb':<19} {'range':<5} {'logs':>8} {'peak RSS MiB':>12} "
          f"{'wall s':>6}  {'what':<25} DuckDB memory at the end")
    for mode, setting, mult, logs, rss, wall, what, duck in rows:
        print(f"{mode:<6} {setting:<19} {mult:<5} {logs:>8,} {rss:>12,.0f} {wall:>6.1f}  "
              f"{what:<25} {duck}")
    print()
    for mode in ("anvil", "cpu"):
        for setting in settings:
            r = [x for x in rows if x[0] == mode and x[1] == (setting or "default")]
            if len(r) == 2:
                print(f"{mode} {setting or 'default'}: 10x/1x peak RSS = {r[1][4] / r[0][4]:.2f} "
                      f"({r[1][4] - r[0][4]:+,.0f} MiB for 10x the logs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
