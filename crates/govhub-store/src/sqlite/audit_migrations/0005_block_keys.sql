-- govhub SQLite audit file, migration 0005. Never edit once released.
-- The audit list's filters by actor and by target move from an index entry per entry
-- (two more B-tree inserts and their pages in every append transaction; ≈ 30 % of the
-- bytes an append wrote, docs/benchmarks.md, consumer API, session 9) to a list of the
-- actors and targets each closed block of entries holds, written with the block's last
-- subject slice. A filtered list scans the entries after the last block, then only the
-- blocks that hold the actor or target, newest first.
CREATE TABLE audit_block_keys (
    kind  TEXT NOT NULL CHECK (kind IN ('actor', 'target')),
    value TEXT NOT NULL,
    block INTEGER NOT NULL,
    PRIMARY KEY (kind, value, block)
) WITHOUT ROWID;
INSERT OR IGNORE INTO audit_block_keys (kind, value, block)
    SELECT 'actor', l.actor, b.block
      FROM audit_subject_blocks b JOIN audit_log l ON l.seq BETWEEN b.first_seq AND b.last_seq
    UNION
    SELECT 'target', l.target, b.block
      FROM audit_subject_blocks b JOIN audit_log l ON l.seq BETWEEN b.first_seq AND b.last_seq;
DROP INDEX IF EXISTS audit_log_actor;
DROP INDEX IF EXISTS audit_log_target;
