//! PostgreSQL flavour of the typed dataset tables.

use crate::ddl::Dialect;
use govhub_core::schema::{Field, FieldType, TableSchema};

pub fn column_type(t: FieldType) -> &'static str {
    match t {
        FieldType::String => "TEXT",
        FieldType::Integer => "BIGINT",
        FieldType::Number => "NUMERIC",
        FieldType::Boolean => "BOOLEAN",
        FieldType::Date => "DATE",
        FieldType::Datetime => "TIMESTAMPTZ",
        FieldType::Time => "TIME",
        FieldType::Year => "INTEGER",
        FieldType::Object | FieldType::Array | FieldType::Geojson | FieldType::List => "JSONB",
        FieldType::Yearmonth | FieldType::Duration | FieldType::Geopoint | FieldType::Any => "TEXT",
    }
}

pub const DIALECT: Dialect = Dialect {
    column_type,
    row_id: "BIGSERIAL PRIMARY KEY",
    system_columns: &[
        ("_version", "BIGINT NOT NULL DEFAULT 1"),
        ("_hash", "TEXT"),
        ("_delivery_id", "BIGINT"),
        ("_updated_at", "TIMESTAMPTZ"),
        ("_deleted", "BOOLEAN NOT NULL DEFAULT false"),
    ],
    table_options: "",
    key_text_collation: " COLLATE \"C\"",
    history_row_id: "BIGINT",
    history_columns: &[
        ("_version", "BIGINT NOT NULL"),
        ("_op", "TEXT NOT NULL"),
        ("_delivery_id", "BIGINT"),
        ("_valid_from", "TIMESTAMPTZ NOT NULL"),
        ("_valid_to", "TIMESTAMPTZ NOT NULL"),
    ],
    named_indexes: false,
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
    "sfzh" TEXT COLLATE "C" NOT NULL,
    "xm" TEXT NOT NULL,
    "nl" BIGINT,
    "sg" NUMERIC,
    "hy" BOOLEAN,
    "csrq" DATE,
    "djsj" TIMESTAMPTZ,
    "kssj" TIME,
    "nf" INTEGER,
    "kz" JSONB,
    "lb" JSONB,
    "dw" JSONB,
    "qd" JSONB,
    "ny" TEXT,
    "sjhm" TEXT UNIQUE,
    "bh" BIGINT,
    "_version" BIGINT NOT NULL DEFAULT 1,
    "_hash" TEXT,
    "_delivery_id" BIGINT,
    "_updated_at" TIMESTAMPTZ,
    "_deleted" BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY ("sfzh"),
    UNIQUE ("xm", "csrq")
)"#;
        assert_eq!(create_table("ds_ga_hjrk_v1", &schema), expected);
    }

    #[test]
    fn surrogate_key_and_composite_primary_key() {
        let no_pk = TableSchema::parse(&json!({"fields": [{"name": "a"}]})).unwrap();
        assert_eq!(
            create_table("ds_x_v1", &no_pk),
            r#"CREATE TABLE "ds_x_v1" (
    "a" TEXT,
    "_row_id" BIGSERIAL PRIMARY KEY,
    "_version" BIGINT NOT NULL DEFAULT 1,
    "_hash" TEXT,
    "_delivery_id" BIGINT,
    "_updated_at" TIMESTAMPTZ,
    "_deleted" BOOLEAN NOT NULL DEFAULT false
)"#
        );
        let composite = TableSchema::parse(&json!({
            "fields": [{"name": "a", "type": "integer", "constraints": {"unique": true}}, {"name": "b", "type": "date"}],
            "primaryKey": ["a", "b"]
        }))
        .unwrap();
        assert_eq!(
            create_table("ds_y_v2", &composite),
            r#"CREATE TABLE "ds_y_v2" (
    "a" BIGINT NOT NULL UNIQUE,
    "b" DATE NOT NULL,
    "_version" BIGINT NOT NULL DEFAULT 1,
    "_hash" TEXT,
    "_delivery_id" BIGINT,
    "_updated_at" TIMESTAMPTZ,
    "_deleted" BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY ("a", "b")
)"#
        );
    }

    #[test]
    fn add_column_is_nullable() {
        let s = TableSchema::parse(&json!({"fields": [{"name": "bz", "type": "object"}]})).unwrap();
        assert_eq!(add_column("ds_x_v1", &s.fields[0]), r#"ALTER TABLE "ds_x_v1" ADD COLUMN "bz" JSONB"#);
    }
}
