"""Rebuilding Aave v3 state from the pool's, configurator's and tokens' events alone.

Source (event semantics, i.e. which storage each emitting function writes): aave/aave-v3-core
@ 724a9ef (v3.0.2) ``contracts/protocol/pool/Pool.sol``, ``pool/PoolConfigurator.sol``,
``libraries/logic/{Supply,Borrow,Liquidation,EMode,Pool,Configurator,Bridge,FlashLoan}Logic.sol``,
``tokenization/base/ScaledBalanceTokenBase.sol``, ``AToken.sol``, ``StableDebtToken.sol``;
v3.1/v3.2 configurator events from aave-dao/aave-v3-origin v3.1.0 (e627c74) / v3.2.0 (7c6023e).
Declarations (and the snake_case argument names) as in ``ingest/catalog.py``.

How balances are rebuilt: the scaled tokens announce every balance change with the index used
(``Mint``/``Burn``: ``value ± balance_increase`` is the amount, ``rayDiv(amount, index)`` the
scaled change — a ``Mint`` whose value is below its balance increase comes from a burn, one
equal to it only announces interest; ``BalanceTransfer`` carries the scaled amount). A variable
debt token the deployment data names a ``GhoVariableDebtToken`` (``discount_debt_tokens``) may
announce a ``balance_increase`` less than the interest accrued on the rebuilt balance (gho-core
@ 00e67fe and e41d7ee, ``GhoVariableDebtToken.sol``; any other doing so raises): the difference
is the borrower's stkAAVE discount, which the token also burns from the scaled debt
(:func:`_debt_discount_scaled`); more than the accrual raises, and so does a discount that is
not ``percentMul(accrued, percent)`` at the percent rebuilt from the token's
``DiscountPercentUpdated`` (:func:`_discount_percent_updated`). Its accumulated interest
(``getBalanceFromInterest``) is rebuilt too (:func:`_gho_interest`). Indices
and rates come from ``ReserveDataUpdated`` (timestamped with the block), flags from
``ReserveUsedAsCollateral*`` (the borrowing flag, which has no event, is cleared when a
``Repay``/``LiquidationCall`` leaves no debt — under v3.0-v3.3 only if the amount paid back was
the whole debt: a burn whose ``rayDiv`` rounding takes the whole scaled debt for less keeps
it, ``AaveV3State.inexact_debt_closures``), parameters from the configurator.

v3.3+ (aave-dao/aave-v3-origin v3.3.0, 5431379, ``LiquidationLogic.sol``): ``DeficitCreated``
adds to the reserve's ``deficit`` (the debt itself leaves through the debt token's ``Burn``)
and clears the user's borrowing flag of that reserve (``_burnBadDebt`` burns debts the
``LiquidationCall`` does not name) and of every active reserve it borrows without debt
(``_burnBadDebt`` clears those without an event; one run without any deficit is not seen),
``DeficitCovered`` (``eliminateReserveDeficit``) takes it off (the aTokens burned arrive as a
``Burn``); either under a rule set without deficit accounting means the rules are wrong and
raises. The pool proxy's ``Upgraded(implementation)`` switches ``state.rules`` through
``state.implementations`` (:mod:`.rule_schedule`; an unknown implementation raises
:class:`~.rule_schedule.UnknownImplementation`). v3.5 (v3.5.0, 6138e1f,
``ScaledBalanceTokenBase.sol``): a ``Mint``/``Burn`` value is the change of the *rounded*
balance (aToken floor, debt ceil), so the scaled change is solved exactly from the stored
scaled balance: the new scaled balance ``n`` is the one whose rounded balance at the event's
index is ``balance(s, index) - balance_increase ± value``.

v3.5 also updates the collateral reserve at the start of ``liquidationCall``; with
``receiveAToken`` no ``ReserveDataUpdated`` follows, so the ``LiquidationCall`` accrues that
reserve's indices to the block as ``updateState`` does.

Not rebuilt from events: ``accruedToTreasury`` (no event; ``MintedToTreasury`` resets it to 0),
the aToken's underlying balance other than the pool's own flows (donations are invisible), the
interest rate strategy's parameters. A reserve's decimals are not in ``ReserveInitialized``:
they come from an aToken ``Initialized`` event, a ``decimals`` argument added by the caller, or
``AaveV3State.asset_decimals`` seeded beforehand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..base import ZERO_ADDRESS, EventSpec
from ..domain import ProtocolEvent
from ..errors import InconsistentEvent, UnsupportedEvent
from ..fixed_point import (
    RAY,
    percent_mul_half_up,
    ray_div_half_up,
    ray_mul_ceil,
    ray_mul_floor,
    ray_mul_half_up,
)
from .configuration import ReserveConfiguration, is_borrowing, set_borrowing, set_using_as_collateral
from .reserve_logic import cache, update_state
from .rule_schedule import Upgrade, implementation_rules
from .state import AaveV3State, EModeCategory, ReserveData, UserReserve, UserState, evolver

__all__ = ["EVENTS", "apply_event"]

_POOL = {
    "Supply": "Supply(address,address,address,uint256,uint16)",
    "Withdraw": "Withdraw(address,address,address,uint256)",
    "Borrow": "Borrow(address,address,address,uint256,uint8,uint256,uint16)",
    "Repay": "Repay(address,address,address,uint256,bool)",
    "LiquidationCall": "LiquidationCall(address,address,address,uint256,uint256,address,bool)",
    "ReserveDataUpdated": "ReserveDataUpdated(address,uint256,uint256,uint256,uint256,uint256)",
    "ReserveUsedAsCollateralEnabled": "ReserveUsedAsCollateralEnabled(address,address)",
    "ReserveUsedAsCollateralDisabled": "ReserveUsedAsCollateralDisabled(address,address)",
    "UserEModeSet": "UserEModeSet(address,uint8)",
    "IsolationModeTotalDebtUpdated": "IsolationModeTotalDebtUpdated(address,uint256)",
    "MintedToTreasury": "MintedToTreasury(address,uint256)",
    "SwapBorrowRateMode": "SwapBorrowRateMode(address,address,uint8)",
    "RebalanceStableBorrowRate": "RebalanceStableBorrowRate(address,address)",
    "FlashLoan": "FlashLoan(address,address,address,uint256,uint8,uint256,uint16)",
    "MintUnbacked": "MintUnbacked(address,address,address,uint256,uint16)",
    "BackUnbacked": "BackUnbacked(address,address,uint256,uint256)",
    "DeficitCreated": "DeficitCreated(address,address,uint256)",  # v3.3+
    "DeficitCovered": "DeficitCovered(address,address,uint256)",  # v3.3+
    "Upgraded": "Upgraded(address)",  # the pool proxy (ingest.catalog.PROXY)
}
_CONFIGURATOR = {
    "ReserveInitialized": "ReserveInitialized(address,address,address,address,address)",
    "CollateralConfigurationChanged": "CollateralConfigurationChanged(address,uint256,uint256,uint256)",
    "PendingLtvChanged": "PendingLtvChanged(address,uint256)",
    "ReserveBorrowing": "ReserveBorrowing(address,bool)",
    "ReserveFlashLoaning": "ReserveFlashLoaning(address,bool)",
    "ReserveStableRateBorrowing": "ReserveStableRateBorrowing(address,bool)",
    "ReserveActive": "ReserveActive(address,bool)",
    "ReserveFrozen": "ReserveFrozen(address,bool)",
    "ReservePaused": "ReservePaused(address,bool)",
    "ReserveDropped": "ReserveDropped(address)",
    "ReserveFactorChanged": "ReserveFactorChanged(address,uint256,uint256)",
    "BorrowCapChanged": "BorrowCapChanged(address,uint256,uint256)",
    "SupplyCapChanged": "SupplyCapChanged(address,uint256,uint256)",
    "LiquidationProtocolFeeChanged": "LiquidationProtocolFeeChanged(address,uint256,uint256)",
    "LiquidationGracePeriodChanged": "LiquidationGracePeriodChanged(address,uint40)",
    "LiquidationGracePeriodDisabled": "LiquidationGracePeriodDisabled(address)",
    "UnbackedMintCapChanged": "UnbackedMintCapChanged(address,uint256,uint256)",
    "EModeAssetCategoryChanged": "EModeAssetCategoryChanged(address,uint8,uint8)",
    "EModeCategoryAdded": "EModeCategoryAdded(uint8,uint256,uint256,uint256,address,string)",
    "AssetCollateralInEModeChanged": "AssetCollateralInEModeChanged(address,uint8,bool)",
    "AssetBorrowableInEModeChanged": "AssetBorrowableInEModeChanged(address,uint8,bool)",
    "DebtCeilingChanged": "DebtCeilingChanged(address,uint256,uint256)",
    "SiloedBorrowingChanged": "SiloedBorrowingChanged(address,bool,bool)",
    "BorrowableInIsolationChanged": "BorrowableInIsolationChanged(address,bool)",
    "ReserveInterestRateStrategyChanged": "ReserveInterestRateStrategyChanged(address,address,address)",
    "ATokenUpgraded": "ATokenUpgraded(address,address,address)",
    "StableDebtTokenUpgraded": "StableDebtTokenUpgraded(address,address,address)",
    "VariableDebtTokenUpgraded": "VariableDebtTokenUpgraded(address,address,address)",
}
_SCALED_MINT = "Mint(address,address,uint256,uint256,uint256)"
_SCALED_BURN = "Burn(address,address,uint256,uint256,uint256)"
_BALANCE_TRANSFER = "BalanceTransfer(address,address,uint256,uint256)"
_A_TOKEN_INITIALIZED = "Initialized(address,address,address,address,uint8,string,string,bytes)"
_STABLE_MINT = "Mint(address,address,uint256,uint256,uint256,uint256,uint256,uint256)"
_STABLE_BURN = "Burn(address,uint256,uint256,uint256,uint256,uint256)"
_DISCOUNT_PERCENT_UPDATED = "DiscountPercentUpdated(address,uint256,uint256)"  # GhoVariableDebtToken

EVENTS: tuple[EventSpec, ...] = (
    *(EventSpec("pool", s) for s in _POOL.values()),
    *(EventSpec("pool_configurator", s) for s in _CONFIGURATOR.values()),
    EventSpec("a_token", _SCALED_MINT),
    EventSpec("a_token", _SCALED_BURN),
    EventSpec("a_token", _BALANCE_TRANSFER),
    EventSpec("a_token", _A_TOKEN_INITIALIZED),
    EventSpec("variable_debt_token", _SCALED_MINT),
    EventSpec("variable_debt_token", _SCALED_BURN),
    EventSpec("variable_debt_token", _DISCOUNT_PERCENT_UPDATED),
    EventSpec("variable_debt_token", _POOL["Upgraded"]),  # the proxy (ingest.catalog.PROXY)
    EventSpec("stable_debt_token", _STABLE_MINT),
    EventSpec("stable_debt_token", _STABLE_BURN),
)

Handler = Callable[[AaveV3State, ProtocolEvent], None]

# the hot paths' record updates (``dataclasses.replace`` of fixed fields, 2-3x faster)
_with_rates = evolver(ReserveData, "current_liquidity_rate", "current_stable_borrow_rate",
                      "current_variable_borrow_rate", "liquidity_index", "variable_borrow_index",
                      "last_update_timestamp")
_with_underlying = evolver(ReserveData, "a_token_underlying_balance")
_with_debt_supply = evolver(ReserveData, "variable_debt_scaled_total_supply")
_with_a_balance = evolver(UserReserve, "scaled_a_token_balance", "a_token_previous_index")
_with_debt_balance = evolver(UserReserve, "scaled_variable_debt", "variable_debt_previous_index")


def apply_event(state: AaveV3State, event: ProtocolEvent) -> None:
    """Update ``state`` for one decoded event (see the module docstring)."""
    handler = _HANDLERS.get((event.role, event.signature))
    if handler is None:
        raise UnsupportedEvent(f"{event.ref}: aave_v3 does not apply {event.role} event {event.signature}")
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


def _reserve(state: AaveV3State, event: ProtocolEvent, key: str) -> ReserveData:
    asset = _addr(event, key)
    r = state.reserves.get(asset)
    if r is None:
        raise _fail(event, f"unknown reserve {asset}")
    return r


def _set_config(state: AaveV3State, event: ProtocolEvent, **changes: int | bool) -> None:
    r = _reserve(state, event, "asset")
    fields: dict[str, Any] = dict(changes)
    state.reserves[r.asset] = replace(r, configuration=replace(r.configuration, **fields))


def _put_user(state: AaveV3State, address: str, user: UserState) -> None:
    if user.configuration == 0 and user.emode_category == 0 and not user.reserves:
        state.users.pop(address, None)
    else:
        state.users[address] = user


def _set_flag(state: AaveV3State, event: ProtocolEvent, user_key: str, reserve: ReserveData,
              collateral: bool | None = None, borrowing: bool | None = None) -> None:
    address = _addr(event, user_key)
    u = state.user(address)
    config = u.configuration
    if collateral is not None:
        config = set_using_as_collateral(config, reserve.id, collateral)
    if borrowing is not None:
        config = set_borrowing(config, reserve.id, borrowing)
    _put_user(state, address, UserState(config, u.emode_category, u.reserves))


def _add_underlying(r: ReserveData, delta: int) -> ReserveData:
    if r.a_token_underlying_balance is None:
        return r
    return _with_underlying(r, r.a_token_underlying_balance + delta)


def _clear_borrowing_if_repaid(state: AaveV3State, user_address: str, reserve: ReserveData,
                              e: ProtocolEvent | None = None) -> None:
    """The borrowing flag after a ``Repay``/``LiquidationCall`` (``e``) or a v3.4+ deficit burn:
    cleared when no debt is left, except under v3.0-v3.3 (which compare the amount paid back with
    the debt) after a burn whose rounding took the whole scaled debt for less than the debt."""
    if e is not None and state.inexact_debt_closures:
        inexact = (e.ref.tx_hash, user_address, reserve.asset) in state.inexact_debt_closures
        state.inexact_debt_closures.clear()  # each marks the burn of the call closing it
        if inexact and not state.rules.borrow_flag_from_balance:
            return
    dusty = False
    if e is not None and state.gho_dusty_debt_closures:
        dusty = (e.ref.tx_hash, user_address, reserve.asset) in state.gho_dusty_debt_closures
        state.gho_dusty_debt_closures.clear()
        dusty = dusty and not state.rules.borrow_flag_from_balance
    u = state.user(user_address)
    ur = u.reserve(reserve.asset)
    repaid = dusty or (ur.scaled_variable_debt == 0 and ur.stable_debt_principal == 0)
    if repaid and is_borrowing(u.configuration, reserve.id):
        _put_user(state, user_address, UserState(set_borrowing(u.configuration, reserve.id, False),
                                                 u.emode_category, u.reserves))


# ----- pool -----

def _supply(state: AaveV3State, e: ProtocolEvent) -> None:
    r = _reserve(state, e, "reserve")
    state.reserves[r.asset] = _add_underlying(r, _int(e, "amount"))


def _withdraw(state: AaveV3State, e: ProtocolEvent) -> None:
    r = _reserve(state, e, "reserve")
    state.reserves[r.asset] = _add_underlying(r, -_int(e, "amount"))


def _borrow(state: AaveV3State, e: ProtocolEvent) -> None:
    r = _reserve(state, e, "reserve")
    state.reserves[r.asset] = _add_underlying(r, -_int(e, "amount"))
    _set_flag(state, e, "on_behalf_of", r, borrowing=True)


def _repay(state: AaveV3State, e: ProtocolEvent) -> None:
    r = _reserve(state, e, "reserve")
    if not _bool(e, "use_a_tokens"):
        state.reserves[r.asset] = _add_underlying(r, _int(e, "amount"))
        _gho_interest(state, e, r, _addr(e, "user"), repaid=_int(e, "amount"))  # handleRepayment
    _clear_borrowing_if_repaid(state, _addr(e, "user"), r, e)


def _liquidation_call(state: AaveV3State, e: ProtocolEvent) -> None:
    if state.rules.directional_rounding and _bool(e, "receive_a_token"):
        # v3.5 updates the collateral reserve first; with receiveAToken no ReserveDataUpdated
        # follows for it, so its indices and timestamp are accrued here as updateState does (a
        # no-op when an event of this block already set them, e.g. collateral == debt asset)
        coll = _reserve(state, e, "collateral_asset")
        ts = e.ref.block_timestamp
        state.reserves[coll.asset] = update_state(coll, cache(coll, ts), ts, state.rules,
                                                   directional_rounding=True)
    debt = _reserve(state, e, "debt_asset")
    state.reserves[debt.asset] = _add_underlying(debt, _int(e, "debt_to_cover"))
    _gho_interest(state, e, debt, _addr(e, "user"), repaid=_int(e, "debt_to_cover"))  # handleRepayment
    if not _bool(e, "receive_a_token"):
        coll = _reserve(state, e, "collateral_asset")
        state.reserves[coll.asset] = _add_underlying(coll, -_int(e, "liquidated_collateral_amount"))
    _clear_borrowing_if_repaid(state, _addr(e, "user"), state.reserves[debt.asset], e)


def _reserve_data_updated(state: AaveV3State, e: ProtocolEvent) -> None:
    r = _reserve(state, e, "reserve")
    state.reserves[r.asset] = _with_rates(
        r, _int(e, "liquidity_rate"), _int(e, "stable_borrow_rate"), _int(e, "variable_borrow_rate"),
        _int(e, "liquidity_index"), _int(e, "variable_borrow_index"), e.ref.block_timestamp)


def _collateral_enabled(state: AaveV3State, e: ProtocolEvent) -> None:
    _set_flag(state, e, "user", _reserve(state, e, "reserve"), collateral=True)


def _collateral_disabled(state: AaveV3State, e: ProtocolEvent) -> None:
    _set_flag(state, e, "user", _reserve(state, e, "reserve"), collateral=False)


def _user_emode_set(state: AaveV3State, e: ProtocolEvent) -> None:
    address = _addr(e, "user")
    u = state.user(address)
    _put_user(state, address, UserState(u.configuration, _int(e, "category_id"), u.reserves))


def _isolation_debt(state: AaveV3State, e: ProtocolEvent) -> None:
    r = _reserve(state, e, "asset")
    state.reserves[r.asset] = replace(r, isolation_mode_total_debt=_int(e, "total_debt"))


def _minted_to_treasury(state: AaveV3State, e: ProtocolEvent) -> None:
    r = _reserve(state, e, "reserve")
    state.reserves[r.asset] = replace(r, accrued_to_treasury=0)


def _no_state(state: AaveV3State, e: ProtocolEvent) -> None:
    """Events whose effects arrive through other events (token mints/burns, rates)."""


def _flash_loan(state: AaveV3State, e: ProtocolEvent) -> None:
    r = _reserve(state, e, "asset")
    if _int(e, "interest_rate_mode") == 0:  # repaid in the same transaction, premium kept
        state.reserves[r.asset] = _add_underlying(r, _int(e, "premium"))
        # _handleFlashLoanRepayment: handleRepayment(receiver, receiver, amount + premium)
        _gho_interest(state, e, r, _addr(e, "target"), repaid=_int(e, "amount") + _int(e, "premium"))


def _mint_unbacked(state: AaveV3State, e: ProtocolEvent) -> None:
    r = _reserve(state, e, "reserve")
    state.reserves[r.asset] = replace(r, unbacked=r.unbacked + _int(e, "amount"))


def _back_unbacked(state: AaveV3State, e: ProtocolEvent) -> None:
    r = _reserve(state, e, "reserve")
    amount = _int(e, "amount")
    if amount > r.unbacked:
        raise _fail(e, f"backs {amount} but only {r.unbacked} is unbacked")
    backed = replace(r, unbacked=r.unbacked - amount)
    state.reserves[r.asset] = _add_underlying(backed, amount + _int(e, "fee"))


def _deficit_created(state: AaveV3State, e: ProtocolEvent) -> None:
    if not state.rules.deficit_accounting:
        raise _fail(e, f"deficit event under Aave v{state.rules.version} rules, which have no deficit")
    r = _reserve(state, e, "debt_asset")
    state.reserves[r.asset] = r = replace(r, deficit=r.deficit + _int(e, "amount_created"))
    # _burnDebtTokens burned the user's whole debt of this reserve (its Burn came first) and
    # clears the borrowing flag: v3.3 sets outstandingDebt = 0, v3.4+ reads noMoreDebt from the
    # burn. For a debt other than the LiquidationCall's (_burnBadDebt) no other event says so.
    address = _addr(e, "user")
    _gho_interest(state, e, r, address, clear=True)
    if state.rules.borrow_flag_from_balance:
        _clear_borrowing_if_repaid(state, address, r)
    else:
        u = state.user(address)
        if is_borrowing(u.configuration, r.id):
            _put_user(state, address, UserState(set_borrowing(u.configuration, r.id, False),
                                                u.emode_category, u.reserves))
    # a deficit means the user has no collateral left, so _burnBadDebt visits every active
    # reserve it borrows: one flagged without debt (a v3.0-v3.3 rounding payback) burns nothing,
    # emits no DeficitCreated, and has its flag cleared
    u = state.user(address)
    config = u.configuration
    for rid, asset in state.reserves_list.items():
        other = state.reserves.get(asset)
        if other is None or not other.configuration.active or not is_borrowing(config, rid):
            continue
        ur = u.reserve(asset)
        if ur.scaled_variable_debt == 0 and ur.stable_debt_principal == 0:
            config = set_borrowing(config, rid, False)
    if config != u.configuration:
        _put_user(state, address, UserState(config, u.emode_category, u.reserves))


def _deficit_covered(state: AaveV3State, e: ProtocolEvent) -> None:
    if not state.rules.deficit_accounting:
        raise _fail(e, f"deficit event under Aave v{state.rules.version} rules, which have no deficit")
    r = _reserve(state, e, "reserve")
    amount = _int(e, "amount_covered")
    if amount > r.deficit:
        raise _fail(e, f"covers {amount} of reserve {r.asset} whose deficit is {r.deficit}")
    state.reserves[r.asset] = replace(r, deficit=r.deficit - amount)


def _upgraded(state: AaveV3State, e: ProtocolEvent) -> None:
    if state.pool != ZERO_ADDRESS and e.address.lower() != state.pool:
        raise _fail(e, f"Upgraded of {e.address}, which is not this state's pool {state.pool}")
    state.rules = implementation_rules(state.implementations, Upgrade(e.ref, _addr(e, "implementation")))
    state.index_cache.clear()


# ----- configurator -----

def _reserve_initialized(state: AaveV3State, e: ProtocolEvent) -> None:
    asset = _addr(e, "asset")
    if asset in state.reserves:
        raise _fail(e, f"reserve {asset} is already listed")
    pending = state.pending_a_token_init.pop(asset, None)
    decimals = e.args.get("decimals")
    if not isinstance(decimals, int):
        decimals = pending[0] if pending is not None else state.asset_decimals.get(asset)
    if decimals is None:
        raise _fail(e, f"decimals of {asset} unknown (seed AaveV3State.asset_decimals)")
    reserve_id = next((i for i in range(state.reserves_count) if i not in state.reserves_list),
                      state.reserves_count)
    state.add_reserve(ReserveData(
        asset=asset, id=reserve_id, configuration=ReserveConfiguration(decimals=decimals, active=True),
        last_update_timestamp=0, a_token=_addr(e, "a_token"), stable_debt_token=_addr(e, "stable_debt_token"),
        variable_debt_token=_addr(e, "variable_debt_token"),
        interest_rate_strategy_address=_addr(e, "interest_rate_strategy_address"),
        treasury=pending[1] if pending is not None else ZERO_ADDRESS,
        a_token_underlying_balance=0))


def _a_token_initialized(state: AaveV3State, e: ProtocolEvent) -> None:
    asset = _addr(e, "underlying_asset")
    decimals, treasury = _int(e, "a_token_decimals"), _addr(e, "treasury")
    r = state.reserves.get(asset)
    if r is not None and r.a_token == e.address:  # re-initialized by an upgrade
        state.reserves[asset] = replace(r, treasury=treasury)
    else:
        state.pending_a_token_init[asset] = (decimals, treasury)


def _reserve_dropped(state: AaveV3State, e: ProtocolEvent) -> None:
    r = _reserve(state, e, "asset")
    del state.reserves[r.asset]
    state.reserves_list.pop(r.id, None)
    for token in (r.a_token, r.stable_debt_token, r.variable_debt_token):
        state.tokens.pop(token, None)


def _collateral_configuration(state: AaveV3State, e: ProtocolEvent) -> None:
    _set_config(state, e, ltv=_int(e, "ltv"), liquidation_threshold=_int(e, "liquidation_threshold"),
                liquidation_bonus=_int(e, "liquidation_bonus"))


def _config_setter(field: str, key: str, kind: str = "int") -> Handler:
    def handler(state: AaveV3State, e: ProtocolEvent) -> None:
        _set_config(state, e, **{field: _bool(e, key) if kind == "bool" else _int(e, key)})
    return handler


def _strategy_changed(state: AaveV3State, e: ProtocolEvent) -> None:
    r = _reserve(state, e, "asset")
    state.reserves[r.asset] = replace(r, interest_rate_strategy_address=_addr(e, "new_strategy"),
                                      interest_rate_strategy=None)


def _grace_period(state: AaveV3State, e: ProtocolEvent) -> None:
    r = _reserve(state, e, "asset")
    until = _int(e, "grace_period_until") if e.name == "LiquidationGracePeriodChanged" else 0
    state.reserves[r.asset] = replace(r, liquidation_grace_period_until=until)


def _emode_category_added(state: AaveV3State, e: ProtocolEvent) -> None:
    cid = _int(e, "category_id")
    old = state.emode_categories.get(cid)
    label = e.args.get("label", "")
    state.emode_categories[cid] = EModeCategory(
        ltv=_int(e, "ltv"), liquidation_threshold=_int(e, "liquidation_threshold"),
        liquidation_bonus=_int(e, "liquidation_bonus"), price_source=_addr(e, "oracle"),
        label=label if isinstance(label, str) else "",
        collateral_bitmap=old.collateral_bitmap if old else 0,
        borrowable_bitmap=old.borrowable_bitmap if old else 0)


def _emode_bitmap(field: str, key: str) -> Handler:
    def handler(state: AaveV3State, e: ProtocolEvent) -> None:
        r = _reserve(state, e, "asset")
        cid = _int(e, "category_id")
        cat = state.emode_categories.get(cid)
        if cat is None:
            raise _fail(e, f"unknown e-mode category {cid}")
        bitmap = getattr(cat, field)
        bitmap = bitmap | (1 << r.id) if _bool(e, key) else bitmap & ~(1 << r.id)
        state.emode_categories[cid] = replace(cat, **{field: bitmap})
    return handler


# ----- tokens -----

def _token_reserve(state: AaveV3State, e: ProtocolEvent) -> ReserveData:
    hit = state.tokens.get(e.address.lower())
    if hit is None or hit[1] != e.role:
        raise _fail(e, f"{e.address} is not a known {e.role}")
    return state.reserves[hit[0]]


def _change_scaled(state: AaveV3State, e: ProtocolEvent, reserve: ReserveData, address: str, delta: int,
                   index: int) -> None:
    u = state.user(address)
    ur = u.reserve(reserve.asset)
    if e.role == "a_token":
        new = ur.scaled_a_token_balance + delta
        if new < 0:
            raise _fail(e, f"{address} burns {-delta} scaled aTokens but holds {ur.scaled_a_token_balance}")
        ur = _with_a_balance(ur, new, index)
    else:
        new = ur.scaled_variable_debt + delta
        if new < 0:
            raise _fail(e, f"{address} repays {-delta} scaled debt but owes {ur.scaled_variable_debt}")
        ur = _with_debt_balance(ur, new, index)
        total = reserve.variable_debt_scaled_total_supply + delta
        if total < 0:
            raise _fail(e, "variable debt supply below zero")
        state.reserves[reserve.asset] = reserve = _with_debt_supply(reserve, total)
    _put_user(state, address, u.with_reserve(reserve.asset, ur))


def _exact_scaled_change(state: AaveV3State, e: ProtocolEvent, reserve: ReserveData, address: str,
                         signed_value: int, increase: int, index: int) -> int:
    """v3.5: the scaled change ``n - s`` such that ``bal(n, index) == bal(s, index) - increase
    + signed_value`` (``bal`` = floor for aTokens, ceil for debt; unique for ``index >= RAY``)."""
    ur = state.user(address).reserve(reserve.asset)
    a_token = e.role == "a_token"
    s = ur.scaled_a_token_balance if a_token else ur.scaled_variable_debt
    bal = ray_mul_floor if a_token else ray_mul_ceil
    target = bal(s, index) - increase + signed_value
    if index <= 0 or target < 0:
        raise _fail(e, f"no scaled balance of {address} matches value {signed_value} at index {index}")
    n = -(-target * RAY // index) if a_token else target * RAY // index
    if bal(n, index) != target:
        raise _fail(e, f"no scaled balance of {address} has balance {target} at index {index}")
    return n - s


def _debt_discount_scaled(state: AaveV3State, e: ProtocolEvent, reserve: ReserveData, address: str,
                          increase: int, index: int) -> tuple[int, int]:
    """The scaled debt a variable debt token burned as a *discount* in this action (v3.0-v3.4),
    and the user's debt before the action (the token's ``balanceOf``: ``rayMul(s, index) -
    discount``):
    0 for Aave's own ``VariableDebtToken``; for GHO's ``GhoVariableDebtToken`` (gho-core @ 00e67fe,
    ``src/contracts/facilitators/aave/tokens/GhoVariableDebtToken.sol``, ``_accrueDebtOnAction``)
    the discount taken off the interest accrued since the user's last action.

    Both tokens accrue ``raw = rayMul(s, index) - rayMul(s, previous index)`` on the stored scaled
    debt ``s``; GHO then takes ``discount = percentMul(raw, discount percent)`` off it, emits
    ``balance_increase = raw - discount`` and burns ``discount.rayDiv(index)`` scaled tokens
    (half up: gho-core e41d7ee, 2023-01-19, before GHO's launch; 00e67fe floored) besides the
    amount — or, from b2db754 ("full repayment"), the whole scaled balance when the amount
    burned is the whole discounted debt (an earlier implementation, Ethereum's launch one, named
    by the deployment data and installed by the token proxy's ``Upgraded``, burns by parts even
    then, and may leave scaled dust whose borrowing flag the pool clears). The event gives the
    discount itself: ``raw - balance_increase``; it must be ``percentMul(raw, percent)`` at the
    user's rebuilt percent (the old one of a ``DiscountPercentUpdated`` of the same action,
    logged just before), when known. An event announcing more than ``raw``, or less from a token the state
    does not name a ``GhoVariableDebtToken`` (``discount_debt_tokens``, from the deployment
    data) or under v3.4+ rules (vGHO became a plain token), means the rebuilt balance is not
    the token's, and raises."""
    ur = state.user(address).reserve(reserve.asset)
    s = ur.scaled_variable_debt
    raw = ray_mul_half_up(s, index) - ray_mul_half_up(s, ur.variable_debt_previous_index) if s else 0
    if increase > raw:
        raise _fail(e, f"balance increase {increase} exceeds the {raw} accrued on {address}'s rebuilt "
                    f"scaled debt {s} since index {ur.variable_debt_previous_index}")
    if index <= 0:
        raise _fail(e, f"index {index} is not positive")
    if increase < raw and (reserve.variable_debt_token.lower() not in state.discount_debt_tokens
                           or not state.rules.gho_discount):
        raise _fail(e, f"balance increase {increase} of {address} is less than the {raw} accrued on its "
                    f"rebuilt scaled debt {s} since index {ur.variable_debt_previous_index}: only a "
                    f"GhoVariableDebtToken discounts it (v3.0.1-v3.3; the deployment data names "
                    f"{sorted(state.discount_debt_tokens)}), not {reserve.variable_debt_token} under "
                    f"v{state.rules.version} rules")
    if reserve.variable_debt_token.lower() in state.discount_debt_tokens and state.rules.gho_discount:
        before = state.discount_percent_before.pop(address, None)
        # the percent _accrueDebtOnAction applied: the one the DiscountPercentUpdated of this
        # action (logged before its Mint/Burn) replaced, else the user's
        percent = before[1] if before is not None and before[0] == e.ref.tx_hash else ur.discount_percent
        expected = percent_mul_half_up(raw, percent) if raw and percent else 0
        if percent is not None and raw - increase != expected:
            raise _fail(e, f"balance increase {increase} of {address}: the {raw} accrued on its rebuilt "
                        f"scaled debt {s} since index {ur.variable_debt_previous_index} less its "
                        f"discount percentMul({raw}, {percent}) is {raw - expected}")
    return ray_div_half_up(raw - increase, index), ray_mul_half_up(s, index) - (raw - increase)


