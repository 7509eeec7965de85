//! The SQLite audit log lives in its own database file beside the main one
//! (`govhub.db` → `govhub.audit.db`), with its own migrations, its own writer
//! connection on its own thread, two reader connections and a checkpointer thread that
//! copies the WAL into the file behind the writer's back. A delivery may hold the main
//! file's single writer for seconds; audit entries never wait for it.
//!
//! The writer thread does group commit (`crate::audit`): it takes every queued entry,
//! reads the head inside a `BEGIN IMMEDIATE` transaction (so two processes on the same
//! file — the server and a CLI command — still chain correctly), inserts, and commits
//! with `synchronous = FULL`: when `append_audit` returns, the entry is on disk.

use super::{configure, db, lock, migrate, SqliteStore, Ts};
use crate::audit::{fail_all, new_salt, submit, CommitMeter, Job, MAX_BATCH, QUEUE_DEPTH};
use crate::migrate::Migration;
use crate::records::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use govhub_core::audit::{
    subject_digest, timestamp_text, AuditStore, ChainEntry, ChainHead, Checkpoint, CommitStats, EntryBody,
    GENESIS_HASH, SUBJECT_SALT_KEY,
};
use govhub_core::model::{AuditEvent, AuditQuery, NewAuditEvent};
use govhub_core::store::StoreError;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, params_from_iter, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Semaphore};

/// The audit file's own migrations (recorded in its own `schema_migrations`).
pub const AUDIT_MIGRATIONS: &[Migration] = &[
    Migration { version: 1, sql: include_str!("audit_migrations/0001_audit_log.sql") },
    Migration { version: 2, sql: include_str!("audit_migrations/0002_subject_blocks.sql") },
    Migration { version: 3, sql: include_str!("audit_migrations/0003_drop_action_index.sql") },
    Migration { version: 4, sql: include_str!("audit_migrations/0004_subjects_in_entries.sql") },
    Migration { version: 5, sql: include_str!("audit_migrations/0005_block_keys.sql") },
];

/// Entries per block of the subject index (migration 0002).
const SUBJECT_BLOCK: i64 = 4_096;

const READERS: usize = 2;

/// The audit file of a main database file: `govhub.db` → `govhub.audit.db`,
/// `x.sqlite` → `x.audit.sqlite`, `data` → `data.audit.db`.
pub fn audit_path(main: &Path) -> PathBuf {
    match main.extension() {
        Some(ext) => main.with_extension(format!("audit.{}", ext.to_string_lossy())),
        None => main.with_extension("audit.db"),
    }
}

/// The audit file: where its writer's queue is, its readers, and the subject salt.
pub(crate) struct AuditDb {
    path: PathBuf,
    salt: String,
    jobs: mpsc::Sender<Job>,
    readers: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    meter: Arc<CommitMeter>,
}

impl AuditDb {
    /// Open (creating) the audit file beside `main_path` and migrate it; on the first
    /// start after main migration 0003, copy the old `audit_events` rows into the chain
    /// and drop the old table; start the writer thread.
    pub(crate) fn open(main_path: &Path, main: &mut Connection) -> StoreResult<AuditDb> {
        let path = audit_path(main_path);
        let mut writer = Connection::open(&path).map_err(db)?;
        configure(&writer)?;
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(refused(format!("SQLite would not switch {} to WAL mode", path.display())));
        }
        // Durable at commit: the whole point of this file. Group commit pays for it.
        writer.pragma_update(None, "synchronous", "FULL").map_err(db)?;
        // The subject index takes entries at random places. Its pages are read through a
        // mapping of the file (no system call, nothing copied) rather than kept in a large
        // page cache: SQLite walks the whole cache's hash table at every commit (in
        // `pcache1TruncateUnsafe`), which at 32 MiB was 6 % of a busy server's CPU.
        writer.pragma_update(None, "cache_size", -2_048).map_err(db)?;
        writer.pragma_update(None, "mmap_size", 1i64 << 30).map_err(db)?;
        // Checkpoint every 40 MB of WAL rather than every 4 MB: pages that every batch
        // touches (the tail of the log, the roots of its indexes) are copied into the
        // file once per checkpoint, not once per 4 MB.
        writer.pragma_update(None, "wal_autocheckpoint", 10_000).map_err(db)?;
        migrate::run_with(&mut writer, "sqlite audit file", AUDIT_MIGRATIONS)?;
        let salt = subject_salt(main)?;
        import_legacy(main, &mut writer)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r =
                Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                    .map_err(db)?;
            configure(&r)?;
            r.pragma_update(None, "query_only", "ON").map_err(db)?;
            readers.push(r);
        }
        let checkpointer = Connection::open(&path).map_err(db)?;
        configure(&checkpointer)?;
        let (appended, wal_grew) = std::sync::mpsc::sync_channel(1);
        let prepared: Arc<Mutex<Handoff>> = Arc::default();
        let for_writer = Arc::clone(&prepared);
        std::thread::Builder::new()
            .name("govhub-audit-ckpt".into())
            .spawn(move || checkpoint_loop(&checkpointer, &wal_grew, &prepared))
            .map_err(|e| refused(format!("cannot start the audit checkpointer thread: {e}")))?;
        let (jobs, rx) = mpsc::channel(QUEUE_DEPTH);
        let meter = Arc::new(CommitMeter::default());
        let for_meter = Arc::clone(&meter);
        std::thread::Builder::new()
            .name("govhub-audit-writer".into())
            .spawn(move || writer_loop(writer, rx, &appended, &for_writer, &for_meter))
            .map_err(|e| refused(format!("cannot start the audit writer thread: {e}")))?;
        let permits = Arc::new(Semaphore::new(READERS));
        Ok(AuditDb { path, salt, jobs, readers: Mutex::new(readers), permits, meter })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// The installation's subject salt (created on first use) from the main file's `meta`.
fn subject_salt(main: &Connection) -> StoreResult<String> {
    main.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
        params![SUBJECT_SALT_KEY, new_salt()],
    )
    .map_err(db)?;
    main.query_row("SELECT value FROM meta WHERE key = ?1", [SUBJECT_SALT_KEY], |r| r.get(0)).map_err(db)
}

fn head(c: &Connection) -> StoreResult<Option<ChainHead>> {
    // Cached: the writer reads the head in every append transaction.
    c.prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .and_then(|mut s| s.query_row([], |r| Ok(ChainHead { seq: r.get(0)?, hash: r.get(1)? })).optional())
        .map_err(db)
}

