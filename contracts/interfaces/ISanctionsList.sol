// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title ISanctionsList
/// @notice The read interface of the Chainalysis sanctions oracle
///         (deployed at 0x40C57923924B5c5c5455c48D93317139ADDaC8fb on Base and Ethereum mainnet).
/// @dev The escrow only ever calls `isSanctioned`, as a static call. A reverting oracle makes the
///      screened operation revert (fail closed).
interface ISanctionsList {
    /// @notice Whether `addr` is on the sanctions list right now.
    function isSanctioned(address addr) external view returns (bool);
}
