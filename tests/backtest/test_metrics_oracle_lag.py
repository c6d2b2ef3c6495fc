"""Oracle lag: deviation, time beyond threshold, staleness and hidden insolvency through the hooks
with hand-built prices and evaluations (expected values worked out in the comments)."""

from __future__ import annotations

import pytest

from backtest.api import run_inputs
from backtest.metrics.base import AccountEval, BlockEnd, MetricError, PriceUpdate
from backtest.metrics.oracle_lag import FEEDS, HIDDEN, OracleLag
from backtest.oracle import FeedRules, Round

from .metric_market import BORROWER, FEED_WETH, FIRST, SUPPLIER, USDC, WETH, StubView, health, inputs, market
from .metric_market import scenario as make_scenario

E8 = 10**8


def _update(kind: str, price: int, prev: int, block: int, ts: int, updated_at: int = 0,
            accepted: bool = True) -> PriceUpdate:
    feed = FEED_WETH if kind == "oracle" else "ETH/USD"
    return PriceUpdate(kind, feed, (WETH,), price, prev, price, 8, accepted, block, ts, block,  # type: ignore[arg-type]
                       0 if kind == "oracle" else -1, ts, updated_at or ts)


def _cols(row: tuple[object, ...], table=FEEDS) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return dict(zip(table.column_names(), row, strict=True))


def test_deviation_threshold_staleness_and_hidden_insolvency_by_hand() -> None:
    sc = make_scenario(["oracle_lag"], reference=True)
    view = StubView(market(), sc, {WETH: 2_000 * E8, USDC: E8}, block=FIRST, ts=1_000,
                    ref={WETH: 2_000 * E8})
    m = OracleLag({"heartbeat_s": 30})
    m.on_run_start(view)
    # t=1012: the reference drops to 1,980; the oracle still says 2,000 -> 20/1980 = 101.0101 bps
    view.at(FIRST + 1, 1_012)
    view.reference_prices = {WETH: 1_980 * E8}
    m.on_price(view, _update("reference", 1_980 * E8, 2_000 * E8, FIRST + 1, 1_012))
    # the borrower is liquidatable at the reference but not at the oracle: hidden, 10,000 USD debt
    hidden = AccountEval(BORROWER, health(13_000, 10_000), health(12_000, 10_000, 8250))
    assert not hidden.oracle.liquidatable and hidden.reference is not None and hidden.reference.liquidatable
    m.on_block_end(view, BlockEnd(view.block, (hidden,)))
    # t=1060: the oracle publishes 1,980 (updatedAt 1060): deviation 0; the borrower is re-evaluated
    # healthy at both, the supplier becomes hidden (5,000 USD debt) and stays so to the end
    view.at(FIRST + 5, 1_060)
    view.prices = {WETH: 1_980 * E8, USDC: E8}
    m.on_price(view, _update("oracle", 1_980 * E8, 2_000 * E8, FIRST + 5, 1_060, 1_060))
    ok = AccountEval(BORROWER, health(20_000, 10_000), health(20_000, 10_000))
    sup = AccountEval(SUPPLIER, health(7_000, 5_000), health(6_000, 5_000))
    m.on_block_end(view, BlockEnd(view.block, (ok, sup)))
    # a rejected answer (outside bounds) changes nothing but is counted
    view.at(FIRST + 6, 1_072)
    m.on_price(view, _update("oracle", 1, 1_980 * E8, FIRST + 6, 1_072, 1_072, accepted=False))
    view.at(FIRST + 9, 1_100)
    m.on_run_end(view)

    (feed,) = m.rows()[FEEDS.fqn]
    f = _cols(feed)
    assert f["feed"] == FEED_WETH and f["pair"] == "ETH/USD" and f["price_key"] == WETH
    assert f["deviation_threshold_bps"] == 50 and f["heartbeat_s"] == 30
    assert f["updates"] == 1 and f["rejected"] == 1
    assert f["covered_s"] == 100  # 1000 -> 1100
    assert f["max_deviation_bps_f64"] == pytest.approx(20 / 1_980 * 10_000)
    assert f["max_deviation_block"] == FIRST + 1
    # 101.0101 bps during 48 s out of 100
    assert f["mean_deviation_bps_f64"] == pytest.approx(20 / 1_980 * 10_000 * 48 / 100)
    assert f["beyond_threshold_s"] == 48
    # staleness: round in force from 1000 (window start, lower bound) until 1060, then 1060
    # max = 60 s; beyond a 30 s heartbeat: 1030..1060 (30 s) + 1090..1100 (10 s)
    assert f["max_staleness_s"] == 60
    assert f["beyond_heartbeat_s"] == 40
    # hidden: borrower 10,000 USD x 48 s (priced by the WETH feed); the supplier (USDC only, no
    # reference feed) 5,000 USD x 40 s counts in the total but not for the WETH feed
    assert f["hidden_insolvency_value_s"] == 10_000 * E8 * 48
    assert f["hidden_accounts"] == 1
    rows = [_cols(r, HIDDEN) for r in m.rows()[HIDDEN.fqn]]
    assert [(r["user"], r["block_number"], r["end_block"], r["duration_s"], r["value_s"]) for r in rows] == [
        (SUPPLIER, FIRST + 5, FIRST + 9, 40, 5_000 * E8 * 40),  # sorted by user, then block
        (BORROWER, FIRST + 1, FIRST + 5, 48, 10_000 * E8 * 48)]
    assert rows[1]["feeds"] == [FEED_WETH] and rows[0]["feeds"] == []
    s = m.summary()
    assert s["hidden_insolvency_value_s"] == 10_000 * E8 * 48 + 5_000 * E8 * 40
    assert s["hidden_insolvency_usd_h"] == pytest.approx((10_000 * 48 + 5_000 * 40) / 3600)
    assert s["hidden_accounts"] == 2