fn insert_entry(tx: &Connection, e: &ChainEntry) -> StoreResult<()> {
    let b = &e.body;
    let mut ins = tx
        .prepare_cached(
            "INSERT INTO audit_log (seq, prev_hash, hash, at, actor, actor_role, actor_org, on_behalf_of, action,
                 target, outcome, detail, request_id, app, purpose, row_count, subjects)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )
        .map_err(db)?;
    ins.execute(params![
        e.seq,
        e.prev_hash,
        e.hash,
        b.at,
        b.actor,
        b.actor_role,
        b.actor_org,
        b.on_behalf_of,
        b.action,
        b.target,
        b.outcome,
        b.detail,
        b.request_id,
        b.app,
        b.purpose,
        b.rows,
        subjects_json(&b.subjects)?,
    ])
    .map_err(db)?;
    Ok(())
}

/// An entry's subjects as stored (migration 0004): a JSON array in the entry's order,
/// `None` for none.
fn subjects_json(subjects: &[String]) -> StoreResult<Option<String>> {
    if subjects.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(subjects).map(Some).map_err(|e| refused(format!("audit subjects: {e}")))
}

/// Chain `bodies` after the head and commit them in one transaction, with the next slice
/// of the prepared block's subject rows, if there is one (the block moves on only once
/// the transaction is committed; so do the subjects the writer remembers).
fn commit_batch(conn: &mut Connection, bodies: Vec<EntryBody>, handoff: &mut Handoff) -> StoreResult<Vec<i64>> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
    let (mut seq, mut prev) = head(&tx)?.map(|h| (h.seq, h.hash)).unwrap_or((0, GENESIS_HASH.to_string()));
    let mut seqs = Vec::with_capacity(bodies.len());
    let mut subjects = Vec::new();
    let mut keys: Vec<KeyRun> = Vec::new();
    for body in bodies {
        seq += 1;
        let e = body.chain(seq, prev);
        insert_entry(&tx, &e)?;
        prev = e.hash;
        seqs.push(seq);
        let b = e.body;
        subjects.extend(b.subjects.into_iter().map(|s| (s, seq)));
        if keys.last().is_none_or(|k| k.actor != b.actor || k.target != b.target) {
            keys.push(KeyRun { from: seq, actor: b.actor, target: b.target });
        }
    }
    let slice = match handoff.block.as_ref() {
        Some(block) => {
            // A failed slice is rolled back alone (the savepoint is dropped): the entries
            // are committed all the same and the block is read again later.
            let sp = tx.savepoint().map_err(db)?;
            block.write_slice(&sp).and_then(|next| sp.commit().map_err(db).map(|()| next))
        }
        None => Ok(None),
    };
    tx.commit().map_err(db)?;
    if let (Some(first), Some(last)) = (seqs.first(), seqs.last()) {
        handoff.recent.committed(*first, *last, subjects, keys);
    }
    match slice {
        Ok(Some(next)) => {
            if let Some(block) = handoff.block.as_mut() {
                block.next = next;
            }
        }
        Ok(None) => handoff.block = None,
        Err(e) => {
            tracing::warn!(error = %e, "indexing the audit subjects failed; the block is read again");
            handoff.block = None;
        }
    }
    Ok(seqs)
}

/// The subjects of the entries this process's writer committed last, one run of
/// consecutive entries, so that the checkpointer can index a closed block without
/// reading its entries back (reading and sorting them through `json_each` was ≈ 2 % of
/// a busy consumer API's CPU). When another process on the file appended in between,
/// the run starts again, and a block it does not cover is read from the file.
#[derive(Debug)]
struct Recent {
    /// The run's first and last entries (`first > last` when empty).
    first: i64,
    last: i64,
    /// `(digest, seq)` in entry order.
    rows: std::collections::VecDeque<(String, i64)>,
    /// Where the entries' actor or target changes, in entry order.
    keys: std::collections::VecDeque<KeyRun>,
}

/// Entries from `from` on (to the next run) have this actor and target.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyRun {
    from: i64,
    actor: String,
    target: String,
}

impl Default for Recent {
    fn default() -> Recent {
        Recent { first: 1, last: 0, rows: std::collections::VecDeque::new(), keys: std::collections::VecDeque::new() }
    }
}

impl Recent {
    /// Entries `first..=last` committed with `subjects`.
    fn committed(&mut self, first: i64, last: i64, subjects: Vec<(String, i64)>, keys: Vec<KeyRun>) {
        if self.first > self.last || first != self.last + 1 {
            self.rows.clear();
            self.keys.clear();
            self.first = first;
        }
        self.last = last;
        self.rows.extend(subjects);
        for k in keys {
            if self.keys.back().is_none_or(|b| b.actor != k.actor || b.target != k.target) {
                self.keys.push_back(k);
            }
        }
        // A run longer than two blocks means blocks are not being indexed (the
        // checkpointer fails, or another process indexes them): keep only the latest.
        let keep_from = self.last - 2 * SUBJECT_BLOCK + 1;
        if self.first < keep_from {
            self.forget_before(keep_from);
        }
    }

    fn forget_before(&mut self, seq: i64) {
        while self.rows.front().is_some_and(|(_, s)| *s < seq) {
            self.rows.pop_front();
        }
        // A run goes on to the next one's start: keep the one that `seq` is in.
        while self.keys.get(1).is_some_and(|k| k.from <= seq) {
            self.keys.pop_front();
        }
        self.first = self.first.max(seq);
    }

    /// Block `first..=last`'s subject rows sorted by digest and seq, and its actors and
    /// targets, if the run covers it; what comes before the block is forgotten either way.
    fn take_block(&mut self, first: i64, last: i64) -> Option<(Vec<(String, i64)>, BlockKeys)> {
        self.forget_before(first);
        if self.first > first || self.last < last {
            return None;
        }
        let end = self.rows.iter().position(|(_, s)| *s > last).unwrap_or(self.rows.len());
        let mut rows: Vec<(String, i64)> = self.rows.drain(..end).collect();
        rows.sort_unstable();
        rows.dedup();
        let mut keys = BlockKeys::default();
        for k in self.keys.iter().take_while(|k| k.from <= last) {
            keys.actors.insert(k.actor.clone());
            keys.targets.insert(k.target.clone());
        }
        self.forget_before(last + 1);
        Some((rows, keys))
    }
}

/// Subject-index rows written per append transaction: a block's 4,096 entries written at
/// once held every append for ≈ 8.5 ms (the consumer API's p99 on a busy server), and
/// slices of 256 still put ≈ 0.5 ms into one commit in eight (`bench api` p99 5.1–5.4
/// ms; with 64: 4.8–5.0). At 32 appends a commit, 64 rows a slice index a block of
/// single-subject entries in half the time the block took to fill.
const INDEX_SLICE: usize = 64;

