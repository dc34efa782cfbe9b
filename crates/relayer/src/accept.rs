//! Accepting a request: every check that can refuse it runs here, before any gas is spent.

use std::sync::Arc;

use alloy::{
    primitives::{Address, B256, Bytes},
    providers::DynProvider,
    sol_types::{Eip712Domain, SolStruct},
};
use pactum_bindings::{
    Agreement,
    eip712::{self, Voucher},
};
use pactum_db::{
    Db,
    relay::{self, Attempt, Inserted, Job, NewJob},
};
use tokio::sync::Notify;

use pactum_core::{
    Refusal, RefusalCode,
    escrow::{Authorization, rules},
    signature::recover,
    sponsor::{self, Requester},
};

use crate::{
    AcceptError, Error, Metrics, Settings,
    chain::{self, Simulation},
};

/// A request the relayer took on.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Its job.
    pub job: Job,
    /// The same authorization had been accepted before: this is that job.
    pub existing: bool,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    worker_db: Db,
    provider: DynProvider,
    settings: Settings,
    /// The signer keys' addresses (simulations run from the first).
    signers: Vec<Address>,
    wake: Notify,
    metrics: Metrics,
}

/// The relayer's shared handle: accepts requests, answers questions about jobs, and wakes the
/// workers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Relayer {
    inner: Arc<Inner>,
}

impl Relayer {
    /// A relayer for `settings` on `provider` (which must be on `settings.chain_id`), submitting
    /// from `signers` (their workers run separately, see [`crate::Worker`]).
    pub async fn new(
        db: Db,
        provider: DynProvider,
        settings: Settings,
        signers: Vec<Address>,
    ) -> Result<Self, Error> {
        Self::with_pools(db.clone(), db, provider, settings, signers).await
    }

    /// A relayer whose acceptance (called from API requests) and workers use separate pools,
    /// so that load on the API cannot take the connections the workers need to submit.
    pub async fn with_pools(
        db: Db,
        worker_db: Db,
        provider: DynProvider,
        settings: Settings,
        signers: Vec<Address>,
    ) -> Result<Self, Error> {
        let actual = chain::chain_id(&provider).await?;
        if actual != settings.chain_id {
            return Err(Error::WrongChain {
                expected: settings.chain_id,
                actual,
            });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                worker_db,
                provider,
                settings,
                signers,
                wake: Notify::new(),
                metrics: Metrics::default(),
            }),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The workers' pool (the acceptance pool unless built [`Relayer::with_pools`]).
    pub fn worker_db(&self) -> &Db {
        &self.inner.worker_db
    }

    /// The node.
    pub fn provider(&self) -> &DynProvider {
        &self.inner.provider
    }

    /// Counters and latencies.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The signer keys' addresses.
    pub fn signers(&self) -> &[Address] {
        &self.inner.signers
    }

    /// The escrow's EIP-712 domain.
    pub fn escrow_domain(&self) -> Eip712Domain {
        eip712::escrow_domain(self.inner.settings.chain_id, self.inner.settings.escrow)
    }

    /// Wakes the workers (a job was queued).
    pub fn wake(&self) {
        self.inner.wake.notify_waiters();
    }

