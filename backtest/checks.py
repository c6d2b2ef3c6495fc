"""Regression checks for CI: ``[checks]`` thresholds in a scenario, evaluated on a run's headline
figures (``bt.summaries``), optionally against a baseline run; ``deficit check``.

::

    [checks]
    max_bad_debt_usd = 250000            # bad debt at the end of the window (unrealized + realized)
    max_unrealized_bad_debt_usd = 400000 # peak unrealized bad debt over the window (oracle prices)
    max_hidden_insolvency_usd_s = 1e9    # hidden-insolvency exposure (oracle_lag metric)
    min_fidelity_recall = 0.8            # fidelity metric: observed (user, block) pairs the model predicted
    min_fidelity_precision = 0.8         # ... predictions that happened
    max_bad_debt_rise_usd = 0            # against the baseline: rise of max_bad_debt_usd's figure
    max_bad_debt_rise_pct = 5            # ... in percent of the baseline's figure
    baseline = "baselines/eth-crash.json"  # optional (relative to the scenario file); --baseline wins

    [[checks.figure]]                    # any summary figure of any metric
    metric = "liquidations"
    name = "simulated_count"
    max = 40                             # and/or min; max_rise / max_rise_pct against the baseline

Each named threshold maps to one figure of ``bt.summaries`` (:data:`NAMED`); the metric it needs
must be in the scenario's metrics, or the scenario is rejected. Money is in the market's base
currency: for an Aave v2 market (ETH) the ``_usd`` keys are written ``_eth``
(``max_bad_debt_eth``, ``max_hidden_insolvency_eth_s``) and judge the ``_eth`` figures; a ``_usd``
key there is refused, since a limit is never converted between currencies. Validation happens when the
scenario is parsed (:func:`parse_checks`, called by :mod:`backtest.scenario`), with the same
:class:`~backtest.errors.ScenarioError` naming file, line and field.

A *baseline* is a previous run's summaries: a run id in the warehouse (``bt.runs`` +
``bt.summaries``) or a JSON file written by ``--write-baseline`` (format
``deficit-baseline/1``: the summaries, scenario name and hash, code version, window). A
parameter change that raises bad debt then fails ``max_bad_debt_rise_usd = 0``.

``deficit check`` exit codes: 0 every threshold holds, 1 at least one fails, 2 an error
(malformed scenario, missing data, a warehouse that cannot be opened, replay error, unreadable
baseline, a baseline of another window or currency, a figure name the metric does not report, a
``--junit`` or ``--write-baseline`` file that cannot be written, an internal error):
never 0 or 1 when nothing was judged. ``--junit FILE`` writes a
JUnit XML report (one testcase per threshold); every failed threshold is also printed as a
GitHub Actions annotation (``::error file=...,line=...,title=...::...``) pointing at the
threshold's line in the scenario, which GitHub shows on the pull request: on stdout, or on
stderr with ``--json`` (stdout is then the JSON document alone).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any, Literal

from ingest.errors import IngestError, is_interrupt

from .errors import BacktestError, InputError, MissingData, ScenarioError
from .files import write_atomic
from .metrics.fidelity import OBSERVED_ONLY as _FIDELITY_OBSERVED_ONLY

__all__ = ["NAMED", "named_in", "Threshold", "Checks", "Outcome", "Baseline", "parse_checks", "evaluate",
           "load_baseline", "baseline_from_run", "write_baseline", "junit_xml", "annotation",
           "BASELINE_FORMAT", "COMMANDS"]

BASELINE_FORMAT = "deficit-baseline/1"

Summaries = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Figure:
    """A headline figure: ``bt.summaries`` row (metric, name), what it means, its unit."""

    metric: str
    name: str
    meaning: str
    unit: str = ""


#: the named thresholds: key -> (min|max, figure, compared against a baseline as usd|pct|None)
BAD_DEBT = Figure("bad_debt", "end_total_oracle_usd", "bad debt at the end of the window "
                  "(unrealized at oracle prices + realized)", "USD")
NAMED: Mapping[str, tuple[Literal["min", "max"], Figure, Literal["abs", "pct"] | None]] = {
    "max_bad_debt_usd": ("max", BAD_DEBT, None),
    "max_unrealized_bad_debt_usd": ("max", Figure(
        "bad_debt", "peak_unrealized_oracle_usd", "peak unrealized bad debt over the window "
        "(oracle prices)", "USD"), None),
    "max_hidden_insolvency_usd_s": ("max", Figure(
        "oracle_lag", "hidden_insolvency_usd_s", "hidden insolvency: bad debt at reference prices "
        "the oracle did not show, integrated over time", "USD*s"), None),
    "min_fidelity_recall": ("min", Figure("fidelity", "recall", "share of observed (user, block) "
                                          "liquidation pairs the model predicted"), None),
    "min_fidelity_precision": ("min", Figure("fidelity", "precision", "share of predicted "
                                             "liquidations that were observed"), None),
    "max_bad_debt_rise_usd": ("max", BAD_DEBT, "abs"),
    "max_bad_debt_rise_pct": ("max", BAD_DEBT, "pct"),
}

_FIGURE_KEYS = ("metric", "name", "min", "max", "max_rise", "max_rise_pct")


def named_in(currency: str) -> dict[str, tuple[Literal["min", "max"], Figure, Literal["abs", "pct"] | None]]:
    """:data:`NAMED` for a market whose base currency is ``currency`` (lower case): a ``_usd`` in a
    key, a figure name and a unit becomes that currency (``max_bad_debt_eth`` judges
    ``bad_debt.end_total_oracle_eth`` in ETH, as :func:`backtest.engine._in_base_currency` names an
    Aave v2 run's figures). Money limits are never converted between currencies."""
    from .metrics.base import currency_name

    unit = currency.upper()
    return {currency_name(key, currency): (kind, Figure(fig.metric, currency_name(fig.name, currency),
                                                        fig.meaning, fig.unit.replace("USD", unit)), vs)
            for key, (kind, fig, vs) in NAMED.items()}


@dataclass(frozen=True)
class Threshold:
    """One threshold: ``key`` as written (``max_bad_debt_usd``, ``figure[0].max``), its scenario
    field path and line, the bound (``kind`` min/max, exact ``limit``), the figure it judges and
    whether it compares the figure's rise against a baseline (``vs_baseline``)."""

    key: str
    field: str
    line: int | None
    kind: Literal["min", "max"]
    limit: Decimal
    figure: Figure
    vs_baseline: Literal["abs", "pct"] | None = None

    @property
    def describe(self) -> str:
        f = self.figure
        what = f"{f.metric}.{f.name}"
        if self.vs_baseline == "abs":
            return f"rise of {what} against the baseline"
        if self.vs_baseline == "pct":
            return f"rise of {what} against the baseline, percent"
        return what


@dataclass(frozen=True)
class Checks:
    """A scenario's ``[checks]``: thresholds in file order, and an optional baseline reference
    (file path relative to the scenario, or a run id)."""

    thresholds: tuple[Threshold, ...] = ()
    baseline: str | None = None
    baseline_line: int | None = None

    @property
    def needs_baseline(self) -> bool:
        return any(t.vs_baseline for t in self.thresholds)


def _number(p: Any, v: object, path: str, *, unit_interval: bool = False) -> Decimal:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise p.err(path, f"expected a number, got {v!r}")
    d = Decimal(str(v))
    if not d.is_finite():
        raise p.err(path, f"expected a finite number, got {v!r}")
    if unit_interval and not 0 <= d <= 1:
        raise p.err(path, f"expected a number between 0 and 1, got {v!r}")
    return d


#: figures a counterfactual run never has (nothing is observed: ``None``), so a threshold on one
#: could never be judged there and failed (exit 1, "a threshold failed") on every run: fidelity's
#: figures that judge the replay against observations (``backtest.metrics.fidelity.OBSERVED_ONLY``:
#: recall, precision, mismatches, amount errors, ...)
_OBSERVED_ONLY = {("fidelity", n) for n in _FIDELITY_OBSERVED_ONLY}


def _observed_only(p: Any, path: str, fig: Figure, mode: str | None) -> None:
    if mode == "counterfactual" and (fig.metric, fig.name) in _OBSERVED_ONLY:
        raise p.err(path, f"{fig.metric}.{fig.name} is undefined (null) in a counterfactual run: nothing is "
                    "observed, so this threshold could never be judged; judge it on a historical scenario")


def parse_checks(p: Any, raw: object, metrics: Sequence[str], mode: str | None = None) -> Checks:
    """Validate a ``[checks]`` table (``p``: the scenario parser, :class:`backtest.scenario._P`,
    whose ``err(path, message)`` locates errors; ``metrics``: the scenario's metric names;
    ``mode``: the scenario's, to refuse thresholds on figures its runs never have)."""
    from .metrics import METRICS

    if not isinstance(raw, dict):
        raise p.err("checks", f"expected a table [checks], got {type(raw).__name__}")
    from .scenario import currencies

    currency = str(getattr(p, "currency", "usd"))
    named = named_in(currency)
    allowed = (*named, "figure", "baseline")
    elsewhere = {k: c for c in currencies() if c != currency for k in named_in(c) if k not in named}
    out: list[Threshold] = []
    baseline = None
    for key, v in raw.items():
        path = f"checks.{key}"
        if key == "baseline":
            if not isinstance(v, str) or not v:
                raise p.err(path, f"expected a baseline file path or run id, got {v!r}")
            baseline = v
            continue
        if key == "figure":
            out += _figures(p, v, metrics, METRICS, mode)
            continue
        if key in elsewhere:
            own = key.replace(f"_{elsewhere[key]}", f"_{currency}")
            raise p.err(path, f"{key} is in {elsewhere[key].upper()}, but this {getattr(p, 'protocol', '')} "
                        f"market's figures are in {currency.upper()} (its oracle's base currency; limits "
                        f"are not converted); write {own} (in {currency.upper()})")
        if key not in named:
            raise p.err(path, f"unknown threshold {key!r}; allowed: {list(allowed)}")
        kind, fig, vs = named[key]
        limit = _number(p, v, path, unit_interval=key.startswith("min_fidelity"))
        if kind == "max" and limit < 0 and vs is None:
            raise p.err(path, f"expected a number >= 0, got {v!r}")
        if fig.metric not in metrics:
            raise p.err(path, f"{key} judges metric {fig.metric!r} ({fig.metric}.{fig.name}), which this "
                        f"scenario does not compute; add it to [metrics] names (computed: {list(metrics)})")
        _observed_only(p, path, fig, mode)
        out.append(Threshold(key, path, p.err(path, "").line, kind, limit, fig, vs))
    return Checks(tuple(out), baseline, p.err("checks.baseline", "").line if baseline else None)


def _figures(p: Any, v: object, metrics: Sequence[str], registered: Mapping[str, str],
             mode: str | None = None) -> list[Threshold]:
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        raise p.err("checks.figure", "expected an array of tables [[checks.figure]]")
    out: list[Threshold] = []
    for i, t in enumerate(v):
        path = f"checks.figure[{i}]"
        extra = sorted(set(t) - set(_FIGURE_KEYS))
        if extra:
            raise p.err(f"{path}.{extra[0]}", f"unknown key {extra[0]!r}; allowed: {list(_FIGURE_KEYS)}")
        for k in ("metric", "name"):
            if not isinstance(t.get(k), str) or not t[k]:
                raise p.err(f"{path}.{k}", f"missing or empty {k!r} (a string)")
        metric, name = t["metric"], t["name"]
        if metric not in registered:
            raise p.err(f"{path}.metric", f"unknown metric {metric!r}; registered: {sorted(registered)}")
        if metric not in metrics:
            raise p.err(f"{path}.metric", f"metric {metric!r} is not computed by this scenario; add it to "
                        f"[metrics] names (computed: {list(metrics)})")
        bounds = [k for k in ("min", "max", "max_rise", "max_rise_pct") if k in t]
        if not bounds:
            raise p.err(path, "give at least one of min, max, max_rise, max_rise_pct")
        unit = ""
        if name.endswith("_value") and getattr(p, "protocol", ""):
            # *_value figures are integers in the market's base units (Aave v3: 1e-8 USD), not
            # whole currency: say so next to every number and limit, or a limit written in USD
            # reads as one 10^8 times looser than it is
            from protocols.registry import adapter_class

            cls = adapter_class(p.protocol)
            unit = f"x 1e-{len(str(cls.base_unit)) - 1} {cls.base_currency}"
        fig = Figure(metric, name, f"{metric} figure {name}", unit)
        _observed_only(p, f"{path}.name", fig, mode)
        for k in bounds:
            fp = f"{path}.{k}"
            limit = _number(p, t[k], fp)
            kind: Literal["min", "max"] = "min" if k == "min" else "max"
            vs: Literal["abs", "pct"] | None = {"max_rise": "abs", "max_rise_pct": "pct"}.get(k)  # type: ignore[assignment]
            out.append(Threshold(f"figure[{i}].{k}", fp, p.err(fp, "").line, kind, limit, fig, vs))
    return out


# ----------------------------------------------------------------------------- evaluation

@dataclass(frozen=True)
class Baseline:
    """A previous run's headline figures and identity."""

    run_id: str
    scenario: str
    scenario_sha256: str
    code_version: str
    summaries: Summaries
    origin: str  # "warehouse <path>" or the file
    window: tuple[int, int] | None = None

    def as_json(self) -> dict[str, Any]:
        return {"format": BASELINE_FORMAT, "run_id": self.run_id, "scenario": self.scenario,
                "scenario_sha256": self.scenario_sha256, "code_version": self.code_version,
                "window": list(self.window) if self.window else None,
                "summaries": {m: dict(sorted(v.items())) for m, v in sorted(self.summaries.items())}}


@dataclass(frozen=True)
class Outcome:
    """A threshold's verdict on a run: the figure (and baseline figure), whether it held, and a
    one-line message naming the figure, the threshold and the run."""

    threshold: Threshold
    ok: bool
    value: float | int | None
    baseline_value: float | int | None
    compared: float | None  # what was compared with the limit (value, rise or rise percent)
    message: str

    def as_json(self) -> dict[str, Any]:
        t = self.threshold
        return {"threshold": t.key, "field": t.field, "line": t.line, "kind": t.kind,
                "limit": _num_json(t.limit), "metric": t.figure.metric, "figure": t.figure.name,
                "vs_baseline": t.vs_baseline, "value": _json_num(self.value),
                "baseline_value": _json_num(self.baseline_value), "compared": _json_num(self.compared),
                "ok": self.ok, "message": self.message}


def _json_num(v: float | int | None) -> float | int | str | None:
    """``v`` for JSON: a non-finite float (an infinite rise against a zero baseline) as the string
    ``"+inf"``/``"-inf"``/``"NaN"``: ``json.dumps`` would write ``Infinity``, which is not JSON."""
    if isinstance(v, float) and not math.isfinite(v):
        return _fmt(v)
    return v


def _num_json(d: Decimal) -> int | float:
    return int(d) if d == d.to_integral_value() else float(d)


def _fmt(v: float | int | Decimal | None, unit: str = "") -> str:
    if v is None:
        return "null"
    d = Decimal(str(v))
    if not d.is_finite():  # an infinite rise against a zero baseline, a non-finite figure
        return f"{'NaN' if d.is_nan() else '-inf' if d < 0 else '+inf'} {unit}".rstrip()
    if d == d.to_integral_value():
        s = f"{int(d):,}"
    else:
        s = f"{float(d):,.6g}" if abs(d) < 1 else f"{float(d):,.2f}"
    return f"{s} {unit}".rstrip()


def _fmt_limit(d: Decimal, unit: str = "") -> str:
    """A threshold as written (``40.905``, not rounded to ``40.91``)."""
    s = f"{int(d):,}" if d == d.to_integral_value() else f"{d.normalize():,f}"
    return f"{s} {unit}".rstrip()


def _fmt_vs(v: float | int | Decimal | None, limit: Decimal, unit: str = "") -> str:
    """``v`` as :func:`_fmt` shows it, unless that rounding makes it read equal to ``limit`` or
    on the other side of it (``40.91 > 40.91``, ``recall 0.8 < 0.8``): then every digit."""
    s = _fmt(v, unit)
    if v is None or isinstance(v, bool):
        return s
    d = Decimal(str(v))
    if not d.is_finite():
        return s
    try:
        shown = Decimal(s.removesuffix(unit).strip().replace(",", ""))
    except ArithmeticError:
        return s
    if (shown > limit) != (d > limit) or (shown < limit) != (d < limit):
        return f"{d.normalize():,f} {unit}".rstrip()
    return s


def _lookup(summaries: Summaries, fig: Figure) -> tuple[bool, Any]:
    m = summaries.get(fig.metric)
    if m is None or fig.name not in m:
        return False, None
    return True, m[fig.name]


def _is_number(v: object) -> bool:
    """A figure a threshold can judge: an int or float, not a bool, not NaN (NaN compares with
    nothing; +-inf compares, and fails or holds as any number would)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and
                                                                          math.isnan(v))


def _currency_of(summaries: Summaries) -> str | None:
    """The base currency a run's summaries say they are in (None: not recorded, older runs)."""
    for m in sorted(summaries):
        c = summaries[m].get("base_currency")
        if isinstance(c, str):
            return c
    return None


def evaluate(checks: Checks, summaries: Summaries, run_id: str, baseline: Baseline | None = None,
             window: tuple[int, int] | None = None) -> list[Outcome]:
    """Judge every threshold on a run's summaries (``{metric: {name: value}}``). A null or
    non-number figure fails its threshold (with a message saying so). What cannot be judged is
    an :class:`InputError` (exit 2), not a failure: a figure name the metric does not report (a
    typo would otherwise pass for a regression), and a rise against a baseline of another
    currency or, when ``window`` (the run's ``(from_block, to_block)``) is given, of another
    window (a rise between two windows measures the windows, not the change)."""
    if baseline is not None and checks.needs_baseline:
        cur, bcur = _currency_of(summaries), _currency_of(baseline.summaries)
        if cur and bcur and cur != bcur:  # a rise of wei against USD units would mean nothing
            raise InputError(f"the baseline {baseline.run_id} ({baseline.origin}) is in {bcur}, run {run_id} "
                             f"in {cur}: their figures cannot be compared")
        if window is not None and baseline.window is not None and tuple(baseline.window) != tuple(window):
            raise InputError(f"the baseline {baseline.run_id} ({baseline.origin}) covers blocks "
                             f"{baseline.window[0]}..{baseline.window[1]}, run {run_id} blocks {window[0]}.."
                             f"{window[1]}: a rise between two windows is not the change's; make the "
                             "baseline on the same window")
    for t in checks.thresholds:
        m = summaries.get(t.figure.metric)
        if m is not None and t.figure.name not in m:
            where = f"line {t.line}: " if t.line else ""
            raise InputError(f"{where}{t.field}: metric {t.figure.metric!r} has no figure {t.figure.name!r} "
                             f"(it reports: {', '.join(sorted(m))})")
    out = []
    for t in checks.thresholds:
        fig, unit = t.figure, t.figure.unit
        have, v = _lookup(summaries, fig)
        bv = None
        label = f"{fig.metric}.{fig.name}"
        if not have:
            out.append(Outcome(t, False, None, None, None, f"{label} is not in run {run_id}'s summaries "
                               f"(metric {fig.metric!r} was not computed)"))
            continue
        if not _is_number(v):
            out.append(Outcome(t, False, None, None, None, f"{label} is {json.dumps(v)} in run {run_id} "
                               "(not a number: undefined for this run, cannot be judged)"))
            continue
        compared: float | int | Decimal = v
        if t.vs_baseline:
            if baseline is None:
                raise InputError(f"{t.field} compares against a baseline; pass --baseline RUN_ID|FILE "
                                 "or set [checks] baseline")
            bhave, bv = _lookup(baseline.summaries, fig)
            if not bhave or not _is_number(bv):
                bv = None
                out.append(Outcome(t, False, v, None, None, f"the baseline {baseline.run_id} has no number "
                                   f"for {label} ({baseline.origin})"))
                continue
            with localcontext() as ctx:  # inf - inf, x / inf: NaN, not decimal.InvalidOperation
                ctx.traps[InvalidOperation] = False
                rise = Decimal(str(v)) - Decimal(str(bv))
                if t.vs_baseline == "abs":
                    compared = rise
                elif bv:
                    compared = rise * 100 / abs(Decimal(str(bv)))
                else:
                    compared = Decimal(0) if rise == 0 else Decimal("Infinity" if rise > 0 else "-Infinity")
            if isinstance(compared, Decimal) and compared.is_nan():  # inf against an inf baseline
                what = "rise" if t.vs_baseline == "abs" else "rise in %"
                out.append(Outcome(t, False, v, bv, None, f"the {what} of {label} is undefined "
                                   f"({_fmt(bv, unit)} in baseline {baseline.run_id} -> {_fmt(v, unit)} "
                                   f"in run {run_id}): cannot be judged"))
                continue
        c = Decimal(str(compared))
        ok = c <= t.limit if t.kind == "max" else c >= t.limit
        op = ("<=" if ok else ">") if t.kind == "max" else (">=" if ok else "<")
        cf = float(c)
        bid = baseline.run_id if baseline else ""
        if t.vs_baseline == "abs":
            msg = (f"{label} rose by {_fmt_vs(c, t.limit, unit)} ({_fmt(bv, unit)} in baseline {bid} -> "
                   f"{_fmt(v, unit)} in run {run_id}): {op} the allowed rise {t.key} = "
                   f"{_fmt_limit(t.limit, unit)}")
        elif t.vs_baseline == "pct":
            msg = (f"{label} rose by {_fmt_vs(c, t.limit)} % ({_fmt(bv, unit)} in baseline {bid} -> "
                   f"{_fmt(v, unit)} in run {run_id}): {op} the allowed {t.key} = {_fmt_limit(t.limit)} %")
        else:
            msg = (f"{label} = {_fmt_vs(v, t.limit, unit)} in run {run_id}: {op} {t.key} = "
                   f"{_fmt_limit(t.limit, unit)}")
        out.append(Outcome(t, ok, v, bv, cf, msg))
    return out


# ----------------------------------------------------------------------------- baselines

def summaries_of(con: Any, run_id: str) -> dict[str, dict[str, Any]]:
    """``{metric: {name: value}}`` of a run from ``bt.summaries`` (exact values from value_text)."""
    out: dict[str, dict[str, Any]] = {}
    rows = con.execute("SELECT metric, name, value_text FROM bt.summaries WHERE run_id = ? "
                       "ORDER BY metric, name", [run_id]).fetchall()
    for metric, name, text in rows:
        out.setdefault(str(metric), {})[str(name)] = json.loads(text)
    return out


def baseline_from_run(db: str, run_id: str) -> Baseline:
    """A baseline from a run stored in the warehouse ``db``."""
    from ingest.errors import WarehouseError
    from ingest.warehouse import Warehouse

    if db != ":memory:" and not Path(db).exists():
        raise InputError(f"baseline run {run_id}: warehouse {db} does not exist")
    try:
        wh = Warehouse(db, read_only=True)
    except WarehouseError as e:
        raise InputError(f"baseline run {run_id}: {e}") from None
    try:
        has = wh.con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'bt' AND "
                             "table_name IN ('runs', 'summaries')").fetchall()[0][0]
        if has != 2:
            raise InputError(f"baseline run {run_id}: {db} has no bt.runs/bt.summaries (no backtest ran "
                             "there)")
        row = wh.con.execute("SELECT scenario, scenario_sha256, code_version, from_block, to_block "
                             "FROM bt.runs WHERE run_id = ?", [run_id]).fetchall()
        if not row:
            known = [r[0] for r in wh.con.execute("SELECT run_id FROM bt.runs ORDER BY run_id LIMIT 20")
                     .fetchall()]
            raise InputError(f"baseline run {run_id!r} is not in {db} (runs: {known or 'none'}); "
                             "give a run id from `deficit runs` or a baseline JSON file")
        sc, sha, ver, fb, tb = row[0]
        return Baseline(run_id, str(sc), str(sha), str(ver), summaries_of(wh.con, run_id), f"warehouse {db}",
                        (int(fb), int(tb)))
    finally:
        wh.close()