/// A closed block of entries (`first..=last`) with its subjects read and sorted by the
/// checkpointer (off the append path), written by the writer [`INDEX_SLICE`] rows per
/// append transaction. The block's row in `audit_subject_blocks` comes with the last
/// slice; until then queries scan its entries (its rows so far join no block).
pub(crate) struct PreparedBlock {
    block: i64,
    first: i64,
    last: i64,
    rows: Vec<(String, i64)>,
    keys: BlockKeys,
    next: usize,
}

/// The distinct actors and targets of a block's entries (migration 0005).
#[derive(Debug, Default, PartialEq, Eq)]
struct BlockKeys {
    actors: std::collections::BTreeSet<String>,
    targets: std::collections::BTreeSet<String>,
}

impl PreparedBlock {
    /// Read block `block` = entries `first..=last`'s subjects, sorted, and its actors
    /// and targets.
    fn read(c: &Connection, block: i64, first: i64, last: i64) -> StoreResult<PreparedBlock> {
        let mut stmt = c
            .prepare(
                "SELECT j.value, l.seq FROM audit_log l, json_each(l.subjects) j
                 WHERE l.seq >= ?1 AND l.seq <= ?2 AND json_valid(l.subjects) AND j.type = 'text'
                 ORDER BY j.value, l.seq",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map(params![first, last], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(db)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db)?;
        let mut keys = BlockKeys::default();
        let mut stmt =
            c.prepare("SELECT DISTINCT actor, target FROM audit_log WHERE seq >= ?1 AND seq <= ?2").map_err(db)?;
        let mut pairs = stmt.query(params![first, last]).map_err(db)?;
        while let Some(r) = pairs.next().map_err(db)? {
            keys.actors.insert(text_of(r.get_ref(0).map_err(db)?));
            keys.targets.insert(text_of(r.get_ref(1).map_err(db)?));
        }
        Ok(PreparedBlock { block, first, last, rows, keys, next: 0 })
    }

    /// Write the next slice in `tx`; the position after it, or `None` when the block is
    /// done (its row written) or was indexed meanwhile by another process on the file.
    fn write_slice(&self, tx: &Connection) -> StoreResult<Option<usize>> {
        if indexed_through(tx)? != self.first - 1 {
            return Ok(None);
        }
        let end = (self.next + INDEX_SLICE).min(self.rows.len());
        let mut ins = tx
            .prepare_cached("INSERT OR IGNORE INTO audit_subject_index (block, digest, seq) VALUES (?1, ?2, ?3)")
            .map_err(db)?;
        for (digest, seq) in &self.rows[self.next..end] {
            ins.execute(params![self.block, digest, seq]).map_err(db)?;
        }
        if end < self.rows.len() {
            return Ok(Some(end));
        }
        tx.execute(
            "INSERT INTO audit_subject_blocks (block, first_seq, last_seq) VALUES (?1, ?2, ?3)",
            params![self.block, self.first, self.last],
        )
        .map_err(db)?;
        let mut ins = tx
            .prepare_cached("INSERT OR IGNORE INTO audit_block_keys (kind, value, block) VALUES (?1, ?2, ?3)")
            .map_err(db)?;
        for (kind, values) in [("actor", &self.keys.actors), ("target", &self.keys.targets)] {
            for v in values {
                ins.execute(params![kind, v, self.block]).map_err(db)?;
            }
        }
        Ok(None)
    }
}

/// The next block to index, its rows sorted, if one is closed and not yet indexed (one
/// read transaction: the blocks so far, the head and the entries agree). The rows come
/// from what the writer remembers when it covers the block, else from the file.
fn prepare_block(c: &Connection, handoff: &Mutex<Handoff>) -> StoreResult<Option<PreparedBlock>> {
    let tx = c.unchecked_transaction().map_err(db)?;
    let done = indexed_through(&tx)?;
    let head = head(&tx)?.map_or(0, |h| h.seq);
    if head - done < SUBJECT_BLOCK {
        return Ok(None);
    }
    let block: i64 =
        tx.query_row("SELECT COALESCE(MAX(block), 0) + 1 FROM audit_subject_blocks", [], |r| r.get(0)).map_err(db)?;
    let (first, last) = (done + 1, done + SUBJECT_BLOCK);
    let remembered = lock(handoff).recent.take_block(first, last);
    let prepared = match remembered {
        Some((rows, keys)) => PreparedBlock { block, first, last, rows, keys, next: 0 },
        None => PreparedBlock::read(&tx, block, first, last)?,
    };
    tx.finish().map_err(db)?;
    Ok(Some(prepared))
}

/// How long the writer waits for more appends before committing a batch, when the
/// previous batch showed that callers are appending concurrently. The commit (WAL write
/// and fsync) costs far more than an entry; on a busy core the callers need a moment to
/// reach the queue, and without it each commit carried one or two entries.
const GATHER: std::time::Duration = std::time::Duration::from_micros(300);

fn writer_loop(
    mut conn: Connection,
    mut jobs: mpsc::Receiver<Job>,
    appended: &std::sync::mpsc::SyncSender<()>,
    handoff: &Mutex<Handoff>,
    meter: &CommitMeter,
) {
    let mut bodies = Vec::new();
    let mut replies = Vec::new();
    // Entries in the previous batch: how many concurrent callers to expect.
    let mut expect = 1usize;
    while let Some(first) = jobs.blocking_recv() {
        let started = std::time::Instant::now();
        let mut next = Some(first);
        loop {
            while let Some(job) = next.take() {
                match job {
                    Job::Append(body, reply) => {
                        bodies.push(body);
                        replies.push(reply);
                    }
                    Job::Checkpoint(cp, reply) => {
                        let _ = reply.send(insert_checkpoint(&mut conn, &cp));
                    }
                }
                if bodies.len() < MAX_BATCH {
                    next = jobs.try_recv().ok();
                }
            }
            if bodies.is_empty() || bodies.len() >= expect.min(MAX_BATCH) || started.elapsed() >= GATHER {
                break;
            }
            std::thread::yield_now();
            next = jobs.try_recv().ok();
            if next.is_none() {
                std::thread::sleep(std::time::Duration::from_micros(20));
                next = jobs.try_recv().ok();
            }
        }
        if bodies.is_empty() {
            continue;
        }
        expect = bodies.len();
        // Held through the commit: the checkpointer prepares no other block meanwhile.
        let mut held = lock(handoff);
        let began = std::time::Instant::now();
        let committed = commit_batch(&mut conn, std::mem::take(&mut bodies), &mut held);
        drop(held);
        if committed.is_ok() {
            meter.record(expect, began.elapsed()); // `expect` is this batch's size
        }
        match committed {
            Ok(seqs) => {
                // Full means the checkpointer has been told already.
                let _ = appended.try_send(());
                for (reply, seq) in replies.drain(..).zip(seqs) {
                    let _ = reply.send(Ok(seq));
                }
            }
            Err(e) => fail_all(std::mem::take(&mut replies), e),
        }
    }
}

/// How long the checkpointer lets appends accumulate in the WAL before copying them into
/// the file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(30);

/// What the writer and the checkpointer share: the block the checkpointer prepared for
/// the writer to index, and the subjects the writer remembers for the next blocks.
#[derive(Default)]
struct Handoff {
    block: Option<PreparedBlock>,
    recent: Recent,
}

/// The checkpointer: some [`CHECKPOINT_EVERY`] after appends, copy what the WAL holds
/// into the audit file (`PASSIVE`: appends go on meanwhile). Left to the writer, the
/// checkpoint ran after the commit that took the WAL past its limit and held every
/// waiting append for its whole copy and `fsync` (the consumer API's p99: 28–31 ms). The
/// writer keeps its own checkpoint at 40 MB, which now finds the frames copied already
/// and restarts the WAL at little cost. Then, when a block of entries is closed and the
/// writer has none in hand, read its subjects for the writer ([`PreparedBlock`]). Ends
/// when the writer does.
fn checkpoint_loop(conn: &Connection, appended: &std::sync::mpsc::Receiver<()>, handoff: &Mutex<Handoff>) {
    while appended.recv().is_ok() {
        std::thread::sleep(CHECKPOINT_EVERY);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "checkpointing the audit WAL failed; the writer checkpoints at 40 MB");
        }
        // The writer clears the slot when it has written the block (or given it up);
        // only this thread fills it, so nothing comes between the check and the fill.
        if lock(handoff).block.is_some() {
            continue;
        }
        match prepare_block(conn, handoff) {
            Ok(Some(p)) => lock(handoff).block = Some(p),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "reading audit subjects for their index failed; retried later"),
        }
    }
}

