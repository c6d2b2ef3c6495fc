"""The at-risk index (backtest.ledger) against the naive replay (every account at every price
update) in cases the property tests do not reach."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from backtest.api import run_inputs
from backtest.clock import Blocks
from backtest.oracle import Round
from protocols.fixed_point import RAY
from tests.backtest.markets import FEED_C, FEED_D, FROM, T0, inputs, market, scenario

MONTH = 30 * 86_400


def _round(feed: str, answer: int, i: int, log_index: int) -> Round:
    """``answer`` of ``feed`` in month block ``FROM + 1 + i``."""
    t = T0 + (i + 2) * MONTH
    return Round(feed, answer, 8, t, FROM + 1 + i, log_index, t)


def _index_sees_what_naive_sees(path: list[int], extra: Sequence[Round] = (), *,
                                fewer_evaluations: bool = True) -> None:
    """$100 of debt at 300 %/yr against 1 COLL priced ``path[i]`` in block ``FROM + 1 + i``, blocks a
    month apart, no liquidator that acts: the indexed replay's tables equal the naive one's, and
    the account ends under water (so the comparison is not vacuous)."""
    n = len(path)
    book = market(8000, 10500, [(10**18, 100 * 10**6)], borrow_rate=3 * RAY)
    inp = inputs(book, path, to_block=FROM + n + 1)
    blocks = Blocks([(FROM - 1 + k, T0 + k * MONTH, 0, True) for k in range(n + 3)])
    rounds = sorted([_round(FEED_C, p, i, 0) for i, p in enumerate(path)] + list(extra),
                    key=lambda r: (r.block_number, r.log_index))
    inp = dataclasses.replace(inp, blocks=blocks, rounds=rounds)
    idle = "\n[liquidator]\nmin_profit_usd = 1000000000\n"
    out = [run_inputs(scenario(extra=idle, to_block=FROM + n + 1), inp, naive=nv) for nv in (False, True)]
    assert out[1].summary["bad_debt"]["end_accounts_underwater"] == 1  # not vacuous
    for t, rows in out[0].output.tables.items():
        if t.name != "runs":
            assert rows == out[1].output.tables[t], t.fqn
    if fewer_evaluations:
        assert out[0].output.record.evaluations < out[1].output.record.evaluations


def test_interest_compounding_over_long_gaps_is_not_missed() -> None:
    """1 COLL at $2,000, LT 80 % ($1,600), against $100 of debt borrowed at 300 %/yr (the index's
    max_rate): health factor 16, liquidatable after ~1.2 years of compounding interest alone.
    Blocks a month apart, the collateral price rising a little each month (no trigger crossed).
    The evaluation expired after the time *linear* growth takes to eat half the margin (2.5
    years), so the index first saw the account under water 9 months after the naive replay did
    (bad debt $4,497 instead of $282 at its first row; fails before)."""
    _index_sees_what_naive_sees([2_000 * 10**8 + i * 10**8 for i in range(40)])


def test_replaying_the_same_inputs_twice_gives_the_same_run() -> None:
    """run_inputs replayed on ``inputs.state`` itself: the first run's liquidations (and, in a
    historical run, its events) were left in it, so a second run of the same inputs started from
    the first one's end state: no liquidation, other tables (fails before)."""
    book = market(8000, 10500, [(10**18, 900 * 10**6), (10**18, 500 * 10**6)])  # HF 0.89 and 1.6
    inp = inputs(book, [1000 * 10**8] * 4)
    perfect = "\n[liquidator]\nreaction_delay_blocks = 0\ngas_units = 0\nmin_profit_usd = 0\n"
    sc = scenario(extra=perfect, to_block=FROM + 6)
    a, b = run_inputs(sc, inp), run_inputs(sc, inp)
    assert a.output.liquidations
    assert a.summary == b.summary
    for t, rows in a.output.tables.items():
        assert rows == b.output.tables[t], t.fqn


def test_interest_and_a_debt_price_rise_together_are_not_missed() -> None:
    """Half the margin is kept for interest and half for price moves, but a price rise of the
    debt asset applies to the debt *with* its interest. $128 owed at 300 %/yr against 1 COLL
    ($1,600 at LT 80 %) at the window start grows to $620 in 7 months, inside the interest half
    of the $1,472 margin (expiry after 7.7 months); the debt asset's price then rises from $1 to
    $3.50, below its trigger at the evaluation ($3.88): $2,169 of debt, under water, no trigger
    crossed, the evaluation not expired (before: seen a month after the naive replay)."""
    n = 14
    _index_sees_what_naive_sees([2_000 * 10**8] * n, [_round(FEED_D, 350 * 10**6, i, 1) for i in range(6, n)],
                                fewer_evaluations=False)
