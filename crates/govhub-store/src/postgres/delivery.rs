//! PostgreSQL: deliveries, records and the responsibility list.
//!
//! A delivery runs in one transaction on one connection, holding a `SHARE ROW
//! EXCLUSIVE` lock on the typed table (readers go on; a second delivery to the same
//! dataset waits). Batches stream in with `COPY … FROM STDIN` (text format):
//!
//! * into the typed table itself when every row is an insert — the dataset has no
//!   primary key, or its table is empty;
//! * otherwise each batch's keys and content hashes go first (`govhub_batch`); one
//!   query names the rows that are new or changed, and only those are sent whole, into
//!   a staging table (one per delivery, on the server, so the client's memory stays
//!   flat). At commit set-based statements do the rest: the
//!   previous versions of changed rows go to the history table, changed rows are
//!   updated in place, new keys inserted, and (snapshot) absent keys marked deleted.

use super::{db, ddl, get, prepared, Args, PostgresStore};
use crate::ddl::quote_ident;
use crate::delivery::*;
use crate::records::*;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use futures_util::SinkExt;
use govhub_core::cells::Cell;
use govhub_core::delivery::{DeliveryMode, DeliveryReport, KeySet, QuarantinedRow, ValidRow};
use govhub_core::model::*;
use govhub_core::names::DatasetCode;
use govhub_core::schema::FieldType;
use govhub_core::store::{ApplyOutcome, DeliveryBatch, DeliveryQuery, DeliveryStore, NewDelivery, StoreError};
use tokio::sync::mpsc::Receiver;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;
use xxhash_rust::xxh3::xxh3_128;

/// Timestamps as PostgreSQL text input, truncated to microseconds (as stored).
fn ts_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// A cell as PostgreSQL text input for its column type (None = NULL).
fn pg_text(c: &Cell) -> Option<String> {
    Some(match c {
        Cell::Null => return None,
        Cell::Text(s) => s.clone(),
        Cell::Num(n) if n.is_infinite() => if *n > 0.0 { "Infinity" } else { "-Infinity" }.to_string(),
        Cell::DateTime(t) => ts_text(*t),
        other => other.to_text(),
    })
}

/// Append a value to a COPY text-format line, escaped.
fn copy_text(buf: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            other => buf.push(other),
        }
    }
}

fn copy_cell(buf: &mut Vec<u8>, c: &Cell) {
    match c {
        Cell::Null => buf.extend_from_slice(b"\\N"),
        Cell::Text(s) => copy_text(buf, s),
        Cell::Int(i) => buf.extend_from_slice(i.to_string().as_bytes()),
        Cell::Bool(b) => buf.push(if *b { b't' } else { b'f' }),
        other => copy_text(buf, &pg_text(other).unwrap_or_default()),
    }
}

fn placeholder(n: usize, a: &Arg) -> String {
    match a {
        Arg::Cell(_, t) => format!("${n}::text::{}", ddl::column_type(*t)),
        Arg::Time(_) => format!("${n}::timestamptz"),
        Arg::Int(_) => format!("${n}::bigint"),
    }
}

fn select(t: FieldType, col: &str) -> String {
    if t == FieldType::Number {
        format!("{col}::float8")
    } else {
        col.to_string()
    }
}

fn prefix(col: &str, p: &str) -> String {
    format!("starts_with({col}::text, {p})")
}

fn null(t: FieldType) -> String {
    format!("NULL::{}", ddl::column_type(t))
}

const DIALECT: ReadDialect =
    ReadDialect { placeholder, select, null, text_order: " COLLATE \"C\"", prefix, false_literal: "false" };

fn params(sql: &Sql<'_>) -> Vec<Box<dyn ToSql + Sync + Send>> {
    sql.args
        .iter()
        .map(|a| -> Box<dyn ToSql + Sync + Send> {
            match a {
                Arg::Cell(c, _) => Box::new(pg_text(c)),
                Arg::Time(t) => Box::new(*t),
                Arg::Int(i) => Box::new(*i),
            }
        })
        .collect()
}

async fn query<C: GenericClient>(c: &C, sql: &Sql<'_>) -> StoreResult<Vec<Row>> {
    query_with(c, sql.text.as_str(), sql).await
}

