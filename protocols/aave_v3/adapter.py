"""The Aave v3 adapter: a thin facade over the ported libraries, as ``Pool.sol`` is over them.

Source: aave/aave-v3-core @ 724a9ef (v3.0.2) ``contracts/protocol/pool/Pool.sol``
(``getUserAccountData``, ``liquidationCall``) — the logic lives in the sibling modules; the
v3.3–v3.5 differences are in aave-dao/aave-v3-origin v3.3.0 (5431379), v3.4.0 (d7a6412),
v3.5.0 (6138e1f) and are named in those modules.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import ClassVar

from ..base import ZERO_ADDRESS, EventSpec, Kind, LiquidationCall, ProtocolAdapter
from ..domain import AccountHealth, LiquidationOutcome, MarketSample, Position, ProtocolEvent
from ..errors import ProtocolError
from ..fixed_point import RAY, WAD, percent_mul_half_up
from .configuration import ReserveConfiguration, is_using_as_collateral
from .events import EVENTS, apply_event
from .generic_logic import (
    NO_EMODE_CATEGORY,
    AccountData,
    UserAccountData,
    calculate_user_account_data,
    get_user_account_data,
    is_gho_debt,
    is_in_emode_category,
    variable_debt_balance_of,
)
from .liquidation_logic import ExecuteLiquidationCallParams, execute_liquidation_call
from .reserve_logic import (
    a_token_balance,
    cached_normalized_debt,
    cached_normalized_income,
    get_normalized_debt,
    get_normalized_income,
    stable_debt_balance_of,
    variable_debt_balance,
)
from .rule_schedule import KNOWN_DEPLOYMENTS
from .state import (
    RULE_SETS,
    V3_0,
    AaveV3State,
    Effects,
    EModeCategory,
    InterestRateStrategy,
    ReserveData,
    RuleSet,
    TxContext,
    UserReserve,
    UserState,
)

__all__ = ["AaveV3Adapter", "BASE_CURRENCY_UNIT"]

#: AaveOracle base currency unit: prices and values are USD with 8 decimals
BASE_CURRENCY_UNIT = 10**8


class AaveV3Adapter(ProtocolAdapter[AaveV3State]):
    """Aave v3.0–v3.5 Pool rules (see the package docstring for sources and limits)."""

    name: ClassVar[str] = "aave_v3"
    kind: ClassVar[Kind] = "lending"
    events: ClassVar[tuple[EventSpec, ...]] = EVENTS
    base_unit: ClassVar[int] = BASE_CURRENCY_UNIT
    base_currency: ClassVar[str] = "USD"
    has_emode_categories: ClassVar[bool] = True

    def new_state(self, rules: RuleSet | None = None, pool: str = ZERO_ADDRESS,
                  implementations: Mapping[str, RuleSet] | None = None) -> AaveV3State:
        """An empty market under ``rules``: by default the rule set the known deployment at
        ``pool`` (:data:`.rule_schedule.KNOWN_DEPLOYMENTS`) was deployed with (its first
        schedule entry: the first implementation emits no ``Upgraded``), else v3.0.2.
        ``implementations`` (pool implementation -> rule set) lets a pool ``Upgraded`` event
        switch the rules; by default that of the known deployment, else none — then any
        ``Upgraded`` raises :class:`.rule_schedule.UnknownImplementation`."""
        pool = pool.lower()
        known = KNOWN_DEPLOYMENTS.get(pool)
        if rules is None:
            rules = known.rule_schedule[0][1] if known is not None and known.rule_schedule else V3_0
        if implementations is None:
            implementations = known.implementations if known is not None else {}
        return AaveV3State(rules=rules, pool=pool,
                           implementations={a.lower(): r for a, r in implementations.items()},
                           discount_debt_tokens=set(known.discount_debt_tokens if known is not None else ()),
                           gho_impls_without_full_repayment=(known.gho_impls_without_full_repayment
                                                             if known is not None else frozenset()))

    def apply(self, state: AaveV3State, event: ProtocolEvent) -> None:
        """Apply one event (a pool ``Upgraded`` switches ``state.rules``, see :mod:`.events`)."""
        apply_event(state, event)

    # -- views --

    def user_account_data(self, state: AaveV3State, user: str, prices: Mapping[str, int],
                          timestamp: int) -> AccountData:
        """``Pool.getUserAccountData(user)`` in a block at ``timestamp``."""
        return get_user_account_data(TxContext(state, timestamp, prices), state.user(user))

    def calculate_user_account_data(self, state: AaveV3State, user: str, prices: Mapping[str, int],
                                    timestamp: int) -> UserAccountData:
        """``GenericLogic.calculateUserAccountData`` (includes ``has_zero_ltv_collateral``)."""
        return calculate_user_account_data(TxContext(state, timestamp, prices), state.user(user))

    def account(self, state: AaveV3State, user: str, prices: Mapping[str, int],
                timestamp: int) -> AccountHealth:
        d = calculate_user_account_data(TxContext(state, timestamp, prices), state.user(user))
        lt_value = percent_mul_half_up(d.total_collateral_base, d.avg_liquidation_threshold)
        return AccountHealth(collateral_value=d.total_collateral_base, debt_value=d.total_debt_base,
                             liquidation_threshold_value=lt_value, health_factor_wad=d.health_factor,
                             liquidatable=d.health_factor < WAD,
                             shortfall=max(0, d.total_debt_base - lt_value), unit=BASE_CURRENCY_UNIT)

    def users(self, state: AaveV3State) -> Iterable[str]:
        return sorted(state.users)

    def positions(self, state: AaveV3State, user: str, timestamp: int) -> tuple[Position, ...]:
        """Each reserve's aToken and debt token balances at ``timestamp``; GHO's debt (v3.0.1-v3.3)
        is its ``GhoVariableDebtToken.balanceOf``, discounted (raises
        :class:`~.state.GhoDiscountUnknown` when the percent is unknown and matters)."""
        u = state.user(user)
        tx = TxContext(state, timestamp, {})
        out = []
        for asset in sorted(u.reserves):
            reserve = state.reserves.get(asset)
            if reserve is None:
                continue
            ur = u.reserves[asset]
            collateral = a_token_balance(ur.scaled_a_token_balance, get_normalized_income(reserve, timestamp),
                                         state.rules)
            index = get_normalized_debt(reserve, timestamp, state.rules)
            if ur.scaled_variable_debt and is_gho_debt(tx, reserve):  # GhoVariableDebtToken.balanceOf
                debt = variable_debt_balance_of(tx, reserve, ur, index, user)
            else:
                debt = variable_debt_balance(ur.scaled_variable_debt, index, state.rules)
            if state.rules.stable_debt:
                debt += stable_debt_balance_of(ur, timestamp)
            enabled = is_using_as_collateral(u.configuration, reserve.id)
            out.append(Position(user, asset, collateral, debt, enabled))
        return tuple(out)

    def decimals(self, state: AaveV3State, asset: str) -> int:
        r = state.reserves.get(asset)
        if r is None:
            raise ProtocolError(f"{asset} is not a reserve of the aave_v3 market {state.pool}")
        return int(r.configuration.decimals)

    def liquidation_parameters(self, state: AaveV3State, user: str,
                               collateral_asset: str) -> tuple[int, int] | None:
        """The reserve's threshold and bonus, or the user's e-mode category's when the collateral
        is in it (``EModeLogic.isInEModeCategory`` v3.0-3.1, the collateral bitmap v3.2+), as
        ``calculateUserAccountData`` and ``LiquidationLogic`` select them."""
        r = state.reserves.get(collateral_asset)
        if r is None:
            return None
        cfg = r.configuration
        u = state.users.get(user)
        emode = u.emode_category if u is not None else 0
        if emode and is_in_emode_category(TxContext(state, 0, {}), emode, r.id, cfg.emode_category):
            cat = state.emode_categories.get(emode, NO_EMODE_CATEGORY)
            return cat.liquidation_threshold, cat.liquidation_bonus
        return cfg.liquidation_threshold, cfg.liquidation_bonus

    def exposures(self, state: AaveV3State, user: str, timestamp: int) -> dict[str, float] | None:
        """Net exposure per price key: for enabled collateral whose reserve LT is not 0,
        ``+ amount * LT / 1e4 / 10**decimals``; for debt ``- amount / 10**decimals`` (per whole
        token, so ``e * price`` is base currency). E-mode: the category's LT for its assets, and
        its price source as the key when it has one (v3.0-3.1), as
        ``GenericLogic.calculateUserAccountData`` prices them.

        Floats for the at-risk index's bounds (which keep a rounding allowance off the slack): amounts
        are ``scaled * index / RAY`` in floating point with the indexes accrued to ``timestamp``,
        not the tokens' rounded ``balanceOf`` (a relative error near 1e-16, and no big-integer
        work: this runs for every re-indexed account)."""
        u = state.users.get(user)
        if u is None:
            return {}
        cat = state.emode_categories.get(u.emode_category) if u.emode_category else None
        rules = state.rules
        config = u.configuration
        out: dict[str, float] = {}
        for asset in sorted(u.reserves):
            r = state.reserves.get(asset)
            if r is None:
                continue
            ur = u.reserves[asset]
            cfg = r.configuration
            if cat is None:
                in_emode = False
            elif rules.emode_bitmaps:
                in_emode = bool((cat.collateral_bitmap >> r.id) & 1)
            else:
                in_emode = cfg.emode_category == u.emode_category
            key = asset
            if in_emode and cat is not None and rules.emode_price_source and cat.price_source != ZERO_ADDRESS:
                key = cat.price_source
            unit = 10.0 ** cfg.decimals
            e = 0.0
            lt = cat.liquidation_threshold if in_emode and cat is not None else cfg.liquidation_threshold
            # counted only when the reserve's own threshold is not 0, as calculateUserAccountData
            # does, then at the category's threshold in e-mode
            if ur.scaled_a_token_balance and cfg.liquidation_threshold and lt \
                    and is_using_as_collateral(config, r.id):
                income = cached_normalized_income(state, r, timestamp)
                e += ur.scaled_a_token_balance * (income / RAY) * lt / 10_000 / unit
            debt = 0.0
            if ur.scaled_variable_debt:
                debt = ur.scaled_variable_debt * (cached_normalized_debt(state, r, timestamp) / RAY)
            if rules.stable_debt and ur.stable_debt_principal:
                debt += stable_debt_balance_of(ur, timestamp)
            if debt:
                e -= debt / unit
            if e:
                out[key] = out.get(key, 0.0) + e
        return out

    def liquidation_call(self, event: ProtocolEvent) -> LiquidationCall | None:
        """A pool ``LiquidationCall`` (``IPool.LiquidationCall``: ``debtToCover`` is the amount
        actually repaid, ``liquidatedCollateralAmount`` the collateral sent to the liquidator,
        the protocol fee excluded)."""
        return _liquidation_call(event)

    # -- liquidation --

    def liquidate(self, state: AaveV3State, user: str, collateral: str, debt: str, debt_to_cover: int,
                  prices: Mapping[str, int], timestamp: int, receive_a_token: bool = False, *,
                  liquidator: str = ZERO_ADDRESS) -> LiquidationOutcome:
        """``Pool.liquidationCall(collateral, debt, user, debtToCover, receiveAToken)`` sent by
        ``liquidator`` in a block at ``timestamp``."""
        self._check_time(state, user, (collateral, debt), timestamp)
        params = ExecuteLiquidationCallParams(collateral, debt, user, debt_to_cover, receive_a_token,
                                              liquidator)
        return execute_liquidation_call(state, params, prices, timestamp)

    def commit(self, state: AaveV3State, outcome: LiquidationOutcome) -> None:
        if not outcome.ok:
            raise ValueError(f"cannot commit a reverted liquidation ({outcome.revert_reason})")
        if not isinstance(outcome.effects, Effects):
            raise ValueError("outcome was not computed by the aave_v3 adapter")
        outcome.effects.apply_to(state)

    @staticmethod
    def _check_time(state: AaveV3State, user: str, assets: Iterable[str], timestamp: int) -> None:
        for asset in (*state.user(user).reserves, *assets):
            r = state.reserves.get(asset)
            if r is not None and r.last_update_timestamp > timestamp:
                raise ProtocolError(f"timestamp {timestamp} precedes the last update of reserve {asset} "
                                    f"({r.last_update_timestamp})")

    def health_rounding(self, state: AaveV3State, user: str, prices: Mapping[str, int],
                        timestamp: int) -> int:
        """``avgLT`` is floored (``sum(value_i * LT_i) / total``) before ``percentMul``: the
        numerator of the HF loses up to ``total / 1e4`` base units, and a collateral price fall
        can move that loss, so the HF may rise by up to ``(total / 1e4 + 1) / debt`` (WAD)."""
        d = calculate_user_account_data(TxContext(state, timestamp, prices), state.user(user))
        if d.total_debt_base == 0:
            return 0
        if state.rules.directional_rounding:  # v3.5: floor(wadDiv(sum(value_i*LT_i), debt) / 1e4)
            return 1  # is monotone in each value_i, so a price fall cannot raise it
        return ((d.total_collateral_base // 10_000 + 2) * WAD) // d.total_debt_base + 2

    def balance_rounding(self, state: AaveV3State, asset: str) -> int:
        """A liquidation moves collateral twice (seized, fee), each ``rayDiv``-scaled with
        half-up rounding; balances are ``rayMul``-ed back: the error is at most ``1 + I``
        base units for a liquidity index ``I`` (in RAY units)."""
        r = state.reserves.get(asset)
        index = r.liquidity_index if r is not None else RAY
        return 2 + index // RAY

    # -- conformance sample --

    def sample(self, rng: random.Random) -> MarketSample:
        """Four reserves (18/8/6/18 decimals; the last two in e-mode category 1, the fourth an
        isolated collateral), indices and rates drawn at random, and 1–4 users with
        collateral and variable (and, where the rules have it, stable) debt, many of them near
        liquidation. The rule set is drawn too (v3.0 twice as often as each later one)."""
        return _sample_market(rng)


def _liquidation_call(e: ProtocolEvent) -> LiquidationCall | None:
    if e.name != "LiquidationCall" or e.role != "pool":
        return None
    a = e.args
    return LiquidationCall(user=str(a["user"]), collateral=str(a["collateral_asset"]),
                           debt=str(a["debt_asset"]),
                           debt_to_cover=int(str(a["debt_to_cover"])),
                           receive_a_token=bool(a["receive_a_token"]), liquidator=str(a["liquidator"]),
                           debt_repaid=int(str(a["debt_to_cover"])),
                           collateral_seized=int(str(a["liquidated_collateral_amount"])))


def _address(tag: str, i: int) -> str:
    return "0x" + f"{tag}{i:x}".encode().hex()[:40].rjust(40, "0")


def _sample_market(rng: random.Random) -> MarketSample:
    rules = rng.choice((V3_0, *RULE_SETS.values()))
    state = AaveV3State(rules=rules, pool=_address("pool", 0))
    specs = ((18, 2_000 * 10**8, 8000, 8250, 10500, 0, 0), (8, 30_000 * 10**8, 7000, 7500, 10650, 0, 0),
             (6, 10**8, 7700, 7900, 10450, 1, 0), (18, 10**8, 6300, 7700, 10400, 1, 1_000_000_00))
    ts = 1_700_000_000 + rng.randrange(10**6)
    treasury = _address("treasury", 0)
    assets = []
    prices: dict[str, int] = {}
    for i, (dec, price, ltv, lt, bonus, emode, ceiling) in enumerate(specs):
        asset = _address("asset", i)
        assets.append(asset)
        prices[asset] = max(1, price * rng.randrange(50, 150) // 100)
        cfg = ReserveConfiguration(ltv=ltv, liquidation_threshold=lt, liquidation_bonus=bonus, decimals=dec,
                                   active=True, borrowing_enabled=True,
                                   reserve_factor=rng.choice((0, 1000, 2000)),
                                   liquidation_protocol_fee=rng.choice((0, 1000, 5000)), emode_category=emode,
                                   debt_ceiling=ceiling, borrowable_in_isolation=emode == 1)
        state.add_reserve(ReserveData(
            asset=asset, id=i, configuration=cfg, liquidity_index=RAY + rng.randrange(RAY // 5),
            current_liquidity_rate=rng.randrange(RAY // 10),
            variable_borrow_index=RAY + rng.randrange(RAY // 4),
            current_variable_borrow_rate=rng.randrange(RAY // 5), current_stable_borrow_rate=RAY // 10,
            last_update_timestamp=ts - rng.randrange(0, 30 * 86_400), a_token=_address("atoken", i),
            stable_debt_token=_address("sdebt", i), variable_debt_token=_address("vdebt", i),
            treasury=treasury,
            interest_rate_strategy=InterestRateStrategy(8 * RAY // 10, 0, 4 * RAY // 100, 75 * RAY // 100,
                                                        5 * RAY // 1000, 75 * RAY // 100, 2 * RAY // 100,
                                                        5 * RAY // 100, 2 * RAY // 10),
            a_token_underlying_balance=10**6 * 10**dec))
    state.emode_categories[1] = EModeCategory(9300, 9500, 10100, label="Stablecoins",
                                              collateral_bitmap=0b1100, borrowable_bitmap=0b1100)
    users = []
    for k in range(rng.randrange(1, 5)):
        user = _address("user", k)
        users.append(user)
        emode = 1 if rng.random() < 0.25 else 0
        config = 0
        reserves: dict[str, UserReserve] = {}
        coll_ids = rng.sample(range(4), rng.randrange(1, 3)) if emode == 0 else [2, 3][: rng.randrange(1, 3)]
        debt_ids = [i for i in rng.sample(range(4), rng.randrange(1, 3)) if emode == 0 or i in (2, 3)] or [2]
        if 3 in coll_ids and len(coll_ids) == 1:  # isolated collateral: stablecoin debt only
            debt_ids = [2]
        coll_usd = 0
        for i in coll_ids:
            r = state.reserves[assets[i]]
            usd = rng.randrange(100, 100_000)
            coll_usd += usd
            amount = usd * BASE_CURRENCY_UNIT * r.unit // prices[assets[i]]
            reserves[assets[i]] = UserReserve(scaled_a_token_balance=amount * RAY // r.liquidity_index + 1,
                                              a_token_previous_index=r.liquidity_index)
            config |= 1 << (2 * i + 1)
        target = coll_usd * rng.randrange(60, 130) // 100 // len(debt_ids)
        for i in debt_ids:
            r = state.reserves[assets[i]]
            amount = max(1, target * BASE_CURRENCY_UNIT * r.unit // prices[assets[i]])
            ur = reserves.get(assets[i], UserReserve())
            if rng.random() < 0.3 and rules.stable_debt:
                ur = replace(ur, stable_debt_principal=amount // 2,
                             stable_rate=RAY // 10 + rng.randrange(RAY // 20),
                             stable_debt_timestamp=r.last_update_timestamp)
                amount -= amount // 2
            ur = replace(ur, scaled_variable_debt=amount * RAY // r.variable_borrow_index + 1,
                         variable_debt_previous_index=r.variable_borrow_index)
            reserves[assets[i]] = ur
            config |= 1 << (2 * i)
        state.users[user] = UserState(config, emode, reserves)
    for asset in assets:  # token totals consistent with the users
        r = state.reserves[asset]
        held = [u.reserve(asset) for u in state.users.values()]
        principal = sum(h.stable_debt_principal for h in held)
        avg = sum(h.stable_debt_principal * h.stable_rate for h in held) // principal if principal else 0
        state.reserves[asset] = replace(
            r, variable_debt_scaled_total_supply=sum(h.scaled_variable_debt for h in held),
            stable_debt_total_principal=principal, average_stable_rate=avg,
            stable_debt_total_supply_timestamp=r.last_update_timestamp)
    return MarketSample(state=state, users=tuple(users), prices=prices, timestamp=ts, assets=tuple(assets))
