"""Shared ingestion logic of Aave v2 and v3 markets (pool, configurator, oracle, tokens).

Root contracts come from the deployment (``pool`` required; ``pool_configurator``, ``oracle``,
``addresses_provider`` optional). Token contracts (aToken, variable and stable debt tokens) are
*discovered* from the configurator's ``ReserveInitialized`` logs: those stored so far plus the
current chunk's (root logs are written first, then tokens are read for the same chunk). If
ingestion of a deployment starts after its ``start_block``, the ``ReserveInitialized`` logs
between the two are read once (not stored) to learn the token addresses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import DecodeError
from .base import LogDataset, Source

if TYPE_CHECKING:
    from ..deployments import DeploymentSet
    from ..engine import RunContext

__all__ = ["AaveMarket"]

TOKEN_ROLES = ("a_token", "variable_debt_token", "stable_debt_token")


class AaveMarket(LogDataset):
    """Common part of :class:`~ingest.datasets.aave_v3.AaveV3` and ``AaveV2``."""

    POOL_ROLE = "pool"
    CONFIGURATOR_ROLE = "pool_configurator"

    def sources(self, dset: DeploymentSet, chain_id: int) -> list[Source]:
        return [Source(self.NAME, d.name, d.start_block, d) for d in dset.deployments
                if d.protocol == self.NAME and d.chain_id == chain_id]

    def root_roles(self, ctx: RunContext, source: Source) -> dict[str, list[str]]:
        return {role: [addr] for role, addr in source.payload.contracts.items()
                if role in self.ROLES and role not in TOKEN_ROLES}

    def declared_addresses(self, source: Source) -> dict[str, list[str]]:
        """The deployment's contracts of this dataset's roles (root contracts, and tokens
        declared by hand): a role added or readdressed since a range was stored makes it stale."""
        return {role: [str(addr).lower()] for role, addr in sorted(source.payload.contracts.items())
                if role in self.ROLES}

    def derived_inputs(self) -> frozenset[str] | None:
        """Token discovery reads ``ReserveInitialized``; nothing else is derived."""
        return frozenset(t.spec.topic0 for t in self.EVENT_TABLES
                         if t.spec.name == "ReserveInitialized")

    def _reserve_table(self) -> str:
        return next(t.table.fqn for t in self.EVENT_TABLES
                    if t.spec.name == "ReserveInitialized")

    def discovered_roles(self, ctx: RunContext, source: Source, a: int, b: int
                         ) -> dict[str, list[str]]:
        con = ctx.wh.con
        rows = con.execute(
            f"SELECT a_token, variable_debt_token, stable_debt_token FROM {self._reserve_table()} "
            "WHERE chain_id=? AND source=? AND block_number <= ?",
            [ctx.chain_id, source.key, b]).fetchall()
        found: dict[str, set[str]] = {r: set() for r in TOKEN_ROLES}
        for at, vt, st in rows + self._before_coverage(ctx, source):
            found["a_token"].add(at)
            found["variable_debt_token"].add(vt)
            found["stable_debt_token"].add(st)
        for role in TOKEN_ROLES:  # tokens declared by hand in the deployment
            if role in source.payload.contracts:
                found[role].add(source.payload.contracts[role])
        zero = "0x" + "0" * 40
        return {r: sorted(x for x in v if x != zero) for r, v in found.items() if v}

    def _before_coverage(self, ctx: RunContext, source: Source) -> list[tuple[str, str, str]]:
        """ReserveInitialized logs of the blocks from start_block up to the run's first block
        that are not stored under this version's fingerprint (below the stored ranges and in the
        gaps between them and the run's range), read once. The run's own range is read chunk by
        chunk, in order, before its tokens are looked for; a stretch left out here hid the tokens
        of a reserve initialized there from the run (their events silently missing from a range
        marked ingested)."""
        key = (self.NAME, source.key, "pre")
        if key in ctx.state:
            cached: list[tuple[str, str, str]] = ctx.state[key]
            return cached
        gaps, cur = [], source.start_block
        # stored under this version's fingerprints only (declarations and the contracts given:
        # an interval stored before the configurator was declared holds none of its
        # ReserveInitialized): one stored under others is re-ingested or left stale, and is
        # read here rather than trusted
        for a, b in sorted(ctx.wh.covered(ctx.chain_id, self.NAME, source.key,
                                          asked=self.asked_sha256(),
                                          addresses=self.addresses_sha256(source))):
            if a > cur:
                gaps.append((cur, min(a, ctx.range_start) - 1))
            cur = max(cur, b + 1)
            if cur >= ctx.range_start:
                break
        if cur < ctx.range_start:
            gaps.append((cur, ctx.range_start - 1))
        out: list[tuple[str, str, str]] = []
        configurator = source.payload.address(self.CONFIGURATOR_ROLE)
        et = next(t for t in self.EVENT_TABLES if t.spec.name == "ReserveInitialized")
        for lo, hi in gaps if configurator else []:
            if lo > hi:
                continue
            logs = ctx.rpc.get_logs(lo, hi, [configurator], [[et.spec.topic0]])
            for lg in logs:
                if str(lg.get("address", "")).lower() != configurator:
                    raise DecodeError(
                        "eth_getLogs returned a log of a contract it was not asked for "
                        f"(ReserveInitialized of {configurator})", field="address",
                        block_number=int(lg["blockNumber"], 16),
                        log_index=int(lg["logIndex"], 16), tx_hash=lg.get("transactionHash"))
                d = et.spec.decode_log(lg["topics"], lg["data"],
                                       block_number=int(lg["blockNumber"], 16),
                                       log_index=int(lg["logIndex"], 16),
                                       tx_hash=lg["transactionHash"])
                out.append((str(d["a_token"]), str(d["variable_debt_token"]),
                            str(d["stable_debt_token"])))
        ctx.state[key] = out
        return out
