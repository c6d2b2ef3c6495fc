"""fetch_blocks against a scripted node (a test fake: a real node does not answer a request for
one height with another's header; a misconfigured cache or proxy in front of one can)."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.datasets.blocks import fetch_blocks
from ingest.errors import ChainDataError


class _Node:
    def __init__(self, shift: int = 0, number: Any = None):
        self.shift, self.number = shift, number

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
        out = []
        for method, params in calls:
            assert method == "eth_getBlockByNumber"
            n = int(params[0], 16) + self.shift
            num = hex(n) if self.number is None else self.number
            out.append({"number": num, "hash": "0x" + f"{n:064x}"})
        return out


def test_the_header_of_the_height_asked_for() -> None:
    got = fetch_blocks(_Node(), 10, 12)  # type: ignore[arg-type]
    assert [b["number"] for b in got] == ["0xa", "0xb", "0xc"]


@pytest.mark.parametrize(("shift", "number", "got"), [(1, None, "'0xb'"), (0, "11", "'11'"), (0, 0, "0")])
def test_another_heights_header_is_refused(shift: int, number: Any, got: str) -> None:
    """A node answering every height with the next one's header gave consecutive, hash-linked
    headers, stored as if they were the heights asked for (nothing checked the number); a
    number that is not 0x-hex is refused the same way."""
    want = rf"asked the node for block 10, it answered with block number {got}:"
    with pytest.raises(ChainDataError, match=want):
        fetch_blocks(_Node(shift, number), 10, 12)  # type: ignore[arg-type]
