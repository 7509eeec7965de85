//! SQLite: apps, tokens, access requests, grants, the calendar and the change feed.

use super::delivery::{change_row, changes_sql_for};
use super::{day, db, ts, SqliteStore, Ts};
use crate::records::{corrupt, org_code, refused, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use govhub_core::calendar::{CalendarDay, DayKind};
use govhub_core::model::Dataset;
use govhub_core::names::{DatasetCode, OrgCode};
use govhub_core::sharing::*;
use rusqlite::{params, params_from_iter, Row};

fn list_json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn list_of(what: &str, s: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(s).map_err(|e| corrupt(what, s, e))
}

fn date_of(what: &str, s: &str) -> StoreResult<NaiveDate> {
    s.parse().map_err(|e| corrupt(what, s, e))
}

fn dataset_code(s: &str) -> StoreResult<DatasetCode> {
    DatasetCode::parse(s).map_err(|e| corrupt("dataset code", s, e.message))
}

const APP_COLUMNS: &str = "id, name, org, created_by, created_at";

fn app_row(r: &Row<'_>) -> StoreResult<App> {
    Ok(App {
        id: r.get(0).map_err(db)?,
        name: r.get(1).map_err(db)?,
        org: org_code("app org", &r.get::<_, String>(2).map_err(db)?)?,
        created_by: r.get(3).map_err(db)?,
        created_at: r.get::<_, Ts>(4).map_err(db)?.0,
    })
}

const TOKEN_COLUMNS: &str = "id, app_id, hint, created_at, revoked_at";

fn token_row(r: &Row<'_>, at: usize) -> StoreResult<AppToken> {
    Ok(AppToken {
        id: r.get(at).map_err(db)?,
        app_id: r.get(at + 1).map_err(db)?,
        hint: r.get(at + 2).map_err(db)?,
        created_at: r.get::<_, Ts>(at + 3).map_err(db)?.0,
        revoked_at: r.get::<_, Option<Ts>>(at + 4).map_err(db)?.map(|t| t.0),
    })
}

const REQUEST_COLUMNS: &str = "id, app_id, app_org, dataset, provider, fields, clear_fields, purpose, legal_basis, \
     valid_until, status, requested_by, requested_at, due_on, decided_by, decided_at, reason, grant_id";

fn request_row(r: &Row<'_>) -> StoreResult<AccessRequest> {
    let status: String = r.get(10).map_err(db)?;
    Ok(AccessRequest {
        id: r.get(0).map_err(db)?,
        app_id: r.get(1).map_err(db)?,
        app_org: org_code("request app org", &r.get::<_, String>(2).map_err(db)?)?,
        dataset: dataset_code(&r.get::<_, String>(3).map_err(db)?)?,
        provider: org_code("request provider", &r.get::<_, String>(4).map_err(db)?)?,
        fields: list_of("request fields", &r.get::<_, String>(5).map_err(db)?)?,
        clear_fields: list_of("request clear fields", &r.get::<_, String>(6).map_err(db)?)?,
        purpose: r.get(7).map_err(db)?,
        legal_basis: r.get(8).map_err(db)?,
        valid_until: date_of("valid_until", &r.get::<_, String>(9).map_err(db)?)?,
        status: RequestStatus::parse(&status).ok_or_else(|| corrupt("request status", &status, "unknown"))?,
        requested_by: r.get(11).map_err(db)?,
        requested_at: r.get::<_, Ts>(12).map_err(db)?.0,
        due_on: date_of("due_on", &r.get::<_, String>(13).map_err(db)?)?,
        decided_by: r.get(14).map_err(db)?,
        decided_at: r.get::<_, Option<Ts>>(15).map_err(db)?.map(|t| t.0),
        reason: r.get(16).map_err(db)?,
        grant_id: r.get(17).map_err(db)?,
    })
}

const GRANT_COLUMNS: &str = "id, request_id, app_id, app_org, dataset, provider, fields, clear_fields, purpose, \
     valid_until, granted_by, granted_at, revoked_at, revoked_by, revoke_reason";

fn grant_row(r: &Row<'_>) -> StoreResult<Grant> {
    Ok(Grant {
        id: r.get(0).map_err(db)?,
        request_id: r.get(1).map_err(db)?,
        app_id: r.get(2).map_err(db)?,
        app_org: org_code("grant app org", &r.get::<_, String>(3).map_err(db)?)?,
        dataset: dataset_code(&r.get::<_, String>(4).map_err(db)?)?,
        provider: org_code("grant provider", &r.get::<_, String>(5).map_err(db)?)?,
        fields: list_of("grant fields", &r.get::<_, String>(6).map_err(db)?)?,
        clear_fields: list_of("grant clear fields", &r.get::<_, String>(7).map_err(db)?)?,
        purpose: r.get(8).map_err(db)?,
        valid_until: date_of("valid_until", &r.get::<_, String>(9).map_err(db)?)?,
        granted_by: r.get(10).map_err(db)?,
        granted_at: r.get::<_, Ts>(11).map_err(db)?.0,
        revoked_at: r.get::<_, Option<Ts>>(12).map_err(db)?.map(|t| t.0),
        revoked_by: r.get(13).map_err(db)?,
        revoke_reason: r.get(14).map_err(db)?,
    })
}

fn insert_grant(c: &rusqlite::Connection, g: &Grant, request_id: i64) -> StoreResult<i64> {
    c.execute(
        "INSERT INTO grants (request_id, app_id, app_org, dataset, provider, fields, clear_fields, purpose, valid_until,
             granted_by, granted_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            request_id,
            g.app_id,
            g.app_org.as_str(),
            g.dataset.as_str(),
            g.provider.as_str(),
            list_json(&g.fields),
            list_json(&g.clear_fields),
            g.purpose,
            day(g.valid_until),
            g.granted_by,
            ts(g.granted_at),
        ],
    )
    .map_err(db)?;
    Ok(c.last_insert_rowid())
}

