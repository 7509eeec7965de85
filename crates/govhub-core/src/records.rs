//! Reading a dataset's records back: by key, by filters with cursor pagination, as
//! of a past time, and a record's history. Filters and keys arrive as text (URL query)
//! and are cast with the field's own type before they reach the store, where they are
//! bound as parameters — never spliced into SQL.

use crate::authz::{Action, Principal};
use crate::cells::{cast_text, CastOptions, Cell};
use crate::error::{Code, Error, Result};
use crate::model::*;
use crate::schema::{Field, TableSchema};
use crate::service::{store_err, Ctx, Hub};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

fn bad(en: String, zh: String) -> Error {
    Error::new(Code::InvalidRequest, en, zh)
}

pub(crate) fn cast_value(f: &Field, raw: &str) -> Result<Cell> {
    let c = cast_text(f, raw, &[], NaiveDate::MAX, CastOptions::default());
    let type_problem =
        c.problems.iter().find(|p| p.code != "constraint-error" && p.severity == crate::cells::Severity::Error);
    match type_problem {
        Some(p) => Err(bad(format!("{}: {}", f.name, p.message_en), format!("{}：{}", f.label(), p.message_zh))),
        None if c.value.is_null() => Err(bad(format!("{}: empty value", f.name), format!("{}：值不能为空", f.label()))),
        None => Ok(c.value),
    }
}

/// Split a key path segment into the primary-key cells (composite keys: `a,b`).
pub fn parse_key(schema: &TableSchema, key: &str) -> Result<Vec<Cell>> {
    if schema.primary_key.is_empty() {
        return Err(bad(
            "this dataset has no primary key; query it with filters".into(),
            "该数据集没有主键，请使用条件查询".into(),
        ));
    }
    let parts: Vec<&str> = if schema.primary_key.len() == 1 { vec![key] } else { key.split(',').collect() };
    if parts.len() != schema.primary_key.len() {
        return Err(bad(
            format!("the key has {} parts; this dataset's key is ({})", parts.len(), schema.primary_key.join(", ")),
            format!(
                "主键应由{}部分组成（{}），实际为{}部分",
                schema.primary_key.len(),
                schema.primary_key.join("、"),
                parts.len()
            ),
        ));
    }
    schema
        .primary_key
        .iter()
        .zip(parts)
        .map(|(name, raw)| match schema.field(name) {
            Some(f) => cast_value(f, raw),
            None => Err(Error::internal(std::io::Error::other("primary key names a missing field"))),
        })
        .collect()
}

/// Parse `field=op:value` query parameters: `eq:`, `in:a|b|c`, `range:lo..hi` (either
/// side may be empty), `prefix:`, `null:true|false`. A bare value means `eq`. An error
/// names the parameter it is about in its `field`.
pub fn parse_filters(schema: &TableSchema, params: &[(String, String)]) -> Result<Vec<Filter>> {
    params
        .iter()
        .map(|(name, spec)| parse_filter(schema, name, spec).map_err(|e| e.with_field(name.as_str())))
        .collect()
}

fn parse_filter(schema: &TableSchema, name: &str, spec: &str) -> Result<Filter> {
    let Some(fi) = schema.fields.iter().position(|f| f.name == name) else {
        return Err(bad(format!("unknown field \"{name}\" in filter"), format!("筛选条件中的字段“{name}”不存在")));
    };
    let f = &schema.fields[fi];
    let (op, value) = spec.split_once(':').unwrap_or(("eq", spec));
    let op = match op {
        "eq" => FilterOp::Eq(cast_value(f, value)?),
        "in" => {
            let vals = value.split('|').map(|v| cast_value(f, v)).collect::<Result<Vec<_>>>()?;
            if vals.is_empty() || vals.len() > 1000 {
                return Err(bad("in: takes 1-1000 values".into(), "in:条件应包含1-1000个值".into()));
            }
            FilterOp::In(vals)
        }
        "range" => {
            let (lo, hi) = value
                .split_once("..")
                .ok_or_else(|| bad("range: is written lo..hi".into(), "range:条件格式应为“下限..上限”".into()))?;
            let lo = if lo.is_empty() { None } else { Some(cast_value(f, lo)?) };
            let hi = if hi.is_empty() { None } else { Some(cast_value(f, hi)?) };
            FilterOp::Range(lo, hi)
        }
        "prefix" => FilterOp::Prefix(value.to_string()),
        "null" => match value {
            "true" => FilterOp::IsNull(true),
            "false" => FilterOp::IsNull(false),
            _ => return Err(bad("null: takes true or false".into(), "null:条件取值应为true或false".into())),
        },
        other => {
            return Err(bad(
                format!("unknown filter operator \"{other}\" (use eq, in, range, prefix, null)"),
                format!("未知的筛选运算符“{other}”（可用：eq、in、range、prefix、null）"),
            ))
        }
    };
    Ok(Filter { field: fi, op })
}