/// `sql`'s rows through `statement`: its text, or the statement prepared from it.
async fn query_with<C, T>(c: &C, statement: &T, sql: &Sql<'_>) -> StoreResult<Vec<Row>>
where
    C: GenericClient,
    T: ?Sized + tokio_postgres::ToStatement + Sync + Send,
{
    let owned = params(sql);
    let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect();
    c.query(statement, &refs).await.map_err(db)
}

fn cell(r: &Row, i: usize, k: Kind) -> StoreResult<Cell> {
    let int4 = r.columns().get(i).is_some_and(|c| *c.type_() == Type::INT4);
    let v = match k {
        Kind::Int if int4 => get::<Option<i32>>(r, i)?.map(|v| Cell::Int(i64::from(v))),
        Kind::Int => get::<Option<i64>>(r, i)?.map(Cell::Int),
        Kind::Num => get::<Option<f64>>(r, i)?.map(Cell::Num),
        Kind::Bool => get::<Option<bool>>(r, i)?.map(Cell::Bool),
        Kind::Date => get::<Option<chrono::NaiveDate>>(r, i)?.map(Cell::Date),
        Kind::Time => get::<Option<chrono::NaiveTime>>(r, i)?.map(Cell::Time),
        Kind::DateTime => get::<Option<DateTime<Utc>>>(r, i)?.map(Cell::DateTime),
        Kind::Json => get::<Option<serde_json::Value>>(r, i)?.map(Cell::json),
        Kind::Text => get::<Option<String>>(r, i)?.map(Cell::Text),
    };
    Ok(v.unwrap_or(Cell::Null))
}

fn cells(r: &Row, layout: &Layout<'_>) -> StoreResult<Vec<Cell>> {
    layout.fields().iter().enumerate().map(|(i, f)| cell(r, i, kind(f.field_type))).collect()
}

fn record(r: &Row, layout: &Layout<'_>) -> StoreResult<Record> {
    let n = layout.fields().len();
    Ok(Record {
        cells: cells(r, layout)?,
        version: get(r, n)?,
        delivery_id: get(r, n + 1)?,
        updated_at: get::<Option<DateTime<Utc>>>(r, n + 2)?
            .ok_or_else(|| StoreError::Corrupt("a record has no _updated_at".into()))?,
        deleted: get(r, n + 3)?,
    })
}

fn version(r: &Row, layout: &Layout<'_>) -> StoreResult<RecordVersion> {
    let n = layout.fields().len();
    Ok(RecordVersion {
        cells: cells(r, layout)?,
        version: get(r, n)?,
        op: parse_op(&get::<String>(r, n + 1)?)?,
        delivery_id: get(r, n + 2)?,
        valid_from: get(r, n + 3)?,
        valid_to: Some(get(r, n + 4)?),
    })
}

pub(super) async fn table_exists<C: GenericClient>(c: &C, name: &str) -> StoreResult<bool> {
    let row = c.query_one("SELECT to_regclass($1::text) IS NOT NULL", &[&quote_ident(name)]).await.map_err(db)?;
    get(&row, 0)
}

fn delivery_row(r: &Row) -> StoreResult<DeliveryReport> {
    let mut counts = [0i64; 9];
    for (i, c) in counts.iter_mut().enumerate() {
        *c = get(r, 8 + i)?;
    }
    DeliveryRow {
        id: get(r, 0)?,
        dataset: get(r, 1)?,
        status: get(r, 2)?,
        mode: get(r, 3)?,
        format: get(r, 4)?,
        encoding: get(r, 5)?,
        schema_version: get(r, 6)?,
        submitted_by: get(r, 7)?,
        counts,
        started_at: get(r, 17)?,
        finished_at: get(r, 18)?,
        error_code: get(r, 19)?,
        error_message: get(r, 20)?,
        error_message_zh: get(r, 21)?,
    }
    .into_report()
}

// ------------------------------------------------------------------ applying

/// Stream the keys and hashes of one batch (`_i` = position in the batch) with COPY.
async fn copy_keys(
    tx: &deadpool_postgres::Transaction<'_>,
    copy_sql: &str,
    rows: &[govhub_core::delivery::ValidRow],
    key: &[usize],
) -> StoreResult<u64> {
    let sink = tx.copy_in::<_, Bytes>(copy_sql).await.map_err(db)?;
    futures_util::pin_mut!(sink);
    let mut buf: Vec<u8> = Vec::with_capacity(rows.len() * 48);
    for (i, row) in rows.iter().enumerate() {
        buf.extend_from_slice(i.to_string().as_bytes());
        for &k in key {
            buf.push(b'\t');
            copy_cell(&mut buf, row.cells.get(k).unwrap_or(&Cell::Null));
        }
        buf.extend_from_slice(format!("\t{}\n", row.hash).as_bytes());
    }
    sink.send(Bytes::from(buf)).await.map_err(db)?;
    sink.as_mut().finish().await.map_err(db)
}

/// Flush the COPY buffer at about this size.
const COPY_CHUNK: usize = 1 << 20;

/// Stream rows into the staging table with COPY (cells and hash).
async fn copy_rows(
    tx: &deadpool_postgres::Transaction<'_>,
    copy_sql: &str,
    rows: impl IntoIterator<Item = &govhub_core::delivery::ValidRow>,
    n: usize,
) -> StoreResult<u64> {
    let mut copy = CopyStream::new();
    copy.push(tx, copy_sql, rows, n, None).await?;
    copy.close().await
}

/// One row as a COPY text line: its cells, then the typed table's system columns
/// (`system`: delivery id and time; direct inserts) or only its hash (staging).
fn copy_line(
    buf: &mut Vec<u8>,
    row: &govhub_core::delivery::ValidRow,
    n: usize,
    system: Option<(i64, &str)>,
) -> StoreResult<()> {
    if row.cells.len() != n {
        return Err(refused(format!("row {} has {} cells; the dataset has {n} fields", row.row, row.cells.len())));
    }
    for c in &row.cells {
        copy_cell(buf, c);
        buf.push(b'\t');
    }
    match system {
        Some((id, at)) => buf.extend_from_slice(format!("1\t{}\t{id}\t{at}\tf\n", row.hash).as_bytes()),
        None => buf.extend_from_slice(format!("{}\n", row.hash).as_bytes()),
    }
    Ok(())
}

/// The current (not deleted) records of a table, for an incremental re-delivery to
/// recognise unchanged rows in the writer instead of sending every key and hash to the
/// server to be joined against the table (≈ 5 µs a row). Keys are compared as xxh3-128
/// digests of their COPY text (PostgreSQL's output against [`copy_cell`]'s encoding):
/// where the two spell a value differently the row only takes the server's path; a row
/// counts as unchanged only when its key's digest and its 64-bit content hash both
/// match. Each record also has a bit for "delivered again", so that the rows found
/// unchanged need no place in the delivery's [`KeySet`](govhub_core::delivery::KeySet)
/// (a key is repeated when its record's bit is set or the key set has it — the same
/// 128-bit standard throughout). 24 bytes of writer memory a record; `None` past
/// [`CURRENT_MAX`] records.
struct Current {
    /// `(top half of the key digest, (bottom half, _hash))`.
    records: CurrentRecords<(u64, i64)>,
    delivered: Vec<u64>,
}

/// Records of a table beyond which a re-delivery is checked by the server alone
/// (≈ 110 MB of writer memory at the limit).
const CURRENT_MAX: usize = 4_500_000;

/// What [`Current`] makes of a delivered row.
enum Seen {
    /// The current record, unchanged, delivered for the first time.
    Unchanged,
    /// Its key was delivered before in this delivery.
    Repeated,
    /// New or changed (or a spelling [`Current`] cannot compare).
    Other,
}

impl Current {
    async fn load(tx: &deadpool_postgres::Transaction<'_>, layout: &Layout<'_>) -> StoreResult<Option<Current>> {
        use futures_util::StreamExt;
        // The planner's estimate of the row count: room reserved at once, so the vector
        // never holds two copies of itself while growing.
        let estimate: f32 = get(
            &tx.query_one("SELECT reltuples FROM pg_class WHERE oid = $1::text::regclass", &[&layout.table])
                .await
                .map_err(db)?,
            0,
        )?;
        let estimate = estimate.max(0.0) as usize;
        if estimate > CURRENT_MAX {
            return Ok(None);
        }
        let sql = format!(
            "COPY (SELECT {}, \"_hash\" FROM {} WHERE NOT \"_deleted\") TO STDOUT",
            layout.key_columns("").join(", "),
            layout.table
        );
        let stream = tx.copy_out(sql.as_str()).await.map_err(db)?;
        futures_util::pin_mut!(stream);
        let mut records = CurrentRecords::with_capacity(estimate + estimate / 16 + 1024);
        let mut line: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(db)?;
            let mut rest: &[u8] = &chunk;
            while let Some(end) = rest.iter().position(|&b| b == b'\n') {
                line.extend_from_slice(&rest[..end]);
                rest = &rest[end + 1..];
                let tab = line.iter().rposition(|&b| b == b'\t').ok_or_else(|| refused("a COPY line without a tab"))?;
                let hash = std::str::from_utf8(&line[tab + 1..]).ok().and_then(|h| h.parse::<i64>().ok()).ok_or_else(
                    || StoreError::Corrupt(format!("{} holds a _hash that is not a number", layout.table)),
                )?;
                let d = xxh3_128(&line[..tab]);
                records.push((d >> 64) as u64, (d as u64, hash));
                line.clear();
                if records.len() > CURRENT_MAX {
                    return Ok(None);
                }
            }
            line.extend_from_slice(rest);
        }
        let records = records.index();
        let delivered = vec![0u64; records.len().div_ceil(64)];
        Ok(Some(Current { records, delivered }))
    }

    /// What `row` (its key's digest `d`, [`key_digest`]) is to the current records;
    /// `keys` holds the keys of the rows this delivery did not find unchanged (the
    /// caller adds an `Other` row's key to it).
    fn see(&mut self, row: &ValidRow, d: u128, keys: &mut KeySet) -> Seen {
        let (top, bottom) = ((d >> 64) as u64, d as u64);
        let bit = |at: usize| (at / 64, 1u64 << (at % 64));
        if let Some(at) = self.records.position(top, |&(b, h)| b == bottom && h == row.hash) {
            let (word, mask) = bit(at);
            if self.delivered[word] & mask != 0 || keys.contains(d) {
                return Seen::Repeated;
            }
            self.delivered[word] |= mask;
            return Seen::Unchanged;
        }
        // A changed row of a key already delivered unchanged.
        match self.records.position(top, |&(b, _)| b == bottom) {
            Some(at) if self.delivered[bit(at).0] & bit(at).1 != 0 => Seen::Repeated,
            _ => Seen::Other,
        }
    }
}

