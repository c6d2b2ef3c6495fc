// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AggregatorV2V3Interface, Observations, Owned} from "./ChainlinkCommon.sol";

/// @title Test stand-in for an OCR1 aggregator (libocr contract/OffchainAggregator.sol).
/// @notice `transmit` takes the observations directly (no report encoding, no signatures, no
/// billing). What is kept from upstream, because consumers and the ingestor depend on it:
///  - the answer is the median `observations[n/2]` of the sorted observations (upstream requires
///    the report to be sorted already; here the contract sorts, carrying each observer's index
///    along so `observers[i]` is the oracle that made the i-th sorted observation);
///  - a median outside [minAnswer, maxAnswer] reverts "median is out of min-max range" (the feed
///    stops updating; it never clamps);
///  - every accepted report increments the uint32 aggregator round id and emits, in this order,
///    NewTransmission, NewRound(roundId, address(0), block.timestamp) and
///    AnswerUpdated(answer, roundId, block.timestamp);
///  - startedAt == updatedAt == the block timestamp; answeredInRound == roundId.
/// rawReportContext is deterministic: 11 zero bytes | 16-byte config digest | 4-byte epoch |
/// 1-byte round, with digest = bytes16(keccak256(address(this))), epoch = round id, round = 1.
contract TestOCRAggregator is Owned, AggregatorV2V3Interface {
    struct Transmission {
        int192 answer;
        uint64 timestamp;
    }

    uint256 private constant MAX_NUM_ORACLES = 31;
    string private constant V3_NO_DATA_ERROR = "No data present";

    int192 public immutable minAnswer;
    int192 public immutable maxAnswer;
    uint8 public immutable override decimals;
    uint256 public constant override version = 4;

    string internal s_description;
    uint32 internal s_latestAggregatorRoundId;
    mapping(uint32 => Transmission) internal s_transmissions;

    /// @notice Optional transmitter allowlist (off by default: anyone may transmit).
    bool public transmitterAllowlistEnabled;
    mapping(address => bool) public isTransmitter;

    event NewTransmission(
        uint32 indexed aggregatorRoundId,
        int192 answer,
        address transmitter,
        int192[] observations,
        bytes observers,
        bytes32 rawReportContext
    );

    constructor(int192 minAnswer_, int192 maxAnswer_, uint8 decimals_, string memory description_) {
        minAnswer = minAnswer_;
        maxAnswer = maxAnswer_;
        decimals = decimals_;
        s_description = description_;
    }

    function typeAndVersion() external pure returns (string memory) {
        return "AccessControlledOffchainAggregator 4.0.0";
    }

    function setTransmitters(address[] calldata transmitters, bool allowlistEnabled) external onlyOwner {
        for (uint256 i = 0; i < transmitters.length; i++) {
            isTransmitter[transmitters[i]] = true;
        }
        transmitterAllowlistEnabled = allowlistEnabled;
    }

    function transmit(int192[] calldata observations) external {
        if (transmitterAllowlistEnabled) {
            require(isTransmitter[msg.sender], "unauthorized transmitter");
        }
        uint256 n = observations.length;
        require(n <= MAX_NUM_ORACLES, "num observations out of bounds");
        require(n > 0, "too few values to trust median");

        (int192[] memory sorted, bytes memory observers) = Observations.sortWithObservers(observations);
        int192 median = sorted[n / 2];
        require(minAnswer <= median && median <= maxAnswer, "median is out of min-max range");

        uint32 roundId = s_latestAggregatorRoundId + 1;
        s_latestAggregatorRoundId = roundId;
        s_transmissions[roundId] = Transmission(median, uint64(block.timestamp));

        emit NewTransmission(roundId, median, msg.sender, sorted, observers, _reportContext(roundId));
        // legacy events, for consumers that only know FluxAggregator-era logs
        emit NewRound(roundId, address(0x0), block.timestamp);
        emit AnswerUpdated(median, roundId, block.timestamp);
    }

    // ----- v2 interface -----

    function latestAnswer() public view override returns (int256) {
        return s_transmissions[s_latestAggregatorRoundId].answer;
    }

    function latestTimestamp() public view override returns (uint256) {
        return s_transmissions[s_latestAggregatorRoundId].timestamp;
    }

    function latestRound() public view override returns (uint256) {
        return s_latestAggregatorRoundId;
    }

    function getAnswer(uint256 roundId) public view override returns (int256) {
        if (roundId > 0xFFFFFFFF) return 0;
        return s_transmissions[uint32(roundId)].answer;
    }

    function getTimestamp(uint256 roundId) public view override returns (uint256) {
        if (roundId > 0xFFFFFFFF) return 0;
        return s_transmissions[uint32(roundId)].timestamp;
    }

    // ----- v3 interface -----

    function description() public view override returns (string memory) {
        return s_description;
    }

    /// @notice Unknown (never transmitted) rounds return zeros; ids above uint32 revert.
    function getRoundData(uint80 roundId)
        public
        view
        override
        returns (uint80 roundId_, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        require(roundId <= 0xFFFFFFFF, V3_NO_DATA_ERROR);
        Transmission memory t = s_transmissions[uint32(roundId)];
        return (roundId, t.answer, t.timestamp, t.timestamp, roundId);
    }

    /// @notice Never reverts, even before the first transmission (all zeros then), like upstream.
    function latestRoundData()
        public
        view
        override
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        roundId = s_latestAggregatorRoundId;
        Transmission memory t = s_transmissions[uint32(roundId)];
        return (roundId, t.answer, t.timestamp, t.timestamp, roundId);
    }

    // ----- internals -----

    function _reportContext(uint32 roundId) internal view returns (bytes32) {
        bytes16 configDigest = bytes16(keccak256(abi.encode(address(this))));
        uint40 epochAndRound = (uint40(roundId) << 8) | 1;
        return bytes32((uint256(uint128(configDigest)) << 40) | uint256(epochAndRound));
    }
}
