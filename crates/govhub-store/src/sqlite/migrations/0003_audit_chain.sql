-- govhub SQLite schema, migration 0003. Never edit once released: add a new file.
-- The audit log moves to its own file beside this one (<name>.audit.db, see
-- docs/audit.md): a hash chain with signed checkpoints, written by its own connection so
-- that audit entries never wait behind a delivery holding this file's writer.
-- The old table is kept under a new name until govhub has copied its rows into the
-- chain (at the first start after this migration, in seq order); govhub then drops it.
-- Renaming it here also makes an older govhub refuse this database instead of writing
-- to a table nobody reads.
ALTER TABLE audit_events RENAME TO audit_events_legacy;
