//! SQLite deliveries are spooled to a scratch file next to the database while they
//! are received: the file exists only while a delivery is open, is removed on commit,
//! abort and failure alike, and files left by a killed process go at start-up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Utc;
use govhub_core::cells::Cell;
use govhub_core::delivery::DeliveryMode;
use govhub_core::model::{Org, OrgKind, RecordQuery};
use govhub_core::names::OrgCode;
use govhub_core::schema::TableSchema;
use govhub_core::store::{DeliveryBatch, DeliveryStore, NewDelivery, Store, StoreError};
use govhub_store::conformance::{at, dataset, deliver, valid_row};
use govhub_store::sqlite::SqliteStore;
use serde_json::json;
use std::path::Path;

fn spools(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".spool."))
        .collect();
    v.sort();
    v
}

fn row(i: i64) -> Vec<Cell> {
    vec![Cell::Int(i), Cell::Text(format!("名{i}"))]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_files_live_only_while_a_delivery_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("govhub.db")).await.unwrap();
    store
        .insert_org(&Org {
            code: OrgCode::parse("spool-org").unwrap(),
            name: "机构".into(),
            kind: OrgKind::City,
            parent: None,
            admin_code: None,
            uscc: None,
            created_at: at("2024-01-01T00:00:00Z"),
        })
        .await
        .unwrap();
    let sc =
        TableSchema::parse(&json!({"fields": [{"name": "id", "type": "integer"}, {"name": "xm"}], "primaryKey": "id"}))
            .unwrap();
    let d = dataset("SPOOL", "spool-org", sc.clone());
    store.create_dataset(&d).await.unwrap();
    let rows =
        |r: std::ops::RangeInclusive<i64>| DeliveryBatch::Rows(r.map(|i| valid_row(i as u64, &sc, row(i))).collect());
    let when = at("2025-01-01T00:00:00Z");

    // Open: the spool exists beside the database; committed: it is gone.
    let id = store
        .begin_delivery(&NewDelivery {
            dataset: d.code.clone(),
            schema_version: 1,
            mode: DeliveryMode::Snapshot,
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
    let apply = store.apply_delivery(&d, id, DeliveryMode::Snapshot, when, rx);
    let feed = async {
        tx.send(rows(1..=10)).await.unwrap();
        // A key delivered twice: the last one wins, as applied in arrival order.
        tx.send(DeliveryBatch::Rows(vec![valid_row(11, &sc, vec![Cell::Int(3), Cell::Text("后".into())])]))
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let open = spools(dir.path());
        assert_eq!(open.len(), 1, "{open:?}");
        assert!(open[0].starts_with(&format!("govhub.db.spool.{id}.{}.", std::process::id())), "{open:?}");
        tx.send(DeliveryBatch::Commit).await.unwrap();
    };
    let (r, ()) = tokio::join!(apply, feed);
    let r = r.unwrap();
    assert_eq!((r.inserted, r.updated), (10, 1));
    assert_eq!(store.get_record(&d, &[Cell::Int(3)]).await.unwrap().unwrap().cells[1], Cell::Text("后".into()));
    assert_eq!(spools(dir.path()), Vec::<String>::new());

    // Aborted (channel closed without a commit): gone, nothing kept.
    let (_, r) = deliver(&store, &d, DeliveryMode::Snapshot, at("2025-01-02T00:00:00Z"), vec![rows(20..=30)]).await;
    assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
    assert_eq!(spools(dir.path()), Vec::<String>::new());
    // Failed (a row that does not fit the dataset): gone, nothing kept.
    let bad = DeliveryBatch::Rows(vec![valid_row(1, &sc, vec![Cell::Int(40)])]);
    let (_, r) =
        deliver(&store, &d, DeliveryMode::Snapshot, at("2025-01-03T00:00:00Z"), vec![rows(40..=41), bad]).await;
    assert!(r.is_err(), "{r:?}");
    assert_eq!(spools(dir.path()), Vec::<String>::new());
    let all = store.query_records(&d, &RecordQuery::default()).await.unwrap();
    assert_eq!(all.len(), 10);

    // Start-up: spools of other (killed) processes are removed, this process's stay.
    let own = format!("govhub.db.spool.99.{}.0", std::process::id());
    for name in ["govhub.db.spool.98.4000000001.0", "govhub.db.spool.98.4000000001.0-journal", own.as_str()] {
        std::fs::write(dir.path().join(name), b"x").unwrap();
    }
    std::fs::write(dir.path().join("other.db.spool.98.4000000001.0"), b"x").unwrap();
    store.fail_interrupted_deliveries(Utc::now()).await.unwrap();
    assert_eq!(spools(dir.path()), vec![own, "other.db.spool.98.4000000001.0".to_string()]);
}
