"""Read an :class:`~protocols.aave_v2.AaveV2State` off a live Aave v2 market (eth_call, one block).

Everything the adapter's state holds is read from the contracts' storage views at one block, in
one JSON-RPC batch: ``LendingPool.getReserveData`` / ``getUserConfiguration`` / ``paused``, the
tokens' scaled balances, stable principals / rates / timestamps and supply data, the underlying
held by each aToken, the aToken's treasury, the rate strategy parameters, the LendingRateOracle's
market borrow rates and ``AaveOracle.getAssetPrice``. This is the "snapshot" way of building
state (the differential tests use it); rebuilding from events is the adapter's ``apply``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ingest.devchain import Contract
from protocols.aave_v2 import (
    AaveV2State,
    InterestRateStrategy,
    ReserveConfiguration,
    ReserveData,
    UserReserve,
)
from protocols.aave_v2.state import UserState
from tests.protocols.aave_v2_market import AaveV2Market
from tests.protocols.aave_v3_chain_state import batch_call

__all__ = ["ChainSnapshot", "read_state"]


@dataclass
class ChainSnapshot:
    """The state at ``block`` (its ``timestamp``) and the oracle's ``prices`` there."""

    block: int
    timestamp: int
    state: AaveV2State
    prices: dict[str, int]


_static: dict[str, tuple[InterestRateStrategy, str]] = {}


def _strategies(m: AaveV2Market, block: int) -> None:
    todo = [r for r in m.reserves.values() if r.address not in _static or _static[r.address][1] == ""]
    if not todo:
        return
    fns = (
        "OPTIMAL_UTILIZATION_RATE",
        "baseVariableBorrowRate",
        "variableRateSlope1",
        "variableRateSlope2",
        "stableRateSlope1",
        "stableRateSlope2",
    )
    res = batch_call(
        m,
        [(r.strategy, fn, ()) for r in todo for fn in fns]  # type: ignore[arg-type]
        + [(r.a_token, "RESERVE_TREASURY_ADDRESS", ()) for r in todo],
        block,
    )
    for k, r in enumerate(todo):
        v = [x[0] for x in res[k * len(fns) : (k + 1) * len(fns)]]
        _static[r.address] = (InterestRateStrategy(*v), res[len(todo) * len(fns) + k][0])


def read_state(m: AaveV2Market, users: Iterable[str], block: int | None = None) -> ChainSnapshot:
    """The market's state at ``block`` (default: latest) for ``users``."""
    chain = m.chain
    if block is None:
        block = chain.block_number()
    ts = int(chain.block(block)["timestamp"], 16)
    users = sorted({u.lower() for u in users})
    _strategies(m, block)
    rs = list(m.reserves.values())
    calls: list[tuple[Contract, str, tuple[Any, ...]]] = [(m.pool, "paused", ())]
    for r in rs:
        assert r.a_token and r.variable_debt and r.stable_debt
        calls += [
            (m.pool, "getReserveData", (r.address,)),
            (r.variable_debt, "scaledTotalSupply", ()),
            (r.stable_debt, "getSupplyData", ()),
            (r.token, "balanceOf", (r.a_token.address,)),
            (m.oracle, "getAssetPrice", (r.address,)),
            (m.rate_oracle, "getMarketBorrowRate", (r.address,)),
        ]
    for u in users:
        calls.append((m.pool, "getUserConfiguration", (u,)))
        for r in rs:
            assert r.a_token and r.variable_debt and r.stable_debt
            calls += [
                (r.a_token, "scaledBalanceOf", (u,)),
                (r.variable_debt, "scaledBalanceOf", (u,)),
                (r.stable_debt, "principalBalanceOf", (u,)),
                (r.stable_debt, "getUserStableRate", (u,)),
                (r.stable_debt, "getUserLastUpdated", (u,)),
            ]
    res = batch_call(m, calls, block)  # type: ignore[arg-type]

    state = AaveV2State(pool=m.pool.address, paused=bool(res[0][0]))
    prices: dict[str, int] = {}
    pos = 1
    for r in rs:
        (d,), (scaled_var,), supply, (underlying,), (price,), (market_rate,) = res[pos : pos + 6]
        pos += 6
        strategy, treasury = _static[r.address]
        state.add_reserve(
            ReserveData(
                asset=r.address,
                id=d[11],
                configuration=ReserveConfiguration.from_word(d[0][0]),
                liquidity_index=d[1],
                variable_borrow_index=d[2],
                current_liquidity_rate=d[3],
                current_variable_borrow_rate=d[4],
                current_stable_borrow_rate=d[5],
                last_update_timestamp=d[6],
                a_token=d[7],
                stable_debt_token=d[8],
                variable_debt_token=d[9],
                interest_rate_strategy_address=d[10],
                treasury=treasury,
                variable_debt_scaled_total_supply=scaled_var,
                stable_debt_total_principal=supply[0],
                average_stable_rate=supply[2],
                stable_debt_total_supply_timestamp=supply[3],
                a_token_underlying_balance=underlying,
                interest_rate_strategy=strategy,
                market_borrow_rate=market_rate,
            )
        )
        prices[r.address] = price
    for u in users:
        ((config,),) = res[pos]
        pos += 1
        reserves: dict[str, UserReserve] = {}
        for r in rs:
            v = [x[0] for x in res[pos : pos + 5]]
            pos += 5
            ur = UserReserve(*v)
            if not ur.empty:
                reserves[r.address] = ur
        if config or reserves:
            state.users[u] = UserState(config, reserves)
    return ChainSnapshot(block, ts, state, prices)
