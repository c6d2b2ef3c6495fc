"""Aave v2 LendingPool liquidation rules, integer-exact, and positions rebuilt from events.

Covers ``LendingPool.getUserAccountData`` / ``GenericLogic.calculateUserAccountData`` (ETH-quoted
oracle: values in ETH wei, ``BASE_CURRENCY_UNIT = 10**18``; stable and variable debt; indices
accrued to the block timestamp; ``balanceDecreaseAllowed``), ``LendingPool.liquidationCall``
through ``LendingPoolCollateralManager`` (validation with the ``Errors.sol`` codes, a 50 % close
factor always, collateral with the whole bonus to the liquidator, variable-then-stable burns,
receiveAToken, the liquidity check, the treasury mint of ``updateState``, new rates from the
``DefaultReserveInterestRateStrategy``, the events the pool and its tokens emit), no write-off
(debt left without collateral stays on the user and is reported as ``bad_debt``), and the
rebuild of reserves and positions from the pool, configurator and token events.

Source: aave/protocol-v2 @ 9169e0db62dbfe8122de848ae0c295ac7f683af9 (npm @aave/protocol-v2
1.0.1; liquidation code identical bar whitespace to ce53c4a): ``contracts/protocol/lendingpool/
{LendingPool,LendingPoolCollateralManager,LendingPoolConfigurator,
DefaultReserveInterestRateStrategy}.sol``, ``libraries/logic/{GenericLogic,ReserveLogic,
ValidationLogic}.sol``, ``libraries/configuration/{ReserveConfiguration,UserConfiguration}.sol``,
``libraries/helpers/{Errors,Helpers}.sol``, ``libraries/math/{MathUtils,WadRayMath,
PercentageMath}.sol``, ``tokenization/{AToken,VariableDebtToken,StableDebtToken,
IncentivizedERC20}.sol``. Each module names the files it ports.

Proven against that bytecode on anvil (``tests/protocols/test_aave_v2_differential.py``,
``test_aave_v2_events.py``).

Not modelled: borrow/deposit/withdraw simulation (only their events are applied), flash loans
other than their events, the fallback oracle (a missing or non-positive price raises
:class:`~protocols.errors.MissingPrice`), incentives controllers, the underlying ERC-20
transfers, later v2 revisions (the 2021+ pool with ``Initialized`` token events,
``ReserveUsedAsCollateral`` on ``transferOnLiquidation``'s later variants, v2 AMM/ARC markets),
markets whose oracle is not ETH-quoted (USD with 8 decimals, as v2 markets outside Ethereum's
main one are documented to use: their ``BaseCurrencySet`` is refused with
:class:`~protocols.errors.UnsupportedEvent`; an oracle whose ``BaseCurrencySet`` was not ingested
cannot be told apart).
"""

from .adapter import BASE_CURRENCY_UNIT, AaveV2Adapter
from .configuration import ReserveConfiguration
from .generic_logic import AccountData, UserAccountData
from .state import AaveV2State, InterestRateStrategy, ReserveData, UserReserve, UserState

__all__ = [
    "AaveV2Adapter",
    "BASE_CURRENCY_UNIT",
    "AccountData",
    "UserAccountData",
    "AaveV2State",
    "InterestRateStrategy",
    "ReserveConfiguration",
    "ReserveData",
    "UserReserve",
    "UserState",
]
