-- The journal (sources, deliveries) is the source of truth; every other table is a projection
-- rebuilt from it by `rollcall reindex`. Times are UTC, written `YYYY-MM-DDTHH:MM:SS.sssZ` so
-- that text order is time order.

CREATE TABLE sources (
    id           INTEGER PRIMARY KEY,
    platform     TEXT NOT NULL CHECK (platform IN ('bigmarker', 'tagmango', 'livestorm', 'gotowebinar')),
    label        TEXT NOT NULL,
    -- The secret path segment of the webhook URL; looked up by its SHA-256 so that the lookup
    -- itself leaks nothing about the token.
    token        TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    -- IANA zone for times the platform sends without one (BigMarker lifecycle times).
    time_zone    TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    removed_at   TEXT
);
CREATE UNIQUE INDEX sources_active_label ON sources (label) WHERE removed_at IS NULL;

-- GoTo Webinar secret keys: a signed delivery must match one of its source's keys.
CREATE TABLE source_secret_keys (
    source_id INTEGER NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    secret    TEXT NOT NULL,
    added_at  TEXT NOT NULL,
    PRIMARY KEY (source_id, secret)
);

CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY,
    platform     TEXT NOT NULL,
    source_id    INTEGER REFERENCES sources (id),
    trigger      TEXT,
    received_at  TEXT NOT NULL,
    -- How the delivery arrived: 'webhook' or 'import'.
    via          TEXT NOT NULL,
    content_type TEXT,
    headers      TEXT NOT NULL,
    body         BLOB NOT NULL,
    body_sha256  TEXT NOT NULL,
    -- The zone zone-less times were read in (the source's zone when it arrived).
    time_zone    TEXT NOT NULL,
    identity     TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('projected', 'duplicate', 'quarantined', 'ignored')),
    -- Why it is quarantined or ignored, or what a projected delivery had to skip.
    detail       TEXT,
    duplicate_of INTEGER REFERENCES deliveries (id)
);
CREATE INDEX deliveries_identity ON deliveries (identity);
CREATE INDEX deliveries_status ON deliveries (status, id);
CREATE INDEX deliveries_duplicate_of ON deliveries (duplicate_of) WHERE duplicate_of IS NOT NULL;

-- Requests refused before anything was stored (unknown token or platform), counted.
CREATE TABLE rejections (
    reason   TEXT NOT NULL,
    platform TEXT NOT NULL,
    count    INTEGER NOT NULL,
    last_at  TEXT NOT NULL,
    PRIMARY KEY (reason, platform)
);

-- Projection. `facts` holds what each projected delivery said, platform-neutral; the entity
-- tables fold those facts, and keep their fold state so a new fact merges in O(1).

CREATE TABLE facts (
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
    ordinal     INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    webinar_uid TEXT NOT NULL,
    session_uid TEXT,
    person_uid  TEXT,
    -- Where the fact sits on the webinar's timeline, if it has a time.
    at          TEXT,
    -- 'exact', 'received_at', or the IANA zone a zone-less time was read in.
    at_basis    TEXT,
    -- Orders conflicting facts: platform event time (or receipt), delivery identity, ordinal.
    version     TEXT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (delivery_id, ordinal)
) WITHOUT ROWID;
CREATE INDEX facts_webinar ON facts (webinar_uid, kind);
CREATE INDEX facts_webinar_at ON facts (webinar_uid, at) WHERE at IS NOT NULL;
CREATE INDEX facts_person ON facts (person_uid) WHERE person_uid IS NOT NULL;
CREATE INDEX facts_session ON facts (session_uid) WHERE session_uid IS NOT NULL;

CREATE TABLE webinars (
    uid                    TEXT PRIMARY KEY,
    platform               TEXT NOT NULL,
    external_id            TEXT NOT NULL,
    title                  TEXT,
    description            TEXT,
    url                    TEXT,
    registration_url       TEXT,
    timezone               TEXT,
    kind                   TEXT,
    recurrence             TEXT,
    platform_status        TEXT,
    owner_name             TEXT,
    owner_email            TEXT,
    capacity               INTEGER,
    scheduled_start        TEXT,
    scheduled_end          TEXT,
    created_at             TEXT,
    published_at           TEXT,
    changed_at             TEXT,
    deleted_at             TEXT,
    waiting_room_opened_at TEXT,
    started_at             TEXT,
    ended_at               TEXT,
    -- The zone lifecycle times were assumed in, when the platform sent them without one.
    times_assumed_zone     TEXT,
    presenters             TEXT NOT NULL,
    schedule               TEXT NOT NULL,
    extra                  TEXT NOT NULL,
    delivery_id            INTEGER NOT NULL REFERENCES deliveries (id),
    fold                   TEXT NOT NULL
);
CREATE INDEX webinars_platform ON webinars (platform, scheduled_start);