def test_parameters_per_feed_and_errors() -> None:
    sc = make_scenario(["oracle_lag"], reference=True)
    m = OracleLag({"deviation_bps": {FEED_WETH.upper().replace("0X", "0x"): 100}, "heartbeat_s": 86_400})
    view = StubView(market(), sc, {WETH: 2_000 * E8, USDC: E8}, ref={WETH: 2_000 * E8})
    assert m.threshold(view, FEED_WETH) == (100, "parameter")
    assert m.heartbeat(view, FEED_WETH) == (86_400, "parameter")
    assert OracleLag().threshold(view, FEED_WETH) == (50, "default")  # nothing declared
    assert OracleLag().heartbeat(view, FEED_WETH) == (3_600, "default")
    # the feed's rules as the deployments declared them at ingest (raw.oracle_feeds) come before
    # the defaults and after the parameters; each row says which one it used
    view.feed_rules = {FEED_WETH: FeedRules(deviation_bps=25, heartbeat_s=86_400, declared_in="d.toml")}
    assert OracleLag().threshold(view, FEED_WETH) == (25, "deployment")
    assert OracleLag().heartbeat(view, FEED_WETH) == (86_400, "deployment")
    assert OracleLag({"deviation_bps": 70}).threshold(view, FEED_WETH) == (70, "parameter")
    view.feed_rules = {FEED_WETH: FeedRules(heartbeat_s=600)}
    assert OracleLag().threshold(view, FEED_WETH) == (50, "default")
    m = OracleLag()
    m.on_run_start(view)
    (row,) = m.rows()[FEEDS.fqn]
    f = _cols(row)
    assert (f["deviation_threshold_bps"], f["deviation_threshold_from"]) == (50, "default")
    assert (f["heartbeat_s"], f["heartbeat_from"]) == (600, "deployment")
    del view.feed_rules
    with pytest.raises(MetricError, match="deviation_bps"):
        OracleLag({"deviation_bps": -1})
    with pytest.raises(MetricError, match="unknown parameter"):
        OracleLag({"threshold": 5})
    with pytest.raises(MetricError, match="reference"):
        OracleLag().on_run_start(StubView(market(), make_scenario(["oracle_lag"]), {WETH: 1, USDC: 1}))
    # a per-feed value for a feed without a reference pair (a typo) used to be ignored silently,
    # the default threshold applying instead
    typo = "0x" + "5f" * 20
    for name in ("deviation_bps", "heartbeat_s"):
        with pytest.raises(MetricError, match=rf"{name}\.{typo} is not a feed of \[reference.pairs\]"):
            OracleLag({name: {typo: 100}}).on_run_start(view)


