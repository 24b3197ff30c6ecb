-- hookflow store, version 4: timers in insertion order.
--
-- Version 3 keyed timers by (rule_id, event_id). Event ids are content hashes, so each
-- new timer landed on a random page of that key, and with many pending timers every
-- group commit rewrote about one page per event: a third of the store's writes under
-- load. A rowid table appends instead; the two lookups (due, and by correlation key)
-- keep their indexes, and both keys grow with time.
CREATE TABLE timers_v4 (
    id       INTEGER PRIMARY KEY,
    rule_id  TEXT    NOT NULL,
    event_id TEXT    NOT NULL,
    key      TEXT    NOT NULL,
    start    INTEGER NOT NULL,
    due_at   INTEGER NOT NULL
);
INSERT INTO timers_v4 (rule_id, event_id, key, start, due_at)
    SELECT rule_id, event_id, key, start, due_at FROM timers ORDER BY due_at;
DROP TABLE timers;
ALTER TABLE timers_v4 RENAME TO timers;
CREATE INDEX timers_due ON timers (due_at);
CREATE INDEX timers_by_key ON timers (rule_id, key);