/// The xxh3-128 digest of a row's key as COPY text (key cells joined by tabs): what
/// the delivery's [`KeySet`] holds and [`Current`] compares with PostgreSQL's output.
fn key_digest(row: &ValidRow, key: &[usize], buf: &mut Vec<u8>) -> u128 {
    buf.clear();
    for (i, &k) in key.iter().enumerate() {
        if i > 0 {
            buf.push(b'\t');
        }
        copy_cell(buf, row.cells.get(k).unwrap_or(&Cell::Null));
    }
    xxh3_128(buf)
}

/// Rows streamed into one COPY, opened at the first row and sent in chunks of about
/// [`COPY_CHUNK`]. A direct load keeps one open across all of the reader's batches, so
/// that the server never waits for a COPY to start and finish every 10,000 rows (it
/// sat idle ≈ 20 % of a first load that way); no other statement can run on the
/// connection until it is closed.
struct CopyStream {
    sink: Option<std::pin::Pin<Box<tokio_postgres::CopyInSink<Bytes>>>>,
    buf: Vec<u8>,
}

/// Quarantined rows a direct load holds back while its COPY is open, before it closes
/// the COPY to store them.
const PENDING_QUARANTINE: usize = 10_000;

impl CopyStream {
    fn new() -> CopyStream {
        CopyStream { sink: None, buf: Vec::with_capacity(COPY_CHUNK + 4096) }
    }

