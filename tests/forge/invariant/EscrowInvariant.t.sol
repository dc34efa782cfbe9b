// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EscrowFixture} from "../utils/EscrowFixture.sol";
import {Console} from "../utils/Console.sol";
import {EscrowHandler} from "./EscrowHandler.sol";
import {IAgreementEscrow} from "../../../contracts/interfaces/IAgreementEscrow.sol";

/// @notice Handler-based invariants of the escrow (see {EscrowHandler} for the operations).
contract EscrowInvariantTest is EscrowFixture {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    EscrowHandler internal handler;

    /// Below this many calls (e.g. a sequence being shrunk), a run is not required to reach every stage.
    uint256 internal constant MIN_CALLS_FOR_SUMMARY = 32;

    function setUp() public override {
        super.setUp();
        handler = new EscrowHandler(escrow, feeCollector, usdc, oracle, treasury);
        // The handler mints deposits, blocklists and sanctions (and always restores what it lists).
        usdc.transferOwnership(address(handler));
        oracle.transferOwnership(address(handler));
        vm.label(address(handler), "handler");
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[] memory selectors = new bytes4[](10);
        selectors[0] = EscrowHandler.activate.selector;
        selectors[1] = EscrowHandler.initiateClose.selector;
        selectors[2] = EscrowHandler.sellerClaim.selector;
        selectors[3] = EscrowHandler.buyerWithdraw.selector;
        selectors[4] = EscrowHandler.warp.selector;
        selectors[5] = EscrowHandler.replay.selector;
        selectors[6] = EscrowHandler.invalidOp.selector;
        selectors[7] = EscrowHandler.sweep.selector;
        selectors[8] = EscrowHandler.donate.selector;
        selectors[9] = EscrowHandler.retryPayout.selector;
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector({addr: address(handler), selectors: selectors});
    }

    // ---------------------------------------------------------------------------------------------
    // (a) The escrow holds exactly what its agreements still hold (plus stray donations).
    // ---------------------------------------------------------------------------------------------

    function invariant_a_escrowBalanceEqualsSumHeld() public view {
        uint256 held = handler.heldFromState();
        assertEq(
            usdc.balanceOf(address(escrow)), held + handler.ghostDonations(), "escrow balance == sum held + donations"
        );
        assertEq(handler.heldFromGhosts(), held, "measured deposits - payouts == held by status");
    }

    // ---------------------------------------------------------------------------------------------
    // (b) Per agreement: claimed + withdrawn <= deposited; == once Settled; the seller side is paid
    //     exactly its recorded entitlement or nothing; the buyer side exactly the rest or nothing.
    // ---------------------------------------------------------------------------------------------

    function invariant_b_perAgreementConservation() public view {
        uint256 n = handler.recordCount();
        for (uint256 i = 0; i < n; ++i) {
            (bytes32 id, uint256 maxAmount,, uint256 claimed, uint256 withdrawn) = handler.record(i);
            IAgreementEscrow.AgreementState memory s = escrow.agreementState(id);
            assertLe(claimed + withdrawn, maxAmount, "paid out <= deposited");
            assertEq(s.settledAmount, handler.entitledOf(i), "recorded entitlement == the claimed voucher");
            assertEq(claimed, s.sellerPaid ? s.settledAmount : 0, "seller side paid == entitlement, once");
            bool buyerPaid = s.buyerWithdrawn && s.settledAmount < maxAmount;
            assertEq(withdrawn, buyerPaid ? maxAmount - s.settledAmount : 0, "buyer side paid == remainder, once");
            if (s.status == IAgreementEscrow.Status.Settled) {
                assertEq(claimed + withdrawn, maxAmount, "settled: everything paid out");
            } else if (s.status != IAgreementEscrow.Status.SellerClaimed) {
                assertEq(claimed + withdrawn, 0, "nothing paid before a claim or withdrawal");
            } else {
                assertFalse(s.sellerPaid && s.buyerWithdrawn, "both sides paid means Settled");
            }
            if (s.status == IAgreementEscrow.Status.Active) {
                assertEq(s.closeDeadline, 0, "no deadline before close");
            } else {
                assertGt(s.closeDeadline, 0, "deadline set from close on");
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // (c) Every authorization is used at most once.
    // ---------------------------------------------------------------------------------------------

    function invariant_c_authorizationsUsedAtMostOnce() public view {
        assertLe(handler.maxDigestUses(), 1, "an authorization digest was used twice");
        assertEq(handler.replaysAccepted(), 0, "a replayed call went through");
    }

    // ---------------------------------------------------------------------------------------------
    // (d) Only forward transitions: None->Active->Closing->(SellerClaimed->)Settled.
    // ---------------------------------------------------------------------------------------------

    function invariant_d_onlyForwardTransitions() public view {
        assertEq(handler.badTransitions(), 0, "a forbidden status transition was observed");
        // Every transition is explained by exactly one successful operation.
        assertEq(handler.transitionCount(0, 1), handler.activations(), "None->Active == activations");
        assertEq(handler.transitionCount(1, 2), handler.closes(), "Active->Closing == closes");
        assertEq(
            handler.transitionCount(2, 3) + handler.transitionCount(2, 4),
            handler.claims() + handler.withdrawalsWithoutClaim(),
            "Closing-> == claims + withdrawals after an unclaimed window"
        );
        assertEq(
            handler.transitionCount(2, 4),
            handler.fullClaimsPaid() + handler.withdrawalsWithoutClaim(),
            "Closing->Settled == full claims paid at once + withdrawals after an unclaimed window"
        );
        assertEq(
            handler.transitionCount(3, 4),
            handler.withdrawals() - handler.withdrawalsWithoutClaim() - handler.withdrawalsBeforeSellerPaid()
                + handler.retriesSettling(),
            "SellerClaimed->Settled == the second side paid (withdrawal after the seller, or retried payout)"
        );
    }

    // ---------------------------------------------------------------------------------------------
    // (e) The fee collector holds exactly the fees of the activated agreements, minus what was swept.
    // ---------------------------------------------------------------------------------------------

    function invariant_e_feeCollectorBalance() public view {
        assertEq(handler.ghostFees(), handler.feesOfActivated(), "collected fees == fees of activated agreements");
        assertEq(
            usdc.balanceOf(address(feeCollector)),
            handler.feesOfActivated() - handler.ghostSwept(),
            "fee collector balance == fees - swept"
        );
        assertEq(usdc.balanceOf(treasury), handler.ghostSwept(), "treasury got exactly the swept fees");
    }

    // ---------------------------------------------------------------------------------------------
    // The handler's expectations: valid operations succeed and pay exactly; invalid ones revert
    // with exactly the expected error.
    // ---------------------------------------------------------------------------------------------

    function invariant_handlerExpectations() public view {
        assertEq(handler.unexpectedFailures(), 0, "a valid operation reverted");
        assertEq(handler.unexpectedSuccesses(), 0, "an invalid operation succeeded");
        assertEq(handler.wrongErrors(), 0, "an invalid operation reverted with the wrong error");
        assertEq(handler.payoutMismatches(), 0, "an amount moved differs from the expected one");
    }

    function invariant_callSummary() public view {
        assertLe(handler.closes(), handler.activations(), "closes <= activations");
        assertLe(handler.claims() + handler.withdrawalsWithoutClaim(), handler.closes(), "settlements <= closes");
        assertLe(handler.withdrawals(), handler.closes(), "withdrawals <= closes");
        assertLe(handler.fullClaims(), handler.claims(), "full claims <= claims");
        assertLe(handler.retries(), handler.deferrals(), "retries <= deferrals");
        assertEq(handler.recordCount(), handler.activations(), "one record per activation");
    }

    /// At the end of every full-depth run, the lifecycle must actually have been exercised (every
    /// stage operation falls back to the step that leads to it, so this holds for any call sequence
    /// that is not pathological). Shorter sequences (being shrunk) are exempt.
    function afterInvariant() public view {
        if (handler.calls() < MIN_CALLS_FOR_SUMMARY) return;
        assertGt(handler.activations(), 0, "run without a successful activation");
        assertGt(handler.closes(), 0, "run without a successful close");
        assertGt(handler.claims(), 0, "run without a successful claim");
        assertGt(handler.withdrawals(), 0, "run without a successful withdrawal");
        assertGt(handler.replaysRejected(), 0, "run without a rejected replay");
    }

    // ---------------------------------------------------------------------------------------------
    // Deterministic campaign: the same handler driven by a fixed pseudo-random sequence, every
    // invariant checked after every call, and a minimum of successes required for every operation
    // in total and for the main stages in every run. Prints the call summary with -vv.
    // ---------------------------------------------------------------------------------------------

    uint256 internal constant CAMPAIGN_RUNS = 12;
    uint256 internal constant CAMPAIGN_DEPTH = 64;

    function test_deterministicCampaign_callSummary() public {
        bytes4[] memory selectors = targetSelectors()[0].selectors;
        uint256[23] memory totals;
        for (uint256 run = 0; run < CAMPAIGN_RUNS; ++run) {
            uint256 snapshot = vm.snapshotState();
            for (uint256 i = 0; i < CAMPAIGN_DEPTH; ++i) {
                uint256 rnd = uint256(keccak256(abi.encode("campaign", run, i)));
                bytes4 selector = selectors[rnd % selectors.length];
                bytes memory data =
                    abi.encodeWithSelector(selector, _arg(rnd, 1), _arg(rnd, 2), _arg(rnd, 3), _arg(rnd, 4));
                (bool ok, bytes memory ret) = address(handler).call(data);
                if (!ok) {
                    assembly {
                        revert(add(ret, 0x20), mload(ret))
                    }
                }
                _checkAllInvariants();
            }
            assertGt(handler.claims(), 0, "campaign run without a claim");
            assertGt(handler.withdrawals(), 0, "campaign run without a withdrawal");
            assertGt(handler.invalidRejected(), 0, "campaign run without a rejected invalid operation");
            uint256[23] memory counts = _counts();
            for (uint256 k = 0; k < counts.length; ++k) {
                totals[k] += counts[k];
            }
            vm.revertToState(snapshot);
        }

        string[23] memory names = _countNames();
        for (uint256 k = 0; k < names.length; ++k) {
            Console.log(names[k], totals[k]);
        }
        // Every operation and route actually succeeded a meaningful number of times.
        assertGt(totals[0], 100, "activations");
        assertGt(totals[1], 10, "permit activations");
        assertGt(totals[2], 50, "closes");
        assertGt(totals[3], 10, "closes by the seller");
        assertGt(totals[4], 10, "closes by signature");
        assertGt(totals[5], 30, "claims");
        assertGt(totals[6], 5, "claims by signature");
        assertGt(totals[7], 2, "full claims (Closing -> Settled)");
        assertGt(totals[8], 5, "claims to another recipient");
        assertGt(totals[9], 30, "withdrawals");
        assertGt(totals[10], 5, "withdrawals by signature");
        assertGt(totals[11], 2, "withdrawals after an unclaimed window");
        assertGt(totals[12], 30, "invalid operations rejected");
        assertGt(totals[13], 50, "replays rejected");
        assertGt(totals[14], 5, "sweeps");
        assertGt(totals[15], 5, "donations");
        assertGt(totals[16], 5, "warps");
        assertGt(totals[20], 5, "deferred payouts");
        assertGt(totals[21], 5, "retried payouts");
        assertGt(totals[22], 1, "withdrawals while the seller's payout was deferred");
    }

    function _arg(uint256 rnd, uint256 k) internal pure returns (uint256 v) {
        v = uint256(keccak256(abi.encode(rnd, k)));
        // Like the fuzzer, often small values.
        if (v % 3 == 0) v %= 1000;
    }

    function _checkAllInvariants() internal view {
        invariant_a_escrowBalanceEqualsSumHeld();
        invariant_b_perAgreementConservation();
        invariant_c_authorizationsUsedAtMostOnce();
        invariant_d_onlyForwardTransitions();
        invariant_e_feeCollectorBalance();
        invariant_handlerExpectations();
        invariant_callSummary();
    }

    function _counts() internal view returns (uint256[23] memory c) {
        c[0] = handler.activations();
        c[1] = handler.permitActivations();
        c[2] = handler.closes();
        c[3] = handler.closesBySeller();
        c[4] = handler.closesWithSig();
        c[5] = handler.claims();
        c[6] = handler.claimsWithSig();
        c[7] = handler.fullClaims();
        c[8] = handler.claimsToOtherRecipient();
        c[9] = handler.withdrawals();
        c[10] = handler.withdrawalsWithSig();
        c[11] = handler.withdrawalsWithoutClaim();
        c[12] = handler.invalidRejected();
        c[13] = handler.replaysRejected();
        c[14] = handler.sweeps();
        c[15] = handler.donations();
        c[16] = handler.warps();
        c[17] = handler.digestsUsed();
        c[18] = handler.calls();
        c[19] = 1;
        c[20] = handler.deferrals();
        c[21] = handler.retries();
        c[22] = handler.withdrawalsBeforeSellerPaid();
    }

    function _countNames() internal pure returns (string[23] memory) {
        return [
            "activations",
            "permitActivations",
            "closes",
            "closesBySeller",
            "closesWithSig",
            "claims",
            "claimsWithSig",
            "fullClaims",
            "claimsToOtherRecipient",
            "withdrawals",
            "withdrawalsWithSig",
            "withdrawalsWithoutClaim",
            "invalidRejected",
            "replaysRejected",
            "sweeps",
            "donations",
            "warps",
            "digestsUsed",
            "calls",
            "runs",
            "deferrals",
            "retries",
            "withdrawalsBeforeSellerPaid"
        ];
    }
}
