"""``protocols.aave_v2`` against the real Aave v2 bytecode (npm @aave/protocol-v2 1.0.1) on anvil.

One market is deployed per module: the default reserves (WETH 18 decimals, priced 1e18 by the
oracle itself; WBTC 8, USDC 6, DAI 18 with ETH-quoted feeds; stable borrowing everywhere) plus
ZLT (18 decimals, borrowable, liquidation threshold 0). A liquidity provider and a background
borrower (variable and stable debt in every reserve) make rates and indices move; that chain is
snapshotted. Each case (seeded) reverts to it, builds a random position (multi-collateral /
multi-debt, variable and stable debt, same-asset debt, LT-0 holdings, a collateral left
disabled), advances time, moves prices (aiming at a random health factor), sometimes changes
risk parameters (LT, bonus, reserve factor) or pauses the pool, funds a liquidator (fresh,
already holding the collateral's aToken, or the user itself), and then, for each of
``CALLS_PER_CASE`` liquidation calls on that position (prices re-aimed in between):

1. reads the adapter state off the chain at the head block B (``aave_v2_chain_state``) and
   compares ``LendingPool.getUserAccountData`` at B with the adapter, all six fields, for every
   user;
2. predicts ``liquidationCall`` in block B+1 with the adapter, sends it, and compares: the revert
   reason, or every event the pool and the Aave tokens emit (names, arguments, emitters, order,
   incl. ``LiquidationCall`` and the treasury mints of ``updateState``), and the whole state at
   B+1 (reserves: indices, rates, supplies, aToken cash; users: scaled balances, stable
   principal/rate/timestamp, flags) against the committed outcome;
3. applies the outcome's events to the state at B as ingested events (``apply``) and requires
   the committed state again;
4. compares ``getUserAccountData`` at B+1 with the committed state.

``DEFICIT_AAVE_DIFF_CASES`` sets the number of cases of the ``slow`` run (default 2000; it runs
only when selected: ``pytest -m slow tests/protocols/test_aave_v2_differential.py``).
"""

from __future__ import annotations

import copy
import os
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace

import pytest

from ingest.abi import snake_case
from ingest.devchain import DevChain
from ingest.devnet import Anvil
from protocols.aave_v2 import AaveV2Adapter, AaveV2State
from protocols.domain import EventRef, LiquidationOutcome, ProtocolEvent
from protocols.fixed_point import RAY
from tests.protocols.aave_v2_chain_state import ChainSnapshot, read_state
from tests.protocols.aave_v2_market import DEFAULT_RESERVES, MAX_UINT256, AaveV2Market, ReserveSpec, TxResult
from tests.protocols.test_aave_v3_differential import anvil_or_skip

pytestmark = pytest.mark.anvil

GENESIS = 1_700_000_000
DAY = 86_400
BLOCK_INTERVAL = 12
DEFAULT_CASES = 100
CALLS_PER_CASE = 2
SLOW_CASES = int(os.environ.get("DEFICIT_AAVE_DIFF_CASES", "2000"))
ETH = 10**18
UNLISTED, UNLISTED_ADDRESS = "UNLISTED", "0x" + "77" * 20

ADAPTER = AaveV2Adapter()
TALLY: Counter[str] = Counter()
SIGNATURES = {(spec.role, spec.name): spec.signature for spec in ADAPTER.events}
COLLATERALS = ("WETH", "WBTC", "USDC", "DAI")


def _reserves() -> tuple[ReserveSpec, ...]:
    return (*DEFAULT_RESERVES, ReserveSpec("ZLT", 18, 3 * 10**14, reserve_factor=1000))


@dataclass
class Market:
    m: AaveV2Market
    lp: str
    background: str
    base: str

    def reset(self) -> None:
        self.m.revert(self.base)
        self.base = self.m.snapshot()


