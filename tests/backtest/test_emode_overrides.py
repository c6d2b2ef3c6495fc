"""Counterfactual overrides of an Aave v3 e-mode category (``[[overrides.emode]]``).

An account in e-mode is liquidated by its category's threshold and bonus, not its reserves'
(``GenericLogic.calculateUserAccountData``, ``LiquidationLogic``), so a reserve override cannot
reach it; before ``[[overrides.emode]]`` existed a scenario had no way to test a change of an
e-mode category's parameters, the change Aave governance makes most often on LST and stablecoin
categories."""

from __future__ import annotations

import dataclasses
import json

import pytest

from backtest.api import run_inputs
from backtest.errors import ReplayError, ScenarioError
from backtest.scenario import parse_scenario
from protocols.aave_v3.state import EModeCategory
from protocols.domain import EventRef, ProtocolEvent
from tests.backtest.markets import COLL, FROM, T0, Book, inputs, market, scenario

NO_DELAY = "\n[liquidator]\nreaction_delay_blocks = 0\ngas_units = 0\nmin_profit_usd = 0\n"


def _emode_book() -> Book:
    """One account: 1 COLL ($2,000) against 1,500 of debt; COLL is in e-mode category 1 (LT 80 %,
    bonus 5 %) and the account uses it: HF 1.067 by the category."""
    book = market(8000, 10500, [(10**18, 1_500 * 10**6)])
    st = book.state
    st.emode_categories[1] = EModeCategory(ltv=7500, liquidation_threshold=8000, liquidation_bonus=10500)
    r = st.reserves[COLL]
    st.reserves[COLL] = dataclasses.replace(
        r, configuration=dataclasses.replace(r.configuration, emode_category=1))
    for u in st.users:
        st.users[u] = dataclasses.replace(st.users[u], emode_category=1)
    return book


def _liquidations(extra: str, events: list[ProtocolEvent] | None = None) -> list[tuple[int, int, int]]:
    inp = inputs(_emode_book(), [2000 * 10**8] * 10)
    if events:
        inp = dataclasses.replace(inp, events=events)
    out = run_inputs(scenario(extra=NO_DELAY + extra, to_block=FROM + 12), inp).output
    return [(x.block_number, x.debt_repaid, x.collateral_seized) for x in out.liquidations]


def test_a_category_threshold_override_reaches_its_accounts() -> None:
    assert _liquidations("") == []
    # the reserve's own threshold does not apply to the e-mode account (as on chain)
    reserve_lt = f'[[overrides.reserve]]\nasset = "{COLL}"\nliquidation_threshold_bps = 7000\n'
    assert _liquidations(reserve_lt) == []
    got = _liquidations("[[overrides.emode]]\ncategory = 1\nliquidation_threshold_bps = 7000\n")
    assert got and got[0][0] == FROM + 1
    # the category's bonus is what the liquidator seizes with: 5 % against 10 % by hand
    # (debt repaid in 6-decimal units at $1, collateral at $2,000 with 18 decimals)
    lt_and_bonus = _liquidations("[[overrides.emode]]\ncategory = 1\nliquidation_threshold_bps = 7000\n"
                                 "liquidation_bonus_bps = 11000\n")
    (_, repaid5, seized5), (_, repaid10, seized10) = got[0], lt_and_bonus[0]
    assert seized5 == repaid5 * 10**12 * 10500 // 10000 // 2000
    assert seized10 == repaid10 * 10**12 * 11000 // 10000 // 2000


def test_a_chain_change_of_the_category_inside_the_window_does_not_undo_the_override() -> None:
    """Governance re-sets category 1 (LT 80 %) at FROM + 3. A counterfactual run freezes the
    window's protocol events (user actions and configuration alike: the scenario's parameters are
    the ones in force), so the scenario's 70 % holds to the end and the account is liquidated at
    FROM + 1; without the override it stays healthy at 80 %."""
    b = FROM + 3
    ev = ProtocolEvent(
        "EModeCategoryAdded", "EModeCategoryAdded(uint8,uint256,uint256,uint256,address,string)",
        "0x" + "cf" * 20, "pool_configurator",
        {"category_id": 1, "ltv": 7500, "liquidation_threshold": 8000, "liquidation_bonus": 10500,
         "oracle": "0x" + "00" * 20, "label": "eth"},
        EventRef(b, 0, "0x" + "ab" * 32, T0 + 12 * (b - FROM + 1)))
    ov = "[[overrides.emode]]\ncategory = 1\nliquidation_threshold_bps = 7000\n"
    assert _liquidations("", [ev]) == []
    # the override is the only reason to liquidate: the account is liquidated, and after the
    # event it stays below 70 % (repeat_in_block aside, it is re-quoted while liquidatable)
    got = _liquidations(ov, [ev])
    assert got and got[0][0] == FROM + 1
    inp = dataclasses.replace(inputs(_emode_book(), [2000 * 10**8] * 10), events=[ev])
    out = run_inputs(scenario(extra=NO_DELAY + ov, to_block=FROM + 12), inp).output
    assert out.final_state.emode_categories[1].liquidation_threshold == 7000