def test_engine_run_oracle_lagging_a_crash() -> None:
    # reference: 2,000 -> 1,700 at block +10; the oracle only follows at block +20. Between, the
    # borrower (10 WETH, 15,000 USDC; LT 82.5 %) is liquidatable at the reference (HF 14,025 /
    # 15,000 = 0.935) but not at the oracle (16,500 / 15,000 = 1.1): hidden for 10 blocks = 120 s.
    # The engine re-evaluates accounts on *oracle* moves (at-risk index), not on reference moves:
    # a USDC round at +10 (1.0000 -> 0.9999) with naive=True makes it re-evaluate everyone there.
    sc = make_scenario(["oracle_lag"], reference=True, delay=1000)
    inp = inputs(market(debt_usdc=15_000), [(FIRST + 20, 1_700)], refs=[(FIRST + 10, 1_700)],
                 usdc_path=[(FIRST + 10, 99_990_000)])
    r = run_inputs(sc, inp, naive=True)
    s = r.summary["oracle_lag"]
    assert s["max_deviation_bps"] == pytest.approx(300 / 1_700 * 10_000)
    hidden = [row for row in r.output.tables[HIDDEN] if row[4] == BORROWER]
    assert [(row[2], row[5], row[6]) for row in hidden] == [(FIRST + 10, FIRST + 20, 120)]
    assert hidden[0][10] == hidden[0][7] * 120


@pytest.mark.parametrize("naive", [False, True])
def test_reference_falling_through_the_liquidation_point_with_a_flat_oracle(naive: bool) -> None:
    # The oracle stays at 2,000 for the whole window (no round at all); only the reference moves.
    # Borrower: 10 WETH (LT 82.5 %), 15,000 USDC debt (USDC has no reference pair, so its reference
    # price is the oracle's 1.00). Liquidatable at the reference iff 10 x P x 0.825 < 15,000, i.e.
    # P < 1,818.18. Reference path: 1,900 at +10 (HF 15,675 / 15,000 = 1.045: not liquidatable),
    # 1,700 at +20 (HF 14,025 / 15,000 = 0.935: hidden), 1,750 at +30 (HF 14,437.5 / 15,000 = 0.9625:
    # still hidden), 1,900 at +40 (healthy). Blocks are 12 s apart, so the borrower is hidden from
    # +20 to +40: two intervals (the account is re-evaluated at the +30 reference move) of 120 s each,
    # at a reference debt value of 15,000 USD: value_s = 15,000e8 x 240.
    sc = make_scenario(["oracle_lag"], reference=True, delay=1000)
    refs = [(FIRST + 10, 1_900), (FIRST + 20, 1_700), (FIRST + 30, 1_750), (FIRST + 40, 1_900)]
    r = run_inputs(sc, inputs(market(debt_usdc=15_000), [], refs=refs), naive=naive)
    hidden = sorted((row for row in r.output.tables[HIDDEN] if row[4] == BORROWER), key=lambda row: row[2])
    cols = [_cols(row, HIDDEN) for row in hidden]
    assert [(c["block_number"], c["end_block"], c["duration_s"]) for c in cols] == [
        (FIRST + 20, FIRST + 30, 120), (FIRST + 30, FIRST + 40, 120)]
    assert [c["debt_reference_value"] for c in cols] == [15_000 * E8, 15_000 * E8]
    assert [c["value_s"] for c in cols] == [15_000 * E8 * 120, 15_000 * E8 * 120]
    # HF at the oracle: 16,500 / 15,000 = 1.1; at the reference 0.935 then 0.9625 (WAD, exact)
    assert [c["health_factor_oracle_wad"] for c in cols] == [11 * 10**17, 11 * 10**17]
    assert [c["health_factor_reference_wad"] for c in cols] == [935 * 10**15, 9625 * 10**14]
    s = r.summary["oracle_lag"]
    assert s["hidden_insolvency_value_s"] == 15_000 * E8 * 240
    assert s["hidden_accounts"] == 1
    (feed,) = r.output.tables[FEEDS]
    assert _cols(feed)["hidden_insolvency_value_s"] == 15_000 * E8 * 240
    assert r.output.liquidations == []  # the protocol never saw it: nothing to liquidate at the oracle


