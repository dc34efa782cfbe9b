// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {IAgreementEscrow} from "../../contracts/interfaces/IAgreementEscrow.sol";
import {IInfraFeeCollector} from "../../contracts/interfaces/IInfraFeeCollector.sol";
import {
    ITokenAuthorizations,
    ReceiveAuthorization,
    PermitSignature
} from "../../contracts/interfaces/ITokenAuthorizations.sol";

/// @notice `activateWithPermit`: the EIP-2612 (or existing allowance) activation path.
contract ActivationPermitTest is EscrowFixture {
    PermitSignature internal noPermit;

    // ---------------------------------------------------------------------------------------------
    // Success
    // ---------------------------------------------------------------------------------------------

    function test_activateWithPermit_withPermitsForDepositAndFee() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = idOf(a);
        uint256 deadline = block.timestamp + 1 hours;
        uint256 nonce = usdc.nonces(buyer);
        bytes memory buyerSig = activationSignature(BUYER_KEY, a, deadline);
        PermitSignature memory deposit = _permit(BUYER_KEY, address(escrow), a.maxAmount, nonce, deadline);
        PermitSignature memory fee = _permit(BUYER_KEY, address(feeCollector), a.infraFee, nonce + 1, deadline);

        vm.expectEmit(true, true, true, true, address(escrow));
        emit IAgreementEscrow.AgreementActivated(
            id, buyer, seller, address(usdc), MAX_AMOUNT, INFRA_FEE, a.expiry, a.closeWindow, a.salt
        );
        vm.expectEmit(true, true, true, true, address(feeCollector));
        emit IInfraFeeCollector.InfraFeeCollected(id, buyer, address(usdc), INFRA_FEE);
        vm.prank(relayer);
        bytes32 returned = escrow.activateWithPermit(a, deadline, buyerSig, deposit, fee);

        assertEq(returned, id, "returned id");
        _assertActivated(id, INFRA_FEE);
        assertEq(usdc.nonces(buyer), nonce + 2, "both permits used");
    }

    function test_activateWithPermit_withExistingApprovals_andEmptyPermits() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = idOf(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory buyerSig = activationSignature(BUYER_KEY, a, deadline);
        vm.startPrank(buyer);
        usdc.approve(address(escrow), a.maxAmount);
        usdc.approve(address(feeCollector), a.infraFee);
        vm.stopPrank();
        uint256 nonce = usdc.nonces(buyer);

        vm.expectEmit(true, true, true, true, address(feeCollector));
        emit IInfraFeeCollector.InfraFeeCollected(id, buyer, address(usdc), INFRA_FEE);
        vm.prank(relayer);
        escrow.activateWithPermit(a, deadline, buyerSig, noPermit, noPermit);

        _assertActivated(id, INFRA_FEE);
        assertEq(usdc.nonces(buyer), nonce, "no permit attempted");
    }

    /// An allowance above the agreed amounts is drawn down by exactly the agreed amounts.
    function test_activateWithPermit_existingLargerApproval_onlyAgreedAmountsPulled() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = idOf(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory buyerSig = activationSignature(BUYER_KEY, a, deadline);
        vm.startPrank(buyer);
        usdc.approve(address(escrow), a.maxAmount + 7);
        usdc.approve(address(feeCollector), a.infraFee + 3);
        vm.stopPrank();

        vm.prank(relayer);
        escrow.activateWithPermit(a, deadline, buyerSig, noPermit, noPermit);

        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "exactly maxAmount escrowed");
        assertEq(usdc.balanceOf(address(feeCollector)), INFRA_FEE, "exactly infraFee collected");
        assertEq(usdc.allowance(buyer, address(escrow)), 7, "escrow allowance drawn down by maxAmount");
        assertEq(usdc.allowance(buyer, address(feeCollector)), 3, "collector allowance drawn down by infraFee");
    }

    /// Mixed: a permit for the deposit, an existing approval for the fee.
    function test_activateWithPermit_depositPermit_feeFromApproval() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = idOf(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory buyerSig = activationSignature(BUYER_KEY, a, deadline);
        vm.prank(buyer);
        usdc.approve(address(feeCollector), a.infraFee);
        PermitSignature memory deposit = _permit(BUYER_KEY, address(escrow), a.maxAmount, usdc.nonces(buyer), deadline);

        vm.prank(relayer);
        escrow.activateWithPermit(a, deadline, buyerSig, deposit, noPermit);
        _assertActivated(id, INFRA_FEE);
    }

    function test_activateWithPermit_zeroFee_ignoresFeePermit() public {
        IAgreementEscrow.Agreement memory a = terms(MAX_AMOUNT, 0);
        bytes32 id = idOf(a);
        uint256 deadline = block.timestamp + 1 hours;
        uint256 nonce = usdc.nonces(buyer);
        bytes memory buyerSig = activationSignature(BUYER_KEY, a, deadline);
        PermitSignature memory deposit = _permit(BUYER_KEY, address(escrow), a.maxAmount, nonce, deadline);
        // A (valid) fee permit passed along anyway must not be executed.
        PermitSignature memory fee = _permit(BUYER_KEY, address(feeCollector), 5e6, nonce + 1, deadline);

        vm.prank(relayer);
        escrow.activateWithPermit(a, deadline, buyerSig, deposit, fee);

        _assertActivated(id, 0);
        assertEq(usdc.allowance(buyer, address(feeCollector)), 0, "fee permit not executed");
        assertEq(usdc.nonces(buyer), nonce + 1, "only the deposit permit used");
    }

    /// Someone submits the buyer's permits to the token first (e.g. from the mempool): the escrow's own
    /// permit attempts then fail, but the allowances are in place and activation succeeds.
    function test_activateWithPermit_succeedsWhenPermitsFrontRun() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = idOf(a);
        uint256 deadline = block.timestamp + 1 hours;
        uint256 nonce = usdc.nonces(buyer);
        bytes memory buyerSig = activationSignature(BUYER_KEY, a, deadline);
        PermitSignature memory deposit = _permit(BUYER_KEY, address(escrow), a.maxAmount, nonce, deadline);
        PermitSignature memory fee = _permit(BUYER_KEY, address(feeCollector), a.infraFee, nonce + 1, deadline);

        vm.startPrank(stranger);
        _submitPermit(address(escrow), a.maxAmount, deposit);
        _submitPermit(address(feeCollector), a.infraFee, fee);
        vm.stopPrank();
        assertEq(usdc.nonces(buyer), nonce + 2, "front-runner consumed both permits");

        vm.prank(relayer);
        escrow.activateWithPermit(a, deadline, buyerSig, deposit, fee);
        _assertActivated(id, INFRA_FEE);
    }

    /// Same, with only the deposit permit front-run, through USDC's `bytes` permit variant.
    function test_activateWithPermit_succeedsWhenDepositPermitFrontRunViaBytesVariant() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = idOf(a);
        uint256 deadline = block.timestamp + 1 hours;
        uint256 nonce = usdc.nonces(buyer);
        bytes memory buyerSig = activationSignature(BUYER_KEY, a, deadline);
        PermitSignature memory deposit = _permit(BUYER_KEY, address(escrow), a.maxAmount, nonce, deadline);
        PermitSignature memory fee = _permit(BUYER_KEY, address(feeCollector), a.infraFee, nonce + 1, deadline);

        vm.prank(stranger);
        usdc.permit(buyer, address(escrow), a.maxAmount, deadline, deposit.signature);

        vm.prank(relayer);
        escrow.activateWithPermit(a, deadline, buyerSig, deposit, fee);
        _assertActivated(id, INFRA_FEE);
        assertEq(usdc.nonces(buyer), nonce + 2, "fee permit executed by the collector");
    }

    function test_activateWithPermit_validAtDeadline() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = idOf(a);
        uint256 deadline = block.timestamp + 1 hours;
        uint256 nonce = usdc.nonces(buyer);
        bytes memory buyerSig = activationSignature(BUYER_KEY, a, deadline);
        PermitSignature memory deposit = _permit(BUYER_KEY, address(escrow), a.maxAmount, nonce, deadline);
        PermitSignature memory fee = _permit(BUYER_KEY, address(feeCollector), a.infraFee, nonce + 1, deadline);
        vm.warp(deadline);
        vm.prank(relayer);
        escrow.activateWithPermit(a, deadline, buyerSig, deposit, fee);
        _assertActivated(id, INFRA_FEE);
    }

    // ---------------------------------------------------------------------------------------------
    // Allowance failures
    // ---------------------------------------------------------------------------------------------

    function test_activateWithPermit_revertsWithoutPermitOrApproval() public {
        IAgreementEscrow.Agreement memory a = terms();
        (uint256 deadline, bytes memory buyerSig) = _activationSig(a);
        vm.prank(relayer);
        vm.expectRevert(_insufficient(0, MAX_AMOUNT));
        escrow.activateWithPermit(a, deadline, buyerSig, noPermit, noPermit);
        _assertNotActivated(a);
    }

    function test_activateWithPermit_revertsWhenApprovalShort() public {
        IAgreementEscrow.Agreement memory a = terms();
        (uint256 deadline, bytes memory buyerSig) = _activationSig(a);
        vm.prank(buyer);
        usdc.approve(address(escrow), MAX_AMOUNT - 1);
        vm.prank(relayer);
        vm.expectRevert(_insufficient(MAX_AMOUNT - 1, MAX_AMOUNT));
        escrow.activateWithPermit(a, deadline, buyerSig, noPermit, noPermit);
        _assertNotActivated(a);
    }

    /// A permit that does not verify (wrong value, wrong signer, expired, wrong spender, garbage) is
    /// ignored; the allowance check then reports what is missing.
    function test_activateWithPermit_revertsWhenPermitDoesNotVerify() public {
        IAgreementEscrow.Agreement memory a = terms();
        (uint256 deadline, bytes memory buyerSig) = _activationSig(a);
        uint256 nonce = usdc.nonces(buyer);

        PermitSignature[6] memory bad = [
            _permit(BUYER_KEY, address(escrow), a.maxAmount - 1, nonce, deadline), // signed another value
            _permit(STRANGER_KEY, address(escrow), a.maxAmount, nonce, deadline), // not the buyer's key
            _permit(BUYER_KEY, address(escrow), a.maxAmount, nonce + 1, deadline), // future nonce
            _permit(BUYER_KEY, address(feeCollector), a.maxAmount, nonce, deadline), // another spender
            PermitSignature({deadline: deadline, signature: new bytes(65)}), // zero bytes, (v, r, s) form
            PermitSignature({deadline: deadline, signature: hex"c0ffee"}) // goes to the `bytes` variant
        ];
        for (uint256 i = 0; i < bad.length; ++i) {
            vm.prank(relayer);
            vm.expectRevert(_insufficient(0, MAX_AMOUNT));
            escrow.activateWithPermit(a, deadline, buyerSig, bad[i], noPermit);
        }
        _assertNotActivated(a);
        assertEq(usdc.nonces(buyer), nonce, "no permit went through");
    }

    function test_activateWithPermit_revertsWhenPermitExpired() public {
        IAgreementEscrow.Agreement memory a = terms();
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory buyerSig = activationSignature(BUYER_KEY, a, deadline);
        PermitSignature memory deposit =
            _permit(BUYER_KEY, address(escrow), a.maxAmount, usdc.nonces(buyer), block.timestamp + 10 minutes);
        vm.warp(block.timestamp + 10 minutes + 1);
        vm.prank(relayer);
        vm.expectRevert(_insufficient(0, MAX_AMOUNT));
        escrow.activateWithPermit(a, deadline, buyerSig, deposit, noPermit);
        _assertNotActivated(a);
    }

    /// The deposit is fine but the fee allowance is missing: everything rolls back.
    function test_activateWithPermit_revertsWhenFeeAllowanceMissing() public {
        IAgreementEscrow.Agreement memory a = terms();
        (uint256 deadline, bytes memory buyerSig) = _activationSig(a);
        PermitSignature memory deposit = _permit(BUYER_KEY, address(escrow), a.maxAmount, usdc.nonces(buyer), deadline);
        vm.prank(relayer);
        vm.expectRevert(_insufficient(0, INFRA_FEE));
        escrow.activateWithPermit(a, deadline, buyerSig, deposit, noPermit);
        _assertNotActivated(a);
    }

    /// A fee permit for less than the agreed fee leaves the collector's allowance short.
    function test_activateWithPermit_revertsWhenFeePermitForLess() public {
        IAgreementEscrow.Agreement memory a = terms();
        (uint256 deadline, bytes memory buyerSig) = _activationSig(a);
        vm.prank(buyer);
        usdc.approve(address(feeCollector), INFRA_FEE - 1);
        PermitSignature memory deposit = _permit(BUYER_KEY, address(escrow), a.maxAmount, usdc.nonces(buyer), deadline);
        vm.prank(relayer);
        vm.expectRevert(_insufficient(INFRA_FEE - 1, INFRA_FEE));
        escrow.activateWithPermit(a, deadline, buyerSig, deposit, noPermit);
        _assertNotActivated(a);
    }

    function test_activateWithPermit_revertsWhenBuyerCannotPay() public {
        IAgreementEscrow.Agreement memory a = terms(BUYER_FUNDS + 1, 0);
        (uint256 deadline, bytes memory buyerSig) = _activationSig(a);
        vm.prank(buyer);
        usdc.approve(address(escrow), BUYER_FUNDS + 1);
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, buyer, BUYER_FUNDS, BUYER_FUNDS + 1)
        );
        escrow.activateWithPermit(a, deadline, buyerSig, noPermit, noPermit);
        _assertNotActivated(a);
    }

    // ---------------------------------------------------------------------------------------------
    // The buyer's Activation signature
    // ---------------------------------------------------------------------------------------------

    /// An allowance alone does not let anyone activate terms the buyer did not sign.
    function test_activateWithPermit_revertsWithoutBuyerSignature() public {
        IAgreementEscrow.Agreement memory a = terms();
        uint256 deadline = block.timestamp + 1 hours;
        vm.prank(buyer);
        usdc.approve(address(escrow), type(uint256).max);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, buyer));
        escrow.activateWithPermit(a, deadline, "", noPermit, noPermit);
        _assertNotActivated(a);
    }

    function test_activateWithPermit_revertsWhenSignedByWrongKey() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = idOf(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory byStranger = activationSignature(STRANGER_KEY, a, deadline);
        bytes memory bySeller = activationSignature(SELLER_KEY, a, deadline);
        vm.prank(buyer);
        usdc.approve(address(escrow), type(uint256).max);

        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, buyer));
        escrow.activateWithPermit(a, deadline, byStranger, noPermit, noPermit);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, buyer));
        escrow.activateWithPermit(a, deadline, bySeller, noPermit, noPermit);
        _assertNotActivated(a);
    }

    /// The buyer's Activation signature for one agreement does not activate another (e.g. one with a
    /// larger amount, a different seller, or just another salt).
    function test_activateWithPermit_revertsWhenSignatureIsForAnotherAgreement() public {
        IAgreementEscrow.Agreement memory signed = terms();
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory buyerSig = activationSignature(BUYER_KEY, signed, deadline);
        vm.prank(buyer);
        usdc.approve(address(escrow), type(uint256).max);

        IAgreementEscrow.Agreement memory bigger = terms(MAX_AMOUNT * 10, 0);
        IAgreementEscrow.Agreement memory otherSeller = terms();
        otherSeller.seller = stranger;
        IAgreementEscrow.Agreement memory sameButSalt = terms();

        IAgreementEscrow.Agreement[3] memory others = [bigger, otherSeller, sameButSalt];
        for (uint256 i = 0; i < others.length; ++i) {
            vm.prank(relayer);
            vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, buyer));
            escrow.activateWithPermit(others[i], deadline, buyerSig, noPermit, noPermit);
            _assertNotActivated(others[i]);
        }
        assertEq(usdc.balanceOf(address(escrow)), 0, "nothing pulled");
    }

    function test_activateWithPermit_revertsWhenRelayerChangesDeadline() public {
        IAgreementEscrow.Agreement memory a = terms();
        (uint256 deadline, bytes memory buyerSig) = _activationSig(a);
        vm.prank(buyer);
        usdc.approve(address(escrow), type(uint256).max);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, buyer));
        escrow.activateWithPermit(a, deadline + 1 days, buyerSig, noPermit, noPermit);
        _assertNotActivated(a);
    }

    function test_activateWithPermit_revertsWhenActivationSignatureExpired() public {
        IAgreementEscrow.Agreement memory a = terms();
        (uint256 deadline, bytes memory buyerSig) = _activationSig(a);
        vm.prank(buyer);
        usdc.approve(address(escrow), type(uint256).max);
        vm.prank(buyer);
        usdc.approve(address(feeCollector), type(uint256).max);
        vm.warp(deadline + 1);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.AuthorizationExpired.selector, deadline, deadline + 1));
        escrow.activateWithPermit(a, deadline, buyerSig, noPermit, noPermit);
        _assertNotActivated(a);
    }

    function test_activateWithPermit_revertsWhenAlreadyActivated() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = idOf(a);
        (uint256 deadline, bytes memory buyerSig) = _activationSig(a);
        vm.startPrank(buyer);
        usdc.approve(address(escrow), type(uint256).max);
        usdc.approve(address(feeCollector), type(uint256).max);
        vm.stopPrank();
        vm.prank(relayer);
        escrow.activateWithPermit(a, deadline, buyerSig, noPermit, noPermit);

        // Replaying the same Activation signature (the allowance would allow a second pull) is refused.
        uint256 buyerBefore = usdc.balanceOf(buyer);
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAgreementEscrow.UnexpectedStatus.selector,
                id,
                IAgreementEscrow.Status.None,
                IAgreementEscrow.Status.Active
            )
        );
        escrow.activateWithPermit(a, deadline, buyerSig, noPermit, noPermit);
        assertEq(usdc.balanceOf(buyer), buyerBefore, "no second pull");
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "one deposit");
    }

    /// The two activation paths share one state record: terms activated by EIP-3009 cannot be
    /// activated again by permit (and are not double-funded).
    function test_activateWithPermit_revertsWhenActivatedViaAuthorization() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        (uint256 deadline, bytes memory buyerSig) = _activationSig(a);
        vm.prank(buyer);
        usdc.approve(address(escrow), type(uint256).max);
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAgreementEscrow.UnexpectedStatus.selector,
                id,
                IAgreementEscrow.Status.None,
                IAgreementEscrow.Status.Active
            )
        );
        escrow.activateWithPermit(a, deadline, buyerSig, noPermit, noPermit);
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "one deposit");
    }

    /// And conversely: terms activated by permit cannot be activated again by EIP-3009.
    function test_activateWithAuthorization_revertsWhenActivatedViaPermit() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = idOf(a);
        (uint256 deadline, bytes memory buyerSig) = _activationSig(a);
        ReceiveAuthorization memory depositAuth = depositAuthorization(a);
        ReceiveAuthorization memory feeAuth = feeAuthorization(a);
        vm.startPrank(buyer);
        usdc.approve(address(escrow), a.maxAmount);
        usdc.approve(address(feeCollector), a.infraFee);
        vm.stopPrank();
        vm.prank(relayer);
        escrow.activateWithPermit(a, deadline, buyerSig, noPermit, noPermit);

        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAgreementEscrow.UnexpectedStatus.selector,
                id,
                IAgreementEscrow.Status.None,
                IAgreementEscrow.Status.Active
            )
        );
        escrow.activateWithAuthorization(a, depositAuth, feeAuth);
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "one deposit");
    }

    // The term checks are shared with the EIP-3009 path; check that they run on this path too, and
    // before the buyer's signature.

    function test_activateWithPermit_revertsWhenAgreementExpired() public {
        IAgreementEscrow.Agreement memory a = terms();
        uint256 deadline = uint256(a.expiry) + 1 days;
        bytes memory buyerSig = activationSignature(BUYER_KEY, a, deadline);
        vm.warp(a.expiry);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.AgreementExpired.selector, a.expiry, a.expiry));
        escrow.activateWithPermit(a, deadline, buyerSig, noPermit, noPermit);
    }

    function test_activateWithPermit_revertsWhenPartySanctioned() public {
        IAgreementEscrow.Agreement memory a = terms();
        (uint256 deadline, bytes memory buyerSig) = _activationSig(a);
        vm.prank(buyer);
        usdc.approve(address(escrow), type(uint256).max);
        sanction(seller);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.SanctionedAddress.selector, seller));
        escrow.activateWithPermit(a, deadline, buyerSig, noPermit, noPermit);
        _assertNotActivated(a);
    }

    function test_activateWithPermit_revertsOnInvalidParties() public {
        IAgreementEscrow.Agreement memory a = terms();
        a.seller = buyer;
        (uint256 deadline, bytes memory buyerSig) = _activationSig(a);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidParties.selector, buyer, buyer));
        escrow.activateWithPermit(a, deadline, buyerSig, noPermit, noPermit);
    }

    // ---------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------

    /// A permit signature with an explicit nonce (the fixture's helper uses the current one).
    function _permit(uint256 key, address spender, uint256 value, uint256 nonce, uint256 deadline)
        private
        view
        returns (PermitSignature memory)
    {
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"),
                vm.addr(key),
                spender,
                value,
                nonce,
                deadline
            )
        );
        bytes32 digest =
            keccak256(abi.encodePacked("\x19\x01", domainSeparator("USD Coin", "2", address(usdc)), structHash));
        return PermitSignature({deadline: deadline, signature: sign(key, digest)});
    }

    /// Submits a 65-byte permit through the standard (v, r, s) entry point, as a front-runner would.
    function _submitPermit(address spender, uint256 value, PermitSignature memory p) private {
        bytes memory sig = p.signature;
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := mload(add(sig, 0x20))
            s := mload(add(sig, 0x40))
            v := byte(0, mload(add(sig, 0x60)))
        }
        usdc.permit(buyer, spender, value, p.deadline, v, r, s);
    }

    function _activationSig(IAgreementEscrow.Agreement memory a)
        private
        view
        returns (uint256 deadline, bytes memory sig)
    {
        deadline = block.timestamp + 1 hours;
        sig = activationSignature(BUYER_KEY, a, deadline);
    }

    function _insufficient(uint256 allowance, uint256 required) private view returns (bytes memory) {
        return abi.encodeWithSelector(
            ITokenAuthorizations.InsufficientAllowance.selector, address(usdc), buyer, allowance, required
        );
    }

    function _assertActivated(bytes32 id, uint256 fee) private view {
        IAgreementEscrow.AgreementState memory s = escrow.agreementState(id);
        assertEq(uint256(s.status), uint256(IAgreementEscrow.Status.Active), "status Active");
        assertEq(s.closeDeadline, 0, "no close deadline");
        assertEq(s.settledAmount, 0, "nothing settled");
        assertEq(usdc.balanceOf(address(escrow)), MAX_AMOUNT, "escrow holds the deposit");
        assertEq(usdc.balanceOf(address(feeCollector)), fee, "fee collected");
        assertEq(usdc.balanceOf(buyer), BUYER_FUNDS - MAX_AMOUNT - fee, "buyer paid deposit and fee");
        assertEq(usdc.allowance(buyer, address(escrow)), 0, "deposit allowance consumed");
    }

    function _assertNotActivated(IAgreementEscrow.Agreement memory a) private view {
        assertStatus(idOf(a), IAgreementEscrow.Status.None, "not activated");
        assertEq(usdc.balanceOf(address(escrow)), 0, "nothing escrowed");
        assertEq(usdc.balanceOf(address(feeCollector)), 0, "no fee collected");
        assertEq(usdc.balanceOf(buyer), BUYER_FUNDS, "buyer untouched");
    }
}
