//! `pactum admin`: registering owners, agents and API keys, and minting owner JWTs — the local
//! stand-in for the reference's guided onboarding and SSO.

use std::time::{SystemTime, UNIX_EPOCH};

use eyre::{WrapErr, eyre};
use pactum_api::auth::{Claims, generate_api_key, sign_jwt};

use crate::{
    config::{Config, Pool},
    indexer::connect,
};

/// `pactum admin ...`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    service: crate::indexer::ServiceArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Register an owner (`id` is the subject of its JWTs).
    CreateOwner {
        /// Owner id.
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Verified email.
        #[arg(long)]
        email: String,
    },
    /// Register an agent of an owner, acting from a wallet whose key proves it (the wallet
    /// signs the registration here, as `POST /agents` requires; local stack).
    CreateAgent {
        /// Agent id.
        #[arg(long)]
        id: String,
        /// The owner.
        #[arg(long)]
        owner: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// The wallet's private key (hex), which signs the registration. Read from the
        /// environment rather than the command line where possible.
        #[arg(long, env = "PACTUM_ADMIN_WALLET_KEY", hide_env_values = true)]
        wallet_key: String,
    },
    /// Issue an API key for an agent; the key is printed once and only its hash is stored.
    CreateKey {
        /// The agent.
        #[arg(long)]
        agent: String,
        /// A label to recognise the key by.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Mint an owner JWT with the configured `api.jwt_secret` (what the identity provider would
    /// issue after SSO).
    Token {
        /// The owner.
        #[arg(long)]
        owner: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
}

pub(crate) async fn run(args: Args) -> eyre::Result<()> {
    let config = Config::load(args.service.config.as_deref())?;
    let db = connect(&config, Pool::Api).await?;
    let mut conn = db.pool().acquire().await?;
    match args.command {
        Command::CreateOwner { id, name, email } => {
            pactum_db::identity::create_owner(&mut conn, &id, &name, &email)
                .await
                .wrap_err("cannot create the owner")?;
            println!("owner {id} created");
        }
        Command::CreateAgent {
            id,
            owner,
            name,
            wallet_key,
        } => {
            let key: alloy::signers::local::PrivateKeySigner =
                wallet_key.trim().parse().map_err(|_| {
                    eyre!("--wallet-key is not a secp256k1 private key (0x + 64 hex digits)")
                })?;
            pactum_api::identity::register_with_key(
                &db,
                config.registration_deployment()?,
                &owner,
                &id,
                &name,
                &key,
            )
            .await
            .map_err(|p| eyre!("cannot register the agent: {} ({})", p.0.detail, p.0.code))?;
            println!(
                "agent {id} of {owner} registered (wallet {}, proven)",
                key.address()
            );
        }
        Command::CreateKey { agent, label } => {
            let (id, key, hash) = generate_api_key();
            pactum_db::identity::create_api_key(&mut conn, &id, &agent, &hash, &label)
                .await
                .wrap_err("cannot create the key (does the agent exist?)")?;
            eprintln!("API key {id} for agent {agent} (shown once; store it now):");
            println!("{key}");
        }
        Command::Token { owner, ttl } => {
            let jwt = config
                .jwt()?
                .ok_or_else(|| eyre!("api.jwt_secret (PACTUM_API_JWT_SECRET) is not configured"))?;
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            let claims = Claims {
                sub: owner,
                exp: now + ttl,
                iat: Some(now),
                nbf: None,
                iss: jwt.issuer.clone(),
                aud: jwt.audience.clone(),
            };
            println!("{}", sign_jwt(&claims, &jwt.secret));
        }
    }
    Ok(())
}
