-- Webhook subscriptions Rollcall made through a platform's API (TagMango, Livestorm REST,
-- GoTo Webinar), so it can re-point or delete them later. Credentials are never stored here.
CREATE TABLE subscriptions (
    id                   INTEGER PRIMARY KEY,
    source_id            INTEGER NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    platform             TEXT NOT NULL,
    -- The platform's event or trigger name (`webinar.completed.all`, `session.ended`, ...).
    event                TEXT NOT NULL,
    -- The platform's id for the webhook (GoTo: webhookKey); NULL when it did not say.
    remote_id            TEXT,
    -- GoTo only: the userSubscriptionKey that ties the webhook to the organizer's account.
    remote_user_sub_id   TEXT,
    -- The URL registered with the platform (the base URL it was made for is its prefix).
    hook_url             TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    -- Why the last attempt to create, re-point or delete it failed; NULL when it worked.
    last_error           TEXT,
    UNIQUE (source_id, event)
);

-- Organizer choices about subscriptions (for now: re-point automatically on a new tunnel URL).
CREATE TABLE subscription_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- "Last delivery" per source: the newest received_at of a source is one index probe.
CREATE INDEX deliveries_source_received ON deliveries (source_id, received_at)
    WHERE source_id IS NOT NULL;