def load_baseline(path: str | Path) -> Baseline:
    """Read a baseline JSON file (``--write-baseline``); :class:`InputError` naming the file and
    the field when it is not one."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"baseline {path}: cannot read: {e.strerror}") from None
    try:  # JSON is UTF-8 (RFC 8259), whatever the locale's encoding
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise InputError(f"baseline {path}: not UTF-8 text: byte 0x{data[e.start]:02x} at offset {e.start} "
                         "cannot be decoded") from None
    except json.JSONDecodeError as e:
        raise InputError(f"baseline {path}:{e.lineno}: not valid JSON: {e.msg}") from None
    if not isinstance(doc, dict) or doc.get("format") != BASELINE_FORMAT:
        raise InputError(f"baseline {path}: field 'format': expected {BASELINE_FORMAT!r}, got "
                         f"{doc.get('format') if isinstance(doc, dict) else type(doc).__name__!r}")
    for k in ("run_id", "scenario", "scenario_sha256", "code_version"):
        if not isinstance(doc.get(k), str):
            raise InputError(f"baseline {path}: field {k!r}: expected a string, got {doc.get(k)!r}")
    s = doc.get("summaries")
    if not isinstance(s, dict) or not all(isinstance(v, dict) for v in s.values()):
        raise InputError(f"baseline {path}: field 'summaries': expected {{metric: {{name: value}}}}")
    w = doc.get("window")
    window = None
    if w is not None:
        if not (isinstance(w, list) and len(w) == 2 and all(isinstance(x, int) for x in w)):
            raise InputError(f"baseline {path}: field 'window': expected [from_block, to_block], got {w!r}")
        window = (w[0], w[1])
    return Baseline(doc["run_id"], doc["scenario"], doc["scenario_sha256"], doc["code_version"], s, str(path),
                    window)


def write_baseline(path: str | Path, baseline: Baseline) -> None:
    """Write ``baseline`` as JSON (sorted keys; the same run gives the same bytes)."""
    write_atomic(path, json.dumps(baseline.as_json(), indent=2, sort_keys=True) + "\n")


# ----------------------------------------------------------------------------- CI outputs

def _gh_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(s: str) -> str:
    return _gh_data(s).replace(":", "%3A").replace(",", "%2C")


def annotation(scenario_file: str, line: int | None, title: str, message: str) -> str:
    """A GitHub Actions ``::error`` workflow command (shown on the file's line in the PR)."""
    props = [f"file={_gh_prop(scenario_file)}", *([f"line={line}"] if line else []),
             f"title={_gh_prop(title)}"]
    return f"::error {','.join(props)}::{_gh_data(message)}"


#: characters XML 1.0 cannot hold, even escaped (C0 controls but tab/LF/CR, surrogates, U+FFFE/F)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(s: str) -> str:
    """``s`` with every character XML cannot hold shown as its escape (``\\u0007``): written as
    it is, one made the whole JUnit file ill-formed (a scenario name is any TOML string)."""
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", s)


def junit_xml(scenario_name: str, scenario_file: str, run_id: str | None, outcomes: Sequence[Outcome],
              error: str | None = None, properties: Mapping[str, str] | None = None, *,
              started_at: str | None = None, elapsed_s: float | None = None) -> bytes:
    """JUnit XML: one testsuite, one testcase per threshold (a failure carries the figure, the
    threshold and the run id); an error (before evaluation, or after it: a --write-baseline file
    that cannot be written) is one more, errored testcase. Counts equal the testcases. The suite's
    ``timestamp`` (UTC) and ``time`` (seconds, the replay included) when given; a threshold's own
    evaluation takes no measurable time, so the testcases carry none."""
    attrs = {"name": f"deficit check {scenario_name}", "tests": str(len(outcomes) + (1 if error else 0)),
             "failures": str(sum(not o.ok for o in outcomes)), "errors": "1" if error else "0",
             "skipped": "0"}
    if started_at is not None:
        attrs["timestamp"] = started_at
    if elapsed_s is not None:
        attrs["time"] = f"{elapsed_s:.3f}"
    suite = ET.Element("testsuite", attrs)
    props = ET.SubElement(suite, "properties")
    all_props = {**(properties or {}), "scenario_file": scenario_file, "run_id": run_id or ""}
    for k, v in sorted(all_props.items()):
        ET.SubElement(props, "property", {"name": k, "value": v})
    classname = f"deficit.check.{scenario_name}"
    if error is not None:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": "scenario",
                                                  "file": scenario_file})
        e = ET.SubElement(case, "error", {"message": error, "type": "error"})
        e.text = error
    for o in outcomes:
        t = o.threshold
        attrs = {"classname": classname, "name": t.key, "file": scenario_file}
        if t.line:
            attrs["line"] = str(t.line)
        case = ET.SubElement(suite, "testcase", attrs)
        if not o.ok:
            f = ET.SubElement(case, "failure", {"message": o.message, "type": "threshold"})
            f.text = (f"{o.message}\nthreshold: {t.field} = {_fmt_limit(t.limit)} ({t.kind}) at "
                      f"{scenario_file}:{t.line or '?'}\nfigure: {t.describe}: {t.figure.meaning}\n"
                      f"run: {run_id}")
        else:
            out = ET.SubElement(case, "system-out")
            out.text = o.message
    root = ET.Element("testsuites", {"name": "deficit check", "tests": suite.get("tests", "0"),
                                     "failures": suite.get("failures", "0"),
                                     "errors": suite.get("errors", "0"),
                                     **({"time": dur} if (dur := suite.get("time")) else {})})
    root.append(suite)
    for el in root.iter():
        el.attrib = {k: _xml_text(v) for k, v in el.attrib.items()}
        if el.text:
            el.text = _xml_text(el.text)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


