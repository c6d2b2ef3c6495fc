"""The bundled real-crash sample: a real Aave v3 market on anvil through the ETH crash of 2021-01-11.

``deficit sample build --seed N`` rebuilds ``data/sample.duckdb`` from scratch with the project's
own pipeline; the same seed gives identical ``raw.*`` rows (a test checks it against the
committed file).

The chain (anvil 1.7.1, chain id 31337, one block every 12 s)
--------------------------------------------------------------
* Genesis at 2021-01-10T22:00:00Z. The real Aave v3.0.2 market (npm ``@aave/core-v3`` 1.19.3
  bytecode, :mod:`ingest.aave_devmarket`) is deployed first (one transaction per block) with
  three reserves: WETH (18 decimals; LTV 80 %, LT 82.5 %, bonus 5 %), USDC (6; 77 / 79 / 4.5 %)
  and DAI (18; 63 / 77 / 4 %), liquidation protocol fee 10 % of the bonus, and e-mode category 1
  "Stablecoins" (USDC, DAI; 93 / 95 / 1 %).
* Prices: each reserve's AaveOracle source is a ``TestAggregatorProxy`` over a
  ``TestOCRAggregator`` (8 decimals; ``tests/contracts/chainlink``). The ETH/USD rounds follow
  the real Binance ETH-USDT futures mid price of ``data/sample/`` (Risk-DAO, BSD-3; see its
  PROVENANCE.md) under the real ETH/USD feed rules: a round when the price deviates more than
  0.5 % from the last answer or 3,600 s after it (:func:`ingest.demo.feed_rounds`), included in
  the first block at or after the minute it was decided, so the oracle lags the market. Each
  transmission carries five observations around the answer (median = answer). USDC/USD and
  DAI/USD answer exactly $1 and repeat it after their 24 h heartbeat.
* Base fee: set for every block mined after the market's deployment that carries transactions
  or follows a bot quote (``anvil_setNextBlockBaseFeePerGas``; runs of empty blocks follow
  anvil's EIP-1559 rule, -12.5 % per block, and the deployment's blocks keep anvil's own) from
  the same price path, so gas is dear when the market falls, as on 2021-01-11:
  ``40 gwei + floor(3000 gwei * drawdown)``, capped at 600 gwei, where ``drawdown`` is the fall of
  the mid price from its highest value of the trailing hour (:func:`base_fee_wei`).
* The window ends at the last block before 2021-01-12T00:00:00Z (about 7,800 blocks in all).

The population (seeded: ``random.Random(seed)``; addresses are fixed, derived from their index)
------------------------------------------------------------------------------------------------
* One liquidity provider supplies 50 M USDC and 50 M DAI at the start.
* :data:`BORROWERS` (120) ETH borrowers open their position between 23:00 and 23:55 on
  2021-01-10, each in one block (mint, approve, supply, borrow), at the oracle price in force:
  WETH collateral log-normal (median 8 ETH, sigma 1.4 in log space, clipped to 0.2..1,500 ETH,
  rounded down to 0.001 ETH: a retail tail of positions too small to liquidate profitably);
  15 % also supply USDC worth 10-30 % of their ETH as collateral; debt in USDC only (60 %),
  DAI only (25 %) or half and half (15 %); the debt is sized to a target health factor drawn
  from three profiles: aggressive 35 % uniform in [1.04, 1.15], moderate 40 % in [1.15, 1.45],
  conservative 25 % in [1.45, 3.0].
* :data:`EMODE_USERS` (8) stablecoin users supply USDC (log-normal, median $40,000, sigma 0.8),
  enter e-mode 1 and borrow DAI at a health factor uniform in [1.03, 1.2].
* During the day 20 % of the borrowers take one scheduled action at a uniformly random block
  (time-scheduled, not state-dependent; it may revert, e.g. a withdrawal that would leave the
  position unhealthy): repay 20-60 % of their first debt asset (40 %), supply 10-50 % more WETH
  (35 %), or withdraw 5-15 % of their WETH (25 %).
* Liquidator bots: :mod:`ingest.sample_bots` (policy, formulas and parameters). Their decisions
  are stored in ``meta.sample_bot_decisions``; their parameters in ``meta.sample`` (``bots.*``).

Transactions carry EIP-1559 fees (max fee = base fee + tip): bots tip 3 gwei, the ETH/USD
transmitter 2 gwei, users 1 gwei; anvil orders a block's transactions by tip, so a block runs
liquidations, then the oracle round, then user actions.

The file
--------
The chain is ingested with the real ingestor (:func:`ingest.engine.run_ingest`, finality
``head``) and the same Binance path is imported as ``ETH/USDT`` reference prices, in USDT as
quoted (:func:`ingest.prices.import_prices`, format ``riskdao_binance``, source
``binance-futures-ethusdt-riskdao``). Run ids are derived from the seed
(``sample-s<seed>-ingest`` / ``-prices``: the ingest run's random id is replaced after the run)
so that two builds have identical ``raw.*`` rows. ``meta.sample`` records the seed, code, anvil
and artifact versions, the window and the contracts (with the deployments TOML); wall-clock
times exist only in ``meta.*`` and in ``meta.sample`` key ``build.*``. The file is written to a
temporary path, copied compactly (``COPY FROM DATABASE``) to ``<out>.part`` next to ``out`` and
renamed over it: an error leaves nothing, and a stale ``<out>.wal`` of the file it replaces is
removed (DuckDB would refuse the new file with it). ``deficit sample build`` refuses an existing
``--out`` file unless ``--force`` (the default output, the bundled sample, is rebuilt in place).
"""

from __future__ import annotations

import bisect
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

from .aave_devmarket import (
    AAVE_V3_CORE_COMMIT,
    AAVE_V3_CORE_NPM_VERSION,
    AAVE_V3_PROTOCOL_VERSION,
    DEFAULT_EMODES,
    DEFAULT_RESERVES,
    AaveV3Market,
)
from .demo import SAMPLE_PRICES, feed_rounds, load_mid_prices
from .devchain import Contract, DevChain, DevChainError, abi_type, function_selector
from .devnet import Anvil, repo_root
from .errors import ConfigError, IngestError
from .sample_bots import MAX_UINT256, WAD, BotParams, Quote, ReserveInfo, best_quote
from .sample_tables import ACCOUNTS, BOT_DECISIONS, META

