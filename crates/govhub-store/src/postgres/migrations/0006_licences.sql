-- E-licences (docs/licences.md): licence types, organisation seal keys, licences.

CREATE TABLE licence_types (
    code        TEXT PRIMARY KEY,            -- authority USCC + 3-digit sequence
    name        TEXT NOT NULL,
    authority   TEXT NOT NULL REFERENCES orgs(code),
    holder_kind TEXT NOT NULL CHECK (holder_kind IN ('person', 'organisation')),
    schema      TEXT NOT NULL,               -- Table Schema JSON
    created_by  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE org_keys (
    id            BIGSERIAL PRIMARY KEY,
    org           TEXT NOT NULL REFERENCES orgs(code),
    serial        TEXT NOT NULL UNIQUE,
    certificate   BYTEA NOT NULL,            -- X.509 DER
    seal          BYTEA NOT NULL,            -- GB/T 38540 SES_Seal DER
    encrypted_key TEXT NOT NULL,             -- ENCRYPTED PRIVATE KEY PEM (PKCS#8 PBES2)
    created_at    TIMESTAMPTZ NOT NULL,
    retired_at    TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ,
    revoke_reason TEXT
);
CREATE INDEX org_keys_org ON org_keys (org, id);

-- Licence sequence numbers (licence numbers and status-list positions).
CREATE SEQUENCE licence_seq MINVALUE 1 START 1;

CREATE TABLE licences (
    id            TEXT PRIMARY KEY,           -- GB/T 36903 identifier
    seq           BIGINT NOT NULL UNIQUE,
    type_code     TEXT NOT NULL REFERENCES licence_types(code),
    type_name     TEXT NOT NULL,
    holder_code   TEXT NOT NULL,
    holder_name   TEXT NOT NULL,
    holder_kind   TEXT NOT NULL,
    issuer        TEXT NOT NULL REFERENCES orgs(code),
    issuer_name   TEXT NOT NULL,
    valid_from    DATE NOT NULL,
    valid_until   DATE NOT NULL,
    fields        TEXT NOT NULL,
    issued_at     TIMESTAMPTZ NOT NULL,
    issued_by     TEXT NOT NULL,
    key_id        BIGINT NOT NULL REFERENCES org_keys(id),
    status        TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
    status_reason TEXT,
    status_at     TIMESTAMPTZ,
    status_by     TEXT,
    document      BYTEA NOT NULL,             -- the signed bytes
    signature     BYTEA NOT NULL              -- SES_Signature DER
);
CREATE INDEX licences_holder ON licences (holder_code, issued_at);
CREATE INDEX licences_not_active ON licences (seq) WHERE status <> 'active';
