"""Account health cache and the at-risk index: which accounts a price move can make liquidatable.

Cost must grow with events, not with positions x price updates. Every account's health is
evaluated exactly by the adapter when something may have changed it; between evaluations the
index decides, per price update, which accounts need it.

The bound. For a lending account, ``slack = LT-weighted collateral value - debt value`` (base
currency; liquidatable iff ``slack < 0``; Aave: ``HF < 1``) is linear in each price:
``slack(p) = slack0 + sum_k e_k * (p_k - p0_k)``, where ``e_k`` is the account's net exposure to
price key ``k`` (collateral amount x LT, minus debt amount, per whole token), up to rounding
(below: ``slack0`` here is the evaluated slack less its rounding allowance). Half of ``slack0``
is reserved for interest; the other half is split evenly over the account's
``n`` price keys, giving each key a *trigger price*: ``p0_k - slack0 / (2 n e_k)`` below the
last evaluated price for a net-long key, above it for a net-short one. As long as no key has
crossed its trigger, the adverse move is below ``slack0 / 2`` in total, so the account is
still healthy (up to the reserved half). Per key, two heaps hold the trigger prices (down: max-heap,
up: min-heap); a price update pops exactly the crossed entries, whose accounts are re-evaluated
at block end. Stale entries (the account was re-evaluated since) are skipped by version and
compacted when they outnumber live ones.

Rounding: the protocol's slack is not exactly linear. Aave (v2, v3 before 3.5) values the
LT-weighted collateral as ``collateral x floor(sum(value_i x LT_i) / collateral)``: the floor of
the weighted average loses up to 1 bps of the collateral, and it can lose it after a price move
inside the triggers when it lost nothing at the evaluation (each value and debt is also floored
per reserve, a unit each). So the bound is kept on ``slack0 - collateral / 1e4 - ROUNDING_UNITS``
(:func:`rounding_allowance`); an account whose slack is within that allowance is *hot* (no bound),
with an expiry for its interest like a bounded one.

Interest: debt grows between evaluations. An account's evaluation also expires before debt
compounding at ``max_rate_per_year`` (default 300 %/yr, above Aave's slope-2 region for listed
assets) could, with price moves inside the triggers, consume the slack (see ``record``);
expired accounts are re-evaluated.

Already liquidatable accounts (``slack <= 0``) are *hot*: no bound holds for them, so they are
re-evaluated whenever a price they are exposed to moves (``HotSet.on(key)``: the keys of their
exposures, kept from their last evaluation while no event changed their positions), besides the
events that touch them. An account's health depends only on its positions, its keys' prices and
time (interest): a move of an unrelated feed cannot change it, so re-evaluating every hot account
at every price update (positions x updates again, for the under-water set) would only re-sample
interest. The engine re-evaluates every account with debt not evaluated at the window's last
block there (``stale_with_debt``), so end-of-window figures include interest to the end: those
liquidatable at their last evaluation, and those that interest alone carried under since (an
expired bound is only looked at in a visited block, and a window may end after a long gap).

Exposures come from the adapter (:meth:`protocols.base.ProtocolAdapter.exposures`). For an
adapter that gives none (the default ``None``) every account with debt is hot on every key
(``HotSet.any``: re-evaluated at every price update; correct, slow). ``naive=True`` does the same
for every account with debt (the benchmark baseline: every position at every price update).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from protocols.base import ProtocolAdapter

from .metrics.base import AccountEval

__all__ = ["Ledger", "HotSet"]

SECONDS_PER_YEAR = 365 * 86_400
#: base units of per-reserve rounding a bound reserves besides the average threshold's floor: a
#: floored value and a rounded debt per reserve (at most 128 reserves in Aave v2/v3), the
#: half-up percentMul, and the exposures' float error
ROUNDING_UNITS = 2 * 128 + 4

Heaps = dict[str, list[tuple[float, str, int]]]

_EMPTY: frozenset[str] = frozenset()


def rounding_allowance(collateral_value: int) -> int:
    """How much of an account's slack rounding may take after prices move inside its triggers
    (module docstring): the floor of the average liquidation threshold (< 1 bps of the
    collateral) and the per-reserve roundings."""
    return collateral_value // 10_000 + ROUNDING_UNITS


class HotSet:
    """Liquidatable accounts (no bound holds for them) and the price keys each is exposed to:
    ``on(key)`` are the ones a move of ``key`` may change, ``any`` those without known keys
    (re-evaluated at every price move)."""

    __slots__ = ("members", "any", "by_key", "keys_of")

    def __init__(self) -> None:
        self.members: set[str] = set()
        self.any: set[str] = set()
        self.by_key: dict[str, set[str]] = {}
        self.keys_of: dict[str, tuple[str, ...]] = {}

    def add(self, user: str, keys: tuple[str, ...] | None) -> None:
        """``user`` is hot on ``keys`` (None: on every key)."""
        if user in self.members:
            if (keys is None and user in self.any) or (keys is not None and self.keys_of.get(user) == keys):
                return
            self.discard(user)
        self.members.add(user)
        if keys is None:
            self.any.add(user)
            return
        self.keys_of[user] = keys
        for k in keys:
            s = self.by_key.get(k)
            if s is None:
                self.by_key[k] = {user}
            else:
                s.add(user)

    def discard(self, user: str) -> None:
        if user not in self.members:
            return
        self.members.discard(user)
        self.any.discard(user)
        for k in self.keys_of.pop(user, ()):
            s = self.by_key.get(k)
            if s is not None:
                s.discard(user)
                if not s:
                    del self.by_key[k]

    def on(self, key: str) -> AbstractSet[str]:
        return self.by_key.get(key, _EMPTY)


class Ledger:
    """Last exact evaluation per account, the hot sets and the per-key trigger heaps.

    With ``track_reference`` (the run has a metric that ``requires_reference``), the same
    bound is kept a second time against the *reference* evaluation (``AccountEval.reference``,
    prices = the reference where a key has one, else the oracle): per key, reference trigger
    heaps (``crossed_ref``, fed with every change of the key's effective reference price) and a
    ``ref_hot`` set of accounts liquidatable at the reference (re-evaluated at every block where
    a price or a reference price moved). So an account whose reference liquidation point a
    reference move crosses is re-evaluated even when the oracle stands still (hidden insolvency
    opens and closes where it happens)."""

    def __init__(self, adapter: ProtocolAdapter[Any], *, naive: bool = False,
                 max_rate_per_year: float = 3.0, track_reference: bool = False):
        self.adapter = adapter
        self.naive = naive
        self.track_reference = track_reference
        self.max_rate = max_rate_per_year
        self.evals: dict[str, AccountEval] = {}
        self.version: dict[str, int] = {}
        #: liquidatable accounts at the oracle / at the reference prices
        self.hot = HotSet()
        self.ref_hot = HotSet()
        #: account -> timestamp of its last evaluation
        self.evaluated_at: dict[str, int] = {}
        self.down: Heaps = {}
        self.up: Heaps = {}
        self.rdown: Heaps = {}
        self.rup: Heaps = {}
        self.expiry: list[tuple[int, str, int]] = []
        self.exposed: dict[str, set[str]] = {}  # key -> users exposed (for configuration changes)
        self.user_keys: dict[str, tuple[str, ...]] = {}
        self._live = 0
        self._entries = 0
        self._user_entries: dict[str, int] = {}  # live heap entries per account

    def record(self, ev: AccountEval, state: Any, prices: Mapping[str, int], ts: int,
               ref_prices: Mapping[str, int] | None = None, *, positions_changed: bool = True) -> None:
        """Store an exact evaluation and re-index the account (``ref_prices``: the prices its
        reference evaluation used, needed with ``track_reference``). ``positions_changed=False``
        (no event touched the account since its last evaluation) lets a hot account keep the
        price keys of its last exposures instead of asking the adapter again."""
        user = ev.user
        version = self.version
        v = version.get(user, 0) + 1
        version[user] = v
        self.evaluated_at[user] = ts
        h = ev.oracle
        debt_value = h.debt_value
        hot = self.hot
        if not positions_changed and user in hot.members and user not in hot.any \
                and 0 < debt_value and h.liquidatable and self._still_ref_hot(ev, user, ref_prices):
            # hot before and after, same positions: same keys, no bound, no expiry to re-index
            self.evals[user] = ev
            return
        entries = self._user_entries.pop(user, 0)
        if entries:
            self._live -= entries
        old = self.user_keys.get(user, ())
        if debt_value == 0:
            if old:
                self._unexpose(user, old)
            if h.collateral_value == 0:
                self.evals.pop(user, None)
                self.evaluated_at.pop(user, None)
            else:
                self.evals[user] = ev
            hot.discard(user)
            self.ref_hot.discard(user)
            return
        self.evals[user] = ev
        slack = h.liquidation_threshold_value - debt_value
        bound = slack - rounding_allowance(h.collateral_value)  # what the triggers may spend
        r = ev.reference if self.track_reference and ref_prices is not None else None
        rslack = r.liquidation_threshold_value - r.debt_value if r is not None else None
        rbound = None if r is None or rslack is None else rslack - rounding_allowance(r.collateral_value)
        exp = None
        keys: tuple[str, ...] = ()
        if not self.naive:
            if slack > 0 or (rslack is not None and rslack > 0) or positions_changed or not old:
                exp = self.adapter.exposures(state, user, ts)
                if exp is not None and (not exp or not exp.keys() <= prices.keys()):  # a key unpriced
                    exp = None
                keys = tuple(sorted(exp)) if exp else ()
            else:  # hot both ways, positions unchanged: the same price keys
                keys = old
        known = keys if keys else None
        if exp is None and not keys or bound <= 0:
            hot.add(user, known)
        else:
            assert exp is not None
            hot.discard(user)
            self._push(self.down, self.up, exp, keys, prices, bound, user, v)
        if self.track_reference:
            if exp is None or rbound is None or rbound <= 0 or ref_prices is None:
                self.ref_hot.add(user, known)
            else:
                self.ref_hot.discard(user)
                self._push(self.rdown, self.rup, exp, keys, ref_prices, rbound, user, v)
        if keys != old:
            if old:
                self._unexpose(user, old)
            if keys:
                self.user_keys[user] = keys
                exposed = self.exposed
                for k in keys:
                    s = exposed.get(k)
                    if s is None:
                        exposed[k] = {user}
                    else:
                        s.add(user)
        # the smaller margin, if any: the bound's, or for a hot account that is not liquidatable
        # (its slack within the rounding allowance, or at the boundary: HF == 1 with a slack <= 0)
        # its slack, 0 at the boundary (the next visited block), so that interest alone, which
        # moves no price, still has it re-evaluated
        margin = None
        for b_, s_, a in ((bound, slack, h), (rbound, rslack, r)):
            if s_ is None or a is None:
                continue
            m = b_ if b_ is not None and b_ > 0 else s_
            if m <= 0:
                if a.liquidatable:
                    continue
                m = 0
            if margin is None or m < margin:
                margin = m
        if margin is not None and (keys or margin == 0):  # at the boundary: with or without keys
            # Until the evaluation expires, debt may grow by a factor 1 + g and prices may move
            # within their triggers (an adverse move of at most half the margin, valued at the
            # evaluation's amounts). The account stays healthy while
            #     margin / 2 - g * (debt + margin / 2) > 0
            # (interest on the debt, g * debt, and on the price rise of the debt, at most
            # g * margin / 2), i.e. g < margin / (2 * debt + margin). Debt compounding at
            # ``max_rate`` grows by at most exp(max_rate * t) (Aave's index accrues a truncated
            # series of that exponential), so g stays below that bound for
            # ln(1 + margin / (2 * debt + margin)) / max_rate years. Linear growth eating half
            # the margin, (margin / 2) / (debt * max_rate), was too long: compounding (2.5 years
            # instead of 0.71 for a margin of 15x the debt at 300 %/yr, which interest alone
            # consumes in ~1.2 years), and the debt's price rise applies to the grown debt.
            debt = max(debt_value, r.debt_value if r is not None else 0)
            years = math.log1p(margin / (2 * debt + margin)) / self.max_rate if self.max_rate > 0 else 1e9
            heapq.heappush(self.expiry, (ts + max(1, int(years * SECONDS_PER_YEAR)), user, v))
            if len(self.expiry) > 4 * max(len(self.evals), 1024):
                # at most one live expiry per evaluated account: drop the superseded ones, or the
                # heap grows with evaluations (millions in a year of an Aave-scale market)
                self.expiry = [x for x in self.expiry if self.version.get(x[1]) == x[2]]
                heapq.heapify(self.expiry)
        if self._entries > 4 * max(self._live, 1024):
            self._compact()

    def _unexpose(self, user: str, old: tuple[str, ...]) -> None:
        del self.user_keys[user]
        for k in old:
            s = self.exposed.get(k)
            if s is not None:
                s.discard(user)

    def _still_ref_hot(self, ev: AccountEval, user: str, ref_prices: Mapping[str, int] | None) -> bool:
        if not self.track_reference:
            return True
        r = ev.reference
        return ref_prices is not None and r is not None and user in self.ref_hot.members \
            and user not in self.ref_hot.any and r.liquidatable

    def stale_with_debt(self, ts: int) -> list[str]:
        """Accounts with debt at their last evaluation (oracle or reference prices) and last
        evaluated before ``ts``, sorted (the same set whether or not the index is ``naive``)."""
        at = self.evaluated_at
        return sorted(u for u, ev in self.evals.items() if at.get(u, ts) < ts and (
            ev.oracle.debt_value or (ev.reference is not None and ev.reference.debt_value)))

    def _push(self, down: Heaps, up: Heaps, exp: Mapping[str, float], keys: tuple[str, ...],
              prices: Mapping[str, int], slack: int, user: str, v: int) -> None:
        """One trigger per key: half the slack split evenly over the keys (module docstring)."""
        n = len(keys)
        budget = slack / 2 / n
        push = heapq.heappush
        for k in keys:
            e = exp[k]
            p0 = prices[k]
            if e > 0:
                h = down.get(k)
                if h is None:
                    h = down[k] = []
                push(h, (-(p0 - budget / e), user, v))
            else:
                h = up.get(k)
                if h is None:
                    h = up[k] = []
                push(h, (p0 + budget / -e, user, v))
        self._entries += n
        self._live += n
        self._user_entries[user] = self._user_entries.get(user, 0) + n

    def crossed(self, key: str, price: int) -> list[str]:
        """Accounts whose trigger price for ``key`` the new ``price`` crossed (popped)."""
        return self._crossed(self.down, self.up, key, price)

    def crossed_ref(self, key: str, price: int) -> list[str]:
        """Accounts whose *reference* trigger for ``key`` the key's new effective reference price
        (its reference price, or its oracle price when it has no reference) crossed (popped)."""
        if not self.track_reference:
            return []
        return self._crossed(self.rdown, self.rup, key, price)

    def _crossed(self, downs: Heaps, ups: Heaps, key: str, price: int) -> list[str]:
        out = []
        down = downs.get(key)
        while down and -down[0][0] >= price:
            _, user, v = heapq.heappop(down)
            self._entries -= 1
            if self.version.get(user) == v:
                out.append(user)
        up = ups.get(key)
        while up and up[0][0] <= price:
            _, user, v = heapq.heappop(up)
            self._entries -= 1
            if self.version.get(user) == v:
                out.append(user)
        return out

    def expired(self, ts: int) -> list[str]:
        """Accounts whose evaluation expired by ``ts`` (interest may have eaten their margin)."""
        out = []
        while self.expiry and self.expiry[0][0] <= ts:
            _, user, v = heapq.heappop(self.expiry)
            if self.version.get(user) == v:
                out.append(user)
        return out

    def exposed_to(self, keys: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for k in keys:
            out |= self.exposed.get(k, set())
        return out

    def _compact(self) -> None:
        def live(h: list[tuple[float, str, int]]) -> list[tuple[float, str, int]]:
            kept = [x for x in h if self.version.get(x[1]) == x[2]]
            heapq.heapify(kept)
            return kept
        n = 0
        for d in (self.down, self.up, self.rdown, self.rup):
            for k in list(d):
                d[k] = live(d[k])
                n += len(d[k])
        self._entries = self._live = n
