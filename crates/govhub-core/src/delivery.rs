//! Deliveries: a department hands over a batch of rows for one of its datasets.
//!
//! This module holds what a delivery *is* (mode, status, report, problems) and the
//! [`RowValidator`], which maps a file's columns onto the dataset's fields and turns
//! each raw record into either a [`ValidRow`] (typed cells, content hash) or a
//! [`QuarantinedRow`] (with every problem: row, field, code, masked value, messages).
//! Reading files is `govhub-ingest`'s job; writing rows is the store's.

use crate::cells::{cast_json, cast_text, CastOptions, Cell, CellProblem, PreparedField, Severity};
use crate::names::DatasetCode;
use crate::schema::{Field, TableSchema};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use xxhash_rust::xxh3::xxh3_64;

/// Incremental (upsert only) or a full snapshot (keys absent from it are deleted).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    Incremental,
    Snapshot,
}

impl DeliveryMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryMode::Incremental => "incremental",
            DeliveryMode::Snapshot => "snapshot",
        }
    }
    pub fn parse(s: &str) -> Option<DeliveryMode> {
        match s {
            "incremental" => Some(DeliveryMode::Incremental),
            "snapshot" => Some(DeliveryMode::Snapshot),
            _ => None,
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Running,
    Succeeded,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Running => "running",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        match s {
            "running" => Some(DeliveryStatus::Running),
            "succeeded" => Some(DeliveryStatus::Succeeded),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// Why a whole delivery failed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryFailure {
    pub code: String,
    pub message: String,
    pub message_zh: String,
}

/// The delivery report (the API's answer and the record kept).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryReport {
    pub id: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub dataset: DatasetCode,
    pub status: DeliveryStatus,
    pub mode: DeliveryMode,
    pub format: String,
    pub encoding: String,
    pub schema_version: i32,
    pub submitted_by: String,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_inserted: u64,
    pub rows_updated: u64,
    pub rows_unchanged: u64,
    pub rows_quarantined: u64,
    pub warnings: u64,
    pub rows_deleted: u64,
    pub duration_ms: u64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<DeliveryFailure>,
}

/// One problem found in a row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// 1 = first data row.
    pub row: u64,
    pub field: Option<String>,
    pub code: String,
    pub severity: &'static str,
    /// The offending value, masked when the field is sensitive.
    pub value: Option<String>,
    pub message: String,
    pub message_zh: String,
}

/// A row that failed validation, kept whole so it can be fixed and re-delivered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuarantinedRow {
    pub row: u64,
    /// The row as delivered: column label → raw text (sensitive values masked).
    pub raw: Map<String, Value>,
    pub problems: Vec<Problem>,
}

/// A row that passed: typed cells in schema field order.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRow {
    pub row: u64,
    pub cells: Vec<Cell>,
    /// xxh3-64 over the canonical cell texts: unchanged rows are detected by it.
    pub hash: i64,
    pub warnings: Vec<Problem>,
}

/// What a raw record became.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    Valid(ValidRow),
    Quarantined(QuarantinedRow),
    /// A row with no content (Frictionless `blank-row`): reported, not stored.
    Blank(QuarantinedRow),
}

/// A header problem: the delivery cannot proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError {
    pub code: &'static str,
    pub message: String,
    pub message_zh: String,
}

/// Mask a sensitive value for reports: keep a little at both ends.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    match n {
        0 => String::new(),
        1 => "*".into(),
        2 => format!("{}*", chars[0]),
        3..=6 => format!("{}{}{}", chars[0], "*".repeat(n - 2), chars[n - 1]),
        _ => {
            let keep = (n / 4).min(6);
            format!(
                "{}{}{}",
                chars[..keep].iter().collect::<String>(),
                "*".repeat(n - 2 * keep),
                chars[n - keep..].iter().collect::<String>()
            )
        }
    }
}

/// The cells of a text record (CSV, XLSX), however they are held: owned strings, or
/// lent by the reader ([`govhub_ingest::Cells`]).
pub trait TextCells {
    fn cell_count(&self) -> usize;
    fn cell(&self, i: usize) -> Option<&str>;
}

impl TextCells for [String] {
    fn cell_count(&self) -> usize {
        self.len()
    }
    fn cell(&self, i: usize) -> Option<&str> {
        self.get(i).map(String::as_str)
    }
}

