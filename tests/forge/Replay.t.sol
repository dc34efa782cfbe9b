// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SecurityFixture} from "./utils/SecurityFixture.sol";
import {AgreementEscrow} from "../../contracts/AgreementEscrow.sol";
import {InfraFeeCollector} from "../../contracts/InfraFeeCollector.sol";
import {IAgreementEscrow} from "../../contracts/interfaces/IAgreementEscrow.sol";
import {ReceiveAuthorization, PermitSignature} from "../../contracts/interfaces/ITokenAuthorizations.sol";
import {LocalUSDC} from "../../contracts/local/LocalUSDC.sol";

interface IERC5267 {
    function eip712Domain()
        external
        view
        returns (
            bytes1 fields,
            string memory name,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        );
}

/// @notice Signature replay: every authorization a party signs is bound to one chain, one escrow
///         deployment, one agreement, one message type, and (through the state machine) one use.
contract ReplayTest is SecurityFixture {
    uint256 internal constant CHAIN_B = 8453;
    uint256 internal constant VOUCHER = 40e6;

    uint256 internal chainA;

    function setUp() public override {
        super.setUp();
        chainA = block.chainid;
    }

    // =============================================================================================
    // Across chain ids
    // =============================================================================================

    function test_chain_agreementIdAndEveryDomainChangeWithChainId() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 idA = escrow.agreementId(a);
        bytes32 feeNonceA = feeCollector.feeAuthorizationNonce(idA, a.infraFee);
        bytes32 usdcDomainA = usdc.DOMAIN_SEPARATOR();
        assertEq(idA, idOf(a), "id on chain A");

        vm.chainId(CHAIN_B);
        bytes32 idB = escrow.agreementId(a);
        assertNotEq(idA, idB, "agreement id commits to the chain id");
        assertEq(idB, idOf(a), "id on chain B is the EIP-712 digest under chain B (no stale cached domain)");

        bytes32 feeNonceB = feeCollector.feeAuthorizationNonce(idA, a.infraFee);
        assertNotEq(feeNonceA, feeNonceB, "fee nonce domain commits to the chain id");
        assertEq(feeNonceB, feeNonce(idA, a.infraFee), "fee nonce under chain B");

        assertNotEq(usdcDomainA, usdc.DOMAIN_SEPARATOR(), "token domain commits to the chain id");
        assertEq(usdc.DOMAIN_SEPARATOR(), domainSeparator("USD Coin", "2", address(usdc)), "token domain under B");

        (,,, uint256 escrowChain, address verifying,,) = IERC5267(address(escrow)).eip712Domain();
        assertEq(escrowChain, CHAIN_B, "escrow EIP-5267 domain reports the current chain");
        assertEq(verifying, address(escrow), "escrow domain verifying contract");
        (,,, uint256 fcChain,,,) = IERC5267(address(feeCollector)).eip712Domain();
        assertEq(fcChain, CHAIN_B, "fee collector EIP-5267 domain reports the current chain");
    }

    function test_chain_activationSignedOnA_cannotActivateOnB() public {
        IAgreementEscrow.Agreement memory a = terms();
        ReceiveAuthorization memory deposit = depositAuthorization(a);
        ReceiveAuthorization memory fee = feeAuthorization(a);

        vm.chainId(CHAIN_B);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(LocalUSDC.InvalidSignature.selector, buyer));
        escrow.activateWithAuthorization(a, deposit, fee);
        assertStatus(idOf(a), IAgreementEscrow.Status.None, "not activated on B");
        assertEq(usdc.balanceOf(address(escrow)), 0, "nothing moved on B");

        // The very same authorizations are valid on chain A.
        vm.chainId(chainA);
        vm.prank(relayer);
        bytes32 id = escrow.activateWithAuthorization(a, deposit, fee);
        assertStatus(id, IAgreementEscrow.Status.Active, "activated on A");
    }

    /// Even a deposit authorization whose nonce is chain B's agreement id fails on B when it was
    /// signed under chain A's token domain: the token domain binds the chain on its own.
    function test_chain_depositSignedUnderChainADomainForChainBId_rejected() public {
        IAgreementEscrow.Agreement memory a = terms();
        vm.chainId(CHAIN_B);
        bytes32 idB = idOf(a);
        ReceiveAuthorization memory feeB = feeAuthorization(a);
        vm.chainId(chainA);
        ReceiveAuthorization memory depositDomainA =
            receiveAuthorization(BUYER_KEY, address(escrow), a.maxAmount, idB, block.timestamp + 1 hours);

        vm.chainId(CHAIN_B);
        vm.expectRevert(abi.encodeWithSelector(LocalUSDC.InvalidSignature.selector, buyer));
        escrow.activateWithAuthorization(a, depositDomainA, feeB);
        assertStatus(idB, IAgreementEscrow.Status.None, "not activated");
    }

    function test_chain_feeAuthorizationSignedOnA_rejectedOnB_andDepositRolledBack() public {
        IAgreementEscrow.Agreement memory a = terms();
        ReceiveAuthorization memory feeA = feeAuthorization(a);
        vm.chainId(CHAIN_B);
        bytes32 idB = idOf(a);
        ReceiveAuthorization memory depositB = depositAuthorization(a);

        vm.expectRevert(abi.encodeWithSelector(LocalUSDC.InvalidSignature.selector, buyer));
        escrow.activateWithAuthorization(a, depositB, feeA);
        assertStatus(idB, IAgreementEscrow.Status.None, "not activated");
        assertFalse(usdc.authorizationState(buyer, idB), "deposit nonce not burnt");
        assertEq(usdc.balanceOf(address(escrow)), 0, "deposit rolled back");
        assertEq(usdc.balanceOf(buyer), BUYER_FUNDS, "buyer kept everything");
    }

    function test_chain_permitActivationSignatureSignedOnA_rejectedOnB() public {
        IAgreementEscrow.Agreement memory a = terms(MAX_AMOUNT, 0);
        vm.prank(buyer);
        usdc.approve(address(escrow), type(uint256).max);
        uint256 deadline = block.timestamp + 1 hours;
        PermitSignature memory none;

        bytes memory sigA = activationSignature(BUYER_KEY, a, deadline);

        vm.chainId(CHAIN_B);
        bytes32 idB = idOf(a);
        vm.expectRevert(invalidSignature(buyer));
        escrow.activateWithPermit(a, deadline, sigA, none, none);

        // Signed on B, it works on B.
        bytes memory sigB = activationSignature(BUYER_KEY, a, deadline);
        escrow.activateWithPermit(a, deadline, sigB, none, none);
        assertStatus(idB, IAgreementEscrow.Status.Active, "activated with chain B's signature");
    }

    function test_chain_settlementAuthorizationsSignedOnA_rejectedOnB() public {
        IAgreementEscrow.Agreement memory a = terms();
        uint256 dl = block.timestamp + 60 days;

        vm.chainId(CHAIN_B);
        bytes32 idB = idOf(a);
        vm.chainId(chainA);
        bytes32 idA = activate(a);

        // Everything the parties sign on chain A, for chain A's agreement...
        bytes memory closeBuyerA = closeSig(BUYER_KEY, idA, buyer, dl);
        bytes memory closeSellerA = closeSig(SELLER_KEY, idA, seller, dl);
        bytes memory voucherA = voucher(BUYER_KEY, idA, VOUCHER);
        bytes memory claimA = claimSig(SELLER_KEY, idA, VOUCHER, seller, dl);
        bytes memory withdrawA = withdrawSig(BUYER_KEY, idA, buyer, dl);
        // ...and, to isolate the domain, under chain A's domain but for chain B's agreement id.
        bytes memory closeBuyerX = closeSig(BUYER_KEY, idB, buyer, dl);
        bytes memory closeSellerX = closeSig(SELLER_KEY, idB, seller, dl);
        bytes memory voucherX = voucher(BUYER_KEY, idB, VOUCHER);
        bytes memory claimX = claimSig(SELLER_KEY, idB, VOUCHER, seller, dl);
        bytes memory withdrawX = withdrawSig(BUYER_KEY, idB, buyer, dl);

        // The same terms are activated on chain B (fresh, chain-B authorizations).
        vm.chainId(CHAIN_B);
        assertEq(activate(a), idB, "activated on B");

        vm.startPrank(relayer);
        vm.expectRevert(invalidSignature(buyer));
        escrow.initiateCloseWithSig(a, buyer, dl, closeBuyerA);
        vm.expectRevert(invalidSignature(buyer));
        escrow.initiateCloseWithSig(a, buyer, dl, closeBuyerX);
        vm.expectRevert(invalidSignature(seller));
        escrow.initiateCloseWithSig(a, seller, dl, closeSellerA);
        vm.expectRevert(invalidSignature(seller));
        escrow.initiateCloseWithSig(a, seller, dl, closeSellerX);
        vm.stopPrank();
        assertStatus(idB, IAgreementEscrow.Status.Active, "still active on B");

        vm.prank(buyer);
        escrow.initiateClose(a);

        bytes memory voucherB = voucher(BUYER_KEY, idB, VOUCHER);
        vm.startPrank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, idB, VOUCHER));
        escrow.sellerClaim(a, VOUCHER, voucherA, seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, idB, VOUCHER));
        escrow.sellerClaim(a, VOUCHER, voucherX, seller);
        vm.stopPrank();

        vm.startPrank(relayer);
        vm.expectRevert(invalidSignature(seller));
        escrow.sellerClaimWithSig(a, VOUCHER, voucherB, seller, dl, claimA);
        vm.expectRevert(invalidSignature(seller));
        escrow.sellerClaimWithSig(a, VOUCHER, voucherB, seller, dl, claimX);
        vm.stopPrank();
        assertStatus(idB, IAgreementEscrow.Status.Closing, "no claim on B");

        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, voucherB, seller);

        vm.startPrank(relayer);
        vm.expectRevert(invalidSignature(buyer));
        escrow.buyerWithdrawWithSig(a, buyer, dl, withdrawA);
        vm.expectRevert(invalidSignature(buyer));
        escrow.buyerWithdrawWithSig(a, buyer, dl, withdrawX);
        vm.stopPrank();
        assertStatus(idB, IAgreementEscrow.Status.SellerClaimed, "no withdrawal on B");

        // Sanity: the chain-A signatures were valid — on chain A.
        vm.chainId(chainA);
        vm.prank(relayer);
        escrow.initiateCloseWithSig(a, seller, dl, closeSellerA);
        assertStatus(idA, IAgreementEscrow.Status.Closing, "chain-A close works on A");
        vm.prank(relayer);
        escrow.sellerClaimWithSig(a, VOUCHER, voucherA, seller, dl, claimA);
        vm.prank(relayer);
        escrow.buyerWithdrawWithSig(a, buyer, dl, withdrawA);
        assertStatus(idA, IAgreementEscrow.Status.Settled, "chain-A lifecycle completes on A");
    }

    // =============================================================================================
    // Across escrow deployments
    // =============================================================================================

    function test_deployment_idsDifferPerEscrow() public {
        (, AgreementEscrow esc2) = deployEscrow(address(oracle));
        IAgreementEscrow.Agreement memory a = terms();
        assertNotEq(escrow.agreementId(a), esc2.agreementId(a), "agreement id commits to the escrow");
        assertEq(esc2.agreementId(a), idOf(esc2, a), "second escrow id");
    }

    function test_deployment_depositAuthorizationForEscrow1_rejectedByEscrow2() public {
        (InfraFeeCollector fc2, AgreementEscrow esc2) = deployEscrow(address(oracle));
        IAgreementEscrow.Agreement memory a = terms();
        ReceiveAuthorization memory deposit1 = depositAuthorization(a);
        ReceiveAuthorization memory fee1 = feeAuthorization(a);
        ReceiveAuthorization memory fee2 = feeAuthOn(esc2, fc2, BUYER_KEY, a);

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(LocalUSDC.InvalidSignature.selector, buyer));
        esc2.activateWithAuthorization(a, deposit1, fee2);
        assertEq(uint256(esc2.agreementState(idOf(esc2, a)).status), 0, "not activated on escrow 2");

        // Escrow 1 accepts them.
        vm.prank(relayer);
        escrow.activateWithAuthorization(a, deposit1, fee1);
        assertStatus(idOf(a), IAgreementEscrow.Status.Active, "activated on escrow 1");
    }

    function test_deployment_feeAuthorizationForCollector1_rejectedByCollector2() public {
        (, AgreementEscrow esc2) = deployEscrow(address(oracle));
        IAgreementEscrow.Agreement memory a = terms();
        ReceiveAuthorization memory deposit2 = depositAuthOn(esc2, BUYER_KEY, a);
        ReceiveAuthorization memory fee1 = feeAuthorization(a);

        vm.expectRevert(abi.encodeWithSelector(LocalUSDC.InvalidSignature.selector, buyer));
        esc2.activateWithAuthorization(a, deposit2, fee1);
        assertEq(uint256(esc2.agreementState(idOf(esc2, a)).status), 0, "not activated on escrow 2");
        assertEq(usdc.balanceOf(address(esc2)), 0, "deposit rolled back");
    }

    function test_deployment_permitActivationSignatureForEscrow1_rejectedByEscrow2() public {
        (, AgreementEscrow esc2) = deployEscrow(address(oracle));
        IAgreementEscrow.Agreement memory a = terms(MAX_AMOUNT, 0);
        vm.prank(buyer);
        usdc.approve(address(esc2), type(uint256).max);
        uint256 deadline = block.timestamp + 1 hours;
        PermitSignature memory none;
        bytes memory sig1 = activationSignature(BUYER_KEY, a, deadline);

        vm.expectRevert(invalidSignature(buyer));
        esc2.activateWithPermit(a, deadline, sig1, none, none);

        bytes memory sig2 = activationSignature(BUYER_KEY, esc2, a, deadline);
        esc2.activateWithPermit(a, deadline, sig2, none, none);
        assertEq(uint256(esc2.agreementState(idOf(esc2, a)).status), 1, "activated with escrow 2's signature");
    }

    function test_deployment_settlementAuthorizationsForEscrow1_rejectedByEscrow2() public {
        (InfraFeeCollector fc2, AgreementEscrow esc2) = deployEscrow(address(oracle));
        IAgreementEscrow.Agreement memory a = terms();
        uint256 dl = block.timestamp + 60 days;
        bytes32 id1 = activate(a);
        bytes32 id2 = activateOn(esc2, fc2, BUYER_KEY, a);
        assertNotEq(id1, id2, "distinct ids");

        bytes memory close1 = closeSig(BUYER_KEY, id1, buyer, dl);
        bytes memory closeMixed = closeSig(BUYER_KEY, id2, buyer, dl); // escrow 1 domain, escrow 2 id
        bytes memory voucher1 = voucher(BUYER_KEY, id1, VOUCHER);
        bytes memory voucherMixed = voucher(BUYER_KEY, id2, VOUCHER);
        bytes memory claim1 = claimSig(SELLER_KEY, id1, VOUCHER, seller, dl);
        bytes memory claimMixed = claimSig(SELLER_KEY, id2, VOUCHER, seller, dl);
        bytes memory withdraw1 = withdrawSig(BUYER_KEY, id1, buyer, dl);
        bytes memory withdrawMixed = withdrawSig(BUYER_KEY, id2, buyer, dl);
        bytes memory voucher2 = voucherOn(esc2, BUYER_KEY, id2, VOUCHER);

        vm.startPrank(relayer);
        vm.expectRevert(invalidSignature(buyer));
        esc2.initiateCloseWithSig(a, buyer, dl, close1);
        vm.expectRevert(invalidSignature(buyer));
        esc2.initiateCloseWithSig(a, buyer, dl, closeMixed);
        vm.stopPrank();

        vm.prank(seller);
        esc2.initiateClose(a);

        vm.startPrank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, id2, VOUCHER));
        esc2.sellerClaim(a, VOUCHER, voucher1, seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, id2, VOUCHER));
        esc2.sellerClaim(a, VOUCHER, voucherMixed, seller);
        vm.stopPrank();

        vm.startPrank(relayer);
        vm.expectRevert(invalidSignature(seller));
        esc2.sellerClaimWithSig(a, VOUCHER, voucher2, seller, dl, claim1);
        vm.expectRevert(invalidSignature(seller));
        esc2.sellerClaimWithSig(a, VOUCHER, voucher2, seller, dl, claimMixed);
        vm.stopPrank();

        vm.prank(seller);
        esc2.sellerClaim(a, VOUCHER, voucher2, seller);

        vm.startPrank(relayer);
        vm.expectRevert(invalidSignature(buyer));
        esc2.buyerWithdrawWithSig(a, buyer, dl, withdraw1);
        vm.expectRevert(invalidSignature(buyer));
        esc2.buyerWithdrawWithSig(a, buyer, dl, withdrawMixed);
        vm.stopPrank();
        assertEq(uint256(esc2.agreementState(id2).status), uint256(IAgreementEscrow.Status.SellerClaimed), "escrow 2");
        assertEq(usdc.balanceOf(address(esc2)), MAX_AMOUNT - VOUCHER, "escrow 2 still holds the remainder");

        // Escrow 1's own agreement is untouched by all of this, and its signatures work there.
        assertStatus(id1, IAgreementEscrow.Status.Active, "escrow 1 agreement untouched");
        vm.prank(relayer);
        escrow.initiateCloseWithSig(a, buyer, dl, close1);
        vm.prank(relayer);
        escrow.sellerClaimWithSig(a, VOUCHER, voucher1, seller, dl, claim1);
        vm.prank(relayer);
        escrow.buyerWithdrawWithSig(a, buyer, dl, withdraw1);
        assertStatus(id1, IAgreementEscrow.Status.Settled, "escrow 1 lifecycle with its own signatures");
    }

    // =============================================================================================
    // Across agreements (same parties, same token, same amounts: only the salt differs)
    // =============================================================================================

    function test_agreements_voucherForX_rejectedOnY() public {
        IAgreementEscrow.Agreement memory x = terms();
        IAgreementEscrow.Agreement memory y = terms();
        bytes32 idX = activateAndClose(x);
        bytes32 idY = activateAndClose(y);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory voucherX = voucher(BUYER_KEY, idX, VOUCHER);
        bytes memory claimY = claimSig(SELLER_KEY, idY, VOUCHER, seller, dl);

        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, idY, VOUCHER));
        escrow.sellerClaim(y, VOUCHER, voucherX, seller);

        // Even with the seller's genuine claim authorization for Y.
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, idY, VOUCHER));
        escrow.sellerClaimWithSig(y, VOUCHER, voucherX, seller, dl, claimY);

        assertStatus(idY, IAgreementEscrow.Status.Closing, "Y unpaid");
        assertEq(usdc.balanceOf(address(escrow)), 2 * MAX_AMOUNT, "both deposits intact");
    }

    function test_agreements_withSigAuthorizationsForX_rejectedOnY() public {
        IAgreementEscrow.Agreement memory x = terms();
        IAgreementEscrow.Agreement memory y = terms();
        bytes32 idX = activate(x);
        bytes32 idY = activate(y);
        uint256 dl = block.timestamp + 60 days;

        bytes memory closeBuyerX = closeSig(BUYER_KEY, idX, buyer, dl);
        bytes memory closeSellerX = closeSig(SELLER_KEY, idX, seller, dl);
        bytes memory claimX = claimSig(SELLER_KEY, idX, VOUCHER, seller, dl);
        bytes memory withdrawX = withdrawSig(BUYER_KEY, idX, buyer, dl);
        bytes memory voucherY = voucher(BUYER_KEY, idY, VOUCHER);

        vm.startPrank(relayer);
        vm.expectRevert(invalidSignature(buyer));
        escrow.initiateCloseWithSig(y, buyer, dl, closeBuyerX);
        vm.expectRevert(invalidSignature(seller));
        escrow.initiateCloseWithSig(y, seller, dl, closeSellerX);
        vm.stopPrank();
        assertStatus(idY, IAgreementEscrow.Status.Active, "Y not closed");

        vm.prank(buyer);
        escrow.initiateClose(y);
        vm.prank(relayer);
        vm.expectRevert(invalidSignature(seller));
        escrow.sellerClaimWithSig(y, VOUCHER, voucherY, seller, dl, claimX);

        vm.warp(block.timestamp + CLOSE_WINDOW);
        vm.prank(relayer);
        vm.expectRevert(invalidSignature(buyer));
        escrow.buyerWithdrawWithSig(y, buyer, dl, withdrawX);
        assertStatus(idY, IAgreementEscrow.Status.Closing, "Y not settled");
        assertStatus(idX, IAgreementEscrow.Status.Active, "X untouched");
    }

    function test_agreements_activationAuthorizationsForX_rejectedOnY() public {
        IAgreementEscrow.Agreement memory x = terms();
        IAgreementEscrow.Agreement memory y = terms();
        ReceiveAuthorization memory depositX = depositAuthorization(x);
        ReceiveAuthorization memory feeX = feeAuthorization(x);
        ReceiveAuthorization memory depositY = depositAuthorization(y);
        ReceiveAuthorization memory feeY = feeAuthorization(y);

        vm.expectRevert(abi.encodeWithSelector(LocalUSDC.InvalidSignature.selector, buyer));
        escrow.activateWithAuthorization(y, depositX, feeY);
        vm.expectRevert(abi.encodeWithSelector(LocalUSDC.InvalidSignature.selector, buyer));
        escrow.activateWithAuthorization(y, depositY, feeX);
        assertStatus(idOf(y), IAgreementEscrow.Status.None, "Y not activated");

        // Permit path: X's Activation signature does not activate Y even with an allowance in place.
        IAgreementEscrow.Agreement memory p = terms(MAX_AMOUNT, 0);
        IAgreementEscrow.Agreement memory q = terms(MAX_AMOUNT, 0);
        vm.prank(buyer);
        usdc.approve(address(escrow), type(uint256).max);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sigP = activationSignature(BUYER_KEY, p, deadline);
        PermitSignature memory none;
        vm.expectRevert(invalidSignature(buyer));
        escrow.activateWithPermit(q, deadline, sigP, none, none);
        assertStatus(idOf(q), IAgreementEscrow.Status.None, "Q not activated");
        assertEq(usdc.balanceOf(address(escrow)), 0, "nothing moved");
    }

    // =============================================================================================
    // After use
    // =============================================================================================

    function test_afterUse_activationResubmittedAfterSettlement_rejected() public {
        IAgreementEscrow.Agreement memory a = terms();
        ReceiveAuthorization memory deposit = depositAuthorization(a);
        ReceiveAuthorization memory fee = feeAuthorization(a);
        vm.prank(relayer);
        bytes32 id = escrow.activateWithAuthorization(a, deposit, fee);

        // Full claim settles the agreement.
        vm.prank(buyer);
        escrow.initiateClose(a);
        bytes memory full = voucher(BUYER_KEY, id, MAX_AMOUNT);
        vm.prank(seller);
        escrow.sellerClaim(a, MAX_AMOUNT, full, seller);
        assertStatus(id, IAgreementEscrow.Status.Settled, "settled");

        vm.prank(relayer);
        vm.expectRevert(unexpectedStatus(id, IAgreementEscrow.Status.None, IAgreementEscrow.Status.Settled));
        escrow.activateWithAuthorization(a, deposit, fee);

        // Nor can the terms be re-funded through the permit path with fresh consent.
        vm.prank(buyer);
        usdc.approve(address(escrow), MAX_AMOUNT);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = activationSignature(BUYER_KEY, a, deadline);
        PermitSignature memory none;
        vm.expectRevert(unexpectedStatus(id, IAgreementEscrow.Status.None, IAgreementEscrow.Status.Settled));
        escrow.activateWithPermit(a, deadline, sig, none, none);
        assertEq(usdc.balanceOf(address(escrow)), 0, "nothing re-escrowed");
    }

    function test_afterUse_permitActivationTwice_rejectedEvenWithAllowanceLeft() public {
        IAgreementEscrow.Agreement memory a = terms(MAX_AMOUNT, 0);
        vm.prank(buyer);
        usdc.approve(address(escrow), type(uint256).max);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = activationSignature(BUYER_KEY, a, deadline);
        PermitSignature memory none;
        bytes32 id = escrow.activateWithPermit(a, deadline, sig, none, none);

        vm.expectRevert(unexpectedStatus(id, IAgreementEscrow.Status.None, IAgreementEscrow.Status.Active));
        escrow.activateWithPermit(a, deadline, sig, none, none);
        // Cross-path: the EIP-3009 route does not re-fund it either.
        ReceiveAuthorization memory deposit = depositAuthorization(a);
        ReceiveAuthorization memory fee = feeAuthorization(a);
        vm.expectRevert(unexpectedStatus(id, IAgreementEscrow.Status.None, IAgreementEscrow.Status.Active));
        escrow.activateWithAuthorization(a, deposit, fee);
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "funded once");
    }

    function test_afterUse_initiateCloseWithSigTwice_rejected_andWindowNotExtended() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        uint256 dl = block.timestamp + 10 days;
        bytes memory sig = closeSig(BUYER_KEY, id, buyer, dl);
        bytes memory sellerSig = closeSig(SELLER_KEY, id, seller, dl);

        vm.prank(relayer);
        escrow.initiateCloseWithSig(a, buyer, dl, sig);
        uint256 deadline = escrow.agreementState(id).closeDeadline;

        vm.warp(block.timestamp + 12 hours);
        vm.startPrank(relayer);
        vm.expectRevert(unexpectedStatus(id, IAgreementEscrow.Status.Active, IAgreementEscrow.Status.Closing));
        escrow.initiateCloseWithSig(a, buyer, dl, sig);
        vm.expectRevert(unexpectedStatus(id, IAgreementEscrow.Status.Active, IAgreementEscrow.Status.Closing));
        escrow.initiateCloseWithSig(a, seller, dl, sellerSig);
        vm.stopPrank();
        assertEq(escrow.agreementState(id).closeDeadline, deadline, "close deadline not pushed back");
    }

    function test_afterUse_sellerClaimWithSigTwice_paysOnce() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory v = voucher(BUYER_KEY, id, VOUCHER);
        bytes memory sig = claimSig(SELLER_KEY, id, VOUCHER, seller, dl);
        uint256 sellerBefore = usdc.balanceOf(seller);

        vm.prank(relayer);
        escrow.sellerClaimWithSig(a, VOUCHER, v, seller, dl, sig);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.SellerAlreadyPaid.selector, id));
        escrow.sellerClaimWithSig(a, VOUCHER, v, seller, dl, sig);
        assertEq(usdc.balanceOf(seller), sellerBefore + VOUCHER, "seller paid exactly once");
    }

    /// A seller that claimed a low voucher cannot come back with a higher one (nor the same one).
    function test_afterUse_directClaimOnce_evenWithAHigherVoucher() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory low = voucher(BUYER_KEY, id, VOUCHER);
        bytes memory high = voucher(BUYER_KEY, id, VOUCHER + 1);
        vm.startPrank(seller);
        escrow.sellerClaim(a, VOUCHER, low, seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.SellerAlreadyPaid.selector, id));
        escrow.sellerClaim(a, VOUCHER + 1, high, seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.SellerAlreadyPaid.selector, id));
        escrow.sellerClaim(a, VOUCHER, low, carol);
        vm.stopPrank();
        assertEq(escrow.agreementState(id).settledAmount, VOUCHER, "settled amount unchanged");
    }

    function test_afterUse_buyerWithdrawWithSigTwice_paysOnce() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, VOUCHER);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory sig = withdrawSig(BUYER_KEY, id, carol, dl);

        vm.prank(relayer);
        escrow.buyerWithdrawWithSig(a, carol, dl, sig);
        vm.prank(relayer);
        vm.expectRevert(unexpectedStatus(id, IAgreementEscrow.Status.Closing, IAgreementEscrow.Status.Settled));
        escrow.buyerWithdrawWithSig(a, carol, dl, sig);
        assertEq(usdc.balanceOf(carol), MAX_AMOUNT - VOUCHER, "remainder paid exactly once");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow empty");
    }

    // =============================================================================================
    // Type confusion (same-shaped messages under the same domain)
    // =============================================================================================

    /// InitiateClose(id, party, deadline) and BuyerWithdraw(id, recipient, deadline) encode identically
    /// but for the type hash.
    function test_typeConfusion_initiateCloseSignatureAsBuyerWithdraw() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        uint256 dl = block.timestamp + 30 days;
        bytes memory closeBuyer = closeSig(BUYER_KEY, id, buyer, dl);
        vm.prank(seller);
        escrow.initiateClose(a);
        vm.warp(block.timestamp + CLOSE_WINDOW);

        vm.prank(relayer);
        vm.expectRevert(invalidSignature(buyer));
        escrow.buyerWithdrawWithSig(a, buyer, dl, closeBuyer);
        assertStatus(id, IAgreementEscrow.Status.Closing, "not withdrawn");
    }

    function test_typeConfusion_buyerWithdrawSignatureAsInitiateClose() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        uint256 dl = block.timestamp + 30 days;
        bytes memory withdrawBuyer = withdrawSig(BUYER_KEY, id, buyer, dl);
        vm.prank(relayer);
        vm.expectRevert(invalidSignature(buyer));
        escrow.initiateCloseWithSig(a, buyer, dl, withdrawBuyer);
        assertStatus(id, IAgreementEscrow.Status.Active, "not closed");
    }

    /// Voucher(id, cumulativeAmount) and Activation(id, deadline) encode identically but for the type hash.
    function test_typeConfusion_voucherAsActivation_andActivationAsVoucher() public {
        // maxAmount above any timestamp, so a deadline is also a valid voucher amount.
        IAgreementEscrow.Agreement memory a = terms(10_000e6, 0);
        bytes32 id = idOf(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory voucherSig = voucher(BUYER_KEY, id, deadline);
        bytes memory activationSig = activationSignature(BUYER_KEY, a, deadline);
        vm.prank(buyer);
        usdc.approve(address(escrow), type(uint256).max);
        PermitSignature memory none;

        vm.expectRevert(invalidSignature(buyer));
        escrow.activateWithPermit(a, deadline, voucherSig, none, none);
        assertStatus(id, IAgreementEscrow.Status.None, "voucher is no activation consent");

        escrow.activateWithPermit(a, deadline, activationSig, none, none);
        vm.prank(buyer);
        escrow.initiateClose(a);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, id, deadline));
        escrow.sellerClaim(a, deadline, activationSig, seller);
        assertStatus(id, IAgreementEscrow.Status.Closing, "activation consent is no voucher");
    }

    function test_typeConfusion_partyMismatchInInitiateClose() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        uint256 dl = block.timestamp + 1 hours;
        // The seller's own close authorization, submitted as if it were the buyer's.
        bytes memory sellerOwn = closeSig(SELLER_KEY, id, seller, dl);
        // The seller signing a message that names the buyer.
        bytes memory sellerNamingBuyer = closeSig(SELLER_KEY, id, buyer, dl);
        // The buyer's, submitted as the seller's.
        bytes memory buyerOwn = closeSig(BUYER_KEY, id, buyer, dl);
        bytes memory strangerOwn = closeSig(STRANGER_KEY, id, stranger, dl);

        vm.startPrank(relayer);
        vm.expectRevert(invalidSignature(buyer));
        escrow.initiateCloseWithSig(a, buyer, dl, sellerOwn);
        vm.expectRevert(invalidSignature(buyer));
        escrow.initiateCloseWithSig(a, buyer, dl, sellerNamingBuyer);
        vm.expectRevert(invalidSignature(seller));
        escrow.initiateCloseWithSig(a, seller, dl, buyerOwn);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.NotBuyerOrSeller.selector, stranger));
        escrow.initiateCloseWithSig(a, stranger, dl, strangerOwn);
        vm.stopPrank();
        assertStatus(id, IAgreementEscrow.Status.Active, "not closed");
    }

    function test_typeConfusion_sellerSignedVoucherIsNoVoucher() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory bySeller = voucher(SELLER_KEY, id, VOUCHER);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, id, VOUCHER));
        escrow.sellerClaim(a, VOUCHER, bySeller, seller);
    }

    /// The buyer's token-domain deposit authorization is no escrow-domain Activation consent.
    function test_typeConfusion_tokenAuthorizationIsNoActivationConsent() public {
        IAgreementEscrow.Agreement memory a = terms(MAX_AMOUNT, 0);
        ReceiveAuthorization memory deposit = depositAuthorization(a);
        vm.prank(buyer);
        usdc.approve(address(escrow), type(uint256).max);
        PermitSignature memory none;
        vm.expectRevert(invalidSignature(buyer));
        escrow.activateWithPermit(a, deposit.validBefore, deposit.signature, none, none);
    }

    // =============================================================================================
    // Malleability
    // =============================================================================================

    function test_malleatedSignatures_rejected() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory sig = closeSig(BUYER_KEY, id, buyer, dl);
        bytes memory high = malleate(sig);

        vm.prank(relayer);
        vm.expectRevert(invalidSignature(buyer));
        escrow.initiateCloseWithSig(a, buyer, dl, high);
        vm.prank(relayer);
        escrow.initiateCloseWithSig(a, buyer, dl, sig);

        bytes memory v = voucher(BUYER_KEY, id, VOUCHER);
        bytes memory vHigh = malleate(v);
        vm.prank(seller);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, id, VOUCHER));
        escrow.sellerClaim(a, VOUCHER, vHigh, seller);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "claimed with the canonical voucher");
    }
}
