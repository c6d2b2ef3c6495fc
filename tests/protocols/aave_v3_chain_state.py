"""Read an :class:`~protocols.aave_v3.AaveV3State` off a live Aave v3 market (eth_call, one block).

Everything the adapter's state holds is read from the contracts' storage views at one block, in
one JSON-RPC batch: ``Pool.getReserveData`` / ``getUserConfiguration`` / ``getUserEMode`` /
``getEModeCategoryData``, the tokens' scaled balances, previous indices, stable principals /
rates / timestamps and supply data, the underlying held by each aToken, the treasury and the
rate strategy parameters, and ``AaveOracle.getAssetPrice``. This is the "snapshot" way of
building state (the differential tests use it); rebuilding from events is the adapter's
``apply``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode

from ingest.devchain import Contract, abi_type, function_selector
from protocols.aave_v3 import (
    V3_0,
    AaveV3State,
    EModeCategory,
    InterestRateStrategy,
    ReserveData,
    UserReserve,
    UserState,
)
from protocols.aave_v3.configuration import ReserveConfiguration
from tests.protocols.aave_v3_market import AaveV3Market

__all__ = ["ChainSnapshot", "batch_call", "read_state"]

_ZERO = "0x" + "00" * 20


_entries: dict[tuple[str, str, int], tuple[bytes, list[str], list[str]]] = {}


def _entry(c: Contract, fn: str, nargs: int) -> tuple[bytes, list[str], list[str]]:
    key = (c.name, fn, nargs)
    hit = _entries.get(key)
    if hit is None:
        e = c.function(fn, nargs)
        hit = _entries[key] = (function_selector(e), [abi_type(p) for p in e["inputs"]],
                               [abi_type(p) for p in e["outputs"]])
    return hit


def batch_call(m: AaveV3Market, calls: Sequence[tuple[Contract, str, tuple[Any, ...]]],
               block: int) -> list[tuple[Any, ...]]:
    """eth_call each ``(contract, function, args)`` at ``block`` in one JSON-RPC batch."""
    entries = [_entry(c, fn, len(args)) for c, fn, args in calls]
    reqs = [("eth_call", [{"to": c.address, "data": "0x" + (sel + abi_encode(ins, list(args))).hex()},
                          hex(block)])
            for (c, _, args), (sel, ins, _) in zip(calls, entries, strict=True)]
    out = []
    for raw, (_, _, outs) in zip(m.chain.rpc_batch(reqs), entries, strict=True):
        values = abi_decode(outs, bytes.fromhex(str(raw)[2:]))
        out.append(tuple(v.lower() if isinstance(v, str) and v.startswith("0x") else v for v in values))
    return out


@dataclass
class ChainSnapshot:
    """The state at ``block`` (its ``timestamp``) and the oracle's ``prices`` there."""

    block: int
    timestamp: int
    state: AaveV3State
    prices: dict[str, int]


_strategy_cache: dict[str, InterestRateStrategy] = {}
_treasury_cache: dict[str, str] = {}


def _strategies(m: AaveV3Market, block: int) -> None:
    todo = [r for r in m.reserves.values() if r.strategy.address not in _strategy_cache]
    if not todo:
        return
    fns = ("OPTIMAL_USAGE_RATIO", "getBaseVariableBorrowRate", "getVariableRateSlope1",
           "getVariableRateSlope2", "getStableRateSlope1", "getStableRateSlope2", "getBaseStableBorrowRate",
           "getStableRateExcessOffset",
           "OPTIMAL_STABLE_TO_TOTAL_DEBT_RATIO")
    res = batch_call(m, [(r.strategy, fn, ()) for r in todo for fn in fns], block)
    for k, r in enumerate(todo):
        v = [x[0] for x in res[k * len(fns):(k + 1) * len(fns)]]
        _strategy_cache[r.strategy.address] = InterestRateStrategy(
            optimal_usage_ratio=v[0], base_variable_borrow_rate=v[1], variable_rate_slope1=v[2],
            variable_rate_slope2=v[3], stable_rate_slope1=v[4], stable_rate_slope2=v[5],
            base_stable_rate_offset=v[6] - v[2], stable_rate_excess_offset=v[7],
            optimal_stable_to_total_debt_ratio=v[8])
    res = batch_call(m, [(r.a_token, "RESERVE_TREASURY_ADDRESS", ()) for r in todo if r.a_token], block)
    for r, (t,) in zip([r for r in todo if r.a_token], res, strict=True):
        assert r.a_token is not None
        _treasury_cache[r.a_token.address] = t


