# ruff: noqa: E501
"""ingest.catalog: every declaration is well-formed and hashes to the topic0 the docs list.

The expected topic0 values and indexed-parameter names below are copied from
/work/shared/docs/protocol-rules.md (sections 1, 2 and 10; the section is named in each
comment). Events that document does not list are named in NOT_IN_DOC and only checked to parse.
The parser here is deliberately tiny and independent of ingest/abi.py.
"""

from __future__ import annotations

import re

import pytest
from eth_hash.auto import keccak

from ingest import catalog

# ---------------------------------------------------------------------------------------------
# A tiny declaration parser (the catalog's string format, nothing more)
# ---------------------------------------------------------------------------------------------

_DECL = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\((?P<params>.*)\)$")
_PARAM = re.compile(
    r"^(?P<type>[a-z0-9\[\]]+)(?P<indexed> indexed)? (?P<name>[A-Za-z_][A-Za-z0-9_]*)$"
)
_TYPE = re.compile(r"^(?P<elem>[a-z]+(?P<bits>[0-9]+)?)(?P<dims>(\[[0-9]*\])*)$")


def _elementary_ok(elem: str, bits: str | None) -> bool:
    if elem in ("address", "bool", "string", "bytes"):
        return True
    if bits is None or bits.startswith("0"):
        return False
    n = int(bits)
    base = elem[: -len(bits)]
    if base in ("uint", "int"):
        return 8 <= n <= 256 and n % 8 == 0
    if base == "bytes":
        return 1 <= n <= 32
    return False


def parse(decl: str) -> tuple[str, list[tuple[str, bool, str]]]:
    """``"Name(type [indexed] name, ...)"`` -> (name, [(type, indexed, param_name), ...])."""
    m = _DECL.match(decl)
    if m is None:
        raise ValueError(f"not a declaration: {decl!r}")
    params: list[tuple[str, bool, str]] = []
    if m["params"]:
        for raw in m["params"].split(", "):
            p = _PARAM.match(raw)
            if p is None:
                raise ValueError(f"bad parameter {raw!r} in {decl!r}")
            t = _TYPE.match(p["type"])
            if t is None or not _elementary_ok(t["elem"], t["bits"]):
                raise ValueError(f"non-canonical type {p['type']!r} in {decl!r}")
            params.append((p["type"], p["indexed"] is not None, p["name"]))
    if sum(ix for _, ix, _ in params) > 3:
        raise ValueError(f"more than 3 indexed parameters in {decl!r}")
    return m["name"], params


def signature(decl: str) -> str:
    name, params = parse(decl)
    return f"{name}({','.join(t for t, _, _ in params)})"


def topic0(decl: str) -> str:
    return "0x" + keccak(signature(decl).encode()).hex()


def indexed_names(decl: str) -> tuple[str, ...]:
    return tuple(n for _, ix, n in parse(decl)[1] if ix)


# ---------------------------------------------------------------------------------------------
# Expected values, copied from /work/shared/docs/protocol-rules.md
# ---------------------------------------------------------------------------------------------

