"""The oracle model (:mod:`backtest.oracle`) on known paths, with expectations worked by hand.

Blocks are ``Blocks.regular(10, 40, t0=0)``: block ``n`` has timestamp ``12 * (n - 10)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import pytest

from backtest.api import run_inputs
from backtest.clock import Blocks
from backtest.engine import Replay
from backtest.metrics.base import Metric, PriceUpdate, View
from backtest.oracle import FeedRules, RefPoint, Round, publications
from backtest.scenario import OracleModelSpec
from tests.backtest.markets import COLL, FEED_C, FROM, inputs, market, scenario

BLOCKS = Blocks.regular(10, 40, 0)
FEED = "0x" + "fe" * 20


def _ref(ts: int, price: str) -> RefPoint:
    b = BLOCKS.first_at_or_after(ts)
    assert b is not None
    return RefPoint("ETH/USD", ts, Fraction(price), b)


def test_republish_with_deviation_and_heartbeat_gives_the_exact_rounds() -> None:
    """Deviation 1 % (100 bps), heartbeat 60 s, 8 decimals. Path and decisions:
    t=0 100.00 first point → published; t=12 100.50 (0.50 % off 100.00, 12 s) → no;
    t=24 101.01 (1.01 %) → yes; t=36 101.50 (0.485 % off 101.01, 12 s) → no;
    t=84 101.60 (0.58 %, but 60 s since t=24: heartbeat) → yes;
    t=96 100.58 (|100.58 − 101.60| = 1.02 > 1 % × 101.60 = 1.016) → yes;
    t=108 99.58 (0.994 % off 100.58, 12 s) → no."""
    refs = [_ref(t, p) for t, p in ((0, "100.00"), (12, "100.50"), (24, "101.01"), (36, "101.50"),
                                    (84, "101.60"), (96, "100.58"), (108, "99.58"))]
    spec = OracleModelSpec(model="republish", deviation_bps=100, heartbeat_s=60)
    pubs = publications(spec, [], refs, {FEED: "ETH/USD"}, {FEED: 8}, BLOCKS, 40)
    assert [(p.block_number, p.log_index, p.answer, p.updated_at_ts, p.accepted) for p in pubs] == [
        (10, -1, 100_00000000, 0, True), (12, -1, 101_01000000, 24, True), (17, -1, 101_60000000, 84, True),
        (18, -1, 100_58000000, 96, True)]


def test_republish_without_scenario_settings_follows_each_feeds_declared_rules() -> None:
    """The same path as above, two feeds re-publishing it: one declared 100 bps / 60 s (the same
    rounds as above), one 300 bps / 3600 s (only the first point: no move reaches 3 % and the
    heartbeat never elapses). A scenario value wins over the declared one; a feed with neither
    is refused, naming what is missing."""
    refs = [_ref(t, p) for t, p in ((0, "100.00"), (12, "100.50"), (24, "101.01"), (36, "101.50"),
                                    (84, "101.60"), (96, "100.58"), (108, "99.58"))]
    other = "0x" + "fd" * 20
    rules = {FEED: FeedRules(deviation_bps=100, heartbeat_s=60), other: FeedRules(deviation_bps=300,
                                                                                  heartbeat_s=3600)}
    pairs = {FEED: "ETH/USD", other: "ETH/USD"}
    pubs = publications(OracleModelSpec(model="republish"), [], refs, pairs, {FEED: 8, other: 8}, BLOCKS, 40,
                        rules)
    by_feed: dict[str, list[int]] = {}
    for p in pubs:
        by_feed.setdefault(p.feed, []).append(p.block_number)
    assert by_feed == {FEED: [10, 12, 17, 18], other: [10]}
    pubs = publications(OracleModelSpec(model="republish", heartbeat_s=60), [], refs, pairs,
                        {FEED: 8, other: 8}, BLOCKS, 40, rules)
    assert [p.block_number for p in pubs if p.feed == other] == [10, 17]  # the scenario's 60 s heartbeat
    with pytest.raises(ValueError, match=r"feed 0xfd.*needs its deviation_bps and heartbeat_s: set "
                       r"oracle.deviation_bps and oracle.heartbeat_s"):
        publications(OracleModelSpec(model="republish"), [], refs, pairs, {FEED: 8, other: 8}, BLOCKS, 40,
                     {FEED: rules[FEED]})


def test_declared_bounds_hold_answers_the_chain_never_saw() -> None:
    """A feed's declared min/max answer (its aggregator's bounds) reject reference and shocked
    answers outside them, as the real aggregator would; the rounds as they happened passed the
    chain's own bounds and are not judged again. Scenario bounds win over declared ones."""
    rules = {FEED: FeedRules(min_answer=95_00000000, max_answer=10**12)}
    refs = [_ref(0, "100"), _ref(12, "94.99999999"), _ref(24, "96")]
    pubs = publications(OracleModelSpec(model="reference"), [], refs, {FEED: "ETH/USD"}, {FEED: 8}, BLOCKS,
                        40, rules)
    assert [(p.answer, p.accepted) for p in pubs] == [(100_00000000, True), (94_99999999, False),
                                                     (96_00000000, True)]
    pubs = publications(OracleModelSpec(model="reference", min_answer=1), [], refs, {FEED: "ETH/USD"},
                        {FEED: 8}, BLOCKS, 40, rules)
    assert all(p.accepted for p in pubs)
    rounds = [_round(12, 0, 90_00000000)]
    as_seen = publications(OracleModelSpec(), rounds, [], {}, {}, BLOCKS, 40, rules)
    assert [p.accepted for p in as_seen] == [True]
    assert [p.accepted for p in publications(OracleModelSpec(), rounds, [], {}, {}, BLOCKS, 40, rules,
                                             synthetic_rounds=True)] == [False]


