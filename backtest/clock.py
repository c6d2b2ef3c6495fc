"""The replay's block clock: block numbers, timestamps, base fees, and time → block lookups.

Blocks are held in compact arrays (``array('Q')``; a year of Ethereum blocks is ~2.6 M rows,
~60 MB), loaded once from ``raw.blocks`` or given in memory. A base fee that does not fit 64
bits raises (no chain has one) instead of wrapping.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Mapping

from .metrics.base import BlockInfo

__all__ = ["Blocks"]


class Blocks:
    """Blocks sorted by number (not necessarily contiguous), with timestamps non-decreasing."""

    def __init__(self, rows: Iterable[tuple[int, int, int, bool]], hashes: Mapping[int, str] | None = None):
        """``rows``: ``(number, timestamp, base_fee_wei, finalized_at_ingest)`` in increasing number
        order; ``hashes``: block hashes known (the window ends)."""
        self.numbers = array("Q")
        self.ts = array("Q")
        self.base_fee = array("Q")
        self.final = bytearray()
        last = -1
        for n, t, fee, fin in rows:
            if n <= last:
                raise ValueError(f"blocks out of order at {n}")
            if self.ts and t < self.ts[-1]:
                raise ValueError(f"block {n} timestamp {t} precedes the previous block's")
            last = n
            self.numbers.append(n)
            self.ts.append(t)
            self.base_fee.append(fee)
            self.final.append(1 if fin else 0)
        self.hashes = dict(hashes or {})

    def __len__(self) -> int:
        return len(self.numbers)

    def _index(self, n: int) -> int:
        i = bisect.bisect_left(self.numbers, n)
        if i == len(self.numbers) or self.numbers[i] != n:
            raise KeyError(f"block {n} is not in the replay's block range")
        return i

    def __contains__(self, n: int) -> bool:
        i = bisect.bisect_left(self.numbers, n)
        return i < len(self.numbers) and self.numbers[i] == n

    def info(self, n: int) -> BlockInfo:
        i = self._index(n)
        return BlockInfo(n, self.ts[i], self.base_fee[i], self.hashes.get(n), bool(self.final[i]))

    def timestamp(self, n: int) -> int:
        return self.ts[self._index(n)]

    def first_at_or_after(self, ts: int) -> int | None:
        """The first block whose timestamp is >= ``ts`` (None if none is)."""
        i = bisect.bisect_left(self.ts, ts)
        return self.numbers[i] if i < len(self.numbers) else None

    def next_at_or_after(self, n: int) -> int | None:
        """The first known block number >= ``n``."""
        i = bisect.bisect_left(self.numbers, n)
        return self.numbers[i] if i < len(self.numbers) else None

    @classmethod
    def regular(cls, first: int, last: int, t0: int, spacing_s: int = 12, base_fee_wei: int = 0) -> Blocks:
        """Blocks ``first..last`` every ``spacing_s`` seconds from ``t0`` (in-memory runs)."""
        return cls((n, t0 + (n - first) * spacing_s, base_fee_wei, True) for n in range(first, last + 1))
