"""The ``deficit`` command line: presentation only (progress bars, tables, exit codes).

Exit codes: 0 success, 1 the run failed (a typed error is printed; a locked warehouse
included), 2 bad usage or input (a --db that is not a warehouse of this version included),
130 Ctrl-C, 143 SIGTERM.
Every message printed passes through :func:`ingest.redact.redact_text` with the RPC URL as a
secret, so keys never reach a terminal or a CI log even if a message slipped through unredacted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table as RichTable

from .errors import (
    ConfigError,
    DeploymentsFileError,
    IngestError,
    PriceImportError,
    WarehouseError,
    is_interrupt,
)
from .redact import redact_text, redact_url

__all__ = ["main", "CHAINS", "parse_block_or_time"]

CHAINS = {"ethereum": 1, "mainnet": 1, "optimism": 10, "bsc": 56, "polygon": 137, "base": 8453,
          "arbitrum": 42161, "avalanche": 43114, "sepolia": 11155111, "anvil": 31337}

# emoji off: rich would print ':x:' in a message (a quoted file line, a path) as an emoji
_err = Console(stderr=True, highlight=False, emoji=False)
_out = Console(highlight=False, emoji=False)

#: the largest chain id and block number meta.runs (UBIGINT) can hold
MAX_CHAIN_ID = MAX_BLOCK = 2**64 - 1


def _chain_id(v: str) -> int:
    if v.isascii() and v.isdigit():
        n = int(v)
        if not 1 <= n <= MAX_CHAIN_ID:
            raise argparse.ArgumentTypeError(f"chain id {v} is out of range: a chain id is 1 to "
                                             f"{MAX_CHAIN_ID} (EIP-155)")
        return n
    if v.lower() in CHAINS:
        return CHAINS[v.lower()]
    raise argparse.ArgumentTypeError(f"unknown chain {v!r}: give a chain id or one of "
                                     f"{', '.join(sorted(CHAINS))}")


_MEMORY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|%)\s*", re.IGNORECASE)


def _memory_limit(v: str) -> str:
    """A DuckDB memory limit: a positive amount with its unit (``256MB``, ``1GiB``, ``50%``).
    Judged here, before any file is created: DuckDB itself reads '-1GB' as no limit at all."""
    m = _MEMORY.fullmatch(v)
    if m is None or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{v!r} is not a memory size: write a positive amount with "
                                         "a unit, like 256MB, 1GB or 1GiB")
    return v


def parse_block_or_time(v: str) -> int | dt.datetime:
    """A block number (``17000000``, ``0x10``) or an ISO-8601 UTC time (``2021-01-11T00:00Z``)."""
    s = v.strip().replace("_", "")
    n: int | None = None
    if s.isascii() and s.isdigit():
        n = int(s)
    elif s.lower().startswith("0x"):
        try:
            n = int(s, 16)
        except ValueError:
            pass
    if n is not None:
        if n > MAX_BLOCK:  # meta.runs and raw.blocks store block numbers as UBIGINT
            raise argparse.ArgumentTypeError(f"block {v} is out of range (at most {MAX_BLOCK})")
        return n
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{v!r} is neither a block number nor an ISO-8601 time like 2021-01-11T00:00:00Z"
        ) from None
    if t.tzinfo is None:
        # a date alone ('2021-01-11', even '2021-01-11Z') parses without one too
        raise argparse.ArgumentTypeError(f"{v!r} is not a time of day with a UTC offset: write it like "
                                         "2021-01-11T00:00:00Z (Z for UTC)")
    return t


#: A subcommand contributed by a package layered on ingest (the backtest's ``run``): its name,
#: a function adding its parser to the subparsers, and its handler (returns the exit code).
#: ingest never imports those packages; their entry point passes them to :func:`main`.
Command = tuple[str, Callable[[Any], None], Callable[[argparse.Namespace], int]]


def _parser(commands: Sequence[Command] = ()) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="deficit", description="Replay DeFi liquidation rules on chain history and measure "
        "bad debt, who pays for it, oracle-lag exposure and finality risk.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="cmd", required=True)

    ing = sub.add_parser("ingest", help="ingest blocks, oracle rounds and protocol events from a "
                         "JSON-RPC endpoint into the warehouse")
    ing.add_argument("--rpc", help="JSON-RPC URL (default: $DEFICIT_RPC_URL); keys in it are "
                     "never printed or stored")
    ing.add_argument("--chain", type=_chain_id, default=None,
                     help="chain id or name (default: the preset's / deployments file's chain)")
    ing.add_argument("--preset", action="append", default=[],
                     help="deployment preset(s), e.g. ethereum (see ingest/presets)")
    ing.add_argument("--deployments", action="append", default=[], type=Path,
                     help="your own deployments TOML file(s)")
    ing.add_argument("--datasets", default="",
                     help="comma-separated subset: blocks,chainlink,aave_v3,aave_v2 (default all)")
    ing.add_argument("--from", dest="from_", type=parse_block_or_time,
                     help="first block, or an ISO-8601 UTC time: the first block whose timestamp "
                     "is at or after it (default: deployments' start)")
    ing.add_argument("--to", type=parse_block_or_time,
                     help="last block (included), or an ISO-8601 UTC time: the last block whose "
                     "timestamp is at or before it, so every block of that second is included "
                     "(default: the finality watermark; a --to above it stops there, with a "
                     "warning)")
    fin = ing.add_mutually_exclusive_group()
    fin.add_argument("--finalized", action="store_true",
                     help="ingest only up to the node's 'finalized' block (default)")
    fin.add_argument("--confirmations", type=int, metavar="N",
                     help="ingest up to head minus N blocks")
    fin.add_argument("--head", action="store_true",
                     help="ingest up to the head; blocks above 'finalized' are flagged")
    ing.add_argument("--db", type=Path, default=None, help="warehouse file (default data/warehouse.duckdb)")
    ing.add_argument("--chunk-blocks", type=int, default=1000,
                     help="the plan's grid: block ranges of this size, each written whole in one "
                     "transaction (default 1000)")
    ing.add_argument("--chunk-rows", type=int, default=50_000, metavar="N",
                     help="merge consecutive --chunk-blocks ranges into one transaction while the "
                     "last chunk's density keeps it near N rows, logs plus block headers "
                     "(default 50000; 0: one range per transaction)")
    ing.add_argument("--memory-limit", default="256MB", type=_memory_limit,
                     help="DuckDB buffer cap for the run (default 256MB): memory stays flat "
                     "however long the range")
    ing.add_argument("--rps", type=float, default=None,
                     help="max HTTP requests per second, retries included (> 0; default: no limit)")
    ing.add_argument("--concurrency", type=int, default=4,
                     help="parallel HTTP requests of a large batch (>= 1; the connection pool is "
                     "sized to match; default 4)")
    ing.add_argument("--batch-size", type=int, default=100, help="JSON-RPC calls per batch (>= 1)")
    ing.add_argument("--logs-max-span", type=int, default=10_000,
                     help="largest eth_getLogs block span to try (shrinks on provider limits)")
    ing.add_argument("--json", action="store_true", help="print the summary as JSON")

    imp = sub.add_parser("import-prices", help="import a CEX/DEX reference price series")
    imp.add_argument("file", type=Path)
    imp.add_argument("--pair", required=True, help="e.g. ETH/USD")
    imp.add_argument("--unit", default=None, help="quote unit (default: the pair's quote)")
    imp.add_argument("--format", dest="fmt", default=None,
                     help="binance_kline | timestamp_price | riskdao_binance | coinapi_ohlcv "
                     "(default: detect)")
    imp.add_argument("--source", default=None, help="label for the series (default: file name)")
    imp.add_argument("--db", type=Path, default=None, help="warehouse file (default data/warehouse.duckdb)")
    imp.add_argument("--json", action="store_true", help="print the summary as JSON")

    sch = sub.add_parser("schema", help="print every warehouse table and column with its meaning")
    sch.add_argument("--markdown", action="store_true", help="Markdown (as in docs/schema.md)")

    mig = sub.add_parser("migrate", help="bring a warehouse written by an older version to this "
                         "version's tables: add new nullable raw/meta columns declared after the stored "
                         "ones; if a bt result table changed in any way, move all bt result tables to "
                         "an archive_<UTC> schema; refuse "
                         "raw/meta changes that would lose data. Shows the plan; changes the file "
                         "only with --apply (one transaction)")
    mig.add_argument("--db", type=Path, default=None, help="warehouse file (default data/warehouse.duckdb)")
    mig.add_argument("--apply", action="store_true", help="carry the plan out (one transaction)")

    demo = sub.add_parser("demo-ingest", help="ingestion end to end: build a local anvil chain with "
                          "Chainlink-style rounds (an aggregator switch mid-day) and Aave-ABI events, "
                          "ingest it, show what was stored")
    demo.add_argument("--db", type=Path, default=None,
                      help="warehouse file (default data/demo-ingest.duckdb); its chain-31337 rows are "
                      "replaced, so a file with chain-31337 data another command wrote is refused")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")

    smp = sub.add_parser("sample", help="the bundled real-crash sample (data/sample.duckdb)")
    smp_sub = smp.add_subparsers(dest="sample_cmd", required=True)
    sb = smp_sub.add_parser("build", help="rebuild the sample from a seed: real Aave v3 market on "
                            "anvil through the ETH crash of 2021-01-11, liquidator bots, ingested")
    sb.add_argument("--seed", type=int, default=1, help="population seed (default 1, the committed one)")
    sb.add_argument("--out", type=Path, default=None,
                    help="output file (default data/sample.duckdb, rebuilt in place). An existing "
                    "--out file is refused unless --force. The file is written beside it as "
                    "<out>.part and renamed over it (nothing half-written); a stale <out>.wal "
                    "is removed")
    sb.add_argument("--force", action="store_true", help="replace an existing --out file")
    sb.add_argument("--json", action="store_true", help="print the statistics as JSON")
    for _, add, _ in commands:
        add(sub)
    return p


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, a CI runner cancelling a job, systemd), raised in the main thread as
    Ctrl-C raises KeyboardInterrupt, so it unwinds the same way: the open transaction rolled
    back, the run marked failed in meta.runs, child processes (anvil) stopped."""


