/// Errors of the database layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be reached, or the URL is invalid.
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    /// Applying the migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// A stored value is not what the schema promises (e.g. a 20-byte address column).
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// The table the row came from.
        table: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The checkpoint moved under us: another indexer is writing the same chain.
    #[error(
        "indexer checkpoint for chain {chain_id} is at block {found}, expected {expected}: is another indexer running?"
    )]
    CursorMoved {
        /// The chain.
        chain_id: u64,
        /// The block this writer expected the checkpoint at.
        expected: i64,
        /// Where it actually is.
        found: i64,
    },
    /// The stored checkpoint belongs to other contracts than the ones configured.
    #[error(
        "database indexes other contracts for chain {chain_id} ({detail}); use another database or the same configuration"
    )]
    ConfigMismatch {
        /// The chain.
        chain_id: u64,
        /// What differs.
        detail: String,
    },
}

impl Error {
    /// Whether trying again later may succeed: the server went away, restarted or is starting,
    /// a connection broke, the pool timed out, or a transaction lost a serialization race. A
    /// corrupt row, a moved checkpoint, another configuration or a failed migration will not
    /// fix themselves.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect(_) => true,
            Self::Query(err) => transient(err),
            Self::Migrate(_)
            | Self::Corrupt { .. }
            | Self::CursorMoved { .. }
            | Self::ConfigMismatch { .. } => false,
        }
    }
}

fn transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        // SQLSTATE classes: 08 connection exception, 53 insufficient resources, 57P operator
        // intervention (admin shutdown, crash shutdown, cannot connect now: a restart or
        // `pg_terminate_backend`); 40001 / 40P01 a serialization failure or deadlock.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || code == "40001"
                || code == "40P01"
        }),
        _ => false,
    }
}

/// Result alias of the database layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_is_transient_and_a_broken_promise_is_not() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(Error::Query(sqlx::Error::Io(io)).is_transient());
        assert!(Error::Query(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!Error::Query(sqlx::Error::PoolClosed).is_transient());
        assert!(!Error::Query(sqlx::Error::RowNotFound).is_transient());
        let corrupt = Error::Corrupt {
            table: "t",
            detail: "x".into(),
        };
        assert!(!corrupt.is_transient());
        let moved = Error::CursorMoved {
            chain_id: 1,
            expected: 1,
            found: 2,
        };
        assert!(!moved.is_transient());
    }
}
