-- The last sequence number of the receipt log (`store/receipts.rs`) imported into the journal,
-- written by the transaction that imports it: at start every record past it is imported again.
CREATE TABLE receipt_log (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    imported INTEGER NOT NULL
);
INSERT INTO receipt_log (id, imported) VALUES (1, 0);
-- The receipt log's number of a delivery acknowledged from it (its 200 said `"receipt": n`),
-- to find it by; NULL for a delivery journaled before its answer.
ALTER TABLE deliveries ADD COLUMN receipt INTEGER;
