"""A seeded synthetic Aave-v3-scale market, written as a real warehouse (benchmarks, tests).

:func:`generate` writes a DuckDB file in exactly the ``raw.*`` / ``meta.*`` format ``deficit
ingest`` produces (tables created from the same declarations with
:meth:`ingest.warehouse.Warehouse.ensure`), so a replay reads it through the same path as real
data (:mod:`backtest.feed`). One file holds, for one synthetic chain:

* ``raw.blocks``: every block of the year (12 s blocks), hash-linked (``parent_hash`` is the
  previous block's hash), ``base_fee_per_gas_wei`` a deterministic daily cycle (5–35 gwei) plus
  a jitter below 0.02 gwei, all ``finalized``;
* ``raw.oracle_rounds`` (+ ``raw.chainlink_answer_updated``, ``raw.oracle_phases``, and
  ``raw.oracle_feeds`` with each feed's deviation threshold and heartbeat): one feed per
  reserve (USD, 8 decimals), published Chainlink-OCR-style from a simulated price path: a round is
  published at a grid point (every :attr:`SyntheticConfig.grid_s` seconds) when the answer moved
  by at least the feed's deviation threshold since the last round, or the last round's on-chain
  ``updatedAt`` is a heartbeat old; it lands 0–2 blocks later (transmission latency), each in its
  own transaction, and its ``updatedAt`` is that block's timestamp (the aggregator's
  ``AnswerUpdated`` carries ``block.timestamp``);
* the Aave v3 (rules v3.0) market's decoded event tables ``raw.aave_v3_*``: the oracle's
  ``FallbackOracleUpdated``/``AssetSourceUpdated`` (asset -> feed)/``BaseCurrencySet``, the
  configurator's reserve listing (token ``Initialized``, ``ReserveInitialized``, collateral
  parameters, borrowing, reserve factor, protocol fee, e-mode categories), then user
  transactions — ``Supply``, ``Borrow``, ``Repay``, ``Withdraw`` (the *position events*) each
  with the logs the v3.0.2 Pool emits, in its order (``ReserveDataUpdated``, the scaled token's
  ``Mint``/``Burn`` with ``value``, ``balanceIncrease`` and ``index`` as
  ``ScaledBalanceTokenBase._mintScaled``/``_burnScaled`` compute them,
  ``ReserveUsedAsCollateralEnabled``/``Disabled``), plus ``UserEModeSet``; log indices leave
  gaps where the ERC-20 ``Transfer`` logs (not ingested) would be;
* ``meta.checkpoints`` (coverage of every dataset source over the whole range, under the
  fingerprint a real ingest of this version records) and one
  ``meta.runs`` row. ``raw.logs`` (the undecoded copy of each log) is created but left empty: the
  replay never reads it, and encoding ~7 million logs would only slow the benchmark down.

Consistency: indices, rates and scaled balances are computed with the adapter's own rules
(:mod:`protocols.aave_v3.reserve_logic`: ``cache``, ``update_state``, ``calculate_interest_rates``;
:mod:`protocols.fixed_point`: ``rayDiv``/``rayMul`` half-up), in chain order, so
``AaveV3Adapter.apply`` accepts every event and rebuilds exactly the generator's balances
(tests/backtest/test_synthetic.py replays a small market and compares).

Distributions (all draws from :class:`random.Random` streams seeded from ``sha256(seed, name)``;
floats only for *choices* — every amount written is an exact integer):

* prices: 20 assets in five groups — ETH and three liquid-staking tokens (LSTs follow the ETH
  factor plus a small idiosyncratic term), two BTC tokens, six USD stablecoins (mean-reverting log
  price around 1, Ornstein–Uhlenbeck with a one-day half-life), eight governance/DeFi tokens. Log
  returns per grid step: ``vol * sqrt(dt) * (rho * m + sqrt(1 - rho^2) * z) - vol^2 dt / 2`` with
  a common market factor ``m`` Student-t (4 degrees of freedom, unit variance: fat tails and
  joint crashes) and Gaussian idiosyncratic ``z``; vols and correlations in :data:`RESERVES`;
* users: ``borrowers`` (each has one profile: ETH-collateral/stable-debt, BTC/stable,
  stable/ETH, alt/stable, e-mode ETH (LST collateral, WETH debt) or e-mode stables), a target
  LTV usage uniform in [0.25, 0.9] of the allowed LTV, and an activity weight (Pareto, alpha 1.2);
  ``suppliers`` who only supply and withdraw liquidity. Position sizes are log-normal (borrower
  median 6,000 USD, sigma 1.6, at least 1,000 USD; supplier median 250,000 USD, sigma 1.2), capped at
  50 M USD;
* actions: ``actions`` position events after a one-day set-up (when every supplier makes a first
  deposit): each borrower joins at a block uniform over the first 80 % of the rest of the range
  (its first supply, then its first borrow within 300 blocks), and the other actions fall at
  blocks uniform between their user's join and the range's end, so activity grows over the
  year (1x: 8 %, 17 %, 31 % and 44 % of the position events in its four quarters, not uniform);
  a borrower's action follows its state
  (no collateral -> supply; no debt -> borrow (always the first time); else repay 45 %, borrow
  more 25 % if below target, supply more 15 %, withdraw 15 % if it keeps usage below 90 % of
  the LTV capacity; a borrower above 95 % of its liquidation threshold repays). Borrows never
  exceed the reserve's available liquidity nor the LTV at the current oracle answers.

``scale`` multiplies borrowers, suppliers and actions; the price path and oracle rounds do not
change with it (same seed), so benchmarks can separate cost per event from positions x updates.
Not generated: liquidations, flash loans, stable-rate debt, isolation mode, aToken transfers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import os
import random
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from ingest.datasets import asked_fingerprint
from ingest.datasets.aave_v3 import AaveV3
from ingest.datasets.base import LOGS
from ingest.datasets.blocks import BLOCKS
from ingest.datasets.chainlink import ORACLE_PHASES, ORACLE_ROUNDS, Chainlink
from ingest.schema import Table, addresses_sha256
from ingest.warehouse import CHECKPOINTS, REORGS, RUNS, Warehouse, unregister
from protocols.aave_v3.reserve_logic import calculate_interest_rates
from protocols.aave_v3.state import InterestRateStrategy
from protocols.fixed_point import (
    RAY,
    compounded_interest_v3,
    linear_interest_v3,
    ray_div_half_up,
    ray_mul_half_up,
)

__all__ = [
    "RESERVES",
    "ReserveSpec",
    "SyntheticConfig",
    "SyntheticMarket",
    "GenerationReport",
    "generate",
    "market",
]

ZERO = "0x" + "0" * 40
PRICE_DECIMALS = 8


@dataclass(frozen=True)
class ReserveSpec:
    """One reserve and its feed: symbol, decimals, start price (USD), annual vol, correlation
    with the market factor, bps parameters, e-mode category (0 none, 1 ETH, 2 stables), rate
    strategy (optimal usage, slope1, slope2 as fractions per year), feed deviation (bps) and
    heartbeat (s). ``kind`` picks the price model: ``"gbm"`` or ``"stable"`` (mean-reverting)."""

    symbol: str
    decimals: int
    price_usd: float
    vol: float
    rho: float
    ltv: int
    lt: int
    bonus: int
    reserve_factor: int
    emode: int
    optimal: float
    slope1: float
    slope2: float
    deviation_bps: int
    heartbeat_s: int
    kind: str = "gbm"
    follows: str = ""  # an LST follows this asset's path plus idiosyncratic noise


#: The 20 reserves (Aave v3 Ethereum-like parameters, rounded; not a copy of any live config).
RESERVES: tuple[ReserveSpec, ...] = (
    ReserveSpec("WETH", 18, 2_300, 0.70, 0.90, 8050, 8300, 10500, 1500, 1, 0.80, 0.033, 0.80, 50, 3600),
    ReserveSpec(
        "wstETH",
        18,
        2_650,
        0.05,
        0.0,
        7850,
        8100,
        10600,
        1500,
        1,
        0.45,
        0.045,
        0.80,
        50,
        3600,
        follows="WETH",
    ),
    ReserveSpec(
        "rETH", 18, 2_500, 0.06, 0.0, 7450, 7700, 10750, 1500, 1, 0.45, 0.07, 3.0, 50, 3600, follows="WETH"
    ),
    ReserveSpec(
        "cbETH", 18, 2_450, 0.07, 0.0, 7450, 7700, 10750, 1500, 1, 0.45, 0.07, 3.0, 50, 3600, follows="WETH"
    ),
    ReserveSpec("WBTC", 8, 42_000, 0.60, 0.80, 7300, 7800, 10500, 2000, 0, 0.45, 0.04, 3.0, 50, 3600),
    ReserveSpec("tBTC", 18, 42_000, 0.62, 0.78, 7300, 7800, 10750, 2000, 0, 0.45, 0.04, 3.0, 50, 3600),
    ReserveSpec(
        "USDC", 6, 1.0, 0.015, 0.0, 7700, 8000, 10450, 1000, 2, 0.90, 0.04, 0.60, 25, 86400, kind="stable"
    ),
    ReserveSpec(
        "USDT", 6, 1.0, 0.02, 0.0, 7400, 7600, 10450, 1000, 2, 0.90, 0.04, 0.75, 25, 86400, kind="stable"
    ),
    ReserveSpec(
        "DAI", 18, 1.0, 0.02, 0.0, 7700, 8000, 10500, 1000, 2, 0.90, 0.04, 0.75, 25, 3600, kind="stable"
    ),
    ReserveSpec(
        "LUSD", 18, 1.0, 0.04, 0.0, 7000, 7500, 10500, 1000, 2, 0.80, 0.04, 0.87, 100, 3600, kind="stable"
    ),
    ReserveSpec(
        "FRAX", 18, 1.0, 0.04, 0.0, 7000, 7500, 10600, 1000, 2, 0.80, 0.04, 0.87, 100, 3600, kind="stable"
    ),
    ReserveSpec(
        "crvUSD", 18, 1.0, 0.04, 0.0, 7000, 7500, 10600, 1000, 2, 0.80, 0.04, 0.87, 100, 3600, kind="stable"
    ),
    ReserveSpec("LINK", 18, 15, 0.85, 0.65, 5300, 6800, 10700, 2000, 0, 0.45, 0.07, 3.0, 50, 3600),
    ReserveSpec("AAVE", 18, 100, 0.85, 0.65, 6600, 7300, 10750, 0, 0, 0.45, 0.07, 3.0, 50, 3600),
    ReserveSpec("UNI", 18, 6, 0.90, 0.60, 6500, 7700, 11000, 2000, 0, 0.45, 0.07, 3.0, 50, 3600),
    ReserveSpec("CRV", 18, 0.6, 1.10, 0.55, 3500, 4100, 10830, 3500, 0, 0.70, 0.14, 3.0, 100, 86400),
    ReserveSpec("MKR", 18, 1_800, 0.85, 0.60, 6500, 7000, 10850, 2000, 0, 0.45, 0.07, 3.0, 50, 3600),
    ReserveSpec("SNX", 18, 3, 1.00, 0.55, 4900, 6500, 10850, 3500, 0, 0.80, 0.12, 3.0, 100, 86400),
    ReserveSpec("LDO", 18, 2.5, 1.05, 0.60, 4000, 5000, 10900, 2000, 0, 0.45, 0.07, 3.0, 100, 86400),
    ReserveSpec("ENS", 18, 10, 0.95, 0.55, 3900, 4900, 10800, 2000, 0, 0.45, 0.07, 3.0, 100, 86400),
)
#: e-mode categories: id -> (ltv, lt, bonus, label)
EMODES = {1: (9300, 9500, 10100, "ETH correlated"), 2: (9300, 9500, 10100, "Stablecoins")}


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate (defaults: the benchmark's 1x market; see the module docstring)."""

    seed: int = 20260401
    scale: int = 1
    borrowers: int = 50_000
    suppliers: int = 2_500
    actions: int = 2_000_000
    days: int = 365
    chain_id: int = 7_357_001
    first_block: int = 19_000_000
    genesis_ts: int = 1_704_067_200  # 2024-01-01T00:00:00Z
    block_time_s: int = 12
    grid_s: int = 120
    deployment: str = "synthetic_aave_v3"

    def __post_init__(self) -> None:
        for name in ("scale", "borrowers", "suppliers", "actions", "days", "block_time_s", "grid_s"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"SyntheticConfig.{name}: expected a positive integer, got {v!r}")

    @property
    def n_blocks(self) -> int:
        return self.days * 86_400 // self.block_time_s

    @property
    def last_block(self) -> int:
        return self.first_block + self.n_blocks - 1

    def block_ts(self, block: int) -> int:
        return self.genesis_ts + (block - self.first_block) * self.block_time_s


