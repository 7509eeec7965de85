-- govhub PostgreSQL schema, migration 0008. Never edit once released.
-- The sharing generation: a counter raised, by the triggers below, in the same
-- transaction as every change to apps, app tokens or grants (a token revoked, a grant
-- created, revoked or edited by hand). A node that caches token and grant lookups reads
-- it in the very statement that returns a record and drops its cache when it moved
-- (docs/sharing.md, "Caching and revocation").
CREATE TABLE sharing_generation (
    id         SMALLINT PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO sharing_generation (id, generation) VALUES (1, 0);

CREATE FUNCTION govhub_bump_sharing_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sharing_generation SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER apps_generation AFTER UPDATE OR DELETE ON apps
    FOR EACH STATEMENT EXECUTE FUNCTION govhub_bump_sharing_generation();
CREATE TRIGGER app_tokens_generation AFTER UPDATE OR DELETE ON app_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION govhub_bump_sharing_generation();
CREATE TRIGGER grants_generation AFTER INSERT OR UPDATE OR DELETE ON grants
    FOR EACH STATEMENT EXECUTE FUNCTION govhub_bump_sharing_generation();
