// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

import {IAgreementEscrow} from "./interfaces/IAgreementEscrow.sol";
import {IInfraFeeCollector} from "./interfaces/IInfraFeeCollector.sol";
import {ISanctionsList} from "./interfaces/ISanctionsList.sol";
import {ReceiveAuthorization, PermitSignature} from "./interfaces/ITokenAuthorizations.sol";
import {TokenPull} from "./libraries/TokenPull.sol";
import {TransientReentrancyGuard} from "./utils/TransientReentrancyGuard.sol";

/// @title AgreementEscrow
/// @notice See {IAgreementEscrow}. Immutable, ownerless: no function moves escrowed funds except the
///         parties' own settlement calls (or their signed authorizations of them).
contract AgreementEscrow is IAgreementEscrow, EIP712, TransientReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice EIP-712 type of the agreement terms; the agreement id is their typed-data digest.
    bytes32 public constant AGREEMENT_TYPEHASH = keccak256(
        "Agreement(address buyer,address seller,address token,uint256 maxAmount,uint256 infraFee,uint64 expiry,uint32 closeWindow,bytes32 salt)"
    );
    /// @notice Buyer's consent to activation, used with permits (an EIP-3009 authorization needs none).
    ///         The terms are nested, so a wallet displays them rather than an opaque id.
    bytes32 public constant ACTIVATION_TYPEHASH = keccak256(
        "Activation(Agreement agreement,uint256 deadline)Agreement(address buyer,address seller,address token,uint256 maxAmount,uint256 infraFee,uint64 expiry,uint32 closeWindow,bytes32 salt)"
    );
    /// @notice Buyer's cumulative usage voucher.
    bytes32 public constant VOUCHER_TYPEHASH = keccak256("Voucher(bytes32 agreementId,uint256 cumulativeAmount)");
    /// @notice A party's authorization to start the close window.
    bytes32 public constant INITIATE_CLOSE_TYPEHASH =
        keccak256("InitiateClose(bytes32 agreementId,address party,uint256 deadline)");
    /// @notice The seller's authorization to be paid `amount` at `recipient`.
    bytes32 public constant SELLER_CLAIM_TYPEHASH =
        keccak256("SellerClaim(bytes32 agreementId,uint256 amount,address recipient,uint256 deadline)");
    /// @notice The buyer's authorization to be paid its remainder at `recipient`.
    bytes32 public constant BUYER_WITHDRAW_TYPEHASH =
        keccak256("BuyerWithdraw(bytes32 agreementId,address recipient,uint256 deadline)");

    /// @notice Shortest close window: the seller must have a real chance to present its voucher.
    uint256 public constant MIN_CLOSE_WINDOW = 1 hours;
    /// @notice Longest close window: bounds how long a buyer's remainder can be held after a close.
    uint256 public constant MAX_CLOSE_WINDOW = 30 days;
    /// @notice Gas given to each sanctions lookup of a seller's first payout attempt (a Chainalysis
    ///         lookup needs about 5k). An oracle that fails within it defers the payout; a submitter
    ///         that leaves less gas gets `PayoutGasTooLow`.
    uint256 public constant SCREENING_GAS = 30_000;
    /// @notice Gas given to the token transfer of a seller's first payout attempt (a USDC transfer
    ///         needs about 40k at most). A token that fails within it defers the payout (the retry
    ///         gives it all the gas there is); a submitter that leaves less gets `PayoutGasTooLow`.
    uint256 public constant PAYOUT_GAS = 100_000;
    /// @dev Kept back on top of a budget: the 63/64 rule, a cold account access and the call itself.
    uint256 private constant CALL_OVERHEAD = 5_000;

    /// @inheritdoc IAgreementEscrow
    address public immutable SANCTIONS_ORACLE;
    /// @inheritdoc IAgreementEscrow
    address public immutable FEE_COLLECTOR;

    mapping(bytes32 agreementId => AgreementState) private _states;

    /// @param sanctionsOracle The Chainalysis-interface oracle screened on activation and payouts.
    /// @param feeCollector An {IInfraFeeCollector} whose `ESCROW()` is this contract's address
    ///        (deploy it first, with this contract's predicted address).
    // A zero fee collector has no code and is refused with FeeCollectorNotBound(0, 0).
    // slither-disable-next-line missing-zero-check
    constructor(address sanctionsOracle, address feeCollector) EIP712("Pactum Agreement Escrow", "1") {
        if (sanctionsOracle.code.length == 0) revert InvalidSanctionsOracle(sanctionsOracle);
        address bound = _boundEscrowOf(feeCollector);
        if (bound != address(this)) revert FeeCollectorNotBound(feeCollector, bound);
        SANCTIONS_ORACLE = sanctionsOracle;
        FEE_COLLECTOR = feeCollector;
    }

    // ---------------------------------------------------------------------------------------------
    // Activation
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IAgreementEscrow
    function activateWithAuthorization(
        Agreement calldata agreement,
        ReceiveAuthorization calldata deposit,
        ReceiveAuthorization calldata fee
    ) external nonReentrant returns (bytes32 id) {
        id = _agreementId(agreement);
        _checkActivation(id, agreement);
        _recordActivation(id, agreement);

        // The token verifies the buyer's signature over (buyer -> this, maxAmount, nonce = id).
        uint256 balanceBefore = IERC20(agreement.token).balanceOf(address(this));
        TokenPull.pullWithAuthorization(agreement.token, agreement.buyer, agreement.maxAmount, id, deposit);
        TokenPull.checkReceived(agreement.token, balanceBefore, agreement.maxAmount);
        if (agreement.infraFee != 0) {
            IInfraFeeCollector(FEE_COLLECTOR)
                .collectWithAuthorization(id, agreement.buyer, agreement.token, agreement.infraFee, fee);
        }
    }

    /// @inheritdoc IAgreementEscrow
    function activateWithPermit(
        Agreement calldata agreement,
        uint256 deadline,
        bytes calldata buyerSignature,
        PermitSignature calldata deposit,
        PermitSignature calldata fee
    ) external nonReentrant returns (bytes32 id) {
        bytes32 termsHash = _agreementStructHash(agreement);
        id = _hashTypedDataV4(termsHash);
        _checkActivation(id, agreement);
        _checkDeadline(deadline);
        _checkSignature(
            agreement.buyer, keccak256(abi.encode(ACTIVATION_TYPEHASH, termsHash, deadline)), buyerSignature
        );
        _recordActivation(id, agreement);

        uint256 balanceBefore = IERC20(agreement.token).balanceOf(address(this));
        TokenPull.pullWithPermit(agreement.token, agreement.buyer, agreement.maxAmount, deposit);
        TokenPull.checkReceived(agreement.token, balanceBefore, agreement.maxAmount);
        if (agreement.infraFee != 0) {
            IInfraFeeCollector(FEE_COLLECTOR)
                .collectWithPermit(id, agreement.buyer, agreement.token, agreement.infraFee, fee);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Settlement
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IAgreementEscrow
    function initiateClose(Agreement calldata agreement) external nonReentrant {
        if (msg.sender != agreement.buyer && msg.sender != agreement.seller) revert NotBuyerOrSeller(msg.sender);
        _initiateClose(_agreementId(agreement), agreement, msg.sender);
    }

    /// @inheritdoc IAgreementEscrow
    function initiateCloseWithSig(
        Agreement calldata agreement,
        address party,
        uint256 deadline,
        bytes calldata signature
    ) external nonReentrant {
        if (party != agreement.buyer && party != agreement.seller) revert NotBuyerOrSeller(party);
        bytes32 id = _agreementId(agreement);
        _checkDeadline(deadline);
        _checkSignature(party, keccak256(abi.encode(INITIATE_CLOSE_TYPEHASH, id, party, deadline)), signature);
        _initiateClose(id, agreement, party);
    }

    /// @inheritdoc IAgreementEscrow
    function sellerClaim(
        Agreement calldata agreement,
        uint256 amount,
        bytes calldata voucherSignature,
        address recipient
    ) external nonReentrant {
        if (msg.sender != agreement.seller) {
            revert NotParty(msg.sender, agreement.seller);
        }
        _sellerClaim(_agreementId(agreement), agreement, amount, voucherSignature, recipient);
    }

    /// @inheritdoc IAgreementEscrow
    function sellerClaimWithSig(
        Agreement calldata agreement,
        uint256 amount,
        bytes calldata voucherSignature,
        address recipient,
        uint256 deadline,
        bytes calldata sellerSignature
    ) external nonReentrant {
        bytes32 id = _agreementId(agreement);
        _checkDeadline(deadline);
        _checkSignature(
            agreement.seller,
            keccak256(abi.encode(SELLER_CLAIM_TYPEHASH, id, amount, recipient, deadline)),
            sellerSignature
        );
        _sellerClaim(id, agreement, amount, voucherSignature, recipient);
    }

    /// @inheritdoc IAgreementEscrow
    function buyerWithdraw(Agreement calldata agreement, address recipient) external nonReentrant {
        if (msg.sender != agreement.buyer) revert NotParty(msg.sender, agreement.buyer);
        _buyerWithdraw(_agreementId(agreement), agreement, recipient);
    }

    /// @inheritdoc IAgreementEscrow
    function buyerWithdrawWithSig(
        Agreement calldata agreement,
        address recipient,
        uint256 deadline,
        bytes calldata buyerSignature
    ) external nonReentrant {
        bytes32 id = _agreementId(agreement);
        _checkDeadline(deadline);
        _checkSignature(
            agreement.buyer, keccak256(abi.encode(BUYER_WITHDRAW_TYPEHASH, id, recipient, deadline)), buyerSignature
        );
        _buyerWithdraw(id, agreement, recipient);
    }

    // ---------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IAgreementEscrow
    function agreementId(Agreement calldata agreement) external view returns (bytes32) {
        return _agreementId(agreement);
    }

    /// @inheritdoc IAgreementEscrow
    function agreementState(bytes32 id) external view returns (AgreementState memory) {
        return _states[id];
    }

    // ---------------------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------------------

    /// @dev The escrow `feeCollector` is bound to, or zero if it is not a contract answering `ESCROW()`.
    function _boundEscrowOf(address feeCollector) private view returns (address) {
        if (feeCollector.code.length == 0) return address(0);
        // A static call, so that a contract without ESCROW() yields a clear error instead of an empty revert.
        // slither-disable-next-line low-level-calls
        (bool ok, bytes memory data) = feeCollector.staticcall(abi.encodeCall(IInfraFeeCollector.ESCROW, ()));
        if (!ok || data.length != 32) return address(0);
        return abi.decode(data, (address));
    }

    function _agreementId(Agreement calldata a) private view returns (bytes32) {
        return _hashTypedDataV4(_agreementStructHash(a));
    }

    /// @dev The EIP-712 `hashStruct` of the terms (the id is its typed-data digest under this domain).
    function _agreementStructHash(Agreement calldata a) private pure returns (bytes32) {
        return keccak256(
            abi.encode(
                AGREEMENT_TYPEHASH, a.buyer, a.seller, a.token, a.maxAmount, a.infraFee, a.expiry, a.closeWindow, a.salt
            )
        );
    }

    /// @dev Every check of an activation that does not depend on how the tokens are authorized.
    function _checkActivation(bytes32 id, Agreement calldata a) private view {
        Status status = _states[id].status;
        if (status != Status.None) revert UnexpectedStatus(id, Status.None, status);
        if (
            a.buyer == address(0) || a.seller == address(0) || a.buyer == a.seller || a.buyer == address(this)
                || a.seller == address(this)
        ) revert InvalidParties(a.buyer, a.seller);
        if (a.token.code.length == 0) revert InvalidToken(a.token);
        if (a.maxAmount == 0 || a.maxAmount > type(uint128).max) revert InvalidAmount(a.maxAmount);
        if (a.closeWindow < MIN_CLOSE_WINDOW || a.closeWindow > MAX_CLOSE_WINDOW) {
            revert InvalidCloseWindow(a.closeWindow, MIN_CLOSE_WINDOW, MAX_CLOSE_WINDOW);
        }
        if (block.timestamp >= a.expiry) revert AgreementExpired(a.expiry, block.timestamp);
        _screen(a.buyer);
        _screen(a.seller);
    }

    function _recordActivation(bytes32 id, Agreement calldata a) private {
        _states[id] = AgreementState({
            status: Status.Active, closeDeadline: 0, settledAmount: 0, sellerPaid: false, buyerWithdrawn: false
        });
        emit AgreementActivated(
            id, a.buyer, a.seller, a.token, a.maxAmount, a.infraFee, a.expiry, a.closeWindow, a.salt
        );
    }

    function _initiateClose(bytes32 id, Agreement calldata a, address initiator) private {
        Status status = _states[id].status;
        if (status != Status.Active) revert UnexpectedStatus(id, Status.Active, status);
        // Cannot overflow uint40 before the year 36812: closeWindow <= 30 days.
        uint40 closeDeadline = uint40(block.timestamp + a.closeWindow);
        _states[id] = AgreementState({
            status: Status.Closing,
            closeDeadline: closeDeadline,
            settledAmount: 0,
            sellerPaid: false,
            buyerWithdrawn: false
        });
        emit CloseInitiated(id, initiator, closeDeadline);
    }

    function _sellerClaim(
        bytes32 id,
        Agreement calldata a,
        uint256 amount,
        bytes calldata voucherSignature,
        address recipient
    ) private {
        if (recipient == address(0) || recipient == address(this)) {
            revert InvalidRecipient(recipient);
        }
        AgreementState memory state = _states[id];
        // slither-disable-next-line incorrect-equality (a state-machine status, not a balance: see docs/slither-triage.md)
        if (state.status == Status.Closing) {
            _recordEntitlement(id, a, state, amount, voucherSignature);
            _payOrDefer(id, a, state, recipient);
            // slither-disable-next-line incorrect-equality (a state-machine status, not a balance: see docs/slither-triage.md)
        } else if (state.status == Status.SellerClaimed && !state.sellerPaid) {
            _retryPayout(id, a, state, amount, recipient);
            // slither-disable-next-line incorrect-equality (a state-machine status, not a balance: see docs/slither-triage.md)
        } else if (state.status == Status.SellerClaimed || (state.status == Status.Settled && state.sellerPaid)) {
            revert SellerAlreadyPaid(id);
        } else {
            revert UnexpectedStatus(id, Status.Closing, state.status);
        }
    }

    /// @dev Verifies the voucher in time and records the seller's entitlement in `state` (written to
    ///      storage, with its event, by `_payOrDefer` in the same call).
    function _recordEntitlement(
        bytes32 id,
        Agreement calldata a,
        AgreementState memory state,
        uint256 amount,
        bytes calldata voucherSignature
    ) private view {
        if (block.timestamp >= state.closeDeadline) {
            revert CloseWindowElapsed(id, state.closeDeadline, block.timestamp);
        }
        if (amount == 0 || amount > a.maxAmount) revert InvalidVoucherAmount(amount, a.maxAmount);
        bytes32 voucherDigest = _hashTypedDataV4(keccak256(abi.encode(VOUCHER_TYPEHASH, id, amount)));
        if (!_isValidSignature(a.buyer, voucherDigest, voucherSignature)) revert InvalidVoucher(id, amount);

        state.status = Status.SellerClaimed;
        // casting to uint128 is safe: amount <= maxAmount <= type(uint128).max (checked at activation).
        // forge-lint: disable-next-line(unsafe-typecast)
        state.settledAmount = uint128(amount);
        // A voucher for the whole deposit leaves the buyer nothing to withdraw.
        state.buyerWithdrawn = amount == a.maxAmount;
    }

    /// @dev The first payout attempt, right after the entitlement is recorded. It never reverts for a
    ///      blocked payout: it stores the entitlement as unpaid and emits `SellerPayoutDeferred`.
    ///      Effects come first: the state is written as paid before the transfer and written back as
    ///      unpaid if the token refuses (every entry point holds the reentrancy lock throughout).
    function _payOrDefer(bytes32 id, Agreement calldata a, AgreementState memory state, address recipient) private {
        uint256 amount = state.settledAmount;
        (bool clear, DeferralReason reason, address flagged) = _screenPayout(id, a.buyer, a.seller, recipient);
        if (!clear) {
            _states[id] = state;
            emit SellerClaimed(id, amount, a.maxAmount - amount);
            emit SellerPayoutDeferred(id, recipient, amount, reason, flagged);
            return;
        }

        _markSellerPaid(state);
        _states[id] = state;
        emit SellerClaimed(id, amount, a.maxAmount - amount);
        if (_tryTransfer(id, a.token, recipient, amount)) {
            emit SellerPaid(id, recipient, amount);
            return;
        }
        state.sellerPaid = false;
        state.status = Status.SellerClaimed;
        // Undoes the optimistic write above. Only code running inside the failed transfer could have
        // seen it, and everything that code did was reverted with the transfer.
        _states[id] = state;
        emit SellerPayoutDeferred(id, recipient, amount, DeferralReason.TransferFailed, address(0));
    }

    /// @dev A later payout of a recorded, unpaid entitlement. Strict: a blocked payout reverts with its
    ///      cause and changes nothing, so the seller can try again (with another recipient if need be).
    function _retryPayout(
        bytes32 id,
        Agreement calldata a,
        AgreementState memory state,
        uint256 amount,
        address recipient
    ) private {
        if (amount != state.settledAmount) revert ClaimAmountMismatch(id, state.settledAmount, amount);
        _screen(a.buyer);
        _screen(a.seller);
        if (recipient != a.seller) _screen(recipient);

        _markSellerPaid(state);
        _states[id] = state;
        emit SellerPaid(id, recipient, amount);

        IERC20(a.token).safeTransfer(recipient, amount);
    }

    function _markSellerPaid(AgreementState memory state) private pure {
        state.sellerPaid = true;
        if (state.buyerWithdrawn) state.status = Status.Settled;
    }

    function _buyerWithdraw(bytes32 id, Agreement calldata a, address recipient) private {
        AgreementState memory state = _states[id];
        // slither-disable-next-line incorrect-equality (a state-machine status, not a balance: see docs/slither-triage.md)
        if (state.status == Status.Closing) {
            if (block.timestamp < state.closeDeadline) {
                revert CloseWindowOpen(id, state.closeDeadline, block.timestamp);
            }
        } else if (state.status != Status.SellerClaimed) {
            revert UnexpectedStatus(id, Status.Closing, state.status);
        } else if (state.buyerWithdrawn) {
            revert BuyerAlreadyWithdrawn(id);
        }
        if (recipient == address(0) || recipient == address(this)) revert InvalidRecipient(recipient);
        // The remainder is the buyer's own money: the seller is not screened for it.
        _screen(a.buyer);
        if (recipient != a.buyer) _screen(recipient);

        // settledAmount <= maxAmount, so this cannot underflow.
        uint256 amount = a.maxAmount - state.settledAmount;
        state.buyerWithdrawn = true;
        // Without a claim (Closing), nothing is owed to the seller.
        // slither-disable-next-line incorrect-equality (a state-machine status, not a balance: see docs/slither-triage.md)
        if (state.status == Status.Closing || state.sellerPaid) state.status = Status.Settled;
        _states[id] = state;
        emit BuyerWithdrew(id, recipient, amount);

        IERC20(a.token).safeTransfer(recipient, amount);
    }

    /// @dev Screening for a seller payout: the buyer (the money is its deposit), the seller and the
    ///      recipient. Never reverts on the oracle's behalf; an oracle that reverts or answers anything
    ///      but a clean `false` blocks the payout (fail closed). `flagged` is the address that failed.
    function _screenPayout(bytes32 id, address buyer, address seller, address recipient)
        private
        view
        returns (bool clear, DeferralReason reason, address flagged)
    {
        (clear, reason) = _tryScreen(id, buyer);
        if (!clear) return (false, reason, buyer);
        (clear, reason) = _tryScreen(id, seller);
        if (!clear) return (false, reason, seller);
        if (recipient != seller) {
            (clear, reason) = _tryScreen(id, recipient);
            if (!clear) return (false, reason, recipient);
        }
    }

    function _tryScreen(bytes32 id, address account) private view returns (bool clear, DeferralReason reason) {
        // The oracle gets exactly SCREENING_GAS whatever the submitter's gas limit, so its failure is
        // its own and never one a submitter provoked (EIP-150 forwards at most 63/64 of what is left).
        if (gasleft() < SCREENING_GAS + SCREENING_GAS / 63 + CALL_OVERHEAD) revert PayoutGasTooLow(id);
        address oracle = SANCTIONS_ORACLE;
        bytes4 selector = ISanctionsList.isSanctioned.selector;
        bool answered;
        uint256 answer;
        // A bounded static call: only the 32-byte answer is copied, whatever the oracle returns.
        // slither-disable-next-line assembly
        assembly ("memory-safe") {
            mstore(0x00, selector)
            mstore(0x04, and(account, 0xffffffffffffffffffffffffffffffffffffffff))
            answered := staticcall(SCREENING_GAS, oracle, 0x00, 0x24, 0x00, 0x20)
            answered := and(answered, gt(returndatasize(), 0x1f))
            answer := mload(0x00)
        }
        if (!answered || answer > 1) return (false, DeferralReason.ScreeningUnavailable);
        return (answer == 0, DeferralReason.Sanctioned);
    }

    /// @dev `token.transfer(to, amount)` with exactly PAYOUT_GAS, accepting the same answers as
    ///      SafeERC20 (no return data from a contract, or a single `true` word). Like the oracle, the
    ///      token gets its full budget whatever the submitter's gas limit, so a failure is its own.
    function _tryTransfer(bytes32 id, address token, address to, uint256 amount) private returns (bool ok) {
        if (gasleft() < PAYOUT_GAS + PAYOUT_GAS / 63 + CALL_OVERHEAD) revert PayoutGasTooLow(id);
        bytes4 selector = IERC20.transfer.selector;
        // slither-disable-next-line assembly
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, selector)
            mstore(add(ptr, 0x04), and(to, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(ptr, 0x24), amount)
            ok := call(PAYOUT_GAS, token, 0, ptr, 0x44, 0x00, 0x20)
            switch returndatasize()
            case 0 { ok := and(ok, gt(extcodesize(token), 0)) }
            default { ok := and(ok, and(gt(returndatasize(), 0x1f), eq(mload(0x00), 1))) }
        }
    }

    function _screen(address account) private view {
        if (ISanctionsList(SANCTIONS_ORACLE).isSanctioned(account)) revert SanctionedAddress(account);
    }

    function _checkDeadline(uint256 deadline) private view {
        if (block.timestamp > deadline) revert AuthorizationExpired(deadline, block.timestamp);
    }

    function _checkSignature(address signer, bytes32 structHash, bytes calldata signature) private view {
        if (!_isValidSignature(signer, _hashTypedDataV4(structHash), signature)) revert InvalidSignature(signer);
    }

    /// @dev ECDSA first, ERC-1271 only if that fails and the signer has code. The order matters: an
    ///      EOA that later delegates its account (EIP-7702) gains code, and a code-first check would
    ///      then ask the delegate instead of the key, letting the EOA disown every voucher and
    ///      authorization it signed. A recovered ECDSA signer is authoritative because no contract
    ///      address has a known private key, while a 7702 account's key keeps full control of it.
    ///      `tryRecoverCalldata` rejects malformed and high-s signatures.
    function _isValidSignature(address signer, bytes32 digest, bytes calldata signature) private view returns (bool) {
        // The third value only details the error (e.g. the bad length); a failure of any kind falls through.
        // slither-disable-next-line unused-return
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (err == ECDSA.RecoverError.NoError && recovered == signer) return true;
        return signer.code.length != 0 && SignatureChecker.isValidERC1271SignatureNowCalldata(signer, digest, signature);
    }
}
