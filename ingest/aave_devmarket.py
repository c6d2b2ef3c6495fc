"""A real Aave v3 market on anvil, deployed from the npm artifacts, and a Python driver for it.

Runtime module (it drives anvil over JSON-RPC, so it lives in ``ingest``): the test suite's
differential and rebuild tests use it (``tests/protocols/aave_v3_market.py`` re-exports it), and
so does the bundled sample's builder (:mod:`ingest.sample`), which must run from ``deficit``
itself. Moved unchanged from ``tests/protocols/aave_v3_market.py``; constants keep their names
and values (the treasury and user addresses are still derived from ``deficit/tests/...`` seeds)
so that every chain built before the move is rebuilt identically.

The contracts are the **compiled bytecode shipped in** ``node_modules/@aave/core-v3/artifacts``
(nothing of Aave is recompiled). Pool, PoolConfigurator and FlashLoanLogic reference external
logic libraries; those are deployed first and their addresses patched into the creation bytecode
at the byte offsets of the artifact's ``linkReferences`` (the ``__$<34 hex>$__`` placeholders,
checked to be keccak256 of the library's fully qualified name before they are overwritten).

Version of the artifacts
------------------------
* npm ``@aave/core-v3`` **1.19.3** = git tag ``v1.19.3`` of ``aave/aave-v3-core``, commit
  ``724a9ef43adf139437ba87dcbab63462394d4601`` (2024-03-07, "chore(master): release 1.19.3"):
  ``node_modules/@aave/core-v3/contracts`` is byte-identical to ``contracts/`` at that tag, and
  has no differences in ``contracts/`` to the repository's last commit ``782f519`` (the commit
  ``docs/protocol-rules.md`` §2 cites).
* Protocol version **Aave v3.0.2** (the ``feat/3.0.2`` merge landed in 1.18.0; 1.19.x only
  dropped the 0.09 % flash-loan premium from ``Pool.initialize`` (premiums start at 0), added
  OpenZeppelin SafeERC20/Address and changed pragmas/natspec):
  ``POOL_REVISION = CONFIGURATOR_REVISION = ATOKEN_REVISION = DEBT_TOKEN_REVISION = 1``,
  stable-rate debt exists, e-mode is category-id based with an optional category price source,
  close factor 50 % above HF 0.95 and 100 % at or below, no bad-debt/deficit accounting, revert
  reasons are the numeric ``Errors`` strings (e.g. ``'45'`` HEALTH_FACTOR_NOT_BELOW_THRESHOLD).
* Compiled by Aave with solc 0.8.10+commit.fc410830, optimizer 100000 runs, evmVersion london
  (from ``artifacts/build-info``). It runs unchanged on anvil 1.7.1's default hardfork.

What :meth:`AaveV3Market.deploy` builds (all from ``chain.accounts[0]``, the *admin*)
-----------------------------------------------------------------------------------
1. ``PoolAddressesProvider(marketId, admin)``; ``setACLAdmin(admin)``;
   ``ACLManager(provider)`` (admin gets DEFAULT_ADMIN_ROLE from the provider's ACL admin), then
   ``addPoolAdmin`` / ``addRiskAdmin`` / ``addEmergencyAdmin`` / ``addAssetListingAdmin`` (admin),
   ``provider.setACLManager``.
2. Libraries: SupplyLogic, BorrowLogic, LiquidationLogic, EModeLogic, BridgeLogic, PoolLogic,
   FlashLoanLogic (itself linked to BorrowLogic), ConfiguratorLogic.
3. ``Pool(provider)`` implementation, linked; ``provider.setPoolImpl`` (the provider creates an
   ``InitializableImmutableAdminUpgradeabilityProxy`` and calls ``initialize(provider)``);
   ``PoolConfigurator`` implementation, linked; ``provider.setPoolConfiguratorImpl``.
4. Per asset a ``MintableERC20`` (core-v3 mock: ``mint(address,uint256)`` open to anyone) and a
   Chainlink-style feed: ``TestOCRAggregator`` (8 decimals) behind a ``TestAggregatorProxy``
   (our test contracts in ``tests/contracts/chainlink``); the price is set with
   ``transmit([price])``. ``AaveOracle(provider, assets, proxies, fallback=0, base=0, unit=1e8)``
   (USD, 8 decimals), ``provider.setPriceOracle``. ``AaveProtocolDataProvider(provider)``,
   ``provider.setPoolDataProvider``.
5. AToken / StableDebtToken / VariableDebtToken implementations (constructor arg: the pool
   proxy) and one ``DefaultReserveInterestRateStrategy`` per reserve;
   ``PoolConfigurator.initReserves`` (one reserve per transaction) creates the token proxies.
6. Risk parameters through the configurator: ``configureReserveAsCollateral``,
   ``setReserveBorrowing``, ``setReserveStableRateBorrowing``, ``setReserveFactor``,
   ``setLiquidationProtocolFee``, ``setSupplyCap``/``setBorrowCap``, ``setReserveFlashLoaning``,
   ``setDebtCeiling`` (isolation collateral; must precede any supply), ``setBorrowableInIsolation``,
   then ``setEModeCategory`` and ``setAssetEModeCategory``.

The default market (:data:`DEFAULT_RESERVES`): WETH (18 dec), WBTC (8), USDC (6), DAI (18; stable
borrowing on), LINK (18; isolated collateral with a debt ceiling); USDC and DAI are borrowable in
isolation and form e-mode category 1. Treasury (aToken ``RESERVE_TREASURY_ADDRESS``) is
:data:`TREASURY`, an address with no key; no incentives controller.

Behaviour of this version worth knowing when driving it: supplying an isolation-mode asset (debt
ceiling > 0) does **not** enable it as collateral (3.0.1+, unless the supplier holds
ISOLATED_COLLATERAL_SUPPLIER_ROLE): call :meth:`AaveV3Market.set_collateral` first. Flash loans
are off after ``initReserves`` until ``setReserveFlashLoaning``; flash-loan premiums are 0.

Amounts are raw integer token units; prices are USD with 8 decimals; percentages are bps.
Transactions go through :class:`ingest.devchain.DevChain` (``eth_sendTransaction`` from
unlocked/impersonated accounts; automine must be on). Pool and configurator calls use a fixed gas
limit (:attr:`AaveV3Market.gas`), so a reverting one is mined with status 0 and its reason is
read back with ``debug_traceTransaction`` (see :class:`TxResult`). Reads take ``block=`` (number
or tag) so that values of one block can be read consistently. For reproducible amounts deploy
with ``block_interval=`` on an ``Anvil(timestamp=...)`` (the ``aave_v3_market`` fixture in
``tests/protocols/conftest.py`` does) and move time with :meth:`AaveV3Market.advance_time`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Generic, NamedTuple, Protocol, Self, TypeVar

from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

from ingest.devchain import Contract, DevChain, DevChainError, TxReverted, abi_type, decode_revert
from ingest.devnet import repo_root

__all__ = [
    "AAVE_V3_CORE_COMMIT",
    "AAVE_V3_CORE_NPM_VERSION",
    "AAVE_V3_PROTOCOL_VERSION",
    "DEFAULT_EMODES",
    "DEFAULT_RESERVES",
    "MAX_UINT256",
    "TREASURY",
    "AaveV3Market",
    "AccountData",
    "Balances",
    "DecodedEvent",
    "EModeSpec",
    "RateStrategy",
    "Reserve",
    "ReserveLookups",
    "ReserveSpec",
    "TxResult",
    "aave_artifact",
    "aave_immutable_references",
    "decode_common_configuration",
    "decode_reserve_configuration",
    "find_artifact",
    "index_artifacts",
    "linked_bytecode",
]

AAVE_V3_CORE_NPM_VERSION = "1.19.3"
AAVE_V3_CORE_COMMIT = "724a9ef43adf139437ba87dcbab63462394d4601"  # aave/aave-v3-core tag v1.19.3
AAVE_V3_PROTOCOL_VERSION = "3.0.2"

RAY = 10**27
MAX_UINT256 = 2**256 - 1
TREASURY = "0x" + keccak(b"deficit/tests/aave-v3/treasury").hex()[-40:]
_USER_SEED = b"deficit/tests/aave-v3/user/"

# libraries referenced by Pool / PoolConfigurator (deploy order: FlashLoanLogic links BorrowLogic)
_LIBRARIES = ("SupplyLogic", "BorrowLogic", "LiquidationLogic", "EModeLogic", "BridgeLogic",
              "PoolLogic", "FlashLoanLogic", "ConfiguratorLogic")


# ----- artifacts and linking -----

def core_v3_dir() -> Path:
    return repo_root() / "node_modules" / "@aave" / "core-v3"


def index_artifacts(root: Path) -> dict[str, list[Path]]:
    """Contract name -> paths of its hardhat artifacts (``<Name>.json``) below ``root``, leaving
    out the ``.dbg.json`` companions and ``build-info`` (the layout of both Aave npm packages)."""
    index: dict[str, list[Path]] = {}
    for p in sorted(root.rglob("*.json")):
        if not p.name.endswith(".dbg.json") and p.parent.name != "build-info":
            index.setdefault(p.stem, []).append(p)
    return index


def find_artifact(index: dict[str, list[Path]], name: str, package: str) -> Path:
    """The one artifact of ``name`` in ``index``; ``name`` may be ``"path/File.sol:Name"`` when
    the short name is ambiguous. Raises naming ``package`` if there is none or more than one."""
    if ":" in name:
        source, short = name.rsplit(":", 1)
        paths = [p for p in index.get(short, []) if p.parent.name == Path(source).name
                 and str(p.parent).endswith(source)]
    else:
        paths = index.get(name, [])
    if len(paths) != 1:
        raise DevChainError(f"{package}: {'no' if not paths else 'ambiguous'} artifact {name!r}")
    return paths[0]


@cache
def _artifact_index() -> dict[str, list[Path]]:
    root = core_v3_dir() / "artifacts" / "contracts"
    if not root.is_dir():
        raise DevChainError(f"{root} missing: run `npm ci` (needs @aave/core-v3 {AAVE_V3_CORE_NPM_VERSION})")
    return index_artifacts(root)


@cache
def aave_artifact(name: str) -> dict[str, Any]:
    """The hardhat artifact of contract ``name`` in ``@aave/core-v3`` (``abi``, ``bytecode``,
    ``linkReferences``, ``sourceName``...). ``name`` may be ``"path/File.sol:Name"`` when the
    short name is ambiguous."""
    with open(find_artifact(_artifact_index(), name, "@aave/core-v3"), encoding="utf-8") as f:
        doc: dict[str, Any] = json.load(f)
    return doc


@cache
def _build_info_output() -> dict[str, Any]:
    files = sorted((core_v3_dir() / "artifacts" / "build-info").glob("*.json"))
    if len(files) != 1:
        raise DevChainError(f"expected one build-info file in @aave/core-v3, found {len(files)}")
    with open(files[0], encoding="utf-8") as f:
        doc: dict[str, Any] = json.load(f)
    return {"solcLongVersion": doc.get("solcLongVersion"), "settings": doc["input"]["settings"],
            "contracts": {src: {name: c["evm"]["deployedBytecode"].get("immutableReferences") or {}
                                for name, c in cs.items()}
                          for src, cs in doc["output"]["contracts"].items()}}


def aave_immutable_references(name: str) -> list[tuple[int, int]]:
    """(byte offset, length) of every immutable slot in the runtime code of artifact ``name``,
    from the package's hardhat build-info (32 MB, read once: ~0.4 s)."""
    art = aave_artifact(name)
    refs = _build_info_output()["contracts"][art["sourceName"]][art["contractName"]]
    return sorted((int(r["start"]), int(r["length"])) for rs in refs.values() for r in rs)


