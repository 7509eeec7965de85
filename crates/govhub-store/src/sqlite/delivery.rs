//! SQLite: deliveries, records and the responsibility list.
//!
//! A delivery is applied by one blocking task on the writer connection, in one
//! `BEGIN IMMEDIATE` transaction, while the validator (another thread) goes on
//! reading: batches are upserted row by row with prepared statements, sorted by
//! primary key in runs of [`SORT_ROWS`]. Readers (WAL) see the dataset as it was until
//! the commit.

use super::{collect, db, ddl, ts, Inner, SqliteStore, Ts};
use crate::delivery::*;
use crate::records::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use govhub_core::cells::Cell;
use govhub_core::delivery::{DeliveryMode, DeliveryReport, QuarantinedRow, ValidRow};
use govhub_core::model::*;
use govhub_core::names::DatasetCode;
use govhub_core::store::{ApplyOutcome, DeliveryBatch, DeliveryQuery, DeliveryStore, NewDelivery, StoreError};
use roaring::RoaringTreemap;
use rusqlite::types::{ToSql, ToSqlOutput, Value, ValueRef};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, TransactionBehavior};
use std::time::Instant;
use tokio::sync::mpsc::Receiver;

/// A cell bound as its STRICT column type: text forms as TEXT (timestamps with six
/// fractional digits, so text order is time order), integers, reals, booleans as 0/1.
pub(super) struct Bind<'a>(pub(super) &'a Cell);

fn bind(c: &Cell) -> ToSqlOutput<'_> {
    bound_as_itself(c).unwrap_or_else(|| {
        let mut s = String::new();
        write_stored_text(c, &mut s);
        ToSqlOutput::Owned(Value::Text(s))
    })
}

/// A cell SQLite stores as the value itself (texts, numbers, booleans, nulls); `None`
/// for one stored as a text written by [`write_stored_text`].
fn bound_as_itself(c: &Cell) -> Option<ToSqlOutput<'_>> {
    Some(match c {
        Cell::Null => ToSqlOutput::Owned(Value::Null),
        Cell::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        Cell::Int(i) => ToSqlOutput::Owned(Value::Integer(*i)),
        Cell::Num(n) => ToSqlOutput::Owned(Value::Real(*n)),
        Cell::Bool(b) => ToSqlOutput::Owned(Value::Integer(i64::from(*b))),
        _ => return None,
    })
}

/// The text SQLite stores a date, time, timestamp or JSON cell as.
fn write_stored_text(c: &Cell, out: &mut String) {
    match c {
        Cell::DateTime(t) => super::write_ts(out, *t),
        other => other.write_text(out),
    }
}

impl ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(bind(self.0))
    }
}

impl ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Arg::Cell(c, _) => Ok(bind(c)),
            Arg::Time(t) => Ok(ToSqlOutput::Owned(Value::Text(ts(*t)))),
            Arg::Int(i) => Ok(ToSqlOutput::Owned(Value::Integer(*i))),
        }
    }
}

fn placeholder(n: usize, _: &Arg) -> String {
    format!("?{n}")
}

fn select(_: govhub_core::schema::FieldType, col: &str) -> String {
    col.to_string()
}

fn prefix(col: &str, p: &str) -> String {
    format!("substr(CAST({col} AS TEXT), 1, length({p})) = {p}")
}

fn null(_: govhub_core::schema::FieldType) -> String {
    "NULL".to_string()
}

pub(crate) const DIALECT: ReadDialect =
    ReadDialect { placeholder, select, null, text_order: "", prefix, false_literal: "0" };

/// Read a stored field value back as a typed cell.
fn cell(r: &Row<'_>, i: usize, k: Kind) -> StoreResult<Cell> {
    let v = r.get_ref(i).map_err(db)?;
    Ok(match (k, v) {
        (_, ValueRef::Null) => Cell::Null,
        (Kind::Int, ValueRef::Integer(n)) => Cell::Int(n),
        (Kind::Num, ValueRef::Real(x)) => Cell::Num(x),
        (Kind::Num, ValueRef::Integer(n)) => Cell::Num(n as f64),
        (Kind::Bool, ValueRef::Integer(n)) => Cell::Bool(n != 0),
        (k, ValueRef::Text(t)) => cell_from_text(k, String::from_utf8_lossy(t).into_owned())?,
        (k, other) => {
            return Err(StoreError::Corrupt(format!(
                "column {i} holds a {:?} value where a {k:?} was expected",
                other.data_type()
            )))
        }
    })
}

fn cells(r: &Row<'_>, layout: &Layout<'_>) -> StoreResult<Vec<Cell>> {
    layout.fields().iter().enumerate().map(|(i, f)| cell(r, i, kind(f.field_type))).collect()
}

/// A row selected with [`record_select`].
fn record(r: &Row<'_>, layout: &Layout<'_>) -> StoreResult<Record> {
    let n = layout.fields().len();
    Ok(Record {
        cells: cells(r, layout)?,
        version: r.get(n).map_err(db)?,
        delivery_id: r.get(n + 1).map_err(db)?,
        updated_at: r.get::<_, Ts>(n + 2).map_err(db)?.0,
        deleted: r.get::<_, i64>(n + 3).map_err(db)? != 0,
    })
}