impl TextCells for Vec<String> {
    fn cell_count(&self) -> usize {
        self.len()
    }
    fn cell(&self, i: usize) -> Option<&str> {
        self.get(i).map(String::as_str)
    }
}

impl TextCells for [&str] {
    fn cell_count(&self) -> usize {
        self.len()
    }
    fn cell(&self, i: usize) -> Option<&str> {
        self.get(i).copied()
    }
}

impl TextCells for govhub_ingest::Cells<'_> {
    fn cell_count(&self) -> usize {
        self.len()
    }
    fn cell(&self, i: usize) -> Option<&str> {
        self.get(i)
    }
}

/// Maps a delivery's columns to the schema and validates its rows.
pub struct RowValidator {
    schema: TableSchema,
    /// For each schema field, the column index in the file (None = column absent).
    columns: Vec<Option<usize>>,
    /// Column labels as delivered.
    labels: Vec<String>,
    /// Label → field index for JSON objects (names and titles).
    by_label: HashMap<String, usize>,
    /// Per schema field, what casting its cells needs, worked out once.
    prepared: Vec<PreparedField>,
    /// Reused for each row's content hash.
    hash_buf: String,
    today: NaiveDate,
    opts: CastOptions,
}

impl RowValidator {
    /// For CSV/XLSX: map header labels (field names or titles) to fields. Unknown
    /// labels, duplicates and missing columns are header errors; missing columns are
    /// allowed only for optional fields when the schema's `fieldsMatch` is `subset`
    /// or `partial`.
    pub fn for_header(
        schema: &TableSchema,
        header: &[String],
        today: NaiveDate,
        opts: CastOptions,
    ) -> Result<RowValidator, HeaderError> {
        let by_label = label_map(schema);
        let mut columns = vec![None; schema.fields.len()];
        for (i, label) in header.iter().enumerate() {
            let label = label.trim();
            if label.is_empty() {
                return Err(HeaderError {
                    code: "blank-label",
                    message: format!("column {} has no header", i + 1),
                    message_zh: format!("第{}列缺少表头", i + 1),
                });
            }
            let Some(&fi) = by_label.get(label) else {
                let known: Vec<String> = schema.fields.iter().map(|f| format!("{}({})", f.name, f.label())).collect();
                return Err(HeaderError {
                    code: "extra-label",
                    message: format!(
                        "column \"{label}\" is not a field of this dataset (fields: {})",
                        known.join(", ")
                    ),
                    message_zh: format!("列“{label}”不是本数据集的字段（字段：{}）", known.join("、")),
                });
            };
            if columns[fi].is_some() {
                return Err(HeaderError {
                    code: "duplicate-label",
                    message: format!("field \"{}\" appears in more than one column", schema.fields[fi].name),
                    message_zh: format!("字段“{}”出现在多列中", schema.fields[fi].label()),
                });
            }
            columns[fi] = Some(i);
        }
        let partial = matches!(schema.fields_match.as_deref(), Some("subset" | "partial"));
        for (fi, f) in schema.fields.iter().enumerate() {
            if columns[fi].is_none() && (!partial || !f.is_optional(schema)) {
                return Err(HeaderError {
                    code: "missing-label",
                    message: format!("the file has no column for field \"{}\" ({})", f.name, f.label()),
                    message_zh: format!("文件缺少字段“{}”（{}）对应的列", f.label(), f.name),
                });
            }
        }
        Ok(Self::build(schema, columns, header.to_vec(), by_label, today, opts))
    }

    /// For JSON Lines: objects are matched by key (field names or titles).
    pub fn for_objects(schema: &TableSchema, today: NaiveDate, opts: CastOptions) -> RowValidator {
        let by_label = label_map(schema);
        let labels = schema.fields.iter().map(|f| f.name.clone()).collect();
        Self::build(schema, vec![None; schema.fields.len()], labels, by_label, today, opts)
    }

    fn build(
        schema: &TableSchema,
        columns: Vec<Option<usize>>,
        labels: Vec<String>,
        by_label: HashMap<String, usize>,
        today: NaiveDate,
        opts: CastOptions,
    ) -> RowValidator {
        RowValidator {
            schema: schema.clone(),
            columns,
            labels,
            by_label,
            prepared: schema.fields.iter().map(PreparedField::new).collect(),
            hash_buf: String::new(),
            today,
            opts,
        }
    }

