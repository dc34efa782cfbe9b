// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SecurityFixture} from "./utils/SecurityFixture.sol";
import {IAgreementEscrow} from "../../contracts/interfaces/IAgreementEscrow.sol";
import {ReceiveAuthorization} from "../../contracts/interfaces/ITokenAuthorizations.sol";
import {LocalUSDC} from "../../contracts/local/LocalUSDC.sol";

/// @notice The token (like USDC) may blocklist any address, including a party, a recipient, the fee
///         collector or the escrow itself. A blocklisted party is paid at a recipient it chooses (direct
///         call) or signs for (`...WithSig`); a failed payout changes nothing, so it can be retried; and
///         the other party's funds never depend on the blocklisted one.
contract BlocklistTest is SecurityFixture {
    uint256 internal constant VOUCHER = 40e6;

    function blocked(address account) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(LocalUSDC.AccountBlocklisted.selector, account);
    }

    function _closedWithVoucher() internal returns (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) {
        a = terms();
        id = activateAndClose(a);
        v = voucher(BUYER_KEY, id, VOUCHER);
    }

    // ---------------------------------------------------------------------------------------------
    // Blocklisted seller
    // ---------------------------------------------------------------------------------------------

    function test_blocklistedSeller_directClaimToSelfReverts_toAlternativeSucceeds() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        usdc.blocklist(seller);

        vm.prank(seller);
        vm.expectRevert(blocked(seller));
        escrow.sellerClaim(a, VOUCHER, v, seller);
        assertStatus(id, IAgreementEscrow.Status.Closing, "failed claim changed nothing");

        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, carol);
        assertEq(usdc.balanceOf(carol), VOUCHER, "paid at the alternative recipient");
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "claimed");

        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        assertEq(usdc.balanceOf(address(escrow)), 0, "nothing stuck");
        assertEq(usdc.balanceOf(buyer), BUYER_FUNDS - VOUCHER - INFRA_FEE, "buyer got the remainder");
    }

    function test_blocklistedSeller_claimWithSigToSelfReverts_signedAlternativeSucceeds() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        uint256 dl = block.timestamp + 1 hours;
        bytes memory toSelf = claimSig(SELLER_KEY, id, VOUCHER, seller, dl);
        bytes memory toCarol = claimSig(SELLER_KEY, id, VOUCHER, carol, dl);
        usdc.blocklist(seller);

        vm.prank(relayer);
        vm.expectRevert(blocked(seller));
        escrow.sellerClaimWithSig(a, VOUCHER, v, seller, dl, toSelf);
        // A relayer cannot redirect the self-addressed authorization to another recipient.
        vm.prank(relayer);
        vm.expectRevert(invalidSignature(seller));
        escrow.sellerClaimWithSig(a, VOUCHER, v, carol, dl, toSelf);

        vm.prank(relayer);
        escrow.sellerClaimWithSig(a, VOUCHER, v, carol, dl, toCarol);
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

    function test_sellerUnblocklisted_canClaimToSelfAgain() public {
        (IAgreementEscrow.Agreement memory a,, bytes memory v) = _closedWithVoucher();
        uint256 before = usdc.balanceOf(seller);
        usdc.blocklist(seller);
        vm.prank(seller);
        vm.expectRevert(blocked(seller));
        escrow.sellerClaim(a, VOUCHER, v, seller);
        usdc.unBlocklist(seller);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        assertEq(usdc.balanceOf(seller), before + VOUCHER, "paid after delisting");
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

    function test_blocklistedRecipient_claimReverts_retryElsewhere() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        usdc.blocklist(carol);
        vm.prank(seller);
        vm.expectRevert(blocked(carol));
        escrow.sellerClaim(a, VOUCHER, v, carol);
        assertStatus(id, IAgreementEscrow.Status.Closing, "unchanged");
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, dave);
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

    /// While the token blocklists the escrow, no payout can happen; nothing is lost or mis-recorded,
    /// and everything is payable once the escrow is delisted.
    function test_blocklistedEscrow_payoutsFrozen_thenRecoverable() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        usdc.blocklist(address(escrow));
        vm.prank(seller);
        vm.expectRevert(blocked(address(escrow)));
        escrow.sellerClaim(a, VOUCHER, v, seller);
        vm.prank(seller);
        vm.expectRevert(blocked(address(escrow)));
        escrow.sellerClaim(a, VOUCHER, v, carol);
        assertStatus(id, IAgreementEscrow.Status.Closing, "unchanged");
        assertEq(escrow.agreementState(id).settledAmount, 0, "nothing recorded");

        usdc.unBlocklist(address(escrow));
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        assertEq(usdc.balanceOf(address(escrow)), 0, "everything paid out");
    }

    /// Documents a trust assumption: the close window keeps running while the token blocks the escrow.
    /// A seller that could not claim in time (through no fault of its own) loses the claim, and the
    /// buyer recovers the full deposit once the escrow is delisted.
    function test_blocklistedEscrow_throughTheWholeWindow_sellerLosesClaim() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        uint256 deadline = escrow.agreementState(id).closeDeadline;
        usdc.blocklist(address(escrow));
        vm.warp(deadline);
        usdc.unBlocklist(address(escrow));
        vm.prank(seller);
        vm.expectRevert(
            abi.encodeWithSelector(IAgreementEscrow.CloseWindowElapsed.selector, id, deadline, block.timestamp)
        );
        escrow.sellerClaim(a, VOUCHER, v, seller);
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        assertEq(usdc.balanceOf(buyer), BUYER_FUNDS - INFRA_FEE, "buyer recovers everything");
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
