"""Aave v2 state rebuilt from events alone equals the contracts' storage (anvil, npm 1.0.1 bytecode).

A market gets a busy history without any snapshot/revert: the differential test's random
positions and liquidations one after the other, plus repayments (variable, stable, all),
withdrawals, aToken transfers, stable↔variable swaps, flash loans (repaid, and turned into
debt), pool pauses and risk-parameter changes (collateral configuration, reserve factor,
freeze, borrowing and stable-rate switches, strategy). After every step the chain's state is
read (eth_call at the head: :mod:`tests.protocols.aave_v2_chain_state`) with
``getUserAccountData`` of every account: the checkpoints. Then every log of the pool, the
configurator and the tokens since genesis is decoded, given its ``(role, signature)`` and
block timestamp, and fed to ``AaveV2Adapter.apply`` on an empty state (seeded only with the
ERC-20 decimals, which v2's events do not carry). At each checkpoint block the rebuilt state
must equal the chain's field by field (bar what no event carries: the treasury address, the
rate strategy parameters and the LendingRateOracle rates), and every account's health must
equal ``getUserAccountData``; a mismatch names block, user, reserve and field.

Also: every event the adapter applies is declared in ``ingest.catalog`` for its role (so ingest
stores it), and contradictions raise :class:`InconsistentEvent` naming where they are.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest

from ingest import catalog
from ingest.abi import EventSpec as CatalogSpec
from ingest.abi import snake_case
from protocols.aave_v2 import AaveV2Adapter, AaveV2State
from protocols.domain import EventRef, ProtocolEvent
from protocols.errors import InconsistentEvent, UnsupportedEvent
from tests.protocols import diffkit as kit
from tests.protocols.aave_v2_chain_state import ChainSnapshot, read_state
from tests.protocols.aave_v2_market import MAX_UINT256, AaveV2Market
from tests.protocols.test_aave_v2_differential import (
    DAY,
    ETH,
    GENESIS,
    UNLISTED_ADDRESS,
    Market,
    choose_call,
    diff_states,
    prepare_market,
    setup_position,
)

ADAPTER = AaveV2Adapter()
APPLIED = {(s.role, s.signature) for s in ADAPTER.events}
CASES = 24


def test_applied_events_are_declared_for_ingest() -> None:
    roles = {
        "lending_pool": catalog.AAVE_V2_POOL,
        "lending_pool_configurator": catalog.AAVE_V2_CONFIGURATOR,
        "oracle": catalog.AAVE_V2_ORACLE,
        "a_token": catalog.AAVE_V2_ATOKEN,
        "variable_debt_token": catalog.AAVE_V2_VARIABLE_DEBT_TOKEN,
        "stable_debt_token": catalog.AAVE_V2_STABLE_DEBT_TOKEN,
    }
    declared = {(role, CatalogSpec.parse(d).signature) for role, decls in roles.items() for d in decls}
    assert APPLIED <= declared, sorted(APPLIED - declared)
    # and the argument names the handlers read are the catalog's (snake_case)
    names = {
        (role, CatalogSpec.parse(d).signature): [snake_case(p.name) for p in CatalogSpec.parse(d).params]
        for role, decls in roles.items()
        for d in decls
    }
    assert names[("stable_debt_token", "Burn(address,uint256,uint256,uint256,uint256,uint256)")][0] == "user"


# ----- a busy history, with checkpoints -----


@dataclass
class Checkpoint:
    label: str
    snap: ChainSnapshot
    account_data: dict[str, tuple[int, ...]]


def _events(m: AaveV2Market) -> list[ProtocolEvent]:
    """Every log of the market's contracts as the ingest would hand it to the adapter."""
    return kit.logged_events(m, kit.token_roles(m, "lending_pool", "lending_pool_configurator"))


class History:
    def __init__(self, mk: Market):
        self.mk = mk
        m: AaveV2Market = mk.m
        self.m = m
        self.users: set[str] = {mk.lp, mk.background, self.m.treasury}
        self.checkpoints: list[Checkpoint] = []
        new_user = m.new_user

        def tracked(eth: int = 10**21) -> str:
            u = new_user(eth)
            self.users.add(u)
            return u

        self.m.new_user = tracked  # type: ignore[method-assign]

    def checkpoint(self, label: str) -> None:
        snap = read_state(self.m, self.users)
        data = {u: tuple(self.m.get_user_account_data(u, snap.block)) for u in sorted(self.users)}
        self.checkpoints.append(Checkpoint(label, snap, data))


