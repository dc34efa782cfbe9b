//! The sponsored-action relayer against a real Anvil and a real PostgreSQL, through the HTTP
//! API: the parties only sign; the relayer's own key submits and pays.

mod activation;
mod endpoints;
mod faults;
mod isolation;
mod races;
mod refusals;
mod signers;

use std::time::{Duration, Instant};

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    sol_types::SolStruct,
};
use pactum_api::{
    AppState,
    agreements::AgreementSettings,
    auth::{Claims, JwtConfig, generate_api_key, sign_jwt},
};
use pactum_bindings::{Agreement, eip712};
use pactum_client::{
    Authorizer, Client,
    types::{BuyerWithdrawBody, InitiateCloseBody, JobState, RelayView, SellerClaimBody},
};
use pactum_core::agreement::terms::FeeSchedule;
use pactum_db::{Db, identity as principals, relay, testing::TestDatabase};
use pactum_devnet::{dev_signer, scenario};
use pactum_relayer::{Relayer, Settings, Worker};
use serde_json::Value;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use crate::{
    chain::{Chain, USDC},
    indexing::indexer,
};

/// A chain, a database, the API with a relayer, and (optionally) its worker.
pub(crate) struct Fixture {
    pub(crate) chain: Chain,
    pub(crate) db: TestDatabase,
    pub(crate) relayer: Relayer,
    pub(crate) key: PrivateKeySigner,
    /// The API as the buyer's agent.
    pub(crate) buyer_api: Client,
    /// The API as the seller's agent.
    pub(crate) seller_api: Client,
    pub(crate) stop: watch::Sender<bool>,
    worker: Option<JoinHandle<()>>,
    /// A provider without a wallet, on the same node.
    pub(crate) plain: DynProvider,
    /// The key the API's receipts are signed with (the issuer is the test's to run).
    pub(crate) receipt_key: PrivateKeySigner,
}

/// The owners' JWT key of the fixture's API.
const OWNER_JWT_SECRET: &[u8] = b"relayer-fixture-secret-of-32-bytes-or-more";

impl Fixture {
    /// The API as owner `owner_id`, with a JWT valid for ten minutes.
    pub(crate) fn owner_api(&self, owner_id: &str) -> Client {
        let now = pactum_core::Clock::now_secs(&pactum_core::SystemClock);
        let token = sign_jwt(
            &Claims {
                sub: owner_id.into(),
                exp: now + 600,
                iat: Some(now),
                nbf: None,
                iss: None,
                aud: None,
            },
            OWNER_JWT_SECRET,
        );
        self.buyer_api.authenticated(token)
    }

    /// A new owner with one agent (wallet `wallet`) and its API client.
    pub(crate) async fn other_owner<S: alloy::signers::Signer + Sync>(
        &self,
        owner_id: &str,
        agent_id: &str,
        wallet: &S,
    ) -> eyre::Result<Client> {
        let mut conn = self.db().pool().acquire().await?;
        let email = format!("ops@{owner_id}.test");
        principals::create_owner(&mut conn, owner_id, owner_id, &email).await?;
        self.chain
            .register_agent(self.db(), owner_id, agent_id, wallet)
            .await?;
        let (key_id, key, hash) = generate_api_key();
        principals::create_api_key(&mut conn, &key_id, agent_id, &hash, "test").await?;
        Ok(self.buyer_api.authenticated(key))
    }

