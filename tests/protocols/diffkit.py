"""Scaffolding shared by the Aave v2 and v3 differential and event-rebuild tests.

Both differential suites (``test_aave_v2_differential``, ``test_aave_v3_differential``) drive a
real market on anvil (:mod:`tests.protocols.aave_v2_market`, :mod:`ingest.aave_devmarket`)
through the same loop: a prepared chain is snapshotted, each seeded case reverts to it, builds a
position, aims prices at a health factor with the adapter's HF (which only *chooses* inputs: the
chain decides every outcome), funds a liquidator, sends ``liquidationCall`` and compares chain
and adapter. What is identical in the two suites lives here: the anvil fixture body, the case
records, price aiming and noise, the liquidation amount's distribution, the comparison helpers
(each returns the mismatches it found as strings; the tests assert on them), and the
log-to-``ProtocolEvent`` conversion of the event-rebuild tests. What differs per version
(positions, liquidator kinds, the treasury-fee check, what no event carries) stays in each test.

The helpers draw random numbers in exactly the order the tests did before they were shared, so
every seed still builds the same case.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any

from ingest.abi import snake_case
from ingest.devchain import DevChain, signature
from ingest.devnet import Anvil
from protocols.domain import EventRef, LiquidationOutcome, ProtocolEvent
from tests.conftest import _require_anvil as anvil_or_skip  # one rule for every real-node test

GENESIS = 1_700_000_000
DAY = 86_400
BLOCK_INTERVAL = 12
DEFAULT_CASES = 100
CALLS_PER_CASE = 2  # liquidation calls checked per position
SLOW_CASES = int(os.environ.get("DEFICIT_AAVE_DIFF_CASES", "2000"))
UNLISTED, UNLISTED_ADDRESS = "UNLISTED", "0x" + "77" * 20  # an asset the pool does not know


def on_anvil(build: Callable[[DevChain], Any]) -> Iterator[Any]:
    """Body of a module fixture: a fresh anvil (fixed genesis timestamp), ``build(chain)`` yielded,
    node stopped afterwards."""
    anvil_or_skip()
    node = Anvil(timestamp=GENESIS)
    chain = DevChain(node.url)
    try:
        yield build(chain)
    finally:
        chain.close()
        node.stop()


@dataclass
class Market:
    m: Any  # AaveV3Market or AaveV2Market
    lp: str
    background: str
    base: str  # snapshot id of the prepared chain

    def reset(self) -> None:
        self.m.revert(self.base)
        self.base = self.m.snapshot()


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


# ----- building a case -----

def target_hf(rng: random.Random) -> float:
    r = rng.random()
    if r < 0.55:
        return rng.uniform(0.90, 1.0)
    if r < 0.77:
        return rng.uniform(0.6, 0.95)
    if r < 0.92:
        return rng.uniform(0.05, 0.6)
    return rng.uniform(1.0, 1.3)


def aim_prices(adapter: Any, m: Any, snap: Any, user: str, down: list[str], up: list[str],
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
        return float(min(adapter.account(snap.state, user, prices, snap.timestamp).health_factor_wad / 1e18,
                         1e9))

    lo, hi = -4.0, 3.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if hf(mid) < target:
            lo = mid
        else:
            hi = mid
    return {m.reserve(a).symbol: p for a, p in moved(lo).items()}


def noise(m: Any, rng: random.Random, movable: list[str], keep: list[str]) -> None:
    """Move up to two other prices of ``movable`` by -3..+3 %."""
    for sym in rng.sample(movable, rng.randint(0, 2)):
        if sym not in keep:
            m.set_price(sym, max(1, m.price(sym) * rng.randint(97, 103) // 100))


def move_again(mk: Market, rng: random.Random, s: Setup, adapter: Any,
               read_state: Callable[..., Any], movable: list[str]) -> None:
    """Between two calls on one position: maybe time passes, prices move towards a new HF."""
    m = mk.m
    s.notes.append("| next call")
    if rng.random() < 0.3:
        m.advance_time(rng.randint(1, 10 * DAY))
    if (s.down or s.up) and rng.random() < 0.7:
        target = target_hf(rng)
        snap = read_state(m, [s.user])
        for sym, price in aim_prices(adapter, m, snap, s.user, s.down, s.up, target).items():
            m.set_price(sym, price)
        s.notes.append(f"re-aimed at HF {target:.3f}")
        noise(m, rng, movable, s.down + s.up)


def time_step(rng: random.Random) -> int:
    """Seconds to let pass after a position is built (0 half of the time... up to 800 days)."""
    return rng.choice([0, 0, rng.randint(1, 3_600), rng.randint(1, 30) * DAY, rng.randint(30, 800) * DAY])


def choose_target(mk: Market, rng: random.Random, s: Setup, adapter: Any,
                  read_state: Callable[..., Any], max_amount: int) -> tuple[str, str, int, int, bool]:
    """Which collateral and debt (sometimes another reserve or an unlisted asset), how much
    (``MAX_UINT256``, a share of what is owed, a few wei, 0 or a huge number) and whether the
    liquidator takes aTokens: (collateral symbol, debt symbol, owed, debt to cover, receive)."""
    m = mk.m
    c = rng.random()
    coll_choice = (rng.choice(s.collateral) if c < 0.8 else
                   rng.choice(list(m.reserves)) if c < 0.98 else UNLISTED)
    d = rng.random()
    debt_choice = rng.choice(s.debts) if d < 0.87 else rng.choice(list(m.reserves)) if d < 0.98 else UNLISTED
    snap = read_state(m, [s.user])
    held = {p.asset: p for p in adapter.positions(snap.state, s.user, snap.timestamp + BLOCK_INTERVAL)}
    owed = held[asset_of(m, debt_choice)].debt if asset_of(m, debt_choice) in held else 0
    a = rng.random()
    if a < 0.3:
        amount = max_amount
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
    return coll_choice, debt_choice, owed, amount, rng.random() < 0.3


def make_case(mk: Market, s: Setup, liquidator: str, coll_choice: str, debt_choice: str, owed: int,
              amount: int, receive: bool) -> Case:
    """Fund the liquidator with the debt asset (unless unlisted) and record the case."""
    m = mk.m
    if debt_choice != UNLISTED:
        m.fund(liquidator, debt_choice, min(amount, 3 * owed + 10 * m.reserve(debt_choice).unit))
    return Case(s.seed, s.kind, s.user, liquidator, asset_of(m, coll_choice), asset_of(m, debt_choice),
                amount, receive, s.notes)


def asset_of(m: Any, sym: str) -> str:
    return UNLISTED_ADDRESS if sym == UNLISTED else str(m.asset(sym))


def symbol_of(m: Any, asset: str) -> str:
    return UNLISTED if asset == UNLISTED_ADDRESS else str(m.reserve(asset).symbol)


def run_case(mk: Market, seed: int, calls: int, setup_position: Callable[..., Setup],
             move_again: Callable[..., None], choose_call: Callable[..., Case],
             check_call: Callable[..., list[str]]) -> list[str]:
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


def run_many(market: Market, run_case: Callable[[Market, int], list[str]], tally: Counter[str],
             cases: int) -> tuple[list[str], Counter[str]]:
    """Cases 10_000.. of the slow run: (every mismatch, match/mismatch counts); prints the counts
    and the call tally."""
    problems: list[str] = []
    outcomes: Counter[str] = Counter()
    tally.clear()
    for seed in range(10_000, 10_000 + cases):
        found = run_case(market, seed)
        problems += found
        outcomes["mismatch" if found else "match"] += 1
    print(f"\n{cases} cases: {dict(outcomes)}; calls: {dict(sorted(tally.items()))}")
    return problems, outcomes


# ----- comparing -----

def diff_states(a: Any, b: Any, state_fields: Iterable[str] = (),
                user_fields: Iterable[str] = ()) -> list[str]:
    """Field-by-field differences of two adapter states (``a`` vs ``b``): the named state-level
    fields, every field of every reserve, the named user-level fields and every field of every
    user reserve record; each names user, reserve and field."""
    out = []
    for name in state_fields:
        va, vb = getattr(a, name), getattr(b, name)
        if va != vb:
            out.append(f"{name}: {va} vs {vb}")
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
        for name in user_fields:
            va, vb = getattr(ua, name), getattr(ub, name)
            if va != vb:
                shown = (f"{va:b} vs {vb:b}" if name == "configuration" else f"{va} vs {vb}")
                out.append(f"user {user} {name}: {shown}")
        for asset in sorted(set(ua.reserves) | set(ub.reserves)):
            xa, xb = ua.reserve(asset), ub.reserve(asset)
            for f in fields(xa):
                va, vb = getattr(xa, f.name), getattr(xb, f.name)
                if va != vb:
                    out.append(f"user {user} reserve {asset} {f.name}: {va} vs {vb}")
    return out


def account_data_problems(m: Any, adapter: Any, state: Any, users: Iterable[str], block: int,
                          prices: dict[str, int], timestamp: int, where: str) -> list[str]:
    """``getUserAccountData`` at ``block`` against the adapter's, all six fields, per user."""
    out = []
    for u in sorted(users):
        got = tuple(m.get_user_account_data(u, block))
        mine = tuple(adapter.user_account_data(state, u, prices, timestamp))
        if got != mine:
            out.append(f"{where}: getUserAccountData({u}) at {block}: chain {got} adapter {mine}")
    return out


