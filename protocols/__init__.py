"""deficit protocols: integer-exact liquidation rules of DeFi protocols, no I/O.

The public surface: the adapter interface (:class:`ProtocolAdapter`), the registry
(:data:`ADAPTERS`, :func:`get_adapter`), the value types every adapter speaks
(:mod:`protocols.domain`) and the error tree (:mod:`protocols.errors`). Adapters themselves are
imported lazily by :func:`get_adapter`.
"""

from .base import ZERO_ADDRESS, EventSpec, Kind, ProtocolAdapter
from .domain import (
    AccountHealth,
    EmittedEvent,
    EventRef,
    LiquidationOutcome,
    MarketSample,
    Position,
    ProtocolEvent,
)
from .errors import (
    InconsistentEvent,
    MissingPrice,
    ProtocolError,
    StaleOutcome,
    UnknownProtocol,
    UnsupportedEvent,
)
from .registry import ADAPTERS, adapter_class, get_adapter

__all__ = [
    "ADAPTERS",
    "get_adapter",
    "adapter_class",
    "ProtocolAdapter",
    "EventSpec",
    "Kind",
    "ZERO_ADDRESS",
    "AccountHealth",
    "EmittedEvent",
    "EventRef",
    "LiquidationOutcome",
    "MarketSample",
    "Position",
    "ProtocolEvent",
    "ProtocolError",
    "UnsupportedEvent",
    "InconsistentEvent",
    "UnknownProtocol",
    "MissingPrice",
    "StaleOutcome",
]
