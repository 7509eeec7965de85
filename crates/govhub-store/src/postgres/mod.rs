//! The PostgreSQL backend: a deadpool connection pool, runtime queries, transactional
//! DDL for the typed dataset tables.

mod audit;
pub mod ddl;
mod delivery;
mod licence;
mod migrate;
mod sharing;
mod webhooks;

pub use audit::AUDIT_LOCK_KEY;

use crate::records::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use govhub_core::model::*;
use govhub_core::names::{DatasetCode, OrgCode, Username};
use govhub_core::store::{Backend, SchemaEvolution, Store, StoreError};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{NoTls, Row};

/// Maximum connections in the pool.
pub const POOL_SIZE: usize = 16;

// ------------------------------------------------------------------ errors

pub(crate) fn db(e: tokio_postgres::Error) -> StoreError {
    StoreError::backend(e)
}

/// Statements one connection keeps prepared at most. The hot queries are prepared once
/// per connection rather than parsed and planned at every call (which cost a keyed
/// lookup more of the server's CPU than executing it); some of them take their shape
/// from what a caller asks for (a lookup's fields), so the cache starts again when full.
const STATEMENT_CACHE_MAX: usize = 256;

/// `sql` prepared on `c`, from its statement cache when it was prepared before.
pub(crate) async fn prepared(c: &deadpool_postgres::Object, sql: &str) -> StoreResult<tokio_postgres::Statement> {
    if c.statement_cache.size() >= STATEMENT_CACHE_MAX {
        c.statement_cache.clear();
    }
    c.prepare_cached(sql).await.map_err(db)
}

pub(crate) fn pool_err(e: PoolError) -> StoreError {
    StoreError::backend(e)
}

/// Map a unique violation to `Conflict { what }`, anything else to `Backend`.
pub(crate) fn conflict(what: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| {
        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            StoreError::Conflict { what }
        } else {
            db(e)
        }
    }
}

/// Read a column; a value that does not convert is corrupt data.
pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> StoreResult<T> {
    row.try_get(idx).map_err(|e| {
        let name = row.columns().get(idx).map(|c| c.name()).unwrap_or("?");
        StoreError::Corrupt(format!("column {name} does not parse: {e}"))
    })
}

// ------------------------------------------------------------------ row readers

const ORG_COLUMNS: &str = "code, name, kind, parent, admin_code, uscc, created_at";

fn org_row(r: &Row) -> StoreResult<Org> {
    OrgRow {
        code: get(r, 0)?,
        name: get(r, 1)?,
        kind: get(r, 2)?,
        parent: get(r, 3)?,
        admin_code: get(r, 4)?,
        uscc: get(r, 5)?,
        created_at: get(r, 6)?,
    }
    .into_org()
}

const USER_COLUMNS: &str = "id, username, display_name, role, org, subject_id, password_hash, disabled, created_at";

fn user_row(r: &Row) -> StoreResult<User> {
    UserRow {
        id: get(r, 0)?,
        username: get(r, 1)?,
        display_name: get(r, 2)?,
        role: get(r, 3)?,
        org: get(r, 4)?,
        subject_id: get(r, 5)?,
        password_hash: get(r, 6)?,
        disabled: get(r, 7)?,
        created_at: get(r, 8)?,
    }
    .into_user()
}

fn dataset_row(r: &Row) -> StoreResult<Dataset> {
    DatasetRow {
        code: get(r, 0)?,
        name: get(r, 1)?,
        provider: get(r, 2)?,
        summary: get(r, 3)?,
        category: get(r, 4)?,
        sharing_class: get(r, 5)?,
        sharing_condition: get(r, 6)?,
        open_class: get(r, 7)?,
        grade: get(r, 8)?,
        update_cycle: get(r, 9)?,
        publish_date: get(r, 10)?,
        tags: get(r, 11)?,
        schema: get(r, 12)?,
        schema_version: get(r, 13)?,
        table_name: get(r, 14)?,
        created_at: get(r, 15)?,
        updated_at: get(r, 16)?,
    }
    .into_dataset()
}

/// Query parameters collected while building a statement.
#[derive(Default)]
struct Args(Vec<Box<dyn ToSql + Sync + Send>>);

impl Args {
    /// Add a parameter; returns its placeholder (`$n`).
    fn push(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.0.push(Box::new(v));
        format!("${}", self.0.len())
    }
    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect()
    }
}

