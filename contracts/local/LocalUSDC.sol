// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IERC3009} from "../interfaces/IERC3009.sol";
import {IERC20PermitBytes} from "../interfaces/IERC20PermitBytes.sol";

/// @title LocalUSDC
/// @notice A local stand-in for Circle's USDC (FiatToken v2.2), for development chains and tests only.
///         Faithful in what the escrow depends on:
///         - 6 decimals and the EIP-712 domain ("USD Coin", "2");
///         - EIP-2612 `permit`, in the standard (v, r, s) form and USDC's `bytes` form;
///         - EIP-3009 `transferWithAuthorization`, `receiveWithAuthorization` (payee-only) and
///           `cancelAuthorization`, each in (v, r, s) and `bytes` form, with random 32-byte nonces;
///         - signatures verified for EOAs (ECDSA, low-s) and ERC-1271 contract wallets;
///         - a blocklist: any transfer from or to a blocklisted address, and any approval involving
///           one, reverts. As in FiatToken v2.2, the blocklist flag is the top bit of the account's
///           balance slot, so screening costs no extra storage read and gas figures measured
///           against this token carry over to USDC.
///         - pausing: while paused, transfers, approvals, permits, authorizations and minting revert;
///         - the token blocklists its own address, so tokens cannot be sent to the contract.
///         The owner mints, pauses and manages the blocklist (USDC splits these across roles).
contract LocalUSDC is IERC20, IERC20Errors, IERC3009, IERC20PermitBytes, EIP712, Nonces, Ownable {
    uint256 private constant BLOCKLIST_FLAG = 1 << 255;
    uint256 private constant BALANCE_MASK = BLOCKLIST_FLAG - 1;

    /// @dev Balance in the low 255 bits, blocklist flag in the top bit.
    mapping(address account => uint256) private _balanceAndBlocklistState;
    mapping(address owner => mapping(address spender => uint256)) private _allowances;
    uint256 private _totalSupply;

    bytes32 public constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");
    bytes32 public constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 public constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 public constant CANCEL_AUTHORIZATION_TYPEHASH =
        keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");

    mapping(address authorizer => mapping(bytes32 nonce => bool used)) private _authorizationStates;

    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);
    event Blocklisted(address indexed account);
    event UnBlocklisted(address indexed account);
    event Pause();
    event Unpause();

    error AccountBlocklisted(address account);
    error PermitExpired(uint256 deadline);
    error InvalidSignature(address signer);
    error AuthorizationNotYetValid(uint256 validAfter);
    error AuthorizationExpired(uint256 validBefore);
    error AuthorizationAlreadyUsed(address authorizer, bytes32 nonce);
    error CallerMustBePayee(address caller, address payee);

    error SupplyOverflow(uint256 totalSupply);
    error InvalidMintAmount();
    error TokenPaused();

    /// @notice Whether the token is paused (FiatToken's `paused()`).
    bool public paused;

    constructor(address initialOwner) EIP712("USD Coin", "2") Ownable(initialOwner) {
        _balanceAndBlocklistState[address(this)] = BLOCKLIST_FLAG;
        emit Blocklisted(address(this));
    }

    // ----- pausing (owner) -----

    function pause() external onlyOwner {
        paused = true;
        emit Pause();
    }

    function unpause() external onlyOwner {
        paused = false;
        emit Unpause();
    }

    function _requireNotPaused() private view {
        if (paused) revert TokenPaused();
    }

    // ----- ERC-20 -----

    function name() external pure returns (string memory) {
        return "USD Coin";
    }

    function symbol() external pure returns (string memory) {
        return "USDC";
    }

    function decimals() external pure returns (uint8) {
        return 6;
    }

    function totalSupply() external view returns (uint256) {
        return _totalSupply;
    }

    function balanceOf(address account) public view returns (uint256) {
        return _balanceAndBlocklistState[account] & BALANCE_MASK;
    }

    function allowance(address owner, address spender) external view returns (uint256) {
        return _allowances[owner][spender];
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        _approve(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        _requireNotBlocklisted(msg.sender);
        // As in FiatToken, every allowance is spent, an unlimited one included.
        uint256 allowed = _allowances[from][msg.sender];
        if (allowed < value) revert ERC20InsufficientAllowance(msg.sender, allowed, value);
        unchecked {
            // allowed >= value, checked above.
            _allowances[from][msg.sender] = allowed - value;
        }
        _transfer(from, to, value);
        return true;
    }

    // ----- minting and blocklist (owner) -----

    function mint(address to, uint256 amount) external onlyOwner {
        _requireNotPaused();
        if (amount == 0) revert InvalidMintAmount();
        if (to == address(0)) revert ERC20InvalidReceiver(address(0));
        _requireNotBlocklisted(to);
        uint256 supply = _totalSupply + amount;
        if (supply > BALANCE_MASK) revert SupplyOverflow(supply);
        _totalSupply = supply;
        unchecked {
            // balance <= totalSupply <= BALANCE_MASK, so the flag bit is never touched.
            _balanceAndBlocklistState[to] += amount;
        }
        emit Transfer(address(0), to, amount);
    }

    function blocklist(address account) external onlyOwner {
        _balanceAndBlocklistState[account] |= BLOCKLIST_FLAG;
        emit Blocklisted(account);
    }

    function unBlocklist(address account) external onlyOwner {
        _balanceAndBlocklistState[account] &= BALANCE_MASK;
        emit UnBlocklisted(account);
    }

    function isBlocklisted(address account) public view returns (bool) {
        return _balanceAndBlocklistState[account] & BLOCKLIST_FLAG != 0;
    }

    // ----- EIP-2612 -----

    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    function nonces(address owner) public view override returns (uint256) {
        return super.nonces(owner);
    }

    function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
    {
        _permit(owner, spender, value, deadline, abi.encodePacked(r, s, v));
    }

    function permit(address owner, address spender, uint256 value, uint256 deadline, bytes calldata signature)
        external
    {
        _permit(owner, spender, value, deadline, signature);
    }

    // ----- EIP-3009 -----

    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool) {
        return _authorizationStates[authorizer][nonce];
    }

    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        _transferWithAuthorization(
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH,
            from,
            to,
            value,
            validAfter,
            validBefore,
            nonce,
            abi.encodePacked(r, s, v)
        );
    }

    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external {
        _transferWithAuthorization(
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, signature
        );
    }

    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        if (to != msg.sender) revert CallerMustBePayee(msg.sender, to);
        _transferWithAuthorization(
            RECEIVE_WITH_AUTHORIZATION_TYPEHASH,
            from,
            to,
            value,
            validAfter,
            validBefore,
            nonce,
            abi.encodePacked(r, s, v)
        );
    }

    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external {
        if (to != msg.sender) revert CallerMustBePayee(msg.sender, to);
        _transferWithAuthorization(
            RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, signature
        );
    }

    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external {
        _cancelAuthorization(authorizer, nonce, abi.encodePacked(r, s, v));
    }

    function cancelAuthorization(address authorizer, bytes32 nonce, bytes calldata signature) external {
        _cancelAuthorization(authorizer, nonce, signature);
    }

    // ----- internals -----

    function _permit(address owner, address spender, uint256 value, uint256 deadline, bytes memory signature) private {
        if (block.timestamp > deadline) revert PermitExpired(deadline);
        bytes32 structHash = keccak256(abi.encode(PERMIT_TYPEHASH, owner, spender, value, _useNonce(owner), deadline));
        _requireValidSignature(owner, structHash, signature);
        _approve(owner, spender, value);
    }

    function _transferWithAuthorization(
        bytes32 typehash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) private {
        if (block.timestamp <= validAfter) revert AuthorizationNotYetValid(validAfter);
        if (block.timestamp >= validBefore) revert AuthorizationExpired(validBefore);
        _requireUnusedAuthorization(from, nonce);
        _requireValidSignature(
            from, keccak256(abi.encode(typehash, from, to, value, validAfter, validBefore, nonce)), signature
        );
        _authorizationStates[from][nonce] = true;
        emit AuthorizationUsed(from, nonce);
        _transfer(from, to, value);
    }

    function _cancelAuthorization(address authorizer, bytes32 nonce, bytes memory signature) private {
        _requireNotPaused();
        _requireUnusedAuthorization(authorizer, nonce);
        _requireValidSignature(
            authorizer, keccak256(abi.encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce)), signature
        );
        _authorizationStates[authorizer][nonce] = true;
        emit AuthorizationCanceled(authorizer, nonce);
    }

    function _requireUnusedAuthorization(address authorizer, bytes32 nonce) private view {
        if (_authorizationStates[authorizer][nonce]) revert AuthorizationAlreadyUsed(authorizer, nonce);
    }

    function _requireValidSignature(address signer, bytes32 structHash, bytes memory signature) private view {
        if (!SignatureChecker.isValidSignatureNow(signer, _hashTypedDataV4(structHash), signature)) {
            revert InvalidSignature(signer);
        }
    }

    /// @dev Every transfer passes here; the blocklist flag is read with the balance itself.
    function _transfer(address from, address to, uint256 value) private {
        _requireNotPaused();
        if (to == address(0)) revert ERC20InvalidReceiver(address(0));
        uint256 fromState = _balanceAndBlocklistState[from];
        if (fromState & BLOCKLIST_FLAG != 0) revert AccountBlocklisted(from);
        uint256 fromBalance = fromState & BALANCE_MASK;
        if (fromBalance < value) revert ERC20InsufficientBalance(from, fromBalance, value);
        unchecked {
            // fromBalance >= value: no underflow, and the (clear) flag bit is untouched.
            _balanceAndBlocklistState[from] = fromState - value;
        }
        uint256 toState = _balanceAndBlocklistState[to];
        if (toState & BLOCKLIST_FLAG != 0) revert AccountBlocklisted(to);
        unchecked {
            // Every balance is bounded by totalSupply <= BALANCE_MASK, so the sum stays below the flag bit.
            _balanceAndBlocklistState[to] = toState + value;
        }
        emit Transfer(from, to, value);
    }

    /// @dev Approvals (including by permit) involving a blocklisted address are refused, as in USDC.
    function _approve(address owner, address spender, uint256 value) private {
        _requireNotPaused();
        if (owner == address(0)) revert ERC20InvalidApprover(address(0));
        if (spender == address(0)) revert ERC20InvalidSpender(address(0));
        _requireNotBlocklisted(owner);
        _requireNotBlocklisted(spender);
        _allowances[owner][spender] = value;
        emit Approval(owner, spender, value);
    }

    function _requireNotBlocklisted(address account) private view {
        if (isBlocklisted(account)) revert AccountBlocklisted(account);
    }
}
