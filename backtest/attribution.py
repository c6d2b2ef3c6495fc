"""Attributions: bad debt caused by one named factor, as the difference of two runs that differ
only in that factor (same data, window, positions, price path, liquidator, overrides, metrics).

Each attribution runs both variants through the public API (:func:`backtest.api.run`, so both
runs are ordinary ``bt.runs`` rows with all their tables) and writes one ``bt.attributions`` row
per figure with both run ids::

    attributable = figure(run WITH the cause) − figure(run WITHOUT the cause)

Positive: the cause added bad debt; negative: it removed some (possible: bad debt is not
monotone in the parameters, see :mod:`backtest.metrics.spiral`). Both variants run in
counterfactual mode (positions frozen at the window start, the liquidator model's liquidations
committed), whatever the scenario's mode, because a historical run replays what happened and
cannot respond to a different oracle or timing.

* :func:`lag_attribution` — **bad debt attributable to oracle lag**. WITH: the scenario's oracle
  model as given (``protocol``: the feed's real rounds, with any added ``delay_s``/``delay_blocks``;
  or ``republish``); WITHOUT: the reference price path as the oracle, instantly (``model =
  "reference"``, no added delay; min/max answer bounds kept — they are not lag). In the issue's
  words it is "the counterfactual with reference prices minus the historical one"; it is stored
  with the sign *lag cost* = WITH − WITHOUT, so that a lagging oracle that lets bad debt build up
  gives a positive number. If the scenario's oracle already is the reference, the two runs are
  the same run and the attributable bad debt is exactly 0.
* :func:`finality_attribution` — **the cost of waiting for finality**: WITH: liquidations wait
  ``k`` blocks (``finality.wait_blocks = k``; by default until finality: the scenario's
  ``wait_blocks`` when it sets one, else its ``depth_blocks``, 64 unless set); WITHOUT:
  ``wait_blocks = 0``. It also fills ``bt.reorg_exposure`` for both runs (:func:`backtest.metrics.finality
  .reorg_exposure`).

Figures (from the ``bad_debt`` metric's summary, base currency units, Aave v3: USD 1e8):
``end_bad_debt_reference_value`` (the headline: unrealized bad debt at the window end valued at
the reference prices — the same yardstick for both runs — plus realized bad debt),
``end_bad_debt_oracle_value`` (valued at each run's own oracle prices, plus realized) and
``peak_unrealized_reference_value``. Without a reference path the reference figures are the
oracle ones (bad_debt falls back to oracle prices).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.schema import Column, Table, register_table
from ingest.warehouse import DEFAULT_DB, Warehouse

if TYPE_CHECKING:
    from .api import RunResult
    from .scenario import Scenario

__all__ = ["ATTRIBUTIONS", "Attribution", "lag_attribution", "finality_attribution", "FIGURES"]

ATTRIBUTIONS = register_table(Table(
    "bt", "attributions", "Bad debt attributed to one cause: the difference of two runs identical but for "
    "that cause (oracle_lag: scenario oracle vs reference price as the oracle; finality_wait: liquidations "
    "wait k blocks vs not). One row per figure; see backtest.attribution.",
    (
        Column("attribution_id", "VARCHAR", "at- + sha256(kind, both run ids)[:16]", False),
        Column("chain_id", "UBIGINT", "chain replayed", False),
        Column("block_number", "UBIGINT", "last block of the window (the figures' instant)", False),
        Column("kind", "VARCHAR", "oracle_lag or finality_wait", False),
        Column("figure", "VARCHAR", "bad_debt figure compared (see backtest.attribution)", False),
        Column("with_cause_run_id", "VARCHAR", "run with the cause (bt.runs)", False),
        Column("without_cause_run_id", "VARCHAR", "run without it (bt.runs)", False),
        Column("parameter", "VARCHAR", "what differs, WITH|WITHOUT, e.g. oracle=protocol|reference, "
               "oracle=protocol,delay_blocks=200|reference (the oracle model and its lag settings) or "
               "wait_blocks=5|0", False),
        Column("with_cause_value", "HUGEINT", "the figure in the run with the cause, base currency units",
               False),
        Column("without_cause_value", "HUGEINT", "the figure in the run without it", False),
        Column("attributable_value", "HUGEINT", "with - without: bad debt the cause added (negative: "
               "removed)", False),
        Column("attributable_base_f64", "DOUBLE", "derived: attributable_value in "
               "whole base currency (bt.runs.base_currency)",
               False),
    ),
    "backtest.attribution", ("attribution_id", "figure")))

FIGURES: tuple[str, ...] = ("end_bad_debt_reference_value", "end_bad_debt_oracle_value",
                            "peak_unrealized_reference_value")


@dataclass(frozen=True)
class Attribution:
    """Both runs and the figures (name → (with, without, attributable))."""

    attribution_id: str
    kind: str
    parameter: str
    with_cause: RunResult
    without_cause: RunResult
    figures: Mapping[str, tuple[int, int, int]]

    @property
    def attributable_value(self) -> int:
        """The headline: ``end_bad_debt_reference_value`` with − without."""
        return self.figures["end_bad_debt_reference_value"][2]


def _figures(summary: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    b = summary["bad_debt"]
    realized = int(b.get("realized_value") or 0)
    return {
        "end_bad_debt_reference_value": int(b["end_unrealized_reference_value"]) + realized,
        "end_bad_debt_oracle_value": int(b["end_unrealized_oracle_value"]) + realized,
        "peak_unrealized_reference_value": int(b["peak_unrealized_reference_value"]),
    }


def _load(scenario: Scenario | str | Path) -> Scenario:
    from .scenario import Scenario, load_scenario

    return scenario if isinstance(scenario, Scenario) else load_scenario(scenario)


def _variant(sc: Scenario, suffix: str, **changes: Any) -> Scenario:
    """The scenario in counterfactual mode, renamed, with ``bad_debt`` among its metrics."""
    from .metrics import DEFAULT

    names = sc.metrics.names or DEFAULT
    if "bad_debt" not in names:
        names = ("bad_debt", *names)
    metrics = dataclasses.replace(sc.metrics, names=tuple(names))
    # the variant is not its file's scenario: bt.runs.scenario_path names the file and the variant
    # (a run on the reference oracle credited to a file saying oracle = protocol misled its reader)
    origin = sc.origin
    if sc.text:
        p = Path(sc.origin)
        origin = f"{p.resolve() if p.is_file() else sc.origin} (variant {suffix}, backtest.attribution)"
    return dataclasses.replace(sc, name=f"{sc.name}{suffix}", mode="counterfactual", metrics=metrics,
                               origin=origin, **changes)


def _pair(kind: str, parameter: str, with_sc: Scenario, without_sc: Scenario,
          db: str | Path | None) -> Attribution:
    from .api import run

    path = str(db or with_sc.warehouse or DEFAULT_DB)
    r_with = run(with_sc, path)
    r_without = r_with if without_sc == with_sc else run(without_sc, path)
    fw, fo = _figures(r_with.summary), _figures(r_without.summary)
    figures = {k: (fw[k], fo[k], fw[k] - fo[k]) for k in FIGURES}
    aid = "at-" + hashlib.sha256("\n".join((kind, r_with.run_id, r_without.run_id)).encode()).hexdigest()[:16]
    out = Attribution(aid, kind, parameter, r_with, r_without, figures)
    unit = _unit_of(r_with)
    rows = [(aid, r_with.output.record.chain_id, r_with.output.record.to_block, kind, k, r_with.run_id,
             r_without.run_id, parameter, w, o, d, d / unit) for k, (w, o, d) in figures.items()]
    with Warehouse(path) as wh:
        _write(wh, aid, rows)
        if kind == "finality_wait":
            from .metrics.finality import reorg_exposure

            for rid in sorted({r_with.run_id, r_without.run_id}):
                reorg_exposure(wh, rid)
    return out


def _unit_of(r: RunResult) -> int:
    from protocols.registry import get_adapter

    from .engine import _base_unit

    return _base_unit(get_adapter(r.scenario.market.protocol))


def _write(wh: Warehouse, aid: str, rows: list[tuple[Any, ...]]) -> None:
    """Replace the attribution's rows in one transaction."""
    wh.ensure(ATTRIBUTIONS)
    cols = ATTRIBUTIONS.columns
    placeholders = ", ".join(f"CAST(? AS {c.type})" for c in cols)
    with wh.transaction() as con:
        con.execute(f"DELETE FROM {ATTRIBUTIONS.fqn} WHERE attribution_id = ?", [aid])
        for r in rows:
            values = [str(v) if c.type in ("HUGEINT", "UHUGEINT") else v
                      for c, v in zip(cols, r, strict=True)]
            con.execute(f"INSERT INTO {ATTRIBUTIONS.fqn} VALUES ({placeholders})", values)


