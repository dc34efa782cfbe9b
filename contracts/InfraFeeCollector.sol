// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

import {IInfraFeeCollector} from "./interfaces/IInfraFeeCollector.sol";
import {ReceiveAuthorization, PermitSignature} from "./interfaces/ITokenAuthorizations.sol";
import {TokenPull} from "./libraries/TokenPull.sol";

/// @title InfraFeeCollector
/// @notice See {IInfraFeeCollector}.
contract InfraFeeCollector is IInfraFeeCollector, EIP712, Ownable2Step {
    using SafeERC20 for IERC20;

    /// @notice EIP-712 type whose digest is the buyer's EIP-3009 nonce for an agreement's fee.
    bytes32 public constant INFRA_FEE_TYPEHASH = keccak256("InfraFee(bytes32 agreementId,uint256 amount)");

    /// @inheritdoc IInfraFeeCollector
    address public immutable ESCROW;

    /// @inheritdoc IInfraFeeCollector
    address public treasury;

    /// @param escrow The escrow allowed to trigger collections (its address may be predicted: the
    ///        escrow's constructor checks that it is bound to this contract).
    /// @param initialOwner The admin, who can change the treasury (two-step transfer).
    /// @param initialTreasury Where swept fees go.
    constructor(address escrow, address initialOwner, address initialTreasury)
        EIP712("Pactum Infra Fee", "1")
        Ownable(initialOwner)
    {
        if (escrow == address(0) || initialTreasury == address(0)) revert ZeroAddress();
        ESCROW = escrow;
        treasury = initialTreasury;
        emit TreasuryUpdated(address(0), initialTreasury);
    }

    modifier onlyEscrow() {
        if (msg.sender != ESCROW) revert OnlyEscrow(msg.sender);
        _;
    }

    /// @inheritdoc IInfraFeeCollector
    function feeAuthorizationNonce(bytes32 agreementId, uint256 amount) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(INFRA_FEE_TYPEHASH, agreementId, amount)));
    }

    /// @inheritdoc IInfraFeeCollector
    function collectWithAuthorization(
        bytes32 agreementId,
        address buyer,
        address token,
        uint256 amount,
        ReceiveAuthorization calldata authorization
    ) external onlyEscrow {
        TokenPull.pullWithAuthorization(token, buyer, amount, feeAuthorizationNonce(agreementId, amount), authorization);
        // Only the escrow calls this, under its reentrancy guard; nothing here can be re-entered.
        // slither-disable-next-line reentrancy-events
        emit InfraFeeCollected(agreementId, buyer, token, amount);
    }

    /// @inheritdoc IInfraFeeCollector
    function collectWithPermit(
        bytes32 agreementId,
        address buyer,
        address token,
        uint256 amount,
        PermitSignature calldata permit
    ) external onlyEscrow {
        TokenPull.pullWithPermit(token, buyer, amount, permit);
        // Only the escrow calls this, under its reentrancy guard; nothing here can be re-entered.
        // slither-disable-next-line reentrancy-events
        emit InfraFeeCollected(agreementId, buyer, token, amount);
    }

    /// @inheritdoc IInfraFeeCollector
    function sweep(address token) external returns (uint256 amount) {
        amount = IERC20(token).balanceOf(address(this));
        // A guard against an empty sweep, not a security decision: dust sent here is simply swept.
        // slither-disable-next-line incorrect-equality
        if (amount == 0) revert NothingToSweep(token);
        address to = treasury;
        emit FeesSwept(token, to, amount);
        IERC20(token).safeTransfer(to, amount);
    }

    /// @inheritdoc IInfraFeeCollector
    function setTreasury(address newTreasury) external onlyOwner {
        if (newTreasury == address(0)) revert ZeroAddress();
        address previous = treasury;
        treasury = newTreasury;
        emit TreasuryUpdated(previous, newTreasury);
    }
}
