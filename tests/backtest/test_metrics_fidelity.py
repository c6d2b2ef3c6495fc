"""Fidelity: (user, block) matching with a tolerance, precision/recall, and amount errors, driven
through the hooks with hand-built liquidations; then on the real anvil warehouse."""

from __future__ import annotations

import dataclasses

import pytest

from backtest.metrics.base import Liquidation, MetricError
from backtest.metrics.fidelity import FIDELITY, Fidelity, match
from protocols.domain import LiquidationOutcome

from .metric_market import USDC, WETH, StubView, market, scenario

U1, U2, U3 = ("0x" + c * 40 for c in "123")


def _liq(user: str, block: int, *, observed: bool, repaid: int = 0, seized: int = 0,
         predicted: LiquidationOutcome | None = None, since: int | None = None) -> Liquidation:
    return Liquidation(observed=observed, committed=observed, block_number=block,
                       log_index=3 if observed else None, tx_hash="0x" + "ab" * 32 if observed else None,
                       timestamp=block * 12, user=user, liquidator="0x" + "99" * 20, collateral_asset=WETH,
                       debt_asset=USDC, debt_to_cover=repaid, debt_repaid=repaid, collateral_seized=seized,
                       protocol_fee=0, receive_a_token=False, debt_repaid_value=repaid * 100,
                       collateral_seized_value=0, protocol_fee_value=0, liquidatable_since_block=since,
                       predicted=predicted)


def _outcome(user: str, repaid: int, seized: int) -> LiquidationOutcome:
    return LiquidationOutcome(True, None, user, WETH, USDC, repaid, seized, 0)


def test_match_is_one_to_one_within_tolerance() -> None:
    obs = [(U1, 100), (U2, 105), (U1, 120)]
    pred = [(U1, 100), (U2, 103), (U3, 110), (U1, 100)]
    assert match(obs, pred, 0) == [0, None, None]
    assert match(obs, pred, 2) == [0, 1, None]
    assert match(obs, pred, 20) == [0, 1, 3]  # the second U1 prediction serves the second U1 observation


def test_precision_recall_and_amount_errors_by_hand() -> None:
    view = StubView(market(), scenario(["fidelity"]), {WETH: 2000 * 10**8, USDC: 10**8})
    view.mode = "historical"  # observed liquidations: a historical run's
    m = Fidelity({"tolerance_blocks": 2})
    m.on_run_start(view)
    # observed: U1@100 predicted exactly; U2@105: the port says 1 unit less repaid, 3 wei less seized;
    # U3@130: the adapter predicted a revert
    m.on_liquidation(view, _liq(U1, 100, observed=True, repaid=500, seized=7,
                                predicted=_outcome(U1, 500, 7)))
    m.on_liquidation(view, _liq(U2, 105, observed=True, repaid=300, seized=10,
                                predicted=_outcome(U2, 299, 7)))
    m.on_liquidation(view, _liq(U3, 130, observed=True, repaid=1, seized=1,
                                predicted=LiquidationOutcome(False, "45", U3, WETH, USDC)))
    # the model's predictions: U1@99 (within 2), U2@103 and U2@104 (one episode), U1@150 (nobody did)
    for user, b, since in ((U1, 99, 98), (U2, 103, 103), (U2, 104, 103), (U1, 150, 150)):
        m.on_liquidation(view, _liq(user, b, observed=False, repaid=1, seized=1, since=since))
    s = m.summary()
    assert (s["observed"], s["predicted"], s["matched"]) == (3, 4, 2)
    assert s["precision"] == pytest.approx(2 / 4) and s["recall"] == pytest.approx(2 / 3)
    assert s["predicted_episodes"] == 3 and s["precision_episodes"] == pytest.approx(2 / 3)
    assert s["amounts_compared"] == 2 and s["amounts_exact"] == 1 and s["predicted_reverts"] == 1
    assert s["debt_repaid_mismatches"] == 1 and s["collateral_seized_mismatches"] == 1
    # 1 USDC unit at $1 is 100 (1e8 per USD / 1e6 per USDC); 3 wei of WETH floor to 0
    assert s["debt_repaid_abs_error_max_value"] == 100 and s["collateral_seized_abs_error_sum_value"] == 0
    rows = [dict(zip(FIDELITY.column_names(), r, strict=True)) for r in m.rows()[FIDELITY.fqn]]
    assert [(r["block_number"], r["user"], r["kind"], r["matched"], r["predicted_block"]) for r in rows] == [
        (100, U1, "observed", True, 99), (104, U2, "false_positive", False, 104),
        (105, U2, "observed", True, 103), (130, U3, "observed", False, None),
        (150, U1, "false_positive", False, 150)]
    assert rows[0]["debt_repaid_error_raw"] == 0 and rows[0]["collateral_seized_error_raw"] == 0
    assert rows[2]["debt_repaid_error_raw"] == 1 and rows[2]["collateral_seized_error_raw"] == 3
    assert rows[3]["predicted_revert"] == "45" and rows[3]["predicted_debt_repaid_raw"] is None
    assert rows[3]["debt_repaid_abs_error_value"] is None
    assert rows[1]["collateral_seized_abs_error_value"] is None
    assert (rows[2]["debt_repaid_abs_error_value"], rows[2]["collateral_seized_abs_error_value"]) == (100, 0)
    # exact matching (tolerance 0): nothing matches (U1's prediction is at 99, U2's at 103/104)
    m0 = Fidelity()
    for liq in m._observed + m._predicted:
        m0.on_liquidation(view, liq)
    assert m0.summary()["matched"] == 0 and m0.summary()["recall"] == 0.0