def _is_gho(state: AaveV3State, reserve: ReserveData) -> bool:
    return state.rules.gho_discount and reserve.variable_debt_token.lower() in state.discount_debt_tokens


def _gho_interest(state: AaveV3State, e: ProtocolEvent, reserve: ReserveData, address: str,
                  accrued: int = 0, repaid: int = 0, clear: bool = False) -> None:
    """GHO's ``accumulatedDebtInterest`` of ``address`` (gho-core 51be447): ``_accrueDebtOnAction``
    adds the (discounted) balance increase of each ``Mint``/``Burn``; ``GhoAToken.handleRepayment``
    takes ``min(repaid, accumulated)`` off at a ``Repay`` / ``LiquidationCall`` of GHO; a v3.3
    ``DeficitCreated`` of GHO leaves none (``_burnDebtTokens`` hands the excess over the
    liquidated amount to ``handleRepayment``, then the liquidation repays the rest)."""
    if not _is_gho(state, reserve):
        return
    u = state.user(address)
    ur = u.reserve(reserve.asset)
    acc = 0 if clear else ur.gho_accrued_interest + accrued
    acc -= min(repaid, acc)
    if acc >= 2**128:
        raise _fail(e, f"{address}'s accumulated GHO interest {acc} overflows the token's uint128")
    _put_user(state, address, u.with_reserve(reserve.asset, replace(ur, gho_accrued_interest=acc)))