def linked_bytecode(artifact: dict[str, Any], libraries: dict[str, str], *, runtime: bool = False) -> bytes:
    """Creation bytecode (``runtime=True``: the deployed code, before immutables are filled in) of
    ``artifact`` with every ``linkReferences`` slot set to the address of the named library
    (``libraries``: name -> address). Raises if a library is missing, a slot does not hold the
    expected placeholder, or any placeholder is left."""
    hexcode: str = artifact["deployedBytecode" if runtime else "bytecode"][2:]
    refs_key = "deployedLinkReferences" if runtime else "linkReferences"
    for source, libs in (artifact.get(refs_key) or {}).items():
        for lib, refs in libs.items():
            if lib not in libraries:
                raise DevChainError(f"{artifact['contractName']} needs library {lib} ({source})")
            addr = libraries[lib].lower().removeprefix("0x")
            if len(addr) != 40:
                raise DevChainError(f"bad address for {lib}: {libraries[lib]}")
            placeholder = "__$" + keccak(f"{source}:{lib}".encode()).hex()[:34] + "$__"
            for ref in refs:
                start, length = 2 * int(ref["start"]), 2 * int(ref["length"])
                if length != 40 or hexcode[start:start + length] != placeholder:
                    raise DevChainError(f"{artifact['contractName']}: no {lib} placeholder at "
                                        f"byte {ref['start']}")
                hexcode = hexcode[:start] + addr + hexcode[start + length:]
    if "__$" in hexcode:
        raise DevChainError(f"{artifact['contractName']}: unlinked library placeholder left")
    return bytes.fromhex(hexcode)


