// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SecurityFixture} from "./utils/SecurityFixture.sol";
import {ERC1271Wallet} from "./mocks/ERC1271Wallet.sol";
import {IAgreementEscrow} from "../../contracts/interfaces/IAgreementEscrow.sol";
import {ReceiveAuthorization, PermitSignature} from "../../contracts/interfaces/ITokenAuthorizations.sol";
import {LocalUSDC} from "../../contracts/local/LocalUSDC.sol";

/// @notice Smart-contract wallets (ERC-1271) as buyer and as seller: a wallet that validates its owner's
///         signatures can do everything an EOA can by signature; a wallet that refuses, reverts, or
///         answers with anything but the exact magic value authorizes nothing.
contract ERC1271Test is SecurityFixture {
    uint256 internal constant BUYER_OWNER_KEY = 0xA11CE;
    uint256 internal constant SELLER_OWNER_KEY = 0x5A11E;
    uint256 internal constant VOUCHER = 40e6;

    ERC1271Wallet internal buyerWallet;
    ERC1271Wallet internal sellerWallet;

    function setUp() public override {
        super.setUp();
        buyerWallet = new ERC1271Wallet(vm.addr(BUYER_OWNER_KEY));
        sellerWallet = new ERC1271Wallet(vm.addr(SELLER_OWNER_KEY));
        vm.label(address(buyerWallet), "buyerWallet");
        vm.label(address(sellerWallet), "sellerWallet");
        usdc.mint(address(buyerWallet), BUYER_FUNDS);
    }

    // ---------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------

    function walletTerms(address b, address s) internal returns (IAgreementEscrow.Agreement memory a) {
        a = terms();
        a.buyer = b;
        a.seller = s;
    }

    function walletDeposit(IAgreementEscrow.Agreement memory a) internal view returns (ReceiveAuthorization memory) {
        return
            receiveAuthFrom(BUYER_OWNER_KEY, a.buyer, address(escrow), a.maxAmount, idOf(a), block.timestamp + 1 hours);
    }

    function walletFee(IAgreementEscrow.Agreement memory a) internal view returns (ReceiveAuthorization memory) {
        return receiveAuthFrom(
            BUYER_OWNER_KEY,
            a.buyer,
            address(feeCollector),
            a.infraFee,
            feeNonce(idOf(a), a.infraFee),
            block.timestamp + 1 hours
        );
    }

    function activateWallet(IAgreementEscrow.Agreement memory a) internal returns (bytes32 id) {
        ReceiveAuthorization memory d = walletDeposit(a);
        ReceiveAuthorization memory f = walletFee(a);
        vm.prank(relayer);
        id = escrow.activateWithAuthorization(a, d, f);
    }

    function walletPermit(address owner, address spender, uint256 value, uint256 deadline)
        internal
        view
        returns (bytes memory)
    {
        bytes32 structHash =
            keccak256(abi.encode(usdc.PERMIT_TYPEHASH(), owner, spender, value, usdc.nonces(owner), deadline));
        return sign(BUYER_OWNER_KEY, usdcDigest(structHash));
    }

    function invalidVoucher(bytes32 id, uint256 amount) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, id, amount);
    }

    // ---------------------------------------------------------------------------------------------
    // An approving wallet as buyer
    // ---------------------------------------------------------------------------------------------

    function test_buyerWallet_activatesWithReceiveAuthorization() public {
        IAgreementEscrow.Agreement memory a = walletTerms(address(buyerWallet), seller);
        bytes32 id = activateWallet(a);
        assertStatus(id, IAgreementEscrow.Status.Active, "active");
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "deposit");
        assertEq(usdc.balanceOf(address(feeCollector)), INFRA_FEE, "fee");
        assertEq(usdc.balanceOf(address(buyerWallet)), BUYER_FUNDS - MAX_AMOUNT - INFRA_FEE, "wallet paid");
        assertTrue(usdc.authorizationState(address(buyerWallet), id), "wallet's deposit nonce burnt");
    }

    /// Both permit routes: a 65-byte signature goes through `permit(v, r, s)`, any other length through
    /// USDC's `permit(bytes)`; the token verifies either with ERC-1271 for a contract owner.
    function test_buyerWallet_activatesWithPermit_bothPermitForms() public {
        IAgreementEscrow.Agreement memory a = walletTerms(address(buyerWallet), seller);
        bytes32 id = idOf(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory activationSig = sign(BUYER_OWNER_KEY, escrowDigest(escrow, activationStructHash(a, deadline)));
        bytes memory depositSig = walletPermit(address(buyerWallet), address(escrow), a.maxAmount, deadline);
        PermitSignature memory deposit = PermitSignature(deadline, depositSig);
        // The fee permit uses the next nonce; 66 bytes route it to the bytes form.
        bytes32 feeStruct = keccak256(
            abi.encode(
                usdc.PERMIT_TYPEHASH(),
                address(buyerWallet),
                address(feeCollector),
                a.infraFee,
                usdc.nonces(address(buyerWallet)) + 1,
                deadline
            )
        );
        bytes memory feeSig = abi.encodePacked(sign(BUYER_OWNER_KEY, usdcDigest(feeStruct)), hex"ff");
        PermitSignature memory fee = PermitSignature(deadline, feeSig);

        vm.prank(relayer);
        escrow.activateWithPermit(a, deadline, activationSig, deposit, fee);
        assertStatus(id, IAgreementEscrow.Status.Active, "active");
        assertEq(usdc.nonces(address(buyerWallet)), 2, "both permits were used (no pre-existing allowance)");
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "deposit");
        assertEq(usdc.balanceOf(address(feeCollector)), INFRA_FEE, "fee");
    }

    function test_buyerWallet_signsVouchersAndWithdrawsWithSig() public {
        IAgreementEscrow.Agreement memory a = walletTerms(address(buyerWallet), seller);
        bytes32 id = activateWallet(a);
        vm.prank(address(buyerWallet));
        escrow.initiateClose(a);

        bytes memory v = sign(BUYER_OWNER_KEY, escrowDigest(escrow, voucherHash(id, VOUCHER)));
        uint256 sellerBefore = usdc.balanceOf(seller);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        assertEq(usdc.balanceOf(seller), sellerBefore + VOUCHER, "seller paid on the wallet's voucher");

        uint256 dl = block.timestamp + 1 hours;
        bytes memory w = sign(BUYER_OWNER_KEY, escrowDigest(escrow, withdrawHash(id, carol, dl)));
        vm.prank(relayer);
        escrow.buyerWithdrawWithSig(a, carol, dl, w);
        assertEq(usdc.balanceOf(carol), MAX_AMOUNT - VOUCHER, "remainder to the wallet's chosen recipient");
        assertStatus(id, IAgreementEscrow.Status.Settled, "settled");
    }

    function test_buyerWallet_initiatesCloseWithSig() public {
        IAgreementEscrow.Agreement memory a = walletTerms(address(buyerWallet), seller);
        bytes32 id = activateWallet(a);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory c = sign(BUYER_OWNER_KEY, escrowDigest(escrow, closeHash(id, address(buyerWallet), dl)));
        vm.expectEmit(true, true, false, true, address(escrow));
        emit IAgreementEscrow.CloseInitiated(id, address(buyerWallet), block.timestamp + CLOSE_WINDOW);
        vm.prank(relayer);
        escrow.initiateCloseWithSig(a, address(buyerWallet), dl, c);
        assertStatus(id, IAgreementEscrow.Status.Closing, "closing");
    }

    /// "anything for an ERC-1271 wallet": an empty voucher signature over a hash the wallet's owner
    /// approved on chain is a valid voucher.
    function test_buyerWallet_preApprovedHashVoucher_withEmptySignature() public {
        IAgreementEscrow.Agreement memory a = walletTerms(address(buyerWallet), seller);
        bytes32 id = activateWallet(a);
        vm.prank(seller);
        escrow.initiateClose(a);

        vm.prank(seller);
        vm.expectRevert(invalidVoucher(id, VOUCHER));
        escrow.sellerClaim(a, VOUCHER, "", seller);

        bytes32 digest = escrowDigest(escrow, voucherHash(id, VOUCHER));
        vm.prank(buyerWallet.owner());
        buyerWallet.approveHash(digest);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, "", seller);
        assertEq(escrow.agreementState(id).settledAmount, VOUCHER, "claimed on the approved hash");
    }

    /// The wallet's owner EOA is not the party; and another key cannot sign for the wallet.
    function test_buyerWallet_ownerIsNotTheParty_andStrangerCannotSignForIt() public {
        IAgreementEscrow.Agreement memory a = walletTerms(address(buyerWallet), seller);
        bytes32 id = activateWallet(a);
        address owner = buyerWallet.owner();
        uint256 dl = block.timestamp + 1 hours;
        bytes memory ownerAsParty = sign(BUYER_OWNER_KEY, escrowDigest(escrow, closeHash(id, owner, dl)));
        bytes memory byStranger = sign(STRANGER_KEY, escrowDigest(escrow, closeHash(id, address(buyerWallet), dl)));

        vm.startPrank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.NotBuyerOrSeller.selector, owner));
        escrow.initiateCloseWithSig(a, owner, dl, ownerAsParty);
        vm.expectRevert(invalidSignature(address(buyerWallet)));
        escrow.initiateCloseWithSig(a, address(buyerWallet), dl, byStranger);
        vm.stopPrank();
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.NotBuyerOrSeller.selector, owner));
        escrow.initiateClose(a);
        assertStatus(id, IAgreementEscrow.Status.Active, "still active");
    }

    // ---------------------------------------------------------------------------------------------
    // Vouchers are verified when claimed, not when signed (trust assumption for sellers)
    // ---------------------------------------------------------------------------------------------

    /// A smart-wallet buyer can revoke every voucher it signed (ERC-1271 answers are re-evaluated at
    /// claim time): after usage was paid for by vouchers, it stops validating, closes, lets the window
    /// run out and recovers the whole deposit. Sellers of smart-wallet buyers bear this risk.
    function test_buyerWallet_canRevokeItsVouchers_sellerLosesClaim() public {
        IAgreementEscrow.Agreement memory a = walletTerms(address(buyerWallet), seller);
        bytes32 id = activateWallet(a);
        bytes memory v = sign(BUYER_OWNER_KEY, escrowDigest(escrow, voucherHash(id, MAX_AMOUNT)));
        buyerWallet.setMode(ERC1271Wallet.Mode.Refuse); // the wallet's owner changes its mind
        vm.prank(address(buyerWallet));
        escrow.initiateClose(a);
        vm.prank(seller);
        vm.expectRevert(invalidVoucher(id, MAX_AMOUNT));
        escrow.sellerClaim(a, MAX_AMOUNT, v, seller);
        vm.warp(block.timestamp + CLOSE_WINDOW);
        vm.prank(address(buyerWallet));
        escrow.buyerWithdraw(a, address(buyerWallet));
        assertEq(usdc.balanceOf(address(buyerWallet)), BUYER_FUNDS - INFRA_FEE, "buyer recovered everything");
    }

    /// An EOA buyer that later gets code (EIP-7702 delegation, simulated here by etching code) cannot
    /// disown what its key signed: the escrow checks ECDSA before asking the account's code, so an
    /// earlier voucher stays valid whatever the delegate answers (audit finding F-1). The delegate
    /// can additionally vouch through ERC-1271 for signatures that are not the key's own.
    function test_eoaBuyerThatGainsCode_cannotDisownItsEcdsaVouchers() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, VOUCHER);

        // A delegate that refuses the key's raw signatures (it only knows another owner key).
        ERC1271Wallet refusing = new ERC1271Wallet(vm.addr(BUYER_OWNER_KEY));
        vm.etch(buyer, address(refusing).code);
        uint256 sellerBefore = usdc.balanceOf(seller);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "the key's voucher is honoured");
        assertEq(usdc.balanceOf(seller) - sellerBefore, VOUCHER, "seller paid despite the delegation");
    }

    /// The same holds for a delegated party's relayed authorizations, and an ERC-1271 answer from the
    /// delegate is accepted for signatures made by another key it recognises.
    function test_delegatedEoa_keyAndDelegateSignaturesBothVerify() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        uint256 dl = block.timestamp + 1 hours;
        // The delegate accepts signatures of BUYER_OWNER_KEY (say, a passkey-backed session key).
        ERC1271Wallet delegate = new ERC1271Wallet(vm.addr(BUYER_OWNER_KEY));
        vm.etch(buyer, address(delegate).code);

        bytes memory byDelegate = sign(BUYER_OWNER_KEY, closeDigest(id, buyer, dl));
        vm.prank(relayer);
        escrow.initiateCloseWithSig(a, buyer, dl, byDelegate);
        assertStatus(id, IAgreementEscrow.Status.Closing, "closed on the delegate's ERC-1271 answer");

        vm.warp(block.timestamp + CLOSE_WINDOW);
        bytes memory byKey = sign(BUYER_KEY, withdrawDigest(id, buyer, dl + CLOSE_WINDOW));
        vm.prank(relayer);
        escrow.buyerWithdrawWithSig(a, buyer, dl + CLOSE_WINDOW, byKey);
        assertStatus(id, IAgreementEscrow.Status.Settled, "withdrawn on the key's own signature");
    }

    // ---------------------------------------------------------------------------------------------
    // An approving wallet as seller
    // ---------------------------------------------------------------------------------------------

    function test_sellerWallet_closesAndClaimsWithSig() public {
        IAgreementEscrow.Agreement memory a = walletTerms(buyer, address(sellerWallet));
        bytes32 id = activate(a);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory c = sign(SELLER_OWNER_KEY, escrowDigest(escrow, closeHash(id, address(sellerWallet), dl)));
        vm.prank(relayer);
        escrow.initiateCloseWithSig(a, address(sellerWallet), dl, c);
        assertStatus(id, IAgreementEscrow.Status.Closing, "closed by the seller wallet's signature");

        bytes memory v = voucher(BUYER_KEY, id, VOUCHER);
        bytes memory s = sign(SELLER_OWNER_KEY, escrowDigest(escrow, claimHash(id, VOUCHER, address(sellerWallet), dl)));
        vm.prank(relayer);
        escrow.sellerClaimWithSig(a, VOUCHER, v, address(sellerWallet), dl, s);
        assertEq(usdc.balanceOf(address(sellerWallet)), VOUCHER, "seller wallet paid");
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "claimed");
    }

    function test_sellerWallet_claimsDirectly() public {
        IAgreementEscrow.Agreement memory a = walletTerms(buyer, address(sellerWallet));
        bytes32 id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, VOUCHER);
        vm.prank(address(sellerWallet));
        escrow.sellerClaim(a, VOUCHER, v, carol);
        assertEq(usdc.balanceOf(carol), VOUCHER, "paid to the wallet's chosen recipient");
    }

    /// Both parties are wallets.
    function test_bothWallets_fullLifecycleBySignatureOnly() public {
        IAgreementEscrow.Agreement memory a = walletTerms(address(buyerWallet), address(sellerWallet));
        bytes32 id = activateWallet(a);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory c = sign(SELLER_OWNER_KEY, escrowDigest(escrow, closeHash(id, address(sellerWallet), dl)));
        bytes memory v = sign(BUYER_OWNER_KEY, escrowDigest(escrow, voucherHash(id, VOUCHER)));
        bytes memory s = sign(SELLER_OWNER_KEY, escrowDigest(escrow, claimHash(id, VOUCHER, address(sellerWallet), dl)));
        bytes memory w = sign(BUYER_OWNER_KEY, escrowDigest(escrow, withdrawHash(id, address(buyerWallet), dl)));
        vm.startPrank(relayer);
        escrow.initiateCloseWithSig(a, address(sellerWallet), dl, c);
        escrow.sellerClaimWithSig(a, VOUCHER, v, address(sellerWallet), dl, s);
        escrow.buyerWithdrawWithSig(a, address(buyerWallet), dl, w);
        vm.stopPrank();
        assertEq(usdc.balanceOf(address(sellerWallet)), VOUCHER, "seller wallet");
        assertEq(usdc.balanceOf(address(buyerWallet)), BUYER_FUNDS - VOUCHER - INFRA_FEE, "buyer wallet");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow empty");
    }

    // ---------------------------------------------------------------------------------------------
    // A refusing wallet
    // ---------------------------------------------------------------------------------------------

    function test_refusingBuyerWallet_cannotActivate() public {
        buyerWallet.setMode(ERC1271Wallet.Mode.Refuse);
        IAgreementEscrow.Agreement memory a = walletTerms(address(buyerWallet), seller);
        ReceiveAuthorization memory d = walletDeposit(a);
        ReceiveAuthorization memory f = walletFee(a);
        vm.expectRevert(abi.encodeWithSelector(LocalUSDC.InvalidSignature.selector, address(buyerWallet)));
        escrow.activateWithAuthorization(a, d, f);
        assertStatus(idOf(a), IAgreementEscrow.Status.None, "not activated");

        // Permit path: the escrow itself refuses the Activation consent.
        vm.prank(address(buyerWallet));
        usdc.approve(address(escrow), type(uint256).max);
        uint256 deadline = block.timestamp + 1 hours;
        PermitSignature memory none;
        IAgreementEscrow.Agreement memory noFee = walletTerms(address(buyerWallet), seller);
        noFee.infraFee = 0;
        bytes memory sigNoFee = sign(BUYER_OWNER_KEY, escrowDigest(escrow, activationStructHash(noFee, deadline)));
        vm.expectRevert(invalidSignature(address(buyerWallet)));
        escrow.activateWithPermit(noFee, deadline, sigNoFee, none, none);
        assertStatus(idOf(noFee), IAgreementEscrow.Status.None, "not activated via permit either");
    }

    function test_refusingBuyerWallet_voucherWithdrawAndCloseRejected() public {
        IAgreementEscrow.Agreement memory a = walletTerms(address(buyerWallet), seller);
        bytes32 id = activateWallet(a);
        uint256 dl = block.timestamp + 30 days;
        bytes memory c = sign(BUYER_OWNER_KEY, escrowDigest(escrow, closeHash(id, address(buyerWallet), dl)));
        bytes memory v = sign(BUYER_OWNER_KEY, escrowDigest(escrow, voucherHash(id, VOUCHER)));
        bytes memory w = sign(BUYER_OWNER_KEY, escrowDigest(escrow, withdrawHash(id, address(buyerWallet), dl)));
        buyerWallet.setMode(ERC1271Wallet.Mode.Refuse);

        vm.prank(relayer);
        vm.expectRevert(invalidSignature(address(buyerWallet)));
        escrow.initiateCloseWithSig(a, address(buyerWallet), dl, c);

        vm.prank(seller);
        escrow.initiateClose(a);
        vm.prank(seller);
        vm.expectRevert(invalidVoucher(id, VOUCHER));
        escrow.sellerClaim(a, VOUCHER, v, seller);

        vm.warp(block.timestamp + CLOSE_WINDOW);
        vm.prank(relayer);
        vm.expectRevert(invalidSignature(address(buyerWallet)));
        escrow.buyerWithdrawWithSig(a, address(buyerWallet), dl, w);
        assertStatus(id, IAgreementEscrow.Status.Closing, "nothing paid out");

        // The wallet can still act directly: funds are never stuck behind its signature scheme.
        vm.prank(address(buyerWallet));
        escrow.buyerWithdraw(a, address(buyerWallet));
        assertStatus(id, IAgreementEscrow.Status.Settled, "direct withdraw");
    }

    function test_refusingSellerWallet_claimAndCloseWithSigRejected() public {
        IAgreementEscrow.Agreement memory a = walletTerms(buyer, address(sellerWallet));
        bytes32 id = activate(a);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory c = sign(SELLER_OWNER_KEY, escrowDigest(escrow, closeHash(id, address(sellerWallet), dl)));
        bytes memory v = voucher(BUYER_KEY, id, VOUCHER);
        bytes memory s = sign(SELLER_OWNER_KEY, escrowDigest(escrow, claimHash(id, VOUCHER, address(sellerWallet), dl)));
        sellerWallet.setMode(ERC1271Wallet.Mode.Refuse);

        vm.prank(relayer);
        vm.expectRevert(invalidSignature(address(sellerWallet)));
        escrow.initiateCloseWithSig(a, address(sellerWallet), dl, c);
        vm.prank(buyer);
        escrow.initiateClose(a);
        vm.prank(relayer);
        vm.expectRevert(invalidSignature(address(sellerWallet)));
        escrow.sellerClaimWithSig(a, VOUCHER, v, address(sellerWallet), dl, s);
        assertStatus(id, IAgreementEscrow.Status.Closing, "not claimed");

        // Once the wallet validates again, the same authorization works.
        sellerWallet.setMode(ERC1271Wallet.Mode.Approve);
        vm.prank(relayer);
        escrow.sellerClaimWithSig(a, VOUCHER, v, address(sellerWallet), dl, s);
        assertStatus(id, IAgreementEscrow.Status.SellerClaimed, "claimed");
    }

    // ---------------------------------------------------------------------------------------------
    // Misbehaving wallets: revert, malformed return data, state writes, gas burning
    // ---------------------------------------------------------------------------------------------

    function _badModes() internal pure returns (ERC1271Wallet.Mode[6] memory) {
        return [
            ERC1271Wallet.Mode.Revert,
            ERC1271Wallet.Mode.ReturnDirtyMagic,
            ERC1271Wallet.Mode.ReturnShortMagic,
            ERC1271Wallet.Mode.ReturnNothing,
            ERC1271Wallet.Mode.ReturnRightAlignedMagic,
            ERC1271Wallet.Mode.WriteState
        ];
    }

    function test_misbehavingBuyerWallet_cannotActivate() public {
        ERC1271Wallet.Mode[6] memory modes = _badModes();
        for (uint256 i = 0; i < modes.length; ++i) {
            buyerWallet.setMode(modes[i]);
            IAgreementEscrow.Agreement memory a = walletTerms(address(buyerWallet), seller);
            ReceiveAuthorization memory d = walletDeposit(a);
            ReceiveAuthorization memory f = walletFee(a);
            vm.expectRevert(abi.encodeWithSelector(LocalUSDC.InvalidSignature.selector, address(buyerWallet)));
            escrow.activateWithAuthorization(a, d, f);
        }
        assertEq(usdc.balanceOf(address(escrow)), 0, "nothing activated");
    }

    function test_misbehavingBuyerWallet_authorizesNothing() public {
        IAgreementEscrow.Agreement memory a = walletTerms(address(buyerWallet), seller);
        bytes32 id = activateWallet(a);
        uint256 dl = block.timestamp + 30 days;
        bytes memory c = sign(BUYER_OWNER_KEY, escrowDigest(escrow, closeHash(id, address(buyerWallet), dl)));
        bytes memory v = sign(BUYER_OWNER_KEY, escrowDigest(escrow, voucherHash(id, VOUCHER)));
        bytes memory w = sign(BUYER_OWNER_KEY, escrowDigest(escrow, withdrawHash(id, address(buyerWallet), dl)));
        ERC1271Wallet.Mode[6] memory modes = _badModes();

        for (uint256 i = 0; i < modes.length; ++i) {
            buyerWallet.setMode(modes[i]);
            vm.prank(relayer);
            vm.expectRevert(invalidSignature(address(buyerWallet)));
            escrow.initiateCloseWithSig(a, address(buyerWallet), dl, c);
        }
        vm.prank(seller);
        escrow.initiateClose(a);
        for (uint256 i = 0; i < modes.length; ++i) {
            buyerWallet.setMode(modes[i]);
            vm.prank(seller);
            vm.expectRevert(invalidVoucher(id, VOUCHER));
            escrow.sellerClaim(a, VOUCHER, v, seller);
        }
        vm.warp(block.timestamp + CLOSE_WINDOW);
        for (uint256 i = 0; i < modes.length; ++i) {
            buyerWallet.setMode(modes[i]);
            vm.prank(relayer);
            vm.expectRevert(invalidSignature(address(buyerWallet)));
            escrow.buyerWithdrawWithSig(a, address(buyerWallet), dl, w);
        }
        assertStatus(id, IAgreementEscrow.Status.Closing, "nothing happened");

        // Sanity: the signatures are good once the wallet behaves.
        buyerWallet.setMode(ERC1271Wallet.Mode.Approve);
        vm.prank(relayer);
        escrow.buyerWithdrawWithSig(a, address(buyerWallet), dl, w);
        assertStatus(id, IAgreementEscrow.Status.Settled, "withdrawn with the same signature");
    }

    function test_misbehavingSellerWallet_authorizesNothing() public {
        IAgreementEscrow.Agreement memory a = walletTerms(buyer, address(sellerWallet));
        bytes32 id = activateAndClose(a);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory v = voucher(BUYER_KEY, id, VOUCHER);
        bytes memory s = sign(SELLER_OWNER_KEY, escrowDigest(escrow, claimHash(id, VOUCHER, address(sellerWallet), dl)));
        ERC1271Wallet.Mode[6] memory modes = _badModes();
        for (uint256 i = 0; i < modes.length; ++i) {
            sellerWallet.setMode(modes[i]);
            vm.prank(relayer);
            vm.expectRevert(invalidSignature(address(sellerWallet)));
            escrow.sellerClaimWithSig(a, VOUCHER, v, address(sellerWallet), dl, s);
        }
        assertStatus(id, IAgreementEscrow.Status.Closing, "not claimed");
        assertEq(sellerWallet.writes(), 0, "the static call never wrote wallet state");
    }

    /// A wallet that burns all the gas it is given only fails its own authorization: the escrow keeps
    /// 1/64 of the gas and reverts with InvalidSignature rather than running out of gas.
    function test_gasBurningWallet_failsCleanly() public {
        IAgreementEscrow.Agreement memory a = walletTerms(address(buyerWallet), seller);
        bytes32 id = activateWallet(a);
        uint256 dl = block.timestamp + 1 hours;
        bytes memory c = sign(BUYER_OWNER_KEY, escrowDigest(escrow, closeHash(id, address(buyerWallet), dl)));
        buyerWallet.setMode(ERC1271Wallet.Mode.BurnGas);
        vm.prank(relayer);
        vm.expectRevert(invalidSignature(address(buyerWallet)));
        escrow.initiateCloseWithSig{gas: 3_000_000}(a, address(buyerWallet), dl, c);
        assertStatus(id, IAgreementEscrow.Status.Active, "not closed");
    }
}
