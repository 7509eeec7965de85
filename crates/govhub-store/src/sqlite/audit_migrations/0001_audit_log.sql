-- govhub SQLite audit file (<name>.audit.db), migration 0001. Never edit once released.
-- A hash chain: entry seq has prev_hash = hash of entry seq-1 (64 zeros for seq 1) and
-- hash = SM3 over the canonical encoding of (seq, prev_hash, every column below and the
-- entry's subject digests); docs/audit.md specifies it. Seq numbers are consecutive from
-- 1 and assigned by the writer, which reads the head inside its transaction.
-- Timestamps are RFC 3339 UTC text with exactly six fractional digits.

CREATE TABLE audit_log (
    seq          INTEGER PRIMARY KEY NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    actor_role   TEXT,
    actor_org    TEXT,
    on_behalf_of TEXT,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    detail       TEXT NOT NULL,
    request_id   TEXT,
    app          TEXT,
    purpose      TEXT,
    row_count    INTEGER
);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_target ON audit_log (target, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);

-- Whose records an entry returned: salted SM3 digests of ID numbers / USCCs (the salt
-- is the installation secret meta.audit.subject_salt in the main database), never the
-- identifiers themselves. Covered by the entry's hash.
CREATE TABLE audit_subjects (
    digest TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (digest, seq)
) WITHOUT ROWID;
CREATE INDEX audit_subjects_seq ON audit_subjects (seq, digest);

-- Signed checkpoints: the platform SM2 key's DER signature over
-- "govhub-audit-checkpoint-v1\nseq=<seq>\nhead=<head_hash>\nat=<at>\n".
CREATE TABLE audit_checkpoints (
    seq             INTEGER PRIMARY KEY NOT NULL,
    head_hash       TEXT NOT NULL,
    at              TEXT NOT NULL,
    signature       BLOB NOT NULL,
    key_fingerprint TEXT NOT NULL
);

CREATE TABLE audit_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