fn get_request(c: &rusqlite::Connection, id: i64) -> StoreResult<Option<AccessRequest>> {
    let mut stmt =
        c.prepare_cached(&format!("SELECT {REQUEST_COLUMNS} FROM access_requests WHERE id = ?1")).map_err(db)?;
    let mut rows = stmt.query([id]).map_err(db)?;
    match rows.next().map_err(db)? {
        Some(r) => Ok(Some(request_row(r)?)),
        None => Ok(None),
    }
}

/// `WHERE` clauses and arguments shared by the two list queries.
fn conditions(pairs: Vec<(&str, Option<String>)>) -> (String, Vec<String>) {
    let mut clauses = Vec::new();
    let mut args = Vec::new();
    for (col, v) in pairs {
        if let Some(v) = v {
            args.push(v);
            clauses.push(format!("{col} = ?{}", args.len()));
        }
    }
    let w = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
    (w, args)
}

#[async_trait]
impl SharingStore for SqliteStore {
    async fn insert_app(&self, name: &str, org: &OrgCode, created_by: &str, at: DateTime<Utc>) -> StoreResult<App> {
        let (name, org, created_by) = (name.to_string(), org.clone(), created_by.to_string());
        self.write(move |c| {
            c.execute(
                "INSERT INTO apps (name, org, created_by, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![name, org.as_str(), created_by, ts(at)],
            )
            .map_err(db)?;
            Ok(App { id: c.last_insert_rowid(), name, org, created_by, created_at: at })
        })
        .await
    }