def test_reference_model_floors_to_the_feed_decimals() -> None:
    refs = [_ref(12, "1999.999999999")]
    spec = OracleModelSpec(model="reference")
    pubs = publications(spec, [], refs, {FEED: "ETH/USD"}, {FEED: 8}, BLOCKS, 40)
    assert [(p.block_number, p.answer) for p in pubs] == [(11, 1999_99999999)]


def _round(block: int, li: int, answer: int) -> Round:
    return Round(FEED, answer, 8, BLOCKS.timestamp(block), block, li, BLOCKS.timestamp(block))


def test_delay_in_blocks_and_seconds_makes_an_answer_knowable_exactly_that_much_later() -> None:
    rounds = [_round(12, 5, 100), _round(20, 0, 90), _round(38, 3, 80)]
    # 3 blocks: usable at the start (log -1) of block 15, 23; 38 + 3 = 41 is past the window: dropped
    p = publications(OracleModelSpec(delay_blocks=3), rounds, [], {}, {}, BLOCKS, 40)
    assert [(x.block_number, x.log_index, x.happened_block, x.answer) for x in p] == [
        (15, -1, 12, 100), (23, -1, 20, 90)]
    # 30 s: round of block 12 (ts 24) usable from the first block with ts >= 54 → block 15 (ts 60);
    # block 20 (ts 120) → ts >= 150 → block 23 (ts 156); block 38 (ts 336) → 366 → block 41: beyond
    p = publications(OracleModelSpec(delay_s=30), rounds, [], {}, {}, BLOCKS, 40)
    assert [(x.block_number, x.happened_ts, x.answer) for x in p] == [(15, 24, 100), (23, 120, 90)]
    # 24 s is exactly two blocks: block 12 → ts >= 48 → block 14
    p = publications(OracleModelSpec(delay_s=24), rounds[:1], [], {}, {}, BLOCKS, 40)
    assert [(x.block_number, x.log_index) for x in p] == [(14, -1)]
    # both: the later of the two (not their sum): 1 block or 30 s → block 15; 5 blocks or 30 s → 17
    p = publications(OracleModelSpec(delay_blocks=1, delay_s=30), rounds[:1], [], {}, {}, BLOCKS, 40)
    assert [(x.block_number, x.log_index) for x in p] == [(15, -1)]
    p = publications(OracleModelSpec(delay_blocks=5, delay_s=30), rounds[:1], [], {}, {}, BLOCKS, 40)
    assert [(x.block_number, x.log_index) for x in p] == [(17, -1)]
    # no delay: the round's own position
    p = publications(OracleModelSpec(), rounds, [], {}, {}, BLOCKS, 40)
    assert [(x.block_number, x.log_index) for x in p] == [(12, 5), (20, 0), (38, 3)]


class _Prices(Metric):
    """Records, after every oracle update, the price the protocol reads for the collateral."""

    name = "test_prices"

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self.seen: list[tuple[int, int, bool, int]] = []

    def on_price(self, view: View, update: PriceUpdate) -> None:
        if update.kind == "oracle" and update.feed == FEED_C:
            self.seen.append((update.block_number, update.answer, update.accepted, view.prices[COLL]))


