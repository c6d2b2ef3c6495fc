"""Every incident preset validates, names a registered market deployment and records its figures."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from backtest.scenario import load_scenario
from ingest.devnet import repo_root

PRESETS = sorted((repo_root() / "backtest" / "presets" / "incidents").glob("*.toml"))
ETHEREUM = tomllib.loads((repo_root() / "ingest" / "presets" / "ethereum.toml").read_text())


def test_there_are_presets() -> None:
    assert len(PRESETS) >= 3


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_preset_validates(path: Path) -> None:
    sc = load_scenario(path)
    assert sc.chain_id == 1
    assert sc.window.from_time is not None and sc.window.to_time is not None
    assert sc.window.from_time < sc.window.to_time
    deployments = {d["name"]: d for d in ETHEREUM["deployment"]}
    assert sc.market.source in deployments, f"{path.name}: unknown deployment {sc.market.source}"
    assert deployments[sc.market.source]["protocol"] == sc.market.protocol
    feeds = {f["proxy"].lower() for f in ETHEREUM["feed"]}
    if sc.reference is not None:
        assert set(sc.reference.pairs) <= feeds, f"{path.name}: reference pairs name unknown feeds"
    text = path.read_text()
    assert "Published figures" in text and "deficit ingest" in text


def test_presets_are_listed_in_readme() -> None:
    readme = (repo_root() / "backtest" / "presets" / "incidents" / "README.md").read_text()
    for p in PRESETS:
        assert f"`{p.name}`" in readme
