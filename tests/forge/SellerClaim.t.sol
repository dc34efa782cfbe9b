// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {AgreementEscrow} from "../../contracts/AgreementEscrow.sol";
import {IAgreementEscrow} from "../../contracts/interfaces/IAgreementEscrow.sol";

/// @notice `sellerClaim` and `sellerClaimWithSig`: the seller's voucher is recorded and paid.
///         Deferred payouts and their retries are in SellerPayout.t.sol.
contract SellerClaimTest is EscrowFixture {
    address internal carol = address(0xCA201); // an alternative recipient chosen by the seller

    // ---------------------------------------------------------------------------------------------
    // Direct calls: success
    // ---------------------------------------------------------------------------------------------

    function test_sellerClaim_partialVoucher_paysSeller_leavesRemainder() public {
        _assertDirectClaim(40e6, seller);
    }

    function test_sellerClaim_fullVoucher_settles() public {
        _assertDirectClaim(MAX_AMOUNT, seller);
    }

    function test_sellerClaim_smallestVoucher() public {
        _assertDirectClaim(1, seller);
    }

    function test_sellerClaim_toAlternativeRecipient() public {
        _assertDirectClaim(25e6, carol);
    }

    function test_sellerClaim_fullVoucher_toAlternativeRecipient() public {
        _assertDirectClaim(MAX_AMOUNT, carol);
    }

    /// The seller may pick which of the buyer's vouchers to present (it is paid that voucher's amount).
    function test_sellerClaim_anyBuyerVoucherIsAccepted_paidItsAmount() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory older = voucher(BUYER_KEY, id, 10e6);
        voucher(BUYER_KEY, id, 70e6); // a later, higher voucher the seller does not present
        uint256 sellerBefore = usdc.balanceOf(seller);
        vm.prank(seller);
        escrow.sellerClaim(a, 10e6, older, seller);
        assertEq(usdc.balanceOf(seller), sellerBefore + 10e6, "paid the presented voucher");
        assertEq(escrow.agreementState(id).settledAmount, 10e6, "settledAmount");
    }

    function test_sellerClaim_validOneSecondBeforeCloseDeadline() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 closeDeadline = escrow.agreementState(id).closeDeadline;
        bytes memory v = voucher(BUYER_KEY, id, 30e6);
        vm.warp(closeDeadline - 1);
        vm.prank(seller);
        escrow.sellerClaim(a, 30e6, v, seller);
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "claimed in the last second");
    }

    /// The close window can be started by the seller itself, and claimed in the same block.
    function test_sellerClaim_afterSellerInitiatedClose_sameBlock() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        bytes memory v = voucher(BUYER_KEY, id, 55e6);
        vm.startPrank(seller);
        escrow.initiateClose(a);
        escrow.sellerClaim(a, 55e6, v, seller);
        vm.stopPrank();
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "status");
    }

    /// Claiming one agreement moves only its own funds.
    function test_sellerClaim_doesNotTouchOtherAgreements() public {
        IAgreementEscrow.Agreement memory a = terms();
        IAgreementEscrow.Agreement memory b = terms();
        bytes32 idA = activateAndClose(a);
        bytes32 idB = activateAndClose(b);
        bytes memory v = voucher(BUYER_KEY, idA, MAX_AMOUNT);
        vm.prank(seller);
        escrow.sellerClaim(a, MAX_AMOUNT, v, seller);
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "b's deposit still escrowed");
        assertStatus(idB, IAgreementEscrow.Status.Closing, "b untouched");
        // a's voucher is not valid for b.
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, idB, MAX_AMOUNT));
        escrow.sellerClaim(b, MAX_AMOUNT, v, seller);
    }

    // ---------------------------------------------------------------------------------------------
    // Direct calls: reverts
    // ---------------------------------------------------------------------------------------------

    function test_sellerClaim_revertsWhenCallerIsNotSeller() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, 40e6);

        address[3] memory callers = [buyer, stranger, relayer];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.prank(callers[i]);
            vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.NotParty.selector, callers[i], seller));
            escrow.sellerClaim(a, 40e6, v, seller);
        }
        _assertStillClosing(id);
    }

    function test_sellerClaim_revertsWhenNeverActivated() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = idOf(a);
        bytes memory v = voucher(BUYER_KEY, id, 40e6);
        vm.prank(seller);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.None));
        escrow.sellerClaim(a, 40e6, v, seller);
    }

    function test_sellerClaim_revertsWhenActive() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        bytes memory v = voucher(BUYER_KEY, id, 40e6);
        vm.prank(seller);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.Active));
        escrow.sellerClaim(a, 40e6, v, seller);
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "nothing paid");
    }

    function test_sellerClaim_revertsOnSecondClaim() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory low = voucher(BUYER_KEY, id, 40e6);
        bytes memory high = voucher(BUYER_KEY, id, 60e6);
        vm.prank(seller);
        escrow.sellerClaim(a, 40e6, low, seller);
        uint256 sellerAfterFirst = usdc.balanceOf(seller);

        // Neither the same voucher nor a higher one can be presented a second time.
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.SellerAlreadyPaid.selector, id));
        escrow.sellerClaim(a, 40e6, low, seller);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.SellerAlreadyPaid.selector, id));
        escrow.sellerClaim(a, 60e6, high, seller);

        assertEq(usdc.balanceOf(seller), sellerAfterFirst, "paid once");
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT - 40e6, "remainder intact");
    }

    function test_sellerClaim_revertsWhenSettledByFullClaim() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, MAX_AMOUNT);
        vm.prank(seller);
        escrow.sellerClaim(a, MAX_AMOUNT, v, seller);

        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.SellerAlreadyPaid.selector, id));
        escrow.sellerClaim(a, MAX_AMOUNT, v, seller);
    }

    function test_sellerClaim_revertsWhenBuyerWithdrewAfterWindow() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, 40e6);
        vm.warp(block.timestamp + CLOSE_WINDOW);
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);

        vm.prank(seller);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.Settled));
        escrow.sellerClaim(a, 40e6, v, seller);
    }

    function test_sellerClaim_revertsAtCloseDeadline() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 closeDeadline = escrow.agreementState(id).closeDeadline;
        bytes memory v = voucher(BUYER_KEY, id, 40e6);

        vm.warp(closeDeadline);
        vm.prank(seller);
        vm.expectRevert(
            abi.encodeWithSelector(IAgreementEscrow.CloseWindowElapsed.selector, id, closeDeadline, closeDeadline)
        );
        escrow.sellerClaim(a, 40e6, v, seller);

        vm.warp(closeDeadline + 7 days);
        vm.prank(seller);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAgreementEscrow.CloseWindowElapsed.selector, id, closeDeadline, closeDeadline + 7 days
            )
        );
        escrow.sellerClaim(a, 40e6, v, seller);
        _assertStillClosing(id);
    }

    function test_sellerClaim_revertsOnZeroAmount() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        // Even a genuine buyer signature over zero is refused.
        bytes memory v = voucher(BUYER_KEY, id, 0);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucherAmount.selector, 0, MAX_AMOUNT));
        escrow.sellerClaim(a, 0, v, seller);
        _assertStillClosing(id);
    }

    function test_sellerClaim_revertsAboveMaxAmount() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        // The buyer over-signed: the escrow caps the claim at what was escrowed.
        bytes memory v = voucher(BUYER_KEY, id, MAX_AMOUNT + 1);
        vm.prank(seller);
        vm.expectRevert(
            abi.encodeWithSelector(IAgreementEscrow.InvalidVoucherAmount.selector, MAX_AMOUNT + 1, MAX_AMOUNT)
        );
        escrow.sellerClaim(a, MAX_AMOUNT + 1, v, seller);

        bytes memory huge = voucher(BUYER_KEY, id, type(uint256).max);
        vm.prank(seller);
        vm.expectRevert(
            abi.encodeWithSelector(IAgreementEscrow.InvalidVoucherAmount.selector, type(uint256).max, MAX_AMOUNT)
        );
        escrow.sellerClaim(a, type(uint256).max, huge, seller);
        _assertStillClosing(id);
    }

    function test_sellerClaim_revertsWhenVoucherNotSignedByBuyer() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory byStranger = voucher(STRANGER_KEY, id, 40e6);
        bytes memory bySeller = voucher(SELLER_KEY, id, 40e6);

        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, id, 40e6));
        escrow.sellerClaim(a, 40e6, byStranger, seller);

        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, id, 40e6));
        escrow.sellerClaim(a, 40e6, bySeller, seller);

        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, id, 40e6));
        escrow.sellerClaim(a, 40e6, "", seller);
        _assertStillClosing(id);
    }

    function test_sellerClaim_revertsWhenVoucherIsForAnotherAmount() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, 40e6);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, id, 40e6 + 1));
        escrow.sellerClaim(a, 40e6 + 1, v, seller);
        _assertStillClosing(id);
    }

    function test_sellerClaim_revertsWhenVoucherIsForAnotherAgreement() public {
        IAgreementEscrow.Agreement memory a = terms();
        IAgreementEscrow.Agreement memory other = terms();
        bytes32 id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, idOf(other), 40e6);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, id, 40e6));
        escrow.sellerClaim(a, 40e6, v, seller);
        _assertStillClosing(id);
    }

    /// A voucher signed under another escrow deployment's domain is not valid here.
    function test_sellerClaim_revertsWhenVoucherIsForAnotherEscrow() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        (, AgreementEscrow otherEscrow) = deployEscrow(address(oracle));
        bytes32 structHash = keccak256(
            abi.encode(keccak256("Voucher(bytes32 agreementId,uint256 cumulativeAmount)"), id, uint256(40e6))
        );
        bytes memory v = sign(BUYER_KEY, escrowDigest(otherEscrow, structHash));
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, id, 40e6));
        escrow.sellerClaim(a, 40e6, v, seller);
        _assertStillClosing(id);
    }

    function test_sellerClaim_revertsOnZeroRecipient() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, 40e6);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidRecipient.selector, address(0)));
        escrow.sellerClaim(a, 40e6, v, address(0));
        _assertStillClosing(id);
    }

    function test_sellerClaim_revertsWhenRecipientIsEscrow() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, 40e6);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidRecipient.selector, address(escrow)));
        escrow.sellerClaim(a, 40e6, v, address(escrow));
        _assertStillClosing(id);
    }

    /// A sanctioned seller's claim is recorded but not paid, even to a clean address of its choosing.
    function test_sellerClaim_whenSellerSanctioned_recordsButDoesNotPay() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, 40e6);
        sanction(seller);
        uint256 carolBefore = usdc.balanceOf(carol);

        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.SellerPayoutDeferred(id, carol, 40e6, IAgreementEscrow.DeferralReason.Sanctioned, seller);
        vm.prank(seller);
        escrow.sellerClaim(a, 40e6, v, carol);

        _assertDeferred(id, 40e6);
        assertEq(usdc.balanceOf(carol), carolBefore, "nothing routed to a clean address");
    }

    function test_sellerClaim_whenRecipientSanctioned_recordsButDoesNotPay() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, 40e6);
        sanction(carol);
        vm.prank(seller);
        escrow.sellerClaim(a, 40e6, v, carol);
        _assertDeferred(id, 40e6);

        // The seller is paid at a clean address by a retry.
        uint256 sellerBefore = usdc.balanceOf(seller);
        vm.prank(seller);
        escrow.sellerClaim(a, 40e6, "", seller);
        assertEq(usdc.balanceOf(seller), sellerBefore + 40e6, "clean recipient paid");
        assertTrue(escrow.agreementState(id).sellerPaid, "paid");
    }

    // ---------------------------------------------------------------------------------------------
    // Signed (relayed) calls
    // ---------------------------------------------------------------------------------------------

    function test_sellerClaimWithSig_relayed_paysSeller() public {
        _assertSignedClaim(40e6, seller);
    }

    function test_sellerClaimWithSig_relayed_toAlternativeRecipient() public {
        _assertSignedClaim(40e6, carol);
    }

    function test_sellerClaimWithSig_relayed_fullAmountSettles() public {
        _assertSignedClaim(MAX_AMOUNT, carol);
    }

    function test_sellerClaimWithSig_validAtDeadline() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory v = voucher(BUYER_KEY, id, 40e6);
        bytes memory sig = sign(SELLER_KEY, claimDigest(id, 40e6, seller, deadline));
        vm.warp(deadline);
        vm.prank(relayer);
        escrow.sellerClaimWithSig(a, 40e6, v, seller, deadline, sig);
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "valid at timestamp == deadline");
    }

    function test_sellerClaimWithSig_revertsWhenExpired() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory v = voucher(BUYER_KEY, id, 40e6);
        bytes memory sig = sign(SELLER_KEY, claimDigest(id, 40e6, seller, deadline));
        vm.warp(deadline + 1);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.AuthorizationExpired.selector, deadline, deadline + 1));
        escrow.sellerClaimWithSig(a, 40e6, v, seller, deadline, sig);
        _assertStillClosing(id);
    }

    /// The seller signs the amount: a relayer cannot substitute an older, lower voucher of the buyer's
    /// (which is itself perfectly valid) to short-change the seller.
    function test_sellerClaimWithSig_revertsWhenRelayerSwapsInLowerVoucher() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory older = voucher(BUYER_KEY, id, 20e6);
        bytes memory sig = sign(SELLER_KEY, claimDigest(id, 80e6, seller, deadline));

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, seller));
        escrow.sellerClaimWithSig(a, 20e6, older, seller, deadline, sig);
        _assertStillClosing(id);
    }

    function test_sellerClaimWithSig_revertsWhenRelayerChangesRecipient() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory v = voucher(BUYER_KEY, id, 40e6);
        bytes memory sig = sign(SELLER_KEY, claimDigest(id, 40e6, seller, deadline));

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, seller));
        escrow.sellerClaimWithSig(a, 40e6, v, relayer, deadline, sig);
        _assertStillClosing(id);
    }

    function test_sellerClaimWithSig_revertsWhenRelayerChangesDeadline() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory v = voucher(BUYER_KEY, id, 40e6);
        bytes memory sig = sign(SELLER_KEY, claimDigest(id, 40e6, seller, deadline));

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, seller));
        escrow.sellerClaimWithSig(a, 40e6, v, seller, deadline + 1 days, sig);
        _assertStillClosing(id);
    }

    function test_sellerClaimWithSig_revertsWhenRelayerChangesAgreement() public {
        IAgreementEscrow.Agreement memory a = terms();
        IAgreementEscrow.Agreement memory b = terms();
        bytes32 idA = activateAndClose(a);
        bytes32 idB = activateAndClose(b);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory vB = voucher(BUYER_KEY, idB, 40e6);
        bytes memory sigA = sign(SELLER_KEY, claimDigest(idA, 40e6, carol, deadline));

        // The seller's authorization for `a` (to carol) cannot be used on `b`.
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, seller));
        escrow.sellerClaimWithSig(b, 40e6, vB, carol, deadline, sigA);
        _assertStillClosing(idA);
        _assertStillClosing(idB);
    }

    function test_sellerClaimWithSig_revertsWhenSignedByWrongKey() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory v = voucher(BUYER_KEY, id, 40e6);
        bytes memory byStranger = sign(STRANGER_KEY, claimDigest(id, 40e6, stranger, deadline));
        bytes memory byBuyer = sign(BUYER_KEY, claimDigest(id, 40e6, buyer, deadline));

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, seller));
        escrow.sellerClaimWithSig(a, 40e6, v, stranger, deadline, byStranger);

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, seller));
        escrow.sellerClaimWithSig(a, 40e6, v, buyer, deadline, byBuyer);
        _assertStillClosing(id);
    }

    /// The seller's authorization does not stand in for the buyer's voucher.
    function test_sellerClaimWithSig_revertsWhenVoucherInvalid() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory forged = voucher(SELLER_KEY, id, 40e6);
        bytes memory sig = sign(SELLER_KEY, claimDigest(id, 40e6, seller, deadline));
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, id, 40e6));
        escrow.sellerClaimWithSig(a, 40e6, forged, seller, deadline, sig);
        _assertStillClosing(id);
    }

    function test_sellerClaimWithSig_revertsOnReplayAfterUse() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory v = voucher(BUYER_KEY, id, 40e6);
        bytes memory sig = sign(SELLER_KEY, claimDigest(id, 40e6, carol, deadline));
        vm.prank(relayer);
        escrow.sellerClaimWithSig(a, 40e6, v, carol, deadline, sig);
        uint256 carolAfter = usdc.balanceOf(carol);

        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.SellerAlreadyPaid.selector, id));
        escrow.sellerClaimWithSig(a, 40e6, v, carol, deadline, sig);
        assertEq(usdc.balanceOf(carol), carolAfter, "paid once");
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT - 40e6, "remainder intact");
    }

    function test_sellerClaimWithSig_revertsWhenActive() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory v = voucher(BUYER_KEY, id, 40e6);
        bytes memory sig = sign(SELLER_KEY, claimDigest(id, 40e6, seller, deadline));
        vm.prank(relayer);
        vm.expectRevert(_unexpected(id, IAgreementEscrow.Status.Active));
        escrow.sellerClaimWithSig(a, 40e6, v, seller, deadline, sig);
    }

    function test_sellerClaimWithSig_revertsAfterCloseDeadline() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 closeDeadline = escrow.agreementState(id).closeDeadline;
        uint256 deadline = closeDeadline + 1 days; // the seller's own authorization is still valid
        bytes memory v = voucher(BUYER_KEY, id, 40e6);
        bytes memory sig = sign(SELLER_KEY, claimDigest(id, 40e6, seller, deadline));
        vm.warp(closeDeadline);
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(IAgreementEscrow.CloseWindowElapsed.selector, id, closeDeadline, closeDeadline)
        );
        escrow.sellerClaimWithSig(a, 40e6, v, seller, deadline, sig);
    }

    function test_sellerClaimWithSig_whenSellerSanctioned_recordsButDoesNotPay() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory v = voucher(BUYER_KEY, id, 40e6);
        bytes memory sig = sign(SELLER_KEY, claimDigest(id, 40e6, carol, deadline));
        sanction(seller);
        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.SellerPayoutDeferred(id, carol, 40e6, IAgreementEscrow.DeferralReason.Sanctioned, seller);
        vm.prank(relayer);
        escrow.sellerClaimWithSig(a, 40e6, v, carol, deadline, sig);
        _assertDeferred(id, 40e6);
    }

    function test_sellerClaimWithSig_whenRecipientSanctioned_recordsButDoesNotPay() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory v = voucher(BUYER_KEY, id, 40e6);
        bytes memory sig = sign(SELLER_KEY, claimDigest(id, 40e6, carol, deadline));
        sanction(carol);
        vm.prank(relayer);
        escrow.sellerClaimWithSig(a, 40e6, v, carol, deadline, sig);
        _assertDeferred(id, 40e6);
    }

    function test_sellerClaimWithSig_revertsOnInvalidRecipient() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory v = voucher(BUYER_KEY, id, 40e6);
        bytes memory toZero = sign(SELLER_KEY, claimDigest(id, 40e6, address(0), deadline));
        bytes memory toEscrow = sign(SELLER_KEY, claimDigest(id, 40e6, address(escrow), deadline));

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidRecipient.selector, address(0)));
        escrow.sellerClaimWithSig(a, 40e6, v, address(0), deadline, toZero);

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidRecipient.selector, address(escrow)));
        escrow.sellerClaimWithSig(a, 40e6, v, address(escrow), deadline, toEscrow);
        _assertStillClosing(id);
    }

    // ---------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------

    function _assertDirectClaim(uint256 amount, address recipient) private {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 closeDeadline = escrow.agreementState(id).closeDeadline;
        bytes memory v = voucher(BUYER_KEY, id, amount);
        vm.warp(block.timestamp + 1 hours);

        uint256 recipientBefore = usdc.balanceOf(recipient);
        uint256 sellerBefore = usdc.balanceOf(seller);
        uint256 buyerBefore = usdc.balanceOf(buyer);
        uint256 escrowBefore = usdc.balanceOf(address(escrow));

        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.SellerClaimed(id, amount, MAX_AMOUNT - amount);
        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.SellerPaid(id, recipient, amount);
        vm.prank(seller);
        escrow.sellerClaim(a, amount, v, recipient);

        _assertClaimed(id, amount, closeDeadline);
        assertEq(usdc.balanceOf(recipient), recipientBefore + amount, "recipient paid the voucher amount");
        if (recipient != seller) assertEq(usdc.balanceOf(seller), sellerBefore, "seller itself not paid");
        assertEq(usdc.balanceOf(buyer), buyerBefore, "buyer not paid yet");
        assertEq(usdc.balanceOf(address(escrow)), escrowBefore - amount, "escrow keeps the remainder");
    }

    function _assertSignedClaim(uint256 amount, address recipient) private {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 closeDeadline = escrow.agreementState(id).closeDeadline;
        uint256 deadline = block.timestamp + 2 hours;
        bytes memory v = voucher(BUYER_KEY, id, amount);
        bytes memory sig = sign(SELLER_KEY, claimDigest(id, amount, recipient, deadline));

        uint256 recipientBefore = usdc.balanceOf(recipient);
        uint256 relayerBefore = usdc.balanceOf(relayer);
        uint256 escrowBefore = usdc.balanceOf(address(escrow));

        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.SellerClaimed(id, amount, MAX_AMOUNT - amount);
        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.SellerPaid(id, recipient, amount);
        vm.prank(relayer);
        escrow.sellerClaimWithSig(a, amount, v, recipient, deadline, sig);

        _assertClaimed(id, amount, closeDeadline);
        assertEq(usdc.balanceOf(recipient), recipientBefore + amount, "recipient paid the voucher amount");
        assertEq(usdc.balanceOf(relayer), relayerBefore, "relayer gets nothing");
        assertEq(usdc.balanceOf(address(escrow)), escrowBefore - amount, "escrow keeps the remainder");
    }

    function _assertClaimed(bytes32 id, uint256 amount, uint256 closeDeadline) private view {
        IAgreementEscrow.AgreementState memory s = escrow.agreementState(id);
        IAgreementEscrow.Status expected =
            amount == MAX_AMOUNT ? IAgreementEscrow.Status.Settled : IAgreementEscrow.Status.SellerClaimed;
        assertEq(uint256(s.status), uint256(expected), "status");
        assertEq(s.settledAmount, amount, "settledAmount stored");
        assertEq(s.closeDeadline, closeDeadline, "closeDeadline kept");
        assertTrue(s.sellerPaid, "sellerPaid");
        assertEq(s.buyerWithdrawn, amount == MAX_AMOUNT, "buyerWithdrawn only when nothing remains");
    }

    /// The entitlement is recorded, nothing left the escrow, and the buyer's share is unchanged.
    function _assertDeferred(bytes32 id, uint256 amount) private view {
        IAgreementEscrow.AgreementState memory s = escrow.agreementState(id);
        assertEq(uint256(s.status), uint256(IAgreementEscrow.Status.SellerClaimed), "SellerClaimed");
        assertEq(s.settledAmount, amount, "entitlement recorded");
        assertFalse(s.sellerPaid, "not paid");
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "everything still in escrow");
    }

    function _assertStillClosing(bytes32 id) private view {
        IAgreementEscrow.AgreementState memory s = escrow.agreementState(id);
        assertEq(uint256(s.status), uint256(IAgreementEscrow.Status.Closing), "still Closing");
        assertEq(s.settledAmount, 0, "nothing settled");
    }

    function _unexpected(bytes32 id, IAgreementEscrow.Status actual) private pure returns (bytes memory) {
        return
            abi.encodeWithSelector(
                IAgreementEscrow.UnexpectedStatus.selector, id, IAgreementEscrow.Status.Closing, actual
            );
    }
}