def test_hidden_at_the_start_and_re_evaluated_in_the_first_block_is_one_interval() -> None:
    """The run's start finds the borrower hidden (reference 1,700 in force before the window, oracle
    2,000; 15,000 USDC debt); a reference point in the first block (1,750) re-evaluates it there,
    still hidden, until 1,900 at +10. Before, the start's interval was closed at the first block
    after 0 s and a second one opened: two bt.hidden_insolvency rows with the key (run, user,
    block) of the first block. Now one interval from the first block: 120 s."""
    from fractions import Fraction

    from backtest.oracle import RefPoint

    from .metric_market import T0

    sc = make_scenario(["oracle_lag"], reference=True, delay=1000)
    inp = inputs(market(debt_usdc=15_000), [], refs=[(FIRST, 1_750), (FIRST + 10, 1_900)])
    inp.initial_refs = {"ETH/USD": RefPoint("ETH/USD", T0 - 12, Fraction(1_700), FIRST)}
    r = run_inputs(sc, inp)
    cols = [_cols(row, HIDDEN) for row in r.output.tables[HIDDEN]]
    assert [(c["user"], c["block_number"], c["end_block"], c["duration_s"]) for c in cols] == [
        (BORROWER, FIRST, FIRST + 10, 120)]
    assert r.summary["oracle_lag"]["hidden_insolvency_value_s"] == 15_000 * E8 * 120


@pytest.mark.parametrize("other_key", [False, True])
def test_a_source_change_is_not_an_answer(other_key: bool) -> None:
    """WETH's oracle source switches from FEED_WETH to FEED_NEW at +10 (AssetSourceUpdated);
    FEED_NEW's last round (2,000) was published before the window and it publishes nothing in it.
    The switch reached the metric as an oracle update of FEED_NEW with updatedAt = the switch's
    block time: it counted as an answer (updates 1) and reset the feed's staleness (max 600 s,
    from the switch to the window end). Now no answer, and FEED_NEW's round in force is 820 s old
    at the window end (updatedAt T0 - 100). With ``other_key`` FEED_NEW already priced
    another key at the start: the metric kept WETH as FEED_WETH's and credited the ETH/USD
    reference moves of FEED_NEW's keys to FEED_WETH (FEED_NEW: no deviation at all)."""
    from dataclasses import replace

    from backtest.oracle import Round, SourceChange
    from backtest.scenario import ReferenceSpec

    from .metric_market import T0

    new, other = "0x" + "f3" * 20, "0x" + "ff" * 20
    sc = make_scenario(["oracle_lag"], reference=True, delay=1000)
    sc = replace(sc, reference=ReferenceSpec({FEED_WETH: "ETH/USD", new: "ETH/USD"}))
    inp = inputs(market(debt_usdc=15_000), [], refs=[(FIRST + 20, 1_900)])
    inp.initial_rounds = {**inp.initial_rounds,
                          new: Round(new, 2_000 * E8, 8, T0 - 100, FIRST - 9, 0, T0 - 100)}
    if other_key:
        inp.feed_keys = {**inp.feed_keys, new: (other,)}
    inp.source_changes = [SourceChange(FIRST + 10, 3, WETH, new)]
    r = run_inputs(sc, inp)
    rows = {c["feed"]: c for c in (_cols(row) for row in r.output.tables[FEEDS])}
    f = rows[new]
    assert (f["updates"], f["price_key"]) == (0, other if other_key else WETH)
    assert f["max_staleness_s"] == 820  # its round's updatedAt T0 - 100 to the window end T0 + 720
    # FEED_NEW against the reference: 2,000 vs 1,900 from +20 (480 s)
    assert f["max_deviation_bps_f64"] == pytest.approx(100 / 1_900 * 10_000)
    assert f["beyond_threshold_s"] == 480