def test_answers_outside_the_bounds_are_rejected_and_the_previous_price_stays() -> None:
    """min 1,500, max 2,500 USD: 3,000 and 1,000 are rejected (the price stays at the last
    accepted answer), 2,200 is accepted."""
    path = [2_000 * 10**8, 3_000 * 10**8, 1_000 * 10**8, 2_200 * 10**8, 2_500 * 10**8]
    book = market(8000, 10500, [(10**18, 100 * 10**6)])
    # (markets.scenario appends ``extra`` inside the [oracle] table)
    sc = scenario(to_block=FROM + 10, extra=f"min_answer = {1_500 * 10**8}\nmax_answer = {2_500 * 10**8}\n")
    assert (sc.oracle.min_answer, sc.oracle.max_answer) == (1_500 * 10**8, 2_500 * 10**8)
    rec = _Prices()
    Replay(sc, inputs(book, path, to_block=FROM + 10), "r", metrics=[rec]).run()
    assert rec.seen == [
        (FROM + 1, 2_000 * 10**8, True, 2_000 * 10**8), (FROM + 2, 3_000 * 10**8, False, 2_000 * 10**8),
        (FROM + 3, 1_000 * 10**8, False, 2_000 * 10**8), (FROM + 4, 2_200 * 10**8, True, 2_200 * 10**8),
        (FROM + 5, 2_500 * 10**8, True, 2_500 * 10**8)]
    res = run_inputs(sc, inputs(book, path, to_block=FROM + 10))
    assert res.output.record.prices_consumed == 5


def test_republish_starts_from_the_answer_in_force_at_the_window_start() -> None:
    """The republished feed's answer at the window start is the reference price in force then
    ($2,000 at T0); the model then publishes only on a 1 % move or after the 3,600 s heartbeat.
    Its first point in the window ($2,000.50, 0.025 % off, 24 s later) used to be published
    anyway (the model started with no last answer), and the heartbeat ran from there."""
    import dataclasses

    from tests.backtest.markets import T0

    book = market(8000, 10500, [(10**18, 100 * 10**6)])
    inp = inputs(book, [2_000 * 10**8] * 5, to_block=FROM + 10, refs=[Fraction("2000.5")] * 5,
                 ref_start=Fraction(2_000))
    inp = dataclasses.replace(inp, feed_rules={FEED_C: FeedRules(deviation_bps=100, heartbeat_s=3_600)})
    rec = _Prices()
    Replay(scenario(to_block=FROM + 10, reference=True, oracle="republish"), inp, "r", metrics=[rec]).run()
    assert rec.seen == []
    # the heartbeat counts from the answer in force (T0): due at T0 + 3,600 (block FROM + 299)
    blocks = Blocks.regular(FROM - 1, FROM + 400, T0)
    refs = [RefPoint("COLL/USD", T0 + 24, Fraction("2000.5"), FROM + 1),
            RefPoint("COLL/USD", T0 + 3_600, Fraction("2000.5"), FROM + 299)]
    spec = OracleModelSpec(model="republish", deviation_bps=100, heartbeat_s=3_600)
    pubs = publications(spec, [], refs, {FEED_C: "COLL/USD"}, {FEED_C: 8}, blocks, FROM + 400,
                        initial={FEED_C: (2_000 * 10**8, T0)})
    assert [(p.block_number, p.answer) for p in pubs] == [(FROM + 299, 2_000_50000000)]


def test_bounds_with_min_above_max_are_refused() -> None:
    """oracle.min_answer above oracle.max_answer rejects every answer: the replay ran with the
    prices frozen at the window start and no error."""
    from backtest.errors import ScenarioError

    with pytest.raises(ScenarioError, match=r"min_answer 3 is above max_answer 2") as e:
        scenario(extra="min_answer = 3\nmax_answer = 2\n")
    assert e.value.field == "oracle.min_answer"
    assert (scenario(extra="min_answer = 2\nmax_answer = 2\n").oracle.max_answer) == 2


class _Start(Metric):
    """The collateral's price when the run starts."""

    name = "test_start"

    def on_run_start(self, view: View) -> None:
        self.price = view.prices[COLL]


@pytest.mark.parametrize("model", ["reference", "republish"])
def test_the_starting_reference_answer_is_held_to_the_feeds_bounds(model: str) -> None:
    """A replaced feed starts from the reference price in force at the window start: an answer the
    chain never saw, held like every later one to the feed's declared bounds (min $95). At $90 it
    was used anyway; now the feed keeps its last round ($100), as an aggregator refusing it would."""
    import dataclasses

    book = market(8000, 10500, [(10**18, 10 * 10**6)])
    rules = {FEED_C: FeedRules(deviation_bps=100, heartbeat_s=3_600, min_answer=95 * 10**8)}
    for start, price in ((Fraction(90), 100 * 10**8), (Fraction(96), 96 * 10**8)):
        inp = dataclasses.replace(inputs(book, [100 * 10**8] * 5, to_block=FROM + 10, refs=[start] * 5,
                                         ref_start=start), feed_rules=rules)
        rec = _Start()
        Replay(scenario(to_block=FROM + 10, reference=True, oracle=model), inp, "r", metrics=[rec]).run()
        assert rec.price == price