# ----------------------------------------------------------------------------- command

@dataclass
class CheckReport:
    """What ``deficit check`` decided (printed as text or JSON)."""

    scenario: str
    scenario_file: str
    run_id: str | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    baseline: Baseline | None = None
    error: str | None = None
    error_line: int | None = None
    #: when the check started (UTC, ISO 8601 to the second) and how long it took, replay
    #: included (the JUnit testsuite's timestamp and time); None until run_check sets them
    started_at: str | None = None
    elapsed_s: float | None = None

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return 2
        return 0 if all(o.ok for o in self.outcomes) else 1

    @property
    def status(self) -> str:
        return {0: "passed", 1: "failed", 2: "error"}[self.exit_code]

    def as_json(self) -> dict[str, Any]:
        b = self.baseline
        return {"scenario": self.scenario, "scenario_file": self.scenario_file, "run_id": self.run_id,
                "status": self.status, "exit_code": self.exit_code, "error": self.error,
                "baseline": None if b is None else {"run_id": b.run_id, "origin": b.origin,
                                                    "scenario_sha256": b.scenario_sha256,
                                                    "code_version": b.code_version},
                "checks": [o.as_json() for o in self.outcomes]}


def _resolve_baseline(ref: str, relative_to: Path | None, db: str) -> Baseline:
    """A baseline file (``.json`` or an existing path) or else a run id in ``db``. A file named in
    [checks] (``relative_to``: the scenario's folder) is relative to the scenario, never to the
    current directory (a same-named file there would be another scenario's baseline)."""
    cand = Path(ref)
    if relative_to is not None and not cand.is_absolute():
        cand = relative_to / ref
    if cand.suffix == ".json" or cand.exists():
        return load_baseline(cand)
    return baseline_from_run(db, ref)