# group -> canonical signature -> (topic0, indexed parameter names or None if the doc has none)
EXPECTED: dict[str, dict[str, tuple[str, tuple[str, ...] | None]]] = {
    "AAVE_V3_POOL": {
        "Supply(address,address,address,uint256,uint16)": (
            "0x2b627736bca15cd5381dcf80b0bf11fd197d01a037c52b927a881a10fb73ba61",
            ("reserve", "onBehalfOf", "referralCode"),
        ),  # protocol-rules.md §2
        "Withdraw(address,address,address,uint256)": (
            "0x3115d1449a7b732c986cba18244e897a450f61e1bb8d589cd2e69e6c8924f9f7",
            ("reserve", "user", "to"),
        ),  # protocol-rules.md §2
        "Borrow(address,address,address,uint256,uint8,uint256,uint16)": (
            "0xb3d084820fb1a9decffb176436bd02558d15fac9b0ddfed8c465bc7359d7dce0",
            ("reserve", "onBehalfOf", "referralCode"),
        ),  # protocol-rules.md §2
        "Repay(address,address,address,uint256,bool)": (
            "0xa534c8dbe71f871f9f3530e97a74601fea17b426cae02e1c5aee42c96c784051",
            ("reserve", "user", "repayer"),
        ),  # protocol-rules.md §2
        "LiquidationCall(address,address,address,uint256,uint256,address,bool)": (
            "0xe413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286",
            ("collateralAsset", "debtAsset", "user"),
        ),  # protocol-rules.md §2
        "ReserveDataUpdated(address,uint256,uint256,uint256,uint256,uint256)": (
            "0x804c9b842b2748a22bb64b345453a3de7ca54a6ca45ce00d415894979e22897a",
            ("reserve",),
        ),  # protocol-rules.md §2
        "ReserveUsedAsCollateralEnabled(address,address)": (
            "0x00058a56ea94653cdf4f152d227ace22d4c00ad99e2a43f58cb7d9e3feb295f2",
            ("reserve", "user"),
        ),  # protocol-rules.md §2
        "ReserveUsedAsCollateralDisabled(address,address)": (
            "0x44c58d81365b66dd4b1a7f36c25aa97b8c71c361ee4937adc1a00000227db5dd",
            ("reserve", "user"),
        ),  # protocol-rules.md §2
        "UserEModeSet(address,uint8)": (
            "0xd728da875fc88944cbf17638bcbe4af0eedaef63becd1d1c57cc097eb4608d84",
            ("user",),
        ),  # protocol-rules.md §2
        "IsolationModeTotalDebtUpdated(address,uint256)": (
            "0xaef84d3b40895fd58c561f3998000f0583abb992a52fbdc99ace8e8de4d676a5",
            ("asset",),
        ),  # protocol-rules.md §2
        "DeficitCreated(address,address,uint256)": (
            "0x2bccfb3fad376d59d7accf970515eb77b2f27b082c90ed0fb15583dd5a942699",
            ("user", "debtAsset"),
        ),  # protocol-rules.md §2
        "DeficitCovered(address,address,uint256)": (
            "0x84b203e49f1a4b553088061534231969a68ad1c81be192205e96d23a206cb26a",
            ("reserve",),
        ),  # protocol-rules.md §2
        "MintedToTreasury(address,uint256)": (
            "0xbfa21aa5d5f9a1f0120a95e7c0749f389863cbdbfff531aa7339077a5bc919de",
            ("reserve",),
        ),  # protocol-rules.md §2
        "SwapBorrowRateMode(address,address,uint8)": (
            "0x7962b394d85a534033ba2efcf43cd36de57b7ebeb3de0ca4428965d9b3ddc481",
            ("reserve", "user"),
        ),  # protocol-rules.md §2
        "RebalanceStableBorrowRate(address,address)": (
            "0x9f439ae0c81e41a04d3fdfe07aed54e6a179fb0db15be7702eb66fa8ef6f5300",
            ("reserve", "user"),
        ),  # protocol-rules.md §2
        "FlashLoan(address,address,address,uint256,uint8,uint256,uint16)": (
            "0xefefaba5e921573100900a3ad9cf29f222d995fb3b6045797eaea7521bd8d6f0",
            ("target", "asset", "referralCode"),
        ),  # protocol-rules.md §2
        "MintUnbacked(address,address,address,uint256,uint16)": (
            "0xf25af37b3d3ec226063dc9bdc103ece7eb110a50f340fe854bb7bc1b0676d7d0",
            ("reserve", "onBehalfOf", "referralCode"),
        ),  # protocol-rules.md §2
        "BackUnbacked(address,address,uint256,uint256)": (
            "0x281596e92b2d974beb7d4f124df30a0b39067b096893e95011ce4bdad798b759",
            ("reserve", "backer"),
        ),  # protocol-rules.md §2
    },
    "AAVE_V3_CONFIGURATOR": {
        "ReserveInitialized(address,address,address,address,address)": (
            "0x3a0ca721fc364424566385a1aa271ed508cc2c0949c2272575fb3013a163a45f",
            ("asset", "aToken"),
        ),  # protocol-rules.md §2
        "CollateralConfigurationChanged(address,uint256,uint256,uint256)": (
            "0x637febbda9275aea2e85c0ff690444c8d87eb2e8339bbede9715abcc89cb0995",
            ("asset",),
        ),  # protocol-rules.md §2
        "PendingLtvChanged(address,uint256)": (
            "0x6a3fa1f355f7c7ab43e41cb277d1f8471f2693c63dca91049d5ec127bb588e10",
            ("asset",),
        ),  # protocol-rules.md §2
        "ReserveBorrowing(address,bool)": (
            "0x2443ba28e8d1d88d531a3d90b981816a4f3b3c7f1fd4085c6029e81d1b7a570d",
            ("asset",),
        ),  # protocol-rules.md §2
        "ReserveActive(address,bool)": (
            "0xc36c7d11ba01a5869d52aa4a3781939dab851cbc9ee6e7fdcedc7d58898a3f1e",
            ("asset",),
        ),  # protocol-rules.md §2
        "ReserveFrozen(address,bool)": (
            "0x0c4443d258a350d27dc50c378b2ebf165e6469725f786d21b30cab16823f5587",
            ("asset",),
        ),  # protocol-rules.md §2
        "ReservePaused(address,bool)": (
            "0xe188d542a5f11925d3a3af33703cdd30a43cb3e8066a3cf68b1b57f61a5a94b5",
            ("asset",),
        ),  # protocol-rules.md §2
        "ReserveDropped(address)": (
            "0xeeec4c06f7adad215cbdb4d2960896c83c26aedce02dde76d36fa28588d62da4",
            ("asset",),
        ),  # protocol-rules.md §2
        "ReserveFactorChanged(address,uint256,uint256)": (
            "0xb46e2b82b0c2cf3d7d9dece53635e165c53e0eaa7a44f904d61a2b7174826aef",
            ("asset",),
        ),  # protocol-rules.md §2
        "BorrowCapChanged(address,uint256,uint256)": (
            "0xc51aca575985d521c5072ad11549bad77013bb786d57f30f94b40ed8f8dc9bc4",
            ("asset",),
        ),  # protocol-rules.md §2
        "SupplyCapChanged(address,uint256,uint256)": (
            "0x0263602682188540a2d633561c0b4453b7d8566285e99f9f6018b8ef2facef49",
            ("asset",),
        ),  # protocol-rules.md §2
        "LiquidationProtocolFeeChanged(address,uint256,uint256)": (
            "0xb5b0a963825337808b6e3154de8e98027595a5cad4219bb3a9bc55b192f4b391",
            ("asset",),
        ),  # protocol-rules.md §2
        "LiquidationGracePeriodChanged(address,uint40)": (
            "0xdf4f96448786bcd6fecc9f1fa25f1fbbbee6a5c9e76d635a615ac57bb5983d10",
            ("asset",),
        ),  # protocol-rules.md §2
        "EModeAssetCategoryChanged(address,uint8,uint8)": (
            "0x5bb69795b6a2ea222d73a5f8939c23471a1f85a99c7ca43c207f1b71f10c6264",
            ("asset",),
        ),  # protocol-rules.md §2
        "EModeCategoryAdded(uint8,uint256,uint256,uint256,address,string)": (
            "0x0acf8b4a3cace10779798a89a206a0ae73a71b63acdd3be2801d39c2ef7ab3cb",
            ("categoryId",),
        ),  # protocol-rules.md §2
        "AssetCollateralInEModeChanged(address,uint8,bool)": (
            "0x79409190108b26fcb0e4570f8e240f627bf18fd01a55f751010224d5bd486098",
            ("asset",),
        ),  # protocol-rules.md §2
        "AssetBorrowableInEModeChanged(address,uint8,bool)": (
            "0x60087ca045be9d8d1301445e67d6248eddba97629c80284fa4910c0e52f103ab",
            ("asset",),
        ),  # protocol-rules.md §2
        "DebtCeilingChanged(address,uint256,uint256)": (
            "0x6824a6c7fbc10d2979b1f1ccf2dd4ed0436541679a661dedb5c10bd4be830682",
            ("asset",),
        ),  # protocol-rules.md §2
        "SiloedBorrowingChanged(address,bool,bool)": (
            "0x842a280b07e8e502a9101f32a3b768ebaba3655556dd674f0831900861fc674b",
            ("asset",),
        ),  # protocol-rules.md §2
        "ReserveInterestRateStrategyChanged(address,address,address)": (
            "0xdb8dada53709ce4988154324196790c2e4a60c377e1256790946f83b87db3c33",
            ("asset",),
        ),  # protocol-rules.md §2
    },
    "AAVE_V3_ORACLE": {
        "AssetSourceUpdated(address,address)": (
            "0x22c5b7b2d8561d39f7f210b6b326a1aa69f15311163082308ac4877db6339dc1",
            ("asset", "source"),
        ),  # protocol-rules.md §2
        "FallbackOracleUpdated(address)": (
            "0xce7a780d33665b1ea097af5f155e3821b809ecbaa839d3b33aa83ba28168cefb",
            ("fallbackOracle",),
        ),  # protocol-rules.md §2
        "BaseCurrencySet(address,uint256)": (
            "0xe27c4c1372396a3d15a9922f74f9dfc7c72b1ad6d63868470787249c356454c1",
            ("baseCurrency",),
        ),  # protocol-rules.md §2
    },
    "AAVE_V3_ADDRESSES_PROVIDER": {
        "PriceOracleUpdated(address,address)": (
            "0x56b5f80d8cac1479698aa7d01605fd6111e90b15fc4d2b377417f46034876cbd",
            ("oldAddress", "newAddress"),
        ),  # protocol-rules.md §2
        "PriceOracleSentinelUpdated(address,address)": (
            "0x5326514eeca90494a14bedabcff812a0e683029ee85d1e23824d44fd14cd6ae7",
            ("oldAddress", "newAddress"),
        ),  # protocol-rules.md §2
        "PoolUpdated(address,address)": (
            "0x90affc163f1a2dfedcd36aa02ed992eeeba8100a4014f0b4cdc20ea265a66627",
            ("oldAddress", "newAddress"),
        ),  # protocol-rules.md §2
    },
    "AAVE_V3_SCALED_TOKEN": {
        "Mint(address,address,uint256,uint256,uint256)": (
            "0x458f5fa412d0f69b08dd84872b0215675cc67bc1d5b6fd93300a1c3878b86196",
            ("caller", "onBehalfOf"),
        ),  # protocol-rules.md §2
        "Burn(address,address,uint256,uint256,uint256)": (
            "0x4cf25bc1d991c17529c25213d3cc0cda295eeaad5f13f361969b12ea48015f90",
            ("from", "target"),
        ),  # protocol-rules.md §2
    },
    "AAVE_V3_ATOKEN": {
        "BalanceTransfer(address,address,uint256,uint256)": (
            "0x4beccb90f994c31aced7a23b5611020728a23d8ec5cddd1a3e9d97b96fda8666",
            ("from", "to"),
        ),  # protocol-rules.md §2
    },
    "AAVE_V3_DEBT_TOKEN": {},
    "AAVE_V3_STABLE_DEBT_TOKEN": {
        "Mint(address,address,uint256,uint256,uint256,uint256,uint256,uint256)": (
            "0xc16f4e4ca34d790de4c656c72fd015c667d688f20be64eea360618545c4c530f",
            ("user", "onBehalfOf"),
        ),  # protocol-rules.md §2
        "Burn(address,uint256,uint256,uint256,uint256,uint256)": (
            "0x44bd20a79e993bdcc7cbedf54a3b4d19fb78490124b6b90d04fe3242eea579e8",
            ("from",),
        ),  # protocol-rules.md §2
    },
    "AAVE_V2_POOL": {
        "Deposit(address,address,address,uint256,uint16)": (
            "0xde6857219544bb5b7746f48ed30be6386fefc61b2f864cacf559893bf50fd951",
            ("reserve", "onBehalfOf", "referral"),
        ),  # protocol-rules.md §1
        "Withdraw(address,address,address,uint256)": (
            "0x3115d1449a7b732c986cba18244e897a450f61e1bb8d589cd2e69e6c8924f9f7",
            ("reserve", "user", "to"),
        ),  # protocol-rules.md §1
        "Borrow(address,address,address,uint256,uint256,uint256,uint16)": (
            "0xc6a898309e823ee50bac64e45ca8adba6690e99e7841c45d754e2a38e9019d9b",
            ("reserve", "onBehalfOf", "referral"),
        ),  # protocol-rules.md §1
        "Repay(address,address,address,uint256)": (
            "0x4cdde6e09bb755c9a5589ebaec640bbfedff1362d4b255ebf8339782b9942faa",
            ("reserve", "user", "repayer"),
        ),  # protocol-rules.md §1
        "Swap(address,address,uint256)": (
            "0xea368a40e9570069bb8e6511d668293ad2e1f03b0d982431fd223de9f3b70ca6",
            ("reserve", "user"),
        ),  # protocol-rules.md §1
        "ReserveUsedAsCollateralEnabled(address,address)": (
            "0x00058a56ea94653cdf4f152d227ace22d4c00ad99e2a43f58cb7d9e3feb295f2",
            ("reserve", "user"),
        ),  # protocol-rules.md §1
        "ReserveUsedAsCollateralDisabled(address,address)": (
            "0x44c58d81365b66dd4b1a7f36c25aa97b8c71c361ee4937adc1a00000227db5dd",
            ("reserve", "user"),
        ),  # protocol-rules.md §1
        "RebalanceStableBorrowRate(address,address)": (
            "0x9f439ae0c81e41a04d3fdfe07aed54e6a179fb0db15be7702eb66fa8ef6f5300",
            ("reserve", "user"),
        ),  # protocol-rules.md §1
        "FlashLoan(address,address,address,uint256,uint256,uint16)": (
            "0x631042c832b07452973831137f2d73e395028b44b250dedc5abb0ee766e168ac",
            ("target", "initiator", "asset"),
        ),  # protocol-rules.md §1
        "LiquidationCall(address,address,address,uint256,uint256,address,bool)": (
            "0xe413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286",
            ("collateralAsset", "debtAsset", "user"),
        ),  # protocol-rules.md §1
        "ReserveDataUpdated(address,uint256,uint256,uint256,uint256,uint256)": (
            "0x804c9b842b2748a22bb64b345453a3de7ca54a6ca45ce00d415894979e22897a",
            ("reserve",),
        ),  # protocol-rules.md §1
        "Paused()": (
            "0x9e87fac88ff661f02d44f95383c817fece4bce600a3dab7a54406878b965e752",
            (),
        ),  # protocol-rules.md §1
        "Unpaused()": (
            "0xa45f47fdea8a1efdd9029a5691c7f759c32b7c698632b563573e155625d16933",
            (),
        ),  # protocol-rules.md §1
    },
    "AAVE_V2_CONFIGURATOR": {
        "ReserveInitialized(address,address,address,address,address)": (
            "0x3a0ca721fc364424566385a1aa271ed508cc2c0949c2272575fb3013a163a45f",
            ("asset", "aToken"),
        ),  # protocol-rules.md §1
        "CollateralConfigurationChanged(address,uint256,uint256,uint256)": (
            "0x637febbda9275aea2e85c0ff690444c8d87eb2e8339bbede9715abcc89cb0995",
            ("asset",),
        ),  # protocol-rules.md §1
        "BorrowingEnabledOnReserve(address,bool)": (
            "0xab2f7f9e5ca2772fafa94f355c1842a80ae6b9e41f83083098d81f67d7a0b508",
            ("asset",),
        ),  # protocol-rules.md §1
        "BorrowingDisabledOnReserve(address)": (
            "0xe9a7e5fd4fc8ea18e602350324bf48e8f05d12434af0ce0be05743e6a5fdcb9e",
            ("asset",),
        ),  # protocol-rules.md §1
        "ReserveActivated(address)": (
            "0x35b80cd8ea3440e9a8454f116fa658b858da1b64c86c48451f4559cefcdfb56c",
            ("asset",),
        ),  # protocol-rules.md §1
        "ReserveDeactivated(address)": (
            "0x6f60cf8bd0f218cabe1ea3150bd07b0b758c35c4cfdf7138017a283e65564d5e",
            ("asset",),
        ),  # protocol-rules.md §1
        "ReserveFrozen(address)": (
            "0x85dc710add8a0914461a7dc5a63f6fc529a7700f8c6089a3faf5e93256ccf12a",
            ("asset",),
        ),  # protocol-rules.md §1
        "ReserveUnfrozen(address)": (
            "0x838ecdc4709a31a26db48b0c853212cedde3f725f07030079d793fb071964760",
            ("asset",),
        ),  # protocol-rules.md §1
        "ReserveFactorChanged(address,uint256)": (
            "0x2694ccb0b585b6a54b8d8b4a47aa874b05c257b43d34e98aee50838be00d3405",
            ("asset",),
        ),  # protocol-rules.md §1
        "ReserveDecimalsChanged(address,uint256)": (
            "0x2e73b7f1df792712003e6859f940c1e8711c3f1329474771fee71d2ec1163129",
            ("asset",),
        ),  # protocol-rules.md §1
        "ReserveInterestRateStrategyChanged(address,address)": (
            "0x5644b64ebb0ce18c4032248ca52f58355469092ff072866c3dcd8640e817d6a5",
            ("asset",),
        ),  # protocol-rules.md §1
    },
    "AAVE_V2_ORACLE": {
        "WethSet(address)": (
            "0x13a533084dcbb1cfe0dbea708ea977223c27c44d94f2fa3867a167c9cd340bf9",
            ("weth",),
        ),  # protocol-rules.md §1
        "AssetSourceUpdated(address,address)": (
            "0x22c5b7b2d8561d39f7f210b6b326a1aa69f15311163082308ac4877db6339dc1",
            ("asset", "source"),
        ),  # protocol-rules.md §1
        "FallbackOracleUpdated(address)": (
            "0xce7a780d33665b1ea097af5f155e3821b809ecbaa839d3b33aa83ba28168cefb",
            ("fallbackOracle",),
        ),  # protocol-rules.md §1
        "BaseCurrencySet(address,uint256)": (
            "0xe27c4c1372396a3d15a9922f74f9dfc7c72b1ad6d63868470787249c356454c1",
            ("baseCurrency",),
        ),  # protocol-rules.md §1
    },
    "AAVE_V2_ADDRESSES_PROVIDER": {
        "PriceOracleUpdated(address)": (
            "0xefe8ab924ca486283a79dc604baa67add51afb82af1db8ac386ebbba643cdffd",
            ("newAddress",),
        ),  # protocol-rules.md §1
        "LendingPoolCollateralManagerUpdated(address)": (
            "0x991888326f0eab3df6084aadb82bee6781b5c9aa75379e8bc50ae86934541638",
            ("newAddress",),
        ),  # protocol-rules.md §1
    },
    "AAVE_V2_ATOKEN": {
        "Mint(address,uint256,uint256)": (
            "0x4c209b5fc8ad50758f13e2e1088ba56a560dff690a1c6fef26394f4c03821c4f",
            ("from",),
        ),  # protocol-rules.md §1
        "Burn(address,address,uint256,uint256)": (
            "0x5d624aa9c148153ab3446c1b154f660ee7701e549fe9b62dab7171b1c80e6fa2",
            ("from", "target"),
        ),  # protocol-rules.md §1
        "BalanceTransfer(address,address,uint256,uint256)": (
            "0x4beccb90f994c31aced7a23b5611020728a23d8ec5cddd1a3e9d97b96fda8666",
            ("from", "to"),
        ),  # protocol-rules.md §1
    },
    "AAVE_V2_VARIABLE_DEBT_TOKEN": {
        "Mint(address,address,uint256,uint256)": (
            "0x2f00e3cdd69a77be7ed215ec7b2a36784dd158f921fca79ac29deffa353fe6ee",
            ("from", "onBehalfOf"),
        ),  # protocol-rules.md §1
        "Burn(address,uint256,uint256)": (
            "0x49995e5dd6158cf69ad3e9777c46755a1a826a446c6416992167462dad033b2a",
            ("user",),
        ),  # protocol-rules.md §1
    },
    "AAVE_V2_STABLE_DEBT_TOKEN": {
        "Mint(address,address,uint256,uint256,uint256,uint256,uint256,uint256)": (
            "0xc16f4e4ca34d790de4c656c72fd015c667d688f20be64eea360618545c4c530f",
            ("user", "onBehalfOf"),
        ),  # protocol-rules.md §1
        "Burn(address,uint256,uint256,uint256,uint256,uint256)": (
            "0x44bd20a79e993bdcc7cbedf54a3b4d19fb78490124b6b90d04fe3242eea579e8",
            ("user",),
        ),  # protocol-rules.md §1
    },
    "PROXY": {
        "Upgraded(address)": (
            "0xbc7cd75a20ee27fd9adebab32041f755214dbc6bffa90cc0225b39da2e5c2d3b",
            None,
        ),  # §2 text + §10 note (no indexed column)
    },
    "CHAINLINK_AGGREGATOR": {
        "AnswerUpdated(int256,uint256,uint256)": (
            "0x0559884fd3a460db3073b7fc896cc77986f16e378210ded43186175bf646fc5f",
            ("current", "roundId"),
        ),  # protocol-rules.md §10
        "NewRound(uint256,address,uint256)": (
            "0x0109fc6f55cf40689f02fbaad7af7fe7bbac8a3d2186600afc7d3e10cac60271",
            ("roundId", "startedBy"),
        ),  # protocol-rules.md §10
        "NewTransmission(uint32,int192,address,int192[],bytes,bytes32)": (
            "0xf6a97944f31ea060dfde0566e4167c1a1082551e64b60ecb14d599a9d023d451",
            ("aggregatorRoundId",),
        ),  # protocol-rules.md §10
        "NewTransmission(uint32,int192,address,uint32,int192[],bytes,int192,bytes32,uint40)": (
            "0xc797025feeeaf2cd924c99e9205acb8ec04d5cad21c41ce637a38fb6dee6016a",
            ("aggregatorRoundId",),
        ),  # protocol-rules.md §10
    },
}

