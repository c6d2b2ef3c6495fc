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


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_preset_import_commands_feed_its_reference(path: Path) -> None:
    """The header's ``deficit import-prices`` command imports what the scenario's [reference] reads
    (same pair and source): a path imported under another pair or source is never read, and the
    run stops on a missing reference pair (or, without [reference], ignores it)."""
    import re
    import shlex

    sc = load_scenario(path)
    wanted = set(sc.reference.pairs.values()) if sc.reference is not None else set()
    source = sc.reference.source if sc.reference is not None else None
    imported: set[str] = set()
    for line in path.read_text().splitlines():
        m = re.match(r"#\s+deficit import-prices (.*)$", line)
        if not m:
            continue
        args = shlex.split(m.group(1).replace("<", "'<").replace(">", ">'"))
        pair = args[args.index("--pair") + 1]
        imported.add(pair)
        assert pair in wanted, f"{path.name}: imports {pair}, the scenario reads {sorted(wanted) or 'none'}"
        if source is not None and "--source" in args:
            assert args[args.index("--source") + 1] == source
    assert imported == wanted, (f"{path.name}: the scenario reads {sorted(wanted)}, "
                                f"the header imports {sorted(imported)}")
