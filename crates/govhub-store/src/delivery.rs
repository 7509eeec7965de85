//! What both backends share for deliveries and records: the layout of a dataset's
//! typed and history tables, the SQL of record queries (with a backend's placeholders
//! and column expressions), filter values cast to their field's type, the delivery
//! report as stored, and quarantined rows as JSON.

use crate::ddl::{history_table_name, quote_ident, ROW_ID};
use crate::records::{check_table_name, corrupt, effective_limit, refused, StoreResult};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use govhub_core::cells::Cell;
use govhub_core::delivery::{DeliveryFailure, DeliveryMode, DeliveryReport, DeliveryStatus, Problem, QuarantinedRow};
use govhub_core::model::{Dataset, DeliveryStats, FilterOp, RecordOp, RecordQuery, Responsibility, UpdateCycle};
use govhub_core::names::{DatasetCode, OrgCode};
use govhub_core::schema::{Field, FieldType, TableSchema};
use serde_json::{Map, Value};

/// Error code and messages of a delivery left `running` by a stopped server.
pub const INTERRUPTED_CODE: &str = "interrupted";
pub const INTERRUPTED_EN: &str = "the server stopped during the delivery; nothing from it was kept; deliver again";
pub const INTERRUPTED_ZH: &str = "交付过程中服务器停止运行，本次交付未保留任何数据，请重新交付";

/// The error when the batch channel closes without `Commit`.
pub fn aborted() -> govhub_core::store::StoreError {
    refused("the delivery was aborted before it was complete (no commit): nothing from it was kept")
}

/// The operation a stored version records: deleted, first version, or a change.
pub fn op_of(deleted: bool, version: i64) -> RecordOp {
    if deleted {
        RecordOp::Delete
    } else if version <= 1 {
        RecordOp::Insert
    } else {
        RecordOp::Update
    }
}

/// SQL computing [`op_of`] from a typed table row (`prefix` qualifies the columns).
pub fn op_case(prefix: &str) -> String {
    format!(
        "CASE WHEN {prefix}\"_deleted\" THEN 'delete' WHEN {prefix}\"_version\" = 1 THEN 'insert' ELSE 'update' END"
    )
}

pub fn parse_op(s: &str) -> StoreResult<RecordOp> {
    RecordOp::parse(s).ok_or_else(|| corrupt("history operation", s, "expected insert, update or delete"))
}

// ------------------------------------------------------------------ layout

/// A dataset's current typed table, its history table and its key.
pub struct Layout<'a> {
    pub schema: &'a TableSchema,
    /// Quoted typed table name.
    pub table: String,
    /// Unquoted history table name.
    pub history_name: String,
    /// Quoted history table name.
    pub history: String,
    /// Field indexes of the primary key, in key order (empty: surrogate `_row_id`).
    pub key: Vec<usize>,
}

