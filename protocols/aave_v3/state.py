"""Aave v3 market state: reserves, e-mode categories and users, as the Pool and its tokens store them.

Source: aave/aave-v3-core @ 724a9ef (v3.0.2) ``contracts/protocol/libraries/types/DataTypes.sol``
(``ReserveData``, ``EModeCategory``, ``UserConfigurationMap``) and the token storage of
``tokenization/base/ScaledBalanceTokenBase.sol`` / ``StableDebtToken.sol``; v3.1/v3.2 fields from
aave-dao/aave-v3-origin v3.1.0 (e627c74) / v3.2.0 (7c6023e) ``DataTypes.sol``.

Records are frozen; :class:`AaveV3State` is the one mutable container, changed by the adapter's
``apply``/``commit`` only. A record is replaced, never edited, so a liquidation computed on the
state can tell whether what it read is still current (see :class:`TxContext`).

Units: indices and rates in RAY (rates per year), balances in token base units, *scaled*
balances in base units divided by the index (what the tokens store), timestamps in unix seconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TypeVar, cast

from ..base import ZERO_ADDRESS
from ..domain import EmittedEvent
from ..errors import MissingPrice, ProtocolError, StaleOutcome
from ..fixed_point import RAY
from .configuration import ReserveConfiguration

_R = TypeVar("_R")

__all__ = [
    "evolver",
    "RuleSet",
    "V3_0",
    "V3_1",
    "V3_2",
    "V3_3",
    "V3_4",
    "V3_5",
    "RULE_SETS",
    "InterestRateStrategy",
    "ReserveData",
    "EModeCategory",
    "UserReserve",
    "UserState",
    "EMPTY_USER",
    "EMPTY_USER_RESERVE",
    "AaveV3State",
    "TxContext",
    "Effects",
]


def evolver(cls: type[_R], *names: str) -> Callable[..., _R]:
    """A fast ``dataclasses.replace`` of fixed fields: ``evolver(C, "a", "b")(obj, x, y)`` is
    ``replace(obj, a=x, b=y)`` (a new frozen record; ``__post_init__`` is not run, none of the
    records here has one). It calls the constructor positionally, reading the other fields
    straight from ``obj``: 2-3x faster than ``replace``, which builds and checks a keyword dict
    on every call (the event rebuild replaces a reserve or a balance record for most logs)."""
    fields = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = [n for n in names if n not in fields]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"evolver({cls.__name__}): bad field names {names}")
    params = [f"v{i}" for i in range(len(names))]
    args = ", ".join(params[names.index(f)] if f in names else f"o.{f}" for f in fields)
    ns: dict[str, object] = {"_cls": cls}
    exec(f"def evolve(o, {', '.join(params)}):\n    return _cls({args})\n", ns)  # noqa: S102 - field names only
    fn = cast(Callable[..., _R], ns["evolve"])
    fn.__qualname__ = fn.__name__ = f"evolve_{cls.__name__}_{'_'.join(names)}"
    return fn


class GhoDiscountUnknown(ProtocolError):
    """A simulated action reads a GHO debt whose value depends on the borrower's stkAAVE
    discount percent (``GhoVariableDebtToken.balanceOf``, v3.0.1-v3.3) while that percent is
    unknown (``UserReserve.discount_percent`` None: set by an earlier simulated burn from the
    user's stkAAVE balance, which is not rebuilt); the message names the user, the reserve, the
    indices and the rule set."""


@dataclass(frozen=True, slots=True)
class RuleSet:
    """What differs between the v3 releases this adapter covers.

    * ``automatic_collateral_checks`` (v3.0.2+, aave-v3-core 1.18.0 #820): an aToken received
      without a balance (a liquidator's with ``receiveAToken``) is enabled as collateral only
      through ``validateAutomaticUseAsCollateral`` (an isolated asset needs
      ISOLATED_COLLATERAL_SUPPLIER_ROLE) and ``validateUseAsCollateral`` refuses LTV 0; v3.0.1
      (1.17.x, Ethereum's rules from its launch) enables it by ``validateUseAsCollateral``
      without the LTV check. The only liquidation-path difference between 3.0.1 and 3.0.2
      (``git diff -w v1.17.2 v1.18.0 -- contracts/``: the rest is formatting, docs, the zero
      rate strategy and L2 calldata);
    * ``gho_discount`` (v3.0–v3.3): a variable debt token may be gho-core's
      ``GhoVariableDebtToken``, whose ``balanceOf`` takes the borrower's stkAAVE discount percent
      off the interest accrued since its last action (and whose v3.3 reserve, without virtual
      accounting, has the pool's GHO special cases); v3.4 replaced it by the plain
      ``VariableDebtTokenMainnetInstanceGHO`` (aave-v3-origin: "deprecated discount hook ...
      not used since v3.4");
    * ``emode_price_source``: an e-mode category may carry its own oracle (v3.0–v3.1);
    * ``emode_bitmaps``: e-mode membership is the category's collateral bitmap (v3.2+), not the
      reserve's single ``emode_category``;
    * ``stable_debt``: stable-rate debt exists and counts (v3.0–v3.1);
    * ``liquidation_grace_period``: per-reserve ``liquidationGracePeriodUntil`` gate (v3.1+);
    * ``deficit_accounting`` (v3.3+): whole-reserve-debt close factor unless both positions are
      worth at least $2,000 and HF > 0.95, the $1,000 dust rule, and a user left without
      collateral has every debt burned into its reserve's ``deficit`` (``DeficitCreated``);
    * ``custom_errors`` (v3.4+): reverts are Solidity custom errors (``MustNotLeaveDust()``)
      instead of the numeric ``Errors.sol`` strings (``'103'``);
    * ``forbid_self_liquidation`` (v3.4+): ``SelfLiquidation()`` when liquidator == user;
    * ``borrow_flag_from_balance`` (v3.4+): the borrowing flag is cleared when the burn leaves a
      zero *scaled* balance, not when the repaid amount equals the debt;
    * ``compounding_v34`` (v3.4+): ``MathUtils.calculateCompoundedInterest`` is
      ``RAY + x + rayMul(x, x/2 + rayMul(x, x/6))`` with ``x = rate*dt/YEAR`` (the variable
      borrow index and every debt balance accrued between updates);
    * ``directional_rounding`` (v3.5+): ``TokenMath`` rounding (aToken balance floor, debt
      ceil, burns/transfers in the protocol's favour), debt values rounded up, the HF without
      the intermediate average-LT rounding, ``percentDivCeil`` for the debt a capped
      collateral covers, the collateral reserve updated at the start of a liquidation."""

    version: str
    emode_price_source: bool
    emode_bitmaps: bool
    stable_debt: bool
    liquidation_grace_period: bool
    deficit_accounting: bool = False
    custom_errors: bool = False
    forbid_self_liquidation: bool = False
    borrow_flag_from_balance: bool = False
    compounding_v34: bool = False
    directional_rounding: bool = False
    automatic_collateral_checks: bool = True
    gho_discount: bool = True


#: v3.0.2 (aave-v3-core 1.18.0 .. 1.19.x)
V3_0 = RuleSet("3.0", emode_price_source=True, emode_bitmaps=False, stable_debt=True,
               liquidation_grace_period=False)
#: v3.0.1 (aave-v3-core 1.17.x): v3.0.2 without the automatic-collateral checks. v3.0.0
#: (1.16.x) is not modelled: its ``BalanceTransfer`` carries the nominal amount, transfers
#: announce no interest ``Mint``, and a liquidation leaves the collateral flag on when the
#: protocol fee takes the last of it
V3_0_1 = replace(V3_0, version="3.0.1", automatic_collateral_checks=False)
V3_1 = RuleSet("3.1", emode_price_source=True, emode_bitmaps=False, stable_debt=True,
               liquidation_grace_period=True)
V3_2 = RuleSet("3.2", emode_price_source=False, emode_bitmaps=True, stable_debt=False,
               liquidation_grace_period=True)
#: aave-dao/aave-v3-origin v3.3.0 (5431379)
V3_3 = replace(V3_2, version="3.3", deficit_accounting=True)
#: v3.4.0 (d7a6412): v3.3's liquidation rules with custom errors, no self-liquidation, the
#: balance-based borrowing flag and the new compounding formula; vGHO a plain token (no
#: discount: ``gho_discount`` off) and no GHO special case in the pool
V3_4 = replace(V3_3, version="3.4", custom_errors=True, forbid_self_liquidation=True,
               borrow_flag_from_balance=True, compounding_v34=True, gho_discount=False)
#: v3.5.0 (6138e1f): v3.4 with the ``TokenMath`` rounding changes
V3_5 = replace(V3_4, version="3.5", directional_rounding=True)
RULE_SETS: Mapping[str, RuleSet] = MappingProxyType(
    {r.version: r for r in (V3_0_1, V3_0, V3_1, V3_2, V3_3, V3_4, V3_5)})


@dataclass(frozen=True, slots=True)
class InterestRateStrategy:
    """``DefaultReserveInterestRateStrategy`` (v3.0) parameters, all RAY."""

    optimal_usage_ratio: int
    base_variable_borrow_rate: int
    variable_rate_slope1: int
    variable_rate_slope2: int
    stable_rate_slope1: int
    stable_rate_slope2: int
    base_stable_rate_offset: int
    stable_rate_excess_offset: int
    optimal_stable_to_total_debt_ratio: int


@dataclass(frozen=True, slots=True)
class ReserveData:
    """``DataTypes.ReserveData`` plus the token-level totals the logic reads.

    * ``accrued_to_treasury``: scaled (divide-by-liquidity-index) amount owed to the treasury;
    * ``isolation_mode_total_debt``: in base currency with 2 decimals;
    * ``variable_debt_scaled_total_supply``: ``VariableDebtToken.scaledTotalSupply()``;
    * ``stable_debt_total_principal`` / ``average_stable_rate`` /
      ``stable_debt_total_supply_timestamp``: ``StableDebtToken.getSupplyData()`` parts;
    * ``a_token_underlying_balance``: the underlying held by the aToken (v3.0 rates use it;
      v3.1+ ``virtualUnderlyingBalance``); None when unknown;
    * ``interest_rate_strategy``: None when unknown. Without both, a simulated action keeps
      the reserve's current rates;
    * ``treasury``: the aToken's ``RESERVE_TREASURY_ADDRESS`` (receives the liquidation fee);
    * ``deficit``: v3.3+ ``ReserveData.deficit``, debt burned from users left without
      collateral and not yet covered (``eliminateReserveDeficit``), in base units."""

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
    accrued_to_treasury: int = 0
    unbacked: int = 0
    isolation_mode_total_debt: int = 0
    liquidation_grace_period_until: int = 0
    treasury: str = ZERO_ADDRESS
    variable_debt_scaled_total_supply: int = 0
    stable_debt_total_principal: int = 0
    average_stable_rate: int = 0
    stable_debt_total_supply_timestamp: int = 0
    a_token_underlying_balance: int | None = None
    interest_rate_strategy: InterestRateStrategy | None = None
    deficit: int = 0

    @property
    def unit(self) -> int:
        return int(10 ** self.configuration.decimals)


@dataclass(frozen=True, slots=True)
class EModeCategory:
    """``DataTypes.EModeCategory``: bps parameters; ``price_source`` (v3.0–v3.1, zero address =
    none); ``collateral_bitmap``/``borrowable_bitmap`` (v3.2, bit ``i`` = reserve id ``i``)."""

    ltv: int
    liquidation_threshold: int
    liquidation_bonus: int
    price_source: str = ZERO_ADDRESS
    label: str = ""
    collateral_bitmap: int = 0
    borrowable_bitmap: int = 0


@dataclass(frozen=True, slots=True)
class UserReserve:
    """One user's token balances in one reserve, as stored by the tokens: scaled aToken and
    variable debt balances with the index of the user's last interaction
    (``getPreviousIndex``), and the stable debt principal with its rate and timestamp."""

    scaled_a_token_balance: int = 0
    a_token_previous_index: int = 0
    scaled_variable_debt: int = 0
    variable_debt_previous_index: int = 0
    stable_debt_principal: int = 0
    stable_rate: int = 0
    stable_debt_timestamp: int = 0
    #: GHO's ``GhoVariableDebtToken`` only (``_ghoUserState[user].discountPercent``, bps): the
    #: stkAAVE discount its ``balanceOf`` takes off the interest accrued since the user's last
    #: action, set by ``DiscountPercentUpdated``; None when unknown (a simulated burn refreshes
    #: it from the user's stkAAVE balance, which is not rebuilt). 0 for any other token
    discount_percent: int | None = 0
    #: GHO's ``GhoVariableDebtToken`` only (``_ghoUserState[user].accumulatedDebtInterest``,
    #: ``getBalanceFromInterest``): the discounted interest accrued on each action, less what
    #: ``GhoAToken.handleRepayment`` took of it; v3.3 takes it off a GHO deficit
    gho_accrued_interest: int = 0

    @property
    def empty(self) -> bool:
        # a discount percent without debt is kept (the token keeps it; its next action reads
        # it); an unknown one without debt is not: balanceOf is 0 whatever it is, and the
        # deployed GhoDiscountRateStrategy gives 0 to a debt below 1 GHO
        return not (self.scaled_a_token_balance or self.scaled_variable_debt or self.stable_debt_principal
                    or self.discount_percent or self.gho_accrued_interest)


EMPTY_USER_RESERVE = UserReserve()


@dataclass(frozen=True, slots=True)
class UserState:
    """``Pool._usersConfig[user]`` (the bitmap), ``_usersEModeCategory[user]`` and the user's
    balances by asset (empty balances may be absent)."""

    configuration: int = 0
    emode_category: int = 0
    reserves: Mapping[str, UserReserve] = field(default_factory=dict)

    def reserve(self, asset: str) -> UserReserve:
        return self.reserves.get(asset, EMPTY_USER_RESERVE)

    def with_reserve(self, asset: str, ur: UserReserve) -> UserState:
        reserves = dict(self.reserves)
        if ur.empty:  # the stored previous index and stable rate no longer matter
            reserves.pop(asset, None)
        else:
            reserves[asset] = ur
        return UserState(self.configuration, self.emode_category, reserves)


EMPTY_USER = UserState()


@dataclass
class AaveV3State:
    """One Aave v3 Pool (at address ``pool``): the rule set in force, reserves by asset and by
    id, e-mode categories, users, and the two access-control facts liquidation reads (the L2
    price-oracle sentinel's answer, None when the market has no sentinel; holders of
    ISOLATED_COLLATERAL_SUPPLIER_ROLE)."""

    rules: RuleSet = V3_0
    pool: str = ZERO_ADDRESS
    reserves: dict[str, ReserveData] = field(default_factory=dict)
    reserves_list: dict[int, str] = field(default_factory=dict)
    reserves_count: int = 0
    emode_categories: dict[int, EModeCategory] = field(default_factory=dict)
    users: dict[str, UserState] = field(default_factory=dict)
    price_oracle_sentinel_allows_liquidation: bool | None = None
    #: pool implementation address (lower case) -> the rule set it runs; a pool ``Upgraded``
    #: event switches :attr:`rules` through it (see :mod:`.rule_schedule`)
    implementations: Mapping[str, RuleSet] = field(default_factory=dict)
    isolated_collateral_suppliers: frozenset[str] = frozenset()
    #: token address -> (asset, role) for the aToken / debt tokens of every reserve
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: decimals of assets not yet listed, for rebuilding ``ReserveInitialized`` from events
    asset_decimals: dict[str, int] = field(default_factory=dict)
    #: asset -> (decimals, treasury) from an aToken ``Initialized`` awaiting its ``ReserveInitialized``
    pending_a_token_init: dict[str, tuple[int, str]] = field(default_factory=dict)
    #: (asset, kind) -> (reserve record, timestamp, normalized index): indices accrued to a
    #: timestamp, reused while the reserve record is the same object (see ``reserve_logic``)
    index_cache: dict[tuple[str, int], tuple[ReserveData, int, int]] = field(
        default_factory=dict, repr=False, compare=False)
    #: variable debt tokens (lower case) known to be gho-core ``GhoVariableDebtToken``s (stkAAVE
    #: discount), from the deployment data: only their events may announce discounted interest
    discount_debt_tokens: set[str] = field(default_factory=set)
    #: (tx hash, user, asset) of a variable debt ``Burn`` that left no scaled debt although the
    #: amount was less than the debt (``rayDiv`` rounding): under v3.0-v3.3 the ``Repay`` /
    #: ``LiquidationCall`` of that transaction keeps the borrowing flag (see ``events``)
    inexact_debt_closures: set[tuple[str, str, str]] = field(default_factory=set, repr=False, compare=False)
    #: implementations (lower case) of GhoVariableDebtTokens from before gho-core b2db754 (no
    #: whole-balance burn at full repayment), from the deployment data
    gho_impls_without_full_repayment: frozenset[str] = frozenset()
    #: GhoVariableDebtToken -> its implementation, from the token proxy's ``Upgraded`` (unknown:
    #: a token with b2db754's full repayment, as every one since September 2023)
    gho_impls: dict[str, str] = field(default_factory=dict)
    #: (tx hash, user, asset) of a pre-b2db754 GHO ``Burn`` of the whole debt that left scaled
    #: dust: the pool (v3.0-v3.3) compares amounts and clears the borrowing flag anyway
    gho_dusty_debt_closures: set[tuple[str, str, str]] = field(default_factory=set, repr=False,
                                                                compare=False)
    #: user -> (tx hash, old percent) of a GHO ``DiscountPercentUpdated`` whose ``Mint``/``Burn``
    #: (which follows it in the same transaction, its discount taken at the old percent) is not
    #: applied yet (see ``events``)
    discount_percent_before: dict[str, tuple[str, int]] = field(default_factory=dict, repr=False,
                                                                compare=False)

    def gho_burns_whole_debt(self, token: str) -> bool:
        """Whether GhoVariableDebtToken ``token`` burns the whole scaled balance when the amount is
        its ``balanceOf`` (gho-core b2db754 on), not ``rayDiv(amount) + rayDiv(discount)``."""
        impl = self.gho_impls.get(token.lower())
        return impl is None or impl not in self.gho_impls_without_full_repayment

    def add_reserve(self, reserve: ReserveData) -> None:
        """List a reserve (as ``PoolConfigurator.initReserves`` does) under its ``id``."""
        self.reserves[reserve.asset] = reserve
        self.reserves_list[reserve.id] = reserve.asset
        self.reserves_count = max(self.reserves_count, reserve.id + 1)
        self._index_tokens(reserve)

    def _index_tokens(self, r: ReserveData) -> None:
        for address, role in ((r.a_token, "a_token"), (r.variable_debt_token, "variable_debt_token"),
                              (r.stable_debt_token, "stable_debt_token")):
            if address != ZERO_ADDRESS:
                self.tokens[address] = (r.asset, role)

    def user(self, address: str) -> UserState:
        return self.users.get(address, EMPTY_USER)


@dataclass(frozen=True, slots=True)
class Effects:
    """The writes of one simulated transaction: ``(key, value read before, value written)``."""

    reserves: tuple[tuple[str, ReserveData | None, ReserveData], ...]
    users: tuple[tuple[str, UserState | None, UserState], ...]

    def apply_to(self, state: AaveV3State) -> None:
        for asset, before, _ in self.reserves:
            if state.reserves.get(asset) is not before:
                raise StaleOutcome(f"reserve {asset} changed since the liquidation was computed")
        for user, ubefore, _ in self.users:
            if state.users.get(user) is not ubefore:
                raise StaleOutcome(f"user {user} changed since the liquidation was computed")
        for asset, _, after in self.reserves:
            state.reserves[asset] = after
        for user, _, uafter in self.users:
            if uafter.configuration == 0 and not uafter.reserves and uafter.emode_category == 0:
                state.users.pop(user, None)
            else:
                state.users[user] = uafter


class TxContext:
    """One simulated transaction: reads through to the state, buffers its writes (like storage
    within a transaction), collects the events it emits, and knows the block timestamp and
    the oracle's prices."""

    __slots__ = ("state", "timestamp", "prices", "_reserves", "_users", "events")

    def __init__(self, state: AaveV3State, timestamp: int, prices: Mapping[str, int]):
        self.state = state
        self.timestamp = timestamp
        self.prices = prices
        self._reserves: dict[str, tuple[ReserveData | None, ReserveData]] = {}
        self._users: dict[str, tuple[UserState | None, UserState]] = {}
        self.events: list[EmittedEvent] = []

    @property
    def rules(self) -> RuleSet:
        return self.state.rules

    def has_writes(self) -> bool:
        """Whether the transaction wrote a reserve yet (reads then go through its buffer)."""
        return bool(self._reserves)

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

    def price(self, source: str) -> int:
        """``AaveOracle.getAssetPrice(source)``; a missing or non-positive answer raises (the
        oracle would fall back to a fallback oracle the adapter does not model)."""
        p = self.prices.get(source)
        if p is None or p <= 0:
            raise MissingPrice(f"no positive price for {source}")
        return p

    def emit(self, name: str, role: str, address: str, **args: object) -> None:
        self.events.append(EmittedEvent(name, MappingProxyType(args), role, address))

    def effects(self) -> Effects:
        return Effects(tuple((a, b, r) for a, (b, r) in self._reserves.items()),
                       tuple((u, b, s) for u, (b, s) in self._users.items()))
