"""bad_debt: the accounts' and blocks' rows against hand-worked figures (one row per account,
reserve and block; a reserve's share goes back to 0 when the account no longer owes it; the
shares sum to the account's bad debt)."""

from __future__ import annotations

from dataclasses import replace

from backtest.api import run_inputs
from backtest.metrics.bad_debt import ACCOUNTS, BLOCKS, BadDebt, _split
from backtest.metrics.base import AccountEval, BlockEnd
from protocols.aave_v3.state import UserState
from protocols.fixed_point import RAY

from .metric_market import BORROWER, FIRST, USDC, WETH, StubView, health, inputs, market, scenario

E8 = 10**8


def _cols(row: tuple[object, ...], table=ACCOUNTS) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return dict(zip(table.column_names(), row, strict=True))


def test_first_block_has_one_row_per_account_and_reserve() -> None:
    """The run's start evaluates the accounts on the state before the first block's inputs; the
    first block's end re-evaluates those its inputs moved. Both wrote rows at the first block's
    number: the borrower (10 WETH, 17,000 USDC) had 2,000 USD of bad debt at the start (WETH at
    1,500) and 7,000 USD at the end of the first block (a round at 1,000), two rows with the same
    key (run, user, reserve, block), and two bt.bad_debt_blocks rows at one block: a reader summing
    an account's rows at a block (the daily view, the report's top accounts) counted 9,000 USD."""
    sc = scenario(["bad_debt"], delay=1000)  # the liquidator never acts in the window
    r = run_inputs(sc, inputs(market(), [(FIRST, 1_000)], start_weth=1_500))
    rows = [_cols(x) for x in r.output.tables[ACCOUNTS]]
    keys = [(x["user"], x["reserve"], x["block_number"]) for x in rows]
    assert len(keys) == len(set(keys)), keys
    assert [(x["block_number"], x["bad_debt_oracle_value"]) for x in rows if x["user"] == BORROWER] == [
        (FIRST, 7_000 * E8)]
    blocks = [_cols(x, BLOCKS) for x in r.output.tables[BLOCKS]]
    assert [(b["block_number"], b["unrealized_oracle_value"]) for b in blocks] == [(FIRST, 7_000 * E8)]
    s = r.summary["bad_debt"]
    assert (s["peak_unrealized_oracle_value"], s["peak_unrealized_oracle_block"]) == (7_000 * E8, FIRST)
    assert s["end_unrealized_oracle_value"] == 7_000 * E8


def _two_debts(weth_debt: int, usdc_debt: int):  # type: ignore[no-untyped-def]
    """The borrower also owes WETH (borrowing bit of reserve 0)."""
    state = market(debt_usdc=usdc_debt)
    u = state.users[BORROWER]
    reserves = dict(u.reserves)
    reserves[WETH] = replace(reserves[WETH], scaled_variable_debt=weth_debt * 10**18,
                             variable_debt_previous_index=RAY)
    state.users[BORROWER] = UserState(configuration=u.configuration | 1, reserves=reserves)
    return state


