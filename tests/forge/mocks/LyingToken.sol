// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice An ERC-20 (with EIP-3009 `receiveWithAuthorization`, bytes form, signatures unchecked) whose
///         transfers do not move what they say:
///         - FeeOnTransfer: the recipient is credited `value - value * feeBps / 10_000`;
///         - Inflate: the recipient is credited `value + bonus` (out of thin air);
///         - Drain: the recipient is credited `value`, then loses `value + bonus` of its whole balance
///           (its balance goes down during a transfer in).
///         Every transfer still reports success and emits `Transfer(from, to, value)`.
contract LyingToken {
    enum Mode {
        Honest,
        FeeOnTransfer,
        Inflate,
        Drain
    }

    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    uint256 public totalSupply;

    Mode public mode;
    uint256 public feeBps;
    uint256 public bonus;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    function configure(Mode newMode, uint256 newFeeBps, uint256 newBonus) external {
        mode = newMode;
        feeBps = newFeeBps;
        bonus = newBonus;
    }

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
        totalSupply += amount;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _move(msg.sender, to, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        require(allowed >= value, "allowance");
        allowance[from][msg.sender] = allowed - value;
        _move(from, to, value);
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
        require(to == msg.sender, "payee only");
        _move(from, to, value);
    }

    function _move(address from, address to, uint256 value) private {
        require(balanceOf[from] >= value, "balance");
        balanceOf[from] -= value;
        Mode m = mode;
        if (m == Mode.FeeOnTransfer) {
            balanceOf[to] += value - (value * feeBps) / 10_000;
        } else if (m == Mode.Inflate) {
            balanceOf[to] += value + bonus;
        } else if (m == Mode.Drain) {
            uint256 credited = balanceOf[to] + value;
            uint256 loss = value + bonus;
            balanceOf[to] = credited > loss ? credited - loss : 0;
        } else {
            balanceOf[to] += value;
        }
        emit Transfer(from, to, value);
    }
}
