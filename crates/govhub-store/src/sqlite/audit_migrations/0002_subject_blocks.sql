-- govhub SQLite audit file, migration 0002. Never edit once released.
-- Subjects are appended in entry order only: one table keyed (seq, digest), which the
-- chain covers and the verifier reads. Keyed by the digest (a random SM3 value), every
-- append wrote one random page of a large index, and copying those pages back from the
-- WAL stalled busy servers (docs/benchmarks.md, session 5).
CREATE TABLE audit_entry_subjects (
    seq    INTEGER NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (seq, digest)
) WITHOUT ROWID;
INSERT INTO audit_entry_subjects (seq, digest) SELECT seq, digest FROM audit_subjects ORDER BY seq, digest;

-- The lookup by digest ("who read my records"), derived from audit_entry_subjects one
-- closed block of entries at a time (first_seq..last_seq, 4,096 entries), each block's
-- rows written in one sorted pass after the block's last entry. Entries after the last
-- block are found by scanning audit_entry_subjects from there.
CREATE TABLE audit_subject_blocks (
    block     INTEGER PRIMARY KEY NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL
);
CREATE TABLE audit_subject_index (
    block  INTEGER NOT NULL,
    digest TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (block, digest, seq)
) WITHOUT ROWID;
-- Everything before this migration: block 1.
INSERT INTO audit_subject_blocks (block, first_seq, last_seq) SELECT 1, 1, MAX(seq) FROM audit_log HAVING MAX(seq) IS NOT NULL;
INSERT INTO audit_subject_index (block, digest, seq) SELECT 1, digest, seq FROM audit_subjects ORDER BY digest, seq;

DROP TABLE audit_subjects;