    async fn get_app(&self, id: i64) -> StoreResult<Option<App>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!("SELECT {APP_COLUMNS} FROM apps WHERE id = ?1")).map_err(db)?;
            let mut rows = stmt.query([id]).map_err(db)?;
            match rows.next().map_err(db)? {
                Some(r) => Ok(Some(app_row(r)?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn list_apps(&self, org: Option<&OrgCode>) -> StoreResult<Vec<App>> {
        let org = org.map(|o| o.as_str().to_string());
        self.read(move |c| {
            let (w, args) = conditions(vec![("org", org)]);
            let mut stmt = c.prepare_cached(&format!("SELECT {APP_COLUMNS} FROM apps{w} ORDER BY id")).map_err(db)?;
            let mut rows = stmt.query(params_from_iter(args.iter())).map_err(db)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db)? {
                out.push(app_row(r)?);
            }
            Ok(out)
        })
        .await
    }

    async fn insert_app_token(
        &self,
        app_id: i64,
        token_hash: &str,
        hint: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<AppToken> {
        let (hash, hint) = (token_hash.to_string(), hint.to_string());
        self.write(move |c| {
            c.execute(
                "INSERT INTO app_tokens (app_id, token_hash, hint, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![app_id, hash, hint, ts(at)],
            )
            .map_err(db)?;
            Ok(AppToken { id: c.last_insert_rowid(), app_id, hint, created_at: at, revoked_at: None })
        })
        .await
    }

    async fn app_for_token(&self, token_hash: &str) -> StoreResult<Option<(App, AppToken)>> {
        let hash = token_hash.to_string();
        self.read_now(move |c| {
            let cols: Vec<String> = TOKEN_COLUMNS.split(", ").map(|x| format!("t.{x}")).collect();
            let app_cols: Vec<String> = APP_COLUMNS.split(", ").map(|x| format!("a.{x}")).collect();
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {}, {} FROM app_tokens t JOIN apps a ON a.id = t.app_id
                     WHERE t.token_hash = ?1 AND t.revoked_at IS NULL",
                    app_cols.join(", "),
                    cols.join(", ")
                ))
                .map_err(db)?;
            let mut rows = stmt.query([hash]).map_err(db)?;
            match rows.next().map_err(db)? {
                Some(r) => Ok(Some((app_row(r)?, token_row(r, 5)?))),
                None => Ok(None),
            }
        })
        .await
    }

    async fn list_app_tokens(&self, app_id: i64) -> StoreResult<Vec<AppToken>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM app_tokens WHERE app_id = ?1 ORDER BY id"))
                .map_err(db)?;
            let mut rows = stmt.query([app_id]).map_err(db)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db)? {
                out.push(token_row(r, 0)?);
            }
            Ok(out)
        })
        .await
    }

    async fn revoke_app_token(&self, app_id: i64, token_id: i64, at: DateTime<Utc>) -> StoreResult<bool> {
        self.write(move |c| {
            c.execute(
                "UPDATE app_tokens SET revoked_at = ?3 WHERE id = ?1 AND app_id = ?2 AND revoked_at IS NULL",
                params![token_id, app_id, ts(at)],
            )
            .map(|n| n == 1)
            .map_err(db)
        })
        .await
    }

    async fn insert_access_request(&self, req: &AccessRequest, grant: Option<&Grant>) -> StoreResult<AccessRequest> {
        let (req, grant) = (req.clone(), grant.cloned());
        self.write(move |c| {
            let tx = c.transaction().map_err(db)?;
            tx.execute(
                "INSERT INTO access_requests (app_id, app_org, dataset, provider, fields, clear_fields, purpose,
                     legal_basis, valid_until, status, requested_by, requested_at, due_on, decided_by, decided_at,
                     reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                params![
                    req.app_id,
                    req.app_org.as_str(),
                    req.dataset.as_str(),
                    req.provider.as_str(),
                    list_json(&req.fields),
                    list_json(&req.clear_fields),
                    req.purpose,
                    req.legal_basis,
                    day(req.valid_until),
                    req.status.as_str(),
                    req.requested_by,
                    ts(req.requested_at),
                    day(req.due_on),
                    req.decided_by,
                    req.decided_at.map(ts),
                    req.reason,
                ],
            )
            .map_err(db)?;
            let id = tx.last_insert_rowid();
            if let Some(g) = &grant {
                let gid = insert_grant(&tx, g, id)?;
                tx.execute("UPDATE access_requests SET grant_id = ?2 WHERE id = ?1", params![id, gid]).map_err(db)?;
            }
            let stored = get_request(&tx, id)?.ok_or_else(|| refused("the request vanished while it was stored"))?;
            tx.commit().map_err(db)?;
            Ok(stored)
        })
        .await
    }

    async fn get_access_request(&self, id: i64) -> StoreResult<Option<AccessRequest>> {
        self.read(move |c| get_request(c, id)).await
    }

    async fn list_access_requests(&self, q: &AccessRequestQuery) -> StoreResult<Vec<AccessRequest>> {
        let q = q.clone();
        self.read(move |c| {
            let (w, args) = conditions(vec![
                ("provider", q.provider.map(|o| o.as_str().to_string())),
                ("app_org", q.app_org.map(|o| o.as_str().to_string())),
                ("app_id", q.app_id.map(|a| a.to_string())),
                ("dataset", q.dataset.map(|d| d.as_str().to_string())),
                ("status", q.status.map(|s| s.as_str().to_string())),
            ]);
            let w = w.replace("app_id = ", "CAST(app_id AS TEXT) = ");
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {REQUEST_COLUMNS} FROM access_requests{w} ORDER BY id DESC LIMIT {}",
                    q.limit.clamp(1, 10_000)
                ))
                .map_err(db)?;
            let mut rows = stmt.query(params_from_iter(args.iter())).map_err(db)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db)? {
                out.push(request_row(r)?);
            }
            Ok(out)
        })
        .await
    }

    async fn decide_access_request(
        &self,
        id: i64,
        decision: &StoredDecision,
        grant: Option<&Grant>,
    ) -> StoreResult<Option<AccessRequest>> {
        let (d, grant) = (decision.clone(), grant.cloned());
        self.write(move |c| {
            let tx = c.transaction().map_err(db)?;
            let n = tx
                .execute(
                    "UPDATE access_requests SET status = ?2, decided_by = ?3, decided_at = ?4, reason = ?5
                     WHERE id = ?1 AND status = 'pending'",
                    params![id, d.status.as_str(), d.decided_by, ts(d.decided_at), d.reason],
                )
                .map_err(db)?;
            if n == 0 {
                return Ok(None);
            }
            if let Some(g) = &grant {
                let gid = insert_grant(&tx, g, id)?;
                tx.execute("UPDATE access_requests SET grant_id = ?2 WHERE id = ?1", params![id, gid]).map_err(db)?;
            }
            let stored = get_request(&tx, id)?;
            tx.commit().map_err(db)?;
            Ok(stored)
        })
        .await
    }

    async fn get_grant(&self, id: i64) -> StoreResult<Option<Grant>> {
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = ?1"))
                .map_err(db)?
                .query([id])
                .map_err(db)?
                .next()
                .map_err(db)?
                .map(grant_row)
                .transpose()
        })
        .await
    }

    async fn list_grants(&self, q: &GrantQuery) -> StoreResult<Vec<Grant>> {
        let q = q.clone();
        self.read(move |c| {
            let (w, args) = conditions(vec![
                ("provider", q.provider.map(|o| o.as_str().to_string())),
                ("app_org", q.app_org.map(|o| o.as_str().to_string())),
                ("app_id", q.app_id.map(|a| a.to_string())),
                ("dataset", q.dataset.map(|d| d.as_str().to_string())),
            ]);
            let w = w.replace("app_id = ", "CAST(app_id AS TEXT) = ");
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {GRANT_COLUMNS} FROM grants{w} ORDER BY id DESC LIMIT {}",
                    q.limit.clamp(1, 10_000)
                ))
                .map_err(db)?;
            let mut rows = stmt.query(params_from_iter(args.iter())).map_err(db)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db)? {
                out.push(grant_row(r)?);
            }
            Ok(out)
        })
        .await
    }

    async fn current_grant(&self, app_id: i64, dataset: &DatasetCode) -> StoreResult<Option<Grant>> {
        let dataset = dataset.as_str().to_string();
        self.read_now(move |c| {
            c.prepare_cached(&format!(
                "SELECT {GRANT_COLUMNS} FROM grants WHERE app_id = ?1 AND dataset = ?2 AND revoked_at IS NULL
                 ORDER BY valid_until DESC, id DESC LIMIT 1"
            ))
            .map_err(db)?
            .query(params![app_id, dataset])
            .map_err(db)?
            .next()
            .map_err(db)?
            .map(grant_row)
            .transpose()
        })
        .await
    }

    async fn revoke_grant(&self, id: i64, by: &str, at: DateTime<Utc>, reason: &str) -> StoreResult<bool> {
        let (by, reason) = (by.to_string(), reason.to_string());
        self.write(move |c| {
            c.execute(
                "UPDATE grants SET revoked_at = ?2, revoked_by = ?3, revoke_reason = ?4 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, ts(at), by, reason],
            )
            .map(|n| n == 1)
            .map_err(db)
        })
        .await
    }

    async fn sharing_generation(&self) -> StoreResult<i64> {
        self.read_now(|c| {
            c.prepare_cached("SELECT generation FROM sharing_generation WHERE id = 1")
                .map_err(db)?
                .query_row([], |r| r.get(0))
                .map_err(db)
        })
        .await
    }

    async fn list_calendar_days(&self) -> StoreResult<Vec<CalendarDay>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT day, kind, name FROM calendar_days ORDER BY day").map_err(db)?;
            let mut rows = stmt.query([]).map_err(db)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db)? {
                let kind: String = r.get(1).map_err(db)?;
                out.push(CalendarDay {
                    date: date_of("calendar day", &r.get::<_, String>(0).map_err(db)?)?,
                    kind: DayKind::parse(&kind).ok_or_else(|| corrupt("calendar kind", &kind, "unknown"))?,
                    name: r.get(2).map_err(db)?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn put_calendar_day(&self, d: &CalendarDay) -> StoreResult<()> {
        let d = d.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO calendar_days (day, kind, name) VALUES (?1, ?2, ?3)
                 ON CONFLICT (day) DO UPDATE SET kind = excluded.kind, name = excluded.name",
                params![day(d.date), d.kind.as_str(), d.name],
            )
            .map(|_| ())
            .map_err(db)
        })
        .await
    }

    async fn delete_calendar_day(&self, date: NaiveDate) -> StoreResult<bool> {
        self.write(move |c| {
            c.execute("DELETE FROM calendar_days WHERE day = ?1", [day(date)]).map(|n| n == 1).map_err(db)
        })
        .await
    }

    async fn list_changes(&self, d: &Dataset, after: Option<&ChangePosition>, limit: u32) -> StoreResult<Vec<Change>> {
        let (d, after) = (d.clone(), after.cloned());
        self.read(move |c| {
            let layout = crate::delivery::Layout::new(&d)?;
            let mut out: Vec<Change> = Vec::new();
            let start = after.as_ref().map_or(0, |a| a.commit_seq);
            let mut deliveries = c
                .prepare(
                    "SELECT id, commit_seq FROM deliveries
                     WHERE dataset = ?1 AND schema_version = ?2 AND commit_seq >= ?3 ORDER BY commit_seq LIMIT 1000",
                )
                .map_err(db)?;
            let list: Vec<(i64, i64)> = deliveries
                .query_map(params![d.code.as_str(), d.schema_version, start], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(db)?
                .collect::<Result<_, _>>()
                .map_err(db)?;
            let history = super::delivery::table_exists(c, &layout.history)?;
            for (delivery, seq) in list {
                let remaining = limit as usize - out.len();
                if remaining == 0 {
                    break;
                }
                let from = after.as_ref().filter(|a| a.commit_seq == seq);
                if after.as_ref().is_some_and(|a| a.commit_seq > seq) {
                    continue;
                }
                let mut parts: Vec<Vec<Change>> = Vec::new();
                for part in [false, true] {
                    let mut found = Vec::new();
                    if !part || history {
                        let sql = changes_sql_for(&layout, delivery, from, remaining as u32, part)?;
                        let mut stmt = c.prepare_cached(&sql.text).map_err(db)?;
                        let mut rows = stmt.query(params_from_iter(sql.args.iter())).map_err(db)?;
                        while let Some(r) = rows.next().map_err(db)? {
                            found.push(change_row(r, &layout, seq, delivery)?);
                        }
                    }
                    parts.push(found);
                }
                let history_part = parts.pop().unwrap_or_default();
                let current_part = parts.pop().unwrap_or_default();
                out.extend(crate::delivery::merge_changes(&layout, current_part, history_part, remaining));
            }
            Ok(out)
        })
        .await
    }
}
