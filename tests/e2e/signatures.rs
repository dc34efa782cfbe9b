//! The Rust EIP-712 definitions match the contracts, and a submitter cannot alter what was signed.

use alloy::{
    primitives::{U256, keccak256},
    sol_types::SolStruct,
};
use pactum_bindings::{
    InfraFeeCollector,
    contracts::agreement_escrow::AgreementEscrow::AgreementEscrowErrors,
    eip712::{self, Activation, BuyerWithdraw, InitiateClose, SellerClaim, Voucher},
    sign,
};
use pactum_core::AgreementStatus;
use pactum_devnet::scenario;

use crate::chain::{Chain, USDC};

#[tokio::test]
async fn rust_type_hashes_and_digests_match_the_contracts() -> eyre::Result<()> {
    let chain = Chain::start().await?;
    let escrow = chain.escrow();
    let agreement = chain
        .agreement(chain.buyer.address(), chain.seller.address(), "typehash")
        .await?;

    assert_eq!(
        escrow.AGREEMENT_TYPEHASH().call().await?,
        keccak256(pactum_bindings::Agreement::eip712_encode_type().as_bytes())
    );
    let pairs = [
        (
            escrow.ACTIVATION_TYPEHASH().call().await?,
            Activation::eip712_encode_type(),
        ),
        (
            escrow.VOUCHER_TYPEHASH().call().await?,
            Voucher::eip712_encode_type(),
        ),
        (
            escrow.INITIATE_CLOSE_TYPEHASH().call().await?,
            InitiateClose::eip712_encode_type(),
        ),
        (
            escrow.SELLER_CLAIM_TYPEHASH().call().await?,
            SellerClaim::eip712_encode_type(),
        ),
        (
            escrow.BUYER_WITHDRAW_TYPEHASH().call().await?,
            BuyerWithdraw::eip712_encode_type(),
        ),
    ];
    for (on_chain, encode_type) in pairs {
        assert_eq!(
            on_chain,
            keccak256(encode_type.as_bytes()),
            "type hash of {encode_type}"
        );
    }

    let domain = eip712::escrow_domain(chain.deployment.chain_id, chain.deployment.escrow);
    let id = eip712::agreement_id(&agreement, &domain);
    assert_eq!(escrow.agreementId(agreement.clone()).call().await?, id);

    let collector = InfraFeeCollector::new(chain.deployment.fee_collector, &chain.provider);
    let fee_domain =
        eip712::fee_collector_domain(chain.deployment.chain_id, chain.deployment.fee_collector);
    assert_eq!(
        collector
            .feeAuthorizationNonce(id, agreement.infraFee)
            .call()
            .await?,
        eip712::fee_authorization_nonce(id, agreement.infraFee, &fee_domain)
    );
    Ok(())
}

