//! The EIP-712 messages of the protocol and their domains.
//!
//! Every message a party signs is listed here with the contract that verifies it:
//!
//! | message | signer | domain | authorizes |
//! |---|---|---|---|
//! | [`Agreement`](crate::Agreement) | (none: its digest is the agreement id) | escrow | — |
//! | [`ReceiveWithAuthorization`] | buyer | token | moving `maxAmount` into escrow (`nonce` = agreement id), or `infraFee` to the fee collector (`nonce` = [`fee_authorization_nonce`]) |
//! | [`Permit`] | buyer | token | an allowance for the escrow or the fee collector |
//! | [`Activation`] | buyer | escrow | activation with permits (the terms nested) |
//! | [`Voucher`] | buyer | escrow | paying the seller up to `cumulativeAmount` |
//! | [`InitiateClose`] | buyer or seller | escrow | starting the close window |
//! | [`SellerClaim`] | seller | escrow | being paid `amount` at `recipient` |
//! | [`BuyerWithdraw`] | buyer | escrow | being paid the remainder at `recipient` |
//! | [`AgentRegistration`] | the agent's wallet | agents (checked by the API, not a contract) | `owner` registering agent `agent` with this wallet, until `deadline` |
//! | [`Receipt`] | the service's receipt key | receipts (checked by anyone, offline) | that `amount` of `token` moved from `payer` to `payee`, as the log at `logIndex` of `blockHash` states |

use alloy::{
    primitives::{Address, B256, U256},
    sol,
    sol_types::{Eip712Domain, SolStruct, eip712_domain},
};

use crate::Agreement;

/// The escrow's EIP-712 domain name.
pub const ESCROW_DOMAIN_NAME: &str = "Pactum Agreement Escrow";
/// The fee collector's EIP-712 domain name.
pub const FEE_COLLECTOR_DOMAIN_NAME: &str = "Pactum Infra Fee";
/// The domain name of agent registrations (verified off chain by the API; the escrow's address
/// binds them to one deployment).
pub const AGENTS_DOMAIN_NAME: &str = "Pactum Agents";
/// The domain name of receipts (signed by the service; the escrow's address binds them to one
/// deployment).
pub const RECEIPTS_DOMAIN_NAME: &str = "Pactum Receipts";
/// The version of the pactum domains.
pub const DOMAIN_VERSION: &str = "1";
/// USDC's (and the local stand-in's) EIP-712 domain name.
pub const USDC_DOMAIN_NAME: &str = "USD Coin";
/// USDC's (and the local stand-in's) EIP-712 domain version.
pub const USDC_DOMAIN_VERSION: &str = "2";