# ----- market specification -----

@dataclass(frozen=True)
class RateStrategy:
    """``DefaultReserveInterestRateStrategy`` constructor parameters, all in RAY."""

    optimal_usage_ratio: int = 8 * RAY // 10
    base_variable_borrow_rate: int = 0
    variable_rate_slope1: int = 4 * RAY // 100
    variable_rate_slope2: int = 75 * RAY // 100
    stable_rate_slope1: int = 5 * RAY // 1000
    stable_rate_slope2: int = 75 * RAY // 100
    base_stable_rate_offset: int = 2 * RAY // 100
    stable_rate_excess_offset: int = 5 * RAY // 100
    optimal_stable_to_total_debt_ratio: int = 2 * RAY // 10

    def args(self) -> tuple[int, ...]:
        return (self.optimal_usage_ratio, self.base_variable_borrow_rate, self.variable_rate_slope1,
                self.variable_rate_slope2, self.stable_rate_slope1, self.stable_rate_slope2,
                self.base_stable_rate_offset, self.stable_rate_excess_offset,
                self.optimal_stable_to_total_debt_ratio)


@dataclass(frozen=True)
class ReserveSpec:
    """One reserve: token, initial price (USD, 8 decimals) and risk parameters (bps; caps in
    whole tokens, 0 = none; ``debt_ceiling`` in USD with 2 decimals, > 0 makes the asset an
    isolation-mode collateral; ``emode_category`` 0 = none)."""

    symbol: str
    decimals: int
    price: int
    ltv: int = 0
    liquidation_threshold: int = 0
    liquidation_bonus: int = 0
    reserve_factor: int = 1000
    liquidation_protocol_fee: int = 1000
    borrowing: bool = True
    stable_borrowing: bool = False
    flash_loans: bool = True
    supply_cap: int = 0
    borrow_cap: int = 0
    debt_ceiling: int = 0
    borrowable_in_isolation: bool = False
    emode_category: int = 0
    rates: RateStrategy = field(default_factory=RateStrategy)


@dataclass(frozen=True)
class EModeSpec:
    """An e-mode category (v3.0: ``setEModeCategory``; ``price_source`` None = no category
    oracle). Assets join it through ``ReserveSpec.emode_category``."""

    category_id: int
    ltv: int
    liquidation_threshold: int
    liquidation_bonus: int
    label: str
    price_source: str | None = None


