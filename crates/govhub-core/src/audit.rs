//! The tamper-evident audit log: the hash chain's canonical encoding, the subject
//! digests, signed checkpoints, the storage port for them ([`AuditStore`]) and the
//! verifier behind `govhub audit verify`. `docs/audit.md` is the specification; the
//! tests below pin the encoding with a known answer.
//!
//! Every entry carries `prev_hash` (the previous entry's `hash`, 64 zeros for seq 1)
//! and `hash` = SM3 over [`ChainEntry::canonical_bytes`]. A checkpoint is (seq, head
//! hash, time) signed with the platform SM2 key over [`checkpoint_message`].

use crate::model::{AuditEvent, NewAuditEvent, Outcome};
use crate::names::OrgCode;
use crate::store::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use govhub_crypto::sm2keys::Sm2PublicKey;
use serde::Serialize;
use std::fmt;

/// `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// First bytes of every entry's canonical encoding (format version 1).
pub const ENTRY_TAG: &[u8] = b"govhub-audit-entry-v1\n";

/// First line of every checkpoint's signed message.
pub const CHECKPOINT_TAG: &str = "govhub-audit-checkpoint-v1";

/// The canonical text of a time: UTC, exactly six fractional digits,
/// `2026-03-02T01:00:00.000000Z`. Both stores keep microseconds, so this is also what
/// reads back.
pub fn timestamp_text(t: DateTime<Utc>) -> String {
    // `%Y-%m-%dT%H:%M:%S%.6fZ`, without parsing a format string at every entry.
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A time truncated to the microsecond (what the chain records).
pub fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

/// The form in which a subject identifier is digested: trimmed, ASCII upper-case (the
/// check character `x` of an ID number and the letters of a USCC).
pub fn normalise_subject(subject: &str) -> String {
    subject.trim().to_ascii_uppercase()
}

/// The salted digest under which a subject is indexed: SM3(salt ‖ 0x00 ‖ subject),
/// lower-case hex, with `salt` the installation's secret (hex text as stored in `meta`)
/// and the subject normalised by [`normalise_subject`].
pub fn subject_digest(salt: &str, subject: &str) -> String {
    let subject = normalise_subject(subject);
    let mut bytes = Vec::with_capacity(salt.len() + 1 + subject.len());
    bytes.extend_from_slice(salt.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(subject.as_bytes());
    govhub_crypto::sm3_hex(&bytes)
}

/// The `meta` key of the per-installation subject salt.
pub const SUBJECT_SALT_KEY: &str = "audit.subject_salt";

/// The last entry of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

/// An entry's hashed content apart from its place in the chain, as the store will
/// keep it: enums as their wire strings, the detail as its JSON text, subjects as
/// sorted, distinct salted digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryBody {
    /// [`timestamp_text`] of the event time.
    pub at: String,
    pub actor: String,
    pub actor_role: Option<String>,
    pub actor_org: Option<String>,
    pub on_behalf_of: Option<String>,
    pub action: String,
    pub target: String,
    pub outcome: String,
    /// The JSON text exactly as stored.
    pub detail: String,
    pub request_id: Option<String>,
    pub app: Option<String>,
    pub purpose: Option<String>,
    pub rows: Option<i64>,
    /// Salted subject digests, ascending, without duplicates.
    pub subjects: Vec<String>,
}

impl EntryBody {
    /// Prepare an event for the chain: serialise the detail, digest the subjects with
    /// the installation's salt.
    pub fn from_event(ev: &NewAuditEvent, salt: &str) -> Result<EntryBody, serde_json::Error> {
        let mut subjects: Vec<String> =
            ev.subjects.iter().filter(|s| !s.trim().is_empty()).map(|s| subject_digest(salt, s)).collect();
        subjects.sort_unstable();
        subjects.dedup();
        Ok(EntryBody {
            at: timestamp_text(to_micros(ev.at)),
            actor: ev.actor.clone(),
            actor_role: ev.actor_role.map(|r| r.as_str().to_string()),
            actor_org: ev.actor_org.as_ref().map(|o| o.as_str().to_string()),
            on_behalf_of: ev.on_behalf_of.as_ref().map(|o| o.as_str().to_string()),
            action: ev.action.clone(),
            target: ev.target.clone(),
            outcome: ev.outcome.as_str().to_string(),
            detail: serde_json::to_string(&ev.detail)?,
            request_id: ev.request_id.clone(),
            app: ev.app.clone(),
            purpose: ev.purpose.clone(),
            rows: ev.rows,
            subjects,
        })
    }

    /// This body as entry `seq` after `prev_hash`, with its hash computed.
    pub fn chain(self, seq: i64, prev_hash: String) -> ChainEntry {
        let mut e = ChainEntry { seq, prev_hash, hash: String::new(), body: self, malformed: None };
        e.hash = e.compute_hash();
        e
    }
}

/// An entry exactly as stored: what the hash covers, the stored hashes, and (when a
/// store could not even read a column as its type) what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainEntry {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
    pub body: EntryBody,
    /// Set by a store when a column holds a value of the wrong type (it was changed
    /// outside govhub); the verifier reports the entry as bad.
    pub malformed: Option<String>,
}

