"""The ``deficit`` console command: ingest's subcommands plus the backtest's ``run``.

The entry point lives here because dependencies point one way (``backtest`` imports ``ingest``,
never the reverse): :func:`main` hands ingest's CLI the backtest subcommands as plugins
(:data:`ingest.cli.Command`). Importing this module also registers every ``bt`` table, so
``deficit schema`` lists them.

``deficit run SCENARIO.toml [--db FILE] [--json] [--run-id ID]``: exit 0 when the run finished
and its rows were written, 2 for a bad scenario (a shock that does not fit the window's price
paths included) or missing data (nothing written), 1 for a replay error (an event contradicting
the state, ...; nothing written).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ingest import cli as ingest_cli

from . import attribution as _attribution  # noqa: F401  (registers bt.attributions)
from . import outputs as _outputs  # noqa: F401  (registers bt.runs, bt.liquidations, bt.summaries)
from .metrics import metric_tables

__all__ = ["main", "COMMANDS"]

metric_tables()  # register the metrics' bt tables


def _add_run(sub: Any) -> None:
    p = sub.add_parser("run", help="replay a scenario (historical or counterfactual) over the warehouse "
                       "and write its results to the bt tables")
    p.add_argument("scenario", help="scenario TOML file")
    p.add_argument("--db", default=None, help="warehouse file (default: the scenario's, else "
                   "data/warehouse.duckdb)")
    p.add_argument("--run-id", default=None, help="run id (default: derived from the scenario hash "
                   "and code version)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _cmd_run(args: argparse.Namespace) -> int:
    from .api import run
    from .errors import BacktestError, InputError, MissingData
    from .scenario import load_scenario, shock_error
    from .shocks import ShockError

    try:
        res = run(args.scenario, db=args.db, run_id=args.run_id)
    except MissingData as e:  # the warehouse lacks what the scenario needs: name the scenario too
        sys.stderr.write(f"error: {args.scenario}: {e}\n")
        return 2
    except InputError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    except ShockError as e:  # a shock that does not fit the window's price paths (nothing written)
        sys.stderr.write(f"error: {shock_error(load_scenario(args.scenario), e)}\n")
        return 2
    except BacktestError as e:
        sys.stderr.write(f"error ({type(e).__name__}): {e}\n")
        return 1
    if args.json:
        sys.stdout.write(json.dumps({"run_id": res.run_id, "summary": res.summary}, indent=2,
                                    sort_keys=True, default=str) + "\n")
    else:
        sys.stdout.write(f"run {res.run_id}: {res.scenario.name} ({res.scenario.mode}), blocks "
                         f"{res.scenario.from_block}..{res.scenario.to_block}\n")
        for metric, figures in res.summary.items():
            for name, v in figures.items():
                sys.stdout.write(f"  {metric}.{name} = {v}\n")
    return 0


def _add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="the main job: replay the bundled real-crash sample (Aave v3 through "
                       "the 2021-01-11 ETH crash), run every metric, write reports under out/, print a "
                       "summary")
    p.add_argument("--db", type=Path, default=None, help="warehouse to copy the sample into and write "
                   "results to (default data/warehouse.duckdb; never overwritten unless it is a demo copy)")
    p.add_argument("--out", type=Path, default=Path("out"), help="directory for reports and scenarios")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _cmd_demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .demo import cli_demo

    return cli_demo(args.db, args.out, args.json, Console(highlight=False))


COMMANDS: tuple[ingest_cli.Command, ...] = (("run", _add_run, _cmd_run), ("demo", _add_demo, _cmd_demo))
# issue 5's user surfaces: check (CI thresholds), report, runs, compare
from .checks import COMMANDS as _CHECK  # noqa: E402
from .report.catalog import COMMANDS as _CATALOG  # noqa: E402
from .report.cli import COMMANDS as _REPORT  # noqa: E402

COMMANDS = COMMANDS + _CHECK + _REPORT + _CATALOG


def main(argv: Sequence[str] | None = None) -> int:
    return ingest_cli.main(argv, commands=COMMANDS)


if __name__ == "__main__":
    raise SystemExit(main())
