# ruff: noqa: E501
"""Solidity event declarations of the contracts `deficit` ingests, grouped by emitting role.

Pure data, standard library only. Each group is a module-level tuple of strings; each string
is one event declaration copied from the upstream Solidity source, reduced to this shape::

    Name(type [indexed] paramName, type [indexed] paramName, ...)

- no ``event`` keyword, no trailing ``;``, exactly one space between tokens and ``", "``
  between parameters; an event without parameters is written ``Name()``;
- parameter names and ``indexed`` flags are verbatim from upstream (camelCase);
- types are canonical ABI types: ``uint256`` (never ``uint``), enums as ``uint8`` (the enum's
  name is given in a trailing comment on that line), contract types as ``address``,
  user-defined value types as their underlying type;
- the topic0 of a declaration is ``keccak256`` of its canonical signature: the name and the
  comma-separated types, with no names, spaces or ``indexed``
  (e.g. ``LiquidationCall(address,address,address,uint256,uint256,address,bool)``).

A group lists the events one *kind of contract* emits (the Aave pool proxy, an aToken proxy,
a Chainlink aggregator, ...). The same declaration may appear in several groups (Aave v2 and
v3 share several pool events), and one group may hold two events of the same name with
different signatures (OCR1 and OCR2 ``NewTransmission``), but never the same canonical
signature twice. Where a role's interface changed across releases, the group is the union of
the events of every release that was live on Ethereum mainnet; the comment on each line says
when an event was added or removed if it was not there throughout.

Sources (read at the commits named in each group's comment):

- ``aave/aave-v3-core`` @ 782f51917056a53a2c228701058a6c3fb233684a (2024-09-03, the repo's
  final commit; interfaces as in v3.0.x). The npm package ``@aave/core-v3`` 1.19.3
  (= tag v1.19.3, 724a9ef) carries identical declarations in ``contracts/`` and ``artifacts/``.
- ``aave-dao/aave-v3-origin`` tags v3.1.0 (e627c74), v3.2.0 (7c6023e), v3.3.0 (5431379),
  v3.4.0 (d7a6412), v3.5.0 (6138e1f), v3.6.0 (5a230ec): events added after v3.0.
- ``aave/protocol-v2`` @ ce53c4a8c8620125063168620eba0a8a92854eb8 (2023-01-11) and tag 1.0.1
  (7e39178); the npm package ``@aave/protocol-v2`` 1.0.1 carries the same declarations
  (its ``misc/AaveOracle.sol`` is the WethSet version, as deployed for the main market).
- ``smartcontractkit/libocr`` @ 0a5e2f907ddaf3c5cd787dc93d95683cde628bdd (OCR1/OCR2
  aggregators) and ``smartcontractkit/chainlink`` @ 11b8439b32160eaeab966606f6f2221028f305f6
  ``contracts/src/v0.6/interfaces/AggregatorInterface.sol`` (legacy AnswerUpdated/NewRound).

Only event declarations were taken from those sources.
"""

from __future__ import annotations

__all__ = [
    "AAVE_V3_POOL",
    "AAVE_V3_CONFIGURATOR",
    "AAVE_V3_ORACLE",
    "AAVE_V3_ADDRESSES_PROVIDER",
    "AAVE_V3_SCALED_TOKEN",
    "AAVE_V3_ATOKEN",
    "AAVE_V3_STABLE_DEBT_TOKEN",
    "AAVE_V3_DEBT_TOKEN",
    "AAVE_V3_GHO_VARIABLE_DEBT_TOKEN",
    "AAVE_V2_POOL",
    "AAVE_V2_CONFIGURATOR",
    "AAVE_V2_ORACLE",
    "AAVE_V2_ADDRESSES_PROVIDER",
    "AAVE_V2_ATOKEN",
    "AAVE_V2_VARIABLE_DEBT_TOKEN",
    "AAVE_V2_STABLE_DEBT_TOKEN",
    "PROXY",
    "CHAINLINK_AGGREGATOR",
    "GROUPS",
]

