"""<Protocol> <versions covered>: what this adapter reproduces, in one paragraph.

Copy this file to ``protocols/<name>.py`` (or ``protocols/<name>/__init__.py`` once it outgrows
~600 lines), fill in every ``TODO``, and add one line to ``_ENTRIES`` in
``protocols/registry.py``: ``("<name>", "protocols.<name>:<Name>Adapter")``. The conformance
suite (``tests/protocols/test_conformance.py``) then checks it automatically; add a differential
test against the real contract (``tests/protocols/test_<name>_differential.py``).

Source: <owner>/<repo> @ <pinned commit> (<tag>): <the files ported, e.g.
``contracts/LiquidationLogic.sol``, ``contracts/GenericLogic.sol``>.  # TODO

Not modelled: <what the port leaves out and why>.  # TODO

House rules for the port (see docs/architecture.md):

* names: the contract's functions and constants in snake_case (``calculate_user_account_data``,
  ``CLOSE_FACTOR_HF_THRESHOLD``), one module per upstream library once the port grows;
* units: Python ints in the contract's native units (wei, WAD, RAY, bps), never floats;
* rounding: only through ``protocols.fixed_point`` helpers, whose names carry the direction
  (``ray_mul_half_up``, ``mul_div_floor``);
* reverts: return the contract's reason string in the outcome, do not raise;
* imports: the standard library and ``protocols`` only (a test enforces it).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from .base import ZERO_ADDRESS, EventSpec, Kind, ProtocolAdapter
from .domain import AccountHealth, LiquidationOutcome, MarketSample, Position, ProtocolEvent
from .errors import UnsupportedEvent

__all__ = ["TemplateAdapter", "TemplateState"]

# -- constants, named as in the contract, with their unit --
# CLOSE_FACTOR_HF_THRESHOLD = 95 * WAD // 100  # WAD  (TODO)

# -- the events apply() handles: (emitting role, canonical signature) --
EVENTS: tuple[EventSpec, ...] = (
    # EventSpec("pool", "LiquidationCall(address,address,address,uint256,uint256,address,bool)"),  # TODO
)


@dataclass
class TemplateState:
    """The market state the rules need: per-market parameters, per-account positions. Keep
    records frozen and replace them, so a simulated liquidation can detect a stale state."""

    accounts: dict[str, dict[str, int]] = field(default_factory=dict)  # TODO


# -- pure rule functions mirroring the contract's libraries (TODO) --
# def calculate_account_data(state, user, prices, timestamp) -> ...: ...
# def validate_liquidation(...) -> str | None: ...        # the revert reason, or None
# def calculate_liquidation(...) -> LiquidationOutcome: ...


class TemplateAdapter(ProtocolAdapter[TemplateState]):
    """Thin facade over the rule functions (not registered: this is the template)."""

    name: ClassVar[str] = "template"  # TODO: the registry key
    kind: ClassVar[Kind] = "lending"  # or "perps"
    events: ClassVar[tuple[EventSpec, ...]] = EVENTS
    base_unit: ClassVar[int] = 10**8  # TODO: one unit of the oracle's base currency
    base_currency: ClassVar[str] = "USD"  # TODO: what the oracle quotes in

    def new_state(self) -> TemplateState:
        return TemplateState()

    def apply(self, state: TemplateState, event: ProtocolEvent) -> None:
        # dispatch on (event.role, event.signature); raise InconsistentEvent(f"{event.ref}: ...")
        # when the event contradicts the state
        raise UnsupportedEvent(f"{event.ref}: {self.name} does not apply {event.role} {event.signature}")

    def account(self, state: TemplateState, user: str, prices: Mapping[str, int],
                timestamp: int) -> AccountHealth:
        raise NotImplementedError  # TODO: calculate_account_data -> AccountHealth

    def liquidate(self, state: TemplateState, user: str, collateral: str, debt: str, debt_to_cover: int,
                  prices: Mapping[str, int], timestamp: int, receive_a_token: bool = False, *,
                  liquidator: str = ZERO_ADDRESS) -> LiquidationOutcome:
        raise NotImplementedError  # TODO: validate, calculate; effects for commit()

    def commit(self, state: TemplateState, outcome: LiquidationOutcome) -> None:
        raise NotImplementedError  # TODO: write outcome.effects, raise StaleOutcome if outdated

    def users(self, state: TemplateState) -> Iterable[str]:
        return sorted(state.accounts)

    def positions(self, state: TemplateState, user: str, timestamp: int) -> tuple[Position, ...]:
        raise NotImplementedError  # TODO

    def decimals(self, state: TemplateState, asset: str) -> int:
        raise NotImplementedError  # TODO: the listed asset's token decimals

    # optional (see protocols.base): exposures() for the replay's at-risk index (default: none, every
    # account re-evaluated at every price move), liquidation_call() to read observed liquidations

    def sample(self, rng: random.Random) -> MarketSample:
        raise NotImplementedError  # TODO: a few assets and accounts, some near liquidation
