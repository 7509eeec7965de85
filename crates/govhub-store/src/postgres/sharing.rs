//! PostgreSQL: apps, tokens, access requests, grants, the calendar and the change feed.

use super::delivery::{change_row, changes_sql_for, run, table_exists};
use super::{db, get, PostgresStore};
use crate::records::{corrupt, org_code, refused, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use govhub_core::calendar::{CalendarDay, DayKind};
use govhub_core::model::Dataset;
use govhub_core::names::{DatasetCode, OrgCode};
use govhub_core::sharing::*;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

fn list_json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn list_of(what: &str, s: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(s).map_err(|e| corrupt(what, s, e))
}

fn dataset_code(s: &str) -> StoreResult<DatasetCode> {
    DatasetCode::parse(s).map_err(|e| corrupt("dataset code", s, e.message))
}

const APP_COLUMNS: &str = "id, name, org, created_by, created_at";

fn app_row(r: &Row, at: usize) -> StoreResult<App> {
    Ok(App {
        id: get(r, at)?,
        name: get(r, at + 1)?,
        org: org_code("app org", &get::<String>(r, at + 2)?)?,
        created_by: get(r, at + 3)?,
        created_at: get(r, at + 4)?,
    })
}

const TOKEN_COLUMNS: &str = "id, app_id, hint, created_at, revoked_at";

fn token_row(r: &Row, at: usize) -> StoreResult<AppToken> {
    Ok(AppToken {
        id: get(r, at)?,
        app_id: get(r, at + 1)?,
        hint: get(r, at + 2)?,
        created_at: get(r, at + 3)?,
        revoked_at: get(r, at + 4)?,
    })
}

const REQUEST_COLUMNS: &str = "id, app_id, app_org, dataset, provider, fields, clear_fields, purpose, legal_basis, \
     valid_until, status, requested_by, requested_at, due_on, decided_by, decided_at, reason, grant_id";

fn request_row(r: &Row) -> StoreResult<AccessRequest> {
    let status: String = get(r, 10)?;
    Ok(AccessRequest {
        id: get(r, 0)?,
        app_id: get(r, 1)?,
        app_org: org_code("request app org", &get::<String>(r, 2)?)?,
        dataset: dataset_code(&get::<String>(r, 3)?)?,
        provider: org_code("request provider", &get::<String>(r, 4)?)?,
        fields: list_of("request fields", &get::<String>(r, 5)?)?,
        clear_fields: list_of("request clear fields", &get::<String>(r, 6)?)?,
        purpose: get(r, 7)?,
        legal_basis: get(r, 8)?,
        valid_until: get(r, 9)?,
        status: RequestStatus::parse(&status).ok_or_else(|| corrupt("request status", &status, "unknown"))?,
        requested_by: get(r, 11)?,
        requested_at: get(r, 12)?,
        due_on: get(r, 13)?,
        decided_by: get(r, 14)?,
        decided_at: get(r, 15)?,
        reason: get(r, 16)?,
        grant_id: get(r, 17)?,
    })
}

const GRANT_COLUMNS: &str = "id, request_id, app_id, app_org, dataset, provider, fields, clear_fields, purpose, \
     valid_until, granted_by, granted_at, revoked_at, revoked_by, revoke_reason";

fn grant_row(r: &Row) -> StoreResult<Grant> {
    Ok(Grant {
        id: get(r, 0)?,
        request_id: get(r, 1)?,
        app_id: get(r, 2)?,
        app_org: org_code("grant app org", &get::<String>(r, 3)?)?,
        dataset: dataset_code(&get::<String>(r, 4)?)?,
        provider: org_code("grant provider", &get::<String>(r, 5)?)?,
        fields: list_of("grant fields", &get::<String>(r, 6)?)?,
        clear_fields: list_of("grant clear fields", &get::<String>(r, 7)?)?,
        purpose: get(r, 8)?,
        valid_until: get(r, 9)?,
        granted_by: get(r, 10)?,
        granted_at: get(r, 11)?,
        revoked_at: get(r, 12)?,
        revoked_by: get(r, 13)?,
        revoke_reason: get(r, 14)?,
    })
}

async fn insert_grant<C: GenericClient>(c: &C, g: &Grant, request_id: i64) -> StoreResult<i64> {
    let row = c
        .query_one(
            "INSERT INTO grants (request_id, app_id, app_org, dataset, provider, fields, clear_fields, purpose,
                 valid_until, granted_by, granted_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            &[
                &request_id,
                &g.app_id,
                &g.app_org.as_str(),
                &g.dataset.as_str(),
                &g.provider.as_str(),
                &list_json(&g.fields),
                &list_json(&g.clear_fields),
                &g.purpose,
                &g.valid_until,
                &g.granted_by,
                &g.granted_at,
            ],
        )
        .await
        .map_err(db)?;
    let gid: i64 = get(&row, 0)?;
    c.execute("UPDATE access_requests SET grant_id = $2 WHERE id = $1", &[&request_id, &gid]).await.map_err(db)?;
    Ok(gid)
}

async fn get_request<C: GenericClient>(c: &C, id: i64) -> StoreResult<Option<AccessRequest>> {
    c.query_opt(&format!("SELECT {REQUEST_COLUMNS} FROM access_requests WHERE id = $1"), &[&id])
        .await
        .map_err(db)?
        .map(|r| request_row(&r))
        .transpose()
}

/// `WHERE` clauses over optional equalities, and their parameters.
fn conditions(pairs: Vec<(&str, Option<Box<dyn ToSql + Sync + Send>>)>) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut clauses = Vec::new();
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    for (col, v) in pairs {
        if let Some(v) = v {
            args.push(v);
            clauses.push(format!("{col} = ${}", args.len()));
        }
    }
    let w = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
    (w, args)
}

