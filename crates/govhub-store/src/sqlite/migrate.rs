//! Applying the SQLite migrations, in one `BEGIN IMMEDIATE` transaction so that two
//! processes opening the same file do not race.

use crate::migrate::{pending, Applied, Migration};
use crate::records::StoreResult;
use crate::sqlite::{db, now_text};
use rusqlite::{params, Connection, TransactionBehavior};

pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, sql: include_str!("migrations/0001_init.sql") },
    Migration { version: 2, sql: include_str!("migrations/0002_deliveries.sql") },
    Migration { version: 3, sql: include_str!("migrations/0003_audit_chain.sql") },
    Migration { version: 4, sql: include_str!("migrations/0004_sharing.sql") },
    Migration { version: 5, sql: include_str!("migrations/0005_webhooks.sql") },
    Migration { version: 6, sql: include_str!("migrations/0006_licences.sql") },
    Migration { version: 7, sql: include_str!("migrations/0007_licence_sources.sql") },
    Migration { version: 8, sql: include_str!("migrations/0008_sharing_generation.sql") },
];

pub fn run(conn: &mut Connection) -> StoreResult<()> {
    run_with(conn, "sqlite", MIGRATIONS)
}

/// Apply `migrations` (named `label` in messages) to the database of `conn`: the main
/// file's, or the audit file's own list.
pub fn run_with(conn: &mut Connection, label: &str, migrations: &[Migration]) -> StoreResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY NOT NULL,
             checksum   TEXT NOT NULL,
             applied_at TEXT NOT NULL
         )",
    )
    .map_err(db)?;
    let applied = {
        let mut stmt = tx.prepare("SELECT version, checksum FROM schema_migrations ORDER BY version").map_err(db)?;
        let rows = stmt
            .query_map([], |r| Ok(Applied { version: r.get(0)?, checksum: r.get(1)? }))
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        rows
    };
    for m in pending(label, migrations, &applied)? {
        tracing::info!(version = m.version, database = label, "applying SQLite migration");
        tx.execute_batch(m.sql).map_err(db)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, checksum, applied_at) VALUES (?1, ?2, ?3)",
            params![m.version, m.checksum(), now_text()],
        )
        .map_err(db)?;
    }
    tx.commit().map_err(db)
}
