"""The error tree of ``protocols``: every failure a protocol adapter raises is one of these.

::

    ProtocolError                  base; never raised itself
    ├── UnsupportedEvent           the adapter does not handle this (role, event) at all
    ├── InconsistentEvent          an event contradicts the replayed state (repays more than the
    │                              debt, withdraws more than the balance, names an unknown
    │                              reserve); the message names block, log index and tx
    ├── UnknownProtocol            ``get_adapter(name)`` with a name not in the registry
    ├── MissingPrice               an evaluation needs the price of an asset the caller did not give
    ├── MissingParameter           a rule needs a value no event carries and nobody declared (Aave
    │                              v2: the aToken treasury a liquidation mints the reserve factor to)
    └── StaleOutcome               ``commit`` of a liquidation outcome computed on a state that has
                                   changed since

A liquidation that the *contract* would refuse is not an error: ``liquidate`` returns an outcome
with ``ok=False`` and the contract's revert reason (for Aave the ``Errors.sol`` code, e.g. ``'45'``).
"""

from __future__ import annotations

__all__ = [
    "ProtocolError",
    "UnsupportedEvent",
    "InconsistentEvent",
    "UnknownProtocol",
    "MissingPrice",
    "MissingParameter",
    "StaleOutcome",
]


class ProtocolError(Exception):
    """Base class of every error raised by ``protocols``."""


class UnsupportedEvent(ProtocolError):
    """The adapter has no rule for this event (unknown name or emitting role)."""


class InconsistentEvent(ProtocolError):
    """A decoded event contradicts the state it is applied to; replaying further would be wrong.

    The message starts with where the event is (``block N, log index I, tx H``)."""


class UnknownProtocol(ProtocolError, KeyError):
    """No adapter is registered under this name; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingPrice(ProtocolError, KeyError):
    """No price was given for an asset (or price source) the evaluation reads."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MissingParameter(ProtocolError):
    """A rule needs a market parameter that no event carries and that was not declared; going on
    would pass a stand-in (address 0, a revert) off as the contract's behaviour."""


class StaleOutcome(ProtocolError):
    """``commit`` was given an outcome computed on an older version of the state."""
