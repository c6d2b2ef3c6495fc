"""Aave v3 validation for liquidations and automatic collateral activation.

Source: aave/aave-v3-core @ 724a9ef (v3.0.2) ``contracts/protocol/libraries/logic/ValidationLogic.sol``
(``validateLiquidationCall``, ``validateUseAsCollateral``, ``validateAutomaticUseAsCollateral``,
constants) and ``configuration/UserConfiguration.sol`` (``getIsolationModeState``); the
liquidation grace period gate from aave-dao/aave-v3-origin v3.1.0 (e627c74)
``src/core/contracts/protocol/libraries/logic/ValidationLogic.sol``.

A failed check returns the ``Errors.sol`` code (see :mod:`.error_codes`) instead of reverting;
``None`` means the check passed.
"""

from __future__ import annotations

from ..fixed_point import WAD
from . import error_codes as E
from .configuration import (
    COLLATERAL_MASK,
    ReserveConfiguration,
    get_first_asset_id_by_mask,
    is_using_as_collateral,
    is_using_as_collateral_any,
    is_using_as_collateral_one,
)
from .state import AaveV3State, ReserveData, TxContext

__all__ = [
    "MINIMUM_HEALTH_FACTOR_LIQUIDATION_THRESHOLD",
    "HEALTH_FACTOR_LIQUIDATION_THRESHOLD",
    "INACTIVE_RESERVE",
    "validate_liquidation_call",
    "get_isolation_mode_state",
    "validate_use_as_collateral",
    "validate_automatic_use_as_collateral",
]

#: below this HF (WAD, 0.95) a PriceOracleSentinel cannot block a liquidation
MINIMUM_HEALTH_FACTOR_LIQUIDATION_THRESHOLD = 95 * WAD // 100
#: a position is liquidatable below this HF (WAD, 1.0), strictly
HEALTH_FACTOR_LIQUIDATION_THRESHOLD = WAD

#: what ``reservesData[asset]`` reads as for an asset that is not listed (all zero)
INACTIVE_RESERVE = ReserveConfiguration()


def validate_liquidation_call(state: AaveV3State, user_configuration: int,
                              collateral_reserve: ReserveData | None,
                              debt_reserve: ReserveData, total_debt: int, health_factor: int,
                              timestamp: int) -> str | None:
    """``ValidationLogic.validateLiquidationCall``, checks in the contract's order: both
    reserves active ('27') and not paused ('29'); the price-oracle sentinel ('59', only above
    HF 0.95); v3.1+: both reserves past their liquidation grace period ('97'); HF < 1 ('45');
    the collateral has LT > 0 and is enabled by the user ('46'); the user owes the debt asset
    ('47'). An unlisted collateral reads as an all-zero (inactive) reserve."""
    coll_cfg = collateral_reserve.configuration if collateral_reserve is not None else INACTIVE_RESERVE
    debt_cfg = debt_reserve.configuration
    if not (coll_cfg.active and debt_cfg.active):
        return E.RESERVE_INACTIVE
    if coll_cfg.paused or debt_cfg.paused:
        return E.RESERVE_PAUSED
    sentinel = state.price_oracle_sentinel_allows_liquidation
    if not (sentinel is None or health_factor < MINIMUM_HEALTH_FACTOR_LIQUIDATION_THRESHOLD or sentinel):
        return E.PRICE_ORACLE_SENTINEL_CHECK_FAILED
    if state.rules.liquidation_grace_period:
        coll_grace = 0 if collateral_reserve is None else collateral_reserve.liquidation_grace_period_until
        if not (coll_grace < timestamp and debt_reserve.liquidation_grace_period_until < timestamp):
            return E.LIQUIDATION_GRACE_SENTINEL_CHECK_FAILED
    if not health_factor < HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
        return E.HEALTH_FACTOR_NOT_BELOW_THRESHOLD
    collateral_enabled = (coll_cfg.liquidation_threshold != 0 and collateral_reserve is not None
                          and is_using_as_collateral(user_configuration, collateral_reserve.id))
    if not collateral_enabled:
        return E.COLLATERAL_CANNOT_BE_LIQUIDATED
    if total_debt == 0:
        return E.SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER
    return None


def get_isolation_mode_state(tx: TxContext, user_configuration: int) -> tuple[bool, str | None, int]:
    """``UserConfiguration.getIsolationModeState``: (active, isolated collateral asset, debt
    ceiling) — active when the user's only collateral has a debt ceiling."""
    if is_using_as_collateral_one(user_configuration):
        asset_id = get_first_asset_id_by_mask(user_configuration, COLLATERAL_MASK)
        asset = tx.state.reserves_list.get(asset_id)
        if asset is not None:
            r = tx.reserve(asset)
            ceiling = r.configuration.debt_ceiling if r is not None else 0
            if ceiling != 0:
                return True, asset, ceiling
    return False, None, 0


def validate_use_as_collateral(tx: TxContext, user_configuration: int,
                               reserve_configuration: ReserveConfiguration) -> bool:
    """``ValidationLogic.validateUseAsCollateral``: LTV > 0 (v3.0.2+, aave-v3-core #820; v3.0.1
    has no LTV check), and either no collateral yet or neither the user nor the asset is in
    isolation mode."""
    if reserve_configuration.ltv == 0 and tx.rules.automatic_collateral_checks:
        return False
    if not is_using_as_collateral_any(user_configuration):
        return True
    isolation_active, _, _ = get_isolation_mode_state(tx, user_configuration)
    return not isolation_active and reserve_configuration.debt_ceiling == 0


def validate_automatic_use_as_collateral(tx: TxContext, user: str, user_configuration: int,
                                         reserve_configuration: ReserveConfiguration) -> bool:
    """``ValidationLogic.validateAutomaticUseAsCollateral``: an isolated asset (debt ceiling >
    0) is only enabled for holders of ISOLATED_COLLATERAL_SUPPLIER_ROLE (``user`` is the
    ``msg.sender`` of the action, e.g. the liquidator). v3.0.1 (aave-v3-core v1.17.2) has no
    such function: its actions call ``validateUseAsCollateral`` (no role, no LTV check)."""
    if not tx.rules.automatic_collateral_checks:
        return validate_use_as_collateral(tx, user_configuration, reserve_configuration)
    if reserve_configuration.debt_ceiling != 0 and user not in tx.state.isolated_collateral_suppliers:
        return False
    return validate_use_as_collateral(tx, user_configuration, reserve_configuration)
