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
    /// fix, as [`Indexer::run`]; a node behind the index (another process's node may have been
    /// ahead) is waited out instead.
    pub async fn run_elected(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), Error> {
        let lock = Lock::Indexer {
            chain_id: self.config.chain_id,
        };
        // The standby's connection, kept between its attempts.
        let mut standby: Option<PgConnection> = None;
        let mut announced = false;
        let mut pause = STANDBY_POLL;
        loop {
            if stopped(&shutdown) {
                return Ok(());
            }
            let conn = match self.try_lead(&mut standby, lock).await {
                Ok(Some(conn)) => conn,
                Ok(None) => {
                    if !announced {
                        tracing::info!(
                            chain_id = self.config.chain_id,
                            "another process writes the index; standing by"
                        );
                        announced = true;
                    }
                    self.observe_head().await;
                    wait(&mut shutdown, pause).await;
                    pause = STANDBY_POLL;
                    continue;
                }
                Err(err) => {
                    tracing::warn!(%err, "cannot reach the database to take the index lock");
                    wait(&mut shutdown, pause).await;
                    continue;
                }
            };
            announced = false;
            self.metrics.lead(true);
            tracing::info!(
                chain_id = self.config.chain_id,
                "took the index writer lock; indexing"
            );
            let (stop, stopped_rx) = watch::channel(false);
            let watch_lock = Guard(tokio::spawn(keep(conn, lock, stop, shutdown.clone())));
            let term = self.follow(stopped_rx, true).await;
            // Only now, with nothing more to commit, the lock goes (with its connection).
            drop(watch_lock);
            self.metrics.lead(false);
            // Whatever failed during the term is this writer's to report, not the standby's.
            self.metrics.db_recovered();
            match term {
                Ok(()) if stopped(&shutdown) => return Ok(()),
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
                Err(Error::NodeWentBackwards { head, indexed, .. }) => {
                    // Another process's node was further ahead: let it (or this node, once it
                    // catches up) take over.
                    tracing::error!(
                        chain_id = self.config.chain_id,
                        head,
                        indexed,
                        "this process's node is behind the index; standing by until it catches up"
                    );
                    pause = NODE_BEHIND_PAUSE;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Takes the lock on the standby connection (opening one if needed): the connection if it
    /// is now this process's, `None` if another process holds the lock. Database failures are
    /// counted (they make `/ready` fail) until an attempt gets an answer.
    async fn try_lead(
        &self,
        standby: &mut Option<PgConnection>,
        lock: Lock<'_>,
    ) -> Result<Option<PgConnection>, pactum_db::Error> {
        let attempt = async {
            let mut conn = match standby.take() {
                Some(conn) => conn,
                None => self.db.pool().acquire().await?.detach(),
            };
            // On an error the connection is dropped: the next attempt opens another.
            let locked = locks::try_lock(&mut conn, lock).await?;
            Ok::<_, pactum_db::Error>((locked, conn))
        };
        match attempt.await {
            Ok((true, conn)) => {
                self.metrics.db_recovered();
                Ok(Some(conn))
            }
            Ok((false, conn)) => {
                self.metrics.db_recovered();
                *standby = Some(conn);
                Ok(None)
            }
            Err(err) => {
                self.metrics.db_failed();
                Err(err)
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

/// How long a process whose node is behind the index waits before it tries the lock again.
const NODE_BEHIND_PAUSE: Duration = Duration::from_secs(10);

/// Whether `shutdown` says stop (or its sender is gone).
fn stopped(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

/// Sleeps `pause`, or less if `shutdown` changes (or its sender goes).
async fn wait(shutdown: &mut watch::Receiver<bool>, pause: Duration) {
    tokio::select! {
        () = tokio::time::sleep(pause) => {}
        _ = shutdown.changed() => {}
    }
}

/// Aborts the lock-keeping task (and so closes its connection) when dropped, also when the
/// `run_elected` future itself is dropped.
struct Guard(tokio::task::JoinHandle<()>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Checks every [`STANDBY_POLL`] that `conn` still holds `lock`, and turns `stop` true when it
/// does not (or does not answer in time) or when `shutdown` does. Holds the connection, and
/// with it the lock, until aborted: the writer releases it only once it has stopped writing.
async fn keep(
    mut conn: PgConnection,
    lock: Lock<'static>,
    stop: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        wait(&mut shutdown, STANDBY_POLL).await;
        if stopped(&shutdown) {
            break;
        }
        let held = tokio::time::timeout(CHECK_TIMEOUT, locks::holds(&mut conn, lock))
            .await
            .unwrap_or(false);
        if !held {
            break;
        }
    }
    let _ = stop.send(true);
    // Keep the connection (and the lock, if still held) until the writer has stopped.
    std::future::pending::<()>().await;
}
