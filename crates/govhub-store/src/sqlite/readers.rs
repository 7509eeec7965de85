//! The reader connections, and the snapshots the point lookups share.
//!
//! Every SQLite statement outside a transaction opens a read transaction and closes it
//! again: it locks a WAL read mark in the shared-memory index (an `fcntl` lock when no
//! other connection of the process holds that mark), looks up the database size (an
//! `fstat` when the WAL is empty) and unlocks it all at the end. For the consumer API's
//! keyed lookup that was about 5 µs of the 65 µs a request cost (docs/benchmarks.md,
//! session 9). So the point lookups ([`Pool::take_snapshot`]) keep a reader's read
//! transaction open and serve the next lookups from the same snapshot while it is
//! both:
//! - younger than [`SNAPSHOT_REUSE`], and
//! - not older than this process's last write: every write through the writer
//!   connection moves [`Pool::written`] on when it ends, and a snapshot begun before
//!   that is not used again. A revoked grant or token is refused by the very next
//!   lookup, as without the reuse.
//!
//! A write by another process on the same file (a CLI command) is seen at most
//! [`SNAPSHOT_REUSE`] later. A thread of its own ends the snapshots of connections left
//! idle in the pool within [`CLOSER_EVERY`] of that age, so a kept snapshot never
//! holds the checkpointer back for long. Other reads ([`Pool::take`]) end a kept snapshot
//! first and run in their own transactions as before.

use super::{db, lock, refused, StoreResult};
use rusqlite::Connection;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long the point lookups may share one snapshot.
pub(crate) const SNAPSHOT_REUSE: Duration = Duration::from_millis(2);

/// How often the closer looks for idle readers' snapshots to end: an idle snapshot
/// lives at most [`SNAPSHOT_REUSE`] plus this.
const CLOSER_EVERY: Duration = Duration::from_millis(20);

/// A reader connection, with the read transaction it keeps open for reuse (if any).
pub(crate) struct Reader {
    pub(crate) conn: Connection,
    snapshot: Option<Snapshot>,
}

#[derive(Clone, Copy)]
struct Snapshot {
    /// When its transaction began (before its first read).
    since: Instant,
    /// [`Pool::written`] before it began.
    written: u64,
}

impl Reader {
    pub(crate) fn new(conn: Connection) -> Reader {
        Reader { conn, snapshot: None }
    }

    /// End the read transaction kept open, if any.
    fn end_snapshot(&mut self) {
        if self.snapshot.take().is_some() && !self.conn.is_autocommit() {
            // A read transaction has nothing to commit; this only releases its locks.
            if let Err(e) = self.run("COMMIT") {
                tracing::warn!(error = %e, "ending a reader's snapshot failed");
            }
        }
    }

    /// Open a read transaction to keep (its snapshot is taken by its first read).
    fn begin_snapshot(&mut self, written: u64) -> StoreResult<()> {
        self.end_snapshot();
        let since = Instant::now();
        self.run("BEGIN").map_err(db)?;
        self.snapshot = Some(Snapshot { since, written });
        Ok(())
    }

    /// `BEGIN` or `COMMIT`, prepared once per connection (both run on every snapshot).
    fn run(&self, sql: &str) -> rusqlite::Result<usize> {
        self.conn.prepare_cached(sql).and_then(|mut s| s.execute([]))
    }

    fn snapshot_open(&self) -> bool {
        self.snapshot.is_some()
    }
}

struct Idle {
    readers: Vec<Reader>,
    /// The closer thread is watching (it sleeps until woken otherwise).
    watched: bool,
    shutdown: bool,
}

/// The reader connections not in use, and the count of writes that ends snapshots.
pub(crate) struct Pool {
    idle: Mutex<Idle>,
    wake: Condvar,
    /// Writes this process has finished through the writer connection.
    written: AtomicU64,
    reuse: Duration,
}

impl Pool {
    /// A pool of `readers`, and its closer thread (which ends with [`Pool::shut_down`]).
    pub(crate) fn start(readers: Vec<Reader>, reuse: Duration) -> StoreResult<Arc<Pool>> {
        let pool = Arc::new(Pool {
            idle: Mutex::new(Idle { readers, watched: false, shutdown: false }),
            wake: Condvar::new(),
            written: AtomicU64::new(0),
            reuse,
        });
        let watched = Arc::clone(&pool);
        std::thread::Builder::new()
            .name("govhub-snapshots".into())
            .spawn(move || watched.close_old_snapshots())
            .map_err(|e| refused(format!("cannot start the SQLite snapshot closer thread: {e}")))?;
        Ok(pool)
    }

    /// A writer has finished (committed or not): snapshots begun before now are stale.
    pub(crate) fn wrote(&self) {
        self.written.fetch_add(1, Ordering::Release);
    }

    /// A reader for a transaction of its own (no snapshot kept open on it).
    pub(crate) fn take(self: &Arc<Pool>) -> Option<Checkout> {
        let mut r = lock(&self.idle).readers.pop()?;
        r.end_snapshot();
        Some(Checkout { pool: Arc::clone(self), reader: Some(r) })
    }