def test_a_reserve_no_longer_owed_gets_a_row_of_zero() -> None:
    """Alice owes 1 WETH (2,000 USD) and 3,000 USDC; her bad debt of 1,000 USD is split 400 / 600.
    Then her WETH debt is gone (repaid) and her bad debt is 500 USD, all USDC. Before, the second
    evaluation wrote a row for USDC only: WETH's last row still said 400 USD, so the account's
    bad debt read per reserve (the last row of each, as the table documents) was 900 USD."""
    state = _two_debts(1, 3_000)
    view = StubView(state, scenario(["bad_debt"]), {WETH: 2_000 * E8, USDC: E8}, block=FIRST, ts=1_000)
    m = BadDebt()
    m.on_run_start(view)
    m.on_block_end(view, BlockEnd(view.block, (AccountEval(BORROWER, health(4_000, 5_000), None),)))
    u = state.users[BORROWER]
    state.users[BORROWER] = UserState(configuration=u.configuration & ~1, reserves={
        **u.reserves, WETH: replace(u.reserves[WETH], scaled_variable_debt=0)})
    view.at(FIRST + 1, 1_012)
    m.on_block_end(view, BlockEnd(view.block, (AccountEval(BORROWER, health(2_500, 3_000), None),)))
    m.on_run_end(view)
    rows = [_cols(x) for x in m.rows()[ACCOUNTS.fqn]]
    got = sorted((x["block_number"], x["reserve"], x["bad_debt_oracle_value"]) for x in rows)
    assert got == [(FIRST, USDC, 600 * E8), (FIRST, WETH, 400 * E8),
                   (FIRST + 1, USDC, 500 * E8), (FIRST + 1, WETH, 0)], got
    last: dict[str, int] = {}
    for x in sorted(rows, key=lambda x: x["block_number"]):  # type: ignore[arg-type,return-value]
        last[x["reserve"]] = x["bad_debt_oracle_value"]  # type: ignore[index,assignment]
    assert sum(last.values()) == m.summary()["end_unrealized_oracle_value"] == 500 * E8


def test_split_sums_exactly_and_gives_the_remainder_to_the_largest() -> None:
    for amount, weights in [(10, [1, 1, 1]), (7, [3, 3]), (1, [1, 10**30, 5]), (10**20 + 7, [2, 3, 5, 7]),
                            (5, [0, 0]), (0, [4, 6]), (3, [1, 0, 1])]:
        parts = _split(amount, weights, sum(weights))
        assert sum(parts) == amount and all(p >= 0 for p in parts), (amount, weights, parts)
    assert _split(10, [1, 1, 1], 3) == [4, 3, 3]  # the first of equals takes the remainder
    assert _split(7, [1, 2], 3) == [2, 5]


def test_reference_figures_follow_reference_moves_without_oracle_lag() -> None:
    """The oracle stays at 2,000 for the whole window; the reference falls to 1,000 at +10: the
    borrower (10 WETH, 15,000 USDC) has 5,000 USD of bad debt at the reference from then on. The
    engine re-evaluated accounts on reference moves only when a metric *required* a reference
    (oracle_lag): a run of bad_debt alone (the default metrics, both runs of a lag attribution)
    never re-evaluated the borrower, and reported 0 at the reference, peak and end."""
    sc = scenario(["bad_debt"], reference=True, delay=1000)
    r = run_inputs(sc, inputs(market(debt_usdc=15_000), [], refs=[(FIRST + 10, 1_000)]))
    s = r.summary["bad_debt"]
    assert s["end_unrealized_reference_value"] == s["peak_unrealized_reference_value"] == 5_000 * E8
    assert s["peak_unrealized_reference_block"] == FIRST + 10
    assert s["end_unrealized_oracle_value"] == 0


def test_an_account_repaid_in_full_has_zero_reference_bad_debt_not_null() -> None:
    """With a reference path, the row that returns an account to 0 when its debt is gone said
    bad_debt_reference_value NULL ('no reference': the engine does not evaluate an account
    without debt at the reference), so its last row per reserve was unknown instead of 0."""
    state = market()
    view = StubView(state, scenario(["bad_debt"], reference=True), {WETH: 1_500 * E8, USDC: E8},
                    block=FIRST, ts=1_000, ref={WETH: 1_400 * E8})
    m = BadDebt()
    m.on_run_start(view)
    m.on_block_end(view, BlockEnd(view.block, (
        AccountEval(BORROWER, health(15_000, 17_000), health(14_000, 17_000)),)))
    u = state.users[BORROWER]
    state.users[BORROWER] = UserState(configuration=u.configuration & ~(1 << 2), reserves={
        **u.reserves, USDC: replace(u.reserves[USDC], scaled_variable_debt=0)})
    view.at(FIRST + 1, 1_012)
    m.on_block_end(view, BlockEnd(view.block, (AccountEval(BORROWER, health(15_000, 0), None),)))
    m.on_run_end(view)
    rows = [_cols(x) for x in m.rows()[ACCOUNTS.fqn]]
    got = [(x["block_number"], x["reserve"], x["bad_debt_oracle_value"], x["bad_debt_reference_value"])
           for x in rows]
    assert got == [(FIRST, USDC, 2_000 * E8, 3_000 * E8), (FIRST + 1, "", 0, 0), (FIRST + 1, USDC, 0, 0)], got


