//! The SQLite backend: one file, WAL mode, one writer connection behind a mutex and a
//! small pool of read-only reader connections. Every rusqlite call runs on Tokio's
//! blocking pool.

mod audit;
pub mod ddl;
mod delivery;
mod licence;
mod migrate;
mod readers;
mod sharing;
mod webhooks;

pub use audit::{audit_path, AUDIT_MIGRATIONS};

use crate::records::*;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use govhub_core::model::*;
use govhub_core::names::{DatasetCode, OrgCode, Username};
use govhub_core::store::{Backend, SchemaEvolution, Store, StoreError};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, Value, ValueRef};
use rusqlite::{params, params_from_iter, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Number of reader connections.
pub const READERS: usize = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The writer's page cache, in KiB (negative: a size, not a page count).
const WRITER_CACHE_KIB: i64 = -65_536;

// ------------------------------------------------------------------ conversions

/// Timestamps are stored as RFC 3339 UTC text with exactly six fractional digits, so
/// text order is time order.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    let mut s = String::with_capacity(27);
    write_ts(&mut s, t);
    s
}

/// [`ts`] appended to `s`.
pub(crate) fn write_ts(s: &mut String, t: DateTime<Utc>) {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    // Written field by field: strftime parses its pattern on every call, and this runs
    // for every timestamp cell of every delivered row.
    let _ = write!(
        s,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        // chrono carries a leap second in the nanoseconds and shows it as :60.
        t.second() + t.nanosecond() / 1_000_000_000,
        t.nanosecond() / 1_000 % 1_000_000
    );
}

pub(crate) fn now_text() -> String {
    ts(Utc::now())
}

pub(crate) fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A stored timestamp read back.
pub(crate) struct Ts(pub(crate) DateTime<Utc>);

impl FromSql for Ts {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        DateTime::parse_from_rfc3339(s)
            .map(|t| Ts(t.with_timezone(&Utc)))
            .map_err(|e| FromSqlError::Other(format!("timestamp \"{s}\": {e}").into()))
    }
}

/// A stored date read back.
struct Day(NaiveDate);

impl FromSql for Day {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Day)
            .map_err(|e| FromSqlError::Other(format!("date \"{s}\": {e}").into()))
    }
}

/// Map a rusqlite error: values that do not convert are corrupt data, the rest are
/// database failures.
pub(crate) fn db(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::FromSqlConversionFailure(col, _, err) => {
            StoreError::Corrupt(format!("column {col} does not parse: {err}"))
        }
        rusqlite::Error::InvalidColumnType(col, name, ty) => {
            StoreError::Corrupt(format!("column {col} ({name}) holds an unexpected {ty} value"))
        }
        rusqlite::Error::IntegralValueOutOfRange(col, v) => {
            StoreError::Corrupt(format!("column {col} holds {v}, out of range"))
        }
        other => StoreError::backend(other),
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// Map a unique violation to `Conflict { what }`, anything else as [`db`].
pub(crate) fn conflict(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| if is_unique_violation(&e) { StoreError::Conflict { what } } else { db(e) }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the connection usable: rusqlite rolls an
    // open transaction back when it is dropped during unwinding.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ------------------------------------------------------------------ row readers

const ORG_COLUMNS: &str = "code, name, kind, parent, admin_code, uscc, created_at";

fn org_row(r: &Row<'_>) -> rusqlite::Result<OrgRow> {
    Ok(OrgRow {
        code: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        parent: r.get(3)?,
        admin_code: r.get(4)?,
        uscc: r.get(5)?,
        created_at: r.get::<_, Ts>(6)?.0,
    })
}

const USER_COLUMNS: &str = "id, username, display_name, role, org, subject_id, password_hash, disabled, created_at";

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        username: r.get(1)?,
        display_name: r.get(2)?,
        role: r.get(3)?,
        org: r.get(4)?,
        subject_id: r.get(5)?,
        password_hash: r.get(6)?,
        disabled: r.get(7)?,
        created_at: r.get::<_, Ts>(8)?.0,
    })
}

