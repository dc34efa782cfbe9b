// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice A sanctions oracle (Chainalysis `isSanctioned` interface) that can misbehave: revert for
///         everyone or for one address, return no data, return a non-boolean word, or try to write
///         state (which must fail under the escrow's static call).
contract MockSanctionsOracle {
    enum Mode {
        Normal,
        RevertAll,
        RevertForTarget,
        ReturnNothing,
        ReturnNonBoolean,
        WriteState
    }

    Mode public mode;
    address public target;
    mapping(address => bool) public listed;
    uint256 public lookups;

    error OracleUnavailable();

    function setMode(Mode newMode, address newTarget) external {
        mode = newMode;
        target = newTarget;
    }

    function setListed(address account, bool value) external {
        listed[account] = value;
    }

    /// @dev Not declared `view` so that WriteState can try; the escrow calls it through a
    ///      `view` interface, i.e. with STATICCALL.
    function isSanctioned(address addr) external returns (bool) {
        Mode m = mode;
        if (m == Mode.RevertAll) revert OracleUnavailable();
        if (m == Mode.RevertForTarget && addr == target) revert OracleUnavailable();
        if (m == Mode.ReturnNothing) {
            assembly {
                return(0, 0)
            }
        }
        if (m == Mode.ReturnNonBoolean) {
            assembly {
                mstore(0, 2)
                return(0, 0x20)
            }
        }
        if (m == Mode.WriteState) ++lookups;
        return listed[addr];
    }
}
