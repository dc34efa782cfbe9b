//! A fresh, migrated database per test on the real PostgreSQL (`PACTUM_PG_URL`, by default
//! `postgres://postgres@127.0.0.1:5432`), dropped when the test finishes.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::{Db, Result};

const PREFIX: &str = "pactum_t_";

/// The server URL (without a database name) tests use.
pub fn server_url() -> String {
    std::env::var("PACTUM_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database created for one test. Call [`TestDatabase::drop_database`] at the end; databases
/// left behind by crashed test processes are removed the next time one is created.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    db: Db,
}

impl TestDatabase {
    /// Creates and migrates `pactum_t_<pid>_<n>`.
    pub async fn create() -> Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let name = format!("{PREFIX}{pid}_{}", COUNTER.fetch_add(1, Ordering::Relaxed));
        let mut admin = admin_connection().await?;
        remove_orphans(&mut admin).await?;
        // The name is our prefix, a pid and a counter: no injection possible.
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await?;
        let url = format!("{}/{name}", server_url());
        let db = Db::connect(&url, 8).await?;
        Ok(Self { name, url, db })
    }

    /// The migrated database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Its URL (for a process under test).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Closes the pool and drops the database.
    pub async fn drop_database(self) -> Result<()> {
        self.db.pool().close().await;
        let mut admin = admin_connection().await?;
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        )))
        .execute(&mut admin)
        .await?;
        Ok(())
    }
}

async fn admin_connection() -> Result<PgConnection> {
    PgConnection::connect(&format!("{}/postgres", server_url()))
        .await
        .map_err(crate::Error::Connect)
}

/// Drops test databases whose creating process is gone.
async fn remove_orphans(admin: &mut PgConnection) -> Result<()> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'pactum\\_t\\_%'")
            .fetch_all(&mut *admin)
            .await?;
    for name in names {
        let pid = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let alive = pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        // Only names of our own pattern (prefix, pid, counter) reach this point.
        let ours = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !alive && ours {
            sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut *admin)
            .await?;
        }
    }
    Ok(())
}
