"""``deficit report RUN``: an audit report of one stored run, from its ``bt`` rows.

Reads (read-only) ``bt.runs`` (provenance), ``bt.summaries`` (headline figures) and each
metric's tables when the run computed it — a section whose tables are absent says "not computed
in this run" and how to compute it. Labels for assets come from the market's aToken
``Initialized`` events (``raw.<dataset>_a_token_initialized.a_token_symbol``): on-chain strings,
untrusted, escaped by the renderers; provenance lists the ingest runs (``meta.runs``) whose data
the run read.

Writes ``<out>/<run_id>/report.html`` (self-contained: inline SVG, inline CSS, no script, no
network), ``report.md`` and ``plots/*.svg``. The same run gives byte-identical files (no clock;
every query sorted).

Sections: provenance; headline figures; oracle against reference price with the deviation band
(``bt.price_path``, metric ``paths``; band = reference ± the feed's deviation threshold from
``bt.oracle_lag_feeds``, else 50 bps); bad debt over time (``bt.bad_debt_blocks``); health-factor
distribution at the window start and end (``bt.health_snapshots``); liquidation waterfall and
timeline (``bt.liquidations``); loss socialization (``bt.socialization``, ``bt.loss_bearers``);
finality and reorg exposure (``bt.finality_liquidations``, ``bt.reorg_exposure``); fidelity
(``bt.fidelity``); every summary figure by metric.

Money is in the run's base currency, read from its ``bt.runs`` row (``base_currency``: USD for
Aave v3, ETH for Aave v2; ``*_value`` columns hold ``10**base_currency_decimals`` units per whole
one) and every label says it: an Aave v2 report shows ETH and never calls it USD. Summary figures
that metrics name ``*_usd`` are stored as ``*_<currency>`` in a non-USD run
(:func:`backtest.metrics.base.currency_name`), and looked up by that name.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..files import write_atomic
from .catalog import currency_name, open_read_only, run_currency
from .model import Document, Para, Plot, Pre, Section, Table, render_html, render_markdown, visible
from .svg import PALETTE, Band, Series, bar_chart, line_chart, thin, waterfall

__all__ = ["ReportFiles", "build_report", "HF_BUCKETS"]

_ADDR = re.compile(r"^0x[0-9a-f]{40}$")

#: rows of the fidelity table (mismatches first) and delay rows per origin the report shows
FIDELITY_ROWS = 50
DELAY_ROWS = 30
#: bt.fidelity columns the report's table shows first
FIDELITY_COLUMNS = ("block_number", "log_index", "user", "kind", "matched", "block_error",
                    "debt_repaid_error_raw", "collateral_seized_error_raw", "predicted_revert")

#: health-factor histogram buckets (lower bounds; the last is open)
HF_BUCKETS: tuple[float, ...] = (0, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 1.5, 2.0, 5.0)


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    markdown: Path
    plots: tuple[Path, ...]
    run_id: str


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:
            return "NaN"
        if abs(v) >= 1000:
            return f"{v:,.{digits}f}"
        if abs(v) < 1 and v:
            # significant digits, as many as it takes for a ratio below 1 not to read 1 (a recall
            # of 0.99999 is not a perfect score)
            p = max(digits, 4)
            s = f"{v:.{p}g}"
            while abs(float(s)) >= 1 and p < 17:
                p += 1
                s = f"{v:.{p}g}"
            return s
        return f"{v:,.{digits}f}"
    return str(v)


class _Data:
    """Read access to one run's rows."""

    def __init__(self, con: Any, run_id: str):
        self.con, self.run_id = con, run_id
        self.tables = {
            f"{s}.{n}"
            for s, n in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
        }
        cols = [d[0] for d in con.execute("SELECT * FROM bt.runs LIMIT 0").description]
        row = con.execute("SELECT * FROM bt.runs WHERE run_id = ?", [run_id]).fetchall()
        if not row:
            known = [
                r[0] for r in con.execute("SELECT run_id FROM bt.runs ORDER BY run_id LIMIT 20").fetchall()
            ]
            raise InputError(
                f"run {run_id!r} is not in the warehouse (runs: {known or 'none'}); see `deficit runs`"
            )
        self.run = dict(zip(cols, row[0], strict=True))
        #: what every money figure of the run is in (``USD``, ``ETH``) and its ``*_value`` decimals
        self.currency, self.decimals = run_currency(self.run)
        self.unit: int = 10**self.decimals  # base currency units per whole one
        self.scenario = json.loads(self.run["scenario_json"])
        self.summaries: dict[str, dict[str, Any]] = {}
        for m, n, t in con.execute(
            "SELECT metric, name, value_text FROM bt.summaries WHERE run_id = ? ORDER BY metric, name",
            [run_id],
        ).fetchall():
            self.summaries.setdefault(str(m), {})[str(n)] = json.loads(t)
        self.labels = self._labels()

    def has(self, *tables: str) -> bool:
        return all(t in self.tables for t in tables)

    def computed(self, metric: str, *tables: str) -> bool:
        """The run computed ``metric`` (bt.runs.metrics) and its tables exist."""
        return metric in (self.run["metrics"] or []) and self.has(*tables)

    def q(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self.con.execute(sql, [self.run_id, *args]).fetchall()
        return rows

    def fig(self, metric: str, name: str) -> Any:
        """Summary figure ``metric.name``; a ``*_usd`` name means the run's base currency
        (``end_total_oracle_usd`` finds ``end_total_oracle_eth`` in an ETH run)."""
        return self.summaries.get(metric, {}).get(currency_name(name, self.currency))

    def amount(self, v: float | int | None) -> str:
        """A whole-base-currency amount as every place of the report shows it: the currency's
        decimals (2 for USD, 4 otherwise: ``1,234.56``, ``0.0412``), significant digits for a
        non-zero amount that would round to zero (``0.004``, never ``0.00``)."""
        if v is None:
            return "–"
        if isinstance(v, float) and not math.isfinite(v):
            return _fmt(v)
        digits = 2 if self.currency == "USD" else 4
        s = f"{v:,.{digits}f}"
        if v and not any(ch in "123456789" for ch in s):
            s = f"{v:.{max(digits, 4)}g}"
        return s

    def money(self, v: float | None) -> str:
        """A whole-base-currency amount with its currency: ``1,234.56 USD``, ``0.0412 ETH``."""
        return "–" if v is None else f"{self.amount(v)} {self.currency}"

    def _labels(self) -> dict[str, str]:
        """asset/feed address -> label: aToken symbols of the market (untrusted), feed names."""
        out: dict[str, str] = {}
        ds = str(self.scenario.get("market", {}).get("dataset", ""))
        t = f"raw.{ds}_a_token_initialized"
        if ds.isidentifier() and t in self.tables:
            # the run's market only: another market of the protocol on the chain (Aave v3's Core
            # and Prime) lists the same assets under its own aTokens
            for asset, sym in self.con.execute(
                f"SELECT underlying_asset, arg_max(a_token_symbol, (block_number, log_index)) FROM {t} "
                "WHERE chain_id = ? AND source = ? GROUP BY ALL ORDER BY ALL",
                [self.run["chain_id"], str(self.scenario.get("market", {}).get("source", ""))],
            ).fetchall():
                out[str(asset).lower()] = str(sym)
        if "raw.oracle_phases" in self.tables:
            for feed, name in self.con.execute(
                # the latest phase's name (any_value took the first row read: the same rows in
                # another order labelled a feed renamed between ingests otherwise)
                "SELECT feed, arg_max(feed_name, (phase_id, discovered_at_block, feed_name)) FROM "
                "raw.oracle_phases WHERE chain_id = ? GROUP BY ALL ORDER BY ALL",
                [self.run["chain_id"]],
            ).fetchall():
                out.setdefault(str(feed).lower(), str(name))
        return out

    def figure(self, v: Any, name: str = "") -> str:
        """A summary figure as shown: an address (``max_haircut_gross_reserve``) with its label; an
        amount in whole base currency (``name`` ending ``_usd``, ``_eth``: the run's currency) as
        :meth:`amount` shows it."""
        if isinstance(v, str) and _ADDR.match(v.lower()):
            return self.label(v)
        money = name.endswith(f"_{self.currency.lower()}")
        if money and isinstance(v, (int, float)) and not isinstance(v, bool):
            return self.amount(v)
        return _fmt(v)

    def label(self, address: str | None) -> str:
        if not address:
            return "–"
        a = str(address).lower()
        sym = self.labels.get(a)
        return f"{sym} ({a[:10]}…)" if sym else a

    def base(self, value: Any) -> float | None:
        """``value`` in base currency units (``*_value``, HUGEINT) as whole base currency (a float,
        for display: the int is divided exactly, then rounded once)."""
        if value is None:
            return None
        if isinstance(value, int):
            return value / self.unit
        return float(value) / self.unit


def _missing(metric: str, tables: Sequence[str]) -> Para:
    return Para(
        f"Not computed in this run: metric '{metric}' wrote no rows here (tables "
        f'{", ".join(tables)} absent). Add "{metric}" to [metrics] names in the scenario and run it again.',
        "note",
    )


def _shocks_text(sc: Mapping[str, Any]) -> str:
    """What the scenario's ``[[shock]]`` entries did to the run's prices, for a reader of its figures."""
    shocks = [s for s in sc.get("shocks") or [] if isinstance(s, Mapping)]
    if not shocks:
        return "none: the oracle's answers as the model gives them"
    named = [list(s.get("betas") or {}) if s.get("kind") == "correlated" else list(s.get("assets") or [])
             for s in shocks]
    where = "every feed" if not all(named) else "feeds " + ", ".join(sorted({f for n in named for f in n}))
    kinds = ", ".join(str(s.get("kind")) for s in shocks)
    return (f"{len(shocks)} ([[shock]]: {kinds}; seed {sc.get('seed', 0)}): the oracle's answers on "
            f"{where} were moved (backtest.shocks), so every figure here is under those prices; a "
            "[reference] path is the recorded one")


def _provenance(d: _Data) -> Section:
    from ingest.version import code_version

    r = d.run
    writer = code_version()
    sc = d.scenario
    rows = [
        ("run id", r["run_id"]),
        ("scenario", r["scenario"]),
        ("scenario file", r.get("scenario_path") or "–"),
        ("scenario sha256", r["scenario_sha256"]),
        ("mode", r["mode"]),
        ("price shocks", _shocks_text(sc)),
        ("chain id", str(r["chain_id"])),
        (
            "base currency",
            f"{d.currency}: every amount in this report (stored *_value columns: units of "
            f"10^-{d.decimals} {d.currency})",
        ),
        ("market", f"{sc.get('market', {}).get('protocol')} / {sc.get('market', {}).get('source')}"),
        ("window", f"blocks {r['from_block']:,} … {r['to_block']:,} (inclusive)"),
        ("first block hash", r["from_block_hash"] or "– (in-memory run)"),
        ("last block hash", r["to_block_hash"] or "– (in-memory run)"),
        ("data sources (ingest runs)", ", ".join(r["data_sources"] or []) or "–"),
        ("metrics", ", ".join(r["metrics"] or [])),
        ("code version", r["code_version"]),
        (
            "report written by",
            writer if writer == r["code_version"] else f"{writer} (not the run's code version: the "
            "figures are the run's, their presentation and the report's checks this version's)",
        ),
        ("status", r["status"]),
        (
            "replay work",
            f"{r['events_applied']:,} events, {r['prices_consumed']:,} prices, "
            f"{r['blocks_visited']:,} blocks visited, {r['evaluations']:,} account evaluations",
        ),
    ]
    s = Section("Provenance", "provenance", [Table(("field", "value"), rows, "kv")])
    if "meta.runs" in d.tables and r["data_sources"]:
        ing = d.con.execute(
            "SELECT run_id, command, endpoint_label, from_block, to_block, finality, code_version, "
            "status FROM meta.runs WHERE run_id IN (SELECT unnest(?)) ORDER BY run_id",
            [list(r["data_sources"])],
        ).fetchall()
        if ing:
            s.blocks.append(Para("Ingest runs whose rows this run read (meta.runs):"))
            s.blocks.append(
                Table(
                    ("ingest run", "command", "endpoint", "blocks", "finality", "code", "status"),
                    [
                        (a, b, c or "–", f"{_fmt(f)} … {_fmt(t)}" if f is not None else "–", _fmt(fin),
                         _fmt(cv), _fmt(st))
                        for a, b, c, f, t, fin, cv, st in ing
                    ],
                )
            )
    s.blocks.append(
        Pre(
            json.dumps(sc, indent=2, sort_keys=True),
            "Scenario as run (indented for reading; the sha256 covers the canonical JSON below)",
        )
    )
    # the stored bytes themselves: the indented text above does not hash to scenario_sha256
    s.blocks.append(
        Pre(
            str(r["scenario_json"]),
            f"Canonical JSON as stored in bt.runs.scenario_json, what the sha256 covers "
            f"({r['scenario_sha256']})",
        )
    )
    return s


def _headline(d: _Data) -> list[tuple[str, str]]:
    out = []
    f, c = d.fig, d.currency
    if "bad_debt" in d.summaries:
        out.append((f"bad debt at window end ({c})", d.amount(f("bad_debt", "end_total_oracle_usd"))))
        out.append((f"peak unrealized bad debt ({c})", d.amount(f("bad_debt", "peak_unrealized_oracle_usd"))))
    if "liquidations" in d.summaries:
        out.append(
            (
                "liquidations observed / simulated",
                f"{_fmt(f('liquidations', 'observed_count'))} / {_fmt(f('liquidations', 'simulated_count'))}",
            )
        )
    if "oracle_lag" in d.summaries:
        out.append((f"hidden insolvency ({c}·h)", _fmt(f("oracle_lag", "hidden_insolvency_usd_h"))))
    if "finality" in d.summaries:
        # in a historical run every observed liquidation acts on its own, not yet final, block: the
        # volume alone read as a finality risk of its own (backtest.metrics.finality)
        hist = d.run["mode"] == "historical"
        n, of = _fmt(f("finality", "liquidations_not_final")), _fmt(f("finality", "liquidations"))
        out.append((f"liquidated on non-final state ({c})",
                    f"{d.amount(f('finality', 'liquidated_not_final_usd'))}: {n} of {of} liquidations"
                    + (" (an on-chain liquidation acts on its own block)" if hist else "")))
    if "fidelity" in d.summaries:
        out.append(
            (
                "fidelity recall / precision",
                f"{_fmt(f('fidelity', 'recall'))} / {_fmt(f('fidelity', 'precision'))}",
            )
        )
    if "socialization" in d.summaries:
        out.append((f"loss at window end ({c})", d.amount(f("socialization", "end_loss_usd"))))
    return out


def _prices(d: _Data) -> Section:
    s = Section("Oracle against reference price", "prices")
    if d.computed("paths", "bt.price_path"):
        _price_plots(d, s)
    else:
        s.blocks.append(_missing("paths", ["bt.price_path"]))
    _oracle_lag_table(d, s)
    return s


def _price_plots(d: _Data, s: Section) -> None:
    thresholds: dict[str, int] = {}
    if d.computed("oracle_lag", "bt.oracle_lag_feeds"):
        for feed, key, bps in d.q(
            "SELECT feed, price_key, deviation_threshold_bps FROM bt.oracle_lag_feeds "
            "WHERE run_id = ? ORDER BY feed"
        ):
            thresholds[str(key)] = int(bps)
            thresholds.setdefault(str(feed), int(bps))
    keys = [
        r[0]
        for r in d.q(
            "SELECT DISTINCT price_key FROM bt.price_path WHERE run_id = ? AND kind = 'reference' "
            "ORDER BY price_key"
        )
    ]
    if not keys:
        s.blocks.append(
            Para(
                "This run has no reference price path (no [reference] pairs in the scenario): "
                "nothing to compare the oracle with.",
                "note",
            )
        )
    for i, key in enumerate(keys):
        feed_rows = d.q(
            "SELECT feed FROM bt.price_path WHERE run_id = ? AND kind = 'oracle' AND price_key = ? "
            "ORDER BY feed LIMIT 1",
            key,
        )
        feed = str(feed_rows[0][0]) if feed_rows else ""
        bps = thresholds.get(key, thresholds.get(feed))
        band_from = "the feed's threshold in bt.oracle_lag_feeds"
        if bps is None:
            bps, band_from = 50, "a 50 bps default, not the feed's threshold: oracle_lag not computed for it"
        orc = [
            (float(t), float(p))
            for t, p in d.q(
                "SELECT block_ts, price_f64 FROM bt.price_path WHERE run_id = ? AND kind = 'oracle' "
                "AND accepted AND "
                "price_key = ? ORDER BY block_number, log_index",
                key,
            )
        ]
        ref = [
            (float(t), float(p))
            for t, p in d.q(
                "SELECT block_ts, price_f64 FROM bt.price_path WHERE run_id = ? AND kind = 'reference' "
                "AND price_key = ? "
                "ORDER BY block_number, log_index",
                key,
            )
        ]
        # bt.price_path leads with the prices in force at the window start (log index -2); a feed
        # with no answer before the window (or a run written before those rows) begins later
        begins = ""
        if ref and not orc:
            begins = ("; no oracle answer in the window: the answer in force, from before it, is not in "
                      "bt.price_path, so no oracle line is drawn")
        elif orc and ref and orc[0][0] > ref[0][0]:
            begins = (f"; the oracle line begins at its first answer in the window, "
                      f"{_duration(int(orc[0][0] - ref[0][0]))} after the reference's first point (the "
                      "answer in force before it is not in bt.price_path)")
        if orc and ref and orc[-1][0] < ref[-1][0]:
            orc.append((ref[-1][0], orc[-1][1]))
        ref_t = thin(ref)
        band = Band(
            f"reference ± {bps / 100:g} %",
            [(x, y * (1 - bps / 10_000)) for x, y in ref_t],
            [(x, y * (1 + bps / 10_000)) for x, y in ref_t],
        )
        label = d.label(key)
        svg = line_chart(
            f"{label}: oracle vs reference",
            [
                Series("oracle (what the protocol read)", thin(orc), PALETTE[1]),
                Series("reference", ref_t, PALETTE[0], dash=True),
            ],
            band=band,
            y_label=f"{d.currency} per token",
        )
        s.blocks.append(
            Plot(
                f"prices_{i}",
                svg,
                f"{label}, feed {d.label(feed)}: oracle answers in force (step) "
                f"against the reference path, with the deviation band ± {bps} bps ({band_from}){begins}; "
                f"prices in {d.currency} per whole token.",
            )
        )


def _duration(seconds: int) -> str:
    """``seconds`` as ``1 h 2 min 5 s``, ``4 min 0 s``, ``35 s``."""
    h, rest = divmod(seconds, 3600)
    m, sec = divmod(rest, 60)
    return (f"{h} h {m} min {sec} s" if h else f"{m} min {sec} s" if m else f"{sec} s")


def _oracle_lag_table(d: _Data, s: Section) -> None:
    if d.computed("oracle_lag", "bt.oracle_lag_feeds"):
        rows = d.q(
            "SELECT feed, pair, deviation_threshold_bps || ' (' || deviation_threshold_from || ')', "
            "heartbeat_s || ' (' || heartbeat_from || ')', updates, max_deviation_bps_f64, "
            "mean_deviation_bps_f64, beyond_threshold_s, max_staleness_s, beyond_heartbeat_s, "
            "hidden_insolvency_base_s_f64, hidden_accounts FROM bt.oracle_lag_feeds WHERE run_id = ? "
            "ORDER BY feed"
        )
        s.blocks.append(
            Table(
                (
                    "feed",
                    "pair",
                    "threshold bps (from)",
                    "heartbeat s (from)",
                    "updates",
                    "max dev bps",
                    "mean dev bps",
                    "s beyond threshold",
                    "max staleness s",
                    "s beyond heartbeat",
                    f"hidden insolvency {d.currency}·h",
                    "hidden accounts",
                ),
                [
                    (
                        d.label(r[0]),
                        r[1],
                        _fmt(r[2]),
                        _fmt(r[3]),
                        _fmt(r[4]),
                        _fmt(r[5]),
                        _fmt(r[6]),
                        _fmt(r[7]),
                        _fmt(r[8]),
                        _fmt(r[9]),
                        _fmt(None if r[10] is None else r[10] / 3600),
                        _fmt(r[11]),
                    )
                    for r in rows
                ],
            )
        )
    else:
        s.blocks.append(_missing("oracle_lag", ["bt.oracle_lag_feeds", "bt.hidden_insolvency"]))


def _bad_debt(d: _Data) -> Section:
    s = Section("Bad debt over time", "bad-debt")
    if not d.computed("bad_debt", "bt.bad_debt_blocks"):
        s.blocks.append(_missing("bad_debt", ["bt.bad_debt_blocks", "bt.bad_debt_accounts"]))
        return s
    rows = d.q(
        "SELECT block_ts, unrealized_oracle_value, unrealized_reference_value, realized_value "
        "FROM bt.bad_debt_blocks WHERE run_id = ? ORDER BY block_number"
    )
    # the rows stop at the last change; the figures hold until the window's end (older runs
    # without end_block_ts: the last row)
    last = rows[-1][0] if rows else 0
    window_end = d.fig("bad_debt", "end_block_ts")
    end_ts = max(last, window_end) if isinstance(window_end, int) else last
    # without a [reference] the metric's reference figures are the oracle ones (its fallback):
    # not shown as a market measure the run never had
    has_ref = d.scenario.get("reference") is not None
    series = []
    for j, name in ((1, "unrealized (oracle prices)"), (2, "unrealized (reference prices)"), (3, "realized")):
        if j == 2 and not has_ref:
            continue
        # (the columns are NOT NULL; accounts without a reference price count at oracle prices in
        # unrealized_reference_value): a NULL would leave its points out rather than draw a 0
        pts = [(float(r[0]), v) for r in rows if (v := d.base(r[j])) is not None]
        if pts:
            pts.append((float(end_ts), pts[-1][1]))
            series.append(Series(name, thin(pts), PALETTE[j - 1], dash=j == 2))
    s.blocks.append(
        Plot(
            "bad_debt",
            line_chart("Bad debt", series, y_label=d.currency, y_zero=True),
            "Unrealized bad debt (debt above collateral, summed over accounts) at oracle "
            + ("and at reference prices" if has_ref else "prices (the run has no reference path)")
            + ", and realized (booked deficits), at the end of each block where they changed.",
        )
    )
    f = d.fig
    s.blocks.append(
        Table(
            ("figure", "value"),
            [
                (
                    "bad debt at window end (unrealized + realized)",
                    d.money(f("bad_debt", "end_total_oracle_usd")),
                ),
                ("peak unrealized (oracle)", d.money(f("bad_debt", "peak_unrealized_oracle_usd"))),
                ("peak block", _fmt(f("bad_debt", "peak_unrealized_oracle_block"))),
                *([(
                    "peak unrealized (reference)",
                    d.money(d.base(f("bad_debt", "peak_unrealized_reference_value"))),
                )] if has_ref else []),
                ("realized", d.money(f("bad_debt", "realized_usd"))),
                ("accounts underwater at the end", _fmt(f("bad_debt", "end_accounts_underwater"))),
            ],
            "kv",
        )
    )
    if d.has("bt.bad_debt_accounts"):
        # an account's bad debt at a block is the sum of its reserves' rows at that block (one row
        # per debt reserve at each evaluation that changed it), exact in base currency units
        top = d.q(
            "SELECT user, max_by(reserves, block_number), max_by(total, block_number), max(total) "
            "FROM (SELECT user, block_number, sum(bad_debt_oracle_value) AS total, "
            "coalesce(list(reserve ORDER BY reserve) FILTER (WHERE bad_debt_oracle_value > 0), []) "
            "AS reserves "
            "FROM bt.bad_debt_accounts WHERE run_id = ? GROUP BY user, block_number) "
            "GROUP BY user HAVING max(total) > 0 ORDER BY 4 DESC, user LIMIT 10"
        )
        (n_bad,) = d.q("SELECT count(DISTINCT user) FROM bt.bad_debt_accounts WHERE run_id = ? "
                       "AND bad_debt_oracle_value > 0")[0]
        if top:
            s.blocks.append(Para(
                "Accounts with the largest peak bad debt"
                + (f" ({len(top)} of the {int(n_bad):,} accounts that had bad debt):" if int(n_bad) > len(top)
                   else ":")))
            s.blocks.append(
                Table(
                    ("account", "debt reserves at end", f"bad debt at end {d.currency}",
                     f"peak bad debt {d.currency}"),
                    [(r[0], ", ".join(d.label(a) for a in r[1]) if r[1] else "–",
                      d.amount(d.base(r[2])), d.amount(d.base(r[3]))) for r in top],
                )
            )
    return s


def _bucket(hf_wad: int) -> int:
    """The HF_BUCKETS bucket of an exact WAD health factor (not its float: one wei below 1e18,
    a liquidatable account, is 1.0 as a float)."""
    i = 0
    for j, lo in enumerate(HF_BUCKETS):
        if hf_wad >= Decimal(str(lo)) * 10**18:
            i = j
    return i


def _health(d: _Data) -> Section:
    s = Section("Health-factor distribution, before and after", "health")
    if not d.computed("paths", "bt.health_snapshots"):
        s.blocks.append(_missing("paths", ["bt.health_snapshots"]))
        return s
    labels = [
        f"{lo:g}–{HF_BUCKETS[i + 1]:g}" if i + 1 < len(HF_BUCKETS) else f"≥ {lo:g}"
        for i, lo in enumerate(HF_BUCKETS)
    ]
    counts = {"start": [0] * len(labels), "end": [0] * len(labels)}
    debt = {"start": [0.0] * len(labels), "end": [0.0] * len(labels)}
    for phase, hf, base in d.q(
        "SELECT phase, health_factor_wad, debt_base_f64 FROM bt.health_snapshots "
        "WHERE run_id = ? ORDER BY phase, user"
    ):
        b = _bucket(int(hf))
        counts[str(phase)][b] += 1
        debt[str(phase)][b] += float(base)
    s.blocks.append(
        Plot(
            "health_accounts",
            bar_chart(
                "Accounts with debt by health factor",
                labels,
                [("window start", counts["start"]), ("window end", counts["end"])],
                y_label="accounts",
                x_label="health factor (oracle prices)",
            ),
            "Indebted accounts by health factor at oracle prices, at the first and at the last block of "
            "the window.",
        )
    )
    s.blocks.append(
        Plot(
            "health_debt",
            bar_chart(
                "Debt by health factor",
                labels,
                [("window start", debt["start"]), ("window end", debt["end"])],
                y_label=d.currency,
                x_label="health factor (oracle prices)",
            ),
            f"The same, weighted by debt ({d.currency}).",
        )
    )
    s.blocks.append(
        Table(
            ("health factor", "accounts start", "accounts end", f"debt start {d.currency}",
             f"debt end {d.currency}"),
            [
                (
                    lab,
                    _fmt(counts["start"][i]),
                    _fmt(counts["end"][i]),
                    d.amount(debt["start"][i]),
                    d.amount(debt["end"][i]),
                )
                for i, lab in enumerate(labels)
            ],
        )
    )
    return s


def _liquidations(d: _Data) -> Section:
    s = Section("Liquidations", "liquidations")
    if not d.has("bt.liquidations"):
        s.blocks.append(_missing("liquidations", ["bt.liquidations"]))
        return s
    agg = d.q(
        "SELECT observed, committed, count(*), sum(debt_repaid_value), sum(collateral_seized_value), "
        "sum(protocol_fee_value), sum(gas_cost_value), sum(slippage_value), sum(flash_fee_value), "
        "sum(profit_value), sum(bad_debt_value), count(*) FILTER (WHERE protocol_fee_value IS NULL) "
        "FROM bt.liquidations WHERE run_id = ? GROUP BY ALL ORDER BY ALL"
    )
    if not agg:
        s.blocks.append(Para("No liquidation, observed or simulated, in this run.", "note"))
        return s
    rows = []
    for obs, com, n, rep, seized, fee, gas, slip, flash, profit, bad, fee_unknown in agg:
        origin = "observed" if obs else ("simulated, committed" if com else "simulated, prediction")
        # an unknown protocol fee (NULL: an observed v3 liquidation whose prediction reverted) is
        # left out of the sums, never taken as 0: its count is shown next to them
        rows.append(
            (
                origin,
                _fmt(int(n)),
                d.amount(d.base(rep)),
                d.amount(d.base(seized)),
                d.amount(d.base(fee)),
                _fmt(int(fee_unknown)),
                # the chain's liquidators' gas, slippage and profit are not known (the columns
                # hold 0 for observed rows): shown as unknown, not as a free liquidation
                d.amount(None if obs else d.base(gas)),
                d.amount(None if obs else d.base(slip)),
                d.amount(None if obs else d.base(profit)),
                d.amount(d.base(bad)),
            )
        )
        steps = [
            ("debt repaid", d.base(rep) or 0.0, "total"),
            ("liquidator bonus", (d.base(int(seized) - int(rep)) or 0.0), "delta"),
            ("protocol fee", d.base(fee) or 0.0, "delta"),
            ("collateral taken", d.base(int(seized) + int(fee or 0)) or 0.0, "total"),
        ]
        # [liquidator] prices = "reference": the profit is the trade at the market's prices, not
        # the oracle-valued bonus minus costs; the difference is its own step (0 under "oracle")
        market = 0 if obs else int(profit) - (int(seized) - int(rep) - int(gas) - int(slip) - int(flash))
        if not obs:
            steps += [
                ("repaid back", -(d.base(rep) or 0.0), "delta"),
                ("protocol fee out", -(d.base(fee) or 0.0), "delta"),
                ("gas", -(d.base(gas) or 0.0), "delta"),
                ("slippage", -(d.base(slip) or 0.0), "delta"),
                ("flash fee", -(d.base(flash) or 0.0), "delta"),
                *([("market vs oracle prices", d.base(market) or 0.0, "delta")] if market else []),
                ("profit", d.base(profit) or 0.0, "total"),
            ]
        slug = origin.replace(",", "").replace(" ", "_")
        s.blocks.append(
            Plot(
                f"waterfall_{slug}",
                waterfall(f"Liquidation waterfall: {origin} ({int(n)})", steps, y_label=d.currency),
                f"{origin}: debt repaid, plus the liquidator's bonus and the protocol fee, is the "
                "collateral taken from borrowers"
                + (
                    f" (the protocol fee of {int(fee_unknown)} of them is unknown: left out of the fee "
                    "and of the collateral taken)"
                    if fee_unknown
                    else ""
                )
                + (
                    "; minus the repayment, fee, gas, slippage and "
                    "flash-loan fee it leaves the liquidator's profit"
                    + (
                        " (the liquidator trades at the reference prices, [liquidator] prices = "
                        "\"reference\": the collateral it sells and the debt it buys there differ from "
                        "their oracle values by the 'market vs oracle prices' step)."
                        if market
                        else "."
                    )
                    if not obs
                    else "."
                ),
            )
        )
    s.blocks.insert(
        0,
        Table(
            (
                "origin",
                "count",
                f"debt repaid {d.currency}",
                f"collateral seized {d.currency}",
                f"protocol fee {d.currency}",
                "protocol fee unknown (count)",
                f"gas {d.currency}",
                f"slippage {d.currency}",
                f"profit {d.currency}",
                f"bad debt created {d.currency}",
            ),
            rows,
        ),
    )
    curves = []
    for j, (name, cond) in enumerate((("observed", "observed"), ("simulated", "NOT observed"))):
        pts = [
            (float(t), d.base(v) or 0.0)
            for t, v in d.q(
                f"SELECT block_ts, sum(sum(debt_repaid_value)) OVER (ORDER BY block_ts) FROM bt.liquidations "
                f"WHERE run_id = ? AND {cond} GROUP BY block_ts ORDER BY block_ts"
            )
        ]
        if pts:
            curves.append((j, name, pts))
    # each total holds to the window's end (bad_debt's end_block_ts; else the later origin's last
    # liquidation): a line stopping at its origin's last liquidation read as data that stopped
    window_end = d.fig("bad_debt", "end_block_ts")
    ends = [p[-1][0] for _, _, p in curves] + ([float(window_end)] if isinstance(window_end, int) else [])
    end_ts = max(ends, default=0.0)
    series = []
    for j, name, pts in curves:
        if pts[-1][0] < end_ts:
            pts.append((end_ts, pts[-1][1]))
        series.append(Series(f"{name}: cumulative debt repaid", thin(pts), PALETTE[j]))
    if series:
        s.blocks.append(
            Plot(
                "liquidations_cumulative",
                line_chart("Cumulative debt repaid by liquidations", series, y_label=d.currency,
                           y_zero=True),
                "Debt repaid by liquidations over time, observed on chain and by the liquidator model.",
            )
        )
    # per origin, the shortest DELAY_ROWS delays one row each, then one row for all longer ones
    # (a flat LIMIT cut the table off inside the observed rows: the simulated ones vanished)
    delays = d.q(
        "WITH d AS (SELECT CASE WHEN observed THEN 'observed' ELSE 'simulated' END AS origin, "
        "delay_blocks, count(*) AS n FROM bt.liquidations WHERE run_id = ? AND delay_blocks IS NOT NULL "
        "GROUP BY ALL), r AS (SELECT *, row_number() OVER (PARTITION BY origin ORDER BY delay_blocks) "
        "AS rank FROM d) "
        "SELECT origin, CASE WHEN rank <= ? THEN delay_blocks END AS shown, min(delay_blocks), "
        "max(delay_blocks), sum(n)::BIGINT FROM r GROUP BY origin, shown "
        "ORDER BY origin, min(delay_blocks)",
        DELAY_ROWS,
    )
    if delays:
        s.blocks.append(Para("Delay from first seen liquidatable to liquidated (blocks):"))
        s.blocks.append(
            Table(("origin", "delay blocks", "liquidations"),
                  [(a, _fmt(int(b)) if b is not None else f"{_fmt(lo)} … {_fmt(hi)}", _fmt(c))
                   for a, b, lo, hi, c in delays])
        )
    return s


def _socialization(d: _Data) -> Section:
    s = Section("Loss socialization", "socialization")
    if not d.computed("socialization", "bt.socialization", "bt.loss_bearers"):
        s.blocks.append(_missing("socialization", ["bt.socialization", "bt.loss_bearers"]))
        return s
    end = d.q(
        "SELECT reserve, loss_value, unrealized_value, deficit_value, treasury_reserve_value, "
        "suppliers_value, unbacked_value, "
        "supply_value, haircut_gross_bps_f64, haircut_net_bps_f64 FROM bt.socialization WHERE run_id = ? "
        "QUALIFY row_number() OVER (PARTITION BY reserve ORDER BY block_number DESC) = 1 ORDER BY reserve"
    )
    s.blocks.append(
        Table(
            (
                "reserve",
                f"loss {d.currency}",
                f"unrealized {d.currency}",
                f"deficit {d.currency}",
                f"treasury bears {d.currency}",
                f"suppliers bear {d.currency}",
                f"unbacked (no supplier) {d.currency}",
                f"supply {d.currency}",
                "haircut gross bps",
                "haircut net bps",
            ),
            [(d.label(r[0]), *(d.amount(d.base(v)) for v in r[1:8]), _fmt(r[8]), _fmt(r[9])) for r in end],
        )
    )
    bearers = d.q(
        "SELECT reserve, bearer, value FROM bt.loss_bearers WHERE run_id = ? QUALIFY block_number = "
        "max(block_number) OVER (PARTITION BY reserve) ORDER BY reserve, bearer"
    )
    names = sorted({str(b) for _, b, _ in bearers})
    reserves = sorted({str(r) for r, _, _ in bearers})
    if bearers and reserves:
        vals = {(str(r), str(b)): d.base(v) or 0.0 for r, b, v in bearers}
        s.blocks.append(
            Plot(
                "loss_bearers",
                bar_chart(
                    "Who bears the loss at the window end",
                    [d.label(r) for r in reserves],
                    [(b, [vals.get((r, b), 0.0) for r in reserves]) for b in names],
                    y_label=d.currency,
                ),
                "Each reserve's loss at the end of the window, partitioned by bearer.",
            )
        )
    elif not end:
        s.blocks.append(Para("No loss in any reserve.", "note"))
    return s


def _finality(d: _Data) -> Section:
    s = Section("Finality and reorg exposure", "finality")
    if not d.computed("finality"):
        s.blocks.append(_missing("finality", ["bt.finality_liquidations", "bt.reorg_exposure"]))
        return s
    s.blocks.append(
        Table(
            ("figure", "value"),
            [(n, d.figure(v, n)) for n, v in sorted(d.summaries.get("finality", {}).items())],
            "kv",
        )
    )
    if d.has("bt.finality_liquidations"):
        rows = d.q(
            "SELECT CASE WHEN observed THEN 'observed' WHEN committed THEN 'simulated' "
            "ELSE 'predicted (not committed)' END, final_when_acted, count(*), "
            "sum(debt_repaid_value) FROM bt.finality_liquidations WHERE run_id = ? GROUP BY ALL ORDER BY ALL"
        )
        s.blocks.append(
            Table(
                ("origin", "acted on a final block", "liquidations", f"debt repaid {d.currency}"),
                [(a, _fmt(b), _fmt(c), d.amount(d.base(v))) for a, b, c, v in rows],
            )
        )
    if d.has("bt.reorg_exposure"):
        rows = d.q(
            "SELECT block_number, old_tip_block, depth, detected_by_run, logs_removed, liquidations, "
            "liquidated_value, bt_rows FROM bt.reorg_exposure WHERE run_id = ? ORDER BY block_number"
        )
        if rows:
            s.blocks.append(
                Table(
                    (
                        "fork block",
                        "old tip",
                        "depth",
                        "detected by",
                        "logs removed",
                        "liquidations",
                        f"liquidated {d.currency}",
                        "bt rows in range",
                    ),
                    [
                        (_fmt(a), _fmt(b), _fmt(c), e, _fmt(f), _fmt(g), d.amount(d.base(h)), _fmt(i))
                        for a, b, c, e, f, g, h, i in rows
                    ],
                )
            )
        else:
            _reorgs_not_computed(d, s, "bt.reorg_exposure has no rows of this run")
    else:
        _reorgs_not_computed(d, s, "bt.reorg_exposure absent")
    return s


def _reorgs_not_computed(d: _Data, s: Section, why: str) -> None:
    """What meta.reorgs says of the window when bt.reorg_exposure has no row of the run: the table
    is written after every run with the finality metric (``backtest.run``) and for the runs of a
    finality attribution, so rows of other runs make it exist without saying anything of this one
    (a run without the metric, or written before it was)."""
    r = d.run
    touching = d.con.execute(
        "SELECT fork_block, old_tip_block, depth, run_id, logs_removed FROM meta.reorgs "
        "WHERE chain_id = ? AND fork_block + 1 <= ? AND old_tip_block >= ? ORDER BY fork_block, detected_at",
        [r["chain_id"], r["to_block"], r["from_block"]],
    ).fetchall() if d.has("meta.reorgs") else []
    if not touching:
        if d.has("meta.reorgs"):
            s.blocks.append(Para("No reorg recorded in meta.reorgs touches the window.", "note"))
        else:
            s.blocks.append(Para(f"Reorg exposure was not computed for this run ({why}: a run with the "
                                 "finality metric writes it).", "note"))
        return
    s.blocks.append(Para(
        f"Reorg exposure was not computed for this run ({why}: backtest.metrics.finality.reorg_exposure "
        f"writes it after a run), but meta.reorgs records {len(touching)} reorg(s) whose replaced blocks "
        "intersect the window: the run's rows in them are not counted here.", "note"))
    s.blocks.append(Table(
        ("fork block", "old tip", "depth", "detected by", "logs removed"),
        [(_fmt(a), _fmt(b), _fmt(c), e, _fmt(f)) for a, b, c, e, f in touching],
    ))


def _fidelity(d: _Data) -> Section:
    s = Section("Fidelity: observed against predicted", "fidelity")
    if not d.computed("fidelity"):
        s.blocks.append(_missing("fidelity", ["bt.fidelity"]))
        return s
    s.blocks.append(
        Table(("figure", "value"),
              [(n, d.figure(v, n)) for n, v in sorted(d.summaries.get("fidelity", {}).items())], "kv")
    )
    if d.has("bt.fidelity"):
        cols = [c[0] for c in d.con.execute("SELECT * FROM bt.fidelity LIMIT 0").description]
        # the columns that say whether the model got it right (the amounts' errors included:
        # the first ten columns in table order left them out), then others up to ten
        show = [c for c in FIDELITY_COLUMNS if c in cols]
        rest = [c for c in cols if c not in show and c not in ("run_id", "chain_id")]
        show += rest[: max(0, 10 - len(show))]
        # rows the model did not get exactly right first (a flat LIMIT showed the window's first
        # rows, so a mismatch after them was not in the report)
        wrong = " OR ".join(w for c, w in (
            ("matched", "NOT coalesce(matched, false)"), ("kind", "kind <> 'observed'"),
            ("block_error", "coalesce(block_error, 0) <> 0"),
            ("debt_repaid_error_raw", "coalesce(debt_repaid_error_raw, 0) <> 0"),
            ("collateral_seized_error_raw", "coalesce(collateral_seized_error_raw, 0) <> 0"),
            ("predicted_revert", "predicted_revert IS NOT NULL")) if c in cols) or "false"
        # then by position, then every other column: a total order (two rows of one user at one
        # block, predictions without a log index, must not swap between two builds of the report)
        keys = [c for c in ("block_number", "log_index", "user") if c in cols]
        order = ", ".join(f'"{c}"' for c in keys + [c for c in cols if c not in keys])
        (total,) = d.q("SELECT count(*) FROM bt.fidelity WHERE run_id = ?")[0]
        rows = d.q(
            f"SELECT {', '.join(chr(34) + c + chr(34) for c in show)} FROM bt.fidelity WHERE run_id = ? "
            f"ORDER BY ({wrong}) DESC, {order} LIMIT ?",
            FIDELITY_ROWS,
        )
        if rows:
            s.blocks.append(Table(show, [[_fmt(v) for v in r] for r in rows]))
            hidden = [c for c in cols if c not in show and c not in ("run_id", "chain_id")]
            if int(total) > len(rows) or hidden:
                s.blocks.append(Para(
                    f"Shown: {len(rows):,} of the run's {int(total):,} rows of bt.fidelity (those the "
                    "model did not get exactly right first)"
                    + (f"; columns not shown: {', '.join(hidden)}" if hidden else "")
                    + ". Every row is in bt.fidelity.", "note"))
    return s


def _all_figures(d: _Data) -> Section:
    s = Section("All headline figures", "figures")
    for m in sorted(d.summaries):
        s.blocks.append(Para(f"Metric {m}:"))
        s.blocks.append(
            Table(("figure", "value"), [(n, d.figure(v, n)) for n, v in sorted(d.summaries[m].items())], "kv")
        )
    return s


def _traced(svg: str, trace: str) -> str:
    """``svg`` with ``trace`` (the run's provenance) as its ``<desc>``, right after its title."""
    head, sep, rest = svg.partition("</title>")
    if not sep:
        return svg
    return f"{head}</title>\n<desc>{html.escape(visible(trace), quote=True)}</desc>{rest}"


def _folder(run_id: str) -> str:
    """The report's folder under ``out``: the run id with every character but ``[A-Za-z0-9._-]``
    and a leading dot replaced by ``_`` (a run id is any string, ``--run-id ../../x`` included:
    joined as a path, it put the report outside ``out``). Derived ids (``bt-<hex>``) are unchanged;
    an id that had a character replaced gets ``-`` and 12 hex digits of its sha256, so two ids
    that differ only there (``a b``, ``a_b``) do not share a folder (one report overwrote the other)."""
    folder = re.sub(r"^\.", "_", re.sub(r"[^A-Za-z0-9._-]", "_", run_id)) or "_"
    if folder != run_id:
        folder += "-" + hashlib.sha256(run_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return folder


def _drop_stale_plots(plots_dir: Path, keep: Sequence[Path]) -> None:
    """Remove the plots an earlier report of the folder wrote that this one does not (a run
    written again under its id with other data or metrics): only files ``deficit report`` wrote
    (their ``<desc>`` names it), never anything else in the folder."""
    kept = {p.name for p in keep}
    for p in sorted(plots_dir.glob("*.svg")):
        if p.name in kept or not p.is_file():
            continue
        try:
            head = p.read_text(encoding="utf-8", errors="replace")[:4096]
        except OSError:
            continue
        if "<desc>deficit report of run " in head:
            p.unlink()


def build_report(db: str, run_id: str, out: str | Path = "out") -> ReportFiles:
    """Write the HTML and Markdown reports of ``run_id`` (see the module docstring)."""
    wh = open_read_only(db)
    try:
        d = _Data(wh.con, run_id)
        sections = [
            _provenance(d),
            _prices(d),
            _bad_debt(d),
            _health(d),
            _liquidations(d),
            _socialization(d),
            _finality(d),
            _fidelity(d),
            _all_figures(d),
        ]
        headline = _headline(d)
        r = d.run
        # what a plot file copied out of the report (into slides, a ticket) still says about itself
        trace = (f"deficit report of run {r['run_id']}: scenario {r['scenario']} (sha256 "
                 f"{r['scenario_sha256']}), {r['mode']}, chain {r['chain_id']}, blocks {r['from_block']}"
                 f" ({r['from_block_hash'] or 'no hash: in-memory run'}) to {r['to_block']} "
                 f"({r['to_block_hash'] or 'no hash: in-memory run'}), data sources "
                 f"{', '.join(r['data_sources'] or []) or 'none'}, amounts in {d.currency}, code "
                 f"{r['code_version']}")
        doc = Document(
            f"deficit report: {r['scenario']}",
            f"run {r['run_id']} · {r['mode']}"
            f"{' (shocked prices)' if d.scenario.get('shocks') else ''} · chain {r['chain_id']} · blocks "
            f"{r['from_block']:,} … "
            f"{r['to_block']:,} · amounts in {d.currency} · scenario {r['scenario_sha256'][:16]} · "
            f"{r['code_version']}",
            sections,
        )
    finally:
        wh.close()
    base = Path(out) / _folder(run_id)
    plots_dir = base / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    plots = []
    for sec in sections:
        for b in sec.blocks:
            if isinstance(b, Plot):
                p = plots_dir / f"{b.name}.svg"
                write_atomic(p, _traced(b.svg, trace) + "\n")
                plots.append(p)
    _drop_stale_plots(plots_dir, plots)
    html_path, md_path = base / "report.html", base / "report.md"
    write_atomic(md_path, render_markdown(doc, "plots", headline))
    write_atomic(html_path, render_html(doc, headline))
    return ReportFiles(html_path, md_path, tuple(plots), run_id)