_STABLE_RATES = RateStrategy(optimal_usage_ratio=9 * RAY // 10, variable_rate_slope1=4 * RAY // 100,
                             variable_rate_slope2=60 * RAY // 100)
_VOLATILE_RATES = RateStrategy(optimal_usage_ratio=45 * RAY // 100, variable_rate_slope1=7 * RAY // 100,
                               variable_rate_slope2=300 * RAY // 100)

DEFAULT_RESERVES: tuple[ReserveSpec, ...] = (
    ReserveSpec("WETH", 18, 2_000 * 10**8, ltv=8000, liquidation_threshold=8250,
                liquidation_bonus=10500, reserve_factor=1500, supply_cap=1_000_000,
                borrow_cap=800_000, rates=RateStrategy(variable_rate_slope1=38 * RAY // 1000,
                                                        variable_rate_slope2=80 * RAY // 100)),
    ReserveSpec("WBTC", 8, 30_000 * 10**8, ltv=7000, liquidation_threshold=7500,
                liquidation_bonus=10650, reserve_factor=2000, supply_cap=50_000, borrow_cap=25_000,
                rates=_VOLATILE_RATES),
    ReserveSpec("USDC", 6, 1 * 10**8, ltv=7700, liquidation_threshold=7900, liquidation_bonus=10450,
                supply_cap=2_000_000_000, borrow_cap=1_500_000_000, borrowable_in_isolation=True,
                emode_category=1, rates=_STABLE_RATES),
    ReserveSpec("DAI", 18, 1 * 10**8, ltv=6300, liquidation_threshold=7700, liquidation_bonus=10400,
                stable_borrowing=True, supply_cap=2_000_000_000, borrow_cap=1_500_000_000,
                borrowable_in_isolation=True, emode_category=1, rates=_STABLE_RATES),
    ReserveSpec("LINK", 18, 15 * 10**8, ltv=5000, liquidation_threshold=6500,
                liquidation_bonus=10750, reserve_factor=2000, supply_cap=10_000_000,
                borrow_cap=5_000_000, debt_ceiling=1_000_000_00, rates=_VOLATILE_RATES),
)

DEFAULT_EMODES: tuple[EModeSpec, ...] = (EModeSpec(1, 9300, 9500, 10100, "Stablecoins"),)


# ----- results -----

class AccountData(NamedTuple):
    """``Pool.getUserAccountData``: values in base currency (USD, 8 decimals), bps, HF in WAD."""

    total_collateral_base: int
    total_debt_base: int
    available_borrows_base: int
    current_liquidation_threshold: int
    ltv: int
    health_factor: int


class Balances(NamedTuple):
    underlying: int
    a_token: int
    a_token_scaled: int
    variable_debt: int
    variable_debt_scaled: int
    stable_debt: int


@dataclass(frozen=True)
class DecodedEvent:
    address: str
    name: str
    args: dict[str, Any]
    log_index: int


@dataclass
class TxResult:
    """A mined transaction: receipt and decoded events, or, when it reverted (status 0, still
    mined), the revert ``reason`` (the Aave ``Errors`` code string, e.g. ``'45'``) and raw data."""

    tx_hash: str
    receipt: dict[str, Any]
    events: list[DecodedEvent]
    reason: str | None = None
    revert_data: bytes = b""

    @property
    def ok(self) -> bool:
        return int(self.receipt["status"], 16) == 1

    @property
    def block_number(self) -> int:
        return int(self.receipt["blockNumber"], 16)

    @property
    def gas_used(self) -> int:
        return int(self.receipt["gasUsed"], 16)

    def all(self, name: str) -> list[DecodedEvent]:
        return [e for e in self.events if e.name == name]

    def event(self, name: str) -> dict[str, Any]:
        """Arguments of the one event called ``name`` (raises unless there is exactly one)."""
        found = self.all(name)
        if len(found) != 1:
            raise DevChainError(f"{len(found)} {name} events in {self.tx_hash}, expected 1")
        return found[0].args


class ReserveLookups:
    """Properties both drivers' ``Reserve`` dataclasses derive from their ``spec`` and ``token``."""

    spec: Any
    token: Contract

    @property
    def address(self) -> str:
        return self.token.address

    @property
    def symbol(self) -> str:
        return str(self.spec.symbol)

    @property
    def unit(self) -> int:
        return int(10**self.spec.decimals)


@dataclass
class Reserve(ReserveLookups):
    spec: ReserveSpec
    token: Contract
    aggregator: Contract   # TestOCRAggregator: transmit() here
    feed: Contract         # TestAggregatorProxy: the AaveOracle source
    strategy: Contract
    a_token: Contract | None = None
    stable_debt: Contract | None = None
    variable_debt: Contract | None = None



def _bits(data: int, start: int, width: int) -> int:
    return (data >> start) & ((1 << width) - 1)


def decode_common_configuration(data: int) -> dict[str, int | bool]:
    """The fields a v2 and a v3.0 ``ReserveConfigurationMap`` word hold at the same bits: v2's
    DataTypes.sol layout (bits 0-59 and the reserve factor at 64-79) is kept by v3, which only
    fills v2's reserved bits 60-63 and the bits above 80 (see :func:`decode_reserve_configuration`)."""
    return {
        "ltv": _bits(data, 0, 16), "liquidation_threshold": _bits(data, 16, 16),
        "liquidation_bonus": _bits(data, 32, 16), "decimals": _bits(data, 48, 8),
        "active": bool(_bits(data, 56, 1)), "frozen": bool(_bits(data, 57, 1)),
        "borrowing": bool(_bits(data, 58, 1)), "stable_borrowing": bool(_bits(data, 59, 1)),
        "reserve_factor": _bits(data, 64, 16),
    }


def decode_reserve_configuration(data: int) -> dict[str, int | bool]:
    """The fields of a v3.0 ``ReserveConfigurationMap`` word (see ReserveConfiguration.sol)."""
    def bits(start: int, width: int) -> int:
        return _bits(data, start, width)
    return {
        **decode_common_configuration(data),
        "paused": bool(bits(60, 1)), "borrowable_in_isolation": bool(bits(61, 1)),
        "siloed_borrowing": bool(bits(62, 1)), "flash_loans": bool(bits(63, 1)),
        "borrow_cap": bits(80, 36), "supply_cap": bits(116, 36),
        "liquidation_protocol_fee": bits(152, 16), "emode_category": bits(168, 8),
        "unbacked_mint_cap": bits(176, 36), "debt_ceiling": bits(212, 40),
    }


# ----- the market -----

class _ReserveLike(Protocol):
    """What the shared driver reads of a reserve (both drivers' ``Reserve`` dataclasses)."""

    @property
    def address(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def token(self) -> Contract: ...
    @property
    def aggregator(self) -> Contract | None: ...
    @property
    def a_token(self) -> Contract | None: ...
    @property
    def stable_debt(self) -> Contract | None: ...
    @property
    def variable_debt(self) -> Contract | None: ...


R = TypeVar("R", bound=_ReserveLike)
A = TypeVar("A")


class AaveMarketDriver(Generic[R, A]):
    """What the Aave v3 and v2 market drivers share: deployment plumbing, users, tokens,
    transactions, balance and pool reads. Both pools keep these entry points with the same
    arguments (``borrow``, ``repay``, ``withdraw``, ``setUserUseReserveAsCollateral``,
    ``liquidationCall``, ``getUserAccountData``, ``getReserveData``...); what differs is in the
    subclasses: artifacts (:meth:`_artifact`), deployment sequence, the supply function's name,
    ``mint`` of the mock token, the account-data tuple (``_account_data``, ``R``/``A``) and the
    reserve configuration layout (:meth:`_decode_configuration`)."""

    _reserve_type: type[R]
    _account_data: Callable[..., A]
    _user_seed: bytes
    _treasury: str
    # set by deploy()
    provider: Contract
    pool: Contract
    pool_impl: Contract
    configurator: Contract
    configurator_impl: Contract
    oracle: Contract
    data_provider: Contract

    def __init__(self, chain: DevChain, admin: str):
        self.chain = chain
        self.admin = admin.lower()
        self.treasury = self._treasury
        self.libraries: dict[str, str] = {}
        self.reserves: dict[str, R] = {}
        self._by_address: dict[str, R] = {}
        self._abi_at: dict[str, Contract] = {}
        self._approved: set[tuple[str, str]] = set()
        self._users = 0
        # Gas limit of every pool/configurator transaction sent through the market. Fixed on
        # purpose: anvil estimates gas on a pending block whose timestamp may not be the mined
        # one, and an index update that only happens when time has passed then runs out of gas.
        # Reverting transactions are therefore mined (status 0) and their reason is traced.
        self.gas = 5_000_000

    # -- what the subclasses say --

    @staticmethod
    def _artifact(name: str) -> dict[str, Any]:
        """The npm hardhat artifact of contract ``name`` of this market's package."""
        raise NotImplementedError

    @staticmethod
    def _decode_configuration(data: int) -> dict[str, int | bool]:
        """The fields of this version's ``ReserveConfigurationMap`` word."""
        raise NotImplementedError

    def mint(self, user: str, asset: str | R, amount: int) -> None:
        raise NotImplementedError

    # -- deployment --

    @classmethod
    def _start(cls, chain: DevChain, admin: str | None, block_interval: int | None) -> Self:
        """The market object before ``deploy`` fills it in. ``block_interval``: make every later
        block exactly that many seconds after the previous one (``anvil_setBlockTimestampInterval``),
        so that with a fixed genesis timestamp (``Anvil(timestamp=...)``) interest accrual, and
        thus every amount, is reproducible."""
        if block_interval is not None:
            chain.rpc("anvil_setBlockTimestampInterval", [block_interval])
        return cls(chain, admin or chain.default_sender)

    def _contract(self, name: str, address: str) -> Contract:
        """Contract ``name`` of the package's artifacts at ``address`` (not registered for logs)."""
        return Contract(address=address.lower(), abi=self._artifact(name)["abi"], name=name)

    def _deploy(self, name: str, *args: Any) -> Contract:
        """Deploy the npm artifact ``name`` (libraries linked) from the admin."""
        art = self._artifact(name)
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

    def _deploy_test(self, artifact: str, *args: Any) -> Contract:
        c = self.chain.deploy(artifact, *args, sender=self.admin)
        self._abi_at[c.address] = c
        return c

    def _deploy_libraries(self, names: Iterable[str]) -> None:
        """Deploy the logic libraries in ``names`` order (a later one may link an earlier one)."""
        for lib in names:
            self.libraries[lib] = self._deploy(lib).address

    def _provided(self, name: str, getter: str) -> Contract:
        """The proxy the addresses provider hands out through ``getter`` (e.g. ``getPool``), as
        contract ``name``, registered for log decoding."""
        c = self._contract(name, str(self.chain.call(self.provider, getter)[0]))
        self._abi_at[c.address] = c
        return c

    def _deploy_feed(self, symbol: str, price: int, decimals: int, quote: str) -> tuple[Contract, Contract]:
        """A ``TestOCRAggregator`` (``decimals``) behind a ``TestAggregatorProxy``, answer set to
        ``price`` with ``transmit([price])``: (aggregator, proxy)."""
        agg = self._deploy_test("TestOCRAggregator", 1, 2**191 - 1, decimals, f"{symbol} / {quote}")
        feed = self._deploy_test("TestAggregatorProxy", agg.address)
        self.chain.send(agg, "transmit", [price], sender=self.admin)
        return agg, feed

    def _add_reserve(self, r: R) -> None:
        """List ``r`` by symbol and underlying address (``deploy`` rejects a duplicate symbol
        before it deploys anything for it)."""
        self.reserves[r.symbol] = r
        self._by_address[r.address] = r

    def _token_proxies(self, data: Sequence[Any], first: int) -> tuple[Contract, Contract, Contract]:
        """(aToken, stableDebtToken, variableDebtToken) proxies named by ``getReserveData``
        output ``data`` from index ``first`` on (their order in both versions), registered."""
        tokens = (self._contract("AToken", data[first]), self._contract("StableDebtToken", data[first + 1]),
                  self._contract("VariableDebtToken", data[first + 2]))
        for c in tokens:
            self._abi_at[c.address] = c
        return tokens

    def _receipt(self, tx_hash: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline, delay = time.monotonic() + timeout, 0.0005
        while (r := self.chain.receipt(tx_hash)) is None:
            if time.monotonic() > deadline:
                raise DevChainError(f"tx {tx_hash} not mined within {timeout} s (automine off?)")
            time.sleep(delay)
            delay = min(2 * delay, 0.05)
        return r

    def _admin_send(self, contract: Contract, fn: str, *args: Any) -> str:
        return str(self.chain.send(contract, fn, *args, sender=self.admin))

    # -- lookups --

    def reserve(self, asset: str | R) -> R:
        """A reserve by symbol (``"WETH"``), underlying address or reserve object."""
        if isinstance(asset, self._reserve_type):
            return asset
        r = self.reserves.get(str(asset)) or self._by_address.get(str(asset).lower())
        if r is None:
            raise DevChainError(f"unknown reserve {asset!r}")
        return r

    def asset(self, asset: str | R) -> str:
        return str(self.reserve(asset).address)

    # -- users and tokens --

    def new_user(self, eth: int = 10**21) -> str:
        """A fresh impersonated account (no key) with ``eth`` wei, for more than anvil's 10."""
        self._users += 1
        user = "0x" + keccak(self._user_seed + str(self._users).encode()).hex()[-40:]
        self.chain.rpc("anvil_setBalance", [user, hex(eth)])
        self.chain.rpc("anvil_impersonateAccount", [user])
        return user

    def approve(self, user: str, asset: str | R, amount: int = MAX_UINT256) -> None:
        r = self.reserve(asset)
        self.chain.send(r.token, "approve", self.pool.address, amount, sender=user)
        self._approved.add((user.lower(), r.address))

    def ensure_approved(self, user: str, asset: str | R) -> None:
        """Approve the pool for an unlimited amount of ``asset`` from ``user``, once."""
        if (user.lower(), self.asset(asset)) not in self._approved:
            self.approve(user, asset)

    def fund(self, user: str, asset: str | R, amount: int) -> None:
        """Mint ``amount`` of the underlying to ``user`` and approve the pool (unlimited) once."""
        self.mint(user, asset, amount)
        self.ensure_approved(user, asset)

    # -- transactions --

    def _tx(self, sender: str, contract: Contract, fn: str, *args: Any, check: bool = True) -> TxResult:
        """Send with a fixed gas limit (no estimation, see :attr:`gas`) and wait for the receipt;
        a revert's data comes from ``debug_traceTransaction`` of the mined transaction."""
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
        """``(Lending)PoolConfigurator.fn(*args)`` from the admin (it holds every admin role)."""
        return self._tx(self.admin, self.configurator, fn, *args, check=check)

    def _supply(self, fn: str, user: str, asset: str | R, amount: int, on_behalf_of: str | None,
                fund: bool, check: bool) -> TxResult:
        """``Pool.supply`` (v3) / ``LendingPool.deposit`` (v2), the same arguments; ``fund=True``
        mints the amount first; the pool is approved once."""
        if fund:
            self.mint(user, asset, amount)
        self.ensure_approved(user, asset)
        return self._tx(user, self.pool, fn, self.asset(asset), amount, on_behalf_of or user, 0,
                        check=check)

    def borrow(self, user: str, asset: str | R, amount: int, mode: int = 2, *,
               on_behalf_of: str | None = None, check: bool = True) -> TxResult:
        """``borrow`` (mode 2 variable, 1 stable)."""
        return self._tx(user, self.pool, "borrow", self.asset(asset), amount, mode, 0,
                        on_behalf_of or user, check=check)

    def repay(self, user: str, asset: str | R, amount: int, mode: int = 2, *,
              on_behalf_of: str | None = None, check: bool = True) -> TxResult:
        """``repay`` (``MAX_UINT256`` = all of the caller's own debt of that mode); approves the
        pool for the payer first if needed."""
        self.ensure_approved(user, asset)
        return self._tx(user, self.pool, "repay", self.asset(asset), amount, mode, on_behalf_of or user,
                        check=check)

    def withdraw(self, user: str, asset: str | R, amount: int, *, to: str | None = None,
                 check: bool = True) -> TxResult:
        """``withdraw`` (``MAX_UINT256`` = whole balance)."""
        return self._tx(user, self.pool, "withdraw", self.asset(asset), amount, to or user, check=check)

    def set_collateral(self, user: str, asset: str | R, enabled: bool, *,
                       check: bool = True) -> TxResult:
        """``setUserUseReserveAsCollateral``."""
        return self._tx(user, self.pool, "setUserUseReserveAsCollateral", self.asset(asset), enabled,
                        check=check)

    def liquidate(self, liquidator: str, collateral: str | R, debt: str | R, user: str,
                  debt_to_cover: int, receive_atoken: bool = False, *, fund: bool = False,
                  check: bool = False) -> TxResult:
        """``liquidationCall``. Unlike the other actions a revert does **not** raise by default:
        the result carries ``reason``, the ``Errors`` code string (v3 ``'45'`` healthy; v2, from
        the delegatecalled collateral manager, ``'42'`` healthy, ``'43'``, ``'44'``, ``'45'``).
        ``fund=True`` mints ``debt_to_cover`` of the debt asset to the liquidator; the pool is
        approved for the liquidator's debt asset in any case."""
        if fund:
            self.fund(liquidator, debt, debt_to_cover)
        self.ensure_approved(liquidator, debt)
        return self._tx(liquidator, self.pool, "liquidationCall", self.asset(collateral),
                        self.asset(debt), user, debt_to_cover, receive_atoken, check=check)

    def set_price(self, asset: str | R, price: int, observations: Iterable[int] | None = None) -> str:
        """Transmit a new answer (in the oracle's unit: v3 USD with 8 decimals, v2 ETH wei per whole
        token) to the asset's aggregator (``observations``: the whole report, whose median becomes
        the answer). Returns the tx hash. Raises for a reserve without a feed (v2's WETH)."""
        r = self.reserve(asset)
        if r.aggregator is None:
            raise DevChainError(f"{r.symbol} is priced 1e18 by the AaveOracle (WETH): no feed to move")
        obs = list(observations) if observations is not None else [price]
        return self.chain.send(r.aggregator, "transmit", obs, sender=self.admin)

    def advance_time(self, seconds: int, blocks: int = 1) -> int:
        """Mine a block ``seconds`` after the latest one (``evm_setNextBlockTimestamp``, which,
        unlike ``evm_increaseTime``, also works with a fixed block interval), then ``blocks - 1``
        more; returns the new head's timestamp."""
        ts = int(self.chain.block()["timestamp"], 16) + seconds
        self.chain.set_next_timestamp(ts)
        self.chain.mine(blocks)
        return int(self.chain.block()["timestamp"], 16)

    # -- reads --

    def get_user_account_data(self, user: str, block: int | str = "latest") -> A:
        return self._account_data(*self.chain.call(self.pool, "getUserAccountData", user, block=block))

    def price(self, asset: str | R, block: int | str = "latest") -> int:
        """``AaveOracle.getAssetPrice`` (v3 USD with 8 decimals, v2 ETH wei per whole token)."""
        return int(self.chain.call(self.oracle, "getAssetPrice", self.asset(asset), block=block)[0])

    def reserve_data(self, asset: str | R, block: int | str = "latest") -> dict[str, Any]:
        """``getReserveData`` keyed by the ABI names (``configuration`` decoded with the version's
        :func:`decode_reserve_configuration`)."""
        entry = self.pool.function("getReserveData")
        values = self.chain.call(self.pool, "getReserveData", self.asset(asset), block=block)[0]
        out = {c["name"]: v for c, v in zip(entry["outputs"][0]["components"], values, strict=True)}
        out["configuration"] = self._decode_configuration(int(out["configuration"][0]))
        return out

    def normalized_income(self, asset: str | R, block: int | str = "latest") -> int:
        return int(self.chain.call(self.pool, "getReserveNormalizedIncome", self.asset(asset),
                                   block=block)[0])

    def normalized_debt(self, asset: str | R, block: int | str = "latest") -> int:
        return int(self.chain.call(self.pool, "getReserveNormalizedVariableDebt", self.asset(asset),
                                   block=block)[0])

    def _balance(self, contract: Contract | None, fn: str, user: str, block: int | str) -> int:
        assert contract is not None
        return int(self.chain.call(contract, fn, user, block=block)[0])

    def token_balance(self, user: str, asset: str | R, block: int | str = "latest") -> int:
        return self._balance(self.reserve(asset).token, "balanceOf", user, block)

    def a_balance(self, user: str, asset: str | R, block: int | str = "latest") -> int:
        return self._balance(self.reserve(asset).a_token, "balanceOf", user, block)

    def a_scaled_balance(self, user: str, asset: str | R, block: int | str = "latest") -> int:
        return self._balance(self.reserve(asset).a_token, "scaledBalanceOf", user, block)

    def variable_debt(self, user: str, asset: str | R, block: int | str = "latest") -> int:
        return self._balance(self.reserve(asset).variable_debt, "balanceOf", user, block)

    def variable_debt_scaled(self, user: str, asset: str | R, block: int | str = "latest") -> int:
        return self._balance(self.reserve(asset).variable_debt, "scaledBalanceOf", user, block)

    def stable_debt(self, user: str, asset: str | R, block: int | str = "latest") -> int:
        return self._balance(self.reserve(asset).stable_debt, "balanceOf", user, block)

    def balances(self, user: str, asset: str | R, block: int | str = "latest") -> Balances:
        """Underlying, aToken (and scaled), variable debt (and scaled) and stable debt of ``user``."""
        return Balances(self.token_balance(user, asset, block), self.a_balance(user, asset, block),
                        self.a_scaled_balance(user, asset, block), self.variable_debt(user, asset, block),
                        self.variable_debt_scaled(user, asset, block), self.stable_debt(user, asset, block))

    # -- logs --

    def decode_logs(self, logs: Iterable[dict[str, Any]]) -> list[DecodedEvent]:
        """Decode raw logs of the market's contracts (pool, incl. v2's delegatecalled collateral
        manager's LiquidationCall, configurator, tokens, feeds...); logs of unknown contracts or
        events are skipped."""
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

    def snapshot(self) -> str:
        return self.chain.snapshot()

    def revert(self, snap: str) -> None:
        """``evm_revert`` (a snapshot id is good for one revert, as in anvil). Forgets which
        approvals were made, since some may have been undone."""
        self.chain.revert(snap)
        self._approved.clear()


class AaveV3Market(AaveMarketDriver[Reserve, AccountData]):
    """A deployed Aave v3.0.2 market; build with :meth:`deploy`. See the module docstring."""

    _reserve_type = Reserve
    _account_data = AccountData
    _user_seed = _USER_SEED
    _treasury = TREASURY

    def __init__(self, chain: DevChain, admin: str):
        super().__init__(chain, admin)
        self.emodes: dict[int, EModeSpec] = {}
        # set by deploy()
        self.acl: Contract
        self.a_token_impl: Contract
        self.stable_debt_impl: Contract
        self.variable_debt_impl: Contract

    @staticmethod
    def _artifact(name: str) -> dict[str, Any]:
        return aave_artifact(name)

    @staticmethod
    def _decode_configuration(data: int) -> dict[str, int | bool]:
        return decode_reserve_configuration(data)

    # -- deployment --

    @classmethod
    def deploy(cls, chain: DevChain, reserves: Sequence[ReserveSpec] = DEFAULT_RESERVES,
               emodes: Sequence[EModeSpec] = DEFAULT_EMODES, *, admin: str | None = None,
               market_id: str = "deficit Aave v3.0.2 test market",
               block_interval: int | None = None) -> AaveV3Market:
        """Deploy and configure a full market on ``chain`` (see the module docstring).

        ``block_interval``: make every later block exactly that many seconds after the previous
        one (``anvil_setBlockTimestampInterval``), so that with a fixed genesis timestamp
        (``Anvil(timestamp=...)``) interest accrual, and thus every amount, is reproducible."""
        m = cls._start(chain, admin, block_interval)
        a = m.admin
        m.provider = m._deploy("PoolAddressesProvider", market_id, a)
        m._admin_send(m.provider, "setACLAdmin", a)
        m.acl = m._deploy("ACLManager", m.provider.address)
        for fn in ("addPoolAdmin", "addRiskAdmin", "addEmergencyAdmin", "addAssetListingAdmin"):
            m._admin_send(m.acl, fn, a)
        m._admin_send(m.provider, "setACLManager", m.acl.address)

        m._deploy_libraries(_LIBRARIES)

        m.pool_impl = m._deploy("Pool", m.provider.address)
        m._admin_send(m.provider, "setPoolImpl", m.pool_impl.address)
        m.pool = m._provided("Pool", "getPool")
        m.configurator_impl = m._deploy("PoolConfigurator")
        m._admin_send(m.provider, "setPoolConfiguratorImpl", m.configurator_impl.address)
        m.configurator = m._provided("PoolConfigurator", "getPoolConfigurator")

        # tokens and price feeds
        for spec in reserves:
            if spec.symbol in m.reserves:
                raise DevChainError(f"duplicate reserve {spec.symbol}")
            token = m._deploy("MintableERC20", spec.symbol, spec.symbol, spec.decimals)
            agg, feed = m._deploy_feed(spec.symbol, spec.price, 8, "USD")
            strategy = m._deploy("DefaultReserveInterestRateStrategy", m.provider.address,
                                 *spec.rates.args())
            m._add_reserve(Reserve(spec=spec, token=token, aggregator=agg, feed=feed, strategy=strategy))

        rs = list(m.reserves.values())
        m.oracle = m._deploy("AaveOracle", m.provider.address, [r.address for r in rs],
                             [r.feed.address for r in rs], "0x" + "00" * 20, "0x" + "00" * 20, 10**8)
        m._admin_send(m.provider, "setPriceOracle", m.oracle.address)
        m.data_provider = m._deploy("AaveProtocolDataProvider", m.provider.address)
        m._admin_send(m.provider, "setPoolDataProvider", m.data_provider.address)

        m.a_token_impl = m._deploy("AToken", m.pool.address)
        m.stable_debt_impl = m._deploy("StableDebtToken", m.pool.address)
        m.variable_debt_impl = m._deploy("VariableDebtToken", m.pool.address)

        for r in rs:
            s = r.spec
            m._admin_send(m.configurator, "initReserves", [(
                m.a_token_impl.address, m.stable_debt_impl.address, m.variable_debt_impl.address,
                s.decimals, r.strategy.address, r.address, m.treasury, "0x" + "00" * 20,
                f"Aave test {s.symbol}", f"a{s.symbol}",
                f"Aave test variable debt {s.symbol}", f"variableDebt{s.symbol}",
                f"Aave test stable debt {s.symbol}", f"stableDebt{s.symbol}", b"")])
            data = m.chain.call(m.pool, "getReserveData", r.address)[0]
            r.a_token, r.stable_debt, r.variable_debt = m._token_proxies(data, 8)
            m._configure_reserve(r)

        for e in emodes:
            m.configure("setEModeCategory", e.category_id, e.ltv, e.liquidation_threshold,
                        e.liquidation_bonus, e.price_source or "0x" + "00" * 20, e.label)
            m.emodes[e.category_id] = e
        for r in rs:
            if r.spec.emode_category:
                m.configure("setAssetEModeCategory", r.address, r.spec.emode_category)
        return m

    def _configure_reserve(self, r: Reserve) -> None:
        s, asset = r.spec, r.address
        if s.liquidation_threshold:
            self.configure("configureReserveAsCollateral", asset, s.ltv, s.liquidation_threshold,
                           s.liquidation_bonus)
        if s.borrowing:
            self.configure("setReserveBorrowing", asset, True)
        if s.stable_borrowing:
            self.configure("setReserveStableRateBorrowing", asset, True)
        if s.reserve_factor:
            self.configure("setReserveFactor", asset, s.reserve_factor)
        if s.liquidation_protocol_fee:
            self.configure("setLiquidationProtocolFee", asset, s.liquidation_protocol_fee)
        if s.supply_cap:
            self.configure("setSupplyCap", asset, s.supply_cap)
        if s.borrow_cap:
            self.configure("setBorrowCap", asset, s.borrow_cap)
        if s.flash_loans:
            self.configure("setReserveFlashLoaning", asset, True)
        if s.debt_ceiling:
            self.configure("setDebtCeiling", asset, s.debt_ceiling)
        if s.borrowable_in_isolation:
            self.configure("setBorrowableInIsolation", asset, True)

    # -- users and tokens --

    def mint(self, user: str, asset: str | Reserve, amount: int) -> None:
        """``MintableERC20.mint(user, amount)`` (core-v3's mock mints to anyone, sent by ``user``)."""
        self.chain.send(self.reserve(asset).token, "mint", user, amount, sender=user)

    # -- transactions --

    def supply(self, user: str, asset: str | Reserve, amount: int, *, on_behalf_of: str | None = None,
               fund: bool = False, check: bool = True) -> TxResult:
        """``Pool.supply``; ``fund=True`` mints the amount first; the pool is approved once."""
        return self._supply("supply", user, asset, amount, on_behalf_of, fund, check)

    def set_user_emode(self, user: str, category: int, *, check: bool = True) -> TxResult:
        return self._tx(user, self.pool, "setUserEMode", category, check=check)

    # -- reads --

    def user_emode(self, user: str, block: int | str = "latest") -> int:
        return int(self.chain.call(self.pool, "getUserEMode", user, block=block)[0])
