// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AggregatorV2V3Interface, Owned} from "./ChainlinkCommon.sol";

/// @title Test stand-in for Chainlink's AggregatorProxy / EACAggregatorProxy (no access control).
/// @notice Behaviour reproduced for the ingestor's tests:
///  - every aggregator the proxy ever pointed to is a *phase*; phase ids start at 1 and the
///    constructor's aggregator is phase 1;
///  - round ids seen through the proxy are `(phaseId << 64) | aggregatorRoundId` (uint80);
///  - `confirmAggregator` bumps the phase and emits NO event (upstream only emits the ownership
///    events), so phases must be discovered with eth_call (`phaseId()`, `phaseAggregators(i)`,
///    `aggregator()` at a block).
contract TestAggregatorProxy is AggregatorV2V3Interface, Owned {
    struct Phase {
        uint16 id;
        AggregatorV2V3Interface aggregator;
    }

    uint256 private constant PHASE_OFFSET = 64;
    uint256 private constant PHASE_SIZE = 16;
    uint256 private constant MAX_ID = 2 ** (PHASE_OFFSET + PHASE_SIZE) - 1;

    Phase private currentPhase;
    AggregatorV2V3Interface public proposedAggregator;
    mapping(uint16 => AggregatorV2V3Interface) public phaseAggregators;

    constructor(address aggregator_) {
        _setAggregator(aggregator_);
    }

    // ----- v2 interface (deprecated upstream, still what Aave's oracle reads) -----

    function latestAnswer() public view override returns (int256 answer) {
        return currentPhase.aggregator.latestAnswer();
    }

    function latestTimestamp() public view override returns (uint256 updatedAt) {
        return currentPhase.aggregator.latestTimestamp();
    }

    /// @notice 0 when the id is too large or its phase is unknown (no revert), like upstream.
    function getAnswer(uint256 roundId) public view override returns (int256 answer) {
        if (roundId > MAX_ID) return 0;
        (uint16 phase, uint64 aggregatorRoundId) = _parseIds(roundId);
        AggregatorV2V3Interface agg = phaseAggregators[phase];
        if (address(agg) == address(0)) return 0;
        return agg.getAnswer(aggregatorRoundId);
    }

    function getTimestamp(uint256 roundId) public view override returns (uint256 updatedAt) {
        if (roundId > MAX_ID) return 0;
        (uint16 phase, uint64 aggregatorRoundId) = _parseIds(roundId);
        AggregatorV2V3Interface agg = phaseAggregators[phase];
        if (address(agg) == address(0)) return 0;
        return agg.getTimestamp(aggregatorRoundId);
    }

    function latestRound() public view override returns (uint256 roundId) {
        Phase memory phase = currentPhase;
        return _addPhase(phase.id, uint64(phase.aggregator.latestRound()));
    }

    // ----- v3 interface -----

    /// @notice Forwards to the aggregator of the phase encoded in `roundId` and re-adds the phase
    /// bits to roundId and answeredInRound.
    function getRoundData(uint80 roundId)
        public
        view
        override
        returns (uint80 roundId_, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        (uint16 phase, uint64 aggregatorRoundId) = _parseIds(roundId);
        (roundId_, answer, startedAt, updatedAt, answeredInRound) =
            phaseAggregators[phase].getRoundData(aggregatorRoundId);
        return _addPhaseIds(roundId_, answer, startedAt, updatedAt, answeredInRound, phase);
    }

    function latestRoundData()
        public
        view
        override
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        Phase memory current = currentPhase;
        (roundId, answer, startedAt, updatedAt, answeredInRound) = current.aggregator.latestRoundData();
        return _addPhaseIds(roundId, answer, startedAt, updatedAt, answeredInRound, current.id);
    }

    function proposedGetRoundData(uint80 roundId)
        external
        view
        hasProposal
        returns (uint80, int256, uint256, uint256, uint80)
    {
        return proposedAggregator.getRoundData(roundId);
    }

    function proposedLatestRoundData()
        external
        view
        hasProposal
        returns (uint80, int256, uint256, uint256, uint80)
    {
        return proposedAggregator.latestRoundData();
    }

    function aggregator() external view returns (address) {
        return address(currentPhase.aggregator);
    }

    function phaseId() external view returns (uint16) {
        return currentPhase.id;
    }

    function decimals() external view override returns (uint8) {
        return currentPhase.aggregator.decimals();
    }

    function version() external view override returns (uint256) {
        return currentPhase.aggregator.version();
    }

    function description() external view override returns (string memory) {
        return currentPhase.aggregator.description();
    }

    // ----- phase management (owner only, silent) -----

    function proposeAggregator(address aggregator_) external onlyOwner {
        proposedAggregator = AggregatorV2V3Interface(aggregator_);
    }

    function confirmAggregator(address aggregator_) external onlyOwner {
        require(aggregator_ == address(proposedAggregator), "Invalid proposed aggregator");
        delete proposedAggregator;
        _setAggregator(aggregator_);
    }

    // ----- internals -----

    function _setAggregator(address aggregator_) internal {
        uint16 id = currentPhase.id + 1;
        currentPhase = Phase(id, AggregatorV2V3Interface(aggregator_));
        phaseAggregators[id] = AggregatorV2V3Interface(aggregator_);
    }

    function _addPhase(uint16 phase, uint64 originalId) internal pure returns (uint80) {
        return uint80((uint256(phase) << PHASE_OFFSET) | originalId);
    }

    function _parseIds(uint256 roundId) internal pure returns (uint16, uint64) {
        return (uint16(roundId >> PHASE_OFFSET), uint64(roundId));
    }

    function _addPhaseIds(
        uint80 roundId,
        int256 answer,
        uint256 startedAt,
        uint256 updatedAt,
        uint80 answeredInRound,
        uint16 phase
    ) internal pure returns (uint80, int256, uint256, uint256, uint80) {
        return (
            _addPhase(phase, uint64(roundId)),
            answer,
            startedAt,
            updatedAt,
            _addPhase(phase, uint64(answeredInRound))
        );
    }

    modifier hasProposal() {
        require(address(proposedAggregator) != address(0), "No proposed aggregator present");
        _;
    }
}