def send_call(mk: Market, case: Case, adapter: Any, snap: Any) -> tuple[LiquidationOutcome, Any, str]:
    """The adapter's prediction of ``case``'s ``liquidationCall`` in block B+1, and the call
    sent (mined in exactly that block, at the predicted timestamp): (outcome, tx result, label)."""
    m = mk.m
    ts = snap.timestamp + BLOCK_INTERVAL
    outcome = adapter.liquidate(snap.state, case.user, case.collateral, case.debt, case.debt_to_cover,
                                snap.prices, ts, case.receive_a_token, liquidator=case.liquidator)
    if case.debt != UNLISTED_ADDRESS:
        m.ensure_approved(case.liquidator, case.debt)  # (approved when funded: mines nothing)
    res = m._tx(case.liquidator, m.pool, "liquidationCall", case.collateral, case.debt, case.user,
                case.debt_to_cover, case.receive_a_token, check=False)
    call = (f"liquidationCall({symbol_of(m, case.collateral)}, {symbol_of(m, case.debt)}, "
            f"{case.debt_to_cover}, receiveAToken={case.receive_a_token})")
    assert res.block_number == snap.block + 1
    assert int(m.chain.block(res.block_number)["timestamp"], 16) == ts
    return outcome, res, call


def revert_problem(res: Any, outcome: LiquidationOutcome, where: str) -> str | None:
    """A mismatch of success or revert reason, or None."""
    if res.ok != outcome.ok or (not res.ok and res.reason != outcome.revert_reason):
        return (f"{where}: chain {'ok' if res.ok else res.reason!r}, adapter "
                f"{'ok' if outcome.ok else outcome.revert_reason!r}")
    return None


