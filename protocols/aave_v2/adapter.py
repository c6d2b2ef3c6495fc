"""The Aave v2 adapter: a thin facade over the ported libraries, as ``LendingPool.sol`` is.

Source: aave/protocol-v2 @ 9169e0d (npm 1.0.1) ``contracts/protocol/lendingpool/LendingPool.sol``
(``getUserAccountData``, ``liquidationCall``); the logic lives in the sibling modules.
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
    AccountData,
    UserAccountData,
    a_token_balance_of,
    calculate_user_account_data,
    get_user_account_data,
    variable_debt_balance_of,
)
from .liquidation import LiquidationCallParams, liquidation_call
from .reserve_logic import stable_debt_balance_of
from .state import AaveV2State, Effects, InterestRateStrategy, ReserveData, TxContext, UserReserve, UserState

__all__ = ["AaveV2Adapter", "BASE_CURRENCY_UNIT"]

#: AaveOracle (v2) base currency unit: prices and values are ETH wei
BASE_CURRENCY_UNIT = 10**18


class AaveV2Adapter(ProtocolAdapter[AaveV2State]):
    """Aave v2 LendingPool rules (see the package docstring for sources and limits)."""

    name: ClassVar[str] = "aave_v2"
    kind: ClassVar[Kind] = "lending"
    events: ClassVar[tuple[EventSpec, ...]] = EVENTS
    base_unit: ClassVar[int] = BASE_CURRENCY_UNIT
    base_currency: ClassVar[str] = "ETH"
    has_liquidation_protocol_fee: ClassVar[bool] = False  # v2's LiquidationCall pays no protocol fee

    def new_state(self, pool: str = ZERO_ADDRESS, asset_decimals: Mapping[str, int] | None = None,
                  asset_treasuries: Mapping[str, str] | None = None) -> AaveV2State:
        """An empty market. ``asset_decimals`` / ``asset_treasuries``: token decimals and aToken
        treasury (``RESERVE_TREASURY_ADDRESS``) of the assets the market will list — no v2 event
        carries them (see :mod:`.events`)."""
        return AaveV2State(pool=pool.lower(),
                           asset_decimals={a.lower(): int(d) for a, d in (asset_decimals or {}).items()},
                           asset_treasuries={a.lower(): t.lower()
                                             for a, t in (asset_treasuries or {}).items()})

    def apply(self, state: AaveV2State, event: ProtocolEvent) -> None:
        apply_event(state, event)

    # -- views --

    def user_account_data(
        self, state: AaveV2State, user: str, prices: Mapping[str, int], timestamp: int
    ) -> AccountData:
        """``LendingPool.getUserAccountData(user)`` in a block at ``timestamp``."""
        self._check_time(state, user, (), timestamp)
        return get_user_account_data(TxContext(state, timestamp, prices), state.user(user))

    def calculate_user_account_data(
        self, state: AaveV2State, user: str, prices: Mapping[str, int], timestamp: int
    ) -> UserAccountData:
        """``GenericLogic.calculateUserAccountData``."""
        self._check_time(state, user, (), timestamp)
        return calculate_user_account_data(TxContext(state, timestamp, prices), state.user(user))

    def account(
        self, state: AaveV2State, user: str, prices: Mapping[str, int], timestamp: int
    ) -> AccountHealth:
        d = self.calculate_user_account_data(state, user, prices, timestamp)
        lt_value = percent_mul_half_up(d.total_collateral_eth, d.avg_liquidation_threshold)
        return AccountHealth(
            collateral_value=d.total_collateral_eth,
            debt_value=d.total_debt_eth,
            liquidation_threshold_value=lt_value,
            health_factor_wad=d.health_factor,
            liquidatable=d.health_factor < WAD,
            shortfall=max(0, d.total_debt_eth - lt_value),
            unit=BASE_CURRENCY_UNIT,
        )

    def users(self, state: AaveV2State) -> Iterable[str]:
        return sorted(state.users)

    def positions(self, state: AaveV2State, user: str, timestamp: int) -> tuple[Position, ...]:
        self._check_time(state, user, (), timestamp)
        u = state.user(user)
        out = []
        for asset in sorted(u.reserves):
            reserve = state.reserves.get(asset)
            if reserve is None:
                continue
            ur = u.reserves[asset]
            collateral = a_token_balance_of(state, reserve, ur.scaled_a_token_balance, timestamp)
            debt = variable_debt_balance_of(
                state, reserve, ur.scaled_variable_debt, timestamp
            ) + stable_debt_balance_of(ur, timestamp)
            out.append(
                Position(user, asset, collateral, debt, is_using_as_collateral(u.configuration, reserve.id))
            )
        return tuple(out)

    def decimals(self, state: AaveV2State, asset: str) -> int:
        r = state.reserves.get(asset)
        if r is None:
            raise ProtocolError(f"{asset} is not a reserve of the aave_v2 market {state.pool}")
        return int(r.configuration.decimals)

    def liquidation_parameters(self, state: AaveV2State, user: str,
                               collateral_asset: str) -> tuple[int, int] | None:
        """The reserve's threshold and bonus (v2 has no e-mode)."""
        r = state.reserves.get(collateral_asset)
        if r is None:
            return None
        return r.configuration.liquidation_threshold, r.configuration.liquidation_bonus

    def exposures(self, state: AaveV2State, user: str, timestamp: int) -> dict[str, float] | None:
        """Net exposure per asset (v2 prices every reserve by its own AaveOracle source; no
        e-mode): enabled collateral with LT > 0 ``+ amount * LT / 1e4 / 10**decimals``, debt
        (stable + variable) ``- amount / 10**decimals``, per whole token (``e * price`` is ETH wei)."""
        if user not in state.users:
            return {}
        out: dict[str, float] = {}
        for p in self.positions(state, user, timestamp):
            cfg = state.reserves[p.asset].configuration
            unit = 10.0 ** cfg.decimals
            e = 0.0
            if p.collateral and p.collateral_enabled and cfg.liquidation_threshold:
                e += p.collateral * cfg.liquidation_threshold / 10_000 / unit
            if p.debt:
                e -= p.debt / unit
            if e:
                out[p.asset] = e
        return out

    def liquidation_call(self, event: ProtocolEvent) -> LiquidationCall | None:
        """A pool ``LiquidationCall`` (``ILendingPool.LiquidationCall``: ``debtToCover`` is the
        amount actually repaid, ``liquidatedCollateralAmount`` the collateral taken; v2 has no
        protocol fee)."""
        if event.name != "LiquidationCall" or event.role != "lending_pool":
            return None
        a = event.args
        return LiquidationCall(user=str(a["user"]), collateral=str(a["collateral_asset"]),
                               debt=str(a["debt_asset"]), debt_to_cover=int(str(a["debt_to_cover"])),
                               receive_a_token=bool(a["receive_a_token"]), liquidator=str(a["liquidator"]),
                               debt_repaid=int(str(a["debt_to_cover"])),
                               collateral_seized=int(str(a["liquidated_collateral_amount"])))

    # -- liquidation --

    def liquidate(
        self,
        state: AaveV2State,
        user: str,
        collateral: str,
        debt: str,
        debt_to_cover: int,
        prices: Mapping[str, int],
        timestamp: int,
        receive_a_token: bool = False,
        *,
        liquidator: str = ZERO_ADDRESS,
    ) -> LiquidationOutcome:
        """``LendingPool.liquidationCall(collateral, debt, user, debtToCover, receiveAToken)``
        sent by ``liquidator`` in a block at ``timestamp``."""
        self._check_time(state, user, (collateral, debt), timestamp)
        params = LiquidationCallParams(collateral, debt, user, debt_to_cover, receive_a_token, liquidator)
        return liquidation_call(state, params, prices, timestamp)

    def commit(self, state: AaveV2State, outcome: LiquidationOutcome) -> None:
        if not outcome.ok:
            raise ValueError(f"cannot commit a reverted liquidation ({outcome.revert_reason})")
        if not isinstance(outcome.effects, Effects):
            raise ValueError("outcome was not computed by the aave_v2 adapter")
        outcome.effects.apply_to(state)

    @staticmethod
    def _check_time(state: AaveV2State, user: str, assets: Iterable[str], timestamp: int) -> None:
        u = state.user(user)
        for asset in (*u.reserves, *assets):
            r = state.reserves.get(asset)
            if r is not None and (
                r.last_update_timestamp > timestamp or r.stable_debt_total_supply_timestamp > timestamp
            ):
                raise ProtocolError(f"timestamp {timestamp} precedes the last update of reserve {asset}")
            ur = u.reserves.get(asset)
            if ur is not None and ur.stable_debt_principal and ur.stable_debt_timestamp > timestamp:
                raise ProtocolError(
                    f"timestamp {timestamp} precedes {user}'s last stable debt change in {asset}"
                )

    def health_rounding(
        self, state: AaveV2State, user: str, prices: Mapping[str, int], timestamp: int
    ) -> int:
        """``avgLT`` is floored before ``percentMul``, as in v3: the HF may rise by up to
        ``(total / 1e4 + 1) / debt`` (WAD) when a collateral price falls."""
        d = self.calculate_user_account_data(state, user, prices, timestamp)
        if d.total_debt_eth == 0:
            return 0
        return ((d.total_collateral_eth // 10_000 + 2) * WAD) // d.total_debt_eth + 2

    def balance_rounding(self, state: AaveV2State, asset: str) -> int:
        """A liquidation moves collateral once (burn or transfer), ``rayDiv``-scaled half-up and
        read back with ``rayMul``: at most ``1 + I`` base units for a liquidity index ``I``
        (in RAY units)."""
        r = state.reserves.get(asset)
        index = r.liquidity_index if r is not None else RAY
        return 2 + index // RAY

    # -- conformance sample --

    def sample(self, rng: random.Random) -> MarketSample:
        """Four reserves (WETH 18, WBTC 8, USDC 6, DAI 18 decimals; ETH-quoted prices drawn
        around mainnet-like values), indices and rates drawn at random, and 1–4 users with
        collateral and variable (and some stable) debt, many of them near liquidation."""
        return _sample_market(rng)


def _address(tag: str, i: int) -> str:
    return "0x" + f"{tag}{i:x}".encode().hex()[:40].rjust(40, "0")


def _sample_market(rng: random.Random) -> MarketSample:
    state = AaveV2State(pool=_address("pool2", 0))
    specs = (
        (18, 10**18, 8000, 8250, 10500),
        (8, 15 * 10**18, 7000, 7500, 10650),
        (6, 5 * 10**14, 8000, 8500, 10500),
        (18, 502 * 10**12, 7500, 8000, 10500),
    )
    ts = 1_700_000_000 + rng.randrange(10**6)
    treasury = _address("treasury2", 0)
    assets: list[str] = []
    prices: dict[str, int] = {}
    for i, (dec, price, ltv, lt, bonus) in enumerate(specs):
        asset = _address("asset2", i)
        assets.append(asset)
        prices[asset] = price if i == 0 else max(1, price * rng.randrange(50, 150) // 100)
        cfg = ReserveConfiguration(
            ltv=ltv,
            liquidation_threshold=lt,
            liquidation_bonus=bonus,
            decimals=dec,
            active=True,
            borrowing_enabled=True,
            stable_borrowing_enabled=True,
            reserve_factor=rng.choice((0, 1000, 2000)),
        )
        state.add_reserve(
            ReserveData(
                asset=asset,
                id=i,
                configuration=cfg,
                liquidity_index=RAY + rng.randrange(RAY // 5),
                current_liquidity_rate=rng.randrange(RAY // 10),
                variable_borrow_index=RAY + rng.randrange(RAY // 4),
                current_variable_borrow_rate=rng.randrange(RAY // 5),
                current_stable_borrow_rate=RAY // 10,
                last_update_timestamp=ts - rng.randrange(0, 30 * 86_400),
                a_token=_address("atoken2", i),
                stable_debt_token=_address("sdebt2", i),
                variable_debt_token=_address("vdebt2", i),
                treasury=treasury,
                interest_rate_strategy=InterestRateStrategy(
                    8 * RAY // 10, 0, 4 * RAY // 100, 75 * RAY // 100, 2 * RAY // 100, 75 * RAY // 100
                ),
                market_borrow_rate=3 * RAY // 100,
                a_token_underlying_balance=10**6 * 10**dec,
            )
        )
    users = []
    for k in range(rng.randrange(1, 5)):
        user = _address("user2", k)
        users.append(user)
        config = 0
        reserves: dict[str, UserReserve] = {}
        coll_eth = 0
        for i in rng.sample(range(4), rng.randrange(1, 3)):
            r = state.reserves[assets[i]]
            eth = rng.randrange(10**17, 10**21)
            coll_eth += eth
            amount = eth * r.unit // prices[assets[i]]
            reserves[assets[i]] = UserReserve(scaled_a_token_balance=amount * RAY // r.liquidity_index + 1)
            config |= 1 << (2 * i + 1)
        debt_ids = rng.sample(range(4), rng.randrange(1, 3))
        target = coll_eth * rng.randrange(60, 130) // 100 // len(debt_ids)
        for i in debt_ids:
            r = state.reserves[assets[i]]
            amount = max(1, target * r.unit // prices[assets[i]])
            ur = reserves.get(assets[i], UserReserve())
            if rng.random() < 0.3:
                ur = replace(
                    ur,
                    stable_debt_principal=amount // 2,
                    stable_rate=RAY // 10 + rng.randrange(RAY // 20),
                    stable_debt_timestamp=r.last_update_timestamp,
                )
                amount -= amount // 2
            reserves[assets[i]] = replace(
                ur, scaled_variable_debt=amount * RAY // r.variable_borrow_index + 1
            )
            config |= 1 << (2 * i)
        state.users[user] = UserState(config, reserves)
    for asset in assets:  # token totals consistent with the users
        r = state.reserves[asset]
        held = [u.reserve(asset) for u in state.users.values()]
        principal = sum(h.stable_debt_principal for h in held)
        avg = sum(h.stable_debt_principal * h.stable_rate for h in held) // principal if principal else 0
        state.reserves[asset] = replace(
            r,
            variable_debt_scaled_total_supply=sum(h.scaled_variable_debt for h in held),
            stable_debt_total_principal=principal,
            average_stable_rate=avg,
            stable_debt_total_supply_timestamp=r.last_update_timestamp if principal else 0,
        )
    return MarketSample(state=state, users=tuple(users), prices=prices, timestamp=ts, assets=tuple(assets))