def _debt_token_upgraded(state: AaveV3State, e: ProtocolEvent) -> None:
    """A variable debt token proxy's ``Upgraded(implementation)``: kept for a GhoVariableDebtToken
    (whether it burns the whole debt at full repayment, :meth:`AaveV3State.gho_burns_whole_debt`);
    Aave's own tokens' rounding follows the pool's rule set."""
    token = e.address.lower()
    if token in state.discount_debt_tokens:
        state.gho_impls[token] = _addr(e, "implementation")


def _discount_percent_updated(state: AaveV3State, e: ProtocolEvent) -> None:
    """GHO's ``GhoVariableDebtToken._refreshDiscountPercent`` (gho-core 51be447): the user's
    stkAAVE discount percent changed from ``old_discount_percent`` (checked against the rebuilt
    one, when known) to ``new_discount_percent``. It is logged before the ``Mint``/``Burn`` of
    the same action, whose discount was taken at the old percent (kept for it in
    ``state.discount_percent_before``)."""
    r = _token_reserve(state, e)
    if r.variable_debt_token.lower() not in state.discount_debt_tokens:
        raise _fail(e, f"{e.address} is not a GhoVariableDebtToken (the deployment data names "
                    f"{sorted(state.discount_debt_tokens)}): it has no discount percent")
    address = _addr(e, "user")
    old, new = _int(e, "old_discount_percent"), _int(e, "new_discount_percent")
    u = state.user(address)
    ur = u.reserve(r.asset)
    if ur.discount_percent is not None and ur.discount_percent != old:
        raise _fail(e, f"{address}'s discount percent was {old}, the rebuilt one is {ur.discount_percent}")
    if not 0 <= new < 2**16:  # stored as uint16 (toUint16 reverts above)
        raise _fail(e, f"discount percent {new} does not fit the token's uint16")
    state.discount_percent_before[address] = (e.ref.tx_hash, old)
    _put_user(state, address, u.with_reserve(r.asset, replace(ur, discount_percent=new)))


