// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title TransientReentrancyGuard
/// @notice A reentrancy guard in transient storage (EIP-1153): the same slot, error and opcodes
///         as OpenZeppelin's `ReentrancyGuardTransient` (5.x), written without its
///         `using TransientSlot for *`. Slither 0.11.6 overwrites, rather than merges, the
///         `using ... for *` directives of a contract's bases (`EIP712` has one too), so with
///         OpenZeppelin's guard it could not build its IR for the escrow and analysed none of the
///         escrow's functions (see docs/slither-triage.md).
/// @dev The flag lives in transient storage: it is cleared at the end of every transaction, so a
///      transaction that reverts after entering can never leave the contract locked.
abstract contract TransientReentrancyGuard {
    /// @dev keccak256(abi.encode(uint256(keccak256("openzeppelin.storage.ReentrancyGuard")) - 1))
    ///      & ~bytes32(uint256(0xff)), as OpenZeppelin's (ERC-7201 namespace).
    bytes32 private constant REENTRANCY_GUARD_STORAGE =
        0x9b779b17422d0df92223018b32b4d1fa46e071723d6817e2486d003becc55f00;

    /// @notice A `nonReentrant` function was entered again before it returned.
    error ReentrancyGuardReentrantCall();

    /// @dev Refuses a call made while a `nonReentrant` function of this contract is executing.
    modifier nonReentrant() {
        _nonReentrantBefore();
        _;
        _nonReentrantAfter();
    }

    function _nonReentrantBefore() private {
        if (_reentrancyGuardEntered()) {
            revert ReentrancyGuardReentrantCall();
        }
        bytes32 slot = REENTRANCY_GUARD_STORAGE;
        // slither-disable-next-line assembly (TSTORE/TLOAD of the guard's one slot)
        assembly ("memory-safe") {
            tstore(slot, 1)
        }
    }

    function _nonReentrantAfter() private {
        bytes32 slot = REENTRANCY_GUARD_STORAGE;
        // slither-disable-next-line assembly (TSTORE/TLOAD of the guard's one slot)
        assembly ("memory-safe") {
            tstore(slot, 0)
        }
    }

    /// @dev Whether a `nonReentrant` function is executing.
    function _reentrancyGuardEntered() internal view returns (bool entered) {
        bytes32 slot = REENTRANCY_GUARD_STORAGE;
        // slither-disable-next-line assembly (TSTORE/TLOAD of the guard's one slot)
        assembly ("memory-safe") {
            entered := tload(slot)
        }
    }
}