@pytest.mark.parametrize("shocked", [False, True])
def test_a_round_just_before_the_window_takes_effect_after_the_delay(shocked: bool) -> None:
    """With delay_blocks = 3, a round of block FROM - 1 is usable from FROM + 2: the inputs carry it
    among the rounds (the answer in force at the start is the round before it). A shock on another
    feed used to drop it (a path point before the window start was neither the start nor a later
    round), so the feed never moved; then it folded into the answer in force at the window start
    and took effect the delay after the first block (FROM + 3), a block late; a feed no shock
    moves now keeps its rounds as they are (FROM + 2)."""
    import dataclasses

    from tests.backtest.markets import FEED_D, T0

    book = market(8000, 10500, [(10**18, 100 * 10**6)])
    inp = inputs(book, [2_000 * 10**8], to_block=FROM + 10)
    before = Round(FEED_C, 2_000 * 10**8, 8, T0 - 600, FROM - 50, 0, T0 - 600)
    pending = Round(FEED_C, 1_900 * 10**8, 8, T0, FROM - 1, 0, T0)
    inp = dataclasses.replace(inp, rounds=[pending], initial_rounds={**inp.initial_rounds, FEED_C: before})
    shock = (f'\n[[shock]]\nkind = "shift"\npct = 0.1\nat_ts = {T0 + 60}\nassets = ["{FEED_D}"]\n'
             if shocked else "")
    rec = _Prices()
    Replay(scenario(to_block=FROM + 10, extra="delay_blocks = 3\n" + shock), inp, "r", metrics=[rec]).run()
    assert rec.seen == [(FROM + 2, 1_900 * 10**8, True, 1_900 * 10**8)]


def test_a_shock_elsewhere_does_not_move_a_round_to_an_earlier_block_of_the_same_second() -> None:
    """Block timestamps may repeat (Blocks allows it): a shocked path point at second ``ts`` went
    to the first block with that timestamp, so under any shock (here on the other feed) a round of
    block FROM + 3 took effect in FROM + 2, which shares its second, before it happened."""
    import dataclasses

    from tests.backtest.markets import FEED_D, T0

    rows = [(n, T0 + 12 * (n - FROM + 1) - (12 if n >= FROM + 3 else 0), 0, False)
            for n in range(FROM - 1, FROM + 11)]
    blocks = Blocks(rows)
    ts = blocks.timestamp(FROM + 3)
    assert blocks.timestamp(FROM + 2) == ts
    rnd = Round(FEED_C, 1_500 * 10**8, 8, ts, FROM + 3, 0, ts)
    inp = dataclasses.replace(inputs(market(8000, 10500, [(10**18, 100 * 10**6)]), [2_000 * 10**8],
                                     to_block=FROM + 10), blocks=blocks, rounds=[rnd])
    shock = f'\n[[shock]]\nkind = "shift"\npct = 0.1\nat_ts = {T0 + 60}\nassets = ["{FEED_D}"]\n'
    rec = _Prices()
    Replay(scenario(to_block=FROM + 10, extra=shock), inp, "r", metrics=[rec]).run()
    assert [(b, a) for b, a, _, _ in rec.seen] == [(FROM + 3, 1_500 * 10**8)]


def test_republish_measures_deviation_and_heartbeat_from_the_last_accepted_answer() -> None:
    """An OCR feed's nodes compare each observation with the answer on chain
    (``LatestTransmissionDetails``: its latest answer and timestamp), and an answer outside
    [minAnswer, maxAnswer] never lands there (OCR2 does not report it, OCR1's ``transmit``
    reverts). So a rejected re-published answer moves neither the deviation base nor the
    heartbeat. Declared min $100, 1 % / 60 s:

    * $110 (t=0) accepted; $99.70 (t=12, 9.4 % off) rejected; $100.00 (t=24): 9.1 % off the $110
      on chain → published and accepted. Measured from the rejected $99.70 (0.3 %) it was
      skipped, and the feed stayed at $110 with the reference at $100.
    * $100.50 (t=0) accepted; $99.40 (t=36, 1.09 % off) rejected; $100.20 (t=60, 0.3 % off $100.50)
      is due by the heartbeat of the t=0 answer; counted from the rejected one (24 s) it was not."""
    rules = {FEED: FeedRules(deviation_bps=100, heartbeat_s=60, min_answer=100_00000000)}
    spec = OracleModelSpec(model="republish")
    for path, want in (
            (((0, "110"), (12, "99.7"), (24, "100")),
             [(0, 110_00000000, True), (12, 99_70000000, False), (24, 100_00000000, True)]),
            (((0, "100.5"), (36, "99.4"), (60, "100.2")),
             [(0, 100_50000000, True), (36, 99_40000000, False), (60, 100_20000000, True)])):
        pubs = publications(spec, [], [_ref(t, p) for t, p in path], {FEED: "ETH/USD"}, {FEED: 8}, BLOCKS,
                            40, rules)
        assert [(p.updated_at_ts, p.answer, p.accepted) for p in pubs] == want


