"""Liquidation spirals, and "bad debt is not monotone in the parameters" (issue 4).

The market (tests/backtest/metric_market.py): one borrower with 10 WETH of collateral and 17,000
USDC of debt, Aave v3.0 rules, zero rates. Counterfactual override: WETH LT 90 %, bonus 15 %, so
LT × (1 + bonus) = 1.035 > 1 (Aave's configurator would refuse it; a scenario may explore it).
The WETH oracle drops from 2,000 to 1,880 at block +10 and recovers to 2,000 at block +30.

By hand, with ``h`` = HF before, a 50 % close-factor liquidation (Aave v3.0: HF > 0.95) gives
``HF' = LT(C − B·D/2) / (D/2) = 2h − LT·B``:

* h₀ = 0.9 × 18,800 / 17,000 = 0.995294…  → HF₁ = 2h₀ − 1.035 = 0.955588… (still > 0.95: 50 % again)
* HF₂ = 2·HF₁ − 1.035 = 0.876176…  (< 0.95: close factor 100 %)
* the third liquidation seizes all the collateral (worth 4,137.5 USD, less than 1.15 × the
  4,250 USD debt): HF₃ = 0, and 4,250 − 4,137.5 / 1.15 = 652.17 USD of debt is left with nothing
  behind it.

A liquidator that reacts after the price recovered (delay 25 blocks) finds HF = 1.0588 and does
nothing: no bad debt. The faster liquidator creates 652 USD of bad debt that waiting would have
avoided. Likewise a higher threshold (95 %) that keeps the account out of liquidation at the dip
leaves no bad debt where the lower 90 % one spirals into it.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from backtest.api import run_inputs
from backtest.metrics.base import MetricError
from backtest.metrics.spiral import SEQUENCES, Spiral, lowers_health
from backtest.scenario import Overrides, ReserveOverride

from .metric_market import BORROWER, FIRST, WETH, inputs, market, scenario

WAD = 10**18
PATH = [(FIRST + 10, 1_880), (FIRST + 30, 2_000)]
SPIRAL_PARAMS = Overrides(reserves=(ReserveOverride(WETH, liquidation_threshold_bps=9000,
                                                    liquidation_bonus_bps=11500),))
METRICS = ["bad_debt", "liquidations", "spiral"]


def _run(delay: int, overrides: Overrides = SPIRAL_PARAMS):  # type: ignore[no-untyped-def]
    return run_inputs(scenario(METRICS, delay=delay, overrides=overrides), inputs(market(), PATH))


def _seq_rows(result) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    return [dict(zip(SEQUENCES.column_names(), r, strict=True)) for r in result.output.tables[SEQUENCES]]


def test_buffer_condition_in_bps() -> None:
    assert lowers_health(9000, 11500)  # 0.9 × 1.15 = 1.035
    assert not lowers_health(8250, 10500)  # 0.86625: Aave's WETH-like parameters
    assert not lowers_health(10_000, 10_000)  # exactly 1: HF unchanged, not lowered
    with pytest.raises(MetricError):
        Spiral({"min_liquidations": 1})


def test_spiral_named_with_its_health_factor_path() -> None:
    r = _run(delay=1)
    (seq,) = _seq_rows(r)
    assert seq["user"] == BORROWER and seq["spiral"] is True and seq["all_lowered"] is True
    assert seq["buffer_negative"] is True and seq["liquidations"] == 3
    assert seq["block_number"] == FIRST + 11 == seq["last_block"]  # decided at +10, acted at +11
    path = [int(str(h)) for h in seq["hf_path_wad"]]  # type: ignore[union-attr]
    h0 = Fraction(9 * 18_800, 10 * 17_000)
    lt_b = Fraction(9000 * 11500, 10**8)
    h1 = 2 * h0 - lt_b
    h2 = 2 * h1 - lt_b
    for got, want in zip(path, (h0, h1, h2), strict=False):
        assert got / WAD == pytest.approx(float(want), rel=1e-9)
    assert path[3] == 0
    assert path == sorted(path, reverse=True) and len(set(path)) == 4
    bad = 4_250 - Fraction(41_375, 10) / Fraction(115, 100)  # USD left without collateral
    assert int(str(seq["bad_debt_value"])) / 10**8 == pytest.approx(float(bad), rel=1e-6)
    s = r.summary["spiral"]
    assert s["spirals"] == 1 and s["spiral_liquidations"] == 3
    assert s["spiral_bad_debt_value"] == r.summary["bad_debt"]["end_unrealized_oracle_value"]


def test_bad_debt_is_not_monotone_in_liquidator_speed() -> None:
    fast, slow = _run(delay=1), _run(delay=25)
    fast_bd = fast.summary["bad_debt"]["end_unrealized_oracle_value"]
    slow_bd = slow.summary["bad_debt"]["end_unrealized_oracle_value"]
    assert fast_bd > 0 and slow_bd == 0  # the faster liquidator yields MORE bad debt
    assert fast.summary["liquidations"]["simulated_count"] == 3
    assert slow.summary["liquidations"]["simulated_count"] == 0
    assert fast.summary["spiral"]["spirals"] == 1 and slow.summary["spiral"]["spirals"] == 0


def test_bad_debt_is_not_monotone_in_the_liquidation_threshold() -> None:
    """A *lower* (stricter) liquidation threshold yields MORE bad debt, through the spiral.

    Bonus 15 % in both runs, the same fast liquidator (delay 1) and the same dip to 1,880:

    * LT 95 %: h = 0.95 × 18,800 / 17,000 = 1.050588… > 1 at the bottom of the dip: the account is
      never liquidatable, the price recovers, no liquidation and no bad debt (LT × (1 + bonus) =
      1.0925 > 1 would spiral, but nothing starts it).
    * LT 90 %: h₀ = 0.995294… < 1: liquidated, and LT × (1 + bonus) = 1.035 > 1 makes every
      liquidation lower the HF (2h − 1.035: 0.955588…, 0.876176…, then the whole collateral,
      worth 10 − 8,500 × 1.15 / 1,880 − 4,250 × 1.15 / 1,880 = 2.2008 WETH = 4,137.5 USD, goes
      for less than the 4,250 USD owed): 4,250 − 4,137.5 / 1.15 = 652.17 USD of bad debt.

    Tightening the threshold, meant to be the safer setting, turns a dip that needed no
    liquidation into a spiral ending in bad debt."""
    def at(lt: int):  # type: ignore[no-untyped-def]
        return _run(delay=1, overrides=Overrides(reserves=(ReserveOverride(
            WETH, liquidation_threshold_bps=lt, liquidation_bonus_bps=11500),)))

    high, low = at(9500), at(9000)
    assert high.summary["liquidations"]["simulated_count"] == 0
    assert high.summary["bad_debt"]["end_unrealized_oracle_value"] == 0
    assert high.summary["spiral"]["spirals"] == 0
    low_bd = low.summary["bad_debt"]["end_unrealized_oracle_value"]
    bad = 4_250 - Fraction(41_375, 10) / Fraction(115, 100)
    assert low_bd / 10**8 == pytest.approx(float(bad), rel=1e-6)  # the lower threshold: MORE bad debt
    assert low.summary["liquidations"]["simulated_count"] == 3
    (seq,) = _seq_rows(low)
    assert seq["spiral"] is True and seq["all_lowered"] is True and seq["buffer_negative"] is True
    assert low.summary["spiral"]["spiral_bad_debt_value"] == low_bd


def test_safe_buffer_no_spiral_and_no_bad_debt() -> None:
    # Aave-like LT 82.5 % / bonus 5 % (0.866 < 1): the same drop (HF 0.912) is liquidated and each
    # liquidation raises the HF; no bad debt, no spiral
    safe = Overrides(reserves=(ReserveOverride(WETH, liquidation_threshold_bps=8250,
                                               liquidation_bonus_bps=10500),))
    r = _run(delay=1, overrides=safe)
    assert r.summary["liquidations"]["simulated_count"] >= 1
    assert r.summary["bad_debt"]["end_unrealized_oracle_value"] == 0
    assert r.summary["spiral"]["spirals"] == 0
    assert all(row["spiral"] is False for row in _seq_rows(r))


def test_metric_tables_are_deterministic() -> None:
    """Two runs of the same scenario give identical rows in every table of these metrics."""
    names = ["bad_debt", "liquidations", "spiral", "socialization", "finality", "fidelity"]
    a, b = (run_inputs(scenario(names, delay=1, overrides=SPIRAL_PARAMS), inputs(market(), PATH))
            for _ in range(2))
    mine = {t: rows for t, rows in a.output.tables.items()
            if t.filled_by.startswith("backtest.metrics.") and t.name != "runs"}
    assert mine and any(mine.values())
    for t, rows in mine.items():
        assert b.output.tables[t] == rows, t.fqn
    assert a.summary == b.summary


def test_an_observed_liquidation_after_an_answer_in_its_block_is_compared_at_that_answer() -> None:
    """Historical mode, LT 80 %, bonus 5 % (LT x (1 + bonus) = 0.84). 10 COLL against 13,000 debt:
    HF 1.2308 at $2,000. At FROM+3 an answer takes COLL to $1,460 (HF 0.8985) and, later in the
    block, a bot repays 1,000: HF 0.9033, *raised* (0.8985 > 0.84). At FROM+4 an answer takes it to
    $1,300 (HF 0.8043) and a bot repays 1,000 more: HF 0.8011, lowered (0.8043 < 0.84). The
    first liquidation was compared with the last end-of-block HF, 1.2308 at the old price, so the
    sequence said every liquidation lowered the HF; HF before is now the account's on the state
    and prices just before the transaction."""
    import copy
    import dataclasses

    from protocols.domain import EventRef, ProtocolEvent
    from tests.backtest.markets import ADAPTER, COLL, DEBT, T0, user
    from tests.backtest.markets import FROM as START
    from tests.backtest.markets import inputs as book_inputs
    from tests.backtest.markets import market as book_market
    from tests.backtest.markets import scenario as book_scenario

    book = book_market(8000, 10500, [(10 * 10**18, 13_000 * 10**6)])
    path = [2_000 * 10**8, 2_000 * 10**8, 1_460 * 10**8, 1_300 * 10**8, 1_300 * 10**8]
    inp = book_inputs(book, path)
    specs = {(s.role, s.signature.split("(")[0]): s.signature for s in ADAPTER.events}
    state = copy.deepcopy(book.state)
    events: list[ProtocolEvent] = []
    for block, price in ((START + 3, 1_460), (START + 4, 1_300)):
        ts = inp.blocks.timestamp(block)
        out = ADAPTER.liquidate(state, user(0), COLL, DEBT, 1_000 * 10**6, {COLL: price * 10**8, DEBT: 10**8},
                                ts, False, liquidator="0x" + "4c" * 20)
        assert out.ok, out.revert_reason
        ADAPTER.commit(state, out)
        tx = "0x" + f"{block:064x}"
        events += [ProtocolEvent(e.name, specs[(e.role, e.name)], e.address, e.role, e.args,
                                 EventRef(block, i + 1, tx, ts))
                   for i, e in enumerate(x for x in out.events if (x.role, x.name) in specs)]
    assert T0 < inp.blocks.timestamp(START + 3)
    res = run_inputs(book_scenario("historical", to_block=START + len(path) + 1,
                                   extra='[metrics]\nnames = ["spiral"]\n'),
                     dataclasses.replace(inp, events=events))
    assert len([x for x in res.output.liquidations if x.observed]) == 2
    (seq,) = _seq_rows(res)
    path_hf = [int(str(h)) / WAD for h in seq["hf_path_wad"]]  # type: ignore[union-attr]
    want = [10 * 1_460 * 0.8 / 13_000, (10 - 1_050 / 1_460) * 1_460 * 0.8 / 12_000,
            (10 - 1_050 / 1_460 - 1_050 / 1_300) * 1_300 * 0.8 / 11_000]
    assert path_hf == pytest.approx(want, rel=1e-6)
    assert seq["all_lowered"] is False and seq["spiral"] is False


def test_a_spiral_ending_in_a_booked_deficit_under_v3_3() -> None:
    """The same spiral under v3.3 rules: the third liquidation seizes the last collateral and the
    652.17 USD of debt left is burned into the reserve's deficit, so the account has no debt after
    it (HF type(uint256).max). Compared as 'after >= before', that liquidation ended the sequence
    and started one of its own: the spiral had 2 liquidations and 112.50 USD of bad debt (what the
    second left), not the deficit. A liquidation that writes debt off has no collateral behind it:
    HF after 0, the sequence's last, its deficit the spiral's bad debt."""
    from protocols.aave_v3 import V3_3

    state = market()
    state.rules = V3_3
    r = run_inputs(scenario(METRICS, delay=1, overrides=SPIRAL_PARAMS), inputs(state, PATH))
    realized = r.summary["bad_debt"]["realized_value"]
    bad = 4_250 - Fraction(41_375, 10) / Fraction(115, 100)
    assert realized / 10**8 == pytest.approx(float(bad), rel=1e-6)  # the deficit booked
    (seq,) = _seq_rows(r)
    assert seq["liquidations"] == 3 and seq["all_lowered"] is True and seq["spiral"] is True
    assert [int(str(h)) for h in seq["hf_path_wad"]][-1] == 0  # type: ignore[union-attr]
    assert seq["bad_debt_value"] == realized == r.summary["spiral"]["spiral_bad_debt_value"]


def test_an_emode_accounts_buffer_is_its_categorys() -> None:
    """The borrower in e-mode category 1 whose parameters are the spiral's (LT 90 %, bonus 15 %)
    while the WETH reserve keeps its own (82.5 %, 5 %: a positive buffer): the protocol liquidates
    the account by the category, so the spiral is the one above, and its sequence must say
    buffer_negative. It read the reserve's parameters and said False."""
    import dataclasses

    from protocols.aave_v3.state import EModeCategory

    st = market()
    st.emode_categories[1] = EModeCategory(ltv=8500, liquidation_threshold=9000, liquidation_bonus=11500)
    r = st.reserves[WETH]
    st.reserves[WETH] = dataclasses.replace(
        r, configuration=dataclasses.replace(r.configuration, emode_category=1))
    st.users[BORROWER] = dataclasses.replace(st.users[BORROWER], emode_category=1)
    assert not lowers_health(r.configuration.liquidation_threshold, r.configuration.liquidation_bonus)
    got = run_inputs(scenario(METRICS, delay=1), inputs(st, PATH))
    (seq,) = _seq_rows(got)
    assert (seq["liquidations"], seq["spiral"], seq["buffer_negative"]) == (3, True, True)
    assert _seq_rows(_run(delay=1))[0]["hf_path_wad"] == seq["hf_path_wad"]  # the same spiral
    from protocols.aave_v3 import AaveV3Adapter

    # the adapter's own answer, e-mode and plain
    assert AaveV3Adapter().liquidation_parameters(got.output.final_state, BORROWER, WETH) == (9000, 11500)
    assert AaveV3Adapter().liquidation_parameters(market(), BORROWER, WETH) == (
        r.configuration.liquidation_threshold, r.configuration.liquidation_bonus)