@dataclass(frozen=True)
class SyntheticMarket:
    """Addresses of the generated market (derived from the seed; lower-case hex)."""

    chain_id: int
    deployment: str
    pool: str
    configurator: str
    oracle: str
    treasury: str
    assets: tuple[str, ...]
    a_tokens: tuple[str, ...]
    variable_debt_tokens: tuple[str, ...]
    stable_debt_tokens: tuple[str, ...]
    feeds: tuple[str, ...]
    aggregators: tuple[str, ...]
    first_block: int
    last_block: int


@dataclass
class GenerationReport:
    """What :func:`generate` wrote: row counts by table, sizes, timings (seconds)."""

    path: str
    config: SyntheticConfig
    market: SyntheticMarket
    rows: dict[str, int] = field(default_factory=dict)
    position_events: int = 0
    oracle_rounds: int = 0
    borrowers: int = 0
    users: int = 0
    file_bytes: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    #: final generator-side balances: (user, asset) -> (scaled aToken, scaled variable debt)
    balances: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict, repr=False)


def _h(seed: int, *parts: object) -> bytes:
    return hashlib.sha256(":".join(str(p) for p in ("deficit-synthetic", seed, *parts)).encode()).digest()


def _addr(seed: int, *parts: object) -> str:
    return "0x" + _h(seed, *parts)[:20].hex()


def _rng(seed: int, name: str) -> random.Random:
    return random.Random(int.from_bytes(_h(seed, "rng", name)[:8], "big"))


