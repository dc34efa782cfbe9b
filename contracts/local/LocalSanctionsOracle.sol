// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ISanctionsList} from "../interfaces/ISanctionsList.sol";

/// @title LocalSanctionsOracle
/// @notice A local stand-in for the Chainalysis sanctions oracle, with the same external interface:
///         the owner adds and removes addresses; anyone reads `isSanctioned`.
///         For development chains and tests only.
contract LocalSanctionsOracle is ISanctionsList, Ownable {
    mapping(address addr => bool) private _sanctioned;

    event SanctionedAddressesAdded(address[] addrs);
    event SanctionedAddressesRemoved(address[] addrs);
    event SanctionedAddress(address indexed addr);
    event NonSanctionedAddress(address indexed addr);

    constructor(address initialOwner) Ownable(initialOwner) {}

    function name() external pure returns (string memory) {
        return "Chainalysis sanctions oracle";
    }

    function addToSanctionsList(address[] calldata newSanctions) external onlyOwner {
        for (uint256 i = 0; i < newSanctions.length; ++i) {
            _sanctioned[newSanctions[i]] = true;
        }
        emit SanctionedAddressesAdded(newSanctions);
    }

    function removeFromSanctionsList(address[] calldata removeSanctions) external onlyOwner {
        for (uint256 i = 0; i < removeSanctions.length; ++i) {
            _sanctioned[removeSanctions[i]] = false;
        }
        emit SanctionedAddressesRemoved(removeSanctions);
    }

    /// @inheritdoc ISanctionsList
    function isSanctioned(address addr) external view returns (bool) {
        return _sanctioned[addr];
    }

    /// @notice Same answer as `isSanctioned`, plus an event recording the lookup.
    function isSanctionedVerbose(address addr) external returns (bool) {
        bool sanctioned = _sanctioned[addr];
        if (sanctioned) emit SanctionedAddress(addr);
        else emit NonSanctionedAddress(addr);
        return sanctioned;
    }
}
