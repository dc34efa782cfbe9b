//! The relayer's signer keys (`relay_signers`): the next nonce each may hand out, its last
//! observed balance, and the advisory lock that makes one process its only writer.

use alloy::primitives::{Address, U256};
use sqlx::{PgConnection, PgPool};

use crate::{
    Result,
    convert::{address, amount, int, uint},
};

const SIGNERS: &str = "relay_signers";

/// A signer key's last observed balance.
#[derive(Debug, Clone, PartialEq)]
pub struct SignerBalance {
    /// The key's address.
    pub address: Address,
    /// Its balance in wei, once observed.
    pub balance: Option<U256>,
    /// Seconds since that observation.
    pub age_seconds: Option<f64>,
}

/// Registers a signer key (starting at `chain_nonce`) or, if known, moves its next nonce up to
/// `chain_nonce` when the chain is ahead (the key was used elsewhere). Returns the next nonce.
pub async fn sync_signer(
    conn: &mut PgConnection,
    chain_id: u64,
    relayer: Address,
    chain_nonce: u64,
) -> Result<u64> {
    let next = sqlx::query_scalar!(
        "INSERT INTO relay_signers (chain_id, address, next_nonce) VALUES ($1, $2, $3)
         ON CONFLICT (chain_id, address)
         DO UPDATE SET next_nonce = GREATEST(relay_signers.next_nonce, EXCLUDED.next_nonce)
         RETURNING next_nonce",
        int(chain_id),
        relayer.as_slice(),
        int(chain_nonce)
    )
    .fetch_one(conn)
    .await?;
    uint(SIGNERS, next)
}

/// Records a signer's observed balance.
pub async fn record_balance(
    pool: &PgPool,
    chain_id: u64,
    relayer: Address,
    balance: U256,
) -> Result<()> {
    sqlx::query!(
        "UPDATE relay_signers SET balance = $3::text::numeric, balance_at = now()
          WHERE chain_id = $1 AND address = $2",
        int(chain_id),
        relayer.as_slice(),
        balance.to_string()
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Every signer key of the chain with its last observed balance.
pub async fn signer_balances(pool: &PgPool, chain_id: u64) -> Result<Vec<SignerBalance>> {
    sqlx::query!(
        r#"SELECT address, balance::text AS balance,
                  extract(epoch FROM now() - balance_at)::float8 AS age
             FROM relay_signers WHERE chain_id = $1 ORDER BY address"#,
        int(chain_id)
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| {
        Ok(SignerBalance {
            address: address(SIGNERS, &r.address)?,
            balance: r.balance.map(|b| amount(SIGNERS, &b)).transpose()?,
            age_seconds: r.age,
        })
    })
    .collect()
}

/// Hands out `count` consecutive nonces of `relayer`; returns the first.
pub async fn reserve_nonces(
    conn: &mut PgConnection,
    chain_id: u64,
    relayer: Address,
    count: u64,
) -> Result<u64> {
    let first = sqlx::query_scalar!(
        r#"UPDATE relay_signers SET next_nonce = next_nonce + $3
            WHERE chain_id = $1 AND address = $2
        RETURNING next_nonce - $3 AS "first!""#,
        int(chain_id),
        relayer.as_slice(),
        int(count)
    )
    .fetch_one(conn)
    .await?;
    uint(SIGNERS, first)
}

/// The highest nonce the relayer holds open for `relayer` plus one, i.e. its next nonce.
pub async fn next_nonce(pool: &PgPool, chain_id: u64, relayer: Address) -> Result<Option<u64>> {
    sqlx::query_scalar!(
        "SELECT next_nonce FROM relay_signers WHERE chain_id = $1 AND address = $2",
        int(chain_id),
        relayer.as_slice()
    )
    .fetch_optional(pool)
    .await?
    .map(|n| uint(SIGNERS, n))
    .transpose()
}

/// Tries to become the one writer for `relayer` on `chain_id`: a session-level advisory lock,
/// held until `conn` closes (a crashed writer's lock goes with its connection). `conn` must not
/// go back to a pool while held. See [`crate::locks`].
pub async fn try_lock_signer(
    conn: &mut PgConnection,
    chain_id: u64,
    relayer: Address,
) -> Result<bool> {
    let address = format!("{relayer:#x}");
    crate::locks::try_lock(
        conn,
        crate::locks::Lock::Signer {
            chain_id,
            address: &address,
        },
    )
    .await
}
