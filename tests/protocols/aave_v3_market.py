"""Re-export of :mod:`ingest.aave_devmarket` (the real Aave v3 market on anvil and its driver).

The driver moved to ``ingest`` so that ``deficit sample build`` can deploy the market at runtime;
tests keep importing it from here unchanged.
"""

from ingest.aave_devmarket import (
    AAVE_V3_CORE_COMMIT,
    AAVE_V3_CORE_NPM_VERSION,
    AAVE_V3_PROTOCOL_VERSION,
    DEFAULT_EMODES,
    DEFAULT_RESERVES,
    MAX_UINT256,
    RAY,
    TREASURY,
    AaveMarketDriver,
    AaveV3Market,
    AccountData,
    Balances,
    DecodedEvent,
    EModeSpec,
    RateStrategy,
    Reserve,
    ReserveSpec,
    TxResult,
    aave_artifact,
    aave_immutable_references,
    core_v3_dir,
    decode_reserve_configuration,
    linked_bytecode,
)

__all__ = [
    "AAVE_V3_CORE_COMMIT",
    "AAVE_V3_CORE_NPM_VERSION",
    "AAVE_V3_PROTOCOL_VERSION",
    "AaveMarketDriver",
    "AaveV3Market",
    "AccountData",
    "Balances",
    "DEFAULT_EMODES",
    "DEFAULT_RESERVES",
    "DecodedEvent",
    "EModeSpec",
    "MAX_UINT256",
    "RAY",
    "RateStrategy",
    "Reserve",
    "ReserveSpec",
    "TREASURY",
    "TxResult",
    "aave_artifact",
    "aave_immutable_references",
    "core_v3_dir",
    "decode_reserve_configuration",
    "linked_bytecode",
]
