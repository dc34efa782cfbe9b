// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SecurityFixture} from "./utils/SecurityFixture.sol";
import {ReentrantToken} from "./mocks/ReentrantToken.sol";
import {LyingToken} from "./mocks/LyingToken.sol";
import {IAgreementEscrow} from "../../contracts/interfaces/IAgreementEscrow.sol";
import {
    ITokenAuthorizations,
    ReceiveAuthorization,
    PermitSignature
} from "../../contracts/interfaces/ITokenAuthorizations.sol";
import {TransientReentrancyGuard} from "../../contracts/utils/TransientReentrancyGuard.sol";

/// @notice A token that calls back into the escrow in the middle of a transfer (deposit pull, fee pull,
///         seller payout, buyer payout) cannot get a second escrow operation through: the reentrant
///         call reverts with `ReentrancyGuardReentrantCall()`, and the outer operation either reverts
///         entirely (if the token bubbles the failure) or completes having paid exactly once.
///         Reentrant calls are chosen so that, without the guard, they would otherwise be valid
///         (signed by the right party, agreement in the right status).
///         Also: tokens whose transfers do not move the stated amount are refused at activation.
contract ReentrancyTest is SecurityFixture {
    uint256 internal constant VOUCHER = 40e6;

    ReentrantToken internal rt;
    bytes internal guardError;

    function setUp() public override {
        super.setUp();
        rt = new ReentrantToken();
        vm.label(address(rt), "reentrantToken");
        rt.mint(buyer, BUYER_FUNDS);
        guardError = abi.encodeWithSelector(TransientReentrancyGuard.ReentrancyGuardReentrantCall.selector);
    }

    // ---------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------

    function rtTerms(uint256 fee) internal returns (IAgreementEscrow.Agreement memory a) {
        a = terms(MAX_AMOUNT, fee);
        a.token = address(rt);
    }

    /// The malicious token checks no signature: any authorization will do.
    function anyAuth() internal pure returns (ReceiveAuthorization memory) {
        return ReceiveAuthorization({validAfter: 0, validBefore: type(uint256).max, signature: hex"00"});
    }

    function activateRt(IAgreementEscrow.Agreement memory a) internal returns (bytes32 id) {
        vm.prank(relayer);
        id = escrow.activateWithAuthorization(a, anyAuth(), anyAuth());
    }

    function assertHookBlocked(string memory message) internal view {
        assertTrue(rt.hookCalled(), string.concat(message, ": hook fired"));
        assertFalse(rt.hookSucceeded(), string.concat(message, ": reentrant call must fail"));
        assertBytesEq(rt.hookReturnData(), guardError, string.concat(message, ": ReentrancyGuardReentrantCall"));
    }

    // ---------------------------------------------------------------------------------------------
    // During activation (deposit pull)
    // ---------------------------------------------------------------------------------------------

    function test_activation_reentrantActivationOfAnotherAgreement_blocked() public {
        IAgreementEscrow.Agreement memory b = terms(); // a USDC agreement with genuine authorizations
        ReceiveAuthorization memory depB = depositAuthorization(b);
        ReceiveAuthorization memory feeB = feeAuthorization(b);
        IAgreementEscrow.Agreement memory a = rtTerms(0);

        rt.arm(
            ReentrantToken.Trigger.ReceiveWithAuthorization,
            address(escrow),
            abi.encodeCall(escrow.activateWithAuthorization, (b, depB, feeB)),
            false
        );
        bytes32 idA = activateRt(a);

        assertHookBlocked("activate inside activation");
        assertStatus(idA, IAgreementEscrow.Status.Active, "outer activation completed");
        assertStatus(idOf(b), IAgreementEscrow.Status.None, "inner activation did not happen");
        assertEq(rt.balanceOf(address(escrow)), MAX_AMOUNT, "outer deposit once");
        assertEq(usdc.balanceOf(address(escrow)), 0, "no USDC moved");

        // The inner call was otherwise valid: outside the guard it goes through.
        vm.prank(relayer);
        escrow.activateWithAuthorization(b, depB, feeB);
        assertStatus(idOf(b), IAgreementEscrow.Status.Active, "B activatable on its own");
    }

    function test_activation_reentrantCloseOfTheAgreementBeingActivated_blocked() public {
        IAgreementEscrow.Agreement memory a = rtTerms(0);
        bytes32 id = idOf(a);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory sig = closeSig(BUYER_KEY, id, buyer, dl);
        // The agreement is recorded Active before the pull: without the guard, this would close it
        // in the middle of its own activation.
        rt.arm(
            ReentrantToken.Trigger.ReceiveWithAuthorization,
            address(escrow),
            abi.encodeCall(escrow.initiateCloseWithSig, (a, buyer, dl, sig)),
            false
        );
        activateRt(a);
        assertHookBlocked("close inside own activation");
        assertStatus(id, IAgreementEscrow.Status.Active, "still active");
        assertEq(escrow.agreementState(id).closeDeadline, 0, "no close deadline");
    }

    function test_activation_reentryBubbled_revertsEverything() public {
        IAgreementEscrow.Agreement memory b = terms();
        ReceiveAuthorization memory depB = depositAuthorization(b);
        ReceiveAuthorization memory feeB = feeAuthorization(b);
        IAgreementEscrow.Agreement memory a = rtTerms(INFRA_FEE);
        rt.arm(
            ReentrantToken.Trigger.ReceiveWithAuthorization,
            address(escrow),
            abi.encodeCall(escrow.activateWithAuthorization, (b, depB, feeB)),
            true
        );
        ReceiveAuthorization memory any = anyAuth();

        vm.prank(relayer);
        vm.expectRevert(guardError);
        escrow.activateWithAuthorization(a, any, any);

        assertStatus(idOf(a), IAgreementEscrow.Status.None, "outer rolled back");
        assertStatus(idOf(b), IAgreementEscrow.Status.None, "inner not applied");
        assertEq(rt.balanceOf(buyer), BUYER_FUNDS, "buyer's tokens untouched");
        assertEq(rt.balanceOf(address(escrow)), 0, "escrow holds nothing");
        assertEq(rt.balanceOf(address(feeCollector)), 0, "no fee");
    }

    // ---------------------------------------------------------------------------------------------
    // During the fee pull (the fee collector is not guarded itself; the escrow above it is)
    // ---------------------------------------------------------------------------------------------

    function test_feePull_reentrantCloseOfAnotherAgreement_blocked() public {
        IAgreementEscrow.Agreement memory c = terms();
        bytes32 idC = activate(c);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory sig = closeSig(SELLER_KEY, idC, seller, dl);

        IAgreementEscrow.Agreement memory a = rtTerms(INFRA_FEE);
        rt.armFor(
            ReentrantToken.Trigger.ReceiveWithAuthorization,
            address(feeCollector),
            address(escrow),
            abi.encodeCall(escrow.initiateCloseWithSig, (c, seller, dl, sig)),
            false
        );
        bytes32 idA = activateRt(a);

        assertHookBlocked("close inside fee pull");
        assertEq(rt.firedTo(), address(feeCollector), "fired during the fee pull");
        assertStatus(idA, IAgreementEscrow.Status.Active, "activation completed");
        assertStatus(idC, IAgreementEscrow.Status.Active, "other agreement not closed");
        assertEq(rt.balanceOf(address(feeCollector)), INFRA_FEE, "fee once");
        assertEq(rt.balanceOf(address(escrow)), MAX_AMOUNT, "deposit once");
    }

    // ---------------------------------------------------------------------------------------------
    // During the seller payout
    // ---------------------------------------------------------------------------------------------

    function _closedRt() internal returns (IAgreementEscrow.Agreement memory a, bytes32 id) {
        a = rtTerms(0);
        id = activateRt(a);
        vm.prank(buyer);
        escrow.initiateClose(a);
    }

    function test_sellerPayout_reentrantSecondClaim_blocked_paysOnce() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id) = _closedRt();
        uint256 dl = block.timestamp + 1 hours;
        bytes memory v = voucher(BUYER_KEY, id, VOUCHER);
        bytes memory sig = claimSig(SELLER_KEY, id, VOUCHER, seller, dl);
        rt.arm(
            ReentrantToken.Trigger.Transfer,
            address(escrow),
            abi.encodeCall(escrow.sellerClaimWithSig, (a, VOUCHER, v, seller, dl, sig)),
            false
        );
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);

        assertHookBlocked("claim inside claim payout");
        assertEq(rt.balanceOf(seller), VOUCHER, "seller paid exactly once");
        assertEq(rt.balanceOf(address(escrow)), MAX_AMOUNT - VOUCHER, "remainder stays");
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "claimed");
        assertEq(escrow.agreementState(id).settledAmount, VOUCHER, "settled amount");
    }

    function test_sellerPayout_reentrantBuyerWithdraw_blocked() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id) = _closedRt();
        uint256 dl = block.timestamp + 1 hours;
        bytes memory v = voucher(BUYER_KEY, id, VOUCHER);
        bytes memory wsig = withdrawSig(BUYER_KEY, id, buyer, dl);
        rt.arm(
            ReentrantToken.Trigger.Transfer,
            address(escrow),
            abi.encodeCall(escrow.buyerWithdrawWithSig, (a, buyer, dl, wsig)),
            false
        );
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);

        assertHookBlocked("withdraw inside claim payout");
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "buyer not yet paid");
        assertEq(rt.balanceOf(address(escrow)), MAX_AMOUNT - VOUCHER, "remainder still escrowed");

        vm.prank(relayer);
        escrow.buyerWithdrawWithSig(a, buyer, dl, wsig);
        assertEq(rt.balanceOf(buyer), BUYER_FUNDS - VOUCHER, "buyer got exactly the remainder");
        assertEq(rt.balanceOf(seller), VOUCHER, "seller got exactly the voucher");
        assertEq(rt.balanceOf(address(escrow)), 0, "escrow empty");
    }

    function test_sellerPayout_reentrantClaimOnAnotherAgreement_blocked() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id) = _closedRt();
        (IAgreementEscrow.Agreement memory d, bytes32 idD) = _closedRt();
        uint256 dl = block.timestamp + 1 hours;
        bytes memory v = voucher(BUYER_KEY, id, VOUCHER);
        bytes memory vD = voucher(BUYER_KEY, idD, MAX_AMOUNT);
        bytes memory sigD = claimSig(SELLER_KEY, idD, MAX_AMOUNT, seller, dl);
        rt.arm(
            ReentrantToken.Trigger.Transfer,
            address(escrow),
            abi.encodeCall(escrow.sellerClaimWithSig, (d, MAX_AMOUNT, vD, seller, dl, sigD)),
            false
        );
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);

        assertHookBlocked("claim on D inside claim payout of A");
        assertStatus(idD, IAgreementEscrow.Status.Closing, "D untouched");
        assertEq(rt.balanceOf(seller), VOUCHER, "only A paid");

        vm.prank(relayer);
        escrow.sellerClaimWithSig(d, MAX_AMOUNT, vD, seller, dl, sigD);
        assertStatus(idD, IAgreementEscrow.Status.Settled, "D claim valid on its own");
        assertEq(rt.balanceOf(address(escrow)), MAX_AMOUNT - VOUCHER, "A's remainder only");
    }

    /// A token whose transfer re-enters (and so reverts on the guard) refuses the payout: the claim is
    /// recorded with the payout deferred, nothing moves, and a retry pays once the token behaves.
    function test_sellerPayout_reentryRefused_payoutDeferred() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id) = _closedRt();
        bytes memory v = voucher(BUYER_KEY, id, VOUCHER);
        // Any reentrant call will do.
        rt.arm(ReentrantToken.Trigger.Transfer, address(escrow), abi.encodeCall(escrow.initiateClose, (a)), true);

        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.SellerPayoutDeferred(
            id, seller, VOUCHER, IAgreementEscrow.DeferralReason.TransferFailed, address(0)
        );
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);

        IAgreementEscrow.AgreementState memory st = escrow.agreementState(id);
        assertEq(uint256(st.status), uint256(IAgreementEscrow.Status.SellerClaimed), "claim recorded");
        assertEq(st.settledAmount, VOUCHER, "entitlement");
        assertFalse(st.sellerPaid, "optimistic write compensated");
        assertEq(rt.balanceOf(seller), 0, "seller unpaid");
        assertEq(rt.balanceOf(address(escrow)), MAX_AMOUNT, "deposit intact");

        // A strict retry bubbles the guard's error while the token misbehaves ...
        vm.prank(seller);
        vm.expectRevert(guardError);
        escrow.sellerClaim(a, VOUCHER, "", seller);

        // ... and pays once it stops.
        rt.arm(ReentrantToken.Trigger.None, address(0), "", false);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, "", seller);
        assertEq(rt.balanceOf(seller), VOUCHER, "paid by the retry");
        assertTrue(escrow.agreementState(id).sellerPaid, "paid");
    }

    /// Read-only reentrancy: during the payout, the escrow's state already reflects it (effects before
    /// interaction), so a reader in the token hook sees no stale state it could act upon. This
    /// token's recording hook needs more than PAYOUT_GAS, so the claim defers and the unbounded retry
    /// pays; the first attempt is probed with a light hook in SellerPayout.t.sol.
    function test_sellerPayout_stateFinalBeforeTransfer() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id) = _closedRt();
        bytes memory v = voucher(BUYER_KEY, id, VOUCHER);
        rt.arm(ReentrantToken.Trigger.Transfer, address(escrow), abi.encodeCall(escrow.agreementState, (id)), false);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, carol);
        assertFalse(escrow.agreementState(id).sellerPaid, "the heavy hook exceeded PAYOUT_GAS: deferred");
        assertFalse(rt.hookSucceeded(), "its effects were reverted with the transfer");

        rt.arm(ReentrantToken.Trigger.Transfer, address(escrow), abi.encodeCall(escrow.agreementState, (id)), false);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, "", carol);

        assertTrue(rt.hookSucceeded(), "view call allowed");
        assertEq(rt.firedTo(), carol, "fired during the payout");
        IAgreementEscrow.AgreementState memory seen = abi.decode(rt.hookReturnData(), (IAgreementEscrow.AgreementState));
        assertEq(uint256(seen.status), uint256(IAgreementEscrow.Status.SellerClaimed), "status already updated");
        assertEq(seen.settledAmount, VOUCHER, "settled amount already recorded");
        assertTrue(seen.sellerPaid, "already marked paid");
    }

    // ---------------------------------------------------------------------------------------------
    // During the buyer payout
    // ---------------------------------------------------------------------------------------------

    function test_buyerPayout_reentrantSecondWithdraw_blocked_paysOnce() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id) = _closedRt();
        vm.warp(block.timestamp + CLOSE_WINDOW);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory wsig = withdrawSig(BUYER_KEY, id, carol, dl);
        rt.arm(
            ReentrantToken.Trigger.Transfer,
            address(escrow),
            abi.encodeCall(escrow.buyerWithdrawWithSig, (a, carol, dl, wsig)),
            false
        );
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);

        assertHookBlocked("withdraw inside withdraw payout");
        assertEq(rt.balanceOf(buyer), BUYER_FUNDS, "buyer refunded exactly once");
        assertEq(rt.balanceOf(carol), 0, "no second payout");
        assertEq(rt.balanceOf(address(escrow)), 0, "escrow empty");
        assertStatus(id, IAgreementEscrow.Status.Settled, "settled");
    }

    function test_buyerPayout_reentrantActivation_blocked() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id) = _closedRt();
        vm.warp(block.timestamp + CLOSE_WINDOW);
        IAgreementEscrow.Agreement memory fresh = terms();
        ReceiveAuthorization memory dep = depositAuthorization(fresh);
        ReceiveAuthorization memory fee = feeAuthorization(fresh);
        rt.arm(
            ReentrantToken.Trigger.Transfer,
            address(escrow),
            abi.encodeCall(escrow.activateWithAuthorization, (fresh, dep, fee)),
            false
        );
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);

        assertHookBlocked("activation inside withdraw payout");
        assertStatus(id, IAgreementEscrow.Status.Settled, "outer withdraw completed");
        assertStatus(idOf(fresh), IAgreementEscrow.Status.None, "inner activation not applied");
    }

    function test_buyerPayout_reentryBubbled_revertsEverything() public {
        (IAgreementEscrow.Agreement memory a, bytes32 id) = _closedRt();
        vm.warp(block.timestamp + CLOSE_WINDOW);
        rt.arm(ReentrantToken.Trigger.Transfer, address(escrow), abi.encodeCall(escrow.buyerWithdraw, (a, buyer)), true);
        vm.prank(buyer);
        vm.expectRevert(guardError);
        escrow.buyerWithdraw(a, buyer);
        assertStatus(id, IAgreementEscrow.Status.Closing, "withdraw rolled back");
        assertEq(rt.balanceOf(address(escrow)), MAX_AMOUNT, "deposit intact");
    }

    // ---------------------------------------------------------------------------------------------
    // Matrix: every state-changing entry point, re-entered from every token callback
    // ---------------------------------------------------------------------------------------------

    /// Dummy arguments suffice: the guard reverts before anything else is looked at, so an entry point
    /// that lost its guard would fail this test with a different error (or succeed).
    function _entryPoints() internal view returns (bytes[8] memory c) {
        IAgreementEscrow.Agreement memory b = IAgreementEscrow.Agreement(buyer, seller, address(usdc), 1, 0, 0, 0, 0);
        ReceiveAuthorization memory noAuth;
        PermitSignature memory noPermit;
        c[0] = abi.encodeCall(escrow.activateWithAuthorization, (b, noAuth, noAuth));
        c[1] = abi.encodeCall(escrow.activateWithPermit, (b, 0, "", noPermit, noPermit));
        c[2] = abi.encodeCall(escrow.initiateClose, (b));
        c[3] = abi.encodeCall(escrow.initiateCloseWithSig, (b, buyer, 0, ""));
        c[4] = abi.encodeCall(escrow.sellerClaim, (b, 1, "", seller));
        c[5] = abi.encodeCall(escrow.sellerClaimWithSig, (b, 1, "", seller, 0, ""));
        c[6] = abi.encodeCall(escrow.buyerWithdraw, (b, buyer));
        c[7] = abi.encodeCall(escrow.buyerWithdrawWithSig, (b, buyer, 0, ""));
    }

    function test_matrix_everyEntryPointGuardedInEveryCallback() public {
        bytes[8] memory entries = _entryPoints();
        // Outer operations, each with the callback the token makes during it.
        IAgreementEscrow.Agreement memory viaAuth = rtTerms(INFRA_FEE);
        IAgreementEscrow.Agreement memory viaPermit = rtTerms(INFRA_FEE);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory consent = activationSignature(BUYER_KEY, viaPermit, deadline);
        vm.startPrank(buyer);
        rt.approve(address(escrow), MAX_AMOUNT);
        rt.approve(address(feeCollector), INFRA_FEE);
        vm.stopPrank();
        (IAgreementEscrow.Agreement memory closed, bytes32 closedId) = _closedRt();
        bytes memory v = voucher(BUYER_KEY, closedId, VOUCHER);

        for (uint256 op = 0; op < 6; ++op) {
            for (uint256 e = 0; e < entries.length; ++e) {
                uint256 snap = vm.snapshotState();
                if (op == 0 || op == 2) {
                    // Deposit pull (op 0) / fee pull (op 2) of an EIP-3009 activation.
                    rt.armFor(
                        ReentrantToken.Trigger.ReceiveWithAuthorization,
                        op == 0 ? address(escrow) : address(feeCollector),
                        address(escrow),
                        entries[e],
                        false
                    );
                    activateRt(viaAuth);
                } else if (op == 1 || op == 3) {
                    // Deposit pull (op 1) / fee pull (op 3) of a permit activation (transferFrom).
                    rt.armFor(
                        ReentrantToken.Trigger.TransferFrom,
                        op == 1 ? address(escrow) : address(feeCollector),
                        address(escrow),
                        entries[e],
                        false
                    );
                    PermitSignature memory none;
                    escrow.activateWithPermit(viaPermit, deadline, consent, none, none);
                } else if (op == 4) {
                    rt.arm(ReentrantToken.Trigger.Transfer, address(escrow), entries[e], false);
                    vm.prank(seller);
                    escrow.sellerClaim(closed, VOUCHER, v, seller);
                } else {
                    vm.warp(block.timestamp + CLOSE_WINDOW);
                    rt.arm(ReentrantToken.Trigger.Transfer, address(escrow), entries[e], false);
                    vm.prank(buyer);
                    escrow.buyerWithdraw(closed, buyer);
                }
                assertHookBlocked(string.concat("op ", _digit(op), " entry ", _digit(e)));
                vm.revertToState(snap);
            }
        }
    }

    function _digit(uint256 d) internal pure returns (string memory) {
        // casting to uint8 is safe: d is a single digit.
        // forge-lint: disable-next-line(unsafe-typecast)
        return string(abi.encodePacked(bytes1(uint8(48 + d))));
    }

    // ---------------------------------------------------------------------------------------------
    // Tokens that do not move the stated amount
    // ---------------------------------------------------------------------------------------------

    function _lyingTerms(LyingToken lt) internal returns (IAgreementEscrow.Agreement memory a) {
        a = terms(MAX_AMOUNT, 0);
        a.token = address(lt);
        lt.mint(buyer, BUYER_FUNDS);
    }

    function _mismatch(address token, uint256 expected, uint256 received) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ITokenAuthorizations.ReceivedAmountMismatch.selector, token, expected, received);
    }

    function test_lyingToken_honestModeActivates() public {
        LyingToken lt = new LyingToken();
        IAgreementEscrow.Agreement memory a = _lyingTerms(lt);
        ReceiveAuthorization memory any = anyAuth();
        bytes32 id = escrow.activateWithAuthorization(a, any, any);
        assertStatus(id, IAgreementEscrow.Status.Active, "honest transfer accepted");
    }

    function test_lyingToken_feeOnTransfer_activationReverts() public {
        LyingToken lt = new LyingToken();
        lt.configure(LyingToken.Mode.FeeOnTransfer, 100, 0); // 1 %
        IAgreementEscrow.Agreement memory a = _lyingTerms(lt);
        ReceiveAuthorization memory any = anyAuth();
        vm.expectRevert(_mismatch(address(lt), MAX_AMOUNT, MAX_AMOUNT - MAX_AMOUNT / 100));
        escrow.activateWithAuthorization(a, any, any);
        assertStatus(idOf(a), IAgreementEscrow.Status.None, "not activated");
        assertEq(lt.balanceOf(address(escrow)), 0, "nothing kept");
    }

    function test_lyingToken_inflatingTransfer_activationReverts() public {
        LyingToken lt = new LyingToken();
        lt.configure(LyingToken.Mode.Inflate, 0, 7);
        IAgreementEscrow.Agreement memory a = _lyingTerms(lt);
        ReceiveAuthorization memory any = anyAuth();
        vm.expectRevert(_mismatch(address(lt), MAX_AMOUNT, MAX_AMOUNT + 7));
        escrow.activateWithAuthorization(a, any, any);
    }

    function test_lyingToken_balanceDecreasingTransfer_reportsZeroReceived() public {
        LyingToken lt = new LyingToken();
        lt.mint(address(escrow), 500e6); // the escrow already holds funds of other agreements
        lt.configure(LyingToken.Mode.Drain, 0, 200e6);
        IAgreementEscrow.Agreement memory a = _lyingTerms(lt);
        ReceiveAuthorization memory any = anyAuth();
        vm.expectRevert(_mismatch(address(lt), MAX_AMOUNT, 0));
        escrow.activateWithAuthorization(a, any, any);
        assertEq(lt.balanceOf(address(escrow)), 500e6, "other funds untouched");
    }

    function test_lyingToken_feeOnTransfer_permitPathReverts() public {
        LyingToken lt = new LyingToken();
        lt.configure(LyingToken.Mode.FeeOnTransfer, 1, 0); // 0.01 %
        IAgreementEscrow.Agreement memory a = _lyingTerms(lt);
        vm.prank(buyer);
        lt.approve(address(escrow), MAX_AMOUNT);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = activationSignature(BUYER_KEY, a, deadline);
        PermitSignature memory none;
        vm.expectRevert(_mismatch(address(lt), MAX_AMOUNT, MAX_AMOUNT - MAX_AMOUNT / 10_000));
        escrow.activateWithPermit(a, deadline, sig, none, none);
    }

    function testFuzz_lyingToken_anyDiscrepancyRejected(uint256 maxAmount, uint256 feeBps, uint256 bonus, uint8 mode)
        public
    {
        maxAmount = bound(maxAmount, 1, type(uint128).max);
        LyingToken lt = new LyingToken();
        LyingToken.Mode m = LyingToken.Mode(bound(mode, 1, 2));
        feeBps = bound(feeBps, 1, 10_000);
        bonus = bound(bonus, 1, type(uint128).max);
        // A fee that rounds to zero on this amount is no discrepancy.
        vm.assume(m != LyingToken.Mode.FeeOnTransfer || (maxAmount * feeBps) / 10_000 > 0);
        lt.configure(m, feeBps, bonus);
        IAgreementEscrow.Agreement memory a = terms(maxAmount, 0);
        a.token = address(lt);
        lt.mint(buyer, maxAmount);
        uint256 received =
            m == LyingToken.Mode.FeeOnTransfer ? maxAmount - (maxAmount * feeBps) / 10_000 : maxAmount + bonus;
        ReceiveAuthorization memory any = anyAuth();
        vm.expectRevert(_mismatch(address(lt), maxAmount, received));
        escrow.activateWithAuthorization(a, any, any);
    }
}
