-- E-licences (docs/licences.md): licence types, organisation seal keys, licences.

CREATE TABLE licence_types (
    code        TEXT PRIMARY KEY NOT NULL,   -- authority USCC + 3-digit sequence
    name        TEXT NOT NULL,
    authority   TEXT NOT NULL REFERENCES orgs(code),
    holder_kind TEXT NOT NULL CHECK (holder_kind IN ('person', 'organisation')),
    schema      TEXT NOT NULL,               -- Table Schema JSON
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE org_keys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    org           TEXT NOT NULL REFERENCES orgs(code),
    serial        TEXT NOT NULL UNIQUE,
    certificate   BLOB NOT NULL,             -- X.509 DER
    seal          BLOB NOT NULL,             -- GB/T 38540 SES_Seal DER
    encrypted_key TEXT NOT NULL,             -- ENCRYPTED PRIVATE KEY PEM (PKCS#8 PBES2)
    created_at    TEXT NOT NULL,
    retired_at    TEXT,
    revoked_at    TEXT,
    revoke_reason TEXT
);
CREATE INDEX org_keys_org ON org_keys (org, id);

-- One row; licence sequence numbers (licence numbers and status-list positions).
CREATE TABLE licence_counter (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO licence_counter (id, value) VALUES (1, 0);

CREATE TABLE licences (
    id            TEXT PRIMARY KEY NOT NULL,  -- GB/T 36903 identifier
    seq           INTEGER NOT NULL UNIQUE,
    type_code     TEXT NOT NULL REFERENCES licence_types(code),
    type_name     TEXT NOT NULL,
    holder_code   TEXT NOT NULL,
    holder_name   TEXT NOT NULL,
    holder_kind   TEXT NOT NULL,
    issuer        TEXT NOT NULL REFERENCES orgs(code),
    issuer_name   TEXT NOT NULL,
    valid_from    TEXT NOT NULL,
    valid_until   TEXT NOT NULL,
    fields        TEXT NOT NULL,
    issued_at     TEXT NOT NULL,
    issued_by     TEXT NOT NULL,
    key_id        INTEGER NOT NULL REFERENCES org_keys(id),
    status        TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
    status_reason TEXT,
    status_at     TEXT,
    status_by     TEXT,
    document      BLOB NOT NULL,              -- the signed bytes
    signature     BLOB NOT NULL               -- SES_Signature DER
);
CREATE INDEX licences_holder ON licences (holder_code, issued_at);
CREATE INDEX licences_not_active ON licences (seq) WHERE status <> 'active';
