"""The oracle model: which price the protocol reads, and from when.

Inputs are the ingested Chainlink rounds (``raw.oracle_rounds``: one ``AnswerUpdated`` per round,
with the feed's own rules already applied on chain — deviation threshold, heartbeat, the
aggregator's min/max answer) and, optionally, an off-chain reference path
(``raw.reference_prices``). Models:

* ``protocol``: the rounds as they happened;
* ``reference``: the reference path in place of the oracle, for every feed that has a
  reference pair (a perfect, instant oracle); feeds without one keep their rounds;
* ``republish``: a Chainlink-style feed re-published from the reference path with the
  scenario's ``deviation_bps`` and ``heartbeat_s`` — or, where the scenario leaves one out, each
  feed's own as the deployments declared it (:class:`FeedRules`, ``raw.oracle_feeds``): a new
  answer whenever the reference moves more than ``deviation_bps`` from the last published answer,
  or ``heartbeat_s`` after it (checked at each reference point, as OCR nodes check at each
  observation); the last published answer at the window start is the reference price in force
  then (the feed's starting answer), at its instant. "Published" is accepted: an answer outside
  the bounds (below) never lands on chain, so the next points are still measured from the last
  accepted answer and its instant, as OCR nodes measure from the aggregator's latest answer.

Then, for every model: ``delay_blocks`` (the answer is usable that many blocks later) and
``delay_s`` (usable from the first block whose timestamp is at least ``happened + delay_s``)
add latency (with both, the later of the two positions: they are not summed); a delayed answer
takes effect at the start of its block (before the block's logs), in its original order. The
answer in force at the window start is the last round usable by then, and the rounds before the
window that the delay holds back are published inside it (``backtest.api``; a feed the reference
or republish model replaces still starts from the reference price in force at the window start).
``min_answer``/``max_answer``: an answer outside the bounds is *not
accepted* — the feed keeps its previous answer, as a Chainlink OCR aggregator rejects a report
whose median is outside ``[minAnswer, maxAnswer]`` (``OffchainAggregator.transmit`` reverts
"median is out of min-max range"). Rejected answers are still reported to metrics
(``PriceUpdate.accepted = False``). Answers the chain never saw — re-published or reference
answers (the one in force at the window start included: outside, the feed keeps its last round),
and shocked rounds (``Round.synthetic``) — are also held to each feed's declared
``min_answer``/``max_answer`` (its real aggregator's bounds) where the scenario sets none; the
rounds as they happened already passed the chain's own.

Units: answers are the feed's raw integers (``answer / 10**decimals`` is the price). Aave's
``AaveOracle.getAssetPrice`` returns the source's ``latestAnswer`` unscaled, so an Aave price is
the answer itself. A reference price (exact decimal) becomes ``floor(price * 10**decimals)``
with the feed's decimals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from .clock import Blocks
from .scenario import OracleModelSpec

__all__ = ["Round", "RefPoint", "Publication", "SourceChange", "FeedRules", "publications",
           "reference_answer", "republish_rules", "accepted"]


@dataclass(frozen=True)
class FeedRules:
    """A feed's published update rules as the deployments declared them (``raw.oracle_feeds``):
    deviation threshold (bps) and heartbeat (s), off-chain settings of the feed's nodes, and the
    answer bounds; None where not declared. ``declared_in``: the deployments file."""

    deviation_bps: int | None = None
    heartbeat_s: int | None = None
    min_answer: int | None = None
    max_answer: int | None = None
    declared_in: str = ""


@dataclass(frozen=True, slots=True)
class Round:
    """One ingested oracle round of ``feed`` (proxy address); ``synthetic``: an answer the chain
    never saw (a shocked one, :mod:`backtest.shocks`), held to the feed's declared bounds."""

    feed: str
    answer: int
    decimals: int
    updated_at_ts: int
    block_number: int
    log_index: int
    block_ts: int
    synthetic: bool = False


@dataclass(frozen=True, slots=True)
class RefPoint:
    """One reference price: ``pair`` at unix second ``ts`` (exact ``price`` in quote units), and the
    first block at or after it (``block_number``; the instant it is usable in the replay)."""

    pair: str
    ts: int
    price: Fraction
    block_number: int


@dataclass(frozen=True, slots=True)
class SourceChange:
    """The protocol's oracle switched price ``key`` (Aave: an asset) to ``feed`` at the log
    ``(block_number, log_index)`` (``AaveOracle.AssetSourceUpdated``). From that position the key's
    price is ``feed``'s latest accepted answer (``AaveOracle.getAssetPrice`` reads the source's
    ``latestAnswer`` live, so the switch itself changes the price)."""

    block_number: int
    log_index: int
    key: str
    feed: str


@dataclass(frozen=True, slots=True)
class Publication:
    """An answer of ``feed`` as the protocol gets it: taking effect at
    ``(block_number, log_index)`` (``log_index = -1``: start of the block), produced at
    ``happened_block``/``happened_ts``; ``accepted`` False when outside the bounds; ``seq`` keeps
    the original order among publications at the same position."""

    block_number: int
    log_index: int
    seq: int
    feed: str
    answer: int
    decimals: int
    updated_at_ts: int
    happened_block: int
    happened_ts: int
    accepted: bool


