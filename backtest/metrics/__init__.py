"""The metric registry: one line per metric, resolved lazily.

``_ENTRIES`` pairs a metric name with a ``"module:Class"`` reference; nothing is imported until
:func:`get_metric` asks for it. A duplicate name is an error at import (as in
``protocols/registry.py``, after zipline's ``register()``), never a silent override.

Adding a metric: write ``backtest/metrics/<name>.py`` with a :class:`~backtest.metrics.base.Metric`
subclass (hooks, tables, summary; see that module's docstring for the contract), then add one
line to ``_ENTRIES`` (and to ``DEFAULT`` if every run should compute it).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from functools import cache
from types import MappingProxyType

from ingest.schema import Table

from .base import Metric, MetricError

__all__ = ["METRICS", "DEFAULT", "get_metric", "metric_tables", "Metric", "MetricError"]

_ENTRIES: tuple[tuple[str, str], ...] = (
    ("bad_debt", "backtest.metrics.bad_debt:BadDebt"),
    ("liquidations", "backtest.metrics.liquidations:Liquidations"),
    ("socialization", "backtest.metrics.socialization:Socialization"),
    ("oracle_lag", "backtest.metrics.oracle_lag:OracleLag"),
    ("finality", "backtest.metrics.finality:Finality"),
    ("fidelity", "backtest.metrics.fidelity:Fidelity"),
    ("spiral", "backtest.metrics.spiral:Spiral"),
    ("paths", "backtest.metrics.paths:Paths"),
)

#: metrics computed when a scenario does not list any (all registered ones whose cost is within the
#: noise of a replay, bench/metrics_cost.py; oracle_lag needs a reference path, so it is opt-in)
DEFAULT: tuple[str, ...] = ("bad_debt", "liquidations", "socialization", "finality", "fidelity", "spiral")


def _build(entries: Iterable[tuple[str, str]]) -> Mapping[str, str]:
    out: dict[str, str] = {}
    for name, ref in entries:
        if name in out:
            raise ValueError(f"metric {name!r} is registered twice ({out[name]!r} and {ref!r})")
        if ref.count(":") != 1:
            raise ValueError(f"metric {name!r}: reference {ref!r} is not 'module:Class'")
        out[name] = ref
    return MappingProxyType(out)


METRICS: Mapping[str, str] = _build(_ENTRIES)


@cache
def get_metric(name: str) -> type[Metric]:
    """The metric class registered as ``name`` (imports its module); :class:`MetricError`
    listing the valid names when unknown."""
    try:
        ref = METRICS[name]
    except KeyError:
        raise MetricError(f"unknown metric {name!r}; registered: {', '.join(sorted(METRICS))}") from None
    module_name, _, class_name = ref.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Metric)):
        raise TypeError(f"{ref} is not a Metric subclass")
    if cls.name != name:
        raise TypeError(f"{ref}.name is {cls.name!r}, registered as {name!r}")
    return cls


def metric_tables() -> list[Table]:
    """Every bt table a registered metric declares (imports every metric module), checking that
    no two metrics fill the same table."""
    seen: dict[str, str] = {}
    out: list[Table] = []
    for name in METRICS:
        for t in get_metric(name).tables:
            if t.fqn in seen:
                raise ValueError(f"{t.fqn} is filled by metrics {seen[t.fqn]!r} and {name!r}")
            seen[t.fqn] = name
            out.append(t)
    return out
