"""Frozen value types shared by every protocol adapter, lending and perps alike.

Units are the protocol's native integers throughout: token amounts in the token's base units
(wei for an 18-decimal token), values in the adapter's *base currency* at the precision its
oracle uses (Aave v3: USD with 8 decimals, ``unit = 10**8``; Aave v2: ETH wei, ``unit = 10**18``),
health factors in WAD (1e18 = 1.0). Addresses are lower-case ``0x`` hex strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

__all__ = [
    "EventRef",
    "ProtocolEvent",
    "AccountHealth",
    "Position",
    "EmittedEvent",
    "LiquidationOutcome",
    "MarketSample",
    "EMPTY_MAPPING",
]

EMPTY_MAPPING: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class EventRef:
    """Where a log is: block, position in the block, transaction, and the block's timestamp
    (unix seconds; the time interest accrues to when the event is applied)."""

    block_number: int
    log_index: int
    tx_hash: str
    block_timestamp: int

    def __str__(self) -> str:
        return f"block {self.block_number}, log index {self.log_index}, tx {self.tx_hash}"


@dataclass(frozen=True, slots=True)
class ProtocolEvent:
    """One decoded log, as ingest stores it.

    ``name`` is the event name (``LiquidationCall``), ``signature`` its canonical signature
    (``LiquidationCall(address,address,address,uint256,uint256,address,bool)``), ``address`` the
    emitting contract and ``role`` its deployment role (``pool``, ``pool_configurator``,
    ``a_token``, ``variable_debt_token``, ``stable_debt_token``, ...). ``args`` is keyed by the
    snake_case column names of the decoded raw table (``ingest.abi.snake_case`` of the Solidity
    parameter names: ``collateral_asset``, ``debt_to_cover``, ``liquidated_collateral_amount``);
    values are ``int``, ``bool``, ``str`` (addresses lower-case) or ``bytes``."""

    name: str
    signature: str
    address: str
    role: str
    args: Mapping[str, object]
    ref: EventRef


@dataclass(frozen=True, slots=True)
class AccountHealth:
    """The health of one account at one instant, in the adapter's base currency.

    * ``collateral_value``: value of the collateral that counts (Aave: enabled, LT > 0);
    * ``debt_value``: value of all debt;
    * ``liquidation_threshold_value``: the collateral value weighted by its liquidation
      thresholds (Aave: ``percentMul(collateral, avgLT)``; perps: equity counted against the
      maintenance requirement) — the debt value the account may carry before it is liquidatable;
    * ``health_factor_wad``: as the protocol computes it (``2**256 - 1`` without debt);
    * ``liquidatable``: the protocol's own test (Aave: HF < 1e18, strict);
    * ``shortfall``: ``max(0, debt_value - liquidation_threshold_value)``, how far the account is
      past its liquidation point (Compound's ``getAccountLiquidity`` shortfall);
    * ``unit``: the value of one unit of base currency (Aave v3: ``10**8`` = 1 USD)."""

    collateral_value: int
    debt_value: int
    liquidation_threshold_value: int
    health_factor_wad: int
    liquidatable: bool
    shortfall: int
    unit: int

    @property
    def bad_debt_value(self) -> int:
        """Debt not covered by collateral at face value: ``max(0, debt - collateral)``."""
        return max(0, self.debt_value - self.collateral_value)


@dataclass(frozen=True, slots=True)
class Position:
    """One account's holding in one asset, in the asset's base units: ``collateral`` supplied
    (whether or not it counts), ``debt`` owed, and whether the collateral is enabled."""

    user: str
    asset: str
    collateral: int
    debt: int
    collateral_enabled: bool


class EmittedEvent(NamedTuple):
    """An event the contract would emit: ``(name, args)`` first, keyed like
    :attr:`ProtocolEvent.args`, then the emitting ``role`` and ``address``."""

    name: str
    args: Mapping[str, object]
    role: str
    address: str


@dataclass(frozen=True, slots=True)
class LiquidationOutcome:
    """What one liquidation call would do, or the contract's reason for refusing it.

    Amounts are in the assets' base units: ``debt_repaid`` of ``debt_asset`` (what the
    liquidator pays), ``collateral_seized`` of ``collateral_asset`` to the liquidator, *excluding*
    ``protocol_fee`` (the part of the bonus that goes to the protocol's treasury, same asset).
    ``bad_debt`` maps each asset to debt the liquidation leaves without any collateral behind it
    (or, for protocols with deficit accounting, the deficit it creates). ``events`` are the
    events the contract would emit, in order. When ``ok`` is false, ``revert_reason`` is the
    contract's (e.g. Aave's ``'45'``), every amount is 0 and ``events`` is empty.

    ``effects`` is adapter-private: what :meth:`ProtocolAdapter.commit` writes; it is not part
    of equality."""

    ok: bool
    revert_reason: str | None
    user: str
    collateral_asset: str
    debt_asset: str
    debt_repaid: int = 0
    collateral_seized: int = 0
    protocol_fee: int = 0
    bad_debt: Mapping[str, int] = field(default_factory=lambda: EMPTY_MAPPING)
    events: tuple[EmittedEvent, ...] = ()
    effects: object = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class MarketSample:
    """A small, self-consistent market an adapter builds for its conformance tests and
    benchmarks: a state, users with positions, oracle prices (base currency per whole token,
    keyed by asset or price source), the evaluation timestamp, and the listed assets."""

    state: object
    users: tuple[str, ...]
    prices: Mapping[str, int]
    timestamp: int
    assets: tuple[str, ...]