    /// Starts everything; `tune` adjusts the relayer's settings before it starts. The worker is
    /// started by [`Fixture::start_worker`].
    pub(crate) async fn new(tune: impl FnOnce(&mut Settings)) -> eyre::Result<Self> {
        // `RUST_LOG=pactum_relayer=debug` shows what the worker does.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let chain = Chain::start().await?;
        let test_db = TestDatabase::create().await?;
        let db = test_db.db().clone();
        let d = &chain.deployment;
        let mut settings = Settings::new(d.chain_id, d.escrow, d.fee_collector);
        settings.poll_interval = Duration::from_millis(50);
        settings.stuck_after = Duration::from_millis(800);
        tune(&mut settings);
        let key = dev_signer(5);
        let plain = ProviderBuilder::new()
            .connect_http(chain.anvil_url().parse()?)
            .erased();
        let relayer =
            Relayer::new(db.clone(), plain.clone(), settings, vec![key.address()]).await?;

        let mut conn = db.pool().acquire().await?;
        principals::create_owner(&mut conn, "acme", "Acme", "ops@acme.test").await?;
        chain
            .register_agent(&db, "acme", "buyer", &chain.buyer)
            .await?;
        chain
            .register_agent(&db, "acme", "seller", &chain.seller)
            .await?;
        let mut keys = Vec::new();
        for agent in ["buyer", "seller"] {
            let (id, key, hash) = generate_api_key();
            principals::create_api_key(&mut conn, &id, agent, &hash, "test").await?;
            keys.push(key);
        }
        drop(conn);

        let mut state = AppState::new(
            db.clone(),
            d.chain_id,
            Some(JwtConfig {
                secret: OWNER_JWT_SECRET.to_vec(),
                issuer: None,
                audience: None,
            }),
        );
        state.relayer = Some(relayer.clone());
        // Usage agreements in the deployment's USDC, with the local stack's 1 % fee.
        state.agreements = Some(AgreementSettings {
            escrow: d.escrow,
            fee_collector: d.fee_collector,
            token: d.token,
            decimals: 6,
            fees: FeeSchedule::LOCAL,
        });
        // One trusted-token list for the views and the relayer, as `pactum serve` configures.
        state.trusted_tokens = relayer.settings().policy.trusted_tokens.clone();
        let receipt_key = PrivateKeySigner::random();
        state.receipts = Some(pactum_api::receipts::ReceiptSettings {
            signer: receipt_key.address(),
            retired: Vec::new(),
            contracts: pactum_core::escrow::events::Contracts {
                escrow: d.escrow,
                fee_collector: d.fee_collector,
            },
        });
        // The tests' webhook receivers listen on loopback, over plain http.
        state.webhook_destinations = pactum_api::webhooks::Destinations {
            allow_http: true,
            allow_private: true,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, rx) = watch::channel(false);
        tokio::spawn(pactum_api::serve(listener, state, rx));
        let api = Client::new(&base)?;
        let (buyer_api, seller_api) = (api.authenticated(&keys[0]), api.authenticated(&keys[1]));
        Ok(Self {
            chain,
            db: test_db,
            relayer,
            key,
            buyer_api,
            seller_api,
            stop,
            worker: None,
            plain,
            receipt_key,
        })
    }

    pub(crate) fn db(&self) -> &Db {
        self.db.db()
    }

    /// Starts the relayer's worker for its key, and waits for its first round.
    pub(crate) async fn start_worker(&mut self) -> eyre::Result<()> {
        let worker = Worker::new(self.relayer.clone(), self.key.clone());
        let rx = self.stop.subscribe();
        self.worker = Some(tokio::spawn(async move {
            if let Err(err) = worker.run(rx).await {
                eprintln!("worker stopped: {err}");
            }
        }));
        let started = Instant::now();
        while self.relayer.sponsor_unavailable().await?.is_some() {
            eyre::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "worker did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Stops the background worker (jobs stay queued).
    pub(crate) async fn stop_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.abort();
            let _ = worker.await;
        }
    }

    /// Runs one worker round by hand (no background worker).
    pub(crate) async fn round(&self) -> eyre::Result<()> {
        let mut worker = Worker::new(self.relayer.clone(), self.key.clone());
        worker.round().await?;
        Ok(())
    }

    /// Activates fresh terms directly (the buyer's package, submitted by the test's own
    /// account) and indexes them; returns the terms and id.
    pub(crate) async fn active_agreement(&self, salt: &str) -> eyre::Result<(Agreement, B256)> {
        self.active_agreement_with(self.chain.seller.address(), salt)
            .await
    }