sol! {
    /// A wallet's proof that it acts for agent `agent` of owner `owner`: signed when the owner
    /// registers the agent, usable until `deadline`.
    #[derive(Debug, PartialEq, Eq)]
    struct AgentRegistration {
        string owner;
        string agent;
        address wallet;
        uint256 deadline;
    }

    /// Buyer's consent to activation when the deposit is pulled with a permit. The terms are
    /// nested (not their id), so that a wallet displays them.
    #[derive(Debug, PartialEq, Eq)]
    struct Activation {
        Agreement agreement;
        uint256 deadline;
    }

    /// Buyer's cumulative usage voucher: the seller may be paid up to `cumulativeAmount` in total.
    #[derive(Debug, PartialEq, Eq)]
    struct Voucher {
        bytes32 agreementId;
        uint256 cumulativeAmount;
    }

    /// A party's authorization to start the close window, submittable by anyone.
    #[derive(Debug, PartialEq, Eq)]
    struct InitiateClose {
        bytes32 agreementId;
        address party;
        uint256 deadline;
    }

    /// The seller's authorization to be paid `amount` (a voucher's amount) at `recipient`.
    #[derive(Debug, PartialEq, Eq)]
    struct SellerClaim {
        bytes32 agreementId;
        uint256 amount;
        address recipient;
        uint256 deadline;
    }

    /// The buyer's authorization to be paid its remainder at `recipient`.
    #[derive(Debug, PartialEq, Eq)]
    struct BuyerWithdraw {
        bytes32 agreementId;
        address recipient;
        uint256 deadline;
    }

    /// The fee collector's nonce derivation: an agreement's fee authorization uses the digest of
    /// this under the fee collector's domain as its EIP-3009 nonce.
    #[derive(Debug, PartialEq, Eq)]
    struct InfraFee {
        bytes32 agreementId;
        uint256 amount;
    }

    /// EIP-3009, as USDC defines it.
    #[derive(Debug, PartialEq, Eq)]
    struct ReceiveWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    /// The service's statement that a money movement is final on chain: `amount` of `token`
    /// from `payer` to `payee`, for escrow agreement `agreementId` (`apiAgreementId` is the API's
    /// id, or empty), as the log at `logIndex` in block `blockNumber` (`blockHash`, mined at
    /// `blockTime`) of transaction `txHash` on chain `chainId`, emitted by `emitter`, states.
    #[derive(Debug, PartialEq, Eq)]
    struct Receipt {
        string receiptId;
        bytes32 agreementId;
        string apiAgreementId;
        string kind;
        address payer;
        address payee;
        address token;
        uint256 amount;
        uint256 chainId;
        address emitter;
        bytes32 txHash;
        uint256 logIndex;
        uint256 blockNumber;
        bytes32 blockHash;
        uint256 blockTime;
    }

    /// EIP-2612.
    #[derive(Debug, PartialEq, Eq)]
    struct Permit {
        address owner;
        address spender;
        uint256 value;
        uint256 nonce;
        uint256 deadline;
    }
}

/// The escrow's domain on `chain_id` at `escrow`.
pub fn escrow_domain(chain_id: u64, escrow: Address) -> Eip712Domain {
    eip712_domain! {
        name: ESCROW_DOMAIN_NAME,
        version: DOMAIN_VERSION,
        chain_id: chain_id,
        verifying_contract: escrow,
    }
}

/// The domain of receipts on `chain_id` for the deployment whose escrow is `escrow`.
pub fn receipts_domain(chain_id: u64, escrow: Address) -> Eip712Domain {
    eip712_domain! {
        name: RECEIPTS_DOMAIN_NAME,
        version: DOMAIN_VERSION,
        chain_id: chain_id,
        verifying_contract: escrow,
    }
}

/// The domain of agent registrations on `chain_id` for the deployment whose escrow is `escrow`.
pub fn agents_domain(chain_id: u64, escrow: Address) -> Eip712Domain {
    eip712_domain! {
        name: AGENTS_DOMAIN_NAME,
        version: DOMAIN_VERSION,
        chain_id: chain_id,
        verifying_contract: escrow,
    }
}

/// The fee collector's domain on `chain_id` at `fee_collector`.
pub fn fee_collector_domain(chain_id: u64, fee_collector: Address) -> Eip712Domain {
    eip712_domain! {
        name: FEE_COLLECTOR_DOMAIN_NAME,
        version: DOMAIN_VERSION,
        chain_id: chain_id,
        verifying_contract: fee_collector,
    }
}

/// A USDC-style token's domain (`"USD Coin"`, `"2"`) on `chain_id` at `token`.
pub fn usdc_domain(chain_id: u64, token: Address) -> Eip712Domain {
    eip712_domain! {
        name: USDC_DOMAIN_NAME,
        version: USDC_DOMAIN_VERSION,
        chain_id: chain_id,
        verifying_contract: token,
    }
}

/// The agreement id: the EIP-712 digest of the terms under the escrow's domain.
pub fn agreement_id(agreement: &Agreement, escrow_domain: &Eip712Domain) -> B256 {
    agreement.eip712_signing_hash(escrow_domain)
}

/// The EIP-3009 nonce of an agreement's fee authorization.
pub fn fee_authorization_nonce(
    agreement_id: B256,
    amount: U256,
    fee_collector_domain: &Eip712Domain,
) -> B256 {
    InfraFee {
        agreementId: agreement_id,
        amount,
    }
    .eip712_signing_hash(fee_collector_domain)
}
