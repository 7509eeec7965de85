//! What both backends share for the audit log: the group-commit queue between
//! `append_audit` callers and the one writer per store, and the per-installation subject
//! salt.
//!
//! Group commit: callers send their prepared entry with a reply channel and wait; the
//! writer takes whatever is queued (up to [`MAX_BATCH`]), chains it after the head it
//! reads inside its transaction, commits once, and answers everyone. While one batch
//! is being made durable the next one queues up, so the cost of a durable commit is
//! shared by all the callers that arrived meanwhile.

use govhub_core::audit::{Checkpoint, EntryBody};
use govhub_core::store::StoreError;
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