/// A row selected with [`history_select`].
fn version(r: &Row<'_>, layout: &Layout<'_>) -> StoreResult<RecordVersion> {
    let n = layout.fields().len();
    Ok(RecordVersion {
        cells: cells(r, layout)?,
        version: r.get(n).map_err(db)?,
        op: parse_op(&r.get::<_, String>(n + 1).map_err(db)?)?,
        delivery_id: r.get(n + 2).map_err(db)?,
        valid_from: r.get::<_, Ts>(n + 3).map_err(db)?.0,
        valid_to: Some(r.get::<_, Ts>(n + 4).map_err(db)?.0),
    })
}

fn rows<T>(c: &Connection, sql: &Sql<'_>, read: impl Fn(&Row<'_>) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    let mut stmt = c.prepare_cached(&sql.text).map_err(db)?;
    let mut rs = stmt.query(params_from_iter(sql.args.iter())).map_err(db)?;
    let mut out = Vec::new();
    while let Some(r) = rs.next().map_err(db)? {
        out.push(read(r)?);
    }
    Ok(out)
}

pub(super) fn table_exists(c: &Connection, name: &str) -> StoreResult<bool> {
    c.query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", [name], |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
        .map_err(db)
}

fn delivery_row(r: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    let mut counts = [0i64; 9];
    for (i, c) in counts.iter_mut().enumerate() {
        *c = r.get(8 + i)?;
    }
    Ok(DeliveryRow {
        id: r.get(0)?,
        dataset: r.get(1)?,
        status: r.get(2)?,
        mode: r.get(3)?,
        format: r.get(4)?,
        encoding: r.get(5)?,
        schema_version: r.get(6)?,
        submitted_by: r.get(7)?,
        counts,
        started_at: r.get::<_, Ts>(17)?.0,
        finished_at: r.get::<_, Option<Ts>>(18)?.map(|t| t.0),
        error_code: r.get(19)?,
        error_message: r.get(20)?,
        error_message_zh: r.get(21)?,
    })
}

/// The change-feed query of one delivery (see [`crate::delivery::changes_sql`]).
pub(super) fn changes_sql_for<'d>(
    layout: &Layout<'_>,
    delivery: i64,
    after: Option<&govhub_core::sharing::ChangePosition>,
    limit: u32,
    history: bool,
) -> StoreResult<Sql<'d>> {
    changes_sql(&DIALECT, layout, delivery, after, limit, history)
}

/// A row of [`changes_sql_for`].
pub(super) fn change_row(
    r: &Row<'_>,
    layout: &Layout<'_>,
    commit_seq: i64,
    delivery_id: i64,
) -> StoreResult<govhub_core::sharing::Change> {
    let n = layout.fields().len();
    Ok(govhub_core::sharing::Change {
        commit_seq,
        delivery_id,
        cells: cells(r, layout)?,
        version: r.get(n).map_err(db)?,
        op: r.get(n + 1).map_err(db)?,
        at: r.get::<_, Ts>(n + 2).map_err(db)?.0,
    })
}

// ------------------------------------------------------------------ applying

/// Rows sorted together before they are written: writing in key order keeps the
/// primary-key index's pages hot (PERFORMANCE.md: the largest single gain).
const SORT_ROWS: usize = 65_536;

/// A rowid as a member of a [`RoaringTreemap`] (order-preserving: negative rowids,
/// possible when an INTEGER primary key is the rowid, come first).
fn member(rowid: i64) -> u64 {
    (rowid as u64) ^ (1 << 63)
}

/// The current records of a table, for a large re-delivery to recognise its unchanged
/// rows without a key lookup each (≈ 2 µs a row on the writer; reading the table costs
/// ≈ 0.5 µs a record). Each record is kept as its 64-bit content hash, 32 bits of a
/// keyed digest of its key and its rowid (as an offset from the smallest): 16 bytes of
/// writer memory a record. A row counts as unchanged when its content hash and key
/// digest both match a record not yet touched by the delivery — the standard the typed
/// table's `_hash` already sets (a changed row with the same 64-bit hash is missed);
/// the content hash covers the key, so a row matching another key's record needs a
/// 96-bit coincidence. Anything else takes the lookup. Loaded once a delivery has
/// brought [`CURRENT_AFTER`] of the table's size.
struct Current {
    /// `(spread(content hash), (key digest, rowid - base))`.
    records: CurrentRecords<(u32, u32)>,
    base: i64,
    digest: std::collections::hash_map::RandomState,
}

/// Records of a table beyond which a re-delivery looks every key up (memory: 16 bytes
/// a record; rowid offsets are 32 bits).
const CURRENT_MAX: i64 = 4_500_000;

/// The share of a table's records (1/n) a delivery must have brought before the
/// writer reads the whole table: a small delivery into a large table looks its keys up.
const CURRENT_AFTER: i64 = 16;

/// Key cells digested as the values SQLite stores (a cell is bound as its STRICT
/// column type and read back as the same value).
fn digest_value(h: &mut impl std::hash::Hasher, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => h.write_u8(0),
        ValueRef::Integer(i) => {
            h.write_u8(1);
            h.write_i64(i);
        }
        ValueRef::Real(f) => {
            h.write_u8(2);
            h.write_u64(f.to_bits());
        }
        ValueRef::Text(t) => {
            h.write_u8(3);
            h.write_usize(t.len());
            h.write(t);
        }
        ValueRef::Blob(b) => {
            h.write_u8(4);
            h.write_usize(b.len());
            h.write(b);
        }
    }
}