class _Positions(Metric):
    """Records where each answer of the collateral feed took effect."""

    name = "test_positions"

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self.seen: list[tuple[int, int, int, int]] = []

    def on_price(self, view: View, update: PriceUpdate) -> None:
        if update.kind == "oracle" and update.feed == FEED_C:
            self.seen.append((update.block_number, update.log_index, update.answer, update.updated_at_ts))


@pytest.mark.parametrize("delay", [0, 3])
def test_a_shock_on_another_feed_leaves_a_feeds_answers_where_they_were(delay: int) -> None:
    """A shock on FEED_D only must not move FEED_C's answers. Under any shock every feed's rounds
    were rebuilt from its price path: FEED_C's round of the first block (log 7) took effect at the
    start of that block (log -1), of two rounds in one second only the second was kept, and with
    delay_blocks = 3 a round of block FROM - 1 (usable from FROM + 2) folded into the window start
    and landed at FROM + 3. Now a feed no shock moves keeps its rounds as they are."""
    import dataclasses

    from tests.backtest.markets import FEED_D, T0

    book = market(8000, 10500, [(10**18, 100 * 10**6)])
    base = inputs(book, [2_000 * 10**8], to_block=FROM + 10)
    t = base.blocks.timestamp
    rounds = [Round(FEED_C, 1_950 * 10**8, 8, t(FROM), FROM, 7, t(FROM)),
              Round(FEED_C, 1_940 * 10**8, 8, t(FROM + 5), FROM + 5, 1, t(FROM + 5)),
              Round(FEED_C, 1_930 * 10**8, 8, t(FROM + 5), FROM + 5, 2, t(FROM + 5))]
    if delay:
        rounds.insert(0, Round(FEED_C, 1_900 * 10**8, 8, T0, FROM - 1, 0, T0))
    inp = dataclasses.replace(base, rounds=rounds, initial_rounds={
        **base.initial_rounds, FEED_C: Round(FEED_C, 2_000 * 10**8, 8, T0 - 600, FROM - 50, 0, T0 - 600)})
    shock = f'\n[[shock]]\nkind = "shift"\npct = 0.1\nat_ts = {T0 + 60}\nassets = ["{FEED_D}"]\n'
    seen = []
    for extra in ("", shock):
        rec = _Positions()
        Replay(scenario(to_block=FROM + 10, extra=f"delay_blocks = {delay}\n" + extra), inp, "r",
               metrics=[rec]).run()
        seen.append(rec.seen)
    assert len(seen[0]) == len(rounds)
    assert seen[1] == seen[0]


def test_a_source_change_of_the_constant_priced_weth_leaves_it_at_one_ether() -> None:
    """Aave v2's AaveOracle returns 1 ether for its WETH before it looks at the asset's source
    (``getAssetPrice``: ``if (asset == WETH) return 1 ether``), so an ``AssetSourceUpdated`` for
    WETH inside the window changes nothing. The replay switched the key to the new feed and priced
    it at the feed's answer (here 2,000 instead of 1)."""
    import dataclasses

    from backtest.oracle import SourceChange
    from tests.backtest.markets import T0

    book = market(8000, 10500, [(10**18, 100 * 10**6)])
    base = inputs(book, [2_000 * 10**8], to_block=FROM + 10)
    weth = f"constant:{COLL}"
    one = Round(weth, 10**8, 8, T0 - 10**6, FROM - 900, 0, T0 - 10**6)
    initial = {k: v for k, v in base.initial_rounds.items() if k != FEED_C} | {weth: one}
    inp = dataclasses.replace(base, feed_keys={**{k: v for k, v in base.feed_keys.items() if k != FEED_C},
                                               weth: (COLL,)},
                              initial_rounds={**initial, FEED_C: base.initial_rounds[FEED_C]},
                              source_changes=[SourceChange(FROM + 3, 2, COLL, FEED_C)])
    seen: list[int] = []

    class _End(Metric):
        name = "test_end"

        def on_run_end(self, view: View) -> None:
            seen.append(view.prices[COLL])

    Replay(scenario(to_block=FROM + 10), inp, "r", metrics=[_End()]).run()
    assert seen == [10**8]