    pub(crate) fn woken(&self) -> tokio::sync::futures::Notified<'_> {
        self.inner.wake.notified()
    }

    /// A job and its attempts.
    pub async fn job(&self, relay_id: &str) -> Result<Option<(Job, Vec<Attempt>)>, Error> {
        let pool = self.inner.db.pool();
        let Some(job) = relay::job_by_id(pool, relay_id).await? else {
            return Ok(None);
        };
        let attempts = relay::attempts_of(pool, relay_id).await?;
        Ok(Some((job, attempts)))
    }

    /// Why sponsoring is paused, if it is: no signer key was seen holding the minimum balance.
    pub async fn sponsor_unavailable(&self) -> Result<Option<Refusal>, Error> {
        let settings = &self.inner.settings;
        let balances = relay::signer_balances(self.inner.db.pool(), settings.chain_id).await?;
        // A reading older than a minute says nothing: its worker is not running.
        let funded = balances.iter().any(|s| {
            self.inner.signers.contains(&s.address)
                && s.age_seconds.is_some_and(|a| a < 60.0)
                && s.balance
                    .is_some_and(|b| b >= settings.policy.min_signer_balance)
        });
        Ok((!funded).then(|| {
            Refusal::new(
                RefusalCode::SponsorPaused,
                "no relayer key holds the minimum balance; sponsoring resumes once one is topped up \
                 (the direct path stays open)",
            )
        }))
    }

    /// Whether `signature` over `digest` is `account`'s, as a token or the escrow verifies it:
    /// an ECDSA signature recovering to `account`, or, when `account` has code, its ERC-1271
    /// approval (asked with at most `max_gas_per_action` gas).
    pub async fn signature_is_valid(
        &self,
        account: Address,
        digest: B256,
        signature: &Bytes,
    ) -> Result<bool, Error> {
        let cap = self.inner.settings.policy.max_gas_per_action;
        wallet_signature_is_valid(&self.inner.provider, account, digest, signature, cap).await
    }

    /// Checks `authorization` for the agreement with `terms` and queues it. Refusals spend no gas.
    /// The same authorization (same signed digest) always yields the same job.
    pub async fn accept(
        &self,
        terms: &Agreement,
        authorization: Authorization,
        requester: impl Into<Requester<'_>>,
    ) -> Result<Accepted, AcceptError> {
        let requester = requester.into();
        let settings = &self.inner.settings;
        let provider = &self.inner.provider;
        let domain = self.escrow_domain();
        let id = eip712::agreement_id(terms, &domain);
        let target = settings.escrow;
        let digest = authorization.digest(terms, id, &domain, target);
        let kind = authorization.kind();

        let t0 = std::time::Instant::now();
        // Signatures. An EOA's ECDSA signature (and the buyer's voucher on a first claim) is
        // recovered here, and one that does not recover to an account without code is refused
        // below. Any other, an ERC-1271 wallet's, is judged by the escrow itself in the
        // simulation: it calls the wallet's `isValidSignature` from the escrow, with the gas it
        // will have, exactly as the mined call will, and a refusal comes back as its
        // `InvalidSignature` / `InvalidVoucher` error.
        let signer = authorization.signer(terms);
        let signature_recovers = authorization
            .signature()
            .is_none_or(|signature| recover(digest, signature) == Some(signer));
        let voucher_recovers = match &authorization {
            Authorization::SellerClaim {
                amount,
                voucher_signature,
                ..
            } => {
                let voucher = Voucher {
                    agreementId: id,
                    cumulativeAmount: *amount,
                }
                .eip712_signing_hash(&domain);
                recover(voucher, voucher_signature) == Some(terms.buyer)
            }
            _ => true,
        };
        let code_of = |account: Address, needed: bool| async move {
            if needed {
                chain::has_code(provider, account).await.map(Some)
            } else {
                Ok(None)
            }
        };

        // The same authorization accepted before, the head, the agreement's state, and the
        // code of a signer whose signature did not recover, at once.
        let existing = async {
            let mut conn = self.inner.db.pool().acquire().await?;
            Ok::<_, Error>(relay::job_by_authorization(&mut conn, settings.chain_id, digest).await?)
        };
        let (existing, reads) = tokio::join!(existing, async {
            tokio::try_join!(
                chain::head(provider),
                chain::agreement_state(provider, settings.escrow, id),
                code_of(signer, !signature_recovers),
                code_of(terms.buyer, !voucher_recovers),
            )
        });
        // A replay is answered from the database even while the node is away.
        if let Some(job) = existing?.filter(|job| !job.refused_unsubmitted()) {
            return Ok(Accepted {
                job,
                existing: true,
            });
        }
        let (head, state, signer_code, buyer_code) = reads?;
        let policy = &settings.policy;
        policy.trusted_tokens.check(terms.token)?;
        if !policy.tokens.is_empty() && !policy.tokens.contains(&terms.token) {
            return Err(Refusal::new(
                RefusalCode::TokenNotSponsored,
                format!(
                    "the relayer does not sponsor agreements in token {} (the direct path stays open)",
                    terms.token
                ),
            )
            .into());
        }

        let deadline = authorization.deadline();
        rules::check_deadline(deadline, head.timestamp, policy.min_deadline_margin)?;
        rules::eligibility(kind, terms, &state, head.timestamp)?;
        // A claim mined after the window ends reverts, and the buyer may then take everything:
        // the seller must leave the relayer time, or send the claim itself.
        if matches!(authorization, Authorization::SellerClaim { .. }) {
            rules::check_claim_window(&state, head.timestamp, policy.min_deadline_margin)?;
        }
        rules::check_message(terms, &authorization, state.settledAmount, target)?;

        let mut verdict_on_chain = false;
        if !signature_recovers {
            if signer_code == Some(false) {
                return Err(Refusal::new(
                    RefusalCode::InvalidSignature,
                    format!(
                        "the signature is not {signer}'s on digest {digest} (escrow domain: chain {}, contract {})",
                        settings.chain_id, settings.escrow
                    ),
                )
                .into());
            }
            verdict_on_chain = true;
        }
        if let (Authorization::SellerClaim { amount, .. }, 0, false) =
            (&authorization, state.settledAmount, voucher_recovers)
        {
            if buyer_code == Some(false) {
                return Err(Refusal::new(
                    RefusalCode::InvalidVoucher,
                    format!(
                        "the voucher for {amount} is not signed by the buyer {}",
                        terms.buyer
                    ),
                )
                .into());
            }
            verdict_on_chain = true;
        }

        let t_checks = t0.elapsed();
        let calldata = authorization.calldata(terms);
        let from = self.inner.signers.first().copied().unwrap_or_default();
        let fees = settings.fees(head.base_fee);
        let (paused, simulation) = tokio::try_join!(
            self.sponsor_unavailable(),
            chain::simulate(
                provider,
                from,
                target,
                &calldata,
                fees,
                policy.max_gas_per_action
            )
        )?;
        if let Some(paused) = paused {
            return Err(paused.into());
        }
        let estimate = match simulation {
            Simulation::Ok(gas) => gas,
            Simulation::Reverts(refusal) => return Err(refusal.into()),
        };
        let gas_limit = sponsor::gas_limit(estimate, settings.gas_margin_percent);
        if gas_limit > policy.max_gas_per_action {
            return Err(Refusal::new(
                RefusalCode::GasCeilingExceeded,
                format!(
                    "the call needs about {estimate} gas ({gas_limit} with the safety margin); the \
                     sponsor pays at most {} per action",
                    policy.max_gas_per_action
                ),
            )
            .into());
        }

        let relay_id = format!("rel_{}", pactum_db::random_id(20));
        let new = NewJob {
            id: &relay_id,
            chain_id: settings.chain_id,
            agreement_id: id,
            action: kind,
            authorization: digest,
            signer,
            buyer: terms.buyer,
            seller: terms.seller,
            target,
            calldata: &calldata,
            deadline,
            gas_limit,
            requested_by: requester.principal,
            owner_id: requester.owner,
        };
        let t_sim = t0.elapsed();
        // The agreement's own acceptances are serialised (its quota is small). Every acceptance
        // holds the chain-wide acceptance lock from its usage read to its commit: shared while
        // the quotas and the budget are far (concurrent acceptances, at most one per database
        // connection, cannot together reach them), exclusive when they are close. An exclusive
        // holder therefore never counts beside an acceptance that read before it and commits
        // after it. A near-limit acceptance starts over under the exclusive lock (upgrading a
        // shared lock in place could deadlock two of them). A shared holder first takes one of
        // the chain's acceptance slots, so that "concurrent" is exact over every API process
        // sharing the database, not this process's pool.
        let concurrent = relay::ACCEPTANCE_SLOTS;
        let slot = u64::from(pactum_db::random_bytes()[0]);
        let mut exclusive = false;
        let mut attempts = 0;
        let (tx, outcome) = loop {
            attempts += 1;
            let mut tx = self.inner.db.pool().begin().await?;
            if !exclusive {
                relay::take_acceptance_slot(&mut tx, settings.chain_id, slot).await?;
            }
            relay::lock_agreement(&mut tx, settings.chain_id, id).await?;
            relay::lock_acceptance(&mut tx, settings.chain_id, exclusive).await?;
            let usage = relay::usage(&mut tx, settings.chain_id, id, signer, requester).await?;
            if !exclusive && sponsor::near_limits(policy, &usage, concurrent) {
                tx.rollback().await?;
                exclusive = true;
                continue;
            }
            sponsor::check_usage(policy, &usage, signer, requester, gas_limit)?;
            match relay::insert_job(&mut tx, &new).await {
                Ok(outcome) => break (tx, outcome),
                // The conflicting job finished between the insert and the lookup: once more.
                Err(pactum_db::Error::Corrupt { .. }) if attempts < 4 => tx.rollback().await?,
                Err(err) => return Err(err.into()),
            }
        };
        tx.commit().await?;
        tracing::debug!(
            checks_us = t_checks.as_micros() as u64,
            simulate_us = (t_sim - t_checks).as_micros() as u64,
            db_us = (t0.elapsed() - t_sim).as_micros() as u64,
            verdict_on_chain,
            "acceptance timing"
        );
        match outcome {
            Inserted::New(job) => {
                self.inner.metrics.accepted(kind);
                tracing::info!(relay_id = %job.id, agreement = %id, action = kind.as_str(), %signer, "sponsored action accepted");
                self.wake();
                Ok(Accepted {
                    job,
                    existing: false,
                })
            }
            Inserted::Existing(job) => Ok(Accepted {
                job,
                existing: true,
            }),
            Inserted::Competing(other) => Err(Refusal::new(
                RefusalCode::CompetingActionInFlight,
                format!(
                    "{} ({}) for this agreement is still in flight; retry once it is confirmed or failed",
                    other.id,
                    other.action.as_str()
                ),
            )
            .into()),
        }
    }
}

/// Whether `signature` is `account`'s over `digest` on `provider`'s chain: its ECDSA signature,
/// or, for an account with code, approved by its ERC-1271 `isValidSignature` (one `eth_call`
/// capped at `gas_cap`).
pub async fn wallet_signature_is_valid(
    provider: &DynProvider,
    account: Address,
    digest: B256,
    signature: &Bytes,
    gas_cap: u64,
) -> Result<bool, Error> {
    if recover(digest, signature) == Some(account) {
        return Ok(true);
    }
    if !chain::has_code(provider, account).await? {
        return Ok(false);
    }
    chain::erc1271_approves(provider, account, digest, signature, gas_cap).await
}