    pub fn schema(&self) -> &TableSchema {
        &self.schema
    }

    fn problem(&self, row: u64, field: Option<&Field>, raw: Option<&str>, p: CellProblem) -> Problem {
        let sensitive = field.is_some_and(|f| f.sensitive);
        // Messages quote the value; a sensitive value is masked there too.
        let hide = |m: String| match raw {
            Some(r) if sensitive && !r.is_empty() => m.replace(r, &mask(r)),
            _ => m,
        };
        Problem {
            row,
            field: field.map(|f| f.name.clone()),
            code: p.code.to_string(),
            severity: if p.severity == Severity::Error { "error" } else { "warning" },
            value: raw.map(|r| if sensitive { mask(r) } else { r.to_string() }),
            message: hide(p.message_en),
            message_zh: hide(p.message_zh),
        }
    }

    fn raw_map<C: TextCells + ?Sized>(&self, cells: &C) -> Map<String, Value> {
        let mut m = Map::new();
        for (i, v) in (0..cells.cell_count()).filter_map(|i| cells.cell(i)).enumerate() {
            let label = self.labels.get(i).cloned().unwrap_or_else(|| format!("column {}", i + 1));
            let sensitive = self.by_label.get(label.as_str()).is_some_and(|fi| self.schema.fields[*fi].sensitive);
            m.insert(label, Value::String(if sensitive { mask(v) } else { v.to_string() }));
        }
        m
    }

    /// Validate a text record (CSV/XLSX).
    pub fn text_row<C: TextCells + ?Sized>(&mut self, row: u64, cells: &C) -> RowOutcome {
        let count = cells.cell_count();
        if (0..count).all(|i| cells.cell(i).is_none_or(|c| c.trim().is_empty())) {
            return RowOutcome::Blank(self.blank(row, self.raw_map(cells)));
        }
        let mut problems = Vec::new();
        if count > self.labels.len() {
            problems.push(Problem {
                row,
                field: None,
                code: "extra-cell".into(),
                severity: "error",
                value: None,
                message: format!("the row has {} cells but the header has {}", count, self.labels.len()),
                message_zh: format!("该行有{}个单元格，表头只有{}列", count, self.labels.len()),
            });
        }
        let mut typed = Vec::with_capacity(self.schema.fields.len());
        for fi in 0..self.schema.fields.len() {
            let f = &self.schema.fields[fi];
            let raw = match self.columns[fi] {
                Some(ci) => match cells.cell(ci) {
                    Some(v) => Some(v),
                    None => {
                        problems.push(Problem {
                            row,
                            field: Some(f.name.clone()),
                            code: "missing-cell".into(),
                            severity: "error",
                            value: None,
                            message: format!("the row ends before the cell for field \"{}\"", f.name),
                            message_zh: format!("该行缺少字段“{}”的单元格", f.label()),
                        });
                        typed.push(Cell::Null);
                        continue;
                    }
                },
                None => None,
            };
            let cast = match raw {
                Some(r) => {
                    // Clean cells (nearly all) take the fast path; the others are cast
                    // again by `cast_text`, which finds and words their problems.
                    let missing = &self.schema.missing_values;
                    if let Some(v) = self.prepared[fi].cast_clean(f, r, missing, self.today, self.opts) {
                        typed.push(v);
                        continue;
                    }
                    cast_text(f, r, missing, self.today, self.opts)
                }
                None => cast_text(f, "", &[String::new()], self.today, self.opts),
            };
            for p in cast.problems {
                problems.push(self.problem(row, Some(f), raw, p));
            }
            typed.push(cast.value);
        }
        match self.finish(row, typed, problems) {
            Ok(v) => RowOutcome::Valid(v),
            Err(problems) => RowOutcome::Quarantined(QuarantinedRow { row, raw: self.raw_map(cells), problems }),
        }
    }