def _busy_history(mk: Market) -> History:
    h = History(mk)
    m = mk.m
    rng = random.Random(11)
    receiver = m._deploy("MockFlashLoanReceiver", m.provider.address)
    for k in range(CASES):
        seed = 60_000 + k
        case = choose_call(mk, rng, setup_position(mk, random.Random(seed), seed))
        if UNLISTED_ADDRESS not in (case.collateral, case.debt):
            m.liquidate(
                case.liquidator,
                case.collateral,
                case.debt,
                case.user,
                case.debt_to_cover,
                case.receive_a_token,
            )
        if m.chain.call(m.pool, "paused")[0]:
            m.configure("setPoolPause", False)
        u = case.user
        debt_sym = (
            m.reserve(case.debt).symbol if case.debt in {r.address for r in m.reserves.values()} else "DAI"
        )
        coll_sym = (
            m.reserve(case.collateral).symbol
            if case.collateral in {r.address for r in m.reserves.values()}
            else "WETH"
        )
        action = k % 8
        if action == 0 and m.variable_debt(u, debt_sym):
            m.fund(u, debt_sym, m.variable_debt(u, debt_sym) + 10)
            m.repay(u, debt_sym, rng.choice([MAX_UINT256, m.variable_debt(u, debt_sym) // 3]), check=False)
        elif action == 1 and m.stable_debt(u, debt_sym):
            m.fund(u, debt_sym, m.stable_debt(u, debt_sym) + 10)
            m.repay(u, debt_sym, rng.choice([MAX_UINT256, m.stable_debt(u, debt_sym) // 2]), 1, check=False)
        elif action == 2:
            m.withdraw(u, coll_sym, max(1, m.a_balance(u, coll_sym) // 10), check=False)
        elif action == 3:
            a_token = m.reserve(coll_sym).a_token
            assert a_token is not None
            amount = m.a_balance(u, coll_sym) // rng.choice([20, 1])  # all of it: flags move too
            if amount:
                m._tx(u, a_token, "transfer", mk.lp, amount, check=False)
            m._tx(mk.lp, a_token, "transfer", m.new_user(), m.reserve(coll_sym).unit)  # to a fresh holder
        elif action == 4:
            mode = 1 if m.stable_debt(u, debt_sym) else 2
            m._tx(u, m.pool, "swapBorrowRateMode", m.asset(debt_sym), mode, check=False)
        elif action == 5:  # flash loan repaid with its premium
            sym = rng.choice(list(m.reserves))
            m._tx(
                u,
                m.pool,
                "flashLoan",
                receiver.address,
                [m.asset(sym)],
                [m.reserve(sym).unit * 3],
                [0],
                u,
                b"",
                0,
            )
        elif action == 6:  # flash loan kept as variable debt of the caller
            m.chain.send(receiver, "setFailExecutionTransfer", True, sender=m.admin)
            whale = m.new_user()
            m.deposit(whale, "DAI", 1_000_000 * ETH, fund=True)
            m._tx(
                whale,
                m.pool,
                "flashLoan",
                receiver.address,
                [m.asset("USDC")],
                [10_000 * 10**6],
                [2],
                whale,
                b"",
                0,
            )
            m.chain.send(receiver, "setFailExecutionTransfer", False, sender=m.admin)
        else:
            m.deposit(mk.lp, "WBTC", 10**8, fund=True)
            m.withdraw(mk.lp, "USDC", rng.randint(1, 10**12))
        if k % 4 == 3:
            m.advance_time(rng.randint(1, 5) * DAY)
        h.checkpoint(f"case {seed}")
    wbtc, dai = m.asset("WBTC"), m.asset("DAI")
    for fn, *args in (
        ("setPoolPause", True),
        ("setPoolPause", False),
        ("freezeReserve", wbtc),
        ("unfreezeReserve", wbtc),
        ("setReserveFactor", wbtc, 3000),
        ("configureReserveAsCollateral", dai, 7000, 7800, 10600),
        ("disableReserveStableRate", dai),
        ("enableReserveStableRate", dai),
        ("disableBorrowingOnReserve", wbtc),
        ("enableBorrowingOnReserve", wbtc, False),
        ("setReserveInterestRateStrategyAddress", wbtc, m.reserve("WBTC").strategy.address),
    ):
        m.configure(fn, *args)
    m.advance_time(DAY)
    m.deposit(mk.lp, "WBTC", 10**6, fund=True)
    h.checkpoint("after configuration changes")
    return h


@pytest.fixture(scope="module")
def history() -> Iterator[History]:
    yield from kit.on_anvil(lambda chain: _busy_history(prepare_market(chain)))


def _compare(state: AaveV2State, cp: Checkpoint) -> list[str]:
    chain = cp.snap.state
    rebuilt = AaveV2State(
        pool=state.pool,
        paused=state.paused,
        reserves=dict(state.reserves),
        reserves_list=state.reserves_list,
        reserves_count=state.reserves_count,
        users={u: s for u, s in state.users.items() if u in cp.account_data},
    )
    for asset, r in rebuilt.reserves.items():  # what no event carries
        c = chain.reserves[asset]
        rebuilt.reserves[asset] = replace(
            r,
            treasury=c.treasury,
            interest_rate_strategy=c.interest_rate_strategy,
            market_borrow_rate=c.market_borrow_rate,
        )
    where = f"block {cp.snap.block} ({cp.label})"
    problems = [f"{where}: rebuilt vs chain: {d}" for d in diff_states(rebuilt, chain)]
    for u, got in cp.account_data.items():
        mine = tuple(ADAPTER.user_account_data(rebuilt, u, cp.snap.prices, cp.snap.timestamp))
        if mine != got:
            problems.append(f"{where}: getUserAccountData({u}): chain {got} rebuilt {mine}")
    return problems


@pytest.mark.anvil
def test_state_rebuilt_from_events_equals_storage(history: History) -> None:
    m = history.m
    state = ADAPTER.new_state(pool=m.pool.address)
    for r in m.reserves.values():  # the ERC-20's decimals(), as an ingest would read them
        state.asset_decimals[r.address] = int(m.chain.call(r.token, "decimals")[0])
    events = _events(m)
    seen: set[str] = set()
    pending = list(history.checkpoints)
    assert len(pending) >= 20
    problems: list[str] = []
    for event in [*events, None]:
        while pending and (event is None or event.ref.block_number > pending[0].snap.block):
            problems += _compare(state, pending.pop(0))
        if event is None:
            break
        if (event.role, event.signature) in APPLIED:
            ADAPTER.apply(state, event)
            seen.add(event.name)
    assert not problems, "\n".join(problems[:40])
    assert {
        "LiquidationCall",
        "BalanceTransfer",
        "Burn",
        "Mint",
        "ReserveUsedAsCollateralDisabled",
        "Repay",
        "Withdraw",
        "Swap",
        "FlashLoan",
        "Paused",
        "Unpaused",
        "CollateralConfigurationChanged",
        "ReserveFrozen",
        "BorrowingDisabledOnReserve",
        "StableRateDisabledOnReserve",
        "ReserveInterestRateStrategyChanged",
    } <= seen, seen


# ----- contradictions -----

A = {k: "0x" + k * 20 for k in ("01", "02", "03", "04", "05", "06", "08", "09", "77", "aa")}
RAY = 10**27
INIT = "ReserveInitialized(address,address,address,address,address)"
INIT_ARGS = {
    "asset": A["02"],
    "a_token": A["03"],
    "stable_debt_token": A["04"],
    "variable_debt_token": A["05"],
    "interest_rate_strategy_address": A["06"],
}


def _ev(sig: str, role: str, args: dict[str, object], address: str = A["aa"]) -> ProtocolEvent:
    return ProtocolEvent(sig.split("(")[0], sig, address, role, args, EventRef(19, 7, "0xabc", GENESIS))


def test_contradictions_raise_inconsistent_event_with_location() -> None:
    state = ADAPTER.new_state(pool=A["01"])
    with pytest.raises(InconsistentEvent, match=r"block 19, log index 7, tx 0xabc.*decimals"):
        ADAPTER.apply(state, _ev(INIT, "lending_pool_configurator", INIT_ARGS))
    state.asset_decimals[A["02"]] = 6
    ADAPTER.apply(state, _ev(INIT, "lending_pool_configurator", INIT_ARGS))
    r = state.reserves[A["02"]]
    assert (r.id, r.configuration.decimals, r.configuration.active) == (0, 6, True)
    ADAPTER.apply(
        state,
        _ev(
            "Mint(address,uint256,uint256)",
            "a_token",
            {"from": A["09"], "value": 5, "index": RAY},
            address=A["03"],
        ),
    )
    burn = {"from": A["09"], "target": A["09"], "value": 10, "index": RAY}
    with pytest.raises(
        InconsistentEvent, match=r"block 19, log index 7, tx 0xabc.*withdraws more than the balance"
    ):
        ADAPTER.apply(state, _ev("Burn(address,address,uint256,uint256)", "a_token", burn, address=A["03"]))
    with pytest.raises(
        InconsistentEvent, match=r"block 19, log index 7, tx 0xabc.*repays more than the debt"
    ):
        ADAPTER.apply(
            state,
            _ev(
                "Burn(address,uint256,uint256)",
                "variable_debt_token",
                {"user": A["09"], "amount": 1, "index": RAY},
                address=A["05"],
            ),
        )
    stable_burn = {
        "user": A["09"],
        "amount": 3,
        "current_balance": 0,
        "balance_increase": 0,
        "avg_stable_rate": 0,
        "new_total_supply": 0,
    }
    with pytest.raises(
        InconsistentEvent, match=r"block 19, log index 7, tx 0xabc.*repays more than the debt"
    ):
        ADAPTER.apply(
            state,
            _ev(
                "Burn(address,uint256,uint256,uint256,uint256,uint256)",
                "stable_debt_token",
                stable_burn,
                address=A["04"],
            ),
        )
    withdraw = {"reserve": A["02"], "user": A["09"], "to": A["09"], "amount": 1}
    with pytest.raises(InconsistentEvent, match=r"block 19, log index 7, tx 0xabc.*aToken holds 0"):
        ADAPTER.apply(state, _ev("Withdraw(address,address,address,uint256)", "lending_pool", withdraw))
    deposit = {"reserve": A["77"], "user": A["09"], "on_behalf_of": A["09"], "amount": 1, "referral": 0}
    with pytest.raises(InconsistentEvent, match=r"block 19, log index 7, tx 0xabc.*unknown reserve"):
        ADAPTER.apply(state, _ev("Deposit(address,address,address,uint256,uint16)", "lending_pool", deposit))
    transfer = {"from": A["09"], "to": A["08"], "value": 1, "index": RAY}
    with pytest.raises(InconsistentEvent, match="not a known a_token"):
        ADAPTER.apply(state, _ev("BalanceTransfer(address,address,uint256,uint256)", "a_token", transfer))
    with pytest.raises(InconsistentEvent, match="malformed"):
        ADAPTER.apply(state, _ev("ReserveFrozen(address)", "lending_pool_configurator", {}))
    with pytest.raises(InconsistentEvent, match="already listed"):
        ADAPTER.apply(state, _ev(INIT, "lending_pool_configurator", INIT_ARGS))
    with pytest.raises(UnsupportedEvent, match="block 19"):
        ADAPTER.apply(state, _ev("Supply(address,address,address,uint256,uint16)", "lending_pool", deposit))
    # nothing half-written: the failed events left the balances as they were
    assert state.user(A["09"]).reserve(A["02"]).scaled_a_token_balance == 5


def test_flash_loan_repaid_in_full_after_a_borrow_of_the_same_amount_keeps_its_premium() -> None:
    # a flash loan (mode 0) whose receiver borrowed the same asset and amount in its callback: the
    # Borrow (callback) precedes the FlashLoan in the same transaction, yet the loan was repaid with
    # its premium. Only a mode 1/2 FlashLoan follows its own Borrow directly (log index + 1; a
    # mode 0 loan emits ReserveDataUpdated first). Underlying: 1000 deposited, the callback's
    # borrow takes 100, the loan's 100 went out and came back with a premium of 9: 909.
    state = ADAPTER.new_state(pool=A["01"])
    state.asset_decimals[A["02"]] = 6
    ADAPTER.apply(state, _ev(INIT, "lending_pool_configurator", INIT_ARGS))

    def at(sig: str, args: dict[str, object], log_index: int) -> ProtocolEvent:
        return ProtocolEvent(sig.split("(")[0], sig, A["aa"], "lending_pool", args,
                             EventRef(19, log_index, "0xabc", GENESIS))

    ADAPTER.apply(state, at("Deposit(address,address,address,uint256,uint16)",
                            {"reserve": A["02"], "user": A["09"], "on_behalf_of": A["09"], "amount": 1000,
                             "referral": 0}, 1))
    ADAPTER.apply(state, at("Borrow(address,address,address,uint256,uint256,uint256,uint16)",
                            {"reserve": A["02"], "user": A["08"], "on_behalf_of": A["08"], "amount": 100,
                             "borrow_rate_mode": 2, "borrow_rate": 0, "referral": 0}, 5))
    ADAPTER.apply(state, at("ReserveDataUpdated(address,uint256,uint256,uint256,uint256,uint256)",
                            {"reserve": A["02"], "liquidity_rate": 0, "stable_borrow_rate": 0,
                             "variable_borrow_rate": 0, "liquidity_index": RAY, "variable_borrow_index": RAY},
                            9))
    flash = {"target": A["08"], "initiator": A["08"], "asset": A["02"], "amount": 100, "premium": 9,
             "referral_code": 0}
    ADAPTER.apply(state, at("FlashLoan(address,address,address,uint256,uint256,uint16)", flash, 10))
    assert state.reserves[A["02"]].a_token_underlying_balance == 909
    # a mode 2 flash loan: its Borrow directly before it, no premium kept (the 50 became debt)
    ADAPTER.apply(state, at("Borrow(address,address,address,uint256,uint256,uint256,uint16)",
                            {"reserve": A["02"], "user": A["08"], "on_behalf_of": A["08"], "amount": 50,
                             "borrow_rate_mode": 2, "borrow_rate": 0, "referral": 0}, 20))
    ADAPTER.apply(state, at("FlashLoan(address,address,address,uint256,uint256,uint16)",
                            flash | {"amount": 50, "premium": 4}, 21))
    assert state.reserves[A["02"]].a_token_underlying_balance == 859
