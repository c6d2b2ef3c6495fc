// SPDX-License-Identifier: MIT
pragma solidity ^0.8.10;

// The parts of an Aave v3 market that gho-core's GhoVariableDebtToken (tests/contracts/gho-core,
// vendored unchanged from aave/gho-core @ 51be447) calls, so the real token can run on anvil:
// its pool (onlyPool mint/burn, getReserveNormalizedVariableDebt, ADDRESSES_PROVIDER), the
// addresses provider's ACL manager (onlyPoolAdmin setters) and the discount token (stkAAVE:
// balanceOf, and the updateDiscountDistribution hook of its transfers). Nothing else of the
// market is modelled: the index is whatever the test sets.

interface IGhoDebtTokenLike {
  function mint(address user, address onBehalfOf, uint256 amount, uint256 index) external returns (bool, uint256);

  function burn(address from, uint256 amount, uint256 index) external returns (uint256);

  function updateDiscountDistribution(
    address sender,
    address recipient,
    uint256 senderDiscountTokenBalance,
    uint256 recipientDiscountTokenBalance,
    uint256 amount
  ) external;
}

contract GhoHarnessAclManager {
  function isPoolAdmin(address) external pure returns (bool) {
    return true;
  }
}

contract GhoHarnessAddressesProvider {
  address public immutable aclManager;

  constructor() {
    aclManager = address(new GhoHarnessAclManager());
  }

  function getACLManager() external view returns (address) {
    return aclManager;
  }
}

contract GhoHarnessPool {
  address public immutable ADDRESSES_PROVIDER;
  uint256 public index = 1e27;

  constructor() {
    ADDRESSES_PROVIDER = address(new GhoHarnessAddressesProvider());
  }

  function setIndex(uint256 newIndex) external {
    index = newIndex;
  }

  function getReserveNormalizedVariableDebt(address) external view returns (uint256) {
    return index;
  }

  // as the pool's BorrowLogic / LiquidationLogic call the variable debt token, at the index set
  function borrow(address token, address user, uint256 amount) external {
    IGhoDebtTokenLike(token).mint(user, user, amount, index);
  }

  function repay(address token, address user, uint256 amount) external {
    IGhoDebtTokenLike(token).burn(user, amount, index);
  }
}

// stkAAVE's part: balances, and StakedTokenV3._transfer's hook (balances before the transfer)
contract GhoHarnessDiscountToken {
  mapping(address => uint256) public balanceOf;
  address public ghoDebtToken;

  function setGhoDebtToken(address token) external {
    ghoDebtToken = token;
  }

  function setBalance(address user, uint256 amount) external {
    balanceOf[user] = amount;
  }

  function transfer(address from, address to, uint256 amount) external {
    uint256 fromBalance = balanceOf[from];
    uint256 toBalance = balanceOf[to];
    IGhoDebtTokenLike(ghoDebtToken).updateDiscountDistribution(from, to, fromBalance, toBalance, amount);
    balanceOf[from] = fromBalance - amount;
    balanceOf[to] += amount;
  }
}