def test_an_unknown_category_is_refused_before_the_replay() -> None:
    inp = inputs(_emode_book(), [2000 * 10**8] * 10)
    with pytest.raises(ReplayError, match=r"overrides.emode\[0\].category: .* no e-mode category 2"):
        run_inputs(scenario(extra=NO_DELAY + "[[overrides.emode]]\ncategory = 2\n"
                            "liquidation_bonus_bps = 10100\n"), inp)


_HEAD = ('name = "x"\nchain_id = 1\nmode = "counterfactual"\n[window]\nfrom_block = 1\nto_block = 2\n'
         '[market]\nprotocol = "{p}"\nsource = "m"\n')


@pytest.mark.parametrize(("body", "field", "message"), [
    ("[[overrides.emode]]\ncategory = 1\nltv_bps = 9000\n", "overrides.emode[0].ltv_bps", "no effect"),
    ("[[overrides.emode]]\ncategory = 1\nliquidation_bonus_bps = 100\n",
     "overrides.emode[0].liquidation_bonus_bps", r"10000 \+ the premium"),
    ("[[overrides.emode]]\ncategory = 0\nliquidation_bonus_bps = 10100\n", "overrides.emode[0].category",
     "1..255"),
    ("[[overrides.emode]]\nliquidation_bonus_bps = 10100\n", "overrides.emode[0].category", "missing"),
    ("[[overrides.emode]]\ncategory = 1\nliquidation_threshold = 9000\n",
     "overrides.emode[0].liquidation_threshold", "unknown key"),
    ("[[overrides.emode]]\ncategory = 1\n", "overrides.emode[0]", "nothing to override"),
    ("[[overrides.emode]]\ncategory = 1\nliquidation_threshold_bps = 10001\n",
     "overrides.emode[0].liquidation_threshold_bps", "0..10000"),
    ("[[overrides.emode]]\ncategory = 1\nliquidation_threshold_bps = 9000\n"
     "[[overrides.emode]]\ncategory = 1\nliquidation_bonus_bps = 10100\n", "overrides.emode[1].category",
     "already overridden"),
])
def test_bad_emode_overrides_are_refused_at_their_line(body: str, field: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message) as e:
        parse_scenario(_HEAD.format(p="aave_v3") + body, "s.toml")
    assert e.value.field == field
    assert e.value.line is not None and e.value.line >= 10


def test_aave_v2_has_no_emode_to_override() -> None:
    with pytest.raises(ScenarioError, match="aave_v2 markets have no e-mode categories") as e:
        parse_scenario(_HEAD.format(p="aave_v2") + "[[overrides.emode]]\ncategory = 1\n"
                       "liquidation_bonus_bps = 10100\n", "s.toml")
    assert e.value.field == "overrides.emode"


def test_scenarios_without_emode_overrides_keep_their_hash() -> None:
    """The canonical JSON (bt.runs.scenario_sha256, and so the run id) of a scenario that does not
    use the new table is what it was before the table existed: no 'emode' key."""
    text = (_HEAD.format(p="aave_v3")
            + f'[[overrides.reserve]]\nasset = "{COLL}"\nliquidation_bonus_bps = 10600\n')
    plain = json.loads(parse_scenario(text).canonical_json())
    assert plain["overrides"] == {"close_factor_bps": None, "reserves": [{
        "asset": COLL, "ltv_bps": None, "liquidation_threshold_bps": None, "liquidation_bonus_bps": 10600,
        "liquidation_protocol_fee_bps": None, "supply_cap": None, "borrow_cap": None}]}
    with_emode = parse_scenario(text + "[[overrides.emode]]\ncategory = 3\n"
                                "liquidation_threshold_bps = 9300\n")
    assert json.loads(with_emode.canonical_json())["overrides"]["emode"] == [
        {"category": 3, "liquidation_threshold_bps": 9300, "liquidation_bonus_bps": None}]
    assert with_emode.sha256() != parse_scenario(text).sha256()
