//! Generation of the typed dataset tables, shared by both backends.
//!
//! The statement has the same shape on SQLite and PostgreSQL; what differs — the
//! column type of each field type, the system columns, the surrogate key and table
//! options — comes from the backend's [`Dialect`].

use govhub_core::schema::{Field, FieldType, TableSchema};

/// Quote an SQL identifier: `"name"`, inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What a backend contributes to a typed table's DDL.
pub struct Dialect {
    /// SQL column type for a field type.
    pub column_type: fn(FieldType) -> &'static str,
    /// The surrogate key column definition (name excluded) used when the schema has no
    /// primary key.
    pub row_id: &'static str,
    /// System columns for the delivery layer: `(name, definition)`.
    pub system_columns: &'static [(&'static str, &'static str)],
    /// Appended after the closing parenthesis (e.g. ` STRICT`).
    pub table_options: &'static str,
    /// Appended to the type of a text primary-key column (PostgreSQL: ` COLLATE "C"`,
    /// so that keys order bytewise on both backends and the key index serves the order).
    pub key_text_collation: &'static str,
    /// The history table's copy of the surrogate key (type only, no constraint).
    pub history_row_id: &'static str,
    /// System columns of a history table: `(name, definition)`.
    pub history_columns: &'static [(&'static str, &'static str)],
    /// Whether history indexes are named (SQLite needs a name; PostgreSQL names an
    /// unnamed index itself, which keeps long table names within 63 bytes).
    pub named_indexes: bool,
}

/// Name of the surrogate key added when a schema has no primary key.
pub const ROW_ID: &str = "_row_id";

/// The column definition of one field (type and constraints, name excluded).
fn column_definition(dialect: &Dialect, schema: &TableSchema, field: &Field) -> String {
    let mut def = column_type(dialect, schema, field);
    if field.constraints.required || schema.primary_key.contains(&field.name) {
        def.push_str(" NOT NULL");
    }
    let sole_primary_key = schema.primary_key.len() == 1 && schema.primary_key[0] == field.name;
    if field.constraints.unique && !sole_primary_key {
        def.push_str(" UNIQUE");
    }
    def
}

/// The column type of a field, with the key collation for text key columns.
fn column_type(dialect: &Dialect, schema: &TableSchema, field: &Field) -> String {
    let t = (dialect.column_type)(field.field_type);
    if t == "TEXT" && schema.primary_key.contains(&field.name) {
        format!("{t}{}", dialect.key_text_collation)
    } else {
        t.to_string()
    }
}

/// Suffix of a typed table's history table. Short, so that the history of the longest
/// typed table name (`ds_` + a 50-character stem + `_v` + the version) still fits the
/// 63-byte identifier limit.
pub const HISTORY_SUFFIX: &str = "_hist";

/// The history table of a typed table: previous versions of its records.
pub fn history_table_name(table: &str) -> String {
    format!("{table}{HISTORY_SUFFIX}")
}

/// `CREATE TABLE` (and its key index) for a typed table's history: every field column
/// (nullable, no constraints), the surrogate key when there is no primary key, and the
/// version columns. Statements are separated by `;`.
pub fn create_history_table(dialect: &Dialect, table: &str, schema: &TableSchema, if_not_exists: bool) -> String {
    let history = history_table_name(table);
    let mut lines: Vec<String> =
        schema.fields.iter().map(|f| format!("{} {}", quote_ident(&f.name), column_type(dialect, schema, f))).collect();
    let key: Vec<String> = if schema.primary_key.is_empty() {
        lines.push(format!("{} {}", quote_ident(ROW_ID), dialect.history_row_id));
        vec![quote_ident(ROW_ID)]
    } else {
        schema.primary_key.iter().map(|k| quote_ident(k)).collect()
    };
    for (name, def) in dialect.history_columns {
        lines.push(format!("{} {def}", quote_ident(name)));
    }
    let ine = if if_not_exists { "IF NOT EXISTS " } else { "" };
    let index_name =
        if dialect.named_indexes { format!("{ine}{} ", quote_ident(&format!("{history}_key"))) } else { String::new() };
    format!(
        "CREATE TABLE {ine}{} (\n    {}\n){};\nCREATE INDEX {index_name}ON {} ({}, \"_version\")",
        quote_ident(&history),
        lines.join(",\n    "),
        dialect.table_options,
        quote_ident(&history),
        key.join(", ")
    )
}

/// `ALTER TABLE … ADD COLUMN` for a field added in place: always nullable.
pub fn add_column(dialect: &Dialect, table: &str, field: &Field) -> String {
    format!(
        "ALTER TABLE {} ADD COLUMN {} {}",
        quote_ident(table),
        quote_ident(&field.name),
        (dialect.column_type)(field.field_type)
    )
}

/// The `CREATE TABLE` statement for a dataset's typed table.
pub fn create_table(dialect: &Dialect, table: &str, schema: &TableSchema) -> String {
    let mut lines: Vec<String> = schema
        .fields
        .iter()
        .map(|f| format!("{} {}", quote_ident(&f.name), column_definition(dialect, schema, f)))
        .collect();
    if schema.primary_key.is_empty() {
        lines.push(format!("{} {}", quote_ident(ROW_ID), dialect.row_id));
    }
    for (name, def) in dialect.system_columns {
        lines.push(format!("{} {def}", quote_ident(name)));
    }
    let column_list = |names: &[String]| names.iter().map(|n| quote_ident(n)).collect::<Vec<_>>().join(", ");
    if !schema.primary_key.is_empty() {
        lines.push(format!("PRIMARY KEY ({})", column_list(&schema.primary_key)));
    }
    for key in &schema.unique_keys {
        let redundant = *key == schema.primary_key
            || (key.len() == 1 && schema.field(&key[0]).is_some_and(|f| f.constraints.unique));
        if !redundant {
            lines.push(format!("UNIQUE ({})", column_list(key)));
        }
    }
    format!("CREATE TABLE {} (\n    {}\n){}", quote_ident(table), lines.join(",\n    "), dialect.table_options)
}

/// The schema both backends' DDL known-answer tests render (one fixture, two dialects).
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn sample_schema() -> TableSchema {
    TableSchema::parse(&serde_json::json!({
        "fields": [
            {"name": "sfzh", "type": "string", "format": "id-number"},
            {"name": "xm", "type": "string", "constraints": {"required": true}},
            {"name": "nl", "type": "integer"},
            {"name": "sg", "type": "number"},
            {"name": "hy", "type": "boolean"},
            {"name": "csrq", "type": "date"},
            {"name": "djsj", "type": "datetime"},
            {"name": "kssj", "type": "time"},
            {"name": "nf", "type": "year"},
            {"name": "kz", "type": "object"},
            {"name": "lb", "type": "array"},
            {"name": "dw", "type": "geojson"},
            {"name": "qd", "type": "list"},
            {"name": "ny", "type": "yearmonth"},
            {"name": "sjhm", "type": "string", "constraints": {"unique": true}},
            {"name": "bh", "type": "integer"}
        ],
        "primaryKey": ["sfzh"],
        "uniqueKeys": [["xm", "csrq"], ["sfzh"]]
    }))
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_ident("a"), "\"a\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
