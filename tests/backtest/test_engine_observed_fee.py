"""An observed liquidation's protocol fee is not in its event: the engine takes it from its own
prediction. When that prediction reverts (the model disagrees with the chain) the fee is unknown
under Aave v3 and written as NULL, never as a plausible 0; the summaries and the report count the
unknown ones instead of summing them as 0. A protocol without a fee (Aave v2) keeps an exact 0."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from backtest.api import run_inputs
from backtest.report.build import _Data, _liquidations
from backtest.report.model import Table
from protocols.aave_v2 import AaveV2Adapter
from protocols.aave_v3 import AaveV3Adapter
from protocols.domain import EventRef, ProtocolEvent
from tests.backtest.markets import COLL, DEBT, FROM, POOL, T0, inputs, market, scenario, user

_SIG = "LiquidationCall(address,address,address,uint256,uint256,address,bool)"
LIQUIDATOR = "0x" + "1e" * 20


def _call(who: str, log_index: int, repaid: int, seized: int) -> ProtocolEvent:
    b = FROM + 2
    return ProtocolEvent("LiquidationCall", _SIG, POOL, "pool", {
        "collateral_asset": COLL, "debt_asset": DEBT, "user": who, "debt_to_cover": repaid,
        "liquidated_collateral_amount": seized, "liquidator": LIQUIDATOR, "receive_a_token": False},
        EventRef(b, log_index, "0x" + f"{log_index + 1:064x}", T0 + 12 * (b - FROM + 1)))


def _run(adapter: AaveV3Adapter):  # type: ignore[no-untyped-def]
    # LT 80 %, bonus 5 %, protocol fee 10 % of the bonus; collateral at $1,000. user 0 owes $700
    # (HF 1.14: the model predicts a revert of the chain's liquidation of it); user 1 owes $900
    # (HF 0.89: predicted, with a fee)
    book = market(8000, 10500, [(10**18, 700 * 10**6), (10**18, 900 * 10**6)], fee=1000)
    ins = inputs(book, [1000 * 10**8] * 3)
    events = [_call(user(1), 0, 450 * 10**6, 47 * 10**16), _call(user(0), 1, 100 * 10**6, 10**17)]
    ins = dataclasses.replace(ins, adapter=adapter, events=events)
    return run_inputs(scenario("historical", to_block=FROM + 4), ins)  # every default metric


def test_a_reverted_prediction_leaves_the_v3_fee_unknown_not_zero() -> None:
    res = _run(AaveV3Adapter())
    observed = {x.user: x for x in res.output.liquidations if x.observed}
    known, unknown = observed[user(1)], observed[user(0)]
    assert known.predicted is not None and known.predicted.ok
    assert known.protocol_fee is not None and known.protocol_fee > 0
    assert known.protocol_fee_value is not None and known.protocol_fee_value > 0
    assert unknown.predicted is not None and not unknown.predicted.ok
    assert (unknown.protocol_fee, unknown.protocol_fee_value, unknown.bonus_value) == (None, None, None)

    # bt.liquidations: NULL, not 0, in the fee and bonus columns of the unknown one
    rows = {r["user"]: r for r in res.frames()["bt.liquidations"].filter(observed=True).to_dicts()}
    for col in ("protocol_fee_raw", "protocol_fee_value", "bonus_value", "bonus_base_f64"):
        assert rows[user(0)][col] is None, col
        assert rows[user(1)][col] is not None, col
    assert rows[user(1)]["protocol_fee_raw"] == known.protocol_fee

    # the summary sums the known fee and bonus, and says one was unknown
    s = res.summary["liquidations"]
    assert s["observed_count"] == 2 and s["observed_protocol_fee_unknown"] == 1
    assert s["observed_protocol_fee_value"] == known.protocol_fee_value
    assert s["observed_bonus_value"] == known.bonus_value
    assert s["simulated_protocol_fee_unknown"] == 0

    # the report shows the count next to the (partial) sums
    wh = res._warehouse()
    section = _liquidations(_Data(wh.con, res.run_id))
    table = next(b for b in section.blocks if isinstance(b, Table))
    col = list(table.headers).index("protocol fee unknown (count)")
    assert {r[0]: r[col] for r in table.rows}["observed"] == "1"


class _NoFeeV3(AaveV3Adapter):
    """The v3 rules under an adapter that declares no protocol fee (as Aave v2's does)."""

    has_liquidation_protocol_fee: ClassVar[bool] = False


def test_a_protocol_without_a_fee_keeps_an_exact_zero() -> None:
    assert AaveV2Adapter.has_liquidation_protocol_fee is False
    assert AaveV3Adapter.has_liquidation_protocol_fee is True
    res = _run(_NoFeeV3())
    unknown = next(x for x in res.output.liquidations if x.observed and x.user == user(0))
    assert unknown.predicted is not None and not unknown.predicted.ok
    assert (unknown.protocol_fee, unknown.protocol_fee_value) == (0, 0)
    assert unknown.bonus_value == unknown.collateral_seized_value - unknown.debt_repaid_value
    assert res.summary["liquidations"]["observed_protocol_fee_unknown"] == 0


def test_a_spiral_sequence_with_an_unknown_fee_has_no_bonus() -> None:
    """bt.liquidation_sequences.bonus_value is NULL, not a sum taking the unknown bonus as 0."""
    from backtest.metrics.base import Liquidation
    from backtest.metrics.spiral import SEQUENCES, Spiral
    from tests.backtest import metric_market as mm

    view = mm.StubView(mm.market(), mm.scenario(["spiral"]), {mm.WETH: 1_880 * 10**8, mm.USDC: 10**8})
    m = Spiral()
    m.on_run_start(view)

    def liq(fee: int | None, log_index: int) -> Liquidation:
        return Liquidation(observed=True, committed=True, block_number=mm.FIRST + 5, log_index=log_index,
                           tx_hash="0x" + "ab" * 32, timestamp=mm.T0, user=mm.BORROWER, liquidator=LIQUIDATOR,
                           collateral_asset=mm.WETH, debt_asset=mm.USDC, debt_to_cover=10**9,
                           debt_repaid=10**9, collateral_seized=10**17, protocol_fee=fee,
                           receive_a_token=False, debt_repaid_value=10**11,
                           collateral_seized_value=188 * 10**8,
                           protocol_fee_value=None if fee is None else 10**8)

    def halve_collateral() -> None:  # each liquidation leaves the account worse (a lower HF)
        u = view.state.users[mm.BORROWER]
        ur = u.reserves[mm.WETH]
        view.state.users[mm.BORROWER] = u.with_reserve(mm.WETH, dataclasses.replace(
            ur, scaled_a_token_balance=ur.scaled_a_token_balance // 2))

    halve_collateral()
    m.on_liquidation(view, liq(10**15, 1))
    halve_collateral()
    m.on_liquidation(view, liq(None, 2))  # its prediction reverted: fee unknown
    m.on_run_end(view)
    (row,) = m.rows()[SEQUENCES.fqn]
    seq = dict(zip(SEQUENCES.column_names(), row, strict=True))
    assert seq["liquidations"] == 2 and seq["debt_repaid_value"] == 2 * 10**11
    assert seq["bonus_value"] is None
