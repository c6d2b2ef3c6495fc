"""Dataset registry: one module per dataset, one line here.

``blocks`` is special (block headers, always ingested under the other datasets' ranges); every
other entry is a :class:`~ingest.datasets.base.LogDataset` whose event tables are generated from
its declarations.
"""

from __future__ import annotations

from types import MappingProxyType

from .aave_v2 import AaveV2
from .aave_v3 import AaveV3
from .base import LogDataset
from .chainlink import Chainlink

__all__ = ["DATASETS", "LOG_DATASETS", "all_event_tables", "asked_fingerprint", "get_dataset"]

LOG_DATASETS: MappingProxyType[str, type[LogDataset]] = MappingProxyType({
    "chainlink": Chainlink,
    "aave_v3": AaveV3,
    "aave_v2": AaveV2,
})

DATASETS: MappingProxyType[str, type[LogDataset] | None] = MappingProxyType(
    {"blocks": None, **LOG_DATASETS})


def get_dataset(name: str) -> LogDataset:
    from ..errors import ConfigError

    if name not in LOG_DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}")
    return LOG_DATASETS[name]()


def all_event_tables():
    """Every generated table of every log dataset (importing them registers the tables)."""
    from . import blocks  # noqa: F401  (registers raw.blocks)

    return [t for cls in LOG_DATASETS.values() for t in cls().all_tables()]


def asked_fingerprint(name: str) -> str:
    """This version's fingerprint of what an ingest of dataset ``name`` (``blocks`` included)
    asks for and writes: what ``meta.checkpoints.asked_sha256`` must hold for an interval to
    count as ingested (:func:`ingest.schema.asked_sha256`)."""
    if name == "blocks":
        from .blocks import blocks_asked_sha256

        return blocks_asked_sha256()
    return get_dataset(name).asked_sha256()
