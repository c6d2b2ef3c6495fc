"""bt column descriptions name what the rows hold (docs/schema.md is generated from them)."""

from __future__ import annotations

import re

from backtest.metrics.bad_debt import BadDebt
from backtest.metrics.base import currency_name
from backtest.outputs import LIQUIDATIONS, SUMMARIES
from ingest.schema import Table


def _doc(table: Table, column: str) -> str:
    return next(c.doc for c in table.columns if c.name == column)


def test_summaries_name_example_is_a_figure_runs_write() -> None:
    """bt.summaries.name gave `peak_bad_debt_usd` as its example: no metric writes that name (the
    bad_debt figure is peak_unrealized_oracle_usd), so an analyst's query on it returned no row;
    and in an Aave v2 run the suffix is the run's currency (_eth), which it did not say."""
    doc = _doc(SUMMARIES, "name")
    m = re.search(r"e\.g\. (\w+)", doc)
    assert m, doc
    names = set(BadDebt().summary())
    assert m.group(1) in names, (m.group(1), sorted(names))
    assert currency_name(m.group(1), "ETH") in doc, doc


def test_debt_to_cover_raw_says_what_an_observed_row_holds() -> None:
    """For an on-chain liquidation the engine stores the LiquidationCall event's debtToCover field,
    which is the debt actually repaid (Aave emits actualDebtToLiquidate; the call's argument,
    possibly 2**256-1, is in no event): every observed row has debt_to_cover_raw ==
    debt_repaid_raw (115 of 115 in the demo). The column called itself the debtToCover argument."""
    doc = _doc(LIQUIDATIONS, "debt_to_cover_raw")
    assert "observed" in doc and "repaid" in doc, doc
