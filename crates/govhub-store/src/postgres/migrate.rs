//! Applying the PostgreSQL migrations inside one transaction holding an advisory lock,
//! so that two nodes starting together apply them once.

use crate::migrate::{pending, Applied, Migration};
use crate::postgres::{db, get, pool_err};
use crate::records::StoreResult;
use deadpool_postgres::Pool;

pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, sql: include_str!("migrations/0001_init.sql") },
    Migration { version: 2, sql: include_str!("migrations/0002_deliveries.sql") },
    Migration { version: 3, sql: include_str!("migrations/0003_audit_chain.sql") },
    Migration { version: 4, sql: include_str!("migrations/0004_sharing.sql") },
    Migration { version: 5, sql: include_str!("migrations/0005_webhooks.sql") },
    Migration { version: 6, sql: include_str!("migrations/0006_licences.sql") },
    Migration { version: 7, sql: include_str!("migrations/0007_licence_sources.sql") },
    Migration { version: 8, sql: include_str!("migrations/0008_sharing_generation.sql") },
    Migration { version: 9, sql: include_str!("migrations/0009_drop_audit_action_index.sql") },
];

/// Advisory lock key held while migrating ("govhub" in ASCII).
const LOCK_KEY: i64 = 0x676f_7668_7562;

pub async fn run(pool: &Pool) -> StoreResult<()> {
    let mut client = pool.get().await.map_err(pool_err)?;
    let tx = client.transaction().await.map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await.map_err(db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    BIGINT PRIMARY KEY,
             checksum   TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(db)?;
    let applied = tx
        .query("SELECT version, checksum FROM schema_migrations ORDER BY version", &[])
        .await
        .map_err(db)?
        .iter()
        .map(|r| Ok(Applied { version: get(r, 0)?, checksum: get(r, 1)? }))
        .collect::<StoreResult<Vec<_>>>()?;
    for m in pending("postgres", MIGRATIONS, &applied)? {
        tracing::info!(version = m.version, "applying PostgreSQL migration");
        tx.batch_execute(m.sql).await.map_err(db)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, checksum, applied_at) VALUES ($1, $2, now())",
            &[&m.version, &m.checksum()],
        )
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)
}