fn boxed(s: Option<String>) -> Option<Box<dyn ToSql + Sync + Send>> {
    s.map(|v| Box::new(v) as Box<dyn ToSql + Sync + Send>)
}

fn boxed_id(v: Option<i64>) -> Option<Box<dyn ToSql + Sync + Send>> {
    v.map(|v| Box::new(v) as Box<dyn ToSql + Sync + Send>)
}

impl PostgresStore {
    async fn rows(&self, sql: &str, args: &[Box<dyn ToSql + Sync + Send>]) -> StoreResult<Vec<Row>> {
        let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect();
        self.client().await?.query(sql, &refs).await.map_err(db)
    }
}

#[async_trait]
impl SharingStore for PostgresStore {
    async fn insert_app(&self, name: &str, org: &OrgCode, created_by: &str, at: DateTime<Utc>) -> StoreResult<App> {
        let row = self
            .client()
            .await?
            .query_one(
                &format!(
                    "INSERT INTO apps (name, org, created_by, created_at) VALUES ($1, $2, $3, $4) RETURNING {APP_COLUMNS}"
                ),
                &[&name, &org.as_str(), &created_by, &at],
            )
            .await
            .map_err(db)?;
        app_row(&row, 0)
    }

    async fn get_app(&self, id: i64) -> StoreResult<Option<App>> {
        self.client()
            .await?
            .query_opt(&format!("SELECT {APP_COLUMNS} FROM apps WHERE id = $1"), &[&id])
            .await
            .map_err(db)?
            .map(|r| app_row(&r, 0))
            .transpose()
    }

    async fn list_apps(&self, org: Option<&OrgCode>) -> StoreResult<Vec<App>> {
        let (w, args) = conditions(vec![("org", boxed(org.map(|o| o.as_str().to_string())))]);
        self.rows(&format!("SELECT {APP_COLUMNS} FROM apps{w} ORDER BY id"), &args)
            .await?
            .iter()
            .map(|r| app_row(r, 0))
            .collect()
    }

