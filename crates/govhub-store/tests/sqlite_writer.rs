//! How SQLite applies a delivery on its single writer: rows are written as they
//! arrive, sorted by key in runs; of a key delivered twice the later row is quarantined; the
//! writer is taken only when the first batch arrives; an abort or a failure keeps
//! nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use govhub_core::cells::Cell;
use govhub_core::delivery::DeliveryMode;
use govhub_core::model::RecordQuery;
use govhub_core::schema::TableSchema;
use govhub_core::store::{DeliveryBatch, DeliveryStore, NewDelivery, Store, StoreError};
use govhub_store::conformance::{at, dataset, deliver, org, valid_row};
use govhub_store::sqlite::SqliteStore;
use serde_json::json;
use std::time::Duration;

fn row(i: i64) -> Vec<Cell> {
    vec![Cell::Int(i), Cell::Text(format!("名{i}"))]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_write_in_key_order_and_keep_nothing_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("govhub.db")).await.unwrap();
    store.insert_org(&org("writer-org", None)).await.unwrap();
    let sc =
        TableSchema::parse(&json!({"fields": [{"name": "id", "type": "integer"}, {"name": "xm"}], "primaryKey": "id"}))
            .unwrap();
    let d = dataset("WRITER", "writer-org", sc.clone());
    store.create_dataset(&d).await.unwrap();
    let when = at("2025-01-01T00:00:00Z");
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

    // 150,000 keys in a scrambled order (more than one sorted run), then key 3 again.
    let n: i64 = 150_000;
    let order: Vec<i64> = (0..n).map(|i| (i * 7_919) % n + 1).collect();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let apply = store.apply_delivery(&d, id, DeliveryMode::Snapshot, when, rx);
    let feed = async {
        // Until the first batch arrives the writer is free: other writes go through.
        tokio::time::sleep(Duration::from_millis(100)).await;
        tokio::time::timeout(Duration::from_secs(5), store.insert_org(&org("writer-other", None)))
            .await
            .expect("the writer was held before the first batch")
            .unwrap();
        for chunk in order.chunks(10_000) {
            let rows = chunk.iter().map(|&i| valid_row(i as u64, row(i))).collect();
            tx.send(DeliveryBatch::Rows(rows)).await.unwrap();
        }
        // A key delivered twice, the second time in a later sorted run: the later row
        // is quarantined, the earlier one kept.
        tx.send(DeliveryBatch::Rows(vec![valid_row(n as u64 + 1, vec![Cell::Int(3), Cell::Text("后".into())])]))
            .await
            .unwrap();
        tx.send(DeliveryBatch::Commit).await.unwrap();
    };
    let (r, ()) = tokio::join!(apply, feed);
    let r = r.unwrap();
    assert_eq!((r.inserted, r.updated, r.unchanged, r.repeated, r.quarantined), (n as u64, 0, 0, 1, 1));
    assert_eq!(store.get_record(&d, &[Cell::Int(3)]).await.unwrap().unwrap().cells[1], Cell::Text("名3".into()));
    assert_eq!(store.get_record(&d, &[Cell::Int(n)]).await.unwrap().unwrap().cells[1], Cell::Text(format!("名{n}")));
    let history = store.record_history(&d, &[Cell::Int(3)]).await.unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    let q = store.list_quarantine(id, 0, 10).await.unwrap();
    assert_eq!((q.total, q.items[0].row), (1, n as u64 + 1));
    assert_eq!(q.items[0].raw["xm"], json!("后"));

    // The rows again in another order, key 3 changed: one update, the rest unchanged.
    let mut order = order;
    let three = order.iter().position(|&i| i == 3).unwrap();
    order.remove(three);
    order.push(3);
    let changed = |i: i64| if i == 3 { vec![Cell::Int(3), Cell::Text("改".into())] } else { row(i) };
    let mut again: Vec<DeliveryBatch> = order
        .rchunks(25_000)
        .map(|c| DeliveryBatch::Rows(c.iter().map(|&i| valid_row(i as u64, changed(i))).collect()))
        .collect();
    again.push(DeliveryBatch::Commit);
    let (_, r) = deliver(&store, &d, DeliveryMode::Incremental, at("2025-01-02T00:00:00Z"), again).await;
    let r = r.unwrap();
    assert_eq!((r.inserted, r.updated, r.unchanged), (0, 1, n as u64 - 1), "{r:?}");

    // Aborted (channel closed without a commit): nothing kept.
    let rows = |r: std::ops::RangeInclusive<i64>| DeliveryBatch::Rows(r.map(|i| valid_row(i as u64, row(i))).collect());
    let (_, r) =
        deliver(&store, &d, DeliveryMode::Snapshot, at("2025-01-03T00:00:00Z"), vec![rows(n + 1..=n + 10)]).await;
    assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
    // Failed (a row that does not fit the dataset): nothing kept.
    let bad = DeliveryBatch::Rows(vec![valid_row(1, vec![Cell::Int(n + 40)])]);
    let (_, r) = deliver(
        &store,
        &d,
        DeliveryMode::Snapshot,
        at("2025-01-04T00:00:00Z"),
        vec![rows(n + 20..=n + 30), bad, DeliveryBatch::Commit],
    )
    .await;
    assert!(r.is_err(), "{r:?}");
    let all = store.query_records(&d, &RecordQuery { limit: 1_000_000, ..RecordQuery::default() }).await.unwrap();
    assert_eq!(all.len(), n as usize);
    assert!(all.iter().all(|r| !r.deleted));
}

/// The writer never checkpoints (a commit would wait for it); the checkpointer thread
/// copies committed pages from the WAL into the database file while the store is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpointer_copies_committed_pages_into_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("govhub.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.insert_org(&org("checkpoint-org", None)).await.unwrap();
    let sc =
        TableSchema::parse(&json!({"fields": [{"name": "id", "type": "integer"}, {"name": "xm"}], "primaryKey": "id"}))
            .unwrap();
    let d = dataset("CHECKPOINT", "checkpoint-org", sc);
    store.create_dataset(&d).await.unwrap();
    let rows: Vec<DeliveryBatch> = (0..4)
        .map(|b| DeliveryBatch::Rows((b * 10_000..(b + 1) * 10_000).map(|i| valid_row(i as u64 + 1, row(i))).collect()))
        .chain([DeliveryBatch::Commit])
        .collect();
    let (_, r) = deliver(&store, &d, DeliveryMode::Snapshot, at("2025-01-01T00:00:00Z"), rows).await;
    assert_eq!(r.unwrap().inserted, 40_000);
    // 40,000 rows are well over a megabyte of pages; until checkpointed they are only in
    // the WAL and the database file keeps the size the migrations left.
    let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while size() < 1_000_000 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(size() >= 1_000_000, "the database file is {} bytes", size());
    assert_eq!(store.get_record(&d, &[Cell::Int(39_999)]).await.unwrap().unwrap().cells, row(39_999));
}