impl Current {
    /// Read the table's current records (at most [`CURRENT_MAX`], else `None`).
    fn load(conn: &Connection, layout: &Layout<'_>) -> StoreResult<Option<Current>> {
        use std::hash::BuildHasher;
        let t = &layout.table;
        // Rowids are dense (records are marked deleted, never removed): their range is
        // room enough, reserved at once so the vector never holds two copies of itself.
        let (base, top): (i64, i64) = conn
            .query_row(&format!("SELECT COALESCE(MIN(rowid), 0), COALESCE(MAX(rowid), 0) FROM {t}"), [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(db)?;
        let room = top.saturating_sub(base).saturating_add(1);
        if room > CURRENT_MAX {
            return Ok(None);
        }
        let keys = layout.key_columns("");
        let mut scan = conn
            .prepare(&format!("SELECT rowid, \"_hash\", {} FROM {t} WHERE \"_deleted\" = 0", keys.join(", ")))
            .map_err(db)?;
        let digest = std::collections::hash_map::RandomState::new();
        let mut records = CurrentRecords::with_capacity(usize::try_from(room).unwrap_or(0));
        let mut rows = scan.raw_query();
        while let Some(r) = rows.next().map_err(db)? {
            let hash = r
                .get_ref(1)
                .map_err(db)?
                .as_str()
                .ok()
                .and_then(|h| h.parse::<i64>().ok())
                .ok_or_else(|| StoreError::Corrupt(format!("{t} holds a _hash that is not a number")))?;
            let mut h = digest.build_hasher();
            for i in 0..keys.len() {
                digest_value(&mut h, r.get_ref(i + 2).map_err(db)?);
            }
            let Ok(offset) = u32::try_from(r.get::<_, i64>(0).map_err(db)? - base) else {
                return Ok(None);
            };
            records.push(spread(hash), (std::hash::Hasher::finish(&h) as u32, offset));
        }
        Ok(Some(Current { records: records.index(), base, digest }))
    }

    /// The rowid of the untouched current record `row` repeats unchanged, if any.
    fn unchanged(&self, row: &ValidRow, digest: u64) -> Option<i64> {
        self.records
            .find(spread(row.hash), |&(d, _)| d == digest as u32)
            .map(|(_, offset)| self.base + i64::from(offset))
    }

    /// The digest of `row`'s key.
    fn digest(&self, row: &ValidRow, key: &[usize]) -> Option<u64> {
        use std::hash::BuildHasher;
        let mut h = self.digest.build_hasher();
        for &k in key {
            match bind(row.cells.get(k)?) {
                ToSqlOutput::Borrowed(v) => digest_value(&mut h, v),
                ToSqlOutput::Owned(v) => digest_value(&mut h, ValueRef::from(&v)),
                _ => return None,
            }
        }
        Some(std::hash::Hasher::finish(&h))
    }
}

/// The statements of one delivery.
struct Writer<'c> {
    conn: &'c Connection,
    select: rusqlite::Statement<'c>,
    insert: rusqlite::Statement<'c>,
    history: rusqlite::Statement<'c>,
    update: rusqlite::Statement<'c>,
    quarantine: rusqlite::Statement<'c>,
    /// Rows this delivery has inserted, updated or found unchanged: a key found among
    /// them was delivered twice, and in a snapshot every other current row is deleted.
    /// A few bits a row (the reader keeps no set of keys: its memory stays flat).
    touched: RoaringTreemap,
    /// The delivered column labels by field, for the rows quarantined here.
    labels: Vec<String>,
    /// The table was empty when the delivery began: insert first, look up only on a
    /// key conflict (a key delivered twice).
    insert_first: bool,
    /// The table's current records, once the delivery has brought enough rows.
    current: Option<Current>,
    /// Rows received, and how many must have been before the current records are read
    /// (`None` once they were, or when the table was empty, keyless or too large).
    received: u64,
    load_current_after: Option<u64>,
    /// Digests of the keys of the rows waiting to be written, once the current records
    /// are read.
    pending_keys: std::collections::HashSet<u64>,
    id: i64,
    at: String,
    hash: String,
    scratch: String,
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::ConstraintViolation))
        && matches!(
            e,
            rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        )
}

