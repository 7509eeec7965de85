//! PostgreSQL: webhook subscriptions, their leases and their attempt logs. Several
//! nodes may serve one database: a subscription is claimed with
//! `FOR UPDATE SKIP LOCKED` and a lease, so only one node pushes it at a time.

use super::{db, get, PostgresStore};
use crate::records::{corrupt, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use govhub_core::names::DatasetCode;
use govhub_core::webhook::*;
use tokio_postgres::Row;

const COLUMNS: &str = "id, app_id, dataset, url, fields, created_by, created_at, pos_seq, pos_key, pos_version, \
     failures, next_attempt_at, last_attempt_at, last_success_at, last_error";

fn list_of(what: &str, s: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(s).map_err(|e| corrupt(what, s, e))
}

fn to_json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn webhook_row(r: &Row) -> StoreResult<Webhook> {
    let dataset: String = get(r, 2)?;
    let fields: Option<String> = get(r, 4)?;
    let seq: Option<i64> = get(r, 7)?;
    let key: Option<String> = get(r, 8)?;
    let version: Option<i64> = get(r, 9)?;
    let position = match (seq, key, version) {
        (Some(commit_seq), Some(key), Some(version)) => {
            Some(FeedPosition { commit_seq, key: list_of("webhook position key", &key)?, version })
        }
        _ => None,
    };
    Ok(Webhook {
        id: get(r, 0)?,
        app_id: get(r, 1)?,
        dataset: DatasetCode::parse(&dataset).map_err(|e| corrupt("webhook dataset", &dataset, e.message))?,
        url: get(r, 3)?,
        fields: fields.map(|f| list_of("webhook fields", &f)).transpose()?,
        created_by: get(r, 5)?,
        created_at: get(r, 6)?,
        position,
        failures: get(r, 10)?,
        next_attempt_at: get(r, 11)?,
        last_attempt_at: get(r, 12)?,
        last_success_at: get(r, 13)?,
        last_error: get(r, 14)?,
    })
}

const ATTEMPT_COLUMNS: &str = "id, webhook_id, at, delivery, changes, status, error, next_attempt_at, duration_ms";

fn attempt_row(r: &Row) -> StoreResult<WebhookAttempt> {
    Ok(WebhookAttempt {
        id: get(r, 0)?,
        webhook_id: get(r, 1)?,
        at: get(r, 2)?,
        delivery: get(r, 3)?,
        changes: get(r, 4)?,
        status: get(r, 5)?,
        error: get(r, 6)?,
        next_attempt_at: get(r, 7)?,
        duration_ms: get(r, 8)?,
    })
}

#[async_trait]
impl WebhookStore for PostgresStore {
    async fn insert_webhook(&self, w: &NewWebhook) -> StoreResult<Webhook> {
        let fields = w.fields.as_deref().map(to_json);
        let pos_seq = w.position.as_ref().map(|p| p.commit_seq);
        let pos_key = w.position.as_ref().map(|p| to_json(&p.key));
        let pos_version = w.position.as_ref().map(|p| p.version);
        let row = self
            .client()
            .await?
            .query_one(
                &format!(
                    "INSERT INTO webhooks (app_id, dataset, url, fields, created_by, created_at, pos_seq, pos_key,
                         pos_version, next_attempt_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $6)
                     RETURNING {COLUMNS}"
                ),
                &[
                    &w.app_id,
                    &w.dataset.as_str(),
                    &w.url,
                    &fields,
                    &w.created_by,
                    &w.created_at,
                    &pos_seq,
                    &pos_key,
                    &pos_version,
                ],
            )
            .await
            .map_err(db)?;
        webhook_row(&row)
    }

    async fn get_webhook(&self, id: i64) -> StoreResult<Option<Webhook>> {
        let row = self
            .client()
            .await?
            .query_opt(&format!("SELECT {COLUMNS} FROM webhooks WHERE id = $1"), &[&id])
            .await
            .map_err(db)?;
        row.map(|r| webhook_row(&r)).transpose()
    }

    async fn list_webhooks(&self, app_id: Option<i64>) -> StoreResult<Vec<Webhook>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {COLUMNS} FROM webhooks WHERE $1::BIGINT IS NULL OR app_id = $1 ORDER BY id"),
                &[&app_id],
            )
            .await
            .map_err(db)?;
        rows.iter().map(webhook_row).collect()
    }

    async fn delete_webhook(&self, id: i64) -> StoreResult<bool> {
        let n = self.client().await?.execute("DELETE FROM webhooks WHERE id = $1", &[&id]).await.map_err(db)?;
        Ok(n == 1)
    }

    async fn claim_webhooks(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        owner: &str,
        limit: u32,
    ) -> StoreResult<Vec<Webhook>> {
        // SKIP LOCKED: a node claiming at the same moment passes over the rows this
        // statement is taking instead of waiting for them (and then finding them leased).
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "UPDATE webhooks SET leased_until = $2, lease_owner = $3
                     WHERE id IN (SELECT id FROM webhooks
                                  WHERE next_attempt_at <= $1 AND (leased_until IS NULL OR leased_until <= $1)
                                  ORDER BY next_attempt_at, id LIMIT $4
                                  FOR UPDATE SKIP LOCKED)
                     RETURNING {COLUMNS}"
                ),
                &[&now, &until, &owner, &i64::from(limit)],
            )
            .await
            .map_err(db)?;
        let mut out = rows.iter().map(webhook_row).collect::<StoreResult<Vec<_>>>()?;
        out.sort_by_key(|w| (w.next_attempt_at, w.id));
        Ok(out)
    }

    async fn finish_webhook(&self, id: i64, owner: &str, u: &WebhookUpdate, keep: u32) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let pos_seq = u.position.as_ref().map(|p| p.commit_seq);
        let pos_key = u.position.as_ref().map(|p| to_json(&p.key));
        let pos_version = u.position.as_ref().map(|p| p.version);
        let attempted = u.attempt.as_ref().map(|a| a.at);
        let n = tx
            .execute(
                "UPDATE webhooks SET failures = $3, next_attempt_at = $4, last_error = $5,
                     last_success_at = COALESCE($6, last_success_at),
                     last_attempt_at = COALESCE($7, last_attempt_at),
                     pos_seq = CASE WHEN $8 THEN $9 ELSE pos_seq END,
                     pos_key = CASE WHEN $8 THEN $10 ELSE pos_key END,
                     pos_version = CASE WHEN $8 THEN $11 ELSE pos_version END,
                     leased_until = NULL, lease_owner = NULL
                 WHERE id = $1 AND lease_owner = $2",
                &[
                    &id,
                    &owner,
                    &u.failures,
                    &u.next_attempt_at,
                    &u.last_error,
                    &u.last_success_at,
                    &attempted,
                    &u.position.is_some(),
                    &pos_seq,
                    &pos_key,
                    &pos_version,
                ],
            )
            .await
            .map_err(db)?;
        if n == 0 {
            return Ok(false);
        }
        if let Some(a) = &u.attempt {
            tx.execute(
                "INSERT INTO webhook_attempts (webhook_id, at, delivery, changes, status, error, next_attempt_at,
                     duration_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&id, &a.at, &a.delivery, &a.changes, &a.status, &a.error, &a.next_attempt_at, &a.duration_ms],
            )
            .await
            .map_err(db)?;
            tx.execute(
                "DELETE FROM webhook_attempts WHERE webhook_id = $1 AND id <=
                     (SELECT id FROM webhook_attempts WHERE webhook_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
                &[&id, &i64::from(keep)],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn list_webhook_attempts(&self, id: i64, limit: u32) -> StoreResult<Vec<WebhookAttempt>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2"
                ),
                &[&id, &i64::from(limit)],
            )
            .await
            .map_err(db)?;
        rows.iter().map(attempt_row).collect()
    }
}