    /// Validate a JSON object (JSON Lines).
    pub fn json_row(&mut self, row: u64, obj: &Map<String, Value>) -> RowOutcome {
        if obj.is_empty() {
            return RowOutcome::Blank(self.blank(row, Map::new()));
        }
        let mut problems = Vec::new();
        let mut values: Vec<Option<&Value>> = vec![None; self.schema.fields.len()];
        for (k, v) in obj {
            match self.by_label.get(k.as_str()) {
                Some(&fi) => values[fi] = Some(v),
                None => problems.push(Problem {
                    row,
                    field: Some(k.clone()),
                    code: "extra-cell".into(),
                    severity: "error",
                    value: None,
                    message: format!("\"{k}\" is not a field of this dataset"),
                    message_zh: format!("“{k}”不是本数据集的字段"),
                }),
            }
        }
        let mut typed = Vec::with_capacity(values.len());
        for (fi, v) in values.iter().enumerate() {
            let f = &self.schema.fields[fi];
            let cast = cast_json(f, v.unwrap_or(&Value::Null), &self.schema.missing_values, self.today, self.opts);
            let raw_text = v.map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
            for p in cast.problems {
                problems.push(self.problem(row, Some(f), raw_text.as_deref(), p));
            }
            typed.push(cast.value);
        }
        match self.finish(row, typed, problems) {
            Ok(v) => RowOutcome::Valid(v),
            Err(problems) => {
                let mut raw = Map::new();
                for (k, v) in obj {
                    let sensitive = self.by_label.get(k.as_str()).is_some_and(|fi| self.schema.fields[*fi].sensitive);
                    let text = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                    raw.insert(k.clone(), Value::String(if sensitive { mask(&text) } else { text }));
                }
                RowOutcome::Quarantined(QuarantinedRow { row, raw, problems })
            }
        }
    }

    /// A record the reader could not parse at all (e.g. a JSON line that is not JSON).
    pub fn unreadable(&self, row: u64, code: &str, message: String, message_zh: String) -> QuarantinedRow {
        QuarantinedRow {
            row,
            raw: Map::new(),
            problems: vec![Problem {
                row,
                field: None,
                code: code.into(),
                severity: "error",
                value: None,
                message,
                message_zh,
            }],
        }
    }

    fn blank(&self, row: u64, raw: Map<String, Value>) -> QuarantinedRow {
        QuarantinedRow {
            row,
            raw,
            problems: vec![Problem {
                row,
                field: None,
                code: "blank-row".into(),
                severity: "error",
                value: None,
                message: "the row is empty".into(),
                message_zh: "该行为空行".into(),
            }],
        }
    }

    /// The content hash; the problems when the row must be quarantined (the caller
    /// then builds the raw row — only for those, it is not cheap). A key repeated
    /// within the delivery is the store's to find ([`repeated_key`]): it sees every
    /// key anyway, so the reader keeps none and its memory stays flat.
    fn finish(&mut self, row: u64, cells: Vec<Cell>, problems: Vec<Problem>) -> Result<ValidRow, Vec<Problem>> {
        if problems.iter().any(|p| p.severity == "error") {
            return Err(problems);
        }
        let hash = content_hash_in(&cells, &mut self.hash_buf);
        Ok(ValidRow { row, hash, cells, warnings: problems })
    }

    /// The label each field had in the delivered file, in schema field order (the
    /// field's name when the file had no column for it, and for JSON Lines).
    pub fn field_labels(&self) -> Vec<String> {
        self.schema
            .fields
            .iter()
            .zip(&self.columns)
            .map(|(f, c)| c.and_then(|c| self.labels.get(c)).cloned().unwrap_or_else(|| f.name.clone()))
            .collect()
    }
}

/// The quarantined form of a valid row whose primary key an earlier row of the same
/// delivery already had: the later row loses. `labels` are the delivered column labels
/// by field ([`RowValidator::field_labels`]); sensitive values are masked.
pub fn repeated_key(schema: &TableSchema, labels: &[String], row: ValidRow) -> QuarantinedRow {
    let key_fields: Vec<&Field> =
        schema.primary_key.iter().filter_map(|k| schema.fields.iter().find(|f| &f.name == k)).collect();
    let key_text = |f: &Field| {
        schema.fields.iter().position(|g| g.name == f.name).and_then(|i| row.cells.get(i)).map(Cell::to_text)
    };
    let joined: Vec<String> = key_fields.iter().map(|f| key_text(f).unwrap_or_default()).collect();
    let joined = joined.join(", ");
    let shown = if key_fields.iter().any(|f| f.sensitive) { mask(&joined) } else { joined };
    let mut raw = Map::new();
    for (i, (f, c)) in schema.fields.iter().zip(&row.cells).enumerate() {
        let label = labels.get(i).cloned().unwrap_or_else(|| f.name.clone());
        let text = if c.is_null() { String::new() } else { c.to_text() };
        raw.insert(label, Value::String(if f.sensitive && !text.is_empty() { mask(&text) } else { text }));
    }
    let mut problems = row.warnings;
    problems.push(Problem {
        row: row.row,
        field: Some(schema.primary_key.join(",")),
        code: "primary-key".into(),
        severity: "error",
        value: Some(shown.clone()),
        message: format!("primary key {shown} already appeared earlier in this delivery"),
        message_zh: format!("主键{shown}在本次交付中重复出现"),
    });
    QuarantinedRow { row: row.row, raw, problems }
}