NOT_IN_DOC: dict[str, tuple[str, ...]] = {
    "AAVE_V3_ATOKEN": ("Initialized(address,address,address,address,uint8,string,string,bytes)",),
    "AAVE_V3_DEBT_TOKEN": ("Initialized(address,address,address,uint8,string,string,bytes)",),
    "AAVE_V3_CONFIGURATOR": (
        "ReserveFlashLoaning(address,bool)",
        "ReserveStableRateBorrowing(address,bool)",
        "LiquidationGracePeriodDisabled(address)",
        "UnbackedMintCapChanged(address,uint256,uint256)",
        "BorrowableInIsolationChanged(address,bool)",
        "ATokenUpgraded(address,address,address)",
        "StableDebtTokenUpgraded(address,address,address)",
        "VariableDebtTokenUpgraded(address,address,address)",
    ),
    "AAVE_V3_ADDRESSES_PROVIDER": (
        "PoolConfiguratorUpdated(address,address)",
        "ACLManagerUpdated(address,address)",
    ),
    "AAVE_V2_CONFIGURATOR": (
        "StableRateEnabledOnReserve(address)",
        "StableRateDisabledOnReserve(address)",
        "ATokenUpgraded(address,address,address)",
        "StableDebtTokenUpgraded(address,address,address)",
        "VariableDebtTokenUpgraded(address,address,address)",
    ),
    "AAVE_V2_ADDRESSES_PROVIDER": (
        "LendingPoolUpdated(address)",
        "LendingPoolConfiguratorUpdated(address)",
    ),
}