/// The last entry covered by the subject index's blocks.
fn indexed_through(c: &Connection) -> StoreResult<i64> {
    c.prepare_cached("SELECT COALESCE(MAX(last_seq), 0) FROM audit_subject_blocks")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(db)
}

const CHECKPOINT_COLUMNS: &str = "seq, head_hash, at, signature, key_fingerprint";

fn text_of(v: ValueRef<'_>) -> String {
    String::from_utf8_lossy(&bytes_of(v)).into_owned()
}

fn bytes_of(v: ValueRef<'_>) -> Vec<u8> {
    match v {
        ValueRef::Blob(b) | ValueRef::Text(b) => b.to_vec(),
        ValueRef::Integer(i) => i.to_string().into_bytes(),
        ValueRef::Real(f) => f.to_string().into_bytes(),
        ValueRef::Null => Vec::new(),
    }
}

fn checkpoint_row(r: &Row<'_>) -> rusqlite::Result<Checkpoint> {
    Ok(Checkpoint {
        seq: r.get(0)?,
        head_hash: text_of(r.get_ref(1)?),
        // A time changed into something unreadable stays a checkpoint that fails its
        // signature (so the verifier names it) rather than an error.
        at: r.get::<_, Ts>(2).map(|t| t.0).unwrap_or(DateTime::<Utc>::MIN_UTC),
        signature: bytes_of(r.get_ref(3)?),
        key_fingerprint: text_of(r.get_ref(4)?),
    })
}

fn insert_checkpoint(conn: &mut Connection, cp: &Checkpoint) -> StoreResult<Checkpoint> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
    let hash: Option<String> =
        tx.query_row("SELECT hash FROM audit_log WHERE seq = ?1", [cp.seq], |r| r.get(0)).optional().map_err(db)?;
    if hash.as_deref() != Some(cp.head_hash.as_str()) {
        return Err(StoreError::Conflict { what: "audit_checkpoint" });
    }
    tx.execute(
        &format!("INSERT INTO audit_checkpoints ({CHECKPOINT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (seq) DO NOTHING"),
        params![cp.seq, cp.head_hash, timestamp_text(cp.at), cp.signature, cp.key_fingerprint],
    )
    .map_err(db)?;
    let stored = tx
        .query_row(
            &format!("SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq = ?1"),
            [cp.seq],
            checkpoint_row,
        )
        .map_err(db)?;
    tx.commit().map_err(db)?;
    Ok(stored)
}

/// Copy the pre-chain `audit_events` rows (renamed `audit_events_legacy` by main
/// migration 0003) into the chain, in seq order, then drop the old table. The copy and
/// its marker commit together in the audit file, so a crash before the drop only
/// means the drop is retried at the next start.
fn import_legacy(main: &Connection, audit: &mut Connection) -> StoreResult<()> {
    let exists = main
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_events_legacy'", [], |_| Ok(()))
        .optional()
        .map_err(db)?
        .is_some();
    if !exists {
        return Ok(());
    }
    let tx = audit.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
    let done = tx
        .query_row("SELECT value FROM audit_meta WHERE key = 'legacy_imported'", [], |r| r.get::<_, String>(0))
        .optional()
        .map_err(db)?
        .is_some();
    if !done {
        let (mut seq, mut prev) = head(&tx)?.map(|h| (h.seq, h.hash)).unwrap_or((0, GENESIS_HASH.to_string()));
        let mut stmt = main
            .prepare(
                "SELECT at, actor, actor_role, actor_org, on_behalf_of, action, target, outcome, detail, request_id
                 FROM audit_events_legacy ORDER BY seq",
            )
            .map_err(db)?;
        let mut rows = stmt.query([]).map_err(db)?;
        let mut n = 0u64;
        while let Some(r) = rows.next().map_err(db)? {
            let at: String = r.get(0).map_err(db)?;
            let at = DateTime::parse_from_rfc3339(&at).map(|t| timestamp_text(t.with_timezone(&Utc))).unwrap_or(at);
            let body = EntryBody {
                at,
                actor: r.get(1).map_err(db)?,
                actor_role: r.get(2).map_err(db)?,
                actor_org: r.get(3).map_err(db)?,
                on_behalf_of: r.get(4).map_err(db)?,
                action: r.get(5).map_err(db)?,
                target: r.get(6).map_err(db)?,
                outcome: r.get(7).map_err(db)?,
                detail: r.get(8).map_err(db)?,
                request_id: r.get(9).map_err(db)?,
                app: None,
                purpose: None,
                rows: None,
                subjects: Vec::new(),
            };
            seq += 1;
            let e = body.chain(seq, prev);
            insert_entry(&tx, &e)?;
            prev = e.hash;
            n += 1;
        }
        tx.execute("INSERT INTO audit_meta (key, value) VALUES ('legacy_imported', ?1)", [n.to_string()])
            .map_err(db)?;
        tx.commit().map_err(db)?;
        tracing::info!(entries = n, "copied the audit log into the hash chain of the audit file");
    } else {
        drop(tx);
    }
    main.execute_batch("DROP TABLE IF EXISTS audit_events_legacy").map_err(db)
}