# ---------------------------------------------------------------------------------------------
# Aave v3
# ---------------------------------------------------------------------------------------------

# Pool proxy (Ethereum 0x87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2).
# aave/aave-v3-core @ 782f51917056a53a2c228701058a6c3fb233684a contracts/interfaces/IPool.sol;
# DeficitCreated / DeficitCovered: aave-dao/aave-v3-origin @ v3.3.0
# (5431379f8beb4d7128c84a81ced3917d856efa84) src/contracts/interfaces/IPool.sol, unchanged
# through v3.6.0. DataTypes.InterestRateMode is {NONE, STABLE, VARIABLE} in v3.0-v3.1 and
# {NONE, __DEPRECATED, VARIABLE} from v3.2 on.
AAVE_V3_POOL: tuple[str, ...] = (
    "Supply(address indexed reserve, address user, address indexed onBehalfOf, uint256 amount, uint16 indexed referralCode)",
    "Withdraw(address indexed reserve, address indexed user, address indexed to, uint256 amount)",
    "Borrow(address indexed reserve, address user, address indexed onBehalfOf, uint256 amount, uint8 interestRateMode, uint256 borrowRate, uint16 indexed referralCode)",  # interestRateMode: enum DataTypes.InterestRateMode
    "Repay(address indexed reserve, address indexed user, address indexed repayer, uint256 amount, bool useATokens)",
    "LiquidationCall(address indexed collateralAsset, address indexed debtAsset, address indexed user, uint256 debtToCover, uint256 liquidatedCollateralAmount, address liquidator, bool receiveAToken)",
    "ReserveDataUpdated(address indexed reserve, uint256 liquidityRate, uint256 stableBorrowRate, uint256 variableBorrowRate, uint256 liquidityIndex, uint256 variableBorrowIndex)",
    "ReserveUsedAsCollateralEnabled(address indexed reserve, address indexed user)",
    "ReserveUsedAsCollateralDisabled(address indexed reserve, address indexed user)",
    "UserEModeSet(address indexed user, uint8 categoryId)",
    "IsolationModeTotalDebtUpdated(address indexed asset, uint256 totalDebt)",
    "DeficitCreated(address indexed user, address indexed debtAsset, uint256 amountCreated)",  # v3.3+
    "DeficitCovered(address indexed reserve, address caller, uint256 amountCovered)",  # v3.3+
    "MintedToTreasury(address indexed reserve, uint256 amountMinted)",
    "SwapBorrowRateMode(address indexed reserve, address indexed user, uint8 interestRateMode)",  # interestRateMode: enum DataTypes.InterestRateMode; removed in v3.2
    "RebalanceStableBorrowRate(address indexed reserve, address indexed user)",  # removed in v3.2
    "FlashLoan(address indexed target, address initiator, address indexed asset, uint256 amount, uint8 interestRateMode, uint256 premium, uint16 indexed referralCode)",  # interestRateMode: enum DataTypes.InterestRateMode
    "MintUnbacked(address indexed reserve, address user, address indexed onBehalfOf, uint256 amount, uint16 indexed referralCode)",  # removed in v3.4
    "BackUnbacked(address indexed reserve, address indexed backer, uint256 amount, uint256 fee)",  # removed in v3.4
)

