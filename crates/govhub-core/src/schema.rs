//! Frictionless Table Schema v2, with govhub's extensions:
//! string formats `id-number` (GB 11643), `uscc` (GB 32100), `admin-code` (GB/T 2260),
//! `mobile`, and a per-field `sensitive: true` marker (PIPL personal information,
//! masked by default when shared).
//!
//! Parsing is strict: an unknown property, type, format or constraint, a `primaryKey`
//! naming a missing field, a `pattern` that does not compile… each is refused with an
//! error naming the exact place (`schema.fields[2].constraints.pattern`). Field names
//! become SQL column names, so they are lower-case ASCII identifiers; the Chinese name
//! goes in `title`.

use crate::error::{Code, Error};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Table Schema field types (v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
    List,
    Date,
    Time,
    Datetime,
    Year,
    Yearmonth,
    Duration,
    Geopoint,
    Geojson,
    Any,
}

impl FieldType {
    pub const ALL: &'static [FieldType] = &[
        FieldType::String,
        FieldType::Number,
        FieldType::Integer,
        FieldType::Boolean,
        FieldType::Object,
        FieldType::Array,
        FieldType::List,
        FieldType::Date,
        FieldType::Time,
        FieldType::Datetime,
        FieldType::Year,
        FieldType::Yearmonth,
        FieldType::Duration,
        FieldType::Geopoint,
        FieldType::Geojson,
        FieldType::Any,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Number => "number",
            FieldType::Integer => "integer",
            FieldType::Boolean => "boolean",
            FieldType::Object => "object",
            FieldType::Array => "array",
            FieldType::List => "list",
            FieldType::Date => "date",
            FieldType::Time => "time",
            FieldType::Datetime => "datetime",
            FieldType::Year => "year",
            FieldType::Yearmonth => "yearmonth",
            FieldType::Duration => "duration",
            FieldType::Geopoint => "geopoint",
            FieldType::Geojson => "geojson",
            FieldType::Any => "any",
        }
    }

    fn parse(s: &str) -> Option<FieldType> {
        FieldType::ALL.iter().copied().find(|t| t.as_str() == s)
    }

    /// Formats valid for this type. Date/time types also take `any` and `%`-patterns.
    fn formats(self) -> &'static [&'static str] {
        match self {
            FieldType::String => {
                &["default", "email", "uri", "binary", "uuid", "wkt", "id-number", "uscc", "admin-code", "mobile"]
            }
            FieldType::Date | FieldType::Time | FieldType::Datetime => &["default", "any"],
            FieldType::Geopoint => &["default", "array", "object"],
            FieldType::Geojson => &["default", "topojson"],
            _ => &["default"],
        }
    }

    fn is_ordered(self) -> bool {
        matches!(
            self,
            FieldType::Integer
                | FieldType::Number
                | FieldType::Date
                | FieldType::Time
                | FieldType::Datetime
                | FieldType::Year
                | FieldType::Yearmonth
                | FieldType::Duration
        )
    }

    fn has_length(self) -> bool {
        matches!(self, FieldType::String | FieldType::Array | FieldType::Object | FieldType::List)
    }

    /// Whether this type can form (part of) a primary or unique key.
    fn is_keyable(self) -> bool {
        !matches!(self, FieldType::Object | FieldType::Array | FieldType::Geojson | FieldType::List | FieldType::Any)
    }
}

/// Field constraints. Values keep their JSON form; `minimum` and friends are checked to
/// be of the field's type when the schema is parsed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Constraints {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unique: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_minimum: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_maximum: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub enum_values: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<Value>,
}

impl Constraints {
    fn is_empty(&self) -> bool {
        *self == Constraints::default()
    }
}

