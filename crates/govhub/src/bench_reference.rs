//! The bare lookup server `govhub bench api` measures in the same run as govhub: axum
//! and rusqlite, one read-only connection per worker thread queried inline, a row's
//! columns as a JSON object — no token, grant, masking or audit. It is what
//! `shared/design/PERFORMANCE.md` measured at ≈ 52–55 k req/s on the reference machine
//! (the issue's "about 50,000"), so each run can say what share of the bare path the
//! full path keeps on the machine at hand: absolute rates drift between machines of the
//! same kind by a factor of two.

use anyhow::{bail, Context, Result};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

pub struct ReferenceArgs {
    pub database: PathBuf,
    pub table: String,
    pub key: String,
    pub columns: Vec<String>,
    pub listen: String,
}

struct Reference {
    database: PathBuf,
    sql: String,
    columns: Vec<String>,
}

thread_local! {
    /// This worker thread's connection, opened at its first request.
    static CONN: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

/// A quoted SQL identifier; names with a quote in them are refused rather than escaped
/// (the benchmark passes its own table's names).
fn ident(name: &str) -> Result<String> {
    if name.is_empty() || name.contains('"') || name.contains('\0') {
        bail!("not a plain SQL identifier: {name:?}");
    }
    Ok(format!("\"{name}\""))
}

/// The lookup statement of `args`: the listed columns of the row with that key.
fn lookup_sql(args: &ReferenceArgs) -> Result<String> {
    if args.columns.is_empty() {
        bail!("name at least one column to answer");
    }
    let cols = args.columns.iter().map(|c| ident(c)).collect::<Result<Vec<_>>>()?.join(", ");
    Ok(format!("SELECT {cols} FROM {} WHERE {} = ?1", ident(&args.table)?, ident(&args.key)?))
}

fn json_of(v: ValueRef<'_>) -> serde_json::Value {
    match v {
        ValueRef::Null => serde_json::Value::Null,
        ValueRef::Integer(i) => i.into(),
        ValueRef::Real(f) => f.into(),
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned().into(),
    }
}

fn find(r: &Reference, key: &str) -> rusqlite::Result<Option<serde_json::Map<String, serde_json::Value>>> {
    CONN.with(|cell| {
        let mut slot = cell.borrow_mut();
        let conn = match slot.as_mut() {
            Some(c) => c,
            None => slot.insert(Connection::open_with_flags(
                &r.database,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?),
        };
        let mut stmt = conn.prepare_cached(&r.sql)?;
        stmt.query_row([key], |row| {
            let mut obj = serde_json::Map::with_capacity(r.columns.len());
            for (i, name) in r.columns.iter().enumerate() {
                obj.insert(name.clone(), json_of(row.get_ref(i)?));
            }
            Ok(obj)
        })
        .optional()
    })
}

async fn lookup(State(r): State<Arc<Reference>>, Path(key): Path<String>) -> Response {
    match find(&r, &key) {
        Ok(Some(obj)) => Json(obj).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Serve `GET /{key}` until killed.
pub async fn serve(args: ReferenceArgs) -> Result<()> {
    let sql = lookup_sql(&args)?;
    // Fail at the start, not at the first request, when the file or table is wrong.
    Connection::open_with_flags(&args.database, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.prepare(&sql).map(drop))
        .with_context(|| format!("preparing {sql} on {}", args.database.display()))?;
    let state = Arc::new(Reference { database: args.database, sql, columns: args.columns });
    let app = Router::new().route("/{key}", get(lookup)).with_state(state);
    let listener =
        tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(table: &str, key: &str, columns: &[&str]) -> ReferenceArgs {
        ReferenceArgs {
            database: PathBuf::new(),
            table: table.into(),
            key: key.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            listen: String::new(),
        }
    }

    #[test]
    fn the_lookup_names_its_columns_quoted() {
        assert_eq!(
            lookup_sql(&args("ds_a_v1", "sfzh", &["sfzh", "xm"])).unwrap(),
            r#"SELECT "sfzh", "xm" FROM "ds_a_v1" WHERE "sfzh" = ?1"#
        );
        assert!(lookup_sql(&args("t\"; DROP TABLE x; --", "k", &["k"])).is_err());
        assert!(lookup_sql(&args("t", "k", &[])).is_err());
        assert!(lookup_sql(&args("t", "", &["k"])).is_err());
    }

    #[tokio::test]
    async fn it_answers_a_row_by_key_and_404_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("r.db");
        let c = Connection::open(&db).unwrap();
        c.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, s TEXT); INSERT INTO t VALUES ('a', 7, NULL);")
            .unwrap();
        drop(c);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut a = args("t", "k", &["k", "n", "s"]);
        a.database = db;
        a.listen = format!("127.0.0.1:{port}");
        let server = tokio::spawn(serve(a));
        let client = reqwest::Client::new();
        let url = |k: &str| format!("http://127.0.0.1:{port}/{k}");
        let mut found = None;
        for _ in 0..100 {
            if let Ok(r) = client.get(url("a")).send().await {
                found = Some(r.json::<serde_json::Value>().await.unwrap());
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(found.unwrap(), serde_json::json!({"k": "a", "n": 7, "s": null}));
        assert_eq!(client.get(url("b")).send().await.unwrap().status(), 404);
        server.abort();
    }
}
