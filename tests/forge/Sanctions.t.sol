// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SecurityFixture} from "./utils/SecurityFixture.sol";
import {MockSanctionsOracle} from "./mocks/MockSanctionsOracle.sol";
import {IAgreementEscrow} from "../../contracts/interfaces/IAgreementEscrow.sol";
import {ReceiveAuthorization, PermitSignature} from "../../contracts/interfaces/ITokenAuthorizations.sol";

/// @notice Sanctions screening: both parties at activation; the paid party and its recipient on every
///         payout, whatever the route (direct or signed) and whatever recipient is chosen. The oracle
///         is trusted to answer; if it does not (reverts, malformed answer, no code), the screened
///         operation reverts (fail closed).
contract SanctionsTest is SecurityFixture {
    uint256 internal constant VOUCHER = 40e6;

    function sanctioned(address account) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAgreementEscrow.SanctionedAddress.selector, account);
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
        bytes memory sig = activationSignature(BUYER_KEY, idOf(a), deadline);
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

    function test_sanctionedSeller_cannotBePaid_directToAnyRecipient() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        sanction(seller);
        address[3] memory recipients = [seller, carol, buyer];
        for (uint256 i = 0; i < recipients.length; ++i) {
            vm.prank(seller);
            vm.expectRevert(sanctioned(seller));
            escrow.sellerClaim(a, VOUCHER, v, recipients[i]);
        }
        assertStatus(id, IAgreementEscrow.Status.Closing, "unpaid");
    }

    function test_sanctionedSeller_cannotBePaid_withSigToAnyRecipient() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        uint256 dl = block.timestamp + 1 hours;
        bytes memory toSelf = claimSig(SELLER_KEY, id, VOUCHER, seller, dl);
        bytes memory toCarol = claimSig(SELLER_KEY, id, VOUCHER, carol, dl);
        sanction(seller);
        vm.startPrank(relayer);
        vm.expectRevert(sanctioned(seller));
        escrow.sellerClaimWithSig(a, VOUCHER, v, seller, dl, toSelf);
        vm.expectRevert(sanctioned(seller));
        escrow.sellerClaimWithSig(a, VOUCHER, v, carol, dl, toCarol);
        vm.stopPrank();
        assertStatus(id, IAgreementEscrow.Status.Closing, "unpaid");
    }

    /// The seller's sanctioning does not trap the buyer's funds: after the window, the buyer recovers
    /// the whole deposit.
    function test_sanctionedSeller_buyerRecoversDeposit() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id,) = _closedWithVoucher();
        sanction(seller);
        vm.warp(block.timestamp + CLOSE_WINDOW);
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        assertStatus(id, IAgreementEscrow.Status.Settled, "settled");
        assertEq(usdc.balanceOf(buyer), BUYER_FUNDS - INFRA_FEE, "full deposit back");
    }

    function test_sanctionedSeller_delistingRestoresClaim() public {
        (IAgreementEscrow.Agreement memory a,, bytes memory v) = _closedWithVoucher();
        uint256 before = usdc.balanceOf(seller);
        sanction(seller);
        vm.prank(seller);
        vm.expectRevert(sanctioned(seller));
        escrow.sellerClaim(a, VOUCHER, v, seller);
        unsanction(seller);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        assertEq(usdc.balanceOf(seller), before + VOUCHER, "paid after delisting");
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

    /// Documented behaviour (only the paid party and its recipient are screened on a payout): the
    /// seller's claim on a buyer sanctioned after activation still goes through.
    function test_sanctionedBuyer_doesNotBlockSellerClaim() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        sanction(buyer);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "seller paid");
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT - VOUCHER, "buyer's remainder frozen");
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

        vm.prank(seller);
        vm.expectRevert(sanctioned(carol));
        escrow.sellerClaim(a, VOUCHER, v, carol);
        vm.prank(relayer);
        vm.expectRevert(sanctioned(carol));
        escrow.sellerClaimWithSig(a, VOUCHER, v, carol, dl, claimToCarol);

        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, dave);
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

    function test_revertingOracle_blocksPayouts_untilItAnswers() public {
        MockSanctionsOracle mock = _useMockOracle();
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        uint256 dl = block.timestamp + 1 hours;
        bytes memory s = claimSig(SELLER_KEY, id, VOUCHER, seller, dl);
        bytes memory err = abi.encodeWithSelector(MockSanctionsOracle.OracleUnavailable.selector);
        mock.setMode(MockSanctionsOracle.Mode.RevertAll, address(0));

        vm.prank(seller);
        vm.expectRevert(err);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        vm.prank(relayer);
        vm.expectRevert(err);
        escrow.sellerClaimWithSig(a, VOUCHER, v, seller, dl, s);

        mock.setMode(MockSanctionsOracle.Mode.Normal, address(0));
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);

        mock.setMode(MockSanctionsOracle.Mode.RevertAll, address(0));
        vm.prank(buyer);
        vm.expectRevert(err);
        escrow.buyerWithdraw(a, buyer);
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "withdraw blocked");
        mock.setMode(MockSanctionsOracle.Mode.Normal, address(0));
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        assertStatus(id, IAgreementEscrow.Status.Settled, "settled once the oracle answers");
    }

    function test_oracleRevertingForRecipientOnly_blocksThatRecipient() public {
        MockSanctionsOracle mock = _useMockOracle();
        (IAgreementEscrow.Agreement memory a,, bytes memory v) = _closedWithVoucher();
        mock.setMode(MockSanctionsOracle.Mode.RevertForTarget, carol);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(MockSanctionsOracle.OracleUnavailable.selector));
        escrow.sellerClaim(a, VOUCHER, v, carol);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, dave);
        assertEq(usdc.balanceOf(dave), VOUCHER, "paid elsewhere");
    }

    /// Documents a trust assumption: the close window keeps running while the oracle is down. A seller
    /// that could not claim before the deadline loses its claim; the buyer recovers the whole deposit
    /// once the oracle answers again.
    function test_oracleOutageThroughTheWindow_sellerLosesClaim() public {
        MockSanctionsOracle mock = _useMockOracle();
        (IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) = _closedWithVoucher();
        uint256 deadline = escrow.agreementState(id).closeDeadline;
        mock.setMode(MockSanctionsOracle.Mode.RevertAll, address(0));
        vm.warp(deadline - 1);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(MockSanctionsOracle.OracleUnavailable.selector));
        escrow.sellerClaim(a, VOUCHER, v, seller);

        vm.warp(deadline);
        mock.setMode(MockSanctionsOracle.Mode.Normal, address(0));
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.CloseWindowElapsed.selector, id, deadline, deadline));
        escrow.sellerClaim(a, VOUCHER, v, seller);
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        assertEq(usdc.balanceOf(buyer), BUYER_FUNDS - INFRA_FEE, "buyer recovers everything");
    }

    function test_malformedOracleAnswers_failClosed() public {
        MockSanctionsOracle mock = _useMockOracle();
        IAgreementEscrow.Agreement memory live = terms();
        bytes32 liveId = activateAndClose(live);
        bytes memory v = voucher(BUYER_KEY, liveId, VOUCHER);

        MockSanctionsOracle.Mode[3] memory modes = [
            MockSanctionsOracle.Mode.ReturnNothing,
            MockSanctionsOracle.Mode.ReturnNonBoolean,
            MockSanctionsOracle.Mode.WriteState
        ];
        for (uint256 i = 0; i < modes.length; ++i) {
            IAgreementEscrow.Agreement memory a = terms();
            ReceiveAuthorization memory d = depositAuthorization(a);
            ReceiveAuthorization memory f = feeAuthorization(a);
            mock.setMode(modes[i], address(0));
            // Empty revert data: the escrow's own ABI decoding / static call failure, not a verdict.
            vm.expectRevert(bytes(""));
            escrow.activateWithAuthorization(a, d, f);
            vm.prank(seller);
            vm.expectRevert(bytes(""));
            escrow.sellerClaim(live, VOUCHER, v, seller);
        }
        assertEq(mock.lookups(), 0, "the oracle was only ever called statically");
        assertStatus(liveId, IAgreementEscrow.Status.Closing, "no payout on a malformed answer");

        mock.setMode(MockSanctionsOracle.Mode.Normal, address(0));
        vm.prank(seller);
        escrow.sellerClaim(live, VOUCHER, v, seller);
        assertStatus(liveId, IAgreementEscrow.Status.SellerClaimed, "paid once the oracle answers");
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
        vm.prank(seller);
        vm.expectRevert(bytes(""));
        escrow.sellerClaim(a, VOUCHER, v, seller);
        assertStatus(id, IAgreementEscrow.Status.Closing, "no payout");
        assertStatus(idOf(b), IAgreementEscrow.Status.None, "no activation");
    }
}
