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
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

import pytest

from ingest.devchain import DevChain
from protocols.aave_v2 import AaveV2Adapter, AaveV2State
from protocols.domain import LiquidationOutcome
from protocols.fixed_point import RAY
from tests.protocols import diffkit as kit
from tests.protocols.aave_v2_chain_state import read_state
from tests.protocols.aave_v2_market import DEFAULT_RESERVES, MAX_UINT256, AaveV2Market, ReserveSpec
from tests.protocols.diffkit import (
    BLOCK_INTERVAL,
    CALLS_PER_CASE,
    DAY,
    DEFAULT_CASES,
    GENESIS,
    SLOW_CASES,
    UNLISTED,
    UNLISTED_ADDRESS,
    Case,
    Market,
    Setup,
)

__all__ = ["DAY", "ETH", "GENESIS", "UNLISTED_ADDRESS", "Market", "choose_call", "diff_states",
           "prepare_market", "setup_position"]

pytestmark = pytest.mark.anvil

ETH = 10**18

ADAPTER = AaveV2Adapter()
TALLY: Counter[str] = Counter()
SIGNATURES = {(spec.role, spec.name): spec.signature for spec in ADAPTER.events}
COLLATERALS = ("WETH", "WBTC", "USDC", "DAI")


def _reserves() -> tuple[ReserveSpec, ...]:
    return (*DEFAULT_RESERVES, ReserveSpec("ZLT", 18, 3 * 10**14, reserve_factor=1000))


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
    yield from kit.on_anvil(prepare_market)


# ----- building a case -----


