//! The storage port. The domain talks to storage only through [`Store`]; the
//! `govhub-store` crate implements it once for SQLite and once for PostgreSQL, and its
//! conformance suite holds both to the same behaviour.

use crate::delivery::{DeliveryMode, DeliveryReport, DeliveryStatus, QuarantinedRow, ValidRow};
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

/// A delivery's content as it streams from the validator to the store.
#[derive(Debug)]
pub enum DeliveryBatch {
    /// The label each field had in the delivered file (sent first; without it the
    /// field names are used): for the rows the store quarantines itself.
    Labels(Vec<String>),
    /// Valid rows, in file order (the store may sort them). A key repeated within the
    /// delivery is the store's to find: the later row goes to the quarantine
    /// ([`crate::delivery::repeated_key`]).
    Rows(Vec<ValidRow>),
    /// Quarantined rows (kept with the delivery).
    Quarantine(Vec<QuarantinedRow>),
    /// Everything was sent: commit. A channel that closes without `Commit` (or
    /// `CommitKeepAbsent`) aborts the delivery and rolls everything back.
    Commit,
    /// Commit, but in snapshot mode do NOT mark absent keys deleted (`deleted` = 0):
    /// sent when some rows were quarantined, because a quarantined row's record must not
    /// be deleted just because its new version had a typo.
    CommitKeepAbsent,
}

/// A delivery as it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub dataset: DatasetCode,
    pub schema_version: i32,
    pub mode: DeliveryMode,
    pub format: String,
    pub encoding: String,
    pub submitted_by: String,
    pub org: OrgCode,
    pub file_name: Option<String>,
    pub started_at: DateTime<Utc>,
}

/// What applying a delivery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    /// Rows kept in the quarantine: the reader's, and the store's own (`repeated`).
    pub quarantined: u64,
    /// Valid rows quarantined by the store because an earlier row had their key.
    pub repeated: u64,
    /// The warnings those rows carried (counted by the reader as a valid row's).
    pub repeated_warnings: u64,
}

/// Listing deliveries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryQuery {
    pub dataset: Option<DatasetCode>,
    pub status: Option<DeliveryStatus>,
    /// Only deliveries with an id below this (paging, newest first).
    pub before_id: Option<i64>,
    pub limit: u32,
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
pub trait Store:
    DeliveryStore
    + crate::sharing::SharingStore
    + crate::webhook::WebhookStore
    + crate::audit::AuditStore
    + crate::licence::LicenceStore
    + Send
    + Sync
    + 'static
{
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

/// Deliveries, records and the responsibility list: the storage half of data delivery.
/// Every [`Store`] implements it (it is a supertrait of `Store`).
#[async_trait]
pub trait DeliveryStore: Send + Sync + 'static {
    // ---------------------------------------------------------------- deliveries

    /// Record a delivery as `running`; returns its id. Written outside the data
    /// transaction so that a failed delivery stays on record.
    async fn begin_delivery(&self, delivery: &NewDelivery) -> Result<i64, StoreError>;
    /// Apply a delivery's batches to the dataset's typed table in ONE transaction:
    /// upsert valid rows by primary key (unchanged content hash → not rewritten;
    /// changed → the previous version goes to the history table), keep quarantined rows
    /// with the delivery, and in snapshot mode mark current records whose keys the
    /// delivery did not contain as deleted. Readers see all of it or none of it. If the
    /// channel closes without [`DeliveryBatch::Commit`], nothing is kept.
    async fn apply_delivery(
        &self,
        dataset: &Dataset,
        delivery_id: i64,
        mode: DeliveryMode,
        at: DateTime<Utc>,
        batches: tokio::sync::mpsc::Receiver<DeliveryBatch>,
    ) -> Result<ApplyOutcome, StoreError>;
    /// Store the final report (status, counts, error, duration).
    async fn finish_delivery(&self, report: &DeliveryReport) -> Result<(), StoreError>;
    async fn get_delivery(&self, id: i64) -> Result<Option<DeliveryReport>, StoreError>;
    /// Newest first.
    async fn list_deliveries(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryReport>, StoreError>;
    /// Quarantined rows of a delivery in row order, and their total.
    async fn list_quarantine(
        &self,
        delivery_id: i64,
        offset: u64,
        limit: u32,
    ) -> Result<Page<QuarantinedRow>, StoreError>;
    /// Mark deliveries left `running` by a crash as failed; returns how many.
    async fn fail_interrupted_deliveries(&self, at: DateTime<Utc>) -> Result<u64, StoreError>;

    // ------------------------------------------------------------------ records

    /// A record by its primary key (typed cells of the key fields, in key order).
    async fn get_record(&self, dataset: &Dataset, key: &[crate::cells::Cell]) -> Result<Option<Record>, StoreError>;
    /// A record by its primary key together with the sharing generation, both read in
    /// one statement (one snapshot): the consumer API's hot path, which checks that the
    /// token and grant it took from its cache are still current (docs/sharing.md).
    ///
    /// Only the fields at the schema positions `fields` are read; the record's other
    /// cells are `Null`, so a field outside an app's grant is never read for it.
    async fn shared_record(
        &self,
        dataset: &std::sync::Arc<Dataset>,
        key: &[crate::cells::Cell],
        fields: &[usize],
    ) -> Result<(Option<Record>, i64), StoreError>;
    /// Records in primary-key order after `query.after`, filtered.
    async fn query_records(&self, dataset: &Dataset, query: &RecordQuery) -> Result<Vec<Record>, StoreError>;
    /// Every version of a record, oldest first (the current one last).
    async fn record_history(
        &self,
        dataset: &Dataset,
        key: &[crate::cells::Cell],
    ) -> Result<Vec<RecordVersion>, StoreError>;

    // ---------------------------------------------------------- responsibilities

    /// Insert or replace the responsibility entry for a dataset.
    async fn put_responsibility(&self, r: &Responsibility) -> Result<(), StoreError>;
    async fn delete_responsibility(&self, dataset: &DatasetCode) -> Result<bool, StoreError>;
    async fn list_responsibilities(&self) -> Result<Vec<Responsibility>, StoreError>;
    /// Delivery statistics for every dataset in the catalog.
    async fn delivery_stats(&self) -> Result<Vec<DeliveryStats>, StoreError>;
}