def _scaled_mint(state: AaveV3State, e: ProtocolEvent) -> None:
    r = _token_reserve(state, e)
    value, increase, index = _int(e, "value"), _int(e, "balance_increase"), _int(e, "index")
    address = _addr(e, "on_behalf_of")
    if state.rules.directional_rounding:
        delta = _exact_scaled_change(state, e, r, address, value, increase, index)
        _change_scaled(state, e, r, address, delta, index)
        return
    discount = _debt_discount_scaled(state, e, r, address, increase, index)[0] if e.role != "a_token" else 0
    if value > increase:  # _mintScaled
        _change_scaled(state, e, r, address, ray_div_half_up(value - increase, index) - discount, index)
    elif value < increase:  # _burnScaled of less than the accrued interest
        _change_scaled(state, e, r, address, -ray_div_half_up(increase - value, index) - discount, index)
    else:  # interest announced by a transfer (the move is the BalanceTransfer), or a GHO discount
        _change_scaled(state, e, r, address, -discount, index)  # rebalance / distribution update
    if e.role != "a_token":
        _gho_interest(state, e, state.reserves[r.asset], address, accrued=increase)


def _scaled_burn(state: AaveV3State, e: ProtocolEvent) -> None:
    r = _token_reserve(state, e)
    index = _int(e, "index")
    address = _addr(e, "from")
    if state.rules.directional_rounding:
        increase = _int(e, "balance_increase")
        delta = _exact_scaled_change(state, e, r, address, -_int(e, "value"), increase, index)
        _change_scaled(state, e, r, address, delta, index)
        return
    increase = _int(e, "balance_increase")
    amount = _int(e, "value") + increase
    if e.role == "a_token":
        _change_scaled(state, e, r, address, -ray_div_half_up(amount, index), index)
        return
    discount, debt = _debt_discount_scaled(state, e, r, address, increase, index)
    scaled = state.user(address).reserve(r.asset).scaled_variable_debt
    # GHO (gho-core b2db754) burns the whole scaled balance when the amount is the whole
    # (discounted) debt; for Aave's own token rayDiv(rayMul(s, index), index) == s anyway; a
    # GHO token from before b2db754 burns rayDiv(amount) + rayDiv(discount) even then
    whole = amount == debt and (not _is_gho(state, r) or state.gho_burns_whole_debt(r.variable_debt_token))
    delta = -scaled if whole else -ray_div_half_up(amount, index) - discount
    if delta == -scaled and amount != debt:
        # rounding burned the whole scaled debt for less than the debt: v3.0-v3.3 keep the
        # borrowing flag (the Repay / LiquidationCall that follows reads this)
        state.inexact_debt_closures.add((e.ref.tx_hash, address, r.asset))
    if amount == debt and delta != -scaled:
        # the whole debt paid back, scaled dust left (pre-b2db754 GHO): v3.0-v3.3 compare
        # amounts and clear the borrowing flag
        state.gho_dusty_debt_closures.add((e.ref.tx_hash, address, r.asset))
    _change_scaled(state, e, r, address, delta, index)
    _gho_interest(state, e, state.reserves[r.asset], address, accrued=increase)


