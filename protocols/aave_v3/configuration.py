"""Aave v3 reserve and user configuration bitmaps, decoded into plain fields.

Source: aave/aave-v3-core @ 724a9ef (npm @aave/core-v3 1.19.3, v3.0.2 logic; contracts identical
to 782f519) ``contracts/protocol/libraries/configuration/ReserveConfiguration.sol`` and
``UserConfiguration.sol``. The bit layout is the same through aave-v3-origin v3.2.0 (v3.2 stops
using the stable-borrowing and e-mode-category bits; they are still decoded).

A reserve's configuration word is decoded once into :class:`ReserveConfiguration`; a user's
configuration stays the contract's bitmap (two bits per reserve id: bit ``2i`` borrowing, bit
``2i+1`` using as collateral), read with the functions below.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEBT_CEILING_DECIMALS",
    "LAYOUT",
    "decode_fields",
    "encode_fields",
    "MAX_RESERVES_COUNT",
    "BORROWING_MASK",
    "COLLATERAL_MASK",
    "ReserveConfiguration",
    "set_borrowing",
    "set_using_as_collateral",
    "is_borrowing",
    "is_using_as_collateral",
    "is_using_as_collateral_or_borrowing",
    "is_using_as_collateral_one",
    "is_using_as_collateral_any",
    "is_borrowing_any",
    "is_empty",
    "get_first_asset_id_by_mask",
    "reserve_ids",
]

DEBT_CEILING_DECIMALS = 2
MAX_RESERVES_COUNT = 128
BORROWING_MASK = int("55" * 32, 16)
COLLATERAL_MASK = int("AA" * 32, 16)

# (field, start bit, width) of ReserveConfigurationMap, in the contract's order
LAYOUT: tuple[tuple[str, int, int], ...] = (
    ("ltv", 0, 16),
    ("liquidation_threshold", 16, 16),
    ("liquidation_bonus", 32, 16),
    ("decimals", 48, 8),
    ("active", 56, 1),
    ("frozen", 57, 1),
    ("borrowing_enabled", 58, 1),
    ("stable_borrowing_enabled", 59, 1),
    ("paused", 60, 1),
    ("borrowable_in_isolation", 61, 1),
    ("siloed_borrowing", 62, 1),
    ("flash_loan_enabled", 63, 1),
    ("reserve_factor", 64, 16),
    ("borrow_cap", 80, 36),
    ("supply_cap", 116, 36),
    ("liquidation_protocol_fee", 152, 16),
    ("emode_category", 168, 8),
    ("unbacked_mint_cap", 176, 36),
    ("debt_ceiling", 212, 40),
)
_LAYOUT = LAYOUT


@dataclass(frozen=True, slots=True)
class ReserveConfiguration:
    """``DataTypes.ReserveConfigurationMap`` decoded. Percentages in bps (``liquidation_bonus``
    is 10000 + premium, e.g. 10500), caps in whole tokens, ``debt_ceiling`` in base currency
    with :data:`DEBT_CEILING_DECIMALS` decimals."""

    ltv: int = 0
    liquidation_threshold: int = 0
    liquidation_bonus: int = 0
    decimals: int = 0
    active: bool = False
    frozen: bool = False
    borrowing_enabled: bool = False
    stable_borrowing_enabled: bool = False
    paused: bool = False
    borrowable_in_isolation: bool = False
    siloed_borrowing: bool = False
    flash_loan_enabled: bool = False
    reserve_factor: int = 0
    borrow_cap: int = 0
    supply_cap: int = 0
    liquidation_protocol_fee: int = 0
    emode_category: int = 0
    unbacked_mint_cap: int = 0
    debt_ceiling: int = 0

    @classmethod
    def from_word(cls, data: int) -> ReserveConfiguration:
        """Decode the uint256 ``configuration.data`` of ``Pool.getReserveData``."""
        return cls(**decode_fields(_LAYOUT, data))  # type: ignore[arg-type]

    def to_word(self) -> int:
        """The uint256 word this configuration is stored as (unused bits zero)."""
        return encode_fields(_LAYOUT, self)


def decode_fields(layout: tuple[tuple[str, int, int], ...], data: int) -> dict[str, int | bool]:
    """Field -> value of a packed word (one-bit fields as bools), by ``(name, start bit, width)``;
    :class:`protocols.aave_v2.configuration.ReserveConfiguration` decodes with it too."""
    values: dict[str, int | bool] = {}
    for name, start, width in layout:
        v = (data >> start) & ((1 << width) - 1)
        values[name] = bool(v) if width == 1 else v
    return values


def encode_fields(layout: tuple[tuple[str, int, int], ...], obj: object) -> int:
    """The word holding ``obj``'s fields at ``layout``'s bits (others zero); raises
    :class:`ValueError` naming a field that does not fit its width."""
    data = 0
    for name, start, width in layout:
        v = int(getattr(obj, name))
        if v >> width:
            raise ValueError(f"{name}={v} does not fit in {width} bits")
        data |= v << start
    return data


def set_borrowing(data: int, reserve_index: int, borrowing: bool) -> int:
    """``UserConfiguration.setBorrowing``: the bitmap with reserve ``reserve_index``'s borrowing
    bit set or cleared."""
    _check_index(reserve_index)
    bit = 1 << (reserve_index << 1)
    return data | bit if borrowing else data & ~bit


def set_using_as_collateral(data: int, reserve_index: int, using_as_collateral: bool) -> int:
    """``UserConfiguration.setUsingAsCollateral``."""
    _check_index(reserve_index)
    bit = 1 << ((reserve_index << 1) + 1)
    return data | bit if using_as_collateral else data & ~bit


def is_borrowing(data: int, reserve_index: int) -> bool:
    return (data >> (reserve_index << 1)) & 1 != 0


def is_using_as_collateral(data: int, reserve_index: int) -> bool:
    return (data >> ((reserve_index << 1) + 1)) & 1 != 0


def is_using_as_collateral_or_borrowing(data: int, reserve_index: int) -> bool:
    return (data >> (reserve_index << 1)) & 3 != 0


def is_using_as_collateral_one(data: int) -> bool:
    """Exactly one reserve is used as collateral."""
    c = data & COLLATERAL_MASK
    return c != 0 and c & (c - 1) == 0


def is_using_as_collateral_any(data: int) -> bool:
    return data & COLLATERAL_MASK != 0


def is_borrowing_any(data: int) -> bool:
    return data & BORROWING_MASK != 0


def is_empty(data: int) -> bool:
    return data == 0


def get_first_asset_id_by_mask(data: int, mask: int) -> int:
    """``UserConfiguration._getFirstAssetIdByMask``: id of the lowest reserve with a bit in
    ``mask`` set (0 if none)."""
    bits = data & mask
    if bits == 0:
        return 0
    return ((bits & -bits).bit_length() - 1) >> 1


def reserve_ids(data: int) -> list[int]:
    """Ids of the reserves the user is borrowing or using as collateral, ascending (the
    order of ``GenericLogic.calculateUserAccountData``'s loop)."""
    out = []
    while data:
        i = ((data & -data).bit_length() - 1) >> 1
        out.append(i)
        data &= ~(3 << (i << 1))
    return out


def _check_index(reserve_index: int) -> None:
    if not 0 <= reserve_index < MAX_RESERVES_COUNT:
        raise ValueError(f"reserve index {reserve_index} (Errors.INVALID_RESERVE_INDEX '74')")