def _eth_to_amount(m: AaveV2Market, sym: str, eth: int) -> int:
    return max(1, eth * m.reserve(sym).unit // m.price(sym))


def _movable(syms: list[str]) -> list[str]:
    """WETH's price cannot move (the v2 AaveOracle fixes it at 1e18)."""
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

    dt = kit.time_step(rng)
    if dt:
        m.advance_time(dt)
    down = _movable([s for s in enabled if s not in debts])
    up = _movable([s for s in debts if s not in collateral])
    if down or up:
        target = kit.target_hf(rng)
        snap = read_state(m, [user])
        for sym, price in kit.aim_prices(ADAPTER, m, snap, user, down, up, target).items():
            m.set_price(sym, price)
        notes.append(f"target HF {target:.3f}")
    kit.noise(m, rng, _movable(list(m.reserves)), down + up)

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


def move_again(mk: Market, rng: random.Random, s: Setup) -> None:
    kit.move_again(mk, rng, s, ADAPTER, read_state, _movable(list(mk.m.reserves)))


def choose_call(mk: Market, rng: random.Random, s: Setup) -> Case:
    m, user, notes = mk.m, s.user, s.notes
    coll_choice, debt_choice, owed, amount, receive = kit.choose_target(mk, rng, s, ADAPTER, read_state,
                                                                        MAX_UINT256)
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
    return kit.make_case(mk, s, liquidator, coll_choice, debt_choice, owed, amount, receive)


# ----- comparing -----


def diff_states(a: AaveV2State, b: AaveV2State) -> list[str]:
    """Field-by-field differences of two states (pause flag, reserves, users), naming user,
    reserve, field."""
    return kit.diff_states(a, b, state_fields=("paused",), user_fields=("configuration",))


def _tally(case: Case, outcome: LiquidationOutcome) -> None:
    names = [(e.role, e.name) for e in outcome.events]
    kit.tally_call(TALLY, case, outcome, (
        ("drained collateral", any(n.startswith("drain") for n in case.notes)),
        ("receiveAToken", outcome.ok and case.receive_a_token),
        ("collateral exhausted", ("lending_pool", "ReserveUsedAsCollateralDisabled") in names),
        ("bad debt left", bool(outcome.bad_debt)),
        ("stable debt burned",
         ("stable_debt_token", "Burn") in names or ("stable_debt_token", "Mint") in names),
        ("treasury mint", ("a_token", "Mint") in names),
        ("liquidator collateral enabled", ("lending_pool", "ReserveUsedAsCollateralEnabled") in names),
        ("self-liquidation", outcome.ok and case.liquidator == case.user),
    ))


def run_case(mk: Market, seed: int, calls: int = CALLS_PER_CASE) -> list[str]:
    """Build one position and check ``calls`` liquidation calls on it; the mismatches."""
    return kit.run_case(mk, seed, calls, setup_position, move_again, choose_call, check_call)


def check_call(mk: Market, case: Case) -> list[str]:
    """Compare account data, the liquidation call and the state after it, chain vs adapter."""
    m = mk.m
    users = {case.user, case.liquidator, m.treasury, mk.lp, mk.background}
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
    replayed = copy.deepcopy(snap.state)
    ADAPTER.commit(snap.state, outcome)
    problems += [
        f"{where}: {call}: after (adapter vs chain): {d}" for d in diff_states(snap.state, after.state)
    ]
    kit.apply_outcome_events(ADAPTER, SIGNATURES, replayed, outcome, after.block, res.tx_hash,
                             after.timestamp)
    replayed.last_borrow = None
    problems += [
        f"{where}: {call}: events replayed vs committed: {d}" for d in diff_states(replayed, snap.state)
    ]
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
    """The prepared chain has what the cases rely on: moving indices, stable debt everywhere."""
    market.reset()
    snap = read_state(market.m, [market.lp, market.background])
    for r in snap.state.reserves.values():
        assert r.stable_debt_total_principal > 0 or r.configuration.liquidation_threshold == 0
        assert (
            r.liquidity_index > RAY and r.variable_borrow_index > RAY and r.current_variable_borrow_rate > 0
        )
    assert replace(snap.state.reserves[market.m.asset("WETH")]).treasury == market.m.treasury


def test_collateral_worth_nothing_leaves_bad_debt(market: Market) -> None:
    """A user whose only collateral left after a liquidation is 1000 wei of DAI (worth
    ``floor(price * 1000 / 1e18) = 0`` ETH wei to ``calculateUserAccountData``) has no collateral
    for the contract (``getUserAccountData``: 0 collateral, debt > 0), so the liquidation leaves
    bad debt. The outcome's ``bad_debt`` said none: it counted any non-zero enabled aToken
    balance as collateral, unlike the value the contract (and the v3 adapter) uses."""
    market.reset()
    m = market.m
    user, liq = m.new_user(), m.new_user()
    m.deposit(user, "WETH", 10 * ETH, fund=True)
    m.deposit(user, "DAI", 1000, fund=True)  # enabled on first deposit, priced at 0 ETH wei
    assert m.price("DAI") * 1000 // m.reserve("DAI").unit == 0
    m.borrow(user, "USDC", _eth_to_amount(m, "USDC", 79 * ETH // 10), 2)
    m.set_price("USDC", m.price("USDC") * 3)  # debt 23.7 ETH: half of it with the bonus > 10 WETH
    m.fund(liq, "USDC", 10**9 * m.reserve("USDC").unit)
    snap = read_state(m, [user, liq, m.treasury, market.lp, market.background])
    ts = snap.timestamp + BLOCK_INTERVAL
    weth, usdc = m.asset("WETH"), m.asset("USDC")
    outcome = ADAPTER.liquidate(snap.state, user, weth, usdc, MAX_UINT256, snap.prices, ts, liquidator=liq)
    res = m.liquidate(liq, "WETH", "USDC", user, MAX_UINT256, check=True)
    b = res.block_number
    assert b == snap.block + 1 and int(m.chain.block(b)["timestamp"], 16) == ts
    ev = res.event("LiquidationCall")
    observed = (int(ev["debtToCover"]), int(ev["liquidatedCollateralAmount"]))
    assert outcome.ok and (outcome.debt_repaid, outcome.collateral_seized) == observed
    after = m.get_user_account_data(user, b)
    assert after.total_collateral_eth == 0 < after.total_debt_eth
    assert m.a_balance(user, "WETH", b) == 0 < m.a_balance(user, "DAI", b)
    assert m.user_configuration(user, b)["DAI"] == (False, True)  # still enabled collateral
    assert dict(outcome.bad_debt) == {usdc: m.variable_debt(user, "USDC", b)}


def test_a_lost_stable_debt_mint_is_an_error_not_a_wrong_principal(market: Market) -> None:
    """The rebuild tells a stable ``Mint`` of ``mint()`` (principal := currentBalance + amount) from
    one of ``burn()`` (principal += amount) by the supply it announces. With the user's first
    stable borrow lost from the stream (a fault injected here: a real node does not lose logs,
    but an ingest gap or a replay bug would do this), the second borrow's Mint no longer matched
    the replayed supply, was taken for a burn's interest and set the principal to 500 DAI where
    the chain has about 1,500, silently. The event says what the principal was before it
    (``currentBalance - balanceIncrease``) and what the supply becomes: a mismatch with the
    replayed state now raises :class:`InconsistentEvent` at that event."""
    from protocols.errors import InconsistentEvent

    market.reset()
    m = market.m
    user = m.new_user()
    m.deposit(user, "WETH", 100 * ETH, fund=True)
    m.borrow(user, "DAI", 1_000 * ETH, 1)
    m.advance_time(30 * DAY)
    m.borrow(user, "DAI", 500 * ETH, 1)
    events = kit.logged_events(m, kit.token_roles(m, "lending_pool", "lending_pool_configurator"))
    stable = m.reserve("DAI").stable_debt
    assert stable is not None
    mints = [e for e in events if (e.address, e.name) == (stable.address, "Mint")]
    mints = [e for e in mints if e.args["on_behalf_of"] == user]
    assert len(mints) == 2 and mints[1].args["balance_increase"] > 0
    state = ADAPTER.new_state(pool=m.pool.address)
    for r in m.reserves.values():
        state.asset_decimals[r.address] = r.spec.decimals
    applied = set(SIGNATURES.values())
    with pytest.raises(InconsistentEvent) as e:
        for ev in events:
            if ev is not mints[0] and ev.signature in applied:
                ADAPTER.apply(state, ev)
    assert f"log index {mints[1].ref.log_index}" in str(e.value) and user in str(e.value)