    /// [`Fixture::active_agreement`] with another seller (any address, e.g. a contract).
    pub(crate) async fn active_agreement_with(
        &self,
        seller: Address,
        salt: &str,
    ) -> eyre::Result<(Agreement, B256)> {
        let c = &self.chain;
        let terms = c.agreement(c.buyer.address(), seller, salt).await?;
        let (id, _) = scenario::activate(
            &c.provider,
            &c.deployment,
            &terms,
            &c.buyer,
            c.relayer.address(),
        )
        .await?;
        self.index().await?;
        Ok((terms, id))
    }

    /// Brings the index up to the head.
    pub(crate) async fn index(&self) -> eyre::Result<()> {
        indexer(&self.chain, self.db(), |c| c.confirmations = 0)
            .await?
            .catch_up()
            .await?;
        Ok(())
    }

    pub(crate) async fn now(&self) -> eyre::Result<u64> {
        Ok(scenario::latest_timestamp(&self.chain.provider).await?)
    }

    pub(crate) fn domain(&self) -> alloy::sol_types::Eip712Domain {
        let d = &self.chain.deployment;
        eip712::escrow_domain(d.chain_id, d.escrow)
    }

    /// The relayer key's mined nonce.
    pub(crate) async fn relayer_nonce(&self) -> eyre::Result<u64> {
        Ok(self.plain.get_transaction_count(self.key.address()).await?)
    }

    /// The buyer's sponsored close of `id` with `deadline`, posted under `key`; asserts it is
    /// accepted and returns the relay id.
    pub(crate) async fn buyer_close(
        &self,
        id: B256,
        deadline: u64,
        key: &str,
    ) -> eyre::Result<String> {
        let body = self
            .sign(id)
            .initiate_close(&self.chain.buyer, deadline)
            .await?;
        let accepted = self
            .buyer_api
            .sponsor_initiate_close(id, &body, key)
            .await?;
        eyre::ensure!(accepted.status == 202, "{accepted:?}");
        Ok(accepted.body.relay_id)
    }

    /// Polls a relay until it reaches `state` (or fails the test after 30 s).
    pub(crate) async fn wait_for(
        &self,
        id: B256,
        relay_id: &str,
        state: JobState,
    ) -> eyre::Result<RelayView> {
        Ok(self
            .buyer_api
            .wait_sponsored_action(id, relay_id, Duration::from_secs(30), |r| r.status == state)
            .await?)
    }

    /// Signs authorizations for agreement `id`.
    pub(crate) fn sign(&self, id: B256) -> Sign<'_> {
        Sign { f: self, id }
    }

    /// A job by relay id.
    pub(crate) async fn job(&self, relay_id: &str) -> eyre::Result<relay::Job> {
        self.relayer
            .job(relay_id)
            .await?
            .map(|(job, _)| job)
            .ok_or_else(|| eyre::eyre!("no job {relay_id}"))
    }

    /// Mines `tx` in the same block as the relayer's next batch, ahead of it: a worker round
    /// broadcasts while the node does not mine, `tx` follows with a higher tip, one block is
    /// mined, then a round reads the outcome (the node mines on demand again).
    pub(crate) async fn ahead_of_the_relayer(&self, tx: TransactionRequest) -> eyre::Result<()> {
        self.around_the_relayer(tx, None).await
    }

    /// [`Fixture::ahead_of_the_relayer`], with `after` (sent by the same account, at a lower
    /// tip) mined right behind the relayer's transaction in the same block.
    pub(crate) async fn around_the_relayer(
        &self,
        tx: TransactionRequest,
        after: Option<TransactionRequest>,
    ) -> eyre::Result<()> {
        let gwei = 1_000_000_000u128;
        let automine = |on: bool| async move {
            let _: Value = self
                .plain
                .raw_request("evm_setAutomine".into(), (on,))
                .await?;
            Ok::<_, eyre::Report>(())
        };
        automine(false).await?;
        self.round().await?;
        let tx = tx
            .gas_limit(200_000)
            .max_priority_fee_per_gas(50 * gwei)
            .max_fee_per_gas(100 * gwei);
        let pending = self.chain.provider.send_transaction(tx).await?;
        let behind = match after {
            Some(after) => {
                // Anvil orders a block by fee: no tip and a fee cap just above the base fee put
                // it behind the relayer's transaction (twice the base fee plus a tip).
                let base = self
                    .plain
                    .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
                    .await?
                    .and_then(|b| b.header.base_fee_per_gas)
                    .ok_or_else(|| eyre::eyre!("no base fee"))?;
                let after = after
                    .gas_limit(200_000)
                    .max_priority_fee_per_gas(0)
                    .max_fee_per_gas(u128::from(base) * 5 / 4 + 1);
                Some(self.chain.provider.send_transaction(after).await?)
            }
            None => None,
        };
        let _: Value = self.plain.raw_request("evm_mine".into(), ()).await?;
        eyre::ensure!(
            pending.get_receipt().await?.status(),
            "the racing call reverted"
        );
        if let Some(behind) = behind {
            eyre::ensure!(
                behind.get_receipt().await?.status(),
                "the call behind reverted"
            );
        }
        automine(true).await?;
        self.round().await
    }

    pub(crate) async fn jobs(&self) -> eyre::Result<i64> {
        Ok(
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM relay_jobs")
                .fetch_one(self.db().pool())
                .await?,
        )
    }

    pub(crate) async fn attempts(&self) -> eyre::Result<i64> {
        Ok(
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM relay_attempts")
                .fetch_one(self.db().pool())
                .await?,
        )
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(worker) = self.worker.take() {
            worker.abort();
        }
    }
}

