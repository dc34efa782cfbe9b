// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ReceiveAuthorization, PermitSignature, ITokenAuthorizations} from "./ITokenAuthorizations.sol";

/// @title IAgreementEscrow
/// @notice A bilateral escrow for usage agreements between a buyer and a seller.
///
///         One immutable contract holds every agreement. An agreement is never stored as such: its
///         terms are passed with every call and hashed (EIP-712, under this contract's domain) into the
///         agreement id, so the id commits to every term, the chain id and this contract. Only a
///         one-slot state record is stored per id.
///
///         Lifecycle (see docs/design.md for the full state machine):
///         1. activation: the buyer's signed token authorization moves `maxAmount` into escrow (and
///            `infraFee` into the fee collector, in the same transaction);
///         2. usage: off-chain, the buyer signs cumulative `Voucher`s; the seller keeps the highest;
///         3. close: either party starts the close window;
///         4. seller claim: during the window the seller presents its highest voucher. That records its
///            entitlement for good, then pays it if the payout is clear (sanctions, token); a payout
///            that cannot go through now is deferred, not lost, and the seller retries it later;
///         5. buyer withdraw: once the seller has claimed, or the window is over, the buyer gets the rest
///            (`maxAmount` minus the seller's recorded entitlement, never more).
///
///         Every settlement step exists twice: a direct call from the party's wallet, and a
///         `...WithSig` twin that anyone (a gas-sponsoring relayer) may submit with the party's
///         EIP-712 authorization, verified here for EOAs (ECDSA) and smart wallets (ERC-1271).
///         Funds only ever go to the party, or to a recipient the party itself chose (direct call) or
///         signed for (`...WithSig`). There is no owner and no administrative function.
interface IAgreementEscrow is ITokenAuthorizations {
    /// @notice The terms of an agreement. Its EIP-712 hash is the agreement id.
    struct Agreement {
        /// @notice Pays into the escrow and signs the usage vouchers.
        address buyer;
        /// @notice Is paid from the escrow against the buyer's vouchers.
        address seller;
        /// @notice The ERC-20 the agreement is denominated in (EIP-3009 and/or EIP-2612 capable).
        address token;
        /// @notice The amount escrowed at activation and the most the seller can ever be paid.
        uint256 maxAmount;
        /// @notice The platform fee the buyer pays to the fee collector at activation; zero means waived.
        uint256 infraFee;
        /// @notice Unix time at and after which the agreement can no longer be activated (end of the
        ///         service term). It does not close an active agreement; either party does that.
        uint64 expiry;
        /// @notice Seconds the seller has, after a close is initiated, to present its highest voucher.
        uint32 closeWindow;
        /// @notice Ties the on-chain agreement to the off-chain agreement id; makes ids unique.
        bytes32 salt;
    }

    /// @notice The lifecycle of an agreement. Transitions only ever move forward:
    ///         None -> Active -> Closing -> (SellerClaimed ->) Settled.
    enum Status {
        /// @notice Never activated (or unknown terms).
        None,
        /// @notice Funded; usage vouchers accrue off-chain.
        Active,
        /// @notice A party initiated close; the seller may claim until `closeDeadline`.
        Closing,
        /// @notice The seller's entitlement is recorded (`settledAmount`); its payout or the buyer's
        ///         remainder, or both, are still in escrow (see `sellerPaid`, `buyerWithdrawn`).
        SellerClaimed,
        /// @notice Nothing of this agreement remains in escrow.
        Settled
    }

    /// @notice The only per-agreement storage: one slot (192 bits).
    struct AgreementState {
        /// @notice Where the agreement is in its lifecycle.
        Status status;
        /// @notice End of the close window (zero until a close is initiated).
        uint40 closeDeadline;
        /// @notice The seller's entitlement: the voucher amount it claimed (zero until it claims).
        uint128 settledAmount;
        /// @notice The seller's entitlement has been paid out.
        bool sellerPaid;
        /// @notice The buyer's remainder (`maxAmount - settledAmount`) has been paid out, or was zero.
        bool buyerWithdrawn;
    }

