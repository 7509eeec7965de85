//! SQLite: webhook subscriptions, their leases and their attempt logs.

use super::{db, ts, SqliteStore, Ts};
use crate::records::{corrupt, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use govhub_core::names::DatasetCode;
use govhub_core::webhook::*;
use rusqlite::{params, Connection, Row};

const COLUMNS: &str = "id, app_id, dataset, url, fields, created_by, created_at, pos_seq, pos_key, pos_version, \
     failures, next_attempt_at, last_attempt_at, last_success_at, last_error";

fn list_of(what: &str, s: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(s).map_err(|e| corrupt(what, s, e))
}

fn to_json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn webhook_row(r: &Row<'_>) -> StoreResult<Webhook> {
    let dataset: String = r.get(2).map_err(db)?;
    let fields: Option<String> = r.get(4).map_err(db)?;
    let seq: Option<i64> = r.get(7).map_err(db)?;
    let key: Option<String> = r.get(8).map_err(db)?;
    let version: Option<i64> = r.get(9).map_err(db)?;
    let position = match (seq, key, version) {
        (Some(commit_seq), Some(key), Some(version)) => {
            Some(FeedPosition { commit_seq, key: list_of("webhook position key", &key)?, version })
        }
        _ => None,
    };
    Ok(Webhook {
        id: r.get(0).map_err(db)?,
        app_id: r.get(1).map_err(db)?,
        dataset: DatasetCode::parse(&dataset).map_err(|e| corrupt("webhook dataset", &dataset, e.message))?,
        url: r.get(3).map_err(db)?,
        fields: fields.map(|f| list_of("webhook fields", &f)).transpose()?,
        created_by: r.get(5).map_err(db)?,
        created_at: r.get::<_, Ts>(6).map_err(db)?.0,
        position,
        failures: r.get(10).map_err(db)?,
        next_attempt_at: r.get::<_, Ts>(11).map_err(db)?.0,
        last_attempt_at: r.get::<_, Option<Ts>>(12).map_err(db)?.map(|t| t.0),
        last_success_at: r.get::<_, Option<Ts>>(13).map_err(db)?.map(|t| t.0),
        last_error: r.get(14).map_err(db)?,
    })
}

fn get(c: &Connection, id: i64) -> StoreResult<Option<Webhook>> {
    let mut stmt = c.prepare_cached(&format!("SELECT {COLUMNS} FROM webhooks WHERE id = ?1")).map_err(db)?;
    let mut rows = stmt.query([id]).map_err(db)?;
    match rows.next().map_err(db)? {
        Some(r) => Ok(Some(webhook_row(r)?)),
        None => Ok(None),
    }
}

const ATTEMPT_COLUMNS: &str = "id, webhook_id, at, delivery, changes, status, error, next_attempt_at, duration_ms";

fn attempt_row(r: &Row<'_>) -> StoreResult<WebhookAttempt> {
    Ok(WebhookAttempt {
        id: r.get(0).map_err(db)?,
        webhook_id: r.get(1).map_err(db)?,
        at: r.get::<_, Ts>(2).map_err(db)?.0,
        delivery: r.get(3).map_err(db)?,
        changes: r.get(4).map_err(db)?,
        status: r.get(5).map_err(db)?,
        error: r.get(6).map_err(db)?,
        next_attempt_at: r.get::<_, Option<Ts>>(7).map_err(db)?.map(|t| t.0),
        duration_ms: r.get(8).map_err(db)?,
    })
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn insert_webhook(&self, w: &NewWebhook) -> StoreResult<Webhook> {
        let w = w.clone();
        self.write(move |c| {
            let tx = c.transaction().map_err(db)?;
            tx.execute(
                "INSERT INTO webhooks (app_id, dataset, url, fields, created_by, created_at, pos_seq, pos_key,
                     pos_version, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?6)",
                params![
                    w.app_id,
                    w.dataset.as_str(),
                    w.url,
                    w.fields.as_deref().map(to_json),
                    w.created_by,
                    ts(w.created_at),
                    w.position.as_ref().map(|p| p.commit_seq),
                    w.position.as_ref().map(|p| to_json(&p.key)),
                    w.position.as_ref().map(|p| p.version),
                ],
            )
            .map_err(db)?;
            let id = tx.last_insert_rowid();
            let stored = get(&tx, id)?.ok_or_else(|| crate::records::refused("the webhook vanished while stored"))?;
            tx.commit().map_err(db)?;
            Ok(stored)
        })
        .await
    }

    async fn get_webhook(&self, id: i64) -> StoreResult<Option<Webhook>> {
        self.read(move |c| get(c, id)).await
    }

    async fn list_webhooks(&self, app_id: Option<i64>) -> StoreResult<Vec<Webhook>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!("SELECT {COLUMNS} FROM webhooks WHERE ?1 IS NULL OR app_id = ?1 ORDER BY id"))
                .map_err(db)?;
            let mut rows = stmt.query([app_id]).map_err(db)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db)? {
                out.push(webhook_row(r)?);
            }
            Ok(out)
        })
        .await
    }

    async fn delete_webhook(&self, id: i64) -> StoreResult<bool> {
        self.write(move |c| c.execute("DELETE FROM webhooks WHERE id = ?1", [id]).map(|n| n == 1).map_err(db)).await
    }

    async fn claim_webhooks(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        owner: &str,
        limit: u32,
    ) -> StoreResult<Vec<Webhook>> {
        let owner = owner.to_string();
        self.write(move |c| {
            // One statement on the single writer: nobody else can claim in between.
            let mut stmt = c
                .prepare_cached(&format!(
                    "UPDATE webhooks SET leased_until = ?2, lease_owner = ?3
                     WHERE id IN (SELECT id FROM webhooks
                                  WHERE next_attempt_at <= ?1 AND (leased_until IS NULL OR leased_until <= ?1)
                                  ORDER BY next_attempt_at, id LIMIT ?4)
                     RETURNING {COLUMNS}"
                ))
                .map_err(db)?;
            let mut rows = stmt.query(params![ts(now), ts(until), owner, limit]).map_err(db)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db)? {
                out.push(webhook_row(r)?);
            }
            out.sort_by_key(|w| (w.next_attempt_at, w.id));
            Ok(out)
        })
        .await
    }

    async fn finish_webhook(&self, id: i64, owner: &str, u: &WebhookUpdate, keep: u32) -> StoreResult<bool> {
        let (owner, u) = (owner.to_string(), u.clone());
        self.write(move |c| {
            let tx = c.transaction().map_err(db)?;
            let n = tx
                .execute(
                    "UPDATE webhooks SET failures = ?3, next_attempt_at = ?4, last_error = ?5,
                         last_success_at = COALESCE(?6, last_success_at),
                         last_attempt_at = COALESCE(?7, last_attempt_at),
                         pos_seq = CASE WHEN ?8 THEN ?9 ELSE pos_seq END,
                         pos_key = CASE WHEN ?8 THEN ?10 ELSE pos_key END,
                         pos_version = CASE WHEN ?8 THEN ?11 ELSE pos_version END,
                         leased_until = NULL, lease_owner = NULL
                     WHERE id = ?1 AND lease_owner = ?2",
                    params![
                        id,
                        owner,
                        u.failures,
                        ts(u.next_attempt_at),
                        u.last_error,
                        u.last_success_at.map(ts),
                        u.attempt.as_ref().map(|a| ts(a.at)),
                        u.position.is_some(),
                        u.position.as_ref().map(|p| p.commit_seq),
                        u.position.as_ref().map(|p| to_json(&p.key)),
                        u.position.as_ref().map(|p| p.version),
                    ],
                )
                .map_err(db)?;
            if n == 0 {
                return Ok(false);
            }
            if let Some(a) = &u.attempt {
                tx.execute(
                    "INSERT INTO webhook_attempts (webhook_id, at, delivery, changes, status, error, next_attempt_at,
                         duration_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        id,
                        ts(a.at),
                        a.delivery,
                        a.changes,
                        a.status,
                        a.error,
                        a.next_attempt_at.map(ts),
                        a.duration_ms
                    ],
                )
                .map_err(db)?;
                tx.execute(
                    "DELETE FROM webhook_attempts WHERE webhook_id = ?1 AND id <=
                         (SELECT id FROM webhook_attempts WHERE webhook_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                    params![id, keep],
                )
                .map_err(db)?;
            }
            tx.commit().map_err(db)?;
            Ok(true)
        })
        .await
    }

    async fn list_webhook_attempts(&self, id: i64, limit: u32) -> StoreResult<Vec<WebhookAttempt>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts WHERE webhook_id = ?1 ORDER BY id DESC LIMIT ?2"
                ))
                .map_err(db)?;
            let mut rows = stmt.query(params![id, limit]).map_err(db)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db)? {
                out.push(attempt_row(r)?);
            }
            Ok(out)
        })
        .await
    }
}
