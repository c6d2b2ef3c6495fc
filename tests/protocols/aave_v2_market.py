"""A real Aave v2 market on anvil, deployed from the npm artifacts, and a Python driver for it.

The contracts are the **compiled bytecode shipped in** ``node_modules/@aave/protocol-v2/artifacts``
(nothing of Aave is recompiled). LendingPool references the external libraries ReserveLogic and
ValidationLogic, and ValidationLogic itself references GenericLogic; the libraries are deployed
first and their addresses patched into the creation bytecode at the byte offsets of the
artifact's ``linkReferences`` (placeholders checked before they are overwritten, see
:func:`tests.protocols.aave_v3_market.linked_bytecode`). LendingPoolConfigurator and
LendingPoolCollateralManager use GenericLogic/ValidationLogic only through internal functions
(inlined, no link references).

Version of the artifacts
------------------------
* npm ``@aave/protocol-v2`` **1.0.1** = ``aave/protocol-v2`` commit
  ``9169e0db62dbfe8122de848ae0c295ac7f683af9`` (2021-01-26, "Add notes about how to use NPM package
  to import contract or artifacts", the commit that set ``"version": "1.0.1"``): the package's
  ``package.json`` and ``README.md`` are identical to that commit's, and its ``contracts/`` tree
  is the same git tree (``80e78437…``) as there (and as the following CI-only commit
  ``b2d70ec1``); the sources embedded in the hardhat build-info files (100 files) are
  byte-identical to ``contracts/``. It is **not** the later git tag ``1.0.1`` (``7e39178e``,
  2021-03-05): ``batchInitReserve``/``InitReserveInput`` and the initializable (constructor-less)
  tokens came in ``80fd0957`` (2021-01-28), after this commit, so this ABI has neither.
* Protocol: the original Aave v2 LendingPool (``LENDINGPOOL_REVISION = 2``,
  ``CONFIGURATOR_REVISION = ATOKEN_REVISION = DEBT_TOKEN_REVISION = 1``). Tokens are configured
  through their **constructors** (pool, underlying, treasury and incentives controller are
  immutables, so there is one AToken/StableDebtToken/VariableDebtToken implementation per
  reserve) and listed with ``LendingPoolConfigurator.initReserve(aTokenImpl, stableDebtImpl,
  variableDebtImpl, decimals, strategy)``, which reads the underlying from the aToken, creates
  the three proxies and initializes them with the decimals and the implementations' name/symbol.
  The rate strategy has 6 parameters (no stable-rate offsets); the base stable rate comes from
  the LendingRateOracle (``getMarketBorrowRate``).
* Liquidation code (LendingPoolCollateralManager, GenericLogic, ValidationLogic, the math
  libraries) differs from ``ce53c4a`` (the commit ``docs/protocol-rules.md`` §1 cites) only in
  whitespace: 50 % close factor, whole bonus to the liquidator (no protocol fee), no write-off.
  The manager is delegatecalled by ``LendingPool.liquidationCall`` and *returns* an error code;
  the pool turns a non-zero code into ``revert(message)``, so the revert reason is the
  ``Errors`` string, e.g. ``'42'`` LPCM_HEALTH_FACTOR_NOT_BELOW_THRESHOLD, ``'43'`` collateral
  cannot be liquidated, ``'44'`` currency not borrowed, ``'45'`` not enough liquidity.
* Compiled by Aave with solc 0.6.12+commit.27d51765, optimizer 200 runs, evmVersion istanbul
  (``artifacts/build-info``; all protocol contracts are in the one 19.5 MB build-info). Runs
  unchanged on anvil 1.7.1's default hardfork.

What :meth:`AaveV2Market.deploy` builds (all from ``chain.accounts[0]``, the *admin*)
-----------------------------------------------------------------------------------
1. ``LendingPoolAddressesProvider(marketId)`` (owner: admin); ``setPoolAdmin`` and
   ``setEmergencyAdmin`` (admin).
2. Libraries ReserveLogic, GenericLogic, ValidationLogic (linked to GenericLogic).
3. ``LendingPool`` implementation (linked); ``provider.setLendingPoolImpl`` (the provider creates an
   ``InitializableImmutableAdminUpgradeabilityProxy`` and calls ``initialize(provider)``);
   ``LendingPoolConfigurator`` implementation, ``provider.setLendingPoolConfiguratorImpl``;
   ``LendingPoolCollateralManager``, ``provider.setLendingPoolCollateralManager`` (a plain address:
   it is delegatecalled, not proxied).
4. Per asset a ``MintableERC20`` (the package's mock: ``mint(uint256)`` mints to the caller) and,
   except for WETH, a Chainlink-style feed quoting **in ETH with 18 decimals**:
   ``TestOCRAggregator`` behind a ``TestAggregatorProxy`` (``tests/contracts/chainlink``), price set
   with ``transmit([price])``. ``AaveOracle(assets, sources, fallbackOracle=0, weth)``: this
   version's constructor takes the WETH address and ``getAssetPrice(WETH)`` returns 1 ether
   unconditionally (so WETH has no feed and its price cannot move); other assets read the
   source's ``latestAnswer()`` (a non-positive answer would go to the fallback oracle, here none,
   so it reverts). ``provider.setPriceOracle``.
5. ``LendingRateOracle`` (mock, owner admin), ``setMarketBorrowRate`` per asset,
   ``provider.setLendingRateOracle``. ``AaveProtocolDataProvider(provider)`` (not registered in the
   provider: v2's has no dedicated slot for it).
6. Per reserve a ``DefaultReserveInterestRateStrategy(provider, optimal, base, vSlope1, vSlope2,
   sSlope1, sSlope2)`` and an ``AToken(pool, asset, treasury, name, symbol, incentives=0)``,
   ``StableDebtToken(pool, asset, name, symbol, 0)``, ``VariableDebtToken(...)``;
   ``configurator.initReserve`` (one per reserve), then ``configureReserveAsCollateral``,
   ``enableBorrowingOnReserve(asset, stableRateEnabled)`` and ``setReserveFactor``.

The default market (:data:`DEFAULT_RESERVES`, mainnet-like launch parameters and ETH/USD 2000):
WETH (18 dec, 1 ETH), WBTC (8, 15 ETH), USDC (6, 0.0005 ETH), DAI (18, 0.000502 ETH); stable
borrowing on everywhere. Treasury (``RESERVE_TREASURY_ADDRESS`` of the aTokens) is
:data:`TREASURY`, an address with no key; no incentives controller.

Amounts are raw integer token units; prices are ETH wei per whole token; percentages are bps;
rates are RAY. Transactions go through :class:`ingest.devchain.DevChain` (``eth_sendTransaction``
from unlocked/impersonated accounts; automine must be on). Pool and configurator calls use a fixed
gas limit (:attr:`AaveV2Market.gas`), so a reverting one is mined with status 0 and its reason is
read back with ``debug_traceTransaction`` (see :class:`~tests.protocols.aave_v3_market.TxResult`).
Reads take ``block=`` (number or tag). For reproducible amounts deploy with ``block_interval=`` on
an ``Anvil(timestamp=...)`` and move time with :meth:`AaveV2Market.advance_time`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from eth_hash.auto import keccak

from ingest.aave_devmarket import (
    MAX_UINT256,
    AaveMarketDriver,
    Balances,
    DecodedEvent,
    ReserveLookups,
    TxResult,
    decode_common_configuration,
    find_artifact,
    index_artifacts,
    linked_bytecode,
)
from ingest.devchain import Contract, DevChain, DevChainError
from ingest.devnet import repo_root

__all__ = [
    "AAVE_V2_COMMIT",
    "AAVE_V2_NPM_VERSION",
    "DEFAULT_RESERVES",
    "MAX_UINT256",
    "TREASURY",
    "AaveV2Market",
    "AccountData",
    "Balances",
    "DecodedEvent",
    "RateStrategy",
    "Reserve",
    "ReserveSpec",
    "TxResult",
    "aave_v2_artifact",
    "aave_v2_immutable_references",
    "decode_reserve_configuration",
    "decode_user_configuration",
    "linked_bytecode",
    "protocol_v2_dir",
]

AAVE_V2_NPM_VERSION = "1.0.1"
AAVE_V2_COMMIT = "9169e0db62dbfe8122de848ae0c295ac7f683af9"  # aave/protocol-v2, "version": "1.0.1"

RAY = 10**27
WAD = 10**18
ZERO_ADDRESS = "0x" + "00" * 20
TREASURY = "0x" + keccak(b"deficit/tests/aave-v2/treasury").hex()[-40:]
_USER_SEED = b"deficit/tests/aave-v2/user/"

# deploy order: ValidationLogic links GenericLogic; LendingPool links ReserveLogic + ValidationLogic
_LIBRARIES = ("ReserveLogic", "GenericLogic", "ValidationLogic")


# ----- artifacts -----

def protocol_v2_dir() -> Path:
    return repo_root() / "node_modules" / "@aave" / "protocol-v2"


@cache
def _artifact_index() -> dict[str, list[Path]]:
    root = protocol_v2_dir() / "artifacts"
    if not (root / "contracts").is_dir():
        raise DevChainError(f"{root} missing: run `npm ci` (needs @aave/protocol-v2 {AAVE_V2_NPM_VERSION})")
    return index_artifacts(root)


def _artifact_path(name: str) -> Path:
    return find_artifact(_artifact_index(), name, "@aave/protocol-v2")


@cache
def aave_v2_artifact(name: str) -> dict[str, Any]:
    """The hardhat artifact of contract ``name`` in ``@aave/protocol-v2`` (``abi``, ``bytecode``,
    ``linkReferences``, ``sourceName``...); ``"path/File.sol:Name"`` when the name is ambiguous."""
    with open(_artifact_path(name), encoding="utf-8") as f:
        doc: dict[str, Any] = json.load(f)
    return doc


@cache
def _immutable_refs_of_build(build_info: str) -> dict[str, dict[str, list[tuple[int, int]]]]:
    with open(build_info, encoding="utf-8") as f:
        doc = json.load(f)
    def refs(c: dict[str, Any]) -> list[tuple[int, int]]:
        by_id = c["evm"]["deployedBytecode"].get("immutableReferences") or {}
        return sorted((int(r["start"]), int(r["length"])) for rs in by_id.values() for r in rs)
    return {src: {name: refs(c) for name, c in cs.items()} for src, cs in doc["output"]["contracts"].items()}


def aave_v2_immutable_references(name: str) -> list[tuple[int, int]]:
    """(byte offset, length) of every immutable slot in the runtime code of artifact ``name``, from
    the hardhat build-info its ``.dbg.json`` names (the protocol's is 19.5 MB: ~0.3 s, once)."""
    path = _artifact_path(name)
    with open(path.with_suffix(".dbg.json"), encoding="utf-8") as f:
        build_info = (path.parent / json.load(f)["buildInfo"]).resolve()
    art = aave_v2_artifact(name)
    return _immutable_refs_of_build(str(build_info))[art["sourceName"]][art["contractName"]]


# ----- market specification -----

@dataclass(frozen=True)
class RateStrategy:
    """v2 ``DefaultReserveInterestRateStrategy`` constructor parameters (after the provider), RAY."""

    optimal_utilization_rate: int = 8 * RAY // 10
    base_variable_borrow_rate: int = 0
    variable_rate_slope1: int = 4 * RAY // 100
    variable_rate_slope2: int = 75 * RAY // 100
    stable_rate_slope1: int = 2 * RAY // 100
    stable_rate_slope2: int = 75 * RAY // 100

    def args(self) -> tuple[int, ...]:
        return (self.optimal_utilization_rate, self.base_variable_borrow_rate, self.variable_rate_slope1,
                self.variable_rate_slope2, self.stable_rate_slope1, self.stable_rate_slope2)


@dataclass(frozen=True)
class ReserveSpec:
    """One reserve: token, initial price (ETH wei per whole token; the WETH reserve must say
    1e18, the oracle hard-codes it), risk parameters (bps; bonus as 10000 + premium), reserve
    factor, borrowing flags, the LendingRateOracle market borrow rate (RAY, base of the stable
    rate) and the rate strategy."""

    symbol: str
    decimals: int
    price: int
    ltv: int = 0
    liquidation_threshold: int = 0
    liquidation_bonus: int = 0
    reserve_factor: int = 1000
    borrowing: bool = True
    stable_borrowing: bool = True
    market_borrow_rate: int = 3 * RAY // 100
    rates: RateStrategy = field(default_factory=RateStrategy)


DEFAULT_RESERVES: tuple[ReserveSpec, ...] = (
    ReserveSpec("WETH", 18, 10**18, ltv=8000, liquidation_threshold=8250, liquidation_bonus=10500,
                market_borrow_rate=3 * RAY // 100,
                rates=RateStrategy(65 * RAY // 100, 0, 8 * RAY // 100, RAY, 10 * RAY // 100, RAY)),
    ReserveSpec("WBTC", 8, 15 * 10**18, ltv=7000, liquidation_threshold=7500, liquidation_bonus=10650,
                reserve_factor=2000, market_borrow_rate=3 * RAY // 100,
                rates=RateStrategy(45 * RAY // 100, 0, 7 * RAY // 100, 3 * RAY, 10 * RAY // 100, 3 * RAY)),
    ReserveSpec("USDC", 6, 500_000_000_000_000, ltv=8000, liquidation_threshold=8500,
                liquidation_bonus=10500, market_borrow_rate=39 * RAY // 1000,
                rates=RateStrategy(9 * RAY // 10, 0, 4 * RAY // 100, 60 * RAY // 100, 2 * RAY // 100,
                                   60 * RAY // 100)),
    ReserveSpec("DAI", 18, 502_000_000_000_000, ltv=7500, liquidation_threshold=8000,
                liquidation_bonus=10500, market_borrow_rate=39 * RAY // 1000,
                rates=RateStrategy(8 * RAY // 10, 0, 4 * RAY // 100, 75 * RAY // 100, 2 * RAY // 100,
                                   75 * RAY // 100)),
)


# ----- results -----

class AccountData(NamedTuple):
    """``LendingPool.getUserAccountData``: values in ETH wei, bps, HF in WAD."""

    total_collateral_eth: int
    total_debt_eth: int
    available_borrows_eth: int
    current_liquidation_threshold: int
    ltv: int
    health_factor: int


@dataclass
class Reserve(ReserveLookups):
    spec: ReserveSpec
    token: Contract
    strategy: Contract
    aggregator: Contract | None   # TestOCRAggregator: transmit() here (None: the oracle's WETH)
    feed: Contract | None         # TestAggregatorProxy: the AaveOracle source
    a_token_impl: Contract | None = None
    stable_debt_impl: Contract | None = None
    variable_debt_impl: Contract | None = None
    a_token: Contract | None = None          # proxies created by initReserve
    stable_debt: Contract | None = None
    variable_debt: Contract | None = None
    id: int = -1



def decode_reserve_configuration(data: int) -> dict[str, int | bool]:
    """The fields of a v2 ``ReserveConfigurationMap`` word (DataTypes.sol): all of them sit where
    v3 keeps them, so this is the shared decoder (bits 60-63 are reserved in v2)."""
    return decode_common_configuration(data)


def decode_user_configuration(data: int, reserves_count: int) -> dict[int, tuple[bool, bool]]:
    """Reserve id -> (borrowing, using as collateral) of a v2 ``UserConfigurationMap`` word
    (bit 2*id: borrowing, bit 2*id+1: collateral)."""
    return {i: (bool(data >> (2 * i) & 1), bool(data >> (2 * i + 1) & 1)) for i in range(reserves_count)}


# ----- the market -----

class AaveV2Market(AaveMarketDriver[Reserve, AccountData]):
    """A deployed Aave v2 market (npm 1.0.1); build with :meth:`deploy`. See the module docstring.

    Transactions, balance reads and log decoding are the shared :class:`AaveMarketDriver`'s (v2's
    LendingPool has the same entry points as v3's Pool for them); here: the v2 deployment, the
    mock token's ``mint(amount)``, ``deposit`` (v3's ``supply``), the LendingRateOracle and the
    v2 configuration words."""

    _reserve_type = Reserve
    _account_data = AccountData
    _user_seed = _USER_SEED
    _treasury = TREASURY

    def __init__(self, chain: DevChain, admin: str):
        super().__init__(chain, admin)
        self.weth: Reserve | None = None
        # set by deploy()
        self.collateral_manager: Contract
        self.rate_oracle: Contract

    @staticmethod
    def _artifact(name: str) -> dict[str, Any]:
        return aave_v2_artifact(name)

    @staticmethod
    def _decode_configuration(data: int) -> dict[str, int | bool]:
        return decode_reserve_configuration(data)

    # -- deployment --

    @classmethod
    def deploy(cls, chain: DevChain, reserves: Sequence[ReserveSpec] = DEFAULT_RESERVES, *,
               weth: str | None = "WETH", admin: str | None = None,
               market_id: str = "deficit Aave v2 test market",
               block_interval: int | None = None) -> AaveV2Market:
        """Deploy and configure a full market on ``chain`` (see the module docstring).

        ``weth``: symbol of the reserve the AaveOracle treats as WETH (price fixed at 1e18, no
        feed); None = none (every asset gets a feed). ``block_interval``: make every later block
        exactly that many seconds after the previous one (``anvil_setBlockTimestampInterval``), so
        that with a fixed genesis timestamp every amount is reproducible."""
        m = cls._start(chain, admin, block_interval)
        a = m.admin
        m.provider = m._deploy("LendingPoolAddressesProvider", market_id)
        m._admin_send(m.provider, "setPoolAdmin", a)
        m._admin_send(m.provider, "setEmergencyAdmin", a)

        m._deploy_libraries(_LIBRARIES)

        m.pool_impl = m._deploy("LendingPool")
        m._admin_send(m.provider, "setLendingPoolImpl", m.pool_impl.address)
        m.pool = m._provided("LendingPool", "getLendingPool")
        m.configurator_impl = m._deploy("LendingPoolConfigurator")
        m._admin_send(m.provider, "setLendingPoolConfiguratorImpl", m.configurator_impl.address)
        m.configurator = m._provided("LendingPoolConfigurator", "getLendingPoolConfigurator")
        m.collateral_manager = m._deploy("LendingPoolCollateralManager")
        m._admin_send(m.provider, "setLendingPoolCollateralManager", m.collateral_manager.address)

        # tokens and price feeds (ETH-quoted, 18 decimals)
        for spec in reserves:
            if spec.symbol in m.reserves:
                raise DevChainError(f"duplicate reserve {spec.symbol}")
            token = m._deploy("MintableERC20", spec.symbol, spec.symbol, spec.decimals)
            agg = feed = None
            if spec.symbol == weth:
                if spec.price != WAD:
                    raise DevChainError(f"{spec.symbol} is the oracle's WETH: its price is 1e18")
            else:
                agg, feed = m._deploy_feed(spec.symbol, spec.price, 18, "ETH")
            strategy = m._deploy("DefaultReserveInterestRateStrategy", m.provider.address,
                                 *spec.rates.args())
            r = Reserve(spec=spec, token=token, strategy=strategy, aggregator=agg, feed=feed)
            m._add_reserve(r)
            if spec.symbol == weth:
                m.weth = r
        if weth is not None and m.weth is None:
            raise DevChainError(f"no reserve {weth!r} to be the oracle's WETH")

        rs = list(m.reserves.values())
        fed = [r for r in rs if r.feed is not None]
        m.oracle = m._deploy("AaveOracle", [r.address for r in fed], [r.feed.address for r in fed if r.feed],
                             ZERO_ADDRESS, m.weth.address if m.weth else ZERO_ADDRESS)
        m._admin_send(m.provider, "setPriceOracle", m.oracle.address)
        m.rate_oracle = m._deploy("LendingRateOracle")
        for r in rs:
            m._admin_send(m.rate_oracle, "setMarketBorrowRate", r.address, r.spec.market_borrow_rate)
        m._admin_send(m.provider, "setLendingRateOracle", m.rate_oracle.address)
        m.data_provider = m._deploy("AaveProtocolDataProvider", m.provider.address)

        for r in rs:
            s, asset = r.spec, r.address
            r.a_token_impl = m._deploy("AToken", m.pool.address, asset, m.treasury,
                                       f"Aave interest bearing {s.symbol}", f"a{s.symbol}", ZERO_ADDRESS)
            r.stable_debt_impl = m._deploy("StableDebtToken", m.pool.address, asset,
                                           f"Aave stable debt bearing {s.symbol}", f"stableDebt{s.symbol}",
                                           ZERO_ADDRESS)
            r.variable_debt_impl = m._deploy("VariableDebtToken", m.pool.address, asset,
                                             f"Aave variable debt bearing {s.symbol}",
                                             f"variableDebt{s.symbol}", ZERO_ADDRESS)
            m.configure("initReserve", r.a_token_impl.address, r.stable_debt_impl.address,
                        r.variable_debt_impl.address, s.decimals, r.strategy.address)
            data = m.chain.call(m.pool, "getReserveData", asset)[0]
            r.a_token, r.stable_debt, r.variable_debt = m._token_proxies(data, 7)
            r.id = int(data[11])
            if s.liquidation_threshold:
                m.configure("configureReserveAsCollateral", asset, s.ltv, s.liquidation_threshold,
                            s.liquidation_bonus)
            if s.borrowing:
                m.configure("enableBorrowingOnReserve", asset, s.stable_borrowing)
            if s.reserve_factor:
                m.configure("setReserveFactor", asset, s.reserve_factor)
        return m

    # -- users and tokens --

    def mint(self, user: str, asset: str | Reserve, amount: int) -> None:
        """``MintableERC20.mint(amount)`` sent by ``user`` (this mock mints to the caller)."""
        self.chain.send(self.reserve(asset).token, "mint", amount, sender=user)

    # -- transactions --

    def deposit(self, user: str, asset: str | Reserve, amount: int, *, on_behalf_of: str | None = None,
                fund: bool = False, check: bool = True) -> TxResult:
        """``LendingPool.deposit``; ``fund=True`` mints the amount first; the pool is approved once.
        A first deposit enables the reserve as collateral."""
        return self._supply("deposit", user, asset, amount, on_behalf_of, fund, check)

    supply = deposit  # the v3 name, for code that drives both markets

    def set_market_borrow_rate(self, asset: str | Reserve, rate: int) -> str:
        """``LendingRateOracle.setMarketBorrowRate`` (RAY): the base of new stable rates."""
        return self._admin_send(self.rate_oracle, "setMarketBorrowRate", self.asset(asset), rate)

    # -- reads --

    def user_configuration(self, user: str, block: int | str = "latest") -> dict[str, tuple[bool, bool]]:
        """Symbol -> (borrowing, using as collateral) from ``getUserConfiguration``."""
        word = int(self.chain.call(self.pool, "getUserConfiguration", user, block=block)[0][0])
        flags = decode_user_configuration(word, len(self.reserves))
        return {s: flags[r.id] for s, r in self.reserves.items()}

    def stable_debt_position(self, user: str, asset: str | Reserve,
                             block: int | str = "latest") -> tuple[int, int, int]:
        """(principal, stable rate in RAY, last update timestamp) of the user's stable debt."""
        c = self.reserve(asset).stable_debt
        return (self._balance(c, "principalBalanceOf", user, block),
                self._balance(c, "getUserStableRate", user, block),
                self._balance(c, "getUserLastUpdated", user, block))
