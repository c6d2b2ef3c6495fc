"""The ``deficit`` console command: ingest's subcommands plus the backtest's ``run``.

The entry point lives here because dependencies point one way (``backtest`` imports ``ingest``,
never the reverse): :func:`main` hands ingest's CLI the backtest subcommands as plugins
(:data:`ingest.cli.Command`). Importing this module also registers every ``bt`` table, so
``deficit schema`` lists them.

``deficit run SCENARIO.toml [--db FILE] [--json] [--run-id ID]``: exit 0 when the run finished
and its rows were written, 2 for a bad scenario (a shock that does not fit the window's price
paths included), missing data or a warehouse that cannot be opened (not a DuckDB file, locked by
another process; nothing written), 1 for a replay error (an event contradicting
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
    from ingest.errors import WarehouseError

    from .api import run
    from .errors import BacktestError, InputError, MissingData
    from .scenario import load_scenario, shock_error
    from .shocks import ShockError

    try:
        with _progress(enabled=not args.json) as progress:
            res = run(args.scenario, db=args.db, run_id=args.run_id, progress=progress)
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
    except WarehouseError as e:  # not a DuckDB file, locked: the run could not start (nothing written)
        sys.stderr.write(f"error ({type(e).__name__}): {e}\n")
        return 2
    if args.json:
        sys.stdout.write(json.dumps({"run_id": res.run_id, "summary": res.summary}, indent=2,
                                    sort_keys=True, default=str) + "\n")
    else:
        _print_summary(res)
    return 0


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.6g}" if abs(v) < 1000 else f"{v:,.2f}"
    return str(v)


def _print_summary(res: Any) -> None:
    """The figures of a finished run, one table per metric (``--json`` for machines)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, emoji=False)  # a ':x:' in a scenario name stays as written
    sc = res.scenario
    rec = res.output.record
    shocked = (f", {len(sc.shocks)} price shock(s) on the oracle's answers: "
               f"{', '.join(str(s.get('kind')) for s in sc.shocks)}, seed {sc.seed}" if sc.shocks else "")
    console.print(f"run {res.run_id}: {sc.name} ({sc.mode}{shocked}), blocks {sc.from_block}..{sc.to_block}; "
                  f"*_value figures in {rec.base_currency} units of 1e-{rec.base_currency_decimals}, "
                  f"*_{rec.base_currency.lower()} in whole {rec.base_currency}", markup=False,
                  soft_wrap=True)
    for metric, figures in res.summary.items():
        t = Table(title=metric, title_justify="left", show_header=False, box=None, padding=(0, 2))
        t.add_column("figure")
        t.add_column("value", justify="right")
        for name, v in figures.items():
            if name != "base_currency":
                t.add_row(name, _fmt(v))
        console.print(t)
    db = f" --db {res.db}" if res.db else ""
    console.print(f"report: deficit report {res.run_id}{db}", markup=False, soft_wrap=True)  # one line


class _progress:
    """A progress bar on stderr for a long replay (only on a terminal; display only)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn("replay"), BarColumn(), TextColumn("block {task.fields[block]:,}"),
                             TimeElapsedColumn(), console=Console(stderr=True), transient=True)
        self._bar.__enter__()

        def update(block: int, first: int, last: int) -> None:
            if self._task is None:
                self._task = self._bar.add_task("replay", total=max(1, last - first), block=first)
            self._bar.update(self._task, completed=block - first, block=block)

        return update

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


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

    return cli_demo(args.db, args.out, args.json, Console(highlight=False, emoji=False))


COMMANDS: tuple[ingest_cli.Command, ...] = (("run", _add_run, _cmd_run), ("demo", _add_demo, _cmd_demo))
# issue 5's user surfaces: check (CI thresholds), report, runs, compare
from .checks import COMMANDS as _CHECK  # noqa: E402
from .report.catalog import COMMANDS as _CATALOG  # noqa: E402
from .report.cli import COMMANDS as _REPORT  # noqa: E402

COMMANDS = COMMANDS + _CHECK + _REPORT + _CATALOG


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return ingest_cli.main(argv, commands=COMMANDS)
    except BrokenPipeError:
        # the reader of stdout went away (`deficit runs | head`): not an error of ours; point
        # stdout at /dev/null so the interpreter's final flush does not raise again
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by it


if __name__ == "__main__":
    raise SystemExit(main())