__all__ = ["SAMPLE_DB", "GENESIS_TS", "WINDOW_START_TS", "WINDOW_END_TS", "BORROWERS", "EMODE_USERS",
           "SampleChain", "SampleBuildError", "build_chain", "build_sample", "base_fee_wei",
           "sample_deployments_toml", "ingest_run_id", "prices_run_id", "run_sample_build"]

SAMPLE_DB = repo_root() / "data" / "sample.duckdb"
CHAIN_ID = 31337
BLOCK_S = 12
GENESIS_TS = 1610316000          # 2021-01-10T22:00:00Z
OPEN_FROM_TS = 1610319600        # 2021-01-10T23:00:00Z: borrowers open positions ...
OPEN_TO_TS = 1610322900          # ... until 23:55
WINDOW_START_TS = 1610323200     # 2021-01-11T00:00:00Z
WINDOW_END_TS = 1610409600       # 2021-01-12T00:00:00Z (exclusive)
BORROWERS = 120
EMODE_USERS = 8
PRICE_SOURCE = "binance-futures-ethusdt-riskdao"
DEPLOYMENT = "aave_v3_sample"
_GWEI = 10**9
_USER_TIP = 1 * _GWEI
_ORACLE_TIP = 2 * _GWEI
_TX_GAS = 3_000_000
_STABLE_HEARTBEAT_S = 86_400
#: anvil keeps this many historical states in memory (``--prune-history``): the ingestor's feed
#: phase discovery and the tests eth_call old blocks; the sample has ~7,800 blocks
KEEP_STATES = 8_192


class SampleBuildError(IngestError):
    """The sample chain could not be built as specified (a transaction failed, a block did not
    hold what was sent, an assumption of the bot policy was violated)."""


def ingest_run_id(seed: int) -> str:
    return f"sample-s{seed}-ingest"


def prices_run_id(seed: int) -> str:
    return f"sample-s{seed}-prices"


def _address(tag: str, i: int) -> str:
    return "0x" + keccak(f"deficit/sample/{tag}/{i}".encode()).hex()[-40:]


# ----- price path, rounds, base fee -----

def _price_rows() -> list[tuple[int, Decimal]]:
    return load_mid_prices(SAMPLE_PRICES, start=GENESIS_TS - 3600, end=WINDOW_END_TS)


def base_fee_wei(rows: Sequence[tuple[int, Decimal]], ts: int) -> int:
    """Base fee (wei) of a block at ``ts``: 40 gwei + floor(3000 gwei x drawdown), <= 600 gwei,
    ``drawdown`` = 1 - price / highest price of the trailing hour (prices: the latest row at or
    before ``ts``; rows are (unix seconds, mid) sorted by time)."""
    i = bisect.bisect_right([t for t, _ in rows], ts) - 1
    if i < 0:
        raise SampleBuildError(f"no price at or before {ts}")
    now = rows[i][1]
    high = max(p for t, p in rows[:i + 1] if t > ts - 3600)
    drawdown = 1 - now / high
    gwei = min(600, 40 + int((Decimal(3000) * drawdown).to_integral_value(rounding="ROUND_FLOOR")))
    return gwei * _GWEI


class _BaseFees:
    """:func:`base_fee_wei` memoised per price row (blocks between rows share it)."""

    def __init__(self, rows: Sequence[tuple[int, Decimal]]):
        self.rows = list(rows)
        self.times = [t for t, _ in self.rows]
        self._cache: dict[int, int] = {}

    def __call__(self, ts: int) -> int:
        i = bisect.bisect_right(self.times, ts) - 1
        if i not in self._cache:
            self._cache[i] = base_fee_wei(self.rows, ts)
        return self._cache[i]


# ----- population -----

@dataclass
class Account:
    user: str
    kind: str              # borrower | emode | lp
    profile: str           # aggressive | moderate | conservative | emode | lp
    open_block: int
    target_hf_bps: int
    supplied: dict[str, int] = field(default_factory=dict)   # symbol -> raw units
    borrowed: dict[str, int] = field(default_factory=dict)
    action: str = ""       # scheduled day action: repay | topup | withdraw | ""
    action_block: int = 0
    action_amount: int = 0
    action_asset: str = ""


@dataclass
class _Tx:
    sender: str
    contract: Contract
    fn: str
    args: tuple[Any, ...]
    tip: int
    kind: str = "setup"     # setup | pool (touches `sender`) | oracle | liquidation
    may_revert: bool = False
    decision: dict[str, Any] | None = None


@dataclass
class SampleChain:
    """What :func:`build_chain` made: addresses, rows for the sample tables and statistics."""

    seed: int
    market: AaveV3Market
    deployments_toml: str
    last_block: int
    accounts: list[Account]
    decisions: list[dict[str, Any]]
    stats: dict[str, Any]
    feeds: dict[str, str]
    bots: list[str]
    rounds_published: int


def _lognormal(rng: random.Random, median: float, sigma: float, lo: float, hi: float) -> float:
    import math

    return min(hi, max(lo, math.exp(rng.gauss(math.log(median), sigma))))


