#!/usr/bin/env python
"""Aave v3 adapter throughput: health evaluations and liquidation computations per second.

Exact Python integers, one core, fixed seed. Markets come from the adapter's own sampler
(``AaveV3Adapter.sample``: four reserves with 18/8/6/18 decimals, e-mode, isolation, random
indices and rates, users near liquidation); each account is evaluated repeatedly at the same
prices and timestamp — the replay's common case between two price updates. Issue 3's target:
at least 100,000 health evaluations/s on one core for a 3-reserve account.

    .venv/bin/python bench/aave_v3_health.py [--markets 200] [--seconds 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocols import get_adapter  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--markets", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=20261125)
    args = ap.parse_args()
    adapter = get_adapter("aave_v3")
    rng = random.Random(args.seed)
    samples = [adapter.sample(rng) for _ in range(args.markets)]
    work = [(s, u) for s in samples for u in s.users]

    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        for s, u in work:
            adapter.account(s.state, u, s.prices, s.timestamp)
        n += len(work)
    health_rate = n / (time.perf_counter() - t0)

    liq = []
    for s, u in work:
        h = adapter.account(s.state, u, s.prices, s.timestamp)
        if h.liquidatable and h.debt_value:
            liq.append((s, u))
    m, t0 = 0, time.perf_counter()
    while liq and time.perf_counter() - t0 < args.seconds:
        for s, u in liq:
            coll, debt = s.assets[0], s.assets[-1]
            adapter.liquidate(s.state, u, coll, debt, 2**256 - 1, s.prices, s.timestamp)
        m += len(liq)
    liq_rate = m / (time.perf_counter() - t0) if liq else 0.0
    print(f"aave_v3 adapter, {len(work)} accounts (1-4 reserves each) in {len(samples)} sampled "
          f"markets of 4 reserves (seed {args.seed})")
    print(f"  health evaluations: {health_rate:,.0f} /s   (target >= 100,000 /s)")
    print(f"  liquidation computations: {liq_rate:,.0f} /s   ({len(liq)} liquidatable accounts)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