def run_check(scenario_path: str, *, db: str | None = None, baseline: str | None = None,
              run_id: str | None = None) -> CheckReport:
    """Load, run and judge a scenario (the ``deficit check`` logic without printing)."""
    import datetime as dt
    import time

    started = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None).isoformat()
    t0 = time.monotonic()
    rep = _run_check(scenario_path, db, baseline, run_id)
    rep.started_at, rep.elapsed_s = started, time.monotonic() - t0
    return rep


def _run_check(scenario_path: str, db: str | None, baseline: str | None, run_id: str | None) -> CheckReport:
    from ingest.warehouse import DEFAULT_DB

    from .api import run
    from .scenario import load_scenario, shock_error
    from .shocks import ShockError

    rep = CheckReport(Path(scenario_path).stem, scenario_path)
    try:
        sc = load_scenario(scenario_path)
    except ScenarioError as e:
        rep.error, rep.error_line = str(e), e.line
        return rep
    rep.scenario = sc.name
    checks: Checks = sc.checks or Checks()
    if not checks.thresholds:
        rep.error = f"{scenario_path}: no thresholds: add a [checks] table (see backtest.checks)"
        return rep
    path = str(db or sc.warehouse or DEFAULT_DB)
    try:
        ref = baseline or checks.baseline
        if checks.needs_baseline and ref is None:
            t = next(t for t in checks.thresholds if t.vs_baseline)
            rep.error_line = t.line
            where = f"{scenario_path}:{t.line}" if t.line else scenario_path
            raise InputError(f"{where}: {t.field}: compares against a baseline; pass "
                             "--baseline RUN_ID|FILE or set baseline in [checks]")
        if ref is not None:
            rel = Path(scenario_path).parent if baseline is None else None
            rep.baseline = _resolve_baseline(ref, rel, path)
        res = run(sc, db=path, run_id=run_id)
        rep.run_id = res.run_id
        rep.outcomes = evaluate(checks, res.summary, res.run_id, rep.baseline,
                                (res.scenario.from_block, res.scenario.to_block))
    except ScenarioError as e:
        rep.error, rep.error_line = str(e), e.line
    except MissingData as e:  # the message names the data; say which scenario needed it
        rep.error = f"{scenario_path}: {e}"
    except BacktestError as e:
        rep.error = str(e)
    except IngestError as e:  # the warehouse cannot be read (not a DuckDB file, locked): not judged
        rep.error = f"{type(e).__name__}: {e}"
    except ShockError as e:  # a shock that does not fit the window's price paths
        err = shock_error(sc, e)
        rep.error, rep.error_line = str(err), err.line
    return rep