fn dataset_row(r: &Row<'_>) -> rusqlite::Result<DatasetRow> {
    Ok(DatasetRow {
        code: r.get(0)?,
        name: r.get(1)?,
        provider: r.get(2)?,
        summary: r.get(3)?,
        category: r.get(4)?,
        sharing_class: r.get(5)?,
        sharing_condition: r.get(6)?,
        open_class: r.get(7)?,
        grade: r.get(8)?,
        update_cycle: r.get(9)?,
        publish_date: r.get::<_, Option<Day>>(10)?.map(|d| d.0),
        tags: r.get(11)?,
        schema: r.get(12)?,
        schema_version: r.get(13)?,
        table_name: r.get(14)?,
        created_at: r.get::<_, Ts>(15)?.0,
        updated_at: r.get::<_, Ts>(16)?.0,
    })
}

/// Run a query and convert every row.
fn collect<R, T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    read: impl FnMut(&Row<'_>) -> rusqlite::Result<R>,
    convert: impl Fn(R) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare(sql).map_err(db)?;
    let rows = stmt.query_map(params, read).map_err(db)?.collect::<Result<Vec<R>, _>>().map_err(db)?;
    rows.into_iter().map(convert).collect()
}

// ------------------------------------------------------------------ the store

struct Inner {
    path: PathBuf,
    /// Copies committed pages from the WAL into the database file.
    checkpointer: Checkpointer,
    /// The audit log's own file and writer (`audit.rs`).
    audit: audit::AuditDb,
    writer: Mutex<Connection>,
    readers: Arc<readers::Pool>,
    /// One permit per reader connection.
    permits: Arc<Semaphore>,
    /// The consumer API's lookup statements by table, one per set of fields read
    /// ([`SharedSql`]; built once, not per request; a field added in place changes the
    /// count and rebuilds them, as would a different key under the same table name).
    shared_sql: Mutex<std::collections::HashMap<String, Vec<SharedSql>>>,
}

/// The database's checkpoints, on a thread and connection of their own (as
/// PostgreSQL's checkpointer): the writer's automatic checkpoint is off, because it ran
/// inside the commit that crossed its threshold — a delivery of a million rows waited
/// ≈ 1 s after its last row for its pages to be copied from the WAL into the database
/// file, or the next small write after it did. Every [`CHECKPOINT_EVERY`], and at once
/// when nudged (after a delivery), the thread runs a PASSIVE checkpoint, which never
/// waits for readers or the writer; what it cannot copy yet it copies next time. The
/// thread ends (after a last checkpoint) when the store is dropped.
struct Checkpointer {
    nudge: std::sync::mpsc::Sender<()>,
}

/// How often the checkpointer looks for committed pages to copy.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

impl Checkpointer {
    fn start(path: &Path) -> StoreResult<Checkpointer> {
        let conn = Connection::open(path).map_err(db)?;
        let (nudge, rx) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("govhub-checkpoint".into())
            .spawn(move || {
                use std::sync::mpsc::RecvTimeoutError;
                // A checkpoint reports the WAL's frames until a writer starts it over:
                // log only what a checkpoint copied anew.
                let mut reported = (0i64, 0i64);
                loop {
                    let last = match rx.recv_timeout(CHECKPOINT_EVERY) {
                        Ok(()) | Err(RecvTimeoutError::Timeout) => false,
                        Err(RecvTimeoutError::Disconnected) => true,
                    };
                    while rx.try_recv().is_ok() {}
                    let started = std::time::Instant::now();
                    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    }) {
                        Ok((_, frames, copied)) if (frames, copied) != reported => {
                            reported = (frames, copied);
                            tracing::debug!(frames, copied, ms = started.elapsed().as_millis() as u64, "checkpoint");
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "checkpoint failed; the next one copies the pages"),
                    }
                    if last {
                        break;
                    }
                }
            })
            .map_err(|e| refused(format!("cannot start the SQLite checkpointer thread: {e}")))?;
        Ok(Checkpointer { nudge })
    }

    /// Checkpoint now rather than at the next round.
    fn nudge(&self) {
        let _ = self.nudge.send(());
    }
}

