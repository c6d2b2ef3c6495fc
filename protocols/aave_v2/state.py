"""Aave v2 market state: reserves and users, as the LendingPool and its tokens store them.

Source: aave/protocol-v2 @ 9169e0d (npm @aave/protocol-v2 1.0.1)
``contracts/protocol/libraries/types/DataTypes.sol`` (``ReserveData``, ``UserConfigurationMap``),
``lendingpool/LendingPoolStorage.sol`` (``_reserves``, ``_usersConfig``, ``_reservesList``,
``_reservesCount``, ``_paused``), the token storage of ``tokenization/AToken.sol``,
``VariableDebtToken.sol`` and ``StableDebtToken.sol``, and the constructor parameters of
``DefaultReserveInterestRateStrategy.sol``.

Records are frozen; :class:`AaveV2State` is the one mutable container, changed by the adapter's
``apply``/``commit`` only. A record is replaced, never edited, so a simulated liquidation can
tell whether what it read is still current (see :class:`Effects`).

Units: indices and rates in RAY (rates per year), balances in token base units, *scaled*
balances in base units divided by the index (what aTokens and variable debt tokens store),
stable debt as its principal with the user's rate and last-update timestamp, timestamps in unix
seconds. Unlike v3, v2 tokens keep no per-user "previous index".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..base import ZERO_ADDRESS
from ..domain import EmittedEvent
from ..errors import MissingPrice, StaleOutcome
from ..fixed_point import RAY
from .configuration import ReserveConfiguration

__all__ = [
    "InterestRateStrategy",
    "ReserveData",
    "UserReserve",
    "UserState",
    "EMPTY_USER",
    "EMPTY_USER_RESERVE",
    "AaveV2State",
    "TxContext",
    "Effects",
]


@dataclass(frozen=True, slots=True)
class InterestRateStrategy:
    """v2 ``DefaultReserveInterestRateStrategy`` constructor parameters, RAY. The base of the
    stable rate is not here: it is the LendingRateOracle's ``getMarketBorrowRate(asset)``
    (:attr:`ReserveData.market_borrow_rate`)."""

    optimal_utilization_rate: int
    base_variable_borrow_rate: int
    variable_rate_slope1: int
    variable_rate_slope2: int
    stable_rate_slope1: int
    stable_rate_slope2: int

    @property
    def excess_utilization_rate(self) -> int:
        return RAY - self.optimal_utilization_rate


@dataclass(frozen=True, slots=True)
class ReserveData:
    """``DataTypes.ReserveData`` of v2 plus the token-level totals the logic reads.

    * ``variable_debt_scaled_total_supply``: ``VariableDebtToken.scaledTotalSupply()``;
    * ``stable_debt_total_principal`` / ``average_stable_rate`` /
      ``stable_debt_total_supply_timestamp``: ``StableDebtToken.getSupplyData()`` parts;
    * ``a_token_underlying_balance``: the underlying held by the aToken (rates and the
      liquidity check of a liquidation use it); None when unknown (no liquidity check, rates
      kept);
    * ``interest_rate_strategy`` and ``market_borrow_rate`` (LendingRateOracle): None when
      unknown; without both a simulated action keeps the reserve's current rates;
    * ``treasury``: the aToken's ``RESERVE_TREASURY_ADDRESS`` (v2 mints the reserve factor's
      share to it at every ``updateState``); no event carries it, set it when known."""

    asset: str
    id: int
    configuration: ReserveConfiguration
    liquidity_index: int = RAY
    current_liquidity_rate: int = 0
    variable_borrow_index: int = RAY
    current_variable_borrow_rate: int = 0
    current_stable_borrow_rate: int = 0
    last_update_timestamp: int = 0
    a_token: str = ZERO_ADDRESS
    stable_debt_token: str = ZERO_ADDRESS
    variable_debt_token: str = ZERO_ADDRESS
    interest_rate_strategy_address: str = ZERO_ADDRESS
    treasury: str = ZERO_ADDRESS
    variable_debt_scaled_total_supply: int = 0
    stable_debt_total_principal: int = 0
    average_stable_rate: int = 0
    stable_debt_total_supply_timestamp: int = 0
    a_token_underlying_balance: int | None = None
    interest_rate_strategy: InterestRateStrategy | None = None
    market_borrow_rate: int | None = None

    @property
    def unit(self) -> int:
        return int(10**self.configuration.decimals)


@dataclass(frozen=True, slots=True)
class UserReserve:
    """One user's token balances in one reserve: scaled aToken and variable debt balances,
    and the stable debt principal with its rate and timestamp."""

    scaled_a_token_balance: int = 0
    scaled_variable_debt: int = 0
    stable_debt_principal: int = 0
    stable_rate: int = 0
    stable_debt_timestamp: int = 0

    @property
    def empty(self) -> bool:
        return not (
            self.scaled_a_token_balance
            or self.scaled_variable_debt
            or self.stable_debt_principal
            or self.stable_rate
            or self.stable_debt_timestamp
        )


EMPTY_USER_RESERVE = UserReserve()


@dataclass(frozen=True, slots=True)
class UserState:
    """``LendingPool._usersConfig[user]`` (the bitmap) and the user's balances by asset (empty
    balances may be absent)."""

    configuration: int = 0
    reserves: Mapping[str, UserReserve] = field(default_factory=dict)

    def reserve(self, asset: str) -> UserReserve:
        return self.reserves.get(asset, EMPTY_USER_RESERVE)

    def with_reserve(self, asset: str, ur: UserReserve) -> UserState:
        reserves = dict(self.reserves)
        if ur.empty:
            reserves.pop(asset, None)
        else:
            reserves[asset] = ur
        return UserState(self.configuration, reserves)

    def with_configuration(self, configuration: int) -> UserState:
        return UserState(configuration, self.reserves)


EMPTY_USER = UserState()


@dataclass
class AaveV2State:
    """One Aave v2 LendingPool (at address ``pool``): reserves by asset and by id, users, and
    whether the pool is paused."""

    pool: str = ZERO_ADDRESS
    paused: bool = False
    reserves: dict[str, ReserveData] = field(default_factory=dict)
    reserves_list: dict[int, str] = field(default_factory=dict)
    reserves_count: int = 0
    users: dict[str, UserState] = field(default_factory=dict)
    #: token address -> (asset, role) for the aToken / debt tokens of every reserve
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: decimals of assets not yet listed: v2's ``ReserveInitialized`` does not carry them
    asset_decimals: dict[str, int] = field(default_factory=dict)
    #: the aTokens' ``RESERVE_TREASURY_ADDRESS`` per asset (an immutable: in no event either); a
    #: simulated ``updateState`` that must mint a reserve factor share to an unknown one raises
    #: :class:`~protocols.errors.MissingParameter`
    asset_treasuries: dict[str, str] = field(default_factory=dict)
    #: (tx hash, log index, asset, amount) of the last ``Borrow`` applied: a ``FlashLoan`` that
    #: opened debt is the log right after its ``Borrow`` (``_executeBorrow`` emits it last) and
    #: kept no premium; a repaid one (mode 0) emits ``ReserveDataUpdated`` first
    last_borrow: tuple[str, int, str, int] | None = None
    #: (asset, kind) -> (reserve record, timestamp, normalized index), see ``reserve_logic``
    index_cache: dict[tuple[str, int], tuple[ReserveData, int, int]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def add_reserve(self, reserve: ReserveData) -> None:
        """List a reserve (``LendingPool._addReserveToList``) under its ``id``."""
        self.reserves[reserve.asset] = reserve
        self.reserves_list[reserve.id] = reserve.asset
        self.reserves_count = max(self.reserves_count, reserve.id + 1)
        for address, role in (
            (reserve.a_token, "a_token"),
            (reserve.variable_debt_token, "variable_debt_token"),
            (reserve.stable_debt_token, "stable_debt_token"),
        ):
            if address != ZERO_ADDRESS:
                self.tokens[address] = (reserve.asset, role)

    def user(self, address: str) -> UserState:
        return self.users.get(address, EMPTY_USER)

    def put_user(self, address: str, user: UserState) -> None:
        if user.configuration == 0 and not user.reserves:
            self.users.pop(address, None)
        else:
            self.users[address] = user


@dataclass(frozen=True, slots=True)
class Effects:
    """The writes of one simulated transaction: ``(key, value read before, value written)``."""

    reserves: tuple[tuple[str, ReserveData | None, ReserveData], ...]
    users: tuple[tuple[str, UserState | None, UserState], ...]

    def apply_to(self, state: AaveV2State) -> None:
        for asset, before, _ in self.reserves:
            if state.reserves.get(asset) is not before:
                raise StaleOutcome(f"reserve {asset} changed since the liquidation was computed")
        for user, ubefore, _ in self.users:
            if state.users.get(user) is not ubefore:
                raise StaleOutcome(f"user {user} changed since the liquidation was computed")
        for asset, _, after in self.reserves:
            state.reserves[asset] = after
        for user, _, uafter in self.users:
            state.put_user(user, uafter)


class TxContext:
    """One simulated transaction: reads through to the state, buffers its writes, collects the
    events it emits, knows the block timestamp and the oracle's prices."""

    __slots__ = ("state", "timestamp", "prices", "_reserves", "_users", "events")

    def __init__(self, state: AaveV2State, timestamp: int, prices: Mapping[str, int]):
        self.state = state
        self.timestamp = timestamp
        self.prices = prices
        self._reserves: dict[str, tuple[ReserveData | None, ReserveData]] = {}
        self._users: dict[str, tuple[UserState | None, UserState]] = {}
        self.events: list[EmittedEvent] = []

    def reserve(self, asset: str) -> ReserveData | None:
        hit = self._reserves.get(asset)
        return hit[1] if hit is not None else self.state.reserves.get(asset)

    def put_reserve(self, reserve: ReserveData) -> None:
        hit = self._reserves.get(reserve.asset)
        before = hit[0] if hit is not None else self.state.reserves.get(reserve.asset)
        self._reserves[reserve.asset] = (before, reserve)

    def user(self, address: str) -> UserState:
        hit = self._users.get(address)
        return hit[1] if hit is not None else self.state.users.get(address, EMPTY_USER)

    def put_user(self, address: str, user: UserState) -> None:
        hit = self._users.get(address)
        before = hit[0] if hit is not None else self.state.users.get(address)
        self._users[address] = (before, user)

    def price(self, asset: str) -> int:
        """``AaveOracle.getAssetPrice(asset)`` in ETH wei per whole token; a missing or
        non-positive answer raises (the oracle would go to its fallback oracle)."""
        p = self.prices.get(asset)
        if p is None or p <= 0:
            raise MissingPrice(f"no positive price for {asset}")
        return p

    def emit(self, name: str, role: str, address: str, **args: object) -> None:
        self.events.append(EmittedEvent(name, MappingProxyType(args), role, address))

    def effects(self) -> Effects:
        return Effects(
            tuple((a, b, r) for a, (b, r) in self._reserves.items()),
            tuple((u, b, s) for u, (b, s) in self._users.items()),
        )
