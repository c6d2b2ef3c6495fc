"""Fixtures for the protocol tests: a real Aave v3 market on a fresh anvil."""

from __future__ import annotations

import pytest

from ingest.devchain import DevChain
from tests.protocols.aave_v3_market import AaveV3Market

GENESIS = 1_700_000_000  # 2023-11-14T22:13:20Z


@pytest.fixture
def aave_v3_market(anvil_factory):
    """A freshly deployed Aave v3.0.2 market (:data:`~tests.protocols.aave_v3_market.DEFAULT_RESERVES`)
    on a new anvil with a fixed genesis time and exactly 12 s between blocks, so that interest
    accrual, and every amount derived from it, is the same on every run."""
    chain = DevChain(anvil_factory(timestamp=GENESIS).url)
    try:
        yield AaveV3Market.deploy(chain, block_interval=12)
    finally:
        chain.close()
