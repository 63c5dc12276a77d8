-- Summary tables the projection maintains, so that reports count without scanning every
-- registration: who is audience at each webinar (one row per person who registered or
-- attended, staff excluded, as the views of migration 02 defined it), and each webinar's
-- headline counts. The audience views now read the summary table.

CREATE TABLE audience (
    webinar_uid TEXT NOT NULL,
    person_uid  TEXT NOT NULL,
    -- Registered (not cancelled or denied) and not staff.
    registered  INTEGER NOT NULL,
    -- Attended and not staff.
    attended    INTEGER NOT NULL,
    PRIMARY KEY (webinar_uid, person_uid)
) WITHOUT ROWID;
CREATE INDEX audience_person ON audience (person_uid);

CREATE TABLE webinar_counts (
    webinar_uid         TEXT PRIMARY KEY,
    registered          INTEGER NOT NULL,
    attended            INTEGER NOT NULL,
    registered_attended INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO audience (webinar_uid, person_uid, registered, attended)
SELECT webinar_uid, person_uid,
       max(src = 'r'), max(src = 'a')
FROM (SELECT webinar_uid, person_uid, 'r' AS src FROM audience_registrants
      UNION ALL
      SELECT webinar_uid, person_uid, 'a' AS src FROM audience_attendees)
GROUP BY webinar_uid, person_uid;

INSERT INTO webinar_counts (webinar_uid, registered, attended, registered_attended)
SELECT webinar_uid, sum(registered), sum(attended), sum(registered AND attended)
FROM audience GROUP BY webinar_uid;

DROP VIEW audience_registrants;
CREATE VIEW audience_registrants AS
SELECT webinar_uid, person_uid FROM audience WHERE registered;

DROP VIEW audience_attendees;
CREATE VIEW audience_attendees AS
SELECT webinar_uid, person_uid FROM audience WHERE attended;
