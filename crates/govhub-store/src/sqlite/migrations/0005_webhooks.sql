-- govhub SQLite schema, migration 0005: webhook push of the change feed — an app's
-- subscriptions to a dataset's changes, their position in the feed, retry state and
-- lease, and a bounded log of delivery attempts. Never edit once released: add a new file.

CREATE TABLE webhooks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id          INTEGER NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    dataset         TEXT NOT NULL REFERENCES datasets (code) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    -- JSON list of field names, NULL: all granted fields.
    fields          TEXT,
    created_by      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    -- The last change delivered (commit_seq, key as a JSON list of texts, version);
    -- NULL: the start of the feed.
    pos_seq         INTEGER,
    pos_key         TEXT,
    pos_version     INTEGER,
    failures        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_attempt_at TEXT,
    last_success_at TEXT,
    last_error      TEXT,
    leased_until    TEXT,
    lease_owner     TEXT
);
CREATE INDEX webhooks_app ON webhooks (app_id, id);
CREATE INDEX webhooks_due ON webhooks (next_attempt_at);

CREATE TABLE webhook_attempts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id      INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    at              TEXT NOT NULL,
    delivery        TEXT NOT NULL,
    changes         INTEGER NOT NULL,
    status          INTEGER,
    error           TEXT,
    next_attempt_at TEXT,
    duration_ms     INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_webhook ON webhook_attempts (webhook_id, id);
