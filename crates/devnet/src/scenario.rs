//! Drives one agreement through its whole on-chain lifecycle:
//! activate → usage vouchers → initiate close → seller claim → buyer withdraw,
//! either with each party sending its own transactions, or with the parties only signing and a
//! third-party account (a gas sponsor) submitting everything.

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256, Bytes, Signature, TxHash, U256},
    providers::Provider,
    rpc::types::TransactionReceipt,
    signers::local::PrivateKeySigner,
    sol_types::SolStruct,
};
use pactum_bindings::{
    Agreement, AgreementEscrow,
    eip712::{self, BuyerWithdraw, InitiateClose, SellerClaim, Voucher},
    sign,
};

use crate::{Deployment, Error, Result, deploy::confirm};

/// How long the parties' signed authorizations stay valid, in seconds.
const AUTHORIZATION_LIFETIME: u64 = 600;

/// Who puts the lifecycle's transactions on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettlementPath {
    /// Each party sends its own transactions from its own wallet and pays the gas.
    Direct,
    /// The parties only sign; `relayer` submits every transaction (the `...WithSig` functions)
    /// and pays the gas. The parties need no ETH at all.
    Relayed {
        /// The gas sponsor's account.
        relayer: Address,
    },
}

/// What happened at one step of the lifecycle.
#[derive(Debug, Clone)]
pub struct Step {
    /// The operation, e.g. `activate`, `voucher`, `sellerClaim`.
    pub action: &'static str,
    /// A human-readable account of the step.
    pub detail: String,
    /// The token amount the step moved or signed for.
    pub amount: U256,
    /// The transaction, for steps that sent one (vouchers are off-chain).
    pub tx: Option<SentTx>,
}

/// A mined transaction of the lifecycle.
#[derive(Debug, Clone, Copy)]
pub struct SentTx {
    /// Its hash.
    pub hash: TxHash,
    /// Who sent (and paid for) it.
    pub from: Address,
    /// Gas used.
    pub gas_used: u64,
    /// The block it landed in.
    pub block_number: u64,
}

/// The result of a lifecycle run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The agreement id.
    pub agreement_id: B256,
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// Receipts of the transactions, in order (for callers that decode events).
    pub receipts: Vec<TransactionReceipt>,
    /// The amount paid to the seller (the highest voucher).
    pub seller_paid: U256,
    /// The amount returned to the buyer.
    pub buyer_refund: U256,
}