def lag_attribution(scenario: Scenario | str | Path, db: str | Path | None = None) -> Attribution:
    """Bad debt attributable to oracle lag (see the module docstring). The scenario needs a
    ``[reference]`` path (the WITHOUT run uses it as the oracle)."""
    sc = _load(scenario)
    if sc.reference is None:
        raise sc.error("reference", "lag attribution needs a [reference] table with pairs: the run without "
                       "lag uses the reference price as the oracle")
    with_sc = _variant(sc, "+lag:with")
    perfect = dataclasses.replace(sc.oracle, model="reference", delay_s=0, delay_blocks=0, deviation_bps=None,
                                  heartbeat_s=None)
    without_sc = with_sc if sc.oracle == perfect else _variant(sc, "+lag:without", oracle=perfect)
    # what differs: the model and each lag setting the WITHOUT run drops (a delayed feed and the
    # feed as it was are two attributions; one label for both hid which one a row measured)
    lag = [f"{k}={getattr(sc.oracle, k)}" for k in ("delay_s", "delay_blocks", "deviation_bps", "heartbeat_s")
           if getattr(sc.oracle, k) != getattr(perfect, k)]
    parameter = f"oracle={','.join([sc.oracle.model, *lag])}|reference"
    return _pair("oracle_lag", parameter, with_sc, without_sc, db)


def finality_attribution(scenario: Scenario | str | Path, db: str | Path | None = None, *,
                         wait_blocks: int | None = None) -> Attribution:
    """The extra bad debt of liquidations waiting ``wait_blocks`` for finality, against not waiting
    (see the module docstring). By default they wait until the block they decided on is final: the
    scenario's ``finality.wait_blocks`` when set, else its ``finality.depth_blocks`` (a scenario
    waiting 0 blocks would make both runs the same run and the cost exactly 0)."""
    sc = _load(scenario)
    k = (sc.finality.wait_blocks or sc.finality.depth_blocks) if wait_blocks is None else wait_blocks
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise ValueError(f"wait_blocks must be an integer >= 0, got {k!r}")
    with_sc = _variant(sc, f"+wait:{k}", finality=dataclasses.replace(sc.finality, wait_blocks=k))
    without_sc = with_sc if k == 0 else _variant(sc, "+wait:0", finality=dataclasses.replace(sc.finality,
                                                                                             wait_blocks=0))
    return _pair("finality_wait", f"wait_blocks={k}|0", with_sc, without_sc, db)
