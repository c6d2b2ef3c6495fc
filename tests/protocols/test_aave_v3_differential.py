"""``protocols.aave_v3`` against the real Aave v3.0.2 bytecode (npm @aave/core-v3 1.19.3) on anvil.

One market is deployed per module: the default reserves (WETH 18, WBTC 8, USDC 6, DAI 18 with
stable borrowing, LINK 18 isolated) plus ZLT (18 decimals, borrowable, liquidation threshold 0),
e-mode 1 (USDC, DAI; no price source) and e-mode 2 (WETH, WBTC; priced by WETH's oracle). A
liquidity provider and a background borrower (variable and stable debt in every reserve) make
rates and indices move; that chain is snapshotted. Each case (seeded) reverts to it, builds a
random position (multi-collateral / multi-debt, e-mode 1 or 2, isolation, same-asset, stable
debt, a collateral left disabled), advances time, moves prices (aiming at a random health
factor), sometimes changes risk parameters (LT, LTV 0, fee, bonus, e-mode LT, pause), funds a
liquidator (fresh, already holding the collateral's aToken, in isolation mode, or the user
itself), and then, for each of ``CALLS_PER_CASE`` liquidation calls on that position (prices
re-aimed in between):

1. reads the adapter state off the chain at the head block B (``aave_v3_chain_state``) and
   compares ``Pool.getUserAccountData`` at B with the adapter, all six fields, for every user;
2. predicts ``liquidationCall`` in block B+1 with the adapter, sends it, and compares: the revert
   reason, or every event the pool and the Aave tokens emit (names, arguments, emitters, order,
   incl. ``LiquidationCall`` and the treasury's ``BalanceTransfer``), the treasury's scaled
   aToken delta against the fee, and the whole state at B+1 (reserves: indices, rates,
   treasury accrual, supplies, isolation debt, aToken cash; users: scaled balances, previous
   indices, stable principal/rate/timestamp, flags) against the committed outcome;
3. applies the outcome's events to the state at B as ingested events (``apply``) and requires
   the committed state again;
4. compares ``getUserAccountData`` at B+1 with the committed state.

Protocol fees are set high on some reserves (up to 100 % of the bonus) so that the rounding of
the fee is visible in most liquidations.

``DEFICIT_AAVE_DIFF_CASES`` sets the number of cases of the ``slow`` run (default 2000; it runs
only when selected: ``pytest -m slow tests/protocols/test_aave_v3_differential.py``).
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
from ingest.devnet import Anvil, anvil_binary
from ingest.errors import ConfigError
from protocols.aave_v3 import AaveV3Adapter, AaveV3State
from protocols.aave_v3.reserve_logic import get_normalized_income
from protocols.domain import EventRef, LiquidationOutcome, ProtocolEvent
from protocols.fixed_point import RAY, ray_div_half_up
from tests.protocols.aave_v3_chain_state import ChainSnapshot, read_state
from tests.protocols.aave_v3_market import (
    DEFAULT_RESERVES,
    MAX_UINT256,
    AaveV3Market,
    EModeSpec,
    ReserveSpec,
)

pytestmark = pytest.mark.anvil

GENESIS = 1_700_000_000
DAY = 86_400
BLOCK_INTERVAL = 12
DEFAULT_CASES = 100
CALLS_PER_CASE = 2  # liquidation calls checked per position
SLOW_CASES = int(os.environ.get("DEFICIT_AAVE_DIFF_CASES", "2000"))
USD = 10**8  # oracle base unit
UNLISTED, UNLISTED_ADDRESS = "UNLISTED", "0x" + "77" * 20  # an asset the pool does not know

ADAPTER = AaveV3Adapter()
#: what the checked liquidation calls did (the slow run prints it)
TALLY: Counter[str] = Counter()
SIGNATURES = {(spec.role, spec.name): spec.signature for spec in ADAPTER.events}


def _reserves() -> tuple[ReserveSpec, ...]:
    out = []
    fees = {"WETH": 1000, "WBTC": 5000, "USDC": 10000, "DAI": 3000, "LINK": 10000}  # bps of the bonus
    for s in DEFAULT_RESERVES:
        if s.symbol in ("WETH", "WBTC"):
            s = replace(s, emode_category=2)
        out.append(replace(s, liquidation_protocol_fee=fees[s.symbol]))
    out.append(ReserveSpec("ZLT", 18, 1 * USD, reserve_factor=1000, supply_cap=10_000_000,
                           borrow_cap=5_000_000))
    return tuple(out)


EMODES = (EModeSpec(1, 9300, 9500, 10100, "Stablecoins"), EModeSpec(2, 9000, 9300, 10200, "ETH-correlated"))


@dataclass
class Market:
    m: AaveV3Market
    lp: str
    background: str
    base: str  # snapshot id of the prepared chain

    def reset(self) -> None:
        self.m.revert(self.base)
        self.base = self.m.snapshot()


def prepare_market(chain: DevChain) -> Market:
    """Deploy the test market on ``chain`` and give it a liquidity provider and a background
    borrower (variable and stable debt), ten days of interest, and one more touch of every
    reserve; the returned :class:`Market` holds a snapshot of that chain."""
    m = AaveV3Market.deploy(chain, _reserves(), EMODES, block_interval=BLOCK_INTERVAL)
    # e-mode 2 is priced by WETH's feed (the v3.0 category price source)
    m.configure("setEModeCategory", 2, 9000, 9300, 10200, m.asset("WETH"), "ETH-correlated")
    lp, background = m.new_user(), m.new_user()
    for sym, amount in (("WETH", 10_000), ("WBTC", 500), ("USDC", 20_000_000), ("DAI", 20_000_000),
                        ("LINK", 2_000_000), ("ZLT", 2_000_000)):
        m.supply(lp, sym, amount * m.reserve(sym).unit, fund=True)
    m.supply(background, "WETH", 5_000 * 10**18, fund=True)
    for sym, amount, mode in (("USDC", 2_000_000, 2), ("DAI", 1_000_000, 2), ("DAI", 1_000_000, 1),
                              ("WBTC", 50, 2), ("LINK", 100_000, 2), ("ZLT", 100_000, 2),
                              ("WETH", 300, 2)):
        m.borrow(background, sym, amount * m.reserve(sym).unit, mode)
    m.advance_time(10 * DAY)
    for sym in m.reserves:  # touch every reserve once more: indices above RAY
        m.supply(lp, sym, m.reserve(sym).unit, fund=True)
    return Market(m, lp, background, m.snapshot())


def anvil_or_skip() -> None:
    try:
        anvil_binary()
    except ConfigError as e:
        if os.environ.get("CI"):
            pytest.fail(str(e))  # CI must never silently skip the real-node tests
        pytest.skip(str(e))


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


def _usd_to_amount(m: AaveV3Market, sym: str, usd: int) -> int:
    return usd * USD * m.reserve(sym).unit // m.price(sym)


def _borrow_split(m: AaveV3Market, rng: random.Random, user: str, debts: list[str], fraction: float,
                  stable_ok: bool, notes: list[str]) -> None:
    avail = m.get_user_account_data(user).available_borrows_base
    budget = int(avail * fraction)
    weights = [rng.random() + 0.1 for _ in debts]
    for sym, w in zip(debts, weights, strict=True):
        base = int(budget * w / sum(weights))
        amount = base * m.reserve(sym).unit // m.price(sym)
        if amount == 0:
            continue
        mode = 1 if (sym == "DAI" and stable_ok and rng.random() < 0.6) else 2
        res = m.borrow(user, sym, amount, mode, check=False)
        notes.append(f"borrow {sym} {amount} mode {mode}: {'ok' if res.ok else res.reason}")


def _target_hf(rng: random.Random) -> float:
    r = rng.random()
    if r < 0.55:
        return rng.uniform(0.90, 1.0)
    if r < 0.77:
        return rng.uniform(0.6, 0.95)
    if r < 0.92:
        return rng.uniform(0.05, 0.6)
    return rng.uniform(1.0, 1.3)


def _aim_prices(m: AaveV3Market, snap: ChainSnapshot, user: str, down: list[str], up: list[str],
                target: float) -> dict[str, int]:
    """New prices for ``down`` (scaled by f) or, if empty, ``up`` (scaled by 1/f) that bring
    ``user``'s HF closest to ``target``: bisection on log f with the adapter's HF, which only
    chooses the input here (the chain decides the outcome)."""
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


def build_case(mk: Market, seed: int) -> Case:
    """A random position, market move and liquidation call (see the module docstring)."""
    rng = random.Random(seed)
    return choose_call(mk, rng, setup_position(mk, rng, seed))


def setup_position(mk: Market, rng: random.Random, seed: int) -> Setup:
    m = mk.m
    notes: list[str] = []
    user = m.new_user()
    r = rng.random()
    kind = ("plain" if r < 0.5 else "emode1" if r < 0.62 else "emode2" if r < 0.72 else
            "isolation" if r < 0.87 else "same_asset")
    collateral: list[str] = []
    debts: list[str] = []
    stable_ok = True
    if kind == "plain":
        collateral = rng.sample(["WETH", "WBTC", "USDC", "DAI"], rng.randint(1, 3))
        debts = rng.sample([s for s in ("USDC", "DAI", "WETH", "WBTC", "LINK", "ZLT") if s not in collateral],
                           rng.randint(1, 3))
    elif kind == "emode1":
        collateral = rng.sample(["USDC", "DAI"], rng.randint(1, 2))
        debts = rng.sample(["USDC", "DAI"], rng.randint(1, 2))
    elif kind == "emode2":
        collateral = rng.sample(["WETH", "WBTC"], rng.randint(1, 2))
        debts = rng.sample(["WETH", "WBTC"], rng.randint(1, 2))
    elif kind == "isolation":
        collateral = ["LINK"]
        debts = rng.sample(["USDC", "DAI"], rng.randint(1, 2))
    else:
        sym = rng.choice(["WETH", "USDC", "DAI"])
        collateral, debts = [sym], [sym] + ([rng.choice(["WBTC", "LINK"])] if rng.random() < 0.8 else [])
        stable_ok = False
    if "DAI" in collateral:
        stable_ok = False  # COLLATERAL_SAME_AS_BORROWING_CURRENCY
    for sym in collateral:
        usd = rng.randint(1_000, 400_000 if kind != "isolation" else 300_000)
        m.supply(user, sym, _usd_to_amount(m, sym, usd), fund=True)
    if kind == "isolation":
        m.set_collateral(user, "LINK", True)
        if rng.random() < 0.4:  # supplied but not enabled: the user is in isolation mode
            m.supply(user, "WETH", _usd_to_amount(m, "WETH", rng.randint(100, 50_000)), fund=True)
    if kind == "plain" and rng.random() < 0.2:
        m.supply(user, "ZLT", rng.randint(1, 10**6) * 10**18, fund=True)  # LT 0: never counts
    enabled = list(collateral)
    if kind == "plain" and len(collateral) > 1 and rng.random() < 0.2:
        off = collateral[-1]
        res = m.set_collateral(user, off, False, check=False)
        notes.append(f"disable {off}: {'ok' if res.ok else res.reason}")
        if res.ok:
            enabled.remove(off)
    if kind in ("emode1", "emode2"):
        m.set_user_emode(user, 1 if kind == "emode1" else 2)
    fraction = rng.uniform(0.97, 0.999) if kind == "emode2" else rng.uniform(0.5, 0.995)
    _borrow_split(m, rng, user, debts, fraction, stable_ok, notes)

    # time and prices
    dt = rng.choice([0, 0, rng.randint(1, 3_600), rng.randint(1, 30) * DAY, rng.randint(30, 800) * DAY])
    if dt:
        m.advance_time(dt)
    target = _target_hf(rng)
    snap = read_state(m, [user, mk.lp, mk.background])
    down = [s for s in enabled if s not in debts]
    up = [s for s in debts if s not in collateral]
    if kind == "emode2":  # one oracle prices everything in the category: lower its LT instead
        hf = ADAPTER.account(snap.state, user, snap.prices, snap.timestamp).health_factor_wad / 1e18
        lt = max(8251, min(9300, int(9300 * target / hf))) if hf < 1e9 else 8251
        res = m.configure("setEModeCategory", 2, 8001, lt, 10200, m.asset("WETH"), "ETH-correlated",
                          check=False)
        notes.append(f"e-mode 2 LT {lt}: {res.ok or res.reason} (target HF {target:.3f})")
    elif down or up:
        for sym, price in _aim_prices(m, snap, user, down, up, target).items():
            m.set_price(sym, price)
            notes.append(f"{sym} price -> {price}")
        notes.append(f"target HF {target:.3f}")
    _noise(m, rng, down + up)

    # risk parameter changes
    r = rng.random()
    coll_sym = rng.choice(collateral)
    spec = m.reserve(coll_sym).spec
    if r < 0.06:
        res = m.configure("configureReserveAsCollateral", m.asset(coll_sym), 0, spec.liquidation_threshold,
                          spec.liquidation_bonus, check=False)
        notes.append(f"LTV 0 on {coll_sym}: {res.ok or res.reason}")
    elif r < 0.12:
        lt = spec.liquidation_threshold * rng.randint(80, 99) // 100
        res = m.configure("configureReserveAsCollateral", m.asset(coll_sym), min(spec.ltv, lt), lt,
                          rng.choice([10100, 10500, 11000]), check=False)
        notes.append(f"LT {lt} on {coll_sym}: {res.ok or res.reason}")
    elif r < 0.2:
        fee = rng.choice([0, 1, 500, 2000, 5000, 10000])
        res = m.configure("setLiquidationProtocolFee", m.asset(coll_sym), fee, check=False)
        notes.append(f"fee {fee} on {coll_sym}: {res.ok or res.reason}")
    elif r < 0.23:
        paused = rng.choice(collateral + debts)
        res = m.configure("setReservePause", m.asset(paused), True, check=False)
        notes.append(f"pause {paused}: {res.ok or res.reason}")

    return Setup(seed, kind, user, collateral, debts, down, up, notes)


def _noise(m: AaveV3Market, rng: random.Random, keep: list[str]) -> None:
    for sym in rng.sample(list(m.reserves), rng.randint(0, 2)):  # noise on other prices
        if sym not in keep:
            m.set_price(sym, max(1, m.price(sym) * rng.randint(97, 103) // 100))


def move_again(mk: Market, rng: random.Random, s: Setup) -> None:
    """Between two calls on one position: maybe time passes, prices move towards a new HF."""
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
    """Who liquidates which collateral for which debt, how much; funds the liquidator."""
    m, user, collateral, debts, notes = mk.m, s.user, s.collateral, s.debts, s.notes
    c = rng.random()
    coll_choice = (rng.choice(collateral) if c < 0.8 else
                   rng.choice(list(m.reserves)) if c < 0.98 else UNLISTED)
    d = rng.random()
    debt_choice = rng.choice(debts) if d < 0.87 else rng.choice(list(m.reserves)) if d < 0.98 else UNLISTED
    snap = read_state(m, [user])
    held = {p.asset: p for p in ADAPTER.positions(snap.state, user, snap.timestamp + BLOCK_INTERVAL)}
    owed = held[_asset(m, debt_choice)].debt if _asset(m, debt_choice) in held else 0
    a = rng.random()
    if a < 0.3:
        amount = MAX_UINT256
    elif a < 0.6:
        amount = int(owed * rng.uniform(0.0, 1.2))
    elif a < 0.7:
        amount = owed // 2
    elif a < 0.77:
        amount = owed
    elif a < 0.9:
        amount = rng.randint(1, 2_000)
    elif a < 0.93:
        amount = 0
    else:
        amount = rng.randint(1, 10**30)
    receive = rng.random() < 0.3

    lk = rng.random()
    if lk < 0.08:
        liquidator = user
        notes.append("self-liquidation")
    else:
        liquidator = m.new_user()
        if lk < 0.25:
            sym = coll_choice if rng.random() < 0.8 else rng.choice(list(m.reserves))
            sym = sym if sym != UNLISTED else "WETH"
            res = m.supply(liquidator, sym, max(1, _usd_to_amount(m, sym, rng.randint(1, 1_000))), fund=True,
                           check=False)
            notes.append(f"liquidator holds a{sym}: {res.ok or res.reason}")
        elif lk < 0.35:
            res = m.supply(liquidator, "LINK", 100 * 10**18, fund=True, check=False)
            res = m.set_collateral(liquidator, "LINK", True, check=False) if res.ok else res
            notes.append(f"liquidator in isolation mode: {res.ok or res.reason}")
    if debt_choice != UNLISTED:
        m.fund(liquidator, debt_choice, min(amount, 3 * owed + 10 * m.reserve(debt_choice).unit))
    return Case(s.seed, s.kind, user, liquidator, _asset(m, coll_choice), _asset(m, debt_choice), amount,
                receive, notes)


def _asset(m: AaveV3Market, sym: str) -> str:
    return UNLISTED_ADDRESS if sym == UNLISTED else m.asset(sym)


def _symbol(m: AaveV3Market, asset: str) -> str:
    return UNLISTED if asset == UNLISTED_ADDRESS else m.reserve(asset).symbol


# ----- comparing -----

def _diff_states(a: AaveV3State, b: AaveV3State) -> list[str]:
    out = []
    for asset in sorted(set(a.reserves) | set(b.reserves)):
        ra, rb = a.reserves.get(asset), b.reserves.get(asset)
        if ra is None or rb is None:
            out.append(f"reserve {asset}: {ra} vs {rb}")
            continue
        for f in fields(ra):
            va, vb = getattr(ra, f.name), getattr(rb, f.name)
            if va != vb:
                out.append(f"reserve {asset} {f.name}: adapter {va} chain {vb}")
    for user in sorted(set(a.users) | set(b.users)):
        ua, ub = a.user(user), b.user(user)
        if ua.configuration != ub.configuration:
            out.append(f"user {user} configuration: adapter {ua.configuration:b} chain {ub.configuration:b}")
        if ua.emode_category != ub.emode_category:
            out.append(f"user {user} e-mode: adapter {ua.emode_category} chain {ub.emode_category}")
        for asset in sorted(set(ua.reserves) | set(ub.reserves)):
            xa, xb = ua.reserve(asset), ub.reserve(asset)
            for f in fields(xa):
                va, vb = getattr(xa, f.name), getattr(xb, f.name)
                if va != vb:
                    out.append(f"user {user} {asset} {f.name}: adapter {va} chain {vb}")
    return out


def _chain_events(m: AaveV3Market, res: object) -> list[tuple[str, str, dict[str, object]]]:
    aave = {m.pool.address}
    for r in m.reserves.values():
        for t in (r.a_token, r.stable_debt, r.variable_debt):
            assert t is not None
            aave.add(t.address)
    out = []
    for e in res.events:  # type: ignore[attr-defined]
        if e.address in aave:
            args = {snake_case(k): (v.lower() if isinstance(v, str) else v) for k, v in e.args.items()}
            out.append((e.address, e.name, args))
    return out


def _tally(case: Case, outcome: LiquidationOutcome) -> None:
    TALLY[case.kind] += 1
    TALLY["ok" if outcome.ok else f"revert {outcome.revert_reason}"] += 1
    names = [(e.role, e.name) for e in outcome.events]
    for label, hit in (("fee > 0", outcome.protocol_fee > 0),
                       ("receiveAToken", outcome.ok and case.receive_a_token),
                       ("collateral exhausted", ("pool", "ReserveUsedAsCollateralDisabled") in names),
                       ("bad debt left", bool(outcome.bad_debt)),
                       ("stable debt burned", ("stable_debt_token", "Burn") in names
                        or ("stable_debt_token", "Mint") in names),
                       ("isolation debt reduced", ("pool", "IsolationModeTotalDebtUpdated") in names),
                       ("liquidator collateral enabled", ("pool", "ReserveUsedAsCollateralEnabled") in names),
                       ("self-liquidation", outcome.ok and case.liquidator == case.user)):
        if hit:
            TALLY[label] += 1


def run_case(mk: Market, seed: int, calls: int = CALLS_PER_CASE) -> list[str]:
    """Build one position and check ``calls`` liquidation calls on it, one block after the
    other; the mismatches found (empty when the adapter agrees)."""
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
    seed = case.seed
    treasury = m.treasury
    users = {case.user, case.liquidator, treasury, mk.lp, mk.background}
    snap = read_state(m, users)
    problems: list[str] = []
    where = f"seed {seed} ({case.kind}; {'; '.join(case.notes)})"

    for u in sorted(users):
        got = tuple(m.get_user_account_data(u, snap.block))
        mine = tuple(ADAPTER.user_account_data(snap.state, u, snap.prices, snap.timestamp))
        if got != mine:
            problems.append(f"{where}: getUserAccountData({u}) at {snap.block}: chain {got} adapter {mine}")

    ts = snap.timestamp + BLOCK_INTERVAL
    outcome = ADAPTER.liquidate(snap.state, case.user, case.collateral, case.debt, case.debt_to_cover,
                                snap.prices, ts, case.receive_a_token, liquidator=case.liquidator)
    if case.debt != UNLISTED_ADDRESS:
        m.ensure_approved(case.liquidator, case.debt)  # (approved when funded: mines nothing)
    res = m._tx(case.liquidator, m.pool, "liquidationCall", case.collateral, case.debt, case.user,
                case.debt_to_cover, case.receive_a_token, check=False)
    call = (f"liquidationCall({_symbol(m, case.collateral)}, {_symbol(m, case.debt)}, "
            f"{case.debt_to_cover}, receiveAToken={case.receive_a_token})")
    assert res.block_number == snap.block + 1
    assert int(m.chain.block(res.block_number)["timestamp"], 16) == ts
    _tally(case, outcome)
    if res.ok != outcome.ok or (not res.ok and res.reason != outcome.revert_reason):
        problems.append(f"{where}: {call}: chain {'ok' if res.ok else res.reason!r}, adapter "
                        f"{'ok' if outcome.ok else outcome.revert_reason!r}")
        return problems
    if not res.ok:
        return problems

    chain_events = _chain_events(m, res)
    mine_events = [(e.address, e.name, dict(e.args)) for e in outcome.events]
    if chain_events != mine_events:
        problems.append(f"{where}: {call} events differ:\n  chain   {chain_events}\n  adapter {mine_events}")
    ev = res.event("LiquidationCall")
    amounts = (outcome.debt_repaid, outcome.collateral_seized)
    if (ev["debtToCover"], ev["liquidatedCollateralAmount"]) != amounts:
        problems.append(f"{where}: {call}: LiquidationCall amounts chain {ev} adapter {outcome}")

    after = read_state(m, users, res.block_number)
    index = get_normalized_income(after.state.reserves[case.collateral], after.timestamp)
    fee_scaled = m.a_scaled_balance(treasury, case.collateral, res.block_number) - \
        m.a_scaled_balance(treasury, case.collateral, snap.block)
    if fee_scaled != (ray_div_half_up(outcome.protocol_fee, index) if outcome.protocol_fee else 0):
        problems.append(f"{where}: {call}: treasury scaled delta {fee_scaled}, fee {outcome.protocol_fee}")

    replayed = copy.deepcopy(snap.state)
    ADAPTER.commit(snap.state, outcome)
    problems += [f"{where}: {call}: after: {d}" for d in _diff_states(snap.state, after.state)]
    # the outcome's events, applied as if ingested, give the committed state too (bar the
    # treasury accrual, which no event carries)
    for i, ev_out in enumerate(outcome.events):
        sig = SIGNATURES.get((ev_out.role, ev_out.name))
        if sig is not None:
            ADAPTER.apply(replayed, ProtocolEvent(ev_out.name, sig, ev_out.address, ev_out.role, ev_out.args,
                                                  EventRef(after.block, i, res.tx_hash, after.timestamp)))
    for asset, r in replayed.reserves.items():
        accrued = snap.state.reserves[asset].accrued_to_treasury
        replayed.reserves[asset] = replace(r, accrued_to_treasury=accrued)
    problems += [f"{where}: {call}: events replayed: {d}" for d in _diff_states(replayed, snap.state)]
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
    outcomes: dict[str, int] = {}
    TALLY.clear()
    for seed in range(10_000, 10_000 + SLOW_CASES):
        found = run_case(market, seed)
        problems += found
        outcomes["mismatch" if found else "match"] = outcomes.get("mismatch" if found else "match", 0) + 1
    print(f"\n{SLOW_CASES} cases: {outcomes}; calls: {dict(sorted(TALLY.items()))}")
    assert not problems, f"{outcomes}\n" + "\n".join(problems[:50])


def test_base_market_is_busy(market: Market) -> None:
    """The prepared chain has what the cases rely on: moving indices, stable debt, e-mode 2's
    price source."""
    market.reset()
    m = market.m
    snap = read_state(m, [market.lp, market.background])
    dai = snap.state.reserves[m.asset("DAI")]
    assert dai.stable_debt_total_principal > 0 and dai.average_stable_rate > 0
    assert all(r.liquidity_index > RAY and r.variable_borrow_index > RAY
               and r.current_variable_borrow_rate > 0 for r in snap.state.reserves.values())
    assert snap.state.emode_categories[2].price_source == m.asset("WETH")
