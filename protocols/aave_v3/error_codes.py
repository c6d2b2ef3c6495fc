"""The Aave v3 revert reasons the ported logic can produce, named as in ``Errors.sol``.

Source: aave/aave-v3-core @ 724a9ef (v3.0.2) ``contracts/protocol/libraries/helpers/Errors.sol``;
``LIQUIDATION_GRACE_SENTINEL_CHECK_FAILED`` from aave-dao/aave-v3-origin v3.1.0 (e627c74)
``src/core/contracts/protocol/libraries/helpers/Errors.sol``. The contract reverts with the
code string (``require(cond, '45')``); Solidity's own checks revert with ``Panic(uint256)``,
which the node reports as ``Panic(0x11)`` (arithmetic over/underflow) or ``Panic(0x12)``
(division by zero). A call into a reserve that is not listed (its token address is 0) reverts
without data, which nodes report as :data:`EMPTY_REVERT`.

v3.3 (aave-dao/aave-v3-origin v3.3.0, 5431379) added ``MUST_NOT_LEAVE_DUST = '103'``; v3.4
(v3.4.0, d7a6412, ``src/contracts/protocol/libraries/helpers/Errors.sol``) replaced every string
with a custom error (``error MustNotLeaveDust();``) and added ``SelfLiquidation()``. Under those
rules a revert is reported as the custom error's signature (what a node's trace decodes the
4-byte selector to), see :func:`reason_for`.
"""

from __future__ import annotations

__all__ = [
    "INVALID_BURN_AMOUNT",
    "INVALID_MINT_AMOUNT",
    "RESERVE_INACTIVE",
    "RESERVE_PAUSED",
    "HEALTH_FACTOR_NOT_BELOW_THRESHOLD",
    "COLLATERAL_CANNOT_BE_LIQUIDATED",
    "SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER",
    "PRICE_ORACLE_SENTINEL_CHECK_FAILED",
    "LIQUIDATION_GRACE_SENTINEL_CHECK_FAILED",
    "PANIC_ARITHMETIC",
    "PANIC_DIVISION_BY_ZERO",
    "EMPTY_REVERT",
    "MUST_NOT_LEAVE_DUST",
    "SELF_LIQUIDATION",
    "CUSTOM_ERRORS",
    "reason_for",
]

INVALID_MINT_AMOUNT = "24"
INVALID_BURN_AMOUNT = "25"
RESERVE_INACTIVE = "27"
RESERVE_PAUSED = "29"
HEALTH_FACTOR_NOT_BELOW_THRESHOLD = "45"
COLLATERAL_CANNOT_BE_LIQUIDATED = "46"
SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER = "47"
PRICE_ORACLE_SENTINEL_CHECK_FAILED = "59"
LIQUIDATION_GRACE_SENTINEL_CHECK_FAILED = "97"  # v3.1+
PANIC_ARITHMETIC = "Panic(0x11)"
PANIC_DIVISION_BY_ZERO = "Panic(0x12)"
EMPTY_REVERT = "execution reverted"  # no revert data (e.g. a call to address 0)
MUST_NOT_LEAVE_DUST = "103"  # v3.3
SELF_LIQUIDATION = "SelfLiquidation()"  # v3.4+ (custom error only)

#: v3.4+ custom error of each string code the ported logic can produce
CUSTOM_ERRORS: dict[str, str] = {
    INVALID_MINT_AMOUNT: "InvalidMintAmount()",
    INVALID_BURN_AMOUNT: "InvalidBurnAmount()",
    RESERVE_INACTIVE: "ReserveInactive()",
    RESERVE_PAUSED: "ReservePaused()",
    HEALTH_FACTOR_NOT_BELOW_THRESHOLD: "HealthFactorNotBelowThreshold()",
    COLLATERAL_CANNOT_BE_LIQUIDATED: "CollateralCannotBeLiquidated()",
    SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER: "SpecifiedCurrencyNotBorrowedByUser()",
    PRICE_ORACLE_SENTINEL_CHECK_FAILED: "PriceOracleSentinelCheckFailed()",
    LIQUIDATION_GRACE_SENTINEL_CHECK_FAILED: "LiquidationGraceSentinelCheckFailed()",
    MUST_NOT_LEAVE_DUST: "MustNotLeaveDust()",
}


def reason_for(code: str, custom_errors: bool) -> str:
    """The revert reason as the contract reports it: the string code, or under v3.4+ rules its
    custom error (panics, empty reverts and errors that only exist as custom errors pass)."""
    return CUSTOM_ERRORS.get(code, code) if custom_errors else code
