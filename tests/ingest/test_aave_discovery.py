"""Aave token discovery from ReserveInitialized logs read before the stored coverage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode as abi_encode

from ingest.datasets.aave_v3 import AaveV3
from ingest.datasets.base import Source
from ingest.deployments import Deployment
from ingest.engine import IngestSummary, RunContext
from ingest.errors import DecodeError
from ingest.warehouse import CHECKPOINTS, Warehouse

CONFIGURATOR = "0x" + "c0" * 20
OTHER = "0x" + "0e" * 20


def _reserve_initialized(address: str, a_token: str) -> dict[str, Any]:
    spec = next(t.spec for t in AaveV3.EVENT_TABLES if t.spec.name == "ReserveInitialized")
    asset = "0x" + "aa" * 20
    return {"address": address, "blockNumber": "0x5", "logIndex": "0x0",
            "transactionHash": "0x" + "ab" * 32,
            "topics": [spec.topic0, "0x" + abi_encode(["address"], [asset]).hex(),
                       "0x" + abi_encode(["address"], [a_token]).hex()],
            "data": "0x" + abi_encode(["address"] * 3, ["0x" + "00" * 20, "0x" + "dd" * 20,
                                                         "0x" + "ee" * 20]).hex()}


class _Node:
    def __init__(self, logs: list[dict[str, Any]]):
        self.logs = logs

    def get_logs(self, a: int, b: int, addresses: list[str], topics: Any) -> list[dict[str, Any]]:
        return self.logs


def _discover(tmp: Path, logs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    wh = Warehouse(tmp / "w.duckdb")
    wh.ensure(CHECKPOINTS)
    dep = Deployment("m", "aave_v3", 1, 1, {"pool": "0x" + "01" * 20,
                                             "pool_configurator": CONFIGURATOR})
    ctx = RunContext(wh, _Node(logs), 1, "r", 100, IngestSummary("r", 1, 100, 200, "head"))  # type: ignore[arg-type]
    try:
        return AaveV3()._before_coverage(ctx, Source("aave_v3", "m", 1, dep))
    finally:
        wh.close()


def test_reserve_initialized_of_the_configurator_gives_its_tokens(tmp_path: Path) -> None:
    got = _discover(tmp_path, [_reserve_initialized(CONFIGURATOR, "0x" + "11" * 20)])
    assert got == [("0x" + "11" * 20, "0x" + "dd" * 20, "0x" + "00" * 20)]


def test_reserve_initialized_of_another_contract_is_refused(tmp_path: Path) -> None:
    """The node was asked for the configurator's ReserveInitialized logs; one of another
    market's configurator gave that market's tokens to this one (their logs then ingested as
    this market's) (fails before)."""
    with pytest.raises(DecodeError) as ei:
        _discover(tmp_path, [_reserve_initialized(OTHER, "0x" + "22" * 20)])
    assert (ei.value.block_number, ei.value.log_index, ei.value.field) == (5, 0, "address")


@pytest.mark.parametrize(("cov", "start", "asked"), [
    ([], 100, [(1, 99)]),
    ([(10, 20), (30, 40)], 50, [(1, 9), (21, 29), (41, 49)]),
    ([(1, 20)], 50, [(21, 49)]),
    ([(1, 49)], 50, []),
    ([(10, 20), (60, 70)], 50, [(1, 9), (21, 49)]),
    ([(1, 5), (30, 80)], 50, [(6, 29)]),
])
def test_every_unstored_stretch_below_the_run_is_read(tmp_path: Path, cov: list[tuple[int, int]],
                                                      start: int, asked: list[tuple[int, int]]) -> None:
    """The stretches of start_block..(run's first block - 1) not stored for the market: below the
    stored ranges and in every gap (only the stretch below the lowest stored block was read, so a
    reserve initialized in a gap was never found) (fails before)."""
    seen: list[tuple[int, int]] = []

    class Recording(_Node):
        def get_logs(self, a: int, b: int, addresses: list[str], topics: Any) -> list[dict[str, Any]]:
            seen.append((a, b))
            return []

    wh = Warehouse(tmp_path / "w.duckdb")
    wh.ensure(CHECKPOINTS)
    dep = Deployment("m", "aave_v3", 1, 1, {"pool": "0x" + "01" * 20,
                                             "pool_configurator": CONFIGURATOR})
    given = AaveV3().addresses_sha256(Source("aave_v3", "m", 1, dep))
    for a, b in cov:  # as ingest records them: this version's fingerprints
        wh.add_covered(1, "aave_v3", "m", a, b, "r0", None, given)
    ctx = RunContext(wh, Recording([]), 1, "r", start, IngestSummary("r", 1, start, 200, "head"))  # type: ignore[arg-type]
    try:
        assert AaveV3()._before_coverage(ctx, Source("aave_v3", "m", 1, dep)) == []
    finally:
        wh.close()
    assert seen == asked
