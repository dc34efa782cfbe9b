// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {IAgreementEscrow} from "../../contracts/interfaces/IAgreementEscrow.sol";

/// @notice `buyerWithdraw` and `buyerWithdrawWithSig`: the buyer recovers what the seller was not paid.
contract BuyerWithdrawTest is EscrowFixture {
    address internal carol = address(0xCA201); // an alternative recipient chosen by the buyer

    // ---------------------------------------------------------------------------------------------
    // Direct calls: success
    // ---------------------------------------------------------------------------------------------

    /// Once the seller has claimed, the buyer need not wait for the window to end.
    function test_buyerWithdraw_afterSellerClaim_immediately() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, 35e6);
        uint256 closeDeadline = escrow.agreementState(id).closeDeadline;
        assertGt(closeDeadline, block.timestamp, "window still open");
        _assertDirectWithdraw(a, id, buyer, MAX_AMOUNT - 35e6, 35e6, closeDeadline);
    }

    function test_buyerWithdraw_afterSellerClaim_toAlternativeRecipient() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, 1);
        uint256 closeDeadline = escrow.agreementState(id).closeDeadline;
        _assertDirectWithdraw(a, id, carol, MAX_AMOUNT - 1, 1, closeDeadline);
    }

    /// Without a claim, the whole deposit comes back once the window is over (at closeDeadline itself).
    function test_buyerWithdraw_atCloseDeadline_withoutClaim_fullAmount() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 closeDeadline = escrow.agreementState(id).closeDeadline;
        vm.warp(closeDeadline);
        _assertDirectWithdraw(a, id, buyer, MAX_AMOUNT, 0, closeDeadline);
    }

    function test_buyerWithdraw_longAfterCloseDeadline_toAlternativeRecipient() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 closeDeadline = escrow.agreementState(id).closeDeadline;
        vm.warp(closeDeadline + 400 days);
        _assertDirectWithdraw(a, id, carol, MAX_AMOUNT, 0, closeDeadline);
    }

    /// A seller-initiated close that the seller never claims still lets the buyer recover everything.
    function test_buyerWithdraw_afterSellerInitiatedCloseAndNoClaim() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        vm.prank(seller);
        escrow.initiateClose(a);
        uint256 closeDeadline = escrow.agreementState(id).closeDeadline;
        vm.warp(closeDeadline);
        _assertDirectWithdraw(a, id, buyer, MAX_AMOUNT, 0, closeDeadline);
    }

    /// The seller's claim (remainder) plus the buyer's withdrawal account for the whole deposit,
    /// and withdrawing one agreement leaves another's funds in place.
    function test_buyerWithdraw_conservesFunds_andIsolatesAgreements() public {
        IAgreementEscrow.Agreement memory a = terms();
        IAgreementEscrow.Agreement memory b = terms();
        bytes32 idB = activate(b);
        uint256 buyerStart = usdc.balanceOf(buyer);
        uint256 sellerStart = usdc.balanceOf(seller);
        bytes32 idA = _claimed(a, 61e6);
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);

        assertEq(usdc.balanceOf(seller), sellerStart + 61e6, "seller got its voucher");
        // buyer paid MAX_AMOUNT + fee for `a` and got MAX_AMOUNT - 61e6 back
        assertEq(usdc.balanceOf(buyer), buyerStart - INFRA_FEE - 61e6, "buyer net cost = fee + usage");
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "only b's deposit remains");
        assertStatus(idA, IAgreementEscrow.Status.Settled, "a settled");
        assertStatus(idB, IAgreementEscrow.Status.Active, "b untouched");
    }

    // ---------------------------------------------------------------------------------------------
    // Direct calls: reverts
    // ---------------------------------------------------------------------------------------------

    function test_buyerWithdraw_revertsWhenCallerIsNotBuyer() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, 35e6);
        address[3] memory callers = [seller, stranger, relayer];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.prank(callers[i]);
            vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.NotParty.selector, callers[i], buyer));
            escrow.buyerWithdraw(a, callers[i]);
        }
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "unchanged");
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT - 35e6, "remainder intact");
    }

    function test_buyerWithdraw_revertsWhenNeverActivated() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = idOf(a);
        vm.prank(buyer);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.None));
        escrow.buyerWithdraw(a, buyer);
    }

    function test_buyerWithdraw_revertsWhenActive() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        vm.prank(buyer);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.Active));
        escrow.buyerWithdraw(a, buyer);
        // Even far in the future (past expiry), an Active agreement must be closed first.
        vm.warp(uint256(a.expiry) + 365 days);
        vm.prank(buyer);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.Active));
        escrow.buyerWithdraw(a, buyer);
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "deposit intact");
    }

    function test_buyerWithdraw_revertsWhileCloseWindowOpen() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 closeDeadline = escrow.agreementState(id).closeDeadline;

        vm.prank(buyer);
        vm.expectRevert(
            abi.encodeWithSelector(IAgreementEscrow.CloseWindowOpen.selector, id, closeDeadline, block.timestamp)
        );
        escrow.buyerWithdraw(a, buyer);

        vm.warp(closeDeadline - 1);
        vm.prank(buyer);
        vm.expectRevert(
            abi.encodeWithSelector(IAgreementEscrow.CloseWindowOpen.selector, id, closeDeadline, closeDeadline - 1)
        );
        escrow.buyerWithdraw(a, buyer);
        assertStatus(id, IAgreementEscrow.Status.Closing, "still Closing");
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "deposit intact");
    }

    function test_buyerWithdraw_revertsOnSecondWithdrawal() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, 35e6);
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        uint256 buyerAfter = usdc.balanceOf(buyer);

        vm.prank(buyer);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.Settled));
        escrow.buyerWithdraw(a, buyer);
        assertEq(usdc.balanceOf(buyer), buyerAfter, "paid once");
    }

    function test_buyerWithdraw_revertsWhenNothingLeft_afterFullClaim() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, MAX_AMOUNT);
        assertStatus(id, IAgreementEscrow.Status.Settled, "full claim settles");

        vm.prank(buyer);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.Settled));
        escrow.buyerWithdraw(a, buyer);
        // Also after the window: there is nothing to withdraw.
        vm.warp(block.timestamp + CLOSE_WINDOW);
        vm.prank(buyer);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.Settled));
        escrow.buyerWithdraw(a, buyer);
    }

    function test_buyerWithdraw_revertsOnZeroRecipient() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, 35e6);
        vm.prank(buyer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidRecipient.selector, address(0)));
        escrow.buyerWithdraw(a, address(0));
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "unchanged");
    }

    function test_buyerWithdraw_revertsWhenRecipientIsEscrow() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, 35e6);
        vm.prank(buyer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidRecipient.selector, address(escrow)));
        escrow.buyerWithdraw(a, address(escrow));
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "unchanged");
    }

    function test_buyerWithdraw_revertsWhenBuyerSanctioned() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, 35e6);
        sanction(buyer);
        vm.prank(buyer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.SanctionedAddress.selector, buyer));
        escrow.buyerWithdraw(a, buyer);
        // Nor can it route the remainder to a clean address.
        vm.prank(buyer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.SanctionedAddress.selector, buyer));
        escrow.buyerWithdraw(a, carol);
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "unchanged");
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT - 35e6, "remainder frozen in escrow");
    }

    function test_buyerWithdraw_revertsWhenRecipientSanctioned() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, 35e6);
        sanction(carol);
        vm.prank(buyer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.SanctionedAddress.selector, carol));
        escrow.buyerWithdraw(a, carol);
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "unchanged");

        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        assertStatus(id, IAgreementEscrow.Status.Settled, "clean recipient paid");
    }

    // ---------------------------------------------------------------------------------------------
    // Signed (relayed) calls
    // ---------------------------------------------------------------------------------------------

    function test_buyerWithdrawWithSig_relayed_afterClaim() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, 35e6);
        _assertSignedWithdraw(a, id, buyer, MAX_AMOUNT - 35e6, 35e6);
    }

    function test_buyerWithdrawWithSig_relayed_afterWindow_toAlternativeRecipient() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        vm.warp(block.timestamp + CLOSE_WINDOW);
        _assertSignedWithdraw(a, id, carol, MAX_AMOUNT, 0);
    }

    function test_buyerWithdrawWithSig_validAtDeadline() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, 35e6);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(BUYER_KEY, withdrawDigest(id, buyer, deadline));
        vm.warp(deadline);
        vm.prank(relayer);
        escrow.buyerWithdrawWithSig(a, buyer, deadline, sig);
        assertStatus(id, IAgreementEscrow.Status.Settled, "valid at timestamp == deadline");
    }

    function test_buyerWithdrawWithSig_revertsWhenExpired() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, 35e6);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(BUYER_KEY, withdrawDigest(id, buyer, deadline));
        vm.warp(deadline + 1);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.AuthorizationExpired.selector, deadline, deadline + 1));
        escrow.buyerWithdrawWithSig(a, buyer, deadline, sig);
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "unchanged");
    }

    function test_buyerWithdrawWithSig_revertsWhenRelayerChangesRecipient() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, 35e6);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(BUYER_KEY, withdrawDigest(id, buyer, deadline));
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, buyer));
        escrow.buyerWithdrawWithSig(a, relayer, deadline, sig);
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "unchanged");
    }

    function test_buyerWithdrawWithSig_revertsWhenRelayerChangesDeadline() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, 35e6);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(BUYER_KEY, withdrawDigest(id, buyer, deadline));
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, buyer));
        escrow.buyerWithdrawWithSig(a, buyer, deadline + 1, sig);
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "unchanged");
    }

    function test_buyerWithdrawWithSig_revertsWhenRelayerChangesAgreement() public {
        IAgreementEscrow.Agreement memory a = terms();
        IAgreementEscrow.Agreement memory b = terms();
        bytes32 idA = _claimed(a, 35e6);
        bytes32 idB = _claimed(b, 35e6);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sigA = sign(BUYER_KEY, withdrawDigest(idA, carol, deadline));
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, buyer));
        escrow.buyerWithdrawWithSig(b, carol, deadline, sigA);
        assertStatus(idA, IAgreementEscrow.Status.SellerClaimed, "a unchanged");
        assertStatus(idB, IAgreementEscrow.Status.SellerClaimed, "b unchanged");
    }

    function test_buyerWithdrawWithSig_revertsWhenSignedByWrongKey() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, 35e6);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory bySeller = sign(SELLER_KEY, withdrawDigest(id, seller, deadline));
        bytes memory byStranger = sign(STRANGER_KEY, withdrawDigest(id, stranger, deadline));

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, buyer));
        escrow.buyerWithdrawWithSig(a, seller, deadline, bySeller);

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, buyer));
        escrow.buyerWithdrawWithSig(a, stranger, deadline, byStranger);
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "unchanged");
    }

    /// A buyer's close authorization (same fields, another EIP-712 type) is not a withdrawal authorization.
    function test_buyerWithdrawWithSig_revertsWithOtherBuyerMessage() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, 35e6);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory closeSig = sign(BUYER_KEY, closeDigest(id, buyer, deadline));
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, buyer));
        escrow.buyerWithdrawWithSig(a, buyer, deadline, closeSig);
    }

    function test_buyerWithdrawWithSig_revertsOnReplayAfterUse() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, 35e6);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(BUYER_KEY, withdrawDigest(id, carol, deadline));
        vm.prank(relayer);
        escrow.buyerWithdrawWithSig(a, carol, deadline, sig);
        uint256 carolAfter = usdc.balanceOf(carol);

        vm.prank(stranger);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.Settled));
        escrow.buyerWithdrawWithSig(a, carol, deadline, sig);
        assertEq(usdc.balanceOf(carol), carolAfter, "paid once");
    }

    function test_buyerWithdrawWithSig_revertsWhileCloseWindowOpen() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 closeDeadline = escrow.agreementState(id).closeDeadline;
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(BUYER_KEY, withdrawDigest(id, buyer, deadline));
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(IAgreementEscrow.CloseWindowOpen.selector, id, closeDeadline, block.timestamp)
        );
        escrow.buyerWithdrawWithSig(a, buyer, deadline, sig);
    }

    function test_buyerWithdrawWithSig_revertsWhenActive() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(BUYER_KEY, withdrawDigest(id, buyer, deadline));
        vm.prank(relayer);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.Active));
        escrow.buyerWithdrawWithSig(a, buyer, deadline, sig);
    }

    function test_buyerWithdrawWithSig_revertsWhenBuyerSanctioned() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, 35e6);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(BUYER_KEY, withdrawDigest(id, carol, deadline));
        sanction(buyer);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.SanctionedAddress.selector, buyer));
        escrow.buyerWithdrawWithSig(a, carol, deadline, sig);
    }

    function test_buyerWithdrawWithSig_revertsWhenRecipientSanctioned() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, 35e6);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(BUYER_KEY, withdrawDigest(id, carol, deadline));
        sanction(carol);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.SanctionedAddress.selector, carol));
        escrow.buyerWithdrawWithSig(a, carol, deadline, sig);
    }

    function test_buyerWithdrawWithSig_revertsOnInvalidRecipient() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = _claimed(a, 35e6);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory toZero = sign(BUYER_KEY, withdrawDigest(id, address(0), deadline));
        bytes memory toEscrow = sign(BUYER_KEY, withdrawDigest(id, address(escrow), deadline));

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidRecipient.selector, address(0)));
        escrow.buyerWithdrawWithSig(a, address(0), deadline, toZero);

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidRecipient.selector, address(escrow)));
        escrow.buyerWithdrawWithSig(a, address(escrow), deadline, toEscrow);
    }

    // ---------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------

    /// Activates, closes (by the buyer) and has the seller claim `amount`.
    function _claimed(IAgreementEscrow.Agreement memory a, uint256 amount) private returns (bytes32 id) {
        id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, amount);
        vm.prank(seller);
        escrow.sellerClaim(a, amount, v, seller);
    }

    function _assertDirectWithdraw(
        IAgreementEscrow.Agreement memory a,
        bytes32 id,
        address recipient,
        uint256 expectedAmount,
        uint256 settled,
        uint256 closeDeadline
    ) private {
        uint256 recipientBefore = usdc.balanceOf(recipient);
        uint256 buyerBefore = usdc.balanceOf(buyer);
        uint256 sellerBefore = usdc.balanceOf(seller);
        uint256 escrowBefore = usdc.balanceOf(address(escrow));

        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.BuyerWithdrew(id, recipient, expectedAmount);
        vm.prank(buyer);
        escrow.buyerWithdraw(a, recipient);

        _assertSettled(id, settled, closeDeadline);
        assertEq(usdc.balanceOf(recipient), recipientBefore + expectedAmount, "recipient paid the remainder");
        if (recipient != buyer) assertEq(usdc.balanceOf(buyer), buyerBefore, "buyer itself not paid");
        assertEq(usdc.balanceOf(seller), sellerBefore, "seller unaffected");
        assertEq(usdc.balanceOf(address(escrow)), escrowBefore - expectedAmount, "escrow paid out the remainder");
    }

    function _assertSignedWithdraw(
        IAgreementEscrow.Agreement memory a,
        bytes32 id,
        address recipient,
        uint256 expectedAmount,
        uint256 settled
    ) private {
        uint256 closeDeadline = escrow.agreementState(id).closeDeadline;
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(BUYER_KEY, withdrawDigest(id, recipient, deadline));
        uint256 recipientBefore = usdc.balanceOf(recipient);
        uint256 relayerBefore = usdc.balanceOf(relayer);
        uint256 escrowBefore = usdc.balanceOf(address(escrow));

        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.BuyerWithdrew(id, recipient, expectedAmount);
        vm.prank(relayer);
        escrow.buyerWithdrawWithSig(a, recipient, deadline, sig);

        _assertSettled(id, settled, closeDeadline);
        assertEq(usdc.balanceOf(recipient), recipientBefore + expectedAmount, "recipient paid the remainder");
        assertEq(usdc.balanceOf(relayer), relayerBefore, "relayer gets nothing");
        assertEq(usdc.balanceOf(address(escrow)), escrowBefore - expectedAmount, "escrow paid out the remainder");
    }

    function _assertSettled(bytes32 id, uint256 settled, uint256 closeDeadline) private view {
        IAgreementEscrow.AgreementState memory s = escrow.agreementState(id);
        assertEq(uint256(s.status), uint256(IAgreementEscrow.Status.Settled), "status Settled");
        assertEq(s.settledAmount, settled, "settledAmount kept");
        assertEq(s.closeDeadline, closeDeadline, "closeDeadline kept");
    }

    function _unexpected(bytes32 id, IAgreementEscrow.Status actual) private pure returns (bytes memory) {
        return
            abi.encodeWithSelector(
                IAgreementEscrow.UnexpectedStatus.selector, id, IAgreementEscrow.Status.Closing, actual
            );
    }
}