def test_a_shock_later_in_the_window_leaves_the_feeds_round_from_before_it_on_time() -> None:
    """delay_blocks = 3; FEED_C's round of block FROM - 1 (1,900) is usable from FROM + 2, and a
    shift shock on FEED_C itself from T0 + 60 (block FROM + 4's second) moves the price in force
    then (1,900 -> 2,090, taking effect at FROM + 7) and its round of FROM + 6 (1,800 -> 1,980, at
    FROM + 9). The shock does not reach the window start, yet the round from before the window
    was folded into the start (the shocked path's price at t0) and delayed from the first block:
    FROM + 3, a block late. A start the shocks leave alone now keeps the rounds it folds."""
    import dataclasses

    from tests.backtest.markets import T0

    book = market(8000, 10500, [(10**18, 100 * 10**6)])
    base = inputs(book, [2_000 * 10**8], to_block=FROM + 10)
    t = base.blocks.timestamp
    before = Round(FEED_C, 2_000 * 10**8, 8, T0 - 600, FROM - 50, 0, T0 - 600)
    rounds = [Round(FEED_C, 1_900 * 10**8, 8, T0, FROM - 1, 0, T0),
              Round(FEED_C, 1_800 * 10**8, 8, t(FROM + 6), FROM + 6, 0, t(FROM + 6))]
    inp = dataclasses.replace(base, rounds=rounds, initial_rounds={**base.initial_rounds, FEED_C: before})
    shock = f'\n[[shock]]\nkind = "shift"\npct = 0.1\nat_ts = {T0 + 60}\nassets = ["{FEED_C}"]\n'
    rec = _Prices()
    Replay(scenario(to_block=FROM + 10, extra="delay_blocks = 3\n" + shock), inp, "r", metrics=[rec]).run()
    assert [(b, a) for b, a, _, _ in rec.seen][:1] == [(FROM + 2, 1_900 * 10**8)]
    assert [(b, a) for b, a, _, _ in rec.seen] == [
        (FROM + 2, 1_900 * 10**8), (FROM + 7, 2_090 * 10**8), (FROM + 9, 1_980 * 10**8)]


def test_a_shock_on_another_feed_does_not_judge_a_feeds_real_rounds_again() -> None:
    """FEED_C's rounds as they happened (2,000, 1,000, 2,200) passed the chain's own bounds; its
    declared bounds (min 1,500: the deployments' aggregator, say a later phase's than the one that
    published these rounds) are not applied to them. A shock on FEED_D only (the declared bounds are
    an input here, not a fake) turned on the declared bounds for every feed's rounds, so FEED_C's
    real 1,000 was rejected and the collateral stayed at 2,000. Only shocked answers are judged."""
    import dataclasses

    from tests.backtest.markets import FEED_D, T0

    book = market(8000, 10500, [(10**18, 100 * 10**6)])
    inp = dataclasses.replace(inputs(book, [2_000 * 10**8, 1_000 * 10**8, 2_200 * 10**8], to_block=FROM + 10),
                              feed_rules={FEED_C: FeedRules(min_answer=1_500 * 10**8)})
    shock = f'\n[[shock]]\nkind = "shift"\npct = 0.1\nat_ts = {T0 + 60}\nassets = ["{FEED_D}"]\n'
    seen = []
    for extra in ("", shock):
        rec = _Prices()
        Replay(scenario(to_block=FROM + 10, extra=extra), inp, "r", metrics=[rec]).run()
        seen.append(rec.seen)
    assert [a for _, a, ok, _ in seen[0] if ok] == [2_000 * 10**8, 1_000 * 10**8, 2_200 * 10**8]
    assert seen[1] == seen[0]
    # FEED_C itself halved from T0 + 30: its round of T0 + 24 is the chain's (accepted); the price in
    # force at T0 + 30 (2,000 -> 1,000) and the rounds after (500, 1,100) are shocked, below 1,500
    rec = _Prices()
    Replay(scenario(to_block=FROM + 10, extra=shock.replace(FEED_D, FEED_C).replace(
        "pct = 0.1", "pct = -0.5").replace(str(T0 + 60), str(T0 + 30))), inp, "r", metrics=[rec]).run()
    assert [(a, ok) for _, a, ok, _ in rec.seen] == [
        (2_000 * 10**8, True), (1_000 * 10**8, False), (500 * 10**8, False), (1_100 * 10**8, False)]