/// Opaque pagination cursor: the last key's cells as text, base64url-encoded JSON.
pub fn encode_cursor(schema: &TableSchema, record: &Record) -> String {
    let key: Vec<String> = key_indexes(schema).iter().map(|&i| record.cells[i].to_text()).collect();
    b64url(serde_json::to_vec(&key).unwrap_or_default().as_slice())
}

pub fn decode_cursor(schema: &TableSchema, cursor: &str) -> Result<Vec<Cell>> {
    let invalid =
        || bad("the cursor is invalid; start again without it".into(), "分页游标无效，请不带游标重新查询".into());
    let bytes = unb64url(cursor).ok_or_else(invalid)?;
    let parts: Vec<String> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let idx = key_indexes(schema);
    if parts.len() != idx.len() {
        return Err(invalid());
    }
    idx.iter().zip(parts).map(|(&i, raw)| cast_value(&schema.fields[i], &raw).map_err(|_| invalid())).collect()
}

pub(crate) fn key_indexes(schema: &TableSchema) -> Vec<usize> {
    schema.primary_key.iter().filter_map(|k| schema.fields.iter().position(|f| &f.name == k)).collect()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub(crate) fn b64url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 4 / 3 + 3);
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

pub(crate) fn unb64url(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let vals: Vec<u32> =
        s.bytes().map(|c| B64.iter().position(|&b| b == c).map(|p| p as u32)).collect::<Option<_>>()?;
    for chunk in vals.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, v)| acc | (v << (18 - 6 * i)));
        for i in 0..chunk.len() - 1 {
            out.push(((n >> (16 - 8 * i)) & 0xff) as u8);
        }
    }
    Some(out)
}

/// A record as JSON: fields by name plus `_version`, `_updated_at`, `_delivery_id`
/// (and `_deleted` when true).
pub fn record_json(schema: &TableSchema, r: &Record) -> Value {
    let mut m = Map::new();
    for (f, c) in schema.fields.iter().zip(&r.cells) {
        m.insert(f.name.clone(), c.to_json());
    }
    m.insert("_version".into(), Value::from(r.version));
    m.insert("_updated_at".into(), Value::String(r.updated_at.to_rfc3339()));
    m.insert("_delivery_id".into(), r.delivery_id.map(Value::from).unwrap_or(Value::Null));
    if r.deleted {
        m.insert("_deleted".into(), Value::Bool(true));
    }
    Value::Object(m)
}

/// A record query as it arrives: `field=op:value` filters, the cursor from the previous
/// page, a page size and an optional point in time.
#[derive(Debug, Clone, Copy)]
pub struct RecordRequest<'a> {
    pub filters: &'a [(String, String)],
    pub cursor: Option<&'a str>,
    pub limit: u32,
    pub as_of: Option<DateTime<Utc>>,
}

/// A page of records and the cursor for the next one.
#[derive(Debug, Clone)]
pub struct RecordPage {
    pub records: Vec<Record>,
    pub next_cursor: Option<String>,
}