    async fn insert_app_token(
        &self,
        app_id: i64,
        token_hash: &str,
        hint: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<AppToken> {
        let row = self
            .client()
            .await?
            .query_one(
                &format!(
                    "INSERT INTO app_tokens (app_id, token_hash, hint, created_at) VALUES ($1, $2, $3, $4)
                     RETURNING {TOKEN_COLUMNS}"
                ),
                &[&app_id, &token_hash, &hint, &at],
            )
            .await
            .map_err(db)?;
        token_row(&row, 0)
    }

    async fn app_for_token(&self, token_hash: &str) -> StoreResult<Option<(App, AppToken)>> {
        let cols: Vec<String> = TOKEN_COLUMNS.split(", ").map(|x| format!("t.{x}")).collect();
        let app_cols: Vec<String> = APP_COLUMNS.split(", ").map(|x| format!("a.{x}")).collect();
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "SELECT {}, {} FROM app_tokens t JOIN apps a ON a.id = t.app_id
                     WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
                    app_cols.join(", "),
                    cols.join(", ")
                ),
                &[&token_hash],
            )
            .await
            .map_err(db)?;
        match row {
            Some(r) => Ok(Some((app_row(&r, 0)?, token_row(&r, 5)?))),
            None => Ok(None),
        }
    }

    async fn list_app_tokens(&self, app_id: i64) -> StoreResult<Vec<AppToken>> {
        self.client()
            .await?
            .query(&format!("SELECT {TOKEN_COLUMNS} FROM app_tokens WHERE app_id = $1 ORDER BY id"), &[&app_id])
            .await
            .map_err(db)?
            .iter()
            .map(|r| token_row(r, 0))
            .collect()
    }

    async fn revoke_app_token(&self, app_id: i64, token_id: i64, at: DateTime<Utc>) -> StoreResult<bool> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE app_tokens SET revoked_at = $3 WHERE id = $1 AND app_id = $2 AND revoked_at IS NULL",
                &[&token_id, &app_id, &at],
            )
            .await
            .map_err(db)?;
        Ok(n == 1)
    }

    async fn insert_access_request(&self, req: &AccessRequest, grant: Option<&Grant>) -> StoreResult<AccessRequest> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let row = tx
            .query_one(
                "INSERT INTO access_requests (app_id, app_org, dataset, provider, fields, clear_fields, purpose,
                     legal_basis, valid_until, status, requested_by, requested_at, due_on, decided_by, decided_at,
                     reason)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
                &[
                    &req.app_id,
                    &req.app_org.as_str(),
                    &req.dataset.as_str(),
                    &req.provider.as_str(),
                    &list_json(&req.fields),
                    &list_json(&req.clear_fields),
                    &req.purpose,
                    &req.legal_basis,
                    &req.valid_until,
                    &req.status.as_str(),
                    &req.requested_by,
                    &req.requested_at,
                    &req.due_on,
                    &req.decided_by,
                    &req.decided_at,
                    &req.reason,
                ],
            )
            .await
            .map_err(db)?;
        let id: i64 = get(&row, 0)?;
        if let Some(g) = grant {
            insert_grant(&tx, g, id).await?;
        }
        let stored = get_request(&tx, id).await?.ok_or_else(|| refused("the request vanished while it was stored"))?;
        tx.commit().await.map_err(db)?;
        Ok(stored)
    }

    async fn get_access_request(&self, id: i64) -> StoreResult<Option<AccessRequest>> {
        get_request(&self.client().await?, id).await
    }

    async fn list_access_requests(&self, q: &AccessRequestQuery) -> StoreResult<Vec<AccessRequest>> {
        let (w, args) = conditions(vec![
            ("provider", boxed(q.provider.as_ref().map(|o| o.as_str().to_string()))),
            ("app_org", boxed(q.app_org.as_ref().map(|o| o.as_str().to_string()))),
            ("app_id", boxed_id(q.app_id)),
            ("dataset", boxed(q.dataset.as_ref().map(|d| d.as_str().to_string()))),
            ("status", boxed(q.status.map(|s| s.as_str().to_string()))),
        ]);
        self.rows(
            &format!(
                "SELECT {REQUEST_COLUMNS} FROM access_requests{w} ORDER BY id DESC LIMIT {}",
                q.limit.clamp(1, 10_000)
            ),
            &args,
        )
        .await?
        .iter()
        .map(request_row)
        .collect()
    }

    async fn decide_access_request(
        &self,
        id: i64,
        d: &StoredDecision,
        grant: Option<&Grant>,
    ) -> StoreResult<Option<AccessRequest>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let n = tx
            .execute(
                "UPDATE access_requests SET status = $2, decided_by = $3, decided_at = $4, reason = $5
                 WHERE id = $1 AND status = 'pending'",
                &[&id, &d.status.as_str(), &d.decided_by, &d.decided_at, &d.reason],
            )
            .await
            .map_err(db)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(g) = grant {
            insert_grant(&tx, g, id).await?;
        }
        let stored = get_request(&tx, id).await?;
        tx.commit().await.map_err(db)?;
        Ok(stored)
    }

    async fn get_grant(&self, id: i64) -> StoreResult<Option<Grant>> {
        self.client()
            .await?
            .query_opt(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1"), &[&id])
            .await
            .map_err(db)?
            .map(|r| grant_row(&r))
            .transpose()
    }

    async fn list_grants(&self, q: &GrantQuery) -> StoreResult<Vec<Grant>> {
        let (w, args) = conditions(vec![
            ("provider", boxed(q.provider.as_ref().map(|o| o.as_str().to_string()))),
            ("app_org", boxed(q.app_org.as_ref().map(|o| o.as_str().to_string()))),
            ("app_id", boxed_id(q.app_id)),
            ("dataset", boxed(q.dataset.as_ref().map(|d| d.as_str().to_string()))),
        ]);
        self.rows(
            &format!("SELECT {GRANT_COLUMNS} FROM grants{w} ORDER BY id DESC LIMIT {}", q.limit.clamp(1, 10_000)),
            &args,
        )
        .await?
        .iter()
        .map(grant_row)
        .collect()
    }

    async fn current_grant(&self, app_id: i64, dataset: &DatasetCode) -> StoreResult<Option<Grant>> {
        self.client()
            .await?
            .query_opt(
                &format!(
                    "SELECT {GRANT_COLUMNS} FROM grants WHERE app_id = $1 AND dataset = $2 AND revoked_at IS NULL
                     ORDER BY valid_until DESC, id DESC LIMIT 1"
                ),
                &[&app_id, &dataset.as_str()],
            )
            .await
            .map_err(db)?
            .map(|r| grant_row(&r))
            .transpose()
    }

    async fn revoke_grant(&self, id: i64, by: &str, at: DateTime<Utc>, reason: &str) -> StoreResult<bool> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE grants SET revoked_at = $2, revoked_by = $3, revoke_reason = $4 WHERE id = $1 AND revoked_at IS NULL",
                &[&id, &at, &by, &reason],
            )
            .await
            .map_err(db)?;
        Ok(n == 1)
    }

    async fn sharing_generation(&self) -> StoreResult<i64> {
        let row = self
            .client()
            .await?
            .query_one("SELECT generation FROM sharing_generation WHERE id = 1", &[])
            .await
            .map_err(db)?;
        get(&row, 0)
    }

    async fn list_calendar_days(&self) -> StoreResult<Vec<CalendarDay>> {
        self.client()
            .await?
            .query("SELECT day, kind, name FROM calendar_days ORDER BY day", &[])
            .await
            .map_err(db)?
            .iter()
            .map(|r| {
                let kind: String = get(r, 1)?;
                Ok(CalendarDay {
                    date: get(r, 0)?,
                    kind: DayKind::parse(&kind).ok_or_else(|| corrupt("calendar kind", &kind, "unknown"))?,
                    name: get(r, 2)?,
                })
            })
            .collect()
    }

    async fn put_calendar_day(&self, d: &CalendarDay) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO calendar_days (day, kind, name) VALUES ($1, $2, $3)
                 ON CONFLICT (day) DO UPDATE SET kind = excluded.kind, name = excluded.name",
                &[&d.date, &d.kind.as_str(), &d.name],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn delete_calendar_day(&self, date: NaiveDate) -> StoreResult<bool> {
        let n = self.client().await?.execute("DELETE FROM calendar_days WHERE day = $1", &[&date]).await.map_err(db)?;
        Ok(n == 1)
    }

    async fn list_changes(&self, d: &Dataset, after: Option<&ChangePosition>, limit: u32) -> StoreResult<Vec<Change>> {
        let layout = crate::delivery::Layout::new(d)?;
        let client = self.client().await?;
        let start = after.map_or(0, |a| a.commit_seq);
        let list = client
            .query(
                "SELECT id, commit_seq FROM deliveries
                 WHERE dataset = $1 AND schema_version = $2 AND commit_seq >= $3 ORDER BY commit_seq LIMIT 1000",
                &[&d.code.as_str(), &d.schema_version, &start],
            )
            .await
            .map_err(db)?;
        let history = table_exists(&client, &layout.history_name).await?;
        let mut out: Vec<Change> = Vec::new();
        for row in list {
            let (delivery, seq): (i64, i64) = (get(&row, 0)?, get(&row, 1)?);
            let remaining = limit as usize - out.len();
            if remaining == 0 {
                break;
            }
            let from = after.filter(|a| a.commit_seq == seq);
            let mut parts: Vec<Vec<Change>> = Vec::new();
            for part in [false, true] {
                let mut found = Vec::new();
                if !part || history {
                    let sql = changes_sql_for(&layout, delivery, from, remaining as u32, part)?;
                    for r in run(&client, &sql).await? {
                        found.push(change_row(&r, &layout, seq, delivery)?);
                    }
                }
                parts.push(found);
            }
            let history_part = parts.pop().unwrap_or_default();
            let current_part = parts.pop().unwrap_or_default();
            out.extend(crate::delivery::merge_changes(&layout, current_part, history_part, remaining));
        }
        Ok(out)
    }
}