# PoolConfigurator proxy (Ethereum 0x64b761D848206f447Fe2dd461b0c635Ec39EbB27).
# aave/aave-v3-core @ 782f51917056a53a2c228701058a6c3fb233684a
# contracts/interfaces/IPoolConfigurator.sol (v3.0.x); PendingLtvChanged,
# LiquidationGracePeriodChanged, LiquidationGracePeriodDisabled: aave-dao/aave-v3-origin @ v3.1.0
# (e627c7428cbb358b9c84b601a009a86b4b871c08) src/core/contracts/interfaces/IPoolConfigurator.sol;
# AssetCollateralInEModeChanged, AssetBorrowableInEModeChanged: aave-dao/aave-v3-origin @ v3.2.0
# (7c6023e64a1c462f138997ec122d49a97a3d4890) src/contracts/interfaces/IPoolConfigurator.sol.
AAVE_V3_CONFIGURATOR: tuple[str, ...] = (
    "ReserveInitialized(address indexed asset, address indexed aToken, address stableDebtToken, address variableDebtToken, address interestRateStrategyAddress)",
    "CollateralConfigurationChanged(address indexed asset, uint256 ltv, uint256 liquidationThreshold, uint256 liquidationBonus)",
    "PendingLtvChanged(address indexed asset, uint256 ltv)",  # v3.1+
    "ReserveBorrowing(address indexed asset, bool enabled)",
    "ReserveFlashLoaning(address indexed asset, bool enabled)",
    "ReserveStableRateBorrowing(address indexed asset, bool enabled)",  # removed in v3.2
    "ReserveActive(address indexed asset, bool active)",
    "ReserveFrozen(address indexed asset, bool frozen)",
    "ReservePaused(address indexed asset, bool paused)",
    "ReserveDropped(address indexed asset)",
    "ReserveFactorChanged(address indexed asset, uint256 oldReserveFactor, uint256 newReserveFactor)",
    "BorrowCapChanged(address indexed asset, uint256 oldBorrowCap, uint256 newBorrowCap)",
    "SupplyCapChanged(address indexed asset, uint256 oldSupplyCap, uint256 newSupplyCap)",
    "LiquidationProtocolFeeChanged(address indexed asset, uint256 oldFee, uint256 newFee)",
    "LiquidationGracePeriodChanged(address indexed asset, uint40 gracePeriodUntil)",  # v3.1+
    "LiquidationGracePeriodDisabled(address indexed asset)",  # v3.1+ (not in protocol-rules.md)
    "UnbackedMintCapChanged(address indexed asset, uint256 oldUnbackedMintCap, uint256 newUnbackedMintCap)",  # removed in v3.4
    "EModeAssetCategoryChanged(address indexed asset, uint8 oldCategoryId, uint8 newCategoryId)",  # v3.0-v3.1 only
    "EModeCategoryAdded(uint8 indexed categoryId, uint256 ltv, uint256 liquidationThreshold, uint256 liquidationBonus, address oracle, string label)",
    "AssetCollateralInEModeChanged(address indexed asset, uint8 categoryId, bool collateral)",  # v3.2+
    "AssetBorrowableInEModeChanged(address indexed asset, uint8 categoryId, bool borrowable)",  # v3.2+
    "DebtCeilingChanged(address indexed asset, uint256 oldDebtCeiling, uint256 newDebtCeiling)",
    "SiloedBorrowingChanged(address indexed asset, bool oldState, bool newState)",
    "BorrowableInIsolationChanged(address asset, bool borrowable)",  # asset is NOT indexed upstream
    "ReserveInterestRateStrategyChanged(address indexed asset, address oldStrategy, address newStrategy)",
    "ATokenUpgraded(address indexed asset, address indexed proxy, address indexed implementation)",
    "StableDebtTokenUpgraded(address indexed asset, address indexed proxy, address indexed implementation)",  # removed in v3.2
    "VariableDebtTokenUpgraded(address indexed asset, address indexed proxy, address indexed implementation)",
)

# AaveOracle (Ethereum 0x54586bE62E3c3580375aE3723C145253060Ca0C2).
# aave/aave-v3-core @ 782f51917056a53a2c228701058a6c3fb233684a contracts/interfaces/IAaveOracle.sol
# (unchanged in aave-v3-origin through v3.6.0).
AAVE_V3_ORACLE: tuple[str, ...] = (
    "AssetSourceUpdated(address indexed asset, address indexed source)",
    "FallbackOracleUpdated(address indexed fallbackOracle)",
    "BaseCurrencySet(address indexed baseCurrency, uint256 baseCurrencyUnit)",
)

