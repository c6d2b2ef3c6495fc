"""A real Aave v2 mainnet liquidation, read from its call trace, against the port's amount rules.

``mev-inspect-py-blocks/13244807.json`` (flashbots/mev-inspect-py, MIT; see its PROVENANCE.md) is
the ``trace_block`` of mainnet block 13,244,807 (2021-09), in which transaction ``0xb7575eed…``
calls ``LendingPool.liquidationCall(WETH, USDT, 0xd16404ca…, 26503300291, false)``. The trace
carries every value the collateral manager read and every amount it wrote:

* ``Helpers.getUserCurrentDebt``: the user's USDT stable and variable debt (``balanceOf`` outputs);
* the user's aWETH ``balanceOf`` (``userCollateralBalance``);
* ``AaveOracle.getAssetPrice`` of WETH then USDT in ``_calculateAvailableCollateralToLiquidate``;
* the amounts it moved: ``VariableDebtToken.burn(user, amount, index)``,
  ``AToken.burn(user, liquidator, amount, index)`` and the USDT ``transferFrom`` to aUSDT;
* the ``availableLiquidity`` handed to each reserve's rate strategy (``calculateInterestRates``)
  next to the aToken's underlying ``balanceOf``.

WETH's liquidation bonus at that block (10500) and the decimals (WETH 18, USDT 6) come from
``bhemen-aave-data`` (``aave_v2_liquidation_bonus_history.csv``, ``aave_atokens_v2.csv``). The
expected amounts are the chain's own; the port computes them from the inputs alone.
"""

from __future__ import annotations

import csv
import json
from typing import Any

import pytest

from protocols.aave_v2.liquidation import (
    LIQUIDATION_CLOSE_FACTOR_PERCENT,
    calculate_available_collateral_to_liquidate,
)
from protocols.fixed_point import percent_mul_half_up
from tests.realdata import REAL_DATA

TRACE = REAL_DATA / "mev-inspect-py-blocks" / "13244807.json"
BHEMEN = REAL_DATA / "bhemen-aave-data"
TX = "0xb7575eedc9d8cfe82c4a11cd1a851221f2eafb93d738301995ac7103ffe877f7"
POOL = "0x7d2768de32b0b80b7a3454c06bdac94a69ddc7a9"
ORACLE = "0xa50ba011c48153de246e5192c8f9258a2ba79ca9"
SEL = {
    "liquidationCall": "0x00a718a9",
    "balanceOf": "0x70a08231",
    "getAssetPrice": "0xb3596f07",
    "vburn": "0xf5298aca",
    "aburn": "0xd7020d0a",
    "transferFrom": "0x23b872dd",
    "calculateInterestRates": "0x9584df28",
}


def _words(data: str) -> list[int]:
    body = data[10:]
    return [int(body[i : i + 64], 16) for i in range(0, len(body), 64)]


def _addr(word: int) -> str:
    return "0x" + format(word, "040x")


