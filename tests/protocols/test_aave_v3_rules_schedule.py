"""Aave v3 rule selection by block (schedule + pool ``Upgraded`` logs) and the v3.3+/v3.5 events.

Expected rule sets follow from the definitions in ``protocols/aave_v3/rule_schedule.py``
(a schedule entry acts from the start of its block, an upgrade right after its log); expected
balances are worked out by hand in the comments (``floor``/``ceil`` of scaled * index / RAY).
"""

from __future__ import annotations

import pytest

from protocols.aave_v3 import (
    ETHEREUM_CORE,
    V3_0,
    V3_0_1,
    V3_2,
    V3_3,
    V3_4,
    V3_5,
    AaveV3Adapter,
    NoRuleSet,
    UnknownImplementation,
    Upgrade,
    rules_at,
)
from protocols.aave_v3.configuration import ReserveConfiguration
from protocols.aave_v3.state import ReserveData, UserReserve, UserState
from protocols.domain import EventRef, ProtocolEvent
from protocols.errors import InconsistentEvent
from protocols.fixed_point import RAY

ADAPTER = AaveV3Adapter()
CFG = ReserveConfiguration(decimals=18, active=True)
IMPL_A, IMPL_B, IMPL_X = "0x" + "0a" * 20, "0x" + "0b" * 20, "0x" + "0f" * 20
IMPLS = {IMPL_A: V3_3, IMPL_B: V3_5}
POOL = "0x" + "50" * 20
ASSET, A_TOKEN, V_TOKEN = "0x" + "c1" * 20, "0x" + "a1" * 20, "0x" + "d1" * 20
USER = "0x" + "aa" * 20


def _ref(block: int, log_index: int = 0) -> EventRef:
    return EventRef(block, log_index, "0x" + f"{block:064x}", 1_700_000_000 + block * 12)


def test_rules_at_follows_schedule_then_upgrades() -> None:
    schedule = ((100, V3_0), (500, V3_2))
    ups = (Upgrade(_ref(300, 7), IMPL_A), Upgrade(_ref(700, 2), IMPL_B))
    with pytest.raises(NoRuleSet, match="block 99"):
        rules_at(99, schedule, ups, IMPLS)
    assert rules_at(100, schedule, ups, IMPLS) is V3_0
    assert rules_at(300, schedule, ups, IMPLS, log_index=7) is V3_0  # the upgrade's own log: before it
    assert rules_at(300, schedule, ups, IMPLS, log_index=8) is V3_3
    assert rules_at(300, schedule, ups, IMPLS) is V3_3  # end of block
    assert rules_at(500, schedule, ups, IMPLS, log_index=0) is V3_2  # a later schedule entry wins
    assert rules_at(700, schedule, ups, IMPLS, log_index=2) is V3_2
    assert rules_at(10**9, schedule, ups, IMPLS) is V3_5


def test_unknown_implementation_names_the_log() -> None:
    ups = (Upgrade(_ref(300, 7), IMPL_X),)
    assert rules_at(299, ((100, V3_0),), ups, IMPLS) is V3_0  # not yet reached
    with pytest.raises(UnknownImplementation, match=r"block 300, log index 7, tx 0x0+12c") as e:
        rules_at(301, ((100, V3_0),), ups, IMPLS)
    assert IMPL_X in str(e.value) and isinstance(e.value, InconsistentEvent)


def test_ethereum_deployment_data() -> None:
    assert ETHEREUM_CORE.rule_schedule == ((16291127, V3_0_1),)  # launched on 3.0.1 (1.17.x)
    impls = ETHEREUM_CORE.implementations
    assert impls["0x9aeb8aaa1ca38634aa8c0c8933e7fb4d61091327"] is V3_3
    assert impls["0x947f0054faed3481ff4e76ca35f12fbe36cc665b"] is V3_4
    assert impls["0x97287a4f35e583d924f78ad88db8afce1379189a"] is V3_5
    assert all(a == a.lower() for a in impls)
    # new_state at the Ethereum pool picks its implementations up
    state = ADAPTER.new_state(pool="0x87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2")
    assert state.implementations == dict(impls)


def _event(name: str, signature: str, role: str, args: dict[str, object], ref: EventRef,
           address: str = POOL) -> ProtocolEvent:
    return ProtocolEvent(name, signature, address, role, args, ref)


def _upgraded(impl: str, block: int) -> ProtocolEvent:
    return _event("Upgraded", "Upgraded(address)", "pool", {"implementation": impl}, _ref(block))


def test_apply_switches_rules_on_pool_upgraded_and_rejects_unknown() -> None:
    state = ADAPTER.new_state(rules=V3_0, pool=POOL, implementations=IMPLS)
    ADAPTER.apply(state, _upgraded(IMPL_A, 10))
    assert state.rules is V3_3
    ADAPTER.apply(state, _upgraded(IMPL_B.upper().replace("0X", "0x"), 11))
    assert state.rules is V3_5
    with pytest.raises(UnknownImplementation, match="block 12, log index 0"):
        ADAPTER.apply(state, _upgraded(IMPL_X, 12))
    assert state.rules is V3_5  # unchanged
    other = _event("Upgraded", "Upgraded(address)", "pool", {"implementation": IMPL_A}, _ref(13),
                   address="0x" + "99" * 20)
    with pytest.raises(InconsistentEvent, match="not this state's pool"):
        ADAPTER.apply(state, other)


DEF_CREATED = "DeficitCreated(address,address,uint256)"
DEF_COVERED = "DeficitCovered(address,address,uint256)"


