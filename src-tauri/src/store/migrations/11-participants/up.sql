-- One row per person at each webinar with what the webinar's report, people lists and exports
-- say about them, kept by the projection (`store/projection/participants.rs`), which also fills
-- it here: grouping a 100,000-person webinar's registrations and attendance by person on every
-- report and export took most of their time. Names are joined from `people` when read.
CREATE TABLE participants (
    webinar_uid     TEXT NOT NULL,
    person_uid      TEXT NOT NULL,
    -- 2 host, 1 guest speaker, 0 audience.
    rank            INTEGER NOT NULL,
    -- Registered, and not cancelled or denied.
    registered      INTEGER NOT NULL,
    status          TEXT,
    registered_at   TEXT,
    -- The registration time is when Rollcall received it.
    at_receipt      INTEGER NOT NULL,
    source          TEXT,
    referrer        TEXT,
    tracking_code   TEXT,
    utm_source      TEXT,
    utm_medium      TEXT,
    utm_campaign    TEXT,
    utm_term        TEXT,
    utm_content     TEXT,
    join_url        TEXT,
    -- A JSON array of each registration's custom fields.
    custom_fields   TEXT NOT NULL,
    -- The names in them, sorted, as a JSON array: the extra columns of an export, found without
    -- reading every person's fields (most people of a webinar share one set).
    custom_field_keys TEXT NOT NULL,
    attended        INTEGER NOT NULL,
    first_joined_at TEXT,
    last_left_at    TEXT,
    join_count      INTEGER NOT NULL,
    -- Seconds in session, when known for every attendance record.
    secs            INTEGER,
    engaged         INTEGER,
    rate_sum        REAL NOT NULL,
    rate_count      INTEGER NOT NULL,
    replay_views    INTEGER NOT NULL,
    replay_secs     INTEGER,
    PRIMARY KEY (webinar_uid, person_uid)
) WITHOUT ROWID;
