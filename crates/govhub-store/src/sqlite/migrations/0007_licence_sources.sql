-- Batch issue re-run safety (docs/licences.md "Batch issue"): the SM3 digest of each
-- batch record's content (issuer, type, holder, dates, fields), so a re-run of the same
-- file skips the records already issued instead of issuing them again.
CREATE TABLE licence_sources (
    digest     TEXT PRIMARY KEY NOT NULL,
    licence_id TEXT NOT NULL REFERENCES licences(id)
);
