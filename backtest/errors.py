"""The backtest's error types.

* :class:`InputError` — the run cannot start: a malformed scenario (:class:`ScenarioError`,
  naming file, line and field) or data the scenario needs is missing from the warehouse
  (:class:`MissingData`, naming what and the ``deficit ingest`` command that fetches it). Raised
  before any replay work; nothing is written. CLI exit code 2.
* :class:`ReplayError` — the replay itself failed: an ingested event contradicts the rebuilt
  state (the adapter's ``InconsistentEvent``, with block, log index and tx), an oracle answer
  the protocol cannot use, ... Nothing is written. CLI exit code 1.
"""

from __future__ import annotations

__all__ = ["BacktestError", "InputError", "ScenarioError", "MissingData", "ReplayError"]


class BacktestError(Exception):
    """Base of every backtest error."""


class InputError(BacktestError):
    """The scenario or the data it needs is not usable; raised before the replay runs."""


class ScenarioError(InputError):
    """A malformed scenario: ``file:line: field: message``."""

    def __init__(self, origin: str, message: str, line: int | None = None, field: str | None = None):
        self.origin, self.line, self.field, self.message = origin, line, field, message
        where = origin + (f":{line}" if line else "")
        super().__init__(f"{where}: {field + ': ' if field else ''}{message}")


class MissingData(InputError):
    """The warehouse lacks data the scenario needs; the message says what and how to ingest it."""


class ReplayError(BacktestError):
    """The replay failed on the data (an event contradicting the state, ...)."""
