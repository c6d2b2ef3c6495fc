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
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

import pytest

from ingest.devchain import DevChain
from protocols.aave_v3 import AaveV3Adapter, AaveV3State
from protocols.aave_v3.reserve_logic import get_normalized_income
from protocols.domain import LiquidationOutcome
from protocols.fixed_point import RAY, ray_div_half_up
from tests.protocols import diffkit as kit
from tests.protocols.aave_v3_chain_state import read_state
from tests.protocols.aave_v3_market import (
    DEFAULT_RESERVES,
    MAX_UINT256,
    AaveV3Market,
    EModeSpec,
    ReserveSpec,
)
from tests.protocols.diffkit import (
    BLOCK_INTERVAL,
    CALLS_PER_CASE,
    DAY,
    DEFAULT_CASES,
    GENESIS,
    SLOW_CASES,
    UNLISTED,
    Case,
    Market,
    Setup,
    anvil_or_skip,
)

__all__ = ["DAY", "GENESIS", "Market", "anvil_or_skip", "build_case", "diff_states", "prepare_market"]

pytestmark = pytest.mark.anvil

USD = 10**8  # oracle base unit

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


@pytest.fixture(scope="module")
def market() -> Iterator[Market]:
    yield from kit.on_anvil(prepare_market)


# ----- building a case -----

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
    dt = kit.time_step(rng)
    if dt:
        m.advance_time(dt)
    target = kit.target_hf(rng)
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
        for sym, price in kit.aim_prices(ADAPTER, m, snap, user, down, up, target).items():
            m.set_price(sym, price)
            notes.append(f"{sym} price -> {price}")
        notes.append(f"target HF {target:.3f}")
    kit.noise(m, rng, list(m.reserves), down + up)

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


def move_again(mk: Market, rng: random.Random, s: Setup) -> None:
    kit.move_again(mk, rng, s, ADAPTER, read_state, list(mk.m.reserves))


def choose_call(mk: Market, rng: random.Random, s: Setup) -> Case:
    """Who liquidates which collateral for which debt, how much; funds the liquidator."""
    m, user, notes = mk.m, s.user, s.notes
    coll_choice, debt_choice, owed, amount, receive = kit.choose_target(mk, rng, s, ADAPTER, read_state,
                                                                        MAX_UINT256)
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
    return kit.make_case(mk, s, liquidator, coll_choice, debt_choice, owed, amount, receive)


# ----- comparing -----

def diff_states(a: AaveV3State, b: AaveV3State) -> list[str]:
    """Every reserve and user-reserve field, each user's configuration and e-mode, ``a`` vs ``b``."""
    return kit.diff_states(a, b, user_fields=("configuration", "emode_category"))


def _tally(case: Case, outcome: LiquidationOutcome) -> None:
    names = [(e.role, e.name) for e in outcome.events]
    kit.tally_call(TALLY, case, outcome, (
        ("fee > 0", outcome.protocol_fee > 0),
        ("receiveAToken", outcome.ok and case.receive_a_token),
        ("collateral exhausted", ("pool", "ReserveUsedAsCollateralDisabled") in names),
        ("bad debt left", bool(outcome.bad_debt)),
        ("stable debt burned", ("stable_debt_token", "Burn") in names
         or ("stable_debt_token", "Mint") in names),
        ("isolation debt reduced", ("pool", "IsolationModeTotalDebtUpdated") in names),
        ("liquidator collateral enabled", ("pool", "ReserveUsedAsCollateralEnabled") in names),
        ("self-liquidation", outcome.ok and case.liquidator == case.user)))


def run_case(mk: Market, seed: int, calls: int = CALLS_PER_CASE) -> list[str]:
    """Build one position and check ``calls`` liquidation calls on it; the mismatches found."""
    return kit.run_case(mk, seed, calls, setup_position, move_again, choose_call, check_call)


def check_call(mk: Market, case: Case) -> list[str]:
    """Compare account data, the liquidation call and the state after it, chain vs adapter."""
    m = mk.m
    treasury = m.treasury
    users = {case.user, case.liquidator, treasury, mk.lp, mk.background}
    snap = read_state(m, users)
    where = f"seed {case.seed} ({case.kind}; {'; '.join(case.notes)})"
    problems = kit.account_data_problems(m, ADAPTER, snap.state, users, snap.block, snap.prices,
                                         snap.timestamp, where)

    outcome, res, call = kit.send_call(mk, case, ADAPTER, snap)
    _tally(case, outcome)
    if (mismatch := kit.revert_problem(res, outcome, f"{where}: {call}")) is not None:
        return [*problems, mismatch]
    if not res.ok:
        return problems
    problems += kit.event_problems(m, res, outcome, f"{where}: {call}")

    after = read_state(m, users, res.block_number)
    # v3 only: the protocol fee goes to the treasury as aTokens at the collateral's index
    index = get_normalized_income(after.state.reserves[case.collateral], after.timestamp)
    fee_scaled = m.a_scaled_balance(treasury, case.collateral, res.block_number) - \
        m.a_scaled_balance(treasury, case.collateral, snap.block)
    if fee_scaled != (ray_div_half_up(outcome.protocol_fee, index) if outcome.protocol_fee else 0):
        problems.append(f"{where}: {call}: treasury scaled delta {fee_scaled}, fee {outcome.protocol_fee}")

    replayed = copy.deepcopy(snap.state)
    ADAPTER.commit(snap.state, outcome)
    problems += [f"{where}: {call}: after (adapter vs chain): {d}"
                 for d in diff_states(snap.state, after.state)]
    # the outcome's events, applied as if ingested, give the committed state too (bar the
    # treasury accrual, which no event carries)
    kit.apply_outcome_events(ADAPTER, SIGNATURES, replayed, outcome, after.block, res.tx_hash,
                             after.timestamp)
    for asset, r in replayed.reserves.items():
        accrued = snap.state.reserves[asset].accrued_to_treasury
        replayed.reserves[asset] = replace(r, accrued_to_treasury=accrued)
    problems += [f"{where}: {call}: events replayed vs committed: {d}"
                 for d in diff_states(replayed, snap.state)]
    problems += kit.account_data_problems(m, ADAPTER, snap.state, users, after.block, after.prices,
                                          after.timestamp, f"{where}: after")
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
    problems, outcomes = kit.run_many(market, run_case, TALLY, SLOW_CASES)
    assert not problems, f"{dict(outcomes)}\n" + "\n".join(problems[:50])


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
