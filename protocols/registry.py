"""The adapter registry: one line per protocol, resolved lazily.

``ADAPTERS`` maps a registry name to a ``"module:Class"`` reference; nothing is imported until
:func:`get_adapter` asks for it (no registration by import side effect). The entries are
written as pairs so that a duplicate name is an error at import, as in zipline's
``register()``, instead of a dict literal silently keeping the last one.

Adding a protocol: copy ``protocols/_template.py`` to ``protocols/<name>.py`` and add one line
to ``_ENTRIES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from functools import cache
from types import MappingProxyType
from typing import Any

from .base import ProtocolAdapter
from .errors import UnknownProtocol

__all__ = ["ADAPTERS", "get_adapter", "adapter_class"]

_ENTRIES: tuple[tuple[str, str], ...] = (
    ("aave_v3", "protocols.aave_v3:AaveV3Adapter"),
    ("aave_v2", "protocols.aave_v2:AaveV2Adapter"),
)


def _build(entries: Iterable[tuple[str, str]]) -> Mapping[str, str]:
    out: dict[str, str] = {}
    for name, ref in entries:
        if name in out:
            raise ValueError(f"adapter {name!r} is registered twice ({out[name]!r} and {ref!r})")
        if ref.count(":") != 1:
            raise ValueError(f"adapter {name!r}: reference {ref!r} is not 'module:Class'")
        out[name] = ref
    return MappingProxyType(out)


ADAPTERS: Mapping[str, str] = _build(_ENTRIES)


def adapter_class(name: str) -> type[ProtocolAdapter[Any]]:
    """The adapter class registered as ``name`` (imports its module)."""
    try:
        ref = ADAPTERS[name]
    except KeyError:
        raise UnknownProtocol(f"unknown protocol {name!r}; registered: {', '.join(sorted(ADAPTERS))}") \
            from None
    module_name, _, class_name = ref.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, ProtocolAdapter)):
        raise TypeError(f"{ref} is not a ProtocolAdapter subclass")
    return cls


@cache
def get_adapter(name: str) -> ProtocolAdapter[Any]:
    """The (stateless, shared) adapter instance registered as ``name``; raises
    :class:`UnknownProtocol` listing the valid names."""
    return adapter_class(name)()