/// The SQLite implementation of [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.inner.path).finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.readers.shut_down();
    }
}

impl Inner {
    /// The writer connection. The reader pool learns when it is given back, so no
    /// lookup is served from a snapshot older than a write this process has finished.
    fn writer(&self) -> Writing<'_> {
        Writing { conn: lock(&self.writer), readers: &self.readers }
    }
}

/// The writer connection, held.
struct Writing<'a> {
    conn: MutexGuard<'a, Connection>,
    readers: &'a readers::Pool,
}

impl std::ops::Deref for Writing<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl std::ops::DerefMut for Writing<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.readers.wrote();
    }
}

/// A table's lookup statement: the field count, primary key and fields read it was
/// built for.
struct SharedSql {
    fields: usize,
    pk: Vec<String>,
    read: Vec<usize>,
    text: Arc<str>,
}

/// Lookup statements kept per table: one per set of fields read (the grants' field
/// sets), the oldest dropped beyond this many.
const SHARED_SQL_PER_TABLE: usize = 64;

/// How much of the database file each reader connection maps.
const READER_MMAP_BYTES: i64 = 1 << 30;

fn configure(conn: &Connection) -> StoreResult<()> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
    Ok(())
}

impl SqliteStore {
    /// Open (creating it and its directory if absent) the database file and apply
    /// pending migrations.
    pub async fn open(path: impl AsRef<Path>) -> StoreResult<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(path)).await.map_err(StoreError::backend)?
    }

    fn open_blocking(path: PathBuf) -> StoreResult<SqliteStore> {
        Self::open_reusing(path, readers::SNAPSHOT_REUSE)
    }

    /// [`SqliteStore::open`], the point lookups sharing a snapshot for up to `reuse`.
    fn open_reusing(path: PathBuf, reuse: Duration) -> StoreResult<SqliteStore> {
        if path.as_os_str().is_empty() {
            return Err(refused("the SQLite database path is empty"));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| refused(format!("cannot create the directory {} for SQLite: {e}", dir.display())))?;
        }
        let mut writer = Connection::open(&path).map_err(db)?;
        configure(&writer)?;
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(refused(format!(
                "SQLite would not switch {} to WAL mode (journal mode is {mode})",
                path.display()
            )));
        }
        writer.pragma_update(None, "synchronous", "NORMAL").map_err(db)?;
        // Checkpoints are the checkpointer's (below): a commit never waits for one.
        writer.pragma_update(None, "wal_autocheckpoint", 0).map_err(db)?;
        // Deliveries write millions of rows in one transaction: the page cache (64 MiB,
        // allocated as used) keeps the key index's pages hot while rows are written in
        // sorted runs; the table itself is appended to. 256 MiB was no faster at 1 M rows
        // and held 170 MiB more (docs/benchmarks.md, session 3).
        writer.pragma_update(None, "cache_size", WRITER_CACHE_KIB).map_err(db)?;
        migrate::run(&mut writer)?;
        let audit = audit::AuditDb::open(&path, &mut writer)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r =
                Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                    .map_err(db)?;
            configure(&r)?;
            r.pragma_update(None, "query_only", "ON").map_err(db)?;
            // Readers map the file (up to 1 GiB) instead of copying pages through read():
            // point lookups then cost no system call, and a reader whose page cache was
            // reset by a commit elsewhere refills it from the mapping for free.
            r.pragma_update(None, "mmap_size", READER_MMAP_BYTES).map_err(db)?;
            // Every dataset has its own lookup statements: keep enough of them prepared.
            r.set_prepared_statement_cache_capacity(256);
            readers.push(readers::Reader::new(r));
        }
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                checkpointer: Checkpointer::start(&path)?,
                path,
                audit,
                writer: Mutex::new(writer),
                readers: readers::Pool::start(readers, reuse)?,
                permits: Arc::new(Semaphore::new(READERS)),
                shared_sql: Mutex::default(),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Run `f` on the writer connection.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&mut inner.writer())).await.map_err(StoreError::backend)?
    }

    /// Run `f` on a reader connection.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let permit = self.inner.permits.clone().acquire_owned().await.map_err(StoreError::backend)?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let checkout = inner.readers.take().ok_or_else(|| refused("no SQLite reader connection is free"))?;
            f(checkout.conn()?)
        })
        .await
        .map_err(StoreError::backend)?
    }
}