def test_staleness_counts_from_the_updated_at_of_the_round_in_force_at_the_start() -> None:
    """WETH's last round before the window was updated at T0 - 3,000 and no round lands in the
    window (T0 .. T0 + 720): at its end the round is 3,720 s old, beyond the 3,600 s heartbeat
    from T0 + 600 (120 s). The metric counted the age from the window start (a 'lower bound'
    although the engine knows the round): 720 s, never beyond the heartbeat."""
    from dataclasses import replace

    from .metric_market import T0

    sc = make_scenario(["oracle_lag"], reference=True, delay=1000)
    inp = inputs(market(), [], refs=[(FIRST + 20, 1_990)])
    inp.initial_rounds = {**inp.initial_rounds,
                          FEED_WETH: replace(inp.initial_rounds[FEED_WETH], updated_at_ts=T0 - 3_000)}
    r = run_inputs(sc, inp)
    (f,) = [_cols(row) for row in r.output.tables[FEEDS]]
    assert (f["heartbeat_s"], f["heartbeat_from"]) == (3_600, "default")
    assert f["max_staleness_s"] == 3_720
    assert f["beyond_heartbeat_s"] == 120


def test_the_feed_switched_away_from_still_follows_its_reference() -> None:
    """WETH switches from FEED_WETH to FEED_NEW at +10; FEED_WETH keeps publishing (2,000 at +30)
    while the reference moves to 1,900 at +20 and back to 2,000 at +40. The engine's reference
    update for FEED_WETH then names no key (it prices none), and with two feeds on ETH/USD the
    metric could not tell which feed it was for: FEED_WETH's reference stayed at 2,000 (no
    deviation). Now 100 / 1,900 from +20 to +40 (240 s)."""
    from dataclasses import replace

    from backtest.oracle import Round, SourceChange
    from backtest.scenario import ReferenceSpec

    from .metric_market import T0

    new = "0x" + "f3" * 20
    sc = make_scenario(["oracle_lag"], reference=True, delay=1000)
    sc = replace(sc, reference=ReferenceSpec({FEED_WETH: "ETH/USD", new: "ETH/USD"}))
    inp = inputs(market(debt_usdc=15_000), [(FIRST + 30, 2_000)],
                 refs=[(FIRST + 20, 1_900), (FIRST + 40, 2_000)])
    inp.initial_rounds = {**inp.initial_rounds,
                          new: Round(new, 2_000 * E8, 8, T0 - 100, FIRST - 9, 0, T0 - 100)}
    inp.source_changes = [SourceChange(FIRST + 10, 3, WETH, new)]
    r = run_inputs(sc, inp)
    rows = {c["feed"]: c for c in (_cols(row) for row in r.output.tables[FEEDS])}
    for feed in (FEED_WETH, new):
        f = rows[feed]
        assert f["max_deviation_bps_f64"] == pytest.approx(100 / 1_900 * 10_000), feed
        assert f["beyond_threshold_s"] == 240, feed