impl Hub {
    /// One record by primary key (the provider's staff).
    pub async fn provider_record(&self, p: &Principal, code: &str, key: &str, ctx: &Ctx) -> Result<(Dataset, Record)> {
        let d = self.load_dataset(code).await?;
        self.authorize(p, Action::ReadProviderData { provider: &d.provider }, &format!("{code}/{key}"), ctx).await?;
        let cells = parse_key(&d.schema, key)?;
        let r = self
            .store()
            .get_record(&d, &cells)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Error::not_found("record", "记录", key))?;
        Ok((d, r))
    }

    /// Records by filters with cursor pagination (the provider's staff).
    pub async fn provider_records(
        &self,
        p: &Principal,
        code: &str,
        req: &RecordRequest<'_>,
        ctx: &Ctx,
    ) -> Result<(Dataset, RecordPage)> {
        let RecordRequest { filters, cursor, limit, as_of } = *req;
        let d = self.load_dataset(code).await?;
        self.authorize(p, Action::ReadProviderData { provider: &d.provider }, code, ctx).await?;
        if d.schema.primary_key.is_empty() && cursor.is_some() {
            return Err(bad("cursors need a primary key".into(), "无主键的数据集不支持游标分页".into()));
        }
        let limit = limit.clamp(1, 1000);
        let q = RecordQuery {
            filters: parse_filters(&d.schema, filters)?,
            after: cursor.map(|c| decode_cursor(&d.schema, c)).transpose()?,
            limit,
            as_of,
            include_deleted: false,
            descending: false,
        };
        let records = self.store().query_records(&d, &q).await.map_err(store_err)?;
        let next_cursor = if records.len() as u32 == limit && !d.schema.primary_key.is_empty() {
            records.last().map(|r| encode_cursor(&d.schema, r))
        } else {
            None
        };
        Ok((d, RecordPage { records, next_cursor }))
    }

    /// Every version of a record, oldest first.
    pub async fn provider_record_history(
        &self,
        p: &Principal,
        code: &str,
        key: &str,
        ctx: &Ctx,
    ) -> Result<(Dataset, Vec<RecordVersion>)> {
        let d = self.load_dataset(code).await?;
        self.authorize(p, Action::ReadProviderData { provider: &d.provider }, &format!("{code}/{key}/history"), ctx)
            .await?;
        let cells = parse_key(&d.schema, key)?;
        let v = self.store().record_history(&d, &cells).await.map_err(store_err)?;
        if v.is_empty() {
            return Err(Error::not_found("record", "记录", key));
        }
        Ok((d, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn schema() -> TableSchema {
        TableSchema::parse(&json!({
            "fields": [{"name": "sfzh", "format": "id-number"}, {"name": "nl", "type": "integer"}, {"name": "xm"}],
            "primaryKey": ["sfzh"]
        }))
        .unwrap()
    }

    #[test]
    fn filters_parse_typed() {
        let s = schema();
        let f = parse_filters(&s, &[("nl".into(), "range:18..60".into()), ("xm".into(), "prefix:张".into())]).unwrap();
        assert_eq!(f[0].op, FilterOp::Range(Some(Cell::Int(18)), Some(Cell::Int(60))));
        assert_eq!(f[1].op, FilterOp::Prefix("张".into()));
        // Each refusal names the parameter it is about, whatever went wrong with it.
        for (name, spec) in [("nl", "eq:abc"), ("nl", "like:1"), ("nope", "1"), ("nl", "range:1"), ("xm", "null:x")] {
            let e = parse_filters(&s, &[("xm".into(), "prefix:张".into()), (name.into(), spec.into())]).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(name), "{name}={spec}: {e}");
        }
        let inj = parse_filters(&s, &[("xm".into(), "eq:' OR 1=1 --".into())]).unwrap();
        assert_eq!(inj[0].op, FilterOp::Eq(Cell::Text("' OR 1=1 --".into())));
    }

    #[test]
    fn keys() {
        let s = schema();
        assert_eq!(parse_key(&s, "320402199003071235").unwrap(), vec![Cell::Text("320402199003071235".into())]);
        assert!(parse_key(&s, "123").is_err());
    }

    proptest! {
        #[test]
        fn base64_round_trips(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            prop_assert_eq!(unb64url(&b64url(&data)).unwrap(), data);
        }
        #[test]
        fn cursor_decoding_never_panics(s in "\\PC{0,60}") {
            let _ = decode_cursor(&schema(), &s);
        }
    }
}
