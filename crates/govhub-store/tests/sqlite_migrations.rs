//! SQLite opening rules: migrations run once; an edited or unknown migration stops
//! the store from opening, with a message saying why.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use govhub_core::store::StoreError;
use govhub_store::ddl;
use govhub_store::sqlite::SqliteStore;

fn applied(path: &std::path::Path) -> Vec<(i64, String, String)> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut s = c.prepare("SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version").unwrap();
    let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

async fn open_err(path: &std::path::Path) -> String {
    match govhub_store::open(path.to_str().unwrap()).await {
        Err(StoreError::Corrupt(msg)) => msg,
        Err(other) => panic!("expected Corrupt, got {other:?}"),
        Ok(_) => panic!("the store opened"),
    }
}

#[tokio::test]
async fn reopening_does_not_rerun_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("govhub.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let first = applied(&path);
    assert_eq!(first.iter().map(|m| m.0).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(first[0].1.len(), 64, "SM3 hex checksum");
    drop(store);

    for url in [format!("sqlite://{}", path.display()), format!("sqlite:{}", path.display())] {
        let again = govhub_store::open(&url).await.unwrap();
        assert_eq!(again.migrations().await.unwrap(), vec![1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(applied(&path), first, "reopening re-ran a migration");
    }
}

#[tokio::test]
async fn sqlite_file_settings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/govhub.db");
    let _store = SqliteStore::open(&path).await.unwrap();
    assert!(path.exists(), "file and parent directories are created");
    let c = rusqlite::Connection::open(&path).unwrap();
    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn tampered_checksum_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("govhub.db");
    drop(SqliteStore::open(&path).await.unwrap());
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute("UPDATE schema_migrations SET checksum = 'deadbeef' WHERE version = 1", []).unwrap();
    drop(c);
    let msg = open_err(&path).await;
    assert!(msg.contains("sqlite migration 0001 was changed after it was applied"), "{msg}");
    assert!(msg.contains("deadbeef") && msg.contains("must never be edited"), "{msg}");
}

#[tokio::test]
async fn newer_database_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("govhub.db");
    drop(SqliteStore::open(&path).await.unwrap());
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute("INSERT INTO schema_migrations (version, checksum, applied_at) VALUES (42, 'x', 'now')", []).unwrap();
    drop(c);
    let msg = open_err(&path).await;
    assert!(msg.contains("migration 0042, newer than this govhub knows (latest 0008)"), "{msg}");
}

#[tokio::test]
async fn corrupt_rows_are_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("govhub.db");
    let store = govhub_store::open(path.to_str().unwrap()).await.unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute(
        "INSERT INTO orgs (code, name, kind, created_at) VALUES ('bad-kind', 'x', 'galaxy', '2024-01-01T00:00:00.000000Z'),
             ('bad-time', 'x', 'city', 'yesterday')",
        [],
    )
    .unwrap();
    for code in ["bad-kind", "bad-time"] {
        match store.get_org(&govhub_core::names::OrgCode::parse(code).unwrap()).await {
            Err(StoreError::Corrupt(msg)) => assert!(msg.contains("galaxy") || msg.contains("yesterday"), "{msg}"),
            other => panic!("{code}: expected Corrupt, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    match govhub_store::open("mysql://root:secret@localhost/govhub").await {
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains("unsupported database URL scheme") && !msg.contains("secret"), "{msg}");
        }
        Ok(_) => panic!("mysql:// opened"),
    }
    assert_eq!(ddl::quote_ident("x"), "\"x\"");
}
