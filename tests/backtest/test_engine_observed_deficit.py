"""Historical mode, Aave v3.3+: an on-chain liquidation that leaves debt without collateral books
it as a reserve deficit (``DeficitCreated`` logs in its transaction, before ``LiquidationCall``).
The observed liquidation used to carry no bad debt (a plausible 0), so the bad-debt metric's
*realized* figure never counted what the chain wrote off."""

from __future__ import annotations

import copy
import dataclasses

from backtest.api import run_inputs
from protocols.aave_v3 import V3_3
from protocols.domain import EventRef, ProtocolEvent
from tests.backtest.markets import ADAPTER, COLL, DEBT, FROM, inputs, market, scenario, user

MAX = 2**256 - 1
LIQUIDATOR = "0x" + "4c" * 20


def test_an_observed_liquidation_carries_the_deficit_its_transaction_booked() -> None:
    # 1 collateral token against 700 debt units; the collateral falls to $500 (HF 0.57): under the
    # v3.3 rules the whole position is liquidated (under $2,000), all collateral is seized and the
    # rest of the debt, 700 - 500 / 1.05, is written off as the debt reserve's deficit
    book = market(8000, 10500, [(10**18, 700 * 10**6)])
    book.state.rules = V3_3
    path = [1000 * 10**8, 500 * 10**8, 500 * 10**8, 500 * 10**8]
    inp = inputs(book, path)
    block = FROM + 4
    ts = inp.blocks.timestamp(block)
    # what the chain did at the top of `block`, computed by the adapter on a copy of the state then
    # (no event before it in the window: the state is the window's start, the prices the path's)
    out = ADAPTER.liquidate(copy.deepcopy(book.state), user(0), COLL, DEBT, MAX,
                            {COLL: 500 * 10**8, DEBT: 10**8}, ts, False, liquidator=LIQUIDATOR)
    assert out.ok, out.revert_reason
    assert set(out.bad_debt) == {DEBT} and out.bad_debt[DEBT] > 0
    specs = {(s.role, s.signature.split("(")[0]): s.signature for s in ADAPTER.events}
    tx = "0x" + "ab" * 32
    events = [ProtocolEvent(e.name, specs[(e.role, e.name)], e.address, e.role, e.args,
                            EventRef(block, i, tx, ts))
              for i, e in enumerate(x for x in out.events if (x.role, x.name) in specs)]
    names = [e.name for e in events]
    assert names.index("DeficitCreated") < names.index("LiquidationCall")
    res = run_inputs(scenario("historical", to_block=FROM + len(path) + 1, extra='[metrics]\nnames = '
                              '["bad_debt", "liquidations", "socialization"]\n'),
                     dataclasses.replace(inp, events=events))
    (obs,) = [x for x in res.output.liquidations if x.observed]
    want = out.bad_debt[DEBT] * 10**8 // 10**6  # $1 debt token, 6 decimals, USD with 8
    assert dict(obs.bad_debt) == dict(out.bad_debt) and obs.bad_debt_value == want
    bd = res.summary["bad_debt"]
    assert bd["realized_value"] == want  # it was 0: the chain's write-off was not counted
    # booked once: socialization counts the same deficit from the DeficitCreated event itself
    soc = res.summary["socialization"]
    assert soc["deficit_created_value"] == want and soc["end_deficit_outstanding_value"] == want


def test_before_v3_3_an_observed_liquidation_carries_the_debt_it_left_without_collateral() -> None:
    """The same liquidation under v3.0 rules: nothing is booked (no DeficitCreated), the debt left
    without collateral stays on the account. A simulated liquidation reports that debt as its
    ``bad_debt`` (the adapter's outcome); the observed one reported 0, so bt.liquidations (and
    the report's "bad debt created") said the chain's liquidations left none where the model's
    identical ones did."""
    book = market(8000, 10500, [(10**18, 700 * 10**6)])
    path = [1000 * 10**8, 500 * 10**8, 500 * 10**8, 500 * 10**8]
    inp = inputs(book, path)
    block = FROM + 4
    ts = inp.blocks.timestamp(block)
    out = ADAPTER.liquidate(copy.deepcopy(book.state), user(0), COLL, DEBT, MAX,
                            {COLL: 500 * 10**8, DEBT: 10**8}, ts, False, liquidator=LIQUIDATOR)
    assert out.ok, out.revert_reason
    assert set(out.bad_debt) == {DEBT} and out.bad_debt[DEBT] > 0  # v3.0: left on the account
    specs = {(s.role, s.signature.split("(")[0]): s.signature for s in ADAPTER.events}
    tx = "0x" + "ab" * 32
    events = [ProtocolEvent(e.name, specs[(e.role, e.name)], e.address, e.role, e.args,
                            EventRef(block, i, tx, ts))
              for i, e in enumerate(x for x in out.events if (x.role, x.name) in specs)]
    assert "DeficitCreated" not in [e.name for e in events]
    res = run_inputs(scenario("historical", to_block=FROM + len(path) + 1, extra='[metrics]\nnames = '
                              '["bad_debt", "liquidations"]\n'), dataclasses.replace(inp, events=events))
    (obs,) = [x for x in res.output.liquidations if x.observed]
    assert dict(obs.bad_debt) == dict(out.bad_debt)
    assert obs.bad_debt_value == out.bad_debt[DEBT] * 10**8 // 10**6
    bd = res.summary["bad_debt"]
    assert bd["realized_value"] == 0  # nothing booked: it is the account's unrealized bad debt
    assert bd["end_unrealized_oracle_value"] == obs.bad_debt_value