def test_a_key_switched_to_a_feed_without_reference_no_longer_counts_for_its_old_feed() -> None:
    """WETH's source switches from FEED_WETH (reference ETH/USD) to a feed with no reference pair
    (AssetSourceUpdated): from then on WETH is priced by that feed, so an account hidden-insolvent
    afterwards (here through another key's lag) holds no position priced by FEED_WETH. The
    metric kept WETH as FEED_WETH's key and put the interval on FEED_WETH (10,000 USD x 48 s, one
    hidden account) and in the row's feeds."""
    sc = make_scenario(["oracle_lag"], reference=True)
    view = StubView(market(), sc, {WETH: 2_000 * E8, USDC: E8}, block=FIRST, ts=1_000,
                    ref={WETH: 2_000 * E8})
    m = OracleLag()
    m.on_run_start(view)
    new = "0x" + "f3" * 20
    view.at(FIRST + 1, 1_012)
    view.reference_prices = {}
    m.on_price(view, PriceUpdate("oracle", new, (WETH,), 2_000 * E8, 2_000 * E8, 2_000 * E8, 8, True,
                                 FIRST + 1, 1_012, FIRST + 1, 3, 1_012, 1_012, source_change=True))
    hidden = AccountEval(BORROWER, health(13_000, 10_000), health(12_000, 10_000, 8250))
    m.on_block_end(view, BlockEnd(view.block, (hidden,)))
    view.at(FIRST + 5, 1_060)
    m.on_run_end(view)
    (feed,) = m.rows()[FEEDS.fqn]
    f = _cols(feed)
    assert (f["hidden_insolvency_value_s"], f["hidden_accounts"]) == (0, 0)
    (row,) = [_cols(r, HIDDEN) for r in m.rows()[HIDDEN.fqn]]
    assert (row["feeds"], row["value_s"]) == ([], 10_000 * E8 * 48)


def test_an_oracle_that_follows_the_reference_in_the_same_position_never_deviates() -> None:
    """Model ``reference``: the oracle is the reference path, instantly: each reference point and
    its answer take effect at the start of the same block (log -1; the point first), so no
    transaction can read one without the other. The metric took the maximum after the reference
    update alone, so a perfect oracle had a 1,500 bps max deviation (the 2,000 -> 1,700 step).
    The protocol model's round later in a block still counts from the point to the round (logs in
    between read the old answer): the test of a lagging oracle above."""
    sc = make_scenario(["oracle_lag"], reference=True, oracle_model="reference", delay=1000)
    r = run_inputs(sc, inputs(market(debt_usdc=15_000), [], refs=[(FIRST + 10, 1_700), (FIRST + 20, 2_100)]))
    (f,) = [_cols(row) for row in r.output.tables[FEEDS]]
    assert f["max_deviation_bps_f64"] == 0
    assert (f["updates"], f["beyond_threshold_s"], f["mean_deviation_bps_f64"]) == (2, 0, 0)


def test_a_republished_feed_that_follows_its_rule_is_never_beyond_its_threshold() -> None:
    """Model ``republish`` at 50 bps, Chainlink's rule (OCR's ``deviates``: |new - old| / |old|
    against the answer on chain). The reference falls from 2,000 to 1,990.02 at +10: 9.98 / 2,000
    = 49.9 bps from the answer, so no new answer (right); it rises to 2,010.05 at +30: 10.05 /
    2,000 = 50.25 bps, published there. The feed was never beyond its threshold. The metric
    measured the threshold against the reference instead (9.98 / 1,990.02 = 50.15 bps) and
    counted +10..+30 (240 s) beyond it; the deviation figures stay relative to the reference."""
    from dataclasses import replace
    from fractions import Fraction

    from backtest.scenario import OracleModelSpec

    sc = make_scenario(["oracle_lag"], reference=True, delay=1000)
    sc = replace(sc, oracle=OracleModelSpec(model="republish", deviation_bps=50, heartbeat_s=86_400))
    refs = [(FIRST + 10, Fraction(199_002, 100)), (FIRST + 30, Fraction(201_005, 100))]
    r = run_inputs(sc, inputs(market(debt_usdc=15_000), [], refs=refs))  # type: ignore[arg-type]
    (f,) = [_cols(row) for row in r.output.tables[FEEDS]]
    assert (f["deviation_threshold_bps"], f["deviation_threshold_from"]) == (50, "republish")
    assert f["updates"] == 1  # the +30 answer only
    assert f["max_deviation_bps_f64"] == pytest.approx(998 / 199_002 * 10_000)  # vs the reference
    assert f["beyond_threshold_s"] == 0


