-- `facts_session` served no query: the timeline finds a webinar's facts through
-- `facts_webinar_at` and filters sessions there, and a refold reads facts by webinar or by
-- person. It cost an index entry for every fact a session names (400,000 on the benchmark's
-- 1,000,000-delivery store, 20 MB), kept up at every delivery and rebuilt by every reindex.
DROP INDEX IF EXISTS facts_session;