GROUP_NAMES = (
    "AAVE_V3_POOL",
    "AAVE_V3_CONFIGURATOR",
    "AAVE_V3_ORACLE",
    "AAVE_V3_ADDRESSES_PROVIDER",
    "AAVE_V3_SCALED_TOKEN",
    "AAVE_V3_ATOKEN",
    "AAVE_V3_STABLE_DEBT_TOKEN",
    "AAVE_V3_DEBT_TOKEN",
    "AAVE_V2_POOL",
    "AAVE_V2_CONFIGURATOR",
    "AAVE_V2_ORACLE",
    "AAVE_V2_ADDRESSES_PROVIDER",
    "AAVE_V2_ATOKEN",
    "AAVE_V2_VARIABLE_DEBT_TOKEN",
    "AAVE_V2_STABLE_DEBT_TOKEN",
    "PROXY",
    "CHAINLINK_AGGREGATOR",
)


def _group(name: str) -> tuple[str, ...]:
    value = getattr(catalog, name)
    assert isinstance(value, tuple)
    return value


def _by_signature(name: str) -> dict[str, str]:
    return {signature(d): d for d in _group(name)}


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


def test_groups_exported() -> None:
    assert set(GROUP_NAMES) <= set(catalog.__all__)
    for name in GROUP_NAMES:
        decls = _group(name)
        assert decls, name
        assert all(isinstance(d, str) for d in decls), name
    assert set(EXPECTED) == set(GROUP_NAMES)


