//! Casting and checking one cell against its field (Frictionless Table Schema v2
//! semantics plus govhub's national formats). Used by every delivery, whatever the file
//! format: CSV and XLSX cells arrive as text, JSON Lines values as JSON.
//!
//! Errors carry Frictionless error codes (`type-error`, `constraint-error`) or ours
//! (`id-number-check`, `uscc-check`, …) and messages in Chinese and English.

use crate::schema::{Field, FieldType};
use crate::standards::{AdminCode, IdNumber, Mobile, Uscc};
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Timelike, Utc};
use serde_json::Value;
use std::cmp::Ordering;

/// A typed cell value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Int(i64),
    Num(f64),
    Bool(bool),
    Date(NaiveDate),
    Time(NaiveTime),
    DateTime(DateTime<Utc>),
    /// Boxed: a cell is 32 bytes instead of 72 (a JSON value with an ordered map is
    /// 72), and deliveries hold hundreds of thousands of rows of cells in flight.
    Json(Box<Value>),
}

impl Cell {
    pub fn json(v: Value) -> Cell {
        Cell::Json(Box::new(v))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Cell::Null)
    }

    /// Canonical text form: what CSV exports and hashes use.
    pub fn to_text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            other => {
                let mut out = String::new();
                other.write_text(&mut out);
                out
            }
        }
    }

    /// Append the canonical text form to `out` (no intermediate allocation for
    /// numbers and dates: this runs for every cell of every delivered row).
    pub fn write_text(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = match self {
            Cell::Null => Ok(()),
            Cell::Text(s) => out.write_str(s),
            Cell::Int(i) => {
                push_int(out, *i);
                Ok(())
            }
            // The common shapes written by hand, as chrono writes them (tested).
            Cell::Date(d) if (0..=9999).contains(&d.year()) => {
                push_date(out, *d);
                Ok(())
            }
            Cell::DateTime(t) if (0..=9999).contains(&t.naive_utc().year()) && t.nanosecond() == 0 => {
                let n = t.naive_utc();
                let mut b = *b"0000-00-00T00:00:00Z";
                put_date(&mut b, n.date());
                put_2(&mut b[11..13], n.hour());
                put_2(&mut b[14..16], n.minute());
                put_2(&mut b[17..19], n.second());
                push_ascii(out, &b);
                Ok(())
            }
            Cell::Num(n) => write!(out, "{n}"),
            Cell::Bool(b) => write!(out, "{b}"),
            // NaiveDate's Display is ISO 8601 (YYYY-MM-DD) without strftime parsing.
            Cell::Date(d) => write!(out, "{d}"),
            Cell::Time(t) => write!(out, "{}", t.format("%H:%M:%S")),
            Cell::DateTime(t) => out.write_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            Cell::Json(v) => write!(out, "{v}"),
        };
    }

    /// JSON form for API answers (what [`Cell`]'s `Serialize` writes).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    fn partial_cmp_cell(&self, other: &Cell) -> Option<Ordering> {
        match (self, other) {
            (Cell::Int(a), Cell::Int(b)) => a.partial_cmp(b),
            (Cell::Num(a), Cell::Num(b)) => a.partial_cmp(b),
            (Cell::Int(a), Cell::Num(b)) => (*a as f64).partial_cmp(b),
            (Cell::Num(a), Cell::Int(b)) => a.partial_cmp(&(*b as f64)),
            (Cell::Date(a), Cell::Date(b)) => a.partial_cmp(b),
            (Cell::Time(a), Cell::Time(b)) => a.partial_cmp(b),
            (Cell::DateTime(a), Cell::DateTime(b)) => a.partial_cmp(b),
            (Cell::Text(a), Cell::Text(b)) => a.partial_cmp(b),
            _ => None,
        }
    }
}

/// Two digits of `v` (below 100) into `at` (two bytes).
fn put_2(at: &mut [u8], v: u32) {
    if let [tens, units] = at {
        *tens = b'0' + (v / 10 % 10) as u8;
        *units = b'0' + (v % 10) as u8;
    }
}

/// `YYYY-MM-DD` (a year in 0..=9999) into the first ten bytes of `b`, which hold
/// the dashes already.
fn put_date(b: &mut [u8], d: NaiveDate) {
    let y = d.year() as u32;
    put_2(&mut b[0..2], y / 100);
    put_2(&mut b[2..4], y % 100);
    put_2(&mut b[5..7], d.month());
    put_2(&mut b[8..10], d.day());
}

/// Append ASCII bytes (checked, cheaply: they are a handful).
fn push_ascii(out: &mut String, b: &[u8]) {
    if let Ok(s) = std::str::from_utf8(b) {
        out.push_str(s);
    }
}

/// `YYYY-MM-DD` for a year in 0..=9999 (as `NaiveDate`'s `Display`).
fn push_date(out: &mut String, d: NaiveDate) {
    let mut b = *b"0000-00-00";
    put_date(&mut b, d);
    push_ascii(out, &b);
}

/// An integer in decimal (as its `Display`).
fn push_int(out: &mut String, i: i64) {
    if i < 0 {
        out.push('-');
    }
    let mut n = i.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    push_ascii(out, &digits[at..]);
}

/// Severity of a cell problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The row is quarantined.
    Error,
    /// The row is accepted; the problem is reported.
    Warning,
}

/// A problem with one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct CellProblem {
    pub code: &'static str,
    pub severity: Severity,
    pub message_en: String,
    pub message_zh: String,
}

impl CellProblem {
    fn error(code: &'static str, en: impl Into<String>, zh: impl Into<String>) -> Self {
        CellProblem { code, severity: Severity::Error, message_en: en.into(), message_zh: zh.into() }
    }
    fn warning(code: &'static str, en: impl Into<String>, zh: impl Into<String>) -> Self {
        CellProblem { code, severity: Severity::Warning, message_en: en.into(), message_zh: zh.into() }
    }
}

/// Options that change how strictly cells are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CastOptions {
    /// Treat a wrong USCC check character as an error instead of a warning.
    pub enforce_uscc_check: bool,
}

/// The outcome of casting a cell: the value (absent when an error made it unusable)
/// and every problem found.
#[derive(Debug, Clone, PartialEq)]
pub struct Cast {
    pub value: Cell,
    pub problems: Vec<CellProblem>,
}

