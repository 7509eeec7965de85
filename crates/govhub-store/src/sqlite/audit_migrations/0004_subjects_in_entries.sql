-- govhub SQLite audit file, migration 0004. Never edit once released.
-- An entry's subjects move into its own row (a JSON array of the digests, in order;
-- NULL for none). As a table of their own (seq, digest), keyed like an index, each
-- append rewrote three or four of its pages, because SQLite balances an index's full
-- last page with its neighbours instead of starting a new one; with the row, an append
-- writes the entry and nothing else for its subjects (docs/benchmarks.md, consumer API,
-- session 7). The lookup by digest (audit_subject_index, by block) stays as it was.
ALTER TABLE audit_log ADD COLUMN subjects TEXT;
UPDATE audit_log
   SET subjects = (SELECT json_group_array(digest ORDER BY digest) FROM audit_entry_subjects s WHERE s.seq = audit_log.seq)
 WHERE seq IN (SELECT seq FROM audit_entry_subjects);
DROP TABLE audit_entry_subjects;