def test_amount_errors_in_two_assets_are_valued_at_the_liquidations_prices() -> None:
    """Errors in USDC units and in wei are not added as raw units: each is valued at the oracle
    price of its asset when its liquidation happened, then summed (base currency, USD 1e8)."""
    view = StubView(market(), scenario(["fidelity"]), {WETH: 2000 * 10**8, USDC: 10**8})
    view.mode = "historical"  # observed liquidations: a historical run's
    m = Fidelity()
    m.on_run_start(view)
    # U1 (WETH collateral, USDC debt): the port repays 5 USDC more and seizes 0.001 WETH less
    m.on_liquidation(view, _liq(U1, 100, observed=True, repaid=900 * 10**6, seized=5 * 10**17,
                                predicted=_outcome(U1, 905 * 10**6, 5 * 10**17 + 10**15)))
    # U2 (USDC collateral, WETH debt), at WETH $2500: 0.01 WETH less repaid, 3 USDC units more seized
    view.at(110, 110 * 12)
    view.prices = {WETH: 2500 * 10**8, USDC: 10**8}
    swapped = dataclasses.replace(_liq(U2, 110, observed=True, repaid=10**18, seized=2_600 * 10**6),
                                  collateral_asset=USDC, debt_asset=WETH)
    m.on_liquidation(view, dataclasses.replace(swapped, predicted=LiquidationOutcome(
        True, None, U2, USDC, WETH, 10**18 - 10**16, 2_600 * 10**6 - 3, 0)))
    # U3: exact
    m.on_liquidation(view, _liq(U3, 120, observed=True, repaid=10**6, seized=10**15,
                                predicted=_outcome(U3, 10**6, 10**15)))
    s = m.summary()
    assert (s["amounts_compared"], s["amounts_exact"]) == (3, 1)
    assert (s["debt_repaid_mismatches"], s["collateral_seized_mismatches"]) == (2, 2)
    # debt: 5 USDC at $1 = 5e8; 0.01 WETH at $2500 = 25e8
    assert s["debt_repaid_abs_error_sum_value"] == 5 * 10**8 + 25 * 10**8
    assert s["debt_repaid_abs_error_max_value"] == 25 * 10**8
    # collateral: 0.001 WETH at $2000 = 2e8; 3 USDC units at $1 = 300
    assert s["collateral_seized_abs_error_sum_value"] == 2 * 10**8 + 300
    assert s["collateral_seized_abs_error_max_value"] == 2 * 10**8
    assert not any(k.endswith("_raw") for k in s)  # no sum of units of different assets
    # each observation carries its own valued errors, so an analyst can rank them
    rows = [dict(zip(FIDELITY.column_names(), r, strict=True)) for r in m.rows()[FIDELITY.fqn]]
    assert [(r["user"], r["debt_repaid_abs_error_value"], r["collateral_seized_abs_error_value"])
            for r in rows] == [(U1, 5 * 10**8, 2 * 10**8), (U2, 25 * 10**8, 300), (U3, 0, 0)]


def test_counterfactual_has_no_observations_and_bad_parameter() -> None:
    m = Fidelity()
    s = m.summary()
    assert s["precision"] is None and s["recall"] is None
    with pytest.raises(MetricError, match="tolerance_blocks"):
        Fidelity({"tolerance_blocks": -1})


