//! The PostgreSQL audit log: one writer task per store does group commit
//! (`crate::audit`). Each batch transaction takes the audit advisory lock, reads the
//! head and inserts the batch after it, so several govhub nodes (several stores on one
//! database) append to one valid chain: their batches interleave, never their links.
//! With PostgreSQL's default `synchronous_commit = on`, a returned `append_audit` is
//! durable.

use super::{db, get, pool_err, where_clause, Args, PostgresStore};
use crate::audit::{fail_all, new_salt, submit, CommitMeter, Job, MAX_BATCH, QUEUE_DEPTH};
use crate::records::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool, Transaction};
use govhub_core::audit::{
    subject_digest, timestamp_text, AuditStore, ChainEntry, ChainHead, Checkpoint, CommitStats, EntryBody,
    GENESIS_HASH, SUBJECT_SALT_KEY,
};
use govhub_core::model::{AuditEvent, AuditQuery, NewAuditEvent};
use govhub_core::store::StoreError;
use tokio::sync::mpsc;
use tokio_postgres::Row;

/// Advisory lock held by every audit batch transaction (and the legacy import):
/// "govhub" followed by "au".
pub const AUDIT_LOCK_KEY: i64 = 0x676f_7668_6175;

/// Legacy rows copied per round trip.
const IMPORT_PAGE: i64 = 10_000;

/// The store's audit writer queue and the subject salt.
pub(crate) struct AuditLog {
    salt: String,
    jobs: mpsc::Sender<Job>,
    meter: std::sync::Arc<CommitMeter>,
}

impl AuditLog {
    /// Load (or create) the subject salt, copy the pre-chain log into the chain if it is
    /// still there, and start the writer task.
    pub(crate) async fn open(pool: &Pool) -> StoreResult<AuditLog> {
        let salt = subject_salt(pool).await?;
        import_legacy(pool).await?;
        let (jobs, rx) = mpsc::channel(QUEUE_DEPTH);
        let meter = std::sync::Arc::new(CommitMeter::default());
        tokio::spawn(writer_loop(pool.clone(), rx, std::sync::Arc::clone(&meter)));
        Ok(AuditLog { salt, jobs, meter })
    }
}

async fn subject_salt(pool: &Pool) -> StoreResult<String> {
    let client = pool.get().await.map_err(pool_err)?;
    client
        .execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&SUBJECT_SALT_KEY, &new_salt()],
        )
        .await
        .map_err(db)?;
    let row = client.query_one("SELECT value FROM meta WHERE key = $1", &[&SUBJECT_SALT_KEY]).await.map_err(db)?;
    get(&row, 0)
}

async fn head(tx: &Transaction<'_>) -> StoreResult<(i64, String)> {
    let stmt = tx.prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").await.map_err(db)?;
    let row = tx.query_opt(&stmt, &[]).await.map_err(db)?;
    match row {
        Some(r) => Ok((get(&r, 0)?, get(&r, 1)?)),
        None => Ok((0, GENESIS_HASH.to_string())),
    }
}