impl SqliteStore {
    /// The text of [`crate::delivery::shared_record_sql`] for `d` reading `read` (its
    /// parameters are the key's, in key order).
    pub(crate) fn shared_record_text(
        &self,
        d: &Dataset,
        key: &[govhub_core::cells::Cell],
        read: &[usize],
    ) -> StoreResult<Arc<str>> {
        let fields = d.schema.fields.len();
        let same = |s: &SharedSql| s.fields == fields && s.pk == d.schema.primary_key && s.read == read;
        if let Some(kept) = lock(&self.inner.shared_sql).get(&d.table_name).and_then(|v| v.iter().find(|s| same(s))) {
            return Ok(kept.text.clone());
        }
        let layout = crate::delivery::Layout::new(d)?;
        let text: Arc<str> = crate::delivery::shared_record_sql(&delivery::DIALECT, &layout, key, read)?.text.into();
        let mut map = lock(&self.inner.shared_sql);
        if map.len() > 10_000 {
            map.clear();
        }
        let kept = map.entry(d.table_name.clone()).or_default();
        // A statement for another shape of the table (fields added) is stale for good.
        kept.retain(|s| s.fields == fields && s.pk == d.schema.primary_key);
        if kept.len() >= SHARED_SQL_PER_TABLE {
            kept.remove(0);
        }
        kept.push(SharedSql { fields, pk: d.schema.primary_key.clone(), read: read.to_vec(), text: text.clone() });
        Ok(text)
    }

    /// Run a point read (a lookup by key: tens of microseconds) on the calling thread
    /// when a reader connection is free at once, and like [`SqliteStore::read`]
    /// otherwise. A thread hop costs more than such a read: on the consumer API's hot
    /// path (token, grant, record) the hops were most of the time. WAL readers never
    /// wait for the writer, so this does not stall the async runtime behind a delivery.
    /// On the calling thread it reads from a shared snapshot (`readers.rs`): at most
    /// [`readers::SNAPSHOT_REUSE`] old, and never older than this process's last write.
    pub(crate) async fn read_now<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        if let Ok(permit) = self.inner.permits.clone().try_acquire_owned() {
            if let Some(mut checkout) = self.inner.readers.take_snapshot()? {
                let result = f(checkout.conn()?);
                if result.is_err() {
                    checkout.failed();
                }
                drop(checkout);
                drop(permit);
                return result;
            }
        }
        self.read(f).await
    }
}

fn insert_tags(tx: &Connection, code: &str, tags: &[String]) -> StoreResult<()> {
    let mut stmt = tx.prepare("INSERT INTO dataset_tags (dataset, tag) VALUES (?1, ?2)").map_err(db)?;
    for t in unique_tags(tags) {
        stmt.execute(params![code, t]).map_err(db)?;
    }
    Ok(())
}

