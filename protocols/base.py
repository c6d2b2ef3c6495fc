"""The protocol adapter interface, shared by lending protocols and (later) perps.

An adapter is stateless: the market state it works on is a separate object, created by
:meth:`ProtocolAdapter.new_state`, changed only by :meth:`~ProtocolAdapter.apply` (one decoded
event) and :meth:`~ProtocolAdapter.commit` (a liquidation outcome), and read by everything else.
The same state and inputs always give the same result; nothing reads a clock, the network or
a database. Units are the protocol's native integers (see :mod:`protocols.domain`):

* ``prices``: oracle answers in the adapter's base currency per *whole* token, keyed by asset
  address (and by any extra price source the protocol reads, e.g. an Aave v3.0 e-mode
  category's ``priceSource``). Aave v3: USD with 8 decimals, what ``AaveOracle.getAssetPrice``
  returns. A price the evaluation needs but that is missing raises :class:`MissingPrice`.
* ``timestamp``: the block timestamp (unix seconds) at which interest is accrued, i.e. the
  block the view call or the liquidation transaction runs in. It may not precede the state's
  last update.
* amounts: base units of the token (``debt_to_cover`` in the debt asset).
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, TypeVar

from .domain import AccountHealth, LiquidationOutcome, MarketSample, Position, ProtocolEvent

__all__ = ["Kind", "EventSpec", "ProtocolAdapter", "ZERO_ADDRESS"]

Kind = Literal["lending", "perps"]
ZERO_ADDRESS = "0x" + "00" * 20
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class EventSpec:
    """An event an adapter applies: the emitting ``role`` and the canonical ``signature``
    (``Name(type,type,...)``, as topic0 is hashed from)."""

    role: str
    signature: str

    @property
    def name(self) -> str:
        return self.signature.split("(", 1)[0]


class ProtocolAdapter(ABC, Generic[S]):
    """One protocol's rules. Subclasses set :attr:`name`, :attr:`kind`, :attr:`events` and
    implement the abstract methods; see ``protocols/_template.py``."""

    #: registry key (``protocols.registry.ADAPTERS``)
    name: ClassVar[str]
    #: ``"lending"`` or ``"perps"``
    kind: ClassVar[Kind]
    #: the events :meth:`apply` handles; any other raises :class:`UnsupportedEvent`
    events: ClassVar[tuple[EventSpec, ...]] = ()

    @abstractmethod
    def new_state(self) -> S:
        """An empty market (no reserves, no users) under the adapter's default rule set."""

    @abstractmethod
    def apply(self, state: S, event: ProtocolEvent) -> None:
        """Update ``state`` in place for one decoded event. Raises :class:`UnsupportedEvent`
        for an event the adapter does not model and :class:`InconsistentEvent` when the event
        contradicts the state."""

    @abstractmethod
    def account(self, state: S, user: str, prices: Mapping[str, int], timestamp: int) -> AccountHealth:
        """The health of ``user``'s account as the protocol computes it at ``timestamp``."""

    @abstractmethod
    def liquidate(self, state: S, user: str, collateral: str, debt: str, debt_to_cover: int,
                  prices: Mapping[str, int], timestamp: int, receive_a_token: bool = False, *,
                  liquidator: str = ZERO_ADDRESS) -> LiquidationOutcome:
        """What ``liquidator`` calling the protocol's liquidation with these arguments in a block
        at ``timestamp`` would do. Pure: ``state`` is not changed; pass an ``ok`` outcome to
        :meth:`commit` to make it happen. The liquidator is assumed to hold and have approved
        the debt it repays."""

    @abstractmethod
    def commit(self, state: S, outcome: LiquidationOutcome) -> None:
        """Apply a successful outcome of :meth:`liquidate` to the state it was computed on.
        Raises :class:`StaleOutcome` if that state has changed since, ``ValueError`` for a
        failed outcome."""

    @abstractmethod
    def users(self, state: S) -> Iterable[str]:
        """Every account with a position, in a deterministic order."""

    @abstractmethod
    def positions(self, state: S, user: str, timestamp: int) -> tuple[Position, ...]:
        """``user``'s holdings with interest accrued to ``timestamp``, one per asset."""

    @abstractmethod
    def sample(self, rng: random.Random) -> MarketSample:
        """A small random market with a few users, for the conformance suite and benchmarks."""

    def health_rounding(self, state: S, user: str, prices: Mapping[str, int], timestamp: int) -> int:
        """How far (WAD) the protocol's health factor may *rise* when a collateral price falls,
        from the rounding of its formula (0 for a formula that is monotone in every price)."""
        return 0

    def balance_rounding(self, state: S, asset: str) -> int:
        """How many base units a position's balance may differ from the sum of the amounts
        moved out of it (the protocol stores balances scaled by an index and rounds each
        move). 0 for exact ledgers."""
        return 0
