-- What people search matches (email and name, lower-cased), one narrow row per person: searching
-- 100,000 people scanned their whole rows, fold state included (about 75 MB), for each keystroke.
-- Kept by the projection with each person it writes.
CREATE TABLE people_search (
    uid  TEXT PRIMARY KEY,
    text TEXT NOT NULL
) WITHOUT ROWID;

INSERT INTO people_search (uid, text)
SELECT uid, lower(coalesce(email, '') || ' ' || coalesce(coalesce(name,
    nullif(trim(coalesce(first_name, '') || ' ' || coalesce(last_name, '')), '')), ''))
FROM people;
