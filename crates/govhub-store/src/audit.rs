//! What both backends share for the audit log: the group-commit queue between
//! `append_audit` callers and the one writer per store, and the per-installation subject
//! salt.
//!
//! Group commit: callers send their prepared entry with a reply channel and wait; the
//! writer takes whatever is queued (up to [`MAX_BATCH`]), chains it after the head it
//! reads inside its transaction, commits once, and answers everyone. While one batch
//! is being made durable the next one queues up, so the cost of a durable commit is
//! shared by all the callers that arrived meanwhile.

use govhub_core::audit::{Checkpoint, CommitStats, EntryBody, COMMIT_BUCKETS};
use govhub_core::store::StoreError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;

/// Most entries committed in one transaction.
pub const MAX_BATCH: usize = 1024;
/// Entries that may wait for the writer before senders wait for room.
pub const QUEUE_DEPTH: usize = 16 * 1024;

pub type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// Work for a store's audit writer. (The large variant is the common one: boxing it
/// would add an allocation to every append.)
#[allow(clippy::large_enum_variant)]
pub enum Job {
    Append(EntryBody, Reply<i64>),
    Checkpoint(Checkpoint, Reply<Checkpoint>),
}

/// The writer stopped (the store is shutting down).
pub fn writer_gone() -> StoreError {
    StoreError::Backend("the audit writer has stopped".into())
}

/// Answer every caller of a failed batch (the error is shared as text).
pub fn fail_all(replies: Vec<Reply<i64>>, e: StoreError) {
    let msg = e.to_string();
    tracing::error!(error = %msg, entries = replies.len(), "audit batch failed");
    let mut first = Some(e);
    for r in replies {
        let err = first.take().unwrap_or_else(|| StoreError::Backend(msg.clone().into()));
        let _ = r.send(Err(err));
    }
}

/// A fresh installation salt for subject digests: 256 random bits, hex.
pub fn new_salt() -> String {
    govhub_crypto::new_token("")
}

/// Queue a job and wait for the writer's answer.
pub async fn submit<T>(
    jobs: &tokio::sync::mpsc::Sender<Job>,
    make: impl FnOnce(Reply<T>) -> Job,
) -> Result<T, StoreError> {
    let (tx, rx) = oneshot::channel();
    jobs.send(make(tx)).await.map_err(|_| writer_gone())?;
    rx.await.map_err(|_| writer_gone())?
}

/// Counts a store's group commits for [`CommitStats`]: the writer records each commit,
/// `/metrics` reads them (relaxed atomics: figures for operators, not a ledger).
#[derive(Debug, Default)]
pub struct CommitMeter {
    entries: AtomicU64,
    micros: AtomicU64,
    /// Commits per bucket of [`COMMIT_BUCKETS`] (not cumulative; the last is beyond
    /// them). Their sum is the number of commits, so a reading's count and buckets agree
    /// however it interleaves with the writer.
    buckets: [AtomicU64; COMMIT_BUCKETS.len() + 1],
}

impl CommitMeter {
    /// A commit of `entries` entries that took `took`.
    pub fn record(&self, entries: usize, took: Duration) {
        self.entries.fetch_add(entries as u64, Ordering::Relaxed);
        self.micros.fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
        let s = took.as_secs_f64();
        let i = COMMIT_BUCKETS.iter().position(|b| s <= *b).unwrap_or(COMMIT_BUCKETS.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> CommitStats {
        let mut buckets = [0u64; COMMIT_BUCKETS.len()];
        let mut below = 0u64;
        for (i, n) in self.buckets.iter().enumerate() {
            below += n.load(Ordering::Relaxed);
            if let Some(slot) = buckets.get_mut(i) {
                *slot = below;
            }
        }
        CommitStats {
            commits: below,
            entries: self.entries.load(Ordering::Relaxed),
            seconds: self.micros.load(Ordering::Relaxed) as f64 / 1e6,
            buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_counted_into_cumulative_buckets() {
        let m = CommitMeter::default();
        assert_eq!(m.stats(), CommitStats::default());
        m.record(32, Duration::from_micros(250));
        m.record(30, Duration::from_micros(900));
        m.record(1, Duration::from_secs(3));
        let s = m.stats();
        assert_eq!((s.commits, s.entries), (3, 63));
        assert!((s.seconds - 3.001_15).abs() < 1e-9, "{}", s.seconds);
        // ≤ 0.25 ms: one; ≤ 1 ms: two; the 3 s commit is beyond every bound.
        assert_eq!(s.buckets, [1, 1, 2, 2, 2, 2, 2, 2, 2, 2]);
    }
}
