-- The journal's indexes take a new delivery at their right edge. A batch of webhooks was
-- inserted in the middle of two of them: `(status, id)` put each new 'pending' row before the
-- 'projected' ones, and `(source_id, received_at)` put each one at the end of its own source's
-- range, before the sources added after it. An index page filled that way is full when SQLite
-- splits it, so most commits split one again: 4.6 of the 10.5 pages a commit wrote to the log
-- were these indexes' (TagMango at 64 connections, 1,180 commits).

-- Waiting deliveries, in arrival order: the backlog at start, and any writer but the writer
-- thread looking one up by identity.
CREATE INDEX deliveries_pending ON deliveries (id) WHERE status = 'pending';
DROP INDEX deliveries_status;
CREATE INDEX deliveries_status ON deliveries (status, id) WHERE status != 'pending';

-- "Last delivery" per source, kept by the journal as it appends: one row per source.
CREATE TABLE source_last_delivery (
    source_id   INTEGER PRIMARY KEY REFERENCES sources (id),
    received_at TEXT NOT NULL
);
INSERT INTO source_last_delivery (source_id, received_at)
    SELECT source_id, MAX(received_at) FROM deliveries
    WHERE source_id IS NOT NULL GROUP BY source_id;
DROP INDEX deliveries_source_received;