/// The primary keys a delivery has had so far, as 128-bit digests the store makes of
/// them (16 bytes a key; the top 12 bits choose the part, the low 64 the slot): for a
/// store that cannot ask its own tables which rows the delivery has written.
///
/// Split into [`KEY_SET_PARTS`] sets of unequal shares (the largest twice the
/// smallest). A hash table doubles when 7/8 full: one table of 4 M keys had just
/// doubled to 8 M slots (≈ 140 MB) and held its old table too while growing; equal
/// parts all double at the same moment, the same thing in 256 pieces. Parts of
/// graded sizes double one after another, spread over the whole range of key counts:
/// their fill averages ≈ 63 % whatever the count, and only one part's old table is
/// ever waiting to be freed.
pub struct KeySet {
    parts: Vec<HashSet<u128, BuildHasherDefault<KeyHasher>>>,
    /// The part of each of the 4,096 slices of the digest's top 12 bits.
    slice_part: Vec<u8>,
}

/// Parts of a [`KeySet`].
const KEY_SET_PARTS: usize = 256;

impl Default for KeySet {
    fn default() -> KeySet {
        // Part p's share grows as 2^(p/256): cumulative shares cut [0, 1) into parts.
        let weight = |p: usize| (p as f64 / KEY_SET_PARTS as f64).exp2();
        let total: f64 = (0..KEY_SET_PARTS).map(weight).sum();
        let mut slice_part = Vec::with_capacity(4096);
        let (mut part, mut upto) = (0usize, weight(0) / total);
        for slice in 0..4096 {
            let at = (slice as f64 + 0.5) / 4096.0;
            while at >= upto && part + 1 < KEY_SET_PARTS {
                part += 1;
                upto += weight(part) / total;
            }
            slice_part.push(part as u8);
        }
        KeySet { parts: (0..KEY_SET_PARTS).map(|_| HashSet::default()).collect(), slice_part }
    }
}

impl KeySet {
    fn part(&mut self, d: u128) -> &mut HashSet<u128, BuildHasherDefault<KeyHasher>> {
        let i = self.slice_part.get((d >> 116) as usize).copied().unwrap_or(0);
        &mut self.parts[usize::from(i)]
    }

    /// True the first time a key (its digest) is seen.
    pub fn first(&mut self, digest: u128) -> bool {
        self.part(digest).insert(digest)
    }

    /// Whether a key (its digest) was seen, without adding it.
    pub fn contains(&mut self, digest: u128) -> bool {
        self.part(digest).contains(&digest)
    }
}

/// Hashes the xxh3-128 of a key: its low half is as good a hash as any.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

fn label_map(schema: &TableSchema) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for (i, f) in schema.fields.iter().enumerate() {
        if let Some(t) = &f.title {
            m.entry(t.trim().to_string()).or_insert(i);
        }
    }
    // Names win over titles.
    for (i, f) in schema.fields.iter().enumerate() {
        m.insert(f.name.clone(), i);
    }
    m
}

/// xxh3 over the canonical texts of the cells, with separators and null markers.
pub fn content_hash(cells: &[Cell]) -> i64 {
    content_hash_in(cells, &mut String::new())
}