// ------------------------------------------------------------------ reading

fn audit_row(r: &Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        seq: r.get(0)?,
        at: r.get::<_, Ts>(1)?.0,
        actor: r.get(2)?,
        actor_role: r.get(3)?,
        actor_org: r.get(4)?,
        on_behalf_of: r.get(5)?,
        action: r.get(6)?,
        target: r.get(7)?,
        outcome: r.get(8)?,
        detail: r.get(9)?,
        request_id: r.get(10)?,
        app: r.get(11)?,
        purpose: r.get(12)?,
        row_count: r.get(13)?,
        prev_hash: r.get(14)?,
        hash: r.get(15)?,
    })
}

fn events(c: &Connection, sql: &str, args: impl rusqlite::Params) -> StoreResult<Vec<AuditEvent>> {
    let mut stmt = c.prepare(sql).map_err(db)?;
    let rows = stmt.query_map(args, audit_row).map_err(db)?.collect::<Result<Vec<_>, _>>().map_err(db)?;
    rows.into_iter().map(AuditRow::into_event).collect()
}

/// Reads a chain row column by column, noting (instead of failing on) values of the
/// wrong type, which only a change outside govhub can produce.
struct Cols<'a, 'r> {
    row: &'a Row<'r>,
    bad: Option<String>,
}

impl Cols<'_, '_> {
    fn value(&mut self, i: usize, name: &str) -> Option<ValueRef<'_>> {
        match self.row.get_ref(i) {
            Ok(v) => Some(v),
            Err(e) => {
                self.bad.get_or_insert_with(|| format!("column {name} cannot be read: {e}"));
                None
            }
        }
    }
    fn opt_text(&mut self, i: usize, name: &str) -> Option<String> {
        let v = match self.value(i, name)? {
            ValueRef::Null => return None,
            ValueRef::Text(t) => return Some(String::from_utf8_lossy(t).into_owned()),
            other => other.data_type(),
        };
        self.bad.get_or_insert_with(|| format!("column {name} holds a {v} value instead of text"));
        None
    }
    fn text(&mut self, i: usize, name: &str) -> String {
        self.opt_text(i, name).unwrap_or_default()
    }
    fn opt_int(&mut self, i: usize, name: &str) -> Option<i64> {
        let v = match self.value(i, name)? {
            ValueRef::Null => return None,
            ValueRef::Integer(n) => return Some(n),
            other => other.data_type(),
        };
        self.bad.get_or_insert_with(|| format!("column {name} holds a {v} value instead of an integer"));
        None
    }
}

const CHAIN_COLUMNS: &str = "seq, prev_hash, hash, at, actor, actor_role, actor_org, on_behalf_of, action, target, \
                             outcome, detail, request_id, app, purpose, row_count, subjects";

fn chain_row(r: &Row<'_>) -> rusqlite::Result<ChainEntry> {
    let seq: i64 = r.get(0)?;
    let mut c = Cols { row: r, bad: None };
    let mut body = EntryBody {
        at: c.text(3, "at"),
        actor: c.text(4, "actor"),
        actor_role: c.opt_text(5, "actor_role"),
        actor_org: c.opt_text(6, "actor_org"),
        on_behalf_of: c.opt_text(7, "on_behalf_of"),
        action: c.text(8, "action"),
        target: c.text(9, "target"),
        outcome: c.text(10, "outcome"),
        detail: c.text(11, "detail"),
        request_id: c.opt_text(12, "request_id"),
        app: c.opt_text(13, "app"),
        purpose: c.opt_text(14, "purpose"),
        rows: c.opt_int(15, "row_count"),
        subjects: Vec::new(),
    };
    if let Some(text) = c.opt_text(16, "subjects") {
        match serde_json::from_str::<Vec<String>>(&text) {
            Ok(list) => body.subjects = list,
            Err(e) => {
                c.bad.get_or_insert_with(|| format!("column subjects is not a JSON array of digests: {e}"));
            }
        }
    }
    let prev_hash = c.text(1, "prev_hash");
    let hash = c.text(2, "hash");
    Ok(ChainEntry { seq, prev_hash, hash, body, malformed: c.bad })
}

fn chain_page(c: &Connection, after: i64, limit: u32) -> StoreResult<Vec<ChainEntry>> {
    let mut stmt = c
        .prepare_cached(&format!("SELECT {CHAIN_COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2"))
        .map_err(db)?;
    let rows = stmt.query_map(params![after, i64::from(limit)], chain_row).map_err(db)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(db)
}

impl SqliteStore {
    /// The audit file (`<name>.audit.db`).
    pub fn audit_file(&self) -> &Path {
        self.inner.audit.path()
    }

    /// Run `f` on one of the audit file's reader connections.
    async fn audit_read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let permit = self.inner.audit.permits.clone().acquire_owned().await.map_err(StoreError::backend)?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let audit = &inner.audit;
            let conn = lock(&audit.readers).pop().ok_or_else(|| refused("no audit reader connection is free"))?;
            struct Back<'a>(&'a Mutex<Vec<Connection>>, Option<Connection>);
            impl Drop for Back<'_> {
                fn drop(&mut self) {
                    if let Some(c) = self.1.take() {
                        lock(self.0).push(c);
                    }
                }
            }
            let back = Back(&audit.readers, Some(conn));
            match &back.1 {
                Some(c) => f(c),
                None => Err(refused("no audit reader connection is free")),
            }
        })
        .await
        .map_err(StoreError::backend)?
    }

    pub(crate) async fn append_audit_entry(&self, event: &NewAuditEvent) -> StoreResult<i64> {
        let body = EntryBody::from_event(event, &self.inner.audit.salt).map_err(StoreError::backend)?;
        submit(&self.inner.audit.jobs, |reply| Job::Append(body, reply)).await
    }

    pub(crate) async fn list_audit_entries(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        let query = query.clone();
        self.audit_read(move |c| list_entries(c, &query)).await
    }
}

