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
}

/// Name of the surrogate key added when a schema has no primary key.
pub const ROW_ID: &str = "_row_id";

/// The column definition of one field (type and constraints, name excluded).
fn column_definition(dialect: &Dialect, schema: &TableSchema, field: &Field) -> String {
    let mut def = (dialect.column_type)(field.field_type).to_string();
    if field.constraints.required || schema.primary_key.contains(&field.name) {
        def.push_str(" NOT NULL");
    }
    let sole_primary_key = schema.primary_key.len() == 1 && schema.primary_key[0] == field.name;
    if field.constraints.unique && !sole_primary_key {
        def.push_str(" UNIQUE");
    }
    def
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_ident("a"), "\"a\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