fn put(buf: &mut Vec<u8>, bytes: &[u8]) {
    // No field comes near 4 GiB (request bodies are bounded far below); saturate rather
    // than wrap if one ever did.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX - 1);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(bytes);
}

fn put_opt(buf: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => put(buf, b),
        None => buf.extend_from_slice(&u32::MAX.to_be_bytes()),
    }
}

impl ChainEntry {
    /// The canonical encoding the hash is computed over (docs/audit.md):
    ///
    /// ```text
    /// "govhub-audit-entry-v1\n"
    /// F(seq) F(prev_hash) F(at) F(actor) O(actor_role) O(actor_org) O(on_behalf_of)
    /// F(action) F(target) F(outcome) F(detail) O(request_id) O(app) O(purpose) O(rows)
    /// F(n) F(subject_1) … F(subject_n)
    /// ```
    ///
    /// `F(x)` is the 4-byte big-endian length of `x`'s UTF-8 bytes followed by them;
    /// `O(x)` is `F(x)`, or `ff ff ff ff` when absent. Integers (seq, rows, n) are
    /// written in decimal ASCII.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let b = &self.body;
        let mut buf = Vec::with_capacity(256 + b.detail.len() + 68 * b.subjects.len());
        buf.extend_from_slice(ENTRY_TAG);
        put(&mut buf, self.seq.to_string().as_bytes());
        put(&mut buf, self.prev_hash.as_bytes());
        put(&mut buf, b.at.as_bytes());
        put(&mut buf, b.actor.as_bytes());
        put_opt(&mut buf, b.actor_role.as_deref().map(str::as_bytes));
        put_opt(&mut buf, b.actor_org.as_deref().map(str::as_bytes));
        put_opt(&mut buf, b.on_behalf_of.as_deref().map(str::as_bytes));
        put(&mut buf, b.action.as_bytes());
        put(&mut buf, b.target.as_bytes());
        put(&mut buf, b.outcome.as_bytes());
        put(&mut buf, b.detail.as_bytes());
        put_opt(&mut buf, b.request_id.as_deref().map(str::as_bytes));
        put_opt(&mut buf, b.app.as_deref().map(str::as_bytes));
        put_opt(&mut buf, b.purpose.as_deref().map(str::as_bytes));
        put_opt(&mut buf, b.rows.map(|r| r.to_string()).as_deref().map(str::as_bytes));
        put(&mut buf, b.subjects.len().to_string().as_bytes());
        for s in &b.subjects {
            put(&mut buf, s.as_bytes());
        }
        buf
    }

    /// SM3 of [`Self::canonical_bytes`], lower-case hex.
    pub fn compute_hash(&self) -> String {
        govhub_crypto::sm3_hex(&self.canonical_bytes())
    }

    pub fn head(&self) -> ChainHead {
        ChainHead { seq: self.seq, hash: self.hash.clone() }
    }
}

// ------------------------------------------------------------------ checkpoints

/// A signed statement that the chain had `head_hash` at `seq` at time `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub head_hash: String,
    pub at: DateTime<Utc>,
    /// DER SM2 signature over [`checkpoint_message`].
    pub signature: Vec<u8>,
    /// SM3 of the signing key's DER SubjectPublicKeyInfo.
    pub key_fingerprint: String,
}

impl Checkpoint {
    pub fn message(&self) -> Vec<u8> {
        checkpoint_message(self.seq, &self.head_hash, self.at)
    }
}

/// The bytes a checkpoint signs, four LF-terminated lines of ASCII:
///
/// ```text
/// govhub-audit-checkpoint-v1
/// seq=1234
/// head=<64 hex digits>
/// at=2026-03-02T01:00:00.000000Z
/// ```
pub fn checkpoint_message(seq: i64, head_hash: &str, at: DateTime<Utc>) -> Vec<u8> {
    format!("{CHECKPOINT_TAG}\nseq={seq}\nhead={head_hash}\nat={}\n", timestamp_text(to_micros(at))).into_bytes()
}

/// When the background task makes a checkpoint: after `every_entries` new entries, or
/// when the newest checkpoint is older than `every` and entries were added since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    pub every_entries: i64,
    pub every: chrono::Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy { every_entries: 10_000, every: chrono::Duration::minutes(5) }
    }
}

impl CheckpointPolicy {
    /// Is a checkpoint due, given the head, the newest checkpoint and the time?
    pub fn due(&self, head: Option<&ChainHead>, latest: Option<&Checkpoint>, now: DateTime<Utc>) -> bool {
        let Some(head) = head else { return false };
        match latest {
            None => true,
            Some(cp) if cp.seq >= head.seq => false,
            Some(cp) => head.seq - cp.seq >= self.every_entries.max(1) || now - cp.at >= self.every,
        }
    }
}

// ------------------------------------------------------------------ the port

/// Who read records about a subject: what a citizen (or enterprise) is shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubjectAccess {
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// The organisation of the person or app that read.
    pub org: Option<OrgCode>,
    /// Set when a platform administrator acted for another organisation.
    pub on_behalf_of: Option<OrgCode>,
    pub app: Option<String>,
    pub purpose: Option<String>,
    pub action: String,
    /// What was read (a dataset code).
    pub target: String,
    pub rows: Option<i64>,
}

