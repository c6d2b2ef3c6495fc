"""Finality risk: what the replay's actors did on blocks that were not final when they acted.

**Finality model.** A block ``B`` is final at the moment an actor acts in block ``H`` (the head at
decision) when ``B <= H − depth_blocks`` (default the scenario's ``finality.depth_blocks``, 64 on
Ethereum: two epochs of 32 slots ≈ 12.8 min after the Merge; before it, 64 confirmations were
the usual safe depth). Parameters (``[metrics.finality]``):

* ``depth_blocks``: override the depth in blocks;
* ``depth_s``: a depth in seconds instead: ``B`` is final at ``H`` when
  ``ts(H) − ts(B) >= depth_s`` (block times from the replay's block clock, visited or not;
  an oracle round's block from the round's ``happened_ts``; only a view without a clock falls
  back to the first visited block at or after ``B``, which can only make it less final);
* ``mode``: ``"l1"`` (default: the depth above) or ``"l2_soft"`` — an L2 whose sequencer's soft
  confirmation is trusted: a block is final as soon as it is included (depth 0; a
  ``depth_blocks`` or ``depth_s`` given with it is an error). For an L2
  measured against L1 finality (batch posted and the L1 block finalized) use ``mode = "l1"``
  with ``depth_s`` = batch interval + L1 finality (e.g. 1800).

**Decisions** (what "acted on" means):

* a *liquidation* in block ``A``: simulated — the liquidator model acted in ``A`` on the state of
  ``decided_block`` (``A − reaction_delay − finality.wait_blocks``, and at the latest the block
  it observed the account in, ``A − 1`` without delay: a transaction cannot land in the block
  whose end state it read); observed — an on-chain
  liquidator acted on the state of its own block (``decided = A``). Not final when
  ``decided > A − depth``. Value = debt repaid at the oracle price. So at any depth > 0 every
  observed liquidation acted on non-final state: in a historical run ``liquidated_not_final_value``
  is the whole observed volume (read it with ``liquidations_not_final`` of ``liquidations``, not as
  a risk figure of its own); the model's timing makes it informative in a counterfactual.
* an *oracle update* the protocol consumed in block ``K``: produced in ``happened_block`` ``P``;
  not final when ``P > K − depth`` (with no added delay the protocol reads a round in its own
  block, so every round is consumed before it is final unless the depth is 0). Consumed: an
  accepted answer of a feed some price key reads (a feed the protocol switched away from, or
  never used, publishes answers nothing reads); a change of oracle source
  (``PriceUpdate.source_change``, ``AssetSourceUpdated``) is not an answer.
* *position changes*: every protocol event applied (historical mode) acts on its own block; and
  every account whose position a committed liquidation decided on a non-final block changed.

Also counted: visited blocks that were not final when ingested (``raw.blocks.finality_at_ingest``,
``BlockInfo.finalized_at_ingest`` False — their rows may still change on a re-ingest) and the
liquidations in them.

**Reorgs** in ``meta.reorgs`` and what they touched are read after a run by :func:`reorg_exposure`
(it needs the warehouse): for each reorg whose replaced range ``fork_block+1 .. old_tip_block``
intersects the window, the logs it removed, the liquidations that changed the state in that range
(committed: a historical run's predictions moved nothing) and the run's ``bt`` rows of those
blocks (not the window's figures, ``bt.summaries`` and ``bt.oracle_lag_feeds``, whose block_number
is the window's last block whatever block a reorg replaced).
**The cost of waiting for finality** (liquidations wait ``k`` blocks) is a pair of runs:
:func:`backtest.attribution.finality_attribution`.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ingest.schema import Column, Table, register_table
from ingest.warehouse import Warehouse
from protocols.domain import ProtocolEvent

from .base import BlockEnd, Liquidation, Metric, MetricError, PriceUpdate, SummaryValue, View

__all__ = ["Finality", "LIQUIDATIONS", "REORGS", "reorg_exposure", "MODES"]

MODES = ("l1", "l2_soft")

LIQUIDATIONS = register_table(Table(
    "bt", "finality_liquidations", "Every liquidation of a run with the block whose state it acted on and "
    "whether that block was final then (finality model of backtest.metrics.finality).",
    (
        Column("run_id", "VARCHAR", "backtest run (bt.runs)", False),
        Column("chain_id", "UBIGINT", "chain replayed", False),
        Column("block_number", "UBIGINT", "block the liquidation was executed in (head at decision)", False),
        Column("log_index", "UINTEGER", "log index (observed) or NULL (simulated)"),
        Column("user", "VARCHAR", "liquidated account", False),
        Column("observed", "BOOLEAN", "on-chain LiquidationCall (true) or liquidator model (false)", False),
        Column("committed", "BOOLEAN", "changed the replayed state", False),
        Column("decided_block", "UBIGINT", "block whose state the actor acted on", False),
        Column("depth_blocks", "UBIGINT", "finality depth in blocks (NULL when given in seconds)"),
        Column("depth_s", "UBIGINT", "finality depth in seconds (NULL when given in blocks)"),
        Column("final_when_acted", "BOOLEAN", "decided_block was final at block_number", False),
        Column("block_final_at_ingest", "BOOLEAN", "raw.blocks.finality_at_ingest = finalized", False),
        Column("debt_repaid_value", "HUGEINT", "debt repaid at the oracle price, base currency units", False),
    ),
    "backtest.metrics.finality", ("run_id", "block_number", "log_index", "user")))

REORGS = register_table(Table(
    "bt", "reorg_exposure", "Reorgs recorded in meta.reorgs whose replaced blocks intersect a run's window, "
    "and what they touched: logs removed at ingest and the run's bt rows in the replaced range.",
    (
        Column("run_id", "VARCHAR", "backtest run (bt.runs)", False),
        Column("chain_id", "UBIGINT", "chain", False),
        Column("block_number", "UBIGINT", "fork_block: highest block still matching (common ancestor)",
               False),
        Column("old_tip_block", "UBIGINT", "highest block replaced", False),
        Column("depth", "UBIGINT", "blocks replaced", False),
        Column("detected_by_run", "VARCHAR", "ingest run that detected it (meta.runs)", False),
        Column("logs_removed", "UBIGINT", "raw.logs rows the rollback deleted", False),
        Column("liquidations", "UBIGINT", "the run's committed bt.liquidations rows (observed, or the "
               "model's in a counterfactual; not historical predictions) in fork_block+1..old_tip_block",
               False),
        Column("liquidated_value", "HUGEINT", "their debt repaid, base currency units", False),
        Column("bt_rows", "UBIGINT", "the run's rows of the replaced blocks: in every bt table with a "
               "block_number in the range, but the window's figures (bt.summaries, bt.oracle_lag_feeds: "
               "block_number is the window's last block for figures over all of it)", False),
    ),
    "backtest.metrics.finality", ("run_id", "block_number")))


class Finality(Metric):
    """Decisions taken on non-final blocks (see the module docstring)."""

    name: ClassVar[str] = "finality"
    tables: ClassVar[tuple[Table, ...]] = (LIQUIDATIONS,)
    params_allowed: ClassVar[tuple[str, ...]] = ("depth_blocks", "depth_s", "mode")

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        for k in ("depth_blocks", "depth_s"):
            v = self.params.get(k)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise MetricError(f"metric 'finality': {k} must be an integer >= 0, got {v!r}")
        if "depth_blocks" in self.params and "depth_s" in self.params:
            raise MetricError("metric 'finality': give depth_blocks or depth_s, not both")
        mode = self.params.get("mode", "l1")
        if mode not in MODES:
            raise MetricError(f"metric 'finality': mode must be one of {list(MODES)}, got {mode!r}")
        if mode == "l2_soft" and ("depth_blocks" in self.params or "depth_s" in self.params):
            raise MetricError("metric 'finality': mode 'l2_soft' has depth 0; depth_blocks / depth_s "
                              "apply to mode 'l1' only")
        self.mode = str(mode)
        self.depth_s: int | None = None if self.mode == "l2_soft" else self.params.get("depth_s")
        self.depth_blocks: int | None = 0 if self.mode == "l2_soft" else self.params.get("depth_blocks")
        # every visited block and its timestamp, as machine integers (a year visits ~1.4 M blocks)
        self._blocks = array("Q")
        self._ts = array("q")
        self._unit = 1
        self._rows: list[tuple[Any, ...]] = []
        self._acc = {"liq": 0, "liq_nf": 0, "liq_value": 0, "liq_nf_value": 0, "pred": 0, "pred_nf": 0,
                     "pred_nf_value": 0,
                     "oracle": 0, "oracle_nf": 0, "events": 0, "events_nf": 0, "blocks": 0,
                     "blocks_not_final_at_ingest": 0, "liq_not_final_at_ingest": 0}
        self._changed: set[str] = set()
        self._not_final_ingest: set[int] = set()
        self._clock: Callable[[int], int | None] | None = None

    # ------------------------------------------------------------------ the model
    def _ts_of(self, b: int) -> int | None:
        if self._clock is not None:
            t = self._clock(b)
            if t is not None:
                return t
        i = bisect.bisect_left(self._blocks, b)
        return self._ts[i] if i < len(self._blocks) else None

    def is_final(self, b: int, head: int, head_ts: int, b_ts: int | None = None) -> bool:
        """Was block ``b`` final when an actor acted in block ``head`` (timestamp ``head_ts``)?
        ``b_ts``: ``b``'s timestamp when known (else the visited blocks give it, see above)."""
        if self.depth_s is not None:
            t = self._ts_of(b) if b_ts is None else b_ts
            if t is None:
                t = head_ts
            return head_ts - t >= self.depth_s
        assert self.depth_blocks is not None
        return b <= head - self.depth_blocks

    # ------------------------------------------------------------------ hooks
    def on_run_start(self, view: View) -> None:
        self._unit = view.unit
        # the engine's view reads any block's timestamp from the replay's clock (optional)
        self._clock = getattr(view, "block_timestamp", None)
        if self.depth_blocks is None and self.depth_s is None:
            self.depth_blocks = view.finality_depth_blocks
        self._see(view)

    def _see(self, view: View) -> None:
        b = view.block
        if not self._blocks or self._blocks[-1] < b.number:
            self._blocks.append(b.number)
            self._ts.append(b.timestamp)
            self._acc["blocks"] += 1
            if not b.finalized_at_ingest:
                self._acc["blocks_not_final_at_ingest"] += 1
                self._not_final_ingest.add(b.number)

    def on_price(self, view: View, update: PriceUpdate) -> None:
        self._see(view)
        if update.kind != "oracle" or not update.accepted or update.source_change or not update.keys:
            return  # not an answer the protocol read (see the module docstring)
        self._acc["oracle"] += 1
        u = update
        if not self.is_final(u.happened_block, u.block_number, u.timestamp, u.happened_ts):
            self._acc["oracle_nf"] += 1

    def on_event(self, view: View, event: ProtocolEvent) -> None:
        b = view.block
        if not self._blocks or self._blocks[-1] < b.number:  # (a block's first input: _see's test)
            self._see(view)
        a = self._acc
        a["events"] += 1
        if not self.is_final(event.ref.block_number, b.number, b.timestamp):
            a["events_nf"] += 1

    def on_liquidation(self, view: View, liquidation: Liquidation) -> None:
        self._see(view)
        liq = liquidation
        decided = liq.block_number if liq.observed or liq.decided_block is None else liq.decided_block
        final = self.is_final(decided, liq.block_number, liq.timestamp)
        at_ingest = view.block.finalized_at_ingest
        a = self._acc
        if liq.committed:  # changed the state: on chain, or the model's in a counterfactual
            a["liq"] += 1
            a["liq_value"] += liq.debt_repaid_value
            if not final:
                a["liq_nf"] += 1
                a["liq_nf_value"] += liq.debt_repaid_value
                self._changed.add(liq.user)
            if not at_ingest:
                a["liq_not_final_at_ingest"] += 1
        else:  # the model's prediction in a historical run: counted apart, it moved nothing
            a["pred"] += 1
            if not final:
                a["pred_nf"] += 1
                a["pred_nf_value"] += liq.debt_repaid_value
        self._rows.append((view.run_id, view.chain_id, liq.block_number, liq.log_index, liq.user,
                           liq.observed, liq.committed, decided,
                           self.depth_blocks if self.depth_s is None else None, self.depth_s, final,
                           at_ingest, liq.debt_repaid_value))

    def on_block_end(self, view: View, block: BlockEnd) -> None:
        self._see(view)

    # ------------------------------------------------------------------ outputs
    def rows(self) -> Mapping[str, Sequence[tuple[Any, ...]]]:
        rows = sorted(self._rows, key=lambda r: (r[2], -1 if r[3] is None else r[3], r[4], r[5]))
        return {LIQUIDATIONS.fqn: rows}

    def summary(self) -> Mapping[str, SummaryValue]:
        a = self._acc
        return {
            "mode": self.mode,
            "depth_blocks": self.depth_blocks if self.depth_s is None else None,
            "depth_s": self.depth_s,
            "liquidations": a["liq"],
            "liquidations_not_final": a["liq_nf"],
            "liquidated_value": a["liq_value"],
            "liquidated_not_final_value": a["liq_nf_value"],
            "liquidated_not_final_usd": a["liq_nf_value"] / self._unit,
            "predictions": a["pred"],
            "predictions_not_final": a["pred_nf"],
            "predicted_not_final_value": a["pred_nf_value"],
            "oracle_updates": a["oracle"],
            "oracle_updates_not_final": a["oracle_nf"],
            "events_applied": a["events"],
            "events_not_final": a["events_nf"],
            "accounts_changed_not_final": len(self._changed),
            "blocks_visited": a["blocks"],
            "blocks_not_final_at_ingest": a["blocks_not_final_at_ingest"],
            "liquidations_in_blocks_not_final_at_ingest": a["liq_not_final_at_ingest"],
        }


