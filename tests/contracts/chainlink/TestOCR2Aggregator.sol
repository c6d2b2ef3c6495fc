// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AggregatorV2V3Interface, Observations, Owned} from "./ChainlinkCommon.sol";

/// @title Test stand-in for an OCR2 aggregator (libocr contract2/OCR2Aggregator.sol).
/// @notice Same simplifications as TestOCRAggregator (observations passed directly, sorted by
/// the contract, no signatures or billing). OCR2 specifics kept from upstream:
///  - rounds store the answer, the off-chain observationsTimestamp and the transmission
///    (block) timestamp; startedAt = observationsTimestamp, updatedAt = block timestamp;
///  - NewRound's startedAt is the observationsTimestamp; AnswerUpdated's updatedAt is
///    block.timestamp;
///  - getRoundData of an id above uint32 returns all zeros instead of reverting.
/// configDigest = keccak256(address(this), chainid) with the 2-byte prefix 0x0001;
/// epochAndRound = (roundId << 8) | 1.
contract TestOCR2Aggregator is Owned, AggregatorV2V3Interface {
    struct Transmission {
        int192 answer;
        uint32 observationsTimestamp;
        uint32 transmissionTimestamp;
    }

    uint256 private constant MAX_NUM_ORACLES = 31;

    int192 public immutable minAnswer;
    int192 public immutable maxAnswer;
    uint8 public immutable override decimals;
    uint256 public constant override version = 6;

    string internal s_description;
    uint32 internal s_latestAggregatorRoundId;
    mapping(uint32 => Transmission) internal s_transmissions;

    bool public transmitterAllowlistEnabled;
    mapping(address => bool) public isTransmitter;

    event NewTransmission(
        uint32 indexed aggregatorRoundId,
        int192 answer,
        address transmitter,
        uint32 observationsTimestamp,
        int192[] observations,
        bytes observers,
        int192 juelsPerFeeCoin,
        bytes32 configDigest,
        uint40 epochAndRound
    );

    constructor(int192 minAnswer_, int192 maxAnswer_, uint8 decimals_, string memory description_) {
        minAnswer = minAnswer_;
        maxAnswer = maxAnswer_;
        decimals = decimals_;
        s_description = description_;
    }

    function typeAndVersion() external pure returns (string memory) {
        return "AccessControlledOCR2Aggregator 1.0.0";
    }

    function setTransmitters(address[] calldata transmitters, bool allowlistEnabled) external onlyOwner {
        for (uint256 i = 0; i < transmitters.length; i++) {
            isTransmitter[transmitters[i]] = true;
        }
        transmitterAllowlistEnabled = allowlistEnabled;
    }

    /// @notice Report observed "now": observationsTimestamp = block timestamp, juelsPerFeeCoin = 0.
    function transmit(int192[] calldata observations) external {
        _transmit(uint32(block.timestamp), observations, 0);
    }

    function transmit(uint32 observationsTimestamp, int192[] calldata observations, int192 juelsPerFeeCoin)
        external
    {
        _transmit(observationsTimestamp, observations, juelsPerFeeCoin);
    }

    function latestConfigDigestAndEpoch() external view returns (bool scanLogs, bytes32 configDigest, uint32 epoch) {
        return (false, _configDigest(), s_latestAggregatorRoundId);
    }

    // ----- v2 interface -----

    function latestAnswer() public view override returns (int256) {
        return s_transmissions[s_latestAggregatorRoundId].answer;
    }

    function latestTimestamp() public view override returns (uint256) {
        return s_transmissions[s_latestAggregatorRoundId].transmissionTimestamp;
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
        return s_transmissions[uint32(roundId)].transmissionTimestamp;
    }

    // ----- v3 interface -----

    function description() public view override returns (string memory) {
        return s_description;
    }

    function getRoundData(uint80 roundId)
        public
        view
        override
        returns (uint80 roundId_, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        if (roundId > type(uint32).max) return (0, 0, 0, 0, 0);
        Transmission memory t = s_transmissions[uint32(roundId)];
        return (roundId, t.answer, t.observationsTimestamp, t.transmissionTimestamp, roundId);
    }

    function latestRoundData()
        public
        view
        override
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        uint32 latest = s_latestAggregatorRoundId;
        Transmission memory t = s_transmissions[latest];
        return (latest, t.answer, t.observationsTimestamp, t.transmissionTimestamp, latest);
    }

    // ----- internals -----

    function _transmit(uint32 observationsTimestamp, int192[] calldata observations, int192 juelsPerFeeCoin)
        internal
    {
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
        s_transmissions[roundId] = Transmission({
            answer: median,
            observationsTimestamp: observationsTimestamp,
            transmissionTimestamp: uint32(block.timestamp)
        });

        emit NewTransmission(
            roundId,
            median,
            msg.sender,
            observationsTimestamp,
            sorted,
            observers,
            juelsPerFeeCoin,
            _configDigest(),
            (uint40(roundId) << 8) | 1
        );
        emit NewRound(roundId, address(0x0), observationsTimestamp);
        emit AnswerUpdated(median, roundId, block.timestamp);
    }

    function _configDigest() internal view returns (bytes32) {
        uint256 h = uint256(keccak256(abi.encode(address(this), block.chainid)));
        uint256 prefixMask = type(uint256).max << (256 - 16);
        return bytes32((0x0001 << (256 - 16)) | (h & ~prefixMask));
    }
}
