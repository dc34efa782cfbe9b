// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SecurityFixture} from "./utils/SecurityFixture.sol";
import {IAgreementEscrow} from "../../contracts/interfaces/IAgreementEscrow.sol";
import {ReceiveAuthorization, PermitSignature} from "../../contracts/interfaces/ITokenAuthorizations.sol";

/// @notice Fuzzed full lifecycles: random terms, parties, timing, route (direct or signed), closer,
///         claim or no claim, recipients. Funds are conserved to the unit: the seller side gets exactly
///         the voucher, the buyer side exactly the rest, the fee collector exactly the fee, and the
///         escrow ends empty.
contract FuzzTest is SecurityFixture {
    uint256 internal constant N = SECP256K1_N;

    struct Run {
        IAgreementEscrow.Agreement a;
        bytes32 id;
        uint256 buyerKey;
        uint256 sellerKey;
        address sellerTo;
        address buyerTo;
        uint256 voucherAmount;
        bool claimed;
        uint256 closeDeadline;
        uint256 totalBefore;
        uint256 buyerBefore;
        uint256 sellerToBefore;
        uint256 buyerToBefore;
        uint256 feeBefore;
    }

    function _total(Run memory r) internal view returns (uint256) {
        return usdc.balanceOf(r.a.buyer) + usdc.balanceOf(r.a.seller) + usdc.balanceOf(carol) + usdc.balanceOf(dave)
            + usdc.balanceOf(address(escrow)) + usdc.balanceOf(address(feeCollector));
    }

    function _key(uint256 seed, uint256 fallbackKey) internal pure returns (uint256) {
        return seed % 4 == 0 ? fallbackKey : bound(seed, 1, N - 1);
    }

    /// @param flags bit0 seller closes (else buyer); bit1 close by signature; bit2 seller tries to claim;
    ///        bit3 claim by signature; bit4 withdraw by signature; bit5 seller paid at carol;
    ///        bit6 buyer paid at dave; bit7 activate through the permit path.
    function testFuzz_lifecycle_conservesFunds(
        uint256 maxAmount,
        uint256 fee,
        uint256 closeWindow,
        uint256 voucherAmount,
        uint256 expiryOffset,
        uint256 activateDelay,
        uint256 closeDelay,
        uint256 claimDelay,
        uint256 keySeed,
        uint8 flags
    ) public {
        Run memory r;
        r.buyerKey = _key(keySeed, BUYER_KEY);
        r.sellerKey = _key(uint256(keccak256(abi.encode(keySeed))), SELLER_KEY);
        address b = vm.addr(r.buyerKey);
        address s = vm.addr(r.sellerKey);
        vm.assume(b != s && b != carol && b != dave && s != carol && s != dave);
        vm.assume(
            b != address(escrow) && s != address(escrow) && b != address(feeCollector) && s != address(feeCollector)
        );

        maxAmount = bound(maxAmount, 1, type(uint128).max);
        fee = bound(fee, 0, type(uint128).max);
        expiryOffset = bound(expiryOffset, 1, 365 days);
        r.a = terms(maxAmount, fee);
        r.a.buyer = b;
        r.a.seller = s;
        r.a.closeWindow = uint32(bound(closeWindow, escrow.MIN_CLOSE_WINDOW(), escrow.MAX_CLOSE_WINDOW()));
        // casting to uint64 is safe: a timestamp plus at most a year.
        // forge-lint: disable-next-line(unsafe-typecast)
        r.a.expiry = uint64(block.timestamp + expiryOffset);
        usdc.mint(b, maxAmount + fee);
        r.sellerTo = flags & 32 != 0 ? carol : s;
        r.buyerTo = flags & 64 != 0 ? dave : b;

        r.totalBefore = _total(r);
        r.buyerBefore = usdc.balanceOf(b);
        r.sellerToBefore = usdc.balanceOf(r.sellerTo);
        r.buyerToBefore = usdc.balanceOf(r.buyerTo);
        r.feeBefore = usdc.balanceOf(address(feeCollector));

        // Activate before expiry.
        vm.warp(block.timestamp + bound(activateDelay, 0, expiryOffset - 1));
        _activate(r, flags & 128 != 0);
        assertEq(usdc.balanceOf(address(escrow)), maxAmount, "escrow holds the deposit");
        assertEq(usdc.balanceOf(address(feeCollector)) - r.feeBefore, fee, "fee collected");
        assertEq(r.buyerBefore - usdc.balanceOf(b), maxAmount + fee, "buyer paid deposit + fee");

        // Close, at any time (even after expiry).
        vm.warp(block.timestamp + bound(closeDelay, 0, 730 days));
        _close(r, flags & 1 != 0, flags & 2 != 0);
        r.closeDeadline = block.timestamp + r.a.closeWindow;
        assertEq(escrow.agreementState(r.id).closeDeadline, r.closeDeadline, "close deadline");

        // The seller may try to claim, in time or late.
        if (flags & 4 != 0) {
            r.voucherAmount = bound(voucherAmount, 1, maxAmount);
            vm.warp(block.timestamp + bound(claimDelay, 0, 2 * uint256(r.a.closeWindow)));
            r.claimed = _claim(r, flags & 8 != 0);
        }

        // The buyer withdraws whatever is left.
        if (r.claimed && r.voucherAmount == maxAmount) {
            assertStatus(r.id, IAgreementEscrow.Status.Settled, "a full claim settles");
            vm.prank(b);
            vm.expectRevert(unexpectedStatus(r.id, IAgreementEscrow.Status.Closing, IAgreementEscrow.Status.Settled));
            escrow.buyerWithdraw(r.a, r.buyerTo);
        } else {
            if (!r.claimed) {
                if (block.timestamp < r.closeDeadline) {
                    vm.prank(b);
                    vm.expectRevert(
                        abi.encodeWithSelector(
                            IAgreementEscrow.CloseWindowOpen.selector, r.id, r.closeDeadline, block.timestamp
                        )
                    );
                    escrow.buyerWithdraw(r.a, r.buyerTo);
                    vm.warp(r.closeDeadline);
                }
            }
            _withdraw(r, flags & 16 != 0);
        }

        // Conservation, to the unit.
        uint256 paidToSeller = r.claimed ? r.voucherAmount : 0;
        assertEq(_total(r), r.totalBefore, "total conserved");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow empty");
        assertStatus(r.id, IAgreementEscrow.Status.Settled, "settled");
        assertEq(usdc.balanceOf(address(feeCollector)) - r.feeBefore, fee, "fee collector got exactly the fee");
        assertEq(usdc.balanceOf(r.sellerTo) - r.sellerToBefore, paidToSeller, "seller side got exactly the voucher");
        if (r.buyerTo == b) {
            assertEq(r.buyerBefore - usdc.balanceOf(b), paidToSeller + fee, "buyer's net cost: voucher + fee");
        } else {
            assertEq(usdc.balanceOf(r.buyerTo) - r.buyerToBefore, maxAmount - paidToSeller, "buyer side got the rest");
        }
        assertEq(escrow.agreementState(r.id).settledAmount, paidToSeller, "settled amount recorded");
    }

    function _activate(Run memory r, bool permitPath) internal {
        bytes32 id = idOf(r.a);
        if (permitPath) {
            vm.startPrank(r.a.buyer);
            usdc.approve(address(escrow), r.a.maxAmount);
            usdc.approve(address(feeCollector), r.a.infraFee);
            vm.stopPrank();
            uint256 deadline = block.timestamp + 1 hours;
            bytes memory sig = activationSignature(r.buyerKey, escrow, r.a, deadline);
            PermitSignature memory none;
            vm.prank(relayer);
            r.id = escrow.activateWithPermit(r.a, deadline, sig, none, none);
        } else {
            uint256 vb = block.timestamp + 1 hours;
            ReceiveAuthorization memory d =
                receiveAuthFrom(r.buyerKey, r.a.buyer, address(escrow), r.a.maxAmount, id, vb);
            ReceiveAuthorization memory f = r.a.infraFee == 0
                ? ReceiveAuthorization(0, 0, "")
                : receiveAuthFrom(
                    r.buyerKey, r.a.buyer, address(feeCollector), r.a.infraFee, feeNonce(id, r.a.infraFee), vb
                );
            vm.prank(relayer);
            r.id = escrow.activateWithAuthorization(r.a, d, f);
        }
        assertEq(r.id, id, "id");
        assertStatus(id, IAgreementEscrow.Status.Active, "active");
    }

    function _close(Run memory r, bool bySeller, bool bySig) internal {
        address party = bySeller ? r.a.seller : r.a.buyer;
        if (bySig) {
            uint256 dl = block.timestamp + 1 hours;
            bytes memory sig = closeSig(bySeller ? r.sellerKey : r.buyerKey, r.id, party, dl);
            vm.prank(relayer);
            escrow.initiateCloseWithSig(r.a, party, dl, sig);
        } else {
            vm.prank(party);
            escrow.initiateClose(r.a);
        }
        assertStatus(r.id, IAgreementEscrow.Status.Closing, "closing");
    }

    function _claim(Run memory r, bool bySig) internal returns (bool claimed) {
        bytes memory v = voucherOn(escrow, r.buyerKey, r.id, r.voucherAmount);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory sig = claimSig(r.sellerKey, r.id, r.voucherAmount, r.sellerTo, dl);
        bool late = block.timestamp >= r.closeDeadline;
        if (late) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IAgreementEscrow.CloseWindowElapsed.selector, r.id, r.closeDeadline, block.timestamp
                )
            );
        }
        if (bySig) {
            vm.prank(relayer);
            escrow.sellerClaimWithSig(r.a, r.voucherAmount, v, r.sellerTo, dl, sig);
        } else {
            vm.prank(r.a.seller);
            escrow.sellerClaim(r.a, r.voucherAmount, v, r.sellerTo);
        }
        claimed = !late;
        if (claimed) {
            assertStatus(
                r.id,
                r.voucherAmount == r.a.maxAmount
                    ? IAgreementEscrow.Status.Settled
                    : IAgreementEscrow.Status.SellerClaimed,
                "claimed"
            );
            assertEq(usdc.balanceOf(address(escrow)), r.a.maxAmount - r.voucherAmount, "escrow keeps the remainder");
        }
    }

    function _withdraw(Run memory r, bool bySig) internal {
        if (bySig) {
            uint256 dl = block.timestamp + 1 hours;
            bytes memory sig = withdrawSig(r.buyerKey, r.id, r.buyerTo, dl);
            vm.prank(relayer);
            escrow.buyerWithdrawWithSig(r.a, r.buyerTo, dl, sig);
        } else {
            vm.prank(r.a.buyer);
            escrow.buyerWithdraw(r.a, r.buyerTo);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Window boundaries
    // ---------------------------------------------------------------------------------------------

    /// Claim strictly before the deadline; withdraw (without a claim) from the deadline on.
    function testFuzz_closeWindowBoundaries(uint256 closeWindow, uint256 closeDelay, uint256 amount) public {
        IAgreementEscrow.Agreement memory a = terms();
        a.closeWindow = uint32(bound(closeWindow, escrow.MIN_CLOSE_WINDOW(), escrow.MAX_CLOSE_WINDOW()));
        amount = bound(amount, 1, a.maxAmount);
        bytes32 id = activate(a);
        vm.warp(block.timestamp + bound(closeDelay, 0, 365 days));
        vm.prank(seller);
        escrow.initiateClose(a);
        uint256 deadline = block.timestamp + a.closeWindow;
        bytes memory v = voucher(BUYER_KEY, id, amount);

        vm.warp(deadline - 1);
        vm.prank(buyer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.CloseWindowOpen.selector, id, deadline, deadline - 1));
        escrow.buyerWithdraw(a, buyer);
        uint256 snap = vm.snapshotState();
        vm.prank(seller);
        escrow.sellerClaim(a, amount, v, seller);
        assertEq(escrow.agreementState(id).settledAmount, amount, "claim in the last second");
        vm.revertToState(snap);

        vm.warp(deadline);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.CloseWindowElapsed.selector, id, deadline, deadline));
        escrow.sellerClaim(a, amount, v, seller);
        vm.prank(buyer);
        escrow.buyerWithdraw(a, buyer);
        assertStatus(id, IAgreementEscrow.Status.Settled, "withdrawn at the deadline");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow empty");
    }

    function testFuzz_voucherAmountOutOfRange_rejected(uint256 maxAmount, uint256 amount) public {
        maxAmount = bound(maxAmount, 1, type(uint128).max);
        amount = amount % 2 == 0 ? 0 : bound(amount, maxAmount + 1, type(uint256).max);
        IAgreementEscrow.Agreement memory a = terms(maxAmount, 0);
        usdc.mint(buyer, maxAmount);
        bytes32 id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, amount);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucherAmount.selector, amount, maxAmount));
        escrow.sellerClaim(a, amount, v, seller);
    }

    /// Nobody but the party can act directly; no key but the party's can sign for it.
    function testFuzz_onlyPartiesAct(address caller, uint256 key) public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        vm.assume(caller != buyer && caller != seller);
        key = bound(key, 1, N - 1);
        vm.assume(key != BUYER_KEY && key != SELLER_KEY);
        uint256 dl = block.timestamp + 30 days;
        bytes memory fakeClose = closeSig(key, id, buyer, dl);
        bytes memory fakeVoucher = voucher(key, id, MAX_AMOUNT);
        bytes memory realVoucher = voucher(BUYER_KEY, id, MAX_AMOUNT);
        bytes memory fakeClaim = claimSig(key, id, MAX_AMOUNT, caller, dl);
        bytes memory fakeWithdraw = withdrawSig(key, id, caller, dl);

        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.NotBuyerOrSeller.selector, caller));
        escrow.initiateClose(a);
        vm.prank(caller);
        vm.expectRevert(invalidSignature(buyer));
        escrow.initiateCloseWithSig(a, buyer, dl, fakeClose);

        vm.prank(buyer);
        escrow.initiateClose(a);
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.NotParty.selector, caller, seller));
        escrow.sellerClaim(a, MAX_AMOUNT, realVoucher, caller);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, id, MAX_AMOUNT));
        escrow.sellerClaim(a, MAX_AMOUNT, fakeVoucher, seller);
        vm.prank(caller);
        vm.expectRevert(invalidSignature(seller));
        escrow.sellerClaimWithSig(a, MAX_AMOUNT, realVoucher, caller, dl, fakeClaim);

        vm.warp(block.timestamp + CLOSE_WINDOW);
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.NotParty.selector, caller, buyer));
        escrow.buyerWithdraw(a, caller);
        vm.prank(caller);
        vm.expectRevert(invalidSignature(buyer));
        escrow.buyerWithdrawWithSig(a, caller, dl, fakeWithdraw);
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "nothing left the escrow");
    }

    // ---------------------------------------------------------------------------------------------
    // Two agreements between the same parties: settling one never touches the other
    // ---------------------------------------------------------------------------------------------

    function testFuzz_twoAgreements_isolated(uint256 max1, uint256 max2, uint256 v1, uint256 v2, bool claimFirst)
        public
    {
        max1 = bound(max1, 1, type(uint128).max);
        max2 = bound(max2, 1, type(uint128).max);
        v1 = bound(v1, 1, max1);
        v2 = bound(v2, 1, max2);
        usdc.mint(buyer, max1 + max2);
        IAgreementEscrow.Agreement memory a1 = terms(max1, 0);
        IAgreementEscrow.Agreement memory a2 = terms(max2, 0);
        bytes32 id1 = activateAndClose(a1);
        bytes32 id2 = activateAndClose(a2);
        bytes memory voucher1 = voucher(BUYER_KEY, id1, v1);
        bytes memory voucher2 = voucher(BUYER_KEY, id2, v2);
        uint256 sellerBefore = usdc.balanceOf(seller);

        if (claimFirst) {
            vm.prank(seller);
            escrow.sellerClaim(a1, v1, voucher1, seller);
            if (v1 < max1) {
                vm.prank(buyer);
                escrow.buyerWithdraw(a1, carol);
            }
            assertEq(usdc.balanceOf(address(escrow)), max2, "only agreement 2 left");
            assertStatus(id2, IAgreementEscrow.Status.Closing, "agreement 2 untouched");
            vm.prank(seller);
            escrow.sellerClaim(a2, v2, voucher2, seller);
        } else {
            vm.warp(block.timestamp + CLOSE_WINDOW);
            vm.prank(buyer);
            escrow.buyerWithdraw(a1, carol);
            assertEq(usdc.balanceOf(address(escrow)), max2, "only agreement 2 left");
            // Agreement 2's window elapsed as well.
            uint256 deadline2 = escrow.agreementState(id2).closeDeadline;
            vm.prank(seller);
            vm.expectRevert(
                abi.encodeWithSelector(IAgreementEscrow.CloseWindowElapsed.selector, id2, deadline2, block.timestamp)
            );
            escrow.sellerClaim(a2, v2, voucher2, seller);
            v1 = 0;
            v2 = 0;
        }
        if (status(id2) != IAgreementEscrow.Status.Settled) {
            vm.prank(buyer);
            escrow.buyerWithdraw(a2, carol);
        }
        assertEq(usdc.balanceOf(seller) - sellerBefore, v1 + v2, "seller got both vouchers, nothing else");
        assertEq(usdc.balanceOf(carol), (max1 - v1) + (max2 - v2), "buyer side got both remainders");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow empty");
    }
}