    /// @notice Why a seller's payout was deferred at claim time (its entitlement is recorded regardless).
    enum DeferralReason {
        /// @notice The buyer, the seller or the recipient is on the sanctions list.
        Sanctioned,
        /// @notice The sanctions oracle did not answer (reverted or returned garbage): fail closed.
        ScreeningUnavailable,
        /// @notice The token refused the transfer (paused, blocklisted recipient or escrow, ...).
        TransferFailed
    }

    // ---------------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------------

    /// @notice An agreement was funded. Carries every term so an indexer needs no further call.
    /// @param agreementId The EIP-712 hash of the terms.
    /// @param buyer The payer.
    /// @param seller The payee.
    /// @param token The escrowed token.
    /// @param amount The amount now held in escrow (equal to `maxAmount`).
    /// @param infraFee The platform fee collected in the same transaction (zero if waived).
    /// @param expiry The agreement's expiry.
    /// @param closeWindow The agreement's close window in seconds.
    /// @param salt The agreement's salt (links to the off-chain agreement).
    event AgreementActivated(
        bytes32 indexed agreementId,
        address indexed buyer,
        address indexed seller,
        address token,
        uint256 amount,
        uint256 infraFee,
        uint64 expiry,
        uint32 closeWindow,
        bytes32 salt
    );

    /// @notice A party started the close window.
    /// @param agreementId The agreement.
    /// @param initiator The party (buyer or seller) whose call or signature started it.
    /// @param closeDeadline The seller may claim strictly before this time.
    event CloseInitiated(bytes32 indexed agreementId, address indexed initiator, uint256 closeDeadline);

    /// @notice The seller presented the buyer's voucher in time: its entitlement is recorded for good.
    ///         Always followed, in the same transaction, by `SellerPaid` or `SellerPayoutDeferred`.
    /// @param agreementId The agreement.
    /// @param amount The voucher's cumulative amount: what the seller is owed.
    /// @param buyerRemainder What the buyer can withdraw (`maxAmount - amount`).
    event SellerClaimed(bytes32 indexed agreementId, uint256 amount, uint256 buyerRemainder);

    /// @notice The seller's entitlement was paid out in full.
    /// @param agreementId The agreement.
    /// @param recipient Where the payment went (the seller, or a recipient the seller chose).
    /// @param amount The amount paid (the recorded entitlement).
    event SellerPaid(bytes32 indexed agreementId, address indexed recipient, uint256 amount);

    /// @notice The seller's payout could not be made at claim time and stays in escrow for it. The
    ///         seller retries with `sellerClaim` (any recipient it chooses, no deadline).
    /// @param agreementId The agreement.
    /// @param recipient The recipient of the attempted payout.
    /// @param amount The recorded entitlement still held for the seller.
    /// @param reason What blocked the payout.
    /// @param account The address screening flagged or could not screen (buyer, seller or
    ///        recipient); zero when the token refused the transfer.
    event SellerPayoutDeferred(
        bytes32 indexed agreementId, address indexed recipient, uint256 amount, DeferralReason reason, address account
    );

    /// @notice The buyer recovered the unspent remainder (settling the agreement unless the seller's
    ///         payout is still deferred).
    /// @param agreementId The agreement.
    /// @param recipient Where the remainder went (the buyer, or a recipient the buyer chose).
    /// @param amount The remainder paid out.
    event BuyerWithdrew(bytes32 indexed agreementId, address indexed recipient, uint256 amount);

    // ---------------------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------------------