def test_a_resample_publishes_no_answer_of_its_own() -> None:
    """A resample inserts carried-forward points so that a later ramp acts between a feed's
    rounds; it moves no price. Each point it inserted became an oracle round in the replay (an
    update every 12 s with a fresh updatedAt: the feed looked fresh to the staleness figures, the
    liquidator re-read the book at each one), and the feed's real rounds were rebuilt at the start
    of their blocks. A resample alone now leaves the feed's answers as they were; with a ramp after
    it, the points the ramp moved are the only new answers (by hand: a 10 % rise ramped over 48 s
    from block FROM + 4's second on a feed flat at 2,000 moves the grid points 12, 24, 36 and 48 s
    into it by 1/4, 2/4, 3/4 and 4/4 of 200)."""
    import dataclasses

    from tests.backtest.markets import T0

    book = market(8000, 10500, [(10**18, 100 * 10**6)])
    base = inputs(book, [2_000 * 10**8], to_block=FROM + 10)
    t = base.blocks.timestamp
    rounds = [Round(FEED_C, 2_000 * 10**8, 8, t(FROM + 2), FROM + 2, 7, t(FROM + 2))]
    inp = dataclasses.replace(base, rounds=rounds)
    resample = f'\n[[shock]]\nkind = "resample"\nstep_s = 12\nfrom_ts = {T0}\nto_ts = {t(FROM + 10)}\n'
    ramp = f'\n[[shock]]\nkind = "shift"\npct = 0.1\nat_ts = {t(FROM + 4)}\nramp_s = 48\n'
    seen = []
    for extra in ("", resample, resample + ramp):
        rec = _Positions()
        Replay(scenario(to_block=FROM + 10, extra=extra), inp, "r", metrics=[rec]).run()
        seen.append(rec.seen)
    assert seen[0] == [(FROM + 2, 7, 2_000 * 10**8, t(FROM + 2))]
    assert seen[1] == seen[0]
    assert [(b, a) for b, _, a, _ in seen[2]] == [
        (FROM + 2, 2_000 * 10**8), (FROM + 5, 2_050 * 10**8), (FROM + 6, 2_100 * 10**8),
        (FROM + 7, 2_150 * 10**8), (FROM + 8, 2_200 * 10**8)]


@pytest.mark.parametrize("delay", ["delay_blocks = 3", "delay_s = 36"])
def test_a_shock_before_the_window_moves_the_answer_in_force_at_once_under_a_delay(delay: str) -> None:
    """An oracle delay holds back what is published late; the round in force at the window start
    (FEED_C at 2,000, from block FROM - 50) was usable long before. A 50 % shift from before it
    moves that answer: 1,000 from the first block. The shocked start was published as a new round
    of the first block and delayed with the rest, so the first 3 blocks (36 s) ran at the
    unshocked 2,000. The round of FROM - 1 the delay holds back (1,900) still lands the delay
    after its own block, shocked: 950 at FROM + 2 (by hand). A shift from between the two (T0 - 300,
    after the round in force, before the held-back one) publishes 1,000 then, usable by the start
    (36 s later): in force at the start, then the held-back round, shocked, at FROM + 2."""
    import dataclasses

    from tests.backtest.markets import T0

    book = market(8000, 10500, [(10**18, 100 * 10**6)])
    base = inputs(book, [2_000 * 10**8], to_block=FROM + 10)
    before = Round(FEED_C, 2_000 * 10**8, 8, T0 - 600, FROM - 50, 0, T0 - 600)
    pending = Round(FEED_C, 1_900 * 10**8, 8, T0, FROM - 1, 0, T0)
    shift = '\n[[shock]]\nkind = "shift"\npct = -0.5\nat_ts = {at}\nassets = ["{feed}"]\n'
    for rounds, seen, at in (([], [], T0 - 10_000),
                             ([pending], [(FROM + 2, 950 * 10**8, True, 950 * 10**8)], T0 - 10_000),
                             ([pending], [(FROM + 2, 950 * 10**8, True, 950 * 10**8)], T0 - 300)):
        shock = shift.format(at=at, feed=FEED_C)
        inp = dataclasses.replace(base, rounds=rounds, initial_rounds={**base.initial_rounds, FEED_C: before})
        rec, start = _Prices(), _Start()
        Replay(scenario(to_block=FROM + 10, extra=f"{delay}\n" + shock), inp, "r", metrics=[rec, start]).run()
        assert start.price == 1_000 * 10**8
        assert rec.seen == seen