impl Cast {
    pub fn has_error(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }
}

fn type_error(f: &Field, raw: &str) -> CellProblem {
    let t = f.field_type.as_str();
    let fmt = f.format_or_default();
    CellProblem::error(
        "type-error",
        format!("\"{raw}\" is not a valid {t} (format {fmt})"),
        format!("“{raw}”不是合法的{}（格式{fmt}）", type_zh(f.field_type)),
    )
}

fn type_zh(t: FieldType) -> &'static str {
    match t {
        FieldType::String => "字符串",
        FieldType::Number => "数值",
        FieldType::Integer => "整数",
        FieldType::Boolean => "布尔值",
        FieldType::Object => "JSON对象",
        FieldType::Array => "JSON数组",
        FieldType::List => "列表",
        FieldType::Date => "日期",
        FieldType::Time => "时间",
        FieldType::Datetime => "日期时间",
        FieldType::Year => "年份",
        FieldType::Yearmonth => "年月",
        FieldType::Duration => "时长",
        FieldType::Geopoint => "经纬度",
        FieldType::Geojson => "GeoJSON",
        FieldType::Any => "值",
    }
}

/// China Standard Time: naive datetimes in departments' exports are local time.
const CST_SECONDS: i32 = 8 * 3600;

fn cst() -> FixedOffset {
    // 8 h is within ±24 h, so `east_opt` cannot fail; UTC is an unreachable fallback.
    FixedOffset::east_opt(CST_SECONDS).unwrap_or_else(|| Utc.fix())
}

fn extra_strings(f: &Field, key: &str, default: &[&str]) -> Vec<String> {
    match f.extra.get(key).and_then(Value::as_array) {
        Some(a) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        None => default.iter().map(|s| s.to_string()).collect(),
    }
}

fn extra_str<'a>(f: &'a Field, key: &str) -> Option<&'a str> {
    f.extra.get(key).and_then(Value::as_str)
}

fn parse_integer(f: &Field, raw: &str) -> Option<i64> {
    let mut s = raw.to_string();
    if let Some(g) = extra_str(f, "groupChar") {
        s = s.replace(g, "");
    }
    if f.extra.get("bareNumber") == Some(&Value::Bool(false)) {
        s = s.trim_matches(|c: char| !(c.is_ascii_digit() || c == '-' || c == '+')).to_string();
    }
    s.parse::<i64>().ok()
}

fn parse_number(f: &Field, raw: &str) -> Option<f64> {
    let mut s = raw.to_string();
    if let Some(g) = extra_str(f, "groupChar") {
        s = s.replace(g, "");
    }
    if let Some(d) = extra_str(f, "decimalChar") {
        s = s.replace(d, ".");
    }
    if f.extra.get("bareNumber") == Some(&Value::Bool(false)) {
        s = s.trim_matches(|c: char| !(c.is_ascii_digit() || c == '-' || c == '+' || c == '.')).to_string();
    }
    match s.as_str() {
        "NaN" => Some(f64::NAN),
        "INF" => Some(f64::INFINITY),
        "-INF" => Some(f64::NEG_INFINITY),
        _ => {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')) {
                None
            } else {
                s.parse::<f64>().ok()
            }
        }
    }
}

/// `YYYY-MM-DD` without going through strftime-pattern parsing (hot path).
pub fn iso_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
    };
    NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)
}

const DATE_ANY: &[&str] = &["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d", "%Y年%m月%d日"];
const DATETIME_ANY: &[&str] =
    &["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y%m%d%H%M%S"];

fn parse_date(f: &Field, raw: &str) -> Option<NaiveDate> {
    match f.format_or_default() {
        "default" => iso_date(raw),
        "any" => DATE_ANY.iter().find_map(|p| NaiveDate::parse_from_str(raw, p).ok()),
        pattern => NaiveDate::parse_from_str(raw, pattern).ok(),
    }
}

fn parse_time(f: &Field, raw: &str) -> Option<NaiveTime> {
    match f.format_or_default() {
        "default" => NaiveTime::parse_from_str(raw, "%H:%M:%S").ok(),
        "any" => ["%H:%M:%S", "%H:%M", "%H%M%S"].iter().find_map(|p| NaiveTime::parse_from_str(raw, p).ok()),
        pattern => NaiveTime::parse_from_str(raw, pattern).ok(),
    }
}

fn parse_datetime(f: &Field, raw: &str) -> Option<DateTime<Utc>> {
    let local = |n: NaiveDateTime| cst().from_local_datetime(&n).single().map(|d| d.with_timezone(&Utc));
    match f.format_or_default() {
        "default" => DateTime::parse_from_rfc3339(raw)
            .ok()
            .map(|d| d.with_timezone(&Utc))
            .or_else(|| raw.parse::<NaiveDateTime>().ok().filter(|_| raw.len() >= 19).and_then(local)),
        "any" => DateTime::parse_from_rfc3339(raw)
            .ok()
            .map(|d| d.with_timezone(&Utc))
            .or_else(|| DATETIME_ANY.iter().find_map(|p| NaiveDateTime::parse_from_str(raw, p).ok()).and_then(local)),
        pattern => NaiveDateTime::parse_from_str(raw, pattern).ok().and_then(local),
    }
}

fn valid_geopoint(f: &Field, raw: &str) -> bool {
    let pair = match f.format_or_default() {
        "array" => serde_json::from_str::<Vec<f64>>(raw).ok().filter(|v| v.len() == 2).map(|v| (v[0], v[1])),
        "object" => serde_json::from_str::<Value>(raw)
            .ok()
            .and_then(|v| Some((v.get("lon")?.as_f64()?, v.get("lat")?.as_f64()?))),
        _ => raw.split_once(',').and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?))),
    };
    pair.is_some_and(|(lon, lat): (f64, f64)| (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat))
}

fn valid_duration(raw: &str) -> bool {
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"^P(?:\d+Y)?(?:\d+M)?(?:\d+W)?(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?$").ok()
    })
    .as_ref()
    .is_some_and(|re| re.is_match(raw) && raw != "P" && !raw.ends_with('T'))
}

