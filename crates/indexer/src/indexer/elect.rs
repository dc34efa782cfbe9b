//! Several indexers over one database: one writes, the others stand by.
//!
//! The writer holds the chain's index lock ([`pactum_db::locks::Lock::Indexer`]), a session
//! advisory lock on a connection of its own, and checks once a second that it still does; the
//! others try to take it once a second and meanwhile only follow the node's head (so that every
//! process reports the index's lag). A writer that dies loses the lock with its connection and a
//! standby takes over within about [`STANDBY_POLL`] (a host that vanishes without closing its
//! connection: [`pactum_db::locks::DEAD_PEER_SECS`] more). A writer that loses its lock (its
//! connection, or the database, went away) stops at once and stands by again.
//!
//! The lock keeps writers from working side by side; correctness does not rest on it alone:
//! every batch moves the checkpoint with a compare-and-set in its own transaction, so a writer
//! that still believes it leads after losing the lock cannot commit over its successor's work
//! ([`pactum_db::Error::CursorMoved`], after which it stands by).

use std::time::Duration;

use pactum_db::locks::{self, Lock};
use sqlx::PgConnection;
use tokio::sync::watch;

use super::Indexer;
use crate::Error;

/// How often a standby tries to take the lock (and a writer checks it still holds it).
pub const STANDBY_POLL: Duration = Duration::from_secs(1);
/// How long a writer's lock check may take before the writer assumes it lost the lock.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

impl Indexer {
    /// Runs as one of any number of indexers over the same database until `shutdown` turns
    /// true: indexes while this process holds the chain's index lock, stands by otherwise (see
    /// the module's documentation). Returns only on shutdown or on an error that retrying cannot
    /// fix, as [`Indexer::run`].
    pub async fn run_elected(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), Error> {
        let lock = Lock::Indexer {
            chain_id: self.config.chain_id,
        };
        // The standby's connection, kept between its attempts.
        let mut standby: Option<PgConnection> = None;
        let mut announced = false;
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let Some(conn) = self.try_lead(&mut standby, lock).await else {
                if !announced {
                    tracing::info!(
                        chain_id = self.config.chain_id,
                        "another process writes the index; standing by"
                    );
                    announced = true;
                }
                self.observe_head().await;
                tokio::select! {
                    () = tokio::time::sleep(STANDBY_POLL) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            };
            announced = false;
            self.metrics.lead(true);
            tracing::info!(
                chain_id = self.config.chain_id,
                "took the index writer lock; indexing"
            );
            let (stop, stopped) = watch::channel(false);
            let watch_lock = tokio::spawn(keep(conn, lock, stop, shutdown.clone()));
            let term = self.follow(stopped, true).await;
            // Dropping the task drops its connection, which releases the lock.
            watch_lock.abort();
            let _ = watch_lock.await;
            self.metrics.lead(false);
            match term {
                Ok(()) if *shutdown.borrow() => return Ok(()),
                Ok(()) => tracing::warn!(
                    chain_id = self.config.chain_id,
                    "lost the index writer lock; stopped writing and standing by"
                ),
                Err(Error::Db(pactum_db::Error::CursorMoved {
                    expected, found, ..
                })) => tracing::warn!(
                    chain_id = self.config.chain_id,
                    expected,
                    found,
                    "another writer moved the checkpoint; standing by"
                ),
                Err(err) => return Err(err),
            }
        }
    }

    /// Takes the lock on the standby connection (opening one if needed): the connection if it
    /// is now this process's, `None` if another process holds the lock or the database fails.
    async fn try_lead(
        &self,
        standby: &mut Option<PgConnection>,
        lock: Lock<'_>,
    ) -> Option<PgConnection> {
        let mut conn = match standby.take() {
            Some(conn) => conn,
            None => match self.db.pool().acquire().await {
                Ok(conn) => conn.detach(),
                Err(err) => {
                    tracing::warn!(%err, "cannot reach the database to take the index lock");
                    return None;
                }
            },
        };
        match locks::try_lock(&mut conn, lock).await {
            Ok(true) => Some(conn),
            Ok(false) => {
                *standby = Some(conn);
                None
            }
            Err(err) => {
                // The connection is dropped: the next attempt opens another.
                tracing::warn!(%err, "cannot take the index lock");
                None
            }
        }
    }

    /// A standby follows the node's head, so that its lag metric shows a stalled writer.
    async fn observe_head(&self) {
        if let Ok(Ok(head)) = tokio::time::timeout(STANDBY_POLL, self.source.head()).await {
            self.metrics.set_head(head);
        }
    }
}

/// Checks every [`STANDBY_POLL`] that `conn` still holds `lock`, and turns `stop` true when it
/// does not (or does not answer in time) or when `shutdown` does. Holds the connection, and
/// with it the lock, until dropped.
async fn keep(
    mut conn: PgConnection,
    lock: Lock<'static>,
    stop: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(STANDBY_POLL) => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            let _ = stop.send(true);
            return;
        }
        let held = tokio::time::timeout(CHECK_TIMEOUT, locks::holds(&mut conn, lock))
            .await
            .unwrap_or(false);
        if !held {
            let _ = stop.send(true);
            // Keep the (now useless) connection until the writer has stopped and drops us.
            std::future::pending::<()>().await;
        }
    }
}