/// [`content_hash`] with a buffer to reuse: the bytes hashed are laid out in `buf`
/// and hashed in one go (the same value as feeding them to xxh3 piece by piece).
fn content_hash_in(cells: &[Cell], buf: &mut String) -> i64 {
    buf.clear();
    for c in cells {
        match c {
            Cell::Null => buf.push('\0'),
            other => {
                buf.push('\u{1}');
                other.write_text(buf);
            }
        }
        buf.push('\u{1f}');
    }
    xxh3_64(buf.as_bytes()) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> TableSchema {
        TableSchema::parse(&json!({
            "fields": [
                {"name": "sfzh", "title": "公民身份号码", "format": "id-number", "sensitive": true},
                {"name": "xm", "title": "姓名", "constraints": {"required": true}, "sensitive": true},
                {"name": "nl", "title": "年龄", "type": "integer", "constraints": {"minimum": 0}}
            ],
            "primaryKey": "sfzh"
        }))
        .unwrap()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
    }

    fn header(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn header_by_name_or_title_in_any_order() {
        let v =
            RowValidator::for_header(&schema(), &header(&["年龄", "sfzh", "姓名"]), today(), CastOptions::default());
        assert!(v.is_ok());
        let e = RowValidator::for_header(
            &schema(),
            &header(&["sfzh", "xm", "nl", "colour"]),
            today(),
            CastOptions::default(),
        )
        .err()
        .unwrap();
        assert_eq!(e.code, "extra-label");
        let e = RowValidator::for_header(&schema(), &header(&["sfzh", "nl"]), today(), CastOptions::default())
            .err()
            .unwrap();
        assert_eq!(e.code, "missing-label");
        assert!(e.message_zh.contains("姓名"));
        let e = RowValidator::for_header(
            &schema(),
            &header(&["sfzh", "xm", "姓名", "nl"]),
            today(),
            CastOptions::default(),
        )
        .err()
        .unwrap();
        assert_eq!(e.code, "duplicate-label");
    }

    #[test]
    fn rows_valid_quarantined_and_duplicate_keys() {
        let mut v =
            RowValidator::for_header(&schema(), &header(&["sfzh", "xm", "nl"]), today(), CastOptions::default())
                .unwrap();
        let ok = v.text_row(1, &header(&["320402199003071235", "张三", "36"]));
        let RowOutcome::Valid(r) = ok else { panic!("{ok:?}") };
        assert_eq!(r.cells[2], Cell::Int(36));

        let bad = v.text_row(2, &header(&["320402199003071230", "", "-3"]));
        let RowOutcome::Quarantined(q) = bad else { panic!("{bad:?}") };
        let codes: Vec<&str> = q.problems.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(codes, vec!["id-number-check", "constraint-error", "constraint-error"]);
        // Sensitive values are masked in reports, messages included.
        assert_eq!(q.problems[0].value.as_deref(), Some("3204**********1230"));
        assert!(!q.problems[0].message_zh.contains("320402199003071230"), "{}", q.problems[0].message_zh);
        assert!(!q.problems[0].message.contains("320402199003071230"));
        assert_ne!(q.raw["sfzh"], json!("320402199003071230"));

        // A repeated key is the store's to find; the row itself is valid.
        let dup = v.text_row(3, &header(&["320402199003071235", "李四", "40"]));
        let RowOutcome::Valid(dup) = dup else { panic!("{dup:?}") };
        let q = repeated_key(v.schema(), &v.field_labels(), dup);
        assert_eq!(q.row, 3);
        assert_eq!(q.problems[0].code, "primary-key");
        assert_eq!(q.problems[0].value.as_deref(), Some("3204**********1235"));
        assert!(!q.problems[0].message_zh.contains("320402199003071235"));
        assert_eq!(q.raw["sfzh"], json!("3204**********1235"));
        assert_eq!(q.raw["nl"], json!("40"));

        let ragged = v.text_row(4, &header(&["11010519491231002X", "王五"]));
        let RowOutcome::Quarantined(q) = ragged else { panic!() };
        assert_eq!(q.problems[0].code, "missing-cell");
        let extra = v.text_row(5, &header(&["440524188001010014", "赵六", "1", "x"]));
        let RowOutcome::Quarantined(q) = extra else { panic!() };
        assert_eq!(q.problems[0].code, "extra-cell");
        assert!(matches!(v.text_row(6, &header(&["", "", ""])), RowOutcome::Blank(_)));
    }

    #[test]
    fn repeated_key_rows_keep_the_delivered_labels() {
        let v = RowValidator::for_header(
            &schema(),
            &header(&["年龄", "公民身份号码", "姓名"]),
            today(),
            CastOptions::default(),
        )
        .unwrap();
        assert_eq!(v.field_labels(), header(&["公民身份号码", "姓名", "年龄"]));
        let row = ValidRow {
            row: 9,
            cells: vec![Cell::Text("320402199003071235".into()), Cell::Text("张三".into()), Cell::Null],
            hash: 0,
            warnings: vec![],
        };
        let q = repeated_key(v.schema(), &v.field_labels(), row);
        let labels: Vec<&String> = q.raw.keys().collect();
        assert_eq!(labels, vec!["公民身份号码", "姓名", "年龄"]);
        assert_eq!(q.raw["姓名"], json!("张*"));
        assert_eq!(q.raw["年龄"], json!(""));
        assert_eq!(q.problems[0].field.as_deref(), Some("sfzh"));
        let j = RowValidator::for_objects(&schema(), today(), CastOptions::default());
        assert_eq!(j.field_labels(), header(&["sfzh", "xm", "nl"]));
    }

    #[test]
    fn key_set_sees_each_key_once() {
        let mut s = KeySet::default();
        let d = |i: u64| xxhash_rust::xxh3::xxh3_128(&i.to_le_bytes());
        assert!(s.first(d(1)));
        assert!(!s.first(d(1)));
        assert!(s.contains(d(1)));
        assert!(!s.contains(d(2)));
        assert!(s.first(d(2)), "contains does not add");
        // Many keys across all parts (and digests at the ends of the range): each seen once.
        let keys: Vec<u128> = (3..20_000).map(d).chain([0, u128::MAX]).collect();
        assert!(keys.iter().all(|&k| s.first(k)));
        assert!(keys.iter().all(|&k| !s.first(k) && s.contains(k)));
        // Every part has a share, the largest about twice the smallest.
        let mut slices = [0usize; 256];
        for &p in &s.slice_part {
            slices[usize::from(p)] += 1;
        }
        let (min, max) = (slices.iter().min().copied().unwrap(), slices.iter().max().copied().unwrap());
        assert!(min >= 10 && max <= 23 && slices.iter().sum::<usize>() == 4096, "{min}..{max}");
    }

    #[test]
    fn json_rows() {
        let mut v = RowValidator::for_objects(&schema(), today(), CastOptions::default());
        let ok = v.json_row(1, json!({"sfzh": "320402199003071235", "姓名": "张三", "nl": 36}).as_object().unwrap());
        assert!(matches!(ok, RowOutcome::Valid(_)));
        let bad = v.json_row(
            2,
            json!({"sfzh": "11010519491231002X", "xm": "李四", "nl": "x", "extra": 1}).as_object().unwrap(),
        );
        let RowOutcome::Quarantined(q) = bad else { panic!() };
        let codes: Vec<&str> = q.problems.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(codes, vec!["extra-cell", "type-error"]);
    }

    #[test]
    fn hashes_differ_on_content_not_on_identity() {
        let a = content_hash(&[Cell::Text("a".into()), Cell::Null]);
        let b = content_hash(&[Cell::Text("a".into()), Cell::Text(String::new())]);
        assert_ne!(a, b, "null and empty string differ");
        assert_eq!(a, content_hash(&[Cell::Text("a".into()), Cell::Null]));
    }

    /// The hash as it was first defined: xxh3 fed piece by piece.
    fn streamed_hash(cells: &[Cell]) -> i64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for c in cells {
            match c {
                Cell::Null => h.update(&[0]),
                other => {
                    h.update(&[1]);
                    h.update(other.to_text().as_bytes());
                }
            }
            h.update(&[0x1f]);
        }
        h.digest() as i64
    }

    proptest::proptest! {
        #[test]
        fn one_shot_hash_is_the_streamed_hash(texts in proptest::collection::vec(proptest::option::of("\\PC{0,90}"), 0..14), n in proptest::prelude::any::<i64>(), day in 0i64..80_000) {
            let mut cells: Vec<Cell> = texts.into_iter().map(|t| t.map_or(Cell::Null, Cell::Text)).collect();
            let date = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Days::new(day as u64);
            cells.push(Cell::Int(n));
            cells.push(Cell::Date(date));
            cells.push(Cell::DateTime(date.and_hms_opt(1, 2, 3).unwrap().and_utc()));
            cells.push(Cell::Num(n as f64 / 7.0));
            cells.push(Cell::Bool(n % 2 == 0));
            proptest::prop_assert_eq!(content_hash(&cells), streamed_hash(&cells));
        }
    }

    #[test]
    fn masking() {
        assert_eq!(mask("张三"), "张*");
        assert_eq!(mask("13812345678"), "13*******78");
        assert_eq!(mask("欧阳娜娜"), "欧**娜");
    }
}