fn where_clause(clauses: &[String]) -> String {
    if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    }
}

// ------------------------------------------------------------------ the store

/// The PostgreSQL implementation of [`Store`].
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// The audit log's writer queue (`audit.rs`).
    audit: std::sync::Arc<audit::AuditLog>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connect (TLS is not used) and apply pending migrations.
    pub async fn open(url: &str) -> StoreResult<PostgresStore> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|e| refused(format!("the PostgreSQL URL does not parse: {e}")))?;
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager).max_size(POOL_SIZE).build().map_err(StoreError::backend)?;
        migrate::run(&pool).await?;
        let audit = std::sync::Arc::new(audit::AuditLog::open(&pool).await?);
        Ok(PostgresStore { pool, audit })
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_err)
    }
}

async fn insert_tags(tx: &deadpool_postgres::Transaction<'_>, code: &str, tags: &[String]) -> StoreResult<()> {
    for t in unique_tags(tags) {
        tx.execute("INSERT INTO dataset_tags (dataset, tag) VALUES ($1, $2)", &[&code, &t]).await.map_err(db)?;
    }
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn ping(&self) -> StoreResult<()> {
        self.client().await?.simple_query("SELECT 1").await.map(|_| ()).map_err(db)
    }

    async fn migrations(&self) -> StoreResult<Vec<i64>> {
        let rows = self
            .client()
            .await?
            .query("SELECT version FROM schema_migrations ORDER BY version", &[])
            .await
            .map_err(db)?;
        rows.iter().map(|r| get(r, 0)).collect()
    }

    async fn get_meta(&self, key: &str) -> StoreResult<Option<String>> {
        let row = self.client().await?.query_opt("SELECT value FROM meta WHERE key = $1", &[&key]).await.map_err(db)?;
        row.map(|r| get(&r, 0)).transpose()
    }

    async fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )
            .await
            .map(|_| ())
            .map_err(db)
    }

    async fn insert_org(&self, org: &Org) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                &format!("INSERT INTO orgs ({ORG_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
                &[
                    &org.code.as_str(),
                    &org.name,
                    &org.kind.as_str(),
                    &org.parent.as_ref().map(OrgCode::as_str),
                    &org.admin_code.as_ref().map(|a| a.as_str()),
                    &org.uscc.as_ref().map(|u| u.as_str()),
                    &org.created_at,
                ],
            )
            .await
            .map(|_| ())
            .map_err(conflict("org"))
    }

    async fn get_org(&self, code: &OrgCode) -> StoreResult<Option<Org>> {
        let row = self
            .client()
            .await?
            .query_opt(&format!("SELECT {ORG_COLUMNS} FROM orgs WHERE code = $1"), &[&code.as_str()])
            .await
            .map_err(db)?;
        row.as_ref().map(org_row).transpose()
    }

    async fn list_orgs(&self) -> StoreResult<Vec<Org>> {
        let rows = self
            .client()
            .await?
            .query(&format!("SELECT {ORG_COLUMNS} FROM orgs ORDER BY code"), &[])
            .await
            .map_err(db)?;
        rows.iter().map(org_row).collect()
    }

    async fn insert_user(&self, user: &NewUserRecord) -> StoreResult<User> {
        let row = self
            .client()
            .await?
            .query_one(
                "INSERT INTO users (username, display_name, role, org, subject_id, password_hash, disabled, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, false, $7) RETURNING id",
                &[
                    &user.username.as_str(),
                    &user.display_name,
                    &user.role.as_str(),
                    &user.org.as_ref().map(OrgCode::as_str),
                    &user.subject_id,
                    &user.password_hash,
                    &user.created_at,
                ],
            )
            .await
            .map_err(conflict("user"))?;
        Ok(stored_user(get(&row, 0)?, user))
    }

    async fn get_user(&self, id: i64) -> StoreResult<Option<User>> {
        let row = self
            .client()
            .await?
            .query_opt(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"), &[&id])
            .await
            .map_err(db)?;
        row.as_ref().map(user_row).transpose()
    }

    async fn get_user_by_username(&self, username: &Username) -> StoreResult<Option<User>> {
        let row = self
            .client()
            .await?
            .query_opt(&format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"), &[&username.as_str()])
            .await
            .map_err(db)?;
        row.as_ref().map(user_row).transpose()
    }

    async fn list_users(&self, org: Option<&OrgCode>) -> StoreResult<Vec<User>> {
        let client = self.client().await?;
        let rows = match org {
            Some(o) => {
                client
                    .query(
                        &format!("SELECT {USER_COLUMNS} FROM users WHERE org = $1 ORDER BY username"),
                        &[&o.as_str()],
                    )
                    .await
            }
            None => client.query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY username"), &[]).await,
        }
        .map_err(db)?;
        rows.iter().map(user_row).collect()
    }

    async fn set_user_password(&self, id: i64, password_hash: &str) -> StoreResult<()> {
        let n = self
            .client()
            .await?
            .execute("UPDATE users SET password_hash = $1 WHERE id = $2", &[&password_hash, &id])
            .await
            .map_err(db)?;
        if n == 0 {
            Err(StoreError::NotFound { what: "user" })
        } else {
            Ok(())
        }
    }

    async fn insert_session(&self, s: &Session) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO sessions (token_hash, kind, csrf_token, user_id, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&s.token_hash, &s.kind.as_str(), &s.csrf_token, &s.user_id, &s.created_at, &s.expires_at],
            )
            .await
            .map(|_| ())
            .map_err(conflict("session"))
    }

    async fn get_session(&self, token_hash: &str) -> StoreResult<Option<Session>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT token_hash, user_id, kind, csrf_token, created_at, expires_at FROM sessions
                 WHERE token_hash = $1",
                &[&token_hash],
            )
            .await
            .map_err(db)?;
        row.map(|r| {
            SessionRow {
                token_hash: get(&r, 0)?,
                user_id: get(&r, 1)?,
                kind: get(&r, 2)?,
                csrf_token: get(&r, 3)?,
                created_at: get(&r, 4)?,
                expires_at: get(&r, 5)?,
            }
            .into_session()
        })
        .transpose()
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        self.client()
            .await?
            .execute("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash])
            .await
            .map(|_| ())
            .map_err(db)
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.client().await?.execute("DELETE FROM sessions WHERE expires_at < $1", &[&now]).await.map_err(db)
    }

    async fn create_dataset(&self, d: &Dataset) -> StoreResult<()> {
        check_table_name(&d.table_name)?;
        let schema = schema_json(&d.schema)?;
        let tags = tags_json(&d.tags)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        tx.execute(
            "INSERT INTO datasets (code, table_stem, name, provider, summary, category, sharing_class,
                 sharing_condition, open_class, grade, update_cycle, publish_date, tags, search_text, schema,
                 schema_version, table_name, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
            &[
                &d.code.as_str(),
                &d.code.table_stem(),
                &d.name,
                &d.provider.as_str(),
                &d.summary,
                &d.category,
                &d.sharing_class.as_str(),
                &d.sharing_condition,
                &d.open_class.as_str(),
                &d.grade.as_str(),
                &d.update_cycle.as_str(),
                &d.publish_date,
                &tags,
                &search_text(d),
                &schema,
                &d.schema_version,
                &d.table_name,
                &d.created_at,
                &d.updated_at,
            ],
        )
        .await
        .map_err(conflict("dataset"))?;
        insert_tags(&tx, d.code.as_str(), &d.tags).await?;
        tx.execute(
            "INSERT INTO dataset_schema_versions (dataset, version, schema, table_name, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[&d.code.as_str(), &d.schema_version, &schema, &d.table_name, &d.created_at],
        )
        .await
        .map_err(conflict("dataset"))?;
        tx.batch_execute(&ddl::create_table(&d.table_name, &d.schema)).await.map_err(db)?;
        tx.batch_execute(&ddl::create_history_table(&d.table_name, &d.schema, false)).await.map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn get_dataset(&self, code: &DatasetCode) -> StoreResult<Option<Dataset>> {
        // Every consumer API request reads its dataset.
        let c = self.client().await?;
        let stmt = prepared(&c, &format!("SELECT {DATASET_COLUMNS} FROM datasets WHERE code = $1")).await?;
        let row = c.query_opt(&stmt, &[&code.as_str()]).await.map_err(db)?;
        row.as_ref().map(dataset_row).transpose()
    }

    async fn search_datasets(&self, q: &DatasetQuery) -> StoreResult<Page<Dataset>> {
        let mut args = Args::default();
        let mut clauses: Vec<String> = Vec::new();
        if let Some(needle) = search_needle(q.text.as_deref()) {
            clauses.push(format!("strpos(search_text, {}) > 0", args.push(needle)));
        }
        if let Some(p) = &q.provider {
            clauses.push(format!("provider = {}", args.push(p.as_str().to_string())));
        }
        if let Some(s) = q.sharing_class {
            clauses.push(format!("sharing_class = {}", args.push(s.as_str())));
        }
        if let Some(o) = q.open_class {
            clauses.push(format!("open_class = {}", args.push(o.as_str())));
        }
        if let Some(g) = q.grade {
            clauses.push(format!("grade = {}", args.push(g.as_str())));
        }
        if let Some(t) = &q.tag {
            clauses.push(format!(
                "EXISTS (SELECT 1 FROM dataset_tags t WHERE t.dataset = datasets.code AND t.tag = {})",
                args.push(t.clone())
            ));
        }
        let filter = where_clause(&clauses);
        let mut client = self.client().await?;
        // One snapshot for the count and the page.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let total: i64 =
            get(&tx.query_one(&format!("SELECT COUNT(*) FROM datasets{filter}"), &args.refs()).await.map_err(db)?, 0)?;
        let limit = args.push(effective_limit(q.limit));
        let offset = args.push(i64::from(q.offset));
        let rows = tx
            .query(
                &format!("SELECT {DATASET_COLUMNS} FROM datasets{filter} ORDER BY code LIMIT {limit} OFFSET {offset}"),
                &args.refs(),
            )
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let items = rows.iter().map(dataset_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page { items, total: total.max(0) as u64 })
    }

    async fn update_dataset_metadata(&self, d: &Dataset) -> StoreResult<()> {
        let tags = tags_json(&d.tags)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let n = tx
            .execute(
                "UPDATE datasets SET name = $2, provider = $3, summary = $4, category = $5, sharing_class = $6,
                     sharing_condition = $7, open_class = $8, grade = $9, update_cycle = $10, publish_date = $11,
                     tags = $12, search_text = $13, updated_at = $14
                 WHERE code = $1",
                &[
                    &d.code.as_str(),
                    &d.name,
                    &d.provider.as_str(),
                    &d.summary,
                    &d.category,
                    &d.sharing_class.as_str(),
                    &d.sharing_condition,
                    &d.open_class.as_str(),
                    &d.grade.as_str(),
                    &d.update_cycle.as_str(),
                    &d.publish_date,
                    &tags,
                    &search_text(d),
                    &d.updated_at,
                ],
            )
            .await
            .map_err(db)?;
        if n == 0 {
            return Err(StoreError::NotFound { what: "dataset" });
        }
        tx.execute("DELETE FROM dataset_tags WHERE dataset = $1", &[&d.code.as_str()]).await.map_err(db)?;
        insert_tags(&tx, d.code.as_str(), &d.tags).await?;
        tx.commit().await.map_err(db)
    }

    async fn evolve_schema(&self, d: &Dataset, evolution: &SchemaEvolution) -> StoreResult<()> {
        if matches!(evolution, SchemaEvolution::NewVersion) {
            check_table_name(&d.table_name)?;
        }
        let schema = schema_json(&d.schema)?;
        let code = d.code.as_str();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // Lock the catalog row: concurrent evolutions of one dataset queue here.
        let row = tx
            .query_opt("SELECT schema_version, table_name FROM datasets WHERE code = $1 FOR UPDATE", &[&code])
            .await
            .map_err(db)?
            .ok_or(StoreError::NotFound { what: "dataset" })?;
        let version: i32 = get(&row, 0)?;
        let table: String = get(&row, 1)?;
        match evolution {
            SchemaEvolution::Document | SchemaEvolution::AddColumns(_) => {
                if d.schema_version != version {
                    return Err(StoreError::Conflict { what: "schema_version" });
                }
                if let SchemaEvolution::AddColumns(fields) = evolution {
                    // The history table follows (created with the new schema if the
                    // dataset predates history tables).
                    let history = crate::ddl::history_table_name(&table);
                    let has_history: bool = get(
                        &tx.query_one(
                            "SELECT to_regclass($1::text) IS NOT NULL",
                            &[&crate::ddl::quote_ident(&history)],
                        )
                        .await
                        .map_err(db)?,
                        0,
                    )?;
                    for f in fields {
                        tx.batch_execute(&ddl::add_column(&table, f)).await.map_err(db)?;
                        if has_history {
                            tx.batch_execute(&ddl::add_column(&history, f)).await.map_err(db)?;
                        }
                    }
                    if !has_history {
                        check_table_name(&table)?;
                        tx.batch_execute(&ddl::create_history_table(&table, &d.schema, false)).await.map_err(db)?;
                    }
                }
                tx.execute(
                    "UPDATE dataset_schema_versions SET schema = $3 WHERE dataset = $1 AND version = $2",
                    &[&code, &version, &schema],
                )
                .await
                .map_err(db)?;
                tx.execute(
                    "UPDATE datasets SET schema = $2, updated_at = $3 WHERE code = $1",
                    &[&code, &schema, &d.updated_at],
                )
                .await
                .map_err(db)?;
            }
            SchemaEvolution::NewVersion => {
                if d.schema_version != version + 1 {
                    return Err(StoreError::Conflict { what: "schema_version" });
                }
                tx.execute(
                    "INSERT INTO dataset_schema_versions (dataset, version, schema, table_name, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&code, &d.schema_version, &schema, &d.table_name, &d.updated_at],
                )
                .await
                .map_err(conflict("schema_version"))?;
                tx.batch_execute(&ddl::create_table(&d.table_name, &d.schema)).await.map_err(db)?;
                tx.batch_execute(&ddl::create_history_table(&d.table_name, &d.schema, false)).await.map_err(db)?;
                tx.execute(
                    "UPDATE datasets SET schema = $2, schema_version = $3, table_name = $4, updated_at = $5
                     WHERE code = $1",
                    &[&code, &schema, &d.schema_version, &d.table_name, &d.updated_at],
                )
                .await
                .map_err(db)?;
            }
        }
        tx.commit().await.map_err(db)
    }

    async fn schema_versions(&self, code: &DatasetCode) -> StoreResult<Vec<SchemaVersion>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT dataset, version, schema, table_name, created_at FROM dataset_schema_versions
                 WHERE dataset = $1 ORDER BY version",
                &[&code.as_str()],
            )
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                SchemaVersionRow {
                    dataset: get(r, 0)?,
                    version: get(r, 1)?,
                    schema: get(r, 2)?,
                    table_name: get(r, 3)?,
                    created_at: get(r, 4)?,
                }
                .into_version()
            })
            .collect()
    }

    async fn table_columns(&self, table: &str) -> StoreResult<Vec<ColumnInfo>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT a.attname::text, t.typname::text, a.attnotnull
                 FROM pg_catalog.pg_attribute a
                 JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                 JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
                 WHERE n.nspname = current_schema() AND c.relname = $1::text AND c.relkind IN ('r', 'p')
                   AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum",
                &[&table],
            )
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(ColumnInfo {
                    name: get(r, 0)?,
                    sql_type: normalise_pg_type(&get::<String>(r, 1)?),
                    not_null: get(r, 2)?,
                })
            })
            .collect()
    }

    async fn append_audit(&self, e: &NewAuditEvent) -> StoreResult<i64> {
        self.append_audit_entry(e).await
    }

    async fn list_audit(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        self.list_audit_entries(q).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// With `GOVHUB_TEST_POSTGRES_URL` set: a connection's statement cache never holds
    /// more than its bound however many shapes of statement it is asked for, and a
    /// statement prepared after the cache started again still runs.
    #[tokio::test]
    async fn the_statement_cache_is_bounded() {
        let Ok(url) = std::env::var("GOVHUB_TEST_POSTGRES_URL") else { return };
        let config: tokio_postgres::Config = url.parse().unwrap();
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager).max_size(1).build().unwrap();
        let c = pool.get().await.unwrap();
        let mut largest = 0;
        for i in 0..(STATEMENT_CACHE_MAX + 44) {
            let stmt = prepared(&c, &format!("SELECT $1::bigint + {i}")).await.unwrap();
            largest = largest.max(c.statement_cache.size());
            if i % 50 == 0 || i == STATEMENT_CACHE_MAX + 43 {
                let v: i64 = c.query_one(&stmt, &[&1i64]).await.unwrap().get(0);
                assert_eq!(v, 1 + i as i64);
            }
        }
        assert_eq!(largest, STATEMENT_CACHE_MAX);
        assert!(c.statement_cache.size() < STATEMENT_CACHE_MAX);
        // The same text again comes from the cache: nothing new is prepared.
        let before = c.statement_cache.size();
        prepared(&c, &format!("SELECT $1::bigint + {}", STATEMENT_CACHE_MAX + 43)).await.unwrap();
        assert_eq!(c.statement_cache.size(), before);
    }
}
