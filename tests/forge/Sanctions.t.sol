// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SecurityFixture} from "./utils/SecurityFixture.sol";
import {MockSanctionsOracle} from "./mocks/MockSanctionsOracle.sol";
import {IAgreementEscrow} from "../../contracts/interfaces/IAgreementEscrow.sol";
import {ReceiveAuthorization, PermitSignature} from "../../contracts/interfaces/ITokenAuthorizations.sol";

/// @notice Sanctions screening: both parties at activation; on a seller payout the buyer, the seller
///         and the recipient; on a buyer withdrawal the buyer and the recipient; whatever the route
///         (direct or signed) and whatever recipient is chosen. The oracle is trusted to answer; if it
///         does not (reverts, malformed answer, no code), screening fails closed: activation and buyer
///         withdrawal revert, and a seller's claim is recorded with its payout deferred.
contract SanctionsTest is SecurityFixture {
    uint256 internal constant VOUCHER = 40e6;

    function sanctioned(address account) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAgreementEscrow.SanctionedAddress.selector, account);
    }

    function assertDeferred(bytes32 id) internal view {
        IAgreementEscrow.AgreementState memory s = escrow.agreementState(id);
        assertEq(uint256(s.status), uint256(IAgreementEscrow.Status.SellerClaimed), "claim recorded");
        assertEq(s.settledAmount, VOUCHER, "entitlement");
        assertFalse(s.sellerPaid, "payout deferred");
    }

    function expectDeferred(bytes32 id, address recipient, IAgreementEscrow.DeferralReason reason, address flagged)
        internal
    {
        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.SellerPayoutDeferred(id, recipient, VOUCHER, reason, flagged);
    }

    function _closedWithVoucher() internal returns (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) {
        a = terms();
        id = activateAndClose(a);
        v = voucher(BUYER_KEY, id, VOUCHER);
    }

    // ---------------------------------------------------------------------------------------------
    // Activation
    // ---------------------------------------------------------------------------------------------

    /// Both listed: the buyer is reported first; delisting the buyer surfaces the seller; delisting
    /// both lets the very same authorizations activate.
    function test_activation_bothPartiesScreened_inEitherListingOrder() public {
        IAgreementEscrow.Agreement memory a = terms();
        ReceiveAuthorization memory d = depositAuthorization(a);
        ReceiveAuthorization memory f = feeAuthorization(a);

        sanction(seller);
        sanction(buyer);
        vm.expectRevert(sanctioned(buyer));
        escrow.activateWithAuthorization(a, d, f);

        unsanction(buyer);
        vm.expectRevert(sanctioned(seller));
        escrow.activateWithAuthorization(a, d, f);

        sanction(buyer);
        unsanction(seller);
        vm.expectRevert(sanctioned(buyer));
        escrow.activateWithAuthorization(a, d, f);

        unsanction(buyer);
        bytes32 id = escrow.activateWithAuthorization(a, d, f);
        assertStatus(id, IAgreementEscrow.Status.Active, "activates once delisted");
    }

    function test_activation_permitPath_screensBothParties() public {
        IAgreementEscrow.Agreement memory a = terms(MAX_AMOUNT, 0);
        vm.prank(buyer);
        usdc.approve(address(escrow), type(uint256).max);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = activationSignature(BUYER_KEY, a, deadline);
        PermitSignature memory none;

        sanction(buyer);
        vm.expectRevert(sanctioned(buyer));
        escrow.activateWithPermit(a, deadline, sig, none, none);
        unsanction(buyer);
        sanction(seller);
        vm.expectRevert(sanctioned(seller));
        escrow.activateWithPermit(a, deadline, sig, none, none);
        assertEq(usdc.balanceOf(address(escrow)), 0, "nothing pulled");
    }

    // ---------------------------------------------------------------------------------------------
    // Seller sanctioned after activation
    // ---------------------------------------------------------------------------------------------

    function test_sanctionedSeller_notPaid_directToAnyRecipient() public {
        address[3] memory recipients = [seller, carol, buyer];
        for (uint256 i = 0; i < recipients.length; ++i) {
            (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
            sanction(seller);
            expectDeferred(id, recipients[i], IAgreementEscrow.DeferralReason.Sanctioned, seller);
            vm.prank(seller);
            escrow.sellerClaim(a, VOUCHER, v, recipients[i]);
            assertDeferred(id);
            // A retry, to any recipient, reverts with the verdict.
            vm.prank(seller);
            vm.expectRevert(sanctioned(seller));
            escrow.sellerClaim(a, VOUCHER, "", recipients[i]);
            unsanction(seller);
        }
        assertEq(usdc.balanceOf(address(escrow)), 3 * MAX_AMOUNT, "nothing paid");
    }

    function test_sanctionedSeller_notPaid_withSigToAnyRecipient() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        uint256 dl = block.timestamp + 1 hours;
        bytes memory toSelf = claimSig(SELLER_KEY, id, VOUCHER, seller, dl);
        bytes memory toCarol = claimSig(SELLER_KEY, id, VOUCHER, carol, dl);
        sanction(seller);
        vm.startPrank(relayer);
        expectDeferred(id, seller, IAgreementEscrow.DeferralReason.Sanctioned, seller);
        escrow.sellerClaimWithSig(a, VOUCHER, v, seller, dl, toSelf);
        vm.expectRevert(sanctioned(seller));
        escrow.sellerClaimWithSig(a, VOUCHER, v, carol, dl, toCarol);
        vm.stopPrank();
        assertDeferred(id);
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "nothing paid");
    }

    /// The seller's sanctioning freezes only its own entitlement: the buyer withdraws the remainder,
    /// never the seller's share.
    function test_sanctionedSeller_buyerRecoversOnlyTheRemainder() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        sanction(seller);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        vm.warp(block.timestamp + CLOSE_WINDOW);
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "the seller's share stays owed");
        assertEq(usdc.balanceOf(buyer), BUYER_FUNDS - INFRA_FEE - VOUCHER, "remainder only");
        assertEq(usdc.balanceOf(address(escrow)), VOUCHER, "the seller's share frozen in escrow");
        vm.prank(buyer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.BuyerAlreadyWithdrawn.selector, id));
        escrow.buyerWithdraw(a, buyer);
    }

    /// A seller sanctioned for the whole window, that never claims, leaves the buyer the whole deposit.
    function test_sanctionedSeller_thatNeverClaims_buyerRecoversDeposit() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id,) = _closedWithVoucher();
        sanction(seller);
        vm.warp(block.timestamp + CLOSE_WINDOW);
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        assertStatus(id, IAgreementEscrow.Status.Settled, "settled");
        assertEq(usdc.balanceOf(buyer), BUYER_FUNDS - INFRA_FEE, "full deposit back");
    }

    /// Delisting pays the recorded entitlement, even long after the close window.
    function test_sanctionedSeller_delistingReleasesThePayout() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        uint256 before = usdc.balanceOf(seller);
        sanction(seller);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        vm.warp(block.timestamp + 365 days);
        unsanction(seller);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, "", seller);
        assertEq(usdc.balanceOf(seller), before + VOUCHER, "paid after delisting");
        assertTrue(escrow.agreementState(id).sellerPaid, "paid");
    }

    // ---------------------------------------------------------------------------------------------
    // Buyer sanctioned after activation
    // ---------------------------------------------------------------------------------------------

    function test_sanctionedBuyer_cannotWithdraw_directOrWithSig_toAnyRecipient() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id,) = _closedWithVoucher();
        vm.warp(block.timestamp + CLOSE_WINDOW);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory toSelf = withdrawSig(BUYER_KEY, id, buyer, dl);
        bytes memory toCarol = withdrawSig(BUYER_KEY, id, carol, dl);
        bytes memory toSeller = withdrawSig(BUYER_KEY, id, seller, dl);
        sanction(buyer);

        vm.startPrank(buyer);
        vm.expectRevert(sanctioned(buyer));
        escrow.buyerWithdraw(a, buyer);
        vm.expectRevert(sanctioned(buyer));
        escrow.buyerWithdraw(a, carol);
        vm.expectRevert(sanctioned(buyer));
        escrow.buyerWithdraw(a, seller);
        vm.stopPrank();

        vm.startPrank(relayer);
        vm.expectRevert(sanctioned(buyer));
        escrow.buyerWithdrawWithSig(a, buyer, dl, toSelf);
        vm.expectRevert(sanctioned(buyer));
        escrow.buyerWithdrawWithSig(a, carol, dl, toCarol);
        vm.expectRevert(sanctioned(buyer));
        escrow.buyerWithdrawWithSig(a, seller, dl, toSeller);
        vm.stopPrank();
        assertStatus(id, IAgreementEscrow.Status.Closing, "nothing paid");
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "deposit frozen in escrow");

        unsanction(buyer);
        vm.prank(relayer);
        escrow.buyerWithdrawWithSig(a, carol, dl, toCarol);
        assertEq(usdc.balanceOf(carol), MAX_AMOUNT, "delisting restores the withdrawal");
    }

    /// The seller's pay comes out of the buyer's deposit: a buyer sanctioned after activation freezes
    /// it too (the claim is recorded; the payout waits for the buyer's delisting).
    function test_sanctionedBuyer_freezesTheSellerPayout_untilDelisted() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        sanction(buyer);
        expectDeferred(id, seller, IAgreementEscrow.DeferralReason.Sanctioned, buyer);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        assertDeferred(id);
        vm.prank(seller);
        vm.expectRevert(sanctioned(buyer));
        escrow.sellerClaim(a, VOUCHER, "", seller);
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "everything frozen");

        unsanction(buyer);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, "", seller);
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT - VOUCHER, "seller paid once the buyer is delisted");
    }

    /// The buyer's remainder is its own money: a sanctioned seller does not block it.
    function test_sanctionedSeller_doesNotBlockBuyerWithdraw() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        sanction(seller);
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        assertStatus(id, IAgreementEscrow.Status.Settled, "settled");
    }

    /// Closing moves no funds and is not screened: a sanctioned party can still start the window.
    function test_sanctionedParty_canStillInitiateClose() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        sanction(buyer);
        vm.prank(buyer);
        escrow.initiateClose(a);
        assertStatus(id, IAgreementEscrow.Status.Closing, "closing");
    }

    // ---------------------------------------------------------------------------------------------
    // Sanctioned recipient
    // ---------------------------------------------------------------------------------------------

    function test_sanctionedRecipient_rejected_forBothPayouts() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        uint256 dl = block.timestamp + 1 hours;
        bytes memory claimToCarol = claimSig(SELLER_KEY, id, VOUCHER, carol, dl);
        sanction(carol);

        expectDeferred(id, carol, IAgreementEscrow.DeferralReason.Sanctioned, carol);
        vm.prank(relayer);
        escrow.sellerClaimWithSig(a, VOUCHER, v, carol, dl, claimToCarol);
        vm.prank(seller);
        vm.expectRevert(sanctioned(carol));
        escrow.sellerClaim(a, VOUCHER, "", carol);

        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, "", dave);
        bytes memory withdrawToCarol = withdrawSig(BUYER_KEY, id, carol, dl);
        vm.prank(buyer);
        vm.expectRevert(sanctioned(carol));
        escrow.buyerWithdraw(a, carol);
        vm.prank(relayer);
        vm.expectRevert(sanctioned(carol));
        escrow.buyerWithdrawWithSig(a, carol, dl, withdrawToCarol);

        unsanction(carol);
        vm.prank(relayer);
        escrow.buyerWithdrawWithSig(a, carol, dl, withdrawToCarol);
        assertEq(usdc.balanceOf(carol), MAX_AMOUNT - VOUCHER, "delisted recipient paid");
        assertEq(usdc.balanceOf(dave), VOUCHER, "seller paid at its second choice");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow empty");
    }

    // ---------------------------------------------------------------------------------------------
    // A misbehaving oracle: fail closed
    // ---------------------------------------------------------------------------------------------

    function _useMockOracle() internal returns (MockSanctionsOracle mock) {
        mock = new MockSanctionsOracle();
        (feeCollector, escrow) = deployEscrow(address(mock));
    }

    function test_revertingOracle_blocksActivation() public {
        MockSanctionsOracle mock = _useMockOracle();
        IAgreementEscrow.Agreement memory a = terms();
        ReceiveAuthorization memory d = depositAuthorization(a);
        ReceiveAuthorization memory f = feeAuthorization(a);
        mock.setMode(MockSanctionsOracle.Mode.RevertAll, address(0));
        vm.expectRevert(abi.encodeWithSelector(MockSanctionsOracle.OracleUnavailable.selector));
        escrow.activateWithAuthorization(a, d, f);
        // Reverting for the seller only is enough.
        mock.setMode(MockSanctionsOracle.Mode.RevertForTarget, seller);
        vm.expectRevert(abi.encodeWithSelector(MockSanctionsOracle.OracleUnavailable.selector));
        escrow.activateWithAuthorization(a, d, f);
        assertStatus(idOf(a), IAgreementEscrow.Status.None, "not activated");

        mock.setMode(MockSanctionsOracle.Mode.Normal, address(0));
        escrow.activateWithAuthorization(a, d, f);
        assertStatus(idOf(a), IAgreementEscrow.Status.Active, "activates when the oracle answers");
    }

    function test_revertingOracle_defersSellerPayout_blocksWithdraw_untilItAnswers() public {
        MockSanctionsOracle mock = _useMockOracle();
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        uint256 dl = block.timestamp + 2 * CLOSE_WINDOW;
        bytes memory s = claimSig(SELLER_KEY, id, VOUCHER, seller, dl);
        bytes memory err = abi.encodeWithSelector(MockSanctionsOracle.OracleUnavailable.selector);
        mock.setMode(MockSanctionsOracle.Mode.RevertAll, address(0));

        expectDeferred(id, seller, IAgreementEscrow.DeferralReason.ScreeningUnavailable, buyer);
        vm.prank(relayer);
        escrow.sellerClaimWithSig(a, VOUCHER, v, seller, dl, s);
        assertDeferred(id);
        // A retry bubbles the oracle's own error.
        vm.prank(relayer);
        vm.expectRevert(err);
        escrow.sellerClaimWithSig(a, VOUCHER, v, seller, dl, s);

        vm.warp(block.timestamp + CLOSE_WINDOW);
        vm.prank(buyer);
        vm.expectRevert(err);
        escrow.buyerWithdraw(a, buyer);
        assertDeferred(id);

        mock.setMode(MockSanctionsOracle.Mode.Normal, address(0));
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        vm.prank(relayer);
        escrow.sellerClaimWithSig(a, VOUCHER, v, seller, dl, s);
        assertStatus(id, IAgreementEscrow.Status.Settled, "settled once the oracle answers");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow empty");
    }

    function test_oracleRevertingForRecipientOnly_defersThatRecipient() public {
        MockSanctionsOracle mock = _useMockOracle();
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        mock.setMode(MockSanctionsOracle.Mode.RevertForTarget, carol);
        expectDeferred(id, carol, IAgreementEscrow.DeferralReason.ScreeningUnavailable, carol);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, carol);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, "", dave);
        assertEq(usdc.balanceOf(dave), VOUCHER, "paid elsewhere");
    }

    /// Regression for the former limitation: an oracle outage spanning the whole close window used to
    /// make the seller's claim revert until the window ended, handing its earnings to the buyer. The
    /// claim is now recorded in the window and paid once the oracle answers.
    function test_oracleOutageThroughTheWindow_sellerKeepsItsClaim() public {
        MockSanctionsOracle mock = _useMockOracle();
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        uint256 deadline = escrow.agreementState(id).closeDeadline;
        mock.setMode(MockSanctionsOracle.Mode.RevertAll, address(0));
        vm.warp(deadline - 1);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        assertDeferred(id);

        vm.warp(deadline + 7 days);
        mock.setMode(MockSanctionsOracle.Mode.Normal, address(0));
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        assertEq(usdc.balanceOf(buyer), BUYER_FUNDS - INFRA_FEE - VOUCHER, "buyer recovers only the remainder");
        uint256 sellerBefore = usdc.balanceOf(seller);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, "", seller);
        assertEq(usdc.balanceOf(seller), sellerBefore + VOUCHER, "seller paid after the outage");
    }

    function test_malformedOracleAnswers_failClosed() public {
        MockSanctionsOracle mock = _useMockOracle();
        MockSanctionsOracle.Mode[3] memory modes = [
            MockSanctionsOracle.Mode.ReturnNothing,
            MockSanctionsOracle.Mode.ReturnNonBoolean,
            MockSanctionsOracle.Mode.WriteState
        ];
        for (uint256 i = 0; i < modes.length; ++i) {
            IAgreementEscrow.Agreement memory live = terms();
            bytes32 liveId = activateAndClose(live);
            bytes memory v = voucher(BUYER_KEY, liveId, VOUCHER);
            IAgreementEscrow.Agreement memory a = terms();
            ReceiveAuthorization memory d = depositAuthorization(a);
            ReceiveAuthorization memory f = feeAuthorization(a);
            mock.setMode(modes[i], address(0));
            // Empty revert data: the escrow's own ABI decoding / static call failure, not a verdict.
            vm.expectRevert(bytes(""));
            escrow.activateWithAuthorization(a, d, f);
            expectDeferred(liveId, seller, IAgreementEscrow.DeferralReason.ScreeningUnavailable, buyer);
            vm.prank(seller);
            escrow.sellerClaim(live, VOUCHER, v, seller);
            assertDeferred(liveId);
            vm.prank(seller);
            vm.expectRevert(bytes(""));
            escrow.sellerClaim(live, VOUCHER, "", seller);

            mock.setMode(MockSanctionsOracle.Mode.Normal, address(0));
            vm.prank(seller);
            escrow.sellerClaim(live, VOUCHER, "", seller);
            assertTrue(escrow.agreementState(liveId).sellerPaid, "paid once the oracle answers");
        }
        assertEq(mock.lookups(), 0, "the oracle was only ever called statically");
    }

    function test_oracleWithoutCode_failsClosed() public {
        MockSanctionsOracle mock = _useMockOracle();
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        IAgreementEscrow.Agreement memory b = terms();
        ReceiveAuthorization memory d = depositAuthorization(b);
        ReceiveAuthorization memory f = feeAuthorization(b);
        vm.etch(address(mock), "");

        vm.expectRevert(bytes(""));
        escrow.activateWithAuthorization(b, d, f);
        expectDeferred(id, seller, IAgreementEscrow.DeferralReason.ScreeningUnavailable, buyer);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        assertDeferred(id);
        assertStatus(idOf(b), IAgreementEscrow.Status.None, "no activation");
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "no payout");
    }
}
