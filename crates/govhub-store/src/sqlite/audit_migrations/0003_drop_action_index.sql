-- govhub SQLite audit file, migration 0003. Never edit once released.
-- The audit list filters actions by prefix (`substr(action, 1, n) = ?`), which no index
-- on action can serve; the index only cost every append a page or two of its own
-- (docs/benchmarks.md, consumer API, session 7).
DROP INDEX IF EXISTS audit_log_action;