def test_beyond_the_threshold_is_measured_from_the_answer_on_chain() -> None:
    """Model ``protocol``: the feed's answer stays 2,000 while the reference rises to 2,010.05 at
    +10; the feed publishes 2,010.05 at +20. 10.05 / 2,000 = 50.25 bps from the answer on chain:
    beyond the 50 bps threshold by the feed's rule for those 10 blocks (120 s). Measured against
    the reference (10.05 / 2,010.05 = 49.998 bps) the metric found nothing beyond it."""
    from fractions import Fraction

    sc = make_scenario(["oracle_lag"], reference=True, delay=1000)
    inp = inputs(market(debt_usdc=15_000), [], refs=[(FIRST + 10, Fraction(201_005, 100))])  # type: ignore[list-item]
    ts = inp.blocks.timestamp(FIRST + 20)
    inp.rounds = [*inp.rounds, Round(FEED_WETH, 201_005_000_000, 8, ts, FIRST + 20, 5, ts)]
    r = run_inputs(sc, inp)
    (f,) = [_cols(row) for row in r.output.tables[FEEDS]]
    assert (f["deviation_threshold_bps"], f["updates"]) == (50, 1)
    assert f["beyond_threshold_s"] == 120


def test_a_supply_not_used_as_collateral_exposes_no_feed_to_hidden_insolvency() -> None:
    """Two feeds with a reference: WETH's (ETH/USD) and DAI's (DAI/USD). The borrower (10 WETH
    collateral, 17,000 USDC debt) also supplies 1,000 DAI with its collateral flag off: DAI's price
    is not in its health factor (calculateUserAccountData skips a reserve not used as collateral),
    so DAI's feed cannot have hidden its insolvency. Hidden 10,000 USD x 48 s (hand-made
    evaluations): the metric credited it to FEED_DAI too (its hidden_insolvency_value_s and
    hidden_accounts, and the row's feeds), as it did any position the account held."""
    from dataclasses import replace

    from backtest.scenario import ReferenceSpec
    from protocols.aave_v3.configuration import ReserveConfiguration
    from protocols.aave_v3.state import ReserveData, UserReserve
    from protocols.fixed_point import RAY

    from .metric_market import T0, TREASURY

    dai, feed_dai = "0x" + "da" * 20, "0x" + "fd" * 20
    state = market()
    cfg = ReserveConfiguration(ltv=7500, liquidation_threshold=8000, liquidation_bonus=10500, decimals=18,
                               active=True, borrowing_enabled=True, liquidation_protocol_fee=0)
    state.add_reserve(ReserveData(asset=dai, id=2, configuration=cfg, last_update_timestamp=T0 - 100,
                                  a_token="0x" + "a2" * 20, variable_debt_token="0x" + "d2" * 20,
                                  stable_debt_token="0x" + "c2" * 20, treasury=TREASURY,
                                  a_token_underlying_balance=10**30))
    b = state.users[BORROWER]
    state.users[BORROWER] = replace(b, reserves={**b.reserves, dai: UserReserve(
        scaled_a_token_balance=1_000 * 10**18, a_token_previous_index=RAY)})  # collateral bit 5 off
    assert not (state.users[BORROWER].configuration >> 5) & 1
    sc = make_scenario(["oracle_lag"], reference=True)
    sc = replace(sc, reference=ReferenceSpec({FEED_WETH: "ETH/USD", feed_dai: "DAI/USD"}))
    view = StubView(state, sc, {WETH: 2_000 * E8, USDC: E8, dai: E8}, block=FIRST, ts=1_000,
                    ref={WETH: 2_000 * E8, dai: E8})
    view.feed_keys = {**view.feed_keys, feed_dai: (dai,)}
    m = OracleLag()
    m.on_run_start(view)
    view.at(FIRST + 1, 1_012)
    hidden = AccountEval(BORROWER, health(13_000, 10_000), health(12_000, 10_000, 8250))
    m.on_block_end(view, BlockEnd(view.block, (hidden,)))
    view.at(FIRST + 5, 1_060)
    m.on_run_end(view)
    rows = {c["feed"]: c for c in (_cols(r) for r in m.rows()[FEEDS.fqn])}
    assert (rows[FEED_WETH]["hidden_insolvency_value_s"], rows[FEED_WETH]["hidden_accounts"]) == (
        10_000 * E8 * 48, 1)
    assert (rows[feed_dai]["hidden_insolvency_value_s"], rows[feed_dai]["hidden_accounts"]) == (0, 0)
    (row,) = [_cols(r, HIDDEN) for r in m.rows()[HIDDEN.fqn]]
    assert row["feeds"] == [FEED_WETH]


