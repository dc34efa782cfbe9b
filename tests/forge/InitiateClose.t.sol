// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {IAgreementEscrow} from "../../contracts/interfaces/IAgreementEscrow.sol";

/// @notice `initiateClose` and `initiateCloseWithSig`: starting the close window.
contract InitiateCloseTest is EscrowFixture {
    // ---------------------------------------------------------------------------------------------
    // Direct calls
    // ---------------------------------------------------------------------------------------------

    function test_initiateClose_byBuyer_startsWindow() public {
        _assertDirectClose(buyer);
    }

    function test_initiateClose_bySeller_startsWindow() public {
        _assertDirectClose(seller);
    }

    /// The close window length is the agreement's own term, at both ends of the allowed range.
    function test_initiateClose_usesTheAgreementsCloseWindow() public {
        uint256[2] memory windows = [escrow.MIN_CLOSE_WINDOW(), escrow.MAX_CLOSE_WINDOW()];
        for (uint256 i = 0; i < windows.length; ++i) {
            IAgreementEscrow.Agreement memory a = terms();
            a.closeWindow = uint32(windows[i]);
            bytes32 id = activate(a);
            uint256 expectedDeadline = block.timestamp + windows[i];

            vm.expectEmit(true, true, true, true, address(escrow));
            emit IAgreementEscrow.CloseInitiated(id, seller, expectedDeadline);
            vm.prank(seller);
            escrow.initiateClose(a);
            assertEq(escrow.agreementState(id).closeDeadline, expectedDeadline, "closeDeadline = now + closeWindow");
        }
    }

    /// `expiry` only bounds activation: a funded agreement can still be closed after it.
    function test_initiateClose_stillPossibleAfterExpiry() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        vm.warp(uint256(a.expiry) + 365 days);
        vm.prank(buyer);
        escrow.initiateClose(a);
        assertStatus(id, IAgreementEscrow.Status.Closing, "status");
        assertEq(escrow.agreementState(id).closeDeadline, block.timestamp + CLOSE_WINDOW, "closeDeadline");
    }

    function test_initiateClose_revertsForStranger() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);

        address[3] memory outsiders = [stranger, relayer, address(escrow)];
        for (uint256 i = 0; i < outsiders.length; ++i) {
            vm.prank(outsiders[i]);
            vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.NotBuyerOrSeller.selector, outsiders[i]));
            escrow.initiateClose(a);
        }
        _assertUntouched(id);
    }

    function test_initiateClose_revertsWhenNeverActivated() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = idOf(a);
        vm.prank(buyer);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.None));
        escrow.initiateClose(a);
        assertStatus(id, IAgreementEscrow.Status.None, "still None");
    }

    function test_initiateClose_revertsWhenAlreadyClosing() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 deadline = escrow.agreementState(id).closeDeadline;

        // Neither party can restart (extend) the window, not even later on.
        vm.warp(block.timestamp + 1 hours);
        vm.prank(seller);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.Closing));
        escrow.initiateClose(a);
        vm.prank(buyer);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.Closing));
        escrow.initiateClose(a);

        assertEq(escrow.agreementState(id).closeDeadline, deadline, "deadline not moved");
    }

    function test_initiateClose_revertsWhenSellerClaimed() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _toSellerClaimed(a);
        vm.prank(buyer);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.SellerClaimed));
        escrow.initiateClose(a);
    }

    function test_initiateClose_revertsWhenSettledByFullClaim() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, a.maxAmount);
        vm.prank(seller);
        escrow.sellerClaim(a, a.maxAmount, v, seller);
        assertStatus(id, IAgreementEscrow.Status.Settled, "precondition");

        vm.prank(seller);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.Settled));
        escrow.initiateClose(a);
    }

    function test_initiateClose_revertsWhenSettledByWithdrawal() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        vm.warp(block.timestamp + CLOSE_WINDOW);
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        assertStatus(id, IAgreementEscrow.Status.Settled, "precondition");

        vm.prank(buyer);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.Settled));
        escrow.initiateClose(a);
    }

    // ---------------------------------------------------------------------------------------------
    // Signed (relayed) calls
    // ---------------------------------------------------------------------------------------------

    function test_initiateCloseWithSig_signedByBuyer_relayed() public {
        _assertSignedClose(BUYER_KEY);
    }

    function test_initiateCloseWithSig_signedBySeller_relayed() public {
        _assertSignedClose(SELLER_KEY);
    }

    /// The deadline is inclusive: the authorization is still valid at timestamp == deadline.
    function test_initiateCloseWithSig_validAtDeadline() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(SELLER_KEY, closeDigest(id, seller, deadline));
        vm.warp(deadline);

        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.CloseInitiated(id, seller, deadline + CLOSE_WINDOW);
        vm.prank(relayer);
        escrow.initiateCloseWithSig(a, seller, deadline, sig);
        assertStatus(id, IAgreementEscrow.Status.Closing, "status");
    }

    function test_initiateCloseWithSig_revertsOneSecondAfterDeadline() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(BUYER_KEY, closeDigest(id, buyer, deadline));
        vm.warp(deadline + 1);

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.AuthorizationExpired.selector, deadline, deadline + 1));
        escrow.initiateCloseWithSig(a, buyer, deadline, sig);
        _assertUntouched(id);
    }

    function test_initiateCloseWithSig_revertsWhenPartyIsNotBuyerOrSeller() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        uint256 deadline = block.timestamp + 1 hours;
        // A perfectly valid signature by the named party, who is just not a party to the agreement.
        bytes memory sig = sign(STRANGER_KEY, closeDigest(id, stranger, deadline));

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.NotBuyerOrSeller.selector, stranger));
        escrow.initiateCloseWithSig(a, stranger, deadline, sig);

        // The zero address is not a party either (and ecrecover failures cannot impersonate it).
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.NotBuyerOrSeller.selector, address(0)));
        escrow.initiateCloseWithSig(a, address(0), deadline, "");
        _assertUntouched(id);
    }

    function test_initiateCloseWithSig_revertsWhenSignedByWrongKey() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        uint256 deadline = block.timestamp + 1 hours;

        // A stranger's signature naming the buyer.
        bytes memory byStranger = sign(STRANGER_KEY, closeDigest(id, buyer, deadline));
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, buyer));
        escrow.initiateCloseWithSig(a, buyer, deadline, byStranger);

        // The seller's key cannot sign for the buyer (and vice versa).
        bytes memory bySellerForBuyer = sign(SELLER_KEY, closeDigest(id, buyer, deadline));
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, buyer));
        escrow.initiateCloseWithSig(a, buyer, deadline, bySellerForBuyer);

        bytes memory byBuyerForSeller = sign(BUYER_KEY, closeDigest(id, seller, deadline));
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, seller));
        escrow.initiateCloseWithSig(a, seller, deadline, byBuyerForSeller);
        _assertUntouched(id);
    }

    /// The signed `party` field is part of the message: a buyer's signature naming the seller (or
    /// naming the buyer, presented as the seller's) is not an authorization for the other field.
    function test_initiateCloseWithSig_revertsWhenPartyFieldDiffers() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        uint256 deadline = block.timestamp + 1 hours;

        // Signed by the buyer over party = seller, submitted as the buyer's own.
        bytes memory sig = sign(BUYER_KEY, closeDigest(id, seller, deadline));
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, buyer));
        escrow.initiateCloseWithSig(a, buyer, deadline, sig);

        // Signed by the seller over party = seller, submitted as the buyer's.
        bytes memory sellers = sign(SELLER_KEY, closeDigest(id, seller, deadline));
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, buyer));
        escrow.initiateCloseWithSig(a, buyer, deadline, sellers);
        _assertUntouched(id);
    }

    /// A relayer cannot redirect a party's close authorization to another agreement between the
    /// same parties (every term is in the id, hence in the signed message).
    function test_initiateCloseWithSig_revertsWhenRelayerAltersAgreement() public {
        IAgreementEscrow.Agreement memory signed = terms();
        IAgreementEscrow.Agreement memory other = terms(); // same parties, another salt
        bytes32 signedId = activate(signed);
        bytes32 otherId = activate(other);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(BUYER_KEY, closeDigest(signedId, buyer, deadline));

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, buyer));
        escrow.initiateCloseWithSig(other, buyer, deadline, sig);

        // A single term change (here the close window) is enough to break it too.
        IAgreementEscrow.Agreement memory tweaked = IAgreementEscrow.Agreement(
            signed.buyer,
            signed.seller,
            signed.token,
            signed.maxAmount,
            signed.infraFee,
            signed.expiry,
            signed.closeWindow + 1,
            signed.salt
        );
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, buyer));
        escrow.initiateCloseWithSig(tweaked, buyer, deadline, sig);

        _assertUntouched(signedId);
        _assertUntouched(otherId);
    }

    function test_initiateCloseWithSig_revertsWhenRelayerAltersDeadline() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(SELLER_KEY, closeDigest(id, seller, deadline));

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, seller));
        escrow.initiateCloseWithSig(a, seller, deadline + 1, sig);

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, seller));
        escrow.initiateCloseWithSig(a, seller, deadline - 1, sig);
        _assertUntouched(id);
    }

    function test_initiateCloseWithSig_revertsOnMalformedSignature() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(BUYER_KEY, closeDigest(id, buyer, deadline));

        bytes memory truncated = new bytes(64);
        for (uint256 i = 0; i < 64; ++i) {
            truncated[i] = sig[i];
        }

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, buyer));
        escrow.initiateCloseWithSig(a, buyer, deadline, "");

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, buyer));
        escrow.initiateCloseWithSig(a, buyer, deadline, truncated);
        _assertUntouched(id);
    }

    function test_initiateCloseWithSig_revertsOnReplayAfterUse() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(BUYER_KEY, closeDigest(id, buyer, deadline));

        vm.prank(relayer);
        escrow.initiateCloseWithSig(a, buyer, deadline, sig);
        uint256 closeDeadline = escrow.agreementState(id).closeDeadline;

        // Replayed later (still before its own deadline) it would extend the window: refused.
        vm.warp(block.timestamp + 30 minutes);
        vm.prank(stranger);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.Closing));
        escrow.initiateCloseWithSig(a, buyer, deadline, sig);
        assertEq(escrow.agreementState(id).closeDeadline, closeDeadline, "window not extended");
    }

    function test_initiateCloseWithSig_revertsWhenNeverActivated() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = idOf(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(SELLER_KEY, closeDigest(id, seller, deadline));
        vm.prank(relayer);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.None));
        escrow.initiateCloseWithSig(a, seller, deadline, sig);
    }

    function test_initiateCloseWithSig_revertsWhenSellerClaimed() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _toSellerClaimed(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(BUYER_KEY, closeDigest(id, buyer, deadline));
        vm.prank(relayer);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.SellerClaimed));
        escrow.initiateCloseWithSig(a, buyer, deadline, sig);
    }

    function test_initiateCloseWithSig_revertsWhenSettled() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _toSellerClaimed(a);
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        assertStatus(id, IAgreementEscrow.Status.Settled, "precondition");

        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(SELLER_KEY, closeDigest(id, seller, deadline));
        vm.prank(relayer);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.Settled));
        escrow.initiateCloseWithSig(a, seller, deadline, sig);
    }

    // ---------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------

    function _assertDirectClose(address initiator) private {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        uint256 escrowBefore = usdc.balanceOf(address(escrow));
        uint256 buyerBefore = usdc.balanceOf(buyer);
        uint256 sellerBefore = usdc.balanceOf(seller);
        uint256 expectedDeadline = block.timestamp + CLOSE_WINDOW;

        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.CloseInitiated(id, initiator, expectedDeadline);
        vm.prank(initiator);
        escrow.initiateClose(a);

        IAgreementEscrow.AgreementState memory s = escrow.agreementState(id);
        assertEq(uint256(s.status), uint256(IAgreementEscrow.Status.Closing), "status Closing");
        assertEq(s.closeDeadline, expectedDeadline, "closeDeadline = now + closeWindow");
        assertEq(s.settledAmount, 0, "nothing settled");
        assertEq(usdc.balanceOf(address(escrow)), escrowBefore, "escrow balance unchanged");
        assertEq(usdc.balanceOf(buyer), buyerBefore, "buyer balance unchanged");
        assertEq(usdc.balanceOf(seller), sellerBefore, "seller balance unchanged");
    }

    function _assertSignedClose(uint256 key) private {
        address party = vm.addr(key);
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(key, closeDigest(id, party, deadline));
        uint256 escrowBefore = usdc.balanceOf(address(escrow));
        uint256 relayerBefore = usdc.balanceOf(relayer);
        vm.warp(block.timestamp + 10 minutes);
        uint256 expectedDeadline = block.timestamp + CLOSE_WINDOW;

        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.CloseInitiated(id, party, expectedDeadline);
        vm.prank(relayer);
        escrow.initiateCloseWithSig(a, party, deadline, sig);

        IAgreementEscrow.AgreementState memory s = escrow.agreementState(id);
        assertEq(uint256(s.status), uint256(IAgreementEscrow.Status.Closing), "status Closing");
        assertEq(s.closeDeadline, expectedDeadline, "closeDeadline from submission time");
        assertEq(s.settledAmount, 0, "nothing settled");
        assertEq(usdc.balanceOf(address(escrow)), escrowBefore, "escrow balance unchanged");
        assertEq(usdc.balanceOf(relayer), relayerBefore, "relayer gets nothing");
    }

    function _toSellerClaimed(IAgreementEscrow.Agreement memory a) private returns (bytes32 id) {
        id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, a.maxAmount / 2);
        vm.prank(seller);
        escrow.sellerClaim(a, a.maxAmount / 2, v, seller);
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "precondition");
    }

    function _assertUntouched(bytes32 id) private view {
        IAgreementEscrow.AgreementState memory s = escrow.agreementState(id);
        assertEq(uint256(s.status), uint256(IAgreementEscrow.Status.Active), "still Active");
        assertEq(s.closeDeadline, 0, "no close deadline");
    }

    function _unexpected(bytes32 id, IAgreementEscrow.Status actual) private pure returns (bytes memory) {
        return
            abi.encodeWithSelector(
                IAgreementEscrow.UnexpectedStatus.selector, id, IAgreementEscrow.Status.Active, actual
            );
    }
}
