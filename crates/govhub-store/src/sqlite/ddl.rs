//! SQLite flavour of the typed dataset tables. Tables are `STRICT`, so SQLite checks
//! every value against the column type (dates, times and JSON are TEXT; booleans are
//! INTEGER 0/1).

use crate::ddl::Dialect;
use govhub_core::schema::{Field, FieldType, TableSchema};

pub fn column_type(t: FieldType) -> &'static str {
    match t {
        FieldType::Integer | FieldType::Year | FieldType::Boolean => "INTEGER",
        FieldType::Number => "REAL",
        FieldType::String
        | FieldType::Date
        | FieldType::Datetime
        | FieldType::Time
        | FieldType::Object
        | FieldType::Array
        | FieldType::Geojson
        | FieldType::List
        | FieldType::Yearmonth
        | FieldType::Duration
        | FieldType::Geopoint
        | FieldType::Any => "TEXT",
    }
}

pub const DIALECT: Dialect = Dialect {
    column_type,
    row_id: "INTEGER PRIMARY KEY AUTOINCREMENT",
    system_columns: &[
        ("_version", "INTEGER NOT NULL DEFAULT 1"),
        ("_hash", "TEXT"),
        ("_delivery_id", "INTEGER"),
        ("_updated_at", "TEXT"),
        ("_deleted", "INTEGER NOT NULL DEFAULT 0"),
    ],
    table_options: " STRICT",
    key_text_collation: "",
    history_row_id: "INTEGER",
    history_columns: &[
        ("_version", "INTEGER NOT NULL"),
        ("_op", "TEXT NOT NULL"),
        ("_delivery_id", "INTEGER"),
        ("_valid_from", "TEXT NOT NULL"),
        ("_valid_to", "TEXT NOT NULL"),
    ],
    named_indexes: true,
};

pub fn create_table(table: &str, schema: &TableSchema) -> String {
    crate::ddl::create_table(&DIALECT, table, schema)
}

pub fn create_history_table(table: &str, schema: &TableSchema, if_not_exists: bool) -> String {
    crate::ddl::create_history_table(&DIALECT, table, schema, if_not_exists)
}

pub fn add_column(table: &str, field: &Field) -> String {
    crate::ddl::add_column(&DIALECT, table, field)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn create_table_known_answer() {
        let schema = crate::ddl::sample_schema();
        let expected = r#"CREATE TABLE "ds_ga_hjrk_v1" (
    "sfzh" TEXT NOT NULL,
    "xm" TEXT NOT NULL,
    "nl" INTEGER,
    "sg" REAL,
    "hy" INTEGER,
    "csrq" TEXT,
    "djsj" TEXT,
    "kssj" TEXT,
    "nf" INTEGER,
    "kz" TEXT,
    "lb" TEXT,
    "dw" TEXT,
    "qd" TEXT,
    "ny" TEXT,
    "sjhm" TEXT UNIQUE,
    "bh" INTEGER,
    "_version" INTEGER NOT NULL DEFAULT 1,
    "_hash" TEXT,
    "_delivery_id" INTEGER,
    "_updated_at" TEXT,
    "_deleted" INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY ("sfzh"),
    UNIQUE ("xm", "csrq")
) STRICT"#;
        assert_eq!(create_table("ds_ga_hjrk_v1", &schema), expected);
    }

    #[test]
    fn surrogate_key_and_composite_primary_key() {
        let no_pk = TableSchema::parse(&json!({"fields": [{"name": "a"}]})).unwrap();
        assert_eq!(
            create_table("ds_x_v1", &no_pk),
            r#"CREATE TABLE "ds_x_v1" (
    "a" TEXT,
    "_row_id" INTEGER PRIMARY KEY AUTOINCREMENT,
    "_version" INTEGER NOT NULL DEFAULT 1,
    "_hash" TEXT,
    "_delivery_id" INTEGER,
    "_updated_at" TEXT,
    "_deleted" INTEGER NOT NULL DEFAULT 0
) STRICT"#
        );
        let composite = TableSchema::parse(&json!({
            "fields": [{"name": "a", "type": "integer", "constraints": {"unique": true}}, {"name": "b", "type": "date"}],
            "primaryKey": ["a", "b"]
        }))
        .unwrap();
        assert_eq!(
            create_table("ds_y_v2", &composite),
            r#"CREATE TABLE "ds_y_v2" (
    "a" INTEGER NOT NULL UNIQUE,
    "b" TEXT NOT NULL,
    "_version" INTEGER NOT NULL DEFAULT 1,
    "_hash" TEXT,
    "_delivery_id" INTEGER,
    "_updated_at" TEXT,
    "_deleted" INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY ("a", "b")
) STRICT"#
        );
    }

    #[test]
    fn add_column_is_nullable() {
        let s = TableSchema::parse(&json!({"fields": [{"name": "bz", "type": "number"}]})).unwrap();
        assert_eq!(add_column("ds_x_v1", &s.fields[0]), r#"ALTER TABLE "ds_x_v1" ADD COLUMN "bz" REAL"#);
    }
}
