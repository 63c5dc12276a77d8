-- A delivery waiting to be projected is left out of the identity index. Identities are hashes
-- or event ids, so each new entry fell on an index page of its own: a batch of webhooks wrote
-- one 8 KiB page to the log per delivery for this index alone, most of what journaling wrote.
-- The entry is now made when the delivery leaves `pending` (projected, or any final status),
-- by the projection, which runs once the senders have their answers. Meanwhile the writer
-- finds a waiting delivery by identity in its backlog, and any other writer by scanning the
-- waiting rows (`journal::waiting_with_identity`).
DROP INDEX deliveries_identity;
CREATE INDEX deliveries_identity ON deliveries (identity) WHERE status != 'pending';