# ---------------------------------------------------------------- on the real anvil warehouse

@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Historical run over tests/backtest/report_market.py (real Aave v3 bytecode on anvil, the
    2021-01-11 crash, one on-chain liquidation by a bot)."""
    from backtest.api import run
    from backtest.scenario import parse_scenario

    from .report_market import build, scenario_text

    b = build(tmp_path_factory.mktemp("fidelity") / "warehouse.duckdb")
    text = scenario_text(b, mode="historical", metrics=("liquidations", "fidelity"),
                         extra="[metrics.fidelity]\ntolerance_blocks = 3\n")
    return b, run(parse_scenario(text), b.db)


def test_real_observed_liquidation_is_matched(real) -> None:  # type: ignore[no-untyped-def]
    b, r = real
    s = r.summary["fidelity"]
    assert s["observed"] == b.liquidations == 1
    # the model (reaction delay 1) predicted the bot's victim within 3 blocks of the real call
    assert s["matched"] == 1 and s["recall"] == 1.0
    # the bot liquidates only the first victim; the model also predicts the others: false positives
    assert s["predicted_episodes"] > 1 and 0 < s["precision_episodes"] < 1


def test_real_amounts_exact(real) -> None:  # type: ignore[no-untyped-def]
    _, r = real
    s = r.summary["fidelity"]
    # the adapter, given the bot's own arguments on the state before its transaction, computes the
    # very amounts the real bytecode emitted
    assert s["predicted_reverts"] == 0 and s["amounts_compared"] == 1 and s["amounts_exact"] == 1


def test_two_onchain_liquidations_of_one_account_in_one_block_are_one_user_block_pair() -> None:
    """Historical replay (real Aave v3.0 rules): the collateral falls to $800 at FROM + 2 (HF 0.91),
    the model predicts the account for FROM + 3, and on chain it is liquidated there in two calls
    (100 units of debt, then the rest). One (user, block) pair, predicted exactly: recall and
    precision are 1. Each liquidation was matched on its own, so the second found no prediction
    left: recall 0.5 and a row saying the model missed it."""
    import copy

    from backtest.api import run_inputs
    from protocols.domain import EventRef, ProtocolEvent
    from tests.backtest.markets import ADAPTER, COLL, DEBT, FROM, inputs, scenario, user
    from tests.backtest.markets import market as m_market

    book = m_market(8000, 10500, [(10**18, 700 * 10**6)])
    path = [1000 * 10**8, 800 * 10**8, 800 * 10**8, 800 * 10**8]  # at FROM + 1 .. FROM + 4
    inp = inputs(book, path)
    block = FROM + 3
    ts = inp.blocks.timestamp(block)
    # what the chain did: the two calls, computed by the adapter in sequence on a copy of the state
    st = copy.deepcopy(book.state)
    prices = {COLL: 800 * 10**8, DEBT: 10**8}
    outs = []
    for amount in (100 * 10**6, 2**256 - 1):
        o = ADAPTER.liquidate(st, user(0), COLL, DEBT, amount, prices, ts, False, liquidator="0x" + "4c" * 20)
        assert o.ok, o.revert_reason
        ADAPTER.commit(st, o)
        outs.append(o)
    specs = {(s.role, s.signature.split("(")[0]): s.signature for s in ADAPTER.events}
    emitted = [(n, e) for n, o in enumerate(outs) for e in o.events if (e.role, e.name) in specs]
    events = [ProtocolEvent(e.name, specs[(e.role, e.name)], e.address, e.role, e.args,
                            EventRef(block, i, "0x" + f"{n + 1:02x}" * 32, ts))
              for i, (n, e) in enumerate(emitted)]
    res = run_inputs(scenario("historical", to_block=FROM + len(path) + 1,
                              extra='[metrics]\nnames = ["liquidations", "fidelity"]\n'),
                     dataclasses.replace(inp, events=events))
    got = sorted((x.observed, x.block_number, x.user) for x in res.output.liquidations)
    assert got == [(False, block, user(0)), (True, block, user(0)), (True, block, user(0))]
    s = res.summary["fidelity"]
    assert (s["precision"], s["recall"]) == (1.0, 1.0)
    assert (s["observed"], s["observed_user_blocks"], s["predicted"], s["matched"]) == (2, 1, 1, 1)
    rows = res.frames()["bt.fidelity"].sort("log_index").to_dicts()
    assert [(r["kind"], r["matched"], r["predicted_block"]) for r in rows] == [
        ("observed", True, block), ("observed", True, block)]


def test_the_largest_amount_error_is_undefined_when_every_prediction_reverted() -> None:
    """One on-chain liquidation of an account the port finds healthy (HF 1.14 at the block's
    prices): its prediction reverts, so no amount is compared. The largest error was reported as
    0, the figure of an exact port, and a [[checks.figure]] ``max = 0`` on it passed; it is None
    (the sums stay 0: a sum over nothing)."""
    from backtest.api import run_inputs
    from protocols.domain import EventRef, ProtocolEvent
    from tests.backtest.markets import COLL, DEBT, FROM, POOL, T0, inputs, scenario, user
    from tests.backtest.markets import market as m_market

    book = m_market(8000, 10500, [(10**18, 700 * 10**6)])  # $1,000 of collateral against $700
    b = FROM + 2
    sig = "LiquidationCall(address,address,address,uint256,uint256,address,bool)"
    args = {"collateral_asset": COLL, "debt_asset": DEBT, "user": user(0), "debt_to_cover": 100 * 10**6,
            "liquidated_collateral_amount": 10**17, "liquidator": "0x" + "1e" * 20, "receive_a_token": False}
    call = ProtocolEvent("LiquidationCall", sig, POOL, "pool", args,
                         EventRef(b, 0, "0x" + "01" * 32, T0 + 12 * (b - FROM + 1)))
    ins = dataclasses.replace(inputs(book, [1000 * 10**8] * 3), events=[call])
    res = run_inputs(scenario("historical", to_block=FROM + 4,
                              extra='[metrics]\nnames = ["fidelity"]\n'), ins)
    s = res.summary["fidelity"]
    assert (s["observed"], s["amounts_compared"], s["predicted_reverts"]) == (1, 0, 1)
    assert s["debt_repaid_abs_error_max_value"] is None
    assert s["collateral_seized_abs_error_max_value"] is None
    assert s["debt_repaid_abs_error_sum_value"] == s["collateral_seized_abs_error_sum_value"] == 0


def test_a_counterfactual_run_judges_nothing_against_observations() -> None:
    """A counterfactual run observes nothing (its liquidations are the model's, committed): the
    fidelity figures that judge the port against observations read 0 mismatches, 0 reverts and 0
    error, an exact port by the look of it, and a [[checks.figure]] ``max = 0`` on one passed on
    nothing. They are None there (the counts stay: 0 observed, 0 predicted), and [checks] refuses
    such a threshold in a counterfactual scenario at its line, as it does for recall."""
    from backtest.api import run_inputs
    from backtest.errors import ScenarioError
    from backtest.scenario import parse_scenario
    from tests.backtest.markets import FROM, inputs, scenario
    from tests.backtest.markets import market as m_market

    book = m_market(8000, 10500, [(10**18, 700 * 10**6)])  # the collateral halves: liquidated
    res = run_inputs(scenario(to_block=FROM + 5, extra='[metrics]\nnames = ["liquidations", "fidelity"]\n'),
                     inputs(book, [1000 * 10**8, 500 * 10**8, 500 * 10**8]))
    assert [x.committed for x in res.output.liquidations] == [True]
    s = res.summary["fidelity"]
    assert (s["observed"], s["predicted"], s["matched"], s["amounts_compared"]) == (0, 0, 0, 0)
    judged = ("debt_repaid_mismatches", "collateral_seized_mismatches", "amounts_exact", "predicted_reverts",
              "debt_repaid_abs_error_sum_value", "collateral_seized_abs_error_sum_value", "recall",
              "precision")
    assert {name: s[name] for name in judged} == dict.fromkeys(judged)
    from backtest.metrics.fidelity import OBSERVED_ONLY

    assert set(judged) <= set(OBSERVED_ONLY)
    head = ('name = "x"\nchain_id = 1\nmode = "{mode}"\n[window]\nfrom_block = 1\nto_block = 2\n[market]\n'
            'protocol = "aave_v3"\nsource = "m"\n[metrics]\nnames = ["fidelity"]\n'
            '[[checks.figure]]\nmetric = "fidelity"\nname = "debt_repaid_mismatches"\nmax = 0\n')
    with pytest.raises(ScenarioError, match="counterfactual") as e:
        parse_scenario(head.format(mode="counterfactual"))
    assert e.value.line == 14
    assert parse_scenario(head.format(mode="historical")).checks is not None
