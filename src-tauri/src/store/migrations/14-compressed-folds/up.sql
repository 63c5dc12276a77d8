-- From this version on, the `fold` column of webinars, sessions, people, registrations and
-- attendance holds lz4-compressed JSON as a BLOB (see `store::projection::entities`); rows
-- written before keep their JSON text, which still reads back. Nothing changes in the tables:
-- this version exists so that an older Rollcall, which reads folds only as text, refuses the
-- store as written by a newer one instead of failing on its first compressed fold.
SELECT 1;