/// Insert chained entries (and their subject digests) with one statement each.
async fn insert_entries(tx: &Transaction<'_>, entries: &[ChainEntry]) -> StoreResult<()> {
    let n = entries.len();
    let mut seq = Vec::with_capacity(n);
    let mut prev_hash = Vec::with_capacity(n);
    let mut hash = Vec::with_capacity(n);
    let mut at: Vec<DateTime<Utc>> = Vec::with_capacity(n);
    let mut actor = Vec::with_capacity(n);
    let mut actor_role = Vec::with_capacity(n);
    let mut actor_org = Vec::with_capacity(n);
    let mut on_behalf_of = Vec::with_capacity(n);
    let mut action = Vec::with_capacity(n);
    let mut target = Vec::with_capacity(n);
    let mut outcome = Vec::with_capacity(n);
    let mut detail = Vec::with_capacity(n);
    let mut request_id = Vec::with_capacity(n);
    let mut app = Vec::with_capacity(n);
    let mut purpose = Vec::with_capacity(n);
    let mut row_count = Vec::with_capacity(n);
    let mut sub_digest: Vec<&str> = Vec::new();
    let mut sub_seq: Vec<i64> = Vec::new();
    for e in entries {
        let b = &e.body;
        let t = DateTime::parse_from_rfc3339(&b.at)
            .map_err(|err| refused(format!("audit entry time \"{}\" does not parse: {err}", b.at)))?;
        seq.push(e.seq);
        prev_hash.push(e.prev_hash.as_str());
        hash.push(e.hash.as_str());
        at.push(t.with_timezone(&Utc));
        actor.push(b.actor.as_str());
        actor_role.push(b.actor_role.as_deref());
        actor_org.push(b.actor_org.as_deref());
        on_behalf_of.push(b.on_behalf_of.as_deref());
        action.push(b.action.as_str());
        target.push(b.target.as_str());
        outcome.push(b.outcome.as_str());
        detail.push(b.detail.as_str());
        request_id.push(b.request_id.as_deref());
        app.push(b.app.as_deref());
        purpose.push(b.purpose.as_deref());
        row_count.push(b.rows);
        for d in &b.subjects {
            sub_digest.push(d);
            sub_seq.push(e.seq);
        }
    }
    // The writer's statements are prepared once on its connection (cached).
    let insert = tx
        .prepare_cached(
            "INSERT INTO audit_log (seq, prev_hash, hash, at, actor, actor_role, actor_org, on_behalf_of, action, target,
             outcome, detail, request_id, app, purpose, row_count)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[],
             $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
             $15::text[], $16::bigint[])",
        )
        .await
        .map_err(db)?;
    tx.execute(
        &insert,
        &[
            &seq,
            &prev_hash,
            &hash,
            &at,
            &actor,
            &actor_role,
            &actor_org,
            &on_behalf_of,
            &action,
            &target,
            &outcome,
            &detail,
            &request_id,
            &app,
            &purpose,
            &row_count,
        ],
    )
    .await
    .map_err(db)?;
    if !sub_digest.is_empty() {
        let stmt = tx
            .prepare_cached("INSERT INTO audit_subjects (digest, seq) SELECT * FROM UNNEST($1::text[], $2::bigint[])")
            .await
            .map_err(db)?;
        tx.execute(&stmt, &[&sub_digest, &sub_seq]).await.map_err(db)?;
    }
    Ok(())
}

async fn commit_batch(client: &mut Object, bodies: Vec<EntryBody>) -> StoreResult<Vec<i64>> {
    let tx = client.transaction().await.map_err(db)?;
    let lock = tx.prepare_cached("SELECT pg_advisory_xact_lock($1)").await.map_err(db)?;
    tx.execute(&lock, &[&AUDIT_LOCK_KEY]).await.map_err(db)?;
    let (mut seq, mut prev) = head(&tx).await?;
    let mut entries = Vec::with_capacity(bodies.len());
    for body in bodies {
        seq += 1;
        let e = body.chain(seq, prev);
        prev = e.hash.clone();
        entries.push(e);
    }
    insert_entries(&tx, &entries).await?;
    tx.commit().await.map_err(db)?;
    Ok(entries.iter().map(|e| e.seq).collect())
}

async fn writer_loop(pool: Pool, mut jobs: mpsc::Receiver<Job>, meter: std::sync::Arc<CommitMeter>) {
    // The writer keeps one connection (taken again after a failure), so audit entries
    // never queue behind a busy pool.
    let mut client: Option<Object> = None;
    let mut bodies = Vec::new();
    let mut replies = Vec::new();
    while let Some(first) = jobs.recv().await {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Append(body, reply) => {
                    bodies.push(body);
                    replies.push(reply);
                }
                Job::Checkpoint(cp, reply) => {
                    let _ = reply.send(insert_checkpoint(&pool, &cp).await);
                }
            }
            if bodies.len() < MAX_BATCH {
                next = jobs.try_recv().ok();
            }
        }
        if bodies.is_empty() {
            continue;
        }
        let c = match client.take() {
            Some(c) => Ok(c),
            None => pool.get().await.map_err(pool_err),
        };
        let result = match c {
            Ok(mut c) => {
                let (entries, began) = (bodies.len(), std::time::Instant::now());
                let r = commit_batch(&mut c, std::mem::take(&mut bodies)).await;
                if r.is_ok() {
                    meter.record(entries, began.elapsed());
                    client = Some(c);
                }
                r
            }
            Err(e) => {
                bodies.clear();
                Err(e)
            }
        };
        match result {
            Ok(seqs) => {
                for (reply, seq) in replies.drain(..).zip(seqs) {
                    let _ = reply.send(Ok(seq));
                }
            }
            Err(e) => fail_all(std::mem::take(&mut replies), e),
        }
    }
}