/// Runs the lifecycle of `agreement`.
///
/// `usage` lists the cumulative amounts of the vouchers the buyer signs as usage happens; the
/// seller verifies each off-chain and claims with the highest. The provider's wallet must hold the
/// key of every account that sends a transaction: the buyer and the seller on the direct path,
/// the relayer on the relayed path. `on_step` sees each step as soon as it completes.
#[allow(clippy::too_many_arguments)]
pub async fn run<P: Provider>(
    provider: &P,
    deployment: &Deployment,
    agreement: &Agreement,
    buyer: &PrivateKeySigner,
    seller: &PrivateKeySigner,
    path: SettlementPath,
    usage: &[U256],
    mut on_step: impl FnMut(&Step),
) -> Result<Outcome> {
    let escrow = AgreementEscrow::new(deployment.escrow, provider);
    let escrow_domain = eip712::escrow_domain(deployment.chain_id, deployment.escrow);
    let mut run = Run {
        steps: Vec::new(),
        receipts: Vec::new(),
        on_step: &mut on_step,
    };
    let submitter = |party: Address| match path {
        SettlementPath::Direct => party,
        SettlementPath::Relayed { relayer } => relayer,
    };

    // 1. Activation: the buyer signs, the buyer (direct) or the relayer submits.
    let (id, receipt) = activate(
        provider,
        deployment,
        agreement,
        buyer,
        submitter(agreement.buyer),
    )
    .await?;
    // The parties' settlement authorizations below all expire ten minutes from now.
    let deadline = U256::from(latest_timestamp(provider).await? + AUTHORIZATION_LIFETIME);
    run.record(
        "activate",
        format!(
            "escrowed {} and paid infra fee {} (buyer-signed EIP-3009 authorizations)",
            usdc(agreement.maxAmount),
            usdc(agreement.infraFee)
        ),
        agreement.maxAmount,
        receipt,
    );

    // 2. Usage: the buyer signs cumulative vouchers; the seller checks each and keeps the highest.
    let mut best: Option<(U256, Bytes)> = None;
    for &cumulative in usage {
        let message = Voucher {
            agreementId: id,
            cumulativeAmount: cumulative,
        };
        let signature = sign::sign_typed(buyer, &message, &escrow_domain).await?;
        verify_voucher(&message, &signature, &escrow_domain, agreement.buyer)?;
        run.off_chain(
            "voucher",
            format!("buyer signed a voucher for {} in total", usdc(cumulative)),
            cumulative,
        );
        if best.as_ref().is_none_or(|(amount, _)| cumulative > *amount) {
            best = Some((cumulative, signature));
        }
    }

    // 3. The buyer initiates close, which opens the seller's window to present its voucher.
    let receipt = match path {
        SettlementPath::Direct => {
            confirm(
                escrow
                    .initiateClose(agreement.clone())
                    .from(agreement.buyer),
            )
            .await?
        }
        SettlementPath::Relayed { relayer } => {
            let message = InitiateClose {
                agreementId: id,
                party: agreement.buyer,
                deadline,
            };
            let signature = sign::sign_typed(buyer, &message, &escrow_domain).await?;
            confirm(
                escrow
                    .initiateCloseWithSig(agreement.clone(), agreement.buyer, deadline, signature)
                    .from(relayer),
            )
            .await?
        }
    };
    run.record(
        "initiateClose",
        "buyer started the close window".to_string(),
        U256::ZERO,
        receipt,
    );

    // 4. The seller claims the highest voucher.
    let mut seller_paid = U256::ZERO;
    if let Some((amount, voucher)) = best {
        let receipt = match path {
            SettlementPath::Direct => {
                confirm(
                    escrow
                        .sellerClaim(agreement.clone(), amount, voucher, agreement.seller)
                        .from(agreement.seller),
                )
                .await?
            }
            SettlementPath::Relayed { relayer } => {
                let message = SellerClaim {
                    agreementId: id,
                    amount,
                    recipient: agreement.seller,
                    deadline,
                };
                let signature = sign::sign_typed(seller, &message, &escrow_domain).await?;
                confirm(
                    escrow
                        .sellerClaimWithSig(
                            agreement.clone(),
                            amount,
                            voucher,
                            agreement.seller,
                            deadline,
                            signature,
                        )
                        .from(relayer),
                )
                .await?
            }
        };
        if let Some(deferred) = receipt.decoded_log::<AgreementEscrow::SellerPayoutDeferred>() {
            return Err(Error::PayoutDeferred {
                agreement_id: id,
                tx: receipt.transaction_hash,
                reason: pactum_core::DeferralReason::from(deferred.reason),
            });
        }
        seller_paid = amount;
        run.record(
            "sellerClaim",
            format!("seller was paid {}", usdc(amount)),
            amount,
            receipt,
        );
    }

    // 5. The buyer withdraws the remainder (the seller has claimed, so no need to wait).
    let buyer_refund = agreement.maxAmount - seller_paid;
    let receipt = match path {
        SettlementPath::Direct => {
            confirm(
                escrow
                    .buyerWithdraw(agreement.clone(), agreement.buyer)
                    .from(agreement.buyer),
            )
            .await?
        }
        SettlementPath::Relayed { relayer } => {
            let message = BuyerWithdraw {
                agreementId: id,
                recipient: agreement.buyer,
                deadline,
            };
            let signature = sign::sign_typed(buyer, &message, &escrow_domain).await?;
            confirm(
                escrow
                    .buyerWithdrawWithSig(agreement.clone(), agreement.buyer, deadline, signature)
                    .from(relayer),
            )
            .await?
        }
    };
    run.record(
        "buyerWithdraw",
        format!("buyer got back {}", usdc(buyer_refund)),
        buyer_refund,
        receipt,
    );

    Ok(Outcome {
        agreement_id: id,
        steps: run.steps,
        receipts: run.receipts,
        seller_paid,
        buyer_refund,
    })
}

