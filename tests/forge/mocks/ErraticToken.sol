// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice An ERC-20 (EIP-3009 `receiveWithAuthorization` with signatures unchecked, for activation)
///         whose outgoing `transfer` can misbehave:
///         - Normal: moves the tokens;
///         - BurnAllGas: consumes every unit of gas it is given, then fails (like a pre-0.8 `assert`);
///         - ReturnFalse: moves nothing and returns `false` without reverting;
///         - Costly: burns `cost` gas before moving the tokens (a heavy compliance hook);
///         - Probe: static-calls `probeTarget` with `probeData` and emits the answer, then moves the
///           tokens (a light hook reading the payer's state mid-transfer).
contract ErraticToken {
    enum Mode {
        Normal,
        BurnAllGas,
        ReturnFalse,
        Costly,
        Probe
    }

    mapping(address => uint256) public balanceOf;
    Mode public mode;
    uint256 public cost;
    address public probeTarget;
    bytes public probeData;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Probed(bool ok, bytes answer);

    function configureProbe(address target, bytes calldata data) external {
        mode = Mode.Probe;
        probeTarget = target;
        probeData = data;
    }

    function configure(Mode newMode, uint256 newCost) external {
        mode = newMode;
        cost = newCost;
    }

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        Mode m = mode;
        if (m == Mode.BurnAllGas) {
            assembly {
                invalid()
            }
        }
        if (m == Mode.ReturnFalse) return false;
        if (m == Mode.Costly) {
            uint256 target = gasleft() - cost;
            while (gasleft() > target) {}
        }
        if (m == Mode.Probe) {
            (bool ok, bytes memory answer) = probeTarget.staticcall(probeData);
            emit Probed(ok, answer);
        }
        _move(msg.sender, to, value);
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
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}
