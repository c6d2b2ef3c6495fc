"""deficit: the backtest — a deterministic replay over the warehouse and its risk metrics.

``backtest.run(scenario_or_path, db=...)`` → :class:`backtest.api.RunResult` (``.summary``,
``.frames()``); ``deficit run SCENARIO.toml``. See :mod:`backtest.engine` for the replay.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run", "run_inputs", "load_scenario"]


def run(*args: Any, **kwargs: Any) -> Any:
    """:func:`backtest.api.run` (imported lazily, so ``import backtest`` stays light)."""
    from .api import run as _run

    return _run(*args, **kwargs)


def run_inputs(*args: Any, **kwargs: Any) -> Any:
    """:func:`backtest.api.run_inputs`."""
    from .api import run_inputs as _run_inputs

    return _run_inputs(*args, **kwargs)


def load_scenario(path: Any) -> Any:
    """:func:`backtest.scenario.load_scenario`."""
    from .scenario import load_scenario as _load

    return _load(path)
