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

What the replay engine (``backtest``) needs from an adapter beyond the rules, so that adding a
protocol is one module and one registry line, with nothing protocol-specific in the engine:
:attr:`~ProtocolAdapter.base_unit` / :attr:`~ProtocolAdapter.base_currency` (what a value is
in), :meth:`~ProtocolAdapter.decimals` (to value an amount), :meth:`~ProtocolAdapter.exposures`
(the linear price bound of the at-risk index; the default ``None`` makes the engine re-evaluate
the account at every price move — correct, slow) and
:meth:`~ProtocolAdapter.liquidation_call` (an observed liquidation event as the arguments of
:meth:`~ProtocolAdapter.liquidate` plus its observed amounts).
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, TypeVar

from .domain import AccountHealth, LiquidationOutcome, MarketSample, Position, ProtocolEvent

__all__ = ["Kind", "EventSpec", "ProtocolAdapter", "ZERO_ADDRESS", "LiquidationCall"]

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


@dataclass(frozen=True, slots=True)
class LiquidationCall:
    """An observed liquidation event read back as the call that emitted it: the arguments to
    pass to :meth:`ProtocolAdapter.liquidate` (``user``, ``collateral``, ``debt``,
    ``debt_to_cover``, ``receive_a_token``, ``liquidator``) and the amounts the event reports
    (``debt_repaid``, debt asset base units; ``collateral_seized``, collateral asset base units,
    excluding any protocol fee). For Aave the event's ``debtToCover`` *is* the amount repaid
    (the contract emits the actual amount, not the argument), so ``debt_to_cover`` reproduces
    the call — except when the call got the whole collateral: replayed with the amount repaid,
    the debt -> collateral conversion rounds down and seizes a little less (the replay then also
    tries ``type(uint256).max``, :meth:`backtest.engine.Replay._predict_observed`)."""

    user: str
    collateral: str
    debt: str
    debt_to_cover: int
    receive_a_token: bool
    liquidator: str
    debt_repaid: int
    collateral_seized: int


class ProtocolAdapter(ABC, Generic[S]):
    """One protocol's rules. Subclasses set :attr:`name`, :attr:`kind`, :attr:`events` and
    implement the abstract methods; see ``protocols/_template.py``."""

    #: registry key (``protocols.registry.ADAPTERS``)
    name: ClassVar[str]
    #: ``"lending"`` or ``"perps"``
    kind: ClassVar[Kind]
    #: the events :meth:`apply` handles; any other raises :class:`UnsupportedEvent`
    events: ClassVar[tuple[EventSpec, ...]] = ()
    #: one unit of the base currency in value units (Aave v3: ``10**8``, USD with 8 decimals;
    #: Aave v2: ``10**18``, ETH wei); equals ``AccountHealth.unit``
    base_unit: ClassVar[int]
    #: the base currency's name, upper case (``"USD"``, ``"ETH"``): what ``value / base_unit`` is in
    base_currency: ClassVar[str]
    #: False when a liquidation never pays a protocol fee (Aave v2): an observed liquidation's fee
    #: is then exactly 0 even when :meth:`liquidate` does not reproduce it; True (the default)
    #: when it may, so a fee the adapter could not predict is unknown
    has_liquidation_protocol_fee: ClassVar[bool] = True
    #: True when accounts may choose a category (Aave v3 e-mode, ``state.emode_categories``) whose
    #: liquidation threshold and bonus replace their reserves' own; scenarios may override them
    has_emode_categories: ClassVar[bool] = False

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

    @abstractmethod
    def decimals(self, state: S, asset: str) -> int:
        """Token decimals of ``asset`` as the market knows them: ``amount * price //
        10**decimals`` is the amount's value in base currency units. Raises :class:`ProtocolError`
        for an asset the market does not list."""

    def exposures(self, state: S, user: str, timestamp: int) -> Mapping[str, float] | None:
        """The account's net exposure per price key, for the replay's at-risk index: ``e_k`` such
        that, to first order, ``liquidation_threshold_value - debt_value`` moves by ``e_k * dp``
        when price ``k`` moves by ``dp`` (per whole token: + collateral amount x liquidation
        threshold, - debt amount; floats, a bound, not a rule). The default, ``None``, means
        "no linear bound": the engine then re-evaluates the account exactly at every price move
        (correct, slow). An adapter whose liquidation point is linear in prices should override
        it; the account's keys must be keys of the ``prices`` mapping :meth:`account` reads."""
        return None

    def liquidation_parameters(self, state: S, user: str, collateral_asset: str) -> tuple[int, int] | None:
        """The liquidation threshold and bonus (bps; the bonus as ``10000 + premium``) that
        ``user``'s ``collateral_asset`` is liquidated by, as the protocol selects them (Aave v3:
        an e-mode category's instead of the reserve's when the collateral is in the user's
        category), or None when the market does not list the asset or the protocol has no
        such pair. Used by metrics that judge a liquidation's buffer (LT x bonus > 1)."""
        return None

    def liquidation_call(self, event: ProtocolEvent) -> LiquidationCall | None:
        """``event`` read back as an observed liquidation (see :class:`LiquidationCall`), or
        ``None`` when it is not one. The default: no event is a liquidation."""
        return None

    def health_rounding(self, state: S, user: str, prices: Mapping[str, int], timestamp: int) -> int:
        """How far (WAD) the protocol's health factor may *rise* when a collateral price falls,
        from the rounding of its formula (0 for a formula that is monotone in every price)."""
        return 0

    def balance_rounding(self, state: S, asset: str) -> int:
        """How many base units a position's balance may differ from the sum of the amounts
        moved out of it (the protocol stores balances scaled by an index and rounds each
        move). 0 for exact ledgers."""
        return 0
