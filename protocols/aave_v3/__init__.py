"""Aave v3 Pool liquidation rules, integer-exact, for the v3.0, v3.1 and v3.2 rule sets.

Covers ``Pool.getUserAccountData`` / ``GenericLogic.calculateUserAccountData`` (e-mode with its
category price source (v3.0–3.1) or collateral bitmap (v3.2), LT = 0 collateral ignored,
stable debt (v3.0–3.1), indices accrued to the block timestamp), ``Pool.liquidationCall``
(validation with the ``Errors.sol`` codes, close factor 50 %/100 % around HF 0.95, collateral
and protocol fee, variable-then-stable burns, receiveAToken, isolation-mode debt, the events the
pool and its tokens emit, new indices, treasury accrual and — with a v3.0 rate strategy —
rates), and the rebuild of reserves and positions from the pool, configurator and token events.

Source: aave/aave-v3-core @ 724a9ef43adf139437ba87dcbab63462394d4601 (tag v1.19.3, npm
@aave/core-v3 1.19.3, protocol v3.0.2; ``contracts/`` identical to the final commit 782f519):
``contracts/protocol/libraries/logic/{GenericLogic,LiquidationLogic,ValidationLogic,ReserveLogic,
EModeLogic,IsolationModeLogic,PoolLogic}.sol``, ``configuration/{ReserveConfiguration,
UserConfiguration}.sol``, ``helpers/Errors.sol``, ``pool/DefaultReserveInterestRateStrategy.sol``,
``tokenization/{AToken,VariableDebtToken,StableDebtToken}.sol`` and ``tokenization/base/*``.
v3.1 and v3.2 differences from aave-dao/aave-v3-origin tags v3.1.0 (e627c74) and v3.2.0
(7c6023e). Each module names the files it ports.

Proven against the v3.0.2 bytecode on anvil (``tests/protocols/test_aave_v3_differential.py``);
the v3.1/v3.2 branches are ported from source only.

Not modelled: v3.3+ (deficit accounting, new close factor, dust rule) — a later rule set; the
v3.1+ interest rate strategy (rates then come from ``ReserveDataUpdated``); siloed borrowing,
caps and borrow-side validation (no borrow simulation); the fallback oracle (a missing or
non-positive price raises :class:`~protocols.errors.MissingPrice`); incentives controllers;
the underlying ERC-20 transfers; selecting the rule set from ``Upgraded`` logs (choose it with
``new_state(rules=...)``).
"""

from .adapter import BASE_CURRENCY_UNIT, AaveV3Adapter
from .generic_logic import AccountData, UserAccountData
from .state import (
    RULE_SETS,
    V3_0,
    V3_1,
    V3_2,
    AaveV3State,
    EModeCategory,
    InterestRateStrategy,
    ReserveData,
    RuleSet,
    UserReserve,
    UserState,
)

__all__ = [
    "AaveV3Adapter",
    "BASE_CURRENCY_UNIT",
    "AccountData",
    "UserAccountData",
    "AaveV3State",
    "EModeCategory",
    "InterestRateStrategy",
    "ReserveData",
    "RuleSet",
    "RULE_SETS",
    "UserReserve",
    "UserState",
    "V3_0",
    "V3_1",
    "V3_2",
]