def _add_check(sub: Any) -> None:
    p = sub.add_parser("check", help="run a scenario and judge its [checks] thresholds (CI): exit 0 all "
                       "hold, 1 one fails, 2 error",
                       description="Run a scenario and judge its [checks] thresholds (docs/ci.md). Exit "
                       "codes: 0 every threshold holds; 1 at least one threshold failed (a null or NaN "
                       "figure fails); 2 an error, nothing or not everything judged (malformed scenario, "
                       "missing data, replay error, unreadable warehouse or baseline, a baseline of "
                       "another window or currency, a figure name the metric does not report, a --junit "
                       "or --write-baseline file that cannot be written, an internal error).")
    p.add_argument("scenario", help="scenario TOML file with a [checks] table")
    p.add_argument("--db", default=None, help="warehouse file (default: the scenario's, else "
                   "data/warehouse.duckdb)")
    p.add_argument("--baseline", default=None, metavar="RUN_ID|FILE",
                   help="baseline: a run id in the warehouse or a baseline JSON file (--write-baseline)")
    p.add_argument("--write-baseline", default=None, metavar="FILE",
                   help="write this run's figures as a baseline JSON file")
    p.add_argument("--junit", default=None, metavar="FILE", help="write a JUnit XML report")
    p.add_argument("--run-id", default=None, help="run id (default: derived)")
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")


