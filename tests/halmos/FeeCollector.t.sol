// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {InfraFeeCollector} from "../../contracts/InfraFeeCollector.sol";
import {LocalUSDC} from "../../contracts/local/LocalUSDC.sol";

/// @dev halmos's symbolic-value cheatcodes (its SVM address).
interface SVM {
    function createCalldata(string memory contractName) external pure returns (bytes memory);
    function createAddress(string memory name) external pure returns (address);
    function createUint256(string memory name) external pure returns (uint256);
}

/// @dev The forge cheatcodes halmos supports that these checks use.
interface Vm {
    function prank(address sender) external;
    function assume(bool condition) external pure;
}

/// @title The fee collector's owner cannot move anyone's funds but to the treasury
/// @notice For every caller (its owner included) and every call to the collector, symbolic in its
///         function and arguments: the escrow's balance does not change, the collector's balance
///         never goes anywhere but to the treasury it had, and the collector gains only when the
///         escrow itself collects a fee. halmos proves it for all callers, all calldata and all
///         balances below 2^128.
contract FeeCollectorSymbolic {
    SVM private constant svm = SVM(0xF3993A62377BCd56AE39D773740A5390411E8BC9);
    Vm private constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);

    address private constant ESCROW = address(0xE5C0);
    address private constant OWNER = address(0x0A0E);
    address private constant TREASURY = address(0x7EA5);

    LocalUSDC private token;
    InfraFeeCollector private collector;

    function setUp() public {
        token = new LocalUSDC(address(this));
        collector = new InfraFeeCollector(ESCROW, OWNER, TREASURY);
        token.mint(address(collector), svm.createUint256("fees") % (1 << 128));
        token.mint(ESCROW, svm.createUint256("escrowed") % (1 << 128));
    }

    function check_noCallMovesFeesButToTheTreasury() public {
        address caller = svm.createAddress("caller");
        vm.assume(caller != ESCROW);
        bytes memory data = svm.createCalldata("InfraFeeCollector");

        uint256 held = token.balanceOf(address(collector));
        uint256 escrowed = token.balanceOf(ESCROW);
        address treasury = collector.treasury();
        uint256 treasuryHeld = token.balanceOf(treasury);

        vm.prank(caller);
        (bool ok,) = address(collector).call(data);
        ok; // a refused call must leave everything as it was, and so must an accepted one but a sweep

        uint256 left = token.balanceOf(address(collector));
        assert(token.balanceOf(ESCROW) == escrowed);
        assert(left <= held);
        if (left < held) {
            // Everything that left went to the treasury as it was before the call.
            assert(token.balanceOf(treasury) == treasuryHeld + (held - left));
        }
    }
}