/// Copy the pre-chain `audit_events` rows (renamed `audit_events_legacy` by
/// migration 0003) into the chain, in seq order, and drop the old table — all in one
/// transaction under the audit lock, so with several nodes starting at once it happens
/// exactly once.
async fn import_legacy(pool: &Pool) -> StoreResult<()> {
    let mut client = pool.get().await.map_err(pool_err)?;
    let tx = client.transaction().await.map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK_KEY]).await.map_err(db)?;
    let exists: bool =
        get(&tx.query_one("SELECT to_regclass('audit_events_legacy') IS NOT NULL", &[]).await.map_err(db)?, 0)?;
    if !exists {
        return Ok(());
    }
    let (mut seq, mut prev) = head(&tx).await?;
    let mut after = i64::MIN;
    let mut copied = 0u64;
    loop {
        let rows = tx
            .query(
                "SELECT seq, at, actor, actor_role, actor_org, on_behalf_of, action, target, outcome, detail, request_id
                 FROM audit_events_legacy WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &IMPORT_PAGE],
            )
            .await
            .map_err(db)?;
        if rows.is_empty() {
            break;
        }
        let mut entries = Vec::with_capacity(rows.len());
        for r in &rows {
            after = get(r, 0)?;
            let body = EntryBody {
                at: timestamp_text(get(r, 1)?),
                actor: get(r, 2)?,
                actor_role: get(r, 3)?,
                actor_org: get(r, 4)?,
                on_behalf_of: get(r, 5)?,
                action: get(r, 6)?,
                target: get(r, 7)?,
                outcome: get(r, 8)?,
                detail: get(r, 9)?,
                request_id: get(r, 10)?,
                app: None,
                purpose: None,
                rows: None,
                subjects: Vec::new(),
            };
            seq += 1;
            let e = body.chain(seq, prev);
            prev = e.hash.clone();
            entries.push(e);
        }
        insert_entries(&tx, &entries).await?;
        copied += entries.len() as u64;
    }
    tx.batch_execute("DROP TABLE audit_events_legacy").await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    tracing::info!(entries = copied, "copied the audit log into the hash chain");
    Ok(())
}

const CHECKPOINT_COLUMNS: &str = "seq, head_hash, at, signature, key_fingerprint";

fn checkpoint_row(r: &Row) -> StoreResult<Checkpoint> {
    Ok(Checkpoint {
        seq: get(r, 0)?,
        head_hash: get(r, 1)?,
        at: get(r, 2)?,
        signature: get(r, 3)?,
        key_fingerprint: get(r, 4)?,
    })
}

async fn insert_checkpoint(pool: &Pool, cp: &Checkpoint) -> StoreResult<Checkpoint> {
    let client = pool.get().await.map_err(pool_err)?;
    let hash: Option<String> =
        match client.query_opt("SELECT hash FROM audit_log WHERE seq = $1", &[&cp.seq]).await.map_err(db)? {
            Some(r) => Some(get(&r, 0)?),
            None => None,
        };
    if hash.as_deref() != Some(cp.head_hash.as_str()) {
        return Err(StoreError::Conflict { what: "audit_checkpoint" });
    }
    client
        .execute(
            &format!(
                "INSERT INTO audit_checkpoints ({CHECKPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (seq) DO NOTHING"
            ),
            &[&cp.seq, &cp.head_hash, &cp.at, &cp.signature, &cp.key_fingerprint],
        )
        .await
        .map_err(db)?;
    let row = client
        .query_one(&format!("SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq = $1"), &[&cp.seq])
        .await
        .map_err(db)?;
    checkpoint_row(&row)
}

fn audit_row(r: &Row) -> StoreResult<AuditEvent> {
    AuditRow {
        seq: get(r, 0)?,
        at: get(r, 1)?,
        actor: get(r, 2)?,
        actor_role: get(r, 3)?,
        actor_org: get(r, 4)?,
        on_behalf_of: get(r, 5)?,
        action: get(r, 6)?,
        target: get(r, 7)?,
        outcome: get(r, 8)?,
        detail: get(r, 9)?,
        request_id: get(r, 10)?,
        app: get(r, 11)?,
        purpose: get(r, 12)?,
        row_count: get(r, 13)?,
        prev_hash: get(r, 14)?,
        hash: get(r, 15)?,
    }
    .into_event()
}

const CHAIN_COLUMNS: &str = "seq, prev_hash, hash, at, actor, actor_role, actor_org, on_behalf_of, action, target, \
                             outcome, detail, request_id, app, purpose, row_count";

