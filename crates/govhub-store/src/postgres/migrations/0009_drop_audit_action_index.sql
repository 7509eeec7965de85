-- govhub PostgreSQL migration 0009. Never edit once released.
-- The audit list filters actions by prefix (`substr(action, 1, n) = $n`), which no index
-- on action serves; the index only cost every append (docs/benchmarks.md, session 7).
DROP INDEX IF EXISTS audit_log_action;
