"""Aave v2 reserve configuration word, decoded; the user bitmap helpers shared with v3.

Source: aave/protocol-v2 @ 9169e0db62dbfe8122de848ae0c295ac7f683af9 (npm @aave/protocol-v2
1.0.1) ``contracts/protocol/libraries/configuration/ReserveConfiguration.sol`` (bits 0-15 LTV,
16-31 liquidation threshold, 32-47 liquidation bonus, 48-55 decimals, 56 active, 57 frozen,
58 borrowing enabled, 59 stable borrowing enabled, 64-79 reserve factor) and
``UserConfiguration.sol``. The user bitmap (bit ``2i`` borrowing, ``2i+1`` collateral) is the
same word v3 kept, so its helpers are imported from :mod:`protocols.aave_v3.configuration`
unchanged (v2 allows 128 reserves too: ``MAX_NUMBER_RESERVES = 128``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..aave_v3.configuration import (
    BORROWING_MASK,
    COLLATERAL_MASK,
    MAX_RESERVES_COUNT,
    decode_fields,
    encode_fields,
    is_borrowing,
    is_borrowing_any,
    is_empty,
    is_using_as_collateral,
    is_using_as_collateral_or_borrowing,
    reserve_ids,
    set_borrowing,
    set_using_as_collateral,
)
from ..aave_v3.configuration import LAYOUT as V3_LAYOUT

__all__ = [
    "BORROWING_MASK",
    "COLLATERAL_MASK",
    "MAX_RESERVES_COUNT",
    "ReserveConfiguration",
    "is_borrowing",
    "is_borrowing_any",
    "is_empty",
    "is_using_as_collateral",
    "is_using_as_collateral_or_borrowing",
    "reserve_ids",
    "set_borrowing",
    "set_using_as_collateral",
]

# (field, start bit, width) of the v2 ReserveConfigurationMap: v3 kept these fields at the same
# bits (it only filled v2's reserved bits 60-63 and the bits from 80 on), so they are v3's
# entries; the packing code is v3's too (decode_fields / encode_fields).
_V2_FIELDS = ("ltv", "liquidation_threshold", "liquidation_bonus", "decimals", "active", "frozen",
              "borrowing_enabled", "stable_borrowing_enabled", "reserve_factor")
_LAYOUT: tuple[tuple[str, int, int], ...] = tuple(f for f in V3_LAYOUT if f[0] in _V2_FIELDS)


@dataclass(frozen=True, slots=True)
class ReserveConfiguration:
    """``DataTypes.ReserveConfigurationMap`` of v2, decoded. Percentages in bps
    (``liquidation_bonus`` is 10000 + premium, e.g. 10500)."""

    ltv: int = 0
    liquidation_threshold: int = 0
    liquidation_bonus: int = 0
    decimals: int = 0
    active: bool = False
    frozen: bool = False
    borrowing_enabled: bool = False
    stable_borrowing_enabled: bool = False
    reserve_factor: int = 0

    @classmethod
    def from_word(cls, data: int) -> ReserveConfiguration:
        """Decode ``LendingPool.getConfiguration(asset).data``."""
        return cls(**decode_fields(_LAYOUT, data))  # type: ignore[arg-type]

    def to_word(self) -> int:
        """The uint256 word this configuration is stored as (unused bits zero)."""
        return encode_fields(_LAYOUT, self)
