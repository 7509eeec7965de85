//! The conformance suite against SQLite (always) and PostgreSQL (when
//! `GOVHUB_TEST_POSTGRES_URL` is set: a fresh database is created for the run and
//! dropped after it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use govhub_core::store::{Backend, Store, StoreError};
use govhub_store::conformance;
use rand::Rng;
use std::sync::Arc;
use tokio_postgres::NoTls;

const PG_URL_VAR: &str = "GOVHUB_TEST_POSTGRES_URL";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_conformance() {
    let dir = tempfile::tempdir().unwrap();
    // The parent directory does not exist yet: opening creates it.
    let url = format!("sqlite://{}", dir.path().join("nested/dir/govhub.db").display());
    let store = govhub_store::open(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    conformance::run_all(store).await;
}

/// The URL of another database on the same server.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[scheme_end..].find('/').map(|i| scheme_end + i).unwrap_or(base.len());
    format!("{}/{db}{query}", &base[..authority_end])
}

/// A fresh PostgreSQL database for one test, dropped by [`PgDatabase::drop_now`].
struct PgDatabase {
    admin: tokio_postgres::Client,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create(admin_url: &str) -> PgDatabase {
        let (admin, conn) =
            tokio_postgres::connect(admin_url, NoTls).await.expect("connect to GOVHUB_TEST_POSTGRES_URL");
        tokio::spawn(conn);
        let name = format!("govhub_conf_{:016x}", rand::thread_rng().gen::<u64>());
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        let url = with_database(admin_url, &name);
        PgDatabase { admin, name, url }
    }

    async fn drop_now(self) {
        self.admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await.unwrap();
    }
}

