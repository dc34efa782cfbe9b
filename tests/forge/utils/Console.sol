// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @notice The one `console.log` overload these tests use (forge prints it with -vv), since forge-std
///         is not available. Same wire format as forge-std's / Hardhat's console.
library Console {
    address internal constant CONSOLE = 0x000000000000000000636F6e736F6c652e6c6f67;

    function log(string memory label, uint256 value) internal view {
        (bool ok,) = CONSOLE.staticcall(abi.encodeWithSignature("log(string,uint256)", label, value));
        ok;
    }
}
