"""Account health cache and the at-risk index: which accounts a price move can make liquidatable.

Cost must grow with events, not with positions x price updates. Every account's health is
evaluated exactly by the adapter when something may have changed it; between evaluations the
index decides, per price update, which accounts need it.

The bound. For a lending account, ``slack = LT-weighted collateral value - debt value`` (base
currency; liquidatable iff ``slack < 0``; Aave: ``HF < 1``) is linear in each price:
``slack(p) = slack0 + sum_k e_k * (p_k - p0_k)``, where ``e_k`` is the account's net exposure to
price key ``k`` (collateral amount x LT, minus debt amount, per whole token). Half of ``slack0``
is reserved for rounding and interest; the other half is split evenly over the account's
``n`` price keys, giving each key a *trigger price*: ``p0_k - slack0 / (2 n e_k)`` below the
last evaluated price for a net-long key, above it for a net-short one. As long as no key has
crossed its trigger, the adverse move is below ``slack0 / 2`` in total, so the account is
still healthy (up to the reserved half). Per key, two heaps hold the trigger prices (down: max-heap,
up: min-heap); a price update pops exactly the crossed entries, whose accounts are re-evaluated
at block end. Stale entries (the account was re-evaluated since) are skipped by version and
compacted when they outnumber live ones.

Interest: debt grows between evaluations. An account's evaluation also expires after the time
in which debt growing at ``max_rate_per_year`` (default 300 %/yr, above Aave's slope-2 region for
listed assets) could consume the reserved half of the slack; expired accounts are re-evaluated.

Already liquidatable accounts (``slack <= 0``) are *hot*: re-evaluated at every block with a price
update (bad debt can only grow in them, and the liquidator needs their state).

Exposures come from the adapter (:meth:`protocols.base.ProtocolAdapter.exposures`). For an
adapter that gives none (the default ``None``) every account with debt is hot (correct, slow).
``naive=True`` makes every account with debt hot (the benchmark baseline: every position at every
price update).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from typing import Any

from protocols.base import ProtocolAdapter

from .metrics.base import AccountEval

__all__ = ["Ledger"]

SECONDS_PER_YEAR = 365 * 86_400

class Ledger:
    """Last exact evaluation per account, the hot set and the per-key trigger heaps."""

    def __init__(self, adapter: ProtocolAdapter[Any], *, naive: bool = False,
                 max_rate_per_year: float = 3.0):
        self.adapter = adapter
        self.naive = naive
        self.max_rate = max_rate_per_year
        self.evals: dict[str, AccountEval] = {}
        self.version: dict[str, int] = {}
        self.hot: set[str] = set()
        self.down: dict[str, list[tuple[float, str, int]]] = {}
        self.up: dict[str, list[tuple[float, str, int]]] = {}
        self.expiry: list[tuple[int, str, int]] = []
        self.exposed: dict[str, set[str]] = {}  # key -> users exposed (for configuration changes)
        self.user_keys: dict[str, tuple[str, ...]] = {}
        self._live = 0
        self._entries = 0

    def record(self, ev: AccountEval, state: Any, prices: Mapping[str, int], ts: int) -> None:
        """Store an exact evaluation and re-index the account."""
        user = ev.user
        v = self.version.get(user, 0) + 1
        self.version[user] = v
        old = self.user_keys.pop(user, ())
        self._live -= len(old)
        for k in old:
            s = self.exposed.get(k)
            if s is not None:
                s.discard(user)
        h = ev.oracle
        if h.debt_value == 0 and h.collateral_value == 0:
            self.evals.pop(user, None)
            self.hot.discard(user)
            return
        self.evals[user] = ev
        if h.debt_value == 0:
            self.hot.discard(user)
            return
        slack = h.liquidation_threshold_value - h.debt_value
        if self.naive or slack <= 0:
            self.hot.add(user)
            return
        exp = self.adapter.exposures(state, user, ts)
        if not exp or any(k not in prices for k in exp):
            self.hot.add(user)
            return
        self.hot.discard(user)
        keys = tuple(sorted(exp))
        self.user_keys[user] = keys
        budget = slack / 2 / len(keys)
        for k in keys:
            self.exposed.setdefault(k, set()).add(user)
            e = exp[k]
            p0 = prices[k]
            if e > 0:
                heapq.heappush(self.down.setdefault(k, []), (-(p0 - budget / e), user, v))
            else:
                heapq.heappush(self.up.setdefault(k, []), (p0 + budget / -e, user, v))
            self._entries += 1
        self._live += len(keys)
        years = (slack / 2) / (h.debt_value * self.max_rate) if self.max_rate > 0 else 1e9
        heapq.heappush(self.expiry, (ts + max(1, int(years * SECONDS_PER_YEAR)), user, v))
        if self._entries > 4 * max(self._live, 1024):
            self._compact()

    def crossed(self, key: str, price: int) -> list[str]:
        """Accounts whose trigger price for ``key`` the new ``price`` crossed (popped)."""
        out = []
        down = self.down.get(key)
        while down and -down[0][0] >= price:
            _, user, v = heapq.heappop(down)
            self._entries -= 1
            if self.version.get(user) == v:
                out.append(user)
        up = self.up.get(key)
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
        for d in (self.down, self.up):
            for k in list(d):
                d[k] = live(d[k])
                n += len(d[k])
        self._entries = self._live = n
