"""The Aave v2 revert reasons a liquidation can end with, named as in ``Errors.sol``.

Source: aave/protocol-v2 @ 9169e0d (npm 1.0.1) ``contracts/protocol/libraries/helpers/Errors.sol``
and ``contracts/protocol/lendingpool/LendingPool.sol`` (``liquidationCall``).

``LendingPool.liquidationCall`` delegatecalls the collateral manager. The manager *returns* an
error code for the checks of ``ValidationLogic.validateLiquidationCall`` and for missing
liquidity, and the pool reverts with that message ('2', '42', '43', '44', '45'). Any revert
*inside* the manager (SafeMath or WadRayMath overflow, a token's ``CT_INVALID_BURN_AMOUNT``, a
call to a reserve that is not listed, a burn exceeding a balance) makes the delegatecall fail,
and the pool reverts with ``LP_LIQUIDATION_CALL_FAILED`` ('23') instead of the inner reason. A
paused pool reverts with '64' before any of it.
"""

from __future__ import annotations

__all__ = [
    "VL_NO_ACTIVE_RESERVE",
    "LP_LIQUIDATION_CALL_FAILED",
    "LPCM_HEALTH_FACTOR_NOT_BELOW_THRESHOLD",
    "LPCM_COLLATERAL_CANNOT_BE_LIQUIDATED",
    "LPCM_SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER",
    "LPCM_NOT_ENOUGH_LIQUIDITY_TO_LIQUIDATE",
    "LP_IS_PAUSED",
    "CT_INVALID_BURN_AMOUNT",
    "SDT_BURN_EXCEEDS_BALANCE",
]

VL_NO_ACTIVE_RESERVE = "2"
LP_LIQUIDATION_CALL_FAILED = "23"
LPCM_HEALTH_FACTOR_NOT_BELOW_THRESHOLD = "42"
LPCM_COLLATERAL_CANNOT_BE_LIQUIDATED = "43"
LPCM_SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER = "44"
LPCM_NOT_ENOUGH_LIQUIDITY_TO_LIQUIDATE = "45"
LP_IS_PAUSED = "64"
#: inner reasons, surfaced as '23' by the pool
CT_INVALID_BURN_AMOUNT = "58"
SDT_BURN_EXCEEDS_BALANCE = "80"
