// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test} from "./Test.sol";
import {AgreementEscrow} from "../../../contracts/AgreementEscrow.sol";
import {InfraFeeCollector} from "../../../contracts/InfraFeeCollector.sol";
import {IAgreementEscrow} from "../../../contracts/interfaces/IAgreementEscrow.sol";
import {ReceiveAuthorization, PermitSignature} from "../../../contracts/interfaces/ITokenAuthorizations.sol";
import {LocalUSDC} from "../../../contracts/local/LocalUSDC.sol";
import {LocalSanctionsOracle} from "../../../contracts/local/LocalSanctionsOracle.sol";

/// @notice Deploys the full contract set and signs every message type the way a party's wallet would:
///         digests are rebuilt here from the EIP-712 spec, not taken from the contracts' own helpers.
abstract contract EscrowFixture is Test {
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    string internal constant AGREEMENT_TYPE =
        "Agreement(address buyer,address seller,address token,uint256 maxAmount,uint256 infraFee,uint64 expiry,uint32 closeWindow,bytes32 salt)";

    uint256 internal constant BUYER_KEY = 0xB0B;
    uint256 internal constant SELLER_KEY = 0x5E11E2;
    uint256 internal constant STRANGER_KEY = 0xBAD;

    uint256 internal constant MAX_AMOUNT = 100e6; // 100 USDC
    uint256 internal constant INFRA_FEE = 1e6; // 1 USDC
    uint32 internal constant CLOSE_WINDOW = 1 days;
    uint256 internal constant BUYER_FUNDS = 1_000_000e6;

    address internal buyer;
    address internal seller;
    address internal stranger;
    address internal relayer = address(0x4E1A7E4);
    address internal admin = address(0xAD);
    address internal treasury = address(0x7EA5);

    LocalUSDC internal usdc;
    LocalSanctionsOracle internal oracle;
    InfraFeeCollector internal feeCollector;
    AgreementEscrow internal escrow;

    uint256 private _saltCounter;

    function setUp() public virtual {
        vm.warp(1_750_000_000);
        buyer = vm.addr(BUYER_KEY);
        seller = vm.addr(SELLER_KEY);
        stranger = vm.addr(STRANGER_KEY);
        vm.label(buyer, "buyer");
        vm.label(seller, "seller");
        vm.label(stranger, "stranger");
        vm.label(relayer, "relayer");

        usdc = new LocalUSDC(address(this));
        oracle = new LocalSanctionsOracle(address(this));
        (feeCollector, escrow) = deployEscrow(address(oracle));
        vm.label(address(usdc), "usdc");
        vm.label(address(escrow), "escrow");
        vm.label(address(feeCollector), "feeCollector");

        usdc.mint(buyer, BUYER_FUNDS);
        // Give every recipient a non-zero balance once, so measurements reflect the steady state
        // (an account's first ever credit costs a zero-to-non-zero storage write).
        usdc.mint(seller, 1);
    }

    /// @notice Deploys a fee collector and the escrow it is bound to (its address predicted).
    function deployEscrow(address sanctionsOracle) internal returns (InfraFeeCollector fc, AgreementEscrow esc) {
        address predicted = vm.computeCreateAddress(address(this), vm.getNonce(address(this)) + 1);
        fc = new InfraFeeCollector(predicted, admin, treasury);
        esc = new AgreementEscrow(sanctionsOracle, address(fc));
        assertEq(address(esc), predicted, "escrow address prediction");
    }

    // ---------------------------------------------------------------------------------------------
    // Terms
    // ---------------------------------------------------------------------------------------------

    function terms() internal returns (IAgreementEscrow.Agreement memory) {
        return terms(MAX_AMOUNT, INFRA_FEE);
    }

    function terms(uint256 maxAmount, uint256 infraFee) internal returns (IAgreementEscrow.Agreement memory a) {
        a = IAgreementEscrow.Agreement({
            buyer: buyer,
            seller: seller,
            token: address(usdc),
            maxAmount: maxAmount,
            infraFee: infraFee,
            expiry: uint64(block.timestamp + 30 days),
            closeWindow: CLOSE_WINDOW,
            salt: keccak256(abi.encode("agreement", ++_saltCounter))
        });
    }

    // ---------------------------------------------------------------------------------------------
    // EIP-712 digests, rebuilt independently of the contracts
    // ---------------------------------------------------------------------------------------------

    function domainSeparator(string memory name, string memory version, address verifyingContract)
        internal
        view
        returns (bytes32)
    {
        return keccak256(
            abi.encode(
                DOMAIN_TYPEHASH, keccak256(bytes(name)), keccak256(bytes(version)), block.chainid, verifyingContract
            )
        );
    }

    function escrowDigest(AgreementEscrow esc, bytes32 structHash) internal view returns (bytes32) {
        return keccak256(
            abi.encodePacked("\x19\x01", domainSeparator("Pactum Agreement Escrow", "1", address(esc)), structHash)
        );
    }

    function idOf(IAgreementEscrow.Agreement memory a) internal view returns (bytes32) {
        return idOf(escrow, a);
    }

    function idOf(AgreementEscrow esc, IAgreementEscrow.Agreement memory a) internal view returns (bytes32) {
        return escrowDigest(esc, termsHash(a));
    }

    /// @notice EIP-712 `hashStruct(agreement)`.
    function termsHash(IAgreementEscrow.Agreement memory a) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256(bytes(AGREEMENT_TYPE)),
                a.buyer,
                a.seller,
                a.token,
                a.maxAmount,
                a.infraFee,
                a.expiry,
                a.closeWindow,
                a.salt
            )
        );
    }

    function feeNonce(bytes32 id, uint256 amount) internal view returns (bytes32) {
        bytes32 structHash =
            keccak256(abi.encode(keccak256("InfraFee(bytes32 agreementId,uint256 amount)"), id, amount));
        return keccak256(
            abi.encodePacked("\x19\x01", domainSeparator("Pactum Infra Fee", "1", address(feeCollector)), structHash)
        );
    }

    function sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    // ---------------------------------------------------------------------------------------------
    // Token authorizations (signed under the token's domain)
    // ---------------------------------------------------------------------------------------------

    function receiveAuthorization(uint256 key, address to, uint256 value, bytes32 nonce, uint256 validBefore)
        internal
        view
        returns (ReceiveAuthorization memory)
    {
        bytes32 structHash = keccak256(
            abi.encode(usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), vm.addr(key), to, value, 0, validBefore, nonce)
        );
        bytes32 digest =
            keccak256(abi.encodePacked("\x19\x01", domainSeparator("USD Coin", "2", address(usdc)), structHash));
        return ReceiveAuthorization({validAfter: 0, validBefore: validBefore, signature: sign(key, digest)});
    }

    function depositAuthorization(IAgreementEscrow.Agreement memory a)
        internal
        view
        returns (ReceiveAuthorization memory)
    {
        return receiveAuthorization(BUYER_KEY, address(escrow), a.maxAmount, idOf(a), block.timestamp + 1 hours);
    }

    function feeAuthorization(IAgreementEscrow.Agreement memory a) internal view returns (ReceiveAuthorization memory) {
        if (a.infraFee == 0) return ReceiveAuthorization(0, 0, "");
        return receiveAuthorization(
            BUYER_KEY, address(feeCollector), a.infraFee, feeNonce(idOf(a), a.infraFee), block.timestamp + 1 hours
        );
    }

    function permitSignature(uint256 key, address spender, uint256 value, uint256 deadline)
        internal
        view
        returns (PermitSignature memory)
    {
        address owner = vm.addr(key);
        bytes32 structHash =
            keccak256(abi.encode(usdc.PERMIT_TYPEHASH(), owner, spender, value, usdc.nonces(owner), deadline));
        bytes32 digest =
            keccak256(abi.encodePacked("\x19\x01", domainSeparator("USD Coin", "2", address(usdc)), structHash));
        return PermitSignature({deadline: deadline, signature: sign(key, digest)});
    }

    // ---------------------------------------------------------------------------------------------
    // Party authorizations (signed under the escrow's domain)
    // ---------------------------------------------------------------------------------------------

    function activationSignature(uint256 key, IAgreementEscrow.Agreement memory a, uint256 deadline)
        internal
        view
        returns (bytes memory)
    {
        return activationSignature(key, escrow, a, deadline);
    }

    /// @notice The buyer's `Activation` with the terms nested as an EIP-712 struct.
    function activationSignature(
        uint256 key,
        AgreementEscrow esc,
        IAgreementEscrow.Agreement memory a,
        uint256 deadline
    ) internal view returns (bytes memory) {
        return sign(key, escrowDigest(esc, activationStructHash(a, deadline)));
    }

    function activationStructHash(IAgreementEscrow.Agreement memory a, uint256 deadline)
        internal
        pure
        returns (bytes32)
    {
        bytes32 activationTypehash = keccak256(
            abi.encodePacked("Activation(Agreement agreement,uint256 deadline)", AGREEMENT_TYPE)
        );
        return keccak256(abi.encode(activationTypehash, termsHash(a), deadline));
    }

    function voucher(uint256 key, bytes32 id, uint256 cumulativeAmount) internal view returns (bytes memory) {
        return sign(key, voucherDigest(id, cumulativeAmount));
    }

    function voucherDigest(bytes32 id, uint256 cumulativeAmount) internal view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(keccak256("Voucher(bytes32 agreementId,uint256 cumulativeAmount)"), id, cumulativeAmount)
        );
        return escrowDigest(escrow, structHash);
    }

    function closeDigest(bytes32 id, address party, uint256 deadline) internal view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("InitiateClose(bytes32 agreementId,address party,uint256 deadline)"), id, party, deadline
            )
        );
        return escrowDigest(escrow, structHash);
    }

    function claimDigest(bytes32 id, uint256 amount, address recipient, uint256 deadline)
        internal
        view
        returns (bytes32)
    {
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("SellerClaim(bytes32 agreementId,uint256 amount,address recipient,uint256 deadline)"),
                id,
                amount,
                recipient,
                deadline
            )
        );
        return escrowDigest(escrow, structHash);
    }

    function withdrawDigest(bytes32 id, address recipient, uint256 deadline) internal view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("BuyerWithdraw(bytes32 agreementId,address recipient,uint256 deadline)"),
                id,
                recipient,
                deadline
            )
        );
        return escrowDigest(escrow, structHash);
    }

    // ---------------------------------------------------------------------------------------------
    // Lifecycle shortcuts
    // ---------------------------------------------------------------------------------------------

    function activate(IAgreementEscrow.Agreement memory a) internal returns (bytes32 id) {
        ReceiveAuthorization memory deposit = depositAuthorization(a);
        ReceiveAuthorization memory fee = feeAuthorization(a);
        vm.prank(relayer);
        id = escrow.activateWithAuthorization(a, deposit, fee);
    }

    function activateAndClose(IAgreementEscrow.Agreement memory a) internal returns (bytes32 id) {
        id = activate(a);
        vm.prank(a.buyer);
        escrow.initiateClose(a);
    }

    function status(bytes32 id) internal view returns (IAgreementEscrow.Status) {
        return escrow.agreementState(id).status;
    }

    function assertStatus(bytes32 id, IAgreementEscrow.Status expected, string memory message) internal view {
        assertEq(uint256(status(id)), uint256(expected), message);
    }

    function sanction(address account) internal {
        address[] memory list = new address[](1);
        list[0] = account;
        oracle.addToSanctionsList(list);
    }
}
