//! Migration bookkeeping shared by both backends: checksums and the rule that decides
//! which migrations to apply, or whether to refuse to start.
//!
//! A migration is never edited once released: each applied migration's checksum is
//! stored in `schema_migrations`, and a store whose recorded checksum differs from the
//! file compiled into this binary — or which has a migration this binary does not
//! know — refuses to open.

use govhub_core::store::StoreError;
use sm3::{Digest, Sm3};

/// One migration file, embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub sql: &'static str,
}

impl Migration {
    /// SM3 digest of the file's bytes, hex.
    pub fn checksum(&self) -> String {
        hex::encode(Sm3::digest(self.sql.as_bytes()))
    }
}

/// A migration recorded as applied in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub version: i64,
    pub checksum: String,
}

/// Decide which of `known` (ordered by version) still need applying, given what the
/// database records. Refuses (`Corrupt`) when an applied migration was edited, is
/// unknown, or is newer than this binary.
pub fn pending<'a>(
    backend: &str,
    known: &'a [Migration],
    applied: &[Applied],
) -> Result<Vec<&'a Migration>, StoreError> {
    let latest = known.iter().map(|m| m.version).max().unwrap_or(0);
    for a in applied {
        match known.iter().find(|m| m.version == a.version) {
            Some(m) => {
                let expected = m.checksum();
                if expected != a.checksum {
                    return Err(StoreError::Corrupt(format!(
                        "{backend} migration {:04} was changed after it was applied: the database records checksum {} \
                         but this govhub's file has {expected}. Released migrations must never be edited; restore \
                         the original migration file (or restore the database from a backup)",
                        a.version, a.checksum
                    )));
                }
            }
            None if a.version > latest => {
                return Err(StoreError::Corrupt(format!(
                    "the {backend} database has migration {:04}, newer than this govhub knows (latest {latest:04}): \
                     it was upgraded by a newer govhub; run that version (or newer) instead",
                    a.version
                )));
            }
            None => {
                return Err(StoreError::Corrupt(format!(
                    "the {backend} database records migration {:04}, which this govhub does not have",
                    a.version
                )));
            }
        }
    }
    Ok(known.iter().filter(|m| !applied.iter().any(|a| a.version == m.version)).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const KNOWN: &[Migration] = &[
        Migration { version: 1, sql: "CREATE TABLE a (x INTEGER);" },
        Migration { version: 2, sql: "CREATE TABLE b (x INTEGER);" },
    ];

    fn applied(version: i64, checksum: String) -> Applied {
        Applied { version, checksum }
    }

    #[test]
    fn fresh_database_applies_everything() {
        let p = pending("sqlite", KNOWN, &[]).unwrap();
        assert_eq!(p.iter().map(|m| m.version).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn applied_migrations_are_skipped() {
        let p = pending("sqlite", KNOWN, &[applied(1, KNOWN[0].checksum())]).unwrap();
        assert_eq!(p.iter().map(|m| m.version).collect::<Vec<_>>(), vec![2]);
        let all: Vec<Applied> = KNOWN.iter().map(|m| applied(m.version, m.checksum())).collect();
        assert!(pending("sqlite", KNOWN, &all).unwrap().is_empty());
    }

    #[test]
    fn checksum_is_sm3_hex() {
        let c = KNOWN[0].checksum();
        assert_eq!(c.len(), 64);
        assert_ne!(c, KNOWN[1].checksum());
    }

    #[test]
    fn edited_migration_is_refused() {
        let e = pending("sqlite", KNOWN, &[applied(1, "00".into())]).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, StoreError::Corrupt(_)));
        assert!(msg.contains("migration 0001 was changed"), "{msg}");
    }

    #[test]
    fn newer_database_is_refused() {
        let e = pending("postgres", KNOWN, &[applied(3, "x".into())]).unwrap_err();
        assert!(e.to_string().contains("newer than this govhub knows"), "{e}");
    }
}