impl<'a> Layout<'a> {
    pub fn new(d: &'a Dataset) -> StoreResult<Layout<'a>> {
        check_table_name(&d.table_name)?;
        let key = d
            .schema
            .primary_key
            .iter()
            .map(|k| {
                d.schema.fields.iter().position(|f| &f.name == k).ok_or_else(|| {
                    corrupt("primary key of dataset", d.code.as_str(), format!("\"{k}\" is not a field"))
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let history_name = history_table_name(&d.table_name);
        Ok(Layout {
            schema: &d.schema,
            table: quote_ident(&d.table_name),
            history: quote_ident(&history_name),
            history_name,
            key,
        })
    }

    pub fn has_pk(&self) -> bool {
        !self.key.is_empty()
    }

    pub fn fields(&self) -> &[Field] {
        &self.schema.fields
    }

    /// Field columns, quoted and qualified with `prefix` (e.g. `t.`), comma-separated.
    pub fn field_list(&self, prefix: &str) -> String {
        self.schema.fields.iter().map(|f| format!("{prefix}{}", quote_ident(&f.name))).collect::<Vec<_>>().join(", ")
    }

    /// Key columns, quoted and qualified: the primary key, or `_row_id`.
    pub fn key_columns(&self, prefix: &str) -> Vec<String> {
        if self.key.is_empty() {
            vec![format!("{prefix}{}", quote_ident(ROW_ID))]
        } else {
            self.key.iter().map(|&i| format!("{prefix}{}", quote_ident(&self.schema.fields[i].name))).collect()
        }
    }

    /// `a.k1 = b.k1 AND a.k2 = b.k2`.
    pub fn key_join(&self, a: &str, b: &str) -> String {
        self.key_columns(a)
            .iter()
            .zip(self.key_columns(b))
            .map(|(x, y)| format!("{x} = {y}"))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// Columns the history table shares with the typed table: fields (and `_row_id`).
    pub fn history_data_columns(&self, prefix: &str) -> String {
        let mut s = self.field_list(prefix);
        if !self.has_pk() {
            s.push_str(&format!(", {prefix}{}", quote_ident(ROW_ID)));
        }
        s
    }

    /// The key cells of a request, cast to the key fields' types (or `_row_id`).
    pub fn key_args(&self, key: &[Cell]) -> StoreResult<Vec<Arg>> {
        if self.key.is_empty() {
            return match key {
                [Cell::Int(id)] => Ok(vec![Arg::Int(*id)]),
                _ => Err(refused("this dataset has no primary key: a record is named by its _row_id (one integer)")),
            };
        }
        if key.len() != self.key.len() {
            return Err(refused(format!(
                "the key has {} parts; this dataset's primary key has {}",
                key.len(),
                self.key.len()
            )));
        }
        self.key
            .iter()
            .zip(key)
            .map(|(&i, c)| {
                let f = &self.schema.fields[i];
                match coerce(f, c)? {
                    Cell::Null => Err(refused(format!("key field \"{}\" cannot be empty", f.name))),
                    c => Ok(Arg::Cell(c, f.field_type)),
                }
            })
            .collect()
    }
}

// ------------------------------------------------------------------ values

/// Cast a filter or key value to its field's type (the caller usually has; values of
/// another type are refused rather than compared loosely).
pub fn coerce(f: &Field, c: &Cell) -> StoreResult<Cell> {
    let bad = || {
        refused(format!(
            "the value \"{}\" is not a valid {} for field \"{}\"",
            c.to_text(),
            f.field_type.as_str(),
            f.name
        ))
    };
    if c.is_null() {
        return Ok(Cell::Null);
    }
    let text = || match c {
        Cell::Text(s) => Some(s.as_str()),
        _ => None,
    };
    Ok(match f.field_type {
        FieldType::Integer | FieldType::Year => match c {
            Cell::Int(i) => Cell::Int(*i),
            Cell::Num(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Cell::Int(*n as i64),
            _ => Cell::Int(text().and_then(|s| s.trim().parse().ok()).ok_or_else(bad)?),
        },
        FieldType::Number => match c {
            Cell::Num(n) => Cell::Num(*n),
            Cell::Int(i) => Cell::Num(*i as f64),
            _ => Cell::Num(text().and_then(|s| s.trim().parse().ok()).ok_or_else(bad)?),
        },
        FieldType::Boolean => match c {
            Cell::Bool(b) => Cell::Bool(*b),
            Cell::Int(0) => Cell::Bool(false),
            Cell::Int(1) => Cell::Bool(true),
            _ => match text() {
                Some("true") => Cell::Bool(true),
                Some("false") => Cell::Bool(false),
                _ => return Err(bad()),
            },
        },
        FieldType::Date => match c {
            Cell::Date(d) => Cell::Date(*d),
            _ => Cell::Date(text().and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()).ok_or_else(bad)?),
        },
        FieldType::Time => match c {
            Cell::Time(t) => Cell::Time(*t),
            _ => Cell::Time(text().and_then(|s| NaiveTime::parse_from_str(s, "%H:%M:%S").ok()).ok_or_else(bad)?),
        },
        FieldType::Datetime => match c {
            Cell::DateTime(t) => Cell::DateTime(*t),
            _ => Cell::DateTime(
                text()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .ok_or_else(bad)?,
            ),
        },
        FieldType::Object | FieldType::Array | FieldType::Geojson | FieldType::List => match c {
            Cell::Json(v) => Cell::Json(v.clone()),
            _ => Cell::json(text().and_then(|s| serde_json::from_str(s).ok()).ok_or_else(bad)?),
        },
        FieldType::String | FieldType::Yearmonth | FieldType::Duration | FieldType::Geopoint | FieldType::Any => {
            match c {
                Cell::Text(s) => Cell::Text(s.clone()),
                other => Cell::Text(other.to_text()),
            }
        }
    })
}

/// The cell a field's stored value becomes, by field type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Num,
    Bool,
    Date,
    Time,
    DateTime,
    Json,
    Text,
}

pub fn kind(t: FieldType) -> Kind {
    match t {
        FieldType::Integer | FieldType::Year => Kind::Int,
        FieldType::Number => Kind::Num,
        FieldType::Boolean => Kind::Bool,
        FieldType::Date => Kind::Date,
        FieldType::Time => Kind::Time,
        FieldType::Datetime => Kind::DateTime,
        FieldType::Object | FieldType::Array | FieldType::Geojson | FieldType::List => Kind::Json,
        FieldType::String | FieldType::Yearmonth | FieldType::Duration | FieldType::Geopoint | FieldType::Any => {
            Kind::Text
        }
    }
}

/// Parse a stored text value of a field (SQLite keeps dates, times and JSON as text).
pub fn cell_from_text(k: Kind, s: String) -> StoreResult<Cell> {
    Ok(match k {
        // Stored dates are canonical `YYYY-MM-DD`; a stray one goes through chrono for its error.
        Kind::Date => Cell::Date(match govhub_core::cells::iso_date(&s) {
            Some(d) => d,
            None => NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|e| corrupt("date", &s, e))?,
        }),
        Kind::Time => Cell::Time(NaiveTime::parse_from_str(&s, "%H:%M:%S%.f").map_err(|e| corrupt("time", &s, e))?),
        Kind::DateTime => Cell::DateTime(
            DateTime::parse_from_rfc3339(&s).map_err(|e| corrupt("timestamp", &s, e))?.with_timezone(&Utc),
        ),
        Kind::Json => Cell::json(serde_json::from_str(&s).map_err(|e| corrupt("JSON value", &s, e))?),
        Kind::Int => Cell::Int(s.parse().map_err(|e| corrupt("integer", &s, e))?),
        Kind::Num => Cell::Num(s.parse().map_err(|e| corrupt("number", &s, e))?),
        Kind::Bool => match s.as_str() {
            "true" | "t" | "1" => Cell::Bool(true),
            "false" | "f" | "0" => Cell::Bool(false),
            _ => return Err(corrupt("boolean", &s, "expected true or false")),
        },
        Kind::Text => Cell::Text(s),
    })
}

// ------------------------------------------------------------------ record queries

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A value of a field (cast to the field's column type).
    Cell(Cell, FieldType),
    Time(DateTime<Utc>),
    Int(i64),
}

/// What a backend contributes to record queries.
pub struct ReadDialect {
    /// The placeholder of parameter `n` (1-based).
    pub placeholder: fn(usize, &Arg) -> String,
    /// The expression selecting a field's column (e.g. NUMERIC as float8).
    pub select: fn(FieldType, &str) -> String,
    /// A `NULL` of a field's column type.
    pub null: fn(FieldType) -> String,
    /// Appended to a text column in range comparisons (bytewise order).
    pub text_order: &'static str,
    /// A text-prefix test of a column against a placeholder.
    pub prefix: fn(&str, &str) -> String,
    pub false_literal: &'static str,
}

/// A statement and its parameters.
pub struct Sql<'d> {
    pub text: String,
    pub args: Vec<Arg>,
    dialect: &'d ReadDialect,
}

impl<'d> Sql<'d> {
    pub fn new(dialect: &'d ReadDialect) -> Self {
        Sql { text: String::new(), args: Vec::new(), dialect }
    }

    /// Add a parameter; returns its placeholder.
    pub fn arg(&mut self, a: Arg) -> String {
        let p = (self.dialect.placeholder)(self.args.len() + 1, &a);
        self.args.push(a);
        p
    }
}

/// Columns of a record row: the fields, then `_version`, `_delivery_id`, `_updated_at`,
/// `_deleted`.
pub fn record_select(d: &ReadDialect, layout: &Layout<'_>, prefix: &str) -> String {
    record_select_of(d, layout, prefix, |_| true)
}

/// [`record_select`] with a typed `NULL` in place of the fields `read` leaves out (the
/// columns keep their positions).
fn record_select_of(d: &ReadDialect, layout: &Layout<'_>, prefix: &str, read: impl Fn(usize) -> bool) -> String {
    let mut cols: Vec<String> = layout
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let col = if read(i) { format!("{prefix}{}", quote_ident(&f.name)) } else { (d.null)(f.field_type) };
            (d.select)(f.field_type, &col)
        })
        .collect();
    for c in ["_version", "_delivery_id", "_updated_at", "_deleted"] {
        cols.push(format!("{prefix}\"{c}\""));
    }
    cols.join(", ")
}

/// Columns of a history row: the fields, then `_version`, `_op`, `_delivery_id`,
/// `_valid_from`, `_valid_to`.
pub fn history_select(d: &ReadDialect, layout: &Layout<'_>, prefix: &str) -> String {
    let mut cols: Vec<String> = layout
        .fields()
        .iter()
        .map(|f| (d.select)(f.field_type, &format!("{prefix}{}", quote_ident(&f.name))))
        .collect();
    for c in ["_version", "_op", "_delivery_id", "_valid_from", "_valid_to"] {
        cols.push(format!("{prefix}\"{c}\""));
    }
    cols.join(", ")
}

/// `k1 = $1 AND k2 = $2` for a key.
pub fn key_match(sql: &mut Sql<'_>, layout: &Layout<'_>, prefix: &str, key: Vec<Arg>) -> String {
    layout
        .key_columns(prefix)
        .into_iter()
        .zip(key)
        .map(|(c, a)| format!("{c} = {}", sql.arg(a)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The current record of a key (deleted ones included).
pub fn get_record_sql<'d>(d: &'d ReadDialect, layout: &Layout<'_>, key: &[Cell]) -> StoreResult<Sql<'d>> {
    let key = layout.key_args(key)?;
    let mut sql = Sql::new(d);
    let cond = key_match(&mut sql, layout, "r.", key);
    sql.text = format!("SELECT {} FROM {} r WHERE {cond}", record_select(d, layout, "r."), layout.table);
    Ok(sql)
}

/// The current record of a key (as [`get_record_sql`], NULL columns when there is
/// none) followed by the sharing generation (migration 0008), in one statement: the
/// generation is of the same snapshot as the record.
pub fn shared_record_sql<'d>(
    d: &'d ReadDialect,
    layout: &Layout<'_>,
    key: &[Cell],
    fields: &[usize],
) -> StoreResult<Sql<'d>> {
    let key = layout.key_args(key)?;
    let mut sql = Sql::new(d);
    let cond = key_match(&mut sql, layout, "r.", key);
    sql.text = format!(
        "SELECT {}, g.generation FROM sharing_generation g LEFT JOIN {} r ON {cond} WHERE g.id = 1",
        record_select_of(d, layout, "r.", |i| fields.contains(&i)),
        layout.table
    );
    Ok(sql)
}

/// A record's earlier versions, oldest first.
pub fn history_sql<'d>(d: &'d ReadDialect, layout: &Layout<'_>, key: &[Cell]) -> StoreResult<Sql<'d>> {
    let key = layout.key_args(key)?;
    let mut sql = Sql::new(d);
    let cond = key_match(&mut sql, layout, "r.", key);
    sql.text = format!(
        "SELECT {} FROM {} r WHERE {cond} ORDER BY r.\"_version\"",
        history_select(d, layout, "r."),
        layout.history
    );
    Ok(sql)
}

/// A page of records: filters, keyset pagination, optionally as of a past time.
pub fn query_sql<'d>(
    d: &'d ReadDialect,
    layout: &Layout<'_>,
    q: &RecordQuery,
    history_exists: bool,
) -> StoreResult<Sql<'d>> {
    let mut sql = Sql::new(d);
    let data = layout.history_data_columns("");
    let source = match q.as_of {
        None => layout.table.clone(),
        Some(t) => {
            let p = sql.arg(Arg::Time(t));
            let current = format!(
                "SELECT {data}, \"_version\", \"_delivery_id\", \"_updated_at\", \"_deleted\" FROM {} \
                 WHERE \"_updated_at\" <= {p}",
                layout.table
            );
            if history_exists {
                format!(
                    "({current} UNION ALL SELECT {data}, \"_version\", \"_delivery_id\", \"_valid_from\", \
                     (\"_op\" = 'delete') FROM {} WHERE \"_valid_from\" <= {p} AND \"_valid_to\" > {p})",
                    layout.history
                )
            } else {
                format!("({current})")
            }
        }
    };
    let mut clauses: Vec<String> = Vec::new();
    if !q.include_deleted {
        clauses.push(format!("r.\"_deleted\" = {}", d.false_literal));
    }
    for filter in &q.filters {
        let f = layout
            .fields()
            .get(filter.field)
            .ok_or_else(|| refused(format!("filter on field #{}, which this dataset does not have", filter.field)))?;
        let col = format!("r.{}", quote_ident(&f.name));
        let ordered = if kind(f.field_type) == Kind::Text { format!("{col}{}", d.text_order) } else { col.clone() };
        let clause = match &filter.op {
            FilterOp::Eq(c) => match coerce(f, c)? {
                Cell::Null => format!("{col} IS NULL"),
                c => format!("{col} = {}", sql.arg(Arg::Cell(c, f.field_type))),
            },
            FilterOp::In(cells) => {
                let mut ps = Vec::new();
                for c in cells {
                    match coerce(f, c)? {
                        Cell::Null => {}
                        c => ps.push(sql.arg(Arg::Cell(c, f.field_type))),
                    }
                }
                if ps.is_empty() {
                    "1 = 0".to_string()
                } else {
                    format!("{col} IN ({})", ps.join(", "))
                }
            }
            FilterOp::Range(lo, hi) => {
                let mut parts = Vec::new();
                if let Some(c) = lo {
                    let c = coerce(f, c)?;
                    if !c.is_null() {
                        parts.push(format!("{ordered} >= {}", sql.arg(Arg::Cell(c, f.field_type))));
                    }
                }
                if let Some(c) = hi {
                    let c = coerce(f, c)?;
                    if !c.is_null() {
                        parts.push(format!("{ordered} <= {}", sql.arg(Arg::Cell(c, f.field_type))));
                    }
                }
                if parts.is_empty() {
                    continue;
                }
                parts.join(" AND ")
            }
            FilterOp::Prefix(p) => {
                let ph = sql.arg(Arg::Cell(Cell::Text(p.clone()), FieldType::String));
                (d.prefix)(&col, &ph)
            }
            FilterOp::IsNull(true) => format!("{col} IS NULL"),
            FilterOp::IsNull(false) => format!("{col} IS NOT NULL"),
        };
        clauses.push(clause);
    }
    let keys = layout.key_columns("r.");
    if let Some(after) = &q.after {
        let args = layout.key_args(after)?;
        let ps: Vec<String> = args.into_iter().map(|a| sql.arg(a)).collect();
        let op = if q.descending { "<" } else { ">" };
        clauses.push(format!("({}) {op} ({})", keys.join(", "), ps.join(", ")));
    }
    let filter = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
    let limit = sql.arg(Arg::Int(effective_limit(q.limit)));
    let order: Vec<String> = keys.iter().map(|k| if q.descending { format!("{k} DESC") } else { k.clone() }).collect();
    sql.text = format!(
        "SELECT {} FROM {source} r{filter} ORDER BY {} LIMIT {limit}",
        record_select(d, layout, "r."),
        order.join(", ")
    );
    Ok(sql)
}

