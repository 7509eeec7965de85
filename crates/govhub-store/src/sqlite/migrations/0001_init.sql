-- govhub SQLite schema, migration 0001. Never edit once released: add a new file.
-- Timestamps are RFC 3339 UTC text with microseconds (2024-05-01T08:00:00.000000Z),
-- so they sort as text; dates are YYYY-MM-DD; booleans are 0/1.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE orgs (
    code       TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    parent     TEXT REFERENCES orgs (code),
    admin_code TEXT,
    uscc       TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL,
    org           TEXT REFERENCES orgs (code),
    subject_id    TEXT,
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);
CREATE INDEX users_org ON users (org);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- The catalog. table_stem (DatasetCode::table_stem) is unique so that codes differing
-- only in case or '-'/'_' cannot coexist. tags is the JSON array in the given order;
-- dataset_tags indexes them for exact search; search_text is the lower-cased code,
-- name, summary and tags for free-text search.
CREATE TABLE datasets (
    code              TEXT PRIMARY KEY NOT NULL,
    table_stem        TEXT NOT NULL UNIQUE,
    name              TEXT NOT NULL,
    provider          TEXT NOT NULL REFERENCES orgs (code),
    summary           TEXT NOT NULL,
    category          TEXT,
    sharing_class     TEXT NOT NULL,
    sharing_condition TEXT,
    open_class        TEXT NOT NULL,
    grade             TEXT NOT NULL,
    update_cycle      TEXT NOT NULL,
    publish_date      TEXT,
    tags              TEXT NOT NULL,
    search_text       TEXT NOT NULL,
    schema            TEXT NOT NULL,
    schema_version    INTEGER NOT NULL,
    table_name        TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX datasets_provider ON datasets (provider);

CREATE TABLE dataset_tags (
    dataset TEXT NOT NULL REFERENCES datasets (code) ON DELETE CASCADE,
    tag     TEXT NOT NULL,
    PRIMARY KEY (dataset, tag)
);
CREATE INDEX dataset_tags_tag ON dataset_tags (tag);

CREATE TABLE dataset_schema_versions (
    dataset    TEXT NOT NULL REFERENCES datasets (code) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    schema     TEXT NOT NULL,
    table_name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (dataset, version)
);

CREATE TABLE audit_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    actor_role   TEXT,
    actor_org    TEXT,
    on_behalf_of TEXT,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    detail       TEXT NOT NULL,
    request_id   TEXT
);
CREATE INDEX audit_events_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_target ON audit_events (target, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