    /// A reader whose read transaction is open on a snapshot fit to share: the one it
    /// kept if that is still young and no write has ended since it began, else a new one.
    pub(crate) fn take_snapshot(self: &Arc<Pool>) -> StoreResult<Option<Checkout>> {
        let Some(mut r) = lock(&self.idle).readers.pop() else { return Ok(None) };
        let written = self.written.load(Ordering::Acquire);
        let fresh = r.snapshot.is_some_and(|s| s.written == written && s.since.elapsed() < self.reuse);
        let begun = if fresh { Ok(()) } else { r.begin_snapshot(written) };
        let checkout = Checkout { pool: Arc::clone(self), reader: Some(r) };
        begun.map(|()| Some(checkout))
    }

    /// Stop the closer thread (the store is being dropped).
    pub(crate) fn shut_down(&self) {
        lock(&self.idle).shutdown = true;
        self.wake.notify_all();
    }

    fn give_back(&self, r: Reader) {
        let mut idle = lock(&self.idle);
        let wake = r.snapshot_open() && !idle.watched;
        if wake {
            idle.watched = true;
        }
        idle.readers.push(r);
        drop(idle);
        if wake {
            self.wake.notify_one();
        }
    }

    /// The closer thread: every [`CLOSER_EVERY`] while any idle reader keeps a
    /// snapshot, end those that are [`Pool::reuse`] old; sleep while none is kept.
    /// (A busy reader is kept fresh by the lookups themselves, which never use a
    /// snapshot past that age; a wake-up at every expiry cost more than the check.)
    fn close_old_snapshots(&self) {
        let mut idle = lock(&self.idle);
        while !idle.shutdown {
            let mut kept = false;
            for r in idle.readers.iter_mut() {
                if let Some(s) = r.snapshot {
                    if s.since.elapsed() >= self.reuse {
                        r.end_snapshot();
                    } else {
                        kept = true;
                    }
                }
            }
            idle = if kept {
                self.wake.wait_timeout(idle, CLOSER_EVERY).unwrap_or_else(|e| e.into_inner()).0
            } else {
                idle.watched = false;
                self.wake.wait(idle).unwrap_or_else(|e| e.into_inner())
            };
        }
    }
}

/// A reader taken from the pool; given back on drop. A reader given back after a
/// failed read has its snapshot ended (the failure may have ended the transaction).
pub(crate) struct Checkout {
    pool: Arc<Pool>,
    reader: Option<Reader>,
}

impl Checkout {
    pub(crate) fn conn(&self) -> StoreResult<&Connection> {
        self.reader.as_ref().map(|r| &r.conn).ok_or_else(|| refused("no SQLite reader connection is free"))
    }

    /// The read failed: do not share its snapshot.
    pub(crate) fn failed(&mut self) {
        if let Some(r) = self.reader.as_mut() {
            r.end_snapshot();
        }
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(r) = self.reader.take() {
            self.pool.give_back(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::SqliteStore;
    use govhub_core::sharing::SharingStore as _;
    use std::time::Duration;

    fn generation(c: &rusqlite::Connection) -> i64 {
        c.query_row("SELECT generation FROM sharing_generation WHERE id = 1", [], |r| r.get(0)).unwrap()
    }

    #[tokio::test]
    async fn a_write_by_this_process_ends_the_shared_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        // Snapshots that would otherwise be shared for a minute.
        let store = SqliteStore::open_reusing(dir.path().join("g.db"), Duration::from_secs(60)).unwrap();
        let before = store.sharing_generation().await.unwrap();
        assert_eq!(store.sharing_generation().await.unwrap(), before);
        store
            .write(|c| {
                c.execute("UPDATE sharing_generation SET generation = generation + 1 WHERE id = 1", [])
                    .map_err(super::db)
            })
            .await
            .unwrap();
        assert_eq!(
            store.sharing_generation().await.unwrap(),
            before + 1,
            "the lookup saw a snapshot from before the write"
        );
        // A read with a transaction of its own takes the reader that kept a snapshot
        // (the pool gives back the last one in): the snapshot is ended first.
        let seen = store
            .read(|c| {
                let tx = c.unchecked_transaction().map_err(super::db)?;
                let g = generation(&tx);
                tx.finish().map_err(super::db)?;
                Ok(g)
            })
            .await
            .unwrap();
        assert_eq!(seen, before + 1);
    }

    #[tokio::test]
    async fn an_idle_snapshot_is_ended_and_outside_writes_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let reuse = Duration::from_millis(50);
        let store = SqliteStore::open_reusing(path.clone(), reuse).unwrap();
        let before = store.sharing_generation().await.unwrap();
        let kept =
            super::super::lock(&store.inner.readers.idle).readers.iter().filter(|r| !r.conn.is_autocommit()).count();
        assert_eq!(kept, 1, "the lookup kept its read transaction open");
        // Another process (here: another connection) writes.
        let outside = rusqlite::Connection::open(&path).unwrap();
        outside.execute("UPDATE sharing_generation SET generation = generation + 1 WHERE id = 1", []).unwrap();
        std::thread::sleep(reuse * 4);
        let open =
            super::super::lock(&store.inner.readers.idle).readers.iter().filter(|r| !r.conn.is_autocommit()).count();
        assert_eq!(open, 0, "an idle reader still holds its snapshot");
        assert_eq!(store.sharing_generation().await.unwrap(), before + 1);
        assert_eq!(generation(&outside), before + 1);
    }
}