def test_republish_publishes_only_beyond_the_deviation_threshold_not_at_it() -> None:
    """Chainlink OCR's trigger is strictly above the threshold (libocr ``deviates``:
    ``|new - old| * 1e9 > |old| * thresholdPPB``). 1 % / 60 s from $100.00: $101.00 (t=12) is exactly
    1 % off and stays unpublished (it was published); $101.01 (t=24) is beyond and is; $102.0201
    (t=36) is exactly 1 % off $101.01 (1.0101) and is not; $102.0202 (t=48) is beyond and is."""
    refs = [_ref(t, p) for t, p in ((0, "100.00"), (12, "101.00"), (24, "101.01"), (36, "102.0201"),
                                    (48, "102.0202"))]
    spec = OracleModelSpec(model="republish", deviation_bps=100, heartbeat_s=60)
    pubs = publications(spec, [], refs, {FEED: "ETH/USD"}, {FEED: 8}, BLOCKS, 40)
    assert [(p.answer, p.updated_at_ts) for p in pubs] == [
        (100_00000000, 0), (101_01000000, 24), (102_02020000, 48)]


def test_a_ramp_across_the_window_start_moves_the_answer_in_force_by_its_share_then() -> None:
    """A 50 % fall ramped over 1,200 s from T0 - 588 is half done at the window's first second
    (T0 + 12): 2,000 * (1 - 0.5 * 600 / 1,200) = 1,500 from the first block (by hand), with no
    round of the feed in between to carry it (the ramp ends after the window)."""
    import dataclasses

    from tests.backtest.markets import T0

    book = market(8000, 10500, [(10**18, 100 * 10**6)])
    base = inputs(book, [2_000 * 10**8], to_block=FROM + 10)
    before = Round(FEED_C, 2_000 * 10**8, 8, T0 - 600, FROM - 50, 0, T0 - 600)
    inp = dataclasses.replace(base, rounds=[], initial_rounds={**base.initial_rounds, FEED_C: before})
    shock = (f'\n[[shock]]\nkind = "shift"\npct = -0.5\nat_ts = {T0 - 588}\nramp_s = 1200\n'
             f'assets = ["{FEED_C}"]\n')
    rec = _Prices()
    Replay(scenario(to_block=FROM + 10, extra=shock), inp, "r", metrics=[rec]).run()
    assert rec.seen == [(FROM, 1_500 * 10**8, True, 1_500 * 10**8)]


def test_a_scale_ending_before_the_window_reaches_it_through_the_delay() -> None:
    """A scale that ends before the window's first block changes nothing there and is refused,
    unless an oracle delay holds back a round it covers: FEED_C's round of FROM - 1 (1,900, at T0)
    lands at FROM + 2 under delay_blocks = 3, halved (950, by hand); the scale's end (T0 + 6, the
    unscaled 1,900 again, published in the first block at or after it, FROM) lands at FROM + 3."""
    import dataclasses

    from backtest.errors import ScenarioError
    from backtest.scenario import shock_error
    from backtest.shocks import ShockError
    from tests.backtest.markets import T0

    book = market(8000, 10500, [(10**18, 100 * 10**6)])
    base = inputs(book, [2_000 * 10**8], to_block=FROM + 10)
    before = Round(FEED_C, 2_000 * 10**8, 8, T0 - 600, FROM - 50, 0, T0 - 600)
    pending = Round(FEED_C, 1_900 * 10**8, 8, T0, FROM - 1, 0, T0)
    inp = dataclasses.replace(base, rounds=[pending], initial_rounds={**base.initial_rounds, FEED_C: before})
    shock = f'\n[[shock]]\nkind = "scale"\nfactor = 0.5\nfrom_ts = {T0 - 10}\nto_ts = {T0 + 5}\n'
    rec = _Prices()
    Replay(scenario(to_block=FROM + 10, extra="delay_blocks = 3\n" + shock), inp, "r", metrics=[rec]).run()
    assert [(b, a) for b, a, _, _ in rec.seen] == [(FROM + 2, 950 * 10**8), (FROM + 3, 1_900 * 10**8)]
    sc = scenario(to_block=FROM + 10, extra=shock)
    with pytest.raises(ShockError) as e:
        Replay(sc, dataclasses.replace(inp, rounds=[]), "r", metrics=[]).run()
    assert isinstance(shock_error(sc, e.value), ScenarioError) and e.value.field == "shock[0].to_ts"