def test_deficit_events_are_applied() -> None:
    state = ADAPTER.new_state(rules=V3_3, pool=POOL)
    state.add_reserve(ReserveData(asset=ASSET, id=0, configuration=CFG,
                                  a_token=A_TOKEN, variable_debt_token=V_TOKEN))
    ADAPTER.apply(state, _event("DeficitCreated", DEF_CREATED, "pool",
                                {"user": USER, "debt_asset": ASSET, "amount_created": 700}, _ref(1)))
    ADAPTER.apply(state, _event("DeficitCreated", DEF_CREATED, "pool",
                                {"user": USER, "debt_asset": ASSET, "amount_created": 300}, _ref(2)))
    ADAPTER.apply(state, _event("DeficitCovered", DEF_COVERED, "pool",
                                {"reserve": ASSET, "caller": USER, "amount_covered": 400}, _ref(3)))
    assert state.reserves[ASSET].deficit == 700 + 300 - 400
    with pytest.raises(InconsistentEvent, match="block 4, log index 0.*covers 601.*deficit is 600"):
        ADAPTER.apply(state, _event("DeficitCovered", DEF_COVERED, "pool",
                                    {"reserve": ASSET, "caller": USER, "amount_covered": 601}, _ref(4)))
    # a deficit event under rules without deficit accounting means the rule set is wrong
    old = ADAPTER.new_state(rules=V3_2, pool=POOL)
    old.add_reserve(state.reserves[ASSET])
    with pytest.raises(InconsistentEvent, match="block 5.*v3.2 rules"):
        ADAPTER.apply(old, _event("DeficitCreated", DEF_CREATED, "pool",
                                  {"user": USER, "debt_asset": ASSET, "amount_created": 1}, _ref(5)))


SCALED_BURN = "Burn(address,address,uint256,uint256,uint256)"
SCALED_MINT = "Mint(address,address,uint256,uint256,uint256)"


def test_v35_token_events_rebuild_the_exact_scaled_change() -> None:
    # aToken: USER holds scaled 1000 at previous index RAY. v3.5 burn of amountScaled 334 at index
    # 1.5 RAY: prev = floor(1000 * 1) = 1000; next = floor(666 * 1.5) = 999; balanceIncrease =
    # floor(1000 * 1.5) - 1000 = 500; next < prev -> Burn(value = 1000 - 999 = 1, increase 500).
    # Rebuild: target = floor(1000 * 1.5) - 500 - 1 = 999 -> n = ceil(999 / 1.5) = 666 -> -334.
    index = 3 * RAY // 2
    for rules, expected in ((V3_5, 666), (V3_4, 1000 - (1 * RAY + 500 * RAY + index // 2) // index)):
        state = ADAPTER.new_state(rules=rules, pool=POOL)
        state.add_reserve(ReserveData(asset=ASSET, id=0, configuration=CFG,
                                      a_token=A_TOKEN, variable_debt_token=V_TOKEN))
        state.users[USER] = UserState(0b10, 0, {ASSET: UserReserve(scaled_a_token_balance=1000,
                                                                   a_token_previous_index=RAY)})
        ADAPTER.apply(state, _event("Burn", SCALED_BURN, "a_token",
                                    {"from": USER, "target": USER, "value": 1, "balance_increase": 500,
                                     "index": index}, _ref(1), address=A_TOKEN))
        # v3.4 (half-up rayDiv of value + increase = 501 at 1.5 RAY = 334) happens to agree here
        assert state.users[USER].reserves[ASSET].scaled_a_token_balance == expected == 666
    # debt token, v3.5 mint (borrow) of amountScaled 10 onto scaled 3 at index 1.1 RAY, previous RAY:
    # prev = ceil(3 * 1) = 3; next = ceil(13 * 1.1) = ceil(14.3) = 15; increase = ceil(3.3) - 3 = 1;
    # Mint(value = 15 - 3 = 12, increase 1). Rebuild: target = 4 - 1 + 12 = 15 -> n = floor(15/1.1) = 13.
    state = ADAPTER.new_state(rules=V3_5, pool=POOL)
    state.add_reserve(ReserveData(asset=ASSET, id=0, configuration=CFG,
                                  a_token=A_TOKEN, variable_debt_token=V_TOKEN,
                                  variable_debt_scaled_total_supply=3))
    state.users[USER] = UserState(0b01, 0, {ASSET: UserReserve(scaled_variable_debt=3,
                                                               variable_debt_previous_index=RAY)})
    ADAPTER.apply(state, _event("Mint", SCALED_MINT, "variable_debt_token",
                                {"caller": USER, "on_behalf_of": USER, "value": 12, "balance_increase": 1,
                                 "index": 11 * RAY // 10}, _ref(2), address=V_TOKEN))
    assert state.users[USER].reserves[ASSET].scaled_variable_debt == 13
    assert state.reserves[ASSET].variable_debt_scaled_total_supply == 13
    # a value no scaled balance can produce is rejected: now scaled 13 (previous index 1.1 RAY);
    # at index 2.5 RAY bal(13) = ceil(32.5) = 33; with increase 18 and value 1 the target is
    # 33 - 18 + 1 = 16, n = floor(16 / 2.5) = 6, but ceil(6 * 2.5) = 15 != 16
    with pytest.raises(InconsistentEvent, match="block 3.*no scaled balance"):
        ADAPTER.apply(state, _event("Mint", SCALED_MINT, "variable_debt_token",
                                    {"caller": USER, "on_behalf_of": USER, "value": 1,
                                     "balance_increase": 33 - 15, "index": 5 * RAY // 2}, _ref(3),
                                    address=V_TOKEN))
