"""Shared fixtures: a real anvil node per test (from node_modules), always stopped."""

from __future__ import annotations

import os

import pytest

from ingest.devnet import Anvil, anvil_binary
from ingest.errors import ConfigError


def _require_anvil() -> None:
    try:
        anvil_binary()
    except ConfigError as e:
        if os.environ.get("CI"):
            pytest.fail(str(e))  # CI must never silently skip the real-node tests
        pytest.skip(str(e))


@pytest.fixture
def anvil():
    """A fresh anvil (``--max-persisted-states 0``, free port), stopped after the test."""
    _require_anvil()
    node = Anvil()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def anvil_factory():
    """Start several nodes (e.g. with a genesis timestamp); all are stopped after the test."""
    _require_anvil()
    nodes: list[Anvil] = []

    def make(**kw) -> Anvil:
        node = Anvil(**kw)
        nodes.append(node)
        return node

    try:
        yield make
    finally:
        for n in nodes:
            n.stop()
