"""Audit of the ingest run's inputs and bookkeeping against a scripted node (no chain needed):
deployments files, --from/--to times, the non-final tail, secrets in what a failed run stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ingest.deployments import DeploymentSet, load_deployments
from ingest.errors import DeploymentsFileError

CHAIN = 31337
PROXY_A = "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419"
PROXY_B = "0x8fFfFfd4AfB6115b954Bd326cbe7B4BA576818f6"


def _write(tmp: Path, text: str) -> Path:
    p = tmp / "dep.toml"
    p.write_text(text)
    return p


def test_a_name_declared_twice_in_one_file_is_refused_with_its_line(tmp_path: Path) -> None:
    """Two [[feed]] entries with one name: both became sources with the same key (rows of two
    feeds under one ``source``, one checkpoint for both). The set check compared each entry
    with the names before the file only, so a duplicate inside one file passed (fails before)."""
    p = _write(tmp_path, f"""[meta]
chain_id = 1

[[feed]]
name = "ETH / USD"
chain_id = 1
proxy = "{PROXY_A}"
start_block = 1

[[feed]]
name = "ETH / USD"
chain_id = 1
proxy = "{PROXY_B}"
start_block = 1
""")
    with pytest.raises(DeploymentsFileError) as e:
        load_deployments(p)
    assert (e.value.line, e.value.field) == (11, "feed[1].name"), str(e.value)
    dset = DeploymentSet()
    with pytest.raises(Exception, match="declared twice"):
        dset.extend(DeploymentSet(1, [], [f for f in _feeds(tmp_path)] * 2))


def _feeds(tmp: Path) -> list[Any]:
    (tmp / "one").mkdir(exist_ok=True)
    p = tmp / "one" / "f.toml"
    p.write_text(f'[[feed]]\nname = "X"\nchain_id = 1\nproxy = "{PROXY_A}"\nstart_block = 1\n')
    return load_deployments(p).feeds


def test_a_feed_of_another_chain_than_meta_says_is_refused(tmp_path: Path) -> None:
    """[meta] chain_id = 1 and a feed with chain_id 10: the feed was accepted and then skipped
    without a word by an ingest of chain 1 (sources are chosen by chain). A deployment with the
    same mistake was refused; the feed now is too, with its line and field (fails before)."""
    p = _write(tmp_path, f"""[meta]
chain_id = 1

[[feed]]
name = "ETH / USD"
chain_id = 10
proxy = "{PROXY_A}"
start_block = 1
""")
    with pytest.raises(DeploymentsFileError) as e:
        load_deployments(p)
    assert (e.value.line, e.value.field) == (6, "feed[0].chain_id"), str(e.value)


def test_a_mixed_case_address_with_a_wrong_checksum_is_refused(tmp_path: Path) -> None:
    """A mixed-case address is an EIP-55 checksum; one with a typo (here one hex digit changed,
    case kept) was accepted and lower-cased, so the ingest read another contract's logs (none):
    silently empty. Now refused at the field; all-lower/all-upper stay accepted (fails before)."""
    bad = PROXY_A[:-1] + "8"  # ...8419 -> ...8418: the checksum no longer matches
    p = _write(tmp_path, f'[[feed]]\nname = "ETH / USD"\nchain_id = 1\nproxy = "{bad}"\n'
                         'start_block = 1\n')
    with pytest.raises(DeploymentsFileError) as e:
        load_deployments(p)
    assert (e.value.line, e.value.field) == (4, "feed[0].proxy"), str(e.value)
    for ok in (PROXY_A, PROXY_A.lower(), "0x" + PROXY_A[2:].upper()):
        p = _write(tmp_path, f'[[feed]]\nname = "ETH / USD"\nchain_id = 1\nproxy = "{ok}"\n'
                             'start_block = 1\n')
        assert load_deployments(p).feeds[0].proxy == PROXY_A.lower()
