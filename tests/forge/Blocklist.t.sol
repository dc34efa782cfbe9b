// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SecurityFixture} from "./utils/SecurityFixture.sol";
import {IAgreementEscrow} from "../../contracts/interfaces/IAgreementEscrow.sol";
import {ReceiveAuthorization} from "../../contracts/interfaces/ITokenAuthorizations.sol";
import {LocalUSDC} from "../../contracts/local/LocalUSDC.sol";

/// @notice The token (like USDC) may blocklist any address, including a party, a recipient, the fee
///         collector or the escrow itself. A blocklisted party is paid at a recipient it chooses (direct
///         call) or signs for (`...WithSig`). A seller's claim the token refuses is recorded and its
///         payout deferred, to be retried; a buyer's refused withdrawal changes nothing and can be
///         retried; and the other party's funds never depend on the blocklisted one.
contract BlocklistTest is SecurityFixture {
    uint256 internal constant VOUCHER = 40e6;

    function blocked(address account) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(LocalUSDC.AccountBlocklisted.selector, account);
    }

    function assertDeferred(bytes32 id, uint256 amount) internal view {
        IAgreementEscrow.AgreementState memory s = escrow.agreementState(id);
        assertEq(uint256(s.status), uint256(IAgreementEscrow.Status.SellerClaimed), "claim recorded");
        assertEq(s.settledAmount, amount, "entitlement");
        assertFalse(s.sellerPaid, "payout deferred");
    }

    function _closedWithVoucher() internal returns (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) {
        a = terms();
        id = activateAndClose(a);
        v = voucher(BUYER_KEY, id, VOUCHER);
    }

    // ---------------------------------------------------------------------------------------------
    // Blocklisted seller
    // ---------------------------------------------------------------------------------------------

    function test_blocklistedSeller_directClaimToSelfDeferred_retryToAlternativeSucceeds() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        usdc.blocklist(seller);

        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.SellerPayoutDeferred(
            id, seller, VOUCHER, IAgreementEscrow.DeferralReason.TransferFailed, address(0)
        );
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        assertDeferred(id, VOUCHER);
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "nothing left the escrow");

        // The retry to self fails with the token's own error; to another address it pays.
        vm.prank(seller);
        vm.expectRevert(blocked(seller));
        escrow.sellerClaim(a, VOUCHER, "", seller);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, "", carol);
        assertEq(usdc.balanceOf(carol), VOUCHER, "paid at the alternative recipient");
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "claimed");

        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        assertEq(usdc.balanceOf(address(escrow)), 0, "nothing stuck");
        assertEq(usdc.balanceOf(buyer), BUYER_FUNDS - VOUCHER - INFRA_FEE, "buyer got the remainder");
    }

    function test_blocklistedSeller_claimWithSigToSelfDeferred_signedAlternativeSucceeds() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        uint256 dl = block.timestamp + 1 hours;
        bytes memory toSelf = claimSig(SELLER_KEY, id, VOUCHER, seller, dl);
        bytes memory toCarol = claimSig(SELLER_KEY, id, VOUCHER, carol, dl);
        usdc.blocklist(seller);

        vm.prank(relayer);
        escrow.sellerClaimWithSig(a, VOUCHER, v, seller, dl, toSelf);
        assertDeferred(id, VOUCHER);
        // Replaying the self-addressed authorization fails with the token's error ...
        vm.prank(relayer);
        vm.expectRevert(blocked(seller));
        escrow.sellerClaimWithSig(a, VOUCHER, v, seller, dl, toSelf);
        // ... and a relayer cannot redirect it to another recipient.
        vm.prank(relayer);
        vm.expectRevert(invalidSignature(seller));
        escrow.sellerClaimWithSig(a, VOUCHER, v, carol, dl, toSelf);

        vm.prank(relayer);
        escrow.sellerClaimWithSig(a, VOUCHER, "", carol, dl, toCarol);
        assertEq(usdc.balanceOf(carol), VOUCHER, "paid at the signed recipient");
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "claimed");
    }

    /// Blocklisted before activation: the escrow does not consult the token's blocklist, the agreement
    /// activates, and the seller is paid at another address.
    function test_blocklistedSellerAtActivation_stillPaidElsewhere() public {
        usdc.blocklist(seller);
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, MAX_AMOUNT);
        vm.prank(seller);
        escrow.sellerClaim(a, MAX_AMOUNT, v, carol);
        assertStatus(id, IAgreementEscrow.Status.Settled, "settled by a full claim");
        assertEq(usdc.balanceOf(carol), MAX_AMOUNT, "full amount at the alternative recipient");
    }

    function test_blocklistedSeller_thatNeverClaims_buyerRecoversEverything() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id,) = _closedWithVoucher();
        usdc.blocklist(seller);
        vm.warp(block.timestamp + CLOSE_WINDOW);
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        assertStatus(id, IAgreementEscrow.Status.Settled, "settled");
        assertEq(usdc.balanceOf(buyer), BUYER_FUNDS - INFRA_FEE, "buyer recovered the full deposit");
        assertEq(usdc.balanceOf(address(escrow)), 0, "nothing stuck");
    }

    /// Delisted after the close window: the recorded entitlement is still paid, to the seller itself.
    function test_sellerUnblocklisted_afterTheWindow_paidToSelf() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        uint256 before = usdc.balanceOf(seller);
        usdc.blocklist(seller);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        assertDeferred(id, VOUCHER);

        vm.warp(escrow.agreementState(id).closeDeadline + 30 days);
        usdc.unBlocklist(seller);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, "", seller);
        assertEq(usdc.balanceOf(seller), before + VOUCHER, "paid after delisting");
        assertTrue(escrow.agreementState(id).sellerPaid, "paid");
    }

    // ---------------------------------------------------------------------------------------------
    // Blocklisted buyer
    // ---------------------------------------------------------------------------------------------

    function test_blocklistedBuyer_cannotActivate() public {
        usdc.blocklist(buyer);
        IAgreementEscrow.Agreement memory a = terms();
        ReceiveAuthorization memory d = depositAuthorization(a);
        ReceiveAuthorization memory f = feeAuthorization(a);
        vm.expectRevert(blocked(buyer));
        escrow.activateWithAuthorization(a, d, f);
        assertStatus(idOf(a), IAgreementEscrow.Status.None, "not activated");
    }

    function test_blocklistedBuyer_sellerStillPaid_buyerWithdrawsToAlternative_direct() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        usdc.blocklist(buyer);
        uint256 sellerBefore = usdc.balanceOf(seller);

        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        assertEq(usdc.balanceOf(seller), sellerBefore + VOUCHER, "seller unaffected by the buyer's blocklisting");

        vm.prank(buyer);
        vm.expectRevert(blocked(buyer));
        escrow.buyerWithdraw(a, buyer);
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "failed withdraw changed nothing");

        vm.prank(buyer);
        escrow.buyerWithdraw(a, carol);
        assertEq(usdc.balanceOf(carol), MAX_AMOUNT - VOUCHER, "remainder at the alternative recipient");
        assertEq(usdc.balanceOf(address(escrow)), 0, "nothing stuck");
    }

    function test_blocklistedBuyer_withdrawWithSigToAlternative() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id,) = _closedWithVoucher();
        vm.warp(block.timestamp + CLOSE_WINDOW);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory toSelf = withdrawSig(BUYER_KEY, id, buyer, dl);
        bytes memory toCarol = withdrawSig(BUYER_KEY, id, carol, dl);
        usdc.blocklist(buyer);

        vm.prank(relayer);
        vm.expectRevert(blocked(buyer));
        escrow.buyerWithdrawWithSig(a, buyer, dl, toSelf);
        vm.prank(relayer);
        vm.expectRevert(invalidSignature(buyer));
        escrow.buyerWithdrawWithSig(a, carol, dl, toSelf);

        vm.prank(relayer);
        escrow.buyerWithdrawWithSig(a, carol, dl, toCarol);
        assertEq(usdc.balanceOf(carol), MAX_AMOUNT, "full deposit at the signed recipient");
        assertStatus(id, IAgreementEscrow.Status.Settled, "settled");
    }

    // ---------------------------------------------------------------------------------------------
    // Blocklisted recipient, fee collector, escrow, treasury
    // ---------------------------------------------------------------------------------------------

    function test_blocklistedRecipient_claimDeferred_retryElsewhere() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        usdc.blocklist(carol);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, carol);
        assertDeferred(id, VOUCHER);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, "", dave);
        assertEq(usdc.balanceOf(dave), VOUCHER, "paid at the second choice");

        vm.prank(buyer);
        vm.expectRevert(blocked(carol));
        escrow.buyerWithdraw(a, carol);
        vm.prank(buyer);
        escrow.buyerWithdraw(a, dave);
        assertEq(usdc.balanceOf(dave), MAX_AMOUNT, "voucher + remainder");
    }

    function test_blocklistedFeeCollector_activationRevertsAtomically() public {
        usdc.blocklist(address(feeCollector));
        IAgreementEscrow.Agreement memory a = terms();
        ReceiveAuthorization memory d = depositAuthorization(a);
        ReceiveAuthorization memory f = feeAuthorization(a);
        vm.expectRevert(blocked(address(feeCollector)));
        escrow.activateWithAuthorization(a, d, f);
        assertStatus(idOf(a), IAgreementEscrow.Status.None, "not activated");
        assertEq(usdc.balanceOf(address(escrow)), 0, "deposit rolled back with the fee");
        assertFalse(usdc.authorizationState(buyer, idOf(a)), "deposit authorization not consumed");

        // A fee-free agreement does not touch the collector.
        IAgreementEscrow.Agreement memory free = terms(MAX_AMOUNT, 0);
        bytes32 id = activate(free);
        assertStatus(id, IAgreementEscrow.Status.Active, "fee-free agreement activates");
    }

    function test_blocklistedEscrow_cannotBeFunded() public {
        usdc.blocklist(address(escrow));
        IAgreementEscrow.Agreement memory a = terms();
        ReceiveAuthorization memory d = depositAuthorization(a);
        ReceiveAuthorization memory f = feeAuthorization(a);
        vm.expectRevert(blocked(address(escrow)));
        escrow.activateWithAuthorization(a, d, f);
    }

    /// While the token blocklists the escrow, no payout can happen, but the seller's claim is recorded
    /// in the window; nothing is lost or mis-recorded, and everything is payable once the escrow is
    /// delisted, long after the window closed.
    function test_blocklistedEscrow_throughTheWholeWindow_claimRecorded_paidAfterDelisting() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        uint256 deadline = escrow.agreementState(id).closeDeadline;
        usdc.blocklist(address(escrow));
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        assertDeferred(id, VOUCHER);

        // The window ends while the escrow is frozen; the buyer can take only its own share, and
        // only once the token lets the escrow pay.
        vm.warp(deadline + 1 days);
        vm.prank(buyer);
        vm.expectRevert(blocked(address(escrow)));
        escrow.buyerWithdraw(a, buyer);
        vm.prank(seller);
        vm.expectRevert(blocked(address(escrow)));
        escrow.sellerClaim(a, VOUCHER, "", carol);

        usdc.unBlocklist(address(escrow));
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        assertEq(usdc.balanceOf(buyer), BUYER_FUNDS - INFRA_FEE - VOUCHER, "buyer gets only the remainder");
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "seller still owed");
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, "", seller);
        assertStatus(id, IAgreementEscrow.Status.Settled, "settled");
        assertEq(usdc.balanceOf(address(escrow)), 0, "everything paid out");
    }

    function test_blocklistedTreasury_sweepReverts_feesStayInCollector() public {
        activate(terms());
        usdc.blocklist(treasury);
        vm.expectRevert(blocked(treasury));
        feeCollector.sweep(address(usdc));
        assertEq(usdc.balanceOf(address(feeCollector)), INFRA_FEE, "fees kept");

        vm.prank(admin);
        feeCollector.setTreasury(dave);
        feeCollector.sweep(address(usdc));
        assertEq(usdc.balanceOf(dave), INFRA_FEE, "swept to the new treasury");
    }
}