/// One field (column) of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Field {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Constraints::is_empty")]
    pub constraints: Constraints,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<Value>,
    /// Other v2 properties we keep verbatim (`trueValues`, `falseValues`, `bareNumber`,
    /// `groupChar`, `decimalChar`, `missingValues`, `categories`, `rdfType`, …).
    #[serde(default, flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl Field {
    /// The display name: the title when there is one.
    pub fn label(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.name)
    }
    /// The format, `default` when absent.
    pub fn format_or_default(&self) -> &str {
        self.format.as_deref().unwrap_or("default")
    }
    /// True when a row may leave this field empty.
    pub fn is_optional(&self, schema: &TableSchema) -> bool {
        !self.constraints.required && !schema.primary_key.contains(&self.name)
    }
    /// Same column definition (type, format, constraints, sensitivity); titles and
    /// descriptions may differ.
    fn same_definition(&self, other: &Field) -> bool {
        self.name == other.name
            && self.field_type == other.field_type
            && self.format_or_default() == other.format_or_default()
            && self.constraints == other.constraints
            && self.sensitive == other.sensitive
            && self.extra == other.extra
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForeignKeyReference {
    /// A dataset code; empty for a reference into the same dataset.
    pub resource: String,
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub fields: Vec<String>,
    pub reference: ForeignKeyReference,
}

/// A parsed, validated Table Schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableSchema {
    pub fields: Vec<Field>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub primary_key: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_keys: Vec<ForeignKey>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unique_keys: Vec<Vec<String>>,
    #[serde(default = "default_missing", skip_serializing_if = "is_default_missing")]
    pub missing_values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields_match: Option<String>,
}

fn default_missing() -> Vec<String> {
    vec![String::new()]
}
fn is_default_missing(v: &[String]) -> bool {
    v.len() == 1 && v[0].is_empty()
}

/// How a new schema relates to the current one.
#[derive(Debug, Clone, PartialEq)]
pub enum SchemaChange {
    /// Nothing that matters to storage changed (titles and descriptions may have).
    Compatible,
    /// Only optional fields were added (and documentation changed): applied in place.
    AddFields(Vec<Field>),
    /// Anything else: a new schema version with a new typed table.
    NewVersion,
}

const FIELD_KEYS: &[&str] = &[
    "name",
    "title",
    "description",
    "type",
    "format",
    "constraints",
    "sensitive",
    "example",
    "rdfType",
    "missingValues",
    "trueValues",
    "falseValues",
    "bareNumber",
    "groupChar",
    "decimalChar",
    "categories",
    "categoriesOrdered",
    "delimiter",
    "itemType",
];
const CONSTRAINT_KEYS: &[&str] = &[
    "required",
    "unique",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "pattern",
    "enum",
    "jsonSchema",
];
const SCHEMA_KEYS: &[&str] = &[
    "$schema",
    "name",
    "title",
    "description",
    "fields",
    "primaryKey",
    "foreignKeys",
    "uniqueKeys",
    "missingValues",
    "fieldsMatch",
];

/// Maximum number of fields in one dataset (well under both backends' column limits,
/// leaving room for the system columns).
pub const MAX_FIELDS: usize = 500;

fn err(path: &str, en: String, zh: String) -> Error {
    Error::invalid(Code::InvalidSchema, path, format!("{path}: {en}"), format!("{path}：{zh}"))
}

fn check_keys(obj: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), Error> {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(err(
                path,
                format!("unknown property \"{k}\" (allowed: {})", allowed.join(", ")),
                format!("未知属性“{k}”（允许：{}）", allowed.join("、")),
            ));
        }
    }
    Ok(())
}

fn string_list(v: &Value, path: &str) -> Result<Vec<String>, Error> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, it)| {
                it.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| err(&format!("{path}[{i}]"), "must be a string".into(), "应为字符串".into()))
            })
            .collect(),
        _ => Err(err(path, "must be a string or an array of strings".into(), "应为字符串或字符串数组".into())),
    }
}