impl SubjectAccess {
    pub fn from_event(e: &AuditEvent) -> SubjectAccess {
        let ev = &e.event;
        SubjectAccess {
            seq: e.seq,
            at: ev.at,
            org: ev.actor_org.clone(),
            on_behalf_of: ev.on_behalf_of.clone(),
            app: ev.app.clone(),
            purpose: ev.purpose.clone(),
            action: ev.action.clone(),
            target: ev.target.clone(),
            rows: ev.rows,
        }
    }

    /// Only completed reads are shown: a refused request returned nothing.
    pub fn shown(e: &AuditEvent) -> bool {
        matches!(e.event.outcome, Outcome::Allowed | Outcome::Succeeded)
    }
}

/// The audit log's storage beyond appending and listing (which are in
/// [`crate::store::Store`]). Every [`crate::store::Store`] implements it.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Entries whose subjects include `subject` (digested with the installation's
    /// salt), newest first.
    async fn list_audit_for_subject(&self, subject: &str, limit: u32) -> Result<Vec<AuditEvent>, StoreError>;
    /// The last entry (`None`: the log is empty).
    async fn audit_head(&self) -> Result<Option<ChainHead>, StoreError>;
    /// Up to `limit` entries with `seq > after_seq`, in seq order, exactly as stored.
    async fn audit_chain(&self, after_seq: i64, limit: u32) -> Result<Vec<ChainEntry>, StoreError>;
    /// Store a checkpoint. The entry at `checkpoint.seq` must have `head_hash`
    /// (`Conflict{what:"audit_checkpoint"}` otherwise). When a checkpoint for that seq
    /// exists already (another node made it), that one is kept and returned.
    async fn insert_checkpoint(&self, checkpoint: &Checkpoint) -> Result<Checkpoint, StoreError>;
    async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError>;
    /// Up to `limit` checkpoints with `seq > after_seq`, in seq order.
    async fn list_checkpoints(&self, after_seq: i64, limit: u32) -> Result<Vec<Checkpoint>, StoreError>;
    /// This process's group commits of the log so far.
    fn audit_commits(&self) -> CommitStats;
}

/// Upper bounds, in seconds, of the buckets of [`CommitStats::buckets`].
pub const COMMIT_BUCKETS: [f64; 10] = [0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5];

/// The audit writer's group commits in this process: how many, how many entries they
/// carried, and how long each took from the start of its transaction until it was
/// durable (what the batch's callers waited once the writer had taken them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitStats {
    pub commits: u64,
    pub entries: u64,
    pub seconds: f64,
    /// Cumulative: commits that took at most each bound of [`COMMIT_BUCKETS`].
    pub buckets: [u64; COMMIT_BUCKETS.len()],
}

impl CommitStats {
    /// The commits since `earlier`, a reading of the same meter.
    pub fn since(&self, earlier: &CommitStats) -> CommitStats {
        let mut buckets = self.buckets;
        for (b, e) in buckets.iter_mut().zip(earlier.buckets) {
            *b = b.saturating_sub(e);
        }
        CommitStats {
            commits: self.commits.saturating_sub(earlier.commits),
            entries: self.entries.saturating_sub(earlier.entries),
            seconds: (self.seconds - earlier.seconds).max(0.0),
            buckets,
        }
    }

    /// Entries a commit carried on average (0 without commits).
    pub fn entries_per_commit(&self) -> f64 {
        if self.commits == 0 {
            0.0
        } else {
            self.entries as f64 / self.commits as f64
        }
    }

    /// The bound, in seconds, of the first bucket within which at least `q` of the
    /// commits were durable; `None` without commits or when that is beyond every bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        bucket_quantile(&COMMIT_BUCKETS, &self.buckets, self.commits, q)
    }
}

/// The upper bound of the first histogram bucket holding at least `q` of `count`
/// observations, given each bucket's cumulative count; `None` without observations or
/// when that is beyond every bound. (The audit commits here, the server's latency
/// histograms too.)
pub fn bucket_quantile(bounds: &[f64], cumulative: &[u64], count: u64, q: f64) -> Option<f64> {
    if count == 0 {
        return None;
    }
    let need = ((count as f64) * q).ceil().max(1.0) as u64;
    bounds.iter().zip(cumulative).find(|(_, n)| **n >= need).map(|(b, _)| *b)
}

// ------------------------------------------------------------------ verification

/// The first thing wrong with a chain. [`Fault::seq`] names the first bad entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Entry `seq` is absent; the chain continues at `next` (or ends).
    Missing { seq: i64, next: Option<i64> },
    /// A column of entry `seq` holds a value of the wrong type.
    Malformed { seq: i64, what: String },
    /// Entry `seq` does not link to the entry before it.
    BrokenLink { seq: i64, prev_hash: String, expected: String },
    /// Entry `seq`'s content does not give its stored hash.
    HashMismatch { seq: i64, stored: String, computed: String },
    /// The checkpoint at `seq` records another head hash than the entry there has.
    CheckpointMismatch { seq: i64, checkpoint: String, entry: String },
    /// The checkpoint at `seq` is not signed by any of the given keys.
    CheckpointSignature { seq: i64, fingerprint: String, reason: String },
    /// The log ends at `last` but a checkpoint vouches for entries up to `checkpoint`:
    /// entries from `seq` on were removed.
    Truncated { seq: i64, last: Option<i64>, checkpoint: i64 },
}