def _balance_transfer(state: AaveV3State, e: ProtocolEvent) -> None:
    r = _token_reserve(state, e)
    scaled, index = _int(e, "value"), _int(e, "index")
    sender, recipient = _addr(e, "from"), _addr(e, "to")
    _change_scaled(state, e, r, sender, -scaled, index)
    _change_scaled(state, e, state.reserves[r.asset], recipient, scaled, index)


def _stable_set(state: AaveV3State, e: ProtocolEvent, address: str, principal: int, rate: int, stamp: int,
                total: int, avg: int) -> None:
    r = _token_reserve(state, e)
    u = state.user(address)
    ur = u.reserve(r.asset)
    if principal < 0:
        raise _fail(e, f"{address} repays more stable debt than it owes")
    _put_user(state, address, u.with_reserve(r.asset, replace(
        ur, stable_debt_principal=principal, stable_rate=rate, stable_debt_timestamp=stamp)))
    state.reserves[r.asset] = replace(r, stable_debt_total_principal=total, average_stable_rate=avg,
                                      stable_debt_total_supply_timestamp=e.ref.block_timestamp)


def _stable_mint(state: AaveV3State, e: ProtocolEvent) -> None:
    address = _addr(e, "on_behalf_of")
    amount, increase = _int(e, "amount"), _int(e, "balance_increase")
    principal = state.user(address).reserve(_token_reserve(state, e).asset).stable_debt_principal + amount
    avg, supply = _int(e, "avg_stable_rate"), _int(e, "new_total_supply")
    total = supply if amount > increase or avg != 0 else 0  # from burn(): supply 0 when the avg resets
    _stable_set(state, e, address, principal, _int(e, "new_rate"), e.ref.block_timestamp, total, avg)


