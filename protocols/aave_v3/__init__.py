"""Aave v3 Pool liquidation rules, integer-exact, for the v3.0 to v3.5 rule sets.

Covers ``Pool.getUserAccountData`` / ``GenericLogic.calculateUserAccountData`` (e-mode with its
category price source (v3.0–3.1) or collateral bitmap (v3.2+), LT = 0 collateral ignored,
stable debt (v3.0–3.1), indices accrued to the block timestamp), ``Pool.liquidationCall``
(validation with the ``Errors.sol`` codes, close factor 50 %/100 % around HF 0.95, collateral
and protocol fee, variable-then-stable burns, receiveAToken, isolation-mode debt, the events the
pool and its tokens emit, new indices, treasury accrual and — with a v3.0 rate strategy —
rates), and the rebuild of reserves and positions from the pool, configurator and token events.
v3.3/v3.4 (:data:`V3_3`, :data:`V3_4`): the whole-debt close factor with the $2,000 thresholds,
the $1,000 dust rule, deficit accounting (``DeficitCreated`` for every debt of a user left
without collateral; ``DeficitCreated``/``DeficitCovered`` applied to ``ReserveData.deficit``),
v3.4's custom errors, ``SelfLiquidation`` and compounding formula. v3.5 (:data:`V3_5`): the
``TokenMath`` rounding. The rule set in force follows the pool's ``Upgraded`` logs (:mod:`.rule_schedule`).

Source: aave/aave-v3-core @ 724a9ef43adf139437ba87dcbab63462394d4601 (tag v1.19.3, npm
@aave/core-v3 1.19.3, protocol v3.0.2; ``contracts/`` identical to the final commit 782f519):
``contracts/protocol/libraries/logic/{GenericLogic,LiquidationLogic,ValidationLogic,ReserveLogic,
EModeLogic,IsolationModeLogic,PoolLogic}.sol``, ``configuration/{ReserveConfiguration,
UserConfiguration}.sol``, ``helpers/Errors.sol``, ``pool/DefaultReserveInterestRateStrategy.sol``,
``tokenization/{AToken,VariableDebtToken,StableDebtToken}.sol`` and ``tokenization/base/*``.
Later releases from aave-dao/aave-v3-origin tags v3.1.0 (e627c74), v3.2.0 (7c6023e), v3.3.0
(5431379), v3.4.0 (d7a6412) and v3.5.0 (6138e1f). Each module names the files it ports.

Proven against the v3.0.2 bytecode on anvil (``tests/protocols/test_aave_v3_differential.py``);
the v3.1–v3.5 branches are ported from source only, v3.3–v3.5 checked against hand-worked
vectors (``tests/protocols/test_aave_v3_rules_v33.py``), an independent re-derivation of each
liquidation on sampled markets (``tests/protocols/test_aave_v3_rules_v33_model.py``) and, like
every rule set, against the conformance invariants.

GHO's variable debt token (v3.0.1-v3.3; plain from v3.4), a gho-core ``GhoVariableDebtToken``
(named by the deployment data: Ethereum's vGHO; a discount or ``DiscountPercentUpdated`` from any
other variable debt token raises): the rebuild keeps each borrower's stkAAVE discount percent
(``DiscountPercentUpdated``, its old percent checked) and accumulated interest
(``getBalanceFromInterest``), burns the discount each ``Mint``/``Burn`` announces from the scaled
debt and checks it is ``percentMul(accrued, percent)``. A simulation reads GHO debt as the
token's ``balanceOf`` (discounted; ``generic_logic.variable_debt_balance_of``) where the pool
does (v3.0.1-v3.2 ``_calculateDebt`` and bad debt; v3.3's health factor, reserve debt and bad
debt), burns it as the token does (``tokens.burn_gho_debt``) and takes v3.3's GHO deficit less
the interest accumulated beyond the amount liquidated. Ported from gho-core 51be447 source;
``balanceOf``, the burn and the event rebuild are proven against that token's real bytecode on
anvil (``tests/protocols/test_aave_v3_gho_token.py``), v3.0.2 liquidations of GHO debt against
the real Pool running it (``test_aave_v3_gho_pool.py``), v3.3's GHO cases and the accumulated
interest's pool side against hand-worked vectors (``test_aave_v3.py``, ``test_aave_v3_events.py``). After a
simulated burn the token refreshes the percent from the user's stkAAVE balance, which is not
rebuilt: a later read of that user's GHO debt with interest accrued raises
:class:`GhoDiscountUnknown`.

Not modelled: v3.6+ (its implementation is left out of the deployment data, so an upgrade to
it stops a replay); GHO's discount percent after a simulated burn (see above); the v3.1+
interest rate strategy (rates then come from ``ReserveDataUpdated``; the deficit's effect on
rates is therefore not modelled either);
simulating ``eliminateReserveDeficit`` (only its ``DeficitCovered`` event is applied); the
virtual underlying balance beyond ``a_token_underlying_balance``; siloed borrowing, caps and
borrow-side validation (no borrow simulation); the fallback oracle (a missing or non-positive
price raises :class:`~protocols.errors.MissingPrice`); incentives controllers; the underlying
ERC-20 transfers; token-proxy ``Upgraded`` logs other than a GhoVariableDebtToken's (token rounding
follows the pool's rule set; vGHO's launch implementation burns a full repayment by parts).
v3.0.1 (:data:`V3_0_1`, Ethereum's launch rules) differs from v3.0.2 only in the automatic
collateral checks; v3.0.0 (1.16.x: nominal ``BalanceTransfer`` amounts, no transfer interest
``Mint``, the collateral flag and protocol-fee cap of a liquidation) is not modelled. Deployment
data lacks v3.0.2 Ethereum pool implementations before March 2024 and every activation block
(see :mod:`.rule_schedule`).
"""

from .adapter import BASE_CURRENCY_UNIT, AaveV3Adapter
from .generic_logic import AccountData, UserAccountData
from .rule_schedule import (
    ETHEREUM_CORE,
    KNOWN_DEPLOYMENTS,
    AaveV3Deployment,
    NoRuleSet,
    UnknownImplementation,
    Upgrade,
    rules_at,
)
from .state import (
    RULE_SETS,
    V3_0,
    V3_0_1,
    V3_1,
    V3_2,
    V3_3,
    V3_4,
    V3_5,
    AaveV3State,
    EModeCategory,
    GhoDiscountUnknown,
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
    "GhoDiscountUnknown",
    "InterestRateStrategy",
    "ReserveData",
    "RuleSet",
    "RULE_SETS",
    "UserReserve",
    "UserState",
    "V3_0",
    "V3_0_1",
    "V3_1",
    "V3_2",
    "V3_3",
    "V3_4",
    "V3_5",
    "AaveV3Deployment",
    "ETHEREUM_CORE",
    "KNOWN_DEPLOYMENTS",
    "NoRuleSet",
    "UnknownImplementation",
    "Upgrade",
    "rules_at",
]
