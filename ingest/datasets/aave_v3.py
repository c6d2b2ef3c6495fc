"""Aave v3 Pool market events: pool, configurator, oracle, addresses provider, proxies, tokens.

Declarations (with upstream names) live in :mod:`ingest.catalog` (aave/aave-v3-core and
aave-dao/aave-v3-origin, files and commits named there). Tables are ``raw.aave_v3_<event>``
for the root contracts and ``raw.aave_v3_<token kind>_<event>`` for token events; the
``Upgraded`` logs of every proxy (pool, configurator, tokens) go to ``raw.aave_v3_upgraded`` with
the emitting role, so the rule set in force at a block can be selected later.
"""

from __future__ import annotations

from .. import catalog
from .aave import AaveMarket
from .base import EventGroup, build_event_tables

__all__ = ["AaveV3"]

NAME = "aave_v3"


class AaveV3(AaveMarket):
    NAME = NAME
    ROLES = {"pool": True, "pool_configurator": False, "oracle": False,
             "addresses_provider": False, "a_token": False, "variable_debt_token": False,
             "stable_debt_token": False}
    GROUPS = (
        EventGroup(("pool",), catalog.AAVE_V3_POOL, NAME),
        EventGroup(("pool_configurator",), catalog.AAVE_V3_CONFIGURATOR, NAME),
        EventGroup(("oracle",), catalog.AAVE_V3_ORACLE, NAME),
        EventGroup(("addresses_provider",), catalog.AAVE_V3_ADDRESSES_PROVIDER, NAME),
        EventGroup(("a_token", "variable_debt_token"), catalog.AAVE_V3_SCALED_TOKEN,
                   f"{NAME}_scaled_token"),
        EventGroup(("a_token",), catalog.AAVE_V3_ATOKEN, f"{NAME}_a_token"),
        EventGroup(("stable_debt_token",), catalog.AAVE_V3_STABLE_DEBT_TOKEN,
                   f"{NAME}_stable_debt_token"),
        EventGroup(("variable_debt_token", "stable_debt_token"), catalog.AAVE_V3_DEBT_TOKEN,
                   f"{NAME}_debt_token"),
        EventGroup(("variable_debt_token",), catalog.AAVE_V3_GHO_VARIABLE_DEBT_TOKEN,
                   f"{NAME}_variable_debt_token"),
        EventGroup(("pool", "pool_configurator", "a_token", "variable_debt_token",
                    "stable_debt_token"), catalog.PROXY, NAME),
    )
    EVENT_TABLES = build_event_tables(NAME, GROUPS)