fn valid_email(raw: &str) -> bool {
    match raw.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !raw.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// Cast a textual cell (CSV, XLSX) for a field. `today` bounds ID-number birth dates.
pub fn cast_text(f: &Field, raw: &str, missing: &[String], today: NaiveDate, opts: CastOptions) -> Cast {
    if missing.iter().any(|m| m == raw) {
        return check_constraints(f, Cell::Null, raw, Vec::new());
    }
    let (value, problems) = parse_text(f, raw, today, opts);
    match value {
        Some(v) => check_constraints(f, v, raw, problems),
        None => Cast { value: Cell::Null, problems },
    }
}

/// Parse a textual value into its type, without constraints.
fn parse_text(f: &Field, raw: &str, today: NaiveDate, opts: CastOptions) -> (Option<Cell>, Vec<CellProblem>) {
    let mut problems = Vec::new();
    let value = match f.field_type {
        FieldType::String => match f.format_or_default() {
            "id-number" => match IdNumber::parse_on(raw, today) {
                Ok(p) => {
                    for w in p.warnings {
                        problems.push(CellProblem::warning("id-number-case", w.clone(), w));
                    }
                    Some(Cell::Text(p.value.to_string()))
                }
                Err(e) => {
                    problems.push(CellProblem::error(
                        if e.code() == "format-error" { "type-error" } else { "id-number-check" },
                        format!("ID number \"{raw}\": {e}"),
                        format!("身份证号“{raw}”：{}", e.message_zh()),
                    ));
                    None
                }
            },
            "uscc" => match Uscc::parse_lenient(raw) {
                Ok(p) => {
                    if let Some(e) = p.check_failure {
                        let (en, zh) =
                            (format!("USCC \"{raw}\": {e}"), format!("统一社会信用代码“{raw}”：{}", e.message_zh()));
                        problems.push(if opts.enforce_uscc_check {
                            CellProblem::error("uscc-check", en, zh)
                        } else {
                            CellProblem::warning("uscc-check", en, zh)
                        });
                    }
                    Some(Cell::Text(p.value.to_string()))
                }
                Err(e) => {
                    problems.push(CellProblem::error(
                        "type-error",
                        format!("USCC \"{raw}\": {e}"),
                        format!("统一社会信用代码“{raw}”：{}", e.message_zh()),
                    ));
                    None
                }
            },
            "admin-code" => match AdminCode::parse(raw) {
                Ok(c) => Some(Cell::Text(c.to_string())),
                Err(e) => {
                    problems.push(CellProblem::error("admin-code", e.to_string(), e.message_zh()));
                    None
                }
            },
            "mobile" => match Mobile::parse(raw) {
                Ok(m) => Some(Cell::Text(m.as_str().to_string())),
                Err(e) => {
                    problems.push(CellProblem::error("mobile", e.to_string(), e.message_zh()));
                    None
                }
            },
            "email" if !valid_email(raw) => None,
            "uuid" if !is_uuid(raw) => None,
            "uri" if !raw.contains(':') || raw.contains(char::is_whitespace) => None,
            _ => Some(Cell::Text(raw.to_string())),
        },
        FieldType::Integer => parse_integer(f, raw).map(Cell::Int),
        FieldType::Number => parse_number(f, raw).map(Cell::Num),
        FieldType::Boolean => {
            let t = extra_strings(f, "trueValues", &["true", "True", "TRUE", "1"]);
            let fv = extra_strings(f, "falseValues", &["false", "False", "FALSE", "0"]);
            if t.iter().any(|v| v == raw) {
                Some(Cell::Bool(true))
            } else if fv.iter().any(|v| v == raw) {
                Some(Cell::Bool(false))
            } else {
                None
            }
        }
        FieldType::Date => parse_date(f, raw).map(Cell::Date),
        FieldType::Time => parse_time(f, raw).map(Cell::Time),
        FieldType::Datetime => parse_datetime(f, raw).map(Cell::DateTime),
        FieldType::Year => raw.parse::<i64>().ok().filter(|y| raw.len() == 4 && *y >= 0).map(Cell::Int),
        FieldType::Yearmonth => NaiveDate::parse_from_str(&format!("{raw}-01"), "%Y-%m-%d")
            .ok()
            .filter(|_| raw.len() == 7)
            .map(|_| Cell::Text(raw.to_string())),
        FieldType::Duration => valid_duration(raw).then(|| Cell::Text(raw.to_string())),
        FieldType::Geopoint => valid_geopoint(f, raw).then(|| Cell::Text(raw.to_string())),
        FieldType::Object | FieldType::Geojson => {
            serde_json::from_str::<Value>(raw).ok().filter(Value::is_object).map(Cell::json)
        }
        FieldType::Array => serde_json::from_str::<Value>(raw).ok().filter(Value::is_array).map(Cell::json),
        FieldType::List => {
            let d = extra_str(f, "delimiter").unwrap_or(",");
            Some(Cell::json(Value::Array(raw.split(d).map(|s| Value::String(s.to_string())).collect())))
        }
        FieldType::Any => Some(Cell::Text(raw.to_string())),
    };
    if value.is_none() && !problems.iter().any(|p| p.severity == Severity::Error) {
        problems.push(type_error(f, raw));
    }
    (value, problems)
}

/// Cast a JSON value (JSON Lines deliveries). Native JSON types are taken as they are
/// where they fit; strings go through [`cast_text`].
pub fn cast_json(f: &Field, v: &Value, missing: &[String], today: NaiveDate, opts: CastOptions) -> Cast {
    match (f.field_type, v) {
        (_, Value::Null) => check_constraints(f, Cell::Null, "", Vec::new()),
        (FieldType::Integer | FieldType::Year, Value::Number(n)) => match n.as_i64() {
            Some(i) => check_constraints(f, Cell::Int(i), &n.to_string(), Vec::new()),
            None => Cast { value: Cell::Null, problems: vec![type_error(f, &n.to_string())] },
        },
        (FieldType::Number, Value::Number(n)) => match n.as_f64() {
            Some(x) => check_constraints(f, Cell::Num(x), &n.to_string(), Vec::new()),
            None => Cast { value: Cell::Null, problems: vec![type_error(f, &n.to_string())] },
        },
        (FieldType::Boolean, Value::Bool(b)) => check_constraints(f, Cell::Bool(*b), &b.to_string(), Vec::new()),
        (FieldType::Object | FieldType::Geojson, Value::Object(_))
        | (FieldType::Array | FieldType::List, Value::Array(_)) => {
            check_constraints(f, Cell::json(v.clone()), &v.to_string(), Vec::new())
        }
        (FieldType::Any, other) if !other.is_string() => {
            check_constraints(f, Cell::json(other.clone()), &other.to_string(), Vec::new())
        }
        (_, Value::String(s)) => cast_text(f, s, missing, today, opts),
        (_, other) => Cast { value: Cell::Null, problems: vec![type_error(f, &other.to_string())] },
    }
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() })
}

