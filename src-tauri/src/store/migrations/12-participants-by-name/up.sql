-- The participants summary (migration 11) stored in the order lists and exports read it: by
-- webinar, then by name. Sorting a 100,000-person webinar's rows by a name joined from `people`
-- was two fifths of its export. The pair (webinar, person) stays unique through its own index,
-- led by the person, which also finds a person's rows when their name changes.
--
-- The table is made anew and filled by the migration's hook (`fill_participants`), by the code
-- that rebuilds it after a reindex; migration 11's table was filled the same way.
DROP TABLE participants;

CREATE TABLE participants (
    webinar_uid     TEXT NOT NULL,
    person_uid      TEXT NOT NULL,
    -- What lists and exports sort by: the person's last name, else name, else email, else id,
    -- lower-cased (`participants::SORT_KEY`); kept when the person's names change.
    sort_key        TEXT NOT NULL,
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
    PRIMARY KEY (webinar_uid, sort_key, person_uid)
) WITHOUT ROWID;

CREATE UNIQUE INDEX participants_person ON participants (person_uid, webinar_uid);