def read_state(m: AaveV3Market, users: Iterable[str], block: int | None = None,
               emode_ids: Iterable[int] = (1, 2)) -> ChainSnapshot:
    """The market's state at ``block`` (default: latest) for ``users``."""
    chain = m.chain
    if block is None:
        block = chain.block_number()
    ts = int(chain.block(block)["timestamp"], 16)
    users = sorted({u.lower() for u in users})
    _strategies(m, block)
    rs = list(m.reserves.values())
    calls: list[tuple[Contract, str, tuple[Any, ...]]] = []
    for r in rs:
        assert r.a_token and r.variable_debt and r.stable_debt
        calls += [(m.pool, "getReserveData", (r.address,)), (r.variable_debt, "scaledTotalSupply", ()),
                  (r.stable_debt, "getSupplyData", ()), (r.token, "balanceOf", (r.a_token.address,)),
                  (m.oracle, "getAssetPrice", (r.address,))]
    n_reserve_calls = len(calls)
    emode_ids = list(emode_ids)
    calls += [(m.pool, "getEModeCategoryData", (i,)) for i in emode_ids]
    for u in users:
        calls += [(m.pool, "getUserConfiguration", (u,)), (m.pool, "getUserEMode", (u,))]
        for r in rs:
            assert r.a_token and r.variable_debt and r.stable_debt
            calls += [(r.a_token, "scaledBalanceOf", (u,)), (r.a_token, "getPreviousIndex", (u,)),
                      (r.variable_debt, "scaledBalanceOf", (u,)), (r.variable_debt, "getPreviousIndex", (u,)),
                      (r.stable_debt, "principalBalanceOf", (u,)), (r.stable_debt, "getUserStableRate", (u,)),
                      (r.stable_debt, "getUserLastUpdated", (u,))]
    res = batch_call(m, calls, block)

    state = AaveV3State(rules=V3_0, pool=m.pool.address)
    prices: dict[str, int] = {}
    for k, r in enumerate(rs):
        (data,), (scaled_var,), supply, (underlying,), (price,) = res[5 * k:5 * k + 5]
        d = data
        assert r.a_token
        reserve = ReserveData(
            asset=r.address, id=d[7], configuration=ReserveConfiguration.from_word(d[0][0]),
            liquidity_index=d[1], current_liquidity_rate=d[2], variable_borrow_index=d[3],
            current_variable_borrow_rate=d[4], current_stable_borrow_rate=d[5], last_update_timestamp=d[6],
            a_token=d[8], stable_debt_token=d[9], variable_debt_token=d[10],
            interest_rate_strategy_address=d[11],
            accrued_to_treasury=d[12], unbacked=d[13], isolation_mode_total_debt=d[14],
            treasury=_treasury_cache[r.a_token.address], variable_debt_scaled_total_supply=scaled_var,
            stable_debt_total_principal=supply[0], average_stable_rate=supply[2],
            stable_debt_total_supply_timestamp=supply[3], a_token_underlying_balance=underlying,
            interest_rate_strategy=_strategy_cache[d[11]])
        state.add_reserve(reserve)
        prices[r.address] = price
    pos = n_reserve_calls
    for i in emode_ids:
        ((ltv, lt, bonus, source, label),) = res[pos]
        pos += 1
        if lt != 0:
            state.emode_categories[i] = EModeCategory(ltv, lt, bonus, source, label)
    for u in users:
        ((config,),), (emode,) = res[pos], res[pos + 1]
        pos += 2
        reserves: dict[str, UserReserve] = {}
        for r in rs:
            v = [x[0] for x in res[pos:pos + 7]]
            pos += 7
            ur = UserReserve(scaled_a_token_balance=v[0], a_token_previous_index=v[1],
                             scaled_variable_debt=v[2],
                             variable_debt_previous_index=v[3], stable_debt_principal=v[4], stable_rate=v[5],
                             stable_debt_timestamp=v[6])
            if not ur.empty:
                reserves[r.address] = ur
        if config or emode or reserves:
            state.users[u] = UserState(config, emode, reserves)
    return ChainSnapshot(block, ts, state, prices)