/// The entries `query` asks for, newest first. Filtered by actor or target, it scans the
/// entries after the last closed block, then, newest first, only the blocks whose
/// actors or targets (`audit_block_keys`) include the one asked for, until it has
/// `limit`; otherwise it scans the log from its end.
fn list_entries(c: &Connection, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
    let mut clauses: Vec<&str> = vec!["seq >= ?", "seq <= ?"];
    let mut args: Vec<Value> = vec![Value::Integer(0), Value::Integer(i64::MAX)];
    if let Some(a) = &query.actor {
        clauses.push("actor = ?");
        args.push(Value::Text(a.clone()));
    }
    if let Some(p) = &query.action_prefix {
        // A prefix match without LIKE: exact and case-sensitive, as on PostgreSQL.
        clauses.push("substr(action, 1, ?) = ?");
        args.push(Value::Integer(p.chars().count() as i64));
        args.push(Value::Text(p.clone()));
    }
    if let Some(t) = &query.target {
        clauses.push("target = ?");
        args.push(Value::Text(t.clone()));
    }
    let limit = effective_limit(query.limit);
    args.push(Value::Integer(limit));
    let sql =
        format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE {} ORDER BY seq DESC LIMIT ?", clauses.join(" AND "));
    let after = query.after_seq.unwrap_or(0);
    let mut page = |from: i64, to: i64, want: i64, out: &mut Vec<AuditEvent>| -> StoreResult<()> {
        args[0] = Value::Integer(from.max(after.saturating_add(1)));
        args[1] = Value::Integer(to);
        if let Some(last) = args.last_mut() {
            *last = Value::Integer(want);
        }
        out.extend(events(c, &sql, params_from_iter(args.iter()))?);
        Ok(())
    };
    let tx = c.unchecked_transaction().map_err(db)?;
    let mut out = Vec::new();
    let mut keys: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = &query.actor {
        keys.push(("actor", a));
    }
    if let Some(t) = &query.target {
        keys.push(("target", t));
    }
    if keys.is_empty() {
        page(0, i64::MAX, limit, &mut out)?;
    } else {
        let done = indexed_through(&tx)?;
        page(done + 1, i64::MAX, limit, &mut out)?;
        let holding = keys
            .iter()
            .map(|_| "SELECT block FROM audit_block_keys WHERE kind = ? AND value = ?")
            .collect::<Vec<_>>()
            .join(" INTERSECT ");
        let mut stmt = tx
            .prepare(&format!(
                "SELECT first_seq, last_seq FROM audit_subject_blocks
                 WHERE block IN ({holding}) AND last_seq > ? ORDER BY block DESC"
            ))
            .map_err(db)?;
        let mut block_args: Vec<Value> =
            keys.iter().flat_map(|(k, v)| [Value::Text((*k).to_string()), Value::Text((*v).to_string())]).collect();
        block_args.push(Value::Integer(after));
        let mut blocks = stmt.query(params_from_iter(block_args.iter())).map_err(db)?;
        while (out.len() as i64) < limit {
            let Some(b) = blocks.next().map_err(db)? else { break };
            let (first, last): (i64, i64) = (b.get(0).map_err(db)?, b.get(1).map_err(db)?);
            page(first, last, limit - out.len() as i64, &mut out)?;
        }
    }
    drop(tx);
    Ok(out)
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn list_audit_for_subject(&self, subject: &str, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        let digest = subject_digest(&self.inner.audit.salt, subject);
        let limit = effective_limit(limit);
        self.audit_read(move |c| {
            events(
                c,
                &format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq IN
                         (SELECT seq FROM
                             (SELECT i.seq FROM audit_subject_blocks b
                                  JOIN audit_subject_index i ON i.block = b.block AND i.digest = ?1
                              UNION ALL
                              SELECT l.seq FROM audit_log l, json_each(l.subjects) j
                              WHERE l.seq > (SELECT COALESCE(MAX(last_seq), 0) FROM audit_subject_blocks)
                                AND json_valid(l.subjects) AND j.value = ?1)
                          ORDER BY seq DESC LIMIT ?2)
                     ORDER BY seq DESC"
                ),
                params![digest, limit],
            )
        })
        .await
    }

    async fn audit_head(&self) -> StoreResult<Option<ChainHead>> {
        self.audit_read(head).await
    }

    async fn audit_chain(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<ChainEntry>> {
        self.audit_read(move |c| chain_page(c, after_seq, limit)).await
    }

    async fn insert_checkpoint(&self, checkpoint: &Checkpoint) -> StoreResult<Checkpoint> {
        let cp = checkpoint.clone();
        submit(&self.inner.audit.jobs, |reply| Job::Checkpoint(cp, reply)).await
    }

    async fn latest_checkpoint(&self) -> StoreResult<Option<Checkpoint>> {
        self.audit_read(|c| {
            c.query_row(
                &format!("SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"),
                [],
                checkpoint_row,
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn list_checkpoints(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<Checkpoint>> {
        self.audit_read(move |c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq > ?1 ORDER BY seq LIMIT ?2"
                ))
                .map_err(db)?;
            let rows = stmt.query_map(params![after_seq, i64::from(limit)], checkpoint_row).map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db)
        })
        .await
    }

    fn audit_commits(&self) -> CommitStats {
        self.inner.audit.meter.stats()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{audit_path, chain_page, migrate, AUDIT_MIGRATIONS};
    use rusqlite::Connection;
    use std::path::{Path, PathBuf};

    /// Migrations 0002 and 0004 move the subjects of an existing file: the chain's copy
    /// in entry order (0004: into the entries' rows), everything so far as block 1 of
    /// the lookup.
    #[test]
    fn subjects_move_to_entry_order_and_block_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Connection::open(dir.path().join("x.audit.db")).unwrap();
        migrate::run_with(&mut c, "test", &AUDIT_MIGRATIONS[..1]).unwrap();
        for seq in 1..=3 {
            c.execute(
                "INSERT INTO audit_log (seq, prev_hash, hash, at, actor, action, target, outcome, detail)
                 VALUES (?1, 'p', 'h', 't', 'a' || (?1 % 2), 'share.read', 'ds', 'allowed', '{}')",
                [seq],
            )
            .unwrap();
        }
        for (d, seq) in [("bb", 1), ("aa", 1), ("aa", 3)] {
            c.execute("INSERT INTO audit_subjects (digest, seq) VALUES (?1, ?2)", rusqlite::params![d, seq]).unwrap();
        }
        migrate::run_with(&mut c, "test", &AUDIT_MIGRATIONS[..2]).unwrap();
        let all = |c: &Connection, sql: &str| -> Vec<(i64, String)> {
            let mut stmt = c.prepare(sql).unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
        };
        let entry = all(&c, "SELECT seq, digest FROM audit_entry_subjects ORDER BY seq, digest");
        assert_eq!(entry, [(1, "aa".into()), (1, "bb".into()), (3, "aa".into())]);
        // Migration 0004 moves them into their entries' rows, in order.
        migrate::run_with(&mut c, "test", AUDIT_MIGRATIONS).unwrap();
        let rows = all(&c, "SELECT seq, COALESCE(subjects, 'none') FROM audit_log ORDER BY seq");
        assert_eq!(rows, [(1, r#"["aa","bb"]"#.into()), (2, "none".into()), (3, r#"["aa"]"#.into())]);
        let chain = chain_page(&c, 0, 10).unwrap();
        let subjects: Vec<Vec<String>> = chain.iter().map(|e| e.body.subjects.clone()).collect();
        assert_eq!(subjects, [vec!["aa".to_string(), "bb".into()], vec![], vec!["aa".into()]]);
        assert!(chain.iter().all(|e| e.malformed.is_none()));
        let index = all(&c, "SELECT seq, digest FROM audit_subject_index WHERE block = 1 ORDER BY digest, seq");
        assert_eq!(index, [(1, "aa".into()), (3, "aa".into()), (1, "bb".into())]);
        let blocks: (i64, i64, i64) = c
            .query_row("SELECT block, first_seq, last_seq FROM audit_subject_blocks", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(blocks, (1, 1, 3));
        let old: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name LIKE 'audit_subjects%' OR name = 'audit_entry_subjects'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(old, 0);
        // Migration 0005 lists block 1's actors and targets and drops their indexes.
        let keys = all(&c, "SELECT block, kind || ':' || value FROM audit_block_keys ORDER BY kind, value");
        assert_eq!(keys, [(1, "actor:a0".into()), (1, "actor:a1".into()), (1, "target:ds".into())]);
        let indexes: i64 = c
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_log'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(indexes, 0);
    }

    /// The database size in the audit file's header (what checkpoints have copied in).
    fn pages_in_file(path: &Path) -> u32 {
        let bytes = std::fs::read(path).unwrap_or_default();
        bytes.get(28..32).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Appends reach the audit file itself soon after they are made, long before the
    /// WAL's 40 MB: the checkpointer copied them (nothing else checkpoints here).
    #[tokio::test]
    async fn the_checkpointer_copies_appends_into_the_file() {
        use govhub_core::store::Store;
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("govhub.db");
        let store = crate::sqlite::SqliteStore::open(&main).await.unwrap();
        let file = audit_path(&main);
        let before = pages_in_file(&file);
        for i in 0..300 {
            let mut ev = crate::conformance_audit::access("conf-ckpt", "CONF-CKPT", &[]);
            ev.detail = serde_json::json!({"key": format!("key-{i}"), "padding": "x".repeat(400)});
            store.append_audit(&ev).await.unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pages_in_file(&file) < before + 20 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let after = pages_in_file(&file);
        assert!(after >= before + 20, "the audit file held {before} pages before 300 appends and {after} after");
    }

    /// Append subject `i`'s access through `store`: by one of three actors, on one of
    /// five targets, one in seven a write (and from 1,000,000 on by another actor on
    /// another target).
    async fn append_subject(store: &crate::sqlite::SqliteStore, i: i64) {
        use govhub_core::store::Store;
        let subject = format!("3204021980{i:08}");
        let (actor, target) = if i >= 1_000_000 {
            ("conf-more".to_string(), "CONF-MORE".to_string())
        } else {
            (format!("conf-actor-{}", i % 3), format!("CONF-T{}", i % 5))
        };
        let mut event = crate::conformance_audit::access(&actor, &target, &[&subject]);
        if i % 7 == 0 {
            event.action = "conf.share.write".into();
        }
        store.append_audit(&event).await.unwrap();
    }

    /// Append accesses `range` through `store`, 512 at a time concurrently.
    async fn append_subjects(store: &std::sync::Arc<crate::sqlite::SqliteStore>, range: std::ops::Range<i64>) {
        for chunk in range.collect::<Vec<_>>().chunks(512) {
            let tasks: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    let s = store.clone();
                    tokio::spawn(async move { append_subject(&s, i).await })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        }
    }

    /// Keep appending through `store` until block 1 is listed, then check that its rows
    /// are exactly the block's (digest, seq) pairs and that a subject in it is found.
    async fn block_one_is_indexed(main: &Path, store: &crate::sqlite::SqliteStore) {
        use govhub_core::audit::AuditStore;
        let c = Connection::open(audit_path(main)).unwrap();
        let listed = |c: &Connection| -> i64 {
            c.query_row("SELECT COALESCE(MAX(last_seq), 0) FROM audit_subject_blocks", [], |r| r.get(0)).unwrap()
        };
        // Each append writes one slice; the block is listed after its last.
        let mut more = 1_000_000;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while listed(&c) < super::SUBJECT_BLOCK && std::time::Instant::now() < deadline {
            append_subject(store, more).await;
            more += 1;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(listed(&c), super::SUBJECT_BLOCK, "block 1 not indexed after {} more appends", more - 1_000_000);
        let mut stmt =
            c.prepare("SELECT digest, seq FROM audit_subject_index WHERE block = 1 ORDER BY digest, seq").unwrap();
        let indexed: Vec<(String, i64)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
        let mut stmt = c
            .prepare(
                "SELECT j.value, l.seq FROM audit_log l, json_each(l.subjects) j WHERE l.seq <= ?1 ORDER BY j.value, l.seq",
            )
            .unwrap();
        let wanted: Vec<(String, i64)> = stmt
            .query_map([super::SUBJECT_BLOCK], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(indexed.len(), super::SUBJECT_BLOCK as usize);
        assert_eq!(indexed, wanted);
        let found = store.list_audit_for_subject("320402198000000077", 10).await.unwrap();
        assert_eq!(found.len(), 1);
        assert!(found[0].seq <= super::SUBJECT_BLOCK);
        let keys = |sql: &str| -> Vec<(String, String)> {
            let mut stmt = c.prepare(sql).unwrap();
            let rows = stmt.query_map([super::SUBJECT_BLOCK], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
            rows.map(Result::unwrap).collect()
        };
        assert_eq!(
            keys("SELECT kind, value FROM audit_block_keys WHERE block = 1 AND ?1 > 0 ORDER BY kind, value"),
            keys(
                "SELECT 'actor' AS k, actor AS v FROM audit_log WHERE seq <= ?1
                 UNION SELECT 'target', target FROM audit_log WHERE seq <= ?1 ORDER BY k, v"
            ),
            "block 1's actors and targets"
        );
    }

    /// Lists filtered by actor, target and action, with and without a start and at
    /// several limits, are exactly what a scan of the whole log finds.
    async fn lists_agree_with_a_scan(main: &Path, store: &crate::sqlite::SqliteStore) {
        use govhub_core::model::AuditQuery;
        use govhub_core::store::Store;
        let c = Connection::open(audit_path(main)).unwrap();
        let scan = |q: &AuditQuery| -> Vec<i64> {
            let mut stmt = c
                .prepare(
                    "SELECT seq FROM audit_log NOT INDEXED
                     WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR target = ?2)
                       AND (?3 IS NULL OR substr(action, 1, length(?3)) = ?3) AND seq > ?4
                     ORDER BY seq DESC LIMIT ?5",
                )
                .unwrap();
            let rows = stmt
                .query_map(
                    rusqlite::params![q.actor, q.target, q.action_prefix, q.after_seq.unwrap_or(0), i64::from(q.limit)],
                    |r| r.get(0),
                )
                .unwrap();
            rows.map(Result::unwrap).collect()
        };
        let mut checked = 0;
        for actor in [None, Some("conf-actor-1"), Some("conf-more"), Some("nobody")] {
            for target in [None, Some("CONF-T3"), Some("CONF-MORE")] {
                for action in [None, Some("conf.share.w")] {
                    for after in [None, Some(100), Some(super::SUBJECT_BLOCK - 10)] {
                        for limit in [1, 7, 500, 10_000] {
                            let q = AuditQuery {
                                actor: actor.map(String::from),
                                target: target.map(String::from),
                                action_prefix: action.map(String::from),
                                after_seq: after,
                                limit,
                            };
                            let listed: Vec<i64> = store.list_audit(&q).await.unwrap().iter().map(|e| e.seq).collect();
                            assert_eq!(listed, scan(&q), "{q:?}");
                            checked += usize::from(!listed.is_empty());
                        }
                    }
                }
            }
        }
        assert!(checked > 100, "only {checked} queries found entries");
    }

    /// A closed block's subjects reach the index a slice at a time, behind the appends,
    /// from what the writer remembers of them.
    #[tokio::test]
    async fn a_closed_block_is_indexed_in_slices_behind_the_appends() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("govhub.db");
        let store = std::sync::Arc::new(crate::sqlite::SqliteStore::open(&main).await.unwrap());
        append_subjects(&store, 0..super::SUBJECT_BLOCK).await;
        block_one_is_indexed(&main, &store).await;
        append_subjects(&store, 5_000..5_300).await;
        lists_agree_with_a_scan(&main, &store).await;
    }

    /// Two processes appending to one file in turns: neither writer remembers the whole
    /// block, and its subjects are read back from the file.
    #[tokio::test]
    async fn a_block_appended_by_two_processes_is_indexed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("govhub.db");
        let a = std::sync::Arc::new(crate::sqlite::SqliteStore::open(&main).await.unwrap());
        let b = std::sync::Arc::new(crate::sqlite::SqliteStore::open(&main).await.unwrap());
        append_subjects(&a, 0..1_500).await;
        append_subjects(&b, 1_500..2_500).await;
        append_subjects(&a, 2_500..super::SUBJECT_BLOCK).await;
        block_one_is_indexed(&main, &a).await;
        lists_agree_with_a_scan(&main, &b).await;
    }

    /// The writer's memory of subjects: one run of consecutive entries, started again
    /// after a gap, handing out a block (its subjects, actors and targets) only when it
    /// covers it whole.
    #[test]
    fn the_writer_remembers_one_run_of_subjects() {
        use super::{BlockKeys, KeyRun};
        let rows = |seqs: std::ops::RangeInclusive<i64>| -> Vec<(String, i64)> {
            seqs.map(|s| (format!("d{:04}", 9_999 - s), s)).collect()
        };
        let run = |from: i64, who: &str| KeyRun { from, actor: format!("actor-{who}"), target: format!("T-{who}") };
        let keys = |who: &[&str]| BlockKeys {
            actors: who.iter().map(|w| format!("actor-{w}")).collect(),
            targets: who.iter().map(|w| format!("T-{w}")).collect(),
        };
        let mut r = super::Recent::default();
        assert_eq!(r.take_block(1, 4), None);
        r.committed(1, 3, rows(1..=3), vec![run(1, "a"), run(3, "b")]);
        r.committed(4, 6, rows(4..=6), vec![run(4, "b"), run(6, "c")]);
        let mut want = rows(1..=4);
        want.sort();
        assert_eq!(r.take_block(1, 4), Some((want, keys(&["a", "b"]))));
        // 5 and 6 are kept for the next block, which the run does not cover yet.
        assert_eq!(r.take_block(5, 8), None);
        r.committed(7, 8, rows(7..=8), vec![run(7, "c")]);
        let (subjects, k) = r.take_block(5, 8).unwrap();
        assert_eq!((subjects.len(), k), (4, keys(&["b", "c"])));
        // Another process appended 9..=10: the run starts again at 11.
        r.committed(11, 12, rows(11..=12), vec![run(11, "d")]);
        assert_eq!(r.take_block(9, 12), None);
        r.committed(13, 16, rows(13..=16), vec![run(13, "d")]);
        let (subjects, k) = r.take_block(13, 16).unwrap();
        assert_eq!((subjects.len(), k), (4, keys(&["d"])));
        // Blocks nobody takes: no more than two blocks' entries are kept.
        let far = 17 + 3 * super::SUBJECT_BLOCK;
        r.committed(17, far, rows(17..=far), vec![run(17, "e"), run(far, "f")]);
        assert_eq!(r.rows.len() as i64, 2 * super::SUBJECT_BLOCK);
        assert_eq!(r.take_block(17, 16 + super::SUBJECT_BLOCK), None);
        let (_, k) = r.take_block(far - super::SUBJECT_BLOCK + 1, far).unwrap();
        assert_eq!(k, keys(&["e", "f"]));
    }

    #[test]
    fn audit_file_names() {
        assert_eq!(audit_path(Path::new("/d/govhub.db")), PathBuf::from("/d/govhub.audit.db"));
        assert_eq!(audit_path(Path::new("x.sqlite")), PathBuf::from("x.audit.sqlite"));
        assert_eq!(audit_path(Path::new("data/govhub")), PathBuf::from("data/govhub.audit.db"));
    }
}
