//! The storage port. The domain talks to storage only through [`Store`]; the
//! `govhub-store` crate implements it once for SQLite and once for PostgreSQL, and its
//! conformance suite holds both to the same behaviour.

use crate::model::*;
use crate::names::{DatasetCode, OrgCode, Username};
use crate::schema::Field;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Storage failures, independent of the backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated; `what` names the key (e.g. `org`, `dataset`).
    #[error("{what} already exists")]
    Conflict { what: &'static str },
    /// A referenced row does not exist (e.g. the dataset to evolve).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// Data read back from the store does not parse: the store was changed outside
    /// govhub or a migration is missing.
    #[error("corrupt data in store: {0}")]
    Corrupt(String),
    /// The database itself failed.
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

/// Which backend a store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// How the typed table follows a schema change.
#[derive(Debug, Clone, PartialEq)]
pub enum SchemaEvolution {
    /// Only documentation changed: store the new schema JSON, same version.
    Document,
    /// Add these optional columns to the current table (same version).
    AddColumns(Vec<Field>),
    /// Create the next version's table; the old table stays for history.
    NewVersion,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;
    /// A cheap round trip to the database (for `/healthz`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Applied migration versions, oldest first.
    async fn migrations(&self) -> Result<Vec<i64>, StoreError>;

    async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError>;
    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError>;

    /// Insert an organisation; `Conflict{what:"org"}` if the code exists.
    async fn insert_org(&self, org: &Org) -> Result<(), StoreError>;
    async fn get_org(&self, code: &OrgCode) -> Result<Option<Org>, StoreError>;
    /// All organisations ordered by code.
    async fn list_orgs(&self) -> Result<Vec<Org>, StoreError>;

    /// Insert a user; `Conflict{what:"user"}` if the username is taken.
    async fn insert_user(&self, user: &NewUserRecord) -> Result<User, StoreError>;
    async fn get_user(&self, id: i64) -> Result<Option<User>, StoreError>;
    async fn get_user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError>;
    /// Users, optionally of one organisation, ordered by username.
    async fn list_users(&self, org: Option<&OrgCode>) -> Result<Vec<User>, StoreError>;
    async fn set_user_password(&self, id: i64, password_hash: &str) -> Result<(), StoreError>;

    async fn insert_session(&self, session: &Session) -> Result<(), StoreError>;
    async fn get_session(&self, token_hash: &str) -> Result<Option<Session>, StoreError>;
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError>;
    /// Remove sessions that expired before `now`; returns how many.
    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Create the catalog entry, schema version 1 and the typed table, atomically.
    /// `Conflict{what:"dataset"}` if the code (or its table stem) exists.
    async fn create_dataset(&self, dataset: &Dataset) -> Result<(), StoreError>;
    async fn get_dataset(&self, code: &DatasetCode) -> Result<Option<Dataset>, StoreError>;
    /// Catalog search; results ordered by code.
    async fn search_datasets(&self, query: &DatasetQuery) -> Result<Page<Dataset>, StoreError>;
    /// Replace the catalog metadata (not the schema) of an existing dataset.
    async fn update_dataset_metadata(&self, dataset: &Dataset) -> Result<(), StoreError>;
    /// Apply a schema change atomically; `dataset` carries the new schema (and, for
    /// `NewVersion`, the new version number and table name).
    async fn evolve_schema(&self, dataset: &Dataset, evolution: &SchemaEvolution) -> Result<(), StoreError>;
    async fn schema_versions(&self, code: &DatasetCode) -> Result<Vec<SchemaVersion>, StoreError>;
    /// Columns of a typed table, in table order (operators' view of the data).
    async fn table_columns(&self, table: &str) -> Result<Vec<ColumnInfo>, StoreError>;

    /// Append to the audit log; returns the sequence number.
    async fn append_audit(&self, event: &NewAuditEvent) -> Result<i64, StoreError>;
    /// Newest first.
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError>;
}
