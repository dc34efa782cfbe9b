// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Vm} from "../utils/Vm.sol";
import {AgreementEscrow} from "../../../contracts/AgreementEscrow.sol";
import {InfraFeeCollector} from "../../../contracts/InfraFeeCollector.sol";
import {IAgreementEscrow} from "../../../contracts/interfaces/IAgreementEscrow.sol";
import {ReceiveAuthorization, PermitSignature} from "../../../contracts/interfaces/ITokenAuthorizations.sol";
import {LocalUSDC} from "../../../contracts/local/LocalUSDC.sol";
import {LocalSanctionsOracle} from "../../../contracts/local/LocalSanctionsOracle.sol";

/// @notice Drives the escrow through random but mostly valid lifecycles for the invariant suite.
///
///         Every operation picks an agreement in the status it needs; when there is none, it performs
///         the step that leads there instead (claim -> close -> activate), so most calls succeed and
///         the later lifecycle stages are reached in every run. Valid operations are expected to
///         succeed (a revert is recorded as `unexpectedFailures`); invalid ones are expected to revert
///         with one exact error (success: `unexpectedSuccesses`, another error: `wrongErrors`).
///         After every call, the status of every agreement is compared with the last one observed and
///         each transition is recorded (`transitionCount`, `badTransitions`).
contract EscrowHandler {
    Vm internal constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);

    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    // Message types, spelled out here rather than read from the escrow.
    bytes32 internal constant AGREEMENT_TYPEHASH = keccak256(
        "Agreement(address buyer,address seller,address token,uint256 maxAmount,uint256 infraFee,uint64 expiry,uint32 closeWindow,bytes32 salt)"
    );
    bytes32 internal constant ACTIVATION_TYPEHASH = keccak256(
        "Activation(Agreement agreement,uint256 deadline)Agreement(address buyer,address seller,address token,uint256 maxAmount,uint256 infraFee,uint64 expiry,uint32 closeWindow,bytes32 salt)"
    );
    bytes32 internal constant VOUCHER_TYPEHASH = keccak256("Voucher(bytes32 agreementId,uint256 cumulativeAmount)");
    bytes32 internal constant INITIATE_CLOSE_TYPEHASH =
        keccak256("InitiateClose(bytes32 agreementId,address party,uint256 deadline)");
    bytes32 internal constant SELLER_CLAIM_TYPEHASH =
        keccak256("SellerClaim(bytes32 agreementId,uint256 amount,address recipient,uint256 deadline)");
    bytes32 internal constant BUYER_WITHDRAW_TYPEHASH =
        keccak256("BuyerWithdraw(bytes32 agreementId,address recipient,uint256 deadline)");
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    AgreementEscrow public immutable escrow;
    InfraFeeCollector public immutable feeCollector;
    LocalUSDC public immutable usdc;
    LocalSanctionsOracle public immutable oracle;
    address public immutable treasury;

    address internal constant RELAYER = address(0x4E1A7E4);
    address internal constant STRANGER = address(0x5757);

    uint256[3] internal buyerKeys = [uint256(0xB0B1), 0xB0B2, 0xB0B3];
    uint256[3] internal sellerKeys = [uint256(0x5E1), 0x5E2, 0x5E3];
    address[2] internal altRecipients = [address(0xA1A1), address(0xA2A2)];

    struct Record {
        IAgreementEscrow.Agreement a;
        bytes32 id;
        uint256 buyerKey;
        uint256 sellerKey;
        uint256 entitled; // the voucher amount of the seller's successful claim
        uint256 claimed; // paid to the seller side, measured
        uint256 withdrawn; // paid to the buyer side, measured
        IAgreementEscrow.Status lastStatus;
    }

    struct Replay {
        address sender;
        bytes data;
    }

    Record[] internal _records;
    Replay[] internal _replays;
    uint256 internal _salt;

    // ----- ghosts -----
    uint256 public ghostFees;
    uint256 public ghostSwept;
    uint256 public ghostDonations;
    mapping(bytes32 digest => uint256) public digestUses;
    uint256 public digestsUsed;
    uint256 public maxDigestUses;
    uint256 public replaysAccepted;
    uint256 public badTransitions;
    mapping(uint256 from => mapping(uint256 to => uint256)) public transitionCount;
    uint256 public unexpectedSuccesses;
    uint256 public wrongErrors;
    uint256 public unexpectedFailures;
    uint256 public payoutMismatches;
    bytes public lastAnomaly;

    // ----- call summary -----
    uint256 public calls;
    uint256 public activations;
    uint256 public permitActivations;
    uint256 public closes;
    uint256 public closesBySeller;
    uint256 public closesWithSig;
    uint256 public claims;
    uint256 public claimsWithSig;
    uint256 public fullClaims;
    uint256 public fullClaimsPaid;
    uint256 public claimsToOtherRecipient;
    uint256 public deferrals;
    uint256 public retries;
    uint256 public retriesSettling;
    uint256 public withdrawalsBeforeSellerPaid;
    uint256 public withdrawals;
    uint256 public withdrawalsWithSig;
    uint256 public withdrawalsWithoutClaim;
    uint256 public invalidRejected;
    uint256 public replaysRejected;
    uint256 public sweeps;
    uint256 public donations;
    uint256 public warps;

    constructor(
        AgreementEscrow escrow_,
        InfraFeeCollector feeCollector_,
        LocalUSDC usdc_,
        LocalSanctionsOracle oracle_,
        address treasury_
    ) {
        escrow = escrow_;
        feeCollector = feeCollector_;
        usdc = usdc_;
        oracle = oracle_;
        treasury = treasury_;
    }

    modifier step() {
        ++calls;
        _;
        _observe();
    }

    // =============================================================================================
    // Targeted operations
    // =============================================================================================

    function activate(uint256 seed, uint256 amountSeed, uint256 feeSeed, uint256 windowSeed) external step {
        _activate(seed, amountSeed, feeSeed, windowSeed);
    }

    function initiateClose(uint256 seed, uint256 mode) external step {
        _initiateClose(seed, mode);
    }

    function sellerClaim(uint256 seed, uint256 amountSeed, uint256 mode) external step {
        _sellerClaim(seed, amountSeed, mode);
    }

    /// Pays a deferred seller payout; without one, claims while the payout is blocked (a deferral).
    function retryPayout(uint256 seed, uint256 mode) external step {
        (bool found, uint256 i) = _find(seed, Want.Deferred);
        if (!found) {
            _sellerClaim(seed, seed >> 16, (mode & ~uint256(7 << 20)) | (1 << 20));
            return;
        }
        _retryPayout(i, mode);
    }

    function buyerWithdraw(uint256 seed, uint256 mode) external step {
        (bool found, uint256 i) = _find(seed, Want.Withdrawable);
        if (!found) {
            // Sometimes let the earliest open window run out and withdraw that agreement; otherwise
            // (so as not to expire every window) take the claim step that makes a withdrawal possible.
            (bool closing, uint256 j) = _earliestOpenWindow();
            if (!closing || (mode >> 8) % 4 != 0) {
                _sellerClaim(seed, seed >> 16, mode >> 10);
                return;
            }
            vm.warp(escrow.agreementState(_records[j].id).closeDeadline);
            i = j;
        }
        _buyerWithdraw(i, mode);
    }

    function warp(uint256 seed) external step {
        ++warps;
        vm.warp(block.timestamp + _bound(seed, 1 minutes, 1 days));
    }

    /// Resubmits a call that succeeded before, from its original sender: it must revert.
    function replay(uint256 seed) external step {
        if (_replays.length == 0) {
            _activate(seed, seed >> 8, seed >> 16, seed >> 24);
            return;
        }
        Replay storage r = _replays[seed % _replays.length];
        address sender = r.sender;
        bytes memory data = r.data;
        vm.prank(sender);
        (bool ok, bytes memory ret) = address(escrow).call(data);
        if (ok) {
            ++replaysAccepted;
            lastAnomaly = data;
        } else {
            ++replaysRejected;
            ret;
        }
    }

    function invalidOp(uint256 seed, uint256 kind) external step {
        kind %= 13;
        for (uint256 k = 0; k < 13; ++k) {
            if (_tryInvalid(seed, (kind + k) % 13)) return;
        }
    }

    function sweep() external step {
        uint256 amount = usdc.balanceOf(address(feeCollector));
        if (amount == 0) return;
        uint256 treasuryBefore = usdc.balanceOf(treasury);
        try feeCollector.sweep(address(usdc)) returns (uint256 swept) {
            ++sweeps;
            ghostSwept += swept;
            if (swept != amount || usdc.balanceOf(treasury) - treasuryBefore != amount) ++payoutMismatches;
        } catch (bytes memory err) {
            _unexpectedFailure(err);
        }
    }

    /// Tokens sent straight to the escrow (not through an activation) belong to no agreement.
    function donate(uint256 amount) external step {
        amount = _bound(amount, 1, 1e12);
        ++donations;
        ghostDonations += amount;
        usdc.mint(address(escrow), amount);
    }

    // =============================================================================================
    // Views for the invariants
    // =============================================================================================

    function recordCount() external view returns (uint256) {
        return _records.length;
    }

    function record(uint256 i)
        external
        view
        returns (bytes32 id, uint256 maxAmount, uint256 infraFee, uint256 claimed, uint256 withdrawn)
    {
        Record storage r = _records[i];
        return (r.id, r.a.maxAmount, r.a.infraFee, r.claimed, r.withdrawn);
    }

    function entitledOf(uint256 i) external view returns (uint256) {
        return _records[i].entitled;
    }

    /// What the escrow should hold for the agreements, from their on-chain state: the whole deposit
    /// until a claim or withdrawal, then each side's share until it is paid.
    function heldFromState() external view returns (uint256 held) {
        for (uint256 i = 0; i < _records.length; ++i) {
            IAgreementEscrow.AgreementState memory s = escrow.agreementState(_records[i].id);
            uint256 max = _records[i].a.maxAmount;
            if (s.status == IAgreementEscrow.Status.Active || s.status == IAgreementEscrow.Status.Closing) {
                held += max;
            } else if (s.status == IAgreementEscrow.Status.SellerClaimed) {
                if (!s.sellerPaid) held += s.settledAmount;
                if (!s.buyerWithdrawn) held += max - s.settledAmount;
            }
        }
    }

    /// The same, from the handler's own measurements of every deposit and payout.
    function heldFromGhosts() external view returns (uint256 held) {
        for (uint256 i = 0; i < _records.length; ++i) {
            Record storage r = _records[i];
            held += r.a.maxAmount - r.claimed - r.withdrawn;
        }
    }

    function feesOfActivated() external view returns (uint256 fees) {
        for (uint256 i = 0; i < _records.length; ++i) {
            fees += _records[i].a.infraFee;
        }
    }

    // =============================================================================================
    // Operations
    // =============================================================================================

    function _activate(uint256 seed, uint256 amountSeed, uint256 feeSeed, uint256 windowSeed) internal {
        uint256 bk = buyerKeys[seed % 3];
        uint256 sk = sellerKeys[(seed / 3) % 3];
        // Mostly realistic amounts (up to 1M USDC), sometimes anything up to 2^128 - 1.
        uint256 maxAmount =
            amountSeed % 5 == 0 ? _bound(amountSeed, 1, type(uint128).max) : _bound(amountSeed, 1, 1_000_000e6);
        uint256 fee = feeSeed % 3 == 0 ? 0 : _bound(feeSeed, 1, 10_000e6);
        IAgreementEscrow.Agreement memory a = IAgreementEscrow.Agreement({
            buyer: vm.addr(bk),
            seller: vm.addr(sk),
            token: address(usdc),
            maxAmount: maxAmount,
            infraFee: fee,
            expiry: uint64(block.timestamp + 30 days),
            closeWindow: uint32(_bound(windowSeed, 1 hours, 30 days)),
            salt: keccak256(abi.encode("invariant", ++_salt))
        });
        usdc.mint(a.buyer, maxAmount + fee);
        bytes32 id = _agreementId(a);
        uint256 escrowBefore = usdc.balanceOf(address(escrow));
        uint256 feesBefore = usdc.balanceOf(address(feeCollector));

        bytes memory data;
        bytes32[2] memory digests;
        bool permitPath = (seed >> 8) % 4 == 0;
        if (permitPath) {
            vm.startPrank(a.buyer);
            usdc.approve(address(escrow), maxAmount);
            usdc.approve(address(feeCollector), fee);
            vm.stopPrank();
            uint256 deadline = block.timestamp + 1 hours;
            digests[0] = _escrowDigest(keccak256(abi.encode(ACTIVATION_TYPEHASH, _termsHash(a), deadline)));
            PermitSignature memory none;
            data = abi.encodeCall(escrow.activateWithPermit, (a, deadline, _sign(bk, digests[0]), none, none));
        } else {
            uint256 vb = block.timestamp + 1 hours;
            ReceiveAuthorization memory d;
            ReceiveAuthorization memory f;
            (d, digests[0]) = _receiveAuth(bk, a.buyer, address(escrow), maxAmount, id, vb);
            if (fee != 0) {
                (f, digests[1]) = _receiveAuth(
                    bk, a.buyer, address(feeCollector), fee, feeCollector.feeAuthorizationNonce(id, fee), vb
                );
            }
            data = abi.encodeCall(escrow.activateWithAuthorization, (a, d, f));
        }

        if (!_submit(RELAYER, data)) return;
        _useDigest(digests[0]);
        if (digests[1] != bytes32(0)) _useDigest(digests[1]);
        ++activations;
        if (permitPath) ++permitActivations;
        ghostFees += fee;
        if (usdc.balanceOf(address(escrow)) - escrowBefore != maxAmount) ++payoutMismatches;
        if (usdc.balanceOf(address(feeCollector)) - feesBefore != fee) ++payoutMismatches;
        _records.push(
            Record({
                a: a,
                id: id,
                buyerKey: bk,
                sellerKey: sk,
                entitled: 0,
                claimed: 0,
                withdrawn: 0,
                lastStatus: IAgreementEscrow.Status.None
            })
        );
    }

    function _initiateClose(uint256 seed, uint256 mode) internal {
        (bool found, uint256 i) = _find(seed, Want.Active);
        if (!found) {
            _activate(seed, seed >> 8, seed >> 16, seed >> 24);
            return;
        }
        Record storage r = _records[i];
        bool bySeller = mode % 2 == 1;
        bool bySig = (mode >> 1) % 2 == 1;
        address party = bySeller ? r.a.seller : r.a.buyer;
        bytes memory data;
        address sender = party;
        bytes32 digest;
        if (bySig) {
            uint256 dl = block.timestamp + _bound(mode >> 2, 0, 7 days);
            digest = _escrowDigest(keccak256(abi.encode(INITIATE_CLOSE_TYPEHASH, r.id, party, dl)));
            data = abi.encodeCall(
                escrow.initiateCloseWithSig, (r.a, party, dl, _sign(bySeller ? r.sellerKey : r.buyerKey, digest))
            );
            sender = RELAYER;
        } else {
            data = abi.encodeCall(escrow.initiateClose, (r.a));
        }
        if (!_submit(sender, data)) return;
        if (bySig) _useDigest(digest);
        ++closes;
        if (bySeller) ++closesBySeller;
        if (bySig) ++closesWithSig;
        if (escrow.agreementState(r.id).closeDeadline != block.timestamp + r.a.closeWindow) ++payoutMismatches;
    }

    /// A claim in the window. One in eight is made while its payout is blocked (the token blocklists
    /// the recipient, or the seller is sanctioned): it must still succeed, record the entitlement and
    /// pay nothing.
    function _sellerClaim(uint256 seed, uint256 amountSeed, uint256 mode) internal {
        (bool found, uint256 i) = _find(seed, Want.Claimable);
        if (!found) {
            _initiateClose(seed, mode);
            return;
        }
        Record storage r = _records[i];
        uint256 amount = amountSeed % 6 == 0 ? r.a.maxAmount : _bound(amountSeed, 1, r.a.maxAmount);
        address recipient = (mode >> 1) % 2 == 1 ? altRecipients[(mode >> 2) % 2] : r.a.seller;
        bool bySig = mode % 2 == 1;
        uint256 blockedBy = (mode >> 20) % 8; // 0: token blocklist, 1: sanctions, otherwise clear
        bytes32 voucherDigest = _escrowDigest(keccak256(abi.encode(VOUCHER_TYPEHASH, r.id, amount)));
        bytes memory voucherSig = _sign(r.buyerKey, voucherDigest);
        (address sender, bytes memory data, bytes32 claimDigest) =
            _claimCall(r, amount, voucherSig, recipient, bySig, mode >> 3);

        uint256 escrowBefore = usdc.balanceOf(address(escrow));
        uint256 recipientBefore = usdc.balanceOf(recipient);
        bool ok;
        if (blockedBy < 2) {
            address[] memory list = new address[](1);
            list[0] = blockedBy == 0 ? recipient : r.a.seller;
            if (blockedBy == 0) usdc.blocklist(list[0]);
            else oracle.addToSanctionsList(list);
            // Not kept for later replays: once unblocked, resubmitting it is a legitimate retry.
            ok = _submitWithoutReplay(sender, data);
            if (blockedBy == 0) usdc.unBlocklist(list[0]);
            else oracle.removeFromSanctionsList(list);
        } else {
            ok = _submit(sender, data);
        }
        if (!ok) return;

        IAgreementEscrow.AgreementState memory s = escrow.agreementState(r.id);
        uint256 paid = escrowBefore - usdc.balanceOf(address(escrow));
        uint256 expectedPaid = blockedBy < 2 ? 0 : amount;
        if (paid != expectedPaid || usdc.balanceOf(recipient) - recipientBefore != expectedPaid) ++payoutMismatches;
        if (s.settledAmount != amount || s.sellerPaid != (blockedBy >= 2)) ++payoutMismatches;
        r.entitled = amount;
        r.claimed += paid;
        _useDigest(voucherDigest);
        if (bySig) _useDigest(claimDigest);
        ++claims;
        if (bySig) ++claimsWithSig;
        if (amount == r.a.maxAmount) ++fullClaims;
        if (amount == r.a.maxAmount && blockedBy >= 2) ++fullClaimsPaid;
        if (recipient != r.a.seller) ++claimsToOtherRecipient;
        if (blockedBy < 2) ++deferrals;
    }

    /// Pays a deferred entitlement (no voucher needed), directly or by signature, to any recipient.
    function _retryPayout(uint256 i, uint256 mode) internal {
        Record storage r = _records[i];
        IAgreementEscrow.AgreementState memory before = escrow.agreementState(r.id);
        uint256 amount = before.settledAmount;
        address recipient = (mode >> 1) % 2 == 1 ? altRecipients[(mode >> 2) % 2] : r.a.seller;
        bool bySig = mode % 2 == 1;
        (address sender, bytes memory data, bytes32 claimDigest) =
            _claimCall(r, amount, "", recipient, bySig, mode >> 3);

        uint256 escrowBefore = usdc.balanceOf(address(escrow));
        uint256 recipientBefore = usdc.balanceOf(recipient);
        if (!_submit(sender, data)) return;
        uint256 paid = escrowBefore - usdc.balanceOf(address(escrow));
        if (paid != amount || usdc.balanceOf(recipient) - recipientBefore != amount) ++payoutMismatches;
        r.claimed += paid;
        // The same signed claim may have been the one deferred: recording and paying are one use.
        if (bySig && digestUses[claimDigest] == 0) _useDigest(claimDigest);
        ++retries;
        if (before.buyerWithdrawn) ++retriesSettling;
    }

    function _claimCall(
        Record storage r,
        uint256 amount,
        bytes memory voucherSig,
        address recipient,
        bool bySig,
        uint256 deadlineSeed
    ) internal view returns (address sender, bytes memory data, bytes32 claimDigest) {
        if (!bySig) {
            return (r.a.seller, abi.encodeCall(escrow.sellerClaim, (r.a, amount, voucherSig, recipient)), 0);
        }
        uint256 dl = block.timestamp + _bound(deadlineSeed, 0, 1 days);
        claimDigest = _escrowDigest(keccak256(abi.encode(SELLER_CLAIM_TYPEHASH, r.id, amount, recipient, dl)));
        data = abi.encodeCall(
            escrow.sellerClaimWithSig, (r.a, amount, voucherSig, recipient, dl, _sign(r.sellerKey, claimDigest))
        );
        sender = RELAYER;
    }

    function _buyerWithdraw(uint256 i, uint256 mode) internal {
        Record storage r = _records[i];
        IAgreementEscrow.AgreementState memory s = escrow.agreementState(r.id);
        uint256 expected = r.a.maxAmount - s.settledAmount;
        address recipient = (mode >> 1) % 2 == 1 ? altRecipients[(mode >> 2) % 2] : r.a.buyer;
        bool bySig = mode % 2 == 1;
        bytes memory data;
        address sender = r.a.buyer;
        bytes32 digest;
        if (bySig) {
            uint256 dl = block.timestamp + _bound(mode >> 3, 0, 1 days);
            digest = _escrowDigest(keccak256(abi.encode(BUYER_WITHDRAW_TYPEHASH, r.id, recipient, dl)));
            data = abi.encodeCall(escrow.buyerWithdrawWithSig, (r.a, recipient, dl, _sign(r.buyerKey, digest)));
            sender = RELAYER;
        } else {
            data = abi.encodeCall(escrow.buyerWithdraw, (r.a, recipient));
        }

        uint256 escrowBefore = usdc.balanceOf(address(escrow));
        uint256 recipientBefore = usdc.balanceOf(recipient);
        if (!_submit(sender, data)) return;
        uint256 paid = escrowBefore - usdc.balanceOf(address(escrow));
        if (paid != expected || usdc.balanceOf(recipient) - recipientBefore != expected) ++payoutMismatches;
        r.withdrawn += paid;
        if (bySig) _useDigest(digest);
        ++withdrawals;
        if (bySig) ++withdrawalsWithSig;
        if (s.status == IAgreementEscrow.Status.Closing) ++withdrawalsWithoutClaim;
        else if (!s.sellerPaid) ++withdrawalsBeforeSellerPaid;
    }

    // =============================================================================================
    // Invalid operations: each must revert with exactly the expected error
    // =============================================================================================

    function _tryInvalid(uint256 seed, uint256 kind) internal returns (bool attempted) {
        bool found;
        uint256 i;
        if (kind == 0 || kind == 11) {
            (found, i) = _find(seed, Want.Active);
        } else if (kind == 1 || kind == 2 || kind == 4 || kind == 6 || kind == 8) {
            (found, i) = _find(seed, Want.Claimable);
        } else if (kind == 9) {
            (found, i) = _find(seed, Want.Deferred);
        } else if (kind == 10) {
            (found, i) = _find(seed, Want.SellerPaidOpen);
        } else if (kind == 3) {
            (found, i) = _find(seed, Want.ClosingElapsed);
        } else if (kind == 5) {
            (found, i) = _find(seed, Want.Active);
        } else if (kind == 7) {
            (found, i) = _find(seed, Want.Any);
        } else {
            (found, i) = _find(seed, Want.Withdrawable); // 12
        }
        if (!found) return false;

        Record storage r = _records[i];
        IAgreementEscrow.AgreementState memory s = escrow.agreementState(r.id);
        address sender;
        bytes memory data;
        bytes memory expected;

        if (kind == 0) {
            // A stranger closes.
            sender = STRANGER;
            data = abi.encodeCall(escrow.initiateClose, (r.a));
            expected = abi.encodeWithSelector(IAgreementEscrow.NotBuyerOrSeller.selector, STRANGER);
        } else if (kind == 1) {
            // Voucher above the escrowed amount (validly signed).
            uint256 amount = r.a.maxAmount + 1 + (seed % 1000);
            sender = r.a.seller;
            data = abi.encodeCall(escrow.sellerClaim, (r.a, amount, _voucher(r, amount, r.buyerKey), r.a.seller));
            expected = abi.encodeWithSelector(IAgreementEscrow.InvalidVoucherAmount.selector, amount, r.a.maxAmount);
        } else if (kind == 2) {
            // Voucher signed by the seller itself.
            uint256 amount = _bound(seed, 1, r.a.maxAmount);
            sender = r.a.seller;
            data = abi.encodeCall(escrow.sellerClaim, (r.a, amount, _voucher(r, amount, r.sellerKey), r.a.seller));
            expected = abi.encodeWithSelector(IAgreementEscrow.InvalidVoucher.selector, r.id, amount);
        } else if (kind == 3) {
            // Claim after the close window.
            uint256 amount = _bound(seed, 1, r.a.maxAmount);
            sender = r.a.seller;
            data = abi.encodeCall(escrow.sellerClaim, (r.a, amount, _voucher(r, amount, r.buyerKey), r.a.seller));
            expected = abi.encodeWithSelector(
                IAgreementEscrow.CloseWindowElapsed.selector, r.id, s.closeDeadline, block.timestamp
            );
        } else if (kind == 4) {
            // Withdraw while the window is open and nothing was claimed.
            sender = r.a.buyer;
            data = abi.encodeCall(escrow.buyerWithdraw, (r.a, r.a.buyer));
            expected = abi.encodeWithSelector(
                IAgreementEscrow.CloseWindowOpen.selector, r.id, s.closeDeadline, block.timestamp
            );
        } else if (kind == 5) {
            // Withdraw before any close.
            sender = r.a.buyer;
            data = abi.encodeCall(escrow.buyerWithdraw, (r.a, r.a.buyer));
            expected = abi.encodeWithSelector(
                IAgreementEscrow.UnexpectedStatus.selector,
                r.id,
                IAgreementEscrow.Status.Closing,
                IAgreementEscrow.Status.Active
            );
        } else if (kind == 6) {
            // A claim authorization signed by the buyer instead of the seller.
            uint256 amount = _bound(seed, 1, r.a.maxAmount);
            uint256 dl = block.timestamp + 1 hours;
            bytes32 digest = _escrowDigest(keccak256(abi.encode(SELLER_CLAIM_TYPEHASH, r.id, amount, STRANGER, dl)));
            sender = RELAYER;
            data = abi.encodeCall(
                escrow.sellerClaimWithSig,
                (r.a, amount, _voucher(r, amount, r.buyerKey), STRANGER, dl, _sign(r.buyerKey, digest))
            );
            expected = abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, r.a.seller);
        } else if (kind == 7) {
            // Re-activation of known terms, with fresh authorizations.
            uint256 vb = block.timestamp + 1 hours;
            (ReceiveAuthorization memory d,) =
                _receiveAuth(r.buyerKey, r.a.buyer, address(escrow), r.a.maxAmount, r.id, vb);
            ReceiveAuthorization memory f;
            if (r.a.infraFee != 0) {
                (f,) = _receiveAuth(
                    r.buyerKey,
                    r.a.buyer,
                    address(feeCollector),
                    r.a.infraFee,
                    feeCollector.feeAuthorizationNonce(r.id, r.a.infraFee),
                    vb
                );
            }
            sender = RELAYER;
            data = abi.encodeCall(escrow.activateWithAuthorization, (r.a, d, f));
            expected = abi.encodeWithSelector(
                IAgreementEscrow.UnexpectedStatus.selector, r.id, IAgreementEscrow.Status.None, s.status
            );
        } else if (kind == 8) {
            // A stranger claims, with the buyer's genuine voucher.
            uint256 amount = _bound(seed, 1, r.a.maxAmount);
            sender = STRANGER;
            data = abi.encodeCall(escrow.sellerClaim, (r.a, amount, _voucher(r, amount, r.buyerKey), STRANGER));
            expected = abi.encodeWithSelector(IAgreementEscrow.NotParty.selector, STRANGER, r.a.seller);
        } else if (kind == 9) {
            // A deferred payout retried for another amount than the recorded entitlement.
            uint256 amount = s.settledAmount + 1 + (seed % 1000);
            sender = r.a.seller;
            data = abi.encodeCall(escrow.sellerClaim, (r.a, amount, bytes(""), r.a.seller));
            expected =
                abi.encodeWithSelector(IAgreementEscrow.ClaimAmountMismatch.selector, r.id, s.settledAmount, amount);
        } else if (kind == 10) {
            // A paid seller claims again, with a higher genuine voucher.
            uint256 amount = r.a.maxAmount;
            sender = r.a.seller;
            data = abi.encodeCall(escrow.sellerClaim, (r.a, amount, _voucher(r, amount, r.buyerKey), r.a.seller));
            expected = abi.encodeWithSelector(IAgreementEscrow.SellerAlreadyPaid.selector, r.id);
        } else if (kind == 11) {
            // An expired close authorization.
            uint256 dl = block.timestamp - 1;
            bytes32 digest = _escrowDigest(keccak256(abi.encode(INITIATE_CLOSE_TYPEHASH, r.id, r.a.buyer, dl)));
            sender = RELAYER;
            data = abi.encodeCall(escrow.initiateCloseWithSig, (r.a, r.a.buyer, dl, _sign(r.buyerKey, digest)));
            expected = abi.encodeWithSelector(IAgreementEscrow.AuthorizationExpired.selector, dl, block.timestamp);
        } else {
            // Payout to the escrow itself.
            sender = r.a.buyer;
            data = abi.encodeCall(escrow.buyerWithdraw, (r.a, address(escrow)));
            expected = abi.encodeWithSelector(IAgreementEscrow.InvalidRecipient.selector, address(escrow));
        }
        _expectRevert(sender, data, expected);
        return true;
    }

    function _expectRevert(address sender, bytes memory data, bytes memory expected) internal {
        vm.prank(sender);
        (bool ok, bytes memory ret) = address(escrow).call(data);
        if (ok) {
            ++unexpectedSuccesses;
            lastAnomaly = data;
        } else if (keccak256(ret) != keccak256(expected)) {
            ++wrongErrors;
            lastAnomaly = ret;
        } else {
            ++invalidRejected;
        }
    }

    // =============================================================================================
    // Observation of status transitions
    // =============================================================================================

    function _observe() internal {
        for (uint256 i = 0; i < _records.length; ++i) {
            Record storage r = _records[i];
            IAgreementEscrow.Status now_ = escrow.agreementState(r.id).status;
            IAgreementEscrow.Status last = r.lastStatus;
            if (now_ == last) continue;
            ++transitionCount[uint256(last)][uint256(now_)];
            if (!_allowed(last, now_)) ++badTransitions;
            r.lastStatus = now_;
        }
    }

    function _allowed(IAgreementEscrow.Status from, IAgreementEscrow.Status to) internal pure returns (bool) {
        if (from == IAgreementEscrow.Status.None) return to == IAgreementEscrow.Status.Active;
        if (from == IAgreementEscrow.Status.Active) return to == IAgreementEscrow.Status.Closing;
        if (from == IAgreementEscrow.Status.Closing) {
            return to == IAgreementEscrow.Status.SellerClaimed || to == IAgreementEscrow.Status.Settled;
        }
        if (from == IAgreementEscrow.Status.SellerClaimed) return to == IAgreementEscrow.Status.Settled;
        return false; // nothing leaves Settled
    }

    // =============================================================================================
    // Helpers
    // =============================================================================================

    enum Want {
        Active,
        Claimable,
        ClosingElapsed,
        Withdrawable,
        Deferred,
        SellerPaidOpen,
        Any
    }

    function _find(uint256 seed, Want want) internal view returns (bool, uint256) {
        uint256 n = _records.length;
        if (n == 0) return (false, 0);
        uint256 start = seed % n;
        for (uint256 k = 0; k < n; ++k) {
            uint256 i = (start + k) % n;
            IAgreementEscrow.AgreementState memory s = escrow.agreementState(_records[i].id);
            bool open = block.timestamp < s.closeDeadline;
            bool ok;
            if (want == Want.Active) {
                ok = s.status == IAgreementEscrow.Status.Active;
            } else if (want == Want.Claimable) {
                ok = s.status == IAgreementEscrow.Status.Closing && open;
            } else if (want == Want.ClosingElapsed) {
                ok = s.status == IAgreementEscrow.Status.Closing && !open;
            } else if (want == Want.Withdrawable) {
                ok = (s.status == IAgreementEscrow.Status.SellerClaimed && !s.buyerWithdrawn)
                    || (s.status == IAgreementEscrow.Status.Closing && !open);
            } else if (want == Want.Deferred) {
                ok = s.status == IAgreementEscrow.Status.SellerClaimed && !s.sellerPaid;
            } else if (want == Want.SellerPaidOpen) {
                ok = s.status == IAgreementEscrow.Status.SellerClaimed && s.sellerPaid;
            } else {
                ok = s.status != IAgreementEscrow.Status.None;
            }
            if (ok) return (true, i);
        }
        return (false, 0);
    }

    function _earliestOpenWindow() internal view returns (bool found, uint256 index) {
        uint256 best = type(uint256).max;
        for (uint256 i = 0; i < _records.length; ++i) {
            IAgreementEscrow.AgreementState memory s = escrow.agreementState(_records[i].id);
            if (s.status == IAgreementEscrow.Status.Closing && s.closeDeadline < best) {
                best = s.closeDeadline;
                index = i;
                found = true;
            }
        }
    }

    /// Submits a call expected to succeed, then immediately submits it again (which must revert), and
    /// records it for later replays. Returns whether the first submission succeeded.
    function _submit(address sender, bytes memory data) internal returns (bool) {
        if (!_submitWithoutReplay(sender, data)) return false;
        _replays.push(Replay({sender: sender, data: data}));
        return true;
    }

    /// `_submit` without keeping the call for later replays.
    function _submitWithoutReplay(address sender, bytes memory data) internal returns (bool) {
        vm.prank(sender);
        (bool ok, bytes memory ret) = address(escrow).call(data);
        if (!ok) {
            _unexpectedFailure(ret);
            return false;
        }
        vm.prank(sender);
        (bool again,) = address(escrow).call(data);
        if (again) {
            ++replaysAccepted;
            lastAnomaly = data;
        } else {
            ++replaysRejected;
        }
        return true;
    }

    function _unexpectedFailure(bytes memory err) internal {
        ++unexpectedFailures;
        lastAnomaly = err;
    }

    function _useDigest(bytes32 digest) internal {
        uint256 uses = ++digestUses[digest];
        if (uses == 1) ++digestsUsed;
        if (uses > maxDigestUses) maxDigestUses = uses;
    }

    function _voucher(Record storage r, uint256 amount, uint256 key) internal view returns (bytes memory) {
        return _sign(key, _escrowDigest(keccak256(abi.encode(VOUCHER_TYPEHASH, r.id, amount))));
    }

    function _agreementId(IAgreementEscrow.Agreement memory a) internal view returns (bytes32) {
        return _escrowDigest(_termsHash(a));
    }

    function _termsHash(IAgreementEscrow.Agreement memory a) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                AGREEMENT_TYPEHASH, a.buyer, a.seller, a.token, a.maxAmount, a.infraFee, a.expiry, a.closeWindow, a.salt
            )
        );
    }

    function _escrowDigest(bytes32 structHash) internal view returns (bytes32) {
        bytes32 domain = keccak256(
            abi.encode(
                DOMAIN_TYPEHASH, keccak256("Pactum Agreement Escrow"), keccak256("1"), block.chainid, address(escrow)
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", domain, structHash));
    }

    function _receiveAuth(uint256 key, address from, address to, uint256 value, bytes32 nonce, uint256 validBefore)
        internal
        view
        returns (ReceiveAuthorization memory auth, bytes32 digest)
    {
        bytes32 structHash = keccak256(abi.encode(RECEIVE_TYPEHASH, from, to, value, 0, validBefore, nonce));
        digest = keccak256(abi.encodePacked("\x19\x01", usdc.DOMAIN_SEPARATOR(), structHash));
        auth = ReceiveAuthorization({validAfter: 0, validBefore: validBefore, signature: _sign(key, digest)});
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (x >= min && x <= max) return x;
        uint256 size = max - min + 1;
        if (size == 0) return x;
        return min + (x % size);
    }
}
