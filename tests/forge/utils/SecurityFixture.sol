// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EscrowFixture} from "./EscrowFixture.sol";
import {AgreementEscrow} from "../../../contracts/AgreementEscrow.sol";
import {InfraFeeCollector} from "../../../contracts/InfraFeeCollector.sol";
import {IAgreementEscrow} from "../../../contracts/interfaces/IAgreementEscrow.sol";
import {ReceiveAuthorization, PermitSignature} from "../../../contracts/interfaces/ITokenAuthorizations.sol";

/// @notice Extra helpers for the security suites (replay, reentrancy, ERC-1271, blocklist, sanctions,
///         fuzz): every party message can be signed for an arbitrary escrow deployment and by an
///         arbitrary key on behalf of an arbitrary signer address (smart wallets). Digests are rebuilt
///         from the EIP-712 spec, as in {EscrowFixture}, never taken from the contracts.
abstract contract SecurityFixture is EscrowFixture {
    bytes32 internal constant VOUCHER_TYPEHASH_ = keccak256("Voucher(bytes32 agreementId,uint256 cumulativeAmount)");
    bytes32 internal constant INITIATE_CLOSE_TYPEHASH_ =
        keccak256("InitiateClose(bytes32 agreementId,address party,uint256 deadline)");
    bytes32 internal constant SELLER_CLAIM_TYPEHASH_ =
        keccak256("SellerClaim(bytes32 agreementId,uint256 amount,address recipient,uint256 deadline)");
    bytes32 internal constant BUYER_WITHDRAW_TYPEHASH_ =
        keccak256("BuyerWithdraw(bytes32 agreementId,address recipient,uint256 deadline)");
    bytes32 internal constant RECEIVE_TYPEHASH_ = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    /// @dev secp256k1 group order, for building malleated (high-s) signatures.
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    address internal carol = address(0xCA201); // an alternative recipient chosen by a party
    address internal dave = address(0xDA7E); // another one

    // ---------------------------------------------------------------------------------------------
    // Struct hashes
    // ---------------------------------------------------------------------------------------------

    function voucherHash(bytes32 id, uint256 amount) internal pure returns (bytes32) {
        return keccak256(abi.encode(VOUCHER_TYPEHASH_, id, amount));
    }

    function closeHash(bytes32 id, address party, uint256 deadline) internal pure returns (bytes32) {
        return keccak256(abi.encode(INITIATE_CLOSE_TYPEHASH_, id, party, deadline));
    }

    function claimHash(bytes32 id, uint256 amount, address recipient, uint256 deadline)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(SELLER_CLAIM_TYPEHASH_, id, amount, recipient, deadline));
    }

    function withdrawHash(bytes32 id, address recipient, uint256 deadline) internal pure returns (bytes32) {
        return keccak256(abi.encode(BUYER_WITHDRAW_TYPEHASH_, id, recipient, deadline));
    }

    // ---------------------------------------------------------------------------------------------
    // Party signatures for any escrow deployment (under the current block.chainid)
    // ---------------------------------------------------------------------------------------------

    function voucherOn(AgreementEscrow esc, uint256 key, bytes32 id, uint256 amount)
        internal
        view
        returns (bytes memory)
    {
        return sign(key, escrowDigest(esc, voucherHash(id, amount)));
    }

    function closeSigOn(AgreementEscrow esc, uint256 key, bytes32 id, address party, uint256 deadline)
        internal
        view
        returns (bytes memory)
    {
        return sign(key, escrowDigest(esc, closeHash(id, party, deadline)));
    }

    function claimSigOn(
        AgreementEscrow esc,
        uint256 key,
        bytes32 id,
        uint256 amount,
        address recipient,
        uint256 deadline
    ) internal view returns (bytes memory) {
        return sign(key, escrowDigest(esc, claimHash(id, amount, recipient, deadline)));
    }

    function withdrawSigOn(AgreementEscrow esc, uint256 key, bytes32 id, address recipient, uint256 deadline)
        internal
        view
        returns (bytes memory)
    {
        return sign(key, escrowDigest(esc, withdrawHash(id, recipient, deadline)));
    }

    // Shortcuts for the fixture's escrow.

    function closeSig(uint256 key, bytes32 id, address party, uint256 deadline) internal view returns (bytes memory) {
        return closeSigOn(escrow, key, id, party, deadline);
    }

    function claimSig(uint256 key, bytes32 id, uint256 amount, address recipient, uint256 deadline)
        internal
        view
        returns (bytes memory)
    {
        return claimSigOn(escrow, key, id, amount, recipient, deadline);
    }

    function withdrawSig(uint256 key, bytes32 id, address recipient, uint256 deadline)
        internal
        view
        returns (bytes memory)
    {
        return withdrawSigOn(escrow, key, id, recipient, deadline);
    }

    // ---------------------------------------------------------------------------------------------
    // Token authorizations (LocalUSDC domain) for any payer address and any payee
    // ---------------------------------------------------------------------------------------------

    function feeNonceOn(InfraFeeCollector fc, bytes32 id, uint256 amount) internal view returns (bytes32) {
        bytes32 structHash =
            keccak256(abi.encode(keccak256("InfraFee(bytes32 agreementId,uint256 amount)"), id, amount));
        return
            keccak256(abi.encodePacked("\x19\x01", domainSeparator("Pactum Infra Fee", "1", address(fc)), structHash));
    }

    function usdcDigest(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator("USD Coin", "2", address(usdc)), structHash));
    }

    /// @notice A `ReceiveWithAuthorization` from `from`, signed by `key` (which is `from`'s key for an
    ///         EOA, or the owner key a smart wallet `from` validates).
    function receiveAuthFrom(uint256 key, address from, address to, uint256 value, bytes32 nonce, uint256 validBefore)
        internal
        view
        returns (ReceiveAuthorization memory)
    {
        bytes32 structHash = keccak256(abi.encode(RECEIVE_TYPEHASH_, from, to, value, 0, validBefore, nonce));
        return
            ReceiveAuthorization({
                validAfter: 0, validBefore: validBefore, signature: sign(key, usdcDigest(structHash))
            });
    }

    function depositAuthOn(AgreementEscrow esc, uint256 key, IAgreementEscrow.Agreement memory a)
        internal
        view
        returns (ReceiveAuthorization memory)
    {
        return receiveAuthFrom(key, a.buyer, address(esc), a.maxAmount, idOf(esc, a), block.timestamp + 1 hours);
    }

    function feeAuthOn(AgreementEscrow esc, InfraFeeCollector fc, uint256 key, IAgreementEscrow.Agreement memory a)
        internal
        view
        returns (ReceiveAuthorization memory)
    {
        if (a.infraFee == 0) return ReceiveAuthorization(0, 0, "");
        return receiveAuthFrom(
            key, a.buyer, address(fc), a.infraFee, feeNonceOn(fc, idOf(esc, a), a.infraFee), block.timestamp + 1 hours
        );
    }

    /// @notice Activates `a` on `esc` (bound to `fc`) with authorizations signed by `key`.
    function activateOn(AgreementEscrow esc, InfraFeeCollector fc, uint256 key, IAgreementEscrow.Agreement memory a)
        internal
        returns (bytes32 id)
    {
        ReceiveAuthorization memory deposit = depositAuthOn(esc, key, a);
        ReceiveAuthorization memory fee = feeAuthOn(esc, fc, key, a);
        vm.prank(relayer);
        id = esc.activateWithAuthorization(a, deposit, fee);
    }

    // ---------------------------------------------------------------------------------------------
    // Misc
    // ---------------------------------------------------------------------------------------------

    function copyTerms(IAgreementEscrow.Agreement memory a) internal pure returns (IAgreementEscrow.Agreement memory) {
        return IAgreementEscrow.Agreement(
            a.buyer, a.seller, a.token, a.maxAmount, a.infraFee, a.expiry, a.closeWindow, a.salt
        );
    }

    function unexpectedStatus(bytes32 id, IAgreementEscrow.Status expected, IAgreementEscrow.Status actual)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodeWithSelector(IAgreementEscrow.UnexpectedStatus.selector, id, expected, actual);
    }

    function invalidSignature(address signer) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAgreementEscrow.InvalidSignature.selector, signer);
    }

    function unsanction(address account) internal {
        address[] memory list = new address[](1);
        list[0] = account;
        oracle.removeFromSanctionsList(list);
    }

    /// @notice The same ECDSA signature with s' = n - s and the parity flipped: recovers the same
    ///         address, but a strict (low-s) verifier must refuse it.
    function malleate(bytes memory signature) internal pure returns (bytes memory) {
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(signature, 0x20))
            s := mload(add(signature, 0x40))
            v := byte(0, mload(add(signature, 0x60)))
        }
        return abi.encodePacked(r, bytes32(SECP256K1_N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
    }

    function assertBytesEq(bytes memory a, bytes memory b, string memory message) internal pure {
        if (keccak256(a) != keccak256(b)) fail(string.concat(message, ": bytes differ"));
    }
}