/// Is `name` acceptable as a field (column) name?
pub fn valid_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Does a JSON constraint value fit the field type? Numbers for numeric types, years as
/// integers, other ordered types as their lexical (ISO) string form.
fn bound_fits(t: FieldType, v: &Value) -> bool {
    match t {
        FieldType::Integer | FieldType::Year => v.as_i64().is_some(),
        FieldType::Number => v.is_number(),
        FieldType::Date => v.as_str().is_some_and(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()),
        FieldType::Time => v.as_str().is_some_and(|s| chrono::NaiveTime::parse_from_str(s, "%H:%M:%S").is_ok()),
        FieldType::Datetime => v.as_str().is_some_and(|s| {
            chrono::DateTime::parse_from_rfc3339(s).is_ok()
                || chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").is_ok()
        }),
        FieldType::Yearmonth => v
            .as_str()
            .is_some_and(|s| s.len() == 7 && chrono::NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").is_ok()),
        FieldType::Duration => v.as_str().is_some_and(|s| s.starts_with('P')),
        _ => false,
    }
}

fn bound_key(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn enum_value_fits(t: FieldType, v: &Value) -> bool {
    match t {
        FieldType::String => v.is_string(),
        FieldType::Integer | FieldType::Year => {
            v.as_i64().is_some() || v.as_str().is_some_and(|s| s.parse::<i64>().is_ok())
        }
        FieldType::Number => v.is_number() || v.as_str().is_some_and(|s| s.parse::<f64>().is_ok()),
        FieldType::Boolean => v.is_boolean(),
        FieldType::Date | FieldType::Time | FieldType::Datetime | FieldType::Yearmonth | FieldType::Duration => {
            bound_fits(t, v)
        }
        _ => true,
    }
}

fn parse_constraints(t: FieldType, v: &Value, path: &str) -> Result<Constraints, Error> {
    let obj = v.as_object().ok_or_else(|| err(path, "must be an object".into(), "应为对象".into()))?;
    check_keys(obj, CONSTRAINT_KEYS, path)?;
    let c: Constraints = serde_json::from_value(v.clone())
        .map_err(|e| err(path, format!("malformed constraints: {e}"), format!("约束格式错误：{e}")))?;
    let tn = t.as_str();
    if (c.min_length.is_some() || c.max_length.is_some()) && !t.has_length() {
        return Err(err(
            &format!("{path}.minLength"),
            format!("length constraints do not apply to type \"{tn}\""),
            format!("长度约束不适用于类型“{tn}”"),
        ));
    }
    if let (Some(lo), Some(hi)) = (c.min_length, c.max_length) {
        if lo > hi {
            return Err(err(
                &format!("{path}.minLength"),
                format!("minLength {lo} is greater than maxLength {hi}"),
                format!("最小长度{lo}大于最大长度{hi}"),
            ));
        }
    }
    for (key, bound) in [
        ("minimum", &c.minimum),
        ("maximum", &c.maximum),
        ("exclusiveMinimum", &c.exclusive_minimum),
        ("exclusiveMaximum", &c.exclusive_maximum),
    ] {
        if let Some(b) = bound {
            if !t.is_ordered() {
                return Err(err(
                    &format!("{path}.{key}"),
                    format!("{key} does not apply to type \"{tn}\""),
                    format!("{key}不适用于类型“{tn}”"),
                ));
            }
            if !bound_fits(t, b) {
                return Err(err(
                    &format!("{path}.{key}"),
                    format!("{key} {b} is not a valid {tn} value"),
                    format!("{key}的值{b}不是合法的{tn}值"),
                ));
            }
        }
    }
    if let (Some(lo), Some(hi)) = (c.minimum.as_ref().and_then(bound_key), c.maximum.as_ref().and_then(bound_key)) {
        if lo > hi {
            return Err(err(
                &format!("{path}.minimum"),
                format!("minimum {lo} is greater than maximum {hi}"),
                format!("最小值{lo}大于最大值{hi}"),
            ));
        }
    }
    if let Some(p) = &c.pattern {
        if t != FieldType::String {
            return Err(err(
                &format!("{path}.pattern"),
                format!("pattern applies only to strings, not \"{tn}\""),
                format!("pattern仅适用于字符串类型，不适用于“{tn}”"),
            ));
        }
        if let Err(e) = regex::Regex::new(&format!("^(?:{p})$")) {
            let first = e.to_string().lines().last().unwrap_or_default().trim().to_string();
            return Err(err(
                &format!("{path}.pattern"),
                format!("pattern \"{p}\" does not compile: {first}"),
                format!("正则表达式“{p}”无法编译：{first}"),
            ));
        }
    }
    if let Some(values) = &c.enum_values {
        if values.is_empty() {
            return Err(err(&format!("{path}.enum"), "enum must not be empty".into(), "枚举值不能为空".into()));
        }
        for (i, v) in values.iter().enumerate() {
            if !enum_value_fits(t, v) {
                return Err(err(
                    &format!("{path}.enum[{i}]"),
                    format!("{v} is not a valid {tn} value"),
                    format!("{v}不是合法的{tn}值"),
                ));
            }
        }
    }
    if c.json_schema.is_some() && !matches!(t, FieldType::Object | FieldType::Array) {
        return Err(err(
            &format!("{path}.jsonSchema"),
            format!("jsonSchema applies only to object and array, not \"{tn}\""),
            format!("jsonSchema仅适用于object和array类型，不适用于“{tn}”"),
        ));
    }
    Ok(c)
}

fn parse_field(v: &Value, i: usize) -> Result<Field, Error> {
    let path = format!("schema.fields[{i}]");
    let obj = v.as_object().ok_or_else(|| err(&path, "must be an object".into(), "应为对象".into()))?;
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            err(&format!("{path}.name"), "is required and must be a string".into(), "必填且应为字符串".into())
        })?
        .to_string();
    let path = format!("schema.fields[{i}] (\"{name}\")");
    if !valid_field_name(&name) {
        return Err(err(
            &format!("{path}.name"),
            "field names are lower-case ASCII identifiers (a-z, 0-9, _; starting with a letter; at most 63 characters); put the Chinese name in \"title\"".into(),
            "字段名应为小写英文标识符（a-z、0-9、_，以字母开头，不超过63位），中文名称请填在title中".into(),
        ));
    }
    check_keys(obj, FIELD_KEYS, &path)?;
    let type_name = match obj.get("type") {
        None => "string",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(err(&format!("{path}.type"), "must be a string".into(), "应为字符串".into())),
    };
    let field_type = FieldType::parse(type_name).ok_or_else(|| {
        let all: Vec<&str> = FieldType::ALL.iter().map(|t| t.as_str()).collect();
        err(
            &format!("{path}.type"),
            format!("unknown type \"{type_name}\" (known: {})", all.join(", ")),
            format!("未知类型“{type_name}”（可用：{}）", all.join("、")),
        )
    })?;
    let format = match obj.get("format") {
        None => None,
        Some(Value::String(f)) => {
            let date_pattern =
                matches!(field_type, FieldType::Date | FieldType::Time | FieldType::Datetime) && f.contains('%');
            if !field_type.formats().contains(&f.as_str()) && !date_pattern {
                return Err(err(
                    &format!("{path}.format"),
                    format!(
                        "format \"{f}\" is not valid for type \"{}\" (valid: {})",
                        type_name,
                        field_type.formats().join(", ")
                    ),
                    format!("格式“{f}”不适用于类型“{}”（可用：{}）", type_name, field_type.formats().join("、")),
                ));
            }
            Some(f.clone())
        }
        Some(_) => return Err(err(&format!("{path}.format"), "must be a string".into(), "应为字符串".into())),
    };
    let constraints = match obj.get("constraints") {
        None => Constraints::default(),
        Some(c) => parse_constraints(field_type, c, &format!("{path}.constraints"))?,
    };
    let sensitive = match obj.get("sensitive") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(err(&format!("{path}.sensitive"), "must be true or false".into(), "应为true或false".into()))
        }
    };
    let title = opt_string(obj, "title", &path)?;
    let description = opt_string(obj, "description", &path)?;
    let mut extra = Map::new();
    for (k, v) in obj {
        if !matches!(
            k.as_str(),
            "name" | "title" | "description" | "type" | "format" | "constraints" | "sensitive" | "example"
        ) {
            extra.insert(k.clone(), v.clone());
        }
    }
    Ok(Field {
        name,
        title,
        description,
        field_type,
        format,
        constraints,
        sensitive,
        example: obj.get("example").cloned(),
        extra,
    })
}