def _cmd_check(args: argparse.Namespace) -> int:
    """Exit 0/1/2. Nothing may leave as an uncaught exception: Python exits 1 then, which reads
    as 'a threshold failed'."""
    try:
        return _check_and_report(args)
    except Exception as e:
        # Ctrl-C during a DuckDB query (130), the reader of stdout gone (141): the command's own
        if is_interrupt(e) or isinstance(e, BrokenPipeError):
            raise
        import traceback

        traceback.print_exc()
        sys.stderr.write(f"error: internal error ({type(e).__name__}): {e}\n")
        return 2


def _check_and_report(args: argparse.Namespace) -> int:
    try:
        rep = run_check(args.scenario, db=args.db, baseline=args.baseline, run_id=args.run_id)
    except Exception as e:  # a bug: its traceback, and exit 2 (an uncaught one exits 1, "a threshold failed")
        if is_interrupt(e):  # Ctrl-C during a DuckDB query: the command's 130, not an internal error
            raise
        import traceback

        traceback.print_exc()
        rep = CheckReport(Path(args.scenario).stem, args.scenario,
                          error=f"internal error ({type(e).__name__}): {e}; nothing was judged")
    out = sys.stdout
    if rep.error is None and args.write_baseline and rep.run_id is not None:
        from ingest.warehouse import DEFAULT_DB

        from .scenario import load_scenario

        try:
            sc = load_scenario(args.scenario)
            write_baseline(args.write_baseline,
                           baseline_from_run(str(args.db or sc.warehouse or DEFAULT_DB), rep.run_id))
        except OSError as e:
            rep.error = f"--write-baseline {args.write_baseline}: cannot write: {_os_reason(e)}"
        except (BacktestError, IngestError) as e:  # the run's rows cannot be read back (locked since)
            rep.error = f"--write-baseline {args.write_baseline}: {e}"
    if args.junit:
        try:
            write_atomic(args.junit, junit_xml(rep.scenario, args.scenario, rep.run_id, rep.outcomes,
                                               rep.error, started_at=rep.started_at, elapsed_s=rep.elapsed_s))
        except OSError as e:
            rep.error = f"--junit {args.junit}: cannot write: {_os_reason(e)}"
    if args.json:
        out.write(json.dumps(rep.as_json(), indent=2, sort_keys=True, default=str) + "\n")
    else:
        _print_text(rep, out)
    # with --json, stdout is the JSON document alone (a failed threshold made it unparseable:
    # the annotations followed it); the runner reads workflow commands on stderr as well
    ann = sys.stderr if args.json else out
    if rep.error is not None:
        sys.stderr.write(f"error: {rep.error}\n")
        ann.write(annotation(args.scenario, rep.error_line, "deficit check: error", rep.error) + "\n")
    for o in rep.outcomes:
        if not o.ok:
            title = f"deficit check: {o.threshold.key}"
            ann.write(annotation(args.scenario, o.threshold.line, title, o.message) + "\n")
    return rep.exit_code