def _block_at(ts: int, genesis: int = GENESIS_TS) -> int:
    """First block whose timestamp is >= ts (block n has timestamp genesis + 12 n)."""
    return max(0, -(-(ts - genesis) // BLOCK_S))


def _price_at(rounds: Sequence[tuple[int, int]], block: int) -> int:
    """ETH/USD answer in force in ``block`` (rounds land in the first block at or after them)."""
    ts = GENESIS_TS + BLOCK_S * block
    ans = rounds[0][1]
    for t, a in rounds:
        if t <= ts:
            ans = a
        else:
            break
    return ans


def _population(rng: random.Random, rounds: Sequence[tuple[int, int]], first_block: int,
                last_block: int) -> list[Account]:
    lt = {s.symbol: s.liquidation_threshold for s in DEFAULT_RESERVES}
    out: list[Account] = []
    lo_b, hi_b = _block_at(OPEN_FROM_TS), _block_at(OPEN_TO_TS)
    if lo_b <= first_block:
        raise SampleBuildError(f"deployment ran past {OPEN_FROM_TS} (block {first_block})")
    for i in range(BORROWERS):
        a = Account(_address("borrower", i), "borrower", "", rng.randint(lo_b, hi_b), 0)
        weth = int(_lognormal(rng, 8.0, 1.4, 0.2, 1500.0) * 1000) * 10**15
        r = rng.random()
        if r < 0.35:
            a.profile, hf = "aggressive", rng.uniform(1.04, 1.15)
        elif r < 0.75:
            a.profile, hf = "moderate", rng.uniform(1.15, 1.45)
        else:
            a.profile, hf = "conservative", rng.uniform(1.45, 3.0)
        a.target_hf_bps = int(hf * 10_000)
        price = _price_at(rounds, a.open_block)                      # USD 8 dec per ETH
        weth_value = weth * price // 10**18                           # base units
        a.supplied["WETH"] = weth
        usdc_value = 0
        if rng.random() < 0.15:
            usdc_value = int(weth_value * rng.uniform(0.1, 0.3))
            a.supplied["USDC"] = usdc_value * 10**6 // 10**8
        weighted = weth_value * lt["WETH"] + usdc_value * lt["USDC"]  # base x bps
        debt_value = weighted * 10_000 // (a.target_hf_bps * 10_000)  # base
        r = rng.random()
        split = {"USDC": 1.0} if r < 0.6 else {"DAI": 1.0} if r < 0.85 else {"USDC": 0.5, "DAI": 0.5}
        for sym, share in split.items():
            part = int(debt_value * share)
            a.borrowed[sym] = part * 10**6 // 10**8 if sym == "USDC" else part * 10**18 // 10**8
        out.append(a)
    for i in range(EMODE_USERS):
        a = Account(_address("emode", i), "emode", "emode", rng.randint(lo_b, hi_b), 0)
        usd = int(_lognormal(rng, 40_000.0, 0.8, 1_000.0, 2_000_000.0))
        a.supplied["USDC"] = usd * 10**6
        a.target_hf_bps = int(rng.uniform(1.03, 1.2) * 10_000)
        emode_lt = DEFAULT_EMODES[0].liquidation_threshold
        a.borrowed["DAI"] = usd * emode_lt * 10**18 // a.target_hf_bps
        out.append(a)
    day_lo, day_hi = _block_at(WINDOW_START_TS), _block_at(WINDOW_END_TS) - 1
    for a in out[:BORROWERS]:
        if rng.random() >= 0.2:
            continue
        a.action_block = rng.randint(day_lo, min(day_hi, last_block))
        r = rng.random()
        if r < 0.4:
            a.action, a.action_asset = "repay", sorted(a.borrowed)[0]
            a.action_amount = int(a.borrowed[a.action_asset] * rng.uniform(0.2, 0.6))
        elif r < 0.75:
            a.action, a.action_asset = "topup", "WETH"
            a.action_amount = int(a.supplied["WETH"] * rng.uniform(0.1, 0.5))
        else:
            a.action, a.action_asset = "withdraw", "WETH"
            a.action_amount = int(a.supplied["WETH"] * rng.uniform(0.05, 0.15))
    return out


# ----- batched eth_call -----

_entries: dict[tuple[str, str, int], tuple[bytes, list[str], list[str]]] = {}


def batch_call(chain: DevChain, calls: Sequence[tuple[Contract, str, tuple[Any, ...]]],
               block: int) -> list[tuple[Any, ...]]:
    """eth_call each ``(contract, function, args)`` at ``block`` in JSON-RPC batches."""
    entries = []
    for c, fn, args in calls:
        key = (c.name, fn, len(args))
        if key not in _entries:
            e = c.function(fn, len(args))
            _entries[key] = (function_selector(e), [abi_type(p) for p in e["inputs"]],
                             [abi_type(p) for p in e["outputs"]])
        entries.append(_entries[key])
    reqs = [("eth_call", [{"to": c.address, "data": "0x" + (sel + abi_encode(ins, list(args))).hex()},
                          hex(block)]) for (c, _, args), (sel, ins, _) in zip(calls, entries, strict=True)]
    return [tuple(abi_decode(outs, bytes.fromhex(str(raw)[2:])))
            for raw, (_, _, outs) in zip(chain.rpc_batch(reqs), entries, strict=True)]


# ----- the chain -----

class _Builder:
    def __init__(self, chain: DevChain, seed: int, params: BotParams):
        self.chain, self.seed, self.params = chain, seed, params
        self.rng = random.Random(seed)
        self.rows = _price_rows()
        self.base_fee = _BaseFees(self.rows)
        day = [(t, p) for t, p in self.rows if GENESIS_TS <= t < WINDOW_END_TS]
        self.rounds = feed_rounds(day)
        self.nonces: dict[str, int] = {}
        self.decisions: list[dict[str, Any]] = []
        self.schedule: dict[int, list[_Tx]] = {}
        self.episode: dict[str, int] = {}      # user -> first underwater observation block
        self.wake: dict[int, set[str]] = {}
        self.peak_shortfall: dict[str, int] = {}
        self.ever_underwater: set[str] = set()
        self.rounds_published = 1
        self.last_obs: dict[str, tuple[int, int]] = {}  # user -> (HF, ETH answer) at its last reading
        self.eth_now = self.rounds[0][1]

    # -- setup --

    def deploy(self) -> None:
        c = self.chain
        reserves = []
        for s in DEFAULT_RESERVES:
            if s.symbol == "WETH":
                reserves.append(replace(s, price=self.rounds[0][1]))
            elif s.symbol in ("USDC", "DAI"):
                reserves.append(s)
        self.m = AaveV3Market.deploy(c, reserves, DEFAULT_EMODES, block_interval=BLOCK_S,
                                     market_id="deficit sample: Aave v3.0.2, ETH crash of 2021-01-11")
        m = self.m
        self.weth = m.asset("WETH")
        self.infos: dict[str, ReserveInfo] = {}
        for sym, r in m.reserves.items():
            d = m.reserve_data(sym)
            cfg = d["configuration"]
            self.infos[r.address] = ReserveInfo(r.address, sym, int(cfg["decimals"]), int(d["id"]),
                                                int(cfg["liquidation_threshold"]),
                                                int(cfg["liquidation_bonus"]),
                                                int(cfg["liquidation_protocol_fee"]),
                                                int(cfg["emode_category"]))
        self.emode_bonus = {e.category_id: e.liquidation_bonus for e in DEFAULT_EMODES}
        # stablecoin heartbeats: 24 h after their deployment transmission
        self.stable_rounds: dict[int, list[str]] = {}
        for sym in ("USDC", "DAI"):
            ts = int(c.call(m.reserve(sym).feed, "latestRoundData")[3])
            self.stable_rounds.setdefault(_block_at(ts + _STABLE_HEARTBEAT_S), []).append(sym)
        c.set_automine(False)
        self.first_block = c.block_number() + 1

    def _fund(self, user: str) -> None:
        self.chain.rpc("anvil_setBalance", [user, hex(10**22)])
        self.chain.rpc("anvil_impersonateAccount", [user])

    def add(self, block: int, *txs: _Tx) -> None:
        self.schedule.setdefault(block, []).extend(txs)

    def populate(self) -> None:
        m = self.m
        self.last_block = _block_at(WINDOW_END_TS) - 1
        self.accounts = _population(self.rng, self.rounds, self.first_block, self.last_block)
        lp = Account(_address("lp", 0), "lp", "lp", self.first_block, 0,
                     supplied={"USDC": 50_000_000 * 10**6, "DAI": 50_000_000 * 10**18})
        self.accounts.insert(0, lp)
        tok = {sym: m.reserve(sym).token for sym in m.reserves}
        for a in self.accounts:
            self._fund(a.user)
            txs = []
            for sym, amt in a.supplied.items():
                txs += [_Tx(a.user, tok[sym], "mint", (a.user, amt), _USER_TIP),
                        _Tx(a.user, tok[sym], "approve", (m.pool.address, MAX_UINT256), _USER_TIP),
                        _Tx(a.user, m.pool, "supply", (m.asset(sym), amt, a.user, 0), _USER_TIP, "pool")]
            if a.kind == "emode":
                txs.append(_Tx(a.user, m.pool, "setUserEMode", (1,), _USER_TIP, "pool"))
            for sym, amt in a.borrowed.items():
                txs.append(_Tx(a.user, m.pool, "borrow", (m.asset(sym), amt, 2, 0, a.user), _USER_TIP,
                               "pool"))
                if sym not in a.supplied:
                    txs.append(_Tx(a.user, tok[sym], "approve", (m.pool.address, MAX_UINT256), _USER_TIP))
            self.add(a.open_block, *txs)
            if a.action:
                sym = a.action_asset
                if a.action == "repay":
                    acts = [_Tx(a.user, tok[sym], "mint", (a.user, a.action_amount), _USER_TIP),
                            _Tx(a.user, m.pool, "repay", (m.asset(sym), a.action_amount, 2, a.user),
                                _USER_TIP, "pool", may_revert=True)]
                elif a.action == "topup":
                    acts = [_Tx(a.user, tok[sym], "mint", (a.user, a.action_amount), _USER_TIP),
                            _Tx(a.user, m.pool, "supply", (m.asset(sym), a.action_amount, a.user, 0),
                                _USER_TIP, "pool")]
                else:
                    acts = [_Tx(a.user, m.pool, "withdraw", (m.asset(sym), a.action_amount, a.user),
                                _USER_TIP, "pool", may_revert=True)]
                self.add(a.action_block, *acts)
        self.bots = [_address("bot", i) for i in range(self.params.executors)]
        for b in self.bots:
            self._fund(b)
            for sym in ("USDC", "DAI"):
                inv = 10**12 * 10**self.infos[m.asset(sym)].decimals
                self.add(self.first_block, _Tx(b, tok[sym], "mint", (b, inv), _USER_TIP),
                         _Tx(b, tok[sym], "approve", (m.pool.address, MAX_UINT256), _USER_TIP))
        self.debtors = sorted(a.user for a in self.accounts if a.borrowed)
        self.debtors_set = set(self.debtors)

    # -- blocks --

    def _request(self, tx: _Tx, base_fee: int) -> dict[str, Any]:
        req = self.chain.tx_request(tx.contract, tx.fn, *tx.args, sender=tx.sender, gas=_TX_GAS)
        who = tx.sender.lower()
        if who not in self.nonces:
            self.nonces[who] = int(self.chain.rpc("eth_getTransactionCount", [who, "pending"]), 16)
        req |= {"from": who, "nonce": hex(self.nonces[who]), "maxFeePerGas": hex(base_fee + tx.tip),
                "maxPriorityFeePerGas": hex(tx.tip)}
        self.nonces[who] += 1
        return req

    def mine_block(self, n: int, txs: list[_Tx]) -> list[dict[str, Any]]:
        c = self.chain
        ts = GENESIS_TS + BLOCK_S * n
        base_fee = self.base_fee(ts)
        c.rpc("anvil_setNextBlockBaseFeePerGas", [hex(base_fee)])
        if not txs:  # (the block count and timestamps are checked once at the end)
            c.rpc("evm_mine", [ts])
            return []
        hashes = [str(h) for h in c.rpc_batch([("eth_sendTransaction", [self._request(t, base_fee)])
                                               for t in txs])]
        c.rpc("evm_mine", [ts])
        block = c.block(n)
        if len(block["transactions"]) != len(txs) or int(block["timestamp"], 16) != ts:
            raise SampleBuildError(f"block {n}: {len(block['transactions'])} of {len(txs)} transactions "
                                   f"included, timestamp {int(block['timestamp'], 16)} (wanted {ts})")
        receipts = c.rpc_batch([("eth_getTransactionReceipt", [h]) for h in hashes])
        for tx, h, r in zip(txs, hashes, receipts, strict=True):
            if r is None or int(r["blockNumber"], 16) != n:
                raise SampleBuildError(f"block {n}: tx {h} ({tx.fn}) not included")
            ok = int(r["status"], 16) == 1
            r["_ok"] = ok
            if tx.decision is not None:
                tx.decision["tx_hash"] = h
                tx.decision["status"] = "ok" if ok else "reverted"
                tx.decision["gas_used"] = int(r["gasUsed"], 16)
            elif not ok and not tx.may_revert:
                raise SampleBuildError(f"block {n}: {tx.contract.name}.{tx.fn} from {tx.sender} reverted "
                                       f"(tx {h})")
        return receipts

    def run(self) -> None:
        """Mine every block of the day. Blocks with transactions, oracle rounds, bot wake-ups, or
        that follow a bot quote are mined one by one with the base fee of the path; runs of
        blocks with nothing to do are mined in one ``anvil_mine(k, 12)``, where anvil's EIP-1559
        rule lowers the base fee by 12.5 % per empty block, as on any chain."""
        m = self.m
        weth_agg = m.reserve("WETH").aggregator
        round_at: dict[int, int] = {}
        for t, a in self.rounds[1:]:
            round_at[max(_block_at(t), self.first_block)] = a  # a later round of a block wins
        bot_txs: list[_Tx] = []
        n = self.first_block
        while n <= self.last_block:
            txs = list(bot_txs)
            latest = round_at.get(n)
            if latest is not None:
                spread = max(1, latest // 2000)
                obs = [latest - 2 * spread, latest - spread, latest, latest + spread, latest + 2 * spread]
                txs.append(_Tx(m.admin, weth_agg, "transmit", (obs,), _ORACLE_TIP, "oracle"))
                self.rounds_published += 1
                self.eth_now = latest
            for sym in self.stable_rounds.get(n, []):
                txs.append(_Tx(m.admin, m.reserve(sym).aggregator, "transmit", ([10**8],), _ORACLE_TIP,
                               "oracle"))
            txs += self.schedule.pop(n, [])
            receipts = self.mine_block(n, txs)
            touched = {t.sender.lower() for t, r in zip(txs, receipts, strict=True)
                       if t.kind == "pool" and r["_ok"]}
            touched |= {t.args[2].lower() for t, r in zip(txs, receipts, strict=True)
                        if t.kind == "liquidation" and r["_ok"]}
            priced = any(t.kind == "oracle" for t in txs)
            quoted = False
            bot_txs = []
            if n < self.last_block:
                bot_txs, quoted = self.observe(n, priced, touched)
            nxt = n + 1
            if not quoted and not bot_txs:
                later = [b for b in (*self.schedule, *round_at, *self.wake,
                                     *(b for b in self.stable_rounds)) if b > n]
                nxt = min([*later, self.last_block + 1])
            if nxt > n + 1:
                self.chain.mine(nxt - n - 1, BLOCK_S)
            n = nxt
        head = self.chain.block()
        want = GENESIS_TS + BLOCK_S * self.last_block
        if int(head["number"], 16) != self.last_block or int(head["timestamp"], 16) != want:
            raise SampleBuildError(f"head is block {int(head['number'], 16)} at "
                                   f"{int(head['timestamp'], 16)}, expected {self.last_block} at {want}")

    # -- the bots --

    def observe(self, n: int, priced: bool, touched: set[str]) -> tuple[list[_Tx], bool]:
        """The bots' observation after block ``n`` (module docstring of :mod:`ingest.sample_bots`).
        Returns the liquidations for block ``n + 1`` and whether any account was quoted.

        Shortcut, equivalent to reading every borrower at an oracle round: an account is not
        read when its health factor cannot be below 1. Debts are stablecoins at exactly $1 and
        collaterals WETH or stablecoins, so HF >= HF_last * min(1, P_eth / P_eth_last) up to
        interest, which moves a HF by less than 0.2 % a day here (borrow rates < 64 %/year); an
        account is read when that bound is below 1.005."""
        m, p = self.m, self.params
        watch = {u for u in touched if u in self.debtors_set} | self.wake.pop(n, set())
        if priced:
            for u in self.debtors:
                last = self.last_obs.get(u)
                if last is None or last[0] * min(self.eth_now, last[1]) < 1_005 * WAD // 1000 * last[1]:
                    watch.add(u)
        if not watch:
            return [], False
        users = sorted(watch)
        data = batch_call(self.chain, [(m.pool, "getUserAccountData", (u,)) for u in users], n)
        for u, d in zip(users, data, strict=True):
            self.last_obs[u] = (int(d[5]), self.eth_now)
        due: list[tuple[str, int]] = []
        for u, d in zip(users, data, strict=True):
            coll, debt, hf = int(d[0]), int(d[1]), int(d[5])
            if debt > coll:
                self.peak_shortfall[u] = max(self.peak_shortfall.get(u, 0), debt - coll)
            if hf >= WAD:
                self.episode.pop(u, None)
                continue
            self.ever_underwater.add(u)
            start = self.episode.setdefault(u, n)
            if start == n and priced and u not in touched and n - 1 >= self.first_block:
                prev = batch_call(self.chain, [(m.pool, "getUserAccountData", (u,))], n - 1)[0]
                if int(prev[5]) < WAD:
                    raise SampleBuildError(f"{u} was already underwater at block {n - 1} before the bots "
                                           f"observed it at {n}: the observation rule missed it")
            if n + 1 >= start + p.reaction_delay_blocks:
                due.append((u, hf))
            else:
                self.wake.setdefault(start + p.reaction_delay_blocks - 1, set()).add(u)
        if not due:
            return [], False
        quotes = self.quote(n, due)
        out: list[_Tx] = []
        ordered = sorted(quotes, key=lambda x: (-(x[1].profit_base if x[1] else -(2**255)), x[0]))
        k = 0
        for u, q in ordered:
            row: dict[str, Any] = {"state_block": n, "exec_block": n + 1, "user": u,
                                   "base_fee_next_wei": self.base_fee(GENESIS_TS + BLOCK_S * (n + 1)),
                                   "episode_start_block": self.episode[u]}
            if q is None:
                self.decisions.append(row | {"action": "skip_no_pair"})
                continue
            row |= {"collateral": q.collateral, "debt": q.debt, "debt_repaid_raw": q.debt_repaid,
                    "collateral_to_liquidator_raw": q.collateral_to_liquidator,
                    "protocol_fee_raw": q.protocol_fee, "gain_base": q.gain_base, "cost_base": q.cost_base,
                    "gas_cost_base": q.gas_cost_base, "profit_base": q.profit_base}
            if q.profit_base < p.min_profit_base:
                self.decisions.append(row | {"action": "skip_unprofitable"})
                continue
            bot = self.bots[k % len(self.bots)]
            k += 1
            row |= {"action": "liquidate", "bot": bot}
            self.decisions.append(row)
            out.append(_Tx(bot, m.pool, "liquidationCall", (q.collateral, q.debt, u, MAX_UINT256,
                                                             p.receive_a_token),
                           p.priority_fee_wei, "liquidation", decision=row))
        return out, True

    def quote(self, n: int, due: list[tuple[str, int]]) -> list[tuple[str, Quote | None]]:
        m = self.m
        assets = sorted(self.infos)
        calls: list[tuple[Contract, str, tuple[Any, ...]]] = [
            (m.oracle, "getAssetPrice", (a,)) for a in assets]
        for u, _ in due:
            calls += [(m.pool, "getUserConfiguration", (u,)), (m.pool, "getUserEMode", (u,))]
            for a in assets:
                r = m.reserve(a)
                calls += [(r.a_token, "balanceOf", (u,)), (r.variable_debt, "balanceOf", (u,)),
                          (r.stable_debt, "balanceOf", (u,))]
        res = batch_call(self.chain, calls, n)
        prices = {a: int(res[i][0]) for i, a in enumerate(assets)}
        i = len(assets)
        base_fee_next = self.base_fee(GENESIS_TS + BLOCK_S * (n + 1))
        out: list[tuple[str, Quote | None]] = []
        for u, hf in due:
            config = res[i][0][0] if isinstance(res[i][0], tuple) else res[i][0]
            emode = int(res[i + 1][0])
            i += 2
            acct: dict[str, Any] = {"health_factor": hf, "configuration": int(config), "a_balance": {},
                                    "debt": {}}
            for a in assets:
                acct["a_balance"][a] = int(res[i][0])
                acct["debt"][a] = int(res[i + 1][0]) + int(res[i + 2][0])
                i += 3
            em = (emode, self.emode_bonus[emode]) if emode else None
            out.append((u, best_quote(reserves=self.infos, account=acct, prices=prices,
                                      base_fee_next=base_fee_next, params=self.params, emode=em,
                                      weth=self.weth)))
        return out

    # -- end --

    def final_stats(self) -> dict[str, Any]:
        m, n = self.m, self.last_block
        data = batch_call(self.chain, [(m.pool, "getUserAccountData", (u,)) for u in self.debtors], n)
        underwater = [u for u, d in zip(self.debtors, data, strict=True) if int(d[5]) < WAD]
        insolvent = {u: int(d[1]) - int(d[0]) for u, d in zip(self.debtors, data, strict=True)
                     if int(d[1]) > int(d[0])}
        liq = [d for d in self.decisions if d["action"] == "liquidate"]
        eth_path = [a for _, a in self.rounds]
        return {
            "blocks": n + 1, "eth_usd_rounds": self.rounds_published,
            "eth_usd_min_answer": min(eth_path), "eth_usd_max_answer": max(eth_path),
            "borrowers": BORROWERS, "emode_users": EMODE_USERS,
            "liquidations": sum(1 for d in liq if d.get("status") == "ok"),
            "liquidations_reverted": sum(1 for d in liq if d.get("status") != "ok"),
            "liquidated_accounts": len({d["user"] for d in liq if d.get("status") == "ok"}),
            "accounts_ever_underwater": len(self.ever_underwater),
            "accounts_ever_insolvent": len(self.peak_shortfall),
            "peak_shortfall_sum_base": sum(self.peak_shortfall.values()),
            "accounts_underwater_at_end": len(underwater),
            "accounts_insolvent_at_end": len(insolvent),
            "bad_debt_at_end_base": sum(insolvent.values()),
            "unprofitable_skips": sum(1 for d in self.decisions if d["action"] == "skip_unprofitable"),
        }


def sample_deployments_toml(m: AaveV3Market) -> str:
    """The deployments file naming the sample's market and its three feeds."""
    lines = ["# written by deficit sample build: the contracts of the sample chain", "[meta]",
             'chain = "anvil"', f"chain_id = {CHAIN_ID}", "", "[[deployment]]", f'name = "{DEPLOYMENT}"',
             'protocol = "aave_v3"', f"chain_id = {CHAIN_ID}", "start_block = 0", "[deployment.contracts]",
             f'pool = "{m.pool.address}"', f'pool_configurator = "{m.configurator.address}"',
             f'oracle = "{m.oracle.address}"', f'addresses_provider = "{m.provider.address}"']
    for sym, dev, hb in (("WETH", 50, 3600), ("USDC", 25, 86_400), ("DAI", 25, 86_400)):
        name = "ETH / USD" if sym == "WETH" else f"{sym} / USD"
        lines += ["", "[[feed]]", f'name = "{name}"', f"chain_id = {CHAIN_ID}",
                  f'proxy = "{m.reserve(sym).feed.address}"', "decimals = 8", "start_block = 0",
                  f"deviation_bps = {dev}", f"heartbeat_s = {hb}"]
    return "\n".join(lines) + "\n"


def build_chain(chain: DevChain, seed: int, params: BotParams | None = None) -> SampleChain:
    """Deploy the market, play the population and the bots through the day on ``chain`` (a fresh
    anvil started with ``timestamp=GENESIS_TS`` and ``keep_states=KEEP_STATES``, so that every
    block's state stays readable)."""
    params = params or BotParams()
    if chain.block_number() != 0 or int(chain.block(0)["timestamp"], 16) != GENESIS_TS:
        raise SampleBuildError(f"the sample needs a fresh anvil with genesis timestamp {GENESIS_TS}")
    b = _Builder(chain, seed, params)
    b.deploy()
    b.populate()
    b.run()
    stats = b.final_stats()
    feeds = {sym: b.m.reserve(sym).feed.address for sym in b.m.reserves}
    return SampleChain(seed, b.m, sample_deployments_toml(b.m), b.last_block, b.accounts, b.decisions,
                       stats, feeds, b.bots, b.rounds_published)


# ----- the file -----

def _anvil_version() -> str:
    import subprocess

    from .devnet import anvil_binary

    out = subprocess.run([str(anvil_binary()), "--version"], capture_output=True, text=True, check=True)
    return " ".join(out.stdout.split("\n")[:2]).strip()


def _meta_rows(sc: SampleChain, params: BotParams, build: dict[str, str]) -> list[tuple[str, str]]:
    from .engine import code_version

    m = sc.market
    rows: dict[str, str] = {
        "seed": str(sc.seed), "chain_id": str(CHAIN_ID), "code_version": code_version(),
        "anvil_version": _anvil_version(), "aave_core_v3_npm": AAVE_V3_CORE_NPM_VERSION,
        "aave_core_v3_commit": AAVE_V3_CORE_COMMIT, "aave_protocol_version": AAVE_V3_PROTOCOL_VERSION,
        "genesis_ts": str(GENESIS_TS), "window_start_ts": str(WINDOW_START_TS),
        "window_end_ts": str(WINDOW_END_TS), "first_day_block": str(_block_at(WINDOW_START_TS)),
        "last_block": str(sc.last_block), "block_interval_s": str(BLOCK_S),
        "deployment": DEPLOYMENT, "dataset": "aave_v3", "pool": m.pool.address,
        "pool_configurator": m.configurator.address, "oracle": m.oracle.address,
        "addresses_provider": m.provider.address, "treasury": m.treasury,
        "price_file": str(SAMPLE_PRICES.relative_to(repo_root())), "price_source": PRICE_SOURCE,
        "price_pair": "ETH/USDT", "deployments_toml": sc.deployments_toml,
        "bots.addresses": ",".join(sc.bots),
        "bots.observation": "oracle round (any reserve source) -> all borrowers; pool event -> its user; "
                            "wake-up at episode_start + reaction_delay_blocks - 1",
        "bots.decision_state": "end of block n (eth_call at n, timestamp of n); tx lands at top of n+1",
        "bots.gas_price": "base fee of block n+1 + priority_fee_wei; ETH at the WETH oracle price at n",
        "bots.debt_to_cover": "max_uint256", "bots.slippage_bps": "0", "bots.capacity_per_block": "unlimited",
        "bots.tie_break": "pair: profit desc, then (collateral, debt) address asc; "
                          "block order: profit desc, user asc",
    }
    for sym, r in m.reserves.items():
        rows[f"reserve.{sym}"] = r.address
        rows[f"feed.{sym}"] = r.feed.address
        rows[f"aggregator.{sym}"] = r.aggregator.address
    rows |= params.as_meta()
    rows |= {f"stats.{k}": str(v) for k, v in sc.stats.items()}
    rows |= {f"build.{k}": v for k, v in build.items()}
    return sorted(rows.items())


_DECISION_COLS = ("state_block", "exec_block", "user", "episode_start_block", "action", "bot", "collateral",
                  "debt", "debt_repaid_raw", "collateral_to_liquidator_raw", "protocol_fee_raw",
                  "gain_base", "cost_base", "gas_cost_base", "profit_base", "base_fee_next_wei",
                  "tx_hash", "status", "gas_used")


def _write_sample_tables(con: Any, sc: SampleChain, params: BotParams, build: dict[str, str]) -> None:
    con.executemany(f"INSERT INTO {META.fqn} VALUES (?, ?)", _meta_rows(sc, params, build))
    con.executemany(f"INSERT INTO {BOT_DECISIONS.fqn} VALUES ({', '.join('?' * len(_DECISION_COLS))})",
                    [tuple(d.get(c) for c in _DECISION_COLS) for d in sc.decisions])
    acc = []
    for a in sc.accounts:
        if set(a.supplied) - {"WETH", "USDC", "DAI"} or set(a.borrowed) - {"USDC", "DAI"}:
            raise SampleBuildError(f"{a.user}: meta.sample_accounts has no column for "
                                   f"{sorted(a.supplied)} supplied / {sorted(a.borrowed)} borrowed")
        acc.append((a.user, a.kind, a.profile, a.open_block, a.target_hf_bps or None,
                    a.supplied.get("WETH", 0), a.supplied.get("USDC", 0), a.borrowed.get("USDC", 0),
                    a.borrowed.get("DAI", 0), 1 if a.kind == "emode" else 0, a.action or None,
                    a.action_block or None, a.action_amount or None, a.supplied.get("DAI", 0)))
    con.executemany(f"INSERT INTO {ACCOUNTS.fqn} VALUES ({', '.join('?' * len(ACCOUNTS.columns))})", acc)


def _relabel_run(con: Any, old: str, new: str) -> None:
    """Give the ingest run a seed-derived id in every table that carries run lineage."""
    for schema, table in con.execute(
            "SELECT table_schema, table_name FROM information_schema.columns WHERE column_name = 'run_id' "
            "AND table_schema IN ('raw', 'meta') AND table_name IN (SELECT table_name FROM "
            "information_schema.tables WHERE table_type = 'BASE TABLE') ORDER BY 1, 2").fetchall():
        con.execute(f'UPDATE {schema}."{table}" SET run_id = ? WHERE run_id = ?', [new, old])


def build_sample(out: Path = SAMPLE_DB, seed: int = 1, params: BotParams | None = None, *,
                 progress: Callable[[str], None] | None = None,
                 inspect: Callable[[DevChain, SampleChain], None] | None = None) -> SampleChain:
    """Build the sample chain on a fresh anvil, ingest it, import the reference prices and write
    the DuckDB file ``out`` (replaced atomically). Returns the chain summary (``stats``).
    ``inspect(chain, sample)`` runs once the chain is built, while anvil still serves it (every
    block's state is kept: tests read contract state at old blocks there)."""
    import duckdb

    from .deployments import load_deployments
    from .engine import IngestRequest, run_ingest
    from .prices import import_prices
    from .rpc import JsonRpcClient
    from .transports import HttpTransport
    from .warehouse import Warehouse

    params = params or BotParams()
    say = progress or (lambda _msg: None)
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="deficit-sample-"))
    try:
        with Anvil(timestamp=GENESIS_TS, keep_states=KEEP_STATES) as node, DevChain(node.url) as chain:
            say(f"anvil on {node.url}: deploying the market and playing 2021-01-11 (seed {seed}) …")
            sc = build_chain(chain, seed, params)
            t_chain = time.monotonic() - t0
            if inspect is not None:
                inspect(chain, sc)
            say(f"chain built: {sc.last_block + 1:,} blocks in {t_chain:.1f} s; ingesting …")
            dep = tmp / "sample-deployments.toml"
            dep.write_text(sc.deployments_toml)
            rpc = JsonRpcClient(HttpTransport(node.url))
            stage = tmp / "stage.duckdb"
            try:
                with Warehouse(stage) as wh:
                    summary = run_ingest(wh, rpc, IngestRequest(
                        chain_id=CHAIN_ID, finality="head",
                        deployments=load_deployments(dep, label="sample (meta.sample deployments_toml)"),
                        chunk_blocks=2000, to_block=sc.last_block,
                        endpoint_label="anvil (deficit sample build)"))
                    if summary.to_block != sc.last_block:
                        raise SampleBuildError(f"ingest stopped at block {summary.to_block}, "
                                               f"expected {sc.last_block}")
                    import_prices(wh, SAMPLE_PRICES, fmt="riskdao_binance", pair="ETH/USDT", unit="USDT",
                                  source=PRICE_SOURCE, run_id=prices_run_id(seed))
                    t_ingest = time.monotonic() - t0 - t_chain
                    wh.ensure(META, BOT_DECISIONS, ACCOUNTS)
                    with wh.transaction() as con:
                        _relabel_run(con, summary.run_id, ingest_run_id(seed))
                        _write_sample_tables(con, sc, params, {
                            "chain_s": f"{t_chain:.1f}", "ingest_s": f"{t_ingest:.1f}"})
            finally:
                rpc.close()
        compact = tmp / "compact.duckdb"
        con = duckdb.connect()
        try:
            # a fresh file holds the data without the staging file's free blocks; 16 KiB blocks
            # instead of DuckDB's 256 KiB make it ~4x smaller (DuckDB opens it without options)
            con.execute(f"ATTACH '{compact}' AS compact (BLOCK_SIZE 16384)")
            con.execute(f"ATTACH '{stage}' AS stage (READ_ONLY)")
            con.execute("COPY FROM DATABASE stage TO compact")
            con.execute("DETACH stage")
            con.execute("DETACH compact")
        finally:
            con.close()
        _install(compact, out)
        sc.stats["build_s"] = round(time.monotonic() - t0, 1)
        sc.stats["file_bytes"] = out.stat().st_size
        say(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) in {sc.stats['build_s']} s")
        return sc
    except DevChainError as e:
        raise SampleBuildError(f"sample chain: {e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)



def _install(built: Path, out: Path) -> None:
    """Put the finished file ``built`` at ``out`` atomically: copied to ``<out>.part`` next to
    ``out`` (same file system), then renamed over it. A ``<out>.wal`` is removed first: it holds
    un-checkpointed writes of the file being replaced (left by a crash or a kill), and DuckDB
    refuses to open the new file beside it ("WAL does not match database file"). On an error the
    ``.part`` is removed and ``out`` is untouched."""
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    try:
        shutil.copyfile(built, part)
        out.with_name(out.name + ".wal").unlink(missing_ok=True)
        part.replace(out)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def run_sample_build(*, seed: int, out: Path | None, as_json: bool, console: Any,
                     force: bool = False) -> int:
    """``deficit sample build``: build, then print the statistics.

    An explicit ``out`` that exists is refused unless ``force`` (checked before the build, which
    takes a minute); the default output, the bundled sample, is what the command rebuilds.
    """
    import json

    target = out or SAMPLE_DB
    if target.is_dir():
        raise ConfigError(f"--out {target} is a directory: name the file to write")
    replaces = target.exists()
    if (replaces and out is not None and not force
            and target.resolve() != SAMPLE_DB.resolve()):
        raise ConfigError(f"--out {target} already exists: pass --force to replace it (the new "
                          "file is written beside it and renamed over it)")
    out = target
    say = None if as_json else (lambda msg: console.print(msg, soft_wrap=True))
    sc = build_sample(out, seed, progress=say)
    if as_json:
        # plain JSON: rich's print_json colours it when FORCE_COLOR is set (no longer JSON)
        console.file.write(json.dumps({"out": str(out), "replaced": replaces, **sc.stats}, indent=2) + "\n")
        return 0
    if replaces:
        console.print(f"replaced the previous {out}", soft_wrap=True)
    for k, v in sc.stats.items():
        console.print(f"  {k:<28} {v:>16,}" if isinstance(v, int) else f"  {k:<28} {v!s:>16}")
    return 0