fn constraint(en: String, zh: String) -> CellProblem {
    CellProblem::error("constraint-error", en, zh)
}

fn bound_cell(f: &Field, v: &Value) -> Option<Cell> {
    match f.field_type {
        FieldType::Integer | FieldType::Year => v.as_i64().map(Cell::Int),
        FieldType::Number => v.as_f64().map(Cell::Num),
        FieldType::Date => v.as_str().and_then(iso_date).map(Cell::Date),
        FieldType::Time => v.as_str().and_then(|s| NaiveTime::parse_from_str(s, "%H:%M:%S").ok()).map(Cell::Time),
        FieldType::Datetime => v.as_str().and_then(|s| {
            DateTime::parse_from_rfc3339(s).ok().map(|d| Cell::DateTime(d.with_timezone(&Utc))).or_else(|| {
                NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
                    .ok()
                    .and_then(|n| cst().from_local_datetime(&n).single())
                    .map(|d| Cell::DateTime(d.with_timezone(&Utc)))
            })
        }),
        FieldType::Yearmonth | FieldType::Duration | FieldType::String => v.as_str().map(|s| Cell::Text(s.to_string())),
        _ => None,
    }
}

fn enum_matches(f: &Field, value: &Cell, allowed: &[Value], today: NaiveDate) -> bool {
    // Fast path: text compared with text (the common case, per row).
    if let Cell::Text(t) = value {
        if f.field_type == FieldType::String && f.format_or_default() == "default" {
            return allowed.iter().any(|a| a.as_str() == Some(t.as_str()));
        }
    }
    allowed.iter().any(|a| {
        let parsed = match (f.field_type, a) {
            (_, Value::String(s)) => parse_text(f, s, today, CastOptions::default()).0,
            (FieldType::Integer | FieldType::Year, Value::Number(n)) => n.as_i64().map(Cell::Int),
            (FieldType::Number, Value::Number(n)) => n.as_f64().map(Cell::Num),
            (FieldType::Boolean, Value::Bool(b)) => Some(Cell::Bool(*b)),
            (_, other) => Some(Cell::json(other.clone())),
        };
        parsed.as_ref() == Some(value)
    })
}

fn check_constraints(f: &Field, value: Cell, raw: &str, mut problems: Vec<CellProblem>) -> Cast {
    let c = &f.constraints;
    if value.is_null() {
        if c.required {
            problems.push(constraint(
                format!("field \"{}\" is required", f.name),
                format!("字段“{}”（{}）为必填项", f.label(), f.name),
            ));
        }
        return Cast { value, problems };
    }
    let len = match &value {
        Cell::Text(s) => Some(s.chars().count() as u64),
        Cell::Json(v) => match &**v {
            Value::Array(a) => Some(a.len() as u64),
            Value::Object(o) => Some(o.len() as u64),
            _ => None,
        },
        _ => None,
    };
    if let (Some(n), Some(min)) = (len, c.min_length) {
        if n < min {
            problems
                .push(constraint(format!("length {n} is below minLength {min}"), format!("长度{n}小于最小长度{min}")));
        }
    }
    if let (Some(n), Some(max)) = (len, c.max_length) {
        if n > max {
            problems
                .push(constraint(format!("length {n} exceeds maxLength {max}"), format!("长度{n}超过最大长度{max}")));
        }
    }
    let cmp = |b: &Option<Value>| b.as_ref().and_then(|b| bound_cell(f, b)).and_then(|b| value.partial_cmp_cell(&b));
    if matches!(cmp(&c.minimum), Some(Ordering::Less)) {
        problems.push(constraint(
            format!("{raw} is below the minimum {}", c.minimum.as_ref().map(Value::to_string).unwrap_or_default()),
            format!("{raw}小于最小值{}", c.minimum.as_ref().map(Value::to_string).unwrap_or_default()),
        ));
    }
    if matches!(cmp(&c.maximum), Some(Ordering::Greater)) {
        problems.push(constraint(
            format!("{raw} is above the maximum {}", c.maximum.as_ref().map(Value::to_string).unwrap_or_default()),
            format!("{raw}大于最大值{}", c.maximum.as_ref().map(Value::to_string).unwrap_or_default()),
        ));
    }
    if matches!(cmp(&c.exclusive_minimum), Some(Ordering::Less | Ordering::Equal)) {
        problems
            .push(constraint(format!("{raw} must be above the exclusive minimum"), format!("{raw}应大于下限（不含）")));
    }
    if matches!(cmp(&c.exclusive_maximum), Some(Ordering::Greater | Ordering::Equal)) {
        problems
            .push(constraint(format!("{raw} must be below the exclusive maximum"), format!("{raw}应小于上限（不含）")));
    }
    if let (Some(p), Cell::Text(s)) = (&c.pattern, &value) {
        if pattern_matches(p, s) == Some(false) {
            problems
                .push(constraint(format!("\"{s}\" does not match the pattern {p}"), format!("“{s}”不符合格式要求{p}")));
        }
    }
    if let Some(allowed) = &c.enum_values {
        if !enum_matches(f, &value, allowed, NaiveDate::MAX) {
            let list: Vec<String> =
                allowed.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect();
            problems.push(constraint(
                format!("\"{raw}\" is not one of {}", list.join(", ")),
                format!("“{raw}”不在可选值（{}）之中", list.join("、")),
            ));
        }
    }
    Cast { value, problems }
}

/// How [`PreparedField::cast_clean`] reads a cell of one field.
#[derive(Debug, Clone)]
enum FastKind {
    /// Kept as it is (`string` with the default format, `any`).
    Text,
    IdNumber,
    Uscc,
    AdminCode,
    Mobile,
    /// `integer` without `groupChar` or `bareNumber: false`.
    Integer,
    /// `number` without `groupChar`, `decimalChar` or `bareNumber: false`.
    Number,
    Boolean {
        true_values: Vec<String>,
        false_values: Vec<String>,
    },
    /// `date` with the default format.
    Date,
    /// `datetime` with the default format.
    Datetime,
    /// Everything else: [`parse_text`], accepted when it finds no problem.
    Other,
}

