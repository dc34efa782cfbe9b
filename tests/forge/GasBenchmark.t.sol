// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {Vm} from "./utils/Vm.sol";
import {IAgreementEscrow} from "../../contracts/interfaces/IAgreementEscrow.sol";
import {ReceiveAuthorization, PermitSignature} from "../../contracts/interfaces/ITokenAuthorizations.sol";

/// @notice Gas benchmark (not a behaviour test). Run in isolation (`forge test --isolate`), so every
///         measured call is its own transaction with cold storage and accounts, in the steady state
///         (the escrow, the fee collector and the seller already hold tokens).
///
///         Two figures per operation go to snapshots/escrow.json, which is committed and compared
///         by the test command (`--gas-snapshot-check`):
///         - `<op>`: execution gas = transaction gas - 21,000 - calldata gas (EIP-2028). This is
///           how the README's anchors and targets are stated; the targets are asserted here.
///         - `<op> (tx)`: the whole transaction's gas, what the submitter pays.
contract GasBenchmark is EscrowFixture {
    string internal constant GROUP = "escrow";
    uint256 internal constant VOUCHER = 40e6;

    function setUp() public override {
        super.setUp();
        // Steady state: the escrow and the fee collector already hold funds of other agreements.
        activate(terms());
    }

    function test_gas_activation() public {
        IAgreementEscrow.Agreement memory a = terms(MAX_AMOUNT, 0);
        uint256 plain = _measure(
            "activateWithAuthorization",
            abi.encodeCall(escrow.activateWithAuthorization, (a, depositAuthorization(a), feeAuthorization(a)))
        );
        a = terms();
        uint256 withFee = _measure(
            "activateWithAuthorization + infra fee",
            abi.encodeCall(escrow.activateWithAuthorization, (a, depositAuthorization(a), feeAuthorization(a)))
        );
        assertLe(plain, 125_000, "target: EIP-3009 activation with both sanctions checks");
        assertLe(withFee - plain, 45_000, "target: fee collection on top of activation");
    }

    function test_gas_activationWithPermit() public {
        IAgreementEscrow.Agreement memory a = terms(MAX_AMOUNT, 0);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = activationSignature(BUYER_KEY, a, deadline);
        PermitSignature memory deposit = permitSignature(BUYER_KEY, address(escrow), a.maxAmount, deadline);
        PermitSignature memory noFee;
        _measure("activateWithPermit", abi.encodeCall(escrow.activateWithPermit, (a, deadline, sig, deposit, noFee)));
    }

    function test_gas_initiateClose() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activate(a);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(BUYER_KEY, closeDigest(id, buyer, deadline));

        uint256 snapshot = vm.snapshotState();
        uint256 direct = _measureAs(buyer, "initiateClose", abi.encodeCall(escrow.initiateClose, (a)));
        vm.revertToState(snapshot);
        uint256 relayed =
            _measure("initiateCloseWithSig", abi.encodeCall(escrow.initiateCloseWithSig, (a, buyer, deadline, sig)));
        assertLe(direct, 30_000, "target: initiate-close");
        assertLe(relayed - direct, 10_000, "target: initiateCloseWithSig over initiateClose");
    }

    function test_gas_sellerClaim() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, VOUCHER);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(SELLER_KEY, claimDigest(id, VOUCHER, seller, deadline));

        uint256 snapshot = vm.snapshotState();
        uint256 direct = _measureAs(seller, "sellerClaim", abi.encodeCall(escrow.sellerClaim, (a, VOUCHER, v, seller)));
        vm.revertToState(snapshot);
        uint256 relayed = _measure(
            "sellerClaimWithSig", abi.encodeCall(escrow.sellerClaimWithSig, (a, VOUCHER, v, seller, deadline, sig))
        );
        assertLe(direct, 45_000, "target: seller claim");
        assertLe(relayed - direct, 10_000, "target: sellerClaimWithSig over sellerClaim");
    }

    function test_gas_buyerWithdraw() public {
        IAgreementEscrow.Agreement memory a = terms();
        bytes32 id = activateAndClose(a);
        bytes memory v = voucher(BUYER_KEY, id, VOUCHER);
        vm.prank(seller);
        escrow.sellerClaim(a, VOUCHER, v, seller);
        uint256 deadline = block.timestamp + 1 hours;
        bytes memory sig = sign(BUYER_KEY, withdrawDigest(id, buyer, deadline));

        uint256 snapshot = vm.snapshotState();
        uint256 direct = _measureAs(buyer, "buyerWithdraw", abi.encodeCall(escrow.buyerWithdraw, (a, buyer)));
        vm.revertToState(snapshot);
        uint256 relayed =
            _measure("buyerWithdrawWithSig", abi.encodeCall(escrow.buyerWithdrawWithSig, (a, buyer, deadline, sig)));
        assertLe(direct, 45_000, "target: buyer withdraw");
        assertLe(relayed - direct, 10_000, "target: buyerWithdrawWithSig over buyerWithdraw");
        assertStatus(id, IAgreementEscrow.Status.Settled, "settled");
    }

    function _measure(string memory name, bytes memory callData) private returns (uint256) {
        return _measureAs(relayer, name, callData);
    }

    /// @dev Calls the escrow as `caller` and records execution and transaction gas under `name`.
    function _measureAs(address caller, string memory name, bytes memory callData) private returns (uint256 execution) {
        vm.prank(caller);
        (bool ok, bytes memory ret) = address(escrow).call(callData);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        Vm.Gas memory gas = vm.lastCallGas();
        uint256 intrinsic = 21_000 + _calldataGas(callData);
        assertGt(gas.gasTotalUsed, intrinsic, "run the gas benchmark with --isolate");
        execution = gas.gasTotalUsed - intrinsic;
        vm.snapshotValue(GROUP, name, execution);
        vm.snapshotValue(GROUP, string.concat(name, " (tx)"), gas.gasTotalUsed);
    }

    function _calldataGas(bytes memory data) private pure returns (uint256 gas) {
        for (uint256 i = 0; i < data.length; ++i) {
            gas += data[i] == 0 ? 4 : 16;
        }
    }
}