    /// Rows as [`copy_line`] writes them (`system`: see there).
    async fn push(
        &mut self,
        tx: &deadpool_postgres::Transaction<'_>,
        copy_sql: &str,
        rows: impl IntoIterator<Item = &govhub_core::delivery::ValidRow>,
        n: usize,
        system: Option<(i64, &str)>,
    ) -> StoreResult<()> {
        if self.sink.is_none() {
            self.sink = Some(Box::pin(tx.copy_in::<_, Bytes>(copy_sql).await.map_err(db)?));
        }
        for row in rows {
            copy_line(&mut self.buf, row, n, system)?;
            if self.buf.len() >= COPY_CHUNK {
                let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(COPY_CHUNK + 4096)));
                if let Some(sink) = self.sink.as_mut() {
                    sink.send(chunk).await.map_err(db)?;
                }
            }
        }
        Ok(())
    }

    /// Finish the COPY (if open); the rows it inserted.
    async fn close(&mut self) -> StoreResult<u64> {
        let Some(mut sink) = self.sink.take() else { return Ok(0) };
        if !self.buf.is_empty() {
            sink.send(Bytes::from(std::mem::take(&mut self.buf))).await.map_err(db)?;
        }
        sink.as_mut().finish().await.map_err(db)
    }
}

/// A first load's new table and what it must get from the table it replaces.
struct Swap {
    /// Quoted name of the new table.
    load: String,
    /// `(name, definition)` of the key and unique constraints.
    constraints: Vec<(String, String)>,
    /// `CREATE INDEX` statements of the other indexes.
    indexes: Vec<String>,
}