def _stable_burn(state: AaveV3State, e: ProtocolEvent) -> None:
    address = _addr(e, "from")
    ur = state.user(address).reserve(_token_reserve(state, e).asset)
    principal = ur.stable_debt_principal - _int(e, "amount")
    avg, supply = _int(e, "avg_stable_rate"), _int(e, "new_total_supply")
    repaid_all = principal == 0
    _stable_set(state, e, address, principal, 0 if repaid_all else ur.stable_rate,
                0 if repaid_all else e.ref.block_timestamp, supply if avg != 0 else 0, avg)


_HANDLERS: dict[tuple[str, str], Handler] = {
    ("pool", _POOL["Supply"]): _supply,
    ("pool", _POOL["Withdraw"]): _withdraw,
    ("pool", _POOL["Borrow"]): _borrow,
    ("pool", _POOL["Repay"]): _repay,
    ("pool", _POOL["LiquidationCall"]): _liquidation_call,
    ("pool", _POOL["ReserveDataUpdated"]): _reserve_data_updated,
    ("pool", _POOL["ReserveUsedAsCollateralEnabled"]): _collateral_enabled,
    ("pool", _POOL["ReserveUsedAsCollateralDisabled"]): _collateral_disabled,
    ("pool", _POOL["UserEModeSet"]): _user_emode_set,
    ("pool", _POOL["IsolationModeTotalDebtUpdated"]): _isolation_debt,
    ("pool", _POOL["MintedToTreasury"]): _minted_to_treasury,
    ("pool", _POOL["SwapBorrowRateMode"]): _no_state,
    ("pool", _POOL["RebalanceStableBorrowRate"]): _no_state,
    ("pool", _POOL["FlashLoan"]): _flash_loan,
    ("pool", _POOL["MintUnbacked"]): _mint_unbacked,
    ("pool", _POOL["BackUnbacked"]): _back_unbacked,
    ("pool", _POOL["DeficitCreated"]): _deficit_created,
    ("pool", _POOL["DeficitCovered"]): _deficit_covered,
    ("pool", _POOL["Upgraded"]): _upgraded,
    ("pool_configurator", _CONFIGURATOR["ReserveInitialized"]): _reserve_initialized,
    ("pool_configurator", _CONFIGURATOR["CollateralConfigurationChanged"]): _collateral_configuration,
    ("pool_configurator", _CONFIGURATOR["PendingLtvChanged"]): _no_state,
    ("pool_configurator", _CONFIGURATOR["ReserveBorrowing"]): _config_setter("borrowing_enabled", "enabled",
                                                                              "bool"),
    ("pool_configurator", _CONFIGURATOR["ReserveFlashLoaning"]): _config_setter(
        "flash_loan_enabled", "enabled", "bool"),
    ("pool_configurator", _CONFIGURATOR["ReserveStableRateBorrowing"]): _config_setter(
        "stable_borrowing_enabled", "enabled", "bool"),
    ("pool_configurator", _CONFIGURATOR["ReserveActive"]): _config_setter("active", "active", "bool"),
    ("pool_configurator", _CONFIGURATOR["ReserveFrozen"]): _config_setter("frozen", "frozen", "bool"),
    ("pool_configurator", _CONFIGURATOR["ReservePaused"]): _config_setter("paused", "paused", "bool"),
    ("pool_configurator", _CONFIGURATOR["ReserveDropped"]): _reserve_dropped,
    ("pool_configurator", _CONFIGURATOR["ReserveFactorChanged"]): _config_setter("reserve_factor",
                                                                                 "new_reserve_factor"),
    ("pool_configurator", _CONFIGURATOR["BorrowCapChanged"]): _config_setter("borrow_cap", "new_borrow_cap"),
    ("pool_configurator", _CONFIGURATOR["SupplyCapChanged"]): _config_setter("supply_cap", "new_supply_cap"),
    ("pool_configurator", _CONFIGURATOR["LiquidationProtocolFeeChanged"]): _config_setter(
        "liquidation_protocol_fee", "new_fee"),
    ("pool_configurator", _CONFIGURATOR["LiquidationGracePeriodChanged"]): _grace_period,
    ("pool_configurator", _CONFIGURATOR["LiquidationGracePeriodDisabled"]): _grace_period,
    ("pool_configurator", _CONFIGURATOR["UnbackedMintCapChanged"]): _config_setter("unbacked_mint_cap",
                                                                                   "new_unbacked_mint_cap"),
    ("pool_configurator", _CONFIGURATOR["EModeAssetCategoryChanged"]): _config_setter("emode_category",
                                                                                      "new_category_id"),
    ("pool_configurator", _CONFIGURATOR["EModeCategoryAdded"]): _emode_category_added,
    ("pool_configurator", _CONFIGURATOR["AssetCollateralInEModeChanged"]): _emode_bitmap("collateral_bitmap",
                                                                                         "collateral"),
    ("pool_configurator", _CONFIGURATOR["AssetBorrowableInEModeChanged"]): _emode_bitmap("borrowable_bitmap",
                                                                                         "borrowable"),
    ("pool_configurator", _CONFIGURATOR["DebtCeilingChanged"]): _config_setter("debt_ceiling",
                                                                                "new_debt_ceiling"),
    ("pool_configurator", _CONFIGURATOR["SiloedBorrowingChanged"]): _config_setter(
        "siloed_borrowing", "new_state", "bool"),
    ("pool_configurator", _CONFIGURATOR["BorrowableInIsolationChanged"]): _config_setter(
        "borrowable_in_isolation", "borrowable", "bool"),
    ("pool_configurator", _CONFIGURATOR["ReserveInterestRateStrategyChanged"]): _strategy_changed,
    ("pool_configurator", _CONFIGURATOR["ATokenUpgraded"]): _no_state,
    ("pool_configurator", _CONFIGURATOR["StableDebtTokenUpgraded"]): _no_state,
    ("pool_configurator", _CONFIGURATOR["VariableDebtTokenUpgraded"]): _no_state,
    ("a_token", _SCALED_MINT): _scaled_mint,
    ("a_token", _SCALED_BURN): _scaled_burn,
    ("a_token", _BALANCE_TRANSFER): _balance_transfer,
    ("a_token", _A_TOKEN_INITIALIZED): _a_token_initialized,
    ("variable_debt_token", _SCALED_MINT): _scaled_mint,
    ("variable_debt_token", _SCALED_BURN): _scaled_burn,
    ("variable_debt_token", _DISCOUNT_PERCENT_UPDATED): _discount_percent_updated,
    ("variable_debt_token", _POOL["Upgraded"]): _debt_token_upgraded,
    ("stable_debt_token", _STABLE_MINT): _stable_mint,
    ("stable_debt_token", _STABLE_BURN): _stable_burn,
}
assert {(s.role, s.signature) for s in EVENTS} == set(_HANDLERS)
