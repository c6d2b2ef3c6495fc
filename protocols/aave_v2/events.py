"""Rebuilding Aave v2 state from the pool's, configurator's and tokens' events alone.

Source (which storage each emitting function writes): aave/protocol-v2 @ 9169e0d (npm 1.0.1)
``contracts/protocol/lendingpool/LendingPool.sol`` (deposit, withdraw, borrow/_executeBorrow,
repay, swapBorrowRateMode, rebalanceStableBorrowRate, setUserUseReserveAsCollateral, flashLoan,
finalizeTransfer, setPause), ``LendingPoolCollateralManager.sol``, ``LendingPoolConfigurator.sol``,
``libraries/logic/ReserveLogic.sol`` (``ReserveDataUpdated``), ``tokenization/{AToken,
VariableDebtToken,StableDebtToken}.sol``. Declarations and snake_case argument names as in
``ingest/catalog.py`` (``AAVE_V2_*``). Roles are the ``aave_v2`` ingest dataset's deployment
roles (``lending_pool``, ``lending_pool_configurator``, ``a_token``, ...), so the replay finds each
event's raw table by ``(role, signature)``.

How balances are rebuilt: aToken and variable debt token events carry the nominal amount and
the index used, so the scaled change is ``rayDiv(value, index)`` (half-up, as the token
computed it); ``BalanceTransfer`` too (v2 emits the nominal amount). Stable debt: a ``Mint`` sets
the principal to ``currentBalance + amount`` when it comes from ``mint`` (the supply grows by
``amount``) and to ``principal + amount`` when it comes from ``burn`` (interest above the burned
amount; the supply shrinks) — told apart by the supply it announces; a ``Burn`` takes
``amount`` off the principal. Both carry the principal before them (``currentBalance -
balanceIncrease``) and the supply after them: a mismatch with the replayed state (an event lost
or misread earlier) raises :class:`InconsistentEvent`. Indices and rates come from
``ReserveDataUpdated`` (timestamped with the block), collateral flags from
``ReserveUsedAsCollateral*``; the borrowing flag (no event) is set by ``Borrow`` and cleared by
a ``Repay`` that leaves no debt — never by a liquidation, as in the contract. The aToken's
underlying balance follows the pool's flows.

The oracle's ``BaseCurrencySet`` (the later AaveOracle) is read only to refuse a market whose
prices are not ETH wei (a USD-quoted v2 market: the adapter's values are ETH wei).

Not in any event: a reserve's decimals (``ReserveInitialized`` lacks them and these tokens'
``initialize`` emits nothing: seed ``AaveV2State.asset_decimals``, or pass a ``decimals``
argument), the treasury address (the aToken's immutable ``RESERVE_TREASURY_ADDRESS``: seed
``AaveV2State.asset_treasuries``), the rate strategy's parameters and the LendingRateOracle's
market rates (rates then come from ``ReserveDataUpdated`` only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..base import ZERO_ADDRESS, EventSpec
from ..domain import ProtocolEvent
from ..errors import InconsistentEvent, UnsupportedEvent
from ..fixed_point import ray_div_half_up
from .configuration import MAX_RESERVES_COUNT, ReserveConfiguration, set_borrowing, set_using_as_collateral
from .reserve_logic import stable_debt_total_supply
from .state import AaveV2State, ReserveData

__all__ = ["EVENTS", "apply_event"]

_POOL = {
    "Deposit": "Deposit(address,address,address,uint256,uint16)",
    "Withdraw": "Withdraw(address,address,address,uint256)",
    "Borrow": "Borrow(address,address,address,uint256,uint256,uint256,uint16)",
    "Repay": "Repay(address,address,address,uint256)",
    "Swap": "Swap(address,address,uint256)",
    "ReserveUsedAsCollateralEnabled": "ReserveUsedAsCollateralEnabled(address,address)",
    "ReserveUsedAsCollateralDisabled": "ReserveUsedAsCollateralDisabled(address,address)",
    "RebalanceStableBorrowRate": "RebalanceStableBorrowRate(address,address)",
    "FlashLoan": "FlashLoan(address,address,address,uint256,uint256,uint16)",
    "LiquidationCall": "LiquidationCall(address,address,address,uint256,uint256,address,bool)",
    "ReserveDataUpdated": "ReserveDataUpdated(address,uint256,uint256,uint256,uint256,uint256)",
    "Paused": "Paused()",
    "Unpaused": "Unpaused()",
}
_CONFIGURATOR = {
    "ReserveInitialized": "ReserveInitialized(address,address,address,address,address)",
    "CollateralConfigurationChanged": "CollateralConfigurationChanged(address,uint256,uint256,uint256)",
    "BorrowingEnabledOnReserve": "BorrowingEnabledOnReserve(address,bool)",
    "BorrowingDisabledOnReserve": "BorrowingDisabledOnReserve(address)",
    "StableRateEnabledOnReserve": "StableRateEnabledOnReserve(address)",
    "StableRateDisabledOnReserve": "StableRateDisabledOnReserve(address)",
    "ReserveActivated": "ReserveActivated(address)",
    "ReserveDeactivated": "ReserveDeactivated(address)",
    "ReserveFrozen": "ReserveFrozen(address)",
    "ReserveUnfrozen": "ReserveUnfrozen(address)",
    "ReserveFactorChanged": "ReserveFactorChanged(address,uint256)",
    "ReserveDecimalsChanged": "ReserveDecimalsChanged(address,uint256)",
    "ReserveInterestRateStrategyChanged": "ReserveInterestRateStrategyChanged(address,address)",
    "ATokenUpgraded": "ATokenUpgraded(address,address,address)",
    "StableDebtTokenUpgraded": "StableDebtTokenUpgraded(address,address,address)",
    "VariableDebtTokenUpgraded": "VariableDebtTokenUpgraded(address,address,address)",
}
#: the later AaveOracle (protocol-v2 ce53c4a ``misc/AaveOracle.sol``): base currency and its unit
_BASE_CURRENCY_SET = "BaseCurrencySet(address,uint256)"
_A_MINT = "Mint(address,uint256,uint256)"
_A_BURN = "Burn(address,address,uint256,uint256)"
_BALANCE_TRANSFER = "BalanceTransfer(address,address,uint256,uint256)"
_V_MINT = "Mint(address,address,uint256,uint256)"
_V_BURN = "Burn(address,uint256,uint256)"
_S_MINT = "Mint(address,address,uint256,uint256,uint256,uint256,uint256,uint256)"
_S_BURN = "Burn(address,uint256,uint256,uint256,uint256,uint256)"

EVENTS: tuple[EventSpec, ...] = (
    *(EventSpec("lending_pool", s) for s in _POOL.values()),
    *(EventSpec("lending_pool_configurator", s) for s in _CONFIGURATOR.values()),
    EventSpec("oracle", _BASE_CURRENCY_SET),
    EventSpec("a_token", _A_MINT),
    EventSpec("a_token", _A_BURN),
    EventSpec("a_token", _BALANCE_TRANSFER),
    EventSpec("variable_debt_token", _V_MINT),
    EventSpec("variable_debt_token", _V_BURN),
    EventSpec("stable_debt_token", _S_MINT),
    EventSpec("stable_debt_token", _S_BURN),
)

Handler = Callable[[AaveV2State, ProtocolEvent], None]


def apply_event(state: AaveV2State, event: ProtocolEvent) -> None:
    """Update ``state`` for one decoded event (see the module docstring)."""
    handler = _HANDLERS.get((event.role, event.signature))
    if handler is None:
        raise UnsupportedEvent(f"{event.ref}: aave_v2 does not apply {event.role} event {event.signature}")
    try:
        handler(state, event)
    except (KeyError, TypeError, ValueError) as e:
        raise InconsistentEvent(f"{event.ref}: {event.name}: malformed arguments ({e!r})") from e


# ----- helpers -----


def _fail(event: ProtocolEvent, message: str) -> InconsistentEvent:
    return InconsistentEvent(f"{event.ref}: {event.name} at {event.address}: {message}")


def _int(event: ProtocolEvent, key: str) -> int:
    v = event.args[key]
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"{key}={v!r} is not an integer")
    if v < 0:
        raise ValueError(f"{key}={v} is negative")
    return v


def _bool(event: ProtocolEvent, key: str) -> bool:
    v = event.args[key]
    if not isinstance(v, bool):
        raise TypeError(f"{key}={v!r} is not a bool")
    return v


def _addr(event: ProtocolEvent, key: str) -> str:
    v = event.args[key]
    if not isinstance(v, str):
        raise TypeError(f"{key}={v!r} is not an address")
    return v.lower()


def _reserve(state: AaveV2State, event: ProtocolEvent, key: str) -> ReserveData:
    asset = _addr(event, key)
    r = state.reserves.get(asset)
    if r is None:
        raise _fail(event, f"unknown reserve {asset}")
    return r


def _set_config(state: AaveV2State, event: ProtocolEvent, **changes: int | bool) -> None:
    r = _reserve(state, event, "asset")
    fields: dict[str, Any] = dict(changes)
    state.reserves[r.asset] = replace(r, configuration=replace(r.configuration, **fields))


def _set_flag(
    state: AaveV2State,
    address: str,
    reserve: ReserveData,
    *,
    collateral: bool | None = None,
    borrowing: bool | None = None,
) -> None:
    u = state.user(address)
    config = u.configuration
    if collateral is not None:
        config = set_using_as_collateral(config, reserve.id, collateral)
    if borrowing is not None:
        config = set_borrowing(config, reserve.id, borrowing)
    state.put_user(address, u.with_configuration(config))


def _move_underlying(state: AaveV2State, event: ProtocolEvent, r: ReserveData, delta: int) -> None:
    if r.a_token_underlying_balance is None:
        return
    new = r.a_token_underlying_balance + delta
    if new < 0:
        raise _fail(event, f"takes {-delta} of {r.asset} but its aToken holds {r.a_token_underlying_balance}")
    state.reserves[r.asset] = replace(r, a_token_underlying_balance=new)


# ----- pool -----


def _deposit(state: AaveV2State, e: ProtocolEvent) -> None:
    _move_underlying(state, e, _reserve(state, e, "reserve"), _int(e, "amount"))


def _withdraw(state: AaveV2State, e: ProtocolEvent) -> None:
    _move_underlying(state, e, _reserve(state, e, "reserve"), -_int(e, "amount"))


def _borrow(state: AaveV2State, e: ProtocolEvent) -> None:
    r = _reserve(state, e, "reserve")
    amount = _int(e, "amount")
    _move_underlying(state, e, r, -amount)
    _set_flag(state, _addr(e, "on_behalf_of"), r, borrowing=True)
    state.last_borrow = (e.ref.tx_hash, e.ref.log_index, r.asset, amount)


def _repay(state: AaveV2State, e: ProtocolEvent) -> None:
    r = _reserve(state, e, "reserve")
    _move_underlying(state, e, r, _int(e, "amount"))
    user = _addr(e, "user")
    ur = state.user(user).reserve(r.asset)
    if ur.scaled_variable_debt == 0 and ur.stable_debt_principal == 0:
        _set_flag(state, user, r, borrowing=False)


def _liquidation_call(state: AaveV2State, e: ProtocolEvent) -> None:
    debt = _reserve(state, e, "debt_asset")
    repaid = _int(e, "debt_to_cover")
    if _bool(e, "receive_a_token"):
        _move_underlying(state, e, debt, repaid)
        return
    coll = _reserve(state, e, "collateral_asset")
    seized = _int(e, "liquidated_collateral_amount")
    if coll.asset == debt.asset:  # one reserve: net flow, checked once
        _move_underlying(state, e, debt, repaid - seized)
        return
    _move_underlying(state, e, coll, -seized)  # the only check that can fail: nothing written before
    _move_underlying(state, e, state.reserves[debt.asset], repaid)


def _reserve_data_updated(state: AaveV2State, e: ProtocolEvent) -> None:
    r = _reserve(state, e, "reserve")
    state.reserves[r.asset] = replace(
        r,
        current_liquidity_rate=_int(e, "liquidity_rate"),
        current_stable_borrow_rate=_int(e, "stable_borrow_rate"),
        current_variable_borrow_rate=_int(e, "variable_borrow_rate"),
        liquidity_index=_int(e, "liquidity_index"),
        variable_borrow_index=_int(e, "variable_borrow_index"),
        last_update_timestamp=e.ref.block_timestamp,
    )


def _collateral_enabled(state: AaveV2State, e: ProtocolEvent) -> None:
    _set_flag(state, _addr(e, "user"), _reserve(state, e, "reserve"), collateral=True)


def _collateral_disabled(state: AaveV2State, e: ProtocolEvent) -> None:
    _set_flag(state, _addr(e, "user"), _reserve(state, e, "reserve"), collateral=False)


def _flash_loan(state: AaveV2State, e: ProtocolEvent) -> None:
    r = _reserve(state, e, "asset")
    amount = _int(e, "amount")
    # mode 1/2: the loan became debt; its Borrow is the log right before (a Borrow of the same
    # asset and amount in the receiver's callback is not: a mode 0 loan emits ReserveDataUpdated)
    if state.last_borrow == (e.ref.tx_hash, e.ref.log_index - 1, r.asset, amount):
        state.last_borrow = None
        return
    _move_underlying(state, e, r, _int(e, "premium"))  # mode 0: repaid with the premium


def _no_state(state: AaveV2State, e: ProtocolEvent) -> None:
    """Events whose effects arrive through other events (token mints/burns, rates)."""


def _paused(state: AaveV2State, e: ProtocolEvent) -> None:
    state.paused = e.name == "Paused"


# ----- oracle -----


def _base_currency_set(state: AaveV2State, e: ProtocolEvent) -> None:
    """The later AaveOracle announces what its prices are in: ``getAssetPrice`` returns base
    currency units, ``BASE_CURRENCY_UNIT`` per whole base currency token. The adapter values
    everything in ETH wei (``BASE_CURRENCY_UNIT = 10**18``, the Ethereum main market's oracle);
    a USD-quoted market (``address(0)``, unit ``1e8``, as v2 markets outside Ethereum's main one
    are documented to be) would have every value read in the wrong unit and labelled ETH, so it is refused."""
    base, unit = _addr(e, "base_currency"), _int(e, "base_currency_unit")
    if base == ZERO_ADDRESS or unit != 10**18:
        raise UnsupportedEvent(
            f"{e.ref}: BaseCurrencySet at {e.address}: this market's AaveOracle quotes prices in base "
            f"currency {base}{' (USD)' if base == ZERO_ADDRESS else ''} with unit {unit}, but the aave_v2 "
            "adapter values accounts in ETH wei (unit 10**18, the Ethereum main market's oracle): its "
            "values would be read in the wrong unit and currency; such a market is not supported"
        )


# ----- configurator -----


def _reserve_initialized(state: AaveV2State, e: ProtocolEvent) -> None:
    asset = _addr(e, "asset")
    if asset in state.reserves:
        raise _fail(e, f"reserve {asset} is already listed")
    if state.reserves_count >= MAX_RESERVES_COUNT:
        raise _fail(e, "more than 128 reserves (LP_NO_MORE_RESERVES_ALLOWED)")
    decimals = e.args.get("decimals")
    if not isinstance(decimals, int):
        decimals = state.asset_decimals.get(asset)
    if decimals is None:
        raise _fail(
            e,
            f"decimals of {asset} unknown: Aave v2 emits none; declare them "
            "(new_state(asset_decimals=...); a scenario's [market.asset_decimals])",
        )
    state.add_reserve(
        ReserveData(
            asset=asset,
            id=state.reserves_count,
            configuration=ReserveConfiguration(decimals=decimals, active=True),
            a_token=_addr(e, "a_token"),
            stable_debt_token=_addr(e, "stable_debt_token"),
            variable_debt_token=_addr(e, "variable_debt_token"),
            interest_rate_strategy_address=_addr(e, "interest_rate_strategy_address"),
            a_token_underlying_balance=0,
            treasury=state.asset_treasuries.get(asset, ZERO_ADDRESS),
        )
    )


def _collateral_configuration(state: AaveV2State, e: ProtocolEvent) -> None:
    _set_config(
        state,
        e,
        ltv=_int(e, "ltv"),
        liquidation_threshold=_int(e, "liquidation_threshold"),
        liquidation_bonus=_int(e, "liquidation_bonus"),
    )


def _borrowing_enabled(state: AaveV2State, e: ProtocolEvent) -> None:
    _set_config(state, e, borrowing_enabled=True, stable_borrowing_enabled=_bool(e, "stable_rate_enabled"))


def _const(**changes: bool) -> Handler:
    def handler(state: AaveV2State, e: ProtocolEvent) -> None:
        _set_config(state, e, **changes)

    return handler


def _config_int(field: str, key: str) -> Handler:
    def handler(state: AaveV2State, e: ProtocolEvent) -> None:
        _set_config(state, e, **{field: _int(e, key)})

    return handler


def _strategy_changed(state: AaveV2State, e: ProtocolEvent) -> None:
    r = _reserve(state, e, "asset")
    state.reserves[r.asset] = replace(
        r, interest_rate_strategy_address=_addr(e, "strategy"), interest_rate_strategy=None
    )


# ----- tokens -----


def _token_reserve(state: AaveV2State, e: ProtocolEvent) -> ReserveData:
    hit = state.tokens.get(e.address.lower())
    if hit is None or hit[1] != e.role:
        raise _fail(e, f"{e.address} is not a known {e.role}")
    return state.reserves[hit[0]]


def _change_a(state: AaveV2State, e: ProtocolEvent, r: ReserveData, address: str, delta: int) -> None:
    u = state.user(address)
    ur = u.reserve(r.asset)
    new = ur.scaled_a_token_balance + delta
    if new < 0:
        raise _fail(
            e,
            f"{address} gives up {-delta} scaled aTokens of {r.asset} but holds "
            f"{ur.scaled_a_token_balance} (withdraws more than the balance)",
        )
    state.put_user(address, u.with_reserve(r.asset, replace(ur, scaled_a_token_balance=new)))


def _a_mint(state: AaveV2State, e: ProtocolEvent) -> None:
    r = _token_reserve(state, e)
    _change_a(state, e, r, _addr(e, "from"), ray_div_half_up(_int(e, "value"), _int(e, "index")))


def _a_burn(state: AaveV2State, e: ProtocolEvent) -> None:
    r = _token_reserve(state, e)
    _change_a(state, e, r, _addr(e, "from"), -ray_div_half_up(_int(e, "value"), _int(e, "index")))


def _balance_transfer(state: AaveV2State, e: ProtocolEvent) -> None:
    r = _token_reserve(state, e)
    scaled = ray_div_half_up(_int(e, "value"), _int(e, "index"))
    _change_a(state, e, r, _addr(e, "from"), -scaled)
    _change_a(state, e, r, _addr(e, "to"), scaled)


def _change_variable(state: AaveV2State, e: ProtocolEvent, address: str, delta: int) -> None:
    r = _token_reserve(state, e)
    u = state.user(address)
    ur = u.reserve(r.asset)
    new = ur.scaled_variable_debt + delta
    if new < 0:
        raise _fail(
            e,
            f"{address} repays {-delta} scaled variable debt of {r.asset} but owes "
            f"{ur.scaled_variable_debt} (repays more than the debt)",
        )
    total = r.variable_debt_scaled_total_supply + delta
    if total < 0:
        raise _fail(e, f"variable debt supply of {r.asset} below zero")
    state.reserves[r.asset] = replace(r, variable_debt_scaled_total_supply=total)
    state.put_user(address, u.with_reserve(r.asset, replace(ur, scaled_variable_debt=new)))


def _v_mint(state: AaveV2State, e: ProtocolEvent) -> None:
    _change_variable(state, e, _addr(e, "on_behalf_of"), ray_div_half_up(_int(e, "value"), _int(e, "index")))


def _v_burn(state: AaveV2State, e: ProtocolEvent) -> None:
    _change_variable(state, e, _addr(e, "user"), -ray_div_half_up(_int(e, "amount"), _int(e, "index")))


def _stable_set(
    state: AaveV2State,
    e: ProtocolEvent,
    r: ReserveData,
    address: str,
    principal: int,
    rate: int,
    stamp: int,
    total_principal: int,
    avg: int,
) -> None:
    u = state.user(address)
    ur = u.reserve(r.asset)
    state.put_user(
        address,
        u.with_reserve(
            r.asset,
            replace(ur, stable_debt_principal=principal, stable_rate=rate, stable_debt_timestamp=stamp),
        ),
    )
    state.reserves[r.asset] = replace(
        r,
        stable_debt_total_principal=total_principal,
        average_stable_rate=avg,
        stable_debt_total_supply_timestamp=e.ref.block_timestamp,
    )


def _stable_before(state: AaveV2State, e: ProtocolEvent, r: ReserveData, address: str) -> int:
    """The user's stable principal, which the event states too: ``_calculateBalanceIncrease``
    gives ``currentBalance = principal + balanceIncrease``; a mismatch means the replay lost or
    misread an earlier stable debt event."""
    principal = state.user(address).reserve(r.asset).stable_debt_principal
    stated = _int(e, "current_balance") - _int(e, "balance_increase")
    if stated != principal:
        raise _fail(
            e,
            f"{address}'s stable debt principal of {r.asset} before it is {stated} "
            f"(currentBalance - balanceIncrease) but the replay has {principal}",
        )
    return principal


def _burned_supply(e: ProtocolEvent, previous: int, burned: int) -> None:
    """``StableDebtToken.burn``'s reported next supply: ``previous - amount``, or 0 when that
    would not stay positive; anything else contradicts the replayed supply."""
    expected = previous - burned if previous > burned else 0
    supply = _int(e, "new_total_supply")
    if supply != expected:
        raise _fail(
            e,
            f"announces a stable debt supply of {supply} after burning {burned}, but the "
            f"replayed supply {previous} gives {expected}",
        )


def _s_mint(state: AaveV2State, e: ProtocolEvent) -> None:
    r = _token_reserve(state, e)
    address = _addr(e, "on_behalf_of")
    amount, current_balance = _int(e, "amount"), _int(e, "current_balance")
    supply, avg = _int(e, "new_total_supply"), _int(e, "avg_stable_rate")
    principal = _stable_before(state, e, r, address)
    now = e.ref.block_timestamp
    previous = stable_debt_total_supply(r, now)
    if supply == previous + amount:  # StableDebtToken.mint
        _stable_set(state, e, r, address, current_balance + amount, _int(e, "new_rate"), now, supply, avg)
    else:  # StableDebtToken.burn of less than the accrued interest
        burned = _int(e, "balance_increase") - amount
        if burned < 0:
            raise _fail(
                e,
                f"announces a stable debt supply of {supply}, but the replayed supply {previous} "
                f"plus the minted {amount} is {previous + amount}",
            )
        _burned_supply(e, previous, burned)
        _stable_set(
            state, e, r, address, principal + amount, _int(e, "new_rate"), now, supply if avg else 0, avg
        )


def _s_burn(state: AaveV2State, e: ProtocolEvent) -> None:
    r = _token_reserve(state, e)
    address = _addr(e, "user")
    ur = state.user(address).reserve(r.asset)
    principal = ur.stable_debt_principal - _int(e, "amount")
    if principal < 0:
        raise _fail(
            e,
            f"{address} burns {_int(e, 'amount')} stable debt of {r.asset} but owes "
            f"{ur.stable_debt_principal} (repays more than the debt)",
        )
    _stable_before(state, e, r, address)
    _burned_supply(
        e, stable_debt_total_supply(r, e.ref.block_timestamp), _int(e, "amount") + _int(e, "balance_increase")
    )
    repaid_all = principal == 0
    avg = _int(e, "avg_stable_rate")  # the supply is reset with the average (the event keeps the value)
    _stable_set(
        state,
        e,
        r,
        address,
        principal,
        0 if repaid_all else ur.stable_rate,
        0 if repaid_all else e.ref.block_timestamp,
        _int(e, "new_total_supply") if avg else 0,
        avg,
    )


_P, _C = "lending_pool", "lending_pool_configurator"  # the aave_v2 dataset's deployment roles

_HANDLERS: dict[tuple[str, str], Handler] = {
    (_P, _POOL["Deposit"]): _deposit,
    (_P, _POOL["Withdraw"]): _withdraw,
    (_P, _POOL["Borrow"]): _borrow,
    (_P, _POOL["Repay"]): _repay,
    (_P, _POOL["Swap"]): _no_state,
    (_P, _POOL["ReserveUsedAsCollateralEnabled"]): _collateral_enabled,
    (_P, _POOL["ReserveUsedAsCollateralDisabled"]): _collateral_disabled,
    (_P, _POOL["RebalanceStableBorrowRate"]): _no_state,
    (_P, _POOL["FlashLoan"]): _flash_loan,
    (_P, _POOL["LiquidationCall"]): _liquidation_call,
    (_P, _POOL["ReserveDataUpdated"]): _reserve_data_updated,
    (_P, _POOL["Paused"]): _paused,
    (_P, _POOL["Unpaused"]): _paused,
    ("oracle", _BASE_CURRENCY_SET): _base_currency_set,
    (_C, _CONFIGURATOR["ReserveInitialized"]): _reserve_initialized,
    (_C, _CONFIGURATOR["CollateralConfigurationChanged"]): _collateral_configuration,
    (_C, _CONFIGURATOR["BorrowingEnabledOnReserve"]): _borrowing_enabled,
    (_C, _CONFIGURATOR["BorrowingDisabledOnReserve"]): _const(borrowing_enabled=False),
    (_C, _CONFIGURATOR["StableRateEnabledOnReserve"]): _const(stable_borrowing_enabled=True),
    (_C, _CONFIGURATOR["StableRateDisabledOnReserve"]): _const(stable_borrowing_enabled=False),
    (_C, _CONFIGURATOR["ReserveActivated"]): _const(active=True),
    (_C, _CONFIGURATOR["ReserveDeactivated"]): _const(active=False),
    (_C, _CONFIGURATOR["ReserveFrozen"]): _const(frozen=True),
    (_C, _CONFIGURATOR["ReserveUnfrozen"]): _const(frozen=False),
    (_C, _CONFIGURATOR["ReserveFactorChanged"]): _config_int("reserve_factor", "factor"),
    (_C, _CONFIGURATOR["ReserveDecimalsChanged"]): _config_int("decimals", "decimals"),
    (_C, _CONFIGURATOR["ReserveInterestRateStrategyChanged"]): _strategy_changed,
    (_C, _CONFIGURATOR["ATokenUpgraded"]): _no_state,
    (_C, _CONFIGURATOR["StableDebtTokenUpgraded"]): _no_state,
    (_C, _CONFIGURATOR["VariableDebtTokenUpgraded"]): _no_state,
    ("a_token", _A_MINT): _a_mint,
    ("a_token", _A_BURN): _a_burn,
    ("a_token", _BALANCE_TRANSFER): _balance_transfer,
    ("variable_debt_token", _V_MINT): _v_mint,
    ("variable_debt_token", _V_BURN): _v_burn,
    ("stable_debt_token", _S_MINT): _s_mint,
    ("stable_debt_token", _S_BURN): _s_burn,
}
assert {(s.role, s.signature) for s in EVENTS} == set(_HANDLERS)
