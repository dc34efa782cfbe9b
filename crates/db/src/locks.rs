//! Session advisory locks that make one process the writer of something (the chain index, a
//! relayer key) among several over the same database.
//!
//! A lock is held by one dedicated connection (taken out of any pool) until that connection
//! closes: a process that dies loses its locks as soon as the server notices the connection is
//! gone. A killed process's socket is closed by its kernel, which the server sees at once; a
//! host that vanishes without closing anything is noticed through TCP keepalives, which
//! [`try_lock`] tightens on the lock's own session (about [`DEAD_PEER_SECS`] seconds).

use sqlx::PgConnection;

use crate::Result;

/// Roughly how long the server takes to notice that the host holding a lock vanished without
/// closing its connection: keepalive probes start after 5 idle seconds and 3 unanswered probes,
/// 2 seconds apart, end the session (and its locks); data left unacknowledged for 11 seconds
/// (`tcp_user_timeout`, which also covers the holder's own lock checks) ends it too.
pub const DEAD_PEER_SECS: u64 = 11;

/// What a lock protects; each names one key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock<'a> {
    /// The writer of chain `chain_id`'s index.
    Indexer {
        /// The chain.
        chain_id: u64,
    },
    /// The writer for relayer key `address` on chain `chain_id`.
    Signer {
        /// The chain.
        chain_id: u64,
        /// The key's address, as `0x…` text.
        address: &'a str,
    },
}

impl Lock<'_> {
    /// The lock's name, hashed into the advisory lock's 64-bit key.
    pub fn name(&self) -> String {
        match self {
            Self::Indexer { chain_id } => format!("pactum.indexer:{chain_id}"),
            Self::Signer { chain_id, address } => {
                format!("pactum.relay.signer:{chain_id}:{}", address.to_lowercase())
            }
        }
    }
}

/// Tries to take `lock` for `conn`'s session, without waiting: `true` if this session now holds
/// it. `conn` must not go back to a pool while it holds the lock (detach it). The session's TCP
/// keepalives are tightened first, so that the server releases the lock soon after this host
/// disappears (see [`DEAD_PEER_SECS`]; on a Unix-socket connection they do not apply, and a
/// dead process's socket closes anyway).
pub async fn try_lock(conn: &mut PgConnection, lock: Lock<'_>) -> Result<bool> {
    sqlx::query(
        "SELECT set_config('tcp_keepalives_idle', '5', false),
                set_config('tcp_keepalives_interval', '2', false),
                set_config('tcp_keepalives_count', '3', false),
                set_config('tcp_user_timeout', '11000', false)",
    )
    .execute(&mut *conn)
    .await?;
    let locked = sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS "locked!""#,
        lock.name()
    )
    .fetch_one(conn)
    .await?;
    Ok(locked)
}

/// Whether `conn`'s session still holds `lock` (false also when it no longer answers: whoever
/// held it must stop writing).
pub async fn holds(conn: &mut PgConnection, lock: Lock<'_>) -> bool {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (
             SELECT 1 FROM pg_locks
             WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 1
               AND ((classid::bigint << 32) | objid::bigint) = hashtextextended($1, 0)
           ) AS "held!""#,
        lock.name()
    )
    .fetch_one(conn)
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_per_chain_and_key() {
        let a = Lock::Indexer { chain_id: 1 }.name();
        let b = Lock::Indexer { chain_id: 2 }.name();
        let c = Lock::Signer {
            chain_id: 1,
            address: "0xAB",
        }
        .name();
        let d = Lock::Signer {
            chain_id: 1,
            address: "0xab",
        }
        .name();
        assert_ne!(a, b);
        assert_ne!(a, c);
        // The address is case-insensitive: a checksummed and a lowercase spelling are one key.
        assert_eq!(c, d);
    }
}
