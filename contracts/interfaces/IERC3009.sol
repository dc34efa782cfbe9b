// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IERC3009
/// @notice The parts of EIP-3009 ("transfer with authorization") the escrow and the fee collector use,
///         in the form USDC v2.2 exposes them: the signature is passed as `bytes`, so the token can
///         verify ECDSA signatures of EOAs and ERC-1271 signatures of smart-contract wallets alike.
interface IERC3009 {
    /// @notice Moves `value` from `from` to `to` on `from`'s signed authorization. Only `to` may call it,
    ///         which is what makes it immune to front-running: nobody else can consume the authorization.
    /// @param from        The payer, who signed `ReceiveWithAuthorization` under the token's EIP-712 domain.
    /// @param to          The payee; must be `msg.sender`.
    /// @param value       The exact amount moved.
    /// @param validAfter  The authorization is valid strictly after this timestamp.
    /// @param validBefore The authorization is valid strictly before this timestamp.
    /// @param nonce       A 32-byte single-use key chosen by the payer.
    /// @param signature   The payer's signature (65-byte ECDSA or an ERC-1271 blob).
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external;

    /// @notice Whether `authorizer` has used or cancelled `nonce`.
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
}