_sigterm_seen = False


def _on_sigterm(signum: int, frame: object) -> None:
    global _sigterm_seen
    _sigterm_seen = True
    raise Terminated()


def _not_utf8(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse an argument that is not UTF-8 (a file name in Latin-1 bytes, which Python hands over
    with surrogates): the warehouse, the reports and DuckDB itself take only UTF-8 text, so it
    failed later as a UnicodeEncodeError or DuckDB 'std::bad_cast' traceback."""
    for dest, value in vars(args).items():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str | Path):
                try:
                    str(v).encode("utf-8")
                except UnicodeEncodeError:
                    opt = next((a.option_strings[-1] for a in _actions(parser, args) if a.dest == dest
                                and a.option_strings), None)
                    name = f"argument {opt}" if opt else f"the {dest} argument"
                    shown = os.fsencode(str(v)).decode("utf-8", "backslashreplace")
                    parser.exit(2, f"error: {name}: {shown} is not UTF-8 text: rename the file "
                                "(names are stored as UTF-8)\n")


def _actions(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[argparse.Action]:
    """The actions of ``parser`` and of the subcommand parsers ``args`` chose."""
    out: list[argparse.Action] = []
    for a in parser._actions:
        out.append(a)
        if isinstance(a, argparse._SubParsersAction):
            chosen = a.choices.get(getattr(args, a.dest, None) or "")
            if chosen is not None:
                out += _actions(chosen, args)
    return out


def main(argv: Sequence[str] | None = None, *, commands: Sequence[Command] = ()) -> int:
    parser = _parser(commands)
    args = parser.parse_args(argv)
    _not_utf8(parser, args)
    # SIGTERM unwinds as Ctrl-C does; not when a caller chose another handler, nor off the main
    # thread (where Python cannot set one); the caller's handler is back on return
    own = (threading.current_thread() is threading.main_thread()
           and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)
    if own:
        global _sigterm_seen
        _sigterm_seen = False
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _main(args, commands)
    finally:
        if own:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _main(args: argparse.Namespace, commands: Sequence[Command]) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    secrets = [os.environ.get("DEFICIT_RPC_URL", ""), getattr(args, "rpc", None) or ""]
    try:
        for name, _, handler in commands:
            if args.cmd == name:
                return handler(args)
        if args.cmd == "ingest":
            return _cmd_ingest(args)
        if args.cmd == "import-prices":
            return _cmd_import(args)
        if args.cmd == "schema":
            from .schema import schema_markdown, schema_text

            sys.stdout.write(schema_markdown() if args.markdown else schema_text())
            return 0
        if args.cmd == "migrate":
            return _cmd_migrate(args)
        if args.cmd == "demo-ingest":
            from .demo import run_demo

            return run_demo(db=args.db, seed=args.seed, as_json=args.json, console=_out)
        if args.cmd == "sample":
            from .sample import run_sample_build

            return run_sample_build(seed=args.seed, out=args.out, as_json=args.json, console=_out,
                                    force=args.force)
    except (DeploymentsFileError, PriceImportError, ConfigError) as e:
        _err.print(f"[bold red]error:[/] {escape(redact_text(str(e), secrets))}", soft_wrap=True)
        return 2
    except IngestError as e:
        _err.print(f"[bold red]error ({type(e).__name__}):[/] "
                   f"{escape(redact_text(str(e), secrets))}", soft_wrap=True)
        # a --db that is not a warehouse of this version (not DuckDB, a directory, tables to
        # migrate) is bad input, as for deficit run; a locked one (WarehouseLocked) is a run
        # that could not start, a refused migration (MigrationError) one that failed
        return 2 if type(e) is WarehouseError else 1
    except (KeyboardInterrupt, RuntimeError) as e:
        if not is_interrupt(e):  # a RuntimeError that is a bug: its traceback
            raise
        # Ctrl-C or SIGTERM; during a DuckDB query it arrives as DuckDB's RuntimeError
        term = isinstance(e, Terminated) or _sigterm_seen
        what = "terminated (SIGTERM)" if term else "interrupted"
        after = (": the open chunk was rolled back and the run is marked failed in meta.runs; rerun "
                 "to resume") if args.cmd == "ingest" else ""
        _err.print(f"{what}{after}", soft_wrap=True)
        return 143 if term else 130
    return 2


def _cmd_migrate(args: argparse.Namespace) -> int:
    from .migrate import apply_migration, missing_tables, plan_migration
    from .schema import registered_tables
    from .warehouse import DEFAULT_DB, Warehouse

    if not any(t.fqn.startswith("bt.") for t in registered_tables()):
        # ingest never imports the backtest; the `deficit` command registers its bt tables first
        _err.print("note: the bt result tables are not known to this entry point and are not "
                   "checked; run `deficit migrate` to include them", soft_wrap=True)
    db = args.db or DEFAULT_DB
    if not Path(db).exists():
        raise ConfigError(f"{db} does not exist: nothing to migrate")
    with Warehouse(db, read_only=not args.apply) as wh:  # the plan alone changes nothing
        steps = plan_migration(wh)
        missing = missing_tables(wh)
        for s in steps:
            _out.print(f"{escape(s.table)}: {escape(s.detail)}", soft_wrap=True)
        for name in missing:
            _out.print(f"{escape(name)}: missing: create it (empty, documented)", soft_wrap=True)
        todo = ", ".join(x for x in (f"{len(steps)} table(s) to migrate" if steps else "",
                                     f"{len(missing)} to create" if missing else "") if x)
        if args.apply:
            apply_migration(wh, steps)
            done = ", ".join(x for x in (f"migrated {len(steps)} table(s)" if steps else "",
                                         f"created {len(missing)}" if missing else "") if x)
            _out.print(f"{done}; {db} matches this version" if done else
                       f"{db} already matches this version's tables: nothing to do")
        elif todo:
            _out.print(f"{todo}: rerun with --apply to do it (one transaction)")
        else:
            _out.print(f"{db} already matches this version's tables: nothing to do")
    return 0


def _load_deployments(args: argparse.Namespace):
    from .deployments import DeploymentSet, load_deployments, load_preset

    dset = DeploymentSet()
    for name in args.preset:
        dset.extend(load_preset(name))
    for f in args.deployments:
        dset.extend(load_deployments(f))
    return dset


def _cmd_ingest(args: argparse.Namespace) -> int:
    from .engine import IngestRequest, resolve_block_at, run_ingest
    from .rpc import JsonRpcClient
    from .transports import HttpTransport
    from .warehouse import DEFAULT_DB, Warehouse

    url = args.rpc or os.environ.get("DEFICIT_RPC_URL")
    if not url:
        raise ConfigError("no RPC endpoint: pass --rpc URL or set DEFICIT_RPC_URL")
    dset = _load_deployments(args)
    chain = args.chain if args.chain is not None else dset.chain_id
    if chain is None:
        raise ConfigError("--chain is required when no preset or deployments file names one")
    finality: str | int = "finalized"
    if args.head:
        finality = "head"
    elif args.confirmations is not None:
        if args.confirmations < 0:
            raise ConfigError("--confirmations must be >= 0")
        finality = args.confirmations
    datasets = tuple(x.strip() for x in args.datasets.split(",") if x.strip())
    for flag, value, ok, want in (
            ("--concurrency", args.concurrency, args.concurrency >= 1, "at least 1"),
            ("--rps", args.rps, args.rps is None or (math.isfinite(args.rps) and args.rps > 0),
             "a finite number above 0"),
            ("--batch-size", args.batch_size, args.batch_size >= 1, "at least 1"),
            ("--logs-max-span", args.logs_max_span, args.logs_max_span >= 1, "at least 1")):
        if not ok:
            raise ConfigError(f"{flag} must be {want}, got {value}")
    # One connection per thread that may send at once: the client's `concurrency` batch
    # workers, plus the run's own thread and its prefetch thread, which send lone calls and
    # eth_getLogs spans themselves. A smaller pool (httpx's 8 before) queues requests behind
    # it, where they can fail with httpx's pool timeout.
    transport = HttpTransport(url, pool_size=args.concurrency + 2)
    rpc = JsonRpcClient(transport, max_batch=args.batch_size, concurrency=args.concurrency,
                        rps=args.rps, logs_max_span=args.logs_max_span)
    try:
        frm, to = args.from_, args.to
        resolved: list[str] = []  # warnings of the time resolution, reported with the run's
        if isinstance(frm, dt.datetime):
            frm = resolve_block_at(rpc, frm, first_at_or_after=True)
        if isinstance(to, dt.datetime):
            to = resolve_block_at(rpc, to, first_at_or_after=False,
                                  warn=lambda m: resolved.append(f"--to {m}"))
        if frm is not None and to is not None and frm > to:  # before the warehouse is touched
            def flag(name: str, given: int | dt.datetime, block: int) -> str:
                return (f"{name} {block}" if not isinstance(given, dt.datetime) else
                        f"{name} {given.isoformat().replace('+00:00', 'Z')} (block {block})")

            raise ConfigError(f"{flag('--from', args.from_, frm)} is after {flag('--to', args.to, to)}: "
                              "no block to ingest")
        req = IngestRequest(chain_id=chain, deployments=dset, datasets=datasets, from_block=frm,
                            to_block=to, finality=finality, chunk_blocks=args.chunk_blocks,
                            chunk_rows=args.chunk_rows,
                            endpoint_label=redact_url(url))
        with Warehouse(args.db or DEFAULT_DB, memory_limit=args.memory_limit) as wh:
            summary = _with_progress(lambda cb: run_ingest(wh, rpc, req, cb), args.json)
            summary.warnings[:0] = resolved
            per_table = _table_counts(wh, summary.run_id)
    finally:
        rpc.close()
    _print_summary(summary, per_table, args.json, rpc.stats, [url])
    return 0


def _with_progress(fn, quiet: bool):
    if quiet or not sys.stderr.isatty():
        return fn(None)
    cols = (TextColumn("[bold]ingest[/]"), BarColumn(), TextColumn("{task.completed:,.0f}/"
            "{task.total:,.0f} blocks"), TextColumn("{task.fields[logs]:,} logs "
            "({task.fields[rate]:,.0f}/s)"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn())
    with Progress(*cols, console=_err, transient=False) as prog:
        task = prog.add_task("ingest", total=None, logs=0, rate=0.0)

        def cb(p):
            prog.update(task, completed=p.blocks_done, total=p.blocks_total, logs=p.logs,
                        rate=p.logs / p.elapsed_s if p.elapsed_s else 0.0)

        return fn(cb)


def _print_json(doc: Any) -> None:
    """``doc`` as JSON alone on stdout, never coloured (rich's print_json adds ANSI escapes when
    FORCE_COLOR is set, as CI setups often do, and the output is then no JSON)."""
    _out.file.write(json.dumps(doc, indent=2) + "\n")


def _table_counts(wh, run_id: str) -> dict[str, int]:
    """Rows the run wrote per raw table that has a run_id (non-zero only, by table name); one
    catalog query and one counting statement for all tables."""
    tables = [t for (t,) in wh.con.execute(
        "SELECT DISTINCT c.table_name FROM duckdb_columns() c JOIN duckdb_tables() t "
        "USING (schema_name, table_name) WHERE c.schema_name='raw' AND c.column_name='run_id' "
        "ORDER BY 1").fetchall()]
    if not tables:
        return {}
    counts = wh.con.execute(" UNION ALL ".join(
        f"SELECT {i} AS i, count(*) AS n FROM raw.{t} WHERE run_id=$run"
        for i, t in enumerate(tables)), {"run": run_id}).fetchall()
    n_of = {int(i): int(n) for i, n in counts}
    return {f"raw.{t}": n_of[i] for i, t in enumerate(tables) if n_of.get(i)}


def _print_summary(s, per_table: dict[str, int], as_json: bool, stats,
                   secrets: Sequence[str] = ()) -> None:
    warnings = [redact_text(w, secrets) for w in s.warnings]
    if as_json:
        _print_json({
            "run_id": s.run_id, "chain_id": s.chain_id, "from_block": s.from_block,
            "to_block": s.to_block, "finality": s.watermark, "blocks": s.blocks_written,
            "logs": s.logs_written, "chunks": s.chunks, "reorgs": s.reorgs,
            "elapsed_s": round(s.elapsed_s, 3), "rows_by_table": per_table,
            "reingested_blocks": s.reingested, "backfilled": s.backfilled,
            "backfill": s.backfill_line(), "warnings": warnings,
            "rpc": vars(stats) if stats else {}})
        return
    t = RichTable(title=f"ingest {s.run_id}: blocks {s.from_block:,}..{s.to_block:,} "
                  f"(chain {s.chain_id}, {s.watermark})", title_justify="left")
    t.add_column("table")
    t.add_column("rows written", justify="right")
    for k, v in sorted(per_table.items()):
        t.add_row(k, f"{v:,}")
    _out.print(t)
    rate = s.logs_written / s.elapsed_s if s.elapsed_s else 0
    _out.print(f"{s.blocks_written:,} blocks, {s.logs_written:,} logs in {s.elapsed_s:.1f} s "
               f"({rate:,.0f} logs/s), {s.chunks} chunk(s), {len(s.reorgs)} reorg(s) rolled back")
    if line := s.backfill_line():
        _out.print(escape(line), soft_wrap=True)
    for w in warnings:
        _err.print(f"[yellow]warning:[/] {escape(w)}")


def _cmd_import(args: argparse.Namespace) -> int:
    from .engine import new_run_id
    from .prices import import_prices
    from .warehouse import DEFAULT_DB, Warehouse

    pair = args.pair
    unit = args.unit or (pair.split("/")[-1] if "/" in pair else None)
    if unit is None:
        raise ConfigError(f"--pair {pair!r} must look like BASE/QUOTE")
    with Warehouse(args.db or DEFAULT_DB) as wh:
        s = import_prices(wh, args.file, fmt=args.fmt, pair=pair, unit=unit, source=args.source,
                          run_id=new_run_id())
    if args.json:
        # JSON types: counts as numbers, absent values null, times ISO-8601 (not all strings)
        _print_json({k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in vars(s).items()})
    else:
        src = escape(repr(s.source))
        rep = f"; replaced {s.replaced:,} earlier rows of source {src}" if s.replaced else ""
        _out.print(f"imported {s.rows:,} {s.pair} prices from {escape(str(args.file))} ({s.format}){rep}",
                   soft_wrap=True)
    if s.dropped and s.dropped_first_ts and s.dropped_last_ts:
        _err.print(f"[yellow]warning:[/] {s.dropped:,} of them ({s.dropped_first_ts.isoformat()} .. "
                   f"{s.dropped_last_ts.isoformat()}) lie outside this file's range and are no longer "
                   f"stored: a re-import replaces the whole source {escape(repr(s.source))} for {s.pair}; "
                   "import a file that continues a series under its own --source", soft_wrap=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