/// The name of a table's change index. Names stay within PostgreSQL's 63 bytes: a
/// prefix of the table name and an FNV-1a digest of the whole name.
fn change_index_name(t: &str) -> String {
    let digest = t.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let prefix: String = t.chars().take(40).collect();
    quote_ident(&format!("{prefix}_{digest:016x}_c"))
}

/// `CREATE INDEX IF NOT EXISTS` of the index the change feed reads a table by: the
/// versions a delivery created, in key order — `(_delivery_id, key…, _version)` — on
/// the typed table or on its history.
pub fn change_index(layout: &Layout<'_>, table_name: &str, history: bool) -> String {
    let keys = layout.key_columns("").join(", ");
    let (name, table) = if history {
        (change_index_name(&layout.history_name), &layout.history)
    } else {
        (change_index_name(table_name), &layout.table)
    };
    format!("CREATE INDEX IF NOT EXISTS {name} ON {table} (\"_delivery_id\", {keys}, \"_version\");")
}

/// The changes one delivery made to a dataset — the versions it created — from one of
/// the two tables (`history`: the versions since superseded), in key and version order
/// after `after`: the fields, then `_version`, `_op`, `_at`. The caller merges the two.
pub fn changes_sql<'d>(
    d: &'d ReadDialect,
    layout: &Layout<'_>,
    delivery: i64,
    after: Option<&govhub_core::sharing::ChangePosition>,
    limit: u32,
    history: bool,
) -> StoreResult<Sql<'d>> {
    let mut sql = Sql::new(d);
    let dl = sql.arg(Arg::Int(delivery));
    let keys = layout.key_columns("r.");
    let mut filter = format!("r.\"_delivery_id\" = {dl}");
    if let Some(a) = after {
        let args = layout.key_args(&a.key)?;
        let ps: Vec<String> = args.into_iter().map(|x| sql.arg(x)).collect();
        let v = sql.arg(Arg::Int(a.version));
        filter.push_str(&format!(" AND ({}, r.\"_version\") > ({}, {v})", keys.join(", "), ps.join(", ")));
    }
    let (table, op, at) = if history {
        (&layout.history, "r.\"_op\"".to_string(), "r.\"_valid_from\"")
    } else {
        (&layout.table, op_case("r."), "r.\"_updated_at\"")
    };
    let cols: Vec<String> = layout
        .fields()
        .iter()
        .map(|f| (d.select)(f.field_type, &format!("r.{}", quote_ident(&f.name))))
        .chain(["r.\"_version\"".to_string(), op, at.to_string()])
        .collect();
    let limit = sql.arg(Arg::Int(effective_limit(limit)));
    let mut order = keys;
    order.push("r.\"_version\"".into());
    sql.text =
        format!("SELECT {} FROM {table} r WHERE {filter} ORDER BY {} LIMIT {limit}", cols.join(", "), order.join(", "));
    Ok(sql)
}

