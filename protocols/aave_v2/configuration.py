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
    is_borrowing,
    is_borrowing_any,
    is_empty,
    is_using_as_collateral,
    is_using_as_collateral_or_borrowing,
    reserve_ids,
    set_borrowing,
    set_using_as_collateral,
)

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

# (field, start bit, width) of the v2 ReserveConfigurationMap
_LAYOUT: tuple[tuple[str, int, int], ...] = (
    ("ltv", 0, 16),
    ("liquidation_threshold", 16, 16),
    ("liquidation_bonus", 32, 16),
    ("decimals", 48, 8),
    ("active", 56, 1),
    ("frozen", 57, 1),
    ("borrowing_enabled", 58, 1),
    ("stable_borrowing_enabled", 59, 1),
    ("reserve_factor", 64, 16),
)


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
        values: dict[str, int | bool] = {}
        for name, start, width in _LAYOUT:
            v = (data >> start) & ((1 << width) - 1)
            values[name] = bool(v) if width == 1 else v
        return cls(**values)  # type: ignore[arg-type]

    def to_word(self) -> int:
        """The uint256 word this configuration is stored as (unused bits zero)."""
        data = 0
        for name, start, width in _LAYOUT:
            v = int(getattr(self, name))
            if v >> width:
                raise ValueError(f"{name}={v} does not fit in {width} bits")
            data |= v << start
        return data