/// Run `f` against a fresh database; the database is dropped even when `f` fails.
async fn with_fresh_pg<F, Fut>(f: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Ok(admin_url) = std::env::var(PG_URL_VAR) else {
        eprintln!("\n*** PostgreSQL conformance SKIPPED: set {PG_URL_VAR} ***\n");
        return;
    };
    let db = PgDatabase::create(&admin_url).await;
    let outcome = tokio::spawn(f(db.url.clone())).await;
    db.drop_now().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_conformance() {
    with_fresh_pg(|url| async move {
        let store = govhub_store::open(&url).await.unwrap();
        assert_eq!(store.backend(), Backend::Postgres);
        conformance::run_all(store).await;
    })
    .await;
}

async fn applied_at(c: &tokio_postgres::Client) -> String {
    c.query_one("SELECT applied_at::text FROM schema_migrations WHERE version = 1", &[]).await.unwrap().get(0)
}

async fn pg(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrations_run_once_and_are_checked() {
    with_fresh_pg(|url| async move {
        // Two nodes starting together: the advisory lock makes one apply, one skip.
        let (a, b) = tokio::join!(govhub_store::open(&url), govhub_store::open(&url));
        let (a, b): (Arc<dyn Store>, Arc<dyn Store>) = (a.unwrap(), b.unwrap());
        assert_eq!(a.migrations().await.unwrap(), vec![1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(b.migrations().await.unwrap(), vec![1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let client = pg(&url).await;
        let before = applied_at(&client).await;
        drop((a, b));
        let again = govhub_store::open(&url).await.unwrap();
        again.ping().await.unwrap();
        assert_eq!(applied_at(&client).await, before, "reopening re-ran a migration");
        drop(again);

        client.execute("UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1", &[]).await.unwrap();
        match govhub_store::open(&url).await {
            Err(StoreError::Corrupt(msg)) => {
                assert!(msg.contains("migration 0001 was changed after it was applied"), "{msg}");
                assert!(msg.contains("tampered"), "{msg}");
            }
            Err(other) => panic!("expected Corrupt, got {other:?}"),
            Ok(_) => panic!("a tampered checksum must stop the store from opening"),
        }
    })
    .await;
}

#[test]
fn database_urls_are_rewritten() {
    assert_eq!(with_database("postgres://u@h:1/postgres", "x"), "postgres://u@h:1/x");
    assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
    assert_eq!(with_database("postgresql://h/db?sslmode=disable", "x"), "postgresql://h/x?sslmode=disable");
}

/// A table's constraints (`contype definition`, sorted) and its number of indexes.
async fn table_shape(client: &tokio_postgres::Client, table: &str) -> (Vec<String>, i64) {
    let cons: Vec<String> = client
        .query(
            "SELECT contype::text || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
             WHERE conrelid = $1::text::regclass ORDER BY 1",
            &[&format!("\"{table}\"")],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let idx: i64 =
        client.query_one("SELECT count(*) FROM pg_indexes WHERE tablename = $1", &[&table]).await.unwrap().get(0);
    (cons, idx)
}

/// A first load into an empty PostgreSQL table goes into a new table that replaces
/// it: the replacement has the same key, unique constraint and indexes, and nothing
/// of the load table is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_first_load_keeps_keys_and_indexes() {
    use govhub_core::cells::Cell;
    use govhub_core::delivery::DeliveryMode;
    use govhub_core::schema::TableSchema;
    use govhub_core::store::{DeliveryBatch, DeliveryStore};
    use govhub_store::conformance::{at, dataset, deliver, valid_row};
    with_fresh_pg(|url| async move {
        let store = govhub_store::postgres::PostgresStore::open(&url).await.unwrap();
        store.insert_org(&conformance::org("swap-org", None)).await.unwrap();
        let sc = TableSchema::parse(&serde_json::json!({
            "fields": [
                {"name": "id", "type": "integer"},
                {"name": "code", "constraints": {"unique": true}},
                {"name": "xm"}
            ],
            "primaryKey": "id"
        }))
        .unwrap();
        let d = dataset("SWAP", "swap-org", sc.clone());
        store.create_dataset(&d).await.unwrap();
        let client = pg(&url).await;
        let before = table_shape(&client, &d.table_name).await;
        assert_eq!(before.0, ["p PRIMARY KEY (id)", "u UNIQUE (code)"]);

        let rows = |v: Vec<(i64, &str)>| {
            DeliveryBatch::Rows(
                v.into_iter()
                    .map(|(i, c)| valid_row(i as u64, vec![Cell::Int(i), Cell::Text(c.into()), Cell::Text("名".into())]))
                    .collect(),
            )
        };
        let (_, r) = deliver(
            &store,
            &d,
            DeliveryMode::Snapshot,
            at("2025-01-01T00:00:00Z"),
            vec![rows(vec![(2, "b"), (1, "a"), (3, "c")]), DeliveryBatch::Commit],
        )
        .await;
        assert_eq!(r.unwrap().inserted, 3);
        let after = table_shape(&client, &d.table_name).await;
        assert_eq!(after.0, before.0);
        assert_eq!(after.1, before.1 + 1, "the key and unique indexes, and the change index");
        let left: i64 =
            client.query_one("SELECT count(*) FROM pg_class WHERE relname LIKE 'govhub_load_%'", &[]).await.unwrap().get(0);
        assert_eq!(left, 0);
        let dup = client
            .execute(
                &format!("INSERT INTO \"{}\" (id, code, xm, \"_version\", \"_hash\", \"_updated_at\") VALUES (1, 'z', 'x', 1, '0', now())", d.table_name),
                &[],
            )
            .await;
        assert!(dup.is_err(), "the primary key is enforced after the swap");
        // Later deliveries upsert into the swapped table.
        let (_, r) = deliver(
            &store,
            &d,
            DeliveryMode::Incremental,
            at("2025-01-02T00:00:00Z"),
            vec![rows(vec![(1, "a2"), (4, "d")]), DeliveryBatch::Commit],
        )
        .await;
        let r = r.unwrap();
        assert_eq!((r.inserted, r.updated), (1, 1));
        assert_eq!(store.get_record(&d, &[Cell::Int(1)]).await.unwrap().unwrap().cells[1], Cell::Text("a2".into()));

        // An operator's view over an empty table: the first load goes into the table
        // itself (the swap would drop the view), and the view sees the rows.
        let d2 = dataset("SWAP2", "swap-org", sc.clone());
        store.create_dataset(&d2).await.unwrap();
        client.batch_execute(&format!("CREATE VIEW swap_view AS SELECT id, code FROM \"{}\"", d2.table_name)).await.unwrap();
        let (_, r) = deliver(
            &store,
            &d2,
            DeliveryMode::Incremental,
            at("2025-01-03T00:00:00Z"),
            vec![rows(vec![(7, "g"), (8, "h")]), DeliveryBatch::Commit],
        )
        .await;
        assert_eq!(r.unwrap().inserted, 2);
        let seen: i64 = client.query_one("SELECT count(*) FROM swap_view", &[]).await.unwrap().get(0);
        assert_eq!(seen, 2);
    })
    .await;
}
