// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SecurityFixture} from "./utils/SecurityFixture.sol";
import {IAgreementEscrow} from "../../contracts/interfaces/IAgreementEscrow.sol";
import {LocalUSDC} from "../../contracts/local/LocalUSDC.sol";

/// @notice The seller's entitlement is recorded apart from its payout. A claim in the window records
///         the voucher amount for good; a payout that cannot be made then (sanctions, oracle outage,
///         token refusal) is deferred, not lost, and `sellerClaim` retries it later, strictly.
///         Screening- and blocklist-specific cases are in Sanctions.t.sol and Blocklist.t.sol.
contract SellerPayoutTest is SecurityFixture {
    uint256 internal constant VOUCHER = 40e6;

    /// An activated, closed agreement whose claim was deferred because the token was paused.
    function _deferred(uint256 amount)
        internal
        returns (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v)
    {
        a = terms();
        id = activateAndClose(a);
        v = voucher(BUYER_KEY, id, amount);
        usdc.pause();
        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.SellerClaimed(id, amount, MAX_AMOUNT - amount);
        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.SellerPayoutDeferred(id, seller, amount, IAgreementEscrow.DeferralReason.TransferFailed);
        vm.prank(seller);
        escrow.sellerClaim(a, amount, v, seller);
        usdc.unpause();
    }

    function _state(bytes32 id) internal view returns (IAgreementEscrow.AgreementState memory) {
        return escrow.agreementState(id);
    }

    // ---------------------------------------------------------------------------------------------
    // Recording
    // ---------------------------------------------------------------------------------------------

    function test_deferredClaim_recordsEntitlement_keepsEverythingInEscrow() public {
        (, bytes32 id,) = _deferred(VOUCHER);
        IAgreementEscrow.AgreementState memory s = _state(id);
        assertEq(uint256(s.status), uint256(IAgreementEscrow.Status.SellerClaimed), "status");
        assertEq(s.settledAmount, VOUCHER, "entitlement");
        assertFalse(s.sellerPaid, "sellerPaid");
        assertFalse(s.buyerWithdrawn, "buyerWithdrawn");
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "escrow balance");
    }

    /// A deferred claim for the whole deposit leaves the buyer nothing: its withdrawal is refused.
    function test_deferredFullClaim_buyerHasNothingToWithdraw() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id,) = _deferred(MAX_AMOUNT);
        assertTrue(_state(id).buyerWithdrawn, "nothing left for the buyer");
        vm.warp(block.timestamp + CLOSE_WINDOW);
        vm.prank(buyer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.BuyerAlreadyWithdrawn.selector, id));
        escrow.buyerWithdraw(a, buyer);

        vm.prank(seller);
        escrow.sellerClaim(a, MAX_AMOUNT, "", seller);
        assertStatus(id, IAgreementEscrow.Status.Settled, "settled by the retried payout");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow empty");
    }

    /// The window cannot be used to replace the recorded voucher: a higher one is refused.
    function test_deferredClaim_entitlementCannotBeRaised() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id,) = _deferred(VOUCHER);
        bytes memory higher = voucher(BUYER_KEY, id, 90e6);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.ClaimAmountMismatch.selector, id, VOUCHER, 90e6));
        escrow.sellerClaim(a, 90e6, higher, seller);
    }

    // ---------------------------------------------------------------------------------------------
    // Retrying
    // ---------------------------------------------------------------------------------------------

    function test_retry_paysTheEntitlement_withoutVoucher_afterTheWindow() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id,) = _deferred(VOUCHER);
        vm.warp(_state(id).closeDeadline + 90 days);
        uint256 before = usdc.balanceOf(carol);
        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.SellerPaid(id, carol, VOUCHER);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, hex"deadbeef", carol);
        assertEq(usdc.balanceOf(carol), before + VOUCHER, "paid at the chosen recipient");
        IAgreementEscrow.AgreementState memory s = _state(id);
        assertTrue(s.sellerPaid, "sellerPaid");
        assertEq(uint256(s.status), uint256(IAgreementEscrow.Status.SellerClaimed), "buyer still to withdraw");
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT - VOUCHER, "remainder kept for the buyer");
    }

    function test_retry_onlyBySeller_orItsSignature() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id,) = _deferred(VOUCHER);
        vm.prank(buyer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.NotParty.selector, buyer, seller));
        escrow.sellerClaim(a, VOUCHER, "", buyer);

        uint256 dl = block.timestamp + 1 hours;
        bytes memory byBuyer = claimSig(BUYER_KEY, id, VOUCHER, buyer, dl);
        vm.prank(relayer);
        vm.expectRevert(invalidSignature(seller));
        escrow.sellerClaimWithSig(a, VOUCHER, "", buyer, dl, byBuyer);

        bytes memory bySeller = claimSig(SELLER_KEY, id, VOUCHER, dave, dl);
        vm.prank(relayer);
        escrow.sellerClaimWithSig(a, VOUCHER, "", dave, dl, bySeller);
        assertEq(usdc.balanceOf(dave), VOUCHER, "paid at the signed recipient");
    }

    function test_retryWithSig_expiredAuthorization_rejected() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id,) = _deferred(VOUCHER);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory sig = claimSig(SELLER_KEY, id, VOUCHER, seller, dl);
        vm.warp(dl + 1);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.AuthorizationExpired.selector, dl, dl + 1));
        escrow.sellerClaimWithSig(a, VOUCHER, "", seller, dl, sig);
    }

    function test_retry_paysOnce() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id,) = _deferred(VOUCHER);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory sig = claimSig(SELLER_KEY, id, VOUCHER, seller, dl);
        vm.prank(relayer);
        escrow.sellerClaimWithSig(a, VOUCHER, "", seller, dl, sig);
        uint256 after_ = usdc.balanceOf(seller);

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.SellerAlreadyPaid.selector, id));
        escrow.sellerClaimWithSig(a, VOUCHER, "", seller, dl, sig);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.SellerAlreadyPaid.selector, id));
        escrow.sellerClaim(a, VOUCHER, "", seller);
        assertEq(usdc.balanceOf(seller), after_, "paid once");
    }

    /// Buyer first, seller later: the buyer's withdrawal leaves the seller's share, and the seller's
    /// retry then settles the agreement.
    function test_buyerWithdrawsFirst_thenRetrySettles() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id,) = _deferred(VOUCHER);
        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.BuyerWithdrew(id, buyer, MAX_AMOUNT - VOUCHER);
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        IAgreementEscrow.AgreementState memory s = _state(id);
        assertEq(uint256(s.status), uint256(IAgreementEscrow.Status.SellerClaimed), "seller still owed");
        assertTrue(s.buyerWithdrawn, "buyerWithdrawn");
        assertEq(usdc.balanceOf(address(escrow)), VOUCHER, "only the seller's share left");

        vm.prank(buyer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.BuyerAlreadyWithdrawn.selector, id));
        escrow.buyerWithdraw(a, buyer);

        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, "", seller);
        assertStatus(id, IAgreementEscrow.Status.Settled, "settled");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow empty");
    }

    function test_retry_whileTokenStillRefuses_revertsWithItsError() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id,) = _deferred(VOUCHER);
        usdc.pause();
        vm.prank(seller);
        vm.expectRevert(LocalUSDC.TokenPaused.selector);
        escrow.sellerClaim(a, VOUCHER, "", seller);
        assertFalse(_state(id).sellerPaid, "still unpaid");
    }

    function test_retry_invalidRecipient_rejected() public {
        (IAgreementEscrow.Agreement memory a,,) = _deferred(VOUCHER);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidRecipient.selector, address(0)));
        escrow.sellerClaim(a, VOUCHER, "", address(0));
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidRecipient.selector, address(escrow)));
        escrow.sellerClaim(a, VOUCHER, "", address(escrow));
    }

    // ---------------------------------------------------------------------------------------------
    // A submitter cannot force a deferral by starving the payout of gas
    // ---------------------------------------------------------------------------------------------

    /// Whatever gas limit a relayer picks, a claim with a healthy oracle and token is either paid in
    /// full or reverts as a whole; it is never recorded as deferred.
    function test_gasLimit_neverForcesADeferral() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, VOUCHER);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory sig = claimSig(SELLER_KEY, id, VOUCHER, seller, dl);
        uint256 reverted;
        uint256 paid;
        uint256 starved;
        for (uint256 gasLimit = 20_000; gasLimit <= 120_000; gasLimit += 250) {
            uint256 snapshot = vm.snapshotState();
            vm.prank(relayer);
            (bool ok, bytes memory ret) = address(escrow).call{gas: gasLimit}(
                abi.encodeCall(escrow.sellerClaimWithSig, (a, VOUCHER, v, seller, dl, sig))
            );
            IAgreementEscrow.AgreementState memory s = _state(id);
            if (ok) {
                assertTrue(s.sellerPaid, "a successful claim is a paid claim");
                ++paid;
            } else {
                assertEq(uint256(s.status), uint256(IAgreementEscrow.Status.Closing), "a revert changes nothing");
                if (keccak256(ret) == keccak256(abi.encodeWithSelector(IAgreementEscrow.PayoutGasTooLow.selector, id)))
                {
                    ++starved;
                }
                ++reverted;
            }
            vm.revertToState(snapshot);
        }
        assertGt(paid, 0, "enough gas pays");
        assertGt(reverted, 0, "too little gas reverts");
        assertGt(starved, 0, "the starvation check itself was reached");
    }
}
