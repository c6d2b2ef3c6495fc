"""Aave v2 LendingPool market events: pool, configurator, oracle, addresses provider, tokens.

Declarations (with upstream names) live in :mod:`ingest.catalog` (aave/protocol-v2, files and
commit named there). v2's LiquidationCall is emitted by the LendingPool proxy (the collateral
manager is delegate-called). Tables are ``raw.aave_v2_<event>`` and
``raw.aave_v2_<token kind>_<event>``; proxy ``Upgraded`` logs go to ``raw.aave_v2_upgraded``.
"""

from __future__ import annotations

from .. import catalog
from .aave import AaveMarket
from .base import EventGroup, build_event_tables

__all__ = ["AaveV2"]

NAME = "aave_v2"


class AaveV2(AaveMarket):
    NAME = NAME
    POOL_ROLE = "lending_pool"
    CONFIGURATOR_ROLE = "lending_pool_configurator"
    ROLES = {"lending_pool": True, "lending_pool_configurator": False, "oracle": False,
             "addresses_provider": False, "a_token": False, "variable_debt_token": False,
             "stable_debt_token": False}
    GROUPS = (
        EventGroup(("lending_pool",), catalog.AAVE_V2_POOL, NAME),
        EventGroup(("lending_pool_configurator",), catalog.AAVE_V2_CONFIGURATOR, NAME),
        EventGroup(("oracle",), catalog.AAVE_V2_ORACLE, NAME),
        EventGroup(("addresses_provider",), catalog.AAVE_V2_ADDRESSES_PROVIDER, NAME),
        EventGroup(("a_token",), catalog.AAVE_V2_ATOKEN, f"{NAME}_a_token"),
        EventGroup(("variable_debt_token",), catalog.AAVE_V2_VARIABLE_DEBT_TOKEN,
                   f"{NAME}_variable_debt_token"),
        EventGroup(("stable_debt_token",), catalog.AAVE_V2_STABLE_DEBT_TOKEN,
                   f"{NAME}_stable_debt_token"),
        EventGroup(("lending_pool", "lending_pool_configurator", "a_token",
                    "variable_debt_token", "stable_debt_token"), catalog.PROXY, NAME),
    )
    EVENT_TABLES = build_event_tables(NAME, GROUPS)