fn chain_row(r: &Row) -> StoreResult<ChainEntry> {
    Ok(ChainEntry {
        seq: get(r, 0)?,
        prev_hash: get(r, 1)?,
        hash: get(r, 2)?,
        body: EntryBody {
            at: timestamp_text(get(r, 3)?),
            actor: get(r, 4)?,
            actor_role: get(r, 5)?,
            actor_org: get(r, 6)?,
            on_behalf_of: get(r, 7)?,
            action: get(r, 8)?,
            target: get(r, 9)?,
            outcome: get(r, 10)?,
            detail: get(r, 11)?,
            request_id: get(r, 12)?,
            app: get(r, 13)?,
            purpose: get(r, 14)?,
            rows: get(r, 15)?,
            subjects: Vec::new(),
        },
        malformed: None,
    })
}

impl PostgresStore {
    pub(crate) async fn append_audit_entry(&self, event: &NewAuditEvent) -> StoreResult<i64> {
        let body = EntryBody::from_event(event, &self.audit.salt).map_err(StoreError::backend)?;
        submit(&self.audit.jobs, |reply| Job::Append(body, reply)).await
    }

    pub(crate) async fn list_audit_entries(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        let mut args = Args::default();
        let mut clauses: Vec<String> = Vec::new();
        if let Some(a) = &q.actor {
            clauses.push(format!("actor = {}", args.push(a.clone())));
        }
        if let Some(p) = &q.action_prefix {
            // A prefix match without LIKE: exact and case-sensitive, as on SQLite.
            let len = i32::try_from(p.chars().count()).map_err(|_| refused("audit action prefix is too long"))?;
            let len = args.push(len);
            clauses.push(format!("substr(action, 1, {len}) = {}", args.push(p.clone())));
        }
        if let Some(t) = &q.target {
            clauses.push(format!("target = {}", args.push(t.clone())));
        }
        if let Some(s) = q.after_seq {
            clauses.push(format!("seq > {}", args.push(s)));
        }
        let limit = args.push(effective_limit(q.limit));
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log{} ORDER BY seq DESC LIMIT {limit}",
                    where_clause(&clauses)
                ),
                &args.refs(),
            )
            .await
            .map_err(db)?;
        rows.iter().map(audit_row).collect()
    }
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn list_audit_for_subject(&self, subject: &str, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        let digest = subject_digest(&self.audit.salt, subject);
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq IN
                         (SELECT seq FROM audit_subjects WHERE digest = $1 ORDER BY seq DESC LIMIT $2)
                     ORDER BY seq DESC"
                ),
                &[&digest, &effective_limit(limit)],
            )
            .await
            .map_err(db)?;
        rows.iter().map(audit_row).collect()
    }

    async fn audit_head(&self) -> StoreResult<Option<ChainHead>> {
        let row = self
            .client()
            .await?
            .query_opt("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", &[])
            .await
            .map_err(db)?;
        row.map(|r| Ok(ChainHead { seq: get(&r, 0)?, hash: get(&r, 1)? })).transpose()
    }

    async fn audit_chain(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<ChainEntry>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {CHAIN_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"),
                &[&after_seq, &i64::from(limit)],
            )
            .await
            .map_err(db)?;
        let mut entries = rows.iter().map(chain_row).collect::<StoreResult<Vec<_>>>()?;
        if let (Some(first), Some(last)) = (entries.first().map(|e| e.seq), entries.last().map(|e| e.seq)) {
            let subjects = client
                .query(
                    "SELECT seq, digest FROM audit_subjects WHERE seq >= $1 AND seq <= $2 ORDER BY seq, digest",
                    &[&first, &last],
                )
                .await
                .map_err(db)?;
            let mut i = 0;
            for r in &subjects {
                let seq: i64 = get(r, 0)?;
                while i < entries.len() && entries[i].seq < seq {
                    i += 1;
                }
                if let Some(e) = entries.get_mut(i).filter(|e| e.seq == seq) {
                    e.body.subjects.push(get(r, 1)?);
                }
            }
        }
        Ok(entries)
    }

    async fn insert_checkpoint(&self, checkpoint: &Checkpoint) -> StoreResult<Checkpoint> {
        let cp = checkpoint.clone();
        submit(&self.audit.jobs, |reply| Job::Checkpoint(cp, reply)).await
    }

    async fn latest_checkpoint(&self) -> StoreResult<Option<Checkpoint>> {
        let row = self
            .client()
            .await?
            .query_opt(&format!("SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"), &[])
            .await
            .map_err(db)?;
        row.as_ref().map(checkpoint_row).transpose()
    }

    async fn list_checkpoints(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<Checkpoint>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq > $1 ORDER BY seq LIMIT $2"),
                &[&after_seq, &i64::from(limit)],
            )
            .await
            .map_err(db)?;
        rows.iter().map(checkpoint_row).collect()
    }

    fn audit_commits(&self) -> CommitStats {
        self.audit.meter.stats()
    }
}
