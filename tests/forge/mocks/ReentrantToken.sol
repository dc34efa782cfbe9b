// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice A malicious ERC-20 with the EIP-3009 `receiveWithAuthorization` (bytes form) the escrow pulls
///         deposits with, and a hook that makes one arbitrary call (typically back into the escrow) in
///         the middle of a transfer. It does not check authorization signatures: it is the attacker's
///         token, the question is only what it can make the escrow do while the escrow calls it.
///
///         The hook fires once, at the first matching token operation after `arm`, after the balances
///         moved. Its outcome is recorded; with `bubble` set, a failed hook call reverts the token
///         operation with the hook's revert data (so the outer escrow call must revert entirely).
contract ReentrantToken {
    enum Trigger {
        None,
        ReceiveWithAuthorization,
        Transfer,
        TransferFrom
    }

    string public constant name = "Reentrant";
    string public constant symbol = "RE";
    uint8 public constant decimals = 6;

    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    uint256 public totalSupply;

    Trigger public trigger;
    address public hookTarget;
    bytes public hookData;
    bool public bubble;
    /// @dev Only fire for an operation paying this address (zero: any).
    address public onlyTo;

    bool public hookCalled;
    bool public hookSucceeded;
    bytes public hookReturnData;
    /// @dev The operation (and its `to`) during which the hook fired.
    Trigger public firedDuring;
    address public firedTo;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    error CallerMustBePayee(address caller, address payee);
    error InsufficientBalance(address from, uint256 balance, uint256 value);

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
        totalSupply += amount;
        emit Transfer(address(0), to, amount);
    }

    function arm(Trigger when, address target, bytes calldata data, bool bubbleRevert) external {
        armFor(when, address(0), target, data, bubbleRevert);
    }

    function armFor(Trigger when, address payee, address target, bytes calldata data, bool bubbleRevert) public {
        trigger = when;
        onlyTo = payee;
        hookTarget = target;
        hookData = data;
        bubble = bubbleRevert;
        hookCalled = false;
        hookSucceeded = false;
        delete hookReturnData;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _move(msg.sender, to, value);
        _hook(Trigger.Transfer, to);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        require(allowed >= value, "allowance");
        allowance[from][msg.sender] = allowed - value;
        _move(from, to, value);
        _hook(Trigger.TransferFrom, to);
        return true;
    }

    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256,
        uint256,
        bytes32,
        bytes calldata
    ) external {
        if (to != msg.sender) revert CallerMustBePayee(msg.sender, to);
        _move(from, to, value);
        _hook(Trigger.ReceiveWithAuthorization, to);
    }

    function authorizationState(address, bytes32) external pure returns (bool) {
        return false;
    }

    function _move(address from, address to, uint256 value) private {
        uint256 bal = balanceOf[from];
        if (bal < value) revert InsufficientBalance(from, bal, value);
        balanceOf[from] = bal - value;
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }

    function _hook(Trigger op, address to) private {
        if (trigger != op || (onlyTo != address(0) && onlyTo != to)) return;
        trigger = Trigger.None; // fire once; no recursion through our own hook
        hookCalled = true;
        firedDuring = op;
        firedTo = to;
        (bool ok, bytes memory ret) = hookTarget.call(hookData);
        hookSucceeded = ok;
        hookReturnData = ret;
        if (!ok && bubble) {
            assembly {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }
}
