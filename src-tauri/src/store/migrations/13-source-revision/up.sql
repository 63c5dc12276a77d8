-- A source's revision goes up with every change to what authenticates its deliveries or goes
-- into them: platform, token, zone, removal, secret keys. The receiver keeps sources in memory
-- by token, and the writer confirms each one's revision inside the transaction that journals
-- its deliveries, so a change made by any process (the CLI beside a running app) refuses the
-- old credentials from the next delivery on. Triggers keep it, so no writer can forget to.
ALTER TABLE sources ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER sources_revision
AFTER UPDATE OF platform, token, token_sha256, time_zone, removed_at ON sources
BEGIN
    UPDATE sources SET revision = revision + 1 WHERE id = NEW.id;
END;

CREATE TRIGGER source_keys_added AFTER INSERT ON source_secret_keys
BEGIN
    UPDATE sources SET revision = revision + 1 WHERE id = NEW.source_id;
END;

CREATE TRIGGER source_keys_changed AFTER UPDATE ON source_secret_keys
BEGIN
    UPDATE sources SET revision = revision + 1 WHERE id IN (OLD.source_id, NEW.source_id);
END;

CREATE TRIGGER source_keys_removed AFTER DELETE ON source_secret_keys
BEGIN
    UPDATE sources SET revision = revision + 1 WHERE id = OLD.source_id;
END;
