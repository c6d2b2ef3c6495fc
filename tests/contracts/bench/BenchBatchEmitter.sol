// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Benchmark-only event source: many mainnet-ABI events per transaction.
/// @notice Used by bench/e2e_vs_cryo.py and bench/ingest_memory.py to build chains with ~100k
/// logs in ~3k blocks (one event per transaction would take far too long on anvil).
///  - Aave v3 Pool events with the exact mainnet declarations (ingest/catalog.py AAVE_V3_POOL),
///    so an instance can stand in as an Aave v3 `pool`;
///  - Chainlink aggregator events (AnswerUpdated, NewRound) plus the read-only minimum a
///    TestAggregatorProxy needs (decimals, latestRoundData, ...), so an instance can also be the
///    aggregator behind a proxy (the chainlink dataset discovers aggregators through it).
/// Values are derived from keccak256(seed, i): deterministic, varied, and all within the
/// 128-bit columns of the warehouse.
contract BenchBatchEmitter {
    // ----- Aave v3 Pool (aave/aave-v3-core IPool.sol, as in ingest/catalog.py) -----
    event Supply(address indexed reserve, address user, address indexed onBehalfOf, uint256 amount, uint16 indexed referralCode);
    event Withdraw(address indexed reserve, address indexed user, address indexed to, uint256 amount);
    event Borrow(address indexed reserve, address user, address indexed onBehalfOf, uint256 amount, uint8 interestRateMode, uint256 borrowRate, uint16 indexed referralCode);
    event Repay(address indexed reserve, address indexed user, address indexed repayer, uint256 amount, bool useATokens);
    event LiquidationCall(address indexed collateralAsset, address indexed debtAsset, address indexed user, uint256 debtToCover, uint256 liquidatedCollateralAmount, address liquidator, bool receiveAToken);
    event ReserveDataUpdated(address indexed reserve, uint256 liquidityRate, uint256 stableBorrowRate, uint256 variableBorrowRate, uint256 liquidityIndex, uint256 variableBorrowIndex);

    // ----- Chainlink aggregator (AggregatorInterface) -----
    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);
    event NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt);

    uint8 public constant decimals = 8;
    uint256 public constant version = 4;
    uint256 public latestRound;
    int256 public latestAnswer;
    uint256 public latestTimestamp;

    function _h(uint256 seed, uint256 i) private pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed, i)));
    }

    function _reserve(uint256 h) private pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encode("reserve", h % 12)))));
    }

    function _user(uint256 h) private pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encode("user", h % 5000)))));
    }

    /// @notice `n` LiquidationCall events.
    function emitLiquidationCalls(uint256 n, uint256 seed) external {
        for (uint256 i = 0; i < n; i++) {
            uint256 h = _h(seed, i);
            emit LiquidationCall(_reserve(h), _reserve(h >> 8), _user(h >> 16), (h >> 32) % 1e24,
                                 (h >> 112) % 1e24, _user(h >> 192), (h >> 255) == 1);
        }
    }

    /// @notice `n` pool events cycling through ReserveDataUpdated (2 in 6), Supply, Borrow,
    /// Repay, Withdraw, with LiquidationCall replacing one of them every 32nd event.
    function emitPoolMix(uint256 n, uint256 seed) external {
        for (uint256 i = 0; i < n; i++) {
            uint256 h = _h(seed, i);
            address reserve = _reserve(h);
            uint256 amount = (h >> 32) % 1e24;
            uint256 k = i % 6;
            if (i % 32 == 31) {
                emit LiquidationCall(reserve, _reserve(h >> 8), _user(h >> 16), amount,
                                     (h >> 112) % 1e24, _user(h >> 192), (h >> 255) == 1);
            } else if (k == 0 || k == 3) {
                emit ReserveDataUpdated(reserve, 1e24 + (h >> 40) % 1e26, 0, 1e24 + (h >> 100) % 1e26,
                                        1e27 + (h >> 60) % 3e26, 1e27 + (h >> 150) % 3e26);
            } else if (k == 1) {
                emit Supply(reserve, _user(h >> 16), _user(h >> 16), amount, 0);
            } else if (k == 2) {
                emit Borrow(reserve, _user(h >> 16), _user(h >> 16), amount, 2, 1e24 + (h >> 100) % 1e26, 0);
            } else if (k == 4) {
                emit Repay(reserve, _user(h >> 16), _user(h >> 16), amount, (h >> 255) == 1);
            } else {
                emit Withdraw(reserve, _user(h >> 16), _user(h >> 16), amount);
            }
        }
    }

    /// @notice `n` AnswerUpdated events with answers start, start+1, ...; the aggregator state
    /// (latestRound, latestAnswer) follows, so a proxy in front of it reads sensible values.
    function emitAnswerUpdated(uint256 n, int256 start) external {
        uint256 r = latestRound;
        for (uint256 i = 0; i < n; i++) {
            r += 1;
            emit AnswerUpdated(start + int256(i), r, block.timestamp);
        }
        latestRound = r;
        latestAnswer = start + int256(n) - 1;
        latestTimestamp = block.timestamp;
    }

    /// @notice `n` rounds, each emitting NewRound then AnswerUpdated (as Flux/OCR aggregators do).
    function emitRounds(uint256 n, int256 start) external {
        uint256 r = latestRound;
        for (uint256 i = 0; i < n; i++) {
            r += 1;
            emit NewRound(r, msg.sender, block.timestamp);
            emit AnswerUpdated(start + int256(i), r, block.timestamp);
        }
        latestRound = r;
        latestAnswer = start + int256(n) - 1;
        latestTimestamp = block.timestamp;
    }

    // ----- the AggregatorV2V3Interface reads a TestAggregatorProxy forwards -----

    function description() external pure returns (string memory) {
        return "BENCH / USD";
    }

    function getAnswer(uint256) external view returns (int256) {
        return latestAnswer;
    }

    function getTimestamp(uint256) external view returns (uint256) {
        return latestTimestamp;
    }

    function getRoundData(uint80 roundId)
        external
        view
        returns (uint80, int256, uint256, uint256, uint80)
    {
        return (roundId, latestAnswer, latestTimestamp, latestTimestamp, roundId);
    }

    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        uint80 r = uint80(latestRound);
        return (r, latestAnswer, latestTimestamp, latestTimestamp, r);
    }
}
