-- The public URL each tunnel provider last had, so that a new one (a quick tunnel's URL changes
-- on every start) is announced together with the URL it replaces.
CREATE TABLE tunnel_urls (
    provider     TEXT PRIMARY KEY,
    url          TEXT NOT NULL,
    previous_url TEXT,
    changed_at   TEXT NOT NULL,
    seen_at      TEXT NOT NULL
);
