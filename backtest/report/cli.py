"""``deficit report RUN [--db FILE] [--out DIR] [--json]``: write a run's HTML and Markdown report
(:func:`backtest.report.build.build_report`). Exit 0 written, 2 when the run or warehouse is
missing or the output folder cannot be written."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import BacktestError

__all__ = ["COMMANDS"]


def _add_report(sub: Any) -> None:
    p = sub.add_parser("report", help="write a run's self-contained HTML report and a Markdown version")
    p.add_argument("run", help="run id (see `deficit runs`)")
    p.add_argument("--db", default=None, help="warehouse file (default data/warehouse.duckdb)")
    p.add_argument("--out", default="out", help="output folder (the report goes to OUT/RUN_ID/, characters "
                   "other than [A-Za-z0-9._-] of the run id as _, then - and 12 hex digits of the id's "
                   "sha256 when one was replaced; default out)")
    p.add_argument("--json", action="store_true", help="print the written paths as JSON")


def _cmd_report(args: argparse.Namespace) -> int:
    from ingest.warehouse import DEFAULT_DB

    from .build import build_report

    try:
        files = build_report(str(args.db or DEFAULT_DB), args.run, args.out)
    except BacktestError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    except OSError as e:  # --out not writable: a file in the way, no permission, disk full
        sys.stderr.write(f"error: cannot write the report under --out {args.out}: "
                         f"{e.filename or ''}{': ' if e.filename else ''}{e.strerror or e}\n")
        return 2
    if args.json:
        sys.stdout.write(
            json.dumps(
                {
                    "run_id": files.run_id,
                    "html": str(files.html),
                    "markdown": str(files.markdown),
                    "plots": [str(p) for p in files.plots],
                },
                indent=2,
            )
            + "\n"
        )
    else:
        sys.stdout.write(
            f"report of {files.run_id}: {files.html} (and {files.markdown}, {len(files.plots)} plots)\n"
        )
    return 0


COMMANDS: tuple[tuple[str, Any, Any], ...] = (("report", _add_report, _cmd_report),)
