"""Reports and run catalog: ``deficit report`` (:mod:`.build`: HTML + Markdown with inline SVG
plots, :mod:`.model`, :mod:`.svg`) and ``deficit runs`` / ``deficit compare`` (:mod:`.catalog`)."""

from __future__ import annotations

__all__ = ["build_report"]


def build_report(*args: object, **kwargs: object) -> object:
    """:func:`backtest.report.build.build_report` (imported lazily)."""
    from .build import build_report as _b

    return _b(*args, **kwargs)  # type: ignore[arg-type]