def test_a_whole_collateral_liquidation_is_predicted_as_the_chain_ran_it() -> None:
    """The bot passed type(uint256).max and got the whole collateral (1e18) for 476.190476 debt;
    the event reports that actual amount as debtToCover. Replayed with it, the adapter seizes
    999999999600000000 (debt -> collateral rounds down), so the prediction differed from the event:
    a false fidelity error, and the observed protocol fee (v3: the prediction's) from a different
    seizure. The event does not carry the argument: when the amount repaid does not reproduce it
    and type(uint256).max does, the prediction is the latter's."""
    book = market(8000, 10500, [(10**18, 700 * 10**6)], fee=1000)
    path = [1000 * 10**8, 500 * 10**8, 500 * 10**8, 500 * 10**8]
    inp = inputs(book, path)
    block = FROM + 4
    ts = inp.blocks.timestamp(block)
    prices = {COLL: 500 * 10**8, DEBT: 10**8}
    out = ADAPTER.liquidate(copy.deepcopy(book.state), user(0), COLL, DEBT, MAX, prices, ts, False,
                            liquidator=LIQUIDATOR)
    exact = ADAPTER.liquidate(copy.deepcopy(book.state), user(0), COLL, DEBT, out.debt_repaid, prices, ts,
                              False, liquidator=LIQUIDATOR)
    assert out.ok and exact.ok and exact.collateral_seized < out.collateral_seized  # the rounding
    specs = {(s.role, s.signature.split("(")[0]): s.signature for s in ADAPTER.events}
    tx = "0x" + "ab" * 32
    events = [ProtocolEvent(e.name, specs[(e.role, e.name)], e.address, e.role, e.args,
                            EventRef(block, i, tx, ts))
              for i, e in enumerate(x for x in out.events if (x.role, x.name) in specs)]
    res = run_inputs(scenario("historical", to_block=FROM + len(path) + 1, extra='[metrics]\nnames = '
                              '["liquidations", "fidelity"]\n'), dataclasses.replace(inp, events=events))
    (obs,) = [x for x in res.output.liquidations if x.observed]
    assert obs.predicted is not None and obs.predicted.ok
    p = obs.predicted
    assert (p.debt_repaid, p.collateral_seized) == (obs.debt_repaid, obs.collateral_seized)
    assert obs.protocol_fee == out.protocol_fee > 0


def test_a_liquidation_backrunning_the_answer_in_its_block_has_delay_zero() -> None:
    """The answer taking the collateral to $500 (HF 0.57) lands at FROM+2 and a bot liquidates in
    the same block, after it. The replay evaluates accounts at block ends, so it never saw the
    account liquidatable before the liquidation: the delay was unknown (the liquidations metric
    left it out of its mean, which so counted only the slower ones). The account is liquidatable
    on the state and prices just before the transaction: liquidatable since FROM+2, delay 0."""
    book = market(8000, 10500, [(10**18, 700 * 10**6)])
    path = [1000 * 10**8, 500 * 10**8, 500 * 10**8]
    inp = inputs(book, path)
    block = FROM + 2
    ts = inp.blocks.timestamp(block)
    out = ADAPTER.liquidate(copy.deepcopy(book.state), user(0), COLL, DEBT, 100 * 10**6,
                            {COLL: 500 * 10**8, DEBT: 10**8}, ts, False, liquidator=LIQUIDATOR)
    assert out.ok, out.revert_reason
    specs = {(s.role, s.signature.split("(")[0]): s.signature for s in ADAPTER.events}
    events = [ProtocolEvent(e.name, specs[(e.role, e.name)], e.address, e.role, e.args,
                            EventRef(block, i + 1, "0x" + "cd" * 32, ts))
              for i, e in enumerate(x for x in out.events if (x.role, x.name) in specs)]
    res = run_inputs(scenario("historical", to_block=FROM + len(path) + 1, extra='[metrics]\nnames = '
                              '["liquidations"]\n'), dataclasses.replace(inp, events=events))
    (obs,) = [x for x in res.output.liquidations if x.observed]
    assert (obs.block_number, obs.liquidatable_since_block, obs.delay_blocks) == (block, block, 0)
    s = res.summary["liquidations"]
    assert (s["observed_delay_unknown"], s["observed_delay_blocks_max"]) == (0, 0)