def market(cfg: SyntheticConfig) -> SyntheticMarket:
    """The generated market's addresses for ``cfg`` (no I/O)."""
    s = cfg.seed
    n = len(RESERVES)
    return SyntheticMarket(
        chain_id=cfg.chain_id,
        deployment=cfg.deployment,
        pool=_addr(s, "pool"),
        configurator=_addr(s, "configurator"),
        oracle=_addr(s, "oracle"),
        treasury=_addr(s, "treasury"),
        assets=tuple(_addr(s, "asset", r.symbol) for r in RESERVES),
        a_tokens=tuple(_addr(s, "atoken", i) for i in range(n)),
        variable_debt_tokens=tuple(_addr(s, "vdebt", i) for i in range(n)),
        stable_debt_tokens=tuple(_addr(s, "sdebt", i) for i in range(n)),
        feeds=tuple(_addr(s, "feed", r.symbol) for r in RESERVES),
        aggregators=tuple(_addr(s, "aggregator", r.symbol) for r in RESERVES),
        first_block=cfg.first_block,
        last_block=cfg.last_block,
    )


# ------------------------------------------------------------------------------ price paths
@dataclass
class _Round:
    feed: int
    round_id: int
    answer: int
    updated_at: int
    block: int


def _oracle_rounds(cfg: SyntheticConfig) -> list[_Round]:
    """Simulate the 20 price paths on the grid and publish rounds by deviation/heartbeat."""
    rng = _rng(cfg.seed, "prices")
    lat = _rng(cfg.seed, "latency")
    dt = cfg.grid_s / (365 * 86_400)
    sq = math.sqrt(dt)
    df = 4.0
    tscale = math.sqrt((df - 2.0) / df)
    n = len(RESERVES)
    idx = {r.symbol: i for i, r in enumerate(RESERVES)}
    logp = [math.log(r.price_usd) for r in RESERVES]
    kappa = math.log(2) / (1 / 365)  # stablecoins: one-day half-life of a de-peg
    last = [round(r.price_usd * 10**PRICE_DECIMALS) for r in RESERVES]
    last_ts = [cfg.genesis_ts] * n
    rounds: list[_Round] = []
    rid = [0] * n
    for i in range(n):  # every feed has an answer at genesis (block first_block, after the set-up)
        rid[i] = 1
        rounds.append(_Round(i, 1, last[i], cfg.genesis_ts, cfg.first_block))
    end = cfg.genesis_ts + cfg.days * 86_400 - cfg.block_time_s * 4
    latency = max(1, min(3, cfg.grid_s // cfg.block_time_s))  # never reorders a feed's rounds
    ts = cfg.genesis_ts
    gauss, gamma, exp = rng.gauss, rng.gammavariate, math.exp
    follows = [idx[r.follows] if r.follows else -1 for r in RESERVES]
    stable = [r.kind == "stable" for r in RESERVES]
    a = [r.vol * sq * r.rho for r in RESERVES]
    b = [r.vol * sq * math.sqrt(1 - r.rho * r.rho) for r in RESERVES]
    c = [r.vol * r.vol * dt / 2 for r in RESERVES]
    dev = [r.deviation_bps for r in RESERVES]
    hb = [r.heartbeat_s for r in RESERVES]
    step = [0.0] * n
    scale = 10.0**PRICE_DECIMALS
    while True:
        ts += cfg.grid_s
        if ts > end:
            break
        m = gauss(0.0, 1.0) * tscale * math.sqrt(df / gamma(df / 2.0, 2.0))
        for i in range(n):
            z = gauss(0.0, 1.0)
            if stable[i]:
                x = -kappa * logp[i] * dt + b[i] * z
            elif follows[i] >= 0:
                x = step[follows[i]] + b[i] * z - c[i]
            else:
                x = a[i] * m + b[i] * z - c[i]
            step[i] = x
            logp[i] += x
            answer = round(exp(logp[i]) * scale)
            # OCR: report when the observation deviates from the latest answer on chain, or when
            # the latest transmission (its block timestamp) is a heartbeat old
            if abs(answer - last[i]) * 10_000 >= dev[i] * last[i] or ts - last_ts[i] >= hb[i]:
                rid[i] += 1
                # first block at or after the observation, plus 0-2 blocks latency; the
                # aggregator's updatedAt is that block's timestamp (AnswerUpdated(.., block.timestamp))
                block = (
                    cfg.first_block - (-(ts - cfg.genesis_ts) // cfg.block_time_s) + lat.randrange(latency)
                )
                upd = cfg.block_ts(block)
                last[i], last_ts[i] = answer, upd
                rounds.append(_Round(i, rid[i], answer, upd, block))
    rounds.sort(key=lambda r: (r.block, r.updated_at, r.feed))
    return rounds


# ------------------------------------------------------------------------------ event sink
_AAVE = {(t.spec.name, role): t for t in AaveV3.EVENT_TABLES for role in t.roles}
_CL_ANSWER = next(t for t in Chainlink.EVENT_TABLES if t.spec.name == "AnswerUpdated")
_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "UHUGEINT": pa.decimal128(38, 0),
    "HUGEINT": pa.decimal128(38, 0),
    "USMALLINT": pa.int64(),
    "UTINYINT": pa.int64(),
    "BOOLEAN": pa.bool_(),
}


class _Sink:
    """Buffers decoded rows per table and bulk-inserts them through Arrow (never row by row).

    Block and transaction hashes are not carried: they are computed in SQL from the block number
    (and transaction index) with the same formula as ``raw.blocks``, so every log's
    ``block_hash`` matches its block."""

    def __init__(self, wh: Warehouse, cfg: SyntheticConfig, run_id: str, flush_rows: int = 400_000):
        self.wh, self.cfg, self.run_id, self.flush_rows = wh, cfg, run_id, flush_rows
        self.buf: dict[str, list[tuple[Any, ...]]] = {}
        self.specs: dict[str, Any] = {}
        self.pending = 0
        self.rows: dict[str, int] = {}
        tag = _tag(cfg)
        self.block_hash = f"'0x' || sha256('{tag}:block:' || block_number)"
        self.tx_hash = f"'0x' || sha256('{tag}:tx:' || block_number || ':' || tx_index)"

    def add(self, key: tuple[str, str], row: tuple[Any, ...]) -> None:
        et = _AAVE[key]
        fqn = et.table.fqn
        b = self.buf.get(fqn)
        if b is None:
            b = self.buf[fqn] = []
            self.specs[fqn] = et
        b.append(row)
        self.pending += 1
        if self.pending >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        con = self.wh.con
        for fqn in sorted(self.buf):
            rows = self.buf[fqn]
            if not rows:
                continue
            et = self.specs[fqn]
            cols = et.spec.columns()
            data = list(zip(*rows, strict=True))
            arrays = [
                pa.array(data[0], pa.uint64()),
                pa.array(data[1], pa.uint32()),
                pa.array(data[2], pa.uint32()),
                pa.array(data[3], pa.string()),
                pa.array(data[4], pa.string()),
            ]
            arrays += [pa.array(data[5 + j], _ARROW_TYPES[c.type]) for j, c in enumerate(cols)]
            names = ["block_number", "tx_index", "log_index", "address", "role"] + [
                f"p{j}" for j in range(len(cols))
            ]
            con.register("_syn", pa.Table.from_arrays(arrays, names=names))
            try:
                params = ", ".join(f"p{j}::{c.type}" for j, c in enumerate(cols))
                con.execute(
                    f"INSERT INTO {fqn} SELECT {self.cfg.chain_id}, block_number, {self.block_hash}, "
                    f"{self.tx_hash}, tx_index, log_index, address, role, ?, {params}, ? FROM _syn "
                    f"ORDER BY block_number, log_index",
                    [self.cfg.deployment, self.run_id],
                )
            finally:
                unregister(con, "_syn")
            self.rows[fqn] = self.rows.get(fqn, 0) + len(rows)
            rows.clear()
        self.pending = 0
        # commit each batch: the file is built under a temporary name and renamed only when
        # complete, so atomicity does not need one transaction, and DuckDB's memory stays bounded
        con.execute("COMMIT")
        con.execute("BEGIN TRANSACTION")


def _tag(cfg: SyntheticConfig) -> str:
    return f"deficit-synthetic:{cfg.seed}:{cfg.chain_id}"


# ------------------------------------------------------------------------------ the market
_PROFILES: tuple[tuple[float, tuple[str, ...], tuple[str, ...], int], ...] = (
    # (weight, collateral candidates, debt candidates, e-mode)
    (0.35, ("WETH", "wstETH", "rETH", "cbETH"), ("USDC", "USDT", "DAI", "LUSD", "FRAX", "crvUSD"), 0),
    (0.15, ("WBTC", "tBTC"), ("USDC", "USDT", "DAI", "WETH"), 0),
    (0.15, ("USDC", "DAI", "USDT"), ("WETH", "WBTC", "LINK", "wstETH"), 0),
    (0.15, ("LINK", "AAVE", "UNI", "CRV", "MKR", "SNX", "LDO", "ENS"), ("USDC", "USDT", "DAI"), 0),
    (0.12, ("wstETH", "rETH", "cbETH"), ("WETH",), 1),
    (0.08, ("LUSD", "FRAX", "crvUSD", "DAI"), ("USDC", "USDT"), 2),
)


@dataclass
class _User:
    address: str
    borrower: bool
    emode: int
    emode_set: bool
    coll: tuple[int, ...]
    debt: tuple[int, ...]
    target: float
    size_usd: float
    # asset index -> [scaled aToken, aToken previous index, scaled debt, debt previous index, collateral on]
    pos: dict[int, list[int]] = field(default_factory=dict)


class _Reserve:
    """A reserve's mutable accounting: ``DataTypes.ReserveData`` fields the generator needs plus
    the variable debt token's scaled total supply and the aToken's underlying balance."""

    __slots__ = (
        "asset",
        "a_token",
        "vdebt",
        "li",
        "vbi",
        "lr",
        "sr",
        "vr",
        "last",
        "scaled_debt",
        "under",
        "rf",
    )

    def __init__(self, asset: str, a_token: str, vdebt: str, rf: int):
        self.asset, self.a_token, self.vdebt, self.rf = asset, a_token, vdebt, rf
        self.li = self.vbi = RAY
        self.lr = self.sr = self.vr = self.last = self.scaled_debt = self.under = 0


class _Market:
    """The generator's own Pool: reserve accounting by the adapter's math, users as token storage."""

    def __init__(self, cfg: SyntheticConfig, mk: SyntheticMarket, sink: _Sink):
        self.cfg, self.mk, self.sink = cfg, mk, sink
        self.res = [
            _Reserve(mk.assets[i], mk.a_tokens[i], mk.variable_debt_tokens[i], r.reserve_factor)
            for i, r in enumerate(RESERVES)
        ]
        self.strat: list[InterestRateStrategy] = []
        self.px: list[int] = [round(r.price_usd * 1e8) for r in RESERVES]
        self.units: list[int] = [int(10**r.decimals) for r in RESERVES]
        self.ltv = [r.ltv / 1e4 for r in RESERVES]
        self.lt = [r.lt / 1e4 for r in RESERVES]
        for r in RESERVES:
            self.strat.append(
                InterestRateStrategy(
                    optimal_usage_ratio=round(r.optimal * 10**4) * RAY // 10**4,
                    base_variable_borrow_rate=0,
                    variable_rate_slope1=round(r.slope1 * 10**4) * RAY // 10**4,
                    variable_rate_slope2=round(r.slope2 * 10**4) * RAY // 10**4,
                    stable_rate_slope1=0,
                    stable_rate_slope2=0,
                    base_stable_rate_offset=2 * RAY // 100,
                    stable_rate_excess_offset=5 * RAY // 100,
                    optimal_stable_to_total_debt_ratio=2 * RAY // 10,
                )
            )
        self.block = -1
        self.tx = 0
        self.li = 0
        self.tx_count: dict[int, int] = {}

    # -- log positions --
    def new_tx(self, block: int, logs_used: int) -> tuple[int, int]:
        """Start a transaction in ``block`` that uses ``logs_used`` log slots; (tx index, first log)."""
        if block != self.block:
            self.block, self.tx, self.li = block, 0, 0
        tx, li = self.tx, self.li
        self.tx += 1
        self.li += logs_used
        self.tx_count[block] = self.tx
        return tx, li

    # -- reserve accounting: ReserveLogic.updateState / updateInterestRates (v3.0) --
    def _begin(self, i: int, ts: int) -> _Reserve:
        """``updateState``: accrue the liquidity index (if the liquidity rate is non-zero) and the
        variable borrow index (if there is variable debt) to ``ts``, once per block, with the
        adapter's ``MathUtils`` port; the treasury accrual has no event and is not tracked."""
        r = self.res[i]
        if r.last != ts:
            if r.lr:
                r.li = ray_mul_half_up(linear_interest_v3(r.lr, r.last, ts), r.li)
            if r.scaled_debt:
                r.vbi = ray_mul_half_up(compounded_interest_v3(r.vr, r.last, ts), r.vbi)
            r.last = ts
        return r

    def _rates(self, i: int, r: _Reserve, added: int, taken: int, block: int, tx: int, li: int) -> None:
        """``updateInterestRates`` with the adapter's ``calculate_interest_rates``; emits
        ``ReserveDataUpdated``."""
        r.under += added - taken
        total_var = ray_mul_half_up(r.scaled_debt, r.vbi)
        r.lr, r.sr, r.vr = calculate_interest_rates(
            self.strat[i],
            unbacked=0,
            available_liquidity=r.under,
            total_stable_debt=0,
            total_variable_debt=total_var,
            average_stable_borrow_rate=0,
            reserve_factor=r.rf,
        )
        self.sink.add(
            ("ReserveDataUpdated", "pool"),
            (block, tx, li, self.mk.pool, "pool", r.asset, r.lr, r.sr, r.vr, r.li, r.vbi),
        )

    def _scaled_up(
        self,
        key_role: str,
        token: str,
        block: int,
        tx: int,
        li: int,
        caller: str,
        user: str,
        bal: int,
        prev: int,
        amount: int,
        index: int,
    ) -> int:
        """``_mintScaled``: returns the new scaled balance, emits ``Mint``."""
        scaled = ray_div_half_up(amount, index)
        if scaled == 0:
            raise AssertionError("zero scaled mint")  # callers never ask for dust
        increase = ray_mul_half_up(bal, index) - ray_mul_half_up(bal, prev)
        self.sink.add(
            ("Mint", key_role),
            (block, tx, li, token, key_role, caller, user, amount + increase, increase, index),
        )
        return bal + scaled

    def _scaled_down(
        self,
        key_role: str,
        token: str,
        block: int,
        tx: int,
        li: int,
        user: str,
        target: str,
        bal: int,
        prev: int,
        amount: int,
        index: int,
    ) -> int:
        """``_burnScaled``: returns the new scaled balance, emits ``Burn`` (or ``Mint`` when the
        accrued interest exceeds the amount burnt)."""
        scaled = ray_div_half_up(amount, index)
        if not 0 < scaled <= bal:
            raise AssertionError("burn outside the balance")
        increase = ray_mul_half_up(bal, index) - ray_mul_half_up(bal, prev)
        if increase > amount:
            self.sink.add(
                ("Mint", key_role),
                (block, tx, li, token, key_role, user, user, increase - amount, increase, index),
            )
        else:
            self.sink.add(
                ("Burn", key_role),
                (block, tx, li, token, key_role, user, target, amount - increase, increase, index),
            )
        return bal - scaled

    # -- user actions (the Pool's execute* in the v3.0 log order) --
    def supply(self, u: _User, i: int, amount: int, block: int, ts: int) -> None:
        p = u.pos.setdefault(i, [0, 0, 0, 0, 0])
        first = p[0] == 0
        tx, li = self.new_tx(block, 6)
        r = self._begin(i, ts)
        self._rates(i, r, amount, 0, block, tx, li)  # li+1: underlying Transfer, li+2: aToken Transfer
        p[0] = self._scaled_up(
            "a_token", r.a_token, block, tx, li + 3, u.address, u.address, p[0], p[1], amount, r.li
        )
        p[1] = r.li
        if first:
            p[4] = 1
            self.sink.add(
                ("ReserveUsedAsCollateralEnabled", "pool"),
                (block, tx, li + 4, self.mk.pool, "pool", r.asset, u.address),
            )
        self.sink.add(
            ("Supply", "pool"),
            (block, tx, li + 5, self.mk.pool, "pool", r.asset, u.address, u.address, amount, 0),
        )

    def withdraw(self, u: _User, i: int, amount: int | None, block: int, ts: int) -> None:
        """``amount`` None withdraws the whole balance (``type(uint256).max``). Log order of
        v3.0.1+ (aave-v3-core 7fbdc6e): ``ReserveUsedAsCollateralDisabled`` before the burn."""
        p = u.pos[i]
        tx, li = self.new_tx(block, 6)
        r = self._begin(i, ts)
        balance = ray_mul_half_up(p[0], r.li)
        amt = balance if amount is None else amount
        self._rates(i, r, 0, amt, block, tx, li)
        if amt == balance and p[4]:
            p[4] = 0
            self.sink.add(
                ("ReserveUsedAsCollateralDisabled", "pool"),
                (block, tx, li + 1, self.mk.pool, "pool", r.asset, u.address),
            )
        # li+2: aToken Transfer, li+4: underlying Transfer
        p[0] = self._scaled_down(
            "a_token", r.a_token, block, tx, li + 3, u.address, u.address, p[0], p[1], amt, r.li
        )
        p[1] = r.li
        self.sink.add(
            ("Withdraw", "pool"),
            (block, tx, li + 5, self.mk.pool, "pool", r.asset, u.address, u.address, amt),
        )

    def borrow(self, u: _User, i: int, amount: int, block: int, ts: int) -> None:
        p = u.pos.setdefault(i, [0, 0, 0, 0, 0])
        tx, li = self.new_tx(block, 5)
        r = self._begin(i, ts)
        before = p[2]
        p[2] = self._scaled_up(
            "variable_debt_token", r.vdebt, block, tx, li + 1, u.address, u.address, p[2], p[3], amount, r.vbi
        )
        p[3] = r.vbi
        r.scaled_debt += p[2] - before
        self._rates(i, r, 0, amount, block, tx, li + 2)
        self.sink.add(
            ("Borrow", "pool"),
            (block, tx, li + 4, self.mk.pool, "pool", r.asset, u.address, u.address, amount, 2, r.vr, 0),
        )

    def repay(self, u: _User, i: int, amount: int | None, block: int, ts: int) -> None:
        """``amount`` None repays the whole debt."""
        p = u.pos[i]
        tx, li = self.new_tx(block, 5)
        r = self._begin(i, ts)
        debt = ray_mul_half_up(p[2], r.vbi)
        amt = debt if amount is None else min(amount, debt)
        while ray_div_half_up(amt, r.vbi) > p[2]:  # never burn more scaled debt than held
            amt -= 1
        before = p[2]
        p[2] = self._scaled_down(
            "variable_debt_token", r.vdebt, block, tx, li + 1, u.address, ZERO, p[2], p[3], amt, r.vbi
        )
        p[3] = r.vbi
        r.scaled_debt -= before - p[2]
        self._rates(i, r, amt, 0, block, tx, li + 2)
        self.sink.add(
            ("Repay", "pool"),
            (block, tx, li + 4, self.mk.pool, "pool", r.asset, u.address, u.address, amt, False),
        )

    def set_emode(self, u: _User, block: int) -> None:
        tx, li = self.new_tx(block, 1)
        self.sink.add(("UserEModeSet", "pool"), (block, tx, li, self.mk.pool, "pool", u.address, u.emode))
        u.emode_set = True

    # -- valuations (floats, for choosing amounts only) --
    def usd(self, i: int, raw: int) -> float:
        return raw / self.units[i] * self.px[i] / 1e8

    def raw(self, i: int, usd: float) -> int:
        return int(usd * 10**PRICE_DECIMALS / self.px[i] * self.units[i])

    def account(self, u: _User) -> tuple[float, float, float]:
        """(borrow capacity at LTV, collateral at LT, debt), USD."""
        cap = lt = debt = 0.0
        for i, p in u.pos.items():
            rd = self.res[i]
            if p[0] and p[4]:
                v = self.usd(i, p[0] * rd.li // RAY)
                e = u.emode and RESERVES[i].emode == u.emode
                cap += v * (EMODES[u.emode][0] / 1e4 if e else self.ltv[i])
                lt += v * (EMODES[u.emode][1] / 1e4 if e else self.lt[i])
            if p[2]:
                debt += self.usd(i, p[2] * rd.vbi // RAY)
        return cap, lt, debt

    def available(self, i: int) -> int:
        return self.res[i].under


# ------------------------------------------------------------------------------ the driver
def _setup(m: _Market, cfg: SyntheticConfig) -> None:
    """AaveOracle constructor, reserve listing and configuration, e-mode categories (block
    ``first_block``), as ``PoolConfigurator.initReserves`` and the configurator setters emit them."""
    mk, sink, b = m.mk, m.sink, cfg.first_block
    # the constructor: _setFallbackOracle, _setAssetsSources, then BaseCurrencySet
    n = len(RESERVES)
    tx, li = m.new_tx(b, 2 + n)
    sink.add(("FallbackOracleUpdated", "oracle"), (b, tx, li, mk.oracle, "oracle", ZERO))
    for i in range(n):
        sink.add(
            ("AssetSourceUpdated", "oracle"),
            (b, tx, li + 1 + i, mk.oracle, "oracle", mk.assets[i], mk.feeds[i]),
        )
    base = (b, tx, li + 1 + n, mk.oracle, "oracle", ZERO, 10**PRICE_DECIMALS)
    sink.add(("BaseCurrencySet", "oracle"), base)
    for cid, (ltv, lt, bonus, label) in EMODES.items():
        tx, li = m.new_tx(b, 1)
        sink.add(
            ("EModeCategoryAdded", "pool_configurator"),
            (b, tx, li, mk.configurator, "pool_configurator", cid, ltv, lt, bonus, ZERO, label),
        )
    for i, r in enumerate(RESERVES):
        a = mk.assets[i]
        tx, li = m.new_tx(b, 7)  # li+0..2: proxy Upgraded logs (not ingested here)
        sink.add(
            ("Initialized", "a_token"),
            (
                b,
                tx,
                li + 3,
                mk.a_tokens[i],
                "a_token",
                a,
                mk.pool,
                mk.treasury,
                ZERO,
                r.decimals,
                f"Aave Synthetic {r.symbol}",
                f"aSyn{r.symbol}",
                "0x",
            ),
        )
        sink.add(
            ("Initialized", "stable_debt_token"),
            (
                b,
                tx,
                li + 4,
                mk.stable_debt_tokens[i],
                "stable_debt_token",
                a,
                mk.pool,
                ZERO,
                r.decimals,
                f"Aave Synthetic Stable Debt {r.symbol}",
                f"stableDebtSyn{r.symbol}",
                "0x",
            ),
        )
        sink.add(
            ("Initialized", "variable_debt_token"),
            (
                b,
                tx,
                li + 5,
                mk.variable_debt_tokens[i],
                "variable_debt_token",
                a,
                mk.pool,
                ZERO,
                r.decimals,
                f"Aave Synthetic Variable Debt {r.symbol}",
                f"variableDebtSyn{r.symbol}",
                "0x",
            ),
        )
        sink.add(
            ("ReserveInitialized", "pool_configurator"),
            (
                b,
                tx,
                li + 6,
                mk.configurator,
                "pool_configurator",
                a,
                mk.a_tokens[i],
                mk.stable_debt_tokens[i],
                mk.variable_debt_tokens[i],
                _addr(cfg.seed, "irs", i),
            ),
        )
    for i, r in enumerate(RESERVES):
        a, c, role = mk.assets[i], mk.configurator, "pool_configurator"
        tx, li = m.new_tx(b, 5)
        sink.add(("CollateralConfigurationChanged", role), (b, tx, li, c, role, a, r.ltv, r.lt, r.bonus))
        sink.add(("ReserveBorrowing", role), (b, tx, li + 1, c, role, a, True))
        sink.add(("ReserveFactorChanged", role), (b, tx, li + 2, c, role, a, 0, r.reserve_factor))
        sink.add(("LiquidationProtocolFeeChanged", role), (b, tx, li + 3, c, role, a, 0, 1000))
        if r.emode:
            sink.add(("EModeAssetCategoryChanged", role), (b, tx, li + 4, c, role, a, 0, r.emode))


def _users(cfg: SyntheticConfig, rng: random.Random) -> list[_User]:
    sym = {r.symbol: i for i, r in enumerate(RESERVES)}
    weights = [p[0] for p in _PROFILES]
    out = []
    for k in range(cfg.borrowers * cfg.scale):
        _, coll_c, debt_c, emode = rng.choices(_PROFILES, weights)[0]
        coll = tuple(sorted(sym[s] for s in rng.sample(coll_c, min(len(coll_c), rng.choice((1, 1, 2))))))
        debt_left = [s for s in debt_c if sym[s] not in coll]
        debt = tuple(
            sorted(sym[s] for s in rng.sample(debt_left, min(len(debt_left), rng.choice((1, 1, 2)))))
        )
        size = min(5e7, max(1_000.0, rng.lognormvariate(math.log(6_000), 1.6)))
        out.append(
            _User(_addr(cfg.seed, "user", k), True, emode, False, coll, debt, rng.uniform(0.25, 0.9), size)
        )
    for k in range(cfg.suppliers * cfg.scale):
        size = min(5e7, rng.lognormvariate(math.log(250_000), 1.2))
        out.append(_User(_addr(cfg.seed, "supplier", k), False, 0, False, (), (), 0.0, size))
    return out


def _schedule(cfg: SyntheticConfig, users: list[_User], rng: random.Random) -> list[int]:
    """Action slots as sorted keys ``block * len(users) + user`` (see the module docstring)."""
    nb = cfg.borrowers * cfg.scale
    ns = cfg.suppliers * cfg.scale
    total = cfg.actions * cfg.scale
    if total < 2 * nb + ns:
        raise ValueError(
            f"SyntheticConfig.actions: {total} actions cannot give {nb} borrowers two actions "
            f"and {ns} suppliers one"
        )
    nu = len(users)
    first, last = cfg.first_block, cfg.last_block
    setup = max(10, min(7_200, cfg.n_blocks // 10))
    join = array("q", [0] * nu)
    keys: list[int] = []
    for u in range(nb):
        j = first + setup + rng.randrange(max(1, int(0.8 * (last - first - setup))))
        join[u] = j
        keys.append(j * nu + u)
        keys.append(min(last, j + 1 + rng.randrange(300)) * nu + u)
    for u in range(nb, nu):
        j = first + 2 + rng.randrange(setup)
        join[u] = j
        keys.append(j * nu + u)
    rest = total - len(keys)
    n_borrow = rest * 9 // 10
    cum: list[float] = []
    acc = 0.0
    for _ in range(nb):
        acc += rng.paretovariate(1.2)
        cum.append(acc)
    for u in rng.choices(range(nb), cum_weights=cum, k=n_borrow):
        keys.append(rng.randrange(join[u], last + 1) * nu + u)
    for _ in range(rest - n_borrow):
        u = nb + rng.randrange(ns)
        keys.append(rng.randrange(join[u], last + 1) * nu + u)
    keys.sort()
    return keys


class _Actor:
    """Chooses each action from the user's state (see the module docstring)."""

    def __init__(self, m: _Market, rng: random.Random):
        self.m, self.rng = m, rng

    def act(self, u: _User, block: int, ts: int) -> None:
        if u.borrower:
            self._borrower(u, block, ts)
        else:
            self._supplier(u, block, ts)

    def _supply_more(self, u: _User, block: int, ts: int, frac: tuple[float, float]) -> None:
        m, rng = self.m, self.rng
        i = rng.choice(u.coll)
        amount = max(m.units[i] // 100, m.raw(i, u.size_usd * rng.uniform(*frac)))
        m.supply(u, i, amount, block, ts)

    def _borrower(self, u: _User, block: int, ts: int) -> None:
        m, rng = self.m, self.rng
        if u.emode and not u.emode_set:
            m.set_emode(u, block)
        cap, lt, debt = m.account(u)
        if cap <= 0.0:
            return self._supply_more(u, block, ts, (0.5, 1.0))
        if debt <= 0.0:
            never = not any(p[3] for p in u.pos.values())  # a borrower's first borrow is not skipped
            if (never or rng.random() < 0.9) and self._borrow(u, block, ts, cap, debt):
                return None
            if rng.random() < 0.3 and self._withdraw(u, block, ts, cap, debt):
                return None
            return self._supply_more(u, block, ts, (0.05, 0.3))
        r = rng.random()
        if lt < debt * 1.05 or r < 0.45:
            self._repay(u, block, ts)
        elif r < 0.70 and self._borrow(u, block, ts, cap, debt):
            pass
        elif r < 0.85 or not self._withdraw(u, block, ts, cap, debt):
            self._supply_more(u, block, ts, (0.05, 0.3))
        return None

    def _borrow(self, u: _User, block: int, ts: int, cap: float, debt: float) -> bool:
        m, rng = self.m, self.rng
        head = u.target * cap - debt
        if head < 20.0 or not u.debt:
            return False
        i = rng.choice(u.debt)
        amount = min(m.raw(i, head * rng.uniform(0.3, 1.0)), m.available(i) * 9 // 10)
        if amount < 100 or m.usd(i, amount) < 1.0:
            return False
        m.borrow(u, i, amount, block, ts)
        return True

    def _repay(self, u: _User, block: int, ts: int) -> None:
        m, rng = self.m, self.rng
        held = [i for i in sorted(u.pos) if u.pos[i][2] > 0]
        i = rng.choice(held)
        if rng.random() < 0.35:
            return m.repay(u, i, None, block, ts)
        owed = u.pos[i][2] * m.res[i].vbi // RAY
        amount = int(owed * rng.uniform(0.1, 0.9))
        return m.repay(u, i, amount if amount >= 2 else None, block, ts)

    def _withdraw(self, u: _User, block: int, ts: int, cap: float, debt: float) -> bool:
        m, rng = self.m, self.rng
        held = [i for i in sorted(u.pos) if u.pos[i][0] > 0]
        if not held:
            return False
        i = rng.choice(held)
        bal = u.pos[i][0] * m.res[i].li // RAY  # <= the balance at any later index
        if debt <= 0.0 and rng.random() < 0.5 and bal <= m.available(i):
            m.withdraw(u, i, None, block, ts)
            return True
        ltv = EMODES[u.emode][0] / 1e4 if u.emode and RESERVES[i].emode == u.emode else m.ltv[i]
        room = bal if debt <= 0.0 else m.raw(i, (cap - debt / 0.9) / ltv)
        amount = min(int(min(bal, room) * rng.uniform(0.2, 0.9)), m.available(i))
        if amount < 100:
            return False
        m.withdraw(u, i, amount, block, ts)
        return True

    def _supplier(self, u: _User, block: int, ts: int) -> None:
        m, rng = self.m, self.rng
        held = [i for i in sorted(u.pos) if u.pos[i][0] > 0]
        if held and rng.random() < 0.3:
            i = rng.choice(held)
            bal = u.pos[i][0] * m.res[i].li // RAY
            if rng.random() < 0.3 and bal <= m.available(i):
                return m.withdraw(u, i, None, block, ts)
            amount = min(int(bal * rng.uniform(0.2, 0.9)), m.available(i) // 2)
            if amount >= 100:
                return m.withdraw(u, i, amount, block, ts)
        i = rng.randrange(len(RESERVES))
        m.supply(u, i, max(m.units[i] // 100, m.raw(i, u.size_usd * rng.uniform(0.1, 0.5))), block, ts)
        return None


def _write_rounds(
    wh: Warehouse,
    cfg: SyntheticConfig,
    mk: SyntheticMarket,
    run_id: str,
    emitted: list[tuple[int, int, int, int, int, int, int]],
) -> None:
    """``raw.oracle_rounds``, ``raw.chainlink_answer_updated``, ``raw.oracle_feeds`` and
    ``raw.oracle_phases``."""
    cols: list[tuple[int, ...]] = list(zip(*emitted, strict=True)) if emitted else [() for _ in range(7)]
    tbl = pa.Table.from_arrays(
        [
            pa.array(cols[0], pa.int32()),
            pa.array(cols[1], pa.uint64()),
            pa.array(cols[2], pa.decimal128(38, 0)),
            pa.array(cols[3], pa.uint64()),
            pa.array(cols[4], pa.uint64()),
            pa.array(cols[5], pa.uint32()),
            pa.array(cols[6], pa.uint32()),
        ],
        names=["feed_i", "round_id", "answer", "updated_at", "block_number", "tx_index", "log_index"],
    )
    names = pa.Table.from_arrays(
        [
            pa.array(list(range(len(RESERVES))), pa.int32()),
            pa.array(list(mk.feeds)),
            pa.array(list(mk.aggregators)),
            pa.array([f"{r.symbol} / USD" for r in RESERVES]),
            pa.array([r.deviation_bps for r in RESERVES], pa.uint32()),
            pa.array([r.heartbeat_s for r in RESERVES], pa.uint64()),
        ],
        names=["feed_i", "feed", "aggregator", "feed_name", "deviation_bps", "heartbeat_s"],
    )
    con, tag = wh.con, _tag(cfg)
    bh = f"'0x' || sha256('{tag}:block:' || r.block_number)"
    th = f"'0x' || sha256('{tag}:tx:' || r.block_number || ':' || r.tx_index)"
    con.register("_rounds", tbl)
    con.register("_feeds", names)
    try:
        con.execute(
            f"INSERT INTO raw.oracle_rounds SELECT {cfg.chain_id}, f.feed, f.feed_name, f.aggregator, 1, "
            f"r.round_id, "
            f"(1::UHUGEINT << 64) | r.round_id, r.answer::HUGEINT, {PRICE_DECIMALS}, "
            f"r.answer::DOUBLE / 1e{PRICE_DECIMALS}, r.updated_at, "
            f"{cfg.genesis_ts} + (r.block_number - {cfg.first_block}) * {cfg.block_time_s}, "
            f"r.block_number, {bh}, "
            f"{th}, r.tx_index, r.log_index, f.feed, ? FROM _rounds r JOIN _feeds f USING (feed_i) "
            f"ORDER BY f.feed, r.block_number, r.log_index",
            [run_id],
        )
        con.execute(
            f"INSERT INTO {_CL_ANSWER.table.fqn} SELECT chain_id, block_number, block_hash, tx_hash, "
            f"tx_index, "
            f"log_index, aggregator, 'aggregator', feed, answer, aggregator_round_id, updated_at_ts, run_id "
            f"FROM raw.oracle_rounds WHERE chain_id = ? ORDER BY block_number, log_index",
            [cfg.chain_id],
        )
        # the feeds' declared rules, as an ingest stores its deployments' [[feed]] settings
        con.execute(
            f"INSERT INTO raw.oracle_feeds SELECT {cfg.chain_id}, feed, feed_name, {PRICE_DECIMALS}, "
            f"deviation_bps, heartbeat_s, NULL, NULL, 'synthetic://backtest.synthetic', ? FROM _feeds "
            f"ORDER BY feed",
            [run_id],
        )
        con.execute(
            f"INSERT INTO raw.oracle_phases SELECT {cfg.chain_id}, feed, feed_name, 1, aggregator, "
            f"{cfg.first_block}, "
            f"{cfg.last_block}, ? FROM _feeds ORDER BY feed",
            [run_id],
        )
    finally:
        unregister(con, "_rounds", "_feeds")


def _write_blocks(wh: Warehouse, cfg: SyntheticConfig, run_id: str, tx_count: dict[int, int]) -> None:
    """Every block of the range, hash-linked; base fee 5-45 gwei (daily cycle + jitter)."""
    ks = sorted(tx_count)
    con, tag = wh.con, _tag(cfg)
    con.register(
        "_txc",
        pa.Table.from_arrays(
            [pa.array(ks, pa.uint64()), pa.array([tx_count[k] for k in ks], pa.uint32())], names=["n", "c"]
        ),
    )
    try:
        h = f"'0x' || sha256('{tag}:block:' || n)"
        ph = f"'0x' || sha256('{tag}:block:' || (n - 1))"
        jitter = f"('0x' || substr(sha256('{tag}:fee:' || n), 1, 6))::BIGINT % 10000000000"
        cycle = f"round(15e9 * (1 + sin(2 * pi() * (n - {cfg.first_block}) / 7200.0)))::BIGINT"
        con.execute(
            f"INSERT INTO raw.blocks SELECT {cfg.chain_id}, n, {h}, {ph}, "
            f"{cfg.genesis_ts} + (n - {cfg.first_block}) * {cfg.block_time_s}, "
            f"(5000000000 + {cycle} + {jitter})::UHUGEINT, 15000000, 30000000, "
            f"'0x' || repeat('0', 39) || '1', coalesce(t.c, 0), 'finalized', {cfg.last_block + 64} - n, ? "
            f"FROM (SELECT range::UBIGINT AS n FROM range({cfg.first_block}, {cfg.last_block + 1})) "
            f"LEFT JOIN _txc t USING (n) ORDER BY n",
            [run_id],
        )
    finally:
        unregister(con, "_txc")


def _tables() -> tuple[Table, ...]:
    return (
        BLOCKS,
        LOGS,
        ORACLE_PHASES,
        ORACLE_ROUNDS,
        RUNS,
        CHECKPOINTS,
        REORGS,
        *AaveV3().all_tables(),
        *Chainlink().all_tables(),
    )


def generate(
    path: str | Path,
    cfg: SyntheticConfig = SyntheticConfig(),
    *,
    progress: Callable[[str], None] | None = None,
) -> GenerationReport:
    """Write the synthetic market of ``cfg`` to a new DuckDB file at ``path`` (replaced
    atomically: built under a temporary name, renamed when complete)."""
    path = Path(path)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    for p in (tmp, Path(str(tmp) + ".wal")):
        p.unlink(missing_ok=True)
    say = progress or (lambda _m: None)
    mk = market(cfg)
    # every field changes what is written, so every field is in the id (a replay's data source)
    run_id = "synthetic-" + _h(cfg.seed, "run", *dataclasses.astuple(cfg)).hex()[:16]
    rep = GenerationReport(str(path), cfg, mk)
    t0 = time.perf_counter()
    wh = Warehouse(tmp, memory_limit="1GB")
    try:
        wh.ensure(*_tables())
        wh.con.execute("SET preserve_insertion_order = true")
        started = time.time()
        rounds = _oracle_rounds(cfg)
        rep.seconds["prices"] = time.perf_counter() - t0
        say(f"price paths: {len(rounds):,} rounds in {rep.seconds['prices']:.1f} s")
        t1 = time.perf_counter()
        rng = _rng(cfg.seed, f"users:{cfg.scale}")
        users = _users(cfg, rng)
        keys = _schedule(cfg, users, rng)
        sink = _Sink(wh, cfg, run_id)
        m = _Market(cfg, mk, sink)
        actor = _Actor(m, rng)
        emitted: list[tuple[int, int, int, int, int, int, int]] = []
        wh.con.execute("BEGIN TRANSACTION")
        _setup(m, cfg)
        nu, ri, nr = len(users), 0, len(rounds)

        def publish(upto: int) -> int:
            nonlocal ri
            while ri < nr and rounds[ri].block <= upto:
                r = rounds[ri]
                tx, li = m.new_tx(r.block, 3)  # OCR transmit: NewTransmission, NewRound, AnswerUpdated
                emitted.append((r.feed, r.round_id, r.answer, r.updated_at, r.block, tx, li + 2))
                m.px[r.feed] = r.answer
                ri += 1
            return ri

        for n, key in enumerate(keys):
            block, uid = divmod(key, nu)
            publish(block)
            actor.act(users[uid], block, cfg.block_ts(block))
            if n % 250_000 == 249_999:
                say(f"  {n + 1:,} actions, {time.perf_counter() - t1:.0f} s")
        publish(cfg.last_block)
        sink.flush()
        rep.seconds["events"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        _write_rounds(wh, cfg, mk, run_id, emitted)
        _write_blocks(wh, cfg, run_id, m.tx_count)
        _write_meta(wh, cfg, mk, run_id, started)
        wh.con.execute("COMMIT")
        wh.con.execute("CHECKPOINT")
        rep.seconds["write"] = time.perf_counter() - t2
        rep.rows = dict(sorted(sink.rows.items()))
        for t in ("raw.blocks", "raw.oracle_rounds", _CL_ANSWER.table.fqn, "raw.oracle_phases",
                  "raw.oracle_feeds"):
            row = wh.con.execute(f"SELECT count(*) FROM {t}").fetchall()
            rep.rows[t] = int(row[0][0])
        rep.position_events = sum(
            rep.rows.get(f"raw.aave_v3_{t}", 0) for t in ("supply", "borrow", "repay", "withdraw")
        )
        rep.oracle_rounds = len(emitted)
        rep.users = sum(1 for u in users if u.pos)
        rep.borrowers = sum(1 for u in users if any(p[2] or p[3] for p in u.pos.values()))
        rep.balances = {(u.address, mk.assets[i]): (p[0], p[2]) for u in users for i, p in u.pos.items()}
    except BaseException:
        wh.close()
        for p in (tmp, Path(str(tmp) + ".wal")):
            p.unlink(missing_ok=True)
        raise
    wh.close()
    os.replace(tmp, path)
    rep.file_bytes = path.stat().st_size
    rep.seconds["total"] = time.perf_counter() - t0
    return rep


def _write_meta(
    wh: Warehouse, cfg: SyntheticConfig, mk: SyntheticMarket, run_id: str, started: float
) -> None:
    """Coverage of every source over the whole range, and the generation run."""
    now = dt.datetime.fromtimestamp(started, dt.UTC)
    sources = [("blocks", "chain"), ("aave_v3", cfg.deployment)] + [("chainlink", f) for f in mk.feeds]
    # the market's contracts as a deployments file of it would give them
    given = {"pool": [mk.pool], "pool_configurator": [mk.configurator], "oracle": [mk.oracle]}
    for ds, src in sources:
        # the fingerprints a real ingest of this version records (what it asks for and writes,
        # the contracts it was given): the backtest refuses intervals stored under another one
        wh.con.execute(
            "INSERT INTO meta.checkpoints VALUES (?,?,?,?,?,?,?,?,?)",
            [cfg.chain_id, ds, src, cfg.first_block, cfg.last_block, run_id, now, asked_fingerprint(ds),
             addresses_sha256(given if ds == "aave_v3" else {})],
        )
    cols = [c.name for c in RUNS.columns]
    values: dict[str, Any] = {
        "run_id": run_id,
        "command": "synthetic",
        "chain_id": cfg.chain_id,
        "endpoint_label": "synthetic://backtest.synthetic",
        "datasets": sorted(f"{ds}:{src}" if ds != "blocks" else ds for ds, src in sources),
        "from_block": cfg.first_block,
        "to_block": cfg.last_block,
        "finality": "finalized",
        "code_version": "backtest.synthetic",
        "started_at": now,
        "finished_at": dt.datetime.now(dt.UTC),
        "status": "ok",
        "message": f"synthetic market seed={cfg.seed} scale={cfg.scale}",
    }
    missing = [c for c in cols if c not in values]
    if missing:
        raise AssertionError(f"meta.runs has columns this generator does not fill: {missing}")
    wh.con.execute(
        f"INSERT INTO meta.runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        [values[c] for c in cols],
    )
