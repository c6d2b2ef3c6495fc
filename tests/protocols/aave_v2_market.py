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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

from ingest.devchain import Contract, DevChain, DevChainError, TxReverted, abi_type, decode_revert
from ingest.devnet import repo_root
from tests.protocols.aave_v3_market import (
    MAX_UINT256,
    AaveMarketDriver,
    Balances,
    DecodedEvent,
    TxResult,
    linked_bytecode,
)

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
    index: dict[str, list[Path]] = {}
    for p in sorted(root.rglob("*.json")):
        if not p.name.endswith(".dbg.json") and p.parent.name != "build-info":
            index.setdefault(p.stem, []).append(p)
    return index


def _artifact_path(name: str) -> Path:
    if ":" in name:
        source, short = name.rsplit(":", 1)
        paths = [p for p in _artifact_index().get(short, []) if str(p.parent).endswith(source)]
    else:
        paths = _artifact_index().get(name, [])
    if len(paths) != 1:
        raise DevChainError(f"@aave/protocol-v2: {'no' if not paths else 'ambiguous'} artifact {name!r}")
    return paths[0]


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
class Reserve:
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

    @property
    def address(self) -> str:
        return self.token.address

    @property
    def symbol(self) -> str:
        return self.spec.symbol

    @property
    def unit(self) -> int:
        return int(10**self.spec.decimals)


def decode_reserve_configuration(data: int) -> dict[str, int | bool]:
    """The fields of a v2 ``ReserveConfigurationMap`` word (DataTypes.sol)."""
    def bits(start: int, width: int) -> int:
        return (data >> start) & ((1 << width) - 1)
    return {
        "ltv": bits(0, 16), "liquidation_threshold": bits(16, 16), "liquidation_bonus": bits(32, 16),
        "decimals": bits(48, 8), "active": bool(bits(56, 1)), "frozen": bool(bits(57, 1)),
        "borrowing": bool(bits(58, 1)), "stable_borrowing": bool(bits(59, 1)),
        "reserve_factor": bits(64, 16),
    }


def decode_user_configuration(data: int, reserves_count: int) -> dict[int, tuple[bool, bool]]:
    """Reserve id -> (borrowing, using as collateral) of a v2 ``UserConfigurationMap`` word
    (bit 2*id: borrowing, bit 2*id+1: collateral)."""
    return {i: (bool(data >> (2 * i) & 1), bool(data >> (2 * i + 1) & 1)) for i in range(reserves_count)}


# ----- the market -----

def _contract(name: str, address: str) -> Contract:
    return Contract(address=address.lower(), abi=aave_v2_artifact(name)["abi"], name=name)