def test_reference_share_follows_the_debts_values_at_the_reference() -> None:
    """Alice owes 1 WETH and 3,000 USDC; WETH is 2,000 at the oracle and 1,000 at the reference.
    Her bad debt at the reference (1,500 USD) was split by the debts' *oracle* values (2,000 :
    3,000 -> 600 WETH, 900 USDC) although at the reference WETH is 1,000 of her 4,000 USD of
    debt: 375 WETH, 1,125 USDC."""
    state = _two_debts(1, 3_000)
    view = StubView(state, scenario(["bad_debt"], reference=True), {WETH: 2_000 * E8, USDC: E8},
                    block=FIRST, ts=1_000, ref={WETH: 1_000 * E8})
    m = BadDebt()
    m.on_run_start(view)
    m.on_block_end(view, BlockEnd(view.block, (
        AccountEval(BORROWER, health(4_000, 5_000), health(2_500, 4_000)),)))
    m.on_run_end(view)
    got = sorted((x["reserve"], x["bad_debt_oracle_value"], x["bad_debt_reference_value"])
                 for x in (_cols(r) for r in m.rows()[ACCOUNTS.fqn]))
    assert got == [(USDC, 600 * E8, 1_125 * E8), (WETH, 400 * E8, 375 * E8)], got


def test_a_new_split_over_the_debts_gets_rows_when_the_total_stays() -> None:
    """Alice owes 1 WETH (2,000 USD) and 3,000 USDC against 4,000 USD of collateral: 1,000 USD of
    bad debt, 400 WETH / 600 USDC. She repays 1,000 USDC with aUSDC (repayWithATokens: debt and
    collateral fall by the same value): still 1,000 USD of bad debt, now owed 2,000 : 2,000, so
    500 / 500. The rows were written only when the account's total changed, so the per-reserve
    view (the last row of each reserve, bt.daily_bad_debt_by_reserve) kept 400 / 600 for ever."""
    state = _two_debts(1, 3_000)
    view = StubView(state, scenario(["bad_debt"]), {WETH: 2_000 * E8, USDC: E8}, block=FIRST, ts=1_000)
    m = BadDebt()
    m.on_run_start(view)
    m.on_block_end(view, BlockEnd(view.block, (AccountEval(BORROWER, health(4_000, 5_000, 10_000), None),)))
    u = state.users[BORROWER]
    state.users[BORROWER] = UserState(configuration=u.configuration, reserves={
        **u.reserves, USDC: replace(u.reserves[USDC], scaled_variable_debt=2_000 * 10**6)})
    view.at(FIRST + 1, 1_012)
    m.on_block_end(view, BlockEnd(view.block, (AccountEval(BORROWER, health(3_000, 4_000, 10_000), None),)))
    m.on_run_end(view)
    rows = [_cols(x) for x in m.rows()[ACCOUNTS.fqn]]
    last: dict[str, int] = {}
    for x in sorted(rows, key=lambda x: x["block_number"]):  # type: ignore[arg-type,return-value]
        last[x["reserve"]] = x["bad_debt_oracle_value"]  # type: ignore[index,assignment]
    assert last == {WETH: 500 * E8, USDC: 500 * E8}, rows
    assert m.summary()["end_unrealized_oracle_value"] == 1_000 * E8
    # the totals did not change: no second bt.bad_debt_blocks row
    assert [b[2] for b in m.rows()[BLOCKS.fqn]] == [FIRST]
