-- govhub SQLite schema, migration 0002: deliveries, quarantined rows, the sharing
-- responsibility list. Never edit once released: add a new file.
-- (Each dataset's typed table gets its history table `<table>_hist` from the store.)

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset          TEXT NOT NULL REFERENCES datasets (code) ON DELETE CASCADE,
    schema_version   INTEGER NOT NULL,
    mode             TEXT NOT NULL,
    format           TEXT NOT NULL,
    encoding         TEXT NOT NULL,
    status           TEXT NOT NULL,
    submitted_by     TEXT NOT NULL,
    org              TEXT NOT NULL,
    file_name        TEXT,
    rows_read        INTEGER NOT NULL DEFAULT 0,
    rows_accepted    INTEGER NOT NULL DEFAULT 0,
    rows_inserted    INTEGER NOT NULL DEFAULT 0,
    rows_updated     INTEGER NOT NULL DEFAULT 0,
    rows_unchanged   INTEGER NOT NULL DEFAULT 0,
    rows_quarantined INTEGER NOT NULL DEFAULT 0,
    warnings         INTEGER NOT NULL DEFAULT 0,
    rows_deleted     INTEGER NOT NULL DEFAULT 0,
    duration_ms      INTEGER NOT NULL DEFAULT 0,
    started_at       TEXT NOT NULL,
    finished_at      TEXT,
    error_code       TEXT,
    error_message    TEXT,
    error_message_zh TEXT
);
-- Listing per dataset, newest first; finding running deliveries at start-up.
CREATE INDEX deliveries_dataset ON deliveries (dataset, id DESC);
CREATE INDEX deliveries_status ON deliveries (status, id DESC);

-- One row per quarantined row of a delivery: the row as delivered (JSON object, label
-- → text, sensitive values masked) and its problems (JSON array).
CREATE TABLE delivery_quarantine (
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    row_no      INTEGER NOT NULL,
    raw         TEXT NOT NULL,
    problems    TEXT NOT NULL
);
CREATE INDEX delivery_quarantine_row ON delivery_quarantine (delivery_id, row_no);

-- 共享责任清单: which organisation owes which dataset, how often.
CREATE TABLE responsibilities (
    dataset    TEXT PRIMARY KEY NOT NULL REFERENCES datasets (code) ON DELETE CASCADE,
    org        TEXT NOT NULL REFERENCES orgs (code),
    cycle      TEXT NOT NULL,
    note       TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX responsibilities_org ON responsibilities (org, dataset);
