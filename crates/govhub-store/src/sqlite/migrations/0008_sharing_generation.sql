-- govhub SQLite schema, migration 0008. Never edit once released.
-- The sharing generation: a counter raised, by the triggers below, in the same
-- transaction as every change to apps, app tokens or grants (a token revoked, a grant
-- created, revoked or edited by hand). A node that caches token and grant lookups reads
-- it in the very statement that returns a record and drops its cache when it moved
-- (docs/sharing.md, "Caching and revocation").
CREATE TABLE sharing_generation (
    id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO sharing_generation (id, generation) VALUES (1, 0);

CREATE TRIGGER apps_generation_update AFTER UPDATE ON apps
BEGIN UPDATE sharing_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER apps_generation_delete AFTER DELETE ON apps
BEGIN UPDATE sharing_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER app_tokens_generation_update AFTER UPDATE ON app_tokens
BEGIN UPDATE sharing_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER app_tokens_generation_delete AFTER DELETE ON app_tokens
BEGIN UPDATE sharing_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER grants_generation_insert AFTER INSERT ON grants
BEGIN UPDATE sharing_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER grants_generation_update AFTER UPDATE ON grants
BEGIN UPDATE sharing_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER grants_generation_delete AFTER DELETE ON grants
BEGIN UPDATE sharing_generation SET generation = generation + 1 WHERE id = 1; END;
