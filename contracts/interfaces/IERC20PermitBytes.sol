// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IERC20PermitBytes
/// @notice The EIP-2612 `permit` variant of USDC v2.2 that takes the signature as `bytes`, so a
///         smart-contract wallet (ERC-1271) can grant an allowance by signature too.
interface IERC20PermitBytes {
    function permit(address owner, address spender, uint256 value, uint256 deadline, bytes calldata signature) external;
}