# PoolAddressesProvider (Ethereum 0x2f39d218133AFaB8F2B819B1066c7E434Ad94E9e).
# aave/aave-v3-core @ 782f51917056a53a2c228701058a6c3fb233684a
# contracts/interfaces/IPoolAddressesProvider.sol (unchanged through aave-v3-origin v3.6.0).
AAVE_V3_ADDRESSES_PROVIDER: tuple[str, ...] = (
    "PriceOracleUpdated(address indexed oldAddress, address indexed newAddress)",
    "PriceOracleSentinelUpdated(address indexed oldAddress, address indexed newAddress)",
    "PoolUpdated(address indexed oldAddress, address indexed newAddress)",
    "PoolConfiguratorUpdated(address indexed oldAddress, address indexed newAddress)",
    "ACLManagerUpdated(address indexed oldAddress, address indexed newAddress)",
)

# aToken and variable debt token proxies (both inherit ScaledBalanceTokenBase).
# aave/aave-v3-core @ 782f51917056a53a2c228701058a6c3fb233684a
# contracts/interfaces/IScaledBalanceToken.sol (unchanged through aave-v3-origin v3.6.0).
AAVE_V3_SCALED_TOKEN: tuple[str, ...] = (
    "Mint(address indexed caller, address indexed onBehalfOf, uint256 value, uint256 balanceIncrease, uint256 index)",
    "Burn(address indexed from, address indexed target, uint256 value, uint256 balanceIncrease, uint256 index)",
)

# aToken proxies (in addition to AAVE_V3_SCALED_TOKEN and ERC-20 Transfer/Approval).
# aave/aave-v3-core @ 782f51917056a53a2c228701058a6c3fb233684a contracts/interfaces/IAToken.sol.
# ``Initialized`` is emitted once by each token proxy when the configurator initialises it: the
# only event carrying the token's decimals and the aToken's treasury (needed to rebuild state).
# aave/aave-v3-core @ 724a9ef (npm @aave/core-v3 1.19.3) contracts/interfaces/IInitializableAToken.sol.
AAVE_V3_ATOKEN: tuple[str, ...] = (
    "BalanceTransfer(address indexed from, address indexed to, uint256 value, uint256 index)",
    "Initialized(address indexed underlyingAsset, address indexed pool, address treasury, address incentivesController, uint8 aTokenDecimals, string aTokenName, string aTokenSymbol, bytes params)",
)

# Variable and stable debt token proxies: their initialisation event.
# aave/aave-v3-core @ 724a9ef (npm @aave/core-v3 1.19.3)
# contracts/interfaces/IInitializableDebtToken.sol.
AAVE_V3_DEBT_TOKEN: tuple[str, ...] = (
    "Initialized(address indexed underlyingAsset, address indexed pool, address incentivesController, uint8 debtTokenDecimals, string debtTokenName, string debtTokenSymbol, bytes params)",
)

# GHO's variable debt token (Ethereum vGHO 0x786dBff3f1292ae8F92ea68Cf93c30b34B1ed04B, a variable
# debt token proxy of the pool), a gho-core GhoVariableDebtToken until Aave v3.4: the borrower's
# stkAAVE discount percent, which its balanceOf takes off the interest accrued since the user's
# last action. Declared for every variable debt token (only a GhoVariableDebtToken emits it).
# aave/gho-core @ 51be447 (the deployed token's source; the event unchanged since 81bb51b)
# src/contracts/facilitators/aave/tokens/interfaces/IGhoVariableDebtToken.sol.
AAVE_V3_GHO_VARIABLE_DEBT_TOKEN: tuple[str, ...] = (
    "DiscountPercentUpdated(address indexed user, uint256 oldDiscountPercent, uint256 indexed newDiscountPercent)",
)