impl Swap {
    /// `None` when an operator has attached something to the table that a new table
    /// would not carry over (privileges, triggers, row security, views, inheritance,
    /// a publication): the load then goes into the table itself, as any other.
    async fn prepare(tx: &deadpool_postgres::Transaction<'_>, t: &str, id: i64) -> StoreResult<Option<Swap>> {
        let plain: bool = get(
            &tx.query_one(
                "SELECT c.relkind = 'r' AND c.relacl IS NULL AND NOT c.relhastriggers AND NOT c.relrowsecurity
                    AND NOT EXISTS (SELECT 1 FROM pg_depend d
                                    WHERE d.refobjid = c.oid AND d.classid = 'pg_rewrite'::regclass)
                    AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = c.oid OR i.inhrelid = c.oid)
                    AND NOT EXISTS (SELECT 1 FROM pg_publication_rel p WHERE p.prrelid = c.oid)
                 FROM pg_class c WHERE c.oid = $1::text::regclass",
                &[&t],
            )
            .await
            .map_err(db)?,
            0,
        )?;
        if !plain {
            return Ok(None);
        }
        let constraints = tx
            .query(
                "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint
                 WHERE conrelid = $1::text::regclass AND contype IN ('p', 'u') ORDER BY contype, conname",
                &[&t],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| Ok((get::<String>(r, 0)?, get::<String>(r, 1)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        let indexes = tx
            .query(
                "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = $1::text::regclass
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
                &[&t],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| get::<String>(r, 0))
            .collect::<StoreResult<Vec<_>>>()?;
        let load = quote_ident(&format!("govhub_load_{id}"));
        tx.batch_execute(&format!(
            "CREATE TABLE {load} (LIKE {t} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS)"
        ))
        .await
        .map_err(db)?;
        Ok(Some(Swap { load, constraints, indexes }))
    }

    /// Put the loaded table in the empty one's place, with its name, constraints and
    /// indexes (index definitions name the table, which by then is the new one).
    async fn finish(&self, tx: &deadpool_postgres::Transaction<'_>, t: &str) -> StoreResult<()> {
        tx.batch_execute(&format!("DROP TABLE {t}; ALTER TABLE {} RENAME TO {t}", self.load)).await.map_err(db)?;
        for (name, def) in &self.constraints {
            tx.batch_execute(&format!("ALTER TABLE {t} ADD CONSTRAINT {} {def}", quote_ident(name)))
                .await
                .map_err(db)?;
        }
        for def in &self.indexes {
            tx.batch_execute(def).await.map_err(db)?;
        }
        Ok(())
    }
}

/// Keep quarantined rows with their delivery (`stmt`: the quarantine insert).
async fn keep_quarantined(
    tx: &deadpool_postgres::Transaction<'_>,
    stmt: &tokio_postgres::Statement,
    id: i64,
    rows: &[QuarantinedRow],
) -> StoreResult<u64> {
    let nums: Vec<i64> = rows.iter().map(|q| stored_count(q.row)).collect();
    let raws = rows.iter().map(raw_json).collect::<StoreResult<Vec<_>>>()?;
    let problems = rows.iter().map(problems_json).collect::<StoreResult<Vec<_>>>()?;
    tx.execute(stmt, &[&id, &nums, &raws, &problems]).await.map_err(db)?;
    Ok(rows.len() as u64)
}

async fn apply(
    tx: &deadpool_postgres::Transaction<'_>,
    d: &Dataset,
    id: i64,
    mode: DeliveryMode,
    at: DateTime<Utc>,
    batches: &mut Receiver<DeliveryBatch>,
) -> StoreResult<ApplyOutcome> {
    let layout = Layout::new(d)?;
    let n = layout.fields().len();
    let (t, h) = (&layout.table, &layout.history);
    tx.batch_execute(&format!("LOCK TABLE {t} IN SHARE ROW EXCLUSIVE MODE")).await.map_err(db)?;
    if !table_exists(tx, &layout.history_name).await? {
        tx.batch_execute(&ddl::create_history_table(&d.table_name, &d.schema, false)).await.map_err(db)?;
    }
    // The typed table's change index is created at the end: built once after a first
    // load instead of row by row (later deliveries maintain it).
    tx.batch_execute(&change_index(&layout, &d.table_name, true)).await.map_err(db)?;
    // Every row is an insert when there is no key to match or nothing to match it with.
    let empty: bool = get(&tx.query_one(&format!("SELECT NOT EXISTS (SELECT 1 FROM {t})"), &[]).await.map_err(db)?, 0)?;
    let direct = !layout.has_pk() || empty;
    // The change index is built in one sort at the end: give it memory to sort in.
    tx.batch_execute("SET LOCAL maintenance_work_mem = '256MB'").await.map_err(db)?;

    // A first load goes into a new table without indexes, which replaces the empty one
    // at the end: its key index is then built in one sort instead of a million inserts,
    // and readers go on reading the empty table meanwhile (they wait only for the swap).
    let swap = if empty && layout.has_pk() { Swap::prepare(tx, t, id).await? } else { None };
    let fields = layout.field_list("");
    let at_text = ts_text(at);
    let copy_sql = if direct {
        format!(
            "COPY {} ({fields}, \"_version\", \"_hash\", \"_delivery_id\", \"_updated_at\", \"_deleted\") FROM STDIN",
            swap.as_ref().map_or(t, |s| &s.load)
        )
    } else {
        let cols: Vec<String> = layout
            .fields()
            .iter()
            .map(|f| format!("{} {}", quote_ident(&f.name), ddl::column_type(f.field_type)))
            .collect();
        let key_cols: Vec<String> = layout
            .key
            .iter()
            .map(|&k| {
                let f = &layout.fields()[k];
                format!("{} {}", quote_ident(&f.name), ddl::column_type(f.field_type))
            })
            .collect();
        // Full rows of new and changed records; the keys and hashes of each batch; and
        // (snapshots) every key delivered.
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE govhub_stage ({}, \"_hash\" TEXT) ON COMMIT DROP;
             CREATE TEMP TABLE govhub_batch (\"_i\" INTEGER, {}, \"_hash\" TEXT) ON COMMIT DROP;
             CREATE TEMP TABLE govhub_keys ({}) ON COMMIT DROP",
            cols.join(", "),
            key_cols.join(", "),
            key_cols.join(", ")
        ))
        .await
        .map_err(db)?;
        format!("COPY govhub_stage ({fields}, \"_hash\") FROM STDIN")
    };
    let quarantine = tx
        .prepare(
            "INSERT INTO delivery_quarantine (delivery_id, row_no, raw, problems)
             SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[])",
        )
        .await
        .map_err(db)?;
    let key_list = layout.key_columns("").join(", ");
    let batch_copy = format!("COPY govhub_batch (\"_i\", {key_list}, \"_hash\") FROM STDIN");
    let to_write = format!(
        "SELECT b.\"_i\" FROM govhub_batch b LEFT JOIN {t} t ON {} \
         WHERE t.\"_version\" IS NULL OR t.\"_hash\" IS DISTINCT FROM b.\"_hash\" OR t.\"_deleted\"",
        layout.key_join("t.", "b.")
    );
    let keep_keys = format!("INSERT INTO govhub_keys ({key_list}) SELECT {key_list} FROM govhub_batch");
    let mut out = ApplyOutcome::default();
    let mut staged = 0u64;
    // Keys delivered so far: of a key delivered twice the later row is quarantined.
    // (SQLite asks its table which rows the delivery touched; here rows reach the table
    // only at commit, so the writer keeps 16 bytes a key.)
    let mut keys = KeySet::default();
    let mut labels: Vec<String> = layout.fields().iter().map(|f| f.name.clone()).collect();
    // An incremental re-delivery recognises its unchanged rows in the writer.
    let mut current = if !direct && mode == DeliveryMode::Incremental && layout.has_pk() {
        Current::load(tx, &layout).await?
    } else {
        None
    };
    let mut skipped = 0u64;
    let mut key_buf: Vec<u8> = Vec::new();
    let started = std::time::Instant::now();
    let mut copy = CopyStream::new();
    let mut pending: Vec<QuarantinedRow> = Vec::new();
    let delete_absent = loop {
        if pending.len() >= PENDING_QUARANTINE {
            out.inserted += copy.close().await?;
            out.quarantined += keep_quarantined(tx, &quarantine, id, &std::mem::take(&mut pending)).await?;
        }
        match batches.recv().await {
            None => return Err(aborted()),
            Some(DeliveryBatch::Commit) => break mode == DeliveryMode::Snapshot,
            Some(DeliveryBatch::CommitKeepAbsent) => break false,
            Some(DeliveryBatch::Labels(l)) => labels = l,
            Some(DeliveryBatch::Quarantine(rows)) if direct => pending.extend(rows),
            Some(DeliveryBatch::Quarantine(rows)) => {
                out.quarantined += keep_quarantined(tx, &quarantine, id, &rows).await?;
            }
            Some(DeliveryBatch::Rows(mut rows)) => {
                if layout.has_pk() {
                    // Of a key delivered twice the later row is quarantined; rows the
                    // current records show unchanged are counted and go no further.
                    let mut repeated = Vec::new();
                    let mut first = Vec::with_capacity(rows.len());
                    for r in rows {
                        let d = key_digest(&r, &layout.key, &mut key_buf);
                        let once = match current.as_mut() {
                            Some(c) => match c.see(&r, d, &mut keys) {
                                Seen::Unchanged => {
                                    skipped += 1;
                                    continue;
                                }
                                Seen::Repeated => false,
                                Seen::Other => keys.first(d),
                            },
                            None => keys.first(d),
                        };
                        if once {
                            first.push(r);
                        } else {
                            repeated.push(r);
                        }
                    }
                    rows = first;
                    if !repeated.is_empty() {
                        out.repeated += repeated.len() as u64;
                        out.repeated_warnings += repeated.iter().map(|r| r.warnings.len() as u64).sum::<u64>();
                        let q: Vec<QuarantinedRow> = repeated
                            .into_iter()
                            .map(|r| govhub_core::delivery::repeated_key(layout.schema, &labels, r))
                            .collect();
                        if direct {
                            pending.extend(q);
                        } else {
                            out.quarantined += keep_quarantined(tx, &quarantine, id, &q).await?;
                        }
                    }
                }
                if rows.is_empty() {
                    continue;
                }
                if direct {
                    copy.push(tx, &copy_sql, &rows, n, Some((id, at_text.as_str()))).await?;
                    continue;
                }
                // Keys and hashes first: only new and changed rows are sent whole.
                tx.batch_execute("TRUNCATE govhub_batch").await.map_err(db)?;
                copy_keys(tx, &batch_copy, &rows, &layout.key).await?;
                let write = tx.query(to_write.as_str(), &[]).await.map_err(db)?;
                if mode == DeliveryMode::Snapshot {
                    tx.batch_execute(&keep_keys).await.map_err(db)?;
                }
                staged += rows.len() as u64;
                if !write.is_empty() {
                    let mut picked = write
                        .iter()
                        .map(|r| get::<i32>(r, 0).map(|i| i.max(0) as usize))
                        .collect::<StoreResult<Vec<_>>>()?;
                    picked.sort_unstable();
                    let picked: Vec<&govhub_core::delivery::ValidRow> =
                        picked.into_iter().filter_map(|i| rows.get(i)).collect();
                    copy_rows(tx, &copy_sql, picked, n).await?;
                }
            }
        }
    };
    out.inserted += copy.close().await?;
    if !pending.is_empty() {
        out.quarantined += keep_quarantined(tx, &quarantine, id, &pending).await?;
    }
    if let Some(swap) = &swap {
        swap.finish(tx, t).await?;
    }
    let streamed = started.elapsed();
    let data_t = layout.history_data_columns("t.");
    let data = layout.history_data_columns("");
    let history_insert = format!(
        "INSERT INTO {h} ({data}, \"_version\", \"_op\", \"_delivery_id\", \"_valid_from\", \"_valid_to\")
         SELECT {data_t}, t.\"_version\", {}, t.\"_delivery_id\", t.\"_updated_at\", $1::timestamptz",
        op_case("t.")
    );
    if !direct {
        let join = layout.key_join("t.", "s.");
        let changed = "(t.\"_hash\" IS DISTINCT FROM s.\"_hash\" OR t.\"_deleted\")";
        tx.execute(&format!("{history_insert} FROM {t} t JOIN govhub_stage s ON {join} WHERE {changed}"), &[&at])
            .await
            .map_err(db)?;
        let sets: Vec<String> = layout.fields().iter().map(|f| format!("{0} = s.{0}", quote_ident(&f.name))).collect();
        out.updated = tx
            .execute(
                &format!(
                    "UPDATE {t} t SET {}, \"_version\" = t.\"_version\" + 1, \"_hash\" = s.\"_hash\",
                         \"_delivery_id\" = $1::bigint, \"_updated_at\" = $2::timestamptz, \"_deleted\" = false
                     FROM govhub_stage s WHERE {join} AND {changed}",
                    sets.join(", ")
                ),
                &[&id, &at],
            )
            .await
            .map_err(db)?;
        out.inserted = tx
            .execute(
                &format!(
                    "INSERT INTO {t} ({fields}, \"_version\", \"_hash\", \"_delivery_id\", \"_updated_at\", \"_deleted\")
                     SELECT {}, 1, s.\"_hash\", $1::bigint, $2::timestamptz, false FROM govhub_stage s
                     WHERE NOT EXISTS (SELECT 1 FROM {t} t WHERE {join})",
                    layout.field_list("s.")
                ),
                &[&id, &at],
            )
            .await
            .map_err(db)?;
        out.unchanged = staged.saturating_sub(out.inserted + out.updated) + skipped;
    }
    if delete_absent {
        // Current records this delivery did not contain are deleted.
        let absent = if direct {
            "t.\"_deleted\" = false AND t.\"_delivery_id\" IS DISTINCT FROM $2::bigint".to_string()
        } else {
            format!(
                "t.\"_deleted\" = false AND NOT EXISTS (SELECT 1 FROM govhub_keys k WHERE {})",
                layout.key_join("t.", "k.")
            )
        };
        let history_args: &[&(dyn ToSql + Sync)] = if direct { &[&at, &id] } else { &[&at] };
        tx.execute(&format!("{history_insert} FROM {t} t WHERE {absent}"), history_args).await.map_err(db)?;
        out.deleted = tx
            .execute(
                &format!(
                    "UPDATE {t} t SET \"_deleted\" = true, \"_version\" = t.\"_version\" + 1,
                         \"_delivery_id\" = $2::bigint, \"_updated_at\" = $1::timestamptz
                     WHERE {absent}"
                ),
                &[&at, &id],
            )
            .await
            .map_err(db)?;
    }
    let merged = started.elapsed();
    tx.batch_execute(&change_index(&layout, &d.table_name, false)).await.map_err(db)?;
    tracing::debug!(
        delivery = id,
        direct,
        stream_ms = streamed.as_millis() as u64,
        merge_ms = (merged - streamed).as_millis() as u64,
        index_ms = (started.elapsed() - merged).as_millis() as u64,
        "delivery written"
    );
    // The delivery's place in its dataset's change feed: deliveries of one dataset
    // take this lock in turn, so positions are given in commit order, on any node.
    tx.execute("SELECT pg_advisory_xact_lock(hashtext('govhub.commit_seq.' || $1::text))", &[&d.code.as_str()])
        .await
        .map_err(db)?;
    tx.execute(
        "UPDATE deliveries SET commit_seq = (SELECT COALESCE(MAX(commit_seq), 0) + 1 FROM deliveries WHERE dataset = $2)
         WHERE id = $1",
        &[&id, &d.code.as_str()],
    )
    .await
    .map_err(db)?;
    Ok(out)
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

/// Run a query built by the shared builders.
pub(super) async fn run<C: GenericClient>(c: &C, sql: &Sql<'_>) -> StoreResult<Vec<Row>> {
    query(c, sql).await
}

/// A row of [`changes_sql_for`].
pub(super) fn change_row(
    r: &Row,
    layout: &Layout<'_>,
    commit_seq: i64,
    delivery_id: i64,
) -> StoreResult<govhub_core::sharing::Change> {
    let n = layout.fields().len();
    Ok(govhub_core::sharing::Change {
        commit_seq,
        delivery_id,
        cells: cells(r, layout)?,
        version: get(r, n)?,
        op: get(r, n + 1)?,
        at: get(r, n + 2)?,
    })
}

#[async_trait]
impl DeliveryStore for PostgresStore {
    async fn begin_delivery(&self, d: &NewDelivery) -> StoreResult<i64> {
        let row = self
            .client()
            .await?
            .query_one(
                "INSERT INTO deliveries (dataset, schema_version, mode, format, encoding, status, submitted_by, org,
                     file_name, started_at)
                 VALUES ($1, $2, $3, $4, $5, 'running', $6, $7, $8, $9) RETURNING id",
                &[
                    &d.dataset.as_str(),
                    &d.schema_version,
                    &d.mode.as_str(),
                    &d.format,
                    &d.encoding,
                    &d.submitted_by,
                    &d.org.as_str(),
                    &d.file_name,
                    &d.started_at,
                ],
            )
            .await
            .map_err(db)?;
        get(&row, 0)
    }

    async fn apply_delivery(
        &self,
        dataset: &Dataset,
        delivery_id: i64,
        mode: DeliveryMode,
        at: DateTime<Utc>,
        mut batches: Receiver<DeliveryBatch>,
    ) -> StoreResult<ApplyOutcome> {
        let at = micros(at);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        match apply(&tx, dataset, delivery_id, mode, at, &mut batches).await {
            Ok(out) => {
                tx.commit().await.map_err(db)?;
                Ok(out)
            }
            Err(e) => {
                // Dropping the receiver tells the sender to stop.
                drop(batches);
                if let Err(rollback) = tx.rollback().await {
                    tracing::warn!(error = %rollback, "rolling back a failed delivery");
                }
                Err(e)
            }
        }
    }

    async fn finish_delivery(&self, r: &DeliveryReport) -> StoreResult<()> {
        let k = report_counts(r);
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE deliveries SET status = $2, mode = $3, format = $4, encoding = $5, schema_version = $6,
                     submitted_by = $7, rows_read = $8, rows_accepted = $9, rows_inserted = $10,
                     rows_updated = $11, rows_unchanged = $12, rows_quarantined = $13, warnings = $14,
                     rows_deleted = $15, duration_ms = $16, started_at = $17, finished_at = $18,
                     error_code = $19, error_message = $20, error_message_zh = $21
                 WHERE id = $1",
                &[
                    &r.id,
                    &r.status.as_str(),
                    &r.mode.as_str(),
                    &r.format,
                    &r.encoding,
                    &r.schema_version,
                    &r.submitted_by,
                    &k[0],
                    &k[1],
                    &k[2],
                    &k[3],
                    &k[4],
                    &k[5],
                    &k[6],
                    &k[7],
                    &k[8],
                    &r.started_at,
                    &r.finished_at,
                    &r.error.as_ref().map(|e| e.code.as_str()),
                    &r.error.as_ref().map(|e| e.message.as_str()),
                    &r.error.as_ref().map(|e| e.message_zh.as_str()),
                ],
            )
            .await
            .map_err(db)?;
        if n == 0 {
            Err(StoreError::NotFound { what: "delivery" })
        } else {
            Ok(())
        }
    }

