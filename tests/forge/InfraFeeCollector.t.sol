// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {AgreementEscrow} from "../../contracts/AgreementEscrow.sol";
import {InfraFeeCollector} from "../../contracts/InfraFeeCollector.sol";
import {IAgreementEscrow} from "../../contracts/interfaces/IAgreementEscrow.sol";
import {IInfraFeeCollector} from "../../contracts/interfaces/IInfraFeeCollector.sol";
import {ReceiveAuthorization, PermitSignature} from "../../contracts/interfaces/ITokenAuthorizations.sol";
import {LocalUSDC} from "../../contracts/local/LocalUSDC.sol";

/// @notice The fee collector: deployment binding, escrow-only collection, sweeping, and an admin who
///         can only ever redirect swept fees.
contract InfraFeeCollectorTest is EscrowFixture {
    address internal newTreasury = address(0x7EA52);
    address internal newAdmin = address(0xAD2);

    // ---------------------------------------------------------------------------------------------
    // Deployment
    // ---------------------------------------------------------------------------------------------

    function test_constructor_setsFields_andEmitsTreasuryUpdated() public {
        address predicted = vm.computeCreateAddress(address(this), vm.getNonce(address(this)));
        vm.expectEmit(true, true, true, true, predicted);
        emit IInfraFeeCollector.TreasuryUpdated(address(0), treasury);
        InfraFeeCollector fc = new InfraFeeCollector(address(0xE5C), admin, treasury);

        assertEq(address(fc), predicted, "deployed at the predicted address");
        assertEq(fc.ESCROW(), address(0xE5C), "ESCROW");
        assertEq(fc.treasury(), treasury, "treasury");
        assertEq(fc.owner(), admin, "owner");
        assertEq(fc.pendingOwner(), address(0), "no pending owner");
    }

    function test_fixture_wiring() public view {
        assertEq(feeCollector.ESCROW(), address(escrow), "collector bound to the escrow");
        assertEq(escrow.FEE_COLLECTOR(), address(feeCollector), "escrow pays this collector");
        assertEq(escrow.SANCTIONS_ORACLE(), address(oracle), "oracle");
        assertEq(feeCollector.owner(), admin, "admin");
        assertEq(feeCollector.treasury(), treasury, "treasury");
    }

    function test_constructor_revertsOnZeroEscrow() public {
        vm.expectRevert(abi.encodeWithSelector(IInfraFeeCollector.ZeroAddress.selector));
        new InfraFeeCollector(address(0), admin, treasury);
    }

    function test_constructor_revertsOnZeroTreasury() public {
        vm.expectRevert(abi.encodeWithSelector(IInfraFeeCollector.ZeroAddress.selector));
        new InfraFeeCollector(address(0xE5C), admin, address(0));
    }

    function test_constructor_revertsOnZeroOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new InfraFeeCollector(address(0xE5C), address(0), treasury);
    }

    function test_escrowConstructor_revertsOnCollectorBoundElsewhere() public {
        InfraFeeCollector fc = new InfraFeeCollector(address(0xE5C), admin, treasury);
        vm.expectRevert(
            abi.encodeWithSelector(IAgreementEscrow.FeeCollectorNotBound.selector, address(fc), address(0xE5C))
        );
        new AgreementEscrow(address(oracle), address(fc));
    }

    /// A collector bound to the already deployed escrow cannot be reused by a new escrow.
    function test_escrowConstructor_revertsOnCollectorOfAnotherEscrow() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAgreementEscrow.FeeCollectorNotBound.selector, address(feeCollector), address(escrow)
            )
        );
        new AgreementEscrow(address(oracle), address(feeCollector));
    }

    function test_escrowConstructor_revertsOnCollectorWithoutCode() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAgreementEscrow.FeeCollectorNotBound.selector, address(0xFEE), address(0))
        );
        new AgreementEscrow(address(oracle), address(0xFEE));

        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.FeeCollectorNotBound.selector, address(0), address(0)));
        new AgreementEscrow(address(oracle), address(0));
    }

    /// A contract that is not a collector at all (no `ESCROW()`) makes deployment fail too.
    function test_escrowConstructor_revertsOnCollectorWithoutEscrowGetter() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAgreementEscrow.FeeCollectorNotBound.selector, address(usdc), address(0))
        );
        new AgreementEscrow(address(oracle), address(usdc));
    }

    function test_escrowConstructor_revertsOnOracleWithoutCode() public {
        address predicted = vm.computeCreateAddress(address(this), vm.getNonce(address(this)) + 1);
        InfraFeeCollector fc = new InfraFeeCollector(predicted, admin, treasury);

        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSanctionsOracle.selector, address(0x0AC1E)));
        new AgreementEscrow(address(0x0AC1E), address(fc));
    }

    function test_escrowConstructor_revertsOnZeroOracle() public {
        address predicted = vm.computeCreateAddress(address(this), vm.getNonce(address(this)) + 1);
        InfraFeeCollector fc = new InfraFeeCollector(predicted, admin, treasury);

        vm.expectRevert(abi.encodeWithSelector(IAgreementEscrow.InvalidSanctionsOracle.selector, address(0)));
        new AgreementEscrow(address(0), address(fc));
    }

    // ---------------------------------------------------------------------------------------------
    // Collection is escrow-only
    // ---------------------------------------------------------------------------------------------

    /// Even holding the buyer's genuine fee authorization, nobody but the escrow can collect it:
    /// not a stranger, not the admin, not the buyer.
    function test_collectWithAuthorization_onlyEscrow() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = idOf(a);
        ReceiveAuthorization memory fee = feeAuthorization(a);
        bytes32 nonce = feeNonce(id, a.infraFee);

        address[4] memory callers = [stranger, admin, buyer, relayer];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.prank(callers[i]);
            vm.expectRevert(abi.encodeWithSelector(IInfraFeeCollector.OnlyEscrow.selector, callers[i]));
            feeCollector.collectWithAuthorization(id, buyer, address(usdc), a.infraFee, fee);
        }
        assertFalse(usdc.authorizationState(buyer, nonce), "fee nonce not burnt");
        assertEq(usdc.balanceOf(address(feeCollector)), 0, "nothing collected");
        assertEq(usdc.balanceOf(buyer), BUYER_FUNDS, "buyer untouched");
    }

    /// A standing allowance of the buyer to the collector cannot be drawn on by anyone but the escrow.
    function test_collectWithPermit_onlyEscrow() public {
        vm.prank(buyer);
        usdc.approve(address(feeCollector), type(uint256).max);
        PermitSignature memory none;
        bytes32 id = idOf(terms());

        address[4] memory callers = [stranger, admin, buyer, relayer];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.prank(callers[i]);
            vm.expectRevert(abi.encodeWithSelector(IInfraFeeCollector.OnlyEscrow.selector, callers[i]));
            feeCollector.collectWithPermit(id, buyer, address(usdc), 500e6, none);
        }
        assertEq(usdc.allowance(buyer, address(feeCollector)), type(uint256).max, "allowance untouched");
        assertEq(usdc.balanceOf(buyer), BUYER_FUNDS, "buyer untouched");
    }

    // ---------------------------------------------------------------------------------------------
    // Fee nonce
    // ---------------------------------------------------------------------------------------------

    function test_feeAuthorizationNonce_isTheEip712Digest() public {
        assertEq(
            feeCollector.INFRA_FEE_TYPEHASH(), keccak256("InfraFee(bytes32 agreementId,uint256 amount)"), "typehash"
        );
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = idOf(a);
        assertEq(feeCollector.feeAuthorizationNonce(id, INFRA_FEE), feeNonce(id, INFRA_FEE), "digest");
        assertEq(feeCollector.feeAuthorizationNonce(bytes32(0), 0), feeNonce(bytes32(0), 0), "digest of zeros");

        // It commits to both the agreement and the amount, and is not the deposit nonce (the id).
        assertNotEq(feeCollector.feeAuthorizationNonce(id, INFRA_FEE), feeNonce(id, INFRA_FEE + 1), "amount bound");
        assertNotEq(feeCollector.feeAuthorizationNonce(id, INFRA_FEE), feeNonce(idOf(terms()), INFRA_FEE), "id bound");
        assertNotEq(feeCollector.feeAuthorizationNonce(id, INFRA_FEE), id, "distinct from the deposit nonce");
    }

    /// The nonce is under the collector's own domain: another collector derives a different one.
    function test_feeAuthorizationNonce_dependsOnCollectorDomain() public {
        InfraFeeCollector other = new InfraFeeCollector(address(0xE5C), admin, treasury);
        bytes32 id = idOf(terms());
        assertNotEq(
            other.feeAuthorizationNonce(id, INFRA_FEE),
            feeCollector.feeAuthorizationNonce(id, INFRA_FEE),
            "domain-separated"
        );
        vm.chainId(8453);
        assertEq(feeCollector.feeAuthorizationNonce(id, INFRA_FEE), feeNonce(id, INFRA_FEE), "follows chain id");
    }

    // ---------------------------------------------------------------------------------------------
    // Sweep
    // ---------------------------------------------------------------------------------------------

    function test_sweep_movesEverythingToTreasury_callableByAnyone() public {
        activate(terms());
        activate(terms(MAX_AMOUNT, 3e6));
        // A stray transfer to the collector is swept as well.
        vm.prank(buyer);
        usdc.transfer(address(feeCollector), 5);
        uint256 expected = INFRA_FEE + 3e6 + 5;
        uint256 escrowBefore = usdc.balanceOf(address(escrow));

        vm.expectEmit(true, true, true, true, address(feeCollector));
        emit IInfraFeeCollector.FeesSwept(address(usdc), treasury, expected);
        vm.prank(stranger);
        uint256 swept = feeCollector.sweep(address(usdc));

        assertEq(swept, expected, "returned amount");
        assertEq(usdc.balanceOf(treasury), expected, "treasury received everything");
        assertEq(usdc.balanceOf(address(feeCollector)), 0, "collector emptied");
        assertEq(usdc.balanceOf(stranger), 0, "caller gets nothing");
        assertEq(usdc.balanceOf(address(escrow)), escrowBefore, "escrow untouched");
    }

    function test_sweep_revertsWhenNothingToSweep() public {
        vm.expectRevert(abi.encodeWithSelector(IInfraFeeCollector.NothingToSweep.selector, address(usdc)));
        feeCollector.sweep(address(usdc));

        activate(terms());
        feeCollector.sweep(address(usdc));
        vm.expectRevert(abi.encodeWithSelector(IInfraFeeCollector.NothingToSweep.selector, address(usdc)));
        feeCollector.sweep(address(usdc));

        LocalUSDC otherToken = new LocalUSDC(address(this));
        vm.expectRevert(abi.encodeWithSelector(IInfraFeeCollector.NothingToSweep.selector, address(otherToken)));
        feeCollector.sweep(address(otherToken));
    }

    /// A blocklisted treasury blocks sweeping; the admin's only recourse is a new treasury.
    function test_sweep_toBlocklistedTreasury_reverts_untilTreasuryChanged() public {
        activate(terms());
        usdc.blocklist(treasury);
        vm.expectRevert(abi.encodeWithSelector(LocalUSDC.AccountBlocklisted.selector, treasury));
        feeCollector.sweep(address(usdc));
        assertEq(usdc.balanceOf(address(feeCollector)), INFRA_FEE, "fees kept");

        vm.prank(admin);
        feeCollector.setTreasury(newTreasury);
        feeCollector.sweep(address(usdc));
        assertEq(usdc.balanceOf(newTreasury), INFRA_FEE, "swept to the new treasury");
    }

    // ---------------------------------------------------------------------------------------------
    // Treasury administration
    // ---------------------------------------------------------------------------------------------

    function test_setTreasury_byOwner() public {
        vm.expectEmit(true, true, true, true, address(feeCollector));
        emit IInfraFeeCollector.TreasuryUpdated(treasury, newTreasury);
        vm.prank(admin);
        feeCollector.setTreasury(newTreasury);
        assertEq(feeCollector.treasury(), newTreasury, "treasury updated");

        activate(terms());
        feeCollector.sweep(address(usdc));
        assertEq(usdc.balanceOf(newTreasury), INFRA_FEE, "sweeps go to the new treasury");
        assertEq(usdc.balanceOf(treasury), 0, "old treasury gets nothing");
    }

    function test_setTreasury_revertsForNonOwner() public {
        address[5] memory callers = [stranger, buyer, seller, address(escrow), treasury];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.prank(callers[i]);
            vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, callers[i]));
            feeCollector.setTreasury(newTreasury);
        }
        assertEq(feeCollector.treasury(), treasury, "unchanged");
    }

    function test_setTreasury_revertsOnZero() public {
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(IInfraFeeCollector.ZeroAddress.selector));
        feeCollector.setTreasury(address(0));
        assertEq(feeCollector.treasury(), treasury, "unchanged");
    }

    // ---------------------------------------------------------------------------------------------
    // Two-step ownership
    // ---------------------------------------------------------------------------------------------

    function test_ownership_twoStepTransfer() public {
        vm.expectEmit(true, true, true, true, address(feeCollector));
        emit Ownable2Step.OwnershipTransferStarted(admin, newAdmin);
        vm.prank(admin);
        feeCollector.transferOwnership(newAdmin);
        assertEq(feeCollector.owner(), admin, "owner unchanged until accepted");
        assertEq(feeCollector.pendingOwner(), newAdmin, "pending owner");

        // The pending owner has no power yet.
        vm.prank(newAdmin);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, newAdmin));
        feeCollector.setTreasury(newTreasury);

        // Nobody else can accept.
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        feeCollector.acceptOwnership();
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, admin));
        feeCollector.acceptOwnership();

        vm.expectEmit(true, true, true, true, address(feeCollector));
        emit Ownable.OwnershipTransferred(admin, newAdmin);
        vm.prank(newAdmin);
        feeCollector.acceptOwnership();
        assertEq(feeCollector.owner(), newAdmin, "new owner");
        assertEq(feeCollector.pendingOwner(), address(0), "pending cleared");

        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, admin));
        feeCollector.setTreasury(newTreasury);

        vm.prank(newAdmin);
        feeCollector.setTreasury(newTreasury);
        assertEq(feeCollector.treasury(), newTreasury, "new owner administers");
    }

    function test_ownership_transferRevertsForNonOwner() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        feeCollector.transferOwnership(stranger);
        assertEq(feeCollector.pendingOwner(), address(0), "no pending owner");
    }

    function test_ownership_pendingOwnerCanBeReplaced() public {
        vm.startPrank(admin);
        feeCollector.transferOwnership(stranger);
        feeCollector.transferOwnership(newAdmin);
        vm.stopPrank();

        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        feeCollector.acceptOwnership();

        vm.prank(newAdmin);
        feeCollector.acceptOwnership();
        assertEq(feeCollector.owner(), newAdmin, "the latest nominee");
    }

    /// After renouncing, the treasury is frozen but fees still reach it (sweep is permissionless).
    function test_ownership_renounce_freezesTreasury_sweepStillWorks() public {
        vm.prank(admin);
        feeCollector.renounceOwnership();
        assertEq(feeCollector.owner(), address(0), "no owner");

        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, admin));
        feeCollector.setTreasury(newTreasury);

        activate(terms());
        feeCollector.sweep(address(usdc));
        assertEq(usdc.balanceOf(treasury), INFRA_FEE, "swept to the frozen treasury");
    }

    // ---------------------------------------------------------------------------------------------
    // The admin cannot reach escrowed funds
    // ---------------------------------------------------------------------------------------------

    /// Agreements in every funded status; then every admin capability is exercised, and after each
    /// step the escrow's balance and every agreement's state are checked unchanged.
    function test_admin_hasNoWayToTouchEscrowedFunds() public {
        IAgreementEscrow.Agreement memory active = terms();
        IAgreementEscrow.Agreement memory closing = terms();
        IAgreementEscrow.Agreement memory claimed = terms();
        bytes32[3] memory ids = [activate(active), activateAndClose(closing), activateAndClose(claimed)];
        bytes memory v = voucher(BUYER_KEY, ids[2], 30e6);
        vm.prank(seller);
        escrow.sellerClaim(claimed, 30e6, v, seller);

        uint256 escrowBalance = usdc.balanceOf(address(escrow));
        assertEq(escrowBalance, 3 * MAX_AMOUNT - 30e6, "precondition");
        IAgreementEscrow.AgreementState[3] memory states;
        for (uint256 i = 0; i < 3; ++i) {
            states[i] = escrow.agreementState(ids[i]);
        }

        // A buyer's standing allowance to the collector, the most an admin could hope to exploit.
        vm.prank(buyer);
        usdc.approve(address(feeCollector), type(uint256).max);
        PermitSignature memory none;
        ReceiveAuthorization memory noAuth;

        vm.startPrank(admin);
        feeCollector.setTreasury(admin);
        _assertEscrowUntouched(escrowBalance, ids, states);

        feeCollector.sweep(address(usdc));
        _assertEscrowUntouched(escrowBalance, ids, states);
        vm.expectRevert(abi.encodeWithSelector(IInfraFeeCollector.NothingToSweep.selector, address(usdc)));
        feeCollector.sweep(address(usdc));
        _assertEscrowUntouched(escrowBalance, ids, states);

        vm.expectRevert(abi.encodeWithSelector(IInfraFeeCollector.OnlyEscrow.selector, admin));
        feeCollector.collectWithPermit(ids[0], buyer, address(usdc), MAX_AMOUNT, none);
        vm.expectRevert(abi.encodeWithSelector(IInfraFeeCollector.OnlyEscrow.selector, admin));
        feeCollector.collectWithAuthorization(ids[0], address(escrow), address(usdc), MAX_AMOUNT, noAuth);
        _assertEscrowUntouched(escrowBalance, ids, states);

        feeCollector.transferOwnership(newAdmin);
        _assertEscrowUntouched(escrowBalance, ids, states);
        vm.stopPrank();

        vm.startPrank(newAdmin);
        feeCollector.acceptOwnership();
        _assertEscrowUntouched(escrowBalance, ids, states);
        feeCollector.setTreasury(newTreasury);
        _assertEscrowUntouched(escrowBalance, ids, states);
        feeCollector.renounceOwnership();
        _assertEscrowUntouched(escrowBalance, ids, states);
        vm.stopPrank();

        // The escrow has no admin surface at all: its funds move only through the parties' calls.
        assertEq(usdc.allowance(address(escrow), address(feeCollector)), 0, "escrow grants no allowance");
        assertEq(usdc.allowance(address(escrow), admin), 0, "escrow grants no allowance to the admin");
        assertEq(usdc.balanceOf(admin), INFRA_FEE * 3, "admin-as-treasury got the fees only");
    }

    // ---------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------

    function _assertEscrowUntouched(
        uint256 escrowBalance,
        bytes32[3] memory ids,
        IAgreementEscrow.AgreementState[3] memory states
    ) private view {
        assertEq(usdc.balanceOf(address(escrow)), escrowBalance, "escrow balance unchanged");
        for (uint256 i = 0; i < ids.length; ++i) {
            IAgreementEscrow.AgreementState memory s = escrow.agreementState(ids[i]);
            assertEq(uint256(s.status), uint256(states[i].status), "status unchanged");
            assertEq(s.closeDeadline, states[i].closeDeadline, "closeDeadline unchanged");
            assertEq(s.settledAmount, states[i].settledAmount, "settledAmount unchanged");
        }
    }
}
