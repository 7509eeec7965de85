-- govhub PostgreSQL schema, migration 0003. Never edit once released: add a new file.
-- The audit log becomes a hash chain with signed checkpoints (docs/audit.md): entry seq
-- has prev_hash = hash of entry seq-1 (64 zeros for seq 1) and hash = SM3 over the
-- canonical encoding of (seq, prev_hash, every column and the entry's subject digests).
-- Seq numbers are consecutive from 1, assigned by the writer while it holds the audit
-- advisory lock, so several govhub nodes can append to one database.
-- The old table is kept under a new name until govhub has copied its rows into the
-- chain (at the first start after this migration, in seq order, in one transaction
-- that then drops it).

ALTER TABLE audit_events RENAME TO audit_events_legacy;

CREATE TABLE audit_log (
    seq          BIGINT PRIMARY KEY,
    prev_hash    TEXT COLLATE "C" NOT NULL,
    hash         TEXT COLLATE "C" NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    actor        TEXT COLLATE "C" NOT NULL,
    actor_role   TEXT,
    actor_org    TEXT,
    on_behalf_of TEXT,
    action       TEXT COLLATE "C" NOT NULL,
    target       TEXT COLLATE "C" NOT NULL,
    outcome      TEXT NOT NULL,
    detail       TEXT NOT NULL,
    request_id   TEXT,
    app          TEXT,
    purpose      TEXT,
    row_count    BIGINT
);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_target ON audit_log (target, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);

-- Whose records an entry returned: salted SM3 digests of ID numbers / USCCs (salt:
-- meta.audit.subject_salt), never the identifiers themselves. Covered by the hash.
CREATE TABLE audit_subjects (
    digest TEXT COLLATE "C" NOT NULL,
    seq    BIGINT NOT NULL,
    PRIMARY KEY (digest, seq)
);
CREATE INDEX audit_subjects_seq ON audit_subjects (seq, digest);

-- Signed checkpoints: the platform SM2 key's DER signature over
-- "govhub-audit-checkpoint-v1\nseq=<seq>\nhead=<head_hash>\nat=<at>\n".
CREATE TABLE audit_checkpoints (
    seq             BIGINT PRIMARY KEY,
    head_hash       TEXT COLLATE "C" NOT NULL,
    at              TIMESTAMPTZ NOT NULL,
    signature       BYTEA NOT NULL,
    key_fingerprint TEXT NOT NULL
);