impl Writer<'_> {
    /// Bind a row's cells and content hash (the delivery id and time, the same for
    /// every row, were bound once). Cells stored as a written text go through
    /// `scratch` (SQLite copies a bound text) instead of a new string each.
    fn bind_row(
        stmt: &mut rusqlite::Statement<'_>,
        row: &ValidRow,
        hash: &str,
        scratch: &mut String,
    ) -> StoreResult<()> {
        let n = row.cells.len();
        for (i, c) in row.cells.iter().enumerate() {
            match bound_as_itself(c) {
                Some(v) => stmt.raw_bind_parameter(i + 1, v).map_err(db)?,
                None => {
                    scratch.clear();
                    write_stored_text(c, scratch);
                    stmt.raw_bind_parameter(i + 1, scratch.as_str()).map_err(db)?;
                }
            }
        }
        stmt.raw_bind_parameter(n + 1, hash).map_err(db)?;
        Ok(())
    }

    /// Insert a new record; `Ok(false)` when its key already exists.
    fn try_insert(&mut self, row: &ValidRow) -> StoreResult<bool> {
        Self::bind_row(&mut self.insert, row, &self.hash, &mut self.scratch)?;
        match self.insert.raw_execute() {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(db(e)),
        }
    }

    /// Upsert one valid row by key: insert, leave unchanged (same content hash) or
    /// keep the previous version in the history and update in place.
    fn merge(&mut self, layout: &Layout<'_>, row: &ValidRow, out: &mut ApplyOutcome) -> StoreResult<()> {
        use std::fmt::Write as _;
        if row.cells.len() != layout.fields().len() {
            return Err(refused(format!(
                "row {} has {} cells; the dataset has {} fields",
                row.row,
                row.cells.len(),
                layout.fields().len()
            )));
        }
        // The typed table keeps the hash as decimal text.
        self.hash.clear();
        write!(self.hash, "{}", row.hash).map_err(StoreError::backend)?;
        if !layout.has_pk() {
            Self::bind_row(&mut self.insert, row, &self.hash, &mut self.scratch)?;
            self.insert.raw_execute().map_err(db)?;
            out.inserted += 1;
            return Ok(());
        }
        if self.insert_first && self.try_insert(row)? {
            self.touched.insert(member(self.conn.last_insert_rowid()));
            out.inserted += 1;
            return Ok(());
        }
        for (j, &k) in layout.key.iter().enumerate() {
            self.select.raw_bind_parameter(j + 1, Bind(&row.cells[k])).map_err(db)?;
        }
        let found = {
            let mut rs = self.select.raw_query();
            match rs.next().map_err(db)? {
                Some(x) => {
                    let same = x.get_ref(1).map_err(db)?.as_str().ok() == Some(self.hash.as_str());
                    Some((x.get::<_, i64>(0).map_err(db)?, same && x.get::<_, i64>(2).map_err(db)? == 0))
                }
                None => None,
            }
        };
        match found {
            Some((rowid, _)) if self.touched.contains(member(rowid)) => {
                // Delivered twice: the later row (written last) goes to the quarantine.
                let q = govhub_core::delivery::repeated_key(layout.schema, &self.labels, row.clone());
                self.quarantine
                    .execute(params![self.id, stored_count(q.row), raw_json(&q)?, problems_json(&q)?])
                    .map_err(db)?;
                out.quarantined += 1;
                out.repeated += 1;
                out.repeated_warnings += row.warnings.len() as u64;
            }
            None => {
                Self::bind_row(&mut self.insert, row, &self.hash, &mut self.scratch)?;
                self.insert.raw_execute().map_err(db)?;
                self.touched.insert(member(self.conn.last_insert_rowid()));
                out.inserted += 1;
            }
            Some((rowid, true)) => {
                self.touched.insert(member(rowid));
                out.unchanged += 1;
            }
            Some((rowid, false)) => {
                self.touched.insert(member(rowid));
                self.history.execute(params![rowid, self.at]).map_err(db)?;
                Self::bind_row(&mut self.update, row, &self.hash, &mut self.scratch)?;
                self.update.raw_bind_parameter(row.cells.len() + 4, rowid).map_err(db)?;
                self.update.raw_execute().map_err(db)?;
                out.updated += 1;
            }
        }
        Ok(())
    }

    /// Snapshot: mark deleted the current records this delivery neither wrote nor
    /// found unchanged — one scan for the rows it did not write, checked against
    /// `touched` — keeping their last versions in the history.
    fn delete_absent(&mut self, table: &str) -> StoreResult<u64> {
        let absent: Vec<i64> = {
            let mut scan = self
                .conn
                .prepare(&format!("SELECT rowid FROM {table} WHERE \"_deleted\" = 0 AND \"_delivery_id\" IS NOT ?1"))
                .map_err(db)?;
            let rowids = scan.query_map([self.id], |r| r.get::<_, i64>(0)).map_err(db)?;
            let mut absent = Vec::new();
            for r in rowids {
                let r = r.map_err(db)?;
                if !self.touched.contains(member(r)) {
                    absent.push(r);
                }
            }
            absent
        };
        let mut delete = self
            .conn
            .prepare(&format!(
                "UPDATE {table} SET \"_deleted\" = 1, \"_version\" = \"_version\" + 1, \"_delivery_id\" = ?2, \
                 \"_updated_at\" = ?3 WHERE rowid = ?1"
            ))
            .map_err(db)?;
        for &rowid in &absent {
            self.history.execute(params![rowid, self.at]).map_err(db)?;
            delete.execute(params![rowid, self.id, self.at]).map_err(db)?;
        }
        Ok(absent.len() as u64)
    }

    /// Once the current records are read: count the rows that repeat one unchanged as
    /// they arrive (in arrival order, without sorting or looking them up) and return
    /// the others, to be written. A row whose key an earlier row still waiting to be
    /// written has waits with it, so the earlier row is still the one kept.
    fn settle_unchanged(&mut self, layout: &Layout<'_>, rows: Vec<ValidRow>, out: &mut ApplyOutcome) -> Vec<ValidRow> {
        let Some(current) = &self.current else {
            return rows;
        };
        let mut rest = Vec::new();
        for row in rows {
            let digest = current.digest(&row, &layout.key);
            if let Some(d) = digest.filter(|d| !self.pending_keys.contains(d)) {
                if let Some(rowid) = current.unchanged(&row, d) {
                    if !self.touched.contains(member(rowid)) {
                        self.touched.insert(member(rowid));
                        out.unchanged += 1;
                        continue;
                    }
                }
            }
            // Keys that take no digest wait with everything else.
            self.pending_keys.insert(digest.unwrap_or(0));
            rest.push(row);
        }
        rest
    }

    /// Write the pending rows in key order (ties in arrival order: of a key delivered
    /// twice, the earlier row is written and the later one quarantined). Sorts
    /// positions, not rows.
    fn write_sorted(
        &mut self,
        layout: &Layout<'_>,
        pending: &mut Vec<ValidRow>,
        out: &mut ApplyOutcome,
    ) -> StoreResult<()> {
        let order: Vec<usize> =
            if layout.has_pk() { key_order(&layout.key, pending) } else { (0..pending.len()).collect() };
        for i in order {
            self.merge(layout, &pending[i], out)?;
        }
        pending.clear();
        self.pending_keys.clear();
        Ok(())
    }

    /// Take `rows` in: once the delivery has brought enough of the table's size, read
    /// the current records and settle the rows still waiting to be written with them
    /// (in arrival order, before `rows`), so those need no lookup either.
    fn receive(
        &mut self,
        layout: &Layout<'_>,
        pending: &mut Vec<ValidRow>,
        rows: Vec<ValidRow>,
        out: &mut ApplyOutcome,
    ) -> StoreResult<()> {
        self.received += rows.len() as u64;
        if self.load_current_after.is_some_and(|n| self.received >= n) {
            self.load_current_after = None;
            let loading = Instant::now();
            self.current = Current::load(self.conn, layout)?;
            tracing::debug!(
                delivery = self.id,
                records = self.current.as_ref().map(|c| c.records.len()),
                ms = loading.elapsed().as_millis() as u64,
                "current records read"
            );
            let waiting = std::mem::take(pending);
            *pending = self.settle_unchanged(layout, waiting, out);
        }
        let mut rows = self.settle_unchanged(layout, rows, out);
        if pending.is_empty() {
            *pending = rows;
            pending.reserve(SORT_ROWS.saturating_sub(pending.len()));
        } else {
            pending.append(&mut rows);
        }
        if pending.len() >= SORT_ROWS {
            self.write_sorted(layout, pending, out)?;
        }
        Ok(())
    }
}