def prepare_market(chain: DevChain) -> Market:
    """Deploy the test market and give it a liquidity provider, a background borrower
    (variable and stable debt), ten days of interest and one more touch of every reserve."""
    m = AaveV2Market.deploy(chain, _reserves(), block_interval=BLOCK_INTERVAL)
    lp, background = m.new_user(), m.new_user()
    for sym, amount in (
        ("WETH", 20_000),
        ("WBTC", 1_000),
        ("USDC", 40_000_000),
        ("DAI", 40_000_000),
        ("ZLT", 100_000_000),
    ):
        m.deposit(lp, sym, amount * m.reserve(sym).unit, fund=True)
    m.deposit(background, "WETH", 10_000 * ETH, fund=True)
    for sym, amount, mode in (
        ("USDC", 3_000_000, 2),
        ("USDC", 500_000, 1),
        ("DAI", 2_000_000, 2),
        ("DAI", 1_000_000, 1),
        ("WBTC", 100, 2),
        ("WBTC", 20, 1),
        ("ZLT", 1_000_000, 2),
        ("WETH", 500, 2),
    ):
        m.borrow(background, sym, amount * m.reserve(sym).unit, mode)
    # stable WETH debt needs other collateral (VL_COLLATERAL_SAME_AS_BORROWING_CURRENCY '13')
    weth_borrower = m.new_user()
    m.deposit(weth_borrower, "DAI", 2_000_000 * ETH, fund=True)
    m.borrow(weth_borrower, "WETH", 100 * ETH, 1)
    m.advance_time(10 * DAY)
    for sym in m.reserves:
        m.deposit(lp, sym, m.reserve(sym).unit, fund=True)
    return Market(m, lp, background, m.snapshot())


@pytest.fixture(scope="module")
def market() -> Iterator[Market]:
    anvil_or_skip()
    node = Anvil(timestamp=GENESIS)
    chain = DevChain(node.url)
    try:
        yield prepare_market(chain)
    finally:
        chain.close()
        node.stop()


# ----- building a case -----


@dataclass
class Setup:
    seed: int
    kind: str
    user: str
    collateral: list[str]
    debts: list[str]
    down: list[str]
    up: list[str]
    notes: list[str]


@dataclass
class Case:
    seed: int
    kind: str
    user: str
    liquidator: str
    collateral: str
    debt: str
    debt_to_cover: int
    receive_a_token: bool
    notes: list[str]