/// Merge a delivery's current and superseded versions (each in key, version order) into
/// one list in that order, at most `limit`.
pub fn merge_changes(
    layout: &Layout<'_>,
    current: Vec<govhub_core::sharing::Change>,
    history: Vec<govhub_core::sharing::Change>,
    limit: usize,
) -> Vec<govhub_core::sharing::Change> {
    let mut out = Vec::with_capacity(limit.min(current.len() + history.len()));
    let (mut a, mut b) = (current.into_iter().peekable(), history.into_iter().peekable());
    while out.len() < limit {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => {
                let (kx, ky) = (&x.cells, &y.cells);
                let ord = layout
                    .key
                    .iter()
                    .map(|&k| compare_cells(&kx[k], &ky[k]))
                    .find(|o| o.is_ne())
                    .unwrap_or_else(|| x.version.cmp(&y.version));
                ord.is_le()
            }
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_a { a.next() } else { b.next() };
        if let Some(c) = next {
            out.push(c);
        }
    }
    out
}

/// The order the stores sort key values in (text bytewise, numbers by value).
pub fn compare_cells(a: &Cell, b: &Cell) -> std::cmp::Ordering {
    match (a, b) {
        (Cell::Text(x), Cell::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Cell::Int(x), Cell::Int(y)) => x.cmp(y),
        (Cell::Num(x), Cell::Num(y)) => x.total_cmp(y),
        (Cell::Date(x), Cell::Date(y)) => x.cmp(y),
        (Cell::DateTime(x), Cell::DateTime(y)) => x.cmp(y),
        _ => a.to_text().cmp(&b.to_text()),
    }
}

