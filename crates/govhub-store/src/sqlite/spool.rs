//! SQLite: a delivery's spool. While the validator streams batches, they are staged in
//! a scratch database of their own (a file next to the main database, its own
//! connection, no journal, no fsync) so that the writer connection — which every
//! other write of the hub needs: audit entries, sessions, other deliveries — is not
//! held while a client uploads. Only when the delivery commits is the writer taken, to
//! merge the staged rows in key order in one short transaction.
//!
//! The file is removed when the spool is dropped (commit, abort or error alike); files
//! left by a killed process are removed with the interrupted deliveries at start-up.

use super::db;
use super::ddl::column_type;
use super::delivery::Bind;
use crate::delivery::{aborted, problems_json, raw_json, stored_count, Layout};
use crate::records::{refused, StoreResult};
use govhub_core::store::{DeliveryBatch, StoreError};
use rusqlite::{params, Connection, OpenFlags};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc::Receiver;

/// A spool file is named `<database file name>.spool.<delivery id>.<process id>.<n>`.
const MARK: &str = ".spool.";
/// The spool's page cache, in KiB (negative: a size). It also bounds the memory of the
/// sort at commit; larger deliveries sort in temporary files.
const CACHE_KIB: i64 = -65_536;

static NEXT: AtomicU64 = AtomicU64::new(0);

fn file_name(db_path: &Path) -> String {
    db_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "govhub.db".into())
}

/// Remove a spool file (and any journal SQLite may have left beside it).
fn remove(path: &Path) {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %Path::new(&p).display(), error = %e, "cannot remove a delivery spool file")
            }
        }
    }
}

/// Remove the spool files of the database `db_path` left by other (stopped) processes;
/// returns how many. Files of this process belong to deliveries in progress and stay.
pub(super) fn remove_stale(db_path: &Path) -> usize {
    let prefix = format!("{}{MARK}", file_name(db_path));
    let own = std::process::id().to_string();
    let dir = match db_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else { return 0 };
    let mut n = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(rest) = name.strip_prefix(&prefix) {
            // rest = "<delivery>.<pid>.<n>", possibly with a journal suffix.
            if rest.split('.').nth(1) != Some(own.as_str()) {
                remove(&e.path());
                n += 1;
            }
        }
    }
    n
}

/// Deletes the spool file when dropped.
struct SpoolFile(PathBuf);

impl Drop for SpoolFile {
    fn drop(&mut self) {
        remove(&self.0);
    }
}

/// How the delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    Commit,
    CommitKeepAbsent,
}

/// A delivery's staged rows. Tables: `rows (seq, c0 … cN-1, hash)` with the typed
/// table's column types (STRICT, so values are stored exactly as the typed table would
/// store them and sort in its key order) and `quarantine (row_no, raw, problems)`.
pub(super) struct Spool {
    /// Declared before the file: closed before the file is removed.
    pub conn: Connection,
    _file: SpoolFile,
    fields: usize,
    /// Valid rows staged.
    pub rows: u64,
    /// Quarantined rows staged.
    pub quarantined: u64,
}

impl Spool {
    /// Create the scratch database next to the main database file `db_path`.
    pub fn create(db_path: &Path, delivery_id: i64, layout: &Layout<'_>) -> StoreResult<Spool> {
        let name = format!(
            "{}{MARK}{delivery_id}.{}.{}",
            file_name(db_path),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let file = SpoolFile(db_path.with_file_name(name));
        remove(&file.0);
        let conn = Connection::open_with_flags(
            &file.0,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        // Disposable: no journal, no fsync, no file-locking round trips.
        conn.pragma_update(None, "journal_mode", "OFF").map_err(db)?;
        conn.pragma_update(None, "synchronous", "OFF").map_err(db)?;
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE").map_err(db)?;
        conn.pragma_update(None, "cache_size", CACHE_KIB).map_err(db)?;
        let cols: String =
            layout.fields().iter().enumerate().map(|(i, f)| format!("c{i} {}, ", column_type(f.field_type))).collect();
        conn.execute_batch(&format!(
            "CREATE TABLE rows (seq INTEGER PRIMARY KEY, {cols}hash TEXT) STRICT;
             CREATE TABLE quarantine (row_no INTEGER, raw TEXT, problems TEXT) STRICT;
             BEGIN;"
        ))
        .map_err(db)?;
        Ok(Spool { conn, _file: file, fields: layout.fields().len(), rows: 0, quarantined: 0 })
    }

    /// Stage batches until the delivery commits. A channel closed without a commit is
    /// an abort: the error is returned (and the spool, dropped, is deleted).
    pub fn receive(&mut self, batches: &mut Receiver<DeliveryBatch>) -> StoreResult<End> {
        let n = self.fields;
        let values: String = (1..=n).map(|i| format!("?{i}, ")).collect();
        let mut insert =
            self.conn.prepare(&format!("INSERT INTO rows VALUES (NULL, {values}?{})", n + 1)).map_err(db)?;
        let mut quarantine = self.conn.prepare("INSERT INTO quarantine VALUES (?1, ?2, ?3)").map_err(db)?;
        let mut hash = String::new();
        let end = loop {
            match batches.blocking_recv() {
                None => return Err(aborted()),
                Some(DeliveryBatch::Commit) => break End::Commit,
                Some(DeliveryBatch::CommitKeepAbsent) => break End::CommitKeepAbsent,
                Some(DeliveryBatch::Quarantine(rows)) => {
                    for q in &rows {
                        quarantine
                            .execute(params![stored_count(q.row), raw_json(q)?, problems_json(q)?])
                            .map_err(db)?;
                    }
                    self.quarantined += rows.len() as u64;
                }
                Some(DeliveryBatch::Rows(rows)) => {
                    for row in &rows {
                        if row.cells.len() != n {
                            return Err(refused(format!(
                                "row {} has {} cells; the dataset has {n} fields",
                                row.row,
                                row.cells.len()
                            )));
                        }
                        for (i, c) in row.cells.iter().enumerate() {
                            insert.raw_bind_parameter(i + 1, Bind(c)).map_err(db)?;
                        }
                        // The typed table keeps the hash as decimal text.
                        hash.clear();
                        write!(hash, "{}", row.hash).map_err(StoreError::backend)?;
                        insert.raw_bind_parameter(n + 1, hash.as_str()).map_err(db)?;
                        insert.raw_execute().map_err(db)?;
                    }
                    self.rows += rows.len() as u64;
                }
            }
        };
        drop(insert);
        drop(quarantine);
        self.conn.execute_batch("COMMIT").map_err(db)?;
        Ok(end)
    }

    /// The staged rows in key order — arrival order among equal keys, so that of a key
    /// delivered twice the last wins, as it would applied in arrival order; arrival
    /// order when the dataset has no primary key: the field columns, then the hash.
    pub fn sorted_sql(&self, layout: &Layout<'_>) -> String {
        let cols: String = (0..self.fields).map(|i| format!("c{i}, ")).collect();
        let key: String = layout.key.iter().map(|k| format!("c{k}, ")).collect();
        format!("SELECT {cols}hash FROM rows ORDER BY {key}seq")
    }
}
