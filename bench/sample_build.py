"""Time ``deficit sample build`` (seed 1) and print its figures: chain, ingest, total, file size.

    .venv/bin/python bench/sample_build.py [--seed N]

Most of the time is anvil mining ~7,800 blocks (anvil 1.7.1's cost per mined block grows with
the chain's length); the Python side (population, bots, ingest) takes ~20 s of CPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ingest.sample import build_sample


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        t0, cpu0 = time.monotonic(), time.process_time()
        sc = build_sample(Path(d) / "sample.duckdb", args.seed)
        wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    s = sc.stats
    print(f"seed {args.seed}: {s['blocks']:,} blocks, {s['liquidations']} liquidations, "
          f"{s['eth_usd_rounds']} ETH/USD rounds")
    print(f"build {wall:.1f} s wall ({cpu:.1f} s Python CPU), file {s['file_bytes'] / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
