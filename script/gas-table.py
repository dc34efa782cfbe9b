#!/usr/bin/env python3
"""Prints the README's gas table from snapshots/escrow.json (written by the gas benchmark)."""
import json
import pathlib

snap = json.loads((pathlib.Path(__file__).resolve().parent.parent / "snapshots/escrow.json").read_text())
g = {k: int(v) for k, v in snap.items()}

def n(x: int) -> str:
    return f"{x:,}"

rows = [
    # (label, key, target, twin key for a delta, anchor)
    ("`activateWithAuthorization` (EIP-3009, buyer + seller sanctions checks)", "activateWithAuthorization", "≤ 125,000", None,
     "commerce-payments `authorize` 151k; x402 ERC-3009 deposit 112k"),
    ("… with infra-fee collection", "activateWithAuthorization + infra fee", "≤ +45,000", "activateWithAuthorization", ""),
    ("`activateWithPermit` (EIP-2612 + buyer `Activation` signature)", "activateWithPermit", "—", None, ""),
    ("`initiateClose`", "initiateClose", "≤ 30,000", None, ""),
    ("`initiateCloseWithSig`", "initiateCloseWithSig", "≤ +10,000", "initiateClose", ""),
    ("`sellerClaim`", "sellerClaim", "≤ 45,000", None, "x402 claim 40k; commerce-payments `capture` 67k"),
    ("`sellerClaimWithSig`", "sellerClaimWithSig", "≤ +10,000", "sellerClaim", ""),
    ("`buyerWithdraw`", "buyerWithdraw", "≤ 45,000", None, "commerce-payments `reclaim` 54k"),
    ("`buyerWithdrawWithSig`", "buyerWithdrawWithSig", "≤ +10,000", "buyerWithdraw", "x402 relayed refund +9.8k over direct"),
]
print("| operation | execution gas | target | tx gas | anchor (measured the same way, mock tokens) |")
print("|---|---:|---:|---:|---|")
for label, key, target, twin, anchor in rows:
    value = n(g[key]) if twin is None else f"{n(g[key])} (**+{n(g[key] - g[twin])}**)"
    print(f"| {label} | {value} | {target} | {n(g[key + ' (tx)'])} | {anchor} |")
