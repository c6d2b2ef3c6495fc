"""Fidelity: the replay's liquidations against the ones that happened on chain (historical mode).

Two questions, kept apart:

* **Who and when** — does the liquidator model pick the accounts and blocks the real liquidators
  did? The model's decisions in historical mode are *predictions* (``Liquidation.observed`` False,
  ``committed`` False); the on-chain ``LiquidationCall`` events are the *observed* set. Both are
  compared as ``(user, block)`` pairs: several on-chain liquidations of one account in one block
  (two calls of a bot over two collaterals, two bots in a row) are one observed pair
  (``observed_user_blocks``; ``observed`` counts the liquidations), since the model liquidates an
  account at most once per block and a block where it acted on the right account is a hit
  whatever the number of calls. A prediction ``(user, b')`` matches an observed pair
  ``(user, b)`` when ``|b − b'| <= tolerance_blocks`` (parameter, default 0 = the same block).
  Matching is one-to-one, greedy in chain order: each observed pair (by its first liquidation's
  block and log index) takes the earliest unmatched prediction of the same user within the
  tolerance (so a prediction one block after the observation is, at tolerance 0, a false
  negative *and* a false positive). ``precision = matched / predicted``, ``recall = matched /
  observed_user_blocks`` (None when the denominator is 0). The engine predicts an account once
  per episode: after a prediction it does not predict the same account again until an event
  changes its position (e.g. the chain's own liquidation) or it stops being liquidatable, so an
  under-water account nobody liquidates is one false positive, not one per block.
  ``precision_episodes`` counts each liquidatable episode of the model (predictions sharing
  ``user`` and ``liquidatable_since_block``) once: the share of episodes with at least one
  matched prediction.
* **How much** — given what the real liquidator asked for, does the protocol model compute what the
  contract did? For every observed liquidation the engine computed ``adapter.liquidate`` with the
  event's own arguments on the pre-event state (``Liquidation.predicted``; the event's
  debtToCover is the amount repaid, so when that does not reproduce the event and
  ``type(uint256).max`` does exactly, that call's); the error is
  ``observed − predicted`` for the debt repaid and the collateral seized (base units of each
  asset; 0 when the port is exact). A predicted revert is an error of its own
  (``predicted_revert``), not an amount. The summary does not add raw units of different assets
  (USDC units and wei): ``*_mismatches`` counts the observations whose amount differs at all
  (exact), and ``*_abs_error_sum_value`` / ``*_abs_error_max_value`` give the size of the errors
  in base currency units (per row: ``*_abs_error_value``) (Aave v3: USD 1e8; v2: ETH wei), each error valued
  ``floor(|error| * price / 10**decimals)`` at the oracle price of its asset when the
  liquidation happened (the price ``debt_repaid_value`` is valued at), so an error worth less
  than one base unit counts as a mismatch and adds 0 to the value figures. With no amount compared
  (nothing observed, or every prediction reverted) the ``*_max_value`` figures are None, not 0.

Rows: ``bt.fidelity`` — one row per observed liquidation (with its pair's match and its own amount
errors: each liquidation of a matched pair says ``matched``) and one per unmatched prediction (a
false positive), sorted by block, then log index (predictions last in their block), then user.
In counterfactual mode nothing is observed: the counts (``observed``, ``predicted``, ``matched``,
``amounts_compared``) are 0 and every figure that judges the replay against observations
(:data:`OBSERVED_ONLY`: precision, recall, exact amounts, reverts, mismatches, errors) is None —
not applicable, rather than a 0 that reads as a perfect port.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ingest.schema import Column, Table, register_table
from protocols.domain import LiquidationOutcome

from .base import Liquidation, Metric, MetricError, SummaryValue, View

__all__ = ["Fidelity", "FIDELITY", "match", "OBSERVED_ONLY"]

#: summary figures that judge the replay against observations: None in a counterfactual run
#: (nothing is observed there, so a 0 mismatch or error would read as an exact port and a
#: threshold on one would pass on nothing; ``[checks]`` refuses them in counterfactual scenarios)
OBSERVED_ONLY: tuple[str, ...] = (
    "precision", "recall", "precision_episodes", "amounts_exact", "predicted_reverts",
    "debt_repaid_mismatches", "debt_repaid_abs_error_max_value", "debt_repaid_abs_error_sum_value",
    "collateral_seized_mismatches", "collateral_seized_abs_error_max_value",
    "collateral_seized_abs_error_sum_value")

FIDELITY = register_table(Table(
    "bt", "fidelity", "Observed on-chain liquidations against the replay: each observation with its "
    "matching prediction of the liquidator model (user and block within a tolerance) and the error of "
    "the adapter's amounts on the observed arguments; unmatched predictions as false positives.",
    (
        Column("run_id", "VARCHAR", "backtest run (bt.runs)", False),
        Column("chain_id", "UBIGINT", "chain replayed", False),
        Column("block_number", "UBIGINT", "block of the observation (or of the unmatched prediction)", False),
        Column("log_index", "UINTEGER", "log index of the LiquidationCall (NULL: prediction row)"),
        Column("tx_hash", "VARCHAR", "its transaction (NULL: prediction row)"),
        Column("user", "VARCHAR", "liquidated account", False),
        Column("kind", "VARCHAR", "observed (an on-chain LiquidationCall) or false_positive (a prediction "
               "no observation matched)", False),
        Column("matched", "BOOLEAN", "observed: a prediction matched its (user, block) pair (every "
               "liquidation of the account in that block)", False),
        Column("predicted_block", "UBIGINT", "block of the matching prediction (false_positive: its own)"),
        Column("block_error", "BIGINT", "predicted_block - block_number (NULL: unmatched)"),
        Column("collateral_asset", "VARCHAR", "collateral seized", False),
        Column("debt_asset", "VARCHAR", "debt repaid", False),
        Column("debt_repaid_raw", "HUGEINT", "observed debt repaid, base units (NULL: prediction row)"),
        Column("predicted_debt_repaid_raw", "HUGEINT", "adapter.liquidate on the observed arguments and "
               "the pre-event state (NULL: it predicted a revert; prediction row: the model's amount)"),
        Column("debt_repaid_error_raw", "HUGEINT", "observed - predicted debt repaid (0 = exact)"),
        Column("collateral_seized_raw", "HUGEINT", "observed collateral to the liquidator, base units"),
        Column("predicted_collateral_seized_raw", "HUGEINT", "predicted collateral to the liquidator"),
        Column("collateral_seized_error_raw", "HUGEINT", "observed - predicted collateral seized "
               "(0 = exact)"),
        Column("predicted_revert", "VARCHAR", "the adapter's revert reason when it predicted a revert"),
        Column("debt_repaid_abs_error_value", "HUGEINT", "|debt_repaid_error_raw| valued at the debt asset's "
               "oracle price of the observation's block, base currency units, rounded down (NULL: no "
               "amount compared)"),
        Column("collateral_seized_abs_error_value", "HUGEINT", "|collateral_seized_error_raw| valued at the "
               "collateral asset's oracle price of that block, base currency units, rounded down (NULL: no "
               "amount compared)"),
    ),
    "backtest.metrics.fidelity", ("run_id", "block_number", "log_index", "user")))


def match(observed: Sequence[tuple[str, int]], predicted: Sequence[tuple[str, int]],
          tolerance: int) -> list[int | None]:
    """For each observation ``(user, block)`` (in chain order) the index of the prediction it
    matches (one-to-one; the earliest unmatched prediction of the same user with ``|Δblock| <=
    tolerance``), or None."""
    by_user: dict[str, list[int]] = {}
    for i in sorted(range(len(predicted)), key=lambda i: (predicted[i][1], i)):
        by_user.setdefault(predicted[i][0], []).append(i)
    used: set[int] = set()
    out: list[int | None] = []
    for user, b in observed:
        hit = None
        for i in by_user.get(user, ()):
            if i not in used and abs(predicted[i][1] - b) <= tolerance:
                hit = i
                break
        if hit is not None:
            used.add(hit)
        out.append(hit)
    return out


def _revert(p: LiquidationOutcome | None) -> str | None:
    if p is None:
        return "no prediction"
    return None if p.ok else p.revert_reason


class Fidelity(Metric):
    """Precision/recall of (user, block) and amount errors (see the module docstring)."""

    name: ClassVar[str] = "fidelity"
    tables: ClassVar[tuple[Table, ...]] = (FIDELITY,)
    params_allowed: ClassVar[tuple[str, ...]] = ("tolerance_blocks",)

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        t = self.params.get("tolerance_blocks", 0)
        if not isinstance(t, int) or isinstance(t, bool) or t < 0:
            raise MetricError(f"metric 'fidelity': tolerance_blocks must be an integer >= 0, got {t!r}")
        self.tolerance = t
        self._observed: list[Liquidation] = []
        #: per observed liquidation with an amount prediction: |error| of (debt repaid, collateral
        #: seized) valued at the oracle prices of its block (None: predicted a revert or nothing)
        self._error_values: list[tuple[int, int] | None] = []
        self._predicted: list[Liquidation] = []
        self._run_id, self._chain_id = "", 0
        self._counterfactual = False

    def on_run_start(self, view: View) -> None:
        self._run_id, self._chain_id = view.run_id, view.chain_id
        self._counterfactual = view.mode == "counterfactual"

    def on_liquidation(self, view: View, liquidation: Liquidation) -> None:
        if liquidation.observed:
            self._observed.append(liquidation)
            p = liquidation.predicted
            self._error_values.append(None if p is None or not p.ok else (
                view.value(liquidation.debt_asset, abs(liquidation.debt_repaid - p.debt_repaid)),
                view.value(liquidation.collateral_asset,
                           abs(liquidation.collateral_seized - p.collateral_seized))))
        elif not liquidation.committed:
            self._predicted.append(liquidation)

    def _pairs(self) -> tuple[list[tuple[str, int]], list[int]]:
        """The observed ``(user, block)`` pairs in chain order, and each observation's pair index."""
        index: dict[tuple[str, int], int] = {}
        of: list[int] = []
        for o in self._observed:
            of.append(index.setdefault((o.user, o.block_number), len(index)))
        return list(index), of

    def _matches(self) -> list[int | None]:
        """Per observed liquidation, the prediction its ``(user, block)`` pair matched (or None)."""
        pairs, of = self._pairs()
        hits = match(pairs, [(p.user, p.block_number) for p in self._predicted], self.tolerance)
        return [hits[i] for i in of]

    def rows(self) -> Mapping[str, Sequence[tuple[Any, ...]]]:
        rid, chain = self._run_id, self._chain_id
        out: list[tuple[Any, ...]] = []
        hits = self._matches()
        for o, h, v in zip(self._observed, hits, self._error_values, strict=True):
            p = o.predicted
            ok = p is not None and p.ok
            pb = self._predicted[h].block_number if h is not None else None
            out.append((rid, chain, o.block_number, o.log_index, o.tx_hash, o.user, "observed", h is not None,
                        pb, pb - o.block_number if pb is not None else None, o.collateral_asset, o.debt_asset,
                        o.debt_repaid, p.debt_repaid if ok and p else None,
                        o.debt_repaid - p.debt_repaid if ok and p else None, o.collateral_seized,
                        p.collateral_seized if ok and p else None,
                        o.collateral_seized - p.collateral_seized if ok and p else None,
                        _revert(p), v[0] if v is not None else None, v[1] if v is not None else None))
        used = {h for h in hits if h is not None}
        for i, q in enumerate(self._predicted):
            if i in used:
                continue
            out.append((rid, chain, q.block_number, None, None, q.user, "false_positive", False,
                        q.block_number, None, q.collateral_asset, q.debt_asset, None, q.debt_repaid, None,
                        None, q.collateral_seized, None, None, None, None))
        out.sort(key=lambda r: (r[2], r[3] is None, r[3] if r[3] is not None else 0, r[5], r[6]))
        return {FIDELITY.fqn: out}

    def summary(self) -> Mapping[str, SummaryValue]:
        hits = self._matches()
        matched = len({h for h in hits if h is not None})  # pairs matched = predictions matched
        n_obs, n_pred = len(self._pairs()[0]), len(self._predicted)
        errs_d: list[int] = []
        errs_c: list[int] = []
        vals_d: list[int] = []
        vals_c: list[int] = []
        reverts = 0
        for o, v in zip(self._observed, self._error_values, strict=True):
            p = o.predicted
            if p is None or not p.ok or v is None:
                reverts += 1
                continue
            errs_d.append(o.debt_repaid - p.debt_repaid)
            errs_c.append(o.collateral_seized - p.collateral_seized)
            vals_d.append(v[0])
            vals_c.append(v[1])
        exact = sum(1 for d, c in zip(errs_d, errs_c, strict=True) if d == 0 and c == 0)
        episodes: dict[tuple[str, int], bool] = {}
        used = {h for h in hits if h is not None}
        for i, q in enumerate(self._predicted):
            since = q.liquidatable_since_block
            key = (q.user, since if since is not None else q.block_number)
            episodes[key] = episodes.get(key, False) or i in used
        out: dict[str, SummaryValue] = {
            "tolerance_blocks": self.tolerance,
            "observed": len(self._observed),
            "observed_user_blocks": n_obs,
            "predicted": n_pred,
            "matched": matched,
            "precision": matched / n_pred if n_pred else None,
            "recall": matched / n_obs if n_obs else None,
            "predicted_episodes": len(episodes),
            "precision_episodes": sum(episodes.values()) / len(episodes) if episodes else None,
            "amounts_compared": len(errs_d),
            "amounts_exact": exact,
            "predicted_reverts": reverts,
            "debt_repaid_mismatches": sum(1 for x in errs_d if x),
            # the largest of no error is undefined, not an exact 0 (every prediction reverted)
            "debt_repaid_abs_error_max_value": max(vals_d, default=None),
            "debt_repaid_abs_error_sum_value": sum(vals_d),
            "collateral_seized_mismatches": sum(1 for x in errs_c if x),
            "collateral_seized_abs_error_max_value": max(vals_c, default=None),
            "collateral_seized_abs_error_sum_value": sum(vals_c),
        }
        if self._counterfactual:  # not applicable: nothing observed to judge against
            out.update(dict.fromkeys(OBSERVED_ONLY))
        return out
