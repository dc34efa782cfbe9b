// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SecurityFixture} from "./utils/SecurityFixture.sol";
import {Vm} from "./utils/Vm.sol";
import {IAgreementEscrow} from "../../contracts/interfaces/IAgreementEscrow.sol";
import {ReceiveAuthorization} from "../../contracts/interfaces/ITokenAuthorizations.sol";
import {LocalUSDC} from "../../contracts/local/LocalUSDC.sol";
import {ErraticToken} from "./mocks/ErraticToken.sol";

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
        emit IAgreementEscrow.SellerPayoutDeferred(
            id, seller, amount, IAgreementEscrow.DeferralReason.TransferFailed, address(0)
        );
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
    /// full or reverts as a whole (`PayoutGasTooLow` below the budgets); it is never recorded as
    /// deferred. Swept on both routes, with the recipient screened too (three lookups).
    function test_gasLimit_neverForcesADeferral() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, VOUCHER);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory sig = claimSig(SELLER_KEY, id, VOUCHER, carol, dl);
        bytes[2] memory calls = [
            abi.encodeCall(escrow.sellerClaimWithSig, (a, VOUCHER, v, carol, dl, sig)),
            abi.encodeCall(escrow.sellerClaim, (a, VOUCHER, v, carol))
        ];
        address[2] memory senders = [relayer, seller];
        for (uint256 route = 0; route < 2; ++route) {
            (uint256 paid, uint256 starved) = _sweepGas(id, senders[route], calls[route]);
            assertGt(paid, 0, "enough gas pays");
            assertGt(starved, 0, "too little gas is refused with PayoutGasTooLow");
        }
    }

    function _sweepGas(bytes32 id, address sender, bytes memory data) internal returns (uint256 paid, uint256 starved) {
        bytes memory tooLow = abi.encodeWithSelector(IAgreementEscrow.PayoutGasTooLow.selector, id);
        for (uint256 gasLimit = 30_000; gasLimit <= 300_000; gasLimit += 1_000) {
            uint256 snapshot = vm.snapshotState();
            vm.prank(sender);
            (bool ok, bytes memory ret) = address(escrow).call{gas: gasLimit}(data);
            IAgreementEscrow.AgreementState memory s = _state(id);
            if (ok) {
                assertTrue(s.sellerPaid, "a successful claim is a paid claim");
                ++paid;
            } else {
                assertEq(uint256(s.status), uint256(IAgreementEscrow.Status.Closing), "a revert changes nothing");
                if (keccak256(ret) == keccak256(tooLow)) ++starved;
            }
            vm.revertToState(snapshot);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Tokens that fail their transfer in unusual ways
    // ---------------------------------------------------------------------------------------------

    function _erraticClosed(ErraticToken.Mode mode, uint256 cost)
        internal
        returns (ErraticToken token, IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v)
    {
        token = new ErraticToken();
        token.mint(buyer, MAX_AMOUNT);
        a = terms(MAX_AMOUNT, 0);
        a.token = address(token);
        id = idOf(a);
        ReceiveAuthorization memory none;
        escrow.activateWithAuthorization(a, none, none);
        vm.prank(buyer);
        escrow.initiateClose(a);
        v = voucher(BUYER_KEY, id, VOUCHER);
        token.configure(mode, cost);
    }

    /// A token that burns every unit of gas it gets (a pre-0.8 `assert`) is the token's failure,
    /// not the submitter's: the claim is recorded and deferred, at any sufficient gas limit.
    function test_tokenBurningAllGas_defersInsteadOfBlockingTheClaim() public {
        (ErraticToken token, IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) =
            _erraticClosed(ErraticToken.Mode.BurnAllGas, 0);
        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.SellerPayoutDeferred(
            id, seller, VOUCHER, IAgreementEscrow.DeferralReason.TransferFailed, address(0)
        );
        vm.prank(seller);
        escrow.sellerClaim{gas: 1_000_000}(a, VOUCHER, v, seller);
        assertFalse(_state(id).sellerPaid, "deferred");
        assertEq(token.balanceOf(address(escrow)), MAX_AMOUNT, "nothing moved");

        token.configure(ErraticToken.Mode.Normal, 0);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, "", seller);
        assertEq(token.balanceOf(seller), VOUCHER, "paid once the token behaves");
    }

    /// A token that answers `false` without reverting: deferred at first, and a retry reverts with
    /// SafeERC20's error rather than pretending to pay.
    function test_tokenReturningFalse_defers_retryReverts() public {
        (ErraticToken token, IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) =
            _erraticClosed(ErraticToken.Mode.ReturnFalse, 0);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        IAgreementEscrow.AgreementState memory s = _state(id);
        assertFalse(s.sellerPaid, "deferred");
        assertEq(uint256(s.status), uint256(IAgreementEscrow.Status.SellerClaimed), "claim recorded");

        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSignature("SafeERC20FailedOperation(address)", address(token)));
        escrow.sellerClaim(a, VOUCHER, "", seller);
    }

    /// A transfer that needs more than PAYOUT_GAS is deferred on the claim; the retry gives it all
    /// the gas there is and pays.
    function test_tokenNeedingMoreThanPayoutGas_paidByTheRetry() public {
        uint256 heavy = escrow.PAYOUT_GAS() + 20_000;
        (ErraticToken token, IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) =
            _erraticClosed(ErraticToken.Mode.Costly, heavy);
        vm.prank(seller);
        escrow.sellerClaim{gas: 2_000_000}(a, VOUCHER, v, seller);
        assertFalse(_state(id).sellerPaid, "deferred: the token needs more than its budget");

        vm.prank(seller);
        escrow.sellerClaim{gas: 2_000_000}(a, VOUCHER, "", seller);
        assertEq(token.balanceOf(seller), VOUCHER, "paid by the unbounded retry");
    }

    /// Read-only reentrancy on the first attempt: a hook inside the transfer already sees the payout
    /// recorded as made (the optimistic write precedes the transfer).
    function test_firstAttempt_stateAlreadyPaidDuringTheTransfer() public {
        (ErraticToken token, IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) =
            _erraticClosed(ErraticToken.Mode.Normal, 0);
        token.configureProbe(address(escrow), abi.encodeCall(escrow.agreementState, (id)));
        vm.recordLogs();
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bool probed;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter != address(token) || logs[i].topics[0] != ErraticToken.Probed.selector) continue;
            (bool ok, bytes memory answer) = abi.decode(logs[i].data, (bool, bytes));
            assertTrue(ok, "view call allowed");
            IAgreementEscrow.AgreementState memory seen = abi.decode(answer, (IAgreementEscrow.AgreementState));
            assertEq(uint256(seen.status), uint256(IAgreementEscrow.Status.SellerClaimed), "status");
            assertTrue(seen.sellerPaid, "already marked paid");
            probed = true;
        }
        assertTrue(probed, "the hook ran during the payout");
        assertEq(token.balanceOf(seller), VOUCHER, "paid");
    }

    /// A transfer within budget is paid on the claim itself.
    function test_tokenWithinPayoutGas_paidAtOnce() public {
        (ErraticToken token, IAgreementEscrow.Agreement memory a, bytes32 id, bytes memory v) =
            _erraticClosed(ErraticToken.Mode.Costly, 50_000);
        vm.prank(seller);
        escrow.sellerClaim{gas: 2_000_000}(a, VOUCHER, v, seller);
        assertTrue(_state(id).sellerPaid, "paid");
        assertEq(token.balanceOf(seller), VOUCHER, "paid at once");
    }
}