    async fn get_delivery(&self, id: i64) -> StoreResult<Option<DeliveryReport>> {
        let row = self
            .client()
            .await?
            .query_opt(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"), &[&id])
            .await
            .map_err(db)?;
        row.as_ref().map(delivery_row).transpose()
    }

    async fn list_deliveries(&self, q: &DeliveryQuery) -> StoreResult<Vec<DeliveryReport>> {
        let mut args = Args::default();
        let mut clauses: Vec<String> = Vec::new();
        if let Some(d) = &q.dataset {
            clauses.push(format!("dataset = {}", args.push(d.as_str().to_string())));
        }
        if let Some(s) = q.status {
            clauses.push(format!("status = {}", args.push(s.as_str())));
        }
        if let Some(b) = q.before_id {
            clauses.push(format!("id < {}", args.push(b)));
        }
        let limit = args.push(effective_limit(q.limit));
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries{} ORDER BY id DESC LIMIT {limit}",
                    super::where_clause(&clauses)
                ),
                &args.refs(),
            )
            .await
            .map_err(db)?;
        rows.iter().map(delivery_row).collect()
    }

    async fn list_quarantine(&self, delivery_id: i64, offset: u64, limit: u32) -> StoreResult<Page<QuarantinedRow>> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let total: i64 = get(
            &tx.query_one("SELECT COUNT(*) FROM delivery_quarantine WHERE delivery_id = $1", &[&delivery_id])
                .await
                .map_err(db)?,
            0,
        )?;
        let rows = tx
            .query(
                "SELECT row_no, raw, problems FROM delivery_quarantine WHERE delivery_id = $1
                 ORDER BY row_no, ctid LIMIT $2 OFFSET $3",
                &[&delivery_id, &effective_limit(limit), &stored_count(offset)],
            )
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let items = rows
            .iter()
            .map(|r| quarantined_row(get(r, 0)?, &get::<String>(r, 1)?, &get::<String>(r, 2)?))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page { items, total: total.max(0) as u64 })
    }

    async fn fail_interrupted_deliveries(&self, at: DateTime<Utc>) -> StoreResult<u64> {
        self.client()
            .await?
            .execute(
                "UPDATE deliveries SET status = 'failed', finished_at = $1, error_code = $2, error_message = $3,
                     error_message_zh = $4
                 WHERE status = 'running'",
                &[&at, &INTERRUPTED_CODE, &INTERRUPTED_EN, &INTERRUPTED_ZH],
            )
            .await
            .map_err(db)
    }

    async fn get_record(&self, dataset: &Dataset, key: &[Cell]) -> StoreResult<Option<Record>> {
        let layout = Layout::new(dataset)?;
        let sql = get_record_sql(&DIALECT, &layout, key)?;
        let rows = query(&self.client().await?, &sql).await?;
        rows.first().map(|r| record(r, &layout)).transpose()
    }

    async fn shared_record(
        &self,
        dataset: &std::sync::Arc<Dataset>,
        key: &[Cell],
        fields: &[usize],
    ) -> StoreResult<(Option<Record>, i64)> {
        let layout = Layout::new(dataset)?;
        let sql = shared_record_sql(&DIALECT, &layout, key, fields)?;
        let c = self.client().await?;
        let rows = query_with(&c, &prepared(&c, &sql.text).await?, &sql).await?;
        let r = rows.first().ok_or_else(|| StoreError::Corrupt("sharing_generation has no row".into()))?;
        let n = layout.fields().len();
        let generation: i64 = get(r, n + 4)?;
        let found = match get::<Option<i64>>(r, n)? {
            Some(_) => Some(record(r, &layout)?),
            None => None,
        };
        Ok((found, generation))
    }

    async fn query_records(&self, dataset: &Dataset, q: &RecordQuery) -> StoreResult<Vec<Record>> {
        let layout = Layout::new(dataset)?;
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let history = q.as_of.is_some() && table_exists(&tx, &layout.history_name).await?;
        let sql = query_sql(&DIALECT, &layout, q, history)?;
        let rows = query(&tx, &sql).await?;
        tx.commit().await.map_err(db)?;
        rows.iter().map(|r| record(r, &layout)).collect()
    }

    async fn record_history(&self, dataset: &Dataset, key: &[Cell]) -> StoreResult<Vec<RecordVersion>> {
        let layout = Layout::new(dataset)?;
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let mut out = if table_exists(&tx, &layout.history_name).await? {
            let rows = query(&tx, &history_sql(&DIALECT, &layout, key)?).await?;
            rows.iter().map(|r| version(r, &layout)).collect::<StoreResult<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let current = query(&tx, &get_record_sql(&DIALECT, &layout, key)?).await?;
        tx.commit().await.map_err(db)?;
        for r in &current {
            let r = record(r, &layout)?;
            out.push(RecordVersion {
                version: r.version,
                op: op_of(r.deleted, r.version),
                cells: r.cells,
                delivery_id: r.delivery_id,
                valid_from: r.updated_at,
                valid_to: None,
            });
        }
        Ok(out)
    }

    async fn put_responsibility(&self, r: &Responsibility) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO responsibilities (dataset, org, cycle, note, created_by, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (dataset) DO UPDATE SET org = excluded.org, cycle = excluded.cycle,
                     note = excluded.note, created_by = excluded.created_by, created_at = excluded.created_at",
                &[&r.dataset.as_str(), &r.org.as_str(), &r.cycle.as_str(), &r.note, &r.created_by, &r.created_at],
            )
            .await
            .map(|_| ())
            .map_err(db)
    }

    async fn delete_responsibility(&self, dataset: &DatasetCode) -> StoreResult<bool> {
        let n = self
            .client()
            .await?
            .execute("DELETE FROM responsibilities WHERE dataset = $1", &[&dataset.as_str()])
            .await
            .map_err(db)?;
        Ok(n > 0)
    }

    async fn list_responsibilities(&self) -> StoreResult<Vec<Responsibility>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT dataset, org, cycle, note, created_by, created_at FROM responsibilities ORDER BY org, dataset",
                &[],
            )
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| responsibility(get(r, 0)?, get(r, 1)?, get(r, 2)?, get(r, 3)?, get(r, 4)?, get(r, 5)?))
            .collect()
    }

    async fn delivery_stats(&self) -> StoreResult<Vec<DeliveryStats>> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let rows = tx
            .query(
                "SELECT d.code, d.table_name, COUNT(x.id), COUNT(x.id) FILTER (WHERE x.status = 'failed'),
                     MAX(x.started_at), MAX(x.finished_at) FILTER (WHERE x.status = 'succeeded'),
                     COALESCE(SUM(x.rows_read), 0)::bigint, COALESCE(SUM(x.rows_quarantined), 0)::bigint
                 FROM datasets d LEFT JOIN deliveries x ON x.dataset = d.code
                 GROUP BY d.code, d.table_name ORDER BY d.code",
                &[],
            )
            .await
            .map_err(db)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let table: String = get(r, 1)?;
            check_table_name(&table)?;
            let count = tx
                .query_one(&format!("SELECT COUNT(*) FROM {} WHERE \"_deleted\" = false", quote_ident(&table)), &[])
                .await
                .map_err(db)?;
            out.push(stats(
                get(r, 0)?,
                [get(r, 2)?, get(r, 3)?, get(r, 6)?, get(r, 7)?],
                get(r, 4)?,
                get(r, 5)?,
                get(&count, 0)?,
            )?);
        }
        tx.commit().await.map_err(db)?;
        Ok(out)
    }
}