# Stable debt token proxies (v3.0-v3.1; the token was removed in v3.2).
# aave/aave-v3-core @ 782f51917056a53a2c228701058a6c3fb233684a
# contracts/interfaces/IStableDebtToken.sol (same in aave-v3-origin v3.1.0).
AAVE_V3_STABLE_DEBT_TOKEN: tuple[str, ...] = (
    "Mint(address indexed user, address indexed onBehalfOf, uint256 amount, uint256 currentBalance, uint256 balanceIncrease, uint256 newRate, uint256 avgStableRate, uint256 newTotalSupply)",
    "Burn(address indexed from, uint256 amount, uint256 currentBalance, uint256 balanceIncrease, uint256 avgStableRate, uint256 newTotalSupply)",
)

# ---------------------------------------------------------------------------------------------
# Aave v2
# ---------------------------------------------------------------------------------------------

# LendingPool proxy (Ethereum 0x7d2768dE32b0b80b7a3454c06BdAc94A69DDc7A9). LiquidationCall is
# declared in the collateral manager too (with parameter names collateral/principal) but is
# logged by the pool proxy through delegatecall; the names below are ILendingPool's.
# aave/protocol-v2 @ ce53c4a8c8620125063168620eba0a8a92854eb8
# contracts/interfaces/ILendingPool.sol (identical at tag 1.0.1 and in @aave/protocol-v2 1.0.1).
# borrowRateMode / rateMode are uint256 in v2 (not an enum).
AAVE_V2_POOL: tuple[str, ...] = (
    "Deposit(address indexed reserve, address user, address indexed onBehalfOf, uint256 amount, uint16 indexed referral)",
    "Withdraw(address indexed reserve, address indexed user, address indexed to, uint256 amount)",
    "Borrow(address indexed reserve, address user, address indexed onBehalfOf, uint256 amount, uint256 borrowRateMode, uint256 borrowRate, uint16 indexed referral)",
    "Repay(address indexed reserve, address indexed user, address indexed repayer, uint256 amount)",
    "Swap(address indexed reserve, address indexed user, uint256 rateMode)",
    "ReserveUsedAsCollateralEnabled(address indexed reserve, address indexed user)",
    "ReserveUsedAsCollateralDisabled(address indexed reserve, address indexed user)",
    "RebalanceStableBorrowRate(address indexed reserve, address indexed user)",
    "FlashLoan(address indexed target, address indexed initiator, address indexed asset, uint256 amount, uint256 premium, uint16 referralCode)",
    "LiquidationCall(address indexed collateralAsset, address indexed debtAsset, address indexed user, uint256 debtToCover, uint256 liquidatedCollateralAmount, address liquidator, bool receiveAToken)",
    "ReserveDataUpdated(address indexed reserve, uint256 liquidityRate, uint256 stableBorrowRate, uint256 variableBorrowRate, uint256 liquidityIndex, uint256 variableBorrowIndex)",
    "Paused()",
    "Unpaused()",
)

# LendingPoolConfigurator proxy (Ethereum 0x311Bb771e4F8952E6Da169b425E7e92d6Ac45756).
# aave/protocol-v2 @ ce53c4a8c8620125063168620eba0a8a92854eb8
# contracts/interfaces/ILendingPoolConfigurator.sol (same declarations at tag 1.0.1, where they
# sit in LendingPoolConfigurator.sol's artifact). The last five are not in protocol-rules.md.
AAVE_V2_CONFIGURATOR: tuple[str, ...] = (
    "ReserveInitialized(address indexed asset, address indexed aToken, address stableDebtToken, address variableDebtToken, address interestRateStrategyAddress)",
    "CollateralConfigurationChanged(address indexed asset, uint256 ltv, uint256 liquidationThreshold, uint256 liquidationBonus)",
    "BorrowingEnabledOnReserve(address indexed asset, bool stableRateEnabled)",
    "BorrowingDisabledOnReserve(address indexed asset)",
    "ReserveActivated(address indexed asset)",
    "ReserveDeactivated(address indexed asset)",
    "ReserveFrozen(address indexed asset)",
    "ReserveUnfrozen(address indexed asset)",
    "ReserveFactorChanged(address indexed asset, uint256 factor)",
    "ReserveDecimalsChanged(address indexed asset, uint256 decimals)",
    "ReserveInterestRateStrategyChanged(address indexed asset, address strategy)",
    "StableRateEnabledOnReserve(address indexed asset)",
    "StableRateDisabledOnReserve(address indexed asset)",
    "ATokenUpgraded(address indexed asset, address indexed proxy, address indexed implementation)",
    "StableDebtTokenUpgraded(address indexed asset, address indexed proxy, address indexed implementation)",
    "VariableDebtTokenUpgraded(address indexed asset, address indexed proxy, address indexed implementation)",
)

