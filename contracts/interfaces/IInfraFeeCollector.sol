// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ReceiveAuthorization, PermitSignature, ITokenAuthorizations} from "./ITokenAuthorizations.sol";

/// @title IInfraFeeCollector
/// @notice Collects the platform (infrastructure) fee of a usage agreement from its buyer, through the
///         buyer's own token authorization, atomically with the agreement's activation.
///
///         It is a separate contract from the escrow, bound to exactly one escrow at deployment:
///         only that escrow can trigger a collection, and it does so only inside an activation, so
///         a fee is collected at most once per agreement and never without the agreement being funded.
///         The amount is the one the buyer signed (EIP-3009 moves exactly the signed value; the
///         permit path moves the agreed `infraFee` the buyer signed in the escrow's terms). It
///         does not re-measure what arrived: the escrow has just verified, in the same transaction,
///         that the same token delivered the exact deposit (fee-on-transfer tokens are refused there).
///
///         Its owner (two-step ownership) can only change the treasury that swept fees go to. It has
///         no function that touches the escrow or any balance other than this contract's own fees.
interface IInfraFeeCollector is ITokenAuthorizations {
    /// @notice A fee was collected for an agreement.
    /// @param agreementId The escrow agreement the fee belongs to.
    /// @param buyer Who paid it.
    /// @param token The token it was paid in.
    /// @param amount The amount collected.
    event InfraFeeCollected(bytes32 indexed agreementId, address indexed buyer, address indexed token, uint256 amount);

    /// @notice The treasury changed.
    event TreasuryUpdated(address indexed previousTreasury, address indexed newTreasury);

    /// @notice Collected fees were moved to the treasury.
    event FeesSwept(address indexed token, address indexed treasury, uint256 amount);

    /// @notice Only the bound escrow may trigger a collection.
    error OnlyEscrow(address caller);
    /// @notice A required address is zero.
    error ZeroAddress();
    /// @notice There is nothing to sweep for this token.
    error NothingToSweep(address token);

    /// @notice The only escrow allowed to trigger collections; fixed at deployment.
    function ESCROW() external view returns (address);

    /// @notice Where swept fees go.
    function treasury() external view returns (address);

    /// @notice The EIP-3009 nonce the buyer uses for an agreement's fee authorization: the EIP-712
    ///         digest of `InfraFee(agreementId, amount)` under this contract's domain. The token burns
    ///         it on use, which is what makes a fee collectible at most once per agreement.
    function feeAuthorizationNonce(bytes32 agreementId, uint256 amount) external view returns (bytes32);

    /// @notice Collects `amount` from `buyer` with its EIP-3009 `ReceiveWithAuthorization` (to = this
    ///         contract, nonce = `feeAuthorizationNonce(agreementId, amount)`). Escrow only.
    function collectWithAuthorization(
        bytes32 agreementId,
        address buyer,
        address token,
        uint256 amount,
        ReceiveAuthorization calldata authorization
    ) external;

    /// @notice Collects `amount` from `buyer` with an EIP-2612 permit (or an existing allowance). Escrow
    ///         only; the escrow has verified the buyer's signature over terms that include `amount`.
    function collectWithPermit(
        bytes32 agreementId,
        address buyer,
        address token,
        uint256 amount,
        PermitSignature calldata permit
    ) external;

    /// @notice Moves this contract's whole balance of `token` to the treasury. Anyone may call it.
    /// @return amount The amount swept.
    function sweep(address token) external returns (uint256 amount);

    /// @notice Changes the treasury. Owner only.
    function setTreasury(address newTreasury) external;
}