def test_an_e_mode_account_is_exposed_to_its_category_price_source_feed() -> None:
    """v3.0 e-mode: the borrower is in category 1 (WETH in it) whose price source PS is read for
    WETH (GenericLogic.calculateUserAccountData: eModeAssetPrice), and PS's feed has the ETH/USD
    reference; WETH's own feed has none. Hidden 10,000 USD x 48 s: its insolvency hid behind PS's
    feed. The metric looked up the feeds of the assets held (WETH, USDC: no reference) and
    credited no feed at all."""
    from dataclasses import replace

    from backtest.scenario import ReferenceSpec
    from protocols.aave_v3.state import EModeCategory

    ps, feed_ps = "0x" + "9c" * 20, "0x" + "fc" * 20
    state = market()
    w = state.reserves[WETH]
    state.reserves[WETH] = replace(w, configuration=replace(w.configuration, emode_category=1))
    state.emode_categories[1] = EModeCategory(9000, 9300, 10100, price_source=ps, label="ETH")
    state.users[BORROWER] = replace(state.users[BORROWER], emode_category=1)
    assert state.rules.emode_price_source  # v3.0: a category may price its assets by its source
    sc = make_scenario(["oracle_lag"], reference=True)
    sc = replace(sc, reference=ReferenceSpec({feed_ps: "ETH/USD"}))
    view = StubView(state, sc, {WETH: 2_000 * E8, USDC: E8, ps: 2_000 * E8}, block=FIRST, ts=1_000,
                    ref={ps: 2_000 * E8})
    view.feed_keys = {**view.feed_keys, feed_ps: (ps,)}
    m = OracleLag()
    m.on_run_start(view)
    view.at(FIRST + 1, 1_012)
    hidden = AccountEval(BORROWER, health(13_000, 10_000), health(12_000, 10_000, 8250))
    m.on_block_end(view, BlockEnd(view.block, (hidden,)))
    view.at(FIRST + 5, 1_060)
    m.on_run_end(view)
    (f,) = [_cols(r) for r in m.rows()[FEEDS.fqn]]
    assert (f["feed"], f["hidden_insolvency_value_s"], f["hidden_accounts"]) == (feed_ps, 10_000 * E8 * 48, 1)
    (row,) = [_cols(r, HIDDEN) for r in m.rows()[HIDDEN.fqn]]
    assert row["feeds"] == [feed_ps]
