#!/usr/bin/env python
"""CPU path benchmark: eth_getLogs JSON bodies in memory -> typed rows committed in DuckDB.

No node, no network. A fixed-seed generator writes realistic ``eth_getLogs`` response bodies
(bytes) for a mainnet-like Aave v3 / Chainlink mix, encoded with ``eth_abi`` from the
declarations of ``ingest/catalog.py`` (through :class:`ingest.abi.EventSpec`):

* ~40 % Chainlink OCR1 rounds: ``NewTransmission`` (31 observations, 31-byte observers),
  ``AnswerUpdated`` and ``NewRound`` emitted together by one of ``--feeds`` aggregators;
* ~60 % Aave v3 transactions shaped like the real ones: supply = ReserveDataUpdated + aToken
  Mint + Supply, borrow = RDU + debt-token Mint + Borrow, repay, withdraw, liquidation
  (2 RDU + Burn + BalanceTransfer + LiquidationCall), plain aToken transfers.

Block numbers, block hashes, tx hashes/indexes and log indexes are consistent, and the matching
block headers are served too. Each chunk is then run through the *real* engine chunk function,
``ingest.engine._chunk``, against a stand-in RPC object that answers from memory, so the timed
work is exactly the production path per chunk:

    parse      the client's envelope check of each eth_getLogs body (get_logs_raw: the result
               array stays bytes; nothing is parsed in Python)
    blocks     headers: orjson parse + write_blocks (with its link checks)
    stage      stage_json: the arrays written to /dev/shm and read by DuckDB's JSON reader into
               the temp table _stage, with every strict log check (one statement per dataset)
    write      write_stage: block-hash and duplicate checks, INSERT raw.logs, one validate-and-
               decode INSERT per typed table (dynamic events decoded in Python)
    rest       the rest of _chunk: stale-range check, discovered roles, Chainlink after_chunk
               (raw.oracle_rounds), checkpoints, COMMIT

on a real DuckDB file with the real EVENT_TABLES, one transaction per chunk, committed.
Every SQL statement that DuckDB runs is also timed (``--sql`` prints the breakdown), and
``--profile`` adds a cProfile of one configuration.

    .venv/bin/python bench/ingest_cpu.py            # 10k and 100k-log chunks, threads default/1
    .venv/bin/python bench/ingest_cpu.py --quick    # a few 10k chunks
    taskset -c 0 .venv/bin/python bench/ingest_cpu.py   # pinned to one core
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import random
import re
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402
from eth_abi import encode as abi_encode  # noqa: E402

from ingest import engine  # noqa: E402
from ingest.abi import EventSpec  # noqa: E402
from ingest.datasets import LOG_DATASETS  # noqa: E402
from ingest.datasets.aave_v3 import AaveV3  # noqa: E402
from ingest.datasets.base import LOGS, LogDataset, Source  # noqa: E402
from ingest.datasets.blocks import BLOCKS  # noqa: E402
from ingest.datasets.chainlink import Chainlink  # noqa: E402
from ingest.deployments import Deployment, Feed  # noqa: E402
from ingest.engine import IngestSummary, RunContext  # noqa: E402
from ingest.rpc import (  # noqa: E402
    JsonRpcClient,
    LogsPart,
    _raw_result,  # noqa: E402
)
from ingest.rpc import _loads as rpc_loads  # noqa: E402
from ingest.warehouse import CHECKPOINTS, REORGS, RUNS, Warehouse  # noqa: E402

_checked_logs = JsonRpcClient._checked_logs

CHAIN_ID = 1
SEED = 20261125

# --------------------------------------------------------------------------- generator

def _spec(tables: tuple, name: str, role: str, nparams: int | None = None) -> EventSpec:
    for t in tables:
        if t.spec.name == name and role in t.roles and (nparams is None
                                                        or len(t.spec.params) == nparams):
            return t.spec
    raise KeyError((name, role, nparams))


A3, CL = AaveV3.EVENT_TABLES, Chainlink.EVENT_TABLES
S_RDU = _spec(A3, "ReserveDataUpdated", "pool")
S_SUPPLY = _spec(A3, "Supply", "pool")
S_WITHDRAW = _spec(A3, "Withdraw", "pool")
S_BORROW = _spec(A3, "Borrow", "pool")
S_REPAY = _spec(A3, "Repay", "pool")
S_LIQ = _spec(A3, "LiquidationCall", "pool")
S_MINT = _spec(A3, "Mint", "a_token")
S_BURN = _spec(A3, "Burn", "a_token")
S_BT = _spec(A3, "BalanceTransfer", "a_token")
S_ANSWER = _spec(CL, "AnswerUpdated", "aggregator")
S_NEWROUND = _spec(CL, "NewRound", "aggregator")
S_OCR1 = _spec(CL, "NewTransmission", "aggregator", 6)

# (name, weight, [(spec, role-kind)]) -- role kinds: pool, a_token, vdebt, agg
TX_TEMPLATES: list[tuple[str, float, list[tuple[EventSpec, str]]]] = [
    ("ocr_round", 14.4, [(S_OCR1, "agg"), (S_ANSWER, "agg"), (S_NEWROUND, "agg")]),
    ("supply", 6, [(S_RDU, "pool"), (S_MINT, "a_token"), (S_SUPPLY, "pool")]),
    ("borrow", 4, [(S_RDU, "pool"), (S_MINT, "vdebt"), (S_BORROW, "pool")]),
    ("repay", 4, [(S_RDU, "pool"), (S_BURN, "vdebt"), (S_REPAY, "pool")]),
    ("withdraw", 5, [(S_RDU, "pool"), (S_BURN, "a_token"), (S_WITHDRAW, "pool")]),
    ("liquidation", 1, [(S_RDU, "pool"), (S_RDU, "pool"), (S_BURN, "vdebt"),
                        (S_BT, "a_token"), (S_LIQ, "pool")]),
    ("transfer", 3, [(S_BT, "a_token")]),
]


def _addr(rng: random.Random) -> str:
    return "0x" + rng.randbytes(20).hex()


@dataclass
class Market:
    """Fixed addresses: one Aave v3 deployment with reserves, ``feeds`` Chainlink feeds."""

    pool: str
    reserves: list[str]
    a_tokens: list[str]
    vdebt_tokens: list[str]
    feeds: list[tuple[str, str]]  # (proxy, aggregator)
    users: list[str]
    transmitters: list[str]

    @classmethod
    def make(cls, rng: random.Random, n_feeds: int, n_reserves: int = 12,
             n_users: int = 5000) -> Market:
        return cls(_addr(rng), [_addr(rng) for _ in range(n_reserves)],
                   [_addr(rng) for _ in range(n_reserves)], [_addr(rng) for _ in range(n_reserves)],
                   [(_addr(rng), _addr(rng)) for _ in range(n_feeds)],
                   [_addr(rng) for _ in range(n_users)], [_addr(rng) for _ in range(31)])

    def deployment(self) -> Deployment:
        return Deployment("aave_v3_bench", "aave_v3", CHAIN_ID, 0, {
            "pool": self.pool, "a_token": self.a_tokens[0],
            "variable_debt_token": self.vdebt_tokens[0]}, "bench")

    def seed_reserves(self, wh: Warehouse) -> None:
        """The market's ``ReserveInitialized`` rows, as if ingested before block 0 (unchecked
        stand-ins), so that ``discovered_roles`` asks for every token's logs, as for a real
        market: the stand-in node answers a role with every token's logs, and logs of a
        contract the request did not name are refused."""
        zero = "0x" + "00" * 20
        wh.con.executemany(
            "INSERT INTO raw.aave_v3_reserve_initialized VALUES "
            "(?, 0, ?, ?, 0, ?, ?, 'pool_configurator', 'aave_v3_bench', ?, ?, ?, ?, ?, 'seed')",
            [[CHAIN_ID, "0x" + "00" * 32, "0x" + "00" * 32, i, zero, r, a, zero, v, zero]
             for i, (r, a, v) in enumerate(zip(self.reserves, self.a_tokens, self.vdebt_tokens,
                                               strict=True))])

    def sources(self) -> list[tuple[LogDataset, Source]]:
        aave = AaveV3()
        out: list[tuple[LogDataset, Source]] = [(aave, Source("aave_v3", "aave_v3_bench", 0,
                                                                self.deployment()))]
        cl = Chainlink()
        for i, (proxy, _agg) in enumerate(self.feeds):
            out.append((cl, Source("chainlink", proxy, 0,
                                   Feed(f"FEED{i} / USD", CHAIN_ID, proxy, 8, 0))))
        return out


class LogGen:
    """Deterministic generator of blocks and their logs (JSON-RPC shaped dicts)."""

    def __init__(self, seed: int = SEED, n_feeds: int = 8, logs_per_block: float = 10.0,
                 first_block: int = 18_000_000):
        self.rng = random.Random(seed)
        self.m = Market.make(self.rng, n_feeds)
        self.block = first_block
        self.ts = 1_700_000_000
        self.parent = "0x" + self.rng.randbytes(32).hex()
        self.logs_per_block = logs_per_block
        self.weights = [w for _, w, _ in TX_TEMPLATES]
        self.rounds = [1000] * n_feeds
        self.prices = [2000 * 10**8 + self.rng.randint(-10**10, 10**10) for _ in range(n_feeds)]
        self._topic_cache: dict[tuple[str, Any], str] = {}
        self._ocr_pool: list[bytes] = []
        self.counts: dict[str, int] = defaultdict(int)

    # -- values ------------------------------------------------------------------------------
    def _value(self, spec: EventSpec, pname: str, ptype: str, ctx: dict[str, Any]) -> Any:
        rng = self.rng
        if ptype == "address":
            if pname in ("reserve", "asset", "collateralAsset"):
                return ctx["reserve"]
            if pname == "debtAsset":
                return ctx["reserve2"]
            if pname == "transmitter":
                return rng.choice(self.m.transmitters)
            if pname == "startedBy":
                return rng.choice(self.m.transmitters)
            return rng.choice(self.m.users)
        if ptype == "bool":
            return rng.random() < 0.3
        if ptype in ("uint16",):
            return 0 if rng.random() < 0.97 else rng.randint(1, 65535)
        if ptype == "uint8":
            return 2
        if ptype == "uint32":
            return ctx["round"]
        if ptype in ("int256", "int192"):
            return ctx["price"]
        if ptype == "uint256":
            if pname in ("roundId",):
                return ctx["round"]
            if pname in ("updatedAt", "startedAt"):
                return self.ts
            if pname.endswith("Rate"):
                return rng.randint(10**24, 2 * 10**26)
            if pname.endswith("Index") or pname == "index":
                return rng.randint(10**27, 13 * 10**26)
            return rng.randint(1, 10 ** rng.randint(6, 25))  # amounts: 6..25 decimal digits
        raise ValueError(ptype)

    def _topic(self, ptype: str, v: Any) -> str:
        key = (ptype, v)
        t = self._topic_cache.get(key)
        if t is None:
            t = "0x" + abi_encode([ptype], [v]).hex()
            if ptype == "address":  # a bounded set (reserves, users): memory stays flat
                self._topic_cache[key] = t
        return t

    def _ocr_data(self, price: int) -> str:
        """NewTransmission(OCR1) data; 512 distinct encodings are made once, then reused with
        the answer word replaced (the decoder does the same work on every one)."""
        if len(self._ocr_pool) < 512:
            rng = self.rng
            obs = sorted(price + rng.randint(-10**7, 10**7) for _ in range(31))
            observers = bytes(rng.sample(range(31), 31))
            raw = abi_encode(["int192", "address", "int192[]", "bytes", "bytes32"],
                             [price, rng.choice(self.m.transmitters), obs, observers,
                              rng.randbytes(32)])
            self._ocr_pool.append(raw)
        raw = self.rng.choice(self._ocr_pool)
        return "0x" + price.to_bytes(32, "big", signed=True).hex() + raw[32:].hex()

    def _log(self, spec: EventSpec, ctx: dict[str, Any]) -> tuple[list[str], str]:
        topics = [spec.topic0]
        data_types, data_vals = [], []
        for p in spec.params:
            if spec is S_OCR1 and not p.indexed:
                continue
            v = self._value(spec, p.name, p.type, ctx)
            if p.indexed:
                topics.append(self._topic(p.type, v))
            else:
                data_types.append(p.type)
                data_vals.append(v)
        if spec is S_OCR1:
            return topics, self._ocr_data(ctx["price"])
        return topics, "0x" + abi_encode(data_types, data_vals).hex()

    # -- blocks ------------------------------------------------------------------------------
    def next_block(self) -> tuple[dict[str, Any], list[tuple[str, str, dict[str, Any]]]]:
        """One block header and its logs as (source key, role, log) in log-index order."""
        rng, m = self.rng, self.m
        n, bhash = self.block, "0x" + rng.randbytes(32).hex()
        self.ts += 12
        # tx count so that the mean is ~logs_per_block logs (mean 2.5 logs/tx over the mix)
        ntx = max(0, round(rng.expovariate(1.0) * self.logs_per_block / 2.5))
        out: list[tuple[str, str, dict[str, Any]]] = []
        li = 0
        for ti in range(ntx):
            name, _, events = rng.choices(TX_TEMPLATES, self.weights)[0]
            txh = "0x" + rng.randbytes(32).hex()
            r = rng.randrange(len(m.reserves))
            ctx: dict[str, Any] = {"reserve": m.reserves[r],
                                   "reserve2": m.reserves[(r + 1 + rng.randrange(len(m.reserves) - 1))
                                                          % len(m.reserves)]}
            if name == "ocr_round":
                f = rng.randrange(len(m.feeds))
                self.rounds[f] += 1
                self.prices[f] += rng.randint(-2 * 10**8, 2 * 10**8)
                ctx.update(round=self.rounds[f], price=self.prices[f])
            for spec, kind in events:
                if kind == "agg":
                    src, role, addr = m.feeds[f][0], "aggregator", m.feeds[f][1]
                elif kind == "pool":
                    src, role, addr = "aave_v3_bench", "pool", m.pool
                elif kind == "a_token":
                    src, role, addr = "aave_v3_bench", "a_token", m.a_tokens[r]
                else:
                    src, role, addr = "aave_v3_bench", "variable_debt_token", m.vdebt_tokens[r]
                topics, data = self._log(spec, ctx)
                out.append((src, role, {
                    "address": addr, "topics": topics, "data": data, "blockNumber": hex(n),
                    "transactionHash": txh, "transactionIndex": hex(ti), "blockHash": bhash,
                    "logIndex": hex(li), "removed": False}))
                self.counts[spec.name] += 1
                li += 1
        header = {"number": hex(n), "hash": bhash, "parentHash": self.parent,
                  "timestamp": hex(self.ts), "baseFeePerGas": hex(rng.randint(5 * 10**9, 60 * 10**9)),
                  "gasUsed": hex(rng.randint(10**7, 3 * 10**7)), "gasLimit": hex(30_000_000),
                  "miner": _addr(rng), "transactions": ["0x" + "00" * 32] * ntx}
        self.parent, self.block = bhash, n + 1
        return header, out

    def chunk(self, n_logs: int) -> Chunk:
        """Blocks until at least ``n_logs`` logs; bodies per (source, role) as JSON-RPC bytes."""
        a = self.block
        headers: list[dict[str, Any]] = []
        by: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        total = 0
        while total < n_logs:
            h, logs = self.next_block()
            headers.append(h)
            for src, role, lg in logs:
                by[(src, role)].append(lg)
            total += len(logs)
        b = self.block - 1
        bodies = {k: orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": v}) for k, v in by.items()}
        return Chunk(a, b, total, orjson.dumps(headers), bodies)


@dataclass
class Chunk:
    a: int
    b: int
    n_logs: int
    headers_body: bytes
    bodies: dict[tuple[str, str], bytes]

    @property
    def nbytes(self) -> int:
        return len(self.headers_body) + sum(len(v) for v in self.bodies.values())


# --------------------------------------------------------------------------- stand-in RPC

@dataclass
class Timers:
    t: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    n: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, k: str, dt: float, n: int = 1) -> None:
        self.t[k] += dt
        self.n[k] += n


class MemoryRpc:
    """Answers the engine's ``get_logs`` / ``batch`` from a chunk's bodies, doing the client's
    CPU work on them (decode, range checks, sort) and timing it."""

    label = "memory"

    def __init__(self, market: Market, timers: Timers):
        self.m, self.timers = market, timers
        self.chunk: Chunk | None = None
        owner: dict[str, tuple[str, str]] = {market.pool: ("aave_v3_bench", "pool")}
        for x in market.a_tokens:
            owner[x] = ("aave_v3_bench", "a_token")
        for x in market.vdebt_tokens:
            owner[x] = ("aave_v3_bench", "variable_debt_token")
        for proxy, agg in market.feeds:
            owner[agg] = (proxy, "aggregator")
        self.owner = owner

    def get_logs_raw(self, a: int, b: int, addresses: list[str], topics: Any) -> list[LogsPart]:
        """The client's raw path: only the envelope is checked, the array stays bytes."""
        assert self.chunk is not None and (a, b) == (self.chunk.a, self.chunk.b), (a, b)
        key = self.owner[addresses[0]]
        body = self.chunk.bodies.get(key)
        if body is None:
            return []
        t0 = time.perf_counter()
        arr = _raw_result(body, 1)
        assert arr is not None
        self.timers.add("parse", time.perf_counter() - t0, 0)
        return [LogsPart(a, b, arr)]

    def get_logs(self, a: int, b: int, addresses: list[str], topics: Any) -> list[dict[str, Any]]:
        assert self.chunk is not None and (a, b) == (self.chunk.a, self.chunk.b), (a, b)
        key = self.owner[addresses[0]]
        body = self.chunk.bodies.get(key, b'{"jsonrpc":"2.0","id":1,"result":[]}')
        t0 = time.perf_counter()
        logs = rpc_loads(body)["result"]
        t1 = time.perf_counter()
        if _checked_logs is not None:
            found = _checked_logs(self, logs, a, b)
            found.sort(key=lambda item: (item[0], item[1]))
            logs = [lg for _, _, lg in found]
        t2 = time.perf_counter()
        self.timers.add("parse", t2 - t0, len(logs))
        self.timers.add("parse:json", t1 - t0, len(logs))
        return logs

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        assert self.chunk is not None
        t0 = time.perf_counter()
        headers = orjson.loads(self.chunk.headers_body)
        self.timers.add("blocks", time.perf_counter() - t0, 0)
        first = int(calls[0][1][0], 16) - self.chunk.a
        return headers[first:first + len(calls)]

    def call(self, method: str, params: list[Any]) -> Any:  # pragma: no cover - not used
        raise AssertionError(f"unexpected RPC call {method}")


