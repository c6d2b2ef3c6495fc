"""Which Aave v3 rule set is in force at a block: deployment data plus the pool proxy's upgrades.

Source: the proxy event ``Upgraded(address indexed implementation)`` of
aave/aave-v3-core @ 782f519 ``contracts/dependencies/openzeppelin/upgradeability/
BaseUpgradeabilityProxy.sol`` (``ingest.catalog.PROXY``, stored with role ``pool`` for the pool
proxy in ``raw.aave_v3_upgraded``); release contents from aave-dao/aave-v3-origin tags
v3.1.0 (e627c74), v3.2.0 (7c6023e), v3.3.0 (5431379), v3.4.0 (d7a6412), v3.5.0 (6138e1f).

A market's rules come from two facts: a *schedule* of ``(activation block, RuleSet)`` from
deployment data (the rule set the pool was deployed with, and any activation known without
logs), and the pool's ``Upgraded`` logs mapped through an *implementations* table
(implementation address -> RuleSet). The later of the two wins at every point of the chain. An
``Upgraded`` to an implementation the table does not know raises :class:`UnknownImplementation`
naming the log: the replay must stop rather than keep running the old rules.

Ethereum Core market data (:data:`ETHEREUM_CORE`), provenance:

* pool proxy ``0x87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2``, created at block 16291127
  (``ingest/presets/ethereum.toml``: bgd-labs/aave-address-book, aave/protocol-subgraphs);
  v3.0.1 rules (:data:`~.state.V3_0_1`, aave-v3-core 1.17.x, released 2022-12-28) from there.
  The first implementation is installed by ``PoolAddressesProvider._updateImpl`` through the
  proxy's ``initialize``, which calls ``_setImplementation`` and emits no ``Upgraded``
  (aave-v3-core @ 782f519 ``InitializableUpgradeabilityProxy.sol``; only ``_upgradeTo`` emits
  it), so the launch version comes from this schedule alone and the move to v3.0.2 from the
  first ``Upgraded`` log;
* implementations: the history of ``POOL_IMPL`` in bgd-labs/aave-address-book
  ``src/ts/AaveV3Ethereum.ts`` (read at the commits named below; each value is the
  implementation the address book recorded after that release's governance upgrade):

  - ``0x5FAab9E1adbddaD0a08734BE8a52185Fd6558E14`` v3.0.2 (59151e77, 2024-03-11, first record);
  - ``0x34339f94350EC5274ea44d0C37DAe9e968c44081`` v3.1 (18f96191, 2024-07-27, cache update);
  - ``0x1f64488c2C4686771dafA75915274d27878B667a`` v3.2 (fb11d947, "feat: v3.2.0 upgrade");
  - ``0xeF434E4573b90b6ECd4a00f4888381e4D0CC5Ccd`` v3.2 (483e27dd, 2024-10-16: replaced the
    previous one eight days later without a version note). It is the "3.2 patch for legacy
    periphery" (BGD Labs AIP; its pool implementation diff is named
    ``1_poolImpl_0x1f64488c..._0xeF434E45...``): aave-dao/aave-v3-origin v3.2.1 (58e60a2),
    whose only Pool change from v3.2.0 is ``getReserveData`` returning a mock
    ``stableDebtTokenAddress`` — v3.2 rules;
  - ``0x9aEb8aAA1cA38634Aa8C0c8933E7fB4D61091327`` v3.3 (ecbe265f, 2025-02-24, the day of
    tag v3.3.0);
  - ``0x947f0054fAEd3481FF4e76CA35f12fbE36cc665B`` v3.4 (778fd70e, "fix: upgrade to 3.4");
  - ``0x97287a4F35E583D924f78AD88DB8AFcE1379189A`` v3.5 (33761b7d, "update config engine
    for v3.5");

* GHO's variable debt token ``0x786dBff3f1292ae8F92ea68Cf93c30b34B1ed04B`` (``ASSETS.GHO.V_TOKEN``
  in the same ``AaveV3Ethereum.ts``): a gho-core ``GhoVariableDebtToken`` (stkAAVE discount)
  until v3.4; its launch implementation ``0x3FEaB6F8510C73E05b8C0Fdf96Df012E3A144319``
  predates gho-core b2db754's full repayment (bgd-labs/aave-proposals
  ``AaveV3_Ethereum_VGHOImprovement_20230826`` replaced it).

Not sourced, so left out: any v3.0.2 implementation before ``0x5FAab9E1`` (the address book has
no ``POOL_IMPL`` before March 2024) — a replay from the pool's creation that meets such an
``Upgraded`` log stops (:class:`UnknownImplementation`) and must add it with
:func:`with_implementations`; ``0x8147b99DF7672A21809c9093E6F6CE1a60F119Bd``
(2e2878b2, 2026-01-16), v3.6, whose rules are not ported; the activation *blocks* of the
upgrades (they come from the ``Upgraded`` logs themselves). Nothing here was checked on chain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..domain import EventRef
from ..errors import InconsistentEvent, ProtocolError
from .state import V3_0, V3_0_1, V3_1, V3_2, V3_3, V3_4, V3_5, RuleSet

__all__ = [
    "UnknownImplementation",
    "NoRuleSet",
    "Upgrade",
    "AaveV3Deployment",
    "ETHEREUM_CORE",
    "KNOWN_DEPLOYMENTS",
    "rules_at",
    "implementation_rules",
    "with_implementations",
]


class UnknownImplementation(InconsistentEvent):
    """A pool ``Upgraded`` log names an implementation no rule set is known for; the message
    names the block, log index and transaction."""


class NoRuleSet(ProtocolError):
    """No rule set is scheduled at or before the block asked about."""


@dataclass(frozen=True, slots=True)
class Upgrade:
    """One ingested pool ``Upgraded(implementation)`` log."""

    ref: EventRef
    implementation: str


@dataclass(frozen=True, slots=True)
class AaveV3Deployment:
    """Deployment data of one v3 market: its pool proxy, the rule set schedule known without
    logs (``(activation block, RuleSet)``, ascending) and the pool implementations' rule sets
    (lower-case addresses)."""

    name: str
    pool: str
    rule_schedule: tuple[tuple[int, RuleSet], ...]
    implementations: Mapping[str, RuleSet] = field(default_factory=dict)
    #: variable debt tokens (lower case) that are gho-core ``GhoVariableDebtToken``s
    discount_debt_tokens: frozenset[str] = frozenset()
    #: implementations (lower case) of those tokens from before gho-core b2db754, whose burn of
    #: the whole debt burns ``rayDiv(amount) + rayDiv(discount)``, not the whole scaled balance
    gho_impls_without_full_repayment: frozenset[str] = frozenset()


def _impls(pairs: Iterable[tuple[str, RuleSet]]) -> Mapping[str, RuleSet]:
    return MappingProxyType({address.lower(): rules for address, rules in pairs})


ETHEREUM_CORE = AaveV3Deployment(
    name="aave_v3_ethereum",
    pool="0x87870bca3f3fd6335c3f4ce8392d69350b4fa4e2",
    rule_schedule=((16291127, V3_0_1),),
    implementations=_impls((
        ("0x5FAab9E1adbddaD0a08734BE8a52185Fd6558E14", V3_0),
        ("0x34339f94350EC5274ea44d0C37DAe9e968c44081", V3_1),
        ("0x1f64488c2C4686771dafA75915274d27878B667a", V3_2),
        ("0xeF434E4573b90b6ECd4a00f4888381e4D0CC5Ccd", V3_2),
        ("0x9aEb8aAA1cA38634Aa8C0c8933E7fB4D61091327", V3_3),
        ("0x947f0054fAEd3481FF4e76CA35f12fbE36cc665B", V3_4),
        ("0x97287a4F35E583D924f78AD88DB8AFcE1379189A", V3_5),
    )),
    # GHO's variable debt token (bgd-labs/aave-address-book AaveV3Ethereum ASSETS.GHO.V_TOKEN;
    # underlying GHO 0x40D16FC0246aD3160Ccc09B8D0D3A2cD28aE6C2f)
    discount_debt_tokens=frozenset({"0x786dbff3f1292ae8f92ea68cf93c30b34b1ed04b"}),
    # vGHO's launch implementation (revision 1): bgd-labs/aave-proposals
    # diffs/preAaveV3_Ethereum_VGHOImprovement_20230826_postAaveV3_Ethereum_VGHOImprovement_20230826.md
    # (variableDebtTokenImpl 0x3FEaB6F8... -> 0x7aa606b1..., the "vGHO improvement" of gho-core
    # b2db754's full repayment; then 0x20Cb2f30... by AaveV3Ethereum_GhoIncidentReport_20231113,
    # gho-core 51be447; v3.4's plain token after that)
    gho_impls_without_full_repayment=frozenset({"0x3feab6f8510c73e05b8c0fdf96df012e3a144319"}),
)

#: deployment data by pool proxy address (lower case)
KNOWN_DEPLOYMENTS: Mapping[str, AaveV3Deployment] = MappingProxyType({ETHEREUM_CORE.pool: ETHEREUM_CORE})


def with_implementations(deployment: AaveV3Deployment,
                         extra: Mapping[str, RuleSet]) -> AaveV3Deployment:
    """``deployment`` with more implementation -> rule set entries (e.g. ones sourced later)."""
    merged = dict(deployment.implementations)
    merged.update({a.lower(): r for a, r in extra.items()})
    return AaveV3Deployment(deployment.name, deployment.pool, deployment.rule_schedule,
                            MappingProxyType(merged), deployment.discount_debt_tokens,
                            deployment.gho_impls_without_full_repayment)


def implementation_rules(implementations: Mapping[str, RuleSet], upgrade: Upgrade) -> RuleSet:
    """The rule set of the implementation an ``Upgraded`` log installs, or
    :class:`UnknownImplementation` naming the log."""
    rules = implementations.get(upgrade.implementation.lower())
    if rules is None:
        raise UnknownImplementation(
            f"{upgrade.ref}: pool Upgraded to implementation {upgrade.implementation}, which maps to no "
            f"Aave v3 rule set (known: {sorted(implementations) or 'none'}); add it to the deployment's "
            f"implementations if its release is ported")
    return rules


def rules_at(block: int, schedule: Iterable[tuple[int, RuleSet]], upgrades: Iterable[Upgrade] = (),
             implementations: Mapping[str, RuleSet] | None = None, *,
             log_index: int | None = None) -> RuleSet:
    """The rule set in force for a log at ``(block, log_index)`` (``log_index`` None: after the
    whole block). A schedule entry takes effect at the start of its block; an upgrade right
    after its own log. The latest of both before the point wins; every upgrade before the point
    must map to a rule set (:class:`UnknownImplementation` otherwise). :class:`NoRuleSet` when
    nothing is in force yet. Pure: no state is read."""
    point = (block, log_index if log_index is not None else 2**63)
    best: tuple[tuple[int, int], RuleSet] | None = None
    for start, rules in schedule:
        at = (start, -1)
        if at < point and (best is None or at >= best[0]):
            best = (at, rules)
    impls = implementations if implementations is not None else {}
    for up in upgrades:
        at = (up.ref.block_number, up.ref.log_index)
        if at < point:
            rules = implementation_rules(impls, up)
            if best is None or at >= best[0]:
                best = (at, rules)
    if best is None:
        raise NoRuleSet(f"no Aave v3 rule set is scheduled at or before block {block}")
    return best[1]