impl Fault {
    /// The first bad entry.
    pub fn seq(&self) -> i64 {
        match self {
            Fault::Missing { seq, .. }
            | Fault::Malformed { seq, .. }
            | Fault::BrokenLink { seq, .. }
            | Fault::HashMismatch { seq, .. }
            | Fault::CheckpointMismatch { seq, .. }
            | Fault::CheckpointSignature { seq, .. }
            | Fault::Truncated { seq, .. } => *seq,
        }
    }

    /// A short stable name of the kind of fault.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Missing { .. } => "missing",
            Fault::Malformed { .. } => "malformed",
            Fault::BrokenLink { .. } => "broken-link",
            Fault::HashMismatch { .. } => "hash-mismatch",
            Fault::CheckpointMismatch { .. } => "checkpoint-mismatch",
            Fault::CheckpointSignature { .. } => "checkpoint-signature",
            Fault::Truncated { .. } => "truncated",
        }
    }
}

fn short(h: &str) -> &str {
    h.get(..16).unwrap_or(h)
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Missing { seq, next: Some(n) } => {
                write!(f, "seq {seq}: entry missing (deleted, or renumbered) — the log jumps from {} to {n}", seq - 1)
            }
            Fault::Missing { seq, next: None } => write!(f, "seq {seq}: entry missing"),
            Fault::Malformed { seq, what } => {
                write!(f, "seq {seq}: {what} (the entry was changed outside govhub)")
            }
            Fault::BrokenLink { seq, prev_hash, expected } => write!(
                f,
                "seq {seq}: prev_hash {}… does not match the hash {}… of entry {} — an entry was inserted, \
                 deleted, replaced or moved at or before seq {seq}",
                short(prev_hash),
                short(expected),
                seq - 1
            ),
            Fault::HashMismatch { seq, stored, computed } => write!(
                f,
                "seq {seq}: its content does not match its hash (stored {}…, computed {}…) — the entry was modified",
                short(stored),
                short(computed)
            ),
            Fault::CheckpointMismatch { seq, checkpoint, entry } => write!(
                f,
                "seq {seq}: the signed checkpoint at seq {seq} records head {}… but the entry's hash is {}… — \
                 entries up to seq {seq} were rewritten (hashes recomputed) after the checkpoint",
                short(checkpoint),
                short(entry)
            ),
            Fault::CheckpointSignature { seq, fingerprint, reason } => write!(
                f,
                "seq {seq}: the checkpoint at seq {seq} is not validly signed by the platform key ({reason}; \
                 checkpoint names key {}…) — the checkpoint was forged or altered",
                short(fingerprint)
            ),
            Fault::Truncated { seq, last, checkpoint } => match last {
                Some(l) => write!(
                    f,
                    "seq {seq}: entries {seq}..={checkpoint} are missing — the log ends at seq {l} but a signed \
                     checkpoint vouches for seq {checkpoint} (the log was truncated)"
                ),
                None => write!(
                    f,
                    "seq {seq}: the log is empty but a signed checkpoint vouches for seq {checkpoint} \
                     (the log was truncated)"
                ),
            },
        }
    }
}

/// What `govhub audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries checked (up to the fault, if any).
    pub entries: u64,
    /// Checkpoints whose head and signature were checked.
    pub checkpoints: u64,
    /// The last entry read.
    pub head: Option<ChainHead>,
    /// The newest checkpoint (seq, time).
    pub latest_checkpoint: Option<(i64, DateTime<Utc>)>,
    /// Whether signatures were checked (a public key was given).
    pub signatures_checked: bool,
    pub fault: Option<Fault>,
}

/// Entries read per page while verifying (memory stays constant whatever the size).
pub const VERIFY_PAGE: u32 = 5_000;