def _os_reason(e: OSError) -> str:
    return f"{e.strerror or e}" + (f" ({e.filename})" if e.filename else "")


def _print_text(rep: CheckReport, out: Any) -> None:
    if rep.error is not None and not rep.outcomes:
        out.write(f"deficit check {rep.scenario_file}: ERROR\n")
        return
    out.write(f"deficit check {rep.scenario_file}: run {rep.run_id}\n")
    if rep.baseline is not None:
        b = rep.baseline
        out.write(f"  baseline {b.run_id} ({b.origin}; scenario {b.scenario} {b.scenario_sha256[:12]}, "
                  f"code {b.code_version})\n")
    width = max(len(o.threshold.key) for o in rep.outcomes)
    for o in rep.outcomes:
        out.write(f"  {'PASS' if o.ok else 'FAIL'}  {o.threshold.key:<{width}}  {o.message}\n")
    n_fail = sum(not o.ok for o in rep.outcomes)
    noun = "threshold" if len(rep.outcomes) == 1 else "thresholds"
    out.write(f"{len(rep.outcomes)} {noun}: {len(rep.outcomes) - n_fail} passed, {n_fail} failed"
              f"{'; ERROR (below)' if rep.error is not None else ''}\n")


COMMANDS: tuple[tuple[str, Any, Any], ...] = (("check", _add_check, _cmd_check),)