/// A 128-bit prefix of a key cell whose order agrees with [`compare_cells`] for cells
/// of the same kind: the first 16 bytes of a text (big-endian, zero-padded), an
/// integer with its sign bit flipped. Equal prefixes say nothing: compare in full.
fn sort_prefix(c: &Cell) -> Option<(u8, u128)> {
    match c {
        Cell::Text(s) => {
            let mut b = [0u8; 16];
            let n = s.len().min(16);
            b[..n].copy_from_slice(&s.as_bytes()[..n]);
            Some((0, u128::from_be_bytes(b)))
        }
        Cell::Int(i) => Some((1, u128::from((*i as u64) ^ (1 << 63)) << 64)),
        _ => None,
    }
}

/// Positions of `rows` in primary-key order (ties in arrival order). Sorting 16-byte
/// prefixes held in one array, and comparing the cells themselves only on a tie, is
/// several times faster than comparing the cells (each behind two pointers) throughout.
pub fn key_order(key: &[usize], rows: &[govhub_core::delivery::ValidRow]) -> Vec<usize> {
    let full = |a: usize, b: usize| {
        key.iter()
            .map(|&k| match (rows[a].cells.get(k), rows[b].cells.get(k)) {
                (Some(x), Some(y)) => compare_cells(x, y),
                (x, y) => x.is_some().cmp(&y.is_some()),
            })
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.cmp(&b))
    };
    let Some(&first) = key.first() else {
        return (0..rows.len()).collect();
    };
    let mut kind = None;
    let mut prefixed: Vec<(u128, usize)> = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        match r.cells.get(first).and_then(sort_prefix) {
            Some((k, p)) if kind.is_none_or(|x| x == k) => {
                kind = Some(k);
                prefixed.push((p, i));
            }
            _ => {
                // Mixed or other kinds: compare the cells throughout.
                let mut order: Vec<usize> = (0..rows.len()).collect();
                order.sort_unstable_by(|&a, &b| full(a, b));
                return order;
            }
        }
    }
    prefixed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| full(a.1, b.1)));
    prefixed.into_iter().map(|(_, i)| i).collect()
}