def chain_events(m: Any, res: Any) -> list[tuple[str, str, dict[str, object]]]:
    """The pool's and the Aave tokens' events of a mined call: (emitter, name, snake_case args)."""
    aave = {m.pool.address}
    for r in m.reserves.values():
        for t in (r.a_token, r.stable_debt, r.variable_debt):
            assert t is not None
            aave.add(t.address)
    return [(e.address, e.name,
             {snake_case(k): (v.lower() if isinstance(v, str) else v) for k, v in e.args.items()})
            for e in res.events if e.address in aave]


def event_problems(m: Any, res: Any, outcome: LiquidationOutcome, where: str) -> list[str]:
    """Every event (names, arguments, emitters, order) and the ``LiquidationCall`` amounts."""
    out = []
    on_chain = chain_events(m, res)
    mine = [(e.address, e.name, dict(e.args)) for e in outcome.events]
    if on_chain != mine:
        out.append(f"{where} events differ:\n  chain   {on_chain}\n  adapter {mine}")
    ev = res.event("LiquidationCall")
    amounts = (outcome.debt_repaid, outcome.collateral_seized)
    if (ev["debtToCover"], ev["liquidatedCollateralAmount"]) != amounts:
        out.append(f"{where}: LiquidationCall amounts chain {ev} adapter {outcome}")
    return out


def apply_outcome_events(adapter: Any, signatures: dict[tuple[str, str], str], state: Any,
                         outcome: LiquidationOutcome, block: int, tx_hash: str, timestamp: int) -> None:
    """Apply the outcome's events to ``state`` as if ingested (those the adapter declares)."""
    for i, ev_out in enumerate(outcome.events):
        sig = signatures.get((ev_out.role, ev_out.name))
        if sig is not None:
            adapter.apply(state, ProtocolEvent(ev_out.name, sig, ev_out.address, ev_out.role, ev_out.args,
                                               EventRef(block, i, tx_hash, timestamp)))


def tally_call(tally: Counter[str], case: Case, outcome: LiquidationOutcome,
               labels: Iterable[tuple[str, bool]]) -> None:
    """Count the case kind, the outcome and every label whose condition holds."""
    tally[case.kind] += 1
    tally["ok" if outcome.ok else f"revert {outcome.revert_reason}"] += 1
    for label, hit in labels:
        if hit:
            tally[label] += 1


# ----- event-rebuild tests -----

def token_roles(m: Any, pool_role: str, configurator_role: str) -> dict[str, str]:
    """Address -> ingest role of the market's pool, configurator and token proxies."""
    out = {m.pool.address: pool_role, m.configurator.address: configurator_role}
    for r in m.reserves.values():
        assert r.a_token and r.variable_debt and r.stable_debt
        out |= {r.a_token.address: "a_token", r.variable_debt.address: "variable_debt_token",
                r.stable_debt.address: "stable_debt_token"}
    return out


def logged_events(m: Any, roles: dict[str, str]) -> list[ProtocolEvent]:
    """Every log since genesis of the contracts in ``roles`` as the ingest would hand it to the
    adapter (decoded with the artifact's ABI, snake_case lower-cased args, block timestamp)."""
    logs = m.chain.get_logs(address=sorted(roles), from_block=0)
    stamps: dict[int, int] = {}
    out = []
    for log in logs:
        block = int(log["blockNumber"], 16)
        if block not in stamps:
            stamps[block] = int(m.chain.block(block)["timestamp"], 16)
        address = str(log["address"]).lower()
        contract = m._abi_at[address]
        name, args = contract.decode_log(log)
        entry = next(e for e in contract.abi if e.get("type") == "event" and e["name"] == name
                     and len(e["inputs"]) == len(args))
        ref = EventRef(block, int(log["logIndex"], 16), str(log["transactionHash"]), stamps[block])
        decoded = {snake_case(k): (v.lower() if isinstance(v, str) and v.startswith("0x") else v)
                   for k, v in args.items()}
        out.append(ProtocolEvent(name, signature(entry), address, roles[address], decoded, ref))
    return out