@pytest.mark.parametrize("group", GROUP_NAMES)
def test_declarations_parse(group: str) -> None:
    for decl in _group(group):
        name, params = parse(decl)
        assert not decl.startswith("event ") and not decl.endswith(";"), decl
        assert "  " not in decl and decl == decl.strip(), decl
        # round trip: the declaration is exactly its parsed form re-joined
        rebuilt = (
            name
            + "("
            + ", ".join(f"{t}{' indexed' if ix else ''} {n}" for t, ix, n in params)
            + ")"
        )
        assert rebuilt == decl
        assert len(bytes.fromhex(topic0(decl)[2:])) == 32


@pytest.mark.parametrize("group", GROUP_NAMES)
def test_no_duplicate_signature_in_group(group: str) -> None:
    sigs = [signature(d) for d in _group(group)]
    dupes = sorted({s for s in sigs if sigs.count(s) > 1})
    assert not dupes, f"{group}: duplicate canonical signature(s) {dupes}"


@pytest.mark.parametrize("group", GROUP_NAMES)
def test_every_declaration_is_checked(group: str) -> None:
    """Each declaration is either in the doc's tables (EXPECTED) or named in NOT_IN_DOC."""
    have = set(_by_signature(group))
    listed = set(EXPECTED[group])
    unlisted = set(NOT_IN_DOC.get(group, ()))
    assert not (listed & unlisted)
    assert have == listed | unlisted