/// Dataset search: `(where clause, its parameters)`.
fn dataset_filter(q: &DatasetQuery) -> (String, Vec<Value>) {
    let mut clauses: Vec<&str> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if let Some(needle) = search_needle(q.text.as_deref()) {
        clauses.push("instr(search_text, ?) > 0");
        args.push(Value::Text(needle));
    }
    if let Some(p) = &q.provider {
        clauses.push("provider = ?");
        args.push(Value::Text(p.as_str().into()));
    }
    if let Some(s) = q.sharing_class {
        clauses.push("sharing_class = ?");
        args.push(Value::Text(s.as_str().into()));
    }
    if let Some(o) = q.open_class {
        clauses.push("open_class = ?");
        args.push(Value::Text(o.as_str().into()));
    }
    if let Some(g) = q.grade {
        clauses.push("grade = ?");
        args.push(Value::Text(g.as_str().into()));
    }
    if let Some(t) = &q.tag {
        clauses.push("EXISTS (SELECT 1 FROM dataset_tags t WHERE t.dataset = datasets.code AND t.tag = ?)");
        args.push(Value::Text(t.clone()));
    }
    let sql = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
    (sql, args)
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).map(|_| ()).map_err(db)).await
    }

    async fn migrations(&self) -> StoreResult<Vec<i64>> {
        self.read(|c| collect(c, "SELECT version FROM schema_migrations ORDER BY version", [], |r| r.get(0), Ok)).await
    }

    async fn get_meta(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_string();
        self.read(move |c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [&key], |r| r.get(0)).optional().map_err(db)
        })
        .await
    }

    async fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        let (key, value) = (key.to_string(), value.to_string());
        self.write(move |c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(|_| ())
            .map_err(db)
        })
        .await
    }

    async fn insert_org(&self, org: &Org) -> StoreResult<()> {
        let o = org.clone();
        self.write(move |c| {
            c.execute(
                &format!("INSERT INTO orgs ({ORG_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![
                    o.code.as_str(),
                    o.name,
                    o.kind.as_str(),
                    o.parent.as_ref().map(OrgCode::as_str),
                    o.admin_code.as_ref().map(|a| a.as_str()),
                    o.uscc.as_ref().map(|u| u.as_str()),
                    ts(o.created_at),
                ],
            )
            .map(|_| ())
            .map_err(conflict("org"))
        })
        .await
    }

    async fn get_org(&self, code: &OrgCode) -> StoreResult<Option<Org>> {
        let code = code.as_str().to_string();
        self.read(move |c| {
            c.query_row(&format!("SELECT {ORG_COLUMNS} FROM orgs WHERE code = ?1"), [&code], org_row)
                .optional()
                .map_err(db)?
                .map(OrgRow::into_org)
                .transpose()
        })
        .await
    }

    async fn list_orgs(&self) -> StoreResult<Vec<Org>> {
        self.read(|c| {
            collect(c, &format!("SELECT {ORG_COLUMNS} FROM orgs ORDER BY code"), [], org_row, OrgRow::into_org)
        })
        .await
    }

    async fn insert_user(&self, user: &NewUserRecord) -> StoreResult<User> {
        let u = user.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO users (username, display_name, role, org, subject_id, password_hash, disabled, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7)",
                params![
                    u.username.as_str(),
                    u.display_name,
                    u.role.as_str(),
                    u.org.as_ref().map(OrgCode::as_str),
                    u.subject_id,
                    u.password_hash,
                    ts(u.created_at),
                ],
            )
            .map_err(conflict("user"))?;
            Ok(stored_user(c.last_insert_rowid(), &u))
        })
        .await
    }

    async fn get_user(&self, id: i64) -> StoreResult<Option<User>> {
        self.read(move |c| {
            c.query_row(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"), [id], user_row)
                .optional()
                .map_err(db)?
                .map(UserRow::into_user)
                .transpose()
        })
        .await
    }

    async fn get_user_by_username(&self, username: &Username) -> StoreResult<Option<User>> {
        let name = username.as_str().to_string();
        self.read(move |c| {
            c.query_row(&format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1"), [&name], user_row)
                .optional()
                .map_err(db)?
                .map(UserRow::into_user)
                .transpose()
        })
        .await
    }

    async fn list_users(&self, org: Option<&OrgCode>) -> StoreResult<Vec<User>> {
        let org = org.map(|o| o.as_str().to_string());
        self.read(move |c| match &org {
            Some(o) => collect(
                c,
                &format!("SELECT {USER_COLUMNS} FROM users WHERE org = ?1 ORDER BY username"),
                [o],
                user_row,
                UserRow::into_user,
            ),
            None => collect(
                c,
                &format!("SELECT {USER_COLUMNS} FROM users ORDER BY username"),
                [],
                user_row,
                UserRow::into_user,
            ),
        })
        .await
    }

    async fn set_user_password(&self, id: i64, password_hash: &str) -> StoreResult<()> {
        let hash = password_hash.to_string();
        self.write(move |c| {
            match c.execute("UPDATE users SET password_hash = ?1 WHERE id = ?2", params![hash, id]).map_err(db)? {
                0 => Err(StoreError::NotFound { what: "user" }),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn insert_session(&self, session: &Session) -> StoreResult<()> {
        let s = session.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO sessions (token_hash, kind, csrf_token, user_id, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![s.token_hash, s.kind.as_str(), s.csrf_token, s.user_id, ts(s.created_at), ts(s.expires_at)],
            )
            .map(|_| ())
            .map_err(conflict("session"))
        })
        .await
    }

    async fn get_session(&self, token_hash: &str) -> StoreResult<Option<Session>> {
        let hash = token_hash.to_string();
        self.read(move |c| {
            c.query_row(
                "SELECT token_hash, user_id, kind, csrf_token, created_at, expires_at FROM sessions
                 WHERE token_hash = ?1",
                [&hash],
                |r| {
                    Ok(SessionRow {
                        token_hash: r.get(0)?,
                        user_id: r.get(1)?,
                        kind: r.get(2)?,
                        csrf_token: r.get(3)?,
                        created_at: r.get::<_, Ts>(4)?.0,
                        expires_at: r.get::<_, Ts>(5)?.0,
                    })
                },
            )
            .optional()
            .map_err(db)?
            .map(SessionRow::into_session)
            .transpose()
        })
        .await
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        let hash = token_hash.to_string();
        self.write(move |c| c.execute("DELETE FROM sessions WHERE token_hash = ?1", [&hash]).map(|_| ()).map_err(db))
            .await
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.write(move |c| {
            c.execute("DELETE FROM sessions WHERE expires_at < ?1", [ts(now)]).map(|n| n as u64).map_err(db)
        })
        .await
    }

    async fn create_dataset(&self, dataset: &Dataset) -> StoreResult<()> {
        check_table_name(&dataset.table_name)?;
        let d = dataset.clone();
        let schema = schema_json(&d.schema)?;
        let tags = tags_json(&d.tags)?;
        let ddl = format!(
            "{};\n{}",
            ddl::create_table(&d.table_name, &d.schema),
            ddl::create_history_table(&d.table_name, &d.schema, false)
        );
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            tx.execute(
                "INSERT INTO datasets (code, table_stem, name, provider, summary, category, sharing_class,
                     sharing_condition, open_class, grade, update_cycle, publish_date, tags, search_text, schema,
                     schema_version, table_name, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
                params![
                    d.code.as_str(),
                    d.code.table_stem(),
                    d.name,
                    d.provider.as_str(),
                    d.summary,
                    d.category,
                    d.sharing_class.as_str(),
                    d.sharing_condition,
                    d.open_class.as_str(),
                    d.grade.as_str(),
                    d.update_cycle.as_str(),
                    d.publish_date.map(day),
                    tags,
                    search_text(&d),
                    schema,
                    d.schema_version,
                    d.table_name,
                    ts(d.created_at),
                    ts(d.updated_at),
                ],
            )
            .map_err(conflict("dataset"))?;
            insert_tags(&tx, d.code.as_str(), &d.tags)?;
            tx.execute(
                "INSERT INTO dataset_schema_versions (dataset, version, schema, table_name, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![d.code.as_str(), d.schema_version, schema, d.table_name, ts(d.created_at)],
            )
            .map_err(conflict("dataset"))?;
            tx.execute_batch(&ddl).map_err(db)?;
            tx.commit().map_err(db)
        })
        .await
    }

    async fn get_dataset(&self, code: &DatasetCode) -> StoreResult<Option<Dataset>> {
        let code = code.as_str().to_string();
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {DATASET_COLUMNS} FROM datasets WHERE code = ?1"))
                .map_err(db)?
                .query_row([&code], dataset_row)
                .optional()
                .map_err(db)?
                .map(DatasetRow::into_dataset)
                .transpose()
        })
        .await
    }

    async fn search_datasets(&self, query: &DatasetQuery) -> StoreResult<Page<Dataset>> {
        let (filter, args) = dataset_filter(query);
        let limit = effective_limit(query.limit);
        let offset = i64::from(query.offset);
        self.read(move |c| {
            let tx = c.unchecked_transaction().map_err(db)?;
            let total: i64 = tx
                .query_row(&format!("SELECT COUNT(*) FROM datasets{filter}"), params_from_iter(args.iter()), |r| {
                    r.get(0)
                })
                .map_err(db)?;
            let mut page_args = args.clone();
            page_args.push(Value::Integer(limit));
            page_args.push(Value::Integer(offset));
            let items = collect(
                &tx,
                &format!("SELECT {DATASET_COLUMNS} FROM datasets{filter} ORDER BY code LIMIT ? OFFSET ?"),
                params_from_iter(page_args.iter()),
                dataset_row,
                DatasetRow::into_dataset,
            )?;
            tx.finish().map_err(db)?;
            Ok(Page { items, total: total.max(0) as u64 })
        })
        .await
    }

    async fn update_dataset_metadata(&self, dataset: &Dataset) -> StoreResult<()> {
        let d = dataset.clone();
        let tags = tags_json(&d.tags)?;
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let n = tx
                .execute(
                    "UPDATE datasets SET name = ?2, provider = ?3, summary = ?4, category = ?5, sharing_class = ?6,
                         sharing_condition = ?7, open_class = ?8, grade = ?9, update_cycle = ?10, publish_date = ?11,
                         tags = ?12, search_text = ?13, updated_at = ?14
                     WHERE code = ?1",
                    params![
                        d.code.as_str(),
                        d.name,
                        d.provider.as_str(),
                        d.summary,
                        d.category,
                        d.sharing_class.as_str(),
                        d.sharing_condition,
                        d.open_class.as_str(),
                        d.grade.as_str(),
                        d.update_cycle.as_str(),
                        d.publish_date.map(day),
                        tags,
                        search_text(&d),
                        ts(d.updated_at),
                    ],
                )
                .map_err(db)?;
            if n == 0 {
                return Err(StoreError::NotFound { what: "dataset" });
            }
            tx.execute("DELETE FROM dataset_tags WHERE dataset = ?1", [d.code.as_str()]).map_err(db)?;
            insert_tags(&tx, d.code.as_str(), &d.tags)?;
            tx.commit().map_err(db)
        })
        .await
    }

    async fn evolve_schema(&self, dataset: &Dataset, evolution: &SchemaEvolution) -> StoreResult<()> {
        if matches!(evolution, SchemaEvolution::NewVersion) {
            check_table_name(&dataset.table_name)?;
        }
        let d = dataset.clone();
        let evolution = evolution.clone();
        let schema = schema_json(&d.schema)?;
        self.write(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let (version, table): (i32, String) = tx
                .query_row("SELECT schema_version, table_name FROM datasets WHERE code = ?1", [d.code.as_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(db)?
                .ok_or(StoreError::NotFound { what: "dataset" })?;
            match &evolution {
                SchemaEvolution::Document | SchemaEvolution::AddColumns(_) => {
                    if d.schema_version != version {
                        return Err(StoreError::Conflict { what: "schema_version" });
                    }
                    if let SchemaEvolution::AddColumns(fields) = &evolution {
                        // The history table follows (created with the new schema if the
                        // dataset predates history tables).
                        let history = crate::ddl::history_table_name(&table);
                        let has_history = tx
                            .query_row(
                                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                                [&history],
                                |_| Ok(()),
                            )
                            .optional()
                            .map_err(db)?
                            .is_some();
                        for f in fields {
                            tx.execute_batch(&ddl::add_column(&table, f)).map_err(db)?;
                            if has_history {
                                tx.execute_batch(&ddl::add_column(&history, f)).map_err(db)?;
                            }
                        }
                        if !has_history {
                            check_table_name(&table)?;
                            tx.execute_batch(&ddl::create_history_table(&table, &d.schema, false)).map_err(db)?;
                        }
                    }
                    tx.execute(
                        "UPDATE dataset_schema_versions SET schema = ?3 WHERE dataset = ?1 AND version = ?2",
                        params![d.code.as_str(), version, schema],
                    )
                    .map_err(db)?;
                    tx.execute(
                        "UPDATE datasets SET schema = ?2, updated_at = ?3 WHERE code = ?1",
                        params![d.code.as_str(), schema, ts(d.updated_at)],
                    )
                    .map_err(db)?;
                }
                SchemaEvolution::NewVersion => {
                    if d.schema_version != version + 1 {
                        return Err(StoreError::Conflict { what: "schema_version" });
                    }
                    tx.execute(
                        "INSERT INTO dataset_schema_versions (dataset, version, schema, table_name, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![d.code.as_str(), d.schema_version, schema, d.table_name, ts(d.updated_at)],
                    )
                    .map_err(conflict("schema_version"))?;
                    tx.execute_batch(&ddl::create_table(&d.table_name, &d.schema)).map_err(db)?;
                    tx.execute_batch(&ddl::create_history_table(&d.table_name, &d.schema, false)).map_err(db)?;
                    tx.execute(
                        "UPDATE datasets SET schema = ?2, schema_version = ?3, table_name = ?4, updated_at = ?5
                         WHERE code = ?1",
                        params![d.code.as_str(), schema, d.schema_version, d.table_name, ts(d.updated_at)],
                    )
                    .map_err(db)?;
                }
            }
            tx.commit().map_err(db)
        })
        .await
    }

    async fn schema_versions(&self, code: &DatasetCode) -> StoreResult<Vec<SchemaVersion>> {
        let code = code.as_str().to_string();
        self.read(move |c| {
            collect(
                c,
                "SELECT dataset, version, schema, table_name, created_at FROM dataset_schema_versions
                 WHERE dataset = ?1 ORDER BY version",
                [&code],
                |r| {
                    Ok(SchemaVersionRow {
                        dataset: r.get(0)?,
                        version: r.get(1)?,
                        schema: r.get(2)?,
                        table_name: r.get(3)?,
                        created_at: r.get::<_, Ts>(4)?.0,
                    })
                },
                SchemaVersionRow::into_version,
            )
        })
        .await
    }

    async fn table_columns(&self, table: &str) -> StoreResult<Vec<ColumnInfo>> {
        let table = table.to_string();
        self.read(move |c| {
            collect(
                c,
                "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1) ORDER BY cid",
                [&table],
                |r| {
                    Ok(ColumnInfo {
                        name: r.get(0)?,
                        sql_type: r.get::<_, String>(1)?.to_ascii_uppercase(),
                        not_null: r.get::<_, i64>(2)? != 0 || r.get::<_, i64>(3)? != 0,
                    })
                },
                Ok,
            )
        })
        .await
    }

    async fn append_audit(&self, event: &NewAuditEvent) -> StoreResult<i64> {
        self.append_audit_entry(event).await
    }

    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        self.list_audit_entries(query).await
    }
}

#[cfg(test)]
mod ts_tests {
    use super::ts;
    use chrono::{DateTime, Utc};

    #[test]
    fn timestamps_are_written_as_strftime_would() {
        for micros in [0i64, 1, 999_999, 1_700_000_000_123_456, -62_135_596_800_000_000, 253_402_300_799_999_999] {
            let t = DateTime::<Utc>::from_timestamp_micros(micros).unwrap();
            assert_eq!(ts(t), t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(), "{micros}");
        }
        // A leap second keeps its fraction (chrono carries it in the nanoseconds).
        let leap = DateTime::<Utc>::from_timestamp(1_483_228_799, 1_500_000_000).unwrap();
        assert_eq!(ts(leap), leap.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
    }
}