/// Has the buyer sign its activation package (valid for ten minutes) and submits it from
/// `submitter`; returns the agreement id and the receipt. `buyer` signs as the agreement's
/// buyer: its own key, or for a contract wallet a signer its wallet approves through ERC-1271.
pub async fn activate<P: Provider>(
    provider: &P,
    deployment: &Deployment,
    agreement: &Agreement,
    buyer: &(impl alloy::signers::Signer + Sync),
    submitter: Address,
) -> Result<(B256, TransactionReceipt)> {
    let now = latest_timestamp(provider).await?;
    let package = sign::activation_package(
        buyer,
        agreement,
        &deployment.activation_context(),
        now + AUTHORIZATION_LIFETIME,
    )
    .await?;
    let escrow = AgreementEscrow::new(deployment.escrow, provider);
    let receipt = confirm(
        escrow
            .activateWithAuthorization(agreement.clone(), package.deposit, package.fee)
            .from(submitter),
    )
    .await?;
    Ok((package.agreement_id, receipt))
}

struct Run<'a, F: FnMut(&Step)> {
    steps: Vec<Step>,
    receipts: Vec<TransactionReceipt>,
    on_step: &'a mut F,
}

impl<F: FnMut(&Step)> Run<'_, F> {
    fn record(
        &mut self,
        action: &'static str,
        detail: String,
        amount: U256,
        receipt: TransactionReceipt,
    ) {
        let tx = SentTx {
            hash: receipt.transaction_hash,
            from: receipt.from,
            gas_used: receipt.gas_used,
            block_number: receipt.block_number.unwrap_or_default(),
        };
        tracing::info!(action, tx = %tx.hash, from = %tx.from, gas = tx.gas_used, "step mined");
        self.receipts.push(receipt);
        self.push(Step {
            action,
            detail,
            amount,
            tx: Some(tx),
        });
    }

    fn off_chain(&mut self, action: &'static str, detail: String, amount: U256) {
        self.push(Step {
            action,
            detail,
            amount,
            tx: None,
        });
    }

    fn push(&mut self, step: Step) {
        (self.on_step)(&step);
        self.steps.push(step);
    }
}

/// Checks, as a seller would before delivering more service, that a voucher carries the buyer's
/// signature (EOA buyers; a smart-wallet buyer's voucher would be checked with an ERC-1271 call).
fn verify_voucher(
    message: &Voucher,
    signature: &Bytes,
    domain: &alloy::sol_types::Eip712Domain,
    buyer: Address,
) -> Result<()> {
    let digest = message.eip712_signing_hash(domain);
    let recovered = Signature::from_raw(signature)
        .ok()
        .and_then(|sig| sig.recover_address_from_prehash(&digest).ok());
    if recovered == Some(buyer) {
        Ok(())
    } else {
        Err(Error::BadVoucher {
            amount: message.cumulativeAmount,
        })
    }
}

/// The timestamp of the latest block.
pub async fn latest_timestamp<P: Provider>(provider: &P) -> Result<u64> {
    let block = provider
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await?
        .ok_or(Error::NoLatestBlock)?;
    Ok(block.header.timestamp)
}

/// Formats a 6-decimal token amount, e.g. `12.5 USDC`.
pub fn usdc(amount: U256) -> String {
    let unit = U256::from(1_000_000u64);
    let whole = amount / unit;
    let frac = (amount % unit).to::<u64>();
    if frac == 0 {
        format!("{whole} USDC")
    } else {
        let frac = format!("{frac:06}");
        format!("{whole}.{} USDC", frac.trim_end_matches('0'))
    }
}
