"""The replay's block clock: block numbers, timestamps, base fees, and time → block lookups.

Blocks are held in compact arrays (``array('Q')``; a year of Ethereum blocks is ~2.6 M rows,
~60 MB), loaded once from ``raw.blocks`` (:meth:`Blocks.from_arrow`: the columns' buffers are
copied as they are, no Python object per block) or given in memory. A base fee that does not fit
64 bits raises (no chain has one) instead of wrapping.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Mapping
from typing import Any

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

    @classmethod
    def from_arrow(cls, table: Any, hashes: Mapping[int, str] | None = None) -> Blocks:
        """From a ``pyarrow.Table`` with non-null columns ``number``, ``timestamp``, ``base_fee``
        (``uint64``) and ``final`` (``uint8``), ordered by number: the same checks as the
        constructor (numbers strictly increasing, timestamps non-decreasing), done by
        ``pyarrow.compute`` over whole columns."""
        import pyarrow as pa
        import pyarrow.compute as pc

        out = cls(())
        names = ("number", "timestamp", "base_fee", "final")
        want = (pa.uint64(), pa.uint64(), pa.uint64(), pa.uint8())
        cols = []
        for name, ty in zip(names, want, strict=True):
            col = table.column(name).combine_chunks()
            if col.type != ty:
                raise TypeError(f"blocks column {name} is {col.type}, expected {ty}")
            if col.null_count:
                raise ValueError(f"blocks column {name} has {col.null_count} null value(s)")
            cols.append(col)
        n = len(table)
        if n > 1:
            num, ts = cols[0], cols[1]
            bad = pc.less_equal(num.slice(1), num.slice(0, n - 1))
            if pc.any(bad).as_py():
                i = pc.index(bad, True).as_py() + 1
                raise ValueError(f"blocks out of order at {num[i].as_py()}")
            bad = pc.less(ts.slice(1), ts.slice(0, n - 1))
            if pc.any(bad).as_py():
                i = pc.index(bad, True).as_py() + 1
                raise ValueError(f"block {num[i].as_py()} timestamp {ts[i].as_py()} precedes the previous "
                                 f"block's")
        for arr, col in zip((out.numbers, out.ts, out.base_fee), cols[:3], strict=True):
            arr.frombytes(_values(col, 8))
        out.final = bytearray(_values(cols[3], 1))
        out.hashes = dict(hashes or {})
        return out

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


def _values(col: Any, width: int) -> bytes:
    """The value bytes of a non-null fixed-width Arrow array (its offset applied)."""
    buf = col.buffers()[1]
    start = col.offset * width
    data: bytes = buf.to_pybytes()
    return data[start:start + len(col) * width]