Trace = tuple[dict[str, Any], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def trace() -> Trace:
    """The ``liquidationCall`` frame and every call below it (the pool proxy delegatecalls the
    pool, which delegatecalls the collateral manager: their calls come ``from`` the pool proxy)."""
    if not TRACE.exists() or not BHEMEN.exists():
        pytest.skip(f"real data not found: {TRACE} / {BHEMEN}")
    calls = [t for t in json.loads(TRACE.read_text())["traces"] if t["transaction_hash"] == TX]
    (call,) = [
        t
        for t in calls
        if t["action"]["to"] == POOL and t["action"]["input"].startswith(SEL["liquidationCall"])
    ]
    root = call["trace_address"]
    return call, [t for t in calls if t["trace_address"][: len(root)] == root and t is not call]


def _manager_calls(trace: list[dict[str, Any]], selector: str, to: str | None = None) -> list[dict[str, Any]]:
    """Calls made from the pool's storage context (the delegatecalled manager), in order."""
    return [
        t
        for t in trace
        if t["action"]["input"].startswith(selector)
        and t["action"]["from"] == POOL
        and (to is None or t["action"]["to"] == to)
    ]


def _bonus(symbol: str, block: int) -> int:
    with (BHEMEN / "aave_v2_liquidation_bonus_history.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["symbol"] == symbol and int(r["effective_block"]) <= block]
    return int(max(rows, key=lambda r: int(r["effective_block"]))["liquidation_bonus_bps"])


def _tokens() -> dict[str, dict[str, str]]:
    with (BHEMEN / "aave_atokens_v2.csv").open() as f:
        return {r["address"].lower(): r for r in csv.DictReader(f)}


def test_mainnet_liquidation_amounts(trace: Trace) -> None:
    call, sub = trace
    coll_w, debt_w, user_w, debt_to_cover, receive = _words(call["action"]["input"])
    collateral, debt, user = _addr(coll_w), _addr(debt_w), _addr(user_w)
    tokens = _tokens()
    coll_tok, debt_tok = tokens[collateral], tokens[debt]
    assert (coll_tok["symbol"], debt_tok["symbol"], receive) == ("WETH", "USDT", 0)

    def balance(token: str) -> list[int]:
        return [
            int(t["result"]["output"], 16)
            for t in _manager_calls(sub, SEL["balanceOf"], token.lower())
            if _addr(_words(t["action"]["input"])[0]) == user
        ]

    # the loop of calculateUserAccountData reads each balance once; getUserCurrentDebt and the
    # collateral balance read them again, last
    stable = balance(debt_tok["stableDebtTokenAddress"])[-1]
    variable = balance(debt_tok["variableDebtTokenAddress"])[-1]
    user_collateral = balance(coll_tok["aTokenAddress"])[-1]
    prices = [
        (_addr(_words(t["action"]["input"])[0]), int(t["result"]["output"], 16))
        for t in _manager_calls(sub, SEL["getAssetPrice"], ORACLE)
    ]
    (c_asset, c_price), (d_asset, d_price) = prices[-2:]  # _calculateAvailableCollateralToLiquidate's
    assert (c_asset, d_asset) == (collateral, debt) and c_price == 10**18  # the oracle's WETH constant

    max_debt = percent_mul_half_up(stable + variable, LIQUIDATION_CLOSE_FACTOR_PERCENT)
    actual = min(debt_to_cover, max_debt)
    seized, needed = calculate_available_collateral_to_liquidate(
        collateral_price=c_price,
        debt_asset_price=d_price,
        collateral_decimals=int(coll_tok["decimals"]),
        debt_asset_decimals=int(debt_tok["decimals"]),
        debt_to_cover=actual,
        user_collateral_balance=user_collateral,
        liquidation_bonus=_bonus("WETH", int(call["block_number"])),
    )
    actual = min(actual, needed)

    (vburn,) = _manager_calls(sub, SEL["vburn"], debt_tok["variableDebtTokenAddress"].lower())
    (aburn,) = _manager_calls(sub, SEL["aburn"], coll_tok["aTokenAddress"].lower())
    (pay,) = _manager_calls(sub, SEL["transferFrom"], debt)
    assert stable == 0 and variable >= actual  # all of it burned as variable debt
    assert _words(vburn["action"]["input"])[:2] == [user_w, actual]
    assert _words(aburn["action"]["input"])[:3] == [user_w, _words(pay["action"]["input"])[0], seized]
    assert _words(pay["action"]["input"])[1:] == [int(debt_tok["aTokenAddress"], 16), actual]
    assert (actual, seized) == (26503300291, 8182733924513576561)  # mev-inspect's expected values

    # updateInterestRates: the debt reserve's liquidity gains the repayment (it has not arrived
    # yet), the collateral reserve's loses the seized amount (burned after)
    rates = {
        _addr(_words(t["action"]["input"])[0]): _words(t["action"]["input"])[1]
        for t in _manager_calls(sub, SEL["calculateInterestRates"])
    }
    cash = {
        collateral: _cash(sub, collateral, coll_tok["aTokenAddress"]),
        debt: _cash(sub, debt, debt_tok["aTokenAddress"]),
    }
    assert rates == {debt: cash[debt] + actual, collateral: cash[collateral] - seized}


def _cash(sub: list[dict[str, Any]], asset: str, a_token: str) -> int:
    """The underlying held by the aToken, as the manager read it (``IERC20(asset).balanceOf``)."""
    (out,) = {
        int(t["result"]["output"], 16)
        for t in _manager_calls(sub, SEL["balanceOf"], asset)
        if _addr(_words(t["action"]["input"])[0]) == a_token.lower()
    }
    return out