    /// @notice Buyer or seller is the zero address or the escrow itself, or they are the same address.
    error InvalidParties(address buyer, address seller);
    /// @notice The token is the zero address or has no code.
    error InvalidToken(address token);
    /// @notice `maxAmount` is zero or does not fit the 128-bit accounting.
    error InvalidAmount(uint256 maxAmount);
    /// @notice The close window is outside [MIN_CLOSE_WINDOW, MAX_CLOSE_WINDOW].
    error InvalidCloseWindow(uint256 closeWindow, uint256 min, uint256 max);
    /// @notice Activation at or after the agreement's expiry.
    error AgreementExpired(uint256 expiry, uint256 timestamp);
    /// @notice The agreement is not in the status the operation requires.
    error UnexpectedStatus(bytes32 agreementId, Status expected, Status actual);
    /// @notice `account` is on the sanctions list.
    error SanctionedAddress(address account);
    /// @notice The caller is not the party the operation belongs to.
    error NotParty(address caller, address expected);
    /// @notice The caller (or named signer) is neither the buyer nor the seller.
    error NotBuyerOrSeller(address account);
    /// @notice A party's authorization is past its deadline.
    error AuthorizationExpired(uint256 deadline, uint256 timestamp);
    /// @notice `signer`'s signature does not verify for the message (ECDSA or ERC-1271).
    error InvalidSignature(address signer);
    /// @notice The buyer's voucher signature does not verify.
    error InvalidVoucher(bytes32 agreementId, uint256 amount);
    /// @notice The voucher is for zero or for more than the escrowed amount.
    error InvalidVoucherAmount(uint256 amount, uint256 maxAmount);
    /// @notice The seller presented its voucher at or after the end of the close window.
    error CloseWindowElapsed(bytes32 agreementId, uint256 closeDeadline, uint256 timestamp);
    /// @notice The buyer asked for its remainder before the seller claimed or the window ended.
    error CloseWindowOpen(bytes32 agreementId, uint256 closeDeadline, uint256 timestamp);
    /// @notice A retried seller payout named another amount than the recorded entitlement.
    error ClaimAmountMismatch(bytes32 agreementId, uint256 recorded, uint256 given);
    /// @notice The seller's entitlement was already paid.
    error SellerAlreadyPaid(bytes32 agreementId);
    /// @notice The buyer's remainder was already paid (or there was none).
    error BuyerAlreadyWithdrawn(bytes32 agreementId);
    /// @notice The submitter left too little gas for a seller's first payout attempt to give the
    ///         oracle `SCREENING_GAS` and the token `PAYOUT_GAS`; nothing is recorded.
    error PayoutGasTooLow(bytes32 agreementId);
    /// @notice The payout recipient is the zero address or the escrow itself.
    error InvalidRecipient(address recipient);
    /// @notice The sanctions oracle given at deployment has no code.
    error InvalidSanctionsOracle(address oracle);
    /// @notice The fee collector given at deployment is not bound to this escrow.
    error FeeCollectorNotBound(address feeCollector, address boundEscrow);

    // ---------------------------------------------------------------------------------------------
    // Activation
    // ---------------------------------------------------------------------------------------------

    /// @notice Activates (funds) an agreement with the buyer's EIP-3009 authorizations. Anyone may submit.
    /// @dev The buyer signs `ReceiveWithAuthorization(from=buyer, to=this, value=maxAmount, validAfter,
    ///      validBefore, nonce=agreementId)` under the token's domain. Because the nonce is the agreement id,
    ///      that one token signature is the buyer's activation package: it binds every term, the chain
    ///      id and this contract, it is single-use (the token burns the nonce; the agreement leaves
    ///      `None`), and `validBefore` is its deadline. If `infraFee > 0`, `fee` is the buyer's second
    ///      authorization, to the fee collector (see IInfraFeeCollector.feeAuthorizationNonce).
    ///      Reverts if either party is sanctioned, if the terms were activated before, or if the
    ///      escrow's balance grew by anything but `maxAmount`.
    /// @param agreement The terms.
    /// @param deposit The buyer's authorization for `maxAmount` to this contract.
    /// @param fee The buyer's authorization for `infraFee` to the fee collector (ignored when zero).
    /// @return id The activated agreement's id.
    function activateWithAuthorization(
        Agreement calldata agreement,
        ReceiveAuthorization calldata deposit,
        ReceiveAuthorization calldata fee
    ) external returns (bytes32 id);

    /// @notice Activates an agreement with EIP-2612 permits (or existing allowances). Anyone may submit.
    /// @dev A permit does not commit to the terms, so the buyer also signs `Activation(agreement,
    ///      deadline)` under this contract's domain, with the terms nested as typed data so that a
    ///      wallet shows them. The permits are attempted and their failure
    ///      ignored, so a front-run permit cannot block activation; the allowance is what is checked.
    /// @param agreement The terms.
    /// @param deadline The activation signature's deadline.
    /// @param buyerSignature The buyer's `Activation` signature (ECDSA or ERC-1271).
    /// @param deposit The buyer's permit for `maxAmount` to this contract.
    /// @param fee The buyer's permit for `infraFee` to the fee collector (ignored when the fee is zero).
    /// @return id The activated agreement's id.
    function activateWithPermit(
        Agreement calldata agreement,
        uint256 deadline,
        bytes calldata buyerSignature,
        PermitSignature calldata deposit,
        PermitSignature calldata fee
    ) external returns (bytes32 id);