@pytest.mark.parametrize(("group", "sig"), [(g, s) for g, rows in EXPECTED.items() for s in rows])
def test_topic0_matches_protocol_rules(group: str, sig: str) -> None:
    expected_topic0, expected_indexed = EXPECTED[group][sig]
    decl = _by_signature(group).get(sig)
    assert decl is not None, f"{group} has no declaration with signature {sig}"
    assert topic0(decl) == expected_topic0, decl
    if expected_indexed is not None:
        assert indexed_names(decl) == expected_indexed, decl


@pytest.mark.parametrize(("group", "sig"), [(g, s) for g, sigs in NOT_IN_DOC.items() for s in sigs])
def test_unlisted_signature_parses(group: str, sig: str) -> None:
    decl = _by_signature(group)[sig]
    assert re.fullmatch(r"0x[0-9a-f]{64}", topic0(decl))


def test_known_hashes_independent_of_catalog() -> None:
    # anchors cross-checked by protocol-rules.md against third-party code
    assert "0x" + keccak(
        b"LiquidationCall(address,address,address,uint256,uint256,address,bool)"
    ).hex() == ("0xe413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286")
    assert "0x" + keccak(b"AnswerUpdated(int256,uint256,uint256)").hex() == (
        "0x0559884fd3a460db3073b7fc896cc77986f16e378210ded43186175bf646fc5f"
    )


@pytest.mark.parametrize(
    "bad",
    [
        "event Paused()",
        "Paused();",
        "Repay(address indexed reserve, uint amount)",
        "Repay(address indexed reserve,  uint256 amount)",
        "Repay(address indexed reserve,uint256 amount)",
        "Repay(address reserve, uint256)",
        "Repay(address indexed reserve, uint7 amount)",
        "Repay(address indexed reserve, bytes33 data)",
        "Repay(address indexed a, address indexed b, address indexed c, uint256 indexed d)",
        "Repay(DataTypes.InterestRateMode mode)",
    ],
)
def test_parser_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse(bad)


def test_parser_canonical_signature() -> None:
    decl = "NewTransmission(uint32 indexed aggregatorRoundId, int192 answer, address transmitter, int192[] observations, bytes observers, bytes32 rawReportContext)"
    assert signature(decl) == "NewTransmission(uint32,int192,address,int192[],bytes,bytes32)"
    assert indexed_names(decl) == ("aggregatorRoundId",)
    assert signature("Paused()") == "Paused()"