/// A field made ready for casting many cells: what [`cast_text`] derives again for
/// every cell (the parsed bounds, the compiled pattern, the enum's strings, the
/// boolean words) is worked out once.
///
/// [`PreparedField::cast_clean`] answers only for cells without any problem, and then
/// exactly as [`cast_text`] would; for every other cell it answers `None` and the
/// caller goes through [`cast_text`], which finds and words the problems.
#[derive(Debug, Clone)]
pub struct PreparedField {
    kind: FastKind,
    required: bool,
    min_length: Option<u64>,
    max_length: Option<u64>,
    minimum: Option<Cell>,
    maximum: Option<Cell>,
    exclusive_minimum: Option<Cell>,
    exclusive_maximum: Option<Cell>,
    /// `^(?:pattern)$`; `None` without a pattern or when it does not compile (then
    /// [`cast_text`] does not check it either).
    pattern: Option<regex::Regex>,
    /// The enum's strings, for text compared with text.
    enum_text: Option<Vec<String>>,
    /// The enum, when values are compared after parsing (non-text fields).
    enum_values: Option<Vec<Value>>,
}

impl PreparedField {
    pub fn new(f: &Field) -> PreparedField {
        let c = &f.constraints;
        let format = f.format_or_default();
        let plain_number =
            extra_str(f, "groupChar").is_none() && f.extra.get("bareNumber") != Some(&Value::Bool(false));
        let kind = match f.field_type {
            FieldType::String => match format {
                "default" => FastKind::Text,
                "id-number" => FastKind::IdNumber,
                "uscc" => FastKind::Uscc,
                "admin-code" => FastKind::AdminCode,
                "mobile" => FastKind::Mobile,
                _ => FastKind::Other,
            },
            FieldType::Any => FastKind::Text,
            FieldType::Integer if plain_number => FastKind::Integer,
            FieldType::Number if plain_number && extra_str(f, "decimalChar").is_none() => FastKind::Number,
            FieldType::Boolean => FastKind::Boolean {
                true_values: extra_strings(f, "trueValues", &["true", "True", "TRUE", "1"]),
                false_values: extra_strings(f, "falseValues", &["false", "False", "FALSE", "0"]),
            },
            FieldType::Date if format == "default" => FastKind::Date,
            FieldType::Datetime if format == "default" => FastKind::Datetime,
            _ => FastKind::Other,
        };
        let bound = |b: &Option<Value>| b.as_ref().and_then(|b| bound_cell(f, b));
        // The same test as `enum_matches`' fast path: text against the enum's strings.
        let text_enum = f.field_type == FieldType::String && format == "default";
        PreparedField {
            kind,
            required: c.required,
            min_length: c.min_length,
            max_length: c.max_length,
            minimum: bound(&c.minimum),
            maximum: bound(&c.maximum),
            exclusive_minimum: bound(&c.exclusive_minimum),
            exclusive_maximum: bound(&c.exclusive_maximum),
            pattern: c.pattern.as_ref().and_then(|p| regex::Regex::new(&format!("^(?:{p})$")).ok()),
            enum_text: c
                .enum_values
                .as_ref()
                .filter(|_| text_enum)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()),
            enum_values: c.enum_values.clone().filter(|_| !text_enum),
        }
    }

    /// The value [`cast_text`] gives `raw` when it finds no problem at all; `None`
    /// when it would find one (or might: then ask [`cast_text`]). No allocation
    /// beyond the value itself.
    pub fn cast_clean(
        &self,
        f: &Field,
        raw: &str,
        missing: &[String],
        today: NaiveDate,
        opts: CastOptions,
    ) -> Option<Cell> {
        if missing.iter().any(|m| m == raw) {
            return if self.required { None } else { Some(Cell::Null) };
        }
        let value = match &self.kind {
            FastKind::Text => Cell::Text(raw.to_string()),
            FastKind::IdNumber if IdNumber::is_valid_as_is(raw, today) => Cell::Text(raw.to_string()),
            FastKind::Uscc if Uscc::is_valid_checked(raw) => Cell::Text(raw.to_string()),
            FastKind::AdminCode if AdminCode::is_valid(raw) => Cell::Text(raw.to_string()),
            FastKind::Mobile if Mobile::is_canonical(raw) => Cell::Text(raw.to_string()),
            FastKind::IdNumber | FastKind::Uscc | FastKind::AdminCode | FastKind::Mobile => return None,
            FastKind::Integer => Cell::Int(raw.parse::<i64>().ok()?),
            FastKind::Number => Cell::Num(plain_number(raw)?),
            FastKind::Boolean { true_values, false_values } => {
                if true_values.iter().any(|v| v == raw) {
                    Cell::Bool(true)
                } else if false_values.iter().any(|v| v == raw) {
                    Cell::Bool(false)
                } else {
                    return None;
                }
            }
            FastKind::Date => Cell::Date(iso_date(raw)?),
            FastKind::Datetime => Cell::DateTime(match rfc3339_simple(raw) {
                Some(t) => t,
                None => parse_datetime(f, raw)?,
            }),
            FastKind::Other => match parse_text(f, raw, today, opts) {
                (Some(v), problems) if problems.is_empty() => v,
                _ => return None,
            },
        };
        self.satisfied(f, &value).then_some(value)
    }

    /// Whether `check_constraints` would find nothing wrong with a non-null value.
    fn satisfied(&self, f: &Field, value: &Cell) -> bool {
        if self.min_length.is_some() || self.max_length.is_some() {
            let len = match value {
                // A string has at most as many characters as bytes: count only if needed.
                Cell::Text(s) if self.min_length.is_none() && self.max_length.is_some_and(|m| s.len() as u64 <= m) => {
                    None
                }
                Cell::Text(s) => Some(s.chars().count() as u64),
                Cell::Json(v) => match &**v {
                    Value::Array(a) => Some(a.len() as u64),
                    Value::Object(o) => Some(o.len() as u64),
                    _ => None,
                },
                _ => None,
            };
            if let Some(n) = len {
                if self.min_length.is_some_and(|min| n < min) || self.max_length.is_some_and(|max| n > max) {
                    return false;
                }
            }
        }
        let cmp = |b: &Option<Cell>| b.as_ref().and_then(|b| value.partial_cmp_cell(b));
        if matches!(cmp(&self.minimum), Some(Ordering::Less))
            || matches!(cmp(&self.maximum), Some(Ordering::Greater))
            || matches!(cmp(&self.exclusive_minimum), Some(Ordering::Less | Ordering::Equal))
            || matches!(cmp(&self.exclusive_maximum), Some(Ordering::Greater | Ordering::Equal))
        {
            return false;
        }
        if let (Some(re), Cell::Text(s)) = (&self.pattern, value) {
            if !re.is_match(s) {
                return false;
            }
        }
        if let Some(allowed) = &self.enum_text {
            match value {
                Cell::Text(t) => {
                    if !allowed.iter().any(|a| a == t) {
                        return false;
                    }
                }
                // Not reached (text fields give text), but stay exact.
                other => {
                    if let Some(a) = &f.constraints.enum_values {
                        if !enum_matches(f, other, a, NaiveDate::MAX) {
                            return false;
                        }
                    }
                }
            }
        }
        if let Some(allowed) = &self.enum_values {
            if !enum_matches(f, value, allowed, NaiveDate::MAX) {
                return false;
            }
        }
        true
    }
}