def reference_answer(price: Fraction, decimals: int) -> int:
    """A reference price as a feed answer with ``decimals``: ``floor(price * 10**decimals)``."""
    return int(price * 10**decimals // 1)


def publications(spec: OracleModelSpec, rounds: Sequence[Round], refs: Sequence[RefPoint],
                 pairs: Mapping[str, str], decimals: Mapping[str, int], blocks: Blocks,
                 to_block: int, rules: Mapping[str, FeedRules] | None = None, *,
                 synthetic_rounds: bool = False,
                 initial: Mapping[str, tuple[int, int]] | None = None) -> list[Publication]:
    """Every oracle answer the protocol gets in the window, in replay order (see the module
    docstring). ``pairs``: feed → reference pair; ``decimals``: feed → decimals (for feeds only
    known from the reference path); ``rules``: feed → declared rules; ``synthetic_rounds``: every
    round is one the chain never saw (a round's own ``synthetic`` says it for that round);
    ``initial``: feed → (answer, unix second) of a replaced feed's answer in force at the window
    start (the reference price then), from which the republish model measures its first deviation
    and heartbeat. Raises :class:`ValueError`
    naming a feed the republish model has no deviation threshold or heartbeat for."""
    rules = rules or {}
    # block, log, feed, answer, dec, upd, ts, whether the chain never saw it
    raw: list[tuple[int, int, str, int, int, int, int, bool]] = []
    replaced = set(pairs) if spec.model in ("reference", "republish") else set()
    for r in rounds:
        if r.feed not in replaced:
            raw.append((r.block_number, r.log_index, r.feed, r.answer, r.decimals, r.updated_at_ts,
                        r.block_ts, synthetic_rounds or r.synthetic))
    if replaced:
        by_pair: dict[str, list[RefPoint]] = {}
        for p in refs:
            by_pair.setdefault(p.pair, []).append(p)
        for feed in sorted(replaced):
            dec = decimals.get(feed, 8)
            points = by_pair.get(pairs[feed], [])
            raw += [(*t, True) for t in _from_reference(spec, feed, dec, points, rules.get(feed, FeedRules()),
                                                        (initial or {}).get(feed))]
    raw.sort(key=lambda t: (t[0], t[1]))
    out: list[Publication] = []
    for seq, (b, li, feed, answer, dec, upd, ts, unseen) in enumerate(raw):
        eff_b, eff_li = b, li
        if spec.delay_blocks:
            eff_b, eff_li = b + spec.delay_blocks, -1
        if spec.delay_s:
            nb = blocks.first_at_or_after(ts + spec.delay_s)
            if nb is None:
                continue  # usable only after the last known block
            if nb > eff_b:
                eff_b, eff_li = nb, -1
        if eff_b > to_block:
            continue
        if eff_b != b:
            nb2 = blocks.next_at_or_after(eff_b)
            if nb2 is None or nb2 > to_block:
                continue
            eff_b = nb2
        # an answer the chain never saw (replaced, shocked) is held to the feed's declared bounds too;
        # a round as it happened passed the chain's own and is not judged again
        ok = accepted(spec, answer, rules.get(feed) if unseen else None)
        out.append(Publication(eff_b, eff_li, seq, feed, answer, dec, upd, b, ts, ok))
    out.sort(key=lambda p: (p.block_number, p.log_index, p.seq))
    return out


def accepted(spec: OracleModelSpec, answer: int, declared: FeedRules | None = None) -> bool:
    """Whether ``answer`` is inside the scenario's bounds, or where it sets none, the feed's
    ``declared`` ones (given for an answer the chain never saw)."""
    lo, hi = spec.min_answer, spec.max_answer
    if declared is not None:
        lo = declared.min_answer if lo is None else lo
        hi = declared.max_answer if hi is None else hi
    return (lo is None or answer >= lo) and (hi is None or answer <= hi)


def republish_rules(spec: OracleModelSpec, feed: str, declared: FeedRules) -> tuple[int, int]:
    """The republish model's (deviation bps, heartbeat s) for ``feed``: the scenario's, else the
    feed's declared ones; :class:`ValueError` naming what is missing."""
    dev = spec.deviation_bps if spec.deviation_bps is not None else declared.deviation_bps
    hb = spec.heartbeat_s if spec.heartbeat_s is not None else declared.heartbeat_s
    if dev is None or hb is None:
        missing = [k for k, v in (("deviation_bps", dev), ("heartbeat_s", hb)) if v is None]
        raise ValueError(f"feed {feed}: the republish model needs its {' and '.join(missing)}: set "
                         f"{' and '.join('oracle.' + k for k in missing)} in the scenario, or declare "
                         "them for the feed in the deployments and ingest again")
    return dev, hb


def _from_reference(spec: OracleModelSpec, feed: str, dec: int, points: Iterable[RefPoint],
                    declared: FeedRules, initial: tuple[int, int] | None = None
                    ) -> list[tuple[int, int, str, int, int, int, int]]:
    out = []
    last: int | None = None if initial is None else initial[0]
    last_ts = 0 if initial is None else initial[1]
    dev = hb = 0
    if spec.model == "republish":
        dev, hb = republish_rules(spec, feed, declared)
    for p in points:
        answer = reference_answer(p.price, dec)
        if spec.model == "republish":
            # OCR's trigger is strictly beyond the threshold (libocr deviates: |new - old| > |old| x t)
            if last is not None and abs(answer - last) * 10_000 <= dev * abs(last) and p.ts - last_ts < hb:
                continue
            # the nodes compare with the answer on chain: a rejected one never lands there, so it
            # moves neither the deviation base nor the heartbeat (OCR2 does not report it, OCR1's
            # transmit reverts "median is out of min-max range")
            if not accepted(spec, answer, declared):
                out.append((p.block_number, -1, feed, answer, dec, p.ts, p.ts))
                continue
        last, last_ts = answer, p.ts
        out.append((p.block_number, -1, feed, answer, dec, p.ts, p.ts))
    return out