// ------------------------------------------------------------------ deliveries

/// A table's current records, each as a uniformly spread 64-bit value (a keyed digest
/// of its key, or its content hash) and what else the writer keeps of it, for a writer
/// to recognise a re-delivery's unchanged rows without asking the database row by row.
/// Sorted, with a bucket index on the spread value's top bits (a bucket holds two to
/// four entries): a lookup costs two cache misses where a binary search over millions
/// of entries cost a dozen — it was most of the writer's time.
pub struct CurrentRecords<T> {
    entries: Vec<(u64, T)>,
    /// `starts[b]` is the first entry of bucket `b` (the top `bits` of the spread
    /// value); `starts[b + 1]` ends it.
    starts: Vec<u32>,
    bits: u32,
}

impl<T: Copy + Ord> CurrentRecords<T> {
    /// Room for `n` records, reserved at once so that the vector never holds two copies
    /// of itself while growing.
    pub fn with_capacity(n: usize) -> CurrentRecords<T> {
        CurrentRecords { entries: Vec::with_capacity(n), starts: Vec::new(), bits: 0 }
    }

    pub fn push(&mut self, spread: u64, rest: T) {
        self.entries.push((spread, rest));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Sort the entries and index them (call once, after the last push).
    pub fn index(mut self) -> CurrentRecords<T> {
        self.entries.sort_unstable();
        // About a quarter as many buckets as entries: 1 byte of index a record.
        let n = self.entries.len().max(1) as u64;
        self.bits = (u64::BITS - (n / 4).max(1).leading_zeros()).min(31);
        let buckets = 1usize << self.bits;
        let mut starts = Vec::with_capacity(buckets + 1);
        let mut at = 0usize;
        for b in 0..buckets as u64 {
            while at < self.entries.len() && self.bucket(self.entries[at].0) < b {
                at += 1;
            }
            starts.push(at as u32);
        }
        starts.push(self.entries.len() as u32);
        self.starts = starts;
        self
    }

    fn bucket(&self, spread: u64) -> u64 {
        if self.bits == 0 {
            0
        } else {
            spread >> (u64::BITS - self.bits)
        }
    }

    /// The place (in sorted order, `0..len()`) of the first record with this spread
    /// value whose rest matches.
    pub fn position(&self, spread: u64, matches: impl Fn(&T) -> bool) -> Option<usize> {
        let b = self.bucket(spread) as usize;
        let (from, to) = (*self.starts.get(b)? as usize, *self.starts.get(b + 1)? as usize);
        Some(from + self.entries.get(from..to)?.iter().position(|e| e.0 == spread && matches(&e.1))?)
    }

    /// The first record (in sorted order) with this spread value whose rest matches.
    pub fn find(&self, spread: u64, matches: impl Fn(&T) -> bool) -> Option<T> {
        self.position(spread, matches).and_then(|i| self.entries.get(i)).map(|e| e.1)
    }
}

/// A signed 64-bit value as a spread value for [`CurrentRecords`] (order-preserving).
pub fn spread(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}

/// Columns of `deliveries` read back, in this order, by both backends.
pub const DELIVERY_COLUMNS: &str = "id, dataset, status, mode, format, encoding, schema_version, submitted_by, \
     rows_read, rows_accepted, rows_inserted, rows_updated, rows_unchanged, rows_quarantined, warnings, rows_deleted, \
     duration_ms, started_at, finished_at, error_code, error_message, error_message_zh";

pub struct DeliveryRow {
    pub id: i64,
    pub dataset: String,
    pub status: String,
    pub mode: String,
    pub format: String,
    pub encoding: String,
    pub schema_version: i32,
    pub submitted_by: String,
    /// rows_read … rows_deleted, duration_ms, in column order.
    pub counts: [i64; 9],
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub error_message_zh: Option<String>,
}

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

/// A count as stored (both backends keep signed 64-bit integers).
pub fn stored_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl DeliveryRow {
    pub fn into_report(self) -> StoreResult<DeliveryReport> {
        let c = self.counts;
        Ok(DeliveryReport {
            id: self.id,
            dataset: DatasetCode::parse(&self.dataset).map_err(|e| corrupt("delivery dataset", &self.dataset, e))?,
            status: DeliveryStatus::parse(&self.status)
                .ok_or_else(|| corrupt("delivery status", &self.status, "unknown status"))?,
            mode: DeliveryMode::parse(&self.mode)
                .ok_or_else(|| corrupt("delivery mode", &self.mode, "unknown mode"))?,
            format: self.format,
            encoding: self.encoding,
            schema_version: self.schema_version,
            submitted_by: self.submitted_by,
            rows_read: count(c[0]),
            rows_accepted: count(c[1]),
            rows_inserted: count(c[2]),
            rows_updated: count(c[3]),
            rows_unchanged: count(c[4]),
            rows_quarantined: count(c[5]),
            warnings: count(c[6]),
            rows_deleted: count(c[7]),
            duration_ms: count(c[8]),
            started_at: self.started_at,
            finished_at: self.finished_at,
            error: self.error_code.map(|code| DeliveryFailure {
                code,
                message: self.error_message.unwrap_or_default(),
                message_zh: self.error_message_zh.unwrap_or_default(),
            }),
        })
    }
}

/// The report's counts in column order (rows_read … rows_deleted, duration_ms).
pub fn report_counts(r: &DeliveryReport) -> [i64; 9] {
    [
        r.rows_read,
        r.rows_accepted,
        r.rows_inserted,
        r.rows_updated,
        r.rows_unchanged,
        r.rows_quarantined,
        r.warnings,
        r.rows_deleted,
        r.duration_ms,
    ]
    .map(stored_count)
}

// ------------------------------------------------------------------ quarantine

pub fn raw_json(q: &QuarantinedRow) -> StoreResult<String> {
    serde_json::to_string(&q.raw).map_err(govhub_core::store::StoreError::backend)
}

pub fn problems_json(q: &QuarantinedRow) -> StoreResult<String> {
    serde_json::to_string(&q.problems).map_err(govhub_core::store::StoreError::backend)
}

fn severity(s: Option<&str>) -> StoreResult<&'static str> {
    match s {
        Some("error") => Ok("error"),
        Some("warning") => Ok("warning"),
        other => Err(corrupt("problem severity", other.unwrap_or(""), "expected error or warning")),
    }
}

