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

/// Result alias of the database layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
