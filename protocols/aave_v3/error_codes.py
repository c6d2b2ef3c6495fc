"""The Aave v3 revert reasons the ported logic can produce, named as in ``Errors.sol``.

Source: aave/aave-v3-core @ 724a9ef (v3.0.2) ``contracts/protocol/libraries/helpers/Errors.sol``;
``LIQUIDATION_GRACE_SENTINEL_CHECK_FAILED`` from aave-dao/aave-v3-origin v3.1.0 (e627c74)
``src/core/contracts/protocol/libraries/helpers/Errors.sol``. The contract reverts with the
code string (``require(cond, '45')``); Solidity's own checks revert with ``Panic(uint256)``,
which the node reports as ``Panic(0x11)`` (arithmetic over/underflow) or ``Panic(0x12)``
(division by zero). A call into a reserve that is not listed (its token address is 0) reverts
without data, which nodes report as :data:`EMPTY_REVERT`.
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
