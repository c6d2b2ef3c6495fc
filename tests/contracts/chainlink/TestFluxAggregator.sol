// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AggregatorV2V3Interface, Owned} from "./ChainlinkCommon.sol";

/// @title Test stand-in for Chainlink's FluxAggregator (contracts/src/v0.6/FluxAggregator.sol),
/// the pre-OCR (2020) aggregator behind e.g. ETH/USD phase 3.
/// @notice Round mechanics are kept: oracles `submit(roundId, value)` to the current reporting
/// round or the next one once the current is supersedable (answered or timed out); the first
/// submission to a new round emits NewRound(roundId, oracle, block.timestamp); once a round has
/// `minSubmissionCount` submissions every further submission recomputes the median and emits
/// AnswerUpdated(median, roundId, block.timestamp). Timed-out rounds inherit the previous answer
/// (answeredInRound < roundId). LINK payments, requesters and the validator hook are left out.
contract TestFluxAggregator is Owned, AggregatorV2V3Interface {
    struct Round {
        int256 answer;
        uint64 startedAt;
        uint64 updatedAt;
        uint32 answeredInRound;
    }

    struct RoundDetails {
        int256[] submissions;
        uint32 maxSubmissions;
        uint32 minSubmissions;
        uint32 timeout;
    }

    struct OracleStatus {
        uint32 startingRound;
        uint32 endingRound;
        uint32 lastReportedRound;
        uint32 lastStartedRound;
        int256 latestSubmission;
        uint16 index;
        address admin;
    }

    uint256 private constant MAX_ORACLE_COUNT = 77;
    uint32 private constant ROUND_MAX = type(uint32).max;
    string private constant V3_NO_DATA_ERROR = "No data present";

    /// @notice Kept for ABI fidelity (emitted in RoundDetailsUpdated); nothing is paid.
    uint128 public paymentAmount;
    uint32 public maxSubmissionCount;
    uint32 public minSubmissionCount;
    uint32 public restartDelay;
    uint32 public timeout;
    uint8 public override decimals;
    string public override description;
    int256 public immutable minSubmissionValue;
    int256 public immutable maxSubmissionValue;
    uint256 public constant override version = 3;

    uint32 private reportingRoundId;
    uint32 internal latestRoundId;
    mapping(address => OracleStatus) private oracles;
    mapping(uint32 => Round) internal rounds;
    mapping(uint32 => RoundDetails) internal details;
    address[] private oracleAddresses;

    event RoundDetailsUpdated(
        uint128 indexed paymentAmount,
        uint32 indexed minSubmissionCount,
        uint32 indexed maxSubmissionCount,
        uint32 restartDelay,
        uint32 timeout
    );
    event OraclePermissionsUpdated(address indexed oracle, bool indexed whitelisted);
    event OracleAdminUpdated(address indexed oracle, address indexed newAdmin);
    event SubmissionReceived(int256 indexed submission, uint32 indexed round, address indexed oracle);

    constructor(
        uint32 timeout_,
        int256 minSubmissionValue_,
        int256 maxSubmissionValue_,
        uint8 decimals_,
        string memory description_
    ) {
        updateFutureRounds(0, 0, 0, 0, timeout_);
        minSubmissionValue = minSubmissionValue_;
        maxSubmissionValue = maxSubmissionValue_;
        decimals = decimals_;
        description = description_;
        rounds[0].updatedAt = uint64(block.timestamp - uint256(timeout_));
    }

    function submit(uint256 roundId, int256 submission) external {
        string memory err = _validateOracleRound(msg.sender, uint32(roundId));
        require(submission >= minSubmissionValue, "value below minSubmissionValue");
        require(submission <= maxSubmissionValue, "value above maxSubmissionValue");
        require(bytes(err).length == 0, err);

        _oracleInitializeNewRound(uint32(roundId));
        _recordSubmission(submission, uint32(roundId));
        _updateRoundAnswer(uint32(roundId));
        _deleteRoundDetails(uint32(roundId));
    }

    function changeOracles(
        address[] calldata removed,
        address[] calldata added,
        address[] calldata addedAdmins,
        uint32 minSubmissions,
        uint32 maxSubmissions,
        uint32 restartDelay_
    ) external onlyOwner {
        for (uint256 i = 0; i < removed.length; i++) {
            _removeOracle(removed[i]);
        }
        require(added.length == addedAdmins.length, "need same oracle and admin count");
        require(uint256(oracleCount()) + added.length <= MAX_ORACLE_COUNT, "max oracles allowed");
        for (uint256 i = 0; i < added.length; i++) {
            _addOracle(added[i], addedAdmins[i]);
        }
        updateFutureRounds(paymentAmount, minSubmissions, maxSubmissions, restartDelay_, timeout);
    }

    function updateFutureRounds(
        uint128 paymentAmount_,
        uint32 minSubmissions,
        uint32 maxSubmissions,
        uint32 restartDelay_,
        uint32 timeout_
    ) public onlyOwner {
        uint32 oracleNum = oracleCount();
        require(maxSubmissions >= minSubmissions, "max must equal/exceed min");
        require(oracleNum >= maxSubmissions, "max cannot exceed total");
        require(oracleNum == 0 || oracleNum > restartDelay_, "delay cannot exceed total");
        if (oracleNum > 0) {
            require(minSubmissions > 0, "min must be greater than 0");
        }
        paymentAmount = paymentAmount_;
        minSubmissionCount = minSubmissions;
        maxSubmissionCount = maxSubmissions;
        restartDelay = restartDelay_;
        timeout = timeout_;
        emit RoundDetailsUpdated(paymentAmount_, minSubmissions, maxSubmissions, restartDelay_, timeout_);
    }

    function oracleCount() public view returns (uint8) {
        return uint8(oracleAddresses.length);
    }

    function getOracles() external view returns (address[] memory) {
        return oracleAddresses;
    }

    function getAdmin(address oracle) external view returns (address) {
        return oracles[oracle].admin;
    }

    // ----- v2 interface -----

    function latestAnswer() public view override returns (int256) {
        return rounds[latestRoundId].answer;
    }

    function latestTimestamp() public view override returns (uint256) {
        return rounds[latestRoundId].updatedAt;
    }

    function latestRound() public view override returns (uint256) {
        return latestRoundId;
    }

    function getAnswer(uint256 roundId) public view override returns (int256) {
        if (_validRoundId(roundId)) return rounds[uint32(roundId)].answer;
        return 0;
    }

    function getTimestamp(uint256 roundId) public view override returns (uint256) {
        if (_validRoundId(roundId)) return rounds[uint32(roundId)].updatedAt;
        return 0;
    }

    // ----- v3 interface -----

    /// @notice Reverts "No data present" for rounds that never got an answer (unlike OCR).
    function getRoundData(uint80 roundId)
        public
        view
        override
        returns (uint80 roundId_, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        Round memory r = rounds[uint32(roundId)];
        require(r.answeredInRound > 0 && _validRoundId(roundId), V3_NO_DATA_ERROR);
        return (roundId, r.answer, r.startedAt, r.updatedAt, r.answeredInRound);
    }

    function latestRoundData()
        public
        view
        override
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        return getRoundData(latestRoundId);
    }

    // ----- internals (same decisions as upstream, minus payments) -----

    function _initializeNewRound(uint32 roundId) private {
        _updateTimedOutRoundInfo(roundId - 1);
        reportingRoundId = roundId;
        RoundDetails storage d = details[roundId];
        delete d.submissions;
        d.maxSubmissions = maxSubmissionCount;
        d.minSubmissions = minSubmissionCount;
        d.timeout = timeout;
        rounds[roundId].startedAt = uint64(block.timestamp);
        emit NewRound(roundId, msg.sender, rounds[roundId].startedAt);
    }

    function _oracleInitializeNewRound(uint32 roundId) private {
        if (!_newRound(roundId)) return;
        uint256 lastStarted = oracles[msg.sender].lastStartedRound;
        if (roundId <= lastStarted + restartDelay && lastStarted != 0) return;
        _initializeNewRound(roundId);
        oracles[msg.sender].lastStartedRound = roundId;
    }

    function _updateTimedOutRoundInfo(uint32 roundId) private {
        if (!_timedOut(roundId)) return;
        uint32 prevId = roundId - 1;
        rounds[roundId].answer = rounds[prevId].answer;
        rounds[roundId].answeredInRound = rounds[prevId].answeredInRound;
        rounds[roundId].updatedAt = uint64(block.timestamp);
        delete details[roundId];
    }

    function _updateRoundAnswer(uint32 roundId) private {
        if (details[roundId].submissions.length < details[roundId].minSubmissions) return;
        int256 newAnswer = _median(details[roundId].submissions);
        rounds[roundId].answer = newAnswer;
        rounds[roundId].updatedAt = uint64(block.timestamp);
        rounds[roundId].answeredInRound = roundId;
        latestRoundId = roundId;
        emit AnswerUpdated(newAnswer, roundId, block.timestamp);
    }

    function _recordSubmission(int256 submission, uint32 roundId) private {
        require(_acceptingSubmissions(roundId), "round not accepting submissions");
        details[roundId].submissions.push(submission);
        oracles[msg.sender].lastReportedRound = roundId;
        oracles[msg.sender].latestSubmission = submission;
        emit SubmissionReceived(submission, roundId, msg.sender);
    }

    function _deleteRoundDetails(uint32 roundId) private {
        if (details[roundId].submissions.length < details[roundId].maxSubmissions) return;
        delete details[roundId];
    }

    function _timedOut(uint32 roundId) private view returns (bool) {
        uint64 startedAt = rounds[roundId].startedAt;
        uint32 roundTimeout = details[roundId].timeout;
        return startedAt > 0 && roundTimeout > 0 && startedAt + roundTimeout < block.timestamp;
    }

    function _getStartingRound(address oracle) private view returns (uint32) {
        uint32 currentRound = reportingRoundId;
        if (currentRound != 0 && currentRound == oracles[oracle].endingRound) return currentRound;
        return currentRound + 1;
    }

    function _previousAndCurrentUnanswered(uint32 roundId, uint32 rrId) private view returns (bool) {
        return roundId + 1 == rrId && rounds[rrId].updatedAt == 0;
    }

    function _addOracle(address oracle, address admin) private {
        require(!_oracleEnabled(oracle), "oracle already enabled");
        require(admin != address(0), "cannot set admin to 0");
        require(
            oracles[oracle].admin == address(0) || oracles[oracle].admin == admin, "owner cannot overwrite admin"
        );
        oracles[oracle].startingRound = _getStartingRound(oracle);
        oracles[oracle].endingRound = ROUND_MAX;
        oracles[oracle].index = uint16(oracleAddresses.length);
        oracleAddresses.push(oracle);
        oracles[oracle].admin = admin;
        emit OraclePermissionsUpdated(oracle, true);
        emit OracleAdminUpdated(oracle, admin);
    }

    function _removeOracle(address oracle) private {
        require(_oracleEnabled(oracle), "oracle not enabled");
        oracles[oracle].endingRound = reportingRoundId + 1;
        address tail = oracleAddresses[uint256(oracleCount()) - 1];
        uint16 index = oracles[oracle].index;
        oracles[tail].index = index;
        delete oracles[oracle].index;
        oracleAddresses[index] = tail;
        oracleAddresses.pop();
        emit OraclePermissionsUpdated(oracle, false);
    }

    function _validateOracleRound(address oracle, uint32 roundId) private view returns (string memory) {
        uint32 startingRound = oracles[oracle].startingRound;
        uint32 rrId = reportingRoundId;
        if (startingRound == 0) return "not enabled oracle";
        if (startingRound > roundId) return "not yet enabled oracle";
        if (oracles[oracle].endingRound < roundId) return "no longer allowed oracle";
        if (oracles[oracle].lastReportedRound >= roundId) return "cannot report on previous rounds";
        if (roundId != rrId && roundId != rrId + 1 && !_previousAndCurrentUnanswered(roundId, rrId)) {
            return "invalid round to report";
        }
        if (roundId != 1 && !_supersedable(roundId - 1)) return "previous round not supersedable";
        return "";
    }

    function _supersedable(uint32 roundId) private view returns (bool) {
        return rounds[roundId].updatedAt > 0 || _timedOut(roundId);
    }

    function _oracleEnabled(address oracle) private view returns (bool) {
        return oracles[oracle].endingRound == ROUND_MAX;
    }

    function _acceptingSubmissions(uint32 roundId) private view returns (bool) {
        return details[roundId].maxSubmissions != 0;
    }

    function _newRound(uint32 roundId) private view returns (bool) {
        return roundId == reportingRoundId + 1;
    }

    function _validRoundId(uint256 roundId) private pure returns (bool) {
        return roundId <= ROUND_MAX;
    }

    /// @dev Median of the submissions so far: middle element, or for an even count the mean of
    /// the two middle elements rounded toward zero (Chainlink's Median + SignedSafeMath.avg).
    function _median(int256[] storage submissions) private view returns (int256) {
        uint256 n = submissions.length;
        int256[] memory s = new int256[](n);
        for (uint256 i = 0; i < n; i++) {
            int256 v = submissions[i];
            uint256 j = i;
            while (j > 0 && s[j - 1] > v) {
                s[j] = s[j - 1];
                j--;
            }
            s[j] = v;
        }
        if (n % 2 == 1) return s[n / 2];
        int256 a = s[n / 2 - 1];
        int256 b = s[n / 2];
        return a / 2 + b / 2 + (a % 2 + b % 2) / 2;
    }
}