#: bt tables whose block_number is the window's last block as the instant of figures over the whole
#: window, not a row of that block: a reorg anywhere in the window bears on them alike, so they are
#: not rows of the replaced blocks when a reorg reaches the window's end
WINDOW_FIGURES = ("summaries", "oracle_lag_feeds")


def reorg_exposure(wh: Warehouse, run_id: str) -> list[tuple[Any, ...]]:
    """``bt.reorg_exposure`` rows of a written run (:func:`reorg_exposure_rows`); writes them
    (replacing the run's previous ones) in one transaction and returns them."""
    from backtest.outputs import write_run

    rows = reorg_exposure_rows(wh.con, run_id, str(wh.path))
    write_run(wh, run_id, {REORGS: rows})
    return rows


def reorg_exposure_rows(con: Any, run_id: str, where: str = "the warehouse") -> list[tuple[Any, ...]]:
    """``bt.reorg_exposure`` rows of run ``run_id`` as ``con`` sees it (inside the transaction that
    writes the run, or after): every ``meta.reorgs`` row of the run's chain whose replaced range
    intersects the run's window, with the run's rows in that range. Reads only."""
    got = con.execute("SELECT chain_id, from_block, to_block FROM bt.runs WHERE run_id = ?",
                      [run_id]).fetchall()
    if not got:
        raise MetricError(f"reorg_exposure: run {run_id!r} is not in bt.runs of {where}")
    chain, fb, tb = (int(x) for x in got[0])
    have = {(str(s), str(n)) for s, n in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name IN ('bt', 'meta')").fetchall()}
    reorgs: list[tuple[Any, ...]] = []
    if ("meta", "reorgs") in have:
        reorgs = con.execute(
            "SELECT fork_block, old_tip_block, depth, run_id, logs_removed FROM meta.reorgs "
            "WHERE chain_id = ? AND fork_block + 1 <= ? AND old_tip_block >= ? "
            "ORDER BY fork_block, detected_at",
            [chain, tb, fb]).fetchall()
    bt_tables = sorted(n for s, n in have if s == "bt" and n not in ("runs", "reorg_exposure"))
    with_block = [n for n in bt_tables if n not in WINDOW_FIGURES and con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE schema_name = 'bt' AND table_name = ? "
        "AND column_name IN ('run_id', 'block_number')", [n]).fetchall()[0][0] == 2]
    rows: list[tuple[Any, ...]] = []
    for fork, tip, depth, detected_by, removed in reorgs:
        lo, hi = int(fork) + 1, int(tip)
        n_liq, value = con.execute(
            "SELECT count(*), coalesce(sum(debt_repaid_value), 0) FROM bt.liquidations WHERE run_id = ? AND "
            "committed AND block_number BETWEEN ? AND ?", [run_id, lo, hi]).fetchall()[0] \
            if "liquidations" in bt_tables else (0, 0)
        total = 0
        for n in with_block:
            total += int(con.execute(f"SELECT count(*) FROM bt.{n} WHERE run_id = ? "
                                     "AND block_number BETWEEN ? AND ?", [run_id, lo, hi]).fetchall()[0][0])
        rows.append((run_id, chain, int(fork), hi, int(depth), str(detected_by), int(removed), int(n_liq),
                     int(value), total))
    return rows
