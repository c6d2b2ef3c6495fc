// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Shared pieces of the test Chainlink feeds.
/// @notice Interface and ownership behaviour modelled on Chainlink's v0.6 `Owned` and
/// `AggregatorV2V3Interface` (smartcontractkit/chainlink contracts/src/v0.6). Written for the
/// deficit test suite: events and selectors match mainnet, internals are simplified.

/// @notice Legacy (v2) + v3 aggregator interface. The v2 half declares the two legacy events,
/// so every contract implementing it (the proxy included) carries them in its ABI, as upstream.
interface AggregatorV2V3Interface {
    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);
    event NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt);

    function latestAnswer() external view returns (int256);
    function latestTimestamp() external view returns (uint256);
    function latestRound() external view returns (uint256);
    function getAnswer(uint256 roundId) external view returns (int256);
    function getTimestamp(uint256 roundId) external view returns (uint256);

    function decimals() external view returns (uint8);
    function description() external view returns (string memory);
    function version() external view returns (uint256);
    function getRoundData(uint80 roundId)
        external
        view
        returns (uint80 roundId_, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
}

/// @notice Two-step ownership like Chainlink's `Owned`: the deployer owns the contract; a
/// transfer is requested by the owner and completed when the new owner accepts it. Nothing is
/// emitted on construction.
abstract contract Owned {
    address public owner;
    address private pendingOwner;

    event OwnershipTransferRequested(address indexed from, address indexed to);
    event OwnershipTransferred(address indexed from, address indexed to);

    constructor() {
        owner = msg.sender;
    }

    function transferOwnership(address to) external onlyOwner {
        pendingOwner = to;
        emit OwnershipTransferRequested(owner, to);
    }

    function acceptOwnership() external {
        require(msg.sender == pendingOwner, "Must be proposed owner");
        address previous = owner;
        owner = msg.sender;
        pendingOwner = address(0);
        emit OwnershipTransferred(previous, msg.sender);
    }

    modifier onlyOwner() {
        require(msg.sender == owner, "Only callable by owner");
        _;
    }
}

/// @notice Helpers for the simplified OCR `transmit(int192[])` of the test aggregators.
library Observations {
    /// @dev Insertion sort (n <= 31); ties keep submission order. observers[i] is the original
    /// index (the "oracle id") of the i-th sorted observation, as in an OCR report.
    function sortWithObservers(int192[] calldata observations)
        internal
        pure
        returns (int192[] memory sorted, bytes memory observers)
    {
        uint256 n = observations.length;
        sorted = new int192[](n);
        observers = new bytes(n);
        for (uint256 i = 0; i < n; i++) {
            int192 v = observations[i];
            uint256 j = i;
            while (j > 0 && sorted[j - 1] > v) {
                sorted[j] = sorted[j - 1];
                observers[j] = observers[j - 1];
                j--;
            }
            sorted[j] = v;
            observers[j] = bytes1(uint8(i));
        }
    }
}