/// Apply a delivery in one `BEGIN IMMEDIATE` transaction on the writer connection:
/// batches are written as they arrive, in key order within every [`SORT_ROWS`] rows,
/// so reading and validating (the other thread) overlaps with writing. Readers (WAL)
/// see the dataset as it was until the commit; a crash or an abort rolls it all back.
///
/// The writer is taken when the first batch arrives, so a delivery refused at its
/// header never locks anything. Deliveries over HTTP arrive from a file the server
/// has staged the upload in, so a slow client never holds the writer either.
fn apply(
    inner: &Inner,
    d: &Dataset,
    id: i64,
    mode: DeliveryMode,
    at: DateTime<Utc>,
    batches: &mut Receiver<DeliveryBatch>,
) -> StoreResult<ApplyOutcome> {
    let started = Instant::now();
    let layout = Layout::new(d)?;
    let mut next = batches.blocking_recv();
    let mut out = ApplyOutcome::default();

    let mut conn = inner.writer();
    let locked = started.elapsed();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
    tx.execute_batch(&ddl::create_history_table(&d.table_name, &d.schema, true)).map_err(db)?;
    // The typed table's change index is created at the end: built once, sorted, after
    // a first load instead of row by row (later deliveries maintain it).
    tx.execute_batch(&change_index(&layout, &d.table_name, true)).map_err(db)?;
    let n = layout.fields().len();
    let (t, h) = (&layout.table, &layout.history);
    let fields = layout.field_list("");
    let data = layout.history_data_columns("");
    let values: Vec<String> = (1..=n).map(|i| format!("?{i}")).collect();
    let key_cond: Vec<String> =
        layout.key_columns("").iter().enumerate().map(|(j, c)| format!("{c} = ?{}", j + 1)).collect();
    let sets: Vec<String> = layout
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{} = ?{}", crate::ddl::quote_ident(&f.name), i + 1))
        .collect();
    let at_text = ts(at);
    {
        let empty: bool =
            tx.query_row(&format!("SELECT NOT EXISTS (SELECT 1 FROM {t})"), [], |r| r.get(0)).map_err(db)?;
        let load_current_after = if empty || !layout.has_pk() {
            None
        } else {
            let top: i64 =
                tx.query_row(&format!("SELECT MAX(rowid) - MIN(rowid) + 1 FROM {t}"), [], |r| r.get(0)).map_err(db)?;
            (top <= CURRENT_MAX).then(|| u64::try_from(top / CURRENT_AFTER).unwrap_or(0))
        };

        let mut w = Writer {
            conn: &tx,
            select: tx
                .prepare(&format!(
                    "SELECT rowid, \"_hash\", \"_deleted\" FROM {t} WHERE {}",
                    if key_cond.is_empty() { "0".to_string() } else { key_cond.join(" AND ") }
                ))
                .map_err(db)?,
            insert: tx
                .prepare(&format!(
                    "INSERT INTO {t} ({fields}, \"_version\", \"_hash\", \"_delivery_id\", \"_updated_at\", \"_deleted\") \
                     VALUES ({}, 1, ?{}, ?{}, ?{}, 0)",
                    values.join(", "),
                    n + 1,
                    n + 2,
                    n + 3
                ))
                .map_err(db)?,
            history: tx
                .prepare(&format!(
                    "INSERT INTO {h} ({data}, \"_version\", \"_op\", \"_delivery_id\", \"_valid_from\", \"_valid_to\") \
                     SELECT {data}, \"_version\", {}, \"_delivery_id\", \"_updated_at\", ?2 FROM {t} WHERE rowid = ?1",
                    op_case("")
                ))
                .map_err(db)?,
            update: tx
                .prepare(&format!(
                    "UPDATE {t} SET {}, \"_version\" = \"_version\" + 1, \"_hash\" = ?{}, \"_delivery_id\" = ?{}, \
                     \"_updated_at\" = ?{}, \"_deleted\" = 0 WHERE rowid = ?{}",
                    sets.join(", "),
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4
                ))
                .map_err(db)?,
            quarantine: tx
                .prepare("INSERT INTO delivery_quarantine (delivery_id, row_no, raw, problems) VALUES (?1, ?2, ?3, ?4)")
                .map_err(db)?,
            touched: RoaringTreemap::new(),
            labels: layout.fields().iter().map(|f| f.name.clone()).collect(),
            insert_first: empty,
            current: None,
            received: 0,
            load_current_after,
            pending_keys: std::collections::HashSet::new(),
            id,
            at: at_text.clone(),
            hash: String::new(),
            scratch: String::new(),
        };
        // The delivery and its time are the same for every row: bound once (a reset
        // statement keeps its bindings).
        for stmt in [&mut w.insert, &mut w.update] {
            stmt.raw_bind_parameter(n + 2, id).map_err(db)?;
            stmt.raw_bind_parameter(n + 3, at_text.as_str()).map_err(db)?;
        }
        let mut pending: Vec<ValidRow> = Vec::new();
        let mut starved = std::time::Duration::ZERO;
        let end = loop {
            match next {
                None => return Err(aborted()),
                Some(DeliveryBatch::Commit) => break DeliveryBatch::Commit,
                Some(DeliveryBatch::CommitKeepAbsent) => break DeliveryBatch::CommitKeepAbsent,
                Some(DeliveryBatch::Labels(labels)) => w.labels = labels,
                Some(DeliveryBatch::Quarantine(rows)) => {
                    for q in &rows {
                        w.quarantine
                            .execute(params![id, stored_count(q.row), raw_json(q)?, problems_json(q)?])
                            .map_err(db)?;
                    }
                    out.quarantined += rows.len() as u64;
                }
                Some(DeliveryBatch::Rows(rows)) => w.receive(&layout, &mut pending, rows, &mut out)?,
            }
            let waiting = Instant::now();
            next = batches.blocking_recv();
            starved += waiting.elapsed();
        };
        w.write_sorted(&layout, &mut pending, &mut out)?;
        tracing::debug!(delivery = id, starved_ms = starved.as_millis() as u64, "delivery written");
        if matches!(end, DeliveryBatch::Commit) && mode == DeliveryMode::Snapshot {
            out.deleted = w.delete_absent(t)?;
        }
    }
    let indexing = Instant::now();
    tx.execute_batch(&change_index(&layout, &d.table_name, false)).map_err(db)?;
    let indexed = indexing.elapsed();
    // The delivery's place in its dataset's change feed (one writer: no race).
    tx.execute(
        "UPDATE deliveries SET commit_seq = (SELECT COALESCE(MAX(commit_seq), 0) + 1 FROM deliveries WHERE dataset = ?2)
         WHERE id = ?1",
        params![id, d.code.as_str()],
    )
    .map_err(db)?;
    let committing = Instant::now();
    tx.commit().map_err(db)?;
    // The checkpointer copies the delivery's pages into the database file now, not at
    // its next round.
    inner.checkpointer.nudge();
    tracing::debug!(
        delivery = id,
        index_ms = indexed.as_millis() as u64,
        commit_ms = committing.elapsed().as_millis() as u64,
        "delivery committed"
    );
    tracing::debug!(
        delivery = id,
        inserted = out.inserted,
        updated = out.updated,
        unchanged = out.unchanged,
        quarantined = out.quarantined,
        wait_ms = locked.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "delivery applied"
    );
    Ok(out)
}

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn begin_delivery(&self, delivery: &NewDelivery) -> StoreResult<i64> {
        let d = delivery.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO deliveries (dataset, schema_version, mode, format, encoding, status, submitted_by, org,
                     file_name, started_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8, ?9)",
                params![
                    d.dataset.as_str(),
                    d.schema_version,
                    d.mode.as_str(),
                    d.format,
                    d.encoding,
                    d.submitted_by,
                    d.org.as_str(),
                    d.file_name,
                    ts(d.started_at),
                ],
            )
            .map_err(db)?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    async fn apply_delivery(
        &self,
        dataset: &Dataset,
        delivery_id: i64,
        mode: DeliveryMode,
        at: DateTime<Utc>,
        mut batches: Receiver<DeliveryBatch>,
    ) -> StoreResult<ApplyOutcome> {
        let d = dataset.clone();
        let at = micros(at);
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || apply(&inner, &d, delivery_id, mode, at, &mut batches))
            .await
            .map_err(StoreError::backend)?
    }

    async fn finish_delivery(&self, report: &DeliveryReport) -> StoreResult<()> {
        let r = report.clone();
        self.write(move |c| {
            let k = report_counts(&r);
            let n = c
                .execute(
                    "UPDATE deliveries SET status = ?2, mode = ?3, format = ?4, encoding = ?5, schema_version = ?6,
                         submitted_by = ?7, rows_read = ?8, rows_accepted = ?9, rows_inserted = ?10,
                         rows_updated = ?11, rows_unchanged = ?12, rows_quarantined = ?13, warnings = ?14,
                         rows_deleted = ?15, duration_ms = ?16, started_at = ?17, finished_at = ?18,
                         error_code = ?19, error_message = ?20, error_message_zh = ?21
                     WHERE id = ?1",
                    params![
                        r.id,
                        r.status.as_str(),
                        r.mode.as_str(),
                        r.format,
                        r.encoding,
                        r.schema_version,
                        r.submitted_by,
                        k[0],
                        k[1],
                        k[2],
                        k[3],
                        k[4],
                        k[5],
                        k[6],
                        k[7],
                        k[8],
                        ts(r.started_at),
                        r.finished_at.map(ts),
                        r.error.as_ref().map(|e| e.code.as_str()),
                        r.error.as_ref().map(|e| e.message.as_str()),
                        r.error.as_ref().map(|e| e.message_zh.as_str()),
                    ],
                )
                .map_err(db)?;
            if n == 0 {
                Err(StoreError::NotFound { what: "delivery" })
            } else {
                Ok(())
            }
        })
        .await
    }

    async fn get_delivery(&self, id: i64) -> StoreResult<Option<DeliveryReport>> {
        self.read(move |c| {
            c.query_row(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"), [id], delivery_row)
                .optional()
                .map_err(db)?
                .map(DeliveryRow::into_report)
                .transpose()
        })
        .await
    }

    async fn list_deliveries(&self, query: &DeliveryQuery) -> StoreResult<Vec<DeliveryReport>> {
        let mut clauses: Vec<&str> = Vec::new();
        let mut args: Vec<Value> = Vec::new();
        if let Some(d) = &query.dataset {
            clauses.push("dataset = ?");
            args.push(Value::Text(d.as_str().into()));
        }
        if let Some(s) = query.status {
            clauses.push("status = ?");
            args.push(Value::Text(s.as_str().into()));
        }
        if let Some(b) = query.before_id {
            clauses.push("id < ?");
            args.push(Value::Integer(b));
        }
        args.push(Value::Integer(effective_limit(query.limit)));
        let filter = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
        self.read(move |c| {
            collect(
                c,
                &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries{filter} ORDER BY id DESC LIMIT ?"),
                params_from_iter(args.iter()),
                delivery_row,
                DeliveryRow::into_report,
            )
        })
        .await
    }

    async fn list_quarantine(&self, delivery_id: i64, offset: u64, limit: u32) -> StoreResult<Page<QuarantinedRow>> {
        let offset = stored_count(offset);
        let limit = effective_limit(limit);
        self.read(move |c| {
            let tx = c.unchecked_transaction().map_err(db)?;
            let total: i64 = tx
                .query_row("SELECT COUNT(*) FROM delivery_quarantine WHERE delivery_id = ?1", [delivery_id], |r| {
                    r.get(0)
                })
                .map_err(db)?;
            let items = collect(
                &tx,
                "SELECT row_no, raw, problems FROM delivery_quarantine WHERE delivery_id = ?1
                 ORDER BY row_no, rowid LIMIT ?2 OFFSET ?3",
                params![delivery_id, limit, offset],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)),
                |(row, raw, problems)| quarantined_row(row, &raw, &problems),
            )?;
            tx.finish().map_err(db)?;
            Ok(Page { items, total: total.max(0) as u64 })
        })
        .await
    }

    async fn fail_interrupted_deliveries(&self, at: DateTime<Utc>) -> StoreResult<u64> {
        self.write(move |c| {
            c.execute(
                "UPDATE deliveries SET status = 'failed', finished_at = ?1, error_code = ?2, error_message = ?3,
                     error_message_zh = ?4
                 WHERE status = 'running'",
                params![ts(at), INTERRUPTED_CODE, INTERRUPTED_EN, INTERRUPTED_ZH],
            )
            .map(|n| n as u64)
            .map_err(db)
        })
        .await
    }

    async fn get_record(&self, dataset: &Dataset, key: &[Cell]) -> StoreResult<Option<Record>> {
        let d = dataset.clone();
        let key = key.to_vec();
        self.read_now(move |c| {
            let layout = Layout::new(&d)?;
            let sql = get_record_sql(&DIALECT, &layout, &key)?;
            Ok(rows(c, &sql, |r| record(r, &layout))?.into_iter().next())
        })
        .await
    }

    async fn shared_record(
        &self,
        dataset: &std::sync::Arc<Dataset>,
        key: &[Cell],
        fields: &[usize],
    ) -> StoreResult<(Option<Record>, i64)> {
        let d = std::sync::Arc::clone(dataset);
        let key = key.to_vec();
        let text = self.shared_record_text(dataset, &key, fields)?;
        self.read_now(move |c| {
            let layout = Layout::new(&d)?;
            let args = layout.key_args(&key)?;
            let n = layout.fields().len();
            let mut stmt = c.prepare_cached(&text).map_err(db)?;
            let mut rs = stmt.query(params_from_iter(args.iter())).map_err(db)?;
            let r =
                rs.next().map_err(db)?.ok_or_else(|| StoreError::Corrupt("sharing_generation has no row".into()))?;
            let generation: i64 = r.get(n + 4).map_err(db)?;
            let found = match r.get::<_, Option<i64>>(n).map_err(db)? {
                Some(_) => Some(record(r, &layout)?),
                None => None,
            };
            Ok((found, generation))
        })
        .await
    }

    async fn query_records(&self, dataset: &Dataset, query: &RecordQuery) -> StoreResult<Vec<Record>> {
        let d = dataset.clone();
        let q = query.clone();
        self.read(move |c| {
            let layout = Layout::new(&d)?;
            let tx = c.unchecked_transaction().map_err(db)?;
            let history = q.as_of.is_some() && table_exists(&tx, &layout.history_name)?;
            let sql = query_sql(&DIALECT, &layout, &q, history)?;
            let out = rows(&tx, &sql, |r| record(r, &layout))?;
            tx.finish().map_err(db)?;
            Ok(out)
        })
        .await
    }

    async fn record_history(&self, dataset: &Dataset, key: &[Cell]) -> StoreResult<Vec<RecordVersion>> {
        let d = dataset.clone();
        let key = key.to_vec();
        self.read(move |c| {
            let layout = Layout::new(&d)?;
            let tx = c.unchecked_transaction().map_err(db)?;
            let mut out = if table_exists(&tx, &layout.history_name)? {
                rows(&tx, &history_sql(&DIALECT, &layout, &key)?, |r| version(r, &layout))?
            } else {
                Vec::new()
            };
            let current = rows(&tx, &get_record_sql(&DIALECT, &layout, &key)?, |r| record(r, &layout))?;
            tx.finish().map_err(db)?;
            out.extend(current.into_iter().map(|r| RecordVersion {
                version: r.version,
                op: op_of(r.deleted, r.version),
                cells: r.cells,
                delivery_id: r.delivery_id,
                valid_from: r.updated_at,
                valid_to: None,
            }));
            Ok(out)
        })
        .await
    }

    async fn put_responsibility(&self, r: &Responsibility) -> StoreResult<()> {
        let r = r.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO responsibilities (dataset, org, cycle, note, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (dataset) DO UPDATE SET org = excluded.org, cycle = excluded.cycle,
                     note = excluded.note, created_by = excluded.created_by, created_at = excluded.created_at",
                params![r.dataset.as_str(), r.org.as_str(), r.cycle.as_str(), r.note, r.created_by, ts(r.created_at)],
            )
            .map(|_| ())
            .map_err(db)
        })
        .await
    }

    async fn delete_responsibility(&self, dataset: &DatasetCode) -> StoreResult<bool> {
        let code = dataset.as_str().to_string();
        self.write(move |c| {
            c.execute("DELETE FROM responsibilities WHERE dataset = ?1", [&code]).map(|n| n > 0).map_err(db)
        })
        .await
    }

    async fn list_responsibilities(&self) -> StoreResult<Vec<Responsibility>> {
        self.read(|c| {
            collect(
                c,
                "SELECT dataset, org, cycle, note, created_by, created_at FROM responsibilities ORDER BY org, dataset",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, Ts>(5)?.0,
                    ))
                },
                |(dataset, org, cycle, note, created_by, created_at)| {
                    responsibility(dataset, org, cycle, note, created_by, created_at)
                },
            )
        })
        .await
    }

    async fn delivery_stats(&self) -> StoreResult<Vec<DeliveryStats>> {
        self.read(|c| {
            let tx = c.unchecked_transaction().map_err(db)?;
            let per_dataset = collect(
                &tx,
                "SELECT d.code, d.table_name, COUNT(x.id), COUNT(CASE WHEN x.status = 'failed' THEN 1 END),
                     MAX(x.started_at), MAX(CASE WHEN x.status = 'succeeded' THEN x.finished_at END),
                     COALESCE(SUM(x.rows_read), 0), COALESCE(SUM(x.rows_quarantined), 0)
                 FROM datasets d LEFT JOIN deliveries x ON x.dataset = d.code
                 GROUP BY d.code, d.table_name ORDER BY d.code",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        [r.get::<_, i64>(2)?, r.get::<_, i64>(3)?, r.get::<_, i64>(6)?, r.get::<_, i64>(7)?],
                        r.get::<_, Option<Ts>>(4)?.map(|t| t.0),
                        r.get::<_, Option<Ts>>(5)?.map(|t| t.0),
                    ))
                },
                Ok,
            )?;
            let mut out = Vec::with_capacity(per_dataset.len());
            for (code, table, n, last, success) in per_dataset {
                check_table_name(&table)?;
                let records: i64 = tx
                    .query_row(
                        &format!("SELECT COUNT(*) FROM {} WHERE \"_deleted\" = 0", crate::ddl::quote_ident(&table)),
                        [],
                        |r| r.get(0),
                    )
                    .map_err(db)?;
                out.push(stats(code, n, last, success, records)?);
            }
            tx.finish().map_err(db)?;
            Ok(out)
        })
        .await
    }
}