/// A stored quarantined row read back.
pub fn quarantined_row(row: i64, raw: &str, problems: &str) -> StoreResult<QuarantinedRow> {
    let raw: Map<String, Value> = serde_json::from_str(raw).map_err(|e| corrupt("quarantined row", raw, e))?;
    let list: Vec<Value> = serde_json::from_str(problems).map_err(|e| corrupt("row problems", problems, e))?;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let problems = list
        .iter()
        .map(|p| {
            Ok(Problem {
                row: p.get("row").and_then(Value::as_u64).unwrap_or(count(row)),
                field: text(p, "field"),
                code: text(p, "code").unwrap_or_default(),
                severity: severity(p.get("severity").and_then(Value::as_str))?,
                value: text(p, "value"),
                message: text(p, "message").unwrap_or_default(),
                message_zh: text(p, "message_zh").unwrap_or_default(),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(QuarantinedRow { row: count(row), raw, problems })
}

// ------------------------------------------------------------------ responsibilities, stats

pub fn responsibility(
    dataset: String,
    org: String,
    cycle: String,
    note: Option<String>,
    created_by: String,
    created_at: DateTime<Utc>,
) -> StoreResult<Responsibility> {
    Ok(Responsibility {
        dataset: DatasetCode::parse(&dataset).map_err(|e| corrupt("responsibility dataset", &dataset, e))?,
        org: OrgCode::parse(&org).map_err(|e| corrupt("responsibility organisation", &org, e))?,
        cycle: UpdateCycle::parse(&cycle).map_err(|e| corrupt("update cycle", &cycle, e))?,
        note,
        created_by,
        created_at,
    })
}

/// `n` = deliveries, failed, rows read, rows quarantined.
pub fn stats(
    code: String,
    n: [i64; 4],
    last: Option<DateTime<Utc>>,
    success: Option<DateTime<Utc>>,
    records: i64,
) -> StoreResult<DeliveryStats> {
    let u = |v: i64| v.max(0) as u64;
    Ok(DeliveryStats {
        dataset: DatasetCode::parse(&code).map_err(|e| corrupt("dataset code", &code, e))?,
        deliveries: u(n[0]),
        failed: u(n[1]),
        last_delivery_at: last,
        last_success_at: success,
        rows_read: u(n[2]),
        rows_quarantined: u(n[3]),
        record_count: u(records),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn current_records_find_what_a_scan_finds() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for n in [0usize, 1, 2, 3, 5, 17, 1000, 70_000] {
            let mut all: Vec<(u64, i64, u32)> = Vec::new();
            let mut index = CurrentRecords::with_capacity(n);
            for i in 0..n {
                // Values at the edges of the range, repeated values with other rests.
                let value = match i % 7 {
                    0 => 0,
                    1 => u64::MAX - (i as u64 % 3),
                    2 if i > 2 => all[i - 2].0,
                    3 => spread(rng.gen_range(-5..5)),
                    _ => rng.gen(),
                };
                let rest = rng.gen_range(-3..3);
                all.push((value, rest, i as u32));
                index.push(value, (rest, i as u32));
            }
            let index = index.index();
            assert_eq!(index.len(), n);
            let scan = |v: u64, r: i64| all.iter().filter(|e| e.0 == v && e.1 == r).map(|e| e.2).min();
            for e in &all {
                assert_eq!(index.find(e.0, |x| x.0 == e.1).map(|x| x.1), scan(e.0, e.1));
                let at = index.position(e.0, |x| x.0 == e.1).unwrap();
                assert!(at < n && index.position(e.0, |x| x.0 == e.1 && x.1 == e.2).unwrap() >= at);
            }
            for _ in 0..2000 {
                let (v, r) = (rng.gen::<u64>(), rng.gen_range(-4..4));
                assert_eq!(index.find(v, |x| x.0 == r).map(|x| x.1), scan(v, r), "value {v} rest {r}");
            }
        }
        // The spread of signed values keeps their order.
        assert!(spread(i64::MIN) < spread(-1) && spread(-1) < spread(0) && spread(0) < spread(i64::MAX));
    }

    fn valid(cells: Vec<Cell>) -> govhub_core::delivery::ValidRow {
        govhub_core::delivery::ValidRow { row: 0, cells, hash: 0, warnings: Vec::new() }
    }

    #[test]
    fn key_order_agrees_with_compare_cells() {
        // Texts sharing 16-byte prefixes, prefixes of each other, equal keys (arrival
        // order), negative and positive integers, composite keys.
        let texts = [
            "320402199001011234",
            "3204021990010112",
            "320402199001011233",
            "32040219900101123",
            "a",
            "",
            "320402199001011234",
            "中文键",
            "320402199001011234x",
        ];
        let rows: Vec<_> =
            texts.iter().enumerate().map(|(i, t)| valid(vec![Cell::Text((*t).into()), Cell::Int(i as i64)])).collect();
        let check = |key: &[usize], rows: &[govhub_core::delivery::ValidRow]| {
            let mut expected: Vec<usize> = (0..rows.len()).collect();
            expected.sort_by(|&a, &b| {
                key.iter()
                    .map(|&k| compare_cells(&rows[a].cells[k], &rows[b].cells[k]))
                    .find(|o| o.is_ne())
                    .unwrap_or_else(|| a.cmp(&b))
            });
            assert_eq!(key_order(key, rows), expected);
        };
        check(&[0], &rows);
        check(&[0, 1], &rows);
        let ints: Vec<_> = [5i64, -3, i64::MIN, i64::MAX, 0, -3, 7]
            .iter()
            .map(|&n| valid(vec![Cell::Int(n), Cell::Text(format!("{}", n.wrapping_neg()))]))
            .collect();
        check(&[0], &ints);
        check(&[0, 1], &ints);
        let mixed = vec![valid(vec![Cell::Int(10)]), valid(vec![Cell::Text("9".into())]), valid(vec![Cell::Null])];
        check(&[0], &mixed);
    }

    #[test]
    fn ops() {
        assert_eq!(op_of(false, 1), RecordOp::Insert);
        assert_eq!(op_of(false, 3), RecordOp::Update);
        assert_eq!(op_of(true, 3), RecordOp::Delete);
    }

    #[test]
    fn coercion() {
        let s =
            TableSchema::parse(&json!({"fields": [{"name": "n", "type": "integer"}, {"name": "d", "type": "date"}]}))
                .unwrap();
        assert_eq!(coerce(&s.fields[0], &Cell::Text("42".into())).unwrap(), Cell::Int(42));
        assert!(coerce(&s.fields[0], &Cell::Text("' OR 1=1 --".into())).is_err());
        assert!(matches!(coerce(&s.fields[1], &Cell::Text("2024-02-29".into())).unwrap(), Cell::Date(_)));
    }
}
