//! The audit chain under the conditions it was designed for: two govhub nodes (two
//! stores, two pools) appending to one PostgreSQL at once; two processes appending to
//! one SQLite audit file; audit appends while a delivery holds SQLite's main writer;
//! and the first start after the upgrade, which moves the old, unchained audit table
//! into the chain.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use govhub_core::audit::{verify_log, AuditStore, GENESIS_HASH};
use govhub_core::cells::Cell;
use govhub_core::delivery::DeliveryMode;
use govhub_core::model::AuditQuery;
use govhub_core::schema::TableSchema;
use govhub_core::store::{DeliveryBatch, DeliveryStore, NewDelivery, Store, StoreError};
use govhub_store::conformance::{at, dataset, org, valid_row};
use govhub_store::conformance_audit::access;
use govhub_store::postgres::PostgresStore;
use govhub_store::sqlite::{audit_path, SqliteStore};
use rand::Rng;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::NoTls;

const PG_URL_VAR: &str = "GOVHUB_TEST_POSTGRES_URL";

/// `tasks` tasks on each store append `each` entries concurrently; returns all seqs.
async fn hammer(stores: &[Arc<dyn Store>], tasks: usize, each: usize) -> Vec<i64> {
    let mut handles = Vec::new();
    for (n, s) in stores.iter().enumerate() {
        for t in 0..tasks {
            let s = s.clone();
            handles.push(tokio::spawn(async move {
                let mut seqs = Vec::with_capacity(each);
                for i in 0..each {
                    let mut ev = access(&format!("node{n}"), &format!("T{t}-{i}"), &["320402199001011235"]);
                    ev.at = chrono::Utc::now();
                    seqs.push(s.append_audit(&ev).await.unwrap());
                }
                seqs
            }));
        }
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all.sort_unstable();
    all
}

async fn assert_chain_intact(store: &dyn Store, entries: i64) {
    let r = verify_log(store, &[], &mut |_| {}).await.unwrap();
    assert_eq!(r.fault, None, "{}", r.fault.as_ref().map(ToString::to_string).unwrap_or_default());
    assert_eq!(r.entries as i64, entries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_processes_append_to_one_audit_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("govhub.db");
    let a: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let b: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let seqs = hammer(&[a.clone(), b.clone()], 16, 10).await;
    assert_eq!(seqs, (1..=320).collect::<Vec<_>>());
    assert_chain_intact(a.as_ref(), 320).await;
    assert!(audit_path(&path).exists());
}

/// A fresh PostgreSQL database, dropped afterwards even when the test fails.
async fn with_fresh_pg<F, Fut>(f: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Ok(admin_url) = std::env::var(PG_URL_VAR) else {
        eprintln!("\n*** PostgreSQL audit-chain tests SKIPPED: set {PG_URL_VAR} ***\n");
        return;
    };
    let (admin, conn) = tokio_postgres::connect(&admin_url, NoTls).await.unwrap();
    tokio::spawn(conn);
    let name = format!("govhub_chain_{:016x}", rand::thread_rng().gen::<u64>());
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (admin_url.clone(), String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[scheme_end..].find('/').map(|i| scheme_end + i).unwrap_or(base.len());
    let url = format!("{}/{name}{query}", &base[..authority_end]);
    let outcome = tokio::spawn(f(url)).await;
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_nodes_append_to_one_chain() {
    with_fresh_pg(|url| async move {
        // Two nodes: two stores, two pools, two writer tasks, one database.
        let (a, b) = tokio::join!(PostgresStore::open(&url), PostgresStore::open(&url));
        let (a, b): (Arc<dyn Store>, Arc<dyn Store>) = (Arc::new(a.unwrap()), Arc::new(b.unwrap()));
        let seqs = hammer(&[a.clone(), b.clone()], 32, 15).await;
        assert_eq!(seqs, (1..=960).collect::<Vec<_>>(), "every append got its own seq, without gaps");
        assert_chain_intact(a.as_ref(), 960).await;
        assert_chain_intact(b.as_ref(), 960).await;
        // Both nodes' entries are in it, and a subject lookup sees all of them.
        let from = |n: &str| AuditQuery { actor: Some(n.into()), limit: 1000, ..Default::default() };
        assert_eq!(a.list_audit(&from("node0")).await.unwrap().len(), 480);
        assert_eq!(a.list_audit(&from("node1")).await.unwrap().len(), 480);
        assert_eq!(b.list_audit_for_subject("320402199001011235", 1000).await.unwrap().len(), 960);
    })
    .await;
}

/// The main file's single writer is held by a delivery whose rows are flowing; audit
/// entries (their own file, their own writer) go through at once, and durably.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_audit_appends_do_not_wait_for_a_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("govhub.db")).await.unwrap();
    store.insert_org(&org("hold-org", None)).await.unwrap();
    let sc =
        TableSchema::parse(&json!({"fields": [{"name": "id", "type": "integer"}, {"name": "xm"}], "primaryKey": "id"}))
            .unwrap();
    let d = dataset("HOLD", "hold-org", sc.clone());
    store.create_dataset(&d).await.unwrap();
    let when = at("2025-01-01T00:00:00Z");
    let id = store
        .begin_delivery(&NewDelivery {
            dataset: d.code.clone(),
            schema_version: 1,
            mode: DeliveryMode::Incremental,
            format: "csv".into(),
            encoding: "utf-8".into(),
            submitted_by: "t".into(),
            org: d.provider.clone(),
            file_name: None,
            started_at: when,
        })
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let apply = store.apply_delivery(&d, id, DeliveryMode::Incremental, when, rx);
    let meanwhile = async {
        let rows = (1..=1000).map(|i| valid_row(i, vec![Cell::Int(i as i64), Cell::Text("甲".into())])).collect();
        tx.send(DeliveryBatch::Rows(rows)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The main writer is held: a main-file write waits …
        let main_write =
            tokio::time::timeout(Duration::from_millis(500), store.insert_org(&org("hold-other", None))).await;
        assert!(main_write.is_err(), "the delivery was expected to hold the main writer");
        // … but audit entries do not.
        for i in 0..20 {
            let seq = tokio::time::timeout(
                Duration::from_secs(2),
                store.append_audit(&access("hold-reader", &format!("HOLD-{i}"), &[])),
            )
            .await
            .expect("an audit append waited for the delivery")
            .unwrap();
            assert!(seq >= 1);
        }
        let listed = tokio::time::timeout(
            Duration::from_secs(2),
            store.list_audit(&AuditQuery { actor: Some("hold-reader".into()), ..Default::default() }),
        )
        .await
        .expect("an audit read waited for the delivery")
        .unwrap();
        assert_eq!(listed.len(), 20);
        tx.send(DeliveryBatch::Commit).await.unwrap();
    };
    let (r, ()) = tokio::join!(apply, meanwhile);
    assert_eq!(r.unwrap().inserted, 1000);
}

/// Rows in the pre-chain layout (migration 0002), with a gap in their seqs.
const LEGACY_ROWS: &[(i64, &str, &str, &str, &str)] = &[
    (1, "2024-05-01T08:00:00.000000Z", "system", "org.create", r#"{"name": "常州市人民政府"}"#),
    (2, "2024-05-01T08:00:01.250000Z", "admin", "auth.sign_in", r#"{"kind":"web"}"#),
    (4, "2024-05-01T08:00:02.000001Z", "gaj-officer", "dataset.manage", "null"),
    (7, "2024-05-01T08:00:03.000000Z", "admin", "audit.read", r#"{"reason":"unknown user","n":[1,2.5]}"#),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_first_start_moves_the_old_audit_table_into_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("govhub.db");
    {
        // A database as govhub left it before the chain: migrations 0001 and 0002.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL, checksum TEXT NOT NULL,
                 applied_at TEXT NOT NULL)",
        )
        .unwrap();
        for (v, sql) in [
            (1, include_str!("../src/sqlite/migrations/0001_init.sql")),
            (2, include_str!("../src/sqlite/migrations/0002_deliveries.sql")),
        ] {
            c.execute_batch(sql).unwrap();
            c.execute(
                "INSERT INTO schema_migrations VALUES (?1, ?2, 'then')",
                rusqlite::params![v, govhub_crypto::sm3_hex(sql.as_bytes())],
            )
            .unwrap();
        }
        for (seq, at, actor, action, detail) in LEGACY_ROWS {
            c.execute(
                "INSERT INTO audit_events (seq, at, actor, actor_role, actor_org, on_behalf_of, action, target, outcome,
                     detail, request_id) VALUES (?1, ?2, ?3, NULL, NULL, NULL, ?4, 'x', 'succeeded', ?5, 'r')",
                rusqlite::params![seq, at, actor, action, detail],
            )
            .unwrap();
        }
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.migrations().await.unwrap(), vec![1, 2, 3, 4, 5, 6, 7, 8]);
    check_imported(&store).await;
    drop(store);
    let c = rusqlite::Connection::open(&path).unwrap();
    let legacy: i64 =
        c.query_row("SELECT count(*) FROM sqlite_master WHERE name LIKE 'audit_events%'", [], |r| r.get(0)).unwrap();
    assert_eq!(legacy, 0, "the old table is dropped once copied");
    // A second start copies nothing again.
    let again = SqliteStore::open(&path).await.unwrap();
    assert_eq!(again.audit_head().await.unwrap().unwrap().seq, 5);
}

/// The legacy rows are entries 1..=4 in their old order, with their detail text kept
/// byte for byte, chained; a new entry follows them.
async fn check_imported(store: &dyn Store) {
    let chain = store.audit_chain(0, 100).await.unwrap();
    assert_eq!(chain.len(), LEGACY_ROWS.len());
    assert_eq!(chain[0].prev_hash, GENESIS_HASH);
    for (i, (e, (_, at, actor, action, detail))) in chain.iter().zip(LEGACY_ROWS).enumerate() {
        assert_eq!(e.seq, i as i64 + 1);
        assert_eq!((e.body.at.as_str(), e.body.actor.as_str()), (*at, *actor));
        assert_eq!((e.body.action.as_str(), e.body.detail.as_str()), (*action, *detail));
    }
    let listed = store.list_audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[0].event.detail, json!({"reason": "unknown user", "n": [1, 2.5]}));
    let seq = store.append_audit(&access("after-upgrade", "X", &[])).await.unwrap();
    assert_eq!(seq, 5);
    assert_chain_intact(store, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_first_start_moves_the_old_audit_table_into_the_chain() {
    with_fresh_pg(|url| async move {
        let (c, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
        tokio::spawn(conn);
        c.batch_execute(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, checksum TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .unwrap();
        for (v, sql) in [
            (1i64, include_str!("../src/postgres/migrations/0001_init.sql")),
            (2, include_str!("../src/postgres/migrations/0002_deliveries.sql")),
        ] {
            c.batch_execute(sql).await.unwrap();
            let sum = govhub_crypto::sm3_hex(sql.as_bytes());
            c.execute("INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)", &[&v, &sum]).await.unwrap();
        }
        for (seq, at, actor, action, detail) in LEGACY_ROWS {
            c.execute(
                "INSERT INTO audit_events (seq, at, actor, action, target, outcome, detail, request_id)
                 OVERRIDING SYSTEM VALUE VALUES ($1, $2::text::timestamptz, $3, $4, 'x', 'succeeded', $5, 'r')",
                &[seq, at, actor, action, detail],
            )
            .await
            .unwrap();
        }
        // Two nodes start at once: the copy happens exactly once.
        let (a, b) = tokio::join!(PostgresStore::open(&url), PostgresStore::open(&url));
        let (a, b) = (a.unwrap(), b.unwrap());
        check_imported(&a).await;
        assert_eq!(b.audit_head().await.unwrap().unwrap().seq, 5);
        let legacy: Option<String> =
            c.query_one("SELECT to_regclass('audit_events_legacy')::text", &[]).await.unwrap().get(0);
        assert_eq!(legacy, None, "the old table is dropped once copied");
    })
    .await;
}

#[tokio::test]
async fn an_edited_audit_file_migration_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("govhub.db");
    drop(SqliteStore::open(&path).await.unwrap());
    let c = rusqlite::Connection::open(audit_path(&path)).unwrap();
    c.execute("UPDATE schema_migrations SET checksum = 'feed' WHERE version = 1", []).unwrap();
    drop(c);
    match SqliteStore::open(&path).await {
        Err(StoreError::Corrupt(msg)) => {
            assert!(msg.contains("sqlite audit file migration 0001 was changed after it was applied"), "{msg}")
        }
        Err(other) => panic!("expected Corrupt, got {other:?}"),
        Ok(_) => panic!("the store opened"),
    }
}
