//! # govhub-store
//!
//! The two implementations of govhub's storage port ([`govhub_core::store::Store`]):
//! [`sqlite::SqliteStore`], the embedded default, and [`postgres::PostgresStore`].
//! Each has its own migrations, applied when the store is opened; [`conformance`] is
//! the suite both must pass.

mod audit;
pub mod conformance;
pub mod conformance_audit;
pub mod conformance_licence;
pub mod conformance_webhooks;
pub mod ddl;
mod delivery;
mod migrate;
pub mod postgres;
mod records;
pub mod sqlite;

use govhub_core::store::{Store, StoreError};
use std::path::PathBuf;
use std::sync::Arc;

/// Where a database URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    /// `sqlite://PATH`, `sqlite:PATH` or a bare path select SQLite; `postgres://…` or
    /// `postgresql://…` select PostgreSQL. Anything else is refused.
    pub fn parse(url: &str) -> Result<Location, StoreError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_string()));
        }
        let path = if let Some(p) = url.strip_prefix("sqlite://") {
            p
        } else if let Some(p) = url.strip_prefix("sqlite:") {
            p
        } else if let Some((scheme, _)) = url.split_once("://") {
            // Name only the scheme: the rest may hold a password.
            return Err(StoreError::Backend(
                format!(
                    "unsupported database URL scheme \"{scheme}://\": use sqlite://PATH, a file path, \
                     postgres:// or postgresql://"
                )
                .into(),
            ));
        } else {
            url
        };
        if path.is_empty() {
            return Err(StoreError::Backend("the database URL names no SQLite file".into()));
        }
        Ok(Location::Sqlite(PathBuf::from(path)))
    }
}

/// Open the store a URL names, applying pending migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match Location::parse(url)? {
        Location::Sqlite(path) => Arc::new(sqlite::SqliteStore::open(path).await?),
        Location::Postgres(url) => Arc::new(postgres::PostgresStore::open(&url).await?),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls() {
        let sqlite = |p: &str| Location::Sqlite(PathBuf::from(p));
        assert_eq!(Location::parse("sqlite:///var/lib/govhub/db.sqlite").unwrap(), sqlite("/var/lib/govhub/db.sqlite"));
        assert_eq!(Location::parse("sqlite://data/govhub.db").unwrap(), sqlite("data/govhub.db"));
        assert_eq!(Location::parse("sqlite:govhub.db").unwrap(), sqlite("govhub.db"));
        assert_eq!(Location::parse("./govhub.db").unwrap(), sqlite("./govhub.db"));
        assert_eq!(Location::parse("postgres://u:p@h/db").unwrap(), Location::Postgres("postgres://u:p@h/db".into()));
        assert!(matches!(Location::parse("postgresql://h/db").unwrap(), Location::Postgres(_)));
        let e = Location::parse("mysql://root:secret@h/db").unwrap_err().to_string();
        assert!(e.contains("mysql://") && !e.contains("secret"), "{e}");
        assert!(Location::parse("sqlite://").is_err());
        assert!(Location::parse("").is_err());
    }
}