/// Signed request bodies for one agreement, through the client's [`Authorizer`] (the
/// unchecked `*_at` forms: the tests choose deadlines the API may refuse).
pub(crate) struct Sign<'a> {
    f: &'a Fixture,
    id: B256,
}

impl Sign<'_> {
    /// `signer`'s authorizations for its own address.
    pub(crate) fn by<'s>(&self, signer: &'s PrivateKeySigner) -> Authorizer<'s, PrivateKeySigner> {
        let d = &self.f.chain.deployment;
        Authorizer::new(signer, d.chain_id, d.escrow, self.id)
    }

    pub(crate) async fn initiate_close(
        &self,
        party: &PrivateKeySigner,
        deadline: u64,
    ) -> eyre::Result<InitiateCloseBody> {
        Ok(self.by(party).initiate_close_at(deadline).await?)
    }

    /// The buyer's voucher for a cumulative `amount`.
    pub(crate) async fn voucher(&self, amount: u64) -> eyre::Result<Bytes> {
        Ok(self
            .by(&self.f.chain.buyer)
            .voucher(U256::from(amount))
            .await?)
    }

    /// The seller's claim of `amount`, with the buyer's voucher for it.
    pub(crate) async fn seller_claim(
        &self,
        amount: u64,
        recipient: Address,
        deadline: u64,
    ) -> eyre::Result<SellerClaimBody> {
        let voucher = self.voucher(amount).await?;
        Ok(self
            .by(&self.f.chain.seller)
            .seller_claim_at(U256::from(amount), &voucher, recipient, deadline)
            .await?)
    }

    pub(crate) async fn buyer_withdraw(
        &self,
        recipient: Address,
        deadline: u64,
    ) -> eyre::Result<BuyerWithdrawBody> {
        Ok(self
            .by(&self.f.chain.buyer)
            .buyer_withdraw_at(recipient, deadline)
            .await?)
    }
}

/// The digest a message hashes to under the escrow domain (for comparing with the API's).
pub(crate) fn digest<S: SolStruct>(f: &Fixture, message: &S) -> B256 {
    message.eip712_signing_hash(&f.domain())
}

pub(crate) const AMOUNT: u64 = 40 * USDC;

/// The jobs table as (state, count), for assertions.
pub(crate) async fn states(f: &Fixture) -> eyre::Result<Vec<(JobState, u64)>> {
    Ok(relay::jobs_by_state(f.db().pool(), f.chain.deployment.chain_id).await?)
}
