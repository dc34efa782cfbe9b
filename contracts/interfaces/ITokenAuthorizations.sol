// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @notice A buyer's EIP-3009 `ReceiveWithAuthorization`, signed under the token's EIP-712 domain.
/// @dev The `from`, `to`, `value` and `nonce` fields of the signed message are not carried here: the
///      receiving contract fills them in from the agreement (buyer, itself, the agreed amount, and a
///      nonce derived from the agreement id), so a submitter cannot choose them.
struct ReceiveAuthorization {
    /// @notice The authorization is valid strictly after this timestamp.
    uint256 validAfter;
    /// @notice The authorization is valid strictly before this timestamp (the activation deadline).
    uint256 validBefore;
    /// @notice The buyer's signature: 65-byte ECDSA (r, s, v) for an EOA, anything for an ERC-1271 wallet.
    bytes signature;
}

/// @notice A buyer's EIP-2612 permit for exactly the agreed amount, spender being the receiving contract.
/// @dev The permit is attempted and its failure ignored (it may have been front-run, or the buyer may
///      have approved beforehand); what matters is the allowance afterwards. An empty signature skips it.
struct PermitSignature {
    /// @notice The permit's deadline.
    uint256 deadline;
    /// @notice 65-byte ECDSA for the standard `permit(..., v, r, s)`, otherwise passed to the USDC v2.2
    ///         `permit(..., bytes)` variant (ERC-1271 wallets); empty to rely on an existing allowance.
    bytes signature;
}

/// @title ITokenAuthorizations
/// @notice Errors shared by every contract that pulls tokens from a buyer on the buyer's signature.
interface ITokenAuthorizations {
    /// @notice After the (possibly front-run or skipped) permit, the allowance still does not cover `required`.
    error InsufficientAllowance(address token, address owner, uint256 allowance, uint256 required);

    /// @notice The token moved a different amount than agreed (fee-on-transfer or rebasing token).
    error ReceivedAmountMismatch(address token, uint256 expected, uint256 received);
}