fn opt_string(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, Error> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(err(&format!("{path}.{key}"), "must be a string".into(), "应为字符串".into())),
    }
}

impl TableSchema {
    /// Parse and validate a Table Schema given as JSON.
    pub fn parse(v: &Value) -> Result<TableSchema, Error> {
        let obj = v.as_object().ok_or_else(|| err("schema", "must be a JSON object".into(), "应为JSON对象".into()))?;
        check_keys(obj, SCHEMA_KEYS, "schema")?;
        let fields_v = obj
            .get("fields")
            .and_then(Value::as_array)
            .ok_or_else(|| err("schema.fields", "is required and must be an array".into(), "必填且应为数组".into()))?;
        if fields_v.is_empty() {
            return Err(err("schema.fields", "must name at least one field".into(), "至少需要一个字段".into()));
        }
        if fields_v.len() > MAX_FIELDS {
            return Err(err(
                "schema.fields",
                format!("at most {MAX_FIELDS} fields are allowed, found {}", fields_v.len()),
                format!("字段数不能超过{MAX_FIELDS}个，实际{}个", fields_v.len()),
            ));
        }
        let mut fields: Vec<Field> = Vec::with_capacity(fields_v.len());
        for (i, fv) in fields_v.iter().enumerate() {
            let f = parse_field(fv, i)?;
            if fields.iter().any(|g| g.name == f.name) {
                return Err(err(
                    &format!("schema.fields[{i}].name"),
                    format!("duplicate field name \"{}\"", f.name),
                    format!("字段名“{}”重复", f.name),
                ));
            }
            fields.push(f);
        }
        let field_type = |name: &str| fields.iter().find(|f| f.name == name).map(|f| f.field_type);
        let check_names = |names: &[String], path: &str, keyed: bool| -> Result<(), Error> {
            for (j, n) in names.iter().enumerate() {
                match field_type(n) {
                    None => {
                        return Err(err(
                            &format!("{path}[{j}]"),
                            format!("names field \"{n}\", which is not in schema.fields"),
                            format!("引用的字段“{n}”不在fields中"),
                        ))
                    }
                    Some(t) if keyed && !t.is_keyable() => {
                        return Err(err(
                            &format!("{path}[{j}]"),
                            format!("field \"{n}\" of type \"{}\" cannot be part of a key", t.as_str()),
                            format!("类型为“{}”的字段“{n}”不能作为键", t.as_str()),
                        ))
                    }
                    _ => {}
                }
                if names[..j].contains(n) {
                    return Err(err(
                        &format!("{path}[{j}]"),
                        format!("field \"{n}\" is listed twice"),
                        format!("字段“{n}”重复列出"),
                    ));
                }
            }
            Ok(())
        };
        let primary_key = match obj.get("primaryKey") {
            None => Vec::new(),
            Some(v) => string_list(v, "schema.primaryKey")?,
        };
        check_names(&primary_key, "schema.primaryKey", true)?;
        let mut foreign_keys = Vec::new();
        if let Some(fk) = obj.get("foreignKeys") {
            let arr =
                fk.as_array().ok_or_else(|| err("schema.foreignKeys", "must be an array".into(), "应为数组".into()))?;
            for (i, item) in arr.iter().enumerate() {
                let path = format!("schema.foreignKeys[{i}]");
                let o = item.as_object().ok_or_else(|| err(&path, "must be an object".into(), "应为对象".into()))?;
                check_keys(o, &["fields", "reference"], &path)?;
                let fields_l = string_list(o.get("fields").unwrap_or(&Value::Null), &format!("{path}.fields"))?;
                check_names(&fields_l, &format!("{path}.fields"), true)?;
                let r = o.get("reference").and_then(Value::as_object).ok_or_else(|| {
                    err(
                        &format!("{path}.reference"),
                        "is required and must be an object".into(),
                        "必填且应为对象".into(),
                    )
                })?;
                check_keys(r, &["resource", "fields"], &format!("{path}.reference"))?;
                let resource = match r.get("resource") {
                    None => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(_) => {
                        return Err(err(
                            &format!("{path}.reference.resource"),
                            "must be a string".into(),
                            "应为字符串".into(),
                        ))
                    }
                };
                let ref_fields =
                    string_list(r.get("fields").unwrap_or(&Value::Null), &format!("{path}.reference.fields"))?;
                if ref_fields.len() != fields_l.len() {
                    return Err(err(
                        &format!("{path}.reference.fields"),
                        format!("names {} fields but {path}.fields names {}", ref_fields.len(), fields_l.len()),
                        format!("字段数{}与fields的字段数{}不一致", ref_fields.len(), fields_l.len()),
                    ));
                }
                if resource.is_empty() {
                    check_names(&ref_fields, &format!("{path}.reference.fields"), true)?;
                }
                foreign_keys.push(ForeignKey {
                    fields: fields_l,
                    reference: ForeignKeyReference { resource, fields: ref_fields },
                });
            }
        }
        let mut unique_keys = Vec::new();
        if let Some(uk) = obj.get("uniqueKeys") {
            let arr =
                uk.as_array().ok_or_else(|| err("schema.uniqueKeys", "must be an array".into(), "应为数组".into()))?;
            for (i, item) in arr.iter().enumerate() {
                let names = string_list(item, &format!("schema.uniqueKeys[{i}]"))?;
                check_names(&names, &format!("schema.uniqueKeys[{i}]"), true)?;
                unique_keys.push(names);
            }
        }
        let missing_values = match obj.get("missingValues") {
            None => default_missing(),
            Some(v) => {
                let arr = v.as_array().ok_or_else(|| {
                    err("schema.missingValues", "must be an array of strings".into(), "应为字符串数组".into())
                })?;
                arr.iter()
                    .enumerate()
                    .map(|(i, x)| match x {
                        Value::String(s) => Ok(s.clone()),
                        Value::Object(o) => {
                            o.get("value").and_then(Value::as_str).map(str::to_string).ok_or_else(|| {
                                err(
                                    &format!("schema.missingValues[{i}]"),
                                    "needs a string \"value\"".into(),
                                    "需要字符串value".into(),
                                )
                            })
                        }
                        _ => Err(err(
                            &format!("schema.missingValues[{i}]"),
                            "must be a string".into(),
                            "应为字符串".into(),
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        let fields_match = match obj.get("fieldsMatch") {
            None => None,
            Some(Value::String(s)) if ["exact", "equal", "subset", "superset", "partial"].contains(&s.as_str()) => {
                Some(s.clone())
            }
            Some(other) => {
                return Err(err(
                    "schema.fieldsMatch",
                    format!("{other} is not one of exact, equal, subset, superset, partial"),
                    format!("{other}不是exact、equal、subset、superset、partial之一"),
                ))
            }
        };
        Ok(TableSchema { fields, primary_key, foreign_keys, unique_keys, missing_values, fields_match })
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Compare `self` (current) with `new`.
    pub fn change_to(&self, new: &TableSchema) -> SchemaChange {
        let same_keys = self.primary_key == new.primary_key
            && self.foreign_keys == new.foreign_keys
            && self.unique_keys == new.unique_keys
            && self.missing_values == new.missing_values
            && self.fields_match == new.fields_match;
        if !same_keys || new.fields.len() < self.fields.len() {
            return SchemaChange::NewVersion;
        }
        // Existing fields keep their order and definitions; new ones come after.
        for (old, nf) in self.fields.iter().zip(&new.fields) {
            if !old.same_definition(nf) {
                return SchemaChange::NewVersion;
            }
        }
        let added: Vec<Field> = new.fields[self.fields.len()..].to_vec();
        if added.is_empty() {
            return SchemaChange::Compatible;
        }
        if added.iter().all(|f| !f.constraints.required && !f.constraints.unique) {
            SchemaChange::AddFields(added)
        } else {
            SchemaChange::NewVersion
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn person() -> Value {
        json!({
            "fields": [
                {"name": "sfzh", "title": "公民身份号码", "type": "string", "format": "id-number", "sensitive": true},
                {"name": "xm", "title": "姓名", "type": "string", "constraints": {"required": true, "maxLength": 50}, "sensitive": true},
                {"name": "xb", "title": "性别", "type": "string", "constraints": {"enum": ["男", "女"]}},
                {"name": "csrq", "title": "出生日期", "type": "date", "constraints": {"minimum": "1900-01-01"}},
                {"name": "hjdz_qh", "title": "户籍地行政区划", "type": "string", "format": "admin-code"},
                {"name": "sjhm", "title": "手机号码", "type": "string", "format": "mobile", "sensitive": true},
                {"name": "nl", "type": "integer", "constraints": {"minimum": 0, "maximum": 150}},
                {"name": "yzbm", "type": "string", "constraints": {"pattern": "[0-9]{6}"}}
            ],
            "primaryKey": "sfzh",
            "foreignKeys": [{"fields": "hjdz_qh", "reference": {"resource": "admin-divisions", "fields": "code"}}]
        })
    }

    fn refused(v: Value) -> Error {
        TableSchema::parse(&v).unwrap_err()
    }

    #[test]
    fn parses_a_realistic_schema() {
        let s = TableSchema::parse(&person()).unwrap();
        assert_eq!(s.fields.len(), 8);
        assert_eq!(s.primary_key, vec!["sfzh"]);
        assert!(s.field("sfzh").unwrap().sensitive);
        assert_eq!(s.field("xm").unwrap().label(), "姓名");
        assert_eq!(s.foreign_keys[0].reference.resource, "admin-divisions");
        // Round trip through our canonical JSON.
        let again = TableSchema::parse(&s.to_json()).unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn refuses_unknown_type_naming_the_field() {
        let e = refused(json!({"fields": [{"name": "a", "type": "strin"}]}));
        assert_eq!(e.code, Code::InvalidSchema);
        assert_eq!(e.field.as_deref(), Some("schema.fields[0] (\"a\").type"));
        assert!(e.message.contains("strin"));
        assert!(e.message_zh.contains("未知类型"));
    }

    #[test]
    fn refuses_primary_key_naming_missing_field() {
        let e = refused(json!({"fields": [{"name": "a"}], "primaryKey": ["b"]}));
        assert_eq!(e.field.as_deref(), Some("schema.primaryKey[0]"));
        assert!(e.message.contains("\"b\""));
    }

    #[test]
    fn refuses_bad_regex() {
        let e = refused(json!({"fields": [{"name": "a", "constraints": {"pattern": "([a-z"}}]}));
        assert!(e.field.as_deref().unwrap().ends_with("constraints.pattern"));
        assert!(e.message.contains("does not compile"));
    }

    #[test]
    fn refuses_other_mistakes() {
        let cases = vec![
            (json!([]), "schema"),
            (json!({"fields": []}), "schema.fields"),
            (json!({"fields": [{"name": "A"}]}), ".name"),
            (json!({"fields": [{"name": "a"}, {"name": "a"}]}), "fields[1].name"),
            (json!({"fields": [{"name": "a", "format": "id-number", "type": "integer"}]}), ".format"),
            (json!({"fields": [{"name": "a", "sensitve": true}]}), "schema.fields[0] (\"a\")"),
            (json!({"fields": [{"name": "a", "constraints": {"minLength": 5, "maxLength": 2}}]}), "minLength"),
            (json!({"fields": [{"name": "a", "type": "integer", "constraints": {"minimum": "x"}}]}), "minimum"),
            (json!({"fields": [{"name": "a", "type": "integer", "constraints": {"pattern": "x"}}]}), "pattern"),
            (json!({"fields": [{"name": "a", "constraints": {"enum": []}}]}), "enum"),
            (json!({"fields": [{"name": "a", "constraints": {"requird": true}}]}), "constraints"),
            (json!({"fields": [{"name": "a", "type": "object"}], "primaryKey": "a"}), "primaryKey[0]"),
            (
                json!({"fields": [{"name": "a"}], "foreignKeys": [{"fields": "a", "reference": {"resource": "", "fields": "zz"}}]}),
                "reference.fields[0]",
            ),
            (
                json!({"fields": [{"name": "a"}], "foreignKeys": [{"fields": ["a"], "reference": {"resource": "x", "fields": ["p", "q"]}}]}),
                "reference.fields",
            ),
            (json!({"fields": [{"name": "a"}], "extra": 1}), "schema"),
            (json!({"fields": [{"name": "_hidden"}]}), ".name"),
        ];
        for (v, path) in cases {
            let e = TableSchema::parse(&v).expect_err(&v.to_string());
            assert_eq!(e.code, Code::InvalidSchema);
            assert!(e.field.as_deref().unwrap_or_default().contains(path), "{v}: {:?} lacks {path}", e.field);
        }
    }

    #[test]
    fn date_patterns_are_formats() {
        assert!(TableSchema::parse(&json!({"fields": [{"name": "d", "type": "date", "format": "%Y%m%d"}]})).is_ok());
    }

    #[test]
    fn schema_changes() {
        let base = TableSchema::parse(&person()).unwrap();
        assert_eq!(base.change_to(&base), SchemaChange::Compatible);

        let mut v = person();
        v["fields"][1]["title"] = json!("姓名（中文）");
        assert_eq!(base.change_to(&TableSchema::parse(&v).unwrap()), SchemaChange::Compatible);

        let mut v = person();
        v["fields"].as_array_mut().unwrap().push(json!({"name": "bz", "title": "备注"}));
        match base.change_to(&TableSchema::parse(&v).unwrap()) {
            SchemaChange::AddFields(f) => assert_eq!(f[0].name, "bz"),
            other => panic!("{other:?}"),
        }

        let mut v = person();
        v["fields"].as_array_mut().unwrap().push(json!({"name": "bz", "constraints": {"required": true}}));
        assert_eq!(base.change_to(&TableSchema::parse(&v).unwrap()), SchemaChange::NewVersion);

        let mut v = person();
        v["fields"][6]["type"] = json!("number");
        assert_eq!(base.change_to(&TableSchema::parse(&v).unwrap()), SchemaChange::NewVersion);

        let mut v = person();
        v["fields"].as_array_mut().unwrap().remove(7);
        assert_eq!(base.change_to(&TableSchema::parse(&v).unwrap()), SchemaChange::NewVersion);
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_json(s in "\\PC{0,200}") {
            if let Ok(v) = serde_json::from_str::<Value>(&s) {
                let _ = TableSchema::parse(&v);
            }
        }

        #[test]
        fn valid_schemas_round_trip(names in proptest::collection::btree_set("[a-z][a-z0-9_]{0,10}", 1..8), ty in 0usize..16) {
            let t = FieldType::ALL[ty];
            let fields: Vec<Value> = names.iter().map(|n| json!({"name": n, "type": t.as_str()})).collect();
            let s = TableSchema::parse(&json!({"fields": fields})).unwrap();
            prop_assert_eq!(TableSchema::parse(&s.to_json()).unwrap(), s);
        }
    }
}