# AaveOracle (Ethereum main market 0xA50ba011c48153De246E5192C8f9258A2ba79Ca9, prices in ETH).
# aave/protocol-v2 @ tag 1.0.1 (7e39178e8f638a85b7bde39a143ab394f6ed0e21) contracts/misc/AaveOracle.sol
# (= @aave/protocol-v2 1.0.1): WethSet, AssetSourceUpdated, FallbackOracleUpdated.
# BaseCurrencySet: the later AaveOracle at ce53c4a8c8620125063168620eba0a8a92854eb8 (replaced
# WethSet in commit 0e7bc49a, 2021-07), used by v2 markets deployed after that; the Ethereum
# main market's oracle is the WethSet version.
AAVE_V2_ORACLE: tuple[str, ...] = (
    "WethSet(address indexed weth)",
    "AssetSourceUpdated(address indexed asset, address indexed source)",
    "FallbackOracleUpdated(address indexed fallbackOracle)",
    "BaseCurrencySet(address indexed baseCurrency, uint256 baseCurrencyUnit)",
)

# LendingPoolAddressesProvider (Ethereum 0xB53C1a33016B2DC2fF3653530bfF1848a515c8c5).
# aave/protocol-v2 @ ce53c4a8c8620125063168620eba0a8a92854eb8
# contracts/interfaces/ILendingPoolAddressesProvider.sol (same at tag 1.0.1).
AAVE_V2_ADDRESSES_PROVIDER: tuple[str, ...] = (
    "PriceOracleUpdated(address indexed newAddress)",
    "LendingPoolCollateralManagerUpdated(address indexed newAddress)",
    "LendingPoolUpdated(address indexed newAddress)",
    "LendingPoolConfiguratorUpdated(address indexed newAddress)",
)

# aToken proxies. aave/protocol-v2 @ ce53c4a8c8620125063168620eba0a8a92854eb8
# contracts/interfaces/IAToken.sol (same at tag 1.0.1).
AAVE_V2_ATOKEN: tuple[str, ...] = (
    "Mint(address indexed from, uint256 value, uint256 index)",
    "Burn(address indexed from, address indexed target, uint256 value, uint256 index)",
    "BalanceTransfer(address indexed from, address indexed to, uint256 value, uint256 index)",
)

# Variable debt token proxies. aave/protocol-v2 @ ce53c4a8c8620125063168620eba0a8a92854eb8
# contracts/interfaces/IVariableDebtToken.sol (same at tag 1.0.1).
AAVE_V2_VARIABLE_DEBT_TOKEN: tuple[str, ...] = (
    "Mint(address indexed from, address indexed onBehalfOf, uint256 value, uint256 index)",
    "Burn(address indexed user, uint256 amount, uint256 index)",
)

# Stable debt token proxies. aave/protocol-v2 @ ce53c4a8c8620125063168620eba0a8a92854eb8
# contracts/interfaces/IStableDebtToken.sol (same at tag 1.0.1). Note Burn's indexed parameter
# is named `user` here but `from` in v3; the signature and topic0 are the same.
AAVE_V2_STABLE_DEBT_TOKEN: tuple[str, ...] = (
    "Mint(address indexed user, address indexed onBehalfOf, uint256 amount, uint256 currentBalance, uint256 balanceIncrease, uint256 newRate, uint256 avgStableRate, uint256 newTotalSupply)",
    "Burn(address indexed user, uint256 amount, uint256 currentBalance, uint256 balanceIncrease, uint256 avgStableRate, uint256 newTotalSupply)",
)