/// `parse_number` for a field without `groupChar`, `decimalChar` or `bareNumber:
/// false`, without copying the text.
fn plain_number(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "INF" => Some(f64::INFINITY),
        "-INF" => Some(f64::NEG_INFINITY),
        _ => {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')) {
                None
            } else {
                s.parse::<f64>().ok()
            }
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS` followed by `Z` or `±HH:MM` (hours below 24), the shape
/// exports use: the same instant `DateTime::parse_from_rfc3339` gives. `None` for
/// anything else (fractions, leap seconds, `-00:00`, lower-case letters, …), which
/// then goes through chrono.
fn rfc3339_simple(raw: &str) -> Option<DateTime<Utc>> {
    let b = raw.as_bytes();
    if (b.len() != 20 && b.len() != 25)
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
    };
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let (h, m, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let time = NaiveTime::from_hms_opt(h, m, sec)?;
    let offset = match (b.len(), b[19]) {
        (20, b'Z') => 0,
        (25, sign @ (b'+' | b'-')) if b[22] == b':' => {
            let (oh, om) = (num(20..22)?, num(23..25)?);
            if oh > 23 || om > 59 || (sign == b'-' && oh == 0 && om == 0) {
                return None;
            }
            let secs = (oh * 3600 + om * 60) as i32;
            if sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    let local = date.and_time(time);
    let utc = local.checked_sub_signed(chrono::TimeDelta::seconds(i64::from(offset)))?;
    Some(Utc.from_utc_datetime(&utc))
}

/// Patterns are compiled once per thread and matched in place: a cloned `Regex`
/// would start with a cold cache on every row. `None` when the pattern does not
/// compile (schemas are validated on registration, so that means a changed regex
/// dialect, not bad input).
fn pattern_matches(p: &str, s: &str) -> Option<bool> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        static CACHE: RefCell<HashMap<String, Option<regex::Regex>>> = RefCell::new(HashMap::new());
    }
    CACHE.with(|cache| {
        let mut map = cache.borrow_mut();
        if !map.contains_key(p) {
            map.insert(p.to_string(), regex::Regex::new(&format!("^(?:{p})$")).ok());
        }
        map.get(p).and_then(|re| re.as_ref()).map(|re| re.is_match(s))
    })
}

/// A cell's JSON form: numbers, booleans, null and JSON as themselves (a number JSON
/// cannot hold — NaN, ±∞ — as null), everything else as its canonical text.
impl serde::Serialize for Cell {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Null => s.serialize_unit(),
            Cell::Int(i) => s.serialize_i64(*i),
            Cell::Num(n) if n.is_finite() => s.serialize_f64(*n),
            Cell::Num(_) => s.serialize_unit(),
            Cell::Bool(b) => s.serialize_bool(*b),
            Cell::Json(v) => v.serialize(s),
            Cell::Text(t) => s.serialize_str(t),
            other => s.serialize_str(&other.to_text()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::TableSchema;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn cells_in_json_known_answers() {
        let t = Utc.with_ymd_and_hms(2026, 11, 29, 8, 39, 48).unwrap();
        let date = NaiveDate::from_ymd_opt(1990, 1, 1).unwrap();
        for (cell, want) in [
            (Cell::Null, json!(null)),
            (Cell::Int(-7), json!(-7)),
            (Cell::Num(1.75), json!(1.75)),
            (Cell::Num(f64::NAN), json!(null)),
            (Cell::Num(f64::INFINITY), json!(null)),
            (Cell::Bool(true), json!(true)),
            (Cell::Text("欧阳修".into()), json!("欧阳修")),
            (Cell::Date(date), json!("1990-01-01")),
            (Cell::DateTime(t), json!("2026-11-29T08:39:48Z")),
            (Cell::json(json!({"a": [1, "二"], "b": null})), json!({"a": [1, "二"], "b": null})),
        ] {
            assert_eq!(cell.to_json(), want, "{cell:?}");
            assert_eq!(serde_json::to_string(&cell).unwrap(), want.to_string(), "{cell:?}");
        }
    }

    #[test]
    fn a_cell_stays_small() {
        // Deliveries keep ≈ 100,000 rows of cells in flight: every byte of a cell is
        // ≈ 1 MB a column (docs/benchmarks.md: 4 M-row peak memory).
        assert!(std::mem::size_of::<Cell>() <= 32, "{}", std::mem::size_of::<Cell>());
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
    }

    fn field(v: Value) -> Field {
        TableSchema::parse(&json!({ "fields": [v] })).unwrap().fields.remove(0)
    }

    fn cast(f: &Field, raw: &str) -> Cast {
        cast_text(f, raw, &[String::new()], today(), CastOptions::default())
    }

    fn codes(c: &Cast) -> Vec<&'static str> {
        c.problems.iter().map(|p| p.code).collect()
    }

    #[test]
    fn id_numbers() {
        let f = field(json!({"name": "sfzh", "format": "id-number", "constraints": {"required": true}}));
        assert_eq!(cast(&f, "320402199003071235").value, Cell::Text("320402199003071235".into()));
        assert_eq!(codes(&cast(&f, "320402199003071230")), vec!["id-number-check"]);
        assert_eq!(codes(&cast(&f, "320404200002300014")), vec!["id-number-check"]);
        assert_eq!(codes(&cast(&f, "12345")), vec!["type-error"]);
        assert_eq!(codes(&cast(&f, "")), vec!["constraint-error"]);
        let lower = cast(&f, "11010519491231002x");
        assert_eq!(lower.value, Cell::Text("11010519491231002X".into()));
        assert!(!lower.has_error());
        assert_eq!(lower.problems[0].severity, Severity::Warning);
    }

    #[test]
    fn usccs_warn_or_enforce() {
        let f = field(json!({"name": "u", "format": "uscc"}));
        assert!(cast(&f, "91320402123456788Q").problems.is_empty());
        let bad = cast(&f, "91320402123456780X");
        assert!(!bad.has_error());
        assert_eq!(codes(&bad), vec!["uscc-check"]);
        let strict = cast_text(&f, "91320402123456780X", &[], today(), CastOptions { enforce_uscc_check: true });
        assert!(strict.has_error());
        assert_eq!(codes(&cast(&f, "9132040212345678OQ")), vec!["type-error"]);
    }

    #[test]
    fn numbers_dates_booleans() {
        let i = field(json!({"name": "n", "type": "integer", "constraints": {"minimum": 0, "maximum": 150}}));
        assert_eq!(cast(&i, "42").value, Cell::Int(42));
        assert_eq!(codes(&cast(&i, "4.2")), vec!["type-error"]);
        assert_eq!(codes(&cast(&i, "151")), vec!["constraint-error"]);
        assert_eq!(codes(&cast(&i, "-1")), vec!["constraint-error"]);
        let g = field(json!({"name": "n", "type": "number", "groupChar": ","}));
        assert_eq!(cast(&g, "1,234.5").value, Cell::Num(1234.5));
        let d = field(json!({"name": "d", "type": "date"}));
        assert_eq!(cast(&d, "2024-02-29").value, Cell::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()));
        assert_eq!(codes(&cast(&d, "2023-02-29")), vec!["type-error"]);
        let da = field(json!({"name": "d", "type": "date", "format": "any"}));
        assert!(!cast(&da, "2024年3月1日").has_error());
        let dp = field(json!({"name": "d", "type": "date", "format": "%Y%m%d"}));
        assert!(!cast(&dp, "20240301").has_error());
        let dt = field(json!({"name": "t", "type": "datetime"}));
        let v = cast(&dt, "2026-01-01T08:00:00").value;
        assert_eq!(
            v,
            Cell::DateTime(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()),
            "naive times are China Standard Time"
        );
        let b = field(json!({"name": "b", "type": "boolean", "trueValues": ["是"], "falseValues": ["否"]}));
        assert_eq!(cast(&b, "是").value, Cell::Bool(true));
        assert_eq!(codes(&cast(&b, "true")), vec!["type-error"]);
    }

    #[test]
    fn strings_and_constraints() {
        let e = field(json!({"name": "xb", "constraints": {"enum": ["男", "女"]}}));
        assert!(cast(&e, "男").problems.is_empty());
        assert_eq!(codes(&cast(&e, "未知")), vec!["constraint-error"]);
        let p = field(json!({"name": "yb", "constraints": {"pattern": "[0-9]{6}", "maxLength": 6}}));
        assert!(cast(&p, "213000").problems.is_empty());
        assert_eq!(codes(&cast(&p, "21300")), vec!["constraint-error"]);
        let m = field(json!({"name": "m", "format": "mobile"}));
        assert_eq!(cast(&m, "138 1234 5678").value, Cell::Text("13812345678".into()));
        assert_eq!(codes(&cast(&m, "12812345678")), vec!["mobile"]);
        let a = field(json!({"name": "qh", "format": "admin-code"}));
        assert_eq!(codes(&cast(&a, "990000")), vec!["admin-code"]);
        let g = field(json!({"name": "g", "type": "geopoint"}));
        assert!(!cast(&g, "119.97, 31.78").has_error());
        assert!(cast(&g, "200, 31").has_error());
        let missing = cast_text(&e, "NA", &["NA".to_string()], today(), CastOptions::default());
        assert_eq!(missing.value, Cell::Null);
    }

    #[test]
    fn json_values() {
        let i = field(json!({"name": "n", "type": "integer"}));
        assert_eq!(cast_json(&i, &json!(7), &[], today(), CastOptions::default()).value, Cell::Int(7));
        assert_eq!(cast_json(&i, &json!("7"), &[], today(), CastOptions::default()).value, Cell::Int(7));
        assert!(cast_json(&i, &json!(7.5), &[], today(), CastOptions::default()).has_error());
        assert!(cast_json(&i, &json!([1]), &[], today(), CastOptions::default()).has_error());
    }

    /// Fields of every fast-path kind, with constraints of every sort.
    fn fast_path_fields() -> Vec<Field> {
        TableSchema::parse(&json!({ "fields": [
            {"name": "s", "constraints": {"required": true, "maxLength": 4, "minLength": 2}},
            {"name": "p", "constraints": {"pattern": "\\p{Han}{1,4}族", "maxLength": 10}},
            {"name": "e", "constraints": {"required": true, "enum": ["男", "女", "1"]}},
            {"name": "id", "format": "id-number", "constraints": {"required": true}},
            {"name": "u", "format": "uscc"},
            {"name": "a", "format": "admin-code", "constraints": {"required": true}},
            {"name": "m", "format": "mobile", "constraints": {"maxLength": 11}},
            {"name": "em", "format": "email"},
            {"name": "i", "type": "integer", "constraints": {"minimum": 0, "exclusiveMaximum": 150, "enum": [1, 2, 3, 149, -5]}},
            {"name": "ig", "type": "integer", "groupChar": ","},
            {"name": "n", "type": "number", "constraints": {"exclusiveMinimum": -1.5, "maximum": 1e6}},
            {"name": "b", "type": "boolean", "trueValues": ["是"], "falseValues": ["否"]},
            {"name": "bd", "type": "boolean"},
            {"name": "d", "type": "date", "constraints": {"required": true, "minimum": "1900-01-01", "maximum": "2099-12-31"}},
            {"name": "dany", "type": "date", "format": "any"},
            {"name": "dt", "type": "datetime", "constraints": {"minimum": "2000-01-01T00:00:00"}},
            {"name": "t", "type": "time"},
            {"name": "y", "type": "year", "constraints": {"enum": ["2024", 2025]}},
            {"name": "l", "type": "list", "constraints": {"minLength": 2}},
            {"name": "any", "type": "any", "constraints": {"required": true}}
        ]}))
        .unwrap()
        .fields
    }

    fn raw_cell() -> impl Strategy<Value = String> {
        let id = (1900i32..2030, 1u32..=12, 1u32..=28, 0u16..1000).prop_map(|(y, m, d, q)| {
            let birth = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            IdNumber::compose("320402", birth, q).map(|n| n.as_str().to_string()).unwrap_or_default()
        });
        let uscc = "[0-9A-HJ-NP-RT-UW-Y]{8}".prop_map(|org| {
            Uscc::compose('9', '1', "320402", &org).map(|u| u.as_str().to_string()).unwrap_or_default()
        });
        prop_oneof![
            "\\PC{0,12}",
            "[0-9]{0,4}",
            "-?[0-9]{1,4}(\\.[0-9]{1,2})?(e[0-9])?|NaN|INF|-INF",
            "(汉|回|蒙古|a)族|男|女|是|否|true|0|1|NA|",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}",
            "20[0-9]{2}-0[1-9]-[0-2][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](Z|\\+08:00|-05:30)?",
            "(32|99)0[0-4]0[0-9]",
            "1[2-9][0-9]{9}| 138 1234 5678",
            "[a-z]{1,3}@[a-z]{1,3}\\.cn",
            "[0-9]{2}:[0-9]{2}:[0-9]{2}",
            id,
            uscc,
        ]
    }

    #[test]
    fn clean_cells_take_the_fast_path() {
        let fields = fast_path_fields();
        let clean = [
            ("s", "abc"),
            ("p", "汉族"),
            ("e", "女"),
            ("id", "320402199003071235"),
            ("u", "91320402123456788Q"),
            ("a", "320402"),
            ("m", "13812345678"),
            ("em", "a@b.cn"),
            ("i", "149"),
            ("ig", "1,234"),
            ("n", "12.5"),
            ("b", "是"),
            ("bd", "FALSE"),
            ("d", "1990-03-07"),
            ("dany", "1990/03/07"),
            ("dt", "2024-08-09T18:32:31+08:00"),
            ("dt", "2024-08-09T18:32:31.5Z"),
            ("t", "08:30:00"),
            ("y", "2025"),
            ("l", "a,b"),
            ("any", "x"),
            ("em", ""),
        ];
        let missing = vec![String::new()];
        for (name, raw) in clean {
            let f = fields.iter().find(|f| f.name == name).unwrap();
            let fast = PreparedField::new(f).cast_clean(f, raw, &missing, today(), CastOptions::default());
            let slow = cast_text(f, raw, &missing, today(), CastOptions::default());
            assert!(slow.problems.is_empty(), "{name} {raw:?}: {slow:?}");
            assert_eq!(fast, Some(slow.value), "{name} {raw:?}");
        }
        let id = fields.iter().find(|f| f.name == "id").unwrap();
        for dirty in ["11010519491231002x", "320402199003071230", ""] {
            assert_eq!(PreparedField::new(id).cast_clean(id, dirty, &missing, today(), CastOptions::default()), None);
        }
    }

    proptest! {
        #[test]
        fn casting_never_panics(raw in "\\PC{0,40}", ty in 0usize..16) {
            let f = field(json!({"name": "x", "type": FieldType::ALL[ty].as_str()}));
            let _ = cast(&f, &raw);
        }

        #[test]
        fn iso_date_agrees_with_chrono(y in 1000i32..9999, m in 0u32..14, d in 0u32..33) {
            let s = format!("{y:04}-{m:02}-{d:02}");
            prop_assert_eq!(iso_date(&s), NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok());
        }

        #[test]
        fn iso_date_never_panics(s in "\\PC{0,12}") {
            let _ = iso_date(&s);
        }

        /// The fast path answers only where `cast_text` finds nothing, and then with
        /// the same value.
        #[test]
        fn clean_fast_path_agrees_with_cast_text(fi in 0usize..fast_path_fields().len(), raw in raw_cell()) {
            let f = &fast_path_fields()[fi];
            let prepared = PreparedField::new(f);
            let missing = vec![String::new(), "NA".to_string()];
            let slow = cast_text(f, &raw, &missing, today(), CastOptions::default());
            if let Some(v) = prepared.cast_clean(f, &raw, &missing, today(), CastOptions::default()) {
                prop_assert!(slow.problems.is_empty(), "{} {:?}: fast {:?}, slow {:?}", f.name, raw, v, slow);
                prop_assert_eq!(format!("{v:?}"), format!("{:?}", slow.value), "{} {:?}", f.name, raw);
            }
        }

        #[test]
        fn simple_rfc3339_agrees_with_chrono(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-2][0-9]:[0-6][0-9]:[0-6][0-9](Z|z|[+-][0-2][0-9]:[0-6][0-9]|\\.[0-9]{1,3}Z)?") {
            let chrono = DateTime::parse_from_rfc3339(&s).ok().map(|d| d.with_timezone(&Utc));
            if let Some(t) = rfc3339_simple(&s) {
                prop_assert_eq!(Some(t), chrono, "{}", s);
            }
        }
        #[test]
        fn hand_written_texts_are_chronos(n in any::<i64>(), secs in -70_000_000_000i64..260_000_000_000, nanos in prop_oneof![Just(0u32), 0u32..2_000_000_000]) {
            prop_assert_eq!(Cell::Int(n).to_text(), n.to_string());
            if let Some(t) = DateTime::<Utc>::from_timestamp(secs, nanos) {
                prop_assert_eq!(Cell::DateTime(t).to_text(), t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
                let d = t.date_naive();
                prop_assert_eq!(Cell::Date(d).to_text(), d.to_string());
            }
        }

        #[test]
        fn integers_round_trip(n in any::<i64>()) {
            let f = field(json!({"name": "x", "type": "integer"}));
            prop_assert_eq!(cast(&f, &n.to_string()).value, Cell::Int(n));
        }
    }
}
