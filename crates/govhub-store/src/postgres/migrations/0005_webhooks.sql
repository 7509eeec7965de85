-- govhub PostgreSQL schema, migration 0005: webhook push of the change feed — an app's
-- subscriptions to a dataset's changes, their position in the feed, retry state and
-- lease, and a bounded log of delivery attempts. Never edit once released: add a new file.

CREATE TABLE webhooks (
    id              BIGSERIAL PRIMARY KEY,
    app_id          BIGINT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    dataset         TEXT NOT NULL REFERENCES datasets (code) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    -- JSON list of field names, NULL: all granted fields.
    fields          TEXT,
    created_by      TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    -- The last change delivered (commit_seq, key as a JSON list of texts, version);
    -- NULL: the start of the feed.
    pos_seq         BIGINT,
    pos_key         TEXT,
    pos_version     BIGINT,
    failures        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_attempt_at TIMESTAMPTZ,
    last_success_at TIMESTAMPTZ,
    last_error      TEXT,
    leased_until    TIMESTAMPTZ,
    lease_owner     TEXT
);
CREATE INDEX webhooks_app ON webhooks (app_id, id);
CREATE INDEX webhooks_due ON webhooks (next_attempt_at);

CREATE TABLE webhook_attempts (
    id              BIGSERIAL PRIMARY KEY,
    webhook_id      BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    at              TIMESTAMPTZ NOT NULL,
    delivery        TEXT NOT NULL,
    changes         BIGINT NOT NULL,
    status          INTEGER,
    error           TEXT,
    next_attempt_at TIMESTAMPTZ,
    duration_ms     BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_webhook ON webhook_attempts (webhook_id, id);