def _eth_to_amount(m: AaveV2Market, sym: str, eth: int) -> int:
    return max(1, eth * m.reserve(sym).unit // m.price(sym))


def _target_hf(rng: random.Random) -> float:
    r = rng.random()
    if r < 0.55:
        return rng.uniform(0.90, 1.0)
    if r < 0.77:
        return rng.uniform(0.6, 0.95)
    if r < 0.92:
        return rng.uniform(0.05, 0.6)
    return rng.uniform(1.0, 1.3)


def _aim_prices(
    m: AaveV2Market, snap: ChainSnapshot, user: str, down: list[str], up: list[str], target: float
) -> dict[str, int]:
    """New prices for ``down`` (scaled by f) or, if empty, ``up`` (scaled by 1/f) bringing the
    user's HF closest to ``target``: bisection with the adapter's HF, which only chooses the
    input (the chain decides the outcome). WETH's price cannot move (the oracle fixes it)."""
    syms, sign = (down, 1) if down else (up, -1)
    base = {m.asset(s): snap.prices[m.asset(s)] for s in syms}

    def moved(log_f: float) -> dict[str, int]:
        f = 10.0 ** (sign * log_f)
        return {a: max(1, int(p * f)) for a, p in base.items()}

    def hf(log_f: float) -> float:
        prices = {**snap.prices, **moved(log_f)}
        return min(ADAPTER.account(snap.state, user, prices, snap.timestamp).health_factor_wad / 1e18, 1e9)

    lo, hi = -4.0, 3.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if hf(mid) < target:
            lo = mid
        else:
            hi = mid
    return {m.reserve(a).symbol: p for a, p in moved(lo).items()}


def _movable(syms: list[str]) -> list[str]:
    return [s for s in syms if s != "WETH"]


def setup_position(mk: Market, rng: random.Random, seed: int) -> Setup:
    m = mk.m
    notes: list[str] = []
    user = m.new_user()
    kind = "plain" if rng.random() < 0.8 else "same_asset"
    if kind == "plain":
        collateral = rng.sample(list(COLLATERALS), rng.randint(1, 3))
        pool = [s for s in ("USDC", "DAI", "WETH", "WBTC", "ZLT") if s not in collateral]
        debts = rng.sample(pool, rng.randint(1, min(3, len(pool))))
    else:
        sym = rng.choice(["WETH", "USDC", "DAI", "WBTC"])
        collateral, debts = [sym], [sym] + ([rng.choice(["ZLT", "DAI"])] if rng.random() < 0.7 else [])
        debts = list(dict.fromkeys(debts))
    for sym in collateral:
        m.deposit(user, sym, _eth_to_amount(m, sym, rng.randint(1, 200) * ETH), fund=True)
    if rng.random() < 0.15:
        m.deposit(user, "ZLT", rng.randint(1, 10**6) * 10**18, fund=True)  # LT 0: never counts
    enabled = list(collateral)
    if len(collateral) > 1 and rng.random() < 0.2:
        res = m.set_collateral(user, collateral[-1], False, check=False)
        notes.append(f"disable {collateral[-1]}: {res.ok or res.reason}")
        if res.ok:
            enabled.remove(collateral[-1])
    avail = m.get_user_account_data(user).available_borrows_eth
    budget = int(avail * rng.uniform(0.5, 0.995))
    weights = [rng.random() + 0.1 for _ in debts]
    for sym, w in zip(debts, weights, strict=True):
        amount = int(budget * w / sum(weights)) * m.reserve(sym).unit // m.price(sym)
        if amount == 0:
            continue
        mode = 1 if rng.random() < 0.4 else 2
        res = m.borrow(user, sym, amount, mode, check=False)
        if not res.ok and mode == 1:  # e.g. '13' collateral same as borrowing currency
            res = m.borrow(user, sym, amount, 2, check=False)
            mode = 2
        notes.append(f"borrow {sym} {amount} mode {mode}: {res.ok or res.reason}")

    dt = rng.choice([0, 0, rng.randint(1, 3_600), rng.randint(1, 30) * DAY, rng.randint(30, 800) * DAY])
    if dt:
        m.advance_time(dt)
    down = _movable([s for s in enabled if s not in debts])
    up = _movable([s for s in debts if s not in collateral])
    if down or up:
        target = _target_hf(rng)
        snap = read_state(m, [user])
        for sym, price in _aim_prices(m, snap, user, down, up, target).items():
            m.set_price(sym, price)
        notes.append(f"target HF {target:.3f}")
    _noise(m, rng, down + up)

    r = rng.random()
    coll_sym = rng.choice(collateral)
    spec = m.reserve(coll_sym).spec
    if r < 0.08:
        lt = spec.liquidation_threshold * rng.randint(80, 99) // 100
        res = m.configure(
            "configureReserveAsCollateral",
            m.asset(coll_sym),
            min(spec.ltv, lt),
            lt,
            rng.choice([10100, 10500, 11000, 11500]),
            check=False,
        )
        notes.append(f"LT {lt} on {coll_sym}: {res.ok or res.reason}")
    elif r < 0.14:
        sym = rng.choice(debts)
        res = m.configure("setReserveFactor", m.asset(sym), rng.choice([0, 500, 3000, 10000]), check=False)
        notes.append(f"reserve factor on {sym}: {res.ok or res.reason}")
    elif r < 0.16:
        res = m.configure("setPoolPause", True, check=False)
        notes.append(f"pool paused: {res.ok or res.reason}")
    elif r < 0.19:
        res = m.configure("freezeReserve", m.asset(coll_sym), check=False)
        notes.append(f"freeze {coll_sym}: {res.ok or res.reason}")
    elif r < 0.32:
        _drain(m, rng, coll_sym, notes)
    return Setup(seed, kind, user, collateral, debts, down, up, notes)


def _drain(m: AaveV2Market, rng: random.Random, sym: str, notes: list[str]) -> None:
    """A whale borrows nearly all of ``sym``'s cash, so that a liquidation paid in the
    underlying may find too little (LPCM_NOT_ENOUGH_LIQUIDITY_TO_LIQUIDATE '45')."""
    r = m.reserve(sym)
    assert r.a_token is not None
    cash = m.token_balance(r.a_token.address, sym)
    left = rng.choice([0, 1, rng.randint(1, max(1, cash // 1000)), rng.randint(1, max(1, cash // 20))])
    if cash - left <= 0:
        return
    other = "USDC" if sym == "DAI" else "DAI"
    whale = m.new_user()
    value_eth = (cash - left) * m.price(sym) // r.unit
    m.deposit(whale, other, _eth_to_amount(m, other, 3 * value_eth + ETH), fund=True)
    res = m.borrow(whale, sym, cash - left, 2, check=False)
    notes.append(f"drain {sym} to {left}: {res.ok or res.reason}")


def _noise(m: AaveV2Market, rng: random.Random, keep: list[str]) -> None:
    for sym in rng.sample(_movable(list(m.reserves)), rng.randint(0, 2)):
        if sym not in keep:
            m.set_price(sym, max(1, m.price(sym) * rng.randint(97, 103) // 100))


def move_again(mk: Market, rng: random.Random, s: Setup) -> None:
    m = mk.m
    s.notes.append("| next call")
    if rng.random() < 0.3:
        m.advance_time(rng.randint(1, 10 * DAY))
    if (s.down or s.up) and rng.random() < 0.7:
        target = _target_hf(rng)
        snap = read_state(m, [s.user])
        for sym, price in _aim_prices(m, snap, s.user, s.down, s.up, target).items():
            m.set_price(sym, price)
        s.notes.append(f"re-aimed at HF {target:.3f}")
        _noise(m, rng, s.down + s.up)


def choose_call(mk: Market, rng: random.Random, s: Setup) -> Case:
    m, user, notes = mk.m, s.user, s.notes
    c = rng.random()
    coll_choice = (
        rng.choice(s.collateral) if c < 0.8 else rng.choice(list(m.reserves)) if c < 0.98 else UNLISTED
    )
    d = rng.random()
    debt_choice = rng.choice(s.debts) if d < 0.87 else rng.choice(list(m.reserves)) if d < 0.98 else UNLISTED
    snap = read_state(m, [user])
    held = {p.asset: p for p in ADAPTER.positions(snap.state, user, snap.timestamp + BLOCK_INTERVAL)}
    owed = held[_asset(m, debt_choice)].debt if _asset(m, debt_choice) in held else 0
    a = rng.random()
    amount = (
        MAX_UINT256
        if a < 0.3
        else int(owed * rng.uniform(0.0, 1.2))
        if a < 0.6
        else owed // 2
        if a < 0.7
        else owed
        if a < 0.77
        else rng.randint(1, 2_000)
        if a < 0.9
        else 0
        if a < 0.93
        else rng.randint(1, 10**30)
    )
    receive = rng.random() < 0.3
    lk = rng.random()
    if lk < 0.08:
        liquidator = user
        notes.append("self-liquidation")
    else:
        liquidator = m.new_user()
        if lk < 0.3:
            sym = coll_choice if coll_choice != UNLISTED else "WETH"
            res = m.deposit(
                liquidator, sym, _eth_to_amount(m, sym, rng.randint(1, 10**18)), fund=True, check=False
            )
            notes.append(f"liquidator holds a{sym}: {res.ok or res.reason}")
    if debt_choice != UNLISTED:
        m.fund(liquidator, debt_choice, min(amount, 3 * owed + 10 * m.reserve(debt_choice).unit))
    return Case(
        s.seed,
        s.kind,
        user,
        liquidator,
        _asset(m, coll_choice),
        _asset(m, debt_choice),
        amount,
        receive,
        notes,
    )


def _asset(m: AaveV2Market, sym: str) -> str:
    return UNLISTED_ADDRESS if sym == UNLISTED else m.asset(sym)


def _symbol(m: AaveV2Market, asset: str) -> str:
    return UNLISTED if asset == UNLISTED_ADDRESS else m.reserve(asset).symbol


# ----- comparing -----


def diff_states(a: AaveV2State, b: AaveV2State) -> list[str]:
    """Field-by-field differences of two states (reserves, users), naming user, reserve, field."""
    out = []
    if a.paused != b.paused:
        out.append(f"paused: {a.paused} vs {b.paused}")
    for asset in sorted(set(a.reserves) | set(b.reserves)):
        ra, rb = a.reserves.get(asset), b.reserves.get(asset)
        if ra is None or rb is None:
            out.append(f"reserve {asset}: {ra} vs {rb}")
            continue
        for f in fields(ra):
            va, vb = getattr(ra, f.name), getattr(rb, f.name)
            if va != vb:
                out.append(f"reserve {asset} {f.name}: {va} vs {vb}")
    for user in sorted(set(a.users) | set(b.users)):
        ua, ub = a.user(user), b.user(user)
        if ua.configuration != ub.configuration:
            out.append(f"user {user} configuration: {ua.configuration:b} vs {ub.configuration:b}")
        for asset in sorted(set(ua.reserves) | set(ub.reserves)):
            xa, xb = ua.reserve(asset), ub.reserve(asset)
            for f in fields(xa):
                va, vb = getattr(xa, f.name), getattr(xb, f.name)
                if va != vb:
                    out.append(f"user {user} reserve {asset} {f.name}: {va} vs {vb}")
    return out


def _chain_events(m: AaveV2Market, res: TxResult) -> list[tuple[str, str, dict[str, object]]]:
    aave = {m.pool.address}
    for r in m.reserves.values():
        for t in (r.a_token, r.stable_debt, r.variable_debt):
            assert t is not None
            aave.add(t.address)
    return [
        (
            e.address,
            e.name,
            {snake_case(k): (v.lower() if isinstance(v, str) else v) for k, v in e.args.items()},
        )
        for e in res.events
        if e.address in aave
    ]


def _tally(case: Case, outcome: LiquidationOutcome) -> None:
    TALLY[case.kind] += 1
    TALLY["ok" if outcome.ok else f"revert {outcome.revert_reason}"] += 1
    names = [(e.role, e.name) for e in outcome.events]
    for label, hit in (
        ("drained collateral", any(n.startswith("drain") for n in case.notes)),
        ("receiveAToken", outcome.ok and case.receive_a_token),
        ("collateral exhausted", ("lending_pool", "ReserveUsedAsCollateralDisabled") in names),
        ("bad debt left", bool(outcome.bad_debt)),
        (
            "stable debt burned",
            ("stable_debt_token", "Burn") in names or ("stable_debt_token", "Mint") in names,
        ),
        ("treasury mint", ("a_token", "Mint") in names),
        ("liquidator collateral enabled", ("lending_pool", "ReserveUsedAsCollateralEnabled") in names),
        ("self-liquidation", outcome.ok and case.liquidator == case.user),
    ):
        if hit:
            TALLY[label] += 1


def run_case(mk: Market, seed: int, calls: int = CALLS_PER_CASE) -> list[str]:
    """Build one position and check ``calls`` liquidation calls on it; the mismatches."""
    mk.reset()
    rng = random.Random(seed)
    setup = setup_position(mk, rng, seed)
    problems: list[str] = []
    for k in range(calls):
        if k:
            move_again(mk, rng, setup)
        problems += check_call(mk, choose_call(mk, rng, setup))
        if problems:
            break
    return problems


def check_call(mk: Market, case: Case) -> list[str]:
    """Compare account data, the liquidation call and the state after it, chain vs adapter."""
    m = mk.m
    users = {case.user, case.liquidator, m.treasury, mk.lp, mk.background}
    snap = read_state(m, users)
    problems: list[str] = []
    where = f"seed {case.seed} ({case.kind}; {'; '.join(case.notes)})"
    for u in sorted(users):
        got = tuple(m.get_user_account_data(u, snap.block))
        mine = tuple(ADAPTER.user_account_data(snap.state, u, snap.prices, snap.timestamp))
        if got != mine:
            problems.append(f"{where}: getUserAccountData({u}) at {snap.block}: chain {got} adapter {mine}")

    ts = snap.timestamp + BLOCK_INTERVAL
    outcome = ADAPTER.liquidate(
        snap.state,
        case.user,
        case.collateral,
        case.debt,
        case.debt_to_cover,
        snap.prices,
        ts,
        case.receive_a_token,
        liquidator=case.liquidator,
    )
    if case.debt != UNLISTED_ADDRESS:
        m.ensure_approved(case.liquidator, case.debt)
    res = m._tx(
        case.liquidator,
        m.pool,
        "liquidationCall",
        case.collateral,
        case.debt,
        case.user,
        case.debt_to_cover,
        case.receive_a_token,
        check=False,
    )
    call = (
        f"liquidationCall({_symbol(m, case.collateral)}, {_symbol(m, case.debt)}, {case.debt_to_cover}, "
        f"receiveAToken={case.receive_a_token})"
    )
    assert res.block_number == snap.block + 1
    assert int(m.chain.block(res.block_number)["timestamp"], 16) == ts
    _tally(case, outcome)
    if res.ok != outcome.ok or (not res.ok and res.reason != outcome.revert_reason):
        problems.append(
            f"{where}: {call}: chain {'ok' if res.ok else res.reason!r}, adapter "
            f"{'ok' if outcome.ok else outcome.revert_reason!r}"
        )
        return problems
    if not res.ok:
        return problems

    chain_events = _chain_events(m, res)
    mine_events = [(e.address, e.name, dict(e.args)) for e in outcome.events]
    if chain_events != mine_events:
        problems.append(f"{where}: {call} events differ:\n  chain   {chain_events}\n  adapter {mine_events}")
    ev = res.event("LiquidationCall")
    if (ev["debtToCover"], ev["liquidatedCollateralAmount"]) != (
        outcome.debt_repaid,
        outcome.collateral_seized,
    ):
        problems.append(f"{where}: {call}: LiquidationCall amounts chain {ev} adapter {outcome}")
    after = read_state(m, users, res.block_number)
    replayed = copy.deepcopy(snap.state)
    ADAPTER.commit(snap.state, outcome)
    problems += [
        f"{where}: {call}: after (adapter vs chain): {d}" for d in diff_states(snap.state, after.state)
    ]
    for i, ev_out in enumerate(outcome.events):
        sig = SIGNATURES.get((ev_out.role, ev_out.name))
        if sig is not None:
            ADAPTER.apply(
                replayed,
                ProtocolEvent(
                    ev_out.name,
                    sig,
                    ev_out.address,
                    ev_out.role,
                    ev_out.args,
                    EventRef(after.block, i, res.tx_hash, after.timestamp),
                ),
            )
    replayed.last_borrow = None
    problems += [
        f"{where}: {call}: events replayed vs committed: {d}" for d in diff_states(replayed, snap.state)
    ]
    for u in sorted(users):
        got = tuple(m.get_user_account_data(u, after.block))
        mine = tuple(ADAPTER.user_account_data(snap.state, u, after.prices, after.timestamp))
        if got != mine:
            problems.append(f"{where}: after: getUserAccountData({u}): chain {got} adapter {mine}")
    return problems


@pytest.mark.parametrize("seed", range(DEFAULT_CASES))
def test_differential_case(market: Market, seed: int) -> None:
    problems = run_case(market, seed)
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_differential_many(market: Market, request: pytest.FixtureRequest) -> None:
    """``DEFICIT_AAVE_DIFF_CASES`` cases (default 2000); runs only when selected with ``-m slow``."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("long differential run: select it with -m slow")
    problems: list[str] = []
    outcomes: Counter[str] = Counter()
    TALLY.clear()
    for seed in range(10_000, 10_000 + SLOW_CASES):
        found = run_case(market, seed)
        problems += found
        outcomes["mismatch" if found else "match"] += 1
    print(f"\n{SLOW_CASES} cases: {dict(outcomes)}; calls: {dict(sorted(TALLY.items()))}")
    assert not problems, f"{dict(outcomes)}\n" + "\n".join(problems[:50])


def test_base_market_is_busy(market: Market) -> None:
    """The prepared chain has what the cases rely on: moving indices, stable debt everywhere."""
    market.reset()
    snap = read_state(market.m, [market.lp, market.background])
    for r in snap.state.reserves.values():
        assert r.stable_debt_total_principal > 0 or r.configuration.liquidation_threshold == 0
        assert (
            r.liquidity_index > RAY and r.variable_borrow_index > RAY and r.current_variable_borrow_rate > 0
        )
    assert replace(snap.state.reserves[market.m.asset("WETH")]).treasury == market.m.treasury
