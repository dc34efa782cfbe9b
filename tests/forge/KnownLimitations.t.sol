// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {AgreementEscrow} from "../../contracts/AgreementEscrow.sol";
import {InfraFeeCollector} from "../../contracts/InfraFeeCollector.sol";
import {IAgreementEscrow} from "../../contracts/interfaces/IAgreementEscrow.sol";
import {IInfraFeeCollector} from "../../contracts/interfaces/IInfraFeeCollector.sol";
import {
    ITokenAuthorizations,
    ReceiveAuthorization,
    PermitSignature
} from "../../contracts/interfaces/ITokenAuthorizations.sol";
import {MockSanctionsOracle} from "./mocks/MockSanctionsOracle.sol";

/// @notice A token anyone can deploy: "authorizations" need no signature at all.
contract AttackerToken {
    mapping(address => uint256) public balanceOf;

    function receiveWithAuthorization(address, address to, uint256 value, uint256, uint256, bytes32, bytes calldata)
        external
    {
        balanceOf[to] += value;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        balanceOf[msg.sender] -= value;
        balanceOf[to] += value;
        return true;
    }
}

/// @notice Pins the behaviours docs/design.md lists under "Known limitations" (found in the
///         adversarial review of the contracts), so that any change to them is deliberate.
contract KnownLimitationsTest is EscrowFixture {
    PermitSignature internal noPermit;

    // ---------------------------------------------------------------------------------------------
    // Two outstanding deposit permits for the same spender (two agreements in flight): anyone can
    // submit both to the token; USDC's permit overwrites the allowance, so activation A is blocked
    // until the buyer signs again. One outstanding permit per spender, or EIP-3009, avoids it.
    // ---------------------------------------------------------------------------------------------
    function test_twoOutstandingPermits_canBeReplayedToBlockTheFirstActivation() public {
        IAgreementEscrow.Agreement memory a = terms(MAX_AMOUNT, 0);
        IAgreementEscrow.Agreement memory b = terms(MAX_AMOUNT / 2, 0);
        uint256 deadline = block.timestamp + 1 hours;
        PermitSignature memory permitA = permitSignature(BUYER_KEY, address(escrow), a.maxAmount, deadline);
        // The buyer's wallet signs B's permit with the next nonce.
        PermitSignature memory permitB = _permitAtNonce(b.maxAmount, usdc.nonces(buyer) + 1, deadline);
        bytes memory sigA = activationSignature(BUYER_KEY, a, deadline);

        // Griefer submits both permits in order, directly to the token.
        vm.startPrank(stranger);
        usdc.permit(buyer, address(escrow), a.maxAmount, deadline, permitA.signature);
        usdc.permit(buyer, address(escrow), b.maxAmount, deadline, permitB.signature);
        vm.stopPrank();

        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITokenAuthorizations.InsufficientAllowance.selector, address(usdc), buyer, b.maxAmount, a.maxAmount
            )
        );
        escrow.activateWithPermit(a, deadline, sigA, permitA, noPermit);
    }

    // ---------------------------------------------------------------------------------------------
    // The escrow accepts any token, so anyone can "activate" terms naming any buyer and seller with
    // a token it controls. No real funds move and the id commits to that token, so it never equals
    // the id of an agreement the parties accepted; consumers must only trust ids they computed.
    // ---------------------------------------------------------------------------------------------
    function test_anyTokenIsAccepted_soConsumersMustCheckTheIdTheyExpect() public {
        AttackerToken fake = new AttackerToken();
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 realId = idOf(a); // the same terms with the real token
        a.token = address(fake);
        bytes32 id = idOf(a);
        ReceiveAuthorization memory none = ReceiveAuthorization(0, 0, "");

        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.AgreementActivated(
            id, buyer, seller, address(fake), a.maxAmount, a.infraFee, a.expiry, a.closeWindow, a.salt
        );
        vm.expectEmit(true, true, true, true, address(feeCollector));
        emit IInfraFeeCollector.InfraFeeCollected(id, buyer, address(fake), a.infraFee);
        vm.prank(stranger);
        escrow.activateWithAuthorization(a, none, none);
        assertStatus(id, IAgreementEscrow.Status.Active, "active without any buyer signature");
        assertNotEq(id, realId, "the id differs from the same terms' id with the real token");
    }

    function _permitAtNonce(uint256 value, uint256 nonce, uint256 deadline)
        private
        view
        returns (PermitSignature memory)
    {
        bytes32 structHash =
            keccak256(abi.encode(usdc.PERMIT_TYPEHASH(), buyer, address(escrow), value, nonce, deadline));
        bytes32 digest =
            keccak256(abi.encodePacked("\x19\x01", domainSeparator("USD Coin", "2", address(usdc)), structHash));
        return PermitSignature({deadline: deadline, signature: sign(BUYER_KEY, digest)});
    }
}