class AaveV2Market(AaveMarketDriver):
    """A deployed Aave v2 market (npm 1.0.1); build with :meth:`deploy`. See the module docstring."""

    _reserve_type = Reserve
    _user_seed = _USER_SEED

    def __init__(self, chain: DevChain, admin: str):
        self.chain = chain
        self.admin = admin.lower()
        self.treasury = TREASURY
        self.libraries: dict[str, str] = {}
        self.reserves: dict[str, Reserve] = {}
        self.weth: Reserve | None = None
        self._by_address: dict[str, Reserve] = {}
        self._abi_at: dict[str, Contract] = {}
        self._approved: set[tuple[str, str]] = set()
        self._users = 0
        # Fixed gas limit of every pool/configurator transaction (see AaveV3Market.gas: anvil
        # estimates on a pending block whose timestamp may differ from the mined one). Reverting
        # transactions are mined with status 0 and their reason is traced.
        self.gas = 5_000_000
        # set by deploy()
        self.provider: Contract
        self.pool: Contract
        self.pool_impl: Contract
        self.configurator: Contract
        self.configurator_impl: Contract
        self.collateral_manager: Contract
        self.oracle: Contract
        self.rate_oracle: Contract
        self.data_provider: Contract

    # -- deployment --

    def _deploy(self, name: str, *args: Any) -> Contract:
        """Deploy the npm artifact ``name`` (libraries linked) from the admin."""
        art = aave_v2_artifact(name)
        code = linked_bytecode(art, self.libraries)
        ctor: dict[str, Any] = next(
            (e for e in art["abi"] if e.get("type") == "constructor"), {"inputs": []})
        types = [abi_type(p) for p in ctor["inputs"]]
        if len(types) != len(args):
            raise DevChainError(f"{name} constructor takes {len(types)} arguments, got {len(args)}")
        tx = self.chain.tx_request(None, code + abi_encode(types, list(args)), sender=self.admin)
        receipt = self._receipt(str(self.chain.rpc("eth_sendTransaction", [tx])))
        if int(receipt["status"], 16) != 1 or not receipt.get("contractAddress"):
            raise DevChainError(f"deploy {name} failed: {receipt}")
        c = Contract(address=str(receipt["contractAddress"]).lower(), abi=art["abi"], name=name)
        self._abi_at[c.address] = c
        return c

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
        if block_interval is not None:
            chain.rpc("anvil_setBlockTimestampInterval", [block_interval])
        m = cls(chain, admin or chain.default_sender)
        a = m.admin
        m.provider = m._deploy("LendingPoolAddressesProvider", market_id)
        m._admin_send(m.provider, "setPoolAdmin", a)
        m._admin_send(m.provider, "setEmergencyAdmin", a)

        for lib in _LIBRARIES:
            m.libraries[lib] = m._deploy(lib).address

        m.pool_impl = m._deploy("LendingPool")
        m._admin_send(m.provider, "setLendingPoolImpl", m.pool_impl.address)
        m.pool = _contract("LendingPool", str(m.chain.call(m.provider, "getLendingPool")[0]))
        m.configurator_impl = m._deploy("LendingPoolConfigurator")
        m._admin_send(m.provider, "setLendingPoolConfiguratorImpl", m.configurator_impl.address)
        m.configurator = _contract("LendingPoolConfigurator",
                                   str(m.chain.call(m.provider, "getLendingPoolConfigurator")[0]))
        m.collateral_manager = m._deploy("LendingPoolCollateralManager")
        m._admin_send(m.provider, "setLendingPoolCollateralManager", m.collateral_manager.address)
        m._abi_at[m.pool.address] = m.pool
        m._abi_at[m.configurator.address] = m.configurator

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
                agg = m._deploy_test("TestOCRAggregator", 1, 2**191 - 1, 18, f"{spec.symbol} / ETH")
                feed = m._deploy_test("TestAggregatorProxy", agg.address)
                m.chain.send(agg, "transmit", [spec.price], sender=a)
            strategy = m._deploy("DefaultReserveInterestRateStrategy", m.provider.address,
                                 *spec.rates.args())
            r = Reserve(spec=spec, token=token, strategy=strategy, aggregator=agg, feed=feed)
            m.reserves[spec.symbol] = r
            m._by_address[token.address] = r
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
            r.a_token = _contract("AToken", data[7])
            r.stable_debt = _contract("StableDebtToken", data[8])
            r.variable_debt = _contract("VariableDebtToken", data[9])
            r.id = int(data[11])
            for c in (r.a_token, r.stable_debt, r.variable_debt):
                m._abi_at[c.address] = c
            if s.liquidation_threshold:
                m.configure("configureReserveAsCollateral", asset, s.ltv, s.liquidation_threshold,
                            s.liquidation_bonus)
            if s.borrowing:
                m.configure("enableBorrowingOnReserve", asset, s.stable_borrowing)
            if s.reserve_factor:
                m.configure("setReserveFactor", asset, s.reserve_factor)
        return m

    # -- lookups --

    # -- users and tokens --

    def mint(self, user: str, asset: str | Reserve, amount: int) -> None:
        """``MintableERC20.mint(amount)`` sent by ``user`` (this mock mints to the caller)."""
        self.chain.send(self.reserve(asset).token, "mint", amount, sender=user)

    # -- transactions --

    def _tx(self, sender: str, contract: Contract, fn: str, *args: Any, check: bool = True) -> TxResult:
        """Send with a fixed gas limit and wait for the receipt; a revert's data comes from
        ``debug_traceTransaction`` of the mined transaction."""
        tx = self.chain.tx_request(contract, fn, *args, sender=sender, gas=self.gas)
        tx_hash = str(self.chain.rpc("eth_sendTransaction", [tx]))
        receipt = self._receipt(tx_hash)
        if int(receipt["status"], 16) == 1:
            return TxResult(tx_hash, receipt, self.decode_logs(receipt.get("logs", [])))
        trace = self.chain.rpc("debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}]) or {}
        out = str(trace.get("output") or "0x")
        data = bytes.fromhex(out[2:])
        reason = decode_revert(data) or trace.get("revertReason") or trace.get("error")
        if check:
            raise TxReverted(f"{contract.name}.{fn} reverted in tx {tx_hash}: {reason}", reason, data)
        return TxResult(tx_hash, receipt, [], reason=reason, revert_data=data)

    def configure(self, fn: str, *args: Any, check: bool = True) -> TxResult:
        """``LendingPoolConfigurator.fn(*args)`` from the admin (pool and emergency admin)."""
        return self._tx(self.admin, self.configurator, fn, *args, check=check)

    def deposit(self, user: str, asset: str | Reserve, amount: int, *, on_behalf_of: str | None = None,
                fund: bool = False, check: bool = True) -> TxResult:
        """``LendingPool.deposit``; ``fund=True`` mints the amount first; the pool is approved once.
        A first deposit enables the reserve as collateral."""
        if fund:
            self.mint(user, asset, amount)
        self.ensure_approved(user, asset)
        return self._tx(user, self.pool, "deposit", self.asset(asset), amount, on_behalf_of or user, 0,
                        check=check)

    supply = deposit  # the v3 name, for code that drives both markets

    def borrow(self, user: str, asset: str | Reserve, amount: int, mode: int = 2, *,
               on_behalf_of: str | None = None, check: bool = True) -> TxResult:
        """``LendingPool.borrow`` (mode 2 variable, 1 stable)."""
        return self._tx(user, self.pool, "borrow", self.asset(asset), amount, mode, 0,
                        on_behalf_of or user, check=check)

    def repay(self, user: str, asset: str | Reserve, amount: int, mode: int = 2, *,
              on_behalf_of: str | None = None, check: bool = True) -> TxResult:
        """``LendingPool.repay`` (``MAX_UINT256`` = all of the caller's own debt of that mode);
        approves the pool for the payer first if needed."""
        self.ensure_approved(user, asset)
        return self._tx(user, self.pool, "repay", self.asset(asset), amount, mode, on_behalf_of or user,
                        check=check)

    def withdraw(self, user: str, asset: str | Reserve, amount: int, *, to: str | None = None,
                 check: bool = True) -> TxResult:
        """``LendingPool.withdraw`` (``MAX_UINT256`` = whole balance)."""
        return self._tx(user, self.pool, "withdraw", self.asset(asset), amount, to or user, check=check)

    def set_collateral(self, user: str, asset: str | Reserve, enabled: bool, *,
                       check: bool = True) -> TxResult:
        """``LendingPool.setUserUseReserveAsCollateral``."""
        return self._tx(user, self.pool, "setUserUseReserveAsCollateral", self.asset(asset), enabled,
                        check=check)

    def liquidate(self, liquidator: str, collateral: str | Reserve, debt: str | Reserve, user: str,
                  debt_to_cover: int, receive_atoken: bool = False, *, fund: bool = False,
                  check: bool = False) -> TxResult:
        """``LendingPool.liquidationCall`` (delegatecalls the collateral manager). Unlike the other
        actions a revert does **not** raise by default: the result carries ``reason``, the
        manager's error code string (``'42'`` healthy, ``'43'``, ``'44'``, ``'45'``...).
        ``fund=True`` mints ``debt_to_cover`` of the debt asset to the liquidator; the pool is
        approved for the liquidator's debt asset in any case."""
        if fund:
            self.fund(liquidator, debt, debt_to_cover)
        self.ensure_approved(liquidator, debt)
        return self._tx(liquidator, self.pool, "liquidationCall", self.asset(collateral),
                        self.asset(debt), user, debt_to_cover, receive_atoken, check=check)

    def set_price(self, asset: str | Reserve, price: int, observations: Iterable[int] | None = None) -> str:
        """Transmit a new answer (ETH wei per whole token, 18 decimals) to the asset's aggregator
        (``observations``: the whole report, whose median becomes the answer). Returns the tx hash.
        The oracle's WETH has no feed (always 1e18): raises for it."""
        r = self.reserve(asset)
        if r.aggregator is None:
            raise DevChainError(f"{r.symbol} is priced 1e18 by the AaveOracle (WETH): no feed to move")
        obs = list(observations) if observations is not None else [price]
        return self.chain.send(r.aggregator, "transmit", obs, sender=self.admin)

    def set_market_borrow_rate(self, asset: str | Reserve, rate: int) -> str:
        """``LendingRateOracle.setMarketBorrowRate`` (RAY): the base of new stable rates."""
        return self._admin_send(self.rate_oracle, "setMarketBorrowRate", self.asset(asset), rate)

    def advance_time(self, seconds: int, blocks: int = 1) -> int:
        """Mine a block ``seconds`` after the latest one (``evm_setNextBlockTimestamp``), then
        ``blocks - 1`` more; returns the new head's timestamp."""
        ts = int(self.chain.block()["timestamp"], 16) + seconds
        self.chain.set_next_timestamp(ts)
        self.chain.mine(blocks)
        return int(self.chain.block()["timestamp"], 16)

    # -- reads --

    def get_user_account_data(self, user: str, block: int | str = "latest") -> AccountData:
        return AccountData(*self.chain.call(self.pool, "getUserAccountData", user, block=block))

    def user_configuration(self, user: str, block: int | str = "latest") -> dict[str, tuple[bool, bool]]:
        """Symbol -> (borrowing, using as collateral) from ``getUserConfiguration``."""
        word = int(self.chain.call(self.pool, "getUserConfiguration", user, block=block)[0][0])
        flags = decode_user_configuration(word, len(self.reserves))
        return {s: flags[r.id] for s, r in self.reserves.items()}

    def price(self, asset: str | Reserve, block: int | str = "latest") -> int:
        """``AaveOracle.getAssetPrice`` (ETH wei per whole token)."""
        return int(self.chain.call(self.oracle, "getAssetPrice", self.asset(asset), block=block)[0])

    def reserve_data(self, asset: str | Reserve, block: int | str = "latest") -> dict[str, Any]:
        """``LendingPool.getReserveData`` keyed by the ABI names (``configuration`` decoded with
        :func:`decode_reserve_configuration`)."""
        entry = self.pool.function("getReserveData")
        values = self.chain.call(self.pool, "getReserveData", self.asset(asset), block=block)[0]
        out = {c["name"]: v for c, v in zip(entry["outputs"][0]["components"], values, strict=True)}
        out["configuration"] = decode_reserve_configuration(int(out["configuration"][0]))
        return out

    def stable_debt_position(self, user: str, asset: str | Reserve,
                             block: int | str = "latest") -> tuple[int, int, int]:
        """(principal, stable rate in RAY, last update timestamp) of the user's stable debt."""
        c = self.reserve(asset).stable_debt
        return (self._balance(c, "principalBalanceOf", user, block),
                self._balance(c, "getUserStableRate", user, block),
                self._balance(c, "getUserLastUpdated", user, block))

    # -- logs --

    def decode_logs(self, logs: Iterable[dict[str, Any]]) -> list[DecodedEvent]:
        """Decode raw logs of the market's contracts (pool, incl. the delegatecalled collateral
        manager's LiquidationCall, configurator, tokens, feeds...); unknown ones are skipped."""
        out: list[DecodedEvent] = []
        for log in logs:
            c = self._abi_at.get(str(log["address"]).lower())
            if c is None or not log.get("topics"):
                continue
            try:
                name, args = c.decode_log(log)
            except DevChainError:
                continue
            out.append(DecodedEvent(str(log["address"]).lower(), name, args, int(log["logIndex"], 16)))
        return out

    # -- chain state --

    def revert(self, snap: str) -> None:
        """``evm_revert`` (a snapshot id is good for one revert). Forgets which approvals were
        made, since some may have been undone."""
        self.chain.revert(snap)
        self._approved.clear()