CREATE TABLE sessions (
    uid                    TEXT PRIMARY KEY,
    webinar_uid            TEXT NOT NULL,
    external_id            TEXT NOT NULL,
    scheduled_start        TEXT,
    scheduled_end          TEXT,
    timezone               TEXT,
    url                    TEXT,
    platform_status        TEXT,
    waiting_room_opened_at TEXT,
    started_at             TEXT,
    ended_at               TEXT,
    duration_secs          INTEGER,
    times_assumed_zone     TEXT,
    delivery_id            INTEGER NOT NULL REFERENCES deliveries (id),
    fold                   TEXT NOT NULL
);
CREATE INDEX sessions_webinar ON sessions (webinar_uid);

CREATE TABLE people (
    uid          TEXT PRIMARY KEY,
    email        TEXT,
    first_name   TEXT,
    last_name    TEXT,
    name         TEXT,
    phone        TEXT,
    organization TEXT,
    job_title    TEXT,
    city         TEXT,
    country      TEXT,
    platform_ids TEXT NOT NULL,
    delivery_id  INTEGER NOT NULL REFERENCES deliveries (id),
    fold         TEXT NOT NULL
);
CREATE INDEX people_email ON people (email);

CREATE TABLE registrations (
    webinar_uid        TEXT NOT NULL,
    -- '' when the registration is for the webinar rather than one session.
    session_uid        TEXT NOT NULL,
    person_uid         TEXT NOT NULL,
    registered_at      TEXT,
    registered_at_basis TEXT,
    status             TEXT,
    role               TEXT NOT NULL,
    source             TEXT,
    referrer           TEXT,
    tracking_code      TEXT,
    utm_source         TEXT,
    utm_medium         TEXT,
    utm_campaign       TEXT,
    utm_term           TEXT,
    utm_content        TEXT,
    join_url           TEXT,
    custom_fields      TEXT NOT NULL,
    delivery_id        INTEGER NOT NULL REFERENCES deliveries (id),
    fold               TEXT NOT NULL,
    PRIMARY KEY (webinar_uid, session_uid, person_uid)
) WITHOUT ROWID;
CREATE INDEX registrations_person ON registrations (person_uid);

CREATE TABLE attendance (
    webinar_uid     TEXT NOT NULL,
    session_uid     TEXT NOT NULL,
    person_uid      TEXT NOT NULL,
    attended        INTEGER NOT NULL,
    first_joined_at TEXT,
    last_left_at    TEXT,
    join_count      INTEGER NOT NULL,
    duration_secs   INTEGER,
    engaged_secs    INTEGER,
    attendance_rate REAL,
    role            TEXT NOT NULL,
    messages        INTEGER,
    questions       INTEGER,
    votes           INTEGER,
    up_votes        INTEGER,
    delivery_id     INTEGER NOT NULL REFERENCES deliveries (id),
    fold            TEXT NOT NULL,
    PRIMARY KEY (webinar_uid, session_uid, person_uid)
) WITHOUT ROWID;
CREATE INDEX attendance_person ON attendance (person_uid);

-- Each replay view, and each timeline entry, is one fact: views keep them in one place.
CREATE VIEW replay_views AS
SELECT delivery_id, ordinal, webinar_uid, person_uid, at AS viewed_at, at_basis,
       json_extract(body, '$.watched_secs') AS watched_secs
FROM facts WHERE kind = 'replay_viewed';

-- Identical entries reported by several deliveries (a start sent by two triggers) appear once.
CREATE VIEW timeline AS
SELECT webinar_uid, session_uid, person_uid, kind, at, at_basis, min(delivery_id) AS delivery_id
FROM facts WHERE at IS NOT NULL
GROUP BY webinar_uid, session_uid, person_uid, kind, at;