    // ---------------------------------------------------------------------------------------------
    // Settlement
    // ---------------------------------------------------------------------------------------------

    /// @notice Starts the close window. Callable by the buyer or the seller while `Active`.
    /// @param agreement The terms.
    function initiateClose(Agreement calldata agreement) external;

    /// @notice `initiateClose` on `party`'s signed `InitiateClose(agreementId, party, deadline)`.
    /// @param agreement The terms.
    /// @param party The buyer or the seller, whose signature this is.
    /// @param deadline The authorization's deadline.
    /// @param signature `party`'s signature (ECDSA or ERC-1271).
    function initiateCloseWithSig(
        Agreement calldata agreement,
        address party,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /// @notice Claims and pays the seller the cumulative amount of the buyer's voucher. Seller only.
    /// @dev While `Closing` and before the close deadline: verifies the voucher and records the
    ///      entitlement (`SellerClaimed`), then pays it if the buyer, the seller and the recipient pass
    ///      sanctions screening and the token transfer succeeds (`SellerPaid`). Otherwise the payout is
    ///      deferred (`SellerPayoutDeferred`) and the entitlement stays in escrow: the call does not
    ///      revert, so a blocked payout can never hand the seller's earnings to the buyer.
    ///      Once recorded and unpaid (`SellerClaimed`, not `sellerPaid`), a call retries the payout at
    ///      any time, to any recipient the seller chooses; `amount` must equal the entitlement, the
    ///      voucher is not checked again, and a blocked payout reverts with its cause.
    /// @param agreement The terms.
    /// @param amount The voucher's cumulative amount (0 < amount <= maxAmount).
    /// @param voucherSignature The buyer's signature on `Voucher(agreementId, amount)`.
    /// @param recipient Where to pay (the seller itself, or another address of its choosing).
    function sellerClaim(
        Agreement calldata agreement,
        uint256 amount,
        bytes calldata voucherSignature,
        address recipient
    ) external;

    /// @notice `sellerClaim` on the seller's signed `SellerClaim(agreementId, amount, recipient, deadline)`.
    /// @dev The seller signs the amount too, so a submitter cannot swap in a lower (older) voucher.
    function sellerClaimWithSig(
        Agreement calldata agreement,
        uint256 amount,
        bytes calldata voucherSignature,
        address recipient,
        uint256 deadline,
        bytes calldata sellerSignature
    ) external;

    /// @notice Pays the buyer `maxAmount` minus the seller's entitlement. Buyer only, once, after the
    ///         seller claimed or the close window ended. Screens the buyer and the recipient (not the
    ///         seller: the remainder is the buyer's own money) and reverts if the payout is blocked;
    ///         the remainder stays reserved for a later call.
    /// @param agreement The terms.
    /// @param recipient Where to pay (the buyer itself, or another address of its choosing).
    function buyerWithdraw(Agreement calldata agreement, address recipient) external;

    /// @notice `buyerWithdraw` on the buyer's signed `BuyerWithdraw(agreementId, recipient, deadline)`.
    function buyerWithdrawWithSig(
        Agreement calldata agreement,
        address recipient,
        uint256 deadline,
        bytes calldata buyerSignature
    ) external;

    // ---------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------

    /// @notice The agreement id: the EIP-712 digest of `agreement` under this contract's domain.
    function agreementId(Agreement calldata agreement) external view returns (bytes32);

    /// @notice The stored state of an agreement (all zero for one never activated).
    function agreementState(bytes32 id) external view returns (AgreementState memory);

    /// @notice The sanctions oracle screened on activation and on every payout.
    function SANCTIONS_ORACLE() external view returns (address);

    /// @notice The fee collector paid at activation when `infraFee > 0`.
    function FEE_COLLECTOR() external view returns (address);
}
