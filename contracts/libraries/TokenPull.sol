// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IERC3009} from "../interfaces/IERC3009.sol";
import {IERC20PermitBytes} from "../interfaces/IERC20PermitBytes.sol";
import {ReceiveAuthorization, PermitSignature, ITokenAuthorizations} from "../interfaces/ITokenAuthorizations.sol";

/// @title TokenPull
/// @notice Moves an amount from a payer into the calling contract on the payer's signature.
/// @dev Callers whose accounting depends on the amount received wrap a pull in `balanceOf(this)`
///      before and after and call `checkReceived` (the escrow does, for deposits).
library TokenPull {
    /// @notice Pulls `amount` with the payer's EIP-3009 `ReceiveWithAuthorization` for `nonce`.
    /// @dev `receiveWithAuthorization` can only be called by its payee, so nobody can consume the
    ///      authorization in a way that makes this call fail, except by doing exactly this call.
    function pullWithAuthorization(
        address token,
        address from,
        uint256 amount,
        bytes32 nonce,
        ReceiveAuthorization calldata auth
    ) internal {
        IERC3009(token)
            .receiveWithAuthorization(
                from, address(this), amount, auth.validAfter, auth.validBefore, nonce, auth.signature
            );
    }

    /// @notice Pulls `amount` after attempting the payer's EIP-2612 permit.
    /// @dev The permit is wrapped in try/catch: anyone can submit a permit they saw in the mempool
    ///      first, which makes ours revert although the allowance is in place. The allowance decides.
    function pullWithPermit(address token, address from, uint256 amount, PermitSignature calldata permit) internal {
        bytes calldata sig = permit.signature;
        if (sig.length == 65) {
            bytes32 r;
            bytes32 s;
            uint8 v;
            // Split (r, s, v) straight from calldata.
            // slither-disable-next-line assembly
            assembly ("memory-safe") {
                r := calldataload(sig.offset)
                s := calldataload(add(sig.offset, 0x20))
                v := byte(0, calldataload(add(sig.offset, 0x40)))
            }
            try IERC20Permit(token).permit(from, address(this), amount, permit.deadline, v, r, s) {} catch {}
        } else if (sig.length != 0) {
            try IERC20PermitBytes(token).permit(from, address(this), amount, permit.deadline, sig) {} catch {}
        }
        uint256 allowance = IERC20(token).allowance(from, address(this));
        if (allowance < amount) {
            revert ITokenAuthorizations.InsufficientAllowance(token, from, allowance, amount);
        }
        // `from` is never caller-chosen: the escrow passes the buyer whose signature over the terms it
        // has just verified, and the fee collector accepts calls only from that escrow.
        // slither-disable-next-line arbitrary-send-erc20-permit,arbitrary-send-erc20
        SafeERC20.safeTransferFrom(IERC20(token), from, address(this), amount);
    }

    /// @notice Reverts unless this contract's balance of `token` grew by exactly `expected` since
    ///         `balanceBefore` (catches fee-on-transfer and rebasing tokens).
    function checkReceived(address token, uint256 balanceBefore, uint256 expected) internal view {
        uint256 balanceAfter = IERC20(token).balanceOf(address(this));
        // A token that lowers our balance during a transfer in is reported as having delivered zero.
        uint256 received = balanceAfter > balanceBefore ? balanceAfter - balanceBefore : 0;
        if (received != expected) revert ITokenAuthorizations.ReceivedAmountMismatch(token, expected, received);
    }
}