# ---------------------------------------------------------------------------------------------
# Shared
# ---------------------------------------------------------------------------------------------

# Upgradeable proxies (Aave v2/v3 pool, configurator, addresses-provider-created and token
# proxies). aave/aave-v3-core @ 782f51917056a53a2c228701058a6c3fb233684a
# contracts/dependencies/openzeppelin/upgradeability/BaseUpgradeabilityProxy.sol (same file in
# aave/protocol-v2 @ ce53c4a8c8620125063168620eba0a8a92854eb8).
PROXY: tuple[str, ...] = ("Upgraded(address indexed implementation)",)

# Chainlink aggregators (log on the aggregator, not on the EACAggregatorProxy).
# AnswerUpdated, NewRound: smartcontractkit/chainlink @ 11b8439b32160eaeab966606f6f2221028f305f6
# contracts/src/v0.6/interfaces/AggregatorInterface.sol (same in smartcontractkit/libocr
# contract/AggregatorInterface.sol). NewTransmission (OCR1): smartcontractkit/libocr
# @ 0a5e2f907ddaf3c5cd787dc93d95683cde628bdd contract/OffchainAggregator.sol. NewTransmission
# (OCR2): same commit, contract2/OCR2Aggregator.sol.
CHAINLINK_AGGREGATOR: tuple[str, ...] = (
    "AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt)",
    "NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt)",
    "NewTransmission(uint32 indexed aggregatorRoundId, int192 answer, address transmitter, int192[] observations, bytes observers, bytes32 rawReportContext)",  # OCR1
    "NewTransmission(uint32 indexed aggregatorRoundId, int192 answer, address transmitter, uint32 observationsTimestamp, int192[] observations, bytes observers, int192 juelsPerFeeCoin, bytes32 configDigest, uint40 epochAndRound)",  # OCR2
)

#: Every group by name, in the order above.
GROUPS: dict[str, tuple[str, ...]] = {
    "AAVE_V3_POOL": AAVE_V3_POOL,
    "AAVE_V3_CONFIGURATOR": AAVE_V3_CONFIGURATOR,
    "AAVE_V3_ORACLE": AAVE_V3_ORACLE,
    "AAVE_V3_ADDRESSES_PROVIDER": AAVE_V3_ADDRESSES_PROVIDER,
    "AAVE_V3_SCALED_TOKEN": AAVE_V3_SCALED_TOKEN,
    "AAVE_V3_ATOKEN": AAVE_V3_ATOKEN,
    "AAVE_V3_STABLE_DEBT_TOKEN": AAVE_V3_STABLE_DEBT_TOKEN,
    "AAVE_V3_DEBT_TOKEN": AAVE_V3_DEBT_TOKEN,
    "AAVE_V3_GHO_VARIABLE_DEBT_TOKEN": AAVE_V3_GHO_VARIABLE_DEBT_TOKEN,
    "AAVE_V2_POOL": AAVE_V2_POOL,
    "AAVE_V2_CONFIGURATOR": AAVE_V2_CONFIGURATOR,
    "AAVE_V2_ORACLE": AAVE_V2_ORACLE,
    "AAVE_V2_ADDRESSES_PROVIDER": AAVE_V2_ADDRESSES_PROVIDER,
    "AAVE_V2_ATOKEN": AAVE_V2_ATOKEN,
    "AAVE_V2_VARIABLE_DEBT_TOKEN": AAVE_V2_VARIABLE_DEBT_TOKEN,
    "AAVE_V2_STABLE_DEBT_TOKEN": AAVE_V2_STABLE_DEBT_TOKEN,
    "PROXY": PROXY,
    "CHAINLINK_AGGREGATOR": CHAINLINK_AGGREGATOR,
}