#[tokio::test]
async fn a_relayer_cannot_change_what_the_seller_signed() -> eyre::Result<()> {
    let chain = Chain::start().await?;
    let agreement = chain
        .agreement(chain.buyer.address(), chain.seller.address(), "tamper")
        .await?;
    let domain = eip712::escrow_domain(chain.deployment.chain_id, chain.deployment.escrow);
    let now = scenario::latest_timestamp(&chain.provider).await?;
    let escrow = chain.escrow();
    let relayer = chain.relayer.address();
    let (id, _) = scenario::activate(
        &chain.provider,
        &chain.deployment,
        &agreement,
        &chain.buyer,
        relayer,
    )
    .await?;
    pactum_devnet::confirm(
        escrow
            .initiateClose(agreement.clone())
            .from(chain.buyer.address()),
    )
    .await?;

    // The buyer signed two vouchers; the seller authorizes a claim of the higher one.
    let (low, high) = (U256::from(10 * USDC), U256::from(30 * USDC));
    let low_voucher = sign::sign_typed(
        &chain.buyer,
        &Voucher {
            agreementId: id,
            cumulativeAmount: low,
        },
        &domain,
    )
    .await?;
    let high_voucher = sign::sign_typed(
        &chain.buyer,
        &Voucher {
            agreementId: id,
            cumulativeAmount: high,
        },
        &domain,
    )
    .await?;
    let deadline = U256::from(now + 600);
    let seller = chain.seller.address();
    let authorization = SellerClaim {
        agreementId: id,
        amount: high,
        recipient: seller,
        deadline,
    };
    let seller_sig = sign::sign_typed(&chain.seller, &authorization, &domain).await?;

    // Swapping in the older, lower voucher, or redirecting the payment, is refused on-chain.
    let tampered = [
        (low, low_voucher, seller),
        (high, high_voucher.clone(), relayer),
    ];
    for (amount, voucher, recipient) in tampered {
        let result = escrow
            .sellerClaimWithSig(
                agreement.clone(),
                amount,
                voucher,
                recipient,
                deadline,
                seller_sig.clone(),
            )
            .from(relayer)
            .send()
            .await;
        let err = result
            .err()
            .ok_or_else(|| eyre::eyre!("tampered claim must fail"))?;
        match err.as_decoded_interface_error::<AgreementEscrowErrors>() {
            Some(AgreementEscrowErrors::InvalidSignature(e)) => assert_eq!(e.signer, seller),
            other => eyre::bail!("expected InvalidSignature, got {other:?} ({err})"),
        }
    }

    // The untouched authorization goes through, once.
    let receipt = pactum_devnet::confirm(
        escrow
            .sellerClaimWithSig(
                agreement.clone(),
                high,
                high_voucher.clone(),
                seller,
                deadline,
                seller_sig.clone(),
            )
            .from(relayer),
    )
    .await?;
    assert!(receipt.status());
    let replay = escrow
        .sellerClaimWithSig(
            agreement.clone(),
            high,
            high_voucher,
            seller,
            deadline,
            seller_sig,
        )
        .from(relayer)
        .send()
        .await;
    let err = replay
        .err()
        .ok_or_else(|| eyre::eyre!("replayed claim must fail"))?;
    assert!(
        matches!(
            err.as_decoded_interface_error::<AgreementEscrowErrors>(),
            Some(AgreementEscrowErrors::SellerAlreadyPaid(_))
        ),
        "replay refused by the state machine: {err}"
    );
    Ok(())
}

/// The permit path end to end with messages signed in Rust: two EIP-2612 permits (deposit and fee)
/// and the buyer's `Activation`, whose nested terms are what a wallet displays. Terms other than
/// the ones signed are refused with the buyer's `InvalidSignature`.
#[tokio::test]
async fn permit_activation_signed_in_rust_binds_the_nested_terms() -> eyre::Result<()> {
    let chain = Chain::start().await?;
    let agreement = chain
        .agreement(chain.buyer.address(), chain.seller.address(), "permit")
        .await?;
    let escrow = chain.escrow();
    let d = &chain.deployment;
    let escrow_domain = eip712::escrow_domain(d.chain_id, d.escrow);
    let deadline = U256::from(scenario::latest_timestamp(&chain.provider).await? + 600);
    let buyer = chain.buyer.address();

    let permits = chain.permits(&agreement, deadline).await?;
    let consent = sign::sign_typed(
        &chain.buyer,
        &Activation {
            agreement: agreement.clone(),
            deadline,
        },
        &escrow_domain,
    )
    .await?;

    // Other terms (a larger deposit), same signatures: refused before any token moves.
    let mut other = agreement.clone();
    other.maxAmount += U256::from(1);
    let err = escrow
        .activateWithPermit(
            other,
            deadline,
            consent.clone(),
            permits[0].clone(),
            permits[1].clone(),
        )
        .from(chain.relayer.address())
        .send()
        .await
        .err()
        .ok_or_else(|| eyre::eyre!("other terms must be refused"))?;
    match err.as_decoded_interface_error::<AgreementEscrowErrors>() {
        Some(AgreementEscrowErrors::InvalidSignature(e)) => assert_eq!(e.signer, buyer),
        other => eyre::bail!("expected InvalidSignature, got {other:?} ({err})"),
    }

    let before = chain.balance(buyer).await?;
    pactum_devnet::confirm(
        escrow
            .activateWithPermit(
                agreement.clone(),
                deadline,
                consent,
                permits[0].clone(),
                permits[1].clone(),
            )
            .from(chain.relayer.address()),
    )
    .await?;
    let id = eip712::agreement_id(&agreement, &escrow_domain);
    let state = escrow.agreementState(id).call().await?;
    assert_eq!(
        AgreementStatus::try_from(state.status)?,
        AgreementStatus::Active
    );
    assert_eq!(
        before - chain.balance(buyer).await?,
        agreement.maxAmount + agreement.infraFee
    );
    Ok(())
}