/// Check a checkpoint's signature against the given keys (by fingerprint first).
fn check_signature(cp: &Checkpoint, keys: &[Sm2PublicKey]) -> Result<(), Fault> {
    let fault =
        |reason: String| Fault::CheckpointSignature { seq: cp.seq, fingerprint: cp.key_fingerprint.clone(), reason };
    let msg = cp.message();
    let mut last = String::from("no public key given");
    for key in keys {
        match govhub_crypto::signing::verify(key, &msg, &cp.signature) {
            Ok(()) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(fault(last))
}

/// Verify the whole chain and every checkpoint, reading the store page by page.
/// `keys` are the platform public keys whose signatures count (checkpoint signatures
/// are not checked when it is empty). `progress` is told the seq reached after each
/// page. Store failures are errors; anything wrong with the log is in the report's
/// `fault`, which names the first bad entry.
pub async fn verify_log(
    store: &dyn AuditStore,
    keys: &[Sm2PublicKey],
    progress: &mut (dyn FnMut(i64) + Send),
) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport {
        entries: 0,
        checkpoints: 0,
        head: None,
        latest_checkpoint: None,
        signatures_checked: !keys.is_empty(),
        fault: None,
    };
    let mut pending: std::collections::VecDeque<Checkpoint> = Default::default();
    let mut checkpoints_after = 0i64;
    let mut checkpoints_done = false;
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut expected = 1i64;
    let mut after = 0i64;

    // Feed checkpoints lazily, a page at a time, in seq order.
    async fn refill(
        store: &dyn AuditStore,
        pending: &mut std::collections::VecDeque<Checkpoint>,
        after: &mut i64,
        done: &mut bool,
    ) -> Result<(), StoreError> {
        if pending.is_empty() && !*done {
            let page = store.list_checkpoints(*after, VERIFY_PAGE).await?;
            if let Some(last) = page.last() {
                *after = last.seq;
            }
            *done = page.len() < VERIFY_PAGE as usize;
            pending.extend(page);
        }
        Ok(())
    }

    let check_checkpoint = |cp: &Checkpoint, entry_hash: &str, report: &mut VerifyReport| -> Result<(), Fault> {
        if !keys.is_empty() {
            check_signature(cp, keys)?;
        }
        if cp.head_hash != entry_hash {
            return Err(Fault::CheckpointMismatch {
                seq: cp.seq,
                checkpoint: cp.head_hash.clone(),
                entry: entry_hash.to_string(),
            });
        }
        report.checkpoints += 1;
        report.latest_checkpoint = Some((cp.seq, cp.at));
        Ok(())
    };

    'pages: loop {
        let page = store.audit_chain(after, VERIFY_PAGE).await?;
        let full = page.len() == VERIFY_PAGE as usize;
        for e in page {
            after = e.seq;
            let step = (|| {
                if e.seq != expected {
                    return Err(Fault::Missing { seq: expected, next: Some(e.seq) });
                }
                if let Some(what) = &e.malformed {
                    return Err(Fault::Malformed { seq: e.seq, what: what.clone() });
                }
                if e.prev_hash != prev_hash {
                    return Err(Fault::BrokenLink {
                        seq: e.seq,
                        prev_hash: e.prev_hash.clone(),
                        expected: prev_hash.clone(),
                    });
                }
                let computed = e.compute_hash();
                if computed != e.hash {
                    return Err(Fault::HashMismatch { seq: e.seq, stored: e.hash.clone(), computed });
                }
                Ok(())
            })();
            if let Err(f) = step {
                report.fault = Some(f);
                break 'pages;
            }
            // Checkpoints at or before this entry (earlier ones name missing entries,
            // which were reported above, so only an equal seq remains here).
            loop {
                refill(store, &mut pending, &mut checkpoints_after, &mut checkpoints_done).await?;
                match pending.front() {
                    Some(cp) if cp.seq <= e.seq => {
                        let cp = pending.pop_front().ok_or_else(|| StoreError::Corrupt("checkpoint queue".into()))?;
                        let r = if cp.seq == e.seq {
                            check_checkpoint(&cp, &e.hash, &mut report)
                        } else {
                            // A checkpoint for a seq the chain skipped: only possible with
                            // a seq <= 0, which govhub never writes.
                            Err(Fault::CheckpointMismatch {
                                seq: cp.seq,
                                checkpoint: cp.head_hash.clone(),
                                entry: String::new(),
                            })
                        };
                        if let Err(f) = r {
                            report.fault = Some(f);
                            break 'pages;
                        }
                    }
                    _ => break,
                }
            }
            prev_hash = e.hash.clone();
            expected = e.seq + 1;
            report.entries += 1;
            report.head = Some(e.head());
        }
        progress(after);
        if !full {
            break;
        }
    }

    if report.fault.is_none() {
        // Checkpoints beyond the end: a forged checkpoint, or a truncated log.
        refill(store, &mut pending, &mut checkpoints_after, &mut checkpoints_done).await?;
        if let Some(cp) = pending.front() {
            let last = report.head.as_ref().map(|h| h.seq);
            let fault = if keys.is_empty() { None } else { check_signature(cp, keys).err() };
            report.fault =
                Some(fault.unwrap_or(Fault::Truncated { seq: last.unwrap_or(0) + 1, last, checkpoint: cp.seq }));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::model::Role;
    use std::sync::Mutex;

    #[test]
    fn timestamps_are_written_to_the_microsecond_with_a_z() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        for (t, text) in [
            ("2026-11-29T08:39:48.217883Z", "2026-11-29T08:39:48.217883Z"),
            ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05.000000Z"),
            ("2026-06-30T23:59:59.5+08:00", "2026-06-30T15:59:59.500000Z"),
            ("1999-12-31T23:59:59.000001Z", "1999-12-31T23:59:59.000001Z"),
        ] {
            assert_eq!(timestamp_text(to_micros(at(t))), text);
            assert_eq!(timestamp_text(to_micros(at(t))), to_micros(at(t)).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
        }
        // Nanoseconds are cut to microseconds before they are written.
        assert_eq!(timestamp_text(to_micros(at("2026-11-29T08:39:48.217883999Z"))), "2026-11-29T08:39:48.217883Z");
    }

    fn event(i: i64) -> NewAuditEvent {
        NewAuditEvent {
            at: DateTime::parse_from_rfc3339("2026-03-02T01:00:00.123456789Z").unwrap().with_timezone(&Utc)
                + chrono::Duration::seconds(i),
            actor: "gaj-officer".into(),
            actor_role: Some(Role::DataOfficer),
            actor_org: Some(OrgCode::parse("cz-gaj").unwrap()),
            on_behalf_of: None,
            action: "share.read".into(),
            target: "HJRK".into(),
            outcome: Outcome::Allowed,
            detail: serde_json::json!({"key": "320402199001011235", "fields": ["xm", "xb"]}),
            request_id: Some(format!("req-{i}")),
            app: Some("rsj-app".into()),
            purpose: Some("社保资格认证".into()),
            rows: Some(1),
            subjects: vec!["320402199001011235".into(), " 32040219900101123x ".into(), "320402199001011235".into()],
        }
    }

    fn chain(n: i64) -> Vec<ChainEntry> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|i| {
                let e = EntryBody::from_event(&event(i), "salt").unwrap().chain(i, prev.clone());
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    /// Pins the encoding: changing it breaks every existing log.
    #[test]
    fn known_answer() {
        let body = EntryBody {
            at: "2026-03-02T01:00:00.000000Z".into(),
            actor: "admin".into(),
            actor_role: Some("platform-admin".into()),
            actor_org: None,
            on_behalf_of: None,
            action: "org.create".into(),
            target: "cz".into(),
            outcome: "succeeded".into(),
            detail: r#"{"name":"常州市人民政府"}"#.into(),
            request_id: None,
            app: None,
            purpose: None,
            rows: None,
            subjects: vec![],
        };
        let e = body.chain(1, GENESIS_HASH.into());
        let bytes = e.canonical_bytes();
        assert!(bytes.starts_with(b"govhub-audit-entry-v1\n\x00\x00\x00\x011\x00\x00\x00\x40000"));
        assert_eq!(&bytes[bytes.len() - 5..], b"\x00\x00\x00\x010");
        assert_eq!(e.hash, govhub_crypto::sm3_hex(&bytes));
        // Also computed by the Python reference in docs/audit.md (hashlib SM3).
        assert_eq!(e.hash, "4bf9f334cedd477da7ece3cc31b5deab4f70c3ebaa9c278a7098cf1529e173da");
    }

    #[test]
    fn bodies_normalise_subjects_and_time() {
        let b = EntryBody::from_event(&event(0), "salt").unwrap();
        assert_eq!(b.at, "2026-03-02T01:00:00.123456Z");
        assert_eq!(b.subjects.len(), 2, "trimmed, upper-cased, deduplicated");
        assert!(b.subjects.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(b.subjects[0].len(), 64);
        assert!(b.subjects.contains(&subject_digest("salt", "32040219900101123X")));
        assert_ne!(subject_digest("salt", "x"), subject_digest("pepper", "x"));
        assert_eq!(b.detail, r#"{"key":"320402199001011235","fields":["xm","xb"]}"#);
    }

    #[test]
    fn every_field_is_covered_and_none_differs_from_empty() {
        let base = chain(1).remove(0);
        let mut variants: Vec<ChainEntry> = Vec::new();
        let mut v = |f: &dyn Fn(&mut ChainEntry)| {
            let mut e = base.clone();
            f(&mut e);
            variants.push(e);
        };
        v(&|e| e.seq = 2);
        v(&|e| e.prev_hash = "1".repeat(64));
        v(&|e| e.body.at = "2026-03-02T01:00:00.123457Z".into());
        v(&|e| e.body.actor.push('x'));
        v(&|e| e.body.actor_role = None);
        v(&|e| e.body.actor_role = Some(String::new()));
        v(&|e| e.body.actor_org = None);
        v(&|e| e.body.on_behalf_of = Some("cz".into()));
        v(&|e| e.body.action.push('x'));
        v(&|e| e.body.target.push('x'));
        v(&|e| e.body.outcome = "denied".into());
        v(&|e| e.body.detail = "{}".into());
        v(&|e| e.body.request_id = None);
        v(&|e| e.body.app = None);
        v(&|e| e.body.purpose = None);
        v(&|e| e.body.rows = Some(2));
        v(&|e| e.body.rows = None);
        v(&|e| {
            e.body.subjects.pop();
        });
        v(&|e| e.body.subjects.reverse());
        // Moving bytes between adjacent fields changes the hash (length prefixes).
        v(&|e| {
            e.body.action = "share.rea".into();
            e.body.target = "dHJRK".into();
        });
        let mut seen = std::collections::HashSet::new();
        assert!(seen.insert(base.compute_hash()));
        for e in &variants {
            assert!(seen.insert(e.compute_hash()), "{e:?} collides");
        }
    }

    #[test]
    fn checkpoint_messages() {
        let at = DateTime::parse_from_rfc3339("2026-03-02T01:00:00.5Z").unwrap().with_timezone(&Utc);
        let m = checkpoint_message(42, "ab", at);
        assert_eq!(m, b"govhub-audit-checkpoint-v1\nseq=42\nhead=ab\nat=2026-03-02T01:00:00.500000Z\n");
    }

    #[test]
    fn policy() {
        let t0 = Utc::now();
        let p = CheckpointPolicy { every_entries: 10, every: chrono::Duration::minutes(5) };
        let head = |seq| ChainHead { seq, hash: String::new() };
        let cp =
            |seq, at| Checkpoint { seq, head_hash: String::new(), at, signature: vec![], key_fingerprint: "".into() };
        assert!(!p.due(None, None, t0));
        assert!(p.due(Some(&head(1)), None, t0));
        assert!(!p.due(Some(&head(5)), Some(&cp(5, t0)), t0 + chrono::Duration::hours(1)));
        assert!(!p.due(Some(&head(9)), Some(&cp(5, t0)), t0));
        assert!(p.due(Some(&head(15)), Some(&cp(5, t0)), t0));
        assert!(p.due(Some(&head(6)), Some(&cp(5, t0)), t0 + chrono::Duration::minutes(5)));
    }

    #[test]
    fn commit_figures_between_two_readings() {
        let mut a = CommitStats { commits: 10, entries: 300, seconds: 0.01, ..Default::default() };
        a.buckets = [0, 2, 8, 10, 10, 10, 10, 10, 10, 10];
        // 100 more commits of 25 entries: 60 within 0.5 ms, 39 more within 2 ms, one slow.
        let mut z = CommitStats { commits: 110, entries: 2_800, seconds: 0.21, ..Default::default() };
        z.buckets = [0, 62, 80, 109, 109, 109, 109, 109, 109, 109];
        let d = z.since(&a);
        assert_eq!((d.commits, d.entries, d.buckets[1], d.buckets[3]), (100, 2_500, 60, 99));
        assert!((d.seconds - 0.2).abs() < 1e-12);
        assert_eq!((d.entries_per_commit(), d.quantile(0.5), d.quantile(0.99)), (25.0, Some(0.0005), Some(0.002)));
        z.buckets = [0, 62, 80, 108, 108, 108, 108, 108, 108, 108];
        assert_eq!(z.since(&a).quantile(0.99), None, "99 % beyond every bound");
        let none = a.since(&a);
        assert_eq!((none.commits, none.entries_per_commit(), none.quantile(0.5)), (0, 0.0, None));
        // A reading older than the earlier one (another meter) does not underflow.
        assert_eq!(a.since(&z).commits, 0);
    }

    /// An in-memory store for the verifier.
    #[derive(Default)]
    struct Mem {
        entries: Mutex<Vec<ChainEntry>>,
        checkpoints: Mutex<Vec<Checkpoint>>,
    }

    #[async_trait]
    impl AuditStore for Mem {
        async fn list_audit_for_subject(&self, _: &str, _: u32) -> Result<Vec<AuditEvent>, StoreError> {
            Ok(vec![])
        }
        async fn audit_head(&self) -> Result<Option<ChainHead>, StoreError> {
            Ok(self.entries.lock().unwrap().last().map(ChainEntry::head))
        }
        async fn audit_chain(&self, after: i64, limit: u32) -> Result<Vec<ChainEntry>, StoreError> {
            let mut v: Vec<ChainEntry> = self.entries.lock().unwrap().clone();
            v.sort_by_key(|e| e.seq);
            Ok(v.into_iter().filter(|e| e.seq > after).take(limit as usize).collect())
        }
        async fn insert_checkpoint(&self, cp: &Checkpoint) -> Result<Checkpoint, StoreError> {
            self.checkpoints.lock().unwrap().push(cp.clone());
            Ok(cp.clone())
        }
        async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
            Ok(self.checkpoints.lock().unwrap().last().cloned())
        }
        async fn list_checkpoints(&self, after: i64, limit: u32) -> Result<Vec<Checkpoint>, StoreError> {
            let mut v: Vec<Checkpoint> = self.checkpoints.lock().unwrap().clone();
            v.sort_by_key(|c| c.seq);
            Ok(v.into_iter().filter(|c| c.seq > after).take(limit as usize).collect())
        }
        fn audit_commits(&self) -> CommitStats {
            CommitStats::default()
        }
    }

    fn signer() -> crate::signer::Sm2Signer {
        crate::signer::Sm2Signer::ephemeral().unwrap()
    }

    fn checkpoint(s: &crate::signer::Sm2Signer, e: &ChainEntry) -> Checkpoint {
        use crate::signer::PlatformSigner;
        let at = Utc::now();
        let signature = s.sign(&checkpoint_message(e.seq, &e.hash, at)).unwrap();
        Checkpoint {
            seq: e.seq,
            head_hash: e.hash.clone(),
            at: to_micros(at),
            signature,
            key_fingerprint: s.fingerprint(),
        }
    }

    fn run(m: &Mem, keys: &[Sm2PublicKey]) -> VerifyReport {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(verify_log(m, keys, &mut |_| {})).unwrap()
    }

    fn mem(entries: Vec<ChainEntry>, cps: Vec<Checkpoint>) -> Mem {
        Mem { entries: Mutex::new(entries), checkpoints: Mutex::new(cps) }
    }

    #[test]
    fn verifier_names_the_first_bad_entry() {
        let s = signer();
        let keys = [s.public_key()];
        let good = chain(30);
        let cps = vec![checkpoint(&s, &good[9]), checkpoint(&s, &good[19])];
        let r = run(&mem(good.clone(), cps.clone()), &keys);
        assert_eq!(r.fault, None);
        assert_eq!((r.entries, r.checkpoints), (30, 2));
        assert_eq!(r.head.as_ref().map(|h| h.seq), Some(30));

        let fault = |entries: Vec<ChainEntry>, cps: Vec<Checkpoint>| run(&mem(entries, cps), &keys).fault.unwrap();

        // Modified field.
        let mut v = good.clone();
        v[14].body.target = "OTHER".into();
        let f = fault(v, cps.clone());
        assert_eq!((f.seq(), f.kind()), (15, "hash-mismatch"));
        assert!(f.to_string().starts_with("seq 15: "), "{f}");

        // Deleted entry.
        let mut v = good.clone();
        v.remove(4);
        assert_eq!(fault(v, cps.clone()).seq(), 5);
        let mut v = good.clone();
        v.remove(0);
        assert_eq!(fault(v, cps.clone()).seq(), 1);

        // Swapped contents (hashes included): the link breaks at the first.
        let mut v = good.clone();
        let (a, b) = (v[3].clone(), v[7].clone());
        v[3] = ChainEntry { seq: 4, ..b };
        v[7] = ChainEntry { seq: 8, ..a };
        let f = fault(v, cps.clone());
        assert_eq!((f.seq(), f.kind()), (4, "broken-link"));

        // Rewritten with recomputed hashes: caught by the checkpoint covering it.
        let mut v = good.clone();
        v[12].body.actor = "intruder".into();
        let mut prev = v[11].hash.clone();
        for e in v.iter_mut().skip(12) {
            e.prev_hash = prev.clone();
            e.hash = e.compute_hash();
            prev = e.hash.clone();
        }
        let f = fault(v.clone(), cps.clone());
        assert_eq!((f.seq(), f.kind()), (20, "checkpoint-mismatch"));
        // … but not without one (documented: entries after the last checkpoint rely on an
        // external copy of the head).
        assert_eq!(run(&mem(v, vec![cps[0].clone()]), &keys).fault, None);

        // Truncated past a checkpoint.
        let v: Vec<ChainEntry> = good.iter().take(17).cloned().collect();
        let f = fault(v, cps.clone());
        assert_eq!((f.seq(), f.kind()), (18, "truncated"));
        let f = fault(vec![], cps.clone());
        assert_eq!((f.seq(), f.kind()), (1, "truncated"), "{f}");

        // Forged or altered checkpoints.
        let other = signer();
        let mut forged = cps.clone();
        forged[1] = checkpoint(&other, &good[19]);
        let f = fault(good.clone(), forged);
        assert_eq!((f.seq(), f.kind()), (20, "checkpoint-signature"));
        let mut altered = cps.clone();
        altered[0].at += chrono::Duration::seconds(1);
        assert_eq!(fault(good.clone(), altered).kind(), "checkpoint-signature");
        // A forged checkpoint beyond the end is reported as forged, not as truncation.
        let mut beyond = cps.clone();
        let mut fake = checkpoint(&other, &good[29]);
        fake.seq = 40;
        beyond.push(fake);
        assert_eq!(fault(good.clone(), beyond).kind(), "checkpoint-signature");

        // Malformed column.
        let mut v = good.clone();
        v[2].malformed = Some("column row_count holds text".into());
        assert_eq!(fault(v, vec![]).seq(), 3);

        // Without keys the chain is still checked, signatures are not.
        let r = run(&mem(good.clone(), forged_all(&cps)), &[]);
        assert_eq!(r.fault, None);
        assert!(!r.signatures_checked);
    }

    fn forged_all(cps: &[Checkpoint]) -> Vec<Checkpoint> {
        cps.iter().map(|c| Checkpoint { signature: vec![0x30, 0], ..c.clone() }).collect()
    }

    #[test]
    fn verifier_pages_through_long_logs() {
        let n = i64::from(VERIFY_PAGE) * 2 + 7;
        let s = signer();
        let good = chain(n);
        let cps: Vec<Checkpoint> = good.iter().step_by(1000).map(|e| checkpoint(&s, e)).collect();
        let mut seen = Vec::new();
        let m = mem(good, cps.clone());
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let r = rt.block_on(verify_log(&m, &[s.public_key()], &mut |seq| seen.push(seq))).unwrap();
        assert_eq!(r.fault, None);
        assert_eq!(r.entries as i64, n);
        assert_eq!(r.checkpoints as usize, cps.len());
        assert_eq!(seen.last(), Some(&n));
    }
}
