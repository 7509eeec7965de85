-- govhub PostgreSQL schema, migration 0004: sharing — apps and their tokens, access
-- requests, grants, the working-day calendar, and the commit order of deliveries (the
-- change feed). Never edit once released: add a new file.

CREATE TABLE apps (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL,
    org        TEXT NOT NULL REFERENCES orgs (code),
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX apps_org ON apps (org, id);

-- Only the SM3 digest of a token is kept; `hint` is its last four characters.
CREATE TABLE app_tokens (
    id         BIGSERIAL PRIMARY KEY,
    app_id     BIGINT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    hint       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX app_tokens_app ON app_tokens (app_id, id);

CREATE TABLE access_requests (
    id           BIGSERIAL PRIMARY KEY,
    app_id       BIGINT NOT NULL REFERENCES apps (id),
    app_org      TEXT NOT NULL,
    dataset      TEXT NOT NULL REFERENCES datasets (code) ON DELETE CASCADE,
    provider     TEXT NOT NULL,
    fields       TEXT NOT NULL,
    clear_fields TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    legal_basis  TEXT NOT NULL,
    valid_until  DATE NOT NULL,
    status       TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL,
    due_on       DATE NOT NULL,
    decided_by   TEXT,
    decided_at   TIMESTAMPTZ,
    reason       TEXT,
    grant_id     BIGINT
);
CREATE INDEX access_requests_provider ON access_requests (provider, status, id DESC);
CREATE INDEX access_requests_app_org ON access_requests (app_org, id DESC);

CREATE TABLE grants (
    id            BIGSERIAL PRIMARY KEY,
    request_id    BIGINT NOT NULL REFERENCES access_requests (id),
    app_id        BIGINT NOT NULL REFERENCES apps (id),
    app_org       TEXT NOT NULL,
    dataset       TEXT NOT NULL REFERENCES datasets (code) ON DELETE CASCADE,
    provider      TEXT NOT NULL,
    fields        TEXT NOT NULL,
    clear_fields  TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    valid_until   DATE NOT NULL,
    granted_by    TEXT NOT NULL,
    granted_at    TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ,
    revoked_by    TEXT,
    revoke_reason TEXT
);
CREATE INDEX grants_app_dataset ON grants (app_id, dataset, id DESC);
CREATE INDEX grants_provider ON grants (provider, id DESC);
CREATE INDEX grants_app_org ON grants (app_org, id DESC);

-- Exceptions to the Monday–Friday rule laid over the built-in announcements.
CREATE TABLE calendar_days (
    day  DATE PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL
);

-- The position of a committed delivery among its dataset's deliveries, set in the
-- delivery's own transaction: the change feed's order.
ALTER TABLE deliveries ADD COLUMN commit_seq BIGINT;
CREATE UNIQUE INDEX deliveries_commit_seq ON deliveries (dataset, commit_seq);
