// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {IAgreementEscrow} from "../../contracts/interfaces/IAgreementEscrow.sol";
import {IInfraFeeCollector} from "../../contracts/interfaces/IInfraFeeCollector.sol";
import {ITokenAuthorizations, ReceiveAuthorization} from "../../contracts/interfaces/ITokenAuthorizations.sol";
import {LocalUSDC} from "../../contracts/local/LocalUSDC.sol";

/// @notice `activateWithAuthorization`: the EIP-3009 activation path.
contract ActivationTest is EscrowFixture {
    function test_activate_movesDepositAndFee_andRecordsActive() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 expectedId = idOf(a);
        assertEq(escrow.agreementId(a), expectedId, "agreement id is the EIP-712 digest of the terms");

        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.AgreementActivated(
            expectedId, buyer, seller, address(usdc), MAX_AMOUNT, INFRA_FEE, a.expiry, a.closeWindow, a.salt
        );
        vm.expectEmit(true, true, true, true, address(feeCollector));
        emit IInfraFeeCollector.InfraFeeCollected(expectedId, buyer, address(usdc), INFRA_FEE);
        bytes32 id = activate(a);

        assertEq(id, expectedId, "returned id");
        assertStatus(id, IAgreementEscrow.Status.Active, "status");
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "escrow holds the deposit");
        assertEq(usdc.balanceOf(address(feeCollector)), INFRA_FEE, "fee collector holds the fee");
        assertEq(usdc.balanceOf(buyer), BUYER_FUNDS - MAX_AMOUNT - INFRA_FEE, "buyer paid deposit and fee");
        assertTrue(usdc.authorizationState(buyer, id), "deposit nonce burnt");
        assertTrue(usdc.authorizationState(buyer, feeNonce(id, INFRA_FEE)), "fee nonce burnt");
    }

    function test_activate_zeroFeeIsWaived() public {
        IAgreementEscrow.Agreement memory a = terms(MAX_AMOUNT, 0);
        bytes32 id = activate(a);
        assertStatus(id, IAgreementEscrow.Status.Active, "status");
        assertEq(usdc.balanceOf(address(feeCollector)), 0, "no fee");
        assertEq(usdc.balanceOf(buyer), BUYER_FUNDS - MAX_AMOUNT, "buyer paid only the deposit");
    }

    function test_activate_revertsWhenAlreadyActivated() public {
        IAgreementEscrow.Agreement memory a = terms();
        ReceiveAuthorization memory deposit = depositAuthorization(a);
        ReceiveAuthorization memory fee = feeAuthorization(a);
        bytes32 id = activate(a);

        vm.expectRevert(
            abi.encodeWithSelector(
                IAgreementEscrow.UnexpectedStatus.selector,
                id,
                IAgreementEscrow.Status.None,
                IAgreementEscrow.Status.Active
            )
        );
        escrow.activateWithAuthorization(a, deposit, fee);
    }

    function test_activate_revertsOnInvalidParties() public {
        IAgreementEscrow.Agreement memory a = terms();
        a.seller = a.buyer;
        _expectActivationRevert(a, abi.encodeWithSelector(IAgreementEscrow.InvalidParties.selector, buyer, buyer));

        a = terms();
        a.seller = address(0);
        _expectActivationRevert(a, abi.encodeWithSelector(IAgreementEscrow.InvalidParties.selector, buyer, address(0)));

        a = terms();
        a.buyer = address(0);
        _expectActivationRevert(a, abi.encodeWithSelector(IAgreementEscrow.InvalidParties.selector, address(0), seller));

        a = terms();
        a.seller = address(escrow);
        _expectActivationRevert(
            a, abi.encodeWithSelector(IAgreementEscrow.InvalidParties.selector, buyer, address(escrow))
        );
    }

    function test_activate_revertsOnTokenWithoutCode() public {
        IAgreementEscrow.Agreement memory a = terms();
        a.token = address(0x1234);
        _expectActivationRevert(a, abi.encodeWithSelector(IAgreementEscrow.InvalidToken.selector, address(0x1234)));
    }

    function test_activate_revertsOnInvalidAmount() public {
        IAgreementEscrow.Agreement memory a = terms(0, 0);
        _expectActivationRevert(a, abi.encodeWithSelector(IAgreementEscrow.InvalidAmount.selector, 0));

        uint256 tooLarge = uint256(type(uint128).max) + 1;
        a = terms(tooLarge, 0);
        _expectActivationRevert(a, abi.encodeWithSelector(IAgreementEscrow.InvalidAmount.selector, tooLarge));
    }

    function test_activate_revertsOnCloseWindowOutOfRange() public {
        uint256 min = escrow.MIN_CLOSE_WINDOW();
        uint256 max = escrow.MAX_CLOSE_WINDOW();
        IAgreementEscrow.Agreement memory a = terms();
        a.closeWindow = uint32(min - 1);
        _expectActivationRevert(
            a, abi.encodeWithSelector(IAgreementEscrow.InvalidCloseWindow.selector, min - 1, min, max)
        );
        a.closeWindow = uint32(max + 1);
        _expectActivationRevert(
            a, abi.encodeWithSelector(IAgreementEscrow.InvalidCloseWindow.selector, max + 1, min, max)
        );
    }

    function test_activate_revertsAtOrAfterExpiry() public {
        IAgreementEscrow.Agreement memory a = terms();
        a.expiry = uint64(block.timestamp);
        _expectActivationRevert(
            a, abi.encodeWithSelector(IAgreementEscrow.AgreementExpired.selector, block.timestamp, block.timestamp)
        );
    }

    function test_activate_revertsWhenBuyerSanctioned() public {
        sanction(buyer);
        _expectActivationRevert(terms(), abi.encodeWithSelector(IAgreementEscrow.SanctionedAddress.selector, buyer));
    }

    function test_activate_revertsWhenSellerSanctioned() public {
        sanction(seller);
        _expectActivationRevert(terms(), abi.encodeWithSelector(IAgreementEscrow.SanctionedAddress.selector, seller));
    }

    function test_activate_revertsWhenDepositAuthorizationExpired() public {
        IAgreementEscrow.Agreement memory a = terms();
        ReceiveAuthorization memory deposit = depositAuthorization(a);
        ReceiveAuthorization memory fee = feeAuthorization(a);
        vm.warp(deposit.validBefore);
        vm.expectRevert(abi.encodeWithSelector(LocalUSDC.AuthorizationExpired.selector, deposit.validBefore));
        escrow.activateWithAuthorization(a, deposit, fee);
    }

    /// A relayer changing any signed term changes the agreement id, hence the EIP-3009 nonce the
    /// token checks the buyer's signature against: the signature no longer verifies.
    function test_activate_revertsWhenRelayerAltersAnyTerm() public {
        for (uint256 field = 0; field < 8; ++field) {
            IAgreementEscrow.Agreement memory signed = terms();
            ReceiveAuthorization memory deposit = depositAuthorization(signed);
            ReceiveAuthorization memory fee = feeAuthorization(signed);
            IAgreementEscrow.Agreement memory altered = _alter(signed, field);

            vm.prank(relayer);
            vm.expectRevert();
            escrow.activateWithAuthorization(altered, deposit, fee);
        }
        assertEq(usdc.balanceOf(address(escrow)), 0, "nothing moved");
    }

    function test_activate_revertsWhenDepositSignatureIsNotTheBuyers() public {
        IAgreementEscrow.Agreement memory a = terms();
        ReceiveAuthorization memory deposit =
            receiveAuthorization(STRANGER_KEY, address(escrow), a.maxAmount, idOf(a), block.timestamp + 1 hours);
        ReceiveAuthorization memory fee = feeAuthorization(a);
        vm.expectRevert(abi.encodeWithSelector(LocalUSDC.InvalidSignature.selector, buyer));
        escrow.activateWithAuthorization(a, deposit, fee);
    }

    function test_activate_revertsWhenFeeAuthorizationDoesNotMatch() public {
        IAgreementEscrow.Agreement memory a = terms();
        // The buyer signed a fee authorization for a lower amount than the terms say.
        ReceiveAuthorization memory fee = receiveAuthorization(
            BUYER_KEY,
            address(feeCollector),
            a.infraFee - 1,
            feeNonce(idOf(a), a.infraFee - 1),
            block.timestamp + 1 hours
        );
        ReceiveAuthorization memory deposit = depositAuthorization(a);
        vm.expectRevert(abi.encodeWithSelector(LocalUSDC.InvalidSignature.selector, buyer));
        escrow.activateWithAuthorization(a, deposit, fee);
        assertStatus(idOf(a), IAgreementEscrow.Status.None, "activation rolled back with the fee");
        assertEq(usdc.balanceOf(address(escrow)), 0, "deposit rolled back with the fee");
    }

    function test_activate_revertsWhenBuyerCannotPay() public {
        IAgreementEscrow.Agreement memory a = terms(BUYER_FUNDS + 1, 0);
        ReceiveAuthorization memory deposit = depositAuthorization(a);
        ReceiveAuthorization memory fee = feeAuthorization(a);
        vm.expectRevert();
        escrow.activateWithAuthorization(a, deposit, fee);
        assertStatus(idOf(a), IAgreementEscrow.Status.None, "not activated");
    }

    function _alter(IAgreementEscrow.Agreement memory a, uint256 field)
        private
        returns (IAgreementEscrow.Agreement memory b)
    {
        b = IAgreementEscrow.Agreement(
            a.buyer, a.seller, a.token, a.maxAmount, a.infraFee, a.expiry, a.closeWindow, a.salt
        );
        if (field == 0) b.buyer = stranger;
        else if (field == 1) b.seller = stranger;
        else if (field == 2) b.token = address(new LocalUSDC(address(this)));
        else if (field == 3) b.maxAmount = a.maxAmount - 1;
        else if (field == 4) b.infraFee = 0;
        else if (field == 5) b.expiry = a.expiry + 1;
        else if (field == 6) b.closeWindow = a.closeWindow + 1;
        else b.salt = bytes32(uint256(a.salt) + 1);
    }

    function _expectActivationRevert(IAgreementEscrow.Agreement memory a, bytes memory err) private {
        ReceiveAuthorization memory deposit = depositAuthorization(a);
        ReceiveAuthorization memory fee = feeAuthorization(a);
        vm.expectRevert(err);
        escrow.activateWithAuthorization(a, deposit, fee);
    }
}
