-- A number that grows with every change to the projected tables, so that a report computed
-- from them can be kept and served again until it changes (a 100,000-person webinar's report
-- takes a second to compute). One row; every projection write increases it in its transaction.
CREATE TABLE projection_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
);

INSERT INTO projection_revision (id, revision) VALUES (1, 1);
