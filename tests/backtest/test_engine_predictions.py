"""Historical mode: the liquidator model's predictions of liquidations the chain did not make.

A prediction is not committed (the replay follows the chain), so the account stays liquidatable
in the replayed state. The engine keeps a prediction *open* until the account's position changes
or it stops being liquidatable: an under-water account nobody liquidates is one false positive,
not one per block (which made precision meaningless and cost memory per block on long windows).
"""

from __future__ import annotations

from backtest.api import run_inputs
from tests.backtest.markets import FROM, inputs, market, scenario, user


def test_an_account_nobody_liquidates_is_predicted_once_while_it_stays_liquidatable() -> None:
    # LT 80 %, bonus 5 %: 1 whole collateral token (18 decimals), 700 debt units ($700, 6 decimals).
    # At $1,000 the health factor is 1000 * 0.8 / 700 = 1.14; at $850 it is 850 * 0.8 / 700 = 0.97
    # (liquidatable), and the price then wobbles between $840 and $860 for 30 blocks: still under
    # 1 every block (860 * 0.8 / 700 = 0.983), a new oracle answer every block, no event.
    book = market(8000, 10500, [(10**18, 700 * 10**6)])
    path = [1000 * 10**8, 850 * 10**8] + [(840 + 20 * (i % 2)) * 10**8 for i in range(30)]
    res = run_inputs(scenario("historical", to_block=FROM + len(path) + 1), inputs(book, path))
    predicted = [x for x in res.output.liquidations if not x.observed]
    assert [x.user for x in predicted] == [user(0)]
    assert predicted[0].committed is False
    # liquidatable from the end of the block that carried $850 (FROM + 2); with the model's
    # (default, zero-delay) timing the transaction lands at the top of the next block
    assert predicted[0].block_number == FROM + 3
