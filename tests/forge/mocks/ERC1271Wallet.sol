// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @notice A minimal smart-contract wallet for ERC-1271 tests. In `Approve` mode it validates an
///         ECDSA signature of its owner over the hash (the first 65 bytes of the signature, trailing
///         bytes being wallet metadata), or (empty signature) a hash the owner
///         pre-approved on chain, as Safe's `approveHash` does. The other modes misbehave in the ways
///         a verifier must survive: refusing, reverting, returning malformed data, writing state under
///         a static call, or burning all the gas it is given.
contract ERC1271Wallet {
    bytes4 internal constant MAGIC = 0x1626ba7e;

    enum Mode {
        Approve,
        Refuse,
        Revert,
        ReturnDirtyMagic,
        ReturnShortMagic,
        ReturnNothing,
        ReturnRightAlignedMagic,
        WriteState,
        BurnGas
    }

    address public immutable owner;
    Mode public mode;
    mapping(bytes32 hash => bool) public approvedHashes;
    uint256 public writes;

    error WalletRefuses();
    error NotOwner();

    constructor(address owner_) {
        owner = owner_;
    }

    function setMode(Mode newMode) external {
        mode = newMode;
    }

    function approveHash(bytes32 hash) external {
        if (msg.sender != owner) revert NotOwner();
        approvedHashes[hash] = true;
    }

    /// @dev Deliberately not `view`: callers must use a static call (WriteState mode checks that).
    function isValidSignature(bytes32 hash, bytes calldata signature) external returns (bytes4) {
        Mode m = mode;
        if (m == Mode.Approve) {
            if (signature.length == 0) return approvedHashes[hash] ? MAGIC : bytes4(0xffffffff);
            if (signature.length < 65) return bytes4(0xffffffff);
            // The owner's signature is the first 65 bytes; anything after it is wallet metadata.
            (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature[:65]);
            return err == ECDSA.RecoverError.NoError && recovered == owner ? MAGIC : bytes4(0xffffffff);
        }
        if (m == Mode.Refuse) return bytes4(0xffffffff);
        if (m == Mode.Revert) revert WalletRefuses();
        if (m == Mode.ReturnDirtyMagic) {
            assembly {
                mstore(0x00, or(shl(224, 0x1626ba7e), 1)) // magic in the high bytes, a stray low bit
                return(0x00, 0x20)
            }
        }
        if (m == Mode.ReturnShortMagic) {
            assembly {
                mstore(0x00, shl(224, 0x1626ba7e))
                return(0x00, 0x04) // only 4 bytes of return data
            }
        }
        if (m == Mode.ReturnNothing) {
            assembly {
                return(0x00, 0x00)
            }
        }
        if (m == Mode.ReturnRightAlignedMagic) {
            assembly {
                mstore(0x00, 0x1626ba7e) // magic as a number, not as bytes4
                return(0x00, 0x20)
            }
        }
        if (m == Mode.WriteState) {
            ++writes; // reverts under STATICCALL
            return MAGIC;
        }
        // BurnGas
        uint256 x;
        while (true) {
            x = uint256(keccak256(abi.encode(x)));
        }
        return MAGIC;
    }
}