# --------------------------------------------------------------------------- SQL timing

_SQL_LABELS = [
    (re.compile(r"^CREATE OR REPLACE TEMP TABLE _stage AS"), "stage: read_json + checks -> _stage"),
    (re.compile(r"^SELECT s.block_number, s.log_index, s.tx_hash, s.block_hash, b.hash"),
     "write: block-hash join"),
    (re.compile(r"^SELECT block_number, log_index FROM _stage GROUP BY ALL HAVING"),
     "write: duplicate check"),
    (re.compile(r"^INSERT INTO raw.logs"), "write: INSERT raw.logs"),
    (re.compile(r"^SELECT DISTINCT topic0"), "write: DISTINCT topic0"),
    (re.compile(r"^INSERT INTO raw\.\w+ SELECT \?, block_number, block_hash.* FROM _stage WHERE"),
     "write: per-event validate+decode INSERT"),
    (re.compile(r"^SELECT block_number, block_hash, tx_hash, tx_index, log_index, address, role, source"),
     "write: dynamic fetch rows"),
    (re.compile(r"^INSERT INTO raw\.\w+ SELECT .* FROM _stage_dyn"), "write: dynamic INSERT"),
    (re.compile(r"^SELECT count\(\*\) FROM _stage"), "stage/write: count"),
    (re.compile(r"^DROP TABLE _stage"), "write: DROP _stage"),
    (re.compile(r"^INSERT INTO raw.blocks"), "blocks: INSERT"),
    (re.compile(r"^SELECT (hash|parent_hash) FROM raw.blocks"), "blocks: link checks"),
    (re.compile(r"^DELETE FROM raw.blocks"), "blocks: DELETE range"),
    (re.compile(r"^SELECT count\(\*\) FROM raw.logs WHERE"), "engine: stale-range count"),
    (re.compile(r"^INSERT INTO raw.oracle_rounds"), "chainlink: after_chunk oracle_rounds"),
    (re.compile(r"^SELECT block_number, log_index FROM raw.chainlink_answer_updated"),
     "chainlink: round-id check"),
    (re.compile(r"^SELECT a_token, variable_debt_token"), "aave: discovered_roles"),
    (re.compile(r"meta.checkpoints"), "engine: checkpoints"),
    (re.compile(r"^COMMIT"), "COMMIT"),
    (re.compile(r"^BEGIN"), "BEGIN"),
]


