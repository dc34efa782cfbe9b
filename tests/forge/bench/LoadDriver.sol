// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IAgreementEscrow} from "../../../contracts/interfaces/IAgreementEscrow.sol";
import {PermitSignature} from "../../../contracts/interfaces/ITokenAuthorizations.sol";

/// @notice Load generator for the indexer benchmark (crates/bench): drives many complete
///         agreement lifecycles through the real escrow in one transaction, so that a benchmark
///         can produce 100,000+ genuine escrow events quickly. The driver is the buyer: an ERC-1271
///         wallet that approves its own activation and vouchers, funded by allowance (the permit
///         path with no permit). Its `LoadSeller` claims. Never deployed outside development chains.
contract LoadDriver {
    bytes4 private constant ERC1271_MAGIC = 0x1626ba7e;

    IAgreementEscrow public immutable ESCROW;
    IERC20 public immutable TOKEN;
    LoadSeller public immutable SELLER;

    constructor(IAgreementEscrow escrow, IERC20 token, address feeCollector) {
        ESCROW = escrow;
        TOKEN = token;
        SELLER = new LoadSeller(escrow);
        token.approve(address(escrow), type(uint256).max);
        token.approve(feeCollector, type(uint256).max);
    }

    /// @notice Approves any activation and voucher this contract is asked about (it is the buyer).
    function isValidSignature(bytes32, bytes calldata) external pure returns (bytes4) {
        return ERC1271_MAGIC;
    }

    /// @notice Activates `count` agreements (salts `firstSalt...`); settles every one whose index is
    ///         below `settle` (close, seller claim of `used`, buyer withdraw): 6 escrow events each,
    ///         2 for the others.
    function run(uint256 count, uint256 firstSalt, uint256 settle, uint256 used) external {
        PermitSignature memory none;
        for (uint256 i = 0; i < count; ++i) {
            IAgreementEscrow.Agreement memory a = IAgreementEscrow.Agreement({
                buyer: address(this),
                seller: address(SELLER),
                token: address(TOKEN),
                maxAmount: 10e6,
                infraFee: 1e5,
                expiry: uint64(block.timestamp + 1 days),
                closeWindow: 1 hours,
                salt: bytes32(firstSalt + i)
            });
            ESCROW.activateWithPermit(a, block.timestamp, "", none, none);
            if (i < settle) {
                ESCROW.initiateClose(a);
                SELLER.claim(a, used);
                ESCROW.buyerWithdraw(a, address(this));
            }
        }
    }
}

/// @notice The seller side of {LoadDriver}.
contract LoadSeller {
    IAgreementEscrow private immutable ESCROW;

    constructor(IAgreementEscrow escrow) {
        ESCROW = escrow;
    }

    function claim(IAgreementEscrow.Agreement calldata a, uint256 amount) external {
        ESCROW.sellerClaim(a, amount, "", address(this));
    }
}