class TimedConnection:
    """Wraps a DuckDB connection; times every ``execute`` by statement kind."""

    def __init__(self, con: Any, timers: Timers):
        self._con, self._timers = con, timers

    def execute(self, sql: str, params: Any = None) -> Any:
        t0 = time.perf_counter()
        res = self._con.execute(sql) if params is None else self._con.execute(sql, params)
        dt = time.perf_counter() - t0
        label = next((lab for rx, lab in _SQL_LABELS if rx.search(sql)), None)
        if label is None:
            label = "other: " + " ".join(sql.split())[:60]
        self._timers.add("sql:" + label, dt)
        return res

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


# --------------------------------------------------------------------------- running

def _timed(fn: Any, timers: Timers, key: str, count_rows: bool = False) -> Any:
    def wrapper(*args: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        n = (out.num_rows if count_rows and hasattr(out, "num_rows") else
             out if isinstance(out, int) else 0)
        timers.add(key, time.perf_counter() - t0, n)
        return out
    return wrapper


class _Patched:
    """Temporarily wrap the engine's module-level stage functions with timers."""

    def __init__(self, timers: Timers):
        self.timers = timers
        self.saved: dict[str, Any] = {}

    def __enter__(self) -> _Patched:
        for name, key, rows in (("stage_json", "stage", False), ("write_stage", "write", False),
                                ("write_blocks", "blocks", False)):
            self.saved[name] = getattr(engine, name)
            setattr(engine, name, _timed(self.saved[name], self.timers, key, rows))
        return self

    def __exit__(self, *exc: object) -> None:
        for name, fn in self.saved.items():
            setattr(engine, name, fn)


def all_tables() -> list[Any]:
    tables = [RUNS, CHECKPOINTS, REORGS, BLOCKS, LOGS]
    for d in LOG_DATASETS.values():
        tables += list(d().all_tables())
    return tables


@dataclass
class Result:
    chunk_logs: int
    threads: str
    chunks: int
    logs: int
    total_s: float
    timers: Timers
    per_chunk_s: list[float]
    db_bytes: int
    checkpoint_s: float = 0.0  # a final CHECKPOINT after the last chunk (not in total_s)
    duckdb_memory: dict[str, int] = field(default_factory=dict)  # duckdb_memory() at the end

    @property
    def median_chunk_rate(self) -> float:
        import statistics
        return (self.logs / self.chunks) / statistics.median(self.per_chunk_s)


def run_config(chunks: list[Chunk] | Iterator[Chunk], market: Market, *, threads: int | None,
               db_path: Path, keep_timers: Timers | None = None,
               settings: list[str] = ()) -> Result:
    """Ingest ``chunks`` through ``engine._chunk`` into a fresh DuckDB file."""
    timers = keep_timers or Timers()
    if db_path.exists():
        db_path.unlink()
    wh = Warehouse(db_path)
    try:
        engine.configure_for_ingest(wh)  # the production settings (threads may override)
        if threads:
            wh.con.execute(f"SET threads={threads}")
        for kv in settings:  # experiments, e.g. checkpoint_threshold=1GB
            k, v = kv.split("=", 1)
            wh.con.execute(f"SET {k}='{v}'")
        cur_threads = wh.con.execute("SELECT current_setting('threads')").fetchone()[0]
        wh.ensure(*all_tables())
        market.seed_reserves(wh)
        raw_con = wh.con
        wh.con = TimedConnection(raw_con, timers)  # type: ignore[assignment]
        rpc = MemoryRpc(market, timers)
        summary = IngestSummary("bench", CHAIN_ID, 0, 0, "head")
        ctx = RunContext(wh, rpc, CHAIN_ID, "bench-run", 0, summary)  # type: ignore[arg-type]
        srcs = market.sources()
        for d, s in srcs:
            if d.NAME == "chainlink":
                agg = dict(market.feeds)[s.key]
                ctx.state[("chainlink", s.key)] = ([(1, agg, 0)], 8)
        total, nlogs, per_chunk, n = 0.0, 0, [], 0
        with _Patched(timers):
            for ch in chunks:
                rpc.chunk = ch
                gc.collect()
                c0 = time.process_time()
                t0 = time.perf_counter()
                got = engine._chunk(ctx, [(ch.a, ch.b)], [(d, s, [(ch.a, ch.b)]) for d, s in srcs],
                                    ch.b, ch.b)
                dt = time.perf_counter() - t0
                timers.add("cpu", time.process_time() - c0, got)
                assert got == ch.n_logs, (got, ch.n_logs)
                total += dt
                nlogs += got
                n += 1
                per_chunk.append(dt)
                timers.add("total", dt, got)
        wh.con = raw_con
        t0 = time.perf_counter()
        raw_con.execute("CHECKPOINT")  # what is left in the WAL (all of it if checkpoints were deferred)
        checkpoint_s = time.perf_counter() - t0
        mem = duckdb_memory(raw_con)
        check = raw_con.execute("SELECT count(*) FROM raw.logs").fetchone()[0]
        assert check == nlogs, (check, nlogs)
    finally:
        wh.close()
    size = db_path.stat().st_size
    db_path.unlink()
    wal = db_path.with_name(db_path.name + ".wal")
    if wal.exists():
        wal.unlink()
    return Result(ch.n_logs if n else 0, str(cur_threads), n, nlogs, total, timers, per_chunk,
                  size, checkpoint_s, mem)


def duckdb_memory(con: Any) -> dict[str, int]:
    """DuckDB's own accounting (bytes by tag, non-zero only) of an open connection."""
    rows = con.execute("SELECT tag, memory_usage_bytes FROM duckdb_memory()").fetchall()
    return {str(t): int(b) for t, b in rows if b}


STAGES = ("parse", "blocks", "stage", "write", "rest")


def stage_rows(r: Result) -> dict[str, float]:
    t = r.timers.t
    rest = t["total"] - sum(t[k] for k in ("parse", "blocks", "stage", "write"))
    return {"parse": t["parse"], "blocks": t["blocks"], "stage": t["stage"],
            "write": t["write"], "rest": rest, "total": t["total"]}


def print_results(results: list[Result]) -> None:
    hdr = (f"{'chunk':>8} {'threads':>7} {'chunks':>6} {'logs':>9} {'total s':>8} "
           f"{'logs/s':>9} {'median':>9} | " + " ".join(f"{k + ' /s':>13}" for k in STAGES))
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        st = stage_rows(r)
        rates = " ".join(f"{(r.logs / st[k] if st[k] > 0 else float('inf')):>13,.0f}" for k in STAGES)
        print(f"{r.chunk_logs:>8,} {r.threads:>7} {r.chunks:>6} {r.logs:>9,} {st['total']:>8.2f} "
              f"{r.logs / st['total']:>9,.0f} {r.median_chunk_rate:>9,.0f} | {rates}")
    print("  logs/s = all logs / sum of chunk times; median = logs per chunk / median chunk time;"
          "\n  stage columns: logs / time spent in that stage (each stage alone)")
    print("\nshare of chunk time per stage:")
    for r in results:
        st = stage_rows(r)
        share = "  ".join(f"{k} {100 * st[k] / st['total']:4.1f}%" for k in STAGES)
        pc = r.per_chunk_s
        trend = (f"first/last chunk {pc[0]:.2f}/{pc[-1]:.2f} s" if len(pc) > 1 else "")
        trend += f"; final CHECKPOINT {r.checkpoint_s:.2f} s"
        print(f"  chunk {r.chunk_logs:>7,} threads {r.threads}: {share}   {trend}")
    r0 = results[0]
    print(f"\n  parse = the client's envelope check ({r0.logs:,} logs); "
          "blocks = header parse + write_blocks")


def print_sql(r: Result, top: int = 25) -> None:
    t = r.timers.t
    rows = sorted(((k[4:], v, r.timers.n[k]) for k, v in t.items() if k.startswith("sql:")),
                  key=lambda x: -x[1])
    tot = t["total"]
    print(f"\nSQL statements, chunk {r.chunk_logs:,} logs, threads {r.threads} "
          f"({r.logs:,} logs, {tot:.2f} s of chunk time):")
    print(f"  {'statement':<48} {'calls':>6} {'s':>7} {'% chunk':>8} {'us/log':>7}")
    for lab, v, n in rows[:top]:
        print(f"  {lab:<48} {n:>6} {v:>7.3f} {100 * v / tot:>7.1f}% {1e6 * v / r.logs:>7.2f}")
    sql_total = sum(v for _, v, _ in rows)
    wl = t["write"]
    wl_sql = sum(v for lab, v, _ in rows if lab.startswith("write"))
    print(f"  all SQL: {sql_total:.2f} s ({100 * sql_total / tot:.0f}% of chunk time); write: "
          f"{wl:.2f} s of which SQL {wl_sql:.2f} s, Python {wl - wl_sql:.2f} s "
          "(dynamic-event decode_fast, Arrow building)")


def gen_chunks(seed: int, chunk_logs: int, n_chunks: int, feeds: int) -> tuple[Market, list[Chunk], float]:
    t0 = time.perf_counter()
    g = LogGen(seed, n_feeds=feeds)
    chunks = [g.chunk(chunk_logs) for _ in range(n_chunks)]
    return g.m, chunks, time.perf_counter() - t0


def describe_mix(chunks: list[Chunk]) -> str:
    by_role: dict[str, int] = defaultdict(int)
    by_event: dict[str, int] = defaultdict(int)
    topic_name = {s.topic0: s.name for s in (S_RDU, S_SUPPLY, S_WITHDRAW, S_BORROW, S_REPAY, S_LIQ,
                                             S_MINT, S_BURN, S_BT, S_ANSWER, S_NEWROUND, S_OCR1)}
    for ch in chunks[:1]:
        for (_src, role), body in ch.bodies.items():
            for lg in orjson.loads(body)["result"]:
                by_role[role] += 1
                by_event[topic_name[lg["topics"][0]]] += 1
    n = sum(by_role.values())
    roles = ", ".join(f"{k} {100 * v / n:.0f}%" for k, v in sorted(by_role.items()))
    evs = ", ".join(f"{k} {100 * v / n:.1f}%" for k, v in sorted(by_event.items(), key=lambda x: -x[1]))
    return f"roles: {roles}\n  events: {evs}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 chunks of 10k logs, default threads")
    ap.add_argument("--chunk-logs", type=int, nargs="*", default=None,
                    help="chunk sizes in logs (default 10000 100000)")
    ap.add_argument("--logs-per-config", type=int, default=300_000,
                    help="logs ingested per configuration (default 300k)")
    ap.add_argument("--threads", default="default,1",
                    help="DuckDB thread settings to run, comma-separated (default: default,1)")
    ap.add_argument("--feeds", type=int, default=8, help="Chainlink feeds (sources) (default 8)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--sql", action="store_true", help="print the per-statement SQL breakdown")
    ap.add_argument("--profile", action="store_true",
                    help="cProfile the first configuration and print the top functions")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="DuckDB setting for an experiment, e.g. checkpoint_threshold=1GB")
    ap.add_argument("--db-dir", default=None, help="where the DuckDB files go (default: a temp dir)")
    args = ap.parse_args(argv)

    sizes = args.chunk_logs or ([10_000] if args.quick else [10_000, 100_000])
    per_cfg = 30_000 if args.quick else args.logs_per_config
    threads = ["default"] if args.quick else [x.strip() for x in args.threads.split(",")]
    try:
        aff = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        aff = []
    import duckdb
    print(f"ingest CPU path: python {sys.version.split()[0]}, duckdb {duckdb.__version__}, "
          f"cpus allowed {aff} of {os.cpu_count()}, seed {args.seed}, {args.feeds} feeds"
          + (f", settings {args.set}" if args.set else ""))
    results: list[Result] = []
    with tempfile.TemporaryDirectory(dir=args.db_dir) as tmp:
        for size in sizes:
            n_chunks = max(1, per_cfg // size)
            market, chunks, gen_s = gen_chunks(args.seed, size, n_chunks, args.feeds)
            mb = sum(c.nbytes for c in chunks) / 1e6
            nl = sum(c.n_logs for c in chunks)
            nb = sum(c.b - c.a + 1 for c in chunks)
            print(f"\ngenerated {n_chunks} chunk(s) of ~{size:,} logs: {nl:,} logs in {nb:,} blocks, "
                  f"{mb:,.0f} MB of JSON bodies, in {gen_s:.1f} s")
            print("  " + describe_mix(chunks))
            for th in threads:
                t = None if th == "default" else int(th)
                prof = cProfile.Profile() if args.profile and not results else None
                if prof:
                    prof.enable()
                r = run_config(chunks, market, threads=t, db_path=Path(tmp) / "bench.duckdb",
                               settings=args.set)
                if prof:
                    prof.disable()
                results.append(r)
                st = stage_rows(r)
                print(f"  threads={r.threads}: {r.logs:,} logs in {st['total']:.2f} s = "
                      f"{r.logs / st['total']:,.0f} logs/s (CPU time {r.timers.t['cpu']:.2f} s = "
                      f"{r.logs / r.timers.t['cpu']:,.0f} logs per CPU-second; "
                      f"median chunk {r.median_chunk_rate:,.0f}/s; "
                      f"final CHECKPOINT {r.checkpoint_s:.2f} s; db {r.db_bytes / 1e6:.0f} MB)")
                if prof:
                    s = io.StringIO()
                    pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(30)
                    s2 = io.StringIO()
                    pstats.Stats(prof, stream=s2).sort_stats("tottime").print_stats(20)
                    print("\ncProfile (cumulative, top 30):\n" + _trim_pstats(s.getvalue()))
                    print("cProfile (tottime, top 20):\n" + _trim_pstats(s2.getvalue()))
            del chunks
            gc.collect()
    print()
    print_results(results)
    if args.sql or args.profile:
        for r in results:
            print_sql(r)
    return 0


def _trim_pstats(text: str) -> str:
    lines = text.splitlines()
    i = next((k for k, ln in enumerate(lines) if ln.strip().startswith("ncalls")), 0)
    root = str(Path(__file__).resolve().parent.parent) + "/"
    return "\n".join(ln.replace(root, "") for ln in lines[i:] if ln.strip())


if __name__ == "__main__":
    raise SystemExit(main())
